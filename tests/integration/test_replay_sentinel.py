"""The shared replay store found by name: a host name in `address` (a
Kubernetes Service) resolved before each connect, and Redis Sentinel
(`sentinels` + `master_name`) followed through a failover, with real
redis-server and redis-sentinel processes started here.

Names are tested inside a mount namespace whose /etc/hosts is a file of this
test (unshare -m; skipped where that is not allowed), so a name can start to
resolve, or stop, while the proxy runs."""
import os
import shutil
import subprocess
import threading
import time

from pxhelpers import FakeTcpServer, check_error
from pxtest import (Proxy, check, check_eq, deep_merge, free_port, main, pqproxy_bin, skip,
                    wait_until)
from test_replay_redis import (ERR, Redis, Replicas, checks, cli_cmd, store, tls_redis_or_skip,
                               tls_server_args)

NAME = "redis.pqproxy.test"
MASTER = "replaymaster"
# The failover the tests make: down-after 1 s, then the vote and the
# promotion (well under 1 s here), then at most one backoff step (2 s) of
# the proxy: the documented bound (docs/operations.md) is
# down-after-milliseconds + 5 s.
DOWN_AFTER_MS = 1000
RECOVERY_S = DOWN_AFTER_MS / 1000 + 5


def hosts_namespace_or_skip():
    if not shutil.which("unshare"):
        skip("unshare is not installed")
    if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
        skip("unshare -m is not allowed here (a mount namespace for /etc/hosts)")


def write_hosts(path, names):
    with open(path, "w") as f:     # in place: the bind mount follows the inode
        f.write("127.0.0.1 localhost\n")
        for n in names:
            f.write(f"127.0.0.1 {n}\n")


def proxy_starter(h, hosts):
    """h.start_proxy, with the proxy in a mount namespace where /etc/hosts is `hosts`."""
    def start(overrides, name):
        cfg = deep_merge(h.base_proxy_config(), overrides)
        path = h.write_config(cfg)
        h.add_log("config", path)
        script = 'mount --bind "$1" /etc/hosts && shift && exec "$@"'
        p = h.start(name, ["unshare", "-m", "sh", "-c", script, "sh", hosts, pqproxy_bin(), "run",
                           "--config", path], ready="port", port=int(cfg["listen"].rsplit(":", 1)[1]))
        px = Proxy(p, cfg, path)
        h.proxies.append(px)
        return px
    return start


def test_address_by_name(h):
    """A name that resolves works like an IP; one that does not gets the
    policy and a clear log line, and recovers once it resolves."""
    hosts_namespace_or_skip()
    redis = Redis(h)
    hosts = h.path("hosts")
    write_hosts(hosts, [NAME])
    late = "late." + NAME
    rp = Replicas(h, [store(redis, address=f"{NAME}:{redis.port}"),
                      store(redis),
                      store(redis, address=f"{late}:{redis.port}"),
                      store(redis, address=f"{late}:{redis.port}", on_unavailable="fail_open")],
                  start=proxy_starter(h, hosts))
    signed = rp.sign()
    check_eq(rp.send(0, signed).status, 200, "by name: accepted")
    check_eq(rp.send(1, signed).json()["error"], "signature_replayed",
             "the replica that has the IP sees the nonce the named one recorded")
    check_eq(checks(rp, 0, "ok"), 1)
    wait_until(lambda: "available" in rp.log(0), msg="the connect by name is logged")
    check(f"{NAME}:{redis.port} (127.0.0.1)" in rp.log(0), rp.log(0)[-600:])

    # not resolvable: fail_closed refuses, fail_open accepts; both say why
    seen = rp.seen()
    check_error(rp.send(2, rp.sign()), 503, ERR, "fail_closed while the name does not resolve")
    check_eq(rp.seen(), seen, "nothing reached the model server")
    check_eq(rp.send(3, rp.sign()).status, 200, "fail_open accepts")
    check_eq(rp.metric(3, "pqproxy_replay_store_fail_open_total"), 1)
    for i in (2, 3):
        check(f"cannot resolve {late}" in rp.log(i), rp.log(i)[-600:])
    # the name appears (a Service created after the pods): both recover alone
    write_hosts(hosts, [NAME, late])
    for i in (2, 3):
        wait_until(lambda: rp.send(i, rp.sign()).status == 200 and checks(rp, i, "ok") >= 1,
                   timeout=10, msg=f"proxy {i} recovers once {late} resolves")
    replay = rp.sign()
    check_eq(rp.send(2, replay).status, 200)
    check_eq(rp.send(3, replay).json()["error"], "signature_replayed")
    for p in rp.proxies:
        p.stop()
        p.check_clean_exit()


