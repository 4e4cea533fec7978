#!/usr/bin/env bash
# shellcheck disable=SC2016  # single-quoted $ are for the inner shell / dpkg-query
# A cached Debian 13 (trixie) chroot for building and testing coroserve with trixie's toolchain.
#
#   tools/ci/trixie-chroot.sh path             print the chroot directory
#   tools/ci/trixie-chroot.sh ensure [PKG...]  create it if missing (mmdebstrap), install the host's
#                                              CA certificates in it, apt-get install missing PKGs
#   tools/ci/trixie-chroot.sh run [--bind DIR]... -- CMD [ARGS...]
#                                              run CMD inside, with /proc, /sys, /dev, /dev/pts,
#                                              /dev/shm and every DIR (same path) mounted
#
# The directory is ${COROSERVE_TRIXIE_DIR:-/var/cache/coroserve/trixie}. The apt sources are this
# machine's Debian mirror (read from /etc/apt/sources.list*; COROSERVE_DEBIAN_MIRROR overrides it)
# with suite trixie. `ensure` exits 3
# with one line "skip: <reason>" on stderr when it cannot work here (not root, no mmdebstrap, the
# registry unreachable). `run` uses a private mount namespace (unshare -m) so that concurrent runs
# do not unmount each other's /proc, and unmounts on exit anyway; the network namespace is the
# host's (127.0.0.1 is shared). Progress goes to stderr; `run` exits with CMD's status.
set -euo pipefail

readonly SUITE=trixie
ROOT="${COROSERVE_TRIXIE_DIR:-/var/cache/coroserve/trixie}"
ROOT="${ROOT%/}"

