#!/usr/bin/env python3
"""pqproxy errors and timeouts: malformed and smuggling requests, limits,
client timeouts (slowloris, stalled bodies, idle keep-alive), upstream
failures (down, closing, resetting, slow, not accepting), max_connections,
and the retry of an idempotent request on a stale pooled connection."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pxtest  # noqa: E402
from pxtest import (IncompleteResponse, TestFailure, check, check_eq, build_request,  # noqa: E402
                    free_port, http_request, main, read_response, send_raw, wait_until)
from pxhelpers import Env, check_error, closed_by_peer, still_open  # noqa: E402


def settle():
    """Time for anything the proxy might still forward to reach upstream.py."""
    time.sleep(0.3)


# --- malformed requests -------------------------------------------------------------

SMUGGLING = [
    ("CL+TE", b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 6\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /echo?smuggled=1 HTTP/1.1\r\nHost: x\r\n\r\n",
     "ambiguous_framing"),
    ("TE+CL", b"POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n"
              b"Content-Length: 3\r\n\r\n0\r\n\r\n", "ambiguous_framing"),
    ("duplicate CL", b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
                     b"Content-Length: 6\r\n\r\nhello!", None),
    ("CL list", b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5, 5\r\n\r\nhello", None),
    ("bad chunk size", b"POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
                       b"zz\r\nhello\r\n0\r\n\r\n", "bad_request"),
    ("chunk size overflow", b"POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
                            b"10000000000000001\r\nhello\r\n0\r\n\r\n", "bad_request"),
    ("TE not chunked last", b"POST /echo HTTP/1.1\r\nHost: localhost\r\n"
                            b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", None),
    # An unknown transfer coding: 501 (RFC 9112 6.1), refused all the same.
    ("TE obfuscated", b"POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: xchunked\r\n\r\n"
                      b"0\r\n\r\n", (501, "not_implemented")),
    ("obs-fold", b"GET /echo HTTP/1.1\r\nHost: localhost\r\nX-Folded: a\r\n b\r\n\r\n", "bad_request"),
    ("bare LF", b"GET /echo HTTP/1.1\nHost: localhost\n\n", "bad_request"),
    ("bare CR", b"GET /echo HTTP/1.1\r\nHost: localhost\r\nX-A: a\rb\r\n\r\n", "bad_request"),
    ("NUL in value", b"GET /echo HTTP/1.1\r\nHost: localhost\r\nX-A: a\x00b\r\n\r\n", "bad_request"),
    ("space before colon", b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length : 5\r\n\r\nhello",
     "bad_request"),
    ("negative CL", b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: -1\r\n\r\n", "bad_request"),
]


def test_malformed_requests_refused(h):
    e = Env(h)
    for name, raw, error in SMUGGLING:
        with e.connect() as s:
            send_raw(s, raw)
            try:
                r = read_response(s, timeout=5)
            except IncompleteResponse as ex:
                raise TestFailure(f"{name}: no response before the close ({ex})")
            status = 400
            if isinstance(error, tuple):
                status, error = error
            body = check_error(r, status, error or r.json().get("error"), name)
            check(body["error"] in ("bad_request", "ambiguous_framing", "not_implemented"),
                  f"{name}: {body}")
            check_eq(r.header("connection"), "close", f"{name}: Connection: close")
            check(closed_by_peer(s), f"{name}: connection closed after the 400")
    settle()
    check_eq(e.records(), [], "nothing reached the upstream")
    lines = e.access(len(SMUGGLING))
    check_eq([x["status"] for x in lines],
             [c[2][0] if isinstance(c[2], tuple) else 400 for c in SMUGGLING], "each refusal logged")
    check(all(x.get("error") in ("bad_request", "ambiguous_framing", "not_implemented")
              for x in lines), lines)
    # A good request after a bad one on another connection still works.
    with e.connect() as s:
        check_eq(http_request(s, "GET", "/echo").status, 200)


def test_bad_request_after_good_one_on_same_connection(h):
    e = Env(h)
    with e.connect() as s:
        send_raw(s, build_request("GET", "/echo?first=1") +
                 b"GET /echo?second=1 HTTP/1.1\r\nHost: localhost\r\nX-Folded: a\r\n b\r\n\r\n")
        r1 = read_response(s)
        check_eq((r1.status, r1.json()["target"]), (200, "/echo?first=1"))
        r2 = read_response(s)
        check_error(r2, 400, "bad_request", "second (folded) request")
        check(closed_by_peer(s), "closed")
    settle()
    check_eq([x["target"] for x in e.records()], ["/echo?first=1"])


def test_head_errors_without_body(h):
    """The proxy's own error answering HEAD is a head alone (RFC 9110 9.3.2):
    a body there would be read as the next response. Refused at the head
    (the connection closes after it), and after the model server failed (the
    connection stays: the next response on it must parse)."""
    e = Env(h)
    with e.connect() as s:
        send_raw(s, b"HEAD /echo HTTP/1.1\r\nHost: localhost\r\nBad Name: x\r\n\r\n")
        data = pxtest.read_until_closed(s, 5)[0]
        head, sep, rest = data.partition(b"\r\n\r\n")
        check(head.startswith(b"HTTP/1.1 400 ") and sep, f"a 400 head: {data[:200]!r}")
        check_eq(rest, b"", "nothing after the head")
    with e.connect() as s:
        send_raw(s, b"HEAD /fault/reset HTTP/1.1\r\nHost: localhost\r\n\r\n"
                    b"GET /echo?after=1 HTTP/1.1\r\nHost: localhost\r\n\r\n")
        r = read_response(s, "HEAD")
        check_eq((r.status, r.body), (502, b""), "HEAD: the 502 head")
        check(int(r.header("content-length")) > 0, "the content-length a GET would get")
        r = read_response(s)
        check_eq((r.status, r.json()["target"]), (200, "/echo?after=1"), "the next response on the connection")


def test_oversized_headers_431(h):
    e = Env(h, {"http": {"max_header_bytes": 8192}})
    with e.connect() as s:
        r = http_request(s, "GET", "/echo", headers=[("X-Big", "a" * 9000)])
        check_error(r, 431, "headers_too_large")
        check(closed_by_peer(s), "closed")
    with e.connect() as s:
        r = http_request(s, "GET", "/echo", headers=[(f"X-H{i}", "v" * 100) for i in range(90)])
        check_error(r, 431, "headers_too_large", "many headers over the byte limit")
    with e.connect() as s:   # just under the limit passes
        r = http_request(s, "GET", "/echo", headers=[("X-Big", "a" * 7000)])
        check_eq(r.status, 200)
    settle()
    check_eq(len(e.records()), 1, "only the request within the limit reached the upstream")


def test_body_too_large_413(h):
    e = Env(h, {"http": {"max_body_bytes": 10000}})
    with e.connect() as s:   # declared
        r = http_request(s, "POST", "/upload-sha", body=b"x" * 10001)
        check_error(r, 413, "body_too_large", "declared Content-Length")
        check(closed_by_peer(s), "closed")
    with e.connect() as s:   # streamed: chunked, the limit is crossed mid-body
        send_raw(s, b"POST /upload-sha HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            for i in range(20):
                send_raw(s, b"%x\r\n%s\r\n" % (1000, b"y" * 1000))
        except OSError:
            pass        # the proxy may close while we still send
        r = read_response(s, timeout=5)
        check_error(r, 413, "body_too_large", "streamed chunked body")
    with e.connect() as s:   # exactly at the limit passes
        r = http_request(s, "POST", "/upload-sha", body=b"z" * 10000)
        check_eq((r.status, r.json()["body_len"]), (200, 10000))
    settle()
    check_eq([x["body_len"] for x in e.records()], [10000],
             "no over-limit body was delivered to the upstream")


# --- client timeouts ------------------------------------------------------------------

def test_request_header_timeout_408(h):
    e = Env(h, {"timeouts": {"request_header_ms": 500}})
    with e.connect() as s:
        t0 = time.monotonic()
        send_raw(s, b"GET /echo HTTP/1.1\r\nHost: loc")
        r = read_response(s, timeout=5)
        took = time.monotonic() - t0
        check_error(r, 408, "request_timeout", "half a head")
        check(0.4 < took < 2.0, f"408 after {took:.2f}s (timeout 0.5s)")
        check(closed_by_peer(s), "closed")
    # Slowloris: trickling bytes does not extend the head deadline.
    with e.connect() as s:
        t0 = time.monotonic()
        head = b"GET /echo HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 40
        r = None
        for b in head:
            try:
                send_raw(s, bytes([b]))
            except OSError:
                break
            time.sleep(0.05)
            if time.monotonic() - t0 > 1.0:
                break
        r = read_response(s, timeout=5)
        took = time.monotonic() - t0
        check_error(r, 408, "request_timeout", "trickled head")
        check(took < 2.0, f"408 after {took:.2f}s although bytes kept coming")
    # The deadline also applies to the next request on a kept-alive connection.
    with e.connect() as s:
        check_eq(http_request(s, "GET", "/echo").status, 200)
        time.sleep(0.7)             # idle between requests is not the head timeout
        send_raw(s, b"GET /echo HTTP/1.1\r\n")
        r = read_response(s, timeout=5)
        check_error(r, 408, "request_timeout", "second head")
    settle()
    check_eq(len(e.records()), 1, "no incomplete request reached the upstream")


def test_body_idle_timeout_408(h):
    e = Env(h, {"timeouts": {"body_idle_ms": 500}})
    with e.connect() as s:
        t0 = time.monotonic()
        send_raw(s, b"POST /upload-sha HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n" +
                 b"x" * 10)
        r = read_response(s, timeout=5)
        took = time.monotonic() - t0
        check_error(r, 408, "request_timeout", "stalled body")
        check(0.4 < took < 2.0, f"408 after {took:.2f}s")
        check(closed_by_peer(s), "closed")
    # A body that keeps moving, slower than the whole timeout, is fine.
    with e.connect() as s:
        send_raw(s, b"POST /upload-sha HTTP/1.1\r\nHost: localhost\r\nContent-Length: 8\r\n\r\n")
        for _ in range(8):
            time.sleep(0.2)
            send_raw(s, b"b")
        r = read_response(s, timeout=5)
        check_eq((r.status, r.json()["body_len"]), (200, 8))
    settle()
    check_eq([x["body_len"] for x in e.records()], [8], "the stalled body never completed upstream")


def test_keepalive_idle_timeout(h):
    e = Env(h, {"timeouts": {"keepalive_idle_ms": 600}})
    with e.connect() as s:
        check_eq(http_request(s, "GET", "/echo").status, 200)
        t0 = time.monotonic()
        check(closed_by_peer(s, timeout=5), "idle connection closed")
        took = time.monotonic() - t0
        check(0.5 < took < 2.5, f"closed after {took:.2f}s (keepalive_idle 0.6s)")
    # A request taking longer than the idle timeout is not cut by it.
    with e.connect() as s:
        r = http_request(s, "GET", "/delay/1200", timeout=5)
        check_eq(r.status, 200, "slow response not hit by the keep-alive timeout")


def test_timeouts_after_busy_keepalive(h):
    """Timers are lazy (a deadline moved later leaves the running timer
    alone; it re-arms when it fires early): a deadline pushed back by many
    requests must neither fire early nor be lost."""
    e = Env(h, {"timeouts": {"request_header_ms": 400, "keepalive_idle_ms": 1500}})
    with e.connect() as s:
        # 2 s of requests: past the first header deadline and the first
        # second of idle, each moved later by the next request.
        t_end = time.monotonic() + 2.0
        n = 0
        while time.monotonic() < t_end:
            check_eq(http_request(s, "GET", "/echo").status, 200, f"request {n}")
            n += 1
            time.sleep(0.15)
        t0 = time.monotonic()
        check(closed_by_peer(s, timeout=5), "idle connection closed")
        took = time.monotonic() - t0
        check(1.3 < took < 3.0, f"closed after {took:.2f}s (keepalive_idle 1.5s)")
    with e.connect() as s:
        for _ in range(5):
            check_eq(http_request(s, "GET", "/echo").status, 200)
        time.sleep(0.6)             # the idle deadline is later than the header one
        t0 = time.monotonic()
        send_raw(s, b"GET /echo HTTP/1.1\r\n")
        r = read_response(s, timeout=5)
        took = time.monotonic() - t0
        check_error(r, 408, "request_timeout", "half a head after busy keep-alive")
        check(0.3 < took < 1.5, f"408 after {took:.2f}s (request_header 0.4s)")


def get_504_within(s, path, lo, hi, msg="", timeout=5):
    """GET path on s: the proxy's 504 upstream_timeout, after lo..hi seconds."""
    t0 = time.monotonic()
    r = http_request(s, "GET", path, timeout=timeout)
    took = time.monotonic() - t0
    check_error(r, 504, "upstream_timeout", msg)
    check(lo < took < hi, f"{msg + ': ' if msg else ''}504 after {took:.2f}s")