class Sentinels:
    """A master, one replica and three sentinels (quorum 2: the fewest for a
    vote that survives one sentinel), all on free ports."""

    def __init__(self, h, n=3, tls_dir=None):
        """tls_dir: every server and sentinel on TLS only (tls-port), with
        that dir's certificates, and TLS between them."""
        if not shutil.which("redis-sentinel"):
            skip("redis-sentinel is not installed (scripts/deps.sh --test-tools)")
        self.h, self.tls_dir = h, tls_dir
        self.master = Redis(h, tls_dir=tls_dir)
        self.replica = Redis(h, tls_dir=tls_dir)
        self.replica.cli("REPLICAOF", "127.0.0.1", self.master.port)
        self.ports = []
        for i in range(n):
            port = free_port()
            conf = h.path(f"sentinel-{i}.conf")
            with open(conf, "w") as f:
                f.write(f"port {port}\nbind 127.0.0.1\ndir {h.path()}\n"
                        f"sentinel monitor {MASTER} 127.0.0.1 {self.master.port} 2\n"
                        f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\n"
                        f"sentinel failover-timeout {MASTER} 10000\n"
                        f"sentinel parallel-syncs {MASTER} 1\n")
            cmd = ["redis-sentinel", conf]
            if tls_dir:
                cmd += ["--port", "0", "--tls-port", str(port)] + tls_server_args(tls_dir)
            h.start(f"sentinel-{i}", cmd, ready="port", port=port)
            self.ports.append(port)
        # ready: every sentinel knows the replica and the other sentinels
        wait_until(lambda: all(self.ready(p, n) for p in self.ports), timeout=30,
                   msg="sentinels see each other and the replica")

    def ready(self, port, n):
        info = self.sentinel(port, "SENTINEL", "master", MASTER).split("\n")
        kv = dict(zip(info[0::2], info[1::2]))
        return kv.get("num-other-sentinels") == str(n - 1) and kv.get("num-slaves") == "1"

    def sentinel(self, port, *args):
        return subprocess.run(cli_cmd(port, self.tls_dir) + [str(a) for a in args],
                              capture_output=True, text=True, timeout=10).stdout.strip()

    def master_port(self):
        return int(self.sentinel(self.ports[0], "SENTINEL", "get-master-addr-by-name",
                                 MASTER).split()[1])

    def config(self, **kw):
        cfg = {"type": "redis", "sentinels": [f"127.0.0.1:{p}" for p in self.ports],
               "master_name": MASTER, "timeout_ms": 500}
        cfg.update(kw)
        return cfg


class Load:
    """Fresh signed requests to every proxy in a loop: statuses per proxy."""

    def __init__(self, rp):
        self.rp, self.stop, self.results = rp, threading.Event(), []
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop.is_set():
            for i in range(len(self.rp.proxies)):
                r = self.rp.send(i, self.rp.sign())
                self.results.append((time.monotonic(), i, r.status,
                                     r.json().get("error") if r.status != 200 else None))

    def end(self):
        self.stop.set()
        self.t.join(30)


