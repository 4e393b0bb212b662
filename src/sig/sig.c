/* Request and response signatures: verification policy, signing, and the
 * RFC 9530 Content-Digest (docs/signatures.md sections 4, 7 and 8). */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/sha256.h>
#include <wolfssl/wolfcrypt/sha512.h>

#include "sig/sig.h"
#include "sig/sigwire.h"

_Static_assert(sizeof(wc_Sha256) <= sizeof(((px_digest_t *)0)->st256), "wc_Sha256 fits");
_Static_assert(sizeof(wc_Sha512) <= sizeof(((px_digest_t *)0)->st512), "wc_Sha512 fits");
_Static_assert(_Alignof(wc_Sha256) <= 16 && _Alignof(wc_Sha512) <= 16, "alignment");

#define say(...) (void)px_errorf(0, __VA_ARGS__)

/* --- results ------------------------------------------------------------------------- */

static const struct { const char *name; px_http_error_t herr; } results[PX_SIG__COUNT] = {
#define XX(name, herr, str) { str, PX_HERR_##herr },
    PX_SIG_RESULTS(XX)
#undef XX
};

const char *px_sig_result_name(px_sig_result_t r)
{
    return (unsigned)r < PX_SIG__COUNT ? results[r].name : "unknown";
}

px_http_error_t px_sig_http_error(px_sig_result_t r)
{
    return (unsigned)r < PX_SIG__COUNT ? results[r].herr : PX_HERR_INTERNAL;
}

void px_sig_policy_default(px_sig_policy_t *p)
{
    memset(p, 0, sizeof *p);
    p->max_skew_s = 30;
    p->max_validity_s = 300;
}

/* --- Content-Digest ---------------------------------------------------------------------- */

int px_digest_init(px_digest_t *d, int algs)
{
    d->algs = algs ? algs & (PX_DIGEST_SHA256 | PX_DIGEST_SHA512) : PX_DIGEST_SHA256;
    if (!d->algs)
        d->algs = PX_DIGEST_SHA256;
    if ((d->algs & PX_DIGEST_SHA256) && wc_InitSha256((wc_Sha256 *)d->st256) != 0)
        return PX_ECRYPTO;
    if ((d->algs & PX_DIGEST_SHA512) && wc_InitSha512((wc_Sha512 *)d->st512) != 0) {
        if (d->algs & PX_DIGEST_SHA256)
            wc_Sha256Free((wc_Sha256 *)d->st256);
        return PX_ECRYPTO;
    }
    return 0;
}

void px_digest_update(px_digest_t *d, const void *data, size_t len)
{
    while (len > 0) {
        word32 n = len > 0x40000000 ? 0x40000000 : (word32)len;
        if (d->algs & PX_DIGEST_SHA256)
            wc_Sha256Update((wc_Sha256 *)d->st256, data, n);
        if (d->algs & PX_DIGEST_SHA512)
            wc_Sha512Update((wc_Sha512 *)d->st512, data, n);
        data = (const char *)data + n;
        len -= n;
    }
}

void px_digest_final(px_digest_t *d, px_digest_value_t *out)
{
    memset(out, 0, sizeof *out);
    out->algs = d->algs;
    if (d->algs & PX_DIGEST_SHA256) {
        wc_Sha256Final((wc_Sha256 *)d->st256, out->sha256);
        wc_Sha256Free((wc_Sha256 *)d->st256);
    }
    if (d->algs & PX_DIGEST_SHA512) {
        wc_Sha512Final((wc_Sha512 *)d->st512, out->sha512);
        wc_Sha512Free((wc_Sha512 *)d->st512);
    }
    d->algs = 0;
}

int px_content_digest_format(const px_digest_value_t *v, char *out, size_t cap)
{
    char b64[48];
    if (!(v->algs & PX_DIGEST_SHA256) || px_b64_encode(v->sha256, 32, b64, sizeof b64, 0) < 0)
        return PX_EINVAL;
    return snprintf(out, cap, "sha-256=:%s:", b64) < (int)cap ? 0 : PX_ETOOBIG;
}

