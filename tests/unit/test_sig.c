/* Request signatures: the docs/signatures.md vectors byte for byte
 * (signature bases written by the independent Node implementation), every
 * failure reason, the RFC 9421 pair, signed responses (head and trailer),
 * Content-Digest, and random mutations of a valid header that must never
 * crash and never verify a different signature base. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <strings.h>

#include "sig_fixture.h"
#include "core/cpus.h"
#include <uv.h>
#include "sig/sigwire.h"

static px_sig_keyring_t *ring;
static px_sig_signer_t *signer;   /* client-a */
static px_sig_signer_t *proxy;    /* pqproxy */
static px_sig_policy_t pol;
static char *body;
static size_t body_len;

static int setup(void **state)
{
    char err[256];
    ring = fx_ring();
    assert_int_equal(px_sig_signer_load(SIG_DIR "client-a", "client-a", &signer, err, sizeof err), 0);
    assert_int_equal(px_sig_signer_load(SIG_DIR "pqproxy", "pqproxy", &proxy, err, sizeof err), 0);
    px_sig_policy_default(&pol);
    body = fx_read("request.body", &body_len);
    return 0;
}

static int teardown(void **state)
{
    px_sig_keyring_free(ring);
    px_sig_signer_free(signer);
    px_sig_signer_free(proxy);
    free(body);
    return 0;
}

/* --- helpers ------------------------------------------------------------------------ */

static char *b64(const uint8_t *d, size_t n)
{
    char *s = malloc(n * 2 + 8);
    assert_non_null(s);
    assert_true(px_b64_encode(d, n, s, n * 2 + 8, 0) >= 0);
    return s;
}

/* prefix (label, inner list and parameters, no sig/pq) -> a complete
 * X-Signature value signed over msg by s. */
static char *make_sig(px_sig_signer_t *s, const px_sig_msg_t *msg, const char *prefix, int hybrid)
{
    static uint8_t zero[PX_SIG_MLDSA_LEN];
    uint8_t ec[PX_SIG_ECDSA_LEN], *ml = malloc(PX_SIG_MLDSA_LEN);
    char *z1 = b64(zero, PX_SIG_ECDSA_LEN), *z2 = b64(zero, PX_SIG_MLDSA_LEN), *tmp, *out, detail[200];
    size_t cap = strlen(prefix) + 16384;
    px_buf_t base;

    tmp = malloc(cap);
    out = malloc(cap);
    assert_non_null(tmp);
    assert_non_null(out);
    snprintf(tmp, cap, "%s;sig=:%s:%s%s%s", prefix, z1, hybrid ? ";pq=:" : "", hybrid ? z2 : "",
             hybrid ? ":" : "");
    px_buf_init(&base, 0);
    px_sig_result_t r = px_sig_base_for(msg, tmp, strlen(tmp), &base, detail, sizeof detail);
    if (r != PX_SIG_OK)
        fail_msg("base: %s", detail);
    assert_int_equal(px_sig_signer_sign(s, (const uint8_t *)px_buf_ptr(&base), px_buf_size(&base),
                                        ec, ml), 0);
    free(z1);
    z1 = b64(ec, sizeof ec);
    free(z2);
    z2 = b64(ml, PX_SIG_MLDSA_LEN);
    snprintf(out, cap, "%s;sig=:%s:%s%s%s", prefix, z1, hybrid ? ";pq=:" : "", hybrid ? z2 : "",
             hybrid ? ":" : "");
    px_buf_free(&base);
    free(z1);
    free(z2);
    free(tmp);
    free(ml);
    return out;
}

#define STD_COMPS "(\"@method\" \"@authority\" \"@path\" \"@query\" \"content-digest\")"

static char *std_prefix(const char *comps, long long created, long long expires, const char *nonce,
                        const char *keyid, const char *alg)
{
    char *p = malloc(1024);
    assert_non_null(p);
    snprintf(p, 1024, "sig1=%s;created=%lld;expires=%lld;nonce=\"%s\";keyid=\"%s\";alg=\"%s\"",
             comps, created, expires, nonce, keyid, alg);
    return p;
}

/* A request with Content-Digest of the vector body and X-Signature `xsig`. */
static void req_with(fx_hdrs_t *hs, px_sig_msg_t *m, const char *xsig)
{
    char cd[80];
    memset(hs, 0, sizeof *hs);
    assert_int_equal(px_content_digest(body, body_len, cd, sizeof cd), 0);
    fx_hdr_add(hs, "Content-Type", "application/json");
    fx_hdr_add(hs, "Content-Digest", cd);
    if (xsig)
        fx_hdr_add(hs, "X-Signature", xsig);
    fx_request(m, hs);
}

/* Verifies (fresh replay cache unless given) and returns the result. */
static px_sig_result_t verify_at(const px_sig_msg_t *m, int64_t now, px_replay_t *rc,
                                 px_sig_info_t *info)
{
    px_sig_info_t local;
    return px_sig_verify_request(ring, rc, &pol, m, now, info ? info : &local);
}

/* A fresh validly signed request header with the given nonce. */
static char *signed_std(const char *nonce, long long created)
{
    fx_hdrs_t hs;
    px_sig_msg_t m;
    char *p = std_prefix(STD_COMPS, created, created + 300, nonce, "client-a", PX_SIG_ALG_HYBRID);
    req_with(&hs, &m, NULL);
    char *x = make_sig(signer, &m, p, 1);
    fx_hdrs_free(&hs);
    free(p);
    return x;
}

/* --- vectors ------------------------------------------------------------------------------ */

static void check_base(const px_sig_msg_t *m, const char *xsig, const char *base_file)
{
    size_t blen;
    char *want = fx_read(base_file, &blen), detail[200];
    px_buf_t out;

    px_buf_init(&out, 0);
    px_sig_result_t r = px_sig_base_for(m, xsig, strlen(xsig), &out, detail, sizeof detail);
    if (r != PX_SIG_OK)
        fail_msg("%s: %s", base_file, detail);
    assert_int_equal(px_buf_size(&out), blen);
    assert_memory_equal(px_buf_ptr(&out), want, blen);
    px_buf_free(&out);
    free(want);
}

static void test_vector_request_base(void **state)
{
    fx_hdrs_t hs = { 0 }, hn = { 0 };
    px_sig_msg_t m;

    fx_hdrs_load(&hs, "request.headers");
    fx_request(&m, &hs);
    check_base(&m, fx_hdr(&hs, "X-Signature"), "request.base");
    fx_hdrs_load(&hn, "request-node.headers");
    fx_request(&m, &hn);
    check_base(&m, fx_hdr(&hn, "X-Signature"), "request-node.base");
    fx_hdrs_free(&hs);
    fx_hdrs_free(&hn);
}

static void test_vector_request_verify(void **state)
{
    const char *files[] = { "request.headers", "request-node.headers", "request-pair.headers" };
    const char *keyids[] = { "client-a", "node-a", "node-a" };
    px_replay_t *rc = px_replay_new(1024);

    for (int i = 0; i < 3; i++) {
        fx_hdrs_t hs = { 0 };
        px_sig_msg_t m;
        px_sig_info_t info;
        fx_hdrs_load(&hs, files[i]);
        fx_request(&m, &hs);
        px_sig_result_t r = verify_at(&m, V_NOW, rc, &info);
        if (r != PX_SIG_OK)
            fail_msg("%s: %s: %s", files[i], px_sig_result_name(r), info.detail);
        assert_string_equal(info.keyid, keyids[i]);
        assert_int_equal(info.created, V_CREATED);
        assert_int_equal(info.expires, V_CREATED + 300);
        assert_int_equal(info.digest_algs, PX_DIGEST_SHA256);
        assert_false(info.classical);
        px_digest_value_t d = fx_digest(body, body_len, info.digest_algs);
        assert_int_equal(px_content_digest_check(info.content_digest, info.content_digest_len, &d,
                                                 info.detail, sizeof info.detail), PX_SIG_OK);
        /* the same request again: a replay */
        assert_int_equal(verify_at(&m, V_NOW + 1, rc, &info), PX_SIG_REPLAYED);
        assert_int_equal(px_sig_http_error(PX_SIG_REPLAYED), PX_HERR_SIG_REPLAYED);
        fx_hdrs_free(&hs);
    }
    px_replay_free(rc);
}

