#!/usr/bin/env python3
"""Self-test of the integration harness (pxtest.py) and the test upstream
(upstream.py) over plain TCP. Needs no pqproxy binary, so the proxy's own
tests can trust these tools before the proxy exists."""
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pxtest  # noqa: E402
from pxtest import (wait_until, check, check_eq, check_raises, http_request, read_response,  # noqa: E402
                    send_raw, sse_events, tcp_connect, build_request, IncompleteResponse, TestFailure)
from pxhelpers import pattern, sha  # noqa: E402

def test_echo(h):
    up = h.start_upstream()
    r = http_request(up.port, "POST", "/echo?x=1", headers=[("X-Test", "a"), ("x-lower", "B")],
                     body=b"hello")
    check_eq(r.status, 200, "status")
    check_eq(r.framing, "length", "framing")
    check_eq(int(r.header("content-length")), len(r.body), "content-length")
    got = r.json()
    check_eq(got, {"conn": 1, "method": "POST", "target": "/echo?x=1",
                   "headers": [["Host", "localhost"], ["X-Test", "a"], ["x-lower", "B"],
                               ["Content-Length", "5"]],
                   "body_len": 5, "body_sha256": sha(b"hello"), "trailers": []}, "echo body")
    check_eq(up.records(), [got], "record file")


def test_keepalive_reuse_count(h):
    up = h.start_upstream()
    with tcp_connect(up.port) as s:
        for i in range(5):
            r = http_request(s, "GET", f"/echo?i={i}")
            check_eq(r.status, 200)
            check_eq(r.json()["conn"], 1, f"request {i} on the kept-alive connection")
            check_eq(r.header("connection"), None, "no Connection: close on keep-alive")
    with tcp_connect(up.port) as s:
        r = http_request(s, "GET", "/echo", headers=[("Connection", "close")])
        check_eq(r.json()["conn"], 2, "new connection counted")
        check_eq(r.header("connection"), "close")
        check(pxtest.is_closed(s), "server closes after Connection: close")
    check_eq([(x["conn"], x["target"]) for x in up.records()],
             [(1, f"/echo?i={i}") for i in range(5)] + [(2, "/echo")], "records")


def test_pipelining(h):
    up = h.start_upstream()
    # The slow request first: its response must still come first.
    reqs = (build_request("GET", "/delay/200") +
            build_request("POST", "/echo", body=b"abc") +
            build_request("POST", "/upload-sha", body=b"xyz"))
    with tcp_connect(up.port) as s:
        send_raw(s, reqs)
        r1, r2, r3 = (read_response(s) for _ in range(3))
    check_eq(r1.json(), {"delayed_ms": 200}, "1st response")
    check_eq((r2.json()["target"], r2.json()["body_sha256"], r2.json()["conn"]),
             ("/echo", sha(b"abc"), 1), "2nd response")
    check_eq(r3.json(), {"body_len": 3, "body_sha256": sha(b"xyz")}, "3rd response")
    check_eq([x["target"] for x in up.records()], ["/delay/200", "/echo", "/upload-sha"])


def test_chunked_upload_with_trailers(h):
    up = h.start_upstream()
    pieces = [b"a" * 10, os.urandom(70000), b"z"]
    body = b"".join(pieces)
    raw = (b"POST /upload-sha HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
           b"Trailer: X-Sum\r\n\r\n" +
           b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in pieces) +
           b"0\r\nX-Sum: 42\r\n\r\n")
    with tcp_connect(up.port) as s:
        send_raw(s, raw)
        r = read_response(s)
        # build_request's own chunked encoding, on the same connection
        r2 = http_request(s, "POST", "/echo", body=[b"he", b"llo"], chunked=True)
    check_eq(r.json(), {"body_len": len(body), "body_sha256": sha(body)}, "upload-sha")
    check_eq((r2.json()["body_len"], r2.json()["body_sha256"]), (5, sha(b"hello")), "echo")
    recs = up.records()
    check_eq(len(recs), 2)
    check_eq((recs[0]["body_len"], recs[0]["body_sha256"], recs[0]["trailers"]),
             (len(body), sha(body), [["X-Sum", "42"]]), "record of chunked upload")
    check_eq(recs[0]["headers"], [["Host", "x"], ["Transfer-Encoding", "chunked"],
                                  ["Trailer", "X-Sum"]], "recorded headers")


