#!/usr/bin/env python3
"""Interop with curl built on the project's wolfSSL (`make curl`,
scripts/curl-pq.sh): the hybrid-capable command-line client for systems
whose own curl has no ML-KEM.

- Under "pq_policy": "require" a plain request with the built curl's default
  groups is served, and the access log says X25519MLKEM768; so does one with
  the group pinned (--curves X25519MLKEM768).
- A signed-request round trip: headers from `pqproxy sign` sent by that curl
  to a route requiring signatures with sign_responses; 200, and the
  response's X-Signature verifies with `pqproxy verify --response`.

PX_CURL_PQ names the binary (`make test` passes the one scripts/curl-pq.sh
built); without it every test skips.
"""
import http.client
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pxtest  # noqa: E402
from pxtest import check, check_eq, check_in, skip  # noqa: E402
from test_signatures import Sig, run  # noqa: E402


def curl_pq():
    path = os.environ.get("PX_CURL_PQ", "")
    if not path:
        skip("PX_CURL_PQ is unset: no curl built on wolfSSL (`make curl` / scripts/curl-pq.sh builds one)")
    if not os.access(path, os.X_OK):
        skip(f"PX_CURL_PQ={path} is not an executable (run `make curl`)")
    version = subprocess.run([path, "--version"], capture_output=True, text=True,
                             timeout=30).stdout.splitlines()[0]
    check("wolfSSL/" in version, f"PX_CURL_PQ is not a wolfSSL curl: {version}")
    return path


def run_curl(port, ca, path, extra=()):
    cmd = [curl_pq(), "-sS", "--max-time", "30", "--cacert", ca, "--tlsv1.3",
           "--resolve", f"localhost:{port}:127.0.0.1", *extra, f"https://localhost:{port}{path}"]
    return subprocess.run(cmd, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)


def hrr_count(proxy):
    c = http.client.HTTPConnection("127.0.0.1", proxy.admin_port, timeout=5)
    c.request("GET", "/metrics")
    total = None
    for line in c.getresponse().read().decode().splitlines():
        if line.startswith("pqproxy_tls_hello_retry_requests_total{"):
            total = (total or 0) + float(line.rsplit(" ", 1)[1])
    if total is None:
        raise AssertionError("no pqproxy_tls_hello_retry_requests_total in /metrics")
    return total


def test_plain_request_under_require(h):
    curl_pq()
    proxy = h.start_proxy({"tls": {"pq_policy": "require"}})
    ca = os.path.join(h.certgen(), "ca.crt")
    # the built curl's defaults (wolfSSL's default groups), then the group pinned
    for n, extra in enumerate(((), ("--curves", "X25519MLKEM768")), start=1):
        r = run_curl(proxy.port, ca, f"/echo?n={n}", extra)
        check_eq(r.returncode, 0, f"curl {' '.join(extra)} exit status: {r.stderr!r}")
        echo = json.loads(r.stdout)
        check_eq(echo["target"], f"/echo?n={n}", "upstream request")
        check(any(k.lower() == "user-agent" and v.startswith("curl/8.") for k, v in echo["headers"]),
              f"curl's User-Agent reached the upstream: {echo['headers']}")
        log = proxy.wait_access_log(n)[-1]
        check_eq((log["group"], log["tls_version"], log["status"], log["sni"]),
                 ("X25519MLKEM768", "TLSv1.3", 200, "localhost"), f"access log ({extra or 'defaults'})")
        # wolfSSL's first key share is already the hybrid one: no HelloRetryRequest
        check_eq(hrr_count(proxy), 0, "HelloRetryRequests")
    # a classical-only offer is refused under require (the policy, not the client)
    r = run_curl(proxy.port, ca, "/echo", ("--curves", "X25519"))
    check_eq(r.returncode, 35, f"curl --curves X25519 exit status: {r.stderr!r}")
    check_eq(len(proxy.access_log_lines()), 2, "nothing served over X25519")


