/* Configuration schema: defaults, a full config, and every structural, type,
 * range and address error with the exact key path it must name. Certificate
 * files are empty temp files: the config module only checks they open. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <sched.h>

#include "config_fixture.h"
#include "cmd/version.h"
#include "core/cpus.h"

/* ---- defaults and a full config ---------------------------------------------- */

static void test_defaults(void **state)
{
    px_config_t *c = ok(minimal());
    check_defaults(c);
    assert_int_equal(c->upstream_count, 0);
    assert_int_equal(c->route_count, 0);
    assert_string_equal(c->path, cfgfile);
    assert_string_equal(c->tls.certs[0].cert_file, crt);
    assert_string_equal(c->tls.certs[0].key_file, key);
    assert_int_equal(c->workers, (int)(px_cpu_count() > 256 ? 256 : px_cpu_count()));
    px_config_free(c);
    px_config_free(NULL);
    /* workers 0 follows the CPUs the process may use, not the machine's */
    {
        cpu_set_t all, one;
        assert_int_equal(sched_getaffinity(0, sizeof all, &all), 0);
        CPU_ZERO(&one);
        for (int i = 0; i < CPU_SETSIZE; i++)
            if (CPU_ISSET(i, &all)) {
                CPU_SET(i, &one);
                break;
            }
        assert_int_equal(sched_setaffinity(0, sizeof one, &one), 0);
        c = ok(minimal());
        assert_int_equal(c->workers, 1);
        px_config_free(c);
        assert_int_equal(sched_setaffinity(0, sizeof all, &all), 0);
    }
}

static void test_full_config(void **state)
{
    static char json[1 << 15];
    char g[256];
    px_config_t *c;

    snprintf(json, sizeof json,
             "{\"listen\":\"[::]:443\",\"workers\":3,\"max_connections\":500,"
             "\"tls\":{\"certificates\":[{\"cert\":\"%s\",\"key\":\"%s\"},"
             "{\"cert\":\"%s\",\"key\":\"%s\",\"sni\":[\"API.Example.com\",\"*.example.org\"]}],"
             "\"groups\":[\"SecP384r1MLKEM1024\",\"x25519mlkem768\",\"P-256\"],"
             "\"pq_policy\":\"prefer\",\"min_version\":\"1.2\",\"client_ca\":\"%s\","
             "\"session_tickets\":false,\"ticket_key_rotation_s\":60,\"alpn\":[\"h2\",\"http/1.1\"]},"
             "\"upstream\":{\"address\":\"unix:/run/model.sock\",\"pool_max_idle\":0,"
             "\"max_requests_per_conn\":1000},"
             "\"http\":{\"max_header_bytes\":32768,\"max_body_bytes\":1073741824,"
             "\"trust_forwarded\":true,\"max_requests_per_conn\":7},"
             "\"timeouts\":{\"handshake_ms\":1,\"request_header_ms\":2,\"body_idle_ms\":3,"
             "\"keepalive_idle_ms\":4,\"upstream_connect_ms\":5,\"upstream_response_ms\":6,"
             "\"upstream_idle_ms\":7,\"send_idle_ms\":8,\"drain_ms\":3600000},"
             "\"log\":{\"level\":\"debug\",\"access_log\":\"off\",\"error_log\":\"/var/log/e.log\"},"
             "\"admin\":{\"enabled\":false,\"listen\":\"[::1]:9000\"}}",
             crt, key, rel_crt, rel_key, ca);
    c = ok(json);
    assert_string_equal(c->listen.host, "::");
    assert_int_equal(c->listen.port, 443);
    assert_int_equal(c->workers, 3);
    assert_int_equal(c->max_connections, 500);
    assert_int_equal(c->tls.cert_count, 2);
    assert_string_equal(c->tls.certs[1].cert_file, rel_crt);
    assert_string_equal(c->tls.certs[1].key_file, rel_key);
    assert_int_equal(c->tls.certs[1].sni_count, 2);
    assert_string_equal(c->tls.certs[1].sni[0], "api.example.com"); /* lowercased */
    assert_string_equal(c->tls.certs[1].sni[1], "*.example.org");
    assert_string_equal(group_names(c, g, sizeof g), "SecP384r1MLKEM1024,X25519MLKEM768,secp256r1");
    assert_int_equal(c->tls.pq_policy, PX_PQ_PREFER);
    assert_int_equal(c->tls.min_version, 12);
    assert_string_equal(c->tls.client_ca_file, ca);
    assert_int_equal(c->tls.session_tickets, 0);
    assert_int_equal(c->tls.ticket_key_rotation_s, 60);
    assert_int_equal(c->tls.alpn_count, 2);
    assert_string_equal(c->tls.alpn[0], "h2");
    assert_string_equal(c->tls.alpn[1], "http/1.1");
    assert_true(c->upstream.addr.is_unix);
    assert_string_equal(c->upstream.addr.host, "/run/model.sock");
    assert_int_equal(c->upstream.pool_max_idle, 0);
    assert_int_equal(c->upstream.max_requests_per_conn, 1000);
    assert_int_equal(c->http.max_header_bytes, 32768);
    assert_true(c->http.max_body_bytes == 1073741824ull);
    assert_int_equal(c->http.trust_forwarded, 1);
    assert_int_equal(c->http.max_requests_per_conn, 7);
    assert_int_equal(c->timeouts.handshake, 1);
    assert_int_equal(c->timeouts.request_header, 2);
    assert_int_equal(c->timeouts.body_idle, 3);
    assert_int_equal(c->timeouts.keepalive_idle, 4);
    assert_int_equal(c->timeouts.upstream_connect, 5);
    assert_int_equal(c->timeouts.upstream_response, 6);
    assert_int_equal(c->timeouts.upstream_idle, 7);
    assert_int_equal(c->timeouts.send_idle, 8);
    assert_int_equal(c->timeouts.drain, 3600000);
    assert_int_equal(c->log.level, PX_LOG_DEBUG);
    assert_string_equal(c->log.access_log, "off");
    assert_string_equal(c->log.error_log, "/var/log/e.log");
    assert_int_equal(c->admin.enabled, 0);
    assert_string_equal(c->admin.addr.host, "::1");
    assert_int_equal(c->admin.addr.port, 9000);
    px_config_free(c);
}

