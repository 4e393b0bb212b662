"""OCSP stapling from a file and certificate expiry, against real peers.

A test CA, its certificates and OCSP responses are made here with the openssl
CLI (`openssl ocsp` as a responder, offline, as an operator would fetch a
response). Responses whose dates openssl cannot produce (expired, expiring
in seconds) are the same response with its dates changed and re-signed by the
CA. The proxy must staple exactly the file's bytes (Node 24 with requestOCSP;
openssl s_client -status in TLS 1.3 and 1.2), staple nothing when no file is
configured or once the response has expired, refuse a bad file at start-up
and in check-config with the key and the reason, and staple a new file after
SIGHUP. A certificate close to expiry is logged at start-up and its notAfter
exported as a metric."""
import calendar
import json
import os
import re
import signal
import subprocess
import time

import pxtest
from pxtest import check, check_eq, check_in, main, pqproxy_bin, require_exe, wait_until
from pxhelpers import metrics
from test_interop_node import node24

NODE_OCSP = os.path.join(pxtest.HERE, "peers", "node_ocsp.mjs")
KEY = "tls.certificates[0].ocsp_response"


def openssl(*args, input=None):
    r = subprocess.run(["openssl", *args], capture_output=True, input=input, timeout=60)
    if r.returncode != 0:
        raise pxtest.TestFailure(f"openssl {' '.join(args)}: {r.stderr.decode(errors='replace')}")
    return r.stdout


class Pki:
    """A CA (ECDSA P-256), a leaf for localhost and another leaf, in h's temp dir."""

    def __init__(self, h, leaf_days=365):
        require_exe("openssl")
        self.h = h
        self.dir = h.path("pki")
        os.makedirs(self.dir, exist_ok=True)
        p = self.p
        for k in ("ca.key", "leaf.key"):
            openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", p(k))
        openssl("req", "-x509", "-new", "-key", p("ca.key"), "-subj", "/CN=pqproxy test CA",
                "-days", "3650", "-out", p("ca.pem"), "-addext", "basicConstraints=critical,CA:true",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        self.issue("leaf.pem", "0x2001", leaf_days)
        self.issue("other.pem", "0x2002", 365)
        with open(p("chain.pem"), "wb") as out:
            for f in ("leaf.pem", "ca.pem"):
                out.write(open(p(f), "rb").read())

    def p(self, name):
        return os.path.join(self.dir, name)

    def issue(self, name, serial, days):
        p = self.p
        openssl("req", "-new", "-key", p("leaf.key"), "-subj", "/CN=localhost", "-out", p("req.csr"))
        with open(p("ext"), "w") as f:
            f.write("subjectAltName=DNS:localhost\nbasicConstraints=CA:false\n")
        openssl("x509", "-req", "-in", p("req.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"),
                "-set_serial", serial, "-days", str(days), "-extfile", p("ext"), "-out", p(name))

    def respond(self, out, cert="leaf.pem", days=7):
        """A "good" response for cert from the CA, as `openssl ocsp -respout` writes it."""
        p = self.p
        end = openssl("x509", "-in", p(cert), "-noout", "-enddate").decode().split("=", 1)[1].strip()
        end = time.strftime("%y%m%d%H%M%SZ", time.strptime(end, "%b %d %H:%M:%S %Y GMT"))
        serial = openssl("x509", "-in", p(cert), "-noout", "-serial").decode().split("=", 1)[1].strip()
        with open(p("index.txt"), "w") as f:
            f.write(f"V\t{end}\t\t{serial}\tunknown\t/CN=localhost\n")
        openssl("ocsp", "-issuer", p("ca.pem"), "-cert", p(cert), "-no_nonce", "-reqout", p("req.der"))
        openssl("ocsp", "-index", p("index.txt"), "-CA", p("ca.pem"), "-rsigner", p("ca.pem"),
                "-rkey", p("ca.key"), "-reqin", p("req.der"), "-ndays", str(days), "-respout", p(out))
        return p(out)

    def redate(self, src, out, this_update, next_update):
        """src with producedAt/thisUpdate and nextUpdate set (Unix times), re-signed by the CA."""
        der = open(src, "rb").read()
        status, resp_bytes = der_seq(der)
        oid, octet = der_seq(der_content(resp_bytes))
        tbs_el, alg, _sig, *certs = der_seq(der_content(octet))
        gt = lambda t: time.strftime("%Y%m%d%H%M%SZ", time.gmtime(t)).encode()
        times = iter([gt(this_update), gt(this_update), gt(next_update)])
        tbs = re.sub(rb"\x18\x0f\d{14}Z", lambda m: b"\x18\x0f" + next(times), tbs_el)
        sig = openssl("dgst", "-sha256", "-sign", self.p("ca.key"), input=tbs)
        basic = tlv(0x30, tbs + alg + tlv(0x03, b"\x00" + sig) + b"".join(certs))
        body = tlv(0x30, status + tlv(0xa0, tlv(0x30, oid + tlv(0x04, basic))))
        with open(self.p(out), "wb") as f:
            f.write(body)
        return self.p(out)


def tlv(tag, content):
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(b)]) + b + content