int px_content_digest(const void *data, size_t len, char *out, size_t cap)
{
    px_digest_t d;
    px_digest_value_t v;
    if (px_digest_init(&d, PX_DIGEST_SHA256))
        return PX_ECRYPTO;
    px_digest_update(&d, data, len);
    px_digest_final(&d, &v);
    return px_content_digest_format(&v, out, cap);
}

int px_content_digest_algs(const char *value, size_t len)
{
    sf_dict_t *dict = malloc(sizeof *dict);
    int algs = 0;

    if (!dict)
        return 0;
    if (len <= PX_SIG_MAX_DIGEST_FIELD && sf_parse_dict(value, len, dict, NULL, 0) == 0) {
        if (sf_dict_get(dict, "sha-256"))
            algs |= PX_DIGEST_SHA256;
        if (sf_dict_get(dict, "sha-512"))
            algs |= PX_DIGEST_SHA512;
    }
    free(dict);
    return algs;
}

static px_sig_result_t check_one(const sf_dict_t *dict, const char *name, const uint8_t *want,
                                 size_t n, int *checked, char *detail, size_t dlen)
{
    const sf_member_t *m = sf_dict_get(dict, name);
    uint8_t got[64];

    if (!m)
        return PX_SIG_OK;
    if (m->is_inner || m->item.v.type != SF_BYTES ||
        px_b64_decode(m->item.v.s, m->item.v.len, got, sizeof got) != (long)n) {
        say(detail, dlen, "Content-Digest %s is not a %zu-byte byte sequence", name, n);
        return PX_SIG_DIGEST;
    }
    if (!want) {
        say(detail, dlen, "Content-Digest %s was not computed", name);
        return PX_SIG_DIGEST;
    }
    /* not secret, but constant time costs nothing */
    unsigned char diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= got[i] ^ want[i];
    if (diff) {
        say(detail, dlen, "the body does not match Content-Digest %s", name);
        return PX_SIG_DIGEST;
    }
    (*checked)++;
    return PX_SIG_OK;
}

px_sig_result_t px_content_digest_check(const char *value, size_t len,
                                        const px_digest_value_t *body, char *detail, size_t dlen)
{
    sf_dict_t *dict;
    char err[120];
    int checked = 0;
    px_sig_result_t r;

    if (!value) {
        say(detail, dlen, "no Content-Digest");
        return PX_SIG_DIGEST;
    }
    if (len > PX_SIG_MAX_DIGEST_FIELD) {
        say(detail, dlen, "Content-Digest longer than %d bytes", PX_SIG_MAX_DIGEST_FIELD);
        return PX_SIG_DIGEST;
    }
    if (!(dict = malloc(sizeof *dict)))
        return PX_SIG_INTERNAL;
    if (sf_parse_dict(value, len, dict, err, sizeof err)) {
        say(detail, dlen, "Content-Digest malformed: %s", err);
        r = PX_SIG_DIGEST;
    } else if ((r = check_one(dict, "sha-256", body->algs & PX_DIGEST_SHA256 ? body->sha256 : NULL,
                              32, &checked, detail, dlen)) == PX_SIG_OK &&
               (r = check_one(dict, "sha-512", body->algs & PX_DIGEST_SHA512 ? body->sha512 : NULL,
                              64, &checked, detail, dlen)) == PX_SIG_OK && !checked) {
        say(detail, dlen, "Content-Digest has neither sha-256 nor sha-512");
        r = PX_SIG_DIGEST;
    }
    free(dict);
    return r;
}

/* --- messages ------------------------------------------------------------------------------ */

void px_sig_msg_from_head(px_sig_msg_t *m, const px_http_head_t *h)
{
    memset(m, 0, sizeof *m);
    m->is_request = h->is_request;
    m->method = h->method;
    m->method_len = h->method_len;
    m->authority = h->host;
    m->authority_len = h->host_len;
    m->target = h->target;
    m->target_len = h->target_len;
    m->status = h->status;
    m->headers = h->headers;
    m->header_count = h->header_count;
}