/* ---- structure: unknown keys, duplicates, object types ----------------------- */

static void test_unknown_keys(void **state)
{
    static const struct { const char *section, *member, *where, *hint; } cases[] = {
        { "", "\"listne\":\"1.2.3.4:1\"", "listne", "did you mean listen?" },
        { "", "\"zzzzzzzz\":1", "zzzzzzzz", NULL },
        { "tls", "\"gorups\":[]", "tls.gorups", "did you mean groups?" },
        { "tls", "\"Groups\":[]", "tls.Groups", "did you mean groups?" },
        { "cert", "\"keys\":\"x\"", "tls.certificates[0].keys", "did you mean key?" },
        { "upstream", "\"adress\":\"x\"", "upstream.adress", "did you mean address?" },
        { "http", "\"max_body\":1", "http.max_body", NULL },
        { "timeouts", "\"handshake\":1", "timeouts.handshake", NULL },
        { "timeouts", "\"drain_sm\":1", "timeouts.drain_sm", "did you mean drain_ms?" },
        { "log", "\"levl\":\"info\"", "log.levl", "did you mean level?" },
        { "admin", "\"enable\":true", "admin.enable", "did you mean enabled?" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        expect_err(with(cases[i].section, cases[i].member), cases[i].where, "unknown key");
        if (cases[i].hint)
            assert_non_null(strstr(err, cases[i].hint));
        else
            assert_null(strstr(err, "did you mean"));
    }
    /* control characters in a key are not echoed raw */
    expect_err(with("", "\"a\\u0001b\":1"), "a?b", "unknown key");
}

static void test_duplicate_and_object_types(void **state)
{
    static const char *const sections[] = { "tls", "upstream", "http", "timeouts", "log", "admin" };
    char member[64];

    expect_err(with("", "\"workers\":1,\"workers\":2"), "workers", "duplicate key");
    expect_err(with("log", "\"level\":\"info\",\"level\":\"warn\""), "log.level", "duplicate key");
    expect_err("[]", "(top level)", "must be an object, got an array");
    expect_err("5", "(top level)", "must be an object, got 5");
    for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++) {
        snprintf(member, sizeof member, "\"%s\":[]", sections[i]);
        /* "tls" appears twice in with(""): the duplicate check comes first */
        if (!strcmp(sections[i], "tls"))
            expect_err("{\"tls\":[]}", "tls", "must be an object, got an array");
        else
            expect_err(with("", member), sections[i], "must be an object, got an array");
    }
    expect_err(with("tls", "\"certificates\":[]"), "tls.certificates", "duplicate key");
}

/* ---- integers: each bound just inside and just outside ----------------------- */

static const struct {
    const char *section, *key;
    int64_t min, max;
} ranges[] = {
    { "", "workers", 0, 256 },
    { "", "max_connections", 1, 1000000 },
    { "tls", "ticket_key_rotation_s", 60, 604800 },
    { "tls", "cert_expiry_warning_days", 0, 3650 },
    { "upstream", "pool_max_idle", 0, 10000 },
    { "upstream", "max_requests_per_conn", 0, 10000000 },
    { "http", "max_header_bytes", 8192, 1048576 },
    { "http", "max_body_bytes", 0, 9007199254740992LL },
    { "http", "max_requests_per_conn", 0, 10000000 },
    { "timeouts", "handshake_ms", 1, 3600000 },
    { "timeouts", "request_header_ms", 1, 3600000 },
    { "timeouts", "body_idle_ms", 1, 3600000 },
    { "timeouts", "request_ms", 1, 3600000 },
    { "timeouts", "keepalive_idle_ms", 1, 3600000 },
    { "timeouts", "upstream_connect_ms", 1, 3600000 },
    { "timeouts", "upstream_response_ms", 1, 3600000 },
    { "timeouts", "upstream_idle_ms", 1, 3600000 },
    { "timeouts", "send_idle_ms", 1, 3600000 },
    { "timeouts", "drain_ms", 1, 3600000 },
};

