"""deploy/k8s/: the manifests parsed (python3-yaml) and held to their
invariants, the ConfigMap's pqproxy.json loaded by the real binary with the
Secret mount materialized, and the injector webhook served over HTTPS by the
real binary (certificates from make-certs.sh) answering AdmissionReview
fixtures from tests/data/admission."""
import base64
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys

import pxtest
from pxtest import check, check_eq, check_in, skip
from pxhelpers import cache_dir, npm_tests_modules

try:
    import yaml
except ImportError:                      # scripts/deps.sh installs python3-yaml
    yaml = None

K8S = os.path.join(pxtest.SOURCE_DIR, "deploy", "k8s")
BASE = os.path.join(K8S, "base")
WEBHOOK = os.path.join(K8S, "webhook")
SEALED = os.path.join(K8S, "sealed-model")
FIXTURES = os.path.join(pxtest.SOURCE_DIR, "tests", "data", "admission")
WEBHOOK_HOST = "pqproxy-webhook.pqproxy-system.svc"


def need_yaml():
    if yaml is None:
        skip("python3-yaml not installed (scripts/deps.sh installs it)")


def kustomization(d):
    need_yaml()
    with open(os.path.join(d, "kustomization.yaml")) as f:
        return yaml.safe_load(f)


def objects(d):
    """Every object of the kustomization's resources, by (kind, name)."""
    out = {}
    for res in kustomization(d)["resources"]:
        with open(os.path.join(d, res)) as f:
            for doc in yaml.safe_load_all(f):
                if doc:
                    out[(doc["kind"], doc["metadata"]["name"])] = doc
    return out


def one(objs, kind):
    found = [o for (k, _), o in objs.items() if k == kind]
    check_eq(len(found), 1, f"number of {kind}s")
    return found[0]


def base_config():
    with open(os.path.join(BASE, "pqproxy.json")) as f:
        return json.load(f)


def port_of(addr):
    return int(str(addr).rsplit(":", 1)[1])


def all_containers(pod_spec):
    return pod_spec.get("initContainers", []) + pod_spec["containers"]


def named(items, name):
    found = [i for i in items or [] if i.get("name") == name]
    check_eq(len(found), 1, f"items named {name}")
    return found[0]


def resolve_port(container, port):
    if isinstance(port, int):
        return port
    return named(container.get("ports"), port)["containerPort"]


