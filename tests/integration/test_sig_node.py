#!/usr/bin/env python3
"""Request/response signatures across two independent implementations of
docs/signatures.md: pqproxy (C, wolfSSL) and tests/integration/peers/sign.mjs
(Node 24, OpenSSL 3.5). Node signs -> `pqproxy verify` accepts; `pqproxy
sign` -> Node verifies; for requests, responses (head and trailer) and the
RFC 9421 field pair; and tampering with any covered component makes each
side refuse. Skipped (with the reason) when Node 24 is not available: set
PX_NODE24 or install it under ~/.cache/pqproxy/node-24*/ (scripts/deps.sh)."""
import base64
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pxtest  # noqa: E402
from pxtest import check, check_eq, check_in, skip  # noqa: E402
from pxhelpers import node24  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SIGN_MJS = os.path.join(HERE, "peers", "sign.mjs")
VECTORS = os.path.join(pxtest.SOURCE_DIR, "tests", "data", "sig")
REQ = ["--method", "POST", "--authority", "model.example", "--path", "/v1/models/m:predict",
       "--query", "a=1&b=2"]


def run(cmd, cwd):
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


class Peers:
    def __init__(self, h):
        self.node = node24()
        self.px = pxtest.pqproxy_bin()
        self.dir = h.path("sig")
        os.makedirs(self.dir, exist_ok=True)

    def file(self, name, data):
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
        return path

    def pq(self, *args):
        return run([self.px, *args], self.dir)

    def js(self, *args):
        return run([self.node, SIGN_MJS, *args], self.dir)

    def ok(self, rc_out, what):
        rc, out = rc_out
        check(rc == 0, f"{what}: expected success, got rc={rc}: {out}")
        return out

    def refused(self, rc_out, what, reason=None):
        rc, out = rc_out
        check(rc == 1, f"{what}: expected refusal, got rc={rc}: {out}")
        check_in("FAIL", out, what)
        if reason:
            check_in(reason, out, what)


def headers_of(out):
    return dict(line.split(": ", 1) for line in out.strip().splitlines())


def write_headers(p, name, hdrs):
    return p.file(name, "".join(f"{k}: {v}\n" for k, v in hdrs.items()))


# Each tampering: (description, option changes, header changes, body, reason
# pqproxy reports). Options replace the value after the named flag.
def tamperings(hdrs):
    xs = hdrs["X-Signature"]
    other_nonce = xs.replace('nonce="', 'nonce="X', 1)
    i = xs.index(";sig=:") + 10
    bad_sig = xs[:i] + ("A" if xs[i] != "A" else "B") + xs[i + 1:]
    j = xs.index(";pq=:") + 500
    bad_pq = xs[:j] + ("A" if xs[j] != "A" else "B") + xs[j + 1:]
    return [
        ("method", {"--method": "PUT"}, {}, None, "ecdsa_invalid"),
        ("authority", {"--authority": "other.example"}, {}, None, "ecdsa_invalid"),
        ("path", {"--path": "/v1/models/x:predict"}, {}, None, "ecdsa_invalid"),
        ("query", {"--query": "a=1&b=3"}, {}, None, "ecdsa_invalid"),
        ("body", {}, {}, b'{"instances":[9]}', "digest_mismatch"),
        ("content-digest", {}, {"Content-Digest": "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"},
         None, "ecdsa_invalid"),
        ("nonce", {}, {"X-Signature": other_nonce}, None, "ecdsa_invalid"),
        ("ecdsa signature", {}, {"X-Signature": bad_sig}, None, "ecdsa_invalid"),
        ("ml-dsa signature", {}, {"X-Signature": bad_pq}, None, "mldsa_invalid"),
        ("no signature", {}, {"X-Signature": None}, None, None),
    ]


def apply(opts, changes):
    out = list(opts)
    for flag, v in changes.items():
        out[out.index(flag) + 1] = v
    return out


def check_request_tamperings(p, hdrs, body, verify_pq, verify_js):
    for what, opt_changes, hdr_changes, new_body, reason in tamperings(hdrs):
        h2 = {k: v for k, v in hdrs.items()}
        for k, v in hdr_changes.items():
            if v is None:
                h2.pop(k)
            else:
                h2[k] = v
        hf = write_headers(p, "t.headers", h2)
        bf = p.file("t.body", new_body if new_body is not None else body)
        opts = apply(REQ, opt_changes) + ["--body", bf, "--headers", hf]
        if verify_pq:
            p.refused(verify_pq(opts), f"pqproxy verify, tampered {what}", reason)
        if verify_js:
            p.refused(verify_js(opts), f"node verify, tampered {what}")


