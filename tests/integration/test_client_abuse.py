#!/usr/bin/env python3
"""Clients that abuse the proxy without breaking the protocol: uploads that
trickle just inside the body idle timeout (the total request deadline ends
them), heads that are never followed by their body (no upstream connection is
held for them), bodies over the default limit, uploads abandoned half way
(logged, 499), and a forged X-Verified-Keyid on routes that do not verify."""
import os
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pxtest import (IncompleteResponse, check, check_eq, http_request, main,  # noqa: E402
                    read_response, send_raw, wait_until)
from pxhelpers import Env, check_error, metrics  # noqa: E402


def upstream_gauge(m, state):
    return m.get(f'pqproxy_upstream_connections{{state="{state}"}}', 0)


def test_trickled_uploads_end_at_the_request_deadline(h):
    """Each client sends one body byte every 0.4 s, well inside body_idle_ms:
    only the total deadline (request_ms) ends them, and with them the
    upstream connections they held."""
    e = Env(h, {"timeouts": {"body_idle_ms": 2000, "request_ms": 2500}})
    n = 12
    socks = [e.connect() for _ in range(n)]
    for s in socks:
        send_raw(s, b"POST /upload-sha HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n")
    t0 = time.monotonic()
    got = {}

    def trickle(i, s):
        try:
            while time.monotonic() - t0 < 8:
                send_raw(s, b"x")
                time.sleep(0.4)
        except OSError:
            pass

    threads = [threading.Thread(target=trickle, args=(i, s), daemon=True) for i, s in enumerate(socks)]
    for t in threads:
        t.start()
    # while they trickle, each holds an upstream connection (the body flows)
    wait_until(lambda: upstream_gauge(metrics(e.px), "busy") == n, timeout=2,
               msg=f"{n} busy upstream connections while the bodies flow")
    for i, s in enumerate(socks):
        try:
            got[i] = read_response(s, timeout=6)
        except IncompleteResponse as ex:
            raise AssertionError(f"client {i}: no 408 ({ex})")
    took = time.monotonic() - t0
    for i, r in got.items():
        body = check_error(r, 408, "request_timeout", f"client {i}")
        check("2500 ms" in body["detail"], f"the detail names the deadline: {body['detail']}")
    check(took < 5.0, f"all answered within the deadline plus slack ({took:.1f}s)")
    for s in socks:
        s.close()
    m = metrics(e.px)
    check_eq(m["pqproxy_request_deadline_exceeded_total"], float(n), "each counted")
    wait_until(lambda: upstream_gauge(metrics(e.px), "busy") == 0, timeout=5,
               msg="no upstream connection held after the deadline")
    check_eq(e.records(), [], "no partial body completed at the model server")


def test_head_without_body_holds_no_upstream_connection(h):
    e = Env(h)
    before = metrics(e.px)["pqproxy_upstream_connects_total"]
    socks = [e.connect() for _ in range(8)]
    for s in socks:
        send_raw(s, b"POST /upload-sha HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\n")
    time.sleep(0.5)
    m = metrics(e.px)
    check_eq(m["pqproxy_upstream_connects_total"], before, "no upstream connection for a bodiless head")
    check_eq(upstream_gauge(m, "busy"), 0.0, "nothing busy upstream")
    # The body arriving connects and forwards as usual.
    send_raw(socks[0], b"hello")
    r = read_response(socks[0], timeout=5)
    check_eq(r.status, 200)
    check_eq(r.json()["body_len"], 5)
    for s in socks:
        s.close()


def test_default_body_limit_is_finite(h):
    e = Env(h)          # no http.max_body_bytes: the 64 MiB default
    with e.connect() as s:
        send_raw(s, b"POST /upload-sha HTTP/1.1\r\nHost: localhost\r\n"
                    b"Content-Length: %d\r\n\r\n" % ((64 << 20) + 1))
        check_error(read_response(s, timeout=5), 413, "body_too_large", "default limit")
    with e.connect() as s:
        r = http_request(s, "POST", "/upload-sha", body=b"y" * 100000)
        check_eq(r.status, 200, "a body under the limit passes")
    check_eq(len(e.records()), 1, "only the body under the limit reached the model server")


def abandon(s, how):
    if how == "reset":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    else:
        s.shutdown(socket.SHUT_WR)
        time.sleep(0.2)
        s.close()


def test_abandoned_uploads_are_logged(h):
    e = Env(h)
    for i, how in enumerate(("close", "reset")):
        s = e.connect()
        send_raw(s, b"POST /upload-sha HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\n")
        send_raw(s, b"z" * 30000)
        time.sleep(0.3)
        abandon(s, how)
        line = e.access(i + 1)[i]
        check_eq(line["status"], 499, f"{how}: status")
        check_eq(line.get("error"), "client_closed", f"{how}: error")
        check_eq(line["path"], "/upload-sha", f"{how}: path")
        check_eq(line["bytes_in"], 30000, f"{how}: body bytes received")
    m = metrics(e.px)
    check_eq(sum(v for k, v in m.items()
                 if k.startswith("pqproxy_http_requests_total{") and 'code="4xx"' in k), 2.0,
             "counted as 4xx requests")
    # still serving
    with e.connect() as s:
        check_eq(http_request(s, "GET", "/echo").status, 200)


def test_client_cannot_forge_verified_keyid(h):
    """The model server trusts X-Verified-Keyid: a client's own never reaches
    it, on a route that does not verify and on a path no route matches."""
    e = Env(h, {"routes": [{"prefix": "/open", "verify": "off"}]})
    for path in ("/open/echo", "/echo"):
        with e.connect() as s:
            r = http_request(s, "GET", path, headers=[("X-Verified-Keyid", "admin"),
                                                     ("x-verified-keyid", "root")])
            check(r.status in (200, 404), f"{path}: {r.status}")
    recs = e.records()
    check_eq(len(recs), 2, "both forwarded")
    for rec in recs:
        names = [k.lower() for k, _ in rec["headers"]]
        check("x-verified-keyid" not in names, f"{rec['target']}: forged keyid dropped: {names}")


if __name__ == "__main__":
    main([test_trickled_uploads_end_at_the_request_deadline,
          test_head_without_body_holds_no_upstream_connection, test_default_body_limit_is_finite,
          test_abandoned_uploads_are_logged, test_client_cannot_forge_verified_keyid])
