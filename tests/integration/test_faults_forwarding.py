#!/usr/bin/env python3
"""Fault injection between request and response: pipelined requests
queued behind one in flight (valid ones and junk), and the upstream
connect (a listener that never accepts). The client resets, half-closes
or stops reading; the upstream resets, closes or sends garbage. After
every case the proxy must be alive, serve a normal request and return to
its baseline fds and heap (pxfaults.py)."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pxtest  # noqa: E402
from pxtest import TestFailure, check, check_eq, main, send_raw, wait_until  # noqa: E402
from pxfaults import (FaultEnv, connect_small_rcvbuf, expect_closed, expect_error, fin,  # noqa: E402
                      fin_then, footprint, outcome, req, rst, run_cases, send_until_blocked)
from pxhelpers import check_error  # noqa: E402


# --- pipelined requests ------------------------------------------------------------------

def pipe_valid(fault):
    def run(env):
        m = env.marker(f"pipe-{fault.replace(' ', '-')}")
        if fault == "client stops reading":
            s = connect_small_rcvbuf(env.px.port, env.ca)
            before = footprint(env.px, env.upstream_port).mem
            # 64 x 256 KiB asked for; none of it read
            send_until_blocked(s, b"".join(req(f"/bytes/262144?m={m}&i={i}") for i in range(64)), 1.0)
            time.sleep(1.0)
            grown = footprint(env.px, env.upstream_port).mem - before
            check(grown < 4 << 20, f"the proxy buffered {grown:.0f} B for a client not reading")
            check(len(env.records_for(m)) < 64, "requests were not all run ahead of the client")
            rst(s)
            return
        s = env.connect()
        send_raw(s, req(f"/delay/400?m={m}") + b"".join(req(f"/echo?m={m}&i={i}") for i in range(8)))
        wait_until(lambda: env.records_for(m), timeout=5, msg="the first request upstream")
        if fault == "client RST":
            rst(s)
            return
        fin(s)
        kind, r = outcome(s)
        check_eq((kind, r.status if r else None), ("response", 200), "the first of the queue answered")
        expect_closed_or_more(s)
        s.close()
    return run


def expect_closed_or_more(s, timeout=8.0):
    """Reads whatever more responses come until the proxy closes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kind, r = outcome(s, timeout=max(0.1, deadline - time.monotonic()))
        if kind != "response":
            return
        check_eq(r.status, 200, "a queued request answered")
    raise TestFailure("connection not closed")


JUNK = b"\x00\x01junk\xff JUNK\r\n" * 600


def pipe_junk(fault):
    def run(env):
        m = env.marker(f"junk-{fault.replace(' ', '-')}")
        s = env.connect()
        send_raw(s, req(f"/delay/400?m={m}") + JUNK)
        wait_until(lambda: env.records_for(m), timeout=5, msg="the first request upstream")
        if fault == "client RST":
            time.sleep(0.05)
            rst(s)
            time.sleep(0.6)
        else:
            if fault == "client FIN":
                fin(s)
            kind, r = outcome(s)
            check_eq((kind, r.status if r else None), ("response", 200), "the valid request answered")
            kind, r = outcome(s)
            if kind == "response" or fault != "client FIN":   # after a FIN it may just close
                check_eq(kind, "response", "an answer to the junk")
                check_error(r, 400, "bad_request", "the junk behind it")
                expect_closed(s, "after the 400")
            s.close()
        time.sleep(0.2)
        check_eq(len(env.records_for(m)), 1, "only the valid request reached the upstream")
    return run


def pipe_upstream(fault):
    def run(env):
        m = env.marker(f"pipe-up-{fault.split()[1]}")
        s = env.connect()
        send_raw(s, req(f"/fault/{fault.split()[1]}?m={m}") + req(f"/echo?m={m}&after=1"))
        want = {"upstream reset": "upstream_unavailable", "upstream fin": "upstream_unavailable",
                "upstream garbage": "upstream_bad_response"}[fault]
        expect_error(s, 502, want, f"{fault} on the first of two")
        kind, r = outcome(s)
        if kind == "response":
            check_eq(r.status, 200, "the next queued request")
        s.close()
    return run


def test_fault_pipelined(h):
    env = FaultEnv(h)
    run_cases(env, "pipelined valid requests queued", [
        (f, pipe_valid(f)) for f in ("client RST", "client FIN", "client stops reading")])
    run_cases(env, "pipelined junk queued", [
        (f, pipe_junk(f)) for f in ("client RST", "client FIN", "none (400 after the 200)")])
    run_cases(env, "pipelined requests queued", [
        (f, pipe_upstream(f)) for f in ("upstream reset", "upstream fin", "upstream garbage")])


# --- upstream connecting -------------------------------------------------------------------

class Blackhole:
    """A listener whose accept queue is full and that never accepts: SYNs
    are dropped, so connecting to it hangs (loopback only)."""

    def __init__(self):
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(0)
        self.port = self.ls.getsockname()[1]
        self.fillers = []
        for _ in range(4):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", self.port))
            self.fillers.append(c)
        time.sleep(0.2)
        probe = socket.socket()
        probe.settimeout(0.5)
        try:
            probe.connect(("127.0.0.1", self.port))
            self.close()
            pxtest.skip("this kernel completes connects to a full accept queue")
        except (socket.timeout, OSError):
            pass
        finally:
            probe.close()

    def close(self):
        for c in self.fillers:
            c.close()
        self.ls.close()


def connecting(fault):
    def run(env):
        s = env.connect()
        t0 = time.monotonic()
        send_raw(s, req(f"/echo?m=connecting-{fault.split()[1]}"))
        if fault == "upstream stall":
            expect_error(s, 504, "upstream_timeout", "connect never completes")
            took = time.monotonic() - t0
            check(0.8 < took < 4, f"504 after {took:.2f}s (upstream_connect_ms 1 s)")
            s.close()
            return
        time.sleep(0.3)             # the proxy is connecting now
        if fault == "client RST":
            rst(s)
        else:
            fin_then(s, "FIN while connecting", 504, "upstream_timeout")
        time.sleep(1.0)             # past upstream_connect_ms
    return run


def test_fault_upstream_connecting(h):
    hole = Blackhole()
    try:
        env = FaultEnv(h, upstream_port=hole.port, serve=("/echo", 504))
        run_cases(env, "upstream connecting", [
            (f, connecting(f)) for f in ("client RST", "client FIN", "upstream stall")])
    finally:
        hole.close()


if __name__ == "__main__":
    main([test_fault_pipelined, test_fault_upstream_connecting])
