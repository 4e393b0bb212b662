/* One pipelined Redis connection on a libuv loop (see rconn.h). */
#include "sig/rconn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "core/errors.h"
#include "net/tls.h"

/* Replies of the replay store and the ticket script are small: a peer
 * announcing more is not Redis (or is a broken one). */
#define MAX_REPLY_BYTES (1u << 20)
/* unsent commands past this: refused (the caller answers them unavailable) */
#define MAX_OUT_BYTES (4u << 20)

typedef struct cmd {
    struct cmd *next;
    px_rconn_reply_cb cb;
    void *priv;
    int sub;                       /* SUBSCRIBE: its reply switches to subscribed mode */
} cmd_t;

struct px_rconn {
    union {
        uv_handle_t h;
        uv_stream_t s;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } sock;
    uv_connect_t creq;
    uv_write_t wreq;
    redisReader *rd;
    px_tls_t *tls;                 /* NULL: plain */
    px_tls_ctx_t *tls_ctx;
    char sni[256];
    px_rconn_event_cb ev;
    void *data;
    cmd_t *head, *tail;            /* sent or queued, waiting for their replies, in order */
    char *out;                     /* queued bytes, not yet handed to the socket */
    size_t out_len, out_cap;
    char *wbuf;                    /* the one write in flight */
    int connected, draining, closing, quiet, subscribed;
    px_rconn_reply_cb sub_cb;
    void *sub_priv;
    px_rconn_event_t final_ev;
    char why[320];
    char inbuf[16 * 1024];
};

void *px_rconn_data(const px_rconn_t *c)
{
    return c->data;
}

static void fail_pending(px_rconn_t *c)
{
    cmd_t *k;
    while ((k = c->head)) {
        c->head = k->next;
        if (!c->head)
            c->tail = NULL;
        k->cb(c, NULL, k->priv);
        free(k);
    }
}

/* Frees only here, once libuv is done with the socket; what waited gets
 * NULL first, then the owner hears why (unless it closed us itself). */
static void on_closed(uv_handle_t *h)
{
    px_rconn_t *c = h->data;

    fail_pending(c);
    if (!c->quiet)
        c->ev(c, c->final_ev, c->why);
    if (c->rd)
        redisReaderFree(c->rd);
    px_tls_free(c->tls);
    if (c->tls_ctx)
        px_tls_ctx_unref(c->tls_ctx);
    free(c->out);
    free(c->wbuf);
    free(c);
}

/* Every end of a connection goes through here; the owner hears of it from
 * the close callback, never from inside the call that found it. */
static void shut(px_rconn_t *c, px_rconn_event_t ev, const char *why)
{
    if (c->closing)
        return;
    c->closing = 1;
    c->final_ev = ev;
    snprintf(c->why, sizeof c->why, "%s", why);
    uv_close(&c->sock.h, on_closed);
}

static void on_write(uv_write_t *w, int status);

static void flush(px_rconn_t *c)
{
    uv_buf_t b;
    int rc;

    if (c->closing)
        return;
    if (c->tls) {
        px_buf_t *o = px_tls_out(c->tls);
        /* commands are encrypted once the handshake is done; its own
         * records go out before */
        if (c->connected && c->out_len) {
            if (px_tls_write(c->tls, c->out, c->out_len) < 0) {
                shut(c, PX_RCONN_CLOSED, "TLS: cannot encrypt");
                return;
            }
            c->out_len = 0;
        }
        if (c->wbuf || !px_buf_size(o))
            return;
        if (!(c->wbuf = malloc(px_buf_size(o)))) {
            shut(c, PX_RCONN_CLOSED, "out of memory");
            return;
        }
        memcpy(c->wbuf, px_buf_ptr(o), px_buf_size(o));
        b = uv_buf_init(c->wbuf, (unsigned)px_buf_size(o));
        px_buf_reset(o);
    } else {
        if (!c->connected || c->wbuf || !c->out_len)
            return;
        c->wbuf = c->out;
        b = uv_buf_init(c->wbuf, (unsigned)c->out_len);
        c->out = NULL;
        c->out_len = c->out_cap = 0;
    }
    if ((rc = uv_write(&c->wreq, &c->sock.s, &b, 1, on_write)) != 0)
        shut(c, PX_RCONN_CLOSED, uv_strerror(rc));
}

