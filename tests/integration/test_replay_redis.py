"""The shared replay store (signatures.replay_store, type "redis") with a real
redis-server started here: two pqproxy replicas behind one Redis refuse a
nonce the other has accepted; the same nonce sent to both at once passes
exactly once; with Redis gone, killed, slow or refusing the password, the
on_unavailable policy decides (fail_closed: 503 replay_store_unavailable and
nothing reaches the model; fail_open: accepted and counted), and both recover
by themselves when Redis is back."""
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

from pxhelpers import FakeTcpServer, check_error, metrics
from pxtest import (check, check_eq, free_port, main, pqproxy_bin, read_response, send_raw, skip,
                    tls_connect, wait_until)

ERR = "replay_store_unavailable"


def pq(*args):
    r = subprocess.run([pqproxy_bin(), *args], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError(f"pqproxy {' '.join(args)}: {r.stderr}")
    return r.stdout


def cli_cmd(port, tls_dir=None):
    """redis-cli to a server on port, through TLS when tls_dir has its CA."""
    cmd = ["redis-cli", "-p", str(port)]
    if tls_dir:
        cmd += ["--tls", "--cacert", os.path.join(tls_dir, "ca.crt")]
    return cmd


def tls_server_args(tls_dir, client_certs=False):
    """redis-server/redis-sentinel options for TLS only, with tls_dir's
    server.crt/.key (pqproxy certgen); also to the servers they reach."""
    return ["--tls-cert-file", os.path.join(tls_dir, "server.crt"),
            "--tls-key-file", os.path.join(tls_dir, "server.key"),
            "--tls-ca-cert-file", os.path.join(tls_dir, "ca.crt"),
            "--tls-auth-clients", "yes" if client_certs else "no", "--tls-replication", "yes"]


def tls_redis_or_skip():
    exe = shutil.which("redis-server")
    if not exe or "libssl" not in subprocess.run(["ldd", exe], capture_output=True,
                                                 text=True).stdout:
        skip("redis-server is not installed or built without TLS")


class Redis:
    """A redis-server on a free port, no persistence; kill() and start() again."""

    def __init__(self, h, password=None, tls_dir=None, client_certs=False):
        """tls_dir: TLS only on the port, with that dir's server.crt/.key (pqproxy certgen);
        client_certs: clients must show a certificate signed by its ca.crt."""
        self.client_certs = client_certs
        self.bin = shutil.which("redis-server")
        if not self.bin:
            skip("redis-server is not installed (scripts/deps.sh --test-tools)")
        self.h, self.password, self.port, self.tls_dir = h, password, free_port(), tls_dir
        self.start()

    def start(self):
        # its own directory: a replica's full sync writes dump.rdb there, and
        # a Redis started in a directory that has one loads its keys
        d = self.h.path(f"redis-{self.port}")
        os.makedirs(d, exist_ok=True)
        # repl-diskless-sync-delay 0: Redis 7 otherwise waits 5 s before a
        # replica's first full sync, longer than the tests wait for it
        cmd = [self.bin, "--port", self.port, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--enable-debug-command", "local", "--dir", d,
               "--repl-diskless-sync-delay", "0"]
        if self.tls_dir:
            cmd[1:3] = ["--port", "0", "--tls-port", self.port]
            cmd += tls_server_args(self.tls_dir, self.client_certs)
        if self.password:
            cmd += ["--requirepass", self.password]
        self.proc = self.h.start("redis", cmd, ready="port", port=self.port)

    def kill(self):
        self.proc.stop(signal.SIGKILL)

    def sleep(self, seconds):
        """DEBUG SLEEP in the background: Redis answers nothing meanwhile."""
        return subprocess.Popen(["redis-cli", "-p", str(self.port), "DEBUG", "SLEEP", str(seconds)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def cli(self, *args, timeout=10):
        cmd = cli_cmd(self.port, self.tls_dir) + (["-a", self.password, "--no-auth-warning"]
                                                  if self.password else [])
        return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True,
                              timeout=timeout).stdout.strip()


class Replicas:
    """One keyring, one upstream, n proxies verifying on every route."""

    def __init__(self, h, stores, start=None):
        """start: how a proxy is started (h.start_proxy's signature)."""
        self.h = h
        start = start or h.start_proxy
        d = h.path("keys")
        os.makedirs(os.path.join(d, "ring"))
        pq("keygen", "--alg", "hybrid", "--out", os.path.join(d, "client"))
        for alg in ("ecdsa", "mldsa"):
            os.link(os.path.join(d, f"client.{alg}.pub"), os.path.join(d, "ring", f"client-a.{alg}.pub"))
        self.keys = d
        self.ca = os.path.join(h.certgen(), "ca.crt")
        h.start_upstream()
        self.start = start
        self.proxies = []
        for store in stores:
            self.add(store)
        self.n = 0

    def add(self, store):
        """One more replica, with this replay_store: its index."""
        self.proxies.append(self.start({
            "signatures": {"keyring": os.path.join(self.keys, "ring"), "max_skew_s": 30,
                           "max_validity_s": 300, "replay_store": store},
            "routes": [{"prefix": "/", "verify": "required"}]}, name=f"pqproxy-{len(self.proxies)}"))
        return len(self.proxies) - 1

    def sign(self, path="/echo"):
        self.n += 1
        body = f'{{"n": {self.n}}}'.encode()
        bf = self.h.path(f"body-{self.n}.bin")
        with open(bf, "wb") as f:
            f.write(body)
        out = pq("sign", "--key", os.path.join(self.keys, "client"), "--keyid", "client-a",
                 "--method", "POST", "--authority", "localhost", "--path", path, "--body", bf)
        return [tuple(l.split(": ", 1)) for l in out.strip().splitlines()], body

    def send(self, i, signed, path="/echo"):
        hdrs, body = signed
        s = tls_connect(self.proxies[i].port, self.ca)
        req = ["POST " + path + " HTTP/1.1", "Host: localhost", f"Content-Length: {len(body)}"]
        req += [f"{k}: {v}" for k, v in hdrs]
        send_raw(s, ("\r\n".join(req) + "\r\n\r\n").encode() + body)
        r = read_response(s, method="POST")
        s.close()
        return r

    def seen(self):
        return len(self.h.upstream.records())

    def metric(self, i, name):
        return metrics(self.proxies[i]).get(name, 0.0)

    def log(self, i):
        p = self.proxies[i].proc
        text = ""
        for path in (p.out_path, p.err_path):
            with open(path, "rb") as f:
                text += f.read().decode("utf-8", "replace")
        return text


def store(redis, **kw):
    cfg = {"type": "redis", "address": f"127.0.0.1:{redis.port}", "timeout_ms": 500}
    cfg.update(kw)
    return cfg


def checks(rp, i, result):
    return rp.metric(i, f'pqproxy_replay_store_checks_total{{result="{result}"}}')


def test_replay_across_replicas(h):
    redis = Redis(h)
    rp = Replicas(h, [store(redis), store(redis)])
    signed = rp.sign()
    check_eq(rp.send(0, signed).status, 200, "replica 0 accepts a fresh nonce")
    r = rp.send(1, signed)
    check_eq(r.status, 401, r.body[:300].decode(errors="replace"))
    check_eq(r.json()["error"], "signature_replayed")
    check("shared replay store" in r.json()["detail"], r.json()["detail"])
    check_eq(rp.seen(), 1, "the model server saw the request once")
    # the other way round, and the local first level: replica 0 again
    other = rp.sign()
    check_eq(rp.send(1, other).status, 200)
    check_eq(rp.send(0, other).json()["error"], "signature_replayed")
    before = checks(rp, 0, "ok") + checks(rp, 0, "replayed")
    check_eq(rp.send(0, signed).json()["error"], "signature_replayed")
    check_eq(checks(rp, 0, "ok") + checks(rp, 0, "replayed"), before,
             "a nonce this process has seen is refused without a round trip")
    check_eq(checks(rp, 0, "ok"), 1)
    check_eq(checks(rp, 1, "replayed"), 1)
    check_eq(rp.metric(1, 'pqproxy_signature_verifications_total{result="replayed"}'), 1)
    check_eq(rp.metric(1, 'pqproxy_signature_verifications_total{result="ok"}'), 1)
    check_eq(rp.seen(), 2)
    # the key: prefix, keyid, nonce; it lives for the signature's window + skew
    keys = redis.cli("--scan", "--pattern", "pqproxy:replay:client-a:*").split()
    check_eq(len(keys), 2, keys)
    ttl = int(redis.cli("PTTL", keys[0]))
    check(0 < ttl <= 330_000, f"PTTL {ttl}")


def test_same_nonce_at_once(h):
    redis = Redis(h)
    rp = Replicas(h, [store(redis, prefix="model-a:"), store(redis, prefix="model-a:")])
    rounds = 15
    for n in range(rounds):
        signed = rp.sign()
        results = [None, None]
        go = threading.Barrier(2)

        def one(i):
            go.wait()
            results[i] = rp.send(i, signed)
        ts = [threading.Thread(target=one, args=(i,)) for i in (0, 1)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30)
        statuses = sorted(r.status for r in results)
        check_eq(statuses, [200, 401], f"round {n}: exactly one accepted")
        loser = [r for r in results if r.status == 401][0]
        check_eq(loser.json()["error"], "signature_replayed")
    check_eq(rp.seen(), rounds, "the model server saw each nonce once")
    check_eq(len(redis.cli("--scan", "--pattern", "model-a:client-a:*").split()), rounds,
             "keys carry the configured prefix")


def test_redis_killed_and_back(h):
    redis = Redis(h)
    rp = Replicas(h, [store(redis), store(redis, on_unavailable="fail_open")])
    check_eq(rp.send(0, rp.sign()).status, 200)
    check_eq(rp.send(1, rp.sign()).status, 200)
    redis.kill()
    seen = rp.seen()
    signed = rp.sign()
    r = rp.send(0, signed)
    check_error(r, 503, ERR, "fail_closed")
    check_eq(rp.seen(), seen, "nothing reached the model server")
    check_eq(checks(rp, 0, "unavailable") + checks(rp, 0, "timeout"), 1, r.json()["detail"])
    check_eq(rp.metric(0, f'pqproxy_signature_verifications_total{{result="{ERR}"}}'), 1)
    check("unavailable" in rp.log(0), "the outage is logged")
    r = rp.send(1, rp.sign())
    check_eq(r.status, 200, "fail_open accepts")
    check_eq(rp.seen(), seen + 1)
    check_eq(rp.metric(1, "pqproxy_replay_store_fail_open_total"), 1)
    check("ACCEPTED" in rp.log(1) and "fail_open" in rp.log(1), "fail_open logs loudly")
    redis.start()
    wait_until(lambda: rp.send(0, rp.sign()).status == 200, timeout=15, interval=0.2,
               msg="fail_closed replica recovers")
    # the refused request was not used up: the same one passes now
    check_eq(rp.send(0, signed).status, 200, "a request refused with 503 may be retried")
    # a 200 from the fail_open replica does not say it reconnected (it
    # accepts on its local cache while Redis is away): a check in Redis does
    def checked_in_redis():
        ok = checks(rp, 1, "ok")
        return rp.send(1, rp.sign()).status == 200 and checks(rp, 1, "ok") > ok
    wait_until(checked_in_redis, timeout=15, interval=0.2, msg="fail_open replica reconnects")
    again = rp.sign()
    check_eq(rp.send(1, again).status, 200, "fail_open replica, Redis back")
    r = rp.send(0, again)
    check_eq(r.json()["error"], "signature_replayed", "shared protection is back")
    check("is available" in rp.log(1), "the recovery is logged")


def test_slow_redis_deadline(h):
    redis = Redis(h)
    rp = Replicas(h, [store(redis, timeout_ms=100)])
    check_eq(rp.send(0, rp.sign()).status, 200)
    sleeper = redis.sleep(3)
    try:
        time.sleep(0.2)
        seen = rp.seen()
        t0 = time.monotonic()
        late = rp.sign()
        r = rp.send(0, late)
        elapsed = time.monotonic() - t0
        check_error(r, 503, ERR, "past the deadline")
        check("timeout" in r.json()["detail"], r.json()["detail"])
        check(elapsed < 1.5, f"answered at the deadline, not when Redis woke ({elapsed:.2f}s)")
        check_eq(rp.seen(), seen)
        check_eq(checks(rp, 0, "timeout"), 1)
        # silent for max(10 x timeout_ms, 1 s) while checks time out: reconnect
        while time.monotonic() - t0 < 1.6:
            check_eq(rp.send(0, rp.sign()).status, 503)
        check_eq(rp.seen(), seen)
        wait_until(lambda: "no reply for" in rp.log(0), timeout=5, msg="silent connection dropped")
    finally:
        sleeper.wait(10)
    # the late reply is dropped; the connection goes on serving checks
    wait_until(lambda: rp.send(0, rp.sign()).status == 200, timeout=10, interval=0.2,
               msg="checks pass again after the sleep")
    # the timed-out SET reached Redis after the sleep; the give-back sent
    # behind it deleted it: the refused request may be sent again
    check_eq(rp.send(0, late).status, 200, "the 503'd request's nonce was given back")


def test_client_gone_during_check(h):
    """A check still waiting on Redis when its client goes (and when the proxy
    stops) completes into a closing connection: no crash, no sanitizer report."""
    redis = Redis(h)
    rp = Replicas(h, [store(redis, timeout_ms=5000)])
    check_eq(rp.send(0, rp.sign()).status, 200)
    sleeper = redis.sleep(1)
    try:
        time.sleep(0.2)
        hdrs, body = rp.sign()
        s = tls_connect(rp.proxies[0].port, rp.ca)
        req = ["POST /echo HTTP/1.1", "Host: localhost", f"Content-Length: {len(body)}"]
        req += [f"{k}: {v}" for k, v in hdrs]
        send_raw(s, ("\r\n".join(req) + "\r\n\r\n").encode() + body)
        time.sleep(0.3)          # verified by now; its SET waits behind the sleep
        s.close()
    finally:
        sleeper.wait(10)
    wait_until(lambda: checks(rp, 0, "ok") >= 2, timeout=10, msg="the orphaned check completed")
    check_eq(rp.send(0, rp.sign()).status, 200, "the worker goes on")
    # the same while the proxy stops: the pending check ends with the store
    sleeper = redis.sleep(1)
    try:
        time.sleep(0.2)
        signed = rp.sign()

        def send_quietly():
            try:
                rp.send(0, signed)
            except (OSError, AssertionError):
                pass             # the proxy may close it unanswered while stopping
        t = threading.Thread(target=send_quietly)
        t.start()
        time.sleep(0.5)
        rp.proxies[0].stop()
        rp.proxies[0].check_clean_exit()
        t.join(10)
    finally:
        sleeper.wait(10)


def nonce_given_back(h, stores, redis=None):
    """A request whose signatures verify but whose body does not match its
    Content-Digest is refused and does not use up its nonce: the genuine
    request signed with it passes afterwards, on this replica or the other,
    and is then the one that used it. The same for a client that leaves in
    the middle of the body; while its body is awaited the nonce is held
    (another request with it is refused: never two)."""
    rp = Replicas(h, stores)
    last = len(stores) - 1

    def key_count():
        return len(redis.cli("--scan", "--pattern", "pqproxy:replay:client-a:*").split()) if redis else 0

    signed = rp.sign()
    hdrs, body = signed
    forged = (hdrs, body.replace(b'"n"', b'"m"'))
    r = rp.send(0, forged)
    check_eq(r.status, 401, r.body[:300].decode(errors="replace"))
    check_eq(r.json()["error"], "content_digest_mismatch")
    check_eq(rp.seen(), 0, "the model server never saw the forged body")
    wait_until(lambda: key_count() == 0, timeout=5, msg="the reservation was deleted in Redis")
    check_eq(rp.send(last, signed).status, 200, "the genuine request still passes")
    r = rp.send(0, signed)
    check_eq(r.json()["error"], "signature_replayed", "and it has now used the nonce")
    check_eq(rp.seen(), 1)
    # a client that sends the head and half the body, then leaves
    signed = rp.sign()
    hdrs, body = signed
    s = tls_connect(rp.proxies[0].port, rp.ca)
    req = ["POST /echo HTTP/1.1", "Host: localhost", f"Content-Length: {len(body)}"]
    req += [f"{k}: {v}" for k, v in hdrs]
    send_raw(s, ("\r\n".join(req) + "\r\n\r\n").encode() + body[:3])
    time.sleep(0.5)              # verified (and recorded) by now
    r = rp.send(last, signed)
    check_eq(r.json()["error"], "signature_replayed", "while it is held, no other may use it")
    s.close()
    wait_until(lambda: key_count() == (1 if redis else 0), timeout=5,
               msg="only the accepted nonce is left in Redis")
    check_eq(rp.send(last, signed).status, 200, "the abandoned request's nonce is free again")
    check_eq(rp.seen(), 2)
    return rp


def test_digest_mismatch_local(h):
    rp = nonce_given_back(h, [{"type": "local"}])
    check_eq(rp.metric(0, 'pqproxy_signature_verifications_total{result="digest_mismatch"}'), 1)


def test_digest_mismatch_redis(h):
    redis = Redis(h)
    rp = nonce_given_back(h, [store(redis), store(redis)], redis)
    # Only the request's own reservation is deleted: a key that another
    # request has set meanwhile (here by hand) stays.
    hdrs, body = rp.sign()
    s = tls_connect(rp.proxies[0].port, rp.ca)
    req = ["POST /echo HTTP/1.1", "Host: localhost", f"Content-Length: {len(body)}"]
    req += [f"{k}: {v}" for k, v in hdrs]
    send_raw(s, ("\r\n".join(req) + "\r\n\r\n").encode() + body[:3])
    wait_until(lambda: len(redis.cli("--scan", "--pattern", "pqproxy:replay:client-a:*").split()) == 3,
               timeout=5, msg="the third nonce reserved")
    nonce = dict(hdrs)["X-Signature"].split('nonce="', 1)[1].split('"', 1)[0]
    key = f"pqproxy:replay:client-a:{nonce}"
    check(redis.cli("GET", key).isdigit(), "the value is the check's token")
    check_eq(redis.cli("OBJECT", "ENCODING", key), "int", "kept as an integer (sizing)")
    redis.cli("SET", key, "someone-else", "PX", 60000)
    send_raw(s, b"X" * (len(body) - 3))
    r = read_response(s, method="POST")
    s.close()
    check_eq(r.json()["error"], "content_digest_mismatch")
    time.sleep(0.3)
    check_eq(redis.cli("GET", key), "someone-else", "another request's key is not deleted")


def test_give_back_refused_by_acl(h):
    """An ACL user without EVAL: the give-back is refused, logged (with
    Redis's reason), and the nonce stays used until its TTL: the genuine
    request is then refused too (the safe direction, docs/operations.md)."""
    redis = Redis(h)
    redis.cli("ACL", "SETUSER", "px", "on", ">px-pass", "~*", "+set", "+get", "+del")
    pw = h.path("px.pw")
    with open(pw, "w") as f:
        f.write("px-pass\n")
    rp = Replicas(h, [store(redis, username="px", password_file=pw)])
    check_eq(rp.send(0, rp.sign()).status, 200, "the ACL allows the check")
    hdrs, body = rp.sign()
    r = rp.send(0, (hdrs, body.replace(b'"n"', b'"m"')))
    check_eq(r.json()["error"], "content_digest_mismatch")
    wait_until(lambda: "could not be given back (NOPERM" in rp.log(0), timeout=5,
               msg="the refused give-back is logged")
    check_eq(rp.send(0, (hdrs, body)).json()["error"], "signature_replayed",
             "the nonce stays used in Redis")
    check_eq(rp.seen(), 1)
    rp.proxies[0].stop()
    rp.proxies[0].check_clean_exit()


def test_wrong_password(h):
    redis = Redis(h, password="right-one")
    bad, good = h.path("bad.pw"), h.path("good.pw")
    with open(bad, "w") as f:
        f.write("wrong-one\n")
    with open(good, "w") as f:
        f.write("right-one\n")
    rp = Replicas(h, [store(redis, password_file=bad), store(redis, password_file=bad,
                                                             on_unavailable="fail_open"),
                      store(redis, password_file=good)])
    wait_until(lambda: "AUTH refused" in rp.log(0), timeout=10, msg="AUTH failure logged")
    check("WRONGPASS" in rp.log(0) or "invalid" in rp.log(0), rp.log(0)[-500:])
    check("right-one" not in rp.log(0) and "wrong-one" not in rp.log(0), "no password in logs")
    check_error(rp.send(0, rp.sign()), 503, ERR, "fail_closed with a wrong password")
    check_eq(rp.send(1, rp.sign()).status, 200, "fail_open with a wrong password")
    check_eq(rp.metric(1, "pqproxy_replay_store_fail_open_total"), 1)
    signed = rp.sign()
    check_eq(rp.send(2, signed).status, 200, "the right password works")
    check_eq(rp.send(0, signed).status, 503, "still no store for the wrong password")
    for p in rp.proxies:
        p.stop()
        p.check_clean_exit()


class FakeRedis(FakeTcpServer):
    """A TCP server answering every read with `reply` (bytes no Redis sends)."""

    def __init__(self, reply, greet=b"", pause=0.0):
        """greet: sent as soon as a connection is accepted (a server that speaks first).
        reply as a list: its pieces sent `pause` seconds apart (separate TCP segments)."""
        self.reply, self.greet, self.pause = reply, greet, pause
        super().__init__()

    def one(self, c):
        c.sendall(self.greet)
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while c.recv(65536):
            for i, piece in enumerate(self.reply if isinstance(self.reply, list) else [self.reply]):
                time.sleep(self.pause if i else 0)
                c.sendall(piece)


def test_malformed_replies(h):
    odd, garbage = FakeRedis(b"+QUEUED\r\n"), FakeRedis(b"?not resp\r\n")
    # two replies to one command: hiredis 0.14 would abort on the second
    twice = FakeRedis(b"+OK\r\n+OK\r\n")
    early = FakeRedis(b"+OK\r\n", greet=b"+OK\r\n")
    rp = Replicas(h, [store(odd), store(garbage), store(garbage, on_unavailable="fail_open"),
                      store(twice), store(early)])
    # the greeting is a reply to no command: the connection is dropped each time
    wait_until(lambda: "a reply to no command" in rp.log(4), timeout=5, msg="the greeting is logged")
    for i, what in ((0, "unexpected reply"), (1, "Protocol error"), (3, "a reply to no command")):
        check_error(rp.send(i, rp.sign()), 503, ERR, what)
        wait_until(lambda: what in rp.log(i), timeout=5, msg=f"{what!r} logged")
    check_eq(rp.send(2, rp.sign()).status, 200, "fail_open accepts")
    check_eq(rp.seen(), 1)
    for p in rp.proxies:
        p.stop()
        p.check_clean_exit()


def test_extra_reply_split(h):
    """The answer, then an extra reply whose end comes in a later segment:
    the answer counts, the extra one drops the connection (hiredis 0.14's
    async context aborted the process on it), and the proxy lives on."""
    split = FakeRedis([b"+OK\r\n+O", b"K\r\n"], pause=0.3)
    rp = Replicas(h, [store(split)])
    check_eq(rp.send(0, rp.sign()).status, 200, "the answer to the SET")
    wait_until(lambda: "unexpected data from redis: a reply to no command" in rp.log(0),
               timeout=5, msg="the extra reply is logged")
    # reconnected: the next check is answered (the first reply again)
    wait_until(lambda: "is available" in rp.log(0).split("a reply to no command", 1)[1],
               timeout=5, msg="reconnected")
    check_eq(rp.send(0, rp.sign()).status, 200, "after the reconnect")
    check_eq(rp.seen(), 2)
    rp.proxies[0].stop()
    rp.proxies[0].check_clean_exit()


def test_oversized_reply(h):
    """A reply still incomplete past 1 MiB (a bulk string announced at 2 MB)
    drops the connection instead of growing the buffer."""
    big = FakeRedis(b"$2000000\r\n" + b"x" * 1_100_000)
    rp = Replicas(h, [store(big)])
    check_error(rp.send(0, rp.sign()), 503, ERR, "an oversized reply")
    wait_until(lambda: "a reply over 1 MiB" in rp.log(0), timeout=5, msg="the oversized reply is logged")
    check_eq(rp.seen(), 0)
    rp.proxies[0].stop()
    rp.proxies[0].check_clean_exit()


def test_tls(h):
    """Redis on TLS only: replay protection across replicas through it; a CA
    that did not sign Redis's certificate, or another name, is refused."""
    certs = h.certgen()
    tls_redis_or_skip()
    redis = Redis(h, password="over-tls", tls_dir=certs)
    pw = h.path("tls.pw")
    with open(pw, "w") as f:
        f.write("over-tls\n")
    other = h.path("other-certs")
    subprocess.run([pqproxy_bin(), "certgen", "--out", other], check=True, capture_output=True,
                   timeout=120)
    tls = {"ca_file": os.path.join(certs, "ca.crt"), "server_name": "localhost"}
    # AUTH waits for the handshake: it is answered, so it went through TLS
    rp = Replicas(h, [store(redis, tls=tls, password_file=pw), store(redis, tls=tls, password_file=pw),
                      store(redis, tls={"ca_file": os.path.join(other, "ca.crt")}, password_file=pw),
                      store(redis, tls=dict(tls, server_name="redis.example"), password_file=pw)])
    signed = rp.sign()
    check_eq(rp.send(0, signed).status, 200, "through TLS")
    r = rp.send(1, signed)
    check_eq(r.json()["error"], "signature_replayed", "the other replica, through TLS")
    check_eq(checks(rp, 0, "ok"), 1)
    check("AUTH refused" not in rp.log(0), rp.log(0)[-300:])
    for i in (2, 3):
        wait_until(lambda: "TLS: " in rp.log(i), timeout=5, msg=f"replica {i}: TLS failure logged")
        check_error(rp.send(i, rp.sign()), 503, ERR, f"replica {i}: refused certificate")
    check("is available" not in rp.log(2) and "is available" not in rp.log(3), "never connected")
    check_eq(rp.seen(), 1)
    for p in rp.proxies:
        p.stop()
        p.check_clean_exit()


def test_tls_client_cert(h):
    """Redis asking for a client certificate: given with cert and key, the
    checks pass; without, Redis refuses the handshake and the policy applies."""
    certs = h.certgen()
    tls_redis_or_skip()
    redis = Redis(h, tls_dir=certs, client_certs=True)
    tls = {"ca_file": os.path.join(certs, "ca.crt"), "server_name": "localhost"}
    rp = Replicas(h, [store(redis, tls=dict(tls, cert=os.path.join(certs, "client.crt"),
                                            key=os.path.join(certs, "client.key"))),
                      store(redis, tls=tls)])
    check_eq(rp.send(0, rp.sign()).status, 200, "with the client certificate")
    check_error(rp.send(1, rp.sign()), 503, ERR, "without one")
    # TLS 1.3: the client's handshake ends before Redis checks the certificate;
    # the refusal is the alert read next
    wait_until(lambda: "unavailable: TLS: " in rp.log(1), timeout=5, msg="the refusal is logged")
    check_eq(rp.seen(), 1)
    for p in rp.proxies:
        p.stop()
        p.check_clean_exit()


if __name__ == "__main__":
    main([test_replay_across_replicas, test_same_nonce_at_once, test_redis_killed_and_back,
          test_slow_redis_deadline, test_client_gone_during_check, test_digest_mismatch_local,
          test_digest_mismatch_redis, test_give_back_refused_by_acl, test_wrong_password,
          test_malformed_replies, test_extra_reply_split,
          test_oversized_reply, test_tls, test_tls_client_cert])
