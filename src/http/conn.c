/* One client connection (see conn.h): accept, the TLS handshake (its
 * timer and failure counters), closing (at once, or gracefully with a
 * lingering close), drain and close-all, and the choice of the session
 * that serves it after the handshake by ALPN: HTTP/2 (h2_session.c) or
 * HTTP/1.1 (h1.c), both reached through c->sess (session.h).
 *
 * Bytes flow: socket -> TLS input -> (decrypt) -> plaintext input -> the
 * session's request parser -> the exchange's upstream output -> upstream
 * link; and upstream link -> response parser -> session framing -> TLS
 * (encrypt) -> socket; the socket and TLS steps are the transport's
 * (transport.h), the upstream's the exchange's (proxy/exchange.h). Each
 * direction has one write in flight and a high-water mark
 * (PX_HIGH_WATER): above it the side that fills it is not read, so memory
 * per connection is bounded whatever the body sizes. */
#include "http/conn.h"

#include <assert.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/errors.h"
#include "core/log.h"
#include "http/h2_mem.h"
#include "http/session.h"

#define PLAIN_CHUNK (16 * 1024)     /* input room beyond a full head */
#define LINGER_MS 3000              /* after our FIN, wait this long for the client's */
#define IDLE_COMPACT_MS 1000
#define TRIM_EVERY_MS 1000

/* The close rule (conn.h, session.h): every function below that can close
 * the connection returns PX_MUST_CHECK int; GONE means nothing may touch
 * the connection's handles or parse its input any more, and the caller
 * returns GONE at once. Loop callbacks end with settle(). */

static PX_MUST_CHECK int transport_failed(px_conn_t *c);
static void update_reading(px_conn_t *c);
static PX_MUST_CHECK int linger_close(px_conn_t *c, int close_notify);

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
void px_conn_set_state(px_conn_t *c, px_cstate_t s)
{
    assert(c->state < C_CLOSING || s >= c->state);
    if (c->state >= C_CLOSING && s < c->state)
        return;
    c->state = s;
}

/* Lazy (ltimer.h): moving the deadline on every request is cheap. A new
 * request head (T_HEADER) also starts the request's total deadline, which
 * caps the header and body timers that follow. */
void px_conn_arm(px_conn_t *c, px_tkind_t kind)
{
    const px_timeouts_config_t *to = &cfg_of(c)->timeouts;
    uint32_t ms = 0;
    if (kind == T_NONE && px_transport_writing(&c->tp))
        kind = T_SEND;          /* nothing else timed, a write pending: see arm_send */
    c->tkind = kind;
    switch (kind) {
    case T_HANDSHAKE: ms = to->handshake; break;
    case T_HEADER:    ms = to->request_header; break;
    case T_IDLE:      ms = to->keepalive_idle > IDLE_COMPACT_MS ? IDLE_COMPACT_MS : to->keepalive_idle; break;
    case T_KEEPALIVE: ms = to->keepalive_idle > IDLE_COMPACT_MS ? to->keepalive_idle - IDLE_COMPACT_MS : 1; break;
    case T_BODY:      ms = to->body_idle; break;
    case T_LINGER:    ms = LINGER_MS; break;
    case T_SEND:      ms = to->send_idle; break;
    case T_H2:        ms = PX_H2_TICK_MS; break;
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
        settle(px_conn_abort(c, PX_END_CLIENT_CLOSED));
        break;
    case T_LINGER:
        settle(px_conn_abort(c, PX_END_CLIENT_CLOSED));
        break;
    case T_SEND:
        settle(px_conn_send_timed_out(c));
        break;
    default:
        c->sess->timer(c);  /* the session's */
        break;
    }
}

