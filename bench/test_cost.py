"""Tests of bench/cost.py: the arithmetic, the client, and every route against the real server
and stand-in (natively: the valgrind runs take minutes and are exercised by the perf job)."""
import os
import socket
import threading
import unittest

import cost

BIN = os.path.join(cost.ROOT, "build/release/bin")


class ArithmeticTest(unittest.TestCase):
    def test_per_request_is_the_difference_of_two_runs_over_n(self):
        class Opts:
            reps, warmup, requests = 3, 100, 1000
        runs = {(1, 100): 26_000_000, (1, 1100): 37_000_000,
                (2, 100): 26_000_500, (2, 1100): 37_010_500,
                (3, 100): 25_999_000, (3, 1100): 36_994_000}
        entry = cost.route_entry(Opts, "json", runs)
        self.assertEqual([r["ir_per_request"] for r in entry["reps"]], [11000.0, 11010.0, 10995.0])
        self.assertEqual(entry["ir_per_request"], {"min": 10995.0, "median": 11000.0, "max": 11010.0,
                                                   "spread_pct": 0.136})
        self.assertEqual(entry["request"], "GET /json HTTP/1.1\r\nHost: cost\r\n\r\n")


    def test_the_overload_route_uses_a_fifth_of_the_requests(self):
        class Opts:
            reps, warmup, requests = 3, 100, 1000
        self.assertEqual(cost.counts_of(Opts, cost.ROUTES["overload"]), (20, 200))
        self.assertEqual(cost.counts_of(Opts, cost.ROUTES["json"]), (100, 1000))
        runs = {(rep, 20): 30_000_000 for rep in (1, 2, 3)}
        runs.update({(rep, 220): 30_000_000 + 200 * 46_000 for rep in (1, 2, 3)})
        entry = cost.route_entry(Opts, "overload", runs)
        self.assertEqual(entry["ir_per_request"]["median"], 46000.0)


class ClientTest(unittest.TestCase):
    def test_reads_pipelined_responses_split_anywhere(self):
        a, b = socket.socketpair()
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        data = (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
                b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 2\r\n\r\n{}")

        def send():
            for i in range(0, len(data), 7):
                b.sendall(data[i:i + 7])
            b.shutdown(socket.SHUT_WR)

        t = threading.Thread(target=send)
        t.start()
        status, rest = cost.read_response(a, b"")
        self.assertEqual(status, 200)
        status, rest = cost.read_response(a, rest)
        t.join()
        self.assertEqual((status, rest), (503, b""))

    def test_a_closed_or_garbled_answer_is_a_clear_failure(self):
        for data, message in ((b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", "inside a body"),
                              (b"", "before answering"), (b"garbage\r\n\r\n", "malformed response head")):
            a, b = socket.socketpair()
            b.sendall(data)
            b.close()
            with self.assertRaisesRegex(cost.Fail, message):
                cost.read_response(a, b"")
            a.close()


@unittest.skipUnless(os.access(os.path.join(BIN, "coroserve"), os.X_OK)
                     and os.access(os.path.join(BIN, "mongo-standin"), os.X_OK),
                     "build/release has no coroserve and mongo-standin")
class RoutesAgainstTheServerTest(unittest.TestCase):
    """Each route's traffic gets the status it must (the harness fails a run otherwise), and
    the native counters come back per request."""

    @classmethod
    def setUpClass(cls):
        import tempfile
        cls.tmp = tempfile.TemporaryDirectory()
        cls.standin, port = cost.start_standin(os.path.join(BIN, "mongo-standin"),
                                               os.path.join(cls.tmp.name, "standin.log"))

        class Opts:
            bin_dir = BIN
            uri = f"mongodb://127.0.0.1:{port}/?{cost.URI_OPTIONS}"
            log_dir = cls.tmp.name
            pin = []
            warmup = 5
            native_requests = 20
        cls.opts = Opts

    @classmethod
    def tearDownClass(cls):
        cls.standin.terminate()
        cls.standin.wait(10)
        cls.tmp.cleanup()

    def test_every_route(self):
        for rid in cost.ROUTES:
            with self.subTest(rid):
                native = cost.native_run(self.opts, dict(cost.ROUTES[rid], id=rid))
                self.assertEqual(native["requests"], 20)
                self.assertGreater(native["cpu_us"], 0)
                self.assertGreaterEqual(native["voluntary_ctx_switches"], 0)

    def test_a_wrong_status_fails_the_run(self):
        route = dict(cost.ROUTES["json"], id="json", target="/no/such/route")
        with self.assertRaisesRegex(cost.Fail, "status 404, expected 200"):
            cost.native_run(self.opts, route)


if __name__ == "__main__":
    unittest.main()
