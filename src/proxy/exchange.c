/* One request's record and its access-log line (see exchange.h). */
#include "proxy/exchange.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include "core/log.h"
#include "sig/modelid.h"
#include "http/conn.h"
#include "proxy/grpc.h"
#include "proxy/h2c_xlate.h"

#define H2C_KEEP 4096                /* an h2c response's buffers kept for the next request */

void px_exch_init(px_exch_t *x)
{
    memset(x, 0, sizeof *x);
    px_buf_init(&x->up_out, 0);
    px_buf_init(&x->replay, 0);
    px_buf_init(&x->h2c_head, 0);
    px_buf_init(&x->req_trailers, 0);
}

void px_exch_reset(px_exch_t *x)
{
    px_buf_t up_out = x->up_out, replay = x->replay, h2c_head = x->h2c_head;
    px_buf_t req_trailers = x->req_trailers;
    px_http1_t *resp = x->resp;
    struct px_h2cx *h2c_spare = x->h2c_spare;
    const px_sess_ops_t *ops = x->ops;
    void *sess = x->sess;
    struct px_conn_env *env = x->env;
    px_conninfo_t ci = x->ci;
    px_upstream_cancel(&x->upwait);
    if (x->up)
        px_uplink_release(x->up, 0);
    if (x->sig_state != PX_XSIG_DONE && x->sig)     /* verified but never forwarded */
        px_sig_nonce_release(x->sig, x->env->rstore, &x->info);
    if (x->h2c) {               /* the stream goes back; the buffers stay for the next */
        px_h2cx_free(h2c_spare);
        px_h2cx_recycle(x->h2c, H2C_KEEP);
        h2c_spare = x->h2c;
    }
    px_buf_reset(&up_out);
    px_buf_reset(&replay);      /* kept for the next request; px_exch_compact frees them */
    px_buf_reset(&h2c_head);
    px_buf_reset(&req_trailers);
    px_sigctx_unref(x->sig);
    free(x->digest);
    px_sig_response_free(x->rsig);
    px_buf_free(&x->rbody);
    memset(x, 0, sizeof *x);
    x->up_out = up_out;
    x->replay = replay;
    x->resp = resp;
    x->h2c_head = h2c_head;
    x->req_trailers = req_trailers;
    x->h2c_spare = h2c_spare;
    x->ops = ops;
    x->sess = sess;
    x->env = env;
    x->ci = ci;
}

void px_exch_free(px_exch_t *x)
{
    px_exch_reset(x);
    px_buf_free(&x->up_out);
    px_buf_free(&x->replay);
    px_buf_free(&x->h2c_head);
    px_buf_free(&x->req_trailers);
    px_h2cx_free(x->h2c_spare);
    x->h2c_spare = NULL;
    px_http1_free(x->resp);
    x->resp = NULL;
}

void px_exch_compact(px_exch_t *x)
{
    px_buf_free(&x->up_out);
    px_buf_free(&x->replay);
    px_buf_free(&x->h2c_head);
    px_buf_free(&x->req_trailers);
    px_h2cx_free(x->h2c_spare);
    x->h2c_spare = NULL;
}

void px_exch_recycle(px_exch_t *x, const px_http1_limits_t *limits, size_t keep)
{
    px_exch_reset(x);
    px_buf_recycle(&x->up_out, keep);
    px_buf_recycle(&x->replay, keep);
    px_buf_recycle(&x->h2c_head, keep);
    px_buf_recycle(&x->req_trailers, keep);
    if (x->resp)
        px_http1_reuse(x->resp, limits, keep);
}

