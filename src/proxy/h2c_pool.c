/* Multiplexed h2c connections to the model server (h2c_pool.h).
 *
 * Test seam: fuzz/h2c_upstream.c and tests/unit/test_h2c_pool.c include
 * this file with the px_upstream_* and px_uplink_* names below defined to
 * their own socketless link, and call link_connect/link_read/link_write
 * themselves. So the model server's bytes reach nghttp2 only through
 * link_read, and this file uses no other upstream.h function: keep it so
 * (or add the name to both). */
#include "proxy/h2c_pool.h"

#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/log.h"
#include "http/h2_mem.h"
#include "proxy/upstream.h"

#define OUT_CHUNK (64 * 1024)            /* frames pulled per write */

typedef struct conn conn_t;

struct px_h2c_stream {
    px_h2c_stream_t *next, *prev;        /* its connection's streams, or the pool's waiting list */
    conn_t *c;                           /* NULL: waiting for a connection */
    int32_t id;                          /* 0: not submitted */
    nghttp2_nv *nv;                      /* the request head (one allocation) */
    size_t nnv, nv_bytes;
    nghttp2_nv *tnv;                     /* the request's trailers (one allocation), sent at its end */
    size_t tnnv;
    px_h2c_cb_t cb;
    void *ud;
    px_buf_t out;                        /* request body: sent bytes [0, sent) kept for a retry */
    size_t sent;
    int replayable;                      /* every sent body byte is still in out */
    int retries;                         /* reopened after GOAWAY or REFUSED_STREAM */
    int not_sent;                        /* why nghttp2 did not send the request HEADERS (0: sent) */
    int req_end, deferred, drained;
    px_msg_t msg;                        /* the response head, then its trailers */
    int got_head, in_trailers;
    int too_big;                         /* its head or trailers passed max_head or the field cap */
    size_t unconsumed;                   /* response bytes given to the owner, not consumed */
    int detached;                        /* released by the owner, or told its end */
    uint64_t active_ms;                  /* last bytes either way (the tick's timeouts) */
    px_h2c_pool_t *pool;
};

struct conn {
    conn_t *next, *prev;
    px_h2c_pool_t *pool;
    px_uplink_t *link;
    nghttp2_session *ng;
    px_buf_t out;
    int connected, writing, goaway, dead, in_ng;
    int suspect;                         /* a stream timed out on its silence: no new stream */
    int dead_err;
    uint64_t ping_ms;                    /* a PING unanswered since then (0: none) */
    uint64_t rx_ms;                      /* bytes last read from the model server */
    int nstreams;
    int ndrained;                        /* streams with drained set: pump's walk stops at 0 */
    px_h2c_stream_t *streams;
};

struct px_h2c_pool {
    uv_loop_t *loop;
    px_upstream_t *up;                   /* connects the links (no idle pool) */
    px_upstream_config_t cfg;
    px_timeouts_config_t timeouts;
    uint32_t max_head;                   /* http.max_header_bytes: a response head, its trailers */
    uv_timer_t tick;                     /* response timeouts, once a second while streams run */
    int ticking;
    uv_idle_t kick;                      /* deferred work: pumping, failing, retrying */
    int kicked, closing;
    conn_t *conns;
    int nconns;
    px_h2c_stream_t *waiting;            /* streams to (re)open from the loop */
    px_h2c_stream_t *spares;             /* finished streams whose buffers serve the next */
    int nspares;
    px_metrics_t *m;                     /* NULL in tests */
};

static void list_add(px_h2c_stream_t **head, px_h2c_stream_t *s)
{
    s->prev = NULL;
    s->next = *head;
    if (s->next)
        s->next->prev = s;
    *head = s;
}

static void list_del(px_h2c_stream_t **head, px_h2c_stream_t *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        *head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->next = s->prev = NULL;
}

static void kick(px_h2c_pool_t *p);

/* A finished stream's buffers serve the next request (px_h2c_open): up to
 * SPARES streams per pool, SPARE_KEEP bytes per buffer, all freed when no
 * stream is left (on_tick) and at close. */
#define SPARES 16
#define SPARE_KEEP 4096