def test_signed_round_trip(h):
    curl = curl_pq()
    sg = Sig(h)
    cfg = sg.proxy.config
    # Sig's keys, keyring and routes (verify required + sign_responses on "/"),
    # served by a second proxy under "require"
    proxy = h.start_proxy({"tls": {"pq_policy": "require"}, "signatures": cfg["signatures"],
                           "routes": cfg["routes"]}, name="pqproxy-require")
    body = b'{"instances": [1.0, 2.0, 5.0]}'
    hdrs = sg.sign("POST", "/echo", body)
    names = [k for k, _ in hdrs]
    check_in("Content-Digest", names)
    check_in("X-Signature", names)
    bf, rh, rb = h.path("req.bin"), h.path("resp.headers"), h.path("resp.bin")
    with open(bf, "wb") as f:
        f.write(body)
    extra = ["-X", "POST", "--data-binary", f"@{bf}", "-H", "Host: localhost",
             "-H", "Content-Type: application/json", "-D", rh, "-o", rb]
    for k, v in hdrs:
        extra += ["-H", f"{k}: {v}"]
    r = run_curl(proxy.port, sg.ca, "/echo", extra)
    check_eq(r.returncode, 0, f"curl exit status: {r.stderr!r}")
    with open(rh, "rb") as f:
        head = f.read().decode("latin-1").split("\r\n")
    # HTTP/2 when the curl has nghttp2 (the default tls.alpn offers h2):
    # the signature checks below then cover a signed exchange over h2
    check(head[0].startswith(("HTTP/1.1 200", "HTTP/2 200")), f"status line: {head[0]!r}")
    resp = {}
    for line in head[1:]:
        if ": " in line:
            k, v = line.split(": ", 1)
            resp[k.lower()] = v
    xsig, digest = resp.get("x-signature"), resp.get("content-digest")
    check(xsig and 'keyid="pqproxy"' in xsig, f"response X-Signature: {xsig!r}")
    check(digest and digest.startswith("sha-256=:"), f"response Content-Digest: {digest!r}")
    rec = sg.records()[-1]
    check_eq((rec["target"], rec["body_len"]), ("/echo", len(body)), "upstream request")
    up = {k.lower(): v for k, v in rec["headers"]}
    check_eq(up.get("x-verified-keyid"), "client-a", "the model server learns who signed")

    def verify(body_file):
        return run("verify", "--pub", os.path.join(sg.keys, "proxy"), "--keyid", "pqproxy",
                   "--response", "--status", "200", "--body", body_file,
                   "--request-signature", dict(hdrs)["X-Signature"],
                   "--header", f"Content-Digest: {digest}", "--header", f"X-Signature: {xsig}",
                   check_rc=False)
    v = verify(rb)
    check_eq(v.returncode, 0, v.stdout + v.stderr)
    check_in("OK", v.stdout)
    with open(rb, "ab") as f:
        f.write(b" ")
    check_eq(verify(rb).returncode, 1, "a tampered response body does not verify")
    log = [l for l in proxy.wait_access_log(1) if l["path"] == "/echo"][-1]
    check_eq((log["group"], log["status"], log["sig"], log["sig_keyid"]),
             ("X25519MLKEM768", 200, "ok", "client-a"), "access log")


def test_http2(h):
    """curl --http2 over X25519MLKEM768: h2 by the default tls.alpn (the
    curl scripts/curl-pq.sh builds links Debian's libnghttp2)."""
    curl = curl_pq()
    if "HTTP2" not in subprocess.run([curl, "--version"], capture_output=True, text=True,
                                     timeout=30).stdout:
        skip(f"{curl} was built without nghttp2 (an older scripts/curl-pq.sh); `make curl` rebuilds it")
    proxy = h.start_proxy({"tls": {"pq_policy": "require"}})
    ca = os.path.join(h.certgen(), "ca.crt")
    r = run_curl(proxy.port, ca, "/echo?h2=1", ("--http2", "-d", "x" * 5000, "-w", "\\n%{http_version}"))
    check_eq(r.returncode, 0, f"curl --http2: {r.stderr!r}")
    body, _, version = r.stdout.decode().rpartition("\n")
    check_eq(version, "2", "curl spoke HTTP/2")
    echo = json.loads(body)
    check_eq((echo["method"], echo["target"], echo["body_len"]), ("POST", "/echo?h2=1", 5000),
             "the upstream request, body whole")
    log = proxy.wait_access_log(1)[-1]
    check_eq((log["protocol"], log["group"], log["status"]), ("h2", "X25519MLKEM768", 200), "access log")


if __name__ == "__main__":
    pxtest.main([test_plain_request_under_require, test_signed_round_trip, test_http2])
