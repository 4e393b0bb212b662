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
import json
import os
import re
import signal
import struct
import subprocess
import sys
import threading
import time
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pxtest  # noqa: E402
from pxtest import check, check_eq, check_in  # noqa: E402
from pxhelpers import grpc_python, is_asan_build  # noqa: E402
from test_proxy_large_bodies import RssSampler  # noqa: E402
from test_signatures import run as sig_run  # noqa: E402
from test_grpc_demo import (OK, NOT_FOUND, SERVER, STREAM_TEST, call, check_status,  # noqa: E402
                            infer_request, varint_len)

UNAVAILABLE, INTERNAL = 14, 13


def start_grpc(h, port=None):
    """The demo gRPC server; returns (its Proc, its port)."""
    port = port or pxtest.free_port()
    p = h.start("grpc-model", [grpc_python(), SERVER, "--port", str(port)], ready="port", port=port)
    return p, port


def grpc_proxy(h, gport, env=None, **extra):
    up = types.SimpleNamespace(port=gport)
    cfg = pxtest.deep_merge({"tls": {"pq_policy": "require", "alpn": ["h2", "http/1.1"]},
                             "upstream": {"protocol": "h2c"}}, extra)
    return h.start_proxy(cfg, upstream=up, env=env)


def rss_env():
    """The proxy's environment for an RSS check: under ASan a small allocator
    quarantine (as test_proxy_large_bodies), else the default one keeps
    freed memory resident."""
    if not is_asan_build():
        return None
    opts = os.environ.get("ASAN_OPTIONS", "")
    return {"ASAN_OPTIONS": (opts + ":" if opts else "") +
            "quarantine_size_mb=8:thread_local_quarantine_size_kb=256"}


def pcall(h, proxy, method, request=None, **opts):
    """One gRPC call through the proxy (TLS, ALPN h2)."""
    return call(h, proxy.port, method, request, ca=os.path.join(h.certgen(), "ca.crt"), **opts)


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
    # PX_GRPC_UPLOAD_MIB=1024 makes it the 1 GiB run of docs/benchmarks.md
    mib = int(os.environ.get("PX_GRPC_UPLOAD_MIB", "48"))
    server, gport = start_grpc(h)
    proxy = grpc_proxy(h, gport, env=rss_env(), http={"max_body_bytes": 0})   # a stream, unlimited
    pcall(h, proxy, "ServerLive")        # warm: one TLS connection and one upstream connection
    base = proxy.proc.rss_kb()
    rss = RssSampler(proxy.proc)
    rss.start()
    try:
        size, n = 64 * 1024, mib * 16    # in 64 KiB messages
        payload = base64.b64encode(b"u" * size).decode()
        res = pcall(h, proxy, "Upload", {"seq": "0", "payload": payload}, service=STREAM_TEST, repeat=n,
                    timeout=max(300, mib))
    finally:
        rss.stop()
        rss.join()
    check_eq((res["code"], res["response"]), (OK, {"messages": str(n), "bytes": str(n * size)}))
    grew = max(rss.samples + [base]) - base
    print(f"proxy RSS {base} KiB idle, +{grew} KiB at peak during the upload")
    check(grew < 24 * 1024, f"proxy RSS grew by {grew} KiB for a {n * size >> 20} MiB upload")


def test_slow_reader_holds_the_upstream_back(h):
    # A client that stops reading a 30 MB server stream for 4 s: the proxy
    # stops crediting the upstream stream, so its memory stays flat.
    server, gport = start_grpc(h)
    proxy = grpc_proxy(h, gport, env=rss_env())
    pcall(h, proxy, "ServerLive")
    base = proxy.proc.rss_kb()
    rss = RssSampler(proxy.proc)
    rss.start()
    try:
        count, size = 30000, 1000
        res = pcall(h, proxy, "Ticks", {"count": count, "payload_size": size}, service=STREAM_TEST,
                    keep=0, pause_ms=4000, timeout=120)
    finally:
        rss.stop()
        rss.join()
    check_eq((res["code"], res["count"], res["inOrder"]), (OK, count, True))
    grew = max(rss.samples + [base]) - base
    print(f"proxy RSS {base} KiB idle, +{grew} KiB at peak while the client paused")
    # ASan's allocator (shadow, small quarantine) adds some 18 MiB of its own here
    limit = (24 if is_asan_build() else 8) * 1024
    check(grew < limit, f"proxy RSS grew by {grew} KiB behind a paused reader (limit {limit})")


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


