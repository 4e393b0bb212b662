/* The HTTP/1.1 session on a client connection (session.h): requests
 * parsed from the plaintext input one at a time, each carried by the
 * connection's one exchange (proxy/exchange.h), and its response framed
 * back (content-length, chunked with an optional trailer, HTTP/1.0 rules,
 * keep-alive, max_requests_per_conn). 100 Continue is answered when the
 * request may send its body; a small fixed-length response is held to
 * leave in one TLS record; pipelined requests wait, parsed, in the
 * plaintext input and are taken up from the loop once the previous
 * response has left. The header, body, idle and keep-alive timers are
 * the session's. */
#include "http/session.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/log.h"
#include "sig/sigflow.h"

#define RECORD_MAX 16384          /* TLS plaintext record size */

static PX_MUST_CHECK int parse_requests(px_conn_t *c);
static PX_MUST_CHECK int respond_error(px_conn_t *c, px_http_error_t e, const char *detail);
static PX_MUST_CHECK int h1_done(void *s);
static void to_keepalive(px_conn_t *c);
static void compact(px_conn_t *c);
static void log_exchange(px_conn_t *c);

/* The end of a loop callback: whatever the call did to the connection,
 * nothing follows it. The only place a status may be dropped. */
static void settle(int status)
{
    (void)status;
}

static const px_config_t *cfg_of(const px_conn_t *c)
{
    return c->env->cfg;
}

static int request_timed_out(px_conn_t *c)
{
    char detail[128];
    if (uv_now(c->env->loop) >= c->req_deadline) {
        px_m_inc(&c->env->m->request_deadline);
        snprintf(detail, sizeof detail, "the request was not complete within %u ms",
                 cfg_of(c)->timeouts.request);
    } else if (c->tkind == T_HEADER) {
        snprintf(detail, sizeof detail, "request headers not complete within %u ms",
                 cfg_of(c)->timeouts.request_header);
    } else {
        snprintf(detail, sizeof detail, "request body stalled for %u ms",
                 cfg_of(c)->timeouts.body_idle);
    }
    return respond_error(c, PX_HERR_REQUEST_TIMEOUT, detail);
}

/* A pipelined request (or input held back while a response was busy) is
 * taken up from the loop, once the previous response has left: never from
 * inside that response's completion (see conn.h). */
static void resume_cb(px_defer_item_t *it)
{
    px_conn_t *c = ((px_h1_t *)(void *)((char *)it - offsetof(px_h1_t, resume)))->conn;
    if (c->state != C_IDLE)
        return;
    if (px_transport_writing(&c->tp)) {
        c->h1->resume_after_write = 1;
        return;
    }
    settle(px_conn_process(c));
}

static void resume_later(px_conn_t *c)
{
    if (px_transport_writing(&c->tp))
        c->h1->resume_after_write = 1;
    else
        px_defer_add(&c->env->defer, &c->h1->resume, resume_cb);
}

/* Once per exchange, however it ends. */
static void log_exchange(px_conn_t *c)
{
    px_exch_log(&c->h1->x, &c->h1->x.ci);
}

/* An exchange not yet logged is logged now (px_exch_log_unfinished). */
static void log_unfinished(px_conn_t *c, px_end_reason_t why)
{
    px_exch_log_unfinished(&c->h1->x, &c->h1->x.ci, why);
}

/* An exchange answered by respond_error on a connection that stays ends
 * here, from the loop: never under respond_error's caller. The model
 * server's response may have stopped mid-message or in a parse error: its
 * parser starts clean (after a whole response it already is). */
static void done_cb(px_defer_item_t *it)
{
    px_conn_t *c = ((px_h1_t *)(void *)((char *)it - offsetof(px_h1_t, done)))->conn;
    px_http1_limits_t lim;
    if (c->state != C_REQUEST)
        return;
    lim = px_exch_resp_limits(cfg_of(c));
    px_http1_reuse(c->h1->x.resp, &lim, 0);
    settle(h1_done(c));
}

/* After this error the connection can serve the next request: the request
 * was read whole (the next byte starts the next one), the client asked to
 * keep the connection, and the model server or the proxy's capacity failed,
 * not the client. Closing then would cost each client a TLS handshake per
 * request for as long as the model server is down or restarting. Every
 * other error closes: the client's input is not where the next request
 * starts, or the client is the one at fault. */