static void stream_free(px_h2c_stream_t *s)
{
    px_h2c_pool_t *p = s->pool;

    free(s->tnv);                         /* rare: never kept */
    s->tnv = NULL;
    s->tnnv = 0;
    if (p && !p->closing && p->nspares < SPARES) {
        px_buf_recycle(&s->out, SPARE_KEEP);
        px_msg_recycle(&s->msg, SPARE_KEEP);
        if (s->nv_bytes > SPARE_KEEP) {
            free(s->nv);
            s->nv = NULL;
            s->nv_bytes = 0;
        }
        s->next = p->spares;
        p->spares = s;
        p->nspares++;
        return;
    }
    px_buf_free(&s->out);
    px_msg_free(&s->msg);
    free(s->nv);
    free(s);
}

static void spares_free(px_h2c_pool_t *p)
{
    while (p->spares) {
        px_h2c_stream_t *s = p->spares;
        p->spares = s->next;
        p->nspares--;
        s->pool = NULL;
        stream_free(s);
    }
}

/* A stream for a new request: a spare's buffers, or fresh ones. */
static px_h2c_stream_t *stream_new(px_h2c_pool_t *p)
{
    px_h2c_stream_t *s = p->spares;
    px_buf_t out;
    px_msg_t msg;
    nghttp2_nv *nv;
    size_t nv_bytes;

    if (!s) {
        if ((s = calloc(1, sizeof *s))) {
            px_buf_init(&s->out, 0);
            px_msg_init(&s->msg, p->max_head, PX_H2C_MAX_FIELDS);
        }
        return s;
    }
    p->spares = s->next;
    p->nspares--;
    out = s->out, msg = s->msg, nv = s->nv, nv_bytes = s->nv_bytes;
    memset(s, 0, sizeof *s);
    s->out = out, s->msg = msg, s->nv = nv, s->nv_bytes = nv_bytes;
    px_msg_set_limit(&s->msg, p->max_head);   /* a reload may have changed it */
    return s;
}

/* Takes s off its connection (its nghttp2 stream is closed or the session gone). */
static void stream_unlink(px_h2c_stream_t *s)
{
    conn_t *c = s->c;

    if (!c)
        return;
    if (s->id && c->ng && !c->dead)
        nghttp2_session_set_stream_user_data(c->ng, s->id, NULL);
    if (s->unconsumed && c->ng && !c->dead)
        nghttp2_session_consume_connection(c->ng, s->unconsumed);
    s->unconsumed = 0;
    list_del(&c->streams, s);
    c->nstreams--;
    if (s->drained) {
        s->drained = 0;
        c->ndrained--;
    }
    s->c = NULL;
    s->id = 0;
}

/* The owner hears of a failure once; then the stream is the pool's. */
static void stream_fail(px_h2c_stream_t *s, int err)
{
    int told = s->detached;

    stream_unlink(s);
    s->detached = 1;
    if (!told && s->cb.on_error)
        s->cb.on_error(s->ud, err);
    stream_free(s);
}

/* Not processed by the model server: open it again from the loop when
 * every body byte sent is still here. */
static void stream_retry(px_h2c_stream_t *s)
{
    px_h2c_pool_t *p = s->pool;

    /* a model server that refuses every stream must not make us reopen it
     * on a new connection for ever */
    if (s->detached || s->got_head || !s->replayable || ++s->retries > PX_H2C_MAX_RETRIES) {
        stream_fail(s, UV_ECONNRESET);
        return;
    }
    stream_unlink(s);
    s->sent = 0;
    s->deferred = 0;
    s->not_sent = 0;
    px_msg_reset(&s->msg);
    list_add(&p->waiting, s);
    kick(p);
}

/* ---- nghttp2 callbacks ------------------------------------------------------ */

static px_h2c_stream_t *stream_of(nghttp2_session *ng, int32_t id)
{
    return nghttp2_session_get_stream_user_data(ng, id);
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *fr, void *ud)
{
    px_h2c_stream_t *s = stream_of(ng, fr->hd.stream_id);

    if (!s || fr->hd.type != NGHTTP2_HEADERS)
        return 0;
    if (fr->headers.cat == NGHTTP2_HCAT_HEADERS && s->got_head) {
        s->in_trailers = 1;
        px_msg_begin_trailers(&s->msg);
    } else {
        px_msg_reset(&s->msg);           /* a 1xx head before the final one is dropped */
    }
    return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *fr, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    px_h2c_stream_t *s = stream_of(ng, fr->hd.stream_id);
    int rc;

    if (!s || s->detached)
        return 0;
    if (nlen == 7 && !memcmp(name, ":status", 7)) {
        int st = 0;
        for (size_t i = 0; i < vlen && i < 3; i++)
            st = st * 10 + (value[i] - '0');
        s->msg.status = st;
        return 0;
    }
    if (nlen && name[0] == ':')
        return 0;
    if ((rc = px_msg_add(&s->msg, (const char *)name, nlen, (const char *)value, vlen)) != 0) {
        s->too_big = rc == PX_ETOOBIG;                 /* else out of memory: a plain failure */
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;   /* resets the stream */
    }
    return 0;
}

