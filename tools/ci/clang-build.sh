#!/usr/bin/env bash
# Builds the whole project with clang (the `clang` preset, -Werror) and runs its C++ unit and
# stand-in tests (the CTest names "<executable>_test:..."; the e2e, hardening, driver and CI
# tests run in the g++ suite). The compiler: $COROSERVE_CLANG (e.g. clang++-14), else the newest
# clang++-NN on PATH (cmake/clang-toolchain.cmake). Usage: tools/ci/clang-build.sh [--no-tests]
set -euo pipefail
cd "$(dirname "$0")/../.."

tests=1
case "${1:-}" in
  "") ;;
  --no-tests) tests=0 ;;
  *) echo "clang-build: unknown argument '$1' (--no-tests)" >&2; exit 2 ;;
esac

# A tree configured with another compiler cannot be reused: start it afresh.
cache=build/clang/CMakeCache.txt
if [[ -f $cache && -n ${COROSERVE_CLANG:-} ]]; then
  want=$(command -v "$COROSERVE_CLANG" || echo "$COROSERVE_CLANG")
  grep -qx "CMAKE_CXX_COMPILER:[A-Z]*=$want" "$cache" || rm -rf build/clang/CMakeCache.txt build/clang/CMakeFiles
fi
# A compiler cache when one is installed (`tools/install-deps.sh ci`): an unchanged tree, e.g. a
# fresh clone, rebuilds in seconds. Paths count from the tree, so clones share the cache.
if command -v ccache >/dev/null && [[ -z ${CMAKE_CXX_COMPILER_LAUNCHER:-} ]]; then
  export CMAKE_CXX_COMPILER_LAUNCHER=ccache CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD}
fi
cmake --preset clang >/dev/null
echo "clang-build: $(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$cache")"
cmake --build --preset clang -j "${COROSERVE_JOBS:-$(nproc)}"
if [[ $tests -eq 1 ]]; then
  ctest --preset clang -j 2 -R '^[a-z_]+_test:'
fi