def check_security_context(pod_spec, c, where):
    sc = c.get("securityContext") or {}
    psc = pod_spec.get("securityContext") or {}
    check(sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, f"{where}: runAsNonRoot")
    check_eq(sc.get("runAsUser", psc.get("runAsUser")), 10001, f"{where}: runAsUser")
    check(sc.get("allowPrivilegeEscalation") is False, f"{where}: allowPrivilegeEscalation false")
    check(sc.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem")
    check_eq((sc.get("capabilities") or {}).get("drop"), ["ALL"], f"{where}: capabilities.drop")
    seccomp = sc.get("seccompProfile") or psc.get("seccompProfile") or {}
    check_eq(seccomp.get("type"), "RuntimeDefault", f"{where}: seccompProfile")
    res = c.get("resources") or {}
    for k in ("requests", "limits"):
        check(res.get(k) and res[k].get("memory"), f"{where}: resources.{k}.memory")
    check(res["requests"].get("cpu"), f"{where}: resources.requests.cpu")


def prestop_sleep(c):
    cmd = ((c.get("lifecycle") or {}).get("preStop") or {}).get("exec", {}).get("command")
    if not cmd:
        return 0
    check_eq(cmd[0], "sleep", "preStop is a sleep")
    return int(cmd[1])


# --- kustomizations ------------------------------------------------------------------------

def test_kustomizations_list_every_file():
    for d, extra in ((BASE, set()), (WEBHOOK, {"make-certs.sh"})):
        k = kustomization(d)
        check_eq(k["apiVersion"], "kustomize.config.k8s.io/v1beta1")
        listed = set(k["resources"])
        for gen in k.get("configMapGenerator", []) + k.get("secretGenerator", []):
            listed |= {f.split("=", 1)[-1] for f in gen.get("files", [])}
        present = {f for f in os.listdir(d) if os.path.isfile(os.path.join(d, f))
                   and f != "kustomization.yaml"} - extra
        check_eq(sorted(present - listed), [], f"{d}: files not in kustomization.yaml")
        check_eq(sorted(listed - present), [], f"{d}: listed but missing")
        check_in("pqproxy", [i["name"] for i in k["images"]], "image name kustomize sets")
    k = kustomization(SEALED)
    listed = set(k["resources"]) | {p["path"] for p in k["patches"]}
    listed |= {f for gen in k["configMapGenerator"] for f in gen["files"]}
    present = {f for f in os.listdir(SEALED) if f != "kustomization.yaml"}
    check_eq(sorted(present ^ (listed - {"../base"})), [], f"{SEALED}: files vs kustomization.yaml")
    check_eq(k["namespace"], "models")
    check_eq(kustomization(BASE)["namespace"], "models")
    check_eq(kustomization(WEBHOOK)["namespace"], "pqproxy-system")


# --- the base: TF Serving + native sidecar ----------------------------------------------------

def sidecar_and_model():
    objs = objects(BASE)
    dep = one(objs, "Deployment")
    spec = dep["spec"]["template"]["spec"]
    return objs, dep, spec, named(spec["initContainers"], "pqproxy"), named(spec["containers"], "tfserving")


def test_base_sidecar():
    objs, dep, spec, px, model = sidecar_and_model()
    cfg = base_config()
    admin = port_of(cfg["admin"]["listen"])
    check_eq(cfg["admin"]["listen"].rsplit(":", 1)[0], "0.0.0.0", "admin reachable by kubelet probes")
    check_eq(px["restartPolicy"], "Always", "native sidecar")
    check_eq(cfg["tls"]["pq_policy"], "require")
    # probes: startup and liveness on /healthz, readiness on /readyz, all on the admin port
    for probe, path in (("startupProbe", "/healthz"), ("livenessProbe", "/healthz"),
                        ("readinessProbe", "/readyz")):
        get = px[probe]["httpGet"]
        check_eq(get["path"], path, probe)
        check_eq(resolve_port(px, get["port"]), admin, f"{probe} port")
        check(get.get("scheme", "HTTP") == "HTTP", f"{probe}: the admin port is plain HTTP")
    check_eq(resolve_port(px, "pqproxy-https"), port_of(cfg["listen"]))
    # config: the mounted ConfigMap holds the file the command reads
    conf_path = px["command"][px["command"].index("--config") + 1]
    check_eq(px["command"][:2], ["pqproxy", "run"])
    mounts = {m["name"]: m for m in px["volumeMounts"]}
    check_eq(os.path.dirname(conf_path), mounts["pqproxy-config"]["mountPath"])
    vols = {v["name"]: v for v in spec["volumes"]}
    gen = named(kustomization(BASE)["configMapGenerator"], vols["pqproxy-config"]["configMap"]["name"])
    check_in(os.path.basename(conf_path), gen["files"])
    # certificates: the Secret mounted where the config looks, with those keys
    tls_dir = mounts["pqproxy-tls"]["mountPath"]
    secret = objs[("Secret", vols["pqproxy-tls"]["secret"]["secretName"])]
    for cert in cfg["tls"]["certificates"]:
        for k in ("cert", "key"):
            check_eq(os.path.dirname(cert[k]), tls_dir, f"{k} under the Secret mount")
            check_in(os.path.basename(cert[k]), secret["stringData"], "Secret key")
    check_eq(secret["type"], "kubernetes.io/tls")
    check_in(("Secret", "pqproxy-signature-keys"), objs, "signature keys Secret")
    check(all(m.get("readOnly") for m in px["volumeMounts"]), "read-only mounts")
    # the model server: upstream on the pod's loopback, nothing declared or exposed
    check(cfg["upstream"]["address"].startswith("127.0.0.1:"), "upstream on loopback")
    check("ports" not in model, "the model server declares no port")
    check_eq(spec.get("automountServiceAccountToken"), False)


def test_base_security_contexts():
    objs, dep, spec, px, model = sidecar_and_model()
    for c in all_containers(spec):
        check_security_context(spec, c, f"container {c['name']}")
    check_eq(spec["securityContext"]["runAsUser"], 10001)
    check(spec["securityContext"]["runAsNonRoot"] is True, "pod runAsNonRoot")


def test_base_shutdown_budget():
    objs, dep, spec, px, model = sidecar_and_model()
    cfg = base_config()
    drain_ms = cfg["timeouts"]["drain_ms"]
    check(prestop_sleep(px) > 0, "the sidecar sleeps in preStop (endpoints settle)")
    check(prestop_sleep(model) > 0, "the model server sleeps in preStop")
    grace = spec["terminationGracePeriodSeconds"]
    # native sidecars stop after the main containers: their budgets add up
    need_ms = (prestop_sleep(model) + prestop_sleep(px)) * 1000 + drain_ms
    check(grace * 1000 > need_ms, f"terminationGracePeriodSeconds {grace}s <= {need_ms} ms")
    check(grace * 1000 > drain_ms, "terminationGracePeriodSeconds > drain_ms")


def test_base_service_and_networkpolicy():
    objs, dep, spec, px, model = sidecar_and_model()
    cfg = base_config()
    svc = one(objs, "Service")
    labels = dep["spec"]["template"]["metadata"]["labels"]
    check(svc["spec"]["selector"].items() <= labels.items(), "Service selects the pods")
    check_eq(dep["spec"]["selector"]["matchLabels"], svc["spec"]["selector"])
    ports = svc["spec"]["ports"]
    check_eq(len(ports), 1, "one Service port")
    check_eq(ports[0]["port"], 8443)
    # targetPort is the sidecar's TLS port (which no other container declares)
    check_eq(resolve_port(px, ports[0]["targetPort"]), port_of(cfg["listen"]))
    np = one(objs, "NetworkPolicy")["spec"]
    check(np["podSelector"]["matchLabels"].items() <= labels.items(), "NetworkPolicy selects the pods")
    check_in("Ingress", np["policyTypes"])
    allowed = {}
    for rule in np["ingress"]:
        for p in rule["ports"]:
            allowed[p["port"]] = rule.get("from")
    check_eq(sorted(allowed), [port_of(cfg["listen"]), port_of(cfg["admin"]["listen"])],
             "ingress only to the TLS and admin ports")
    check_eq(allowed[port_of(cfg["admin"]["listen"])],
             [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
             "admin port from the monitoring namespace only")


def test_base_config_loads(h):
    """The ConfigMap's pqproxy.json, Secret mount materialized, through check-config."""
    cfg = base_config()
    certs = h.certgen()
    root = h.path("rootfs")
    for cert in cfg["tls"]["certificates"]:
        os.makedirs(root + os.path.dirname(cert["cert"]), exist_ok=True)
        shutil.copy(os.path.join(certs, "server.crt"), root + cert["cert"])
        shutil.copy(os.path.join(certs, "server.key"), root + cert["key"])
        cert["cert"], cert["key"] = root + cert["cert"], root + cert["key"]
    path = h.write_config(cfg, "pqproxy.json")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PQPROXY_")}
    r = subprocess.run([pxtest.pqproxy_bin(), "check-config", path], capture_output=True, text=True,
                       env=env, timeout=30)
    check_eq(r.returncode, 0, r.stderr)
    check_in("listen 0.0.0.0:8443, upstream 127.0.0.1:8501", r.stdout)
    check_in("pq_policy require", r.stdout)
    # what the injector's annotations set through the environment
    env2 = dict(env, PQPROXY_UPSTREAM="127.0.0.1:8000", PQPROXY_PQ_POLICY="prefer")
    r = subprocess.run([pxtest.pqproxy_bin(), "check-config", path], capture_output=True, text=True,
                       env=env2, timeout=30)
    check_eq(r.returncode, 0, r.stderr)
    check_in("upstream 127.0.0.1:8000", r.stdout)
    check_in("pq_policy prefer", r.stdout)
    check_in("upstreams.grpc 127.0.0.1:8500 h2c", r.stdout, "TF Serving's gRPC port, fronted too")
    # pqproxy.io/grpc-port re-points that upstream
    r = subprocess.run([pxtest.pqproxy_bin(), "check-config", path], capture_output=True, text=True,
                       env=dict(env, PQPROXY_UPSTREAM_GRPC="127.0.0.1:8001"), timeout=30)
    check_eq(r.returncode, 0, r.stderr)
    check_in("upstreams.grpc 127.0.0.1:8001 h2c", r.stdout)
    r = subprocess.run([pxtest.pqproxy_bin(), "check-config", path], capture_output=True, text=True,
                       env=dict(env, PQPROXY_PQ_POLICY="maybe"), timeout=30)
    check_eq(r.returncode, 1)
    check_in("environment PQPROXY_PQ_POLICY: must be", r.stderr)


# --- the injector --------------------------------------------------------------------------------

def webhook_objects():
    objs = objects(WEBHOOK)
    dep = one(objs, "Deployment")
    spec = dep["spec"]["template"]["spec"]
    return objs, dep, spec, named(spec["containers"], "webhook")


def flag(cmd, name):
    check_in(name, cmd)
    return cmd[cmd.index(name) + 1]


def test_webhook_configuration():
    objs, dep, spec, c = webhook_objects()
    mwc = one(objs, "MutatingWebhookConfiguration")
    svc = one(objs, "Service")
    ns = one(objs, "Namespace")
    check_eq(ns["metadata"]["name"], "pqproxy-system")
    check_eq(ns["metadata"]["labels"].get("pqproxy.io/inject"), "disabled")
    hooks = {w["name"]: w for w in mwc["webhooks"]}
    check_eq(sorted(hooks), ["namespace.inject.pqproxy.io", "pod.inject.pqproxy.io"])
    for name, w in hooks.items():
        check_eq(w["admissionReviewVersions"], ["v1"], name)
        check_eq(w["sideEffects"], "None", name)
        check_eq(w["timeoutSeconds"], 5, name)
        check_in(w["failurePolicy"], ("Fail", "Ignore"), name)
        s = w["clientConfig"]["service"]
        check_eq((s["name"], s["namespace"]), (svc["metadata"]["name"], "pqproxy-system"), name)
        check_eq(s["port"], svc["spec"]["ports"][0]["port"], f"{name}: Service port")
        check_in("caBundle", w["clientConfig"])
        check_eq(w["rules"], [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                               "resources": ["pods"], "scope": "Namespaced"}], name)
        exprs = {e["key"]: e for e in w["namespaceSelector"]["matchExpressions"]}
        own = exprs["kubernetes.io/metadata.name"]
        check(own["operator"] == "NotIn" and "pqproxy-system" in own["values"],
              f"{name}: excludes its own namespace")
        check_in("kube-system", own["values"])
    # the opted-in namespaces fail closed; the cluster-wide annotation hook does not
    ns_hook, pod_hook = hooks["namespace.inject.pqproxy.io"], hooks["pod.inject.pqproxy.io"]
    check_eq(ns_hook["failurePolicy"], "Fail")
    check_eq(pod_hook["failurePolicy"], "Ignore")
    check_eq(ns_hook["clientConfig"]["service"]["path"], "/inject/namespace")
    check_eq(pod_hook["clientConfig"]["service"]["path"], "/inject")
    nsel = {e["key"]: e for e in ns_hook["namespaceSelector"]["matchExpressions"]}["pqproxy.io/inject"]
    check_eq((nsel["operator"], nsel["values"]), ("In", ["enabled"]))
    psel = {e["key"]: e for e in pod_hook["namespaceSelector"]["matchExpressions"]}["pqproxy.io/inject"]
    check_eq((psel["operator"], sorted(psel["values"])), ("NotIn", ["disabled", "enabled"]))


def test_webhook_deployment():
    objs, dep, spec, c = webhook_objects()
    svc = one(objs, "Service")
    cmd = c["command"]
    check_eq(cmd[:2], ["pqproxy", "inject-webhook"])
    listen = port_of(flag(cmd, "--listen"))
    check_eq(resolve_port(c, svc["spec"]["ports"][0]["targetPort"]), listen, "Service targetPort")
    mount = named(c["volumeMounts"], "webhook-tls")["mountPath"]
    for f in ("--cert", "--key"):
        check_eq(os.path.dirname(flag(cmd, f)), mount, f"{f} under the Secret mount")
    check_eq(named(spec["volumes"], "webhook-tls")["secret"]["secretName"], "pqproxy-webhook-tls")
    # what it injects refers to what the base makes
    base_objs, base_dep, base_spec, px, _ = sidecar_and_model()
    check_eq(flag(cmd, "--config-map"), named(base_spec["volumes"], "pqproxy-config")["configMap"]["name"])
    check_eq(flag(cmd, "--tls-secret"), named(base_spec["volumes"], "pqproxy-tls")["secret"]["secretName"])
    check_eq(int(flag(cmd, "--upstream-port")), port_of(base_config()["upstream"]["address"]))
    image = flag(cmd, "--image")
    k = {i["name"]: i for i in kustomization(WEBHOOK)["images"]}["pqproxy"]
    check_eq(image, f"{k['newName']}:{k['newTag']}", "injected image == the injector's own image")
    for probe in ("readinessProbe", "livenessProbe"):
        get = c[probe]["httpGet"]
        check_eq((get["scheme"], get["path"], get["port"]), ("HTTPS", "/healthz", listen), probe)
    check_security_context(spec, c, "webhook")
    check(dep["spec"]["replicas"] >= 2, "two replicas behind failurePolicy Fail")
    pdb = one(objs, "PodDisruptionBudget")
    check_eq(pdb["spec"]["selector"]["matchLabels"], dep["spec"]["selector"]["matchLabels"])


def make_certs(h):
    if not shutil.which("openssl"):
        skip("openssl not installed")
    out = h.path("webhook-certs")
    r = subprocess.run([os.path.join(WEBHOOK, "make-certs.sh"), "--out", out], capture_output=True,
                       text=True, timeout=60)
    check_eq(r.returncode, 0, r.stderr)
    bundle = r.stdout.strip().splitlines()[-1]
    with open(os.path.join(out, "ca.crt"), "rb") as f:
        check_eq(base64.b64decode(bundle), f.read(), "printed caBundle is ca.crt")
    check_eq(oct(os.stat(os.path.join(out, "tls.key")).st_mode & 0o777), "0o600")
    san = subprocess.run(["openssl", "x509", "-in", os.path.join(out, "tls.crt"), "-noout", "-ext",
                          "subjectAltName"], capture_output=True, text=True).stdout
    check_in(f"DNS:{WEBHOOK_HOST}", san)
    # repeatable: files are reused
    r2 = subprocess.run([os.path.join(WEBHOOK, "make-certs.sh"), "--out", out, "--print-ca-bundle"],
                        capture_output=True, text=True, timeout=60)
    check_eq(r2.stdout.strip(), bundle)
    return out


def start_webhook(h, certs, image="registry.example/pqproxy:0.1.0", extra=()):
    port = pxtest.free_port()
    h.start("inject-webhook", [pxtest.pqproxy_bin(), "inject-webhook", "--listen", f"127.0.0.1:{port}",
                               "--cert", os.path.join(certs, "tls.crt"), "--key", os.path.join(certs, "tls.key"),
                               "--image", image, *extra],
            ready="port", port=port)
    return port


def post(certs, port, path, body_file=None, method=None):
    """`pqproxy request` as the API server calls the Service; (status, body, stderr)."""
    cmd = [pxtest.pqproxy_bin(), "request", "--cacert", os.path.join(certs, "ca.crt"), "-i", "-v",
           "--connect", f"127.0.0.1:{port}", f"https://{WEBHOOK_HOST}{path}",
           "-H", "Content-Type: application/json"]
    if body_file:
        cmd += ["--data-file", body_file]
    if method:
        cmd += ["-X", method]
    r = subprocess.run(cmd, capture_output=True, timeout=30)
    check_eq(r.returncode, 0, r.stderr.decode(errors="replace"))
    head, _, body = r.stdout.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body, r.stderr.decode(errors="replace")


def fixture(name):
    return os.path.join(FIXTURES, name)


def apply_patch(doc, patch):
    """RFC 6902 "add" (all the injector emits); the parent must exist."""
    for op in patch:
        check_eq(op["op"], "add")
        parts = op["path"].split("/")[1:]
        parent = doc
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent[p]
        last = parts[-1]
        if isinstance(parent, list):
            parent.insert(len(parent) if last == "-" else int(last), op["value"])
        else:
            parent[last] = op["value"]
    return doc


def test_webhook_served_over_https(h):
    certs = make_certs(h)
    port = start_webhook(h, certs)
    # healthz (what the kubelet probes)
    status, body, err = post(certs, port, "/healthz")
    check_eq((status, json.loads(body)), (200, {"status": "ok"}))
    check_in("X25519MLKEM768", err, "hybrid group towards a client that offers it")
    # a pod with and without existing init containers: patched, uid echoed
    for name, first_path in (("pod-no-init.json", "/spec/initContainers"),
                             ("pod-with-init.json", "/spec/initContainers/-")):
        with open(fixture(name)) as f:
            review = json.load(f)
        status, body, _ = post(certs, port, "/inject?timeout=5s", fixture(name))
        check_eq(status, 200, name)
        resp = json.loads(body)
        check_eq((resp["apiVersion"], resp["kind"]), ("admission.k8s.io/v1", "AdmissionReview"))
        r = resp["response"]
        check_eq(r["uid"], review["request"]["uid"], "uid echoed")
        check(r["allowed"] is True and r["patchType"] == "JSONPatch", name)
        patch = json.loads(base64.b64decode(r["patch"]))
        check_eq(patch[0]["path"], first_path, name)
        pod = apply_patch(review["request"]["object"], patch)
        sidecars = [c for c in pod["spec"]["initContainers"] if c["name"] == "pqproxy"]
        check_eq(len(sidecars), 1, "injected once")
        check_eq(sidecars[0]["image"], "registry.example/pqproxy:0.1.0")
    # namespace mode: no annotation needed; opted-out pods untouched
    status, body, _ = post(certs, port, "/inject/namespace", fixture("pod-no-annotation.json"))
    check_in("patch", json.loads(body)["response"])
    for path in ("/inject", "/inject/namespace"):
        for name in ("pod-opted-out.json", "pod-already-injected.json", "deployment.json"):
            status, body, _ = post(certs, port, path, fixture(name))
            r = json.loads(body)["response"]
            check_eq((status, r["allowed"], "patch" in r), (200, True, False), f"{path} {name}")
    # malformed reviews: 400 with the project's JSON error body
    for name in ("malformed-json.json", "malformed-no-uid.json", "malformed-v1beta1.json"):
        status, body, _ = post(certs, port, "/inject", fixture(name))
        check_eq(status, 400, name)
        check_eq(json.loads(body)["error"], "bad_request", name)
    status, body, _ = post(certs, port, "/inject", method="GET")
    check_eq(status, 405)
    status, body, _ = post(certs, port, "/mutate", fixture("pod-no-init.json"))
    check_eq(status, 404)


def test_injected_sidecar_matches_base(h):
    """The sidecar the webhook injects and the one the base declares agree on
    everything the rest of the deployment relies on."""
    need_yaml()
    certs = make_certs(h)
    objs, dep, spec, c = webhook_objects()
    port = start_webhook(h, certs, image=flag(c["command"], "--image"))
    with open(fixture("pod-no-init.json")) as f:
        review = json.load(f)
    status, body, _ = post(certs, port, "/inject", fixture("pod-no-init.json"))
    pod = apply_patch(review["request"]["object"], json.loads(base64.b64decode(json.loads(body)["response"]["patch"])))
    inj = named(pod["spec"]["initContainers"], "pqproxy")
    _, _, base_spec, base_px, _ = sidecar_and_model()
    for key in ("restartPolicy", "command", "ports", "securityContext", "resources", "lifecycle"):
        check_eq(inj[key], base_px[key], key)
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        check_eq(inj[probe]["httpGet"], base_px[probe]["httpGet"], probe)
    base_mounts = {m["name"]: m["mountPath"] for m in base_px["volumeMounts"]}
    for m in inj["volumeMounts"]:
        check_eq(m["mountPath"], base_mounts[m["name"]], m["name"])
    check_eq(named(pod["spec"]["volumes"], "pqproxy-tls")["secret"]["secretName"],
             named(base_spec["volumes"], "pqproxy-tls")["secret"]["secretName"])
    check_security_context(pod["spec"], inj, "injected sidecar")
    check_eq({e["name"]: e["value"] for e in inj["env"]}["PQPROXY_UPSTREAM"],
             base_config()["upstream"]["address"])
    check("PQPROXY_UPSTREAM_GRPC" not in {e["name"] for e in inj["env"]}, "the ConfigMap's gRPC port stays")
    # pqproxy.io/grpc-port moves the ConfigMap's upstreams.grpc; a clash is refused
    for value, want in (("8001", "127.0.0.1:8001"), ("8501", None)):
        with open(fixture("pod-no-init.json")) as f:
            review = json.load(f)
        review["request"]["object"]["metadata"].setdefault("annotations", {})["pqproxy.io/grpc-port"] = value
        body_file = h.path(f"pod-grpc-{value}.json")
        with open(body_file, "w") as f:
            json.dump(review, f)
        status, body, _ = post(certs, port, "/inject", body_file)
        resp = json.loads(body)["response"]
        if want is None:
            check(not resp["allowed"], body)
            check_in("pqproxy.io/grpc-port: 8501 is the REST upstream's port too", resp["status"]["message"])
            continue
        pod = apply_patch(review["request"]["object"], json.loads(base64.b64decode(resp["patch"])))
        env = {e["name"]: e["value"] for e in named(pod["spec"]["initContainers"], "pqproxy")["env"]}
        check_eq(env.get("PQPROXY_UPSTREAM_GRPC"), want)
        check_eq(base_config()["upstreams"]["grpc"]["protocol"], "h2c")


# --- rendered with kustomize, validated against the API schemas ------------------------------------

DOC = os.path.join(pxtest.SOURCE_DIR, "docs", "deploy.md")


def kubectl():
    """The kubectl scripts/deps.sh --test-tools unpacked (when the one on PATH is
    missing or too old), else the one on PATH."""
    found = next(iter(sorted(glob.glob(os.path.join(cache_dir(), "kubectl-*", "kubectl")), reverse=True)),
                 None) or shutil.which("kubectl")
    if not found:
        skip("kubectl not found (scripts/deps.sh --test-tools installs Debian's)")
    return found


def render(d):
    """`kubectl kustomize d` as a list of objects."""
    need_yaml()
    r = subprocess.run([kubectl(), "kustomize", d], capture_output=True, text=True, timeout=120)
    check_eq(r.returncode, 0, f"kubectl kustomize {d}: {r.stderr}")
    return [o for o in yaml.safe_load_all(r.stdout) if o]


def schema_modules():
    """node_modules holding kubernetes-models (tests/npm)."""
    return npm_tests_modules("kubernetes-models")

def validate(objs, expect_ok=True):
    """The objects against the Kubernetes API schemas (k8s_validate.mjs); its output."""
    node = os.environ.get("PX_NODE24") or shutil.which("node") or skip("node not found")
    r = subprocess.run([node, os.path.join(os.path.dirname(__file__), "k8s_validate.mjs"), schema_modules()],
                       input=json.dumps(objs), capture_output=True, text=True, timeout=120)
    check_eq(r.returncode == 0, expect_ok, f"schema validation:\n{r.stdout}{r.stderr}")
    check_eq(len(r.stdout.splitlines()), len(objs), r.stdout + r.stderr)
    return r.stdout


def doc_overlay(h):
    """A copy of deploy/k8s with the overlay docs/deploy.md shows, at the path it
    names, and certificate files for its secretGenerator; the overlay's path."""
    text = open(DOC).read()
    m = re.search(r"```yaml\n# (deploy/k8s/overlays/[\w/-]+)/kustomization\.yaml\n(.*?)```", text, re.S)
    check(m, "docs/deploy.md shows an overlay's kustomization.yaml")
    root = h.path("tree")
    shutil.copytree(K8S, os.path.join(root, "deploy", "k8s"))
    d = os.path.join(root, m.group(1))
    os.makedirs(d)
    with open(os.path.join(d, "kustomization.yaml"), "w") as f:
        f.write(m.group(2))
    for gen in yaml.safe_load(m.group(2)).get("secretGenerator", []):
        for spec in gen.get("files", []):
            path = os.path.join(d, spec.split("=", 1)[-1])
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write("-----BEGIN PLACEHOLDER-----\n")
    return d


def kustomization_dirs():
    return sorted(os.path.dirname(p) for p in glob.glob(os.path.join(K8S, "**", "kustomization.yaml"),
                                                         recursive=True))


def test_every_kustomization_renders_and_validates(h):
    dirs = kustomization_dirs()
    check(BASE in dirs and WEBHOOK in dirs, f"kustomizations found: {dirs}")
    for d in dirs + [doc_overlay(h)]:
        objs = render(d)
        check(objs, f"{d} renders objects")
        out = validate(objs)
        check_eq(out.count(": ok\n"), len(objs), out)
    # the validator fails: a wrong type, and a kind the API does not have
    dep = json.loads(json.dumps(next(o for o in render(BASE) if o["kind"] == "Deployment")))
    dep["spec"]["template"]["spec"]["initContainers"][0]["ports"][0]["containerPort"] = "8443"
    check_in("containerPort must be integer", validate([dep], expect_ok=False))
    dep["spec"]["template"]["spec"]["initContainers"][0]["ports"][0]["containerPort"] = 8443
    dep["spec"]["template"]["spec"]["initContainers"][0]["volumeMounts"][0]["readonly"] = True
    check_in("initContainers/0/volumeMounts/0/readonly: unknown field", validate([dep], expect_ok=False))
    check_in("no schema", validate([{"apiVersion": "v1", "kind": "Sidecar", "metadata": {"name": "x"}}],
                                   expect_ok=False))


def test_every_rendered_config_fronts_both_ports(h):
    """Each kustomization's pqproxy-config, as rendered: TF Serving's REST port
    as the default upstream, its gRPC port as the h2c upstream "grpc", and a
    gRPC route at "/" to it (signed like the REST routes where those are)."""
    seen = 0
    for d in kustomization_dirs():
        for o in render(d):
            if o["kind"] != "ConfigMap" or "pqproxy.json" not in o.get("data", {}):
                continue
            seen += 1
            cfg = json.loads(o["data"]["pqproxy.json"])
            check_eq(cfg["upstream"]["address"], "127.0.0.1:8501", d)
            check_eq(cfg.get("upstreams", {}).get("grpc"), {"address": "127.0.0.1:8500", "protocol": "h2c"}, d)
            routes = cfg.get("routes", [])
            grpc = [r for r in routes if r.get("grpc")]
            check_eq([(r["prefix"], r.get("upstream")) for r in grpc], [("/", "grpc")], f"{d}: {routes}")
            check_eq(grpc[0].get("sign_responses", False),
                     any(r.get("sign_responses") for r in routes if not r.get("grpc")), f"{d}: signing alike")
    check(seen >= 3, f"configs rendered: {seen}")


def test_doc_overlay_keeps_the_names_injected_pods_use(h):
    """The documented overlay replaces the TLS Secret under its plain name (no
    content hash), which is why docs/deploy.md says a rotation needs a restart
    or SIGHUP; the ConfigMap keeps its plain name too."""
    objs = render(doc_overlay(h))
    names = {(o["kind"], o["metadata"]["name"]) for o in objs}
    check_in(("Secret", "pqproxy-tls"), names)
    check_in(("ConfigMap", "pqproxy-config"), names)
    text = open(DOC).read()
    check("the rollout happens by itself" not in text, "docs/deploy.md promises no automatic rollout")


def install(d_list):
    """Rendered objects of several kustomizations by (kind, namespace, name)."""
    out = {}
    for d in d_list:
        for o in render(d):
            md = o["metadata"]
            out[(o["kind"], md.get("namespace"), md["name"])] = o
    return out


def test_injected_pod_refers_only_to_what_the_install_creates(h):
    """docs/deploy.md's install (the base in the namespace, the injector) rendered
    with kustomize; the real injector, configured as its rendered Deployment
    says, patches a pod in that namespace; every name the patched pod refers to
    exists there."""
    objs = install([BASE, WEBHOOK])
    ns = kustomization(BASE)["namespace"]
    dep = next(o for (k, _, n), o in objs.items() if (k, n) == ("Deployment", "pqproxy-webhook"))
    cmd = named(dep["spec"]["template"]["spec"]["containers"], "webhook")["command"]
    extra = []
    for f in ("--config-map", "--tls-secret", "--upstream-port"):
        extra += [f, flag(cmd, f)]
    certs = make_certs(h)
    port = start_webhook(h, certs, image=flag(cmd, "--image"), extra=extra)
    with open(fixture("pod-no-annotation.json")) as f:
        review = json.load(f)
    check_eq(review["request"]["namespace"], ns, "the sample pod is in the install's namespace")
    status, body, _ = post(certs, port, "/inject/namespace", fixture("pod-no-annotation.json"))
    check_eq(status, 200)
    pod = apply_patch(review["request"]["object"],
                      json.loads(base64.b64decode(json.loads(body)["response"]["patch"])))
    spec = pod["spec"]
    px = named(spec["initContainers"], "pqproxy")

    def get(kind, name):
        have = sorted(n for (k, n_s, n) in objs if (k, n_s) == (kind, ns))
        check((kind, ns, name) in objs, f"injected pod refers to {kind} {name}; namespace {ns} has {have}")
        return objs[(kind, ns, name)]

    vols = {v["name"]: v for v in spec["volumes"]}
    for m in px["volumeMounts"]:
        check_in(m["name"], vols, "volumeMount refers to a pod volume")
    # the ConfigMap holds the file the command reads, under the config mount
    conf = flag(px["command"], "--config")
    cm_vol = next(v for v in vols.values()
                  if "configMap" in v and named(px["volumeMounts"], v["name"])["mountPath"] ==
                  os.path.dirname(conf))
    cm = get("ConfigMap", cm_vol["configMap"]["name"])
    check_in(os.path.basename(conf), cm["data"])
    cfg = json.loads(cm["data"][os.path.basename(conf)])
    # the Secret holds the keys that config names, under the TLS mount
    mounts = {m["mountPath"]: m["name"] for m in px["volumeMounts"]}
    for cert in cfg["tls"]["certificates"]:
        for k in ("cert", "key"):
            vol = vols[mounts[os.path.dirname(cert[k])]]
            secret = get("Secret", vol["secret"]["secretName"])
            check_in(os.path.basename(cert[k]), secret.get("stringData") or secret.get("data"),
                     f"Secret {vol['secret']['secretName']} key for {cert[k]}")
    # ports: the config's listeners are the declared ports the probes, the
    # Service and the NetworkPolicy use
    ports = {p["name"]: p["containerPort"] for p in px["ports"]}
    check_eq(ports["pqproxy-https"], port_of(cfg["listen"]))
    check_eq(ports["pqproxy-admin"], port_of(cfg["admin"]["listen"]))
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        check_in(resolve_port(px, px[probe]["httpGet"]["port"]), ports.values(), probe)
    for (k, n, _), o in objs.items():
        if n == ns and k == "Service":
            for p in o["spec"]["ports"]:
                check_in(p["targetPort"], list(ports) + list(ports.values()), "Service targetPort")
        if n == ns and k == "NetworkPolicy":
            for rule in o["spec"]["ingress"]:
                for p in rule["ports"]:
                    check_in(p["port"], ports.values(), "NetworkPolicy port")
    check_eq(flag(px["command"], "--config"), conf)
    env = {e["name"]: e["value"] for e in px.get("env", [])}
    check_eq(env["PQPROXY_UPSTREAM"], cfg["upstream"]["address"])
    # a service account, if the pod names one, exists (or is the namespace's default)
    sa = spec.get("serviceAccountName")
    if sa and sa != "default":
        get("ServiceAccount", sa)
    validate([pod])


def test_webhook_help_names_the_secret_keys_the_config_reads():
    r = subprocess.run([pxtest.pqproxy_bin(), "inject-webhook", "--help"], capture_output=True, text=True,
                       timeout=30)
    check_eq(r.returncode, 0, r.stderr)
    keys = sorted({os.path.basename(c[k]) for c in base_config()["tls"]["certificates"] for k in ("cert", "key")})
    check_eq(keys, ["tls.crt", "tls.key"], "kubernetes.io/tls Secret keys")
    check_in("/".join(keys), r.stdout)
    check("server.crt" not in r.stdout and "server.key" not in r.stdout, r.stdout)
    secret = objects(BASE)[("Secret", "pqproxy-tls")]
    check_eq(sorted(secret["stringData"]), keys)


def test_doc_names_every_namespace_label_value():
    """Every value of pqproxy.io/inject the webhooks' namespaceSelectors act on is documented."""
    text = open(DOC).read()
    mwc = one(objects(WEBHOOK), "MutatingWebhookConfiguration")
    for w in mwc["webhooks"]:
        for e in w["namespaceSelector"]["matchExpressions"]:
            if e["key"] == "pqproxy.io/inject":
                for v in e["values"]:
                    check(f"pqproxy.io/inject={v}" in text,
                          f"docs/deploy.md does not document pqproxy.io/inject={v} ({w['name']})")


# --- the shared-state overlay: Redis, its password, the ticket keys ------------------------------

SHARED = os.path.join(K8S, "overlays", "shared-state")


def test_shared_state_overlay(h):
    """deploy/k8s/overlays/shared-state rendered: the sidecar mounts the Redis
    password and the ticket keys where its pqproxy.json reads them, the
    Redis Service is at the address the config names, only the model pods
    reach it, Redis keeps nothing on disk; the config loads with the Secrets
    materialized, and the placeholder ticket key is refused."""
    objs = {(o["kind"], o["metadata"]["name"]): o for o in render(SHARED)}
    out = validate(list(objs.values()))
    check_eq(out.count(": ok\n"), len(objs), out)
    cfg = json.loads(objs[("ConfigMap", "pqproxy-config")]["data"]["pqproxy.json"])
    rs, tk = cfg["signatures"]["replay_store"], cfg["tls"]["ticket_keys"]
    check_eq((rs["type"], tk["source"]), ("redis", "file"))
    spec = objs[("Deployment", "tfserving")]["spec"]["template"]["spec"]
    px = named(spec["initContainers"], "pqproxy")
    mounts = {m["mountPath"]: m for m in px["volumeMounts"]}
    vols = {v["name"]: v for v in spec["volumes"]}
    secrets = {}
    ca_file = rs["tls"]["ca_file"]
    for path in (rs["password_file"], tk["file"], ca_file):
        m = mounts.get(os.path.dirname(path))
        check(m and m.get("readOnly"), f"{path}: a read-only mount in the sidecar")
        sec = vols[m["name"]]["secret"]
        secret = objs[("Secret", sec["secretName"])]
        key = next((i["key"] for i in sec.get("items", []) if i["path"] == os.path.basename(path)),
                   os.path.basename(path))
        check_in(key, secret["stringData"], f"Secret {sec['secretName']} holds {path}")
        secrets[path] = secret["stringData"][key]
    # the same volumes as the injector's annotations give
    with open(fixture("pod-no-annotation.json")) as f:
        review = json.load(f)
    review["request"]["object"]["metadata"].setdefault("annotations", {}).update({
        "pqproxy.io/inject": "true", "pqproxy.io/redis-secret": "pqproxy-redis",
        "pqproxy.io/ticket-keys-secret": "pqproxy-ticket-keys"})
    body = h.path("pod-shared-state.json")
    with open(body, "w") as f:
        json.dump(review, f)
    certs = make_certs(h)
    port = start_webhook(h, certs)
    status, resp, _ = post(certs, port, "/inject", body)
    check_eq(status, 200)
    pod = apply_patch(review["request"]["object"],
                      json.loads(base64.b64decode(json.loads(resp)["response"]["patch"])))
    inj = named(pod["spec"]["initContainers"], "pqproxy")
    for path in (rs["password_file"], tk["file"], ca_file):
        m = named(inj["volumeMounts"], mounts[os.path.dirname(path)]["name"])
        check_eq(m["mountPath"], os.path.dirname(path), "injected mount")
        check_eq(named(pod["spec"]["volumes"], m["name"])["secret"]["secretName"],
                 vols[m["name"]]["secret"]["secretName"], "injected Secret")
    # Redis: at the config's address, reachable from the model pods only, no disk
    svc = objs[("Service", "pqproxy-redis")]["spec"]
    check_eq(f"{objs[('Service', 'pqproxy-redis')]['metadata']['name']}:{svc['ports'][0]['port']}",
             rs["address"], "replay_store.address names the Redis Service")
    redis = objs[("Deployment", "pqproxy-redis")]["spec"]["template"]
    check(svc["selector"].items() <= redis["metadata"]["labels"].items(), "Service selects Redis")
    c = named(redis["spec"]["containers"], "redis")
    args = c["args"]
    for flag_, value in (("--save", ""), ("--appendonly", "no"), ("--maxmemory-policy", "noeviction"),
                         ("--requirepass", "$(REDIS_PASSWORD)")):
        check_eq(args[args.index(flag_) + 1], value, flag_)
    # TLS only, on the Service's port, with a certificate from a Secret
    check_eq((args[args.index("--port") + 1], args[args.index("--tls-port") + 1]),
             ("0", str(svc["ports"][0]["port"])), "Redis on TLS only")
    rmounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    rvols = {v["name"]: v for v in redis["spec"]["volumes"]}
    tls_secret = None
    for flag_ in ("--tls-cert-file", "--tls-key-file", "--tls-ca-cert-file"):
        f = args[args.index(flag_) + 1]
        m = rmounts[os.path.dirname(f)]
        check(m.get("readOnly"), f"{flag_}: read-only mount")
        tls_secret = rvols[m["name"]]["secret"]["secretName"]
        check_in(os.path.basename(f), objs[("Secret", tls_secret)]["stringData"], flag_)
    check_eq(redis["spec"]["securityContext"].get("fsGroup"), 10001, "the key readable by Redis")
    check_eq(rs["tls"]["server_name"], rs["address"].rsplit(":", 1)[0],
             "the name checked is the Service's")
    ref = named(c["env"], "REDIS_PASSWORD")["valueFrom"]["secretKeyRef"]
    check_eq(secrets[rs["password_file"]], objs[("Secret", ref["name"])]["stringData"][ref["key"]],
             "Redis and pqproxy share one password")
    check_security_context(redis["spec"], c, "redis")
    np = objs[("NetworkPolicy", "pqproxy-redis")]["spec"]
    check(np["podSelector"]["matchLabels"].items() <= redis["metadata"]["labels"].items())
    check_eq([(r["from"], [p["port"] for p in r["ports"]]) for r in np["ingress"]],
             [([{"podSelector": {"matchLabels": spec_labels(objs)}}], [6379])],
             "Redis only from the model pods")
    # the config loads with the Secrets in place; the placeholder key does not
    certs_dir = h.certgen()
    root = h.path("rootfs")
    for cert in cfg["tls"]["certificates"]:
        for k, src in (("cert", "server.crt"), ("key", "server.key")):
            os.makedirs(root + os.path.dirname(cert[k]), exist_ok=True)
            shutil.copy(os.path.join(certs_dir, src), root + cert[k])
            cert[k] = root + cert[k]
    for path, value in secrets.items():
        os.makedirs(root + os.path.dirname(path), exist_ok=True)
        with open(root + path, "w") as f:
            f.write(value)
    # the CA: from certgen in place of the placeholder (checked below)
    shutil.copy(os.path.join(certs_dir, "ca.crt"), root + ca_file)
    rs["password_file"], tk["file"] = root + rs["password_file"], root + tk["file"]
    rs["tls"]["ca_file"] = root + ca_file
    env = {k: v for k, v in os.environ.items() if not k.startswith("PQPROXY_")}
    r = subprocess.run([pxtest.pqproxy_bin(), "check-config", h.write_config(cfg)],
                       capture_output=True, text=True, env=env, timeout=30)
    check_eq(r.returncode, 1, "the placeholder ticket key is refused")
    check_in(f"tls.ticket_keys.file: {tk['file']}: line 1: not base64", r.stderr)
    with open(tk["file"], "w") as f:
        f.write(base64.b64encode(os.urandom(32)).decode() + "\n")
    r = subprocess.run([pxtest.pqproxy_bin(), "check-config", h.write_config(cfg)],
                       capture_output=True, text=True, env=env, timeout=30)
    check_eq(r.returncode, 0, r.stderr)
    with open(root + ca_file, "w") as f:
        f.write(secrets[ca_file])
    r = subprocess.run([pxtest.pqproxy_bin(), "check-config", h.write_config(cfg)],
                       capture_output=True, text=True, env=env, timeout=30)
    check_eq(r.returncode, 1, "the placeholder CA is refused")
    check_in("signatures.replay_store.tls", r.stderr)


def spec_labels(objs):
    return objs[("Deployment", "tfserving")]["spec"]["template"]["metadata"]["labels"]
# --- the sealed-model overlay ---------------------------------------------------------------------

def injected_sealed_pod(h):
    """The sealed overlay rendered, its pod through the real injector (configured
    as the webhook's rendered Deployment says): (objects by (kind, name), pod)."""
    objs = {(o["kind"], o["metadata"]["name"]): o for o in render(SEALED)}
    dep = objs[("Deployment", "tfserving")]
    cmd = named(one(objects(WEBHOOK), "Deployment")["spec"]["template"]["spec"]["containers"],
                "webhook")["command"]
    with open(fixture("pod-no-init.json")) as f:
        review = json.load(f)
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": dict(dep["spec"]["template"]["metadata"], namespace="models",
                            generateName="tfserving-"),
           "spec": dep["spec"]["template"]["spec"]}
    review["request"]["object"] = pod
    body = h.path("sealed-review.json")
    with open(body, "w") as f:
        json.dump(review, f)
    certs = make_certs(h)
    port = start_webhook(h, certs, image=flag(cmd, "--image"))
    status, out, _ = post(certs, port, "/inject", body)
    r = json.loads(out)["response"]
    check_eq((status, r["allowed"]), (200, True), out)
    return objs, apply_patch(pod, json.loads(base64.b64decode(r["patch"])))