static void response_msgs(fx_hdrs_t *req_h, px_sig_msg_t *req, fx_hdrs_t *resp_h,
                          px_sig_msg_t *resp, const char *file, int trailer, int status)
{
    memset(req_h, 0, sizeof *req_h);
    memset(resp_h, 0, sizeof *resp_h);
    fx_hdrs_load(req_h, "request.headers");
    fx_request(req, req_h);
    fx_hdrs_load(resp_h, file);
    memset(resp, 0, sizeof *resp);
    resp->status = status;
    if (trailer) {
        resp->trailers = resp_h->h;
        resp->trailer_count = resp_h->n;
    } else {
        resp->headers = resp_h->h;
        resp->header_count = resp_h->n;
    }
    resp->req = req;
}

static void test_vector_responses(void **state)
{
    const char *files[] = { "response.headers", "stream.trailers" };
    const char *bases[] = { "response.base", "stream.base" };
    const char *bodies[] = { "response.body", "stream.body" };

    for (int t = 0; t < 2; t++) {
        fx_hdrs_t qh, rh;
        px_sig_msg_t q, r;
        px_sig_info_t info;
        size_t bl;
        char *b = fx_read(bodies[t], &bl);

        response_msgs(&qh, &q, &rh, &r, files[t], t, 200);
        check_base(&r, fx_hdr(&rh, "X-Signature"), bases[t]);
        px_sig_result_t res = px_sig_verify_response(ring, &pol, &r, "pqproxy", V_NOW, &info);
        if (res != PX_SIG_OK)
            fail_msg("%s: %s", files[t], info.detail);
        px_digest_value_t d = fx_digest(b, bl, info.digest_algs);
        assert_int_equal(px_content_digest_check(info.content_digest, info.content_digest_len, &d,
                                                 NULL, 0), PX_SIG_OK);
        /* another status, another keyid expected, a body changed */
        r.status = 201;
        assert_int_equal(px_sig_verify_response(ring, &pol, &r, "pqproxy", V_NOW, &info),
                         PX_SIG_ECDSA);
        r.status = 200;
        assert_int_equal(px_sig_verify_response(ring, &pol, &r, "client-a", V_NOW, &info),
                         PX_SIG_UNKNOWN_KEY);
        d = fx_digest(b, bl - 1, PX_DIGEST_SHA256);
        assert_int_equal(px_content_digest_check(fx_hdr(&rh, "Content-Digest"),
                                                 strlen(fx_hdr(&rh, "Content-Digest")), &d, NULL, 0),
                         PX_SIG_DIGEST);
        /* bound to another request signature */
        char *other = signed_std("b3RoZXJyZXF1ZXN0bm9uY2U", V_CREATED);
        fx_hdr_set(&qh, "X-Signature", other);
        q.headers = qh.h;
        assert_int_equal(px_sig_verify_response(ring, &pol, &r, "pqproxy", V_NOW, &info),
                         PX_SIG_ECDSA);
        free(other);
        free(b);
        fx_hdrs_free(&qh);
        fx_hdrs_free(&rh);
    }
}

/* --- the response signing API --------------------------------------------------------------------- */

static void test_response_api(void **state)
{
    const char *reqsig = NULL;
    fx_hdrs_t qh = { 0 };
    px_sig_msg_t q;

    fx_hdrs_load(&qh, "request.headers");
    fx_request(&q, &qh);
    reqsig = fx_hdr(&qh, "X-Signature");
    for (int trailer = 0; trailer < 2; trailer++) {
        px_sig_response_t *r = px_sig_response_begin(proxy, 200, "x-signature", reqsig,
                                                     strlen(reqsig), trailer);
        px_buf_t cd, xs;
        fx_hdrs_t rh = { 0 };
        px_sig_msg_t m;
        px_sig_info_t info;
        const char *chunks[] = { "data: a\n\n", "data: b\n\n", "", "data: [DONE]\n\n" };

        assert_non_null(r);
        px_buf_init(&cd, 0);
        px_buf_init(&xs, 0);
        for (int i = 0; i < 4; i++)
            px_sig_response_update(r, chunks[i], strlen(chunks[i]));
        assert_int_equal(px_sig_response_finish(r, V_CREATED, 300, &cd, &xs), 0);
        px_sig_response_free(r);
        assert_int_equal(px_buf_append(&cd, "", 1), 0);
        assert_int_equal(px_buf_append(&xs, "", 1), 0);
        fx_hdr_add(&rh, "Content-Digest", px_buf_ptr(&cd));
        fx_hdr_add(&rh, "X-Signature", px_buf_ptr(&xs));
        assert_non_null(strstr(px_buf_ptr(&xs), trailer ? "\"content-digest\";tr \"x-signature\";req"
                                                        : "\"content-digest\" \"x-signature\";req"));
        memset(&m, 0, sizeof m);
        m.status = 200;
        m.req = &q;
        if (trailer) {
            m.trailers = rh.h;
            m.trailer_count = rh.n;
        } else {
            m.headers = rh.h;
            m.header_count = rh.n;
        }
        assert_int_equal(px_sig_verify_response(ring, &pol, &m, "pqproxy", V_NOW, &info), PX_SIG_OK);
        const char *all = "data: a\n\ndata: b\n\ndata: [DONE]\n\n";
        px_digest_value_t d = fx_digest(all, strlen(all), info.digest_algs);
        assert_int_equal(px_content_digest_check(info.content_digest, info.content_digest_len, &d,
                                                 NULL, 0), PX_SIG_OK);
        /* the trailer signature is not accepted as a head signature and vice versa */
        px_sig_msg_t swapped = m;
        swapped.headers = m.trailers;
        swapped.header_count = m.trailer_count;
        swapped.trailers = m.headers;
        swapped.trailer_count = m.header_count;
        assert_int_not_equal(px_sig_verify_response(ring, &pol, &swapped, "pqproxy", V_NOW, &info),
                             PX_SIG_OK);
        /* a client that sent a signature requires the ;req binding */
        px_sig_response_t *u = px_sig_response_begin(proxy, 200, NULL, NULL, 0, trailer);
        px_buf_reset(&cd);
        px_buf_reset(&xs);
        assert_int_equal(px_sig_response_finish(u, V_CREATED, 300, &cd, &xs), 0);
        px_sig_response_free(u);
        assert_int_equal(px_buf_append(&xs, "", 1), 0);
        assert_int_equal(px_buf_append(&cd, "", 1), 0);
        fx_hdr_set(&rh, "X-Signature", px_buf_ptr(&xs));
        fx_hdr_set(&rh, "Content-Digest", px_buf_ptr(&cd));
        if (trailer) m.trailers = rh.h; else m.headers = rh.h;
        assert_int_equal(px_sig_verify_response(ring, &pol, &m, "pqproxy", V_NOW, &info),
                         PX_SIG_MALFORMED);
        m.req = NULL; /* unsigned request: fine */
        assert_int_equal(px_sig_verify_response(ring, &pol, &m, "pqproxy", V_NOW, &info), PX_SIG_OK);
        px_buf_free(&cd);
        px_buf_free(&xs);
        fx_hdrs_free(&rh);
    }
    assert_null(px_sig_response_begin(proxy, 99, NULL, NULL, 0, 0));
    assert_null(px_sig_response_begin(proxy, 200, "content-type", "x", 1, 0));
    px_sig_response_free(NULL);
    fx_hdrs_free(&qh);
}

