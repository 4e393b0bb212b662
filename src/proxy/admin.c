/* Admin endpoints (see admin.h). One request per connection: probes and
 * scrapes are cheap to reconnect and this keeps the code small. A
 * connection that opens with the HTTP/2 preface is a gRPC health probe
 * (grpc_health.h): its own session, one call.
 *
 * The admin port accepts itself, holding spare descriptors (accept.h): when
 * the data port has used every descriptor the process may open, probes
 * still get an answer. */
#include "proxy/admin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/accept.h"
#include "core/errors.h"
#include "http/http1.h"
#include "core/log.h"
#include "proxy/grpc_health.h"

#define ADMIN_MAX_REQUEST 8192
#define ADMIN_TIMEOUT_MS 5000
#define ADMIN_SPARES 2
#define ADMIN_RETRY_MS 100

typedef struct admin_conn admin_conn_t;

struct px_admin {
    uv_poll_t listener;
    uv_timer_t retry;        /* no descriptor and no spare: accept again later */
    int fd;
    px_spares_t spares;
    px_ratelimit_t fd_log;
    px_admin_handlers_t h;
    admin_conn_t *conns;
    int closing;
    int open_handles;        /* the listener, the retry timer and connections still open */
};

struct admin_conn {
    px_admin_t *a;
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wreq;
    px_http1_t *parser;
    px_ghealth_t *health;    /* a gRPC health probe (HTTP/2), else NULL */
    px_buf_t in, out, pend;  /* out: being written; pend: HTTP/2 frames waiting for it */
    int handles, answered, writing;
    int waiting_ready;       /* a readiness answer is due: keep the memory */
    int in_input;            /* inside px_ghealth_input */
    int head_only;
    admin_conn_t *next, *prev;
};

static void admin_maybe_free(px_admin_t *a)
{
    if (a->closing && a->open_handles == 0)
        free(a);
}

static void conn_free(admin_conn_t *c)
{
    px_admin_t *a = c->a;
    if (c->prev)
        c->prev->next = c->next;
    else
        a->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    px_http1_free(c->parser);
    px_ghealth_free(c->health);
    px_buf_free(&c->in);
    px_buf_free(&c->out);
    px_buf_free(&c->pend);
    free(c);
    a->open_handles--;
    if (!a->closing)
        px_spares_refill(&a->spares);   /* its descriptor is free now */
    admin_maybe_free(a);
}

static void conn_closed(uv_handle_t *h)
{
    admin_conn_t *c = h->data;
    if (--c->handles > 0 || c->waiting_ready)
        return;                 /* freed when the readiness answer arrives */
    conn_free(c);
}

static void conn_close(admin_conn_t *c)
{
    if (uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
    uv_close((uv_handle_t *)&c->timer, conn_closed);
}

static void h2_pump(admin_conn_t *c);

static void write_done(uv_write_t *req, int status)
{
    admin_conn_t *c = req->data;
    c->writing = 0;
    if (c->health && status == 0) {
        px_buf_reset(&c->out);
        h2_pump(c);
        return;
    }
    conn_close(c);
}

/* --- a gRPC health probe ---------------------------------------------------------- */

/* Frames out, one write at a time; the end once the probe is answered. */
static void h2_pump(admin_conn_t *c)
{
    uv_buf_t b;

    if (uv_is_closing((uv_handle_t *)&c->tcp) || c->writing)
        return;
    if (px_ghealth_output(c->health, &c->pend) != 0) {
        conn_close(c);
        return;
    }
    if (!px_buf_size(&c->pend)) {
        if (px_ghealth_done(c->health))
            conn_close(c);
        return;
    }
    px_buf_t t = c->out;
    c->out = c->pend;
    c->pend = t;
    c->writing = 1;
    b = uv_buf_init((char *)px_buf_ptr(&c->out), (unsigned)px_buf_size(&c->out));
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, write_done) != 0) {
        c->writing = 0;
        conn_close(c);
    }
}

static void health_ready_done(void *token, int ready, const char *why);

static void health_ask(void *ud)
{
    admin_conn_t *c = ud;
    c->waiting_ready = 1;
    c->a->h.ready(c->a->h.ud, c, health_ready_done);
}

static void health_ready_done(void *token, int ready, const char *why)
{
    admin_conn_t *c = token;
    (void)why;
    c->waiting_ready = 0;
    if (uv_is_closing((uv_handle_t *)&c->tcp)) {
        if (c->handles == 0)
            conn_free(c);       /* closed (timeout, shutdown) while we waited */
        return;
    }
    px_ghealth_ready(c->health, ready);
    if (!c->in_input)
        h2_pump(c);             /* else the input's own pump sends it */
}

