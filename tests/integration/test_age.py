#!/usr/bin/env python3
"""pqproxy seal / open / keygen --alg age-pq|age-x25519 (docs/sealing.md):
round trips of both recipient types at the chunk boundaries and for a
multi-MB file in bounded memory; interoperability both ways with the
independent npm age-encryption (tests/npm, on Node 24); and every malformed
input refused with a clear error and no output file: bad header MAC,
unknown stanza, wrong key, truncated, reordered and extended payloads,
oversized header, bad Bech32 checksums; ASCII armor (seal --armor, armored
input to open) in the spec's strict form, both ways with age-encryption."""
import base64
import os
import subprocess

from pxtest import check, check_eq, check_in, main, pqproxy_bin
from pxhelpers import node24, npm_tests_modules, pattern

HERE = os.path.dirname(os.path.abspath(__file__))
AGE_MJS = os.path.join(HERE, "peers", "age.mjs")
CHUNK = 65536
TAG = 16


def b64d(s):
    return base64.b64decode(s + b"=" * (-len(s) % 4))


def b64e(b):
    return base64.b64encode(b).rstrip(b"=")


def px(*args):
    return subprocess.run([pqproxy_bin(), *args], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def keygen(h, alg, name):
    path = h.path(name)
    r = px("keygen", "--alg", alg, "--out", path)
    check_eq(r.returncode, 0, r.stderr)
    rcpt = r.stdout.strip()
    with open(path) as f:
        text = f.read()
    check_eq(os.stat(path).st_mode & 0o777, 0o600, "the identity file is private")
    check_in(f"# public key: {rcpt}\n", text)
    return path, rcpt, text.strip().splitlines()[-1]


def write(h, name, data):
    with open(h.path(name), "wb") as f:
        f.write(data)
    return h.path(name)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def seal(h, rcpts, data, name="sealed.age", extra=()):
    src = write(h, name + ".in", data)
    args = ["seal", *extra]
    for r in rcpts:
        args += ["-r", r]
    r = px(*args, "-o", h.path(name), src)
    check_eq(r.returncode, 0, r.stderr)
    return h.path(name)


def check_clean(r):
    check("Sanitizer" not in r.stderr and "runtime error" not in r.stderr, r.stderr)


def open_fails(h, ident, sealed_bytes, why):
    """open refuses the file, names why, and leaves no output or temp file."""
    d = h.path("fail")
    os.makedirs(d, exist_ok=True)
    src = write(h, "fail.age", sealed_bytes)
    out = os.path.join(d, "plain")
    r = px("open", "-i", ident, "-o", out, src)
    check_clean(r)
    check_eq(r.returncode, 1, f"{why}: {r.stdout} {r.stderr}")
    check_in(why, r.stderr)
    check_eq(os.listdir(d), [], f"{why}: nothing written")


def test_round_trip_both_kinds(h):
    for alg, flags in (("age-pq", ()), ("age-x25519", ("--allow-classical",))):
        ident, rcpt, _ = keygen(h, alg, f"{alg}.txt")
        check(rcpt.startswith("age1pq1" if alg == "age-pq" else "age1"), rcpt)
        for n in (0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK):
            data = pattern(n, n)
            sealed = seal(h, [rcpt], data, extra=flags)
            body = read(sealed)
            chunks = max(1, -(-n // CHUNK))
            hdr_len = body.index(b"\n---") + 1 + len("--- ") + 43 + 1
            check_eq(len(body), hdr_len + 16 + n + chunks * TAG, f"{alg} {n}: size")
            out = h.path("opened")
            r = px("open", "-i", ident, "-o", out, sealed)
            check_eq(r.returncode, 0, r.stderr)
            check_eq(read(out), data, f"{alg} {n} bytes")
            check_eq(os.stat(out).st_mode & 0o777, 0o600)


def test_classical_needs_allow_classical(h):
    _, pq, _ = keygen(h, "age-pq", "pq.txt")
    _, x, _ = keygen(h, "age-x25519", "x.txt")
    src = write(h, "in", b"weights")
    for rcpts, why in (([pq, x], "refusing to mix 1 X25519 recipient"), ([x], "no post-quantum one")):
        args = [a for r in rcpts for a in ("-r", r)]
        r = px("seal", *args, "-o", h.path("out.age"), src)
        check_eq(r.returncode, 2, r.stderr)
        check_in(why, r.stderr)
        check_in("harvest now, decrypt later" if len(rcpts) > 1 else "--allow-classical", r.stderr)
        check(not os.path.exists(h.path("out.age")))
    r = px("seal", "-r", pq, "-o", "-", src)
    check_eq(r.returncode, 2, r.stderr)
    check_in("-o - (stdout) is not supported", r.stderr)
    # with the flag, both identities open the mixed file
    sealed = seal(h, [pq, x], b"weights", extra=("--allow-classical",))
    for ident in ("pq.txt", "x.txt"):
        r = px("open", "-i", h.path(ident), "-o", h.path("o"), sealed)
        check_eq((r.returncode, read(h.path("o"))), (0, b"weights"), r.stderr)


def test_large_file_constant_memory(h):
    """RSS while sealing and opening 48 MiB stays within a few MiB of 1 MiB's,
    binary and armored."""
    ident, rcpt, _ = keygen(h, "age-pq", "id.txt")
    rss = {}
    for mib in (1, 48):
        src = h.path(f"big{mib}")
        with open(src, "wb") as f:
            for i in range(mib * 16):
                f.write(pattern(i * CHUNK, CHUNK) if i % 2 else os.urandom(CHUNK))
        for step, args in (("seal", ["seal", "-r", rcpt, "-o", src + ".age", src]),
                           ("open", ["open", "-i", ident, "-o", src + ".out", src + ".age"]),
                           ("seal-armor", ["seal", "-a", "-r", rcpt, "-o", src + ".asc", src]),
                           ("open-armor", ["open", "-i", ident, "-o", src + ".out2", src + ".asc"])):
            p = subprocess.Popen([pqproxy_bin(), *args], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE)
            _, status, usage = os.wait4(p.pid, 0)
            p.returncode = os.waitstatus_to_exitcode(status)
            err = p.stderr.read().decode()
            p.stderr.close()
            check_eq(p.returncode, 0, err)
            rss[(step, mib)] = usage.ru_maxrss
        check_eq(os.path.getsize(src + ".out"), mib << 20)
        check(read(src + ".out") == read(src), f"{mib} MiB round trip")
        check(read(src + ".out2") == read(src), f"{mib} MiB armored round trip")
        for ext in (".out", ".out2", ".asc"):
            os.unlink(src + ext)
    for step in ("seal", "open", "seal-armor", "open-armor"):
        grew = rss[(step, 48)] - rss[(step, 1)]
        check(grew < 8 * 1024, f"{step}: RSS grew by {grew} KiB from 1 MiB to 48 MiB: {rss}")


def node_age():
    node = node24()
    env = dict(os.environ, NODE_PATH=npm_tests_modules("age-encryption"))
    return lambda *a: subprocess.run([node, AGE_MJS, *a], capture_output=True, text=True,
                                     timeout=120, env=env)


def test_interop_age_encryption(h):
    """npm age-encryption opens what pqproxy seals, and the reverse, for
    both recipient types and multi-chunk payloads."""
    age = node_age()
    data = pattern(7, 2 * CHUNK + 100)
    src = write(h, "plain", data)
    for alg, kind in (("age-pq", "pq"), ("age-x25519", "x25519")):
        flags = () if kind == "pq" else ("--allow-classical",)
        ident, rcpt, secret = keygen(h, alg, f"{kind}.txt")
        sealed = seal(h, [rcpt], data, extra=flags)
        r = age("decrypt", secret, sealed, h.path("node.out"))
        check_eq(r.returncode, 0, f"age-encryption opens pqproxy's {kind}: {r.stderr}")
        check_eq(read(h.path("node.out")), data)
        # the other way: keys and file from age-encryption
        r = age("keygen", kind)
        check_eq(r.returncode, 0, r.stderr)
        nsecret, nrcpt = r.stdout.split()
        check(nrcpt.startswith("age1pq1" if kind == "pq" else "age1"), nrcpt)
        r = age("encrypt", nrcpt, src, h.path("node.age"))
        check_eq(r.returncode, 0, r.stderr)
        nid = write(h, f"node-{kind}.txt", (nsecret + "\n").encode())
        r = px("open", "-i", nid, "-o", h.path("px.out"), h.path("node.age"))
        check_eq(r.returncode, 0, f"pqproxy opens age-encryption's {kind}: {r.stderr}")
        check_eq(read(h.path("px.out")), data)
        # and pqproxy seals to age-encryption's recipient
        sealed = seal(h, [nrcpt], data, name="to-node.age", extra=flags)
        r = age("decrypt", nsecret, sealed, h.path("node2.out"))
        check_eq((r.returncode, read(h.path("node2.out"))), (0, data), r.stderr)


def test_malformed_inputs_refused(h):
    ident, rcpt, _ = keygen(h, "age-pq", "id.txt")
    other, _, _ = keygen(h, "age-pq", "other.txt")
    data = pattern(3, 3 * CHUNK + 10)
    good = read(seal(h, [rcpt], data))
    hdr_end = good.index(b"\n---") + 1
    body_off = good.index(b"\n", hdr_end) + 1
    payload = body_off + 16
    mac_at = hdr_end + 4
    full = CHUNK + TAG
    c0, c1 = good[payload:payload + full], good[payload + full:payload + 2 * full]

    open_fails(h, other, good, "wrong key")
    flipped = b"A" if good[mac_at:mac_at + 1] != b"A" else b"B"
    open_fails(h, ident, good[:mac_at] + flipped + good[mac_at + 1:], "header MAC mismatch")
    # a stanza added to the header breaks the MAC too
    extra = b"-> extra-stanza arg\nAAAA\n"
    open_fails(h, ident, good[:hdr_end] + extra + good[hdr_end:], "header MAC mismatch")
    # a file whose only stanza is of an unknown type
    unknown = good.replace(b"-> mlkem768x25519 ", b"-> frobnicate ", 1)
    open_fails(h, ident, unknown, "unknown type 'frobnicate'")
    open_fails(h, ident, good[:-1], "chunk 3 failed to authenticate")
    open_fails(h, ident, good[:payload + 2 * full], "chunk 1 failed to authenticate")
    open_fails(h, ident, good[:payload + 8], "shorter than its tag")
    open_fails(h, ident, good[:body_off + 5], "no payload nonce")
    open_fails(h, ident, good[:hdr_end - 30], "header truncated")
    open_fails(h, ident, good + b"x", "chunk 3 failed to authenticate")
    # reordered chunks
    open_fails(h, ident, good[:payload] + c1 + c0 + good[payload + 2 * full:], "chunk 0 failed")
    # data appended after a final chunk that is full: named as such
    exact = read(seal(h, [rcpt], pattern(0, 2 * CHUNK), name="exact.age"))
    open_fails(h, ident, exact + b"trailing", "data after the final chunk")
    # the last full chunk alone (its successor cut off) is not a valid end
    open_fails(h, ident, exact[:len(exact) - full], "chunk 0 failed to authenticate")
    open_fails(h, ident, b"age-encryption.org/v1\n-> X25519 " + b"A" * 70000 + b"\n", "header longer than")
    open_fails(h, ident, b"", "empty input")
    open_fails(h, ident, b"not age\n", "not an age v1 file")
    # body lines: 64 columns then a shorter one; non-canonical base64
    st = good.index(b"\n", good.index(b"-> ")) + 1
    open_fails(h, ident, good[:st] + b"A" * 65 + b"\n" + good[st:], "canonical unpadded base64")
    open_fails(h, ident, good.replace(b"-> mlkem768x25519 ", b"-> mlkem768x25519 x ", 1),
               "malformed mlkem768x25519 stanza")
    # after the C2SP CCTV age cases hybrid_long_file_key, hybrid_x25519_arg,
    # hybrid_uppercase: a 33-byte body, a 32-byte share, the type in capitals
    body_end = good.index(b"\n", st)
    open_fails(h, ident, good[:st] + b"A" * 44 + good[body_end:], "malformed mlkem768x25519 stanza")
    arg_end = st - 1
    arg_start = good.index(b"-> mlkem768x25519 ") + len(b"-> mlkem768x25519 ")
    open_fails(h, ident, good[:arg_start] + b"A" * 43 + good[arg_end:], "malformed mlkem768x25519 stanza")
    open_fails(h, ident, good.replace(b"-> mlkem768x25519 ", b"-> MLKEM768X25519 ", 1),
               "unknown type 'MLKEM768X25519'")
    # hybrid_low_order: the X25519 half of the encapsulation is a point of
    # order 8, so its shared secret is the forbidden all-zero value
    enc = b64d(good[arg_start:arg_end])
    low = bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f11d7")
    open_fails(h, ident, good[:arg_start] + b64e(enc[:-32] + low) + good[arg_end:],
               "low-order X25519 share")
    # x25519_low_order_high_bit: the same point as an X25519 stanza's share
    xid, xr, _ = keygen(h, "age-x25519", "xlow.txt")
    xgood = read(seal(h, [xr], b"x", name="xlow.age", extra=("--allow-classical",)))
    a0 = xgood.index(b"-> X25519 ") + len(b"-> X25519 ")
    a1 = xgood.index(b"\n", a0)
    open_fails(h, xid, xgood[:a0] + b64e(low) + xgood[a1:], "X25519 stanza with a low-order share")
    # scrypt_and_x25519: a passphrase stanza must be alone, even beside one that opens
    xend = xgood.index(b"\n---") + 1
    open_fails(h, xid, xgood[:xend] + b"-> scrypt AAAAAAAAAAAAAAAAAAAAAA 10\nAAAA\n" + xgood[xend:],
               "an scrypt stanza must be the only stanza")

    # Bech32: a damaged recipient and a damaged identity
    bad = rcpt[:-1] + ("q" if rcpt[-1] != "q" else "p")
    r = px("seal", "-r", bad, "-o", h.path("x.age"), h.path("sealed.age.in"))
    check_eq(r.returncode, 2, r.stderr)
    check_in("bad checksum", r.stderr)
    check(not os.path.exists(h.path("x.age")))
    lines = read(ident).decode().splitlines()
    sec = lines[-1]
    badid = write(h, "bad-id.txt", ("\n".join(lines[:-1] + [sec[:-1] + ("Q" if sec[-1] != "Q" else "P")])
                                    + "\n").encode())
    r = px("open", "-i", badid, "-o", h.path("y"), h.path("sealed.age"))
    check_eq(r.returncode, 1, r.stderr)
    check_in(f"{badid} line 3: bech32: bad checksum", r.stderr)
    check(not os.path.exists(h.path("y")))


def test_failed_open_keeps_previous_output(h):
    """The output is renamed into place only on success: an existing file at
    -o survives a failed open untouched."""
    ident, rcpt, _ = keygen(h, "age-pq", "id.txt")
    good = read(seal(h, [rcpt], pattern(1, CHUNK * 2)))
    out = write(h, "out", b"previous")
    bad = write(h, "bad.age", good[:-3])
    r = px("open", "-i", ident, "-o", out, bad)
    check_eq(r.returncode, 1)
    check_eq(read(out), b"previous")
    check_eq(sorted(f for f in os.listdir(h.path()) if f.startswith(".")), [])


def armor_lines(text):
    """The body lines of an armored file, after checking its frame."""
    check(text.startswith(b"-----BEGIN AGE ENCRYPTED FILE-----\n"), text[:60])
    check(text.endswith(b"\n-----END AGE ENCRYPTED FILE-----\n"), text[-60:])
    return text.split(b"\n")[1:-2]


def test_armor_round_trip_and_format(h):
    """seal --armor / -a writes strict PEM: 64-column lines, the last one
    1-64 columns, canonical padding, the END line and a final newline; its
    base64 decodes to an ordinary age file; open reads it back (also with
    CRLF line ends and whitespace around the block) at sizes that end the
    armor on a full and on a short line."""
    ident, rcpt, _ = keygen(h, "age-pq", "id.txt")
    for size in (0, 1, CHUNK - 1, CHUNK, 2 * CHUNK + 5, 3 * CHUNK):
        data = pattern(size, size)
        for flag in ("--armor", "-a"):
            text = read(seal(h, [rcpt], data, name="a.age", extra=(flag,)))
            lines = armor_lines(text)
            check(all(len(x) == 64 for x in lines[:-1]), f"{size}: full lines")
            check(0 < len(lines[-1]) <= 64 and len(lines[-1]) % 4 == 0, f"{size}: last line")
            binary = base64.b64decode(b"".join(lines), validate=True)
            check_eq(base64.b64encode(binary), b"".join(lines), f"{size}: canonical")
            check(binary.startswith(b"age-encryption.org/v1\n"))
            # the decoded file is ordinary age, and open takes either form
            for name, blob in (("bin.age", binary), ("a.age", text),
                               ("crlf.age", text.replace(b"\n", b"\r\n")),
                               ("ws.age", b" \n\t\r\n" + text + b"\n \n"),
                               ("cr-at-eof.age", text[:-1] + b"\r")):
                src = write(h, name, blob)
                r = px("open", "-i", ident, "-o", h.path("out"), src)
                check_eq(r.returncode, 0, f"{size} {name}: {r.stderr}")
                check_eq(read(h.path("out")), data, f"{size} {name}")
    # a payload that fills the last armor line exactly (file size % 48 == 0)
    full = [n for n in range(4000, 4100) if (len(read(seal(h, [rcpt], pattern(9, n)))) % 48 == 0)]
    check(full, "a size whose sealed file is a multiple of 48 bytes")
    lines = armor_lines(read(seal(h, [rcpt], pattern(9, full[0]), name="f.age", extra=("-a",))))
    check_eq(len(lines[-1]), 64, "the last line is full and END follows it")


def test_armor_interop_age_encryption(h):
    """age-encryption's armor.decode opens pqproxy's armored files, and
    pqproxy opens files age-encryption armored, for both recipient types."""
    age = node_age()
    data = pattern(11, CHUNK + 333)
    src = write(h, "plain", data)
    for alg, kind in (("age-pq", "pq"), ("age-x25519", "x25519")):
        flags = ("--armor",) + (() if kind == "pq" else ("--allow-classical",))
        r = age("keygen", kind)
        check_eq(r.returncode, 0, r.stderr)
        nsecret, nrcpt = r.stdout.split()
        sealed = seal(h, [nrcpt], data, name=f"{kind}.age", extra=flags)
        r = age("armor-decrypt", nsecret, sealed, h.path("node.out"))
        check_eq((r.returncode, read(h.path("node.out"))), (0, data), r.stderr)
        r = age("armor-encrypt", nrcpt, src, h.path("node.age"))
        check_eq(r.returncode, 0, r.stderr)
        armor_lines(read(h.path("node.age")))
        nid = write(h, f"node-{kind}.txt", (nsecret + "\n").encode())
        r = px("open", "-i", nid, "-o", h.path("px.out"), h.path("node.age"))
        check_eq((r.returncode, read(h.path("px.out"))), (0, data), r.stderr)


def test_armor_malformed_refused(h):
    """Every deviation from the strict armor is refused with its reason and
    no output (the C2SP testkit's armor_* vectors run in test_age_cctv.py;
    these are the ones it leaves out)."""
    ident, rcpt, _ = keygen(h, "age-pq", "id.txt")
    text = read(seal(h, [rcpt], pattern(5, CHUNK + 77), extra=("-a",)))
    lines = text.split(b"\n")
    end = b"-----END AGE ENCRYPTED FILE-----\n"
    body = text[:-len(end)]
    cases = [
        (text + b"x", "armor: data after the END line"),
        (text + b"\n\n\x00", "armor: data after the END line"),
        (body, "armor: no '-----END AGE ENCRYPTED FILE-----' line"),
        (body[:-1], "armor: no '-----END AGE ENCRYPTED FILE-----' line"),
        (text[:200], "armor: no '-----END AGE ENCRYPTED FILE-----' line"),
        (b"\n".join(lines[:1] + [lines[1] + lines[2]] + lines[3:]), "longer than 64 columns"),
        (b"\n".join(lines[:2] + [lines[2][:60]] + lines[3:]), "follows a short line"),
        # "B" (0b000001) before "=": bits under the padding, whatever the random
        # data (a random character left them zero one time in four, and the
        # line was then a canonical short line)
        (b"\n".join(lines[:2] + [lines[2][:62] + b"B="] + lines[3:]), "not canonical padded base64"),
        (b"\n".join(lines[:2] + [lines[2][:63] + b"\x80"] + lines[3:]), "not canonical"),
        (b"\n".join(lines[:2] + [b"", lines[2]] + lines[3:]), "line 3 is empty"),
        (text.replace(b"FILE-----\n", b"FILE-----  \n", 1), "the first line is not"),
        (b"-----BEGIN AGE ENCRYPTED FILE-----", "the first line is not"),
        (b"-", "the first line is not"),
        # a NUL inside the BEGIN or END line does not end the comparison
        (text.replace(b"FILE-----\n", b"FILE-----\x00x\n", 1), "the first line is not"),
        (body + end.replace(b"-----\n", b"-----\x00\n"), "armor: line"),
    ]
    # stray bits under the padding of the last line
    last = lines[-3]
    if last.endswith(b"="):
        k = len(last.rstrip(b"=")) - 1
        cases.append((text.replace(last + b"\n" + end, last[:k] + b"B" + last[k + 1:] + b"\n" + end),
                      "not canonical padded base64"))
    for blob, why in cases:
        open_fails(h, ident, blob, why)
    # a valid armor of a damaged age file: the age error, not an armor one
    binary = base64.b64decode(b"".join(lines[1:-2]))
    bad = binary[:-1] + bytes([binary[-1] ^ 1])
    enc = base64.b64encode(bad)
    rearmored = (b"-----BEGIN AGE ENCRYPTED FILE-----\n" +
                 b"".join(enc[i:i + 64] + b"\n" for i in range(0, len(enc), 64)) + end)
    open_fails(h, ident, rearmored, "failed to authenticate")


if __name__ == "__main__":
    main([test_round_trip_both_kinds, test_classical_needs_allow_classical,
          test_large_file_constant_memory, test_interop_age_encryption,
          test_malformed_inputs_refused, test_failed_open_keeps_previous_output,
          test_armor_round_trip_and_format, test_armor_interop_age_encryption,
          test_armor_malformed_refused])