def failover_during_load(h, make_failover, tls_dir=None):
    """tls_dir: Redis and the sentinels on TLS only; the proxies' `tls` block
    serves both. Also checks that a CA that did not sign their certificate
    is refused, on the sentinel connection."""
    s = Sentinels(h, tls_dir=tls_dir)
    tls = {"tls": {"ca_file": os.path.join(tls_dir, "ca.crt"), "server_name": "localhost"}} \
        if tls_dir else {}
    rp = Replicas(h, [s.config(**tls), s.config(**tls),
                      s.config(on_unavailable="fail_open", **tls)])
    first = s.master_port()
    check_eq(first, int(s.master.port))
    wait_until(lambda: all(rp.send(i, rp.sign()).status == 200 for i in range(3)), timeout=10,
               msg="every proxy found the master")
    load = Load(rp)
    time.sleep(1)
    t0 = time.monotonic()
    make_failover(s)
    wait_until(lambda: s.master_port() != first, timeout=30, msg="the sentinels promoted the replica")
    promoted = time.monotonic()
    new = s.replica if s.master_port() == int(s.replica.port) else None
    check(new is not None, "the replica is the new master")
    new_at = f"master {MASTER} at 127.0.0.1:{new.port} is available"
    # replay protection holds again within the bound, through the new master:
    # every proxy is on it, and a nonce one records there the other refuses
    for i in range(3):
        wait_until(lambda: new_at in rp.log(i), timeout=max(0.1, t0 + RECOVERY_S - time.monotonic()),
                   msg=f"proxy {i} on the new master within {RECOVERY_S} s")

    def holds():
        signed = rp.sign()
        return (rp.send(0, signed).status == 200 and
                rp.send(1, signed).json().get("error") == "signature_replayed")
    wait_until(holds, timeout=max(0.1, t0 + RECOVERY_S - time.monotonic()),
               msg="replay protection holds after the failover")
    back = time.monotonic()
    time.sleep(0.5)
    load.end()
    res = load.results
    print(f"failover: promoted after {promoted - t0:.2f} s, replay protection back after "
          f"{back - t0:.2f} s; {len(res)} requests under load")
    # fail_closed: only 200 or 503 replay_store_unavailable; each 200 reached
    # the model server once, nothing else did
    closed = [r for r in res if r[1] in (0, 1)]
    check(all(st == 200 or (st == 503 and err == ERR) for _, _, st, err in closed),
          sorted({(st, err) for _, _, st, err in closed}))
    check(all(st == 200 for _, i, st, _ in res if i == 2), "fail_open accepted everything")
    ok = sum(1 for r in res if r[2] == 200)
    # + the requests of the readiness wait and of holds(): counted by the proxies
    total_ok = sum(rp.metric(i, 'pqproxy_signature_verifications_total{result="ok"}') for i in range(3))
    check_eq(rp.seen(), total_ok, "the model server saw exactly the accepted requests")
    check(ok > 0 and total_ok >= ok)
    check(any(r[0] > back for r in res if r[2] == 200 and r[1] in (0, 1)), "load passes again")
    keys = new.cli("--scan", "--pattern", "pqproxy:replay:client-a:*").split()
    check(len(keys) >= 1, "the nonces after the failover are on the new master")
    if tls_dir:
        other = h.path("other-certs")
        subprocess.run([pqproxy_bin(), "certgen", "--out", other], check=True,
                       capture_output=True, timeout=120)
        i = rp.add(s.config(tls={"ca_file": os.path.join(other, "ca.crt"),
                                 "server_name": "localhost"}))
        j = rp.add(s.config())       # plain TCP to a TLS-only sentinel
        check_error(rp.send(i, rp.sign()), 503, ERR, "the sentinels' certificate is refused")
        wait_until(lambda: f"sentinel 127.0.0.1:{s.ports[0]}: TLS: " in rp.log(i), timeout=5,
                   msg="the refused sentinel certificate is logged")
        check_error(rp.send(j, rp.sign()), 503, ERR, "no plain TCP to a TLS sentinel")
    for p in rp.proxies:
        p.stop()
        p.check_clean_exit()
    return res


def test_sentinel_failover_command(h):
    """SENTINEL FAILOVER during load: the old master is demoted (its clients
    are dropped, a late write gets READONLY, ROLE tells): the proxies ask the
    sentinels again and follow."""
    failover_during_load(h, lambda s: s.sentinel(s.ports[0], "SENTINEL", "FAILOVER", MASTER))


def test_sentinel_master_killed(h):
    """The master killed during load: fail_closed gives 503s (nothing reaches
    the model) until the sentinels agree and promote the replica; then the
    proxies follow by themselves."""
    failover_during_load(h, lambda s: s.master.kill())


def test_sentinel_tls(h):
    """Redis and the sentinels on TLS only (tls-port, port 0, TLS between
    them): the proxies ask the sentinels and reach the master through TLS
    with the one `tls` block, and follow a SENTINEL FAILOVER under load."""
    certs = h.certgen()
    tls_redis_or_skip()
    failover_during_load(h, lambda s: s.sentinel(s.ports[0], "SENTINEL", "FAILOVER", MASTER),
                         tls_dir=certs)


