"""docker/: Dockerfile, compose.yaml and pqproxy.json checked without a Docker engine.

The compose file is parsed (python3-yaml) and held against docker/pqproxy.json
and the Dockerfile; the container configuration is loaded by the real binary
with the compose mounts materialized in a temp dir, then run with the demo
model behind it; the Dockerfile is linted (dockerfile-utils, installed by
`scripts/deps.sh --test-tools`) and checked for its structure.
"""
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys

import pxtest
from pxtest import check, check_eq, check_in, skip
from test_replay_redis import Redis, tls_redis_or_skip

try:
    import yaml
except ImportError:                      # scripts/deps.sh installs python3-yaml
    yaml = None

DOCKER = os.path.join(pxtest.SOURCE_DIR, "docker")
CONFIG_IN_IMAGE = "/etc/pqproxy/pqproxy.json"


def need_yaml():
    if yaml is None:
        skip("python3-yaml not installed (scripts/deps.sh installs it)")


def compose():
    need_yaml()
    with open(os.path.join(DOCKER, "compose.yaml")) as f:
        return yaml.safe_load(f)


def container_config():
    with open(os.path.join(DOCKER, "pqproxy.json")) as f:
        return json.load(f)


def port_of(addr):
    return int(addr.rsplit(":", 1)[1])


def dockerfile_instructions():
    """[(INSTRUCTION, arguments)] with continuation lines joined, comments dropped."""
    out, cur = [], ""
    with open(os.path.join(DOCKER, "Dockerfile")) as f:
        for ln in f:
            s = ln.rstrip("\n")
            if not cur and (not s.strip() or s.lstrip().startswith("#")):
                continue
            if s.rstrip().endswith("\\"):
                cur += s.rstrip()[:-1] + " "
                continue
            cur += s
            word, _, rest = cur.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
            cur = ""
    return out


def bind_mounts(svc):
    """{container path: host path (absolute)} of a service's short-syntax volumes."""
    mounts = {}
    for v in svc.get("volumes", []):
        m = re.match(r"\$\{\w+:-([^}]*)\}([^:]*):(.*)$", v)      # ${VAR:-default}/more:...
        src, rest = (m.group(1) + m.group(2), m.group(3)) if m else v.split(":", 1)
        dst = rest.split(":")[0]
        mounts[dst] = os.path.normpath(os.path.join(DOCKER, src))
    return mounts


def published(svc):
    """[(host_ip or None, host port, container port)]."""
    out = []
    for p in svc.get("ports", []):
        parts = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(p)).split(":")   # ${VAR:-default}
        check(len(parts) in (2, 3), f"port {p!r}: give HOST:CONTAINER")
        ip = parts[0] if len(parts) == 3 else None
        out.append((ip, int(parts[-2]), int(parts[-1])))
    return out


def healthcheck_url(test):
    check(test[0] == "CMD" and test[1:3] == ["pqproxy", "healthcheck"], f"healthcheck {test}")
    return test[test.index("--url") + 1] if "--url" in test else "http://127.0.0.1:9901/healthz"


# --- compose -------------------------------------------------------------------------

