/* One request's record and its access-log line (see exchange.h). */
#include "proxy/exchange.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/log.h"
#include "sig/modelid.h"

void px_exch_init(px_exch_t *x)
{
    memset(x, 0, sizeof *x);
    px_buf_init(&x->up_out, 0);
    px_buf_init(&x->replay, 0);
}

void px_exch_reset(px_exch_t *x)
{
    px_buf_t up_out = x->up_out, replay = x->replay;
    if (x->up)
        px_uplink_release(x->up, 0);
    px_buf_reset(&up_out);
    px_buf_reset(&replay);      /* kept for the next request; px_exch_compact frees both */
    px_sigctx_unref(x->sig);
    free(x->digest);
    px_sig_response_free(x->rsig);
    px_buf_free(&x->rbody);
    memset(x, 0, sizeof *x);
    x->up_out = up_out;
    x->replay = replay;
}

void px_exch_free(px_exch_t *x)
{
    px_exch_reset(x);
    px_buf_free(&x->up_out);
    px_buf_free(&x->replay);
}

void px_exch_compact(px_exch_t *x)
{
    px_buf_free(&x->up_out);
    px_buf_free(&x->replay);
}

/* Copies n bytes of s into a cap-byte field, truncated, NUL-terminated. */
static void copy_field(char *dst, size_t cap, const char *s, size_t n)
{
    if (n >= cap)
        n = cap - 1;
    if (n)                      /* s may be NULL when empty */
        memcpy(dst, s, n);
    dst[n] = '\0';
}

/* 16 hex digits of xorshift64*: formatted by hand, it is on every request. */
static void make_request_id(uint64_t *rng, char out[17])
{
    static const char hex[] = "0123456789abcdef";
    uint64_t x = *rng;
    int i;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *rng = x;
    x *= 0x2545F4914F6CDD1DULL;
    for (i = 15; i >= 0; i--, x >>= 4)
        out[i] = hex[x & 15];
    out[16] = '\0';
}

static int method_is(const px_http_head_t *h, const char *m)
{
    size_t n = strlen(m);
    return h->method_len == n && !memcmp(h->method, m, n);
}

/* The route's signature policy for this request. */
static void route_policy(px_exch_t *x, const px_http_head_t *h, const px_config_t *cfg,
                         px_sigctx_t *sig)
{
    const char *q = memchr(h->target, '?', h->target_len);
    const px_route_t *r = px_config_route(cfg, h->target, q ? (size_t)(q - h->target) : h->target_len);
    int signed_req;

    if (r)
        x->route_idx = (int)(r - cfg->routes) + 1;
    if (!r || !sig)
        return;
    x->sig = px_sigctx_ref(sig);
    x->verify = r->verify;
    x->sign = r->sign_responses;
    signed_req = px_http_head_get(h, "x-signature") || px_http_head_get(h, "signature") ||
                 px_http_head_get(h, "signature-input");
    if (x->verify == PX_VERIFY_REQUIRED || (x->verify == PX_VERIFY_OPTIONAL && signed_req))
        x->sig_state = PX_XSIG_VERIFYING;
}

void px_exch_begin(px_exch_t *x, const px_http_head_t *h, const px_config_t *cfg,
                   px_sigctx_t *sig, uint64_t *rng)
{
    px_exch_reset(x);
    x->active = 1;
    x->t_start = uv_hrtime();
    copy_field(x->method, sizeof x->method, h->method, h->method_len);
    x->target = h->target;
    x->target_len = h->target_len;
    make_request_id(rng, x->request_id);
    if (cfg->http.trust_forwarded) {
        /* http1 then forwards the client's X-Request-Id: log that one. */
        const px_header_t *rid = px_http_head_get(h, "x-request-id");
        if (rid)
            copy_field(x->request_id, sizeof x->request_id, rid->value, rid->value_len);
    }
    x->client_minor = h->http_minor;
    x->is_head = method_is(h, "HEAD");
    x->idempotent = h->body == PX_BODY_NONE &&
                    (method_is(h, "GET") || x->is_head || method_is(h, "OPTIONS") ||
                     method_is(h, "PUT") || method_is(h, "DELETE") || method_is(h, "TRACE"));
    x->chunked_up = h->body == PX_BODY_CHUNKED;
    copy_field(x->model_manifest, sizeof x->model_manifest, cfg->sig.model_manifest_value,
               strlen(cfg->sig.model_manifest_value));
    route_policy(x, h, cfg, sig);
}

