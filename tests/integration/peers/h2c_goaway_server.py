#!/usr/bin/env python3
"""A scripted h2c server (Debian's python3-h2) for test_grpc_proxy.py: the
first request to arrive is answered with GOAWAY naming last stream id
--last (0: the request was not processed; 1: it was) and its connection
closes; every later request gets 200 "served N". Prints READY <port>, and
one line per request seen: "REQ <connection> <stream> <path>" (connections
numbered in the order they were accepted; a TCP probe counts too).
--last -1: no GOAWAY; --delay-ms: each answer waits that long (requests
overlap); --max-streams: the SETTINGS_MAX_CONCURRENT_STREAMS announced."""
import argparse
import socket
import sys
import threading

import h2.config
import h2.connection
import h2.events
import h2.settings


def answer(conn, sock, lock, sid, seen):
    with lock:
        seen[0] += 1
        body = f"served {seen[0]}".encode()
        conn.send_headers(sid, [(":status", "200"), ("content-length", str(len(body)))])
        conn.send_data(sid, body, end_stream=True)
        sock.sendall(conn.data_to_send())


def serve(sock, n, a, seen):
    last = a.last
    lock = threading.Lock()
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    conn.initiate_connection()
    if a.max_streams:
        conn.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: a.max_streams})
    sock.sendall(conn.data_to_send())
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return
            with lock:
                events = conn.receive_data(data)
            for ev in events:
                if isinstance(ev, h2.events.RequestReceived):
                    path = dict(ev.headers).get(b":path", b"").decode()
                    # one write per line: the connections' threads print at once
                    print(f"REQ {n} {ev.stream_id} {path}\n", end="", flush=True)
                    if not seen[1] and last >= 0:
                        seen[1] = 1
                        conn.close_connection(last_stream_id=last)
                        sock.sendall(conn.data_to_send())
                        return
                elif isinstance(ev, h2.events.StreamEnded):
                    threading.Timer(a.delay_ms / 1000, answer, (conn, sock, lock, ev.stream_id, seen)).start()
                elif isinstance(ev, h2.events.DataReceived):
                    with lock:
                        conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            with lock:
                sock.sendall(conn.data_to_send())
    finally:
        sock.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--last", type=int, default=0)
    ap.add_argument("--delay-ms", type=int, default=0)
    ap.add_argument("--max-streams", type=int, default=0)
    a = ap.parse_args()
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)
    print(f"READY {ls.getsockname()[1]}", flush=True)
    seen, n = [0, 0], 0
    while True:
        s, _ = ls.accept()
        n += 1
        threading.Thread(target=serve, args=(s, n, a, seen), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