def test_compose_services():
    c = compose()
    cfg = container_config()
    svcs = c["services"]
    check_eq(sorted(svcs), ["demo-grpc-model", "demo-model", "open-model", "pqproxy", "sealed-model",
                            "tfserving"], "services")
    px = svcs["pqproxy"]
    check("profiles" not in px, "pqproxy runs in every profile")
    check_eq(svcs["tfserving"]["profiles"], ["tfserving"])
    check_eq(svcs["demo-model"]["profiles"], ["demo"])
    with open(os.path.join(DOCKER, ".env")) as f:
        check_in("COMPOSE_PROFILES=tfserving", f.read().splitlines(), "docker/.env default profile")
    # pqproxy publishes its TLS port; the admin port only on the host's loopback
    ports = published(px)
    listen = port_of(cfg["listen"])
    admin = port_of(cfg["admin"]["listen"])
    check_in((None, 8443, listen), ports, "8443 published to the TLS listener")
    check_eq(listen, 8443)
    for ip, host_port, cport in ports:
        if cport == admin:
            check_eq(ip, "127.0.0.1", "admin port published on loopback only")
        else:
            check_eq(cport, listen, "only the TLS port is published to all interfaces")
    # the model servers share pqproxy's network namespace and publish nothing
    upstream = cfg["upstream"]["address"]
    check(upstream.startswith("127.0.0.1:"), "upstream on the shared loopback")
    for name in ("tfserving", "demo-model", "sealed-model", "demo-grpc-model"):
        s = svcs[name]
        check_eq(s.get("network_mode"), "service:pqproxy", f"{name} network_mode")
        check("ports" not in s and "expose" not in s, f"{name} publishes no port")
        check_in("pqproxy", s.get("depends_on", []), f"{name} depends_on")
        check_in("ALL", s.get("cap_drop", []), f"{name} cap_drop")
    # TF Serving: MODEL_NAME and models/<name>/<version>/ under /models, REST on 8501
    tf = svcs["tfserving"]
    check(tf["image"].split(":-")[-1].startswith("tensorflow/serving:"), "official image")
    check_in("MODEL_NAME", tf["environment"])
    check_in("/models", bind_mounts(tf), "model volume")
    check_eq(port_of(upstream), 8501, "TF Serving's REST port")
    # the demo model: the bundled script, on the upstream port
    demo = svcs["demo-model"]
    script = bind_mounts(demo)["/app/demo_model_server.py"]
    check_eq(script, os.path.join(pxtest.SOURCE_DIR, "scripts", "demo_model_server.py"))
    cmd = demo["command"]
    check_eq(cmd[cmd.index("--port") + 1], str(port_of(upstream)), "demo port")
    check_eq(cmd[cmd.index("--host") + 1], "127.0.0.1", "demo binds loopback")
    # the gRPC demo: its own profile (the demo profile needs no image build),
    # on loopback 8500, writable /tmp only (for its compiled .proto files)
    g = svcs["demo-grpc-model"]
    check_eq(g["profiles"], ["demo-grpc"])
    check_eq((flag(g["command"], "--host"), flag(g["command"], "--port")), ("127.0.0.1", "8500"))
    check_eq(g["build"]["dockerfile"], "docker/demo-grpc.Dockerfile")
    check_eq((g.get("read_only"), g.get("tmpfs")), (True, ["/tmp"]))
    check_in("no-new-privileges:true", g.get("security_opt", []))
    check_eq(g["user"], "65534:65534")
    check_in("127.0.0.1:8500", " ".join(g["healthcheck"]["test"]))
    # the proxy fronts it (and TF Serving's gRPC port) on the same TLS port:
    # upstreams.grpc over h2c, chosen for gRPC requests
    for name in ("pqproxy.json", "pqproxy-redis.json"):
        with open(os.path.join(DOCKER, name)) as f:
            conf = json.load(f)
        check_eq(conf["upstreams"]["grpc"], {"address": f"127.0.0.1:{flag(g['command'], '--port')}",
                                             "protocol": "h2c"}, f"{name}: the gRPC port")
        check_eq(conf["routes"], [{"prefix": "/", "grpc": True, "upstream": "grpc"}], f"{name}: the gRPC route")
    check("h2" in cfg["tls"].get("alpn", ["h2"]), "the listener offers h2 (default ALPN)")
    # hardening of the proxy container
    check(px.get("read_only") is True, "read_only root file system")
    check_in("ALL", px.get("cap_drop", []))
    check_in("no-new-privileges:true", px.get("security_opt", []))
    user = re.sub(r"\$\{\w+:-(\w+)\}", r"\1", px["user"])
    check_eq(user, "10001:10001", "non-root user")
    check_eq(px["build"]["dockerfile"], "docker/Dockerfile")
    check_eq(os.path.normpath(os.path.join(DOCKER, px["build"]["context"])), pxtest.SOURCE_DIR)


def flag(cmd, name):
    check_in(name, cmd)
    return cmd[cmd.index(name) + 1]


