#!/usr/bin/env python3
"""The prepared call of loadtest/grpc.sh: one ModelInfer of the demo model
(half_plus_two, x = [1, 2, 5]) built from scripts/proto by the demo gRPC
server's own code, and the response that server computes for it.

    grpcmsg.py OUT_DIR

Writes request.grpc and response.grpc (each one gRPC length-prefixed
message: flag 0, 4-byte big-endian length, the protobuf), request.json
(what tests/integration/peers/grpc_client.mjs sends) and response.json (the
message a client must decode). Needs Debian's python3-grpcio,
python3-grpc-tools and python3-protobuf, like the demo server."""
import json
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import demo_grpc_model_server as demo  # noqa: E402  (exits with a clear message without grpcio)
from google.protobuf import json_format  # noqa: E402


class NoContext:
    """What Model.infer needs of a call's context without a delay."""
    def set_trailing_metadata(self, md):
        pass


def main():
    out = sys.argv[1]
    m = demo.load_messages(os.path.join(ROOT, "scripts", "proto"))
    req = m["inference.ModelInferRequest"](model_name=demo.MODEL, id="bench")
    x = req.inputs.add(name="x", datatype="FP32", shape=[3])
    x.contents.fp32_contents.extend([1.0, 2.0, 5.0])
    resp = demo.Model(m).infer(req, NoContext())
    for name, msg in (("request", req), ("response", resp)):
        body = msg.SerializeToString()
        with open(os.path.join(out, name + ".grpc"), "wb") as f:
            f.write(b"\0" + struct.pack(">I", len(body)) + body)
        with open(os.path.join(out, name + ".json"), "w") as f:
            json.dump(json_format.MessageToDict(msg, preserving_proto_field_name=True), f)


if __name__ == "__main__":
    main()
