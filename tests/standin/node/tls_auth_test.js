// mongo-standin with TLS (a CA file) and SCRAM users through the Node.js `mongodb` driver:
// each mechanism forced, the mechanism negotiated, and a wrong password failing with the
// driver's own error (MongoServerError, code 18). Certificates: make-test-certs.sh.
// Run: STANDIN_EXE=... BENCH_DATA_DIR=... MAKE_TEST_CERTS=... node tls_auth_test.js
'use strict';
const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { loadDriver, startStandin } = require('./standin.js');
const { MongoClient, MongoServerError } = loadDriver();

const PASSWORD = 'Node-Pa55w0rd';
const certs = fs.mkdtempSync(path.join(os.tmpdir(), 'standin-tls-node-'));
execFileSync(process.env.MAKE_TEST_CERTS, [certs]);
after(() => fs.rmSync(certs, { recursive: true, force: true }));

test('TLS + SCRAM-SHA-256 / SCRAM-SHA-1 / negotiated; wrong password is code 18', async () => {
  const s = await startStandin(
    '--seed', `articles.articles=${process.env.BENCH_DATA_DIR}/small_doc.json`,
    '--tls-cert', `${certs}/server.pem`, '--tls-key', `${certs}/server.key`,
    '--user', `alice:${PASSWORD}`);
  try {
    const base = `mongodb://alice:%s@127.0.0.1:${s.port}/?tls=true&authSource=admin` +
      `&tlsCAFile=${encodeURIComponent(certs + '/ca.pem')}&serverSelectionTimeoutMS=3000`;
    for (const mech of ['SCRAM-SHA-256', 'SCRAM-SHA-1', null]) {
      const uri = base.replace('%s', PASSWORD) + (mech ? `&authMechanism=${mech}` : '');
      const client = new MongoClient(uri);
      try {
        const doc = await client.db('articles').collection('articles').findOne({});
        assert.equal(doc._id.toHexString(), '537416b501d53a77bb94135c', `${mech}`);
      } finally {
        await client.close();
      }
    }
    for (const mech of ['SCRAM-SHA-256', 'SCRAM-SHA-1']) {
      const client = new MongoClient(base.replace('%s', 'wrong') + `&authMechanism=${mech}`);
      await assert.rejects(client.db('articles').collection('articles').findOne({}), (e) => {
        assert.ok(e instanceof MongoServerError, `${mech}: ${e}`);
        assert.equal(e.code, 18);
        return true;
      });
      await client.close();
    }
  } finally {
    assert.equal(await s.stop(), 0);
  }
});
