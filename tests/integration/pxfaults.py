"""Fault injection for pqproxy's integration tests (test_faults*.py).

Clients that reset (RST), half-close (FIN) or stop reading at a chosen point
of an exchange; the proxy's footprint (open fds of the one process, heap
bytes from /metrics) against a baseline taken after a warm-up; and a
table-driven runner: each case is "<phase> x <fault>", and after each the
proxy must be alive, free of sanitizer reports, serve a normal request and
return to its baseline footprint. A case that fails is reported by name and
the rest still run (on a fresh proxy if that one died)."""
import http.client
import os
import random
import socket
import ssl
import struct
import threading
import time

import pxtest
from pxtest import (IncompleteResponse, TestFailure, build_request, check, check_eq, http_request,
                    read_response, send_raw, tls_connect, wait_until)
from pxhelpers import check_error

# Short limits so that every timeout-driven case ends quickly.
TIMEOUTS = {"handshake_ms": 1500, "request_header_ms": 1000, "body_idle_ms": 1000,
            "keepalive_idle_ms": 5000, "upstream_connect_ms": 1000, "upstream_response_ms": 1500,
            "upstream_idle_ms": 1000, "send_idle_ms": 2000, "drain_ms": 3000}
POOL_MAX_IDLE = 4
WORKERS = 2
# Heap the proxy may keep above its baseline after a case: caches that grow
# by design (TLS sessions, replay nonces, metrics label sets) and allocator
# noise; the normal build's gauge (glibc mallinfo2) was seen up to ~21 KB
# above an identical state, the ASan build's within 2 KB. A leaked
# connection or link also leaves an fd, and fds are compared exactly;
# test_fault_checks_can_fail shows five idle connections exceed this.
MEM_SLACK = 32 * 1024
# TLS session caches fill up over the first ~130 connections (then stay
# flat): the warm-up makes this many so the baseline includes them.
WARM_CONNECTIONS = 160
SETTLE_S = 8.0             # deadline for the footprint to return (idle buffers go after ~1 s)
LINGER0 = struct.pack("ii", 1, 0)
TCP_STATES = {"01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1",
              "05": "FIN_WAIT2", "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT",
              "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING"}


# --- client faults ------------------------------------------------------------------

