#!/usr/bin/env bash
# gRPC unary side by side in one run (docs/benchmarks.md, "gRPC unary"):
#
#   loadtest/grpc.sh [--quick] [--rounds N] [--duration S] [--stock-anchors] [--pin]
#                    [--baseline PATH] [--pqproxy PATH] [--out DIR]
#
# One h2c gRPC upstream: nginx (one worker, `listen ... http2` without ssl,
# i.e. HTTP/2 with prior knowledge) answering every
# POST /inference.GRPCInferenceService/ModelInfer with the prepared
# ModelInferResponse of the demo model (loadtest/grpcmsg.py) and the trailer
# grpc-status 0. In front of it, with the same ECDSA P-256 certificate
# (pqproxy certgen), TLS 1.3, one worker each, ALPN h2:
#   pqproxy   upstream.protocol "h2c", pq_policy "prefer"
#   nginx     listen ... ssl http2, grpc_pass to an upstream block with keepalive
#   haproxy   bind ... alpn h2, backend server ... proto h2, nbthread 1
# each forwarding the fields pqproxy adds (X-Forwarded-For, -Proto, -Host,
# X-Request-Id; loadtest/lib.sh), checked at the upstream (check.txt);
# --stock-anchors: nginx and HAProxy on their defaults, adding none.
# Before the rounds, one call through each with @grpc/grpc-js on Node 24
# (tests/integration/peers/grpc_client.mjs): status OK and the expected
# response decoded, else the run stops (h2load counts any complete HTTP 200
# as success, whatever grpc-status says); check.txt records it.
# Load: h2load -t 1 -c C -m M -d request.grpc -H content-type: application/grpc
# -H te: trailers, in interleaved rounds of S seconds: calls/s, CPU per call
# (the proxy's own utime+stime from /proc, children included, its
# user-space part and its sleeps in the kernel, voluntary context switches,
# over h2load's successful calls; the upstream's CPU beside it), p50/p99
# (h2load's --log-file), and the ratios pqproxy / best anchor.
# --pin: the proxies on the last CPU, the upstream and h2load on the others
# (taskset; two or more CPUs).
# --baseline PATH: another pqproxy binary (an earlier build) as one more
# target, pqproxy-base, in the same interleaved rounds: a change's effect
# measured side by side (ratio pqproxy / pqproxy-base), not across runs.
# Debian's h2load, nginx and HAProxy are on OpenSSL 3.0: the key exchange is
# X25519 for all three (pqproxy under "prefer").
#
# --quick: 1 round x 3 s. Defaults: 3 rounds x 10 s, -c 8 -m 32. Results:
# DIR (default loadtest/results/grpc-<UTC timestamp>/): grpc.md, grpc.json,
# raw.tsv, check.txt, h2load.txt, the configurations and logs. Loopback
# only; every loop is bounded; everything started is stopped on exit.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
PQPROXY="$ROOT/build/pqproxy"
ROUNDS=3 DUR=10 CONNS=8 STREAMS=32 OUT="" STOCK=0 PIN=0 BASELINE=""
METHOD=/inference.GRPCInferenceService/ModelInfer
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds|--duration|--baseline|--pqproxy|--out)
            [ $# -ge 2 ] || { echo "grpc.sh: $1 needs a value" >&2; exit 2; } ;;
    esac
    case "$1" in
        --quick) ROUNDS=1; DUR=3 ;;
        --stock-anchors) STOCK=1 ;;
        --pin) PIN=1 ;;
        --rounds) ROUNDS="${2:-}"; shift ;;
        --duration) DUR="${2:-}"; shift ;;
        --baseline) BASELINE="${2:-}"; shift ;;
        --pqproxy) PQPROXY="${2:-}"; shift ;;
        --out) OUT="${2:-}"; shift ;;
        -h|--help) sed -n '2,/^set -euo/{/^#/p}' "$0"; exit 0 ;;
        *) echo "grpc.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

LT_NAME=grpc.sh
. "$HERE/lib.sh"
lt_check_ranges "--rounds:$ROUNDS:1:15" "--duration:$DUR:1:600"
[ "$STOCK" = 0 ] || LT_SAME_FIELDS=0
lt_same_fields
lt_need_pqproxy "$PQPROXY"
[ -z "$BASELINE" ] || lt_need_pqproxy "$BASELINE"
lt_need_tools scripts/bench-deps.sh nginx haproxy h2load python3
NODE="$(lt_node24)"
NODE_MODULES="$(lt_npm_module "$ROOT" @grpc/grpc-js)"
# a Python with Debian's grpc_tools and protobuf (a pyenv or venv one does not see them)
GRPC_PY=""
for py in python3 /usr/bin/python3; do
    if "$py" -c 'import grpc, grpc_tools, google.protobuf' 2>/dev/null; then GRPC_PY="$py"; break; fi
