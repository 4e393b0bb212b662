/* DSSE envelopes (see dsse.h, docs/model-signing.md section 3). */
#include "seal/dsse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/errors.h"
#include "core/jsonsyntax.h"
#include "core/jsonv.h"
#include "sig/sigwire.h"

int px_dsse_pae(const char *type, const uint8_t *body, size_t len, px_buf_t *out)
{
    if (px_buf_printf(out, "DSSEv1 %zu %s %zu ", strlen(type), type, len) != 0 ||
        px_buf_append(out, body, len) != 0)
        return PX_ENOMEM;
    return 0;
}

/* Base64 of p into out, as a JSON string value (base64 needs no escaping). */
static int b64_string(px_buf_t *out, const uint8_t *p, size_t n)
{
    size_t cap = (n + 2) / 3 * 4 + 1;
    char *dst = px_buf_reserve(out, cap + 2);
    long w;

    if (!dst)
        return PX_ENOMEM;
    dst[0] = '"';
    if ((w = px_b64_encode(p, n, dst + 1, cap, 0)) < 0)
        return PX_EINVAL;
    dst[w + 1] = '"';
    px_buf_commit(out, (size_t)w + 2);
    return 0;
}

int px_dsse_build(const char *type, const uint8_t *payload, size_t len, const px_dsse_sig_t *sigs,
                  int n, px_buf_t *out)
{
    int r = px_buf_printf(out, "{\"payloadType\":\"%s\",\"payload\":", type);

    if (!r)
        r = b64_string(out, payload, len);
    if (!r)
        r = px_buf_printf(out, ",\"signatures\":[");
    for (int i = 0; !r && i < n; i++) {
        r = px_buf_printf(out, "%s{\"keyid\":\"%s\",\"sig\":", i ? "," : "", sigs[i].keyid);
        if (!r)
            r = b64_string(out, sigs[i].sig, sigs[i].sig_len);
        if (!r)
            r = px_buf_printf(out, "}");
    }
    if (!r)
        r = px_buf_printf(out, "]}\n");
    return r ? PX_ENOMEM : 0;
}

/* A required string member (px_jv_str leaves absence to the caller). */
static int req_str(px_jv_t *j, const cJSON *obj, const char *path, const char *key,
                   const char **out)
{
    int r = px_jv_str(j, obj, path, key, out);
    if (r == 0) {
        char kp[PX_JV_PATH];
        px_jv_key_path(kp, sizeof kp, path, key);
        return px_jv_fail(j, kp, "missing");
    }
    return r < 0 ? r : 0;
}

/* Strict base64 of a member into a malloc'd buffer (one spare byte, NUL). */
static int b64_member(px_jv_t *j, const char *kp, const char *s, size_t max, uint8_t **out,
                      size_t *out_len)
{
    size_t n = strlen(s), cap = n / 4 * 3;
    long got;

    if (cap > max + 2)
        return px_jv_fail(j, kp, "longer than %zu bytes", max);
    if (!(*out = malloc(cap + 1)))
        return PX_ENOMEM;
    if ((got = px_b64_decode(s, n, *out, cap)) < 0)
        return px_jv_fail(j, kp, "not canonical padded base64 (RFC 4648 section 4)");
    if ((size_t)got > max)
        return px_jv_fail(j, kp, "longer than %zu bytes", max);
    (*out)[got] = '\0';
    *out_len = (size_t)got;
    return 0;
}

/* payloadType and keyid: 1..max printable ASCII characters other than '"'
 * and '\', so that px_dsse_build writes them back without escaping
 * (media types and hex keyids never need more). */
static int token_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (!n || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x21 || s[i] > 0x7e || s[i] == '"' || s[i] == '\\')
            return 0;
    return 1;
}

