#!/usr/bin/env bash
# Builds the Release preset (the benchmark build) of a checkout.
# Usage: tools/ci/perf-build.sh [CHECKOUT]   (default: this repository; the perf job also
# builds the pull request's base branch, checked out in ./base)
set -euo pipefail
src=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$src"
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)"
echo "perf-build: built $(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo "$src") in $src/build/release"
