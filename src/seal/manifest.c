/* Signed model manifests (see manifest.h, docs/model-signing.md). */
#include "seal/manifest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/sha256.h>
#include <wolfssl/wolfcrypt/sha512.h>

#include "core/errors.h"
#include "core/jsonsyntax.h"
#include "core/jsonv.h"
#include "seal/dsse.h"

_Static_assert(sizeof(wc_Sha256) <= 320 && sizeof(wc_Sha384) <= 320, "px_md_t state size");

#define EC_COORD 48

/* --- digests ------------------------------------------------------------------------ */

const char *px_md_alg_name(px_md_alg_t alg)
{
    return alg == PX_MD_SHA384 ? "sha384" : "sha256";
}

int px_md_init(px_md_t *h, px_md_alg_t alg)
{
    h->alg = alg;
    if (alg == PX_MD_SHA384)
        return wc_InitSha384((wc_Sha384 *)h->st) ? PX_ECRYPTO : 0;
    return wc_InitSha256((wc_Sha256 *)h->st) ? PX_ECRYPTO : 0;
}

void px_md_update(px_md_t *h, const void *p, size_t n)
{
    if (h->alg == PX_MD_SHA384)
        wc_Sha384Update((wc_Sha384 *)h->st, p, (word32)n);
    else
        wc_Sha256Update((wc_Sha256 *)h->st, p, (word32)n);
}

void px_md_final(px_md_t *h, uint8_t *out)
{
    if (h->alg == PX_MD_SHA384) {
        wc_Sha384Final((wc_Sha384 *)h->st, out);
        wc_Sha384Free((wc_Sha384 *)h->st);
    } else {
        wc_Sha256Final((wc_Sha256 *)h->st, out);
        wc_Sha256Free((wc_Sha256 *)h->st);
    }
}

int px_manifest_file_digest(const char *path, uint8_t out[32])
{
    static uint8_t buf[65536];
    px_md_t h;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC), e;

    if (fd < 0)
        return PX_EIO;
    if (px_md_init(&h, PX_MD_SHA256) != 0) {
        close(fd);
        return PX_ECRYPTO;
    }
    while ((n = read(fd, buf, sizeof buf)) > 0)
        px_md_update(&h, buf, (size_t)n);
    e = errno;
    px_md_final(&h, out);
    close(fd);
    errno = e;
    return n < 0 ? PX_EIO : 0;
}

static void hex(const uint8_t *p, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[p[i] >> 4];
        out[2 * i + 1] = d[p[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Lowercase hex of exactly n bytes. */
static int unhex(const char *s, uint8_t *out, size_t n)
{
    if (strlen(s) != 2 * n)
        return -1;
    for (size_t i = 0; i < 2 * n; i++) {
        int c = s[i], v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0)
            return -1;
        out[i / 2] = (uint8_t)(i % 2 ? (out[i / 2] | v) : v << 4);
    }
    return 0;
}

/* --- entries ------------------------------------------------------------------------ */

void px_manifest_init(px_manifest_t *m, px_md_alg_t alg)
{
    memset(m, 0, sizeof *m);
    m->alg = alg;
}

px_manifest_entry_t *px_manifest_add(px_manifest_t *m, const char *path, uint64_t size)
{
    px_manifest_entry_t *e;

    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        if (!(e = realloc(m->e, cap * sizeof *e)))
            return NULL;
        m->e = e;
        m->cap = cap;
    }
    e = &m->e[m->n];
    memset(e, 0, sizeof *e);
    if (!(e->path = strdup(path)))
        return NULL;
    e->size = size;
    m->n++;
    return e;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const px_manifest_entry_t *)a)->path, ((const px_manifest_entry_t *)b)->path);
}

void px_manifest_sort(px_manifest_t *m)
{
    if (m->n)
        qsort(m->e, m->n, sizeof *m->e, cmp_entry);
}

const px_manifest_entry_t *px_manifest_find(const px_manifest_t *m, const char *path)
{
    px_manifest_entry_t key = { .path = (char *)path };
    return m->n ? bsearch(&key, m->e, m->n, sizeof *m->e, cmp_entry) : NULL;
}

