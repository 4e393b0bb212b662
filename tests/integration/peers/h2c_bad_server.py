#!/usr/bin/env python3
"""An h2c server (Debian's python3-h2) for test_h2c_upstream.py that
answers the first request it sees with a SETTINGS ACK nobody asked for (a
connection error the client answers with GOAWAY), then keeps that socket
open and silent. Every later request gets 200 "served". Prints READY
<port>, then "REQ <connection>" per request (connections numbered as
accepted; a TCP probe counts too)."""
import socket
import sys
import threading

import h2.config
import h2.connection
import h2.events


def serve(sock, n, seen):
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    while True:
        data = sock.recv(65536)
        if not data:
            break
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.StreamEnded):
                print(f"REQ {n}", flush=True)
            if isinstance(ev, h2.events.StreamEnded) and not seen:
                seen.append(n)
                sock.sendall(conn.data_to_send())                       # the real ACK first
                sock.sendall(b"\x00\x00\x00\x04\x01\x00\x00\x00\x00")   # then a stray one
                while sock.recv(65536):                                 # and silence, socket open
                    pass
                sock.close()
                return
            if isinstance(ev, h2.events.StreamEnded):
                conn.send_headers(ev.stream_id, [(":status", "200"), ("content-length", "6")])
                conn.send_data(ev.stream_id, b"served", end_stream=True)
        sock.sendall(conn.data_to_send())
    sock.close()


def main():
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)
    print(f"READY {ls.getsockname()[1]}", flush=True)
    n, seen = 0, []
    while True:
        s, _ = ls.accept()
        n += 1
        threading.Thread(target=serve, args=(s, n, seen), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
