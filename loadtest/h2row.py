#!/usr/bin/env python3
"""One row of raw.tsv from one h2load run (loadtest/h2.sh, loadtest/grpc.sh):
h2load's output on stdin, its --log-file for p50/p99, and the CPU clock ticks
(utime+stime) of the processes measured before and after the run, and the
proxy's user-space ticks (utime) alone.

    h2row.py NAME ROUND HZ LOG_FILE CPU0 CPU1 [UPSTREAM_CPU0 UPSTREAM_CPU1] [--user USER0 USER1]
             [--sleeps SLEEPS0 SLEEPS1]

Prints: name round requests failed duration_s req_s p50_us p99_us cpu_s
cpu_us_per_req [upstream_cpu_us_per_req] [user_us_per_req] [sleeps_per_req]
(the proxy's voluntary context switches over the run), tab-separated;
nothing (and a message on stderr) when h2load did not run over HTTP/2."""
import re
import sys


def main():
    args = sys.argv[1:]
    pairs = {}
    for opt in ("--user", "--sleeps"):
        if opt in args:
            at = args.index(opt)
            pairs[opt], args = args[at + 1:at + 3], args[:at] + args[at + 3:]
    n, r, hz, logf, *ticks = args
    out = sys.stdin.read()
    m = re.search(r"^finished in ([0-9.]+)(m?s),", out, re.M)
    reqs = re.search(r"^requests: .* (\d+) succeeded, (\d+) failed", out, re.M)
    if not (m and reqs) or "Application protocol: h2" not in out:
        print(f"h2load against {n} produced no HTTP/2 result", file=sys.stderr)
        return
    dur = float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)
    ok, failed = int(reqs.group(1)), int(reqs.group(2))
    lat = sorted(int(l.split("\t")[2]) for l in open(logf) if l.split("\t")[1] != "-1")
    pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else 0
    ticks += pairs.get("--user", [])
    cpus = [(int(b) - int(a)) / int(hz) for a, b in zip(ticks[::2], ticks[1::2])]
    per = lambda c: f"{c * 1e6 / ok:.2f}" if ok else "nan"
    sleeps = pairs.get("--sleeps")
    sleeps = [f"{(int(sleeps[1]) - int(sleeps[0])) / ok:.3f}" if ok else "nan"] if sleeps else []
    print("\t".join(map(str, [n, r, ok, failed, f"{dur:.3f}", f"{ok / dur:.1f}", pct(0.50), pct(0.99),
                               f"{cpus[0]:.2f}", *map(per, cpus), *sleeps])))


if __name__ == "__main__":
    main()
