#!/usr/bin/env python3
"""HTTP/2 on the client side, with Node 24's http2 client (OpenSSL 3.5) as
the peer: ALPN h2 over X25519MLKEM768, requests translated for the
HTTP/1.1 test upstream (tests/integration/upstream.py), concurrent
streams, large bodies both ways, an upstream failure ending one stream
only, the access log's protocol, and HTTP/1.1 clients on the same listener.

The client is tests/integration/peers/node_h2_client.mjs run with
$PX_NODE24 (as test_interop_node.py does)."""
import hashlib
import json
import os
import signal
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pxtest  # noqa: E402
from pxtest import check, check_eq, check_in  # noqa: E402
from pxhelpers import metrics  # noqa: E402
from test_interop_node import HYBRID, node24, run_node  # noqa: E402

NODE_H2 = os.path.join(pxtest.HERE, "peers", "node_h2_client.mjs")
H2_ALPN = {"tls": {"pq_policy": "require", "alpn": ["h2", "http/1.1"]}}


def pattern_sha(n):
    """SHA-256 of n bytes where byte i is i % 251 (upstream.py's and the
    client's body pattern)."""
    block = bytes(i % 251 for i in range(251))
    h = hashlib.sha256()
    full, rest = divmod(n, 251)
    for _ in range(full):
        h.update(block)
    h.update(block[:rest])
    return h.hexdigest()


def h2_requests(h, port, requests, **opts):
    arg = dict(opts, port=port, ca=os.path.join(h.certgen(), "ca.crt"), requests=requests)
    res, _, _ = run_node(h, NODE_H2, arg, timeout=90)
    check(res["ok"], f"node h2 connection failed: {res}")
    return res


def test_get_and_post_over_h2(h):
    node24()
    proxy = h.start_proxy(H2_ALPN)
    body_len = 3000
    res = h2_requests(h, proxy.port, [
        {"method": "GET", "path": "/echo?x=1",
         "headers": {"cookie": ["a=1", "b=2"], "x-test": "one"}},
        {"method": "POST", "path": "/echo", "body_len": body_len,
         "headers": {"content-type": "application/json"}},
    ])
    check_eq(res["alpn"], "h2", "ALPN")
    check_eq(res["protocol"], "TLSv1.3", "TLS version")
    get, post = res["responses"]
    check_eq((get.get("error"), get["status"]), (None, 200), f"GET: {get}")
    echo = json.loads(get["body"])
    check_eq((echo["method"], echo["target"], echo["version"] if "version" in echo else "HTTP/1.1"),
             ("GET", "/echo?x=1", "HTTP/1.1"), "the upstream saw an HTTP/1.1 GET")
    fields = {k.lower(): v for k, v in echo["headers"]}
    check_eq(fields.get("host"), f"localhost:{proxy.port}", "Host from :authority")
    check_eq(fields.get("x-test"), "one", "a field passed through")
    check_eq(fields.get("cookie"), "a=1; b=2", "cookie fields joined into one")
    check_eq(post["status"], 200, f"POST: {post}")
    echo = json.loads(post["body"])
    check_eq((echo["method"], echo["body_len"], echo["body_sha256"]),
             ("POST", body_len, pattern_sha(body_len)), "the POST body reached the upstream whole")
    logs = proxy.wait_access_log(2)
    check_eq(sorted((l["protocol"], l["method"], l["status"], l["group"]) for l in logs),
             [("h2", "GET", 200, HYBRID), ("h2", "POST", 200, HYBRID)],
             "access log: protocol h2 over the hybrid group")


def test_concurrent_streams(h):
    node24()
    proxy = h.start_proxy(H2_ALPN)
    reqs = [{"path": f"/delay/{300 + 10 * i}"} for i in range(8)]
    res = h2_requests(h, proxy.port, reqs)
    check_eq([r["status"] for r in res["responses"]], [200] * 8, f"all streams answered: {res}")
    for i, r in enumerate(res["responses"]):
        check_eq(json.loads(r["body"])["delayed_ms"], 300 + 10 * i, f"stream {i} got its answer")
    logs = proxy.wait_access_log(8)
    # In parallel: eight 300 ms requests over one connection took well
    # under eight times 300 ms, each on its own upstream link.
    check_eq(len({l["client"] for l in logs}), 1, "one client connection")
    conns = {r["conn"] for r in h.upstream.records()}
    check(len(conns) >= 2, f"streams were served concurrently (upstream connections {conns})")
    m = metrics(proxy)
    check_eq((m["pqproxy_h2_connections_total"], m["pqproxy_h2_streams_total"]), (1, 8),
             "h2 metrics: one connection, eight streams")


