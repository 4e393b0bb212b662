#!/usr/bin/env python3
"""scripts/demo_grpc_model_server.py (the Open Inference Protocol over gRPC,
Debian's python3-grpcio) reached directly by an independent gRPC client:
@grpc/grpc-js on Node 24 (tests/integration/peers/grpc_client.mjs, packages
pinned in tests/npm), over h2c with prior knowledge. No proxy in between:
pqproxy does not speak HTTP/2 yet; these are the upstream and the peer its
gRPC tests will use. Covers the OIP health, metadata and inference calls,
errors as gRPC statuses, a deadline (grpc-timeout) that expires, and long
streams in each direction."""
import base64
import json
import os
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pxtest  # noqa: E402
from pxtest import check, check_eq, check_in  # noqa: E402
from pxhelpers import grpc_python, node24, npm_tests_modules  # noqa: E402

SERVER = os.path.join(pxtest.SOURCE_DIR, "scripts", "demo_grpc_model_server.py")
PROTO_DIR = os.path.join(pxtest.SOURCE_DIR, "scripts", "proto")
CLIENT = os.path.join(pxtest.HERE, "peers", "grpc_client.mjs")
OK, INVALID_ARGUMENT, DEADLINE_EXCEEDED, NOT_FOUND = 0, 3, 4, 5
STREAM_TEST = "pqproxy.streamtest.StreamTest"


def start_server(h, *extra):
    port = pxtest.free_port()
    h.start("grpc-model", [grpc_python(), SERVER, "--port", str(port), *extra], ready="port", port=port)
    return port


def call(h, port, method, request=None, service=None, timeout=120, **opts):
    """One grpc_client.mjs run; returns its JSON result."""
    node = node24()
    arg = dict(opts, target=f"127.0.0.1:{port}", protoDir=PROTO_DIR, method=method)
    if request is not None:
        arg["request"] = request
    if service:
        arg["service"] = service
    env = dict(os.environ, NODE_PATH=npm_tests_modules("@grpc/grpc-js"))
    r = subprocess.run([node, CLIENT, json.dumps(arg)], capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL, env=env)
    check(r.returncode in (0, 3), f"grpc_client.mjs {method} exited {r.returncode}: {r.stderr[-2000:]}")
    res = json.loads(r.stdout)
    check_eq(res["ok"], r.returncode == 0, f"exit code agrees with ok: {res}")
    return res


def infer_request(values, shape=None, datatype="FP32", model="half_plus_two", **extra):
    return dict({"model_name": model, "inputs": [{
        "name": "x", "datatype": datatype, "shape": shape or [len(values)],
        "contents": {"fp32_contents": values}}]}, **extra)


def check_status(res, code, detail):
    check_eq((res["ok"], res["code"]), (False, code), f"status of {res}")
    check_in(detail, res["details"])


def test_health_metadata_infer(h):
    port = start_server(h)
    check_eq(call(h, port, "ServerLive")["response"], {"live": True})
    check_eq(call(h, port, "ServerReady")["response"], {"ready": True})
    check_eq(call(h, port, "ModelReady", {"name": "half_plus_two"})["response"], {"ready": True})
    check_eq(call(h, port, "ModelReady", {"name": "half_plus_two", "version": "1"})["response"],
             {"ready": True})
    check_eq(call(h, port, "ServerMetadata")["response"]["name"], "pqproxy-demo-grpc-model-server")
    md = call(h, port, "ModelMetadata", {"name": "half_plus_two"})["response"]
    check_eq((md["versions"], md["inputs"], md["outputs"]),
             (["1"], [{"name": "x", "datatype": "FP32", "shape": ["-1"]}],
              [{"name": "y", "datatype": "FP32", "shape": ["-1"]}]))

    # Typed contents, a 2x2 tensor; the id, x-request-id and the trailer come back.
    res = call(h, port, "ModelInfer", infer_request([1.0, 2.0, 5.0, -4.0], shape=[2, 2], id="req-7"),
               metadata={"x-request-id": "abc-123"})
    check_eq(res["code"], OK)
    r = res["response"]
    check_eq((r["model_name"], r["model_version"], r["id"]), ("half_plus_two", "1", "req-7"))
    check_eq(r["outputs"], [{"name": "y", "datatype": "FP32", "shape": ["2", "2"],
                             "contents": {"fp32_contents": [2.5, 3.0, 4.5, 0.0]}}])
    check_eq(res["headers"].get("x-request-id"), "abc-123", "request id echoed in the headers")
    check_eq(res["trailers"].get("x-model-version"), "1", "trailer beside grpc-status")

    # raw_input_contents (little-endian FP32) in, raw_output_contents out.
    raw = base64.b64encode(struct.pack("<3f", 0.5, 10.0, -1.0)).decode()
    req = {"model_name": "half_plus_two", "inputs": [{"name": "x", "datatype": "FP32", "shape": [3]}],
           "raw_input_contents": [raw]}
    r = call(h, port, "ModelInfer", req)["response"]
    check_eq(struct.unpack("<3f", base64.b64decode(r["raw_output_contents"][0])), (2.25, 7.0, 1.5))
    check("contents" not in r["outputs"][0], f"raw in, raw out only: {r}")


