#!/usr/bin/env python3
"""gRPC-shaped requests over HTTP/2 (content-type application/grpc) get the
proxy's own errors as gRPC errors: a trailers-only response, HTTP 200 with
grpc-status and a percent-encoded grpc-message (docs/operations.md, "gRPC"),
and their grpc-timeout is a deadline. Node 24's http2 client
(peers/node_h2_client.mjs) against the HTTP/1.1 test upstream."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pxtest  # noqa: E402
from pxtest import check, check_eq, check_in  # noqa: E402
from pxhelpers import metrics  # noqa: E402
from test_h2 import H2_ALPN, h2_requests  # noqa: E402
from test_interop_node import node24  # noqa: E402
from test_grpc_demo import call  # noqa: E402

GRPC = {"content-type": "application/grpc", "te": "trailers"}


def grpc_call(path, body_len=5, **more):
    headers = dict(GRPC, **more.pop("headers", {}))
    return dict({"method": "POST", "path": path, "body_len": body_len, "headers": headers}, **more)


def check_grpc_error(r, code, error, what):
    check_eq((r.get("error"), r["status"], r["headers"].get("content-type")),
             (None, 200, "application/grpc"), f"{what}: a trailers-only gRPC response: {r}")
    check_eq(r["headers"].get("grpc-status"), str(code), f"{what}: grpc-status")
    check(r["headers"].get("grpc-message", "").startswith(error + ":"), f"{what}: grpc-message {r}")
    check_eq(r["body_len"], 0, f"{what}: no body")


def test_signature_refused_is_unauthenticated(h):
    """(a) a signed route without a signature: 16, and nothing upstream;
    the same request without the gRPC content type still gets JSON 401."""
    node24()
    ring = h.path("ring")
    os.makedirs(ring)
    key = h.path("client")
    subprocess.run([pxtest.pqproxy_bin(), "keygen", "--alg", "hybrid", "--out", key], check=True,
                   capture_output=True, timeout=60)
    for alg in ("ecdsa", "mldsa"):
        os.link(f"{key}.{alg}.pub", os.path.join(ring, f"client-a.{alg}.pub"))
    proxy = h.start_proxy(dict(H2_ALPN, signatures={"keyring": ring},
                               routes=[{"prefix": "/signed/", "verify": "required"}]))
    res = h2_requests(h, proxy.port, [grpc_call("/signed/inference.GRPCInferenceService/ModelInfer"),
                                      {"method": "POST", "path": "/signed/x", "body_len": 5},
                                      grpc_call("/echo", body_len=0)])
    grpc, plain, ok = res["responses"]
    check_grpc_error(grpc, 16, "signature_missing", "unsigned gRPC call")
    check_eq((plain["status"], plain["headers"].get("content-type")), (401, "application/json"),
             f"not gRPC: JSON as before: {plain}")
    check_eq(ok["status"], 200, f"an open route is served: {ok}")
    check_eq([r["target"] for r in h.upstream.records()], ["/echo"], "nothing signed upstream")
    logs = proxy.wait_access_log(3)
    got = {l["path"]: (l["status"], l.get("error"), l.get("grpc_status")) for l in logs}
    check_eq(got["/signed/inference.GRPCInferenceService/ModelInfer"], (200, "signature_missing", 16),
             "access log: HTTP 200, the error and grpc_status")
    check_eq(got["/signed/x"], (401, "signature_missing", None), "no grpc_status without gRPC")


def test_dead_upstream_is_unavailable(h):
    """(b) nothing listens at the upstream's address: 14."""
    node24()
    proxy = h.start_proxy(dict(H2_ALPN, upstream={"address": f"127.0.0.1:{pxtest.free_port()}"}))
    res = h2_requests(h, proxy.port, [grpc_call("/svc/Method")])
    check_grpc_error(res["responses"][0], 14, "upstream_unavailable", "dead upstream")
    check_eq(proxy.wait_access_log(1)[0].get("grpc_status"), 14, "logged")


