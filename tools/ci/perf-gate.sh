#!/usr/bin/env bash
# The perf job's gate step: perf-gate.py with the job's settings.
# Usage: tools/ci/perf-gate.sh HEAD_RESULTS [BASE_RESULTS]
#   PERF_TOLERANCE   overrides the baseline's tolerance when set (workflow_dispatch input)
#   PERF_GATE_BASE   when "true", a drop against the base branch fails too (default: reported)
#   GITHUB_STEP_SUMMARY  the report is appended there when set
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
head=${1:?usage: perf-gate.sh HEAD_RESULTS [BASE_RESULTS]}
args=(--results "$head" --baseline "$root/bench/baseline.json")
[[ -z ${2:-} ]] || args+=(--base-results "$2")
[[ -z ${PERF_TOLERANCE:-} ]] || args+=(--tolerance "$PERF_TOLERANCE")
[[ ${PERF_GATE_BASE:-} != true ]] || args+=(--gate-base)
[[ -z ${GITHUB_STEP_SUMMARY:-} ]] || args+=(--summary "$GITHUB_STEP_SUMMARY")
exec /usr/bin/python3 "$root/tools/ci/perf-gate.py" "${args[@]}"
