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
    assert_null(px_config_route(c, "/v1/models/x", 12, 0));
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
    r = px_config_route(c, "/v1/models/half:predict", 23, 0);
    assert_non_null(r);
    assert_string_equal(r->prefix, "/v1/models/");
    assert_int_equal(r->verify, PX_VERIFY_REQUIRED);
    assert_true(r->sign_responses);
    r = px_config_route(c, "/v1/models/public/x", 19, 0);
    assert_int_equal(r->verify, PX_VERIFY_OPTIONAL);
    assert_false(r->sign_responses);
    r = px_config_route(c, "/healthz", 8, 0);
    assert_string_equal(r->prefix, "/");
    assert_int_equal(r->verify, PX_VERIFY_OFF);
    /* the length bounds the match: "/v1/models" is not under "/v1/models/" */
    r = px_config_route(c, "/v1/models/", 10, 0);
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

/* "signatures.replay_store": defaults, a full redis store, its password
 * file, every error with its key path. */
#define RS(x) cfg("\"signatures\":{\"replay_store\":{" x "}}")
static void test_replay_store(void **state)
{
    char pw[PATH_MAX], json[2 * PATH_MAX];
    px_config_t *c;
    (void)state;

    c = ok(minimal());
    assert_int_equal(c->sig.replay_store.type, PX_RSTORE_LOCAL);
    assert_string_equal(c->sig.replay_store.prefix, "pqproxy:replay:");
    assert_int_equal(c->sig.replay_store.timeout_ms, 50);
    assert_false(c->sig.replay_store.fail_open);
    assert_string_equal(c->sig.replay_store.password, "");
    px_config_free(c);

    snprintf(pw, sizeof pw, "%s/redis.pw", tmpdir);
    write_file(pw, "s3cret with spaces\n");
    snprintf(json, sizeof json, "\"signatures\":{\"replay_store\":{\"type\":\"redis\","
             "\"address\":\"10.1.2.3:6380\",\"prefix\":\"model-a:\",\"password_file\":\"%s\","
             "\"username\":\"pqproxy\",\"timeout_ms\":200,\"on_unavailable\":\"fail_open\"}}", pw);
    c = ok(cfg(json));
    assert_int_equal(c->sig.replay_store.type, PX_RSTORE_REDIS);
    assert_string_equal(c->sig.replay_store.addr.host, "10.1.2.3");
    assert_int_equal(c->sig.replay_store.addr.port, 6380);
    assert_string_equal(c->sig.replay_store.prefix, "model-a:");
    assert_string_equal(c->sig.replay_store.password, "s3cret with spaces");  /* newline gone */
    assert_string_equal(c->sig.replay_store.username, "pqproxy");
    assert_int_equal(c->sig.replay_store.timeout_ms, 200);
    assert_true(c->sig.replay_store.fail_open);
    px_config_free(c);
    /* relative to the config file's directory; a Unix socket; nulls */
    c = ok(RS("\"type\":\"redis\",\"address\":\"unix:/run/redis.sock\",\"password_file\":"
              "\"redis.pw\",\"username\":null"));
    assert_true(c->sig.replay_store.addr.is_unix);
    assert_string_equal(c->sig.replay_store.addr.host, "/run/redis.sock");
    assert_string_equal(c->sig.replay_store.password, "s3cret with spaces");
    assert_string_equal(c->sig.replay_store.username, "");
    px_config_free(c);
    /* with "local" the redis keys are checked but unused */
    px_config_free(ok(RS("\"type\":\"local\",\"password_file\":null,\"timeout_ms\":50")));

    expect_err(RS("\"type\":\"memcached\""), "signatures.replay_store.type", "local");
    expect_err(RS("\"typ\":\"redis\""), "signatures.replay_store.typ", "did you mean type");
    expect_err(cfg("\"signatures\":{\"replay_store\":\"redis\"}"), "signatures.replay_store",
               "must be an object");
    expect_err(RS("\"type\":\"redis\""), "signatures.replay_store.address", "required");
    expect_err(RS("\"type\":\"redis\",\"address\":\"6379\""), "signatures.replay_store.address",
               "HOST:PORT");
    expect_err(RS("\"type\":\"redis\",\"address\":\"127.0.0.1:0\""),
               "signatures.replay_store.address", NULL);
    expect_err(RS("\"type\":\"local\",\"address\":\"nowhere\""),
               "signatures.replay_store.address", NULL);
    expect_err(RS("\"type\":\"redis\",\"address\":\"127.0.0.1:6379\",\"prefix\":\"a b\""),
               "signatures.replay_store.prefix", "without spaces");
    expect_err(RS("\"type\":\"redis\",\"address\":\"127.0.0.1:6379\",\"prefix\":\"\""),
               "signatures.replay_store.prefix", "empty");
    expect_err(RS("\"type\":\"redis\",\"address\":\"127.0.0.1:6379\",\"prefix\":"
                  "\"0123456789012345678901234567890123456789012345678901234567890123456789\""),
               "signatures.replay_store.prefix", "at most 64");
    expect_err(RS("\"type\":\"redis\",\"address\":\"127.0.0.1:6379\",\"username\":\"u\""),
               "signatures.replay_store.username", "password_file");
    expect_err(RS("\"type\":\"redis\",\"address\":\"127.0.0.1:6379\",\"password_file\":"
                  "\"/nonexistent/pw\""), "signatures.replay_store.password_file",
               "/nonexistent/pw: No such file");
    write_file(pw, "\n");
    expect_err(RS("\"type\":\"redis\",\"address\":\"127.0.0.1:6379\",\"password_file\":"
                  "\"redis.pw\""), "signatures.replay_store.password_file", "empty");
    write_file(pw, "two\nlines\n");
    expect_err(RS("\"type\":\"redis\",\"address\":\"127.0.0.1:6379\",\"password_file\":"
                  "\"redis.pw\""), "signatures.replay_store.password_file", "one line");
    unlink(pw);
    expect_err(RS("\"type\":\"redis\",\"address\":\"127.0.0.1:6379\",\"timeout_ms\":0"),
               "signatures.replay_store.timeout_ms", NULL);
    expect_err(RS("\"type\":\"redis\",\"address\":\"127.0.0.1:6379\",\"timeout_ms\":10001"),
               "signatures.replay_store.timeout_ms", NULL);
    expect_err(RS("\"type\":\"redis\",\"address\":\"127.0.0.1:6379\",\"on_unavailable\":"
                  "\"fail_silently\""), "signatures.replay_store.on_unavailable", "fail_closed");
}

