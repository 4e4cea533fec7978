"""Unit tests for report: results.json keeps the schema the CI gate reads, CSV and Markdown."""
import csv
import json
import os
import tempfile
import unittest

import report
import wrkparse

FIX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


def sample_results():
    with open(os.path.join(FIX, "wrk_nginx_c200.txt")) as f:
        rep = wrkparse.parse(f.read())
    rep.update({"rss_peak_kb": 23132, "cpu_s": 1.26})
    point = {"contender": "coroserve", "endpoint": "/mongo", "doc": "small", "connections": 200}
    point.update(wrkparse.summarize([rep]))
    big = dict(point, doc="big", contender="nginx", endpoint="/mongo", non2xx=5)
    return {
        "meta": {"timestamp": "20261126-160000", "git_rev": "abc123", "machine": {"cpus": 2},
                 "duration_s": 3, "reps": 1, "connections": [200], "pinning": "split"},
        "standin_driver_find_rate": 12345.6,
        "runs": [point, big],
        "skipped": [{"contender": "play", "reason": "not installable"}],
    }


class ReportTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="bench-report-test-")
        self.results = sample_results()
        report.save(self.dir, self.results)

    def test_json_schema(self):
        with open(os.path.join(self.dir, "results.json")) as f:
            data = json.load(f)
        self.assertEqual(set(data) >= {"meta", "standin_driver_find_rate", "runs", "skipped"}, True)
        for key in ("timestamp", "git_rev", "machine", "duration_s", "reps", "connections", "pinning"):
            self.assertIn(key, data["meta"])
        run = data["runs"][0]
        for key in ("contender", "endpoint", "doc", "connections", "rps_ok", "rps", "latency_ms", "errors",
                    "non2xx", "rss_peak_kb", "cpu_s", "reps"):
            self.assertIn(key, run)
        self.assertEqual(set(run["latency_ms"]), {"p50", "p90", "p99", "max"})
        self.assertEqual(set(run["errors"]), {"connect", "read", "write", "timeout"})
        for key in ("rps_ok", "rps", "latency_ms", "errors", "non2xx", "rss_peak_kb", "cpu_s"):
            self.assertIn(key, run["reps"][0])
        self.assertEqual(data["skipped"], [{"contender": "play", "reason": "not installable"}])
        self.assertEqual(data["standin_driver_find_rate"], 12345.6)

    def test_csv(self):
        with open(os.path.join(self.dir, "results.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual(len(rows), 2)
        self.assertEqual(rows[0]["contender"], "coroserve")
        self.assertEqual(rows[0]["p99_ms"], "5.85")
        self.assertEqual(rows[1]["non2xx"], "5")
        self.assertEqual(list(rows[0]), report.CSV_FIELDS)

    def test_markdown(self):
        with open(os.path.join(self.dir, "results.md")) as f:
            md = f.read()
        self.assertIn("## small document", md)
        self.assertIn("| coroserve | 112,796 (0) |", md)
        self.assertIn("seed: Play (4 cores, 2014) | 3,493 |", md)
        self.assertIn("| nginx | 112,796 (5) |", md)  # non-2xx count as failures
        self.assertIn("12,346 ops/s", md)
        self.assertIn("- play: not installable", md)
        self.assertIn("Play 2.2", md)

    def test_no_answer_is_not_zero_failures(self):
        r = self.results
        r["runs"][1].update(rps_ok=0.0, rps=0.0, non2xx=0, errors={"connect": 0, "read": 0, "write": 0, "timeout": 0})
        self.assertIn("| nginx | 0 (no answer in the run) |", report.markdown(r))

    def test_extra_sections(self):
        r = self.results
        r["sleep"] = [{"case": "coroserve --workers 1", "connections": 2, "requests": 5, "rps_ok": 1.0,
                       "latency_ms": {"p50": 1000.0, "max": 2000.0},
                       "errors": {"connect": 0, "read": 0, "write": 0, "timeout": 0}, "non2xx": 0}]
        r["idle"] = [{"contender": "nginx", "connections_open_at_sample": 10000, "connections_alive_at_end": 10000,
                      "rss_before_kb": 1024, "rss_after_kb": 6144, "bytes_per_connection": 524}]
        md = report.markdown(r)
        self.assertIn("| coroserve --workers 1 | 2 | 5 | 1.00 |", md)
        self.assertIn("| nginx | 10,000 | 10,000 | 1.0 | 6.0 | 524 |", md)

    def test_debian13_rows_are_named(self):
        r = self.results
        r["runs"].append(dict(r["runs"][0], contender="drogon-json", endpoint="/json"))
        md = report.markdown(r)
        self.assertIn("| drogon-json (Debian 13) | 112,796 (0) |", md)
        self.assertIn("| drogon-json (Debian 13) | small | 200 |", md)
        self.assertIn("Debian 13 chroot", md)
        self.assertNotIn("Debian 13 chroot", report.markdown(sample_results()))
        t = {x["target"]: x for x in report.targets(r)}
        self.assertIsNone(t["coroserve /json >= 1x drogon /json, small, 200 conns"]["met"])  # no coroserve-json
        r["runs"].append(dict(r["runs"][0], contender="coroserve-json", endpoint="/json", rps_ok=100000.0))
        t = {x["target"]: x for x in report.targets(r)}
        self.assertFalse(t["coroserve /json >= 1x drogon /json, small, 200 conns"]["met"])

    def test_targets(self):
        r = self.results
        node = dict(r["runs"][0], contender="node-express", connections=1000, rps_ok=1000.0)
        ours = dict(r["runs"][0], connections=1000, rps_ok=3500.0)
        go = dict(r["runs"][0], contender="go-nethttp", connections=1000, rps_ok=5000.0)
        r["runs"] += [node, ours, go]
        t = {x["target"]: x for x in report.targets(r)}
        self.assertTrue(t["coroserve /mongo >= 3x node-express, small, 1000 conns"]["met"])
        self.assertIsNone(t["coroserve /mongo >= 10x flask-gunicorn-gevent, small, 1000 conns"]["met"])
        self.assertFalse(t["coroserve ahead of every DB-backed contender at every point"]["met"])
        self.assertTrue(t["coroserve: zero socket errors, timeouts and non-2xx at every point"]["met"])
        self.assertIn("## Issue 4's targets", report.markdown(r))

    def test_charts(self):
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            self.skipTest("matplotlib not installed")
        written = report.write_charts(self.dir, self.results)
        names = sorted(os.path.basename(p) for p in written)
        self.assertEqual(names, ["latency.png", "matrix_big.png", "matrix_small.png"])
        for p in written:
            self.assertGreater(os.path.getsize(p), 1000)


if __name__ == "__main__":
    unittest.main()
