/* Heads to and from an h2c upstream (h2c_xlate.h). */
#include "proxy/h2c_xlate.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/errors.h"
#include "core/log.h"
#include "http/h2_fields.h"

/* a copy of what the pool took, which http.max_header_bytes and the
 * pool's field cap bound: the copy never refuses what the pool let in */
#define RESP_BYTES PX_MAX_HEADER_BYTES
#define RESP_FIELDS PX_H2C_MAX_FIELDS

px_h2cx_t *px_h2cx_new(void)
{
    px_h2cx_t *h = calloc(1, sizeof *h);
    if (h)
        px_msg_init(&h->msg, RESP_BYTES, RESP_FIELDS);
    return h;
}

void px_h2cx_free(px_h2cx_t *h)
{
    if (!h)
        return;
    if (h->s)
        px_h2c_release(h->s);
    px_msg_free(&h->msg);
    free(h->fields);
    free(h->trailers);
    free(h);
}

void px_h2cx_recycle(px_h2cx_t *h, size_t keep)
{
    if (h->s)
        px_h2c_release(h->s);
    h->s = NULL;
    px_msg_recycle(&h->msg, keep);
    if (h->fields_cap * sizeof *h->fields > keep) {
        free(h->fields);
        h->fields = NULL;
        h->fields_cap = 0;
    }
    if (h->trailers_cap > keep) {
        free(h->trailers);
        h->trailers = NULL;
        h->trailers_cap = 0;
    }
    memset(&h->head, 0, sizeof h->head);
    h->ntrailers = 0;
    h->unacked = 0;
}

/* "trailers" among te's comma-separated codings. */
static int te_trailers(const px_http_head_t *h)
{
    for (int i = 0; i < h->header_count; i++) {
        const px_header_t *f = &h->headers[i];
        const char *p = f->value, *end = f->value + f->value_len;
        if (f->name_len != 2 || strncasecmp(f->name, "te", 2))
            continue;
        while (p < end) {
            const char *q = memchr(p, ',', (size_t)(end - p));
            size_t n;
            if (!q)
                q = end;
            while (p < q && (*p == ' ' || *p == '\t'))
                p++;
            n = (size_t)(q - p);
            while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
                n--;
            if (n == 8 && !strncasecmp(p, "trailers", 8))
                return 1;
            p = q + 1;
        }
    }
    return 0;
}

/* The fields being gathered in a scratch buffer: the nghttp2_nv array at
 * its front (room for max), names and values after it. Until done, an
 * entry's name and value hold offsets into the buffer, which may move as it
 * grows. */
typedef struct {
    px_buf_t *b;
    size_t n, max;
    int authority;                      /* :authority (and :path) are in */
    const px_http_head_t *h;
} nvb_t;

static nghttp2_nv *nvb_at(const nvb_t *v, size_t i)
{
    return (nghttp2_nv *)(void *)px_buf_ptr(v->b) + i;
}

/* A name's bytes lowercased, eight at a time: tokens and pseudo-header
 * names (not tokens: px_tchar would drop their ':') are ASCII, so a byte
 * gains 0x20 exactly when it is in A..Z (no carry crosses a byte). */
static void lower_copy(char *d, const char *s, size_t n)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    size_t i = 0;

    for (; i + 8 <= n; i += 8) {
        uint64_t w, h;
        memcpy(&w, s + i, 8);
        h = w & ~highs;
        w |= ((h + (0x80 - 'A') * ones) & ~(h + (0x80 - 'Z' - 1) * ones) & ~w & highs) >> 2;
        memcpy(d + i, &w, 8);
    }
    for (; i < n; i++)
        d[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
}

static int nvb_add(nvb_t *v, const char *name, size_t nlen, const char *val, size_t vlen, uint8_t flags)
{
    size_t at = px_buf_size(v->b);
    nghttp2_nv *e;
    char *d;

    if (v->n == v->max)
        return PX_EINVAL;               /* more than the walk can emit: a bug, refused */
    if (!(d = px_buf_reserve(v->b, nlen + vlen + 2)))
        return PX_ENOMEM;
    lower_copy(d, name, nlen);          /* a token (px_http1_request_fields vetted it) */
    d[nlen] = '\0';
    if (vlen)
        memcpy(d + nlen + 1, val, vlen);
    d[nlen + 1 + vlen] = '\0';
    v->b->len += nlen + vlen + 2;
    e = nvb_at(v, v->n++);
    *e = (nghttp2_nv){ (uint8_t *)(uintptr_t)at, (uint8_t *)(uintptr_t)(at + nlen + 1), nlen, vlen,
                       flags };
    return 0;
}

