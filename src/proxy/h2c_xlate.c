/* Heads to and from an h2c upstream (h2c_xlate.h). */
#include "proxy/h2c_xlate.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "http/h2_fields.h"

#define RESP_BYTES (64 * 1024)
#define RESP_FIELDS 256
#define PARSER_KEEP 4096              /* a kept request parser's buffers, at most */

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

int px_h2cx_request(px_buf_t *wire, const px_http_head_t *orig, px_http1_t **parser, nghttp2_nv **nvp,
                    size_t *np)
{
    static const px_http1_limits_t lim = { 1u << 20, 1024, 0 };
    px_http1_t *p = *parser;
    const px_http_head_t *h;
    const char *data;
    size_t used = 0, dlen = 0, bytes, k = 0;
    nghttp2_nv *nv;
    char *mem;
    int te = te_trailers(orig);

    if (p)
        px_http1_reuse(p, &lim, PARSER_KEEP);
    else if (!(p = *parser = px_http1_new(1, &lim)))
        return PX_ENOMEM;
    if (px_http1_parse(p, px_buf_ptr(wire), px_buf_size(wire), &used, &data, &dlen) != PX_H1_HEAD)
        return PX_EPARSE;
    h = px_http1_head(p);
    bytes = (size_t)(h->header_count + 5) * sizeof *nv + h->method_len + h->target_len + h->host_len +
            64;
    for (int i = 0; i < h->header_count; i++)
        bytes += h->headers[i].name_len + h->headers[i].value_len + 2;
    if (!(nv = malloc(bytes)))
        return PX_ENOMEM;
    mem = (char *)(nv + h->header_count + 5);
#define NV(n, nl, v, vl)                                                                     \
    do {                                                                                     \
        nv[k].name = (uint8_t *)mem;                                                         \
        for (size_t j_ = 0; j_ < (nl); j_++)                                                 \
            mem[j_] = (char)((n)[j_] >= 'A' && (n)[j_] <= 'Z' ? (n)[j_] + 32 : (n)[j_]);      \
        mem[nl] = '\0';                                                                      \
        mem += (nl) + 1;                                                                     \
        nv[k].value = (uint8_t *)mem;                                                        \
        memcpy(mem, (v), (vl));                                                              \
        mem[vl] = '\0';                                                                      \
        mem += (vl) + 1;                                                                     \
        nv[k].namelen = (nl);                                                                \
        nv[k].valuelen = (vl);                                                               \
        nv[k].flags = NGHTTP2_NV_FLAG_NONE;                                                  \
        k++;                                                                                 \
    } while (0)
    NV(":method", 7, h->method, h->method_len);
    NV(":scheme", 7, "http", 4);
    if (h->host_len)
        NV(":authority", 10, h->host, h->host_len);
    NV(":path", 5, h->target, h->target_len);
    for (int i = 0; i < h->header_count; i++) {
        const px_header_t *f = &h->headers[i];
        if ((f->name_len == 4 && !strncasecmp(f->name, "host", 4)) ||
            px_h2_connection_specific(f->name, f->name_len))
            continue;
        NV(f->name, f->name_len, f->value, f->value_len);
    }
    if (te)
        NV("te", 2, "trailers", 8);
#undef NV
    px_buf_consume(wire, used);
    *nvp = nv;
    *np = k;
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
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-.^_`|~", c))))
            return 0;
    }
    if (!n.n || memchr(v.p, '\r', v.n) || memchr(v.p, '\n', v.n) || memchr(v.p, '\0', v.n) ||
        px_h2_connection_specific(n.p, n.n))
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
    free(h->fields);
    h->fields = NULL;
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
    if (!(h->fields = calloc((size_t)n + 1, sizeof *h->fields)))
        return PX_ENOMEM;
    for (int i = 0; i < n; i++) {   /* the arena does not move any more: no adds follow */
        px_str_t a = px_msg_header_name(&h->msg, i), b = px_msg_header_value(&h->msg, i);
        h->fields[i] = (px_header_t){ a.p, a.n, b.p, b.n };
    }
    memset(&h->head, 0, sizeof h->head);
    h->head.status = m->status;
    h->head.http_minor = 1;
    h->head.reason = "";
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

    free(h->trailers);
    h->trailers = NULL;
    h->ntrailers = 0;
    if (!n)
        return 0;
    /* copied as plain strings: the head's arena must not move under h->fields */
    size_t bytes = (size_t)n * sizeof *h->trailers;
    for (int i = 0; i < n; i++)
        bytes += px_msg_trailer_name(m, i).n + px_msg_trailer_value(m, i).n + 2;
    if (!(h->trailers = malloc(bytes)))
        return PX_ENOMEM;
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
