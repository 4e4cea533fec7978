"""Tests of tools/ci/perf-gate.py on synthetic bench results (no bench is run)."""

import importlib.util
import io
import json
import os
import tempfile
import unittest
from contextlib import redirect_stderr, redirect_stdout

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("perf_gate", os.path.join(HERE, "perf-gate.py"))
perf_gate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(perf_gate)


def run_entry(contender, doc, connections, rps_ok, endpoint=None):
    return {
        "contender": contender,
        "endpoint": endpoint or {"coroserve": "/mongo", "coroserve-json": "/json"}.get(contender, "/static"),
        "doc": doc,
        "connections": connections,
        "rps_ok": rps_ok,
        "rps": rps_ok,
        "latency_ms": {"p50": 1.0, "p90": 2.0, "p99": 3.0, "max": 9.0},
        "errors": {"connect": 0, "read": 0, "write": 0, "timeout": 0},
        "non2xx": 0,
        "rss_peak_kb": 10000,
        "cpu_s": 1.0,
        "reps": [],
    }


def make_results(coroserve_small=4000.0, coroserve_big=2000.0, connections=(200, 1000), drop=()):
    """nginx at 10000/5000 req/s, coroserve-json at 8000/4000; coroserve as given.
    `drop` lists (contender, doc, connections) points to leave out."""
    runs = []
    for c in connections:
        for doc, ng, js, cs in (("small", 10000.0, 8000.0, coroserve_small), ("big", 5000.0, 4000.0, coroserve_big)):
            for contender, rate in (("nginx", ng), ("coroserve-json", js), ("coroserve", cs)):
                if (contender, doc, c) not in drop:
                    runs.append(run_entry(contender, doc, c, rate))
    return {"meta": {"host": "test", "duration_s": 5}, "standin_driver_find_rate": None, "runs": runs, "skipped": []}


class GateTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def write(self, name, obj):
        with open(self.path(name), "w") as f:
            json.dump(obj, f)
        return self.path(name)

    def gate(self, *args):
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = perf_gate.main(list(args))
        return code, out.getvalue(), err.getvalue()

    def baseline_from(self, results, tolerance="0.15"):
        res = self.write("base-run.json", results)
        code, _, _ = self.gate("--results", res, "--write-baseline", self.path("baseline.json"), "--tolerance", tolerance)
        self.assertEqual(code, 0)
        return self.path("baseline.json")

    def test_ratios_per_doc_and_connection_count(self):
        ratios, notes = perf_gate.compute_ratios(make_results())
        self.assertEqual(notes, [])
        self.assertAlmostEqual(ratios["coroserve/nginx small c200"], 0.4)
        self.assertAlmostEqual(ratios["coroserve/coroserve-json small c200"], 0.5)
        self.assertAlmostEqual(ratios["coroserve/nginx big c1000"], 0.4)
        self.assertEqual(len(ratios), 8)

    def test_passes_on_the_baseline_itself(self):
        baseline = self.baseline_from(make_results())
        code, out, err = self.gate("--results", self.write("r.json", make_results()), "--baseline", baseline)
        self.assertEqual(code, 0, err)
        self.assertIn("pass (8 ratios", out)

    def test_passes_when_everything_is_uniformly_slower(self):
        # A slower runner slows every contender: the ratios, and so the gate, do not move.
        baseline = self.baseline_from(make_results())
        slow = make_results()
        for run in slow["runs"]:
            run["rps_ok"] *= 0.5
        code, _, err = self.gate("--results", self.write("r.json", slow), "--baseline", baseline)
        self.assertEqual(code, 0, err)

    def test_fails_on_a_synthetic_regression_and_says_why(self):
        baseline = self.baseline_from(make_results())
        slower = make_results(coroserve_small=4000.0 * 0.7)  # 30% drop on the small doc only
        code, out, err = self.gate("--results", self.write("r.json", slower), "--baseline", baseline)
        self.assertEqual(code, 1)
        self.assertIn("ratio coroserve/nginx small c200 dropped 30.0%", err)
        self.assertIn("measured 0.280, baseline 0.400, tolerance 15%", err)
        self.assertIn("--write-baseline bench/baseline.json", err)
        self.assertNotIn("big c200 dropped", err)
        self.assertIn("REGRESSION", out)

    def test_drop_within_tolerance_passes_and_tolerance_flag_overrides(self):
        baseline = self.baseline_from(make_results())
        results = self.write("r.json", make_results(coroserve_small=4000.0 * 0.9))
        self.assertEqual(self.gate("--results", results, "--baseline", baseline)[0], 0)
        self.assertEqual(self.gate("--results", results, "--baseline", baseline, "--tolerance", "0.05")[0], 1)

    def test_tolerance_comes_from_the_baseline_file(self):
        baseline = self.baseline_from(make_results(), tolerance="0.05")
        with open(baseline) as f:
            self.assertEqual(json.load(f)["tolerance"], 0.05)
        results = self.write("r.json", make_results(coroserve_small=4000.0 * 0.9))
        self.assertEqual(self.gate("--results", results, "--baseline", baseline)[0], 1)

    def test_missing_points_are_reported_not_failed(self):
        baseline = self.baseline_from(make_results())
        partial = make_results(connections=(200,), drop={("nginx", "big", 200)})
        code, out, err = self.gate("--results", self.write("r.json", partial), "--baseline", baseline)
        self.assertEqual(code, 0, err)
        self.assertIn("coroserve/nginx big c1000: in the baseline but not measured", out)
        self.assertIn("coroserve/nginx big c200: in the baseline but not measured", out)
        code, _, err = self.gate("--results", self.write("r.json", partial), "--baseline", baseline, "--require-all")
        self.assertEqual(code, 1)

    def test_new_points_are_not_gated(self):
        baseline = self.baseline_from(make_results(connections=(200,)))
        results = self.write("r.json", make_results(connections=(200, 1000)))
        code, out, _ = self.gate("--results", results, "--baseline", baseline)
        self.assertEqual(code, 0)
        self.assertIn("c1000: measured (0.400) but not in the baseline", out)

    def test_nothing_comparable_fails(self):
        baseline = self.baseline_from(make_results())
        only_coroserve = make_results(drop={(c, d, n) for c in ("nginx", "coroserve-json")
                                            for d in ("small", "big") for n in (200, 1000)})
        code, _, err = self.gate("--results", self.write("r.json", only_coroserve), "--baseline", baseline)
        self.assertEqual(code, 1)
        self.assertIn("no ratio could be compared", err)

    def test_zero_rate_is_skipped_with_a_note(self):
        results = make_results()
        for run in results["runs"]:
            if run["contender"] == "nginx" and run["doc"] == "small":
                run["rps_ok"] = 0
        ratios, notes = perf_gate.compute_ratios(results)
        self.assertNotIn("coroserve/nginx small c200", ratios)
        self.assertTrue(any("no successful requests" in n for n in notes))

    def test_only_the_mongo_endpoint_of_coroserve_counts(self):
        results = make_results()
        results["runs"].insert(0, run_entry("coroserve", "small", 200, 99999.0, endpoint="/json"))
        ratios, _ = perf_gate.compute_ratios(results)
        self.assertAlmostEqual(ratios["coroserve/nginx small c200"], 0.4)

    def test_write_baseline_keeps_description_and_records_the_source(self):
        baseline = self.baseline_from(make_results())
        with open(baseline) as f:
            doc = json.load(f)
        doc["description"] = "kept"
        with open(baseline, "w") as f:
            json.dump(doc, f)
        res = self.write("new.json", make_results(coroserve_small=3000.0))
        code, out, _ = self.gate("--results", res, "--write-baseline", baseline, "--note", "slower on purpose")
        self.assertEqual(code, 0)
        self.assertIn("wrote 8 ratios", out)
        with open(baseline) as f:
            doc = json.load(f)
        self.assertEqual(doc["description"], "kept")
        self.assertEqual(doc["tolerance"], 0.15)
        self.assertEqual(doc["source"]["note"], "slower on purpose")
        self.assertEqual(doc["source"]["runs"][0]["meta"], {"host": "test", "duration_s": 5})
        self.assertEqual(doc["source"]["runs"][0]["results"], res)
        self.assertEqual(doc["ratios"]["coroserve/nginx small c200"], 0.3)

    def test_base_branch_change_is_reported_and_optionally_gated(self):
        baseline = self.baseline_from(make_results())
        head = self.write("head.json", make_results(coroserve_big=2000.0 * 0.88))
        base = self.write("base.json", make_results())
        summary = self.path("summary.md")
        code, out, _ = self.gate("--results", head, "--baseline", baseline, "--base-results", base, "--summary", summary)
        self.assertEqual(code, 0)
        self.assertIn("against the base branch", out)
        self.assertIn("-12.0%", out)
        with open(summary) as f:
            md = f.read()
        self.assertIn("### This pull request against its base branch", md)
        self.assertIn("| coroserve/nginx big c200 | 0.400 | 0.352 | -12.0% |", md)
        code, _, err = self.gate("--results", head, "--baseline", baseline, "--base-results", base,
                                 "--gate-base", "--tolerance", "0.10")
        self.assertEqual(code, 1)
        self.assertIn("against the base branch", err)

    def test_absent_base_results_are_a_note(self):
        baseline = self.baseline_from(make_results())
        code, out, _ = self.gate("--results", self.write("r.json", make_results()), "--baseline", baseline,
                                 "--base-results", self.path("nope/results.json"))
        self.assertEqual(code, 0)
        self.assertIn("base branch results not found", out)

    def test_summary_of_a_regression_names_it(self):
        baseline = self.baseline_from(make_results())
        summary = self.path("summary.md")
        self.gate("--results", self.write("r.json", make_results(coroserve_small=1000.0)), "--baseline", baseline,
                  "--summary", summary)
        with open(summary) as f:
            md = f.read()
        self.assertIn("| coroserve/nginx small c200 | 0.400 | 0.100 | -75.0% | **REGRESSION** |", md)
        self.assertIn("**Result: regression.**", md)

    def test_several_runs_give_the_median_of_each_ratio(self):
        runs = [self.write(f"r{i}.json", make_results(coroserve_small=rate))
                for i, rate in enumerate((4000.0, 1000.0, 5000.0))]
        runs.append(self.write("partial.json", make_results(connections=(200,))))
        code, out, _ = self.gate("--results", *runs, "--write-baseline", self.path("b.json"))
        self.assertEqual(code, 0)
        with open(self.path("b.json")) as f:
            doc = json.load(f)
        self.assertEqual(doc["ratios"]["coroserve/nginx small c200"], 0.4)    # median of .4 .1 .5 .4
        self.assertEqual(doc["ratios"]["coroserve/nginx small c1000"], 0.4)   # median of .4 .1 .5
        self.assertEqual(len(doc["source"]["runs"]), 4)
        self.assertEqual(doc["source"]["runs"][1]["ratios"]["coroserve/nginx small c200"], 0.1)
        self.assertIn("median over 4", doc["source"]["method"])

    def test_another_subject_and_reference_for_reuse(self):
        results = {"runs": [run_entry("myapp", "small", 64, 300.0, endpoint="/db"),
                            run_entry("myapp", "small", 64, 900.0, endpoint="/static"),
                            run_entry("caddy", "small", 64, 1200.0)]}
        res = self.write("r.json", results)
        flags = ("--subject", "myapp", "--endpoint", "/db", "--references", "caddy")
        code, out, _ = self.gate("--results", res, "--write-baseline", self.path("b.json"), *flags)
        self.assertEqual(code, 0)
        self.assertIn("myapp/caddy small c64 = 0.2500", out)
        self.assertEqual(self.gate("--results", res, "--baseline", self.path("b.json"), *flags)[0], 0)

    def test_bad_input_exits_2(self):
        self.assertEqual(self.gate("--results", self.path("missing.json"))[0], 2)
        bad = self.path("bad.json")
        with open(bad, "w") as f:
            f.write("{not json")
        self.assertEqual(self.gate("--results", bad)[0], 2)
        self.assertEqual(self.gate("--results", self.write("r.json", {"meta": {}}))[0], 2)
        self.assertEqual(self.gate("--results", self.write("r.json", make_results()), "--tolerance", "1.5")[0], 2)

    def test_committed_baseline_is_well_formed(self):
        path = os.path.join(HERE, "..", "..", "bench", "baseline.json")
        with open(path) as f:
            doc = json.load(f)
        self.assertTrue(0 < doc["tolerance"] < 1)
        self.assertTrue(doc["source"]["note"])
        self.assertTrue(doc["ratios"])
        for key, value in doc["ratios"].items():
            self.assertRegex(key, r"^coroserve/(nginx|coroserve-json) (small|big) c\d+$")
            self.assertGreater(value, 0)


if __name__ == "__main__":
    unittest.main()