static int keep_after_error(const px_conn_t *c, px_http_error_t e)
{
    const px_exch_t *x = &c->h1->x;
    switch (e) {
    case PX_HERR_UPSTREAM_ERROR:
    case PX_HERR_UPSTREAM_BAD:
    case PX_HERR_UPSTREAM_TIMEOUT:
    case PX_HERR_UPSTREAM_BUSY:
    case PX_HERR_DEADLINE_EXCEEDED:
    case PX_HERR_OVERLOADED:
    case PX_HERR_REPLAY_STORE_UNAVAILABLE:
        break;
    default:
        return 0;
    }
    return x->active && x->req_done && x->keep_alive && !x->job && c->h1->client_minor == 1 &&
           !c->env->draining && !px_transport_eof(&c->tp);
}

/* Answers with a JSON error and closes gracefully, or (keep_after_error)
 * ends the exchange from the loop with the connection kept. Always GONE:
 * the caller touches neither the exchange nor the connection again. */
static int respond_error(px_conn_t *c, px_http_error_t e, const char *detail)
{
    char buf[1536];
    int n, keep;

    if (c->state >= C_CLOSING)
        return GONE;
    c->h1->x.error = px_http_error_str(e);
    if (c->h1->x.resp_head_sent)        /* too late for a status: a truncated response is all we can signal */
        return px_conn_abort(c, PX_END_INTERNAL);
    px_exch_release_upstream(&c->h1->x, 0);
    keep = keep_after_error(c, e);
    n = px_http_error_render(buf, sizeof buf, e, detail, !keep);
    if (n > 0 && (c->h1->x.active ? c->h1->x.is_head : px_http1_head_request(c->h1->req))) {
        const char *end = strstr(buf, "\r\n\r\n");  /* HEAD: the head alone (RFC 9110 9.3.2) */
        n = end ? (int)(end + 4 - buf) : n;
    }
    c->h1->x.status = px_http_error_status(e);
    c->h1->x.resp_bytes = n > 0 ? (uint64_t)n : 0;
    log_exchange(c);
    if (n > 0 && px_conn_send(c, buf, (size_t)n) < 0)
        return GONE;
    if (!keep || n <= 0)
        return px_conn_begin_close(c);
    px_conn_arm(c, T_NONE);
    if (px_conn_flush(c) < 0)
        return GONE;
    px_defer_add(&c->env->defer, &c->h1->done, done_cb);
    return GONE;
}

/* --- the session's ops (px_sess_ops_t, exchange.h) ------------------------------- */

static PX_MUST_CHECK int h1_send_head(void *s, const px_http_head_t *h, const px_header_t *extra,
                                      int nextra)
{
    px_conn_t *c = s;
    px_exch_t *x = &c->h1->x;
    px_buf_reset(&c->h1->scratch);
    if (c->env->draining)
        x->keep_alive = 0;          /* h1_done will close: say so */
    if ((h->body == PX_BODY_EOF || h->body == PX_BODY_CHUNKED) && c->h1->client_minor == 0)
        x->keep_alive = 0;          /* unframed to HTTP/1.0: the client learns the end from our close */
    if (px_http1_write_response_head(&c->h1->scratch, h, c->h1->client_minor, x->keep_alive, extra, nextra,
                                     &c->h1->chunked_down) < 0)
        return respond_error(c, PX_HERR_UPSTREAM_BAD, "the response head cannot be forwarded");
    if (px_conn_send(c, px_buf_ptr(&c->h1->scratch), px_buf_size(&c->h1->scratch)) < 0)
        return GONE;
    /* Head and body of a response known to fit one record leave together
     * even when the upstream writes them apart: the head waits (no timer)
     * for the body, which ends the response. Streamed responses (chunked,
     * close-delimited, larger) go out as each piece comes; a signed one
     * held whole goes out at once anyway. */
    if (h->status >= 200 && x->rsig_mode != PX_RSIG_HEAD)
        c->h1->hold_small = h->body == PX_BODY_LENGTH && !c->h1->chunked_down && !x->is_head &&
                        h->content_length > 0 &&
                        h->content_length <= RECORD_MAX - px_transport_staged(&c->tp);
    return 0;
}

static PX_MUST_CHECK int h1_send_data(void *s, const char *p, size_t n)
{
    px_conn_t *c = s;
    if (!c->h1->chunked_down)
        return px_conn_send(c, p, n);
    /* One record for framing and data rather than three. */
    px_buf_reset(&c->h1->scratch);
    if (px_http1_chunk_begin(&c->h1->scratch, n) < 0 || px_buf_append(&c->h1->scratch, p, n) < 0 ||
        px_http1_chunk_end(&c->h1->scratch) < 0)
        return px_conn_abort(c, PX_END_INTERNAL);
    return px_conn_send(c, px_buf_ptr(&c->h1->scratch), px_buf_size(&c->h1->scratch));
}

