/* Heads to and from an h2c upstream (h2c_xlate.h). */
#include "proxy/h2c_xlate.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/h2_fields.h"

#define RESP_BYTES (64 * 1024)
#define RESP_FIELDS 256

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

int px_h2cx_request(px_buf_t *wire, const px_http_head_t *orig, nghttp2_nv **nvp, size_t *np)
{
    static const px_http1_limits_t lim = { 1u << 20, 1024, 0 };
    px_http1_t *p = px_http1_new(1, &lim);
    const px_http_head_t *h;
    const char *data;
    size_t used = 0, dlen = 0, bytes, k = 0;
    nghttp2_nv *nv;
    char *mem;
    int te = te_trailers(orig);

    if (!p)
        return PX_ENOMEM;
    if (px_http1_parse(p, px_buf_ptr(wire), px_buf_size(wire), &used, &data, &dlen) != PX_H1_HEAD) {
        px_http1_free(p);
        return PX_EPARSE;
    }
    h = px_http1_head(p);
    bytes = (size_t)(h->header_count + 5) * sizeof *nv + h->method_len + h->target_len + h->host_len +
            64;
    for (int i = 0; i < h->header_count; i++)
        bytes += h->headers[i].name_len + h->headers[i].value_len + 2;
    if (!(nv = malloc(bytes))) {
        px_http1_free(p);
        return PX_ENOMEM;
    }
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
    px_http1_free(p);
    *nvp = nv;
    *np = k;
    return 0;
}

int px_h2cx_response(px_h2cx_t *h, const px_msg_t *m)
{
    int n = px_msg_header_count(m);
    px_str_t cl = px_msg_find(m, "content-length");

    px_msg_reset(&h->msg);
    free(h->fields);
    h->fields = NULL;
    for (int i = 0; i < n; i++) {
        px_str_t a = px_msg_header_name(m, i), b = px_msg_header_value(m, i);
        if (px_msg_add(&h->msg, a.p, a.n, b.p, b.n) != 0)
            return PX_ENOMEM;
    }
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
    int n = px_msg_trailer_count(m);

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
        memcpy(mem, a.p, a.n + 1);
        memcpy(mem + a.n + 1, b.p, b.n + 1);
        h->trailers[i] = (px_header_t){ mem, a.n, mem + a.n + 1, b.n };
        mem += a.n + b.n + 2;
    }
    h->ntrailers = n;
    return 0;
}