say() { echo "trixie-chroot: $*" >&2; }
die() {
    say "error: $*"
    exit 2
}
skip() {
    echo "skip: $*" >&2
    exit 3
}
usage() {
    sed -n '5,10p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# The URI of the first apt source (one-line or deb822 format) that serves the host's own Debian
# release (suite == VERSION_CODENAME) from a "debian" archive, and the one serving its security
# suite. Printed as "main URI" / "security URI" lines.
host_sources() {
    local codename
    # shellcheck disable=SC1091
    codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
    [[ -n "$codename" ]] || return 0
    local files=()
    [[ -f /etc/apt/sources.list ]] && files+=(/etc/apt/sources.list)
    local f
    for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [[ -f "$f" ]] && files+=("$f")
    done
    ((${#files[@]})) || return 0
    awk -v cn="$codename" '
        function emit(uris, suites,    n, m, i, j, u, s) {
            n = split(uris, u, /[ \t]+/); m = split(suites, s, /[ \t]+/)
            for (i = 1; i <= n; i++) for (j = 1; j <= m; j++) {
                if (u[i] == "") continue
                if (s[j] == cn) print "main " u[i]
                else if (s[j] == cn "-security" || s[j] == cn "/updates") print "security " u[i]
            }
        }
        FNR == 1 { if (deb) emit(uris, suites); deb = 0; uris = ""; suites = "" }
        FILENAME ~ /\.sources$/ {
            if ($0 ~ /^[ \t]*$/) { if (deb) emit(uris, suites); deb = 0; uris = ""; suites = ""; next }
            if ($0 ~ /^[ \t]*#/) next
            if (tolower($1) == "types:" && $0 ~ /[ \t]deb([ \t]|$)/) deb = 1
            if (tolower($1) == "uris:") { uris = $0; sub(/^[^:]*:[ \t]*/, "", uris) }
            if (tolower($1) == "suites:") { suites = $0; sub(/^[^:]*:[ \t]*/, "", suites) }
            next
        }
        $1 == "deb" {
            i = 2
            if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
            emit($i, $(i + 1))
        }
        END { if (deb) emit(uris, suites) }
    ' "${files[@]}" 2>/dev/null
}

mirror_uri() {
    if [[ -n "${COROSERVE_DEBIAN_MIRROR:-}" ]]; then
        echo "$COROSERVE_DEBIAN_MIRROR"
        return
    fi
    local uri
    uri="$(host_sources | awk '$1 == "main" { print $2; exit }')"
    echo "${uri:-http://deb.debian.org/debian}"
}

security_uri() {
    host_sources | awk '$1 == "security" { print $2; exit }'
}

# True when URL can be fetched within 20 s (apt's own transport when present, so apt's proxy
# configuration applies).
fetchable() {
    local url="$1" tmp ok=1
    tmp="$(mktemp)"
    if [[ -x /usr/lib/apt/apt-helper ]]; then
        timeout 20 /usr/lib/apt/apt-helper download-file "$url" "$tmp" >/dev/null 2>&1 && ok=0
    elif command -v curl >/dev/null; then
        curl -fsS -m 20 -o "$tmp" "$url" >/dev/null 2>&1 && ok=0
    fi
    rm -f "$tmp"
    return $ok
}

write_sources() {
    local dir="$1" main sec
    main="$(mirror_uri)"
    sec="$(security_uri)"
    {
        printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\n' "$main" "$SUITE" "$SUITE"
        printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
        if [[ -n "$sec" ]]; then
            printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\n' "$sec" "$SUITE"
            printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
        fi
    } >"$dir/etc/apt/sources.list.d/debian.sources"
    rm -f "$dir/etc/apt/sources.list"
}

# Mounts for a chroot session; must run inside a private mount namespace (see cmd_run).
mount_session() {
    local dir="$1"
    shift
    mount -t proc proc "$dir/proc"
    mount -t sysfs sysfs "$dir/sys" 2>/dev/null || mount --rbind /sys "$dir/sys"
    mount --bind /dev "$dir/dev"
    mkdir -p "$dir/dev/pts" "$dir/dev/shm"
    mount --bind /dev/pts "$dir/dev/pts"
    mount --bind /dev/shm "$dir/dev/shm"
    local b
    for b in "$@"; do
        mkdir -p "$dir$b"
        mount --bind "$b" "$dir$b"
    done
    cp -L /etc/resolv.conf "$dir/etc/resolv.conf" 2>/dev/null || true
}

# Unmount everything below DIR, deepest first (the namespace would drop them anyway).
unmount_session() {
    local dir="$1" m
    awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo |
        sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done
}

# Internal: runs inside `unshare --mount --propagation private`.
cmd_run_inner() {
    local binds=()
    while (($#)) && [[ "$1" != "--" ]]; do
        binds+=("$1")
        shift
    done
    shift
    trap 'unmount_session "$ROOT"' EXIT
    mount_session "$ROOT" "${binds[@]}"
    local cwd=/ here
    here="$(pwd -P)"
    local b
    for b in "${binds[@]}"; do
        if [[ "$here" == "$b" || "$here" == "$b"/* ]]; then
            cwd="$here"
        fi
    done
    local envs=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
        LANG=C.UTF-8 TERM="${TERM:-dumb}" DEBIAN_FRONTEND=noninteractive)
    local v
    while IFS= read -r v; do
        envs+=("$v=${!v}")
    done < <(compgen -v | grep -E '^(CCACHE_|CMAKE_|CTEST_|COROSERVE_|CC$|CXX$)' || true)
    local rc=0
    chroot "$ROOT" /usr/bin/env -i "${envs[@]}" /bin/sh -c 'cd "$1" && shift && exec "$@"' sh \
        "$cwd" "$@" || rc=$?
    return $rc
}

cmd_run() {
    local binds=()
    while (($#)); do
        case "$1" in
        --bind)
            (($# >= 2)) || die "--bind needs a directory"
            [[ -d "$2" ]] || die "--bind $2: not a directory"
            binds+=("$(cd "$2" && pwd -P)")
            shift 2
            ;;
        --) break ;;
        *) die "run: expected --bind DIR or --, got '$1'" ;;
        esac
    done
    [[ "${1:-}" == "--" ]] || die "run: missing -- before the command"
    shift
    (($#)) || die "run: no command"
    [[ $EUID -eq 0 ]] || die "run needs root (mount, chroot)"
    [[ -x "$ROOT/usr/bin/env" ]] || die "no chroot at $ROOT (run: $0 ensure)"
    exec unshare --mount --propagation private -- "$0" _run-inner "${binds[@]}" -- "$@"
}

installed() {
    chroot "$ROOT" dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null | grep -qx installed
}

lists_fresh() {
    # apt lists newer than 6 hours
    [[ -n "$(find "$ROOT/var/lib/apt/lists" -maxdepth 1 -name '*_Packages' -mmin -360 2>/dev/null |
        head -1)" ]]
}

cmd_ensure() {
    [[ $EUID -eq 0 ]] || skip "not root (mmdebstrap and chroot need root)"
    command -v mmdebstrap >/dev/null || skip "mmdebstrap is not installed (apt-get install mmdebstrap)"
    local mirror
    mirror="$(mirror_uri)"
    fetchable "$mirror/dists/$SUITE/InRelease" ||
        skip "the Debian registry $mirror (suite $SUITE) cannot be reached"

    mkdir -p "$(dirname "$ROOT")"
    exec 9>"$ROOT.lock"
    if ! flock -n 9; then
        say "waiting for another ensure on $ROOT"
        flock 9
    fi

    if [[ ! -x "$ROOT/usr/bin/apt-get" ]]; then
        local tmp="$ROOT.new.$$" t0=$SECONDS
        rm -rf "$tmp"
        say "creating $ROOT: mmdebstrap $SUITE from $mirror"
        if ! mmdebstrap --mode=root --variant=apt --components=main \
            --include=ca-certificates,debian-archive-keyring \
            "$SUITE" "$tmp" "deb $mirror $SUITE main" >&2; then
            rm -rf "$tmp"
            die "mmdebstrap failed"
        fi
        write_sources "$tmp"
        rm -rf "$ROOT"
        mv "$tmp" "$ROOT"
        say "created in $((SECONDS - t0)) s"
    fi
    write_sources "$ROOT"

    # The host's extra CA certificates (an egress proxy's, for npm/pip inside the chroot).
    local cadir=/usr/local/share/ca-certificates changed=0 c
    mkdir -p "$ROOT$cadir"
    if [[ -d "$cadir" ]]; then
        for c in "$cadir"/*.crt; do
            [[ -f "$c" ]] || continue
            if ! cmp -s "$c" "$ROOT$cadir/$(basename "$c")"; then
                cp "$c" "$ROOT$cadir/"
                changed=1
            fi
        done
    fi
    if ((changed)) || [[ ! -s "$ROOT/etc/ssl/certs/ca-certificates.crt" ]]; then
        say "update-ca-certificates"
        chroot "$ROOT" update-ca-certificates >&2
    fi

    # Package lists (mmdebstrap removes them), so that apt-cache answers inside the chroot.
    if [[ -z "$(find "$ROOT/var/lib/apt/lists" -maxdepth 1 -name '*_Packages' 2>/dev/null)" ]]; then
        "$0" run -- apt-get -q update >&2 || die "apt-get update failed"
    fi

    local missing=() p
    for p in "$@"; do
        installed "$p" || missing+=("$p")
    done
    if ((${#missing[@]})); then
        local t0=$SECONDS
        say "installing ${#missing[@]} package(s): ${missing[*]}"
        if ! lists_fresh; then
            "$0" run -- apt-get -q update >&2 || die "apt-get update failed"
        fi
        "$0" run -- apt-get -q -y -o DPkg::Lock::Timeout=600 install --no-install-recommends \
            "${missing[@]}" >&2 || die "apt-get install failed"
        say "installed in $((SECONDS - t0)) s"
    fi
    say "ready: $ROOT"
}

case "${1:-}" in
path)
    echo "$ROOT"
    ;;
ensure)
    shift
    cmd_ensure "$@"
    ;;
run)
    shift
    cmd_run "$@"
    ;;
_run-inner)
    shift
    cmd_run_inner "$@"
    ;;
*) usage ;;
esac