/* The last chunk, with the trailer section when there are fields. */
static PX_MUST_CHECK int h1_send_end(void *s, const px_header_t *trailers, int n)
{
    px_conn_t *c = s;
    int dropped;
    if (!c->h1->chunked_down || c->h1->x.is_head)
        return 0;               /* no chunked body: no place for trailers either */
    if (!n)
        return px_conn_send(c, "0\r\n\r\n", 5);
    px_buf_reset(&c->h1->scratch);
    if (px_http1_write_last_chunk(&c->h1->scratch, trailers, n, 0, &dropped) != 0)
        return px_conn_abort(c, PX_END_INTERNAL);
    return px_conn_send(c, px_buf_ptr(&c->h1->scratch), px_buf_size(&c->h1->scratch));
}

static PX_MUST_CHECK int h1_flush(void *s, int all)
{
    px_conn_t *c = s;
    return all || !c->h1->hold_small ? px_conn_flush(c) : 0;
}

static size_t h1_pending(void *s)
{
    return px_transport_pending(&((px_conn_t *)s)->tp);
}

static int h1_trailers_ok(void *s)
{
    return ((px_conn_t *)s)->h1->client_minor != 0;
}

/* The body may come now: answer 100-continue, and time it. */
static PX_MUST_CHECK int h1_proceed(void *s, int body)
{
    px_conn_t *c = s;
    if (!body) {
        px_conn_arm(c, T_NONE);
        return 0;
    }
    if (px_http1_head(c->h1->req)->expect_continue && px_conn_send(c, "HTTP/1.1 100 Continue\r\n\r\n", 25) < 0)
        return GONE;
    px_conn_arm(c, T_BODY);
    return 0;
}

static PX_MUST_CHECK int h1_resume_input(void *s)
{
    px_conn_t *c = s;
    if (c->state == C_REQUEST)
        return px_conn_process(c);
    return 0;
}

static PX_MUST_CHECK int h1_reply_error(void *s, px_http_error_t e, const char *detail)
{
    return respond_error(s, e, detail);
}

static PX_MUST_CHECK int h1_abort(void *s, px_end_reason_t why)
{
    return px_conn_abort(s, why);
}

/* The exchange's job j returned (px_sess_ops_t.orphaned): 1 when the
 * connection is closing or gone, so the job's result is of no use (the job
 * is freed, and the connection too once its handles are closed). */
static PX_MUST_CHECK int h1_orphaned(void *s, px_sigjob_t *j)
{
    px_conn_t *c = s;
    if (c->state < C_CLOSING)
        return 0;
    px_sigjob_free(j);
    px_conn_free_if_closed(c);
    return 1;
}

static const px_sess_ops_t h1_ops = {
    h1_send_head, h1_send_data, h1_send_end, h1_flush, h1_pending, h1_trailers_ok,
    h1_proceed, h1_resume_input, h1_reply_error, h1_abort, h1_done, h1_orphaned,
};

/* --- between requests, and the requests ------------------------------------------ */

/* An idle connection keeps only what it uses: a keep-alive connection
 * between requests holds no buffers. */
static void compact(px_conn_t *c)
{
    if (c->state != C_IDLE)
        return;
    px_buf_free(&c->h1->scratch);
    px_exch_compact(&c->h1->x);
    px_conn_compact(c);
}

/* A second without a request: release the buffers (a busy connection keeps
 * them, an idle one holds almost nothing) and wait for the rest of the
 * keep-alive time. While output still drains, look again later. */
static void to_keepalive(px_conn_t *c)
{
    if (px_transport_writing(&c->tp)) {
        px_conn_arm(c, T_IDLE);
        return;
    }
    compact(c);
    px_conn_arm(c, T_KEEPALIVE);
}

/* The exchange is over (exchange.h): keep the connection for the next
 * request, or close it. */
