#!/usr/bin/env python3
"""mTLS with Node 24 as the client (OpenSSL 3.5, client certificates):
tls.client_verify "optional" and "required", tls.client_verify_depth,
tls.client_crl (a revoked certificate refused, reloaded on SIGHUP, bad CRLs
refused by check-config), the verified identity in the access log and in
x-forwarded-client-cert, and a client's own x-forwarded-client-cert never
reaching the model server.

The PKI is made with Debian's openssl CLI (`openssl ca -gencrl` for the
CRLs; pqproxy's certgen makes no CRLs); its RFC 2253 subject printing and
Python's hashlib are the independent references for the forwarded
identity."""
import hashlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pxtest  # noqa: E402
from pxtest import check, check_eq, check_in, main, wait_until  # noqa: E402
from pxhelpers import upstream_header  # noqa: E402
from test_interop_node import node_request  # noqa: E402

REVOKED = "CRL Cert revoked"            # wolfSSL's text, in "TLS handshake refused: ..."
DEPTH = "Maximum Chain Depth Exceeded"
ALICE_SUBJ = '/O=Acme, "Inc"/CN=alice;x'
LEAF_EXT = """[ca]
basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
[leaf]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth
subjectAltName=DNS:alice.example,URI:spiffe://acme/ns/a,email:alice@example.org,IP:10.1.2.3
[plain]
basicConstraints=critical,CA:FALSE
extendedKeyUsage=clientAuth
"""


