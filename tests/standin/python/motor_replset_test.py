"""mongo-standin as a replica set (--replset rs0 --members 3) through Motor 2.3 (asyncio):
the set discovered from one seed host, reads landing where the read preference says (the
stand-in's per-member find counters), a stepdown followed."""
import asyncio
import os
import time
import unittest

from motor.motor_asyncio import AsyncIOMotorClient
from pymongo import ReadPreference

import standin_proc


async def wait_until(check, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


class MotorReplsetTest(unittest.TestCase):
    def setUp(self):
        data = os.environ["BENCH_DATA_DIR"]
        self.standin = standin_proc.Standin(
            "--replset", "rs0", "--members", "3", "--election-ms", "300",
            "--seed", f"articles.articles={data}/small_doc.json")
        self.members = [("127.0.0.1", self.standin.port + i) for i in range(3)]

    def tearDown(self):
        self.assertEqual(self.standin.close(), 0)

    def run_async(self, body):
        async def main():
            # Member 0 only: the rest must be discovered.
            client = AsyncIOMotorClient(
                f"mongodb://127.0.0.1:{self.standin.port}/?replicaSet=rs0",
                serverSelectionTimeoutMS=5000, heartbeatFrequencyMS=500, localThresholdMS=1000)
            try:
                await asyncio.wait_for(body(client), timeout=60)
            finally:
                client.close()
        asyncio.run(main())

    def test_discovery_and_read_preferences(self):
        async def body(client):
            coll = client.articles.articles
            self.assertIsNotNone(await coll.find_one())
            both = {self.members[1], self.members[2]}
            self.assertTrue(await wait_until(lambda: client.secondaries == both),
                            f"secondaries: {client.secondaries}")
            self.assertEqual(client.primary, self.members[0])

            async def finds(preference, n):
                reader = coll.with_options(read_preference=preference)
                before = self.standin.replset()["finds"]
                for _ in range(n):
                    self.assertIsNotNone(await reader.find_one())
                return [a - b for a, b in zip(self.standin.replset()["finds"], before)]

            self.assertEqual(await finds(ReadPreference.PRIMARY, 10), [10, 0, 0])
            delta = await finds(ReadPreference.SECONDARY, 40)
            self.assertEqual((delta[0], delta[1] + delta[2]), (0, 40), delta)
            self.assertTrue(delta[1] > 0 and delta[2] > 0, delta)
            delta = await finds(ReadPreference.SECONDARY_PREFERRED, 10)
            self.assertEqual((delta[0], sum(delta)), (0, 10), delta)
        self.run_async(body)

    def test_stepdown_is_followed(self):
        async def body(client):
            writes = client.t.writes
            await writes.insert_one({"n": 1})
            self.assertIn(" primary=-1 ", self.standin.control("stepdown"))
            # Waits in server selection for the election, or is retried after
            # NotWritablePrimary.
            await writes.insert_one({"n": 2})
            self.assertEqual(self.standin.replset()["primary"], 1)
            self.assertTrue(await wait_until(lambda: client.primary == self.members[1]),
                            f"primary: {client.primary}")
            self.assertEqual((await client.t.command("count", "writes"))["n"], 2)
        self.run_async(body)


if __name__ == "__main__":
    unittest.main()