static void conn_free(px_conn_t *c)
{
    px_conn_env_t *env = c->env;
    if (c->sess == &px_h2_sess)
        px_h2s_free(c);
    else
        px_h1_free(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        env->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    env->conn_count--;
    px_m_dec(&env->m->conns_open);
    px_transport_free(&c->tp);
    free(c);
    if (env->on_conn_closed)
        env->on_conn_closed(env);
}

/* Frees only here (after the last close callback) or when a thread-pool
 * job returns to a closed connection (px_conn_free_if_closed). */
static void tp_closed(px_transport_t *t)
{
    px_conn_t *c = t->ud;
    if (c->sess->job_pending(c))
        return;                 /* a thread-pool job still points here: freed when it returns */
    conn_free(c);
}

void px_conn_free_if_closed(px_conn_t *c)
{
    if (c->state == C_CLOSED && !px_transport_handles_open(&c->tp) && !c->sess->job_pending(c))
        conn_free(c);
}

/* Closes at once (see px_h1_abort_prep). */
int px_conn_abort(px_conn_t *c, px_end_reason_t why)
{
    if (c->state == C_CLOSED)
        return GONE;
    if (c->sess->abort_prep(c, why) < 0)
        return GONE;
    px_conn_set_state(c, C_CLOSED);
    px_transport_close(&c->tp);
    return GONE;
}

/* The staged bytes (and close_notify when asked) leave, then FIN, then the
 * linger timer waits for the client's FIN. Always GONE. */
static int linger_close(px_conn_t *c, int close_notify)
{
    if (px_transport_begin_close(&c->tp, close_notify) < 0)
        return transport_failed(c);
    px_conn_arm(c, T_LINGER);
    if (px_conn_flush(c) < 0)
        return GONE;
    update_reading(c);
    return GONE;
}

/* Graceful: finish writing, close_notify, FIN, then wait briefly for the
 * client's FIN so that unread input does not turn our close into a reset
 * that destroys the response in flight. Always GONE: the exchange is over. */
int px_conn_begin_close(px_conn_t *c)
{
    if (c->state >= C_CLOSING)
        return GONE;
    px_conn_set_state(c, C_CLOSING);
    c->sess->stop(c);
    return linger_close(c, 1);                      /* close_notify after the staged bytes */
}

/* A transport call failed: close at once with its reason. */
static int transport_failed(px_conn_t *c)
{
    return px_conn_abort(c, px_transport_why(&c->tp));
}

/* A client that takes none of a pending write for timeouts.send_idle has
 * stopped reading: while the response waits on it the upstream is not
 * read (its silence is then not the model server's), so this is what
 * bounds the exchange. Timed here while nothing else is (an HTTP/1.1
 * response): a write begun, or T_NONE armed, with a write pending, is
 * T_SEND. HTTP/2's tick checks px_transport_write_stalled itself. */
static void arm_send(px_conn_t *c)
{
    if (c->tkind == T_NONE && px_transport_writing(&c->tp))
        px_conn_arm(c, T_SEND);
}

int px_conn_send_timed_out(px_conn_t *c)
{
    px_m_inc(&c->env->m->send_timeouts);
    px_debug("%s: the client took no bytes for %u ms", px_transport_peer(&c->tp),
             cfg_of(c)->timeouts.send_idle);
    return px_conn_abort(c, PX_END_SEND_TIMEOUT);
}

int px_conn_flush(px_conn_t *c)
{
    int rc = px_transport_flush(&c->tp);
    if (rc < 0)
        return transport_failed(c);
    if (rc == 1)
        c->sess->written(c);   /* it all left at once */
    else
        arm_send(c);
    return 0;
}

/* Plaintext for the client (staged to share records, transport.h). */
int px_conn_send(px_conn_t *c, const char *p, size_t n)
{
    return px_transport_send(&c->tp, p, n) < 0 ? transport_failed(c) : 0;
}

static void tp_input(px_transport_t *t)
{
    settle(px_conn_process(t->ud));
}

static void tp_sent(px_transport_t *t)
{
    px_conn_t *c = t->ud;
    if (c->tkind == T_SEND)     /* the client made room: its time starts again */
        px_conn_arm(c, T_NONE);
    c->sess->sent(c);
}

static void tp_fail(px_transport_t *t, px_end_reason_t why, int read_failed)
{
    px_conn_t *c = t->ud;
    if (read_failed && c->state == C_HANDSHAKE && px_transport_got_bytes(t))
        count_failed_handshake(c, PX_HS_FAILED);
    settle(px_conn_abort(c, why));
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
        c->sess->log_unfinished(c, PX_END_CLIENT_TLS);
        return px_conn_begin_close(c);
    }
    return 0;
}