def test_node_signs_pqproxy_verifies(h):
    p = Peers(h)
    p.js("keygen", "--out", "client")
    body = b'{"instances":[1.0,2.0,5.0]}'
    bf = p.file("req.body", body)
    out = p.ok(p.js("sign-request", "--key", "client", "--keyid", "node-client", *REQ, "--body", bf),
               "node sign-request")
    hdrs = headers_of(out)
    hf = write_headers(p, "req.headers", hdrs)
    verify = lambda opts: p.pq("verify", "--pub", "client", "--keyid", "node-client", *opts)  # noqa: E731
    res = p.ok(verify(REQ + ["--body", bf, "--headers", hf]), "pqproxy verify")
    check_in("OK keyid=node-client", res)
    # also from a keyring directory (the Kubernetes Secret layout)
    ring = os.path.join(p.dir, "ring")
    os.makedirs(ring)
    for alg in ("ecdsa", "mldsa"):
        shutil.copy(os.path.join(p.dir, f"client.{alg}.pub"), os.path.join(ring, f"node-client.{alg}.pub"))
    p.ok(p.pq("verify", "--keys", ring, *REQ, "--body", bf, "--headers", hf), "pqproxy verify --keys")
    p.refused(p.pq("verify", "--pub", "client", "--keyid", "someone-else", *REQ, "--body", bf,
                   "--headers", hf), "unknown keyid", "unknown_keyid")
    p.refused(p.pq("verify", "--pub", "client", "--keyid", "node-client", "--now", "1", *REQ,
                   "--body", bf, "--headers", hf), "not yet valid", "not_yet_valid")
    p.refused(p.pq("verify", "--pub", "client", "--keyid", "node-client", "--now", "99999999999",
                   *REQ, "--body", bf, "--headers", hf), "expired", "expired")
    check_request_tamperings(p, hdrs, body, verify, None)


def test_pqproxy_signs_node_verifies(h):
    p = Peers(h)
    p.ok(p.pq("keygen", "--alg", "hybrid", "--out", "client"), "pqproxy keygen")
    body = b'{"instances":[1.0,2.0,5.0]}'
    bf = p.file("req.body", body)
    out = p.ok(p.pq("sign", "--key", "client", "--keyid", "c-client", *REQ, "--body", bf), "pqproxy sign")
    hdrs = headers_of(out)
    check_eq(sorted(hdrs), ["Content-Digest", "X-Signature"], "printed headers")
    hf = write_headers(p, "req.headers", hdrs)
    verify = lambda opts: p.js("verify-request", "--pub", "client", "--keyid", "c-client", *opts)  # noqa: E731
    p.ok(verify(REQ + ["--body", bf, "--headers", hf]), "node verify-request")
    check_request_tamperings(p, hdrs, body, None, verify)


def test_pair_form(h):
    p = Peers(h)
    p.js("keygen", "--out", "client")
    bf = p.file("req.body", b"{}")
    hdrs = headers_of(p.ok(p.js("sign-request", "--key", "client", "--keyid", "k", *REQ, "--body", bf,
                                "--form", "pair"), "node sign pair"))
    check_eq(sorted(hdrs), ["Content-Digest", "Signature", "Signature-Input"], "pair headers")
    hf = write_headers(p, "req.headers", hdrs)
    p.ok(p.pq("verify", "--pub", "client", "--keyid", "k", *REQ, "--body", bf, "--headers", hf),
         "pqproxy verify pair")
    hdrs["Signature-Input"] = hdrs["Signature-Input"].replace("created=", "created=1", 1)
    hf = write_headers(p, "bad.headers", hdrs)
    p.refused(p.pq("verify", "--pub", "client", "--keyid", "k", *REQ, "--body", bf, "--headers", hf),
              "pair with another created")


