#!/usr/bin/env python3
"""scripts/run-demo.sh (make run). Mostly with a stand-in pqproxy binary:
certgen only when certificates are missing, the demo model server up before
the proxy starts, the user's next commands printed, everything stopped on
SIGTERM/SIGINT and when the proxy exits, and a clear failure when the demo
port is busy. test_real_binary_readme_request then runs it as `make run`
does, with the real binary and config/pqproxy.json (on free ports), and
makes the README's `pqproxy request` call."""
import json
import os
import subprocess
import signal
import socket
import stat
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pxtest  # noqa: E402
from pxtest import check, check_eq, check_in, http_request, wait_until  # noqa: E402
from pxhelpers import grpc_python  # noqa: E402

RUN_DEMO = os.path.join(pxtest.SOURCE_DIR, "scripts", "run-demo.sh")

# The stand-in logs its argv; `run` proves the demo server answers a
# prediction before "serving", then waits (or exits with FAKE_RUN_EXIT).
FAKE_BIN = r"""#!/bin/sh
echo "$@" >> "$FAKE_LOG"
case "$1" in
certgen) mkdir -p "$3" && touch "$3/server.crt" "$3/ca.crt" ;;
run)
  echo "fake-proxy env upstream=$PQPROXY_UPSTREAM grpc=$PQPROXY_UPSTREAM_GRPC cert=$PQPROXY_TLS_CERT key=$PQPROXY_TLS_KEY"
  python3 - <<'EOF' || exit 9
import json, os, urllib.request
req = urllib.request.Request("http://127.0.0.1:%s/v1/models/half_plus_two:predict"
                             % os.environ["PX_DEMO_PORT"], data=b'{"instances":[1.0,2.0,5.0]}')
print("fake-proxy got", json.load(urllib.request.urlopen(req, timeout=5)), flush=True)
EOF
  [ -n "$FAKE_RUN_EXIT" ] && exit "$FAKE_RUN_EXIT"
  exec sleep 300 ;;
esac
"""


def setup(h, **env):
    fake = h.path("fake-pqproxy")
    with open(fake, "w") as f:
        f.write(FAKE_BIN)
    os.chmod(fake, os.stat(fake).st_mode | stat.S_IXUSR)
    config = h.path("pqproxy.json")
    with open(config, "w") as f:
        f.write("{}\n")
    port = pxtest.free_port()
    h.grpc_port = pxtest.free_port()
    full = {"PX_DEMO_PORT": str(port), "PX_DEMO_GRPC_PORT": str(h.grpc_port), "PX_DEMO_CERTS": h.path("certs"),
            "FAKE_LOG": h.path("fake.log"), "FAKE_RUN_EXIT": ""}
    full.update(env)
    return fake, config, port, full


def fake_calls(h):
    return pxtest._read_text(h.path("fake.log")).splitlines()