static int64_t field(const px_config_t *c, const char *section, const char *k)
{
    if (!strcmp(k, "workers")) return c->workers;
    if (!strcmp(k, "max_connections")) return c->max_connections;
    if (!strcmp(k, "ticket_key_rotation_s")) return c->tls.ticket_key_rotation_s;
    if (!strcmp(k, "cert_expiry_warning_days")) return c->tls.cert_expiry_warning_days;
    if (!strcmp(k, "pool_max_idle")) return c->upstream.pool_max_idle;
    if (!strcmp(k, "max_requests_per_conn"))
        return !strcmp(section, "http") ? c->http.max_requests_per_conn
                                        : c->upstream.max_requests_per_conn;
    if (!strcmp(k, "max_header_bytes")) return c->http.max_header_bytes;
    if (!strcmp(k, "max_body_bytes")) return (int64_t)c->http.max_body_bytes;
    if (!strcmp(k, "handshake_ms")) return c->timeouts.handshake;
    if (!strcmp(k, "request_header_ms")) return c->timeouts.request_header;
    if (!strcmp(k, "body_idle_ms")) return c->timeouts.body_idle;
    if (!strcmp(k, "request_ms")) return c->timeouts.request;
    if (!strcmp(k, "keepalive_idle_ms")) return c->timeouts.keepalive_idle;
    if (!strcmp(k, "upstream_connect_ms")) return c->timeouts.upstream_connect;
    if (!strcmp(k, "upstream_response_ms")) return c->timeouts.upstream_response;
    if (!strcmp(k, "upstream_idle_ms")) return c->timeouts.upstream_idle;
    if (!strcmp(k, "send_idle_ms")) return c->timeouts.send_idle;
    if (!strcmp(k, "drain_ms")) return c->timeouts.drain;
    fail_msg("no field %s", k);
    return -1;
}

static void test_integer_ranges(void **state)
{
    char member[128], where[128], reason[128];

    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
        const char *s = ranges[i].section, *k = ranges[i].key;
        int64_t lo = ranges[i].min, hi = ranges[i].max;
        /* 2^53 + 1 is not a double: the next one out is 2^53 + 2 */
        int64_t above = hi == 9007199254740992LL ? hi + 2 : hi + 1;
        const char *bad[] = { "\"5\"", "true", "null", "[]", "{}", "1.5", "1e400" };

        snprintf(where, sizeof where, "%s%s%s", s, *s ? "." : "", k);
        snprintf(reason, sizeof reason, "must be an integer between %lld and %lld, got ",
                 (long long)lo, (long long)hi);
        for (int b = 0; b < 2; b++) {
            px_config_t *c;
            int64_t v = b ? hi : lo;
            snprintf(member, sizeof member, "\"%s\":%lld", k, (long long)v);
            c = ok(with(s, member));
            if (strcmp(k, "workers") || v) /* workers 0 resolves to the core count */
                assert_true(field(c, s, k) == v);
            px_config_free(c);
        }
        snprintf(member, sizeof member, "\"%s\":%lld", k, (long long)lo - 1);
        expect_err(with(s, member), where, reason);
        snprintf(member, sizeof member, "\"%s\":%lld", k, (long long)above);
        expect_err(with(s, member), where, reason);
        for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
            snprintf(member, sizeof member, "\"%s\":%s", k, bad[b]);
            expect_err(with(s, member), where, reason);
        }
    }
    /* the exact message, as documented */
    expect_err(with("timeouts", "\"handshake_ms\":-5"), "timeouts.handshake_ms",
               "must be an integer between 1 and 3600000, got -5");
    assert_string_equal(err + strlen(err) - 6, "got -5"); /* nothing after the value */
    expect_err(with("", "\"workers\":2.5"), "workers", "got 2.5");
    expect_err(with("", "\"workers\":\"4\""), "workers", "got \"4\"");
    expect_ok_member("", "\"workers\":1e2"); /* integral, whatever the spelling */
}

/* ---- booleans and enumerations ----------------------------------------------- */

static void test_booleans(void **state)
{
    static const char *const keys[][2] = { { "tls", "session_tickets" },
                                           { "http", "trust_forwarded" },
                                           { "admin", "enabled" } };
    static const char *const bad[] = { "1", "0", "\"true\"", "null", "[]" };
    char member[128], where[128];

    for (size_t i = 0; i < 3; i++) {
        snprintf(where, sizeof where, "%s.%s", keys[i][0], keys[i][1]);
        for (int v = 0; v < 2; v++) {
            snprintf(member, sizeof member, "\"%s\":%s", keys[i][1], v ? "true" : "false");
            expect_ok_member(keys[i][0], member);
        }
        for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
            snprintf(member, sizeof member, "\"%s\":%s", keys[i][1], bad[b]);
            expect_err(with(keys[i][0], member), where, "must be true or false, got ");
        }
    }
}

