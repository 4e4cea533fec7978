#!/bin/sh
# Builds the drogon peer and its driver-only loop. Runs INSIDE the Debian 13 chroot
# (libdrogon-dev 1.9, libjsoncpp-dev, libmongoc-dev 1.30, g++ 14): bench/run calls
#   tools/ci/trixie-chroot.sh run --bind <worktree> -- bench/peers/drogon/build.sh OUTPUT
# OUTPUT is the server (main.cpp); OUTPUT-findloop is the loop (find_loop.cpp, for
# `bench/run decompose`). One translation unit each, the same warning flags as coroserve's build.
set -eu
out="${1:?usage: build.sh OUTPUT}"
dir="$(dirname "$0")"
mkdir -p "$(dirname "$out")"
cxx() {
    g++ -std=c++20 -O2 -g -Wall -Wextra -Wpedantic -Werror \
        -I/usr/include/jsoncpp -I/usr/include/libmongoc-1.0 -I/usr/include/libbson-1.0 "$@"
}
cxx -o "$out.tmp" "$dir/main.cpp" -ldrogon -ltrantor -ljsoncpp -lmongoc-1.0 -lbson-1.0 -lpthread
cxx -o "$out-findloop.tmp" "$dir/find_loop.cpp" -lmongoc-1.0 -lbson-1.0 -lpthread
mv "$out.tmp" "$out"
mv "$out-findloop.tmp" "$out-findloop"
echo "built $out $out-findloop" >&2
