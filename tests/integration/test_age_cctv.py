#!/usr/bin/env python3
"""The C2SP CCTV age test suite (the "testkit", npm package cctv-age 0.2.0,
pinned with its integrity hash in tests/npm/package-lock.json; license
0BSD OR CC0-1.0 OR Unlicense) run against `pqproxy open`, one vector at a time.

Each vector's expectation is checked, not just "it failed":
  success          exit 0 and the SHA-256 of the output equals `payload`
  header failure   exit 1, a header-parse error, no output
  no match         exit 1, "no identity opens this file", no output
  HMAC failure     exit 1, "header MAC mismatch", no output
  payload failure  exit 1, a payload error, no output (pqproxy releases no
                   plaintext from a file that fails, so the vector's partial
                   payload hash has nothing to compare against)
  armor failure    exit 1, an armour error, no output
pqproxy does not offer passphrase (scrypt) files: the vectors that carry a
passphrase and expect success or "no match" must be refused with that reason
(counted apart); every other scrypt vector keeps its expectation."""
import hashlib
import os
import subprocess
import zlib

from pxtest import check, check_eq, main, pqproxy_bin
from pxhelpers import node24, npm_tests_modules

HERE = os.path.dirname(os.path.abspath(__file__))
DUMP_MJS = os.path.join(HERE, "peers", "cctv_dump.mjs")

# How pqproxy's messages map onto the testkit's failure classes.
CLASSES = {
    "header failure": ("not an age", "header", "stanza", "line ", "MAC line", "scrypt",
                       "malformed", "low-order", "empty input"),
    "no match": ("no identity opens this file",),
    "HMAC failure": ("header MAC mismatch",),
    "payload failure": ("payload", "chunk", "data after the final chunk"),
    "armor failure": ("armor",),
    "passphrase refused": ("passphrase (scrypt) age files are not supported",),
}
CLASSES["no match or passphrase"] = CLASSES["no match"] + CLASSES["passphrase refused"]
# Expectations this front end cannot tell apart, with why.
ALIASES = {
    # pqproxy detects armour by a '-' after leading whitespace (as the age CLI
    # does); "garbage" first is therefore read as a binary file whose first
    # line is not the version line
    "armor_garbage_leading": "header failure",
}


def parse_vector(data):
    head, _, body = data.partition(b"\n\n")
    meta = {"identity": []}
    for line in head.decode().splitlines():
        k, _, v = line.partition(": ")
        if k == "identity":
            meta["identity"].append(v)
        else:
            meta[k] = v
    if meta.get("compressed") == "zlib":
        body = zlib.decompress(body)
    return meta, body


def test_cctv_vectors(h):
    node, modules = node24(), npm_tests_modules("cctv-age")
    vdir = h.path("vectors")
    os.mkdir(vdir)
    r = subprocess.run([node, DUMP_MJS, modules, vdir], capture_output=True, text=True, timeout=120)
    check_eq(r.returncode, 0, r.stderr)
    names = sorted(os.listdir(vdir))
    check(len(names) >= 140, f"only {len(names)} vectors in cctv-age")
    # passphrase-only vectors carry no identity: open them with a fresh one
    r = subprocess.run([pqproxy_bin(), "keygen", "--alg", "age-x25519", "--out", h.path("spare.txt")],
                       capture_output=True, text=True, timeout=60)
    check_eq(r.returncode, 0, r.stderr)
    with open(h.path("spare.txt")) as f:
        spare = f.read().strip().splitlines()[-1]
    seen, skipped, failures = {}, [], []
    for name in names:
        with open(os.path.join(vdir, name), "rb") as f:
            meta, body = parse_vector(f.read())
        expect = ALIASES.get(name, meta["expect"])
        seen[meta["expect"]] = seen.get(meta["expect"], 0) + 1
        if "passphrase" in meta and expect in ("success", "no match"):
            skipped.append(name)
            # "no match" stays right too when the stanza is not a real scrypt one
            expect = "passphrase refused" if expect == "success" else "no match or passphrase"
        if not meta["identity"]:
            meta["identity"] = [spare]
        ids = os.path.join(h.path(), f"{name}.id")
        with open(ids, "w") as f:
            f.write("\n".join(meta["identity"]) + "\n")
        src, out = os.path.join(h.path(), f"{name}.age"), os.path.join(h.path(), f"{name}.out")
        with open(src, "wb") as f:
            f.write(body)
        r = subprocess.run([pqproxy_bin(), "open", "-i", ids, "-o", out, src], capture_output=True,
                           text=True, timeout=120, stdin=subprocess.DEVNULL)
        got = None
        if os.path.exists(out):
            with open(out, "rb") as f:
                got = hashlib.sha256(f.read()).hexdigest()
        if expect == "success":
            ok = r.returncode == 0 and got == meta["payload"]
        else:
            msg = r.stderr.lower()
            ok = (r.returncode == 1 and got is None and
                  any(k.lower() in msg for k in CLASSES[expect]) and
                  # a lower-level failure must not hide behind a higher one
                  (expect.startswith("no match") or "no identity opens" not in msg) and
                  (expect == "HMAC failure" or "mac mismatch" not in msg))
        if not ok:
            failures.append(f"{name}: expected {expect}, got exit {r.returncode}, "
                            f"output {'sha256 ' + got if got else 'none'}: {r.stderr.strip()}")
    print(f"cctv-age: {len(names)} vectors {seen}; refused as passphrase files: {skipped}")
    check(not failures, "\n".join(failures))
    check(len(skipped) <= 6, f"more passphrase vectors than expected: {skipped}")


if __name__ == "__main__":
    main([test_cctv_vectors])
