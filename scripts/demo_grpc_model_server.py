#!/usr/bin/env python3
"""Demo gRPC model server: half_plus_two (y = x / 2 + 2, FP32) over the Open
Inference Protocol's GRPCInferenceService (scripts/proto/grpc_predict_v2.proto),
plus pqproxy's streaming test service (scripts/proto/streamtest.proto).
h2c (cleartext HTTP/2, prior knowledge), as gRPC model servers serve it behind a
sidecar; the gRPC twin of scripts/demo_model_server.py.

Built on Debian's python3-grpcio; the .proto files are compiled at start by
python3-grpc-tools into a descriptor set in a temporary directory (nothing
generated is kept), and the messages come from python3-protobuf's reflection.

  usage: demo_grpc_model_server.py [--host 127.0.0.1] [--port 8500] [--proto-dir DIR]

Errors are gRPC statuses: an unknown model or version NOT_FOUND, a malformed
tensor (datatype, shape, contents) INVALID_ARGUMENT. A request parameter
"delay_ms" (int64) makes ModelInfer wait that long first, so clients can test
deadlines (grpc-timeout); the wait ends early when the call is cancelled.
A client's "x-request-id" metadata comes back in the response headers;
ModelInfer's trailers carry "x-model-version" beside grpc-status."""
import argparse
import os
import signal
import struct
import sys
import tempfile
import threading
from concurrent import futures

try:
    import grpc
    from grpc_tools import protoc
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
except ImportError as e:
    sys.exit(f"demo_grpc_model_server: {e}: needs Debian's python3-grpcio, python3-grpc-tools and "
             "python3-protobuf (scripts/deps.sh --test-tools installs them)")

MODEL = "half_plus_two"
VERSION = "1"
SERVER_NAME = "pqproxy-demo-grpc-model-server"
MAX_DELAY_MS = 60_000
MAX_TICKS = 10_000_000
MAX_TICK_PAYLOAD = 1 << 20
HERE = os.path.dirname(os.path.abspath(__file__))


def load_messages(proto_dir):
    """Compiles the .proto files with grpc_tools' protoc into a descriptor set
    and returns {full message name: class}."""
    with tempfile.TemporaryDirectory(prefix="pqproxy-grpc-demo-") as tmp:
        out = os.path.join(tmp, "descriptors.pb")
        rc = protoc.main(["protoc", f"-I{proto_dir}", "--include_imports",
                          f"--descriptor_set_out={out}", "streamtest.proto"])
        if rc != 0:
            sys.exit(f"demo_grpc_model_server: protoc could not compile the .proto files in {proto_dir}")
        with open(out, "rb") as f:
            fds = descriptor_pb2.FileDescriptorSet.FromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for fd in fds.file:
        pool.Add(fd)
    factory = message_factory.MessageFactory(pool)
    classes = {}

    def add(desc):
        classes[desc.full_name] = factory.GetPrototype(desc)
        for nested in desc.nested_types:
            add(nested)
    for fd in fds.file:
        for m in pool.FindFileByName(fd.name).message_types_by_name.values():
            add(m)
    return classes


