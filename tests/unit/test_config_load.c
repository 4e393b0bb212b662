/* Configuration loading: relative paths, malformed JSON with line/column,
 * px_config_load, PQPROXY_* environment overrides, the shipped config files
 * and the check-config command. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "cmd/certgen.h"
#include "config_fixture.h"

/* ---- log, paths ------------------------------------------------------------------ */

static void test_log_targets(void **state)
{
    char expect[PATH_MAX + 32];
    px_config_t *c;

    c = ok(with("log", "\"access_log\":\"stderr\",\"error_log\":\"stdout\""));
    assert_string_equal(c->log.access_log, "stderr");
    assert_string_equal(c->log.error_log, "stdout");
    px_config_free(c);
    c = ok(with("log", "\"access_log\":\"logs/access.log\",\"error_log\":\"./e.log\""));
    snprintf(expect, sizeof expect, "%s/logs/access.log", tmpdir);
    assert_string_equal(c->log.access_log, expect);
    snprintf(expect, sizeof expect, "%s/e.log", tmpdir);
    assert_string_equal(c->log.error_log, expect);
    px_config_free(c);
    expect_err(with("log", "\"error_log\":\"off\""), "log.error_log", "cannot be \"off\"");
    expect_err(with("log", "\"access_log\":\"\""), "log.access_log", "must not be empty");
    expect_err(with("log", "\"access_log\":false"), "log.access_log", "must be a string");
    expect_err(with("log", "\"error_log\":[]"), "log.error_log", "must be a string");
}

static void test_relative_paths(void **state)
{
    static char json[4096];
    char cwd[PATH_MAX], expect[2 * PATH_MAX];
    px_config_t *c;

    /* against the config file's directory, joined and tidied */
    snprintf(json, sizeof json,
             "{\"tls\":{\"certificates\":[{\"cert\":\"certs/server.crt\","
             "\"key\":\"./certs//server.key\"}]}}");
    c = ok(json);
    assert_string_equal(c->tls.certs[0].cert_file, rel_crt);
    assert_string_equal(c->tls.certs[0].key_file, rel_key);
    px_config_free(c);

    /* a relative config file name is taken from the current directory */
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(tmpdir), 0);
    c = px_config_parse(json, "cfg.json", err, sizeof err);
    if (!c)
        fail_msg("%s", err);
    assert_non_null(getcwd(expect, PATH_MAX));
    strcat(expect, "/certs/server.crt");
    assert_string_equal(c->tls.certs[0].cert_file, expect);
    px_config_free(c);
    c = px_config_parse(json, "./sub/../cfg.json", err, sizeof err); /* ".." kept lexically */
    assert_null(c);
    assert_non_null(strstr(err, "/sub/../certs/server.crt (No such file"));
    assert_int_equal(chdir(cwd), 0);

    /* absolute paths are kept (tidied) */
    snprintf(json, sizeof json,
             "{\"tls\":{\"certificates\":[{\"cert\":\"%s/./certs/server.crt\",\"key\":\"%s\"}]}}",
             tmpdir, rel_key);
    c = ok(json);
    assert_string_equal(c->tls.certs[0].cert_file, rel_crt);
    px_config_free(c);
}

/* ---- malformed JSON ------------------------------------------------------------- */

static void test_malformed_json(void **state)
{
    static char deep[4096];

    expect_err("{\n  \"listen\": \"0.0.0.0:1\",\n  \"workers\": }", "line 3, column 14",
               "malformed JSON: expected a value");
    expect_err("{\n  \"tls\": {\n    \"groups\": [1,]\n}", "line 3, column 18", "no trailing comma");
    expect_err("", "line 1, column 1", "unexpected end of input");
    expect_err("{\"a\": 1", "line 1, column 8", "missing ',' or '}' after this value");
    expect_err("{} x", "line 1, column 4", "more text after the end of the JSON value (at \"x\")");
    /* the fault itself, not the next token: a missing comma at the end of line 2 */
    expect_err("{\n  \"workers\": 2\n  \"listen\": \"0.0.0.0:1\"\n}", "line 2, column 15",
               "missing ',' or '}' after this value");
    expect_err("{'a': 1}", "line 1, column 2", "member name in double quotes");
    expect_err("\n\n\n   nul", "line 4, column 4", "malformed JSON");
    expect_err("{\"listen\": \"127.0.0.1:8443\\u0000x\"}", "listen",
               "NUL character (\\u0000 at line 1, column 27)");
    expect_err(NULL, "line 1, column 1", "no input");
    memset(deep, '[', sizeof deep - 1);
    assert_null(px_config_parse(deep, cfgfile, err, sizeof err)); /* nesting limit, no crash */
    assert_non_null(strstr(err, "cfg.json: line 1, column "));
    assert_null(px_config_parse("{", "x.json", NULL, 0)); /* no error buffer: no crash */
    assert_null(px_config_parse("{}", NULL, err, sizeof err));
    assert_non_null(strstr(err, "<config>: tls.certificates: required"));
}