void px_manifest_free(px_manifest_t *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->e[i].path);
    free(m->e);
    free(m->name);
    memset(m, 0, sizeof *m);
}

/* One path component or the model name: NULL, or why not. */
static const char *name_problem(const char *s, size_t n)
{
    if (!n)
        return "an empty path component";
    if (n > PX_MANIFEST_MAX_NAME)
        return "a path component longer than 255 bytes";
    if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
        return "a '.' or '..' component";
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || s[i] == '\\')
            return "a control character or a backslash";
    if (!px_utf8_valid(s, n))
        return "not valid UTF-8";
    return NULL;
}

const char *px_manifest_path_problem(const char *path)
{
    size_t len = strlen(path);
    const char *p = path, *why;

    if (!len)
        return "an empty path";
    if (len > PX_MANIFEST_MAX_PATH)
        return "longer than 1024 bytes";
    if (path[0] == '/')
        return "an absolute path";
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if ((why = name_problem(p, n)))
            return why;
        if (!slash)
            return NULL;
        p = slash + 1;
    }
}

/* --- the statement ------------------------------------------------------------------ */

/* A validated name as a JSON string: only '"' needs escaping (no control
 * characters, no backslash: name_problem). */
static int json_str(px_buf_t *out, const char *s)
{
    int r = px_buf_append(out, "\"", 1);
    for (const char *q; !r && (q = strchr(s, '"')); s = q + 1)
        r = px_buf_append(out, s, (size_t)(q - s)) || px_buf_append(out, "\\\"", 2);
    return r || px_buf_append(out, s, strlen(s)) || px_buf_append(out, "\"", 1) ? PX_ENOMEM : 0;
}

/* model-signing's subject digest: SHA-256 over the resources' raw digests in order. */
static void root_digest(const px_manifest_t *m, uint8_t out[32])
{
    px_md_t h;
    px_md_init(&h, PX_MD_SHA256);
    for (size_t i = 0; i < m->n; i++)
        px_md_update(&h, m->e[i].digest, m->alg);
    px_md_final(&h, out);
}

int px_manifest_statement(const px_manifest_t *m, px_buf_t *out)
{
    const char *alg = px_md_alg_name(m->alg);
    char hx[2 * PX_MANIFEST_MAX_DIGEST + 1];
    uint8_t root[32];
    int r;

    root_digest(m, root);
    hex(root, sizeof root, hx);
    r = px_buf_printf(out, "{\"_type\":\"%s\",\"subject\":[{\"name\":", PX_MANIFEST_STATEMENT) ||
        json_str(out, m->name) ||
        px_buf_printf(out, ",\"digest\":{\"sha256\":\"%s\"}}],\"predicateType\":\"%s\","
                      "\"predicate\":{\"serialization\":{\"method\":\"files\",\"hash_type\":\"%s\","
                      "\"allow_symlinks\":false,\"ignore_paths\":[]},\"resources\":[",
                      hx, PX_MANIFEST_PREDICATE, alg);
    for (size_t i = 0; !r && i < m->n; i++) {
        hex(m->e[i].digest, m->alg, hx);
        r = px_buf_printf(out, "%s{\"name\":", i ? "," : "") || json_str(out, m->e[i].path) ||
            px_buf_printf(out, ",\"algorithm\":\"%s\",\"digest\":\"%s\",\"size\":%llu}", alg, hx,
                          (unsigned long long)m->e[i].size);
    }
    return r || px_buf_printf(out, "]}}") ? PX_ENOMEM : 0;
}

/* A required member of obj (getters leave absence to the caller). */
static const cJSON *need(px_jv_t *j, const cJSON *obj, const char *path, const char *key)
{
    const cJSON *v = px_jv_item(obj, key);
    if (!v) {
        char kp[PX_JV_PATH];
        px_jv_key_path(kp, sizeof kp, path, key);
        px_jv_fail(j, kp, "missing");
    }
    return v;
}