/* --- signing API round trip, policy --------------------------------------------------------------- */

static void test_sign_request_api(void **state)
{
    fx_hdrs_t hs;
    px_sig_msg_t m;
    px_buf_t out;
    px_sig_info_t info;
    const char *extra[] = { "content-type" };
    const char *required[] = { "content-type" };

    req_with(&hs, &m, NULL);
    px_buf_init(&out, 0);
    assert_int_equal(px_sig_sign_request(signer, &m, extra, 1, V_CREATED, 60, NULL, &out), 0);
    assert_int_equal(px_buf_append(&out, "", 1), 0);
    fx_hdr_add(&hs, "X-Signature", px_buf_ptr(&out));
    fx_request(&m, &hs);
    assert_int_equal(verify_at(&m, V_NOW, NULL, &info), PX_SIG_OK);
    assert_int_equal(strlen(info.nonce), 24);
    pol.required_headers = required;
    pol.required_count = 1;
    assert_int_equal(verify_at(&m, V_NOW, NULL, &info), PX_SIG_OK);
    fx_hdr_set(&hs, "Content-Type", "text/plain");
    assert_int_equal(verify_at(&m, V_NOW, NULL, &info), PX_SIG_ECDSA);
    px_sig_policy_default(&pol);
    /* a header the policy requires but the client did not cover */
    fx_hdrs_free(&hs);
    char *x = signed_std("cmVxdWlyZWRoZWFkZXJ0ZXN0", V_CREATED);
    req_with(&hs, &m, x);
    pol.required_headers = required;
    pol.required_count = 1;
    assert_int_equal(verify_at(&m, V_NOW, NULL, &info), PX_SIG_MALFORMED);
    assert_non_null(strstr(info.detail, "content-type"));
    px_sig_policy_default(&pol);
    /* invalid arguments */
    const char *bad[] = { "Content-Type" };
    assert_int_equal(px_sig_sign_request(signer, &m, bad, 1, V_CREATED, 60, NULL, &out), PX_EINVAL);
    assert_int_equal(px_sig_sign_request(signer, &m, NULL, 0, V_CREATED, 0, NULL, &out), PX_EINVAL);
    assert_int_equal(px_sig_sign_request(signer, &m, NULL, 0, V_CREATED, 60, "short", &out), PX_EINVAL);
    free(x);
    px_buf_free(&out);
    fx_hdrs_free(&hs);
}

/* --- failure reasons ------------------------------------------------------------------------------- */

static void test_missing(void **state)
{
    fx_hdrs_t hs;
    px_sig_msg_t m;
    px_sig_info_t info;
    req_with(&hs, &m, NULL);
    assert_int_equal(verify_at(&m, V_NOW, NULL, &info), PX_SIG_MISSING);
    assert_int_equal(px_sig_http_error(PX_SIG_MISSING), PX_HERR_SIG_MISSING);
    assert_int_equal(px_http_error_status(px_sig_http_error(PX_SIG_MISSING)), 401);
    fx_hdrs_free(&hs);
}

