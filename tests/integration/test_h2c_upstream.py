#!/usr/bin/env python3
"""An h2c model server that breaks the protocol (src/proxy/h2c_pool.c):
what fuzz/h2c_upstream.c found, end to end."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pxtest  # noqa: E402
from pxtest import check, check_eq, wait_until  # noqa: E402
from pxfaults import metric  # noqa: E402
from pxhelpers import FakeTcpServer  # noqa: E402
from test_grpc_proxy import H2C_GOAWAY, grpc_proxy, h2_python  # noqa: E402
from test_h2_smuggling import RawH2, h2, req  # noqa: E402 (runs under Debian's python3 if need be)
if h2 is not None:
    import h2.settings  # noqa: E402

BAD = os.path.join(pxtest.HERE, "peers", "h2c_bad_server.py")
ZERO = os.path.join(pxtest.HERE, "peers", "h2c_zero_streams_server.py")
LENGTH_TRAILERS = os.path.join(pxtest.HERE, "peers", "h2c_length_trailers_server.py")
FAULTS = os.path.join(pxtest.HERE, "peers", "h2c_fault_server.py")


def get(proxy, h, path="/m"):
    s = pxtest.tls_connect(proxy.port, os.path.join(h.certgen(), "ca.crt"), alpn=["http/1.1"])
    t0 = time.monotonic()
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    r = pxtest.read_response(s)
    s.close()
    return r, time.monotonic() - t0


def test_protocol_error_ends_the_connection(h):
    # The model server's stray SETTINGS ACK is a connection error: nghttp2
    # answers GOAWAY and the session is over, though the server keeps the
    # socket open. The stream fails at once (502, not the 20 s response
    # timeout's 504) and the next request goes on a new connection.
    p = h.start("h2c-bad", [h2_python(), BAD], ready="line", line=r"^READY (\d+)$")
    proxy = grpc_proxy(h, int(p.ready_match.group(1)), tls={"pq_policy": "prefer"},
                       timeouts={"upstream_response_ms": 20000, "upstream_idle_ms": 20000})
    r, took = get(proxy, h)
    check_eq(r.status, 502, f"the broken connection's stream fails: {r.raw[:300]}")
    check(took < 5, f"at once, not by the response timeout: {took:.1f} s")
    r, took = get(proxy, h)
    check_eq((r.status, r.body), (200, b"served"), f"a new connection serves: {r.raw[:300]}")
    with open(p.out_path) as f:
        reqs = [ln.split()[1] for ln in f if ln.startswith("REQ ")]
    check(len(reqs) == 2 and reqs[0] != reqs[1], f"two requests on two connections: {reqs}")


def test_content_length_and_trailers(h):
    # HTTP/2 lets a response have both; its trailers (a gRPC status) must
    # reach every client that takes trailers: chunked to HTTP/1.1, in a
    # trailing HEADERS frame to HTTP/2.
    from test_h2_smuggling import RawH2, req
    import h2.events
    p = h.start("h2c-lt", [h2_python(), LENGTH_TRAILERS], ready="line", line=r"^READY (\d+)$")
    proxy = grpc_proxy(h, int(p.ready_match.group(1)), tls={"pq_policy": "prefer"})
    s = pxtest.tls_connect(proxy.port, os.path.join(h.certgen(), "ca.crt"), alpn=["http/1.1"])
    s.sendall(b"GET /m HTTP/1.1\r\nHost: localhost\r\nTE: trailers\r\n\r\n")
    r = pxtest.read_response(s)
    s.close()
    check_eq((r.status, r.body), (200, b"served"), f"HTTP/1.1: {r.raw[:300]}")
    check(b"\r\ngrpc-status: 0\r\n" in r.raw and b"\r\nx-end: yes\r\n" in r.raw,
          f"HTTP/1.1: the trailers came, chunked: {r.raw[:400]}")

    class Trailing(RawH2):
        def event(self, ev):
            super().event(ev)
            if isinstance(ev, h2.events.TrailersReceived):
                self.streams[ev.stream_id]["trailers"] = dict(ev.headers)

    c = Trailing(h, proxy.port)
    try:
        st = c.wait(c.request(req(b"/m", extra=[(b"te", b"trailers")])))
    finally:
        c.close()
    check_eq((st["status"], st["body"], st["reset"]), (200, b"served", None), f"HTTP/2: {st}")
    check_eq(st.get("trailers"), {b"grpc-status": b"0", b"x-end": b"yes"}, f"HTTP/2: the trailers: {st}")


def test_response_head_bounded_by_max_header_bytes(h):
    # http.max_header_bytes bounds an h2c model server's response head as it
    # does an HTTP/1.1 one's (and SETTINGS_MAX_HEADER_LIST_SIZE says so):
    # past it a 502 that names the setting; raised, the head goes through.
    p = h.start("h2c-faults", [h2_python(), FAULTS], ready="line", line=r"^READY (\d+)$")
    port = int(p.ready_match.group(1))
    ca = os.path.join(h.certgen(), "ca.crt")

    def get(proxy, n):
        s = pxtest.tls_connect(proxy.port, ca, alpn=["http/1.1"])
        s.sendall(f"GET /head/{n} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        r = pxtest.read_response(s)
        s.close()
        got = sum(len(r.header(f"x-big-{i}") or "") for i in range(n // 10000 + 1))
        return r, got

    small = grpc_proxy(h, port, tls={"pq_policy": "prefer"})
    r, got = get(small, 30000)
    check_eq((r.status, r.body, got), (200, b"served", 30000), r.raw[:200])
    r, _ = get(small, 100000)
    check_eq(r.status, 502, r.raw[:300])
    check("http.max_header_bytes (65536)" in r.json()["detail"], f"the detail names the limit: {r.body}")
    r, _ = get(small, 10)
    check_eq((r.status, r.body), (200, b"served"), "the connection serves on")
    big = grpc_proxy(h, port, tls={"pq_policy": "prefer"}, http={"max_header_bytes": 262144})
    r, got = get(big, 100000)
    check_eq((r.status, got), (200, 100000), r.raw[:200])


def test_response_head_bounded_in_fields(h):
    # Past 256 fields a response head is refused whatever its bytes (300
    # small fields are about 12 KB, far under max_header_bytes): a 502 that
    # names the field cap. The client's connection serves on (a request read
    # whole that the model server failed), and so does the model server's.
    p = h.start("h2c-faults", [h2_python(), FAULTS], ready="line", line=r"^READY (\d+)$")
    ca = os.path.join(h.certgen(), "ca.crt")
    proxy = grpc_proxy(h, int(p.ready_match.group(1)), tls={"pq_policy": "prefer"})
    s = pxtest.tls_connect(proxy.port, ca, alpn=["http/1.1"])

    def get(n):
        s.sendall(f"GET /fields/{n} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        return pxtest.read_response(s)

    r = get(250)
    check_eq((r.status, r.body, r.header("x-f-249")), (200, b"served", "v"), r.raw[:200])
    r = get(300)
    check_eq(r.status, 502, r.raw[:300])
    check("256 fields" in r.json()["detail"], f"the detail names the field cap: {r.body}")
    check(r.header("x-f-0") is None, "no field of the refused head reaches the client")
    check(r.header("connection") is None, f"no close announced: {r.raw[:300]!r}")
    r = get(10)
    check_eq((r.status, r.body), (200, b"served"), "the next request on the same connection")
    # HTTP/2 has no reason phrase; the HTTP/1.1 client reads the usual one
    check(r.raw.startswith(b"HTTP/1.1 200 OK\r\n"), repr(r.raw[:40]))
    s.close()
    with open(p.out_path) as f:
        conns = {ln.split()[1] for ln in f if ln.startswith("REQ ")}
    check_eq(len(conns), 1, "one connection to the model server throughout")


def test_server_admitting_no_stream_gets_bounded_connections(h):
    # SETTINGS_MAX_CONCURRENT_STREAMS 0: the model server admits no stream.
    # Opening a connection per request would let it (or a misconfiguration)
    # make a worker open thousands; the pool stops at its cap and the
    # requests wait there until their response timeout.
    from test_h2_smuggling import RawH2, req
    p = h.start("h2c-zero", [h2_python(), ZERO], ready="line", line=r"^READY (\d+)$")
    proxy = grpc_proxy(h, int(p.ready_match.group(1)), tls={"pq_policy": "prefer"},
                       timeouts={"upstream_response_ms": 6000})
    c = RawH2(h, proxy.port)
    sids = []
    for i in range(90):                        # spaced: each new connection has its SETTINGS
        sids.append(c.request(req(f"/m?i={i}".encode())))
        time.sleep(0.03)
    time.sleep(0.5)
    with open(p.out_path) as f:
        conns = sum(1 for ln in f if ln.startswith("H2 "))
    statuses = [c.wait(sid, timeout=30)["status"] for sid in sids]
    c.close()
    check_eq(set(statuses), {504}, "each waits for its response timeout")
    check(conns <= 64, f"HTTP/2 connections to the model server bounded: {conns}")


def test_goaway_retries_bounded(h):
    # A model server that answers every stream with GOAWAY(last stream 0):
    # each stream is unprocessed, so it may be retried, but not for ever (a
    # hot loop of new connections): the request fails with 502 after a few.
    p = h.start("h2c-goaway", [h2_python(), ZERO, "--goaway"], ready="line", line=r"^READY (\d+)$")
    proxy = grpc_proxy(h, int(p.ready_match.group(1)), tls={"pq_policy": "prefer"},
                       timeouts={"upstream_response_ms": 20000})
    r, took = get(proxy, h)
    check_eq(r.status, 502, f"the request fails: {r.raw[:200]}")
    check(took < 5, f"at once: {took:.1f} s")
    time.sleep(0.5)
    with open(p.out_path) as f:
        conns = sum(1 for ln in f if ln.startswith("H2 "))
    check(conns <= 3, f"a few connections, not a loop: {conns}")


def test_request_head_nghttp2_cannot_send(h):
    # A head the client may send (http.max_header_bytes) but beyond
    # nghttp2's 64 KiB HEADERS send limit: nghttp2 does not send it and
    # closes the stream as REFUSED_STREAM. Another connection would refuse
    # it the same way, so it is not retried: 502 at once, saying why, and
    # the model server never sees it; the next request is served.
    p = h.start("h2c-ok", [h2_python(), H2C_GOAWAY, "--last", "-1"], ready="line",
                line=r"^READY (\d+)$")
    proxy = grpc_proxy(h, int(p.ready_match.group(1)), tls={"pq_policy": "prefer"},
                       http={"max_header_bytes": 262144},
                       timeouts={"upstream_response_ms": 20000})
    ca = os.path.join(h.certgen(), "ca.crt")
    s = pxtest.tls_connect(proxy.port, ca, alpn=["http/1.1"])
    t0 = time.monotonic()
    s.sendall(b"GET /big HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * 100000 + b"\r\n\r\n")
    r = pxtest.read_response(s)
    took = time.monotonic() - t0
    s.close()
    check_eq(r.status, 502, r.raw[:300])
    check("too large" in r.json().get("detail", ""), f"the answer says why: {r.raw[:300]}")
    check(took < 5, f"at once: {took:.1f} s")
    pxtest.wait_until(lambda: "request not sent" in proxy.proc.stderr_text(), msg="nghttp2's reason logged")
    r, _ = get(proxy, h)
    check_eq((r.status, r.body), (200, b"served 1"), f"the next request is served: {r.raw[:300]}")
    with open(p.out_path) as f:
        reqs = [ln.split()[3] for ln in f if ln.startswith("REQ ")]
    check_eq(reqs, ["/m"], "the model server saw only the request that could be sent")


def test_large_response_to_a_wide_window(h):
    # An HTTP/2 client with a 16 MiB window, 4 MB from the model server
    # over h2c: the model sends it all at once, the proxy's session pulls
    # more than a transport's worth per turn and the socket takes each
    # write at once. Every pump must go on until the socket pushes back:
    # it once stopped with data left and no write in flight, and the rest
    # waited for the session's 1 s tick, 64 KiB at a time (a minute here).
    p = h.start("h2c-faults", [h2_python(), FAULTS], ready="line", line=r"^READY (\d+)$")
    proxy = grpc_proxy(h, int(p.ready_match.group(1)), tls={"pq_policy": "prefer"})
    for n in (200000, 4000000):
        c = RawH2(h, proxy.port)
        c.c.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 24})
        c.c.increment_flow_control_window(1 << 24)
        c.flush()
        t0 = time.monotonic()
        st = c.wait(c.request(req(f"/bytes/{n}".encode())), timeout=30)
        took = time.monotonic() - t0
        c.close()
        check_eq((st["status"], len(st["body"]), st["reset"]), (200, n, None), f"{n} bytes whole")
        check(took < 5, f"{n} bytes without waiting for ticks: {took:.1f} s")


class SilentServer(FakeTcpServer):
    """Accepts TCP connections and then says nothing (no SETTINGS, no PING
    answer): a model server wedged with its sockets open. Counts the
    connections accepted and those the other side closed."""

    def __init__(self):
        self.accepted = self.closed = 0
        super().__init__()

    def one(self, c):
        self.accepted += 1
        try:
            while c.recv(65536):
                pass
        finally:
            self.closed += 1


def test_silent_model_server_found_by_ping(h):
    # The connection's first PING goes unanswered: the request fails at
    # h2c_ping_timeout_ms (a 504 that says so), not at the 20 s response
    # timeout, and the connection is closed and counted.
    silent = SilentServer()
    proxy = grpc_proxy(h, silent.port, tls={"pq_policy": "prefer"}, upstream={"h2c_ping_timeout_ms": 1000},
                       timeouts={"upstream_response_ms": 20000, "upstream_idle_ms": 20000})
    r, took = get(proxy, h)
    check_eq(r.status, 504, f"a timeout: {r.raw[:300]}")
    body = json.loads(r.body)
    check_eq(body["error"], "upstream_timeout", r.body)
    check("did not answer a PING within 1000 ms" in body["detail"], f"the detail says why: {body}")
    check(took < 4, f"at the PING's timeout (1 s on a 1 s tick), not the response timeout: {took:.1f} s")
    check_eq(metric(proxy, "pqproxy_upstream_h2c_unresponsive_total"), 1, "counted")
    wait_until(lambda: silent.closed == silent.accepted, timeout=5, msg="the proxy closes its connections")


def test_wedged_connection_set_aside(h):
    # A connection that served, then fell silent with its socket open (the
    # fault server's /fault/wedge): the stream that waited on it times out;
    # nothing at all came on the connection meanwhile, so the proxy PINGs
    # it and opens no new stream there: the next request is served at once
    # on a new connection. The PING unanswered, the wedged connection is
    # closed (counted), not kept for later requests to time out on.
    p = h.start("h2c-faults", [h2_python(), FAULTS], ready="line", line=r"^READY (\d+)$")
    proxy = grpc_proxy(h, int(p.ready_match.group(1)), tls={"pq_policy": "prefer"},
                       upstream={"h2c_ping_timeout_ms": 1500},
                       timeouts={"upstream_response_ms": 1500, "upstream_idle_ms": 1500})
    r, _ = get(proxy, h, "/ok")
    check_eq(r.status, 200, f"served first: {r.raw[:300]}")
    r, took = get(proxy, h, "/fault/wedge")
    check_eq(r.status, 504, f"the wedged connection's stream times out: {r.raw[:300]}")
    check("did not respond within 1500 ms" in json.loads(r.body)["detail"], r.body)
    r, took = get(proxy, h, "/ok?after")
    check_eq((r.status, r.body), (200, b"served"), f"served on another connection: {r.raw[:300]}")
    check(took < 1, f"at once, not after a timeout: {took:.1f} s")

    def lines(kind):
        with open(p.out_path) as f:
            return [ln.split() for ln in f if ln.startswith(kind + " ")]
    reqs = {path: conn for _, conn, path in lines("REQ")}
    check(reqs["/fault/wedge"] == reqs["/ok"] != reqs["/ok?after"],
          f"the wedged connection had served; the next request went elsewhere: {reqs}")
    wait_until(lambda: [reqs["/fault/wedge"]] in [ln[1:] for ln in lines("EOF")], timeout=5,
               msg="the proxy closes the wedged connection")
    check_eq(metric(proxy, "pqproxy_upstream_h2c_unresponsive_total"), 1, "counted")
    r, _ = get(proxy, h, "/ok?later")
    check_eq(r.status, 200, "served afterwards")


if __name__ == "__main__":
    pxtest.main([test_content_length_and_trailers, test_response_head_bounded_by_max_header_bytes,
                 test_response_head_bounded_in_fields, test_protocol_error_ends_the_connection,
                 test_server_admitting_no_stream_gets_bounded_connections,
                 test_goaway_retries_bounded, test_request_head_nghttp2_cannot_send,
                 test_large_response_to_a_wide_window, test_silent_model_server_found_by_ping,
                 test_wedged_connection_set_aside])