static void test_enums(void **state)
{
    px_config_t *c;

    c = ok(with("tls", "\"pq_policy\":\"prefer\",\"min_version\":\"1.2\""));
    assert_int_equal(c->tls.pq_policy, PX_PQ_PREFER);
    assert_int_equal(c->tls.min_version, 12);
    px_config_free(c);
    c = ok(with("tls", "\"pq_policy\":\"require\",\"min_version\":\"1.3\""));
    assert_int_equal(c->tls.pq_policy, PX_PQ_REQUIRE);
    assert_int_equal(c->tls.min_version, 13);
    px_config_free(c);
    expect_err(with("tls", "\"pq_policy\":\"required\""), "tls.pq_policy",
               "must be one of \"require\", \"prefer\", got \"required\"");
    expect_err(with("tls", "\"pq_policy\":\"REQUIRE\""), "tls.pq_policy", "must be one of");
    expect_err(with("tls", "\"pq_policy\":1"), "tls.pq_policy", "got 1");
    expect_err(with("tls", "\"min_version\":\"1.1\""), "tls.min_version", "must be one of");
    expect_err(with("tls", "\"min_version\":1.3"), "tls.min_version", "got 1.3");
    expect_err(with("tls", "\"min_version\":null"), "tls.min_version", "got null");

    c = ok(with("upstream", "\"address\":\"127.0.0.1:9\""));
    assert_int_equal(c->upstream.protocol, PX_UP_HTTP1);
    assert_int_equal(c->upstream.h2c_max_streams, 100);
    assert_int_equal(c->upstream.h2c_max_connections, 64);
    assert_int_equal(c->upstream.h2c_ping_timeout, 5000);
    px_config_free(c);
    c = ok(with("upstream", "\"protocol\":\"h2c\",\"h2c_max_streams\":7,\"h2c_max_connections\":3,"
                "\"h2c_ping_timeout_ms\":0"));
    assert_int_equal(c->upstream.protocol, PX_UP_H2C);
    assert_int_equal(c->upstream.h2c_max_streams, 7);
    assert_int_equal(c->upstream.h2c_max_connections, 3);
    assert_int_equal(c->upstream.h2c_ping_timeout, 0);
    px_config_free(c);
    expect_err(with("upstream", "\"h2c_ping_timeout_ms\":600001"), "upstream.h2c_ping_timeout_ms", "");
    expect_err(with("upstream", "\"h2c_max_connections\":0"), "upstream.h2c_max_connections", "");
    expect_err(with("upstream", "\"h2c_max_connections\":1025"), "upstream.h2c_max_connections", "");
    expect_err(with("upstream", "\"protocol\":\"h2\""), "upstream.protocol",
               "must be one of \"http1\", \"h2c\", got \"h2\"");
    expect_err(with("upstream", "\"h2c_max_streams\":0"), "upstream.h2c_max_streams", "");

    static const char *const levels[] = { "debug", "info", "warn", "error" };
    for (int i = 0; i < 4; i++) {
        char m[64];
        snprintf(m, sizeof m, "\"level\":\"%s\"", levels[i]);
        c = ok(with("log", m));
        assert_int_equal(c->log.level, (px_log_level_t)i);
        px_config_free(c);
    }
    expect_err(with("log", "\"level\":\"warning\""), "log.level",
               "must be one of \"debug\", \"info\", \"warn\", \"error\", got \"warning\"");
    expect_err(with("log", "\"level\":true"), "log.level", "got true");
}

/* tls.client_verify, client_verify_depth, client_crl (one file or a list) */
static void test_mtls_keys(void **state)
{
    char m[3 * PATH_MAX];
    px_config_t *c;
    (void)state;

    snprintf(m, sizeof m, "\"client_ca\":\"%s\",\"client_verify\":\"optional\","
             "\"client_verify_depth\":3,\"client_crl\":[\"a.crl\",\"/b.crl\"]", crt);
    c = ok(with("tls", m));
    assert_int_equal(c->tls.client_verify, PX_CLIENT_VERIFY_OPTIONAL);
    assert_int_equal(c->tls.client_verify_depth, 3);
    assert_int_equal(c->tls.client_crl_count, 2);
    assert_non_null(strstr(c->tls.client_crl[0], "/a.crl"));
    assert_true(c->tls.client_crl[0][0] == '/');            /* relative: made absolute */
    assert_string_equal(c->tls.client_crl[1], "/b.crl");
    px_config_free(c);
    snprintf(m, sizeof m, "\"client_ca\":\"%s\",\"client_crl\":\"/one.crl\"", crt);
    c = ok(with("tls", m));
    assert_int_equal(c->tls.client_verify, PX_CLIENT_VERIFY_REQUIRED);
    assert_int_equal(c->tls.client_crl_count, 1);
    assert_string_equal(c->tls.client_crl[0], "/one.crl");
    px_config_free(c);

    expect_err(with("tls", "\"client_verify\":\"on\""), "tls.client_verify",
               "must be one of \"required\", \"optional\", got \"on\"");
    expect_err(with("tls", "\"client_verify_depth\":9"), "tls.client_verify_depth", "0");
    expect_err(with("tls", "\"client_verify_depth\":-1"), "tls.client_verify_depth", NULL);
    expect_err(with("tls", "\"client_crl\":5"), "tls.client_crl", "got 5");
    expect_err(with("tls", "\"client_crl\":[]"), "tls.client_crl", NULL);
    expect_err(with("tls", "\"client_crl\":[\"a\",7]"), "tls.client_crl[1]", "got 7");
    expect_err(with("tls", "\"client_crl\":\"\""), "tls.client_crl", NULL);
    expect_err(with("tls", "\"client_crl\":\"/x.crl\""), "tls.client_crl",
               "needs tls.client_ca");
    expect_err(with("tls", "\"client_verify\":\"optional\""), "tls.client_verify",
               "needs tls.client_ca");
}

