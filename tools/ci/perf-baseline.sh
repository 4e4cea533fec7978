#!/usr/bin/env bash
# Regenerates bench/baseline.json: builds the server and the stand-in (Release), runs
# `bench/run cost` on every route, and writes its medians as the new baseline (no machine
# paths in it). Run it on Debian 12 (the perf job's container image: the counts depend on the
# compiler and library versions), after merging changes that move the cost on purpose.
# Usage: tools/ci/perf-baseline.sh [--note TEXT] [--out DIR] [--tolerance 0.03]
#   then: git commit -m "bench: new cost baseline because ..." bench/baseline.json
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
note="" out="" tolerance=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --note) note=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --tolerance) tolerance=(--tolerance "$2"); shift 2 ;;
    *) echo "perf-baseline: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[[ -n $out ]] || out=$(mktemp -d /tmp/perf-baseline.XXXXXX)
cd "$root"
PERF_BUILD_TARGETS="coroserve mongo-standin" tools/ci/perf-build.sh
/usr/bin/python3 bench/run cost --out "$out"
/usr/bin/python3 tools/ci/perf-gate.py --results "$out/results.json" --write-baseline bench/baseline.json \
  --note "${note:-bench/run cost on $(. /etc/os-release && echo "$PRETTY_NAME")}" "${tolerance[@]}"
echo "perf-baseline: bench/baseline.json rewritten from $out/results.json; review and commit it"
