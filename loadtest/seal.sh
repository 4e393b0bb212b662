#!/usr/bin/env bash
# Sealing throughput, side by side in one run (docs/benchmarks.md):
#
#   loadtest/seal.sh [--size BYTES] [--rounds N] [--pqproxy PATH] [--out DIR]
#
# On one file of BYTES random bytes (default 1 GiB), in interleaved rounds
# (default 3; medians reported):
#   pqproxy seal / pqproxy open      the CLI, file to file, fsync + rename
#   age-encryption encrypt / decrypt the npm package pinned in tests/npm, on
#                                    Node.js 24, streaming file to file + fsync
#                                    (loadtest/age-stream.mjs)
# both to the same mlkem768x25519 (age1pq1...) recipient, each output opened
# by the other side once to check it; then `pqproxy bench seal --size BYTES`
# for the ratio to raw ChaCha20-Poly1305 of the same wolfSSL, the fixed cost
# per file and the size overhead. Prints the table and the ratios; writes
# seal.md, seal.json and bench-seal.json to DIR (default
# loadtest/results/seal-<UTC timestamp>/). Needs `scripts/deps.sh --peers
# --test-tools` (Node.js 24 and the npm packages) and 4 x BYTES of free
# space in TMPDIR (default /tmp).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
PQPROXY="$ROOT/build/pqproxy"
SIZE=$((1 << 30))
ROUNDS=3
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --size) SIZE="$2"; shift ;;
        --rounds) ROUNDS="$2"; shift ;;
        --pqproxy) PQPROXY="$2"; shift ;;
        --out) OUT="$2"; shift ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        *) echo "seal.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
case "$SIZE$ROUNDS" in *[!0-9]*) echo "seal.sh: --size and --rounds take numbers" >&2; exit 2 ;; esac
[ "$ROUNDS" -ge 1 ] && [ "$ROUNDS" -le 15 ] || { echo "seal.sh: --rounds must be 1..15" >&2; exit 2; }
LT_NAME=seal.sh
. "$HERE/lib.sh"
lt_need_pqproxy "$PQPROXY"
NODE="$(lt_node24)"
MODULES="$(lt_npm_module "$ROOT" age-encryption)"
AGE_VERSION="$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$MODULES/age-encryption/package.json" | head -n1)"

[ -n "$OUT" ] || OUT="$ROOT/loadtest/results/seal-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/pqproxy-seal-bench.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

echo "seal.sh: $SIZE bytes, $ROUNDS rounds; pqproxy $("$PQPROXY" version | head -n1), age-encryption $AGE_VERSION on Node $("$NODE" --version)" >&2
head -c "$SIZE" /dev/urandom > "$WORK/plain"
RCPT="$("$PQPROXY" keygen --alg age-pq --out "$WORK/id.txt")"
IDENT="$(tail -n1 "$WORK/id.txt")"
WANT="$(sha256sum < "$WORK/plain" | cut -d' ' -f1)"

ns() { date +%s%N; }
# runs "$@" and prints its wall time in seconds
timed() {
    local t0 t1
    t0=$(ns)
    "$@" >/dev/null
    t1=$(ns)
    awk -v d=$((t1 - t0)) 'BEGIN { printf "%.6f\n", d / 1e9 }'
}
px_seal() { "$PQPROXY" seal -r "$RCPT" -o "$WORK/px.age" "$WORK/plain"; }
px_open() { "$PQPROXY" open -i "$WORK/id.txt" -o "$WORK/px.out" "$WORK/px.age"; }
js_seal() { NODE_PATH="$MODULES" "$NODE" "$HERE/age-stream.mjs" encrypt "$RCPT" "$WORK/plain" "$WORK/js.age"; }
js_open() { NODE_PATH="$MODULES" "$NODE" "$HERE/age-stream.mjs" decrypt "$IDENT" "$WORK/js.age" "$WORK/js.out"; }

: > "$WORK/times.tsv"
for r in $(seq 1 "$ROUNDS"); do
    # alternate which side goes first, so that neither always meets a cold cache
    if [ $((r % 2)) -eq 1 ]; then order="px_seal js_seal px_open js_open"; else order="js_seal px_seal js_open px_open"; fi
    for op in $order; do
        sync
        printf '%s\t%s\t%s\n' "$r" "$op" "$(timed "$op")" >> "$WORK/times.tsv"
    done
    echo "seal.sh: round $r done" >&2
done

