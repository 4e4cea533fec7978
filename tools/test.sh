#!/usr/bin/env bash
# Builds everything and runs the whole test suite: tools/test.sh [preset]  (default: release;
# also debug, asan, tsan). Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:-release}

tools/install-deps.sh build test
if [[ -f tests/standin/node/package-lock.json ]]; then
  (cd tests/standin/node && npm ci --no-audit --no-fund --loglevel=error)
fi
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$(nproc)"
ctest --preset "$preset" -j 2
