"""`pqproxy inject-webhook` serves connections concurrently and bounded: idle
and slow clients hold up neither /healthz nor an AdmissionReview, stalled
connections are closed after their timeouts, the connection limit displaces
the oldest connection that sent no request, and large requests get 413."""
import http.client
import json
import os
import socket
import ssl
import subprocess
import time

from pxtest import (check, check_eq, check_in, free_port, main, pqproxy_bin, tcp_connect,
                    tls_connect, wait_until)

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "admission")


def start_webhook(h, *opts):
    certs = h.certgen()
    port = free_port()
    p = h.start("inject-webhook", [pqproxy_bin(), "inject-webhook", "--listen", f"127.0.0.1:{port}",
                                   "--cert", os.path.join(certs, "server.crt"),
                                   "--key", os.path.join(certs, "server.key"), *opts],
                ready="port", port=port)
    return p, port, os.path.join(certs, "ca.crt")


def request(port, ca, method, path, body=None, timeout=5.0):
    """(status, body, seconds) of one HTTPS request on a new connection."""
    ctx = ssl.create_default_context(cafile=ca)
    start = time.monotonic()
    c = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=timeout)
    try:
        c.request(method, path, body=body, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
    finally:
        c.close()
    return r.status, data, time.monotonic() - start


def closed_after(sock, limit):
    """Seconds until the peer closes sock (reads until EOF), or None by limit."""
    start = time.monotonic()
    sock.settimeout(limit)
    try:
        while sock.recv(4096):
            pass
    except (socket.timeout, TimeoutError):
        return None
    except (ConnectionResetError, ssl.SSLError, OSError):
        pass
    return time.monotonic() - start


def slow_clients(port, ca):
    """Three idle TCP connections, one that finished the TLS handshake and
    sent half a head, one that sent a head and part of its body."""
    held = [tcp_connect(port) for _ in range(3)]
    s = tls_connect(port, ca)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    held.append(s)
    s = tls_connect(port, ca)
    s.sendall(b"POST /inject HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"apiVers")
    held.append(s)
    return held


def test_slow_clients_do_not_hold_up_others(h):
    _, port, ca = start_webhook(h)
    held = slow_clients(port, ca)
    try:
        status, body, took = request(port, ca, "GET", "/healthz")
        check_eq((status, json.loads(body)), (200, {"status": "ok"}))
        check(took < 1.0, f"/healthz took {took:.2f}s behind idle connections")
        with open(os.path.join(FIXTURES, "pod-no-init.json"), "rb") as f:
            review = f.read()
        status, body, took = request(port, ca, "POST", "/inject?timeout=5s", review)
        check_eq(status, 200)
        check_in("patch", json.loads(body)["response"])
        check(took < 1.0, f"AdmissionReview took {took:.2f}s behind idle connections")
    finally:
        for s in held:
            s.close()


def test_stalled_connections_closed(h):
    p, port, ca = start_webhook(h, "--header-timeout-ms", "1000", "--body-timeout-ms", "2000",
                                "--idle-timeout-ms", "1000")
    # nothing sent at all: the head deadline
    took = closed_after(tcp_connect(port), 5)
    check(took is not None and 0.7 < took < 3, f"idle TCP connection closed after {took}")
    # half a head after the handshake: the same deadline, counted from accept
    s = tls_connect(port, ca)
    s.sendall(b"GET /healthz HTTP/1.1\r\n")
    took = closed_after(s, 5)
    check(took is not None and took < 3, f"half a head: closed after {took}")
    # a head, then silence in the body: the idle limit
    s = tls_connect(port, ca)
    s.sendall(b"POST /inject HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
    took = closed_after(s, 5)
    check(took is not None and 0.7 < took < 3, f"stalled body: closed after {took}")
    # a body trickling in, never idle for long: the body deadline
    s = tls_connect(port, ca)
    s.sendall(b"POST /inject HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
    start = time.monotonic()
    closed = False
    while time.monotonic() - start < 6:
        try:
            s.sendall(b" ")
        except OSError:
            closed = True
            break
        s.settimeout(0.3)
        try:
            if s.recv(4096) == b"":
                closed = True
                break
        except (socket.timeout, TimeoutError):
            pass
        except (ssl.SSLError, OSError):
            closed = True
            break
    took = time.monotonic() - start
    check(closed and 1.5 < took < 4, f"trickled body: closed={closed} after {took:.2f}s")
    wait_until(lambda: "request body too slow" in p.stderr_text(), msg="body timeout logged")
    check_in("no complete request in time", p.stderr_text())
    # and the webhook still serves
    check_eq(request(port, ca, "GET", "/healthz")[0], 200)


def test_connection_limit_displaces_idle(h):
    p, port, ca = start_webhook(h, "--max-connections", "4")
    held = [tcp_connect(port) for _ in range(10)]
    try:
        status, _, took = request(port, ca, "GET", "/healthz")
        check_eq(status, 200)
        check(took < 1.0, f"/healthz took {took:.2f}s at the connection limit")
        # the first idle ones made room and were closed
        check(closed_after(held[0], 2) is not None, "oldest idle connection closed")
        wait_until(lambda: "closing the oldest without a request" in p.stderr_text(),
                   msg="displacement logged")
    finally:
        for s in held:
            s.close()


def test_request_size_bounded(h):
    _, port, ca = start_webhook(h, "--max-request-bytes", "8192")
    status, body, _ = request(port, ca, "POST", "/inject", b"{" + b" " * 9000 + b"}")
    check_eq(status, 413)
    check_eq(json.loads(body)["error"], "body_too_large")
    with open(os.path.join(FIXTURES, "pod-no-init.json"), "rb") as f:
        review = f.read()
    check(len(review) < 8192, "the fixture fits")
    check_eq(request(port, ca, "POST", "/inject", review)[0], 200)


def test_buffered_bodies_bounded(h):
    """All connections together hold at most --max-buffered-bytes of bodies."""
    _, port, ca = start_webhook(h, "--max-buffered-bytes", "5000")
    head = b"POST /inject HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\n\r\n"
    first = tls_connect(port, ca)
    first.sendall(head + b" " * 3000)
    try:
        time.sleep(0.3)     # the first body is held
        second = tls_connect(port, ca)
        second.sendall(head + b" " * 3000)
        second.settimeout(5)
        reply = b""
        while True:
            try:
                chunk = second.recv(4096)
            except (ssl.SSLError, OSError):
                break
            if not chunk:
                break
            reply += chunk
        second.close()
        check(reply.startswith(b"HTTP/1.1 503 "), f"second body over the budget: {reply[:200]!r}")
        check_in(b'"overloaded"', reply)
    finally:
        first.close()
    # the budget is given back when connections close
    with open(os.path.join(FIXTURES, "pod-no-init.json"), "rb") as f:
        review = f.read()
    wait_until(lambda: request(port, ca, "POST", "/inject", review)[0] == 200,
               msg="served again once the first connection closed")


def test_bad_limit_options_refused(h):
    certs = h.certgen()
    for opt, val in (("--max-connections", "0"), ("--idle-timeout-ms", "-1"),
                     ("--max-request-bytes", "lots")):
        r = subprocess.run([pqproxy_bin(), "inject-webhook", "--cert",
                            os.path.join(certs, "server.crt"), "--key",
                            os.path.join(certs, "server.key"), opt, val],
                           capture_output=True, text=True, timeout=10)
        check_eq(r.returncode, 2, f"{opt} {val}")


if __name__ == "__main__":
    main([test_slow_clients_do_not_hold_up_others, test_stalled_connections_closed,
          test_connection_limit_displaces_idle, test_request_size_bounded,
          test_buffered_bodies_bounded, test_bad_limit_options_refused])