class Model:
    """half_plus_two with the protocol's checks; every method raises Abort
    with a gRPC status code and message on a bad request."""

    def __init__(self, m):
        self.m = m

    def check_model(self, name, version):
        if name != MODEL:
            raise Abort(grpc.StatusCode.NOT_FOUND, f"model '{name}' not found (this server has '{MODEL}')")
        if version not in ("", VERSION):
            raise Abort(grpc.StatusCode.NOT_FOUND, f"model '{name}' has no version '{version}' "
                        f"(only '{VERSION}')")

    def metadata(self, req):
        self.check_model(req.name, req.version)
        r = self.m["inference.ModelMetadataResponse"](name=MODEL, versions=[VERSION], platform="pqproxy_demo")
        r.inputs.add(name="x", datatype="FP32", shape=[-1])
        r.outputs.add(name="y", datatype="FP32", shape=[-1])
        return r

    @staticmethod
    def _elements(tensor):
        n = 1
        for d in tensor.shape:
            if d < 0:
                raise Abort(grpc.StatusCode.INVALID_ARGUMENT,
                            f"input '{tensor.name}': negative dimension {d} in shape {list(tensor.shape)}")
            n *= d
        return n

    def _input_values(self, req):
        if len(req.inputs) != 1:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT,
                        f"expected 1 input tensor (x), got {len(req.inputs)}")
        t = req.inputs[0]
        if t.datatype != "FP32":
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT,
                        f"input '{t.name}': datatype must be FP32, got '{t.datatype}'")
        n = self._elements(t)
        if req.raw_input_contents:
            if len(req.raw_input_contents) != len(req.inputs):
                raise Abort(grpc.StatusCode.INVALID_ARGUMENT,
                            f"raw_input_contents has {len(req.raw_input_contents)} entries for "
                            f"{len(req.inputs)} inputs")
            if t.HasField("contents"):
                raise Abort(grpc.StatusCode.INVALID_ARGUMENT,
                            "an input sets contents while raw_input_contents is used")
            raw = req.raw_input_contents[0]
            if len(raw) != 4 * n:
                raise Abort(grpc.StatusCode.INVALID_ARGUMENT,
                            f"input '{t.name}': shape {list(t.shape)} needs {4 * n} bytes of FP32, "
                            f"raw_input_contents has {len(raw)}")
            return list(struct.unpack(f"<{n}f", raw)), True
        values = list(t.contents.fp32_contents)
        if len(values) != n:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT,
                        f"input '{t.name}': shape {list(t.shape)} has {n} elements, "
                        f"fp32_contents has {len(values)}")
        return values, False

    def infer(self, req, context):
        self.check_model(req.model_name, req.model_version)
        for o in req.outputs:
            if o.name != "y":
                raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown output '{o.name}' (the model has 'y')")
        delay = req.parameters["delay_ms"].int64_param if "delay_ms" in req.parameters else 0
        if not 0 <= delay <= MAX_DELAY_MS:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT, f"delay_ms must be 0..{MAX_DELAY_MS}, got {delay}")
        values, raw = self._input_values(req)
        if delay:
            done = threading.Event()
            context.add_callback(done.set)  # cancelled or deadline passed: stop waiting
            done.wait(delay / 1000)
        ys = [x / 2 + 2 for x in values]
        context.set_trailing_metadata((("x-model-version", VERSION),))
        r = self.m["inference.ModelInferResponse"](model_name=MODEL, model_version=VERSION, id=req.id)
        out = r.outputs.add(name="y", datatype="FP32", shape=list(req.inputs[0].shape))
        if raw:
            r.raw_output_contents.append(struct.pack(f"<{len(ys)}f", *ys))
        else:
            out.contents.fp32_contents.extend(ys)
        return r