def volume_at(svc, path):
    """(source, path inside it) of what a service mounts over path: a named
    volume's name, or a bind mount's absolute host path."""
    best = None
    for v in svc.get("volumes", []):
        m = re.match(r"\$\{\w+:-([^}]*)\}([^:]*):(.*)$", v)
        src, rest = (m.group(1) + m.group(2), m.group(3)) if m else v.split(":", 1)
        dst = rest.split(":")[0]
        if (path == dst or path.startswith(dst + "/")) and (not best or len(dst) > len(best[1])):
            named = re.fullmatch(r"[\w-]+", src)
            best = (src if named else os.path.normpath(os.path.join(DOCKER, src)), dst, rest)
    check(best, f"nothing mounted at {path}")
    return best[0], os.path.relpath(path, best[1]), best[2].endswith(":ro")


def test_compose_sealed_model():
    """The one-shot open-model service and the model server that waits for it:
    every path on open-model's command line is on the mount the sealed layout
    (scripts/seal-demo-model.sh --out SEALED_DIR) puts it, and the model
    server reads the opened model from the same named volume."""
    c = compose()
    svcs = c["services"]
    om, model = svcs["open-model"], svcs["sealed-model"]
    for name in ("open-model", "sealed-model"):
        check_eq(svcs[name]["profiles"], ["sealed"], name)
        check(svcs[name].get("read_only") is True and "ALL" in svcs[name]["cap_drop"], f"{name} hardening")
    check_eq(om["image"], svcs["pqproxy"]["image"], "the pqproxy image")
    check_eq(om["restart"], "no", "one-shot")
    check_eq(om["network_mode"], "none", "opening a model needs no network")
    check_eq(om["entrypoint"][:2], ["sh", "-c"])
    check_in("exec pqproxy open-model", om["entrypoint"][2])
    cmd = om["command"]
    sealed = os.path.join(DOCKER, "sealed")
    check_eq(volume_at(om, flag(cmd, "--manifest")), (os.path.join(sealed, "volume"), "manifest.json", True))
    check_eq(volume_at(om, flag(cmd, "--in")), (os.path.join(sealed, "volume"), "model", True))
    check_eq(volume_at(om, flag(cmd, "--pub")), (os.path.join(sealed, "pub"), "model", True))
    check_eq(volume_at(om, flag(cmd, "--identity-file")), (os.path.join(sealed, "identity"), ".", True))
    out = volume_at(om, flag(cmd, "--out"))
    check_eq(out[:2], ("opened-model", "."))
    check_in("find " + flag(cmd, "--out") + " -mindepth 1 -delete", om["entrypoint"][2],
             "a model opened by an earlier run is removed first")
    check_in("opened-model", c["volumes"], "a named volume shared by the two services")
    # the model server starts only after open-model exited 0, and reads what it wrote
    check_eq(model["depends_on"]["open-model"], {"condition": "service_completed_successfully"})
    mdir = flag(model["command"], "--model-dir")
    check_eq(volume_at(model, mdir), ("opened-model", ".", True))
    check_eq(model["user"], om["user"], "the model server reads what open-model wrote (0750)")
    # the image gives a new named volume there to the user open-model runs as
    run = " ".join(a for i, a in dockerfile_instructions() if i == "RUN")
    check_in("install -d -m 0750 -o 10001 -g 10001 /var/lib/pqproxy /var/lib/pqproxy/model", run)


def test_compose_healthchecks_and_stop():
    c = compose()
    cfg = container_config()
    px = c["services"]["pqproxy"]
    url = healthcheck_url(px["healthcheck"]["test"])
    check_eq(url, f"http://127.0.0.1:{port_of(cfg['admin']['listen'])}/healthz", "probe URL")
    check(cfg["admin"]["enabled"], "admin enabled")
    check_eq(cfg["admin"]["listen"].rsplit(":", 1)[0], "0.0.0.0", "admin reachable for probes")
    # stop: SIGTERM, then longer than the drain
    check_eq(px["stop_signal"], "SIGTERM")
    grace = int(re.fullmatch(r"(\d+)s", px["stop_grace_period"]).group(1))
    check(grace * 1000 > cfg["timeouts"]["drain_ms"], "stop_grace_period > drain_ms")
    for name in ("tfserving", "demo-model", "sealed-model"):
        hc = c["services"][name]["healthcheck"]
        check(hc["test"][0] in ("CMD", "CMD-SHELL"), f"{name} healthcheck")
        check_in("127.0.0.1/8501" if name == "tfserving" else "127.0.0.1:8501", " ".join(hc["test"]))


