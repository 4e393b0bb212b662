/* The client side's transport (see transport.h). */
#include "net/transport.h"

#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/streamio.h"

#define READ_CHUNK (16 * 1024)      /* ciphertext per socket read */
#define PLAIN_CHUNK (16 * 1024)     /* plaintext per TLS read (one record) */
#define RECORD_MAX 16384            /* TLS plaintext record size */

static PX_MUST_CHECK int flush_plain(px_transport_t *t);

static PX_MUST_CHECK int fail(px_transport_t *t, px_end_reason_t why)
{
    t->why = why;
    return -1;
}

static void on_handle_closed(uv_handle_t *h)
{
    px_transport_t *t = h->data;
    if (--t->open_handles == 0)
        t->cb->on_closed(t);
}

static void timer_cb(uv_timer_t *h)
{
    px_transport_t *t = h->data;
    if (px_ltimer_expired(&t->timer, timer_cb))
        t->cb->on_timer(t);
}

void px_transport_init(px_transport_t *t, uv_loop_t *loop, const px_transport_cb_t *cb, void *ud)
{
    t->cb = cb;
    t->ud = ud;
    uv_tcp_init(loop, &t->tcp);
    uv_timer_init(loop, &t->timer.timer);
    t->tcp.data = t->timer.timer.data = t->wreq.data = t->sreq.data = t;
    t->open_handles = 2;
    px_buf_init(&t->wout, 0);
    px_buf_init(&t->in, 0);
    px_buf_init(&t->plain, 0);
}

int px_transport_open(px_transport_t *t, int fd)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    int rc = uv_tcp_open(&t->tcp, fd);

    if (rc != 0) {
        close(fd);              /* not the handle's: closing it closes nothing */
        return rc;
    }
    uv_tcp_nodelay(&t->tcp, 1);
    if (uv_tcp_getpeername(&t->tcp, (struct sockaddr *)&ss, &len) == 0) {
        uint16_t port = 0;
        if (ss.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&ss, t->client_ip, sizeof t->client_ip);
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
            snprintf(t->client_addr, sizeof t->client_addr, "[%s]:%u", t->client_ip, port);
        } else {
            uv_ip4_name((struct sockaddr_in *)&ss, t->client_ip, sizeof t->client_ip);
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
            snprintf(t->client_addr, sizeof t->client_addr, "%s:%u", t->client_ip, port);
        }
    }
    return 0;
}

void px_transport_set_tls(px_transport_t *t, px_tls_t *tls, size_t in_max)
{
    t->tls = tls;
    t->in_max = in_max;
}

void px_transport_close(px_transport_t *t)
{
    if (t->closed)
        return;
    t->closed = 1;
    uv_close((uv_handle_t *)&t->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&t->timer.timer, on_handle_closed);
}

void px_transport_free(px_transport_t *t)
{
    px_tls_free(t->tls);
    t->tls = NULL;
    px_buf_free(&t->wout);
    px_buf_free(&t->in);
    px_buf_free(&t->plain);
}

void px_transport_arm(px_transport_t *t, uint32_t ms)
{
    px_ltimer_arm(&t->timer, ms, timer_cb);
}

size_t px_transport_pending(const px_transport_t *t)
{
    return px_buf_size(&t->plain) + px_buf_size(px_tls_out(t->tls)) + px_buf_size(&t->wout);
}

/* --- output ------------------------------------------------------------------- */

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    px_transport_t *t = req->data;
    if (status < 0 || t->eof)
        t->cb->on_fail(t, PX_END_CLIENT_CLOSED, 0);
}

static void write_cb(uv_write_t *req, int status)
{
    px_transport_t *t = req->data;
    int rc;

    t->writing = 0;
    px_buf_reset(&t->wout);
    if (t->closed)
        return;
    if (status < 0) {
        px_debug("%s: write failed: %s", t->client_addr, uv_strerror(status));
        t->cb->on_fail(t, PX_END_CLIENT_CLOSED, 0);
        return;
    }
    rc = px_transport_flush(t);
    if (rc < 0) {
        t->cb->on_fail(t, t->why, 0);
        return;
    }
    t->cb->on_sent(t);
}