px_sig_result_t px_sig_base_for(const px_sig_msg_t *msg, const char *xsig, size_t len,
                                px_buf_t *out, char *detail, size_t dlen)
{
    px_sigfield_t *f = malloc(sizeof *f);
    px_sig_result_t r;

    if (!f)
        return PX_SIG_INTERNAL;
    memset(f, 0, offsetof(px_sigfield_t, d1));
    r = px_sigfield_parse_value(xsig, len, f, detail, dlen);
    if (r == PX_SIG_OK)
        r = px_sig_base_build(msg, f, out, detail, dlen);
    free(f);
    return r;
}

/* --- verification ----------------------------------------------------------------------------- */

static int covers(const px_sigfield_t *f, const char *name, int req, int tr)
{
    size_t n = strlen(name);
    for (int i = 0; i < f->ncomp; i++)
        if (f->comp[i].len == n && !memcmp(f->comp[i].name, name, n) && f->comp[i].req == req &&
            f->comp[i].tr == tr)
            return 1;
    return 0;
}

static void copy_str(char *dst, size_t cap, const char *s, size_t n)
{
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, s ? s : "", s ? n : 0);
    dst[s ? n : 0] = '\0';
}

static px_sig_result_t count(const px_sig_policy_t *pol, px_sig_result_t r)
{
    if (pol && pol->stats && (unsigned)r < PX_SIG__COUNT)
        atomic_fetch_add_explicit(&pol->stats->result[r], 1, memory_order_relaxed);
    return r;
}

/* Steps 2-8 common to requests and responses. */
static px_sig_result_t verify_common(const px_sig_keyring_t *ring, const px_sig_policy_t *pol,
                                     const px_sig_msg_t *msg, px_sigfield_t *f, int64_t now,
                                     px_sig_info_t *info)
{
    const uint8_t *ec, *ml;
    int idx;
    px_buf_t base;
    px_sig_result_t r;
    char *d = info->detail;
    size_t dl = sizeof info->detail;

    copy_str(info->keyid, sizeof info->keyid, f->keyid, f->keyid_len);
    copy_str(info->nonce, sizeof info->nonce, f->nonce, f->nonce_len);
    info->created = f->created;
    info->expires = f->expires;
    info->sig_field = f->field;
    info->sig_value = f->value;
    info->sig_value_len = f->value_len;
    if (f->expires - f->created > pol->max_validity_s) {
        say(d, dl, "validity window of %lld s is longer than the %lld s allowed",
            (long long)(f->expires - f->created), (long long)pol->max_validity_s);
        return PX_SIG_MALFORMED;
    }
    if (!f->hybrid && !pol->allow_classical) {
        say(d, dl, "alg \"%s\" (classical only) is not allowed: \"%s\" is required",
            PX_SIG_ALG_CLASSICAL, PX_SIG_ALG_HYBRID);
        return PX_SIG_MALFORMED;
    }
    if ((idx = px_sig_keyring_find(ring, f->keyid, f->keyid_len, &ec, &ml)) < 0) {
        say(d, dl, "keyid \"%s\" is not known", info->keyid);
        return PX_SIG_UNKNOWN_KEY;
    }
    if (now < f->created - pol->max_skew_s) {
        say(d, dl, "not yet valid: created %lld s in the future",
            (long long)(f->created - now));
        return PX_SIG_NOT_YET_VALID;
    }
    if (now >= f->expires + pol->max_skew_s) {
        say(d, dl, "expired %lld s ago", (long long)(now - f->expires));
        return PX_SIG_EXPIRED;
    }
    px_buf_init(&base, PX_SIG_MAX_BASE + 4096);
    r = px_sig_base_build(msg, f, &base, d, dl);
    if (r == PX_SIG_OK) {
        r = px_sig_keyring_verify(ring, idx, (const uint8_t *)px_buf_ptr(&base), px_buf_size(&base),
                                  f->ecdsa, f->have_mldsa ? f->mldsa : NULL);
        if (r == PX_SIG_ECDSA)
            say(d, dl, "the ECDSA P-384 signature does not verify");
        else if (r == PX_SIG_MLDSA)
            say(d, dl, "the ML-DSA-87 signature does not verify");
        else if (r != PX_SIG_OK)
            say(d, dl, "signature verification failed internally");
    }
    px_buf_free(&base);
    info->classical = r == PX_SIG_OK && !f->have_mldsa;
    return r;
}

