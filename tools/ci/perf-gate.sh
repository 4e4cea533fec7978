#!/usr/bin/env bash
# The perf job's gate step: perf-gate.py with the job's settings (instructions per request
# per route against bench/baseline.json and, on pull requests, against the base branch).
# Usage: tools/ci/perf-gate.sh COST_HEAD_RESULTS [COST_BASE_RESULTS]
#   PERF_TOLERANCE       allowed growth for every route (empty: the baseline's, per route)
#   PERF_ROUTES          gate only these routes (empty: every route of the baseline)
#   PERF_WALL_HEAD / PERF_WALL_BASE   bench/run matrix results.json: informational ratios
#   PERF_COMMENT_FILE    write the report there too (the PR comment's body)
#   PERF_BENCHMARK_JSON  write github-action-benchmark JSON there (the history on main)
#   GITHUB_STEP_SUMMARY  the report is appended there when set
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
head=${1:?usage: perf-gate.sh COST_HEAD_RESULTS [COST_BASE_RESULTS]}
tolerance=${PERF_TOLERANCE:-} routes=${PERF_ROUTES:-}
[[ -z $tolerance || $tolerance =~ ^0?\.[0-9]+$ ]] || { echo "perf-gate: PERF_TOLERANCE must look like 0.03: '$tolerance'" >&2; exit 2; }
[[ -z $routes || $routes =~ ^[a-z0-9-]+(,[a-z0-9-]+)*$ ]] || { echo "perf-gate: PERF_ROUTES must be a comma list of route names: '$routes'" >&2; exit 2; }
args=(--results "$head" --baseline "$root/bench/baseline.json")
[[ -z ${2:-} ]] || args+=(--base-results "$2")
[[ -z $tolerance ]] || args+=(--tolerance "$tolerance")
[[ -z $routes ]] || args+=(--routes "$routes")
[[ -z ${PERF_WALL_HEAD:-} ]] || args+=(--wall-results "$PERF_WALL_HEAD")
[[ -z ${PERF_WALL_BASE:-} ]] || args+=(--wall-base-results "$PERF_WALL_BASE")
[[ -z ${PERF_COMMENT_FILE:-} ]] || args+=(--comment "$PERF_COMMENT_FILE")
[[ -z ${PERF_BENCHMARK_JSON:-} ]] || args+=(--benchmark-json "$PERF_BENCHMARK_JSON")
[[ -z ${GITHUB_STEP_SUMMARY:-} ]] || args+=(--summary "$GITHUB_STEP_SUMMARY")
exec /usr/bin/python3 "$root/tools/ci/perf-gate.py" "${args[@]}"
