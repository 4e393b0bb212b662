"""Operations: admin endpoints, metrics after real traffic, readiness, graceful
drain on SIGTERM, reload on SIGHUP (certificate swap, broken config refused)."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import pxtest
from pxtest import (Harness, check, check_eq, check_in, http_request, main, pqproxy_bin,
                    tls_connect, wait_until)
from pxhelpers import admin_get, grpc_python, metrics  # noqa: E402


def pq_request(h, proxy, groups=None, path="/echo", extra=()):
    cmd = [pqproxy_bin(), "request", "--cacert", os.path.join(h.certgen(), "ca.crt"), "-v",
           f"https://localhost:{proxy.port}{path}"]
    if groups:
        cmd += ["--groups", groups]
    cmd += list(extra)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30)


def hs(m, group, result="ok", cipher=None):
    total = 0
    for k, v in m.items():
        if not k.startswith("pqproxy_tls_handshakes_total{"):
            continue
        if f'group="{group}"' in k and f'result="{result}"' in k and (cipher is None or cipher in k):
            total += v
    return total


def test_health_and_metrics_after_traffic(h):
    proxy = h.start_proxy()                 # pq_policy prefer
    check_eq(admin_get(proxy, "/healthz")[0], 200)
    wait_until(lambda: admin_get(proxy, "/readyz")[0] == 200, msg="ready")
    # a hybrid handshake (wolfSSL client) and a classical one (Python's OpenSSL 3.0)
    r = pq_request(h, proxy)
    check_eq(r.returncode, 0, r.stderr)
    check_in("X25519MLKEM768", r.stderr)
    s = tls_connect(proxy.port, os.path.join(h.certgen(), "ca.crt"))
    resp = http_request(s, "GET", "/echo")
    check_eq(resp.status, 200)
    s.close()
    # a refused one: only classical groups under require is tested below; here a bad request
    s = tls_connect(proxy.port, os.path.join(h.certgen(), "ca.crt"))
    s.sendall(b"GET /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
    s.recv(4096)
    s.close()
    m = metrics(proxy)
    check_eq(hs(m, "X25519MLKEM768"), 1, "one hybrid handshake")
    check_eq(hs(m, "X25519"), 2, "two classical handshakes")
    check_in('pqproxy_tls_handshakes_total{group="X25519",hybrid="false",cipher="TLS_AES_256_GCM_SHA384",result="ok"}', m)
    check_eq(m['pqproxy_http_requests_total{route="none",method="GET",code="2xx"}'], 2)
    # refused before its head was complete: the method is not known yet
    check_eq(m['pqproxy_http_requests_total{route="none",method="other",code="4xx"}'], 1)
    check_eq(m["pqproxy_http_request_duration_seconds_count"], 3)
    check_eq(m["pqproxy_upstream_response_seconds_count"], 2)
    check(m["pqproxy_connections_total"] >= 3)
    check_eq(m["pqproxy_upstream_connects_total"] + m["pqproxy_upstream_reuses_total"], 2)
    check_eq(m['pqproxy_build_info{version="0.1.0",wolfssl="5.9.2"}'] if
             'pqproxy_build_info{version="0.1.0",wolfssl="5.9.2"}' in m else
             [v for k, v in m.items() if k.startswith("pqproxy_build_info")][0], 1)
    check_eq(m["pqproxy_ready"], 1)
    check_eq(m["pqproxy_draining"], 0)
    # bad admin requests get JSON errors
    st, body = admin_get(proxy, "/metrics", method="POST")
    check_eq(st, 405)
    check_eq(json.loads(body)["error"], "method_not_allowed")
    st, body = admin_get(proxy, "/nothing")
    check_eq(st, 404)


def test_pq_refusals_counted(h):
    proxy = h.start_proxy({"tls": {"pq_policy": "require"}})
    r = pq_request(h, proxy, groups="X25519")
    check(r.returncode != 0, "classical-only client refused under require")
    r = pq_request(h, proxy, groups="X25519,X25519MLKEM768")
    check_eq(r.returncode, 0, r.stderr)
    m = metrics(proxy)
    check_eq(hs(m, "none", "pq_policy_refused"), 1)
    check_eq(hs(m, "X25519MLKEM768"), 1)
    check_eq(m['pqproxy_tls_hello_retry_requests_total{reason="to_hybrid"}'], 1)
    wait_until(lambda: "handshake refused" in proxy.proc.stderr_text(), msg="refusal logged")


def test_readiness_follows_upstream(h):
    up = h.start_upstream()
    proxy = h.start_proxy(upstream=up)
    wait_until(lambda: admin_get(proxy, "/readyz")[0] == 200, msg="ready")
    up.proc.stop()
    def not_ready():
        st, body = admin_get(proxy, "/readyz")
        return st == 503 and b"upstream unreachable" in body
    wait_until(not_ready, timeout=8, msg="not ready once the upstream is gone")
    check_eq(admin_get(proxy, "/healthz")[0], 200, "still alive")


def health_call(h, proxy, **opts):
    """One grpc.health.v1.Health call to the admin port (peers/grpc_health_check.py)."""
    args = [grpc_python(), os.path.join(pxtest.HERE, "peers", "grpc_health_check.py"), str(proxy.admin_port)]
    for k, v in opts.items():
        args += [f"--{k}", v]
    r = subprocess.run(args, capture_output=True, text=True, timeout=30)
    check_eq(r.returncode, 0, f"grpc_health_check.py: {r.stderr[-800:]}")
    return json.loads(r.stdout)


def test_grpc_health_checking(h):
    """The admin port answers gRPC health probes (Kubernetes' grpc probe,
    grpc_health_probe) over h2c beside its HTTP/1.1 endpoints: "" and
    "readiness" as /readyz, "liveness" as /healthz; the rest refused with
    the gRPC status the protocol names."""
    up = h.start_upstream()
    proxy = h.start_proxy(upstream=up)
    wait_until(lambda: admin_get(proxy, "/readyz")[0] == 200, msg="ready")
    serving, not_serving = "0801", "0802"       # HealthCheckResponse{status: SERVING | NOT_SERVING}
    for svc in ("", "readiness", "liveness"):
        check_eq(health_call(h, proxy, service=svc), {"code": "OK", "response": serving, "details": None},
                 f"Check {svc!r} while the model server answers")
    check_eq(health_call(h, proxy, service="model")["code"], "NOT_FOUND", "an unknown service")
    check_eq(health_call(h, proxy, method="Watch")["code"], "UNIMPLEMENTED", "Watch")
    check_eq(health_call(h, proxy, raw="ff")["code"], "INVALID_ARGUMENT", "not a HealthCheckRequest")
    check_eq(admin_get(proxy, "/healthz")[0], 200, "HTTP/1.1 on the same port")
    up.proc.stop()
    wait_until(lambda: health_call(h, proxy)["response"] == not_serving, timeout=8,
               msg="NOT_SERVING once the model server is gone")
    check_eq(health_call(h, proxy, service="readiness")["response"], not_serving, "readiness")
    check_eq(health_call(h, proxy, service="liveness")["response"], serving, "still alive")


def test_ready_gauge_follows_upstream_unpolled(h):
    """pqproxy_ready tracks the model server by itself: nothing here asks
    /readyz, only /metrics (as a Prometheus scrape would)."""
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(64)
    port = lsock.getsockname()[1]
    up = h.start_upstream()
    proxy = h.start_proxy({"upstream": {"address": f"127.0.0.1:{port}"}}, upstream=up)

    def ready():
        return metrics(proxy)["pqproxy_ready"]
    wait_until(lambda: ready() == 1, timeout=4, msg="ready without anyone asking /readyz")
    lsock.close()                           # the model server goes away
    wait_until(lambda: ready() == 0, timeout=5, msg="not ready within a probe interval")
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", port))
    lsock.listen(64)                        # and comes back
    wait_until(lambda: ready() == 1, timeout=5, msg="ready again once it is back")
    lsock.close()


def test_idle_connections_release_buffers(h):
    # Keep-alive connections that moved 64 KiB each hold their buffers while
    # busy and give them back after a second idle: the heap gauge shows both.
    proxy = h.start_proxy()
    ca = os.path.join(h.certgen(), "ca.crt")
    n = 100

    def allocated():
        return metrics(proxy)["pqproxy_memory_allocated_bytes"]
    base = allocated()
    check(base > 0, "pqproxy_memory_allocated_bytes reported")
    check(metrics(proxy)["pqproxy_memory_heap_bytes"] >= base, "heap holds what is allocated")
    # A connection counts as busy for a second after its response: on a
    # loaded machine 100 handshakes take longer than that, so "busy" is
    # measured on batches of 10, each right after its requests.
    socks, busy = [], 0
    for _ in range(n // 10):
        before = allocated()
        for _ in range(10):
            s = tls_connect(proxy.port, ca)
            check_eq(http_request(s, "GET", "/bytes/65536").status, 200)
            socks.append(s)
        busy = max(busy, (allocated() - before) * n / 10)
    check(busy >= n * 64 * 1024, f"busy connections hold their buffers: {busy / n:.0f} bytes each")
    idle = wait_until(lambda: (lambda v: v if v <= n * 32 * 1024 else None)(allocated() - base),
                      timeout=5, msg="idle connections to release their buffers")
    check_eq(metrics(proxy)["pqproxy_connections_open"], n)
    for s in socks:
        s.close()
    print(f"per connection: busy {busy / n:.0f} bytes, idle {idle / n:.0f} bytes")


def test_admin_listens_before_data_port(h):
    # Probes and scrapers may start the moment the data port accepts: the
    # admin port must already be listening then (strace shows the order).
    strace = pxtest.require_exe("strace")
    cfg = h.base_proxy_config()
    cfg["workers"] = 2
    path = h.write_config(cfg)
    trace = h.path("listen.strace")
    port = int(cfg["listen"].rsplit(":", 1)[1])
    admin = int(cfg["admin"]["listen"].rsplit(":", 1)[1])
    h.start("pqproxy-strace", [strace, "-f", "-qq", "-yy", "-e", "trace=listen", "-o", trace,
                               pqproxy_bin(), "run", "--config", path], ready="port", port=port)
    h.add_log("strace", trace)
    ports = []
    for line in open(trace):
        m = re.search(r"listen\(\d+<TCP:\[127\.0\.0\.1:(\d+)\]>", line)
        if m:
            ports.append(int(m.group(1)))
    check(admin in ports and port in ports, f"both listen calls traced: {ports}")
    check_eq(ports.index(admin) < ports.index(port), True,
             f"admin port {admin} listens before data port {port}: {ports}")


def test_drain_finishes_in_flight(h):
    proxy = h.start_proxy({"timeouts": {"drain_ms": 10000}})
    wait_until(lambda: admin_get(proxy, "/readyz")[0] == 200, msg="ready")
    ca = os.path.join(h.certgen(), "ca.crt")
    idle = tls_connect(proxy.port, ca)            # an idle keep-alive connection
    check_eq(http_request(idle, "GET", "/echo").status, 200)
    result = {}

    def slow():
        s = tls_connect(proxy.port, ca)
        result["resp"] = http_request(s, "GET", "/delay/1500", timeout=10)
        s.close()
    t = threading.Thread(target=slow)
    t.start()
    wait_until(lambda: any(r["target"] == "/delay/1500" for r in h.upstream.records()),
               timeout=5, msg="slow request reached upstream")
    t0 = time.time()
    proxy.proc.send_signal(signal.SIGTERM)
    wait_until(lambda: admin_get(proxy, "/readyz") == (503, b'{"status":"not_ready","reason":"draining"}\n'),
               timeout=3, msg="not ready while draining")
    # the idle keep-alive connection is closed by the proxy
    idle.settimeout(5)
    check_eq(idle.recv(100), b"", "idle connection closed")
    t.join(10)
    check_eq(result["resp"].status, 200, "in-flight request completed")
    check_eq(result["resp"].header("connection"), "close")
    check_eq(proxy.proc.wait(10), 0, "clean exit")
    check(time.time() - t0 < 5, "exit soon after the last request")
    check_in("drained", proxy.proc.stderr_text())


def test_drain_timeout_bounds_exit(h):
    proxy = h.start_proxy({"timeouts": {"drain_ms": 700, "upstream_response_ms": 60000}})
    ca = os.path.join(h.certgen(), "ca.crt")
    s = tls_connect(proxy.port, ca)
    s.sendall(b"GET /delay/20000 HTTP/1.1\r\nHost: localhost\r\n\r\n")
    time.sleep(0.3)
    t0 = time.time()
    proxy.proc.send_signal(signal.SIGTERM)
    check_eq(proxy.proc.wait(10), 0)
    took = time.time() - t0
    check(0.6 < took < 3, f"exit after drain_ms, took {took:.2f}s")
    s.close()


def test_sighup_swaps_certificate(h):
    certs = h.certgen()
    other = h.path("other-certs")
    subprocess.run([pqproxy_bin(), "certgen", "--out", other], check=True, capture_output=True)
    live = h.path("live")
    os.makedirs(live)
    shutil.copy(os.path.join(certs, "server.crt"), live)
    shutil.copy(os.path.join(certs, "server.key"), live)
    proxy = h.start_proxy({"tls": {"certificates": [{"cert": os.path.join(live, "server.crt"),
                                                     "key": os.path.join(live, "server.key")}]}})
    keep = tls_connect(proxy.port, os.path.join(certs, "ca.crt"))
    check_eq(http_request(keep, "GET", "/echo").status, 200)
    # rotate: new certificate and key from another CA, then SIGHUP
    shutil.copy(os.path.join(other, "server.crt"), live)
    shutil.copy(os.path.join(other, "server.key"), live)
    proxy.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "configuration reloaded" in proxy.proc.stderr_text(), msg="reloaded")
    # new connections see the new certificate ...
    s = tls_connect(proxy.port, os.path.join(other, "ca.crt"))
    check_eq(http_request(s, "GET", "/echo").status, 200)
    s.close()
    try:
        tls_connect(proxy.port, os.path.join(certs, "ca.crt")).close()
        check(False, "the old CA must no longer verify new connections")
    except Exception as e:
        check_in("CERTIFICATE_VERIFY_FAILED", str(e))
    # ... and the open keep-alive connection keeps working
    check_eq(http_request(keep, "GET", "/echo").status, 200)
    keep.close()
    m = metrics(proxy)
    check_eq(m['pqproxy_config_reloads_total{result="ok"}'], 1)


def test_sighup_broken_config_keeps_serving(h):
    proxy = h.start_proxy()
    good = open(proxy.config_path).read()
    ca = os.path.join(h.certgen(), "ca.crt")
    for broken in ['{"listen": ', json.dumps(dict(json.loads(good), tls={"certificates": [
            {"cert": "/nonexistent.crt", "key": "/nonexistent.key"}]}))]:
        with open(proxy.config_path, "w") as f:
            f.write(broken)
        before = proxy.proc.stderr_text().count("reload refused")
        proxy.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: proxy.proc.stderr_text().count("reload refused") > before,
                   msg="reload refused and logged")
        s = tls_connect(proxy.port, ca)
        check_eq(http_request(s, "GET", "/echo").status, 200, "still serving the old config")
        s.close()
    check_in("nonexistent.crt", proxy.proc.stderr_text())
    m = metrics(proxy)
    check_eq(m['pqproxy_config_reloads_total{result="failed"}'], 2)
    check_eq(m['pqproxy_config_reloads_total{result="ok"}'], 0)


def test_sighup_names_settings_needing_restart(h):
    """A changed admin port cannot be rebound by a reload: the log says so by
    name, and the running admin port keeps answering."""
    proxy = h.start_proxy()
    cfg = json.load(open(proxy.config_path))
    old_admin = cfg["admin"]["listen"]
    cfg["admin"]["listen"] = f"127.0.0.1:{pxtest.free_port()}"
    with open(proxy.config_path, "w") as f:
        json.dump(cfg, f)
    proxy.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "configuration reloaded" in proxy.proc.stderr_text(), msg="reloaded")
    err = proxy.proc.stderr_text()
    check_in("admin.listen", err, "the warning names the setting")
    check_in("restart", err)
    check_eq(admin_get(proxy, "/healthz")[0], 200, f"the running admin port {old_admin} still answers")


def test_access_log_and_request_id(h):
    proxy = h.start_proxy()
    r = pq_request(h, proxy, path="/echo")
    check_eq(r.returncode, 0, r.stderr)
    echoed = json.loads(r.stdout)
    rid = [v for k, v in echoed["headers"] if k.lower() == "x-request-id"]
    check_eq(len(rid), 1, "X-Request-Id sent upstream")
    lines = proxy.wait_access_log(1)
    rec = lines[-1]
    for key in ("time", "client", "sni", "tls_version", "group", "cipher", "method", "path",
                "status", "bytes_in", "bytes_out", "duration_ms", "upstream_ms", "request_id"):
        check_in(key, rec)
    check_eq(rec["request_id"], rid[0])
    check_eq(rec["group"], "X25519MLKEM768")
    check_eq(rec["tls_version"], "TLSv1.3")
    check_eq(rec["sni"], "localhost")
    check_eq(rec["status"], 200)
    check_eq(rec["path"], "/echo")
    check(re.match(r"127\.0\.0\.1:\d+$", rec["client"]), rec["client"])


def test_access_log_batched_lines_complete(h):
    """Workers batch access-log lines per loop turn: none is lost at exit,
    none is cut or interleaved with another worker's."""
    proxy = h.start_proxy({"workers": 2})
    ca = os.path.join(h.certgen(), "ca.crt")
    socks = [tls_connect(proxy.port, ca) for _ in range(4)]
    for i in range(50):
        for s in socks:
            check_eq(http_request(s, "GET", f"/echo?i={i}").status, 200)
    for s in socks:
        s.close()
    proxy.proc.send_signal(signal.SIGTERM)
    check_eq(proxy.proc.wait(10), 0)
    with open(proxy.config["log"]["access_log"]) as f:
        lines = f.read().splitlines()
    check_eq(len(lines), 200, "one line per request")
    recs = [json.loads(l) for l in lines]          # each line is one whole JSON object
    check_eq(sorted(r["path"] for r in recs), sorted(f"/echo?i={i}" for i in range(50) for _ in range(4)))


