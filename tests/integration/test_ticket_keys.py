#!/usr/bin/env python3
"""Session-ticket keys shared by replicas (tls.ticket_keys): a session that
replica A issued resumes on replica B when both read the same key file (a
Kubernetes Secret) or the same Redis, and falls back to a full handshake
with other keys. The resumed handshake is checked on the wire (OpenSSL's
trace of Node 24's client: the ServerHello carries pre_shared_key and a
key_share, i.e. psk_dhe_ke) and in the proxy (hybrid group, resumption
counted). Key rotation: a changed file is picked up by the stat poll and by
SIGHUP; a bad file is refused at start and ignored (old keys kept) later;
with Redis one replica rotates under a lease and every replica follows."""
import base64
import json
import os
import re
import signal
import subprocess

import pxtest
from pxhelpers import metrics
from pxtest import check, check_eq, check_in, main, pqproxy_bin, wait_until
from test_interop_node import node24
from test_replay_redis import Redis

HYBRID = "X25519MLKEM768"
NODE_RESUME = os.path.join(pxtest.HERE, "peers", "node_resume.mjs")


def new_key():
    return base64.b64encode(os.urandom(32)).decode()


def write_keys(path, lines):
    """Replaced in one rename, as a Secret update swaps its files."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("".join(l + "\n" for l in lines))
    os.replace(tmp, path)


def connect(h, proxy, session=None):
    """One Node connection offering session; (result, ServerHello trace)."""
    n = h.node_runs = getattr(h, "node_runs", 0) + 1
    arg = {"port": proxy.port, "ca": os.path.join(h.certgen(), "ca.crt"), "session": session}
    r = subprocess.run([node24(), NODE_RESUME, json.dumps(arg)], capture_output=True, text=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    path = h.path(f"node-{n}.trace")
    with open(path, "w") as f:
        f.write(r.stdout + r.stderr)
    h.add_log(f"node run {n}", path)
    res = json.loads(r.stdout.strip().splitlines()[-1])
    check(res["ok"] and res["status"] == 200, f"request through {proxy.proc.name}: {res}")
    m = re.search(r"ServerHello, Length=.*?(?=\n\S|\Z)", r.stderr, re.S)
    check(m, "OpenSSL's trace shows the ServerHello")
    return res, m.group(0)


def resumed(h, proxy, session):
    """True when proxy resumed session: then checked to be psk_dhe_ke and hybrid."""
    before = metrics(proxy).get("pqproxy_tls_resumptions_total", 0.0)
    res, hello = connect(h, proxy, session)
    if not res["reused"]:
        check("extension_type=psk(41)" not in hello, "a full handshake has no pre_shared_key")
        check_eq(metrics(proxy).get("pqproxy_tls_resumptions_total", 0.0), before,
                 "no resumption counted")
        return False
    check_in("extension_type=psk(41)", hello, "the server accepted the PSK (pre_shared_key)")
    check_in("extension_type=key_share(51)", hello, "psk_dhe_ke: the server sent a key share")
    check_in(f"NamedGroup: {HYBRID}", hello, "a hybrid key share")
    check_eq(metrics(proxy).get("pqproxy_tls_resumptions_total", 0.0), before + 1,
             "the proxy counts the resumption")
    check_eq(proxy.wait_access_log(1)[-1]["group"], HYBRID, "the resumed handshake is hybrid")
    return True


def session_from(h, proxy):
    res, _ = connect(h, proxy)
    check(not res["reused"] and res["session"], f"a fresh session from {proxy.proc.name}")
    return res["session"]


def file_proxy(h, path, name, **tk):
    return h.start_proxy({"tls": {"pq_policy": "require",
                                  "ticket_keys": dict({"source": "file", "file": path,
                                                       "check_interval_ms": 100}, **tk)}},
                         name=name)


def log_count(proxy, text):
    return proxy.proc.stderr_text().count(text)


def wait_log(proxy, text, before, what):
    wait_until(lambda: log_count(proxy, text) > before, timeout=10, msg=what)


def test_file_resumes_across_replicas(h):
    node24()
    h.start_upstream()
    shared, other = h.path("keys"), h.path("other-keys")
    write_keys(shared, ["# the first key seals", new_key(), "", new_key()])
    write_keys(other, [new_key()])
    a, b = file_proxy(h, shared, "replica-a"), file_proxy(h, shared, "replica-b")
    c = file_proxy(h, other, "replica-c")
    s = session_from(h, a)
    check(resumed(h, b, s), "replica B resumes replica A's session")
    check(not resumed(h, c, s), "other keys: a full handshake")
    check(resumed(h, a, s), "and A resumes its own")
    for p in (a, b, c):
        p.stop()
        p.check_clean_exit()


def test_file_rotation(h):
    node24()
    h.start_upstream()
    path = h.path("keys")
    k1, k2, k3 = new_key(), new_key(), new_key()
    write_keys(path, [k1])
    a, b = file_proxy(h, path, "replica-a"), file_proxy(h, path, "replica-b")
    slow = file_proxy(h, path, "replica-sighup", check_interval_ms=60000)
    s1 = session_from(h, a)
    msg = f"2 key(s) from {path} in use"
    write_keys(path, [k2, k1])            # k2 seals, k1 still opens
    for p in (a, b):
        wait_log(p, msg, 0, f"{p.proc.name} re-read the file")
    check(resumed(h, b, s1), "the previous key still opens")
    m = metrics(b)
    check_eq((m["pqproxy_tls_ticket_keys"], m['pqproxy_tls_ticket_key_updates_total{result="ok"}'],
              m['pqproxy_tls_ticket_key_updates_total{result="failed"}']), (2, 1, 0), "metrics")
    s2 = session_from(h, b)
    write_keys(path, [k2])                # k1 retired
    for p in (a, b):
        wait_log(p, f"1 key(s) from {path} in use", 0, f"{p.proc.name} re-read the file")
    check(not resumed(h, a, s1), "a retired key: full handshake")
    check(resumed(h, a, s2), "the current key opens")
    # the slow poller has not looked yet: SIGHUP makes it read the file
    check(not resumed(h, slow, s2), "not re-read yet: k2 is unknown there")
    before = log_count(slow, "configuration reloaded")
    slow.proc.send_signal(signal.SIGHUP)
    wait_log(slow, "configuration reloaded", before, "reloaded")
    check(resumed(h, slow, s2), "SIGHUP re-read the file")
    write_keys(path, [k3])
    wait_log(a, f"1 key(s) from {path} in use", 1, "replica-a re-read the file")
    check(not resumed(h, a, s2), "k2 retired")
    for p in (a, b, slow):
        p.stop()
        p.check_clean_exit()


BAD = [
    ("not base64", ["not base64 at all!"], "line 1: not base64"),
    ("short key", [base64.b64encode(os.urandom(16)).decode()], "line 1: a key is 32 bytes"),
    ("no key", ["# nothing", ""], "no key"),
    ("same key", None, "line 2: the same key twice"),
    ("nine keys", [new_key() for _ in range(9)], "line 9: more than 8 keys"),
]


def test_bad_file(h):
    node24()
    h.start_upstream()
    k = new_key()
    for name, lines, why in BAD:
        path = h.path(f"bad-{name.replace(' ', '-')}")
        write_keys(path, lines or [k, k])
        cfg = h.base_proxy_config()
        cfg["tls"]["ticket_keys"] = {"source": "file", "file": path}
        conf = h.write_config(cfg)
        for cmd in ("check-config", "run"):
            r = subprocess.run([pqproxy_bin(), cmd, "--config", conf], capture_output=True,
                               text=True, timeout=30)
            check(r.returncode != 0, f"{cmd} refuses {name}")
            check_in(f"tls.ticket_keys.file: {path}: {why}", r.stderr, f"{cmd}, {name}")
            check(k not in r.stderr, "no key material in the message")
    missing = h.path("missing")
    cfg = h.base_proxy_config()
    cfg["tls"]["ticket_keys"] = {"source": "file", "file": missing}
    r = subprocess.run([pqproxy_bin(), "check-config", "--config", h.write_config(cfg)],
                       capture_output=True, text=True, timeout=30)
    check_in(f"tls.ticket_keys.file: {missing}: No such file or directory", r.stderr)

    for tk, sig, why in (
            ({"source": "file"}, {}, "tls.ticket_keys.file: required with source \"file\""),
            ({"source": "redis"}, {}, "tls.ticket_keys.source: \"redis\" uses the connection of "
             "signatures.replay_store: set signatures.replay_store.address"),
            ({"source": "disk"}, {}, "tls.ticket_keys.source"),
            ({"check_interval_ms": 50}, {}, "tls.ticket_keys.check_interval_ms"),
            ({"redis_prefix": "a b"}, {}, "tls.ticket_keys.redis_prefix: printable ASCII"),
            ({"rotate": 1}, {}, "tls.ticket_keys.rotate")):
        cfg = h.base_proxy_config()
        cfg["tls"]["ticket_keys"] = tk
        conf = h.write_config(cfg)
        r = subprocess.run([pqproxy_bin(), "check-config", "--config", conf], capture_output=True,
                           text=True, timeout=30)
        check(r.returncode != 0, f"check-config refuses {tk}")
        check_in(f"{conf}: {why}", r.stderr, f"{tk}")

    # later a bad file changes nothing: neither the poll nor SIGHUP
    path = h.path("keys")
    write_keys(path, [k])
    p = file_proxy(h, path, "replica")
    s = session_from(h, p)
    write_keys(path, ["garbage"])
    wait_log(p, f"tls.ticket_keys.file: {path}: line 1: not base64 (", 0, "bad file logged")
    check_in("keeping the 1 ticket key(s) in use", p.proc.stderr_text())
    m = metrics(p)
    check_eq((m["pqproxy_tls_ticket_keys"], m['pqproxy_tls_ticket_key_updates_total{result="failed"}']),
             (1, 1), "one failed check counted, one key in use")
    check(resumed(h, p, s), "the old key still opens")
    before = log_count(p, "reload refused")
    p.proc.send_signal(signal.SIGHUP)
    wait_log(p, "reload refused", before, "SIGHUP with a bad file refused")
    check(resumed(h, p, s), "still the old key")
    p.stop()
    p.check_clean_exit()


def redis_proxy(h, redis, name):
    return h.start_proxy({
        "tls": {"pq_policy": "require",
                "ticket_keys": {"source": "redis", "check_interval_ms": 100,
                                "redis_prefix": "model-a:tickets:"}},
        "signatures": {"replay_store": {"address": f"127.0.0.1:{redis.port}",
                                        "timeout_ms": 500}}}, name=name)


def test_redis_source(h):
    node24()
    redis = Redis(h)
    h.start_upstream()
    a, b = redis_proxy(h, redis, "replica-a"), redis_proxy(h, redis, "replica-b")
    got = "key(s) from redis in use"
    for p in (a, b):
        wait_log(p, got, 0, f"{p.proc.name} has the shared keys")
    check_eq(redis.cli("STRLEN", "model-a:tickets:current"), "32", "one 32-byte key in Redis")
    rotated = "rotated the shared key in redis"
    check_eq(log_count(a, rotated) + log_count(b, rotated), 1, "one replica wrote the first key")
    ttl = int(redis.cli("PTTL", "model-a:tickets:lease"))
    check(3000 * 1000 < ttl <= 3600 * 1000, f"the lease lasts a rotation period: {ttl} ms")
    s1 = session_from(h, a)
    check(resumed(h, b, s1), "replica B resumes replica A's session")

    # the lease runs out (here: deleted): the next replica to look rotates
    for i in range(2):
        seen = [log_count(p, got) for p in (a, b)]
        redis.cli("DEL", "model-a:tickets:lease")
        for p, n in zip((a, b), seen):
            wait_log(p, got, n, f"{p.proc.name} follows rotation {i + 1}")
        if i == 0:
            check(resumed(h, b, s1), "the previous key still opens")
            s2 = session_from(h, b)
    check_eq(log_count(a, rotated) + log_count(b, rotated), 3, "one rotation each time")
    check(not resumed(h, a, s1), "two rotations later: full handshake")
    check(resumed(h, a, s2), "the previous key opens")

    # a current key that is not 32 bytes (written by something else): ignored
    redis.cli("SET", "model-a:tickets:current", "short")
    for p in (a, b):
        wait_log(p, "no 32-byte current key); keeping the 2 ticket key(s) in use", 0,
                 f"{p.proc.name} refuses the bad key")
    check(resumed(h, b, s2), "the keys in use stay")
    seen = [log_count(p, "1 " + got) for p in (a, b)]
    redis.cli("DEL", "model-a:tickets:current", "model-a:tickets:previous")
    for p, n in zip((a, b), seen):
        wait_log(p, "1 " + got, n, f"{p.proc.name} takes the new key")
    s2 = session_from(h, a)
    check(resumed(h, b, s2), "shared again")

    # Redis gone: the keys in use stay
    redis.kill()
    for p in (a, b):
        wait_log(p, "unavailable or slower than timeout_ms; keeping the 1 ticket key(s) in use", 0,
                 f"{p.proc.name} logs the outage")
    check(resumed(h, b, s2), "resumption still works without Redis")
    check(metrics(b)['pqproxy_tls_ticket_key_updates_total{result="failed"}'] > 0, "failures counted")
    seen = [log_count(p, got) for p in (a, b)]
    redis.start()
    for p, n in zip((a, b), seen):
        wait_log(p, got, n, f"{p.proc.name} is back on Redis")
    for p in (a, b):
        p.stop()
        p.check_clean_exit()


if __name__ == "__main__":
    main([test_file_resumes_across_replicas, test_file_rotation, test_bad_file,
          test_redis_source])
