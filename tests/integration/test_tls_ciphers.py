#!/usr/bin/env python3
"""tls.ciphers and tls.signature_algorithms against real peers: Debian's
openssl s_client (-ciphersuites, -cipher, -tls1_2, -sigalgs), Node 24
(OpenSSL 3.5: ML-DSA, `ciphers`, `sigalgs`) and Python's ssl for mTLS.
The configured lists are exactly what can be negotiated, in the server's
order; CBC suites are never offered, even with TLS 1.2 enabled."""
import json
import os
import re
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pxtest  # noqa: E402
from pxtest import check, check_eq, check_in, tls_connect, wait_until  # noqa: E402
from pxhelpers import metrics  # noqa: E402
from test_interop_node import node24, node_request  # noqa: E402

CBC_TLS12 = "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-ECDSA-AES128-SHA256:" \
            "ECDHE-ECDSA-AES256-SHA384"


def s_client(proxy, ca, *args):
    """Debian's openssl offering X25519 (the proxies here run pq_policy
    prefer) and P-256 (in TLS 1.2 OpenSSL wants the server key's curve among
    its groups); returns (exit status, output)."""
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{proxy.port}",
                        "-groups", "X25519:P-256", "-CAfile", ca, "-servername", "localhost",
                        "-verify_return_error", *args],
                       input=b"Q\n", capture_output=True, timeout=20)
    return r.returncode, (r.stdout + r.stderr).decode(errors="replace")


def negotiated_cipher(out):
    m = re.search(r"Cipher(?:suite)?(?: is|\s*:) (\S+)", out)
    check(m, f"no cipher in s_client output: {out[:1500]}")
    return m.group(1)


def refusals(proxy, result):
    return sum(v for k, v in metrics(proxy).items()
               if k.startswith("pqproxy_tls_handshakes_total{") and f'result="{result}"' in k)


def ca_of(h):
    return os.path.join(h.certgen(), "ca.crt")