static int h1_done(void *s)
{
    px_conn_t *c = s;
    int keep = c->h1->x.keep_alive && c->h1->x.req_done && !c->env->draining && !px_transport_eof(&c->tp);

    px_exch_reset(&c->h1->x);
    c->h1->chunked_down = c->h1->hold_small = 0;
    c->req_deadline = 0;
    if (!keep)
        return px_conn_begin_close(c);
    px_conn_set_state(c, C_IDLE);
    px_conn_arm(c, px_buf_size(px_transport_input(&c->tp)) ? T_HEADER : T_IDLE);
    /* Input waiting (pipelined, or not read while this exchange was busy)
     * is taken up from the loop (resume_cb), never from here. */
    if (px_buf_size(px_transport_input(&c->tp)) || px_tls_in_pending(px_transport_tls(&c->tp)) || !px_transport_reading(&c->tp))
        resume_later(c);
    return 0;
}

static PX_MUST_CHECK int start_exchange(px_conn_t *c)
{
    const px_http_head_t *h = px_http1_head(c->h1->req);
    const px_config_t *cfg = cfg_of(c);
    px_exch_t *x = &c->h1->x;

    px_exch_begin(x, h, cfg, c->env->sig, &c->env->rng);
    c->h1->client_minor = h->http_minor;
    c->h1->chunked_down = c->h1->hold_small = 0;
    px_conn_set_state(c, C_REQUEST);
    if (!c->req_deadline)           /* the head came in one piece: count from now */
        c->req_deadline = uv_now(c->env->loop) + cfg->timeouts.request;
    c->h1->requests++;
    x->keep_alive = h->keep_alive && !c->env->draining &&
                    (!cfg->http.max_requests_per_conn || c->h1->requests < cfg->http.max_requests_per_conn);
    if (px_exch_req_head(x) < 0)
        return GONE;
    if (x->sig_state == PX_XSIG_VERIFYING)
        px_conn_arm(c, T_NONE);             /* nothing more is read until the head has passed */
    return 0;
}

static int parse_requests(px_conn_t *c)
{
    while (c->state == C_IDLE || c->state == C_REQUEST) {
        px_exch_t *x = &c->h1->x;
        const char *data, *detail;
        const px_header_t *trailers;
        size_t used = 0, dlen = 0;
        int ntrailers;
        px_h1_event_t ev;
        px_http_error_t e;

        if (x->active) {
            int room = px_exch_req_room(x);
            if (room < 0)
                return GONE;
            if (!room)
                break;
        }
        /* Called even with no input left: END can follow the last body bytes. */
        ev = px_http1_parse(c->h1->req, px_buf_ptr(px_transport_input(&c->tp)), px_buf_size(px_transport_input(&c->tp)), &used, &data, &dlen);
        switch (ev) {
        case PX_H1_NEED_MORE:
            px_buf_consume(px_transport_input(&c->tp), used);
            if (!x->active && (c->tkind == T_KEEPALIVE || c->tkind == T_IDLE) &&
                !px_http1_idle(c->h1->req))
                px_conn_arm(c, T_HEADER);   /* a new head has begun: it must complete in time */
            goto out;
        case PX_H1_HEAD:
            px_buf_consume(px_transport_input(&c->tp), used);
            if (start_exchange(c) < 0)
                return GONE;
            break;
        case PX_H1_BODY:
            px_conn_arm(c, T_BODY);
            if (px_exch_req_data(x, data, dlen) < 0)     /* copies before the input moves */
                return GONE;
            px_buf_consume(px_transport_input(&c->tp), used);
            break;
        case PX_H1_END:
            px_buf_consume(px_transport_input(&c->tp), used);
            px_conn_arm(c, T_NONE);
            trailers = px_http1_trailers(c->h1->req, &ntrailers);
            if (px_exch_req_end(x, trailers, ntrailers) < 0)
                return GONE;
            break;
        case PX_H1_ERROR:
            e = px_http1_error(c->h1->req, &detail);
            if (!x->active) {
                snprintf(x->method, sizeof x->method, "-");
                x->t_start = uv_hrtime();
            }
            return respond_error(c, e, detail);
        }
    }
out:
    if (px_exch_flush_upstream(&c->h1->x) < 0)
        return GONE;
    return px_conn_flush(c);
}

/* --- the connection's entry points (session.h) ------------------------------------ */

void px_h1_init(px_conn_t *c)
{
    c->h1->conn = c;
    px_buf_init(&c->h1->scratch, 0);
    px_exch_init(&c->h1->x);
    c->h1->x.ops = &h1_ops;
    c->h1->x.sess = c;
    c->h1->x.env = c->env;
}

