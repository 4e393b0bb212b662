#!/usr/bin/env python3
"""pqproxy streams large bodies with bounded memory: a 1 GiB upload and a
1 GiB download go through while the proxy's RSS stays within a fixed
margin of its idle size.

PX_BIG_MB sets the size in MiB (default 1024). Under ASan the proxy runs
with a small allocator quarantine (added to the inherited ASAN_OPTIONS):
the default quarantine keeps 256 MiB of freed memory resident, which says
nothing about what the proxy holds."""
import hashlib
import socket
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pxtest  # noqa: E402
from pxtest import check, check_eq, http_request, main, read_response, send_raw  # noqa: E402
from pxhelpers import Env, is_asan_build, pattern  # noqa: E402

MiB = 1 << 20
RSS_MARGIN_KB = 64 * 1024          # allowed growth over the idle RSS
PIECE = MiB


def big_size():
    return int(os.environ.get("PX_BIG_MB") or 1024) * MiB


def env_for(h, overrides=None):
    # Bodies past the 64 MiB default need max_body_bytes 0 (unlimited), set
    # explicitly, and room in the request deadline for a slow build.
    overrides = pxtest.deep_merge({"http": {"max_body_bytes": 0},
                                   "timeouts": {"request_ms": 600000}}, overrides or {})
    proxy_env = None
    if is_asan_build():
        opts = os.environ.get("ASAN_OPTIONS", "")
        proxy_env = {"ASAN_OPTIONS": (opts + ":" if opts else "") +
                     "quarantine_size_mb=8:thread_local_quarantine_size_kb=256"}
    return Env(h, overrides, proxy_env=proxy_env)


class RssSampler(threading.Thread):
    def __init__(self, proc, interval=0.05):
        super().__init__(daemon=True)
        self.proc, self.interval = proc, interval
        self.samples = []
        self.stop_ev = threading.Event()

    def run(self):
        while not self.stop_ev.is_set():
            try:
                self.samples.append(self.proc.rss_kb())
            except Exception:
                pass
            time.sleep(self.interval)

    def stop(self):
        self.stop_ev.set()
        self.join(5)
        return max(self.samples) if self.samples else 0


def idle_rss(e):
    """RSS after the TLS and upstream paths have been used once."""
    with e.connect() as s:
        check_eq(http_request(s, "POST", "/upload-sha", body=b"w" * 300_000).status, 200)
        check_eq(http_request(s, "GET", "/bytes/300000").status, 200)
    time.sleep(0.2)
    return e.px.proc.rss_kb()


def test_upload_1gib_streamed(h):
    e = env_for(h)
    size = big_size()
    base = idle_rss(e)
    block = bytearray(os.urandom(PIECE))
    sha = hashlib.sha256()
    sampler = RssSampler(e.px.proc)
    t0 = time.monotonic()
    sampler.start()
    with e.connect(timeout=120) as s:
        send_raw(s, b"POST /upload-sha HTTP/1.1\r\nHost: localhost\r\n"
                    b"Content-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n" % size)
        sent = 0
        i = 0
        while sent < size:
            block[:8] = i.to_bytes(8, "little")     # every piece differs
            piece = block if size - sent >= PIECE else block[:size - sent]
            sha.update(piece)
            s.sendall(piece)
            sent += len(piece)
            i += 1
        r = read_response(s, timeout=120)
    took = time.monotonic() - t0
    peak = sampler.stop()
    check_eq(r.status, 200)
    check_eq(r.json(), {"body_len": size, "body_sha256": sha.hexdigest()}, "upstream got every byte")
    print(f"  upload {size // MiB} MiB in {took:.1f}s ({size / MiB / took:.0f} MiB/s), "
          f"proxy RSS idle {base} KiB, peak {peak} KiB")
    check(len(sampler.samples) >= 5, "RSS sampled during the transfer")
    check(peak - base < RSS_MARGIN_KB,
          f"proxy RSS grew by {peak - base} KiB during the upload (limit {RSS_MARGIN_KB} KiB)")
    line = e.access(3)[2]
    check_eq((line["status"], line["bytes_in"]), (200, size))


def test_download_1gib_streamed(h):
    e = env_for(h)
    size = big_size()
    base = idle_rss(e)
    got = [0]
    bad = []

    def on_body(piece):
        off = got[0]
        n = len(piece)
        if n <= 4 * MiB and piece != pattern(off, n):
            bad.append(off)
        got[0] += n

    sampler = RssSampler(e.px.proc)
    t0 = time.monotonic()
    sampler.start()
    with e.connect(timeout=120) as s:
        send_raw(s, b"GET /bytes/%d HTTP/1.1\r\nHost: localhost\r\n\r\n" % size)
        r = read_response(s, on_body=on_body, timeout=120)
    took = time.monotonic() - t0
    peak = sampler.stop()
    check_eq((r.status, r.header("content-length")), (200, str(size)))
    check_eq(got[0], size, "every byte arrived")
    check_eq(bad[:3], [], "body content matches upstream.py's pattern")
    print(f"  download {size // MiB} MiB in {took:.1f}s ({size / MiB / took:.0f} MiB/s), "
          f"proxy RSS idle {base} KiB, peak {peak} KiB")
    check(len(sampler.samples) >= 5, "RSS sampled during the transfer")
    check(peak - base < RSS_MARGIN_KB,
          f"proxy RSS grew by {peak - base} KiB during the download (limit {RSS_MARGIN_KB} KiB)")
    line = e.access(3)[2]
    check_eq((line["status"], line["bytes_out"]), (200, size))


def test_download_slow_reader_bounded(h):
    """A client that stops reading: the proxy stops reading the upstream
    (backpressure) instead of buffering the body."""
    e = env_for(h)
    size = 256 * MiB
    base = idle_rss(e)
    with e.connect(timeout=60) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        send_raw(s, b"GET /bytes/%d HTTP/1.1\r\nHost: localhost\r\n\r\n" % size)
        time.sleep(2.0)     # not reading at all
        grown = e.px.proc.rss_kb() - base
        check(grown < RSS_MARGIN_KB // 4,
              f"proxy RSS grew by {grown} KiB while the client did not read")
        got = [0]
        r = read_response(s, on_body=lambda p: got.__setitem__(0, got[0] + len(p)), timeout=60)
        check_eq((r.status, got[0]), (200, size), "then the whole body arrives")


if __name__ == "__main__":
    main([test_upload_1gib_streamed, test_download_1gib_streamed, test_download_slow_reader_bounded])
