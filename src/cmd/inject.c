/* Sidecar injection: AdmissionReview in, JSON Patch out (see inject.h). */
#include "cmd/inject.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "sig/sigwire.h"

#define ANN_INJECT "pqproxy.io/inject"
#define ANN_PORT "pqproxy.io/upstream-port"
#define ANN_GRPC_PORT "pqproxy.io/grpc-port"
#define ANN_POLICY "pqproxy.io/pq-policy"
#define ANN_CONFIG_MAP "pqproxy.io/config-map"
#define ANN_SEALED "pqproxy.io/sealed-model-volume"
#define ANN_MODEL_VOLUME "pqproxy.io/model-volume"
#define ANN_IDENTITY "pqproxy.io/model-identity-secret"
#define ANN_PUB "pqproxy.io/model-pub-configmap"
#define ANN_MANIFEST "pqproxy.io/model-manifest"
#define ANN_SEALED_DIR "pqproxy.io/sealed-model-dir"
#define DEFAULT_MANIFEST "manifest.json"
#define DEFAULT_SEALED_DIR "model"
#define IDENTITY_KEY "identity"
#define PUB_PREFIX "model"      /* ConfigMap keys model.ecdsa.pub, model.mldsa.pub */
#define RUN_AS_USER 10001

/* Shared state across replicas (docs/deploy.md, "Replicas share state"):
 * Secrets that the ConfigMap's pqproxy.json reads, mounted where it
 * expects them: the Redis password (signatures.replay_store.password_file)
 * and the session-ticket keys (tls.ticket_keys.file). */
static const struct {
    const char *annotation, *volume, *dir;
} shared_secrets[] = {
    { "pqproxy.io/redis-secret", "pqproxy-redis", "/etc/pqproxy/redis" },
    { "pqproxy.io/ticket-keys-secret", "pqproxy-ticket-keys", "/etc/pqproxy/tickets" },
};
#define N_SHARED (sizeof shared_secrets / sizeof shared_secrets[0])

void px_inject_opts_default(px_inject_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->image = "pqproxy:latest";
    o->config_map = "pqproxy-config";
    o->tls_secret = "pqproxy-tls";
    o->upstream_port = 8501;
    o->prestop_sleep_s = 5;
}

/* sigwire's encoder, into a buffer of the exact size. */
char *px_base64_encode(const unsigned char *p, size_t n)
{
    size_t cap = (n + 2) / 3 * 4 + 1;
    char *out = malloc(cap);

    if (out && px_b64_encode(p, n, out, cap, 0) < 0) {
        free(out);
        return NULL;
    }
    return out;
}

/* --- reading the pod ---------------------------------------------------------- */

static const char *str_at(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const char *annotation(const cJSON *pod, const char *key)
{
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(pod, "metadata");
    return str_at(cJSON_GetObjectItemCaseSensitive(md, "annotations"), key);
}

static const cJSON *find_named(const cJSON *list, const char *name)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, list) {
        const char *n = str_at(it, "name");
        if (n && !strcmp(n, name))
            return it;
    }
    return NULL;
}

static int has_named(const cJSON *list, const char *name)
{
    return find_named(list, name) != NULL;
}

/* RFC 1123 DNS subdomain, as Kubernetes requires for ConfigMap names. */
static int valid_k8s_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 253)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && !((c == '-' || c == '.') && i > 0 && i + 1 < n))
            return 0;
    }
    return 1;
}

static int parse_port(const char *s, int *port)
{
    char *end;
    long v;
    if (!s[0] || s[0] < '0' || s[0] > '9')
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || v < 1 || v > 65535)
        return -1;
    *port = (int)v;
    return 0;
}

/* A port annotation (value s, when set) into *port: a port number, and not
 * one the sidecar itself listens on. */
static int port_annotation(const char *ann, const char *s, int *port, char *err, size_t errlen)
{
    if (s && parse_port(s, port) < 0) {
        snprintf(err, errlen, "%s: must be a port number 1..65535", ann);
        return -1;
    }
    if (*port == PX_INJECT_LISTEN_PORT || *port == PX_INJECT_ADMIN_PORT) {
        snprintf(err, errlen, "%s: %d is the sidecar's own port", ann, *port);
        return -1;
    }
    return 0;
}

