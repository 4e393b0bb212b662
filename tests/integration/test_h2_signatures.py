#!/usr/bin/env python3
"""Per-request dual signatures (docs/signatures.md) over HTTP/2: Node 24's
http2 client (peers/node_h2_client.mjs, ALPN h2 over X25519MLKEM768) sends
requests signed by the independent Node signer (peers/sign.mjs), so
"@method", "@authority", "@path" and "@query" come from the pseudo-header
fields :method, :authority and :path. Refusals end only their own stream,
replays are caught across streams and connections, a digest mismatch gives
the nonce back, and signed responses (head and trailer forms) verify with
`pqproxy verify --response` over what arrived as HTTP/2 fields."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pxtest  # noqa: E402
from pxtest import check, check_eq, check_in  # noqa: E402
from pxhelpers import pattern, sha  # noqa: E402
from test_h2 import H2_ALPN, h2_requests  # noqa: E402
from test_h2_grpc_errors import check_grpc_error, grpc_call  # noqa: E402
from test_interop_node import node24  # noqa: E402
from test_signatures import Sig, check_request_client, run  # noqa: E402

SIGN_MJS = os.path.join(pxtest.HERE, "peers", "sign.mjs")


class H2Sig(Sig):
    """test_signatures' proxy (routes: "/" verify required and signs
    responses, /status/ off, /delay/ optional) with h2 offered by ALPN."""

    def __init__(self, h):
        node24()
        super().__init__(h, overrides=H2_ALPN)
        self.authority = f"localhost:{self.proxy.port}"     # what Node sends as :authority
        self.n = 0

    def sign(self, method, path, body=b"", query=None, authority=None):
        """The fields sign.mjs prints for this request, as h2 fields."""
        self.n += 1
        bf = self.h.path(f"h2body-{self.n}.bin")
        with open(bf, "wb") as f:
            f.write(body)
        cmd = [node24(), SIGN_MJS, "sign-request", "--key", os.path.join(self.keys, "client"),
               "--keyid", "client-a", "--method", method, "--authority", authority or self.authority,
               "--path", path, "--body", bf]
        if query is not None:
            cmd += ["--query", query]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        check_eq(r.returncode, 0, f"sign.mjs: {r.stderr}")
        return {k.lower(): v for k, v in (l.split(": ", 1) for l in r.stdout.strip().splitlines())}

    def requests(self, reqs):
        return h2_requests(self.h, self.proxy.port, reqs)["responses"]

    def targets(self):
        return sorted(r["target"] for r in self.records())


def post(path, hdrs, body_len, **more):
    return dict({"method": "POST", "path": path, "headers": hdrs, "body_len": body_len}, **more)


def check_refused(r, error, what):
    check_eq((r.get("error"), r["status"], r["headers"].get("content-type")),
             (None, 401, "application/json"), f"{what}: a JSON 401 on its stream: {r}")
    check_eq(json.loads(r["body"])["error"], error, f"{what}: {r['body']}")


def test_signed_requests_over_h2(h):
    """One connection, concurrent streams: the genuine request passes; a
    changed :path, :authority or body is refused on its own stream only;
    a host field that contradicts :authority resets its stream."""
    sg = H2Sig(h)
    n = 300
    body = pattern(0, n)
    good = sg.sign("POST", "/echo", body, query="x=1")
    other_path = sg.sign("POST", "/echo", body, query="x=1")
    other_auth = sg.sign("POST", "/echo", body, query="x=1")
    other_body = sg.sign("POST", "/echo", body, query="x=1")
    with_host = sg.sign("POST", "/echo", body, query="x=1")
    ok, path, auth, bod, host, free = sg.requests([
        post("/echo?x=1", good, n),
        post("/echo?x=2", other_path, n),
        post("/echo?x=1", dict(other_auth, **{":authority": f"127.0.0.1:{sg.proxy.port}"}), n),
        post("/echo?x=1", other_body, n + 1),
        # Node sends a lone host field as :authority: give both
        post("/echo?x=1", dict(with_host, host="other.example", **{":authority": sg.authority}), n),
        {"method": "GET", "path": "/status/200"}])
    check_eq((ok.get("error"), ok["status"]), (None, 200), f"the signed request: {ok}")
    echo = json.loads(ok["body"])
    fields = {k.lower(): v for k, v in echo["headers"]}
    check_eq(fields.get("host"), sg.authority, "Host from :authority, the signed @authority")
    check_eq(fields.get("x-verified-keyid"), "client-a", "the upstream learns who signed")
    check("x-signature" not in fields, "the signature is not forwarded")
    check_eq((echo["target"], echo["body_len"], echo["body_sha256"]), ("/echo?x=1", n, sha(body)),
             "the upstream saw the signed request whole")
    check_refused(path, "signature_ecdsa_invalid", ":path changed")
    check_refused(auth, "signature_ecdsa_invalid", ":authority changed")
    check_refused(bod, "content_digest_mismatch", "body changed")
    # RFC 9113 8.3.1: a malformed request, reset before it becomes a request
    check_eq((host["status"], host.get("rst_code")), (0, 1),
             f"host differs from :authority: RST_STREAM PROTOCOL_ERROR: {host}")
    check_eq(free["status"], 200, f"a sibling stream on an open route: {free}")
    check_eq(sg.targets(), ["/echo?x=1", "/status/200"], "nothing refused reached the upstream")
    logs = sg.proxy.wait_access_log(5)
    check_eq(sorted((l["status"], l.get("sig")) for l in logs if l["path"].startswith("/echo")),
             [(200, "ok"), (401, "digest_mismatch"), (401, "ecdsa_invalid"), (401, "ecdsa_invalid")],
             "access log: one line per request stream")
    check_eq({l["protocol"] for l in logs}, {"h2"})


def test_grpc_over_h2(h):
    """A gRPC-shaped call on a verify: required route: signed, it is
    forwarded; without a signature, with a bad one or replayed, the refusal
    is grpc-status 16 (UNAUTHENTICATED) on that stream."""
    sg = H2Sig(h)
    path = "/inference.GRPCInferenceService/ModelInfer"
    good = sg.sign("POST", "/echo", pattern(0, 5))
    bad = sg.sign("POST", "/inference.GRPCInferenceService/ModelReady", pattern(0, 5))
    ok, missing, tampered = sg.requests([
        grpc_call("/echo", headers=good),
        grpc_call(path),
        grpc_call(path, headers=bad)])
    check_eq(ok["status"], 200, f"the signed call is forwarded: {ok}")
    fields = {k.lower(): v for k, v in json.loads(ok["body"])["headers"]}
    check_eq((fields.get("x-verified-keyid"), fields.get("content-type")), ("client-a", "application/grpc"))
    check_grpc_error(missing, 16, "signature_missing", "unsigned gRPC call")
    check_grpc_error(tampered, 16, "signature_ecdsa_invalid", "gRPC call signed for another path")
    (again,) = sg.requests([grpc_call("/echo", headers=good)])
    check_grpc_error(again, 16, "signature_replayed", "replayed gRPC call")
    check_eq(sg.targets(), ["/echo"], "only the signed call reached the upstream")


def test_replay_across_streams_and_connections(h):
    sg = H2Sig(h)
    n = 64
    hdrs = sg.sign("POST", "/echo", pattern(0, n))
    a, b = sg.requests([post("/echo", hdrs, n), post("/echo", hdrs, n)])
    check_eq(sorted((a["status"], b["status"])), [200, 401], f"same signature, two streams: {a} {b}")
    check_refused(a if a["status"] == 401 else b, "signature_replayed", "replay on a sibling stream")
    (c,) = sg.requests([post("/echo", hdrs, n)])
    check_refused(c, "signature_replayed", "replay on another connection")
    check_eq(sg.targets(), ["/echo"], "the upstream saw it once")
    check_eq(sg.metric('pqproxy_signature_verifications_total{result="replayed"}'), 2)


def test_digest_mismatch_gives_nonce_back(h):
    """Someone who copied the signature fields but not the body cannot burn
    the nonce: the genuine request still passes afterwards."""
    sg = H2Sig(h)
    n = 200
    hdrs = sg.sign("POST", "/echo", pattern(0, n))
    (bad,) = sg.requests([post("/echo", hdrs, n + 1)])
    check_refused(bad, "content_digest_mismatch", "another body")
    (good,) = sg.requests([post("/echo", hdrs, n)])
    check_eq(good["status"], 200, f"the genuine request after the give-back: {good}")
    (again,) = sg.requests([post("/echo", hdrs, n)])
    check_refused(again, "signature_replayed", "once used, the nonce is spent")
    check_eq(sg.targets(), ["/echo"])


def test_reset_stream_gives_nonce_back(h):
    """A stream reset by the client after its signature verified, while
    its body is awaited, is never forwarded: its nonce is given back."""
    sg = H2Sig(h)
    n = 1000
    hdrs = sg.sign("POST", "/echo", pattern(0, n))
    (cut,) = sg.requests([post("/echo", hdrs, n, stall_after=10, cancel_after_ms=500)])
    check_eq(cut["status"], 0, f"reset before any answer: {cut}")
    check_eq(sg.metric('pqproxy_signature_verifications_total{result="ok"}'), 1,
             "the signature had verified (the nonce was reserved)")
    (good,) = sg.requests([post("/echo", hdrs, n)])
    check_eq(good["status"], 200, f"the same request again, whole: {good}")
    check_eq(sg.targets(), ["/echo"])


def verify_response(sg, status, body_file, req_sig, fields, trailer):
    args = ["verify", "--pub", os.path.join(sg.keys, "proxy"), "--keyid", "pqproxy", "--response",
            "--status", str(status), "--body", body_file, "--request-signature", req_sig]
    if trailer:
        args.append("--trailer")
    for name in ("Content-Digest", "X-Signature"):
        args += ["--header", f"{name}: {fields[name.lower()]}"]
    return run(*args, check_rc=False)


def test_signed_responses_over_h2(h):
    """A body of known length is signed in the response head, a streamed
    one in the trailers; both arrive as HTTP/2 fields and verify."""
    sg = H2Sig(h)
    n = 100
    held = sg.sign("POST", "/echo", pattern(0, n))
    streamed = sg.sign("GET", "/sse", query="n=3&interval_ms=20")
    hb, sb = h.path("held.bin"), h.path("streamed.bin")
    r1, r2 = sg.requests([post("/echo", held, n, save_body=hb),
                          {"method": "GET", "path": "/sse?n=3&interval_ms=20", "headers": streamed,
                           "save_body": sb}])
    check_eq(r1["status"], 200, f"held: {r1}")
    check_in('"x-signature";req', r1["headers"].get("x-signature", ""), "signed in the head")
    v = verify_response(sg, 200, hb, held["x-signature"], r1["headers"], trailer=False)
    check_eq(v.returncode, 0, v.stdout + v.stderr)
    check_in("OK keyid=pqproxy", v.stdout)
    check_eq(r2["status"], 200, f"streamed: {r2}")
    check_eq(r2["headers"].get("x-signature"), None, "streamed: nothing signed in the head")
    tr = r2.get("trailers") or {}
    check_in('"content-digest";tr', tr.get("x-signature", ""), f"signed in the trailers: {r2}")
    v = verify_response(sg, 200, sb, streamed["x-signature"], tr, trailer=True)
    check_eq(v.returncode, 0, v.stdout + v.stderr)
    # what the client received is what was signed: one byte more does not verify
    with open(sb, "ab") as f:
        f.write(b" ")
    v = verify_response(sg, 200, sb, streamed["x-signature"], tr, trailer=True)
    check_eq(v.returncode, 1, v.stdout + v.stderr)
    check_in("digest_mismatch", v.stdout)
    # bound to its request: another request's signature does not verify
    v = verify_response(sg, 200, hb, streamed["x-signature"], r1["headers"], trailer=False)
    check_eq(v.returncode, 1, v.stdout + v.stderr)
    check_eq(sg.metric('pqproxy_response_signatures_total{result="signed"}'), 2)


def test_request_cli_over_h2(h):
    """`pqproxy request --http2` signs its request in HTTP/2 fields and
    verifies the signed response, head and trailer forms."""
    sg = H2Sig(h)
    echo = check_request_client(sg, ["--http2"])
    check_eq({k.lower(): v for k, v in echo["headers"]}.get("x-verified-keyid"), "client-a")
    # unsigned, the route refuses it
    r = subprocess.run([pxtest.pqproxy_bin(), "request", "--http2", "--cacert", sg.ca, "-f",
                        f"https://localhost:{sg.proxy.port}/echo"], capture_output=True, text=True,
                       timeout=60)
    check_eq(r.returncode, 22, r.stderr)
    check_in("signature_missing", r.stdout)
    check_eq([l.get("protocol") for l in sg.proxy.wait_access_log(4)], ["h2"] * 4)


if __name__ == "__main__":
    pxtest.main([test_signed_requests_over_h2, test_grpc_over_h2,
                 test_replay_across_streams_and_connections, test_digest_mismatch_gives_nonce_back,
                 test_reset_stream_gives_nonce_back, test_signed_responses_over_h2,
                 test_request_cli_over_h2])