def openssl(h, *args, cwd=None):
    r = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60,
                       cwd=cwd, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise pxtest.TestFailure(f"openssl {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


class Pki:
    """root -> alice (SANs, hostile subject), bob; root -> int1 -> carol;
    int1 -> int2 -> dave; another root "other" that signs nothing we trust.
    Each CA has an `openssl ca` database for revocations and CRLs."""

    def __init__(self, h):
        pxtest.require_exe("openssl")
        self.h = h
        self.dir = h.path("pki")
        self.serial = 100
        os.makedirs(self.dir, exist_ok=True)
        with open(self.p("ext.cnf"), "w") as f:
            f.write(LEAF_EXT)
        self.ca("root", "/CN=Test Root")
        self.ca("other", "/CN=Other Root")
        self.ca("int1", "/CN=Intermediate One", issuer="root")
        self.ca("int2", "/CN=Intermediate Two", issuer="int1")
        self.leaf("alice", ALICE_SUBJ, "root", "leaf")
        self.leaf("bob", "/CN=bob", "root", "plain")
        self.leaf("carol", "/CN=carol", "int1", "plain")
        self.leaf("dave", "/CN=dave", "int2", "plain")
        self.leaf("mallory", "/CN=mallory", "other", "plain")
        self.chain("carol", ["carol", "int1"])
        self.chain("dave", ["dave", "int2", "int1"])
        self.chain("root+int1", ["root", "int1"])     # a client_ca bundle

    def p(self, name):
        return os.path.join(self.dir, name)

    def key(self, name):
        openssl(self.h, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-out", self.p(name + ".key"))

    def ca(self, name, subj, issuer=None):
        self.key(name)
        if issuer is None:
            openssl(self.h, "req", "-new", "-x509", "-key", self.p(name + ".key"), "-subj", subj,
                    "-days", "2", "-out", self.p(name + ".crt"),
                    "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        else:
            self.sign(name, subj, issuer, "ca")
        db = self.p(name + ".db")
        os.makedirs(db, exist_ok=True)
        open(os.path.join(db, "index.txt"), "w").close()
        with open(os.path.join(db, "crlnumber"), "w") as f:
            f.write("01\n")
        with open(self.p(name + ".cnf"), "w") as f:
            f.write(f"[ca]\ndefault_ca=d\n[d]\ndatabase={db}/index.txt\n"
                    f"crlnumber={db}/crlnumber\ndefault_md=sha256\ndefault_crl_days=7\n")

    def sign(self, name, subj, issuer, ext):
        self.serial += 1
        if not os.path.exists(self.p(name + ".key")):
            self.key(name)
        openssl(self.h, "req", "-new", "-key", self.p(name + ".key"), "-subj", subj,
                "-out", self.p(name + ".csr"))
        openssl(self.h, "x509", "-req", "-in", self.p(name + ".csr"), "-CA",
                self.p(issuer + ".crt"), "-CAkey", self.p(issuer + ".key"), "-set_serial",
                str(self.serial), "-days", "2", "-extfile", self.p("ext.cnf"),
                "-extensions", ext, "-out", self.p(name + ".crt"))

    def leaf(self, name, subj, issuer, ext):
        self.sign(name, subj, issuer, ext)

    def chain(self, name, parts):
        with open(self.p(name + ".chain"), "w") as f:
            for part in parts:
                with open(self.p(part + ".crt")) as c:
                    f.write(c.read())

    def revoke(self, ca, name):
        openssl(self.h, "ca", "-config", self.p(ca + ".cnf"), "-revoke", self.p(name + ".crt"),
                "-keyfile", self.p(ca + ".key"), "-cert", self.p(ca + ".crt"))

    def crl(self, ca, out, *extra):
        path = self.p(out)
        openssl(self.h, "ca", "-config", self.p(ca + ".cnf"), "-gencrl", "-keyfile",
                self.p(ca + ".key"), "-cert", self.p(ca + ".crt"), "-out", path + ".tmp", *extra)
        os.replace(path + ".tmp", path)      # the proxy never reads half a file
        return path

    def der_sha256(self, name):
        with open(self.p(name + ".crt")) as f:
            return hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest()

    def rfc2253(self, name):
        out = openssl(self.h, "x509", "-in", self.p(name + ".crt"), "-noout", "-subject",
                      "-nameopt", "RFC2253")
        return out.strip().split("=", 1)[1]


def pki(h):
    if not getattr(h, "pki", None):
        h.pki = Pki(h)
    return h.pki


def mtls_proxy(h, **tls):
    k = pki(h)
    return h.start_proxy({"tls": dict({"client_ca": k.p("root.crt")}, **tls)})


def request(h, px, who=None, chain=False, headers=None):
    """One Node request to /echo, as `who` (a leaf name) or with no certificate."""
    k = pki(h)
    opts = {"headers": headers or {}}
    if who:
        opts["cert"] = k.p(who + (".chain" if chain else ".crt"))
        opts["key"] = k.p(who + ".key")
    res, _ = node_request(h, px.port, os.path.join(h.certgen(), "ca.crt"), **opts)
    return res


def check_refused(res, what):
    check(not res["ok"], f"{what}: expected the handshake to be refused, got {res}")


def refused(h, px, why, who, alert=None, **kw):
    """A request as `who` is refused, and the proxy logs `why` for it."""
    before = px.proc.stderr_text().count(why)
    res = request(h, px, who, **kw)
    check_refused(res, who)
    if alert is not None:
        check_eq(res.get("ssl_alert"), alert, f"{who}: the alert")
    wait_until(lambda: px.proc.stderr_text().count(why) > before, timeout=5,
               msg=f"{who}: the proxy logs \"{why}\"")


def check_served(res, what):
    check(res.get("ok") and res.get("status") == 200, f"{what}: expected 200, got {res}")


def access_lines(px, n):
    return px.wait_access_log(n, timeout=10)[:n]


def expected_xfcc(k, name):
    return (f'Hash={k.der_sha256(name)};Subject="{k.rfc2253(name)}";'
            "URI=spiffe://acme/ns/a;DNS=alice.example")


def test_optional_with_and_without_certificate(h):
    """optional: a client without a certificate is served and forwarded with
    no identity; one with a verified certificate is forwarded with its
    identity; one whose certificate does not verify is refused."""
    k = pki(h)
    up = h.start_upstream()
    px = mtls_proxy(h, client_verify="optional")
    check_served(request(h, px), "no certificate")
    check_served(request(h, px, "alice"), "alice")
    refused(h, px, "TLS handshake refused", "mallory", alert=48)   # unknown_ca
    recs = up.wait_records(2)
    check_eq(upstream_header(recs[0], "x-forwarded-client-cert"), [], "anonymous: no identity")
    check_eq(upstream_header(recs[1], "x-forwarded-client-cert"), [expected_xfcc(k, "alice")])
    anon, alice = access_lines(px, 2)
    check("client_cert" not in anon, f"anonymous access log line: {anon}")
    check_eq(alice["client_cert"], {
        "subject": k.rfc2253("alice"), "sha256": k.der_sha256("alice"),
        "dns": ["alice.example"], "uri": ["spiffe://acme/ns/a"],
        "email": ["alice@example.org"], "ip": ["10.1.2.3"]}, "access log identity")


def test_required_refuses_no_certificate_and_forwards_identity(h):
    """required (the default with client_ca): no certificate, no handshake;
    a verified one is forwarded as x-forwarded-client-cert."""
    k = pki(h)
    up = h.start_upstream()
    px = mtls_proxy(h)
    res = request(h, px)
    check_refused(res, "no certificate")
    check_eq(res.get("ssl_alert"), 116, "certificate_required alert")
    check_served(request(h, px, "alice"), "alice")
    rec = up.wait_records(1)[0]
    check_eq(upstream_header(rec, "x-forwarded-client-cert"), [expected_xfcc(k, "alice")])


def test_verify_depth(h):
    """The client sends its certificate and at most client_verify_depth CA
    certificates (default 1): carol (one intermediate) passes by default,
    dave (two) does not, until the depth is 2; depth 0 takes only leaves
    issued directly by a client_ca CA."""
    h.start_upstream()
    px = mtls_proxy(h)
    check_served(request(h, px, "carol", chain=True), "default depth, one intermediate")
    refused(h, px, DEPTH, "dave", chain=True)
    px.stop()
    px = mtls_proxy(h, client_verify_depth=2)
    check_served(request(h, px, "dave", chain=True), "depth 2, two intermediates")
    px.stop()
    px = mtls_proxy(h, client_verify_depth=0)
    refused(h, px, DEPTH, "carol", chain=True)
    check_served(request(h, px, "alice"), "depth 0, leaf of the root")


def test_revoked_certificate_refused(h):
    """With a CRL, the revoked bob is refused and alice is served; the log
    names the revocation."""
    k = pki(h)
    k.revoke("root", "bob")
    crl = k.crl("root", "root-bob.crl")
    h.start_upstream()
    px = mtls_proxy(h, client_crl=crl)
    refused(h, px, REVOKED, "bob", alert=42)      # bad_certificate (see docs/config.md)
    check_served(request(h, px, "alice"), "alice, not revoked")
    # carol's issuer, int1, has no CRL here: refused, not waved through
    refused(h, px, "CRL missing", "carol", chain=True)


def test_crl_past_next_update_refuses(h):
    """A CRL that passes its nextUpdate while loaded refuses the clients of
    its CA from then on (fail closed, like nginx)."""
    k = pki(h)
    soon = time.time() + 6
    crl = k.crl("root", "short.crl", "-crl_nextupdate",
                time.strftime("%y%m%d%H%M%SZ", time.gmtime(soon)))
    h.start_upstream()
    px = mtls_proxy(h, client_crl=crl)
    check_served(request(h, px, "alice"), "while the CRL is current")
    time.sleep(max(0.0, soon + 1.5 - time.time()))
    refused(h, px, "CRL date error", "alice")


def test_crl_reloaded_on_sighup(h):
    """A CRL rewritten in place takes effect on SIGHUP: alice is served,
    revoked, the proxy reloads, and her next handshake is refused."""
    k = pki(h)
    crl = k.crl("int1", "int1.crl")                 # a CA with no revocations yet
    h.start_upstream()
    # int1 signs a CRL, so it is in client_ca with the root
    px = h.start_proxy({"tls": {"client_ca": k.p("root+int1.chain"),
                                "client_crl": [k.crl("root", "root.crl"), crl]}})
    check_served(request(h, px, "carol", chain=True), "before the revocation")
    k.revoke("int1", "carol")
    k.crl("int1", "int1.crl")
    check_served(request(h, px, "carol", chain=True), "revoked, not yet reloaded")
    before = px.proc.stderr_text().count("configuration reloaded")
    px.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: px.proc.stderr_text().count("configuration reloaded") > before,
               timeout=10, msg="reloaded")
    refused(h, px, REVOKED, "carol", chain=True)


def test_no_resumption_under_mtls(h):
    """With client_ca no session is resumed (tls.session_tickets
    notwithstanding): each connection proves its certificate against the
    CRLs loaded now, and its forwarded identity is that certificate's."""
    k = pki(h)
    h.start_upstream()
    px = mtls_proxy(h, session_tickets=True)
    ctx = ssl.create_default_context(cafile=os.path.join(h.certgen(), "ca.crt"))
    ctx.load_cert_chain(k.p("alice.crt"), k.p("alice.key"))
    session = None
    for i in range(2):
        with socket.create_connection(("127.0.0.1", px.port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as s:
                r = pxtest.http_request(s, "GET", "/echo")
                check_eq(r.status, 200, f"connection {i + 1}")
                check(not s.session_reused, f"connection {i + 1} was resumed")
                session = s.session
    check(session is not None, "the client had a session to offer")


def check_config_error(h, tls, want):
    cfg = h.base_proxy_config()
    cfg["tls"].update(tls)
    path = h.write_config(cfg)
    r = subprocess.run([pxtest.pqproxy_bin(), "check-config", path], capture_output=True,
                       text=True, timeout=60, stdin=subprocess.DEVNULL)
    check(r.returncode != 0, f"check-config accepted {tls}")
    check_in(want, r.stderr, f"check-config {tls}")


def test_bad_crls_are_config_errors(h):
    """A CRL that does not parse, is not signed by a client_ca CA, is past
    its nextUpdate, or comes without client_ca: check-config says which."""
    k = pki(h)
    root = k.p("root.crt")
    junk = k.p("junk.crl")
    with open(junk, "w") as f:
        f.write("-----BEGIN X509 CRL-----\nbm90IGEgQ1JM\n-----END X509 CRL-----\n")
    check_config_error(h, {"client_ca": root, "client_crl": junk},
                       f"tls.client_crl[0]: {junk}: CRL 1: not a valid PEM CRL")
    other = k.crl("other", "other.crl")
    check_config_error(h, {"client_ca": root, "client_crl": [k.crl("root", "ok.crl"), other]},
                       f"tls.client_crl[1]: {other}: CRL 1: not issued by a CA in tls.client_ca")
    old = k.crl("root", "old.crl", "-crl_lastupdate", "200101000000Z",
                "-crl_nextupdate", "200102000000Z")
    check_config_error(h, {"client_ca": root, "client_crl": old},
                       "past its nextUpdate time: publish a fresh CRL")
    check_config_error(h, {"client_ca": root, "client_crl": root}, "not a PEM CRL")
    check_config_error(h, {"client_crl": old}, "tls.client_crl: needs tls.client_ca")
    check_config_error(h, {"client_ca": root, "client_verify": "maybe"}, "tls.client_verify")
    check_config_error(h, {"client_ca": root, "client_verify_depth": 9},
                       "tls.client_verify_depth")


def test_client_xfcc_never_forwarded(h):
    """A client's own x-forwarded-client-cert is dropped: without mTLS, with
    mTLS and no certificate, and with a certificate (only the proxy's own
    value arrives); even with http.trust_forwarded, which keeps the
    client's other X-Forwarded-* fields."""
    k = pki(h)
    forged = {"X-Forwarded-Client-Cert": 'Hash=00;Subject="CN=admin";URI=spiffe://acme/admin',
              "X-Forwarded-Host": "kept.example"}
    up = h.start_upstream()
    plain = h.start_proxy({"http": {"trust_forwarded": True}})
    check_served(request(h, plain, headers=forged), "no mTLS")
    rec = up.wait_records(1)[0]
    check_eq(upstream_header(rec, "x-forwarded-host"), ["kept.example"], "trust_forwarded holds")
    check_eq(upstream_header(rec, "x-forwarded-client-cert"), [], "no mTLS")
    plain.stop()
    # and on a route that verifies signatures (optional: unsigned requests pass)
    ring = h.path("ring")
    os.makedirs(ring)
    for alg in ("ecdsa", "mldsa"):
        shutil.copy(os.path.join(pxtest.SOURCE_DIR, "tests", "data", "sig", f"client-a.{alg}.pub"),
                    ring)
    px = h.start_proxy({"http": {"trust_forwarded": True},
                        "tls": {"client_ca": k.p("root.crt"), "client_verify": "optional"},
                        "signatures": {"keyring": ring},
                        "routes": [{"prefix": "/", "verify": "optional"}]})
    check_served(request(h, px, headers=forged), "mTLS, no certificate")
    check_served(request(h, px, "alice", headers=forged), "mTLS, alice")
    recs = up.wait_records(3)
    check_eq(upstream_header(recs[1], "x-forwarded-client-cert"), [], "no certificate")
    check_eq(upstream_header(recs[2], "x-forwarded-client-cert"), [expected_xfcc(k, "alice")],
             "alice: the proxy's value only")


if __name__ == "__main__":
    main([test_optional_with_and_without_certificate,
          test_required_refuses_no_certificate_and_forwards_identity, test_verify_depth,
          test_revoked_certificate_refused, test_crl_past_next_update_refuses,
          test_crl_reloaded_on_sighup,
          test_no_resumption_under_mtls, test_bad_crls_are_config_errors,
          test_client_xfcc_never_forwarded])