def mount_of(c, path):
    """(volume name, path inside it) for a file or directory path of container c."""
    best = max((m for m in c["volumeMounts"] if path == m["mountPath"] or
                path.startswith(m["mountPath"].rstrip("/") + "/")),
               key=lambda m: len(m["mountPath"]), default=None)
    check(best, f"{c['name']}: nothing mounted at {path}")
    return best["name"], os.path.relpath(path, best["mountPath"])


def test_sealed_overlay_injected(h):
    """Everything the injected open-model container and the sidecar read is
    where the overlay puts it, in the objects the overlay creates."""
    objs, pod = injected_sealed_pod(h)
    spec = pod["spec"]
    names = [c["name"] for c in spec["initContainers"]]
    check_eq(names, ["pqproxy-open-model", "pqproxy"], "open-model runs to completion before the sidecar")
    om, px = spec["initContainers"]
    model = named(spec["containers"], "tfserving")
    check("restartPolicy" not in om, "an ordinary init container")
    check_security_context(spec, om, "open-model")
    vols = {v["name"]: v for v in spec["volumes"]}
    cmd = om["command"]
    check_eq(cmd[:2], ["sh", "-c"])
    check_eq(cmd[2], f"find {flag(cmd, '--out')} -mindepth 1 -delete && exec pqproxy open-model \"$@\"")
    # the manifest: on the sealed volume, read by the sidecar at the path its config names
    cfg = json.loads(objs[("ConfigMap", "pqproxy-config")]["data"]["pqproxy.json"])
    man = flag(cmd, "--manifest")
    check_eq(mount_of(om, man), mount_of(px, cfg["signatures"]["response_model_manifest"]),
             "open-model's manifest is the one the sidecar's responses name")
    check_eq(mount_of(om, man)[0], "models")
    check("persistentVolumeClaim" in vols["models"], "the sealed volume is the model PVC")
    vol_in, dir_in = mount_of(om, flag(cmd, "--in"))
    check_eq(vol_in, "models")
    check(not mount_of(om, man)[1].startswith(dir_in + "/"), "the manifest is not among the sealed files")
    # the identity from a Secret, the signer's keys from a ConfigMap, with those keys
    v, key = mount_of(om, flag(cmd, "--identity-file"))
    secret = objs[("Secret", vols[v]["secret"]["secretName"])]
    check_in(key, secret.get("stringData") or secret.get("data"))
    check(all(m["name"] != v for m in px["volumeMounts"] + model["volumeMounts"]),
          "only open-model mounts the identity")
    v, prefix = mount_of(om, flag(cmd, "--pub"))
    cm = objs[("ConfigMap", vols[v]["configMap"]["name"])]
    for alg in ("ecdsa", "mldsa"):
        check_in(f"{prefix}.{alg}.pub", cm["data"])
    # the opened model: an emptyDir, where TF Serving looks for MODEL_NAME
    v, rel = mount_of(om, flag(cmd, "--out"))
    check_eq(rel, ".")
    check("emptyDir" in vols[v], "the opened model lives and dies with the pod")
    env = {e["name"]: e.get("value") for e in model.get("env", [])}
    check_eq(mount_of(model, f"/models/{env['MODEL_NAME']}"), (v, "."))
    check(all(m.get("readOnly") for m in model["volumeMounts"] if m["name"] == v), "read-only for the model")
    validate([pod])


