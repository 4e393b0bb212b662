#!/usr/bin/env bash
# pqproxy against TLS-terminating anchors (nginx, HAProxy, hitch), on loopback.
#
#   loadtest/run.sh [--quick] [--stock-anchors] [--pqproxy PATH] [--out DIR] [--scenarios "1 2 3 4 5 6 7 8"]
#
# Starts one plaintext upstream (nginx: a small JSON document and /bytes/
# files), then each TLS proxy in front of it with the same ECDSA P-256
# certificate (pqproxy certgen), TLS 1.3 only, one worker each (and a
# two-worker variant). nginx and HAProxy forward the fields pqproxy adds
# (X-Forwarded-For, -Proto, -Host, X-Request-Id; loadtest/lib.sh), checked
# at the upstream (check.txt); hitch, a TLS terminator, adds none.
# --stock-anchors: nginx and HAProxy on their defaults, adding none. It runs:
#   1  keep-alive small requests (wrk), interleaved rounds, direct baseline
#   2  a new connection per request (wrk -H "Connection: close"): handshakes/s
#   4  a 64 MiB streamed download through each proxy (curl): throughput, RSS
#   6  bytes on the wire per handshake by group (pqproxy bench crypto --json)
#   7  idle keep-alive TLS connections: proxy RSS per connection
#   3  a new connection per request over X25519MLKEM768: wrk, nginx, HAProxy
#      and hitch on OpenSSL 3.5's shared libraries (scripts/openssl35.sh,
#      LD_LIBRARY_PATH), pqproxy under pq_policy "require"; handshakes/s,
#      CPU per handshake vs the primitives of `pqproxy bench crypto`. Also
#      the hybrid variant of scenario 1 (keep-alive), and a check that the
#      hybrid group is really negotiated (hybrid-check.txt). When
#      build/hsgen exists (built here like sigreqs) and there are >= 2 CPUs,
#      also "hsgen, pinned": the same peers measured with hsgen (a wolfSSL
#      client spending ~1/3 of wrk's CPU per handshake) pinned to CPU 0 with
#      the upstream, the server pinned to CPU 1, so the server's capacity,
#      not the client's, sets the rate.
#   5  signed requests (docs/signatures.md): pre-signed requests
#      (build/sigreqs, each nonce once) sent by wrk (wrk-signed.lua) to a
#      route that verifies and signs responses; CPU per signed request vs
#      the raw crypto sum.
#   8  signature isolation: an unsigned route's latency alone and while a
#      signed load saturates the crypto threads.
#   9  the replay store: the same signed requests to pqproxy-sig (local
#      nonce cache) and pqproxy-sigr (signatures.replay_store on a local
#      redis-server), interleaved in each round: at the signing ceiling
#      (16 connections) and one at a time (1 connection: the latency the
#      Redis round trip adds); req/s, p50/p99, CPU per signed request of
#      the proxy and of redis-server; MEMORY USAGE of one key (redis9.txt).
# The classical set (scenarios 1, 2, 4, 7) uses Debian's wrk and curl
# (OpenSSL 3.0: X25519 only) and pqproxy with pq_policy "prefer". Without
# the OpenSSL 3.5 libraries (OPENSSL35_DIR, or scripts/openssl35.sh; --quick
# only uses them when already built) scenario 3 is skipped and 5/8 run on X25519.
#
# Results: loadtest/results/<timestamp>/ (results.md, results.json, *.png, logs).
# Only 127.0.0.1 is used; every loop is bounded; everything started is
# stopped on exit.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
PQPROXY="$ROOT/build/pqproxy"
QUICK=0
STOCK=0
SCENARIOS="1 2 4 6 7 3 5 8 9"
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --stock-anchors) STOCK=1 ;;
        --pqproxy) PQPROXY="$2"; shift ;;
        --out) OUT="$2"; shift ;;
        --scenarios) SCENARIOS="$2"; shift ;;
        -h|--help) sed -n '2,/^set -euo/{/^#/p}' "$0"; exit 0 ;;
        *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

if [ $QUICK -eq 1 ]; then
    DUR=3; ROUNDS=1; CONNS=32; IDLE_N=2000; BIG_MIB=64; WARM=1; SDUR=2
else
    DUR=10; ROUNDS=3; CONNS=64; IDLE_N=10000; BIG_MIB=64; WARM=2; SDUR=10
fi

log() { printf 'loadtest: %s\n' "$*" >&2; }
die() { printf 'loadtest: error: %s\n' "$*" >&2; exit 1; }
has() { case " $SCENARIOS " in *" $1 "*) return 0 ;; esac; return 1; }

LT_NAME=loadtest
. "$HERE/lib.sh"
[ "$STOCK" = 0 ] || LT_SAME_FIELDS=0
lt_same_fields
lt_need_pqproxy "$PQPROXY"
lt_need_tools scripts/bench-deps.sh nginx haproxy hitch wrk curl python3

# OpenSSL 3.5 shared libraries for the hybrid peers (scenario 3 and variants).
OSSL35="${OPENSSL35_DIR:-}"
if [ -z "$OSSL35" ] && { has 1 || has 3 || has 5 || has 8; }; then
    if [ $QUICK -eq 1 ]; then
        OSSL35="$("$ROOT/scripts/openssl35.sh" --check 2>/dev/null || true)"
    else
        OSSL35="$("$ROOT/scripts/openssl35.sh" --print-dir)" || OSSL35=""
    fi
fi
[ -z "$OSSL35" ] || [ -f "$OSSL35/libssl.so.3" ] || die "OPENSSL35_DIR=$OSSL35 has no libssl.so.3"
HYB=0; [ -n "$OSSL35" ] && HYB=1
# A command on OpenSSL 3.5 (its default groups start with X25519MLKEM768).
on35() { env LD_LIBRARY_PATH="$OSSL35" "$@"; }