/* A required string member equal to want. */
static int need_const(px_jv_t *j, const cJSON *obj, const char *path, const char *key,
                      const char *want)
{
    const cJSON *v = need(j, obj, path, key);
    char kp[PX_JV_PATH], got[80];

    if (!v)
        return PX_ECONFIG;
    if (cJSON_IsString(v) && !strcmp(v->valuestring, want))
        return 0;
    px_jv_key_path(kp, sizeof kp, path, key);
    return px_jv_fail(j, kp, "must be \"%s\", got %s", want, px_jv_describe(v, got, sizeof got));
}

static int need_hex(px_jv_t *j, const cJSON *obj, const char *path, const char *key, uint8_t *out,
                    size_t n)
{
    const cJSON *v = need(j, obj, path, key);
    char kp[PX_JV_PATH];

    if (!v)
        return PX_ECONFIG;
    if (cJSON_IsString(v) && unhex(v->valuestring, out, n) == 0)
        return 0;
    px_jv_key_path(kp, sizeof kp, path, key);
    return px_jv_fail(j, kp, "must be %zu lowercase hex digits", 2 * n);
}

/* "a" and "a/b" cannot both be files. m sorted. */
static int file_dir_clash(px_jv_t *j, const px_manifest_t *m)
{
    char prefix[PX_MANIFEST_MAX_PATH + 1];

    for (size_t i = 0; i < m->n; i++) {
        const char *p = m->e[i].path;
        for (const char *s = strchr(p, '/'); s; s = strchr(s + 1, '/')) {
            memcpy(prefix, p, (size_t)(s - p));
            prefix[s - p] = '\0';
            if (px_manifest_find(m, prefix)) {
                char kp[48];
                snprintf(kp, sizeof kp, "predicate.resources[%zu].name", i);
                return px_jv_fail(j, kp, "lies under \"%.200s\", which is a file", prefix);
            }
        }
    }
    return 0;
}

static int parse_resources(px_jv_t *j, const cJSON *res, px_manifest_t *m)
{
    static const char *const keys[] = { "name", "algorithm", "digest", "size", NULL };
    const char *alg = px_md_alg_name(m->alg), *why;
    int n = px_jv_array(j, res, "predicate.resources", 1, PX_MANIFEST_MAX_FILES, "resources");
    size_t i = 0;

    if (n < 0)
        return n;
    for (const cJSON *it = res->child; it; it = it->next, i++) {
        char path[48], kp[64];
        const char *name;
        int64_t size = 0;
        px_manifest_entry_t *e;
        int r;

        snprintf(path, sizeof path, "predicate.resources[%zu]", i);
        if ((r = px_jv_object(j, it, path, keys)) < 0 ||
            (r = px_jv_str(j, it, path, "name", &name)) < 0)
            return r;
        snprintf(kp, sizeof kp, "%s.name", path);
        if (r == 0)
            return px_jv_fail(j, kp, "missing");
        if ((why = px_manifest_path_problem(name)))
            return px_jv_fail(j, kp, "refused: %s", why);
        if (i && strcmp(m->e[i - 1].path, name) >= 0)
            return px_jv_fail(j, kp, "%s: resources must be in strictly increasing byte order of "
                              "name (no duplicates)", strcmp(m->e[i - 1].path, name) ? "out of order"
                                                                                      : "duplicate");
        if ((r = need_const(j, it, path, "algorithm", alg)) < 0)
            return r;
        if (!need(j, it, path, "size") ||
            (r = px_jv_int(j, it, path, "size", 0, (int64_t)PX_MANIFEST_MAX_SIZE, &size)) < 0)
            return PX_ECONFIG;
        if (!(e = px_manifest_add(m, name, (uint64_t)size)))
            return PX_ENOMEM;
        if ((r = need_hex(j, it, path, "digest", e->digest, m->alg)) < 0)
            return r;
    }
    return file_dir_clash(j, m);
}