class Abort(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def echo_request_id(context):
    for k, v in context.invocation_metadata():
        if k == "x-request-id":
            context.send_initial_metadata((("x-request-id", v),))
            return


def unary(fn):
    def handler(req, context):
        echo_request_id(context)
        try:
            return fn(req, context)
        except Abort as e:
            context.abort(e.code, e.message)
    return handler


def streaming(fn):
    def handler(req, context):
        echo_request_id(context)
        try:
            yield from fn(req, context)
        except Abort as e:
            context.abort(e.code, e.message)
    return handler


def build_handlers(m):
    model = Model(m)

    def oip_method(fn, req, resp):
        return grpc.unary_unary_rpc_method_handler(
            unary(fn), request_deserializer=m[req].FromString, response_serializer=m[resp].SerializeToString)

    def ready(req, context):
        model.check_model(req.name, req.version)
        return m["inference.ModelReadyResponse"](ready=True)

    oip = grpc.method_handlers_generic_handler("inference.GRPCInferenceService", {
        "ServerLive": oip_method(lambda req, ctx: m["inference.ServerLiveResponse"](live=True),
                                 "inference.ServerLiveRequest", "inference.ServerLiveResponse"),
        "ServerReady": oip_method(lambda req, ctx: m["inference.ServerReadyResponse"](ready=True),
                                  "inference.ServerReadyRequest", "inference.ServerReadyResponse"),
        "ModelReady": oip_method(ready, "inference.ModelReadyRequest", "inference.ModelReadyResponse"),
        "ServerMetadata": oip_method(
            lambda req, ctx: m["inference.ServerMetadataResponse"](name=SERVER_NAME, version=VERSION),
            "inference.ServerMetadataRequest", "inference.ServerMetadataResponse"),
        "ModelMetadata": oip_method(lambda req, ctx: model.metadata(req),
                                    "inference.ModelMetadataRequest", "inference.ModelMetadataResponse"),
        "ModelInfer": oip_method(model.infer, "inference.ModelInferRequest", "inference.ModelInferResponse"),
    })

    def infer_stream(requests, context):
        for req in requests:
            yield model.infer(req, context)

    def ticks(req, context):
        if req.count > MAX_TICKS or req.payload_size > MAX_TICK_PAYLOAD or req.interval_ms > MAX_DELAY_MS:
            raise Abort(grpc.StatusCode.INVALID_ARGUMENT,
                        f"count <= {MAX_TICKS}, payload_size <= {MAX_TICK_PAYLOAD}, "
                        f"interval_ms <= {MAX_DELAY_MS}")
        payload = b"t" * req.payload_size
        stop = threading.Event()
        context.add_callback(stop.set)
        for seq in range(req.count):
            if req.interval_ms and stop.wait(req.interval_ms / 1000):
                return
            yield m["pqproxy.streamtest.Tick"](seq=seq, payload=payload)

    def upload(requests, context):
        echo_request_id(context)
        n = size = 0
        for t in requests:
            n += 1
            size += len(t.payload)
        return m["pqproxy.streamtest.UploadSummary"](messages=n, bytes=size)

    def ser(name):
        return m[name].SerializeToString

    def de(name):
        return m[name].FromString

    stream_test = grpc.method_handlers_generic_handler("pqproxy.streamtest.StreamTest", {
        "InferStream": grpc.stream_stream_rpc_method_handler(
            streaming(infer_stream), request_deserializer=de("inference.ModelInferRequest"),
            response_serializer=ser("inference.ModelInferResponse")),
        "Ticks": grpc.unary_stream_rpc_method_handler(
            streaming(ticks), request_deserializer=de("pqproxy.streamtest.TicksRequest"),
            response_serializer=ser("pqproxy.streamtest.Tick")),
        "Upload": grpc.stream_unary_rpc_method_handler(
            upload, request_deserializer=de("pqproxy.streamtest.Tick"),
            response_serializer=ser("pqproxy.streamtest.UploadSummary")),
    })
    return (oip, stream_test)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8500, help="0 picks a free port (printed)")
    ap.add_argument("--proto-dir", default=os.path.join(HERE, "proto"))
    ap.add_argument("--workers", type=int, default=16, help="concurrent calls served")
    args = ap.parse_args()
    for name in ("grpc_predict_v2.proto", "streamtest.proto"):
        if not os.path.isfile(os.path.join(args.proto_dir, name)):
            sys.exit(f"demo_grpc_model_server: {os.path.join(args.proto_dir, name)} not found (--proto-dir)")
    if not 1 <= args.workers <= 1000:
        sys.exit("demo_grpc_model_server: --workers must be 1..1000")
    # No SO_REUSEPORT (gRPC's default): a second server on a busy port must fail, not share it.
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=args.workers),
                         handlers=build_handlers(load_messages(args.proto_dir)),
                         options=(("grpc.so_reuseport", 0),))
    try:
        port = server.add_insecure_port(f"{args.host}:{args.port}")
    except RuntimeError as e:
        sys.exit(f"demo_grpc_model_server: cannot listen on {args.host}:{args.port}: {e}")
    if port == 0:  # grpcio < 1.56 reports a bind failure this way
        sys.exit(f"demo_grpc_model_server: cannot listen on {args.host}:{args.port}")
    server.start()
    print(f"demo gRPC model server ({MODEL}, Open Inference Protocol) on h2c {args.host}:{port}", flush=True)
    stopped = threading.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda *_: stopped.set())
    stopped.wait()
    server.stop(grace=2).wait()


if __name__ == "__main__":
    main()
