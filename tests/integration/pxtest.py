"""pxtest: the integration-test harness for pqproxy (hitch-style).

Each tests/integration/test_*.py is its own process that imports this module
and calls main([test functions]). Every test gets a fresh Harness: its own
temp dir and processes, all stopped (whole process groups) when the test
ends, on atexit, and on SIGTERM/SIGINT. When a test fails, the logs of every
process it started are printed. Ports are free loopback ports picked at run
time; nothing talks to anything but 127.0.0.1.

Environment: PQPROXY_BIN (the binary), PX_SOURCE_DIR (repo root),
PX_BUILD_DIR, PX_KEEP_TMP=1 (keep temp dirs even on success),
PX_TEST_TIMEOUT (seconds per test, default 120).
"""
import atexit
import inspect
import json
import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import traceback
import weakref

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.abspath(os.environ.get("PX_SOURCE_DIR") or os.path.join(HERE, "..", ".."))
BUILD_DIR = os.path.abspath(os.environ.get("PX_BUILD_DIR") or os.path.join(SOURCE_DIR, "build"))
UPSTREAM_PY = os.path.join(HERE, "upstream.py")
DEMO_MODEL_PY = os.path.join(SOURCE_DIR, "scripts", "demo_model_server.py")
LOOPBACK = "127.0.0.1"
LOG_TAIL_BYTES = 64 * 1024
SKIP_EXIT = 77     # main()'s exit status when every test skipped (CTest SKIP_RETURN_CODE)


# --- assertions ----------------------------------------------------------------

class TestFailure(AssertionError):
    pass


class Skip(Exception):
    """Raised by skip(); only for a missing optional peer (e.g. a PQ-capable curl)."""


def check(cond, msg="check failed"):
    if not cond:
        raise TestFailure(msg)


def _prefix(msg):
    # a message may be the bytes of what came back (r.raw[:200])
    if not msg:
        return ""
    return (msg if isinstance(msg, str) else repr(msg)) + ": "


def check_eq(actual, expected, msg=""):
    if actual != expected:
        raise TestFailure(f"{_prefix(msg)}expected {expected!r}, got {actual!r}")


def check_in(item, container, msg=""):
    if item not in container:
        raise TestFailure(f"{_prefix(msg)}{item!r} not in {container!r}")


def check_raises(exc_types, fn, *args, **kwargs):
    """Calls fn and returns the exception it raised; fails if it raised none."""
    try:
        fn(*args, **kwargs)
    except exc_types as e:
        return e
    raise TestFailure(f"{getattr(fn, '__name__', fn)} did not raise {exc_types}")


def skip(reason):
    raise Skip(reason)


def require_exe(name):
    """Path of an optional peer program, or skip the test naming what is missing."""
    path = shutil.which(name)
    if not path:
        skip(f"{name} not installed")
    return path


