#!/usr/bin/env python3
"""pqproxy request and response bodies: Content-Length and chunked both ways,
close-delimited responses re-framed as chunked, HEAD, 204/304,
Expect: 100-continue, and SSE streamed without buffering."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pxtest import (check, check_eq, build_request, http_request, main, read_response,  # noqa: E402
                    send_raw, sse_events)
from pxhelpers import (Env, check_error, closed_by_peer, pattern, sha, still_open,  # noqa: E402
                       upstream_header)

def test_content_length_request(h):
    e = Env(h)
    body = os.urandom(300_000)
    with e.connect() as s:
        r = http_request(s, "POST", "/upload-sha", body=body)
        check_eq(r.json(), {"body_len": len(body), "body_sha256": sha(body)})
        r = http_request(s, "POST", "/echo", body=b"")
        check_eq((r.status, r.json()["body_len"]), (200, 0), "empty Content-Length body")
        check_eq(upstream_header(r.json(), "content-length"), ["0"])
    lines = e.access(2)
    check_eq(lines[0]["bytes_in"], len(body))


def test_chunked_request(h):
    e = Env(h)
    pieces = [b"a", os.urandom(20000), b"", os.urandom(1), os.urandom(70000)]
    whole = b"".join(pieces)
    with e.connect() as s:
        r = http_request(s, "POST", "/echo", body=pieces, chunked=True)
        got = r.json()
        check_eq((r.status, got["body_len"], got["body_sha256"]), (200, len(whole), sha(whole)))
        check_eq(upstream_header(got, "transfer-encoding"), ["chunked"], "re-chunked upstream")
        check_eq(upstream_header(got, "content-length"), [])
        # Chunk extensions and trailers from the client: accepted, extensions
        # not forwarded, trailers forwarded (test_trailers.py: which ones).
        raw = (b"POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
        send_raw(s, raw)
        r = read_response(s)
        got = r.json()
        check_eq((r.status, got["body_len"], got["body_sha256"], got["trailers"]),
                 (200, 11, sha(b"hello world"), [["X-Trailer", "t"]]))
        # Sent slowly, one chunk per write.
        send_raw(s, b"POST /upload-sha HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n")
        for i in range(5):
            time.sleep(0.05)
            send_raw(s, b"%x\r\n%s\r\n" % (1000, pattern(i * 1000, 1000)))
        send_raw(s, b"0\r\n\r\n")
        r = read_response(s)
        check_eq(r.json(), {"body_len": 5000, "body_sha256": sha(pattern(0, 5000))})
    check_eq(len(e.records()), 3)


def test_chunked_response(h):
    e = Env(h)
    with e.connect() as s:
        for n in (0, 1, 65536, 1_000_003):
            r = http_request(s, "GET", f"/bytes/{n}?chunked=1")
            check_eq((r.status, r.framing, r.body_len), (200, "chunked", n), f"/bytes/{n}")
            check(r.body == pattern(0, n), f"body of {n} bytes intact")
        r = http_request(s, "GET", "/bytes/1000000")
        check_eq((r.framing, r.header("content-length")), ("length", "1000000"))
        check(r.body == pattern(0, 1_000_000), "length-delimited body intact")
    lines = e.access(5)
    check_eq([x["bytes_out"] for x in lines], [0, 1, 65536, 1_000_003, 1_000_000])


def test_close_delimited_response(h):
    e = Env(h)
    with e.connect() as s:
        r = http_request(s, "GET", "/no-length?n=300000")
        check_eq((r.status, r.framing, r.body_len), (200, "chunked", 300000),
                 "close-delimited response re-framed as chunked for HTTP/1.1")
        check(r.body == pattern(0, 300000), "body intact")
        check(still_open(s), "the client connection survives the upstream's close")
        r = http_request(s, "GET", "/echo")
        check_eq(r.status, 200, "next request on the same connection")
        check_eq(r.json()["conn"], 2, "the closed upstream link was not pooled")
        r = http_request(s, "GET", "/bytes/10", timeout=5)
        check_eq((r.status, r.body), (200, pattern(0, 10)), "and the one after")
    lines = e.access(3)
    check_eq([(x["path"], x["status"]) for x in lines],
             [("/no-length?n=300000", 200), ("/echo", 200), ("/bytes/10", 200)],
             "each exchange completed and logged")
    check_eq((lines[0]["bytes_out"], lines[2]["bytes_out"]), (300000, 10))
    with e.connect() as s:
        send_raw(s, b"GET /no-length?n=5000 HTTP/1.0\r\nHost: localhost\r\n\r\n")
        r = read_response(s)
        check_eq((r.status, r.framing, r.body_len), (200, "close", 5000), "HTTP/1.0 client")


def test_head(h):
    e = Env(h)
    with e.connect() as s:
        r = http_request(s, "HEAD", "/bytes/12345")
        check_eq((r.status, r.header("content-length"), r.body), (200, "12345", b""))
        r = http_request(s, "HEAD", "/bytes/777?chunked=1")
        check_eq((r.status, r.body), (200, b""))
        # The next response must not be confused by a body that never came.
        r = http_request(s, "GET", "/bytes/10")
        check_eq((r.status, r.body), (200, pattern(0, 10)))
        check(still_open(s), "still open")
    check_eq([x["method"] for x in e.records()], ["HEAD", "HEAD", "GET"])


def test_204_304(h):
    e = Env(h)
    with e.connect() as s:
        for code in (204, 304):
            r = http_request(s, "GET", f"/status/{code}")
            check_eq((r.status, r.body), (code, b""), str(code))
            check(r.header("transfer-encoding") is None, f"{code} has no chunked framing")
        r = http_request(s, "GET", "/echo")
        check_eq(r.status, 200, "the connection is in sync after bodiless responses")
        check_eq(r.json()["conn"], 1)


def test_expect_100_continue(h):
    e = Env(h, {"http": {"max_body_bytes": 100_000}})
    body = os.urandom(50_000)
    with e.connect() as s:
        head = (b"POST /upload-sha HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body))
        send_raw(s, head)
        r = read_response(s, skip_1xx=False, timeout=5)
        check_eq(r.status, 100, "100 Continue before the body is sent")
        send_raw(s, body)
        r = read_response(s)
        check_eq(r.json(), {"body_len": len(body), "body_sha256": sha(body)})
        check_eq(r.interim, [], "exactly one 100 (the upstream's own is not relayed again)")
        # The upstream answers 100 itself on /continue: the client still sees one.
        send_raw(s, b"POST /continue HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n"
                    b"Content-Length: 3\r\n\r\n")
        r = read_response(s, skip_1xx=False, timeout=5)
        check_eq(r.status, 100)
        send_raw(s, b"abc")
        r = read_response(s)
        check_eq((r.status, r.json()["body_len"], r.interim), (200, 3, []))
    n_before = len(e.records())
    with e.connect() as s:
        # Declared length over the limit: 413 at once, no 100, nothing upstream.
        send_raw(s, b"POST /upload-sha HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n"
                    b"Content-Length: 100001\r\n\r\n")
        r = read_response(s, skip_1xx=False, timeout=5)
        check_error(r, 413, "body_too_large", "declared length over max_body_bytes")
        check(closed_by_peer(s), "connection closed after the 413")
    time.sleep(0.2)
    check_eq(len(e.records()), n_before, "nothing reached the upstream")


def test_sse_streamed(h):
    e = Env(h)
    n, interval = 8, 150
    with e.connect() as s:
        send_raw(s, build_request("GET", f"/sse?n={n}&interval_ms={interval}",
                                  headers=[("Accept", "text/event-stream")]))
        arrivals, on_body = sse_events()
        t0 = time.monotonic()
        r = read_response(s, on_body=on_body, timeout=20)
        check_eq((r.status, r.header("content-type"), r.framing),
                 (200, "text/event-stream", "chunked"))
    check_eq(len(arrivals), n + 1, "every event and [DONE]")
    check_eq(arrivals[-1][1], "data: [DONE]")
    for i, (_, ev) in enumerate(arrivals[:-1]):
        check_eq(json.loads(ev[len("data: "):])["index"], i)
    first, last = arrivals[0][0] - t0, arrivals[-2][0] - t0
    span = (n - 1) * interval / 1000
    check(first < span / 2, f"first event after {first:.3f}s: buffered? (span {span:.2f}s)")
    check(last - first > span * 0.6, f"events arrived over {last - first:.3f}s, expected ~{span}")
    gaps = [b[0] - a[0] for a, b in zip(arrivals, arrivals[1:-1])]
    check(sum(g > interval / 2000 for g in gaps) >= len(gaps) - 1,
          f"events arrive one by one, gaps {gaps}")


if __name__ == "__main__":
    main([test_content_length_request, test_chunked_request, test_chunked_response,
          test_close_delimited_response, test_head, test_204_304, test_expect_100_continue,
          test_sse_streamed])
