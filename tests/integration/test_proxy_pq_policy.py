#!/usr/bin/env python3
"""pqproxy's pq_policy end to end, with `pqproxy request` (wolfSSL, hybrid
groups) as the client: under "require" a classical-only client is refused
and logged, a hybrid one is served, and a client offering a classical key
share first is moved to the hybrid group by a HelloRetryRequest; under
"prefer" a classical client is served and logged as such."""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pxtest import check, check_eq, main, wait_until  # noqa: E402
from pxhelpers import Env, metrics, run_request_cmd  # noqa: E402


def request(e, groups, path="/echo", extra=()):
    return run_request_cmd(["--cacert", e.ca, "-v", "--groups", groups, "--timeout", "10000",
                            *extra, f"https://localhost:{e.px.port}{path}"])


def negotiated(err):
    m = re.search(r"^\* TLS (\S+), key exchange (\S+) \((hybrid post-quantum|classical)\)", err, re.M)
    check(m, f"no TLS line from pqproxy request: {err!r}")
    return m.group(1), m.group(2), m.group(3)


def require_env(h):
    return Env(h, {"tls": {"pq_policy": "require"}})


def test_require_refuses_classical(h):
    e = require_env(h)
    rc, out, err = request(e, "X25519")
    check(rc != 0, f"a classical-only client must fail (rc {rc}, out {out!r})")
    check("handshake" in err.lower(), f"the failure is the handshake: {err!r}")
    check_eq(e.records(), [], "nothing reached the upstream")
    # The proxy says why, naming the policy.
    def refusal():
        text = e.px.proc.stderr_text()
        return [ln for ln in text.splitlines() if "refused" in ln and "handshake" in ln.lower()]
    lines = wait_until(refusal, timeout=5, msg="the refusal in the proxy's log")
    check(any("post-quantum" in ln or "hybrid" in ln for ln in lines),
          f"the log names the missing hybrid group: {lines}")
    check_eq(e.px.access_log_lines(), [], "no request, so no access log line")


def test_require_serves_hybrid(h):
    e = require_env(h)
    rc, out, err = request(e, "X25519MLKEM768", "/echo?pq=1")
    check_eq(rc, 0, f"hybrid client served: {err}")
    check_eq(negotiated(err), ("TLSv1.3", "X25519MLKEM768", "hybrid post-quantum"))
    check('"target": "/echo?pq=1"' in out, out)
    line = e.access(1)[0]
    check_eq((line["group"], line["tls_version"], line["status"]), ("X25519MLKEM768", "TLSv1.3", 200))
    for g in ("SecP256r1MLKEM768", "SecP384r1MLKEM1024"):
        rc, out, err = request(e, g)
        check_eq(rc, 0, f"{g}: {err}")
        check_eq(negotiated(err)[1], g)
    check_eq([x["group"] for x in e.access(3)], ["X25519MLKEM768", "SecP256r1MLKEM768",
                                                 "SecP384r1MLKEM1024"])


def test_require_hrr_to_hybrid(h):
    e = require_env(h)
    # Classical key share first, hybrid also offered: the server asks for the
    # hybrid share (HelloRetryRequest) rather than settle for X25519.
    rc, out, err = request(e, "X25519,X25519MLKEM768")
    check_eq(rc, 0, f"served after HRR: {err}")
    check_eq(negotiated(err)[1], "X25519MLKEM768")
    line = e.access(1)[0]
    check_eq((line["group"], line["status"]), ("X25519MLKEM768", 200))