def test_errors_are_grpc_statuses(h):
    port = start_server(h)
    check_status(call(h, port, "ModelInfer", infer_request([1.0], model="resnet")), NOT_FOUND,
                 "model 'resnet' not found")
    check_status(call(h, port, "ModelInfer", infer_request([1.0], model_version="9")), NOT_FOUND,
                 "no version '9'")
    check_status(call(h, port, "ModelReady", {"name": "resnet"}), NOT_FOUND, "model 'resnet' not found")
    check_status(call(h, port, "ModelMetadata", {"name": "resnet"}), NOT_FOUND, "not found")
    check_status(call(h, port, "ModelInfer", infer_request([1.0], datatype="INT32")), INVALID_ARGUMENT,
                 "datatype must be FP32, got 'INT32'")
    check_status(call(h, port, "ModelInfer", infer_request([1.0, 2.0], shape=[3])), INVALID_ARGUMENT,
                 "shape [3] has 3 elements, fp32_contents has 2")
    check_status(call(h, port, "ModelInfer", infer_request([1.0], shape=[-1])), INVALID_ARGUMENT,
                 "negative dimension")
    check_status(call(h, port, "ModelInfer", {"model_name": "half_plus_two"}), INVALID_ARGUMENT,
                 "expected 1 input tensor")
    raw7 = base64.b64encode(b"\0" * 7).decode()
    req = {"model_name": "half_plus_two", "inputs": [{"name": "x", "datatype": "FP32", "shape": [2]}],
           "raw_input_contents": [raw7]}
    check_status(call(h, port, "ModelInfer", req), INVALID_ARGUMENT, "needs 8 bytes of FP32")
    req = infer_request([1.0], raw_input_contents=[base64.b64encode(b"\0" * 4).decode()])
    check_status(call(h, port, "ModelInfer", req), INVALID_ARGUMENT, "contents while raw_input_contents")
    req = infer_request([1.0], outputs=[{"name": "z"}])
    check_status(call(h, port, "ModelInfer", req), INVALID_ARGUMENT, "unknown output 'z'")
    # The server still answers after all of that.
    check_eq(call(h, port, "ModelInfer", infer_request([0.0]))["code"], OK)


