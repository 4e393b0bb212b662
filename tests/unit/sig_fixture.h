/* Shared helpers for the signature tests: test vector files (tests/data/sig,
 * docs/signatures.md section 10) and messages built from them. The
 * whole-file reader serves the certgen and inject tests too. */
#ifndef PX_SIG_FIXTURE_H
#define PX_SIG_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sig/sig.h"

#define SIG_DIR PX_TEST_DATA "/sig/"
#define V_CREATED 1767225600LL
#define V_NOW (V_CREATED + 10)
#define V_METHOD "POST"
#define V_AUTHORITY "model.example"
#define V_TARGET "/v1/models/half_plus_two:predict"

/* Whole file at path (NUL-terminated), or NULL if it cannot be opened. */
static __attribute__((unused)) char *fx_read_path(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)n;
    return buf;
}

/* A test vector file (absolute, or under SIG_DIR); fails the test if absent. */
static __attribute__((unused)) char *fx_read(const char *name, size_t *len)
{
    char path[1024], *buf;

    snprintf(path, sizeof path, "%s%s", name[0] == '/' ? "" : SIG_DIR, name);
    buf = fx_read_path(path, len);
    assert_non_null(buf);
    return buf;
}

/* A header set: "Name: value" lines parsed into px_header_t (owning copies). */
typedef struct {
    px_header_t h[16];
    char *store[16];
    int n;
} fx_hdrs_t;

static __attribute__((unused)) void fx_hdr_add(fx_hdrs_t *hs, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    char *s = malloc(nl + vl + 2);
    assert_non_null(s);
    assert_true(hs->n < 16);
    memcpy(s, name, nl + 1);
    memcpy(s + nl + 1, value, vl + 1);
    hs->store[hs->n] = s;
    hs->h[hs->n].name = s;
    hs->h[hs->n].name_len = nl;
    hs->h[hs->n].value = s + nl + 1;
    hs->h[hs->n].value_len = vl;
    hs->n++;
}

static __attribute__((unused)) void fx_hdrs_load(fx_hdrs_t *hs, const char *file)
{
    char *data = fx_read(file, NULL), *save = NULL;
    for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *colon = strchr(line, ':');
        assert_non_null(colon);
        *colon = '\0';
        fx_hdr_add(hs, line, colon + 2);
    }
    free(data);
}

static __attribute__((unused)) void fx_hdrs_free(fx_hdrs_t *hs)
{
    for (int i = 0; i < hs->n; i++)
        free(hs->store[i]);
    hs->n = 0;
}

/* The value of header name (first), or NULL. */
static __attribute__((unused)) const char *fx_hdr(const fx_hdrs_t *hs, const char *name)
{
    for (int i = 0; i < hs->n; i++)
        if (!strcasecmp(hs->h[i].name, name))
            return hs->h[i].value;
    return NULL;
}

/* Replaces the value of header name (adds it when absent). */
static __attribute__((unused)) void fx_hdr_set(fx_hdrs_t *hs, const char *name, const char *value)
{
    for (int i = 0; i < hs->n; i++)
        if (!strcasecmp(hs->h[i].name, name)) {
            size_t nl = strlen(name), vl = strlen(value);
            char *s = malloc(nl + vl + 2);
            assert_non_null(s);
            memcpy(s, name, nl + 1);
            memcpy(s + nl + 1, value, vl + 1);
            free(hs->store[i]);
            hs->store[i] = s;
            hs->h[i].name = s;
            hs->h[i].value = s + nl + 1;
            hs->h[i].value_len = vl;
            return;
        }
    fx_hdr_add(hs, name, value);
}

static __attribute__((unused)) void fx_request(px_sig_msg_t *m, const fx_hdrs_t *hs)
{
    memset(m, 0, sizeof *m);
    m->is_request = 1;
    m->method = V_METHOD;
    m->method_len = strlen(V_METHOD);
    m->authority = V_AUTHORITY;
    m->authority_len = strlen(V_AUTHORITY);
    m->target = V_TARGET;
    m->target_len = strlen(V_TARGET);
    m->headers = hs->h;
    m->header_count = hs->n;
}

static __attribute__((unused)) px_sig_keyring_t *fx_ring(void)
{
    char err[256];
    px_sig_keyring_t *r = px_sig_keyring_new();
    assert_non_null(r);
    assert_int_equal(px_sig_keyring_add_files(r, "client-a", SIG_DIR "client-a", err, sizeof err), 0);
    assert_int_equal(px_sig_keyring_add_files(r, "node-a", SIG_DIR "node-a", err, sizeof err), 0);
    assert_int_equal(px_sig_keyring_add_files(r, "pqproxy", SIG_DIR "pqproxy", err, sizeof err), 0);
    return r;
}

static __attribute__((unused)) px_digest_value_t fx_digest(const char *data, size_t len, int algs)
{
    px_digest_t d;
    px_digest_value_t v;
    assert_int_equal(px_digest_init(&d, algs), 0);
    px_digest_update(&d, data, len);
    px_digest_final(&d, &v);
    return v;
}

#endif