/* ---- px_config_load and the environment -------------------------------------------- */

static void test_load_errors(void **state)
{
    char path[PATH_MAX + 32];
    FILE *f;

    snprintf(path, sizeof path, "%s/missing.json", tmpdir);
    assert_null(px_config_load(path, err, sizeof err));
    assert_non_null(strstr(err, "missing.json: cannot read: No such file or directory"));
    assert_null(px_config_load(tmpdir, err, sizeof err));
    assert_non_null(strstr(err, ": cannot read: Is a directory"));
    f = fopen(cfgfile, "w");
    assert_non_null(f);
    fwrite("{}\0{}", 1, 5, f);
    fclose(f);
    assert_null(px_config_load(cfgfile, err, sizeof err));
    assert_non_null(strstr(err, "cannot read: contains a NUL byte"));
    assert_null(px_config_load(NULL, err, sizeof err));
    /* 1 MiB is the limit: padding with spaces keeps the JSON valid */
    for (size_t size = (1u << 20); size <= (1u << 20) + 1; size++) {
        char *big = malloc(size + 1);
        assert_non_null(big);
        memset(big, ' ', size);
        memcpy(big, "{}", 2);
        big[size] = '\0';
        assert_null(load(big));
        free(big);
        if (size == (1u << 20))
            assert_non_null(strstr(err, "tls.certificates: required"));
        else
            assert_non_null(strstr(err, "cannot read: File too large"));
    }
    expect_load_err("{\"workers\": x}", "line 1, column 13", "malformed JSON");
}

static void test_env_overrides(void **state)
{
    static char json[4096];
    char cwd[PATH_MAX], expect[PATH_MAX + 32];
    px_config_t *c;

    clear_env();
    setenv("PQPROXY_LISTEN", "[::]:9443", 1);
    setenv("PQPROXY_UPSTREAM", "unix:/run/tfs.sock", 1);
    setenv("PQPROXY_ADMIN_LISTEN", "127.0.0.1:9999", 1);
    setenv("PQPROXY_WORKERS", "7", 1);
    setenv("PQPROXY_TLS_CERT", crt, 1);
    setenv("PQPROXY_TLS_KEY", key, 1);
    setenv("PQPROXY_TLS_CLIENT_CA", ca, 1);
    /* the file's certificate does not exist: the environment replaces it first */
    c = load("{\"workers\":2,\"tls\":{\"certificates\":[{\"cert\":\"/nope.crt\",\"key\":\"/nope.key\","
             "\"sni\":[\"a.com\"]}]}}");
    if (!c)
        fail_msg("%s", err);
    assert_string_equal(c->listen.host, "::");
    assert_int_equal(c->listen.port, 9443);
    assert_true(c->upstream.addr.is_unix);
    assert_string_equal(c->upstream.addr.host, "/run/tfs.sock");
    assert_int_equal(c->admin.addr.port, 9999);
    assert_int_equal(c->workers, 7);
    assert_string_equal(c->tls.certs[0].cert_file, crt);
    assert_string_equal(c->tls.certs[0].key_file, key);
    assert_int_equal(c->tls.certs[0].sni_count, 1); /* only the files are replaced */
    assert_string_equal(c->tls.client_ca_file, ca);
    px_config_free(c);

    /* px_config_parse ignores the environment */
    c = ok(minimal());
    assert_int_equal(c->listen.port, 8443);
    px_config_free(c);

    /* the environment can supply the only certificate */
    c = load("{}");
    if (!c)
        fail_msg("%s", err);
    assert_int_equal(c->tls.cert_count, 1);
    px_config_free(c);

    /* empty is unset; environment paths are relative to the current directory */
    clear_env();
    setenv("PQPROXY_LISTEN", "", 1);
    setenv("PQPROXY_TLS_CERT", "certs/server.crt", 1);
    setenv("PQPROXY_TLS_KEY", "certs/server.key", 1);
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(tmpdir), 0);
    c = load("{}");
    assert_non_null(getcwd(expect, PATH_MAX));
    assert_int_equal(chdir(cwd), 0);
    if (!c)
        fail_msg("%s", err);
    strcat(expect, "/certs/server.crt");
    assert_string_equal(c->tls.certs[0].cert_file, expect);
    assert_int_equal(c->listen.port, 8443);
    px_config_free(c);
    clear_env();

    snprintf(json, sizeof json, "%s", minimal());
    static const struct { const char *var, *value, *reason; } bad[] = {
        { "PQPROXY_LISTEN", "unix:/x.sock", "unix sockets are only supported" },
        { "PQPROXY_LISTEN", "host:80", "host must be" },
        { "PQPROXY_UPSTREAM", "model:8501", "invalid address \"model:8501\"" },
        { "PQPROXY_UPSTREAM", "127.0.0.1", "expected HOST:PORT" },
        { "PQPROXY_ADMIN_LISTEN", "[::1]:0", "port must be" },
        { "PQPROXY_WORKERS", "abc", "must be an integer between 0 and 256, got \"abc\"" },
        { "PQPROXY_WORKERS", "257", "between 0 and 256" },
        { "PQPROXY_WORKERS", "-1", "between 0 and 256" },
        { "PQPROXY_WORKERS", "4x", "between 0 and 256" },
        { "PQPROXY_WORKERS", "99999999999999999999", "between 0 and 256" },
        { "PQPROXY_TLS_CERT", "/x.crt", "must be set together" },
        { "PQPROXY_TLS_KEY", "/x.key", "must be set together" },
        { "PQPROXY_TLS_CLIENT_CA", "/no/ca.pem", "file not readable: /no/ca.pem" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char where[64];
        clear_env();
        setenv(bad[i].var, bad[i].value, 1);
        snprintf(where, sizeof where, "environment %s", bad[i].var);
        expect_load_err(json, where, bad[i].reason);
    }
    clear_env();
    setenv("PQPROXY_TLS_CERT", "/no/server.crt", 1);
    setenv("PQPROXY_TLS_KEY", key, 1);
    expect_load_err(json, "environment PQPROXY_TLS_CERT",
                    "file not readable: /no/server.crt (No such file or directory)");
    setenv("PQPROXY_TLS_CERT", crt, 1);
    setenv("PQPROXY_TLS_KEY", "/no/server.key", 1);
    expect_load_err(json, "environment PQPROXY_TLS_KEY", "file not readable: /no/server.key");
    clear_env();
    setenv("PQPROXY_WORKERS", "0", 1);
    c = load(json);
    assert_non_null(c);
    assert_true(c->workers >= 1);
    px_config_free(c);
    clear_env();
    expect_load_err("{}", "tls.certificates", "or set PQPROXY_TLS_CERT and PQPROXY_TLS_KEY");
}

