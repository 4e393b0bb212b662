#!/usr/bin/python3
"""Writes the seed corpus of fuzz/h2c_upstream.c into fuzz/corpus/h2c_upstream/:
what a gRPC model server answers over h2c, made with python3-h2 playing the
server against a python3-h2 client that opens the harness's streams (1, 3,
5, 7: POST ModelInfer, application/grpc, te: trailers). Only the server's
bytes are kept, behind the harness's three bytes (flags, streams, seed).
Run once; the files are committed.

    /usr/bin/python3 fuzz/gen_h2c_upstream_seeds.py   (Debian's python3-h2)
"""
import hashlib
import os
import struct

import h2.config
import h2.connection
import h2.errors
import h2.settings

REQ = [(":method", "POST"), (":scheme", "http"), (":authority", "model:8001"),
       (":path", "/inference.GRPCInferenceService/ModelInfer"),
       ("content-type", "application/grpc"), ("te", "trailers")]
GRPC_HEAD = [(":status", "200"), ("content-type", "application/grpc")]


def grpc_msg(payload):
    return b"\x00" + struct.pack(">I", len(payload)) + payload


class Pair:
    """A server conversation: the client's requests go in, the server's bytes out."""

    def __init__(self, streams, body=False, validate=True, max_streams=None, ping=False):
        self.cli = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.srv = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=False, header_encoding=None, validate_outbound_headers=validate,
            normalize_outbound_headers=validate, validate_inbound_headers=False))
        # one SETTINGS, as the pool sends: the server ACKs exactly one
        self.cli.local_settings = h2.settings.Settings(client=True, initial_values={
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 256 * 1024,
            h2.settings.SettingCodes.ENABLE_PUSH: 0})
        self.cli.initiate_connection()
        if ping:                          # the pool's PING when its connection opens
            self.cli.ping(b"\0" * 8)
        self.cli.increment_flow_control_window(1 << 22)   # as the pool's connection window
        self.srv.initiate_connection()
        if max_streams:
            self.srv.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: max_streams})
        for i in range(streams):
            sid = 1 + 2 * i
            self.cli.send_headers(sid, REQ, end_stream=not body)
            if body:
                self.cli.send_data(sid, grpc_msg(b"\x01" * 1000), end_stream=True)
        self.srv.receive_data(self.cli.data_to_send())
        self.out = self.srv.data_to_send()

    def send(self):
        self.out += self.srv.data_to_send()


def unary(p, sid, status="0", extra=()):
    p.srv.send_headers(sid, GRPC_HEAD)
    p.srv.send_data(sid, grpc_msg(b"\x0a\x05fp32\x12" + b"\x00" * 64))
    p.srv.send_headers(sid, [("grpc-status", status), ("grpc-message", "")] + list(extra),
                       end_stream=True)
    p.send()


def seeds():
    out = {}

    p = Pair(1)
    unary(p, 1, extra=[("x-model-version", "1")])
    out["unary_trailers"] = (0x00, 0, p.out)

    p = Pair(1, ping=True)                # the PING answered (its ACK is the server's first frame after SETTINGS)
    unary(p, 1)
    out["ping_answered"] = (0x00, 0, p.out)

    p = Pair(1)
    p.srv.send_headers(1, GRPC_HEAD + [("grpc-status", "5"), ("grpc-message", "model not found")],
                       end_stream=True)
    p.send()
    out["trailers_only_error"] = (0x02, 0, p.out)

    p = Pair(3)
    unary(p, 1)
    p.srv.close_connection(error_code=h2.errors.ErrorCodes.NO_ERROR, last_stream_id=1)
    p.send()
    q = Pair(2)                           # the refused streams again, on a new connection
    unary(q, 1)
    unary(q, 3)
    out["goaway_retry"] = (0x00, 2, p.out + q.out)

    p = Pair(2)
    p.srv.close_connection(error_code=h2.errors.ErrorCodes.ENHANCE_YOUR_CALM, last_stream_id=0)
    p.send()
    out["goaway_none_processed"] = (0x01, 1, p.out)

    p = Pair(1, max_streams=1)
    unary(p, 1)
    q = Pair(1, max_streams=1)
    unary(q, 1)
    out["max_streams_1"] = (0x08, 1, p.out + q.out)

    p = Pair(3)
    p.srv.reset_stream(1, h2.errors.ErrorCodes.REFUSED_STREAM)
    p.srv.reset_stream(3, h2.errors.ErrorCodes.INTERNAL_ERROR)
    p.srv.send_headers(5, GRPC_HEAD)
    p.srv.reset_stream(5, h2.errors.ErrorCodes.CANCEL)
    p.send()
    out["rst_stream"] = (0x00, 2, p.out)

    p = Pair(1, body=True)
    p.srv.increment_flow_control_window(1 << 20)
    p.srv.increment_flow_control_window(1 << 20, stream_id=1)
    p.srv.send_headers(1, GRPC_HEAD)
    big = grpc_msg(b"\x07" * (80 * 1024))
    for i in range(0, len(big), 16384):
        p.srv.send_data(1, big[i:i + 16384])
    p.srv.send_headers(1, [("grpc-status", "0")], end_stream=True)
    p.send()
    out["large_data_window_update"] = (0x10, 0, p.out)

    p = Pair(1)
    p.srv.send_headers(1, [(":status", "100")])
    p.srv.send_headers(1, [(":status", "200"), ("content-length", "5"), ("content-type", "text/plain")])
    p.srv.send_data(1, b"hello", end_stream=True)
    p.srv.ping(b"12345678")
    p.send()
    out["continue_then_length"] = (0x04, 0, p.out)

    p = Pair(2, validate=False)           # what a broken server might send
    p.srv.send_headers(1, [(b":status", b"200"), (b"X-Bad", b"a\r\nb"), (b"ok", b"v\x00")])
    p.srv.send_headers(3, [(b":status", b"200"), (b"transfer-encoding", b"chunked"),
                           (b"content-length", b"1"), (b"content-length", b"2")], end_stream=True)
    p.send()
    out["bad_fields"] = (0x00, 1, p.out)
    p = Pair(2)                           # stream 3 still held when the pool closes (flag 0x40)
    unary(p, 1)
    out["pool_closed_mid_stream"] = (0x40, 1, p.out)

    p = Pair(1)                           # a stray SETTINGS ACK: nghttp2 ends the session
    p.out += b"\x00\x00\x00\x04\x01\x00\x00\x00\x00"
    out["stray_settings_ack"] = (0x00, 1, p.out)
    return out


def main():
    d = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "h2c_upstream")
    os.makedirs(d, exist_ok=True)
    for name, (flags, streams, raw) in sorted(seeds().items()):
        blob = bytes([flags, streams, 0x2a]) + raw
        path = os.path.join(d, hashlib.sha256(blob).hexdigest()[:16])
        with open(path, "wb") as f:
            f.write(blob)
        print(path, name, len(blob))


if __name__ == "__main__":
    main()
