#!/usr/bin/env python3
"""h2-to-h1 request smuggling: an HTTP/2 client sending what real clients
refuse to (connection-specific fields, `te` other than trailers,
content-length disagreeing with DATA, CR/LF/NUL in names and values,
upper-case names, pseudo-header errors, a :path not in origin form). Each
request must be refused (a stream reset or an error status), nothing of it
may be answered by the HTTP/1.1 upstream (tests/integration/upstream.py
records every request it has read whole), and the connection's other
streams keep working: a good request follows each bad one on the same
connection, and the upstream's record holds exactly those.

The client is hyper-h2 (Debian's python3-h2) with its own header
validation and normalisation turned off."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pxtest  # noqa: E402
from pxtest import check, check_eq, check_in  # noqa: E402

DEBIAN_PY = "/usr/bin/python3"

try:
    import h2.config
    import h2.connection
    import h2.events
except ImportError:                     # scripts/deps.sh --test-tools installs it
    h2 = None
    # Debian's package is for Debian's Python: run under it when another
    # python3 comes first in PATH
    if os.path.exists(DEBIAN_PY) and os.path.realpath(sys.executable) != os.path.realpath(DEBIAN_PY):
        os.execv(DEBIAN_PY, [DEBIAN_PY] + sys.argv)

H2_ALPN = {"tls": {"alpn": ["h2", "http/1.1"]}}


class RawH2:
    """One HTTP/2 connection over TLS; streams' outcomes by id."""

    def __init__(self, h, port):
        if h2 is None:
            pxtest.skip("python3-h2 is not installed (scripts/deps.sh --test-tools)")
        self.s = pxtest.tls_connect(port, os.path.join(h.certgen(), "ca.crt"), alpn=["h2"])
        check_eq(self.s.selected_alpn_protocol(), "h2", "ALPN")
        cfg = h2.config.H2Configuration(client_side=True, header_encoding=None,
                                        validate_outbound_headers=False,
                                        normalize_outbound_headers=False,
                                        validate_inbound_headers=False)
        self.c = h2.connection.H2Connection(cfg)
        self.c.initiate_connection()
        self.flush()
        self.streams = {}
        self.terminated = None

    def flush(self):
        data = self.c.data_to_send()
        if data:
            self.s.sendall(data)

    def request(self, headers, body=None):
        sid = self.c.get_next_available_stream_id()
        self.streams[sid] = {"status": None, "body": b"", "reset": None, "ended": False}
        self.c.send_headers(sid, headers, end_stream=body is None)
        if body is not None:
            self.c.send_data(sid, body, end_stream=True)
        self.flush()
        return sid

    def pump_until(self, pred, timeout, what):
        """Takes frames until pred() holds; fails after timeout, or when the
        proxy closes the connection."""
        deadline = time.monotonic() + timeout
        while not pred():
            left = deadline - time.monotonic()
            check(left > 0, f"{what}: not within {timeout} s")
            self.s.settimeout(left)
            try:
                data = self.s.recv(65536)
            except socket.timeout:
                continue
            check(data, f"{what}: the proxy closed the connection")
            for ev in self.c.receive_data(data):
                self.event(ev)
            self.flush()

    def wait(self, sid, timeout=10.0):
        st = self.streams[sid]

        def answered():
            check(self.terminated is None, f"the connection ended: GOAWAY {self.terminated}")
            return st["ended"] or st["reset"] is not None
        self.pump_until(answered, timeout, f"stream {sid}: an answer")
        return st

    def event(self, ev):
        st = self.streams.get(getattr(ev, "stream_id", None))
        if isinstance(ev, h2.events.ResponseReceived):
            st["status"] = int(dict(ev.headers)[b":status"])
            st["content_length"] = dict(ev.headers).get(b"content-length")
        elif isinstance(ev, h2.events.DataReceived):
            st["body"] += ev.data
            self.c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded):
            st["ended"] = True
        elif isinstance(ev, h2.events.StreamReset):
            st["reset"] = ev.error_code
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.terminated = (ev.error_code, ev.additional_data)

    def close(self):
        self.s.close()


