/* The h2-to-h1 request translation (src/http/h2_translate.c) on any
 * message, not only what nghttp2 and h2_fields.c would let through:
 * whatever the fields, a translated request written for the upstream
 * (px_http1_write_request_head) must be exactly one request to the
 * project's own HTTP/1.1 parser, with the same method, path and Host and
 * no CR, LF or NUL smuggled into a field.
 *
 * Byte 0: flags: 0x01 END_STREAM on the head (no body), 0x02 content-length
 * as h2_fields.c sets it (from the first content-length field's digits),
 * 0x04 content-length from byte 1 instead, 0x08 http.max_body_bytes 100.
 * Byte 1: that content-length. The rest: records, each [name length]
 * name [value length] value (one byte lengths); ":method", ":scheme",
 * ":authority" and ":path" set the pseudo values, any other name (":x"
 * included) is a field. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/h2_translate.h"

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "h2_translate fuzz: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

static int has_bad(const char *p, size_t n)
{
    return memchr(p, '\r', n) || memchr(p, '\n', n) || memchr(p, '\0', n);
}

static void same(const char *a, size_t an, px_str_t b, const char *what)
{
    if (an != b.n || memcmp(a, b.p, an))
        die(what, NULL);
}

static void load(px_msg_t *m, const uint8_t *d, size_t n)
{
    static const char *const pseudo[] = { ":method", ":scheme", ":authority", ":path" };
    size_t i = 2;
    int cl_seen = 0;

    while (i < n) {
        size_t nl = d[i++], vl;
        const char *name = (const char *)d + i, *val;
        int done = 0;
        if (i + nl >= n)
            return;
        i += nl;
        vl = d[i++];
        if (i + vl > n)
            return;
        val = (const char *)d + i;
        i += vl;
        for (int k = 0; k < 4; k++)
            if (nl == strlen(pseudo[k]) && !memcmp(name, pseudo[k], nl)) {
                if (px_msg_set(m, (px_msg_pseudo_t)k, val, vl))
                    return;
                done = 1;
            }
        if (done)
            continue;
        if (px_msg_add(m, name, nl, val, vl))
            return;
        if ((d[0] & 0x02) && !cl_seen && nl == 14 && !memcmp(name, "content-length", 14)) {
            int64_t v = 0;
            cl_seen = 1;
            for (size_t k = 0; k < vl && k < 18 && val[k] >= '0' && val[k] <= '9'; k++)
                v = v * 10 + (val[k] - '0');
            m->content_length = v;
        }
    }
}

static void check(const px_msg_t *m, const px_h2_req_t *r)
{
    static const px_fwd_opts_t fo = { "192.0.2.1", "https", 0, "rid-1", NULL, 0, NULL, 0 };
    const px_http_head_t *t = &r->head, *h;
    px_http1_limits_t lim = { 1u << 20, 100000, 0 };
    px_http1_t *p;
    px_buf_t out;
    size_t off = 0, used, dlen;
    const char *data, *detail = NULL;
    int heads = 0, ends = 0;

    if (has_bad(t->method, t->method_len) || has_bad(t->target, t->target_len) ||
        has_bad(t->host, t->host_len))
        die("CR, LF or NUL in the request line or Host", NULL);
    for (int i = 0; i < t->header_count; i++)
        if (!t->headers[i].name_len || has_bad(t->headers[i].name, t->headers[i].name_len) ||
            has_bad(t->headers[i].value, t->headers[i].value_len))
            die("CR, LF or NUL in a translated field", NULL);
    same(t->method, t->method_len, px_msg_get(m, PX_MSG_METHOD), "method changed");
    same(t->target, t->target_len, px_msg_get(m, PX_MSG_PATH), "path changed");

    px_buf_init(&out, 0);
    if (px_http1_write_request_head(&out, t, &fo))
        die("a translated head cannot be written", NULL);
    if (!(p = px_http1_new(1, &lim)))
        abort();
    for (int guard = 0; guard < 8; guard++) {
        px_h1_event_t ev = px_http1_parse(p, px_buf_ptr(&out) + off, px_buf_size(&out) - off, &used,
                                          &data, &dlen);
        off += used;
        if (ev == PX_H1_NEED_MORE)
            break;
        if (ev == PX_H1_ERROR) {
            px_http1_error(p, &detail);
            fwrite(px_buf_ptr(&out), 1, px_buf_size(&out), stderr);
            die("the written head does not parse", detail);
        }
        if (ev == PX_H1_BODY)
            die("body bytes after the head", NULL);
        if (ev == PX_H1_END) {
            ends++;
            continue;
        }
        heads++;
        h = px_http1_head(p);
        if (h->method_len != t->method_len || memcmp(h->method, t->method, h->method_len) ||
            h->target_len != t->target_len || memcmp(h->target, t->target, h->target_len) ||
            h->host_len != t->host_len || memcmp(h->host, t->host, h->host_len))
            die("the upstream reads another method, path or Host", NULL);
        if (h->body != t->body || (h->body == PX_BODY_LENGTH && h->content_length != t->content_length))
            die("the upstream reads other framing", NULL);
    }
    if (heads != 1 || off != px_buf_size(&out))
        die("not exactly one request", NULL);
    if (ends != (t->body == PX_BODY_NONE || (t->body == PX_BODY_LENGTH && !t->content_length)))
        die("the request's end is not where the head says", NULL);
    px_http1_free(p);
    px_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    px_msg_t m;
    px_h2_req_t r = { 0 };
    const char *detail = NULL;
    int rc;

    if (n < 2)
        return 0;
    px_msg_init(&m, 1u << 16, 1024);
    load(&m, d, n);
    m.end_stream = d[0] & 0x01;
    if (d[0] & 0x04)
        m.content_length = d[1];
    rc = px_h2_translate(&m, (d[0] & 0x08) ? 100 : 0, &r, &detail);
    if (rc > 0 && (rc > PX_HERR__COUNT || !detail))
        die("an HTTP error without a detail or out of range", NULL);
    if (rc < 0 && rc != PX_ENOMEM)
        die("an unexpected error code", NULL);
    if (rc == 0)
        check(&m, &r);
    px_h2_req_free(&r);
    px_msg_free(&m);
    return 0;
}
