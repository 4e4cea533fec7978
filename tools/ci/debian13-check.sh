#!/usr/bin/env bash
# shellcheck disable=SC2016  # the single-quoted commands expand inside the chroot
# Builds the release preset with Debian 13's toolchain (g++ 14, Boost, libmongoc 1.30, Catch2 3)
# and runs the whole test suite, inside the cached trixie chroot of tools/ci/trixie-chroot.sh.
# Usage: tools/ci/debian13-check.sh [--clang]
#   --clang   also build the `clang` preset with trixie's newest clang (no tests).
# Exits 0 when everything passed, 1 on a build or test failure, 3 with one "skip: <reason>"
# line on stderr when the chroot cannot be had here (not root, registry unreachable).
#
# The source tree (tracked and untracked-but-not-ignored files, as they are now) is copied to
# /build/coroserve inside the chroot; its build/ stays there between runs. A host ccache
# ($CCACHE_DIR) is bind-mounted and used.
set -euo pipefail
cd "$(dirname "$0")/../.."
src=$(pwd -P)
chroot_sh=$src/tools/ci/trixie-chroot.sh

clang=0
for arg in "$@"; do
  case "$arg" in
    --clang) clang=1 ;;
    *) echo "debian13-check: unknown argument '$arg' (--clang)" >&2; exit 2 ;;
  esac
done

stage() { echo "debian13-check: $*" >&2; }

# 1. The chroot (created on first use) with what install-deps.sh says trixie needs.
rc=0
"$chroot_sh" ensure || rc=$?
[[ $rc -eq 0 ]] || exit "$rc"  # 3 = skip (its message is already on stderr)
root=$("$chroot_sh" path)
# One check at a time: they share the copy in the chroot.
exec 8>"$root.check.lock"
flock -n 8 || { stage "waiting for another debian13-check"; flock 8; }
mapfile -t pkgs < <("$chroot_sh" run --bind "$src" -- "$src/tools/install-deps.sh" --print build test ci)
[[ ${#pkgs[@]} -gt 0 ]] || { stage "tools/install-deps.sh --print found nothing in the chroot"; exit 1; }
"$chroot_sh" ensure "${pkgs[@]}" || exit $?

# 2. A copy of the tree (the host's build/ and node_modules/ are not copied).
dst=/build/coroserve
mkdir -p "$root$dst"
find "$root$dst" -mindepth 1 -maxdepth 1 ! -name build -exec rm -rf {} +
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
  git -C "$src" ls-files -z --cached --others --exclude-standard |
    (cd "$src" && xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh) |
    tar -C "$src" --null -T - -cf - | tar -C "$root$dst" -xf -
else
  tar -C "$src" --exclude=./build --exclude=node_modules -cf - . | tar -C "$root$dst" -xf -
fi
stage "copied $src to $root$dst"

binds=()
env_args=()
if [[ -n ${CCACHE_DIR:-} && -d $CCACHE_DIR ]]; then
  binds+=(--bind "$CCACHE_DIR")
  env_args+=("CCACHE_DIR=$CCACHE_DIR")
fi

# 3. Configure, build (keep going, to test all that builds), test.
inside() {
  "$chroot_sh" run "${binds[@]}" -- /usr/bin/env "${env_args[@]}" CCACHE_BASEDIR=/build \
    CMAKE_CXX_COMPILER_LAUNCHER=ccache COROSERVE_JOBS="${COROSERVE_JOBS:-2}" \
    bash -c "cd $dst && $1"
}
inside 'echo "debian13-check: $(. /etc/os-release && echo "$PRETTY_NAME"), $(g++ --version | head -1), cmake $(cmake --version | head -1 | cut -d" " -f3)" >&2'

failed=()
t0=$SECONDS
if [[ -f $root$dst/tests/standin/node/package-lock.json ]]; then
  inside 'cd tests/standin/node && npm ci --no-audit --no-fund --loglevel=error' || failed+=("npm ci")
fi
if ! inside 'cmake --preset release >/dev/null'; then
  stage "configure failed"
  exit 1
fi
if ! inside 'cmake --build --preset release -j "$COROSERVE_JOBS" -- -k 0'; then
  failed+=("build (g++)")
fi
stage "build: $((SECONDS - t0)) s"
t0=$SECONDS
# A test that fails once gets one more try here (ctest prints both attempts): two timing
# tests that had never run under CTest before each failed once in this chroot and were fixed;
# the Debian 12 suite in .ci/run stays without retries.
if ! inside 'ctest --preset release -j 2 --repeat until-pass:2'; then
  failed+=("ctest")
fi
stage "ctest: $((SECONDS - t0)) s"

if [[ $clang -eq 1 ]]; then
  t0=$SECONDS
  if ! inside 'cmake --preset clang >/dev/null && cmake --build --preset clang -j "$COROSERVE_JOBS" -- -k 0'; then
    failed+=("build (clang)")
  fi
  stage "clang build: $((SECONDS - t0)) s"
fi

if [[ ${#failed[@]} -gt 0 ]]; then
  stage "FAILED: ${failed[*]}"
  exit 1
fi
stage "passed"