/* A relative path without "..", ".", empty components or control bytes:
 * the manifest must stay inside the sealed volume. */
static int valid_rel_path(const char *s)
{
    size_t n = strlen(s);
    const char *seg = s;

    if (n == 0 || n > 255 || s[0] == '/')
        return 0;
    for (const char *p = s;; p++) {
        if (*p == '/' || *p == '\0') {
            size_t len = (size_t)(p - seg);
            if (len == 0 || (len == 1 && seg[0] == '.') || (len == 2 && !strncmp(seg, "..", 2)))
                return 0;
            if (*p == '\0')
                return 1;
            seg = p + 1;
        } else if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            return 0;
        }
    }
}

typedef struct {
    const char *sealed_volume, *model_volume, *identity_secret, *pub_configmap, *manifest, *dir;
} sealed_model_t;

/* Does any container mount volume name? */
static int mounted_by(const cJSON *containers, const char *name)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, containers) {
        if (has_named(cJSON_GetObjectItemCaseSensitive(c, "volumeMounts"), name))
            return 1;
    }
    return 0;
}

/* The sealed-model annotations: 0 when the pod has none, 1 when the set is
 * complete and valid (m filled), -1 with the reason in err otherwise. */
static int sealed_model(const cJSON *pod, const cJSON *spec, sealed_model_t *m, char *err, size_t errlen)
{
    static const char *const required[] = { ANN_SEALED, ANN_MODEL_VOLUME, ANN_IDENTITY, ANN_PUB };
    const cJSON *vols = cJSON_GetObjectItemCaseSensitive(spec, "volumes"), *mv;
    const char *v[4];
    int have = 0;

    for (size_t i = 0; i < 4; i++)
        have += (v[i] = annotation(pod, required[i])) != NULL;
    m->manifest = annotation(pod, ANN_MANIFEST);
    m->dir = annotation(pod, ANN_SEALED_DIR);
    if (!have && !m->manifest && !m->dir)
        return 0;
    for (size_t i = 0; i < 4; i++) {
        if (!v[i]) {
            snprintf(err, errlen, "%s: missing (a sealed model needs " ANN_SEALED ", " ANN_MODEL_VOLUME
                     ", " ANN_IDENTITY " and " ANN_PUB ")", required[i]);
            return -1;
        }
    }
    m->sealed_volume = v[0];
    m->model_volume = v[1];
    m->identity_secret = v[2];
    m->pub_configmap = v[3];
    if (!m->manifest)
        m->manifest = DEFAULT_MANIFEST;
    if (!m->dir)
        m->dir = DEFAULT_SEALED_DIR;
    if (!has_named(vols, m->sealed_volume)) {
        snprintf(err, errlen, ANN_SEALED ": the pod has no volume \"%.64s\"", m->sealed_volume);
        return -1;
    }
    if (!(mv = find_named(vols, m->model_volume))) {
        snprintf(err, errlen, ANN_MODEL_VOLUME ": the pod has no volume \"%.64s\"", m->model_volume);
        return -1;
    }
    if (!strcmp(m->model_volume, m->sealed_volume)) {
        snprintf(err, errlen, ANN_MODEL_VOLUME ": must differ from " ANN_SEALED);
        return -1;
    }
    /* the opened weights must not outlive the pod or reach shared storage */
    if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(mv, "emptyDir"))) {
        snprintf(err, errlen, ANN_MODEL_VOLUME ": volume \"%.64s\" must be an emptyDir", m->model_volume);
        return -1;
    }
    if (!mounted_by(cJSON_GetObjectItemCaseSensitive(spec, "containers"), m->model_volume)) {
        snprintf(err, errlen, ANN_MODEL_VOLUME ": no container mounts volume \"%.64s\"", m->model_volume);
        return -1;
    }
    if (!valid_k8s_name(m->identity_secret)) {
        snprintf(err, errlen, ANN_IDENTITY ": not a valid Secret name");
        return -1;
    }
    if (!valid_k8s_name(m->pub_configmap)) {
        snprintf(err, errlen, ANN_PUB ": not a valid ConfigMap name");
        return -1;
    }
    if (!valid_rel_path(m->manifest)) {
        snprintf(err, errlen, ANN_MANIFEST ": must be a relative path inside the sealed volume "
                 "(no \"..\", \".\" or empty parts)");
        return -1;
    }
    if (!valid_rel_path(m->dir)) {
        snprintf(err, errlen, ANN_SEALED_DIR ": must be a relative path inside the sealed volume "
                 "(no \"..\", \".\" or empty parts)");
        return -1;
    }
    /* open-model refuses any file in the sealed directory the manifest does not list */
    {
        size_t n = strlen(m->dir);
        if (!strncmp(m->manifest, m->dir, n) && m->manifest[n] == '/') {
            snprintf(err, errlen, ANN_MANIFEST ": must not be inside " ANN_SEALED_DIR " \"%.64s\" "
                     "(open-model refuses files there that the manifest does not list)", m->dir);
            return -1;
        }
    }
    return 1;
}