/* ---- addresses --------------------------------------------------------------- */

static void test_addr_parse(void **state)
{
    px_addr_t a;
    char e[256], path[200];

    assert_int_equal(px_addr_parse("10.0.0.1:80", &a, e, sizeof e), 0);
    assert_string_equal(a.host, "10.0.0.1");
    assert_int_equal(a.port, 80);
    assert_int_equal(px_addr_parse("[::1]:65535", &a, e, sizeof e), 0);
    assert_string_equal(a.host, "::1");
    assert_int_equal(a.port, 65535);
    assert_int_equal(px_addr_parse("[2001:db8::7]:1", &a, e, sizeof e), 0);
    assert_int_equal(px_addr_parse("LocalHost:8501", &a, e, sizeof e), 0);
    assert_string_equal(a.host, "127.0.0.1");
    assert_int_equal(px_addr_parse("unix:/run/x.sock", &a, e, sizeof e), 0);
    assert_true(a.is_unix);
    assert_string_equal(a.host, "/run/x.sock");
    /* sun_path is 108 bytes: 107 + NUL fit, 108 do not */
    memset(path, 'a', sizeof path);
    memcpy(path, "unix:/", 6);
    path[5 + 107] = '\0';
    assert_int_equal(px_addr_parse(path, &a, e, sizeof e), 0);
    path[5 + 107] = 'a';
    path[5 + 108] = '\0';
    assert_int_equal(px_addr_parse(path, &a, e, sizeof e), PX_EINVAL);
    assert_non_null(strstr(e, "108 bytes, the limit is 107"));

    static const char *const bad[] = {
        "", "1.2.3.4", ":80", "1.2.3.4:", "1.2.3.4:0", "1.2.3.4:65536", "1.2.3.4:8x",
        "1.2.3.4:-1", "1.2.3.4:+80", "1.2.3.4: 80", "1.2.3.4:123456", "::1:80", "[::1]80",
        "[::1", "[::1]:", "[]:80", "[1.2.3.4]:80", "[localhost]:80", "example.com:80",
        "1.2.3:80", "256.1.1.1:80", "unix:", "unix:relative.sock", "[fe80::1%eth0]:80",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        e[0] = '\0';
        if (px_addr_parse(bad[i], &a, e, sizeof e) != PX_EINVAL)
            fail_msg("accepted \"%s\"", bad[i]);
        assert_true(e[0] != '\0');
    }
    assert_int_equal(px_addr_parse(NULL, &a, NULL, 0), PX_EINVAL); /* no buffer: no crash */
}

static void test_addresses_in_config(void **state)
{
    static const struct { const char *section, *key; int unix_ok; } addrs[] = {
        { "", "listen", 0 }, { "upstream", "address", 1 }, { "admin", "listen", 0 } };
    char member[512], where[64], longpath[300];
    px_config_t *c;

    for (size_t i = 0; i < 3; i++) {
        const char *s = addrs[i].section, *k = addrs[i].key;
        snprintf(where, sizeof where, "%s%s%s", s, *s ? "." : "", k);
        snprintf(member, sizeof member, "\"%s\":\"[::1]:7000\"", k);
        expect_ok_member(s, member);
        snprintf(member, sizeof member, "\"%s\":\"localhost:7001\"", k);
        expect_ok_member(s, member);
        snprintf(member, sizeof member, "\"%s\":\"unix:/run/p.sock\"", k);
        if (addrs[i].unix_ok)
            expect_ok_member(s, member);
        else
            expect_err(with(s, member), where, "unix sockets are only supported");
        snprintf(member, sizeof member, "\"%s\":\"model:8500\"", k);
        expect_err(with(s, member), where, "invalid address \"model:8500\": host must be");
        snprintf(member, sizeof member, "\"%s\":\"::1:80\"", k);
        expect_err(with(s, member), where, "must be in brackets");
        snprintf(member, sizeof member, "\"%s\":\"1.2.3.4:99999\"", k);
        expect_err(with(s, member), where, "port must be");
        snprintf(member, sizeof member, "\"%s\":8443", k);
        expect_err(with(s, member), where, "must be a string, got 8443");
        snprintf(member, sizeof member, "\"%s\":\"\"", k);
        expect_err(with(s, member), where, "must not be empty");
    }
    memset(longpath, 'p', sizeof longpath);
    memcpy(longpath, "unix:/", 6);
    longpath[5 + 108] = '\0';
    snprintf(member, sizeof member, "\"address\":\"%s\"", longpath);
    expect_err(with("upstream", member), "upstream.address", "the limit is 107");
    expect_err(with("upstream", "\"address\":\"unix:run.sock\""), "upstream.address",
               "must be absolute");

    c = ok(with("upstream", "\"address\":\"localhost:8000\""));
    assert_string_equal(c->upstream.addr.host, "127.0.0.1");
    px_config_free(c);

    /* clashes between addresses */
    expect_err(with("", "\"listen\":\"0.0.0.0:9901\""), "admin.listen", "same address");
    expect_err(with("", "\"listen\":\"[::]:9901\""), "admin.listen", "same address");
    expect_ok_member("", "\"listen\":\"0.0.0.0:9901\",\"admin\":{\"enabled\":false}");
    expect_ok_member("", "\"listen\":\"10.0.0.1:9901\"");
    expect_err(with("", "\"listen\":\"127.0.0.1:8501\""), "upstream.address",
               "own listen address");
}

