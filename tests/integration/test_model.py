#!/usr/bin/env python3
"""pqproxy sign-model / verify-model / open-model (docs/model-signing.md):
manifests of nested directories with both digests verify; every tamper
(content, added, removed, renamed and resized files, edited manifest,
missing, swapped or foreign signatures, the wrong key) fails naming the file
and the reason; symlinks and special files are refused at signing; the
signatures verify with independent tools (OpenSSL's CLI for ECDSA, Python
cryptography for ML-DSA-87 when it has it), which also sign crafted
statements to show that path traversal and absolute paths are refused after
the signatures check; open-model opens a sealed model end to end and, on
every failure, exits 1 leaving the output directory empty."""
import base64
import hashlib
import json
import os
import shutil
import subprocess

from pxtest import check, check_eq, check_in, main, pqproxy_bin, skip
from pxhelpers import pattern


def px(*args):
    return subprocess.run([pqproxy_bin(), *args], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path


def read(path):
    with open(path, "rb") as f:
        return f.read()


def clean(r):
    check("Sanitizer" not in r.stderr and "runtime error" not in r.stderr, r.stderr)
    return r


FILES = {
    "config.json": b'{"layers": 2}\n',
    "empty": b"",
    "variables/variables.index": pattern(3, 1000),
    "variables/variables.data-00000-of-00001": pattern(7, 200_000),
    "assets/deep/er/vocab.txt": b"a\nb\n",
}


def make_model(h, name="model", files=FILES):
    d = h.path(name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for p, data in files.items():
        write(os.path.join(d, p), data)
    return d


def keygen(h, name="k"):
    prefix = h.path("keys", name)
    r = px("keygen", "--out", prefix)
    check_eq(r.returncode, 0, r.stderr)
    return prefix


def sign(h, d, key, out="m.json", digest=None):
    args = ["sign-model", d, "--key", key, "--out", h.path(out)]
    if digest:
        args += ["--digest", digest]
    r = clean(px(*args))
    check_eq(r.returncode, 0, r.stderr)
    return h.path(out)


def verify(d, pub, man):
    return clean(px("verify-model", d, "--pub", pub, "--manifest", man))


def fails(r, *why):
    check_eq(r.returncode, 1, f"{why}: {r.stdout} {r.stderr}")
    for w in why:
        check_in(w, r.stderr)
    check_eq(len(r.stderr.strip().splitlines()), 1, f"one line: {r.stderr}")


def envelope(man):
    with open(man) as f:
        return json.load(f)


def statement(env):
    return json.loads(base64.b64decode(env["payload"]))


def put(h, env, name="edited.json"):
    path = h.path(name)
    with open(path, "w") as f:
        json.dump(env, f)
    return path


def test_sign_verify_ok(h):
    d = make_model(h)
    key = keygen(h)
    for digest, n in (("sha256", 32), ("sha384", 48)):
        man = sign(h, d, key, f"m-{digest}.json", digest)
        r = verify(d, key, man)
        check_eq(r.returncode, 0, r.stderr)
        mid = hashlib.sha256(read(man)).hexdigest()
        check_in(f"OK {d}: 5 files match", r.stdout)
        check_in(f"manifest sha256:{mid}", r.stdout)
        env = envelope(man)
        check_eq(env["payloadType"], "application/vnd.in-toto+json")
        st = statement(env)
        check_eq(st["_type"], "https://in-toto.io/Statement/v1")
        check_eq(st["predicateType"], "https://model_signing/signature/v1.0")
        check_eq(st["predicate"]["serialization"],
                 {"method": "files", "hash_type": digest, "allow_symlinks": False,
                  "ignore_paths": []})
        res = st["predicate"]["resources"]
        check_eq([x["name"] for x in res], sorted(FILES, key=lambda s: s.encode()))
        for x in res:
            data = FILES[x["name"]]
            check_eq((x["algorithm"], x["size"], x["digest"]),
                     (digest, len(data), hashlib.new(digest, data).hexdigest()), x["name"])
        # the subject digest: SHA-256 over the raw resource digests, as model-signing does
        root = hashlib.sha256(b"".join(bytes.fromhex(x["digest"]) for x in res)).hexdigest()
        check_eq(st["subject"], [{"name": "model", "digest": {"sha256": root}}])
        check_eq(len(base64.b64decode(env["signatures"][1]["sig"])), 4627)
        check_eq(n, len(bytes.fromhex(res[0]["digest"])))


def spki_der(pem_path):
    lines = read(pem_path).decode().strip().splitlines()
    return base64.b64decode("".join(ln for ln in lines if not ln.startswith("-----")))


def pae(env):
    body = base64.b64decode(env["payload"])
    t = env["payloadType"].encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(body), body)


def test_keyids_and_independent_verification(h):
    """keyid = SHA-256 of the key's SPKI DER; the ECDSA signature is DER over
    PAE with SHA-384 and OpenSSL's CLI verifies it; ML-DSA-87 over PAE
    verifies with Python cryptography when it has ML-DSA."""
    d = make_model(h)
    key = keygen(h)
    env = envelope(sign(h, d, key))
    kids = [s["keyid"] for s in env["signatures"]]
    check_eq(kids, [hashlib.sha256(spki_der(key + ".ecdsa.pub")).hexdigest(),
                    hashlib.sha256(spki_der(key + ".mldsa.pub")).hexdigest()])
    write(h.path("pae.bin"), pae(env))
    write(h.path("sig.der"), base64.b64decode(env["signatures"][0]["sig"]))
    if shutil.which("openssl"):
        r = subprocess.run(["openssl", "dgst", "-sha384", "-verify", key + ".ecdsa.pub",
                            "-signature", h.path("sig.der"), h.path("pae.bin")],
                           capture_output=True, text=True)
        check_eq((r.returncode, r.stdout.strip()), (0, "Verified OK"), r.stderr)
    crypto = mldsa_crypto()
    if crypto:
        pub = crypto.load_pem_public_key(read(key + ".mldsa.pub"))
        pub.verify(base64.b64decode(env["signatures"][1]["sig"]), pae(env))


def test_tampered_directory_fails(h):
    key = keygen(h)
    base = make_model(h, "orig")
    man = sign(h, base, key)
    cases = [
        ("byte changed", lambda d: write(os.path.join(d, "variables/variables.index"),
                                         b"X" + FILES["variables/variables.index"][1:]),
         ["variables/variables.index: SHA-256 digest differs from the manifest"]),
        ("file added", lambda d: write(os.path.join(d, "assets/new.txt"), b"new"),
         ["assets/new.txt: not in the manifest (extra file)"]),
        ("empty file added", lambda d: write(os.path.join(d, "zzz"), b""),
         ["zzz: not in the manifest (extra file)"]),
        ("file removed", lambda d: os.unlink(os.path.join(d, "config.json")),
         ["config.json: missing (listed in the manifest)"]),
        ("file renamed", lambda d: os.rename(os.path.join(d, "empty"), os.path.join(d, "empty2")),
         ["empty: missing (listed in the manifest)"]),
        ("size", lambda d: write(os.path.join(d, "config.json"), FILES["config.json"] + b" "),
         ["config.json: size 15 bytes, the manifest says 14"]),
        ("symlink", lambda d: os.symlink("config.json", os.path.join(d, "link")),
         ["link: refused: a symbolic link"]),
        ("fifo", lambda d: os.mkfifo(os.path.join(d, "variables", "pipe")),
         ["variables/pipe: refused: a special file"]),
    ]
    for what, mutate, why in cases:
        d = h.path("t")
        shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(base, d)
        mutate(d)
        fails(verify(d, key, man), *why)
    # and the untouched copy passes
    d = h.path("t")
    shutil.rmtree(d)
    shutil.copytree(base, d)
    check_eq(verify(d, key, man).returncode, 0)


def test_tampered_manifest_fails(h):
    key, other = keygen(h), keygen(h, "other")
    d = make_model(h)
    man = sign(h, d, key)
    man2 = sign(h, d, other, "m2.json")
    env, env2 = envelope(man), envelope(man2)
    ekid, mkid = (s["keyid"] for s in env["signatures"])

    def edited(fn):
        e = json.loads(json.dumps(env))
        fn(e)
        return put(h, e)

    def edit_statement(e):
        st = statement(e)
        st["predicate"]["resources"][0]["size"] += 1
        e["payload"] = base64.b64encode(json.dumps(st).encode()).decode()

    cases = [
        ("statement edited", edit_statement, ["the ECDSA P-384 signature does not verify"]),
        ("ML-DSA signature removed", lambda e: e["signatures"].pop(1),
         [f"no ML-DSA-87 signature (keyid {mkid})", "both ECDSA P-384 and ML-DSA-87"]),
        ("ECDSA signature removed", lambda e: e["signatures"].pop(0),
         [f"no ECDSA P-384 signature (keyid {ekid})"]),
        ("signatures swapped", lambda e: e["signatures"].__setitem__(
            slice(None), [{"keyid": ekid, "sig": e["signatures"][1]["sig"]},
                          {"keyid": mkid, "sig": e["signatures"][0]["sig"]}]),
         ["the ECDSA P-384 signature is not a DER ECDSA-Sig-Value"]),
        ("ML-DSA signature of another key", lambda e: e["signatures"][1].__setitem__(
            "sig", env2["signatures"][1]["sig"]), ["the ML-DSA-87 signature does not verify"]),
        ("ECDSA signature of another key", lambda e: e["signatures"][0].__setitem__(
            "sig", env2["signatures"][0]["sig"]), ["the ECDSA P-384 signature does not verify"]),
        ("a third signature", lambda e: e["signatures"].append(env2["signatures"][0]),
         ["signatures: must list between 1 and 2 signatures, got 3"]),
        ("payload type", lambda e: e.__setitem__("payloadType", "application/json"),
         ['payloadType must be "application/vnd.in-toto+json"']),
        ("unknown member", lambda e: e.__setitem__("extra", 1), ["extra: unknown key"]),
        ("no signatures", lambda e: e.__setitem__("signatures", []), ["signatures: must list between 1 and 2 signatures, got 0"]),
    ]
    for what, fn, why in cases:
        fails(verify(d, key, edited(fn)), *why)
    # the other key's whole envelope: its keyids are not ours
    fails(verify(d, key, man2), "is neither the given ECDSA P-384 key")
    fails(verify(d, other, man), "is neither the given ECDSA P-384 key")
    # not JSON, truncated, empty
    for bad, why in ((read(man)[:-40], "not a DSSE envelope"), (b"", "not a DSSE envelope"),
                     (b"\xff", "not a DSSE envelope")):
        fails(verify(d, key, write(h.path("bad.json"), bad)), why)
    fails(verify(d, key, h.path("absent.json")), "absent.json: No such file")


def test_sign_refusals(h):
    key = keygen(h)
    d = make_model(h)
    os.symlink("config.json", os.path.join(d, "variables", "link"))
    r = clean(px("sign-model", d, "--key", key, "--out", h.path("m.json")))
    fails(r, "variables/link: refused: a symbolic link")
    check(not os.path.exists(h.path("m.json")))
    os.unlink(os.path.join(d, "variables", "link"))
    os.mkfifo(os.path.join(d, "fifo"))
    fails(clean(px("sign-model", d, "--key", key, "--out", h.path("m.json"))),
          "fifo: refused: a special file")
    os.unlink(os.path.join(d, "fifo"))
    write(os.path.join(d, "back\\slash"), b"x")
    fails(clean(px("sign-model", d, "--key", key, "--out", h.path("m.json"))),
          "back\\slash: refused: the path has a control character or a backslash")
    os.unlink(os.path.join(d, "back\\slash"))
    write(os.path.join(d, "new\nline"), b"x")
    r = clean(px("sign-model", d, "--key", key, "--out", h.path("m.json")))
    fails(r, "new?line: refused: the path has a control character")
    os.unlink(os.path.join(d, "new\nline"))
    fails(clean(px("sign-model", d, "--key", key, "--out", os.path.join(d, "m.json"))),
          "refused: the manifest would lie inside")
    os.makedirs(h.path("void"))
    fails(clean(px("sign-model", h.path("void"), "--key", key, "--out", h.path("m.json"))),
          "no regular file under it")
    r = clean(px("sign-model", d, "--key", key, "--out", h.path("m.json"), "--digest", "md5"))
    check_eq(r.returncode, 2, r.stderr)
    check_in("--digest must be sha256 or sha384", r.stderr)
    fails(clean(px("sign-model", d, "--key", h.path("nokey"), "--out", h.path("m.json"))),
          "nokey")


def mldsa_crypto():
    """Python cryptography with ML-DSA (OpenSSL >= 3.5 underneath), or None."""
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import mldsa  # noqa: F401
        return serialization
    except ImportError:
        return None


def sign_statement(key, st):
    """A DSSE envelope over st signed with the key pair at key (both keys),
    with Python cryptography: statements sign-model would never write."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    ser = mldsa_crypto()
    ek = ser.load_pem_private_key(read(key + ".ecdsa.key"), None)
    mk = ser.load_pem_private_key(read(key + ".mldsa.key"), None)
    body = json.dumps(st).encode()
    env = {"payloadType": "application/vnd.in-toto+json",
           "payload": base64.b64encode(body).decode(), "signatures": []}
    data = pae(env)
    env["signatures"] = [
        {"keyid": hashlib.sha256(spki_der(key + ".ecdsa.pub")).hexdigest(),
         "sig": base64.b64encode(ek.sign(data, ec.ECDSA(hashes.SHA384()))).decode()},
        {"keyid": hashlib.sha256(spki_der(key + ".mldsa.pub")).hexdigest(),
         "sig": base64.b64encode(mk.sign(data)).decode()}]
    return env


def test_signed_bad_paths_refused(h):
    """Validly signed statements whose paths are unclean are refused after the
    signatures verify, before any file is touched."""
    if not mldsa_crypto():
        skip("Python cryptography without ML-DSA (tests/unit/test_manifest.c covers these)")
    key = keygen(h)
    d = make_model(h)
    st = statement(envelope(sign(h, d, key)))
    # the independently signed, unchanged statement verifies
    check_eq(verify(d, key, put(h, sign_statement(key, st))).returncode, 0)
    for name, why in (("../escape", "a '.' or '..' component"),
                      ("/etc/passwd", "an absolute path"),
                      ("a/../../b", "a '.' or '..' component"),
                      ("a//b", "an empty path component"),
                      ("./a", "a '.' or '..' component")):
        bad = json.loads(json.dumps(st))
        bad["predicate"]["resources"][0]["name"] = name
        bad["predicate"]["resources"].sort(key=lambda x: x["name"].encode())
        man = put(h, sign_statement(key, bad))
        fails(verify(d, key, man), f"name: refused: {why}")
        out = h.path("out-bad")
        r = clean(px("open-model", "--manifest", man, "--pub", key, "--identity-file",
                     h.path("none"), "--in", d, "--out", out))
        check(r.returncode != 0)
        check(not os.path.exists(out), "nothing created")
    # a subject digest that does not match the resources
    bad = json.loads(json.dumps(st))
    bad["subject"][0]["digest"]["sha256"] = "0" * 64
    fails(verify(d, key, put(h, sign_statement(key, bad))), "does not match the resources")


# --- open-model -----------------------------------------------------------------------------

def age_keygen(h, name="id.txt"):
    r = px("keygen", "--alg", "age-pq", "--out", h.path(name))
    check_eq(r.returncode, 0, r.stderr)
    return h.path(name), r.stdout.strip()


def seal_dir(h, d, rcpt, name="sealed"):
    out = h.path(name)
    shutil.rmtree(out, ignore_errors=True)
    for p in FILES:
        dst = os.path.join(out, p + ".age")
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        r = px("seal", "-r", rcpt, "-o", dst, os.path.join(d, p))
        check_eq(r.returncode, 0, r.stderr)
    return out


def open_model(man, key, ident, sealed, out):
    return clean(px("open-model", "--manifest", man, "--pub", key, "--identity-file", ident,
                    "--in", sealed, "--out", out))


def tree(d):
    return sorted(os.path.relpath(os.path.join(r, f), d) for r, _, fs in os.walk(d) for f in fs)


def test_open_model_ok(h):
    key = keygen(h)
    d = make_model(h)
    ident, rcpt = age_keygen(h)
    for digest in ("sha256", "sha384"):
        man = sign(h, d, key, f"m-{digest}.json", digest)
        sealed = seal_dir(h, d, rcpt)
        out = h.path(f"out-{digest}")
        r = open_model(man, key, ident, sealed, out)
        check_eq(r.returncode, 0, r.stderr)
        check_in(f"OK opened 5 files of model model into {out}", r.stdout)
        check_eq(tree(out), sorted(FILES))
        for p, data in FILES.items():
            check_eq(read(os.path.join(out, p)), data, p)
        # what it opened verifies as the model
        check_eq(verify(out, key, man).returncode, 0)
    # an existing empty directory is fine too
    os.makedirs(h.path("empty-out"))
    check_eq(open_model(man, key, ident, sealed, h.path("empty-out")).returncode, 0)
    # a Kubernetes Secret/ConfigMap volume: top-level symlinks through ..data
    # into a timestamped directory (both skipped as entries, followed as links)
    kube = h.path("kube")
    shutil.copytree(sealed, os.path.join(kube, "..2026_12_03_04_00_00.1"))
    os.symlink("..2026_12_03_04_00_00.1", os.path.join(kube, "..data"))
    for top in os.listdir(sealed):
        os.symlink(os.path.join("..data", top), os.path.join(kube, top))
    out = h.path("out-kube")
    r = open_model(man, key, ident, kube, out)
    check_eq(r.returncode, 0, r.stderr)
    check_eq(tree(out), sorted(FILES))
    # but signing never follows a symlink
    fails(clean(px("sign-model", kube, "--key", key, "--out", h.path("k.json"))),
          "refused: a symbolic link")


def test_open_model_failures_leave_dir_empty(h):
    key, other = keygen(h), keygen(h, "other")
    d = make_model(h)
    man = sign(h, d, key)
    ident, rcpt = age_keygen(h)
    wrong_ident, _ = age_keygen(h, "wrong.txt")
    good = seal_dir(h, d, rcpt, "good")
    big = "variables/variables.data-00000-of-00001"

    def flip_last(s):
        p = os.path.join(s, big + ".age")
        b = bytearray(read(p))
        b[-5] ^= 1
        write(p, bytes(b))

    def other_content(s):
        # a well-formed sealed file of different content of the same size
        write(h.path("alt"), b"X" * len(FILES[big]))
        check_eq(px("seal", "-r", rcpt, "-o", os.path.join(s, big + ".age"),
                    h.path("alt")).returncode, 0)

    def longer_content(s):
        write(h.path("alt"), FILES["config.json"] + b"more")
        check_eq(px("seal", "-r", rcpt, "-o", os.path.join(s, "config.json.age"),
                    h.path("alt")).returncode, 0)

    cases = [
        ("wrong identity", None, wrong_ident, man, key,
         ["assets/deep/er/vocab.txt.age: no identity opens this file: wrong key"]),
        ("tampered .age", flip_last, ident, man, key, [big + ".age: ", "failed to authenticate"]),
        ("sealed from other content", other_content, ident, man, key,
         [big + ".age: the opened content's SHA-256 digest differs from the manifest's"]),
        ("sealed from longer content", longer_content, ident, man, key,
         ["config.json.age: opens to more than the manifest's 14 bytes"]),
        ("missing .age", lambda s: os.unlink(os.path.join(s, "empty.age")), ident, man, key,
         ["empty.age: missing (listed in the manifest)"]),
        ("extra .age", lambda s: write(os.path.join(s, "variables/extra.age"), b"x"), ident, man,
         key, ["variables/extra.age: refused: a sealed file the manifest does not list"]),
        ("extra plain file", lambda s: write(os.path.join(s, "README"), b"x"), ident, man, key,
         ["README: refused: not a .age file of the manifest"]),
        ("bad signature", None, ident, man, other, ["is neither the given ECDSA P-384 key"]),
    ]
    for what, mutate, idf, m, pub, why in cases:
        s = h.path("s")
        shutil.rmtree(s, ignore_errors=True)
        shutil.copytree(good, s)
        if mutate:
            mutate(s)
        out = h.path("out")
        shutil.rmtree(out, ignore_errors=True)
        r = open_model(m, pub, idf, s, out)
        check_eq(r.returncode, 1, f"{what}: {r.stdout} {r.stderr}")
        for w in why:
            check_in(w, r.stderr, what)
        check(not os.path.exists(out) or os.listdir(out) == [], f"{what}: {out} left empty")
    # a non-empty output directory is refused and left alone
    out = h.path("full")
    write(os.path.join(out, "keep"), b"mine")
    r = open_model(man, key, ident, good, out)
    check_eq(r.returncode, 1, r.stderr)
    check_in("refused: not empty (holds keep)", r.stderr)
    check_eq(os.listdir(out), ["keep"])


def test_open_model_sigterm_leaves_dir_empty(h):
    """SIGTERM while a large file is being opened: exit 1, DIR left empty."""
    import signal
    import time
    key = keygen(h)
    d = h.path("big")
    os.makedirs(d)
    with open(os.path.join(d, "a.bin"), "wb") as f:
        f.write(b"first")
    with open(os.path.join(d, "weights.bin"), "wb") as f:
        for i in range(96):
            f.write(os.urandom(1 << 20))
    man = sign(h, d, key)
    ident, rcpt = age_keygen(h)
    sealed = h.path("big-sealed")
    os.makedirs(sealed)
    for name in ("a.bin", "weights.bin"):
        r = px("seal", "-r", rcpt, "-o", os.path.join(sealed, name + ".age"), os.path.join(d, name))
        check_eq(r.returncode, 0, r.stderr)
    out = h.path("big-out")
    p = subprocess.Popen([pqproxy_bin(), "open-model", "--manifest", man, "--pub", key,
                          "--identity-file", ident, "--in", sealed, "--out", out],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    part = os.path.join(out, "weights.bin")
    deadline = time.time() + 60
    while time.time() < deadline and p.poll() is None:
        if os.path.exists(part) and os.path.getsize(part) > 0:
            break
        time.sleep(0.002)
    check(p.poll() is None, "still opening when signalled (make the file larger?)")
    p.send_signal(signal.SIGTERM)
    stdout, stderr = p.communicate(timeout=60)
    check_eq(p.returncode, 1, stdout + stderr)
    check_in("interrupted by signal 15", stderr)
    check_eq(os.listdir(out), [], "left empty")
    for name in (os.path.join(d, "weights.bin"), os.path.join(sealed, "weights.bin.age")):
        os.unlink(name)


if __name__ == "__main__":
    main([test_sign_verify_ok, test_keyids_and_independent_verification,
          test_tampered_directory_fails, test_tampered_manifest_fails, test_sign_refusals,
          test_signed_bad_paths_refused, test_open_model_ok,
          test_open_model_failures_leave_dir_empty, test_open_model_sigterm_leaves_dir_empty])
