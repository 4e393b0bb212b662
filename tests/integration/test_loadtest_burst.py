#!/usr/bin/env python3
"""loadtest/burst.sh (docs/benchmarks.md, "A burst on a cold pool"): its
argument checks, its report (burstreport.py) on known h2load output, and a
real one-round burst where the tools are installed: every target answers
every request, and a pqproxy under upstream.max_connections 2 holds two
connections to the upstream where one without a cap holds one per request."""
import csv
import os
import subprocess
import sys

from pxtest import check, check_eq, check_in, main, pqproxy_bin, require_exe

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BURST = os.path.join(ROOT, "loadtest", "burst.sh")
REPORT = os.path.join(ROOT, "loadtest", "burstreport.py")


def run(args, timeout=60):
    return subprocess.run(["bash", BURST, *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def test_argument_checks():
    for args, msg in ((["--rounds", "x"], "--rounds takes a number (1..15)"),
                      (["--rounds", "16"], "--rounds must be 1..15"),
                      (["--requests", "0"], "--requests must be 1..100000"),
                      (["--caps", "8 x"], "--caps takes a number (0..100000)"),
                      (["--caps", ""], "--caps needs at least one number"),
                      (["--out"], "--out needs a value"),
                      (["--bogus"], "unknown argument --bogus")):
        r = run(args)
        check_eq(r.returncode, 2, f"{args}: {r.stderr}")
        check_in(f"burst.sh: {msg}", r.stderr, str(args))
    r = run(["--help"])
    check_eq(r.returncode, 0, r.stderr)
    check_in("loadtest/burst.sh [--quick]", r.stdout)


H2LOAD = """== {t} round {r}
starting benchmark...
finished in {fin}, 9060.66 req/s, 712.84KB/s
requests: 256 total, 256 started, 256 done, {ok} succeeded, {bad} failed, 0 errored, 0 timeout
                     min         max         mean         sd        +/- sd
time for request: {tmin} {tmax} {tmean}       485us    67.58%
"""


def test_report(h):
    out = h.path("out")
    os.makedirs(out)
    runs = [("pqproxy-c64", 1, "10.16ms", 256, "5.29ms", "6.06ms", "5.53ms", 64),
            ("pqproxy-c64", 2, "12.00ms", 256, "500us", "7.00ms", "6.00ms", 64),
            ("pqproxy-c64", 3, "11.00ms", 255, "4.00ms", "8.00ms", "7.00ms", 64),
            ("nginx", 1, "20.00ms", 256, "10ms", "15ms", "12ms", 256),
            ("haproxy", 1, "16.00ms", 256, "1.5ms", "12ms", "9ms", 128),
            ("pqproxy-c0", 1, "1.6s", 256, "1s", "1.5s", "1.2s", 256)]
    with open(h.path("h2load.txt"), "w") as f:
        for t, r, fin, ok, tmin, tmax, tmean, _ in runs:
            f.write(H2LOAD.format(t=t, r=r, fin=fin, ok=ok, bad=256 - ok, tmin=tmin, tmax=tmax, tmean=tmean))
    with open(h.path("conns.tsv"), "w") as f:
        f.write("target\tround\tupstream_conns\n")
        for t, r, *_, c in runs:
            f.write(f"{t}\t{r}\t{c}\n")
    r = subprocess.run([sys.executable, REPORT, "--h2load", h.path("h2load.txt"), "--conns", h.path("conns.tsv"),
                        "--out", out, "--versions", "v", "--requests", "256"],
                       capture_output=True, text=True, timeout=60)
    check_eq(r.returncode, 0, r.stderr)
    # medians: c64 burst 11 ms, mean 6 ms, max 7 ms; best anchor haproxy 16 ms; 1.6 s is 1600 ms
    check_in("best anchor: haproxy.", r.stdout)
    check_in("| pqproxy-c64 | 3 (2) | 11.0 | 6.0 | 7.0 | 64 | x0.69 |", r.stdout)
    check_in("| haproxy | 1 (1) | 16.0 | 9.0 | 12.0 | 128 | x1.00 |", r.stdout)
    check_in("| pqproxy-c0 | 1 (1) | 1600.0 | 1200.0 | 1500.0 | 256 | x100.00 |", r.stdout)
    with open(os.path.join(out, "burst.tsv")) as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    check_eq(len(rows), 6)
    check_eq((rows[1]["req_min_ms"], rows[2]["succeeded"]), ("0.5", "255"))


def test_one_round(h):
    for tool in ("nginx", "haproxy", "h2load"):
        require_exe(tool)
    out = h.path("burst")
    r = run(["--quick", "--requests", "64", "--caps", "2 0", "--pqproxy", pqproxy_bin(), "--out", out],
            timeout=240)
    check_eq(r.returncode, 0, f"{r.stdout}\n{r.stderr}")
    with open(os.path.join(out, "burst.tsv")) as f:
        rows = {row["target"]: row for row in csv.DictReader(f, delimiter="\t")}
    check_eq(sorted(rows), ["haproxy", "nginx", "pqproxy-c0", "pqproxy-c2"])
    check(all(row["succeeded"] == "64" for row in rows.values()), f"every request answered: {rows}")
    check_eq(rows["pqproxy-c2"]["upstream_conns"], "2", "the cap holds in the benchmark")
    check(int(rows["pqproxy-c0"]["upstream_conns"]) > 2, f"no cap: more: {rows['pqproxy-c0']}")
    check_in("| pqproxy-c2 | 1 (1) |", open(os.path.join(out, "burst.md")).read())


if __name__ == "__main__":
    main([test_argument_checks, test_report, test_one_round])