def der_element(buf, i):
    """(element bytes, content start, end) of the element at buf[i]."""
    n, j = buf[i + 1], i + 2
    if n & 0x80:
        k = n & 0x7f
        n, j = int.from_bytes(buf[j:j + k], "big"), j + k
    return buf[i:j + n], j, j + n


def der_content(el):
    _, start, end = der_element(el, 0)
    return el[start:end]


def der_seq(buf):
    """The elements of a constructed element's content, or of buf's first element's content."""
    content = der_content(buf) if buf[0] in (0x30, 0xa0, 0x04) else buf
    out, i = [], 0
    while i < len(content):
        el, _, end = der_element(content, i)
        out.append(el)
        i = end
    return out


def proxy_cfg(pki, ocsp=None, cert="chain.pem", extra_tls=None):
    entry = {"cert": pki.p(cert), "key": pki.p("leaf.key")}
    if ocsp:
        entry["ocsp_response"] = ocsp
    tls = {"certificates": [entry], "min_version": "1.2"}
    tls.update(extra_tls or {})
    return {"tls": tls}


def node_staple(pki, port, version="TLSv1.3"):
    """The response Node 24 received (bytes), or None when nothing was stapled."""
    arg = {"port": port, "ca": pki.p("ca.pem"), "version": version}
    r = subprocess.run([node24(), NODE_OCSP, json.dumps(arg)], capture_output=True, text=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    res = json.loads(r.stdout.strip().splitlines()[-1]) if r.stdout.strip() else {}
    check(res.get("ok"), f"node handshake failed: {r.stdout} {r.stderr}")
    check_eq(res["protocol"], version)
    return bytes.fromhex(res["ocsp"]) if res["ocsp"] else None


def s_client_status(pki, port, version):
    """openssl s_client -status: the printed OCSP response text, or None if none was sent."""
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername",
                        "localhost", "-CAfile", pki.p("ca.pem"), "-status", version],
                       capture_output=True, text=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    out = r.stdout
    check_in("Verify return code: 0 (ok)", out, f"s_client {version}: {r.stderr}")
    if "OCSP response: no response sent" in out:
        return None
    m = re.search(r"OCSP Response Data:\n(.*?)\n(?:-----BEGIN CERTIFICATE|Certificate:|---)", out, re.S)
    check(m, f"s_client {version} printed no OCSP response: {out[:2000]}")
    return m.group(1)


def response_text(path):
    """What s_client prints for the response in path (the same OpenSSL printer)."""
    return openssl("ocsp", "-respin", path, "-resp_text", "-noverify").decode()


def same_response(printed, path):
    """The stapled response as s_client printed it is the one in path: the
    fields that differ between two responses (times, serial, signature)."""
    want = response_text(path)
    for field in ("Produced At", "This Update", "Next Update", "Serial Number"):
        m = re.search(rf"{field}: (.+)", want)
        check(m, f"{field} missing from openssl's own print of {path}")
        check_in(f"{field}: {m.group(1)}", printed, f"stapled response's {field}")


def next_update(path):
    m = re.search(r"Next Update: (.+)", response_text(path))
    return calendar.timegm(time.strptime(m.group(1).strip(), "%b %d %H:%M:%S %Y GMT"))


