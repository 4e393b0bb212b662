#!/usr/bin/env python3
"""upstream.max_connections (docs/config.md, "upstream"): an http1 model
server gets at most that many connections per worker; beyond, requests wait
for one to come free (oldest first) and get 503 upstream_busy (gRPC: 14
UNAVAILABLE) after timeouts.upstream_queue_ms; a request whose client goes
while it waits leaves nothing behind; a reload that raises the cap serves
those waiting, and one that re-points the pool it waits in sends it to its
own upstream; the queue is in /metrics; clients coming and going at random
in front of a faulty model server leave it up and its queue empty."""
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pxtest import check, check_eq, http_request, main, pqproxy_bin, tls_connect, wait_until  # noqa: E402
from pxhelpers import check_error, metrics  # noqa: E402
from pxfaults import churn_h1  # noqa: E402
from test_h2 import H2_ALPN, h2_requests  # noqa: E402
from test_interop_node import node24  # noqa: E402

# h2 and http/1.1; Python's ssl (HTTP/1.1 clients here) has no hybrid group.
BOTH = {"tls": {"pq_policy": "prefer", "alpn": ["h2", "http/1.1"]}}
QUEUED = "pqproxy_upstream_queued_requests"
QUEUED_TOTAL = "pqproxy_upstream_queued_total"
CONNECTS = "pqproxy_upstream_connects_total"
BUSY = 'pqproxy_upstream_connections{state="busy"}'
QUEUE_TIMEOUTS = 'pqproxy_upstream_errors_total{kind="queue_timeout"}'


def cap(n, queue_ms=None, **more):
    cfg = {"upstream": dict({"max_connections": n}, **more)}
    if queue_ms:
        cfg["timeouts"] = {"upstream_queue_ms": queue_ms, "drain_ms": 3000}
    return cfg


def conns_seen(up):
    return {r["conn"] for r in up.records()}


def get_in_thread(px, ca, target, out, key):
    def run():
        try:
            with tls_connect(px.port, ca) as s:
                t0 = time.monotonic()
                r = http_request(s, "GET", target)
                out[key] = (r.status, time.monotonic() - t0)
        except Exception as e:      # reported by the check on out
            out[key] = (repr(e), 0)
    t = threading.Thread(target=run)
    t.start()
    return t


def wait_busy(px):
    wait_until(lambda: metrics(px)[BUSY] == 1, msg="a request holds the one connection")


def hold_then_wait(px, ca, held, waiting, out):
    """Starts `held` (it takes the one connection), then `waiting` (it
    queues); returns both threads. out gets each one's (status, seconds)."""
    t1 = get_in_thread(px, ca, held, out, "held")
    wait_busy(px)
    t2 = get_in_thread(px, ca, waiting, out, "waiting")
    wait_until(lambda: metrics(px)[QUEUED] == 1, msg="the second request waits")
    return t1, t2


def reload_with(px, **changes):
    cfg = dict(px.config, **changes)
    with open(px.config_path, "w") as f:
        json.dump(cfg, f)
    px.proc.send_signal(signal.SIGHUP)


def test_cap_bounds_connections_all_answered(h):
    """Eight concurrent HTTP/2 requests, max_connections 2: the model
    server sees two connections, every request is answered, six waited."""
    node24()
    px = h.start_proxy(dict(H2_ALPN, **cap(2)))
    reqs = [{"method": "GET", "path": f"/delay/300?i={i}"} for i in range(8)]
    peak = {"queued": 0}
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak["queued"] = max(peak["queued"], metrics(px).get(QUEUED, 0))
            time.sleep(0.05)
    t = threading.Thread(target=sample)
    t.start()
    try:
        res = h2_requests(h, px.port, reqs)
    finally:
        stop.set()
        t.join()
    check_eq([r["status"] for r in res["responses"]], [200] * 8, f"all answered: {res['responses']}")
    h.upstream.wait_records(8)
    check(len(conns_seen(h.upstream)) <= 2, f"at most 2 upstream connections: {conns_seen(h.upstream)}")
    m = metrics(px)
    check(m[CONNECTS] <= 2, f"connects {m[CONNECTS]}")
    check_eq(m[QUEUED_TOTAL], 6, "six requests waited for a connection")
    check_eq(m[QUEUED], 0, "nobody waits at the end")
    check(peak["queued"] >= 1, f"the gauge showed the queue: {peak}")


