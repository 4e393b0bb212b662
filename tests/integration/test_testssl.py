#!/usr/bin/env python3
"""testssl.sh (Debian's, on the system's OpenSSL; scripts/deps.sh
--test-tools installs it) against a proxy with a `prefer` configuration.
It fails on any finding of severity MEDIUM or above among testssl's
protocol, cipher, forward-secrecy and vulnerability checks, and on anything
offered that the configuration does not allow: a protocol below
tls.min_version, a cipher suite outside tls.ciphers, a group outside
tls.groups; with TLS 1.3 only and with TLS 1.2 too. OpenSSL 3.0 knows no
hybrid group, so testssl sees only the classical ones. The certificate is the test's own (`pqproxy certgen`: no
CRL or OCSP address), so testssl's certificate findings are not judged.
test_checker_refuses shows the checker failing on what it must refuse."""
import json
import os
import subprocess
import sys

os.environ.setdefault("PX_TEST_TIMEOUT", "280")    # a scan may take up to its own 240 s

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pxtest import check, check_eq, main, require_exe  # noqa: E402
from pxhelpers import Env  # noqa: E402

SEVERE = {"MEDIUM", "HIGH", "CRITICAL"}
JUDGED = ("protocols", "ciphers", "pfs", "vulnerabilities", "cipherTests")
PROTOCOLS = {"SSLv2": 0, "SSLv3": 0, "TLS1": 10, "TLS1_1": 11, "TLS1_2": 12, "TLS1_3": 13}
TLS13_CIPHERS = ["TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256"]
TLS12_CIPHERS = ["TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                 "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"]
# OpenSSL's curve names as testssl reports them -> pqproxy's group names
CURVES = {"prime256v1": "secp256r1", "x25519": "X25519", "x448": "X448"}


def problems(scan, tls):
    """What the scan (testssl's --jsonfile-pretty) shows that the tls
    configuration does not allow: a list of strings, empty when all is well."""
    out = []
    result = scan["scanResult"][0]
    for section in JUDGED:
        for f in result.get(section, []):
            if f.get("severity") in SEVERE:
                out.append(f"{section}: {f['id']} ({f['severity']}): {f['finding']}")
    lowest = int(tls.get("min_version", "1.3").replace(".", ""))
    for f in result.get("protocols", []):
        if f["id"] in PROTOCOLS and f["finding"].startswith("offered") and PROTOCOLS[f["id"]] < lowest:
            out.append(f"protocol {f['id']} offered, tls.min_version is {tls.get('min_version', '1.3')}")
    ciphers = set(tls["ciphers"])
    for f in result.get("cipherTests", []):
        name = f["finding"].split()[-1]       # the IANA name ends the line
        if name not in ciphers:
            out.append(f"cipher {name} offered, not in {sorted(ciphers)}")
    groups = {g.lower() for g in tls.get("groups", [])}
    for f in result.get("pfs", []):
        if f["id"] == "PFS_ECDHE_curves":
            for curve in f["finding"].split():
                if CURVES.get(curve.lower(), curve).lower() not in groups:
                    out.append(f"group {curve} offered, not in tls.groups {tls.get('groups')}")
    return out


def scan_proxy(h, tls_overrides):
    """Runs testssl against a prefer proxy; returns (its report, the tls
    section of the proxy's configuration)."""
    testssl = require_exe("testssl")
    e = Env(h, {"tls": dict({"groups": ["X25519MLKEM768", "SecP256r1MLKEM768", "X25519"]},
                            **tls_overrides)})
    n = len(h.proxies)
    out, log = h.path(f"testssl-{n}.json"), h.path(f"testssl-{n}.txt")
    # -p protocols, -E ciphers per protocol, -f forward secrecy (groups),
    # -U vulnerabilities, -S server defaults (session tickets, ...)
    r = subprocess.run([testssl, "--quiet", "--color", "0", "--warnings", "off",
                        "--connect-timeout", "5", "--openssl-timeout", "5",
                        "--add-ca", e.ca, "--jsonfile-pretty", out, "-p", "-E", "-f", "-U", "-S",
                        f"127.0.0.1:{e.px.port}"],
                       capture_output=True, timeout=240, stdin=subprocess.DEVNULL)
    with open(log, "wb") as f:
        f.write(r.stdout + r.stderr)
    h.add_log("testssl output", log)
    check(os.path.exists(out), f"testssl wrote its report (exit {r.returncode})")
    with open(out) as f:
        scan = json.load(f)
    result = scan["scanResult"][0]
    check(result.get("cipherTests") and result.get("vulnerabilities"),
          "testssl reached the proxy and ran its checks")
    check(e.px.proc.alive(), "the proxy is up")
    return scan, e.px.config["tls"]


def test_testssl_tls13(h):
    scan, tls = scan_proxy(h, {"ciphers": TLS13_CIPHERS})
    check_eq(problems(scan, tls), [], "findings")
    offered = [f["id"] for f in scan["scanResult"][0]["protocols"] if f["finding"].startswith("offered")]
    check_eq(offered, ["TLS1_3"], "protocols offered")


def test_testssl_tls12(h):
    scan, tls = scan_proxy(h, {"min_version": "1.2", "ciphers": TLS13_CIPHERS + TLS12_CIPHERS})
    check_eq(problems(scan, tls), [], "findings")
    offered = [f["id"] for f in scan["scanResult"][0]["protocols"] if f["finding"].startswith("offered")]
    check_eq(offered, ["TLS1_2", "TLS1_3"], "protocols offered")


def test_checker_refuses(h):
    """The checker above flags what it must: a severe vulnerability, a
    protocol, cipher or group the configuration does not allow."""
    tls = {"min_version": "1.3", "groups": ["X25519MLKEM768", "X25519"]}

    def scan(**sections):
        return {"scanResult": [sections]}
    clean = scan(protocols=[{"id": "TLS1_3", "severity": "OK", "finding": "offered with final"},
                            {"id": "TLS1_2", "severity": "INFO", "finding": "not offered"}],
                 pfs=[{"id": "PFS_ECDHE_curves", "severity": "OK", "finding": "X25519"}],
                 cipherTests=[{"id": "cipher-tls1_3_x1301", "severity": "INFO",
                               "finding": "TLS 1.3 x1301 TLS_AES_128_GCM_SHA256 ECDH 253 AESGCM 128 "
                                          "TLS_AES_128_GCM_SHA256"}],
                 vulnerabilities=[{"id": "LUCKY13", "severity": "OK", "finding": "not vulnerable"}])
    tls["ciphers"] = TLS13_CIPHERS
    check_eq(problems(clean, tls), [], "a clean scan")
    bad = [
        ("vulnerabilities", {"id": "LUCKY13", "severity": "LOW", "finding": "potentially vulnerable"}, 0),
        ("vulnerabilities", {"id": "SWEET32", "severity": "MEDIUM", "finding": "vulnerable"}, 1),
        ("protocols", {"id": "TLS1_2", "severity": "INFO", "finding": "offered"}, 1),
        ("cipherTests", {"id": "cipher-xc013", "severity": "INFO",
                         "finding": "TLS 1.2 xc013 ECDHE-RSA-AES128-SHA ECDH 253 AES 128 "
                                    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"}, 1),
        ("pfs", {"id": "PFS_ECDHE_curves", "severity": "OK", "finding": "prime256v1 X25519"}, 1),
    ]
    for section, finding, n in bad:
        s = json.loads(json.dumps(clean))
        s["scanResult"][0][section].append(finding)
        check_eq(len(problems(s, tls)), n, f"{section}: {finding}")
    check_eq(problems(clean, dict(tls, groups=["X25519MLKEM768"])),
             ["group X25519 offered, not in tls.groups ['X25519MLKEM768']"], "a group taken out")
    check_eq(len(problems(clean, dict(tls, ciphers=["TLS_AES_256_GCM_SHA384"]))), 1,
             "a cipher suite taken out")


if __name__ == "__main__":
    main([test_checker_refuses, test_testssl_tls13, test_testssl_tls12])