def test_large_bodies_both_ways(h):
    node24()
    proxy = h.start_proxy(H2_ALPN)
    up, down = 5 * 1024 * 1024 + 7, 6 * 1024 * 1024 + 3
    res = h2_requests(h, proxy.port, [
        {"method": "POST", "path": "/upload-sha", "body_len": up},
        {"path": f"/bytes/{down}"},
        {"path": f"/bytes/{down}?chunked=1"},
    ])
    upload, fixed, chunked = res["responses"]
    check_eq(upload["status"], 200, f"upload: {upload}")
    check_eq(json.loads(upload["body"]), {"body_len": up, "body_sha256": pattern_sha(up)},
             "the upload arrived whole")
    for name, r in (("fixed", fixed), ("chunked", chunked)):
        check_eq((r.get("error"), r["status"], r["body_len"], r["body_sha256"]),
                 (None, 200, down, pattern_sha(down)), f"{name} download")
    check_eq(fixed["headers"].get("content-length"), str(down), "content-length forwarded")


def test_upstream_failure_ends_one_stream(h):
    node24()
    proxy = h.start_proxy(H2_ALPN)
    res = h2_requests(h, proxy.port, [{"path": "/fault/reset"}, {"path": "/delay/200"},
                                      {"path": "/echo"}])
    bad, slow, ok = res["responses"]
    check_eq(bad["status"], 502, f"upstream reset: {bad}")
    check_eq(bad["headers"].get("content-type"), "application/json", "JSON error")
    check_eq(json.loads(bad["body"])["error"], "upstream_unavailable", "error body")
    check_eq((slow["status"], ok["status"]), (200, 200), "the other streams are served")
    logs = proxy.wait_access_log(3)
    check_in(("h2", 502), [(l["protocol"], l["status"]) for l in logs], "the 502 logged")


def test_body_limit_per_stream(h):
    """http.max_body_bytes holds per stream: a declared length over it is
    413 (JSON) on that stream, the next stream is served."""
    node24()
    proxy = h.start_proxy(dict(H2_ALPN, http={"max_body_bytes": 1000}))
    res = h2_requests(h, proxy.port, [{"method": "POST", "path": "/echo", "body_len": 5000},
                                      {"method": "POST", "path": "/echo", "body_len": 1000}])
    big, ok = res["responses"]
    check_eq(big["status"], 413, f"over the limit: {big}")
    check_eq(json.loads(big["body"])["error"], "body_too_large", "error body")
    check_eq((ok["status"], json.loads(ok["body"])["body_len"]), (200, 1000), "at the limit")
    check_eq([r["body_len"] for r in h.upstream.records()], [1000], "only the second reached upstream")


def test_connect_refused(h):
    """A plain CONNECT passes HTTP/2's own checks (no :path): the proxy
    answers 405 and opens nothing upstream."""
    node24()
    proxy = h.start_proxy(H2_ALPN)
    res = h2_requests(h, proxy.port, [{"method": "CONNECT"}, {"path": "/echo"}])
    conn, ok = res["responses"]
    check_eq(conn["status"], 405, f"CONNECT: {conn}")
    check_eq(json.loads(conn["body"])["error"], "method_not_allowed", "error body")
    check_eq(ok["status"], 200, "the next stream")
    check_eq([r["target"] for r in h.upstream.records()], ["/echo"], "nothing else upstream")


