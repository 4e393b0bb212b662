/* The "http2" config section: defaults, every key's range with the exact
 * "FILE: http2.key: reason" message, and the cross-key check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "config_fixture.h"

static const struct {
    const char *key;
    int64_t def, min, max;
    size_t off;
} keys[] = {
#define K(k, d, lo, hi) { #k, d, lo, hi, offsetof(px_http2_config_t, k) }
    K(max_concurrent_streams, 100, 1, 10000),
    K(initial_window_size, 65535, 1024, 2147483647),
    K(connection_window_size, 1048576, 65535, 2147483647),
    K(max_header_list_size, 65536, 1024, 1048576),
    K(max_frame_size, 16384, 16384, 16777215),
    K(header_table_size, 4096, 0, 65536),
    K(max_continuations, 8, 1, 1024),
    K(max_queued_acks, 100, 1, 100000),
    K(reset_budget, 200, 1, 100000),
    K(reset_window_ms, 10000, 100, 3600000),
    K(stream_buffer, 65536, 1024, 16777216),
    K(connection_buffer, 1048576, 1024, 268435456),
    K(stall_timeout_ms, 30000, 100, 3600000),
#undef K
};

static uint32_t get(const px_config_t *c, size_t off)
{
    return *(const uint32_t *)((const char *)&c->http2 + off);
}

static void test_defaults(void **state)
{
    px_config_t *c = ok(minimal());

    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        assert_int_equal(get(c, keys[i].off), keys[i].def);
    px_config_free(c);
}

static void test_ranges(void **state)
{
    char member[256], where[64], reason[128];

    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        const char *k = keys[i].key;
        /* keeps connection_buffer >= stream_buffer while stream_buffer moves */
        const char *also = !strcmp(k, "stream_buffer") ? ",\"connection_buffer\":268435456"
                         : !strcmp(k, "connection_buffer") ? ",\"stream_buffer\":1024" : "";
        int64_t v[2] = { keys[i].min, keys[i].max };

        for (int b = 0; b < 2; b++) {
            px_config_t *c;
            snprintf(member, sizeof member, "\"%s\":%lld%s", k, (long long)v[b], also);
            c = ok(with("http2", member));
            assert_int_equal(get(c, keys[i].off), v[b]);
            px_config_free(c);
        }
        snprintf(where, sizeof where, "http2.%s", k);
        snprintf(reason, sizeof reason, "must be an integer between %lld and %lld, got ",
                 (long long)v[0], (long long)v[1]);
        snprintf(member, sizeof member, "\"%s\":%lld%s", k, (long long)v[0] - 1, also);
        expect_err(with("http2", member), where, reason);
        snprintf(member, sizeof member, "\"%s\":%lld%s", k, (long long)v[1] + 1, also);
        expect_err(with("http2", member), where, reason);
        snprintf(member, sizeof member, "\"%s\":\"1\"", k);
        expect_err(with("http2", member), where, reason);
    }
    expect_err(with("http2", "\"max_concurrent_streams\":0"), "http2.max_concurrent_streams",
               "must be an integer between 1 and 10000, got 0");
}

static void test_section_errors(void **state)
{
    expect_err(with("http2", "\"max_concurent_streams\":5"), "http2.max_concurent_streams",
               "max_concurrent_streams");   /* the did-you-mean names the real key */
    expect_err(with("", "\"http2\":[]"), "http2", NULL);
    expect_err(with("http2", "\"stream_buffer\":70000,\"connection_buffer\":65536"),
               "http2.connection_buffer", "must be at least stream_buffer (70000)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_section_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
