#!/usr/bin/env python3
"""Which TLS 1.3 key-exchange group does a server negotiate with an
OpenSSL client using that library's *default* groups (what wrk sends)?

    LD_LIBRARY_PATH=<openssl-3.5 dir> tlsgroup.py --port N [--lib DIR] [--groups LIST]

Drives libssl through ctypes (no `openssl` binary needed): TLS_client_method,
no certificate verification, SSL_connect, then prints
"group=<name> version=<TLS...> lib=<OpenSSL version>", exit 1 on failure.
Loopback only."""
import argparse
import ctypes
import os
import socket
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--lib", default="", help="directory holding libssl.so.3 (default: the loader's)")
    ap.add_argument("--groups", default="", help="colon-separated groups (default: the library's)")
    a = ap.parse_args()
    if a.host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("tlsgroup: loopback only")
    pre = (a.lib.rstrip("/") + "/") if a.lib else ""
    crypto = ctypes.CDLL(pre + "libcrypto.so.3", mode=ctypes.RTLD_GLOBAL)
    ssl = ctypes.CDLL(pre + "libssl.so.3")
    crypto.OpenSSL_version.restype = ctypes.c_char_p
    crypto.OpenSSL_version.argtypes = [ctypes.c_int]
    ssl.TLS_client_method.restype = ctypes.c_void_p
    ssl.SSL_CTX_new.restype = ctypes.c_void_p
    ssl.SSL_CTX_new.argtypes = [ctypes.c_void_p]
    ssl.SSL_CTX_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
    ssl.SSL_CTX_ctrl.restype = ctypes.c_long
    ssl.SSL_new.restype = ctypes.c_void_p
    ssl.SSL_new.argtypes = [ctypes.c_void_p]
    ssl.SSL_set_fd.argtypes = [ctypes.c_void_p, ctypes.c_int]
    ssl.SSL_connect.argtypes = [ctypes.c_void_p]
    ssl.SSL_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
    ssl.SSL_ctrl.restype = ctypes.c_long
    ssl.SSL_get_version.restype = ctypes.c_char_p
    ssl.SSL_get_version.argtypes = [ctypes.c_void_p]
    ssl.SSL_free.argtypes = [ctypes.c_void_p]
    ssl.SSL_CTX_free.argtypes = [ctypes.c_void_p]
    ssl.SSL_shutdown.argtypes = [ctypes.c_void_p]
    SSL_CTRL_SET_GROUPS_LIST = 92
    SSL_CTRL_GET_NEGOTIATED_GROUP = 134
    SSL_CTRL_SET_TLSEXT_HOSTNAME = 55
    ctx = ssl.SSL_CTX_new(ssl.TLS_client_method())
    if a.groups and ssl.SSL_CTX_ctrl(ctx, SSL_CTRL_SET_GROUPS_LIST, 0, a.groups.encode()) != 1:
        sys.exit(f"tlsgroup: library refused groups {a.groups}")
    s = socket.create_connection((a.host, a.port), timeout=5)
    s.settimeout(None)      # libssl needs a blocking descriptor; bound it with SO_RCVTIMEO/SO_SNDTIMEO
    tv = (5).to_bytes(8, sys.byteorder) + (0).to_bytes(8, sys.byteorder)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
    con = ssl.SSL_new(ctx)
    ssl.SSL_ctrl(con, SSL_CTRL_SET_TLSEXT_HOSTNAME, 0, b"localhost")
    ssl.SSL_set_fd(con, s.fileno())
    rc = ssl.SSL_connect(con)
    lib = crypto.OpenSSL_version(0).decode()
    if rc != 1:
        print(f"group=none handshake=failed lib={lib}")
        return 1
    gid = ssl.SSL_ctrl(con, SSL_CTRL_GET_NEGOTIATED_GROUP, 0, None)
    name = None
    if hasattr(ssl, "SSL_group_to_name"):
        ssl.SSL_group_to_name.restype = ctypes.c_char_p
        ssl.SSL_group_to_name.argtypes = [ctypes.c_void_p, ctypes.c_int]
        n = ssl.SSL_group_to_name(con, gid)
        name = n.decode() if n else None
    ver = ssl.SSL_get_version(con).decode()
    ssl.SSL_shutdown(con)
    ssl.SSL_free(con)
    ssl.SSL_CTX_free(ctx)
    s.close()
    print(f"group={name or hex(gid)} id=0x{gid & 0xffff:04x} version={ver} lib={lib}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