def materialize(h):
    """The pqproxy container's file system as compose mounts it, under a temp
    root; returns the config path there (paths rewritten to the root)."""
    c = compose()
    mounts = bind_mounts(c["services"]["pqproxy"])
    check_in(CONFIG_IN_IMAGE, mounts, "config mounted where the ENTRYPOINT reads it")
    check_eq(mounts[CONFIG_IN_IMAGE], os.path.join(DOCKER, "pqproxy.json"))
    cfg = container_config()
    tls_dirs = [d for d in mounts if d != CONFIG_IN_IMAGE]
    for cert in cfg["tls"]["certificates"]:
        for k in ("cert", "key"):
            check(any(cert[k].startswith(d + "/") for d in tls_dirs),
                  f"{cert[k]} is not under a mounted directory ({tls_dirs})")
    root = h.path("rootfs")
    certs = h.certgen()
    for d in tls_dirs:
        os.makedirs(root + d, exist_ok=True)
    for cert in cfg["tls"]["certificates"]:
        # the files `pqproxy certgen --out docker/tls` writes, as the docs say
        shutil.copy(os.path.join(certs, os.path.basename(cert["cert"])), root + cert["cert"])
        shutil.copy(os.path.join(certs, os.path.basename(cert["key"])), root + cert["key"])
        cert["cert"], cert["key"] = root + cert["cert"], root + cert["key"]
    path = root + CONFIG_IN_IMAGE
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path


def test_container_config_loads(h):
    path = materialize(h)
    r = subprocess.run([pxtest.pqproxy_bin(), "check-config", path], capture_output=True, text=True,
                       timeout=30)
    check_eq(r.returncode, 0, f"check-config: {r.stderr}")
    check_in("listen 0.0.0.0:8443, upstream 127.0.0.1:8501, upstreams.grpc 127.0.0.1:8500 h2c", r.stdout)
    check_in("pq_policy require", r.stdout)
    # unmaterialized, the file names the container paths
    r = subprocess.run([pxtest.pqproxy_bin(), "check-config", os.path.join(DOCKER, "pqproxy.json")],
                       capture_output=True, text=True, timeout=30,
                       env={k: v for k, v in os.environ.items() if not k.startswith("PQPROXY_")})
    if r.returncode != 0:
        check_in("/etc/pqproxy/tls/server.crt", r.stderr)


def start_container_config(h):
    """The demo model and pqproxy on the container config, with only the
    addresses moved to free loopback ports: (proxy process, listen, admin)."""
    path = materialize(h)
    demo_port = pxtest.free_port()
    h.start("demo-model", [sys.executable, pxtest.DEMO_MODEL_PY, "--port", str(demo_port), "--quiet"],
            ready="port", port=demo_port)
    listen, admin = pxtest.free_port(), pxtest.free_port()
    env = {"PQPROXY_LISTEN": f"127.0.0.1:{listen}", "PQPROXY_ADMIN_LISTEN": f"127.0.0.1:{admin}",
           "PQPROXY_UPSTREAM": f"127.0.0.1:{demo_port}", "PQPROXY_WORKERS": "1"}
    p = h.start("pqproxy", [pxtest.pqproxy_bin(), "run", "--config", path], env=env, ready="port",
                port=listen)
    return p, listen, admin


def test_container_config_serves(h):
    """The container config proxies to the demo model over hybrid
    post-quantum TLS."""
    _, listen, _ = start_container_config(h)
    certs = h.certgen()
    r = subprocess.run([pxtest.pqproxy_bin(), "request", "--cacert", os.path.join(certs, "ca.crt"), "-v",
                        f"https://localhost:{listen}/v1/models/half_plus_two:predict",
                        "-d", '{"instances": [1.0, 2.0, 5.0]}'],
                       capture_output=True, text=True, timeout=30)
    check_eq(r.returncode, 0, f"request: {r.stderr}")
    check_in("X25519MLKEM768", r.stderr)
    check_eq(json.loads(r.stdout), {"predictions": [2.5, 3.0, 4.5]})


