#!/usr/bin/env python3
"""The command line as README.md and docs/ describe it: every command
answers --help/-h on stdout with exit 0 and names a bad option on stderr
with exit 2; run takes its file like check-config; request explains an
http:// URL and a post-quantum refusal; keygen creates its directory as
certgen does; the sign/verify formats of docs/signatures.md section 11; and
one cipher name in request -v, the access log and /metrics."""
import os
import re
import subprocess

from pxtest import check, check_eq, check_in, main, pqproxy_bin
from pxhelpers import metrics

# every command `pqproxy --help` lists, and the options each must refuse
COMMANDS = ["run", "check-config", "certgen", "request", "healthcheck", "inject-webhook",
            "keygen", "sign", "verify", "seal", "open", "sign-model", "verify-model", "open-model",
            "bench", "version"]


def px(*args, input=None):
    return subprocess.run([pqproxy_bin(), *args], capture_output=True, text=True, timeout=60,
                          input=input, stdin=None if input is not None else subprocess.DEVNULL)


def help_commands():
    """The command names `pqproxy --help` lists (first word of each line of
    its commands: section)."""
    r = px("--help")
    check_eq(r.returncode, 0, r.stderr)
    check_eq(r.stderr, "")
    body = r.stdout.split("commands:\n", 1)[1].split("\n\n", 1)[0]
    return [ln.split()[0] for ln in body.splitlines() if ln.startswith("  ") and ln.split()[0][0] != "("]


def test_help_lists_every_command():
    check_eq(help_commands(), COMMANDS)
    # `pqproxy` alone and an unknown command are usage errors
    r = px()
    check_eq((r.returncode, r.stdout), (2, ""))
    r = px("frobnicate")
    check_eq((r.returncode, r.stdout), (2, ""))
    check_in("'frobnicate'", r.stderr)


def test_help_and_bad_options():
    for cmd in COMMANDS:
        for flag in ("--help", "-h"):
            r = px(cmd, flag)
            check_eq(r.returncode, 0, f"{cmd} {flag}: {r.stderr}")
            check(r.stdout.startswith(f"usage: pqproxy {cmd}"), f"{cmd} {flag}: {r.stdout[:80]!r}")
            check_eq(r.stderr, "", f"{cmd} {flag}")
        r = px(cmd, "--no-such-option")
        check_eq(r.returncode, 2, f"{cmd} --no-such-option: {r.stdout} {r.stderr}")
        check_eq(r.stdout, "", f"{cmd}: usage errors go to stderr")
        check_in("'--no-such-option'", r.stderr, f"{cmd} names the bad option")
    # an option that needs a value, given last
    for cmd, opt in (("request", "--cacert"), ("sign", "--key"), ("verify", "--pub"),
                     ("certgen", "--out"), ("healthcheck", "--url"), ("keygen", "--out"),
                     ("check-config", "--config"), ("run", "-c"), ("bench", "--iterations"),
                     ("inject-webhook", "--cert"), ("seal", "-r"), ("open", "--identity")):
        args = [cmd, "crypto", opt] if cmd == "bench" else [cmd, opt]
        r = px(*args)
        check_eq(r.returncode, 2, f"{cmd} {opt}")
        check_in(f"'{opt}' needs a value", r.stderr, cmd)


def test_run_reads_its_file_like_check_config(h):
    missing = h.path("nope.json")
    for args in (["--config", missing], [f"--config={missing}"], ["-c", missing], [missing]):
        for cmd in ("run", "check-config"):
            r = px(cmd, *args)
            check_eq(r.returncode, 1, f"{cmd} {args}: {r.stderr}")
            check_in(f"{missing}: cannot read", r.stderr, f"{cmd} {args} reads the file")
    r = px("run", missing, missing)
    check_eq(r.returncode, 2)


def test_request_explains_refusals(h):
    r = px("request", "-k", "http://localhost:8443/")
    check_eq(r.returncode, 2)
    check_in("https:// URLs only", r.stderr)
    for bad in ("abc", "0", "-5", "10x", "9999999999"):
        r = px("request", "--timeout", bad, "https://localhost:1/")
        check_eq(r.returncode, 2, f"--timeout {bad}: {r.stderr}")
        check_in(f"--timeout: milliseconds 1..3600000, not '{bad}'", r.stderr)
    if "X448" not in px("version").stdout:   # a group this build cannot offer
        r = px("request", "-k", "--groups", "X25519,X448", "https://localhost:8443/")
        check_eq(r.returncode, 2)
        check_in("'X448' is not supported by this build", r.stderr)
    proxy = h.start_proxy({"tls": {"pq_policy": "require"}})
    ca = os.path.join(h.certgen(), "ca.crt")
    r = px("request", "--cacert", ca, "--groups", "X25519", f"https://localhost:{proxy.port}/echo")
    check_eq(r.returncode, 1, r.stderr)
    check_in("the server requires a post-quantum group", r.stderr)
    check("-313" not in r.stderr, r.stderr)


