#!/usr/bin/env python3
"""A stand-in for the pqproxy binary, used only by test_harness_selftest.py
so the harness's proxy path (certgen, config, start_proxy, TLS client) is
tested without the real proxy: `certgen --out DIR` makes classical certs
with the openssl CLI under the file names pqproxy's certgen writes, and
`run --config FILE` terminates TLS on "listen" and relays bytes to
"upstream.address", one access log line per connection."""
import json
import os
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def certgen(out):
    os.makedirs(out, exist_ok=True)
    p = lambda name: os.path.join(out, name)  # noqa: E731
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", p("ca.key"), "-out", p("ca.crt"), "-days", "2",
            "-subj", "/CN=fake pqproxy CA")
    for leaf, ext in (("server", "subjectAltName=DNS:localhost,IP:127.0.0.1"),
                      ("client", "extendedKeyUsage=clientAuth")):
        openssl("req", *ec, "-keyout", p(f"{leaf}.key"), "-out", p(f"{leaf}.csr"),
                "-subj", f"/CN={leaf}")
        _sign(p, leaf, ext)
    # No ML-DSA in OpenSSL 3.0: the ML-DSA names hold copies so paths exist.
    shutil.copy(p("ca.crt"), p("mldsa-ca.crt"))
    shutil.copy(p("server.crt"), p("server-mldsa.crt"))
    shutil.copy(p("server.key"), p("server-mldsa.key"))
    with open(p("bundle-ca.crt"), "w") as f:
        f.write(open(p("ca.crt")).read() + open(p("mldsa-ca.crt")).read())


def _sign(p, leaf, ext):
    extfile = p(f"{leaf}.ext")
    with open(extfile, "w") as f:
        f.write(ext + "\n")
    openssl("x509", "-req", "-in", p(f"{leaf}.csr"), "-CA", p("ca.crt"), "-CAkey", p("ca.key"),
            "-CAcreateserial", "-out", p(f"{leaf}.crt"), "-days", "2", "-extfile", extfile)


def split_addr(a):
    host, port = a.rsplit(":", 1)
    return host, int(port)


def run(config_path):
    with open(config_path) as f:
        cfg = json.load(f)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert = cfg["tls"]["certificates"][0]
    ctx.load_cert_chain(cert["cert"], cert["key"])
    log_path = cfg["log"]["access_log"]
    lock = threading.Lock()
    srv = socket.create_server(split_addr(cfg["listen"]))
    n = 0

    def relay(raw, conn_no):
        stats = {"conn": conn_no, "bytes_in": 0, "bytes_out": 0}
        try:
            tls = ctx.wrap_socket(raw, server_side=True)
            up = socket.create_connection(split_addr(cfg["upstream"]["address"]), timeout=10)
            with tls, up:
                tls.settimeout(30)
                while True:
                    if not tls.pending():
                        r, _, _ = select.select([tls, up], [], [], 30)
                        if not r:
                            break
                    else:
                        r = [tls]
                    if tls in r:
                        data = tls.recv(65536)
                        if not data:
                            break
                        stats["bytes_in"] += len(data)
                        up.sendall(data)
                    if up in r:
                        data = up.recv(65536)
                        if not data:
                            break
                        stats["bytes_out"] += len(data)
                        tls.sendall(data)
        except (OSError, ssl.SSLError) as e:
            stats["error"] = str(e)
        with lock, open(log_path, "a") as f:
            f.write(json.dumps(stats) + "\n")

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    while True:
        raw, _ = srv.accept()
        n += 1
        threading.Thread(target=relay, args=(raw, n), daemon=True).start()


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1:3] == ["certgen", "--out"]:
        certgen(sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1:3] == ["run", "--config"]:
        run(sys.argv[3])
    else:
        sys.exit("usage: fake_pqproxy.py certgen --out DIR | run --config FILE")
