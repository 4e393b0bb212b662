#!/usr/bin/env bash
# curl built on the project's wolfSSL: a hybrid post-quantum (X25519MLKEM768)
# command-line client for systems whose own curl has no ML-KEM (Debian 12).
#
#   scripts/curl-pq.sh [--print-path] [--check]
#
# Fetches the .orig.tar.* of Debian's `curl` SOURCE package (newest release
# of the newer suites first; pre-releases such as ~rc are skipped) through
# the private apt configuration of scripts/deps.sh, checked against the
# SHA-256 of the archive's signed Sources index. curl's wolfSSL backend needs
# wolfSSL's OpenSSL compatibility layer (`--enable-curl`), which pqproxy's own
# static build leaves out, so a wolfSSL variant is built with deps.sh's
# build function: the same flags and patches (ML-KEM, pqc-hybrids, ML-DSA)
# plus --enable-curl, cached under its own key. curl itself is configured
# minimal (HTTP(S) only, static, no optional library but Debian's libnghttp2
# for --http2, already among deps.sh's packages) and installed into
#
#   ${PQPROXY_CACHE:-${XDG_CACHE_HOME:-~/.cache}/pqproxy}/curl-<version>-<key>/bin/curl
#
# Idempotent: a second run takes well under a second. The first run takes a
# few minutes (wolfSSL variant + curl). `make curl` runs it; `make test` too.
#
# --print-path  print the curl binary's path on stdout (building it if needed)
# --check       print it if it is already built, else exit 1 (builds nothing)
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=deps.sh
. "$HERE/deps.sh"     # CACHE, SUITES, setup_private_apt, source_candidates, fetch_verified, build_wolfssl, ...

log() { printf 'curl-pq: %s\n' "$*" >&2; }
die() { printf 'curl-pq: error: %s\n' "$*" >&2; exit 1; }

# The wolfSSL variant: deps.sh's flags plus what curl's wolfSSL backend needs.
# ensure_wolfssl/build_wolfssl read wolfssl_configure_flags, so redefining it
# gives the variant its own cache key (and keeps the patches in the key).
eval "$(declare -f wolfssl_configure_flags | sed '1s/wolfssl_configure_flags/pqproxy_wolfssl_configure_flags/')"
CURL_WOLFSSL_EXTRA=(--enable-curl)
WOLFSSL_TESTS=0      # a test peer: wolfSSL's own tests run on the proxy's build only
wolfssl_configure_flags() {
    pqproxy_wolfssl_configure_flags
    printf '%s\n' "${CURL_WOLFSSL_EXTRA[@]}"
}

# Build tools beyond deps.sh's SYS_PKGS (installed from Debian 12 if missing).
CURL_BUILD_PKGS=()

curl_configure_flags() {
    printf '%s\n' --disable-shared --enable-static \
        --without-libpsl --without-brotli --without-zstd --without-libidn2 --with-nghttp2 \
        --without-nghttp3 --without-ngtcp2 --without-libssh2 --without-librtmp --without-zlib \
        --without-libgsasl --without-ca-bundle --without-ca-path \
        --disable-ldap --disable-rtsp --disable-dict --disable-telnet --disable-tftp \
        --disable-pop3 --disable-imap --disable-smtp --disable-gopher --disable-mqtt \
        --disable-manual --disable-docs
}

curl_ok() { [ -f "$1/.pqproxy-complete" ] && [ -x "$1/bin/curl" ]; }

# Key of a curl build: its flags and the wolfSSL variant it links.
curl_key() {
    { curl_configure_flags; printf '%s\n' "$1"; } | sha256sum | cut -c1-12
}

cached_curl() {
    local d
    for d in $(ls -d "$CACHE"/curl-*-* 2>/dev/null | sort -rV); do
        curl_ok "$d" && { printf '%s\n' "$d"; return 0; }
    done
    return 1
}

# The wolfSSL variant's prefix on stdout (built under deps.sh's lock).
curl_wolfssl_root() {
    (
        exec 9>"$CACHE/.lock"; flock 9
        unset WOLFSSL_ROOT   # the variant is always ours, never a user's install
        ensure_wolfssl
        grep -q 'define OPENSSL_EXTRA' "$WOLFSSL_ROOT/include/wolfssl/options.h" ||
            die "$WOLFSSL_ROOT lacks OPENSSL_EXTRA (--enable-curl)"
        printf '%s\n' "$WOLFSSL_ROOT"
    )
}