def rst(sock):
    """Closes with RST (SO_LINGER 0), no close_notify."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
    except OSError:
        pass
    sock.close()


def fin(sock):
    """Half-closes: FIN, no close_notify; reading stays possible (the TLS
    object of an SSLSocket is kept, unlike with SSLSocket.shutdown)."""
    socket.socket.shutdown(sock, socket.SHUT_WR)


def connect_small_rcvbuf(port, ca, rcvbuf=16384, timeout=10.0):
    """A TLS connection whose receive buffer is small, so that a client that
    stops reading fills it (and the proxy's send buffer) quickly."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    raw.settimeout(timeout)
    raw.connect((pxtest.LOOPBACK, port))
    ctx = ssl.create_default_context(cafile=ca)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def client_hello(port, ca, partial=False, timeout=5.0):
    """A raw TCP socket that sent a real ClientHello (or its first half) and,
    for a whole one, received the start of the server's flight: the proxy is
    mid-handshake, waiting for the client's Finished."""
    ctx = ssl.create_default_context(cafile=ca)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = out.read()
    s = socket.create_connection((pxtest.LOOPBACK, port), timeout=timeout)
    if partial:
        s.sendall(hello[:len(hello) // 2])
        return s
    s.sendall(hello)
    check(s.recv(1), "the proxy answered the ClientHello")
    return s


def outcome(sock, method="GET", timeout=8.0):
    """What the client gets: ("response", Response), ("cut", partial Response)
    when it closed mid-response, or ("closed", None) when it closed with
    nothing."""
    try:
        return "response", read_response(sock, method, timeout=timeout)
    except IncompleteResponse as e:
        if e.partial.status is None and not e.partial.raw:
            return "closed", None
        return "cut", e.partial
    except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
        return "closed", None


def expect_error(sock, status, error, what):
    kind, r = outcome(sock)
    check_eq(kind, "response", f"{what}: a complete error response")
    check_error(r, status, error, what)
    return r


def expect_cut(sock, what, timeout=8.0):
    """The response started (200) but was cut: never presented as complete."""
    kind, r = outcome(sock, timeout=timeout)
    check_eq(kind, "cut", f"{what}: a truncated response (got {r!r})")
    check_eq(r.status, 200, f"{what}: status of the cut response")
    return r


class Enough(Exception):
    """Raised from an on_body callback: the client has read what it wanted."""


def read_some(sock, n_bytes=0, n_events=0, timeout=8.0):
    """Reads a response's head and then at least n_bytes of its body (or
    n_events server-sent events) and stops there, mid-response."""
    got = {"bytes": 0, "events": 0}

    def on_body(piece):
        got["bytes"] += len(piece)
        got["events"] += piece.count(b"\n\n")
        if got["bytes"] >= n_bytes and got["events"] >= n_events:
            raise Enough()
    try:
        r = read_response(sock, timeout=timeout, on_body=on_body)
    except Enough:
        return got["bytes"]
    raise TestFailure(f"the response ended before the client had read enough: {r!r}")


def _pieces(sock, timeout, what):
    """Yields what the proxy sends until it closes (FIN, RST or a TLS
    alert); fails if it has not closed within timeout."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TestFailure(f"{what}: connection still open after {timeout}s")
        sock.settimeout(left)
        try:
            piece = sock.recv(256 * 1024)
        except socket.timeout:
            raise TestFailure(f"{what}: connection still open after {timeout}s")
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            return
        if not piece:
            return
        yield piece


def read_rest(sock, timeout=8.0):
    """Reads raw until the proxy closes (within timeout); (byte count, the
    last 16 bytes)."""
    tail = pxtest._leftover.pop(sock, b"")
    n = len(tail)
    for piece in _pieces(sock, timeout, "reading the rest"):
        n += len(piece)
        tail = (tail + piece)[-16:]
    return n, tail


def expect_closed(sock, what, timeout=6.0):
    """The proxy ends the connection within timeout and sends no success
    response; returns what it sent."""
    got = b""
    for piece in _pieces(sock, timeout, what):
        got += piece
        check(b"HTTP/1.1 2" not in got, f"{what}: no success response: {got[:200]!r}")
    return got


def client_gives_up(sock, fault, what):
    """"client RST": resets; "client FIN": half-closes and the proxy must
    then close without a success response."""
    if fault == "client RST":
        time.sleep(0.1)
        rst(sock)
        return
    fin(sock)
    expect_closed(sock, f"{what}: FIN")
    sock.close()


def fin_then(sock, what, status, error=None):
    """Half-closes after a whole request: the answer may still come (HTTP
    allows it; then it must be `status`, and the JSON `error` if given) or
    the connection ends with nothing partial; never a hang."""
    fin(sock)
    kind, r = outcome(sock)
    if kind == "response":
        if error:
            check_error(r, status, error, what)
        else:
            check_eq(r.status, status, what)
    else:
        check_eq(kind, "closed", f"{what}: nothing partial")
    sock.close()


def reset_around_response(env, reqs, marker, delay_s, rounds=3):
    """Sends each request (one per connection; the upstream answers each
    delay_s after it arrived), then resets the connections one by one at
    times spread around that answer (10 ms apart, from 60 ms before it to
    60 ms after), so that some reset while the response is on its way or
    in the proxy's hands. reqs(r, i) gives request i of round r."""
    k = 13
    for rnd in range(rounds):
        socks = [env.connect() for _ in range(k)]
        for i, s in enumerate(socks):
            send_raw(s, reqs(rnd, i))
        tag = f"{marker}r{rnd}&"
        wait_until(lambda: len(env.records_for(tag)) == k, timeout=10, msg="all upstream")
        t0 = time.monotonic()
        for i, s in enumerate(socks):
            while time.monotonic() < t0 + delay_s - 0.06 + 0.01 * i:
                time.sleep(0.002)
            rst(s)
        time.sleep(0.3)


def send_until_blocked(sock, data, seconds):
    """Writes data until the peer stops taking it for `seconds` (or all went)."""
    sock.settimeout(seconds)
    sent = 0
    try:
        while sent < len(data):
            sent += sock.send(data[sent:sent + 65536])
    except (socket.timeout, ssl.SSLWantWriteError):
        pass
    except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
        pass
    return sent


# --- requests ---------------------------------------------------------------------------

HEAD = b"GET /echo?m=%s HTTP/1.1\r\nHost: localhost\r\nX-Half: "     # an unfinished head
BODY_LEN = 200000


def req(path):
    return build_request("GET", path)


def body_start(marker, path, chunked, length, n=30000):
    """A request head and the first n bytes of a length-byte body (chunked:
    one chunk of that size)."""
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {length}"
    head = f"POST {path}?m={marker} HTTP/1.1\r\nHost: localhost\r\n{framing}\r\n\r\n"
    return head.encode() + (b"%x\r\n" % length if chunked else b"") + b"b" * n


# --- footprint ------------------------------------------------------------------------

def _tcp_table():
    """inode -> (local port, remote port, state) for every IPv4/IPv6 TCP socket."""
    out = {}
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for ln in f:
                    p = ln.split()
                    out[p[9]] = (int(p[1].rsplit(":", 1)[1], 16), int(p[2].rsplit(":", 1)[1], 16),
                                 TCP_STATES.get(p[3], p[3]))
        except FileNotFoundError:
            pass
    return out


def fd_kinds(pid, upstream_port, admin_port):
    """(fixed, links, described): the proxy's open fds except its established
    links to the upstream (a keep-alive pool holds a varying few) and
    in-flight admin requests (our own scrapes); links: the established
    upstream links; described: fixed fds by kind, for failure messages."""
    table = _tcp_table()
    fixed, links, kinds = 0, 0, {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        kind = target
        if target.startswith("socket:["):
            ent = table.get(target[8:-1])
            if ent:
                lport, rport, state = ent
                if state == "ESTABLISHED" and rport == upstream_port:
                    links += 1
                    continue
                if lport == admin_port and state != "LISTEN":
                    continue
                kind = f"tcp {state} {lport}->{rport}"
            else:
                kind = "socket"
        elif target.startswith("anon_inode:"):
            kind = target
        elif target.startswith("/"):
            kind = "file"
        kinds[kind] = kinds.get(kind, 0) + 1
        fixed += 1
    return fixed, links, kinds


def metric(px, name):
    c = http.client.HTTPConnection(pxtest.LOOPBACK, px.admin_port, timeout=5)
    try:
        c.request("GET", "/metrics")
        body = c.getresponse().read().decode()
    finally:
        c.close()
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise TestFailure(f"no metric {name} in /metrics")


class Footprint:
    def __init__(self, fixed, links, kinds, mem):
        self.fixed, self.links, self.kinds, self.mem = fixed, links, kinds, mem

    def __repr__(self):
        return f"<fds {self.fixed} (+{self.links} upstream links), heap {self.mem:.0f} B>"


def footprint(px, upstream_port):
    fixed, links, kinds = fd_kinds(px.proc.pid, upstream_port, px.admin_port)
    return Footprint(fixed, links, kinds, metric(px, "pqproxy_memory_allocated_bytes"))


# --- a client's random mix -----------------------------------------------------------

def churn_h1(port, ca, seed, until, tally):
    """One HTTP/1.1 client's random mix until `until`: whole requests (some
    to a model server that resets, sends garbage or is slow), requests
    abandoned while they wait, bodies cut short, pipelined pairs."""
    rnd = random.Random(seed)
    targets = ["/echo", "/delay/50", "/delay/150", "/fault/reset", "/fault/garbage", "/status/503"]
    while time.monotonic() < until:
        kind = rnd.random()
        try:
            with tls_connect(port, ca) as s:
                s.settimeout(5)
                if kind < 0.45:
                    r = http_request(s, "GET", rnd.choice(targets))
                    tally[r.status] = tally.get(r.status, 0) + 1
                elif kind < 0.7:                     # abandoned while it waits (or runs)
                    s.sendall(f"GET /delay/{rnd.randint(0, 300)} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                    time.sleep(rnd.random() * 0.2)
                    if rnd.random() < 0.5:
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                elif kind < 0.85:                    # a body that stops halfway, then the client goes
                    s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"x" * 5000)
                    time.sleep(rnd.random() * 0.2)
                else:                                # two pipelined requests
                    s.sendall(b"GET /delay/20 HTTP/1.1\r\nHost: x\r\n\r\nGET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
                    for _ in range(2):
                        r = read_response(s, timeout=5)
                        tally[r.status] = tally.get(r.status, 0) + 1
        except Exception as e:      # resets and timeouts are the point; the proxy must survive them
            tally[type(e).__name__] = tally.get(type(e).__name__, 0) + 1


# --- the environment and the runner -------------------------------------------------

class FaultEnv:
    """upstream.py and a proxy (2 workers, short timeouts) with a baseline
    footprint. overrides: more proxy config; upstream_port: where the proxy
    connects if not to upstream.py (e.g. a listener that never accepts);
    serve: the request every check sends, and its expected status; warm:
    a callable(env) run after the warm-up; warm_paths=False: warm up with the
    serve path only; warm_requests=False: the many warm-up connections only
    handshake (for a slow upstream)."""

    def __init__(self, h, overrides=None, upstream_port=None, serve=("/echo", 200), warm=None,
                 short_timeouts=True, warm_paths=True, warm_requests=True):
        self.h = h
        self.ca = os.path.join(h.certgen(), "ca.crt")
        self.up = h.upstream or h.start_upstream()
        self.upstream_port = upstream_port or self.up.port
        ours = {"workers": WORKERS, "upstream": {"pool_max_idle": POOL_MAX_IDLE}}
        if short_timeouts:
            ours["timeouts"] = dict(TIMEOUTS)
        self.overrides = pxtest.deep_merge(ours, overrides or {})
        self.warm_paths = warm_paths
        self.warm_requests = warm_requests and serve[1] == 200
        if upstream_port:
            self.overrides = pxtest.deep_merge(self.overrides,
                                               {"upstream": {"address": f"127.0.0.1:{upstream_port}"}})
        self.serve = serve
        self.warm = warm
        self.mem_slack = MEM_SLACK
        self.run_id = 0
        self.px = None
        self.base = None
        self.start()

    def start(self):
        self.px = self.h.start_proxy(self.overrides, upstream=self.up)
        self.stderr_mark = 0
        self.warm_up()
        self.base = self.settled_baseline()

    def connect(self, timeout=10.0):
        return tls_connect(self.px.port, self.ca, timeout=timeout)

    def request(self, path="/echo", method="GET", body=None, timeout=10.0):
        s = self.connect()
        try:
            send_raw(s, build_request(method, path, body=body))
            return read_response(s, method, timeout=timeout)
        finally:
            s.close()

    def warm_up(self):
        """Touches every path the cases use once (both workers, the pool,
        large buffers, the thread pool) so that first-use allocations are in
        the baseline."""
        for _ in range(4):
            s = self.connect()
            try:
                for path, body in ((self.serve[0], None), ("/bytes/300000", None),
                                   ("/sse?n=3&interval_ms=1", None), ("/upload-sha", b"w" * 100000)):
                    if (self.serve[1] != 200 or not self.warm_paths) and path != self.serve[0]:
                        continue
                    send_raw(s, build_request("POST" if body else "GET", path, body=body))
                    check_eq(read_response(s, "POST" if body else "GET", timeout=15).status,
                             self.serve[1], f"warm-up {path}")
            finally:
                s.close()
        self.many_connections(WARM_CONNECTIONS)
        if self.warm:
            self.warm(self)

    def many_connections(self, n, threads=4):
        """n TLS connections, one normal request each, a few at a time."""
        errors = []

        def worker(k):
            try:
                for _ in range(k):
                    if self.warm_requests:
                        check_eq(self.request(self.serve[0]).status, 200, "warm-up request")
                    else:               # a slow answer: the handshake is what counts here
                        self.connect().close()
            except Exception as e:   # noqa: BLE001 - reported below
                errors.append(e)
        ts = [threading.Thread(target=worker, args=(n // threads,)) for _ in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        if errors:
            raise TestFailure(f"warm-up: {errors[0]}")

    def settled_baseline(self):
        """The footprint once it stops moving: two samples 0.5 s apart agree
        (fds exactly, heap within 1 KiB), after idle buffers were released."""
        time.sleep(1.2)
        prev = footprint(self.px, self.upstream_port)
        deadline = time.monotonic() + 10
        while True:
            time.sleep(0.5)
            cur = footprint(self.px, self.upstream_port)
            if cur.fixed == prev.fixed and abs(cur.mem - prev.mem) <= 1024:
                return cur
            if time.monotonic() > deadline:
                raise TestFailure(f"baseline not stable: {prev!r} then {cur!r}")
            prev = cur

    def marker(self, name):
        """name made unique to this run of a case (each case runs twice):
        the records of the other run never match it."""
        return f"{name}.{self.run_id}."

    def records_for(self, marker):
        """Upstream records whose target contains marker."""
        return [r for r in self.up.records() if marker in r["target"]]

    def check_serves(self):
        path, status = self.serve
        r = self.request(path, timeout=10)
        check_eq(r.status, status, f"a normal request {path} afterwards")

    def check_back_to_baseline(self, timeout=SETTLE_S):
        """Waits until the fds (but pooled upstream links, at most
        POOL_MAX_IDLE per worker) equal the baseline and the heap is at most
        MEM_SLACK above it."""
        last = [None]

        def back():
            cur = footprint(self.px, self.upstream_port)
            last[0] = self.last = cur
            return (cur.fixed == self.base.fixed and cur.links <= POOL_MAX_IDLE * WORKERS and
                    cur.mem <= self.base.mem + self.mem_slack)
        try:
            pxtest.wait_until(back, timeout, interval=0.2, msg="footprint back to baseline")
        except TestFailure:
            cur = last[0]
            extra = {k: v - self.base.kinds.get(k, 0) for k, v in cur.kinds.items()
                     if v != self.base.kinds.get(k, 0)}
            extra.update({k: -v for k, v in self.base.kinds.items() if k not in cur.kinds})
            raise TestFailure(f"not back to baseline after {timeout}s: now {cur!r}, baseline "
                              f"{self.base!r}, heap +{cur.mem - self.base.mem:.0f} B, fds by kind "
                              f"{extra}")

    def new_sanitizer_lines(self):
        lines = self.px.sanitizer_errors()
        new = lines[self.stderr_mark:]
        self.stderr_mark = len(lines)
        return new

    def after_case(self):
        """The checks every case ends with; the first problem, or None."""
        time.sleep(0.05)
        if not self.px.proc.alive():
            # the last lines that are not the proxy's own JSON log (an assert, a sanitizer)
            tail = [ln for ln in self.px.proc.stderr_text().splitlines()
                    if ln.strip() and not ln.startswith('{"time"')][-3:]
            return f"proxy exited with {self.px.proc.returncode}: {' | '.join(tail)}"
        bad = self.new_sanitizer_lines()
        if bad:
            return "sanitizer report: " + " | ".join(bad[:3])
        try:
            self.check_serves()
            self.check_back_to_baseline()
        except (TestFailure, OSError, IncompleteResponse) as e:
            if not self.px.proc.alive():
                return f"proxy exited with {self.px.proc.returncode}"
            return str(e)
        bad = self.new_sanitizer_lines()
        if bad:
            return "sanitizer report: " + " | ".join(bad[:3])
        return None


def run_cases(env, phase, cases, only=None, rebaseline_each=False):
    """Runs (fault, fn) cases of one phase against env; fn(env) injects the
    fault and checks what the client sees. rebaseline_each: each case is
    judged against the footprint just before it, not the first baseline.
    Every case is checked with env.after_case(); a proxy that died is
    replaced so that the other cases still run. Fails at the end naming every "<phase> x <fault>" that broke."""
    failures = []
    only = only or os.environ.get("PX_FAULT_CASES")
    cases = [(f"{phase} x {fault}", fn) for fault, fn in cases]
    if only:
        cases = [(n, fn) for n, fn in cases if any(o.strip() and o.strip() in n for o in only.split(","))]
        if not cases:
            return                  # another phase's cases were asked for
    # A first round unchecked: what a kind of fault allocates once (a
    # metrics label set, a TLS cache entry) belongs in the baseline.
    crashed = set()

    def died(name):
        """Reports a death in the first round, which ends the case before it."""
        problem = env.after_case()
        print(f"  FAIL [{name}] (first round): {problem}", flush=True)
        failures.append(f"[{name}] {problem}")
        crashed.add(name)
    prev = None
    for name, fn in cases:
        if not env.px.proc.alive():
            died(prev)
            env.start()
        env.run_id += 1
        try:
            fn(env)
        except Exception:          # noqa: BLE001 - judged in the checked round
            pass
        time.sleep(0.05)
        prev = name
    if prev and not env.px.proc.alive():
        died(prev)
    if len(crashed) == len(cases):
        raise TestFailure(f"{len(failures)} fault case(s) failed:\n  " + "\n  ".join(failures))
    if not env.px.proc.alive():
        env.start()
    env.base = env.settled_baseline()
    for name, fn in cases:
        if name in crashed:
            continue
        if not env.px.proc.alive():
            env.start()             # the previous case killed it
        elif rebaseline_each:
            env.base = env.settled_baseline()
        t0 = time.monotonic()
        problem = None
        env.run_id += 1
        try:
            fn(env)
        except Exception as e:     # noqa: BLE001 - any failure is this case's
            problem = f"{type(e).__name__}: {e}"
        after = env.after_case()
        if after:
            problem = f"{problem}; then {after}" if problem else after
        took = time.monotonic() - t0
        if problem:
            print(f"  FAIL [{name}] ({took:.2f}s): {problem}", flush=True)
            failures.append(f"[{name}] {problem}")
            if env.px.proc.alive():
                env.base = env.settled_baseline()
        else:
            print(f"  ok [{name}] ({took:.2f}s, heap {env.last.mem - env.base.mem:+.0f} B)",
                  flush=True)
    if failures:
        raise TestFailure(f"{len(failures)} fault case(s) failed:\n  " + "\n  ".join(failures))