# sigreqs (scenario 5/8's request generator), an optional CMake target.
SIGREQS="${SIGREQS:-$(dirname "$PQPROXY")/sigreqs}"
if { has 5 || has 8 || has 9; } && [ ! -x "$SIGREQS" ] && [ -f "$(dirname "$PQPROXY")/CMakeCache.txt" ]; then
    cmake --build "$(dirname "$PQPROXY")" --target sigreqs >/dev/null 2>&1 || true
fi

# hsgen (scenario 3's pinned handshake generator), an optional CMake target too.
HSGEN="${HSGEN:-$(dirname "$PQPROXY")/hsgen}"
if has 3 && [ ! -x "$HSGEN" ] && [ -f "$(dirname "$PQPROXY")/CMakeCache.txt" ]; then
    cmake --build "$(dirname "$PQPROXY")" --target hsgen >/dev/null 2>&1 || true
fi

STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
OUT="${OUT:-$HERE/results/$STAMP}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
RUN="$(mktemp -d /tmp/pqproxy-loadtest.XXXXXX)"
chmod 755 "$RUN"
PIDS=()

cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    sleep 0.3
    for p in "${PIDS[@]}"; do
        kill -9 "$p" 2>/dev/null || true
    done
    rm -rf "$RUN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- helpers ---------------------------------------------------------------------

# free_port, wait_port, cpu_ticks, rss_kib: lib.sh
HZ="$(getconf CLK_TCK)"

# --- certificates and content ---------------------------------------------------------

log "results: $OUT"
"$PQPROXY" certgen --out "$RUN/certs" >/dev/null
cat "$RUN/certs/server.crt" "$RUN/certs/server.key" > "$RUN/certs/server-combined.pem"
mkdir -p "$RUN/www/bytes" "$RUN/tmp"
printf '{"predictions": [2.5, 3.0, 4.5]}\n' > "$RUN/www/small.json"
head -c $((BIG_MIB * 1024 * 1024)) /dev/zero > "$RUN/www/bytes/big.bin"
head -c 1024 /dev/zero > "$RUN/www/bytes/1k.bin"

NGINX_USER=""
[ "$(id -u)" -ne 0 ] || NGINX_USER="user root;"

# --- the upstream: nginx, plaintext ----------------------------------------------------

UP_PORT="$(free_port)"
cat > "$RUN/upstream.conf" <<EOF
$NGINX_USER
worker_processes 1;
daemon off;
pid $RUN/upstream.pid;
error_log $RUN/upstream.err warn;
events { worker_connections 20000; }
worker_rlimit_nofile 19000;
http {
    access_log off;
    sendfile on; tcp_nopush on; tcp_nodelay on;
    keepalive_requests 1000000; keepalive_timeout 300s;
    client_body_temp_path $RUN/tmp/up-body; proxy_temp_path $RUN/tmp/up-proxy;
    fastcgi_temp_path $RUN/tmp/up-fcgi; uwsgi_temp_path $RUN/tmp/up-uwsgi; scgi_temp_path $RUN/tmp/up-scgi;
    default_type application/json;
    $(lt_ngx_fields_format)
    server {
        listen 127.0.0.1:$UP_PORT reuseport backlog=4096;
        root $RUN/www;
        $(lt_ngx_fields_log)
        location = /small.json { }
        location /bytes/ { default_type application/octet-stream; }
        # the model endpoints of scenarios 5 and 8 (POST is fine with return)
        location /v1/ { return 200 '{"predictions": [2.5, 3.0, 4.5]}\n'; }
    }
}
EOF
nginx -p "$RUN" -c "$RUN/upstream.conf" >"$RUN/upstream.out" 2>&1 &
UP_PID=$!; PIDS+=("$UP_PID")
wait_port "$UP_PORT" || die "upstream nginx did not start: $(cat "$RUN/upstream.err" "$RUN/upstream.out" 2>/dev/null)"

# --- the proxies ------------------------------------------------------------------------

declare -A PORT PID APORT
start_pqproxy() {   # name workers [policy] [extra top-level JSON members]
    local name="$1" workers="$2" policy="${3:-prefer}" extra="${4:-}" port aport; port="$(free_port)"
    aport="$(free_port)"
    cat > "$RUN/$name.json" <<EOF
{
  "listen": "127.0.0.1:$port",
  "workers": $workers,
  "max_connections": 20000,
  "tls": {
    "certificates": [ { "cert": "certs/server.crt", "key": "certs/server.key" } ],
    "groups": ["X25519MLKEM768", "SecP256r1MLKEM768", "SecP384r1MLKEM1024", "X25519"],
    "pq_policy": "$policy",
    "min_version": "1.3",
    "session_tickets": true,
    "alpn": ["http/1.1"]
  },
  "upstream": { "address": "127.0.0.1:$UP_PORT", "pool_max_idle": 256 },
  "timeouts": { "request_header_ms": 600000, "keepalive_idle_ms": 600000 },
  "log": { "level": "warn", "access_log": "off", "error_log": "$RUN/$name.err" },
  "admin": { "enabled": true, "listen": "127.0.0.1:$aport" }$extra
}
EOF
    (ulimit -n 20000 2>/dev/null || true; exec "$PQPROXY" run --config "$RUN/$name.json") >"$RUN/$name.out" 2>&1 &
    PID[$name]=$!; PIDS+=("${PID[$name]}"); PORT[$name]=$port; APORT[$name]=$aport
}

