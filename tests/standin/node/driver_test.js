// mongo-standin through the Node.js `mongodb` driver (version pinned in package-lock.json):
// find_one, insert, a cursor served by getMore, killCursors, CommandNotFound, injected
// faults and malformed messages. Run: STANDIN_EXE=... BENCH_DATA_DIR=... node driver_test.js
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const { loadDriver, startStandin } = require('./standin.js');
const { MongoClient, ObjectId, MongoServerError } = loadDriver();

// Sends bytes on a new connection; resolves true if the server closes it within 5 s.
function closedByServer(port, bytes) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(bytes));
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(false);
    }, 5000);
    socket.on('data', () => {});
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

function header(length, requestId, opCode) {
  const b = Buffer.alloc(16);
  b.writeInt32LE(length, 0);
  b.writeInt32LE(requestId, 4);
  b.writeInt32LE(0, 8);
  b.writeInt32LE(opCode, 12);
  return b;
}

async function withClient(standin, fn, options = {}) {
  const commands = [];
  const client = new MongoClient(standin.uri, {
    serverSelectionTimeoutMS: 3000,
    monitorCommands: true,
    ...options,
  });
  client.on('commandStarted', (e) => commands.push(e.commandName));
  await client.connect();
  try {
    await fn(client, commands);
  } finally {
    await client.close();
  }
}

test('find_one, insert, getMore, killCursors, CommandNotFound', async () => {
  const standin = await startStandin(
    '--seed', `articles.articles=${process.env.BENCH_DATA_DIR}/small_doc.json`);
  try {
    await withClient(standin, async (client, commands) => {
      const seeded = await client.db('articles').collection('articles').findOne({});
      assert.deepEqual(seeded, {
        _id: new ObjectId('537416b501d53a77bb94135c'),
        canonicalUrl: 'http://foo.com',
      });

      const coll = client.db('t').collection('many');
      const { insertedId } = await coll.insertOne({ name: 'node' });
      assert.equal((await coll.findOne({ _id: insertedId })).name, 'node');
      const many = await coll.insertMany(Array.from({ length: 250 }, (_, i) => ({ i })));
      assert.equal(many.insertedCount, 250);

      commands.length = 0;
      const docs = await coll.find({ name: null }, { batchSize: 100 }).toArray();
      assert.deepEqual(docs.map((d) => d.i), Array.from({ length: 250 }, (_, i) => i));
      assert.equal(commands.filter((c) => c === 'getMore').length, 2);

      const cursor = coll.find({}, { batchSize: 10 });
      await cursor.next();
      const id = cursor.id;
      assert.ok(id && !id.isZero());
      await cursor.close();
      assert.ok(commands.includes('killCursors'));
      await assert.rejects(client.db('t').command({ getMore: id, collection: 'many' }),
        (e) => e instanceof MongoServerError && e.code === 43);

      await assert.rejects(client.db('admin').command({ noSuchCommand: 1 }),
        (e) => e instanceof MongoServerError && e.code === 59 && e.codeName === 'CommandNotFound');
    });
  } finally {
    assert.equal(await standin.stop(), 0);
  }
});

test('injected failure and latency, malformed messages', async () => {
  const standin = await startStandin();
  try {
    await withClient(standin, async (client) => {
      const admin = client.db('admin');
      await admin.command({ standinFault: 1, failNext: 1, failCode: 8000 });
      await assert.rejects(admin.command({ ping: 1 }), (e) => e.code === 8000);
      assert.equal((await admin.command({ ping: 1 })).ok, 1);

      await standin.control('latency 300');
      const start = Date.now();
      await admin.command({ ping: 1 });
      assert.ok(Date.now() - start >= 290);
      await standin.control('latency 0');

      const ping = Buffer.from('1c0000001070696e670001000000026162630000', 'hex');
      const cases = {
        'length below the header': header(8, 1, 2013),
        oversized: Buffer.concat([header(50000000, 1, 2013), Buffer.alloc(5)]),
        'unknown opcode': Buffer.concat([header(16 + 5 + ping.length, 1, 4242), Buffer.alloc(5), ping]),
        'truncated BSON': Buffer.concat([header(16 + 5 + 10, 1, 2013), Buffer.alloc(5),
          Buffer.from('ff000000106100000000', 'hex')]),
      };
      for (const [name, bytes] of Object.entries(cases))
        assert.ok(await closedByServer(standin.port, bytes), name);
      assert.ok(standin.running());
      assert.equal((await admin.command({ ping: 1 })).ok, 1);
    });
  } finally {
    assert.equal(await standin.stop(), 0);
  }
});
