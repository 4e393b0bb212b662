/* Configuration: JSON text -> validated, immutable px_config_t.
 *
 * Three passes, so a container can point a stock file at mounted files:
 *   1. the JSON: structure, unknown keys, types and ranges (parse_*);
 *   2. environment overrides (px_config_load only);
 *   3. checks on the final values: certificates present and readable,
 *      a hybrid group under pq_policy "require", address clashes.
 * Every error is "FILE: key.path: reason" and the first one wins. */
#include "config/config.h"
#include "cmd/cli.h"
#include "core/cpus.h"
#include "core/errors.h"
#include "config/config_ciphers.h"
#include "config/config_mtls.h"
#include "config/config_sig.h"
#include "config/config_http2.h"
#include "config/config_tickets.h"
#include "core/jsonsyntax.h"
#include "core/jsonv.h"
#include "cmd/version.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_CONFIG_BYTES (1 << 20) /* a config is a few KiB; refuse anything absurd */
#define MAX_BODY_LIMIT 9007199254740992.0 /* 2^53: largest exact integer in a JSON double */

typedef struct {
    px_jv_t jv;           /* file name and error buffer */
    char *dir;            /* absolute directory of the file, for relative paths */
    int workers;          /* as written (0 = per core); resolved at the end */
    /* where certs[0] and client_ca came from, when the environment set them */
    const char *cert0_env, *key0_env, *ca_env;
} ctx_t;

/* "FILE: where: reason" */
#define fail(c, ...) px_jv_fail(&(c)->jv, __VA_ARGS__)

static int oom(ctx_t *c)
{
    if (c->jv.err && c->jv.errlen)
        snprintf(c->jv.err, c->jv.errlen, "%s: out of memory", c->jv.file);
    return PX_ENOMEM;
}

static const char *errstr(int e, char *buf, size_t len)
{
    return strerror_r(e, buf, len); /* GNU variant (_GNU_SOURCE) */
}

/* ---- paths --------------------------------------------------------------- */

/* dir + "/" + p (p alone when absolute), with empty and "." segments dropped.
 * ".." is kept: resolving it lexically would be wrong across symlinks. */
static char *join_path(const char *dir, const char *p)
{
    size_t cap = strlen(dir) + strlen(p) + 3, o = 0;
    char *out = malloc(cap), *tmp;
    const char *segs[2] = { p[0] == '/' ? "" : dir, p };

    if (!out)
        return NULL;
    for (int k = 0; k < 2; k++)
        for (const char *s = segs[k]; *s;) {
            const char *e = strchr(s, '/');
            size_t n = e ? (size_t)(e - s) : strlen(s);
            if (n && !(n == 1 && s[0] == '.')) {
                out[o++] = '/';
                memcpy(out + o, s, n);
                o += n;
            }
            s += n + (e != NULL);
        }
    if (o == 0)
        out[o++] = '/';
    out[o] = '\0';
    tmp = realloc(out, o + 1);
    return tmp ? tmp : out;
}

static char *cwd_dup(void)
{
    char buf[PATH_MAX];
    return getcwd(buf, sizeof buf) ? strdup(buf) : NULL;
}

/* Absolute directory of `file` (relative files are taken from the cwd). */
static char *dir_of(const char *file)
{
    const char *slash = file ? strrchr(file, '/') : NULL;
    char *cwd = NULL, *part = NULL, *dir = NULL;

    if (!(cwd = cwd_dup()))
        goto fail;
    if (!slash) {
        dir = cwd;
        cwd = NULL;
        goto fail;
    }
    if (!(part = strndup(file, (size_t)(slash - file) + 1)))
        goto fail;
    dir = join_path(cwd, part);
fail:
    free(cwd);
    free(part);
    return dir;
}

static int set_str(ctx_t *c, char **dst, const char *s)
{
    char *p = strdup(s);
    if (!p)
        return oom(c);
    free(*dst);
    *dst = p;
    return 0;
}

static int set_path(ctx_t *c, char **dst, const char *dir, const char *s)
{
    char *p = join_path(dir, s);
    if (!p)
        return oom(c);
    free(*dst);
    *dst = p;
    return 0;
}

/* ---- addresses and sections ---------------------------------------------- */

static int set_addr(ctx_t *c, const char *where, const char *s, int allow_unix, px_addr_t *out)
{
    char reason[160], shown[80];
    px_addr_t a;

    px_jv_printable(shown, sizeof shown, s, 64);
    if (px_addr_parse(s, &a, reason, sizeof reason) < 0)
        return fail(c, where, "invalid address \"%s\": %s", shown, reason);
    if (a.is_unix && !allow_unix)
        return fail(c, where, "invalid address \"%s\": must be HOST:PORT or [IPv6]:PORT "
                    "(unix sockets are only supported for upstream.address)", shown);
    *out = a;
    return 0;
}

static int get_addr(ctx_t *c, const cJSON *obj, const char *path, const char *key,
                    int allow_unix, px_addr_t *out)
{
    const char *s;
    char kp[PX_JV_PATH];
    int r = px_jv_str(&c->jv, obj, path, key, &s);

    if (r <= 0)
        return r;
    px_jv_key_path(kp, sizeof kp, path, key);
    return set_addr(c, kp, s, allow_unix, out);
}

/* ---- sections ------------------------------------------------------------ */