static void set_digest_info(const px_sig_msg_t *msg, const px_sigfield_t *f, int tr,
                            px_sig_info_t *info)
{
    const char *v;
    size_t vl;
    if (px_sig_field_single(tr ? msg->trailers : msg->headers,
                            tr ? msg->trailer_count : msg->header_count, "content-digest", &v,
                            &vl) == 1) {
        info->content_digest = v;
        info->content_digest_len = vl;
        info->digest_algs = px_content_digest_algs(v, vl);
    }
    (void)f;
}

px_sig_result_t px_sig_verify_request(const px_sig_keyring_t *ring, px_replay_t *replay,
                                      const px_sig_policy_t *pol, const px_sig_msg_t *req,
                                      int64_t now, px_sig_info_t *info)
{
    px_sigfield_t *f;
    px_sig_result_t r;
    char *d = info->detail;
    size_t dl = sizeof info->detail;

    memset(info, 0, sizeof *info);
    if (!(f = malloc(sizeof *f)))
        return count(pol, PX_SIG_INTERNAL);
    if ((r = px_sigfield_parse(req, 0, f, d, dl)) != PX_SIG_OK)
        goto out;
    static const char *const mandatory[] = { "@method", "@authority", "@path", "@query",
                                             "content-digest" };
    for (size_t i = 0; i < sizeof mandatory / sizeof *mandatory; i++)
        if (!covers(f, mandatory[i], 0, 0)) {
            say(d, dl, "the signature must cover \"%s\"", mandatory[i]);
            r = PX_SIG_MALFORMED;
            goto out;
        }
    for (int i = 0; i < pol->required_count; i++)
        if (!covers(f, pol->required_headers[i], 0, 0)) {
            say(d, dl, "the policy requires the signature to cover \"%s\"",
                pol->required_headers[i]);
            r = PX_SIG_MALFORMED;
            goto out;
        }
    if (px_sig_field_single(req->headers, req->header_count, "content-digest",
                            &(const char *){ 0 }, &(size_t){ 0 }) > 1) {
        say(d, dl, "Content-Digest repeated");
        r = PX_SIG_MALFORMED;
        goto out;
    }
    if ((r = verify_common(ring, pol, req, f, now, info)) != PX_SIG_OK)
        goto out;
    set_digest_info(req, f, 0, info);
    if (replay) {
        switch (px_replay_check_insert(replay, f->keyid, f->keyid_len, f->nonce, f->nonce_len,
                                       f->expires + pol->max_skew_s, now)) {
        case PX_REPLAY_FRESH: break;
        case PX_REPLAY_SEEN:
            say(d, dl, "nonce \"%s\" already used by keyid \"%s\"", info->nonce, info->keyid);
            r = PX_SIG_REPLAYED;
            goto out;
        case PX_REPLAY_FULL:
            say(d, dl, "the replay cache is full");
            r = PX_SIG_CACHE_FULL;
            goto out;
        default:
            r = PX_SIG_INTERNAL;
            goto out;
        }
    }
    if (info->classical && pol->stats)
        atomic_fetch_add_explicit(&pol->stats->classical, 1, memory_order_relaxed);
out:
    free(f);
    if (r != PX_SIG_OK)
        info->classical = 0;
    return count(pol, r);
}

