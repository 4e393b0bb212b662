/* The model server's response head and trailers as the exchange takes them
 * (proxy/h2c_xlate.h): px_h2cx_response / px_h2cx_trailers keep what
 * nghttp2 passed and drop what could break an HTTP/1.1 head even if
 * nghttp2 had let it through (upper case or non-token names, pseudo
 * fields, CR, LF or NUL in a value, connection-specific fields, a
 * content-length that is not one decimal number). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_good_fields_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_fields_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trailers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
