"""Tests of bench/run's guards through the real command: a contender that cannot run is an
error unless --allow-skip, the load-average guard refuses a busy machine unless --allow-busy,
results.md opens with what was skipped, and the matrix's order of runs."""
import json
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


COROSERVE = os.path.join(os.path.dirname(HERE), "build/release/bin/coroserve")


@unittest.skipUnless(shutil.which("wrk") and shutil.which("gnuplot") and shutil.which("nginx")
                     and os.access(COROSERVE, os.X_OK), "needs wrk, gnuplot, nginx and build/release/bin/coroserve")
class MatrixOrderTest(unittest.TestCase):
    """The order in which bench/run measures the matrix, read back from each repetition's
    `order` in results.json (nginx and coroserve-json: no database needed)."""

    def setUp(self):
        self.out = tempfile.mkdtemp(prefix="bench-order-test-")
        os.chmod(self.out, 0o755)  # nginx's workers (another user) read the doc file under it

    def tearDown(self):
        shutil.rmtree(self.out, ignore_errors=True)

    def measured_order(self, *args):
        r = bench_run("--contenders", "nginx,coroserve-json", "--docs", "small", "--duration", "1", "--warmup", "0",
                      "--reps", "2", "--pause", "0", "--allow-busy", "--no-driver-load", "--out", self.out, *args)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(os.path.join(self.out, "results.json")) as f:
            results = json.load(f)
        runs = sorted((rep["order"], p["contender"], p["connections"], i + 1)
                      for p in results["runs"] for i, rep in enumerate(p["reps"]))
        return results, [run[1:] for run in runs]

    def test_interleaved_is_the_default(self):
        results, order = self.measured_order("--connections", "10,20")
        self.assertEqual(order, [("nginx", 10, 1), ("coroserve-json", 10, 1),
                                 ("nginx", 20, 1), ("coroserve-json", 20, 1),
                                 ("coroserve-json", 10, 2), ("nginx", 10, 2),
                                 ("coroserve-json", 20, 2), ("nginx", 20, 2)])
        self.assertEqual(results["meta"]["order"], "interleaved")
        # The points are still one per contender x connections, in the report's order.
        self.assertEqual([(p["contender"], p["connections"], len(p["reps"])) for p in results["runs"]],
                         [("nginx", 10, 2), ("nginx", 20, 2), ("coroserve-json", 10, 2), ("coroserve-json", 20, 2)])
        with open(os.path.join(self.out, "results.md")) as f:
            self.assertIn("order interleaved", f.read())

    def test_grouped_on_request(self):
        results, order = self.measured_order("--connections", "10", "--order", "grouped")
        self.assertEqual(order, [("nginx", 10, 1), ("nginx", 10, 2), ("coroserve-json", 10, 1),
                                 ("coroserve-json", 10, 2)])
        self.assertEqual(results["meta"]["order"], "grouped")


class MatrixStepsTest(unittest.TestCase):
    def test_interleaved_spreads_a_linear_drift_evenly(self):
        cs = ["a", "b", "c", "d", "e"]
        steps = harness.matrix_steps(cs, [200, 1000], 4, "interleaved")
        self.assertEqual(len(steps), len(cs) * 2 * 4)
        self.assertEqual(len(set(steps)), len(steps))
        # each repetition is one block holding every (connections, contender) once
        self.assertEqual([r for r, _, _ in steps], sorted(r for r, _, _ in steps))
        # at one connection count, a contender's positions over two reps add up to the same for all
        # (forward, then backward): a drift linear in time adds the same to every contender
        for n in (200, 1000):
            pos = {}
            for r in range(4):
                turn = [c for rr, nn, c in steps if rr == r and nn == n]
                self.assertEqual(turn, cs if r % 2 == 0 else cs[::-1])
                for k, c in enumerate(turn):
                    pos[c] = pos.get(c, 0) + k
            self.assertEqual(set(pos.values()), {2 * (len(cs) - 1)})

    def test_grouped_keeps_a_contender_together(self):
        self.assertEqual(harness.matrix_steps(["a", "b"], [1, 2], 2, "grouped"),
                         [(0, 1, "a"), (1, 1, "a"), (0, 2, "a"), (1, 2, "a"),
                          (0, 1, "b"), (1, 1, "b"), (0, 2, "b"), (1, 2, "b")])


class ArgsTest(unittest.TestCase):
    def test_defaults(self):
        a = harness.parse_args([])
        self.assertEqual(a.command, "matrix")
        self.assertEqual(a.max_load, 1.5)
        self.assertEqual(a.order, "interleaved")
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