px_sig_result_t px_sig_verify_response(const px_sig_keyring_t *ring, const px_sig_policy_t *pol,
                                       const px_sig_msg_t *resp, const char *expected_keyid,
                                       int64_t now, px_sig_info_t *info)
{
    px_sigfield_t *f;
    px_sig_result_t r;
    char *d = info->detail;
    size_t dl = sizeof info->detail;
    int tr;

    memset(info, 0, sizeof *info);
    if (!(f = malloc(sizeof *f)))
        return PX_SIG_INTERNAL;
    r = px_sigfield_parse(resp, 0, f, d, dl);
    tr = r == PX_SIG_MISSING && resp->trailer_count > 0;
    if (tr)
        r = px_sigfield_parse(resp, 1, f, d, dl);
    if (r != PX_SIG_OK)
        goto out;
    if (!covers(f, "@status", 0, 0) || !covers(f, "content-digest", 0, tr)) {
        say(d, dl, "a response signature must cover \"@status\" and \"content-digest\"%s",
            tr ? ";tr" : "");
        r = PX_SIG_MALFORMED;
        goto out;
    }
    if (resp->req) {
        const char *v;
        size_t vl;
        if (px_sig_field_single(resp->req->headers, resp->req->header_count, PX_SIG_FIELD, &v,
                                &vl) == 1 && !covers(f, PX_SIG_FIELD, 1, 0)) {
            say(d, dl, "the response is not bound to the request (\"x-signature\";req)");
            r = PX_SIG_MALFORMED;
            goto out;
        }
        if (px_sig_field_single(resp->req->headers, resp->req->header_count, "signature", &v,
                                &vl) == 1 && !covers(f, "signature", 1, 0)) {
            say(d, dl, "the response is not bound to the request (\"signature\";req)");
            r = PX_SIG_MALFORMED;
            goto out;
        }
    }
    if (expected_keyid && (strlen(expected_keyid) != f->keyid_len ||
                           memcmp(expected_keyid, f->keyid, f->keyid_len))) {
        say(d, dl, "response signed by keyid \"%.*s\", expected \"%s\"", (int)f->keyid_len,
            f->keyid, expected_keyid);
        r = PX_SIG_UNKNOWN_KEY;
        goto out;
    }
    if ((r = verify_common(ring, pol, resp, f, now, info)) != PX_SIG_OK)
        goto out;
    set_digest_info(resp, f, tr, info);
out:
    free(f);
    return count(pol, r);
}

/* --- signing ------------------------------------------------------------------------------------ */

/* A nonce needs unpredictability, not a DRBG of its own: the kernel's
 * generator directly (instantiating a WC_RNG per signature cost more
 * than the random bytes). */
static int random_nonce(char out[25])
{
    uint8_t raw[18];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw ||
        px_b64_encode(raw, sizeof raw, out, 25, 1) != 24)
        return PX_ECRYPTO;
    return 0;
}

/* Appends prefix, base64(raw) and ':' to out, encoding in place: a 4.6 KB
 * ML-DSA signature is 6.2 KB of base64, too much to copy through printf. */
static int append_b64(px_buf_t *out, const char *prefix, const uint8_t *raw, size_t len)
{
    size_t plen = strlen(prefix), cap = (len + 2) / 3 * 4 + 1;
    char *dst;
    long n;

    if (px_buf_append(out, prefix, plen) || !(dst = px_buf_reserve(out, cap + 1)) ||
        (n = px_b64_encode(raw, len, dst, cap, 0)) < 0)
        return PX_ENOMEM;
    dst[n] = ':';
    px_buf_commit(out, (size_t)n + 1);
    return 0;
}

/* Builds "label=(comps);params", signs msg with it and appends the
 * complete X-Signature value to out. */