def held_after_listen(h, name, path, port, delay_us):
    """pqproxy under strace, held delay_us after its listen() calls (the port
    already accepts, the signal handlers are not in yet): (tracer, pid).
    LeakSanitizer cannot run under ptrace: off, so that the sanitizer build
    exits with the proxy's own status."""
    strace = pxtest.require_exe("strace")
    opts = os.environ.get("ASAN_OPTIONS", "")
    tracer = h.start(name, [strace, "-f", "-qq", "-o", "/dev/null", "-e", "trace=listen",
                            "-e", f"inject=listen:delay_exit={delay_us}", pqproxy_bin(), "run", "--config", path],
                     env={"ASAN_OPTIONS": (opts + ":" if opts else "") + "detect_leaks=0"},
                     ready="port", port=port)
    with open(f"/proc/{tracer.popen.pid}/task/{tracer.popen.pid}/children") as f:
        return tracer, int(f.read().split()[0])


def test_sighup_during_startup_does_not_kill(h):
    # A config reloader may signal the moment the port accepts, which is
    # before px_server_run installs the handlers. strace holds the process
    # right after its listen() calls while a SIGHUP arrives: its default
    # action would kill it, and ignored, the reload it asks for would be lost.
    cfg = h.base_proxy_config()
    port = int(cfg["listen"].rsplit(":", 1)[1])
    tracer, pid = held_after_listen(h, "pqproxy-strace", h.write_config(cfg), port, 700000)
    os.kill(pid, signal.SIGHUP)
    wait_until(lambda: "listening on" in tracer.stderr_text() or not os.path.exists(f"/proc/{pid}"),
               timeout=15, msg="start-up done or the process gone")
    check(os.path.exists(f"/proc/{pid}"), "the proxy survived a SIGHUP during start-up")
    wait_until(lambda: "configuration reloaded" in tracer.stderr_text(), timeout=15,
               msg="the reload asked for during start-up")
    ca = os.path.join(h.certgen(), "ca.crt")
    with pxtest.tls_connect(port, ca) as s:
        check_eq(http_request(s, "GET", "/echo").status, 200)


