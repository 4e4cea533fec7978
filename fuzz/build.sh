#!/usr/bin/env bash
# Builds the libFuzzer target with clang into build/fuzz (or $FUZZ_BUILD_DIR): $FUZZ_CXX, else
# the newest clang++-NN (NN >= 14) on PATH that has its libFuzzer runtime.
# Exits 77 (CTest: skipped) when no clang with libFuzzer is installed
# (tools/install-deps.sh test installs clang-NN and libclang-rt-NN-dev).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build/fuzz}

has_fuzzer() { [[ $("$1" -print-file-name=libclang_rt.fuzzer-x86_64.a) == /* ]]; }
cxx=${FUZZ_CXX:-}
if [[ -z $cxx ]]; then
  for major in $(compgen -c clang++- | sed -n 's/^clang++-\([0-9][0-9]*\)$/\1/p' | sort -rnu); do
    if [[ $major -ge 14 ]] && has_fuzzer "clang++-$major"; then cxx=clang++-$major; break; fi
  done
  if [[ -z $cxx ]]; then
    echo "fuzz/build.sh: no clang++-NN with its libFuzzer runtime (tools/install-deps.sh test): skipped" >&2
    exit 77
  fi
elif ! command -v "$cxx" >/dev/null; then
  echo "fuzz/build.sh: $cxx not found: skipped" >&2
  exit 77
elif ! has_fuzzer "$cxx"; then
  echo "fuzz/build.sh: libFuzzer runtime missing for $cxx (libclang-rt-NN-dev): skipped" >&2
  exit 77
fi
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
# Another compiler than the cached tree's (a newer clang was installed): start afresh.
if [[ -f $build/CMakeCache.txt ]] && ! grep -qx "CMAKE_CXX_COMPILER:[A-Z]*=$(command -v "$cxx")" "$build/CMakeCache.txt" &&
   ! grep -qx "CMAKE_CXX_COMPILER:[A-Z]*=$cxx" "$build/CMakeCache.txt"; then
  rm -rf "$build/CMakeCache.txt" "$build/CMakeFiles"
fi
if [[ ! -f $build/CMakeCache.txt ]]; then
  cmake -S "$root/fuzz" -B "$build" "${generator[@]}" -DCMAKE_CXX_COMPILER="$cxx" >/dev/null
fi
cmake --build "$build" --target request_fuzzer -j "${FUZZ_JOBS:-2}"