/* Lowercases in place; NULL when valid, else why not. */
static const char *check_dns_name(char *name)
{
    size_t len = strlen(name), label = 0;
    char *p = name;

    if (len > 253)
        return "longer than 253 bytes";
    for (char *q = name; *q; q++)
        if (*q >= 'A' && *q <= 'Z')
            *q = (char)(*q - 'A' + 'a');
    if (p[0] == '*') {
        if (p[1] != '.')
            return "'*' is only allowed as the whole first label, as in *.example.com";
        p += 2;
    }
    if (!*p)
        return "empty name";
    for (; *p; p++) {
        if (*p == '.') {
            if (label == 0)
                return "empty label";
            label = 0;
        } else if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-') {
            if (++label > 63)
                return "label longer than 63 bytes";
        } else {
            return "only letters, digits, '-' and '.' are allowed (and a leading \"*.\")";
        }
    }
    return label ? NULL : "empty label";
}

static const char *const cert_keys[] = { "cert", "key", "sni", "ocsp_response", "ocsp_issuer",
                                         NULL };

static int parse_cert(ctx_t *c, const cJSON *o, const char *path, px_cert_config_t *cert)
{
    const cJSON *sni;
    const char *s;
    char kp[PX_JV_PATH], shown[80];
    int r, n;

    if ((r = px_jv_object(&c->jv, o, path, cert_keys)) < 0)
        return r;
    if ((r = px_jv_str(&c->jv, o, path, "cert", &s)) < 0)
        return r;
    px_jv_key_path(kp, sizeof kp, path, "cert");
    if (r == 0)
        return fail(c, kp, "required (PEM certificate chain file)");
    if ((r = set_path(c, &cert->cert_file, c->dir, s)) < 0)
        return r;
    if ((r = px_jv_str(&c->jv, o, path, "key", &s)) < 0)
        return r;
    px_jv_key_path(kp, sizeof kp, path, "key");
    if (r == 0)
        return fail(c, kp, "required (private key file)");
    if ((r = set_path(c, &cert->key_file, c->dir, s)) < 0)
        return r;
    if ((r = px_jv_str(&c->jv, o, path, "ocsp_response", &s)) < 0 ||
        (r && (r = set_path(c, &cert->ocsp_file, c->dir, s)) < 0))
        return r;
    if ((r = px_jv_str(&c->jv, o, path, "ocsp_issuer", &s)) < 0 ||
        (r && (r = set_path(c, &cert->ocsp_issuer_file, c->dir, s)) < 0))
        return r;
    if (!(sni = px_jv_item(o, "sni")))
        return 0;
    px_jv_key_path(kp, sizeof kp, path, "sni");
    if ((n = px_jv_array(&c->jv, sni, kp, 0, PX_MAX_SNI_PER_CERT, "DNS names")) < 0)
        return n;
    for (int i = 0; i < n; i++) {
        const cJSON *v = cJSON_GetArrayItem(sni, i);
        const char *why;
        char ep[PX_JV_PATH];
        px_jv_fmt(ep, sizeof ep, "%s[%d]", kp, i);
        if ((r = px_jv_string(&c->jv, v, ep)) < 0)
            return r;
        if ((r = set_str(c, &cert->sni[i], v->valuestring)) < 0)
            return r;
        cert->sni_count = i + 1;
        px_jv_printable(shown, sizeof shown, v->valuestring, 64);
        if ((why = check_dns_name(cert->sni[i])))
            return fail(c, ep, "invalid DNS name \"%s\": %s", shown, why);
        for (int j = 0; j < i; j++)
            if (!strcmp(cert->sni[j], cert->sni[i]))
                return fail(c, ep, "duplicate name \"%s\"", cert->sni[i]);
    }
    return 0;
}

static int parse_groups(ctx_t *c, const cJSON *v, px_tls_config_t *tls)
{
    const uint16_t *ids;
    char known[256] = "", usable[256] = "", ep[PX_JV_PATH], shown[80];
    int n = px_jv_array(&c->jv, v, "tls.groups", 1, PX_MAX_GROUPS, "group names");
    int all = px_group_all(&ids), r;

    if (n < 0)
        return n;
    for (int i = 0; i < all; i++) {
        size_t k = strlen(known), u = strlen(usable);
        snprintf(known + k, sizeof known - k, "%s%s", i ? ", " : "", px_group_name(ids[i]));
        if (px_probe_group(ids[i]))
            snprintf(usable + u, sizeof usable - u, "%s%s", u ? ", " : "", px_group_name(ids[i]));
    }
    for (int i = 0; i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(v, i);
        uint16_t g;
        px_jv_fmt(ep, sizeof ep, "tls.groups[%d]", i);
        if ((r = px_jv_string(&c->jv, e, ep)) < 0)
            return r;
        px_jv_printable(shown, sizeof shown, e->valuestring, 64);
        if (!(g = px_group_from_name(e->valuestring)))
            return fail(c, ep, "unknown group \"%s\" (known: %s)", shown, known);
        for (int j = 0; j < i; j++)
            if (tls->groups[j] == g)
                return fail(c, ep, "duplicate group \"%s\" (same as tls.groups[%d])", shown, j);
        /* a known name the linked wolfSSL cannot offer would pass here and
         * silently never be negotiated: refuse it (probed, not from headers) */
        if (!px_probe_group(g))
            return fail(c, ep, "group \"%s\" is not supported by this build's wolfSSL "
                        "(supported: %s; see pqproxy version)", shown, usable);
        tls->groups[i] = g;
    }
    tls->group_count = n;
    return 0;
}

