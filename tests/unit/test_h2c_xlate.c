/* Heads to and from an h2c upstream (proxy/h2c_xlate.h).
 * px_h2cx_request: the client's head with the forwarding rules of the
 * HTTP/1.1 rendering (the same fields, in the same order, lowercased), the
 * pseudo-headers first, Transfer-Encoding gone, te: trailers kept when
 * asked, X-Request-Id never indexed, a head without Host refused.
 * The model server's response head and trailers as the exchange takes them:
 * px_h2cx_response / px_h2cx_trailers keep what
 * nghttp2 passed and drop what could break an HTTP/1.1 head even if
 * nghttp2 had let it through (upper case or non-token names, pseudo
 * fields, CR, LF or NUL in a value, connection-specific fields, a
 * content-length that is not one decimal number). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "proxy/h2c_xlate.h"

static px_h2cx_t *h;
static px_msg_t m;
static char got[512];

static int setup(void **state)
{
    (void)state;
    h = px_h2cx_new();
    px_msg_init(&m, 4096, 32);
    m.status = 200;
    return h ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    px_msg_free(&m);
    px_h2cx_free(h);
    return 0;
}

static void add(const char *n, const char *v, size_t vlen)
{
    assert_int_equal(px_msg_add(&m, n, strlen(n), v, vlen), 0);
}

/* name=value of each field, joined by ";", in got */
static const char *joined(const px_header_t *f, int n)
{
    size_t k = 0;
    got[0] = '\0';
    for (int i = 0; i < n; i++)
        k += (size_t)snprintf(got + k, sizeof got - k, "%.*s=%.*s;", (int)f[i].name_len, f[i].name,
                              (int)f[i].value_len, f[i].value);
    return got;
}

static void test_good_fields_kept(void **state)
{
    (void)state;
    add("content-type", "application/grpc", 16);
    add("content-length", "12", 2);
    add("x-a!#$%&'*+-.^_`|~9", "tab\tok", 6);
    assert_int_equal(px_h2cx_response(h, &m), 0);
    assert_string_equal(joined(h->head.headers, h->head.header_count),
                        "content-type=application/grpc;content-length=12;x-a!#$%&'*+-.^_`|~9=tab\tok;");
    assert_int_equal(h->head.status, 200);
    assert_int_equal(h->head.body, PX_BODY_LENGTH);
    assert_int_equal(h->head.content_length, 12);
}

/* HTTP/2 has no reason phrase: the usual one for a status it names, none
 * for another (the HTTP/1.1 status line ends "299 "). */
static void test_reason_phrase(void **state)
{
    static const struct { int status; const char *reason; } cases[] = {
        { 200, "OK" }, { 404, "Not Found" }, { 429, "Too Many Requests" }, { 503, "Service Unavailable" },
        { 299, "" }, { 599, "" },
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        m.status = cases[i].status;
        assert_int_equal(px_h2cx_response(h, &m), 0);
        assert_int_equal(h->head.reason_len, strlen(cases[i].reason));
        assert_memory_equal(h->head.reason, cases[i].reason, h->head.reason_len);
    }
}

static void test_bad_fields_dropped(void **state)
{
    static const struct { const char *n, *v; size_t vlen; } f[] = {
        { "ok", "1", 1 }, { "X-Upper", "v", 1 }, { ":status", "200", 3 }, { "sp ace", "v", 1 },
        { "", "v", 1 }, { "cr", "a\rb", 3 }, { "lf", "a\nInjected: 1", 13 }, { "nul", "a\0b", 3 },
        { "transfer-encoding", "chunked", 7 }, { "connection", "close", 5 },
        { "content-length", "1x", 2 }, { "ok2", "2", 1 },
    };

    (void)state;
    for (size_t i = 0; i < sizeof f / sizeof *f; i++)
        add(f[i].n, f[i].v, f[i].vlen);
    assert_int_equal(px_h2cx_response(h, &m), 0);
    assert_string_equal(joined(h->head.headers, h->head.header_count), "ok=1;ok2=2;");
    /* the bad content-length is gone: chunked to an HTTP/1.1 client */
    assert_int_equal(h->head.body, PX_BODY_CHUNKED);

    /* a second content-length goes, the first stays */
    px_msg_reset(&m);
    m.status = 200;
    add("content-length", "5", 1);
    add("content-length", "7", 1);
    assert_int_equal(px_h2cx_response(h, &m), 0);
    assert_string_equal(joined(h->head.headers, h->head.header_count), "content-length=5;");
    assert_int_equal(h->head.body, PX_BODY_LENGTH);
    assert_int_equal(h->head.content_length, 5);
}

