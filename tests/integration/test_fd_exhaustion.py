"""File descriptors run out (RLIMIT_NOFILE, EMFILE on accept): the admin
port still answers /healthz through its spare descriptors, the condition is
logged (rate-limited, with a count of the reports held back) and counted in
pqproxy_accept_fd_exhausted_total, and once connections close the proxy
serves requests again."""
import http.client
import os
import re
import socket

import pxtest
from pxtest import Harness, Proxy, check, check_eq, check_in, main, tcp_connect, wait_until  # noqa: F401

NOFILE = 64


def start_limited_proxy(h):
    """`pqproxy run` under prlimit: soft and hard limit NOFILE, so the proxy
    cannot raise it (it raises the soft limit to the hard one at start)."""
    pxtest.require_exe("prlimit")
    cfg = h.base_proxy_config()
    # accepted connections stay open while the test holds them
    cfg["timeouts"].update({"handshake_ms": 60000})
    path = h.write_config(cfg)
    h.add_log("config", path)
    port = int(cfg["listen"].rsplit(":", 1)[1])
    p = h.start("pqproxy", ["prlimit", f"--nofile={NOFILE}:{NOFILE}", pxtest.pqproxy_bin(), "run",
                            "--config", path], ready="port", port=port)
    px = Proxy(p, cfg, path)
    h.proxies.append(px)
    return px, port


def admin_get(proxy, path):
    port = int(proxy.config["admin"]["listen"].rsplit(":", 1)[1])
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


def exhausted_count(proxy):
    _, body = admin_get(proxy, "/metrics")
    m = re.search(r"^pqproxy_accept_fd_exhausted_total (\d+)$", body, re.M)
    check(m, "pqproxy_accept_fd_exhausted_total exposed")
    return int(m.group(1))


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_admin_answers_when_fds_run_out(h):
    proxy, port = start_limited_proxy(h)
    check_eq(admin_get(proxy, "/healthz")[0], 200)
    check_eq(exhausted_count(proxy), 0)
    pid = proxy.proc.pid
    held = []
    try:
        # Fill the descriptor table with idle client connections, then some.
        for _ in range(NOFILE + 40):
            held.append(tcp_connect(port))
        wait_until(lambda: fd_count(pid) >= NOFILE - 2, msg="the proxy ran out of descriptors")
        wait_until(lambda: exhausted_count(proxy) > 0, msg="EMFILE counted")
        # probes are answered, again and again (the spares come back)
        for _ in range(5):
            status, body = admin_get(proxy, "/healthz")
            check_eq(status, 200, f"/healthz with no descriptor left: {body}")
        # a new client connection is closed at once (not left queued) and counted
        before = exhausted_count(proxy)
        s = tcp_connect(port)
        s.settimeout(5)
        try:
            got = s.recv(1)
        except (ConnectionResetError, socket.timeout) as e:
            got = e
        check(got == b"" or isinstance(got, ConnectionResetError), f"closed at once, got {got!r}")
        s.close()
        check(exhausted_count(proxy) > before, "the new connection was counted")
        wait_until(lambda: "no descriptor" in proxy.proc.stderr_text() or
                   "Too many open files" in proxy.proc.stderr_text(), msg="logged")
        err = proxy.proc.stderr_text()
        lines = [l for l in err.splitlines() if "closing new connections until descriptors" in l]
        check(lines, f"EMFILE logged: {err[-2000:]}")
        check_in("Too many open files", lines[0])
        # rate-limited: many occurrences, few lines
        check(len(lines) <= 3, f"{len(lines)} lines for {exhausted_count(proxy)} occurrences")
    finally:
        for s in held:
            s.close()
    # descriptors free again: normal requests are served
    wait_until(lambda: fd_count(pid) < NOFILE - 20, msg="connections closed")
    ca = os.path.join(h.certgen(), "ca.crt")
    tls = pxtest.tls_connect(port, ca)
    try:
        r = pxtest.http_request(tls, "GET", "/echo")
        check_eq(r.status, 200)
    finally:
        tls.close()
    check_eq(admin_get(proxy, "/healthz")[0], 200)


if __name__ == "__main__":
    main([test_admin_answers_when_fds_run_out])
