#!/usr/bin/env bash
# Used by `make run`: the demo model server on 127.0.0.1:8501 in the
# background, pqproxy in front of it in the foreground; Ctrl-C (or SIGTERM,
# or the proxy exiting) stops both.
#   usage: scripts/run-demo.sh BIN CONFIG
# PX_DEMO_PORT and PX_DEMO_CERTS override 8501 and config/certs (for tests);
# the proxy is pointed at them too (PQPROXY_UPSTREAM, PQPROXY_TLS_CERT/KEY,
# unless those are set already), so the shipped config still fits.
set -euo pipefail

die() { echo "run-demo: $*" >&2; exit 1; }
[ $# -eq 2 ] || { echo "usage: $0 BIN CONFIG" >&2; exit 2; }

# Absolute paths first: everything below runs from the repository root.
BIN=$(realpath -m -- "$1")
CONFIG=$(realpath -m -- "$2")
cd "$(dirname -- "$(realpath -- "$0")")/.."
DEMO_PORT=${PX_DEMO_PORT:-8501}
CERTS=${PX_DEMO_CERTS:-config/certs}
PYTHON=${PYTHON:-python3}

[ -x "$BIN" ] || die "pqproxy binary not found at $BIN (run make first)"
[ -f "$CONFIG" ] || die "config file not found: $CONFIG"
command -v "$PYTHON" >/dev/null || die "$PYTHON not found (the demo model server needs Python 3)"

if [ -n "${PX_DEMO_PORT:-}" ] && [ -z "${PQPROXY_UPSTREAM:-}" ]; then
    export PQPROXY_UPSTREAM="127.0.0.1:$DEMO_PORT"
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

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if port_open "$DEMO_PORT"; then
    die "port $DEMO_PORT is busy (another demo model server or TF Serving?); stop it first"
fi

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

"$PYTHON" scripts/demo_model_server.py --host 127.0.0.1 --port "$DEMO_PORT" &
demo_pid=$!
# Up to 5 s for it to listen; a bind failure makes it exit at once.
for _ in $(seq 50); do
    port_open "$DEMO_PORT" && break
    jobs -rp | grep -qx "$demo_pid" || die "demo model server failed to start"
    sleep 0.1
done
port_open "$DEMO_PORT" || die "demo model server not listening on 127.0.0.1:$DEMO_PORT after 5 s"

cat <<EOF

pqproxy demo: model server on http://127.0.0.1:$DEMO_PORT, proxy starting with $CONFIG
In a second terminal, ask for a prediction over hybrid post-quantum TLS:

  build/pqproxy request --cacert config/certs/ca.crt -v https://localhost:8443/v1/models/half_plus_two:predict -d '{"instances":[1.0,2.0,5.0]}'

or with curl:

  curl --cacert config/certs/ca.crt https://localhost:8443/v1/models/half_plus_two

(Debian 12's curl uses OpenSSL 3.0, which has no hybrid ML-KEM groups: it
only connects if the config says "pq_policy": "prefer", or with a curl built
against OpenSSL >= 3.5.)  Ctrl-C stops both.

EOF

# In the background plus `wait`, so a SIGTERM to this script is handled at
# once (bash defers traps while a foreground child runs).
"$BIN" run --config "$CONFIG" &
proxy_pid=$!
set +e
wait "$proxy_pid"
exit $?