def test_keygen_creates_its_directory(h):
    prefix = h.path("a", "b", "client")
    r = px("keygen", "--out", prefix)
    check_eq(r.returncode, 0, r.stderr)
    for suffix in ("ecdsa.key", "ecdsa.pub", "mldsa.key", "mldsa.pub"):
        check(os.path.exists(f"{prefix}.{suffix}"), suffix)
    certs = h.path("c", "d")
    check_eq(px("certgen", "--out", certs).returncode, 0, "certgen creates its directory too")


def test_sign_verify_formats(h):
    """docs/signatures.md section 11, exactly."""
    key = h.path("k")
    check_eq(px("keygen", "--out", key).returncode, 0)
    body = h.path("body")
    with open(body, "wb") as f:
        f.write(b'{"x":1}')
    req = ["--method", "POST", "--authority", "model.example", "--path", "/p", "--body", body]
    r = px("sign", "--key", key, "--keyid", "k", *req, "--query", "?a=1", "--created", "1767225600")
    check_eq(r.returncode, 0, r.stderr)
    lines = r.stdout.split("\n")
    check_eq(len(lines), 3, "two LF-ended lines")
    check_eq(lines[2], "")
    check(re.fullmatch(r"Content-Digest: sha-256=:[A-Za-z0-9+/]{43}=:", lines[0]), lines[0])
    check(lines[1].startswith('X-Signature: sig1=("@method" "@authority" "@path" "@query" '
                              '"content-digest");created=1767225600;'), lines[1][:120])
    # the output, with CRLF endings and an empty line, is a --headers file
    hf = h.path("h")
    with open(hf, "w", newline="") as f:
        f.write(r.stdout.replace("\n", "\r\n") + "\r\n")
    now = ["--now", "1767225610"]
    for q in (["--query", "a=1"], ["--query", "?a=1"]):   # with or without the '?'
        v = px("verify", "--pub", key, "--keyid", "k", *req, *q, "--headers", hf, *now)
        check_eq(v.returncode, 0, v.stdout + v.stderr)
        check(re.fullmatch(r"OK keyid=k nonce=[A-Za-z0-9_-]{24} created=1767225600 expires=1767225900\n",
                           v.stdout), v.stdout)
    v = px("verify", "--pub", key, "--keyid", "k", *req, "--headers", hf, *now)
    check_eq(v.returncode, 1, "without --query, @query is '?' and the signature fails")
    check(v.stdout.startswith("FAIL ecdsa_invalid: "), v.stdout)
    # stdin, and an empty query is the same as none
    r = px("sign", "--key", key, "--keyid", "k", *req, "--created", "1767225600")
    v = px("verify", "--pub", key, "--keyid", "k", *req, "--query", "", "--headers", "-", *now,
           input=r.stdout)
    check_eq(v.returncode, 0, v.stdout + v.stderr)
    # a response is checked with 30 s of skew either side (signatures.md section 8)
    rs = px("sign", "--key", key, "--keyid", "k", "--response", "--status", "200", "--body", body,
            "--created", "1767225600")
    check_eq(rs.returncode, 0, rs.stderr)
    for t, want in ((1767225600 - 30, "OK"), (1767225600 - 31, "FAIL not_yet_valid"),
                    (1767225900 + 29, "OK"), (1767225900 + 30, "FAIL expired")):
        v = px("verify", "--pub", key, "--keyid", "k", "--response", "--status", "200", "--body", body,
               "--headers", "-", "--now", str(t), input=rs.stdout)
        check(v.stdout.startswith(want), f"response checked at {t}: {v.stdout}")
    # a line without ':' is a usage error
    bad = h.path("bad")
    with open(bad, "w") as f:
        f.write("no colon here\n")
    v = px("verify", "--pub", key, "--keyid", "k", *req, "--headers", bad, *now)
    check_eq(v.returncode, 2, v.stderr)
    check_in("--headers", v.stderr)


def test_one_cipher_name(h):
    """request -v, the access log and /metrics name the suite alike (IANA)."""
    proxy = h.start_proxy()
    ca = os.path.join(h.certgen(), "ca.crt")
    r = px("request", "--cacert", ca, "-v", f"https://localhost:{proxy.port}/echo")
    check_eq(r.returncode, 0, r.stderr)
    m = re.search(r", cipher (\S+)", r.stderr)
    check(m, r.stderr)
    cipher = m.group(1).rstrip(",")
    check_eq(cipher, "TLS_AES_256_GCM_SHA384")
    check_eq(proxy.wait_access_log(1)[0]["cipher"], cipher)
    check_eq(metrics(proxy).get(f'pqproxy_tls_handshakes_total{{group="X25519MLKEM768",hybrid="true",'
                                f'cipher="{cipher}",result="ok"}}'), 1.0)


if __name__ == "__main__":
    main([test_help_lists_every_command, test_help_and_bad_options,
          test_run_reads_its_file_like_check_config, test_request_explains_refusals,
          test_keygen_creates_its_directory, test_sign_verify_formats, test_one_cipher_name])