/* --- building the sidecar --------------------------------------------------------- */

static cJSON *http_probe(const char *path, int period, int failures)
{
    cJSON *p = cJSON_CreateObject(), *get = cJSON_AddObjectToObject(p, "httpGet");
    cJSON_AddStringToObject(get, "path", path);
    cJSON_AddNumberToObject(get, "port", PX_INJECT_ADMIN_PORT);
    cJSON_AddNumberToObject(p, "periodSeconds", period);
    cJSON_AddNumberToObject(p, "timeoutSeconds", 2);
    cJSON_AddNumberToObject(p, "failureThreshold", failures);
    return p;
}

static void add_env(cJSON *env, const char *name, const char *value)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "name", name);
    cJSON_AddStringToObject(e, "value", value);
    cJSON_AddItemToArray(env, e);
}

static void add_port(cJSON *ports, const char *name, int port)
{
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "name", name);
    cJSON_AddNumberToObject(p, "containerPort", port);
    cJSON_AddStringToObject(p, "protocol", "TCP");
    cJSON_AddItemToArray(ports, p);
}

static void add_mount(cJSON *mounts, const char *name, const char *path)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "name", name);
    cJSON_AddStringToObject(m, "mountPath", path);
    cJSON_AddBoolToObject(m, "readOnly", 1);
    cJSON_AddItemToArray(mounts, m);
}

static void add_quantities(cJSON *obj, const char *cpu, const char *memory)
{
    cJSON_AddStringToObject(obj, "cpu", cpu);
    cJSON_AddStringToObject(obj, "memory", memory);
}

/* Resources and the restricted security context every injected container gets. */
static void add_limits(cJSON *c)
{
    cJSON *sc, *caps, *res;

    /* The same as deploy/k8s/base's sidecar: one sizing to document and tune. */
    res = cJSON_AddObjectToObject(c, "resources");
    add_quantities(cJSON_AddObjectToObject(res, "requests"), PX_INJECT_CPU_REQUEST,
                   PX_INJECT_MEMORY_REQUEST);
    add_quantities(cJSON_AddObjectToObject(res, "limits"), PX_INJECT_CPU_LIMIT, PX_INJECT_MEMORY_LIMIT);
    sc = cJSON_AddObjectToObject(c, "securityContext");
    cJSON_AddBoolToObject(sc, "runAsNonRoot", 1);
    cJSON_AddNumberToObject(sc, "runAsUser", RUN_AS_USER);
    cJSON_AddNumberToObject(sc, "runAsGroup", RUN_AS_USER);
    cJSON_AddBoolToObject(sc, "allowPrivilegeEscalation", 0);
    cJSON_AddBoolToObject(sc, "readOnlyRootFilesystem", 1);
    caps = cJSON_AddObjectToObject(sc, "capabilities");
    {
        const char *all[] = { "ALL" };
        cJSON_AddItemToObject(caps, "drop", cJSON_CreateStringArray(all, 1));
    }
    cJSON_AddStringToObject(cJSON_AddObjectToObject(sc, "seccompProfile"), "type", "RuntimeDefault");
}

