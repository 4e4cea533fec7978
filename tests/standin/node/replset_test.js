// mongo-standin --replset through the Node.js `mongodb` driver, whose monitor streams:
// an awaitable hello sent with exhaustAllowed, answered by a stream of moreToCome replies.
// The set is discovered from one seed, a stepdown is followed (writes and reads work again
// after the election), and reads land where the read preference says (the stand-in's
// per-member find counters). Run: STANDIN_EXE=... BENCH_DATA_DIR=... node replset_test.js
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { loadDriver, startStandin } = require('./standin.js');
const { MongoClient } = loadDriver();

const ELECTION_MS = 300;

// The "rs" control answer: primary and term (numbers), finds (one count per member).
async function status(standin) {
  const answer = await standin.control('rs');
  const fields = Object.fromEntries(
    answer.split(' ').slice(1).map((word) => word.split('=', 2)));
  return {
    primary: Number(fields.primary),
    term: Number(fields.term),
    finds: fields.finds.split(',').map(Number),
  };
}

async function eventually(check, what, timeoutMs = 10000) {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    assert.ok(Date.now() < end, `timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

// A stand-in set of three and a client seeded with member `seed` alone, streaming monitors
// forced (the driver's "auto" would poll on a FaaS platform).
async function withSet(seed, body) {
  const standin = await startStandin(
    '--replset', 'rs0', '--members', '3', '--election-ms', String(ELECTION_MS),
    '--seed', `articles.articles=${process.env.BENCH_DATA_DIR}/small_doc.json`);
  const hosts = [0, 1, 2].map((i) => `127.0.0.1:${standin.port + i}`);
  const client = new MongoClient(
    `mongodb://${hosts[seed]}/?replicaSet=rs0&serverMonitoringMode=stream` +
      '&heartbeatFrequencyMS=500&serverSelectionTimeoutMS=5000&localThresholdMS=1000');
  const seen = { topology: null, awaited: 0, failed: [] };
  client.on('topologyDescriptionChanged', (e) => (seen.topology = e.newDescription));
  client.on('serverHeartbeatSucceeded', (e) => e.awaited && seen.awaited++);
  client.on('serverHeartbeatFailed', (e) => seen.failed.push(`${e.connectionId}: ${e.failure}`));
  client.on('connectionPoolCleared', (e) => seen.failed.push(`${e.address}: pool cleared`));
  try {
    await client.connect();
    const roles = () => {
      const servers = seen.topology ? [...seen.topology.servers.values()] : [];
      return Object.fromEntries(servers.map((s) => [s.address, s.type]));
    };
    await body({ standin, client, hosts, seen, roles });
  } finally {
    await client.close();
    assert.equal(await standin.stop(), 0);
  }
}

const secondariesKnown = (hosts, roles) => () => {
  const r = roles();
  return r[hosts[1]] === 'RSSecondary' && r[hosts[2]] === 'RSSecondary';
};

test('the set is discovered from one seed, and the monitors stream', async () => {
  await withSet(1, async ({ client, hosts, seen, roles }) => {
    assert.equal(await client.db('admin').command({ ping: 1 }).then((r) => r.ok), 1);
    await eventually(secondariesKnown(hosts, roles), 'both secondaries');
    assert.deepEqual(roles(), {
      [hosts[0]]: 'RSPrimary', [hosts[1]]: 'RSSecondary', [hosts[2]]: 'RSSecondary',
    });
    assert.equal(seen.topology.type, 'ReplicaSetWithPrimary');
    // Streamed replies (moreToCome) arrive as awaited heartbeats; a monitor that could not
    // read the stream would report failed heartbeats or clear its pool instead.
    // Three rounds per member: maxAwaitTimeMS (500) passes at least twice on each stream.
    await eventually(() => seen.awaited >= 9, 'awaited (streamed) heartbeats');
    assert.deepEqual(seen.failed, []);
  });
});

test('reads land where the read preference says', async () => {
  await withSet(0, async ({ standin, client, hosts, roles }) => {
    const coll = client.db('articles').collection('articles');
    assert.ok(await coll.findOne({}));
    await eventually(secondariesKnown(hosts, roles), 'both secondaries');
    const finds = async (readPreference, n) => {
      const before = (await status(standin)).finds;
      for (let i = 0; i < n; i++) assert.ok(await coll.findOne({}, { readPreference }));
      const after = (await status(standin)).finds;
      return after.map((a, i) => a - before[i]);
    };
    assert.deepEqual(await finds('primary', 10), [10, 0, 0]);
    assert.deepEqual(await finds('primaryPreferred', 10), [10, 0, 0]);
    const delta = await finds('secondary', 40);
    assert.equal(delta[0], 0, `${delta}`);
    assert.equal(delta[1] + delta[2], 40, `${delta}`);
    // A random pick among two: 40 reads on one alone would be a 1 in 2^39 chance.
    assert.ok(delta[1] > 0 && delta[2] > 0, `${delta}`);
    const preferred = await finds('secondaryPreferred', 10);
    assert.deepEqual([preferred[0], preferred[1] + preferred[2]], [0, 10], `${preferred}`);
    assert.equal((await finds('nearest', 10)).reduce((a, b) => a + b), 10);
  });
});

test('a stepdown is followed: writes and reads go to the new primary', async () => {
  await withSet(0, async ({ standin, client, hosts, roles }) => {
    const writes = client.db('t').collection('writes');
    await writes.insertOne({ n: 1 });
    const before = await status(standin);
    assert.equal(before.primary, 0);
    assert.match(await standin.control('stepdown'), / primary=-1 /);
    // Waits in server selection for the election, or is retried after NotWritablePrimary.
    await writes.insertOne({ n: 2 });
    const after = await status(standin);
    assert.equal(after.primary, 1);
    assert.equal(after.term, before.term + 1);
    // The streamed hellos report the new primary without a poll.
    await eventually(() => roles()[hosts[1]] === 'RSPrimary', 'member 1 as primary');
    assert.equal((await client.db('t').command({ count: 'writes' })).n, 2);
    const reads = (await status(standin)).finds;
    assert.ok(await client.db('articles').collection('articles').findOne({}));
    const now = (await status(standin)).finds;
    assert.deepEqual(now.map((a, i) => a - reads[i]), [0, 1, 0]);
  });
});
