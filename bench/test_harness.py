"""Tests of bench/run's guards through the real command: a contender that cannot run is an
error unless --allow-skip, the load-average guard refuses a busy machine unless --allow-busy,
and results.md opens with what was skipped."""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
RUN = os.path.join(HERE, "run")
sys.path.insert(0, HERE)

import harness  # noqa: E402


def bench_run(*args, timeout=120):
    return subprocess.run([RUN, "--no-build", "--lock-wait", "0", *args], capture_output=True, text=True,
                          timeout=timeout)


@unittest.skipUnless(shutil.which("wrk") and shutil.which("gnuplot"), "bench/run needs wrk and gnuplot")
class RunGuardsTest(unittest.TestCase):
    def setUp(self):
        self.out = tempfile.mkdtemp(prefix="bench-harness-test-")

    def tearDown(self):
        shutil.rmtree(self.out, ignore_errors=True)

    def common(self):
        # coroserve needs the stand-in: pointing --standin at nothing makes it unable to run.
        return ["--contenders", "coroserve", "--docs", "small", "--connections", "10", "--duration", "1",
                "--reps", "1", "--standin", "/nonexistent/mongo-standin", "--out", self.out]

    def test_missing_contender_is_an_error(self):
        r = bench_run(*self.common(), "--allow-busy")
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("cannot run", r.stdout)
        self.assertIn("coroserve: no MongoDB stand-in", r.stdout)
        with open(os.path.join(self.out, "results.md")) as f:
            md = f.read()
        self.assertIn("The run stopped early", md.splitlines()[2])

    def test_allow_skip_runs_on_and_lists_the_skipped_first(self):
        r = bench_run(*self.common(), "--allow-busy", "--allow-skip")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(os.path.join(self.out, "results.md")) as f:
            head = f.read().splitlines()[:8]
        self.assertTrue(any(line.startswith("**Skipped (1) with --allow-skip") for line in head), head)
        self.assertTrue(any(line.startswith("- coroserve: no MongoDB stand-in") for line in head), head)

    def test_busy_machine_is_refused(self):
        # Every load average is above -1: the guard must refuse (after --load-wait 0 s).
        r = bench_run(*self.common(), "--allow-skip", "--max-load", "-1", "--load-wait", "0")
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("--allow-busy", r.stdout)
        self.assertFalse(os.path.exists(os.path.join(self.out, "results.json")))

    def test_allow_busy_marks_the_results(self):
        r = bench_run(*self.common(), "--allow-skip", "--max-load", "-1", "--allow-busy")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(os.path.join(self.out, "results.md")) as f:
            head = "\n".join(f.read().splitlines()[:6])
        self.assertIn("Measured on a busy machine (--allow-busy)", head)


class ArgsTest(unittest.TestCase):
    def test_defaults(self):
        a = harness.parse_args([])
        self.assertEqual(a.command, "matrix")
        self.assertEqual(a.max_load, 1.5)
        self.assertFalse(a.allow_skip or a.allow_busy)
        self.assertEqual(len(a.contenders), len(harness.cont.all_contenders()))

    def test_ci_mode_allows_a_busy_runner(self):
        a = harness.parse_args(["--ci"])
        self.assertTrue(a.allow_busy)
        self.assertEqual(a.contenders, ["coroserve", "nginx", "coroserve-json"])

    def test_every_step_is_a_command(self):
        for name in list(harness.STEPS) + ["all", "report"]:
            self.assertEqual(harness.parse_args([name]).command, name)
        for name in harness.ALL_STEPS:
            self.assertIn(name, harness.STEPS)

    def test_help_documents_every_option(self):
        r = subprocess.run([RUN, "--help"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0)
        for opt in ("--allow-skip", "--allow-busy", "--max-load", "--load-wait", "--full", "--no-build"):
            self.assertIn(opt, r.stdout)


if __name__ == "__main__":
    unittest.main()
