/* Kubernetes sidecar injection: the pure part of `pqproxy inject-webhook`.
 *
 * Given an AdmissionReview v1 for a Pod, decides whether the pqproxy
 * sidecar goes in and builds the RFC 6902 JSON Patch that adds it as a
 * native sidecar (an init container with restartPolicy: Always), with its
 * ConfigMap and TLS Secret volumes. No I/O here: webhook.c serves it.
 *
 * Pod annotations (values are strings):
 *   pqproxy.io/inject         "true" / "false": opt in / out (a namespace
 *                             labelled pqproxy.io/inject=enabled opts every
 *                             pod in; see px_inject_mode_t)
 *   pqproxy.io/upstream-port  the model server's port on 127.0.0.1 (1..65535)
 *   pqproxy.io/grpc-port      its gRPC (h2c) port on 127.0.0.1: re-points the
 *                             ConfigMap's upstreams.grpc (PQPROXY_UPSTREAM_GRPC)
 *   pqproxy.io/pq-policy      "require" or "prefer" (PQPROXY_PQ_POLICY)
 *   pqproxy.io/config-map     ConfigMap holding pqproxy.json
 *   pqproxy.io/redis-secret   Secret mounted at /etc/pqproxy/redis (the Redis
 *                             password file of signatures.replay_store)
 *   pqproxy.io/ticket-keys-secret  Secret mounted at /etc/pqproxy/tickets (the
 *                             key file of tls.ticket_keys)
 * A sealed, signed model (docs/deploy.md, "Sealed models"): all four of
 *   pqproxy.io/sealed-model-volume   pod volume holding the manifest and the
 *                                    directory of sealed files
 *   pqproxy.io/model-volume          pod emptyDir the model server mounts;
 *                                    the opened model is written there
 *   pqproxy.io/model-identity-secret Secret with the age identity (key
 *                                    "identity")
 *   pqproxy.io/model-pub-configmap   ConfigMap with the signer's public keys
 *                                    (keys "model.ecdsa.pub", "model.mldsa.pub")
 * and optionally
 *   pqproxy.io/model-manifest        manifest path inside the sealed volume
 *                                    (default "manifest.json")
 *   pqproxy.io/sealed-model-dir      directory of the sealed files (<path>.age)
 *                                    inside the sealed volume (default "model";
 *                                    the manifest must not be in it)
 * add an init container "pqproxy-open-model" before the sidecar running
 * `pqproxy open-model`; the sidecar gets the sealed volume read-only at
 * PX_INJECT_SEALED_DIR so signatures.response.model_manifest can name the
 * manifest. A partial or invalid set refuses the pod.
 * A pod that already has a container or init container named "pqproxy" is
 * left alone (empty patch), so re-invocation is harmless. */
#ifndef PX_INJECT_H
#define PX_INJECT_H

#include <stddef.h>

#include <cjson/cJSON.h>

#define PX_INJECT_CONTAINER "pqproxy"
#define PX_INJECT_CONFIG_VOLUME "pqproxy-config"
#define PX_INJECT_TLS_VOLUME "pqproxy-tls"
#define PX_INJECT_CONFIG_DIR "/etc/pqproxy/config"
#define PX_INJECT_TLS_DIR "/etc/pqproxy/tls"
#define PX_INJECT_OPEN_CONTAINER "pqproxy-open-model"
#define PX_INJECT_SEALED_DIR "/etc/pqproxy/sealed-model"
#define PX_INJECT_MODEL_DIR "/var/lib/pqproxy/model"
#define PX_INJECT_IDENTITY_VOLUME "pqproxy-model-identity"
#define PX_INJECT_IDENTITY_DIR "/etc/pqproxy/model-identity"
#define PX_INJECT_PUB_VOLUME "pqproxy-model-pub"
#define PX_INJECT_PUB_DIR "/etc/pqproxy/model-pub"
#define PX_INJECT_LISTEN_PORT 8443
#define PX_INJECT_ADMIN_PORT 9901
/* The sidecar's resources, equal to deploy/k8s/base's (docs/deploy.md). */
#define PX_INJECT_CPU_REQUEST "100m"
#define PX_INJECT_MEMORY_REQUEST "64Mi"
#define PX_INJECT_CPU_LIMIT "2"
#define PX_INJECT_MEMORY_LIMIT "256Mi"

typedef enum {
    PX_INJECT_OPT_IN = 0,   /* inject only when annotated "true" */
    PX_INJECT_DEFAULT_ON    /* the namespace opted in: inject unless annotated "false" */
} px_inject_mode_t;

typedef struct {
    const char *image;            /* sidecar image, e.g. "ghcr.io/example/pqproxy:0.1.0" */
    const char *config_map;       /* default ConfigMap with pqproxy.json */
    const char *tls_secret;       /* kubernetes.io/tls Secret: tls.crt / tls.key */
    int upstream_port;            /* default model server port on 127.0.0.1 */
    int prestop_sleep_s;          /* preStop sleep before SIGTERM (endpoints settle) */
} px_inject_opts_t;

/* Fills o with the defaults: image "pqproxy:latest", ConfigMap
 * "pqproxy-config", Secret "pqproxy-tls", upstream 8501, preStop 5 s. */
void px_inject_opts_default(px_inject_opts_t *o);

/* The JSON Patch (a cJSON array, possibly empty) for pod under mode.
 * NULL with the reason in err when an annotation is invalid (the pod is
 * then refused: an admission error is better than a silently wrong sidecar). */
cJSON *px_inject_patch(const cJSON *pod, px_inject_mode_t mode, const px_inject_opts_t *o,
                       char *err, size_t errlen);

/* A whole AdmissionReview request -> the AdmissionReview response text
 * (malloc'd, NUL-terminated, *out_len without the NUL). Returns 0, or
 * PX_EPARSE when body is not a well-formed AdmissionReview v1 (answer HTTP
 * 400 with err), PX_ENOMEM. Non-Pod objects and operations other than
 * CREATE are allowed unchanged. */
int px_inject_review(const char *body, size_t len, px_inject_mode_t mode,
                     const px_inject_opts_t *o, char **out, size_t *out_len,
                     char *err, size_t errlen);

/* Standard base64 (RFC 4648, with padding, no line breaks); malloc'd. */
char *px_base64_encode(const unsigned char *p, size_t n);

/* `pqproxy inject-webhook ...` (webhook.c). */
int px_cmd_inject_webhook(int argc, char **argv);

#endif
