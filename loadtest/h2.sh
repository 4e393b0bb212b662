#!/usr/bin/env bash
# HTTP/2 side by side in one run (docs/benchmarks.md, "HTTP/2"):
#
#   loadtest/h2.sh [--quick] [--rounds N] [--duration S] [--idle N] [--stock-anchors]
#                  [--pin] [--upstream-cap N] [--rate-share F] [--pqproxy PATH] [--out DIR]
#
# One plaintext HTTP/1.1 upstream (nginx serving the small JSON document of
# run.sh), and in front of it, with the same ECDSA P-256 certificate
# (pqproxy certgen), TLS 1.3, one worker each, ALPN h2 and http/1.1:
#   pqproxy   tls.alpn ["h2", "http/1.1"], pq_policy "prefer"
#   nginx     listen ... ssl http2 (nginx 1.22 predates `http2 on;`),
#             proxy_pass over HTTP/1.1 keep-alive to the upstream
#   haproxy   bind ... alpn h2,http/1.1, HTTP/1.1 backend, nbthread 1
# each forwarding the fields pqproxy adds (X-Forwarded-For, -Proto, -Host,
# X-Request-Id; loadtest/lib.sh), checked at the upstream (check.txt);
# --stock-anchors: nginx and HAProxy on their defaults, adding none.
# It runs:
#   h2  h2load (nghttp2-client) -c C -m M, HTTP/2 only, GET /small.json, in
#       interleaved rounds of S seconds: req/s, CPU per request (the
#       proxy's own utime+stime from /proc, children included, over
#       h2load's requests; its user-space part and its sleeps in the kernel,
#       voluntary context switches, beside it), p99 (from h2load's
#       --log-file), and the ratios pqproxy / best anchor.
#   rate  the same load at one offered rate for every h2load target:
#       h2load --rps, F (--rate-share, default 0.6; 0 skips it) of the
#       slowest one's median req/s above, in as many interleaved rounds.
#       Above, each proxy sets its own rate (256 requests always in
#       flight), so its latency follows its throughput; here all serve the
#       same requests per second, and p50/p99 and CPU per request compare
#       like for like (a target that did not keep up is flagged).
# --upstream-cap N: pqproxy's upstream.max_connections (default: its
# default), to see what the connections it opens to the upstream cost.
# --pin: the proxies on the last CPU, the upstream and h2load on the others
# (taskset; two or more CPUs), so that they do not take turns on the
# proxy's core.
#   idle  N idle connections per proxy (idleconns.py), HTTP/2 (preface and
#       SETTINGS exchanged, no stream) and HTTP/1.1 (handshake only),
#       each on a freshly started proxy: RSS growth per connection.
# Debian's h2load, nginx and HAProxy are on OpenSSL 3.0: X25519 only, so
# the rows above are classical for everyone (pqproxy under "prefer"). When
# Node.js 24 (OpenSSL 3.5; PX_NODE24 or scripts/deps.sh --peers) is there,
# two more rows use h2node.mjs, an h2load stand-in on it, with the same -c
# and -m: "pqproxy-h", a pqproxy under pq_policy "require" offered
# X25519MLKEM768 only (what pqproxy ships), and "pqproxy-x", the pqproxy
# above offered X25519 only: the group's cost, like for like (Node's client
# is slower than h2load, so these two compare with each other).
#
# --quick: 1 round x 3 s, 200 idle connections. Defaults: 3 rounds x 10 s,
# -c 8 -m 32, 500 idle connections. Results: DIR (default
# loadtest/results/h2-<UTC timestamp>/): h2.md, h2.json, raw.tsv,
# raw_rate.tsv, idle.tsv, the configurations and logs. Loopback only; every loop is
# bounded; everything started is stopped on exit.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
PQPROXY="$ROOT/build/pqproxy"
ROUNDS=3 DUR=10 IDLE_N=500 CONNS=8 STREAMS=32 OUT="" STOCK=0 PIN=0 UPCAP="" RATE_SHARE=0.6
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds|--duration|--idle|--upstream-cap|--rate-share|--pqproxy|--out)
            [ $# -ge 2 ] || { echo "h2.sh: $1 needs a value" >&2; exit 2; } ;;
    esac
    case "$1" in
        --quick) ROUNDS=1; DUR=3; IDLE_N=200 ;;
        --stock-anchors) STOCK=1 ;;
        --pin) PIN=1 ;;
        --rounds) ROUNDS="${2:-}"; shift ;;
        --duration) DUR="${2:-}"; shift ;;
        --idle) IDLE_N="${2:-}"; shift ;;
        --upstream-cap) UPCAP="${2:-}"; shift ;;
        --rate-share) RATE_SHARE="${2:-}"; shift ;;
        --pqproxy) PQPROXY="${2:-}"; shift ;;
        --out) OUT="${2:-}"; shift ;;
        -h|--help) sed -n '2,/^set -euo/{/^#/p}' "$0"; exit 0 ;;
        *) echo "h2.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

