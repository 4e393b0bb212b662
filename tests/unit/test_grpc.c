/* gRPC errors and deadlines (proxy/grpc.h): the grpc-timeout grammar
 * (PROTOCOL-HTTP2.md: 1..8 digits and one unit), the content-type test,
 * the status for each proxy error, grpc-message's percent-encoding. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "proxy/grpc.h"
#include "proxy/grpc_health.h"

static int parse(const char *s, uint64_t *ms)
{
    return px_grpc_timeout_parse(s, strlen(s), ms);
}

static void test_timeout_units(void **state)
{
    static const struct { const char *in; uint64_t ms; } ok[] = {
        { "1H", 3600000 }, { "2M", 120000 }, { "3S", 3000 }, { "200m", 200 }, { "0m", 0 },
        { "1500u", 2 }, { "1000u", 1 }, { "1n", 1 }, { "2000000n", 2 }, { "2000001n", 3 },
        { "99999999H", 99999999ULL * 3600000 }, { "00000007S", 7000 },
    };
    uint64_t ms;
    (void)state;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        ms = 12345;
        assert_int_equal(parse(ok[i].in, &ms), 0);
        assert_true(ms == ok[i].ms);
    }
}

static void test_timeout_refused(void **state)
{
    const char *bad[] = { "", "S", "5", "123456789S", "1s", "1h", "1x", "-1S", "+1S", " 1S", "1S ",
                          "1.5S", "1SS", "0x1S", "1 S" };
    uint64_t ms;
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(parse(bad[i], &ms), PX_EPARSE);
    assert_int_equal(px_grpc_timeout_parse("1S\0", 3, &ms), PX_EPARSE);   /* a NUL inside */
}

static int is_grpc(const char *ct)
{
    px_header_t f = { "Content-Type", 12, ct, strlen(ct) };
    px_http_head_t h;
    memset(&h, 0, sizeof h);
    h.headers = &f;
    h.header_count = ct[0] ? 1 : 0;
    return px_grpc_request(&h);
}

static void test_content_type(void **state)
{
    (void)state;
    assert_true(is_grpc("application/grpc"));
    assert_true(is_grpc("application/grpc+proto"));
    assert_true(is_grpc("Application/GRPC;charset=utf-8"));
    assert_false(is_grpc("application/grpc-web"));
    assert_false(is_grpc("application/grpc-web+proto"));
    assert_false(is_grpc("application/grpcx"));
    assert_false(is_grpc("application/json"));
    assert_false(is_grpc("application/grp"));
    assert_false(is_grpc(""));
}

static void test_status_mapping(void **state)
{
    (void)state;
    assert_int_equal(px_grpc_status(PX_HERR_SIG_MISSING), 16);
    assert_int_equal(px_grpc_status(PX_HERR_SIG_REPLAYED), 16);
    assert_int_equal(px_grpc_status(PX_HERR_UPSTREAM_ERROR), 14);
    assert_int_equal(px_grpc_status(PX_HERR_UPSTREAM_BAD), 14);
    assert_int_equal(px_grpc_status(PX_HERR_OVERLOADED), 14);
    assert_int_equal(px_grpc_status(PX_HERR_DRAINING), 14);
    assert_int_equal(px_grpc_status(PX_HERR_REPLAY_STORE_UNAVAILABLE), 14);
    assert_int_equal(px_grpc_status(PX_HERR_UPSTREAM_TIMEOUT), 4);
    assert_int_equal(px_grpc_status(PX_HERR_REQUEST_TIMEOUT), 4);
    assert_int_equal(px_grpc_status(PX_HERR_BODY_TOO_LARGE), 8);
    assert_int_equal(px_grpc_status(PX_HERR_HEADERS_TOO_LARGE), 8);
    assert_int_equal(px_grpc_status(PX_HERR_BAD_REQUEST), 3);
    assert_int_equal(px_grpc_status(PX_HERR_AMBIGUOUS_FRAMING), 3);
    assert_int_equal(px_grpc_status(PX_HERR_METHOD_NOT_ALLOWED), 12);
    assert_int_equal(px_grpc_status(PX_HERR_INTERNAL), 13);
    /* every error maps to a failure, never OK */
    for (int e = 0; e < PX_HERR__COUNT; e++)
        assert_true(px_grpc_status((px_http_error_t)e) != 0);
}

static void test_message_encoding(void **state)
{
    char out[64];
    (void)state;
    px_grpc_message(out, sizeof out, PX_HERR_BODY_TOO_LARGE, "100% \xc3\xa9t\xc3\xa9\n");
    assert_string_equal(out, "body_too_large: 100%25 %C3%A9t%C3%A9%0A");
    px_grpc_message(out, sizeof out, PX_HERR_INTERNAL, NULL);
    assert_string_equal(out, "internal_error");
    /* cut whole: never half an escape */
    assert_int_equal(px_grpc_message(out, 18, PX_HERR_INTERNAL, "%"), 16);
    assert_string_equal(out, "internal_error: ");
}

/* HealthCheckRequest decoding (admin port's gRPC health, grpc_health.h). */
static void test_health_request(void **state)
{
    static const uint8_t named[] = "\x0a\x09readiness", with_others[] = "\x10\x05\x0a\x02" "ab\x1d\x01\x02\x03\x04",
                         twice[] = "\x0a\x01x\x0a\x01y", nul[] = "\x0a\x02" "a\x00", cut[] = "\x0a\x05" "ab",
                         group[] = "\x0b\x0a\x01x", field0[] = "\x02\x00";
    char svc[8], big[16];
    (void)state;

    assert_int_equal(px_ghealth_parse_request(NULL, 0, svc, sizeof svc), 0);
    assert_string_equal(svc, "");
    assert_int_equal(px_ghealth_parse_request(named, sizeof named - 1, svc, sizeof svc), PX_EPARSE);   /* 9 > 7 */
    assert_int_equal(px_ghealth_parse_request(named, sizeof named - 1, big, 10), 0);   /* 9 < 10 */
    assert_string_equal(big, "readiness");
    assert_int_equal(px_ghealth_parse_request(with_others, sizeof with_others - 1, svc, sizeof svc), 0);
    assert_string_equal(svc, "ab");                 /* unknown fields skipped */
    assert_int_equal(px_ghealth_parse_request(twice, sizeof twice - 1, svc, sizeof svc), 0);
    assert_string_equal(svc, "y");                  /* the last one wins */
    assert_int_equal(px_ghealth_parse_request(nul, sizeof nul - 1, svc, sizeof svc), PX_EPARSE);
    assert_int_equal(px_ghealth_parse_request(cut, sizeof cut - 1, svc, sizeof svc), PX_EPARSE);
    assert_int_equal(px_ghealth_parse_request(group, sizeof group - 1, svc, sizeof svc), PX_EPARSE);
    assert_int_equal(px_ghealth_parse_request(field0, sizeof field0 - 1, svc, sizeof svc), PX_EPARSE);
    assert_int_equal(px_ghealth_preface("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24), 1);
    assert_int_equal(px_ghealth_preface("PRI", 3), 1);
    assert_int_equal(px_ghealth_preface("GET / HTTP/1.1\r\n", 16), 0);
    assert_int_equal(px_ghealth_preface("", 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timeout_units),
        cmocka_unit_test(test_timeout_refused),
        cmocka_unit_test(test_content_type),
        cmocka_unit_test(test_status_mapping),
        cmocka_unit_test(test_message_encoding),
        cmocka_unit_test(test_health_request),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