def port_closed(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except OSError:
        return True


def start_demo(h, **env):
    fake, config, port, full = setup(h, **env)
    # cwd "/" proves the script finds its repo files from anywhere.
    p = h.start("run-demo", ["bash", RUN_DEMO, fake, config], env=full, cwd="/")
    return p, fake, config, port


def test_starts_both_and_sigterm_stops_both(h):
    p, fake, config, port = start_demo(h)
    p.wait_line(r"fake-proxy got \{'predictions': \[2.5, 3.0, 4.5\]\}", timeout=15)
    check_eq(fake_calls(h), [f"certgen --out {h.path('certs')}", f"run --config {config}"])
    out = p.stdout_text()
    check("build/pqproxy request --cacert config/certs/ca.crt -v https://localhost:8443/v1/models/"
          "half_plus_two:predict -d '{\"instances\":[1.0,2.0,5.0]}'" in out, out)
    check("curl --cacert config/certs/ca.crt https://localhost:8443/v1/models/half_plus_two" in out, out)
    check('"pq_policy": "prefer"' in out and "OpenSSL >= 3.5" in out, out)
    # The proxy is pointed at the overridden demo port and certificates.
    check(f"fake-proxy env upstream=127.0.0.1:{port} grpc=127.0.0.1:{h.grpc_port} cert={h.path('certs', 'server.crt')} "
          f"key={h.path('certs', 'server.key')}" in out, out)
    check_eq(http_request(port, "GET", "/healthz").status, 200)
    check(f"listens on h2c\n127.0.0.1:{h.grpc_port}, behind the same TLS port" in out, out)
    check_eq(grpc_server_live(h.grpc_port), "0801", "the gRPC demo server answers ServerLive: live=true")
    members = pxtest.group_members(p.pid)
    check(len(members) >= 4, f"bash, both demo servers and fake proxy running: {members}")
    # Only the script gets the signal (not its group): its trap must stop the rest.
    os.kill(p.pid, signal.SIGTERM)
    check_eq(p.wait(10), 143)
    wait_until(lambda: not pxtest.group_members(p.pid), 10, msg="demo servers and proxy gone")
    check(port_closed(port) and port_closed(h.grpc_port), "both demo ports closed")


def grpc_server_live(port):
    """ServerLive with raw bytes (an empty request; the response's wire form
    in hex), so no .proto is needed here."""
    code = ("import grpc, sys; ch = grpc.insecure_channel(sys.argv[1]); "
            "print(ch.unary_unary('/inference.GRPCInferenceService/ServerLive')(b'', timeout=10).hex())")
    r = subprocess.run([grpc_python(), "-c", code, f"127.0.0.1:{port}"], capture_output=True, text=True,
                       timeout=30, stdin=subprocess.DEVNULL)
    check_eq(r.returncode, 0, r.stderr)
    return r.stdout.strip()


def test_sigint_and_existing_certs(h):
    os.makedirs(h.path("certs"))
    open(h.path("certs", "server.crt"), "w").close()
    p, fake, config, port = start_demo(h)
    p.wait_line("fake-proxy got", timeout=15)
    check_eq(fake_calls(h), [f"run --config {config}"], "no certgen when server.crt exists")
    os.kill(p.pid, signal.SIGINT)
    check_eq(p.wait(10), 130)
    wait_until(lambda: not pxtest.group_members(p.pid), 10, msg="children gone")


def test_proxy_exit_stops_demo_server(h):
    p, fake, config, port = start_demo(h, FAKE_RUN_EXIT="7")
    check_eq(p.wait(15), 7, "proxy's exit status passed on")
    wait_until(lambda: not pxtest.group_members(p.pid), 10, msg="demo server gone")
    check(port_closed(port), "demo port closed")


def check_busy_port_fails(h, variable):
    """run-demo.sh with the port in `variable` taken: exits 1 naming it, no proxy."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        busy_port = busy.getsockname()[1]
        p, fake, config, port = start_demo(h, **{variable: str(busy_port)})
        check_eq(p.wait(10), 1)
    check(f"port {busy_port} is busy" in p.stderr_text(), p.stderr_text())
    check("run --config" not in "\n".join(fake_calls(h)), "proxy not started")


def test_busy_port_fails_clearly(h):
    check_busy_port_fails(h, "PX_DEMO_PORT")


def test_busy_grpc_port_fails_clearly_and_off(h):
    check_busy_port_fails(h, "PX_DEMO_GRPC_PORT")
    # "off": the REST demo and the proxy only.
    p, fake, config, port = start_demo(h, PX_DEMO_GRPC_PORT="off")
    p.wait_line("fake-proxy got", timeout=15)
    check("gRPC" not in p.stdout_text(), p.stdout_text())
    check(" grpc= cert=" in p.stdout_text(), "no gRPC server: the config's upstreams.grpc is left as it is")
    cmds = [pxtest._read_text(f"/proc/{pid}/cmdline") for pid in pxtest.group_members(p.pid)]
    check(not any("demo_grpc_model_server" in c for c in cmds), f"no gRPC server: {cmds}")
    check(any("demo_model_server" in c for c in cmds), f"the REST one runs: {cmds}")


def test_demo_server_that_dies_fails_clearly(h):
    # A demo model server that exits at once (here: an interpreter that is
    # `false`) is noticed while waiting for its port, and the proxy is never run.
    p, fake, config, port = start_demo(h, PYTHON="false")
    check_eq(p.wait(10), 1)
    check("demo model server failed to start" in p.stderr_text(), p.stderr_text())
    check("run --config" not in "\n".join(fake_calls(h)), "proxy not started")


def test_missing_config_and_usage(h):
    fake, config, port, env = setup(h)
    p = h.start("no-config", ["bash", RUN_DEMO, fake, h.path("nope.json")], env=env)
    check_eq(p.wait(10), 1)
    check("config file not found" in p.stderr_text(), p.stderr_text())
    p = h.start("usage", ["bash", RUN_DEMO], env=env)
    check_eq(p.wait(10), 2)
    check_eq(fake_calls(h), [], "nothing run")


def test_real_binary_readme_request(h):
    """`make run` for real: run-demo.sh with the built pqproxy and the shipped
    config/pqproxy.json (pq_policy require), moved to free ports by the
    documented environment overrides; then the README's request."""
    bin_ = os.path.abspath(pxtest.pqproxy_bin())
    config = os.path.join(pxtest.SOURCE_DIR, "config", "pqproxy.json")
    port, admin_port, demo_port = pxtest.free_port(), pxtest.free_port(), pxtest.free_port()
    grpc_port = pxtest.free_port()
    certs = h.path("certs")
    env = {"PX_DEMO_PORT": str(demo_port), "PX_DEMO_GRPC_PORT": str(grpc_port), "PX_DEMO_CERTS": certs,
           "PQPROXY_LISTEN": f"127.0.0.1:{port}", "PQPROXY_ADMIN_LISTEN": f"127.0.0.1:{admin_port}",
           "PQPROXY_WORKERS": "2"}
    p = h.start("make-run", ["bash", RUN_DEMO, bin_, config], env=env, cwd="/")
    p.wait_port(port, timeout=60)     # certgen first, then the demo server, then the proxy
    check(os.path.exists(os.path.join(certs, "ca.crt")), "certgen wrote the dev PKI")
    r = subprocess.run([bin_, "request", "--cacert", os.path.join(certs, "ca.crt"), "-v",
                        f"https://localhost:{port}/v1/models/half_plus_two:predict",
                        "-d", '{"instances":[1.0,2.0,5.0]}'],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    check_eq(r.returncode, 0, f"pqproxy request: {r.stderr}")
    check_eq(json.loads(r.stdout), {"predictions": [2.5, 3.0, 4.5]}, "the README's prediction")
    check("key exchange X25519MLKEM768 (hybrid post-quantum)" in r.stderr, r.stderr)
    # The access log (stdout in the shipped config) agrees.
    def access():
        for ln in p.stdout_text().splitlines():
            if ln.startswith("{") and '"path":"/v1/models/half_plus_two:predict"' in ln:
                return json.loads(ln)
        return None
    log = wait_until(access, 10, msg="the request in the access log")
    check_eq((log["group"], log["status"], log["method"]), ("X25519MLKEM768", 200, "POST"))
    # The printed gRPC call, through the same TLS port to the demo gRPC server
    # (on this test's port, certificates and binary): ServerLive, live=true
    example = [ln.strip() for ln in p.stdout_text().splitlines() if ln.strip().startswith("printf")]
    check_eq(len(example), 1, p.stdout_text())
    cmd = (example[0].replace("localhost:8443", f"localhost:{port}")
           .replace("config/certs/ca.crt", os.path.join(certs, "ca.crt")).replace("build/pqproxy", bin_))
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    check_eq(r.returncode, 0, f"{cmd}: {r.stderr}")
    out = r.stdout.decode("latin-1").lower()
    check_in("content-type: application/grpc", out)
    check_in("grpc-status: 0", out)
    check(b"\x00\x00\x00\x00\x02\x08\x01" in r.stdout, f"ServerLive live=true, framed: {r.stdout!r}")
    grpc_log = wait_until(lambda: next((json.loads(ln) for ln in p.stdout_text().splitlines()
                                        if ln.startswith("{") and "ServerLive" in ln), None),
                          10, msg="the gRPC call in the access log")
    check_eq((grpc_log["protocol"], grpc_log["status"], grpc_log["group"]), ("h2", 200, "X25519MLKEM768"))
    os.kill(p.pid, signal.SIGTERM)
    check_eq(p.wait(30), 143)
    wait_until(lambda: not pxtest.group_members(p.pid), 10, msg="demo server and proxy gone")
    check(port_closed(port) and port_closed(demo_port) and port_closed(grpc_port),
          "proxy and demo ports closed")


if __name__ == "__main__":
    pxtest.main([test_starts_both_and_sigterm_stops_both, test_sigint_and_existing_certs,
                 test_proxy_exit_stops_demo_server, test_busy_port_fails_clearly,
                 test_busy_grpc_port_fails_clearly_and_off,
                 test_demo_server_that_dies_fails_clearly, test_missing_config_and_usage,
                 test_real_binary_readme_request])