def test_bytes_large_bounded_rss(h):
    up = h.start_upstream()
    total = 256 * 1024 * 1024
    state = {"off": 0, "bad": None, "rss_max": 0, "next_sample": 0}

    def on_body(piece):
        off = state["off"]
        if state["bad"] is None and piece != pattern(off, len(piece)):
            state["bad"] = off
        state["off"] = off + len(piece)
        if state["off"] >= state["next_sample"]:  # every 16 MiB
            state["rss_max"] = max(state["rss_max"], up.proc.rss_kb())
            state["next_sample"] += 16 << 20

    start = time.monotonic()
    r = http_request(up.port, "GET", f"/bytes/{total}", on_body=on_body, timeout=120)
    check_eq((r.status, r.framing, r.header("content-length")), (200, "length", str(total)))
    check_eq(r.body_len, total, "bytes received")
    check(state["bad"] is None, f"pattern mismatch at offset {state['bad']}")
    check(state["rss_max"] > 0, "RSS sampled")
    check(state["rss_max"] < 60 * 1024, f"upstream RSS {state['rss_max']} KiB >= 60 MB")
    print(f"  256 MiB in {time.monotonic() - start:.1f}s, upstream max RSS {state['rss_max']} KiB")

    # chunked variant, with a size that is no multiple of the 64 KiB piece
    n = 1_000_003
    r = http_request(up.port, "GET", f"/bytes/{n}?chunked=1")
    check_eq((r.framing, r.header("content-length"), r.body_len), ("chunked", None, n))
    check(r.body == pattern(0, n), "chunked pattern")
    check_eq(r.raw.count(b"\r\n10000\r\n"), n // 65536, "64 KiB chunks")


def test_sse_incremental(h):
    up = h.start_upstream()
    events, on_body = sse_events()
    t0 = time.monotonic()
    r = http_request(up.port, "GET", "/sse?n=5&interval_ms=300", on_body=on_body)
    check_eq((r.status, r.framing, r.header("content-type")), (200, "chunked", "text/event-stream"))
    check_eq(len(events), 6, "5 events + [DONE]")
    check_eq([json.loads(e[len("data: "):])["index"] for _, e in events[:5]], [0, 1, 2, 3, 4])
    check_eq(events[5][1], "data: [DONE]")
    check(events[0][0] - t0 < 0.25, f"first event late: {events[0][0] - t0:.3f}s")
    gaps = [b[0] - a[0] for a, b in zip(events, events[1:5])]
    check(all(g > 0.1 for g in gaps), f"events not spread over time (buffered?): gaps {gaps}")
    check(events[4][0] - events[0][0] > 0.9, "4 intervals of 300 ms")


def test_reset_after(h):
    up = h.start_upstream()
    with tcp_connect(up.port) as s:
        send_raw(s, build_request("GET", "/reset-after/3000"))
        e = check_raises(IncompleteResponse, read_response, s)
    check(e.reset, f"expected RST, got: {e}")
    check_eq((e.partial.status, e.partial.header("content-length")), (200, "4000"))
    check_eq(e.partial.body, pattern(0, 3000), "bytes before the reset")
    check_eq([x["target"] for x in up.records()], ["/reset-after/3000"])


def test_continue(h):
    up = h.start_upstream()
    with tcp_connect(up.port) as s:
        send_raw(s, b"POST /continue HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                    b"Content-Length: 5\r\n\r\n")
        interim = read_response(s, skip_1xx=False, timeout=5)   # before any body byte
        check_eq((interim.status, interim.raw), (100, b"HTTP/1.1 100 Continue\r\n\r\n"))
        check_eq(up.records(), [], "no record before the body")
        send_raw(s, b"hello")
        r = read_response(s)
        check_eq((r.status, r.json()["continue_sent"], r.json()["body_sha256"]),
                 (200, True, sha(b"hello")))
        # Without Expect, no 100; read_response's default skips 1xx and would list it.
        r = http_request(s, "POST", "/continue", body=b"x")
        check_eq((r.interim, r.json()["continue_sent"]), ([], False))


def test_no_length_close_delimited(h):
    up = h.start_upstream()
    with tcp_connect(up.port) as s:
        r = http_request(s, "GET", "/no-length?n=5000")
        check_eq((r.status, r.framing), (200, "close"))
        check_eq((r.header("content-length"), r.header("transfer-encoding")), (None, None))
        check_eq(r.body, pattern(0, 5000))
        check(pxtest.is_closed(s), "socket closed after the body")


def test_status_delay_slow_headers_404(h):
    up = h.start_upstream()
    r = http_request(up.port, "GET", "/status/418")
    check_eq((r.status, r.json()), (418, {"status": 418}))
    r = http_request(up.port, "GET", "/status/204")
    check_eq((r.status, r.body, r.framing), (204, b"", "none"))
    t = time.monotonic()
    r = http_request(up.port, "GET", "/delay/300")
    check(time.monotonic() - t >= 0.3, "delay honoured")
    check_eq(r.json(), {"delayed_ms": 300})
    with tcp_connect(up.port) as s:
        t = time.monotonic()
        send_raw(s, build_request("GET", "/slow-headers/500"))
        first = s.recv(100)
        t_first = time.monotonic() - t
        check_eq(first, b"HTTP/1.1 200 OK\r\n", "status line alone first")
        check(t_first < 0.4, f"status line late: {t_first:.3f}s")
        rest = b""
        while not rest.endswith(b"}\n"):
            piece = s.recv(1000)
            check(piece, "closed early")
            rest += piece
        check(time.monotonic() - t >= 0.5, "rest of the head after the delay")
        check(rest.startswith(b"Content-Type: application/json\r\n"), repr(rest))
    r = http_request(up.port, "GET", "/nope")
    check_eq((r.status, r.json()["error"]), (404, "not found"))
    r = http_request(up.port, "HEAD", "/echo")
    check_eq((r.status, r.body, r.framing), (200, b"", "none"))


def test_close_before_response(h):
    up = h.start_upstream()
    with tcp_connect(up.port) as s:
        send_raw(s, build_request("POST", "/close-before-response", body=b"data"))
        data, reset = pxtest.read_until_closed(s, timeout=5)
        check_eq((data, reset), (b"", False), "closed with FIN, no bytes")
    check_eq([(x["target"], x["body_len"]) for x in up.records()],
             [("/close-before-response", 4)], "request still fully received")


def test_bad_requests_not_recorded(h):
    up = h.start_upstream()
    cases = [b"GARBAGE\r\n\r\n",
             b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
             b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 2\r\n\r\nab",
             b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
             b"GET /echo HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n"]
    for raw in cases:
        with tcp_connect(up.port) as s:
            send_raw(s, raw)
            r = read_response(s)
            check_eq((r.status, r.header("connection")), (400, "close"), repr(raw))
            check("error" in r.json(), "JSON error body")
            check(pxtest.is_closed(s), "closed after 400")
    check_eq(up.records(), [], "malformed requests are not recorded")


def test_unix_socket(h):
    up = h.start_upstream(unix=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(up.unix_path)
        r = http_request(s, "GET", "/echo")
    check_eq((r.status, r.json()["conn"]), (200, 1))


def test_proc_cleanup_kills_group(h):
    # A shell with a background child: stop() must take down the whole group.
    p = h.start("sleeper", ["sh", "-c", "sleep 300 & echo started; wait"],
                ready="line", line="^started$")
    check(p.rss_kb() > 0, "rss_kb reads VmRSS")
    pgid = p.pid
    check_eq(len(pxtest.group_members(pgid)), 2, "sh and sleep in the group")
    check_eq(p.stop(), -signal.SIGTERM, "exit status of sh")
    # The orphaned sleep may stay a zombie if PID 1 does not reap; zombies are dead.
    wait_until(lambda: not pxtest.group_members(pgid), 5, msg="group gone")
    check(p not in pxtest._live, "unregistered after stop")
    # Readiness wait fails fast (not after the timeout) when the process dies.
    port = pxtest.free_port()
    t = time.monotonic()
    check_raises(TestFailure, h.start, "dies", ["sh", "-c", "exit 3"], ready="port", port=port,
                 timeout=10)
    check(time.monotonic() - t < 5, "noticed the exit early")
    check(len({pxtest.free_port() for _ in range(20)}) == 20, "free_port never repeats")
    check_eq(pxtest.deep_merge({"a": {"b": 1, "c": 2}, "d": 1}, {"a": {"c": 3}, "d": None}),
             {"a": {"b": 1, "c": 3}})


def test_proxy_path_with_stand_in(h):
    """certgen / start_proxy / tls_connect / http_request over TLS, with
    fake_pqproxy.py standing in for the binary (classical TLS relay)."""
    pxtest.require_exe("openssl")
    saved = os.environ.get("PQPROXY_BIN")
    os.environ["PQPROXY_BIN"] = os.path.join(pxtest.HERE, "fake_pqproxy.py")
    try:
        up = h.start_upstream()
        px = h.start_proxy({"upstream": {"pool_max_idle": 4}, "admin": None})
    finally:
        if saved is None:
            del os.environ["PQPROXY_BIN"]
        else:
            os.environ["PQPROXY_BIN"] = saved
    certs = h.certgen()
    check_eq(px.config["upstream"], {"address": f"127.0.0.1:{up.port}", "pool_max_idle": 4},
             "overrides deep-merged")
    check_eq(("admin" in px.config, px.admin_port), (False, None), "None deletes a key")
    check_eq(px.config["tls"]["certificates"], [{"cert": os.path.join(certs, "server.crt"),
                                                 "key": os.path.join(certs, "server.key")}])
    with open(px.config_path) as f:
        check_eq(json.load(f), px.config, "config file written")
    ca = os.path.join(certs, "ca.crt")
    sent = received = 0
    with pxtest.tls_connect(px.port, ca, groups="secp256r1") as s:
        check_eq(s.version(), "TLSv1.3")
        for i in range(3):
            r = http_request(s, "POST", "/echo", body=b"over tls %d" % i)
            check_eq((r.status, r.json()["conn"], r.json()["body_len"]), (200, 1, 10))
            sent += len(build_request("POST", "/echo", body=b"over tls %d" % i))
            received += len(r.raw)
    e = check_raises(ssl.SSLCertVerificationError, pxtest.tls_connect, px.port, ca,
                     server_hostname="other.example")
    check("other.example" in str(e), str(e))
    # conn 1 is start_proxy's readiness probe (a TCP connect + close).
    lines = sorted(px.wait_access_log(3), key=lambda x: x["conn"])
    check_eq((lines[0]["conn"], lines[0]["bytes_in"]), (1, 0), "readiness probe")
    check_eq(lines[1], {"conn": 2, "bytes_in": sent, "bytes_out": received}, "access log")
    check_eq(lines[2]["conn"], 3)
    check("alert" in lines[2]["error"].lower(), lines[2])
    check_eq(px.stop(), 0, "SIGTERM exit")


def test_runner_output_and_logs(h):
    # A throwaway test file: one pass, one fail (with a started process), one skip.
    script = h.path("test_sample.py")
    with open(script, "w") as f:
        f.write(textwrap.dedent(f"""\
            import sys
            sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})
            import pxtest
            def test_pass(h):
                pxtest.check_eq(1, 1)
            def test_fail(h):
                h.start("talker", ["sh", "-c", "echo marker-out; echo marker-err >&2; sleep 300"],
                        ready="line", line="marker-out")
                pxtest.check_eq(2, 3, "two")
            def test_skip():
                pxtest.require_exe("no-such-program-pxtest")
            pxtest.main([test_pass, test_fail, test_skip])
            """))
    # Its kept temp dir (it fails on purpose) goes inside ours, removed with it.
    env = dict(os.environ, TMPDIR=h.path())
    r = subprocess.run([sys.executable, script], capture_output=True, timeout=60, cwd="/", env=env)
    out = r.stdout.decode()
    lines = out.splitlines()
    check_eq(r.returncode, 1, "exit code with a failure")
    check_eq(lines[-1], "1 passed, 1 failed, 1 skipped", "summary line")
    check(lines[0].startswith("ok test_pass"), out)
    check("FAIL test_fail: two: expected 3, got 2" in lines, out)
    check("SKIP test_skip: no-such-program-pxtest not installed" in lines, out)
    check("marker-out" in out and "marker-err" in out, "logs of started processes printed")
    check(f"temp dir kept: {h.path()}" in out, "failed run keeps its temp dir")
    r = subprocess.run([sys.executable, script, "test_pass"], capture_output=True, timeout=60,
                       env=env)
    check_eq((r.returncode, r.stdout.decode().splitlines()[-1]), (0, "1 passed, 0 failed"))
    r = subprocess.run([sys.executable, script, "test_skip"], capture_output=True, timeout=60,
                       env=env)
    check_eq((r.returncode, r.stdout.decode().splitlines()[-1]),
             (pxtest.SKIP_EXIT, "0 passed, 0 failed, 1 skipped"), "all skipped: CTest's skip code")


if __name__ == "__main__":
    pxtest.main([test_echo, test_keepalive_reuse_count, test_pipelining,
                 test_chunked_upload_with_trailers, test_bytes_large_bounded_rss,
                 test_sse_incremental, test_reset_after, test_continue,
                 test_no_length_close_delimited, test_status_delay_slow_headers_404,
                 test_close_before_response, test_bad_requests_not_recorded, test_unix_socket,
                 test_proc_cleanup_kills_group, test_proxy_path_with_stand_in,
                 test_runner_output_and_logs])