/* ---- tls ---------------------------------------------------------------------- */

/* A \u0000 would end the C string early: every string value and key with
 * one is refused, naming its key path as well as its line and column. */
static void test_nul_in_strings(void **state)
{
    expect_err(with("upstream", "\"address\":\"127.0.0.1:9\\u0000.evil:80\""),
               "upstream.address", "NUL character (\\u0000 at line 1, column ");
    expect_err(with("cert", "\"sni\":[\"a.example\",\"b.example\\u0000x\"]"),
               "tls.certificates[0].sni[1]", "NUL character");
    expect_err(with("tls", "\"alpn\":[\"h2\\u0000\"]"), "tls.alpn[0]", "NUL character");
    expect_err(with("", "\"work\\u0000ers\":1"), "work", "key contains a NUL");
    /* an escaped backslash followed by u0000 is text, not a NUL */
    expect_err(with("upstream", "\"address\":\"\\\\u0000\""), "upstream.address", NULL);
    assert_null(strstr(err, "NUL"));
    /* a NUL where the tree has no string (cJSON refuses the text): line and column */
    expect_err("{\"a\":[1,\"\\u0000\",}", "line 1, column 10", "NUL character");
    /* other escapes before and after still decode */
    expect_ok_member("upstream", "\"address\":\"127.0.0.\\u0031:9\"");
}

static void test_certificates(void **state)
{
    static char json[1 << 16];
    char where[64];
    size_t n;

    expect_err("{}", "tls.certificates", "required");
    expect_err("{\"tls\":{}}", "tls.certificates", "required");
    expect_err("{\"tls\":{\"certificates\":[]}}", "tls.certificates",
               "must list between 1 and 16");
    expect_err("{\"tls\":{\"certificates\":{}}}", "tls.certificates", "must be an array");
    expect_err("{\"tls\":{\"certificates\":[\"a.crt\"]}}", "tls.certificates[0]",
               "must be an object, got \"a.crt\"");
    expect_err("{\"tls\":{\"certificates\":[{\"key\":\"k\"}]}}", "tls.certificates[0].cert",
               "required");
    expect_err("{\"tls\":{\"certificates\":[{\"cert\":\"c\"}]}}", "tls.certificates[0].key",
               "required");
    expect_err("{\"tls\":{\"certificates\":[{\"cert\":1,\"key\":\"k\"}]}}",
               "tls.certificates[0].cert", "must be a string, got 1");
    expect_err("{\"tls\":{\"certificates\":[{\"cert\":\"\",\"key\":\"k\"}]}}",
               "tls.certificates[0].cert", "must not be empty");
    expect_err("{\"tls\":{\"certificates\":[{\"cert\":\"c\",\"key\":null}]}}",
               "tls.certificates[0].key", "must be a string, got null");

    /* 16 fit, 17 do not */
    for (int count = 16; count <= 17; count++) {
        n = (size_t)snprintf(json, sizeof json, "{\"tls\":{\"certificates\":[");
        for (int i = 0; i < count; i++)
            n += (size_t)snprintf(json + n, sizeof json - n, "%s{\"cert\":\"%s\",\"key\":\"%s\"}",
                                  i ? "," : "", crt, key);
        snprintf(json + n, sizeof json - n, "]}}");
        if (count == 16) {
            px_config_t *c = ok(json);
            assert_int_equal(c->tls.cert_count, 16);
            px_config_free(c);
        } else {
            expect_err(json, "tls.certificates", "must list between 1 and 16");
            assert_non_null(strstr(err, "got 17"));
        }
    }

    /* files: missing, a directory, the second entry's key */
    snprintf(json, sizeof json, "{\"tls\":{\"certificates\":[{\"cert\":\"%s/nope.crt\",\"key\":\"%s\"}]}}",
             tmpdir, key);
    expect_err(json, "tls.certificates[0].cert", "file not readable: ");
    assert_non_null(strstr(err, "/nope.crt (No such file or directory)"));
    snprintf(json, sizeof json, "{\"tls\":{\"certificates\":[{\"cert\":\"%s\",\"key\":\"%s\"}]}}",
             crt, tmpdir);
    expect_err(json, "tls.certificates[0].key", "(Is a directory)");
    snprintf(json, sizeof json,
             "{\"tls\":{\"certificates\":[{\"cert\":\"%s\",\"key\":\"%s\"},"
             "{\"cert\":\"%s\",\"key\":\"/a/b\"}]}}", crt, key, crt);
    snprintf(where, sizeof where, "tls.certificates[1].key");
    expect_err(json, where, "file not readable: /a/b (No such file or directory)");

    /* ocsp_response: optional, a path like the others */
    snprintf(json, sizeof json, "{\"tls\":{\"certificates\":[{\"cert\":\"%s\",\"key\":\"%s\","
             "\"ocsp_response\":\"%s\"}]}}", crt, key, crt);
    {
        px_config_t *c = ok(json);
        assert_string_equal(c->tls.certs[0].ocsp_file, crt);
        px_config_free(c);
    }
    snprintf(json, sizeof json, "{\"tls\":{\"certificates\":[{\"cert\":\"%s\",\"key\":\"%s\","
             "\"ocsp_response\":\"/a/b.der\"}]}}", crt, key);
    expect_err(json, "tls.certificates[0].ocsp_response",
               "file not readable: /a/b.der (No such file or directory)");
    snprintf(json, sizeof json, "{\"tls\":{\"certificates\":[{\"cert\":\"%s\",\"key\":\"%s\","
             "\"ocsp_response\":3}]}}", crt, key);
    expect_err(json, "tls.certificates[0].ocsp_response", "must be a string");
    snprintf(json, sizeof json, "{\"tls\":{\"certificates\":[{\"cert\":\"%s\",\"key\":\"%s\","
             "\"ocsp_issuer\":\"%s\"}]}}", crt, key, crt);
    expect_err(json, "tls.certificates[0].ocsp_issuer", "only used with ocsp_response");
    snprintf(json, sizeof json, "{\"tls\":{\"certificates\":[{\"cert\":\"%s\",\"key\":\"%s\","
             "\"ocsp_response\":\"%s\",\"ocsp_issuer\":\"/a/i.pem\"}]}}", crt, key, crt);
    expect_err(json, "tls.certificates[0].ocsp_issuer",
               "file not readable: /a/i.pem (No such file or directory)");
}

