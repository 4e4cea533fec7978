#!/bin/sh
# Instructions per BSON-to-JSON conversion of a seed document, as src/mongo.cpp does it
# (fresh string reserved at 1.25 x the BSON size, then append_relaxed_json), counted by
# cachegrind and differenced against a run with no conversion, so that start-up and the
# JSON-to-BSON parse of the seed file drop out. Valid on a loaded machine.
# Usage: bench/bson_json/count.sh [BENCH_BINARY] [N]   (default build/release/bin/bson_json_bench, 1000)
set -eu
bin=${1:-build/release/bin/bson_json_bench}
n=${2:-1000}
ir() {
    valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null "$bin" --count "$1" "$2" 2>&1 |
        awk '/I *refs/ {gsub(",", "", $4); print $4}'
}
for doc in small big; do
    a=$(ir "$doc" 0)
    b=$(ir "$doc" "$n")
    echo "$doc: $(((b - a) / n)) instructions per conversion ($a at 0, $b at $n)"
done
