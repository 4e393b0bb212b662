/* One client connection (see conn.h).
 *
 * Bytes flow: socket -> TLS input -> (decrypt) -> plaintext input -> request
 * parser -> upstream output -> upstream link; and upstream link -> response
 * parser -> TLS (encrypt) -> socket; the socket and TLS steps are the
 * transport's (transport.h). Each direction has one write in flight
 * and a high-water mark (PX_HIGH_WATER): above it the side that fills it is not read, so
 * memory per connection is bounded whatever the body sizes.
 *
 * Requests on a connection are answered strictly in order, one exchange at
 * a time; pipelined requests wait, parsed, in the plaintext input. */
#include "http/conn.h"

#include <assert.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/errors.h"
#include "proxy/exchange.h"
#include "http/http1.h"
#include "core/log.h"
#include "sig/sigflow.h"
#include "net/transport.h"

#define PLAIN_CHUNK (16 * 1024)     /* input room beyond a full head */
#define LINGER_MS 3000              /* after our FIN, wait this long for the client's */

typedef enum { C_HANDSHAKE, C_IDLE, C_REQUEST, C_CLOSING, C_CLOSED } cstate_t;
/* T_IDLE: the first second between requests; then buffers are released
 * and the rest of the keep-alive time runs as T_KEEPALIVE. */
typedef enum { T_NONE, T_HANDSHAKE, T_HEADER, T_IDLE, T_KEEPALIVE, T_BODY, T_LINGER } tkind_t;

#define IDLE_COMPACT_MS 1000
struct px_conn {
    px_conn_env_t *env;
    px_transport_t tp;           /* socket + TLS session; its timer expires for tkind (see arm) */
    cstate_t state;
    tkind_t tkind;
    px_buf_t scratch;            /* response heads and chunk framing */
    px_http1_t *req;             /* the request parser (the exchange has the response's) */
    px_exch_t x;               /* the exchange in progress */
    uint32_t requests;
    uint64_t req_deadline;       /* loop ms by which the request must be complete; 0: none yet */
    px_defer_item_t resume;      /* input taken up from the loop (resume_cb) */
    int resume_after_write;      /* ... once the write in flight has left */
    px_conn_t *next, *prev;
};

/* The close rule (conn.h): every function below that can close the
 * connection, or end its exchange, returns PX_MUST_CHECK int; GONE means
 * nothing may touch the connection's handles or parse its input any more,
 * and the caller returns GONE at once. Loop callbacks end with settle(). */
#define GONE (-1)

static PX_MUST_CHECK int conn_process(px_conn_t *c);
static PX_MUST_CHECK int flush_client(px_conn_t *c);
static PX_MUST_CHECK int begin_close(px_conn_t *c);
static PX_MUST_CHECK int abort_conn(px_conn_t *c, px_end_reason_t why);
static PX_MUST_CHECK int parse_requests(px_conn_t *c);
static PX_MUST_CHECK int respond_error(px_conn_t *c, px_http_error_t e, const char *detail);
static PX_MUST_CHECK int transport_failed(px_conn_t *c);
static void update_reading(px_conn_t *c);
static void compact(px_conn_t *c);
static void log_exchange(px_conn_t *c);
static void log_unfinished(px_conn_t *c, px_end_reason_t why);

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

/* Closing is one way: no transition leaves C_CLOSING or C_CLOSED for an
 * earlier state (a connection that was closed under a caller's feet stays
 * closed, whatever that caller does next). */
static void set_state(px_conn_t *c, cstate_t s)
{
    assert(c->state < C_CLOSING || s >= c->state);
    if (c->state >= C_CLOSING && s < c->state)
        return;
    c->state = s;
}

/* --- timers ------------------------------------------------------------------ */

/* Lazy (ltimer.h): moving the deadline on every request is cheap. A new
 * request head (T_HEADER) also starts the request's total deadline, which
 * caps the header and body timers that follow. */