static cJSON *sidecar(const px_inject_opts_t *o, int upstream_port, int grpc_port,
                      const char *policy, const sealed_model_t *sealed)
{
    static const char *const cmd[] = { "pqproxy", "run", "--config",
                                       PX_INJECT_CONFIG_DIR "/pqproxy.json" };
    char up[32], grpc_up[32], sleep_s[16];
    cJSON *c = cJSON_CreateObject(), *env, *ports, *mounts, *pre;

    snprintf(up, sizeof up, "127.0.0.1:%d", upstream_port);
    snprintf(sleep_s, sizeof sleep_s, "%d", o->prestop_sleep_s);
    cJSON_AddStringToObject(c, "name", PX_INJECT_CONTAINER);
    cJSON_AddStringToObject(c, "image", o->image);
    cJSON_AddStringToObject(c, "imagePullPolicy", "IfNotPresent");
    cJSON_AddStringToObject(c, "restartPolicy", "Always");
    cJSON_AddItemToObject(c, "command", cJSON_CreateStringArray(cmd, 4));
    env = cJSON_AddArrayToObject(c, "env");
    add_env(env, "PQPROXY_UPSTREAM", up);
    if (grpc_port) {    /* the ConfigMap's upstreams.grpc, re-pointed */
        snprintf(grpc_up, sizeof grpc_up, "127.0.0.1:%d", grpc_port);
        add_env(env, "PQPROXY_UPSTREAM_GRPC", grpc_up);
    }
    if (policy)
        add_env(env, "PQPROXY_PQ_POLICY", policy);
    ports = cJSON_AddArrayToObject(c, "ports");
    add_port(ports, "pqproxy-https", PX_INJECT_LISTEN_PORT);
    add_port(ports, "pqproxy-admin", PX_INJECT_ADMIN_PORT);
    cJSON_AddItemToObject(c, "startupProbe", http_probe("/healthz", 1, 30));
    cJSON_AddItemToObject(c, "readinessProbe", http_probe("/readyz", 5, 2));
    cJSON_AddItemToObject(c, "livenessProbe", http_probe("/healthz", 10, 3));
    pre = cJSON_AddObjectToObject(cJSON_AddObjectToObject(c, "lifecycle"), "preStop");
    {
        const char *sl[] = { "sleep", sleep_s };
        cJSON_AddItemToObject(cJSON_AddObjectToObject(pre, "exec"), "command",
                              cJSON_CreateStringArray(sl, 2));
    }
    mounts = cJSON_AddArrayToObject(c, "volumeMounts");
    add_mount(mounts, PX_INJECT_CONFIG_VOLUME, PX_INJECT_CONFIG_DIR);
    add_mount(mounts, PX_INJECT_TLS_VOLUME, PX_INJECT_TLS_DIR);
    if (sealed)     /* for signatures.response.model_manifest */
        add_mount(mounts, sealed->sealed_volume, PX_INJECT_SEALED_DIR);
    add_limits(c);
    return c;
}

/* pqproxy open-model: an ordinary init container, so the model server
 * starts only after it exited 0 (and never with a half-opened model).
 * open-model writes only into an empty directory and cleans up after
 * itself, except when killed (OOM, SIGKILL): the emptyDir outlives the
 * container, so a restarted init container empties it first. */