def test_sealed_overlay_opens_the_sealed_demo_model(h):
    """scripts/seal-demo-model.sh's output placed as the overlay says, opened by
    the injected container's own command (paths under a temp root), served by
    the demo model server; the overlay's pqproxy.json loads with it."""
    objs, pod = injected_sealed_pod(h)
    om, px = pod["spec"]["initContainers"]
    root = h.path("rootfs")
    out = h.path("sealed")
    r = subprocess.run([os.path.join(pxtest.SOURCE_DIR, "scripts", "seal-demo-model.sh"), "--out", out,
                        "--pqproxy", pxtest.pqproxy_bin()], capture_output=True, text=True, timeout=120)
    check_eq(r.returncode, 0, r.stderr)
    header = r.stdout.strip().splitlines()[-1]
    # the volumes' contents, at their mount paths under root
    mounts = {m["name"]: m["mountPath"] for m in om["volumeMounts"]}
    cmd = om["command"]
    sealed_at = root + mounts["models"] + "/" + os.path.dirname(os.path.relpath(flag(cmd, "--manifest"),
                                                                                mounts["models"]))
    shutil.copytree(os.path.join(out, "volume"), sealed_at)
    check(os.path.isdir(root + flag(cmd, "--in")), "--in is the script's volume/model")
    os.makedirs(root + mounts["pqproxy-model-identity"])
    shutil.copy(os.path.join(out, "identity"), root + flag(cmd, "--identity-file"))
    shutil.copytree(os.path.join(out, "pub"), root + mounts["pqproxy-model-pub"])
    # what a killed earlier attempt left in the emptyDir: removed before opening
    os.makedirs(root + flag(cmd, "--out") + "/1")
    with open(root + flag(cmd, "--out") + "/1/weights.json", "w") as f:
        f.write("half written")
    script = cmd[2].replace(flag(cmd, "--out"), root + flag(cmd, "--out")).replace(
        "exec pqproxy ", f"exec {pxtest.pqproxy_bin()} ")
    args = cmd[:2] + [script] + [a if not a.startswith("/") else root + a for a in cmd[3:]]
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    check_eq(r.returncode, 0, r.stderr)
    check_in("OK opened 1 files of model", r.stdout)
    sys.path.insert(0, os.path.join(pxtest.SOURCE_DIR, "scripts"))
    import demo_model_server
    check_eq(demo_model_server.load_model_dir(root + flag(cmd, "--out")), ("1", 0.5, 2.0),
             "the demo model server serves the opened weights")
    # the sidecar's config, with its keys and the manifest in place
    cfg = json.loads(objs[("ConfigMap", "pqproxy-config")]["data"]["pqproxy.json"])
    certs = h.certgen()
    for cert in cfg["tls"]["certificates"]:
        os.makedirs(root + os.path.dirname(cert["cert"]), exist_ok=True)
        shutil.copy(os.path.join(certs, "server.crt"), root + cert["cert"])
        shutil.copy(os.path.join(certs, "server.key"), root + cert["key"])
        cert["cert"], cert["key"] = root + cert["cert"], root + cert["key"]
    sig = cfg["signatures"]
    subprocess.run([pxtest.pqproxy_bin(), "keygen", "--alg", "hybrid", "--out", root + sig["response_key"]],
                   check=True, capture_output=True, timeout=30)
    sig["response_key"] = root + sig["response_key"]
    sig["response_model_manifest"] = root + sig["response_model_manifest"]
    check(os.path.isfile(sig["response_model_manifest"]), "the manifest is where the config looks")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PQPROXY_")}
    r = subprocess.run([pxtest.pqproxy_bin(), "check-config", h.write_config(cfg, "sealed.json")],
                       capture_output=True, text=True, env=env, timeout=30)
    check_eq(r.returncode, 0, r.stderr)
    with open(sig["response_model_manifest"], "rb") as f:
        digest = base64.b64encode(hashlib.sha256(f.read()).digest()).decode()
    check_eq(header, f"Pqproxy-Model-Manifest: sha-256=:{digest}:")


if __name__ == "__main__":
    pxtest.main([test_kustomizations_list_every_file, test_base_sidecar, test_base_security_contexts,
                 test_base_shutdown_budget, test_base_service_and_networkpolicy, test_base_config_loads,
                 test_webhook_configuration, test_webhook_deployment, test_webhook_served_over_https,
                 test_injected_sidecar_matches_base, test_every_kustomization_renders_and_validates,
                 test_doc_overlay_keeps_the_names_injected_pods_use, test_every_rendered_config_fronts_both_ports,
                 test_injected_pod_refers_only_to_what_the_install_creates,
                 test_webhook_help_names_the_secret_keys_the_config_reads,
                 test_doc_names_every_namespace_label_value, test_shared_state_overlay,
                 test_sealed_overlay_injected,
                 test_sealed_overlay_opens_the_sealed_demo_model])