done
[ -n "$GRPC_PY" ] || lt_die "no Python with grpc_tools and protobuf: run scripts/deps.sh --test-tools"

lt_run_setup "$PQPROXY" grpc
lt_pin_setup "$PIN"
log() { printf 'grpc.sh: %s\n' "$*" >&2; }

mkdir -p "$RUN/msg" "$RUN/www${METHOD%/*}" "$RUN/tmp"
"$GRPC_PY" "$HERE/grpcmsg.py" "$RUN/msg" || lt_die "grpcmsg.py could not build the prepared call"
cp "$RUN/msg/response.grpc" "$RUN/www$METHOD"

declare -A PORT PID
UP_PORT="$(free_port)"
# The static module refuses POST (405); error_page turns that into an internal
# GET of the same file, answered 200. add_trailer puts grpc-status in a
# trailing HEADERS frame (HTTP/2). sub_filter (matching nothing) drops the
# static file's content-length, as gRPC servers send none: pqproxy ends an h2c
# response at its content-length and loses the trailers after it.
cat > "$RUN/upstream.conf" <<EOF
$NGINX_USER
worker_processes 1; daemon off; pid $RUN/upstream.pid; error_log $RUN/upstream.err warn;
events { worker_connections 4096; }
http {
    access_log off; tcp_nodelay on;
    keepalive_requests 1000000; keepalive_timeout 300s; http2_idle_timeout 300s;
    http2_max_concurrent_streams 1000;
    $(lt_ngx_temp upstream)
    $(lt_ngx_fields_format)
    server {
        listen 127.0.0.1:$UP_PORT http2 backlog=4096;
        root $RUN/www; etag off; max_ranges 0;
        $(lt_ngx_fields_log)
        location ${METHOD%/*}/ {
            types { } default_type application/grpc;
            add_trailer grpc-status 0 always;
            error_page 405 =200 \$uri;
            sub_filter_types application/grpc; sub_filter 'no such text' '';
            mirror /drain;
        }
        location = /drain { internal; return 204; }
    }
}
EOF
$LT_LOAD_PIN nginx -p "$RUN" -c "$RUN/upstream.conf" >"$RUN/upstream.out" 2>&1 &
UP_PID=$!
PIDS+=("$UP_PID")
wait_port "$UP_PORT" || lt_die "upstream nginx did not start: $(cat "$RUN/upstream.err" "$RUN/upstream.out" 2>/dev/null)"

TARGETS=(pqproxy nginx haproxy)
lt_start_pqproxy pqproxy prefer '["h2"]' '"protocol": "h2c"'
if [ -n "$BASELINE" ]; then
    PQPROXY="$BASELINE" lt_start_pqproxy pqproxy-base prefer '["h2"]' '"protocol": "h2c"'
    TARGETS+=(pqproxy-base)
fi
lt_start_nginx_h2 " keepalive_requests 1000000;" "grpc_pass grpc://model; $(lt_ngx_fields grpc)"
lt_start_haproxy h2 "proto h2"

# h2load_call SECONDS PORT ARGS...: h2load posting the prepared call, stopped after SECONDS
h2load_call() {
    local t="$1" port="$2"; shift 2
    timeout "$t" $LT_LOAD_PIN h2load -t 1 --npn-list=h2 -d "$RUN/msg/request.grpc" -H 'content-type: application/grpc' -H 'te: trailers' \
        "$@" "https://127.0.0.1:$port$METHOD"
}

: > "$OUT/check.txt"
for n in "${TARGETS[@]}"; do
    wait_port "${PORT[$n]}" || lt_die "$n did not start: $(cat "$RUN/$n".out "$RUN/$n".err 2>/dev/null | tail -5)"
    chk="$(h2load_call 30 "${PORT[$n]}" -n 1 -c 1 -H "x-lt-check: $n" 2>&1 || true)"
    grep -q '^Application protocol: h2$' <<<"$chk" && grep -q ' 1 succeeded' <<<"$chk" ||
        lt_die "$n does not answer the call over HTTP/2: $(tail -5 <<<"$chk"; cat "$RUN/$n".out "$RUN/$n".err 2>/dev/null | tail -5)"
    # the same call from a real gRPC client: grpc-status 0 and the expected message
    call="$(cd "$RUN" && NODE_PATH="$NODE_MODULES" timeout 30 "$NODE" "$ROOT/tests/integration/peers/grpc_client.mjs" \
              "{\"target\": \"127.0.0.1:${PORT[$n]}\", \"protoDir\": \"$ROOT/scripts/proto\", \"method\": \"${METHOD##*/}\",
                \"ca\": \"$RUN/certs/ca.crt\", \"request\": $(cat "$RUN/msg/request.json")}" 2>&1 || true)"
    python3 - "$RUN/msg/response.json" "$call" <<'EOF' || lt_die "$n: the gRPC call through it failed: $call"
import json, sys
want = json.load(open(sys.argv[1]))
got = json.loads(sys.argv[2].strip().splitlines()[-1])
sys.exit(0 if got.get("ok") and got.get("code") == 0 and got.get("response") == want else 1)
EOF
    fields="$(lt_check_fields "$n")"
    printf '%s: grpc-status 0 (@grpc/grpc-js, %s), response as expected; h2load: %s; forwarded: %s; CPUs %s\n' "$n" \
        "${METHOD##*/}" "$(grep -E '^(TLS Protocol|Cipher|Server Temp Key|Application protocol):' <<<"$chk" | tr '\n' ' ')" \
        "$fields" "$(lt_cpus_of "${PID[$n]}")" >> "$OUT/check.txt"
done
LOADAVG_START="$(cut -d' ' -f1-3 /proc/loadavg)"
VERSIONS="$("$PQPROXY" version | head -n1); $(nginx -v 2>&1 | sed 's/.*: //'); HAProxy $(haproxy -v | head -1 | awk '{print $3}'); $(h2load --version | head -1); $(openssl version 2>/dev/null | awk '{print $1, $2}')"
log "$VERSIONS; load average $LOADAVG_START"
log "$LT_CPUS; upstream :$UP_PORT; $(for n in "${TARGETS[@]}"; do printf '%s :%s  ' "$n" "${PORT[$n]}"; done)"

RAW="$OUT/raw.tsv"
printf 'target\tround\trequests\tfailed\tduration_s\treq_s\tp50_us\tp99_us\tcpu_s\tcpu_us_per_req\tupstream_cpu_us_per_req\tuser_us_per_req\tsleeps_per_req\n' > "$RAW"
# run_round TARGET ROUND
run_round() {
    local n="$1" r="$2" c0 c1 u0 u1 s0 s1 z0 z1 out
    rm -f "$RUN/h2load.log"
    c0="$(cpu_ticks "${PID[$n]}")"; u0="$(cpu_ticks "$UP_PID")"; s0="$(user_ticks "${PID[$n]}")"
    z0="$(sleep_count "${PID[$n]}")"
    out="$(h2load_call $((DUR + 30)) "${PORT[$n]}" -c "$CONNS" -m "$STREAMS" -D "$DUR" \
             --log-file="$RUN/h2load.log" 2>&1 || true)"
    c1="$(cpu_ticks "${PID[$n]}")"; u1="$(cpu_ticks "$UP_PID")"; s1="$(user_ticks "${PID[$n]}")"
    z1="$(sleep_count "${PID[$n]}")"
    printf '== %s round %s\n%s\n' "$n" "$r" "$out" >> "$OUT/h2load.txt"
    python3 "$HERE/h2row.py" "$n" "$r" "$HZ" "$RUN/h2load.log" "$c0" "$c1" "$u0" "$u1" --user "$s0" "$s1" --sleeps "$z0" "$z1" <<<"$out" >> "$RAW"
}

log "h2load -c $CONNS -m $STREAMS, $ROUNDS interleaved round(s) x ${DUR}s per target"
for n in "${TARGETS[@]}"; do     # warm-up, not recorded
    h2load_call 20 "${PORT[$n]}" -c 4 -m 8 -D 1 >/dev/null 2>&1 || true
done
for r in $(seq 1 "$ROUNDS"); do
    for n in $(lt_rotated "$r" "${TARGETS[@]}"); do run_round "$n" "$r"; done
done

LOADAVG_END="$(cut -d' ' -f1-3 /proc/loadavg)"
python3 "$HERE/grpcreport.py" --out "$OUT" --versions "$VERSIONS" --rounds "$ROUNDS" --duration "$DUR" \
    --conns "$CONNS" --streams "$STREAMS" --method "$METHOD" --loadavg "$LOADAVG_START -> $LOADAVG_END" \
    --anchor-fields "$(lt_fields_mode)" --cpus "$LT_CPUS" > "$OUT/grpc.md"
for f in "${TARGETS[@]/%/.err}" "${TARGETS[@]/%/.out}" upstream.err; do   # logs, and stderr (sanitizer reports)
    [ -s "$RUN/$f" ] && cp "$RUN/$f" "$OUT/$f.log"
done
cat "$OUT/grpc.md"
log "done: $OUT"