static void on_write(uv_write_t *w, int status)
{
    px_rconn_t *c = w->handle->data;

    free(c->wbuf);
    c->wbuf = NULL;
    if (status < 0) {
        shut(c, PX_RCONN_CLOSED, uv_strerror(status));   /* no-op when closing (ECANCELED) */
        return;
    }
    flush(c);
}

static void dispatch(px_rconn_t *c, redisReply *r)
{
    cmd_t *k = c->head;

    if (c->subscribed) {
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
            r->element[0]->type != REDIS_REPLY_STRING)
            shut(c, PX_RCONN_CLOSED, "unexpected data from redis: a malformed message on a "
                 "subscribed connection");
        else
            c->sub_cb(c, r, c->sub_priv);
        return;
    }
    if (!k) {                          /* on_read counted: only after a callback closed us */
        shut(c, PX_RCONN_CLOSED, "unexpected data from redis: a reply to no command");
        return;
    }
    c->head = k->next;
    if (!c->head)
        c->tail = NULL;
    if (k->sub && r->type != REDIS_REPLY_ERROR) {
        c->subscribed = 1;
        c->sub_cb = k->cb;
        c->sub_priv = k->priv;
    }
    k->cb(c, r, k->priv);
    free(k);
    if (c->draining && !c->head)
        shut(c, PX_RCONN_CLOSED, "disconnected");
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    px_rconn_t *c = h->data;
    (void)hint;
    *b = uv_buf_init(c->inbuf, sizeof c->inbuf);
}

/* How many replies the commands waiting can take; -1: any number (a
 * SUBSCRIBE is among them, or the connection is subscribed). */
static long room(const px_rconn_t *c)
{
    long n = 0;
    if (c->subscribed)
        return -1;
    for (const cmd_t *k = c->head; k; k = k->next, n++)
        if (k->sub)
            return -1;
    return n;
}

static void process_replies(px_rconn_t *c)
{
    void **reps = NULL, *rep;
    size_t count = 0, cap = 0;
    long fit;
    char why[320];

    /* The read's complete replies are all parsed before any is handed
     * out: more of them than commands waiting means the stream is out of
     * step, and then none of them is trusted (a reply split across reads
     * is checked when its end arrives). */
    why[0] = '\0';
    while (redisReaderGetReply(c->rd, &rep) == REDIS_OK && rep) {
        if (count == cap) {
            void **p = realloc(reps, (cap = cap ? cap * 2 : 16) * sizeof *reps);
            if (!p) {
                freeReplyObject(rep);
                snprintf(why, sizeof why, "out of memory");
                break;
            }
            reps = p;
        }
        reps[count++] = rep;
    }
    if (!why[0] && c->rd->err)
        snprintf(why, sizeof why, "unexpected data from redis: %s", c->rd->errstr);
    else if (!why[0] && (fit = room(c)) >= 0 && count > (size_t)fit)
        /* Redis speaks first only to refuse (e.g. max clients): say what */
        snprintf(why, sizeof why, ((redisReply *)reps[fit])->type == REDIS_REPLY_ERROR
                 ? "redis said: %.150s" : "unexpected data from redis: a reply to no command",
                 ((redisReply *)reps[fit])->str);
    else if (!why[0] && c->rd->len - c->rd->pos > MAX_REPLY_BYTES)
        snprintf(why, sizeof why, "unexpected data from redis: a reply over 1 MiB");
    for (size_t i = 0; i < count; i++) {
        if (!why[0] && !c->closing)
            dispatch(c, reps[i]);
        freeReplyObject(reps[i]);
    }
    free(reps);
    if (why[0])
        shut(c, PX_RCONN_CLOSED, why);
}