def test_upstream_timeout_on_reused_link(h):
    """A pooled link's timer runs for the pool's idle time; reused, its
    shorter response deadline must still fire on time."""
    e = Env(h, {"timeouts": {"upstream_response_ms": 500, "keepalive_idle_ms": 30000}})
    with e.connect() as s:
        for _ in range(5):
            check_eq(http_request(s, "GET", "/echo").status, 200)
        get_504_within(s, "/delay/3000", 0.4, 2.0, "reused link")
    conns = {x["conn"] for x in e.records()}
    check_eq(len(conns), 1, "all on one pooled upstream link")


# --- upstream failures ------------------------------------------------------------------

def test_upstream_down_502(h):
    port = free_port()      # nothing listens there
    e = Env(h, upstream=False)
    e.px = h.start_proxy({"upstream": {"address": f"127.0.0.1:{port}"}},
                         upstream=pxtest.Upstream(None, port, None, None))
    with e.connect() as s:
        r = http_request(s, "GET", "/echo")
        body = check_error(r, 502, "upstream_unavailable")
        check("refused" in body["detail"].lower(), body)
    lines = e.access(1)
    check_eq((lines[0]["status"], lines[0]["error"]), (502, "upstream_unavailable"))


def test_upstream_closes_before_response_502(h):
    e = Env(h)
    with e.connect() as s:
        r = http_request(s, "POST", "/close-before-response", body=b"abc")
        check_error(r, 502, "upstream_unavailable", "POST on a new upstream connection")
    with e.connect() as s:
        r = http_request(s, "GET", "/close-before-response")
        check_error(r, 502, "upstream_unavailable", "GET on a new upstream connection")
    check_eq(len(e.records()), 2, "a new connection that fails is not retried")