static void arm(px_conn_t *c, tkind_t kind)
{
    const px_timeouts_config_t *to = &cfg_of(c)->timeouts;
    uint32_t ms = 0;
    c->tkind = kind;
    switch (kind) {
    case T_HANDSHAKE: ms = to->handshake; break;
    case T_HEADER:    ms = to->request_header; break;
    case T_IDLE:      ms = to->keepalive_idle > IDLE_COMPACT_MS ? IDLE_COMPACT_MS : to->keepalive_idle; break;
    case T_KEEPALIVE: ms = to->keepalive_idle > IDLE_COMPACT_MS ? to->keepalive_idle - IDLE_COMPACT_MS : 1; break;
    case T_BODY:      ms = to->body_idle; break;
    case T_LINGER:    ms = LINGER_MS; break;
    case T_NONE:      break;
    }
    if (kind == T_HEADER)
        c->req_deadline = uv_now(c->env->loop) + to->request;
    if ((kind == T_HEADER || kind == T_BODY) && c->req_deadline) {
        uint64_t now = uv_now(c->env->loop);
        uint64_t left = c->req_deadline > now ? c->req_deadline - now : 1;
        if (left < ms)
            ms = (uint32_t)left;
    }
    px_transport_arm(&c->tp, ms);
}

static void to_keepalive(px_conn_t *c);

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

/* A handshake that ends without completing, however it ends (refused, timed
 * out, reset by the client): its failure and any HelloRetryRequest counted once. */
static void count_failed_handshake(px_conn_t *c, int result)
{
    if (px_tls_hrr(px_transport_tls(&c->tp)))
        px_m_inc(&c->env->m->hs_hrr[px_tls_hrr(px_transport_tls(&c->tp)) - 1]);
    px_m_inc(&c->env->m->hs_fail[result]);
}

static void tp_timer(px_transport_t *t)
{
    px_conn_t *c = t->ud;
    switch (c->tkind) {
    case T_HANDSHAKE:
        count_failed_handshake(c, PX_HS_TIMEOUT);
        px_debug("%s: TLS handshake timed out", px_transport_peer(&c->tp));
        settle(abort_conn(c, PX_END_CLIENT_CLOSED));
        break;
    case T_HEADER:
    case T_BODY:
        settle(request_timed_out(c));
        break;
    case T_IDLE:
        to_keepalive(c);
        break;
    case T_KEEPALIVE:
        settle(begin_close(c));
        break;
    case T_LINGER:
        settle(abort_conn(c, PX_END_CLIENT_CLOSED));
        break;
    case T_NONE:
        break;
    }
}

/* --- teardown ------------------------------------------------------------------ */

static void conn_free(px_conn_t *c)
{
    px_conn_env_t *env = c->env;
    px_defer_cancel(&c->resume);
    px_exch_free(&c->x);
    if (c->prev)
        c->prev->next = c->next;
    else
        env->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    env->conn_count--;
    px_m_dec(&env->m->conns_open);
    px_transport_free(&c->tp);
    px_http1_free(c->req);
    px_buf_free(&c->scratch);
    free(c);
    if (env->on_conn_closed)
        env->on_conn_closed(env);
}

/* Frees only here (after the last close callback) or in h1_orphaned. */
static void tp_closed(px_transport_t *t)
{
    px_conn_t *c = t->ud;
    if (c->x.job)
        return;                 /* a thread-pool job still points here: freed when it returns */
    conn_free(c);
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
    if (c->state == C_CLOSED && !px_transport_handles_open(&c->tp))
        conn_free(c);
    return 1;
}

/* Closes at once (see log_unfinished). */
static int abort_conn(px_conn_t *c, px_end_reason_t why)
{
    px_exch_t *x = &c->x;
    if (c->state == C_CLOSED)
        return GONE;
    if (x->hold_small) {            /* what came of a held response goes out, as if not held */
        x->hold_small = 0;
        if (flush_client(c) < 0)
            return GONE;
    }
    log_unfinished(c, why);
    set_state(c, C_CLOSED);
    px_defer_cancel(&c->resume);
    px_exch_release_upstream(x, 0);
    px_transport_close(&c->tp);
    return GONE;
}

/* Graceful: finish writing, close_notify, FIN, then wait briefly for the
 * client's FIN so that unread input does not turn our close into a reset
 * that destroys the response in flight. Always GONE: the exchange is over. */
