#!/usr/bin/env python3
"""Turns the raw load-test results in OUT into results.md (stdout),
results.json and gnuplot input (plot.gp + *.dat). Standard library only."""
import argparse, csv, json, os, statistics, sys

ANCHORS = ("nginx", "haproxy", "hitch")


def read_tsv(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return list(csv.DictReader(f, delimiter="\t"))


def med(xs):
    xs = [x for x in xs if x == x]
    return statistics.median(xs) if xs else float("nan")


def agg(rows, scenario, variant):
    out = {}
    for r in rows:
        if r["scenario"] != scenario or r["variant"] != variant:
            continue
        out.setdefault(r["target"], []).append(r)
    res = {}
    for tgt, rs in out.items():
        req = sum(int(r["requests"]) for r in rs)
        cpu = sum(float(r["cpu_s"]) for r in rs)
        res[tgt] = {
            "rounds": len(rs),
            "req_s": med([float(r["req_s"]) for r in rs]),
            "req_s_rounds": [float(r["req_s"]) for r in rs],
            "p50_us": med([float(r["p50_us"]) for r in rs]),
            "p99_us": med([float(r["p99_us"]) for r in rs]),
            "p999_us": med([float(r["p999_us"]) for r in rs]),
            "errors": sum(int(r["errors"]) for r in rs),
            "cpu_us_per_req": cpu * 1e6 / req if req else float("nan"),
        }
    return res


def ms(us):
    return "–" if us != us else f"{us / 1000:.2f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", default="0")
    ap.add_argument("--duration", default="")
    ap.add_argument("--rounds", default="")
    ap.add_argument("--conns", default="")
    ap.add_argument("--versions", default="")
    ap.add_argument("--idle-n", default="")
    ap.add_argument("--big-mib", default="")
    a = ap.parse_args()
    out = a.out
    raw = read_tsv(os.path.join(out, "raw.tsv"))
    big = read_tsv(os.path.join(out, "big.tsv"))
    idle = read_tsv(os.path.join(out, "idle.tsv"))
    tls = None
    p = os.path.join(out, "bench-crypto-tls.json")
    if os.path.exists(p):
        try:
            with open(p) as f:
                tls = json.load(f)
        except ValueError:
            tls = None

    s1 = agg(raw, "1", "1 worker")
    s1w2 = agg(raw, "1", "2 workers")
    s2 = agg(raw, "2", "1 worker")
    result = {"scenario1": {"1 worker": s1, "2 workers": s1w2}, "scenario2": s2,
              "scenario4": big, "scenario7": idle, "targets": {}}
    L = []
    w = L.append
    w(f"# pqproxy load test ({'quick' if a.quick == '1' else 'full'})\n")
    w(f"{a.rounds} interleaved round(s) of {a.duration} s per target, wrk -c{a.conns} (1 worker) / "
      f"-c{int(a.conns or 0) * 2} -t2 (2 workers), loopback, 2 shared cores.  ")
    w(f"Peers: {a.versions}.  ")
    w("wrk and curl use Debian's OpenSSL 3.0 (no hybrid group): pqproxy runs with pq_policy \"prefer\" and "
      "these runs use X25519.\n")

    def s1_table(res, title, direct=True):
        w(f"\n### {title}\n")
        w("| target | req/s | × direct | p50 ms | p99 ms | p99.9 ms | server CPU µs/req | errors |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|")
        d = s1.get("direct", {}).get("req_s", float("nan"))
        for tgt in sorted(res, key=lambda t: (t != "direct", not t.startswith("pqproxy"), t)):
            r = res[tgt]
            x = r["req_s"] / d if d == d and d else float("nan")
            w(f"| {tgt} | {r['req_s']:.0f} | {x:.2f} | {ms(r['p50_us'])} | {ms(r['p99_us'])} | "
              f"{ms(r['p999_us'])} | {r['cpu_us_per_req']:.1f} | {r['errors']} |")
        pq = next((res[t] for t in res if t.startswith("pqproxy")), None)
        if pq:
            w("")
            for an in sorted(t for t in res if t.split("-")[0] in ANCHORS):
                r = res[an]
                w(f"- pqproxy / {an}: throughput ×{pq['req_s'] / r['req_s']:.2f}, "
                  f"p99 ×{pq['p99_us'] / r['p99_us']:.2f}, CPU/req ×{pq['cpu_us_per_req'] / r['cpu_us_per_req']:.2f}")

    if s1:
        w("\n## Scenario 1: keep-alive small requests (GET /small.json, 33 bytes)")
        s1_table(s1, "one worker each")
    if s1w2:
        s1_table(s1w2, "two workers each", direct=False)
    if s2:
        w("\n## Scenario 2: a new TLS 1.3 connection per request (X25519, ECDSA P-256)\n")
        w("| target | handshakes/s | p50 ms | p99 ms | server CPU µs/handshake | errors |")
        w("|---|---:|---:|---:|---:|---:|")
        for tgt in sorted(s2, key=lambda t: (not t.startswith("pqproxy"), t)):
            r = s2[tgt]
            w(f"| {tgt} | {r['req_s']:.0f} | {ms(r['p50_us'])} | {ms(r['p99_us'])} | "
              f"{r['cpu_us_per_req']:.1f} | {r['errors']} |")
    if big:
        w(f"\n## Scenario 4: {a.big_mib} MiB streamed download (curl)\n")
        w("| target | MiB/s | RSS before KiB | RSS peak KiB | growth KiB |")
        w("|---|---:|---:|---:|---:|")
        for r in big:
            w(f"| {r['target']} | {r['MiB_s']} | {r['rss_before_kib']} | {r['rss_peak_kib']} | {r['rss_growth_kib']} |")
    if idle:
        w(f"\n## Scenario 7: idle keep-alive TLS connections\n")
        w("| target | connections asked | open | RSS before KiB | RSS after KiB | KiB per connection |")
        w("|---|---:|---:|---:|---:|---:|")
        for r in idle:
            w(f"| {r['target']} | {r['connections']} | {r['open']} | {r['rss_before_kib']} | {r['rss_after_kib']} | "
              f"{r['kib_per_conn']} |")
    if tls:
        hb = tls.get("tls_handshake_bytes", {})
        w("\n## Scenario 6: bytes on the wire per handshake (pqproxy bench crypto)\n")
        w("| key exchange, certificate | ClientHello | ServerHello | total both ways |")
        w("|---|---:|---:|---:|")
        for k, v in hb.items():
            w(f"| {k} | {v.get('client_hello')} | {v.get('server_hello')} | {v.get('total')} |")
        bw = tls.get("bandwidth", [])
        if bw:
            w("\n| exchange (new connection) | X25519 bytes | X25519MLKEM768 bytes | increase | keep-alive increase |")
            w("|---|---:|---:|---:|---:|")
            for b in bw:
                ka = b["keepalive_X25519MLKEM768"] - b["keepalive_X25519"]
                w(f"| {b['exchange']} | {b['X25519']} | {b['X25519MLKEM768']} | {b['increase_pct']:+.2f}% | "
                  f"{ka:+d} bytes |")
        ops = {o["id"]: o for o in tls.get("operations", [])}
        result["tls_bench"] = {k: ops[k]["cpu_us_per_op"] for k in ops if ops[k].get("ok")}
    for f in ("scenario3.txt", "scenario5.txt"):
        fp = os.path.join(out, f)
        if os.path.exists(fp):
            w(f"\n{open(fp).read().strip()}")

    # targets
    t = result["targets"]
    if s1 and "pqproxy" in s1:
        anchors = {k: v for k, v in s1.items() if k in ANCHORS}
        if anchors:
            best = max(anchors, key=lambda k: anchors[k]["req_s"])
            ratio = s1["pqproxy"]["req_s"] / anchors[best]["req_s"]
            p99ok = s1["pqproxy"]["p99_us"] <= anchors[best]["p99_us"]
            t["keepalive_throughput"] = {"best_anchor": best, "ratio": round(ratio, 3), "p99_no_worse": p99ok,
                                         "met": ratio >= 1.2 and p99ok}
    if idle:
        pq = next((r for r in idle if r["target"] == "pqproxy"), None)
        if pq and pq["kib_per_conn"] not in ("", "None"):
            v = float(pq["kib_per_conn"])
            t["idle_conn_rss"] = {"kib_per_conn": v, "connections": int(pq["open"]), "met": v <= 64}
    if big:
        pq = next((r for r in big if r["target"] == "pqproxy"), None)
        if pq:
            g = int(pq["rss_growth_kib"])
            t["streamed_body_memory"] = {"rss_growth_kib": g, "met": g <= 4096}
    if t:
        w("\n## Targets\n")
        for k, v in t.items():
            w(f"- {k}: {'MET' if v.get('met') else 'MISSED'} — {json.dumps(v)}")

    print("\n".join(L))
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(result, f, indent=2)

    # gnuplot: req/s and p99 per target, scenario 1 (1 worker)
    if s1:
        with open(os.path.join(out, "s1.dat"), "w") as f:
            f.write("# target req_s p99_ms\n")
            for tgt, r in s1.items():
                f.write(f"{tgt} {r['req_s']:.1f} {r['p99_us'] / 1000:.3f}\n")
        plot = ["set terminal pngcairo size 900,500 noenhanced" if has_cairo() else "set terminal png size 900,500",
                "set style data histograms", "set style fill solid 0.8 border -1", "set boxwidth 0.8",
                "set grid ytics", "set key off", "set yrange [0:*]",
                "set output 'scenario1-req_s.png'",
                "set title 'Scenario 1: keep-alive small requests, 1 worker (req/s)'",
                "plot 's1.dat' using 2:xtic(1)",
                "set output 'scenario1-p99.png'",
                "set title 'Scenario 1: p99 latency, ms'",
                "plot 's1.dat' using 3:xtic(1)"]
        if s2:
            with open(os.path.join(out, "s2.dat"), "w") as f:
                f.write("# target hs_s cpu_us\n")
                for tgt, r in s2.items():
                    f.write(f"{tgt} {r['req_s']:.1f} {r['cpu_us_per_req']:.1f}\n")
            plot += ["set output 'scenario2-handshakes.png'",
                     "set title 'Scenario 2: new connection per request (handshakes/s)'",
                     "plot 's2.dat' using 2:xtic(1)",
                     "set output 'scenario2-cpu.png'",
                     "set title 'Scenario 2: server CPU per handshake, µs'",
                     "plot 's2.dat' using 3:xtic(1)"]
        with open(os.path.join(out, "plot.gp"), "w") as f:
            f.write("\n".join(plot) + "\n")


def has_cairo():
    import subprocess
    try:
        r = subprocess.run(["gnuplot", "-e", "set terminal"], capture_output=True, text=True, timeout=10)
        return "pngcairo" in (r.stdout + r.stderr)
    except Exception:
        return False


if __name__ == "__main__":
    main()