start_nginx() {   # name workers [hybrid]
    local name="$1" workers="$2" hyb="${3:-}" port; port="$(free_port)"
    local tls_extra="" log="access_log off;" pre=()
    if [ -n "$hyb" ]; then
        # OpenSSL 3.5 underneath; log the negotiated group (buffered: ~1 us/request)
        tls_extra="ssl_ecdh_curve X25519MLKEM768:X25519;"
        log="log_format pq '\$ssl_curve \$ssl_protocol \$status'; access_log $RUN/$name.access pq buffer=64k flush=1s;"
        pre=(env LD_LIBRARY_PATH="$OSSL35")
    fi
    cat > "$RUN/$name.conf" <<EOF
$NGINX_USER
worker_processes $workers;
daemon off;
pid $RUN/$name.pid;
error_log $RUN/$name.err warn;
events { worker_connections 20000; }
worker_rlimit_nofile 19000;
http {
    $log
    client_body_temp_path $RUN/tmp/$name-body; proxy_temp_path $RUN/tmp/$name-proxy;
    fastcgi_temp_path $RUN/tmp/$name-fcgi; uwsgi_temp_path $RUN/tmp/$name-uwsgi; scgi_temp_path $RUN/tmp/$name-scgi;
    keepalive_requests 1000000; keepalive_timeout 600s;
    upstream model { server 127.0.0.1:$UP_PORT; keepalive 256; }
    server {
        listen 127.0.0.1:$port ssl reuseport backlog=4096;
        ssl_certificate $RUN/certs/server.crt;
        ssl_certificate_key $RUN/certs/server.key;
        ssl_protocols TLSv1.3;
        ssl_session_tickets on;
        $tls_extra
        location / {
            proxy_pass http://model;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            $(lt_ngx_fields proxy)
            proxy_buffering off;
        }
    }
}
EOF
    "${pre[@]}" nginx -p "$RUN" -c "$RUN/$name.conf" >"$RUN/$name.out" 2>&1 &
    PID[$name]=$!; PIDS+=("${PID[$name]}"); PORT[$name]=$port
}

start_haproxy() {   # name workers [hybrid]
    local name="$1" workers="$2" hyb="${3:-}" port; port="$(free_port)"
    local curves="" pre=()
    if [ -n "$hyb" ]; then curves=" curves X25519MLKEM768:X25519"; pre=(env LD_LIBRARY_PATH="$OSSL35"); fi
    lt_haproxy_cfg "$workers" "127.0.0.1:$port ssl crt $RUN/certs/server-combined.pem alpn http/1.1$curves" \
        "$UP_PORT" > "$RUN/$name.cfg"
    "${pre[@]}" haproxy -db -f "$RUN/$name.cfg" >"$RUN/$name.out" 2>&1 &
    PID[$name]=$!; PIDS+=("${PID[$name]}"); PORT[$name]=$port
}

start_hitch() {   # name workers [hybrid: OpenSSL 3.5's default groups]
    local name="$1" workers="$2" hyb="${3:-}" port pre=(); port="$(free_port)"
    [ -z "$hyb" ] || pre=(env LD_LIBRARY_PATH="$OSSL35")
    cat > "$RUN/$name.conf" <<EOF
frontend = "[127.0.0.1]:$port"
backend = "[127.0.0.1]:$UP_PORT"
workers = $workers
daemon = off
pem-file = "$RUN/certs/server-combined.pem"
tls-protos = TLSv1.3
backlog = 4096
EOF
    # hitch refuses to run its workers as root
    [ "$(id -u)" -ne 0 ] || printf 'user = "nobody"\ngroup = "nogroup"\n' >> "$RUN/$name.conf"
    "${pre[@]}" hitch --config="$RUN/$name.conf" >"$RUN/$name.out" 2>&1 &
    PID[$name]=$!; PIDS+=("${PID[$name]}"); PORT[$name]=$port
}

PROXIES1=(pqproxy nginx haproxy hitch)
PROXIES2=(pqproxy-2w nginx-2w haproxy-2w hitch-2w)
start_pqproxy pqproxy 1
start_nginx nginx 1
start_haproxy haproxy 1
start_hitch hitch 1
start_pqproxy pqproxy-2w 2
start_nginx nginx-2w 2
start_haproxy haproxy-2w 2
start_hitch hitch-2w 2
# The hybrid set: every TLS peer on OpenSSL 3.5, pqproxy under "require".
PROXIESH=()
if [ $HYB -eq 1 ] && { has 1 || has 3; }; then
    PROXIESH=(pqproxy-h nginx-h haproxy-h hitch-h)
    start_pqproxy pqproxy-h 1 require
    start_nginx nginx-h 1 hybrid
    start_haproxy haproxy-h 1 hybrid
    start_hitch hitch-h 1 hybrid
fi

# Scenarios 5 and 8: one pqproxy whose /v1/signed/ route requires a valid
# dual signature and signs its responses; /v1/plain/ is an unsigned route.
SIGPROXY=()
SIG_TOTAL_MAX=4000000      # nonces the replay cache must hold for the whole run
if { has 5 || has 8 || has 9; } && [ -x "$SIGREQS" ]; then
    mkdir -p "$RUN/sig/keyring"
    "$PQPROXY" keygen --alg hybrid --out "$RUN/sig/client-a" >/dev/null
    "$PQPROXY" keygen --alg hybrid --out "$RUN/sig/proxy" >/dev/null
    cp "$RUN/sig/client-a.ecdsa.pub" "$RUN/sig/client-a.mldsa.pub" "$RUN/sig/keyring/"
    SIGPOL=prefer; [ $HYB -eq 1 ] && SIGPOL=require
    start_pqproxy pqproxy-sig 1 "$SIGPOL" ',
  "signatures": { "keyring": "'"$RUN"'/sig/keyring", "response_key": "'"$RUN"'/sig/proxy",
                  "max_validity_s": 3600, "replay_cache_entries": '"$SIG_TOTAL_MAX"' },
  "routes": [ { "prefix": "/v1/signed/", "verify": "required", "sign_responses": true },
              { "prefix": "/v1/plain/", "verify": "off" } ]'
    SIGPROXY=(pqproxy-sig)
fi

