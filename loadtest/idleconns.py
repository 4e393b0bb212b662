#!/usr/bin/env python3
"""Opens N idle TLS connections to 127.0.0.1:PORT and reports how much the
server processes' RSS grew per connection.

    idleconns.py --port P --n 10000 --pids 123,456 [--hold 2] [--timeout 120] [--alpn h2|http/1.1]

The handshake completes (classical X25519: this is Debian's OpenSSL 3.0),
then nothing is sent; with --alpn, that protocol is offered alone and a
connection that does not select it counts as failed; with --alpn h2 the
client sends the connection preface and an empty SETTINGS, reads the
server's SETTINGS and acknowledges them, then stays idle (an HTTP/2 session
without streams). RSS (VmRSS summed over the given pids and their
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


H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
H2_SETTINGS = bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])      # empty SETTINGS
H2_SETTINGS_ACK = bytes([0, 0, 0, 4, 1, 0, 0, 0, 0])


async def h2_open(r, w):
    """Preface + SETTINGS out; frames in until the server's SETTINGS, then ACK."""
    w.write(H2_PREFACE + H2_SETTINGS)
    await w.drain()
    for _ in range(16):
        head = await r.readexactly(9)
        length = int.from_bytes(head[:3], "big")
        await r.readexactly(length)
        if head[3] == 4 and not head[4] & 1:
            w.write(H2_SETTINGS_ACK)
            await w.drain()
            return True
        if head[3] == 7:          # GOAWAY
            return False
    return False


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--pids", required=True)
    ap.add_argument("--hold", type=float, default=2.0)
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--parallel", type=int, default=64)
    ap.add_argument("--alpn", choices=["h2", "http/1.1"], default=None)
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
    if a.alpn:
        ctx.set_alpn_protocols([a.alpn])
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
            except Exception:
                failed += 1
                return
            ok = not a.alpn or w.get_extra_info("ssl_object").selected_alpn_protocol() == a.alpn
            if ok and a.alpn == "h2":
                try:
                    ok = await asyncio.wait_for(h2_open(r, w), 10)
                except Exception:
                    ok = False
            if ok:
                conns.append(w)
            else:
                failed += 1
                w.transport.abort()

    await asyncio.gather(*(one() for _ in range(a.n)))
    opened = time.monotonic() - t0
    await asyncio.sleep(a.hold)
    after = rss_kib(pids)
    ok = len(conns)
    for w in conns:
        w.transport.abort()
    await asyncio.sleep(0.2)
    print(json.dumps({
        "requested": a.n, "alpn": a.alpn, "open": ok, "failed": failed, "open_s": round(opened, 2),
        "rss_before_kib": before, "rss_after_kib": after,
        "kib_per_conn": round((after - before) / ok, 2) if ok else None,
    }))


if __name__ == "__main__":
    asyncio.run(main())
