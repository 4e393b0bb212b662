"""Optional (PX_KUBE_PLAY=1): the base's pod, rendered by kustomize, run by
`podman kube play` with the sidecar as an ordinary container (podman has no
native sidecars), the demo model server in place of TF Serving, and a
request through it (docs/deploy.md, "Trying the pod with podman").

Images are made offline from this machine's files: the pqproxy binary with
the libraries ldd names, and Debian's python3 with the demo model server.
Proves: the rendered pod's security contexts (uid 10001, read-only root,
no capabilities) let pqproxy start, the ConfigMap and the TLS Secret mount
where pqproxy.json looks, and a hybrid TLS request reaches the model server
over the pod's loopback. Does not prove: native-sidecar start/stop order,
kubelet probes, draining, the Service, the NetworkPolicy, or injection."""
import copy
import json
import os
import shutil
import subprocess
import tarfile

import pxtest
from pxtest import check, check_eq, check_in, skip

import test_deploy_k8s as k8s

TAG = f"pxtest-{os.getpid()}"


def podman(*args, timeout=180, env=None):
    r = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, env=env)
    check_eq(r.returncode, 0, f"podman {' '.join(args)}: {r.stderr}")
    return r.stdout


def image(h, ref, files):
    """Image ref made from host files (path -> path in the image) by podman import."""
    tar = h.path("image.tar")
    with tarfile.open(tar, "w") as t:
        for src, dst in files.items():
            t.add(src, arcname=dst.lstrip("/"), filter=lambda i: None if "__pycache__" in i.name else i)
    podman("import", "--change", "ENV PATH=/usr/local/bin:/usr/bin", tar, ref)
    os.unlink(tar)


def with_libs(binary, dst):
    files = {binary: dst}
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    for word in out.split():
        if word.startswith("/"):
            files[os.path.realpath(word)] = word
    return files


def pod_yaml(h, px_image, model_image, https_port, certs):
    """The rendered base: its ConfigMap, its TLS Secret with real keys, and the
    Deployment's pod template with the sidecar moved into containers."""
    objs = k8s.render(k8s.BASE)
    cm = next(o for o in objs if o["kind"] == "ConfigMap")
    secret = next(o for o in objs if o["kind"] == "Secret" and o["metadata"]["name"] == "pqproxy-tls")
    # podman 4.3 reads a Secret's data values as they are (no base64
    # decoding) and ignores stringData: the PEM text goes into data.
    secret.pop("stringData")
    secret["data"] = {k: open(os.path.join(certs, f)).read()
                      for k, f in (("tls.crt", "server.crt"), ("tls.key", "server.key"))}
    # podman names the ConfigMap's volume after it: a name of this run's own
    cm["metadata"]["name"] = f"{TAG}-pqproxy-config"
    tmpl = next(o for o in objs if o["kind"] == "Deployment")["spec"]["template"]
    spec = copy.deepcopy(tmpl["spec"])
    px = k8s.named(spec.pop("initContainers"), "pqproxy")
    px.pop("restartPolicy")
    px["image"] = px_image
    k8s.named(px["ports"], "pqproxy-https")["hostPort"] = https_port
    model = k8s.named(spec["containers"], "tfserving")
    model.update(image=model_image, command=["python3", "/srv/demo_model_server.py", "--quiet"])
    model.pop("env")
    spec["containers"] = [px, model]
    spec["volumes"] = [v for v in spec["volumes"] if v["name"] not in ("models", "pqproxy-signature-keys")]
    # Kubernetes' default, spelt out: podman 4.3 dereferences it unchecked.
    k8s.named(spec["volumes"], "pqproxy-tls")["secret"]["optional"] = False
    k8s.named(spec["volumes"], "pqproxy-config")["configMap"]["name"] = cm["metadata"]["name"]
    model["volumeMounts"] = [m for m in model["volumeMounts"] if m["name"] != "models"]
    px["volumeMounts"] = [m for m in px["volumeMounts"] if m["name"] != "pqproxy-signature-keys"]
    # podman makes named volumes of these: names of this run's own, removed after it
    for item in spec["volumes"] + px["volumeMounts"] + model["volumeMounts"]:
        item["name"] = f"{TAG}-{item['name']}"
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": TAG, "labels": tmpl["metadata"]["labels"]},
           "spec": spec}
    path, secret_path = h.path("pod.yaml"), h.path("secret.yaml")
    with open(path, "w") as f:
        k8s.yaml.safe_dump_all([cm, pod], f)
    with open(secret_path, "w") as f:
        k8s.yaml.safe_dump(secret, f)
    return path, secret_path, [v["name"] for v in spec["volumes"]] + [cm["metadata"]["name"]]


