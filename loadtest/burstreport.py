#!/usr/bin/env python3
"""The report of loadtest/burst.sh: each burst's figures from h2load's output
(h2load.txt, "== TARGET round R" before each), the upstream connections
after it (conns.tsv), medians per target, and each target's burst time
over the best anchor's. Prints Markdown; writes burst.tsv in --out.

    burstreport.py --h2load FILE --conns FILE --out DIR --versions S --requests N
"""
import argparse, csv, os, re, statistics

ANCHORS = ("nginx", "haproxy")
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def ms(text):
    """h2load's durations ("485us", "24.15ms", "1.2s") in milliseconds."""
    m = re.fullmatch(r"([0-9.]+)(us|ms|s)", text)
    if not m:
        raise ValueError(f"not an h2load duration: {text!r}")
    return float(m.group(1)) * UNITS[m.group(2)]


def bursts(path):
    """[{target, round, finished_ms, req_min_ms, req_mean_ms, req_max_ms, succeeded}]"""
    out, cur = [], None
    with open(path) as f:
        for line in f:
            m = re.match(r"== (\S+) round (\d+)$", line.rstrip("\n"))
            if m:
                cur = {"target": m.group(1), "round": int(m.group(2)), "finished_ms": None,
                       "req_min_ms": None, "req_mean_ms": None, "req_max_ms": None, "succeeded": 0}
                out.append(cur)
                continue
            if cur is None:
                continue
            m = re.match(r"finished in ([0-9.]+(?:us|ms|s)),", line)
            if m:
                cur["finished_ms"] = ms(m.group(1))
            m = re.match(r"time for request:\s+(\S+)\s+(\S+)\s+(\S+)", line)
            if m:
                cur["req_min_ms"], cur["req_max_ms"], cur["req_mean_ms"] = (ms(g) for g in m.groups())
            m = re.match(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded", line)
            if m:
                cur["succeeded"] = int(m.group(1))
    return out


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, nd=1):
    return "-" if v is None else f"{v:.{nd}f}"


def main():
    ap = argparse.ArgumentParser()
    for a in ("--h2load", "--conns", "--out", "--versions"):
        ap.add_argument(a, required=True)
    ap.add_argument("--requests", type=int, required=True)
    a = ap.parse_args()
    rows = bursts(a.h2load)
    with open(a.conns) as f:
        conns = {(r["target"], int(r["round"])): int(r["upstream_conns"])
                 for r in csv.DictReader(f, delimiter="\t")}
    for r in rows:
        r["upstream_conns"] = conns.get((r["target"], r["round"]))
    cols = ["target", "round", "finished_ms", "req_min_ms", "req_mean_ms", "req_max_ms", "succeeded",
            "upstream_conns"]
    with open(os.path.join(a.out, "burst.tsv"), "w") as f:
        f.write("\t".join(cols) + "\n")
        for r in rows:
            f.write("\t".join("" if r[c] is None else str(r[c]) for c in cols) + "\n")
    summary = {}
    for t in dict.fromkeys(r["target"] for r in rows):
        rs = [r for r in rows if r["target"] == t]
        summary[t] = {k: med(r[k] for r in rs) for k in cols[2:] if k != "succeeded"}
        summary[t]["rounds"] = len(rs)
        summary[t]["complete"] = sum(r["succeeded"] == a.requests for r in rs)
    anchors = [t for t in ANCHORS if t in summary and summary[t]["finished_ms"]]
    best = min(anchors, key=lambda t: summary[t]["finished_ms"]) if anchors else None
    print(f"# A burst on a cold pool\n\n{a.versions}\n\n"
          f"h2load -c 8 -m 32 -n {a.requests} over HTTP/2 on each target started afresh; "
          f"medians over the rounds; best anchor: {best or '-'}.\n")
    print("| target | rounds (all answered) | burst ms | request mean ms | request max ms "
          "| upstream connections | burst / best anchor |")
    print("|---|---|---|---|---|---|---|")
    for t, s in summary.items():
        ratio = (s["finished_ms"] / summary[best]["finished_ms"]
                 if best and s["finished_ms"] is not None else None)
        conns_med = "-" if s["upstream_conns"] is None else f"{s['upstream_conns']:g}"
        print(f"| {t} | {s['rounds']} ({s['complete']}) | {fmt(s['finished_ms'])} | "
              f"{fmt(s['req_mean_ms'])} | {fmt(s['req_max_ms'])} | {conns_med} | "
              f"{'-' if ratio is None else f'x{ratio:.2f}'} |")


if __name__ == "__main__":
    main()
