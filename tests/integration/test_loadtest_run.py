#!/usr/bin/env python3
"""loadtest/run.sh (docs/benchmarks.md, "Load test"): its argument checks,
and scenario 1 in quick mode end to end: every proxy served its round
without errors, and nginx and HAProxy forwarded the four fields pqproxy
adds, as the upstream saw them (check.txt), so that CPU per request
compares the same work; the report says which comparison it was."""
import csv
import json
import os
import re
import shutil
import subprocess

from pxtest import check, check_eq, check_in, main, pqproxy_bin, skip

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNSH = os.path.join(ROOT, "loadtest", "run.sh")
FIELDS = re.compile(r"^xff=127\.0\.0\.1 xfp=https xfh=127\.0\.0\.1\S* rid=\S+$")


def run(args, timeout=60):
    return subprocess.run(["bash", RUNSH, *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def test_argument_checks():
    r = run(["--bogus"])
    check_eq(r.returncode, 2, r.stderr)
    check_in("run.sh: unknown argument --bogus", r.stderr)
    r = run(["--help"])
    check_eq(r.returncode, 0, r.stderr)
    check_in("loadtest/run.sh [--quick] [--stock-anchors]", r.stdout)
    check(r.stdout.rstrip().endswith("stopped on exit."), r.stdout[-200:])


def test_quick_scenario_1_same_fields(h):
    for t in ("nginx", "haproxy", "hitch", "wrk"):
        if not shutil.which(t):
            skip(f"{t} not installed (scripts/bench-deps.sh)")
    out = h.path("out")
    r = run(["--quick", "--scenarios", "1", "--pqproxy", pqproxy_bin(), "--out", out], timeout=240)
    check_eq(r.returncode, 0, r.stderr[-2000:])
    lines = dict(line.split(": ", 1) for line in open(os.path.join(out, "check.txt")).read().splitlines())
    for name in ("pqproxy", "nginx", "haproxy", "hitch", "pqproxy-2w", "nginx-2w", "haproxy-2w", "hitch-2w"):
        check_in(name, lines, f"check.txt: {lines}")
        if name.startswith("hitch"):
            check(lines[name].startswith("none"), f"{name}: {lines[name]}")
        else:
            check(FIELDS.match(lines[name]), f"{name} forwarded: {lines[name]}")
    with open(os.path.join(out, "raw.tsv")) as f:
        rows = [row for row in csv.DictReader(f, delimiter="\t") if row["scenario"] == "1"]
    got = {row["target"] for row in rows}
    for t in ("direct", "pqproxy", "nginx", "haproxy", "hitch"):
        check_in(t, got, "scenario 1 measured every one-worker target")
    for row in rows:
        check(int(row["requests"]) > 100 and int(row["errors"]) == 0, str(row))
        check(float(row["cpu_us_per_req"]) > 0, str(row))
    j = json.load(open(os.path.join(out, "results.json")))
    check_eq(j["anchor_fields"], "same")
    check_in("nginx and HAProxy forward the fields pqproxy adds",
             open(os.path.join(out, "results.md")).read())


if __name__ == "__main__":
    main([test_argument_checks, test_quick_scenario_1_same_fields])