static int sign_field(px_sig_signer_t *s, const px_sig_msg_t *msg, const char *comps,
                      int64_t now, int64_t ttl_s, const char *nonce, px_buf_t *out)
{
    char nbuf[25];
    px_buf_t params, base;
    px_sigfield_t *f = NULL;
    uint8_t ecdsa[PX_SIG_ECDSA_LEN], *mldsa = malloc(PX_SIG_MLDSA_LEN);
    char detail[200];
    int ret = PX_ENOMEM;

    px_buf_init(&params, 4096);
    px_buf_init(&base, PX_SIG_MAX_BASE + 4096);
    if (!mldsa || !(f = malloc(sizeof *f)))
        goto out;
    if (!nonce) {
        if ((ret = random_nonce(nbuf)) != 0)
            goto out;
        nonce = nbuf;
    }
    ret = PX_EINVAL;
    if (ttl_s < 1 || !px_sig_valid_nonce(nonce, strlen(nonce)))
        goto out;
    if (px_buf_printf(&params, "sig1=(%s);created=%lld;expires=%lld;nonce=\"%s\";keyid=\"%s\";"
                      "alg=\"%s\"", comps, (long long)now, (long long)(now + ttl_s), nonce,
                      px_sig_signer_keyid(s), PX_SIG_ALG_HYBRID))
        goto out;
    /* Parse what we wrote (without sig/pq): one code path for the base. */
    memset(f, 0, offsetof(px_sigfield_t, d1));
    if (sf_parse_dict(px_buf_ptr(&params), px_buf_size(&params), &f->d1, NULL, 0) ||
        f->d1.n != 1)
        goto out;
    {
        /* interpret via the X-Signature path needs sig/pq: build the base directly */
        const sf_member_t *m = &f->d1.m[0];
        f->mem = m;
        f->ncomp = m->ninner;
        for (int i = 0; i < m->ninner; i++) {
            f->comp[i].name = m->inner[i].v.s;
            f->comp[i].len = m->inner[i].v.len;
            for (int j = 0; j < m->inner[i].nparams; j++) {
                if (m->inner[i].params[j].name_len == 3)
                    f->comp[i].req = 1;
                else
                    f->comp[i].tr = 1;
            }
        }
    }
    if (px_sig_base_build(msg, f, &base, detail, sizeof detail) != PX_SIG_OK)
        goto out;
    if ((ret = px_sig_signer_sign(s, (const uint8_t *)px_buf_ptr(&base), px_buf_size(&base),
                                  ecdsa, mldsa)) != 0)
        goto out;
    ret = PX_ENOMEM;
    if (px_buf_append(out, px_buf_ptr(&params), px_buf_size(&params)) ||
        append_b64(out, ";sig=:", ecdsa, sizeof ecdsa) ||
        append_b64(out, ";pq=:", mldsa, PX_SIG_MLDSA_LEN))
        goto out;
    ret = 0;
out:
    px_buf_free(&params);
    px_buf_free(&base);
    free(f);
    free(mldsa);
    return ret;
}

int px_sig_sign_request(px_sig_signer_t *s, const px_sig_msg_t *req, const char *const *extra,
                        int extra_count, int64_t now, int64_t ttl_s, const char *nonce,
                        px_buf_t *out)
{
    char comps[1024];
    size_t o;

    if (!s || !req || !req->is_request || extra_count < 0 ||
        extra_count > PX_SIG_MAX_COMPONENTS - 5)
        return PX_EINVAL;
    o = (size_t)snprintf(comps, sizeof comps,
                         "\"@method\" \"@authority\" \"@path\" \"@query\" \"content-digest\"");
    for (int i = 0; i < extra_count; i++) {
        size_t n = strlen(extra[i]);
        if (n == 0 || n > PX_SIG_MAX_NAME || o + n + 4 >= sizeof comps)
            return PX_EINVAL;
        for (size_t j = 0; j < n; j++)
            if (!((extra[i][j] >= 'a' && extra[i][j] <= 'z') || (extra[i][j] >= '0' && extra[i][j] <= '9') ||
                  extra[i][j] == '-' || extra[i][j] == '_' || extra[i][j] == '.'))
                return PX_EINVAL;
        o += (size_t)snprintf(comps + o, sizeof comps - o, " \"%s\"", extra[i]);
    }
    return sign_field(s, req, comps, now, ttl_s, nonce, out);
}

struct px_sig_response {
    px_sig_signer_t *signer;
    int status;
    char *req_field;
    char *req_value;
    size_t req_value_len;
    int in_trailer;
    px_digest_t digest;
    px_header_t fields[PX_SIG_MAX_RESPONSE_FIELDS];   /* also covered; strings owned */
    int nfields;
};

px_sig_response_t *px_sig_response_begin(px_sig_signer_t *s, int status, const char *req_field,
                                         const char *req_value, size_t req_value_len,
                                         int in_trailer)
{
    px_sig_response_t *r;

    if (!s || status < 100 || status > 999 ||
        (req_field && strcmp(req_field, PX_SIG_FIELD) && strcmp(req_field, "signature")) ||
        (req_field && !req_value) || req_value_len > PX_SIG_MAX_FIELD)
        return NULL;
    if (!(r = calloc(1, sizeof *r)))
        return NULL;
    r->signer = s;
    r->status = status;
    r->in_trailer = in_trailer;
    if (req_field) {
        r->req_field = strdup(req_field);
        r->req_value = malloc(req_value_len + 1);
        if (!r->req_field || !r->req_value) {
            px_sig_response_free(r);
            return NULL;
        }
        memcpy(r->req_value, req_value, req_value_len);
        r->req_value_len = req_value_len;
    }
    if (px_digest_init(&r->digest, PX_DIGEST_SHA256) != 0) {
        free(r->req_field);
        free(r->req_value);
        free(r);
        return NULL;
    }
    return r;
}

