#!/usr/bin/env bash
# Builds, in the Release preset (the benchmark build) of a checkout, the programs the bench
# runs: the server, the stand-in, the seed loader and the driver load client. Tests are not
# built here: ci.yml builds and runs them; a test that fails to compile must not hide the
# performance numbers.
# Usage: tools/ci/perf-build.sh [CHECKOUT]   (default: this repository; the perf job also
# builds the pull request's base branch, checked out in ./base)
#   PERF_BUILD_TARGETS  overrides the target list (space separated)
set -euo pipefail
src=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$src"
cmake --preset release >/dev/null

# An older branch may not have every target yet: build those that exist.
read -r -a wanted <<< "${PERF_BUILD_TARGETS:-coroserve mongo-standin mongo-seed mongo-driver-load}"
targets=()
for t in "${wanted[@]}"; do
  # A dry run (-n) fails only for a target the build does not know.
  if cmake --build --preset release --target "$t" -- -n >/dev/null 2>&1; then
    targets+=("$t")
  else
    echo "perf-build: no target $t here, skipped" >&2
  fi
done
[[ ${#targets[@]} -gt 0 ]] || { echo "perf-build: none of ${wanted[*]} exists in $src" >&2; exit 1; }
cmake --build --preset release -j "$(nproc)" --target "${targets[@]}"
echo "perf-build: built ${targets[*]} of $(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo "$src") in $src/build/release"