static void test_sni(void **state)
{
    static char member[1 << 14];
    const char *where = "tls.certificates[0].sni[1]";
    px_config_t *c;
    size_t n;

    c = ok(with("cert", "\"sni\":[\"A.B-C.example\",\"*.Example.COM\",\"x1\"]"));
    assert_int_equal(c->tls.certs[0].sni_count, 3);
    assert_string_equal(c->tls.certs[0].sni[0], "a.b-c.example");
    assert_string_equal(c->tls.certs[0].sni[1], "*.example.com");
    px_config_free(c);
    expect_ok_member("cert", "\"sni\":[]");

    static const char *const bad[] = { "\"a_b.com\"", "\"*\"", "\"*.\"", "\"a.*.com\"",
                                       "\"**.com\"", "\"foo..com\"", "\".foo.com\"",
                                       "\"foo.com.\"", "\"caf\\u00e9.com\"", "\"a b\"" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(member, sizeof member, "\"sni\":[\"ok.com\",%s]", bad[i]);
        expect_err(with("cert", member), where, "invalid DNS name");
    }
    expect_err(with("cert", "\"sni\":[\"ok.com\",\"\"]"), where, "must not be empty");
    expect_err(with("cert", "\"sni\":[\"ok.com\",5]"), where, "must be a string, got 5");
    expect_err(with("cert", "\"sni\":[\"ok.com\",\"OK.com\"]"), where, "duplicate name \"ok.com\"");
    expect_err(with("cert", "\"sni\":\"ok.com\""), "tls.certificates[0].sni", "must be an array");

    /* a 63-byte label fits, 64 does not; 253 bytes fit, 254 do not */
    n = (size_t)snprintf(member, sizeof member, "\"sni\":[\"ok.com\",\"");
    memset(member + n, 'a', 63);
    strcpy(member + n + 63, ".com\"]");
    expect_ok_member("cert", member);
    memset(member + n, 'a', 64);
    strcpy(member + n + 64, ".com\"]");
    expect_err(with("cert", member), where, "label longer than 63");
    for (int len = 253; len <= 254; len++) {
        n = (size_t)snprintf(member, sizeof member, "\"sni\":[\"ok.com\",\"");
        for (int i = 0; i < len; i++)
            member[n + (size_t)i] = (i % 50 == 49) ? '.' : 'a';
        member[n + (size_t)len - 1] = 'z';
        strcpy(member + n + (size_t)len, "\"]");
        if (len == 253)
            expect_ok_member("cert", member);
        else
            expect_err(with("cert", member), where, "longer than 253");
    }
    /* 16 names fit, 17 do not */
    for (int count = 16; count <= 17; count++) {
        n = (size_t)snprintf(member, sizeof member, "\"sni\":[");
        for (int i = 0; i < count; i++)
            n += (size_t)snprintf(member + n, sizeof member - n, "%s\"h%d.com\"", i ? "," : "", i);
        snprintf(member + n, sizeof member - n, "]");
        if (count == 16)
            expect_ok_member("cert", member);
        else
            expect_err(with("cert", member), "tls.certificates[0].sni", "got 17");
    }
}