def wait_until(pred, timeout=10.0, interval=0.02, msg="condition"):
    """Polls pred() until it returns a truthy value, which is returned."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise TestFailure(f"timed out after {timeout}s waiting for {msg}")
        time.sleep(interval)


# --- ports -------------------------------------------------------------------------

_handed_out = set()


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def free_port():
    """A loopback TCP port that is free now and not handed out before by this
    process. Taken below the kernel's ephemeral range when there is room: a
    port from that range can become some outgoing connection's source port
    (a load test's, a connection pool's, another test's) between this check
    and the bind of the process it is for."""
    low = _ephemeral_low()
    if low > 12000:
        for _ in range(200):
            port = random.randint(10000, low - 1)
            if port in _handed_out:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind((LOOPBACK, port))
                except OSError:
                    continue
            _handed_out.add(port)
            return port
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((LOOPBACK, 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("no free port found")


def wait_port(port, timeout=10.0, host=LOOPBACK, proc=None):
    """Waits until host:port accepts a TCP connection; fails early if proc died."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and not proc.alive():
            raise TestFailure(f"{proc.name} exited with {proc.returncode} before port {port} opened")
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            pass
        if time.monotonic() >= deadline:
            raise TestFailure(f"port {port} not accepting after {timeout}s")
        time.sleep(0.02)


# --- processes -------------------------------------------------------------------

_live = []   # every Proc not yet stopped, for atexit / signal cleanup


def stop_all():
    for p in list(_live):
        try:
            p.stop(timeout=3)
        except Exception:
            pass


def _on_signal(signum, frame):
    stop_all()
    # SystemExit unwinds context managers and runs atexit; the exit code says why.
    sys.exit(128 + signum)


atexit.register(stop_all)
for _sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(_sig, _on_signal)


class Proc:
    """A child process in its own process group, stdout/stderr in files under logdir."""

    def __init__(self, name, logdir):
        self.name = name
        self.logdir = logdir
        self.out_path = os.path.join(logdir, f"{name}.out")
        self.err_path = os.path.join(logdir, f"{name}.err")
        self.popen = None
        self.cmd = None
        self.ready_match = None

    def start(self, cmd, env=None, cwd=None, ready=None, port=None, line=None, timeout=15.0):
        """ready: None, a callable(proc) polled until truthy, "port" (wait until
        `port` accepts) or "line" (wait until regex `line` appears on stdout;
        the match is kept in .ready_match)."""
        self.cmd = [str(c) for c in cmd]
        full_env = dict(os.environ)
        full_env.update({k: str(v) for k, v in (env or {}).items()})
        with open(self.out_path, "ab") as out, open(self.err_path, "ab") as err:
            self.popen = subprocess.Popen(self.cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                          env=full_env, cwd=cwd, start_new_session=True)
        _live.append(self)
        if ready == "port":
            wait_port(port, timeout, proc=self)
        elif ready == "line":
            self.ready_match = self.wait_line(line, timeout)
        elif callable(ready):
            wait_until(lambda: self._ready_or_dead(ready), timeout, msg=f"{self.name} ready")
        elif ready is not None:
            raise ValueError(f"unknown ready mode {ready!r}")
        return self

    def _ready_or_dead(self, fn):
        if not self.alive():
            raise TestFailure(f"{self.name} exited with {self.returncode} before ready")
        return fn(self)

    @property
    def pid(self):
        return self.popen.pid

    @property
    def returncode(self):
        return self.popen.poll()

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    def wait(self, timeout=10.0):
        return self.popen.wait(timeout)

    def wait_line(self, regex, timeout=10.0, stream="stdout"):
        """Waits until regex matches the process's stdout (or stderr) log; returns the match."""
        path = self.out_path if stream == "stdout" else self.err_path
        rx = re.compile(regex, re.M)

        def poll():
            with open(path, "rb") as f:
                m = rx.search(f.read().decode("utf-8", "replace"))
            if m:
                return m
            if not self.alive():
                raise TestFailure(f"{self.name} exited with {self.returncode} "
                                  f"before printing /{regex}/")
            return None
        return wait_until(poll, timeout, msg=f"/{regex}/ from {self.name}")

    def wait_port(self, port, timeout=10.0):
        wait_port(port, timeout, proc=self)

    def send_signal(self, sig):
        if self.alive():
            os.killpg(self.popen.pid, sig)

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Sends sig to the process group, SIGKILL after timeout; returns the exit code.

        A group is signalled only while its id is pinned: by the leader not yet
        reaped, or by members still alive. A reaped pid is free for reuse, and a
        stray signal would hit another test's process (tests run in parallel)."""
        if self.popen is None:
            return None
        pid = self.popen.pid
        if self.popen.returncode is None:
            if not self._exited_unreaped():
                try:
                    os.killpg(pid, sig)
                except ProcessLookupError:
                    pass
                deadline = time.monotonic() + timeout
                while not self._exited_unreaped() and time.monotonic() < deadline:
                    time.sleep(0.01)
                if not self._exited_unreaped():
                    print(f"pxtest: {self.name} ignored signal {sig} for {timeout}s; SIGKILL",
                          file=sys.stderr)
            # Anything the child left in its group; the unreaped leader pins the id.
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        elif group_members(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        rc = self.popen.wait(10)
        if self in _live:
            _live.remove(self)
        return rc

    def _exited_unreaped(self):
        """True once the leader has exited; it stays a zombie (not reaped)."""
        try:
            r = os.waitid(os.P_PID, self.popen.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return r is not None

    def rss_kb(self):
        """Resident set size in KiB (VmRSS from /proc/<pid>/status)."""
        with open(f"/proc/{self.pid}/status") as f:
            for ln in f:
                if ln.startswith("VmRSS:"):
                    return int(ln.split()[1])
        raise TestFailure(f"no VmRSS for {self.name} (pid {self.pid})")

    def stdout_text(self):
        return _read_text(self.out_path)

    def stderr_text(self):
        return _read_text(self.err_path)

    def logs(self):
        rc = self.popen.poll() if self.popen else None
        parts = [f"---- {self.name} (pid {self.popen.pid if self.popen else '-'}, "
                 f"exit {rc}) : {' '.join(self.cmd or [])}"]
        for label, path in (("stdout", self.out_path), ("stderr", self.err_path)):
            parts.append(f"---- {self.name} {label}:\n{_tail(path)}")
        return "\n".join(parts)


def group_members(pgid):
    """Pids of live (non-zombie) processes in process group pgid, from /proc."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # fields after the ")" that ends the command name: state ppid pgrp ...
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            pids.append(int(d))
    return pids


def _read_text(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def _tail(path, limit=LOG_TAIL_BYTES):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            data = f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return "(no file)"
    return (f"[... {size - limit} bytes cut ...]\n" if size > limit else "") + data


def _read_json_lines(path):
    out = []
    for ln in _read_text(path).splitlines():
        if ln.strip():
            out.append(json.loads(ln))
    return out


# --- peers -------------------------------------------------------------------------

class Upstream:
    def __init__(self, proc, port, record_path, unix_path):
        self.proc, self.port, self.record_path, self.unix_path = proc, port, record_path, unix_path

    def records(self):
        """Every request upstream.py fully received so far, as dicts, in order."""
        return _read_json_lines(self.record_path)

    def wait_records(self, n, timeout=10.0):
        return wait_until(lambda: (lambda r: r if len(r) >= n else None)(self.records()),
                          timeout, msg=f"{n} upstream records")


class Proxy:
    def __init__(self, proc, config, config_path):
        self.proc, self.config, self.config_path = proc, config, config_path
        self.port = _addr_port(config["listen"])
        admin = config.get("admin") or {}
        self.admin_port = _addr_port(admin["listen"]) if admin.get("listen") else None
        self.access_log_path = (config.get("log") or {}).get("access_log")
        self.checked = False
        self.expect_clean_exit = True   # tests that kill it on purpose set False

    def access_log_lines(self):
        return _read_json_lines(self.access_log_path) if self.access_log_path else []

    def wait_access_log(self, n, timeout=10.0):
        return wait_until(lambda: (lambda r: r if len(r) >= n else None)(self.access_log_lines()),
                          timeout, msg=f"{n} access log lines")

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        return self.proc.stop(sig, timeout)

    def sanitizer_errors(self):
        """Lines of the proxy's stderr that report an ASan/UBSan/LSan finding."""
        return [ln for ln in self.proc.stderr_text().splitlines()
                if any(m in ln for m in SANITIZER_MARKS)]

    def check_clean_exit(self):
        """Stops the proxy (SIGTERM) unless it has exited; fails unless the exit
        code is 0 (when .expect_clean_exit) and stderr has no sanitizer report."""
        if self.checked:
            return
        self.checked = True
        rc = self.stop() if self.proc.alive() else self.proc.returncode
        problems = []
        if self.expect_clean_exit and rc != 0:
            problems.append(f"exit code {rc} after SIGTERM (expected 0)")
        bad = self.sanitizer_errors()
        if bad:
            problems.append("sanitizer report: " + " | ".join(bad[:5]))
        if problems:
            raise TestFailure(f"{self.proc.name}: " + "; ".join(problems))


# Any of these on a proxy's stderr fails the test (ASan, LSan, UBSan).
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "AddressSanitizer:DEADLYSIGNAL")


def _addr_port(addr):
    return int(str(addr).rsplit(":", 1)[1])


def deep_merge(base, over):
    """base updated by over, recursively for dicts; a None value in over deletes the key."""
    out = dict(base)
    for k, v in over.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def pqproxy_bin():
    path = os.environ.get("PQPROXY_BIN") or os.path.join(BUILD_DIR, "pqproxy")
    if not os.access(path, os.X_OK):
        raise TestFailure(f"pqproxy binary not found at {path} (set PQPROXY_BIN)")
    return path


CERT_FILES = ("ca.crt", "server.crt", "server.key", "mldsa-ca.crt", "server-mldsa.crt",
              "server-mldsa.key", "client.crt", "client.key", "bundle-ca.crt")


class Harness:
    """One test's world: a temp dir and the processes started in it."""

    _session_tmp = None

    def __init__(self, name="test"):
        if Harness._session_tmp is None:
            script = os.path.splitext(os.path.basename(sys.argv[0] or "pxtest"))[0]
            Harness._session_tmp = tempfile.mkdtemp(prefix=f"pxtest-{script}-")
        self.name = name
        self.tmp = os.path.join(Harness._session_tmp, re.sub(r"[^\w.-]", "_", name))
        os.makedirs(self.tmp, exist_ok=True)
        self.procs = []
        self.proxies = []      # checked for a clean exit by close()
        self.extra_logs = []   # (label, path) printed on failure too
        self.upstream = None
        self._certs = None
        self._n = 0

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and not issubclass(exc_type, Skip):
            self.dump_logs()
            try:
                self.close()
            except TestFailure as e:
                print(f"pxtest: also: {e}", file=sys.stderr)
            return False
        self.close()
        return False

    def close(self):
        """Stops everything. Each proxy is stopped first with SIGTERM and must
        exit 0 with no sanitizer report on stderr, else TestFailure (once)."""
        problems = []
        for px in self.proxies:
            try:
                px.check_clean_exit()
            except TestFailure as e:
                problems.append(str(e))
        for p in reversed(self.procs):
            p.stop(timeout=5)
        if problems:
            raise TestFailure("; ".join(problems))

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def start(self, name, cmd, **kw):
        """Starts cmd as a Proc logged under tmp; kw as for Proc.start."""
        self._n += 1
        p = Proc(f"{self._n:02d}-{name}", self.tmp)
        self.procs.append(p)
        return p.start(cmd, **kw)

    def add_log(self, label, path):
        self.extra_logs.append((label, path))

    def dump_logs(self, out=None):
        out = out or sys.stdout
        for p in self.procs:
            print(p.logs(), file=out)
        for label, path in self.extra_logs:
            print(f"---- {label} ({path}):\n{_tail(path)}", file=out)
        print(f"---- temp dir: {self.tmp}", file=out)
        out.flush()

    def start_upstream(self, unix=False, record=True, name="upstream", timeout=15.0, args=()):
        """Runs upstream.py on a kernel-chosen port (READY line tells which, so no
        port race). unix=True also listens on <tmp>/upstream-N.sock; args: more
        upstream.py options (e.g. ["--delay-ms", "500"])."""
        n = self._n + 1
        rec = self.path(f"upstream-{n}.jsonl") if record else None
        sock = self.path(f"upstream-{n}.sock") if unix else None
        cmd = [sys.executable, UPSTREAM_PY, "--port", "0"]
        if rec:
            cmd += ["--record", rec]
        if sock:
            cmd += ["--unix", sock]
        cmd += [str(a) for a in args]
        p = self.start(name, cmd, ready="line", line=r"^READY (\d+)$", timeout=timeout)
        self.upstream = Upstream(p, int(p.ready_match.group(1)), rec, sock)
        return self.upstream

    def certgen(self):
        """Runs `pqproxy certgen --out <tmp>/certs` once per harness; returns the dir."""
        if self._certs:
            return self._certs
        out = self.path("certs")
        r = subprocess.run([pqproxy_bin(), "certgen", "--out", out], capture_output=True,
                           timeout=120, stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise TestFailure(f"certgen failed ({r.returncode}): "
                              f"{r.stdout.decode(errors='replace')}{r.stderr.decode(errors='replace')}")
        missing = [f for f in CERT_FILES if not os.path.exists(os.path.join(out, f))]
        check(not missing, f"certgen did not write {missing}")
        self._certs = out
        return out

    def write_config(self, cfg, name=None):
        self._n += 1
        path = self.path(name or f"config-{self._n}.json")
        with open(path, "w") as f:
            json.dump(cfg, f, indent=2)
        return path

    def base_proxy_config(self, upstream=None):
        certs = self.certgen()
        up = upstream or self.upstream or self.start_upstream()
        return {
            "listen": f"{LOOPBACK}:{free_port()}",
            "workers": 1,
            "tls": {
                "certificates": [{"cert": os.path.join(certs, "server.crt"),
                                  "key": os.path.join(certs, "server.key")}],
                # Python's ssl (OpenSSL 3.0) has no hybrid groups.
                "pq_policy": "prefer",
            },
            "upstream": {"address": f"{LOOPBACK}:{up.port}"},
            "admin": {"enabled": True, "listen": f"{LOOPBACK}:{free_port()}"},
            "log": {"access_log": self.path("access.log")},
            # A test's open connections must not hold up the SIGTERM at its end.
            "timeouts": {"drain_ms": 3000},
        }

    def start_proxy(self, overrides=None, upstream=None, name="pqproxy", timeout=15.0, env=None):
        """Runs `pqproxy run --config FILE` with base_proxy_config() deep-merged
        with overrides; waits until the listen port accepts. That readiness
        probe is one TCP connect + close on the listen port: tests counting
        connections or handshake failures must allow for it."""
        cfg = deep_merge(self.base_proxy_config(upstream), overrides or {})
        path = self.write_config(cfg)
        self.add_log("config", path)
        if cfg.get("log", {}).get("access_log", "").startswith("/"):
            self.add_log("access log", cfg["log"]["access_log"])
        p = self.start(name, [pqproxy_bin(), "run", "--config", path], env=env,
                       ready="port", port=_addr_port(cfg["listen"]), timeout=timeout)
        px = Proxy(p, cfg, path)
        self.proxies.append(px)
        return px


# --- HTTP / TLS clients -----------------------------------------------------------------

_GROUP_ALIASES = {"secp256r1": "prime256v1", "p-256": "prime256v1", "p-384": "secp384r1",
                  "p-521": "secp521r1"}


def tls_connect(port, cafile, server_hostname="localhost", groups=None, certfile=None,
                keyfile=None, alpn=None, timeout=10.0, host=LOOPBACK):
    """A TLS socket to host:port verified against cafile. groups: one group name
    (Python 3.11 can only restrict to a single group, via set_ecdh_curve).
    Debian 12's Python 3.11.2 takes only EC curve names there (prime256v1,
    secp384r1, secp521r1), not X25519: asking for a group this Python cannot
    select skips the test, naming the group."""
    ctx = ssl.create_default_context(cafile=cafile)
    if groups:
        names = [groups] if isinstance(groups, str) else list(groups)
        if len(names) != 1:
            raise ValueError("Python's ssl can set only one group")
        name = _GROUP_ALIASES.get(names[0].lower(), names[0])
        try:
            ctx.set_ecdh_curve(name)
        except (ssl.SSLError, ValueError) as e:
            skip(f"this Python's ssl cannot select TLS group {names[0]}: {e}")
    if certfile:
        ctx.load_cert_chain(certfile, keyfile)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    raw = socket.create_connection((host, port), timeout=timeout)
    try:
        return ctx.wrap_socket(raw, server_hostname=server_hostname)
    except BaseException:
        raw.close()
        raise


def tcp_connect(port, timeout=10.0, host=LOOPBACK):
    return socket.create_connection((host, port), timeout=timeout)


class Response:
    def __init__(self):
        self.version = None
        self.status = None
        self.reason = None
        self.headers = []         # [(name, value)] in order
        self.body = b""
        self.body_len = 0
        self.trailers = []
        self.raw = b""            # every byte of this response as received
        self.interim = []         # 1xx responses skipped before this one: [(status, headers)]
        self.framing = None       # "length", "chunked", "close" or "none"

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Response {self.status} {self.reason!r} {len(self.raw)} bytes>"


class IncompleteResponse(Exception):
    """The peer closed (FIN, or RST if .reset) before the response was complete."""

    def __init__(self, msg, partial, reset):
        super().__init__(msg)
        self.partial, self.reset = partial, reset


# Bytes received past the end of one response (pipelining) wait here for the next.
_leftover = weakref.WeakKeyDictionary()


class _Reader:
    def __init__(self, sock, resp, timeout, max_bytes):
        self.sock, self.resp, self.max_bytes = sock, resp, max_bytes
        self.deadline = time.monotonic() + timeout
        self.buf = _leftover.pop(sock, b"")
        self.eof = False

    def more(self):
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TestFailure(f"response not complete in time (got {self.resp!r})")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(256 * 1024)
        except socket.timeout:
            raise TestFailure(f"response not complete in time (got {self.resp!r})")
        except ConnectionResetError:
            raise IncompleteResponse("connection reset", self.resp, True)
        except ssl.SSLError as e:
            raise IncompleteResponse(f"TLS error: {e}", self.resp, False)
        if not data:
            self.eof = True
        return data

    def fill(self):
        data = self.more()
        if not data:
            raise IncompleteResponse("connection closed mid-response", self.resp, False)
        self.buf += data

    def line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                ln, self.buf = self.buf[:i], self.buf[i + 2:]
                self.resp.raw += ln + b"\r\n"
                return ln
            if len(self.buf) > 64 * 1024:
                raise TestFailure("response line longer than 64 KiB")
            self.fill()

    def exact(self, n, on_body):
        while n > 0:
            if not self.buf:
                self.fill()
            piece, self.buf = self.buf[:n], self.buf[n:]
            n -= len(piece)
            self.body(piece, on_body)

    def until_close(self, on_body):
        if self.buf:
            piece, self.buf = self.buf, b""
            self.body(piece, on_body)
        while True:
            piece = self.more()
            if not piece:
                return
            self.body(piece, on_body)

    def body(self, piece, on_body):
        r = self.resp
        r.body_len += len(piece)
        if r.body_len > self.max_bytes:
            raise TestFailure(f"response body over {self.max_bytes} bytes")
        if on_body is not None:
            on_body(piece)
        else:
            r.raw += piece
            r.body += piece


def sse_events():
    """(events, on_body): on_body, given to read_response, splits the body
    into server-sent events and appends (arrival time, event text) to events
    as each one completes."""
    events, buf = [], bytearray()

    def on_body(piece):
        buf.extend(piece)
        while b"\n\n" in buf:
            ev, _, rest = bytes(buf).partition(b"\n\n")
            buf[:] = rest
            events.append((time.monotonic(), ev.decode()))
    return events, on_body


def read_response(sock, method="GET", timeout=10.0, on_body=None, skip_1xx=True,
                  max_bytes=64 << 20):
    """Reads one HTTP/1.1 response (Content-Length, chunked or close-delimited).
    on_body(piece) receives body bytes as they arrive instead of storing them
    (for huge or streamed bodies). With skip_1xx=False a 1xx is returned as is."""
    resp = Response()
    rd = _Reader(sock, resp, timeout, max_bytes if on_body is None else 1 << 62)
    while True:
        status_line = rd.line()
        m = re.match(rb"^(HTTP/\d\.\d) (\d{3})(?: (.*))?$", status_line)
        if not m:
            raise TestFailure(f"bad status line {status_line!r}")
        resp.version = m.group(1).decode()
        resp.status = int(m.group(2))
        resp.reason = (m.group(3) or b"").decode("latin-1")
        resp.headers = []
        while True:
            ln = rd.line()
            if not ln:
                break
            k, sep, v = ln.partition(b":")
            if not sep:
                raise TestFailure(f"bad header line {ln!r}")
            resp.headers.append((k.decode("latin-1"), v.strip().decode("latin-1")))
        if 100 <= resp.status < 200 and resp.status != 101:
            if not skip_1xx:
                resp.framing = "none"
                _leftover[sock] = rd.buf
                return resp
            resp.interim.append((resp.status, resp.headers))
            continue
        break

    te = resp.header("transfer-encoding")
    cl = resp.header("content-length")
    if method == "HEAD" or resp.status in (204, 304) or resp.status == 101:
        resp.framing = "none"
    elif te is not None and te.lower().split(",")[-1].strip() == "chunked":
        resp.framing = "chunked"
        while True:
            size_ln = rd.line()
            size = int(size_ln.split(b";")[0].strip(), 16)
            if size == 0:
                break
            rd.exact(size, on_body)
            if rd.line() != b"":
                raise TestFailure("chunk data not followed by CRLF")
        while True:
            ln = rd.line()
            if not ln:
                break
            k, _, v = ln.partition(b":")
            resp.trailers.append((k.decode("latin-1"), v.strip().decode("latin-1")))
    elif cl is not None:
        resp.framing = "length"
        rd.exact(int(cl), on_body)
    else:
        resp.framing = "close"
        rd.until_close(on_body)
    _leftover[sock] = rd.buf
    return resp


def build_request(method, target, headers=None, body=None, host="localhost", chunked=False):
    """Request bytes. headers: list of (name, value) sent in order. Host and
    Content-Length are added unless given; chunked=True sends body (bytes or
    an iterable of bytes pieces) as chunks."""
    headers = list(headers or [])
    names = {k.lower() for k, _ in headers}
    if "host" not in names and host is not None:
        headers.insert(0, ("Host", host))
    if chunked:
        if "transfer-encoding" not in names:
            headers.append(("Transfer-Encoding", "chunked"))
        pieces = [body] if isinstance(body, (bytes, bytearray)) else list(body or [])
        payload = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces if p) + b"0\r\n\r\n"
    else:
        payload = body or b""
        if isinstance(payload, str):
            payload = payload.encode()
        if (body is not None or method in ("POST", "PUT", "PATCH")) and \
                "content-length" not in names and "transfer-encoding" not in names:
            headers.append(("Content-Length", str(len(payload))))
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    return head.encode("latin-1") + payload


def http_request(sock_or_port, method, target, headers=None, body=None, host="localhost",
                 chunked=False, timeout=10.0, on_body=None):
    """Sends one request and reads its response. Given a port, opens (and
    closes) a plain TCP connection to 127.0.0.1:port; given a socket, uses it."""
    own = isinstance(sock_or_port, int)
    sock = tcp_connect(sock_or_port, timeout) if own else sock_or_port
    try:
        send_raw(sock, build_request(method, target, headers, body, host, chunked))
        return read_response(sock, method, timeout, on_body=on_body)
    finally:
        if own:
            sock.close()


def send_raw(sock, data):
    if isinstance(data, str):
        data = data.encode("latin-1")
    sock.sendall(data)


def read_until_closed(sock, timeout=10.0):
    """Everything until EOF; (data, reset) where reset says the peer sent RST."""
    deadline = time.monotonic() + timeout
    data = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TestFailure("peer did not close in time")
        sock.settimeout(left)
        try:
            piece = sock.recv(65536)
        except socket.timeout:
            raise TestFailure("peer did not close in time")
        except ConnectionResetError:
            return data, True
        if not piece:
            return data, False
        data += piece


def is_closed(sock, timeout=2.0):
    """True if the peer closes (EOF or RST) within timeout without sending anything."""
    data, _ = read_until_closed(sock, timeout)
    return data == b""


# --- runner ------------------------------------------------------------------------------

class _Timeout(TestFailure):
    pass


def _alarm(signum, frame):
    raise _Timeout("test timed out")


def main(tests, argv=None):
    """Runs test functions in order (each gets a fresh Harness if it takes an
    argument); prints ok/FAIL/SKIP lines and 'N passed, M failed[, K skipped]'.
    argv: optional test names to run (default: sys.argv[1:]). Exits 0, 1 on
    any failure, or SKIP_EXIT (77) when every test skipped."""
    argv = sys.argv[1:] if argv is None else argv
    if argv:
        unknown = set(argv) - {t.__name__ for t in tests}
        if unknown:
            print(f"unknown tests: {sorted(unknown)}")
            sys.exit(2)
        tests = [t for t in tests if t.__name__ in argv]
    per_test = int(os.environ.get("PX_TEST_TIMEOUT", "120"))
    signal.signal(signal.SIGALRM, _alarm)
    passed = failed = skipped = 0
    for t in tests:
        name = t.__name__
        h = Harness(name)
        start = time.monotonic()
        try:
            signal.alarm(per_test)
            try:
                t(h) if inspect.signature(t).parameters else t()
            finally:
                signal.alarm(0)
            h.close()
            passed += 1
            print(f"ok {name} ({time.monotonic() - start:.2f}s)", flush=True)
        except Skip as e:
            try:
                h.close()
                skipped += 1
                print(f"SKIP {name}: {e}", flush=True)
            except TestFailure as e2:
                failed += 1
                print(f"FAIL {name}: {e2}", flush=True)
                h.dump_logs()
        except Exception as e:
            failed += 1
            reason = str(e) or type(e).__name__
            print(f"FAIL {name}: {reason}", flush=True)
            traceback.print_exc(file=sys.stdout)
            try:
                h.close()    # before the dump, so it shows the exit and any sanitizer report
            except TestFailure as e2:
                print(f"also: {e2}", flush=True)
            h.dump_logs()
    tmp = Harness._session_tmp
    if tmp:
        if failed or os.environ.get("PX_KEEP_TMP"):
            print(f"temp dir kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    summary = f"{passed} passed, {failed} failed"
    if skipped:
        summary += f", {skipped} skipped"
    print(summary, flush=True)
    if failed == 0 and passed == 0 and skipped > 0:
        # Everything skipped (a missing peer): CTest reports the test as
        # skipped (SKIP_RETURN_CODE), not as passed.
        sys.exit(SKIP_EXIT)
    sys.exit(0 if failed == 0 and passed + skipped > 0 else 1)
