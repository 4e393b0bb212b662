#!/usr/bin/env python3
"""scripts/demo_model_server.py over plain HTTP/1.1 (no proxy involved)."""
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pxtest  # noqa: E402
from pxtest import (check, check_eq, http_request, read_response, send_raw, sse_events,  # noqa: E402
                    tcp_connect, build_request)

PREDICT = "/v1/models/half_plus_two:predict"
STREAM = "/v1/models/half_plus_two:stream"


def start_demo(h, *extra):
    port = pxtest.free_port()
    p = h.start("demo-model", [sys.executable, pxtest.DEMO_MODEL_PY, "--port", str(port), *extra],
                ready="port", port=port)
    return port, p


def post_json(sock_or_port, target, obj):
    body = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return http_request(sock_or_port, "POST", target,
                        headers=[("Content-Type", "application/json")], body=body)


def test_predict_half_plus_two(h):
    port, _ = start_demo(h)
    r = post_json(port, PREDICT, {"instances": [1.0, 2.0, 5.0]})
    check_eq((r.status, r.header("content-type")), (200, "application/json"))
    check_eq(r.json(), {"predictions": [2.5, 3.0, 4.5]})
    r = post_json(port, PREDICT, {"instances": [[1, 2], [3, 4]], "signature_name": "serving_default"})
    check_eq(r.json(), {"predictions": [[2.5, 3.0], [3.5, 4.0]]}, "nested lists elementwise")
    # Columnar format, as TF Serving: "inputs" in, "outputs" out.
    check_eq(post_json(port, PREDICT, {"inputs": [0, -4]}).json(), {"outputs": [2.0, 0.0]})
    check_eq(post_json(port, PREDICT, {"inputs": {"x": 6}}).json(), {"outputs": 5.0})
    check_eq(post_json(port, "/v1/models/half_plus_two/versions/1:predict",
                       {"instances": [10]}).json(), {"predictions": [7.0]})