static cJSON *open_model(const px_inject_opts_t *o, const sealed_model_t *m)
{
    char manifest[320], in[320];
    const char *cmd[] = { "sh", "-c",
                          "find " PX_INJECT_MODEL_DIR " -mindepth 1 -delete && "
                          "exec pqproxy open-model \"$@\"", "open-model", "--manifest", manifest,
                          "--pub", PX_INJECT_PUB_DIR "/" PUB_PREFIX,
                          "--identity-file", PX_INJECT_IDENTITY_DIR "/" IDENTITY_KEY,
                          "--in", in, "--out", PX_INJECT_MODEL_DIR };
    cJSON *c = cJSON_CreateObject(), *mounts, *rw;

    snprintf(manifest, sizeof manifest, PX_INJECT_SEALED_DIR "/%s", m->manifest);
    snprintf(in, sizeof in, PX_INJECT_SEALED_DIR "/%s", m->dir);
    cJSON_AddStringToObject(c, "name", PX_INJECT_OPEN_CONTAINER);
    cJSON_AddStringToObject(c, "image", o->image);
    cJSON_AddStringToObject(c, "imagePullPolicy", "IfNotPresent");
    cJSON_AddItemToObject(c, "command", cJSON_CreateStringArray(cmd, sizeof cmd / sizeof cmd[0]));
    mounts = cJSON_AddArrayToObject(c, "volumeMounts");
    add_mount(mounts, m->sealed_volume, PX_INJECT_SEALED_DIR);
    add_mount(mounts, PX_INJECT_IDENTITY_VOLUME, PX_INJECT_IDENTITY_DIR);
    add_mount(mounts, PX_INJECT_PUB_VOLUME, PX_INJECT_PUB_DIR);
    add_mount(mounts, m->model_volume, PX_INJECT_MODEL_DIR);
    rw = cJSON_GetArrayItem(mounts, 3);
    cJSON_ReplaceItemInObjectCaseSensitive(rw, "readOnly", cJSON_CreateFalse());
    add_limits(c);
    return c;
}

static cJSON *volume(const char *name, const char *kind, const char *key, const char *ref)
{
    cJSON *v = cJSON_CreateObject();
    cJSON_AddStringToObject(v, "name", name);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(v, kind), key, ref);
    return v;
}

/* Index of the pqproxy init container (a declared native sidecar), or -1. */
static int sidecar_index(const cJSON *inits)
{
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, inits) {
        const char *n = str_at(it, "name");
        if (n && !strcmp(n, PX_INJECT_CONTAINER))
            return i;
        i++;
    }
    return -1;
}

/* One "add" operation: value is taken over. */
static void op_add(cJSON *patch, const char *path, cJSON *value)
{
    cJSON *op = cJSON_CreateObject();
    cJSON_AddStringToObject(op, "op", "add");
    cJSON_AddStringToObject(op, "path", path);
    cJSON_AddItemToObject(op, "value", value);
    cJSON_AddItemToArray(patch, op);
}

/* Adds items to the array at path: "add path [items]" when the pod has no
 * such array yet (JSON Patch cannot append to a missing array), otherwise
 * one "add path/-" per item. Takes items over. */
static void op_append(cJSON *patch, const char *path, const cJSON *existing, cJSON *items)
{
    char p[128];
    if (!cJSON_IsArray(existing)) {
        op_add(patch, path, items);
        return;
    }
    snprintf(p, sizeof p, "%s/-", path);
    while (cJSON_GetArraySize(items) > 0)
        op_add(patch, p, cJSON_DetachItemFromArray(items, 0));
    cJSON_Delete(items);
}

