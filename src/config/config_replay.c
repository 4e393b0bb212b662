/* "signatures.replay_store" (see config_sig.h and docs/config.md). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_sig.h"
#include "core/errors.h"

#define P "signatures.replay_store"

static const char *const keys[] = { "type", "address", "prefix", "password_file", "username",
                                    "timeout_ms", "on_unavailable", "sentinels", "master_name",
                                    "sentinel_password_file", "tls", NULL };
static const char *const tls_keys[] = { "ca_file", "server_name", "cert", "key", NULL };
static const char *const types[] = { "local", "redis", NULL };
static const char *const policies[] = { "fail_closed", "fail_open", NULL };

void px_config_replay_defaults(px_replay_store_config_t *rs)
{
    memset(rs, 0, sizeof *rs);
    snprintf(rs->prefix, sizeof rs->prefix, "pqproxy:replay:");
    rs->timeout_ms = 50;
}

/* A string or null (absent): 1 with *out, 0 when absent or null. */
static int str_or_null(px_jv_t *j, const cJSON *o, const char *key, const char **out)
{
    const cJSON *v = px_jv_item(o, key);
    if (!v || cJSON_IsNull(v))
        return 0;
    return px_jv_str(j, o, P, key, out);
}

/* Printable ASCII without spaces, 1..PX_RSTORE_MAX_NAME: copied into dst. */
static int name(px_jv_t *j, const char *key, const char *s, char *dst)
{
    if (strlen(s) > PX_RSTORE_MAX_NAME)
        return px_jv_fail(j, key, "at most %d characters", PX_RSTORE_MAX_NAME);
    for (const char *p = s; *p; p++)
        if (*p <= ' ' || *p > '~')
            return px_jv_fail(j, key, "printable ASCII without spaces only");
    strcpy(dst, s);
    return 0;
}

/* The password: the file's content without its trailing newline (as a
 * Kubernetes Secret mounted as a file has it, or not). */
static int read_password(px_jv_t *j, const char *dir, const char *kp, const char *file, char *dst)
{
    char *path = px_config_path_join(dir, file);
    char buf[PX_RSTORE_MAX_PASSWORD + 2];
    size_t n;
    FILE *f;

    if (!path)
        return px_jv_fail(j, kp, "out of memory");
    if (!(f = fopen(path, "r"))) {
        int e = errno;
        px_jv_fail(j, kp, "%s: %s", path, strerror(e));
        free(path);
        return PX_ECONFIG;
    }
    n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    if (n == 0 || n > PX_RSTORE_MAX_PASSWORD || memchr(buf, '\0', n) || memchr(buf, '\n', n)) {
        px_jv_fail(j, kp, "%s: %s", path,
                   n == 0 ? "empty" : n > PX_RSTORE_MAX_PASSWORD
                   ? "longer than 512 bytes" : "one line of text expected");
        free(path);
        return PX_ECONFIG;
    }
    memcpy(dst, buf, n);
    dst[n] = '\0';
    free(path);
    return 0;
}

/* A file the proxy must read: resolved against the config's directory,
 * checked readable now, stored in dst. */
static int readable_file(px_jv_t *j, const char *dir, const char *kp, const char *file, char *dst)
{
    char *path = px_config_path_join(dir, file);
    FILE *f;
    int r = 0;

    if (!path)
        return px_jv_fail(j, kp, "out of memory");
    if (strlen(path) > PX_RSTORE_MAX_PATH)
        r = px_jv_fail(j, kp, "%s: a path of at most %d characters", path, PX_RSTORE_MAX_PATH);
    else if (!(f = fopen(path, "r")))
        r = px_jv_fail(j, kp, "%s: %s", path, strerror(errno));
    else {
        fclose(f);
        strcpy(dst, path);
    }
    free(path);
    return r;
}

/* "tls": {"ca_file", "server_name", "cert", "key"}: Redis's certificate is
 * always verified (ca_file required); cert and key for a client certificate. */
static int parse_tls(px_jv_t *j, const char *dir, const cJSON *o, px_replay_store_config_t *rs)
{
    const cJSON *t = px_jv_item(o, "tls");
    const char *str;
    int r, has_cert, has_key;

    if (!t || cJSON_IsNull(t))
        return 0;
    if ((r = px_jv_object(j, t, P ".tls", tls_keys)) < 0)
        return r;
    if ((r = px_jv_str(j, t, P ".tls", "ca_file", &str)) < 0)
        return r;
    if (r == 0)
        return px_jv_fail(j, P ".tls.ca_file", "required (the CA that signed Redis's certificate)");
    if ((r = readable_file(j, dir, P ".tls.ca_file", str, rs->tls.ca_file)) < 0)
        return r;
    if ((r = px_jv_str(j, t, P ".tls", "server_name", &str)) < 0 ||
        (r && (r = name(j, P ".tls.server_name", str, rs->tls.server_name)) < 0))
        return r;
    if ((has_cert = px_jv_str(j, t, P ".tls", "cert", &str)) < 0)
        return has_cert;
    if (has_cert && (r = readable_file(j, dir, P ".tls.cert", str, rs->tls.cert)) < 0)
        return r;
    if ((has_key = px_jv_str(j, t, P ".tls", "key", &str)) < 0)
        return has_key;
    if (has_key && (r = readable_file(j, dir, P ".tls.key", str, rs->tls.key)) < 0)
        return r;
    if (has_cert != has_key)
        return px_jv_fail(j, P ".tls", "\"cert\" and \"key\" go together");
    rs->tls.on = 1;
    return 0;
}