def test_status_metadata_health_404(h):
    port, _ = start_demo(h)
    r = http_request(port, "GET", "/v1/models/half_plus_two")
    check_eq((r.status, r.json()), (200, {"model_version_status": [{
        "version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}))
    md = http_request(port, "GET", "/v1/models/half_plus_two/metadata").json()
    check_eq(md["model_spec"], {"name": "half_plus_two", "signature_name": "", "version": "1"})
    sig = md["metadata"]["signature_def"]["signature_def"]["serving_default"]
    check_eq((sig["inputs"]["x"]["dtype"], sig["outputs"]["y"]["dtype"], sig["method_name"]),
             ("DT_FLOAT", "DT_FLOAT", "tensorflow/serving/predict"))
    check_eq(http_request(port, "GET", "/healthz").json(), {"status": "ok"})
    r = http_request(port, "GET", "/v1/models/resnet")
    check_eq((r.status, r.json()), (404, {"error": "Servable not found for request: Latest(resnet)"}))
    r = post_json(port, "/v1/models/resnet:predict", {"instances": [1]})
    check_eq((r.status, r.json()), (404, {"error": "Servable not found for request: Latest(resnet)"}))
    r = http_request(port, "GET", "/v1/models/half_plus_two/versions/7")
    check_eq(r.json(), {"error": "Servable not found for request: Specific(half_plus_two, 7)"})
    r = http_request(port, "GET", "/nope")
    check_eq((r.status, r.json()), (404, {"error": "Malformed request: GET /nope"}))


def test_model_name_option(h):
    port, _ = start_demo(h, "--model", "m2", "--quiet")
    check_eq(post_json(port, "/v1/models/m2:predict", {"instances": [2]}).json(),
             {"predictions": [3.0]})
    check_eq(http_request(port, "GET", "/v1/models/half_plus_two").status, 404)


def test_bad_input_400(h):
    port, proc = start_demo(h)
    cases = [
        (b"{bad", "JSON Parse error: Expecting property name enclosed in double quotes. at offset: 1"),
        (b"[1, 2]", "JSON Value: is not an object"),
        (b'{"foo": 1}', "Missing 'inputs' or 'instances' key"),
        (b'{"instances": [1], "inputs": [1]}', "Not allowed to mix 'inputs' and 'instances' keys"),
        (b'{"instances": 3}', "Expecting 'instances' to be an list/array"),
        (b'{"instances": [1, [2]]}', "Tensor shape mismatch: all instances must have the same shape"),
        (b'{"instances": ["a"]}', 'Expected a number, got: "a"'),
        (b'{"instances": [true]}', "Expected a number, got: true"),
        (b'{"instances": [NaN]}', "JSON Parse error: NaN is not valid JSON"),
        (b'{"instances": [' + b"9" * 400 + b"]}", "input is not a finite float"),
        (b'{"instances": ' + b"[" * 5000 + b"]" * 5000 + b"}", None),
        (b"\xff\xfe", "JSON Parse error: body is not UTF-8"),
    ]
    with tcp_connect(port) as s:   # all on one connection: a 400 keeps it usable
        for body, err in cases:
            r = post_json(s, PREDICT, body)
            check_eq(r.status, 400, repr(body[:30]))
            if err is not None:
                check_eq(r.json(), {"error": err}, repr(body[:30]))
        check_eq(post_json(s, PREDICT, {"instances": [1]}).json(), {"predictions": [2.5]})
    # Broken framing: 400 JSON, connection closed (the body's end is unknown).
    for raw in (b"POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n" % PREDICT.encode(),
                b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
                % PREDICT.encode(),
                b"GARBAGE\r\n\r\n", b"GET /\r\n\r\n"):
        with tcp_connect(port) as s:
            send_raw(s, raw)
            r = read_response(s)
            check_eq((r.status, r.header("connection")), (400, "close"), repr(raw))
            check("error" in r.json(), "JSON error body")
            check(pxtest.is_closed(s), "closed after broken framing")
    check(proc.alive(), "server survived bad input")
    check_eq(http_request(port, "GET", "/healthz").status, 200)


def test_keepalive_and_chunked_request(h):
    port, _ = start_demo(h)
    with tcp_connect(port) as s:
        body = json.dumps({"instances": [1.0, 2.0, 5.0]}).encode()
        r = http_request(s, "POST", PREDICT, body=[body[:7], body[7:20], body[20:]], chunked=True)
        check_eq((r.status, r.json()), (200, {"predictions": [2.5, 3.0, 4.5]}))
        # trailers and chunk extensions are accepted; same connection stays usable
        send_raw(s, b"POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"5;ext=1\r\n{\"ins\r\n11\r\ntances\": [[4.0]]}\r\n0\r\nX-T: 1\r\n\r\n"
                 % PREDICT.encode())
        check_eq(read_response(s).json(), {"predictions": [[4.0]]})
        # pipelined requests on the kept-alive connection
        send_raw(s, build_request("GET", "/healthz") + build_request("GET", "/v1/models/half_plus_two"))
        check_eq(read_response(s).json(), {"status": "ok"})
        check_eq(read_response(s).status, 200)
        # Expect: 100-continue gets an interim 100 before the body is sent
        send_raw(s, b"POST %s HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                    b"Content-Length: 16\r\n\r\n" % PREDICT.encode())
        check_eq(read_response(s, skip_1xx=False, timeout=5).status, 100)
        send_raw(s, b'{"instances":[]}')
        check_eq(read_response(s).json(), {"predictions": []})


def test_stream_incremental(h):
    port, _ = start_demo(h)
    events, on_body = sse_events()
    with tcp_connect(port) as s:
        t0 = time.monotonic()
        send_raw(s, build_request("POST", STREAM, body=b'{"max_tokens": 5, "interval_ms": 300}'))
        r = read_response(s, on_body=on_body)
        check_eq((r.status, r.framing, r.header("content-type")), (200, "chunked", "text/event-stream"))
        check_eq(len(events), 6, "5 tokens + [DONE]")
        data = [json.loads(e[len("data: "):]) for _, e in events[:5]]
        check_eq([d["index"] for d in data], [0, 1, 2, 3, 4])
        check(all(isinstance(d["token"], str) and d["token"] for d in data), "tokens are strings")
        check_eq(events[-1][1], "data: [DONE]")
        check(events[0][0] - t0 < 0.25, "first token without waiting")
        gaps = [b[0] - a[0] for a, b in zip(events, events[1:5])]
        check(all(g > 0.1 for g in gaps), f"tokens buffered instead of streamed: gaps {gaps}")
        # defaults (16 tokens) on the same kept-alive connection
        events.clear()
        send_raw(s, build_request("POST", STREAM, body=b'{"interval_ms": 0}'))
        read_response(s, on_body=on_body)
        check_eq(len(events), 17, "default max_tokens 16 + [DONE]")
    for bad in (b'{"max_tokens": 4097}', b'{"interval_ms": 1001}', b'{"max_tokens": "3"}'):
        r = post_json(port, STREAM, bad)
        check_eq(r.status, 400, repr(bad))
        check("must be an integer" in r.json()["error"], r.json()["error"])


def test_stream_client_disconnect(h):
    port, proc = start_demo(h)
    s = tcp_connect(port)
    send_raw(s, build_request("POST", STREAM, body=b'{"max_tokens": 4096, "interval_ms": 1}'))
    s.recv(100)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()   # RST while the server streams
    time.sleep(0.3)
    check(proc.alive(), "server survived")
    check("Traceback" not in proc.stderr_text(), proc.stderr_text())
    check_eq(post_json(port, PREDICT, {"instances": [0]}).json(), {"predictions": [2.0]})


def test_log_lines_and_port_busy(h):
    port, proc = start_demo(h)
    http_request(port, "GET", "/healthz")
    pxtest.wait_until(lambda: '"GET /healthz HTTP/1.1" 200' in proc.stderr_text(), 5,
                      msg="access line on stderr")
    # A second server on the same port fails with a clear message, not a traceback.
    p2 = h.start("demo-dup", [sys.executable, pxtest.DEMO_MODEL_PY, "--port", str(port)])
    check_eq(p2.wait(10), 1)
    check(f"cannot listen on 127.0.0.1:{port}" in p2.stderr_text(), p2.stderr_text())
    check("Traceback" not in p2.stderr_text(), "no traceback")
    # --quiet: nothing per request
    qport, q = start_demo(h, "--quiet")
    http_request(qport, "GET", "/healthz")
    check_eq(q.stop(), 0, "SIGTERM exits cleanly")
    check("healthz" not in q.stderr_text(), q.stderr_text())


if __name__ == "__main__":
    pxtest.main([test_predict_half_plus_two, test_status_metadata_health_404, test_model_name_option,
                 test_bad_input_400, test_keepalive_and_chunked_request, test_stream_incremental,
                 test_stream_client_disconnect, test_log_lines_and_port_busy])