static void test_trailers(void **state)
{
    (void)state;
    add("content-type", "application/grpc", 16);
    px_msg_begin_trailers(&m);
    add("grpc-status", "0", 1);
    add("Grpc-Message", "x", 1);
    add("grpc-message", "a\r\nb", 4);
    add("x-model-version", "1", 1);
    add("upgrade", "h2c", 3);
    assert_int_equal(px_h2cx_trailers(h, &m), 0);
    assert_string_equal(joined(h->trailers, h->ntrailers), "grpc-status=0;x-model-version=1;");
}

/* ---- the request --------------------------------------------------------------- */

static px_http_head_t req(px_header_t *f, int n, const char *host)
{
    px_http_head_t r;
    memset(&r, 0, sizeof r);
    r.is_request = 1;
    r.method = "POST", r.method_len = 4;
    r.target = "/inference.GRPCInferenceService/ModelInfer", r.target_len = 42;
    r.host = host, r.host_len = host ? strlen(host) : 0;
    r.headers = f, r.header_count = n;
    r.body = PX_BODY_CHUNKED;
    return r;
}

#define F(n, v) { n, sizeof n - 1, v, sizeof v - 1 }

static const char *joined_nv(const nghttp2_nv *nv, size_t n)
{
    size_t k = 0;
    got[0] = '\0';
    for (size_t i = 0; i < n; i++)
        k += (size_t)snprintf(got + k, sizeof got - k, "%.*s=%.*s;", (int)nv[i].namelen,
                              (const char *)nv[i].name, (int)nv[i].valuelen, (const char *)nv[i].value);
    return got;
}

static void test_request_fields(void **state)
{
    px_header_t f[] = { F("Content-Type", "application/grpc"), F("TE", "gzip, trailers"),
                        F("Connection", "x-hop"), F("X-Hop", "1"), F("Host", "other"),
                        F("X-Forwarded-For", "203.0.113.9"), F("grpc-timeout", "5S"),
                        F("Transfer-Encoding", "chunked") };
    px_http_head_t r = req(f, 8, "model:8500");
    px_fwd_opts_t o = { .client_ip = "192.0.2.7", .proto = "https", .request_id = "abc123" };
    px_buf_t scratch, wire;
    nghttp2_nv *nv;
    size_t n;
    (void)state;

    px_buf_init(&scratch, 0);
    px_buf_init(&wire, 0);
    assert_int_equal(px_h2cx_request(&scratch, &r, &o, &nv, &n), 0);
    assert_string_equal(joined_nv(nv, n),
                        ":method=POST;:scheme=http;:authority=model:8500;"
                        ":path=/inference.GRPCInferenceService/ModelInfer;"
                        "content-type=application/grpc;grpc-timeout=5S;x-forwarded-for=192.0.2.7;"
                        "x-forwarded-proto=https;x-forwarded-host=model:8500;x-request-id=abc123;"
                        "te=trailers;");
    for (size_t i = 0; i < n; i++) {
        /* NUL-terminated (px_h2c_open copies them as strings) */
        assert_int_equal(nv[i].name[nv[i].namelen], 0);
        assert_int_equal(nv[i].value[nv[i].valuelen], 0);
        assert_int_equal(nv[i].flags, i == n - 2 ? NGHTTP2_NV_FLAG_NO_INDEX : NGHTTP2_NV_FLAG_NONE);
    }
    /* the HTTP/1.1 rendering of the same head carries the same fields */
    assert_int_equal(px_http1_write_request_head(&wire, &r, &o), 0);
    assert_non_null(strstr(px_buf_ptr(&wire), "\r\nContent-Type: application/grpc\r\n"
                                              "grpc-timeout: 5S\r\nX-Forwarded-For: 192.0.2.7\r\n"));

    /* a field the rules refuse fails the whole head, and the scratch is empty */
    f[6] = (px_header_t)F("grpc-timeout", "5S\r\nx: y");
    assert_int_equal(px_h2cx_request(&scratch, &r, &o, &nv, &n), PX_EINVAL);
    assert_int_equal(px_buf_size(&scratch), 0);
    /* no Host: HTTP/2 has no :authority to send */
    f[6] = (px_header_t)F("grpc-timeout", "5S");
    r = req(f, 8, NULL);
    assert_int_equal(px_h2cx_request(&scratch, &r, &o, &nv, &n), PX_EINVAL);
    px_buf_free(&scratch);
    px_buf_free(&wire);
}