static int parse_alpn(ctx_t *c, const cJSON *v, px_tls_config_t *tls)
{
    char ep[PX_JV_PATH], shown[80];
    int n = px_jv_array(&c->jv, v, "tls.alpn", 0, PX_MAX_ALPN, "protocol names"), r;

    if (n < 0)
        return n;
    for (int i = 0; i < PX_MAX_ALPN; i++) {
        free(tls->alpn[i]);
        tls->alpn[i] = NULL;
    }
    tls->alpn_count = 0;
    for (int i = 0; i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(v, i);
        px_jv_fmt(ep, sizeof ep, "tls.alpn[%d]", i);
        if ((r = px_jv_string(&c->jv, e, ep)) < 0)
            return r;
        px_jv_printable(shown, sizeof shown, e->valuestring, 64);
        if (strlen(e->valuestring) > 255)
            return fail(c, ep, "must be 1 to 255 bytes long");
        for (int j = 0; j < i; j++)
            if (!strcmp(tls->alpn[j], e->valuestring))
                return fail(c, ep, "duplicate protocol \"%s\"", shown);
        if ((r = set_str(c, &tls->alpn[i], e->valuestring)) < 0)
            return r;
        tls->alpn_count = i + 1;
    }
    return 0;
}

static const char *const tls_keys[] = { "certificates", "groups", "pq_policy", "min_version",
                                        "client_ca", "session_tickets", "ticket_key_rotation_s",
                                        "alpn", "cert_expiry_warning_days", "ciphers",
                                        "signature_algorithms", PX_MTLS_TLS_KEYS, "ticket_keys",
                                        NULL };

static int parse_tls(ctx_t *c, const cJSON *o, px_config_t *cfg)
{
    static const char *const policies[] = { "require", "prefer", NULL };
    static const char *const versions[] = { "1.3", "1.2", NULL };
    px_tls_config_t *tls = &cfg->tls;
    const cJSON *v;
    char got[80];
    int r, n, idx;

    if ((r = px_jv_object(&c->jv, o, "tls", tls_keys)) < 0)
        return r;
    if ((v = px_jv_item(o, "certificates"))) {
        if ((n = px_jv_array(&c->jv, v, "tls.certificates", 1, PX_MAX_CERTS,
                           "{\"cert\", \"key\", \"sni\"} objects")) < 0)
            return n;
        for (int i = 0; i < n; i++) {
            char ep[PX_JV_PATH];
            px_jv_fmt(ep, sizeof ep, "tls.certificates[%d]", i);
            tls->cert_count = i + 1; /* owned strings are freed with the config either way */
            if ((r = parse_cert(c, cJSON_GetArrayItem(v, i), ep, &tls->certs[i])) < 0)
                return r;
        }
    }
    if ((v = px_jv_item(o, "groups")) && (r = parse_groups(c, v, tls)) < 0)
        return r;
    if ((r = px_jv_enum(&c->jv, o, "tls", "pq_policy", policies, &idx)) < 0)
        return r;
    if (r)
        tls->pq_policy = idx ? PX_PQ_PREFER : PX_PQ_REQUIRE;
    if ((r = px_jv_enum(&c->jv, o, "tls", "min_version", versions, &idx)) < 0)
        return r;
    if (r)
        tls->min_version = idx ? 12 : 13;
    if ((v = px_jv_item(o, "client_ca")) && !cJSON_IsNull(v)) {
        if (!cJSON_IsString(v) || !v->valuestring[0])
            return fail(c, "tls.client_ca", "must be null or a file path, got %s",
                        px_jv_describe(v, got, sizeof got));
        if ((r = set_path(c, &tls->client_ca_file, c->dir, v->valuestring)) < 0)
            return r;
    }
    if ((r = px_jv_bool(&c->jv, o, "tls", "session_tickets", &tls->session_tickets)) < 0)
        return r;
    if ((r = px_jv_u32(&c->jv, o, "tls", "ticket_key_rotation_s", 60, 604800,
                     &tls->ticket_key_rotation_s)) < 0)
        return r;
    if ((v = px_jv_item(o, "alpn")) && (r = parse_alpn(c, v, tls)) < 0)
        return r;
    if ((r = px_jv_u32(&c->jv, o, "tls", "cert_expiry_warning_days", 0, 3650,
                     &tls->cert_expiry_warning_days)) < 0)
        return r;
    if ((v = px_jv_item(o, "ciphers")) && (r = px_config_parse_ciphers(&c->jv, v, tls)) < 0)
        return r;
    if ((v = px_jv_item(o, "signature_algorithms")) &&
        (r = px_config_parse_sigalgs(&c->jv, v, tls)) < 0)
        return r;
    if ((v = px_jv_item(o, "ticket_keys")) &&
        (r = px_config_parse_ticket_keys(&c->jv, c->dir, v, &tls->ticket_keys)) < 0)
        return r;
    return px_config_parse_mtls(&c->jv, c->dir, o, tls);
}

static const char *const upstream_keys[] = { "address", "pool_max_idle",
                                             "max_requests_per_conn", "protocol",
                                             "h2c_max_streams", "h2c_max_connections",
                                             "h2c_ping_timeout_ms", "max_connections", NULL };
static const char *const upstream_protocols[] = { "http1", "h2c", NULL };