static void tell_end(px_h2c_stream_t *s)
{
    s->detached = 1;
    if (s->cb.on_end)
        s->cb.on_end(s->ud, &s->msg);
    /* the request may still be sending: the answer is complete, stop it */
    if (!s->req_end && s->c && s->id && !s->c->dead)
        nghttp2_submit_rst_stream(s->c->ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_NO_ERROR);
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *fr, void *ud)
{
    conn_t *c = ud;
    px_h2c_stream_t *s = fr->hd.stream_id ? stream_of(ng, fr->hd.stream_id) : NULL;
    int end = (fr->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;

    switch (fr->hd.type) {
    case NGHTTP2_HEADERS:
        if (!s || s->detached)
            break;
        s->active_ms = uv_now(s->pool->loop);
        if (!s->in_trailers && s->msg.status >= 200) {
            s->got_head = 1;
            s->msg.end_stream = end;
            if (s->cb.on_head)
                s->cb.on_head(s->ud, &s->msg);
        }
        if (end && !s->detached)
            tell_end(s);
        break;
    case NGHTTP2_DATA:
        if (s && !s->detached && end)
            tell_end(s);
        break;
    case NGHTTP2_PING:
        if (fr->hd.flags & NGHTTP2_FLAG_ACK)
            c->ping_ms = 0, c->suspect = 0;   /* one PING at a time: the answer to ours */
        break;
    case NGHTTP2_GOAWAY:
        /* streams above last_stream_id close with REFUSED_STREAM: retried */
        c->goaway = 1;
        px_info("h2c upstream: GOAWAY (last stream %d, code %u)", fr->goaway.last_stream_id,
                fr->goaway.error_code);
        break;
    default:
        break;
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *p, size_t n,
                         void *ud)
{
    px_h2c_stream_t *s = stream_of(ng, id);

    if (!s || s->detached || !s->cb.on_data) {
        nghttp2_session_consume(ng, id, n);   /* nobody takes them */
        return 0;
    }
    s->unconsumed += n;
    s->active_ms = uv_now(s->pool->loop);
    s->cb.on_data(s->ud, p, n);
    return 0;
}

/* nghttp2 could not send a request's HEADERS: it closes the stream at once
 * with REFUSED_STREAM (CANCEL when we reset it first), and on_stream_close
 * takes it from there. Only a GOAWAY (or a session ending) is worth another
 * connection; anything else (a head beyond nghttp2's 64 KiB send limit, a
 * compression failure) would fail there too, so the stream fails now. */
static int on_frame_not_send(nghttp2_session *ng, const nghttp2_frame *fr, int err, void *ud)
{
    px_h2c_stream_t *s;

    if (fr->hd.type != NGHTTP2_HEADERS || fr->headers.cat != NGHTTP2_HCAT_REQUEST ||
        !(s = stream_of(ng, fr->hd.stream_id)))
        return 0;
    s->not_sent = err;
    if (err != NGHTTP2_ERR_START_STREAM_NOT_ALLOWED && err != NGHTTP2_ERR_STREAM_CLOSING)
        px_warn("h2c upstream: request not sent: %s", nghttp2_strerror(err));
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t code, void *ud)
{
    px_h2c_stream_t *s = stream_of(ng, id);

    if (!s)
        return 0;
    if (s->detached) {
        stream_unlink(s);
        stream_free(s);
    } else if (s->not_sent && s->not_sent != NGHTTP2_ERR_START_STREAM_NOT_ALLOWED) {
        stream_fail(s, s->not_sent == NGHTTP2_ERR_FRAME_SIZE_ERROR ? UV_EMSGSIZE : UV_EPROTO);
    } else if (s->too_big) {
        stream_fail(s, UV_E2BIG);
    } else if (code == NGHTTP2_REFUSED_STREAM) {
        stream_retry(s);                  /* GOAWAY above it, or refused: not processed */
    } else {
        stream_fail(s, code == NGHTTP2_NO_ERROR ? UV_EOF : UV_EPROTO);
    }
    return 0;
}

static ssize_t read_body(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *ud)
{
    px_h2c_stream_t *s = src->ptr;
    size_t n = px_buf_size(&s->out) - s->sent;

    if (n > len)
        n = len;
    if (n)
        memcpy(buf, px_buf_ptr(&s->out) + s->sent, n);
    s->sent += n;
    if (s->sent > PX_H2C_REPLAY_MAX) {
        /* too much to keep for a retry: sent bytes go */
        px_buf_consume(&s->out, s->sent);
        s->sent = 0;
        s->replayable = 0;
    }
    if (n) {
        if (!s->drained && s->c) {
            s->drained = 1;
            s->c->ndrained++;
        }
        s->active_ms = uv_now(s->pool->loop);
    }
    if (s->sent == px_buf_size(&s->out) && s->req_end) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        /* the trailers end the stream in their HEADERS (nghttp2 copies them) */
        if (s->tnnv && nghttp2_submit_trailer(ng, id, s->tnv, s->tnnv) == 0)
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        return (ssize_t)n;
    }
    if (n == 0) {
        s->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t)n;
}

/* ---- connections ------------------------------------------------------------ */

static void link_connect(px_uplink_t *l, int status, void *ud);
static void link_read(px_uplink_t *l, const char *p, ssize_t n, void *ud);
static void link_write(px_uplink_t *l, int status, void *ud);
static const px_uplink_cb_t link_cb = { link_connect, link_read, link_write };

/* Ends the connection: its streams fail (or are retried when the model
 * server never saw them), the session and link go. From the loop only. */
static void conn_end(conn_t *c, int err)
{
    px_h2c_pool_t *p = c->pool;

    c->dead = 1;
    while (c->streams)
        stream_fail(c->streams, err);     /* the model server may have processed it */
    nghttp2_session_del(c->ng);
    c->ng = NULL;
    if (c->link)
        px_uplink_release(c->link, 0);
    c->link = NULL;
    px_buf_free(&c->out);
    if (c->prev)
        c->prev->next = c->next;
    else
        p->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    p->nconns--;
    free(c);
}

/* Pulls frames and writes them: one write in flight. 0, or < 0 when the
 * connection must end (the caller ends it). */
static int pump(conn_t *c)
{
    if (!c->connected || c->writing || c->dead)
        return 0;
    for (;;) {
        int rc;
        while (px_buf_size(&c->out) < OUT_CHUNK) {
            const uint8_t *b;
            ssize_t n;
            c->in_ng = 1;
            n = nghttp2_session_mem_send(c->ng, &b);
            c->in_ng = 0;
            if (n < 0)
                return UV_EPROTO;
            if (n == 0)
                break;
            if (px_buf_append(&c->out, b, (size_t)n) != 0)
                return UV_ENOMEM;
        }
        /* body bytes left their streams: their owners may write more
         * (walked only while some did: most pumps carry no body) */
        for (px_h2c_stream_t *s = c->streams, *next; s && c->ndrained > 0; s = next) {
            next = s->next;
            if (s->drained) {
                s->drained = 0;
                c->ndrained--;
                if (!s->detached && s->cb.on_drain)
                    s->cb.on_drain(s->ud);
            }
        }
        if (px_buf_size(&c->out) == 0)
            break;
        rc = px_uplink_write(c->link, &c->out);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            c->writing = 1;
            break;
        }
    }
    if (c->goaway && !c->nstreams && !nghttp2_session_want_write(c->ng))
        return UV_EOF;                    /* drained after GOAWAY: done */
    /* nghttp2 is done with the session (a protocol error by the model
     * server, answered with GOAWAY, now written): it reads nothing more
     * and opens no stream, even if the server keeps the socket open. */
    if (!c->writing && !nghttp2_session_want_read(c->ng) && !nghttp2_session_want_write(c->ng))
        return c->goaway && !c->nstreams ? UV_EOF : UV_EPROTO;
    return 0;
}

