#!/bin/sh
# Builds the drogon peer. Runs INSIDE the Debian 13 chroot (libdrogon-dev 1.9, libjsoncpp-dev,
# libmongoc-dev 1.30, g++ 14): bench/run calls
#   tools/ci/trixie-chroot.sh run --bind <worktree> -- bench/peers/drogon/build.sh OUTPUT
# One translation unit, the same warning flags as coroserve's build.
set -eu
out="${1:?usage: build.sh OUTPUT}"
src="$(dirname "$0")/main.cpp"
mkdir -p "$(dirname "$out")"
g++ -std=c++20 -O2 -g -Wall -Wextra -Wpedantic -Werror \
    -I/usr/include/jsoncpp -I/usr/include/libmongoc-1.0 -I/usr/include/libbson-1.0 \
    -o "$out.tmp" "$src" \
    -ldrogon -ltrantor -ljsoncpp -lmongoc-1.0 -lbson-1.0 -lpthread
mv "$out.tmp" "$out"
echo "built $out" >&2