/* One upstream object: `upstream` or `upstreams.<name>` (path says which). */
static int parse_upstream(ctx_t *c, const cJSON *o, const char *path, px_upstream_config_t *u)
{
    int r, idx;

    if ((r = px_jv_object(&c->jv, o, path, upstream_keys)) < 0 ||
        (r = get_addr(c, o, path, "address", 1, &u->addr)) < 0 ||
        (r = px_jv_u32(&c->jv, o, path, "pool_max_idle", 0, 10000, &u->pool_max_idle)) < 0 ||
        (r = px_jv_u32(&c->jv, o, path, "max_requests_per_conn", 0, 10000000,
                     &u->max_requests_per_conn)) < 0 ||
        (r = px_jv_u32(&c->jv, o, path, "h2c_max_streams", 1, 10000,
                       &u->h2c_max_streams)) < 0 ||
        (r = px_jv_u32(&c->jv, o, path, "h2c_max_connections", 1, PX_H2C_MAX_CONNECTIONS,
                       &u->h2c_max_connections)) < 0 ||
        (r = px_jv_u32(&c->jv, o, path, "h2c_ping_timeout_ms", 0, 600000,
                       &u->h2c_ping_timeout)) < 0 ||
        (r = px_jv_u32(&c->jv, o, path, "max_connections", 0, 100000, &u->max_connections)) < 0 ||
        (r = px_jv_enum(&c->jv, o, path, "protocol", upstream_protocols, &idx)) < 0)
        return r;
    if (r)
        u->protocol = idx ? PX_UP_H2C : PX_UP_HTTP1;
    return 0;
}

/* upstreams: {"name": {upstream object}, ...}; each starts from the
 * default upstream's settings except its address, which it must give. */
static int parse_upstreams(ctx_t *c, const cJSON *o, px_config_t *cfg)
{
    const cJSON *it;
    int r, n = 0;

    if (!cJSON_IsObject(o))
        return fail(c, "upstreams", "expected an object of named upstreams, e.g. "
                    "{\"grpc\": {\"address\": \"127.0.0.1:8500\"}}");
    cJSON_ArrayForEach(it, o) {
        px_named_upstream_t *nu = &cfg->upstreams[n];
        char path[PX_JV_PATH];
        size_t len = strlen(it->string);

        px_jv_fmt(path, sizeof path, "upstreams.%s", it->string);
        if (n == PX_MAX_UPSTREAMS)
            return fail(c, path, "too many named upstreams (at most %d)", PX_MAX_UPSTREAMS);
        if (len == 0 || len > PX_UPSTREAM_NAME_MAX ||
            strspn(it->string, "abcdefghijklmnopqrstuvwxyz0123456789_-") != len)
            return fail(c, path, "a name is 1-%d characters of a-z, 0-9, '_' and '-'",
                        PX_UPSTREAM_NAME_MAX);
        if (!strcmp(it->string, "default"))
            return fail(c, path, "\"default\" is the name of the `upstream` section");
        for (int k = 0; k < n; k++)
            if (!strcmp(cfg->upstreams[k].name, it->string))
                return fail(c, path, "duplicate name");
        memcpy(nu->name, it->string, len + 1);
        nu->cfg = cfg->upstream;
        nu->cfg.protocol = PX_UP_HTTP1;     /* each says its own */
        if (!px_jv_item(it, "address"))
            return fail(c, path, "required: \"address\"");
        if ((r = parse_upstream(c, it, path, &nu->cfg)) < 0)
            return r;
        cfg->upstream_count = ++n;
    }
    return 0;
}

static const char *const http_keys[] = { "max_header_bytes", "max_body_bytes", "trust_forwarded",
                                         "max_requests_per_conn", NULL };

static int parse_http(ctx_t *c, const cJSON *o, px_http_config_t *h)
{
    int64_t body;
    int r;

    if ((r = px_jv_object(&c->jv, o, "http", http_keys)) < 0 ||
        (r = px_jv_u32(&c->jv, o, "http", "max_header_bytes", 8192, PX_MAX_HEADER_BYTES,
                       &h->max_header_bytes)) < 0 ||
        (r = px_jv_int(&c->jv, o, "http", "max_body_bytes", 0, (int64_t)MAX_BODY_LIMIT, &body)) < 0)
        return r;
    if (r)
        h->max_body_bytes = (uint64_t)body;
    if ((r = px_jv_bool(&c->jv, o, "http", "trust_forwarded", &h->trust_forwarded)) < 0 ||
        (r = px_jv_u32(&c->jv, o, "http", "max_requests_per_conn", 0, 10000000,
                     &h->max_requests_per_conn)) < 0)
        return r;
    return 0;
}

#define TIMEOUT_FIELDS(XX)                                                       \
    XX(handshake, 10000) XX(request_header, 15000) XX(body_idle, 30000)          \
    XX(request, 120000)                                                          \
    XX(keepalive_idle, 75000) XX(upstream_connect, 3000) XX(upstream_queue, 10000) \
    XX(upstream_response, 120000) XX(upstream_idle, 60000)                       \
    XX(send_idle, 60000) XX(drain, 25000)

static const char *const timeout_keys[] = {
#define XX(f, def) #f "_ms",
    TIMEOUT_FIELDS(XX)
#undef XX
    NULL
};

