#!/usr/bin/env python3
"""Fault injection over HTTP/2, with pxfaults.py's runner: at each phase of
an exchange (the connection preface, the request's header block, its body,
the wait for the upstream's head, the response body) a client that resets
(TCP RST), half-closes (FIN), stalls, sends garbage, cancels its stream
(RST_STREAM) or says GOAWAY, and an upstream that resets, closes, stalls
or sends garbage, over HTTP/1.1 (tests/integration/upstream.py) and over
h2c (peers/h2c_fault_server.py, which also resets streams and says
GOAWAY). Each case checks what the client gets (an error status on the
stream, a stream reset, the connection closed in time, the other streams
of the connection served); after each the proxy must be alive, free of
sanitizer reports, serve a normal request and return to its baseline fds
and heap.

The client is hyper-h2 (Debian's python3-h2), as in test_h2_smuggling.py."""
import json
import os
import re
import socket
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pxtest  # noqa: E402
from pxtest import TestFailure, check, check_eq, check_in, main, wait_until  # noqa: E402
from pxfaults import (FaultEnv, connect_small_rcvbuf, expect_error, fin, metric, outcome,  # noqa: E402
                      read_some, rst, run_cases)
from test_h2_smuggling import RawH2, h2, req  # noqa: E402
from test_grpc_proxy import h2_python  # noqa: E402
if h2 is not None:
    import h2.exceptions  # noqa: E402
    import h2.settings  # noqa: E402

H2C_FAULT = os.path.join(pxtest.HERE, "peers", "h2c_fault_server.py")
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
HEADERS = 0x1
END_STREAM = 0x1
CANCEL = 0x8
H2 = {"tls": {"alpn": ["h2", "http/1.1"], "pq_policy": "prefer"},
      "http2": {"stall_timeout_ms": 1500}}
KEEPALIVE_S = 5.0                       # pxfaults.TIMEOUTS keepalive_idle_ms
SEND_IDLE_S = 2.0                       # pxfaults.TIMEOUTS send_idle_ms
BODY_LEN = 200000


def frame(kind, flags, sid, payload):
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + sid.to_bytes(4, "big") + payload


class Client(RawH2):
    """RawH2 that may keep its windows shut (ack=False), open them wide,
    cancel a stream and say GOAWAY."""

    def __init__(self, env, ack=True, window=None):
        self.ack = ack
        super().__init__(env.h, env.px.port)
        if window:                  # the proxy may send this much without waiting for us
            self.c.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
            self.c.increment_flow_control_window(window)
            self.flush()

    def event(self, ev):
        if isinstance(ev, h2.events.DataReceived) and not self.ack:
            self.streams[ev.stream_id]["body"] += ev.data
            return
        super().event(ev)

    def send_until_held(self, sid, seconds):
        """Sends body bytes as fast as the windows open until they stay shut
        for `seconds` (the proxy holds the client back); the bytes sent."""
        sent, last = 0, time.monotonic()
        while time.monotonic() - last < seconds:
            n = min(self.c.local_flow_control_window(sid), self.c.max_outbound_frame_size)
            if n > 0:
                try:
                    self.c.send_data(sid, b"h" * n)
                except h2.exceptions.StreamClosedError:
                    break                   # answered (and reset) meanwhile
                self.flush()
                sent, last = sent + n, time.monotonic()
                continue
            try:
                self.pump_until(lambda: self.c.local_flow_control_window(sid) > 0, 0.2, "a window")
            except TestFailure:
                pass
        return sent

    def cancel(self, sid):
        self.c.reset_stream(sid, CANCEL)
        self.flush()

    def goaway(self):
        """GOAWAY NO_ERROR, by hand: hyper-h2 takes no more input after its own."""
        self.flush()
        self.s.sendall(frame(0x7, 0, 0, bytes(8)))


def h2_socket(env):
    s = pxtest.tls_connect(env.px.port, env.ca, alpn=["h2"])
    check_eq(s.selected_alpn_protocol(), "h2", "ALPN")
    return s


