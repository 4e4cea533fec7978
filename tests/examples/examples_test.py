"""End-to-end tests of examples/: each example binary runs for real (against mongo-standin
where it needs a database) and its output is checked.
Env: EXAMPLES_DIR (the built examples), STANDIN_EXE, BENCH_DATA_DIR.
Usage: /usr/bin/python3 examples_test.py [TestCase ...]"""
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "standin", "python"))
from standin_proc import Standin  # noqa: E402

BIN = os.environ.get("EXAMPLES_DIR", "")
SMALL_DOC = os.path.join(os.environ.get("BENCH_DATA_DIR", ""), "small_doc.json")
SMALL_ID = "537416b501d53a77bb94135c"


def example(name):
    return os.path.join(BIN, name)


def seeded_standin():
    return Standin("--seed", f"articles.articles={SMALL_DOC}", "--seed", f"articles.small={SMALL_DOC}")


class MinimalMongoServer(unittest.TestCase):
    def setUp(self):
        self.db = seeded_standin()
        self.addCleanup(self.db.close)
        self.server = subprocess.Popen([example("minimal_mongo_server"), "0", self.db.uri, "articles"],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(self.stop_server)
        line = self.server.stdout.readline().strip()
        self.assertTrue(line.isdigit(), f"expected the port, got {line!r}")
        self.port = int(line)

    def stop_server(self):
        if self.server.poll() is None:
            self.server.kill()
        self.server.wait(timeout=10)
        self.server.stdout.close()
        self.server.stderr.close()

    def get(self, conn, path):
        conn.request("GET", path)
        res = conn.getresponse()
        return res.status, res.getheader("Content-Type"), res.read().decode()

    def test_documents_errors_keep_alive_and_clean_exit(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        status, ctype, body = self.get(conn, "/articles")
        self.assertEqual((status, ctype), (200, "application/json"))
        doc = json.loads(body)
        self.assertEqual(doc["_id"], {"$oid": SMALL_ID})
        self.assertEqual(doc["canonicalUrl"], "http://foo.com")
        sock = conn.sock
        self.assertEqual(self.get(conn, "/nothing")[:1], (404,))  # an empty collection
        self.assertEqual(self.get(conn, "/")[0], 404)
        self.assertIs(conn.sock, sock, "keep-alive: all three on one connection")

        # The database goes away: a short 502, the details only in the server's log.
        self.db.control("refuse on")
        self.db.control("drop")
        status, _, body = self.get(conn, "/articles")
        self.assertEqual((status, json.loads(body)), (502, {"error": "database error"}))
        self.db.control("refuse off")
        self.assertEqual(self.get(conn, "/articles")[0], 200)
        conn.close()

        self.server.send_signal(signal.SIGINT)
        self.assertEqual(self.server.wait(timeout=10), 0)
        self.assertIn("minimal_mongo_server:", self.server.stderr.read())



class MinimalMongoServerArguments(unittest.TestCase):
    def test_bad_arguments(self):
        res = subprocess.run([example("minimal_mongo_server")], capture_output=True, text=True, timeout=10)
        self.assertEqual(res.returncode, 2)
        self.assertIn("usage:", res.stderr)
        res = subprocess.run([example("minimal_mongo_server"), "0", "nonsense://x", "db"],
                             capture_output=True, text=True, timeout=10)
        self.assertEqual(res.returncode, 1)
        self.assertIn("bad MongoDB URI", res.stderr)


class FanOut(unittest.TestCase):
    def setUp(self):
        self.db = seeded_standin()
        self.addCleanup(self.db.close)

    def run_fan_out(self, *args):
        return subprocess.run([example("fan_out"), *args], capture_output=True, text=True, timeout=30)

    def test_both_documents(self):
        res = self.run_fan_out(self.db.uri, "articles", "articles", "missing")
        self.assertEqual(res.returncode, 0, res.stderr)
        answer = json.loads(res.stdout)
        self.assertEqual(answer["articles"]["_id"], {"$oid": SMALL_ID})
        self.assertIsNone(answer["missing"])

    def test_one_fails_all_or_nothing(self):
        self.db.control("fail 1 2 injected by the test")  # the next find fails, not both
        res = self.run_fan_out(self.db.uri, "articles", "articles", "small")
        self.assertEqual(res.returncode, 1)
        self.assertEqual(res.stdout, "")
        self.assertRegex(res.stderr, r"fan_out: no answer: (articles|small): injected by the test")

    def test_one_fails_partial_answer(self):
        self.db.control("fail 1 2 injected by the test")
        res = self.run_fan_out("--partial", self.db.uri, "articles", "articles", "small")
        self.assertEqual(res.returncode, 0, res.stderr)
        answer = json.loads(res.stdout)
        failed = [k for k, v in answer.items() if v == {"error": "unavailable"}]
        self.assertEqual(len(failed), 1, answer)
        kept = "small" if failed == ["articles"] else "articles"
        self.assertEqual(answer[kept]["_id"], {"$oid": SMALL_ID})
        self.assertIn("injected by the test", res.stderr)
        self.assertNotIn("injected", res.stdout)

    def test_database_down(self):
        self.db.close()
        res = self.run_fan_out(self.db.uri, "articles", "articles", "small")
        self.assertEqual(res.returncode, 1)
        self.assertIn("fan_out: no answer:", res.stderr)

    def test_usage(self):
        res = self.run_fan_out("only-one-arg")
        self.assertEqual(res.returncode, 2)
        self.assertIn("usage:", res.stderr)
        res = self.run_fan_out(self.db.uri, "articles", "articles", 'x", "y')
        self.assertEqual(res.returncode, 2)
        self.assertIn("a collection name has letters, digits", res.stderr)


class AwaitAnyBlockingCall(unittest.TestCase):
    def test_output(self):
        res = subprocess.run([example("await_any_blocking_call"), "localhost", "no-such-host.invalid"],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(res.returncode, 0, res.stderr)
        lines = res.stdout.splitlines()
        self.assertEqual(len(lines), 6, res.stdout)
        self.assertRegex(lines[0], r"^resolve localhost:( \S+)+$")
        self.assertTrue({"127.0.0.1", "::1"} & set(lines[0].split()[2:]), lines[0])
        self.assertRegex(lines[1], r"^resolve no-such-host\.invalid: error: .+")
        running = re.fullmatch(r"running call, 100 ms deadline: timer won, await returned after (\d+) ms", lines[2])
        queued = re.fullmatch(r"queued call, 100 ms deadline: timer won, await returned after (\d+) ms", lines[3])
        self.assertTrue(running and queued, res.stdout)
        self.assertGreaterEqual(int(running[1]), 500, "a running call is waited for")
        self.assertLess(int(queued[1]), 450, "a queued call is dropped at its deadline")
        self.assertGreaterEqual(int(queued[1]), 100)
        full = re.fullmatch(r"full pool: refused after (\d+) ms: queue_full", lines[4])
        self.assertTrue(full, res.stdout)
        self.assertLess(int(full[1]), 400, "refused at once, not after a wait")
        self.assertEqual(lines[5], "slow calls that ran: 4 of 6")


if __name__ == "__main__":
    unittest.main(verbosity=2)