static int parse_timeouts(ctx_t *c, const cJSON *o, px_timeouts_config_t *t)
{
    int r;

    if ((r = px_jv_object(&c->jv, o, "timeouts", timeout_keys)) < 0)
        return r;
#define XX(f, def)                                                               \
    if ((r = px_jv_u32(&c->jv, o, "timeouts", #f "_ms", 1, 3600000, &t->f)) < 0)        \
        return r;
    TIMEOUT_FIELDS(XX)
#undef XX
    return 0;
}

/* "stdout"/"stderr" (and "off" for the access log) are kept as they are;
 * anything else is a file path. */
static int get_log_target(ctx_t *c, const cJSON *o, const char *key, int allow_off, char **dst)
{
    const char *s;
    char kp[PX_JV_PATH];
    int r = px_jv_str(&c->jv, o, "log", key, &s);

    if (r <= 0)
        return r;
    px_jv_key_path(kp, sizeof kp, "log", key);
    if (!strcmp(s, "stdout") || !strcmp(s, "stderr") || (allow_off && !strcmp(s, "off")))
        return set_str(c, dst, s);
    if (!strcmp(s, "off"))
        return fail(c, kp, "cannot be \"off\" (errors are always logged); use \"stderr\", "
                    "\"stdout\" or a file path");
    return set_path(c, dst, c->dir, s);
}

static const char *const log_keys[] = { "level", "access_log", "error_log", NULL };

static int parse_log(ctx_t *c, const cJSON *o, px_log_config_t *l)
{
    static const char *const levels[] = { "debug", "info", "warn", "error", NULL };
    int r, idx;

    if ((r = px_jv_object(&c->jv, o, "log", log_keys)) < 0 ||
        (r = px_jv_enum(&c->jv, o, "log", "level", levels, &idx)) < 0)
        return r;
    if (r)
        l->level = (px_log_level_t)idx;
    if ((r = get_log_target(c, o, "access_log", 1, &l->access_log)) < 0 ||
        (r = get_log_target(c, o, "error_log", 0, &l->error_log)) < 0)
        return r;
    return 0;
}

static const char *const admin_keys[] = { "enabled", "listen", NULL };

static int parse_admin(ctx_t *c, const cJSON *o, px_admin_config_t *a)
{
    int r;

    if ((r = px_jv_object(&c->jv, o, "admin", admin_keys)) < 0 ||
        (r = px_jv_bool(&c->jv, o, "admin", "enabled", &a->enabled)) < 0 ||
        (r = get_addr(c, o, "admin", "listen", 0, &a->addr)) < 0)
        return r;
    return 0;
}

static const char *const root_keys[] = { "listen", "workers", "max_connections", "tls",
                                         "upstream", "upstreams", "http", "timeouts", "log",
                                         "admin", "signatures", "routes", "http2", NULL };

static int parse_root(ctx_t *c, const cJSON *root, px_config_t *cfg)
{
    const cJSON *v;
    int64_t n;
    int r;

    if ((r = px_jv_object(&c->jv, root, "", root_keys)) < 0 ||
        (r = get_addr(c, root, "", "listen", 0, &cfg->listen)) < 0 ||
        (r = px_jv_int(&c->jv, root, "", "workers", 0, 256, &n)) < 0)
        return r;
    if (r)
        c->workers = (int)n;
    if ((r = px_jv_u32(&c->jv, root, "", "max_connections", 1, 1000000, &cfg->max_connections)) < 0)
        return r;
    if ((v = px_jv_item(root, "tls")) && (r = parse_tls(c, v, cfg)) < 0)
        return r;
    if ((v = px_jv_item(root, "upstream")) && (r = parse_upstream(c, v, "upstream", &cfg->upstream)) < 0)
        return r;
    if ((v = px_jv_item(root, "upstreams")) && (r = parse_upstreams(c, v, cfg)) < 0)
        return r;
    if ((v = px_jv_item(root, "http")) && (r = parse_http(c, v, &cfg->http)) < 0)
        return r;
    if ((v = px_jv_item(root, "timeouts")) && (r = parse_timeouts(c, v, &cfg->timeouts)) < 0)
        return r;
    if ((v = px_jv_item(root, "log")) && (r = parse_log(c, v, &cfg->log)) < 0)
        return r;
    if ((v = px_jv_item(root, "admin")) && (r = parse_admin(c, v, &cfg->admin)) < 0)
        return r;
    if ((v = px_jv_item(root, "signatures")) &&
        (r = px_config_parse_signatures(&c->jv, c->dir, v, cfg)) < 0)
        return r;
    if ((v = px_jv_item(root, "routes")) && (r = px_config_parse_routes(&c->jv, v, cfg)) < 0)
        return r;
    if ((v = px_jv_item(root, "http2")) && (r = px_config_parse_http2(&c->jv, v, &cfg->http2)) < 0)
        return r;
    return 0;
}

/* ---- defaults, environment, final checks --------------------------------- */

static int set_defaults(ctx_t *c, px_config_t *cfg)
{
    static const char *const groups[] = { "X25519MLKEM768", "SecP256r1MLKEM768",
                                          "SecP384r1MLKEM1024", "X25519" };

    px_addr_parse("0.0.0.0:8443", &cfg->listen, NULL, 0);
    px_addr_parse("127.0.0.1:8501", &cfg->upstream.addr, NULL, 0);
    px_addr_parse("127.0.0.1:9901", &cfg->admin.addr, NULL, 0);
    cfg->max_connections = 10000;
    for (int i = 0; i < 4; i++)
        cfg->tls.groups[i] = px_group_from_name(groups[i]);
    cfg->tls.group_count = 4;
    cfg->tls.pq_policy = PX_PQ_REQUIRE;
    cfg->tls.min_version = 13;
    cfg->tls.session_tickets = 1;
    cfg->tls.ticket_key_rotation_s = 3600;
    cfg->tls.cert_expiry_warning_days = 30;
    cfg->tls.alpn_count = 2;           /* h2 first: clients that offer it prefer it */
    px_config_mtls_defaults(&cfg->tls);
    px_config_ticket_keys_defaults(&cfg->tls.ticket_keys);
    cfg->upstream.pool_max_idle = 64;
    cfg->upstream.h2c_max_streams = 100;
    cfg->upstream.h2c_max_connections = 64;
    cfg->upstream.h2c_ping_timeout = 5000;
    cfg->upstream.max_connections = 256;
    cfg->http.max_header_bytes = 65536;
    cfg->http.max_body_bytes = 64 << 20;   /* a finite default; 0 in the file: unlimited */
    px_config_http2_defaults(&cfg->http2);
#define XX(f, def) cfg->timeouts.f = def;
    TIMEOUT_FIELDS(XX)
#undef XX
    cfg->log.level = PX_LOG_INFO;
    cfg->admin.enabled = 1;
    px_config_sig_defaults(cfg);
    if (set_str(c, &cfg->tls.alpn[0], "h2") < 0 || set_str(c, &cfg->tls.alpn[1], "http/1.1") < 0 ||
        set_str(c, &cfg->log.access_log, "stdout") < 0 ||
        set_str(c, &cfg->log.error_log, "stderr") < 0)
        return PX_ENOMEM;
    return 0;
}

/* Unset and empty are the same: `docker run -e VAR=` must not break a config. */
static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static int env_addr(ctx_t *c, const char *name, int allow_unix, px_addr_t *dst)
{
    char where[64];
    const char *v = env(name);

    if (!v)
        return 0;
    px_jv_fmt(where, sizeof where, "environment %s", name);
    return set_addr(c, where, v, allow_unix, dst);
}

/* PQPROXY_UPSTREAM_GRPC re-points upstreams.grpc (the sidecar injector's
 * pqproxy.io/grpc-port): the file says what the upstream is (h2c, its
 * routes), the environment only where it listens, as for PQPROXY_UPSTREAM. */
static int env_grpc_upstream(ctx_t *c, px_config_t *cfg)
{
    if (!env("PQPROXY_UPSTREAM_GRPC"))
        return 0;
    for (int i = 0; i < cfg->upstream_count; i++)
        if (!strcmp(cfg->upstreams[i].name, "grpc"))
            return env_addr(c, "PQPROXY_UPSTREAM_GRPC", 1, &cfg->upstreams[i].cfg.addr);
    return fail(c, "environment PQPROXY_UPSTREAM_GRPC", "the configuration has no upstreams.grpc "
                "to point there (add {\"grpc\": {\"address\": ..., \"protocol\": \"h2c\"}} and a "
                "route with \"grpc\": true and \"upstream\": \"grpc\")");
}

static int apply_env(ctx_t *c, px_config_t *cfg)
{
    const char *w = env("PQPROXY_WORKERS"), *crt = env("PQPROXY_TLS_CERT");
    const char *key = env("PQPROXY_TLS_KEY"), *ca = env("PQPROXY_TLS_CLIENT_CA");
    const char *pq = env("PQPROXY_PQ_POLICY");
    char *cwd = NULL, shown[80];
    int r;

    if ((r = env_addr(c, "PQPROXY_LISTEN", 0, &cfg->listen)) < 0 ||
        (r = env_addr(c, "PQPROXY_UPSTREAM", 1, &cfg->upstream.addr)) < 0 ||
        (r = env_grpc_upstream(c, cfg)) < 0 ||
        (r = env_addr(c, "PQPROXY_ADMIN_LISTEN", 0, &cfg->admin.addr)) < 0)
        goto fail;
    if (w) {
        char *end;
        long n;
        errno = 0;
        n = strtol(w, &end, 10);
        px_jv_printable(shown, sizeof shown, w, 40);
        if (w[0] < '0' || w[0] > '9' || *end || errno || n > 256) {
            r = fail(c, "environment PQPROXY_WORKERS",
                     "must be an integer between 0 and 256, got \"%s\"", shown);
            goto fail;
        }
        c->workers = (int)n;
    }
    if (pq) {
        if (!strcmp(pq, "require") || !strcmp(pq, "prefer")) {
            cfg->tls.pq_policy = strcmp(pq, "require") ? PX_PQ_PREFER : PX_PQ_REQUIRE;
        } else {
            px_jv_printable(shown, sizeof shown, pq, 40);
            r = fail(c, "environment PQPROXY_PQ_POLICY", "must be \"require\" or \"prefer\", got \"%s\"",
                     shown);
            goto fail;
        }
    }
    if (!!crt != !!key) {
        r = fail(c, crt ? "environment PQPROXY_TLS_CERT" : "environment PQPROXY_TLS_KEY",
                 "PQPROXY_TLS_CERT and PQPROXY_TLS_KEY must be set together");
        goto fail;
    }
    /* environment paths are relative to where the proxy is started */
    if ((crt || ca) && !(cwd = cwd_dup())) {
        r = oom(c);
        goto fail;
    }
    if (crt) {
        if ((r = set_path(c, &cfg->tls.certs[0].cert_file, cwd, crt)) < 0 ||
            (r = set_path(c, &cfg->tls.certs[0].key_file, cwd, key)) < 0)
            goto fail;
        if (cfg->tls.cert_count == 0)
            cfg->tls.cert_count = 1;
        c->cert0_env = "environment PQPROXY_TLS_CERT";
        c->key0_env = "environment PQPROXY_TLS_KEY";
    }
    if (ca) {
        if ((r = set_path(c, &cfg->tls.client_ca_file, cwd, ca)) < 0)
            goto fail;
        c->ca_env = "environment PQPROXY_TLS_CLIENT_CA";
    }
    r = 0;
fail:
    free(cwd);
    return r;
}

/* open() as the TLS layer will; O_NONBLOCK so a FIFO cannot hang us. */
static int check_readable(ctx_t *c, const char *where, const char *path)
{
    struct stat st;
    char eb[128];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK), e = 0;

    if (fd < 0)
        e = errno;
    else {
        if (fstat(fd, &st) < 0)
            e = errno;
        else if (S_ISDIR(st.st_mode))
            e = EISDIR;
        close(fd);
    }
    if (e)
        return fail(c, where, "file not readable: %s (%s)", path, errstr(e, eb, sizeof eb));
    return 0;
}

static int is_wildcard(const px_addr_t *a)
{
    return !strcmp(a->host, "0.0.0.0") || !strcmp(a->host, "::");
}

/* Same TCP port and overlapping hosts: bind would fail or the proxy would
 * forward to itself. */
static int same_endpoint(const px_addr_t *a, const px_addr_t *b)
{
    if (a->is_unix || b->is_unix)
        return a->is_unix && b->is_unix && !strcmp(a->host, b->host);
    return a->port == b->port && (!strcmp(a->host, b->host) || is_wildcard(a) || is_wildcard(b));
}

static int finish(ctx_t *c, px_config_t *cfg)
{
    px_tls_config_t *tls = &cfg->tls;
    char where[PX_JV_PATH];
    int r, hybrid = 0;

    if (tls->cert_count == 0)
        return fail(c, "tls.certificates", "required: at least one {\"cert\": FILE, \"key\": "
                    "FILE} (or set PQPROXY_TLS_CERT and PQPROXY_TLS_KEY)");
    for (int i = 0; i < tls->group_count; i++)
        hybrid |= px_group_is_hybrid(tls->groups[i]);
    if (tls->pq_policy == PX_PQ_REQUIRE && !hybrid)
        return fail(c, "tls.groups", "pq_policy \"require\" needs at least one hybrid "
                    "post-quantum group (X25519MLKEM768, SecP256r1MLKEM768, SecP384r1MLKEM1024)");
    if (cfg->admin.enabled && same_endpoint(&cfg->admin.addr, &cfg->listen))
        return fail(c, "admin.listen", "same address and port as listen");
    if (same_endpoint(&cfg->upstream.addr, &cfg->listen))
        return fail(c, "upstream.address", "points at the proxy's own listen address");
    for (int i = 0; i < cfg->upstream_count; i++)
        if (same_endpoint(&cfg->upstreams[i].cfg.addr, &cfg->listen)) {
            px_jv_fmt(where, sizeof where, "upstreams.%s.address", cfg->upstreams[i].name);
            return fail(c, where, "points at the proxy's own listen address");
        }
    for (int i = 0; i < tls->cert_count; i++) {
        px_jv_fmt(where, sizeof where, "tls.certificates[%d].cert", i);
        if ((r = check_readable(c, i == 0 && c->cert0_env ? c->cert0_env : where,
                                tls->certs[i].cert_file)) < 0)
            return r;
        px_jv_fmt(where, sizeof where, "tls.certificates[%d].key", i);
        if ((r = check_readable(c, i == 0 && c->key0_env ? c->key0_env : where,
                                tls->certs[i].key_file)) < 0)
            return r;
        px_jv_fmt(where, sizeof where, "tls.certificates[%d].ocsp_response", i);
        if (tls->certs[i].ocsp_file && (r = check_readable(c, where, tls->certs[i].ocsp_file)) < 0)
            return r;
        px_jv_fmt(where, sizeof where, "tls.certificates[%d].ocsp_issuer", i);
        if (tls->certs[i].ocsp_issuer_file && !tls->certs[i].ocsp_file)
            return fail(c, where, "only used with ocsp_response, which is not set");
        if (tls->certs[i].ocsp_issuer_file &&
            (r = check_readable(c, where, tls->certs[i].ocsp_issuer_file)) < 0)
            return r;
    }
    if (tls->client_ca_file &&
        (r = check_readable(c, c->ca_env ? c->ca_env : "tls.client_ca", tls->client_ca_file)) < 0)
        return r;
    if ((r = px_config_check_mtls(&c->jv, tls)) < 0)
        return r;
    if ((r = px_config_check_signatures(&c->jv, cfg)) < 0)
        return r;
    if ((r = px_config_check_ticket_keys(&c->jv, cfg)) < 0)
        return r;
    px_config_cipher_defaults(tls);
    if (c->workers == 0) {
        unsigned n = px_cpu_count();
        c->workers = n > 256 ? 256 : (int)n;
    }
    cfg->workers = c->workers;
    return 0;
}

/* "line L, column C: malformed JSON: REASON" at the fault found by the
 * strict syntax check (jsonsyntax.h; line and column 1-based, in bytes),
 * quoting the text that follows it on its line. */
static int syntax_error(ctx_t *c, const char *json, const px_json_error_t *je)
{
    const char *at = json + je->offset;
    int line = 1, col = 1;
    char text[32], near[48], where[64];
    size_t n;
    cJSON *root;

    for (const char *p = json; p < at; p++) {
        if (*p == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    px_jv_fmt(where, sizeof where, "line %d, column %d", line, col);
    /* a \u0000 (cJSON takes it): name the key it is in */
    if ((root = cJSON_ParseWithOpts(json, NULL, 1))) {
        int r = px_jv_nul_at(&c->jv, json, root, je->offset, where);
        cJSON_Delete(root);
        if (r < 0)
            return r;
    }
    n = strcspn(at, "\r\n");
    if (!n)
        return fail(c, where, "malformed JSON: %s", je->reason);
    memcpy(text, at, n < 28 ? n : 28);
    text[n < 28 ? n : 28] = '\0';
    px_jv_printable(near, sizeof near, text, 24);
    return fail(c, where, "malformed JSON: %s (at \"%s\")", je->reason, near);
}

static px_config_t *build(const char *json, const char *file, int use_env, char *err,
                          size_t errlen)
{
    ctx_t c = { .jv = { .file = file ? file : "<config>", .err = err, .errlen = errlen } };
    px_config_t *cfg = NULL;
    cJSON *root = NULL;
    const char *end = NULL;
    px_json_error_t je;
    int r = PX_ENOMEM;

    if (err && errlen)
        err[0] = '\0';
    if (!(cfg = calloc(1, sizeof *cfg)) || !(c.dir = dir_of(file)) ||
        (file && !(cfg->path = strdup(file)))) {
        oom(&c);
        goto fail;
    }
    if ((r = set_defaults(&c, cfg)) < 0)
        goto fail;
    if (!json) {
        r = fail(&c, "line 1, column 1", "malformed JSON: no input");
        goto fail;
    }
    if (px_json_check(json, strlen(json), &je) < 0) {
        r = syntax_error(&c, json, &je);
        goto fail;
    }
    if (!(root = cJSON_ParseWithOpts(json, &end, 1))) {   /* out of memory, after the check */
        je.offset = end && end >= json ? (size_t)(end - json) : 0;
        je.reason = "not accepted by the JSON parser (out of memory?)";
        r = syntax_error(&c, json, &je);
        goto fail;
    }
    if ((r = parse_root(&c, root, cfg)) < 0 || (use_env && (r = apply_env(&c, cfg)) < 0) ||
        (r = finish(&c, cfg)) < 0)
        goto fail;
fail:
    cJSON_Delete(root);
    free(c.dir);
    if (r < 0) {
        px_config_free(cfg);
        cfg = NULL;
    }
    return cfg;
}

/* ---- public -------------------------------------------------------------- */

px_config_t *px_config_parse(const char *json, const char *file, char *err, size_t errlen)
{
    return build(json, file, 0, err, errlen);
}

/* Whole file into a NUL-terminated buffer; works for pipes too (no size from fstat). */
static char *read_all(const char *file, int *err_out)
{
    size_t len = 0, cap = 4096;
    char *buf = NULL, *tmp;
    int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY), e = 0;
    struct stat st;

    if (fd < 0) {
        e = errno;
        goto fail;
    }
    if (fstat(fd, &st) < 0) {
        e = errno;
        goto fail;
    }
    if (S_ISDIR(st.st_mode)) {
        e = EISDIR;
        goto fail;
    }
    if (!(buf = malloc(cap))) {
        e = ENOMEM;
        goto fail;
    }
    for (;;) {
        ssize_t n;
        if (len > MAX_CONFIG_BYTES) {
            e = EFBIG;
            goto fail;
        }
        if (len + 1 == cap) {
            if (!(tmp = realloc(buf, cap * 2))) {
                e = ENOMEM;
                goto fail;
            }
            buf = tmp;
            cap *= 2;
        }
        n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            e = errno;
            goto fail;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    if (memchr(buf, '\0', len))
        e = EILSEQ; /* cJSON would silently stop at the NUL */
fail:
    if (fd >= 0)
        close(fd);
    if (e) {
        free(buf);
        buf = NULL;
    }
    *err_out = e;
    return buf;
}

px_config_t *px_config_load(const char *file, char *err, size_t errlen)
{
    char eb[128];
    int e = 0;
    char *text = file ? read_all(file, &e) : NULL;
    px_config_t *cfg = NULL;

    if (!text) {
        if (err && errlen)
            snprintf(err, errlen, "%s: cannot read: %s", file ? file : "<config>",
                     !file ? "no file given"
                     : e == EILSEQ ? "contains a NUL byte (not a JSON text file)"
                     : errstr(e, eb, sizeof eb));
        goto fail;
    }
    cfg = build(text, file, 1, err, errlen);
fail:
    free(text);
    return cfg;
}

void px_config_free(px_config_t *cfg)
{
    if (!cfg)
        return;
    free(cfg->path);
    for (int i = 0; i < PX_MAX_CERTS; i++) {
        free(cfg->tls.certs[i].cert_file);
        free(cfg->tls.certs[i].key_file);
        free(cfg->tls.certs[i].ocsp_file);
        free(cfg->tls.certs[i].ocsp_issuer_file);
        for (int j = 0; j < PX_MAX_SNI_PER_CERT; j++)
            free(cfg->tls.certs[i].sni[j]);
    }
    free(cfg->tls.client_ca_file);
    px_config_free_mtls(&cfg->tls);
    for (int i = 0; i < PX_MAX_ALPN; i++)
        free(cfg->tls.alpn[i]);
    free(cfg->log.access_log);
    free(cfg->log.error_log);
    px_config_free_signatures(cfg);
    free(cfg);
}

char *px_config_path_join(const char *dir, const char *p)
{
    return join_path(dir, p);
}