def test_upstream_reset_mid_response(h):
    # A large response, and a small one (held to leave in one record): the
    # client sees what came, cut short.
    e = Env(h)
    for n in (200000, 10):
        with e.connect() as s:
            send_raw(s, build_request("GET", f"/reset-after/{n}"))
            ex = None
            try:
                read_response(s, timeout=10)
            except IncompleteResponse as x:
                ex = x
            check(ex is not None, "the truncated response is not presented as complete")
            check_eq(ex.partial.status, 200, f"{n} bytes, then a reset")
            check(ex.partial.body_len <= n, f"got {ex.partial.body_len} bytes")
    for line in e.access(2):
        check_eq((line["status"], line.get("error")), (200, "upstream_reset"))


def test_upstream_response_timeout_504(h):
    e = Env(h, {"timeouts": {"upstream_response_ms": 500}})
    with e.connect() as s:
        get_504_within(s, "/delay/3000", 0.4, 2.0)
    with e.connect() as s:   # a fast response is unaffected
        check_eq(http_request(s, "GET", "/delay/100").status, 200)
    lines = e.access(2)
    check_eq([(x["status"], x.get("error")) for x in lines],
             [(504, "upstream_timeout"), (200, None)])


def test_upstream_idle_timeout_mid_stream(h):
    e = Env(h, {"timeouts": {"upstream_idle_ms": 500}})
    with e.connect() as s:
        send_raw(s, build_request("GET", "/sse?n=3&interval_ms=2000"))
        ex = None
        t0 = time.monotonic()
        try:
            read_response(s, timeout=10)
        except IncompleteResponse as x:
            ex = x
        check(ex is not None, "stalled stream cut, not completed")
        check(time.monotonic() - t0 < 2.0, "cut after the idle timeout, not the next event")
        check_eq(ex.partial.status, 200)
    lines = e.access(1)
    check_eq((lines[0]["status"], lines[0].get("error")), (200, "upstream_timeout"))