def test_responses(h):
    p = Peers(h)
    p.ok(p.pq("keygen", "--alg", "hybrid", "--out", "proxy"), "keygen proxy")
    p.js("keygen", "--out", "nodeproxy")
    p.js("keygen", "--out", "client")
    bf = p.file("req.body", b'{"instances":[1]}')
    req = headers_of(p.ok(p.js("sign-request", "--key", "client", "--keyid", "c", *REQ, "--body", bf),
                          "sign request"))
    rs = p.file("req.sig", req["X-Signature"])
    other = headers_of(p.ok(p.js("sign-request", "--key", "client", "--keyid", "c", *REQ, "--body", bf),
                            "sign other request"))
    rs_other = p.file("other.sig", other["X-Signature"])
    body = b'data: {"token":"a"}\n\ndata: [DONE]\n\n'
    rb = p.file("resp.body", body)
    rb_bad = p.file("resp-bad.body", body + b"x")
    for trailer in ([], ["--trailer"]):
        what = "trailer" if trailer else "head"
        # pqproxy signs, Node verifies
        resp = p.ok(p.pq("sign", "--key", "proxy", "--keyid", "pqproxy", "--response", "--status", "200",
                         "--body", rb, "--request-signature-file", rs, *trailer), f"pqproxy sign response {what}")
        check_in('"x-signature";req', resp)
        hf = p.file("resp.headers", resp)
        base = ["verify-response", "--pub", "proxy", "--keyid", "pqproxy", "--headers", hf, *trailer]
        p.ok(p.js(*base, "--status", "200", "--body", rb, "--request-signature-file", rs), f"node verify {what}")
        p.refused(p.js(*base, "--status", "500", "--body", rb, "--request-signature-file", rs), f"status {what}")
        p.refused(p.js(*base, "--status", "200", "--body", rb_bad, "--request-signature-file", rs), f"body {what}")
        p.refused(p.js(*base, "--status", "200", "--body", rb, "--request-signature-file", rs_other),
                  f"other request {what}")
        # Node signs, pqproxy verifies
        resp = p.ok(p.js("sign-response", "--key", "nodeproxy", "--keyid", "np", "--status", "201",
                         "--body", rb, "--request-signature-file", rs, *trailer), f"node sign response {what}")
        hf = p.file("nresp.headers", resp)
        base = ["verify", "--pub", "nodeproxy", "--keyid", "np", "--response", "--headers", hf, *trailer]
        p.ok(p.pq(*base, "--status", "201", "--body", rb, "--request-signature-file", rs),
             f"pqproxy verify response {what}")
        p.refused(p.pq(*base, "--status", "200", "--body", rb, "--request-signature-file", rs),
                  f"pqproxy status {what}", "ecdsa_invalid")
        p.refused(p.pq(*base, "--status", "201", "--body", rb_bad, "--request-signature-file", rs),
                  f"pqproxy body {what}", "digest_mismatch")
        p.refused(p.pq(*base, "--status", "201", "--body", rb, "--request-signature-file", rs_other),
                  f"pqproxy other request {what}", "ecdsa_invalid")
        p.refused(p.pq(*base, "--status", "201", "--body", rb, "--request-signature-file", rs,
                       "--expect-keyid", "pqproxy"), f"pqproxy keyid {what}", "unknown_keyid")


def test_node_private_key_form(h):
    """Node 24.22 writes the ML-DSA-87 private key in the RFC 9881 seed form
    (docs/signatures.md section 6), and pqproxy signs with it."""
    p = Peers(h)
    p.js("keygen", "--out", "nk")
    with open(os.path.join(p.dir, "nk.mldsa.key")) as f:
        der = base64.b64decode("".join(l for l in f.read().splitlines() if not l.startswith("-----")))
    check_eq(len(der), 54, "PKCS#8 of the 32-byte seed form")
    bf = p.file("nk.body", b'{"instances":[1]}')
    out = p.ok(p.pq("sign", "--key", "nk", "--keyid", "nk", *REQ, "--body", bf), "pqproxy signs with Node's key")
    hf = p.file("nk.headers", out)
    p.ok(p.js("verify-request", "--pub", "nk", "--keyid", "nk", *REQ, "--body", bf, "--headers", hf),
         "node verifies")


def test_committed_vectors(h):
    """The vectors of docs/signatures.md section 10 verify in Node as well."""
    p = Peers(h)
    created = 1767225600
    req = ["--method", "POST", "--authority", "model.example", "--path", "/v1/models/half_plus_two:predict"]
    for hdrs, keyid in (("request.headers", "client-a"), ("request-node.headers", "node-a")):
        p.ok(p.js("verify-request", "--pub", os.path.join(VECTORS, keyid), "--keyid", keyid, *req,
                  "--body", os.path.join(VECTORS, "request.body"), "--headers", os.path.join(VECTORS, hdrs),
                  "--now", str(created + 10)), f"node verifies {hdrs}")
        p.ok(p.pq("verify", "--pub", os.path.join(VECTORS, keyid), "--keyid", keyid, *req,
                  "--body", os.path.join(VECTORS, "request.body"), "--headers", os.path.join(VECTORS, hdrs),
                  "--now", str(created + 10)), f"pqproxy verifies {hdrs}")
    for hdrs, body, trailer in (("response.headers", "response.body", []),
                                ("stream.trailers", "stream.body", ["--trailer"])):
        p.ok(p.js("verify-response", "--pub", os.path.join(VECTORS, "pqproxy"), "--keyid", "pqproxy",
                  "--status", "200", "--body", os.path.join(VECTORS, body), "--headers",
                  os.path.join(VECTORS, hdrs), "--request-signature-file", os.path.join(VECTORS, "request.sig"),
                  "--now", str(created + 10), *trailer), f"node verifies {hdrs}")


if __name__ == "__main__":
    pxtest.main([test_node_signs_pqproxy_verifies, test_pqproxy_signs_node_verifies, test_pair_form,
                 test_responses, test_node_private_key_form, test_committed_vectors])