def test_queue_timeout_is_503_and_keeps_the_connection(h):
    """max_connections 1, one slow request holds it: the next waits
    upstream_queue_ms, gets 503 upstream_busy naming the setting, and its
    HTTP/1.1 connection serves the next request."""
    px = h.start_proxy(cap(1, queue_ms=300))
    ca = os.path.join(h.certgen(), "ca.crt")
    out = {}
    slow = get_in_thread(px, ca, "/delay/2500", out, "slow")
    wait_busy(px)
    with tls_connect(px.port, ca) as s:
        t0 = time.monotonic()
        r = http_request(s, "GET", "/echo")
        waited = time.monotonic() - t0
        check_error(r, 503, "upstream_busy")
        detail = r.json()["detail"]
        check("300 ms" in detail and "upstream.max_connections: 1" in detail, f"detail: {detail}")
        check(0.25 <= waited < 2.0, f"answered after the queue timeout, not the slow request: {waited:.2f}s")
        check(r.header("connection", "").lower() != "close", "the connection stays open")
        slow.join(10)
        check_eq(out["slow"][0], 200, f"the slow request: {out}")
        r = http_request(s, "GET", "/echo")
        check_eq(r.status, 200, "the same connection serves the next request")
    m = metrics(px)
    check_eq(m[QUEUE_TIMEOUTS], 1, "counted as a queue timeout")
    check_eq(m[CONNECTS], 1, "never a second connection")
    lines = px.wait_access_log(3)
    check_eq([(ln["path"], ln["status"], ln.get("error")) for ln in lines],
             [("/echo", 503, "upstream_busy"), ("/delay/2500", 200, None), ("/echo", 200, None)])


def test_grpc_queue_timeout_is_unavailable(h):
    """Over HTTP/2 a gRPC call that times out waiting gets grpc-status 14
    (the GET's stream is first on the connection: it takes the link)."""
    node24()
    px = h.start_proxy(dict(H2_ALPN, **cap(1, queue_ms=300)))
    res = h2_requests(h, px.port, [
        {"method": "GET", "path": "/delay/1500"},
        {"method": "POST", "path": "/echo", "body_len": 5,
         "headers": {"content-type": "application/grpc", "te": "trailers"}},
    ])
    slow, call = res["responses"]
    check_eq(slow["status"], 200, f"the slow request: {slow}")
    check_eq((call["status"], call["headers"].get("grpc-status")), (200, "14"), f"gRPC: {call}")
    check(call["headers"].get("grpc-message", "").startswith("upstream_busy:"), f"{call}")