def test_sentinel_errors(h):
    """A sentinel that does not answer, one that does not know the master
    name, and a wrong sentinel password: clear log lines, the policy, and
    the next sentinel is asked."""
    if not shutil.which("redis-sentinel"):
        skip("redis-sentinel is not installed (scripts/deps.sh --test-tools)")
    redis = Redis(h)
    port, dead = free_port(), free_port()
    conf = h.path("sentinel.conf")
    with open(conf, "w") as f:
        f.write(f"port {port}\nbind 127.0.0.1\ndir {h.path()}\nrequirepass s3cret\n"
                f"sentinel monitor {MASTER} 127.0.0.1 {redis.port} 1\n")
    h.start("sentinel", ["redis-sentinel", conf], ready="port", port=port)
    good = h.path("sentinel-password")
    with open(good, "w") as f:
        f.write("s3cret\n")
    bad = h.path("bad-password")
    with open(bad, "w") as f:
        f.write("nope\n")
    base = {"type": "redis", "master_name": MASTER, "timeout_ms": 500}
    rp = Replicas(h, [
        dict(base, sentinels=[f"127.0.0.1:{dead}", f"127.0.0.1:{port}"], sentinel_password_file=good),
        dict(base, sentinels=[f"127.0.0.1:{port}"], sentinel_password_file=bad),
        dict(base, sentinels=[f"127.0.0.1:{port}"], sentinel_password_file=good, master_name="other"),
    ])
    # the dead sentinel first: the second one is asked next
    wait_until(lambda: rp.send(0, rp.sign()).status == 200, timeout=10, msg="the next sentinel")
    check(f"sentinel 127.0.0.1:{dead}: " in rp.log(0), rp.log(0)[-600:])
    check_error(rp.send(1, rp.sign()), 503, ERR, "wrong sentinel password")
    wait_until(lambda: "AUTH refused" in rp.log(1), timeout=5, msg="the refusal is logged")
    check("nope" not in rp.log(1), "no password in the log")
    check_error(rp.send(2, rp.sign()), 503, ERR, "unknown master name")
    wait_until(lambda: "does not monitor a master named other" in rp.log(2), timeout=5,
               msg="the unknown name is logged")
    for p in rp.proxies:
        p.stop()
        p.check_clean_exit()


class FakeSentinel(FakeTcpServer):
    """Answers SENTINEL get-master-addr-by-name with 127.0.0.1:`port` (or
    with `raw`), and confirms SUBSCRIBE; a sentinel that can be wrong."""

    def __init__(self, port=None, raw=None, push=b""):
        """push: sent after the SUBSCRIBE confirmation."""
        self.port_named, self.raw, self.push = port, raw, push
        super().__init__()

    def one(self, c):
        while True:
            data = c.recv(65536)
            if not data:
                return
            if b"get-master-addr-by-name" in data:
                p = str(self.port_named).encode()
                c.sendall(self.raw or b"*2\r\n$9\r\n127.0.0.1\r\n$%d\r\n%s\r\n" % (len(p), p))
            elif b"SUBSCRIBE" in data:
                c.sendall(b"*3\r\n$9\r\nsubscribe\r\n$14\r\n+switch-master\r\n:1\r\n" + self.push)


def test_sentinel_names_a_replica(h):
    """A sentinel that still names a replica (a failover in progress, or a
    stale sentinel): ROLE tells, nothing is recorded there, the policy
    applies; once the sentinel names the master, checks pass. A reply that
    is not an address is logged."""
    master, replica = Redis(h), Redis(h)
    replica.cli("REPLICAOF", "127.0.0.1", master.port)
    stale, odd = FakeSentinel(port=replica.port), FakeSentinel(raw=b"+OK\r\n")
    # a message on the subscription that hiredis 0.14 would abort on
    bad_push = FakeSentinel(port=master.port, push=b"*1\r\n$7\r\nmessage\r\n")
    base = {"type": "redis", "master_name": MASTER, "timeout_ms": 500}
    rp = Replicas(h, [dict(base, sentinels=[stale.addr]), dict(base, sentinels=[odd.addr]),
                      dict(base, sentinels=[bad_push.addr])])
    check_error(rp.send(0, rp.sign()), 503, ERR, "a replica is not used as the master")
    wait_until(lambda: "not the master (ROLE)" in rp.log(0), timeout=5, msg="ROLE's answer is logged")
    check_eq(rp.seen(), 0, "nothing reached the model server")
    check_error(rp.send(1, rp.sign()), 503, ERR, "an odd sentinel reply")
    wait_until(lambda: "unexpected reply to SENTINEL get-master-addr-by-name" in rp.log(1), timeout=5,
               msg="the odd reply is logged")
    stale.port_named = master.port
    wait_until(lambda: rp.send(0, rp.sign()).status == 200, timeout=10, msg="the master once named")
    check_eq(master.cli("DBSIZE"), "1", "the accepted nonce is on the master")
    wait_until(lambda: replica.cli("DBSIZE") == "1", timeout=5, msg="and replicated, never written to the replica")
    wait_until(lambda: "malformed message" in rp.log(2), timeout=5, msg="the bad message is logged")
    check_eq(rp.send(2, rp.sign()).status, 200, "the master is still used without the watch")
    for p in rp.proxies:
        p.stop()
        p.check_clean_exit()


if __name__ == "__main__":
    main([test_address_by_name, test_sentinel_failover_command, test_sentinel_master_killed,
          test_sentinel_tls, test_sentinel_errors, test_sentinel_names_a_replica])
