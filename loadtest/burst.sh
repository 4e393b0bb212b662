#!/usr/bin/env bash
# A burst on a cold pool, side by side (docs/benchmarks.md, "A burst on a
# cold pool"):
#
#   loadtest/burst.sh [--quick] [--rounds N] [--requests N] [--caps "C ..."]
#                     [--pqproxy PATH] [--out DIR]
#
# One plaintext HTTP/1.1 upstream (nginx serving the small JSON document of
# run.sh). Every round starts each target afresh (no pooled upstream
# connection, nothing cached) and sends it one burst: h2load -c 8 -m 32
# -n N over HTTP/2 (N = 256 by default: every request at once), GET
# /small.json. The targets, TLS 1.3 with the same certificate, one worker:
#   pqproxy-cC  pqproxy with upstream.max_connections C, for each C of
#               --caps (default "256 64 0": the default, a lower cap, none)
#   nginx       listen ... ssl http2, proxy_pass over HTTP/1.1 keep-alive
#   haproxy     bind ... alpn h2,http/1.1, HTTP/1.1 backend
# Recorded per target and round: how long the burst took (h2load's
# "finished in"), each request's time (min, mean, max), the requests that
# succeeded, and the connections the target holds to the upstream after it
# (from /proc/net/tcp). The report (burstreport.py) gives the medians and
# each target's burst time over the best anchor's.
#
# --quick: 1 round. Defaults: 3 rounds. Results: DIR (default
# loadtest/results/burst-<UTC timestamp>/): burst.md, burst.tsv, h2load.txt,
# the configurations. Loopback only; everything started is stopped on exit.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
PQPROXY="$ROOT/build/pqproxy"
ROUNDS=3 REQS=256 CAPS="256 64 0" OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds|--requests|--caps|--pqproxy|--out)
            [ $# -ge 2 ] || { echo "burst.sh: $1 needs a value" >&2; exit 2; } ;;
    esac
    case "$1" in
        --quick) ROUNDS=1 ;;
        --rounds) ROUNDS="${2:-}"; shift ;;
        --requests) REQS="${2:-}"; shift ;;
        --caps) CAPS="${2:-}"; shift ;;
        --pqproxy) PQPROXY="${2:-}"; shift ;;
        --out) OUT="${2:-}"; shift ;;
        -h|--help) sed -n '2,/^set -euo/{/^#/p}' "$0"; exit 0 ;;
        *) echo "burst.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

LT_NAME=burst.sh
. "$HERE/lib.sh"
lt_check_ranges "--rounds:$ROUNDS:1:15" "--requests:$REQS:1:100000"
[ -n "$CAPS" ] || { echo "burst.sh: --caps needs at least one number" >&2; exit 2; }
for c in $CAPS; do lt_check_ranges "--caps:$c:0:100000"; done
lt_same_fields
lt_need_pqproxy "$PQPROXY"
lt_need_tools scripts/bench-deps.sh nginx haproxy h2load python3

lt_run_setup "$PQPROXY" burst
lt_pin_setup 0
log() { printf 'burst.sh: %s\n' "$*" >&2; }

declare -A PORT PID
lt_start_small_upstream

TARGETS=()
for c in $CAPS; do TARGETS+=("pqproxy-c$c"); done
TARGETS+=(nginx haproxy)
start_target() {
    case "$1" in
        pqproxy-c*) lt_start_pqproxy "$1" prefer '["h2", "http/1.1"]' \
                        "\"pool_max_idle\": 256, \"max_connections\": ${1#pqproxy-c}" ;;
        nginx) lt_start_nginx_h2 "" "proxy_pass http://model; proxy_http_version 1.1; proxy_set_header Connection \"\"; $(lt_ngx_fields proxy)" ;;
        haproxy) lt_start_haproxy h2,http/1.1 ;;
    esac
}
# established connections to the upstream port (only one target runs at a time)
upstream_conns() {
    python3 - "$UP_PORT" <<'PY'
import sys
port = int(sys.argv[1])
n = 0
for f in ("/proc/net/tcp", "/proc/net/tcp6"):
    try:
        lines = open(f).read().splitlines()[1:]
    except OSError:
        continue
    for ln in lines:
        p = ln.split()
        if p[3] == "01" and int(p[2].rsplit(":", 1)[1], 16) == port:
            n += 1
print(n)
PY
}

VERSIONS="$("$PQPROXY" version | head -n1); $(nginx -v 2>&1 | sed 's/.*: //'); HAProxy $(haproxy -v | head -1 | awk '{print $3}'); $(h2load --version | head -1)"
log "$VERSIONS; $ROUNDS round(s), $REQS requests per burst (h2load -c 8 -m 32)"
: > "$OUT/h2load.txt"
printf 'target\tround\tupstream_conns\n' > "$RUN/conns.tsv"
for r in $(seq 1 "$ROUNDS"); do
    for n in $(lt_rotated "$r" "${TARGETS[@]}"); do
        start_target "$n"
        wait_port "${PORT[$n]}" || lt_die "$n did not start: $(cat "$RUN/$n".out "$RUN/$n".err 2>/dev/null | tail -5)"
        sleep 0.3
        out="$(timeout 60 h2load -c 8 -m 32 -n "$REQS" --npn-list=h2 "https://127.0.0.1:${PORT[$n]}/small.json" 2>&1 || true)"
        printf '== %s round %s\n%s\n' "$n" "$r" "$out" >> "$OUT/h2load.txt"
        printf '%s\t%s\t%s\n' "$n" "$r" "$(upstream_conns)" >> "$RUN/conns.tsv"
        lt_stop_target "$n"
    done
done
python3 "$HERE/burstreport.py" --h2load "$OUT/h2load.txt" --conns "$RUN/conns.tsv" --out "$OUT" \
    --versions "$VERSIONS" --requests "$REQS" | tee "$OUT/burst.md"
