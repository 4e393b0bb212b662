#!/usr/bin/env python3
"""Named upstreams chosen by routes: by path prefix and, for gRPC requests
(content-type application/grpc*), by a gRPC route; a reload re-points them;
the upstream gauges add up over the pools."""
import json
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pxtest import (check, check_eq, free_port, http_request, main, read_response, tls_connect,  # noqa: E402
                    wait_until)
from pxhelpers import metrics  # noqa: E402


def three_upstreams(h):
    ups = [h.start_upstream() for _ in range(3)]
    return ups


def routed_config(ups, rest_port=None):
    return {
        "upstream": {"address": f"127.0.0.1:{rest_port or ups[0].port}"},
        "upstreams": {"grpc": {"address": f"127.0.0.1:{ups[1].port}"},
                      "batch": {"address": f"127.0.0.1:{ups[2].port}", "pool_max_idle": 2}},
        "routes": [{"prefix": "/", "grpc": True, "upstream": "grpc"},
                   {"prefix": "/v1/batch/", "upstream": "batch"},
                   {"prefix": "/v1/"}],
    }


def ask(px, ca, target, ctype=None):
    with tls_connect(px.port, ca) as s:
        hdrs = [("Content-Type", ctype)] if ctype else []
        r = http_request(s, "POST", target, body=b"x", headers=hdrs)
        # upstream.py answers unknown paths 404 {"path": ...}: the upstream's answer, not ours
        check_eq((r.status, r.json().get("path")), (404, target.split("?")[0]), f"{target} ({ctype})")
        return r


def targets(up):
    return [r["target"] for r in up.records()]


def test_routes_choose_upstreams(h):
    ups = three_upstreams(h)
    px = h.start_proxy(routed_config(ups), upstream=ups[0])
    ca = os.path.join(h.certgen(), "ca.crt")
    cases = [("/v1/models/m:predict", None, 0),
             ("/inference.GRPCInferenceService/ModelInfer", "application/grpc", 1),
             ("/tensorflow.serving.PredictionService/Predict", "application/grpc+proto", 1),
             ("/v1/batch/job", "application/grpc", 2),           # a longer prefix beats the gRPC route
             ("/v1/batch/job", "application/json", 2),
             ("/v1/batch/job", "application/grpcx", 2),          # not a gRPC content type
             ("/other", None, 0)]                                  # no route: the default upstream
    for target, ctype, _ in cases:
        ask(px, ca, target, ctype)
    for i, up in enumerate(ups):
        want = [t for t, _, k in cases if k == i]
        up.wait_records(len(want))
        check_eq(targets(up), want, f"upstream {i} got exactly its routes")
    # the access log names each request's upstream, in request order
    names = ["default", "grpc", "batch"]
    lines = px.wait_access_log(len(cases))
    check_eq([(ln["path"], ln["upstream"]) for ln in lines], [(t, names[k]) for t, _, k in cases])


def test_access_log_upstream_when_unreached_or_not_forwarded(h):
    ups = three_upstreams(h)
    cfg = routed_config(ups)
    dead = free_port()
    cfg["upstreams"]["down"] = {"address": f"127.0.0.1:{dead}"}
    cfg["routes"].insert(0, {"prefix": "/v1/down/", "upstream": "down"})
    px = h.start_proxy(cfg, upstream=ups[0])
    ca = os.path.join(h.certgen(), "ca.crt")
    with tls_connect(px.port, ca) as s:
        check_eq(http_request(s, "GET", "/v1/down/x").status, 502)
    with tls_connect(px.port, ca) as s:                 # refused before any upstream is chosen
        s.sendall(b"POST /v1/a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        check(s.recv(4096).startswith(b"HTTP/1.1 400"), "ambiguous framing refused")
    lines = px.wait_access_log(2)
    check_eq([(ln["status"], ln["upstream"]) for ln in lines], [(502, "down"), (400, None)])


def test_reload_repoints_named_upstreams(h):
    ups = three_upstreams(h)
    px = h.start_proxy(routed_config(ups), upstream=ups[0])
    ca = os.path.join(h.certgen(), "ca.crt")
    ask(px, ca, "/v1/batch/a")                     # pools a link to upstream 2
    cfg = dict(px.config)
    cfg["upstreams"] = {"batch": {"address": f"127.0.0.1:{ups[1].port}"}}   # batch moves; grpc gone
    cfg["routes"] = [{"prefix": "/v1/batch/", "upstream": "batch"}]
    with open(px.config_path, "w") as f:
        json.dump(cfg, f)
    px.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "configuration reloaded" in px.proc.stderr_text(), msg="reloaded")
    ask(px, ca, "/v1/batch/b")
    ask(px, ca, "/x", "application/grpc")          # its route is gone: the default upstream
    ups[1].wait_records(1)
    check_eq(targets(ups[1]), ["/v1/batch/b"], "the moved upstream serves after the reload")
    check_eq(targets(ups[2]), ["/v1/batch/a"], "the old address got nothing more")
    ups[0].wait_records(1)
    check_eq(targets(ups[0]), ["/x"])


