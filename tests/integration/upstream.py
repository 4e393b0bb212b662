#!/usr/bin/env python3
"""Controllable HTTP/1.1 upstream for pqproxy's integration tests.

It parses requests itself (no http.server) so that tests see exactly what
reached the upstream: header order and case, framing, trailers, pipelining.
Every fully received request is appended to --record as one JSON line.
Behaviour is chosen by the request path; see the table in the docstring of
Conn.respond. Prints "READY <port>" on stdout once listening.

Usage: upstream.py --port P [--host 127.0.0.1] [--unix PATH] [--record FILE]
                   [--delay-ms MS]
(--port 0 picks a free port; the READY line tells which. --delay-ms: every
response waits that long after its request arrived, like a slow model.)
"""
import argparse
import asyncio
import hashlib
import json
import os
import signal
import socket
import struct
import sys
import time
from urllib.parse import parse_qs, urlsplit

MAX_HEAD = 64 * 1024         # request line + headers
MAX_CHUNK_LINE = 4096
PIECE = 64 * 1024            # streaming unit for /bytes and body reads
MAX_DELAY_MS = 600_000
FAULTS = ("reset", "fin", "garbage", "stall")
# /trailers' trailer section: X-End may reach the client, the others may not
TRAILERS_OUT = (("X-End", "yes"), ("Set-Cookie", "a=b"), ("X-Request-Id", "late"),
                ("Content-Type", "text/late"))
STALL_MAX_S = 120

REASONS = {
    100: "Continue", 200: "OK", 201: "Created", 204: "No Content", 301: "Moved Permanently",
    302: "Found", 304: "Not Modified", 400: "Bad Request", 401: "Unauthorized",
    403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
    413: "Content Too Large", 429: "Too Many Requests", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Gateway Timeout",
}

# byte i of every generated body is i % 251 (251 is prime, so a shifted or
# dropped piece never lines up by accident). PATTERN covers any 64 KiB window.
PATTERN = bytes(i % 251 for i in range(PIECE + 251))


def pattern(offset, n):
    start = offset % 251
    return PATTERN[start:start + n]


class BadRequest(Exception):
    def __init__(self, msg, status=400):
        super().__init__(msg)
        self.status = status


class Server:
    def __init__(self, record, delay_ms=0):
        self.record = record
        self.delay_ms = delay_ms
        self.conns = 0

    def log(self, msg):
        print(f"upstream: {msg}", file=sys.stderr, flush=True)

    def write_record(self, rec):
        if not self.record:
            return
        # One write of one line; the event loop is single-threaded, so lines
        # from concurrent connections never interleave.
        with open(self.record, "a", encoding="utf-8") as f:
            f.write(json.dumps(rec) + "\n")

    async def handle(self, reader, writer):
        conn = Conn(self, reader, writer)
        try:
            await conn.run()
        except (ConnectionError, asyncio.IncompleteReadError, BrokenPipeError):
            pass
        except Exception as e:  # never let one connection take the server down
            self.log(f"conn {conn.n}: internal error: {e!r}")
        finally:
            if not writer.transport.is_closing():
                writer.close()
            try:
                await writer.wait_closed()
            except Exception:
                pass


