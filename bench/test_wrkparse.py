"""Unit tests for wrkparse (real wrk 4.1 outputs captured on this machine, bench/fixtures/)."""
import os
import unittest

import wrkparse

FIX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


def fixture(name):
    with open(os.path.join(FIX, name)) as f:
        return f.read()


class DurationTest(unittest.TestCase):
    def test_units(self):
        self.assertAlmostEqual(wrkparse.duration_ms("89.00us"), 0.089)
        self.assertAlmostEqual(wrkparse.duration_ms("1.63ms"), 1.63)
        self.assertAlmostEqual(wrkparse.duration_ms("1.18s"), 1180.0)
        self.assertAlmostEqual(wrkparse.duration_ms("2.00m"), 120000.0)

    def test_rejects_garbage(self):
        with self.assertRaises(ValueError):
            wrkparse.duration_ms("fast")


class ParseTest(unittest.TestCase):
    def test_clean_run(self):
        r = wrkparse.parse(fixture("wrk_nginx_c200.txt"))
        self.assertEqual(r["requests"], 226720)
        self.assertAlmostEqual(r["duration_s"], 2.01)
        self.assertAlmostEqual(r["rps"], 112829.81)
        self.assertAlmostEqual(r["rps_ok"], 226720 / 2.01)
        self.assertEqual(r["latency_ms"], {"avg": 1.63, "stdev": 1.10, "max": 11.58, "p50": 1.49, "p75": 1.90,
                                           "p90": 2.56, "p99": 5.85})
        self.assertEqual(r["errors"], {"connect": 0, "read": 0, "write": 0, "timeout": 0})
        self.assertEqual(r["non2xx"], 0)

    def test_microseconds_and_non2xx_subtracted(self):
        r = wrkparse.parse(fixture("wrk_non2xx.txt"))
        self.assertEqual(r["non2xx"], 101949)
        self.assertEqual(r["requests"], 101949)
        self.assertEqual(r["rps_ok"], 0.0)
        self.assertAlmostEqual(r["rps"], 101392.26)
        self.assertAlmostEqual(r["latency_ms"]["p50"], 0.089)
        self.assertAlmostEqual(r["latency_ms"]["p99"], 1.01)

    def test_socket_errors(self):
        r = wrkparse.parse(fixture("wrk_uwsgi_read_errors.txt"))
        self.assertEqual(r["errors"], {"connect": 0, "read": 6022, "write": 0, "timeout": 0})
        self.assertEqual(r["requests"], 6033)
        self.assertAlmostEqual(r["latency_ms"]["p99"], 103.42)

    def test_all_timed_out_has_no_latency(self):
        r = wrkparse.parse(fixture("wrk_timeouts.txt"))
        self.assertEqual(r["errors"]["timeout"], 3)
        self.assertEqual(r["requests"], 3)
        self.assertIsNone(r["latency_ms"]["p50"])
        self.assertIsNone(r["latency_ms"]["max"])

    def test_5000_connections(self):
        r = wrkparse.parse(fixture("wrk_nginx_c5000.txt"))
        self.assertEqual(r["requests"], 167655)
        self.assertAlmostEqual(r["duration_s"], 2.10)
        self.assertAlmostEqual(r["latency_ms"]["p90"], 66.31)

    def test_failed_wrk_raises(self):
        with self.assertRaises(ValueError):
            wrkparse.parse("unable to connect to 127.0.0.1:1 Connection refused\n")


class MedianTest(unittest.TestCase):
    def test_odd_even_none(self):
        self.assertEqual(wrkparse.median([3, 1, 2]), 2)
        self.assertEqual(wrkparse.median([4, 1, 2, 3]), 2.5)
        self.assertEqual(wrkparse.median([None, 5, None]), 5)
        self.assertIsNone(wrkparse.median([]))
        self.assertIsNone(wrkparse.median([None]))

    def test_summarize_takes_per_field_medians_and_keeps_reps(self):
        reps = [wrkparse.parse(fixture(n)) for n in ("wrk_nginx_c200.txt", "wrk_nginx_c5000.txt",
                                                     "wrk_uwsgi_read_errors.txt")]
        for i, r in enumerate(reps):
            r["rss_peak_kb"], r["cpu_s"] = 1000 * (i + 1), float(i)
        s = wrkparse.summarize(reps)
        self.assertAlmostEqual(s["rps"], 79905.00)
        self.assertAlmostEqual(s["latency_ms"]["p99"], 94.28)
        self.assertEqual(s["errors"]["read"], 0)
        self.assertEqual(s["rss_peak_kb"], 2000)
        self.assertEqual(s["cpu_s"], 1.0)
        self.assertEqual(len(s["reps"]), 3)
        with self.assertRaises(ValueError):
            wrkparse.summarize([])


if __name__ == "__main__":
    unittest.main()