def test_client_reset_ends_its_exchange_only(h):
    """RST_STREAM from the client while its request waits upstream: logged
    499 client_closed; the other stream on the connection is served."""
    node24()
    proxy = h.start_proxy(H2_ALPN)
    res = h2_requests(h, proxy.port, [{"path": "/delay/1500", "cancel_after_ms": 300},
                                      {"path": "/delay/600"}])
    cancelled, ok = res["responses"]
    check(cancelled.get("error"), f"the cancelled stream ended without a response: {cancelled}")
    check_eq(ok["status"], 200, f"the other stream: {ok}")
    logs = proxy.wait_access_log(2)
    got = sorted((l["path"], l["status"], l.get("error")) for l in logs)
    check_eq(got, [("/delay/1500", 499, "client_closed"), ("/delay/600", 200, None)], "access log")
    m = metrics(proxy)
    check_eq(m['pqproxy_h2_events_total{event="reset_by_client"}'], 1, "the reset counted")
    check_eq(m['pqproxy_h2_events_total{event="refused_vetting"}'], 0, "nothing refused")


def signal_during_stream(h, proxy, sig):
    """Sends sig while a stream waits for its upstream; checks that the
    stream still got its answer and that the client got GOAWAY NO_ERROR."""
    arg = dict(port=proxy.port, ca=os.path.join(h.certgen(), "ca.crt"),
               requests=[{"path": "/delay/1200"}])
    box = {}
    t = threading.Thread(target=lambda: box.update(res=run_node(h, NODE_H2, arg, timeout=90)))
    t.start()
    pxtest.wait_until(lambda: any(r["target"] == "/delay/1200" for r in h.upstream.records()),
                      10, msg="the request reached the upstream")
    proxy.proc.send_signal(sig)
    t.join(60)
    res = box["res"][0]
    check(res["ok"], f"node: {res}")
    check_eq(res["responses"][0]["status"], 200, f"the stream in flight finished: {res}")
    check(res["goaways"] and all(g["code"] == 0 for g in res["goaways"]),
          f"GOAWAY NO_ERROR received: {res['goaways']}")


def test_drain_sends_goaway_and_finishes_streams(h):
    """SIGTERM while a stream waits for its upstream: the client gets a
    GOAWAY (NO_ERROR), the stream still gets its answer, the proxy exits."""
    node24()
    proxy = h.start_proxy(H2_ALPN)
    signal_during_stream(h, proxy, signal.SIGTERM)
    check_eq(proxy.proc.wait(10), 0, "the proxy exited cleanly")
    check_eq(proxy.wait_access_log(1)[-1]["status"], 200, "logged")


def test_http1_clients_unaffected(h):
    proxy = h.start_proxy({"tls": {"alpn": ["h2", "http/1.1"]}})
    ca = os.path.join(h.certgen(), "ca.crt")
    for alpn in (None, ["http/1.1"]):
        s = pxtest.tls_connect(proxy.port, ca, alpn=alpn)
        check_eq(s.selected_alpn_protocol(), "http/1.1" if alpn else None, f"ALPN for {alpn}")
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
        s.close()
        check(data.startswith(b"HTTP/1.1 200"), f"HTTP/1.1 answer: {data[:200]!r}")
    logs = proxy.wait_access_log(2)
    check_eq([l["protocol"] for l in logs], ["HTTP/1.1", "HTTP/1.1"], "access log protocol")