def test_tls12_cbc_never_offered(h):
    """min_version 1.2 with the default list: a TLS 1.2 client offering only
    CBC suites (SHA-1 among them) is refused; one offering ECDHE-GCM is served."""
    proxy = h.start_proxy({"tls": {"min_version": "1.2"}})
    ca = ca_of(h)
    rc, out = s_client(proxy, ca, "-tls1_2", "-cipher", CBC_TLS12)
    check(rc != 0, f"CBC-only TLS 1.2 client must be refused: {out[-600:]}")
    check_in("handshake failure", out)
    for one in CBC_TLS12.split(":"):
        rc, out = s_client(proxy, ca, "-tls1_2", "-cipher", one)
        check(rc != 0, f"{one} must not be negotiated: {out[-400:]}")
    rc, out = s_client(proxy, ca, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA:"
                       "ECDHE-ECDSA-AES256-GCM-SHA384")
    check_eq(rc, 0, f"ECDHE-GCM TLS 1.2 client served: {out[-600:]}")
    check_eq(negotiated_cipher(out), "ECDHE-ECDSA-AES256-GCM-SHA384")
    # Node (OpenSSL 3.5), TLS 1.2 with CBC only
    node24()
    res, _ = node_request(h, proxy.port, ca, minVersion="TLSv1.2", maxVersion="TLSv1.2",
                          ciphers="ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA")
    check(not res["ok"], f"Node with CBC only must be refused: {res}")
    check_eq(res["ssl_alert"], 40, f"handshake_failure: {res}")
    res, _ = node_request(h, proxy.port, ca, minVersion="TLSv1.2", maxVersion="TLSv1.2",
                          ciphers="ECDHE-ECDSA-CHACHA20-POLY1305")
    check(res["ok"], f"Node with ChaCha20 over TLS 1.2 served: {res}")
    check_eq((res["protocol"], res["cipher"]),
             ("TLSv1.2", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"))
    check_eq(proxy.wait_access_log(1)[-1]["cipher"], "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256")
    # counted under its own name, not "other"
    m = metrics(proxy)
    check_eq(sum(v for k, v in m.items() if k.startswith("pqproxy_tls_handshakes_total{") and
                 'cipher="TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"' in k and 'result="ok"' in k),
             1.0, "the TLS 1.2 handshake in the metrics by its suite")


def test_suite_outside_the_list_refused(h):
    proxy = h.start_proxy({"tls": {"ciphers": ["TLS_AES_256_GCM_SHA384"]}})
    ca = ca_of(h)
    for suite in ("TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256"):
        rc, out = s_client(proxy, ca, "-tls1_3", "-ciphersuites", suite)
        check(rc != 0, f"{suite} is not in tls.ciphers: {out[-600:]}")
        check_in("handshake failure", out)
    rc, out = s_client(proxy, ca, "-tls1_3", "-ciphersuites",
                       "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384")
    check_eq(rc, 0, out[-600:])
    check_eq(negotiated_cipher(out), "TLS_AES_256_GCM_SHA384")
    node24()
    res, _ = node_request(h, proxy.port, ca, ciphers="TLS_CHACHA20_POLY1305_SHA256")
    check(not res["ok"], f"Node offering only ChaCha20 must be refused: {res}")
    check_eq(res["ssl_alert"], 40, f"handshake_failure: {res}")


def test_server_order_decides(h):
    ca = ca_of(h)
    client_order = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
    proxy = h.start_proxy({"tls": {"ciphers": ["TLS_CHACHA20_POLY1305_SHA256",
                                               "TLS_AES_256_GCM_SHA384",
                                               "TLS_AES_128_GCM_SHA256"]}})
    rc, out = s_client(proxy, ca, "-tls1_3", "-ciphersuites", client_order)
    check_eq(rc, 0, out[-600:])
    check_eq(negotiated_cipher(out), "TLS_CHACHA20_POLY1305_SHA256", "the server's first")
    node24()
    res, _ = node_request(h, proxy.port, ca, ciphers=client_order)
    check(res["ok"], f"{res}")
    check_eq(res["cipher"], "TLS_CHACHA20_POLY1305_SHA256")
    check_eq(proxy.wait_access_log(1)[-1]["cipher"], "TLS_CHACHA20_POLY1305_SHA256")
    proxy.stop()
    # TLS 1.2: the same rule among the TLS 1.2 suites
    proxy = h.start_proxy({"tls": {"min_version": "1.2", "ciphers": [
        "TLS_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"]}})
    rc, out = s_client(proxy, ca, "-tls1_2", "-cipher",
                       "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384")
    check_eq(rc, 0, out[-600:])
    check_eq(negotiated_cipher(out), "ECDHE-ECDSA-AES256-GCM-SHA384")


def test_reload_applies_the_lists(h):
    """SIGHUP builds new contexts: a changed tls.ciphers applies to the next
    handshake; a refused list keeps the running one."""
    ca = ca_of(h)
    proxy = h.start_proxy({"tls": {"ciphers": ["TLS_AES_256_GCM_SHA384"]}})
    rc, out = s_client(proxy, ca, "-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256")
    check(rc != 0, out[-400:])
    cfg = json.load(open(proxy.config_path))
    cfg["tls"]["ciphers"] = ["TLS_CHACHA20_POLY1305_SHA256"]
    with open(proxy.config_path, "w") as f:
        json.dump(cfg, f)
    proxy.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "configuration reloaded" in proxy.proc.stderr_text(), msg="reloaded")
    rc, out = s_client(proxy, ca, "-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256")
    check_eq(rc, 0, out[-400:])
    check_eq(negotiated_cipher(out), "TLS_CHACHA20_POLY1305_SHA256")
    cfg["tls"]["ciphers"] = ["TLS_AES_128_CBC_SHA256"]
    with open(proxy.config_path, "w") as f:
        json.dump(cfg, f)
    proxy.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload refused" in proxy.proc.stderr_text(), msg="reload refused")
    check_in('tls.ciphers[0]: unknown cipher suite \\"TLS_AES_128_CBC_SHA256\\"',
             proxy.proc.stderr_text(), "the reason, in the JSON error log")
    rc, out = s_client(proxy, ca, "-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256")
    check_eq(rc, 0, f"the running configuration stays: {out[-400:]}")


def test_signature_algorithms_limit_certificate_choice(h):
    """Only listed schemes count when the certificate is chosen: a client
    whose signature_algorithms hold none of them gets handshake_failure
    (result no_common_sigalg), also in TLS 1.2, where ECDSA schemes name no
    curve and wolfSSL would otherwise sign with the client's ECDSA-SHA384."""
    node24()
    certs = h.certgen()
    bundle = os.path.join(certs, "bundle-ca.crt")
    proxy = h.start_proxy({"tls": {"min_version": "1.2",
                                   "signature_algorithms": ["ecdsa_secp256r1_sha256", "mldsa65"],
                                   "certificates": [
        {"cert": os.path.join(certs, "server-mldsa.crt"),
         "key": os.path.join(certs, "server-mldsa.key")},
        {"cert": os.path.join(certs, "server.crt"), "key": os.path.join(certs, "server.key")}]}})
    for sigalgs, key_type, logged in (("mldsa65:ecdsa_secp256r1_sha256", "ml-dsa-65", "ML-DSA-65"),
                                      ("mldsa87:ecdsa_secp256r1_sha256", "ec", "ECDSA-P256")):
        res, _ = node_request(h, proxy.port, bundle, sigalgs=sigalgs)
        check(res["ok"], f"{sigalgs}: {res}")
        check_eq(res["peer_cert"]["key_type"], key_type, f"{sigalgs}: Node's view")
        check_eq(proxy.wait_access_log(1)[-1]["cert_key"], logged, f"{sigalgs}: access log")
    before = refusals(proxy, "no_common_sigalg")
    res, _ = node_request(h, proxy.port, bundle, sigalgs="mldsa87:ecdsa_secp384r1_sha384")
    check(not res["ok"], f"nothing listed in common: {res}")
    check_eq(res["ssl_alert"], 40, f"handshake_failure: {res['message']}")
    rc, out = s_client(proxy, bundle, "-tls1_2", "-sigalgs", "ECDSA+SHA384:ECDSA+SHA512",
                       "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256")
    check(rc != 0 and "handshake failure" in out, f"TLS 1.2, ECDSA-SHA384 only: {out[-600:]}")
    rc, out = s_client(proxy, bundle, "-tls1_2", "-sigalgs", "ECDSA+SHA256",
                       "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256")
    check_eq(rc, 0, f"TLS 1.2, ECDSA-SHA256: served: {out[-600:]}")
    wait_until(lambda: refusals(proxy, "no_common_sigalg") == before + 2, timeout=5,
               msg='both refusals counted as result="no_common_sigalg"')


def check_config(h, cfg):
    path = h.write_config(cfg)
    return path, subprocess.run([pxtest.pqproxy_bin(), "check-config", path], capture_output=True,
                                text=True, timeout=30)


def test_certificate_outside_the_list_is_a_config_error(h):
    """A certificate no listed scheme can sign for is refused at load, naming
    it: with an ML-DSA and an ECDSA certificate and only ECDSA allowed, the
    ML-DSA one is an error rather than a certificate never served."""
    certs = h.certgen()
    cfg = h.base_proxy_config()
    cfg["tls"]["certificates"].insert(0, {"cert": os.path.join(certs, "server-mldsa.crt"),
                                          "key": os.path.join(certs, "server-mldsa.key")})
    cfg["tls"]["signature_algorithms"] = ["ecdsa_secp256r1_sha256", "ecdsa_secp384r1_sha384"]
    path, r = check_config(h, cfg)
    check(r.returncode != 0, f"accepted: {r.stdout}")
    check_in(f"{path}: tls.certificates[0].cert: its ML-DSA-65 key signs with mldsa65, which "
             "tls.signature_algorithms does not allow", r.stderr)
    cfg["tls"]["certificates"].pop(0)
    cfg["tls"]["signature_algorithms"] = ["mldsa65", "ecdsa_secp384r1_sha384"]
    path, r = check_config(h, cfg)
    check(r.returncode != 0, f"accepted: {r.stdout}")
    check_in(f"{path}: tls.certificates[0].cert: its ECDSA-P256 key signs with "
             "ecdsa_secp256r1_sha256, which tls.signature_algorithms does not allow", r.stderr)
    cfg["tls"]["signature_algorithms"] = ["ecdsa_sha1"]
    path, r = check_config(h, cfg)
    check_in("tls.signature_algorithms[0]: signature algorithm \"ecdsa_sha1\" is refused: "
             "SHA-1", r.stderr)
    cfg["tls"].pop("signature_algorithms")
    cfg["tls"]["min_version"] = "1.2"
    cfg["tls"]["ciphers"] = ["TLS_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"]
    path, r = check_config(h, cfg)
    check_in("tls.ciphers[1]: cipher suite \"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA\" is refused",
             r.stderr)


def test_client_certificate_signature(h):
    """mTLS: client.crt (ECDSA P-256 key, signed by the P-384 CA with
    ecdsa-with-SHA384) is accepted only when ecdsa_secp384r1_sha384 is listed."""
    certs = h.certgen()
    ca = os.path.join(certs, "ca.crt")
    crt, key = os.path.join(certs, "client.crt"), os.path.join(certs, "client.key")

    def get(proxy):
        """(response or error, whether a session ticket arrived)"""
        s = tls_connect(proxy.port, ca, certfile=crt, keyfile=key)
        data = b""
        try:
            s.sendall(b"GET /echo HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            while True:
                d = s.recv(65536)
                if not d:
                    break
                data += d
        except OSError as e:
            data = f"error: {e}".encode()
        ticket = bool(s.session and s.session.has_ticket)
        s.close()
        return data, ticket

    proxy = h.start_proxy({"tls": {"client_ca": ca, "signature_algorithms": [
        "ecdsa_secp256r1_sha256", "mldsa65"]}})
    before = refusals(proxy, "no_common_sigalg")
    data, ticket = get(proxy)
    check(not data.startswith(b"HTTP/1.1 200"), f"refused: {data[:200]!r}")
    check(not ticket, "no session ticket: resuming with it would skip the check")
    proxy.proc.wait_line(r"client certificate \(depth 0\) is signed with ecdsa_secp384r1_sha384",
                         stream="stderr")
    wait_until(lambda: refusals(proxy, "no_common_sigalg") == before + 1, timeout=5,
               msg="counted as no_common_sigalg")
    check_eq(proxy.access_log_lines(), [], "no request served")
    proxy.stop()
    proxy = h.start_proxy({"tls": {"client_ca": ca, "signature_algorithms": [
        "ecdsa_secp256r1_sha256", "ecdsa_secp384r1_sha384"]}})
    data, ticket = get(proxy)
    check(data.startswith(b"HTTP/1.1 200"), f"served: {data[:200]!r}")
    # under mTLS no session is resumed at all (docs/config.md "Client certificates")
    check(not ticket, "a served mTLS client gets no session ticket either")


if __name__ == "__main__":
    pxtest.main([test_tls12_cbc_never_offered, test_suite_outside_the_list_refused,
                 test_server_order_decides, test_reload_applies_the_lists,
                 test_signature_algorithms_limit_certificate_choice,
                 test_certificate_outside_the_list_is_a_config_error,
                 test_client_certificate_signature])
