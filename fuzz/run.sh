#!/usr/bin/env bash
# Builds the request fuzzer and runs it for SECONDS (default 60) over a copy of fuzz/corpus,
# under ASan+UBSan. Exits non-zero on a crash, a sanitizer finding, a hang (-timeout) or an
# output check failure; the input that did it is left in build/fuzz/artifacts/.
# Usage: fuzz/run.sh [SECONDS] [extra libFuzzer flags...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build/fuzz}
seconds=${1:-60}
shift || true

"$root/fuzz/build.sh"  # exits 77 when clang/libFuzzer are missing: set -e passes that on

mkdir -p "$build/work-corpus" "$build/artifacts"
# Leaks: the fuzzer's world (pool threads) lives on purpose until exit.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# libFuzzer's own exit code for a finding is 77, which CTest reads as "skipped": use 1.
set +e
"$build/request_fuzzer" \
  -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
  -error_exitcode=1 -timeout_exitcode=1 \
  -dict="$root/fuzz/http.dict" -print_final_stats=1 \
  -artifact_prefix="$build/artifacts/" \
  "$@" "$build/work-corpus" "$root/fuzz/corpus"
rc=$?
if [[ $rc -eq 77 ]]; then rc=1; fi
if [[ $rc -ne 0 ]]; then echo "fuzz/run.sh: finding (exit $rc); input in $build/artifacts/" >&2; fi
exit $rc
