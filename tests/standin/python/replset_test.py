"""mongo-standin as a replica set (--replset rs0 --members 3) through pymongo (Debian's
python3-pymongo 3.11): the set discovered from one seed host, reads landing where the read
preference says (the stand-in's per-member find counters), a stepdown followed, a killed
secondary avoided, a partitioned primary; and the member rules on the raw wire: an awaitable
hello waits, writes only on the primary (10107), secondary reads only when allowed (13435),
the controls through standinFault."""
import os
import socket
import struct
import subprocess
import threading
import time
import unittest

import bson
import pymongo
from bson.int64 import Int64
from pymongo import ReadPreference
from pymongo.errors import ServerSelectionTimeoutError

import standin_proc

ELECTION_MS = 300
MORE_TO_COME, EXHAUST_ALLOWED = 1 << 1, 1 << 16  # OP_MSG flagBits


def eventually(check, timeout=10.0):
    """Polls check() every 50 ms for at most `timeout` seconds; whether it came true."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


class Wire:
    """One raw connection to a member, speaking OP_MSG with the bson module's encoder."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=15.0)
        self.request_id = 0

    def close(self):
        self.sock.close()

    def _recv(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed by the stand-in")
            data += chunk
        return data

    def send(self, doc, flags=0):
        """Sends one OP_MSG; returns its requestID."""
        self.request_id += 1
        payload = struct.pack("<I", flags) + b"\x00" + bson.encode(doc)
        header = struct.pack("<iiii", 16 + len(payload), self.request_id, 0, 2013)
        self.sock.sendall(header + payload)
        return self.request_id

    def receive(self):
        """One OP_MSG reply: (requestID, responseTo, flagBits, document)."""
        length, request_id, response_to, opcode = struct.unpack("<iiii", self._recv(16))
        rest = self._recv(length - 16)
        if opcode != 2013:
            raise AssertionError(f"reply with opcode {opcode}")
        flags = struct.unpack("<I", rest[:4])[0]
        return request_id, response_to, flags, bson.decode(rest[5:])  # after the section kind

    def command(self, doc):
        sent = self.send(doc)
        _, response_to, flags, reply = self.receive()
        if response_to != sent or flags & MORE_TO_COME:
            raise AssertionError(f"reply to {response_to} (sent {sent}), flags {flags:#x}")
        return reply


class ReplsetTest(unittest.TestCase):
    def setUp(self):
        data = os.environ["BENCH_DATA_DIR"]
        self.standin = standin_proc.Standin(
            "--replset", "rs0", "--members", "3", "--election-ms", str(ELECTION_MS),
            "--seed", f"articles.articles={data}/small_doc.json")
        self.ports = [self.standin.port + i for i in range(3)]
        # Only member 0 in the URI: the rest must be discovered. A wide latency window so
        # that both secondaries stay eligible on a loaded machine.
        self.client = pymongo.MongoClient(
            f"mongodb://127.0.0.1:{self.ports[0]}/?replicaSet=rs0",
            serverSelectionTimeoutMS=5000, heartbeatFrequencyMS=500, localThresholdMS=1000)
        self.wires = []

    def tearDown(self):
        for wire in self.wires:
            wire.close()
        self.client.close()
        self.assertEqual(self.standin.close(), 0)

    def member(self, i):
        return ("127.0.0.1", self.ports[i])

    def host(self, i):
        return f"127.0.0.1:{self.ports[i]}"

    def wire(self, i):
        w = Wire(self.ports[i])
        self.wires.append(w)
        return w

    def wait_for_both_secondaries(self):
        self.assertTrue(eventually(
            lambda: self.client.secondaries == {self.member(1), self.member(2)}),
            f"secondaries: {self.client.secondaries}")

    def test_discovery_from_one_seed(self):
        self.assertEqual(self.client.admin.command("ping")["ok"], 1.0)
        self.wait_for_both_secondaries()
        self.assertEqual(self.client.primary, self.member(0))
        self.assertEqual(self.client.nodes, {self.member(i) for i in range(3)})

    def test_reads_land_where_the_read_preference_says(self):
        coll = self.client.articles.articles
        self.assertIsNotNone(coll.find_one())
        self.wait_for_both_secondaries()

        def finds(preference, n):
            reader = coll.with_options(read_preference=preference)
            before = self.standin.replset()["finds"]
            for _ in range(n):
                self.assertIsNotNone(reader.find_one())
            after = self.standin.replset()["finds"]
            return [a - b for a, b in zip(after, before)]

        self.assertEqual(finds(ReadPreference.PRIMARY, 10), [10, 0, 0])
        self.assertEqual(finds(ReadPreference.PRIMARY_PREFERRED, 10), [10, 0, 0])
        delta = finds(ReadPreference.SECONDARY, 40)
        self.assertEqual(delta[0], 0, delta)
        self.assertEqual(delta[1] + delta[2], 40, delta)
        # A random pick among two: 40 reads on one alone would be a 1 in 2^39 chance.
        self.assertGreater(delta[1], 0, delta)
        self.assertGreater(delta[2], 0, delta)
        delta = finds(ReadPreference.SECONDARY_PREFERRED, 10)
        self.assertEqual((delta[0], sum(delta)), (0, 10), delta)
        self.assertEqual(sum(finds(ReadPreference.NEAREST, 10)), 10)

    def test_stepdown_is_followed(self):
        writes = self.client.t.writes
        writes.insert_one({"n": 1})
        before = self.standin.replset()
        self.assertEqual(before["primary"], 0)
        self.assertIn(" primary=-1 ", self.standin.control("stepdown"))
        # Waits in server selection for the election, or is retried after NotWritablePrimary.
        writes.insert_one({"n": 2})
        after = self.standin.replset()
        self.assertEqual(after["primary"], 1)
        self.assertEqual(after["term"], before["term"] + 1)
        self.assertTrue(eventually(lambda: self.client.primary == self.member(1)),
                        f"primary: {self.client.primary}")
        self.assertEqual(self.client.t.command("count", "writes")["n"], 2)
        reads = self.standin.replset()["finds"]
        self.assertIsNotNone(self.client.articles.articles.find_one())
        self.assertEqual([a - b for a, b in zip(self.standin.replset()["finds"], reads)], [0, 1, 0])

    def test_killed_secondary_is_avoided_then_used_again(self):
        self.assertIsNotNone(self.client.articles.articles.find_one())
        self.wait_for_both_secondaries()
        reader = self.client.articles.articles.with_options(
            read_preference=ReadPreference.SECONDARY)
        self.standin.control("kill 2")
        before = self.standin.replset()
        self.assertEqual(before["up"], [1, 1, 0])
        # A read that still picks member 2 fails to connect and is retried on member 1.
        for _ in range(20):
            self.assertIsNotNone(reader.find_one())
        after = self.standin.replset()
        self.assertEqual([a - b for a, b in zip(after["finds"], before["finds"])], [0, 20, 0])
        self.standin.control("revive 2")
        self.assertTrue(eventually(lambda: self.member(2) in self.client.secondaries, 15),
                        f"secondaries: {self.client.secondaries}")

        def member_2_reads():
            reader.find_one()
            return self.standin.replset()["finds"][2] > 0
        self.assertTrue(eventually(member_2_reads, 10))

    def test_partitioned_primary(self):
        self.assertEqual(self.client.admin.command("ping")["ok"], 1.0)
        self.standin.control("partition 0")
        st = self.standin.replset()
        self.assertEqual((st["primary"], st["partitioned"]), (0, [1, 0, 0]))
        # A client that comes through member 1 learns the primary but cannot reach it.
        other = pymongo.MongoClient(
            f"mongodb://127.0.0.1:{self.ports[1]}/?replicaSet=rs0",
            serverSelectionTimeoutMS=1500, heartbeatFrequencyMS=500)
        try:
            with self.assertRaises(ServerSelectionTimeoutError):
                other.articles.articles.find_one()
            secondary = other.articles.articles.with_options(
                read_preference=ReadPreference.SECONDARY)
            self.assertIsNotNone(secondary.find_one())
            self.standin.control("heal 0")
            self.assertTrue(eventually(lambda: other.primary == self.member(0), 15))
            self.assertIsNotNone(other.articles.articles.find_one())
        finally:
            other.close()

    def test_exhaust_hello_streams_replies(self):
        wire = self.wire(0)
        version = wire.command({"hello": 1, "$db": "admin"})["topologyVersion"]
        # Up to date, with exhaustAllowed: a stream of moreToCome replies, each answering the
        # one before, one per maxAwaitTimeMS while nothing changes; no further request.
        start = time.monotonic()
        previous = wire.send({"hello": 1, "topologyVersion": version, "maxAwaitTimeMS": 300,
                              "$db": "admin"}, EXHAUST_ALLOWED)
        for _ in range(3):
            reply_id, response_to, flags, reply = wire.receive()
            self.assertEqual(response_to, previous)
            self.assertTrue(flags & MORE_TO_COME, f"flags {flags:#x}")
            self.assertTrue(reply["isWritablePrimary"])
            self.assertEqual(reply["topologyVersion"], version)
            previous = reply_id
        self.assertGreaterEqual(time.monotonic() - start, 0.9)
        # A change is streamed at once (well before maxAwaitTimeMS), on a secondary here.
        other = self.wire(1)
        version1 = other.command({"hello": 1, "$db": "admin"})["topologyVersion"]
        first = other.send({"hello": 1, "topologyVersion": version1, "maxAwaitTimeMS": 10000,
                            "$db": "admin"}, EXHAUST_ALLOWED)
        self.standin.control("stepdown")
        start = time.monotonic()
        _, response_to, flags, reply = other.receive()
        self.assertEqual(response_to, first)
        self.assertTrue(flags & MORE_TO_COME)
        self.assertNotIn("primary", reply)  # electing
        self.assertGreater(reply["topologyVersion"]["counter"], version1["counter"])
        # The election's end follows on the same stream, with member 1 as the primary.
        _, _, flags, reply = other.receive()
        self.assertTrue(flags & MORE_TO_COME)
        self.assertTrue(reply["isWritablePrimary"])
        self.assertLess(time.monotonic() - start, 5.0)

    def test_awaitable_hello_waits_for_a_change(self):
        wire = self.wire(1)
        first = wire.command({"hello": 1, "$db": "admin"})
        self.assertIs(first["isWritablePrimary"], False)
        self.assertIs(first["secondary"], True)
        self.assertEqual(first["setName"], "rs0")
        self.assertEqual(first["setVersion"], 1)
        self.assertEqual(first["hosts"], [self.host(i) for i in range(3)])
        self.assertEqual(first["primary"], self.host(0))
        self.assertEqual(first["me"], self.host(1))
        self.assertNotIn("electionId", first)
        version = first["topologyVersion"]
        self.assertIsInstance(version["counter"], Int64)
        primary_hello = self.wire(0).command({"isMaster": 1, "$db": "admin"})
        self.assertIs(primary_hello["ismaster"], True)
        self.assertIs(primary_hello["secondary"], False)
        self.assertIsInstance(primary_hello["electionId"], bson.ObjectId)

        # Up to date and nothing changes: answered after maxAwaitTimeMS, not before.
        start = time.monotonic()
        again = wire.command({"hello": 1, "topologyVersion": version, "maxAwaitTimeMS": 400,
                              "$db": "admin"})
        self.assertGreaterEqual(time.monotonic() - start, 0.35)
        self.assertEqual(again["topologyVersion"], version)

        # Behind (an older counter): answered at once.
        stale = {"processId": version["processId"], "counter": Int64(version["counter"] - 1)}
        start = time.monotonic()
        wire.command({"hello": 1, "topologyVersion": stale, "maxAwaitTimeMS": 10000,
                      "$db": "admin"})
        self.assertLess(time.monotonic() - start, 3.0)

        # A stepdown during the wait answers it with the new state; the next wait ends when
        # member 1 wins the election.
        timer = threading.Timer(0.3, lambda: self.standin.control("stepdown"))
        timer.start()
        start = time.monotonic()
        changed = wire.command({"hello": 1, "topologyVersion": version, "maxAwaitTimeMS": 10000,
                                "$db": "admin"})
        self.assertLess(time.monotonic() - start, 5.0)
        timer.join()
        self.assertGreater(changed["topologyVersion"]["counter"], version["counter"])
        for _ in range(5):
            if changed.get("isWritablePrimary"):
                break
            changed = wire.command({"hello": 1, "topologyVersion": changed["topologyVersion"],
                                    "maxAwaitTimeMS": 5000, "$db": "admin"})
        self.assertIs(changed["isWritablePrimary"], True)
        self.assertEqual(changed["primary"], self.host(1))
        self.assertIsInstance(changed["electionId"], bson.ObjectId)
        self.assertGreater(changed["electionId"], primary_hello["electionId"])

    def test_member_rules_on_the_wire(self):
        primary, secondary = self.wire(0), self.wire(1)
        for body in ({"insert": "w", "documents": [{"a": 1}], "$db": "t"},
                     {"delete": "w", "deletes": [{"q": {}, "limit": 0}], "$db": "t"},
                     {"drop": "w", "$db": "t"}):
            r = secondary.command(body)
            self.assertEqual((r["ok"], r["code"], r["codeName"]),
                             (0.0, 10107, "NotWritablePrimary"), body)
        for preference in (None, {"mode": "primary"}):
            body = {"find": "articles", "filter": {}, "$db": "articles"}
            if preference:
                body["$readPreference"] = preference
            r = secondary.command(body)
            self.assertEqual((r["ok"], r["code"], r["codeName"]),
                             (0.0, 13435, "NotPrimaryNoSecondaryOk"), body)
        r = secondary.command({"find": "articles", "filter": {}, "$db": "articles",
                               "$readPreference": {"mode": "secondaryPreferred"}})
        self.assertEqual((r["ok"], len(r["cursor"]["firstBatch"])), (1.0, 1))
        self.assertEqual(secondary.command({"ping": 1, "$db": "admin"})["ok"], 1.0)
        # One store: what the primary takes, a secondary serves at once.
        self.assertEqual(primary.command({"insert": "w", "documents": [{"a": 1}],
                                          "$db": "t"})["n"], 1)
        r = secondary.command({"find": "w", "filter": {}, "$db": "t",
                               "$readPreference": {"mode": "secondary"}})
        self.assertEqual([d["a"] for d in r["cursor"]["firstBatch"]], [1])
        self.assertEqual(self.standin.replset()["finds"], [0, 2, 0])

    def test_controls_through_standin_fault(self):
        wire = self.wire(2)
        r = wire.command({"standinFault": 1, "stepDown": True, "$db": "admin"})
        self.assertEqual((r["ok"], r["replset"]["primary"]), (1.0, -1))
        self.assertTrue(eventually(lambda: self.standin.replset()["primary"] == 1))
        r = wire.command({"standinFault": 1, "killMember": 7, "$db": "admin"})
        self.assertEqual((r["ok"], r["code"]), (0.0, 2))
        self.assertIn("no member 7", r["errmsg"])
        r = wire.command({"standinFault": 1, "killMember": 0, "$db": "admin"})
        self.assertEqual((r["ok"], r["replset"]["up"]), (1.0, [False, True, True]))
        self.assertTrue(standin_proc.closed_by_server(self.ports[0], b""))
        r = wire.command({"standinFault": 1, "reviveMember": 0, "partitionMember": 1,
                          "$db": "admin"})
        self.assertEqual((r["replset"]["up"], r["replset"]["partitioned"]),
                         ([True, True, True], [False, True, False]))
        self.assertEqual(r["replset"]["finds"], [0, 0, 0])
        with self.assertRaises(RuntimeError):  # answered "error no member 3 ..."
            self.standin.control("kill 3")
        with self.assertRaises(RuntimeError):
            self.standin.control("heal 0")  # not partitioned


class StandaloneTest(unittest.TestCase):
    def test_replset_controls_need_a_replset(self):
        standin = standin_proc.Standin()
        try:
            with self.assertRaises(RuntimeError):
                standin.control("rs")
            wire = Wire(standin.port)
            r = wire.command({"standinFault": 1, "stepDown": True, "$db": "admin"})
            wire.close()
            self.assertEqual((r["ok"], r["code"]), (0.0, 2))
            hello = wire_hello(standin.port)
            self.assertNotIn("setName", hello)
            self.assertNotIn("topologyVersion", hello)
        finally:
            self.assertEqual(standin.close(), 0)

    def test_bad_options(self):
        exe = os.environ["STANDIN_EXE"]
        for args in (["--members", "3"], ["--election-ms", "10"],
                     ["--replset", "rs0", "--members", "0"], ["--replset", ""]):
            run = subprocess.run([exe, "--port", "0", *args], capture_output=True, text=True,
                                 timeout=10)
            self.assertEqual(run.returncode, 2, args)
            self.assertIn("see --help", run.stderr, args)


def wire_hello(port):
    wire = Wire(port)
    try:
        return wire.command({"hello": 1, "$db": "admin"})
    finally:
        wire.close()


if __name__ == "__main__":
    unittest.main()
