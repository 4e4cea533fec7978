#!/bin/bash
# Instructions the whole server spends per GET /mongo/big: coroserve under cachegrind against
# mongo-standin seeded with the big document, N sequential requests on one keep-alive
# connection, differenced against a run with none (start-up, the first request and shutdown
# drop out). Loopback only. Usage: bench/bson_json/server_count.sh [N] [PORT]  (200, 18431);
# COROSERVE_BIN=path measures another build of the server.
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-200}
port=${2:-18431}
bin=build/release/bin

run() {  # run REQUESTS -> total instructions of the server process
    local requests=$1 dbport standin srv
    exec 3< <(exec "$bin/mongo-standin" --port 0 --seed articles.big=bench/data/big_doc.json)
    standin=$!
    read -r dbport <&3
    valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
        "${COROSERVE_BIN:-$bin/coroserve}" --host 127.0.0.1 --port "$port" --mongodb-uri "mongodb://127.0.0.1:$dbport" \
        --io-threads 1 --workers 2 >/dev/null 2>/tmp/server_count.$$.err &
    srv=$!
    for _ in $(seq 1 600); do  # one successful request, the same in both runs
        [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/mongo/big") == 200 ]] && break
        sleep 0.5
    done
    if ((requests > 0)); then
        local urls=()
        for _ in $(seq 1 "$requests"); do urls+=("http://127.0.0.1:$port/mongo/big"); done
        curl -s "${urls[@]}" >/dev/null
    fi
    kill -INT "$srv"
    wait "$srv" || true
    kill "$standin" 2>/dev/null || true
    exec 3<&-
    awk '/I *refs/ {gsub(",", "", $4); print $4}' /tmp/server_count.$$.err
    rm -f /tmp/server_count.$$.err
}
a=$(run 0)
b=$(run "$n")
echo "/mongo/big: $(((b - a) / n)) instructions per request in the server ($a with 0, $b with $n)"
