#!/usr/bin/env python3
"""An h2c server (Debian's python3-h2) for test_h2c_upstream.py that
answers the first request it sees with a SETTINGS ACK nobody asked for (a
connection error the client answers with GOAWAY), then keeps that socket
open and silent. Every later request gets 200 "served". Prints READY
<port>, then "REQ <connection>" per request (connections numbered as
accepted; a TCP probe counts too)."""
import sys

import h2.events

from h2c_peer import listen_and_serve, server_conn


def serve(sock, n, seen):
    conn = server_conn(sock)
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
    listen_and_serve(serve, [])


if __name__ == "__main__":
    sys.exit(main())