def test_client_gone_while_waiting(h):
    """Streams cancelled (RST_STREAM) and a connection closed while their
    requests wait: nothing reaches the model server for them, the queue
    empties, and the held connection serves the next request."""
    node24()
    px = h.start_proxy(dict(BOTH, **cap(1)))
    ca = os.path.join(h.certgen(), "ca.crt")
    out = {}
    slow = get_in_thread(px, ca, "/delay/1500?slow", out, "slow")
    wait_busy(px)
    with tls_connect(px.port, ca) as s:          # an HTTP/1.1 request that waits, then its client goes
        s.sendall(b"GET /echo?gone=h1 HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_until(lambda: metrics(px)[QUEUED] == 1, msg="it waits")
    res = h2_requests(h, px.port, [{"method": "GET", "path": f"/echo?gone=h2-{i}", "cancel_after_ms": 200}
                                   for i in range(3)])
    check(all(r.get("rst_code") or r.get("error") for r in res["responses"]), f"cancelled: {res}")
    wait_until(lambda: metrics(px)[QUEUED] == 0, msg="the queue empties")
    slow.join(10)
    check_eq(out["slow"][0], 200, f"{out}")
    with tls_connect(px.port, ca) as s:
        check_eq(http_request(s, "GET", "/echo?after").status, 200)
    h.upstream.wait_records(2)
    check_eq([r["target"] for r in h.upstream.records()], ["/delay/1500?slow", "/echo?after"],
             "nothing of the abandoned requests reached the model server")
    check_eq(metrics(px)[CONNECTS], 1, "one connection throughout")


def test_reload_raising_the_cap_serves_the_queue(h):
    px = h.start_proxy(cap(1))
    ca = os.path.join(h.certgen(), "ca.crt")
    out = {}
    slow, waiting = hold_then_wait(px, ca, "/delay/3000", "/echo?waiting", out)
    t0 = time.monotonic()
    reload_with(px, upstream=dict(px.config["upstream"], max_connections=2))
    waiting.join(10)
    check_eq(out["waiting"][0], 200, f"{out}")
    check(time.monotonic() - t0 < 2.0, "answered after the reload, before the slow request ended")
    check("held" not in out, "the slow request is still running")
    slow.join(10)
    check_eq(out["held"][0], 200)
    check_eq(metrics(px)[CONNECTS], 2)


def test_waiting_request_keeps_its_upstream_across_a_reorder(h):
    """Named upstreams are pools by position: a reload that swaps two of
    them must not send a request waiting in one pool to the other upstream
    now at its position; it goes to its own upstream."""
    slow_a = h.start_upstream(args=["--delay-ms", "1500"], name="a")
    b = h.start_upstream(name="b")
    ups = {"a": {"address": f"127.0.0.1:{slow_a.port}", "max_connections": 1},
           "b": {"address": f"127.0.0.1:{b.port}", "max_connections": 1}}
    px = h.start_proxy({"upstreams": ups, "routes": [{"prefix": "/a/", "upstream": "a"},
                                                     {"prefix": "/b/", "upstream": "b"}]},
                       upstream=b)
    ca = os.path.join(h.certgen(), "ca.crt")
    out = {}
    first, second = hold_then_wait(px, ca, "/a/first", "/a/second", out)
    reload_with(px, upstreams={"b": ups["b"], "a": ups["a"]})
    wait_until(lambda: "configuration reloaded" in px.proc.stderr_text(), msg="reloaded")
    first.join(10)
    second.join(10)
    check_eq((out["held"][0], out["waiting"][0]), (404, 404), f"both answered by upstream a: {out}")
    slow_a.wait_records(2)
    check_eq([r["target"] for r in slow_a.records()], ["/a/first", "/a/second"])
    check_eq([r["target"] for r in b.records()], [], "nothing went to b")


def test_churn_with_a_faulty_model_server(h):
    """Clients that come, wait and go at random, over HTTP/1.1 and HTTP/2,
    in front of a model server that resets, sends garbage and is slow, with
    max_connections 2 and a short queue timeout: the proxy stays up (and,
    in the ASan build, clean), the queue empties, no more than two
    connections are ever busy, and it answers afterwards."""
    node24()
    px = h.start_proxy(dict(BOTH, **cap(2, queue_ms=400)))
    ca = os.path.join(h.certgen(), "ca.crt")
    until = time.monotonic() + 8
    tallies = [{} for _ in range(4)]
    threads = [threading.Thread(target=churn_h1, args=(px.port, ca, i, until, tallies[i])) for i in range(4)]
    for t in threads:
        t.start()
    peak = 0
    try:
        rnd = random.Random(99)
        while time.monotonic() < until - 1:
            reqs = [{"method": "GET", "path": rnd.choice(["/echo", "/delay/100", "/fault/reset"]),
                     **({"cancel_after_ms": rnd.randint(1, 300)} if rnd.random() < 0.5 else {})}
                    for _ in range(30)]
            h2_requests(h, px.port, reqs)
            peak = max(peak, metrics(px)[BUSY])
    finally:
        for t in threads:
            t.join(30)
    check(not any(t.is_alive() for t in threads), "the clients finished")
    total = {}
    for t in tallies:
        for k, v in t.items():
            total[k] = total.get(k, 0) + v
    m = metrics(px)
    check(total.get(200, 0) > 0 and m[QUEUED_TOTAL] > 0 and m[QUEUE_TIMEOUTS] > 0,
          f"answers, waits and queue timeouts all happened: {total}, {m[QUEUED_TOTAL]}, {m[QUEUE_TIMEOUTS]}")
    wait_until(lambda: metrics(px)[QUEUED] == 0 and metrics(px)[BUSY] <= 2, msg="the queue empties")
    check(peak <= 2, f"busy connections at most 2, saw {peak}")
    with tls_connect(px.port, ca) as s:
        check_eq(http_request(s, "GET", "/echo?after").status, 200, "it answers afterwards")
    check(px.proc.alive(), "the proxy is up")


def test_unlimited_when_zero(h):
    """max_connections 0: no cap; four concurrent slow requests, four connections."""
    node24()
    px = h.start_proxy(dict(H2_ALPN, **cap(0)))
    res = h2_requests(h, px.port, [{"method": "GET", "path": f"/delay/300?i={i}"} for i in range(4)])
    check_eq([r["status"] for r in res["responses"]], [200] * 4)
    m = metrics(px)
    check_eq((m[CONNECTS], m[QUEUED_TOTAL]), (4, 0), "a connection each, nobody waited")


def test_config_validation(h):
    """The key is checked like the others: range, type."""
    for bad, why in ((-1, "between 0 and 100000"), (100001, "between 0 and 100000"),
                     ("8", "integer")):
        path = h.write_config(dict(h.base_proxy_config(), upstream={"address": "127.0.0.1:1",
                                                                    "max_connections": bad}))
        r = subprocess.run([pqproxy_bin(), "check-config", path], capture_output=True,
                           text=True, timeout=30)
        check(r.returncode != 0, f"{bad!r} refused")
        check("upstream.max_connections" in r.stderr and why in r.stderr, f"{bad!r}: {r.stderr}")


if __name__ == "__main__":
    main([test_cap_bounds_connections_all_answered, test_queue_timeout_is_503_and_keeps_the_connection,
          test_grpc_queue_timeout_is_unavailable, test_client_gone_while_waiting,
          test_reload_raising_the_cap_serves_the_queue,
          test_waiting_request_keeps_its_upstream_across_a_reorder, test_churn_with_a_faulty_model_server,
          test_unlimited_when_zero, test_config_validation])
