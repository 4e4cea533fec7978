#!/usr/bin/env bash
# Asks apt to resolve every group of tools/install-deps.sh together (a simulation: nothing is
# installed), so that a package that conflicts with another group's (python3-matplotlib pulled
# libboost-dev 1.74 against libboost1.81-dev) is caught. Runs on Debian; elsewhere exits 77
# (CTest: skipped) with the reason. As in install-deps.sh, nodejs/npm are left to a node/npm
# that is already on PATH (e.g. NodeSource's nodejs, which conflicts with Debian's npm).
set -euo pipefail
cd "$(dirname "$0")/../.."

# shellcheck disable=SC1091
id=$(. /etc/os-release 2>/dev/null && echo "${ID:-}")
if [[ $id != debian ]]; then
  echo "apt-resolve-check: skipped: not Debian (ID=${id:-unknown}); the groups are resolved on Debian only" >&2
  exit 77
fi
command -v apt-get >/dev/null || { echo "apt-resolve-check: skipped: no apt-get" >&2; exit 77; }

mapfile -t pkgs < <(tools/install-deps.sh --print build test bench format ci)
kept=()
for pkg in "${pkgs[@]}"; do
  if [[ $pkg == nodejs ]] && command -v node >/dev/null; then echo "apt-resolve-check: node is on PATH: nodejs left out"; continue; fi
  if [[ $pkg == npm ]] && command -v npm >/dev/null; then echo "apt-resolve-check: npm is on PATH: npm left out"; continue; fi
  kept+=("$pkg")
done
echo "apt-resolve-check: apt-get install -s --no-install-recommends ${kept[*]}"
if ! out=$(apt-get install -s --no-install-recommends "${kept[@]}" 2>&1); then
  printf '%s\n' "$out" >&2
  echo "apt-resolve-check: apt cannot install all groups together" >&2
  exit 1
fi
printf '%s\n' "$out" | grep -E '^[0-9]+ upgraded' || true
echo "apt-resolve-check: all groups resolve together"