def test_upstream_connect_timeout_504(h):
    # A listener whose accept queue is full and that never accepts: SYNs
    # are dropped, so connect() hangs (loopback only).
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(0)
    port = ls.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", port))
            fillers.append(c)
        time.sleep(0.2)
        probe = socket.socket()
        probe.settimeout(0.5)
        try:
            probe.connect(("127.0.0.1", port))
            pxtest.skip("this kernel completes connects to a full accept queue")
        except (socket.timeout, OSError):
            pass
        finally:
            probe.close()
        e = Env(h, upstream=False)
        e.px = h.start_proxy({"upstream": {"address": f"127.0.0.1:{port}"},
                              "timeouts": {"upstream_connect_ms": 500}},
                             upstream=pxtest.Upstream(None, port, None, None))
        with e.connect() as s:
            get_504_within(s, "/echo", 0.4, 2.0)
    finally:
        for c in fillers:
            c.close()
        ls.close()


def test_retry_idempotent_on_stale_pooled_connection(h):
    e = Env(h)
    with e.connect() as s:
        r = http_request(s, "GET", "/echo?drop_next=1")
        check_eq((r.status, r.json()["conn"]), (200, 1))
        # The pooled link is closed by the upstream once this request is on it.
        r = http_request(s, "GET", "/echo?retry=1")
        check_eq(r.status, 200, "GET retried transparently")
        check_eq(r.json()["conn"], 2, "on a fresh upstream connection")
        r = http_request(s, "GET", "/echo?drop_next=1")
        check_eq(r.json()["conn"], 2)
        r = http_request(s, "POST", "/echo?retry=0", body=b"not idempotent")
        check_error(r, 502, "upstream_unavailable", "POST is not retried")
    recs = e.records()
    check_eq([(x["conn"], x["method"], x["target"], x.get("dropped", False)) for x in recs],
             [(1, "GET", "/echo?drop_next=1", False), (1, "GET", "/echo?retry=1", True),
              (2, "GET", "/echo?retry=1", False), (2, "GET", "/echo?drop_next=1", False),
              (2, "POST", "/echo?retry=0", True)])
    lines = e.access(4)
    check_eq([(x["path"], x["status"]) for x in lines],
             [("/echo?drop_next=1", 200), ("/echo?retry=1", 200), ("/echo?drop_next=1", 200),
              ("/echo?retry=0", 502)])


