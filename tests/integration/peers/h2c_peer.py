"""What the test h2c servers in this folder share (Debian's python3-h2): a
server-side connection over an accepted socket, and the accept loop that
prints READY <port> and serves each connection on its own thread."""
import socket
import threading

import h2.config
import h2.connection


def server_conn(sock):
    """An h2 server connection on sock, its preface and SETTINGS sent."""
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    return conn


def listen_and_serve(serve, *args):
    """Accepts for ever; serve(sock, n, *args) per connection (n from 1)."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)
    print(f"READY {ls.getsockname()[1]}", flush=True)
    n = 0
    while True:
        s, _ = ls.accept()
        n += 1
        threading.Thread(target=serve, args=(s, n) + args, daemon=True).start()