/* "sentinels": ["host:port", ...] with "master_name" (and the sentinels'
 * own password, if they have one); the master is asked of them. */
static int parse_sentinels(px_jv_t *j, const char *dir, const cJSON *o, px_replay_store_config_t *rs)
{
    const cJSON *v = px_jv_item(o, "sentinels");
    const char *str = NULL;
    char err[200], ep[PX_JV_PATH];
    int n, r;

    if (v && !cJSON_IsNull(v)) {
        if ((n = px_jv_array(j, v, P ".sentinels", 1, PX_RSTORE_MAX_SENTINELS, "addresses")) < 0)
            return n;
        for (int i = 0; i < n; i++) {
            const cJSON *e = cJSON_GetArrayItem(v, i);
            px_jv_fmt(ep, sizeof ep, P ".sentinels[%d]", i);
            if ((r = px_jv_string(j, e, ep)) < 0)
                return r;
            if (px_addr_parse_name(e->valuestring, &rs->sentinels[i], err, sizeof err) != 0)
                return px_jv_fail(j, ep, "%s", err);
            if (rs->sentinels[i].is_unix)
                return px_jv_fail(j, ep, "a sentinel is reached over TCP (host:port)");
        }
        rs->sentinel_count = n;
    }
    if ((r = str_or_null(j, o, "master_name", &str)) < 0 ||
        (r && (r = name(j, P ".master_name", str, rs->master_name)) < 0))
        return r;
    if (rs->sentinel_count && !rs->master_name[0])
        return px_jv_fail(j, P ".master_name", "required with \"sentinels\" (the name the "
                          "sentinels monitor, as in \"sentinel monitor NAME ...\")");
    if (!rs->sentinel_count && rs->master_name[0])
        return px_jv_fail(j, P ".master_name", "only with \"sentinels\"");
    if ((r = str_or_null(j, o, "sentinel_password_file", &str)) < 0)
        return r;
    if (r && !rs->sentinel_count)
        return px_jv_fail(j, P ".sentinel_password_file", "only with \"sentinels\"");
    if (r && (r = read_password(j, dir, P ".sentinel_password_file", str,
                                rs->sentinel_password)) < 0)
        return r;
    return 0;
}

int px_config_parse_replay_store(px_jv_t *j, const char *dir, const cJSON *o,
                                 px_replay_store_config_t *rs)
{
    const char *str, *pwfile = NULL;
    char err[200];
    int r, idx, sentinels;

    if ((r = px_jv_object(j, o, P, keys)) < 0)
        return r;
    if ((r = px_jv_enum(j, o, P, "type", types, &idx)) < 0)
        return r;
    if (r)
        rs->type = (px_rstore_type_t)idx;
    /* with "local" the other keys are checked all the same (switching the
     * type must not reveal a typo) but unused */
    if ((r = str_or_null(j, o, "address", &str)) < 0)
        return r;
    sentinels = px_jv_item(o, "sentinels") && !cJSON_IsNull(px_jv_item(o, "sentinels"));
    if (r == 0 && rs->type == PX_RSTORE_REDIS && !sentinels)
        return px_jv_fail(j, P ".address", "required with type \"redis\" (\"host:port\" or "
                          "\"unix:/path\"), unless \"sentinels\" is given");
    if (r && sentinels)
        return px_jv_fail(j, P ".address", "either \"address\" or \"sentinels\", not both");
    if (r && px_addr_parse_name(str, &rs->addr, err, sizeof err) != 0)
        return px_jv_fail(j, P ".address", "%s", err);
    if ((r = px_jv_str(j, o, P, "prefix", &str)) < 0 ||
        (r && (r = name(j, P ".prefix", str, rs->prefix)) < 0))
        return r;
    if ((r = str_or_null(j, o, "username", &str)) < 0 ||
        (r && (r = name(j, P ".username", str, rs->username)) < 0))
        return r;
    if ((r = str_or_null(j, o, "password_file", &pwfile)) < 0)
        return r;
    if (rs->username[0] && !pwfile)
        return px_jv_fail(j, P ".username", "needs password_file (AUTH user password)");
    if (pwfile && (r = read_password(j, dir, P ".password_file", pwfile, rs->password)) < 0)
        return r;
    if ((r = parse_sentinels(j, dir, o, rs)) < 0)
        return r;
    if ((r = parse_tls(j, dir, o, rs)) < 0)
        return r;
    if (rs->tls.on && rs->addr.is_unix)
        return px_jv_fail(j, P ".tls", "not over a Unix socket (\"address\" is unix:)");
    if ((r = px_jv_u32(j, o, P, "timeout_ms", 1, 10000, &rs->timeout_ms)) < 0)
        return r;
    if ((r = px_jv_enum(j, o, P, "on_unavailable", policies, &idx)) < 0)
        return r;
    if (r)
        rs->fail_open = idx == 1;
    return 0;
}
