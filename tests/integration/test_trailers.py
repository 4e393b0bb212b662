#!/usr/bin/env python3
"""Trailer fields both ways, over every pair of client and upstream
protocols (src/proxy/exchange.c request_trailers and send_end_with; the
policy is px_http1_trailer_ok): a request's trailers reach the model server
where the upstream protocol has a place for them (an HTTP/1.1 chunked body,
an h2c stream's trailing HEADERS), a response's reach every client that
takes trailers; the fields that must not come after the content (RFC 9110
6.5.1: the proxy's forwarding fields, authentication, cookies, content
handling, framing, signature fields in a request) never pass; a route that
verifies signatures forwards none."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pxtest  # noqa: E402
from pxtest import check, check_eq, http_request, read_response, send_raw  # noqa: E402
from pxhelpers import Env, sha  # noqa: E402
from test_grpc_proxy import grpc_proxy, h2_python  # noqa: E402
from test_h2 import H2_ALPN, h2_requests, pattern_sha  # noqa: E402
from test_interop_node import node24  # noqa: E402
from test_h2_smuggling import RawH2, h2, req  # noqa: E402
from test_signatures import Sig  # noqa: E402

FAULTS = os.path.join(pxtest.HERE, "peers", "h2c_fault_server.py")

# What a client sends after its body: one field that goes on, and one of
# each kind that must not.
SENT = [("X-Checksum", "crc32=1234"), ("Set-Cookie", "s=1"), ("Authorization", "Bearer late"),
        ("X-Forwarded-For", "6.6.6.6"), ("X-Request-Id", "late"), ("Forwarded", "for=6.6.6.6"),
        ("Signature", "sig1=:AAAA:"), ("Content-Digest", "sha-256=:AAAA:"), ("If-Match", '"x"'),
        ("Pqproxy-Verified", "yes"), ("Content-Type", "text/late"), ("Cache-Control", "no-cache")]
KEPT = [["x-checksum", "crc32=1234"]]
BODY = b"hello trailers " * 1000


def chunked_with_trailers(path, fields=SENT, body=BODY):
    head = f"POST {path} HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
    return (head + b"%x\r\n" % len(body) + body + b"\r\n0\r\n" +
            b"".join(f"{k}: {v}\r\n".encode() for k, v in fields) + b"\r\n")


def lower(pairs):
    return [[k.lower(), v] for k, v in pairs]


class Trailing(RawH2):
    """RawH2 that sends a request's trailers and keeps a response's."""

    def post_with_trailers(self, path, body=BODY, length=False, fields=SENT):
        sid = self.c.get_next_available_stream_id()
        self.streams[sid] = {"status": None, "body": b"", "reset": None, "ended": False}
        extra = [(b"content-length", str(len(body)).encode())] if length else []
        self.c.send_headers(sid, req(path.encode(), method=b"POST", extra=extra))
        off = 0
        while off < len(body):       # within the proxy's initial windows (64 KiB)
            k = min(16384, len(body) - off)
            self.c.send_data(sid, body[off:off + k])
            off += k
        self.c.send_headers(sid, [(k.lower().encode(), v.encode()) for k, v in fields], end_stream=True)
        self.flush()
        return sid

    def event(self, ev):
        super().event(ev)
        if isinstance(ev, h2.events.TrailersReceived):
            self.streams[ev.stream_id]["trailers"] = dict(ev.headers)


def h2_exchange(h, port, fn):
    c = Trailing(h, port)
    try:
        return c.wait(fn(c))
    finally:
        c.close()


def test_request_trailers_to_http1(h):
    e = Env(h)
    # HTTP/1.1 chunked in, chunked out: the trailer section goes along
    with e.connect() as s:
        send_raw(s, chunked_with_trailers("/echo"))
        r = read_response(s)
    got = r.json()
    check_eq((r.status, got["body_len"], got["body_sha256"]), (200, len(BODY), sha(BODY)), r.raw[:300])
    check_eq(lower(got["trailers"]), KEPT, "HTTP/1.1: one field forwarded, the others dropped")
    # HTTP/2 without content-length: chunked to the model server, trailers in it
    st = h2_exchange(h, e.px.port, lambda c: c.post_with_trailers("/echo"))
    got = json.loads(st["body"])
    check_eq((st["status"], got["body_len"], got["trailers"]), (200, len(BODY), KEPT), f"h2: {got}")
    check_eq([v for k, v in got["headers"] if k.lower() == "transfer-encoding"], ["chunked"])
    # HTTP/2 with content-length: a length-framed HTTP/1.1 body has no place
    # for them; the body is whole all the same
    st = h2_exchange(h, e.px.port, lambda c: c.post_with_trailers("/echo", length=True))
    got = json.loads(st["body"])
    check_eq((st["status"], got["body_len"], got["body_sha256"], got["trailers"]),
             (200, len(BODY), sha(BODY), []), f"h2 with content-length: {got}")


def test_request_trailers_to_h2c(h):
    p = h.start("h2c-faults", [h2_python(), FAULTS], ready="line", line=r"^READY (\d+)$")
    proxy = grpc_proxy(h, int(p.ready_match.group(1)), tls={"pq_policy": "prefer"})
    for length in (False, True):    # an h2c stream carries them whatever the framing
        st = h2_exchange(h, proxy.port, lambda c: c.post_with_trailers("/trailers", length=length))
        check_eq(st["status"], 200, f"h2 (content-length {length}): {st}")
        check_eq(json.loads(st["body"]), {"body_len": len(BODY), "trailers": KEPT},
                 f"h2 (content-length {length})")
    s = pxtest.tls_connect(proxy.port, os.path.join(h.certgen(), "ca.crt"), alpn=["http/1.1"])
    send_raw(s, chunked_with_trailers("/trailers"))
    r = read_response(s)
    s.close()
    check_eq((r.status, json.loads(r.body)), (200, {"body_len": len(BODY), "trailers": KEPT}),
             f"HTTP/1.1 chunked: {r.raw[:300]}")
    # no trailers: the stream ends with its last DATA as before
    st = h2_exchange(h, proxy.port, lambda c: c.request(req(b"/trailers", method=b"POST"), b"x"))
    check_eq(json.loads(st["body"]), {"body_len": 1, "trailers": []}, "no trailers")


def test_trailers_after_the_answer(h):
    # A request refused mid-body (413) whose trailers still come: they are
    # read and dropped with the rest, the connection serves on.
    e = Env(h, {"http": {"max_body_bytes": 1000}})
    c = Trailing(h, e.px.port)
    try:
        sid = c.post_with_trailers("/echo", body=b"x" * 20000)
        st = c.wait(sid)
        check_eq(st["status"], 413, f"refused: {st}")
        st = c.wait(c.post_with_trailers("/echo", body=b"small"))
        got = json.loads(st["body"])
        check_eq((st["status"], got["body_len"], got["trailers"]), (200, 5, KEPT), f"then served: {st}")
    finally:
        c.close()
    check_eq([r["target"] for r in e.records()], ["/echo"], "only the second reached the model server")


def test_node_streams_a_large_body_with_trailers(h):
    # Node 24's http2 client over X25519MLKEM768: 8 MiB streamed without
    # content-length (past every window and buffer), then trailers; to the
    # HTTP/1.1 upstream in the last chunk, and to an h2c one as HEADERS.
    node24()
    n = 8 << 20
    sent = {"x-checksum": "crc32=1234", "authorization": "Bearer late", "x-request-id": "late"}
    e = Env(h, H2_ALPN)
    p = h.start("h2c-faults", [h2_python(), FAULTS], ready="line", line=r"^READY (\d+)$")
    h2c = grpc_proxy(h, int(p.ready_match.group(1)))
    for port, path in ((e.px.port, "/echo"), (h2c.port, "/trailers")):
        res = h2_requests(h, port, [{"method": "POST", "path": path, "body_len": n, "no_length": True,
                                     "trailers": sent}])
        r = res["responses"][0]
        check_eq((r.get("error"), r["status"]), (None, 200), f"{path}: {r}")
        got = json.loads(r["body"])
        check_eq((got["body_len"], got["trailers"]), (n, KEPT), f"{path}: what the model server got")
        if path == "/echo":
            check_eq(got["body_sha256"], pattern_sha(n), "the body, whole")


def check_response_trailers(r, st, end_name):
    """r: the HTTP/1.1 response, st: the HTTP/2 stream of the same request."""
    check_eq(r.status, 200, r.raw[:300])
    tail = r.raw[r.raw.rfind(b"\r\n0\r\n"):].lower()
    check(tail.startswith(b"\r\n0\r\n") and f"\r\n{end_name}: yes\r\n".encode() in tail,
          f"HTTP/1.1: the trailer came in the last chunk: {tail!r}")
    for bad in (b"set-cookie", b"x-request-id: late", b"text/late"):
        check(bad not in tail, f"HTTP/1.1: {bad!r} was not forwarded: {tail!r}")
    check_eq((st["status"], st.get("trailers")), (200, {b"x-end": b"yes"}), f"HTTP/2: {st}")


def test_response_trailers_from_http1(h):
    e = Env(h)
    with e.connect() as s:
        r = http_request(s, "GET", "/trailers")
    st = h2_exchange(h, e.px.port, lambda c: c.request(req(b"/trailers")))
    check_response_trailers(r, st, "x-end")
    check_eq(json.loads(st["body"])["target"], "/trailers")
    # more fields than the exchange keeps on its stack: all that may pass
    # (an HTTP/1.1 message's first 16 kept: X-End, the three dropped, 12 more)
    st = h2_exchange(h, e.px.port, lambda c: c.request(req(b"/trailers?n=20")))
    want = {b"x-end": b"yes", **{f"x-t-{i}".encode(): str(i).encode() for i in range(12)}}
    check_eq((st["status"], st.get("trailers")), (200, want), "many trailers")


def test_response_trailers_from_h2c(h):
    p = h.start("h2c-faults", [h2_python(), FAULTS], ready="line", line=r"^READY (\d+)$")
    proxy = grpc_proxy(h, int(p.ready_match.group(1)), tls={"pq_policy": "prefer"})
    s = pxtest.tls_connect(proxy.port, os.path.join(h.certgen(), "ca.crt"), alpn=["http/1.1"])
    s.sendall(b"GET /trailers HTTP/1.1\r\nHost: localhost\r\n\r\n")
    r = read_response(s)
    s.close()
    st = h2_exchange(h, proxy.port, lambda c: c.request(req(b"/trailers")))
    check_response_trailers(r, st, "x-end")


def test_signed_route_forwards_no_request_trailers(h):
    # Nothing a signature could cover comes after the body: on a route that
    # verifies, even an unsigned request (verify optional) loses them.
    sg = Sig(h, routes=[{"prefix": "/echo", "verify": "optional"}, {"prefix": "/", "verify": "off"}])
    s = pxtest.tls_connect(sg.proxy.port, sg.ca)
    send_raw(s, chunked_with_trailers("/echo"))
    r = read_response(s)
    send_raw(s, chunked_with_trailers("/status/200"))
    r2 = read_response(s)
    s.close()
    got = r.json()
    check_eq((r.status, got["body_len"], got["trailers"]), (200, len(BODY), []), r.raw[:300])
    recs = sg.records()
    check_eq(r2.status, 200, r2.raw[:300])
    check_eq(lower(recs[-1]["trailers"]), KEPT, "the route that does not verify forwards them")


if __name__ == "__main__":
    pxtest.main([test_request_trailers_to_http1, test_request_trailers_to_h2c,
                 test_trailers_after_the_answer, test_node_streams_a_large_body_with_trailers,
                 test_response_trailers_from_http1, test_response_trailers_from_h2c,
                 test_signed_route_forwards_no_request_trailers])
