"""mongo-standin with TLS (a CA file) and SCRAM users through pymongo and Motor: each
mechanism forced, the mechanism negotiated through saslSupportedMechs, the password from
a file, a client certificate, and a wrong password failing with the driver's own
authentication error (OperationFailure, code 18). Certificates: make-test-certs.sh."""
import asyncio
import os
import subprocess
import tempfile
import unittest

import pymongo
from bson import ObjectId
from motor.motor_asyncio import AsyncIOMotorClient
from pymongo.errors import OperationFailure, ServerSelectionTimeoutError

import standin_proc

PASSWORD = "Py-Pa55w0rd"
MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-1")
SEED_ID = ObjectId("537416b501d53a77bb94135c")


class TlsAuthTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="standin-tls-py-")
        cls.certs = cls.tmp.name
        subprocess.run([os.environ["MAKE_TEST_CERTS"], cls.certs], check=True)
        pw_file = os.path.join(cls.certs, "bob-password")
        with open(pw_file, "w") as f:
            f.write("from-a-file\n")
        data = os.environ["BENCH_DATA_DIR"]
        cls.standin = standin_proc.Standin(
            "--seed", f"articles.articles={data}/small_doc.json",
            "--tls-cert", f"{cls.certs}/server.pem", "--tls-key", f"{cls.certs}/server.key",
            "--tls-ca", f"{cls.certs}/ca.pem",
            "--user", f"alice:{PASSWORD}", "--user-file", f"bob:{pw_file}:SCRAM-SHA-1")

    @classmethod
    def tearDownClass(cls):
        cls.standin.close()
        cls.tmp.cleanup()

    def options(self, **extra):
        opts = dict(tls=True, tlsCAFile=f"{self.certs}/ca.pem", authSource="admin",
                    serverSelectionTimeoutMS=3000)
        opts.update(extra)
        return opts

    def test_pymongo_each_mechanism(self):
        for mech in MECHANISMS:
            with self.subTest(mech=mech):
                client = pymongo.MongoClient(self.standin.uri, username="alice", password=PASSWORD,
                                             authMechanism=mech, **self.options())
                try:
                    self.assertEqual(client.articles.articles.find_one()["_id"], SEED_ID)
                    client.t[mech].insert_one({"m": mech})
                    self.assertEqual(client.t[mech].find_one()["m"], mech)
                finally:
                    client.close()

    def test_pymongo_negotiates_and_reads_password_file_user(self):
        # No mechanism: pymongo asks saslSupportedMechs and picks SHA-256 for alice, SHA-1 for bob.
        for user, password in (("alice", PASSWORD), ("bob", "from-a-file")):
            with self.subTest(user=user):
                client = pymongo.MongoClient(self.standin.uri, username=user, password=password,
                                             **self.options())
                try:
                    self.assertEqual(client.articles.articles.find_one()["_id"], SEED_ID)
                finally:
                    client.close()

    def test_pymongo_client_certificate(self):
        client = pymongo.MongoClient(self.standin.uri, username="alice", password=PASSWORD,
                                     **self.options(tlsCertificateKeyFile=f"{self.certs}/client-bundle.pem"))
        try:
            self.assertEqual(client.articles.articles.find_one()["_id"], SEED_ID)
        finally:
            client.close()

    def test_pymongo_wrong_password_and_no_credentials(self):
        for mech in MECHANISMS:
            with self.subTest(mech=mech):
                client = pymongo.MongoClient(self.standin.uri, username="alice", password="wrong",
                                             authMechanism=mech, **self.options())
                with self.assertRaises(OperationFailure) as caught:
                    client.articles.articles.find_one()
                self.assertEqual(caught.exception.code, 18)
                self.assertNotIn("wrong", str(caught.exception))
                client.close()
        client = pymongo.MongoClient(self.standin.uri, **self.options())
        with self.assertRaises(OperationFailure) as caught:
            client.articles.articles.find_one()
        self.assertEqual(caught.exception.code, 13)  # Unauthorized
        client.close()

    def test_pymongo_tls_refused_by_the_client(self):
        # The stand-in's certificate is not signed by this CA: the driver refuses it.
        client = pymongo.MongoClient(self.standin.uri, username="alice", password=PASSWORD,
                                     **self.options(tlsCAFile=f"{self.certs}/other-ca.pem",
                                                    serverSelectionTimeoutMS=1000))
        with self.assertRaises(ServerSelectionTimeoutError) as caught:
            client.articles.articles.find_one()
        self.assertIn("certificate verify failed", str(caught.exception))
        client.close()

    def test_motor_each_mechanism_and_wrong_password(self):
        async def main():
            for mech in MECHANISMS:
                client = AsyncIOMotorClient(self.standin.uri, username="alice", password=PASSWORD,
                                            authMechanism=mech, **self.options())
                try:
                    doc = await client.articles.articles.find_one()
                    self.assertEqual(doc["_id"], SEED_ID)
                finally:
                    client.close()
                client = AsyncIOMotorClient(self.standin.uri, username="alice", password="wrong",
                                            authMechanism=mech, **self.options())
                with self.assertRaises(OperationFailure) as caught:
                    await client.articles.articles.find_one()
                self.assertEqual(caught.exception.code, 18)
                client.close()
        asyncio.run(main())


if __name__ == "__main__":
    unittest.main()
