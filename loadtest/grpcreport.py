#!/usr/bin/env python3
"""The report of loadtest/grpc.sh: medians over the rounds of raw.tsv (with
the upstream's CPU per call), the ratios pqproxy / best anchor (and, round
by round, pqproxy's CPU per call over that anchor's) and the target "CPU
per call <= 0.8 x the best anchor's" (on the medians). Prints Markdown; writes
grpc.json beside the inputs.

    grpcreport.py --out DIR --versions S --rounds N --duration S --conns C --streams M --method PATH --loadavg S
                  [--anchor-fields same|stock] [--cpus S]
"""
import argparse
import json
import os

from h2report import (anchor_fields_line, columns, cpus_line, measured, per_round, per_round_line, rows, split,
                      split_line, summarize, table, to_best)

TARGET_CPU_RATIO = 0.8


def main():
    ap = argparse.ArgumentParser()
    for k in ("out", "versions", "loadavg", "method", "anchor-fields", "cpus"):
        ap.add_argument("--" + k, default="")
    for k in ("rounds", "duration", "conns", "streams"):
        ap.add_argument("--" + k, type=int, default=0)
    a = ap.parse_args()

    raw = rows(os.path.join(a.out, "raw.tsv"))
    summary, best = summarize(raw, extra=("upstream_cpu_us_per_req",) + measured(raw))
    ratios, target, rounds, sp = {}, {}, {}, {}
    if best and summary.get("pqproxy", {}).get("cpu_us_per_req"):
        ratios["pqproxy"] = to_best(summary["pqproxy"], best)
        rounds = per_round(raw, "pqproxy", best["cpu_anchor"])
        sp = split(summary, "pqproxy", best["cpu_anchor"])
        cpu = ratios["pqproxy"]["cpu_us_per_req"]
        target = {"cpu_us_per_req_ratio": cpu, "limit": TARGET_CPU_RATIO, "met": cpu <= TARGET_CPU_RATIO}
    base, base_rounds = summary.get("pqproxy-base"), {}
    if base and base["cpu_us_per_req"] and summary.get("pqproxy", {}).get("cpu_us_per_req"):
        ratios["pqproxy / pqproxy-base"] = to_best(summary["pqproxy"], base)
        base_rounds = per_round(raw, "pqproxy", "pqproxy-base")

    out = ["# gRPC unary load test (loadtest/grpc.sh)\n", f"- {a.versions}",
           f"- h2load -t 1 -c {a.conns} -m {a.streams} -D {a.duration} --npn-list=h2, POST {a.method} "
           "(content-type: application/grpc, te: trailers; one prepared ModelInferRequest) "
           f"to an h2c nginx upstream answering the prepared response and grpc-status 0; "
           f"{a.rounds} interleaved round(s), medians",
           "- one worker per proxy; TLS 1.3, ECDSA P-256, X25519 (h2load on OpenSSL 3.0); every target "
           "checked first with @grpc/grpc-js (check.txt)",
           anchor_fields_line(a.anchor_fields), cpus_line(a.cpus),
           f"- load average (1, 5, 15 min) at start -> end: {a.loadavg}\n"]
    out += table(summary, extra=columns(raw, "call") + (("upstream CPU µs/call", "upstream_cpu_us_per_req"),),
                 what="call")
    if ratios:
        r = ratios["pqproxy"]
        out += ["", f"Ratios to the best anchor (calls/s: the higher anchor; CPU per call: {best['cpu_anchor']}, "
                "the lower; p99: the lower):\n", "| | calls/s | CPU per call | p99 |", "|---|---:|---:|---:|",
                f"| pqproxy / best anchor | {r.get('req_s', '–')} | {r.get('cpu_us_per_req', '–')} | "
                f"{r.get('p99_us', '–')} |"]
        out += per_round_line(rounds, what="call")
        out += split_line(sp, what="call")
        out += ["", f"Target CPU per call <= {TARGET_CPU_RATIO} x the best anchor's: "
                + ("**met**" if target["met"] else "**missed**") + f" (x{target['cpu_us_per_req_ratio']})"]
    if "pqproxy / pqproxy-base" in ratios:
        r = ratios["pqproxy / pqproxy-base"]
        out += ["", "Against the baseline binary (--baseline), in the same rounds:\n",
                "| | calls/s | CPU per call | p99 |", "|---|---:|---:|---:|",
                f"| pqproxy / pqproxy-base | {r.get('req_s', '–')} | {r.get('cpu_us_per_req', '–')} | "
                f"{r.get('p99_us', '–')} |"]
        out += per_round_line(base_rounds, what="call")
    print("\n".join(out))
    with open(os.path.join(a.out, "grpc.json"), "w") as fh:
        json.dump({"summary": summary, "best_anchor": best, "ratios": ratios, "per_round": rounds, "cpu_split": sp, "target": target,
                   "versions": a.versions, "loadavg": a.loadavg, "rounds": a.rounds, "duration_s": a.duration,
                   "conns": a.conns, "streams": a.streams, "method": a.method,
                   "anchor_fields": a.anchor_fields, "cpus": a.cpus or "unpinned",
                   "baseline_per_round": base_rounds}, fh, indent=1)


if __name__ == "__main__":
    main()