# each side's output opens on the other side, and every plaintext is the input
NODE_PATH="$MODULES" "$NODE" "$HERE/age-stream.mjs" decrypt "$IDENT" "$WORK/px.age" "$WORK/x1"
"$PQPROXY" open -i "$WORK/id.txt" -o "$WORK/x2" "$WORK/js.age"
for f in px.out js.out x1 x2; do
    [ "$(sha256sum < "$WORK/$f" | cut -d' ' -f1)" = "$WANT" ] || { echo "seal.sh: $f differs from the input" >&2; exit 1; }
done
PX_AGE_BYTES=$(stat -c %s "$WORK/px.age")
JS_AGE_BYTES=$(stat -c %s "$WORK/js.age")
rm -f "$WORK"/px.* "$WORK"/js.* "$WORK"/x1 "$WORK"/x2

"$PQPROXY" bench seal --size "$SIZE" --rounds "$ROUNDS" --dir "$WORK" --json > "$OUT/bench-seal.json"

python3 - "$WORK/times.tsv" "$OUT" "$SIZE" "$ROUNDS" "$AGE_VERSION" "$PX_AGE_BYTES" "$JS_AGE_BYTES" <<'PY'
import json, statistics, sys
times, out, size, rounds, agever, px_bytes, js_bytes = sys.argv[1:]
size, px_bytes, js_bytes = int(size), int(px_bytes), int(js_bytes)
t = {}
for line in open(times):
    _, op, s = line.split("\t")
    t.setdefault(op, []).append(float(s))
gbps = {op: size / statistics.median(v) / 1e9 for op, v in t.items()}
b = json.load(open(f"{out}/bench-seal.json"))
res = {"schema": "pqproxy-loadtest-seal/1", "size": size, "rounds": int(rounds),
       "age_encryption": agever, "gbps": gbps, "seconds": t,
       "ratio_pqproxy_to_age_encryption": {"seal": gbps["px_seal"] / gbps["js_seal"],
                                           "open": gbps["px_open"] / gbps["js_open"]},
       "sealed_bytes": {"pqproxy": px_bytes, "age_encryption": js_bytes}, "bench_seal": b}
json.dump(res, open(f"{out}/seal.json", "w"), indent=2)
tp, fx, sz = b["throughput_gbps"], b["fixed_cost"], b["size"]
md = [f"# Sealing a {size}-byte file: pqproxy and age-encryption {agever} (Node.js 24), one run",
      "", f"{rounds} interleaved rounds, median; file to file, fsync, one mlkem768x25519 recipient.", "",
      "| | pqproxy GB/s | age-encryption GB/s | pqproxy / age-encryption |", "|---|---:|---:|---:|",
      f"| seal | {gbps['px_seal']:.3f} | {gbps['js_seal']:.3f} | {res['ratio_pqproxy_to_age_encryption']['seal']:.2f} × |",
      f"| open | {gbps['px_open']:.3f} | {gbps['js_open']:.3f} | {res['ratio_pqproxy_to_age_encryption']['open']:.2f} × |",
      "", "`pqproxy bench seal` in the same run (library calls, no fsync):", "",
      "| | GB/s | ratio to raw ChaCha20-Poly1305 (same chunks, same stdio) |", "|---|---:|---:|",
      f"| raw encrypt | {tp['raw_encrypt']:.3f} | |",
      f"| seal | {tp['seal']:.3f} | {b['ratio_to_raw']['seal']:.3f} × |",
      f"| raw decrypt | {tp['raw_decrypt']:.3f} | |",
      f"| open | {tp['open']:.3f} | {b['ratio_to_raw']['open']:.3f} × |",
      f"| ChaCha20-Poly1305 in memory | {tp['aead_memory']:.3f} | |", "",
      "| recipient | seal µs (empty file) | open µs | stanza bytes |", "|---|---:|---:|---:|"]
md += [f"| {k} | {v['seal_us']:.0f} | {v['open_us']:.0f} | {v['stanza_bytes']} |" for k, v in fx.items()]
md += ["", f"Sealed size: pqproxy {px_bytes} bytes, age-encryption {js_bytes} bytes for {size}: "
       f"+{100 * (px_bytes - size) / size:.4f} % (header {sz['header_bytes']} bytes, "
       f"tags {sz['tag_overhead_pct']:.4f} %)."]
open(f"{out}/seal.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
PY
echo "seal.sh: results in $OUT" >&2