static int begin_close(px_conn_t *c)
{
    if (c->state >= C_CLOSING)
        return GONE;
    set_state(c, C_CLOSING);
    px_defer_cancel(&c->resume);
    px_exch_release_upstream(&c->x, 0);
    if (px_transport_begin_close(&c->tp, 1) < 0)    /* close_notify after the staged bytes */
        return transport_failed(c);
    arm(c, T_LINGER);
    if (flush_client(c) < 0)
        return GONE;
    update_reading(c);
    return GONE;
}

/* --- the next request, from the loop --------------------------------------------- */

/* A pipelined request (or input held back while a response was busy) is
 * taken up from the loop, once the previous response has left: never from
 * inside that response's completion (see conn.h). */
static void resume_cb(px_defer_item_t *it)
{
    px_conn_t *c = (px_conn_t *)((char *)it - offsetof(px_conn_t, resume));
    if (c->state != C_IDLE)
        return;
    if (px_transport_writing(&c->tp)) {
        c->resume_after_write = 1;
        return;
    }
    settle(conn_process(c));
}

static void resume_later(px_conn_t *c)
{
    if (px_transport_writing(&c->tp))
        c->resume_after_write = 1;
    else
        px_defer_add(&c->env->defer, &c->resume, resume_cb);
}

/* --- client I/O ------------------------------------------------------------------ */

static size_t client_pending(px_conn_t *c)
{
    return px_transport_pending(&c->tp);
}

/* A transport call failed: close at once with its reason. */
static int transport_failed(px_conn_t *c)
{
    return abort_conn(c, px_transport_why(&c->tp));
}

/* Output has left: drop idle buffers, resume the upstream below the mark. */
static void client_written(px_conn_t *c)
{
    px_exch_resp_drained(&c->x);
}

static int flush_client(px_conn_t *c)
{
    int rc = px_transport_flush(&c->tp);
    if (rc < 0)
        return transport_failed(c);
    if (rc == 1)
        client_written(c);      /* it all left at once */
    return 0;
}

#define RECORD_MAX 16384          /* TLS plaintext record size */

/* Plaintext for the client (staged to share records, transport.h). */
static PX_MUST_CHECK int send_plain(px_conn_t *c, const char *p, size_t n)
{
    return px_transport_send(&c->tp, p, n) < 0 ? transport_failed(c) : 0;
}

/* --- transport callbacks (loop callbacks: each ends with settle) ------------------ */

static void tp_input(px_transport_t *t)
{
    settle(conn_process(t->ud));
}

static void tp_sent(px_transport_t *t)
{
    px_conn_t *c = t->ud;
    client_written(c);
    if (c->resume_after_write && !px_transport_writing(t)) {
        c->resume_after_write = 0;
        if (c->state == C_IDLE)
            resume_later(c);
    }
}

static void tp_fail(px_transport_t *t, px_end_reason_t why, int read_failed)
{
    px_conn_t *c = t->ud;
    if (read_failed && c->state == C_HANDSHAKE && px_transport_got_bytes(t))
        count_failed_handshake(c, PX_HS_FAILED);
    settle(abort_conn(c, why));
}

static const px_transport_cb_t tp_cb = { tp_input, tp_sent, tp_fail, tp_timer, tp_closed };

static size_t pin_max(const px_conn_t *c)
{
    return cfg_of(c)->http.max_header_bytes + 2 * PLAIN_CHUNK;
}

static void update_reading(px_conn_t *c)
{
    px_transport_set_input_max(&c->tp, pin_max(c));
    px_transport_update_reading(&c->tp);
}

/* Decrypts what has arrived into the plaintext input. */
static PX_MUST_CHECK int decrypt_input(px_conn_t *c)
{
    int rc;
    px_transport_set_input_max(&c->tp, pin_max(c));
    rc = px_transport_decrypt(&c->tp);
    if (rc == -1)
        return transport_failed(c);
    if (rc == -2) {             /* the client broke the session: its alert leaves first */
        log_unfinished(c, PX_END_CLIENT_TLS);
        return begin_close(c);
    }
    return 0;
}