/* An empty scratch with room for v->max entries at its front. */
static int nvb_begin(nvb_t *v)
{
    px_buf_reset(v->b);
    if (!px_buf_reserve(v->b, v->max * sizeof(nghttp2_nv)))
        return PX_ENOMEM;
    v->b->len += v->max * sizeof(nghttp2_nv);
    return 0;
}

/* Offsets to pointers, once the buffer has stopped moving. */
static void nvb_done(nvb_t *v)
{
    for (size_t i = 0; i < v->n; i++) {
        nghttp2_nv *e = nvb_at(v, i);
        e->name = (uint8_t *)px_buf_ptr(v->b) + (uintptr_t)e->name;
        e->value = (uint8_t *)px_buf_ptr(v->b) + (uintptr_t)e->value;
    }
}

/* px_http1_request_fields's sink: Host (always first) becomes :authority,
 * followed by :path; Transfer-Encoding goes (HTTP/2 frames the body). */
static int h2_field(void *ud, const char *name, size_t nlen, const char *value, size_t vlen)
{
    nvb_t *v = ud;
    int rc;

    if (!v->authority) {
        v->authority = 1;
        if (!vlen)
            return PX_EINVAL;           /* HTTP/2 needs an :authority */
        if ((rc = nvb_add(v, ":authority", 10, value, vlen, NGHTTP2_NV_FLAG_NONE)))
            return rc;
        return nvb_add(v, ":path", 5, v->h->target, v->h->target_len, NGHTTP2_NV_FLAG_NONE);
    }
    if (px_h2_connection_specific(name, nlen))
        return 0;
    /* unique to each request: indexed, every one would evict an entry that
     * could be reused and lengthen the encoder's search of its table */
    return nvb_add(v, name, nlen, value, vlen,
                   nlen == 12 && !strncasecmp(name, "x-request-id", 12) ? NGHTTP2_NV_FLAG_NO_INDEX
                                                                        : NGHTTP2_NV_FLAG_NONE);
}

int px_h2cx_request(px_buf_t *scratch, const px_http_head_t *h, const px_fwd_opts_t *opts,
                    nghttp2_nv **nvp, size_t *np)
{
    /* what px_http1_request_fields can emit: Host, the client's fields, four
     * forwarding ones, the extras and the framing; then the pseudo-headers
     * and te */
    nvb_t v = { scratch, 0, (size_t)h->header_count + (opts ? (size_t)opts->extra_count : 0) + 12, 0, h };
    int rc;

    *nvp = NULL;
    *np = 0;
    if (nvb_begin(&v) != 0)
        return PX_ENOMEM;
    if ((rc = nvb_add(&v, ":method", 7, h->method, h->method_len, NGHTTP2_NV_FLAG_NONE)) ||
        (rc = nvb_add(&v, ":scheme", 7, "http", 4, NGHTTP2_NV_FLAG_NONE)) ||
        (rc = px_http1_request_fields(h, opts, h2_field, &v)) ||
        (te_trailers(h) && (rc = nvb_add(&v, "te", 2, "trailers", 8, NGHTTP2_NV_FLAG_NONE)))) {
        px_buf_reset(scratch);
        return rc;
    }
    nvb_done(&v);
    *nvp = nvb_at(&v, 0);
    *np = v.n;
    return 0;
}

int px_h2cx_request_trailers(px_buf_t *scratch, const px_header_t *t, int n, nghttp2_nv **nvp,
                             size_t *np, int *dropped)
{
    nvb_t v = { scratch, 0, (size_t)n, 1, NULL };
    int rc;

    *nvp = NULL;
    *np = 0;
    *dropped = 0;
    px_buf_reset(scratch);
    if (n <= 0)
        return 0;
    if (nvb_begin(&v) != 0)
        return PX_ENOMEM;
    for (int i = 0; i < n; i++) {
        if (!px_http1_trailer_ok(t[i].name, t[i].name_len, t[i].value, t[i].value_len, 1)) {
            ++*dropped;
            continue;
        }
        if ((rc = nvb_add(&v, t[i].name, t[i].name_len, t[i].value, t[i].value_len, NGHTTP2_NV_FLAG_NONE))) {
            px_buf_reset(scratch);
            return rc;
        }
    }
    nvb_done(&v);
    *nvp = v.n ? nvb_at(&v, 0) : NULL;
    *np = v.n;
    return 0;
}

