#!/usr/bin/env python3
"""Fault injection, request side: for each phase of an exchange (TLS
handshake, request head, request body plain and chunked, pipelined
requests, upstream connect), a client that resets, half-closes, stalls or
stops reading, and the upstream faults that fit those phases. After every
case the proxy must be alive, serve a normal request, and return to its
baseline fds and heap (pxfaults.py). test_faults_upstream.py covers the
response, test_faults_jobs.py signature jobs, drain and reload."""
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pxtest  # noqa: E402
from pxtest import (TestFailure, build_request, check, check_eq, main, read_response,  # noqa: E402
                    send_raw, wait_until)
from pxfaults import (BODY_LEN, HEAD, MEM_SLACK, FaultEnv, body_start, client_gives_up,  # noqa: E402
                      client_hello, connect_small_rcvbuf, expect_closed, expect_error, fin,
                      fin_then, footprint, outcome, req, rst, run_cases, send_until_blocked)
from pxhelpers import check_error  # noqa: E402


def shipped_config_overrides(upstream_port=None):
    """config/pqproxy.json as shipped, on this test's ports and certificates;
    pq_policy prefer because Python's ssl has no hybrid group; drain_ms
    short so the test's SIGTERM ends it quickly."""
    with open(os.path.join(pxtest.SOURCE_DIR, "config", "pqproxy.json")) as f:
        cfg = json.load(f)
    for key in ("listen",):
        cfg.pop(key)
    cfg["tls"].pop("certificates")
    cfg["tls"]["pq_policy"] = "prefer"
    cfg["upstream"].pop("address")
    cfg["admin"].pop("listen")
    cfg["log"].pop("access_log")
    cfg["timeouts"]["drain_ms"] = 3000
    cfg["workers"] = 2
    return cfg


def test_reset_after_junk_while_upstream_slow(h):
    """The known defect: a request, 200 KB of junk behind it on the same TLS
    connection, then RST while the model takes 0.5 s. It once aborted the
    whole process (uv_close: Assertion `!uv__is_closing(handle)' failed)."""
    h.start_upstream(args=["--delay-ms", "500"])
    env = FaultEnv(h, shipped_config_overrides(), short_timeouts=False, warm_paths=False)
    junk = (b"\x00junk\xff JUNK " * 20000)[:200 * 1024]

    def junk_then_rst(env):
        s = env.connect()
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + junk)
        wait_until(lambda: env.up.records(), timeout=5, msg="the request reached the model")
        time.sleep(0.1)
        rst(s)
        time.sleep(0.8)             # the model answers into the reset connection
    run_cases(env, "queued junk, upstream slow", [("client RST", junk_then_rst)])


def test_fault_checks_can_fail(h):
    """The per-case checks are not vacuous: a connection left open (one fd,
    its TLS state) is seen as not back to baseline, and three of them (their
    heap alone) are more than the heap slack."""
    env = FaultEnv(h)
    held = [env.connect() for _ in range(3)]
    try:
        for s in held:
            send_raw(s, build_request("GET", "/echo"))
            check_eq(read_response(s).status, 200)
        time.sleep(1.5)             # idle: their buffers are released
        grown = footprint(env.px, env.upstream_port).mem - env.base.mem
        check(grown > MEM_SLACK, f"3 idle connections hold {grown:.0f} B, within the slack")
    finally:
        for s in held:
            s.close()
    env.check_back_to_baseline()
    s = env.connect()
    try:
        send_raw(s, build_request("GET", "/bytes/300000"))
        check_eq(read_response(s).status, 200)
        e = None
        try:
            env.check_back_to_baseline(timeout=2.5)
        except TestFailure as x:
            e = x
        check(e is not None, "an open connection is not back to baseline")
        check("fds" in str(e), str(e))
        held = footprint(env.px, env.upstream_port)
        check_eq(held.fixed, env.base.fixed + 1, "one more fd while the connection is open")
        print(f"one idle connection: heap +{held.mem - env.base.mem:.0f} B")
    finally:
        s.close()
    env.check_back_to_baseline()


# --- handshake ----------------------------------------------------------------------

def hs_rst(env):
    rst(client_hello(env.px.port, env.ca))


def hs_partial_rst(env):
    s = client_hello(env.px.port, env.ca, partial=True)
    time.sleep(0.1)
    rst(s)