/* "tls": files resolved against the config's directory and checked now;
 * ca_file required; cert and key together; not over a Unix socket. */
#define RTLS(x) RS("\"type\":\"redis\",\"address\":\"127.0.0.1:6379\",\"tls\":" x)
static void test_replay_store_tls(void **state)
{
    char cafile[PATH_MAX];
    px_config_t *c;
    (void)state;

    snprintf(cafile, sizeof cafile, "%s/redis-ca.crt", tmpdir);
    write_file(cafile, "not read here\n");
    c = ok(RS("\"type\":\"redis\",\"address\":\"127.0.0.1:6379\""));
    assert_false(c->sig.replay_store.tls.on);
    px_config_free(c);
    c = ok(RTLS("{\"ca_file\":\"redis-ca.crt\",\"server_name\":\"redis.models\","
                "\"cert\":\"redis-ca.crt\",\"key\":\"redis-ca.crt\"}"));
    assert_true(c->sig.replay_store.tls.on);
    assert_string_equal(c->sig.replay_store.tls.ca_file, cafile);
    assert_string_equal(c->sig.replay_store.tls.cert, cafile);
    assert_string_equal(c->sig.replay_store.tls.server_name, "redis.models");
    px_config_free(c);
    expect_err(RTLS("{}"), "signatures.replay_store.tls.ca_file", "required");
    expect_err(RTLS("{\"ca_file\":\"missing.crt\"}"), "signatures.replay_store.tls.ca_file",
               "No such file");
    expect_err(RTLS("{\"ca_file\":\"redis-ca.crt\",\"cert\":\"redis-ca.crt\"}"),
               "signatures.replay_store.tls", "go together");
    expect_err(RTLS("{\"ca_file\":\"redis-ca.crt\",\"key\":\"nope.key\"}"),
               "signatures.replay_store.tls.key", "No such file");
    expect_err(RTLS("{\"ca_file\":\"redis-ca.crt\",\"server_name\":\"a b\"}"),
               "signatures.replay_store.tls.server_name", "without spaces");
    expect_err(RTLS("{\"ca\":\"redis-ca.crt\"}"), "signatures.replay_store.tls.ca", NULL);
    expect_err(RTLS("true"), "signatures.replay_store.tls", NULL);
    expect_err(RS("\"type\":\"redis\",\"address\":\"unix:/run/r.sock\",\"tls\":"
                  "{\"ca_file\":\"redis-ca.crt\"}"), "signatures.replay_store.tls", "Unix socket");
}

