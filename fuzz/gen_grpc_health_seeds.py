#!/usr/bin/env python3
"""Writes the seed corpus of fuzz/grpc_health.c into fuzz/corpus/grpc_health/:
a probe's conversation after the connection preface (which the harness
sends itself), as grpc-go and grpcio open it: SETTINGS, then one call to
grpc.health.v1.Health, frame by frame with gen_h2_seeds.py's literal-only
HPACK encoder; and bare HealthCheckRequest messages. Each seed starts with
the harness's flag byte. Run once; the files are committed.

    python3 fuzz/gen_grpc_health_seeds.py
"""
import hashlib
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_h2_seeds import (ACK, DATA, END_HEADERS, END_STREAM, HEADERS, SETTINGS,  # noqa: E402
                          block, frame, settings)


def call(sid, method, message):
    head = [(b":method", b"POST"), (b":scheme", b"http"), (b":authority", b"127.0.0.1:9901"),
            (b":path", b"/grpc.health.v1.Health/" + method), (b"content-type", b"application/grpc"),
            (b"te", b"trailers")]
    return (frame(HEADERS, END_HEADERS, sid, block(head))
            + frame(DATA, END_STREAM, sid, b"\x00" + struct.pack(">I", len(message)) + message))


def req(name):
    return b"\x0a" + bytes([len(name)]) + name if name else b""


HELLO = settings((2, 0), (4, 4194304)) + frame(SETTINGS, ACK, 0)
seeds = {
    "check": HELLO + call(1, b"Check", req(b"")),
    "check_readiness": HELLO + call(1, b"Check", req(b"readiness")),
    "check_liveness": HELLO + call(1, b"Check", req(b"liveness")),
    "check_unknown": HELLO + call(1, b"Check", req(b"model")),
    "watch": HELLO + call(1, b"Watch", req(b"")),
    "two_calls": HELLO + call(1, b"Check", req(b"")) + call(3, b"Check", req(b"liveness")),
    "bad_message": HELLO + call(1, b"Check", b"\xff\xff"),
    "msg_fields": req(b"readiness") + b"\x10\x05\x1d\x01\x02\x03\x04",
    "msg_empty": b"",
}
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "grpc_health")
os.makedirs(out, exist_ok=True)
for name, body in seeds.items():
    for flags in (0x03, 0x00, 0x06):
        data = bytes([flags]) + body
        with open(os.path.join(out, hashlib.sha256(data).hexdigest()[:16]), "wb") as f:
            f.write(data)
print(f"{len(seeds) * 3} seeds in {out}")
