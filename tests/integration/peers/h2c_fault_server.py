#!/usr/bin/env python3
"""An h2c model server (Debian's python3-h2) that misbehaves on demand, for
test_faults_h2.py. By :path (a query is ignored):
  /fault/<how>   instead of a response;
  /cut/<how>     after a 200 head declaring 400,000 bytes and 100,000 of them;
  /delay/<ms>    200 after ms;
  /bytes/<n>     200 and n bytes, as fast as the windows let them go;
  /head/<n>      200 "served" with n bytes of fields x-big-<i> (10,000 bytes
                 each at most: nghttp2 takes no field over 64 KiB) in its head;
  /fields/<n>    200 "served" with n small fields x-f-<i> in its head;
  /trailers      200, a JSON body {"body_len", "trailers"} saying what the
                 request brought (its trailer fields as [name, value]
                 pairs), then the trailers of TRAILERS_OUT;
  anything else  200 "served".
<how>: reset (TCP RST), fin (close), garbage (bytes that are not HTTP/2,
then close), stall (nothing more on the stream; the connection goes on),
hold (as stall, from the head on, and the body is never consumed: the
stream's window stays shut),
rst_stream (RST_STREAM INTERNAL_ERROR), goaway (GOAWAY naming no stream as
processed, then close), wedge (the whole connection falls silent: what comes
is read and ignored, PINGs included, nothing is sent, until the proxy
closes it). A request's body is read whole first. Prints READY <port>, then
"REQ <connection> <path>" per request head and "EOF <connection>" when the
proxy closes a wedged connection, each line in one write."""
import json
import os
import socket
import struct
import sys
import threading

import h2.errors
import h2.events
import h2.exceptions

from h2c_peer import listen_and_serve, server_conn

CUT_DECLARED, CUT_SENT = 400_000, 100_000
# /trailers' response trailers: x-end may reach the client, the others may not
TRAILERS_OUT = [("x-end", "yes"), ("set-cookie", "a=b"), ("x-request-id", "late")]


