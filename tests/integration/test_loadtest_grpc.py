#!/usr/bin/env python3
"""loadtest/grpc.sh (docs/benchmarks.md, "gRPC unary"): its argument checks,
its quick mode end to end (every target answered the prepared call with
grpc-status 0 and the expected message, one row per target, the report's
shape), and its stop when a target answers HTTP 200 with a gRPC error, which
h2load alone would count as success."""
import csv
import json
import os
import re
import shutil
import stat
import subprocess

from pxhelpers import node24, npm_tests_modules
from pxtest import SANITIZER_MARKS, check, check_eq, check_in, main, pqproxy_bin, skip

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GRPCSH = os.path.join(ROOT, "loadtest", "grpc.sh")
TARGETS = ["pqproxy", "nginx", "haproxy"]


def run(args, timeout=60):
    return subprocess.run(["bash", GRPCSH, *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def need_tools():
    for t in ("nginx", "haproxy", "h2load"):
        if not shutil.which(t):
            skip(f"{t} not installed (scripts/bench-deps.sh)")
    node24()
    npm_tests_modules("@grpc/grpc-js")


def test_argument_checks():
    for args, msg in ((["--rounds", "x"], "--rounds takes a number (1..15)"),
                      (["--duration", "0"], "--duration must be 1..600"),
                      (["--out"], "--out needs a value"),
                      (["--idle", "5"], "unknown argument --idle")):
        r = run(args)
        check_eq(r.returncode, 2, f"{args}: {r.stderr}")
        check_in(f"grpc.sh: {msg}", r.stderr, str(args))
    r = run(["--help"])
    check_eq(r.returncode, 0, r.stderr)
    check_in("loadtest/grpc.sh [--quick]", r.stdout)
    r = run(["--pqproxy", "/nonexistent/pqproxy"])
    check_eq(r.returncode, 1, r.stderr)
    check_in("grpc.sh: error: /nonexistent/pqproxy not built (make build)", r.stderr)
    r = run(["--baseline", "/nonexistent/old-pqproxy"])
    check_eq(r.returncode, 1, r.stderr)
    check_in("grpc.sh: error: /nonexistent/old-pqproxy not built (make build)", r.stderr)
    r = run(["--baseline"])
    check_eq(r.returncode, 2, r.stderr)
    check_in("grpc.sh: --baseline needs a value", r.stderr)


def test_quick_run_with_baseline(h):
    """--baseline: one more pqproxy (here the same binary) in the same rounds,
    checked like the others, and its ratio in the report."""
    need_tools()
    out = h.path("out")
    r = run(["--quick", "--baseline", pqproxy_bin(), "--pqproxy", pqproxy_bin(), "--out", out], timeout=240)
    check_eq(r.returncode, 0, r.stderr[-2000:])
    with open(os.path.join(out, "raw.tsv")) as f:
        raw = {row["target"]: row for row in csv.DictReader(f, delimiter="\t")}
    check_eq(sorted(raw), sorted(TARGETS + ["pqproxy-base"]))
    check(int(raw["pqproxy-base"]["requests"]) > 100 and int(raw["pqproxy-base"]["failed"]) == 0, str(raw))
    check_in("pqproxy-base: grpc-status 0 (@grpc/grpc-js, ModelInfer), response as expected",
             open(os.path.join(out, "check.txt")).read())
    j = json.load(open(os.path.join(out, "grpc.json")))
    cpu = float(raw["pqproxy"]["cpu_us_per_req"]) / float(raw["pqproxy-base"]["cpu_us_per_req"])
    check_eq(j["ratios"]["pqproxy / pqproxy-base"]["cpu_us_per_req"], round(cpu, 3))
    check_eq(j["best_anchor"]["cpu_anchor"] in ("nginx", "haproxy"), True, "the baseline is no anchor")
    md = open(os.path.join(out, "grpc.md")).read()
    check_in("| pqproxy / pqproxy-base | ", md)
    check_in(f"Per round, CPU per call pqproxy / pqproxy-base: x{round(cpu, 3)} (1)", md)


def test_quick_run(h):
    """--quick: all three targets checked with a real gRPC client, then one
    round each with calls that succeeded and no failures."""
    need_tools()
    out = h.path("out")
    cpus = sorted(os.sched_getaffinity(0))
    pin = ["--pin"] if len(cpus) >= 2 else []     # the proxies on the last CPU, the load on the others
    r = run(["--quick", *pin, "--pqproxy", pqproxy_bin(), "--out", out], timeout=240)
    check_eq(r.returncode, 0, r.stderr[-2000:])
    check_lines = open(os.path.join(out, "check.txt")).read().splitlines()
    check_eq([l.split(":")[0] for l in check_lines], TARGETS)
    for line in check_lines:
        check_in("grpc-status 0 (@grpc/grpc-js, ModelInfer), response as expected", line)
        check_in("Application protocol: h2", line)
        check_in("TLS Protocol: TLSv1.3", line)
        # every proxy forwarded the fields pqproxy adds (loadtest/lib.sh, lt_check_fields)
        check(re.search(r"; forwarded: xff=127\.0\.0\.1 xfp=https xfh=127\.0\.0\.1\S* rid=\S+; CPUs \S+$", line), line)
        want = str(cpus[-1]) if pin else ",".join(map(str, cpus))
        check(line.endswith(f"; CPUs {want}"), line)
    with open(os.path.join(out, "raw.tsv")) as f:
        raw = list(csv.DictReader(f, delimiter="\t"))
    check_eq([row["target"] for row in raw], TARGETS)
    for row in raw:
        check(int(row["requests"]) > 100 and int(row["failed"]) == 0, str(row))
        check(float(row["cpu_us_per_req"]) > 0 and float(row["upstream_cpu_us_per_req"]) > 0, str(row))
        check(0 < float(row["user_us_per_req"]) <= float(row["cpu_us_per_req"]), str(row))
        check(0 < int(row["p50_us"]) <= int(row["p99_us"]), str(row))
        check(float(row["sleeps_per_req"]) >= 0, str(row))
    j = json.load(open(os.path.join(out, "grpc.json")))
    check_eq(sorted(j["summary"]), sorted(TARGETS))
    check_eq(j["method"], "/inference.GRPCInferenceService/ModelInfer")
    check_eq(j["anchor_fields"], "same")
    if pin:
        rest = ",".join(map(str, cpus[:-1]))
        check_eq(j["cpus"], f"proxies on CPU {cpus[-1]}, upstream and load generator on CPU {rest}")
    sp = j["cpu_split"]
    check_eq(sp["sleeps_per_req"], [j["summary"][t]["sleeps_per_req"] for t in ("pqproxy", sp["anchor"])])
    check_eq(sp["anchor"], j["best_anchor"]["cpu_anchor"])
    check_eq(sp["user_us_per_req"], [j["summary"][t]["user_us_per_req"] for t in ("pqproxy", sp["anchor"])])
    check_eq(j["best_anchor"]["cpu_anchor"] in ("nginx", "haproxy"), True)
    cpu = j["summary"]["pqproxy"]["cpu_us_per_req"] / j["best_anchor"]["cpu_us_per_req"]
    check_eq(j["ratios"]["pqproxy"]["cpu_us_per_req"], round(cpu, 3))
    check_eq(j["target"]["met"], cpu <= 0.8)
    # --quick is one round: one pair, pqproxy's CPU over the anchor's in that round
    anchor = j["best_anchor"]["cpu_anchor"]
    pair = float(next(r for r in raw if r["target"] == "pqproxy")["cpu_us_per_req"]) / \
        float(next(r for r in raw if r["target"] == anchor)["cpu_us_per_req"])
    check_eq(j["per_round"], {"anchor": anchor, "pairs": [{"round": 1, "cpu_us_per_req_ratio": round(pair, 3)}],
                              "median": round(pair, 3)})
    md = open(os.path.join(out, "grpc.md")).read()
    check_eq(md, r.stdout)
    for t in TARGETS:
        check_in(f"| {t} | ", md)
    check_in("| pqproxy / best anchor | ", md)
    check_in("| target | calls/s | CPU µs/call | user µs/call | sleeps/call | upstream CPU µs/call | p50 µs |", md)
    check_in("Target CPU per call <= 0.8 x the best anchor's: **", md)
    check_in(f"Per round, CPU per call pqproxy / {anchor}: x{round(pair, 3)} (1); median of the pairs", md)
    for f in ("pqproxy.json", "nginx.conf", "haproxy.cfg", "upstream.conf", "h2load.txt"):
        check(os.path.exists(os.path.join(out, f)), f)
    log = os.path.join(out, "pqproxy.out.log")
    bad = [l for l in (open(log).read().splitlines() if os.path.exists(log) else [])
           if any(m in l for m in SANITIZER_MARKS)]
    check_eq(bad, [])


def test_grpc_error_stops_the_run(h):
    """A pqproxy whose upstream is a closed port answers each call HTTP 200
    with grpc-status 14 (UNAVAILABLE): h2load counts that as a success, the
    gRPC check must not."""
    need_tools()
    wrapper = h.path("pqproxy-dead-upstream")
    with open(wrapper, "w") as f:
        f.write(f"""#!/bin/sh
# pqproxy, its configuration's upstream moved to port 1 (nothing listens there)
if [ "$1" = run ]; then
    sed -i 's/"address": "127.0.0.1:[0-9]*"/"address": "127.0.0.1:1"/' "$3"
fi
exec {pqproxy_bin()} "$@"
""")
    os.chmod(wrapper, os.stat(wrapper).st_mode | stat.S_IXUSR)
    out = h.path("out")
    r = run(["--quick", "--pqproxy", wrapper, "--out", out], timeout=120)
    check_eq(r.returncode, 1, r.stderr[-2000:])
    check_in("grpc.sh: error: pqproxy: the gRPC call through it failed:", r.stderr)
    check_in('"code":14', r.stderr)
    check(not os.path.exists(os.path.join(out, "raw.tsv")), "rounds ran after a failed check")


if __name__ == "__main__":
    main([test_argument_checks, test_quick_run, test_quick_run_with_baseline, test_grpc_error_stops_the_run])