def req(path, method=b"GET", authority=b"localhost", extra=()):
    return [(b":method", method), (b":scheme", b"https"), (b":authority", authority),
            (b":path", path)] + list(extra)


def cases():
    """(name, headers, body); the bad path carries "bad" so a forwarded one shows."""
    p = b"/echo?bad=1"
    post = [(b":method", b"POST"), (b":scheme", b"https"), (b":authority", b"localhost"),
            (b":path", p)]
    return [
        ("connection", req(p, extra=[(b"connection", b"close")]), None),
        ("keep-alive", req(p, extra=[(b"keep-alive", b"timeout=5")]), None),
        ("proxy-connection", req(p, extra=[(b"proxy-connection", b"keep-alive")]), None),
        ("transfer-encoding", post + [(b"transfer-encoding", b"chunked")],
         b"5\r\nhello\r\n0\r\n\r\nGET /echo?bad=2 HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("upgrade", req(p, extra=[(b"upgrade", b"h2c")]), None),
        ("te gzip", req(p, extra=[(b"te", b"gzip")]), None),
        ("te trailers, gzip", req(p, extra=[(b"te", b"trailers, gzip")]), None),
        ("content-length above DATA", post + [(b"content-length", b"5")],
         b"helloGET /echo?bad=2 HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("content-length below DATA", post + [(b"content-length", b"100")], b"hello"),
        ("CR in value", req(p, extra=[(b"x-a", b"a\rb")]), None),
        ("LF in value", req(p, extra=[(b"x-a", b"a\nb")]), None),
        ("CRLF header injection", req(p, extra=[(b"x-a", b"a\r\nx-injected: 1")]), None),
        ("CRLF request injection", req(p, extra=[(b"x-a", b"a\r\n\r\nGET /echo?bad=2 HTTP/1.1")]),
         None),
        ("NUL in value", req(p, extra=[(b"x-a", b"a\x00b")]), None),
        ("CR in name", req(p, extra=[(b"x-a\rb", b"1")]), None),
        ("CRLF in name", req(p, extra=[(b"x-a\r\nx-b", b"1")]), None),
        ("NUL in name", req(p, extra=[(b"x\x00a", b"1")]), None),
        ("space in name", req(p, extra=[(b"x a", b"1")]), None),
        ("colon in name", req(p, extra=[(b"x:a", b"1")]), None),
        ("upper-case name", req(p, extra=[(b"X-Upper", b"1")]), None),
        ("CRLF in :path", req(b"/echo?bad=1 HTTP/1.1\r\nX-A: b"), None),
        ("space in :path", req(b"/echo?bad=1 x"), None),
        ("CRLF in :authority", req(p, authority=b"localhost\r\nX-A: b"), None),
        ("CRLF in :method", req(p, method=b"GET /echo?bad=2 HTTP/1.1\r\nX-A:"), None),
        ("missing :method", [h for h in req(p) if h[0] != b":method"], None),
        ("missing :path", [h for h in req(p) if h[0] != b":path"], None),
        ("missing :scheme", [h for h in req(p) if h[0] != b":scheme"], None),
        ("duplicate :path", req(p) + [(b":path", b"/echo?bad=2")], None),
        ("duplicate :method", req(p, extra=[(b":method", b"POST")]), None),
        ("pseudo after a field", [(b":method", b"GET"), (b":scheme", b"https"),
                                  (b":authority", b"localhost"), (b"x-a", b"1"), (b":path", p)],
         None),
        ("host differs from :authority", req(p, extra=[(b"host", b"evil.example")]), None),
        ("unknown pseudo", req(p, extra=[(b":foo", b"1")]), None),
        ("response pseudo", req(p, extra=[(b":status", b"200")]), None),
        (":path *", req(b"*"), None),
        ("OPTIONS *", req(b"*", method=b"OPTIONS"), None),
        (":path without /", req(b"echo?bad=1"), None),
        (":path absolute", req(b"http://localhost/echo?bad=1"), None),
        ("empty :path", req(b""), None),
        ("lower-case method", req(p, method=b"get"), None),
    ]


def test_refused_and_nothing_forwarded(h):
    up = h.start_upstream()
    proxy = h.start_proxy(H2_ALPN, upstream=up)
    c = RawH2(h, proxy.port)
    outcomes, good = [], 0
    try:
        for name, headers, body in cases():
            st = c.wait(c.request(headers, body))
            outcomes.append((name, st["status"], st["reset"]))
            check(st["reset"] is not None or st["status"] in (400, 405, 501),
                  f"{name}: not refused: status {st['status']}, body {st['body'][:200]!r}")
            # the same connection goes on serving
            good += 1
            st = c.wait(c.request(req(b"/echo?ok=%d" % good)))
            check_eq((st["status"], st["reset"]), (200, None), f"the request after {name!r}")
    finally:
        c.close()
    print("refusals (case, status, reset code):", outcomes)
    up.wait_records(good)
    time.sleep(0.3)           # time for anything still on its way to the upstream
    targets = [r["target"] for r in up.records()]
    check_eq(targets, ["/echo?ok=%d" % i for i in range(1, good + 1)],
             "the upstream read only the good requests")
    for r in up.records():
        names = [k.lower() for k, _ in r["headers"]]
        check("x-injected" not in names and "x-a" not in names, f"an injected field upstream: {r}")


def test_refused_before_the_upstream_with_bodies(h):
    """The framing cases once more, each on a fresh connection closed at
    once: a refused body must not leave a half-request on an upstream link
    that a later request would then complete."""
    up = h.start_upstream()
    proxy = h.start_proxy(H2_ALPN, upstream=up)
    for name, headers, body in cases():
        if body is None:
            continue
        c = RawH2(h, proxy.port)
        try:
            st = c.wait(c.request(headers, body))
            check(st["reset"] is not None or st["status"] in (400, 405, 501), f"{name}: {st}")
        finally:
            c.close()
    c = RawH2(h, proxy.port)
    try:
        st = c.wait(c.request(req(b"/echo?ok=1", method=b"POST", extra=[(b"content-length", b"5")]),
                              b"hello"))
        check_eq(st["status"], 200, "a good POST afterwards")
    finally:
        c.close()
    up.wait_records(1)
    time.sleep(0.3)
    recs = up.records()
    check_eq([(r["target"], r["body_len"]) for r in recs], [("/echo?ok=1", 5)],
             "the upstream read only the good POST, whole")
    check_in(recs[0]["method"], ["POST"])


def test_head_errors_without_body(h):
    """The proxy's own error answering HEAD is a head without DATA (RFC
    9110 9.3.2), its content-length the one a GET would get; the stream
    ends on the HEADERS frame and the connection serves on."""
    up = h.start_upstream()
    proxy = h.start_proxy(H2_ALPN, upstream=up)
    c = RawH2(h, proxy.port)
    try:
        # the model server resets, or answers garbage (nghttp2 resets what a
        # client does wrong before pqproxy could answer it with a body)
        for path, status in ((b"/fault/reset", 502), (b"/fault/garbage", 502)):
            st = c.wait(c.request(req(path, method=b"HEAD")))
            check_eq((st["status"], st["body"], st["ended"], st["reset"]), (status, b"", True, None),
                     f"HEAD {path!r}")
            check(int(st["content_length"]) > 0, f"HEAD {path!r}: the GET's content-length {st}")
        st = c.wait(c.request(req(b"/fault/reset")))
        check_eq(st["status"], 502)
        check_eq(len(st["body"]), int(st["content_length"]), "the GET's body, as long as HEAD said")
    finally:
        c.close()


if __name__ == "__main__":
    pxtest.main([test_refused_and_nothing_forwarded, test_refused_before_the_upstream_with_bodies,
                 test_head_errors_without_body])