class Conn:
    def __init__(self, server, reader, writer):
        self.server, self.reader, self.writer = server, reader, writer
        self._n = None

    @property
    def n(self):
        """Connections are numbered from their first request on: the proxy's
        readiness probe (a TCP connect, then close) is not one."""
        if self._n is None:
            self.server.conns += 1
            self._n = self.server.conns
        return self._n

    # --- request parsing ---------------------------------------------------
    async def read_head(self):
        """Returns (method, target, version, headers) or None on clean EOF."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as e:
            if not e.partial.strip():
                return None
            raise BadRequest("incomplete request head")
        except asyncio.LimitOverrunError:
            raise BadRequest("request head too large", 431)
        lines = head[:-4].split(b"\r\n")
        # RFC 9112 2.2: a server SHOULD ignore at least one empty line before the request line.
        while lines and lines[0] == b"":
            lines.pop(0)
        if not lines:
            raise BadRequest("empty request")
        parts = lines[0].split(b" ")
        if len(parts) != 3 or not parts[0] or not parts[1]:
            raise BadRequest("malformed request line")
        method, target, version = (p.decode("latin-1") for p in parts)
        if version not in ("HTTP/1.1", "HTTP/1.0"):
            raise BadRequest(f"unsupported version {version!r}")
        headers = []
        for line in lines[1:]:
            if line[:1] in (b" ", b"\t"):
                raise BadRequest("obsolete line folding")
            name, sep, value = line.partition(b":")
            if not sep or not name or name != name.strip() or b" " in name:
                raise BadRequest("malformed header line")
            headers.append([name.decode("latin-1"), value.strip(b" \t").decode("latin-1")])
        return method, target, version, headers

    async def body_chunks(self, headers):
        """Yields the request body in pieces (never buffers all of it) and
        fills self.trailers. Raises BadRequest on framing errors."""
        self.trailers = []
        te = [v for k, v in headers if k.lower() == "transfer-encoding"]
        cl = [v for k, v in headers if k.lower() == "content-length"]
        if te:
            codings = [c.strip().lower() for v in te for c in v.split(",")]
            if codings[-1] != "chunked":
                raise BadRequest("transfer-encoding without final chunked")
            if cl:
                raise BadRequest("both content-length and transfer-encoding")
            async for piece in self.chunked_body():
                yield piece
            return
        if cl:
            values = {v.strip() for v in cl}
            if len(values) != 1 or not next(iter(values)).isdigit():
                raise BadRequest("invalid content-length")
            async for piece in self.counted_body(int(next(iter(values)))):
                yield piece

    async def counted_body(self, left):
        """The next `left` bytes, in pieces of at most PIECE as they arrive."""
        while left > 0:
            piece = await self.reader.read(min(left, PIECE))
            if not piece:
                raise asyncio.IncompleteReadError(b"", left)
            left -= len(piece)
            yield piece

    async def chunked_body(self):
        while True:
            line = await self.read_line()
            size_s = line.split(b";", 1)[0].strip()
            try:
                if not size_s or any(c not in b"0123456789abcdefABCDEF" for c in size_s):
                    raise ValueError
                size = int(size_s, 16)
            except ValueError:
                raise BadRequest("bad chunk size")
            if size == 0:
                break
            async for piece in self.counted_body(size):
                yield piece
            if await self.reader.readexactly(2) != b"\r\n":
                raise BadRequest("chunk not followed by CRLF")
        while True:  # trailer section
            line = await self.read_line()
            if line == b"":
                return
            name, sep, value = line.partition(b":")
            if not sep or not name:
                raise BadRequest("malformed trailer")
            self.trailers.append([name.decode("latin-1"), value.strip().decode("latin-1")])

    async def read_line(self):
        try:
            line = await self.reader.readuntil(b"\r\n")
        except asyncio.LimitOverrunError:
            raise BadRequest("line too long")
        if len(line) > MAX_CHUNK_LINE:
            raise BadRequest("line too long")
        return line[:-2]

    # --- response writing --------------------------------------------------
    async def send(self, data):
        self.writer.write(data)
        await self.writer.drain()

    def head_bytes(self, status, headers):
        reason = getattr(self, "reason", None)
        if reason is None:
            reason = REASONS.get(status, "Status")
        out = [f"HTTP/1.1 {status} {reason}\r\n"]
        out += [f"{k}: {v}\r\n" for k, v in headers + getattr(self, "extra_headers", [])]
        out.append("\r\n")
        return "".join(out).encode("latin-1")

    async def send_json(self, status, obj, close=False):
        body = (json.dumps(obj) + "\n").encode()
        headers = [("Content-Type", "application/json")]
        if status in (204, 304):
            body = b""
        else:
            headers.append(("Content-Length", str(len(body))))
        if close or not self.keep_alive:
            headers.append(("Connection", "close"))
            self.keep_alive = False
        if self.method == "HEAD":
            body = b""
        await self.send(self.head_bytes(status, headers) + body)

    async def start_stream(self, status, headers):
        """Chunked for HTTP/1.1 clients, close-delimited for HTTP/1.0 ones."""
        self.chunked_out = self.version == "HTTP/1.1"
        if self.chunked_out:
            headers = headers + [("Transfer-Encoding", "chunked")]
        else:
            headers = headers + [("Connection", "close")]
            self.keep_alive = False
        await self.send(self.head_bytes(status, headers))

    async def stream(self, data):
        if self.method == "HEAD" or not data:
            return
        if self.chunked_out:
            await self.send(b"%x\r\n" % len(data) + data + b"\r\n")
        else:
            await self.send(data)

    async def end_stream(self, trailers=()):
        if self.chunked_out and self.method != "HEAD":
            await self.send(b"0\r\n" + b"".join(f"{k}: {v}\r\n".encode() for k, v in trailers)
                            + b"\r\n")

    # --- main loop -----------------------------------------------------------
    async def run(self):
        self.drop_next = False
        while True:
            self.method = "GET"
            self.version = "HTTP/1.1"
            self.keep_alive = False
            try:
                req = await self.read_head()
                if req is None:
                    return
                if not await self.respond(*req):
                    return
            except BadRequest as e:
                self.server.log(f"conn {self.n}: 400: {e}")
                await self.send_json(e.status, {"error": str(e)}, close=True)
                return
            if not self.keep_alive:
                return

    async def consume_body(self, headers):
        h = hashlib.sha256()
        n = 0
        async for piece in self.body_chunks(headers):
            h.update(piece)
            n += len(piece)
        return n, h.hexdigest()

    async def respond(self, method, target, version, headers):
        """Behaviour by path:
          /echo  /trailers[?n=N] (/echo's answer chunked, then TRAILERS_OUT and N more)
          /status/<code>  /delay/<ms>  /bytes/<n>[?chunked=1]
          /sse?n=N&interval_ms=M  /reset-after/<n>  /close-before-response
          /slow-headers/<ms>  /late-body/<ms>  /no-length[?n=N]  /continue  /upload-sha
          /fault/<how>  /early-fault/<how>  else 404.
        Hostile ones (<how>: reset, fin, garbage, stall, or hold: stall
        without reading the rest of the request): /fault/<how>
        does it instead of a response, /early-fault/<how> as soon as the
        head has arrived, before reading the body (recorded with "early":
        true), and ?cut=<how> on /bytes and /sse does it after the body's
        n bytes or N events (a cut /bytes declares 1000 bytes more).
        On any path, ?reason=<percent-encoded bytes> is the status line's
        reason phrase (any byte but CR and LF: a NUL, an escape, obs-text);
        ?close=1 closes the connection after the response without
        saying so, and ?drop_next=1 closes it, unanswered, when the next
        request has arrived (recorded with "dropped": true).
        Returns False when the connection must be closed without more output."""
        self.method, self.version = method, version
        conn_tokens = {t.strip().lower() for k, v in headers if k.lower() == "connection"
                       for t in v.split(",")}
        if version == "HTTP/1.1":
            self.keep_alive = "close" not in conn_tokens
        else:
            self.keep_alive = "keep-alive" in conn_tokens
        url = urlsplit(target)
        path = url.path
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        self.reason = parse_qs(url.query, encoding="latin-1").get("reason", [None])[-1]
        if self.reason is not None and ("\r" in self.reason or "\n" in self.reason):
            raise BadRequest("a reason with CR or LF")
        segs = path.strip("/").split("/")

        def int_arg(s, lo, hi):
            try:
                v = int(s)
            except (TypeError, ValueError):
                raise BadRequest(f"not an integer: {s!r}")
            if not lo <= v <= hi:
                raise BadRequest(f"out of range [{lo}, {hi}]: {v}")
            return v

        continue_sent = False
        if path == "/continue" and any(k.lower() == "expect" and v.lower() == "100-continue"
                                       for k, v in headers):
            await self.send(b"HTTP/1.1 100 Continue\r\n\r\n")
            continue_sent = True

        if len(segs) == 2 and segs[0] == "early-fault":
            self.server.write_record({"conn": self.n, "method": method, "target": target,
                                      "headers": headers, "early": True})
            return await self.fault(segs[1])

        body_len, body_sha = await self.consume_body(headers)
        info = {"conn": self.n, "method": method, "target": target, "headers": headers,
                "body_len": body_len, "body_sha256": body_sha, "trailers": self.trailers}
        if self.drop_next:
            # Asked for by the previous request (?drop_next=1): the request
            # arrived on a kept-alive connection that we now close unanswered,
            # as a server does when its idle timeout races a new request.
            self.server.write_record(dict(info, dropped=True))
            self.server.log(f"conn {self.n}: {method} {target}: dropped (drop_next)")
            return False
        self.server.write_record(info)
        self.server.log(f"conn {self.n}: {method} {target} body={body_len}")
        # ?close=1: close after this response although it is kept alive (no
        # "Connection: close"); ?drop_next=1: close on the next request.
        close_after = query.get("close") == "1"
        # ?set_header=Name:value: a model server that sends a field of its own
        self.extra_headers = [tuple(query["set_header"].split(":", 1))] if ":" in query.get(
            "set_header", "") else []
        self.drop_next = query.get("drop_next") == "1"
        cut = query.get("cut")
        if cut is not None and cut not in FAULTS:
            raise BadRequest(f"unknown cut {cut!r}")
        if self.server.delay_ms:
            await asyncio.sleep(self.server.delay_ms / 1000)

        if path == "/echo":
            await self.send_json(200, info)
        elif path == "/continue":
            await self.send_json(200, dict(info, continue_sent=continue_sent))
        elif path == "/trailers":
            # what /echo says, chunked, then a trailer section: one field a
            # proxy forwards and three it must not (RFC 9110 6.5.1)
            await self.start_stream(200, [("Content-Type", "application/json")])
            await self.stream(json.dumps(info).encode())
            extra = int_arg(query.get("n", "0"), 0, 64)   # ?n=N: N more, X-T-0.. (forwardable)
            await self.end_stream(TRAILERS_OUT + tuple((f"X-T-{i}", str(i)) for i in range(extra)))
        elif path == "/upload-sha":
            await self.send_json(200, {"body_len": body_len, "body_sha256": body_sha})
        elif len(segs) == 2 and segs[0] == "status":
            code = int_arg(segs[1], 200, 599)
            await self.send_json(code, {"status": code})
        elif len(segs) == 2 and segs[0] == "grpc-status":
            # a gRPC trailers-only answer, as an HTTP/1.1 head with no body
            await self.send(self.head_bytes(200, [("Content-Type", "application/grpc"),
                                                  ("Grpc-Status", str(int_arg(segs[1], 0, 16))),
                                                  ("Grpc-Message", "from%20upstream"),
                                                  ("Content-Length", "0")]))
        elif len(segs) == 2 and segs[0] == "delay":
            ms = int_arg(segs[1], 0, MAX_DELAY_MS)
            await asyncio.sleep(ms / 1000)
            await self.send_json(200, {"delayed_ms": ms})
        elif len(segs) == 2 and segs[0] == "bytes":
            await self.send_bytes(int_arg(segs[1], 0, 1 << 40), query.get("chunked") == "1", cut)
            if cut:
                return await self.fault(cut)
        elif len(segs) == 2 and segs[0] == "fault":
            return await self.fault(segs[1])
        elif path == "/sse":
            n = int_arg(query.get("n", "5"), 0, 100_000)
            interval = int_arg(query.get("interval_ms", "50"), 0, MAX_DELAY_MS)
            await self.start_stream(200, [("Content-Type", "text/event-stream"),
                                          ("Cache-Control", "no-cache")])
            for i in range(n):
                if i:
                    await asyncio.sleep(interval / 1000)
                ev = json.dumps({"index": i, "t": time.time()})
                await self.stream(f"data: {ev}\n\n".encode())
            if cut:
                return await self.fault(cut)
            await self.stream(b"data: [DONE]\n\n")
            await self.end_stream()
        elif len(segs) == 2 and segs[0] == "reset-after":
            n = int_arg(segs[1], 0, 1 << 30)
            await self.send(self.head_bytes(200, [("Content-Type", "application/octet-stream"),
                                                  ("Content-Length", str(n + 1000))]))
            off = 0
            while off < n:
                piece = pattern(off, min(PIECE, n - off))
                await self.send(piece)
                off += len(piece)
            await self.abort()
            return False
        elif path == "/close-before-response":
            return False
        elif len(segs) == 2 and segs[0] == "slow-headers":
            ms = int_arg(segs[1], 0, MAX_DELAY_MS)
            await self.send(b"HTTP/1.1 200 OK\r\n")
            await asyncio.sleep(ms / 1000)
            body = b'{"slow_headers_ms": %d}\n' % ms
            rest = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            if not self.keep_alive:
                rest.append(("Connection", "close"))
            await self.send(b"".join(f"{k}: {v}\r\n".encode() for k, v in rest) + b"\r\n" + body)
        elif len(segs) == 2 and segs[0] == "late-body":
            # The head, then after ms the body, in separate writes.
            ms = int_arg(segs[1], 0, MAX_DELAY_MS)
            body = b'{"late_body_ms": %d}\n' % ms
            await self.send(self.head_bytes(200, [("Content-Type", "application/json"),
                                                  ("Content-Length", str(len(body)))]))
            await asyncio.sleep(ms / 1000)
            await self.send(body)
        elif path == "/no-length":
            # Close-delimited body (RFC 9112 6.3 rule 8): no framing headers at all.
            n = int_arg(query.get("n", "1000"), 0, 1 << 30)
            await self.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n")
            off = 0
            while off < n:
                piece = pattern(off, min(PIECE, n - off))
                await self.send(piece)
                off += len(piece)
            self.keep_alive = False
        else:
            await self.send_json(404, {"error": "not found", "path": path})
        return not close_after

    async def send_bytes(self, n, chunked, cut=None):
        headers = [("Content-Type", "application/octet-stream")]
        if chunked:
            await self.start_stream(200, headers)
        else:
            if not self.keep_alive:
                headers.append(("Connection", "close"))
            declared = n + 1000 if cut else n
            await self.send(self.head_bytes(200, headers + [("Content-Length", str(declared))]))
            self.chunked_out = False
        off = 0
        while off < n:
            piece = pattern(off, min(PIECE, n - off))
            if chunked:
                await self.stream(piece)
            elif self.method != "HEAD":
                await self.send(piece)
            off += len(piece)
        if chunked and not cut:
            await self.end_stream()

    async def fault(self, how):
        """A misbehaving model server; always ends the connection (False)."""
        if how == "reset":
            await self.abort()
        elif how == "fin":
            self.writer.close()
        elif how == "garbage":
            # Neither a status line nor a chunk-size line.
            await self.send(b"\x16\x03\x01 zz not HTTP \xff\xfe\r\n\r\n")
            self.writer.close()
        elif how == "stall":
            # Send nothing more until the proxy gives up (bounded all the same).
            try:
                while await asyncio.wait_for(self.reader.read(PIECE), STALL_MAX_S):
                    pass
            except asyncio.TimeoutError:
                pass
        elif how == "hold":
            # Read nothing more either: what the proxy sends stays in the
            # socket (the kernel's buffers fill and its writes wait).
            self.writer.transport.pause_reading()
            await asyncio.sleep(STALL_MAX_S)
        else:
            raise BadRequest(f"unknown fault {how!r}")
        return False

    async def abort(self):
        """Close with RST (SO_LINGER 0) once the written bytes left our buffer."""
        t = self.writer.transport
        t.set_write_buffer_limits(0)
        await self.writer.drain()
        # Let the kernel put the bytes on the wire: a linger-0 close discards
        # anything still in the socket send queue.
        await asyncio.sleep(0.05)
        sock = t.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        t.abort()


async def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--unix", help="also listen on this Unix socket path")
    ap.add_argument("--record", help="append one JSON line per received request")
    ap.add_argument("--delay-ms", type=int, default=0, help="answer every request this late")
    args = ap.parse_args()

    srv = Server(args.record, args.delay_ms)
    if args.record:
        open(args.record, "a").close()  # exists (empty) before READY
    servers = [await asyncio.start_server(srv.handle, args.host, args.port, limit=MAX_HEAD,
                                          reuse_address=True)]
    port = servers[0].sockets[0].getsockname()[1]
    if args.unix:
        if os.path.exists(args.unix):
            os.unlink(args.unix)
        servers.append(await asyncio.start_unix_server(srv.handle, args.unix, limit=MAX_HEAD))

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"READY {port}", flush=True)
    await stop.wait()
    for s in servers:
        s.close()
    if args.unix and os.path.exists(args.unix):
        os.unlink(args.unix)


if __name__ == "__main__":
    asyncio.run(main())
