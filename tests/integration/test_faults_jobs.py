#!/usr/bin/env python3
"""Fault injection around work off the request path: signature
verification and response signing jobs on the thread pool (one crypto
thread, so jobs queue), drain (SIGTERM) and reload (SIGHUP). After every
case the proxy must be alive, serve a normal request and return to its
baseline fds and heap (pxfaults.py); a draining proxy must instead exit 0
within drain_ms with no sanitizer report. test_faults.py and
test_faults_upstream.py cover the exchange's other phases."""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pxtest  # noqa: E402
from pxtest import (build_request, check, check_eq, main, read_response, send_raw,  # noqa: E402
                    tls_connect, wait_until)
from pxfaults import (BODY_LEN, HEAD, TIMEOUTS, WORKERS, FaultEnv, body_start,  # noqa: E402
                      client_hello, connect_small_rcvbuf, fin, outcome, read_rest, read_some, req,
                      reset_around_response, rst, run_cases)
from pxhelpers import check_error  # noqa: E402


# --- signature jobs on the thread pool ----------------------------------------------------------

def pqproxy(*args):
    r = subprocess.run([pxtest.pqproxy_bin(), *args], capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    check_eq(r.returncode, 0, f"pqproxy {args[0]}: {r.stderr}")
    return r.stdout


class Signer:
    """A client key in the proxy's keyring and the proxy's response key
    (docs/signatures.md); sign() gives the headers of one signed request."""

    def __init__(self, h):
        self.h = h
        self.keys = h.path("keys")
        os.makedirs(os.path.join(self.keys, "ring"))
        for name in ("client", "proxy"):
            pqproxy("keygen", "--alg", "hybrid", "--out", os.path.join(self.keys, name))
        for alg in ("ecdsa", "mldsa"):
            os.link(os.path.join(self.keys, f"client.{alg}.pub"),
                    os.path.join(self.keys, "ring", f"client-a.{alg}.pub"))
        self.n = 0

    def config(self):
        return {"signatures": {"keyring": os.path.join(self.keys, "ring"),
                               "response_key": os.path.join(self.keys, "proxy"),
                               "crypto_threads": 1},
                "routes": [{"prefix": "/status/", "verify": "off"},
                           {"prefix": "/", "verify": "required", "sign_responses": True}]}

    def request(self, method, target, body=b""):
        """Signed request bytes (each with its own nonce)."""
        self.n += 1
        bf = self.h.path(f"body-{self.n}.bin")
        with open(bf, "wb") as f:
            f.write(body)
        path, _, query = target.partition("?")
        args = ["sign", "--key", os.path.join(self.keys, "client"), "--keyid", "client-a",
                "--method", method, "--authority", "localhost", "--path", path, "--body", bf]
        if query:
            args += ["--query", query]
        hdrs = [tuple(ln.split(": ", 1)) for ln in pqproxy(*args).strip().splitlines()]
        return build_request(method, target, headers=hdrs, body=body if method == "POST" else None)


def signed_warm(signer):
    def warm(env):
        for target in ("/echo?warm=1", "/sse?n=2&interval_ms=1&warm=1"):
            s = env.connect()
            send_raw(s, signer.request("GET", target))
            check_eq(read_response(s).status, 200, f"signed warm-up {target}")
            s.close()
    return warm


def sig_case(signer, fault, k=6):
    """k signed requests at once (one crypto thread, so jobs queue), then
    the fault on all of them at the moment named."""
    def run(env):
        m = env.marker("sig-" + fault.replace(" ", "-"))
        if fault.startswith("verify job"):
            reqs = [signer.request("POST", f"/echo?m={m}&i={i}", b'{"instances": [1.0]}')
                    for i in range(k)]
        elif fault.startswith("response signing"):
            # The model answers at 0.3 s, then the response is signed on the pool.
            reqs = [[signer.request("GET", f"/delay/300?m={m}r{r}&i={i}") for i in range(13)]
                    for r in range(3)]
            reset_around_response(env, lambda r, i: reqs[r][i], m, 0.3)
            return
        elif fault.startswith("signed stream"):
            reqs = [signer.request("GET", f"/sse?n=50&interval_ms=20&m={m}&i={i}") for i in range(k)]
        else:   # upstream cuts a body that must be signed whole
            how = fault.split()[-1]
            reqs = [signer.request("GET", f"/bytes/30000?cut={how}&m={m}&i={i}") for i in range(k)]
        socks = [env.connect() for _ in reqs]
        for s, rq in zip(socks, reqs):
            send_raw(s, rq)
        if fault == "verify job x client RST":
            for s in socks:
                rst(s)
        elif fault == "verify job x client FIN":
            for s in socks:
                fin(s)
            for s in socks:
                kind, r = outcome(s)
                if kind == "response":
                    check_eq(r.status, 200, "signed request answered after the FIN")
                s.close()
        elif fault == "signed stream x client RST":
            for s in socks:
                read_some(s, n_events=2)
            for s in socks:
                rst(s)
        else:
            for s in socks:
                kind, r = outcome(s)
                if kind == "response":
                    body = check_error(r, r.status, r.json().get("error"), fault)
                    check(r.status in (502, 504), f"a body cut before it was signed: {body}")
                else:
                    check_eq(kind, "closed", f"{fault}: nothing partial, unsigned")
                s.close()
    return run


SIG_FAULTS = ("verify job x client RST", "verify job x client FIN",
              "response signing job x client RST", "signed stream x client RST",
              "body to sign x upstream reset", "body to sign x upstream fin",
              "body to sign x upstream stall")


def test_fault_signature_jobs(h):
    signer = Signer(h)
    env = FaultEnv(h, signer.config(), serve=("/status/200", 200), warm=signed_warm(signer),
                   warm_paths=False)
    run_cases(env, "signatures", [(f, sig_case(signer, f)) for f in SIG_FAULTS])


# --- drain (SIGTERM) -------------------------------------------------------------------------------

def drain_case(h, fault):
    """A proxy with a connection in the named state gets SIGTERM, then the
    fault: it must exit 0 within drain_ms (3 s) with no sanitizer report."""
    px = h.start_proxy({"workers": WORKERS, "timeouts": dict(TIMEOUTS)}, upstream=h.upstream,
                       name="pqproxy-drain")
    ca = os.path.join(h.certgen(), "ca.crt")
    m = "drain-" + fault.replace(" ", "-")
    s = None
    if fault == "handshake x client RST":
        s = client_hello(px.port, ca)
    elif fault == "mid-head x client FIN":
        s = tls_connect(px.port, ca)
        send_raw(s, HEAD % m.encode())
    elif fault == "mid-body x client RST":
        s = tls_connect(px.port, ca)
        send_raw(s, body_start(m, "/upload-sha", False, BODY_LEN))
    elif fault == "waiting for upstream x client RST":
        s = tls_connect(px.port, ca)
        send_raw(s, req(f"/delay/2000?m={m}"))
    elif fault == "response body x client stops reading":
        s = connect_small_rcvbuf(px.port, ca)
        send_raw(s, req(f"/bytes/{32 << 20}?m={m}"))
        read_some(s, n_bytes=1)
    elif fault == "streaming x upstream reset":
        s = tls_connect(px.port, ca)
        send_raw(s, req(f"/sse?n=4&interval_ms=300&cut=reset&m={m}"))
        read_some(s, n_events=1)
    elif fault == "waiting for upstream x upstream stall":
        s = tls_connect(px.port, ca)
        send_raw(s, req(f"/fault/stall?m={m}"))
    if "handshake" not in fault and "mid-head" not in fault and "mid-body" not in fault:
        wait_until(lambda: h.upstream.records() and any(m in r["target"] for r in h.upstream.records()),
                   timeout=5, msg="the request upstream")
    time.sleep(0.1)
    t0 = time.monotonic()
    px.proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    if fault.endswith("client RST"):
        rst(s)
    elif fault.endswith("client FIN"):
        fin(s)
    try:
        rc = px.proc.wait(8)
    except subprocess.TimeoutExpired:
        rc = None
    took = time.monotonic() - t0
    if s is not None and not fault.endswith("RST"):
        s.close()
    bad = px.sanitizer_errors()
    px.checked = True           # judged here, by case
    tail = [ln for ln in px.proc.stderr_text().splitlines() if not ln.startswith('{"time"')][-3:]
    check(not bad, f"sanitizer report: {' | '.join(bad[:3])}")
    check_eq(rc, 0, f"exit code after SIGTERM ({' | '.join(tail)})")
    check(took < 3 + 2, f"exit {took:.2f}s after SIGTERM (drain_ms 3 s)")


DRAIN_FAULTS = ("handshake x client RST", "mid-head x client FIN", "mid-body x client RST",
                "waiting for upstream x client RST", "response body x client stops reading",
                "streaming x upstream reset", "waiting for upstream x upstream stall")


def test_fault_during_drain(h):
    """Each case on its own proxy, which exits: the checks are its exit."""
    h.start_upstream()
    failures = []
    for fault in DRAIN_FAULTS:
        name = f"drain (SIGTERM) x {fault}"
        t0 = time.monotonic()
        try:
            drain_case(h, fault)
            print(f"  ok [{name}] ({time.monotonic() - t0:.2f}s)", flush=True)
        except Exception as e:     # noqa: BLE001 - reported by name
            print(f"  FAIL [{name}]: {e}", flush=True)
            failures.append(f"[{name}] {e}")
    check(not failures, f"{len(failures)} fault case(s) failed:\n  " + "\n  ".join(failures))


# --- reload (SIGHUP) -------------------------------------------------------------------------------

def reload_case(fault):
    """The fault lands while a SIGHUP reload swaps the configuration."""
    def run(env):
        m = env.marker("reload-" + fault.replace(" ", "-"))
        before = env.px.proc.stderr_text().count("configuration reloaded")
        if fault == "handshake x client RST":
            s = client_hello(env.px.port, env.ca)
        elif fault == "waiting for upstream x client RST":
            s = env.connect()
            send_raw(s, req(f"/delay/600?m={m}"))
        elif fault == "mid-body x client RST":
            s = env.connect()
            send_raw(s, body_start(m, "/upload-sha", True, BODY_LEN))
        else:   # streaming, then the upstream resets
            s = env.connect()
            send_raw(s, req(f"/sse?n=3&interval_ms=200&cut=reset&m={m}"))
            read_some(s, n_events=1)
        env.px.proc.send_signal(signal.SIGHUP)
        if fault.endswith("client RST"):
            rst(s)
        else:
            _, tail = read_rest(s)
            check(not tail.endswith(b"0\r\n\r\n"), f"a reset stream is cut, not ended: {tail!r}")
            s.close()
        wait_until(lambda: env.px.proc.stderr_text().count("configuration reloaded") > before,
                   timeout=10, msg="reloaded")
        time.sleep(0.6)
    return run


def reloads(env, n=40, traffic=False):
    for _ in range(n):
        before = env.px.proc.stderr_text().count("configuration reloaded")
        env.px.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: env.px.proc.stderr_text().count("configuration reloaded") > before,
                   timeout=10, msg="reloaded")
        if traffic:
            check_eq(env.request("/echo").status, 200, "a request after the reload")
        else:
            time.sleep(0.05)


def test_fault_during_reload(h):
    env = FaultEnv(h)
    # First, reloads alone: what a reload keeps must not grow with each one.
    run_cases(env, "reload (SIGHUP)", [
        ("none (40 reloads, a request after each)", lambda env: reloads(env, traffic=True)),
        ("none (40 reloads, no traffic between)", reloads)])
    # Then one reload per case, each case judged against the footprint just
    # before it, so that the growth above, if any, is reported there alone.
    run_cases(env, "reload (SIGHUP)", [(f, reload_case(f)) for f in (
        "handshake x client RST", "waiting for upstream x client RST", "mid-body x client RST",
        "streaming x upstream reset")], rebaseline_each=True)


if __name__ == "__main__":
    main([test_fault_signature_jobs, test_fault_during_drain, test_fault_during_reload])