static void h2_input(admin_conn_t *c)
{
    int rc;

    if (!c->health && !(c->health = px_ghealth_new(health_ask, c))) {
        conn_close(c);
        return;
    }
    c->in_input = 1;
    rc = px_ghealth_input(c->health, px_buf_ptr(&c->in), px_buf_size(&c->in));
    c->in_input = 0;
    px_buf_consume(&c->in, px_buf_size(&c->in));
    if (rc != 0)
        c->answered = 1;        /* read no more; the GOAWAY leaves, then the end */
    h2_pump(c);
    if (rc != 0 && !c->writing)
        conn_close(c);
}

static void respond(admin_conn_t *c, int status, const char *ctype, const char *body, size_t blen,
                    int head_only)
{
    uv_buf_t b;
    c->answered = 1;
    px_buf_printf(&c->out,
                  "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                  "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                  status, px_http_status_reason(status), ctype, blen);
    if (!head_only)
        px_buf_append(&c->out, body, blen);
    b = uv_buf_init((char *)px_buf_ptr(&c->out), (unsigned)px_buf_size(&c->out));
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, write_done) != 0)
        conn_close(c);
}

static void respond_error(admin_conn_t *c, px_http_error_t e, const char *detail)
{
    char buf[1024];
    int n = px_http_error_render(buf, sizeof buf, e, detail, 1);
    uv_buf_t b;
    c->answered = 1;
    if (n < 0 || px_buf_append(&c->out, buf, (size_t)n) != 0) {
        conn_close(c);
        return;
    }
    b = uv_buf_init((char *)px_buf_ptr(&c->out), (unsigned)px_buf_size(&c->out));
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, write_done) != 0)
        conn_close(c);
}

static int path_is(const px_http_head_t *h, const char *p)
{
    /* the target is not NUL-terminated: bound every scan by its length */
    const char *q = memchr(h->target, '?', h->target_len);
    size_t n = strlen(p), tl = q ? (size_t)(q - h->target) : h->target_len;
    return tl == n && !memcmp(h->target, p, n);
}

static void ready_done(void *token, int ready, const char *why)
{
    admin_conn_t *c = token;
    char body[512], esc[300];
    size_t k = 0;
    int n;

    c->waiting_ready = 0;
    if (uv_is_closing((uv_handle_t *)&c->tcp)) {
        if (c->handles == 0)
            conn_free(c);       /* closed (timeout, shutdown) while we waited */
        return;
    }
    if (ready) {
        n = snprintf(body, sizeof body, "{\"status\":\"ready\"}\n");
        respond(c, 200, "application/json", body, (size_t)n, c->head_only);
        return;
    }
    for (const char *p = why; p && *p && k + 2 < sizeof esc; p++)
        if (*p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
            esc[k++] = *p;
    esc[k] = 0;
    n = snprintf(body, sizeof body, "{\"status\":\"not_ready\",\"reason\":\"%s\"}\n", esc);
    respond(c, 503, "application/json", body, (size_t)n, c->head_only);
}

static void handle(admin_conn_t *c, const px_http_head_t *h)
{
    px_admin_t *a = c->a;
    int is_head = h->method_len == 4 && !memcmp(h->method, "HEAD", 4);
    int is_get = h->method_len == 3 && !memcmp(h->method, "GET", 3);
    if (!is_get && !is_head) {
        respond_error(c, PX_HERR_METHOD_NOT_ALLOWED, "the admin endpoints answer GET and HEAD");
        return;
    }
    if (path_is(h, "/healthz")) {
        static const char ok[] = "{\"status\":\"ok\"}\n";
        respond(c, 200, "application/json", ok, sizeof ok - 1, is_head);
    } else if (path_is(h, "/readyz")) {
        c->waiting_ready = 1;
        c->head_only = is_head;
        a->h.ready(a->h.ud, c, ready_done);
    } else if (path_is(h, "/metrics")) {
        px_buf_t m;
        px_buf_init(&m, 0);
        if (a->h.metrics(a->h.ud, &m) != 0)
            respond_error(c, PX_HERR_INTERNAL, "metrics unavailable");
        else
            respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", px_buf_ptr(&m),
                    px_buf_size(&m), is_head);
        px_buf_free(&m);
    } else {
        respond_error(c, PX_HERR_NOT_FOUND, "admin endpoints: /healthz, /readyz, /metrics");
    }
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    admin_conn_t *c = h->data;
    char *p = px_buf_reserve(&c->in, 2048);
    (void)suggested;
    buf->base = p;
    buf->len = p ? 2048 : 0;
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    admin_conn_t *c = s->data;
    (void)buf;
    if (c->answered)
        return;
    if (n < 0) {
        if (n == UV_ENOBUFS)
            respond_error(c, PX_HERR_HEADERS_TOO_LARGE, "admin requests are small");
        else
            conn_close(c);
        return;
    }
    px_buf_commit(&c->in, (size_t)n);
    if (c->health || px_ghealth_preface(px_buf_ptr(&c->in), px_buf_size(&c->in))) {
        h2_input(c);
        return;
    }
    for (;;) {
        const char *data;
        size_t used = 0, dlen = 0;
        px_h1_event_t ev = px_http1_parse(c->parser, px_buf_ptr(&c->in), px_buf_size(&c->in), &used,
                                          &data, &dlen);
        px_buf_consume(&c->in, used);
        if (ev == PX_H1_HEAD) {
            uv_read_stop(s);
            handle(c, px_http1_head(c->parser));
            return;
        }
        if (ev == PX_H1_ERROR) {
            const char *detail;
            px_http_error_t e = px_http1_error(c->parser, &detail);
            respond_error(c, e, detail);
            return;
        }
        if (ev == PX_H1_NEED_MORE)
            return;
    }
}