build_curl() {
    local src="$1" prefix="$2" wolf="$3" flags
    mapfile -t flags < <(curl_configure_flags)
    log "building curl in $src against $wolf (a few minutes, once)"
    (
        cd "$src"
        # static wolfSSL: its private libraries (libm, pthread) go on the link line
        ./configure --prefix="$prefix" --with-wolfssl="$wolf" "${flags[@]}" \
            CPPFLAGS="-I$wolf/include" LDFLAGS="-L$wolf/lib" LIBS="-lm -lpthread" \
            >"$src/configure.log" 2>&1 || { tail -30 "$src/configure.log" >&2; exit 1; }
        sed -n '/Configured to build curl/,$p' "$src/configure.log" |
            grep -E 'SSL:|Protocols:|Features:' | sed 's/^/curl-pq:   /' >&2 || true
        make -j"$JOBS" >"$src/make.log" 2>&1 || { tail -40 "$src/make.log" >&2; exit 1; }
        make install >"$src/install.log" 2>&1 || { tail -20 "$src/install.log" >&2; exit 1; }
    )
    "$prefix/bin/curl" --version | head -n1 | grep -q 'wolfSSL/' ||
        { log "the built curl does not use wolfSSL"; return 1; }
}

ensure_curl() {
    local wolf key
    wolf="$(curl_wolfssl_root)" || die "the wolfSSL variant for curl could not be built"
    key="$(curl_key "$wolf")"
    local d
    if [ "$UPDATE_LOCK" != 1 ]; then     # the pinned version (deps.lock), built for this wolfSSL
        d="$CACHE/curl-$(upstream_version "$(lock_version curl)")-$key"
        if curl_ok "$d"; then CURL_DIR="$d"; return 0; fi
    fi
    install_system_packages "${CURL_BUILD_PKGS[@]}"
    local cands
    cands="$( exec 9>"$CACHE/.lock"; flock 9; setup_private_apt; candidates curl curl )"
    [ -n "$cands" ] || die "no curl source package found in suites: $SUITES"
    local ver dir orig sha size up
    while IFS=$'\t' read -r ver dir orig sha size; do
        [ -n "$ver" ] || continue
        up="$(upstream_version "$ver")"
        case "$up" in *'~'*) log "curl $ver is a pre-release; skipped"; continue ;; esac
        local prefix="$CACHE/curl-$up-$key"
        if curl_ok "$prefix"; then
            lock_record curl "$ver" "$dir/$orig" "$sha" "$size"
            CURL_DIR="$prefix"; return 0
        fi
        local src work
        src="$( exec 9>"$CACHE/.lock"; flock 9
                setup_private_apt
                fetch_source curl "$ver" "$dir" "$orig" "$sha" "$size" )" ||
            { lock_unavailable curl "$ver" "$dir/$orig"; log "curl $ver: trying the next candidate"; continue; }
        work="$(dirname "$src")"
        rm -rf "$prefix"
        if build_curl "$src" "$prefix" "$wolf" &&
           printf 'Debian %s\nwolfSSL %s\n%s\n' "$ver" "$wolf" \
               "$(curl_configure_flags | tr '\n' ' ')" > "$prefix/BUILDINFO" &&
           touch "$prefix/.pqproxy-complete" && curl_ok "$prefix"; then
            rm -rf "$work"
            log "$("$prefix/bin/curl" --version | head -n1)"
            log "curl $up installed: $prefix/bin/curl"
            lock_record curl "$ver" "$dir/$orig" "$sha" "$size"
            CURL_DIR="$prefix"; return 0
        fi
        log "curl $ver failed to build (logs kept in $src); trying the next candidate"
        rm -rf "$prefix"
    done <<<"$cands"
    die "no curl could be fetched and built against wolfSSL"
}

curl_pq_main() {
    local print=0 check=0
    while [ $# -gt 0 ]; do
        case "$1" in
            --print-path) print=1 ;;
            --check) check=1 ;;
            -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
            *) die "unknown argument: $1" ;;
        esac
        shift
    done
    mkdir -p "$CACHE"
    CURL_DIR=""
    if [ $check -eq 1 ]; then
        CURL_DIR="$(cached_curl)" || exit 1
        printf '%s\n' "$CURL_DIR/bin/curl"; return 0
    fi
    # One curl build at a time per cache (deps.sh's lock is held only while
    # the wolfSSL variant is checked or built and while apt is used).
    exec 7>"$CACHE/.curl.lock"
    flock 7
    ensure_curl
    [ $print -eq 0 ] || printf '%s\n' "$CURL_DIR/bin/curl"
}

curl_pq_main "$@"
