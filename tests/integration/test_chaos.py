#!/usr/bin/env python3
"""Random HTTP/2 and HTTP/1.1 clients against model servers that fail at
random, while the proxy is reloaded.

Six threads open TLS connections (ALPN h2) and play a random script on
each, frame by frame, with their own frame writer and HPACK encoder (no
client library to keep them polite): requests (GET; POST with a body that
matches its content-length or not, ends or never ends, ends in trailers;
gRPC calls, routed to an h2c model server), DATA past the window, RST_STREAM
on open, closed, unopened and even streams, WINDOW_UPDATE of 0 and of
2^31-1, SETTINGS (any initial window, frame size, concurrency, a bad
ENABLE_PUSH), PINGs of the wrong size, PRIORITY on itself, a header block
in CONTINUATIONs (or interrupted by another frame), unknown frame types,
bare garbage, GOAWAY; they read at once, late or not at all; they end with
FIN, RST or a clean close. Two more threads (ALPN http/1.1) pipeline one to
four random requests per connection (a fifth of them gRPC-routed, so
translated to the h2c model server): GET, HEAD, POST with a body by
content-length (right or short), chunked (with or without trailers) or
after Expect: 100-continue, HTTP/1.0, Connection: close, and now and then
what must be refused (content-length with transfer-encoding, a list of
lengths, a bad field name, a NUL, an obs-fold, a 70 KB field, garbage),
sent whole or in pieces, read or abandoned. The proxy is reloaded (SIGHUP)
every 3 s meanwhile, and the HTTP/1.1 model server's connections are
capped (upstream.max_connections 6). The paths asked for make that server
(upstream.py) and the h2c one (peers/h2c_fault_server.py) reset, close,
stall, send garbage, or cut a body short, or answer slowly or at length;
the h2c one also falls silent on a whole connection (found by the proxy's
PING and closed).

What the proxy sends back is parsed by the test and must be well-formed
whatever the client did. Over HTTP/2: no frame above the client's
SETTINGS_MAX_FRAME_SIZE (16,384; the client never raises it in effect),
nothing on an even stream, no HEADERS or DATA on a stream the client never
opened, header blocks that decode (the proxy's HPACK state stays
consistent), every response head with a three-digit :status and no
connection-specific field, trailers without pseudo-fields, a body that
ends with END_STREAM only when it matches the response's content-length.
Over HTTP/1.1: status lines and fields in the grammar (no control byte),
one framing per response (never content-length and transfer-encoding
together, no conflicting lengths), well-formed chunks and trailers, no more
responses than requests, nothing after a response that says Connection:
close. On both, the errors of the proxy itself (5xx from the HTTP/1.1
route) are its JSON {"error", "detail"}.

Afterwards the proxy (ASan/UBSan in that build) must be alive and clean,
serve a normal request and a gRPC-routed one, and return to its footprint
before the storm: file descriptors exactly; heap within pxfaults.MEM_SLACK
in the ASan build, whose allocator counts exactly what is in use. glibc's
count (the normal build) includes the chunks each thread keeps cached for
reuse (tcache, up to 7 per size class), which a storm of every size fills:
seen 50-130 KB above the baseline there, not growing with the storm's
length; GLIBC_CACHE_SLACK allows for them.

PX_CHAOS_SECONDS (default 20) sets the storm's length, PX_CHAOS_SEED its
seed (default: a new one, printed, so a failure can be replayed; the
threads' timing still varies) and PX_CHAOS_GRPC the share of HTTP/2
requests that are gRPC calls (default 0.3)."""
import json
import os
import random
import re
import select
import signal
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pxtest  # noqa: E402
from pxtest import IncompleteResponse, TestFailure, check, http_request, main  # noqa: E402
from pxfaults import LINGER0, FaultEnv, fd_kinds, metric  # noqa: E402
from pxhelpers import is_asan_build  # noqa: E402
from test_h2_smuggling import h2  # noqa: E402  (re-runs under Debian's Python if needed)
from test_grpc_proxy import h2_python  # noqa: E402
if h2 is not None:
    import hpack  # noqa: E402  (python3-h2's dependency)

H2C_FAULT = os.path.join(pxtest.HERE, "peers", "h2c_fault_server.py")
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED, PRIO = 0x1, 0x1, 0x4, 0x8, 0x20
MAX_FRAME = 16384                       # the client never raises its SETTINGS_MAX_FRAME_SIZE
CONN_SPECIFIC = {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding",
                 b"upgrade"}
THREADS = 6                             # HTTP/2 clients; and H1_THREADS HTTP/1.1 ones
H1_THREADS = 2
GLIBC_CACHE_SLACK = 512 * 1024          # 2 workers x glibc's tcache (~235 KB per thread when full)
SECONDS = float(os.environ.get("PX_CHAOS_SECONDS", "20"))

H1_PATHS = ["/echo", "/delay/20", "/delay/300", "/bytes/200000", "/bytes/3000?cut=reset",
            "/bytes/50000?cut=garbage", "/bytes/20000?cut=fin", "/fault/reset", "/fault/fin",
            "/fault/garbage", "/fault/stall", "/early-fault/reset", "/early-fault/garbage",
            "/upload-sha", "/sse?n=5&interval_ms=30", "/trailers", "/no-length?n=3000"]