def test_healthcheck_command(h):
    """`pqproxy healthcheck`, as the image's HEALTHCHECK runs it."""
    port = pxtest.free_port()
    h.start("demo-model", [sys.executable, pxtest.DEMO_MODEL_PY, "--port", str(port), "--quiet"],
            ready="port", port=port)
    hc = [pxtest.pqproxy_bin(), "healthcheck"]

    def run(*args):
        return subprocess.run(hc + list(args), capture_output=True, text=True, timeout=30)
    r = run("--url", f"http://127.0.0.1:{port}/healthz")
    check_eq(r.returncode, 0, r.stderr)
    check_in("status 200", r.stdout)
    check_eq(run("--quiet", "--url", f"http://127.0.0.1:{port}/healthz").stdout, "")
    r = run("--url", f"http://127.0.0.1:{port}/nope")
    check_eq(r.returncode, 1)
    check_in("status 404", r.stderr)
    r = run("--url", f"http://127.0.0.1:{pxtest.free_port()}/healthz", "--timeout", "2000")
    check_eq(r.returncode, 1)
    check_in("Connection refused", r.stderr)
    check_eq(run("--url", "https://127.0.0.1/").returncode, 1)
    check_eq(run("--bogus").returncode, 2)
    # a server that accepts and never answers: the deadline holds
    import socket
    import time
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        t0 = time.monotonic()
        r = run("--url", f"http://127.0.0.1:{s.getsockname()[1]}/healthz", "--timeout", "500")
        check_eq(r.returncode, 1)
        check(time.monotonic() - t0 < 5, "timeout honoured")
        check_in("timed out", r.stderr)


def test_admin_healthz_in_container_config(h):
    """The probe the image and compose use, against the proxy's admin port."""
    p, _, admin = start_container_config(h)
    try:
        pxtest.wait_port(admin, timeout=3, proc=p)
    except pxtest.TestFailure:
        skip("this build has no admin listener yet (the lead's admin work): /healthz not served")
    r = subprocess.run([pxtest.pqproxy_bin(), "healthcheck", "--url", f"http://127.0.0.1:{admin}/healthz"],
                       capture_output=True, text=True, timeout=30)
    check_eq(r.returncode, 0, r.stderr)


# --- Dockerfile ---------------------------------------------------------------------------

def test_dockerfile_structure():
    ins = dockerfile_instructions()
    args = {}
    for k, v in ins:
        if k == "ARG" and "=" in v:
            n, _, d = v.partition("=")
            args[n] = d

    def expand(s):
        return re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), s)
    froms = [(i, expand(v)) for i, (k, v) in enumerate(ins) if k == "FROM"]
    check_eq(len(froms), 2, "two stages")
    check(re.fullmatch(r"debian:12 AS build", froms[0][1]), f"build stage {froms[0][1]}")
    check(re.fullmatch(r"debian:12-slim AS runtime", froms[1][1]), f"runtime stage {froms[1][1]}")
    build = ins[froms[0][0]:froms[1][0]]
    runtime = ins[froms[1][0]:]
    runs = " ".join(v for k, v in build if k == "RUN")
    check_in("scripts/deps.sh", runs, "the build stage uses the project's own deps.sh")
    check(re.search(r"\bmake build\b", runs), "the build stage uses make")
    check(not re.search(r"\./configure|autogen|cmake -S|apt-get source|wget |curl ", runs),
          "no second build recipe")
    check_in("PQPROXY_CACHE=/build/", " ".join(v for k, v in build if k == "ENV"),
             "deps cache in a build-stage path")
    check(not any(k == "ADD" for k, _ in ins), "COPY, not ADD (no remote or auto-extracted sources)")
    # runtime: only the runtime libraries, the binary from the build stage
    rruns = " ".join(v for k, v in runtime if k == "RUN")
    pkgs = re.search(r"apt-get install -y --no-install-recommends ([^&]+)", rruns).group(1).split()
    check_eq(sorted(pkgs), ["libcjson1", "libhiredis0.14", "libnghttp2-14", "libuv1"], "runtime packages")
    check_in("rm -rf /var/lib/apt/lists/*", rruns)
    check_in("--uid 10001", rruns)
    copies = [v for k, v in runtime if k == "COPY"]
    check(any(v.startswith("--from=build ") and v.endswith("/usr/local/bin/pqproxy") for v in copies),
          "binary copied from the build stage")
    users = [v for k, v in runtime if k == "USER"]
    check(users and users[-1].split(":")[0] == "10001", f"USER 10001 last, got {users}")
    check_eq(sorted(" ".join(v for k, v in runtime if k == "EXPOSE").split()), ["8443", "9901"])
    check_eq([v for k, v in runtime if k == "STOPSIGNAL"], ["SIGTERM"])
    hc = [v for k, v in runtime if k == "HEALTHCHECK"]
    check_eq(len(hc), 1, "HEALTHCHECK")
    cmd = json.loads(hc[0].split(" CMD ", 1)[1])
    check_eq(healthcheck_url(["CMD"] + cmd),
             f"http://127.0.0.1:{port_of(container_config()['admin']['listen'])}/healthz")
    ep = [json.loads(v) for k, v in runtime if k == "ENTRYPOINT"]
    check_eq(ep, [["pqproxy", "run", "--config", CONFIG_IN_IMAGE]], "ENTRYPOINT")


