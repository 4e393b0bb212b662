/* "signatures" and "routes" configuration sections (see config_sig.h and
 * docs/config.md). */
#include "config/config_sig.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/errors.h"
#include "sig/modelid.h"

static const char *const sig_keys[] = { "keyring", "max_skew_s", "max_validity_s",
                                        "allow_classical", "required_headers",
                                        "max_signed_body_bytes", "replay_cache_entries",
                                        "response_key", "response_keyid", "crypto_threads",
                                        "replay_store", "response_model_manifest", NULL };
static const char *const route_keys[] = { "prefix", "grpc", "upstream", "verify",
                                          "sign_responses", NULL };
static const char *const verify_names[] = { "off", "optional", "required", NULL };

void px_config_sig_defaults(px_config_t *cfg)
{
    cfg->sig.max_skew_s = 30;
    cfg->sig.max_validity_s = 300;
    cfg->sig.max_signed_body_bytes = 8u << 20;
    cfg->sig.replay_cache_entries = 262144;
    px_config_replay_defaults(&cfg->sig.replay_store);
}

static int oom(px_jv_t *j)
{
    return px_jv_fail(j, "signatures", "out of memory");
}

static int set_path(px_jv_t *j, char **dst, const char *dir, const char *s)
{
    char *p = px_config_path_join(dir, s);
    if (!p)
        return oom(j);
    free(*dst);
    *dst = p;
    return 0;
}

static int token_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
           ch == '.';
}

int px_config_parse_signatures(px_jv_t *j, const char *dir, const cJSON *o, px_config_t *cfg)
{
    px_sig_config_t *s = &cfg->sig;
    const char *str;
    const cJSON *v;
    int64_t n;
    int r;

    if ((r = px_jv_object(j, o, "signatures", sig_keys)) < 0)
        return r;
    if ((r = px_jv_str(j, o, "signatures", "keyring", &str)) < 0)
        return r;
    if (r && (r = set_path(j, &s->keyring, dir, str)) < 0)
        return r;
    if ((r = px_jv_u32(j, o, "signatures", "max_skew_s", 0, 300, &s->max_skew_s)) < 0 ||
        (r = px_jv_u32(j, o, "signatures", "max_validity_s", 1, 3600, &s->max_validity_s)) < 0 ||
        (r = px_jv_bool(j, o, "signatures", "allow_classical", &s->allow_classical)) < 0 ||
        (r = px_jv_u32(j, o, "signatures", "replay_cache_entries", 1024, 16u << 20,
                       &s->replay_cache_entries)) < 0 ||
        (r = px_jv_u32(j, o, "signatures", "crypto_threads", 0, 128, &s->crypto_threads)) < 0)
        return r;
    if ((r = px_jv_int(j, o, "signatures", "max_signed_body_bytes", 1, (int64_t)1 << 30, &n)) < 0)
        return r;
    if (r)
        s->max_signed_body_bytes = (uint64_t)n;
    if ((v = px_jv_item(o, "replay_store")) &&
        (r = px_config_parse_replay_store(j, dir, v, &s->replay_store)) < 0)
        return r;
    if ((v = px_jv_item(o, "required_headers"))) {
        int cnt = px_jv_array(j, v, "signatures.required_headers", 0, PX_MAX_SIG_HEADERS,
                              "header names");
        if (cnt < 0)
            return cnt;
        for (int i = 0; i < cnt; i++) {
            char kp[PX_JV_PATH];
            const cJSON *e = cJSON_GetArrayItem(v, i);
            px_jv_fmt(kp, sizeof kp, "signatures.required_headers[%d]", i);
            if ((r = px_jv_string(j, e, kp)) < 0)
                return r;
            for (const char *p = e->valuestring; *p; p++)
                if (!token_char(*p))
                    return px_jv_fail(j, kp, "must be a lowercase header name, got \"%s\"",
                                      e->valuestring);
            if (strlen(e->valuestring) > 64)
                return px_jv_fail(j, kp, "at most 64 characters");
            if (!(s->required_headers[i] = strdup(e->valuestring)))
                return oom(j);
            s->required_header_count++;
        }
    }
    if ((r = px_jv_str(j, o, "signatures", "response_key", &str)) < 0)
        return r;
    if (r && (r = set_path(j, &s->response_key, dir, str)) < 0)
        return r;
    if ((r = px_jv_str(j, o, "signatures", "response_keyid", &str)) < 0)
        return r;
    if (r) {
        if (strlen(str) > 64 || str[0] == '.')
            return px_jv_fail(j, "signatures.response_keyid", "1..64 characters, not starting with '.'");
        for (const char *p = str; *p; p++)
            if (!token_char(*p) && !(*p >= 'A' && *p <= 'Z'))
                return px_jv_fail(j, "signatures.response_keyid",
                                  "only A-Z a-z 0-9 . _ - are allowed, got \"%s\"", str);
        if (!(s->response_keyid = strdup(str)))
            return oom(j);
    }
    if ((r = px_jv_str(j, o, "signatures", "response_model_manifest", &str)) < 0)
        return r;
    if (r && (r = set_path(j, &s->response_model_manifest, dir, str)) < 0)
        return r;
    return 0;
}

