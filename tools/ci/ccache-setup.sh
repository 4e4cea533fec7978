#!/usr/bin/env bash
# Sets up ccache for a CI build and tells GitHub Actions about it.
#   tools/ci/ccache-setup.sh PRESET [--share-dirs]   install ccache, print the cache key
#   tools/ci/ccache-setup.sh --stats                 print this job's hit statistics, then zero
#                                                    them (the cache is saved after the job, so
#                                                    the next job starts from zero)
# The key names the compiler version and the preset, because objects from another compiler
# or other flags are never hits. With --share-dirs, builds of two checkouts inside the
# workspace (the perf job's head and base) hit each other's objects.
# Outside GitHub Actions it only prints what it would export.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [[ ${1:-} == --stats ]]; then
  ccache --show-stats || true
  ccache --zero-stats >/dev/null || true
  exit 0
fi
preset=${1:?usage: ccache-setup.sh PRESET [--share-dirs] | --stats}
share=${2:-}

tools/install-deps.sh ci
compiler=$(c++ -dumpfullversion 2>/dev/null || c++ -dumpversion)
compiler="$(basename "$(readlink -f "$(command -v c++)")")-$compiler"
workspace=${GITHUB_WORKSPACE:-$PWD}
cache_dir=${CCACHE_DIR:-$HOME/.cache/ccache}

env_lines=("CCACHE_DIR=$cache_dir" "CCACHE_MAXSIZE=500M" "CCACHE_COMPRESS=true"
           "CMAKE_CXX_COMPILER_LAUNCHER=ccache" "CMAKE_C_COMPILER_LAUNCHER=ccache")
if [[ $share == --share-dirs ]]; then
  env_lines+=("CCACHE_BASEDIR=$workspace" "CCACHE_NOHASHDIR=true")
fi
key="ccache-${RUNNER_OS:-local}-$compiler-$preset"

if [[ -n ${GITHUB_ENV:-} ]]; then printf '%s\n' "${env_lines[@]}" >> "$GITHUB_ENV"; fi
if [[ -n ${GITHUB_OUTPUT:-} ]]; then
  { echo "key=$key"; echo "dir=$cache_dir"; } >> "$GITHUB_OUTPUT"
fi
printf 'ccache-setup: %s\n' "key=$key" "${env_lines[@]}"