static void conn_pump(conn_t *c)
{
    int rc = pump(c);
    if (rc < 0)
        conn_end(c, rc);
}

/* Asks the model server for a PING answer within h2c_ping_timeout (on_tick
 * checks it). suspect: a stream timed out in the connection's silence, so
 * no new stream goes there until the answer comes. */
static void conn_ping(conn_t *c, int suspect)
{
    if (!c->pool->cfg.h2c_ping_timeout || c->ping_ms || c->dead ||
        nghttp2_submit_ping(c->ng, NGHTTP2_FLAG_NONE, NULL) != 0)
        return;
    c->ping_ms = uv_now(c->pool->loop);
    c->suspect = suspect;
}

static void link_connect(px_uplink_t *l, int status, void *ud)
{
    conn_t *c = ud;

    if (status < 0) {
        conn_end(c, status);
        return;
    }
    c->connected = 1;
    c->rx_ms = uv_now(c->pool->loop);
    /* a model server that accepts and then says nothing (not even its
     * SETTINGS) is found out by its first PING, not by each request's
     * upstream_response_ms */
    conn_ping(c, 0);
    px_uplink_timeout(l, 0);
    px_uplink_read_start(l);
    conn_pump(c);
}

static void link_read(px_uplink_t *l, const char *p, ssize_t n, void *ud)
{
    conn_t *c = ud;
    ssize_t rv;

    if (n < 0) {
        conn_end(c, (int)n);
        return;
    }
    c->rx_ms = uv_now(c->pool->loop);
    c->in_ng = 1;
    rv = nghttp2_session_mem_recv(c->ng, (const uint8_t *)p, (size_t)n);
    c->in_ng = 0;
    if (rv < 0) {
        px_warn("h2c upstream: %s", nghttp2_strerror((int)rv));
        conn_end(c, UV_EPROTO);
        return;
    }
    conn_pump(c);
}

