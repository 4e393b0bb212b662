#!/usr/bin/env python3
"""Writes the seed corpus of fuzz/h2_translate.c into fuzz/corpus/h2_translate/:
request heads as Node, curl and browsers send them over HTTP/2, and the
smuggling attempts the translation refuses (tests/integration/
test_h2_smuggling.py sends the same over the wire). Each seed: flags byte,
content-length byte, then [name length] name [value length] value records.
Run once; the files are committed.

    python3 fuzz/gen_h2_translate_seeds.py
"""
import hashlib
import os

END, CL_FIELD, CL_BYTE, LIMIT = 0x01, 0x02, 0x04, 0x08


def seed(flags, fields, cl=0):
    out = bytes([flags, cl])
    for name, value in fields:
        out += bytes([len(name)]) + name + bytes([len(value)]) + value
    return out


def req(method=b"GET", path=b"/", auth=b"api.example:8443", extra=()):
    f = [(b":method", method), (b":scheme", b"https"), (b":authority", auth), (b":path", path)]
    return f + list(extra)


SEEDS = [
    seed(END, req(extra=[(b"accept", b"*/*"), (b"user-agent", b"curl/8"), (b"te", b"trailers")])),
    seed(END, req(path=b"/v1/models/m:predict?x=1", extra=[(b"cookie", b"a=1"), (b"cookie", b"b=2")])),
    seed(CL_FIELD, req(b"POST", extra=[(b"content-type", b"application/json"), (b"content-length", b"42")])),
    seed(CL_FIELD | LIMIT, req(b"PUT", extra=[(b"content-length", b"101")])),
    seed(0, req(b"POST", extra=[(b"content-type", b"application/grpc"), (b"te", b"trailers")])),
    seed(END, [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/"), (b"host", b"h.example")]),
    seed(END, req(extra=[(b"host", b"other.example")])),
    seed(END, req(extra=[(b"connection", b"close")])),
    seed(0, req(b"POST", extra=[(b"transfer-encoding", b"chunked")])),
    seed(END, req(extra=[(b"te", b"gzip")])),
    seed(END, req(extra=[(b"x-a", b"1\r\nx-b: 2")])),
    seed(END, req(extra=[(b"x-a", b"1\x00")])),
    seed(END, req(extra=[(b"X-Upper", b"1")])),
    seed(END, req(b"OPTIONS", b"*")),
    seed(END, req(path=b"http://evil/")),
    seed(END, req(path=b"/a HTTP/1.1\r\nHost: x\r\n\r\nGET /b")),
    seed(CL_BYTE, req(b"POST", extra=[(b"content-length", b"5")]), cl=6),
    seed(END | CL_FIELD, req(b"POST", extra=[(b"content-length", b"5")])),
    seed(END, req(b"CONNECT", b"")),
    seed(END, req(b"M-SEARCH")),
]


def main():
    d = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "h2_translate")
    os.makedirs(d, exist_ok=True)
    for s in SEEDS:
        with open(os.path.join(d, hashlib.sha256(s).hexdigest()[:16]), "wb") as f:
            f.write(s)


if __name__ == "__main__":
    main()
