#!/usr/bin/env python3
"""A busy HTTP/2 connection keeps its finished streams for the next ones
(the exchange, the upstream response parser, the message arenas and body
buffers: src/http/h2.c and h2_session.c, "spares"). Nothing of one request
or response may reach another: on one connection, waves of more concurrent
streams than are kept, each with a request field and a response field of
its own, with responses cut by the client in the middle of their body (a
parser left mid-message) and refused requests in between, and once more
after the connection has been idle long enough to give them back.

The client is hyper-h2 (Debian's python3-h2), as in test_h2_smuggling."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pxtest  # noqa: E402
from pxtest import check, check_eq  # noqa: E402
from test_h2_smuggling import H2_ALPN, RawH2, h2, req  # noqa: E402

if h2 is not None:
    import h2.errors  # noqa: E402

WAVE = 40                               # more than the 32 streams a connection keeps


class Recording(RawH2):
    """RawH2, also keeping each response's fields."""

    def request(self, headers, body=None):
        sid = super().request(headers, body)
        self.streams[sid]["fields"] = []
        return sid

    def event(self, ev):
        super().event(ev)
        if isinstance(ev, h2.events.ResponseReceived):
            self.streams[ev.stream_id]["fields"] = [(k.decode(), v.decode()) for k, v in ev.headers]

    def wait_data(self, sid, timeout=10.0):
        """Reads until stream sid has some body."""
        st = self.streams[sid]
        deadline = time.monotonic() + timeout
        while not st["body"]:
            left = deadline - time.monotonic()
            check(left > 0, f"stream {sid}: no body in {timeout} s")
            self.s.settimeout(left)
            data = self.s.recv(65536)
            check(data, "the proxy closed the connection")
            for e in self.c.receive_data(data):
                self.event(e)
            self.flush()


def wave(c, base):
    """WAVE concurrent requests: request n carries x-n: n and asks the
    upstream for a response field x-only-n when n is even."""
    sids = {}
    for i in range(WAVE):
        n = base + i
        path = f"/echo?n={n}" + (f"&set_header=x-only-{n}:{n}" if n % 2 == 0 else "")
        sids[c.request(req(path.encode(), extra=[(b"x-n", str(n).encode())]))] = (n, path)
    for sid, (n, path) in sids.items():
        st = c.wait(sid)
        check_eq((st["status"], st["reset"]), (200, None), f"request {n}")
        echo = json.loads(st["body"])
        check_eq(echo["target"], path, f"request {n} reached the upstream as itself")
        sent = [v for k, v in echo["headers"] if k.lower() == "x-n"]
        check_eq(sent, [str(n)], f"request {n}: its own x-n only")
        got = [(k, v) for k, v in st["fields"] if k.startswith("x-only-")]
        want = [(f"x-only-{n}", str(n))] if n % 2 == 0 else []
        check_eq(got, want, f"response {n}: its own fields only")
        check_eq(len(st["body"]), int(dict(st["fields"])["content-length"]), f"response {n} length")


def test_reused_streams_carry_nothing_over(h):
    if h2 is None:
        pxtest.skip("python3-h2 is not installed (scripts/deps.sh --test-tools)")
    up = h.start_upstream()
    proxy = h.start_proxy(H2_ALPN, upstream=up)
    c = Recording(h, proxy.port)
    try:
        wave(c, 0)
        for k in range(3):
            # a response cut by the client mid-body: its exchange ends with
            # the upstream parser in the middle of a message
            sid = c.request(req(b"/bytes/2000000"))
            c.wait_data(sid)
            c.c.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
            c.flush()
            # a request refused by the proxy before any upstream
            bad = c.wait(c.request(req(b"/echo", extra=[(b"connection", b"close")])))
            check(bad["reset"] is not None or bad["status"] == 400, f"a refused request: {bad}")
            wave(c, 1000 * (k + 1))
        # idle past the connection's 1 s tick: its kept streams and buffers
        # are freed (an idle connection holds no more than an HTTP/1.1
        # one); the connection goes on serving
        time.sleep(2.5)
        wave(c, 5000)
    finally:
        c.close()
    logs = proxy.wait_access_log(5 * WAVE + 3)
    cut = [l for l in logs if l["path"] == "/bytes/2000000"]
    check_eq(len(cut), 3, "the cut responses were logged")


if __name__ == "__main__":
    pxtest.main([test_reused_streams_carry_nothing_over])
