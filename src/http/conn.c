/* One client connection (see conn.h).
 *
 * Bytes flow: socket -> TLS input -> (decrypt) -> plaintext input -> request
 * parser -> upstream output -> upstream link; and upstream link -> response
 * parser -> TLS (encrypt) -> socket; the socket and TLS steps are the
 * transport's (transport.h). Each direction has one write in flight
 * and a high-water mark: above it the side that fills it is not read, so
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
#define HIGH_WATER (64 * 1024)      /* per direction, see above */
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
    px_http1_t *req, *resp;
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
static PX_MUST_CHECK int upstream_head(px_conn_t *c, const px_http_head_t *h, const char *keyid);
static PX_MUST_CHECK int upstream_failed(px_conn_t *c, int uverr);
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
    px_http1_free(c->resp);
    px_buf_free(&c->scratch);
    free(c);
    if (env->on_conn_closed)
        env->on_conn_closed(env);
}

/* Frees only here (after the last close callback) or in job_orphaned. */
static void tp_closed(px_transport_t *t)
{
    px_conn_t *c = t->ud;
    if (c->x.job)
        return;                 /* a thread-pool job still points here: freed when it returns */
    conn_free(c);
}

/* A job's callback: 1 when the connection is closing or gone, so the
 * job's result is of no use (the job is freed, and the connection too once
 * its handles are closed). */
