"""End-to-end test of the drogon contender: the real peer, run by contenders.Drogon inside the
Debian 13 chroot, against the real stand-in. Skipped (with the reason) where the chroot, the peer
or the stand-in has not been built: `bench/run --contenders drogon ...` builds them."""
import json
import os
import subprocess
import time
import types
import unittest

import contenders
import decompose
import procs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STANDIN = os.path.join(ROOT, "build/release/bin/mongo-standin")
PEERS = os.path.join(ROOT, "build/bench-peers")
SMALL_ID = "537416b501d53a77bb94135c"


def chroot_unready(binaries, chroot_has=lambda root: None):
    """Why the in-chroot tests cannot run, or None: root, the Debian 13 chroot (plus what
    `chroot_has(root)` says is missing in it), the built `binaries` and the stand-in."""
    if os.geteuid() != 0:
        return "needs root (chroot)"
    script = os.path.join(ROOT, contenders.TRIXIE_CHROOT)
    if not os.access(script, os.X_OK):
        return f"{contenders.TRIXIE_CHROOT} missing"
    path = subprocess.run([script, "path"], capture_output=True, text=True).stdout.strip()
    if not os.access(os.path.join(path, "usr/bin/env"), os.X_OK):
        return f"no Debian 13 chroot at {path}"
    missing = chroot_has(path)
    if missing:
        return missing
    for binary in binaries:
        if not os.access(binary, os.X_OK):
            return f"{os.path.relpath(binary, ROOT)} not built"
    if not os.access(STANDIN, os.X_OK):
        return "mongo-standin not built"
    return None


def no_drogon(path):
    libdir = os.path.join(path, "usr/lib/x86_64-linux-gnu")
    if not os.path.isdir(libdir) or not any(f.startswith("libdrogon.so") for f in os.listdir(libdir)):
        return f"no drogon in the Debian 13 chroot {path}"
    return None


def chroot_ready():
    """None when the chroot has drogon and the peer is built, else why not."""
    return chroot_unready([os.path.join(PEERS, b) for b in ("peer-drogon", "peer-drogon-findloop")], no_drogon)


@unittest.skipIf(chroot_ready(), chroot_ready())
class DrogonContenderTest(unittest.TestCase):
    def setUp(self):
        self.dir = os.path.join("/tmp", f"bench-drogon-test-{os.getpid()}")
        self.ctx = types.SimpleNamespace(root=ROOT, peers_build=PEERS, log_dir=self.dir, raw_dir=self.dir,
                                         server_cpus="0", backlog=4096, name=lambda what, doc="": f"{what}-{doc}",
                                         args=types.SimpleNamespace(duration=1, warmup=0))
        self.standin = procs.start("standin", [STANDIN, "--port", "0", "--bind", "127.0.0.1", "--seed",
                                               f"articles.articles={ROOT}/bench/data/small_doc.json"], self.dir)
        self.uri = f"mongodb://127.0.0.1:{int(self.standin.first_line(20))}"
        self.server = None

    def tearDown(self):
        for p in (self.server, self.standin):
            if p:
                procs.stop(p)

    def start(self, cid):
        c = contenders.by_id()[cid]
        self.server, port = c.start(self.ctx, "small", self.uri)
        procs.wait_ready(self.server, port, c.endpoint, timeout=30)
        return port

    def test_json(self):
        port = self.start("drogon-json")
        self.assertEqual(procs.http_get(port, "/json"), (200, b'{"message":"Hello, World!"}'))
        self.assertEqual(procs.http_get(port, "/no/such/route")[0], 404)

    def test_mongo_document_pinning_and_sampling(self):
        port = self.start("drogon")
        status, body = procs.http_get(port, "/mongo")
        self.assertEqual(status, 200)
        doc = json.loads(body)
        self.assertEqual(doc["_id"], {"$oid": SMALL_ID})
        # The real server (inside the chroot, under the wrapper) is in the sampled session and
        # carries the CPU placement.
        names = {}
        for pid in procs.session_pids(self.server.pid):
            with open(f"/proc/{pid}/status") as f:
                fields = dict(line.split(":\t", 1) for line in f if ":\t" in line)
            names[fields["Name"].strip()] = fields["Cpus_allowed_list"].strip()
        self.assertEqual(names.get("peer-drogon"), "0")
        rss, ticks = procs.tree_usage(self.server.pid)
        self.assertEqual(len(ticks), len(names))
        self.assertGreater(rss, 0)

    def test_over_the_queue_is_503_at_once(self):
        # A stand-in that answers after 1 s, one DB loop and room for one find: while the first
        # find waits, a second request is refused at once.
        procs.stop(self.standin)
        self.standin = procs.start("standin-slow", [STANDIN, "--port", "0", "--bind", "127.0.0.1", "--latency-ms",
                                                    "1000", "--seed", f"articles.articles={ROOT}/bench/data/small_doc.json"],
                                   self.dir)
        self.uri = f"mongodb://127.0.0.1:{int(self.standin.first_line(20))}"
        c = contenders.by_id()["drogon"]
        self.server, port = c.start(self.ctx, "small", self.uri, {"--db-threads": "1", "--queue": "1"})
        procs.wait_ready(self.server, port, "/mongo", timeout=30)
        import threading
        first = {}
        t = threading.Thread(target=lambda: first.update(answer=procs.http_get(port, "/mongo", timeout=10)))
        t.start()
        time.sleep(0.3)
        t0 = time.monotonic()
        status, body = procs.http_get(port, "/mongo", timeout=10)
        self.assertEqual((status, json.loads(body)), (503, {"error": "too many queued finds"}))
        self.assertLess(time.monotonic() - t0, 0.5)
        t.join()
        self.assertEqual(first["answer"][0], 200)

    def test_driver_only_loop_for_decompose(self):
        # (b) of `bench/run decompose`, as decompose runs it: the loop in the chroot, pinned like
        # the server, 1 s measured after 1 s of warm-up, its own CPU over the window.
        db = types.SimpleNamespace(uri=self.uri, proc=self.standin)
        row = decompose.run_loops(self.ctx, contenders.by_id()["drogon"], db, 200, {}, "drogon-test")
        self.assertGreater(row["finds"], 0)
        self.assertEqual(row["errors"], 0)
        self.assertEqual(row["processes"], 1)
        self.assertEqual(row["concurrency_per_process"], int(contenders.DROGON_FLAGS["--db-threads"]))
        self.assertEqual(row["cpu_measured"], "own window")
        self.assertGreater(row["cpu_us"], 0)
        self.assertGreater(row["db_cpu_us"], 0)  # the stand-in answered those finds
        self.assertAlmostEqual(row["rps_ok"], row["finds"] / 1.0, delta=row["finds"] * 0.1)

    def test_driver_only_loop_fails_on_a_dead_database(self):
        port = procs.free_port()  # nothing listens there
        cmd = contenders.by_id()["drogon"].find_loops(self.ctx, f"mongodb://127.0.0.1:{port}", 200)[0][0]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertEqual(json.loads(r.stdout.strip().splitlines()[-1])["finds"], 0)
        self.assertIn("No suitable servers found", r.stderr)

    def test_database_down_is_503_within_the_deadline(self):
        port = self.start("drogon")
        procs.stop(self.standin)
        self.standin = None
        t0 = time.monotonic()
        status, body = procs.http_get(port, "/mongo", timeout=10)
        self.assertEqual(status, 503)
        self.assertEqual(json.loads(body), {"error": "database unavailable"})
        self.assertLess(time.monotonic() - t0, 5)  # serverSelectionTimeoutMS 1000, socketTimeoutMS 2000


if __name__ == "__main__":
    unittest.main()