cJSON *px_inject_patch(const cJSON *pod, px_inject_mode_t mode, const px_inject_opts_t *o,
                       char *err, size_t errlen)
{
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(pod, "spec");
    const cJSON *inits, *vols;
    const char *want = annotation(pod, ANN_INJECT);
    const char *port_s = annotation(pod, ANN_PORT), *policy = annotation(pod, ANN_POLICY);
    const char *cm = annotation(pod, ANN_CONFIG_MAP), *grpc_s = annotation(pod, ANN_GRPC_PORT);
    int port = o->upstream_port, grpc_port = 0, inject, sealed, run_open;
    sealed_model_t m;
    cJSON *patch = NULL, *vlist = NULL;

    if (!cJSON_IsObject(spec)) {
        snprintf(err, errlen, "pod has no spec");
        return NULL;
    }
    inits = cJSON_GetObjectItemCaseSensitive(spec, "initContainers");
    vols = cJSON_GetObjectItemCaseSensitive(spec, "volumes");
    if (want && strcmp(want, "true") && strcmp(want, "false")) {
        snprintf(err, errlen, ANN_INJECT ": must be \"true\" or \"false\"");
        return NULL;
    }
    inject = want ? !strcmp(want, "true") : mode == PX_INJECT_DEFAULT_ON;
    /* a declared sidecar (or one injected before) is left as it is */
    if (has_named(inits, PX_INJECT_CONTAINER) ||
        has_named(cJSON_GetObjectItemCaseSensitive(spec, "containers"), PX_INJECT_CONTAINER))
        inject = 0;
    /* the sealed-model annotations are a request of their own: honoured
     * also where the sidecar is declared (pqproxy.io/inject: "false") */
    if ((sealed = sealed_model(pod, spec, &m, err, errlen)) < 0)
        return NULL;
    run_open = sealed && !has_named(inits, PX_INJECT_OPEN_CONTAINER);
    if (!inject && !run_open)
        return cJSON_CreateArray();
    if (inject && (port_annotation(ANN_PORT, port_s, &port, err, errlen) < 0 ||
                   port_annotation(ANN_GRPC_PORT, grpc_s, &grpc_port, err, errlen) < 0))
        return NULL;
    if (inject && grpc_port == port) {
        snprintf(err, errlen, ANN_GRPC_PORT ": %d is the REST upstream's port too", port);
        return NULL;
    }
    if (inject && policy && strcmp(policy, "require") && strcmp(policy, "prefer")) {
        snprintf(err, errlen, ANN_POLICY ": must be \"require\" or \"prefer\"");
        return NULL;
    }
    if (inject && cm && !valid_k8s_name(cm)) {
        snprintf(err, errlen, ANN_CONFIG_MAP ": not a valid ConfigMap name");
        return NULL;
    }
    for (size_t i = 0; i < N_SHARED; i++) {
        const char *v = annotation(pod, shared_secrets[i].annotation);
        if (v && !valid_k8s_name(v)) {
            snprintf(err, errlen, "%s: not a valid Secret name", shared_secrets[i].annotation);
            return NULL;
        }
    }
    if (!(patch = cJSON_CreateArray()) || !(vlist = cJSON_CreateArray()))
        goto nomem;
    if (run_open && !inject && sidecar_index(inits) >= 0) {
        /* before the declared sidecar, after any earlier init container */
        char at[64];
        snprintf(at, sizeof at, "/spec/initContainers/%d", sidecar_index(inits));
        op_add(patch, at, open_model(o, &m));
    } else {
        cJSON *ours = cJSON_CreateArray(), *c;
        if (!ours)
            goto nomem;
        if (run_open)
            cJSON_AddItemToArray(ours, open_model(o, &m));
        if (inject) {
            cJSON_AddItemToArray(ours, c = sidecar(o, port, grpc_port, policy, sealed ? &m : NULL));
            for (size_t i = 0; i < N_SHARED; i++) {
                const char *v = annotation(pod, shared_secrets[i].annotation);
                if (!v)
                    continue;
                add_mount(cJSON_GetObjectItemCaseSensitive(c, "volumeMounts"),
                          shared_secrets[i].volume, shared_secrets[i].dir);
                if (!has_named(vols, shared_secrets[i].volume))
                    cJSON_AddItemToArray(vlist, volume(shared_secrets[i].volume, "secret",
                                                       "secretName", v));
            }
        }
        op_append(patch, "/spec/initContainers", inits, ours);
    }
    if (inject && !has_named(vols, PX_INJECT_CONFIG_VOLUME))
        cJSON_AddItemToArray(vlist, volume(PX_INJECT_CONFIG_VOLUME, "configMap", "name",
                                           cm ? cm : o->config_map));
    if (inject && !has_named(vols, PX_INJECT_TLS_VOLUME))
        cJSON_AddItemToArray(vlist, volume(PX_INJECT_TLS_VOLUME, "secret", "secretName",
                                           o->tls_secret));
    if (run_open && !has_named(vols, PX_INJECT_IDENTITY_VOLUME))
        cJSON_AddItemToArray(vlist, volume(PX_INJECT_IDENTITY_VOLUME, "secret", "secretName",
                                           m.identity_secret));
    if (run_open && !has_named(vols, PX_INJECT_PUB_VOLUME))
        cJSON_AddItemToArray(vlist, volume(PX_INJECT_PUB_VOLUME, "configMap", "name", m.pub_configmap));
    if (cJSON_GetArraySize(vlist) > 0)
        op_append(patch, "/spec/volumes", vols, vlist);
    else
        cJSON_Delete(vlist);
    return patch;
nomem:
    cJSON_Delete(patch);
    cJSON_Delete(vlist);
    snprintf(err, errlen, "out of memory");
    return NULL;
}