static int job_orphaned(px_conn_t *c, px_sigjob_t *j)
{
    c->x.job = NULL;
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
    if (x->up) {
        px_uplink_release(x->up, 0);
        x->up = NULL;
    }
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
    if (c->x.up) {
        px_uplink_release(c->x.up, 0);
        c->x.up = NULL;
    }
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
    if (c->x.up && c->x.upstream_ok && client_pending(c) < HIGH_WATER && !c->x.resp_done)
        px_uplink_read_start(c->x.up);
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

/* What the access log learns from this connection. */
static px_conninfo_t conninfo(px_conn_t *c)
{
    px_conninfo_t ci = { px_transport_peer(&c->tp), px_transport_tls(&c->tp), c->env->worker_id,
                         c->env->m };
    return ci;
}

/* Once per exchange, however it ends. */
static void log_exchange(px_conn_t *c)
{
    px_conninfo_t ci = conninfo(c);
    px_exch_log(&c->x, &ci);
}

/* An exchange not yet logged is logged now (px_exch_log_unfinished). */
static void log_unfinished(px_conn_t *c, px_end_reason_t why)
{
    px_conninfo_t ci = conninfo(c);
    px_exch_log_unfinished(&c->x, &ci, why);
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
    if (c->x.up) {
        px_uplink_release(c->x.up, 0);
        c->x.up = NULL;
    }
    n = px_http_error_render(buf, sizeof buf, e, detail, 1);
    c->x.status = px_http_error_status(e);
    c->x.resp_bytes = n > 0 ? (uint64_t)n : 0;
    log_exchange(c);
    if (n > 0 && send_plain(c, buf, (size_t)n) < 0)
        return GONE;
    return begin_close(c);
}

/* --- the upstream side ------------------------------------------------------------ */

static void up_on_connect(px_uplink_t *l, int status, void *ud);
static void up_on_read(px_uplink_t *l, const char *p, ssize_t n, void *ud);
static void up_on_write(px_uplink_t *l, int status, void *ud);
static const px_uplink_cb_t up_cb = { up_on_connect, up_on_read, up_on_write };

/* Everything queued for the upstream has left. */
static void upstream_sent(px_conn_t *c)
{
    px_exch_t *x = &c->x;
    if (x->req_done && !x->t_sent && px_buf_size(&x->up_out) == 0) {
        x->t_sent = uv_hrtime();
        if (!x->resp_started)
            px_uplink_timeout(x->up, cfg_of(c)->timeouts.upstream_response);
    }
}

static PX_MUST_CHECK int flush_upstream(px_conn_t *c)
{
    px_exch_t *x = &c->x;
    int rc;
    if (!x->up || !x->upstream_ok || px_uplink_writing(x->up))
        return 0;
    if (px_buf_size(&x->up_out) == 0) {
        upstream_sent(c);       /* the request may have ended after its bytes left */
        return 0;
    }
    rc = px_uplink_write(x->up, &x->up_out);
    if (rc < 0)
        return upstream_failed(c, rc);
    if (rc == 1)
        upstream_sent(c);       /* written at once: no on_write will come */
    return 0;
}

static PX_MUST_CHECK int upstream_timed_out(px_conn_t *c, uint32_t ms)
{
    char detail[96];
    px_m_inc(&c->env->m->upstream_errors[PX_UP_TIMEOUT]);
    if (c->x.resp_head_sent) {
        c->x.error = px_end_reason_str(PX_END_UPSTREAM_TIMEOUT);
        return abort_conn(c, PX_END_UPSTREAM_TIMEOUT);
    }
    snprintf(detail, sizeof detail, c->x.upstream_ok ? "the model server did not respond within %u ms"
                                                     : "no connection to the model server within %u ms",
             ms);
    return respond_error(c, PX_HERR_UPSTREAM_TIMEOUT, detail);
}

static int upstream_failed(px_conn_t *c, int uverr)
{
    px_exch_t *x = &c->x;
    char detail[128];

    /* A pooled link can have been closed by the model server just as we
     * took it. Retry once on a fresh connection, only when that is safe:
     * an idempotent request without a body, and nothing came back. */
    if (x->up_reused && !x->resp_started && !x->retried && x->idempotent && x->req_done &&
        px_buf_size(&x->replay) > 0) {
        x->retried = 1;
        px_m_inc(&c->env->m->upstream_retries);
        px_uplink_release(x->up, 0);
        x->up = NULL;
        x->upstream_ok = 0;
        x->up_reused = 0;
        px_buf_reset(&x->up_out);
        if (px_buf_append(&x->up_out, px_buf_ptr(&x->replay), px_buf_size(&x->replay)) == 0 &&
            px_upstream_connect_fresh(c->env->upstream, &up_cb, c, &x->up) == 0)
            return 0;
    }
    px_m_inc(&c->env->m->upstream_errors[x->upstream_ok ? PX_UP_RESET : PX_UP_CONNECT]);
    if (x->resp_head_sent) {
        px_info("%s: upstream failed mid-response (%s); closing", px_transport_peer(&c->tp), uv_strerror(uverr));
        x->error = px_end_reason_str(PX_END_UPSTREAM_RESET);
        return abort_conn(c, PX_END_UPSTREAM_RESET);
    }
    if (uverr == UV_EOF)
        snprintf(detail, sizeof detail, "the model server closed the connection before responding");
    else
        snprintf(detail, sizeof detail, "the model server is unreachable: %s", uv_strerror(uverr));
    return respond_error(c, PX_HERR_UPSTREAM_ERROR, detail);
}

static PX_MUST_CHECK int upstream_connected(px_conn_t *c, int status)
{
    px_exch_t *x = &c->x;
    if (status == UV_ETIMEDOUT)
        return upstream_timed_out(c, cfg_of(c)->timeouts.upstream_connect);
    if (status < 0)
        return upstream_failed(c, status);
    x->upstream_ok = 1;
    px_uplink_read_start(x->up);
    if (flush_upstream(c) < 0)
        return GONE;
    if (c->state == C_REQUEST)
        return conn_process(c);     /* input held back while unconnected may go on */
    return 0;
}

static void up_on_connect(px_uplink_t *l, int status, void *ud)
{
    (void)l;
    settle(upstream_connected(ud, status));
}

static PX_MUST_CHECK int upstream_written(px_conn_t *c, int status)
{
    if (status < 0)
        return upstream_failed(c, status);
    if (px_buf_size(&c->x.up_out) > 0) {
        if (flush_upstream(c) < 0)
            return GONE;
    } else {
        upstream_sent(c);
    }
    /* Room again towards the upstream: take more of the client's body. */
    if (c->state == C_REQUEST)
        return conn_process(c);
    return 0;
}

static void up_on_write(px_uplink_t *l, int status, void *ud)
{
    (void)l;
    settle(upstream_written(ud, status));
}

static PX_MUST_CHECK int write_response_head(px_conn_t *c, const px_http_head_t *h,
                                             const px_header_t *extra, int nextra)
{
    px_exch_t *x = &c->x;
    px_header_t fields[4];      /* extra (at most 2) and the proxy's own */
    nextra = px_exch_response_fields(x, h->status, extra, nextra, fields);
    px_buf_reset(&c->scratch);
    if (c->env->draining)
        x->keep_alive = 0;          /* finish_exchange will close: say so */
    if ((h->body == PX_BODY_EOF || h->body == PX_BODY_CHUNKED) && x->client_minor == 0)
        x->keep_alive = 0;          /* unframed to HTTP/1.0: the client learns the end from our close */
    if (px_http1_write_response_head(&c->scratch, h, x->client_minor, x->keep_alive, fields, nextra,
                                     &x->chunked_down) < 0)
        return respond_error(c, PX_HERR_UPSTREAM_BAD, "the response head cannot be forwarded");
    return send_plain(c, px_buf_ptr(&c->scratch), px_buf_size(&c->scratch));
}

static PX_MUST_CHECK int response_body(px_conn_t *c, const char *p, size_t n)
{
    px_exch_t *x = &c->x;
    x->resp_bytes += n;
    if (x->is_head || n == 0)
        return 0;
    if (!x->chunked_down)
        return send_plain(c, p, n);
    /* One record for framing and data rather than three. */
    px_buf_reset(&c->scratch);
    if (px_http1_chunk_begin(&c->scratch, n) < 0 || px_buf_append(&c->scratch, p, n) < 0 ||
        px_http1_chunk_end(&c->scratch) < 0)
        return abort_conn(c, PX_END_INTERNAL);
    return send_plain(c, px_buf_ptr(&c->scratch), px_buf_size(&c->scratch));
}

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

static void release_upstream(px_conn_t *c, int link_reusable)
{
    px_exch_t *x = &c->x;
    if (x->up)
        px_uplink_release(x->up, link_reusable && x->req_done);
    x->up = NULL;
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

/* The response is complete and handed to the client side. */
static PX_MUST_CHECK int finish_exchange(px_conn_t *c, int link_reusable)
{
    px_exch_t *x = &c->x;
    int keep;

    if (flush_client(c) < 0)
        return GONE;
    release_upstream(c, link_reusable);
    log_exchange(c);
    keep = x->keep_alive && x->req_done && !c->env->draining && !px_transport_eof(&c->tp);
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

/* --- signed responses ------------------------------------------------------------- */

/* Decides how a response is signed: a body known to fit is held and the
 * signature goes in the head; anything streamed (chunked, close-delimited,
 * larger) is relayed as it comes with the signature in a trailer. HTTP/1.0
 * has no trailers: such a streamed response goes unsigned (counted). */
static PX_MUST_CHECK int response_sign_begin(px_conn_t *c, const px_http_head_t *h)
{
    px_exch_t *x = &c->x;
    px_sig_signer_t *signer = px_sigctx_signer(x->sig, c->env->worker_id);
    int held = h->body == PX_BODY_NONE ||
               (h->body == PX_BODY_LENGTH && h->content_length <= px_sigctx_max_body(x->sig));

    if (x->is_head || !signer)
        return 0;
    if (!held && x->client_minor == 0) {
        px_m_inc(&c->env->m->responses_unsigned);
        return 0;
    }
    x->rsig = px_exch_response_signer(x, signer, h->status, !held);
    if (!x->rsig)
        return respond_error(c, PX_HERR_INTERNAL, "cannot sign the response");
    x->rsig_mode = held ? PX_RSIG_HEAD : PX_RSIG_TRAILER;
    return 0;
}

/* The signature is ready: the held response with it in the head, or the
 * trailer that ends a streamed one. */
static PX_MUST_CHECK int send_signed_response(px_conn_t *c, px_sigjob_t *j)
{
    px_exch_t *x = &c->x;
    const px_buf_t *dg = px_sigjob_digest(j), *sg = px_sigjob_signature(j);

    if (px_sigjob_status(j) != 0) {
        if (x->rsig_mode == PX_RSIG_HEAD)
            return respond_error(c, PX_HERR_INTERNAL, "signing the response failed");
        return abort_conn(c, PX_END_SIGNING_FAILED);
    }
    if (x->rsig_mode == PX_RSIG_HEAD) {
        px_header_t extra[2] = {
            { "Content-Digest", 14, px_buf_ptr(dg), px_buf_size(dg) },
            { "X-Signature", 11, px_buf_ptr(sg), px_buf_size(sg) },
        };
        if (write_response_head(c, px_http1_head(c->resp), extra, 2) < 0 ||
            send_plain(c, px_buf_ptr(&x->rbody), px_buf_size(&x->rbody)) < 0)
            return GONE;
        x->resp_head_sent = 1;
    } else {
        px_buf_reset(&c->scratch);
        if (px_buf_printf(&c->scratch, "0\r\nContent-Digest: %.*s\r\nX-Signature: %.*s\r\n\r\n",
                          (int)px_buf_size(dg), px_buf_ptr(dg), (int)px_buf_size(sg),
                          px_buf_ptr(sg)) < 0)
            return abort_conn(c, PX_END_INTERNAL);
        if (send_plain(c, px_buf_ptr(&c->scratch), px_buf_size(&c->scratch)) < 0)
            return GONE;
    }
    px_sig_count_response_signed();
    return finish_exchange(c, x->link_reusable);
}

static void response_signed(px_sigjob_t *j, void *ud)
{
    px_conn_t *c = ud;
    int rc;

    if (job_orphaned(c, j))
        return;
    rc = send_signed_response(c, j);
    px_sigjob_free(j);
    settle(rc);
}

/* The whole response is in: sign it off the event loop. The upstream link
 * is free already. */
static PX_MUST_CHECK int response_sign_finish(px_conn_t *c)
{
    px_exch_t *x = &c->x;
    px_sig_response_t *r = x->rsig;

    x->rsig = NULL;
    release_upstream(c, x->link_reusable);
    if (px_sig_sign_async(c->env->loop, r, response_signed, c, &x->job) == 0)
        return 0;
    if (x->rsig_mode == PX_RSIG_HEAD)
        return respond_error(c, PX_HERR_INTERNAL, "cannot queue the response signature");
    return abort_conn(c, PX_END_SIGNING_FAILED);
}

/* The response's last byte has come: close it towards the client. */
static PX_MUST_CHECK int response_end(px_conn_t *c, int link_reusable)
{
    px_exch_t *x = &c->x;
    x->resp_done = 1;
    x->link_reusable = link_reusable;
    if (x->rsig)
        return response_sign_finish(c);
    if (x->chunked_down && !x->is_head && send_plain(c, "0\r\n\r\n", 5) < 0)
        return GONE;
    return finish_exchange(c, link_reusable);
}

static PX_MUST_CHECK int response_head(px_conn_t *c)
{
    static const px_header_t trailer = { "Trailer", 7, "Content-Digest, X-Signature", 27 };
    const px_http_head_t *h = px_http1_head(c->resp);
    px_exch_t *x = &c->x;

    if (px_http1_is_interim(c->resp))   /* 100 Continue was answered by the proxy itself; forward others (103) */
        return h->status == 100 ? 0 : write_response_head(c, h, NULL, 0);
    x->status = h->status;
    if (!x->req_done)
        x->keep_alive = 0;      /* answered before the body ended: the rest is unread */
    if (x->sign && response_sign_begin(c, h) < 0)
        return GONE;
    if (x->rsig_mode == PX_RSIG_HEAD)
        return 0;               /* the head goes out with its signature, after the body */
    if (x->rsig_mode == PX_RSIG_TRAILER) {
        /* streamed: chunked, the signature in the trailer section */
        px_http_head_t copy = *h;
        copy.body = PX_BODY_CHUNKED;
        if (write_response_head(c, &copy, &trailer, 1) < 0)
            return GONE;
    } else if (write_response_head(c, h, NULL, 0) < 0) {
        return GONE;
    }
    x->resp_head_sent = 1;
    /* Head and body of a response known to fit one record leave together
     * even when the upstream writes them apart: the head waits (no timer)
     * for the body, which ends the response. Streamed responses (chunked,
     * close-delimited, larger) go out as each piece comes. */
    x->hold_small = h->body == PX_BODY_LENGTH && !x->chunked_down && !x->is_head &&
                    h->content_length > 0 &&
                    h->content_length <= RECORD_MAX - px_transport_staged(&c->tp);
    return 0;
}

static PX_MUST_CHECK int upstream_input(px_conn_t *c, px_uplink_t *l, const char *p, ssize_t n)
{
    px_exch_t *x = &c->x;
    size_t off = 0;

    if (n == UV_ETIMEDOUT)
        return upstream_timed_out(c, x->resp_started ? cfg_of(c)->timeouts.upstream_idle
                                                     : cfg_of(c)->timeouts.upstream_response);
    if (n == UV_EOF && x->resp_head_sent && px_http1_finish(c->resp) == PX_H1_END)
        return response_end(c, 0);
    if (n < 0)
        return upstream_failed(c, (int)n);
    if (!x->resp_started) {
        x->resp_started = 1;
        x->t_first = uv_hrtime();
        if (!x->t_sent)
            x->t_sent = x->t_first;
    }
    px_uplink_timeout(l, cfg_of(c)->timeouts.upstream_idle);
    for (;;) {                  /* until NEED_MORE: END can follow the last body bytes */
        const char *data, *detail;
        size_t used = 0, dlen = 0;
        px_h1_event_t ev = px_http1_parse(c->resp, p + off, (size_t)n - off, &used, &data, &dlen);
        off += used;
        switch (ev) {
        case PX_H1_NEED_MORE:
            if (!x->hold_small && flush_client(c) < 0)
                return GONE;
            if (client_pending(c) >= HIGH_WATER)
                px_uplink_read_stop(l);   /* resumed by write_cb */
            return 0;
        case PX_H1_HEAD:
            if (response_head(c) < 0)
                return GONE;
            break;
        case PX_H1_BODY:
            if (x->rsig)
                px_sig_response_update(x->rsig, data, dlen);
            if (x->rsig_mode == PX_RSIG_HEAD) {
                x->resp_bytes += dlen;
                if (px_buf_append(&x->rbody, data, dlen) < 0)
                    return respond_error(c, PX_HERR_INTERNAL, "out of memory");
            } else if (response_body(c, data, dlen) < 0) {
                return GONE;
            }
            break;
        case PX_H1_END:
            if (px_http1_is_interim(c->resp))
                break;
            /* Bytes after the response mean a confused upstream: do not reuse. */
            return response_end(c, off == (size_t)n && px_http1_head(c->resp)->keep_alive);
        case PX_H1_ERROR:
            px_http1_error(c->resp, &detail);
            px_warn("%s: bad response from the model server: %s", px_transport_peer(&c->tp), detail);
            px_m_inc(&c->env->m->upstream_errors[PX_UP_BAD_RESPONSE]);
            return respond_error(c, PX_HERR_UPSTREAM_BAD, detail);
        }
    }
}

static void up_on_read(px_uplink_t *l, const char *p, ssize_t n, void *ud)
{
    settle(upstream_input(ud, l, p, n));
}

/* --- the client side: requests ----------------------------------------------------- */

static PX_MUST_CHECK int upstream_start(px_conn_t *c)
{
    px_exch_t *x = &c->x;
    int rc = px_upstream_acquire(c->env->upstream, &up_cb, c, &x->up, &x->up_reused);
    x->connect_on_body = 0;
    if (rc < 0)
        return upstream_failed(c, rc);
    if (!x->up_reused)
        return 0;
    x->upstream_ok = 1;             /* a pooled link is connected: write now */
    return flush_upstream(c);
}

/* The body may come now: answer 100-continue. The upstream is connected
 * once the body flows (a client that sends a head and then nothing holds
 * no connection to the model server), or, for a signed body, once its
 * digest has been checked. */
static PX_MUST_CHECK int request_proceed(px_conn_t *c)
{
    const px_http_head_t *h = px_http1_head(c->req);
    px_exch_t *x = &c->x;

    if (h->body != PX_BODY_NONE && !(h->body == PX_BODY_LENGTH && h->content_length == 0)) {
        /* The limits were checked on the head: the client may send the body. */
        if (h->expect_continue && send_plain(c, "HTTP/1.1 100 Continue\r\n\r\n", 25) < 0)
            return GONE;
        arm(c, T_BODY);
        x->connect_on_body = x->sig_state != PX_XSIG_BODY;
        return 0;
    }
    arm(c, T_NONE);
    return x->sig_state != PX_XSIG_BODY ? upstream_start(c) : 0;
}

static PX_MUST_CHECK int request_verified_go(px_conn_t *c, px_sig_result_t r)
{
    px_exch_t *x = &c->x;

    if (r != PX_SIG_OK) {
        px_info("%s: signature refused (%s, keyid \"%s\"): %s", px_transport_peer(&c->tp), x->sig_result,
                x->info.keyid, x->info.detail);
        return respond_error(c, px_sig_http_error(r), x->info.detail);
    }
    if (upstream_head(c, px_http1_head(c->req), x->info.keyid) < 0)
        return GONE;
    x->digest = malloc(sizeof *x->digest);
    if (!x->digest || px_digest_init(x->digest, x->info.digest_algs) != 0)
        return respond_error(c, PX_HERR_INTERNAL, "out of memory");
    x->sig_state = PX_XSIG_BODY;
    if (request_proceed(c) < 0)
        return GONE;
    if (c->state == C_REQUEST)
        return conn_process(c);         /* the body (or the end) may be waiting */
    return 0;
}

static void request_verified(px_sigjob_t *j, void *ud)
{
    px_conn_t *c = ud;
    px_sig_result_t r;

    if (job_orphaned(c, j))
        return;
    r = px_sigjob_result(j);
    c->x.info = *px_sigjob_info(j);     /* its pointers are into the request head, still parsed */
    c->x.sig_result = px_sig_result_name(r);
    px_sigjob_free(j);
    settle(request_verified_go(c, r));
}

/* Rewrites the request head for the model server into up_out. The model
 * server trusts X-Verified-Keyid and X-Forwarded-Client-Cert, so the proxy
 * sets them from a verification (a signature; the TLS client certificate)
 * and never forwards a client's, on any route. On routes that verify, the
 * client's signature fields are not forwarded either (the model server
 * needs who, not 6 KB of proof). */
static int upstream_head(px_conn_t *c, const px_http_head_t *h, const char *keyid)
{
    static const char *const sig_fields[] = { "x-verified-keyid", "x-forwarded-client-cert",
                                              "x-signature", "signature", "signature-input" };
    const px_config_t *cfg = cfg_of(c);
    px_exch_t *x = &c->x;
    px_tls_info_t ti;
    px_header_t extra[2];
    px_fwd_opts_t fo;

    memset(&fo, 0, sizeof fo);
    fo.client_ip = px_transport_peer_ip(&c->tp);
    fo.proto = "https";
    fo.trust_forwarded = cfg->http.trust_forwarded;
    fo.request_id = x->request_id;
    fo.drop = sig_fields;
    fo.drop_count = x->verify != PX_VERIFY_OFF ? 5 : 2;
    fo.extra = extra;
    if (keyid && keyid[0])
        extra[fo.extra_count++] = (px_header_t){ "X-Verified-Keyid", 16, keyid, strlen(keyid) };
    px_tls_get_info(px_transport_tls(&c->tp), &ti);
    if (ti.client_xfcc[0])
        extra[fo.extra_count++] = (px_header_t){ "X-Forwarded-Client-Cert", 23, ti.client_xfcc,
                                                 strlen(ti.client_xfcc) };
    if (px_http1_write_request_head(&x->up_out, h, &fo) < 0)
        return respond_error(c, PX_HERR_HEADERS_TOO_LARGE, "the rewritten request head is too large");
    if (x->idempotent)
        px_buf_append(&x->replay, px_buf_ptr(&x->up_out), px_buf_size(&x->up_out));
    return 0;
}

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
    px_http1_expect_head_response(c->resp, x->is_head);
    if (x->sig_state != PX_XSIG_VERIFYING) {
        if (upstream_head(c, h, NULL) < 0)
            return GONE;
        return request_proceed(c);
    }
    /* A signed request's upstream head is written once it has verified
     * (it then carries the verified keyid instead of the signature). */
    if (px_sig_queue_depth() >= PX_SIG_QUEUE_MAX) {
        /* shed load rather than queue without bound behind the crypto */
        x->sig_result = "overloaded";
        return respond_error(c, PX_HERR_OVERLOADED, "too many signature verifications in progress");
    }
    /* Nothing more is read from the client until the head has passed. */
    arm(c, T_NONE);
    if (px_sig_verify_async(c->env->loop, x->sig, c->env->rstore, h, request_verified, c, &x->job) < 0)
        return respond_error(c, PX_HERR_INTERNAL, "cannot queue the signature verification");
    return 0;
}

static PX_MUST_CHECK int request_body(px_conn_t *c, const char *p, size_t n)
{
    px_exch_t *x = &c->x;
    int rc = 0;
    x->req_bytes += n;
    if (x->sig_state == PX_XSIG_BODY) {
        /* held until its digest is checked: bounded */
        if (x->req_bytes > px_sigctx_max_body(x->sig)) {
            char detail[128];
            snprintf(detail, sizeof detail,
                     "a signed request body is held until verified; the limit is %llu bytes",
                     (unsigned long long)px_sigctx_max_body(x->sig));
            return respond_error(c, PX_HERR_BODY_TOO_LARGE, detail);
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
        return respond_error(c, PX_HERR_INTERNAL, "out of memory");
    arm(c, T_BODY);
    return x->connect_on_body && n ? upstream_start(c) : 0;
}

static PX_MUST_CHECK int request_end(px_conn_t *c)
{
    px_exch_t *x = &c->x;
    /* Request trailers are not forwarded (they cannot be vetted here). */
    if (x->chunked_up && px_http1_chunk_last(&x->up_out) < 0)
        return respond_error(c, PX_HERR_INTERNAL, "out of memory");
    x->req_done = 1;
    arm(c, T_NONE);
    if (x->sig_state == PX_XSIG_BODY) {
        px_digest_value_t v;
        char detail[200];
        px_digest_final(x->digest, &v);
        if (px_content_digest_check(x->info.content_digest, x->info.content_digest_len, &v, detail,
                                    sizeof detail) != PX_SIG_OK) {
            x->sig_result = px_sig_result_name(PX_SIG_DIGEST);
            px_sig_count_result(PX_SIG_DIGEST);
            px_info("%s: signed request refused (keyid \"%s\"): %s", px_transport_peer(&c->tp), x->info.keyid,
                    detail);
            return respond_error(c, PX_HERR_SIG_DIGEST, detail);
        }
        x->sig_state = PX_XSIG_DONE;        /* verified end to end: now the model may see it */
        return upstream_start(c);
    }
    return x->connect_on_body ? upstream_start(c) : 0;
}

static int parse_requests(px_conn_t *c)
{
    while (c->state == C_IDLE || c->state == C_REQUEST) {
        px_exch_t *x = &c->x;
        const char *data, *detail;
        size_t used = 0, dlen = 0;
        px_h1_event_t ev;
        px_http_error_t e;

        if (x->active && x->req_done)
            break;                  /* answer in order: wait for this response */
        if (x->active && x->sig_state == PX_XSIG_VERIFYING)
            break;                  /* no body byte before the signature has passed */
        if (x->active && x->sig_state != PX_XSIG_BODY && px_buf_size(&x->up_out) >= HIGH_WATER) {
            if (flush_upstream(c) < 0)  /* it may all leave at once ... */
                return GONE;
            if (px_buf_size(&x->up_out) >= HIGH_WATER)
                break;              /* ... else the upstream is slower: hold the client */
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
            if (request_body(c, data, dlen) < 0)     /* copies before the input moves */
                return GONE;
            px_buf_consume(px_transport_input(&c->tp), used);
            break;
        case PX_H1_END:
            px_buf_consume(px_transport_input(&c->tp), used);
            if (request_end(c) < 0)
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
    if (flush_upstream(c) < 0)
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
    c->resp = px_http1_new(0, &resp_lim);
    if (!px_transport_tls(&c->tp) || !c->req || !c->resp) {
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
