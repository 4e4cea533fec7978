#!/usr/bin/env bash
# Seeds a real MongoDB with the benchmark's documents through the project's loader
# (mongo-seed), after waiting for the server to accept connections.
# Usage: tools/ci/seed-mongo.sh [--uri URI] [--preset P | --seed-bin PATH] [--timeout S] [NS=FILE...]
#   --uri       default $MONGODB_URI, else mongodb://127.0.0.1:27017
#   --preset    build preset whose bin/mongo-seed to use (default release); the target is
#               built first when missing
#   --seed-bin  a mongo-seed executable to use instead
#   NS=FILE     what to load (default: what tools/run.sh gives the stand-in:
#               articles.articles and articles.small = small_doc.json, articles.big = big_doc.json)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)

uri=${MONGODB_URI:-mongodb://127.0.0.1:27017}
preset=release
seed_bin=""
timeout=60
seeds=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --uri) uri=$2; shift 2 ;;
    --preset) preset=$2; shift 2 ;;
    --seed-bin) seed_bin=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *=*) seeds+=("$1"); shift ;;
    *) echo "seed-mongo: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
data=$root/bench/data
[[ ${#seeds[@]} -gt 0 ]] || seeds=("articles.articles=$data/small_doc.json"
                                   "articles.small=$data/small_doc.json"
                                   "articles.big=$data/big_doc.json")

if [[ -z $seed_bin ]]; then
  seed_bin=$root/build/$preset/bin/mongo-seed
  if [[ ! -x $seed_bin ]]; then
    (cd "$root" && cmake --preset "$preset" >/dev/null && cmake --build --preset "$preset" --target mongo-seed)
  fi
fi
[[ -x $seed_bin ]] || { echo "seed-mongo: loader not found: $seed_bin" >&2; exit 2; }

# Host and port of the first server in a plain mongodb:// URI (no SRV), to wait on.
hostport=${uri#mongodb://}
hostport=${hostport#*@}
hostport=${hostport%%[/?,]*}
host=${hostport%%:*}
port=27017
[[ $hostport == *:* ]] && port=${hostport##*:}

deadline=$((SECONDS + timeout))
until (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; do
  if (( SECONDS >= deadline )); then
    echo "seed-mongo: nothing accepts connections on $host:$port after ${timeout}s" >&2
    exit 1
  fi
  sleep 1
done

# A server that just opened its port may still refuse commands for a moment: retry.
attempt=1
until "$seed_bin" --uri "$uri" "${seeds[@]}"; do
  if (( SECONDS >= deadline )); then
    echo "seed-mongo: the loader failed $attempt times; giving up" >&2
    exit 1
  fi
  attempt=$((attempt + 1))
  sleep 2
done
echo "seed-mongo: seeded ${seeds[*]} into $uri"