def test_prefer_allows_classical(h):
    e = Env(h)      # the test default: prefer
    rc, out, err = request(e, "X25519")
    check_eq(rc, 0, f"classical client served under prefer: {err}")
    check_eq(negotiated(err), ("TLSv1.3", "X25519", "classical"))
    line = e.access(1)[0]
    check_eq((line["group"], line["status"]), ("X25519", 200))
    # A hybrid-capable client still gets the hybrid group.
    rc, out, err = request(e, "X25519MLKEM768,X25519")
    check_eq((rc, negotiated(err)[1]), (0, "X25519MLKEM768"))
    # ...even when it puts the classical share first: the server's order wins.
    rc, out, err = request(e, "X25519,X25519MLKEM768")
    check_eq(rc, 0, err)
    check_eq(negotiated(err)[1], "X25519MLKEM768", "server preference: hybrid first")
    check_eq([x["group"] for x in e.access(3)], ["X25519", "X25519MLKEM768", "X25519MLKEM768"])


def s_client(e, group):
    """Debian's openssl (3.0, classical groups only) offering one group."""
    return subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{e.px.port}", "-tls1_3",
                           "-groups", group, "-CAfile", e.ca, "-servername", "localhost", "-brief"],
                          input=b"", capture_output=True, timeout=15)


def test_groups_are_an_allow_list(h):
    """Under prefer, a client whose groups are all outside tls.groups is
    refused with handshake_failure: never served on wolfSSL's defaults."""
    e = Env(h, {"tls": {"groups": ["X25519MLKEM768", "SecP256r1MLKEM768", "SecP384r1MLKEM1024",
                                   "X25519"]}})
    excluded = ("P-256", "P-384", "P-521", "ffdhe2048", "ffdhe3072", "X448")
    for g in excluded:
        r = s_client(e, g)
        out = (r.stdout + r.stderr).decode(errors="replace")
        check(r.returncode != 0, f"{g}: a group outside tls.groups must not be served: {out[-400:]}")
        check("handshake failure" in out, f"{g}: handshake_failure alert: {out[-400:]}")
    check_eq(e.px.access_log_lines(), [], "no request served")
    wait_until(lambda: e.px.proc.stderr_text().count("client offers no group of tls.groups")
               >= len(excluded), timeout=5, msg="each refusal logged with its reason")
    # The list is the allow-list in both directions: listed, P-384 is served.
    e2 = Env(h, {"tls": {"groups": ["X25519MLKEM768", "P-384"]}})
    r = s_client(e2, "P-384")
    check_eq(r.returncode, 0, f"P-384 listed: served: {r.stderr[-300:]}")
    check("secp384r1" in r.stderr.decode().lower() or "p-384" in r.stderr.decode().lower(),
          f"openssl reports the group: {r.stderr!r}")


def test_hybrid_share_taken_without_hrr(h):
    """A key share for any hybrid group in tls.groups is taken as it is: no
    HelloRetryRequest to move it to the first-listed hybrid."""
    e = Env(h, {"tls": {"pq_policy": "require"}})
    rc, out, err = request(e, "SecP256r1MLKEM768,X25519MLKEM768")
    check_eq(rc, 0, err)
    check_eq(negotiated(err)[1], "SecP256r1MLKEM768", "the share the client sent")
    m = metrics(e.px)
    check_eq(m['pqproxy_tls_hello_retry_requests_total{reason="to_hybrid"}'] +
             m['pqproxy_tls_hello_retry_requests_total{reason="no_usable_share"}'], 0.0,
             "no round trip spent")
    # A classical share still costs a retry to reach a hybrid group: the
    # first of tls.groups the client supports.
    rc, out, err = request(e, "X25519,SecP256r1MLKEM768")
    check_eq((rc, negotiated(err)[1]), (0, "SecP256r1MLKEM768"), err)
    check_eq(metrics(e.px)['pqproxy_tls_hello_retry_requests_total{reason="to_hybrid"}'], 1.0,
             "one HRR, moving the client to a hybrid group")


if __name__ == "__main__":
    main([test_require_refuses_classical, test_require_serves_hybrid, test_require_hrr_to_hybrid,
          test_prefer_allows_classical, test_groups_are_an_allow_list,
          test_hybrid_share_taken_without_hrr])
