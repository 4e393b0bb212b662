#!/usr/bin/env bash
# `make test-deploy`: builds docker/Dockerfile for real and runs the image.
#
#   scripts/test-deploy.sh [PQPROXY_BINARY]     (default build/pqproxy: the client side)
#
# 1. Installs what is missing from Debian: podman, buildah, runc, debootstrap,
#    docker-compose (podman runs rootful, as root, with runc).
# 2. Makes the base images debian:12 and debian:12-slim with debootstrap from
#    the Debian mirror of this machine's apt configuration (read now, through
#    scripts/deps.sh's system_mirror) and imports them into podman. The root
#    file system tarball is kept in $PQPROXY_CACHE/containers, the images and
#    the build's layers in podman's own storage (/var/lib/containers): a
#    second run reuses all of it.
# 3. Builds the image (podman build --format docker: the OCI format has no
#    HEALTHCHECK) as pqproxy:local, then checks it: --version, uid 10001 and
#    a read-only root, the HEALTHCHECK, a hybrid post-quantum request to the
#    demo model through it (group X25519MLKEM768 in the access log, 200), a
#    classical-only client refused under pq_policy require, and SIGTERM
#    draining a request in flight before the container exits 0.
# 4. Builds docker/demo-grpc.Dockerfile, brings up docker/compose.yaml's
#    demo and demo-grpc profiles with Debian's docker-compose against
#    podman's Docker API socket, sends a hybrid REST request and a gRPC call
#    (h2, ServerLive) through the one published port and takes it down.
# 5. Seals and signs the demo model (scripts/seal-demo-model.sh) and brings
#    up the sealed profile: the one-shot open-model service opens it, the
#    model server starts after it and serves the opened weights; then a
#    tampered sealed file: open-model fails, the model server never starts.
#
# Traffic stays on this machine: the image runs on the host's network
# namespace bound to 127.0.0.1, the compose stack on its own podman network
# with its ports published on 127.0.0.1. Nothing is pulled from a registry.
# Prints one line per check and ends with "N passed, N failed".
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# deps.sh only defines functions when sourced: system_mirror, install_system_packages.
# shellcheck source=deps.sh
. "$ROOT/scripts/deps.sh"

PQPROXY="$(realpath "${1:-$ROOT/build/pqproxy}")"
# PQPROXY_TEST_IMAGE: another tag, so that two trees on one machine do not overwrite each other's
IMAGE="${PQPROXY_TEST_IMAGE:-localhost/pqproxy:local}"
CDIR="$CACHE/containers"
SUITE="$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")"
PASSED=0
FAILED=0