def closes(sock, timeout, what):
    """The proxy ends the connection (GOAWAY, then FIN or RST) within
    timeout; the seconds it took."""
    t0 = time.monotonic()
    while True:
        left = t0 + timeout - time.monotonic()
        if left <= 0:
            raise TestFailure(f"{what}: the connection is still open after {timeout} s")
        sock.settimeout(left)
        try:
            if not sock.recv(65536):
                return time.monotonic() - t0
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            return time.monotonic() - t0


def get(path):
    return req(path.encode())


def post(path, n):
    return req(path.encode(), method=b"POST", extra=[(b"content-length", str(n).encode())])


def error_of(st):
    try:
        return json.loads(st["body"])["error"]
    except (ValueError, KeyError):
        return None


def still_serves(c, what):
    """Another stream on the same connection is answered."""
    st = c.wait(c.request(get("/echo?sibling=1")))
    check_eq(st["status"], 200, f"{what}: a sibling stream on the same connection")


def reset_not_ended(c, sid, what, timeout=8.0):
    """The stream ends in RST_STREAM, never as a complete response."""
    st = c.streams[sid]
    c.pump_until(lambda: st["ended"] or st["reset"] is not None, timeout, what)
    check(not st["ended"] and st["reset"] is not None,
          f"{what}: the stream is reset, not ended as if complete ({len(st['body'])} body bytes)")
    return st


# --- the client side, to the HTTP/1.1 upstream ----------------------------------------------

def connection_phase(fault):
    def run(env):
        s = h2_socket(env)
        if fault == "client RST before the preface":
            rst(s)
        elif fault == "client FIN mid-preface":
            s.sendall(PREFACE[:10])
            fin(s)
            check(closes(s, 3, fault) < 3, fault)
        elif fault == "garbage for a preface":
            s.sendall(b"\x00\xff GARBAGE, NOT HTTP/2 \r\n\r\n" * 8)
            check(closes(s, 2, fault) < 2, fault)
        elif fault == "stall after the preface":
            s.sendall(PREFACE + frame(0x4, 0, 0, b""))
            took = closes(s, KEEPALIVE_S + 3, fault)
            check(took > KEEPALIVE_S - 1, f"closed at keepalive_idle, not before: {took:.1f} s")
        s.close()
    return run


