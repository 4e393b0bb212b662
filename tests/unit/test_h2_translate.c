/* The h2-to-h1 request translation (src/http/h2_translate.c): what it
 * makes of a good request (read back by the project's own HTTP/1.1
 * parser) and each request it must refuse before anything reaches an
 * HTTP/1.1 upstream. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "http/h2_translate.h"

/* A request: pseudo values, then "name", "value" pairs up to NULL. */
static void make(px_msg_t *m, const char *method, const char *path, const char *auth, int end,
                 ...)
{
    va_list ap;
    const char *n;

    px_msg_init(m, 65536, 256);
    if (method)
        assert_int_equal(px_msg_set(m, PX_MSG_METHOD, method, strlen(method)), 0);
    if (path)
        assert_int_equal(px_msg_set(m, PX_MSG_PATH, path, strlen(path)), 0);
    if (auth)
        assert_int_equal(px_msg_set(m, PX_MSG_AUTHORITY, auth, strlen(auth)), 0);
    assert_int_equal(px_msg_set(m, PX_MSG_SCHEME, "https", 5), 0);
    m->end_stream = end;
    va_start(ap, end);
    while ((n = va_arg(ap, const char *))) {
        const char *v = va_arg(ap, const char *);
        assert_int_equal(px_msg_add(m, n, strlen(n), v, strlen(v)), 0);
        if (!strcmp(n, "content-length"))
            m->content_length = atoll(v);
    }
    va_end(ap);
}

/* The head as written for the upstream, parsed back: one request. */
static void roundtrip(const px_h2_req_t *r, const char *want_cookie)
{
    px_http1_limits_t lim = { 65536, 256, 0 };
    px_http1_t *p = px_http1_new(1, &lim);
    px_buf_t out;
    size_t used;
    const char *data;
    size_t dlen;
    const px_http_head_t *h;
    const px_header_t *c;

    px_buf_init(&out, 0);
    assert_int_equal(px_http1_write_request_head(&out, &r->head, NULL), 0);
    assert_int_equal(px_http1_parse(p, px_buf_ptr(&out), px_buf_size(&out), &used, &data, &dlen), PX_H1_HEAD);
    h = px_http1_head(p);
    assert_int_equal(h->method_len, r->head.method_len);
    assert_memory_equal(h->method, r->head.method, h->method_len);
    assert_int_equal(h->target_len, r->head.target_len);
    assert_memory_equal(h->target, r->head.target, h->target_len);
    assert_int_equal(h->host_len, r->head.host_len);
    assert_int_equal(h->body, r->head.body);
    c = px_http_head_get(h, "cookie");
    if (want_cookie) {
        assert_non_null(c);
        assert_int_equal(c->value_len, strlen(want_cookie));
        assert_memory_equal(c->value, want_cookie, c->value_len);
    }
    px_http1_free(p);
    px_buf_free(&out);
}

static void test_get(void **state)
{
    px_msg_t m;
    px_h2_req_t r = { 0 };
    const char *detail = NULL;
    (void)state;
    make(&m, "GET", "/v1/models/x?a=b", "api.example:8443", 1, "accept", "*/*", "cookie", "a=1",
         "cookie", "b=2", "te", "trailers", NULL);
    assert_int_equal(px_h2_translate(&m, 0, &r, &detail), 0);
    assert_string_equal(r.head.method, "GET");
    assert_string_equal(r.head.target, "/v1/models/x?a=b");
    assert_string_equal(r.head.host, "api.example:8443");
    assert_int_equal(r.head.body, PX_BODY_NONE);
    roundtrip(&r, "a=1; b=2");
    px_h2_req_free(&r);
    px_msg_free(&m);
}

static void test_bodies(void **state)
{
    px_msg_t m;
    px_h2_req_t r = { 0 };
    const char *detail = NULL;
    (void)state;
    make(&m, "POST", "/p", "h", 0, "content-length", "42", NULL);
    assert_int_equal(px_h2_translate(&m, 42, &r, &detail), 0);
    assert_int_equal(r.head.body, PX_BODY_LENGTH);
    assert_int_equal(r.head.content_length, 42);
    roundtrip(&r, NULL);
    px_h2_req_free(&r);
    px_msg_free(&m);

    make(&m, "PUT", "/p", NULL, 0, "host", "h.example", NULL);   /* length unknown, Host alone */
    assert_int_equal(px_h2_translate(&m, 0, &r, &detail), 0);
    assert_int_equal(r.head.body, PX_BODY_CHUNKED);
    assert_string_equal(r.head.host, "h.example");
    roundtrip(&r, NULL);
    px_h2_req_free(&r);
    px_msg_free(&m);
}

