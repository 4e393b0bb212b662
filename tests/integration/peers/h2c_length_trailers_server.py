#!/usr/bin/env python3
"""An h2c server (Debian's python3-h2) for test_h2c_upstream.py whose
responses carry both a content-length and trailers, as HTTP/2 allows:
200, content-length 6, "served", then grpc-status 0 and x-end: yes as
trailers. Prints READY <port>."""
import sys

import h2.events

from h2c_peer import listen_and_serve, server_conn


def serve(sock, n):
    conn = server_conn(sock)
    while True:
        data = sock.recv(65536)
        if not data:
            break
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.StreamEnded):
                conn.send_headers(ev.stream_id, [(":status", "200"), ("content-type", "application/grpc"),
                                                 ("content-length", "6")])
                conn.send_data(ev.stream_id, b"served")
                conn.send_headers(ev.stream_id, [("grpc-status", "0"), ("x-end", "yes")], end_stream=True)
        sock.sendall(conn.data_to_send())
    sock.close()


def main():
    listen_and_serve(serve)


if __name__ == "__main__":
    sys.exit(main())