def header_block_phase(fault):
    """HEADERS without END_HEADERS: the header block is unfinished."""
    def run(env):
        block = h2.connection.H2Connection().encoder.encode(get("/echo?m=" + env.marker("hb")))
        s = h2_socket(env)
        s.sendall(PREFACE + frame(0x4, 0, 0, b"") + frame(HEADERS, END_STREAM, 1, block[:len(block) // 2]))
        if fault == "client RST":
            time.sleep(0.1)
            rst(s)
        elif fault == "client FIN":
            fin(s)
            closes(s, 3, fault)
        elif fault == "stall":
            took = closes(s, KEEPALIVE_S + 3, fault)
            check(took > KEEPALIVE_S - 1, f"closed at keepalive_idle, not before: {took:.1f} s")
        elif fault == "garbage frame":
            s.sendall(frame(0x0, 0, 1, b"data inside a header block"))
            check(closes(s, 2, fault) < 2, fault)
        s.close()
        check_eq(env.records_for(env.marker("hb")), [], "nothing of the unfinished request upstream")
    return run


def body_phase(fault):
    """A POST that declared BODY_LEN bytes (40,000 for the one that then
    sends too many) and sent 30,000."""
    def run(env):
        m = env.marker("body")
        c = Client(env)
        sid = c.c.get_next_available_stream_id()
        c.streams[sid] = {"status": None, "body": b"", "reset": None, "ended": False}
        declared = {"data past content-length": 40000, "upstream hold": 64 << 20}.get(fault, BODY_LEN)
        path = "/early-fault/hold" if fault == "upstream hold" else "/upload-sha"
        c.c.send_headers(sid, post(f"{path}?m={m}", declared))
        for _ in range(3):
            c.c.send_data(sid, b"b" * 10000)
        c.flush()
        time.sleep(0.3)             # the proxy connects upstream on the first body bytes
        if fault in ("client RST", "client FIN", "client RST_STREAM"):
            client_leaves(c, sid, fault)
        elif fault == "stall":
            st = c.wait(sid, timeout=5)
            check_eq((st["status"], error_of(st)), (408, "request_timeout"), f"{fault}: {st}")
            still_serves(c, fault)
        elif fault == "upstream hold":
            # the model server reads none of the body: the client is held
            # back, which is not idleness (body_idle_ms); the model server
            # is timed out (upstream_idle_ms), the stream answered 504
            c.send_until_held(sid, 1.5)
            st = c.wait(sid, timeout=8)
            check_eq((st["status"], error_of(st)), (504, "upstream_timeout"), f"{fault}: {st['body'][:200]!r}")
            check_in("took none of the request", json.loads(st["body"])["detail"], fault)
            still_serves(c, fault)
            c.close()
            return
        elif fault == "data past content-length":
            c.s.sendall(frame(0x0, END_STREAM, sid, b"b" * 10001))
            st = c.wait(sid, timeout=5)
            check(st["reset"] is not None or (st["status"] or 0) >= 400,
                  f"{fault}: refused ({st['status']}, reset {st['reset']})")
        c.close()
        check_eq(env.records_for(m), [], "the incomplete request was not answered by the upstream")
    return run


def head_wait_phase(fault):
    """A request the upstream answers in 800 ms, or one it faults."""
    def run(env):
        m = env.marker("headwait-" + fault.replace(" ", "-"))
        c = Client(env)
        if fault.startswith("upstream"):
            how = fault.split()[1]
            path = "/slow-headers/5000" if how == "stall-mid-head" else f"/fault/{how}"
            t0 = time.monotonic()
            st = c.wait(c.request(get(f"{path}?m={m}")), timeout=8)
            want = {"reset": [(502, "upstream_unavailable")], "fin": [(502, "upstream_unavailable")],
                    "garbage": [(502, "upstream_bad_response")],
                    "stall": [(504, "upstream_timeout")],
                    "stall-mid-head": [(502, "upstream_bad_response"), (504, "upstream_timeout")]}[how]
            check_in((st["status"], error_of(st)), want, f"{fault}: {st['status']} {st['body'][:200]!r}")
            if how == "stall":
                took = time.monotonic() - t0
                check(1.2 < took < 5, f"504 after {took:.2f} s (upstream_response_ms 1.5 s)")
            still_serves(c, fault)
            c.close()
            return
        sid = c.request(get(f"/delay/800?m={m}"))
        wait_until(lambda: env.records_for(m), timeout=5, msg="the request upstream")
        client_leaves(c, sid, fault)
    return run


def client_leaves(c, sid, fault):
    """While stream sid waits (for the rest of its body, or for the model
    server), the client resets the connection, half-closes it, cancels the
    stream or says GOAWAY."""
    how = fault.split()[-1]
    if how == "RST":
        rst(c.s)
    elif how == "FIN":
        fin(c.s)
        closes(c.s, 3, fault)
    elif how == "RST_STREAM":
        c.cancel(sid)
        still_serves(c, fault)
    elif how == "GOAWAY":
        c.goaway()              # streams already open still get their answers
        st = c.wait(sid, timeout=5)
        check_eq(st["status"], 200, f"{fault}: the open stream is answered")
    time.sleep(1.0)             # the upstream answers into whatever is left
    c.close()


def cut_mid_body(env, path, most, fault):
    """The upstream cuts the response to path after at most `most` body
    bytes: the stream is reset, never ended as complete, no byte invented,
    and a sibling stream is served."""
    c = Client(env)
    st = reset_not_ended(c, c.request(get(path)), fault)
    check(len(st["body"]) <= most, f"{fault}: no byte invented: {len(st['body'])}")
    still_serves(c, fault)
    c.close()


def response_phase(fault):
    """Mid response body: 2,000,000 bytes, or the upstream cutting one."""
    def run(env):
        m = env.marker("resp")
        if fault.startswith("upstream"):
            cut_mid_body(env, f"/bytes/300000?m={m}&cut={fault.split()[1]}", 300000, fault)
            return
        c = Client(env, ack=not fault.startswith("client stops reading"),
                   window=(1 << 24) if fault == "client stops reading the socket" else None)
        n = 32 << 20 if fault == "client stops reading the socket" else 2000000
        sid = c.request(get(f"/bytes/{n}?m={m}"))
        st = c.streams[sid]
        c.pump_until(lambda: len(st["body"]) >= 60000, 5, "the start of the body")
        if fault == "client stops reading the socket":
            # its windows are open: the proxy writes until the socket is
            # full, then timeouts.send_idle_ms ends the connection
            stopped_reading(env, c, fault)
        elif fault == "client stops reading, then RST":
            time.sleep(0.5)
            rst(c.s)
        elif fault == "client stops reading until the stall timeout":
            reset_not_ended(c, sid, fault, timeout=6)     # the tick is 1 s: 1.5 s -> 2-3 s
            check_eq(st["reset"], CANCEL, f"{fault}: CANCEL after http2.stall_timeout_ms")
            c.ack = True
            still_serves(c, fault)
        elif fault in ("client FIN", "client RST_STREAM"):
            client_leaves(c, sid, fault)
        c.close()
    return run


def stopped_reading(env, c, what):
    """c (a Client, or a TLS socket) has stopped reading its socket: the
    proxy closes the connection at timeouts.send_idle_ms, counted as such;
    the upstream, which the proxy stopped reading meanwhile
    (upstream_idle_ms is shorter), is not blamed."""
    def counts():
        return (metric(env.px, "pqproxy_send_timeouts_total"),
                metric(env.px, 'pqproxy_upstream_errors_total{kind="timeout"}'))
    before = counts()
    wait_until(lambda: counts()[0] > before[0], timeout=SEND_IDLE_S + 8, msg=f"{what}: a send timeout")
    check_eq(counts(), (before[0] + 1, before[1]), f"{what}: a send timeout, not an upstream one")
    closes(getattr(c, "s", c), 5, what)


def warm_h2(env):
    """First use of the HTTP/2 paths (session, large bodies, both workers)."""
    for _ in range(4):
        c = Client(env)
        st = c.wait(c.request(get("/bytes/300000")), timeout=15)
        check_eq((st["status"], len(st["body"])), (200, 300000), "warm-up over h2")
        c.close()


def test_fault_h2_client(h):
    env = FaultEnv(h, H2, warm=warm_h2)
    run_cases(env, "connection", [(f, connection_phase(f)) for f in (
        "client RST before the preface", "client FIN mid-preface", "garbage for a preface",
        "stall after the preface")])
    run_cases(env, "header block", [(f, header_block_phase(f)) for f in (
        "client RST", "client FIN", "stall", "garbage frame")])
    run_cases(env, "request body", [(f, body_phase(f)) for f in (
        "client RST", "client FIN", "client RST_STREAM", "stall", "data past content-length",
        "upstream hold")])
    run_cases(env, "waiting for the upstream head", [(f, head_wait_phase(f)) for f in (
        "client RST", "client FIN", "client RST_STREAM", "client GOAWAY", "upstream reset", "upstream fin",
        "upstream garbage", "upstream stall", "upstream stall-mid-head")])
    run_cases(env, "response body", [(f, response_phase(f)) for f in (
        "client stops reading, then RST", "client stops reading until the stall timeout",
        "client stops reading the socket",
        "client FIN", "client RST_STREAM", "upstream reset", "upstream fin", "upstream garbage",
        "upstream stall")])


# --- an h2c upstream ------------------------------------------------------------------------

class H2cFaults:
    """peers/h2c_fault_server.py: its port and the requests it has seen."""

    def __init__(self, h):
        self.p = h.start("h2c-faults", [h2_python(), H2C_FAULT], ready="line", line=r"^READY (\d+)$")
        self.port = int(self.p.ready_match.group(1))

    def seen(self, marker):
        with open(self.p.out_path) as f:
            return [ln for ln in f if ln.startswith("REQ ") and marker in ln]


def h2c_case(fault):
    def run(env):
        up = env.h2c
        m = env.marker("h2c-" + re.sub(r"\W+", "-", fault))
        kind, how = fault.split(" ", 1)
        if kind == "upstream":                              # waiting for the head
            t0 = time.monotonic()
            c = Client(env)
            st = c.wait(c.request(get(f"/fault/{how}?m={m}")), timeout=8)
            want = (504, "upstream_timeout") if how == "stall" else (502, None)
            check_eq(st["status"], want[0], f"{fault}: {st['status']} {st['body'][:200]!r}")
            if want[1]:
                check_eq(error_of(st), want[1], fault)
                took = time.monotonic() - t0
                check(1.2 < took < 5, f"504 after {took:.2f} s (upstream_response_ms 1.5 s)")
            else:
                check(error_of(st) in ("upstream_unavailable", "upstream_bad_response"),
                      f"{fault}: an upstream error: {st['body'][:200]!r}")
            still_serves(c, fault)
            c.close()
        elif kind == "cut":                                 # mid response body
            cut_mid_body(env, f"/cut/{how}?m={m}", 100000, fault)
        elif fault == "upload hold":                       # the model takes none of the body
            c = Client(env)
            sid = c.c.get_next_available_stream_id()
            c.streams[sid] = {"status": None, "body": b"", "reset": None, "ended": False}
            c.c.send_headers(sid, post(f"/fault/hold?m={m}", 64 << 20))
            c.send_until_held(sid, 1.0)
            st = c.wait(sid, timeout=8)
            check_eq((st["status"], error_of(st)), (504, "upstream_timeout"), f"{fault}: {st['body'][:200]!r}")
            # the connection whose window the model server kept is not
            # used again: a request with a body goes through
            st = c.wait(c.request(post(f"/ok?m={m}", 10), b"x" * 10), timeout=5)
            check_eq(st["status"], 200, f"{fault}: a body afterwards")
            c.close()
        elif fault == "client stops reading the socket":
            c = Client(env, window=1 << 24)
            st = c.streams[c.request(get(f"/bytes/{32 << 20}?m={m}"))]
            c.pump_until(lambda: len(st["body"]) >= 60000, 5, "the start of the body")
            stopped_reading(env, c, fault)
            c.close()
        elif fault == "http1 client stops reading":
            s = connect_small_rcvbuf(env.px.port, env.ca)
            s.sendall(f"GET /bytes/{32 << 20}?m={m} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
            read_some(s, n_bytes=1)
            stopped_reading(env, s, fault)
            s.close()
        elif kind == "http1":                               # the same faults to an HTTP/1.1 client
            s = env.connect()
            s.sendall(f"GET /fault/{how}?m={m} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
            if how == "stall":
                expect_error(s, 504, "upstream_timeout", fault)
            else:
                kind, r = outcome(s)
                check_eq(kind, "response", f"{fault}: a complete error response")
                check_eq(r.status, 502, fault)
            s.close()
        else:                                               # the client, while the model thinks
            c = Client(env)
            sid = c.request(get(f"/delay/800?m={m}"))
            wait_until(lambda: up.seen(m), timeout=5, msg="the request upstream")
            client_leaves(c, sid, fault)
    return run


def test_fault_h2c_upstream(h):
    up = H2cFaults(h)
    env = FaultEnv(h, pxtest.deep_merge(H2, {"upstream": {"protocol": "h2c"}}), upstream_port=up.port,
                   serve=("/ok", 200), warm_paths=False)
    env.h2c = up
    faults = ("reset", "fin", "garbage", "stall", "rst_stream", "goaway")
    run_cases(env, "h2c", [(f, h2c_case(f)) for f in
                           [f"upstream {x}" for x in faults] +
                           [f"cut {x}" for x in faults if x != "goaway"] + ["upload hold"] +
                           [f"http1 {x}" for x in ("reset", "garbage", "stall", "rst_stream",
                                                   "client stops reading")] +
                           ["client RST", "client FIN", "client RST_STREAM", "client GOAWAY",
                            "client stops reading the socket"]])


if __name__ == "__main__":
    main([test_fault_h2_client, test_fault_h2c_upstream])