def test_grpc_timeout_is_a_deadline(h):
    """(c) a slow upstream and grpc-timeout 200m: 4 within about the
    timeout, the upstream connection closed; after the response head went
    out, the stream is reset with CANCEL instead. A malformed value: 3."""
    node24()
    proxy = h.start_proxy(H2_ALPN)
    res = h2_requests(h, proxy.port, [
        grpc_call("/delay/3000", headers={"grpc-timeout": "200m"}),
        grpc_call("/late-body/3000", headers={"grpc-timeout": "300m"}),
        grpc_call("/echo", headers={"grpc-timeout": "123456789S"}),
        grpc_call("/delay/100", headers={"grpc-timeout": "5S"}),
    ])
    slow, late, bad, ok = res["responses"]
    check_grpc_error(slow, 4, "deadline_exceeded", "grpc-timeout 200m")
    check(150 <= slow["t_head_ms"] < 800, f"ended at about 200 ms, not at the next 1 s tick: {slow['t_head_ms']} ms")
    check_eq((late["status"], late["rst_code"]), (200, 8), f"head out, then RST_STREAM CANCEL: {late}")
    check(late["t_end_ms"] < 2000, f"reset at about 300 ms: {late}")
    check_grpc_error(bad, 3, "bad_request", "a malformed grpc-timeout")
    check_eq(ok["status"], 200, f"inside its deadline: {ok}")
    m = metrics(proxy)
    check_eq(m['pqproxy_h2_stream_timeouts_total{timeout="grpc_deadline"}'], 2, "both deadlines counted")
    logs = {l["path"]: l for l in proxy.wait_access_log(4)}
    check_eq((logs["/late-body/3000"]["status"], logs["/late-body/3000"].get("error")),
             (200, "deadline_exceeded"), "the reset one logged")
    check_eq(logs["/echo"].get("grpc_status"), 3, "the malformed one logged")
    check("/echo" not in [r["target"] for r in h.upstream.records()],
          "the malformed one never reached the upstream")


def test_too_large_is_resource_exhausted(h):
    """(d) a body over http.max_body_bytes, declared or streamed: 8, and
    nothing upstream."""
    node24()
    proxy = h.start_proxy(dict(H2_ALPN, http={"max_body_bytes": 1000}))
    streamed = grpc_call("/svc/Big", body_len=5000, no_length=True)    # counted as it streams
    res = h2_requests(h, proxy.port, [grpc_call("/svc/Big", body_len=5000), streamed])
    for r in res["responses"]:
        check_grpc_error(r, 8, "body_too_large", "too large")
    check_eq(h.upstream.records(), [], "nothing upstream")


def test_upstream_grpc_status_logged(h):
    """The upstream's own grpc-status passes through untouched and is what
    the access log's grpc_status says; a gRPC request the upstream answers
    OK is logged 0."""
    node24()
    proxy = h.start_proxy(H2_ALPN)
    res = h2_requests(h, proxy.port, [grpc_call("/grpc-status/5"), grpc_call("/grpc-status/0")])
    five, zero = res["responses"]
    check_eq((five["status"], five["headers"].get("grpc-status"), five["headers"].get("grpc-message")),
             (200, "5", "from%20upstream"), f"passed through: {five}")
    check_eq(zero["headers"].get("grpc-status"), "0", f"OK passed through: {zero}")
    got = sorted((l["path"], l.get("grpc_status"), l.get("error")) for l in proxy.wait_access_log(2))
    check_eq(got, [("/grpc-status/0", 0, None), ("/grpc-status/5", 5, None)], "access log grpc_status")


def test_grpc_js_reads_proxy_errors(h):
    """A real gRPC client (@grpc/grpc-js over TLS, h2 by ALPN) gets the
    proxy's errors as statuses: UNAVAILABLE for a dead upstream, with the
    decoded grpc-message as its details."""
    proxy = h.start_proxy(dict(H2_ALPN, upstream={"address": f"127.0.0.1:{pxtest.free_port()}"}))
    res = call(h, proxy.port, "ModelInfer", {"model_name": "m"}, ca=os.path.join(h.certgen(), "ca.crt"),
               deadline_ms=5000)
    check_eq((res["ok"], res["code"], res["status"]), (False, 14, "UNAVAILABLE"), f"grpc-js: {res}")
    check_in("upstream_unavailable: the model server is unreachable", res["details"], "details")


if __name__ == "__main__":
    pxtest.main([test_signature_refused_is_unauthenticated, test_dead_upstream_is_unavailable,
                 test_grpc_timeout_is_a_deadline, test_too_large_is_resource_exhausted, test_upstream_grpc_status_logged,
                 test_grpc_js_reads_proxy_errors])
