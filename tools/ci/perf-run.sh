#!/usr/bin/env bash
# Runs the CI-mode benchmark of a checkout against a MongoDB and writes OUT/results.{json,csv,md}
# and the PNGs. Each checkout runs its own bench/run with its own build/release binaries.
# Usage: tools/ci/perf-run.sh --out DIR [--src CHECKOUT] [--optional]
#   settings from the environment (empty = bench/run's own --ci default):
#   PERF_DURATION (seconds per repetition), PERF_REPS (repetitions; the median is kept),
#   PERF_CONNECTIONS (e.g. 200,1000), PERF_CONTENDERS (e.g. coroserve,coroserve-json,nginx),
#   MONGODB_URI (default mongodb://127.0.0.1:27017)
#   PERF_NO_BUILD=1 passes --no-build: no package installation, no build (perf-local.sh: the
#   binaries are built, and this machine must not get the bench group's packages)
#   --optional  a checkout without bench/run (an older base branch) is skipped, not an error
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
out="" optional=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --src) src=$(cd "$2" && pwd); shift 2 ;;
    --out) out=$2; shift 2 ;;
    --optional) optional=1; shift ;;
    *) echo "perf-run: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[[ -n $out ]] || { echo "perf-run: --out DIR is required" >&2; exit 2; }
mkdir -p "$out"
out=$(cd "$out" && pwd)

# The values come from workflow_dispatch inputs: accept only their expected shapes.
duration=${PERF_DURATION:-}
reps=${PERF_REPS:-}
connections=${PERF_CONNECTIONS:-}
contenders=${PERF_CONTENDERS:-}
uri=${MONGODB_URI:-mongodb://127.0.0.1:27017}
[[ -z $duration || $duration =~ ^[0-9]+$ ]] || { echo "perf-run: PERF_DURATION must be whole seconds: '$duration'" >&2; exit 2; }
[[ -z $reps || $reps =~ ^[0-9]+$ ]] || { echo "perf-run: PERF_REPS must be a whole number: '$reps'" >&2; exit 2; }
[[ -z $connections || $connections =~ ^[0-9]+(,[0-9]+)*$ ]] || { echo "perf-run: PERF_CONNECTIONS must look like 200,1000: '$connections'" >&2; exit 2; }
[[ -z $contenders || $contenders =~ ^[a-z0-9_.-]+(,[a-z0-9_.-]+)*$ ]] || { echo "perf-run: PERF_CONTENDERS must be a comma list of names: '$contenders'" >&2; exit 2; }

if [[ ! -f $src/bench/run ]]; then
  if [[ $optional -eq 1 ]]; then
    echo "perf-run: $src has no bench/run (older branch): skipped" | tee "$out/SKIPPED"
    exit 0
  fi
  echo "perf-run: $src/bench/run not found" >&2
  exit 2
fi

args=(--ci --mongo-uri "$uri" --out "$out")
[[ -z $duration ]] || args+=(--duration "$duration")
[[ -z $reps ]] || args+=(--reps "$reps")
[[ -z $connections ]] || args+=(--connections "$connections")
[[ -z $contenders ]] || args+=(--contenders "$contenders")
[[ ${PERF_NO_BUILD:-} != 1 ]] || args+=(--no-build)
cd "$src"
echo "perf-run: (cd $src && /usr/bin/python3 bench/run ${args[*]})"
exec /usr/bin/python3 bench/run "${args[@]}"