/* Malformed X-Signature values, derived from a valid one by textual edits. */
static void test_malformed(void **state)
{
    char *good = signed_std("bWFsZm9ybWVkdGVzdG5vbmNl", V_CREATED);
    const char *sig_at = strstr(good, ";sig=:");
    char prefix[1024], sigs[7000];
    struct { const char *what, *value; } cases[64];
    char store[64][17000];
    int n = 0;

    snprintf(prefix, sizeof prefix, "%.*s", (int)(sig_at - good), good);
    snprintf(sigs, sizeof sigs, "%s", sig_at);
#define CASE(w, ...) do { snprintf(store[n], sizeof store[n], __VA_ARGS__); cases[n].what = w; \
                          cases[n].value = store[n]; n++; } while (0)
    const char *pq_at = strstr(sigs, ";pq=:");
    CASE("empty", " ");
    CASE("not a dictionary", "hello world");
    CASE("no inner list", "sig1=\"x\"%s", sigs);
    CASE("two signatures", "%s%s, sig2=%s", prefix, sigs, strchr(good, '(') );
    CASE("trailing comma", "%s%s,", prefix, sigs);
    CASE("unknown parameter", "%s;foo=1%s", prefix, sigs);
    CASE("duplicate parameter", "%s;created=%lld%s", prefix, V_CREATED, sigs);
    CASE("no sig", "%s%s", prefix, pq_at);
    CASE("no pq", "%s%.*s", prefix, (int)(pq_at - sigs), sigs);
    CASE("sig not bytes", "%s;sig=\"abc\"%s", prefix, pq_at);
    CASE("sig short", "%s;sig=:AAAA:%s", prefix, pq_at);
    CASE("sig bad base64", "%s;sig=:A@AA:%s", prefix, pq_at);
    CASE("sig unpadded", "%s;sig=:%.*s:%s", prefix, 127, sigs + 6, pq_at);
    CASE("pq short", "%s%.*s;pq=:AAAA:", prefix, (int)(pq_at - sigs), sigs);
    CASE("unterminated bytes", "%s%.*s;pq=:AAAA", prefix, (int)(pq_at - sigs), sigs);
    CASE("alg unknown", "sig1=" STD_COMPS ";created=%lld;expires=%lld;nonce=\"bWFsZm9ybWVkdGVzdG5vbmNl\";keyid=\"client-a\";alg=\"rsa-pss-sha512\"%s", V_CREATED, V_CREATED + 300, sigs);
    CASE("alg token", "sig1=" STD_COMPS ";created=%lld;expires=%lld;nonce=\"bWFsZm9ybWVkdGVzdG5vbmNl\";keyid=\"client-a\";alg=ecdsa%s", V_CREATED, V_CREATED + 300, sigs);
    CASE("no created", "sig1=" STD_COMPS ";expires=%lld;nonce=\"bWFsZm9ybWVkdGVzdG5vbmNl\";keyid=\"client-a\";alg=\"%s\"%s", V_CREATED + 300, PX_SIG_ALG_HYBRID, sigs);
    CASE("no nonce", "sig1=" STD_COMPS ";created=%lld;expires=%lld;keyid=\"client-a\";alg=\"%s\"%s", V_CREATED, V_CREATED + 300, PX_SIG_ALG_HYBRID, sigs);
    CASE("nonce short", "sig1=" STD_COMPS ";created=%lld;expires=%lld;nonce=\"abc\";keyid=\"client-a\";alg=\"%s\"%s", V_CREATED, V_CREATED + 300, PX_SIG_ALG_HYBRID, sigs);
    CASE("nonce bad chars", "sig1=" STD_COMPS ";created=%lld;expires=%lld;nonce=\"abc+def/ghi=jklmnop\";keyid=\"client-a\";alg=\"%s\"%s", V_CREATED, V_CREATED + 300, PX_SIG_ALG_HYBRID, sigs);
    CASE("keyid bad", "sig1=" STD_COMPS ";created=%lld;expires=%lld;nonce=\"bWFsZm9ybWVkdGVzdG5vbmNl\";keyid=\"../etc\";alg=\"%s\"%s", V_CREATED, V_CREATED + 300, PX_SIG_ALG_HYBRID, sigs);
    CASE("keyid escape", "sig1=" STD_COMPS ";created=%lld;expires=%lld;nonce=\"bWFsZm9ybWVkdGVzdG5vbmNl\";keyid=\"a\\\"b\";alg=\"%s\"%s", V_CREATED, V_CREATED + 300, PX_SIG_ALG_HYBRID, sigs);
    CASE("created string", "sig1=" STD_COMPS ";created=\"1\";expires=%lld;nonce=\"bWFsZm9ybWVkdGVzdG5vbmNl\";keyid=\"client-a\";alg=\"%s\"%s", V_CREATED + 300, PX_SIG_ALG_HYBRID, sigs);
    CASE("created decimal", "sig1=" STD_COMPS ";created=1.5;expires=%lld;nonce=\"bWFsZm9ybWVkdGVzdG5vbmNl\";keyid=\"client-a\";alg=\"%s\"%s", V_CREATED + 300, PX_SIG_ALG_HYBRID, sigs);
    CASE("created negative", "sig1=" STD_COMPS ";created=-5;expires=%lld;nonce=\"bWFsZm9ybWVkdGVzdG5vbmNl\";keyid=\"client-a\";alg=\"%s\"%s", V_CREATED + 300, PX_SIG_ALG_HYBRID, sigs);
    CASE("integer too long", "sig1=" STD_COMPS ";created=1234567890123456;expires=%lld;nonce=\"bWFsZm9ybWVkdGVzdG5vbmNl\";keyid=\"client-a\";alg=\"%s\"%s", V_CREATED + 300, PX_SIG_ALG_HYBRID, sigs);
    CASE("expires before created", "sig1=" STD_COMPS ";created=%lld;expires=%lld;nonce=\"bWFsZm9ybWVkdGVzdG5vbmNl\";keyid=\"client-a\";alg=\"%s\"%s", V_CREATED, V_CREATED, PX_SIG_ALG_HYBRID, sigs);
    CASE("window too long", "sig1=" STD_COMPS ";created=%lld;expires=%lld;nonce=\"bWFsZm9ybWVkdGVzdG5vbmNl\";keyid=\"client-a\";alg=\"%s\"%s", V_CREATED, V_CREATED + 301, PX_SIG_ALG_HYBRID, sigs);
    CASE("@query not covered", "sig1=(\"@method\" \"@authority\" \"@path\" \"content-digest\");created=%lld;expires=%lld;nonce=\"bWFsZm9ybWVkdGVzdG5vbmNl\";keyid=\"client-a\";alg=\"%s\"%s", V_CREATED, V_CREATED + 300, PX_SIG_ALG_HYBRID, sigs);
    CASE("content-digest not covered", "sig1=(\"@method\" \"@authority\" \"@path\" \"@query\");created=%lld;expires=%lld;nonce=\"bWFsZm9ybWVkdGVzdG5vbmNl\";keyid=\"client-a\";alg=\"%s\"%s", V_CREATED, V_CREATED + 300, PX_SIG_ALG_HYBRID, sigs);
    CASE("unknown derived component", "sig1=(\"@method\" \"@authority\" \"@path\" \"@query\" \"content-digest\" \"@foo\");created=%lld;expires=%lld;nonce=\"bWFsZm9ybWVkdGVzdG5vbmNl\";keyid=\"client-a\";alg=\"%s\"%s", V_CREATED, V_CREATED + 300, PX_SIG_ALG_HYBRID, sigs);
    CASE("uppercase field", "sig1=(\"@method\" \"@authority\" \"@path\" \"@query\" \"Content-Digest\");created=%lld;expires=%lld;nonce=\"bWFsZm9ybWVkdGVzdG5vbmNl\";keyid=\"client-a\";alg=\"%s\"%s", V_CREATED, V_CREATED + 300, PX_SIG_ALG_HYBRID, sigs);
    CASE("duplicate component", "sig1=(\"@method\" \"@method\" \"@authority\" \"@path\" \"@query\" \"content-digest\");created=%lld;expires=%lld;nonce=\"bWFsZm9ybWVkdGVzdG5vbmNl\";keyid=\"client-a\";alg=\"%s\"%s", V_CREATED, V_CREATED + 300, PX_SIG_ALG_HYBRID, sigs);
    CASE("component token", "sig1=(@method \"@authority\" \"@path\" \"@query\" \"content-digest\");created=%lld;expires=%lld;nonce=\"bWFsZm9ybWVkdGVzdG5vbmNl\";keyid=\"client-a\";alg=\"%s\"%s", V_CREATED, V_CREATED + 300, PX_SIG_ALG_HYBRID, sigs);
    CASE("component param", "sig1=(\"@method\";bs \"@authority\" \"@path\" \"@query\" \"content-digest\");created=%lld;expires=%lld;nonce=\"bWFsZm9ybWVkdGVzdG5vbmNl\";keyid=\"client-a\";alg=\"%s\"%s", V_CREATED, V_CREATED + 300, PX_SIG_ALG_HYBRID, sigs);
    CASE(";req in a request", "sig1=(\"@method\";req \"@method\" \"@authority\" \"@path\" \"@query\" \"content-digest\");created=%lld;expires=%lld;nonce=\"bWFsZm9ybWVkdGVzdG5vbmNl\";keyid=\"client-a\";alg=\"%s\"%s", V_CREATED, V_CREATED + 300, PX_SIG_ALG_HYBRID, sigs);
    CASE("@status in a request", "sig1=(\"@status\" \"@method\" \"@authority\" \"@path\" \"@query\" \"content-digest\");created=%lld;expires=%lld;nonce=\"bWFsZm9ybWVkdGVzdG5vbmNl\";keyid=\"client-a\";alg=\"%s\"%s", V_CREATED, V_CREATED + 300, PX_SIG_ALG_HYBRID, sigs);
    CASE("covers itself", "sig1=(\"x-signature\" \"@method\" \"@authority\" \"@path\" \"@query\" \"content-digest\");created=%lld;expires=%lld;nonce=\"bWFsZm9ybWVkdGVzdG5vbmNl\";keyid=\"client-a\";alg=\"%s\"%s", V_CREATED, V_CREATED + 300, PX_SIG_ALG_HYBRID, sigs);
    CASE("covered field absent", "sig1=(\"@method\" \"@authority\" \"@path\" \"@query\" \"content-digest\" \"x-absent\");created=%lld;expires=%lld;nonce=\"bWFsZm9ybWVkdGVzdG5vbmNl\";keyid=\"client-a\";alg=\"%s\"%s", V_CREATED, V_CREATED + 300, PX_SIG_ALG_HYBRID, sigs);
    CASE("17 components", "sig1=(\"@method\" \"@authority\" \"@path\" \"@query\" \"content-digest\" \"a\" \"b\" \"c\" \"d\" \"e\" \"f\" \"g\" \"h\" \"i\" \"j\" \"k\" \"l\");created=%lld;expires=%lld;nonce=\"bWFsZm9ybWVkdGVzdG5vbmNl\";keyid=\"client-a\";alg=\"%s\"%s", V_CREATED, V_CREATED + 300, PX_SIG_ALG_HYBRID, sigs);
    CASE("unterminated string", "sig1=" STD_COMPS ";created=%lld;expires=%lld;nonce=\"bWFsZm9ybWVkdGVzdG5vbmNl", V_CREATED, V_CREATED + 300);
    CASE("unterminated inner list", "sig1=(\"@method\" \"@authority\"");
    CASE("control char", "sig1=" STD_COMPS ";created=%lld;expires=%lld;nonce=\"bWFsZm9ybWVk\tdGVzdG5vbmNl\";keyid=\"client-a\";alg=\"%s\"%s", V_CREATED, V_CREATED + 300, PX_SIG_ALG_HYBRID, sigs);
    CASE("uppercase label", "SIG1=" STD_COMPS ";created=%lld%s", V_CREATED, sigs);
    CASE("classical without the policy", "sig1=" STD_COMPS ";created=%lld;expires=%lld;nonce=\"bWFsZm9ybWVkdGVzdG5vbmNl\";keyid=\"client-a\";alg=\"%s\"%.*s", V_CREATED, V_CREATED + 300, PX_SIG_ALG_CLASSICAL, (int)(pq_at - sigs), sigs);
    CASE("pq with classical alg", "sig1=" STD_COMPS ";created=%lld;expires=%lld;nonce=\"bWFsZm9ybWVkdGVzdG5vbmNl\";keyid=\"client-a\";alg=\"%s\"%s", V_CREATED, V_CREATED + 300, PX_SIG_ALG_CLASSICAL, sigs);