int px_manifest_parse_statement(const char *json, size_t len, const char *what,
                                px_manifest_t *m, char *err, size_t errlen)
{
    static const char *const top[] = { "_type", "subject", "predicateType", "predicate", NULL };
    static const char *const subj_keys[] = { "name", "digest", NULL };
    static const char *const dig_keys[] = { "sha256", NULL };
    static const char *const pred_keys[] = { "serialization", "resources", NULL };
    static const char *const ser_keys[] = { "method", "hash_type", "allow_symlinks",
                                            "ignore_paths", NULL };
    static const char *const algs[] = { "sha256", "sha384", NULL };
    px_jv_t j = { .file = what, .err = err, .errlen = errlen };
    px_json_error_t je;
    cJSON *root;
    const cJSON *subj, *s0, *dig, *pred, *ser, *res, *ign;
    const char *name, *why;
    uint8_t want[32], got[32];
    int r, alg = 0, symlinks = 1;

    px_manifest_init(m, PX_MD_SHA256);
    if (px_json_check(json, len, &je) != 0)
        return px_errorf(PX_EPARSE, err, errlen, "%s: the statement is not JSON: byte %zu: %s",
                         what, je.offset, je.reason);
    if (!(root = cJSON_ParseWithLength(json, len)))
        return px_errorf(PX_ENOMEM, err, errlen, "%s: out of memory parsing JSON", what);
    r = PX_ECONFIG;
    if (px_jv_object(&j, root, "", top) < 0 ||
        need_const(&j, root, "", "_type", PX_MANIFEST_STATEMENT) < 0 ||
        need_const(&j, root, "", "predicateType", PX_MANIFEST_PREDICATE) < 0 ||
        !(subj = need(&j, root, "", "subject")) ||
        px_jv_array(&j, subj, "subject", 1, 1, "one subject (the model)") < 0 ||
        px_jv_object(&j, (s0 = subj->child), "subject[0]", subj_keys) < 0 ||
        !need(&j, s0, "subject[0]", "name") ||
        px_jv_str(&j, s0, "subject[0]", "name", &name) < 0)
        goto out;
    if (strchr(name, '/') || (why = name_problem(name, strlen(name)))) {
        px_jv_fail(&j, "subject[0].name", "refused: %s", strchr(name, '/') ? "contains '/'" : why);
        goto out;
    }
    if (!(m->name = strdup(name))) {
        r = PX_ENOMEM;
        goto out;
    }
    if (!(dig = need(&j, s0, "subject[0]", "digest")) ||
        px_jv_object(&j, dig, "subject[0].digest", dig_keys) < 0 ||
        need_hex(&j, dig, "subject[0].digest", "sha256", want, 32) < 0 ||
        !(pred = need(&j, root, "", "predicate")) ||
        px_jv_object(&j, pred, "predicate", pred_keys) < 0 ||
        !(ser = need(&j, pred, "predicate", "serialization")) ||
        px_jv_object(&j, ser, "predicate.serialization", ser_keys) < 0 ||
        need_const(&j, ser, "predicate.serialization", "method", "files") < 0 ||
        !need(&j, ser, "predicate.serialization", "hash_type") ||
        px_jv_enum(&j, ser, "predicate.serialization", "hash_type", algs, &alg) < 0 ||
        !need(&j, ser, "predicate.serialization", "allow_symlinks") ||
        px_jv_bool(&j, ser, "predicate.serialization", "allow_symlinks", &symlinks) < 0 ||
        !(ign = need(&j, ser, "predicate.serialization", "ignore_paths")) ||
        px_jv_array(&j, ign, "predicate.serialization.ignore_paths", 0, 0, "paths (pqproxy "
                    "manifests cover every file: none may be ignored)") < 0 ||
        !(res = need(&j, pred, "predicate", "resources")))
        goto out;
    if (symlinks) {
        px_jv_fail(&j, "predicate.serialization.allow_symlinks", "must be false (symlinks are "
                   "refused)");
        goto out;
    }
    m->alg = alg ? PX_MD_SHA384 : PX_MD_SHA256;
    if ((r = parse_resources(&j, res, m)) < 0)
        goto out;
    root_digest(m, got);
    if (memcmp(want, got, sizeof got)) {
        r = px_jv_fail(&j, "subject[0].digest.sha256", "does not match the resources' digests");
        goto out;
    }
    r = 0;
out:
    cJSON_Delete(root);
    return r == PX_ECONFIG ? PX_EPARSE : r;
}

/* --- keys and signatures ---------------------------------------------------------- */

/* SubjectPublicKeyInfo DER prefixes (RFC 5480, RFC 9881) before the raw key. */
static const uint8_t SPKI_P384[] = { 0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce,
                                     0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22,
                                     0x03, 0x62, 0x00 };