typedef struct {
    const char *method, *path, *auth;
    int end;
    const char *name, *value;         /* one field (NULL: none) */
    int64_t content_length;           /* m->content_length to set (as h2_fields.c would) */
    px_http_error_t want;
} bad_t;

static void test_refused(void **state)
{
    static const bad_t cases[] = {
        { "GET", "/", "h", 1, "connection", "close", -1, PX_HERR_BAD_REQUEST },
        { "GET", "/", "h", 1, "keep-alive", "5", -1, PX_HERR_BAD_REQUEST },
        { "GET", "/", "h", 1, "proxy-connection", "x", -1, PX_HERR_BAD_REQUEST },
        { "POST", "/", "h", 0, "transfer-encoding", "chunked", -1, PX_HERR_BAD_REQUEST },
        { "GET", "/", "h", 1, "upgrade", "websocket", -1, PX_HERR_BAD_REQUEST },
        { "GET", "/", "h", 1, "te", "gzip", -1, PX_HERR_BAD_REQUEST },
        { "GET", "/", "h", 1, "x-a", "1\r\nx-b: 2", -1, PX_HERR_BAD_REQUEST },
        { "GET", "/", "h", 1, "x-a", "1\nx", -1, PX_HERR_BAD_REQUEST },
        { "GET", "/", "h", 1, "x-a", "a\x01", -1, PX_HERR_BAD_REQUEST },
        { "GET", "/", "h", 1, "x-a", " lead", -1, PX_HERR_BAD_REQUEST },
        { "GET", "/", "h", 1, "x-a\r\nx-b", "1", -1, PX_HERR_BAD_REQUEST },
        { "GET", "/", "h", 1, "X-Upper", "1", -1, PX_HERR_BAD_REQUEST },
        { "GET", "/", "h", 1, "x a", "1", -1, PX_HERR_BAD_REQUEST },
        { "GET", "/", "h", 1, "host", "other", -1, PX_HERR_BAD_REQUEST },
        { "GET", "/", NULL, 1, NULL, NULL, -1, PX_HERR_BAD_REQUEST },
        { "GET", "/", "us@h", 1, NULL, NULL, -1, PX_HERR_BAD_REQUEST },
        { "GET", "*", "h", 1, NULL, NULL, -1, PX_HERR_BAD_REQUEST },
        { "OPTIONS", "*", "h", 1, NULL, NULL, -1, PX_HERR_BAD_REQUEST },
        { "GET", "http://h/", "h", 1, NULL, NULL, -1, PX_HERR_BAD_REQUEST },
        { "GET", "a/b", "h", 1, NULL, NULL, -1, PX_HERR_BAD_REQUEST },
        { "GET", "/a b", "h", 1, NULL, NULL, -1, PX_HERR_BAD_REQUEST },
        { "GET", "/a#f", "h", 1, NULL, NULL, -1, PX_HERR_BAD_REQUEST },
        { "GET", NULL, "h", 1, NULL, NULL, -1, PX_HERR_BAD_REQUEST },
        { NULL, "/", "h", 1, NULL, NULL, -1, PX_HERR_BAD_REQUEST },
        { "get", "/", "h", 1, NULL, NULL, -1, PX_HERR_BAD_REQUEST },
        { "BREW", "/", "h", 1, NULL, NULL, -1, PX_HERR_NOT_IMPLEMENTED },
        { "CONNECT", NULL, "h", 1, NULL, NULL, -1, PX_HERR_METHOD_NOT_ALLOWED },
        { "POST", "/", "h", 0, "content-length", "1x", -1, PX_HERR_BAD_REQUEST },
        { "POST", "/", "h", 0, "content-length", "5", 6, PX_HERR_BAD_REQUEST },
        { "POST", "/", "h", 0, NULL, NULL, 5, PX_HERR_BAD_REQUEST },
        { "POST", "/", "h", 1, "content-length", "5", 5, PX_HERR_BAD_REQUEST },
        { "POST", "/", "h", 0, "content-length", "43", 43, PX_HERR_BODY_TOO_LARGE },
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const bad_t *b = &cases[i];
        px_msg_t m;
        px_h2_req_t r = { 0 };
        const char *detail = NULL;
        make(&m, b->method, b->path, b->auth, b->end, NULL);
        if (b->name)
            assert_int_equal(px_msg_add(&m, b->name, strlen(b->name), b->value, strlen(b->value)), 0);
        m.content_length = b->content_length;
        print_message("case %zu\n", i);
        assert_int_equal(px_h2_translate(&m, 42, &r, &detail), 1 + (int)b->want);
        assert_non_null(detail);
        px_h2_req_free(&r);
        px_msg_free(&m);
    }
}