/* Host names (resolved at each connect, off the loop) and Redis Sentinel. */
static void test_replay_store_names(void **state)
{
    char pw[PATH_MAX];
    px_config_t *c;
    (void)state;

    c = ok(RS("\"type\":\"redis\",\"address\":\"redis.models.svc.cluster.local:6379\""));
    assert_true(c->sig.replay_store.addr.is_name);
    assert_string_equal(c->sig.replay_store.addr.host, "redis.models.svc.cluster.local");
    assert_int_equal(c->sig.replay_store.addr.port, 6379);
    px_config_free(c);
    c = ok(RS("\"type\":\"redis\",\"address\":\"10.0.0.7:6379\""));
    assert_false(c->sig.replay_store.addr.is_name);
    px_config_free(c);

    snprintf(pw, sizeof pw, "%s/sentinel.pw", tmpdir);
    write_file(pw, "watchers\n");
    c = ok(RS("\"type\":\"redis\",\"sentinels\":[\"sentinel-0.sentinel:26379\",\"10.0.0.9:26379\","
              "\"[::1]:26380\"],\"master_name\":\"replay\",\"sentinel_password_file\":\"sentinel.pw\""));
    assert_int_equal(c->sig.replay_store.sentinel_count, 3);
    assert_true(c->sig.replay_store.sentinels[0].is_name);
    assert_string_equal(c->sig.replay_store.sentinels[0].host, "sentinel-0.sentinel");
    assert_int_equal(c->sig.replay_store.sentinels[1].port, 26379);
    assert_string_equal(c->sig.replay_store.sentinels[2].host, "::1");
    assert_string_equal(c->sig.replay_store.master_name, "replay");
    assert_string_equal(c->sig.replay_store.sentinel_password, "watchers");
    assert_string_equal(c->sig.replay_store.password, "");
    px_config_free(c);
    unlink(pw);

    expect_err(RS("\"type\":\"redis\",\"address\":\"bad_name-.x:6379\""),
               "signatures.replay_store.address", "DNS name");
    expect_err(RS("\"type\":\"redis\",\"address\":\"a..b:6379\""),
               "signatures.replay_store.address", "DNS name");
    expect_err(RS("\"type\":\"redis\",\"address\":\"r:1\",\"sentinels\":[\"s:26379\"],"
                  "\"master_name\":\"m\""), "signatures.replay_store.address", "not both");
    expect_err(RS("\"type\":\"redis\",\"sentinels\":[\"s:26379\"]"),
               "signatures.replay_store.master_name", "required");
    expect_err(RS("\"type\":\"redis\",\"sentinels\":[],\"master_name\":\"m\""),
               "signatures.replay_store.sentinels", NULL);
    expect_err(RS("\"type\":\"redis\",\"sentinels\":[\"s:1\",\"s:2\",\"s:3\",\"s:4\",\"s:5\","
                  "\"s:6\",\"s:7\",\"s:8\",\"s:9\"],\"master_name\":\"m\""),
               "signatures.replay_store.sentinels", NULL);
    expect_err(RS("\"type\":\"redis\",\"sentinels\":[\"s:26379\",\"s\"],\"master_name\":\"m\""),
               "signatures.replay_store.sentinels[1]", "HOST:PORT");
    expect_err(RS("\"type\":\"redis\",\"sentinels\":[\"unix:/run/s.sock\"],\"master_name\":\"m\""),
               "signatures.replay_store.sentinels[0]", "TCP");
    expect_err(RS("\"type\":\"redis\",\"sentinels\":[7],\"master_name\":\"m\""),
               "signatures.replay_store.sentinels[0]", NULL);
    expect_err(RS("\"type\":\"redis\",\"address\":\"r:1\",\"master_name\":\"m\""),
               "signatures.replay_store.master_name", "only with");
    expect_err(RS("\"type\":\"redis\",\"address\":\"r:1\",\"sentinel_password_file\":\"x\""),
               "signatures.replay_store.sentinel_password_file", "only with");
    expect_err(RS("\"type\":\"redis\",\"sentinels\":[\"s:1\"],\"master_name\":\"m\","
                  "\"sentinel_password_file\":\"/nonexistent/pw\""),
               "signatures.replay_store.sentinel_password_file", "No such file");
}