#undef CASE
    for (int i = 0; i < n; i++) {
        fx_hdrs_t hs;
        px_sig_msg_t m;
        px_sig_info_t info;
        req_with(&hs, &m, cases[i].value);
        px_sig_result_t r = verify_at(&m, V_NOW, NULL, &info);
        if (r != PX_SIG_MALFORMED)
            fail_msg("case '%s': expected malformed, got %s (%s)", cases[i].what,
                     px_sig_result_name(r), info.detail);
        assert_true(info.detail[0] != '\0');
        fx_hdrs_free(&hs);
    }
    /* longer than 8192 bytes */
    {
        char *big = malloc(9000);
        fx_hdrs_t hs;
        px_sig_msg_t m;
        memset(big, 'a', 8999);
        big[8999] = '\0';
        memcpy(big, "sig1=(", 6);
        req_with(&hs, &m, big);
        assert_int_equal(verify_at(&m, V_NOW, NULL, NULL), PX_SIG_MALFORMED);
        fx_hdrs_free(&hs);
        free(big);
    }
    /* field-level problems */
    {
        fx_hdrs_t hs;
        px_sig_msg_t m;
        req_with(&hs, &m, good);
        fx_hdr_add(&hs, "X-Signature", good);
        fx_request(&m, &hs);
        assert_int_equal(verify_at(&m, V_NOW, NULL, NULL), PX_SIG_MALFORMED);   /* twice */
        fx_hdrs_free(&hs);
        req_with(&hs, &m, good);
        fx_hdr_add(&hs, "Signature-Input", "sig1=" STD_COMPS);
        fx_request(&m, &hs);
        assert_int_equal(verify_at(&m, V_NOW, NULL, NULL), PX_SIG_MALFORMED);   /* both forms */
        fx_hdrs_free(&hs);
        req_with(&hs, &m, NULL);
        fx_hdr_add(&hs, "Signature-Input", "sig1=" STD_COMPS);
        fx_request(&m, &hs);
        assert_int_equal(verify_at(&m, V_NOW, NULL, NULL), PX_SIG_MALFORMED);   /* half a pair */
        fx_hdrs_free(&hs);
        req_with(&hs, &m, good);
        fx_hdr_add(&hs, "Content-Digest", "sha-256=:AAAA:");
        fx_request(&m, &hs);
        assert_int_equal(verify_at(&m, V_NOW, NULL, NULL), PX_SIG_MALFORMED);   /* two digests */
        fx_hdrs_free(&hs);
    }
    free(good);
}

/* A covered field value with a control character (other than HTAB) never
 * enters a signature base, wherever it sits in a long value. */
static void test_base_control_chars(void **state)
{
    static uint8_t zero[PX_SIG_MLDSA_LEN];
    char *z1 = b64(zero, PX_SIG_ECDSA_LEN), *z2 = b64(zero, PX_SIG_MLDSA_LEN), *field, detail[200];
    char *val = malloc(7001);
    struct { size_t at; char c; px_sig_result_t want; } cases[] = {
        { 0, '\t', PX_SIG_OK }, { 0, 'a', PX_SIG_OK }, { 0, '\x01', PX_SIG_MALFORMED },
        { 3, '\x7f', PX_SIG_MALFORMED }, { 6998, '\x1f', PX_SIG_MALFORMED },
        { 6999, '\x7f', PX_SIG_MALFORMED }, { 4000, '\x80', PX_SIG_OK },
    };
    (void)state;
    assert_non_null(val);
    assert_non_null(field = malloc(16384));
    snprintf(field, 16384, "sig1=(\"x-meta\");created=1;expires=2;nonce=\"bWFsZm9ybWVkdGVzdG5vbmNl\";"
             "keyid=\"client-a\";alg=\"%s\";sig=:%s:;pq=:%s:", PX_SIG_ALG_HYBRID, z1, z2);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fx_hdrs_t hs;
        px_sig_msg_t m;
        px_buf_t base;
        memset(val, 'v', 7000);
        val[7000] = '\0';
        val[cases[i].at] = cases[i].c;
        req_with(&hs, &m, NULL);
        fx_hdr_add(&hs, "X-Meta", val);
        fx_request(&m, &hs);
        px_buf_init(&base, 0);
        detail[0] = '\0';
        px_sig_result_t r = px_sig_base_for(&m, field, strlen(field), &base, detail, sizeof detail);
        if (r != cases[i].want)
            fail_msg("case %zu: %s (%s)", i, px_sig_result_name(r), detail);
        if (r != PX_SIG_OK)
            assert_non_null(strstr(detail, "control characters"));
        px_buf_free(&base);
        fx_hdrs_free(&hs);
    }
    free(val);
    free(field);
    free(z1);
    free(z2);
}

/* The crypto pool follows a Kubernetes CPU limit, not the node's cores. */
static void test_cpu_quota(void **state)
{
    (void)state;
    assert_int_equal(px_cpu_quota_parse("200000 100000\n"), 2);
    assert_int_equal(px_cpu_quota_parse("150000 100000"), 2);      /* 1.5 CPUs: rounded up */
    assert_int_equal(px_cpu_quota_parse("50000 100000"), 1);
    assert_int_equal(px_cpu_quota_parse("max 100000\n"), 0);       /* no limit */
    assert_int_equal(px_cpu_quota_parse(""), 0);
    assert_int_equal(px_cpu_quota_parse("100000 0"), 0);
    assert_int_equal(px_cpu_quota_parse(NULL), 0);
    assert_true(px_cpu_count() >= 1);
    assert_true(px_cpu_count() <= uv_available_parallelism());
}

static void test_pair_malformed(void **state)
{
    fx_hdrs_t hs = { 0 };
    px_sig_msg_t m;
    char *sg, *pq, *in;
    char buf[16384];

    fx_hdrs_load(&hs, "request-pair.headers");
    fx_request(&m, &hs);
    assert_int_equal(verify_at(&m, V_NOW, NULL, NULL), PX_SIG_OK);
    in = strdup(fx_hdr(&hs, "Signature-Input")); /* fx_hdr_set frees the original */
    sg = strdup(fx_hdr(&hs, "Signature"));
    pq = strstr(sg, ", sig1-pq=");
    assert_non_null(pq);
    /* without the pq member, with an extra member, label mismatch, sig in Signature-Input */
    snprintf(buf, sizeof buf, "%.*s", (int)(pq - sg), sg);
    fx_hdr_set(&hs, "Signature", buf);
    assert_int_equal(verify_at(&m, V_NOW, NULL, NULL), PX_SIG_MALFORMED);
    snprintf(buf, sizeof buf, "%s, other=:AAAA:", sg);
    fx_hdr_set(&hs, "Signature", buf);
    assert_int_equal(verify_at(&m, V_NOW, NULL, NULL), PX_SIG_MALFORMED);
    snprintf(buf, sizeof buf, "sig2%s", sg + 4);
    fx_hdr_set(&hs, "Signature", buf);
    assert_int_equal(verify_at(&m, V_NOW, NULL, NULL), PX_SIG_MALFORMED);
    fx_hdr_set(&hs, "Signature", sg);
    snprintf(buf, sizeof buf, "%s;sig=:AAAA:", in);
    fx_hdr_set(&hs, "Signature-Input", buf);
    assert_int_equal(verify_at(&m, V_NOW, NULL, NULL), PX_SIG_MALFORMED);
    /* tampered pq member */
    fx_hdr_set(&hs, "Signature-Input", in);
    pq[20] = pq[20] == 'A' ? 'B' : 'A';
    fx_hdr_set(&hs, "Signature", sg);
    assert_int_equal(verify_at(&m, V_NOW, NULL, NULL), PX_SIG_MLDSA);
    free(sg);
    free(in);
    fx_hdrs_free(&hs);
}