def test_staples_the_file(h):
    pki = Pki(h)
    resp = pki.respond("good.der")
    px = h.start_proxy(proxy_cfg(pki, resp))
    port = px.port
    want = open(resp, "rb").read()
    check_eq(node_staple(pki, port), want, "TLS 1.3 staple (Node) = the file's bytes")
    check_eq(node_staple(pki, port, "TLSv1.2"), want, "TLS 1.2 staple (Node) = the file's bytes")
    for v in ("-tls1_3", "-tls1_2"):
        printed = s_client_status(pki, port, v)
        check(printed is not None, f"s_client {v}: nothing stapled")
        check_in("OCSP Response Status: successful", printed)
        check_in("Cert Status: good", printed)
        same_response(printed, resp)
    m = metrics(px)
    check_eq(m.get('pqproxy_tls_ocsp_response_next_update_timestamp_seconds{cert="chain.pem",'
                   'key="ECDSA-P256"}'), float(next_update(resp)), "nextUpdate gauge")
    ok = sum(v for k, v in m.items() if k.startswith("pqproxy_tls_handshakes_total{")
             and 'result="ok"' in k)
    check(ok >= 1, "handshakes counted")
    check_eq(m.get('pqproxy_tls_certificates_served_total{key="ECDSA-P256"}'), ok,
             "every completed handshake served the ECDSA-P256 certificate")


def test_nothing_stapled_without_a_file(h):
    pki = Pki(h)
    px = h.start_proxy(proxy_cfg(pki))
    check_eq(node_staple(pki, px.port), None, "TLS 1.3: nothing stapled")
    check_eq(s_client_status(pki, px.port, "-tls1_2"), None, "TLS 1.2: nothing stapled")
    names = list(metrics(px))
    check(not [n for n in names if n.startswith("pqproxy_tls_ocsp_response_next_update")],
          "no nextUpdate series without a response")
    check_in('pqproxy_tls_certificate_expiry_timestamp_seconds{cert="chain.pem",key="ECDSA-P256"}',
             names, "the certificate is still reported")


def bad_cases(pki):
    good = pki.respond("good.der")
    now = int(time.time())
    garbage = pki.p("garbage.der")
    with open(garbage, "wb") as f:
        f.write(os.urandom(300))
    trylater = pki.p("trylater.der")
    with open(trylater, "wb") as f:
        f.write(b"\x30\x03\x0a\x01\x03")
    return [
        (pki.respond("other.der", cert="other.pem"),
         "for another certificate: it answers for serial 20:02, the certificate's serial is 20:01"),
        (pki.redate(good, "expired.der", now - 2 * 86400, now - 86400), "expired: its nextUpdate"),
        (trylater, "response status is tryLater (3), not successful"),
        (garbage, f"{garbage} is not a DER OCSP response"),
        (pki.p("ca.pem"), f"{pki.p('ca.pem')} is PEM; a DER OCSP response is expected"),
    ]


def test_bad_files_refused(h):
    pki = Pki(h)
    base = h.base_proxy_config()
    for path, why in bad_cases(pki):
        cfg = pxtest.deep_merge(base, proxy_cfg(pki, path))
        cfg_path = h.write_config(cfg)
        want = f"{KEY}: {why}"
        for cmd in (["check-config", cfg_path], ["run", "--config", cfg_path]):
            r = subprocess.run([pqproxy_bin(), *cmd], capture_output=True, text=True, timeout=60,
                               stdin=subprocess.DEVNULL)
            check_eq(r.returncode, 1, f"{cmd[0]} with {os.path.basename(path)}: {r.stderr}")
            check_in(want, r.stderr, f"{cmd[0]} with {os.path.basename(path)}")
    # the issuer must be in the chain file, or named apart, to check the signature
    resp = pki.respond("good.der")
    cfg = pxtest.deep_merge(base, proxy_cfg(pki, resp, cert="leaf.pem"))
    r = subprocess.run([pqproxy_bin(), "check-config", h.write_config(cfg)], capture_output=True,
                       text=True, timeout=60, stdin=subprocess.DEVNULL)
    check_eq(r.returncode, 1, r.stderr)
    check_in(f"{KEY}: cannot check its signature: the issuer of the certificate "
             "(/CN=pqproxy test CA) is neither in the certificate's chain file nor in ocsp_issuer",
             r.stderr)
    cfg["tls"]["certificates"][0]["ocsp_issuer"] = pki.p("ca.pem")
    r = subprocess.run([pqproxy_bin(), "check-config", h.write_config(cfg)], capture_output=True,
                       text=True, timeout=60, stdin=subprocess.DEVNULL)
    check_eq(r.returncode, 0, f"with ocsp_issuer: {r.stderr}")


