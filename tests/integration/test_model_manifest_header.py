"""signatures.response_model_manifest: every response carries
Pqproxy-Model-Manifest, the SHA-256 of the manifest file the model server
was started from; a signed response covers it (`pqproxy verify --response`
accepts it and refuses a changed value); a model server cannot forge it;
without the key nothing is added; the file is read again on reload; a bad
path is a configuration error naming the file, the key and the reason."""
import base64
import hashlib
import os
import signal
import subprocess

from pxtest import (Harness, check, check_eq, check_in, main, pqproxy_bin, read_response, send_raw,
                    tls_connect, wait_until)
from test_signatures import Sig, run

FORGED = "sha-256=:" + base64.b64encode(b"\0" * 32).decode() + ":"
MANIFEST_V1 = b'{"payloadType":"application/vnd.in-toto+json","payload":"djE=","signatures":[]}\n'
MANIFEST_V2 = MANIFEST_V1.replace(b"djE=", b"djI=")


def field_of(data):
    return "sha-256=:" + base64.b64encode(hashlib.sha256(data).digest()).decode() + ":"


def write(h, name, data):
    p = h.path(name)
    with open(p, "wb") as f:
        f.write(data)
    return p


def start(h, manifest=None):
    extra = {"response_model_manifest": manifest} if manifest else None
    return Sig(h, routes=[{"prefix": "/", "verify": "required", "sign_responses": True},
                          {"prefix": "/status/", "verify": "off"}], sig_extra=extra)


def verify(sg, h, status, body, req_sig, fields, trailer=False):
    rb = write(h, "resp.bin", body)
    args = ["verify", "--pub", os.path.join(sg.keys, "proxy"), "--keyid", "pqproxy", "--response",
            "--status", str(status), "--body", rb, "--request-signature", req_sig,
            "--require", "pqproxy-model-manifest"]
    if trailer:
        args.append("--trailer")
    for k, v in fields:
        # with --trailer, --header fields are the trailer section's
        head = trailer and k.lower() == "pqproxy-model-manifest"
        args += ["--head-header" if head else "--header", f"{k}: {v}"]
    return run(*args, check_rc=False)


def test_signed_response_carries_the_manifest_digest(h):
    manifest = write(h, "manifest.json", MANIFEST_V1)
    sg = start(h, manifest)
    body = b'{"instances": [1.0, 2.0, 5.0]}'
    hdrs = sg.sign("POST", "/echo", body, query="set_header=Pqproxy-Model-Manifest:" + FORGED)
    r = sg.send("POST", "/echo?set_header=Pqproxy-Model-Manifest:" + FORGED, hdrs, body)
    check_eq(r.status, 200, r.body[:300])
    # the model server sent a forged value: only the proxy's reaches the client
    check_eq(r.header_all("pqproxy-model-manifest"), [field_of(MANIFEST_V1)])
    xsig = r.header("x-signature")
    check_in('"pqproxy-model-manifest"', xsig.split(";created=")[0], "covered by the signature")
    req_sig = dict(hdrs)["X-Signature"]
    fields = [("Content-Digest", r.header("content-digest")), ("X-Signature", xsig),
              ("Pqproxy-Model-Manifest", r.header("pqproxy-model-manifest"))]
    v = verify(sg, h, 200, r.body, req_sig, fields)
    check_eq(v.returncode, 0, v.stdout + v.stderr)
    check_in("OK", v.stdout)
    # a client shown another model's digest does not accept the response
    v = verify(sg, h, 200, r.body, req_sig, fields[:2] + [("Pqproxy-Model-Manifest", FORGED)])
    check_eq(v.returncode, 1, v.stdout + v.stderr)
    v = verify(sg, h, 200, r.body, req_sig, fields[:2])
    check_eq(v.returncode, 1, "without the field the signature does not verify")


