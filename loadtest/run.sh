#!/usr/bin/env bash
# pqproxy against TLS-terminating anchors (nginx, HAProxy, hitch), on loopback.
#
#   loadtest/run.sh [--quick] [--pqproxy PATH] [--out DIR] [--scenarios "1 2 4 6 7"]
#
# Starts one plaintext upstream (nginx: a small JSON document and /bytes/
# files), then each TLS proxy in front of it with the same ECDSA P-256
# certificate (pqproxy certgen), TLS 1.3 only, one worker each (and a
# two-worker variant), and runs:
#   1  keep-alive small requests (wrk), interleaved rounds, direct baseline
#   2  a new connection per request (wrk -H "Connection: close"): handshakes/s
#   4  a 64 MiB streamed download through each proxy (curl): throughput, RSS
#   6  bytes on the wire per handshake by group (pqproxy bench crypto --json)
#   7  idle keep-alive TLS connections: proxy RSS per connection
#   3  (hook) hybrid handshakes need a hybrid-capable load generator:
#      loadtest/pqload (libuv + wolfSSL, built by CMake when present)
#   5  (hook) signed requests: waits for the signature module
# wrk and curl are Debian's (OpenSSL 3.0: classical X25519 only), so
# pqproxy runs with pq_policy "prefer" here; scenario 6 gives the hybrid
# group's byte cost, and `pqproxy bench crypto` its CPU cost.
#
# Results: loadtest/results/<timestamp>/ (results.md, results.json, *.png, logs).
# Only 127.0.0.1 is used; every loop is bounded; everything started is
# stopped on exit.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
PQPROXY="$ROOT/build/pqproxy"
QUICK=0
SCENARIOS="1 2 4 6 7 3 5"
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --pqproxy) PQPROXY="$2"; shift ;;
        --out) OUT="$2"; shift ;;
        --scenarios) SCENARIOS="$2"; shift ;;
        -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

if [ $QUICK -eq 1 ]; then
    DUR=3; ROUNDS=1; CONNS=32; IDLE_N=2000; BIG_MIB=64; WARM=1
else
    DUR=10; ROUNDS=3; CONNS=64; IDLE_N=10000; BIG_MIB=64; WARM=2
fi

log() { printf 'loadtest: %s\n' "$*" >&2; }
die() { printf 'loadtest: error: %s\n' "$*" >&2; exit 1; }
has() { case " $SCENARIOS " in *" $1 "*) return 0 ;; esac; return 1; }

[ -x "$PQPROXY" ] || die "$PQPROXY not built (make)"
for t in nginx haproxy hitch wrk curl python3; do
    command -v "$t" >/dev/null 2>&1 || die "$t missing: run scripts/bench-deps.sh"
