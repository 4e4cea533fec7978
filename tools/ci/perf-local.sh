#!/usr/bin/env bash
# The perf workflow's steps, run here the way its jobs run them, with a mongo-standin in the
# role of the `mongo` service: build, seed, the wall-clock bench (informational), the cost
# step (instructions per request) of this checkout and optionally of a base revision, then the
# gate with a local job summary, PR comment body and history JSON under OUT.
# Usage: tools/ci/perf-local.sh [--base REV] [--out DIR] [--no-wall]
#   --base REV  also build REV (cloned from this repository into ./base, as the job checks out
#               the pull request's base) and gate against it
#   --no-wall   skip the wall-clock bench (it needs wrk and nginx; it is not gated)
#   PERF_ROUTES, PERF_TOLERANCE, PERF_COST_REPS: as in the workflow
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
base_rev="" out=perf wall=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --base) base_rev=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --no-wall) wall=0; shift ;;
    *) echo "perf-local: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
cd "$root"
mkdir -p "$out"
out=$(cd "$out" && pwd)
declare -A took
step() {  # step NAME COMMAND...: runs it, keeps its time
  local name=$1 start=$SECONDS; shift
  echo "== perf-local: $name: $*"
  "$@"
  took[$name]=$((SECONDS - start))
}

step build tools/ci/perf-build.sh
if [[ -n $base_rev ]]; then
  rm -rf base
  git clone -q "$root" base
  git -C base checkout -q "$base_rev"
  step build-base env PERF_BUILD_TARGETS=coroserve tools/ci/perf-build.sh base || echo "perf-local: the base did not build"
fi

standin=""
cleanup() { [[ -z $standin ]] || kill "$standin" 2>/dev/null || true; }
trap cleanup EXIT
if [[ $wall -eq 1 ]]; then
  # The stand-in as the `mongo` service, on a free port, seeded by the job's own step.
  build/release/bin/mongo-standin --port 0 > "$out/standin.port" 2> "$out/standin.log" &
  standin=$!
  for _ in $(seq 50); do [[ -s $out/standin.port ]] && break; sleep 0.1; done
  export MONGODB_URI="mongodb://127.0.0.1:$(head -1 "$out/standin.port")"
  step seed tools/ci/seed-mongo.sh --preset release
  # --no-build: built above; bench/run would otherwise install the bench group's packages.
  step wall env PERF_NO_BUILD=1 tools/ci/perf-run.sh --out "$out/head"
fi
step cost tools/ci/perf-cost.sh --out "$out/cost-head"
base_results=()
if [[ -n $base_rev ]]; then
  step cost-base tools/ci/perf-cost.sh --bin-dir base/build/release/bin --out "$out/cost-base" --optional
  base_results=("$out/cost-base/results.json")
fi
rm -f "$out/summary.md"
set +e
GITHUB_STEP_SUMMARY=$out/summary.md PERF_COMMENT_FILE=$out/comment.md PERF_BENCHMARK_JSON=$out/benchmark.json \
  PERF_WALL_HEAD=$out/head/results.json PERF_WALL_BASE=$out/base/results.json \
  tools/ci/perf-gate.sh "$out/cost-head/results.json" "${base_results[@]}"
gate=$?
set -e
echo "== perf-local: step times (s):"
for name in "${!took[@]}"; do printf '   %-10s %5d\n' "$name" "${took[$name]}"; done | sort
echo "== perf-local: gate exit $gate; summary $out/summary.md, comment $out/comment.md, history $out/benchmark.json"
exit $gate
