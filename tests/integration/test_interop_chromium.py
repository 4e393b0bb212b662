#!/usr/bin/env python3
"""Interop with headless Chromium (BoringSSL), an independent hybrid TLS client.

Debian's chromium (installed by scripts/deps.sh --peers for `make test`)
fetches a page through pqproxy with --dump-dom. The dev CA is not in its
trust store, so the server key is pinned with --ignore-certificate-errors-
spki-list (only that key is accepted, unlike --ignore-certificate-errors).
Recent Chrome offers X25519MLKEM768 by default; pqproxy's access log is the
authority for what was negotiated.
"""
import base64
import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import ssl
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pxtest  # noqa: E402
from pxtest import TestFailure, check, check_eq, check_in, skip  # noqa: E402

CHROMIUM_TIMEOUT = 90   # seconds for one --dump-dom run


def chromium():
    for path in ("/usr/bin/chromium", shutil.which("chromium") or ""):
        if path and os.access(path, os.X_OK):
            return path
    skip("chromium not installed (scripts/deps.sh --peers installs Debian's chromium; "
         "it may have failed, see the make test output)")


def _der_tlv(der, i):
    """(tag, start of contents, end of contents) of the DER element at i."""
    tag, n = der[i], der[i + 1]
    i += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(der[i:i + k], "big")
        i += k
    return tag, i, i + n


def spki_sha256_b64(cert_pem_path):
    """base64(SHA-256(SubjectPublicKeyInfo)) of a PEM certificate: Chrome's SPKI pin."""
    with open(cert_pem_path) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    _, tbs_start, _ = _der_tlv(der, 0)          # Certificate
    _, i, _ = _der_tlv(der, tbs_start)          # TBSCertificate contents start at i
    if der[i] == 0xA0:                          # [0] version
        i = _der_tlv(der, i)[2]
    for _ in range(5):                          # serial, signature, issuer, validity, subject
        i = _der_tlv(der, i)[2]
    tag, _, end = _der_tlv(der, i)
    check_eq(tag, 0x30, "SubjectPublicKeyInfo is a SEQUENCE")
    return base64.b64encode(hashlib.sha256(der[i:end]).digest()).decode()


def dump_dom(h, url, spki):
    """chromium --headless --dump-dom URL in its own process group, bounded in
    time; returns the serialized DOM (its stdout)."""
    exe = chromium()
    home = h.path("chromium-home")
    os.makedirs(home, exist_ok=True)
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-extensions", "--disable-dev-shm-usage",
           f"--user-data-dir={h.path('chromium-profile')}",
           f"--ignore-certificate-errors-spki-list={spki}", "--dump-dom", url]
    # HOME/XDG under the test's temp dir: nothing is written to the user's home.
    env = {"HOME": home, "XDG_CONFIG_HOME": home, "XDG_CACHE_HOME": home}
    p = h.start("chromium", cmd, env=env)
    try:
        rc = p.wait(CHROMIUM_TIMEOUT)
    except subprocess.TimeoutExpired:
        p.stop(timeout=5)   # the whole group: browser, zygote, renderers
        raise TestFailure(f"chromium did not finish within {CHROMIUM_TIMEOUT}s")
    p.stop(timeout=5)       # any helper left behind in its group
    # helpers (zygote, crashpad) exit on their own time after the group's SIGTERM
    pxtest.wait_until(lambda: not pxtest.group_members(p.pid), timeout=10,
                      msg="no chromium process left running")
    check_eq(rc, 0, f"chromium exit status (stderr: {p.stderr_text()[-1500:]})")
    return p.stdout_text()


def test_chromium_negotiates_hybrid(h):
    chromium()
    proxy = h.start_proxy({"tls": {"pq_policy": "require"}})
    spki = spki_sha256_b64(os.path.join(h.certgen(), "server.crt"))
    dom = dump_dom(h, f"https://localhost:{proxy.port}/echo?from=chromium", spki)
    m = re.search(r"<pre[^>]*>(.*?)</pre>", dom, re.S)
    check(m, f"chromium rendered the JSON response in a <pre>: {dom[:2000]!r}")
    echo = json.loads(html.unescape(m.group(1)))
    check_eq((echo["method"], echo["target"]), ("GET", "/echo?from=chromium"), "upstream request")
    headers = {k.lower(): v for k, v in echo["headers"]}
    check_in("HeadlessChrome", headers.get("user-agent", ""), "chromium's User-Agent")
    check_eq(headers.get("x-forwarded-proto"), "https", "through the proxy")
    lines = [ln for ln in proxy.wait_access_log(1) if ln["path"] == "/echo?from=chromium"]
    check_eq(len(lines), 1, f"the page request in the access log: {proxy.access_log_lines()}")
    check_eq((lines[0]["group"], lines[0]["tls_version"], lines[0]["status"], lines[0]["sni"]),
             ("X25519MLKEM768", "TLSv1.3", 200, "localhost"), "access log")
    # Every request chromium made (the page, perhaps /favicon.ico) was hybrid,
    # and over HTTP/2: the default tls.alpn offers h2, which Chrome prefers.
    check_eq({ln["group"] for ln in proxy.access_log_lines()}, {"X25519MLKEM768"}, "all groups")
    check_eq({ln["protocol"] for ln in proxy.access_log_lines()}, {"h2"}, "chromium spoke HTTP/2")


if __name__ == "__main__":
    pxtest.main([test_chromium_negotiates_hybrid])
