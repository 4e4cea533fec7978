"""Tests of tools/ci/summary.py (bench results to the GitHub job summary)."""

import json
import os
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SUMMARY = os.path.join(HERE, "summary.py")


def run_summary(*args, env_summary=None):
    env = dict(os.environ)
    env.pop("GITHUB_STEP_SUMMARY", None)
    if env_summary:
        env["GITHUB_STEP_SUMMARY"] = env_summary
    return subprocess.run(["/usr/bin/python3", SUMMARY, *args], capture_output=True, text=True, env=env)


class SummaryTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)
        self.dir = self.tmp.name

    def test_appends_results_md_under_a_title(self):
        with open(os.path.join(self.dir, "results.md"), "w") as f:
            f.write("# Results\n\n## small document\n\n| contender | req/s |\n|---|---|\n| coroserve | 4000 |\n")
        out = os.path.join(self.dir, "summary.md")
        with open(out, "w") as f:
            f.write("earlier step\n")
        proc = run_summary("--results-dir", self.dir, "--title", "Benchmark (pull_request)",
                           "--artifact", "perf-results", "--out", out)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        with open(out) as f:
            text = f.read()
        self.assertTrue(text.startswith("earlier step\n## Benchmark (pull_request)\n"))
        self.assertIn("\n### Results\n", text)  # bench/run's headings are demoted under ours
        self.assertIn("\n#### small document\n", text)
        self.assertIn("| coroserve | 4000 |", text)
        self.assertIn("artifact `perf-results`", text)

    def test_uses_github_step_summary_from_the_environment(self):
        with open(os.path.join(self.dir, "results.md"), "w") as f:
            f.write("table\n")
        out = os.path.join(self.dir, "step_summary")
        proc = run_summary("--results-dir", self.dir, env_summary=out)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout, "")
        with open(out) as f:
            self.assertIn("table", f.read())

    def test_builds_a_table_from_results_json_when_md_is_missing(self):
        results = {"meta": {}, "runs": [{
            "contender": "coroserve", "endpoint": "/mongo", "doc": "small", "connections": 200,
            "rps_ok": 12345.6, "latency_ms": {"p50": 1.5, "p90": 2, "p99": 7.25, "max": 20},
            "errors": {"connect": 1, "read": 2, "write": 0, "timeout": 3}, "non2xx": 4}],
            "skipped": [{"contender": "uwsgi", "reason": "not installed"}]}
        with open(os.path.join(self.dir, "results.json"), "w") as f:
            json.dump(results, f)
        proc = run_summary("--results-dir", self.dir)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("| coroserve | /mongo | small | 200 | 12,346 | 1.5 | 7.25 | 6 | 4 |", proc.stdout)
        self.assertIn("Skipped: uwsgi", proc.stdout)

    def test_says_so_when_there_are_no_results(self):
        proc = run_summary("--results-dir", os.path.join(self.dir, "absent"))
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("the bench did not finish", proc.stdout)

    def test_truncates_below_githubs_limit(self):
        with open(os.path.join(self.dir, "results.md"), "w") as f:
            f.write("| x |\n" * 300000)
        proc = run_summary("--results-dir", self.dir)
        self.assertLess(len(proc.stdout.encode()), 1024 * 1024)
        self.assertIn("(truncated", proc.stdout)


if __name__ == "__main__":
    unittest.main()
