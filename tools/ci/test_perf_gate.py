"""Tests of tools/ci/perf-gate.py on synthetic `bench/run cost` results (no valgrind run)."""

import importlib.util
import io
import json
import os
import subprocess
import tempfile
import unittest
from contextlib import redirect_stderr, redirect_stdout

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
spec = importlib.util.spec_from_file_location("perf_gate", os.path.join(HERE, "perf-gate.py"))
perf_gate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(perf_gate)

ROUTES = {"json": 11332.0, "mongo": 68700.0, "mongo-big": 136400.0, "overload": 46455.0}


def cost_results(values=None, skip=(), spread=0.05, native=True):
    """A results.json as bench/run cost writes it; `values` overrides routes' medians."""
    values = dict(ROUTES, **(values or {}))
    runs = []
    for name, value in values.items():
        if name in skip:
            continue
        entry = {"kind": "cost", "route": name, "label": f"GET /{name}", "status": 200,
                 "ir_per_request": {"min": value * 0.9997, "median": value, "max": value * 1.0003,
                                    "spread_pct": spread},
                 "reps": []}
        if native:
            entry["native"] = {"voluntary_ctx_switches": 2.0, "involuntary_ctx_switches": 0.01, "cpu_us": 9.5}
        runs.append(entry)
    return {"meta": {"kind": "cost", "git_rev": "abc1234", "method": "test", "reps": 3,
                     "versions": {"valgrind": "valgrind-3.19.0"}},
            "runs": runs, "skipped": [{"route": r, "reason": "the server exited with 1"} for r in skip]}


def wall_results(coroserve=4000.0, nginx=10000.0, json_rate=8000.0):
    runs = [{"contender": c, "endpoint": e, "doc": "small", "connections": 200, "rps_ok": r}
            for c, e, r in (("coroserve", "/mongo", coroserve), ("nginx", "/static", nginx),
                            ("coroserve-json", "/json", json_rate))]
    return {"meta": {}, "runs": runs, "skipped": []}


class GateTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def write(self, name, obj):
        with open(self.path(name), "w") as f:
            f.write(obj if isinstance(obj, str) else json.dumps(obj))
        return self.path(name)

    def gate(self, *args):
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = perf_gate.main(list(args))
        return code, out.getvalue(), err.getvalue()

    def baseline(self, values=None, **extra):
        res = self.write("baseline-run.json", cost_results(values))
        code, out, err = self.gate("--results", res, "--write-baseline", self.path("baseline.json"))
        self.assertEqual(code, 0, err)
        if extra:
            with open(self.path("baseline.json")) as f:
                doc = json.load(f)
            doc.update(extra)
            self.write("baseline.json", doc)
        return self.path("baseline.json")

    def test_passes_on_the_baseline_itself(self):
        baseline = self.baseline()
        res = self.write("head.json", cost_results())
        code, out, err = self.gate("--results", res, "--baseline", baseline)
        self.assertEqual(code, 0, err)
        self.assertIn("perf-gate: pass (4 routes", out)

    def test_growth_within_the_tolerance_passes(self):
        baseline = self.baseline()
        res = self.write("head.json", cost_results({"mongo": 68700.0 * 1.029}))
        code, out, err = self.gate("--results", res, "--baseline", baseline)
        self.assertEqual(code, 0, err)

    def test_fails_on_a_synthetic_regression_and_names_route_values_and_change(self):
        baseline = self.baseline()
        res = self.write("head.json", cost_results({"mongo-big": 136400.0 * 1.05}))
        code, out, err = self.gate("--results", res, "--baseline", baseline)
        self.assertEqual(code, 1)
        self.assertIn("perf-gate: FAIL: route mongo-big: 143,220 instructions/request, baseline 136,400: "
                      "+5.00% (tolerance 3.0%)", err)
        self.assertNotIn("route json", err)
        self.assertIn("tools/ci/perf-baseline.sh", err)  # how to update on purpose

    def test_three_percent_on_json_fails(self):
        baseline = self.baseline()
        res = self.write("head.json", cost_results({"json": 11332.0 * 1.031}))
        code, _, err = self.gate("--results", res, "--baseline", baseline)
        self.assertEqual(code, 1)
        self.assertIn("route json:", err)

    def test_improvement_is_reported_with_the_update_command_and_passes(self):
        baseline = self.baseline()
        res = self.write("head.json", cost_results({"json": 11332.0 * 0.9}))
        summary = self.path("summary.md")
        code, out, err = self.gate("--results", res, "--baseline", baseline, "--summary", summary)
        self.assertEqual(code, 0, err)
        self.assertIn("route json: -10.00% against the baseline (11,332 -> 10,199): an improvement", out)
        self.assertIn("tools/ci/perf-baseline.sh", out)
        with open(summary) as f:
            text = f.read()
        self.assertIn("| json | 11,332 | 10,199 | -10.00% | 3.0% | 0.05% | improved |", text)
        self.assertIn("perf-gate.py --results cost-head/results.json --write-baseline bench/baseline.json", text)

    def test_a_route_of_the_baseline_not_measured_fails_with_the_reason(self):
        baseline = self.baseline()
        res = self.write("head.json", cost_results(skip=("overload",)))
        code, _, err = self.gate("--results", res, "--baseline", baseline)
        self.assertEqual(code, 1)
        self.assertIn("route overload is in the baseline (46,455) but was not measured: the server exited with 1", err)

    def test_routes_selects_what_is_gated(self):
        baseline = self.baseline()
        res = self.write("head.json", cost_results({"mongo": 99999.0}, skip=("overload",)))
        code, out, err = self.gate("--results", res, "--baseline", baseline, "--routes", "json,mongo-big")
        self.assertEqual(code, 0, err)
        code, _, err = self.gate("--results", res, "--baseline", baseline, "--routes", "json,nope")
        self.assertEqual(code, 2)
        self.assertIn("--routes names route(s) neither measured nor in the baseline: nope", err)

    def test_a_new_route_is_reported_not_gated(self):
        baseline = self.baseline()
        res = self.write("head.json", cost_results({"healthz": 9000.0}))
        code, out, err = self.gate("--results", res, "--baseline", baseline)
        self.assertEqual(code, 0, err)
        self.assertIn("route healthz: 9,000 instructions/request, not in the baseline: not gated", out)

    def test_per_route_tolerance_from_the_baseline_and_the_override(self):
        baseline = self.baseline(tolerances={"mongo-big": 0.08})
        res = self.write("head.json", cost_results({"mongo-big": 136400.0 * 1.05}))
        code, _, err = self.gate("--results", res, "--baseline", baseline)
        self.assertEqual(code, 0, err)
        code, _, err = self.gate("--results", res, "--baseline", baseline, "--tolerance", "0.04")
        self.assertEqual(code, 1)
        self.assertIn("(tolerance 4.0%)", err)

    def test_base_branch_regression_fails_even_when_the_baseline_is_met(self):
        baseline = self.baseline()
        base = self.write("base.json", cost_results({"mongo": 66000.0}))
        res = self.write("head.json", cost_results())
        code, out, err = self.gate("--results", res, "--baseline", baseline, "--base-results", base)
        self.assertEqual(code, 1)
        self.assertIn("route mongo: 68,700 instructions/request, base branch 66,000: +4.09%", err)
        self.assertIn("against the base branch (same job):", out)

    def test_base_branch_without_a_route_is_a_note_and_absent_base_too(self):
        baseline = self.baseline()
        base = self.write("base.json", cost_results(skip=("overload",)))
        res = self.write("head.json", cost_results())
        code, out, err = self.gate("--results", res, "--baseline", baseline, "--base-results", base)
        self.assertEqual(code, 0, err)
        self.assertIn("route overload: not measured on the base branch (the server exited with 1)", out)
        code, out, err = self.gate("--results", res, "--baseline", baseline,
                                   "--base-results", self.path("nope/results.json"))
        self.assertEqual(code, 0, err)
        self.assertIn("base branch results not found", out)

    def test_malformed_input_is_a_clear_error(self):
        baseline = self.baseline()
        string_count = cost_results()
        string_count["runs"][0]["ir_per_request"]["median"] = "12k"
        cases = {
            "not json": ("{nope", "is not valid JSON"),
            "no runs": ({"meta": {"kind": "cost"}}, "has no 'runs' list"),
            "a wall-clock results.json": (wall_results(), "is not a cost run (meta.kind is None"),
            "a negative count": (cost_results({"json": -5.0}), "route json: ir_per_request.median must be a positive number"),
            "a string count": (string_count, "route json: ir_per_request.median must be a positive number, got '12k'"),
        }
        for what, (content, message) in cases.items():
            with self.subTest(what):
                res = self.write("bad.json", content)
                code, _, err = self.gate("--results", res, "--baseline", baseline)
                self.assertEqual(code, 2, err)
                self.assertIn(message, err)
                self.assertTrue(err.startswith("perf-gate: error: "), err)
        code, _, err = self.gate("--results", self.path("missing.json"), "--baseline", baseline)
        self.assertEqual(code, 2)
        self.assertIn("results not found", err)
        res = self.write("head.json", cost_results())
        old_style = self.write("old-baseline.json", {"tolerance": 0.5, "ratios": {"coroserve/nginx small c200": 0.3}})
        code, _, err = self.gate("--results", res, "--baseline", old_style)
        self.assertEqual(code, 2)
        self.assertIn("baseline has no 'routes' object", err)
        code, _, err = self.gate("--results", res, "--baseline", baseline, "--tolerance", "3%")
        self.assertEqual(code, 2)
        self.assertIn("--tolerance must be a number like 0.03", err)
        code, _, err = self.gate("--results", res, "--baseline", baseline, "--tolerance", "3")
        self.assertEqual(code, 2)
        self.assertIn("must be in [0, 1)", err)

    def test_write_baseline_records_versions_not_paths_and_refuses_skipped_routes(self):
        res = self.write("run.json", cost_results())
        out = self.path("b.json")
        code, _, err = self.gate("--results", res, "--write-baseline", out, "--note", "why")
        self.assertEqual(code, 0, err)
        with open(out) as f:
            doc = json.load(f)
        self.assertEqual(doc["tolerance"], 0.03)
        self.assertEqual(doc["routes"]["mongo"]["ir_per_request"], 68700.0)
        self.assertEqual(doc["source"]["note"], "why")
        self.assertEqual(doc["source"]["versions"], {"valgrind": "valgrind-3.19.0"})
        self.assertNotIn(self.tmp.name, json.dumps(doc))
        res = self.write("skipped.json", cost_results(skip=("json",)))
        code, _, err = self.gate("--results", res, "--write-baseline", out)
        self.assertEqual(code, 2)
        self.assertIn("skipped route(s) json: a baseline needs every route measured", err)

    def test_write_baseline_over_the_former_wall_clock_baseline_takes_the_default_tolerance(self):
        old = self.write("old.json", {"tolerance": 0.5, "ratios": {"coroserve/nginx small c200": 0.3}})
        res = self.write("run.json", cost_results())
        code, _, err = self.gate("--results", res, "--write-baseline", old)
        self.assertEqual(code, 0, err)
        with open(old) as f:
            doc = json.load(f)
        self.assertEqual(doc["tolerance"], 0.03)
        self.assertNotIn("ratios", doc)

    def test_summary_comment_and_history_files(self):
        baseline = self.baseline()
        base = self.write("base.json", cost_results())
        res = self.write("head.json", cost_results({"mongo-big": 150000.0}))
        wall = self.write("wall.json", wall_results())
        files = {k: self.path(f"{k}.out") for k in ("summary", "comment", "bench")}
        code, _, _ = self.gate("--results", res, "--baseline", baseline, "--base-results", base,
                               "--summary", files["summary"], "--comment", files["comment"],
                               "--benchmark-json", files["bench"], "--wall-results", wall,
                               "--wall-base-results", wall)
        self.assertEqual(code, 1)
        with open(files["comment"]) as f:
            comment = f.read()
        self.assertTrue(comment.startswith(perf_gate.COMMENT_MARKER))
        self.assertIn("| mongo-big | 136,400 | 150,000 | +9.97% | 3.0% | 0.05% | **REGRESSION** |", comment)
        self.assertIn("**Against the base branch (built and measured in this job)**", comment)
        self.assertIn("### Wall-clock ratios (informational, not gated)", comment)
        self.assertIn("| coroserve/nginx small c200 | 0.400 | 0.400 | +0.00% |", comment)
        self.assertIn("| json | 2.0 | 0.01 | 9.5 | - |", comment)  # native, informational
        self.assertIn("**Result: FAIL.**", comment)
        with open(files["summary"]) as f:
            self.assertEqual(f.read(), comment)
        with open(files["bench"]) as f:
            history = json.load(f)
        self.assertEqual({e["unit"] for e in history}, {"instructions/request"})
        self.assertIn({"name": "mongo-big: GET /mongo-big", "unit": "instructions/request", "value": 150000.0,
                       "range": "spread 0.05%",
                       "extra": "cpu_us=9.5; involuntary_ctx_switches=0.01; voluntary_ctx_switches=2.0"}, history)

    def test_noisy_route_gets_a_note(self):
        baseline = self.baseline()
        res = self.write("head.json", cost_results(spread=2.0))
        code, out, _ = self.gate("--results", res, "--baseline", baseline)
        self.assertEqual(code, 0)
        self.assertIn("route json: spread 2.00% between repetitions is more than half the tolerance", out)

    def test_committed_baseline_is_well_formed_and_has_no_machine_path(self):
        path = os.path.join(ROOT, "bench", "baseline.json")
        with open(path) as f:
            doc = json.load(f)
        routes = perf_gate.baseline_routes(doc, path)
        self.assertEqual(set(routes), {"json", "mongo", "mongo-big", "mongo-doc", "not-found", "bad-request",
                                       "overload"})
        self.assertEqual(doc["tolerance"], 0.03)
        text = json.dumps(doc)
        for fragment in ("/tmp/", "/work/", "/home/"):
            self.assertNotIn(fragment, text)

    def test_the_gate_script_passes_on_the_committed_baseline_and_honours_its_settings(self):
        with open(os.path.join(ROOT, "bench", "baseline.json")) as f:
            committed = json.load(f)
        values = {k: v["ir_per_request"] for k, v in committed["routes"].items()}
        head = self.write("head.json", cost_results(values))
        script = os.path.join(HERE, "perf-gate.sh")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PERF_", "GITHUB_"))}
        proc = subprocess.run([script, head], capture_output=True, text=True, env=env)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        worse = dict(values, json=values["json"] * 1.04)
        head = self.write("head.json", cost_results(worse))
        proc = subprocess.run([script, head], capture_output=True, text=True, env=env)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("perf-gate: FAIL: route json:", proc.stderr)
        proc = subprocess.run([script, head], capture_output=True, text=True, env=dict(env, PERF_TOLERANCE="0.05"))
        self.assertEqual(proc.returncode, 0, proc.stderr)
        proc = subprocess.run([script, head], capture_output=True, text=True, env=dict(env, PERF_ROUTES="mongo"))
        self.assertEqual(proc.returncode, 0, proc.stderr)
        proc = subprocess.run([script, head], capture_output=True, text=True, env=dict(env, PERF_TOLERANCE="1; rm -rf /"))
        self.assertEqual(proc.returncode, 2)
        self.assertIn("PERF_TOLERANCE must look like 0.03", proc.stderr)


if __name__ == "__main__":
    unittest.main()
