#!/usr/bin/env python3
"""loadtest/h2.sh (docs/benchmarks.md, "HTTP/2"): its argument checks and
missing-tool messages, the idle-connection counter it uses (idleconns.py
--alpn) and its hybrid load generator (h2node.mjs on Node 24) against a real
pqproxy, and the ratios of its report (h2report.py) on known inputs. The
benchmark itself runs here only in its shortest form, and only where
scripts/bench-deps.sh installed its tools (make test does not): that it
runs to its report, not what it measures."""
import json
import os
import shutil
import subprocess
import sys

from pxhelpers import node24
from pxtest import check, check_eq, check_in, main, pqproxy_bin, skip

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
H2SH = os.path.join(ROOT, "loadtest", "h2.sh")
IDLE = os.path.join(ROOT, "loadtest", "idleconns.py")
REPORT = os.path.join(ROOT, "loadtest", "h2report.py")
H2NODE = os.path.join(ROOT, "loadtest", "h2node.mjs")


def run(args, env=None, timeout=60):
    return subprocess.run(["bash", H2SH, *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, env=env)


def test_argument_checks():
    for args, msg in ((["--rounds", "x"], "--rounds takes a number (1..15)"),
                      (["--rounds", "0"], "--rounds must be 1..15"),
                      (["--duration", "601"], "--duration must be 1..600"),
                      (["--idle", ""], "--idle takes a number (1..10000)"),
                      (["--upstream-cap", "0"], "--upstream-cap must be 1..100000"),
                      (["--upstream-cap", "x"], "--upstream-cap takes a number (1..100000)"),
                      (["--rate-share", "1.5"], "--rate-share must be a number from 0 to 1, got '1.5'"),
                      (["--rate-share", "x"], "--rate-share must be a number from 0 to 1, got 'x'"),
                      (["--out"], "--out needs a value"),
                      (["--bogus"], "unknown argument --bogus")):
        r = run(args)
        check_eq(r.returncode, 2, f"{args}: {r.stderr}")
        check_in(f"h2.sh: {msg}", r.stderr, str(args))
    r = run(["--help"])
    check_eq(r.returncode, 0, r.stderr)
    check_in("loadtest/h2.sh [--quick]", r.stdout)
    check(r.stdout.rstrip().endswith("stopped on exit."), r.stdout[-200:])


def test_shortest_run_reports(h):
    # one round of 1 s per target, no offered-rate phase (--rate-share 0):
    # the report is written, with every target measured and no rate table
    for t in ("nginx", "haproxy", "h2load"):
        if not shutil.which(t):
            skip(f"{t} not installed (scripts/bench-deps.sh)")
    out = h.path("out")
    r = run(["--rounds", "1", "--duration", "1", "--idle", "20", "--rate-share", "0",
             "--pqproxy", pqproxy_bin(), "--out", out], timeout=300)
    check_eq(r.returncode, 0, r.stderr[-2000:])
    j = json.load(open(os.path.join(out, "h2.json")))
    check(not j.get("same_rate"), f"no offered-rate phase: {j.get('same_rate')}")
    with open(os.path.join(out, "raw.tsv")) as f:
        targets = {line.split("\t")[0] for line in f.read().splitlines()[1:]}
    for t in ("pqproxy", "nginx", "haproxy"):
        check_in(t, targets, f"raw.tsv measured {t}")


def test_missing_pqproxy_and_tools(h):
    r = run(["--pqproxy", h.path("no-such-pqproxy")])
    check_eq(r.returncode, 1, r.stderr)
    check_in(f"h2.sh: error: {h.path('no-such-pqproxy')} not built (make build)", r.stderr)
    # PATH: every system tool but h2load
    bindir = h.path("bin")
    os.makedirs(bindir)
    for d in ("/usr/local/bin", "/usr/bin", "/usr/sbin", "/bin", "/sbin"):
        if not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            dst = os.path.join(bindir, name)
            if name != "h2load" and not os.path.lexists(dst):
                os.symlink(os.path.join(d, name), dst)
    # the other tools h2.sh looks for may not be installed (scripts/bench-deps.sh
    # is not part of `make test`): stand-ins, so that h2load is what is missing
    for name in ("nginx", "haproxy", "curl", "python3"):
        dst = os.path.join(bindir, name)
        if not os.path.lexists(dst):
            with open(dst, "w") as f:
                f.write("#!/bin/sh\nexit 0\n")
            os.chmod(dst, 0o755)
    env = dict(os.environ, PATH=bindir)
    r = run(["--pqproxy", pqproxy_bin()], env=env)
    check_eq(r.returncode, 1, r.stderr)
    check_in("h2.sh: error: h2load missing: run scripts/bench-deps.sh", r.stderr)


def idle(port, pid, alpn, n=20):
    r = subprocess.run([sys.executable, IDLE, "--port", str(port), "--n", str(n), "--pids", str(pid),
                        "--hold", "0.2", "--alpn", alpn], capture_output=True, text=True, timeout=60)
    check_eq(r.returncode, 0, r.stderr)
    return json.loads(r.stdout)


def test_idleconns_alpn(h):
    """--alpn h2 holds real HTTP/2 sessions (preface and SETTINGS exchanged);
    a proxy that does not select the protocol asked for counts as failed."""
    both = h.start_proxy({"tls": {"alpn": ["h2", "http/1.1"]}})
    port = both.port
    for alpn in ("h2", "http/1.1"):
        d = idle(port, both.proc.pid, alpn)
        check_eq((d["alpn"], d["open"], d["failed"]), (alpn, 20, 0), str(d))
        check(d["rss_after_kib"] > 0, str(d))
    h1 = h.start_proxy({"tls": {"alpn": ["http/1.1"]}}, name="pqproxy-h1")
    d = idle(h1.port, h1.proc.pid, "h2")
    check_eq((d["open"], d["failed"]), (0, 20), str(d))


def h2node(node, port, groups, logf):
    r = subprocess.run([node, H2NODE, "-t", "1", "-c", "2", "-m", "4", "-n", "40", "--npn-list=h2",
                        "--groups", groups, f"--log-file={logf}", f"https://127.0.0.1:{port}/small.json"],
                       capture_output=True, text=True, timeout=60)
    check_eq(r.returncode, 0, r.stderr)
    return r.stdout


def test_h2node_hybrid(h):
    """The hybrid rows' generator: X25519MLKEM768 gets HTTP/2 answers from a
    pqproxy under "require", in h2load's output and log formats; offering
    X25519 alone gets nothing (so the rows are really hybrid)."""
    node = node24()
    px = h.start_proxy({"tls": {"alpn": ["h2", "http/1.1"], "pq_policy": "require"}})
    logf = h.path("h2node.log")
    out = h2node(node, px.port, "X25519MLKEM768", logf)
    check_in("requests: 40 total, 40 started, 40 done, 40 succeeded, 0 failed", out)
    check_in("Application protocol: h2", out)
    lines = open(logf).read().splitlines()
    check_eq(len(lines), 40)
    check(all(int(l.split("\t")[1]) >= 200 and int(l.split("\t")[2]) > 0 for l in lines), lines[:3])
    out = h2node(node, px.port, "X25519", h.path("x.log"))
    check_in(" 0 succeeded", out)
    check("Application protocol: h2" not in out, out)


def write_raw(path, data):
    """rows as h2.sh's raw.tsv (h2row.py's columns with --user and --sleeps)"""
    cols = ("target round requests failed duration_s req_s p50_us p99_us cpu_s cpu_us_per_req user_us_per_req "
            "sleeps_per_req").split()
    with open(path, "w") as f:
        f.write("\t".join(cols) + "\n")
        for row in data:
            f.write("\t".join(map(str, row)) + "\n")


def test_report_ratios(h):
    out = h.path("out")
    os.makedirs(out)
    data = [("pqproxy", 1, 30000, 0, 10, 3000, 900, 2000, 0.9, 30.0, 10.0, 0.1),
            ("pqproxy", 2, 31000, 0, 10, 3100, 900, 4000, 0.9, 40.0, 14.0, 0.3),
            ("pqproxy", 3, 32000, 0, 10, 3200, 900, 3000, 0.9, 50.0, 12.0, 0.125),
            ("nginx", 1, 40000, 0, 10, 4000, 800, 2500, 2.4, 60.0, 30.0, 0.05),
            ("haproxy", 1, 50000, 1, 10, 5000, 700, 5000, 2.5, 50.0, 20.0, 0.04),
            ("pqproxy-h", 1, 20000, 0, 10, 2000, 900, 9000, 0.9, 45.0, 20.0, 0.2),
            ("pqproxy-x", 1, 25000, 0, 10, 2500, 900, 6000, 0.9, 40.0, 20.0, 0.2)]
    write_raw(os.path.join(out, "raw.tsv"), data)
    with open(os.path.join(out, "idle.tsv"), "w") as f:
        f.write("target\tprotocol\trequested\topen\tkib_per_conn\trss_before_kib\trss_after_kib\n"
                "pqproxy\th2\t10\t10\t12.5\t100\t225\n")
    r = subprocess.run([sys.executable, REPORT, "--out", out, "--rounds", "3", "--loadavg", "1 2 3 -> 4 5 6",
                        "--anchor-fields", "same", "--cpus", "proxies on CPU 1, upstream and load generator on CPU 0"],
                       capture_output=True, text=True, timeout=60)
    check_eq(r.returncode, 0, r.stderr)
    j = json.load(open(os.path.join(out, "h2.json")))
    check_eq((j["anchor_fields"], j["upstream_cap"]), ("same", "default"))
    check_in("- pqproxy's upstream.max_connections: the default", r.stdout)
    check_in("- every proxy forwards the fields pqproxy adds: X-Forwarded-For", r.stdout)
    # medians: pqproxy 3100 req/s, 40 us/req, p99 3000; best anchor: 5000 req/s, 50 us (haproxy), p99 2500
    check_eq(j["summary"]["pqproxy"]["cpu_us_per_req"], 40.0)
    check_eq(j["best_anchor"]["cpu_anchor"], "haproxy")
    check_eq(j["ratios"]["pqproxy"], {"req_s": 0.62, "cpu_us_per_req": 0.8, "p99_us": 1.2})
    check_in("| pqproxy / best anchor | 0.62 | 0.8 | 1.2 |", r.stdout)
    check_eq(j["ratios"]["pqproxy-h / pqproxy-x"], {"req_s": 0.8, "cpu_us_per_req": 1.125, "p99_us": 1.5})
    check_in("| pqproxy-h / pqproxy-x | 0.8 | 1.125 | 1.5 |", r.stdout)
    check_eq(set(j["ratios"]), {"pqproxy", "pqproxy-h / pqproxy-x"})
    # round by round against the CPU anchor: only round 1 has both (30 / 50)
    check_eq(j["per_round"], {"anchor": "haproxy", "pairs": [{"round": 1, "cpu_us_per_req_ratio": 0.6}],
                              "median": 0.6})
    check_in("Per round, CPU per request pqproxy / haproxy: x0.6 (1); median of the pairs x0.6.", r.stdout)
    check_in("| pqproxy | h2 | 10/10 | 12.5 |", r.stdout)
    # user-space and system CPU: medians 12 + 28 (40 - 12) against haproxy's 20 + 30
    # sleeps per request: the median of pqproxy's rounds (0.125) against haproxy's
    check_eq(j["cpu_split"], {"anchor": "haproxy", "user_us_per_req": [12.0, 20.0], "sys_us_per_req": [28.0, 30.0],
                              "user_ratio": 0.6, "sys_ratio": 0.933, "sleeps_per_req": [0.125, 0.04]})
    check_in("CPU per request, user-space + system (µs): pqproxy 12.0 + 28.0, haproxy 20.0 + 30.0; "
             "pqproxy / haproxy: user x0.6, system x0.933. Sleeps in the kernel per request (voluntary context "
             "switches, each a wake-up paid in system time): pqproxy 0.125, haproxy 0.040.", r.stdout)
    check_in("| target | req/s | CPU µs/req | user µs/req | sleeps/req | p50 µs |", r.stdout)
    check_in("| pqproxy | 3,100 | 40.0 | 12.0 | 0.125 | 900 | ", r.stdout)
    check_eq(j["cpus"], "proxies on CPU 1, upstream and load generator on CPU 0")
    check_in("- --pin: proxies on CPU 1, upstream and load generator on CPU 0 (taskset)", r.stdout)
    check_in("1 2 3 -> 4 5 6", r.stdout)


def test_report_same_rate(h):
    """The offered-rate rounds (raw_rate.tsv): their own medians and ratios,
    and a target that served less than 97% of the offered rate named."""
    out = h.path("out")
    os.makedirs(out)
    closed = [("pqproxy", 1, 60000, 0, 10, 6000, 900, 3000, 0.9, 10.0, 3.0, 0.1),
              ("nginx", 1, 40000, 0, 10, 4000, 800, 2500, 2.4, 20.0, 5.0, 0.05),
              ("haproxy", 1, 50000, 0, 10, 5000, 700, 2000, 2.5, 12.0, 4.0, 0.04)]
    # offered 2400 req/s (--rps 300 x 8): nginx served 2300, below 97%
    rate = [("pqproxy", 1, 24000, 0, 10, 2400, 500, 1800, 0.9, 11.0, 3.0, 0.2),
            ("pqproxy", 2, 24000, 0, 10, 2400, 500, 2200, 0.9, 13.0, 3.0, 0.2),
            ("nginx", 1, 23000, 0, 10, 2300, 600, 1500, 2.4, 22.0, 5.0, 0.05),
            ("haproxy", 1, 24000, 0, 10, 2400, 600, 2500, 2.5, 15.0, 4.0, 0.04),
            ("haproxy", 2, 24000, 0, 10, 2400, 600, 2500, 2.5, 13.0, 4.0, 0.04)]
    write_raw(os.path.join(out, "raw.tsv"), closed)
    write_raw(os.path.join(out, "raw_rate.tsv"), rate)
    r = subprocess.run([sys.executable, REPORT, "--out", out, "--rounds", "2", "--conns", "8", "--rps", "300",
                        "--rate-share", "0.6"], capture_output=True, text=True, timeout=60)
    check_eq(r.returncode, 0, r.stderr)
    sr = json.load(open(os.path.join(out, "h2.json")))["same_rate"]
    check_eq((sr["offered_req_s"], sr["rps_per_conn"], sr["behind"]), (2400, 300, ["nginx"]))
    # medians: pqproxy 12 us, p99 2000; haproxy 14 us (the CPU anchor), nginx p99 1500 (the p99 anchor)
    check_eq(sr["ratios"]["pqproxy"], {"req_s": 1.0, "cpu_us_per_req": round(12 / 14, 3), "p99_us": round(2000 / 1500, 3)})
    check_eq((sr["best_anchor"]["cpu_anchor"], sr["p99_anchor"]), ("haproxy", "nginx"))
    check_eq(sr["per_round"]["pairs"], [{"round": 1, "cpu_us_per_req_ratio": round(11 / 15, 3)},
                                        {"round": 2, "cpu_us_per_req_ratio": 1.0}])
    check_in("h2load --rps 300 on each of the 8 connections, 2,400 req/s (0.6 of the slowest", r.stdout)
    check_in("Below 97% of the offered rate (fell behind, its latency is queueing): nginx.", r.stdout)
    check_in("pqproxy / best anchor at this rate: CPU per request x0.857 (haproxy), p99 x1.333 (nginx).", r.stdout)
    # the closed-loop ratios are the closed-loop rounds' alone
    check_eq(json.load(open(os.path.join(out, "h2.json")))["ratios"]["pqproxy"]["cpu_us_per_req"], round(10 / 12, 3))


def lib(script, env_extra=None):
    """script run after sourcing loadtest/lib.sh (LT_NAME lib)"""
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run(["bash", "-c", f"set -euo pipefail; LT_NAME=lib; . {ROOT}/loadtest/lib.sh; {script}"],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, env=env)


def test_same_fields(h):
    """The anchors are configured to forward what pqproxy adds, and the check
    at the upstream stops a run where a proxy left a field out (pqproxy
    always; nginx and HAProxy unless --stock-anchors)."""
    run_dir = h.path("run")
    os.makedirs(run_dir)
    cfg = lib("lt_same_fields; lt_haproxy_cfg 1 127.0.0.1:1 2; echo; lt_ngx_fields grpc")
    check_eq(cfg.returncode, 0, cfg.stderr)
    for want in ("\n    option forwardfor\n", "http-request set-header X-Forwarded-Proto https",
                 "http-request set-header X-Forwarded-Host %[req.hdr(host)]", "unique-id-header X-Request-Id\n",
                 "grpc_set_header X-Forwarded-For $remote_addr;", "grpc_set_header X-Forwarded-Proto $scheme;",
                 "grpc_set_header X-Forwarded-Host $host;", "grpc_set_header X-Request-Id $request_id;"):
        check_in(want, cfg.stdout)
    check(cfg.stdout.index("option forwardfor") < cfg.stdout.index("default_backend"), cfg.stdout)
    stock = lib("LT_SAME_FIELDS=0; lt_same_fields; lt_haproxy_cfg 1 127.0.0.1:1 2; lt_ngx_fields proxy")
    check_eq(stock.returncode, 0, stock.stderr)
    for absent in ("forwardfor", "unique-id", "set-header", "_set_header"):
        check(absent not in stock.stdout, stock.stdout)

    log = os.path.join(run_dir, "fields.log")
    with open(log, "w") as f:
        f.write("pqproxy xff=127.0.0.1 xfp=https xfh=127.0.0.1:8443 rid=0a1b\n"
                "nginx xff=- xfp=- xfh=- rid=-\n"
                "haproxy xff=127.0.0.1 xfp=https xfh=h rid=-\n")
    for target, same, ok in (("pqproxy", "1", True), ("pqproxy", "0", True), ("nginx", "1", False),
                             ("nginx", "0", True), ("haproxy", "1", False), ("haproxy", "0", True)):
        r = lib(f"RUN={run_dir}; LT_SAME_FIELDS={same}; lt_check_fields {target}")
        check_eq(r.returncode == 0, ok, f"{target} {same}: {r.stdout} {r.stderr}")
        if ok:
            check_eq(r.stdout, open(log).read().split(target + " ", 1)[1].split("\n")[0] + "\n")
        else:
            check_in(f"lib: error: {target} does not forward X-Forwarded-For/-Proto/-Host and X-Request-Id",
                     r.stderr)
    with open(log, "w") as f:
        f.write("pqproxy xff=127.0.0.1 xfp=http xfh=h rid=1\n")      # not https
    r = lib(f"RUN={run_dir}; lt_check_fields pqproxy")
    check_eq(r.returncode, 1, r.stdout)
    r = lib(f"RUN={run_dir}; lt_check_fields haproxy")
    check_eq(r.returncode, 1, r.stdout)
    check_in("lib: error: haproxy: its check request did not reach the upstream", r.stderr)


def test_h2row_sleeps(h):
    """h2row.py's row: CPU and sleeps per request over h2load's successful requests."""
    logf = h.path("h2load.log")
    with open(logf, "w") as f:
        f.write("".join(f"{i}\t200\t{100 * (i + 1)}\n" for i in range(100)))
    out = "finished in 2.00s, 50 req/s\nrequests: 100 total, 100 started, 100 done, 80 succeeded, 20 failed\n" \
          "Application protocol: h2\n"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "loadtest", "h2row.py"), "pqproxy", "1", "100", logf,
                        "100", "180", "--user", "10", "30", "--sleeps", "1000", "1036"],
                       input=out, capture_output=True, text=True, timeout=60)
    check_eq(r.returncode, 0, r.stderr)
    # 0.8 s of CPU, 0.2 s of it user-space, 36 sleeps, over 80 requests
    check_eq(r.stdout.split("\t"), ["pqproxy", "1", "80", "20", "2.000", "40.0", "5100", "10000", "0.80", "10000.00",
                                    "2500.00", "0.450\n"])