int px_h1_open(px_conn_t *c)
{
    const px_config_t *cfg = cfg_of(c);
    px_http1_limits_t req_lim, resp_lim;

    req_lim.max_head_bytes = cfg->http.max_header_bytes;
    req_lim.max_headers = 256;
    req_lim.max_body_bytes = cfg->http.max_body_bytes;
    resp_lim = px_exch_resp_limits(cfg);
    c->h1->req = px_http1_new(1, &req_lim);
    if (c->h1->req)
        px_http1_keep_trailers(c->h1->req, 1);    /* forwarded where they can go (exchange.c) */
    c->h1->x.resp = px_http1_new(0, &resp_lim);
    if (c->h1->x.resp)
        px_http1_keep_trailers(c->h1->x.resp, 1);    /* the model server's, forwarded (exchange.c) */
    c->h1->x.ci = (px_conninfo_t){ px_transport_peer(&c->tp), px_transport_peer_ip(&c->tp),
                               px_transport_tls(&c->tp), c->env->worker_id, c->env->m,
                               px_h1_sess.protocol };
    return c->h1->req && c->h1->x.resp ? 0 : -1;
}

void px_h1_free(px_conn_t *c)
{
    if (!c->h1)
        return;
    px_defer_cancel(&c->h1->resume);
    px_defer_cancel(&c->h1->done);
    px_exch_free(&c->h1->x);
    px_http1_free(c->h1->req);
    px_buf_free(&c->h1->scratch);
    free(c->h1);
    c->h1 = NULL;
}

void px_h1_start(px_conn_t *c)
{
    px_conn_set_state(c, C_IDLE);
    px_conn_arm(c, T_HEADER);
}

int px_h1_input(px_conn_t *c)
{
    if (parse_requests(c) < 0)
        return GONE;
    if (px_transport_eof(&c->tp)) {
        if (c->state == C_IDLE)
            return px_conn_begin_close(c);
        if (c->state == C_REQUEST && !c->h1->x.req_done)
            return px_conn_abort(c, PX_END_CLIENT_CLOSED);     /* the client gave up mid-request */
    }
    return 0;
}

void px_h1_written(px_conn_t *c)
{
    px_exch_resp_drained(&c->h1->x);
}

void px_h1_sent(px_conn_t *c)
{
    px_h1_written(c);
    if (c->h1->resume_after_write && !px_transport_writing(&c->tp)) {
        c->h1->resume_after_write = 0;
        if (c->state == C_IDLE)
            resume_later(c);
    }
}

void px_h1_timer(px_conn_t *c)
{
    switch (c->tkind) {
    case T_BODY:
        /* held back for a model server that takes the body slower: the
         * client is not idle (the upstream's own timer runs) */
        if (px_exch_upstream_behind(&c->h1->x) && uv_now(c->env->loop) < c->req_deadline) {
            px_conn_arm(c, T_BODY);
            break;
        }
        /* fall through */
    case T_HEADER:
        settle(request_timed_out(c));
        break;
    case T_IDLE:
        to_keepalive(c);
        break;
    case T_KEEPALIVE:
        settle(px_conn_begin_close(c));
        break;
    default:
        break;
    }
}

int px_h1_abort_prep(px_conn_t *c, px_end_reason_t why)
{
    if (c->h1->hold_small) {            /* what came of a held response goes out, as if not held */
        c->h1->hold_small = 0;
        if (px_conn_flush(c) < 0)
            return GONE;
    }
    log_unfinished(c, why);
    px_h1_stop(c);
    return 0;
}

void px_h1_stop(px_conn_t *c)
{
    px_defer_cancel(&c->h1->resume);
    px_defer_cancel(&c->h1->done);
    px_exch_release_upstream(&c->h1->x, 0);
}

void px_h1_log_unfinished(px_conn_t *c, px_end_reason_t why)
{
    log_unfinished(c, why);
}

int px_h1_idle(px_conn_t *c)
{
    return c->state == C_IDLE && px_buf_size(px_transport_input(&c->tp)) == 0;
}

int px_h1_job_pending(const px_conn_t *c)
{
    return c->h1->x.job != NULL;
}

/* Drain: an idle connection closes now, a busy one after its response
 * (h1_done sees env->draining). */
static PX_MUST_CHECK int h1_drain(px_conn_t *c)
{
    return px_h1_idle(c) ? px_conn_begin_close(c) : 0;
}

const px_conn_sess_t px_h1_sess = {
    "HTTP/1.1", px_h1_input, px_h1_sent, px_h1_written, px_h1_timer, px_h1_abort_prep,
    px_h1_stop, px_h1_log_unfinished, h1_drain, px_h1_job_pending,
};
