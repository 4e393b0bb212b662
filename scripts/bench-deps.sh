#!/usr/bin/env bash
# Installs the load-test peers and tools from Debian 12, idempotently.
#
#   scripts/bench-deps.sh [--check] [--no-openssl35]
#
# - nginx-light (nginx 1.22, OpenSSL 3.0), haproxy (2.6), hitch (1.7): the
#   TLS-terminating anchors pqproxy is compared with in loadtest/run.sh;
#   nginx also serves as the plaintext upstream.
# - wrk (4.1, OpenSSL 3.0: classical X25519 only): the load generator.
# - nghttp2-client (h2load 1.52, OpenSSL 3.0): the HTTP/2 load generator of
#   loadtest/h2.sh.
# - gnuplot-nox: the PNG charts.
# - redis-server (7.0): the shared replay store of scenario 9.
# - OpenSSL 3.5 shared libraries (scripts/openssl35.sh, built once into the
#   cache, several minutes the first time): run with LD_LIBRARY_PATH, the
#   Debian 12 nginx, HAProxy, hitch and wrk above negotiate X25519MLKEM768
#   (load-test scenarios 3, 5, 8 and the hybrid variant of 1).
#   --no-openssl35 skips it (`make bench` quick mode: those scenarios then
#   run only if the libraries are already built).
# Everything comes from the system's apt, only when missing; the system's apt
# sources are not touched. --check only reports what is missing (exit 1 if
# anything is). Package services are not started by this script.
set -euo pipefail

BENCH_PKGS=(nginx-light haproxy hitch wrk nghttp2-client gnuplot-nox curl procps redis-server)

log() { printf 'bench-deps: %s\n' "$*" >&2; }
die() { printf 'bench-deps: error: %s\n' "$*" >&2; exit 1; }

missing_packages() {
    local p
    for p in "${BENCH_PKGS[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || printf '%s\n' "$p"
    done
}

main() {
    local check=0 ossl=1
    while [ $# -gt 0 ]; do
        case "$1" in
            --check) check=1 ;;
            --no-openssl35) ossl=0 ;;
            *) die "unknown argument: $1" ;;
        esac
        shift
    done
    local missing=()
    mapfile -t missing < <(missing_packages)
    if [ ${#missing[@]} -eq 0 ]; then
        ensure_openssl35 "$check" "$ossl"
        return 0
    fi
    if [ $check -eq 1 ]; then
        log "missing: ${missing[*]}"
        return 1
    fi
    log "installing Debian packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    local aptlog; aptlog="$(mktemp)"
    # Stay out of other apt runs' way (deps.sh, other clones): wait on the dpkg lock.
    if ! { $sudo apt-get update -qq &&
           DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq -o DPkg::Lock::Timeout=300 \
               --no-install-recommends "${missing[@]}"; } >"$aptlog" 2>&1; then
        tail -n 30 "$aptlog" >&2; rm -f "$aptlog"
        die "apt-get could not install: ${missing[*]}"
    fi
    rm -f "$aptlog"
    # Debian starts packaged daemons on install where it can; the load test
    # runs its own instances on loopback ports, never the system services.
    mapfile -t missing < <(missing_packages)
    [ ${#missing[@]} -eq 0 ] || die "still missing after apt-get: ${missing[*]}"
    ensure_openssl35 "$check" "$ossl"
}

ensure_openssl35() {   # check wanted
    [ "$2" -eq 1 ] || return 0
    local here; here="$(cd "$(dirname "$0")" && pwd)"
    if [ "$1" -eq 1 ]; then
        "$here/openssl35.sh" --check >/dev/null || { log "missing: OpenSSL 3.5 libraries (scripts/openssl35.sh)"; return 1; }
        return 0
    fi
    "$here/openssl35.sh" || die "OpenSSL 3.5 libraries could not be built (scripts/openssl35.sh)"
}

main "$@"