/* A route's "upstream": a name from `upstreams` ("default" or absent: the
 * `upstream` section). */
static int route_upstream(px_jv_t *j, const cJSON *o, const char *path, const px_config_t *cfg,
                          int *idx)
{
    char known[PX_MAX_UPSTREAMS * (PX_UPSTREAM_NAME_MAX + 2) + 16] = "default";
    const char *name;
    char kp[PX_JV_PATH];
    int r = px_jv_str(j, o, path, "upstream", &name);

    *idx = 0;
    if (r <= 0 || !strcmp(name, "default"))
        return r;
    for (int k = 0; k < cfg->upstream_count; k++)
        if (!strcmp(cfg->upstreams[k].name, name)) {
            *idx = k + 1;
            return 0;
        }
    for (int k = 0; k < cfg->upstream_count; k++)
        strcat(strcat(known, ", "), cfg->upstreams[k].name);
    px_jv_fmt(kp, sizeof kp, "%s.upstream", path);
    return px_jv_fail(j, kp, "no upstream named \"%s\" (known: %s)", name, known);
}

int px_config_parse_routes(px_jv_t *j, const cJSON *v, px_config_t *cfg)
{
    int cnt = px_jv_array(j, v, "routes", 0, PX_MAX_ROUTES, "routes");
    if (cnt < 0)
        return cnt;
    for (int i = 0; i < cnt; i++) {
        const cJSON *o = cJSON_GetArrayItem(v, i);
        px_route_t *rt = &cfg->routes[i];
        char path[PX_JV_PATH], kp[PX_JV_PATH];
        const char *prefix;
        int r, idx;

        px_jv_fmt(path, sizeof path, "routes[%d]", i);
        if ((r = px_jv_object(j, o, path, route_keys)) < 0)
            return r;
        if ((r = px_jv_str(j, o, path, "prefix", &prefix)) < 0)
            return r;
        px_jv_fmt(kp, sizeof kp, "%s.prefix", path);
        if (r == 0)
            return px_jv_fail(j, kp, "required (a path prefix such as \"/v1/models/\")");
        if (prefix[0] != '/')
            return px_jv_fail(j, kp, "must start with '/'");
        for (const char *q = prefix; *q; q++)     /* also a metrics label value: keep it plain */
            if (*q <= ' ' || *q > '~' || *q == '?' || *q == '#' || *q == '"' || *q == '\\')
                return px_jv_fail(j, kp, "printable ASCII only, without space, '?', '#', '\"' or '\\'");
        if ((r = px_jv_bool(j, o, path, "grpc", &rt->grpc)) < 0)
            return r;
        for (int k = 0; k < i; k++)
            if (!strcmp(cfg->routes[k].prefix, prefix) && cfg->routes[k].grpc == rt->grpc)
                return px_jv_fail(j, kp, "duplicate of routes[%d].prefix%s", k,
                                  rt->grpc ? " (both with grpc: true)" : "");
        if (!(rt->prefix = strdup(prefix)))
            return oom(j);
        rt->metrics_row = i + 1;
        cfg->route_count = i + 1;
        if ((r = route_upstream(j, o, path, cfg, &rt->upstream)) < 0)
            return r;
        if ((r = px_jv_enum(j, o, path, "verify", verify_names, &idx)) < 0)
            return r;
        if (r)
            rt->verify = (px_verify_mode_t)idx;
        if ((r = px_jv_bool(j, o, path, "sign_responses", &rt->sign_responses)) < 0)
            return r;
    }
    return 0;
}