def test_base_pod_under_podman_kube_play(h):
    if os.environ.get("PX_KUBE_PLAY") != "1":
        skip("optional: PX_KUBE_PLAY=1 runs the base's pod with podman kube play")
    if not shutil.which("podman"):
        skip("podman not installed (Debian: apt-get install podman catatonit)")
    if not (shutil.which("catatonit") or os.path.exists("/usr/libexec/podman/catatonit")):
        skip("catatonit not installed: podman builds the pod's pause image from it (offline)")
    k8s.need_yaml()
    certs = h.path("certs")
    r = subprocess.run([pxtest.pqproxy_bin(), "certgen", "--out", certs, "--san", "localhost"],
                       capture_output=True, text=True, timeout=60)
    check_eq(r.returncode, 0, r.stderr)
    for f in os.listdir(certs):
        os.chmod(os.path.join(certs, f), 0o644)      # read by uid 10001 in the pod
    py = os.path.realpath(shutil.which("python3", path="/usr/bin"))
    stdlib = f"/usr/lib/python3.{py.rsplit('.', 1)[-1]}"
    model_files = with_libs(py, "/usr/bin/python3")
    model_files[stdlib] = stdlib
    model_files[os.path.join(pxtest.SOURCE_DIR, "scripts", "demo_model_server.py")] = "/srv/demo_model_server.py"
    px_image, model_image = f"localhost/{TAG}-pqproxy:dev", f"localhost/{TAG}-model:dev"
    port = pxtest.free_port()
    pod, secret, volumes = pod_yaml(h, px_image, model_image, port, certs)
    # This podman may not raise rlimits (no CAP_SYS_RESOURCE): lower ones only.
    conf = h.path("containers.conf")
    with open(conf, "w") as f:
        f.write('[containers]\ndefault_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]\n')
    env = dict(os.environ, CONTAINERS_CONF=conf)
    # A secret volume names a podman secret that holds the Secret object.
    secret_name = f"{TAG}-tls"
    try:
        image(h, px_image, with_libs(pxtest.pqproxy_bin(), "/usr/local/bin/pqproxy"))
        image(h, model_image, model_files)
        podman("secret", "create", secret_name, secret)
        with open(pod) as f:
            text = f.read()
        with open(pod, "w") as f:
            f.write(text.replace("secretName: pqproxy-tls", f"secretName: {secret_name}"))
        podman("kube", "play", pod, env=env)
        req = [pxtest.pqproxy_bin(), "request", "--cacert", os.path.join(certs, "ca.crt"), "-v",
               f"https://localhost:{port}/v1/models/half_plus_two:predict", "-d", '{"instances":[1.0,2.0,5.0]}']
        last = None

        def answered():
            nonlocal last
            last = subprocess.run(req, capture_output=True, text=True, timeout=30)
            return last.returncode == 0 and "predictions" in last.stdout
        # no readiness gate here: 502 until the model server listens
        pxtest.wait_until(answered, timeout=60, interval=1, msg="the pod answers on its TLS port")
        check_eq(json.loads(last.stdout), {"predictions": [2.5, 3.0, 4.5]})
        check_in("X25519MLKEM768", last.stderr)
        # the pod's security context took effect
        got = podman("inspect", f"{TAG}-pqproxy", "--format",
                     "{{.Config.User}} {{.HostConfig.ReadonlyRootfs}} {{.EffectiveCaps}}").split()
        check_eq(got[:2], ["10001:10001", "true"])
        check_eq(got[2:], ["[]"], "no capabilities")
        logs = podman("logs", f"{TAG}-pqproxy")
        check('"group":"X25519MLKEM768"' in logs, f"access log of the sidecar: {logs}")
    finally:
        h.add_log("pod", pod)
        for c in ("pqproxy", "tfserving"):
            out = subprocess.run(["podman", "logs", f"{TAG}-{c}"], capture_output=True, text=True, timeout=60)
            with open(h.path(f"{c}.log"), "w") as f:
                f.write(out.stdout + out.stderr)
            h.add_log(f"container {c}", h.path(f"{c}.log"))
        subprocess.run(["podman", "kube", "down", pod], capture_output=True, timeout=120, env=env)
        subprocess.run(["podman", "secret", "rm", secret_name], capture_output=True, timeout=60)
        subprocess.run(["podman", "volume", "rm", secret_name, *volumes], capture_output=True, timeout=60)
        subprocess.run(["podman", "rmi", px_image, model_image], capture_output=True, timeout=120)


if __name__ == "__main__":
    pxtest.main([test_base_pod_under_podman_kube_play])
