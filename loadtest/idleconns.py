#!/usr/bin/env python3
"""Opens N idle TLS connections to 127.0.0.1:PORT and reports how much the
server processes' RSS grew per connection.

    idleconns.py --port P --n 10000 --pids 123,456 [--hold 2] [--timeout 120]

The handshake completes (classical X25519: this is Debian's OpenSSL 3.0),
then nothing is sent; RSS (VmRSS summed over the given pids and their
children) is read before, once all connections are open and held for
--hold seconds, and the result is printed as one JSON line. Bounded in time
and count; every socket is closed at the end.
"""
import argparse, asyncio, json, os, resource, ssl, sys, time


def procs(pids):
    out = set(pids)
    try:
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open(f"/proc/{d}/stat") as f:
                        ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                    if ppid in pids:
                        out.add(int(d))
                except OSError:
                    pass
    except OSError:
        pass
    return out


def rss_kib(pids):
    total = 0
    for p in procs(pids):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--pids", required=True)
    ap.add_argument("--hold", type=float, default=2.0)
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--parallel", type=int, default=64)
    a = ap.parse_args()
    pids = [int(x) for x in a.pids.split(",") if x]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, a.n + 1024)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    before = rss_kib(pids)
    t0 = time.monotonic()
    conns, failed = [], 0
    sem = asyncio.Semaphore(a.parallel)

    async def one():
        nonlocal failed
        async with sem:
            if time.monotonic() - t0 > a.timeout:
                failed += 1
                return
            try:
                r, w = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", a.port, ssl=ctx, server_hostname="localhost"), 10)
                conns.append(w)
            except Exception:
                failed += 1

    await asyncio.gather(*(one() for _ in range(a.n)))
    opened = time.monotonic() - t0
    await asyncio.sleep(a.hold)
    after = rss_kib(pids)
    ok = len(conns)
    for w in conns:
        w.transport.abort()
    await asyncio.sleep(0.2)
    print(json.dumps({
        "requested": a.n, "open": ok, "failed": failed, "open_s": round(opened, 2),
        "rss_before_kib": before, "rss_after_kib": after,
        "kib_per_conn": round((after - before) / ok, 2) if ok else None,
    }))


if __name__ == "__main__":
    asyncio.run(main())