def test_retried_request_still_times_out(h):
    """A request retried on a fresh connection (its pooled one closed under
    it) keeps its response timeout: a model server that then says nothing
    gets the 504 after upstream_response_ms, not a request (and an upstream
    connection) held for ever."""
    e = Env(h, {"workers": 1, "timeouts": {"upstream_response_ms": 1000}})
    with e.connect() as s:
        check_eq(http_request(s, "GET", "/echo?drop_next=1").status, 200)
        get_504_within(s, "/fault/stall", 0.9, 4, "the retried request (upstream_response_ms 1 s)",
                       timeout=8)
        check_eq(http_request(s, "GET", "/echo?after=1").status, 200, "the connection serves on")
    recs = e.records()
    check_eq([(x["target"], x.get("dropped", False)) for x in recs][:3],
             [("/echo?drop_next=1", False), ("/fault/stall", True), ("/fault/stall", False)],
             "dropped on the pooled connection, then sent on a fresh one")


def test_upstream_closes_idle_pooled_connection(h):
    e = Env(h)
    with e.connect() as s:
        r = http_request(s, "GET", "/echo?close=1")
        check_eq((r.status, r.json()["conn"]), (200, 1))
        time.sleep(0.2)     # the proxy sees the pooled link close while idle
        r = http_request(s, "POST", "/echo", body=b"after close")
        check_eq((r.status, r.json()["conn"]), (200, 2), "fresh connection, no error")


def test_max_connections(h):
    e = Env(h, {"max_connections": 2})
    a = e.connect()
    b = e.connect()
    try:
        check_eq(http_request(a, "GET", "/echo").status, 200)
        check_eq(http_request(b, "GET", "/echo").status, 200)
        refused = False
        try:
            c = e.connect(timeout=5)
            try:
                r = http_request(c, "GET", "/echo", timeout=5)
                refused = False if r.status == 200 else r.status == 503
            except (IncompleteResponse, OSError):
                refused = True
            finally:
                c.close()
        except OSError:     # ssl.SSLError, reset, EOF during the handshake
            refused = True
        check(refused, "a third connection is refused at max_connections=2")
        check_eq(http_request(a, "GET", "/echo").status, 200, "old connection a still works")
        check_eq(http_request(b, "GET", "/echo").status, 200, "old connection b still works")
    finally:
        a.close()
        b.close()
    # Once they are gone, new connections are accepted again.
    def accepted():
        try:
            with e.connect(timeout=2) as c:
                return http_request(c, "GET", "/echo", timeout=2).status == 200
        except (OSError, IncompleteResponse):
            return False
    wait_until(accepted, timeout=5, msg="a new connection accepted after the others closed")


if __name__ == "__main__":
    main([test_malformed_requests_refused, test_bad_request_after_good_one_on_same_connection,
          test_head_errors_without_body, test_oversized_headers_431, test_body_too_large_413, test_request_header_timeout_408,
          test_body_idle_timeout_408, test_keepalive_idle_timeout, test_timeouts_after_busy_keepalive,
          test_upstream_timeout_on_reused_link, test_upstream_down_502,
          test_upstream_closes_before_response_502, test_upstream_reset_mid_response,
          test_upstream_response_timeout_504, test_upstream_idle_timeout_mid_stream,
          test_upstream_connect_timeout_504, test_retry_idempotent_on_stale_pooled_connection,
          test_retried_request_still_times_out,
          test_upstream_closes_idle_pooled_connection, test_max_connections])