def test_binary_links_only_runtime_libraries():
    """What the runtime stage installs is all the binary needs: wolfSSL and
    llhttp are static, libuv, cJSON, hiredis and nghttp2 come from libuv1,
    libcjson1, libhiredis0.14 and libnghttp2-14 (nghttp2 once the HTTP/2
    session is linked in)."""
    if not shutil.which("ldd"):
        skip("ldd not available")
    out = subprocess.run(["ldd", pxtest.pqproxy_bin()], capture_output=True, text=True).stdout
    libs = sorted(re.findall(r"^\s*(\S+\.so[.\d]*)", out, re.M))
    names = [re.sub(r"\.so.*", "", os.path.basename(n)) for n in libs]
    allowed = {"linux-vdso", "ld-linux-x86-64", "libc", "libm", "libuv", "libcjson", "libhiredis", "libnghttp2", "libpthread", "libdl"}
    if "libasan" in names:               # the ASan+UBSan build: its runtime comes along
        allowed |= {"libasan", "libubsan", "libgcc_s", "libstdc++"}
    extra = [n for n in names if n not in allowed]
    check_eq(extra, [], f"unexpected shared libraries in {out}")
    check_in("libuv", names)
    check_in("libcjson", names)
    check_in("libhiredis", names)


def lint_tool():
    env = os.environ.get("PX_DOCKERFILE_LINT")
    if env:
        return env
    cache = os.environ.get("PQPROXY_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "pqproxy")
    # scripts/deps.sh --test-tools installs tests/npm's locked tree under a
    # directory keyed by the hash of package.json and package-lock.json.
    npm_dir = os.path.join(os.environ.get("PX_SOURCE_DIR", "."), "tests", "npm")
    h = hashlib.sha256()
    for f in ("package.json", "package-lock.json"):
        with open(os.path.join(npm_dir, f), "rb") as fh:
            h.update(fh.read())
    tool = os.path.join(cache, f"npm-tests-{h.hexdigest()[:12]}", "node_modules", ".bin",
                        "dockerfile-utils")
    return tool if os.path.exists(tool) else shutil.which("dockerfile-utils")


def test_dockerfile_lint():
    tool = lint_tool()
    if not tool:
        skip("dockerfile-utils not installed (scripts/deps.sh --test-tools, which `make test` runs)")
    if not shutil.which("node"):
        skip("node not installed (dockerfile-utils is a Node.js tool)")
    for name in ("Dockerfile", "demo-grpc.Dockerfile"):
        r = subprocess.run([tool, "lint", os.path.join(DOCKER, name)], capture_output=True, text=True,
                           timeout=60)
        check_eq((r.returncode, r.stdout.strip()), (0, ""), f"dockerfile-utils lint {name}: {r.stdout}{r.stderr}")
    # and it does catch mistakes (so a silent pass means something)
    bad = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"pxtest-bad-{os.getpid()}.Dockerfile")
    with open(bad, "w") as f:
        f.write("FROM debian:12\nEXPOSE abc\nHEALTHCHECK CMD\n")
    try:
        r = subprocess.run([tool, "lint", bad], capture_output=True, text=True, timeout=60)
    finally:
        os.unlink(bad)
    check(r.returncode != 0 and "Invalid containerPort" in r.stdout, f"linter output: {r.stdout}")


