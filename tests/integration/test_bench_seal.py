#!/usr/bin/env python3
"""`pqproxy bench seal` (docs/benchmarks.md): the JSON report's figures are
consistent with each other and with the age format computed here from the
spec's constants, and with a file sealed by `pqproxy seal`. No timing
threshold is asserted: throughput only has to be positive and the ratios
the quotient of the throughputs they name."""
import json
import math
import os
import subprocess

from pxtest import check, check_eq, check_in, main, pqproxy_bin

CHUNK, TAG, NONCE = 65536, 16, 16


def b64len(n):
    """Unpadded base64 length (the age header's encoding)."""
    return math.ceil(n * 4 / 3)


def stanza_bytes(type_, arg, body):
    """'-> TYPE ARG\\n' and the body in 64-column lines, the last one shorter."""
    line = len(f"-> {type_} ") + b64len(arg) + 1
    b = b64len(body)
    return line + b + b // 64 + 1


HEADER_BASE = len("age-encryption.org/v1\n") + len("--- ") + b64len(32) + 1
PQ_STANZA = stanza_bytes("mlkem768x25519", 1088 + 32, 16 + TAG)
X_STANZA = stanza_bytes("X25519", 32, 16 + TAG)


def sealed_size(n, stanzas):
    return HEADER_BASE + stanzas + NONCE + n + TAG * max(1, math.ceil(n / CHUNK))


def bench(h, *args):
    d = h.path("work")
    os.makedirs(d, exist_ok=True)
    r = subprocess.run([pqproxy_bin(), "bench", "seal", "--dir", d, *args], capture_output=True, text=True,
                       timeout=300, stdin=subprocess.DEVNULL)
    check_eq(os.listdir(d), [], "the temporary files are removed")
    return r


def test_json_consistent(h):
    for size in (1048576, 3 * CHUNK + 5, 0):
        r = bench(h, "--size", str(size), "--rounds", "1", "--iterations", "3", "--json")
        check_eq(r.returncode, 0, r.stderr)
        j = json.loads(r.stdout)
        check_eq(j["schema"], "pqproxy-bench-seal/1")
        sz, tp, ratio, fx = j["size"], j["throughput_gbps"], j["ratio_to_raw"], j["fixed_cost"]
        check_eq(sz["plaintext_bytes"], size)
        check_eq(sz["header_base_bytes"], HEADER_BASE)
        check_eq(fx["mlkem768x25519"]["stanza_bytes"], PQ_STANZA)
        check_eq(fx["X25519"]["stanza_bytes"], X_STANZA)
        check_eq(sz["header_bytes"], HEADER_BASE + PQ_STANZA)
        check_eq(sz["sealed_bytes"], sealed_size(size, PQ_STANZA), f"{size}: sealed size")
        check_eq(sz["tag_overhead_pct"], 100 * TAG / CHUNK)
        if size:
            check(abs(sz["overhead_pct"] - 100 * (sz["sealed_bytes"] - size) / size) < 1e-9)
            for k in ("raw_encrypt", "seal", "raw_decrypt", "open", "aead_memory"):
                check(tp[k] > 0, f"{k} throughput {tp[k]}")
            check(abs(ratio["seal"] - tp["seal"] / tp["raw_encrypt"]) < 1e-9 * ratio["seal"])
            check(abs(ratio["open"] - tp["open"] / tp["raw_decrypt"]) < 1e-9 * ratio["open"])
        for kind in ("mlkem768x25519", "X25519"):
            check(fx[kind]["seal_us"] > 0 and fx[kind]["open_us"] > 0, f"{kind}: {fx[kind]}")


def test_sealed_size_matches_the_cli(h):
    """The size the benchmark reports is what `pqproxy seal` writes."""
    size = 2 * CHUNK
    r = bench(h, "--size", str(size), "--rounds", "1", "--iterations", "1", "--json")
    check_eq(r.returncode, 0, r.stderr)
    reported = json.loads(r.stdout)["size"]["sealed_bytes"]
    ident = h.path("id.txt")
    k = subprocess.run([pqproxy_bin(), "keygen", "--alg", "age-pq", "--out", ident], capture_output=True,
                       text=True, timeout=60)
    check_eq(k.returncode, 0, k.stderr)
    with open(h.path("plain"), "wb") as f:
        f.write(os.urandom(size))
    s = subprocess.run([pqproxy_bin(), "seal", "-r", k.stdout.strip(), "-o", h.path("p.age"), h.path("plain")],
                       capture_output=True, text=True, timeout=60)
    check_eq(s.returncode, 0, s.stderr)
    check_eq(os.path.getsize(h.path("p.age")), reported)


def test_markdown_and_usage(h):
    r = bench(h, "--size", "100000", "--rounds", "1", "--iterations", "2")
    check_eq(r.returncode, 0, r.stderr)
    for s in ("raw ChaCha20-Poly1305 encrypt", "× raw", "| mlkem768x25519 |", "| X25519 |",
              f"+{PQ_STANZA} per mlkem768x25519"):
        check_in(s, r.stdout)
    for args, why in ((("--size", "-1"), "--size must be"), (("--rounds", "0"), "--rounds must be"),
                      (("--size", "12x"), "--size must be"), (("--frob",), "--frob")):
        r = bench(h, *args)
        check_eq(r.returncode, 2, r.stderr)
        check_in(why, r.stderr)
    r = bench(h, "--size", "1000", "--dir", h.path("missing"))
    check_eq(r.returncode, 1)
    check_in(h.path("missing"), r.stderr)


if __name__ == "__main__":
    main([test_json_consistent, test_sealed_size_matches_the_cli, test_markdown_and_usage])