/* --- the AdmissionReview -------------------------------------------------------------- */

static int review_error(char *err, size_t errlen, const char *what)
{
    snprintf(err, errlen, "malformed AdmissionReview: %s", what);
    return PX_EPARSE;
}

int px_inject_review(const char *body, size_t len, px_inject_mode_t mode,
                     const px_inject_opts_t *o, char **out, size_t *out_len,
                     char *err, size_t errlen)
{
    cJSON *in = NULL, *resp = NULL, *r, *patch = NULL;
    const cJSON *req, *kind, *obj;
    const char *uid, *group, *kname, *op;
    char *patch_txt = NULL, *b64 = NULL, why[256];
    int rc = PX_ENOMEM;

    *out = NULL;
    *out_len = 0;
    in = cJSON_ParseWithLength(body, len);
    if (!cJSON_IsObject(in)) {
        rc = review_error(err, errlen, "not a JSON object");
        goto done;
    }
    if (!str_at(in, "apiVersion") || strcmp(str_at(in, "apiVersion"), "admission.k8s.io/v1")) {
        rc = review_error(err, errlen, "apiVersion must be admission.k8s.io/v1");
        goto done;
    }
    if (!str_at(in, "kind") || strcmp(str_at(in, "kind"), "AdmissionReview")) {
        rc = review_error(err, errlen, "kind must be AdmissionReview");
        goto done;
    }
    req = cJSON_GetObjectItemCaseSensitive(in, "request");
    uid = str_at(req, "uid");
    if (!cJSON_IsObject(req) || !uid || !uid[0]) {
        rc = review_error(err, errlen, "request.uid missing");
        goto done;
    }
    kind = cJSON_GetObjectItemCaseSensitive(req, "kind");
    group = str_at(kind, "group");
    kname = str_at(kind, "kind");
    op = str_at(req, "operation");
    if (!cJSON_IsObject(kind) || !kname || !op) {
        rc = review_error(err, errlen, "request.kind or request.operation missing");
        goto done;
    }
    if (!(resp = cJSON_CreateObject()))
        goto done;
    cJSON_AddStringToObject(resp, "apiVersion", "admission.k8s.io/v1");
    cJSON_AddStringToObject(resp, "kind", "AdmissionReview");
    r = cJSON_AddObjectToObject(resp, "response");
    cJSON_AddStringToObject(r, "uid", uid);
    obj = cJSON_GetObjectItemCaseSensitive(req, "object");
    if (strcmp(kname, "Pod") || (group && group[0]) || strcmp(op, "CREATE")) {
        cJSON_AddBoolToObject(r, "allowed", 1);     /* not ours: unchanged */
    } else if (!cJSON_IsObject(obj)) {
        rc = review_error(err, errlen, "request.object missing for a Pod CREATE");
        goto done;
    } else if (!(patch = px_inject_patch(obj, mode, o, why, sizeof why))) {
        cJSON *st;
        cJSON_AddBoolToObject(r, "allowed", 0);
        st = cJSON_AddObjectToObject(r, "status");
        cJSON_AddNumberToObject(st, "code", 400);
        cJSON_AddStringToObject(st, "message", why);
    } else {
        cJSON_AddBoolToObject(r, "allowed", 1);
        if (cJSON_GetArraySize(patch) > 0) {
            if (!(patch_txt = cJSON_PrintUnformatted(patch)) ||
                !(b64 = px_base64_encode((const unsigned char *)patch_txt, strlen(patch_txt))))
                goto done;
            cJSON_AddStringToObject(r, "patchType", "JSONPatch");
            cJSON_AddStringToObject(r, "patch", b64);
        }
    }
    if (!(*out = cJSON_PrintUnformatted(resp)))
        goto done;
    *out_len = strlen(*out);
    rc = 0;
done:
    if (rc == PX_ENOMEM)
        snprintf(err, errlen, "out of memory");
    free(patch_txt);
    free(b64);
    cJSON_Delete(patch);
    cJSON_Delete(resp);
    cJSON_Delete(in);
    return rc;
}