/* NUL cannot go through strlen: a value and a name holding one. */
static void test_nul(void **state)
{
    px_msg_t m;
    px_h2_req_t r = { 0 };
    const char *detail = NULL;
    (void)state;
    make(&m, "GET", "/", "h", 1, NULL);
    assert_int_equal(px_msg_add(&m, "x-a", 3, "a\0b", 3), 0);
    assert_int_equal(px_h2_translate(&m, 0, &r, &detail), 1 + PX_HERR_BAD_REQUEST);
    px_h2_req_free(&r);
    px_msg_free(&m);
    make(&m, "GET", "/", "h", 1, NULL);
    assert_int_equal(px_msg_add(&m, "x\0a", 3, "b", 1), 0);
    assert_int_equal(px_h2_translate(&m, 0, &r, &detail), 1 + PX_HERR_BAD_REQUEST);
    px_h2_req_free(&r);
    px_msg_free(&m);
}

/* Every control byte but HTAB, and DEL, at every position of values up to
 * 40 bytes (the check reads eight bytes at once) is refused, CR, LF and
 * NUL saying so; HTAB inside and bytes from 0x80 pass. */
static void test_value_bytes(void **state)
{
    char v[41];
    (void)state;
    for (int len = 1; len <= 40; len++) {
        for (int at = 0; at < len; at++) {
            for (int c = 0; c <= 0x80; c++) {
                px_msg_t m;
                px_h2_req_t r = { 0 };
                const char *detail = NULL;
                int bad = c < 0x20 || c == 0x7f, rc;
                if (c == 0x80)
                    c = 0xff;
                memset(v, c == '\t' || c >= 0x7f ? 'a' : 'b', (size_t)len);
                v[at] = (char)c;
                if ((c == '\t' || c == ' ') && (at == 0 || at == len - 1))
                    continue;               /* surrounding whitespace: refused elsewhere */
                make(&m, "GET", "/", "h", 1, NULL);
                assert_int_equal(px_msg_add(&m, "x-a", 3, v, (size_t)len), 0);
                rc = px_h2_translate(&m, 0, &r, &detail);
                if (c == '\t' || !bad) {
                    assert_int_equal(rc, 0);
                } else {
                    assert_int_equal(rc, 1 + PX_HERR_BAD_REQUEST);
                    assert_string_equal(detail, c == '\r' || c == '\n' || c == 0
                                                    ? "a field carries CR, LF or NUL"
                                                    : "invalid field value");
                }
                px_h2_req_free(&r);
                px_msg_free(&m);
                if (c == 0xff)
                    break;
            }
        }
    }
}

/* One px_h2_req_t for request after request (a kept HTTP/2 stream): a
 * long head, then a short one, then one refused: each translation is its
 * own, nothing of the one before shows through. */
static void test_reuse(void **state)
{
    px_msg_t m;
    px_h2_req_t r = { 0 };
    const char *detail = NULL;
    (void)state;

    make(&m, "POST", "/a/long/path?with=query", "first.example", 0, "cookie", "a=1", "x-first", "1",
         "cookie", "b=2", "content-length", "3", NULL);
    assert_int_equal(px_h2_translate(&m, 0, &r, &detail), 0);
    assert_int_equal(r.head.header_count, 3);
    roundtrip(&r, "a=1; b=2");
    px_msg_free(&m);
    make(&m, "GET", "/b", "b.example", 1, NULL);
    assert_int_equal(px_h2_translate(&m, 0, &r, &detail), 0);
    assert_int_equal(r.head.header_count, 0);
    assert_int_equal(r.head.body, PX_BODY_NONE);
    assert_string_equal(r.head.target, "/b");
    assert_null(px_http_head_get(&r.head, "x-first"));
    roundtrip(&r, NULL);
    px_msg_free(&m);
    make(&m, "GET", "/c", NULL, 1, NULL);                       /* no authority: refused */
    assert_int_equal(px_h2_translate(&m, 0, &r, &detail), 1 + PX_HERR_BAD_REQUEST);
    assert_string_equal(r.head.target, "/c");                   /* built all the same, for the log */
    px_h2_req_recycle(&r, 4096);
    assert_non_null(r.mem);                                     /* small: kept */
    px_h2_req_recycle(&r, 8);
    assert_null(r.mem);                                         /* over keep: freed */
    px_msg_free(&m);
    px_h2_req_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get),
        cmocka_unit_test(test_bodies),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_nul),
        cmocka_unit_test(test_value_bytes),
        cmocka_unit_test(test_reuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
