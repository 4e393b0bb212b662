#!/usr/bin/env python3
"""The report of loadtest/h2.sh: medians over the rounds of raw.tsv, the
ratios pqproxy / best anchor (and, round by round, pqproxy's CPU per request
over that anchor's); the same at one offered rate (raw_rate.tsv, h2load
--rps), where p50/p99 compare like for like; and the idle-connection table
of idle.tsv. Prints Markdown; writes h2.json beside the inputs.

    h2report.py --out DIR --versions S --rounds N --duration S --conns C --streams M --idle-n N --loadavg S
                [--node S] [--anchor-fields same|stock] [--cpus S] [--upstream-cap N]
                [--rps R --rate-share F]
"""
import argparse, csv, json, os, statistics

ANCHORS = ("nginx", "haproxy")
KEEP_UP = 0.97          # at one offered rate, a target that served less than this share of it fell behind


def rows(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return list(csv.DictReader(f, delimiter="\t"))


def med(values):
    values = [float(v) for v in values if v not in ("", "nan", "None")]
    return statistics.median(values) if values else None


def summarize(raw, extra=()):
    """Medians per target over the rounds of raw.tsv (and of the columns in
    extra), and the best anchor's figures: {target: {...}}, best."""
    summary = {}
    for t in dict.fromkeys(r["target"] for r in raw):
        rs = [r for r in raw if r["target"] == t]
        summary[t] = {"rounds": len(rs), "req_s": med(r["req_s"] for r in rs),
                      "cpu_us_per_req": med(r["cpu_us_per_req"] for r in rs),
                      "p50_us": med(r["p50_us"] for r in rs), "p99_us": med(r["p99_us"] for r in rs),
                      "failed": sum(int(r["failed"]) for r in rs)}
        summary[t].update({k: med(r[k] for r in rs) for k in extra})
    anchors = [t for t in ANCHORS if t in summary and summary[t]["cpu_us_per_req"]]
    best = {}
    if anchors:
        best = {"req_s": max(summary[t]["req_s"] for t in anchors),
                "cpu_us_per_req": min(summary[t]["cpu_us_per_req"] for t in anchors),
                "p99_us": min(summary[t]["p99_us"] for t in anchors)}
        best["cpu_anchor"] = min(anchors, key=lambda t: summary[t]["cpu_us_per_req"])
    return summary, best


def per_round(raw, target, anchor):
    """CPU per request of target over anchor's, round by round (the rounds
    are interleaved: a pair shares the machine's state of that moment, which
    the medians over rounds do not), and the median of those pairs."""
    cpu = lambda t, n: next((float(r["cpu_us_per_req"]) for r in raw
                             if r["target"] == t and r["round"] == n and r["cpu_us_per_req"] not in ("", "nan", "None")), None)
    pairs = []
    for n in dict.fromkeys(r["round"] for r in raw if r["target"] == target):
        a, b = cpu(target, n), cpu(anchor, n)
        if a is not None and b:
            pairs.append({"round": int(n), "cpu_us_per_req_ratio": round(a / b, 3)})
    return {"anchor": anchor, "pairs": pairs,
            "median": round(statistics.median(p["cpu_us_per_req_ratio"] for p in pairs), 3) if pairs else None}


def anchor_fields_line(mode):
    """What the anchors were told to add (loadtest/lib.sh, lt_same_fields)."""
    if mode == "same":
        return ("- every proxy forwards the fields pqproxy adds: X-Forwarded-For, X-Forwarded-Proto, "
                "X-Forwarded-Host, a unique X-Request-Id (nginx `*_set_header`, HAProxy `option forwardfor`, "
                "`set-header`, `unique-id-header`), checked at the upstream (check.txt)")
    return ("- --stock-anchors: nginx and HAProxy on their defaults, forwarding none of the four fields "
            "pqproxy adds (X-Forwarded-For, -Proto, -Host, X-Request-Id)")


def measured(raw):
    """The optional columns of raw.tsv this run has (h2row.py --user, --sleeps)."""
    return tuple(k for k in ("user_us_per_req", "sleeps_per_req") if raw and k in raw[0])


def columns(raw, what):
    """The table's columns for measured(raw)."""
    titles = {"user_us_per_req": (f"user µs/{what}", "user_us_per_req", 1),
              "sleeps_per_req": (f"sleeps/{what}", "sleeps_per_req", 3)}
    return tuple(titles[k] for k in measured(raw))


def cpus_line(cpus):
    """Where the processes ran (loadtest/lib.sh, lt_pin_setup)."""
    if cpus and cpus != "unpinned":
        return f"- --pin: {cpus} (taskset)"
    return "- CPUs: unpinned, every process wherever the scheduler puts it"


def per_round_line(pr, target="pqproxy", what="request"):
    """The Markdown line of per_round's result."""
    if not pr or not pr["pairs"]:
        return []
    each = ", ".join(f"x{p['cpu_us_per_req_ratio']} ({p['round']})" for p in pr["pairs"])
    return ["", f"Per round, CPU per {what} {target} / {pr['anchor']}: {each}; median of the pairs x{pr['median']}."]


def split(summary, target, anchor):
    """User-space and system CPU per request of target and anchor (medians)
    and their ratios: the proxy's own code apart from the kernel's share."""
    t, a = summary.get(target, {}), summary.get(anchor, {})
    if t.get("user_us_per_req") is None or a.get("user_us_per_req") is None:
        return {}
    sys_ = lambda s: max(s["cpu_us_per_req"] - s["user_us_per_req"], 0.0)
    out = {"anchor": anchor, "user_us_per_req": [t["user_us_per_req"], a["user_us_per_req"]],
           "sys_us_per_req": [round(sys_(t), 2), round(sys_(a), 2)]}
    out["user_ratio"] = round(t["user_us_per_req"] / a["user_us_per_req"], 3) if a["user_us_per_req"] else None
    out["sys_ratio"] = round(sys_(t) / sys_(a), 3) if sys_(a) else None
    if t.get("sleeps_per_req") is not None and a.get("sleeps_per_req") is not None:
        out["sleeps_per_req"] = [t["sleeps_per_req"], a["sleeps_per_req"]]
    return out


def split_line(sp, target="pqproxy", what="request"):
    """The Markdown line of split's result."""
    if not sp:
        return []
    (tu, au), (ts, as_) = sp["user_us_per_req"], sp["sys_us_per_req"]
    line = (f"CPU per {what}, user-space + system (µs): {target} {tu:.1f} + {ts:.1f}, {sp['anchor']} "
            f"{au:.1f} + {as_:.1f}; {target} / {sp['anchor']}: user x{sp['user_ratio']}, system x{sp['sys_ratio']}.")
    if "sleeps_per_req" in sp:
        (tz, az) = sp["sleeps_per_req"]
        line += (f" Sleeps in the kernel per {what} (voluntary context switches, each a wake-up paid in "
                 f"system time): {target} {tz:.3f}, {sp['anchor']} {az:.3f}.")
    return ["", line]


def to_best(s, best):
    """A target's req/s, CPU per request and p99 over the best anchor's."""
    return {k: round(s[k] / best[k], 3) for k in ("req_s", "cpu_us_per_req", "p99_us") if best[k] and s[k]}


def table(summary, extra=(), what="req"):
    """The Markdown table of the medians; extra: (column title, key) pairs,
    or (title, key, decimals); what: "req" or "call"."""
    f = lambda v, d=1: "–" if v is None else f"{v:,.{d}f}"
    extra = [(e + (1,))[:3] for e in extra]
    rate = "req/s" if what == "req" else f"{what}s/s"
    out = [f"| target | {rate} | CPU µs/{what} | " + "".join(f"{c} | " for c, _, _ in extra) + "p50 µs | p99 µs | failed | rounds |",
           "|---|---:|---:|" + "---:|" * len(extra) + "---:|---:|---:|---:|"]
    for t, s in summary.items():
        out.append(f"| {t} | {f(s['req_s'], 0)} | {f(s['cpu_us_per_req'])} | "
                   + "".join(f"{f(s.get(k), d)} | " for _, k, d in extra)
                   + f"{f(s['p50_us'], 0)} | {f(s['p99_us'], 0)} | {s['failed']} | {s['rounds']} |")
    return out


def same_rate(raw_rate, rps, conns):
    """The offered-rate rounds: medians, pqproxy over the best anchor, and
    the targets that served less than KEEP_UP of the offered rate."""
    if not raw_rate or not rps:
        return {}
    summary, best = summarize(raw_rate, extra=measured(raw_rate))
    offered = rps * conns
    out = {"offered_req_s": offered, "rps_per_conn": rps, "summary": summary,
           "behind": sorted(t for t, v in summary.items() if (v["req_s"] or 0) < KEEP_UP * offered)}
    if best and summary.get("pqproxy", {}).get("cpu_us_per_req"):
        out["best_anchor"] = best
        out["ratios"] = {"pqproxy": to_best(summary["pqproxy"], best)}
        out["per_round"] = per_round(raw_rate, "pqproxy", best["cpu_anchor"])
        out["p99_anchor"] = min((t for t in ANCHORS if t in summary), key=lambda t: summary[t]["p99_us"])
    return out


def same_rate_lines(sr, raw_rate, share, conns):
    """The Markdown of same_rate's result."""
    if not sr:
        return []
    out = ["", f"At one offered rate for every proxy: h2load --rps {sr['rps_per_conn']} on each of the {conns} "
               f"connections, {sr['offered_req_s']:,} req/s ({share} of the slowest proxy's median above); "
               "latency here compares like for like:\n"]
    out += table(sr["summary"], extra=columns(raw_rate, "req"))
    if sr["behind"]:
        out += ["", f"Below {KEEP_UP:.0%} of the offered rate (fell behind, its latency is queueing): "
                    + ", ".join(sr["behind"]) + "."]
    r = sr.get("ratios", {}).get("pqproxy")
    if r:
        out += ["", f"pqproxy / best anchor at this rate: CPU per request x{r.get('cpu_us_per_req', '–')} "
                    f"({sr['best_anchor']['cpu_anchor']}), p99 x{r.get('p99_us', '–')} ({sr['p99_anchor']})."]
        out += per_round_line(sr["per_round"])
    return out


def main():
    ap = argparse.ArgumentParser()
    for k in ("out", "versions", "loadavg", "node", "anchor-fields", "cpus", "upstream-cap", "rate-share"):
        ap.add_argument("--" + k, default="")
    ap.add_argument("--rps", type=int, default=0)
    for k in ("rounds", "duration", "conns", "streams", "idle-n"):
        ap.add_argument("--" + k, type=int, default=0)
    a = ap.parse_args()

    raw = rows(os.path.join(a.out, "raw.tsv"))
    summary, best = summarize(raw, extra=measured(raw))
    ratios, rounds, sp = {}, {}, {}
    if best and summary.get("pqproxy", {}).get("cpu_us_per_req"):
        ratios["pqproxy"] = to_best(summary["pqproxy"], best)
        rounds = per_round(raw, "pqproxy", best["cpu_anchor"])
        sp = split(summary, "pqproxy", best["cpu_anchor"])
    h, x = summary.get("pqproxy-h"), summary.get("pqproxy-x")
    if h and x and x["cpu_us_per_req"]:     # the same Node client, hybrid against classical
        ratios["pqproxy-h / pqproxy-x"] = to_best(h, x)

    idle = rows(os.path.join(a.out, "idle.tsv"))
    raw_rate = rows(os.path.join(a.out, "raw_rate.tsv"))
    sr = same_rate(raw_rate, a.rps, a.conns)

    out = []
    out.append("# HTTP/2 load test (loadtest/h2.sh)\n")
    out.append(f"- {a.versions}")
    out.append(f"- h2load -t 1 -c {a.conns} -m {a.streams} -D {a.duration} --npn-list=h2, GET /small.json "
               f"(33-byte JSON from a plaintext nginx upstream over HTTP/1.1); {a.rounds} interleaved round(s), medians")
    out.append("- one worker per proxy; TLS 1.3, ECDSA P-256; key exchange X25519 (h2load on OpenSSL 3.0)"
               + (f"; pqproxy-h (require, X25519MLKEM768) and pqproxy-x (X25519) driven by h2node.mjs on {a.node}"
                  if a.node else "; no Node.js 24: no hybrid rows"))
    out.append(anchor_fields_line(a.anchor_fields))
    out.append("- pqproxy's upstream.max_connections: " +
               (f"{a.upstream_cap} (--upstream-cap)" if a.upstream_cap else "the default"))
    out.append(cpus_line(a.cpus))
    out.append(f"- load average (1, 5, 15 min) at start -> end: {a.loadavg}\n")
    out += table(summary, extra=columns(raw, "req"))
    if ratios:
        out.append("")
        out.append(f"Ratios to the best anchor (req/s: the higher anchor; CPU per request: {best['cpu_anchor']}, "
                   "the lower; p99: the lower):\n")
        out.append("| | req/s | CPU per request | p99 |")
        out.append("|---|---:|---:|---:|")
        for t, r in ratios.items():
            out.append(f"| {t if '/' in t else t + ' / best anchor'} | {r.get('req_s', '–')} | {r.get('cpu_us_per_req', '–')} | "
                       f"{r.get('p99_us', '–')} |")
        out += per_round_line(rounds)
        out += split_line(sp)
    out += same_rate_lines(sr, raw_rate, a.rate_share, a.conns)
    if idle:
        out.append("")
        out.append(f"Idle connections ({a.idle_n} per proxy and protocol; RSS growth of the proxy's processes):\n")
        out.append("| target | protocol | open | KiB per connection | RSS before KiB | RSS after KiB |")
        out.append("|---|---|---:|---:|---:|---:|")
        for r in idle:
            out.append(f"| {r['target']} | {r['protocol']} | {r['open']}/{r['requested']} | {r['kib_per_conn']} | "
                       f"{r['rss_before_kib']} | {r['rss_after_kib']} |")
    print("\n".join(out))
    with open(os.path.join(a.out, "h2.json"), "w") as fh:
        json.dump({"summary": summary, "best_anchor": best, "ratios": ratios, "per_round": rounds, "cpu_split": sp, "idle": idle,
                   "versions": a.versions, "loadavg": a.loadavg, "rounds": a.rounds, "duration_s": a.duration,
                   "conns": a.conns, "streams": a.streams, "anchor_fields": a.anchor_fields, "cpus": a.cpus or "unpinned",
                   "upstream_cap": a.upstream_cap or "default", "same_rate": sr},
                  fh, indent=1)


if __name__ == "__main__":
    main()
