#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages a task needs (idempotent: apt-get runs only when one is
# missing). Usage: tools/install-deps.sh [--print] [build] [test] [bench] [format] [ci]
# (default: build)
#   --print   list the packages this machine needs for the groups (each once), install nothing.
#
# Packages are chosen by what apt offers, not by distro name lists (Debian 12, Debian 13 and
# Ubuntu 24.04 are tested):
#   Boost     the newest libboost1.NN-dev (NN >= 81) that has its libboost-json1.NN-dev;
#   clang     the newest clang-NN (NN >= 14) that has its runtime libclang-rt-NN-dev (libFuzzer);
#   format    clang-format-14 (the version the code is formatted with), else the newest one.
# Environment, for the tests of this script:
#   INSTALL_DEPS_OS_RELEASE    another os-release file (only named in messages);
#   INSTALL_DEPS_APT_CACHE_DIR a directory whose file `pkgnames` holds recorded answers of
#                              `apt-cache pkgnames PREFIX`; read instead of asking apt-cache;
#   INSTALL_DEPS_APT_CACHE_RECORD  a file to which every real apt-cache answer is appended
#                              (how the fixtures under tools/ci/fixtures/install-deps were made).
set -euo pipefail

os_release=${INSTALL_DEPS_OS_RELEASE:-/etc/os-release}
distro="unknown distro"
if [[ -r $os_release ]]; then
  # shellcheck disable=SC1090
  distro=$(. "$os_release" && echo "${ID:-?} ${VERSION_ID:-?}")
fi

print=0
groups=()
for arg in "$@"; do
  case "$arg" in
    --print) print=1 ;;
    build | test | bench | format | ci) groups+=("$arg") ;;
    *) echo "install-deps: unknown group '$arg' (build, test, bench, format, ci)" >&2; exit 2 ;;
  esac