int px_transport_flush(px_transport_t *t)
{
    px_buf_t *out, tmp;
    uv_buf_t b;
    int n;

    if (t->closed)
        return fail(t, PX_END_CLIENT_CLOSED);
    if (t->writing)
        return 0;
    if (flush_plain(t) < 0)
        return -1;
    out = px_tls_out(t->tls);
    if (px_buf_size(out) == 0) {
        if (t->closing && !t->shutdown_sent) {
            t->shutdown_sent = 1;
            if (t->eof || uv_shutdown(&t->sreq, (uv_stream_t *)&t->tcp, shutdown_cb) != 0)
                return fail(t, PX_END_CLIENT_CLOSED);
        }
        return 0;
    }
    /* Usually the socket takes it all at once: no request, no deferred
     * callback, no epoll change. */
    n = px_stream_try_send((uv_stream_t *)&t->tcp, px_buf_ptr(out), px_buf_size(out));
    if (n == (int)px_buf_size(out)) {
        px_buf_reset(out);
        if (t->closing)
            return px_transport_flush(t) < 0 ? -1 : 0;    /* now the FIN */
        return 1;
    }
    if (n > 0) {
        px_buf_consume(out, (size_t)n);
    } else if (n != UV_EAGAIN) {
        px_debug("%s: write failed: %s", t->client_addr, uv_strerror(n));
        return fail(t, PX_END_CLIENT_CLOSED);
    }
    tmp = t->wout;
    t->wout = *out;
    *out = tmp;
    px_buf_reset(out);
    b = uv_buf_init((char *)px_buf_ptr(&t->wout), (unsigned)px_buf_size(&t->wout));
    if (uv_write(&t->wreq, (uv_stream_t *)&t->tcp, &b, 1, write_cb) != 0)
        return fail(t, PX_END_CLIENT_CLOSED);
    t->writing = 1;
    t->write_since = uv_now(t->tcp.loop);
    return 0;
}

static PX_MUST_CHECK int encrypt(px_transport_t *t, const char *p, size_t n)
{
    if (px_tls_write(t->tls, p, n) < 0) {
        px_debug("%s: %s", t->client_addr, px_tls_error(t->tls));
        return fail(t, PX_END_CLIENT_TLS);
    }
    return 0;
}

/* Encrypts what is staged. */
static int flush_plain(px_transport_t *t)
{
    int rc = 0;
    if (t->closed)
        return fail(t, PX_END_CLIENT_CLOSED);
    if (px_buf_size(&t->plain))
        rc = encrypt(t, px_buf_ptr(&t->plain), px_buf_size(&t->plain));
    px_buf_reset(&t->plain);
    return rc;
}

/* Small pieces (a response head and a small body, chunk framing) are
 * staged and leave as one TLS record: one encryption here and one
 * decryption at the client instead of several. */
int px_transport_send(px_transport_t *t, const char *p, size_t n)
{
    if (px_buf_size(&t->plain) + n > RECORD_MAX && flush_plain(t) < 0)
        return -1;
    if (n > RECORD_MAX)
        return encrypt(t, p, n);
    if (px_buf_append(&t->plain, p, n) < 0)
        return fail(t, PX_END_INTERNAL);
    return 0;
}

int px_transport_begin_close(px_transport_t *t, int notify)
{
    t->closing = 1;
    if (flush_plain(t) < 0)
        return -1;
    if (notify && px_tls_handshake_done(t->tls))
        px_tls_shutdown(t->tls);    /* close_notify after the staged bytes */
    return 0;
}

/* --- input -------------------------------------------------------------------- */

