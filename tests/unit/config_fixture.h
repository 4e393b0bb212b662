/* Shared fixture for the configuration tests: temp certificate files, a
 * valid config with one member added anywhere, and error assertions that pin
 * the exact "FILE: key.path: " prefix. Included by test_config*.c only. */
#ifndef PX_TEST_CONFIG_FIXTURE_H
#define PX_TEST_CONFIG_FIXTURE_H

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/cli.h"
#include "config/config.h"
#include "core/errors.h"

/* Paths here are short temp paths in PATH_MAX buffers; truncation cannot happen. */
#pragma GCC diagnostic ignored "-Wformat-truncation"
/* Each test file uses a subset of the helpers. */
#pragma GCC diagnostic ignored "-Wunused-function"

static char tmpdir[PATH_MAX];                   /* mkdtemp */
static char crt[PATH_MAX], key[PATH_MAX], ca[PATH_MAX]; /* mkstemp files in tmpdir */
static char rel_crt[PATH_MAX], rel_key[PATH_MAX];       /* tmpdir/certs/server.{crt,key} */
static char cfgfile[PATH_MAX];                  /* tmpdir/cfg.json: name used in messages */
static char err[8192];

static const char *const env_vars[] = { "PQPROXY_LISTEN", "PQPROXY_UPSTREAM",
                                        "PQPROXY_UPSTREAM_GRPC", "PQPROXY_ADMIN_LISTEN", "PQPROXY_TLS_CERT",
                                        "PQPROXY_TLS_KEY", "PQPROXY_TLS_CLIENT_CA",
                                        "PQPROXY_WORKERS", NULL };

static void clear_env(void)
{
    for (int i = 0; env_vars[i]; i++)
        unsetenv(env_vars[i]);
}

static void make_temp(char *out, const char *name)
{
    int fd;
    snprintf(out, PATH_MAX, "%s/%s-XXXXXX", tmpdir, name);
    fd = mkstemp(out);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "x\n", 2), 2);
    close(fd);
}

static void touch(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    close(fd);
}