/* PQPROXY_UPSTREAM_GRPC re-points upstreams.grpc only: its protocol and
 * the routes stay the file's; a file without it is refused, naming the variable. */
static void test_env_grpc_upstream(void **state)
{
    static char json[4096];
    px_config_t *c;
    (void)state;

    clear_env();
    setenv("PQPROXY_UPSTREAM_GRPC", "127.0.0.1:8001", 1);
    snprintf(json, sizeof json, "{\"tls\":{\"certificates\":[{\"cert\":\"%s\",\"key\":\"%s\"}]},"
             "\"upstreams\":{\"rest2\":{\"address\":\"127.0.0.1:8000\"},"
             "\"grpc\":{\"address\":\"127.0.0.1:8500\",\"protocol\":\"h2c\"}},"
             "\"routes\":[{\"prefix\":\"/\",\"grpc\":true,\"upstream\":\"grpc\"}]}", crt, key);
    c = load(json);
    if (!c)
        fail_msg("%s", err);
    assert_string_equal(c->upstreams[1].name, "grpc");
    assert_int_equal(c->upstreams[1].cfg.addr.port, 8001);
    assert_int_equal(c->upstreams[1].cfg.protocol, PX_UP_H2C);
    assert_int_equal(c->upstreams[0].cfg.addr.port, 8000);
    assert_int_equal(c->upstream.addr.port, 8501);
    assert_int_equal(c->routes[0].upstream, 2);
    px_config_free(c);
    setenv("PQPROXY_UPSTREAM_GRPC", "model:8500", 1);
    expect_load_err(json, "environment PQPROXY_UPSTREAM_GRPC", "invalid address \"model:8500\"");
    setenv("PQPROXY_UPSTREAM_GRPC", "127.0.0.1:8500", 1);
    snprintf(json, sizeof json, "%s", minimal());
    expect_load_err(json, "environment PQPROXY_UPSTREAM_GRPC", "the configuration has no upstreams.grpc");
    clear_env();
}

/* ---- shipped files and the command ------------------------------------------------- */