# Scenario 9: the same proxy with its nonces in Redis (a redis-server here,
# no persistence, like a cache), beside pqproxy-sig.
REDIS9=""
if has 9 && [ ${#SIGPROXY[@]} -eq 1 ]; then
    if command -v redis-server >/dev/null 2>&1; then
        REDIS9="$(free_port)"
        redis-server --port "$REDIS9" --bind 127.0.0.1 --save "" --appendonly no \
            --dir "$RUN" >"$RUN/redis9.out" 2>&1 &
        REDIS_PID=$!; PIDS+=("$REDIS_PID")
        wait_port "$REDIS9" || die "redis-server did not start: $(tail -5 "$RUN/redis9.out")"
        start_pqproxy pqproxy-sigr 1 "$SIGPOL" ',
  "signatures": { "keyring": "'"$RUN"'/sig/keyring", "response_key": "'"$RUN"'/sig/proxy",
                  "max_validity_s": 3600, "replay_cache_entries": '"$SIG_TOTAL_MAX"',
                  "replay_store": { "type": "redis", "address": "127.0.0.1:'"$REDIS9"'",
                                    "timeout_ms": 200 } },
  "routes": [ { "prefix": "/v1/signed/", "verify": "required", "sign_responses": true },
              { "prefix": "/v1/plain/", "verify": "off" } ]'
        SIGPROXY+=(pqproxy-sigr)
    else
        echo "Scenario 9 not run: redis-server is not installed (scripts/bench-deps.sh)." > "$OUT/redis9.txt"
    fi
fi

PORT[direct]=$UP_PORT; PID[direct]=$UP_PID
for n in "${PROXIES1[@]}" "${PROXIES2[@]}" "${PROXIESH[@]}" "${SIGPROXY[@]}"; do
    wait_port "${PORT[$n]}" || die "$n did not start: $(cat "$RUN/$n".out "$RUN/$n".err 2>/dev/null | tail -5)"
    # curl on OpenSSL 3.5 too, where available (pqproxy-h refuses classical clients)
    if [ $HYB -eq 1 ]; then c=(on35 curl); else c=(curl); fi
    chk=(); [ "${n#hitch}" != "$n" ] || chk=(-H "x-lt-check: $n")
    "${c[@]}" -fsSk --max-time 5 "${chk[@]}" "https://127.0.0.1:${PORT[$n]}/small.json" >/dev/null ||
        die "$n does not answer: $(cat "$RUN/$n".out "$RUN/$n".err 2>/dev/null | tail -5)"
done
# what each one's check request reached the upstream with (lt_check_fields
# stops the run when pqproxy, or under the same fields an anchor, left one out)
for n in "${PROXIES1[@]}" "${PROXIES2[@]}" "${PROXIESH[@]}"; do
    if [ "${n#hitch}" != "$n" ]; then
        echo "$n: none (a TLS terminator: the request's bytes pass as they came)"
    else
        fields="$(lt_check_fields "$n")"    # an assignment: set -e stops the run on lt_die
        echo "$n: $fields"
    fi
done > "$OUT/check.txt"
log "upstream :$UP_PORT; $(for n in "${PROXIES1[@]}" "${PROXIES2[@]}" "${PROXIESH[@]}" "${SIGPROXY[@]}"; do printf '%s :%s  ' "$n" "${PORT[$n]}"; done)"

VERSIONS="$(nginx -v 2>&1 | sed 's/.*: //'); HAProxy $(haproxy -v | head -1 | awk '{print $3}'); $(hitch --version 2>&1 | head -1); $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}'); $(openssl version 2>/dev/null | awk '{print $1, $2}')"
[ $HYB -eq 0 ] || VERSIONS="$VERSIONS; hybrid set on $(on35 haproxy -vv 2>/dev/null | sed -n 's/^Running on OpenSSL version : //p' | awk '{print $1, $2}') ($OSSL35)"

# --- wrk runs ----------------------------------------------------------------------------

RESULTS="$OUT/raw.tsv"
printf 'scenario\tvariant\ttarget\tround\trequests\tduration_s\treq_s\tp50_us\tp99_us\tp999_us\terrors\tcpu_s\tcpu_us_per_req\n' > "$RESULTS"
printf 'scenario\tvariant\ttarget\tround\tgroup\tgen_cpu_us_per_conn\n' > "$OUT/gen.tsv"

# run_wrk scenario variant target round threads conns url [extra wrk args...]
# WRK_GEN=PATH: that generator (hsgen: -c -d URL, same PQRESULT line) instead
# of wrk, its own CPU and negotiated group recorded in gen.tsv; WRK_CPU=LIST:
# the generator runs pinned there (taskset -c).
run_wrk() {
    local sc="$1" var="$2" tgt="$3" round="$4" th="$5" c="$6" url="$7"; shift 7
    local pid="${PID[$tgt]}" c0 c1 line
    c0="$(cpu_ticks "$pid")"
    # PERF=1: a cpu-clock profile of pqproxy during its first run of each scenario
    # (PERF_ARGS: more perf record options, e.g. -g for kernel call chains)
    local perfpid=""
    if [ "${PERF:-0}" = 1 ] && [ "${tgt%%-*}" = pqproxy ] && [ "$round" = 1 ] && [ "${var#*+}" = "$var" ] &&
       [ ! -e "$OUT/perf-s$sc.data" ] && command -v perf >/dev/null 2>&1; then
        perf record -q -e cpu-clock -F 2000 ${PERF_ARGS:-} -p "$pid" -o "$OUT/perf-s$sc.data" -- sleep "${WRK_DUR:-$DUR}" \
            >/dev/null 2>&1 &
        perfpid=$!
    fi
    local d="${WRK_DUR:-$DUR}" pre=() cmd out
    [ -z "${WRK_LIBS:-}" ] || pre=(env LD_LIBRARY_PATH="$WRK_LIBS")
    [ -z "${WRK_CPU:-}" ] || pre=(taskset -c "$WRK_CPU" "${pre[@]}")
    if [ -n "${WRK_GEN:-}" ]; then
        cmd=("$WRK_GEN" -c "$c" -d "$d" "$@" "$url")
    else
        cmd=(wrk -t"$th" -c"$c" -d"${d}s" --timeout 5s -s "${WRK_SCRIPT:-$HERE/wrk-report.lua}" "$@" "$url")
    fi
    out="$(timeout $((d + 30)) "${pre[@]}" "${cmd[@]}" 2>&1 | tee -a "$OUT/wrk.log" || true)"
    line="$(grep '^PQRESULT' <<<"$out" || true)"
    c1="$(cpu_ticks "$pid")"
    if [ -n "$perfpid" ]; then
        wait "$perfpid" 2>/dev/null || true
        perf report -i "$OUT/perf-s$sc.data" --no-children --stdio -g none --percent-limit 0.7 \
            > "$OUT/perf-s$sc.txt" 2>/dev/null || true
    fi
    [ -n "$line" ] || { log "${WRK_GEN:-wrk} against $tgt produced no result"; return 0; }
    if [ -n "${WRK_GEN:-}" ]; then    # "hsgen: negotiated TLSv1.3 ... group G", "...: N us per connection"
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$sc" "$var" "$tgt" "$round" \
            "$(sed -n 's/^hsgen: negotiated .* group \([^ ]*\).*/\1/p' <<<"$out" | head -1)" \
            "$(sed -n 's/^hsgen: .*: \([0-9.]*\) us per connection$/\1/p' <<<"$out" | head -1)" >> "$OUT/gen.tsv"
    fi
    python3 - "$sc" "$var" "$tgt" "$round" "$line" "$c0" "$c1" "$HZ" >> "$RESULTS" <<'EOF'
import sys
sc, var, tgt, rnd, line, c0, c1, hz = sys.argv[1:]
kv = dict(x.split("=") for x in line.split()[1:])
req = int(kv["requests"]); dur = int(kv["duration_us"]) / 1e6
errs = sum(int(kv[k]) for k in kv if k.startswith("err_"))
cpu = (int(c1) - int(c0)) / int(hz)
if int(kv.get("signed_exhausted", 0)):
    print(f"loadtest: warning: {tgt} round {rnd}: {kv['signed_exhausted']} requests after the signed file ran out",
          file=sys.stderr)
print("\t".join(map(str, [sc, var, tgt, rnd, req, f"{dur:.3f}", f"{req / dur:.1f}", kv["p50"], kv["p99"],
                           kv["p999"], errs, f"{cpu:.2f}", f"{cpu * 1e6 / req:.1f}" if req else "nan"])))
EOF
}

THREADS1=1; THREADS2=2
if has 1; then
    log "scenario 1: keep-alive small requests, $ROUNDS interleaved round(s) x ${DUR}s per target"
    for n in direct "${PROXIES1[@]}"; do     # warm-up, not recorded
        proto=https; [ "$n" = direct ] && proto=http
        timeout 20 wrk -t1 -c8 -d"${WARM}s" "$proto://127.0.0.1:${PORT[$n]}/small.json" >/dev/null 2>&1 || true
    done
    for n in $([ $QUICK -eq 1 ] || echo "${PROXIESH[@]}"); do
        timeout 20 env LD_LIBRARY_PATH="$OSSL35" wrk -t1 -c8 -d"${WARM}s" "https://127.0.0.1:${PORT[$n]}/small.json" >/dev/null 2>&1 || true
    done
    for r in $(seq 1 "$ROUNDS"); do
        for n in direct "${PROXIES1[@]}"; do
            proto=https; [ "$n" = direct ] && proto=http
            run_wrk 1 "1 worker" "$n" "$r" "$THREADS1" "$CONNS" "$proto://127.0.0.1:${PORT[$n]}/small.json"
        done
        for n in "${PROXIES2[@]}"; do
            run_wrk 1 "2 workers" "$n" "$r" "$THREADS2" "$((CONNS * 2))" "https://127.0.0.1:${PORT[$n]}/small.json"
        done
        [ $QUICK -eq 0 ] || continue     # the hybrid variant: full runs only (quick stays < 2 min)
        for n in "${PROXIESH[@]}"; do    # X25519MLKEM768 (one handshake per connection)
            WRK_LIBS="$OSSL35" run_wrk 1 "hybrid, 1 worker" "$n" "$r" "$THREADS1" "$CONNS" \
                "https://127.0.0.1:${PORT[$n]}/small.json"
        done
    done
fi

if has 2; then
    log "scenario 2: new TLS connection per request (X25519), $ROUNDS round(s) x ${DUR}s"
    for r in $(seq 1 "$ROUNDS"); do
        for n in "${PROXIES1[@]}"; do
            run_wrk 2 "1 worker" "$n" "$r" 1 16 "https://127.0.0.1:${PORT[$n]}/small.json" -H "Connection: close"
        done
    done
fi

# --- scenario 4: large streamed bodies --------------------------------------------------------

BIG="$OUT/big.tsv"
printf 'target\tbytes\tseconds\tMiB_s\trss_before_kib\trss_peak_kib\trss_growth_kib\n' > "$BIG"
if has 4; then
    log "scenario 4: ${BIG_MIB} MiB download through each proxy"
    for n in "${PROXIES1[@]}"; do
        pid="${PID[$n]}"
        before="$(rss_kib "$pid")"
        timeout 120 curl -sk --max-time 100 -o /dev/null -w '%{size_download} %{time_total}\n' \
            "https://127.0.0.1:${PORT[$n]}/bytes/big.bin" > "$RUN/curl.$n" &
        cpid=$!
        peak=$before
        for _ in $(seq 1 1000); do           # 100 s at most
            kill -0 "$cpid" 2>/dev/null || break
            cur="$(rss_kib "$pid")"; [ "$cur" -gt "$peak" ] && peak=$cur
            sleep 0.1
        done
        wait "$cpid" || true
        read -r size secs < "$RUN/curl.$n" || { size=0; secs=0; }
        python3 -c "import sys; s,t,b,p=map(float,sys.argv[1:]); print(f'$n\t{int(s)}\t{t:.3f}\t{(s/1048576/t) if t else 0:.1f}\t{int(b)}\t{int(p)}\t{int(p-b)}')" \
            "$size" "$secs" "$before" "$peak" >> "$BIG"
    done
fi

# --- scenario 7: idle keep-alive TLS connections --------------------------------------------------

IDLE="$OUT/idle.tsv"
printf 'target\tconnections\topen\tkib_per_conn\trss_before_kib\trss_after_kib\n' > "$IDLE"
if has 7; then
    log "scenario 7: $IDLE_N idle TLS connections per proxy (pqproxy, nginx, haproxy)"
    for n in pqproxy nginx haproxy; do
        res="$( (ulimit -n 20000 2>/dev/null || true
                  timeout 300 python3 "$HERE/idleconns.py" --port "${PORT[$n]}" --n "$IDLE_N" --pids "${PID[$n]}" --hold 2) \
                2>>"$OUT/idle.log" || true)"
        echo "$n $res" >> "$OUT/idle.log"
        [ -n "$res" ] || continue
        python3 -c "import json,sys; d=json.loads(sys.argv[2]); print('\t'.join(map(str,[sys.argv[1], d['requested'], d['open'], d['kib_per_conn'], d['rss_before_kib'], d['rss_after_kib']])))" \
            "$n" "$res" >> "$IDLE"
        sleep 1
    done
