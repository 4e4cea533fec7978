#!/usr/bin/env bash
# Checks that every C++ file under src tests tools bench is clang-format clean (.clang-format
# at the root); changes nothing. Usage: tools/ci/format-check.sh [--fix]
# Uses clang-format-14, the version the project formats with (Debian 12's; on Ubuntu 24.04
# `tools/install-deps.sh format` installs the same major), else $CLANG_FORMAT.
set -euo pipefail
cd "$(dirname "$0")/../.."

cf=${CLANG_FORMAT:-}
if [[ -z $cf ]]; then
  if command -v clang-format-14 >/dev/null; then cf=clang-format-14
  elif command -v clang-format >/dev/null; then cf=clang-format
  else echo "format-check: clang-format not found (tools/install-deps.sh format)" >&2; exit 2
  fi
fi
version=$("$cf" --version)
[[ $version == *"version 14."* ]] || echo "format-check: warning: $version is not 14.x; its output can differ" >&2

mapfile -d '' files < <(find src tests tools bench \
  \( -name node_modules -o -name build -o -name .cache \) -prune -o \
  -type f \( -name '*.cpp' -o -name '*.hpp' -o -name '*.h' -o -name '*.cc' -o -name '*.ipp' \) \
  -print0 2>/dev/null | sort -z)
if [[ ${#files[@]} -eq 0 ]]; then echo "format-check: no C++ files"; exit 0; fi

if [[ ${1:-} == --fix ]]; then
  "$cf" -i "${files[@]}"
  echo "format-check: formatted ${#files[@]} files with $cf"
  exit 0
fi
if "$cf" --dry-run --Werror "${files[@]}"; then
  echo "format-check: ${#files[@]} files clean ($cf)"
else
  echo "format-check: files above are not formatted; run tools/ci/format-check.sh --fix" >&2
  exit 1
fi
