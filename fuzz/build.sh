#!/usr/bin/env bash
# Builds the libFuzzer target with clang-14 into build/fuzz (or $FUZZ_BUILD_DIR).
# Exits 77 (CTest: skipped) when clang-14 or its libFuzzer runtime is not installed
# (tools/install-deps.sh test installs both).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build/fuzz}
cxx=${FUZZ_CXX:-clang++-14}

if ! command -v "$cxx" >/dev/null; then
  echo "fuzz/build.sh: $cxx not found (tools/install-deps.sh test): skipped" >&2
  exit 77
fi
if ! "$cxx" -print-file-name=libclang_rt.fuzzer-x86_64.a | grep -q /; then
  echo "fuzz/build.sh: libFuzzer runtime missing (libclang-rt-14-dev): skipped" >&2
  exit 77
fi
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if [[ ! -f $build/CMakeCache.txt ]]; then
  cmake -S "$root/fuzz" -B "$build" "${generator[@]}" -DCMAKE_CXX_COMPILER="$cxx" >/dev/null
fi
cmake --build "$build" --target request_fuzzer -j "${FUZZ_JOBS:-2}"