/* The label (the dictionary key) is at most PX_SIG_MAX_LABEL characters in
 * both forms (docs/signatures.md section 2); it is not signed, so renaming
 * it keeps the signature valid. */
static void test_label_length(void **state)
{
    char lab[PX_SIG_MAX_LABEL + 2], buf[16384], sbuf[16384];
    fx_hdrs_t hs;
    px_sig_msg_t m;

    for (int len = PX_SIG_MAX_LABEL; len <= PX_SIG_MAX_LABEL + 1; len++) {
        px_sig_result_t want = len <= PX_SIG_MAX_LABEL ? PX_SIG_OK : PX_SIG_MALFORMED;
        memset(lab, 'l', (size_t)len);
        lab[len] = '\0';
        char *good = signed_std("bGFiZWxsZW5ndGhub25jZTAx", V_CREATED);
        snprintf(buf, sizeof buf, "%s%s", lab, strchr(good, '='));
        req_with(&hs, &m, buf);
        px_sig_info_t inf;
        px_sig_result_t got = verify_at(&m, V_NOW, NULL, &inf);
        if (got != want)
            fail_msg("X-Signature label of %d characters: %s (%s)", len, px_sig_result_name(got),
                     inf.detail);
        fx_hdrs_free(&hs);
        free(good);

        memset(&hs, 0, sizeof hs);
        fx_hdrs_load(&hs, "request-pair.headers");
        fx_request(&m, &hs);
        char *in = strdup(fx_hdr(&hs, "Signature-Input")), *sg = strdup(fx_hdr(&hs, "Signature"));
        char *pq = strstr(sg, ", sig1-pq=");
        assert_non_null(pq);
        snprintf(buf, sizeof buf, "%s%s", lab, in + 4);
        snprintf(sbuf, sizeof sbuf, "%s%.*s, %s%s", lab, (int)(pq - sg - 4), sg + 4, lab, pq + 6);
        fx_hdr_set(&hs, "Signature-Input", buf);
        fx_hdr_set(&hs, "Signature", sbuf);
        assert_int_equal(verify_at(&m, V_NOW, NULL, NULL), want);
        free(in);
        free(sg);
        fx_hdrs_free(&hs);
    }
}

static void test_unknown_keyid(void **state)
{
    fx_hdrs_t hs;
    px_sig_msg_t m;
    px_sig_info_t info;
    char *p = std_prefix(STD_COMPS, V_CREATED, V_CREATED + 300, "dW5rbm93bmtleWlkbm9uY2U", "nobody",
                         PX_SIG_ALG_HYBRID);
    req_with(&hs, &m, NULL);
    char *x = make_sig(signer, &m, p, 1);
    fx_hdrs_free(&hs);
    req_with(&hs, &m, x);
    assert_int_equal(verify_at(&m, V_NOW, NULL, &info), PX_SIG_UNKNOWN_KEY);
    assert_string_equal(info.keyid, "nobody");
    assert_int_equal(px_http_error_status(px_sig_http_error(PX_SIG_UNKNOWN_KEY)), 401);
    fx_hdrs_free(&hs);
    free(p);
    free(x);
}

static void test_time_window(void **state)
{
    fx_hdrs_t hs;
    px_sig_msg_t m;
    char *x = signed_std("dGltZXdpbmRvd3Rlc3Rub25jZQ", V_CREATED);

    req_with(&hs, &m, x);
    /* valid: [created - skew, expires + skew) */
    assert_int_equal(verify_at(&m, V_CREATED - 30, NULL, NULL), PX_SIG_OK);
    assert_int_equal(verify_at(&m, V_CREATED - 31, NULL, NULL), PX_SIG_NOT_YET_VALID);
    assert_int_equal(verify_at(&m, V_CREATED + 329, NULL, NULL), PX_SIG_OK);
    assert_int_equal(verify_at(&m, V_CREATED + 330, NULL, NULL), PX_SIG_EXPIRED);
    assert_int_equal(verify_at(&m, V_CREATED + 86400, NULL, NULL), PX_SIG_EXPIRED);
    assert_int_equal(px_sig_http_error(PX_SIG_NOT_YET_VALID), PX_HERR_SIG_EXPIRED);
    pol.max_skew_s = 0;
    assert_int_equal(verify_at(&m, V_CREATED - 1, NULL, NULL), PX_SIG_NOT_YET_VALID);
    assert_int_equal(verify_at(&m, V_CREATED + 300, NULL, NULL), PX_SIG_EXPIRED);
    pol.max_validity_s = 299;
    assert_int_equal(verify_at(&m, V_CREATED + 10, NULL, NULL), PX_SIG_MALFORMED);
    px_sig_policy_default(&pol);
    fx_hdrs_free(&hs);
    free(x);
}

static void test_replayed(void **state)
{
    px_replay_t *rc = px_replay_new(4096);
    fx_hdrs_t hs;
    px_sig_msg_t m;
    char *x = signed_std("cmVwbGF5dGVzdG5vbmNlMDAx", V_CREATED), *y;
    px_sig_stats_t stats = { 0 };

    pol.stats = &stats;
    req_with(&hs, &m, x);
    assert_int_equal(verify_at(&m, V_NOW, rc, NULL), PX_SIG_OK);
    assert_int_equal(verify_at(&m, V_NOW, rc, NULL), PX_SIG_REPLAYED);
    assert_int_equal(verify_at(&m, V_NOW + 100, rc, NULL), PX_SIG_REPLAYED);
    /* past expires + skew it is expired, not replayed */
    assert_int_equal(verify_at(&m, V_CREATED + 330, rc, NULL), PX_SIG_EXPIRED);
    fx_hdrs_free(&hs);
    /* a failed signature does not burn the nonce */
    y = signed_std("cmVwbGF5dGVzdG5vbmNlMDAy", V_CREATED);
    char *t = strdup(y);
    char *s = strstr(t, ";sig=:") + 10;
    *s = *s == 'A' ? 'B' : 'A';
    req_with(&hs, &m, t);
    assert_int_equal(verify_at(&m, V_NOW, rc, NULL), PX_SIG_ECDSA);
    fx_hdrs_free(&hs);
    req_with(&hs, &m, y);
    assert_int_equal(verify_at(&m, V_NOW, rc, NULL), PX_SIG_OK);
    assert_int_equal(stats.result[PX_SIG_OK], 2);
    assert_int_equal(stats.result[PX_SIG_REPLAYED], 2);
    assert_int_equal(stats.result[PX_SIG_ECDSA], 1);
    assert_int_equal(stats.classical, 0);
    px_sig_policy_default(&pol);
    fx_hdrs_free(&hs);
    free(t);
    free(x);
    free(y);
    px_replay_free(rc);
}