px_http1_limits_t px_exch_resp_limits(const px_config_t *cfg)
{
    return (px_http1_limits_t){ .max_head_bytes = cfg->http.max_header_bytes, .max_headers = 256,
                                .max_body_bytes = 0 };
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

/* The route: which upstream, and the signature policy for this request. */
static void route_policy(px_exch_t *x, const px_http_head_t *h, const px_config_t *cfg,
                         px_sigctx_t *sig)
{
    const char *q = memchr(h->target, '?', h->target_len);
    const px_route_t *r = px_config_route(cfg, h->target, q ? (size_t)(q - h->target) : h->target_len,
                                          x->grpc);
    int signed_req;

    if (r) {
        x->route_idx = r->metrics_row;
        x->upstream_idx = r->upstream;
        if (r->upstream > 0)
            memcpy(x->route_up, cfg->upstreams[r->upstream - 1].name, sizeof x->route_up);
    }
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
    x->req_head = h;
    x->target = h->target;
    x->target_len = h->target_len;
    make_request_id(rng, x->request_id);
    if (cfg->http.trust_forwarded) {
        /* http1 then forwards the client's X-Request-Id: log that one. */
        const px_header_t *rid = px_http_head_get(h, "x-request-id");
        if (rid)
            copy_field(x->request_id, sizeof x->request_id, rid->value, rid->value_len);
    }
    x->is_head = method_is(h, "HEAD");
    x->idempotent = h->body == PX_BODY_NONE &&
                    (method_is(h, "GET") || x->is_head || method_is(h, "OPTIONS") ||
                     method_is(h, "PUT") || method_is(h, "DELETE") || method_is(h, "TRACE"));
    x->chunked_up = h->body == PX_BODY_CHUNKED;
    x->grpc = px_grpc_request(h);
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
    px_m_inc(&m->requests_proto[ci->protocol && !strcmp(ci->protocol, "h2")]);
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
        a.protocol = ci->protocol;
        a.method = x->method[0] ? x->method : "-";
        copy_field(path, sizeof path, x->target, x->target_len);
        a.path = path[0] ? path : "-";
        a.status = x->status;
        a.bytes_in = x->req_bytes;
        a.bytes_out = x->resp_bytes;
        a.duration_ms = x->t_start ? ms_since(x->t_start, now) : 0;
        a.upstream_ms = x->t_first && x->t_sent ? ms_since(x->t_sent, x->t_first) : -1;
        a.upstream = x->upstream[0] ? x->upstream : NULL;
        a.request_id = x->request_id;
        a.error = x->error;
        a.grpc_status = x->grpc_status;
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

/* --- driving --------------------------------------------------------------------- */

/* The close rule (exchange.h): GONE means the exchange (and perhaps its
 * session) is over; the caller returns GONE at once. Loop callbacks end
 * with settle(). */
#define GONE (-1)

static PX_MUST_CHECK int upstream_head(px_exch_t *x, const px_http_head_t *h, const char *keyid);
static PX_MUST_CHECK int upstream_failed(px_exch_t *x, int uverr);
static PX_MUST_CHECK int h2c_flush(px_exch_t *x);
static void h2c_credit(px_exch_t *x);
static PX_MUST_CHECK int h2c_start(px_exch_t *x);
static PX_MUST_CHECK int upstream_acquire(px_exch_t *x);
static PX_MUST_CHECK int response_final_head(px_exch_t *x, const px_http_head_t *h);
static PX_MUST_CHECK int response_piece(px_exch_t *x, const char *data, size_t dlen);
static PX_MUST_CHECK int response_end(px_exch_t *x, int link_reusable);

/* The end of a loop callback: whatever the call did to the exchange,
 * nothing follows it. The only place a status may be dropped. */
static void settle(int status)
{
    (void)status;
}

static const px_config_t *cfg_of(const px_exch_t *x)
{
    return x->env->cfg;
}

static PX_MUST_CHECK int reply_error(px_exch_t *x, px_http_error_t e, const char *detail)
{
    return x->ops->reply_error(x->sess, e, detail);
}

static PX_MUST_CHECK int abort_exch(px_exch_t *x, px_end_reason_t why)
{
    return x->ops->abort(x->sess, why);
}

/* A job's callback: 1 when the session is closing, so the job's result is
 * of no use (the job is freed, see px_sess_ops_t.orphaned). */
static int job_orphaned(px_exch_t *x, px_sigjob_t *j)
{
    x->job = NULL;
    return x->ops->orphaned(x->sess, j);
}

/* --- the upstream side ------------------------------------------------------------ */

static void up_on_connect(px_uplink_t *l, int status, void *ud);
static void up_on_read(px_uplink_t *l, const char *p, ssize_t n, void *ud);
static void up_on_write(px_uplink_t *l, int status, void *ud);
static const px_uplink_cb_t up_cb = { up_on_connect, up_on_read, up_on_write };

/* The position of the route's named upstream in the current configuration
 * (its pools have the same: see server.c named_pools), 0 for the default
 * one. Looked up by name: a reload between the routing and the upstream's
 * use (a body or a signature awaited, a retry) may have moved it, and a
 * position alone would then send the request to another model server. One
 * the reload removed falls back to the default upstream. */
static int up_index(const px_exch_t *x)
{
    const px_config_t *cfg = cfg_of(x);
    int k = x->upstream_idx;

    if (k <= 0)
        return 0;
    if (k <= cfg->upstream_count && !strcmp(cfg->upstreams[k - 1].name, x->route_up))
        return k;
    for (int i = 0; i < cfg->upstream_count; i++)
        if (!strcmp(cfg->upstreams[i].name, x->route_up))
            return i + 1;
    return 0;
}

/* The pool of the route's upstream (the default one when a reload removed it). */
static px_upstream_t *pool_of(const px_exch_t *x)
{
    int k = up_index(x);
    return k > 0 && x->env->named_up[k - 1] ? x->env->named_up[k - 1] : x->env->upstream;
}

static struct px_h2c_pool *h2c_pool_of(const px_exch_t *x)
{
    int k = up_index(x);
    return k > 0 && x->env->named_h2c[k - 1] ? x->env->named_h2c[k - 1] : x->env->h2c;
}

/* The route's named upstream in the current configuration, or NULL: the
 * default one, also after a reload that removed it. */
static const px_named_upstream_t *named_of(const px_exch_t *x)
{
    int k = up_index(x);
    return k > 0 ? &cfg_of(x)->upstreams[k - 1] : NULL;
}

/* The route's upstream settings. */
static const px_upstream_config_t *up_cfg_of(const px_exch_t *x)
{
    const px_named_upstream_t *u = named_of(x);
    return u ? &u->cfg : &cfg_of(x)->upstream;
}

/* Everything queued for the upstream has left. */
static void upstream_sent(px_exch_t *x)
{
    if (x->req_done && !x->t_sent && px_buf_size(&x->up_out) == 0) {
        x->t_sent = uv_hrtime();
        if (!x->resp_started)
            px_uplink_timeout(x->up, cfg_of(x)->timeouts.upstream_response);
    }
}

int px_exch_flush_upstream(px_exch_t *x)
{
    int rc;
    if (x->up_h2c)
        return h2c_flush(x);
    if (!x->up || !x->upstream_ok || px_uplink_writing(x->up))
        return 0;
    if (px_buf_size(&x->up_out) == 0) {
        upstream_sent(x);       /* the request may have ended after its bytes left */
        return 0;
    }
    rc = px_uplink_write(x->up, &x->up_out);
    if (rc < 0)
        return upstream_failed(x, rc);
    /* A model server that takes none of the request is silent too: timed
     * while a write waits on it (before its response, whose own timers
     * follow), and not once the write has gone. */
    if (!x->resp_started)
        px_uplink_timeout(x->up, rc == 1 ? 0 : cfg_of(x)->timeouts.upstream_idle);
    if (rc == 1)
        upstream_sent(x);       /* written at once: no on_write will come */
    return 0;
}

/* The model server's silence: a 504, or the exchange aborted once the
 * response head has gone. unresponsive: its h2c connection left a PING
 * unanswered for ms (else the timeout that ran out was ms). */
static PX_MUST_CHECK int upstream_timed_out_how(px_exch_t *x, uint32_t ms, int unresponsive)
{
    char detail[96];
    px_m_inc(&x->ci.m->upstream_errors[PX_UP_TIMEOUT]);
    if (x->resp_head_sent) {
        x->error = px_end_reason_str(PX_END_UPSTREAM_TIMEOUT);
        return abort_exch(x, PX_END_UPSTREAM_TIMEOUT);
    }
    snprintf(detail, sizeof detail,
             unresponsive ? "the model server did not answer a PING within %u ms"
             : !x->upstream_ok ? "no connection to the model server within %u ms"
             : x->up && px_uplink_writing(x->up) ? "the model server took none of the request for %u ms"
                                                 : "the model server did not respond within %u ms",
             ms);
    return reply_error(x, PX_HERR_UPSTREAM_TIMEOUT, detail);
}

static PX_MUST_CHECK int upstream_timed_out(px_exch_t *x, uint32_t ms)
{
    return upstream_timed_out_how(x, ms, 0);
}

static int upstream_failed(px_exch_t *x, int uverr)
{
    char detail[128];

    /* A pooled link can have been closed by the model server just as we
     * took it. Retry once on a fresh connection, only when that is safe:
     * an idempotent request without a body, and nothing came back. */
    if (x->up_reused && !x->resp_started && !x->retried && x->idempotent && x->req_done &&
        px_buf_size(&x->replay) > 0) {
        x->retried = 1;
        px_m_inc(&x->ci.m->upstream_retries);
        px_uplink_release(x->up, 0);
        x->up = NULL;
        x->upstream_ok = 0;
        x->up_reused = 0;
        x->t_sent = 0;          /* sent anew: upstream_sent arms the response timeout again */
        px_buf_reset(&x->up_out);
        if (px_buf_append(&x->up_out, px_buf_ptr(&x->replay), px_buf_size(&x->replay)) == 0 &&
            px_upstream_connect_fresh(pool_of(x), &up_cb, x, &x->up) == 0)
            return 0;
    }
    px_m_inc(&x->ci.m->upstream_errors[x->upstream_ok ? PX_UP_RESET : PX_UP_CONNECT]);
    if (x->resp_head_sent) {
        px_info("%s: upstream failed mid-response (%s); closing", x->ci.client_addr, uv_strerror(uverr));
        x->error = px_end_reason_str(PX_END_UPSTREAM_RESET);
        return abort_exch(x, PX_END_UPSTREAM_RESET);
    }
    if (uverr == UV_EOF)
        snprintf(detail, sizeof detail, "the model server closed the connection before responding");
    else if (uverr == UV_EMSGSIZE)
        snprintf(detail, sizeof detail, "the request head is too large to send to the model server");
    else if (uverr == UV_E2BIG)
        snprintf(detail, sizeof detail, "the model server's response head or trailers pass "
                                        "http.max_header_bytes (%u) or %d fields",
                 (unsigned)cfg_of(x)->http.max_header_bytes, PX_H2C_MAX_FIELDS);
    else
        snprintf(detail, sizeof detail, "the model server is unreachable: %s", uv_strerror(uverr));
    return reply_error(x, PX_HERR_UPSTREAM_ERROR, detail);
}

/* Every link upstream.max_connections allows was busy for
 * timeouts.upstream_queue_ms. */
static PX_MUST_CHECK int upstream_queue_timeout(px_exch_t *x)
{
    char detail[160];
    px_m_inc(&x->ci.m->upstream_errors[PX_UP_QUEUE_TIMEOUT]);
    snprintf(detail, sizeof detail,
             "no connection to the model server came free within %u ms "
             "(upstream.max_connections: %u per worker)",
             (unsigned)cfg_of(x)->timeouts.upstream_queue, (unsigned)up_cfg_of(x)->max_connections);
    return reply_error(x, PX_HERR_UPSTREAM_BUSY, detail);
}

static PX_MUST_CHECK int upstream_connected(px_exch_t *x, int status)
{
    if (status == UV_EBUSY && !x->up)
        return upstream_queue_timeout(x);
    if (status == UV_EAGAIN && !x->up)
        return upstream_acquire(x);     /* a reload re-pointed the pool it waited in */
    if (status == UV_ETIMEDOUT)
        return upstream_timed_out(x, cfg_of(x)->timeouts.upstream_connect);
    if (status < 0)
        return upstream_failed(x, status);
    x->up_reused = px_uplink_reused(x->up);    /* a pooled link, given after a wait */
    x->upstream_ok = 1;
    px_uplink_read_start(x->up);
    if (px_exch_flush_upstream(x) < 0)
        return GONE;
    return x->ops->resume_input(x->sess);   /* input held back while unconnected may go on */
}

static void up_on_connect(px_uplink_t *l, int status, void *ud)
{
    px_exch_t *x = ud;
    x->up = l;                  /* the same, or the one a wait was given (or NULL) */
    settle(upstream_connected(x, status));
}

static PX_MUST_CHECK int upstream_written(px_exch_t *x, int status)
{
    if (status < 0)
        return upstream_failed(x, status);
    if (px_buf_size(&x->up_out) > 0) {
        if (px_exch_flush_upstream(x) < 0)
            return GONE;
    } else {
        if (!x->resp_started)
            px_uplink_timeout(x->up, 0);    /* the client's turn (or the response's, below) */
        upstream_sent(x);
    }
    /* Room again towards the upstream: take more of the client's body. */
    return x->ops->resume_input(x->sess);
}

static void up_on_write(px_uplink_t *l, int status, void *ud)
{
    (void)l;
    settle(upstream_written(ud, status));
}

void px_exch_resp_drained(px_exch_t *x)
{
    if (x->up_h2c) {
        h2c_credit(x);
        return;
    }
    if (x->up && x->upstream_ok && x->ops->pending(x->sess) < PX_HIGH_WATER && !x->resp_done &&
        !px_uplink_reading(x->up)) {
        px_uplink_read_start(x->up);
        px_uplink_timeout(x->up, cfg_of(x)->timeouts.upstream_idle);   /* its silence counts again */
    }
}

void px_exch_release_upstream(px_exch_t *x, int reusable)
{
    px_upstream_cancel(&x->upwait);
    if (x->up)
        px_uplink_release(x->up, reusable && x->req_done);
    x->up = NULL;
    if (x->h2c && x->h2c->s) {      /* its head and trailers stay until px_exch_reset */
        px_h2c_release(x->h2c->s);
        x->h2c->s = NULL;
    }
}

static PX_MUST_CHECK int response_body(px_exch_t *x, const char *p, size_t n)
{
    x->resp_bytes += n;
    if (x->is_head || n == 0)
        return 0;
    return x->ops->send_data(x->sess, p, n);
}

/* A piece of the response body: relayed, or held to be signed. */
static PX_MUST_CHECK int response_piece(px_exch_t *x, const char *data, size_t dlen)
{
    if (x->rsig)
        px_sig_response_update(x->rsig, data, dlen);
    if (x->rsig_mode == PX_RSIG_HEAD) {
        x->resp_bytes += dlen;
        if (px_buf_append(&x->rbody, data, dlen) < 0)
            return reply_error(x, PX_HERR_INTERNAL, "out of memory");
        return 0;
    }
    return response_body(x, data, dlen);
}

/* The response is complete and handed to the session, which ends it
 * (its end is staged: send_end). */
static PX_MUST_CHECK int finish_exchange(px_exch_t *x, int link_reusable)
{
    if (x->ops->flush(x->sess, 1) < 0)
        return GONE;
    px_exch_release_upstream(x, link_reusable);
    px_exch_log(x, &x->ci);
    return x->ops->done(x->sess);
}

/* --- signed responses ------------------------------------------------------------- */

/* Decides how a response is signed: a body known to fit is held and the
 * signature goes in the head; anything streamed (chunked, close-delimited,
 * larger) is relayed as it comes with the signature in a trailer. A client
 * that takes no trailers (HTTP/1.0) gets such a streamed response unsigned
 * (counted). */
/* Every response head leaves through here: the proxy's own fields
 * (Pqproxy-Model-Manifest) are added whatever the session's protocol. */
static PX_MUST_CHECK int send_head(px_exch_t *x, const px_http_head_t *h, const px_header_t *extra,
                                   int n)
{
    px_header_t fields[4];      /* extra (at most 2) and the proxy's own */
    n = px_exch_response_fields(x, h->status, extra, n, fields);
    return x->ops->send_head(x->sess, h, fields, n);
}

static PX_MUST_CHECK int response_sign_begin(px_exch_t *x, const px_http_head_t *h)
{
    px_sig_signer_t *signer = px_sigctx_signer(x->sig, x->ci.worker_id);
    int held = h->body == PX_BODY_NONE ||
               (h->body == PX_BODY_LENGTH && h->content_length <= px_sigctx_max_body(x->sig));

    if (x->is_head || !signer)
        return 0;
    if (!held && !x->ops->trailers_ok(x->sess)) {
        px_m_inc(&x->ci.m->responses_unsigned);
        return 0;
    }
    x->rsig = px_exch_response_signer(x, signer, h->status, !held);
    if (!x->rsig)
        return reply_error(x, PX_HERR_INTERNAL, "cannot sign the response");
    x->rsig_mode = held ? PX_RSIG_HEAD : PX_RSIG_TRAILER;
    return 0;
}

/* Ends the response with the upstream's trailer fields (a gRPC status;
 * those px_http1_trailer_ok lets through and not named like one of own)
 * then the proxy's own[0..n), when the client takes trailers. */
static PX_MUST_CHECK int send_end_with(px_exch_t *x, const px_header_t *own, int n)
{
    const px_header_t *up = NULL;
    px_header_t few[8], *all = few;     /* a gRPC status and message, the signature's two */
    int nup = 0, k = 0, rc;

    if (x->ops->trailers_ok(x->sess)) {
        if (!x->h2c)
            up = px_http1_trailers(x->resp, &nup);
        else if (x->h2c->head.body == PX_BODY_CHUNKED)
            up = x->h2c->trailers, nup = x->h2c->ntrailers;
    }
    if (!nup)
        return x->ops->send_end(x->sess, own, n);
    if (nup + n > (int)(sizeof few / sizeof *few) && !(all = malloc(sizeof *all * (size_t)(nup + n))))
        return abort_exch(x, PX_END_INTERNAL);
    for (int i = 0; i < nup; i++) {
        int same = 0;
        for (int j = 0; j < n && !same; j++)
            same = up[i].name_len == own[j].name_len &&
                   !strncasecmp(up[i].name, own[j].name, own[j].name_len);
        if (!same && px_http1_trailer_ok(up[i].name, up[i].name_len, up[i].value, up[i].value_len, 0))
            all[k++] = up[i];
    }
    if (n)
        memcpy(all + k, own, sizeof *all * (size_t)n);
    rc = x->ops->send_end(x->sess, all, k + n);
    if (all != few)
        free(all);
    return rc;
}

/* The signature is ready: the held response with it in the head, or the
 * trailer that ends a streamed one. */
static PX_MUST_CHECK int send_signed_response(px_exch_t *x, px_sigjob_t *j)
{
    const px_buf_t *dg = px_sigjob_digest(j), *sg = px_sigjob_signature(j);
    px_header_t fields[2] = {
        { "Content-Digest", 14, px_buf_ptr(dg), px_buf_size(dg) },
        { "X-Signature", 11, px_buf_ptr(sg), px_buf_size(sg) },
    };

    if (px_sigjob_status(j) != 0) {
        if (x->rsig_mode == PX_RSIG_HEAD)
            return reply_error(x, PX_HERR_INTERNAL, "signing the response failed");
        return abort_exch(x, PX_END_SIGNING_FAILED);
    }
    if (x->rsig_mode == PX_RSIG_HEAD) {
        if (send_head(x, x->h2c ? &x->h2c->head : px_http1_head(x->resp), fields, 2) < 0 ||
            x->ops->send_data(x->sess, px_buf_ptr(&x->rbody), px_buf_size(&x->rbody)) < 0)
            return GONE;
        x->resp_head_sent = 1;
    } else if (send_end_with(x, fields, 2) < 0) {
        return GONE;
    }
    px_sig_count_response_signed();
    if (x->rsig_mode == PX_RSIG_HEAD && x->ops->send_end(x->sess, NULL, 0) < 0)
        return GONE;
    return finish_exchange(x, x->link_reusable);
}

static void response_signed(px_sigjob_t *j, void *ud)
{
    px_exch_t *x = ud;
    int rc;

    if (job_orphaned(x, j))
        return;
    rc = send_signed_response(x, j);
    px_sigjob_free(j);
    settle(rc);
}

/* The whole response is in: sign it off the event loop. The upstream link
 * is free already. */
static PX_MUST_CHECK int response_sign_finish(px_exch_t *x)
{
    px_sig_response_t *r = x->rsig;

    x->rsig = NULL;
    px_exch_release_upstream(x, x->link_reusable);
    if (px_sig_sign_async(x->env->loop, r, response_signed, x, &x->job) == 0)
        return 0;
    if (x->rsig_mode == PX_RSIG_HEAD)
        return reply_error(x, PX_HERR_INTERNAL, "cannot queue the response signature");
    return abort_exch(x, PX_END_SIGNING_FAILED);
}

/* The response's last byte has come: close it towards the client. */
static PX_MUST_CHECK int response_end(px_exch_t *x, int link_reusable)
{
    x->resp_done = 1;
    x->link_reusable = link_reusable;
    if (x->rsig)
        return response_sign_finish(x);
    if (send_end_with(x, NULL, 0) < 0)
        return GONE;
    return finish_exchange(x, link_reusable);
}

static PX_MUST_CHECK int response_head(px_exch_t *x)
{
    const px_http_head_t *h = px_http1_head(x->resp);

    if (px_http1_is_interim(x->resp))   /* 100 Continue was answered by the proxy itself; forward others (103) */
        return h->status == 100 ? 0 : send_head(x, h, NULL, 0);
    return response_final_head(x, h);
}

/* The final response head h, from either upstream kind. */
static PX_MUST_CHECK int response_final_head(px_exch_t *x, const px_http_head_t *h)
{
    static const px_header_t trailer = { "Trailer", 7, "Content-Digest, X-Signature", 27 };

    x->status = h->status;
    if (!x->req_done)
        x->keep_alive = 0;      /* answered before the body ended: the rest is unread */
    if (x->sign && response_sign_begin(x, h) < 0)
        return GONE;
    if (x->rsig_mode == PX_RSIG_HEAD)
        return 0;               /* the head goes out with its signature, after the body */
    if (x->rsig_mode == PX_RSIG_TRAILER) {
        /* streamed, the signature in the trailer section */
        px_http_head_t copy = *h;
        copy.body = PX_BODY_CHUNKED;
        if (send_head(x, &copy, &trailer, 1) < 0)
            return GONE;
    } else if (send_head(x, h, NULL, 0) < 0) {
        return GONE;
    }
    x->resp_head_sent = 1;
    return 0;
}

static PX_MUST_CHECK int upstream_input(px_exch_t *x, px_uplink_t *l, const char *p, ssize_t n)
{
    size_t off = 0;

    if (n == UV_ETIMEDOUT)
        return upstream_timed_out(x, x->resp_started || px_uplink_writing(l)
                                         ? cfg_of(x)->timeouts.upstream_idle
                                         : cfg_of(x)->timeouts.upstream_response);
    if (n == UV_EOF && x->resp_head_sent && px_http1_finish(x->resp) == PX_H1_END)
        return response_end(x, 0);
    if (n < 0)
        return upstream_failed(x, (int)n);
    if (!x->resp_started) {
        x->resp_started = 1;
        x->t_first = uv_hrtime();
        if (!x->t_sent)
            x->t_sent = x->t_first;
    }
    px_uplink_timeout(l, cfg_of(x)->timeouts.upstream_idle);
    for (;;) {                  /* until NEED_MORE: END can follow the last body bytes */
        const char *data, *detail;
        size_t used = 0, dlen = 0;
        px_h1_event_t ev = px_http1_parse(x->resp, p + off, (size_t)n - off, &used, &data, &dlen);
        off += used;
        switch (ev) {
        case PX_H1_NEED_MORE:
            if (x->ops->flush(x->sess, 0) < 0)
                return GONE;
            if (x->ops->pending(x->sess) >= PX_HIGH_WATER) {
                /* the client is behind: the model server's silence from
                 * now on is ours, and timeouts.send_idle bounds the wait */
                px_uplink_read_stop(l);   /* resumed by px_exch_resp_drained */
                px_uplink_timeout(l, 0);
            }
            return 0;
        case PX_H1_HEAD:
            if (response_head(x) < 0)
                return GONE;
            break;
        case PX_H1_BODY:
            if (response_piece(x, data, dlen) < 0)
                return GONE;
            break;
        case PX_H1_END:
            if (px_http1_is_interim(x->resp))
                break;
            /* Bytes after the response mean a confused upstream: do not reuse. */
            return response_end(x, off == (size_t)n && px_http1_head(x->resp)->keep_alive);
        case PX_H1_ERROR:
            px_http1_error(x->resp, &detail);
            px_warn("%s: bad response from the model server: %s", x->ci.client_addr, detail);
            px_m_inc(&x->ci.m->upstream_errors[PX_UP_BAD_RESPONSE]);
            return reply_error(x, PX_HERR_UPSTREAM_BAD, detail);
        }
    }
}

static void up_on_read(px_uplink_t *l, const char *p, ssize_t n, void *ud)
{
    settle(upstream_input(ud, l, p, n));
}

/* --- the h2c upstream: one stream per exchange (h2c_pool.h) -------------------- */

static void h2c_on_head(void *ud, const px_msg_t *m);
static void h2c_on_data(void *ud, const uint8_t *p, size_t n);
static void h2c_on_end(void *ud, const px_msg_t *m);
static void h2c_on_error(void *ud, int err);
static void h2c_on_drain(void *ud);
static const px_h2c_cb_t h2c_cb = { h2c_on_head, h2c_on_data, h2c_on_end, h2c_on_error,
                                    h2c_on_drain };

/* The request head as HTTP/2 fields (upstream_head made them), its body
 * as DATA. */
static int h2c_start(px_exch_t *x)
{
    const px_http_head_t *h = x->req_head;
    int no_body = h->body == PX_BODY_NONE || (h->body == PX_BODY_LENGTH && h->content_length == 0);
    int rc;

    x->connect_on_body = 0;
    if (!x->h2c_nv)
        return reply_error(x, PX_HERR_INTERNAL, "the request head was not translated for HTTP/2");
    x->h2c = x->h2c_spare ? x->h2c_spare : px_h2cx_new();
    x->h2c_spare = NULL;
    if (!x->h2c)
        return reply_error(x, PX_HERR_INTERNAL, "out of memory");
    rc = px_h2c_open(h2c_pool_of(x), x->h2c_nv, x->h2c_nnv, no_body, &h2c_cb, x, &x->h2c->s);
    px_buf_reset(&x->h2c_head);
    x->h2c_nv = NULL;
    if (rc < 0)
        return reply_error(x, PX_HERR_INTERNAL, "out of memory");
    x->upstream_ok = 1;
    return h2c_flush(x);
}

static int h2c_flush(px_exch_t *x)
{
    px_h2c_stream_t *s = x->h2c ? x->h2c->s : NULL;

    if (!s)
        return 0;
    while (px_buf_size(&x->up_out) > 0) {
        size_t n = px_h2c_write(s, px_buf_ptr(&x->up_out), px_buf_size(&x->up_out));
        if (!n)
            break;                  /* the stream's queue is full: on_drain */
        px_buf_consume(&x->up_out, n);
    }
    if (x->req_done && px_buf_size(&x->up_out) == 0) {
        if (px_h2c_end(s, x->trl_nv, x->trl_nnv) < 0)
            return reply_error(x, PX_HERR_INTERNAL, "out of memory");
        if (!x->t_sent)
            x->t_sent = uv_hrtime();
    }
    return 0;
}

/* Response bytes the client side has taken reopen the stream's window:
 * the model server sends no faster than the client reads. */
static void h2c_credit(px_exch_t *x)
{
    px_h2cx_t *h = x->h2c;

    if (h && h->s && h->unacked &&
        (x->rsig_mode == PX_RSIG_HEAD || x->ops->pending(x->sess) < PX_HIGH_WATER)) {
        px_h2c_consumed(h->s, h->unacked);
        h->unacked = 0;
    }
}

static PX_MUST_CHECK int h2c_head(px_exch_t *x, const px_msg_t *m)
{
    x->resp_started = 1;
    x->t_first = uv_hrtime();
    if (!x->t_sent)
        x->t_sent = x->t_first;
    if (px_h2cx_response(x->h2c, m) < 0)
        return reply_error(x, PX_HERR_INTERNAL, "out of memory");
    /* An HTTP/2 response may end in trailers whatever its content-length
     * (a gRPC status): to a client that takes trailers it goes chunked,
     * where they fit. nghttp2 still holds the DATA to the length. A
     * response to sign keeps its length: small, it is held and signed in
     * its head (response_sign_begin). */
    if (x->h2c->head.body == PX_BODY_LENGTH && !x->is_head && !x->sign && x->ops->trailers_ok(x->sess))
        x->h2c->head.body = PX_BODY_CHUNKED;
    return response_final_head(x, &x->h2c->head);
}

static void h2c_on_head(void *ud, const px_msg_t *m)
{
    settle(h2c_head(ud, m));
}

static PX_MUST_CHECK int h2c_data(px_exch_t *x, const uint8_t *p, size_t n)
{
    x->h2c->unacked += n;
    if (response_piece(x, (const char *)p, n) < 0 || x->ops->flush(x->sess, 0) < 0)
        return GONE;
    h2c_credit(x);
    return 0;
}

static void h2c_on_data(void *ud, const uint8_t *p, size_t n)
{
    settle(h2c_data(ud, p, n));
}

static PX_MUST_CHECK int h2c_end(px_exch_t *x, const px_msg_t *m)
{
    x->h2c->s = NULL;               /* the pool's from here */
    if (!x->resp_started)
        return upstream_failed(x, UV_EPROTO);
    if (px_h2cx_trailers(x->h2c, m) < 0)
        return abort_exch(x, PX_END_INTERNAL);
    return response_end(x, 0);
}

static void h2c_on_end(void *ud, const px_msg_t *m)
{
    settle(h2c_end(ud, m));
}

static void h2c_on_error(void *ud, int err)
{
    px_exch_t *x = ud;

    x->h2c->s = NULL;
    if (err == PX_H2C_EUNRESPONSIVE)
        settle(upstream_timed_out_how(x, up_cfg_of(x)->h2c_ping_timeout, 1));
    else if (err == UV_ETIMEDOUT)
        settle(upstream_timed_out(x, x->resp_started ? cfg_of(x)->timeouts.upstream_idle
                                                     : cfg_of(x)->timeouts.upstream_response));
    else
        settle(upstream_failed(x, err));
}

static PX_MUST_CHECK int h2c_drained(px_exch_t *x)
{
    if (h2c_flush(x) < 0)
        return GONE;
    return x->ops->resume_input(x->sess);
}

static void h2c_on_drain(void *ud)
{
    settle(h2c_drained(ud));
}

/* --- the request side ------------------------------------------------------------ */

static PX_MUST_CHECK int upstream_start(px_exch_t *x)
{
    const px_named_upstream_t *u = named_of(x);
    const char *name = u ? u->name : "default";

    copy_field(x->upstream, sizeof x->upstream, name, strlen(name));
    x->connect_on_body = 0;
    if (x->up_h2c)
        return h2c_start(x);
    return upstream_acquire(x);
}

static PX_MUST_CHECK int upstream_acquire(px_exch_t *x)
{
    int rc = px_upstream_acquire(pool_of(x), &up_cb, x, &x->upwait, &x->up, &x->up_reused);
    if (rc < 0)
        return upstream_failed(x, rc);
    if (!x->up_reused)
        return 0;               /* connecting, or waiting for a link: on_connect follows */
    x->upstream_ok = 1;             /* a pooled link is connected: write now */
    return px_exch_flush_upstream(x);
}

/* The body may come now (the session answers 100-continue). The upstream
 * is connected once the body flows (a client that sends a head and then
 * nothing holds no connection to the model server), or, for a signed body,
 * once its digest has been checked. */
static PX_MUST_CHECK int request_proceed(px_exch_t *x)
{
    const px_http_head_t *h = x->req_head;

    if (h->body != PX_BODY_NONE && !(h->body == PX_BODY_LENGTH && h->content_length == 0)) {
        /* The limits were checked on the head: the client may send the body. */
        if (x->ops->proceed(x->sess, 1) < 0)
            return GONE;
        x->connect_on_body = x->sig_state != PX_XSIG_BODY;
        return 0;
    }
    if (x->ops->proceed(x->sess, 0) < 0)
        return GONE;
    return x->sig_state != PX_XSIG_BODY ? upstream_start(x) : 0;
}

static PX_MUST_CHECK int request_verified_go(px_exch_t *x, px_sig_result_t r)
{
    if (r != PX_SIG_OK) {
        px_info("%s: signature refused (%s, keyid \"%s\"): %s", x->ci.client_addr, x->sig_result,
                x->info.keyid, x->info.detail);
        return reply_error(x, px_sig_http_error(r), x->info.detail);
    }
    if (upstream_head(x, x->req_head, x->info.keyid) < 0)
        return GONE;
    x->digest = malloc(sizeof *x->digest);
    if (!x->digest || px_digest_init(x->digest, x->info.digest_algs) != 0)
        return reply_error(x, PX_HERR_INTERNAL, "out of memory");
    x->sig_state = PX_XSIG_BODY;
    if (request_proceed(x) < 0)
        return GONE;
    return x->ops->resume_input(x->sess);  /* the body (or the end) may be waiting */
}

static void request_verified(px_sigjob_t *j, void *ud)
{
    px_exch_t *x = ud;
    px_sig_result_t r;

    if (job_orphaned(x, j))
        return;
    r = px_sigjob_result(j);
    px_sigjob_take_info(j, &x->info);   /* its pointers are into the request head, still parsed */
    x->sig_result = px_sig_result_name(r);
    px_sigjob_free(j);
    settle(request_verified_go(x, r));
}

/* Rewrites the request head for the model server into up_out. The model
 * server trusts X-Verified-Keyid and X-Forwarded-Client-Cert, so the proxy
 * sets them from a verification (a signature; the TLS client certificate)
 * and never forwards a client's, on any route. On routes that verify, the
 * client's signature fields are not forwarded either (the model server
 * needs who, not 6 KB of proof). */
static int upstream_head(px_exch_t *x, const px_http_head_t *h, const char *keyid)
{
    static const char *const sig_fields[] = { "x-verified-keyid", "x-forwarded-client-cert",
                                              "x-signature", "signature", "signature-input" };
    const px_config_t *cfg = cfg_of(x);
    px_tls_info_t ti;
    px_header_t extra[2];
    px_fwd_opts_t fo;

    memset(&fo, 0, sizeof fo);
    fo.client_ip = x->ci.client_ip;
    fo.proto = "https";
    fo.trust_forwarded = cfg->http.trust_forwarded;
    fo.request_id = x->request_id;
    fo.drop = sig_fields;
    fo.drop_count = x->verify != PX_VERIFY_OFF ? 5 : 2;
    fo.extra = extra;
    if (keyid && keyid[0])
        extra[fo.extra_count++] = (px_header_t){ "X-Verified-Keyid", 16, keyid, strlen(keyid) };
    px_tls_get_info(x->ci.tls, &ti);
    if (ti.client_xfcc[0])
        extra[fo.extra_count++] = (px_header_t){ "X-Forwarded-Client-Cert", 23, ti.client_xfcc,
                                                 strlen(ti.client_xfcc) };
    if (x->up_h2c) {            /* the same rules, straight into HTTP/2 fields */
        if (!h->host_len)       /* HTTP/1.0 may omit it; HTTP/2 needs an :authority */
            return reply_error(x, PX_HERR_BAD_REQUEST, "an HTTP/2 model server needs the request's Host");
        if (px_h2cx_request(&x->h2c_head, h, &fo, &x->h2c_nv, &x->h2c_nnv) < 0)
            return reply_error(x, PX_HERR_INTERNAL, "the request head cannot be translated for HTTP/2");
        return 0;
    }
    if (px_http1_write_request_head(&x->up_out, h, &fo) < 0)
        return reply_error(x, PX_HERR_HEADERS_TOO_LARGE, "the rewritten request head is too large");
    if (x->idempotent)
        px_buf_append(&x->replay, px_buf_ptr(&x->up_out), px_buf_size(&x->up_out));
    return 0;
}

int px_exch_req_head(px_exch_t *x)
{
    px_http1_expect_head_response(x->resp, x->is_head);
    if (up_cfg_of(x)->protocol == PX_UP_H2C) {
        x->up_h2c = 1;
        x->chunked_up = 0;              /* HTTP/2 frames the body itself */
    }
    if (x->sig_state != PX_XSIG_VERIFYING) {
        if (upstream_head(x, x->req_head, NULL) < 0)
            return GONE;
        return request_proceed(x);
    }
    /* A signed request's upstream head is written once it has verified
     * (it then carries the verified keyid instead of the signature). */
    if (px_sig_queue_depth() >= PX_SIG_QUEUE_MAX) {
        /* shed load rather than queue without bound behind the crypto */
        x->sig_result = "overloaded";
        return reply_error(x, PX_HERR_OVERLOADED, "too many signature verifications in progress");
    }
    /* Nothing more is read from the client until the head has passed. */
    if (px_sig_verify_async(x->env->loop, x->sig, x->env->rstore, x->req_head, request_verified, x,
                            &x->job) < 0)
        return reply_error(x, PX_HERR_INTERNAL, "cannot queue the signature verification");
    return 0;
}

int px_exch_req_data(px_exch_t *x, const char *p, size_t n)
{
    int rc = 0;
    x->req_bytes += n;
    if (x->sig_state == PX_XSIG_BODY) {
        /* held until its digest is checked: bounded */
        if (x->req_bytes > px_sigctx_max_body(x->sig)) {
            char detail[128];
            snprintf(detail, sizeof detail,
                     "a signed request body is held until verified; the limit is %llu bytes",
                     (unsigned long long)px_sigctx_max_body(x->sig));
            return reply_error(x, PX_HERR_BODY_TOO_LARGE, detail);
        }
        px_digest_update(x->digest, p, n);
    }
    if (x->chunked_up)
        rc = px_http1_chunk_begin(&x->up_out, n);
    if (rc == 0)
        rc = px_buf_append(&x->up_out, p, n);
    if (rc == 0 && x->chunked_up)
        rc = px_http1_chunk_end(&x->up_out);
    if (rc < 0)
        return reply_error(x, PX_HERR_INTERNAL, "out of memory");
    return x->connect_on_body && n ? upstream_start(x) : 0;
}

/* The request's trailer fields for the upstream, as far as they can go:
 * in the last chunk of a chunked HTTP/1.1 request, in the HEADERS that end
 * an h2c stream; never past a signature check (nothing could cover them)
 * nor in a request with a Content-Length to an HTTP/1.1 upstream (no
 * place for them). px_http1_trailer_ok decides which fields may go. */
static PX_MUST_CHECK int request_trailers(px_exch_t *x, const px_header_t *t, int n)
{
    int given = n, dropped = 0, rc = 0;

    if (x->verify != PX_VERIFY_OFF)
        n = 0;
    if (x->chunked_up)
        rc = px_http1_write_last_chunk(&x->up_out, t, n, 1, &dropped);
    else if (x->up_h2c)
        rc = px_h2cx_request_trailers(&x->req_trailers, t, n, &x->trl_nv, &x->trl_nnv, &dropped);
    else
        n = 0;
    if (rc < 0)
        return reply_error(x, PX_HERR_INTERNAL, "out of memory");
    if (given > n - dropped)
        px_debug("%s: %d of %d request trailer fields not forwarded", x->ci.client_addr,
                 given - (n - dropped), given);
    return 0;
}

int px_exch_req_end(px_exch_t *x, const px_header_t *trailers, int n)
{
    if (request_trailers(x, trailers, n) < 0)
        return GONE;
    x->req_done = 1;
    if (x->sig_state == PX_XSIG_BODY) {
        px_digest_value_t v;
        char detail[200];
        px_digest_final(x->digest, &v);
        if (px_content_digest_check(x->info.content_digest, x->info.content_digest_len, &v, detail,
                                    sizeof detail) != PX_SIG_OK) {
            x->sig_result = px_sig_result_name(PX_SIG_DIGEST);
            px_sig_count_result(PX_SIG_DIGEST);
            px_sig_nonce_release(x->sig, x->env->rstore, &x->info);   /* now, before the answer */
            px_info("%s: signed request refused (keyid \"%s\"): %s", x->ci.client_addr, x->info.keyid,
                    detail);
            return reply_error(x, PX_HERR_SIG_DIGEST, detail);
        }
        x->sig_state = PX_XSIG_DONE;        /* verified end to end: now the model may see it */
        return upstream_start(x);
    }
    return x->connect_on_body ? upstream_start(x) : 0;
}

int px_exch_upstream_behind(const px_exch_t *x)
{
    return !x->req_done && x->sig_state != PX_XSIG_BODY && px_buf_size(&x->up_out) >= PX_HIGH_WATER;
}

int px_exch_req_room(px_exch_t *x)
{
    if (x->req_done)
        return 0;                   /* answer in order: wait for this response */
    if (x->sig_state == PX_XSIG_VERIFYING)
        return 0;                   /* no body byte before the signature has passed */
    if (px_exch_upstream_behind(x)) {
        if (px_exch_flush_upstream(x) < 0)  /* it may all leave at once ... */
            return GONE;
        if (px_exch_upstream_behind(x))
            return 0;               /* ... else the upstream is slower: hold the client */
    }
    return 1;
}
