#!/usr/bin/env python3
"""Writes the seed corpus of fuzz/h2_session.c into fuzz/corpus/h2_session/:
real client conversations after the connection preface (which the harness
sends itself), built frame by frame with a literal-only HPACK encoder, as
nghttp2, curl and browsers open them. Each seed starts with the harness's
two bytes (flags, split seed). Run once; the files are committed.

    python3 fuzz/gen_h2_seeds.py
"""
import hashlib
import os
import struct

DATA, HEADERS, PRIORITY, RST, SETTINGS, PUSH, PING, GOAWAY, WUPD, CONT = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIO = 0x1, 0x1, 0x4, 0x8, 0x20


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


def hint(n, prefix, first):
    """HPACK integer with a `prefix`-bit prefix, `first` the pattern bits."""
    top = (1 << prefix) - 1
    if n < top:
        return bytes([first | n])
    out, n = [first | top], n - top
    while n >= 128:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def hstr(s):
    return hint(len(s), 7, 0) + s


def block(fields, index=False):
    """Literal fields (with incremental indexing when index), new names."""
    out = b""
    for name, value in fields:
        out += (b"\x40" if index else b"\x00") + hstr(name) + hstr(value)
    return out


def settings(*pairs):
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in pairs))


BASE = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"a.example"), (b":path", b"/")]
POST = [(b":method", b"POST"), (b":scheme", b"https"), (b":authority", b"a.example"),
        (b":path", b"/v2/models/m/infer"), (b"content-type", b"application/grpc"), (b"te", b"trailers")]
HELLO = settings((2, 0), (3, 100), (4, 65535)) + frame(WUPD, 0, 0, struct.pack(">I", 15663105))
ACKS = frame(SETTINGS, ACK, 0)

seeds = {
    "get": HELLO + ACKS + frame(HEADERS, END_STREAM | END_HEADERS, 1, block(BASE, True)),
    "get_indexed_twice": HELLO + frame(HEADERS, END_STREAM | END_HEADERS, 1, block(BASE, True))
        + frame(HEADERS, END_STREAM | END_HEADERS, 3, bytes([0xBE, 0xBF, 0xC0, 0xC1])),
    "post_body_trailers": HELLO + frame(HEADERS, END_HEADERS, 1, block(POST + [(b"content-length", b"10")]))
        + frame(DATA, 0, 1, b"\x00\x00\x00\x00\x05hello") + frame(HEADERS, END_STREAM | END_HEADERS, 1,
                                                               block([(b"x-checksum", b"1")])),
    "post_padded": HELLO + frame(HEADERS, END_HEADERS, 1, block(POST))
        + frame(DATA, PADDED | END_STREAM, 1, b"\x04" + b"body" + b"\x00" * 4),
    "continuation": HELLO + frame(HEADERS, END_STREAM, 1, block(BASE[:2]))
        + frame(CONT, 0, 1, block(BASE[2:3])) + frame(CONT, END_HEADERS, 1, block(BASE[3:])),
    "rapid_reset": HELLO + b"".join(frame(HEADERS, END_STREAM | END_HEADERS, i, block(BASE))
                                    + frame(RST, 0, i, struct.pack(">I", 8)) for i in range(1, 40, 2)),
    "ping_settings": HELLO + frame(PING, 0, 0, b"12345678") + settings((1, 4096)) + frame(PING, ACK, 0, b"\0" * 8),
    "priority_window": HELLO + frame(PRIORITY, 0, 3, struct.pack(">IB", 1, 15))
        + frame(HEADERS, END_STREAM | END_HEADERS | PRIO, 1, struct.pack(">IB", 0, 200) + block(BASE))
        + frame(WUPD, 0, 1, struct.pack(">I", 1000)),
    "goaway": HELLO + frame(HEADERS, END_STREAM | END_HEADERS, 1, block(BASE))
        + frame(GOAWAY, 0, 0, struct.pack(">II", 0, 0) + b"bye"),
    "bad_fields": HELLO + frame(HEADERS, END_STREAM | END_HEADERS, 1,
                                block(BASE + [(b"connection", b"close"), (b"X-Up", b"1")]))
        + frame(HEADERS, END_STREAM | END_HEADERS, 3, block(BASE + [(b"host", b"b.example")])),
    "content_length_short": HELLO + frame(HEADERS, END_HEADERS, 1, block(POST + [(b"content-length", b"9")]))
        + frame(DATA, END_STREAM, 1, b"abc"),
    "zero_window": settings((4, 0)) + b"".join(frame(HEADERS, END_STREAM | END_HEADERS, i, block(BASE))
                                               for i in (1, 3, 5)) + frame(PING, 0, 0, b"\0" * 8) * 8,
    "dynamic_table_resize": HELLO + frame(HEADERS, END_STREAM | END_HEADERS, 1,
                                          b"\x20" + block(BASE, True) + b"\x3f\xe1\x1f"),
}

if __name__ == "__main__":             # gen_grpc_health_seeds.py imports the helpers
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "h2_session")
    os.makedirs(out, exist_ok=True)
    for name, body in seeds.items():
        for flags in (0x01, 0x13, 0x0D):
            data = bytes([flags, len(name)]) + body
            path = os.path.join(out, hashlib.sha256(data).hexdigest()[:16])
            with open(path, "wb") as f:
                f.write(data)
    print(f"{len(seeds) * 3} seeds in {out}")