def test_streamed_response_covers_it_in_the_head(h):
    manifest = write(h, "manifest.json", MANIFEST_V1)
    sg = start(h, manifest)
    q = "n=3&interval_ms=10&set_header=Pqproxy-Model-Manifest:" + FORGED
    hdrs = sg.sign("GET", "/sse", b"", query=q)
    s = tls_connect(sg.proxy.port, sg.ca)
    req = [f"GET /sse?{q} HTTP/1.1", "Host: localhost"] + [f"{k}: {v}" for k, v in hdrs]
    send_raw(s, ("\r\n".join(req) + "\r\n\r\n").encode())
    r = read_response(s)
    s.close()
    check_eq(r.status, 200)
    check_eq(r.header_all("pqproxy-model-manifest"), [field_of(MANIFEST_V1)])
    tr = dict((k.lower(), v) for k, v in r.trailers)
    check_in('"pqproxy-model-manifest"', tr["x-signature"])
    v = verify(sg, h, 200, r.body, dict(hdrs)["X-Signature"],
               [("Content-Digest", tr["content-digest"]), ("X-Signature", tr["x-signature"]),
                ("Pqproxy-Model-Manifest", r.header("pqproxy-model-manifest"))], trailer=True)
    check_eq(v.returncode, 0, v.stdout + v.stderr)


def test_unsigned_route_still_replaces_a_forged_value(h):
    manifest = write(h, "manifest.json", MANIFEST_V1)
    sg = start(h, manifest)
    r = sg.send("GET", "/status/200?set_header=pqproxy-model-manifest:" + FORGED, [])
    check_eq(r.status, 200)
    check_eq(r.header("x-signature"), None)
    check_eq(r.header_all("pqproxy-model-manifest"), [field_of(MANIFEST_V1)])


def test_absent_when_not_configured(h):
    sg = start(h)
    body = b"{}"
    hdrs = sg.sign("POST", "/echo", body)
    r = sg.send("POST", "/echo", hdrs, body)
    check_eq(r.status, 200)
    check_eq(r.header("pqproxy-model-manifest"), None)
    check("pqproxy-model-manifest" not in r.header("x-signature"), r.header("x-signature"))


def test_reload_reads_the_manifest_again(h):
    manifest = write(h, "manifest.json", MANIFEST_V1)
    sg = start(h, manifest)
    check_eq(sg.send("GET", "/status/200", []).header("pqproxy-model-manifest"), field_of(MANIFEST_V1))
    write(h, "manifest.json", MANIFEST_V2)
    sg.proxy.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "configuration reloaded" in sg.proxy.proc.stderr_text(), msg="reloaded")
    check_eq(sg.send("GET", "/status/200", []).header("pqproxy-model-manifest"), field_of(MANIFEST_V2))
    # a reload that cannot read the file keeps the running configuration
    os.unlink(manifest)
    sg.proxy.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "signatures.response_model_manifest" in sg.proxy.proc.stderr_text(),
               msg="reload refused")
    check_eq(sg.send("GET", "/status/200", []).header("pqproxy-model-manifest"), field_of(MANIFEST_V2))


def check_config_refuses(h, sig, routes, *expect):
    cfg = h.base_proxy_config()
    cfg["signatures"] = sig
    cfg["routes"] = routes
    r = subprocess.run([pqproxy_bin(), "check-config", h.write_config(cfg)], capture_output=True,
                       text=True, timeout=30)
    check_eq(r.returncode, 1, r.stdout + r.stderr)
    for e in expect:
        check_in(e, r.stderr)


def test_config_errors(h):
    keys = h.path("k")
    run("keygen", "--alg", "hybrid", "--out", os.path.join(keys, "proxy"))
    sign = [{"prefix": "/", "sign_responses": True}]
    sig = {"response_key": os.path.join(keys, "proxy")}
    missing = h.path("no-such-manifest.json")
    check_config_refuses(h, dict(sig, response_model_manifest=missing), sign,
                         "signatures.response_model_manifest", missing, "No such file or directory")
    check_config_refuses(h, dict(sig, response_model_manifest=keys), sign,
                         "signatures.response_model_manifest", "not a regular file")
    check_config_refuses(h, dict(sig, response_model_manifest=write(h, "empty.json", b"")), sign,
                         "signatures.response_model_manifest", "empty")
    check_config_refuses(h, {"response_model_manifest": write(h, "m.json", MANIFEST_V1)},
                         [{"prefix": "/"}], "signatures.response_model_manifest",
                         "needs a route with sign_responses")
    check_config_refuses(h, dict(sig, response_model_manifest=7), sign,
                         "signatures.response_model_manifest")


if __name__ == "__main__":
    main([test_signed_response_carries_the_manifest_digest, test_streamed_response_covers_it_in_the_head,
          test_unsigned_route_still_replaces_a_forged_value, test_absent_when_not_configured,
          test_reload_reads_the_manifest_again, test_config_errors])