static void timeout_cb(uv_timer_t *t)
{
    conn_close(t->data);
}

static void accept_ready(uv_poll_t *p, int status, int events);

static void accept_resume(uv_timer_t *t)
{
    px_admin_t *a = t->data;
    if (!a->closing)
        uv_poll_start(&a->listener, UV_READABLE, accept_ready);
}

static void serve(px_admin_t *a, int fd)
{
    admin_conn_t *c;
    px_http1_limits_t lim = { ADMIN_MAX_REQUEST, 64, 0 };

    if (!(c = calloc(1, sizeof *c))) {
        close(fd);
        return;
    }
    c->a = a;
    uv_tcp_init(a->listener.loop, &c->tcp);
    uv_timer_init(a->listener.loop, &c->timer);
    c->tcp.data = c->timer.data = c->wreq.data = c;
    c->handles = 2;
    a->open_handles++;
    c->next = a->conns;
    if (a->conns)
        a->conns->prev = c;
    a->conns = c;
    px_buf_init(&c->in, ADMIN_MAX_REQUEST);
    px_buf_init(&c->out, 0);
    px_buf_init(&c->pend, 0);
    c->parser = px_http1_new(1, &lim);
    if (uv_tcp_open(&c->tcp, fd) != 0) {
        close(fd);
        conn_close(c);
        return;
    }
    if (!c->parser) {
        conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, timeout_cb, ADMIN_TIMEOUT_MS, 0);
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
}

static void accept_ready(uv_poll_t *p, int status, int events)
{
    px_admin_t *a = p->data;
    (void)events;
    if (status < 0)
        return;
    for (int i = 0; i < 16 && !a->closing; i++) {
        int exhausted, fd = px_accept(a->fd, &a->spares, &exhausted);
        uint64_t held = 0;
        if (exhausted && px_ratelimit(&a->fd_log, uv_now(p->loop), 1000, &held))
            px_warn("admin: accept: no file descriptor left; %s (%llu more since the last report)",
                    fd >= 0 ? "answering through a spare" : "no spare left either",
                    (unsigned long long)held);
        if (fd < 0) {
            if (exhausted && !px_spares_refill(&a->spares)) {
                uv_poll_stop(&a->listener);     /* do not spin on the queued connection */
                uv_timer_start(&a->retry, accept_resume, ADMIN_RETRY_MS, 0);
            }
            return;
        }
        serve(a, fd);
    }
}

static void listener_closed(uv_handle_t *h)
{
    px_admin_t *a = h->data;
    a->open_handles--;
    admin_maybe_free(a);
}

px_admin_t *px_admin_start(uv_loop_t *loop, const px_addr_t *addr, const px_admin_handlers_t *h,
                           char *err, size_t errlen)
{
    px_admin_t *a = calloc(1, sizeof *a);
    int rc;

    if (!a) {
        snprintf(err, errlen, "admin: out of memory");
        return NULL;
    }
    a->h = *h;
    a->fd = -1;
    uv_timer_init(loop, &a->retry);
    a->retry.data = a;
    a->open_handles = 1;
    if ((rc = a->fd = px_listen(addr, 0, 128)) < 0)   /* -errno: libuv's codes on Linux */
        goto fail;
    if ((rc = uv_poll_init(loop, &a->listener, a->fd)) != 0)
        goto fail;
    a->listener.data = a;
    a->open_handles = 2;
    px_spares_init(&a->spares, ADMIN_SPARES);
    uv_poll_start(&a->listener, UV_READABLE, accept_ready);
    return a;
fail:
    snprintf(err, errlen, "admin.listen: cannot listen on %s:%u: %s", addr->host, addr->port,
             uv_strerror(rc));
    if (a->fd >= 0)
        close(a->fd);
    a->closing = 1;
    uv_close((uv_handle_t *)&a->retry, listener_closed);
    return NULL;
}

void px_admin_close(px_admin_t *a)
{
    if (!a || a->closing)
        return;
    a->closing = 1;
    uv_close((uv_handle_t *)&a->listener, listener_closed);
    uv_close((uv_handle_t *)&a->retry, listener_closed);
    close(a->fd);
    px_spares_free(&a->spares);
    for (admin_conn_t *c = a->conns; c; c = c->next)
        conn_close(c);
}