LT_NAME=h2.sh
. "$HERE/lib.sh"
lt_check_ranges "--rounds:$ROUNDS:1:15" "--duration:$DUR:1:600" "--idle:$IDLE_N:1:10000"
[ -z "$UPCAP" ] || lt_check_ranges "--upstream-cap:$UPCAP:1:100000"
[[ "$RATE_SHARE" =~ ^(0|0?\.[0-9]+|1|1\.0*)$ ]] ||
    { echo "h2.sh: --rate-share must be a number from 0 to 1, got '$RATE_SHARE'" >&2; exit 2; }
awk -v f="$RATE_SHARE" 'BEGIN { exit !(f + 0 == 0) }' && RATE_SHARE=0
[ "$STOCK" = 0 ] || LT_SAME_FIELDS=0
lt_same_fields
lt_need_pqproxy "$PQPROXY"
lt_need_tools scripts/bench-deps.sh nginx haproxy h2load curl python3

NODE="$( (lt_node24) 2>/dev/null || true)"

lt_run_setup "$PQPROXY" h2
lt_pin_setup "$PIN"
log() { printf 'h2.sh: %s\n' "$*" >&2; }

declare -A PORT PID
lt_start_small_upstream

# start_pqproxy NAME POLICY, start_nginx, start_haproxy: the proxies (also restarted for the idle counts)
start_pqproxy() { lt_start_pqproxy "$1" "$2" '["h2", "http/1.1"]' "\"pool_max_idle\": 256${UPCAP:+, \"max_connections\": $UPCAP}"; }
start_nginx() { lt_start_nginx_h2 "" "proxy_pass http://model; proxy_http_version 1.1; proxy_set_header Connection \"\"; $(lt_ngx_fields proxy)"; }
start_haproxy() { lt_start_haproxy h2,http/1.1; }

TARGETS=(pqproxy nginx haproxy)
start_pqproxy pqproxy prefer
start_nginx
start_haproxy
if [ -n "$NODE" ]; then
    start_pqproxy pqproxy-h require
    PID[pqproxy-x]="${PID[pqproxy]}"; PORT[pqproxy-x]="${PORT[pqproxy]}"
    TARGETS+=(pqproxy-h pqproxy-x)
fi
# the load generator for TARGET (h2node.mjs takes h2load's options)
h2gen() {
    case "$1" in
        pqproxy-h) echo "$LT_LOAD_PIN $NODE $HERE/h2node.mjs --groups X25519MLKEM768" ;;
        pqproxy-x) echo "$LT_LOAD_PIN $NODE $HERE/h2node.mjs --groups X25519" ;;
        *) echo "$LT_LOAD_PIN h2load" ;;
    esac
}

