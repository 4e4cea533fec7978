#!/usr/bin/env bash
# Installs the Debian packages a task needs (idempotent: apt-get runs only when one is missing).
# Usage: tools/install-deps.sh [build] [test] [bench]   (default: build)
set -euo pipefail

build=(cmake ninja-build g++ pkg-config libboost1.81-dev libboost-json1.81-dev
       libmongoc-dev libbson-dev catch2)
# Real drivers that the stand-in's tests talk through, and the clang runtime for the fuzzer.
test=(python3-pymongo python3-motor nodejs npm golang-go golang-mongodb-mongo-driver-dev
      clang-14 libclang-rt-14-dev)
bench=(wrk nginx-light python3-flask python3-gevent python3-tornado python3-motor
       python3-pymongo python3-matplotlib gunicorn uwsgi uwsgi-plugin-python3 uwsgi-plugin-gevent-python3
       nodejs npm golang-go golang-mongodb-mongo-driver-dev procps util-linux)

want=()
for group in "${@:-build}"; do
  case "$group" in
    build) want+=("${build[@]}") ;;
    test) want+=("${build[@]}" "${test[@]}") ;;
    bench) want+=("${build[@]}" "${bench[@]}") ;;
    *) echo "install-deps: unknown group '$group' (build, test, bench)" >&2; exit 2 ;;
  esac
done

missing=()
for pkg in "${want[@]}"; do
  # node may come from another source than Debian (e.g. a preinstalled Node 20): accept it.
  if [[ $pkg == nodejs ]] && command -v node >/dev/null; then continue; fi
  if [[ $pkg == npm ]] && command -v npm >/dev/null; then continue; fi
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
