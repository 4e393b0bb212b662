#!/usr/bin/env python3
"""gRPC end to end through pqproxy: @grpc/grpc-js on Node 24
(tests/integration/peers/grpc_client.mjs) over hybrid TLS with ALPN h2 ->
pqproxy (upstream.protocol "h2c") -> the demo gRPC model server
(scripts/demo_grpc_model_server.py, Debian's python3-grpcio). Unary and
the three streaming kinds with their trailers, a large client-streaming
upload at bounded proxy memory, the upstream killed mid-stream (an error
status, not a hang), a graceful upstream restart (GOAWAY), and an
HTTP/1.1 client translated for the h2c upstream."""
import base64
import os
import signal
import struct
import sys
import threading
import time
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pxtest  # noqa: E402
from pxtest import check, check_eq, check_in  # noqa: E402
from pxhelpers import grpc_python  # noqa: E402
from test_grpc_demo import (OK, NOT_FOUND, SERVER, STREAM_TEST, call, check_status,  # noqa: E402
                            infer_request, varint_len)

UNAVAILABLE, INTERNAL = 14, 13


def start_grpc(h, port=None):
    """The demo gRPC server; returns (its Proc, its port)."""
    port = port or pxtest.free_port()
    p = h.start("grpc-model", [grpc_python(), SERVER, "--port", str(port)], ready="port", port=port)
    return p, port


def grpc_proxy(h, gport, **extra):
    up = types.SimpleNamespace(port=gport)
    cfg = pxtest.deep_merge({"tls": {"pq_policy": "require", "alpn": ["h2", "http/1.1"]},
                             "upstream": {"protocol": "h2c"}}, extra)
    return h.start_proxy(cfg, upstream=up)


def pcall(h, proxy, method, request=None, **opts):
    """One gRPC call through the proxy (TLS, ALPN h2)."""
    return call(h, proxy.port, method, request, ca=os.path.join(h.certgen(), "ca.crt"), **opts)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_unary_and_trailers(h):
    server, gport = start_grpc(h)
    proxy = grpc_proxy(h, gport)
    res = pcall(h, proxy, "ModelInfer", infer_request([1.0, 2.0, 5.0, -4.0], shape=[2, 2], id="req-7"),
                metadata={"x-request-id": "abc-123"})
    check_eq(res["code"], OK, f"{res}")
    r = res["response"]
    check_eq((r["model_name"], r["model_version"], r["id"]), ("half_plus_two", "1", "req-7"))
    check_eq(r["outputs"][0]["contents"], {"fp32_contents": [2.5, 3.0, 4.5, 0.0]})
    check_eq(res["trailers"].get("x-model-version"), "1", "trailer beside grpc-status passed through")
    raw = base64.b64encode(struct.pack("<3f", 0.5, 10.0, -1.0)).decode()
    req = {"model_name": "half_plus_two", "inputs": [{"name": "x", "datatype": "FP32", "shape": [3]}],
           "raw_input_contents": [raw]}
    r = pcall(h, proxy, "ModelInfer", req)["response"]
    check_eq(struct.unpack("<3f", base64.b64decode(r["raw_output_contents"][0])), (2.25, 7.0, 1.5))
    # An error status (a trailers-only response) reaches the client intact.
    check_status(pcall(h, proxy, "ModelInfer", infer_request([1.0], model="resnet")), NOT_FOUND,
                 "model 'resnet' not found")
    check_eq(pcall(h, proxy, "ServerLive")["response"], {"live": True})


def test_streams(h):
    server, gport = start_grpc(h)
    proxy = grpc_proxy(h, gport)
    n = 500
    res = pcall(h, proxy, "InferStream", infer_request([4.0], id=""), service=STREAM_TEST, repeat=n, keep=3)
    check_eq((res["code"], res["count"], res["inOrder"]), (OK, n, True), "bidi")
    check_eq(res["responses"][2]["outputs"][0]["contents"], {"fp32_contents": [4.0]})

    count, size = 3000, 1000
    res = pcall(h, proxy, "Ticks", {"count": count, "payload_size": size}, service=STREAM_TEST, keep=1)
    check_eq((res["code"], res["count"], res["inOrder"]), (OK, count, True), "server streaming")
    want = sum((1 + varint_len(s) if s else 0) + 1 + varint_len(size) + size for s in range(count))
    check_eq(res["bytes"], want, "every tick's payload arrived whole")

    payload = base64.b64encode(b"p" * 300).decode()
    res = pcall(h, proxy, "Upload", {"seq": "0", "payload": payload}, service=STREAM_TEST, repeat=1500)
    check_eq((res["code"], res["response"]), (OK, {"messages": "1500", "bytes": str(1500 * 300)}),
             "client streaming")

    good = infer_request([1.0], id="0")
    res = pcall(h, proxy, "InferStream", service=STREAM_TEST,
                requests=[good, dict(good, id="1"), infer_request([1.0], model="resnet"), good])
    check_status(res, NOT_FOUND, "model 'resnet' not found")
    check_eq(res["count"], 2, "the two answers before the error arrived")