log() { printf 'test-deploy: %s\n' "$*" >&2; }
die() { printf 'test-deploy: error: %s\n' "$*" >&2; exit 1; }
ok() { PASSED=$((PASSED + 1)); printf 'ok - %s\n' "$*"; }
fail() { FAILED=$((FAILED + 1)); printf 'FAIL - %s\n' "$*"; }
check() { local what="$1"; shift; if "$@"; then ok "$what"; else fail "$what"; fi; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() {   # SECONDS COMMAND...: until COMMAND succeeds
    local end=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do [ $SECONDS -lt $end ] || return 1; sleep 0.5; done
}

[ "$(id -u)" -eq 0 ] || die "run as root: podman runs rootful here (rootless needs subuid ranges and slirp4netns)"
[ -x "$PQPROXY" ] || die "no client binary $PQPROXY: run \`make build\` first"

# --- tools ---------------------------------------------------------------------------------
install_system_packages podman buildah runc debootstrap docker-compose
mkdir -p "$CDIR"
# Our own containers.conf (podman reads only this file when CONTAINERS_CONF
# is set, the system's stays untouched): runc, since crun cannot create
# containers in some sandboxes; nofile and nproc set explicitly: podman
# asks for more than a sandbox that forbids raising limits lets it have
# (nofile 1048576, nproc its own), and runc then fails with "error setting
# rlimits". nofile: this host's hard limit; nproc: plenty for the proxy's
# threads.
NOFILE="$(ulimit -Hn)"
[ "$NOFILE" = unlimited ] && NOFILE=1048576
cat > "$CDIR/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$NOFILE:$NOFILE", "nproc=4096:4096"]
[engine]
runtime = "runc"
EOF
export CONTAINERS_CONF="$CDIR/containers.conf"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/pqproxy-test-deploy.XXXXXX")"
PIDS=()
CONTAINERS=()
COMPOSED=0
cleanup() {
    local c p
    [ "$COMPOSED" = 0 ] || compose_down > /dev/null 2>&1 || true
    for c in "${CONTAINERS[@]}"; do podman rm -f -t 0 "$c" >/dev/null 2>&1 || true; done
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

# --- base images ---------------------------------------------------------------------------
# debian:12 as debootstrap --variant=minbase makes it (what the official image
# is built from), plus the host's Acquire::Check-Valid-Until: a mirror that
# serves a snapshot has Release files past their Valid-Until, and deps.sh's
# newer suites would then be refused. debian:12-slim is the same tree
# without documentation, man pages and locales, with dpkg told to keep them
# out, as the official slim image does.
make_base_images() {
    local mirror tar="$CDIR/debian-$SUITE-minbase.tar" rootfs valid
    if [ ! -s "$tar" ]; then
        mirror="$(system_mirror)"
        rootfs="$TMP/rootfs"
        log "debootstrap $SUITE from $mirror (once; cached in $tar)"
        debootstrap --variant=minbase "$SUITE" "$rootfs" "$mirror" > "$TMP/debootstrap.log" 2>&1 ||
            { tail -n 30 "$TMP/debootstrap.log" >&2; die "debootstrap failed"; }
        printf 'deb %s %s main\ndeb %s %s-updates main\n' "$mirror" "$SUITE" "$mirror" "$SUITE" \
            > "$rootfs/etc/apt/sources.list"
        valid="$(apt-config dump Acquire::Check-Valid-Until | sed -n 's/^Acquire::Check-Valid-Until "\(.*\)";$/\1/p')"
        if [ -n "$valid" ]; then
            printf 'Acquire::Check-Valid-Until "%s";\n' "$valid" > "$rootfs/etc/apt/apt.conf.d/90host-valid-until"
        fi
        rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
        tar -C "$rootfs" --numeric-owner -cf "$tar.tmp" . && mv "$tar.tmp" "$tar"
        rm -rf "$rootfs"
    fi
    if ! podman image exists localhost/debian:12; then
        podman import -q --change 'CMD ["bash"]' "$tar" localhost/debian:12 >/dev/null
    fi
    if ! podman image exists localhost/debian:12-slim; then
        cat > "$TMP/Containerfile.slim" <<'EOF'
FROM localhost/debian:12
RUN printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
        'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' \
        'path-exclude /usr/share/locale/*' > /etc/dpkg/dpkg.cfg.d/slim \
    && find /usr/share/doc -mindepth 1 ! -name copyright ! -type d -delete \
    && rm -rf /usr/share/man/* /usr/share/info/* /usr/share/locale/*
EOF
        # squashed: one layer, as a base image is
        podman build --squash-all --pull=never --format docker -t localhost/debian:12-slim \
            -f "$TMP/Containerfile.slim" "$TMP" > "$TMP/slim.log" 2>&1 ||
            { tail -n 30 "$TMP/slim.log" >&2; die "building debian:12-slim failed"; }
    fi
}

t0=$SECONDS
make_base_images
log "base images ready ($((SECONDS - t0)) s)"

# --- the image -----------------------------------------------------------------------------
t0=$SECONDS
log "podman build -f docker/Dockerfile -t $IMAGE (cold: minutes; warm: seconds)"
if ! podman build --format docker --pull=never --layers -f "$ROOT/docker/Dockerfile" -t "$IMAGE" \
        "$ROOT" > "$TMP/build.log" 2>&1; then
    tail -n 60 "$TMP/build.log" >&2
    die "podman build failed"
fi
log "image built ($((SECONDS - t0)) s, $(podman image inspect --format '{{.Size}}' "$IMAGE" |
    awk '{ printf "%d MB", $1 / 1e6 }'))"

has_healthcheck() { podman image inspect --format '{{json .Config.Healthcheck}}' "$IMAGE" | grep -q '"pqproxy","healthcheck"'; }
check "the image has the HEALTHCHECK (docker format)" has_healthcheck
out="$(podman run --rm --no-healthcheck --network none --entrypoint pqproxy "$IMAGE" --version 2>&1)" || true
check "pqproxy --version in the image ($out)" grep -q '^pqproxy ' <<<"$out"

# Hardened as compose and the Kubernetes base run it, and stricter: no tmpfs
# on /tmp either (pqproxy writes nothing).
HARDEN=(--read-only --read-only-tmpfs=false --cap-drop ALL --security-opt no-new-privileges)
out="$(podman run --rm --no-healthcheck --network none "${HARDEN[@]}" --entrypoint id "$IMAGE" 2>&1)" || true
check "runs as uid/gid 10001 ($out)" grep -q '^uid=10001(pqproxy) gid=10001(pqproxy)' <<<"$out"
out="$(podman run --rm --no-healthcheck --network none "${HARDEN[@]}" --entrypoint sh "$IMAGE" \
       -c 'for d in / /tmp /etc/pqproxy; do touch "$d/probe" 2>&1 && echo "wrote $d"; done' 2>&1)" || true
read_only() { [ "$(grep -c 'Read-only file system' <<<"$out")" = 3 ] && ! grep -q wrote <<<"$out"; }
check "the root file system is read-only ($(tr '\n' ' ' <<<"$out"))" read_only

# --- the image serving ---------------------------------------------------------------------
# Certificates made by the image itself, as uid 10001, into a directory that
# uid owns: server.key (0600) is then readable by the proxy (docs/deploy.md).
install -d -o 10001 -g 10001 "$TMP/tls"
podman run --rm --no-healthcheck --network none -v "$TMP/tls:/out" --entrypoint pqproxy "$IMAGE" \
    certgen --out /out --san localhost > "$TMP/certgen.log" 2>&1 ||
    { cat "$TMP/certgen.log" >&2; die "certgen in the image failed"; }

NAME="pqproxy-test-deploy-$$"
CONTAINERS+=("$NAME")
# The image as shipped: its docker/pqproxy.json (8443, admin 9901, upstream
# 127.0.0.1:8501) and its HEALTHCHECK, in a network namespace of its own with
# only a loopback. The demo model and the client (this build's pqproxy) join
# that namespace, as the model server does in compose and in the pod.
# (Without systemd podman cannot schedule the periodic health checks and
# says so on stderr; `podman healthcheck run` below runs the check itself.)
podman run -d --name "$NAME" --network none "${HARDEN[@]}" -v "$TMP/tls:/etc/pqproxy/tls:ro" \
    "$IMAGE" > /dev/null 2> "$TMP/run.log" || die "podman run failed: $(cat "$TMP/run.log")"
NETNS="/proc/$(podman inspect --format '{{.State.Pid}}' "$NAME")/ns/net"
innet() { nsenter --net="$NETNS" "$@"; }
IN=(innet)
innet python3 "$ROOT/scripts/demo_model_server.py" --host 127.0.0.1 --port 8501 \
    > "$TMP/demo.log" 2>&1 &
PIDS+=($!)
if ! wait_for 20 innet "$PQPROXY" healthcheck --quiet --url http://127.0.0.1:8501/healthz; then
    cat "$TMP/demo.log" >&2
    die "the demo model server did not come up"
fi
if ! wait_for 20 podman healthcheck run "$NAME"; then
    podman logs "$NAME" >&2 || true
    die "the container did not become healthy"
fi
out="$(podman healthcheck run "$NAME" 2>&1)" && rc=0 || rc=$?
check "the image's HEALTHCHECK passes (podman healthcheck run: rc $rc ${out})" [ "$rc" = 0 ]

request() {   # OUT ERR [pqproxy request options...], in the network namespace "${IN[@]}"
    local out="$1" err="$2"; shift 2
    "${IN[@]}" "$PQPROXY" request --cacert "$TMP/tls/ca.crt" --timeout 20000 "$@" > "$out" 2> "$err"
}
PREDICT="https://localhost:8443/v1/models/half_plus_two:predict"
request "$TMP/hybrid.out" "$TMP/hybrid.err" -v "$PREDICT" -d '{"instances": [1.0, 2.0, 5.0]}' || true
check "hybrid request answered by the model ($(cat "$TMP/hybrid.out"))" \
    grep -q '"predictions": *\[2.5, *3.0, *4.5\]' "$TMP/hybrid.out"
check "client negotiated X25519MLKEM768" grep -q 'key exchange X25519MLKEM768 (hybrid post-quantum)' "$TMP/hybrid.err"
access_log_has() {   # GROUP STATUS: a JSON access log line on the container's stdout
    podman logs "$NAME" 2>/dev/null | python3 -c '
import json, sys
want = (sys.argv[1], int(sys.argv[2]))
lines = [json.loads(l) for l in sys.stdin if l.startswith("{")]
sys.exit(0 if any((l.get("group"), l.get("status")) == want for l in lines) else 1)' "$1" "$2"
}
check "access log: group X25519MLKEM768, status 200" wait_for 5 access_log_has X25519MLKEM768 200

if request "$TMP/classic.out" "$TMP/classic.err" -v --groups X25519 "$PREDICT" -d '{"instances": [1.0]}'; then
    fail "a classical-only client (X25519) must be refused under pq_policy require"
else
    # the proxy says why, naming what the client lacked
    refusal_logged() { podman logs "$NAME" 2>&1 | grep -i 'handshake' | grep 'refused' | grep -qE 'post-quantum|hybrid'; }
    check "classical-only client refused under pq_policy require" refusal_logged
fi

# SIGTERM with a request in flight: a stream of 20 tokens, 300 ms apart (6 s),
# stopped 1 s into it. The drain lets it finish, then the proxy exits 0.
request "$TMP/stream.out" "$TMP/stream.err" "https://localhost:8443/v1/models/half_plus_two:stream" \
    -d '{"max_tokens": 20, "interval_ms": 300}' &
STREAM=$!
# the model logs the request as it starts answering
wait_for 10 grep -q 'POST /v1/models/half_plus_two:stream' "$TMP/demo.log" || true
sleep 1
t0=$SECONDS
podman stop -t 30 "$NAME" > /dev/null 2>> "$TMP/run.log"
took=$((SECONDS - t0))
rc="$(podman inspect --format '{{.State.ExitCode}}' "$NAME")"
check "podman stop (SIGTERM): exit code 0 (got $rc) after $took s" [ "$rc" = 0 ]
wait "$STREAM" && rc=0 || rc=$?
drained() { [ "$rc" = 0 ] && [ "$took" -ge 3 ] && grep -q 'data: \[DONE\]' "$TMP/stream.out"; }
check "the request in flight completed during the drain (rc $rc, stop waited $took s)" drained

# --- docker compose, demo profile ----------------------------------------------------------
# The demo-model service runs python:3.12-slim by default; no registry is
# reached here, so a Python image is built from debian:12 instead (once).
PYIMAGE=localhost/pqproxy-test-python:3
if ! podman image exists "$PYIMAGE"; then
    printf '%s\n' 'FROM localhost/debian:12' \
        'RUN apt-get update && apt-get install -y --no-install-recommends python3 && rm -rf /var/lib/apt/lists/*' \
        > "$TMP/Containerfile.python"
    podman build --pull=never --format docker -t "$PYIMAGE" -f "$TMP/Containerfile.python" "$TMP" \
        > "$TMP/python.log" 2>&1 || { tail -n 30 "$TMP/python.log" >&2; die "building $PYIMAGE failed"; }
fi

# The demo gRPC model server's image (docker/demo-grpc.Dockerfile: Debian's
# python3-grpcio from the archive), on the debootstrapped debian:12-slim.
GRPCIMAGE="${PQPROXY_TEST_GRPC_IMAGE:-localhost/pqproxy-demo-grpc:local}"
podman build --pull=never --format docker --layers --build-arg RUNTIME_IMAGE=localhost/debian:12-slim \
    -t "$GRPCIMAGE" -f "$ROOT/docker/demo-grpc.Dockerfile" "$ROOT" > "$TMP/grpc-image.log" 2>&1 ||
    { tail -n 30 "$TMP/grpc-image.log" >&2; die "building $GRPCIMAGE failed"; }

SOCK="$TMP/podman.sock"
podman system service --time=0 "unix://$SOCK" > "$TMP/service.log" 2>&1 &
PIDS+=($!)
wait_for 20 test -S "$SOCK" || die "podman system service did not start: $(cat "$TMP/service.log")"

PROJECT="pqproxy-test-deploy-$$"
TLS_PORT="$(free_port)"
ADMIN_PORT="$(free_port)"
PROFILE=demo,demo-grpc MODEL_SVC="demo-model demo-grpc-model" SEALED_DIR="$TMP/sealed"
compose() {
    DOCKER_HOST="unix://$SOCK" COMPOSE_PROFILES="$PROFILE" PQPROXY_IMAGE="$IMAGE" PYTHON_IMAGE="$PYIMAGE" \
        DEMO_GRPC_IMAGE="$GRPCIMAGE" \
        PQPROXY_PUBLISH="127.0.0.1:$TLS_PORT" PQPROXY_ADMIN_PORT="$ADMIN_PORT" PQPROXY_TLS_DIR="$TMP/tls" \
        SEALED_DIR="$SEALED_DIR" docker-compose --ansi never -p "$PROJECT" -f "$ROOT/docker/compose.yaml" "$@"
}
IN=()   # from here on the client runs on the host, through the published ports
# docker-compose 1.x removes a project's containers all at once; podman
# refuses to remove pqproxy's while the model's, which shares its network
# namespace, still exists. So the model service goes first, then `down`.
compose_down() {
    # shellcheck disable=SC2086  # MODEL_SVC: one or more service names
    { compose rm --stop --force $MODEL_SVC && compose down --volumes --remove-orphans --timeout 30; } \
        >> "$TMP/compose-down.log" 2>&1 || { cat "$TMP/compose-down.log" >&2; return 1; }
}
# the model starts after pqproxy: until it listens the proxy answers 502
predicts() {
    request "$TMP/compose.out" "$TMP/compose.err" -v \
        "https://localhost:$TLS_PORT/v1/models/half_plus_two:predict" -d '{"instances": [1.0, 2.0, 5.0]}' &&
        grep -q '"predictions": *\[2.5, *3.0, *4.5\]' "$TMP/compose.out"
}
COMPOSED=1
if compose up -d --no-build > "$TMP/compose-up.log" 2>&1; then
    ok "docker-compose up (demo and demo-grpc profiles)"
    if wait_for 60 predicts; then
        ok "compose: hybrid request through the published port reaches the demo model"
        check "compose: client negotiated X25519MLKEM768" \
            grep -q 'key exchange X25519MLKEM768 (hybrid post-quantum)' "$TMP/compose.err"
        access_logged() { compose logs --no-color pqproxy | grep '"group":"X25519MLKEM768"' | grep -q '"status":200'; }
        check "compose: access log says X25519MLKEM768, 200" access_logged
        # gRPC on the same published port: ServerLive (an empty message) over
        # h2 to the demo gRPC server behind upstreams.grpc (h2c on 8500)
        grpc_live() {
            printf '\0\0\0\0\0' > "$TMP/live.bin"
            request "$TMP/grpc.out" "$TMP/grpc.err" -v -i --http2 -H 'content-type: application/grpc' \
                -H 'te: trailers' --data-file "$TMP/live.bin" \
                "https://localhost:$TLS_PORT/inference.GRPCInferenceService/ServerLive" &&
                grep -qa 'grpc-status: 0' "$TMP/grpc.out" &&
                python3 -c 'import sys; sys.exit(b"\0\0\0\0\x02\x08\x01" not in open(sys.argv[1], "rb").read())' \
                    "$TMP/grpc.out"
        }
        if wait_for 60 grpc_live; then
            ok "compose: a gRPC call (h2, ServerLive) through the same port reaches the demo gRPC server"
            grpc_logged() { compose logs --no-color pqproxy | grep '"protocol":"h2"' | grep ServerLive |
                grep -q '"group":"X25519MLKEM768"'; }
            check "compose: access log has the gRPC call over h2 with X25519MLKEM768" grpc_logged
        else
            fail "compose: no gRPC answer through the stack: $(cat "$TMP/grpc.out" "$TMP/grpc.err")"
            compose logs --no-color >&2 || true
        fi
    else
        fail "compose: no answer from the model through the stack: $(cat "$TMP/compose.out" "$TMP/compose.err")"
        compose logs --no-color >&2 || true
    fi
    check "docker-compose down" compose_down
    COMPOSED=0
    left="$(podman ps -a --filter "label=com.docker.compose.project=$PROJECT" --format '{{.Names}}')"
    check "compose: no container left (${left:-none})" [ -z "$left" ]
    no_network() { ! podman network exists "${PROJECT}_default"; }
    check "compose: its network is gone" no_network
else
    fail "docker-compose up: $(tail -n 5 "$TMP/compose-up.log")"
    compose_down || true
fi

# --- docker compose, sealed profile --------------------------------------------------------
# The demo model sealed and signed with this build's pqproxy; its files as
# uid 10001 (the services' user) would have them.
PROFILE=sealed MODEL_SVC=sealed-model
if "$ROOT/scripts/seal-demo-model.sh" --out "$SEALED_DIR" --pqproxy "$PQPROXY" > "$TMP/seal.log" 2>&1; then
    chown -R 10001:10001 "$SEALED_DIR"
    COMPOSED=1
    if compose up -d --no-build > "$TMP/compose-up.log" 2>&1; then
        ok "docker-compose up (sealed profile)"
        om_exit() { podman inspect --format '{{.State.ExitCode}}' "$(compose ps -q open-model)"; }
        check "compose: open-model exited 0 ($(om_exit 2>&1))" [ "$(om_exit 2>/dev/null)" = 0 ]
        check "compose: open-model verified and opened the model" \
            grep -q 'OK opened 1 files of model' <(compose logs --no-color open-model)
        if wait_for 60 predicts; then
            ok "compose: the sealed model, opened, answers through pqproxy"
        else
            fail "compose: no answer from the sealed model: $(cat "$TMP/compose.out" "$TMP/compose.err")"
            compose logs --no-color >&2 || true
        fi
        check "compose: the model server serves the opened weights" \
            grep -q 'y = 0.5 \* x + 2, version 1' <(compose logs --no-color sealed-model)
        check "docker-compose down (sealed)" compose_down
    else
        fail "docker-compose up (sealed): $(tail -n 5 "$TMP/compose-up.log")"
        compose logs --no-color >&2 || true
        compose_down || true
    fi
    # one flipped byte in a sealed file: nothing is opened, the model server never starts
    python3 -c 'import sys; p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[-20] ^= 1; open(p, "wb").write(b)' \
        "$SEALED_DIR/volume/model/1/weights.json.age"
    if compose up -d --no-build > "$TMP/compose-tampered.log" 2>&1; then
        fail "compose: up succeeded with a tampered sealed file"
    else
        # docker-compose 1.x names the container, Compose v2 the service
        stopped_at_open_model() {
            local id; id="$(compose ps -q open-model)"; id="${id:0:12}"
            [ -n "$id" ] && grep -Eq "Container \"$id\" exited with code [1-9]|open-model.*complete successfully" \
                "$TMP/compose-tampered.log"
        }
        check "compose: a tampered sealed file stops the stack at open-model ($(tail -n 1 "$TMP/compose-tampered.log"))" \
            stopped_at_open_model
        check "compose: open-model says which file and why" \
            grep -q 'weights.json.age' <(compose logs --no-color open-model)
        never_started() { [ -z "$(compose ps -q sealed-model 2>/dev/null)" ] ||
            [ "$(podman inspect --format '{{.State.StartedAt}}' "$(compose ps -q sealed-model)")" = "0001-01-01 00:00:00 +0000 UTC" ]; }
        check "compose: the model server never started" never_started
    fi
    check "docker-compose down (tampered)" compose_down
    COMPOSED=0
else
    fail "scripts/seal-demo-model.sh: $(tail -n 5 "$TMP/seal.log")"
fi

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