: > "$OUT/check.txt"
for n in "${TARGETS[@]}"; do
    wait_port "${PORT[$n]}" || lt_die "$n did not start: $(cat "$RUN/$n".out "$RUN/$n".err 2>/dev/null | tail -5)"
    # one request over HTTP/2, and the protocol h2load negotiated
    hdr=()      # h2load's check request is marked for the upstream's log of fields
    [ "$n" != "${n#pqproxy-}" ] || hdr=(-H "x-lt-check: $n")
    chk="$($(h2gen "$n") -n 1 -c 1 --npn-list=h2 "${hdr[@]}" "https://127.0.0.1:${PORT[$n]}/small.json" 2>&1 || true)"
    grep -q '^Application protocol: h2$' <<<"$chk" && grep -q ' 1 succeeded' <<<"$chk" ||
        lt_die "$n does not answer over HTTP/2: $(tail -5 <<<"$chk"; cat "$RUN/$n".out "$RUN/$n".err 2>/dev/null | tail -5)"
    fields=""
    [ ${#hdr[@]} -eq 0 ] || fields="; forwarded: $(lt_check_fields "$n")"
    printf '%s: %s%s; CPUs %s\n' "$n" "$(grep -E '^(TLS Protocol|Cipher|Server Temp Key|Application protocol):' <<<"$chk" | tr '\n' ' ')" \
        "$fields" "$(lt_cpus_of "${PID[$n]}")" >> "$OUT/check.txt"
done
if [ -n "$NODE" ]; then     # the hybrid proxy refuses a classical client: the group is really hybrid
    chk="$(h2load -n 1 -c 1 --npn-list=h2 "https://127.0.0.1:${PORT[pqproxy-h]}/small.json" 2>&1 || true)"
    grep -q ' 0 succeeded' <<<"$chk" || lt_die "pqproxy-h (require) answered h2load on OpenSSL 3.0 (X25519)"
    echo "pqproxy-h: refuses h2load on OpenSSL 3.0 (X25519 only): $(grep '^requests:' <<<"$chk")" >> "$OUT/check.txt"
fi
LOADAVG_START="$(cut -d' ' -f1-3 /proc/loadavg)"
VERSIONS="$("$PQPROXY" version | head -n1); $(nginx -v 2>&1 | sed 's/.*: //'); HAProxy $(haproxy -v | head -1 | awk '{print $3}'); $(h2load --version | head -1); $(openssl version 2>/dev/null | awk '{print $1, $2}')"
log "$VERSIONS; load average $LOADAVG_START"
log "$LT_CPUS; upstream :$UP_PORT; $(for n in "${TARGETS[@]}"; do printf '%s :%s  ' "$n" "${PORT[$n]}"; done)"

# --- h2: many streams per connection, small responses ------------------------------------

RAW="$OUT/raw.tsv" RAW_RATE="$OUT/raw_rate.tsv"
for f in "$RAW" "$RAW_RATE"; do
    printf 'target\tround\trequests\tfailed\tduration_s\treq_s\tp50_us\tp99_us\tcpu_s\tcpu_us_per_req\tuser_us_per_req\tsleeps_per_req\n' > "$f"
done
# run_h2load TARGET ROUND FILE [H2LOAD OPTION...]: one run, its row into FILE
run_h2load() {
    local n="$1" r="$2" f="$3" c0 c1 s0 s1 z0 z1 out
    shift 3
    rm -f "$RUN/h2load.log"
    c0="$(cpu_ticks "${PID[$n]}")"; s0="$(user_ticks "${PID[$n]}")"; z0="$(sleep_count "${PID[$n]}")"
    out="$(timeout $((DUR + 30)) $(h2gen "$n") -t 1 -c "$CONNS" -m "$STREAMS" -D "$DUR" --npn-list=h2 "$@" \
             --log-file="$RUN/h2load.log" "https://127.0.0.1:${PORT[$n]}/small.json" 2>&1 || true)"
    c1="$(cpu_ticks "${PID[$n]}")"; s1="$(user_ticks "${PID[$n]}")"; z1="$(sleep_count "${PID[$n]}")"
    printf '== %s round %s %s\n%s\n' "$n" "$r" "$*" "$out" >> "$OUT/h2load.txt"
    python3 "$HERE/h2row.py" "$n" "$r" "$HZ" "$RUN/h2load.log" "$c0" "$c1" --user "$s0" "$s1" --sleeps "$z0" "$z1" <<<"$out" >> "$f"
}

log "h2: h2load -c $CONNS -m $STREAMS, $ROUNDS interleaved round(s) x ${DUR}s per target"
for n in "${TARGETS[@]}"; do     # warm-up, not recorded
    timeout 20 $(h2gen "$n") -c 4 -m 8 -D 1 --npn-list=h2 "https://127.0.0.1:${PORT[$n]}/small.json" >/dev/null 2>&1 || true
done
for r in $(seq 1 "$ROUNDS"); do
    for n in $(lt_rotated "$r" "${TARGETS[@]}"); do run_h2load "$n" "$r" "$RAW"; done
done

# --- rate: one offered rate for every h2load target -----------------------------------------

RPS=""
if [ "$RATE_SHARE" != 0 ]; then
    # per connection: the share of the slowest h2load target's median req/s, over CONNS
    RPS="$(python3 - "$RAW" "$RATE_SHARE" "$CONNS" <<'PY'
import csv, statistics, sys
raw, share, conns = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
rows = list(csv.DictReader(open(raw), delimiter="\t"))
meds = [statistics.median(float(r["req_s"]) for r in rows if r["target"] == t)
        for t in ("pqproxy", "nginx", "haproxy") if any(r["target"] == t for r in rows)]
print(max(1, int(min(meds) * share / conns)) if len(meds) == 3 else "")
PY
)"
    [ -n "$RPS" ] || lt_die "rate: a target has no result above (raw.tsv)"
    log "rate: h2load --rps $RPS per connection ($((RPS * CONNS)) req/s, $RATE_SHARE of the slowest), $ROUNDS round(s)"
    for r in $(seq 1 "$ROUNDS"); do
        for n in $(lt_rotated "$r" pqproxy nginx haproxy); do run_h2load "$n" "$r" "$RAW_RATE" --rps "$RPS"; done
    done
fi

# --- idle: RSS per idle connection, HTTP/2 against HTTP/1.1 -------------------------------------

IDLE="$OUT/idle.tsv"
printf 'target\tprotocol\trequested\topen\tkib_per_conn\trss_before_kib\trss_after_kib\n' > "$IDLE"
log "idle: $IDLE_N idle connections per proxy and protocol"
# Each count on a freshly started proxy: memory freed by an earlier count
# stays in the allocator and would make the later protocol look cheaper.
for proto in h2 http/1.1; do
    for n in pqproxy nginx haproxy; do
        lt_stop_target "$n"
        if [ "$n" = pqproxy ]; then start_pqproxy pqproxy prefer; else "start_$n"; fi
        wait_port "${PORT[$n]}" || lt_die "$n did not restart: $(cat "$RUN/$n".out "$RUN/$n".err 2>/dev/null | tail -5)"
        sleep 0.5
        res="$( (ulimit -n 20000 2>/dev/null || true
                  timeout 300 python3 "$HERE/idleconns.py" --port "${PORT[$n]}" --n "$IDLE_N" --pids "${PID[$n]}" \
                      --hold 2 --alpn "$proto") 2>>"$OUT/idle.log" || true)"
        echo "$n $proto $res" >> "$OUT/idle.log"
        [ -n "$res" ] || continue
        python3 -c "import json,sys; d=json.loads(sys.argv[3]); print('\t'.join(map(str,[sys.argv[1], sys.argv[2], d['requested'], d['open'], d['kib_per_conn'], d['rss_before_kib'], d['rss_after_kib']])))" \
            "$n" "$proto" "$res" >> "$IDLE"
        sleep 1     # the closed connections are gone before the next count
    done
done

LOADAVG_END="$(cut -d' ' -f1-3 /proc/loadavg)"
NODE_VER=""
[ -z "$NODE" ] || NODE_VER="$("$NODE" -p '"Node " + process.version + ", OpenSSL " + process.versions.openssl')"
python3 "$HERE/h2report.py" --out "$OUT" --versions "$VERSIONS" --rounds "$ROUNDS" --duration "$DUR" \
    --conns "$CONNS" --streams "$STREAMS" --idle-n "$IDLE_N" --loadavg "$LOADAVG_START -> $LOADAVG_END" \
    --node "$NODE_VER" --anchor-fields "$(lt_fields_mode)" --cpus "$LT_CPUS" --upstream-cap "$UPCAP" \
    --rps "${RPS:-0}" --rate-share "$RATE_SHARE" > "$OUT/h2.md"
for n in "${TARGETS[@]}"; do [ -s "$RUN/$n.err" ] && cp "$RUN/$n.err" "$OUT/$n.err.log"; done
cat "$OUT/h2.md"
log "done: $OUT"