done

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

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_port() {   # port [tls]: up to 10 s
    local i
    for i in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

# utime+stime (clock ticks) of a process and its children
cpu_ticks() {
    local total=0 p kids
    for p in "$@"; do
        kids="$(pgrep -P "$p" 2>/dev/null | tr '\n' ' ' || true)"
        for q in $p $kids; do
            [ -r "/proc/$q/stat" ] || continue
            total=$((total + $(awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$q/stat")))
        done
    done
    echo "$total"
}

rss_kib() {
    local total=0 p kids
    for p in "$@"; do
        kids="$(pgrep -P "$p" 2>/dev/null | tr '\n' ' ' || true)"
        for q in $p $kids; do
            [ -r "/proc/$q/status" ] || continue
            total=$((total + $(awk '/^VmRSS:/ { print $2 }' "/proc/$q/status")))
        done
    done
    echo "$total"
}

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
    server {
        listen 127.0.0.1:$UP_PORT reuseport backlog=4096;
        root $RUN/www;
        location = /small.json { }
        location /bytes/ { default_type application/octet-stream; }
    }
}
EOF
nginx -p "$RUN" -c "$RUN/upstream.conf" >"$RUN/upstream.out" 2>&1 &
UP_PID=$!; PIDS+=("$UP_PID")
wait_port "$UP_PORT" || die "upstream nginx did not start: $(cat "$RUN/upstream.err" "$RUN/upstream.out" 2>/dev/null)"

# --- the proxies ------------------------------------------------------------------------

declare -A PORT PID
start_pqproxy() {   # name workers
    local name="$1" workers="$2" port; port="$(free_port)"
    cat > "$RUN/$name.json" <<EOF
{
  "listen": "127.0.0.1:$port",
  "workers": $workers,
  "max_connections": 20000,
  "tls": {
    "certificates": [ { "cert": "certs/server.crt", "key": "certs/server.key" } ],
    "groups": ["X25519MLKEM768", "SecP256r1MLKEM768", "SecP384r1MLKEM1024", "X25519"],
    "pq_policy": "prefer",
    "min_version": "1.3",
    "session_tickets": true,
    "alpn": ["http/1.1"]
  },
  "upstream": { "address": "127.0.0.1:$UP_PORT", "pool_max_idle": 256 },
  "timeouts": { "request_header_ms": 600000, "keepalive_idle_ms": 600000 },
  "log": { "level": "warn", "access_log": "off", "error_log": "$RUN/$name.err" },
  "admin": { "enabled": false }
}
EOF
    (ulimit -n 20000 2>/dev/null || true; exec "$PQPROXY" run --config "$RUN/$name.json") >"$RUN/$name.out" 2>&1 &
    PID[$name]=$!; PIDS+=("${PID[$name]}"); PORT[$name]=$port
}

start_nginx() {
    local name="$1" workers="$2" port; port="$(free_port)"
    cat > "$RUN/$name.conf" <<EOF
$NGINX_USER
worker_processes $workers;
daemon off;
pid $RUN/$name.pid;
error_log $RUN/$name.err warn;
events { worker_connections 20000; }
worker_rlimit_nofile 19000;
http {
    access_log off;
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
        location / {
            proxy_pass http://model;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }
    }
}
EOF
    nginx -p "$RUN" -c "$RUN/$name.conf" >"$RUN/$name.out" 2>&1 &
    PID[$name]=$!; PIDS+=("${PID[$name]}"); PORT[$name]=$port
}

start_haproxy() {
    local name="$1" workers="$2" port; port="$(free_port)"
    cat > "$RUN/$name.cfg" <<EOF
global
    nbthread $workers
    maxconn 9900
    ssl-default-bind-options ssl-min-ver TLSv1.3
    tune.ssl.default-dh-param 2048
defaults
    mode http
    timeout connect 5s
    timeout client 600s
    timeout server 600s
    timeout http-keep-alive 600s
    option http-keep-alive
    http-reuse always
frontend fe
    bind 127.0.0.1:$port ssl crt $RUN/certs/server-combined.pem alpn http/1.1
    default_backend model
backend model
    server up 127.0.0.1:$UP_PORT maxconn 1000
EOF
    haproxy -db -f "$RUN/$name.cfg" >"$RUN/$name.out" 2>&1 &
    PID[$name]=$!; PIDS+=("${PID[$name]}"); PORT[$name]=$port
}

start_hitch() {
    local name="$1" workers="$2" port; port="$(free_port)"
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
    hitch --config="$RUN/$name.conf" >"$RUN/$name.out" 2>&1 &
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
PORT[direct]=$UP_PORT; PID[direct]=$UP_PID
for n in "${PROXIES1[@]}" "${PROXIES2[@]}"; do
    wait_port "${PORT[$n]}" || die "$n did not start: $(cat "$RUN/$n".out "$RUN/$n".err 2>/dev/null | tail -5)"
    curl -fsSk --max-time 5 "https://127.0.0.1:${PORT[$n]}/small.json" >/dev/null ||
        die "$n does not answer: $(cat "$RUN/$n".out "$RUN/$n".err 2>/dev/null | tail -5)"
done
log "upstream :$UP_PORT; $(for n in "${PROXIES1[@]}" "${PROXIES2[@]}"; do printf '%s :%s  ' "$n" "${PORT[$n]}"; done)"

VERSIONS="$(nginx -v 2>&1 | sed 's/.*: //'); HAProxy $(haproxy -v | head -1 | awk '{print $3}'); $(hitch --version 2>&1 | head -1); $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}'); $(openssl version 2>/dev/null | awk '{print $1, $2}')"

# --- wrk runs ----------------------------------------------------------------------------

RESULTS="$OUT/raw.tsv"
printf 'scenario\tvariant\ttarget\tround\trequests\tduration_s\treq_s\tp50_us\tp99_us\tp999_us\terrors\tcpu_s\tcpu_us_per_req\n' > "$RESULTS"

# run_wrk scenario variant target round threads conns url [extra wrk args...]
run_wrk() {
    local sc="$1" var="$2" tgt="$3" round="$4" th="$5" c="$6" url="$7"; shift 7
    local pid="${PID[$tgt]}" c0 c1 line
    c0="$(cpu_ticks "$pid")"
    # PERF=1: a cpu-clock profile of pqproxy during its first run of each scenario
    local perfpid=""
    if [ "${PERF:-0}" = 1 ] && [ "$tgt" = pqproxy ] && [ "$round" = 1 ] && command -v perf >/dev/null 2>&1; then
        perf record -q -e cpu-clock -F 2000 -g -p "$pid" -o "$OUT/perf-s$sc.data" -- sleep "$DUR" \
            >/dev/null 2>&1 &
        perfpid=$!
    fi
    line="$(timeout $((DUR + 30)) wrk -t"$th" -c"$c" -d"${DUR}s" --timeout 5s -s "$HERE/wrk-report.lua" "$@" "$url" 2>&1 |
            tee -a "$OUT/wrk.log" | grep '^PQRESULT' || true)"
    c1="$(cpu_ticks "$pid")"
    if [ -n "$perfpid" ]; then
        wait "$perfpid" 2>/dev/null || true
        perf report -i "$OUT/perf-s$sc.data" --no-children --stdio -g none --percent-limit 0.7 \
            > "$OUT/perf-s$sc.txt" 2>/dev/null || true
    fi
    [ -n "$line" ] || { log "wrk against $tgt produced no result"; return 0; }
    python3 - "$sc" "$var" "$tgt" "$round" "$line" "$c0" "$c1" "$HZ" >> "$RESULTS" <<'EOF'
import sys
sc, var, tgt, rnd, line, c0, c1, hz = sys.argv[1:]
kv = dict(x.split("=") for x in line.split()[1:])
req = int(kv["requests"]); dur = int(kv["duration_us"]) / 1e6
errs = sum(int(kv[k]) for k in kv if k.startswith("err_"))
cpu = (int(c1) - int(c0)) / int(hz)
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
    for r in $(seq 1 "$ROUNDS"); do
        for n in direct "${PROXIES1[@]}"; do
            proto=https; [ "$n" = direct ] && proto=http
            run_wrk 1 "1 worker" "$n" "$r" "$THREADS1" "$CONNS" "$proto://127.0.0.1:${PORT[$n]}/small.json"
        done
        for n in "${PROXIES2[@]}"; do
            run_wrk 1 "2 workers" "$n" "$r" "$THREADS2" "$((CONNS * 2))" "https://127.0.0.1:${PORT[$n]}/small.json"
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

# --- scenarios 3 and 5: hooks ---------------------------------------------------------------------

PQLOAD="${PQLOAD:-$ROOT/build/pqload}"
if has 3; then
    if [ -x "$PQLOAD" ]; then
        log "scenario 3: hybrid handshakes with pqload"
        for g in X25519MLKEM768 X25519; do
            c0="$(cpu_ticks "${PID[pqproxy]}")"
            timeout $((DUR + 30)) "$PQLOAD" --port "${PORT[pqproxy]}" --group "$g" --connections 16 \
                --duration "$DUR" --close --path /small.json > "$OUT/pqload-$g.txt" 2>&1 || true
            c1="$(cpu_ticks "${PID[pqproxy]}")"
            echo "cpu_s $(( c1 - c0 )) / $HZ" >> "$OUT/pqload-$g.txt"
        done
    else
        echo "scenario 3 not run: no hybrid-capable load generator ($PQLOAD not built)" > "$OUT/scenario3.txt"
    fi
fi
if has 5; then
    echo "scenario 5 (signed requests) not run: the request-signature module is not merged yet" > "$OUT/scenario5.txt"
fi

# --- report -------------------------------------------------------------------------------------

python3 "$HERE/report.py" --out "$OUT" --quick "$QUICK" --duration "$DUR" --rounds "$ROUNDS" --conns "$CONNS" \
    --versions "$VERSIONS" --idle-n "$IDLE_N" --big-mib "$BIG_MIB" > "$OUT/results.md"
if command -v gnuplot >/dev/null 2>&1 && [ -f "$OUT/plot.gp" ]; then
    (cd "$OUT" && gnuplot plot.gp) 2>>"$OUT/gnuplot.log" || log "gnuplot failed (see gnuplot.log)"
fi
cp "$RUN"/*.json "$RUN"/*.conf "$RUN"/*.cfg "$OUT/" 2>/dev/null || true
for n in "${PROXIES1[@]}" "${PROXIES2[@]}"; do
    [ -s "$RUN/$n.err" ] && cp "$RUN/$n.err" "$OUT/$n.err.log"
done
cat "$OUT/results.md"
log "done: $OUT"