fi

# --- scenario 6: bytes per handshake (from bench crypto) -----------------------------------------

if has 6; then
    log "scenario 6: bytes on the wire by group (pqproxy bench crypto --json)"
    "$PQPROXY" bench crypto --quick --json --only tls13 > "$OUT/bench-crypto-tls.json" || true
fi

# --- scenario 3: hybrid handshakes (X25519MLKEM768), everyone on OpenSSL 3.5 ------------------

# pin_tree CPUS PID...: every thread of the processes and of their children
pin_tree() {
    local cpus="$1" p q; shift
    for p in "$@"; do
        for q in $p $(pgrep -P "$p" 2>/dev/null || true); do
            taskset -apc "$cpus" "$q" >/dev/null 2>&1 || true
        done
    done
}

metric_lines() {   # name regex: matching lines of pqproxy's /metrics
    curl -s --max-time 5 "http://127.0.0.1:${APORT[$1]}/metrics" 2>/dev/null | grep -E "$2" || true
}

if has 3; then
    if [ $HYB -eq 0 ]; then
        echo "Scenario 3 not run: no OpenSSL 3.5 libraries (scripts/openssl35.sh, or make bench-deps)." > "$OUT/scenario3.txt"
    else
        log "scenario 3: new X25519MLKEM768 connection per request, $ROUNDS round(s) x ${SDUR}s (OpenSSL 3.5: $OSSL35)"
        CHK="$OUT/hybrid-check.txt"
        {
            echo "Hybrid check (OpenSSL 3.5 libraries: $OSSL35)"
            u="https://127.0.0.1:${PORT[pqproxy-h]}/small.json"
            l30="$(timeout 20 wrk -t1 -c4 -d1s -s "$HERE/wrk-report.lua" "$u" 2>&1 | grep '^PQRESULT' || true)"
            l35="$(timeout 20 env LD_LIBRARY_PATH="$OSSL35" wrk -t1 -c4 -d1s -s "$HERE/wrk-report.lua" "$u" 2>&1 | grep '^PQRESULT' || true)"
            echo "- wrk on OpenSSL 3.0 -> pqproxy (require): $(sed -E 's/.*(requests=[0-9]+).*(err_connect=[0-9]+ err_read=[0-9]+).*/\1 \2/' <<<"$l30")"
            echo "- wrk on OpenSSL 3.5 -> pqproxy (require): $(sed -E 's/.*(requests=[0-9]+).*(err_connect=[0-9]+ err_read=[0-9]+).*/\1 \2/' <<<"$l35")"
            echo "- libssl client with OpenSSL 3.0 defaults -> pqproxy (require): $(python3 "$HERE/tlsgroup.py" --port "${PORT[pqproxy-h]}" 2>&1 | tail -1)"
            for n in "${PROXIESH[@]}"; do
                echo "- libssl client with OpenSSL 3.5 defaults -> $n: $(python3 "$HERE/tlsgroup.py" --lib "$OSSL35" --port "${PORT[$n]}" 2>&1 | tail -1)"
            done
        } > "$CHK"
        # "hsgen, pinned": the generator and the upstream on CPU 0, the server
        # alone on CPU 1 for the round (then the CPUs run.sh itself may use).
        PIN=0 ALLCPUS="$(taskset -pc $$ 2>/dev/null | sed 's/.*: //')"
        if [ ! -x "$HSGEN" ]; then
            echo "Scenario 3, hsgen variant not run: $HSGEN not built (cmake --build build --target hsgen)." > "$OUT/scenario3-hsgen.txt"
        elif [ "$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)" -lt 2 ] || ! command -v taskset >/dev/null 2>&1 ||
             ! taskset -c 1 true 2>/dev/null; then
            echo "Scenario 3, hsgen variant not run: it pins the server and the client to different CPUs (needs >= 2 CPUs and taskset)." > "$OUT/scenario3-hsgen.txt"
        else
            PIN=1
        fi
        for r in $(seq 1 "$ROUNDS"); do
            for n in "${PROXIESH[@]}"; do
                WRK_DUR="$SDUR" WRK_LIBS="$OSSL35" run_wrk 3 "hybrid, 1 worker" "$n" "$r" 1 16 \
                    "https://127.0.0.1:${PORT[$n]}/small.json" -H "Connection: close"
            done
            [ $PIN -eq 1 ] || continue
            for n in "${PROXIESH[@]}"; do
                pin_tree 1 "${PID[$n]}"
                pin_tree 0 "$UP_PID"
                WRK_DUR="$SDUR" WRK_GEN="$HSGEN" WRK_CPU=0 run_wrk 3 "hsgen, pinned" "$n" "$r" 1 16 \
                    "https://127.0.0.1:${PORT[$n]}/small.json"
                pin_tree "${ALLCPUS:-0-1}" "${PID[$n]}" "$UP_PID"
            done
        done
        sleep 1.2    # nginx flushes its buffered access log every second
        {
            echo "- pqproxy metrics after the runs:"
            metric_lines pqproxy-h '^pqproxy_tls_handshakes_total\{' | awk '$NF > 0 { print "    " $0 }'
            echo "- nginx access log (\$ssl_curve \$ssl_protocol \$status), counts over all runs:"
            awk '{ print $1, $2, $3 }' "$RUN/nginx-h.access" 2>/dev/null | sort | uniq -c | sed 's/^/    /'
            if [ $PIN -eq 1 ]; then
                echo "- hsgen (wolfSSL, one group offered): group negotiated on the first connection of each run:"
                awk -F'\t' 'NR > 1 && $1 == 3 { print $3, ($5 == "" ? "(none)" : $5) }' "$OUT/gen.tsv" | sort | uniq -c | sed 's/^/    /'
            fi
        } >> "$CHK"
        cat "$CHK" >&2
        # The primitives a hybrid handshake's server side needs (for the CPU comparison).
        if [ ! -s "$OUT/bench-crypto.json" ]; then
            "$PQPROXY" bench crypto $([ $QUICK -eq 1 ] && echo --quick) --json > "$OUT/bench-crypto.json" 2>/dev/null || true
        fi
    fi