int px_dsse_parse(const char *text, size_t len, const char *what, px_dsse_t *env, char *err,
                  size_t errlen)
{
    static const char *const top_keys[] = { "payloadType", "payload", "signatures", NULL };
    static const char *const sig_keys[] = { "keyid", "sig", NULL };
    px_jv_t j = { .file = what, .err = err, .errlen = errlen };
    px_json_error_t je;
    cJSON *root = NULL;
    const cJSON *sigs;
    const char *type, *payload;
    int r, n;

    memset(env, 0, sizeof *env);
    if (len > PX_DSSE_MAX_ENVELOPE)
        return px_errorf(PX_ETOOBIG, err, errlen, "%s: larger than %u bytes", what,
                         PX_DSSE_MAX_ENVELOPE);
    if (px_json_check(text, len, &je) != 0)
        return px_errorf(PX_EPARSE, err, errlen, "%s: not a DSSE envelope: byte %zu: %s", what,
                         je.offset, je.reason);
    if (!(root = cJSON_ParseWithLength(text, len)))
        return px_errorf(PX_ENOMEM, err, errlen, "%s: out of memory parsing JSON", what);
    if ((r = px_jv_object(&j, root, "", top_keys)) < 0 ||
        (r = req_str(&j, root, "", "payloadType", &type)) < 0 ||
        (r = req_str(&j, root, "", "payload", &payload)) < 0)
        goto out;
    if (!token_ok(type, 256)) {
        r = px_jv_fail(&j, "payloadType", "must be 1..256 printable ASCII characters, no '\"' "
                       "or '\\'");
        goto out;
    }
    if (!(env->payload_type = strdup(type))) {
        r = PX_ENOMEM;
        goto out;
    }
    if ((r = b64_member(&j, "payload", payload, PX_DSSE_MAX_ENVELOPE, &env->payload,
                        &env->payload_len)) < 0)
        goto out;
    if (!(sigs = px_jv_item(root, "signatures"))) {
        r = px_jv_fail(&j, "signatures", "missing");
        goto out;
    }
    if ((n = px_jv_array(&j, sigs, "signatures", 1, PX_DSSE_MAX_SIGS, "signatures")) < 0) {
        r = n;
        goto out;
    }
    for (const cJSON *s = sigs->child; s; s = s->next) {
        px_dsse_sig_t *d = &env->sigs[env->nsigs];
        const char *keyid, *sig;
        char path[32], kp[48];
        snprintf(path, sizeof path, "signatures[%d]", env->nsigs);
        if ((r = px_jv_object(&j, s, path, sig_keys)) < 0 ||
            (r = req_str(&j, s, path, "keyid", &keyid)) < 0 ||
            (r = req_str(&j, s, path, "sig", &sig)) < 0)
            goto out;
        snprintf(kp, sizeof kp, "%s.keyid", path);
        if (!token_ok(keyid, PX_DSSE_MAX_KEYID)) {
            r = px_jv_fail(&j, kp, "must be 1..%d printable ASCII characters, no '\"' or '\\'",
                           PX_DSSE_MAX_KEYID);
            goto out;
        }
        for (int k = 0; k < env->nsigs; k++)
            if (!strcmp(env->sigs[k].keyid, keyid)) {
                r = px_jv_fail(&j, kp, "the same keyid as signatures[%d]", k);
                goto out;
            }
        strcpy(d->keyid, keyid);
        snprintf(kp, sizeof kp, "%s.sig", path);
        env->nsigs++;
        if ((r = b64_member(&j, kp, sig, PX_DSSE_MAX_SIG, &d->sig, &d->sig_len)) < 0)
            goto out;
    }
    r = 0;
out:
    cJSON_Delete(root);
    return r == PX_ECONFIG ? PX_EPARSE : r;
}

void px_dsse_free(px_dsse_t *env)
{
    free(env->payload_type);
    free(env->payload);
    for (int i = 0; i < env->nsigs; i++)
        free(env->sigs[i].sig);
    memset(env, 0, sizeof *env);
}
