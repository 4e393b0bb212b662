#!/usr/bin/env python3
"""Interop with Node.js 24 (OpenSSL 3.5), an independent hybrid TLS client.

The client is tests/integration/peers/node_client.mjs run with $PX_NODE24
(`make test` installs Node 24 with scripts/deps.sh --peers and passes it
through CMake). pqproxy's access log is the authority for the negotiated
group; Node's own view is checked too, in whichever form its release reports
it (check_peer_group), and OpenSSL's handshake trace shows a
HelloRetryRequest as a second ClientHello.
"""
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pxtest  # noqa: E402
from pxtest import check, check_eq, check_in, skip  # noqa: E402
from pxhelpers import metrics  # noqa: E402

NODE_CLIENT = os.path.join(pxtest.HERE, "peers", "node_client.mjs")
HYBRID = "X25519MLKEM768"
_node_checked = None


def node24():
    """The Node 24 binary, or skip naming what is missing."""
    global _node_checked
    path = os.environ.get("PX_NODE24")
    if path is None:
        # Run by hand, outside ctest: the path `make test` recorded.
        m = re.search(r"^NODE24 := (.+)$",
                      pxtest._read_text(os.path.join(pxtest.BUILD_DIR, "deps.mk")), re.M)
        path = m.group(1).strip() if m else ""
    if not path:
        skip("Node.js 24 not available: PX_NODE24 is empty (scripts/deps.sh --peers "
             "could not install it from npm; see the make test output)")
    if not os.access(path, os.X_OK):
        skip(f"PX_NODE24={path} is not an executable")
    if _node_checked is None:
        r = subprocess.run([path, "-p", "process.versions.node + ' ' + process.versions.openssl"],
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0 or len(r.stdout.split()) != 2:
            raise pxtest.TestFailure(f"{path} does not run: {r.stderr.strip()}")
        _node_checked = r.stdout.split()
    node_ver, ssl_ver = _node_checked
    if int(node_ver.split(".")[0]) < 24:
        skip(f"{path} is Node {node_ver}, not 24+")
    if tuple(int(x) for x in re.findall(r"\d+", ssl_ver)[:2]) < (3, 5):
        skip(f"Node {node_ver} uses OpenSSL {ssl_ver}: no X25519MLKEM768 before 3.5")
    return path


def run_node(h, script, arg, timeout=60):
    """Runs a peers/ script with Node 24 and its JSON argument; returns
    (its last stdout line as JSON, its exit code, stderr)."""
    n = h.node_runs = getattr(h, "node_runs", 0) + 1
    r = subprocess.run([node24(), script, json.dumps(arg)], capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    # Kept next to the proxy's logs for a failing test.
    for ext, text in (("out", r.stdout), ("err", r.stderr)):
        path = h.path(f"node-{n}.{ext}")
        with open(path, "w") as f:
            f.write(text)
        h.add_log(f"node run {n} {ext}", path)
    lines = r.stdout.strip().splitlines()
    check(lines, f"node printed nothing (exit {r.returncode}): {r.stderr[-2000:]}")
    return json.loads(lines[-1]), r.returncode, r.stderr


def node_request(h, port, ca, **opts):
    """Runs node_client.mjs once; returns (result dict, stderr)."""
    res, rc, stderr = run_node(h, NODE_CLIENT, dict(opts, port=port, ca=ca))
    check_eq(rc, 0 if res["ok"] else 3, "node exit status")
    return res, stderr


def client_hellos(trace):
    """ClientHellos in OpenSSL's trace: 2 means the server sent a HelloRetryRequest."""
    return len(re.findall(r"^\s*ClientHello, Length=", trace, re.M))


def check_served(res, upstream_target="/echo"):
    check(res["ok"], f"node request failed: {res}")
    check_eq(res["status"], 200, "status")
    check_eq(res["protocol"], "TLSv1.3", "protocol")
    echo = json.loads(res["body"])
    check_eq(echo["target"], upstream_target, "upstream saw the request")
    return echo


def last_access(proxy):
    return proxy.wait_access_log(1)[-1]


def check_peer_group(res, expected, msg):
    """Node's own report of the key exchange (getEphemeralKeyInfo()) agrees
    with the group the proxy logged. Node 24 has reported it two ways: up to
    OpenSSL 3.5.x of 24.21 a hybrid KEM group had no name (only classical
    ECDH groups were named); since 24.22 (OpenSSL 3.5.9) it is named,
    {'type': 'TLSGroup', 'name': 'X25519MLKEM768'}. Either way a classical
    name for a hybrid handshake is a disagreement."""
    eph = res.get("ephemeral") or {}
    name = eph.get("name")
    if expected == HYBRID:
        check(name in (None, "", HYBRID), f"{msg}: Node reports {eph} for a {HYBRID} handshake")
    else:
        check_eq(name, expected, f"{msg}: Node's view of the group ({eph})")


def test_default_groups_negotiate_hybrid(h):
    node24()
    proxy = h.start_proxy({"tls": {"pq_policy": "require"}})
    ca = os.path.join(h.certgen(), "ca.crt")
    body = json.dumps({"instances": [1.0, 2.0, 5.0]})
    res, trace = node_request(h, proxy.port, ca, method="POST", body=body, trace=True)
    echo = check_served(res)
    check_eq((echo["method"], echo["body_len"]), ("POST", len(body)), "body reached upstream")
    check(res["authorized"], "certificate verified against the dev CA")
    check_eq(res["peer_cert"]["key_type"], "ec", "ECDSA server certificate")
    log = last_access(proxy)
    check_eq((log["group"], log["tls_version"], log["status"], log["sni"]),
             (HYBRID, "TLSv1.3", 200, "localhost"), "access log")
    # Node's view: OpenSSL 3.5 sends the hybrid key share first (no HRR).
    check_eq(client_hellos(trace), 1, "one ClientHello (hybrid key share sent at once)")
    check_in(HYBRID, trace, "OpenSSL's trace names the group")
    check_peer_group(res, HYBRID, "default groups")


def test_x25519_only_refused_under_require(h):
    node24()
    proxy = h.start_proxy({"tls": {"pq_policy": "require"}})
    ca = os.path.join(h.certgen(), "ca.crt")
    res, _ = node_request(h, proxy.port, ca, ecdhCurve="X25519")
    check(not res["ok"], f"classical-only handshake must fail: {res}")
    check_eq(res["ssl_alert"], 71, f"insufficient_security alert: {res['message']}")
    check_in("insufficient security", res["message"])
    proxy.proc.wait_line(r"TLS handshake refused: client offers no hybrid post-quantum group",
                         stream="stderr")
    check_eq(proxy.access_log_lines(), [], "no request served")


def test_x25519_only_served_under_prefer(h):
    node24()
    proxy = h.start_proxy({"tls": {"pq_policy": "prefer"}})
    ca = os.path.join(h.certgen(), "ca.crt")
    res, _ = node_request(h, proxy.port, ca, ecdhCurve="X25519")
    check_served(res)
    check_eq(last_access(proxy)["group"], "X25519", "access log group")
    check_peer_group(res, "X25519", "X25519 only")


def test_classical_first_ends_hybrid_via_hrr(h):
    """X25519 offered first (its key share only): the server's preference wins
    through a HelloRetryRequest, under both policies."""
    node24()
    for policy in ("require", "prefer"):
        proxy = h.start_proxy({"tls": {"pq_policy": policy}}, name=f"pqproxy-{policy}")
        ca = os.path.join(h.certgen(), "ca.crt")
        res, trace = node_request(h, proxy.port, ca, ecdhCurve=f"X25519:{HYBRID}", trace=True)
        check_served(res)
        check_eq(last_access(proxy)["group"], HYBRID, f"{policy}: access log group")
        check_eq(client_hellos(trace), 2, f"{policy}: HelloRetryRequest then a second ClientHello")
        check_peer_group(res, HYBRID, policy)
        proxy.stop()


def test_mldsa_certificate(h):
    """ML-DSA server certificate (certgen's server-mldsa.crt, issued by an
    ML-DSA CA): OpenSSL 3.5 verifies the chain and the ML-DSA CertificateVerify."""
    node24()
    certs = h.certgen()
    proxy = h.start_proxy({"tls": {"pq_policy": "require", "certificates": [
        {"cert": os.path.join(certs, "server-mldsa.crt"),
         "key": os.path.join(certs, "server-mldsa.key")}]}})
    res, _ = node_request(h, proxy.port, os.path.join(certs, "mldsa-ca.crt"))
    check_served(res)
    check(res["authorized"], "verified against mldsa-ca.crt")
    check(res["peer_cert"]["key_type"].startswith("ml-dsa-"), f"ML-DSA leaf: {res['peer_cert']}")
    check_in("ML-DSA", res["peer_cert"]["issuer"])
    check_eq(last_access(proxy)["group"], HYBRID, "access log group")
    # The ECDSA dev CA does not vouch for it: the ML-DSA chain is what was verified.
    res, _ = node_request(h, proxy.port, os.path.join(certs, "ca.crt"))
    check(not res["ok"], f"ECDSA CA must not verify the ML-DSA chain: {res}")
    check_in("verify", res["message"])


def test_certificate_by_client_preference(h):
    """ECDSA is listed first, ML-DSA second, both for every name: the client's
    signature_algorithms order decides which it gets; one it cannot verify
    at all is refused with handshake_failure, counted by reason."""
    node24()
    certs = h.certgen()
    proxy = h.start_proxy({"tls": {"pq_policy": "require", "certificates": [
        {"cert": os.path.join(certs, "server.crt"), "key": os.path.join(certs, "server.key")},
        {"cert": os.path.join(certs, "server-mldsa.crt"),
         "key": os.path.join(certs, "server-mldsa.key")}]}})
    bundle = os.path.join(certs, "bundle-ca.crt")
    for sigalgs, key_type, logged in (("mldsa65:ecdsa_secp256r1_sha256", "ml-dsa-65", "ML-DSA-65"),
                                      ("ecdsa_secp256r1_sha256:mldsa65", "ec", "ECDSA-P256"),
                                      ("ecdsa_secp256r1_sha256", "ec", "ECDSA-P256")):
        res, _ = node_request(h, proxy.port, bundle, sigalgs=sigalgs)
        check_served(res)
        check_eq(res["peer_cert"]["key_type"], key_type, f"{sigalgs}: Node's view")
        check_eq(last_access(proxy)["cert_key"], logged, f"{sigalgs}: access log")
    res, _ = node_request(h, proxy.port, bundle, sigalgs="rsa_pss_rsae_sha256:ed25519")
    check(not res["ok"], f"no certificate the client can verify: {res}")
    check_eq(res["ssl_alert"], 40, f"handshake_failure: {res['message']}")
    proxy.proc.wait_line(r"client offers no signature algorithm of our certificates", stream="stderr")
    m = metrics(proxy)
    check_eq(m['pqproxy_tls_handshakes_total{group="none",hybrid="false",cipher="none",'
               'result="no_common_sigalg"}'], 1.0, "counted by reason")


if __name__ == "__main__":
    pxtest.main([test_default_groups_negotiate_hybrid, test_x25519_only_refused_under_require,
                 test_x25519_only_served_under_prefer, test_classical_first_ends_hybrid_via_hrr,
                 test_mldsa_certificate, test_certificate_by_client_preference])