fi

# --- scenarios 5 and 8: signed requests, and the unsigned route beside them ----------------------

SIG_URL_PATH=/v1/signed/models/half_plus_two:predict
PLAIN_URL_PATH=/v1/plain/models/half_plus_two:predict
SIG_RATE=4000          # signed req/s assumed for sizing the first file; then the last measured rate
SIG_USED=0             # nonces generated so far (the replay cache holds SIG_TOTAL_MAX)
# make_signed FILE DURATION: fresh signed requests for DURATION seconds at 1.5 x SIG_RATE
make_signed() {
    local n; n="$(python3 -c "import sys; print(max(2000, int(float(sys.argv[1]) * float(sys.argv[2]) * 1.5)))" "$SIG_RATE" "$2")"
    if [ $((SIG_USED + n)) -gt $((SIG_TOTAL_MAX * 3 / 4)) ]; then
        log "warning: replay cache budget reached; fewer signed requests"; n=$(( (SIG_TOTAL_MAX * 3 / 4) - SIG_USED ))
    fi
    [ "$n" -gt 0 ] || n=1
    SIG_USED=$((SIG_USED + n))
    "$SIGREQS" --key "$RUN/sig/client-a" --keyid client-a --n "$n" --out "$1" --jobs 2 \
        --path "$SIG_URL_PATH" >/dev/null || die "sigreqs failed"
}
last_rate() { awk -F'\t' -v s="$1" -v v="$2" '$1 == s && $2 == v { r = $7 } END { print r + 0 }' "$RESULTS"; }