/* Ciphertext in: the handshake's next step, then the plaintext to the
 * reader. 0, or -1 when the connection is closing. */
static int tls_input(px_rconn_t *c, const char *p, size_t n)
{
    char why[320], *dst = px_tls_in_reserve(c->tls, n);
    int rc;

    if (!dst) {
        shut(c, PX_RCONN_CLOSED, "TLS: input over its limit");
        return -1;
    }
    memcpy(dst, p, n);
    px_tls_in_commit(c->tls, n);
    if (!c->connected) {
        rc = px_tls_handshake(c->tls);
        flush(c);
        if (rc == PX_EAGAIN)
            return c->closing ? -1 : 0;
        if (rc != 0) {
            snprintf(why, sizeof why, "TLS: %s", px_tls_error(c->tls));
            shut(c, PX_RCONN_CONNECT_FAILED, why);
            return -1;
        }
        c->connected = 1;
        flush(c);
        if (!c->closing)
            c->ev(c, PX_RCONN_CONNECTED, NULL);
        if (c->closing)
            return -1;
    }
    while ((rc = px_tls_read(c->tls, c->inbuf, sizeof c->inbuf)) > 0)
        if (redisReaderFeed(c->rd, c->inbuf, (size_t)rc) != REDIS_OK) {
            shut(c, PX_RCONN_CLOSED, "out of memory");
            return -1;
        }
    if (rc == PX_EAGAIN)
        return 0;
    if (rc == PX_EEOF)
        snprintf(why, sizeof why, "connection closed by redis (TLS close_notify)");
    else
        snprintf(why, sizeof why, "TLS: %s", px_tls_error(c->tls));
    shut(c, PX_RCONN_CLOSED, why);
    return -1;
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    px_rconn_t *c = st->data;

    if (n == 0 || c->closing)
        return;
    if (n < 0) {
        shut(c, c->connected ? PX_RCONN_CLOSED : PX_RCONN_CONNECT_FAILED,
             n != UV_EOF ? uv_strerror((int)n) : c->connected ? "connection closed by redis"
             : "connection closed by redis during the TLS handshake");
        return;
    }
    if (c->tls) {
        if (tls_input(c, b->base, (size_t)n) == 0)
            process_replies(c);
        return;
    }
    if (redisReaderFeed(c->rd, b->base, (size_t)n) != REDIS_OK) {
        shut(c, PX_RCONN_CLOSED, "out of memory");
        return;
    }
    process_replies(c);
}

static void on_connect(uv_connect_t *req, int status)
{
    px_rconn_t *c = req->handle->data;

    if (c->closing)
        return;
    if (status < 0) {
        shut(c, PX_RCONN_CONNECT_FAILED, uv_strerror(status));
        return;
    }
    if (c->sock.h.type == UV_TCP)
        uv_tcp_nodelay(&c->sock.tcp, 1);
    uv_read_start(&c->sock.s, on_alloc, on_read);
    if (c->tls_ctx) {
        /* the ClientHello now; CONNECTED when the handshake is done */
        if (!(c->tls = px_tls_new(c->tls_ctx, c->sni[0] ? c->sni : NULL)) ||
            (status = px_tls_handshake(c->tls)) != PX_EAGAIN) {
            shut(c, PX_RCONN_CONNECT_FAILED, c->tls ? px_tls_error(c->tls) : "out of memory");
            return;
        }
        flush(c);
        return;
    }
    c->connected = 1;
    flush(c);
    if (!c->closing)
        c->ev(c, PX_RCONN_CONNECTED, NULL);
}