/* Defence in depth: nghttp2 vets the model server's fields, but nothing
 * that could break an HTTP/1.1 head may pass even if it did not: a name
 * that is not a lowercase token (pseudo-fields too), CR, LF or NUL in a
 * value, a connection-specific field, a content-length that is not one
 * decimal number (or a second one). Such a field is dropped. */
static int field_ok(px_str_t n, px_str_t v, int *cls)
{
    for (size_t i = 0; i < n.n; i++) {
        unsigned char c = (unsigned char)n.p[i];
        if (!c || px_tchar[c] != c)       /* not a token, or upper case */
            return 0;
    }
    if (!n.n || px_has_line_break(v.p, v.n) || px_h2_connection_specific(n.p, n.n))
        return 0;
    if (n.n == 14 && !memcmp(n.p, "content-length", 14)) {
        if (!v.n || v.n > 18 || strspn(v.p, "0123456789") != v.n || (*cls)++)
            return 0;
    }
    return 1;
}

static void dropped(const char *where, px_str_t n)
{
    px_warn("h2c upstream: a response %s field dropped (%.*s): not a lowercase token, CR, LF or "
            "NUL in its value, connection-specific or a bad content-length",
            where, (int)(n.n > 64 ? 64 : n.n), n.p);
}

int px_h2cx_response(px_h2cx_t *h, const px_msg_t *m)
{
    int n = 0, cls = 0;
    px_str_t cl;

    px_msg_reset(&h->msg);
    for (int i = 0; i < px_msg_header_count(m); i++) {
        px_str_t a = px_msg_header_name(m, i), b = px_msg_header_value(m, i);
        if (!field_ok(a, b, &cls)) {
            dropped("header", a);
            continue;
        }
        if (px_msg_add(&h->msg, a.p, a.n, b.p, b.n) != 0)
            return PX_ENOMEM;
        n++;
    }
    cl = px_msg_find(&h->msg, "content-length");
    if ((size_t)n + 1 > h->fields_cap) {
        free(h->fields);
        h->fields_cap = 0;
        if (!(h->fields = malloc(((size_t)n + 1) * sizeof *h->fields)))
            return PX_ENOMEM;
        h->fields_cap = (size_t)n + 1;
    }
    h->fields[n] = (px_header_t){ NULL, 0, NULL, 0 };
    for (int i = 0; i < n; i++) {   /* the arena does not move any more: no adds follow */
        px_str_t a = px_msg_header_name(&h->msg, i), b = px_msg_header_value(&h->msg, i);
        h->fields[i] = (px_header_t){ a.p, a.n, b.p, b.n };
    }
    memset(&h->head, 0, sizeof h->head);
    h->head.status = m->status;
    h->head.http_minor = 1;
    /* HTTP/2 has no reason phrase: an HTTP/1.1 client reads the usual one */
    h->head.reason = px_http_status_phrase(m->status);
    h->head.reason_len = strlen(h->head.reason);
    h->head.headers = h->fields;
    h->head.header_count = n;
    h->head.keep_alive = 1;
    if (m->end_stream) {
        h->head.body = PX_BODY_NONE;
    } else if (cl.p) {
        h->head.body = PX_BODY_LENGTH;
        h->head.content_length = strtoull(cl.p, NULL, 10);
    } else {
        h->head.body = PX_BODY_CHUNKED;
    }
    return 0;
}

int px_h2cx_trailers(px_h2cx_t *h, const px_msg_t *m)
{
    int n = px_msg_trailer_count(m), k = 0, cls = 0;

    h->ntrailers = 0;
    if (!n)
        return 0;
    /* copied as plain strings: the head's arena must not move under h->fields */
    size_t bytes = (size_t)n * sizeof *h->trailers;
    for (int i = 0; i < n; i++)
        bytes += px_msg_trailer_name(m, i).n + px_msg_trailer_value(m, i).n + 2;
    if (bytes > h->trailers_cap) {
        free(h->trailers);
        h->trailers_cap = 0;
        if (!(h->trailers = malloc(bytes)))
            return PX_ENOMEM;
        h->trailers_cap = bytes;
    }
    char *mem = (char *)(h->trailers + n);
    for (int i = 0; i < n; i++) {
        px_str_t a = px_msg_trailer_name(m, i), b = px_msg_trailer_value(m, i);
        if (!field_ok(a, b, &cls)) {
            dropped("trailer", a);
            continue;
        }
        memcpy(mem, a.p, a.n + 1);
        memcpy(mem + a.n + 1, b.p, b.n + 1);
        h->trailers[k++] = (px_header_t){ mem, a.n, mem + a.n + 1, b.n };
        mem += a.n + b.n + 2;
    }
    h->ntrailers = k;
    return 0;
}