/* Named upstreams and routes choosing them; gRPC routes only for gRPC. */
static void test_upstream_routes(void **state)
{
    const px_route_t *r;
    px_config_t *c;
    (void)state;
    c = ok(cfg("\"upstream\":{\"address\":\"127.0.0.1:8501\",\"pool_max_idle\":7},"
               "\"upstreams\":{\"grpc\":{\"address\":\"127.0.0.1:8500\"},"
               "\"other-1\":{\"address\":\"unix:/run/m.sock\",\"pool_max_idle\":3}},"
               "\"routes\":[{\"prefix\":\"/\",\"grpc\":true,\"upstream\":\"grpc\"},"
               "{\"prefix\":\"/\"},{\"prefix\":\"/o/\",\"upstream\":\"other-1\"},"
               "{\"prefix\":\"/d/\",\"upstream\":\"default\"}]"));
    assert_int_equal(c->upstream_count, 2);
    assert_string_equal(c->upstreams[0].name, "grpc");
    assert_int_equal(c->upstreams[0].cfg.addr.port, 8500);
    assert_int_equal(c->upstreams[0].cfg.pool_max_idle, 7);     /* from the default upstream */
    assert_int_equal(c->upstreams[1].cfg.pool_max_idle, 3);
    assert_true(c->upstreams[1].cfg.addr.is_unix);
    /* the same prefix: the gRPC route for gRPC requests only */
    r = px_config_route(c, "/inference.GRPCInferenceService/ModelInfer", 42, 1);
    assert_true(r->grpc);
    assert_int_equal(r->upstream, 1);
    r = px_config_route(c, "/inference.GRPCInferenceService/ModelInfer", 42, 0);
    assert_false(r->grpc);
    assert_int_equal(r->upstream, 0);
    /* a longer prefix beats the gRPC route */
    r = px_config_route(c, "/o/x", 4, 1);
    assert_int_equal(r->upstream, 2);
    r = px_config_route(c, "/d/x", 4, 0);
    assert_int_equal(r->upstream, 0);
    px_config_free(c);

    expect_err(cfg("\"upstreams\":[]"), "upstreams", "expected an object");
    expect_err(cfg("\"upstreams\":{\"Grpc\":{\"address\":\"127.0.0.1:8500\"}}"),
               "upstreams.Grpc", "a-z, 0-9");
    expect_err(cfg("\"upstreams\":{\"default\":{\"address\":\"127.0.0.1:8500\"}}"),
               "upstreams.default", "name of the `upstream` section");
    expect_err(cfg("\"upstreams\":{\"g\":{\"pool_max_idle\":1}}"), "upstreams.g",
               "required: \"address\"");
    expect_err(cfg("\"upstreams\":{\"g\":{\"address\":\"127.0.0.1:8500\",\"adress\":1}}"),
               "upstreams.g.adress", NULL);
    expect_err(cfg("\"upstreams\":{\"g\":{\"address\":\"nope\"}}"), "upstreams.g.address", NULL);
    expect_err(cfg("\"upstreams\":{\"g\":{\"address\":\"0.0.0.0:8443\"}}"), "upstreams.g.address",
               "own listen address");
    expect_err(cfg("\"upstreams\":{\"g\":{\"address\":\"127.0.0.1:8500\"}},"
                   "\"routes\":[{\"prefix\":\"/\",\"upstream\":\"h\"}]"),
               "routes[0].upstream", "no upstream named \"h\" (known: default, g)");
    expect_err(cfg("\"routes\":[{\"prefix\":\"/\",\"grpc\":true},{\"prefix\":\"/\",\"grpc\":true}]"),
               "routes[1].prefix", "duplicate of routes[0].prefix (both with grpc: true)");
    expect_err(cfg("\"routes\":[{\"prefix\":\"/\",\"grpc\":\"yes\"}]"), "routes[0].grpc", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_default_response_keyid),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_replay_store),
        cmocka_unit_test(test_replay_store_tls),
        cmocka_unit_test(test_replay_store_names),
        cmocka_unit_test(test_upstream_routes),
    };
    return cmocka_run_group_tests(tests, sig_setup, sig_teardown);
}