/* --- access log and counters ------------------------------------------------------ */

/* Once per exchange, however it ends. */
static void log_exchange(px_conn_t *c)
{
    px_exch_log(&c->x, &c->x.ci);
}

/* An exchange not yet logged is logged now (px_exch_log_unfinished). */
static void log_unfinished(px_conn_t *c, px_end_reason_t why)
{
    px_exch_log_unfinished(&c->x, &c->x.ci, why);
}

/* --- errors answered by the proxy ------------------------------------------------ */

/* Answers with a JSON error and closes gracefully. Always GONE. */
static int respond_error(px_conn_t *c, px_http_error_t e, const char *detail)
{
    char buf[1536];
    int n;

    if (c->state >= C_CLOSING)
        return GONE;
    c->x.error = px_http_error_str(e);
    if (c->x.resp_head_sent)        /* too late for a status: a truncated response is all we can signal */
        return abort_conn(c, PX_END_INTERNAL);
    px_exch_release_upstream(&c->x, 0);
    n = px_http_error_render(buf, sizeof buf, e, detail, 1);
    c->x.status = px_http_error_status(e);
    c->x.resp_bytes = n > 0 ? (uint64_t)n : 0;
    log_exchange(c);
    if (n > 0 && send_plain(c, buf, (size_t)n) < 0)
        return GONE;
    return begin_close(c);
}

/* --- the session's ops (exchange.h) ------------------------------------------------- */

static PX_MUST_CHECK int h1_send_head(void *s, const px_http_head_t *h, const px_header_t *extra,
                                      int nextra)
{
    px_conn_t *c = s;
    px_exch_t *x = &c->x;
    px_buf_reset(&c->scratch);
    if (c->env->draining)
        x->keep_alive = 0;          /* h1_done will close: say so */
    if ((h->body == PX_BODY_EOF || h->body == PX_BODY_CHUNKED) && x->client_minor == 0)
        x->keep_alive = 0;          /* unframed to HTTP/1.0: the client learns the end from our close */
    if (px_http1_write_response_head(&c->scratch, h, x->client_minor, x->keep_alive, extra, nextra,
                                     &x->chunked_down) < 0)
        return respond_error(c, PX_HERR_UPSTREAM_BAD, "the response head cannot be forwarded");
    if (send_plain(c, px_buf_ptr(&c->scratch), px_buf_size(&c->scratch)) < 0)
        return GONE;
    /* Head and body of a response known to fit one record leave together
     * even when the upstream writes them apart: the head waits (no timer)
     * for the body, which ends the response. Streamed responses (chunked,
     * close-delimited, larger) go out as each piece comes; a signed one
     * held whole goes out at once anyway. */
    if (h->status >= 200 && x->rsig_mode != PX_RSIG_HEAD)
        x->hold_small = h->body == PX_BODY_LENGTH && !x->chunked_down && !x->is_head &&
                        h->content_length > 0 &&
                        h->content_length <= RECORD_MAX - px_transport_staged(&c->tp);
    return 0;
}

static PX_MUST_CHECK int h1_send_data(void *s, const char *p, size_t n)
{
    px_conn_t *c = s;
    if (!c->x.chunked_down)
        return send_plain(c, p, n);
    /* One record for framing and data rather than three. */
    px_buf_reset(&c->scratch);
    if (px_http1_chunk_begin(&c->scratch, n) < 0 || px_buf_append(&c->scratch, p, n) < 0 ||
        px_http1_chunk_end(&c->scratch) < 0)
        return abort_conn(c, PX_END_INTERNAL);
    return send_plain(c, px_buf_ptr(&c->scratch), px_buf_size(&c->scratch));
}

