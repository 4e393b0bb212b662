#!/usr/bin/env python3
"""HTTP/2 attacks against the whole proxy (client, exchange and upstream
links), with a raw client (hyper-h2, tests/integration/test_h2_smuggling.py's
RawH2): what matters is not only the session's refusal (unit-tested in
tests/unit/test_h2.c) but that the attack leaves no upstream connection,
memory or stream pinned, and that other clients are served meanwhile.
- rapid reset (CVE-2023-44487): requests to a slow model server, each reset
  at once: GOAWAY ENHANCE_YOUR_CALM at the budget, counted; the upstream
  sees few of them and its links are released;
- zero-window stall: a client that never opens its window to a large
  response: the stream is reset after stall_timeout_ms and its upstream
  link released;
- CONTINUATION flood (CVE-2024-27316): GOAWAY, counted, nothing forwarded."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pxtest  # noqa: E402
from pxtest import check, check_eq, wait_until  # noqa: E402
from pxhelpers import metrics  # noqa: E402
from test_h2_smuggling import H2_ALPN, RawH2, h2, req  # noqa: E402

ENHANCE_YOUR_CALM = 0xB


def served(h, proxy):
    """A fresh client is answered while (or after) the attack."""
    c = RawH2(h, proxy.port)
    st = c.wait(c.request(req(b"/echo?ok=1")))
    c.close()
    check_eq(st["status"], 200, "another client is served")


def upstream_links(proxy):
    m = metrics(proxy)
    return (m.get('pqproxy_upstream_connections{state="busy"}', 0),
            m.get('pqproxy_upstream_connections{state="idle"}', 0))


def read_until_goaway(c, timeout=10.0):
    deadline = time.monotonic() + timeout
    while c.terminated is None and time.monotonic() < deadline:
        c.s.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            data = c.s.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            break
        if not data:
            break
        for ev in c.c.receive_data(data):
            c.event(ev)
    return c.terminated


def test_rapid_reset_releases_upstream(h):
    up = h.start_upstream()
    proxy = h.start_proxy(pxtest.deep_merge(H2_ALPN, {"http2": {"reset_budget": 50,
                                                                "reset_window_ms": 60000}}),
                          upstream=up)
    c = RawH2(h, proxy.port)
    sent = 0
    for _ in range(20):                      # 20 x 10 requests, each reset at once
        for _ in range(10):
            sid = c.request(req(b"/delay/3000?rr=1"))
            c.c.reset_stream(sid, 0x8)       # CANCEL
            sent += 1
        try:
            c.flush()
        except OSError:
            break
        if c.terminated:
            break
    term = read_until_goaway(c)
    c.close()
    check(term is not None, "the connection ended with a GOAWAY")
    check_eq(term[0], ENHANCE_YOUR_CALM, f"GOAWAY code after {sent} resets")
    m = metrics(proxy)
    check(m.get('pqproxy_h2_events_total{event="rapid_reset_goaway"}', 0) >= 1, "counted")
    served(h, proxy)
    # every link the resets opened is given back (closed: none was reusable)
    wait_until(lambda: upstream_links(proxy)[0] == 0, timeout=10, msg="no busy upstream link")
    time.sleep(3.5)                          # the slow responses the upstream owed are done
    check(len(up.records()) <= 60, f"the upstream got {len(up.records())} of {sent} reset requests")


def test_zero_window_stall_releases_upstream(h):
    up = h.start_upstream()
    proxy = h.start_proxy(pxtest.deep_merge(H2_ALPN, {"http2": {"stall_timeout_ms": 1000,
                                                                "stream_buffer": 65536}}),
                          upstream=up)
    c = RawH2(h, proxy.port)
    c.c.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    c.flush()
    sid = c.request(req(b"/bytes/20000000"))  # 20 MB: far more than any buffer
    # read frames without ever opening a window: no DATA can come
    c.event = lambda ev, _orig=c.event: (_orig(ev) if not isinstance(ev, h2.events.DataReceived)
                                         else None)
    wait_until(lambda: upstream_links(proxy)[0] >= 1, timeout=5, msg="the upstream link in use")
    st = c.wait(sid, timeout=15)
    check_eq(st["reset"], 0x8, "the stalled stream is reset (CANCEL)")
    m = metrics(proxy)
    check(m.get('pqproxy_h2_events_total{event="stalled_reset"}', 0) >= 1, "counted")
    wait_until(lambda: upstream_links(proxy)[0] == 0, timeout=10, msg="its upstream link released")
    # the same connection still serves a request it can read
    c.c.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 65535})
    c.event = RawH2.event.__get__(c)
    st = c.wait(c.request(req(b"/echo?after=1")))
    check_eq(st["status"], 200, "the connection goes on")
    c.close()


def test_continuation_flood(h):
    up = h.start_upstream()
    proxy = h.start_proxy(pxtest.deep_merge(H2_ALPN, {"http2": {"max_continuations": 4}}),
                          upstream=up)
    c = RawH2(h, proxy.port)
    # HEADERS without END_HEADERS, then CONTINUATION frames that never end
    block = c.c.encoder.encode(req(b"/echo?flood=1") + [(b"x-pad", b"a" * 100)])
    frames = bytearray()
    sid = 1

    def frame(ftype, flags, payload):
        return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + sid.to_bytes(4, "big") + payload
    frames += frame(0x1, 0x1, block)             # HEADERS, END_STREAM, no END_HEADERS
    for _ in range(50):
        frames += frame(0x9, 0x0, b"")           # CONTINUATION, no END_HEADERS
    try:
        c.s.sendall(bytes(frames))
    except OSError:
        pass
    term = read_until_goaway(c)
    c.close()
    check(term is not None and term[0] == ENHANCE_YOUR_CALM, f"GOAWAY ENHANCE_YOUR_CALM: {term}")
    m = metrics(proxy)
    check(m.get('pqproxy_h2_events_total{event="continuation_flood"}', 0) >= 1, "counted")
    served(h, proxy)
    check_eq([r["target"] for r in up.records()], ["/echo?ok=1"], "nothing of the flood forwarded")


if __name__ == "__main__":
    pxtest.main([test_rapid_reset_releases_upstream, test_zero_window_stall_releases_upstream,
                 test_continuation_flood])