def reload(px, n):
    px.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: len(re.findall(r"configuration reloaded|reload refused",
                                      px.proc.stderr_text())) >= n, msg=f"reload {n}")


def test_reload_staples_the_new_file(h):
    pki = Pki(h)
    live = pki.p("live.der")
    first = open(pki.respond("first.der", days=3), "rb").read()
    second = open(pki.respond("second.der", days=5), "rb").read()
    check(first != second, "two distinct responses")
    with open(live, "wb") as f:
        f.write(first)
    px = h.start_proxy(proxy_cfg(pki, live))
    check_eq(node_staple(pki, px.port), first)
    with open(live, "wb") as f:
        f.write(second)
    reload(px, 1)
    check_in("configuration reloaded", px.proc.stderr_text())
    check_eq(node_staple(pki, px.port), second, "after SIGHUP the new file is stapled")
    # a bad file at reload: the reload applies, nothing is stapled, a warning says why
    with open(live, "wb") as f:
        f.write(b"\x30\x03\x0a\x01\x03")
    reload(px, 2)
    check_in("configuration reloaded", px.proc.stderr_text().split("reloaded")[-2] + "reloaded")
    check_in(f"reload: {KEY}: response status is tryLater (3)", px.proc.stderr_text())
    check_eq(node_staple(pki, px.port), None, "a bad file at reload: nothing stapled")
    check_eq(metrics(px).get('pqproxy_tls_ocsp_response_next_update_timestamp_seconds{'
                             'cert="chain.pem",key="ECDSA-P256"}'), 0.0,
             "the nextUpdate gauge drops to 0 so the stale-response alert fires")


def test_expired_while_running_not_stapled(h):
    pki = Pki(h)
    good = pki.respond("good.der")
    # long enough for a start-up on a loaded machine, short enough to wait for
    now = int(time.time())
    resp = pki.redate(good, "short.der", now - 60, now + 15)
    px = h.start_proxy(proxy_cfg(pki, resp))
    check(time.time() < now + 14, "the proxy started before the response expires")
    check_eq(node_staple(pki, px.port), open(resp, "rb").read(), "stapled while current")
    wait_until(lambda: time.time() > now + 16, timeout=30, msg="the response's nextUpdate")
    check_eq(node_staple(pki, px.port), None, "not stapled once expired")
    check_eq(s_client_status(pki, px.port, "-tls1_2"), None, "TLS 1.2: not stapled once expired")
    px.proc.wait_line(rf'"level":"warn".*{re.escape(KEY)}: the OCSP response in .* expired at',
                      stream="stderr")


def test_expiry_warning_and_metric(h):
    pki = Pki(h, leaf_days=10)
    px = h.start_proxy(proxy_cfg(pki))
    end = openssl("x509", "-in", pki.p("leaf.pem"), "-noout", "-enddate").decode().split("=", 1)[1]
    not_after = calendar.timegm(time.strptime(end.strip(), "%b %d %H:%M:%S %Y GMT"))
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(not_after))
    px.proc.wait_line(r'"level":"warn".*tls\.certificates\[0\]\.cert: ' + re.escape(pki.p("chain.pem")) +
                      r": certificate 1 \(/CN=localhost\) expires at " + re.escape(iso) +
                      r", in (9|10) days", stream="stderr")
    check("pqproxy test CA" not in px.proc.stderr_text(), "the CA (10 years) is not warned about")
    m = metrics(px)
    check_eq(m.get('pqproxy_tls_certificate_expiry_timestamp_seconds{cert="chain.pem",'
                   'key="ECDSA-P256"}'), float(not_after), "expiry gauge = openssl's notAfter")


def test_expiry_warning_window_configurable(h):
    pki = Pki(h, leaf_days=10)
    px = h.start_proxy(proxy_cfg(pki, extra_tls={"cert_expiry_warning_days": 7}))
    m = metrics(px)      # the proxy is up and has logged what it logs at start-up
    check('pqproxy_tls_certificate_expiry_timestamp_seconds{cert="chain.pem",key="ECDSA-P256"}' in m)
    check("expires at" not in px.proc.stderr_text(), "10 days left, 7-day window: no warning")


if __name__ == "__main__":
    main([test_staples_the_file, test_nothing_stapled_without_a_file, test_bad_files_refused,
          test_reload_staples_the_new_file, test_expired_while_running_not_stapled,
          test_expiry_warning_and_metric, test_expiry_warning_window_configurable])