static const uint8_t SPKI_MLDSA87[] = { 0x30, 0x82, 0x0a, 0x32, 0x30, 0x0b, 0x06, 0x09, 0x60,
                                        0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x13, 0x03,
                                        0x82, 0x0a, 0x21, 0x00 };

static int spki_kid(const uint8_t *prefix, size_t plen, const uint8_t *key, size_t klen, char *out)
{
    px_md_t h;
    uint8_t d[32];
    if (px_md_init(&h, PX_MD_SHA256) != 0)
        return PX_ECRYPTO;
    px_md_update(&h, prefix, plen);
    px_md_update(&h, key, klen);
    px_md_final(&h, d);
    hex(d, sizeof d, out);
    return 0;
}

int px_manifest_keyids(const uint8_t *ecdsa_pub, const uint8_t *mldsa_pub, char *ecdsa_kid,
                       char *mldsa_kid)
{
    if (spki_kid(SPKI_P384, sizeof SPKI_P384, ecdsa_pub, PX_SIG_ECDSA_PUB_LEN, ecdsa_kid) ||
        spki_kid(SPKI_MLDSA87, sizeof SPKI_MLDSA87, mldsa_pub, PX_SIG_MLDSA_PUB_LEN, mldsa_kid))
        return PX_ECRYPTO;
    return 0;
}

int px_manifest_sign_payload(const uint8_t *stmt, size_t len, px_sig_signer_t *s, px_buf_t *out,
                             char *err, size_t errlen)
{
    static uint8_t ml_pub[PX_SIG_MLDSA_PUB_LEN], mldsa[PX_SIG_MLDSA_LEN];
    uint8_t ec_pub[PX_SIG_ECDSA_PUB_LEN], raw[PX_SIG_ECDSA_LEN], der[128];
    word32 der_len = sizeof der;
    px_buf_t pae;
    px_dsse_sig_t sigs[2];
    int r = PX_ENOMEM;

    px_buf_init(&pae, 0);
    memset(sigs, 0, sizeof sigs);
    px_sig_signer_public(s, ec_pub, ml_pub);
    if (px_manifest_keyids(ec_pub, ml_pub, sigs[0].keyid, sigs[1].keyid) != 0 ||
        px_dsse_pae(PX_MANIFEST_PAYLOAD_TYPE, stmt, len, &pae) != 0)
        goto out;
    r = PX_ECRYPTO;
    if (px_sig_signer_sign(s, (const uint8_t *)px_buf_ptr(&pae), px_buf_size(&pae), raw, mldsa) ||
        wc_ecc_rs_raw_to_sig(raw, EC_COORD, raw + EC_COORD, EC_COORD, der, &der_len) != 0)
        goto out;
    sigs[0].sig = der;
    sigs[0].sig_len = der_len;
    sigs[1].sig = mldsa;
    sigs[1].sig_len = sizeof mldsa;
    r = px_dsse_build(PX_MANIFEST_PAYLOAD_TYPE, stmt, len, sigs, 2, out);
out:
    px_buf_free(&pae);
    return r ? px_errorf(r, err, errlen, "signing the manifest failed: %s", px_strerror(r)) : 0;
}

int px_manifest_sign(const px_manifest_t *m, px_sig_signer_t *s, px_buf_t *out, char *err,
                     size_t errlen)
{
    px_buf_t stmt;
    int r;

    px_buf_init(&stmt, 0);
    if ((r = px_manifest_statement(m, &stmt)) != 0)
        r = px_errorf(r, err, errlen, "out of memory");
    else
        r = px_manifest_sign_payload((const uint8_t *)px_buf_ptr(&stmt), px_buf_size(&stmt), s,
                                     out, err, errlen);
    px_buf_free(&stmt);
    return r;
}