static int setup(void **state)
{
    char d[PATH_MAX];
    strcpy(tmpdir, "/tmp/pxcfg-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    make_temp(crt, "crt");
    make_temp(key, "key");
    make_temp(ca, "ca");
    snprintf(d, sizeof d, "%s/certs", tmpdir);
    mkdir(d, 0700);
    snprintf(rel_crt, sizeof rel_crt, "%s/certs/server.crt", tmpdir);
    snprintf(rel_key, sizeof rel_key, "%s/certs/server.key", tmpdir);
    touch(rel_crt);
    touch(rel_key);
    snprintf(cfgfile, sizeof cfgfile, "%s/cfg.json", tmpdir);
    clear_env();
    return 0;
}

static int teardown(void **state)
{
    char d[PATH_MAX];
    unlink(crt);
    unlink(key);
    unlink(ca);
    unlink(rel_crt);
    unlink(rel_key);
    unlink(cfgfile);
    snprintf(d, sizeof d, "%s/certs", tmpdir);
    rmdir(d);
    rmdir(tmpdir);
    return 0;
}

/* ---- helpers ------------------------------------------------------------- */

/* A complete valid config with `member` added inside `section`: "" (top
 * level), "tls", "cert" (certificates[0]) or another section name. */
static const char *with(const char *section, const char *member)
{
    static char buf[1 << 16];
    char cert[2 * PATH_MAX + 4096];
    int in_cert = !strcmp(section, "cert");

    snprintf(cert, sizeof cert, "{\"cert\":\"%s\",\"key\":\"%s\"%s%s}", crt, key,
             in_cert ? "," : "", in_cert ? member : "");
    if (!*section)
        snprintf(buf, sizeof buf, "{\"tls\":{\"certificates\":[%s]},%s}", cert, member);
    else if (!strcmp(section, "tls"))
        snprintf(buf, sizeof buf, "{\"tls\":{\"certificates\":[%s],%s}}", cert, member);
    else if (in_cert)
        snprintf(buf, sizeof buf, "{\"tls\":{\"certificates\":[%s]}}", cert);
    else
        snprintf(buf, sizeof buf, "{\"tls\":{\"certificates\":[%s]},\"%s\":{%s}}", cert, section,
                 member);
    return buf;
}

static const char *minimal(void)
{
    return with("", "\"workers\":0");
}

static px_config_t *ok(const char *json)
{
    px_config_t *c = px_config_parse(json, cfgfile, err, sizeof err);
    if (!c)
        fail_msg("unexpected error: %s\njson: %s", err, json);
    return c;
}

/* Must fail with "cfgfile: where: ..." containing `reason` (if given). */
static void expect_err(const char *json, const char *where, const char *reason)
{
    char prefix[PATH_MAX + 256];
    px_config_t *c = px_config_parse(json, cfgfile, err, sizeof err);

    if (c) {
        px_config_free(c);
        fail_msg("accepted, expected an error at %s\njson: %s", where, json);
    }
    snprintf(prefix, sizeof prefix, "%s: %s: ", cfgfile, where);
    if (strncmp(err, prefix, strlen(prefix)))
        fail_msg("error does not start with \"%s\":\n%s\njson: %s", prefix, err, json);
    if (reason && !strstr(err, reason))
        fail_msg("error lacks \"%s\":\n%s", reason, err);
}

static void expect_ok_member(const char *section, const char *member)
{
    px_config_free(ok(with(section, member)));
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* px_config_load on `json` written to cfgfile: NULL on error (message in err). */
static px_config_t *load(const char *json)
{
    write_file(cfgfile, json);
    return px_config_load(cfgfile, err, sizeof err);
}

static void expect_load_err(const char *json, const char *where, const char *reason)
{
    char prefix[PATH_MAX + 256];
    px_config_t *c = load(json);
    if (c) {
        px_config_free(c);
        fail_msg("accepted, expected an error at %s", where);
    }
    snprintf(prefix, sizeof prefix, "%s: %s: ", cfgfile, where);
    if (strncmp(err, prefix, strlen(prefix)))
        fail_msg("error does not start with \"%s\":\n%s", prefix, err);
    if (reason && !strstr(err, reason))
        fail_msg("error lacks \"%s\":\n%s", reason, err);
}

static const char *group_names(const px_config_t *c, char *buf, size_t len)
{
    buf[0] = '\0';
    for (int i = 0; i < c->tls.group_count; i++) {
        size_t n = strlen(buf);
        snprintf(buf + n, len - n, "%s%s", i ? "," : "", px_group_name(c->tls.groups[i]));
    }
    return buf;
}

static void check_defaults(const px_config_t *c)
{
    char g[256];
    assert_false(c->listen.is_unix);
    assert_string_equal(c->listen.host, "0.0.0.0");
    assert_int_equal(c->listen.port, 8443);
    assert_int_equal(c->tls.cert_expiry_warning_days, 30);
    assert_null(c->tls.certs[0].ocsp_file);
    assert_true(c->workers >= 1 && c->workers <= 256);
    assert_int_equal(c->max_connections, 10000);
    assert_int_equal(c->tls.cert_count, 1);
    assert_int_equal(c->tls.certs[0].sni_count, 0);
    assert_string_equal(group_names(c, g, sizeof g),
                        "X25519MLKEM768,SecP256r1MLKEM768,SecP384r1MLKEM1024,X25519");
    assert_int_equal(c->tls.pq_policy, PX_PQ_REQUIRE);
    assert_int_equal(c->tls.min_version, 13);
    assert_null(c->tls.client_ca_file);
    assert_int_equal(c->tls.client_verify, PX_CLIENT_VERIFY_REQUIRED);
    assert_int_equal(c->tls.client_verify_depth, 1);
    assert_int_equal(c->tls.client_crl_count, 0);
    assert_int_equal(c->tls.session_tickets, 1);
    assert_int_equal(c->tls.ticket_key_rotation_s, 3600);
    assert_int_equal(c->tls.alpn_count, 2);           /* HTTP/2 by default, HTTP/1.1 beside it */
    assert_string_equal(c->tls.alpn[0], "h2");
    assert_string_equal(c->tls.alpn[1], "http/1.1");
    assert_int_equal(c->tls.cipher_count, 3);   /* the TLS 1.3 AEAD suites */
    assert_int_equal(c->tls.ciphers[0], 0x1302);
    assert_int_equal(c->tls.ciphers[1], 0x1301);
    assert_int_equal(c->tls.ciphers[2], 0x1303);
    assert_string_equal(c->upstream.addr.host, "127.0.0.1");
    assert_int_equal(c->upstream.addr.port, 8501);
    assert_int_equal(c->upstream.pool_max_idle, 64);
    assert_int_equal(c->upstream.max_requests_per_conn, 0);
    assert_int_equal(c->http.max_header_bytes, 65536);
    assert_true(c->http.max_body_bytes == 64u << 20);   /* finite unless set to 0 */
    assert_int_equal(c->http.trust_forwarded, 0);
    assert_int_equal(c->http.max_requests_per_conn, 0);
    assert_int_equal(c->timeouts.handshake, 10000);
    assert_int_equal(c->timeouts.request_header, 15000);
    assert_int_equal(c->timeouts.body_idle, 30000);
    assert_int_equal(c->timeouts.request, 120000);
    assert_int_equal(c->timeouts.keepalive_idle, 75000);
    assert_int_equal(c->timeouts.upstream_connect, 3000);
    assert_int_equal(c->timeouts.upstream_response, 120000);
    assert_int_equal(c->timeouts.upstream_idle, 60000);
    assert_int_equal(c->timeouts.drain, 25000);
    assert_int_equal(c->log.level, PX_LOG_INFO);
    assert_string_equal(c->log.access_log, "stdout");
    assert_string_equal(c->log.error_log, "stderr");
    assert_int_equal(c->admin.enabled, 1);
    assert_string_equal(c->admin.addr.host, "127.0.0.1");
    assert_int_equal(c->admin.addr.port, 9901);
    assert_null(c->sig.keyring);
    assert_int_equal(c->sig.max_skew_s, 30);
    assert_int_equal(c->sig.max_validity_s, 300);
    assert_int_equal(c->sig.allow_classical, 0);
    assert_int_equal(c->sig.required_header_count, 0);
    assert_true(c->sig.max_signed_body_bytes == 8u << 20);
    assert_int_equal(c->sig.replay_cache_entries, 262144);
    assert_int_equal(c->sig.crypto_threads, 0);
    assert_null(c->sig.response_key);
    /* unset until a route signs responses, then "pqproxy" */
    assert_true(!c->sig.response_keyid || !strcmp(c->sig.response_keyid, "pqproxy"));
}

#endif
