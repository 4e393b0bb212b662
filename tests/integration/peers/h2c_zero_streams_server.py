#!/usr/bin/env python3
"""An h2c server for test_h2c_upstream.py that admits no stream: after the
client's preface it sends SETTINGS with MAX_CONCURRENT_STREAMS 0 and a
SETTINGS ACK, then reads and discards everything, answering nothing but
PINGs (raw frames: an HTTP/2 library would end the connection instead).
--goaway: it answers each HEADERS with GOAWAY(last stream 0, NO_ERROR)
instead: every stream is unprocessed, so a client may retry it. Prints
READY <port>, then "CONN <n>" per accepted connection and "H2 <n>" once
it sent the HTTP/2 preface (readiness probes connect and close)."""
import socket
import sys
import threading

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS_ZERO = b"\x00\x00\x06\x04\x00\x00\x00\x00\x00" + b"\x00\x03" + b"\x00\x00\x00\x00"
SETTINGS_ACK = b"\x00\x00\x00\x04\x01\x00\x00\x00\x00"
GOAWAY = b"\x00\x00\x08\x07\x00\x00\x00\x00\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"


def serve(sock, n, goaway):
    buf = b""
    try:
        while len(buf) < len(PREFACE):
            d = sock.recv(65536)
            if not d:
                return
            buf += d
        print(f"H2 {n}", flush=True)           # a client, not a TCP probe
        sock.sendall(SETTINGS_ZERO + SETTINGS_ACK)
        buf = buf[len(PREFACE):]
        while True:
            while len(buf) >= 9:
                n = int.from_bytes(buf[:3], "big")
                if len(buf) < 9 + n:
                    break
                if buf[3] == 0x1 and goaway:
                    sock.sendall(GOAWAY)
                elif buf[3] == 0x6 and not buf[4] & 0x1:      # a PING: its ACK, as a live server
                    sock.sendall(b"\x00\x00\x08\x06\x01\x00\x00\x00\x00" + buf[9:17])
                buf = buf[9 + n:]
            d = sock.recv(65536)
            if not d:
                return
            buf += d
    except OSError:
        pass
    finally:
        sock.close()


def main():
    goaway = "--goaway" in sys.argv
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(256)
    print(f"READY {ls.getsockname()[1]}", flush=True)
    n = 0
    while True:
        s, _ = ls.accept()
        n += 1
        print(f"CONN {n}", flush=True)
        threading.Thread(target=serve, args=(s, n, goaway), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