px_rconn_t *px_rconn_open(uv_loop_t *loop, const char *ip, uint16_t port, int is_unix,
                          struct px_tls_ctx *tls, const char *server_name,
                          px_rconn_event_cb ev, void *data, char *why, size_t whylen)
{
    px_rconn_t *c = calloc(1, sizeof *c);
    struct sockaddr_storage sa;
    int rc;

    if (c && !(c->rd = redisReaderCreate())) {
        free(c);
        c = NULL;
    }
    if (!c) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    c->ev = ev;
    c->data = data;
    snprintf(c->sni, sizeof c->sni, "%s", server_name ? server_name : "");
    if (!is_unix) {
        rc = strchr(ip, ':') ? uv_ip6_addr(ip, port, (struct sockaddr_in6 *)&sa)
                             : uv_ip4_addr(ip, port, (struct sockaddr_in *)&sa);
        if (rc != 0) {
            redisReaderFree(c->rd);
            free(c);
            snprintf(why, whylen, "bad address %s: %s", ip, uv_strerror(rc));
            return NULL;
        }
        uv_tcp_init(loop, &c->sock.tcp);
    } else {
        uv_pipe_init(loop, &c->sock.pipe, 0);
    }
    c->tls_ctx = tls ? px_tls_ctx_ref(tls) : NULL;   /* from here on, on_closed frees */
    c->sock.h.data = c;
    if (is_unix) {
        uv_pipe_connect(&c->creq, &c->sock.pipe, ip, on_connect);
        return c;
    }
    if ((rc = uv_tcp_connect(&c->creq, &c->sock.tcp, (struct sockaddr *)&sa, on_connect)) != 0) {
        snprintf(why, whylen, "%s", uv_strerror(rc));
        c->quiet = 1;
        shut(c, PX_RCONN_CONNECT_FAILED, why);
        return NULL;
    }
    return c;
}

static int queue(px_rconn_t *c, int argc, const char **argv, const size_t *lens,
                 px_rconn_reply_cb cb, void *priv, int sub)
{
    /* encrypted bytes wait in the session's output while a write is in flight */
    size_t unsent = c->out_len + (c->tls ? px_buf_size(px_tls_out(c->tls)) : 0);
    cmd_t *k;
    char *bytes;
    int n;

    if (c->closing || c->draining || c->subscribed || unsent > MAX_OUT_BYTES)
        return -1;
    if ((n = redisFormatCommandArgv(&bytes, argc, argv, lens)) < 0)
        return -1;
    if (c->out_len + (size_t)n > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        char *p;
        while (cap < c->out_len + (size_t)n)
            cap *= 2;
        if (!(p = realloc(c->out, cap))) {
            redisFreeCommand(bytes);
            return -1;
        }
        c->out = p;
        c->out_cap = cap;
    }
    if (!(k = calloc(1, sizeof *k))) {
        redisFreeCommand(bytes);
        return -1;
    }
    memcpy(c->out + c->out_len, bytes, (size_t)n);
    c->out_len += (size_t)n;
    redisFreeCommand(bytes);
    k->cb = cb;
    k->priv = priv;
    k->sub = sub;
    if (c->tail)
        c->tail->next = k;
    else
        c->head = k;
    c->tail = k;
    flush(c);
    return 0;
}

int px_rconn_command(px_rconn_t *c, int argc, const char **argv, const size_t *lens,
                     px_rconn_reply_cb cb, void *priv)
{
    return queue(c, argc, argv, lens, cb, priv, 0);
}

int px_rconn_subscribe(px_rconn_t *c, int argc, const char **argv, const size_t *lens,
                       px_rconn_reply_cb cb, void *priv)
{
    return queue(c, argc, argv, lens, cb, priv, 1);
}

void px_rconn_disconnect(px_rconn_t *c)
{
    c->draining = 1;
    if (!c->head || c->subscribed)
        shut(c, PX_RCONN_CLOSED, "disconnected");
}

void px_rconn_close(px_rconn_t *c)
{
    if (!c)
        return;
    c->quiet = 1;
    shut(c, PX_RCONN_CLOSED, "closed");
    fail_pending(c);
}
