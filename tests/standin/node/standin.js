// What the Node.js stand-in tests share: the driver (or exit 77, CTest's "skipped", when
// `npm ci` has not been run) and a mongo-standin on an ephemeral port driven through its
// --control-stdin lines.
'use strict';
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const readline = require('node:readline');

function loadDriver() {
  try {
    return require('mongodb');
  } catch {
    console.error('node driver: run `npm ci` in tests/standin/node first (tools/test.sh does)');
    process.exit(77); // CTest: skipped
  }
}

// Starts STANDIN_EXE with `extra` arguments; resolves once its port line is read. With
// --replset, member i listens on port + i.
function startStandin(...extra) {
  const proc = spawn(process.env.STANDIN_EXE, ['--port', '0', '--control-stdin', ...extra], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = readline.createInterface({ input: proc.stdout });
  const pending = [];
  lines.on('line', (line) => pending.shift()?.(line));
  const nextLine = () =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no line from mongo-standin')), 10000);
      pending.push((line) => {
        clearTimeout(timer);
        resolve(line);
      });
    });
  return nextLine().then((line) => {
    const port = Number(line);
    assert.ok(port > 0, `expected a port, got ${line}`);
    return {
      port,
      uri: `mongodb://127.0.0.1:${port}`,
      // Sends one control line; resolves with its "ok ..." answer (anything else throws).
      async control(command) {
        proc.stdin.write(command + '\n');
        const answer = await nextLine();
        assert.match(answer, /^ok/, `${command}: ${answer}`);
        return answer;
      },
      running: () => proc.exitCode === null && proc.signalCode === null,
      stop: () =>
        new Promise((resolve) => {
          proc.once('exit', (code) => resolve(code));
          proc.kill('SIGTERM');
        }),
    };
  });
}

module.exports = { loadDriver, startStandin };