def test_pin_and_sleep_count(h):
    """--pin (lt_pin_setup): the proxies on the last CPU, the rest for the
    load; refused with one CPU. sleep_count counts every thread's sleeps."""
    cpus = sorted(os.sched_getaffinity(0))
    r = lib("lt_pin_setup 0; echo \"[$LT_PROXY_PIN] [$LT_LOAD_PIN] $LT_CPUS\"")
    check_eq((r.returncode, r.stdout), (0, "[] [] unpinned\n"), r.stderr)
    r = lib(f"exec taskset -c {cpus[0]} bash -c 'LT_NAME=lib; . {ROOT}/loadtest/lib.sh; lt_pin_setup 1'")
    check_eq(r.returncode, 1, r.stdout)
    check_in(f"lib: error: --pin needs two or more CPUs (this process may use: {cpus[0]})", r.stderr)
    if len(cpus) >= 2:
        r = lib("lt_pin_setup 1; echo \"[$LT_PROXY_PIN] [$LT_LOAD_PIN] $LT_CPUS\"")
        rest = ",".join(map(str, cpus[:-1]))
        check_eq(r.stdout, f"[taskset -c {cpus[-1]}] [taskset -c {rest}] proxies on CPU {cpus[-1]}, upstream and "
                           f"load generator on CPU {rest}\n", r.stderr)
    # a process whose second thread sleeps 40 times and stays, blocked; the
    # main thread blocks once or twice: only the second thread's count reaches 40
    prog = ("import threading, time, sys\n"
            "done, stay = threading.Event(), threading.Event()\n"
            "def work():\n"
            "    for _ in range(40): time.sleep(0.002)\n"
            "    done.set(); stay.wait()\n"
            "threading.Thread(target=work, daemon=True).start(); done.wait()\n"
            "print('slept', flush=True); sys.stdin.readline()\n")
    p = subprocess.Popen([sys.executable, "-c", prog], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        check_eq(p.stdout.readline(), "slept\n")
        n = lib(f"sleep_count {p.pid}")
        check_eq(n.returncode, 0, n.stderr)
        check(int(n.stdout) >= 40, n.stdout)
        main_only = open(f"/proc/{p.pid}/status").read()
        check(int(main_only.split("voluntary_ctxt_switches:")[1].split()[0]) < 40, main_only)
    finally:
        p.kill()
        p.wait()


if __name__ == "__main__":
    main([test_argument_checks, test_missing_pqproxy_and_tools, test_idleconns_alpn, test_h2node_hybrid,
          test_shortest_run_reports, test_report_ratios, test_report_same_rate, test_h2row_sleeps, test_pin_and_sleep_count, test_same_fields])
