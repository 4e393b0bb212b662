/* `pqproxy request --http2` (client_h2.h): nghttp2's client session fed
 * from and flushed to the TLS link, one stream. */
#include "cmd/client_h2.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "core/errors.h"
#include "core/sockio.h"

#define IO_CHUNK 16384
#define MAX_FIELDS 74

typedef struct {
    int fd, timeout_ms;
    px_tls_t *tls;
    const px_h2_client_req_t *r;
    int32_t id;
    int status, closed, head_done, failed;
    uint32_t close_code;
    size_t data_off;
} h2c_t;

static ssize_t send_cb(nghttp2_session *s, const uint8_t *data, size_t len, int flags, void *ud)
{
    h2c_t *c = ud;
    (void)s;
    (void)flags;
    return px_tls_write(c->tls, (const char *)data, len) < 0 ? NGHTTP2_ERR_CALLBACK_FAILURE : (ssize_t)len;
}

static int header_cb(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    h2c_t *c = ud;
    (void)s;
    (void)flags;
    if (f->hd.stream_id != c->id)
        return 0;
    if (nlen == 7 && !memcmp(name, ":status", 7)) {
        int st = 0;
        for (size_t i = 0; i < vlen && i < 3; i++)
            st = st * 10 + (value[i] - '0');
        if (st >= 200)
            c->status = st;
        if (c->r->include)
            fprintf(c->r->out, "HTTP/2 %.*s\r\n", (int)vlen, value);
        return 0;
    }
    if (c->r->include)
        fprintf(c->r->out, "%.*s: %.*s\r\n", (int)nlen, name, (int)vlen, value);
    /* the final head's fields, then (once it has ended) its trailers */
    if (c->r->resp && c->status &&
        px_msg_add(c->r->resp, (const char *)name, nlen, (const char *)value, vlen) != 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;   /* resets the stream */
    return 0;
}

/* The end of a header block: the blank line after the head (and after trailers). */
static int frame_cb(nghttp2_session *s, const nghttp2_frame *f, void *ud)
{
    h2c_t *c = ud;
    (void)s;
    if (f->hd.stream_id != c->id || f->hd.type != NGHTTP2_HEADERS)
        return 0;
    if (c->r->include)
        fprintf(c->r->out, "\r\n");
    if (c->r->resp && c->status && !c->head_done) {
        c->head_done = 1;
        px_msg_begin_trailers(c->r->resp);
    }
    return 0;
}

static int data_cb(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *ud)
{
    h2c_t *c = ud;
    (void)s;
    (void)flags;
    if (id == c->id) {
        if (c->r->digest)
            px_digest_update(c->r->digest, data, len);
        fwrite(data, 1, len, c->r->out);
        fflush(c->r->out);
    }
    return 0;
}

static int close_cb(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    h2c_t *c = ud;
    (void)s;
    if (id == c->id) {
        c->closed = 1;
        c->close_code = code;
    }
    return 0;
}

static ssize_t body_cb(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                       nghttp2_data_source *src, void *ud)
{
    h2c_t *c = ud;
    size_t n;
    (void)s;
    (void)id;
    (void)src;
    if (c->r->data) {
        size_t left = (size_t)c->r->body_len - c->data_off;
        n = left < len ? left : len;
        memcpy(buf, c->r->data + c->data_off, n);
        c->data_off += n;
        if (c->data_off == (size_t)c->r->body_len)
            *flags |= NGHTTP2_DATA_FLAG_EOF;
        return (ssize_t)n;
    }
    n = fread(buf, 1, len, c->r->body);
    if (n == 0 && ferror(c->r->body))
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;   /* resets the stream */
    if (n < len)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

#define NV(n, v) ((nghttp2_nv){ (uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE })

/* A field name lowered into names[] (at *off); NULL when it is full. */
static uint8_t *lowered(char *names, size_t ncap, size_t *off, const char *name, size_t nl)
{
    char *at = names + *off;
    if (*off + nl + 1 > ncap)
        return NULL;
    for (size_t j = 0; j < nl; j++)
        at[j] = (char)tolower((unsigned char)name[j]);
    at[nl] = '\0';
    *off += nl + 1;
    return (uint8_t *)at;
}

/* The request's fields: pseudo-headers, then -H fields and the extra ones
 * (the signature) with their names lowered (HTTP/2 refuses upper case)
 * into names[]. */
static int fields(const px_h2_client_req_t *r, nghttp2_nv *nv, char *names, size_t ncap, char *len)
{
    int k = 0;
    size_t off = 0;
    nv[k++] = NV(":method", r->method);
    nv[k++] = NV(":scheme", "https");
    nv[k++] = NV(":authority", r->authority);
    nv[k++] = NV(":path", r->path);
    for (int i = 0; i < r->header_count && k < MAX_FIELDS - 4; i++) {
        const char *h = r->headers[i], *colon = strchr(h, ':'), *v;
        size_t nl;
        uint8_t *name;
        if (!colon || colon == h) {
            fprintf(stderr, "pqproxy request: -H '%s' is not 'Name: value'\n", h);
            return -1;
        }
        nl = (size_t)(colon - h);
        if (!(name = lowered(names, ncap, &off, h, nl)))
            return -1;
        for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
            ;
        nv[k++] = (nghttp2_nv){ name, (uint8_t *)v, nl, strlen(v), NGHTTP2_NV_FLAG_NONE };
    }
    nv[k++] = NV("user-agent", r->user_agent);
    for (int i = 0; i < r->extra_count && i < 2; i++) {
        const px_header_t *x = &r->extra[i];
        uint8_t *name = lowered(names, ncap, &off, x->name, x->name_len);
        if (!name)
            return -1;
        nv[k++] = (nghttp2_nv){ name, (uint8_t *)x->value, x->name_len, x->value_len, NGHTTP2_NV_FLAG_NONE };
    }
    if (r->body_len >= 0) {
        snprintf(len, 24, "%lld", r->body_len);
        nv[k++] = NV("content-length", len);
    }
    return k;
}

/* Sends what nghttp2 has, reads what comes, until the stream is closed. */
static int pump(h2c_t *c, nghttp2_session *s)
{
    char plain[IO_CHUNK];
    while (!c->closed) {
        int n;
        if (nghttp2_session_send(s) != 0 ||
            px_sock_flush_tls(c->fd, c->tls, px_now_ms() + c->timeout_ms, NULL) < 0) {
            fprintf(stderr, "pqproxy request: send failed: %s\n", px_tls_error(c->tls));
            return -1;
        }
        n = px_tls_read(c->tls, plain, sizeof plain);
        if (n == PX_EAGAIN) {
            int rc = px_sock_fill_tls(c->fd, c->tls, px_now_ms() + c->timeout_ms, NULL);
            if (rc == PX_ETIMEOUT) {
                fprintf(stderr, "pqproxy request: timed out after %d ms\n", c->timeout_ms);
                return -1;
            }
            continue;               /* at EOF the next read reports it */
        }
        if (n < 0) {
            fprintf(stderr, "pqproxy request: the connection closed before the response ended\n");
            return -1;
        }
        if (nghttp2_session_mem_recv(s, (const uint8_t *)plain, (size_t)n) < 0) {
            fprintf(stderr, "pqproxy request: HTTP/2 protocol error from the server\n");
            return -1;
        }
    }
    return 0;
}

int px_h2_client_run(int fd, px_tls_t *tls, int timeout_ms, const px_h2_client_req_t *r, int *status)
{
    h2c_t c = { fd, timeout_ms, tls, r, -1, 0, 0, 0, 0, 0, 0 };
    nghttp2_session_callbacks *cb = NULL;
    nghttp2_session *s = NULL;
    nghttp2_nv nv[MAX_FIELDS];
    nghttp2_data_provider dp = { .read_callback = body_cb };
    char names[4096], len[24];
    int n, rc = -1;

    if (strcmp(px_tls_alpn(tls), "h2")) {
        fprintf(stderr, "pqproxy request: --http2: the server did not choose h2 by ALPN (%s)\n",
                *px_tls_alpn(tls) ? px_tls_alpn(tls) : "none");
        return -1;
    }
    if ((n = fields(r, nv, names, sizeof names, len)) < 0)
        return -1;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        return -1;
    nghttp2_session_callbacks_set_send_callback(cb, send_cb);
    nghttp2_session_callbacks_set_on_header_callback(cb, header_cb);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, frame_cb);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, data_cb);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, close_cb);
    if (nghttp2_session_client_new(&s, cb, &c) != 0 ||
        nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, NULL, 0) != 0)
        goto out;
    c.id = nghttp2_submit_request(s, NULL, nv, (size_t)n, r->data || r->body ? &dp : NULL, NULL);
    if (c.id < 0) {
        fprintf(stderr, "pqproxy request: cannot make the HTTP/2 request: %s\n", nghttp2_strerror(c.id));
        goto out;
    }
    if (pump(&c, s) < 0)
        goto out;
    if (c.close_code != NGHTTP2_NO_ERROR || !c.status) {
        fprintf(stderr, "pqproxy request: the server reset the stream: %s\n",
                nghttp2_http2_strerror(c.close_code));
        goto out;
    }
    /* a polite end: GOAWAY */
    if (nghttp2_session_terminate_session(s, NGHTTP2_NO_ERROR) == 0 && nghttp2_session_send(s) == 0)
        px_sock_flush_tls(fd, tls, px_now_ms() + timeout_ms, NULL);
    *status = c.status;
    rc = 0;
out:
    fflush(r->out);
    nghttp2_session_del(s);
    nghttp2_session_callbacks_del(cb);
    return rc;
}