def test_sigterm_during_startup_drains(h):
    # The same window for SIGTERM (a pod stopped the moment it is ready):
    # its default action would kill the proxy with a non-zero status and
    # whatever sits in the listener's backlog. It drains and exits 0.
    cfg = h.base_proxy_config()
    path = h.write_config(cfg)
    port = int(cfg["listen"].rsplit(":", 1)[1])
    tracer, pid = held_after_listen(h, "pqproxy-strace", path, port, 700000)
    os.kill(pid, signal.SIGTERM)
    check_eq(tracer.popen.wait(timeout=15), 0, "exit status (strace passes the proxy's on)")
    check("Terminated during start-up: draining" in tracer.stderr_text(), tracer.stderr_text()[-2000:])
    check("drained, exiting" in tracer.stderr_text(), tracer.stderr_text()[-2000:])
    # a second one while start-up still holds: out at once, status 1
    tracer, pid = held_after_listen(h, "pqproxy-strace-2", path, port, 1000000)
    os.kill(pid, signal.SIGINT)
    os.kill(pid, signal.SIGTERM)
    check_eq(tracer.popen.wait(timeout=15), 1, "exit status after a second signal")
    check("listening on" not in tracer.stderr_text(), "it did not wait for the start-up to end")


if __name__ == "__main__":
    main([test_health_and_metrics_after_traffic, test_pq_refusals_counted,
          test_readiness_follows_upstream, test_grpc_health_checking, test_admin_listens_before_data_port,
          test_ready_gauge_follows_upstream_unpolled, test_idle_connections_release_buffers,
          test_drain_finishes_in_flight,
          test_drain_timeout_bounds_exit, test_sighup_swaps_certificate,
          test_sighup_broken_config_keeps_serving, test_sighup_names_settings_needing_restart,
          test_access_log_and_request_id,
          test_access_log_batched_lines_complete, test_sighup_during_startup_does_not_kill,
          test_sigterm_during_startup_drains])