/* The last chunk, with the trailer section when there are fields. */
static PX_MUST_CHECK int h1_send_end(void *s, const px_header_t *trailers, int n)
{
    px_conn_t *c = s;
    int i, rc;
    if (!n)
        return c->x.chunked_down && !c->x.is_head ? send_plain(c, "0\r\n\r\n", 5) : 0;
    px_buf_reset(&c->scratch);
    rc = px_buf_append(&c->scratch, "0\r\n", 3);
    for (i = 0; i < n && rc == 0; i++)
        rc = px_buf_printf(&c->scratch, "%.*s: %.*s\r\n", (int)trailers[i].name_len, trailers[i].name,
                           (int)trailers[i].value_len, trailers[i].value);
    if (rc < 0 || px_buf_append(&c->scratch, "\r\n", 2) < 0)
        return abort_conn(c, PX_END_INTERNAL);
    return send_plain(c, px_buf_ptr(&c->scratch), px_buf_size(&c->scratch));
}

static PX_MUST_CHECK int h1_flush(void *s, int all)
{
    px_conn_t *c = s;
    return all || !c->x.hold_small ? flush_client(c) : 0;
}

static size_t h1_pending(void *s)
{
    return client_pending(s);
}

static int h1_trailers_ok(void *s)
{
    return ((px_conn_t *)s)->x.client_minor != 0;
}

/* The body may come now: answer 100-continue, and time it. */
static PX_MUST_CHECK int h1_proceed(void *s, int body)
{
    px_conn_t *c = s;
    if (!body) {
        arm(c, T_NONE);
        return 0;
    }
    if (px_http1_head(c->req)->expect_continue && send_plain(c, "HTTP/1.1 100 Continue\r\n\r\n", 25) < 0)
        return GONE;
    arm(c, T_BODY);
    return 0;
}

static PX_MUST_CHECK int h1_resume_input(void *s)
{
    px_conn_t *c = s;
    if (c->state == C_REQUEST)
        return conn_process(c);
    return 0;
}

static PX_MUST_CHECK int h1_reply_error(void *s, px_http_error_t e, const char *detail)
{
    return respond_error(s, e, detail);
}

static PX_MUST_CHECK int h1_abort(void *s, px_end_reason_t why)
{
    return abort_conn(s, why);
}

static PX_MUST_CHECK int h1_done(void *s);

static const px_sess_ops_t h1_ops = {
    h1_send_head, h1_send_data, h1_send_end, h1_flush, h1_pending, h1_trailers_ok,
    h1_proceed, h1_resume_input, h1_reply_error, h1_abort, h1_done, h1_orphaned,
};

/* An idle connection keeps only what it uses: a keep-alive connection
 * between requests holds no buffers. */
static void compact(px_conn_t *c)
{
    if (c->state != C_IDLE)
        return;
    px_buf_free(&c->scratch);
    px_exch_compact(&c->x);
    px_transport_compact(&c->tp);
}

/* A second without a request: release the buffers (a busy connection keeps
 * them, an idle one holds almost nothing) and wait for the rest of the
 * keep-alive time. While output still drains, look again later. */
static void to_keepalive(px_conn_t *c)
{
    if (px_transport_writing(&c->tp)) {
        arm(c, T_IDLE);
        return;
    }
    compact(c);
    arm(c, T_KEEPALIVE);
}

/* The exchange is over (exchange.h): keep the connection for the next
 * request, or close it. */
static int h1_done(void *s)
{
    px_conn_t *c = s;
    int keep = c->x.keep_alive && c->x.req_done && !c->env->draining && !px_transport_eof(&c->tp);

    px_exch_reset(&c->x);
    c->req_deadline = 0;
    if (!keep)
        return begin_close(c);
    set_state(c, C_IDLE);
    arm(c, px_buf_size(px_transport_input(&c->tp)) ? T_HEADER : T_IDLE);
    /* Input waiting (pipelined, or not read while this exchange was busy)
     * is taken up from the loop (resume_cb), never from here. */
    if (px_buf_size(px_transport_input(&c->tp)) || px_tls_in_pending(px_transport_tls(&c->tp)) || !px_transport_reading(&c->tp))
        resume_later(c);
    return 0;
}

/* --- the client side: requests ----------------------------------------------------- */

