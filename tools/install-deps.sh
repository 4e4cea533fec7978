#!/usr/bin/env bash
# Installs the Debian packages a task needs (idempotent: apt-get runs only when one is missing).
# Usage: tools/install-deps.sh [--print] [build] [test] [bench] [format] [ci]   (default: build)
#   --print   list the packages this distro needs for the groups, install nothing.
# Debian 12 is the reference. On Ubuntu 24.04 (the GitHub Actions runner) some names differ;
# INSTALL_DEPS_OS_RELEASE points at another os-release file (for the tests of this script).
set -euo pipefail

# The distro decides the package names; anything that is not Ubuntu 24.04 gets Debian 12's.
os_release=${INSTALL_DEPS_OS_RELEASE:-/etc/os-release}
distro_id="" distro_version=""
if [[ -r $os_release ]]; then
  distro_id=$(. "$os_release" && echo "${ID:-}")
  distro_version=$(. "$os_release" && echo "${VERSION_ID:-}")
fi

boost=(libboost1.81-dev libboost-json1.81-dev)
if [[ $distro_id == ubuntu && $distro_version == 24.04 ]]; then
  boost=(libboost1.83-dev libboost-json1.83-dev)
fi
# `catch2` is Catch2 2.13 on Debian 12 but 3.4 on Ubuntu 24.04 (catch2/catch_all.hpp, no
# catch2/catch.hpp; Ubuntu's `catch` is 1.12): there the tests build only if they accept 3.x.
# Nothing is fetched from outside the distro's archive.
build=(cmake ninja-build g++ pkg-config "${boost[@]}" libmongoc-dev libbson-dev catch2)
# Real drivers that the stand-in's tests talk through, the clang runtime for the fuzzer, and
# dpkg-dev (dpkg-shlibdeps) for the Debian package test.
test=(python3-pymongo python3-motor nodejs npm golang-go golang-mongodb-mongo-driver-dev dpkg-dev
      clang-14 libclang-rt-14-dev)
bench=(wrk nginx-light python3-flask python3-gevent python3-tornado python3-motor
       python3-pymongo python3-matplotlib gunicorn uwsgi uwsgi-plugin-python3 uwsgi-plugin-gevent-python3
       nodejs npm golang-go golang-mongodb-mongo-driver-dev procps util-linux)
# The formatter the code is formatted with (Debian 12's default), pinned so CI agrees with it.
format=(clang-format-14)
# Compiler cache for the GitHub Actions jobs (tools/ci/ccache-setup.sh).
ci=(ccache)

print=0
groups=()
for arg in "$@"; do
  if [[ $arg == --print ]]; then print=1; else groups+=("$arg"); fi
done
[[ ${#groups[@]} -gt 0 ]] || groups=(build)

want=()
for group in "${groups[@]}"; do
  case "$group" in
    build) want+=("${build[@]}") ;;
    test) want+=("${build[@]}" "${test[@]}") ;;
    bench) want+=("${build[@]}" "${bench[@]}") ;;
    format) want+=("${format[@]}") ;;
    ci) want+=("${ci[@]}") ;;
    *) echo "install-deps: unknown group '$group' (build, test, bench, format, ci)" >&2; exit 2 ;;
  esac
done

if [[ $print -eq 1 ]]; then
  printf '%s\n' "${want[@]}" | awk '!seen[$0]++'
  exit 0
fi

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
