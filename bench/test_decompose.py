"""decompose's pure parts: the prediction and the V8 profile summary (a small .cpuprofile in
the format node --cpu-prof writes: nodes with callFrames, samples and timeDeltas)."""
import json
import os
import sys
import tempfile
import types
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import contenders  # noqa: E402
import decompose  # noqa: E402


class PredictionTest(unittest.TestCase):
    def test_times_add_up(self):
        # the Node figures: express alone 7,696 req/s, driver alone 5,000 finds/s
        self.assertAlmostEqual(decompose.prediction(7696, 5000), 3030.9, places=1)
        self.assertAlmostEqual(decompose.prediction(1000, 1000), 500.0)
        self.assertIsNone(decompose.prediction(None, 1000))
        self.assertIsNone(decompose.prediction(1000, 0))

    def test_per_request(self):
        self.assertAlmostEqual(decompose.per_request_us(2.5, 100000), 25.0)
        self.assertIsNone(decompose.per_request_us(None, 10))
        self.assertIsNone(decompose.per_request_us(1.0, 0))


class DriverOnlyLoopsTest(unittest.TestCase):
    """(b)'s commands: each C++ contender's loop has as many finds in flight as its server can
    have (coroserve's --workers, drogon's --db-threads), whatever wrk's connection count."""

    def ctx(self):
        return types.SimpleNamespace(root="/r", peers_build="/r/build/bench-peers", bin_dir="/r/bin",
                                     coroserve_flags={}, args=types.SimpleNamespace(duration=3, warmup=0))

    def test_drogon_runs_its_loop_in_the_chroot_with_the_servers_threads(self):
        loops = contenders.by_id()["drogon"].find_loops(self.ctx(), "mongodb://127.0.0.1:5", 200)
        self.assertEqual(len(loops), 1)
        cmd, cwd = loops[0]
        self.assertIsNone(cwd)
        self.assertEqual(cmd[:6], ["/r/" + contenders.TRIXIE_CHROOT, "run", "--bind", "/r/build/bench-peers", "--",
                                   "/r/build/bench-peers/peer-drogon-findloop"])
        flags = dict(zip(cmd[6::2], cmd[7::2]))
        self.assertEqual(flags, {"--uri": "mongodb://127.0.0.1:5", "--threads": contenders.DROGON_FLAGS["--db-threads"],
                                 "--seconds": "3", "--warmup": "1", "--pool": str(contenders.TOTAL_POOL)})
        self.assertEqual(decompose._concurrency(cmd), int(contenders.COROSERVE_BEST["--workers"]))
        # --db-threads given to the server for a case is the loop's thread count too
        cmd = contenders.by_id()["drogon"].find_loops(self.ctx(), "mongodb://x", 200, {"--db-threads": "3"})[0][0]
        self.assertEqual(decompose._concurrency(cmd), 3)

    def test_constant_json_rows_have_no_loop(self):
        for cid in ("drogon-json", "coroserve-json"):
            self.assertIsNone(contenders.by_id()[cid].find_loops(self.ctx(), "mongodb://x", 200), cid)
        self.assertEqual(decompose._concurrency(
            contenders.by_id()["coroserve"].find_loops(self.ctx(), "mongodb://x", 200)[0][0]), 8)


class ProfileTest(unittest.TestCase):
    def test_self_time_by_function(self):
        def node(i, name, url=""):
            return {"id": i, "callFrame": {"functionName": name, "url": url, "lineNumber": 0, "columnNumber": 0}}
        prof = {"nodes": [node(1, "(root)"), node(2, "(idle)"), node(3, "writeBuffer"),
                          node(4, "send", "file:///x/node_modules/express/lib/response.js"), node(5, "")],
                "samples": [3, 3, 4, 2, 3, 5, 4, 3],
                "timeDeltas": [100, 100, 100, 500, 100, 100, 100, 100]}
        path = os.path.join(tempfile.mkdtemp(prefix="bench-decompose-test-"), "x.cpuprofile")
        with open(path, "w") as f:
            json.dump(prof, f)
        top = decompose.summarize_profile(path, top=3)
        self.assertEqual([t["function"] for t in top], ["(idle)", "writeBuffer", "send"])
        self.assertEqual(top[0]["self_pct"], round(100 * 500 / 1200, 1))
        self.assertEqual(top[1]["self_pct"], round(100 * 400 / 1200, 1))
        self.assertEqual(top[2]["url"], "response.js")


if __name__ == "__main__":
    unittest.main()
