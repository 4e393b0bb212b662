#!/usr/bin/env bash
# OpenSSL >= 3.5 shared libraries for the load test's hybrid-capable peers.
#
#   scripts/openssl35.sh [--print-dir] [--check]
#
# Debian 12's nginx, HAProxy and wrk link libssl.so.3 from OpenSSL 3.0, which
# has no ML-KEM. OpenSSL 3.5 keeps the same soname and ABI, and its default
# key-exchange groups start with X25519MLKEM768, so running those binaries
# with LD_LIBRARY_PATH=<dir> makes them hybrid post-quantum peers without
# rebuilding them. This script builds only libssl.so.3 and libcrypto.so.3 from
# Debian's `openssl` SOURCE package of a newer suite into
#
#   ${PQPROXY_CACHE:-${XDG_CACHE_HOME:-~/.cache}/pqproxy}/openssl-<version>/
#
# through the private apt configuration of scripts/deps.sh (same mirror,
# candidates newest first, the .orig.tar.gz checked against the SHA-256 of
# the archive's signed Sources index; a missing .dsc does not matter, only
# the .orig.tar.gz is used). The 3.5 series (LTS, the version the benchmark
# targets name) is preferred; PQPROXY_OPENSSL_SERIES=any takes the newest
# >= 3.5, PQPROXY_OPENSSL_SERIES=3.6 another series. Idempotent: a second
# run takes well under a second. The first build takes several minutes on
# two cores; `make test` never needs it.
#
# --print-dir  print the library directory on stdout (building it if needed)
# --check      print it if it is already built, else exit 1 (builds nothing)
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=deps.sh
. "$HERE/deps.sh"     # CACHE, SUITES, setup_private_apt, source_candidates, fetch_verified, ...

log() { printf 'openssl35: %s\n' "$*" >&2; }
die() { printf 'openssl35: error: %s\n' "$*" >&2; exit 1; }

OPENSSL_MIN=3.5
SERIES="${PQPROXY_OPENSSL_SERIES:-3.5}"
# Only the libraries: no apps, docs, tests; private OPENSSLDIR (no config
# file there, so built-in defaults apply: no Debian 12 openssl.cnf is read).
openssl_configure_flags() {
    printf '%s\n' shared no-docs no-tests no-legacy
}

openssl_ok() {
    [ -f "$1/.pqproxy-complete" ] && [ -f "$1/libssl.so.3" ] && [ -f "$1/libcrypto.so.3" ]
}

series_of() { local v="$1"; printf '%s\n' "${v%.*}"; }

cached_dir() {
    local d
    if [ "$UPDATE_LOCK" != 1 ]; then     # the pinned version (deps.lock)
        d="$CACHE/openssl-$(upstream_version "$(lock_version openssl)")"
        openssl_ok "$d" && { printf '%s\n' "$d"; return 0; }
        return 1
    fi
    for d in $(ls -d "$CACHE"/openssl-3.* 2>/dev/null | sort -rV); do
        openssl_ok "$d" || continue
        if [ "$SERIES" = any ] || [ "$(series_of "${d##*/openssl-}")" = "$SERIES" ]; then
            printf '%s\n' "$d"; return 0
        fi
    done
    return 1
}

build_openssl() {
    local src="$1" prefix="$2" flags
    mapfile -t flags < <(openssl_configure_flags)
    log "building libssl.so.3 + libcrypto.so.3 in $src (several minutes, once)"
    (
        cd "$src"
        ./Configure "${flags[@]}" --prefix="$prefix/install" --openssldir="$prefix/ssl" \
            >"$src/configure.log" 2>&1 || { tail -30 "$src/configure.log" >&2; exit 1; }
        make -j"$JOBS" build_libs >"$src/make.log" 2>&1 || { tail -40 "$src/make.log" >&2; exit 1; }
        mkdir -p "$prefix"
        cp -L libssl.so.3 libcrypto.so.3 "$prefix/"
    )
}

ensure_openssl() {
    local d
    if d="$(cached_dir)"; then OPENSSL_DIR="$d"; return 0; fi
    [ "${1:-}" != check ] || return 1
    # The private apt state is shared with deps.sh: hold its lock while
    # reading indexes and fetching, not during the (long) build.
    local cands
    cands="$(
        exec 9>"$CACHE/.lock"; flock 9
        setup_private_apt
        candidates openssl openssl
    )"
    [ -n "$cands" ] || die "no openssl source package found in suites: $SUITES"
    # Preferred series first (newest first within it), then the others.
    local ordered
    ordered="$(
        awk -F'\t' -v s="$SERIES" '{ v = $1; sub(/^[0-9]+:/, "", v); split(v, a, "."); if (s == "any" || a[1] "." a[2] == s) print }' <<<"$cands"
        awk -F'\t' -v s="$SERIES" '{ v = $1; sub(/^[0-9]+:/, "", v); split(v, a, "."); if (s != "any" && a[1] "." a[2] != s) print }' <<<"$cands"
    )"
    local ver dir orig sha size up
    while IFS=$'\t' read -r ver dir orig sha size; do
        [ -n "$ver" ] || continue
        up="$(upstream_version "$ver")"
        if ! dpkg --compare-versions "$up" ge "$OPENSSL_MIN"; then
            log "OpenSSL $ver is older than $OPENSSL_MIN; skipped"; continue
        fi
        local prefix="$CACHE/openssl-$up"
        if openssl_ok "$prefix"; then
            lock_record openssl "$ver" "$dir/$orig" "$sha" "$size"
            OPENSSL_DIR="$prefix"; return 0
        fi
        local src work
        src="$( exec 9>"$CACHE/.lock"; flock 9
                setup_private_apt
                fetch_source openssl "$ver" "$dir" "$orig" "$sha" "$size" )" ||
            { lock_unavailable openssl "$ver" "$dir/$orig"; log "OpenSSL $ver: trying the next candidate"; continue; }
        work="$(dirname "$src")"
        rm -rf "$prefix"
        if build_openssl "$src" "$prefix" &&
           printf 'Debian %s\n%s\n' "$ver" "$(openssl_configure_flags | tr '\n' ' ')" > "$prefix/BUILDINFO" &&
           touch "$prefix/.pqproxy-complete" && openssl_ok "$prefix"; then
            rm -rf "$work"
            log "OpenSSL $up shared libraries in $prefix"
            lock_record openssl "$ver" "$dir/$orig" "$sha" "$size"
            OPENSSL_DIR="$prefix"; return 0
        fi
        log "OpenSSL $ver failed to build (logs kept in $src); trying the next candidate"
        rm -rf "$prefix"
    done <<<"$ordered"
    die "no OpenSSL >= $OPENSSL_MIN could be fetched and built"
}

openssl35_main() {
    local print=0 check=0
    while [ $# -gt 0 ]; do
        case "$1" in
            --print-dir) print=1 ;;
            --check) check=1 ;;
            -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
            *) die "unknown argument: $1" ;;
        esac
        shift
    done
    mkdir -p "$CACHE"
    OPENSSL_DIR=""
    if [ $check -eq 1 ]; then
        ensure_openssl check || exit 1
        printf '%s\n' "$OPENSSL_DIR"; return 0
    fi
    # One build at a time per cache (a separate lock from deps.sh's, so a
    # concurrent `make` is not held up by this build).
    exec 8>"$CACHE/.openssl.lock"
    flock 8
    ensure_openssl
    [ $print -eq 0 ] || printf '%s\n' "$OPENSSL_DIR"
}

openssl35_main "$@"