def test_docker_build_check():
    """`docker build --check` (BuildKit's own lint) when this machine can run it."""
    docker = shutil.which("docker")
    if not docker:
        skip("no docker CLI")
    helptext = subprocess.run([docker, "build", "--help"], capture_output=True, text=True, timeout=30)
    if "--check" not in helptext.stdout + helptext.stderr:
        skip("this docker CLI has no `build --check` (it needs the buildx plugin and a daemon)")
    r = subprocess.run([docker, "build", "--check", "-f", os.path.join(DOCKER, "Dockerfile"),
                        pxtest.SOURCE_DIR], capture_output=True, text=True, timeout=120)
    if r.returncode != 0 and re.search(r"daemon|docker\.sock|connect", r.stderr, re.I):
        skip(f"no Docker daemon: {r.stderr.strip().splitlines()[-1]}")
    check_eq(r.returncode, 0, r.stdout + r.stderr)


def test_dockerignore():
    with open(os.path.join(pxtest.SOURCE_DIR, ".dockerignore")) as f:
        lines = {ln.strip() for ln in f if ln.strip() and not ln.startswith("#")}
    for must in (".git", "build", "build-*", "config/certs", "docker/tls", "docker/sealed"):
        check_in(must, lines, ".dockerignore")
    check(not ({"scripts", "src", "docker"} & lines), "sources stay in the context")


# --- compose.redis.yaml: the shared state -------------------------------------------------

