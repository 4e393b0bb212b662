#!/usr/bin/env python3
"""Interop with Debian 12's curl (OpenSSL 3.0): a classical-only TLS 1.3 client.

OpenSSL 3.0 has no hybrid ML-KEM group, so under the default
"pq_policy": "require" the proxy refuses the handshake (curl exit 35,
insufficient_security alert) and says why in its error log; under "prefer"
curl is served over X25519, which the access log records.
"""
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pxtest  # noqa: E402
from pxtest import check, check_eq, check_in, require_exe, skip  # noqa: E402

CURL_EXIT_SSL_CONNECT_ERROR = 35


def classical_curl():
    """curl, skipping unless its TLS library is an OpenSSL without hybrid groups (< 3.5)."""
    curl = require_exe("curl")
    version = subprocess.run([curl, "--version"], capture_output=True, text=True,
                             timeout=30).stdout.splitlines()[0]
    m = re.search(r"OpenSSL/(\d+)\.(\d+)", version)
    if not m:
        skip(f"curl is not built on OpenSSL ({version}); this test covers Debian 12's curl")
    if (int(m.group(1)), int(m.group(2))) >= (3, 5):
        skip(f"curl's OpenSSL offers hybrid groups ({version}); this test covers a "
             "classical-only client such as Debian 12's curl (OpenSSL 3.0)")
    return curl


def run_curl(h, proxy, path="/echo", extra=()):
    ca = os.path.join(h.certgen(), "ca.crt")
    cmd = [classical_curl(), "-sS", "--max-time", "30", "--cacert", ca, "--tlsv1.3", *extra,
           "--resolve", f"localhost:{proxy.port}:127.0.0.1", f"https://localhost:{proxy.port}{path}"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_refused_under_require(h):
    classical_curl()
    proxy = h.start_proxy({"tls": {"pq_policy": "require"}})
    r = run_curl(h, proxy)
    check_eq(r.returncode, CURL_EXIT_SSL_CONNECT_ERROR, f"curl exit status: {r.stderr}")
    check_in("alert insufficient security", r.stderr, "the TLS alert curl received")
    check_eq(r.stdout, "", "no response")
    proxy.proc.wait_line(r"TLS handshake refused: client offers no hybrid post-quantum group",
                         stream="stderr")
    check_eq(proxy.access_log_lines(), [], "no request served")


def test_served_with_x25519_under_prefer(h):
    classical_curl()
    proxy = h.start_proxy({"tls": {"pq_policy": "prefer"}})
    r = run_curl(h, proxy, "/echo?from=curl")
    check_eq(r.returncode, 0, f"curl exit status: {r.stderr}")
    echo = json.loads(r.stdout)
    check_eq(echo["target"], "/echo?from=curl", "upstream request")
    check(any(k.lower() == "user-agent" and v.startswith("curl/") for k, v in echo["headers"]),
          f"curl's User-Agent reached the upstream: {echo['headers']}")
    log = proxy.wait_access_log(1)[-1]
    check_eq((log["group"], log["tls_version"], log["status"], log["sni"]),
             ("X25519", "TLSv1.3", 200, "localhost"), "access log")


def test_http2_and_http1_by_alpn(h):
    """The default tls.alpn offers h2 and http/1.1: curl --http2 gets HTTP/2,
    curl --http1.1 HTTP/1.1, on the same listener."""
    curl = classical_curl()
    features = subprocess.run([curl, "--version"], capture_output=True, text=True, timeout=30).stdout
    if "HTTP2" not in features:
        skip("this curl is built without nghttp2 (no HTTP2 feature)")
    proxy = h.start_proxy({"tls": {"pq_policy": "prefer"}})
    for flag, proto in (("--http2", "h2"), ("--http1.1", "HTTP/1.1")):
        r = run_curl(h, proxy, f"/echo?from={proto}", extra=[flag, "-w", "\\n%{http_version}"])
        check_eq(r.returncode, 0, f"curl {flag}: {r.stderr}")
        body, _, version = r.stdout.rpartition("\n")
        check_eq(version, {"h2": "2", "HTTP/1.1": "1.1"}[proto], f"curl {flag}: HTTP version")
        check_eq(json.loads(body)["target"], f"/echo?from={proto}", "upstream request")
    logs = proxy.wait_access_log(2)
    check_eq([(l["path"], l["protocol"]) for l in logs],
             [("/echo?from=h2", "h2"), ("/echo?from=HTTP/1.1", "HTTP/1.1")], "access log protocol")


if __name__ == "__main__":
    pxtest.main([test_refused_under_require, test_served_with_x25519_under_prefer,
                 test_http2_and_http1_by_alpn])