def test_proxy_stops_with_stream_in_flight(h):
    # SIGTERM while a server stream runs: the drain deadline passes, the
    # proxy closes the stream's connections and its h2c pool, and exits 0
    # (the sanitizer build checks the pool's close path).
    server, gport = start_grpc(h)
    proxy = grpc_proxy(h, gport, timeouts={"drain_ms": 1000})
    out = {}

    def long_call():
        out["res"] = pcall(h, proxy, "Ticks", {"count": 100000, "payload_size": 100, "interval_ms": 5},
                           service=STREAM_TEST, keep=0, timeout=60)
    t = threading.Thread(target=long_call)
    t.start()
    time.sleep(1.5)
    rc = proxy.stop()
    t.join(60)
    check_eq(rc, 0, "the proxy exits cleanly")
    check(not t.is_alive() and not out["res"]["ok"], f"the call ended with an error: {out.get('res')}")


def test_upstream_goaway(h):
    server, gport = start_grpc(h)
    proxy = grpc_proxy(h, gport)
    check_eq(pcall(h, proxy, "ServerLive")["response"], {"live": True})
    server.stop(signal.SIGTERM, 30)    # grpc's stop(grace): GOAWAY, then close
    # Nothing listens: the proxy's 502 reaches the gRPC client as UNAVAILABLE.
    res = pcall(h, proxy, "ServerLive")
    check_eq((res["ok"], res["code"]), (False, UNAVAILABLE), f"{res}")
    start_grpc(h, gport)
    for i in range(3):
        res = pcall(h, proxy, "ModelInfer", infer_request([float(i)]))
        check_eq(res["code"], OK, f"call {i} after the upstream's GOAWAY: {res}")
        check_eq(res["response"]["outputs"][0]["contents"], {"fp32_contents": [i / 2 + 2]})


def test_upstream_response_timeout(h):
    server, gport = start_grpc(h)
    # the demo server sends its head (x-request-id) at once: the idle timeout ends it
    proxy = grpc_proxy(h, gport, timeouts={"upstream_response_ms": 1000, "upstream_idle_ms": 1000})
    slow = infer_request([1.0], parameters={"delay_ms": {"int64_param": "8000"}})
    t0 = time.monotonic()
    res = pcall(h, proxy, "ModelInfer", slow)
    took = time.monotonic() - t0
    # the head went out: the stream is reset (INTERNAL to grpc-js)
    check(not res["ok"] and res["code"] in (INTERNAL, UNAVAILABLE), f"an error status: {res}")
    check(took < 5, f"ended by the proxy's timeout, not the model's 8 s: {took:.1f} s")
    check_eq(pcall(h, proxy, "ModelInfer", infer_request([2.0]))["code"], OK, "next call served")
    check_in('"error":"upstream_timeout"', open(proxy.config["log"]["access_log"]).read())


def test_signed_response_keeps_grpc_trailers(h):
    # A route signing responses: a gRPC response is streamed, so its
    # signature goes in the trailers, beside the model server's grpc-status.
    server, gport = start_grpc(h)
    keys = h.path("keys")
    os.makedirs(os.path.join(keys, "ring"))
    sig_run("keygen", "--alg", "hybrid", "--out", os.path.join(keys, "proxy"))
    proxy = grpc_proxy(h, gport, signatures={"keyring": os.path.join(keys, "ring"),
                                             "response_key": os.path.join(keys, "proxy")},
                       routes=[{"prefix": "/", "verify": "off", "sign_responses": True}])
    res = pcall(h, proxy, "ModelInfer", infer_request([2.0]))
    check_eq(res["code"], OK, f"{res}")
    check_eq(res["response"]["outputs"][0]["contents"], {"fp32_contents": [3.0]})
    check_eq(res["trailers"].get("x-model-version"), "1", f"the model server's trailer: {res['trailers']}")
    check("x-signature" in res["trailers"] and "content-digest" in res["trailers"],
          f"the proxy's signature trailers: {res['trailers']}")
    # an error status keeps its trailers too
    check_status(pcall(h, proxy, "ModelInfer", infer_request([1.0], model="resnet")), NOT_FOUND,
                 "model 'resnet' not found")


H2C_GOAWAY = os.path.join(pxtest.HERE, "peers", "h2c_goaway_server.py")