int px_sig_response_cover(px_sig_response_t *r, const char *name, const char *value)
{
    px_header_t *f;
    size_t n = name ? strlen(name) : 0;

    if (!r || !value || r->nfields >= PX_SIG_MAX_RESPONSE_FIELDS || n == 0 || n > PX_SIG_MAX_NAME ||
        strlen(value) > PX_SIG_MAX_FIELD)
        return PX_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') || name[i] == '-'))
            return PX_EINVAL;
    f = &r->fields[r->nfields];
    if (!(f->name = strdup(name)) || !(f->value = strdup(value))) {
        free((char *)f->name);
        f->name = NULL;
        return PX_ENOMEM;
    }
    f->name_len = n;
    f->value_len = strlen(value);
    r->nfields++;
    return 0;
}

void px_sig_response_update(px_sig_response_t *r, const void *data, size_t len)
{
    if (r && len)
        px_digest_update(&r->digest, data, len);
}

int px_sig_response_finish(px_sig_response_t *r, int64_t now, int64_t ttl_s,
                           px_buf_t *digest_out, px_buf_t *sig_out)
{
    px_digest_value_t v;
    char cd[80], comps[96 + PX_SIG_MAX_RESPONSE_FIELDS * (PX_SIG_MAX_NAME + 3)];
    px_header_t cdh = { "content-digest", 14, cd, 0 }, rqh;
    px_header_t head[1 + PX_SIG_MAX_RESPONSE_FIELDS];
    px_sig_msg_t req, resp;
    size_t o;
    int ret, nhead = 0;

    if (!r || !r->digest.algs)
        return PX_EINVAL;
    px_digest_final(&r->digest, &v);
    if ((ret = px_content_digest_format(&v, cd, sizeof cd)) != 0)
        return ret;
    cdh.value_len = strlen(cd);
    memset(&req, 0, sizeof req);
    memset(&resp, 0, sizeof resp);
    req.is_request = 1;
    if (r->req_field) {
        rqh.name = r->req_field;
        rqh.name_len = strlen(r->req_field);
        rqh.value = r->req_value;
        rqh.value_len = r->req_value_len;
        req.headers = &rqh;
        req.header_count = 1;
    }
    resp.status = r->status;
    resp.req = &req;
    if (r->in_trailer) {
        resp.trailers = &cdh;
        resp.trailer_count = 1;
    } else {
        head[nhead++] = cdh;
    }
    o = (size_t)snprintf(comps, sizeof comps, "\"@status\" \"content-digest\"%s",
                         r->in_trailer ? ";tr" : "");
    for (int i = 0; i < r->nfields; i++) {
        head[nhead++] = r->fields[i];
        o += (size_t)snprintf(comps + o, sizeof comps - o, " \"%s\"", r->fields[i].name);
    }
    resp.headers = head;
    resp.header_count = nhead;
    snprintf(comps + o, sizeof comps - o, "%s%s%s", r->req_field ? " \"" : "",
             r->req_field ? r->req_field : "", r->req_field ? "\";req" : "");
    if ((ret = px_buf_append(digest_out, cd, cdh.value_len)) != 0)
        return ret;
    return sign_field(r->signer, &resp, comps, now, ttl_s, NULL, sig_out);
}

void px_sig_response_free(px_sig_response_t *r)
{
    if (!r)
        return;
    if (r->digest.algs) {
        px_digest_value_t v;
        px_digest_final(&r->digest, &v);
    }
    free(r->req_field);
    free(r->req_value);
    for (int i = 0; i < r->nfields; i++) {
        free((char *)r->fields[i].name);
        free((char *)r->fields[i].value);
    }
    free(r);
}
