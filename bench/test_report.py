"""Unit tests for report: results.json keeps the schema the CI gate reads, CSV and Markdown."""
import csv
import json
import os
import shutil
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

    def test_cost_per_request(self):
        r = self.results
        rep = r["runs"][0]["reps"][0]
        rep.update(cpu_s=2.2672, standin_cpu_s=4.5344, ctx_switches=113360, standin_ctx_switches=None)
        k = report.cost(r["runs"][0])  # 226,720 requests in the fixture
        self.assertAlmostEqual(k["server_cpu_us"], 10.0)
        self.assertAlmostEqual(k["db_cpu_us"], 20.0)
        self.assertAlmostEqual(k["ctx_switches"], 0.5)
        self.assertIsNone(k["db_ctx_switches"])
        md = report.markdown(r)
        self.assertIn("## Cost per request", md)
        self.assertIn("| coroserve | small | 10.0 / 20.0 / 0.50 |", md)
        report.save(self.dir, r)
        with open(os.path.join(self.dir, "results.csv")) as f:
            row = next(csv.DictReader(f))
        self.assertEqual((row["server_cpu_us_per_req"], row["ctx_switches_per_req"]), ("10.0", "0.5"))

    def test_decompose_table(self):
        r = self.results
        r["decompose"] = full_results()["decompose"]
        md = report.markdown(r)
        self.assertIn("## Decomposition", md)
        # 1/(1/7696 + 1/5000) = 3,031; 2,490 / 3,031 = 82 %
        self.assertIn("| node-express | 1 | 200 | 7,696 | 129.9 | 5,000 | 200.0 | 2,490 | 401.6 | 30.0 | 1.50 | "
                      "3,031 | 82% |", md)

    def test_status_lines_come_first(self):
        r = self.results
        r["meta"].update(busy=True, loadavg_before_first_point=3.2, max_load=1.5, allow_skip=True)
        lines = report.markdown(r).splitlines()
        self.assertTrue(lines[2].startswith("**Measured on a busy machine (--allow-busy)"), lines[:6])
        self.assertEqual(lines[4], "**Skipped (1) with --allow-skip:**")
        self.assertEqual(lines[6], "- play: not installable")
        r["skipped"] = []
        r["meta"]["busy"] = False
        self.assertEqual(report.markdown(r).splitlines()[2],
                         "Nothing skipped: every requested contender ran at every point.")
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

    @unittest.skipUnless(shutil.which("gnuplot"), "gnuplot not installed (tools/install-deps.sh bench)")
    def test_charts(self):
        """gnuplot draws every chart of a run with every section: real PNG files, not empty."""
        written = report.write_charts(self.dir, full_results())
        names = sorted(os.path.basename(p) for p in written)
        self.assertEqual(names, ["decompose.png", "idle.png", "latency.png", "matrix_big.png", "matrix_small.png",
                                 "openloop.png", "sweep.png"])
        for p in written:
            with open(p, "rb") as f:
                head = f.read(24)
            self.assertEqual(head[:8], b"\x89PNG\r\n\x1a\n", p)
            self.assertEqual(head[12:16], b"IHDR", p)
            width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
            self.assertGreaterEqual(width, 600, p)
            self.assertGreaterEqual(height, 400, p)
            # a chart with axes, bars and text compresses to well over 10 KB; a blank canvas does not
            self.assertGreater(os.path.getsize(p), 10000, p)
            # the gnuplot script and its data are kept beside the PNG
            stem = os.path.splitext(os.path.basename(p))[0]
            self.assertTrue(os.path.exists(os.path.join(self.dir, "charts", stem + ".gp")))

    def test_every_contender_has_its_own_colour(self):
        """The matrix charts tell contenders apart by colour: no two of them may share one."""
        import contenders
        n = len(contenders.by_id())
        colours = [report._colour(i) for i in range(n)]
        self.assertEqual(len(set(colours)), n, colours)

    def test_chart_labels_are_quoted(self):
        self.assertEqual(report._q('a "b" \\ c'), '"a \\"b\\" \\\\ c"')

    def test_charts_without_gnuplot_is_an_error(self):
        old = os.environ["PATH"]
        os.environ["PATH"] = "/nonexistent"
        try:
            with self.assertRaises(report.ChartError):
                report.write_charts(self.dir, self.results)
        finally:
            os.environ["PATH"] = old


def full_results():
    """A run with every section: 4 contenders x 2 docs x 3 connection counts, sweep, idle, openloop."""
    r = sample_results()
    base = r["runs"][0]
    runs = []
    for k, cid in enumerate(["coroserve", "coroserve-json", "nginx", "node-express"]):
        for doc in ("small", "big"):
            for j, n in enumerate((200, 1000, 5000)):
                lat = {"p50": 1.0 + k + j, "p90": 2.0 + k + j, "p99": 5.0 * (k + 1) * (j + 1), "max": 100.0}
                runs.append(dict(base, contender=cid, doc=doc, connections=n, rps_ok=30000.0 / (k + 1) - 1000 * j,
                                 latency_ms=lat, non2xx=(j * 7 if k == 3 else 0)))
    r["runs"] = runs
    r["sweep"] = [{"config": cfg, "latency_ms_db": lat, "rps_ok": 20000.0 / (1 + lat) * (w + 1)}
                  for w, cfg in enumerate(["coroserve workers=8", "tornado-motor"]) for lat in (0, 1, 10)]
    r["idle"] = [{"contender": cid, "bytes_per_connection": b} for cid, b in (("coroserve", 6000), ("nginx", 500))]
    r["openloop"] = [{"contender": cid, "offered_rps": rate,
                      "latency_ms": {"p50": 0.5 * (i + 1), "p99": 3.0 * (i + 1), "p999": 9.0 * (i + 1)}}
                     for i, cid in enumerate(["coroserve", "node-express"]) for rate in (500, 2000)]
    r["decompose"] = [decompose_row("node-express", 1, 7696.0, 5000.0, 2490.0),
                      decompose_row("node-express", 2, 7000.0, 4500.0, 1860.0),
                      decompose_row("go-nethttp", 1, 20000.0, 9000.0, 6000.0)]
    return r


def decompose_row(cid, processes, a, b, c):
    pred = 1 / (1 / a + 1 / b)
    return {"contender": cid, "processes": processes, "connections": 200,
            "http": {"rps_ok": a, "cpu_us": 1e6 / a}, "driver": {"rps_ok": b, "cpu_us": 1e6 / b},
            "composite": {"rps_ok": c, "cpu_us": 1e6 / c, "db_cpu_us": 30.0, "ctx_switches": 1.5},
            "predicted_rps": pred, "composite_vs_predicted": c / pred}


if __name__ == "__main__":
    unittest.main()