int px_exch_response_fields(const px_exch_t *x, int status, const px_header_t *extra, int n,
                            px_header_t *out)
{
    for (int i = 0; i < n; i++)
        out[i] = extra[i];
    if (status >= 200 && x->model_manifest[0]) {
        out[n].name = PX_MODEL_MANIFEST_HEADER;
        out[n].name_len = sizeof PX_MODEL_MANIFEST_HEADER - 1;
        out[n].value = x->model_manifest;
        out[n].value_len = strlen(x->model_manifest);
        n++;
    }
    return n;
}

px_sig_response_t *px_exch_response_signer(const px_exch_t *x, px_sig_signer_t *s, int status,
                                           int in_trailer)
{
    px_sig_response_t *r = px_sig_response_begin(s, status, x->info.sig_field, x->info.sig_value,
                                                 x->info.sig_value_len, in_trailer);
    if (r && x->model_manifest[0] &&
        px_sig_response_cover(r, PX_MODEL_MANIFEST_FIELD, x->model_manifest) != 0) {
        px_sig_response_free(r);
        return NULL;
    }
    return r;
}

static double ms_since(uint64_t t0, uint64_t t1)
{
    return (double)(t1 - t0) / 1e6;
}

void px_exch_log(px_exch_t *x, const px_conninfo_t *ci)
{
    px_metrics_t *m = ci->m;
    uint64_t now = uv_hrtime();
    int cls = x->status / 100;

    if (x->logged)
        return;
    x->logged = 1;
    if (cls < 1 || cls > 5)
        cls = 0;
    px_m_inc(&m->requests[x->route_idx][px_m_method_index(x->method)][cls]);
    if (x->t_start)
        px_m_observe(&m->request_seconds, ms_since(x->t_start, now) / 1e3);
    if (x->t_first && x->t_sent)
        px_m_observe(&m->upstream_seconds, ms_since(x->t_sent, x->t_first) / 1e3);
    px_m_add(&m->bytes_in, x->req_bytes);
    px_m_add(&m->bytes_out, x->resp_bytes);
    if (px_access_log_enabled()) {
        px_tls_info_t ti;
        px_access_t a;
        char path[512];
        px_tls_get_info(ci->tls, &ti);
        memset(&a, 0, sizeof a);
        a.client = ci->client_addr;
        a.sni = ti.sni;
        a.tls_version = ti.version;
        a.group = ti.group;
        a.cipher = ti.cipher;
        a.cert_key = ti.cert_key;
        a.client_cert = ti.client_cert_json;
        a.method = x->method[0] ? x->method : "-";
        copy_field(path, sizeof path, x->target, x->target_len);
        a.path = path[0] ? path : "-";
        a.status = x->status;
        a.bytes_in = x->req_bytes;
        a.bytes_out = x->resp_bytes;
        a.duration_ms = x->t_start ? ms_since(x->t_start, now) : 0;
        a.upstream_ms = x->t_first && x->t_sent ? ms_since(x->t_sent, x->t_first) : -1;
        a.request_id = x->request_id;
        a.error = x->error;
        a.sig_result = x->sig_result;
        a.sig_keyid = x->info.keyid;
        a.worker = ci->worker_id;
        px_access_log(&a);
    }
}

void px_exch_log_unfinished(px_exch_t *x, const px_conninfo_t *ci, px_end_reason_t why)
{
    if (x->active && !x->logged) {
        if (!x->error)
            x->error = px_end_reason_str(why);
        if (!x->resp_head_sent)
            x->status = 499;
        px_exch_log(x, ci);
    }
}
