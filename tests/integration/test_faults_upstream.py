#!/usr/bin/env python3
"""Fault injection around the response: while the proxy waits for the
upstream's head, and mid response body (Content-Length, chunked and
server-sent events), the client resets, half-closes or stops reading, and
the upstream resets, closes (FIN), stalls or sends garbage. After every
case the proxy must be alive, serve a normal request and return to its
baseline fds and heap (pxfaults.py). test_faults.py has the other phases."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pxtest import build_request, check, check_eq, main, send_raw, wait_until  # noqa: E402
from pxfaults import (FaultEnv, body_start, connect_small_rcvbuf, expect_closed, expect_cut,  # noqa: E402
                      expect_error, fin, fin_then, footprint, metric, outcome, read_rest, read_some,
                      reset_around_response, rst, run_cases)
from pxhelpers import check_error  # noqa: E402


def get(path):
    return build_request("GET", path)


def timeouts(env):
    """(send timeouts, upstream timeouts) counted so far."""
    return (metric(env.px, "pqproxy_send_timeouts_total"),
            metric(env.px, 'pqproxy_upstream_errors_total{kind="timeout"}'))


# --- waiting for the upstream's head --------------------------------------------------------

def head_wait(fault):
    def run(env):
        m = env.marker("headwait-" + fault.replace(" ", "-"))
        if fault == "client RST as it arrives":
            reset_around_response(env, lambda r, i: get(f"/delay/300?m={m}r{r}&i={i}"), m, 0.3)
            return
        s = env.connect()
        t0 = time.monotonic()
        if fault.startswith("client"):
            send_raw(s, get(f"/delay/800?m={m}"))
            wait_until(lambda: env.records_for(m), timeout=5, msg="the request upstream")
            if fault == "client RST":
                rst(s)
            else:
                fin_then(s, "answer after the client's FIN", 200)
            time.sleep(1.0)         # the upstream answers into the gone connection
            return
        how = fault.split()[1]
        if fault.endswith("mid-head"):           # status line, then nothing
            send_raw(s, get(f"/slow-headers/5000?m={m}"))
            kind, r = outcome(s)
            check_eq(kind, "response", "an error, not a cut head")
            body = check_error(r, r.status, r.json().get("error"), "stalled mid-head")
            check(r.status in (502, 504), f"502/504 for a head that stalls: {r.status} {body}")
        else:
            send_raw(s, get(f"/fault/{how}?m={m}"))
            want = {"reset": (502, "upstream_unavailable"), "fin": (502, "upstream_unavailable"),
                    "garbage": (502, "upstream_bad_response"),
                    "stall": (504, "upstream_timeout")}[how]
            expect_error(s, want[0], want[1], fault)
            if how == "stall":
                took = time.monotonic() - t0
                check(1.2 < took < 5, f"504 after {took:.2f}s (upstream_response_ms 1.5 s)")
        s.close()
    return run


HEAD_WAIT_FAULTS = ("client RST", "client RST as it arrives", "client FIN", "upstream reset", "upstream fin",
                    "upstream garbage", "upstream stall", "upstream stall mid-head")


def test_fault_waiting_for_upstream_head(h):
    env = FaultEnv(h)
    run_cases(env, "waiting for the upstream head",
              [(f, head_wait(f)) for f in HEAD_WAIT_FAULTS])


# --- mid response body -------------------------------------------------------------------------

BIG = 32 << 20


def body_fault(kind, fault):
    """kind: "length" (/bytes), "chunked" (/bytes?chunked=1) or "sse"."""
    def path(cut=None, n=300000, m=""):
        if kind == "sse":
            p = f"/sse?n={n}&interval_ms={0 if n > 1000 else 20}&m={m}"
        else:
            p = f"/bytes/{n}?m={m}" + ("&chunked=1" if kind == "chunked" else "")
        return p + (f"&cut={cut}" if cut else "")

    def run(env):
        m = env.marker(f"resp-{kind}-{fault.split()[-1]}")
        if fault == "client stops reading":
            s = connect_small_rcvbuf(env.px.port, env.ca)
            before = footprint(env.px, env.upstream_port).mem
            counts = timeouts(env)
            send_raw(s, get(path(n=BIG if kind != "sse" else 100000, m=m)))   # upstream.py's most
            read_some(s, n_bytes=1)
            time.sleep(1.5)         # the buffers fill; the upstream must be held back
            grown = footprint(env.px, env.upstream_port).mem - before
            check(grown < 4 << 20, f"the proxy buffered {grown:.0f} B for a client not reading")
            # timeouts.send_idle_ms (2 s) ends it once the socket is full;
            # the upstream, held back meanwhile (upstream_idle_ms is 1 s),
            # is not blamed. Reading before that would let it go on.
            wait_until(lambda: timeouts(env)[0] > counts[0], timeout=10, msg="a send timeout")
            check_eq(timeouts(env), (counts[0] + 1, counts[1]), "a send timeout, not an upstream one")
            read_rest(s, timeout=5)
            s.close()
            return
        s = env.connect()
        if fault.startswith("client"):
            send_raw(s, get(path(n=BIG if kind != "sse" else 100, m=m)))
            if kind == "sse":
                read_some(s, n_events=3)
            else:
                read_some(s, n_bytes=100000)
            if fault == "client RST":
                rst(s)
                return
            fin(s)
            read_rest(s, timeout=10)     # the rest or a cut; never a hang
            s.close()
            return
        how = fault.split()[1]
        t0 = time.monotonic()
        send_raw(s, get(path(cut=how, n=5 if kind == "sse" else 300000, m=m)))
        r = expect_cut(s, fault)
        if kind != "sse":
            check(r.body_len <= 300000, f"only what the upstream sent: {r.body_len}")
        if how == "stall":
            took = time.monotonic() - t0
            check(took < 5, f"cut after {took:.2f}s (upstream_idle_ms 1 s)")
        s.close()
    return run


CLIENT_FAULTS = ("client RST", "client FIN", "client stops reading")


def test_fault_response_body_length(h):
    env = FaultEnv(h)
    run_cases(env, "mid response body (Content-Length)",
              [(f, body_fault("length", f)) for f in CLIENT_FAULTS +
               ("upstream reset", "upstream fin", "upstream stall")])


def test_fault_response_body_streamed(h):
    env = FaultEnv(h)
    faults = CLIENT_FAULTS + ("upstream reset", "upstream fin", "upstream stall", "upstream garbage")
    run_cases(env, "mid response body (chunked)", [(f, body_fault("chunked", f)) for f in faults])
    run_cases(env, "mid response body (SSE)", [(f, body_fault("sse", f)) for f in faults])


# --- the status line ------------------------------------------------------------------------

def test_reason_phrase_vetted(h):
    # A model server's reason phrase reaches the client as sent while it keeps
    # to RFC 9110's grammar (tabs, obs-text); one with another control byte
    # (llhttp takes a NUL, an escape, DEL) is replaced by the usual phrase for
    # the status, never forwarded and never a 502.
    env = FaultEnv(h)
    s = env.connect()
    for status, reason, want in ((200, "O%00K", b"OK"),
                                 (404, "%1B[31mred%1B[0m", b"Not Found"),
                                 (503, "busy%7F", b"Service Unavailable"),
                                 (299, "odd%07", b""),
                                 (200, "Fine%09and%E9%FF", b"Fine\tand\xe9\xff"),
                                 (404, "Gone+fishing", b"Gone fishing")):
        m = env.marker(f"reason-{status}")
        send_raw(s, get(f"/status/{status}?reason={reason}&m={m}"))
        kind, r = outcome(s)
        check_eq((kind, r.status if r else None), ("response", status), f"reason {reason}")
        line = r.raw.split(b"\r\n", 1)[0]
        check_eq(line, b"HTTP/1.1 %d %s" % (status, want), f"status line for reason {reason}")
    s.close()


# --- after the error: the connection ------------------------------------------------------

def test_connection_kept_after_upstream_errors(h):
    # A request read whole that the model server fails gets its 502/504 on
    # a connection that serves on (no "Connection: close"): a client is not
    # made to handshake again per request while its model server restarts.
    # Where the next request's start is unknown (the body not read whole), or
    # the client asked to close, or speaks HTTP/1.0, the connection closes.
    env = FaultEnv(h)
    s = env.connect()
    for what, method, path, body, status, error in (
            ("reset", "GET", "/fault/reset", None, 502, "upstream_unavailable"),
            ("fin", "GET", "/fault/fin", None, 502, "upstream_unavailable"),
            ("garbage", "GET", "/fault/garbage", None, 502, "upstream_bad_response"),
            ("stall", "GET", "/fault/stall", None, 504, "upstream_timeout"),
            ("a POST's body read whole, garbage", "POST", "/fault/garbage", b"x" * 5000, 502,
             "upstream_bad_response")):
        m = env.marker("kept-" + path.split("/")[2])
        send_raw(s, build_request(method, f"{path}?m={m}", body=body))
        r = expect_error(s, status, error, what)
        check(r.header("connection") is None, f"after {what}, no close announced: {r.raw[:300]!r}")
        send_raw(s, get(f"/echo?m={m}-next"))
        kind, r = outcome(s)
        check_eq((kind, r.status if r else None), ("response", 200), f"the request after {what}")
    m = env.marker("kept-pipelined")                  # the error and the next answer, in order
    send_raw(s, get(f"/fault/reset?m={m}") + get(f"/echo?m={m}-next"))
    expect_error(s, 502, "upstream_unavailable", "pipelined")
    kind, r = outcome(s)
    check_eq((kind, r.status if r else None), ("response", 200), "the pipelined request after the 502")
    s.close()

    def closes(data, what, status, error):
        s = env.connect()
        send_raw(s, data)
        r = expect_error(s, status, error, what)
        check_eq((r.header("connection") or "").lower(), "close", f"{what}: {r.raw[:300]!r}")
        expect_closed(s, what)
        s.close()

    m = env.marker("closes")
    closes(f"GET /fault/reset?m={m}a HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode(),
           "Connection: close", 502, "upstream_unavailable")
    closes(f"GET /fault/reset?m={m}b HTTP/1.0\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n".encode(),
           "HTTP/1.0 keep-alive", 502, "upstream_unavailable")
    # the model server fails on the head while 190 KB of the body are still to come
    closes(body_start(f"{m}c", "/early-fault/reset", False, 200000, n=10000),
           "the body not read whole", 502, "upstream_unavailable")
    env.check_serves()


if __name__ == "__main__":
    main([test_fault_waiting_for_upstream_head, test_fault_response_body_length,
          test_fault_response_body_streamed, test_reason_phrase_vetted,
          test_connection_kept_after_upstream_errors])