def test_compose_redis_override(h):
    """compose.redis.yaml over compose.yaml: Redis in pqproxy's network
    namespace on its loopback, TLS only, no persistence, hardened; pqproxy's
    config replaced by pqproxy-redis.json, which finds Redis, its password
    and its CA where the override puts them. Then that config, with only the
    Redis port moved, against a real redis-server on TLS with the password:
    the ticket keys come from Redis and a key lands under the configured
    prefix."""
    need_yaml()
    with open(os.path.join(DOCKER, "compose.redis.yaml")) as f:
        over = yaml.safe_load(f)
    base = compose()
    redis = over["services"]["redis"]
    check("profiles" not in redis, "runs whenever the override is used")
    check_eq(redis["network_mode"], "service:pqproxy")
    check_in("pqproxy", redis["depends_on"])
    check("ports" not in redis and "expose" not in redis, "Redis publishes nothing")
    check(redis.get("read_only") is True and "ALL" in redis["cap_drop"], "hardened")
    check_in("no-new-privileges:true", redis["security_opt"])
    cmd = redis["command"][-1]
    for flag_ in ("--bind 127.0.0.1", "--save ''", "--appendonly no", "--maxmemory-policy noeviction"):
        check_in(flag_, cmd)
    check_in("--port 0 ", cmd, "no plain TCP port")
    port = int(re.search(r"--tls-port (\d+)", cmd).group(1))
    pw_in_redis = re.search(r"cat (/\S+)\)", cmd).group(1)
    tls_in_redis = {f: re.search(rf"--{f} (\S+)", cmd).group(1)
                    for f in ("tls-cert-file", "tls-key-file", "tls-ca-cert-file")}
    check_in("--tls-auth-clients no", cmd)
    check_in(f"--tls --cacert {tls_in_redis['tls-ca-cert-file']}", redis["healthcheck"]["test"][-1],
             "the healthcheck speaks TLS")
    # pqproxy: the override's mounts win by container path
    mounts = bind_mounts(base["services"]["pqproxy"])
    mounts.update(bind_mounts(over["services"]["pqproxy"]))
    check_eq(mounts[CONFIG_IN_IMAGE], os.path.join(DOCKER, "pqproxy-redis.json"))
    with open(os.path.join(DOCKER, "pqproxy-redis.json")) as f:
        cfg = json.load(f)
    rs = cfg["signatures"]["replay_store"]
    check_eq((rs["type"], cfg["tls"]["ticket_keys"]["source"]), ("redis", "redis"))
    check_eq(rs["address"], f"127.0.0.1:{port}", "Redis on the shared loopback")
    redis_mounts = bind_mounts(redis)
    pw_dir = os.path.dirname(rs["password_file"])
    check_eq(mounts[pw_dir], redis_mounts[os.path.dirname(pw_in_redis)], "one secrets directory")
    check_eq(os.path.basename(rs["password_file"]), os.path.basename(pw_in_redis), "one password file")
    check_eq(mounts[pw_dir], os.path.join(DOCKER, "secrets"))
    # pqproxy checks Redis's certificate against the CA Redis was given
    ca = rs["tls"]["ca_file"]
    in_secrets = os.path.relpath(ca, pw_dir)
    check_eq(in_secrets, os.path.relpath(tls_in_redis["tls-ca-cert-file"], os.path.dirname(pw_in_redis)),
             "one CA file")
    check_eq(rs["tls"]["server_name"], "localhost", "a name certgen's server certificate carries")
    with open(os.path.join(pxtest.SOURCE_DIR, ".gitignore")) as f:
        check_in("/docker/secrets/", f.read().split(), "the password is not committed")
    with open(os.path.join(pxtest.SOURCE_DIR, ".dockerignore")) as f:
        check_in("docker/secrets", f.read().split(), "nor in the image's build context")
    # the container config, live: certificates and the password materialized
    tls_redis_or_skip()
    root = h.path("rootfs")
    certs = h.certgen()
    server = Redis(h, password="compose-secret", tls_dir=certs)
    os.makedirs(os.path.dirname(root + ca), exist_ok=True)
    shutil.copy(os.path.join(certs, "ca.crt"), root + ca)
    rs["tls"]["ca_file"] = root + ca
    for cert in cfg["tls"]["certificates"]:
        for k in ("cert", "key"):
            os.makedirs(root + os.path.dirname(cert[k]), exist_ok=True)
            shutil.copy(os.path.join(certs, os.path.basename(cert[k])), root + cert[k])
            cert[k] = root + cert[k]
    os.makedirs(root + pw_dir, exist_ok=True)
    with open(root + rs["password_file"], "w") as f:
        f.write("compose-secret\n")
    rs["password_file"] = root + rs["password_file"]
    rs["address"] = f"127.0.0.1:{server.port}"
    path = h.write_config(cfg)
    r = subprocess.run([pxtest.pqproxy_bin(), "check-config", path], capture_output=True, text=True,
                       timeout=30, env={k: v for k, v in os.environ.items() if not k.startswith("PQPROXY_")})
    check_eq(r.returncode, 0, r.stderr)
    listen, admin = pxtest.free_port(), pxtest.free_port()
    p = h.start("pqproxy", [pxtest.pqproxy_bin(), "run", "--config", path], ready="port", port=listen,
                env={"PQPROXY_LISTEN": f"127.0.0.1:{listen}", "PQPROXY_ADMIN_LISTEN": f"127.0.0.1:{admin}",
                     "PQPROXY_WORKERS": "1"})
    pxtest.wait_until(lambda: "key(s) from redis in use" in p.stderr_text(), timeout=10,
                      msg="ticket keys from Redis")
    prefix = cfg["tls"]["ticket_keys"]["redis_prefix"]
    check_eq(server.cli("STRLEN", prefix + "current"), "32")
    p.stop()


if __name__ == "__main__":
    pxtest.main([test_compose_services, test_compose_sealed_model, test_compose_healthchecks_and_stop,
                 test_container_config_loads,
                 test_container_config_serves, test_healthcheck_command,
                 test_admin_healthz_in_container_config, test_dockerfile_structure,
                 test_binary_links_only_runtime_libraries, test_dockerfile_lint, test_docker_build_check,
                 test_dockerignore, test_compose_redis_override])