static void test_tampered(void **state)
{
    char *x = signed_std("dGFtcGVyZWR0ZXN0bm9uY2U", V_CREATED);
    fx_hdrs_t hs;
    px_sig_msg_t m;
    char *t;

    /* every covered component */
    req_with(&hs, &m, x);
    assert_int_equal(verify_at(&m, V_NOW, NULL, NULL), PX_SIG_OK);
    m.method = "PUT"; m.method_len = 3;
    assert_int_equal(verify_at(&m, V_NOW, NULL, NULL), PX_SIG_ECDSA);
    fx_request(&m, &hs);
    m.authority = "evil.example"; m.authority_len = 12;
    assert_int_equal(verify_at(&m, V_NOW, NULL, NULL), PX_SIG_ECDSA);
    fx_request(&m, &hs);
    m.authority = "MODEL.example:443"; m.authority_len = 17;   /* normalised: same */
    assert_int_equal(verify_at(&m, V_NOW, NULL, NULL), PX_SIG_OK);
    m.authority = "model.example:8443"; m.authority_len = 18;
    assert_int_equal(verify_at(&m, V_NOW, NULL, NULL), PX_SIG_ECDSA);
    fx_request(&m, &hs);
    m.target = "/v1/models/other:predict"; m.target_len = strlen(m.target);
    assert_int_equal(verify_at(&m, V_NOW, NULL, NULL), PX_SIG_ECDSA);
    m.target = V_TARGET "?debug=1"; m.target_len = strlen(m.target);
    assert_int_equal(verify_at(&m, V_NOW, NULL, NULL), PX_SIG_ECDSA);
    m.target = V_TARGET "?"; m.target_len = strlen(m.target);  /* empty query == no query */
    assert_int_equal(verify_at(&m, V_NOW, NULL, NULL), PX_SIG_OK);
    fx_hdr_set(&hs, "Content-Digest", "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:");
    fx_request(&m, &hs);
    assert_int_equal(verify_at(&m, V_NOW, NULL, NULL), PX_SIG_ECDSA);
    fx_hdrs_free(&hs);

    /* ECDSA only / ML-DSA only */
    t = strdup(x);
    char *e = strstr(t, ";sig=:") + 20;
    *e = *e == 'A' ? 'B' : 'A';
    req_with(&hs, &m, t);
    assert_int_equal(verify_at(&m, V_NOW, NULL, NULL), PX_SIG_ECDSA);
    fx_hdrs_free(&hs);
    free(t);
    t = strdup(x);
    char *q = strstr(t, ";pq=:") + 1000;
    *q = *q == 'A' ? 'B' : 'A';
    req_with(&hs, &m, t);
    assert_int_equal(verify_at(&m, V_NOW, NULL, NULL), PX_SIG_MLDSA);
    assert_int_equal(px_sig_http_error(PX_SIG_MLDSA), PX_HERR_SIG_MLDSA);
    fx_hdrs_free(&hs);
    free(t);

    /* a valid ECDSA signature with the ML-DSA signature of another request */
    char *other = signed_std("b3RoZXJub25jZWZvcm1sZHNh", V_CREATED);
    t = malloc(strlen(x) + 1);
    size_t keep = (size_t)(strstr(x, ";pq=:") - x);
    memcpy(t, x, keep);
    strcpy(t + keep, strstr(other, ";pq=:"));
    req_with(&hs, &m, t);
    assert_int_equal(verify_at(&m, V_NOW, NULL, NULL), PX_SIG_MLDSA);
    fx_hdrs_free(&hs);
    free(t);
    free(other);

    /* signed by node-a's keys but claiming client-a */
    fx_hdrs_t nh = { 0 };
    fx_hdrs_load(&nh, "request-node.headers");
    const char *nx = fx_hdr(&nh, "X-Signature");
    size_t pre = (size_t)(strstr(nx, "keyid=\"node-a\"") - nx);
    t = malloc(strlen(nx) + 8);
    sprintf(t, "%.*skeyid=\"client-a\"%s", (int)pre, nx, strstr(nx, "keyid=\"node-a\"") + 14);
    fx_hdr_set(&nh, "X-Signature", t);
    fx_request(&m, &nh);
    assert_int_equal(verify_at(&m, V_NOW, NULL, NULL), PX_SIG_ECDSA);
    fx_hdrs_free(&nh);
    free(t);
    free(x);
}

static void test_classical_policy(void **state)
{
    fx_hdrs_t hs;
    px_sig_msg_t m;
    px_sig_info_t info;
    px_sig_stats_t stats = { 0 };
    char *p = std_prefix(STD_COMPS, V_CREATED, V_CREATED + 300, "Y2xhc3NpY2Fsb25seW5vbmNl", "client-a",
                         PX_SIG_ALG_CLASSICAL);
    req_with(&hs, &m, NULL);
    char *x = make_sig(signer, &m, p, 0);
    fx_hdrs_free(&hs);
    req_with(&hs, &m, x);
    assert_int_equal(verify_at(&m, V_NOW, NULL, &info), PX_SIG_MALFORMED);  /* off by default */
    pol.allow_classical = 1;
    pol.stats = &stats;
    assert_int_equal(verify_at(&m, V_NOW, NULL, &info), PX_SIG_OK);
    assert_true(info.classical);
    assert_int_equal(stats.classical, 1);
    /* hybrid requests are still fully checked under the classical policy */
    char *h = signed_std("aHlicmlkdW5kZXJjbGFzc2ljYWw", V_CREATED);
    char *q = strstr(h, ";pq=:") + 100;
    *q = *q == 'A' ? 'B' : 'A';
    fx_hdrs_free(&hs);
    req_with(&hs, &m, h);
    assert_int_equal(verify_at(&m, V_NOW, NULL, &info), PX_SIG_MLDSA);
    assert_int_equal(stats.classical, 1);
    px_sig_policy_default(&pol);
    fx_hdrs_free(&hs);
    free(p);
    free(x);
    free(h);
}

/* --- Content-Digest ------------------------------------------------------------------------------ */

