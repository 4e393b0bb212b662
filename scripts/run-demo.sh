#!/usr/bin/env bash
# Used by `make run`: the demo model server on 127.0.0.1:8501 and the demo
# gRPC model server (Open Inference Protocol, h2c) on 127.0.0.1:8500 in the
# background, pqproxy in front of both on one TLS port in the foreground (the
# shipped config's upstream and upstreams.grpc, TF Serving's ports); Ctrl-C
# (or SIGTERM, or the proxy exiting) stops them all. The gRPC server needs
# Debian's python3-grpcio and python3-grpc-tools (scripts/deps.sh
# --test-tools); without them it is left out, with a note.
#   usage: scripts/run-demo.sh BIN CONFIG
# PX_DEMO_PORT and PX_DEMO_CERTS override 8501 and config/certs (for tests),
# PX_DEMO_GRPC_PORT overrides 8500 ("off": no gRPC server);
# the proxy is pointed at them too (PQPROXY_UPSTREAM, PQPROXY_UPSTREAM_GRPC,
# PQPROXY_TLS_CERT/KEY, unless those are set already), so the shipped config
# still fits.
set -euo pipefail

die() { echo "run-demo: $*" >&2; exit 1; }
[ $# -eq 2 ] || { echo "usage: $0 BIN CONFIG" >&2; exit 2; }

# Absolute paths first: everything below runs from the repository root.
BIN=$(realpath -m -- "$1")
CONFIG=$(realpath -m -- "$2")
cd "$(dirname -- "$(realpath -- "$0")")/.."
DEMO_PORT=${PX_DEMO_PORT:-8501}
GRPC_PORT=${PX_DEMO_GRPC_PORT:-8500}
CERTS=${PX_DEMO_CERTS:-config/certs}
PYTHON=${PYTHON:-python3}

[ -x "$BIN" ] || die "pqproxy binary not found at $BIN (run make first)"
[ -f "$CONFIG" ] || die "config file not found: $CONFIG"
command -v "$PYTHON" >/dev/null || die "$PYTHON not found (the demo model server needs Python 3)"

if [ -n "${PX_DEMO_PORT:-}" ] && [ -z "${PQPROXY_UPSTREAM:-}" ]; then
    export PQPROXY_UPSTREAM="127.0.0.1:$DEMO_PORT"
fi
if [ -n "${PX_DEMO_GRPC_PORT:-}" ] && [ "$GRPC_PORT" != off ] && [ -z "${PQPROXY_UPSTREAM_GRPC:-}" ]; then
    export PQPROXY_UPSTREAM_GRPC="127.0.0.1:$GRPC_PORT"
fi
if [ -n "${PX_DEMO_CERTS:-}" ] && [ -z "${PQPROXY_TLS_CERT:-}${PQPROXY_TLS_KEY:-}" ]; then
    export PQPROXY_TLS_CERT PQPROXY_TLS_KEY
    PQPROXY_TLS_CERT=$(realpath -m -- "$CERTS/server.crt")
    PQPROXY_TLS_KEY=$(realpath -m -- "$CERTS/server.key")
fi

if [ ! -f "$CERTS/server.crt" ]; then
    echo "run-demo: no $CERTS/server.crt yet: making development certificates"
    "$BIN" certgen --out "$CERTS" || die "certgen failed"
fi

# A Python that imports Debian's grpc (a pyenv or venv one does not see it).
GRPC_PYTHON=""
if [ "$GRPC_PORT" != off ]; then
    for py in "$PYTHON" /usr/bin/python3; do
        if "$py" -c 'import grpc, grpc_tools, google.protobuf' 2>/dev/null; then
            GRPC_PYTHON=$py; break
        fi
    done
    [ -n "$GRPC_PYTHON" ] || echo "run-demo: no Python with grpc and grpc_tools (Debian's python3-grpcio," \
        "python3-grpc-tools: scripts/deps.sh --test-tools installs them): the gRPC demo model server is left out" >&2
fi

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in "$DEMO_PORT" ${GRPC_PYTHON:+"$GRPC_PORT"}; do
    if port_open "$port"; then
        die "port $port is busy (another demo model server or TF Serving?); stop it first"
    fi
done

cleanup() {
    trap - INT TERM EXIT
    # Only jobs still running: the pid of one that has exited may already
    # belong to some other process.
    local running
    running=$(jobs -rp)
    if [ -n "$running" ]; then
        kill -TERM $running 2>/dev/null || true
    fi
    wait 2>/dev/null || true
}
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
trap cleanup EXIT

# wait_listening NAME PID PORT SECONDS: a bind failure makes the server exit at once.
wait_listening() {
    for _ in $(seq $(($4 * 10))); do
        port_open "$3" && return 0
        jobs -rp | grep -qx "$2" || die "$1 failed to start"
        sleep 0.1
    done
    die "$1 not listening on 127.0.0.1:$3 after $4 s"
}

"$PYTHON" scripts/demo_model_server.py --host 127.0.0.1 --port "$DEMO_PORT" &
wait_listening "demo model server" $! "$DEMO_PORT" 5
if [ -n "$GRPC_PYTHON" ]; then
    # Longer: it compiles its .proto files first.
    "$GRPC_PYTHON" scripts/demo_grpc_model_server.py --host 127.0.0.1 --port "$GRPC_PORT" &
    wait_listening "demo gRPC model server" $! "$GRPC_PORT" 15
fi

cat <<EOF

pqproxy demo: model server on http://127.0.0.1:$DEMO_PORT, proxy starting with $CONFIG
In a second terminal, ask for a prediction over hybrid post-quantum TLS:

  build/pqproxy request --cacert config/certs/ca.crt -v https://localhost:8443/v1/models/half_plus_two:predict -d '{"instances":[1.0,2.0,5.0]}'

or with curl:

  curl --cacert config/certs/ca.crt https://localhost:8443/v1/models/half_plus_two

(Debian 12's curl uses OpenSSL 3.0, which has no hybrid ML-KEM groups: it
only connects if the config says "pq_policy": "prefer", or with a curl built
against OpenSSL >= 3.5.)  Ctrl-C stops everything.

EOF
[ -z "$GRPC_PYTHON" ] || cat <<EOF
gRPC: the demo gRPC model server (Open Inference Protocol, GRPCInferenceService
of scripts/proto/grpc_predict_v2.proto, model half_plus_two) listens on h2c
127.0.0.1:$GRPC_PORT, behind the same TLS port: requests with content-type
application/grpc go there. ServerLive (an empty message: 5 zero bytes) over HTTP/2:

  printf '\0\0\0\0\0' | build/pqproxy request --http2 --cacert config/certs/ca.crt -i -H 'content-type: application/grpc' -H 'te: trailers' --data-file - https://localhost:8443/inference.GRPCInferenceService/ServerLive

(any OIP client over TLS works too, e.g. Triton's tritonclient.grpc with ssl=True).

EOF

# In the background plus `wait`, so a SIGTERM to this script is handled at
# once (bash defers traps while a foreground child runs).
"$BIN" run --config "$CONFIG" &
proxy_pid=$!
set +e
wait "$proxy_pid"
exit $?
