#!/usr/bin/env python3
"""Fault injection, request side: first the known abort (a request, junk
behind it, a client reset while the model is slow); then for each phase
(TLS handshake, request head, request body plain and chunked) a client
that resets, half-closes or stalls, and the upstream faults that fit. After
every case the proxy must be alive, serve a normal request, and return to
its baseline fds and heap (pxfaults.py). test_faults_forwarding.py covers
pipelined requests and the upstream connect, test_faults_upstream.py the
response, test_faults_jobs.py signature jobs, drain and reload."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pxtest  # noqa: E402
from pxtest import (TestFailure, build_request, check, check_eq, check_in, main, read_response,  # noqa: E402
                    send_raw, wait_until)
from pxfaults import (BODY_LEN, HEAD, MEM_SLACK, FaultEnv, body_start, client_gives_up,  # noqa: E402
                      client_hello, expect_closed, expect_error, fin, footprint, outcome, rst,
                      run_cases, send_until_blocked)
from pxhelpers import check_error  # noqa: E402


def shipped_config_overrides():
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
    env = FaultEnv(h, shipped_config_overrides(), short_timeouts=False, warm_paths=False,
                   warm_requests=False)
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
    its TLS state) is seen as not back to baseline, and five of them (their
    heap alone) are more than the heap slack."""
    env = FaultEnv(h)
    held = [env.connect() for _ in range(5)]
    try:
        for s in held:
            send_raw(s, build_request("GET", "/echo"))
            check_eq(read_response(s).status, 200)
        time.sleep(1.5)             # idle: their buffers are released
        grown = footprint(env.px, env.upstream_port).mem - env.base.mem
        check(grown > MEM_SLACK, f"5 idle connections hold {grown:.0f} B, within the slack")
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
    # A sanitizer report on the proxy's stderr fails the case (ASan, UBSan
    # and LSan write there); put one there, then take it away again.
    size = os.path.getsize(env.px.proc.err_path)
    with open(env.px.proc.err_path, "ab") as f:
        f.write(b"test.c:1:2: runtime error: planted by test_fault_checks_can_fail\n")
    try:
        problem = env.after_case()
        check(problem and "sanitizer report" in problem and "planted" in problem,
              f"a sanitizer line is reported: {problem!r}")
    finally:
        os.truncate(env.px.proc.err_path, size)
        env.stderr_mark = len(env.px.sanitizer_errors())


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
        length = 64 << 20 if fault in ("upstream stall", "upstream hold") else BODY_LEN
        send_raw(s, body_start(m, path, chunked, length))
        if fault in ("client RST", "client FIN"):
            client_gives_up(s, fault, "mid-body")
        elif fault == "client stalls":
            expect_error(s, 408, "request_timeout", "stalled body")
            s.close()
        elif fault in ("upstream stall", "upstream hold"):
            # The upstream answers nothing (stall: reads and drops the body;
            # hold: reads none of it): the upload must be held back, not
            # buffered by the proxy; then the client gives up, or (hold)
            # waits and is told the model server timed out
            # (upstream_idle_ms): held back, the client is not the idle
            # one (body_idle_ms is as short).
            before = footprint(env.px, env.upstream_port).mem
            send_until_blocked(s, b"b" * (16 << 20), 1.5)
            grown = footprint(env.px, env.upstream_port).mem - before
            check(grown < 2 << 20, f"the proxy buffered {grown:.0f} B of an unread upload")
            if fault == "upstream stall":
                rst(s)
            else:
                r = expect_error(s, 504, "upstream_timeout", fault)
                check_in("took none of the request", r.json()["detail"], fault)
                s.close()
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
               "upstream garbage", "upstream stall", "upstream hold")


def test_fault_request_body(h):
    env = FaultEnv(h)
    run_cases(env, "mid request body (Content-Length)",
              [(f, body_case(f, False)) for f in BODY_FAULTS])
    run_cases(env, "mid request body (chunked)",
              [(f, body_case(f, True)) for f in BODY_FAULTS])


if __name__ == "__main__":
    main([test_reset_after_junk_while_upstream_slow, test_fault_checks_can_fail,
          test_fault_handshake, test_fault_request_head, test_fault_request_body])