/* One read's result (px_stream_recv's): 0 to read on, -1 when the
 * transport must not be touched again in this callback. */
static int take_read(px_transport_t *t, ssize_t n)
{
    if (n > 0) {
        t->got_bytes = 1;
        px_tls_in_commit(t->tls, (size_t)n);
    } else if (n == UV_EOF) {
        px_tls_in_eof(t->tls);
        t->eof = 1;
    } else {
        t->cb->on_fail(t, PX_END_CLIENT_CLOSED, 1);
        return -1;
    }
    if (t->closing) {
        /* Lingering: the client's bytes are of no use now; its FIN ends it. */
        if (t->eof) {
            t->cb->on_fail(t, PX_END_CLIENT_CLOSED, 0);
            return -1;
        }
        px_tls_in_discard(t->tls);
        return 0;
    }
    t->cb->on_input(t);
    return 0;
}

/* The socket is readable (streamio.h: libuv reads nothing itself). */
static void read_cb(uv_stream_t *s, ssize_t status, const uv_buf_t *buf)
{
    px_transport_t *t = s->data;
    (void)status;               /* UV_ENOBUFS, from px_stream_no_alloc */
    (void)buf;
    for (int i = 0; i < PX_STREAM_READ_BURST; i++) {
        char *p;
        ssize_t n;
        if (t->closed || !t->reading || t->eof)
            return;
        p = px_tls_in_reserve(t->tls, READ_CHUNK);
        if (!p) {
            uv_read_stop(s);
            t->reading = 0;
            return;
        }
        n = px_stream_recv(s, p, READ_CHUNK);
        if (n == UV_EAGAIN || take_read(t, n) < 0 || n < READ_CHUNK)
            return;
    }
}

void px_transport_update_reading(px_transport_t *t)
{
    int want;
    if (t->closed)
        return;
    want = !t->eof && px_tls_in_pending(t->tls) + READ_CHUNK <= 64 * 1024 &&
           px_buf_size(&t->in) < t->in_max;
    if (t->closing)
        want = !t->eof;
    if (want && !t->reading) {
        if (uv_read_start((uv_stream_t *)&t->tcp, px_stream_no_alloc, read_cb) == 0)
            t->reading = 1;
    } else if (!want && t->reading) {
        uv_read_stop((uv_stream_t *)&t->tcp);
        t->reading = 0;
    }
}

int px_transport_decrypt(px_transport_t *t)
{
    while (px_buf_size(&t->in) < t->in_max) {
        /* grow only when little is left: a small request needs no big buffer */
        size_t avail;
        char *p = px_buf_space(&t->in, 2048, &avail);
        int n;
        if (!p)
            return fail(t, PX_END_INTERNAL);
        n = px_tls_read(t->tls, p, avail > PLAIN_CHUNK ? PLAIN_CHUNK : avail);
        if (n > 0) {
            px_buf_commit(&t->in, (size_t)n);
            continue;
        }
        if (n == PX_EAGAIN)
            break;
        if (n == PX_EEOF || n == PX_EIO) {   /* close_notify, or FIN without it */
            t->eof = 1;
            break;
        }
        /* The client broke the session (a bad record, a CCS after the
         * handshake): the alert wolfSSL queued says why (RFC 8446 6.2) and
         * leaves before our FIN rather than being dropped with the socket. */
        px_debug("%s: %s", t->client_addr, px_tls_error(t->tls));
        px_buf_reset(&t->plain);            /* nothing more can be encrypted */
        t->why = PX_END_CLIENT_TLS;
        return -2;
    }
    return 0;
}

void px_transport_compact(px_transport_t *t)
{
    if (px_buf_size(&t->plain) == 0)
        px_buf_free(&t->plain);
    if (px_buf_size(&t->in) == 0)
        px_buf_free(&t->in);
    if (!t->writing)
        px_buf_free(&t->wout);
    px_tls_compact(t->tls);
}