def test_deadline_exceeded(h):
    # One worker: if the server slept through the expired deadline, the next
    # call could not be served in time.
    port = start_server(h, "--workers", "1")
    slow = infer_request([1.0], parameters={"delay_ms": {"int64_param": "20000"}})
    t0 = time.monotonic()
    res = call(h, port, "ModelInfer", slow, deadline_ms=300)
    # grpc-js says "Deadline exceeded" when its own timer fires first, the
    # server "Deadline Exceeded" when its status arrives first: either is right
    check_eq((res["ok"], res["code"]), (False, DEADLINE_EXCEEDED), f"status of {res}")
    check_in("deadline exceeded", res["details"].lower())
    check(time.monotonic() - t0 < 10, "the deadline ended the call, not the 20 s delay")
    res = call(h, port, "ModelInfer", infer_request([6.0]), deadline_ms=5000)
    check_eq(res["code"], OK, f"the worker was freed when the deadline passed: {res}")
    check_eq(res["response"]["outputs"][0]["contents"], {"fp32_contents": [5.0]})
    # A delay within the deadline completes.
    res = call(h, port, "ModelInfer", infer_request([2.0], parameters={"delay_ms": {"int64_param": "200"}}),
               deadline_ms=5000)
    check_eq(res["code"], OK)
    check_status(call(h, port, "ModelInfer", infer_request([2.0], parameters={
        "delay_ms": {"int64_param": "-1"}})), INVALID_ARGUMENT, "delay_ms must be")


def varint_len(n):
    return max(1, (n.bit_length() + 6) // 7)


def test_streams(h):
    port = start_server(h)
    # Bidi: 2000 inferences on one stream, answered in order.
    n = 2000
    res = call(h, port, "InferStream", infer_request([4.0], id=""), service=STREAM_TEST, repeat=n, keep=3,
               metadata={"x-request-id": "s-1"})
    check_eq((res["code"], res["count"], res["inOrder"]), (OK, n, True))
    check_eq([r["id"] for r in res["responses"]], ["0", "1", "2"])
    check_eq(res["responses"][2]["outputs"][0]["contents"], {"fp32_contents": [4.0]})
    check_eq(res["headers"].get("x-request-id"), "s-1")

    # Server streaming: 3000 ticks of 1000 bytes (~3 MB), all in order.
    count, size = 3000, 1000
    res = call(h, port, "Ticks", {"count": count, "payload_size": size}, service=STREAM_TEST, keep=1)
    check_eq((res["code"], res["count"], res["inOrder"]), (OK, count, True))
    want = sum((1 + varint_len(s) if s else 0) + 1 + varint_len(size) + size for s in range(count))
    check_eq(res["bytes"], want, "every tick's payload arrived whole")

    # Client streaming: 1500 messages counted by the server.
    payload = base64.b64encode(b"p" * 300).decode()
    res = call(h, port, "Upload", {"seq": "0", "payload": payload}, service=STREAM_TEST, repeat=1500)
    check_eq(res["response"], {"messages": "1500", "bytes": str(1500 * 300)})

    # A bad message in the middle of a bidi stream ends it with its status,
    # after the answers to the messages before it.
    good = infer_request([1.0], id="0")
    res = call(h, port, "InferStream", service=STREAM_TEST,
               requests=[good, dict(good, id="1"), infer_request([1.0], model="resnet"), good])
    check_status(res, NOT_FOUND, "model 'resnet' not found")
    check_eq(res["count"], 2, "the two answers before the error arrived")
    check_status(call(h, port, "Ticks", {"count": 1, "payload_size": 1 << 21}, service=STREAM_TEST),
                 INVALID_ARGUMENT, "payload_size <=")


def test_bad_command_line(h):
    port = start_server(h)
    # The port is taken (also by another gRPC server: no SO_REUSEPORT sharing).
    p = h.start("busy", [grpc_python(), SERVER, "--port", str(port)])
    check_eq(p.wait(30), 1)
    check_in(f"cannot listen on 127.0.0.1:{port}", p.stderr_text())
    p = h.start("no-proto", [grpc_python(), SERVER, "--port", "0", "--proto-dir", h.path("none")])
    check_eq(p.wait(30), 1)
    check_in(f"{h.path('none', 'grpc_predict_v2.proto')} not found (--proto-dir)", p.stderr_text())
    p = h.start("workers", [grpc_python(), SERVER, "--port", "0", "--workers", "0"])
    check_eq(p.wait(30), 1)
    check_in("--workers must be 1..1000", p.stderr_text())


if __name__ == "__main__":
    pxtest.main([test_health_metadata_infer, test_errors_are_grpc_statuses, test_deadline_exceeded,
                 test_streams, test_bad_command_line])
