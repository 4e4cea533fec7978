"""mongo-standin through Motor (asyncio, Debian's python3-motor): find_one, insert, a cursor
served by getMore, killCursors, CommandNotFound, and malformed messages."""
import asyncio
import os
import unittest

from bson import ObjectId
from motor.motor_asyncio import AsyncIOMotorClient
from pymongo import monitoring
from pymongo.errors import OperationFailure

import standin_proc


class CommandNames(monitoring.CommandListener):
    def __init__(self):
        self.names = []

    def started(self, event):
        self.names.append(event.command_name)

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


class MotorTest(unittest.TestCase):
    def setUp(self):
        data = os.environ["BENCH_DATA_DIR"]
        self.standin = standin_proc.Standin("--seed", f"articles.articles={data}/small_doc.json")
        self.commands = CommandNames()

    def tearDown(self):
        self.assertEqual(self.standin.close(), 0)

    def run_async(self, fn):
        async def main():
            client = AsyncIOMotorClient(self.standin.uri, serverSelectionTimeoutMS=3000,
                                        event_listeners=[self.commands])
            try:
                await asyncio.wait_for(fn(client), timeout=30)
            finally:
                client.close()
        asyncio.run(main())

    def test_find_insert_get_more_kill_cursors(self):
        async def body(client):
            doc = await client.articles.articles.find_one({})
            self.assertEqual(doc["_id"], ObjectId("537416b501d53a77bb94135c"))
            coll = client.t.many
            result = await coll.insert_one({"name": "motor"})
            self.assertEqual((await coll.find_one({"_id": result.inserted_id}))["name"], "motor")
            await coll.insert_many([{"i": i} for i in range(250)])
            self.commands.names.clear()
            docs = await coll.find({"name": None}, batch_size=100).to_list(length=None)
            self.assertEqual([d["i"] for d in docs], list(range(250)))
            self.assertEqual(self.commands.names.count("getMore"), 2)

            cursor = coll.find({}, batch_size=10)
            self.assertTrue(await cursor.fetch_next)
            cursor_id = cursor.cursor_id
            await cursor.close()
            # Motor may leave the killCursors to pymongo's background thread (~1 s period).
            for _ in range(50):
                if "killCursors" in self.commands.names:
                    break
                await asyncio.sleep(0.1)
            self.assertIn("killCursors", self.commands.names)
            with self.assertRaises(OperationFailure) as err:
                await client.t.command("getMore", cursor_id, collection="many")
            self.assertEqual(err.exception.code, 43)
        self.run_async(body)

    def test_unknown_command_and_malformed(self):
        async def body(client):
            with self.assertRaises(OperationFailure) as err:
                await client.admin.command("noSuchCommand")
            self.assertEqual(err.exception.code, 59)
            for name, data in standin_proc.malformed_messages().items():
                self.assertTrue(standin_proc.closed_by_server(self.standin.port, data), name)
            self.assertTrue(self.standin.running())
            self.assertEqual((await client.admin.command("ping"))["ok"], 1.0)
        self.run_async(body)


if __name__ == "__main__":
    unittest.main()