/* A DER ECDSA-Sig-Value -> raw r||s; only the canonical DER encoding is taken. */
static int ecdsa_der_to_raw(const uint8_t *sig, size_t len, uint8_t *raw)
{
    uint8_t r[EC_COORD + 1], s[EC_COORD + 1], again[128];
    word32 rl = sizeof r, sl = sizeof s, al = sizeof again;

    if (len > sizeof again || wc_ecc_sig_to_rs(sig, (word32)len, r, &rl, s, &sl) != 0 ||
        rl > EC_COORD || sl > EC_COORD)
        return -1;
    memset(raw, 0, PX_SIG_ECDSA_LEN);
    memcpy(raw + EC_COORD - rl, r, rl);
    memcpy(raw + 2 * EC_COORD - sl, s, sl);
    if (wc_ecc_rs_raw_to_sig(raw, EC_COORD, raw + EC_COORD, EC_COORD, again, &al) != 0 ||
        al != len || memcmp(again, sig, len))
        return -1;
    return 0;
}

int px_manifest_verify(const char *text, size_t len, const char *what, const uint8_t *ecdsa_pub,
                       const uint8_t *mldsa_pub, px_manifest_t *m, char *err, size_t errlen)
{
    char ekid[65], mkid[65];
    const px_dsse_sig_t *es = NULL, *ms = NULL;
    uint8_t raw[PX_SIG_ECDSA_LEN];
    px_dsse_t env;
    px_buf_t pae;
    px_sig_result_t v;
    int r;

    px_manifest_init(m, PX_MD_SHA256);
    px_buf_init(&pae, 0);
    if ((r = px_dsse_parse(text, len, what, &env, err, errlen)) != 0)
        goto out;
    r = PX_EPARSE;
    if (strcmp(env.payload_type, PX_MANIFEST_PAYLOAD_TYPE)) {
        px_errorf(r, err, errlen, "%s: payloadType must be \"%s\"", what, PX_MANIFEST_PAYLOAD_TYPE);
        goto out;
    }
    if ((r = px_manifest_keyids(ecdsa_pub, mldsa_pub, ekid, mkid)) != 0)
        goto out;
    r = PX_ECRYPTO;
    for (int i = 0; i < env.nsigs; i++) {
        if (!strcmp(env.sigs[i].keyid, ekid)) {
            es = &env.sigs[i];
        } else if (!strcmp(env.sigs[i].keyid, mkid)) {
            ms = &env.sigs[i];
        } else {
            px_errorf(r, err, errlen, "%s: signatures[%d]: keyid %.64s is neither the given ECDSA "
                      "P-384 key (%s) nor the ML-DSA-87 key (%s): signed by another key?", what, i,
                      env.sigs[i].keyid, ekid, mkid);
            goto out;
        }
    }
    if (!es || !ms) {
        px_errorf(r, err, errlen, "%s: no %s signature (keyid %s): both ECDSA P-384 and ML-DSA-87 "
                  "signatures are required", what, es ? "ML-DSA-87" : "ECDSA P-384",
                  es ? mkid : ekid);
        goto out;
    }
    if (ecdsa_der_to_raw(es->sig, es->sig_len, raw) != 0) {
        px_errorf(r, err, errlen, "%s: the ECDSA P-384 signature is not a DER ECDSA-Sig-Value", what);
        goto out;
    }
    if (ms->sig_len != PX_SIG_MLDSA_LEN) {
        px_errorf(r, err, errlen, "%s: the ML-DSA-87 signature is %zu bytes, not %d", what,
                  ms->sig_len, PX_SIG_MLDSA_LEN);
        goto out;
    }
    if ((r = px_dsse_pae(env.payload_type, env.payload, env.payload_len, &pae)) != 0)
        goto out;
    v = px_sig_verify_raw(ecdsa_pub, mldsa_pub, (const uint8_t *)px_buf_ptr(&pae),
                          px_buf_size(&pae), raw, ms->sig);
    if (v != PX_SIG_OK) {
        r = PX_ECRYPTO;
        px_errorf(r, err, errlen, "%s: %s", what, v == PX_SIG_ECDSA ? "the ECDSA P-384 signature "
                  "does not verify" : v == PX_SIG_MLDSA ? "the ML-DSA-87 signature does not verify"
                  : "signature verification failed (internal error)");
        goto out;
    }
    r = px_manifest_parse_statement((const char *)env.payload, env.payload_len, what, m, err,
                                    errlen);
out:
    px_dsse_free(&env);
    px_buf_free(&pae);
    return r;
}
