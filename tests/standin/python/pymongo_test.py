"""mongo-standin through pymongo (Debian's python3-pymongo): find_one, insert, a cursor
served by getMore, killCursors, CommandNotFound, injected faults, malformed messages."""
import os
import time
import unittest

import pymongo
from bson import ObjectId
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


class PymongoTest(unittest.TestCase):
    def setUp(self):
        data = os.environ["BENCH_DATA_DIR"]
        self.standin = standin_proc.Standin("--seed", f"articles.articles={data}/small_doc.json")
        self.commands = CommandNames()
        self.client = pymongo.MongoClient(self.standin.uri, serverSelectionTimeoutMS=3000,
                                          event_listeners=[self.commands])

    def tearDown(self):
        self.client.close()
        self.assertEqual(self.standin.close(), 0)

    def test_find_one_seeded(self):
        doc = self.client.articles.articles.find_one()
        self.assertEqual(doc, {"_id": ObjectId("537416b501d53a77bb94135c"),
                               "canonicalUrl": "http://foo.com"})
        self.assertIsNone(self.client.articles.articles.find_one({"canonicalUrl": "nope"}))

    def test_insert_and_find(self):
        coll = self.client.shop.items
        result = coll.insert_one({"name": "pen", "qty": 3})
        self.assertIsInstance(result.inserted_id, ObjectId)
        self.assertEqual(coll.find_one({"_id": result.inserted_id})["name"], "pen")
        self.assertEqual(coll.insert_many([{"n": i} for i in range(5)]).inserted_ids.__len__(), 5)
        self.assertEqual(self.client.shop.command("count", "items")["n"], 6)
        self.assertEqual(coll.delete_one({"name": "pen"}).deleted_count, 1)
        self.assertIn("items", self.client.shop.list_collection_names())

    def test_cursor_with_get_more(self):
        coll = self.client.t.many
        coll.insert_many([{"i": i} for i in range(250)])
        self.commands.names.clear()
        values = [d["i"] for d in coll.find({}, batch_size=100)]
        self.assertEqual(values, list(range(250)))
        self.assertEqual(self.commands.names.count("getMore"), 2)
        self.assertEqual(len(list(coll.find({}).skip(5).limit(20))), 20)

    def test_kill_cursors(self):
        coll = self.client.t.k
        coll.insert_many([{"i": i} for i in range(30)])
        cursor = coll.find({}, batch_size=10)
        next(cursor)
        cursor_id = cursor.cursor_id
        self.assertNotEqual(cursor_id, 0)
        cursor.close()
        self.assertIn("killCursors", self.commands.names)
        with self.assertRaises(OperationFailure) as err:
            self.client.t.command("getMore", cursor_id, collection="k")
        self.assertEqual(err.exception.code, 43)

    def test_unknown_command(self):
        with self.assertRaises(OperationFailure) as err:
            self.client.admin.command("noSuchCommand")
        self.assertEqual(err.exception.code, 59)
        self.assertEqual(err.exception.details["codeName"], "CommandNotFound")

    def test_injected_failure_and_latency(self):
        # 8000 is a plain server error for pymongo (11600 would mean "not primary").
        self.client.admin.command("standinFault", 1, failNext=1, failCode=8000)
        with self.assertRaises(OperationFailure) as err:
            self.client.admin.command("ping")
        self.assertEqual(err.exception.code, 8000)
        self.client.admin.command("ping")
        self.standin.control("latency 300")
        start = time.monotonic()
        self.client.admin.command("ping")
        self.assertGreaterEqual(time.monotonic() - start, 0.3)

    def test_malformed_messages_close_the_connection_only(self):
        self.client.admin.command("ping")
        for name, data in standin_proc.malformed_messages().items():
            with self.subTest(name):
                self.assertTrue(standin_proc.closed_by_server(self.standin.port, data))
                self.assertTrue(standin_proc.raw_ping_ok(self.standin.port))
        self.assertTrue(self.standin.running())
        self.assertEqual(self.client.admin.command("ping")["ok"], 1.0)


if __name__ == "__main__":
    unittest.main()
