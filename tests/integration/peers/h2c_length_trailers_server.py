#!/usr/bin/env python3
"""An h2c server (Debian's python3-h2) for test_h2c_upstream.py whose
responses carry both a content-length and trailers, as HTTP/2 allows:
200, content-length 6, "served", then grpc-status 0 and x-end: yes as
trailers. Prints READY <port>."""
import socket
import sys
import threading

import h2.config
import h2.connection
import h2.events


def serve(sock):
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
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
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)
    print(f"READY {ls.getsockname()[1]}", flush=True)
    while True:
        s, _ = ls.accept()
        threading.Thread(target=serve, args=(s,), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