static PX_MUST_CHECK int start_exchange(px_conn_t *c)
{
    const px_http_head_t *h = px_http1_head(c->req);
    const px_config_t *cfg = cfg_of(c);
    px_exch_t *x = &c->x;

    px_exch_begin(x, h, cfg, c->env->sig, &c->env->rng);
    set_state(c, C_REQUEST);
    if (!c->req_deadline)           /* the head came in one piece: count from now */
        c->req_deadline = uv_now(c->env->loop) + cfg->timeouts.request;
    c->requests++;
    x->keep_alive = h->keep_alive && !c->env->draining &&
                    (!cfg->http.max_requests_per_conn || c->requests < cfg->http.max_requests_per_conn);
    if (px_exch_req_head(x) < 0)
        return GONE;
    if (x->sig_state == PX_XSIG_VERIFYING)
        arm(c, T_NONE);             /* nothing more is read until the head has passed */
    return 0;
}

static int parse_requests(px_conn_t *c)
{
    while (c->state == C_IDLE || c->state == C_REQUEST) {
        px_exch_t *x = &c->x;
        const char *data, *detail;
        size_t used = 0, dlen = 0;
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
        ev = px_http1_parse(c->req, px_buf_ptr(px_transport_input(&c->tp)), px_buf_size(px_transport_input(&c->tp)), &used, &data, &dlen);
        switch (ev) {
        case PX_H1_NEED_MORE:
            px_buf_consume(px_transport_input(&c->tp), used);
            if (!x->active && (c->tkind == T_KEEPALIVE || c->tkind == T_IDLE) &&
                !px_http1_idle(c->req))
                arm(c, T_HEADER);   /* a new head has begun: it must complete in time */
            goto out;
        case PX_H1_HEAD:
            px_buf_consume(px_transport_input(&c->tp), used);
            if (start_exchange(c) < 0)
                return GONE;
            break;
        case PX_H1_BODY:
            arm(c, T_BODY);
            if (px_exch_req_data(x, data, dlen) < 0)     /* copies before the input moves */
                return GONE;
            px_buf_consume(px_transport_input(&c->tp), used);
            break;
        case PX_H1_END:
            px_buf_consume(px_transport_input(&c->tp), used);
            arm(c, T_NONE);
            if (px_exch_req_end(x) < 0)
                return GONE;
            break;
        case PX_H1_ERROR:
            e = px_http1_error(c->req, &detail);
            if (!x->active) {
                snprintf(x->method, sizeof x->method, "-");
                x->t_start = uv_hrtime();
            }
            return respond_error(c, e, detail);
        }
    }
out:
    if (px_exch_flush_upstream(&c->x) < 0)
        return GONE;
    return flush_client(c);
}

static PX_MUST_CHECK int handshake(px_conn_t *c)
{
    px_tls_info_t ti;
    px_metrics_t *m = c->env->m;
    int rc = px_tls_handshake(px_transport_tls(&c->tp));

    if (rc == PX_EAGAIN) {
        if (flush_client(c) < 0)
            return GONE;
        update_reading(c);
        return 0;
    }
    if (rc != 0 && !px_transport_got_bytes(&c->tp) && px_transport_eof(&c->tp))   /* connected and left without a byte: a TCP health probe */
        return abort_conn(c, PX_END_CLIENT_CLOSED);
    if (rc != 0) {
        px_tls_fail_t why = px_tls_fail_reason(px_transport_tls(&c->tp));
        count_failed_handshake(c, why == PX_TLS_FAIL_NONE ? PX_HS_FAILED : (int)why - 1);
        px_info("%s: TLS handshake refused: %s", px_transport_peer(&c->tp), px_tls_error(px_transport_tls(&c->tp)));
        set_state(c, C_CLOSING);          /* send the alert, then close */
        if (px_transport_begin_close(&c->tp, 0) < 0)
            return transport_failed(c);
        arm(c, T_LINGER);
        if (flush_client(c) < 0)
            return GONE;
        update_reading(c);
        return GONE;
    }
    if (px_tls_hrr(px_transport_tls(&c->tp)))
        px_m_inc(&m->hs_hrr[px_tls_hrr(px_transport_tls(&c->tp)) - 1]);
    px_tls_get_info(px_transport_tls(&c->tp), &ti);
    px_m_inc(&m->hs_ok[px_m_group_index(ti.group_id)][px_m_cipher_index(ti.cipher)]);
    px_m_inc(&m->hs_cert_key[px_m_cert_key_index(ti.cert_key)]);
    if (ti.resumed)
        px_m_inc(&m->hs_resumed);
    px_debug("%s: TLS %s %s %s sni=%s", px_transport_peer(&c->tp), ti.version, ti.group, ti.cipher, ti.sni);
    set_state(c, C_IDLE);
    arm(c, T_HEADER);
    return 0;
}