H2C_PATHS = ["/ok", "/delay/20", "/delay/400", "/bytes/150000", "/trailers", "/fields/50",
             "/fault/reset", "/fault/fin", "/fault/garbage", "/fault/stall", "/fault/rst_stream",
             "/fault/goaway", "/fault/hold", "/fault/wedge", "/cut/reset", "/cut/garbage",
             "/cut/rst_stream"]


def frame(kind, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + \
        struct.pack(">I", sid & 0xFFFFFFFF) + payload


class Violation(Exception):
    """Something the proxy sent that no client may be sent."""


class Reader:
    """The proxy's side of one connection, checked frame by frame."""

    def __init__(self, opened, h1):
        self.buf = b""
        self.dec = hpack.Decoder()
        self.opened = opened                # the client's stream ids, as it opened them
        self.h1 = h1                        # those routed to the HTTP/1.1 model server
        self.credit = {}                    # DATA bytes taken, by stream (0: the connection)
        self.settings = 0                   # SETTINGS of the proxy not acknowledged yet
        self.block = None                   # (sid, flags, bytes) of a header block in CONTINUATIONs
        self.resp = {}                      # sid -> {"status", "cl", "n", "grpc", "body"}
        self.goaway = False
        self.closed = False
        self.seen = {}                      # what came back, for the tally

    def count(self, what):
        self.seen[what] = self.seen.get(what, 0) + 1

    def feed(self, data):
        self.buf += data
        while len(self.buf) >= 9:
            n = int.from_bytes(self.buf[:3], "big")
            if n > MAX_FRAME:
                raise Violation(f"a frame of {n} bytes (SETTINGS_MAX_FRAME_SIZE {MAX_FRAME})")
            if len(self.buf) < 9 + n:
                return
            kind, flags = self.buf[3], self.buf[4]
            sid = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
            payload, self.buf = self.buf[9:9 + n], self.buf[9 + n:]
            self.frame(kind, flags, sid, payload)

    def frame(self, kind, flags, sid, payload):
        if self.block and kind != CONTINUATION:
            raise Violation(f"frame type {kind} inside a header block of stream {self.block[0]}")
        if sid and sid % 2 == 0:
            raise Violation(f"frame type {kind} on even stream {sid}")
        if kind == PUSH_PROMISE:
            raise Violation("PUSH_PROMISE")
        if kind in (DATA, HEADERS, CONTINUATION) and (sid == 0 or sid not in self.opened):
            raise Violation(f"frame type {kind} on stream {sid}, which the client never opened")
        if kind == GOAWAY:
            self.goaway = True
            self.count("GOAWAY")
        elif kind == SETTINGS and not flags & ACK:
            self.settings += 1
        elif kind == HEADERS:
            if flags & PADDED:
                payload = payload[1:len(payload) - payload[0]]
            if flags & PRIO:
                payload = payload[5:]
            self.block = (sid, flags, payload)
            if flags & END_HEADERS:
                self.header_block()
        elif kind == CONTINUATION:
            if not self.block or self.block[0] != sid:
                raise Violation(f"CONTINUATION on stream {sid} outside its header block")
            self.block = (sid, self.block[1] | (flags & END_HEADERS), self.block[2] + payload)
            if flags & END_HEADERS:
                self.header_block()
        elif kind == DATA:
            r = self.resp.get(sid)
            if r is None or r["status"] is None:
                raise Violation(f"DATA on stream {sid} before a response head")
            for k in (0, sid):                      # flow control counts the padding too
                self.credit[k] = self.credit.get(k, 0) + len(payload)
            if flags & PADDED:
                payload = payload[1:len(payload) - payload[0]]
            r["n"] += len(payload)
            if len(r["body"]) < 4096:
                r["body"] += payload[:4096]
            if flags & END_STREAM:
                self.ended(sid, r)
        elif kind == RST_STREAM:
            self.resp.pop(sid, None)
            self.count("RST_STREAM")

    def header_block(self):
        sid, flags, block = self.block
        self.block = None
        try:
            fields = self.dec.decode(block, raw=True)
        except Exception as e:  # noqa: BLE001 - any decoding failure is the proxy's
            raise Violation(f"a header block on stream {sid} that does not decode: {e!r}")
        names = [n for n, _ in fields]
        for n in names:
            if n != n.lower():
                raise Violation(f"an uppercase field name {n!r} on stream {sid}")
            if n in CONN_SPECIFIC:
                raise Violation(f"connection-specific field {n!r} on stream {sid}")
        r = self.resp.setdefault(sid, {"status": None, "cl": None, "n": 0, "grpc": None, "body": b"",
                                       "h1": sid in self.h1})
        pseudo = [(n, v) for n, v in fields if n.startswith(b":")]
        if r["status"] is None or r["status"] < 200:    # a head (interim or final)
            if not pseudo or pseudo[0][0] != b":status" or len(pseudo) != 1:
                raise Violation(f"a response head on stream {sid} with pseudo-fields {pseudo}")
            if not re.fullmatch(rb"[1-5][0-9][0-9]", pseudo[0][1]):
                raise Violation(f"status {pseudo[0][1]!r} on stream {sid}")
            r["status"] = int(pseudo[0][1])
            for n, v in fields:
                if n == b"content-length":
                    if not v.isdigit():
                        raise Violation(f"content-length {v!r} on stream {sid}")
                    r["cl"] = int(v)
                elif n == b"grpc-status":
                    r["grpc"] = v
        elif pseudo:
            raise Violation(f"trailers with pseudo-fields {pseudo} on stream {sid}")
        if flags & END_STREAM:
            self.ended(sid, r)

    def ended(self, sid, r):
        self.resp.pop(sid, None)
        self.count(f"{r['status'] // 100}xx" if r["status"] else "no status")
        if r["status"] is not None and r["status"] < 200:
            raise Violation(f"stream {sid} ended after an interim {r['status']}")
        if r["cl"] is not None and r["n"] != r["cl"]:
            raise Violation(f"stream {sid} ended after {r['n']} body bytes, content-length {r['cl']}")
        if r["grpc"] is not None and r["status"] != 200:
            raise Violation(f"grpc-status with HTTP {r['status']} on stream {sid}")
        if r["status"] >= 500 and r["h1"] and r["n"] == len(r["body"]):
            try:
                doc = json.loads(r["body"])
                ok = isinstance(doc, dict) and "error" in doc and "detail" in doc
            except ValueError:
                ok = False
            if not ok:
                raise Violation(f"a {r['status']} of the proxy that is not its JSON error: "
                                f"{r['body'][:200]!r}")


class Client:
    """One connection's random script."""

    def __init__(self, port, ca, rnd, tally):
        self.rnd = rnd
        self.tally = tally
        self.s = pxtest.tls_connect(port, ca, alpn=["h2"], timeout=5)
        self.enc = hpack.Encoder()
        self.next_sid = 1
        self.opened = set()
        self.open = []                      # streams whose request may still send DATA
        self.h1 = set()                     # streams routed to the HTTP/1.1 model server
        self.r = Reader(self.opened, self.h1)
        self.reading = True
        self.hostile = rnd.random() < 0.3
        self.out(PREFACE + frame(SETTINGS, 0, 0, struct.pack(">HI", 2, 0)))

    def out(self, data):
        self.s.sendall(data)

    def pump(self, wait=0.0):
        """Reads what has arrived (waiting up to `wait` for the first)."""
        if not self.reading:
            return
        deadline = time.monotonic() + wait
        while True:
            left = max(0.0, deadline - time.monotonic())
            if not self.s.pending() and not select.select([self.s], [], [], left)[0]:
                return
            try:
                data = self.s.recv(65536)
            except OSError as e:                    # a reset, or a TLS alert
                self.tally[type(e).__name__] = self.tally.get(type(e).__name__, 0) + 1
                data = b""
            if not data:
                self.r.closed = True
                self.reading = False
                return
            self.r.feed(data)
            self.answer()

    def answer(self):
        """Acknowledges the proxy's SETTINGS and opens the windows its DATA
        used, each most of the time (a client that does not is a case too)."""
        rnd, r = self.rnd, self.r
        if r.settings and rnd.random() < 0.9:
            self.out(frame(SETTINGS, ACK, 0) * r.settings)
            r.settings = 0
        if r.credit and rnd.random() < 0.7:
            self.out(b"".join(frame(WINDOW_UPDATE, 0, sid, struct.pack(">I", n))
                              for sid, n in r.credit.items() if n))
            r.credit.clear()

    def head(self, sid, fields, end_stream, split=False):
        block = self.enc.encode(fields)
        flags = END_STREAM if end_stream else 0
        if split and len(block) > 2:
            cut = self.rnd.randint(1, len(block) - 1)
            self.out(frame(HEADERS, flags, sid, block[:cut]))
            if self.hostile and self.rnd.random() < 0.2:    # a frame inside the block
                self.out(frame(PING, 0, 0, b"\0" * 8))
            self.out(frame(CONTINUATION, END_HEADERS, sid, block[cut:]))
        else:
            self.out(frame(HEADERS, flags | END_HEADERS, sid, block))

    def new_stream(self):
        rnd, sid = self.rnd, self.next_sid
        self.next_sid += 2
        self.opened.add(sid)
        grpc = rnd.random() < float(os.environ.get("PX_CHAOS_GRPC", "0.3"))
        path = rnd.choice(H2C_PATHS if grpc else H1_PATHS)
        fields = [(":method", "POST" if grpc or rnd.random() < 0.4 else "GET"), (":scheme", "https"),
                  (":path", path), (":authority", "localhost")]
        if grpc:
            fields += [("content-type", "application/grpc"), ("te", "trailers")]
            if rnd.random() < 0.3:
                fields.append(("grpc-timeout", f"{rnd.randint(1, 500)}m"))
        else:
            self.h1.add(sid)
        body = fields[0][1] == "POST"
        if body and rnd.random() < 0.6:
            fields.append(("content-length", str(rnd.choice([0, 5, 1000, 70000, 1 << 20]))))
        if rnd.random() < 0.1:                      # a request the proxy must refuse
            fields.append(rnd.choice([("connection", "close"), ("te", "gzip"), ("x-a", "b\r\nc"),
                                      ("transfer-encoding", "chunked"), (":path", "/again"),
                                      ("content-length", "1, 2"), ("Upper", "x"), ("host", "other")]))
        self.head(sid, fields, end_stream=not body, split=rnd.random() < 0.15)
        if body:
            self.open.append(sid)

    def send_body(self):
        rnd = self.rnd
        sid = rnd.choice(self.open)
        n = rnd.choice([0, 1, 100, 5000, 16384, 40000])
        end = rnd.random() < 0.4
        while True:
            piece, n = min(n, MAX_FRAME), n - min(n, MAX_FRAME)
            last = n == 0
            self.out(frame(DATA, END_STREAM if end and last else 0, sid, b"d" * piece))
            if last:
                break
        if end:
            self.open.remove(sid)
        elif rnd.random() < 0.15:                   # trailers end it instead
            self.head(sid, [("x-trailer", "t")] if rnd.random() < 0.8 else [(":path", "/late")],
                      end_stream=True)
            self.open.remove(sid)

    def any_sid(self):
        """A stream id to aim at: an opened one, or (hostile) any id at all."""
        rnd = self.rnd
        if not self.hostile or rnd.random() < 0.5:
            return rnd.choice(sorted(self.opened)) if self.opened else 1
        return rnd.choice([self.next_sid, self.next_sid + 40, 2, 0, 0x7FFFFFFF])

    def act(self):
        """One step. A polite connection sends only what HTTP/2 allows (its
        requests may still be refused, reset or abandoned); a hostile one
        also what ends a connection (bad frames, sizes and values)."""
        rnd, hostile = self.rnd, self.hostile
        k = rnd.random()
        if k < 0.30:
            self.new_stream()
        elif k < 0.48 and self.open:
            self.send_body()
        elif k < 0.54 and (self.opened or hostile):
            sid = self.any_sid()
            self.out(frame(RST_STREAM, 0, sid, struct.pack(">I", rnd.choice([0, 8, 1, 99]))))
            if sid in self.open:
                self.open.remove(sid)
        elif k < 0.62:
            inc = rnd.choice([1, 1000, 65535, 1 << 20] + ([0x7FFFFFFF, 0] if hostile else []))
            self.out(frame(WINDOW_UPDATE, 0, rnd.choice([0, self.any_sid()]), struct.pack(">I", inc)))
        elif k < 0.67:
            window = [0, 1, 100, 65535, 1 << 20] + ([0x7FFFFFFF, 0x80000000] if hostile else [])
            ident, value = rnd.choice([(4, rnd.choice(window)), (3, rnd.choice([0, 1, 1000])),
                                       (0x99, 7)] + ([(2, 2), (5, rnd.choice([100, 1 << 25]))]
                                                     if hostile else []))
            self.out(frame(SETTINGS, 0, 0, struct.pack(">HI", ident, value)))
        elif k < 0.71:
            bad = hostile and rnd.random() < 0.5
            self.out(frame(PING, rnd.choice([0, 0, ACK]), 1 if bad else 0, b"p" * (7 if bad else 8)))
        elif k < 0.74:
            sid = self.any_sid()
            self.out(frame(PRIORITY, 0, sid, struct.pack(">IB", rnd.choice([sid, 0, 3]), 15)))
        elif k < 0.77:                              # unknown frame types are ignored
            self.out(frame(rnd.randint(10, 255), rnd.randint(0, 255), self.any_sid(),
                           rnd.randbytes(rnd.randint(0, 40))))
        elif k < 0.79 and hostile:
            self.out(rnd.randbytes(rnd.randint(1, 60)))
        elif k < 0.80:
            self.out(frame(GOAWAY, 0, 0, struct.pack(">II", rnd.choice([0, 1, 0x7FFFFFFF]), 0)))
        elif k < 0.85:
            self.reading = False                    # stops reading for a while
        elif k < 0.93:
            self.reading = not self.r.closed
            self.pump(rnd.random() * 0.05)
        else:
            time.sleep(rnd.random() * 0.05)
        if self.reading:
            self.pump()

    def end(self):
        rnd = self.rnd
        how = rnd.random()
        if how < (0.4 if self.hostile else 0.6):    # read what comes, then close
            self.reading = not self.r.closed
            deadline = time.monotonic() + rnd.random() * 2
            while self.reading and time.monotonic() < deadline:
                self.pump(0.1)
            self.s.close()
        elif how < 0.7:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
            self.s.close()
        else:
            socket.socket.shutdown(self.s, socket.SHUT_WR)
            time.sleep(rnd.random() * 0.3)
            self.s.close()


def h2_connection(port, ca, rnd, tally):
    """One HTTP/2 connection's random script; what came back checked (Reader)."""
    c = Client(port, ca, rnd, tally)
    try:
        for _ in range(rnd.randint(1, 60)):
            c.act()
            if c.r.closed:
                break
        c.end()
    finally:
        c.s.close()
        for k, v in c.r.seen.items():
            tally[k] = tally.get(k, 0) + v


def storm(connection, port, ca, seed, until, tally, violations):
    """connection(port, ca, rnd, tally) again and again until `until` or a
    violation (in any thread)."""
    rnd = random.Random(seed)
    n = 0
    while time.monotonic() < until and not violations:
        n += 1
        try:
            connection(port, ca, rnd, tally)
            tally["connections"] = tally.get("connections", 0) + 1
        except Violation as e:
            violations.append(f"{connection.__name__} seed {seed}, connection {n}: {e}")
        except (OSError, ValueError) as e:          # resets, closes and timeouts are the point
            tally[type(e).__name__] = tally.get(type(e).__name__, 0) + 1


# --- HTTP/1.1: random requests, every response checked ---------------------------------------

TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
FIELD_VALUE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")
STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([1-5][0-9][0-9]) ([\t\x20-\x7e\x80-\xff]*)")
H1_HEAD_MAX = 1 << 20


class H1Reader:
    """The proxy's side of one HTTP/1.1 connection, checked as it comes:
    status lines and fields in the grammar (no control byte), one framing
    (not content-length and transfer-encoding both; one content-length),
    chunks well-formed, no more responses than requests, nothing after a
    response that said Connection: close, and the proxy's own 5xx its JSON
    error."""

    def __init__(self):
        self.buf = b""
        self.sent = []                      # the methods of the requests sent, in order
        self.answered = 0
        self.closing = False                # a response said Connection: close
        self.body_left = None               # bytes of a content-length body still to come
        self.chunked = False
        self.body = b""
        self.resp = None
        self.seen = {}

    def feed(self, data):
        self.buf += data
        while self.step():
            pass

    def step(self):
        if self.resp is None:
            if self.closing and self.buf:
                raise Violation(f"bytes after a response with Connection: close: {self.buf[:60]!r}")
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > H1_HEAD_MAX:
                    raise Violation("a response head over 1 MiB")
                return False
            self.head(self.buf[:end].split(b"\r\n"))
            self.buf = self.buf[end + 4:]
            return True
        if self.body_left is not None:
            n = min(self.body_left, len(self.buf))
            self.body += self.buf[:n][:4096 - len(self.body)]
            self.buf, self.body_left = self.buf[n:], self.body_left - n
            if self.body_left == 0:
                self.body_left = None
                if not self.chunked:
                    self.done()
                    return True
                if len(self.buf) < 2:
                    self.body_left = 0          # the CRLF after the chunk's data is still to come
                    return False
                if self.buf[:2] != b"\r\n":
                    raise Violation(f"chunk data not followed by CRLF: {self.buf[:20]!r}")
                self.buf = self.buf[2:]
                return True
            return False
        if self.chunked:
            end = self.buf.find(b"\r\n")
            if end < 0:
                return False
            line, self.buf = self.buf[:end], self.buf[end + 2:]
            if self.resp["trailers"]:
                if line == b"":
                    self.done()
                elif not (TOKEN.fullmatch(line.partition(b":")[0]) and line.partition(b":")[1]):
                    raise Violation(f"a bad trailer line {line!r}")
                return True
            m = re.fullmatch(rb"([0-9a-fA-F]{1,15})(;[\t\x20-\x7e]*)?", line)
            if not m:
                raise Violation(f"a bad chunk-size line {line!r}")
            size = int(m.group(1), 16)
            if size == 0:
                self.resp["trailers"] = True
            else:
                self.body_left = size
            return True
        return False                            # read until the connection closes

    def head(self, lines):
        m = STATUS_LINE.fullmatch(lines[0])
        if not m:
            raise Violation(f"a bad status line {lines[0][:100]!r}")
        status, fields = int(m.group(1)), {}
        for ln in lines[1:]:
            name, sep, value = ln.partition(b":")
            if not sep or not TOKEN.fullmatch(name) or not FIELD_VALUE.fullmatch(value):
                raise Violation(f"a bad field line {ln[:100]!r} (status {status})")
            fields.setdefault(name.lower(), []).append(value.strip())
        if 100 <= status < 200:                 # interim: no body, the final one follows
            self.seen["1xx"] = self.seen.get("1xx", 0) + 1
            return
        if self.answered >= len(self.sent):
            raise Violation(f"a {status} answering no request ({len(self.sent)} sent)")
        cls, te = fields.get(b"content-length", []), fields.get(b"transfer-encoding", [])
        if cls and te:
            raise Violation(f"a {status} with both content-length and transfer-encoding")
        if len(set(cls)) > 1 or any(not v.isdigit() for v in cls):
            raise Violation(f"a {status} with content-length {cls}")
        self.resp = {"status": status, "trailers": False,
                     "json": b"application/json" in b"".join(fields.get(b"content-type", []))}
        if b"close" in b",".join(fields.get(b"connection", [])).lower():
            self.closing = True
        self.body, self.chunked = b"", False
        method = self.sent[self.answered]
        self.resp["json"] = self.resp["json"] and method != "HEAD"     # a HEAD's answer has no body
        if method == "HEAD" or status in (204, 304):
            self.done()
        elif te:
            if te[-1].lower().split(b",")[-1].strip() != b"chunked":
                raise Violation(f"a {status} with transfer-encoding {te} not ending in chunked")
            self.chunked = True
        elif cls:
            self.body_left = int(cls[0])
            if self.body_left == 0:
                self.body_left = None
                self.done()
        else:
            self.closing = True                 # delimited by the close

    def done(self):
        r, self.resp = self.resp, None
        self.answered += 1
        self.seen[f"{r['status'] // 100}xx"] = self.seen.get(f"{r['status'] // 100}xx", 0) + 1
        if r["status"] >= 500 and r["json"] and len(self.body) < 4096:
            try:
                doc = json.loads(self.body)
                ok = isinstance(doc, dict) and "error" in doc and "detail" in doc
            except ValueError:
                ok = False
            if not ok:
                raise Violation(f"a {r['status']} of the proxy that is not its JSON error: {self.body[:200]!r}")

    def closed(self):
        """The proxy closed: a close-delimited body ends here; any other cut
        is a response cut short (allowed: the model server may fail
        mid-body), but not mid-head."""
        if self.resp is not None and self.body_left is None and not self.chunked:
            self.done()


def h1_request(rnd):
    """(method, bytes, short) of one random request, right or wrong; short:
    its content-length promises more than it sends (the proxy would take the
    next request's bytes for the rest of its body)."""
    method = rnd.choice(["GET"] * 5 + ["POST"] * 4 + ["HEAD"])
    grpc = rnd.random() < 0.2                   # translated to the h2c model server
    path = rnd.choice(H2C_PATHS if grpc else H1_PATHS + ["/continue"])
    version = "HTTP/1.0" if rnd.random() < 0.1 else "HTTP/1.1"
    lines = [f"{method} {path} {version}"]
    if grpc:
        lines += ["Content-Type: application/grpc", "TE: trailers"]
    if rnd.random() < 0.95:
        lines.append("Host: localhost")
    if rnd.random() < 0.1:
        lines.append("Connection: close")
    body, framing = b"", None
    if method == "POST":
        framing = rnd.choice(["length", "length", "chunked", "short"])
        data = b"b" * rnd.choice([0, 10, 5000, 70000])
        if rnd.random() < 0.2:
            lines.append("Expect: 100-continue")
        if framing == "chunked":
            lines.append("Transfer-Encoding: chunked")
            pieces, i = [], 0
            while i < len(data):
                n = rnd.randint(1, 20000)
                pieces.append(b"%x\r\n" % len(data[i:i + n]) + data[i:i + n] + b"\r\n")
                i += n
            body = b"".join(pieces) + (b"0\r\nx-t: 1\r\n\r\n" if rnd.random() < 0.3 else b"0\r\n\r\n")
        else:
            lines.append(f"Content-Length: {len(data) + (100 if framing == 'short' else 0)}")
            body = data
    if rnd.random() < 0.12:                 # a request the proxy must refuse (or a smuggling try)
        lines.append(rnd.choice(["Content-Length: 5\r\nTransfer-Encoding: chunked", "Content-Length: 1, 2",
                                 "Transfer-Encoding: gzip", "Bad Name: x", "X-A: b\x00c", " folded: x",
                                 "Content-Length: -1", "X-Big: " + "y" * 70000, "Transfer-Encoding: chunked, x"]))
    return method, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body, framing == "short"


def h1_connection(port, ca, rnd, tally):
    """One connection's random pipeline; the responses checked (H1Reader)."""
    s = pxtest.tls_connect(port, ca, alpn=["http/1.1"], timeout=5)
    r = H1Reader()
    try:
        out = b""
        for _ in range(rnd.randint(1, 4)):
            method, data, short = h1_request(rnd)
            r.sent.append(method)
            out += data
            if short:                           # what follows would be read as its body
                break
        if rnd.random() < 0.05:                 # answered as a request (400) if not taken as a body
            out += rnd.randbytes(rnd.randint(1, 200))
            r.sent.append("garbage")
        if rnd.random() < 0.5:
            s.sendall(out)
        else:                                   # in random pieces
            i = 0
            while i < len(out):
                n = rnd.randint(1, 3000)
                s.sendall(out[i:i + n])
                i += n
                if rnd.random() < 0.1:
                    time.sleep(0.01)
        if rnd.random() < 0.15:                 # gone without reading
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
            return
        deadline = time.monotonic() + 4
        while r.answered < len(r.sent) and time.monotonic() < deadline:
            if not s.pending() and not select.select([s], [], [], 0.2)[0]:
                continue
            try:
                data = s.recv(65536)
            except OSError as e:
                tally[type(e).__name__] = tally.get(type(e).__name__, 0) + 1
                data = b""
            if not data:
                r.closed()
                break
            r.feed(data)
    finally:
        s.close()
        for k, v in r.seen.items():
            tally[k] = tally.get(k, 0) + v


def grpc_call(env, path):
    """One gRPC-routed request over HTTP/1.1 on a new connection (either
    worker); the status, or None when the connection broke."""
    s = env.connect()
    try:
        return http_request(s, "POST", path, headers=[("Content-Type", "application/grpc"),
                                                      ("TE", "trailers")], body=b"").status
    except (OSError, IncompleteResponse):
        return None
    finally:
        s.close()


def h2c_links(env, port):
    return sum(n for k, n in fd_kinds(env.px.proc.pid, env.upstream_port, env.px.admin_port)[2].items()
               if k.startswith("tcp ESTABLISHED ") and k.endswith(f"->{port}"))


def drop_h2c(env, port):
    """Closes the proxy's h2c connections: the pool keeps them while the model
    server does (it has no idle timeout of its own), and the footprint is
    compared without them. A request for /fault/goaway on each makes the
    server say GOAWAY and close it."""
    for _ in range(60):
        if not h2c_links(env, port):
            return
        grpc_call(env, "/fault/goaway")
        time.sleep(0.05)
    raise TestFailure(f"the proxy keeps {h2c_links(env, port)} connections to the h2c model server")


def test_random_clients_and_faulty_model_servers(h):
    if h2 is None:
        pxtest.skip("python3-h2 is not installed (scripts/deps.sh --test-tools)")
    signal.alarm(max(signal.alarm(0), int(SECONDS) + 120))     # pxtest's budget, for a longer storm
    up2 = h.start("h2c-faults", [h2_python(), H2C_FAULT], ready="line", line=r"^READY (\d+)$")
    h2c_port = int(up2.ready_match.group(1))

    def warm(env):                  # the h2c paths of both workers in the baseline, no connection
        for _ in range(12):
            check(grpc_call(env, "/ok") == 200, "a gRPC-routed request in the warm-up")
        drop_h2c(env, h2c_port)
    # h2c_max_streams 4: a second connection, and requests waiting for a stream, under load;
    # upstream.max_connections 6: requests waiting for an HTTP/1.1 link (and 503 past 1 s);
    # /fault/wedge silences an h2c connection: found by its PING (1 s) and closed
    env = FaultEnv(h, {"tls": {"alpn": ["h2", "http/1.1"], "pq_policy": "prefer"},
                       "http2": {"stall_timeout_ms": 1500},
                       "upstream": {"max_connections": 6}, "timeouts": {"upstream_queue_ms": 1000},
                       "upstreams": {"h2c": {"address": f"127.0.0.1:{h2c_port}", "protocol": "h2c",
                                             "h2c_max_streams": 4, "h2c_ping_timeout_ms": 1000}},
                       "routes": [{"prefix": "/", "grpc": True, "upstream": "h2c"}, {"prefix": "/"}]},
                   warm=warm)
    if not is_asan_build():
        env.mem_slack = GLIBC_CACHE_SLACK
    seed = int(os.environ.get("PX_CHAOS_SEED") or random.SystemRandom().randrange(1 << 32))
    print(f"  seed {seed} (PX_CHAOS_SEED), {SECONDS:.0f} s, {THREADS} HTTP/2 and {H1_THREADS} HTTP/1.1 "
          "clients", flush=True)
    until = time.monotonic() + SECONDS
    tallies = [{} for _ in range(THREADS + H1_THREADS)]
    violations = []
    threads = [threading.Thread(target=storm, args=(h2_connection if i < THREADS else h1_connection,
                                                    env.px.port, env.ca, seed + i, until, tallies[i],
                                                    violations)) for i in range(THREADS + H1_THREADS)]
    for t in threads:
        t.start()
    reloads = 0
    while time.monotonic() < until - 2:         # reloads in the storm: every HTTP/2 connection gets GOAWAY
        time.sleep(min(3.0, max(0.0, until - 2 - time.monotonic())))
        env.px.proc.send_signal(signal.SIGHUP)
        reloads += 1
    for t in threads:
        t.join(SECONDS + 60)
    check(not any(t.is_alive() for t in threads), "the clients finished")
    total, h1 = {}, {}
    for i, t in enumerate(tallies):
        for k, v in t.items():
            into = total if i < THREADS else h1
            into[k] = into.get(k, 0) + v
    print(f"  HTTP/2 {total}, HTTP/1.1 {h1}", flush=True)
    if violations:
        raise TestFailure("the proxy sent what no client may be sent: " + " | ".join(violations[:5]))
    check(total.get("connections", 0) >= THREADS * 5 and total.get("2xx", 0) and h1.get("2xx", 0),
          f"the clients got through connections and answers: {total}, {h1}")
    check(env.px.proc.alive(), "the proxy is up after the storm")
    pxtest.wait_until(lambda: metric(env.px, 'pqproxy_config_reloads_total{result="ok"}') == reloads,
                      msg=f"{reloads} reloads done")
    st = grpc_call(env, "/ok?after-the-storm")
    if st != 200:
        with open(up2.out_path) as f:
            seen = sum("after-the-storm" in ln for ln in f)
        raise TestFailure(f"a gRPC-routed request after the storm (seed {seed}): {st}; the h2c model "
                          f"server saw it {seen} time(s); the proxy holds {h2c_links(env, h2c_port)} "
                          "connection(s) to it")
    drop_h2c(env, h2c_port)
    # busy counts the h2c pool's connections too: none are left (drop_h2c)
    upstream = lambda: (metric(env.px, "pqproxy_upstream_queued_requests"),  # noqa: E731
                        metric(env.px, 'pqproxy_upstream_connections{state="busy"}'))
    try:
        pxtest.wait_until(lambda: upstream() == (0, 0), timeout=10, msg="")
    except TestFailure:
        raise TestFailure(f"after the storm (seed {seed}): (waiting, busy) upstream links {upstream()}, "
                          "not (0, 0) after 10 s")
    problem = env.after_case()
    if problem:
        raise TestFailure(f"after the storm (seed {seed}): {problem}")


def test_output_checks_can_fail():
    """Each check on the proxy's output refuses a sequence that breaks it,
    and takes the same sequence done right (no proxy: the Reader alone)."""
    if h2 is None:
        pxtest.skip("python3-h2 is not installed (scripts/deps.sh --test-tools)")

    def head(enc, fields, flags=END_HEADERS, sid=1):
        return frame(HEADERS, flags, sid, enc.encode(fields))

    def verdict(build, h1=False):
        enc = hpack.Encoder()
        r = Reader({1}, {1} if h1 else set())
        try:
            r.feed(build(enc))
            return None
        except Violation as e:
            return str(e)
    ok_json = b'{"error": "upstream_unavailable", "detail": "x"}'
    cases = [                                   # (what, a right sequence, the same gone wrong)
        ("frame size", lambda e: frame(PING, 0, 0, b"p" * 8),
         lambda e: frame(DATA, 0, 1, b"x" * (MAX_FRAME + 1))),
        ("even stream", lambda e: frame(WINDOW_UPDATE, 0, 1, b"\0\0\0\1"),
         lambda e: frame(WINDOW_UPDATE, 0, 2, b"\0\0\0\1")),
        ("unopened stream", lambda e: head(e, [(":status", "200")], END_HEADERS | END_STREAM),
         lambda e: head(e, [(":status", "200")], END_HEADERS | END_STREAM, sid=3)),
        ("push", lambda e: b"", lambda e: frame(PUSH_PROMISE, END_HEADERS, 1, b"\0\0\0\2")),
        ("hpack", lambda e: head(e, [(":status", "204")], END_HEADERS | END_STREAM),
         lambda e: frame(HEADERS, END_HEADERS | END_STREAM, 1, b"\xbf")),    # index 63: empty table
        ("connection field", lambda e: head(e, [(":status", "200"), ("x-a", "b")], END_HEADERS | END_STREAM),
         lambda e: head(e, [(":status", "200"), ("connection", "close")], END_HEADERS | END_STREAM)),
        ("status", lambda e: head(e, [(":status", "503")], END_HEADERS | END_STREAM),
         lambda e: head(e, [(":status", "2000")], END_HEADERS | END_STREAM)),
        ("interrupted block", lambda e: frame(HEADERS, 0, 1, e.encode([(":status", "200")])) +
         frame(CONTINUATION, END_HEADERS | 0, 1, b"") + frame(DATA, END_STREAM, 1, b""),
         lambda e: frame(HEADERS, 0, 1, e.encode([(":status", "200")])) + frame(PING, 0, 0, b"p" * 8)),
        ("data first", lambda e: head(e, [(":status", "200")]) + frame(DATA, END_STREAM, 1, b"x"),
         lambda e: frame(DATA, END_STREAM, 1, b"x")),
        ("content-length", lambda e: head(e, [(":status", "200"), ("content-length", "3")]) +
         frame(DATA, END_STREAM, 1, b"abc"),
         lambda e: head(e, [(":status", "200"), ("content-length", "3")]) + frame(DATA, END_STREAM, 1, b"ab")),
        ("trailers", lambda e: head(e, [(":status", "200")]) + head(e, [("x-t", "1")], END_HEADERS | END_STREAM),
         lambda e: head(e, [(":status", "200")]) + head(e, [(":status", "200")], END_HEADERS | END_STREAM)),
        ("interim", lambda e: head(e, [(":status", "100")]) + head(e, [(":status", "200")], END_HEADERS | END_STREAM),
         lambda e: head(e, [(":status", "100")], END_HEADERS | END_STREAM)),
        ("grpc-status", lambda e: head(e, [(":status", "200"), ("grpc-status", "14")], END_HEADERS | END_STREAM),
         lambda e: head(e, [(":status", "502"), ("grpc-status", "14")], END_HEADERS | END_STREAM)),
    ]
    for what, right, wrong in cases:
        check(verdict(right) is None, f"{what}: the right sequence passes: {verdict(right)}")
        check(verdict(wrong) is not None, f"{what}: the wrong one is caught")
    json_err = lambda body: (lambda e: head(e, [(":status", "502")]) + frame(DATA, END_STREAM, 1, body))  # noqa: E731
    check(verdict(json_err(ok_json), h1=True) is None, "the proxy's JSON error passes")
    check(verdict(json_err(b"Bad Gateway"), h1=True) is not None, "a 502 that is not the proxy's JSON is caught")
    check(verdict(json_err(b"Bad Gateway")) is None, "the h2c model server's own 5xx is its own")


def test_h1_output_checks_can_fail():
    """The same for H1Reader, the HTTP/1.1 side."""
    def verdict(methods, data, close=False):
        r = H1Reader()
        r.sent = list(methods)
        try:
            r.feed(data)
            if close:
                r.closed()
            return None
        except Violation as e:
            return str(e)
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
    err = b'{"error":"upstream_unavailable","detail":"x"}'
    json_502 = b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
    cases = [                                   # (what, methods, right, wrong)
        ("status line", ["GET"], ok, b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n"),
        ("control byte", ["GET"], b"HTTP/1.1 200 OK\r\nX-A: b\tc\r\nContent-Length: 0\r\n\r\n",
         b"HTTP/1.1 200 OK\r\nX-A: b\x01c\r\nContent-Length: 0\r\n\r\n"),
        ("field name", ["GET"], ok, b"HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 0\r\n\r\n"),
        ("two framings", ["GET"], b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
         b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\nhi\r\n0\r\n\r\n"),
        ("two lengths", ["GET"], b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi",
         b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nhi!"),
        ("chunk size", ["GET"], b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nx-t: 1\r\n\r\n",
         b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
        ("chunk end", ["GET"], b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
         b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhix\r\n0\r\n\r\n"),
        ("unasked", ["GET"], ok, ok + ok),
        ("after close", ["GET", "GET"], b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi",
         b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi" + ok),
        ("HEAD", ["HEAD", "GET"], b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 5\r\n\r\n" + ok,
         b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 5\r\n\r\nhello" + ok),
        ("JSON error", ["GET"], json_502 % len(err) + err, json_502 % 11 + b"Bad Gateway"),
    ]
    for what, methods, right, wrong in cases:
        check(verdict(methods, right) is None, f"{what}: the right sequence passes: {verdict(methods, right)}")
        check(verdict(methods, wrong) is not None, f"{what}: the wrong one is caught")
    check(verdict(["GET"], b"HTTP/1.1 200 OK\r\n\r\nuntil the close", close=True) is None,
          "a body delimited by the close")


if __name__ == "__main__":
    main([test_output_checks_can_fail, test_h1_output_checks_can_fail, test_random_clients_and_faulty_model_servers])