static void link_write(px_uplink_t *l, int status, void *ud)
{
    conn_t *c = ud;

    c->writing = 0;
    if (status < 0) {
        conn_end(c, status);
        return;
    }
    conn_pump(c);
}

static conn_t *conn_new(px_h2c_pool_t *p)
{
    nghttp2_session_callbacks *cbs = NULL;
    nghttp2_option *opt = NULL;
    conn_t *c = calloc(1, sizeof *c);
    int ok = 0;

    if (!c)
        return NULL;
    c->pool = p;
    px_buf_init(&c->out, 0);
    if (nghttp2_session_callbacks_new(&cbs) != 0 || nghttp2_option_new(&opt) != 0)
        goto out;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs, on_frame_not_send);
    nghttp2_option_set_no_auto_window_update(opt, 1);   /* windows reopen by px_h2c_consumed */
    nghttp2_option_set_peer_max_concurrent_streams(opt, p->cfg.h2c_max_streams);
    if (nghttp2_session_client_new3(&c->ng, cbs, c, opt, px_h2_mem()) != 0)
        goto out;
    nghttp2_settings_entry iv[] = {
        { NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
        { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, PX_H2C_WINDOW },
        { NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, p->max_head },
    };
    if (nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof *iv) != 0)
        goto out;
    /* the connection window covers every stream's */
    uint64_t cw = (uint64_t)PX_H2C_WINDOW * p->cfg.h2c_max_streams;
    if (cw > 0x7fffffff)
        cw = 0x7fffffff;
    if (nghttp2_session_set_local_window_size(c->ng, NGHTTP2_FLAG_NONE, 0, (int32_t)cw) != 0)
        goto out;
    if (px_upstream_connect_fresh(p->up, &link_cb, c, &c->link) != 0)
        goto out;
    ok = 1;
out:
    nghttp2_session_callbacks_del(cbs);
    nghttp2_option_del(opt);
    if (!ok) {
        nghttp2_session_del(c->ng);
        px_buf_free(&c->out);
        free(c);
        return NULL;
    }
    c->next = p->conns;
    if (c->next)
        c->next->prev = c;
    p->conns = c;
    p->nconns++;
    return c;
}

