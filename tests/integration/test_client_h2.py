#!/usr/bin/env python3
"""`pqproxy request --http2`: one request over HTTP/2 through the proxy
(ALPN h2 by the default tls.alpn): GET with fields, a POST body from
memory and a streamed one from a file (length known, and unknown from a
pipe), -i printing the HTTP/2 head, the access log saying h2; a server
that does not offer h2 is a clear failure. Signing and verifying over
HTTP/2: test_h2_signatures.py."""
import hashlib
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pxtest  # noqa: E402
from pxtest import check, check_eq, check_in  # noqa: E402
from pxhelpers import run_request_cmd  # noqa: E402


def url(proxy, path):
    return f"https://localhost:{proxy.port}{path}"


def test_get_and_posts_over_h2(h):
    proxy = h.start_proxy({"tls": {"pq_policy": "require"}})
    ca = os.path.join(h.certgen(), "ca.crt")
    rc, out, err = run_request_cmd(["--http2", "--cacert", ca, "-i", "-v", "-H", "X-Test: One",
                                    url(proxy, "/echo?x=1")])
    check_eq(rc, 0, f"GET: {err}")
    head, _, body = out.partition("\r\n\r\n")
    check(head.startswith("HTTP/2 200\r\n"), f"-i prints the HTTP/2 head: {head!r}")
    check_in("content-type: application/json", head, "lowercase fields")
    echo = json.loads(body)
    fields = {k.lower(): v for k, v in echo["headers"]}
    check_eq((echo["method"], echo["target"]), ("GET", "/echo?x=1"), "the upstream request")
    check_eq(fields.get("x-test"), "One", "an -H field, its name lowered for HTTP/2")
    check_in("pqproxy-request/", fields.get("user-agent", ""), "user-agent")
    check_in("X25519MLKEM768", err, "-v names the hybrid group")

    rc, out, err = run_request_cmd(["--http2", "--cacert", ca, "-d", "hello h2", url(proxy, "/echo")])
    check_eq(rc, 0, f"POST -d: {err}")
    echo = json.loads(out)
    check_eq((echo["method"], echo["body_len"], echo["body_sha256"]),
             ("POST", 8, hashlib.sha256(b"hello h2").hexdigest()), "the -d body")

    data = os.urandom(300_000)
    path = h.path("body.bin")
    with open(path, "wb") as f:
        f.write(data)
    rc, out, err = run_request_cmd(["--http2", "--cacert", ca, "--data-file", path,
                                    "-o", h.path("out.json"), url(proxy, "/echo")])
    check_eq(rc, 0, f"POST --data-file: {err}")
    with open(h.path("out.json")) as f:
        echo = json.load(f)
    check_eq((echo["body_len"], echo["body_sha256"]), (len(data), hashlib.sha256(data).hexdigest()),
             "a 300 KB body streamed from a file, written with -o")

    # from a pipe: no content-length, the proxy frames it chunked upstream
    r = subprocess.run([pxtest.pqproxy_bin(), "request", "--http2", "--cacert", ca, "--data-file", "-",
                        url(proxy, "/echo")], input=data[:70_000], capture_output=True, timeout=30)
    check_eq(r.returncode, 0, r.stderr)
    echo = json.loads(r.stdout)
    check_eq((echo["body_len"], echo["body_sha256"]),
             (70_000, hashlib.sha256(data[:70_000]).hexdigest()), "a body of unknown length")
    check(any(k.lower() == "transfer-encoding" for k, _ in echo["headers"]),
          f"chunked towards the upstream: {echo['headers']}")

    rc, out, err = run_request_cmd(["--http2", "--cacert", ca, "-f", url(proxy, "/status/503")])
    check_eq(rc, 22, f"-f on a 503: {err}")

    logs = proxy.wait_access_log(5)
    check_eq({l["protocol"] for l in logs}, {"h2"}, "every request over HTTP/2")


def test_server_without_h2(h):
    proxy = h.start_proxy({"tls": {"alpn": ["http/1.1"]}})
    ca = os.path.join(h.certgen(), "ca.crt")
    rc, out, err = run_request_cmd(["--http2", "--cacert", ca, url(proxy, "/echo")])
    check_eq((rc, out), (1, ""), f"no h2: {err}")
    check_in("the server did not choose h2 by ALPN", err)
    check_eq(proxy.access_log_lines(), [], "nothing served")
    rc, out, err = run_request_cmd(["--cacert", ca, url(proxy, "/echo")])
    check_eq(rc, 0, f"without --http2 the same server answers: {err}")


if __name__ == "__main__":
    pxtest.main([test_get_and_posts_over_h2, test_server_without_h2])
