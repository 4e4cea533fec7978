// Node.js peer: the seed's app, cluster + express + the mongodb driver, one worker per core.
// env PORT, MONGODB_URI, PEER_WORKERS (default: cores), PEER_POOL_SIZE, PEER_BACKLOG.
'use strict';
const cluster = require('node:cluster');
const os = require('node:os');

const workers = Number(process.env.PEER_WORKERS || os.cpus().length);
// bench/run stops the peer with SIGTERM to its process group: exit cleanly, so that a run
// under `node --cpu-prof` writes its profile.
process.on('SIGTERM', () => process.exit(0));

if (cluster.isPrimary) {
  for (let i = 0; i < workers; i++) cluster.fork();
  // A worker that dies is not replaced: a crashed contender must show in the results.
  cluster.on('exit', (w, code, signal) => console.error(`worker ${w.process.pid} exited ${code ?? signal}`));
} else {
  const express = require('express');
  const { MongoClient } = require('mongodb');
  const client = new MongoClient(process.env.MONGODB_URI || 'mongodb://127.0.0.1:27017', {
    maxPoolSize: Number(process.env.PEER_POOL_SIZE || 1500),
  });
  const articles = client.db('articles').collection('articles');
  const app = express();
  // Constant JSON, no database: the framework's own cost (bench/run decompose).
  app.get('/json', (req, res) => res.json({ message: 'Hello, World!' }));
  app.get('/mongo', async (req, res, next) => {
    try {
      res.json(await articles.findOne({}));
    } catch (err) {
      next(err);
    }
  });
  app.listen(Number(process.env.PORT || 5000), '127.0.0.1', Number(process.env.PEER_BACKLOG || 4096));
}
