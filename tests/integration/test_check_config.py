"""check-config accepts exactly what `run` accepts: it loads the certificates
and keys (and checks they match), CA files and signature keys, refuses a NUL
inside any string, and says in words what is wrong with a certificate or key
file that is not what it should be."""
import os
import subprocess

from pxtest import check, check_eq, check_in, free_port, main, pqproxy_bin


def run_cmd(*args, timeout=60):
    return subprocess.run([pqproxy_bin(), *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def config(h, cert=None, key=None, extra=None, upstream="127.0.0.1:9"):
    certs = h.certgen()
    cfg = {
        "listen": f"127.0.0.1:{free_port()}",
        "workers": 1,
        "tls": {"certificates": [{"cert": cert or os.path.join(certs, "server.crt"),
                                  "key": key or os.path.join(certs, "server.key")}],
                "pq_policy": "prefer"},
        "upstream": {"address": upstream},
        "admin": {"enabled": False},
    }
    cfg.update(extra or {})
    return cfg


def check_config(h, cfg):
    return run_cmd("check-config", h.write_config(cfg))


def run_refuses(h, cfg):
    """`run` on cfg: it must exit 1 at once (it cannot serve this)."""
    r = run_cmd("run", "--config", h.write_config(cfg), timeout=30)
    check_eq(r.returncode, 1, f"run exit code (stderr: {r.stderr})")
    return r.stderr


def test_valid_config_ok(h):
    r = check_config(h, config(h))
    check_eq(r.returncode, 0, r.stderr)
    check_in(": ok (", r.stdout)


def test_key_not_matching_certificate(h):
    certs = h.certgen()
    cfg = config(h, key=os.path.join(certs, "client.key"))
    r = check_config(h, cfg)
    check_eq(r.returncode, 1, f"check-config must refuse what run refuses: {r.stdout}{r.stderr}")
    check_in("tls.certificates[0].key", r.stderr)
    check_in("does not match the certificate", r.stderr)
    check_in("does not match the certificate", run_refuses(h, cfg))


def test_client_ca_loaded(h):
    bad = h.path("ca-not-pem.crt")
    with open(bad, "w") as f:
        f.write("this is not a certificate\n")
    cfg = config(h)
    cfg["tls"]["client_ca"] = bad
    r = check_config(h, cfg)
    check_eq(r.returncode, 1, r.stdout + r.stderr)
    check_in(f"tls.client_ca: cannot load {bad}: not a PEM certificate", r.stderr)


def test_signature_keys_loaded(h):
    ring = h.path("ring")
    os.makedirs(ring)
    with open(os.path.join(ring, "notes.txt"), "w") as f:
        f.write("not a key\n")
    cfg = config(h, extra={"signatures": {"keyring": ring},
                           "routes": [{"prefix": "/", "verify": "required"}]})
    r = check_config(h, cfg)
    check_eq(r.returncode, 1, r.stdout + r.stderr)
    check_in("signatures.keyring:", r.stderr)
    check_in("unexpected file", r.stderr)

    keys = h.path("keys")
    os.makedirs(keys)
    for name in ("proxy.ecdsa.key", "proxy.mldsa.key"):
        with open(os.path.join(keys, name), "w") as f:
            f.write("garbage\n")
    cfg = config(h, extra={"signatures": {"response_key": os.path.join(keys, "proxy")},
                           "routes": [{"prefix": "/", "sign_responses": True}]})
    r = check_config(h, cfg)
    check_eq(r.returncode, 1, r.stdout + r.stderr)
    check_in("signatures.response_key:", r.stderr)


def test_log_destination_checked(h):
    cfg = config(h, extra={"log": {"access_log": h.path("no-such-dir", "access.log")}})
    r = check_config(h, cfg)
    check_eq(r.returncode, 1, r.stdout + r.stderr)
    check_in("log.access_log: cannot open", r.stderr)
    # a writable place is fine, and check-config creates nothing there
    cfg = config(h, extra={"log": {"access_log": h.path("access.log")}})
    r = check_config(h, cfg)
    check_eq(r.returncode, 0, r.stderr)
    check(not os.path.exists(h.path("access.log")), "check-config created the log file")


def test_nul_in_upstream_refused(h):
    path = h.path("nul.json")
    text = open(h.write_config(config(h))).read()
    text = text.replace('"127.0.0.1:9"', '"127.0.0.1:9\\u0000.attacker.example:80"')
    check_in("\\u0000", text)
    with open(path, "w") as f:
        f.write(text)
    for args in (["check-config", path], ["run", "--config", path]):
        r = run_cmd(*args, timeout=30)
        check_eq(r.returncode, 1, f"{args[0]}: {r.stdout}{r.stderr}")
        check_in(f"{path}: upstream.address: the string contains a NUL character (\\u0000 at line ",
                 r.stderr)


def pem_cases(h):
    """(name, file bytes, expected reason for a certificate, for a key)."""
    certs = h.certgen()
    crt = open(os.path.join(certs, "server.crt"), "rb").read()
    key = open(os.path.join(certs, "server.key"), "rb").read()
    der = subprocess.run(["openssl", "x509", "-outform", "DER", "-in",
                          os.path.join(certs, "ca.crt")], capture_output=True, check=True).stdout
    return [
        ("empty", b"", "the file is empty", "the file is empty"),
        ("blank", b"\n  \n", "the file is empty", "the file is empty"),
        ("text", b"hello\n", 'not a PEM certificate: no "-----BEGIN CERTIFICATE-----" line',
         'not a PEM private key: no "-----BEGIN PRIVATE KEY-----" line'),
        ("der", der, "DER given where PEM is expected", "DER given where PEM is expected"),
        ("swapped", key, 'PEM but not a certificate (it holds "PRIVATE KEY")', None),
        ("swapped-key", crt, None, 'PEM but not a private key (it holds "CERTIFICATE")'),
        ("broken", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
         "malformed certificate PEM", None),
    ]


def test_not_pem_named(h):
    for name, data, cert_why, key_why in pem_cases(h):
        bad = h.path(f"{name}.pem")
        with open(bad, "wb") as f:
            f.write(data)
        for field, why, cfg in (("cert", cert_why, config(h, cert=bad)),
                                ("key", key_why, config(h, key=bad))):
            if why is None:
                continue
            want = f"tls.certificates[0].{field}: cannot load {bad}: {why}"
            r = check_config(h, cfg)
            check_eq(r.returncode, 1, f"{name} as {field}: {r.stdout}{r.stderr}")
            check_in(want, r.stderr, f"{name} as {field}")
            check("unknown error" not in r.stderr, r.stderr)
            check_in(want, run_refuses(h, cfg), f"run, {name} as {field}")


def test_replay_store_tls_files_loaded(h):
    """signatures.replay_store.tls: a CA file that is not PEM, or a client
    key that does not match its certificate, is refused at load (not left
    for the first connection to find)."""
    certs = h.certgen()
    bad = h.path("redis-ca-not-pem.crt")
    with open(bad, "w") as f:
        f.write("not a certificate\n")

    def store(tls):
        return {"signatures": {"keyring": h.path("."), "replay_store": {
            "type": "redis", "address": "127.0.0.1:6379", "tls": tls}}}
    good = {"ca_file": os.path.join(certs, "ca.crt")}
    check_eq(check_config(h, config(h, extra=store(good))).returncode, 0, "a good CA file")
    for tls, what in ((dict(good, ca_file=bad), "redis-ca-not-pem.crt"),
                      (dict(good, cert=os.path.join(certs, "client.crt"),
                            key=os.path.join(certs, "server.key")), "client.crt")):
        cfg = config(h, extra=store(tls))
        r = check_config(h, cfg)
        check_eq(r.returncode, 1, f"check-config must refuse it: {r.stdout}{r.stderr}")
        check_in("signatures.replay_store.tls: ", r.stderr)
        check_in(what, r.stderr)
        check_in("signatures.replay_store.tls: ", run_refuses(h, cfg))


if __name__ == "__main__":
    main([test_valid_config_ok, test_key_not_matching_certificate, test_client_ca_loaded,
          test_signature_keys_loaded, test_log_destination_checked, test_nul_in_upstream_refused,
          test_not_pem_named, test_replay_store_tls_files_loaded])
