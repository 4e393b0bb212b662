#!/usr/bin/env bash
# What the wolfSSL handshake patches 0002-0009 save: `pqproxy bench crypto
# --quick` timed on two builds of pqproxy side by side, in alternating
# rounds so that both see the same machine load.
#
#   scripts/bench-wolfssl-patches.sh [ALL_BIN [MINIMAL_BIN [ROUNDS]]]
#
# ALL_BIN (default build/pqproxy) is built on the default patch set,
# MINIMAL_BIN (default build-minimal-wolfssl/pqproxy, from
# `make test-minimal-wolfssl`) with PQPROXY_WOLFSSL_PATCHES=minimal.
# Prints a Markdown table of CPU per handshake: the least, over the rounds,
# of each round's CPU per operation. Other processes on the machine can only
# add to it (cache and core sharing), so the least round is the closest to
# the code's own cost; ROUNDS defaults to 15.
set -euo pipefail

all="${1:-build/pqproxy}"
min="${2:-build-minimal-wolfssl/pqproxy}"
rounds="${3:-15}"
for b in "$all" "$min"; do
    [ -x "$b" ] || { echo "bench-wolfssl-patches: $b: no such program (build it first)" >&2; exit 1; }
done
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "bench-wolfssl-patches: ROUNDS must be a positive number" >&2; exit 1; }

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
for ((r = 1; r <= rounds; r++)); do
    "$all" bench crypto --quick --json --only tls13 > "$out/all.$r.json"
    "$min" bench crypto --quick --json --only tls13 > "$out/min.$r.json"
done

python3 - "$out" "$rounds" <<'EOF'
import json, sys
out, rounds = sys.argv[1], int(sys.argv[2])

def cpu(kind):
    per = {}
    for r in range(1, rounds + 1):
        with open(f"{out}/{kind}.{r}.json") as f:
            doc = json.load(f)
        for op in doc["operations"]:
            if op["ran"] and op["ok"]:
                per.setdefault((op["algorithm"], op["operation"]), []).append(op["cpu_us_per_op"])
    return {k: min(v) for k, v in per.items()}, doc

a, doc = cpu("all")
m, _ = cpu("min")
print(f"wolfSSL {doc['wolfssl']}, {doc['machine']['cpu']}, {doc['machine']['cpus']} CPUs; "
      f"`bench crypto --quick`, least of {rounds} alternating rounds.\n")
print("| handshake | side | patches 0001-0009 (CPU µs) | 0001 only (CPU µs) | cost of opting out |")
print("|---|---|---:|---:|---:|")
for key in a:
    if key in m:
        alg, side = key
        print(f"| {alg.replace('TLS 1.3 ', '')} | {side.replace('handshake, ', '')} | "
              f"{a[key]:.1f} | {m[key]:.1f} | {100 * (m[key] / a[key] - 1):+.1f} % |")
EOF