def test_stalled_upload_stream_times_out(h):
    """A stream that sends part of its body and stops is answered 408 after
    timeouts.body_idle_ms, and one whose body trickles on past request_ms
    too, while a sibling stream on the same connection is served; each is
    counted, and neither holds its upstream link."""
    node24()
    proxy = h.start_proxy(dict(H2_ALPN, timeouts={"body_idle_ms": 800, "request_ms": 30000}))
    res = h2_requests(h, proxy.port, [
        {"method": "POST", "path": "/echo", "body_len": 5000, "stall_after": 100},
        {"path": "/delay/300"}])
    stalled, ok = res["responses"]
    check_eq(stalled["status"], 408, f"stalled upload: {stalled}")
    check_eq(json.loads(stalled["body"])["error"], "request_timeout", "error body")
    check(700 <= stalled["t_head_ms"] < 2500, f"answered after body_idle_ms: {stalled['t_head_ms']} ms")
    check_eq(ok["status"], 200, f"the sibling stream: {ok}")
    m = metrics(proxy)
    check_eq(m['pqproxy_h2_stream_timeouts_total{timeout="body_idle"}'], 1, "counted")
    logs = proxy.wait_access_log(2)
    check_in(("/echo", 408, "request_timeout"), [(l["path"], l["status"], l.get("error")) for l in logs],
             "logged")
    check_eq([r["target"] for r in h.upstream.records()], ["/delay/300"], "only the sibling upstream")
    # the upstream link the stalled stream opened (on its first body byte) is
    # closed, not left waiting for the rest of the body
    pxtest.wait_until(lambda: metrics(proxy).get('pqproxy_upstream_connections{state="busy"}', 0) == 0, 5,
                      msg="no upstream link busy")

    proxy = h.start_proxy(dict(H2_ALPN, timeouts={"body_idle_ms": 30000, "request_ms": 900}),
                          name="pqproxy-deadline")
    res = h2_requests(h, proxy.port, [
        {"method": "POST", "path": "/echo", "body_len": 5000, "stall_after": 100},
        {"path": "/delay/200"}])
    stalled, ok = res["responses"]
    check_eq((stalled["status"], ok["status"]), (408, 200), f"request_ms: {res['responses']}")
    check(800 <= stalled["t_head_ms"] < 2500, f"answered after request_ms: {stalled['t_head_ms']} ms")
    m = metrics(proxy)
    check_eq((m['pqproxy_h2_stream_timeouts_total{timeout="request"}'],
              m["pqproxy_request_deadline_exceeded_total"]), (1, 1), "counted as a request deadline")


def test_early_answer_then_reset_no_error(h):
    """A stream answered before its request body ended (413 on its declared
    length, 405, a gRPC error) gets its whole response, then RST_STREAM
    NO_ERROR (RFC 9113 8.1): the client stops sending, the stream closes;
    the upstream sees none of them."""
    node24()
    proxy = h.start_proxy(dict(H2_ALPN, http={"max_body_bytes": 1000}))
    res = h2_requests(h, proxy.port, [
        {"method": "POST", "path": "/echo", "body_len": 5000, "stall_after": 100, "wait_close_ms": 3000},
        {"method": "POST", "path": "/echo", "body_len": 5000, "stall_after": 100, "wait_close_ms": 3000,
         "headers": {"content-type": "application/grpc"}},
        {"path": "/echo"}])
    big, grpc, ok = res["responses"]
    check_eq((big["status"], json.loads(big["body"])["error"]), (413, "body_too_large"),
             f"the whole response first: {big}")
    check_eq((big.get("closed_after_end"), big.get("rst_code")), (True, 0),
             f"then RST_STREAM NO_ERROR: {big}")
    check_eq((grpc["status"], grpc["headers"].get("grpc-status"), grpc.get("closed_after_end"),
              grpc.get("rst_code")), (200, "8", True, 0), f"trailers-only, then the reset: {grpc}")
    check_eq(ok["status"], 200, f"the connection goes on: {ok}")
    check_eq([r["target"] for r in h.upstream.records()], ["/echo"], "only the GET upstream")


def test_reload_sends_goaway(h):
    """SIGHUP while a stream waits for its upstream: the HTTP/2 connection
    (its SETTINGS from the old configuration) gets a GOAWAY NO_ERROR, its
    stream still gets its answer, and the proxy goes on serving."""
    node24()
    proxy = h.start_proxy(H2_ALPN)
    signal_during_stream(h, proxy, signal.SIGHUP)
    check_eq(metrics(proxy)['pqproxy_config_reloads_total{result="ok"}'], 1, "reloaded")
    again = h2_requests(h, proxy.port, [{"path": "/echo"}])
    check_eq((again["responses"][0]["status"], again["goaways"]), (200, []),
             "a new connection is served, no GOAWAY")


if __name__ == "__main__":
    pxtest.main([test_get_and_post_over_h2, test_concurrent_streams, test_large_bodies_both_ways,
                 test_upstream_failure_ends_one_stream, test_drain_sends_goaway_and_finishes_streams,
                 test_body_limit_per_stream, test_connect_refused,
                 test_client_reset_ends_its_exchange_only,
                 test_http1_clients_unaffected, test_stalled_upload_stream_times_out,
                 test_early_answer_then_reset_no_error, test_reload_sends_goaway])