static void test_groups(void **state)
{
    px_config_t *c;
    char g[256];

    c = ok(with("tls", "\"groups\":[\"X25519\",\"SecP256r1MLKEM768\"]"));
    assert_string_equal(group_names(c, g, sizeof g), "X25519,SecP256r1MLKEM768");
    px_config_free(c);
    expect_err(with("tls", "\"groups\":[\"X25519\",\"Kyber768\"]"), "tls.groups[1]",
               "unknown group \"Kyber768\" (known: X25519MLKEM768,");
    expect_err(with("tls", "\"groups\":[\"X25519MLKEM768\",\"x25519mlkem768\"]"), "tls.groups[1]",
               "duplicate group");
    expect_err(with("tls", "\"groups\":[\"X25519MLKEM768\",\"secp256r1\",\"P-256\"]"),
               "tls.groups[2]", "same as tls.groups[1]");
    expect_err(with("tls", "\"groups\":[]"), "tls.groups", "must list between 1 and 8");
    expect_err(with("tls", "\"groups\":[\"X25519MLKEM768\",\"SecP256r1MLKEM768\","
                           "\"SecP384r1MLKEM1024\",\"X25519\",\"secp256r1\",\"secp384r1\","
                           "\"secp521r1\",\"X448\",\"P-256\"]"),
               "tls.groups", "got 9");
    expect_ok_member("tls", "\"groups\":[\"X25519MLKEM768\",\"SecP256r1MLKEM768\","
                            "\"SecP384r1MLKEM1024\",\"X25519\",\"secp256r1\",\"secp384r1\","
                            "\"secp521r1\"]");
    /* a known group the linked wolfSSL cannot offer is refused at load,
     * whichever this build is (the project's wolfSSL has no X448) */
    if (px_probe_group(30))
        expect_ok_member("tls", "\"groups\":[\"X25519MLKEM768\",\"X448\"]");
    else
        expect_err(with("tls", "\"groups\":[\"X25519MLKEM768\",\"X448\"]"), "tls.groups[1]",
                   "group \"X448\" is not supported by this build's wolfSSL (supported: "
                   "X25519MLKEM768, SecP256r1MLKEM768, SecP384r1MLKEM1024, X25519,");
    expect_err(with("tls", "\"groups\":[29]"), "tls.groups[0]", "must be a string, got 29");
    expect_err(with("tls", "\"groups\":\"X25519\""), "tls.groups", "must be an array");
    /* require needs a hybrid group; prefer does not */
    expect_err(with("tls", "\"groups\":[\"X25519\",\"secp256r1\"]"), "tls.groups",
               "pq_policy \"require\" needs at least one hybrid");
    expect_err(with("tls", "\"groups\":[\"X25519\"],\"pq_policy\":\"require\""), "tls.groups",
               "hybrid");
    expect_ok_member("tls", "\"groups\":[\"X25519\"],\"pq_policy\":\"prefer\"");
}

static void test_alpn_and_client_ca(void **state)
{
    char member[1024];
    px_config_t *c;
    size_t n;

    c = ok(with("tls", "\"alpn\":[]"));
    assert_int_equal(c->tls.alpn_count, 0);
    assert_null(c->tls.alpn[0]);
    px_config_free(c);
    expect_ok_member("tls", "\"alpn\":[\"a\",\"b\",\"c\",\"d\"]");
    expect_err(with("tls", "\"alpn\":[\"a\",\"b\",\"c\",\"d\",\"e\"]"), "tls.alpn",
               "must list between 0 and 4");
    expect_err(with("tls", "\"alpn\":[\"h2\",\"\"]"), "tls.alpn[1]", "must not be empty");
    expect_err(with("tls", "\"alpn\":[\"h2\",\"h2\"]"), "tls.alpn[1]", "duplicate");
    expect_err(with("tls", "\"alpn\":[1]"), "tls.alpn[0]", "must be a string");
    expect_err(with("tls", "\"alpn\":\"h2\""), "tls.alpn", "must be an array");
    n = (size_t)snprintf(member, sizeof member, "\"alpn\":[\"");
    memset(member + n, 'p', 255);
    strcpy(member + n + 255, "\"]");
    expect_ok_member("tls", member);
    memset(member + n, 'p', 256);
    strcpy(member + n + 256, "\"]");
    expect_err(with("tls", member), "tls.alpn[0]", "1 to 255 bytes");

    expect_ok_member("tls", "\"client_ca\":null");
    snprintf(member, sizeof member, "\"client_ca\":\"%s\"", ca);
    c = ok(with("tls", member));
    assert_string_equal(c->tls.client_ca_file, ca);
    px_config_free(c);
    expect_err(with("tls", "\"client_ca\":\"/no/ca.pem\""), "tls.client_ca",
               "file not readable: /no/ca.pem (No such file or directory)");
    expect_err(with("tls", "\"client_ca\":true"), "tls.client_ca", "must be null or a file path");
    expect_err(with("tls", "\"client_ca\":\"\""), "tls.client_ca", "must be null or a file path");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_full_config),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_duplicate_and_object_types),
        cmocka_unit_test(test_integer_ranges),
        cmocka_unit_test(test_booleans),
        cmocka_unit_test(test_enums),
        cmocka_unit_test(test_mtls_keys),
        cmocka_unit_test(test_addr_parse),
        cmocka_unit_test(test_addresses_in_config),
        cmocka_unit_test(test_nul_in_strings),
        cmocka_unit_test(test_certificates),
        cmocka_unit_test(test_sni),
        cmocka_unit_test(test_groups),
        cmocka_unit_test(test_alpn_and_client_ca),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
