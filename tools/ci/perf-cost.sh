#!/usr/bin/env bash
# The perf job's cost step: `bench/run cost` (instructions per request per route under
# cachegrind) of a build, always with THIS checkout's harness and stand-in, so that the head
# and the base branch are measured the same way. Writes OUT/results.{json,md}.
# Usage: tools/ci/perf-cost.sh --out DIR [--bin-dir BUILD_BIN] [--optional]
#   --bin-dir   the coroserve to measure (default: this checkout's build/release/bin)
#   --optional  no coroserve there (the base branch did not build) is skipped, not an error
#   PERF_ROUTES        comma list of routes (empty: all)      } from workflow inputs:
#   PERF_COST_REPS     repetitions (empty: bench/run's 3)     } only their expected shapes
#   PERF_COST_REQUESTS measured requests (empty: 1000)        } are accepted
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out="" bin_dir=$root/build/release/bin optional=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --bin-dir) bin_dir=$(cd "$2" 2>/dev/null && pwd || echo "$2"); shift 2 ;;
    --optional) optional=1; shift ;;
    *) echo "perf-cost: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[[ -n $out ]] || { echo "perf-cost: --out DIR is required" >&2; exit 2; }
routes=${PERF_ROUTES:-} reps=${PERF_COST_REPS:-} requests=${PERF_COST_REQUESTS:-}
[[ -z $routes || $routes =~ ^[a-z0-9-]+(,[a-z0-9-]+)*$ ]] || { echo "perf-cost: PERF_ROUTES must be a comma list of route names: '$routes'" >&2; exit 2; }
[[ -z $reps || $reps =~ ^[0-9]+$ ]] || { echo "perf-cost: PERF_COST_REPS must be a whole number: '$reps'" >&2; exit 2; }
[[ -z $requests || $requests =~ ^[0-9]+$ ]] || { echo "perf-cost: PERF_COST_REQUESTS must be a whole number: '$requests'" >&2; exit 2; }

mkdir -p "$out"
out=$(cd "$out" && pwd)
if [[ ! -x $bin_dir/coroserve ]]; then
  if [[ $optional -eq 1 ]]; then
    echo "perf-cost: no coroserve in $bin_dir (the build failed?): skipped" | tee "$out/SKIPPED"
    exit 0
  fi
  echo "perf-cost: no coroserve in $bin_dir" >&2
  exit 2
fi
args=(cost --bin-dir "$bin_dir" --standin "$root/build/release/bin/mongo-standin" --out "$out")
[[ -z $routes ]] || args+=(--routes "$routes")
[[ -z $reps ]] || args+=(--reps "$reps")
[[ -z $requests ]] || args+=(--requests "$requests")
start=$SECONDS
echo "perf-cost: /usr/bin/python3 bench/run ${args[*]}"
code=0
/usr/bin/python3 "$root/bench/run" "${args[@]}" || code=$?
echo "perf-cost: measured in $((SECONDS - start)) s"
# Exit 1 = some route could not be measured; results.json says which and why, and the gate
# fails on a route of the baseline that is missing. Anything else is the harness failing.
if [[ $code -eq 1 && -f $out/results.json ]]; then
  echo "perf-cost: warning: some routes were not measured (see $out/results.md); the gate decides" >&2
  exit 0
fi
exit "$code"