def h2_python():
    """A Python that imports Debian's python3-h2."""
    for py in (sys.executable, "/usr/bin/python3"):
        if subprocess.run([py, "-c", "import h2.connection"], capture_output=True).returncode == 0:
            return py
    pxtest.skip("python3-h2 not installed (scripts/deps.sh --test-tools)")


def goaway_case(h, last, **extra):
    """One GET through the proxy to h2c_goaway_server.py --last `last`:
    returns (the response, the REQ lines the server printed)."""
    p = h.start(f"h2c-goaway-{last}", [h2_python(), H2C_GOAWAY, "--last", str(last)], ready="line",
                line=r"^READY (\d+)$")
    proxy = grpc_proxy(h, int(p.ready_match.group(1)), tls={"pq_policy": "prefer"}, **extra)
    s = pxtest.tls_connect(proxy.port, os.path.join(h.certgen(), "ca.crt"), alpn=["http/1.1"])
    s.sendall(b"GET /once HTTP/1.1\r\nHost: localhost\r\n\r\n")
    r = pxtest.read_response(s)
    s.close()
    time.sleep(0.2)
    with open(p.out_path) as f:
        reqs = [ln.split() for ln in f if ln.startswith("REQ ")]
    return r, reqs


def test_goaway_retries_unprocessed_stream(h):
    # GOAWAY with last stream id 0: stream 1 was not processed; the pool
    # opens it again on a new connection, the client never notices.
    r, reqs = goaway_case(h, 0)
    check_eq((r.status, r.body), (200, b"served 1"), f"retried on a new connection: {r.raw[:300]}")
    check_eq([(sid, path) for _, _, sid, path in reqs], [("1", "/once"), ("1", "/once")])
    check(reqs[0][1] != reqs[1][1], f"on two connections: {reqs}")


def test_signed_held_response(h):
    # A response with a content-length that fits is held and signed in its
    # head: the h2c head must outlive the stream it came on.
    keys = h.path("keys")
    os.makedirs(os.path.join(keys, "ring"))
    sig_run("keygen", "--alg", "hybrid", "--out", os.path.join(keys, "proxy"))
    r, _ = goaway_case(h, 0, signatures={"keyring": os.path.join(keys, "ring"),
                                         "response_key": os.path.join(keys, "proxy")},
                       routes=[{"prefix": "/", "verify": "off", "sign_responses": True}])
    check_eq((r.status, r.body, r.framing), (200, b"served 1", "length"))
    check(r.header("x-signature") and r.header("content-digest"), f"signed in the head: {r.headers}")