def test_large_upload_bounded_memory(h):
    server, gport = start_grpc(h)
    proxy = grpc_proxy(h, gport)
    # warm up, then measure the proxy's peak RSS while 48 MiB stream through
    pcall(h, proxy, "ServerLive")
    base = rss_kib(proxy.proc.pid)
    peak = [base]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_kib(proxy.proc.pid))
            time.sleep(0.02)
    t = threading.Thread(target=sample)
    t.start()
    try:
        size, n = 64 * 1024, 768
        payload = base64.b64encode(b"u" * size).decode()
        res = pcall(h, proxy, "Upload", {"seq": "0", "payload": payload}, service=STREAM_TEST, repeat=n,
                    timeout=300)
    finally:
        done.set()
        t.join()
    check_eq((res["code"], res["response"]), (OK, {"messages": str(n), "bytes": str(n * size)}))
    grew = peak[0] - base
    check(grew < 16 * 1024, f"proxy RSS grew by {grew} KiB for a {n * size >> 20} MiB upload")


def test_upstream_killed_mid_stream(h):
    server, gport = start_grpc(h)
    proxy = grpc_proxy(h, gport)
    out = {}

    def long_call():
        out["res"] = pcall(h, proxy, "Ticks", {"count": 100000, "payload_size": 1000,
                                               "interval_ms": 1}, service=STREAM_TEST, keep=0,
                           timeout=60)
    t = threading.Thread(target=long_call)
    t.start()
    time.sleep(2.0)
    os.kill(server.pid, signal.SIGKILL)
    t.join(60)
    check(not t.is_alive(), "the call ended")
    res = out["res"]
    check(not res["ok"] and res["code"] != OK, f"an error status, not OK: {res}")
    # The proxy is still there and serves again once the model server is back.
    start_grpc(h, gport)
    check_eq(pcall(h, proxy, "ServerLive")["response"], {"live": True})


def test_upstream_goaway(h):
    server, gport = start_grpc(h)
    proxy = grpc_proxy(h, gport)
    check_eq(pcall(h, proxy, "ServerLive")["response"], {"live": True})
    server.stop(signal.SIGTERM, 30)    # grpc's stop(grace): GOAWAY, then close
    start_grpc(h, gport)
    for i in range(3):
        res = pcall(h, proxy, "ModelInfer", infer_request([float(i)]))
        check_eq(res["code"], OK, f"call {i} after the upstream's GOAWAY: {res}")
        check_eq(res["response"]["outputs"][0]["contents"], {"fp32_contents": [i / 2 + 2]})


def grpc_frame(msg):
    return b"\0" + struct.pack(">I", len(msg)) + msg


def test_http1_client_to_h2c(h):
    server, gport = start_grpc(h)
    proxy = grpc_proxy(h, gport, tls={"pq_policy": "prefer"})    # Python's ssl has no hybrid group
    ca = os.path.join(h.certgen(), "ca.crt")
    # ServerLive's request is an empty message
    s = pxtest.tls_connect(proxy.port, ca, alpn=["http/1.1"])
    body = grpc_frame(b"")
    s.sendall(b"POST /inference.GRPCInferenceService/ServerLive HTTP/1.1\r\nHost: localhost\r\n"
              b"Content-Type: application/grpc\r\nTE: trailers\r\nConnection: keep-alive\r\n"
              b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    r = pxtest.read_response(s)
    check_eq(r.status, 200, f"{r.raw[:500]}")
    check_eq(r.framing, "chunked", "streamed with trailers")
    check_eq(r.body, grpc_frame(b"\x08\x01"), "ServerLiveResponse{live: true}")
    check_eq(dict((k.lower(), v) for k, v in r.trailers).get("grpc-status"), "0", f"trailers {r.trailers}")
    s.close()


if __name__ == "__main__":
    pxtest.main([test_unary_and_trailers, test_streams, test_large_upload_bounded_memory,
                 test_upstream_killed_mid_stream, test_upstream_goaway, test_http1_client_to_h2c])