def test_request_keeps_its_upstream_when_a_reload_moves_it(h):
    """A request routed to a named upstream and waiting for its body when a
    reload changes the upstreams' order still goes to that upstream (the
    exchange finds it by name, not by its old position)."""
    ups = three_upstreams(h)
    px = h.start_proxy(routed_config(ups), upstream=ups[0])
    ca = os.path.join(h.certgen(), "ca.crt")
    with tls_connect(px.port, ca) as s:
        s.sendall(b"POST /v1/batch/held HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
                  b"Expect: 100-continue\r\n\r\n")
        r = read_response(s, "POST", skip_1xx=False)
        check_eq(r.status, 100, "routed, waiting for the body")
        cfg = dict(px.config)
        cfg["upstreams"] = {"batch": cfg["upstreams"]["batch"], "grpc": cfg["upstreams"]["grpc"]}
        with open(px.config_path, "w") as f:
            json.dump(cfg, f)
        px.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "configuration reloaded" in px.proc.stderr_text(), msg="reloaded")
        s.sendall(b"x")
        r = read_response(s, "POST")
        check_eq((r.status, r.json().get("path")), (404, "/v1/batch/held"), "the upstream's answer")
    ups[2].wait_records(1)
    check_eq(targets(ups[2]), ["/v1/batch/held"], "the batch upstream got it")
    check_eq(targets(ups[1]), [], "not the upstream now at its old position")
    line = px.wait_access_log(1)[0]
    check_eq((line["path"], line["upstream"]), ("/v1/batch/held", "batch"))


def test_bad_route_upstream_refused_at_reload(h):
    ups = three_upstreams(h)
    px = h.start_proxy(routed_config(ups), upstream=ups[0])
    ca = os.path.join(h.certgen(), "ca.crt")
    cfg = dict(px.config)
    cfg["routes"] = [{"prefix": "/", "upstream": "nope"}]
    with open(px.config_path, "w") as f:
        json.dump(cfg, f)
    px.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload refused" in px.proc.stderr_text(), msg="reload refused")
    check('routes[0].upstream: no upstream named \\"nope\\"' in px.proc.stderr_text(),
          "the refusal names the key path and reason")
    ask(px, ca, "/v1/batch/still", None)
    ups[2].wait_records(1)
    check_eq(targets(ups[2]), ["/v1/batch/still"], "the running routes stay")


def test_route_metrics_follow_routes_across_reload(h):
    """pqproxy_http_requests_total by route: a gRPC route and a plain one
    with the same prefix are two series ("grpc:/" and "/"); a reload that
    reorders the routes, removes one and adds one leaves every kept route's
    count with its label (counters kept by route, not by position)."""
    ups = three_upstreams(h)
    cfg = routed_config(ups)
    cfg["routes"].append({"prefix": "/"})          # beside the gRPC "/"
    px = h.start_proxy(cfg, upstream=ups[0])
    ca = os.path.join(h.certgen(), "ca.crt")

    def counts():   # POSTs the upstream answered 404, by route label
        return {k.split('route="')[1].split('"')[0]: v for k, v in metrics(px).items()
                if k.startswith("pqproxy_http_requests_total{") and 'method="POST",code="4xx"' in k}

    for target, ctype in (("/v1/a", None), ("/v1/b", None), ("/g", "application/grpc"), ("/other", None),
                          ("/v1/batch/c", None)):
        ask(px, ca, target, ctype)
    want = {"/v1/": 2, "grpc:/": 1, "/": 1, "/v1/batch/": 1}
    wait_until(lambda: counts() == want, msg=f"counts by route: {want}")
    cfg = dict(px.config)
    cfg["routes"] = [{"prefix": "/v2/"}, {"prefix": "/"}, {"prefix": "/v1/"},
                     {"prefix": "/", "grpc": True, "upstream": "grpc"}]
    with open(px.config_path, "w") as f:
        json.dump(cfg, f)
    px.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "configuration reloaded" in px.proc.stderr_text(), msg="reloaded")
    ask(px, ca, "/v1/c")
    ask(px, ca, "/v2/d")
    want = {"/v1/": 3, "grpc:/": 1, "/": 1, "/v2/": 1}     # "/v1/batch/" is gone, its series with it
    wait_until(lambda: counts() == want, msg=f"counts by route after the reload: {want} (got {counts()})")


def test_gauges_add_up_over_pools(h):
    ups = three_upstreams(h)
    px = h.start_proxy(routed_config(ups), upstream=ups[0])
    ca = os.path.join(h.certgen(), "ca.crt")
    for target, ctype in (("/v1/a", None), ("/g", "application/grpc"), ("/v1/batch/c", None)):
        ask(px, ca, target, ctype)
    # each pool keeps its idle link; the worker's gauge is their sum
    m = wait_until(lambda: (lambda m: m if m.get("pqproxy_upstream_connections{state=\"idle\"}") == 3
                            else None)(metrics(px)), msg="three idle upstream links")
    check_eq(m.get('pqproxy_upstream_connections{state="busy"}'), 0)


if __name__ == "__main__":
    main([test_routes_choose_upstreams, test_access_log_upstream_when_unreached_or_not_forwarded,
          test_reload_repoints_named_upstreams, test_request_keeps_its_upstream_when_a_reload_moves_it,
          test_bad_route_upstream_refused_at_reload, test_route_metrics_follow_routes_across_reload,
          test_gauges_add_up_over_pools])
