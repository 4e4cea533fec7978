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
# A compiler cache when one is installed (`tools/install-deps.sh ci`): an unchanged tree, e.g. a
# fresh clone, rebuilds in seconds. Paths count from the tree, so clones share the cache.
if command -v ccache >/dev/null && [[ -z ${CMAKE_CXX_COMPILER_LAUNCHER:-} ]]; then
  export CMAKE_CXX_COMPILER_LAUNCHER=ccache CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD}
fi
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j "$(nproc)"
ctest --preset "$preset" -j 2
