/* The "signatures" and "routes" configuration sections: defaults, a full
 * valid config, every error path with its key path, route matching. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "config_fixture.h"

static char keyring[PATH_MAX], respkey[PATH_MAX], respfile1[PATH_MAX], respfile2[PATH_MAX];

static int sig_setup(void **state)
{
    if (setup(state) != 0)
        return -1;
    snprintf(keyring, sizeof keyring, "%s/keyring", tmpdir);
    mkdir(keyring, 0700);
    snprintf(respkey, sizeof respkey, "%s/proxy", tmpdir);
    snprintf(respfile1, sizeof respfile1, "%s.ecdsa.key", respkey);
    snprintf(respfile2, sizeof respfile2, "%s.mldsa.key", respkey);
    touch(respfile1);
    touch(respfile2);
    return 0;
}

static int sig_teardown(void **state)
{
    unlink(respfile1);
    unlink(respfile2);
    rmdir(keyring);
    return teardown(state);
}

/* A valid config plus `extra` top-level members. */
static const char *cfg(const char *extra)
{
    return with("", extra);
}

static void test_defaults(void **state)
{
    px_config_t *c = ok(minimal());
    (void)state;
    assert_null(c->sig.keyring);
    assert_int_equal(c->sig.max_skew_s, 30);
    assert_int_equal(c->sig.max_validity_s, 300);
    assert_false(c->sig.allow_classical);
    assert_int_equal(c->sig.max_signed_body_bytes, 8u << 20);
    assert_int_equal(c->sig.replay_cache_entries, 262144);
    assert_int_equal(c->sig.crypto_threads, 0);
    assert_int_equal(c->route_count, 0);
    assert_null(px_config_route(c, "/v1/models/x", 12));
    px_config_free(c);
}

static void test_full(void **state)
{
    char json[8192];
    px_config_t *c;
    const px_route_t *r;
    (void)state;
    snprintf(json, sizeof json,
             "\"signatures\":{\"keyring\":\"%s\",\"max_skew_s\":10,\"max_validity_s\":120,"
             "\"allow_classical\":true,\"required_headers\":[\"content-type\",\"x-tenant\"],"
             "\"max_signed_body_bytes\":1048576,\"replay_cache_entries\":4096,"
             "\"crypto_threads\":3,\"response_key\":\"proxy\",\"response_keyid\":\"edge-1\"},"
             "\"routes\":[{\"prefix\":\"/v1/models/\",\"verify\":\"required\",\"sign_responses\":true},"
             "{\"prefix\":\"/v1/models/public\",\"verify\":\"optional\"},{\"prefix\":\"/\"}]",
             keyring);
    c = ok(cfg(json));
    assert_string_equal(c->sig.keyring, keyring);
    assert_int_equal(c->sig.max_skew_s, 10);
    assert_int_equal(c->sig.max_validity_s, 120);
    assert_true(c->sig.allow_classical);
    assert_int_equal(c->sig.required_header_count, 2);
    assert_string_equal(c->sig.required_headers[1], "x-tenant");
    assert_int_equal(c->sig.max_signed_body_bytes, 1048576);
    assert_int_equal(c->sig.replay_cache_entries, 4096);
    assert_int_equal(c->sig.crypto_threads, 3);
    assert_string_equal(c->sig.response_key, respkey);    /* relative to the config file */
    assert_string_equal(c->sig.response_keyid, "edge-1");
    assert_int_equal(c->route_count, 3);
    /* the longest prefix wins, whatever the order */
    r = px_config_route(c, "/v1/models/half:predict", 23);
    assert_non_null(r);
    assert_string_equal(r->prefix, "/v1/models/");
    assert_int_equal(r->verify, PX_VERIFY_REQUIRED);
    assert_true(r->sign_responses);
    r = px_config_route(c, "/v1/models/public/x", 19);
    assert_int_equal(r->verify, PX_VERIFY_OPTIONAL);
    assert_false(r->sign_responses);
    r = px_config_route(c, "/healthz", 8);
    assert_string_equal(r->prefix, "/");
    assert_int_equal(r->verify, PX_VERIFY_OFF);
    /* the length bounds the match: "/v1/models" is not under "/v1/models/" */
    r = px_config_route(c, "/v1/models/", 10);
    assert_string_equal(r->prefix, "/");
    px_config_free(c);
}

static void test_default_response_keyid(void **state)
{
    char json[4096];
    px_config_t *c;
    (void)state;
    snprintf(json, sizeof json, "\"signatures\":{\"response_key\":\"%s\"},"
             "\"routes\":[{\"prefix\":\"/\",\"sign_responses\":true}]", respkey);
    c = ok(cfg(json));
    assert_string_equal(c->sig.response_keyid, "pqproxy");
    px_config_free(c);
}

