#!/usr/bin/env bash
# Builds (Release) and runs coroserve on :5000 against the built-in MongoDB stand-in, seeded
# with the benchmark's two documents. Ctrl-C stops both. Extra arguments go to coroserve.
set -euo pipefail
cd "$(dirname "$0")/.."

tools/install-deps.sh build
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target coroserve mongo-standin

bin=build/release/bin
data=bench/data
standin_port=${STANDIN_PORT:-27017}
"$bin/mongo-standin" --port "$standin_port" \
  --seed "articles.articles=$data/small_doc.json" \
  --seed "articles.small=$data/small_doc.json" \
  --seed "articles.big=$data/big_doc.json" &
standin=$!
trap 'kill "$standin" 2>/dev/null; wait "$standin" 2>/dev/null' EXIT
"$bin/coroserve" --mongodb-uri "mongodb://127.0.0.1:$standin_port" "$@"
