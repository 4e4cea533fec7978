"""decompose's pure parts: the prediction and the V8 profile summary (a small .cpuprofile in
the format node --cpu-prof writes: nodes with callFrames, samples and timeDeltas)."""
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

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