static void test_errors(void **state)
{
    char json[4096];
    (void)state;
    expect_err(cfg("\"signatures\":{\"keyrng\":\"x\"}"), "signatures.keyrng", "did you mean keyring");
    expect_err(cfg("\"signatures\":[]"), "signatures", NULL);
    expect_err(cfg("\"signatures\":{\"max_skew_s\":301}"), "signatures.max_skew_s", "between 0 and 300");
    expect_err(cfg("\"signatures\":{\"max_validity_s\":0}"), "signatures.max_validity_s", NULL);
    expect_err(cfg("\"signatures\":{\"max_validity_s\":3601}"), "signatures.max_validity_s", NULL);
    expect_err(cfg("\"signatures\":{\"allow_classical\":1}"), "signatures.allow_classical", NULL);
    expect_err(cfg("\"signatures\":{\"replay_cache_entries\":10}"),
               "signatures.replay_cache_entries", NULL);
    expect_err(cfg("\"signatures\":{\"crypto_threads\":129}"), "signatures.crypto_threads",
               "between 0 and 128");
    expect_err(cfg("\"signatures\":{\"crypto_threads\":-1}"), "signatures.crypto_threads", NULL);
    expect_err(cfg("\"signatures\":{\"max_signed_body_bytes\":0}"),
               "signatures.max_signed_body_bytes", NULL);
    expect_err(cfg("\"signatures\":{\"required_headers\":[\"Content-Type\"]}"),
               "signatures.required_headers[0]", "lowercase");
    expect_err(cfg("\"signatures\":{\"required_headers\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\"]}"),
               "signatures.required_headers", NULL);
    expect_err(cfg("\"signatures\":{\"response_keyid\":\".hidden\"}"), "signatures.response_keyid", NULL);
    expect_err(cfg("\"signatures\":{\"response_keyid\":\"a b\"}"), "signatures.response_keyid", NULL);
    expect_err(cfg("\"signatures\":{\"keyring\":\"/nonexistent-keyring\"}"), "signatures.keyring",
               "No such file");
    snprintf(json, sizeof json, "\"signatures\":{\"keyring\":\"%s\"}", crt);
    expect_err(cfg(json), "signatures.keyring", "not a directory");
    expect_err(cfg("\"signatures\":{\"response_key\":\"/nonexistent/prefix\"}"),
               "signatures.response_key", "/nonexistent/prefix.ecdsa.key");

    expect_err(cfg("\"routes\":{}"), "routes", NULL);
    expect_err(cfg("\"routes\":[{\"verify\":\"required\"}]"), "routes[0].prefix", "required");
    expect_err(cfg("\"routes\":[{\"prefix\":\"v1\"}]"), "routes[0].prefix", "start with '/'");
    expect_err(cfg("\"routes\":[{\"prefix\":\"/a?b\"}]"), "routes[0].prefix", NULL);
    expect_err(cfg("\"routes\":[{\"prefix\":\"/a\\\"b\"}]"), "routes[0].prefix", "printable");
    expect_err(cfg("\"routes\":[{\"prefix\":\"/a b\"}]"), "routes[0].prefix", "printable");
    expect_err(cfg("\"routes\":[{\"prefix\":\"/a\"},{\"prefix\":\"/a\"}]"), "routes[1].prefix",
               "duplicate of routes[0].prefix");
    expect_err(cfg("\"routes\":[{\"prefix\":\"/\",\"verify\":\"maybe\"}]"), "routes[0].verify", NULL);
    expect_err(cfg("\"routes\":[{\"prefix\":\"/\",\"sign_responses\":\"yes\"}]"),
               "routes[0].sign_responses", NULL);
    expect_err(cfg("\"routes\":[{\"prefix\":\"/\",\"verfy\":\"off\"}]"), "routes[0].verfy",
               "did you mean verify");
    /* cross-checks */
    expect_err(cfg("\"routes\":[{\"prefix\":\"/\",\"verify\":\"required\"}]"), "signatures.keyring",
               "required");
    expect_err(cfg("\"routes\":[{\"prefix\":\"/\",\"verify\":\"optional\"}]"), "signatures.keyring",
               "required");
    expect_err(cfg("\"routes\":[{\"prefix\":\"/\",\"sign_responses\":true}]"),
               "signatures.response_key", "required");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_default_response_keyid),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, sig_setup, sig_teardown);
}
