/* Path-aware checks on a cJSON tree (see jsonv.h). */
#include "core/jsonv.h"
#include "core/errors.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int px_jv_fail(px_jv_t *j, const char *where, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (!j->err || !j->errlen)
        return PX_ECONFIG;
    n = snprintf(j->err, j->errlen, "%s: %s: ", j->file, *where ? where : "(top level)");
    if (n >= 0 && (size_t)n < j->errlen) {
        va_start(ap, fmt);
        vsnprintf(j->err + n, j->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return PX_ECONFIG;
}

void px_jv_printable(char *out, size_t outlen, const char *s, size_t max)
{
    size_t i, o = 0;

    for (i = 0; s[i] && o + 4 < outlen; i++) {
        if (i == max) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        out[o++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    }
    out[o] = '\0';
}

const char *px_jv_describe(const cJSON *v, char *buf, size_t len)
{
    char s[64];

    if (cJSON_IsString(v)) {
        px_jv_printable(s, sizeof s, v->valuestring, 40);
        snprintf(buf, len, "\"%s\"", s);
    } else if (cJSON_IsNumber(v)) {
        snprintf(buf, len, "%.15g", v->valuedouble);
    } else if (cJSON_IsBool(v)) {
        snprintf(buf, len, "%s", cJSON_IsTrue(v) ? "true" : "false");
    } else if (cJSON_IsNull(v)) {
        snprintf(buf, len, "null");
    } else if (cJSON_IsArray(v)) {
        snprintf(buf, len, "an array");
    } else {
        snprintf(buf, len, "an object");
    }
    return buf;
}

void px_jv_fmt(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

void px_jv_key_path(char *out, size_t len, const char *parent, const char *key)
{
    if (*parent)
        px_jv_fmt(out, len, "%s.%s", parent, key);
    else
        px_jv_fmt(out, len, "%s", key);
}

/* Optimal string alignment distance (a transposition counts 1: gorups ->
 * groups); only used on short keys. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), i, j;
    size_t d[33][33];

    if (la > 32 || lb > 32)
        return SIZE_MAX;
    for (i = 0; i <= la; i++)
        d[i][0] = i;
    for (j = 0; j <= lb; j++)
        d[0][j] = j;
    for (i = 1; i <= la; i++)
        for (j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] != b[j - 1], best = d[i - 1][j - 1] + cost;
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[la][lb];
}

static const char *suggest(const char *key, const char *const *keys)
{
    const char *best = NULL;
    size_t best_d = 3; /* only suggest within distance 2 */

    for (size_t i = 0; keys[i]; i++) {
        size_t d = edit_distance(key, keys[i]);
        if (d < best_d) {
            best_d = d;
            best = keys[i];
        }
    }
    return best;
}

const cJSON *px_jv_item(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

int px_jv_object(px_jv_t *j, const cJSON *obj, const char *path, const char *const *keys)
{
    char kp[PX_JV_PATH], name[72], got[80];

    if (!cJSON_IsObject(obj))
        return px_jv_fail(j, path, "must be an object, got %s",
                          px_jv_describe(obj, got, sizeof got));
    for (const cJSON *it = obj->child; it; it = it->next) {
        const char *key = it->string ? it->string : "";
        size_t i;
        px_jv_printable(name, sizeof name, key, 64);
        px_jv_key_path(kp, sizeof kp, path, name);
        for (i = 0; keys[i] && strcmp(keys[i], key); i++)
            ;
        if (!keys[i]) {
            const char *s = suggest(key, keys);
            return s ? px_jv_fail(j, kp, "unknown key (did you mean %s?)", s)
                     : px_jv_fail(j, kp, "unknown key");
        }
        for (const cJSON *p = obj->child; p != it; p = p->next)
            if (!strcmp(p->string, key))
                return px_jv_fail(j, kp, "duplicate key");
    }
    return 0;
}

int px_jv_int(px_jv_t *j, const cJSON *obj, const char *path, const char *key,
                   int64_t min, int64_t max, int64_t *out)
{
    const cJSON *v = px_jv_item(obj, key);
    char kp[PX_JV_PATH], got[80];
    double d;

    if (!v)
        return 0;
    d = v->valuedouble;
    /* range first, so the cast below is defined */
    if (cJSON_IsNumber(v) && d >= (double)min && d <= (double)max && d == (double)(int64_t)d) {
        *out = (int64_t)d;
        return 1;
    }
    px_jv_key_path(kp, sizeof kp, path, key);
    return px_jv_fail(j, kp, "must be an integer between %" PRId64 " and %" PRId64 ", got %s", min,
                max, px_jv_describe(v, got, sizeof got));
}

int px_jv_u32(px_jv_t *j, const cJSON *obj, const char *path, const char *key,
                   uint32_t min, uint32_t max, uint32_t *dst)
{
    int64_t n;
    int r = px_jv_int(j, obj, path, key, min, max, &n);
    if (r > 0)
        *dst = (uint32_t)n;
    return r;
}

int px_jv_bool(px_jv_t *j, const cJSON *obj, const char *path, const char *key, int *dst)
{
    const cJSON *v = px_jv_item(obj, key);
    char kp[PX_JV_PATH], got[80];

    if (!v)
        return 0;
    if (cJSON_IsBool(v)) {
        *dst = cJSON_IsTrue(v) ? 1 : 0;
        return 1;
    }
    px_jv_key_path(kp, sizeof kp, path, key);
    return px_jv_fail(j, kp, "must be true or false, got %s", px_jv_describe(v, got, sizeof got));
}

int px_jv_string(px_jv_t *j, const cJSON *v, const char *kp)
{
    char got[80];

    if (!cJSON_IsString(v))
        return px_jv_fail(j, kp, "must be a string, got %s", px_jv_describe(v, got, sizeof got));
    if (!v->valuestring[0])
        return px_jv_fail(j, kp, "must not be empty");
    return 0;
}

int px_jv_str(px_jv_t *j, const cJSON *obj, const char *path, const char *key, const char **out)
{
    const cJSON *v = px_jv_item(obj, key);
    char kp[PX_JV_PATH];
    int r;

    if (!v)
        return 0;
    px_jv_key_path(kp, sizeof kp, path, key);
    if ((r = px_jv_string(j, v, kp)) < 0)
        return r;
    *out = v->valuestring;
    return 1;
}

int px_jv_enum(px_jv_t *j, const cJSON *obj, const char *path, const char *key,
                    const char *const *names, int *idx)
{
    const cJSON *v = px_jv_item(obj, key);
    char kp[PX_JV_PATH], got[80], list[128] = "";

    if (!v)
        return 0;
    for (int i = 0; cJSON_IsString(v) && names[i]; i++)
        if (!strcmp(v->valuestring, names[i])) {
            *idx = i;
            return 1;
        }
    for (int i = 0; names[i]; i++) {
        size_t n = strlen(list);
        snprintf(list + n, sizeof list - n, "%s\"%s\"", i ? ", " : "", names[i]);
    }
    px_jv_key_path(kp, sizeof kp, path, key);
    return px_jv_fail(j, kp, "must be one of %s, got %s", list, px_jv_describe(v, got, sizeof got));
}

int px_jv_array(px_jv_t *j, const cJSON *v, const char *kp, int min, int max, const char *what)
{
    char got[80];
    int n;

    if (!cJSON_IsArray(v))
        return px_jv_fail(j, kp, "must be an array of %s, got %s", what,
                          px_jv_describe(v, got, sizeof got));
    n = cJSON_GetArraySize(v);
    if (n < min || n > max)
        return px_jv_fail(j, kp, "must list between %d and %d %s, got %d", min, max, what, n);
    return n;
}

/* The index of the string token (member names and string values, in
 * document order) of a JSON text that holds the escape \u0000 at byte
 * offset `at`, or -1. */
static long nul_string_at(const char *text, size_t at)
{
    long k = 0;
    int in = 0;

    for (const char *p = text; *p; p++) {
        if (!in) {
            in = *p == '"';
            continue;
        }
        if (*p == '\\') {
            if ((size_t)(p - text) == at)
                return p[1] == 'u' && !strncmp(p + 2, "0000", 4) ? k : -1;
            if (p[1])
                p++;
        } else if (*p == '"') {
            in = 0;
            k++;
        }
    }
    return -1;
}

/* Walks v in document order, counting string tokens as first_nul_string
 * does, until the target-th: writes its key path into out and returns 1. */
static int nul_path(const cJSON *v, const char *path, long *k, long target, char *out,
                    size_t len, int *is_key)
{
    char kp[PX_JV_PATH];
    int i = 0;

    if (cJSON_IsString(v) && (*k)++ == target) {
        px_jv_fmt(out, len, "%s", path);
        return 1;
    }
    if (!cJSON_IsObject(v) && !cJSON_IsArray(v))
        return 0;
    for (const cJSON *e = v->child; e; e = e->next, i++) {
        if (cJSON_IsObject(v)) {
            px_jv_key_path(kp, sizeof kp, path, e->string);
            if ((*k)++ == target) {
                px_jv_fmt(out, len, "%s", kp);
                *is_key = 1;
                return 1;
            }
        } else {
            px_jv_fmt(kp, sizeof kp, "%s[%d]", path, i);
        }
        if (nul_path(e, kp, k, target, out, len, is_key))
            return 1;
    }
    return 0;
}

int px_jv_nul_at(px_jv_t *j, const char *text, const cJSON *root, size_t at, const char *pos)
{
    long target = nul_string_at(text, at), k = 0;
    char where[PX_JV_PATH] = "";
    int is_key = 0;

    if (target < 0 || !nul_path(root, "", &k, target, where, sizeof where, &is_key))
        return 0;
    return px_jv_fail(j, where, "the %s contains a NUL character (\\u0000 at %s), which would cut it "
                      "short", is_key ? "key" : "string", pos);
}
