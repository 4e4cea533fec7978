// Driver-only load for bench/run decompose: N concurrent findOne({}) loops on
// articles.articles through one MongoClient (the peer's driver and pool settings), no HTTP.
// Usage: node find_loop.js --uri URI --concurrency N --seconds S --pool P [--warmup W]
// Prints one JSON line: finds, errors, seconds, cpu_s (this process, measured window only).
'use strict';
const { MongoClient } = require('mongodb');

function parse(argv) {
  const o = { uri: 'mongodb://127.0.0.1:27017', concurrency: 200, seconds: 5, pool: 100, warmup: 1 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in o) || i + 1 >= argv.length) {
      console.error(`find_loop.js: unknown option or missing value: ${argv[i]}`);
      process.exit(2);
    }
    o[key] = key === 'uri' ? argv[i + 1] : Number(argv[i + 1]);
    if (key !== 'uri' && !(o[key] >= 0)) {
      console.error(`find_loop.js: --${key} expects a number >= 0`);
      process.exit(2);
    }
  }
  return o;
}

async function main() {
  const o = parse(process.argv.slice(2));
  const client = new MongoClient(o.uri, { maxPoolSize: o.pool });
  const articles = client.db('articles').collection('articles');
  let counting = false;
  let finds = 0;
  let errors = 0;
  let stop = false;
  async function loop() {
    while (!stop) {
      try {
        const doc = await articles.findOne({});
        if (counting) doc ? finds++ : errors++;
      } catch (err) {
        if (counting) errors++;
      }
    }
  }
  const loops = Array.from({ length: o.concurrency }, loop);
  await new Promise((r) => setTimeout(r, o.warmup * 1000));
  counting = true;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, o.seconds * 1000));
  counting = false;
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  stop = true;
  await Promise.all(loops);
  await client.close();
  console.log(JSON.stringify({ finds, errors, seconds, cpu_s: (cpu.user + cpu.system) / 1e6,
                               finds_per_sec: finds / seconds }));
  process.exitCode = errors ? 1 : 0;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
