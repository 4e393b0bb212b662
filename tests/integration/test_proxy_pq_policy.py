#!/usr/bin/env python3
"""pqproxy's pq_policy end to end, with `pqproxy request` (wolfSSL, hybrid
groups) as the client: under "require" a classical-only client is refused
and logged, a hybrid one is served, and a client offering a classical key
share first is moved to the hybrid group by a HelloRetryRequest; under
"prefer" a classical client is served and logged as such."""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pxtest import check, check_eq, main, wait_until  # noqa: E402
from pxhelpers import Env, run_request_cmd  # noqa: E402


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


if __name__ == "__main__":
    main([test_require_refuses_classical, test_require_serves_hybrid, test_require_hrr_to_hybrid,
          test_prefer_allows_classical])