def hs_fin(env):
    s = client_hello(env.px.port, env.ca)
    fin(s)
    expect_closed(s, "half-closed mid-handshake")
    s.close()


def hs_stall(env):
    s = client_hello(env.px.port, env.ca)
    t0 = time.monotonic()
    expect_closed(s, "stalled mid-handshake", timeout=6)
    took = time.monotonic() - t0
    check(took > 1.0, f"closed after {took:.2f}s, before handshake_ms (1.5 s)")
    s.close()


def hs_partial_stall(env):
    s = client_hello(env.px.port, env.ca, partial=True)
    expect_closed(s, "half a ClientHello, then nothing", timeout=6)
    s.close()


def test_fault_handshake(h):
    env = FaultEnv(h)
    run_cases(env, "TLS handshake", [
        ("client RST", hs_rst), ("client RST in the ClientHello", hs_partial_rst),
        ("client FIN", hs_fin), ("client stalls", hs_stall),
        ("client stalls in the ClientHello", hs_partial_stall)])


# --- request head and body ------------------------------------------------------------

def refused_upstream(env, marker):
    """Nothing complete with marker in its target reached the upstream (an
    early-fault record only says the head arrived)."""
    time.sleep(0.2)
    got = [r for r in env.records_for(marker) if not r.get("early")]
    check_eq(got, [], f"requests with {marker} the upstream fully received")


def head_case(fault):
    def run(env):
        m = env.marker(f"head-{fault.split()[1]}").encode()
        s = env.connect()
        send_raw(s, HEAD % m)
        if fault in ("client RST", "client FIN"):
            client_gives_up(s, fault, "mid-head")
        else:
            expect_error(s, 408, "request_timeout", "stalled head")
            s.close()
        refused_upstream(env, m.decode())
    return run


def body_case(fault, chunked):
    """Half a request body, then the fault. Upstream faults use
    /early-fault/<how>: the upstream acts on the head, before the body."""
    def run(env):
        m = env.marker(f"body-{'chunked' if chunked else 'plain'}-{fault.replace(' ', '-')}")
        upstream = fault.startswith("upstream")
        path = f"/early-fault/{fault.split()[1]}" if upstream else "/upload-sha"
        s = env.connect()
        length = 64 << 20 if fault == "upstream stall" else BODY_LEN
        send_raw(s, body_start(m, path, chunked, length))
        if fault in ("client RST", "client FIN"):
            client_gives_up(s, fault, "mid-body")
        elif fault == "client stalls":
            expect_error(s, 408, "request_timeout", "stalled body")
            s.close()
        elif fault == "upstream stall":
            # The upstream reads nothing: the upload must be held back, not
            # buffered by the proxy; then the client gives up.
            before = footprint(env.px, env.upstream_port).mem
            send_until_blocked(s, b"b" * (16 << 20), 1.5)
            grown = footprint(env.px, env.upstream_port).mem - before
            check(grown < 2 << 20, f"the proxy buffered {grown:.0f} B of an unread upload")
            rst(s)
        else:
            kind, r = outcome(s)
            if kind == "response":     # else closed: the request could not finish
                want = "upstream_bad_response" if fault == "upstream garbage" else None
                body = check_error(r, 502, want or r.json().get("error"), fault)
                check(body["error"] in ("upstream_unavailable", "upstream_bad_response"), body)
            else:
                check_eq(kind, "closed", f"{fault}: no partial response")
            s.close()
        refused_upstream(env, m)
    return run


def test_fault_request_head(h):
    env = FaultEnv(h)
    run_cases(env, "mid request head", [
        (f, head_case(f)) for f in ("client RST", "client FIN", "client stalls (408)")])


BODY_FAULTS = ("client RST", "client FIN", "client stalls", "upstream reset", "upstream fin",
               "upstream garbage", "upstream stall")


def test_fault_request_body(h):
    env = FaultEnv(h)
    run_cases(env, "mid request body (Content-Length)",
              [(f, body_case(f, False)) for f in BODY_FAULTS])
    run_cases(env, "mid request body (chunked)",
              [(f, body_case(f, True)) for f in BODY_FAULTS])


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


def main_tests():
    return [test_reset_after_junk_while_upstream_slow, test_fault_checks_can_fail,
            test_fault_handshake, test_fault_request_head, test_fault_request_body,
            test_fault_pipelined, test_fault_upstream_connecting]


if __name__ == "__main__":
    main(main_tests())