static void test_shipped_configs(void **state)
{
    static const char *const dirs[] = { PX_SOURCE_DIR "/config", PX_SOURCE_DIR "/config/examples" };
    int found = 0, saw_default = 0;

    clear_env();
    setenv("PQPROXY_TLS_CERT", crt, 1);
    setenv("PQPROXY_TLS_KEY", key, 1);
    for (int d = 0; d < 2; d++) {
        DIR *dir = opendir(dirs[d]);
        struct dirent *de;
        assert_non_null(dir);
        while ((de = readdir(dir))) {
            char path[PATH_MAX];
            size_t n = strlen(de->d_name);
            px_config_t *c;
            if (n < 6 || strcmp(de->d_name + n - 5, ".json"))
                continue;
            snprintf(path, sizeof path, "%s/%s", dirs[d], de->d_name);
            c = px_config_load(path, err, sizeof err);
            if (!c)
                fail_msg("shipped config does not load: %s", err);
            found++;
            if (d == 0 && !strcmp(de->d_name, "pqproxy.json")) {
                check_defaults(c); /* the documented default is the code's default */
                /* it writes out every section, signatures and routes included */
                assert_string_equal(c->sig.response_keyid, "pqproxy");
                /* upstreams and routes (no defaults: {} and []) front TF
                 * Serving's gRPC port beside REST, as make run's demo */
                assert_int_equal(c->upstream_count, 1);
                assert_string_equal(c->upstreams[0].name, "grpc");
                assert_int_equal(c->upstreams[0].cfg.addr.port, 8500);
                assert_int_equal(c->upstreams[0].cfg.protocol, PX_UP_H2C);
                assert_int_equal(c->route_count, 1);
                assert_true(c->routes[0].grpc && c->routes[0].upstream == 1 &&
                            !strcmp(c->routes[0].prefix, "/"));
                saw_default = 1;
            }
            px_config_free(c);
        }
        closedir(dir);
    }
    clear_env();
    assert_true(saw_default);
    assert_true(found >= 4);
}

/* `pqproxy check-config ...` through the command table, as main() runs it */
static int check_config_cmd(int argc, char **argv)
{
    for (const px_command_t *c = px_commands; c->name; c++)
        if (!strcmp(c->name, "check-config"))
            return c->main(argc, argv);
    fail_msg("no check-config command");
    return -1;
}

static void test_check_config_command(void **state)
{
    char *ok_argv[] = { "check-config", cfgfile, NULL };
    char *opt_argv[] = { "check-config", "--config", cfgfile, NULL };
    char *eq_argv[3];
    char eq[PATH_MAX + 16];
    char *none[] = { "check-config", NULL };
    char *two[] = { "check-config", cfgfile, cfgfile, NULL };
    char *badopt[] = { "check-config", "--frobnicate", NULL };
    char *noarg[] = { "check-config", "--config", NULL };
    char *help[] = { "check-config", "--help", NULL };
    char *missing[] = { "check-config", "/nonexistent/pqproxy.json", NULL };
    int saved_out = dup(1), saved_err = dup(2), null = open("/dev/null", O_WRONLY);
    px_pem_pair_t pki;

    /* check-config loads the certificate and key as run does: real ones */
    assert_int_equal(px_certgen_ca(PX_KEY_ECDSA_P256, "check-config", 1, &pki), 0);
    write_file(crt, pki.cert_pem);
    write_file(key, pki.key_pem);
    px_pem_pair_free(&pki);
    clear_env();
    write_file(cfgfile, minimal());
    snprintf(eq, sizeof eq, "--config=%s", cfgfile);
    eq_argv[0] = "check-config";
    eq_argv[1] = eq;
    eq_argv[2] = NULL;
    /* keep the test log readable */
    fflush(stdout);
    fflush(stderr);
    dup2(null, 1);
    dup2(null, 2);
    int r_ok = check_config_cmd(2, ok_argv);
    int r_opt = check_config_cmd(3, opt_argv);
    int r_eq = check_config_cmd(2, eq_argv);
    int r_none = check_config_cmd(1, none);
    int r_two = check_config_cmd(3, two);
    int r_badopt = check_config_cmd(2, badopt);
    int r_noarg = check_config_cmd(2, noarg);
    int r_help = check_config_cmd(2, help);
    int r_missing = check_config_cmd(2, missing);
    write_file(cfgfile, "{\"tls\":{\"gorups\":[]}}");
    int r_invalid = check_config_cmd(2, ok_argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    close(null);
    assert_int_equal(r_ok, 0);
    assert_int_equal(r_opt, 0);
    assert_int_equal(r_eq, 0);
    assert_int_equal(r_none, 2);
    assert_int_equal(r_two, 2);
    assert_int_equal(r_badopt, 2);
    assert_int_equal(r_noarg, 2);
    assert_int_equal(r_help, 0);
    assert_int_equal(r_missing, 1);
    assert_int_equal(r_invalid, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_targets),
        cmocka_unit_test(test_relative_paths),
        cmocka_unit_test(test_malformed_json),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_env_overrides),
        cmocka_unit_test(test_env_grpc_upstream),
        cmocka_unit_test(test_shipped_configs),
        cmocka_unit_test(test_check_config_command),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