static PX_MUST_CHECK int handshake(px_conn_t *c)
{
    px_tls_info_t ti;
    px_metrics_t *m = c->env->m;
    int rc = px_tls_handshake(px_transport_tls(&c->tp));

    if (rc == PX_EAGAIN) {
        if (px_conn_flush(c) < 0)
            return GONE;
        update_reading(c);
        return 0;
    }
    if (rc != 0 && !px_transport_got_bytes(&c->tp) && px_transport_eof(&c->tp))   /* connected and left without a byte: a TCP health probe */
        return px_conn_abort(c, PX_END_CLIENT_CLOSED);
    if (rc != 0) {
        px_tls_fail_t why = px_tls_fail_reason(px_transport_tls(&c->tp));
        count_failed_handshake(c, why == PX_TLS_FAIL_NONE ? PX_HS_FAILED : (int)why - 1);
        px_info("%s: TLS handshake refused: %s", px_transport_peer(&c->tp), px_tls_error(px_transport_tls(&c->tp)));
        px_conn_set_state(c, C_CLOSING);
        return linger_close(c, 0);                /* send the alert, then close */
    }
    if (px_tls_hrr(px_transport_tls(&c->tp)))
        px_m_inc(&m->hs_hrr[px_tls_hrr(px_transport_tls(&c->tp)) - 1]);
    px_tls_get_info(px_transport_tls(&c->tp), &ti);
    px_m_inc(&m->hs_ok[px_m_group_index(ti.group_id)][px_m_cipher_index(ti.cipher)]);
    px_m_inc(&m->hs_cert_key[px_m_cert_key_index(ti.cert_key)]);
    if (ti.resumed)
        px_m_inc(&m->hs_resumed);
    px_debug("%s: TLS %s %s %s sni=%s", px_transport_peer(&c->tp), ti.version, ti.group, ti.cipher, ti.sni);
    if (!strcmp(px_tls_alpn(px_transport_tls(&c->tp)), "h2")) {
        if (px_h2s_start(c) < 0)
            return px_conn_abort(c, PX_END_INTERNAL);
        return 0;
    }
    px_h1_start(c);
    return 0;
}

int px_conn_process(px_conn_t *c)
{
    if (c->state == C_HANDSHAKE) {
        if (handshake(c) < 0)
            return GONE;
        if (c->state == C_HANDSHAKE)
            return 0;               /* more of the handshake to come */
    }
    if (c->state != C_IDLE && c->state != C_REQUEST)
        return GONE;
    if (decrypt_input(c) < 0 || c->sess->input(c) < 0)
        return GONE;
    update_reading(c);
    return 0;
}

int px_conn_accept(px_conn_env_t *env, int fd)
{
    px_conn_t *c = calloc(1, sizeof *c);
    const px_config_t *cfg = env->cfg;
    int rc, h1rc;

    if (!c || !(c->h1 = calloc(1, sizeof *c->h1))) {
        free(c);
        close(fd);
        return UV_ENOMEM;
    }
    c->env = env;
    c->sess = &px_h1_sess;
    px_transport_init(&c->tp, env->loop, &tp_cb, c);
    c->next = env->conns;
    if (env->conns)
        env->conns->prev = c;
    env->conns = c;
    env->conn_count++;
    px_m_inc(&env->m->conns_open);
    px_h1_init(c);

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
    px_transport_set_tls(&c->tp, px_tls_new(env->tls, NULL), pin_max(c));
    h1rc = px_h1_open(c);
    if (!px_transport_tls(&c->tp) || h1rc < 0) {
        rc = UV_ENOMEM;
        goto fail;
    }
    c->state = C_HANDSHAKE;
    px_conn_arm(c, T_HANDSHAKE);
    update_reading(c);
    return 0;
fail:
    settle(px_conn_abort(c, PX_END_CLIENT_CLOSED));
    return rc;
}

void px_conn_compact(px_conn_t *c)
{
    px_conn_env_t *env = c->env;
    uint64_t now = uv_now(env->loop);

    px_transport_compact(&c->tp);
    if (now - env->trimmed_at < TRIM_EVERY_MS)
        return;
    env->trimmed_at = now;
    px_h2_mem_trim();
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

void px_conn_drain_all(px_conn_env_t *env)
{
    env->draining = 1;
    for (px_conn_t *c = env->conns, *next; c; c = next) {
        next = c->next;
        settle(c->sess->drain(c));
    }
}

void px_conn_reload_all(px_conn_env_t *env)
{
    for (px_conn_t *c = env->conns, *next; c; c = next) {
        next = c->next;
        if (c->sess == &px_h2_sess)
            settle(c->sess->drain(c));
    }
}

void px_conn_close_all(px_conn_env_t *env)
{
    for (px_conn_t *c = env->conns, *next; c; c = next) {
        next = c->next;
        settle(px_conn_abort(c, PX_END_SHUTDOWN));
    }
}