if { has 5 || has 8 || has 9; } && [ ${#SIGPROXY[@]} -eq 0 ]; then
    echo "Scenarios 5 and 8 not run: $SIGREQS not built (cmake --build build --target sigreqs)." > "$OUT/scenario5.txt"
fi
SIGLIBS=""; [ $HYB -eq 1 ] && SIGLIBS="$OSSL35"
if has 5 && [ ${#SIGPROXY[@]} -ge 1 ]; then
    log "scenario 5: signed requests (ECDSA P-384 + ML-DSA-87, responses signed), $ROUNDS round(s) x ${SDUR}s"
    sp="${PORT[pqproxy-sig]}"
    # one check by hand: pqproxy request signs, the proxy verifies and signs the response
    { on35 "$PQPROXY" request -k -v --sign-key "$RUN/sig/client-a" --keyid client-a --verify-key "$RUN/sig/proxy" \
          -d '{"instances":[1.0,2.0,5.0]}' "https://127.0.0.1:$sp$SIG_URL_PATH" 2>&1 | tail -3; } > "$OUT/scenario5-check.txt" || true
    # The raw crypto sum is measured right before and right after each
    # round (bench-sig-r<N>-{before,after}.json): the ratio compares CPU
    # against CPU taken minutes apart at most, on a machine whose speed drifts.
    bench_sig() {
        "$PQPROXY" bench crypto --json $([ $QUICK -eq 1 ] && echo --quick) \
            --only ecdsa-p384/verify,mldsa87/verify,ecdsa-p384+mldsa87/dual-sign > "$OUT/bench-sig-$1.json" 2>/dev/null || true
    }
    for r in $(seq 1 "$ROUNDS"); do
        make_signed "$RUN/signed.bin" "$SDUR"
        bench_sig "r$r-before"
        PQ_SIGNED_FILE="$RUN/signed.bin" WRK_DUR="$SDUR" WRK_SCRIPT="$HERE/wrk-signed.lua" WRK_LIBS="$SIGLIBS" \
            run_wrk 5 "signed" pqproxy-sig "$r" 1 16 "https://127.0.0.1:$sp$SIG_URL_PATH"
        bench_sig "r$r-after"
        rm -f "$RUN/signed.bin"
        SIG_RATE="$(last_rate 5 signed)"; [ "${SIG_RATE%.*}" -ge 200 ] || SIG_RATE=200
        # the same proxy, unsigned route (quick mode: scenario 8's "unsigned alone" stands in)
        [ $QUICK -eq 1 ] || WRK_DUR="$SDUR" WRK_LIBS="$SIGLIBS" run_wrk 5 "unsigned" pqproxy-sig "$r" 1 16 "https://127.0.0.1:$sp$PLAIN_URL_PATH"
    done
    { echo "- pqproxy-sig metrics after scenario 5:"
      metric_lines pqproxy-sig '^pqproxy_(signature_verifications_total|response_signatures_total)' |
          awk '$NF > 0 { print "    " $0 }'; } >> "$OUT/scenario5-check.txt"
    if [ ! -s "$OUT/bench-crypto.json" ]; then
        "$PQPROXY" bench crypto $([ $QUICK -eq 1 ] && echo --quick) --json > "$OUT/bench-crypto.json" 2>/dev/null || true
    fi
fi

if has 8 && [ ${#SIGPROXY[@]} -ge 1 ]; then
    log "scenario 8: unsigned route alone and beside a saturating signed load, $ROUNDS round(s) x ${SDUR}s"
    sp="${PORT[pqproxy-sig]}"
    for r in $(seq 1 "$ROUNDS"); do
        WRK_DUR="$SDUR" WRK_LIBS="$SIGLIBS" run_wrk 8 "unsigned alone" pqproxy-sig "$r" 1 8 "https://127.0.0.1:$sp$PLAIN_URL_PATH"
        make_signed "$RUN/signed8.bin" "$((SDUR + 2))"
        PQ_SIGNED_FILE="$RUN/signed8.bin" WRK_DUR="$((SDUR + 2))" WRK_SCRIPT="$HERE/wrk-signed.lua" WRK_LIBS="$SIGLIBS" \
            run_wrk 8 "signed load" pqproxy-sig "$r" 1 32 "https://127.0.0.1:$sp$SIG_URL_PATH" &
        spid=$!
        sleep 1     # the signed load is running before the unsigned measurement starts
        depth="$(for _ in 1 2 3; do metric_lines pqproxy-sig '^pqproxy_signature_queue_depth ' | awk '{ print $2 }'; sleep 0.2; done | sort -n | tail -1)"
        WRK_DUR="$SDUR" WRK_LIBS="$SIGLIBS" run_wrk 8 "unsigned + signed load" pqproxy-sig "$r" 1 8 "https://127.0.0.1:$sp$PLAIN_URL_PATH"
        wait "$spid" || true
        rm -f "$RUN/signed8.bin"
        echo "round $r: signature queue depth (max of 3 samples) during the signed load: ${depth:-?}" >> "$OUT/scenario8.txt"
    done
fi

# --- scenario 9: the replay store, local against Redis --------------------------------------------

if has 9 && [ -n "$REDIS9" ]; then
    log "scenario 9: signed requests, local replay cache vs Redis, $ROUNDS round(s) x 2 x 2 x ${SDUR}s"
    # The proxy's CPU comes from run_wrk; redis-server's is measured around
    # each Redis run (redis9.tsv): in production it is another machine's.
    printf 'round\tvariant\tredis_cpu_s\n' > "$OUT/redis9.tsv"
    for r in $(seq 1 "$ROUNDS"); do
        # alternate the order so that drift does not favour one side
        if [ $((r % 2)) -eq 1 ]; then order="local redis"; else order="redis local"; fi
        for c in 16 1; do
            for st in $order; do
                tgt=pqproxy-sig; [ "$st" = redis ] && tgt=pqproxy-sigr
                make_signed "$RUN/signed9.bin" "$SDUR"
                k0="$(cpu_ticks "$REDIS_PID")"
                PQ_SIGNED_FILE="$RUN/signed9.bin" WRK_DUR="$SDUR" WRK_SCRIPT="$HERE/wrk-signed.lua" WRK_LIBS="$SIGLIBS" \
                    run_wrk 9 "$st c$c" "$tgt" "$r" 1 "$c" "https://127.0.0.1:${PORT[$tgt]}$SIG_URL_PATH"
                k1="$(cpu_ticks "$REDIS_PID")"
                printf '%s\t%s c%s\t%s\n' "$r" "$st" "$c" "$(python3 -c "print(($k1 - $k0) / $HZ)")" >> "$OUT/redis9.tsv"
                rm -f "$RUN/signed9.bin"
                [ "$c" != 16 ] || [ "$st" != local ] || { SIG_RATE="$(last_rate 9 "local c16")"; [ "${SIG_RATE%.*}" -ge 200 ] || SIG_RATE=200; }
            done
        done
    done
    { echo "- pqproxy-sigr metrics after scenario 9:"
      metric_lines pqproxy-sigr '^pqproxy_(replay_store_|signature_verifications_total)' |
          awk '$NF > 0 { print "    " $0 }'
      key="$(redis-cli -p "$REDIS9" RANDOMKEY)"
      echo "- redis: dbsize $(redis-cli -p "$REDIS9" DBSIZE); one key: $key"
      echo "  MEMORY USAGE $(redis-cli -p "$REDIS9" MEMORY USAGE "$key") bytes, PTTL $(redis-cli -p "$REDIS9" PTTL "$key") ms"
      redis-cli -p "$REDIS9" INFO memory | grep -E '^used_memory:|^used_memory_dataset:' | tr -d '\r' | sed 's/^/  /'
      echo "  $(redis-server --version)"
    } >> "$OUT/redis9.txt"
fi

# --- report -------------------------------------------------------------------------------------

python3 "$HERE/report.py" --out "$OUT" --quick "$QUICK" --duration "$DUR" --rounds "$ROUNDS" --conns "$CONNS" \
    --versions "$VERSIONS" --idle-n "$IDLE_N" --big-mib "$BIG_MIB" --anchor-fields "$(lt_fields_mode)" \
    > "$OUT/results.md"
if command -v gnuplot >/dev/null 2>&1 && [ -f "$OUT/plot.gp" ]; then
    (cd "$OUT" && gnuplot plot.gp) 2>>"$OUT/gnuplot.log" || log "gnuplot failed (see gnuplot.log)"
fi
cp "$RUN"/*.json "$RUN"/*.conf "$RUN"/*.cfg "$OUT/" 2>/dev/null || true
for n in "${PROXIES1[@]}" "${PROXIES2[@]}" "${PROXIESH[@]}" "${SIGPROXY[@]}"; do
    [ -s "$RUN/$n.err" ] && cp "$RUN/$n.err" "$OUT/$n.err.log"
done
cat "$OUT/results.md"
log "done: $OUT"