static void test_content_digest(void **state)
{
    char cd[80], detail[200];
    px_digest_value_t v, v2;
    px_digest_t d;

    assert_int_equal(px_content_digest("", 0, cd, sizeof cd), 0);
    assert_string_equal(cd, "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:");
    /* RFC 9530 appendix example: {"hello": "world"} */
    assert_int_equal(px_content_digest("{\"hello\": \"world\"}", 18, cd, sizeof cd), 0);
    assert_string_equal(cd, "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:");
    /* streaming == one shot */
    v = fx_digest(body, body_len, PX_DIGEST_SHA256 | PX_DIGEST_SHA512);
    assert_int_equal(px_digest_init(&d, PX_DIGEST_SHA256 | PX_DIGEST_SHA512), 0);
    for (size_t i = 0; i < body_len; i++)
        px_digest_update(&d, body + i, 1);
    px_digest_final(&d, &v2);
    assert_memory_equal(&v, &v2, sizeof v);
    const char *sha512 = "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:";
    px_digest_value_t h = fx_digest("{\"hello\": \"world\"}", 18, PX_DIGEST_SHA256 | PX_DIGEST_SHA512);
    assert_int_equal(px_content_digest_algs(sha512, strlen(sha512)), PX_DIGEST_SHA512);
    assert_int_equal(px_content_digest_check(sha512, strlen(sha512), &h, detail, sizeof detail), PX_SIG_OK);
    char both[400];
    snprintf(both, sizeof both, "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:, %s, md5=:AAAA:", sha512);
    assert_int_equal(px_content_digest_algs(both, strlen(both)), PX_DIGEST_SHA256 | PX_DIGEST_SHA512);
    assert_int_equal(px_content_digest_check(both, strlen(both), &h, detail, sizeof detail), PX_SIG_OK);
    /* each failure */
    const char *bad[] = { "md5=:AAAA:", "sha-256=:AAAA:", "sha-256=\"x\"", "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPA=:",
                          "sha-256", "", ",", "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:, sha-512=:AAAA:" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(px_content_digest_check(bad[i], strlen(bad[i]), &h, detail, sizeof detail),
                         PX_SIG_DIGEST);
    /* a digest that was not computed */
    px_digest_value_t only256 = fx_digest("{\"hello\": \"world\"}", 18, PX_DIGEST_SHA256);
    assert_int_equal(px_content_digest_check(sha512, strlen(sha512), &only256, detail, sizeof detail),
                     PX_SIG_DIGEST);
    assert_int_equal(px_content_digest_check(NULL, 0, &only256, detail, sizeof detail), PX_SIG_DIGEST);
    assert_int_equal(px_http_error_status(px_sig_http_error(PX_SIG_DIGEST)), 401);
    assert_int_equal(px_sig_http_error(PX_SIG_CACHE_FULL), PX_HERR_OVERLOADED);
}

static void test_base64(void **state)
{
    uint8_t out[16];
    char enc[32];
    assert_int_equal(px_b64_decode("", 0, out, sizeof out), 0);
    assert_int_equal(px_b64_decode("Zg==", 4, out, sizeof out), 1);
    assert_int_equal(px_b64_decode("Zm8=", 4, out, sizeof out), 2);
    assert_int_equal(px_b64_decode("Zm9v", 4, out, sizeof out), 3);
    assert_int_equal(px_b64_decode("Zh==", 4, out, sizeof out), -1);   /* non-canonical bits */
    assert_int_equal(px_b64_decode("Zg", 2, out, sizeof out), -1);     /* unpadded */
    assert_int_equal(px_b64_decode("Z===", 4, out, sizeof out), -1);
    assert_int_equal(px_b64_decode("=Zg=", 4, out, sizeof out), -1);
    assert_int_equal(px_b64_decode("Zg==Zg==", 8, out, sizeof out), -1);
    assert_int_equal(px_b64_decode("Zm9v", 4, out, 2), -1);            /* too big */
    /* the unpadded body quanta are decoded without per-byte branches */
    assert_int_equal(px_b64_decode("Zm9vYmFyZg==", 12, out, sizeof out), 7);
    assert_memory_equal(out, "foobarf", 7);
    assert_int_equal(px_b64_decode("Zm9*YmFyZg==", 12, out, sizeof out), -1);
    assert_int_equal(px_b64_decode("Zm9vYmF=Zg==", 12, out, sizeof out), -1);
    assert_int_equal(px_b64_decode("Zm9vYm\xffyZg==", 12, out, sizeof out), -1);
    assert_int_equal(px_b64_encode((const uint8_t *)"foob", 4, enc, sizeof enc, 0), 8);
    assert_string_equal(enc, "Zm9vYg==");
    assert_int_equal(px_b64_encode((const uint8_t *)"foob", 4, enc, sizeof enc, 1), 6);
    assert_string_equal(enc, "Zm9vYg");
}

/* --- robustness -------------------------------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void test_fuzz_mutations(void **state)
{
    fx_hdrs_t hs = { 0 };
    px_sig_msg_t m;
    px_buf_t want, got;
    char detail[200];
    const char *alphabet = "\"();:=, \t-_*?@abcAZ09+/\\\x01\x7f\xff";
    int n_ok = 0, hist[PX_SIG__COUNT] = { 0 };

    fx_hdrs_load(&hs, "request.headers");
    fx_request(&m, &hs);
    char *orig = strdup(fx_hdr(&hs, "X-Signature")); /* fx_hdr_set frees the original */
    size_t olen = strlen(orig);
    px_buf_init(&want, 0);
    assert_int_equal(px_sig_base_for(&m, orig, olen, &want, detail, sizeof detail), PX_SIG_OK);
    char *mut = malloc(olen * 2 + 64);
    assert_non_null(mut);
    for (int iter = 0; iter < 3000; iter++) {
        size_t len = olen;
        memcpy(mut, orig, olen);
        int nmut = 1 + (int)(rnd() % 3);
        for (int k = 0; k < nmut; k++) {
            /* focus half of the mutations on the first 400 bytes (the signed part) */
            size_t pos = (rnd() & 1) ? rnd() % (len < 400 ? len : 400) : rnd() % len;
            switch (rnd() % 6) {
            case 0: mut[pos] = alphabet[rnd() % strlen(alphabet)]; break;       /* replace */
            case 1: mut[pos] ^= (char)(1u << (rnd() % 8)); break;               /* bit flip */
            case 2: if (len > 1) { memmove(mut + pos, mut + pos + 1, len - pos - 1); len--; } break;
            case 3: memmove(mut + pos + 1, mut + pos, len - pos);               /* insert */
                    mut[pos] = alphabet[rnd() % strlen(alphabet)]; len++; break;
            case 4: len = pos + 1; break;                                       /* truncate */
            case 5: { size_t n = 1 + rnd() % 16;                                /* duplicate */
                      if (pos + n <= len && len + n < olen * 2) {
                          memmove(mut + pos + n, mut + pos, len - pos); len += n; } break; }
            }
        }
        fx_hdr_set(&hs, "X-Signature", "");
        /* point the header at the raw mutated bytes (may hold NUL or control bytes) */
        for (int i = 0; i < hs.n; i++)
            if (!strcasecmp(hs.h[i].name, "X-Signature")) {
                hs.h[i].value = mut;
                hs.h[i].value_len = len;
            }
        fx_request(&m, &hs);
        px_sig_info_t info;
        px_sig_result_t r = px_sig_verify_request(ring, NULL, &pol, &m, V_NOW, &info);
        assert_true((unsigned)r < PX_SIG__COUNT);
        hist[r]++;
        if (r == PX_SIG_OK) {
            /* only edits that do not change what is signed may pass (label,
             * optional whitespace): the signature base must be the original one */
            px_buf_init(&got, 0);
            assert_int_equal(px_sig_base_for(&m, mut, len, &got, detail, sizeof detail), PX_SIG_OK);
            assert_int_equal(px_buf_size(&got), px_buf_size(&want));
            assert_memory_equal(px_buf_ptr(&got), px_buf_ptr(&want), px_buf_size(&want));
            px_buf_free(&got);
            n_ok++;
        }
    }
    /* random garbage */
    for (int iter = 0; iter < 2000; iter++) {
        size_t len = rnd() % 300;
        for (size_t i = 0; i < len; i++)
            mut[i] = (rnd() & 3) ? alphabet[rnd() % strlen(alphabet)] : (char)rnd();
        for (int i = 0; i < hs.n; i++)
            if (!strcasecmp(hs.h[i].name, "X-Signature")) {
                hs.h[i].value = mut;
                hs.h[i].value_len = len;
            }
        px_sig_info_t info;
        assert_int_not_equal(px_sig_verify_request(ring, NULL, &pol, &m, V_NOW, &info), PX_SIG_OK);
        assert_true(px_content_digest_algs(mut, len) >= 0);
    }
    print_message("mutations accepted as equivalent (label/whitespace): %d of 3000\n", n_ok);
    for (int i = 0; i < PX_SIG__COUNT; i++)
        if (hist[i])
            print_message("  %-16s %d\n", px_sig_result_name((px_sig_result_t)i), hist[i]);
    /* every layer was reached: parsing, the time/key checks, both algorithms */
    assert_true(hist[PX_SIG_MALFORMED] > 0 && hist[PX_SIG_ECDSA] > 0 && hist[PX_SIG_MLDSA] > 0);
    free(mut);
    free(orig);
    px_buf_free(&want);
    /* the hs entries pointing at mut are not owned by hs.store: free normally */
    fx_hdrs_free(&hs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vector_request_base),
        cmocka_unit_test(test_vector_request_verify),
        cmocka_unit_test(test_vector_responses),
        cmocka_unit_test(test_response_api),
        cmocka_unit_test(test_sign_request_api),
        cmocka_unit_test(test_missing),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_base_control_chars),
        cmocka_unit_test(test_cpu_quota),
        cmocka_unit_test(test_pair_malformed),
        cmocka_unit_test(test_label_length),
        cmocka_unit_test(test_unknown_keyid),
        cmocka_unit_test(test_time_window),
        cmocka_unit_test(test_replayed),
        cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_classical_policy),
        cmocka_unit_test(test_content_digest),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_fuzz_mutations),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