static int conn_process(px_conn_t *c)
{
    if (c->state == C_HANDSHAKE) {
        if (handshake(c) < 0)
            return GONE;
        if (c->state == C_HANDSHAKE)
            return 0;               /* more of the handshake to come */
    }
    if (c->state != C_IDLE && c->state != C_REQUEST)
        return GONE;
    if (decrypt_input(c) < 0 || parse_requests(c) < 0)
        return GONE;
    if (px_transport_eof(&c->tp)) {
        if (c->state == C_IDLE)
            return begin_close(c);
        if (c->state == C_REQUEST && !c->x.req_done)
            return abort_conn(c, PX_END_CLIENT_CLOSED);     /* the client gave up mid-request */
    }
    update_reading(c);
    return 0;
}

/* --- accept, drain --------------------------------------------------------------- */

int px_conn_accept(px_conn_env_t *env, int fd)
{
    px_conn_t *c = calloc(1, sizeof *c);
    const px_config_t *cfg = env->cfg;
    int rc;
    px_http1_limits_t req_lim, resp_lim;

    if (!c) {
        close(fd);
        return UV_ENOMEM;
    }
    c->env = env;
    px_transport_init(&c->tp, env->loop, &tp_cb, c);
    c->next = env->conns;
    if (env->conns)
        env->conns->prev = c;
    env->conns = c;
    env->conn_count++;
    px_m_inc(&env->m->conns_open);
    px_buf_init(&c->scratch, 0);
    px_exch_init(&c->x);
    c->x.ops = &h1_ops;
    c->x.sess = c;
    c->x.env = env;

    rc = px_transport_open(&c->tp, fd);
    if (rc != 0)
        goto fail;
    px_m_inc(&env->m->conns_total);
    /* conn_count includes this one; each worker takes its share, rounded up. */
    if (env->conn_count > (cfg->max_connections + (uint32_t)cfg->workers - 1) / (uint32_t)cfg->workers ||
        env->draining) {
        px_m_inc(&env->m->conns_rejected);
        rc = UV_EBUSY;
        goto fail;
    }
    req_lim.max_head_bytes = cfg->http.max_header_bytes;
    req_lim.max_headers = 256;
    req_lim.max_body_bytes = cfg->http.max_body_bytes;
    resp_lim = req_lim;
    resp_lim.max_body_bytes = 0;
    px_transport_set_tls(&c->tp, px_tls_new(env->tls, NULL), pin_max(c));
    c->req = px_http1_new(1, &req_lim);
    c->x.resp = px_http1_new(0, &resp_lim);
    c->x.ci = (px_conninfo_t){ px_transport_peer(&c->tp), px_transport_peer_ip(&c->tp),
                               px_transport_tls(&c->tp), env->worker_id, env->m };
    if (!px_transport_tls(&c->tp) || !c->req || !c->x.resp) {
        rc = UV_ENOMEM;
        goto fail;
    }
    c->state = C_HANDSHAKE;
    arm(c, T_HANDSHAKE);
    update_reading(c);
    return 0;
fail:
    settle(abort_conn(c, PX_END_CLIENT_CLOSED));
    return rc;
}

void px_conn_drain_all(px_conn_env_t *env)
{
    env->draining = 1;
    for (px_conn_t *c = env->conns, *next; c; c = next) {
        next = c->next;
        if (c->state == C_IDLE && px_buf_size(px_transport_input(&c->tp)) == 0)
            settle(begin_close(c));
    }
}

void px_conn_close_all(px_conn_env_t *env)
{
    for (px_conn_t *c = env->conns, *next; c; c = next) {
        next = c->next;
        settle(abort_conn(c, PX_END_SHUTDOWN));
    }
}