static uint32_t conn_limit(const conn_t *c)
{
    uint32_t peer = nghttp2_session_get_remote_settings(c->ng, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    return peer < c->pool->cfg.h2c_max_streams ? peer : c->pool->cfg.h2c_max_streams;
}

/* A connection with room for one more stream, a new one when all are full;
 * at h2c_max_connections the least loaded one, where nghttp2 holds the request
 * until the model server admits it (its response timeout bounds the wait):
 * a server that admits no stream (SETTINGS_MAX_CONCURRENT_STREAMS 0) does
 * not get a connection per request. */
static conn_t *conn_pick(px_h2c_pool_t *p)
{
    conn_t *least = NULL, *wary = NULL;
    int live = 0;

    for (conn_t *c = p->conns; c; c = c->next) {
        if (c->dead || c->goaway)
            continue;
        if (c->suspect) {                 /* counted, used only when nothing else is left */
            live++;
            if (!wary || c->nstreams < wary->nstreams)
                wary = c;
            continue;
        }
        if ((uint32_t)c->nstreams < conn_limit(c))
            return c;
        live++;
        if (!least || c->nstreams < least->nstreams)
            least = c;
    }
    if ((uint32_t)live < p->cfg.h2c_max_connections)
        return conn_new(p);
    return least ? least : wary;
}

/* Submits a waiting stream on a connection. 0, or a libuv error. */
static int stream_submit(px_h2c_pool_t *p, px_h2c_stream_t *s)
{
    nghttp2_data_provider prd = { .source.ptr = s, .read_callback = read_body };
    conn_t *c = conn_pick(p);
    int32_t id;

    if (!c)
        return UV_ENOMEM;
    id = nghttp2_submit_request(c->ng, NULL, s->nv, s->nnv,
                                s->req_end && px_buf_size(&s->out) == 0 && !s->tnnv ? NULL : &prd, s);
    if (id < 0)
        return UV_ENOMEM;
    s->c = c;
    s->id = id;
    s->active_ms = uv_now(p->loop);
    list_add(&c->streams, s);
    c->nstreams++;
    return 0;
}

static void on_kick(uv_idle_t *h)
{
    px_h2c_pool_t *p = h->data;

    uv_idle_stop(h);
    p->kicked = 0;
    while (p->waiting) {
        px_h2c_stream_t *s = p->waiting;
        int rc;
        list_del(&p->waiting, s);
        if (s->detached) {
            stream_free(s);
            continue;
        }
        if ((rc = stream_submit(p, s)) < 0)
            stream_fail(s, rc);
    }
    for (conn_t *c = p->conns, *next; c; c = next) {
        next = c->next;
        conn_pump(c);
    }
}

/* The model server's silence: upstream_response_ms before the response
 * head, upstream_idle_ms between bytes after it (either way, so a bidi
 * stream that only sends is not cut). The stream is reset and fails with
 * UV_ETIMEDOUT. While the owner holds bytes of the stream unconsumed (its
 * client is behind, and the window stays shut) the silence is not the
 * model server's and does not count. */
static void on_tick(uv_timer_t *t)
{
    px_h2c_pool_t *p = t->data;
    uint64_t now = uv_now(p->loop);
    int any = 0;

    for (conn_t *c = p->conns, *cn; c; c = cn) {
        cn = c->next;
        if (c->ping_ms && p->cfg.h2c_ping_timeout) {
            any = 1;
            if (now - c->ping_ms >= p->cfg.h2c_ping_timeout) {
                px_warn("h2c upstream: no answer to a PING in %u ms: the connection is closed",
                        p->cfg.h2c_ping_timeout);
                if (p->m)
                    px_m_inc(&p->m->upstream_h2c_unresponsive);
                conn_end(c, PX_H2C_EUNRESPONSIVE);
                continue;
            }
        }
        for (px_h2c_stream_t *s = c->streams, *next; s; s = next) {
            uint32_t limit = s->got_head ? p->timeouts.upstream_idle : p->timeouts.upstream_response;
            next = s->next;
            if (s->detached)
                continue;
            any = 1;
            if (s->unconsumed)
                s->active_ms = now;
            if (!limit || now - s->active_ms < limit)
                continue;
            /* nothing at all came on the connection while this stream
             * waited: is the model server there? */
            if (c->rx_ms <= s->active_ms)
                conn_ping(c, 1);
            nghttp2_submit_rst_stream(c->ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
            stream_fail(s, UV_ETIMEDOUT);
            /* the model server took a body and never gave the connection's
             * window back: every later body on it would wait the same way,
             * so it gets no new stream and closes once empty */
            if (!c->goaway && nghttp2_session_get_remote_window_size(c->ng) <= 0) {
                px_warn("h2c upstream: a stream timed out with the connection's window spent: "
                        "the connection is retired");
                c->goaway = 1;
            }
        }
        conn_pump(c);
    }
    if (!any) {
        uv_timer_stop(t);
        p->ticking = 0;
        spares_free(p);                   /* no stream left: nothing kept for one */
    }
}

static void kick(px_h2c_pool_t *p)
{
    if (!p)
        return;                           /* an orphan's pool is gone */
    if (!p->ticking && !p->closing) {
        p->ticking = 1;
        uv_timer_start(&p->tick, on_tick, 1000, 1000);
    }
    if (p->kicked || p->closing)
        return;
    p->kicked = 1;
    uv_idle_start(&p->kick, on_kick);
}

/* ---- the pool ----------------------------------------------------------------- */

px_h2c_pool_t *px_h2c_pool_new(uv_loop_t *loop, const px_upstream_config_t *cfg,
                               const px_timeouts_config_t *timeouts, uint32_t max_head,
                               px_metrics_t *m)
{
    px_h2c_pool_t *p = calloc(1, sizeof *p);
    px_upstream_config_t ucfg = *cfg;

    if (!p)
        return NULL;
    p->loop = loop;
    p->cfg = *cfg;
    p->timeouts = *timeouts;
    p->max_head = max_head;
    p->m = m;
    ucfg.pool_max_idle = 0;              /* links are the connections: never pooled idle */
    ucfg.max_connections = 0;            /* h2c_max_connections caps them, here */
    if (!(p->up = px_upstream_new(loop, &ucfg, timeouts, m)) || uv_idle_init(loop, &p->kick) != 0) {
        if (p->up)
            px_upstream_close(p->up);
        free(p);
        return NULL;
    }
    uv_timer_init(loop, &p->tick);
    uv_unref((uv_handle_t *)&p->tick);
    p->tick.data = p;
    p->kick.data = p;
    return p;
}

/* The tick closes first, then the idle handle frees the pool. */
static void pool_closed(uv_handle_t *h)
{
    free(h->data);
}

static void tick_closed(uv_handle_t *h)
{
    px_h2c_pool_t *p = h->data;
    uv_close((uv_handle_t *)&p->kick, pool_closed);
}

/* At close: a stream its owner still holds becomes an orphan (no pool,
 * no callbacks) that px_h2c_release frees; the others go now. */
static void stream_orphan(px_h2c_stream_t *s)
{
    if (s->detached) {
        stream_free(s);
        return;
    }
    s->detached = 1;
    s->pool = NULL;
    s->next = s->prev = NULL;
}

void px_h2c_pool_close(px_h2c_pool_t *p)
{
    if (!p)
        return;
    p->closing = 1;
    spares_free(p);
    while (p->waiting) {
        px_h2c_stream_t *s = p->waiting;
        list_del(&p->waiting, s);
        stream_orphan(s);
    }
    while (p->conns) {
        conn_t *c = p->conns;
        c->dead = 1;
        while (c->streams) {
            px_h2c_stream_t *s = c->streams;
            stream_unlink(s);
            stream_orphan(s);
        }
        conn_end(c, UV_ECANCELED);
    }
    px_upstream_close(p->up);
    uv_close((uv_handle_t *)&p->tick, tick_closed);
}

void px_h2c_pool_set_config(px_h2c_pool_t *p, const px_upstream_config_t *cfg,
                            const px_timeouts_config_t *timeouts, uint32_t max_head)
{
    px_upstream_config_t ucfg = *cfg;

    p->cfg = *cfg;
    p->timeouts = *timeouts;
    p->max_head = max_head;
    ucfg.pool_max_idle = 0;
    ucfg.max_connections = 0;
    px_upstream_set_config(p->up, &ucfg, timeouts);
    for (conn_t *c = p->conns; c; c = c->next)
        c->goaway = 1;                    /* the address may have changed: new streams go anew */
    kick(p);
}

/* Copies fields nv[0..n) into *dst (one allocation, reused when *cap
 * bytes are enough): the stream keeps them for a retry on another
 * connection. 0 or PX_ENOMEM (*dst freed). */
static int nv_copy(nghttp2_nv **dst, size_t *cap, const nghttp2_nv *nv, size_t n)
{
    size_t bytes = n * sizeof *nv;
    char *mem;

    for (size_t i = 0; i < n; i++)
        bytes += nv[i].namelen + nv[i].valuelen + 2;
    if (bytes > *cap) {
        free(*dst);
        *cap = 0;
        if (!(*dst = malloc(bytes)))
            return PX_ENOMEM;
        *cap = bytes;
    }
    mem = (char *)(*dst + n);
    for (size_t i = 0; i < n; i++) {
        nghttp2_nv *d = &(*dst)[i];
        *d = nv[i];
        d->name = (uint8_t *)mem;
        memcpy(mem, nv[i].name, nv[i].namelen);
        mem[nv[i].namelen] = '\0';
        mem += nv[i].namelen + 1;
        d->value = (uint8_t *)mem;
        memcpy(mem, nv[i].value, nv[i].valuelen);
        mem[nv[i].valuelen] = '\0';
        mem += nv[i].valuelen + 1;
        d->flags = nv[i].flags | NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE;
    }
    return 0;
}

int px_h2c_open(px_h2c_pool_t *p, const nghttp2_nv *nv, size_t n, int end_stream,
                const px_h2c_cb_t *cb, void *ud, px_h2c_stream_t **out)
{
    px_h2c_stream_t *s = stream_new(p);

    if (!s)
        return PX_ENOMEM;
    if (nv_copy(&s->nv, &s->nv_bytes, nv, n) != 0) {
        s->pool = NULL;                   /* not kept: its buffers are freed */
        stream_free(s);
        return PX_ENOMEM;
    }
    s->nnv = n;
    s->cb = *cb;
    s->ud = ud;
    s->pool = p;
    s->replayable = 1;
    s->req_end = end_stream;
    list_add(&p->waiting, s);
    kick(p);
    *out = s;
    return 0;
}

size_t px_h2c_write(px_h2c_stream_t *s, const void *p, size_t n)
{
    size_t queued = px_buf_size(&s->out) - s->sent;
    size_t room = queued < PX_H2C_STREAM_BUF ? PX_H2C_STREAM_BUF - queued : 0;

    if (s->req_end)
        return 0;
    if (n > room)
        n = room;
    if (n && px_buf_append(&s->out, p, n) != 0)
        return 0;
    if (n && s->deferred && s->c && !s->c->dead) {
        s->deferred = 0;
        nghttp2_session_resume_data(s->c->ng, s->id);
    }
    if (n)
        kick(s->pool);
    return n;
}

int px_h2c_end(px_h2c_stream_t *s, const nghttp2_nv *trailers, size_t n)
{
    size_t cap = 0;

    if (s->req_end)
        return 0;
    /* the body's provider is read again after this (END_STREAM goes only
     * once req_end is set), so the trailers always make it */
    if (n && nv_copy(&s->tnv, &cap, trailers, n) != 0)
        return PX_ENOMEM;
    s->tnnv = n;
    s->req_end = 1;
    if (s->deferred && s->c && !s->c->dead) {
        s->deferred = 0;
        nghttp2_session_resume_data(s->c->ng, s->id);
    }
    kick(s->pool);
    return 0;
}

void px_h2c_consumed(px_h2c_stream_t *s, size_t n)
{
    if (n > s->unconsumed)
        n = s->unconsumed;
    if (!n || !s->c || s->c->dead)
        return;
    s->unconsumed -= n;
    nghttp2_session_consume(s->c->ng, s->id, n);
    kick(s->pool);
}

void px_h2c_release(px_h2c_stream_t *s)
{
    if (!s->pool) {
        stream_free(s);                   /* orphaned by px_h2c_pool_close */
        return;
    }
    if (s->detached)
        return;
    s->detached = 1;
    if (!s->c) {
        if (!s->next && !s->prev && s->pool->waiting != s)
            stream_free(s);               /* not queued anywhere */
        return;                           /* waiting: freed by on_kick */
    }
    if (s->unconsumed) {
        nghttp2_session_consume(s->c->ng, s->id, s->unconsumed);
        s->unconsumed = 0;
    }
    nghttp2_submit_rst_stream(s->c->ng, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
    kick(s->pool);                        /* freed when nghttp2 closes it */
}

int px_h2c_pool_connections(const px_h2c_pool_t *p)
{
    return p->nconns;
}