static int readable(px_jv_t *j, const char *where, const char *path, int want_dir)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return px_jv_fail(j, where, "%s: %s", path, strerror(errno));
    if (want_dir && !S_ISDIR(st.st_mode))
        return px_jv_fail(j, where, "%s: not a directory", path);
    if (!want_dir && S_ISDIR(st.st_mode))
        return px_jv_fail(j, where, "%s: is a directory", path);
    if (access(path, R_OK | (want_dir ? X_OK : 0)) != 0)
        return px_jv_fail(j, where, "%s: %s", path, strerror(errno));
    return 0;
}

int px_config_check_signatures(px_jv_t *j, px_config_t *cfg)
{
    px_sig_config_t *s = &cfg->sig;
    int verify = 0, sign = 0, r;

    for (int i = 0; i < cfg->route_count; i++) {
        verify |= cfg->routes[i].verify != PX_VERIFY_OFF;
        sign |= cfg->routes[i].sign_responses;
    }
    if (verify && !s->keyring)
        return px_jv_fail(j, "signatures.keyring",
                          "required: a route verifies signatures (a directory of <keyid>.ecdsa.pub "
                          "and <keyid>.mldsa.pub files)");
    if (sign && !s->response_key)
        return px_jv_fail(j, "signatures.response_key",
                          "required: a route signs responses (PREFIX of PREFIX.ecdsa.key and "
                          "PREFIX.mldsa.key, made by pqproxy keygen)");
    if (s->keyring && (r = readable(j, "signatures.keyring", s->keyring, 1)) < 0)
        return r;
    if (s->response_key) {
        static const char *const suffix[] = { ".ecdsa.key", ".mldsa.key" };
        if (!s->response_keyid && !(s->response_keyid = strdup("pqproxy")))
            return oom(j);
        for (int i = 0; i < 2; i++) {
            char file[4096];
            snprintf(file, sizeof file, "%s%s", s->response_key, suffix[i]);
            if ((r = readable(j, "signatures.response_key", file, 0)) < 0)
                return r;
        }
    }
    if (s->response_model_manifest) {
        char e[512];
        if (!sign)
            return px_jv_fail(j, "signatures.response_model_manifest",
                              "needs a route with sign_responses: true (the field is worth only "
                              "the response signature that covers it)");
        /* read now, at every load and reload: the value names the manifest
         * as it is when the model server (re)starts with it */
        if (px_model_manifest_value(s->response_model_manifest, s->model_manifest_value, e, sizeof e))
            return px_jv_fail(j, "signatures.response_model_manifest", "%s", e);
    }
    return 0;
}

void px_config_free_signatures(px_config_t *cfg)
{
    free(cfg->sig.keyring);
    free(cfg->sig.response_key);
    free(cfg->sig.response_keyid);
    free(cfg->sig.response_model_manifest);
    for (int i = 0; i < PX_MAX_SIG_HEADERS; i++)
        free(cfg->sig.required_headers[i]);
    for (int i = 0; i < PX_MAX_ROUTES; i++)
        free(cfg->routes[i].prefix);
}

const px_route_t *px_config_route(const px_config_t *cfg, const char *path, size_t len, int grpc)
{
    const px_route_t *best = NULL;
    size_t best_len = 0;
    for (int i = 0; i < cfg->route_count; i++) {
        const px_route_t *rt = &cfg->routes[i];
        size_t pl = strlen(rt->prefix);
        if (rt->grpc && !grpc)
            continue;
        if (pl > len || memcmp(rt->prefix, path, pl))
            continue;
        if (!best || pl > best_len || (pl == best_len && rt->grpc))
            best = rt, best_len = pl;
    }
    return best;
}