def spread(h, cap, server_max, n=6, conns=None):
    """n concurrent GETs through a proxy with h2c_max_streams `cap` (and
    h2c_max_connections `conns`) to the scripted server announcing
    `server_max` streams (0: no limit), each answer 1 s late: returns
    {connection: requests} as the server saw."""
    args = [h2_python(), H2C_GOAWAY, "--last", "-1", "--delay-ms", "1000", "--max-streams", str(server_max)]
    p = h.start(f"h2c-spread-{cap}-{server_max}-{conns}", args, ready="line", line=r"^READY (\d+)$")
    up = {"h2c_max_streams": cap}
    if conns is not None:
        up["h2c_max_connections"] = conns
    proxy = grpc_proxy(h, int(p.ready_match.group(1)), tls={"pq_policy": "prefer"}, upstream=up)
    ca = os.path.join(h.certgen(), "ca.crt")
    got = []
    # one request first: a connection exists and the server's SETTINGS are known
    s = pxtest.tls_connect(proxy.port, ca, alpn=["http/1.1"])
    s.sendall(b"GET /warm HTTP/1.1\r\nHost: localhost\r\n\r\n")
    check_eq(pxtest.read_response(s).status, 200)
    s.close()

    def one(i):
        s = pxtest.tls_connect(proxy.port, ca, alpn=["http/1.1"])
        s.sendall(f"GET /r{i} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        got.append(pxtest.read_response(s).status)
        s.close()
    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    check_eq(got, [200] * n, "every request answered")
    per = {}
    # "REQ <connection> <stream> <path>" per request; the server's threads may
    # write two of them on one line (print writes the newline apart)
    with open(p.out_path) as f:
        for conn, _ in re.findall(r"REQ (\d+) \d+ (/r\d+)", f.read()):
            per[conn] = per.get(conn, 0) + 1
    return per


def test_streams_per_connection_bounded(h):
    per = spread(h, 100, 0)
    check_eq(list(per.values()), [6], f"one connection carries all six: {per}")
    per = spread(h, 2, 0)
    check(len(per) >= 3 and max(per.values()) <= 2, f"h2c_max_streams 2: {per}")
    per = spread(h, 100, 3)
    check(len(per) >= 2 and max(per.values()) <= 3, f"the server's SETTINGS (3): {per}")


def test_connections_per_worker_bounded(h):
    """h2c_max_connections: at the cap, streams beyond h2c_max_streams wait
    on the least loaded connection (here the server admits them at once)
    instead of opening another; all are answered."""
    per = spread(h, 2, 0, conns=1)
    check_eq(list(per.values()), [6], f"h2c_max_connections 1: {per}")
    per = spread(h, 1, 0, conns=2)
    check_eq((len(per), sum(per.values())), (2, 6), f"h2c_max_connections 2: {per}")


def test_goaway_fails_processed_stream(h):
    # last stream id 1: the model server took stream 1 and then went away
    # without answering; it may have acted on it: not retried, a 502.
    r, reqs = goaway_case(h, 1)
    check_eq(r.status, 502, f"{r.raw[:300]}")
    check_in("model server", r.body.decode())
    check_eq(len(reqs), 1, f"sent once: {reqs}")


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
    # HTTP/1.0 may leave Host out; the h2c upstream needs an :authority: a
    # clear 400, not an internal error
    s = pxtest.tls_connect(proxy.port, ca, alpn=["http/1.1"])
    s.sendall(b"GET /v1/models HTTP/1.0\r\n\r\n")
    r = pxtest.read_response(s)
    s.close()
    check_eq((r.status, json.loads(r.body)["error"]), (400, "bad_request"), f"HTTP/1.0 without Host: {r.raw[:300]}")


def test_rest_and_grpc_on_one_port(h):
    """TF Serving's shape: REST (HTTP/1.1 upstream) and gRPC (a named h2c
    upstream, routed by content-type) behind one hybrid TLS port; both over
    h2 from the same kind of client, and REST over HTTP/1.1 too."""
    server, gport = start_grpc(h)
    rest = h.start_upstream()
    proxy = h.start_proxy({"tls": {"pq_policy": "prefer", "alpn": ["h2", "http/1.1"]},  # Python's ssl
                           "upstreams": {"grpc": {"address": f"127.0.0.1:{gport}", "protocol": "h2c"}},
                           "routes": [{"prefix": "/", "grpc": True, "upstream": "grpc"}]},
                          upstream=rest)
    res = pcall(h, proxy, "ModelInfer", infer_request([1.0, 2.0], shape=[2], id="one-port"))
    check_eq((res["code"], res["response"]["id"]), (OK, "one-port"), f"{res}")
    check_eq(pcall(h, proxy, "ServerLive")["response"], {"live": True})
    ca = os.path.join(h.certgen(), "ca.crt")
    with pxtest.tls_connect(proxy.port, ca, alpn=["http/1.1"]) as s:
        r = pxtest.http_request(s, "POST", "/echo", body=b'{"instances": [1.0]}',
                                headers=[("Content-Type", "application/json")])
        check_eq(r.status, 200, "REST over HTTP/1.1")
    check_eq([x["target"] for x in rest.records()], ["/echo"], "only REST reached the REST upstream")
    log = proxy.wait_access_log(3)
    check_eq(sorted((ln["protocol"], ln["path"].rsplit("/", 1)[-1]) for ln in log),
             [("HTTP/1.1", "echo"), ("h2", "ModelInfer"), ("h2", "ServerLive")])
    check_eq({ln["group"] for ln in log if ln["protocol"] == "h2"}, {"X25519MLKEM768"},
             "the gRPC client negotiated the hybrid group")


if __name__ == "__main__":
    pxtest.main([test_unary_and_trailers, test_streams, test_large_upload_bounded_memory,
                 test_upstream_killed_mid_stream, test_upstream_goaway, test_http1_client_to_h2c,
                 test_goaway_retries_unprocessed_stream, test_goaway_fails_processed_stream,
                 test_upstream_response_timeout, test_signed_response_keeps_grpc_trailers,
                 test_signed_held_response, test_streams_per_connection_bounded,
                 test_connections_per_worker_bounded,
                 test_proxy_stops_with_stream_in_flight, test_slow_reader_holds_the_upstream_back,
                 test_rest_and_grpc_on_one_port])