class Conn:
    """One connection; a lock because delayed answers come from timers."""

    def __init__(self, sock, n):
        self.sock, self.n = sock, n
        self.conn = server_conn(sock)
        self.lock = threading.Lock()
        self.paths = {}
        self.dead = False
        self.wedged = False
        self.pending = {}                   # stream -> (body, offset sent up to, end)
        self.held = set()                   # streams whose body is never consumed
        self.got = {}                       # stream -> [body bytes, trailer fields]

    def flush(self):
        data = self.conn.data_to_send()
        if data and not self.dead and not self.wedged:
            try:
                self.sock.sendall(data)
            except OSError:
                self.dead = True

    def kill(self, how):
        self.flush()
        self.dead = True
        if how == "reset":
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif how == "garbage":
            try:
                self.sock.sendall(b"\x16\x03\x01 zz not HTTP/2 \xff\xfe\r\n\r\n" * 4)
            except OSError:
                pass
        self.sock.close()

    def send_body(self, sid, data=None, end=False):
        """As much of data as the windows take; the rest on WINDOW_UPDATE
        (end: the stream ends with the last byte)."""
        if data is not None:
            self.pending[sid] = (memoryview(data), 0, end)
        data, off, end = self.pending.pop(sid)
        n = min(len(data) - off, self.conn.local_flow_control_window(sid))
        while n > 0:
            k = min(n, self.conn.max_outbound_frame_size)
            self.conn.send_data(sid, data[off:off + k].tobytes())
            off, n = off + k, n - k
        if off < len(data) or not end:
            self.pending[sid] = (data, off, end)
        else:
            self.conn.end_stream(sid)

    def answer(self, sid, body=b"served"):
        with self.lock:
            if self.dead:
                return
            try:
                self.conn.send_headers(sid, [(":status", "200"), ("content-length", str(len(body)))])
                self.conn.send_data(sid, body, end_stream=True)
            except (h2.exceptions.H2Error, KeyError):
                pass                # the stream was reset while it waited
            self.flush()

    def fault(self, sid, how):
        self.pending.pop(sid, None)         # a cut body sends nothing more
        if how in ("stall", "hold"):
            return
        if how == "wedge":
            self.wedged = True
            return
        if how == "rst_stream":
            self.conn.reset_stream(sid, h2.errors.ErrorCodes.INTERNAL_ERROR)
        elif how == "goaway":
            self.conn.close_connection(h2.errors.ErrorCodes.NO_ERROR, last_stream_id=0)
            self.kill("fin")
        else:
            self.kill(how)

    def request(self, sid):
        segs = self.paths.pop(sid).split("?")[0].strip("/").split("/")
        if len(segs) == 2 and segs[0] == "fault":
            self.fault(sid, segs[1])
        elif len(segs) == 2 and segs[0] == "cut":
            self.conn.send_headers(sid, [(":status", "200"), ("content-length", str(CUT_DECLARED))])
            self.send_body(sid, b"c" * CUT_SENT, False)
            self.flush()
            self.fault(sid, segs[1])
        elif len(segs) == 2 and segs[0] == "bytes":
            n = int(segs[1])
            self.conn.send_headers(sid, [(":status", "200"), ("content-length", str(n))])
            self.send_body(sid, b"b" * n, True)
        elif segs == ["trailers"]:
            n, trailers = self.got.pop(sid, [0, []])
            body = json.dumps({"body_len": n, "trailers": trailers}).encode()
            self.conn.send_headers(sid, [(":status", "200"), ("content-type", "application/json")])
            self.conn.send_data(sid, body)
            self.conn.send_headers(sid, TRAILERS_OUT, end_stream=True)
        elif len(segs) == 2 and segs[0] == "head":
            n = int(segs[1])
            big = [(f"x-big-{i}", "b" * min(10000, n - i * 10000)) for i in range((n + 9999) // 10000)]
            self.conn.send_headers(sid, [(":status", "200")] + big + [("content-length", "6")])
            self.conn.send_data(sid, b"served", end_stream=True)
        elif len(segs) == 2 and segs[0] == "fields":
            many = [(f"x-f-{i}", "v") for i in range(int(segs[1]))]
            self.conn.send_headers(sid, [(":status", "200")] + many + [("content-length", "6")])
            self.conn.send_data(sid, b"served", end_stream=True)
        elif len(segs) == 2 and segs[0] == "delay":
            threading.Timer(int(segs[1]) / 1000, self.answer, (sid,)).start()
        else:
            self.conn.send_headers(sid, [(":status", "200"), ("content-length", "6")])
            self.conn.send_data(sid, b"served", end_stream=True)

    def run(self):
        while not self.dead:
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            if self.wedged:
                if not data:
                    os.write(1, f"EOF {self.n}\n".encode())
                    break
                continue
            if not data:
                break
            with self.lock:
                if self.dead:
                    break
                try:
                    events = self.conn.receive_data(data)
                except h2.exceptions.ProtocolError:
                    self.kill("fin")
                    break
                for ev in events:
                    if isinstance(ev, h2.events.RequestReceived):
                        path = dict(ev.headers).get(b":path", b"").decode()
                        self.paths[ev.stream_id] = path
                        if path.startswith("/fault/hold"):
                            self.held.add(ev.stream_id)
                        os.write(1, f"REQ {self.n} {path}\n".encode())
                    elif isinstance(ev, h2.events.DataReceived) and ev.stream_id not in self.held:
                        self.got.setdefault(ev.stream_id, [0, []])[0] += len(ev.data)
                        self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    elif isinstance(ev, h2.events.TrailersReceived):
                        self.got.setdefault(ev.stream_id, [0, []])[1] = [
                            [k.decode(), v.decode()] for k, v in ev.headers]
                    elif isinstance(ev, h2.events.StreamReset):
                        self.paths.pop(ev.stream_id, None)
                        self.got.pop(ev.stream_id, None)
                        self.pending.pop(ev.stream_id, None)
                    if isinstance(ev, h2.events.StreamEnded) and ev.stream_id in self.paths:
                        try:
                            self.request(ev.stream_id)
                        except h2.exceptions.StreamClosedError:
                            pass            # the proxy reset it while its request ended: a race
                        except Exception as e:  # noqa: BLE001
                            # anything else closes the connection: a thread that died
                            # would leave it open and silent
                            os.write(2, f"conn {self.n}: {e!r}: closing\n".encode())
                            self.kill("fin")
                    if self.dead:
                        break
                for sid in list(self.pending):  # windows may have grown (WINDOW_UPDATE, SETTINGS)
                    try:
                        self.send_body(sid)
                    except h2.exceptions.StreamClosedError:
                        self.pending.pop(sid, None)
                self.flush()
        if not self.dead:
            self.dead = True
            self.sock.close()


def serve(sock, n):
    Conn(sock, n).run()


def main():
    listen_and_serve(serve)


if __name__ == "__main__":
    sys.exit(main())