done
[[ ${#groups[@]} -gt 0 ]] || groups=(build)

sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
# A fresh container has no package lists: apt-cache would know nothing.
if [[ -z ${INSTALL_DEPS_APT_CACHE_DIR:-} ]] && ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
  if [[ $print -eq 1 ]]; then
    echo "install-deps: apt has no package lists: run apt-get update first" >&2
    exit 1
  fi
  $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
  updated=1
fi

# Names apt knows that start with $1 (`apt-cache pkgnames`: real packages, no virtual ones).
pkgnames() {
  if [[ -n ${INSTALL_DEPS_APT_CACHE_DIR:-} ]]; then
    local file=$INSTALL_DEPS_APT_CACHE_DIR/pkgnames
    [[ -r $file ]] || { echo "install-deps: no $file" >&2; exit 2; }
    awk -v p="$1" 'index($0, p) == 1' "$file"
    return
  fi
  local answer
  answer=$(apt-cache pkgnames "$1")
  if [[ -n ${INSTALL_DEPS_APT_CACHE_RECORD:-} && -n $answer ]]; then
    printf '%s\n' "$answer" >>"$INSTALL_DEPS_APT_CACHE_RECORD"
  fi
  [[ -z $answer ]] || printf '%s\n' "$answer"
}

# (No `grep -q` or `head` in these pipelines: with pipefail, an early exit is a SIGPIPE failure.)
available() {
  local names
  names=$'\n'$(pkgnames "$1")$'\n'
  [[ $names == *$'\n'"$1"$'\n'* ]]
}
first() { awk '!done { print; done = 1 }'; }

# The versions N for which both ${prefix}N${suffix} and ${prefix2}N${suffix2} exist, newest
# first. Usage: versions PREFIX SUFFIX PREFIX2 SUFFIX2
versions() {
  local p1=$1 s1=$2 p2=$3 s2=$4 v
  pkgnames "$p1" | awk -v p="$p1" -v s="$s1" '
    index($0, p) == 1 && substr($0, length($0) - length(s) + 1) == s {
      v = substr($0, length(p) + 1, length($0) - length(p) - length(s))
      if (v ~ /^[0-9]+$/) print v
    }' | sort -rn | while read -r v; do
    if available "$p2$v$s2"; then echo "$v"; fi
  done
}

need() {
  echo "install-deps: $1 on $distro (what apt offers: apt-cache pkgnames ${2})" >&2
  exit 1
}

boost_minor=$(versions libboost1. -dev libboost-json1. -dev | awk '$1 >= 81' | first)
[[ -n $boost_minor ]] || need "no Boost >= 1.81 with Boost.JSON (libboost1.NN-dev + libboost-json1.NN-dev)" libboost-json1.
clang_major=$(versions clang- "" libclang-rt- -dev | awk '$1 >= 14' | first)

# Catch2: 2.13 on Debian 12, 3.x on Debian 13 / Ubuntu 24.04 (tests/support accepts both).
# libssl-dev: the stand-in's TLS and SCRAM (OpenSSL through Asio's ssl stream).
build=(cmake ninja-build g++ pkg-config "libboost1.$boost_minor-dev" "libboost-json1.$boost_minor-dev"
       libmongoc-dev libbson-dev catch2 libssl-dev)
# Real drivers that the stand-in's tests talk through, and clang with its runtime for the
# fuzzer and the clang build; openssl, the CLI that makes the throw-away test certificates
# (tests/support/make-test-certs.sh); dpkg-dev and file, what CPack's Debian generator runs for
# the package test (dpkg-shlibdeps, file).
test=(python3-pymongo python3-motor nodejs npm golang-go golang-mongodb-mongo-driver-dev openssl dpkg-dev
      file)
# Contenders and tools of the benchmark; the charts are drawn with gnuplot (matplotlib would
# pull libboost-dev 1.74, which conflicts with libboost1.81-dev on Debian 12).
bench=(wrk nginx-light python3-flask python3-gevent python3-tornado python3-motor python3-pymongo
       gnuplot-nox gunicorn uwsgi uwsgi-plugin-python3 uwsgi-plugin-gevent-python3
       nodejs npm golang-go golang-mongodb-mongo-driver-dev procps util-linux
       mmdebstrap valgrind strace)  # the drogon peer's Debian 13 chroot; its cost.py
# Compiler cache for the GitHub Actions jobs (tools/ci/ccache-setup.sh); valgrind for the perf
# job's instruction counts (bench/run cost).
ci=(ccache valgrind)

want=()
for group in "${groups[@]}"; do
  case "$group" in
    build) want+=("${build[@]}") ;;
    test)
      [[ -n $clang_major ]] || need "no clang >= 14 with its runtime (clang-NN + libclang-rt-NN-dev)" clang-
      want+=("${build[@]}" "${test[@]}" "clang-$clang_major" "libclang-rt-$clang_major-dev") ;;
    bench) want+=("${build[@]}" "${bench[@]}") ;;
    format)
      # The formatter the code is formatted with (Debian 12's), so CI agrees with it; where
      # there is none (Debian 13), the newest: tools/ci/format-check.sh warns that it may differ.
      if available clang-format-14; then
        want+=(clang-format-14)
      else
        major=$(versions clang-format- "" clang-format- "" | first)
        [[ -n $major ]] || need "no clang-format-NN" clang-format-
        echo "install-deps: no clang-format-14 on $distro; clang-format-$major may format differently" >&2
        want+=("clang-format-$major")
      fi ;;
    ci) want+=("${ci[@]}") ;;
  esac
done
mapfile -t want < <(printf '%s\n' "${want[@]}" | awk '!seen[$0]++')
# node may come from another source than Debian (e.g. NodeSource's nodejs, which bundles npm and
# conflicts with Debian's npm): a node or npm on PATH is accepted, then not needed nor printed.
command -v node >/dev/null && mapfile -t want < <(printf '%s\n' "${want[@]}" | grep -vx nodejs)
command -v npm >/dev/null && mapfile -t want < <(printf '%s\n' "${want[@]}" | grep -vx npm)

if [[ $print -eq 1 ]]; then
  printf '%s\n' "${want[@]}"
  exit 0
fi

missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
[[ ${updated:-0} -eq 1 ]] || $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