/* Many fields: the scratch buffer moves as it grows, the fields stay right. */
static void test_request_many_fields(void **state)
{
    static char names[200][16], values[200][600];
    px_header_t f[200];
    px_http_head_t r;
    px_buf_t scratch;
    nghttp2_nv *nv;
    size_t n;
    (void)state;

    for (int i = 0; i < 200; i++) {
        int nl = snprintf(names[i], sizeof names[i], "X-F%d", i);
        memset(values[i], 'a' + i % 26, sizeof values[i] - 1);
        f[i] = (px_header_t){ names[i], (size_t)nl, values[i], sizeof values[i] - 1 };
    }
    r = req(f, 200, "m");
    px_buf_init(&scratch, 0);
    assert_int_equal(px_h2cx_request(&scratch, &r, NULL, &nv, &n), 0);
    assert_int_equal(n, 4 + 200 + 1);        /* pseudo-headers, the fields, x-forwarded-host */
    for (int i = 0; i < 200; i++) {
        char want[16];
        snprintf(want, sizeof want, "x-f%d", i);
        assert_int_equal(nv[4 + i].namelen, strlen(want));
        assert_memory_equal(nv[4 + i].name, want, strlen(want));
        assert_int_equal(nv[4 + i].valuelen, sizeof values[i] - 1);
        assert_memory_equal(nv[4 + i].value, values[i], sizeof values[i] - 1);
    }
    px_buf_free(&scratch);
}

/* Names of every length up to 24 with every token byte at every position:
 * lowercased exactly as tolower does (the copy works eight bytes at once). */
static void test_request_names_lowercased(void **state)
{
    static const char tchars[] = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                 "abcdefghijklmnopqrstuvwxyz";
    enum { NT = sizeof tchars - 1 };
    static char names[NT][25];
    px_header_t f[NT];
    px_buf_t scratch;
    nghttp2_nv *nv;
    size_t n;
    (void)state;

    px_buf_init(&scratch, 0);
    for (size_t len = 1; len <= 24; len++) {
        for (size_t k = 0; k < NT; k++) {
            for (size_t j = 0; j < len; j++)
                names[k][j] = tchars[(k + j * 7) % NT];
            f[k] = (px_header_t){ names[k], len, "v", 1 };
        }
        px_http_head_t r = req(f, NT, "m");
        assert_int_equal(px_h2cx_request(&scratch, &r, NULL, &nv, &n), 0);
        assert_int_equal(n, 4 + NT + 1);
        for (size_t k = 0; k < NT; k++) {
            char want[25];
            for (size_t j = 0; j < len; j++)
                want[j] = (char)tolower((unsigned char)names[k][j]);
            assert_int_equal(nv[4 + k].namelen, len);
            assert_memory_equal(nv[4 + k].name, want, len);
        }
    }
    px_buf_free(&scratch);
}

/* A request's trailers for the h2c upstream: the policy of
 * px_http1_trailer_ok, names lowercased, the others counted. */
static void test_request_trailers(void **state)
{
    px_header_t t[] = { F("X-Checksum", "abc"), F("Authorization", "late"), F("Signature", "s"),
                        F("x-b", ""), F("Grpc-Trace-Bin", "AAAA"), F("X-Forwarded-For", "1.2.3.4") };
    px_buf_t scratch;
    nghttp2_nv *nv = NULL;
    size_t n = 9;
    int dropped = -1;

    (void)state;
    px_buf_init(&scratch, 0);
    assert_int_equal(px_h2cx_request_trailers(&scratch, t, 6, &nv, &n, &dropped), 0);
    assert_int_equal(dropped, 3);
    assert_string_equal(joined_nv(nv, n), "x-checksum=abc;x-b=;grpc-trace-bin=AAAA;");
    for (size_t i = 0; i < n; i++)      /* NUL-terminated, as nghttp2's NO_COPY flags want */
        assert_int_equal(nv[i].name[nv[i].namelen] | nv[i].value[nv[i].valuelen], 0);
    assert_int_equal(px_h2cx_request_trailers(&scratch, t + 1, 2, &nv, &n, &dropped), 0);
    assert_int_equal(n, 0);
    assert_int_equal(dropped, 2);
    assert_int_equal(px_h2cx_request_trailers(&scratch, t, 0, &nv, &n, &dropped), 0);
    assert_int_equal(n, 0);
    assert_null(nv);
    px_buf_free(&scratch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_fields),
        cmocka_unit_test(test_request_many_fields),
        cmocka_unit_test(test_request_names_lowercased),
        cmocka_unit_test(test_request_trailers),
        cmocka_unit_test_setup_teardown(test_good_fields_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reason_phrase, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_fields_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trailers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
