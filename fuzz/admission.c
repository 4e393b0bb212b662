/* The AdmissionReview handler of `pqproxy inject-webhook` (src/cmd/inject.c,
 * served by src/cmd/webhook.c): an untrusted request body in, an
 * AdmissionReview response out.
 *
 * Byte 0 picks the namespace mode (bit 0: default on); the rest is the
 * body, passed with its exact length and no NUL after it.
 *
 * Checked: a refusal says why; an answer is one JSON object of its stated
 * length whose response carries the request's uid and, when it patches,
 * a base64 JSON Patch that decodes to a JSON array. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/errors.h"
#include "cmd/inject.h"
#include "sig/sigwire.h"

static void die(const char *what, const char *out)
{
    fprintf(stderr, "admission fuzz: %s\n%s\n", what, out ? out : "");
    abort();
}

static void check_answer(const char *out, size_t out_len)
{
    const cJSON *resp, *uid, *patch;
    cJSON *root;

    if (!out || strlen(out) != out_len)
        die("answer length wrong", out);
    if (!(root = cJSON_ParseWithLength(out, out_len)) || !cJSON_IsObject(root))
        die("answer is not a JSON object", out);
    resp = cJSON_GetObjectItemCaseSensitive(root, "response");
    uid = cJSON_GetObjectItemCaseSensitive(resp, "uid");
    if (!cJSON_IsString(uid))
        die("answer without response.uid", out);
    patch = cJSON_GetObjectItemCaseSensitive(resp, "patch");
    if (patch) {
        size_t n = cJSON_IsString(patch) ? strlen(patch->valuestring) : 0;
        uint8_t *raw = malloc(n + 1);
        long dl = -1;
        cJSON *ops;
        if (!raw || (dl = px_b64_decode(patch->valuestring, n, raw, n)) < 0)
            die("patch is not base64", out);
        if (!(ops = cJSON_ParseWithLength((const char *)raw, (size_t)dl)) || !cJSON_IsArray(ops))
            die("patch is not a JSON array", out);
        cJSON_Delete(ops);
        free(raw);
    }
    cJSON_Delete(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    px_inject_opts_t o;
    char err[256], *body, *out = NULL;
    size_t out_len = 0;
    int rc;

    if (size < 1)
        return 0;
    if (!(body = malloc(size - 1 ? size - 1 : 1)))
        abort();
    memcpy(body, data + 1, size - 1);
    px_inject_opts_default(&o);
    err[0] = '\0';
    rc = px_inject_review(body, size - 1, data[0] & 1 ? PX_INJECT_DEFAULT_ON : PX_INJECT_OPT_IN,
                          &o, &out, &out_len, err, sizeof err);
    if (rc == 0)
        check_answer(out, out_len);
    else if (rc != PX_EPARSE || !err[0] || out)
        die("refusal without a reason, or with an answer", err);
    free(out);
    free(body);
    return 0;
}
