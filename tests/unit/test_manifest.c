/* Model manifests (seal/manifest.c, seal/dsse.c, docs/model-signing.md):
 * the statement round trip, every refusal of the statement and envelope
 * parsers by its reason, path rules, signatures (both required, each
 * checked), and px_manifest_file_digest. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/errors.h"
#include "seal/dsse.h"
#include "seal/manifest.h"

#define KEYS PX_TEST_DATA "/sig/client-a"

/* A two-file manifest of alg as statement text (malloc'd). */
static char *base_statement(px_md_alg_t alg)
{
    px_manifest_t m;
    px_buf_t b;
    char *s;

    px_manifest_init(&m, alg);
    m.name = strdup("half_plus_two");
    assert_non_null(px_manifest_add(&m, "saved_model.pb", 7));
    assert_non_null(px_manifest_add(&m, "variables/variables.index", 0));
    for (int i = 0; i < (int)alg; i++) {
        m.e[0].digest[i] = (uint8_t)i;
        m.e[1].digest[i] = (uint8_t)(0xff - i);
    }
    px_buf_init(&b, 0);
    assert_int_equal(px_manifest_statement(&m, &b), 0);
    s = strndup(px_buf_ptr(&b), px_buf_size(&b));
    px_buf_free(&b);
    px_manifest_free(&m);
    return s;
}

/* text with the first `from` replaced by `to` (malloc'd). */
static char *replace(const char *text, const char *from, const char *to)
{
    const char *at = strstr(text, from);
    char *out;
    assert_non_null(at);
    assert_true(asprintf(&out, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from)) > 0);
    return out;
}

static int parse(const char *text, px_manifest_t *m, char *err)
{
    err[0] = '\0';
    return px_manifest_parse_statement(text, strlen(text), "M", m, err, 512);
}

static void test_round_trip(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        px_md_alg_t alg = k ? PX_MD_SHA384 : PX_MD_SHA256;
        char *s = base_statement(alg), err[512];
        px_manifest_t m;
        px_buf_t again;
        assert_int_equal(parse(s, &m, err), 0);
        assert_int_equal(m.alg, alg);
        assert_string_equal(m.name, "half_plus_two");
        assert_int_equal(m.n, 2);
        assert_string_equal(m.e[1].path, "variables/variables.index");
        assert_int_equal(m.e[0].size, 7);
        assert_int_equal(m.e[1].digest[alg - 1], 0xff - (alg - 1));
        assert_non_null(px_manifest_find(&m, "saved_model.pb"));
        assert_null(px_manifest_find(&m, "variables"));
        /* what was parsed writes back to the same bytes */
        px_buf_init(&again, 0);
        assert_int_equal(px_manifest_statement(&m, &again), 0);
        assert_int_equal(px_buf_size(&again), strlen(s));
        assert_memory_equal(px_buf_ptr(&again), s, strlen(s));
        px_buf_free(&again);
        px_manifest_free(&m);
        free(s);
    }
}

static void test_statement_refusals(void **state)
{
    static const struct {
        const char *from, *to, *why;
    } cases[] = {
        { "Statement/v1", "Statement/v0.1", "_type: must be \"https://in-toto.io/Statement/v1\"" },
        { "signature/v1.0", "Digests/v0.1", "predicateType: must be" },
        { "{\"_type\"", "{\"x\":1,\"_type\"", "x: unknown key" },
        { "{\"_type\"", "{\"subject\":[],\"_type\"", "subject: duplicate key" },
        { "\"subject\":[{", "\"subject\":[{\"name\":\"b\",\"digest\":{}},{", "subject: must list" },
        { "\"name\":\"half_plus_two\"", "\"name\":\"a/b\"", "subject[0].name: refused: contains '/'" },
        { "\"name\":\"half_plus_two\"", "\"name\":\"..\"", "subject[0].name: refused" },
        { "\"sha256\":\"", "\"sha256\":\"A", "subject[0].digest.sha256: must be 64 lowercase hex" },
        { "\"method\":\"files\"", "\"method\":\"shards\"", "method: must be \"files\"" },
        { "\"hash_type\":\"sha256\"", "\"hash_type\":\"md5\"", "hash_type" },
        { "\"allow_symlinks\":false", "\"allow_symlinks\":true", "allow_symlinks: must be false" },
        { "\"ignore_paths\":[]", "\"ignore_paths\":[\"x\"]", "ignore_paths: must list" },
        { ",\"ignore_paths\":[]", "", "ignore_paths: missing" },
        { "\"resources\":[", "\"resources\":[],\"r\":[", "predicate.r: unknown key" },
        { "\"algorithm\":\"sha256\"", "\"algorithm\":\"sha384\"", "algorithm: must be \"sha256\"" },
        { "\"digest\":\"00", "\"digest\":\"0A", "digest: must be 64 lowercase hex" },
        { "\"digest\":\"00", "\"digest\":\"0", "digest: must be 64 lowercase hex" },
        { "\"size\":7", "\"size\":-1", "size: must be an integer" },
        { "\"size\":7", "\"size\":1.5", "size: must be an integer" },
        { "\"size\":7", "\"size\":9007199254740992", "size: must be an integer" },
        { "\"size\":7", "\"size\":\"7\"", "size: must be an integer" },
        { ",\"size\":7", "", "size: missing" },
        { "\"size\":7", "\"size\":7,\"mode\":420", "mode: unknown key" },
        { "saved_model.pb", "../saved_model.pb", "name: refused: a '.' or '..' component" },
        { "saved_model.pb", "/saved_model.pb", "name: refused: an absolute path" },
        { "saved_model.pb", "a//b", "name: refused: an empty path component" },
        { "saved_model.pb", "a/", "name: refused: an empty path component" },
        { "saved_model.pb", "./a", "name: refused: a '.' or '..' component" },
        { "saved_model.pb", "a\\\\b", "name: refused: a control character or a backslash" },
        { "saved_model.pb", "a\\tb", "name: refused: a control character or a backslash" },
        { "saved_model.pb", "a\\u007fb", "name: refused: a control character" },
        { "\"name\":\"saved_model.pb\"", "\"name\":\"\"", "resources[0].name: must not be empty" },
        { "saved_model.pb", "zzz", "resources[1].name: out of order" },
        { "saved_model.pb", "variables/variables.index", "resources[1].name: duplicate" },
        { "saved_model.pb", "variables", "lies under \"variables\", which is a file" },
        { "\"sha256\":\"", "\"sha256\":\"0", "subject[0].digest.sha256: must be 64" },
        { "{\"_type\"", "[{\"_type\"", "not JSON" },
        { "\"_type\"", "\"_t\\u0000ype\"", "not JSON" },
    };
    char *base = base_statement(PX_MD_SHA256), err[512];
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *s = replace(base, cases[i].from, cases[i].to);
        px_manifest_t m;
        int r = parse(s, &m, err);
        if (r != PX_EPARSE || !strstr(err, cases[i].why))
            fail_msg("case %zu (%s -> %s): r=%d err='%s'", i, cases[i].from, cases[i].to, r, err);
        px_manifest_free(&m);
        free(s);
    }
    /* the subject digest over the resources: one digest byte changed */
    {
        char *s = replace(base, "\"digest\":\"0001", "\"digest\":\"0002");
        px_manifest_t m;
        assert_int_equal(parse(s, &m, err), PX_EPARSE);
        assert_non_null(strstr(err, "does not match the resources' digests"));
        px_manifest_free(&m);
        free(s);
    }
    /* no resources at all */
    {
        char *s = base_statement(PX_MD_SHA256), *t;
        char *open = strstr(s, "\"resources\":[") + strlen("\"resources\":[");
        t = strndup(s, (size_t)(open - s));
        char *u;
        assert_true(asprintf(&u, "%s]}}", t) > 0);
        px_manifest_t m;
        assert_int_equal(parse(u, &m, err), PX_EPARSE);
        assert_non_null(strstr(err, "resources: must list between 1"));
        px_manifest_free(&m);
        free(s), free(t), free(u);
    }
    free(base);
}

static void test_paths(void **state)
{
    char longc[300], longp[1100];
    (void)state;
    assert_null(px_manifest_path_problem("a"));
    assert_null(px_manifest_path_problem(".hidden/..x/x.."));
    assert_null(px_manifest_path_problem("d\xc3\xa9j\xc3\xa0/\"q\""));
    assert_non_null(px_manifest_path_problem(""));
    assert_non_null(px_manifest_path_problem("a/./b"));
    assert_non_null(px_manifest_path_problem("a/.."));
    assert_non_null(px_manifest_path_problem("\xff"));
    assert_non_null(px_manifest_path_problem("a\xc3"));
    memset(longc, 'a', 256);
    longc[256] = '\0';
    assert_string_equal(px_manifest_path_problem(longc), "a path component longer than 255 bytes");
    longc[255] = '\0';
    assert_null(px_manifest_path_problem(longc));
    for (int i = 0; i < 1025; i++)
        longp[i] = i % 2 ? '/' : 'a';
    longp[1025] = '\0';
    assert_string_equal(px_manifest_path_problem(longp), "longer than 1024 bytes");
    longp[1023] = '\0';
    assert_null(px_manifest_path_problem(longp));
}

static int dsse(const char *text, px_dsse_t *env, char *err)
{
    err[0] = '\0';
    return px_dsse_parse(text, strlen(text), "E", env, err, 512);
}

static void test_dsse(void **state)
{
    static const struct {
        const char *text, *why;
    } bad[] = {
        { "[]", "must be an object" },
        { "{\"payloadType\":\"t\",\"payload\":\"eA==\"}", "signatures: missing" },
        { "{\"payloadType\":\"t\",\"signatures\":[]}", "payload: missing" },
        { "{\"payload\":\"eA==\",\"signatures\":[]}", "payloadType: missing" },
        { "{\"payloadType\":\"t\",\"payload\":\"eA\",\"signatures\":[{\"keyid\":\"k\",\"sig\":\"eA==\"}]}",
          "payload: not canonical padded base64" },
        { "{\"payloadType\":\"t\",\"payload\":\"eB==\",\"signatures\":[{\"keyid\":\"k\",\"sig\":\"eA==\"}]}",
          "payload: not canonical padded base64" },
        { "{\"payloadType\":\"t\",\"payload\":\"eA==\",\"signatures\":[{\"keyid\":\"k\",\"sig\":\"e-==\"}]}",
          "signatures[0].sig: not canonical" },
        { "{\"payloadType\":\"t\",\"payload\":\"\",\"signatures\":[{\"keyid\":\"k\",\"sig\":\"eA==\"}]}",
          "payload: must not be empty" },
        { "{\"payloadType\":\"t\",\"payload\":\"eA==\",\"signatures\":[]}",
          "signatures: must list between 1 and 2" },
        { "{\"payloadType\":\"t\",\"payload\":\"eA==\",\"signatures\":[{\"keyid\":\"k\",\"sig\":\"eA==\"},"
          "{\"keyid\":\"k\",\"sig\":\"eA==\"}]}", "signatures[1].keyid: the same keyid as signatures[0]" },
        { "{\"payloadType\":\"t\",\"payload\":\"eA==\",\"signatures\":[{\"keyid\":\"a b\",\"sig\":\"eA==\"}]}",
          "signatures[0].keyid: must be 1..128 printable" },
        { "{\"payloadType\":\"t\",\"payload\":\"eA==\",\"signatures\":[{\"sig\":\"eA==\"}]}",
          "signatures[0].keyid: missing" },
        { "{\"payloadType\":\"t\",\"payload\":\"eA==\",\"signatures\":[{\"keyid\":\"k\",\"sig\":\"eA==\",\"x\":0}]}",
          "signatures[0].x: unknown key" },
        { "{\"payloadType\":\"t\",\"payload\":\"eA==\",\"signatures\":[{\"keyid\":\"k\",\"sig\":\"eA==\"}]} x",
          "not a DSSE envelope" },
        { "{\"payloadType\":\"t\",\"payload\":\"eA==\",\"payload\":\"eA==\",\"signatures\":[]}",
          "payload: duplicate key" },
        /* escapes the envelope writer would not reproduce (found by fuzzing) */
        { "{\"payloadType\":\"a\\tb\",\"payload\":\"eA==\",\"signatures\":[{\"keyid\":\"k\",\"sig\":\"eA==\"}]}",
          "payloadType: must be 1..256 printable ASCII characters, no" },
        { "{\"payloadType\":\"a\\\"b\",\"payload\":\"eA==\",\"signatures\":[{\"keyid\":\"k\",\"sig\":\"eA==\"}]}",
          "payloadType: must be" },
        { "{\"payloadType\":\"t\",\"payload\":\"eA==\",\"signatures\":[{\"keyid\":\"k\\\\\",\"sig\":\"eA==\"}]}",
          "signatures[0].keyid: must be 1..128 printable ASCII characters, no" },
    };
    const char *good = "{\"payloadType\":\"t\",\"payload\":\"eA==\",\"signatures\":"
                       "[{\"keyid\":\"k1\",\"sig\":\"AAE=\"},{\"keyid\":\"k2\",\"sig\":\"Ag==\"}]}";
    px_dsse_t env;
    px_buf_t b;
    char err[512];
    (void)state;
    assert_int_equal(dsse(good, &env, err), 0);
    assert_string_equal(env.payload_type, "t");
    assert_int_equal(env.payload_len, 1);
    assert_int_equal(env.payload[0], 'x');
    assert_int_equal(env.nsigs, 2);
    assert_string_equal(env.sigs[1].keyid, "k2");
    assert_int_equal(env.sigs[0].sig_len, 2);
    /* build writes what parse read */
    px_buf_init(&b, 0);
    assert_int_equal(px_dsse_build("t", env.payload, env.payload_len, env.sigs, 2, &b), 0);
    assert_int_equal(px_buf_size(&b), strlen(good) + 1);
    assert_memory_equal(px_buf_ptr(&b), good, strlen(good));
    px_buf_free(&b);
    px_dsse_free(&env);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int r = dsse(bad[i].text, &env, err);
        if (r != PX_EPARSE || !strstr(err, bad[i].why))
            fail_msg("case %zu: r=%d err='%s'", i, r, err);
        px_dsse_free(&env);
    }
    /* a signature over the size limit */
    {
        size_t n = (PX_DSSE_MAX_SIG + 3) / 3 * 4 + 4;
        char *big = malloc(n + 200), *p;
        p = big + sprintf(big, "{\"payloadType\":\"t\",\"payload\":\"eA==\",\"signatures\":[{\"keyid\":"
                          "\"k\",\"sig\":\"");
        memset(p, 'A', n);
        strcpy(p + n, "\"}]}");
        assert_int_equal(dsse(big, &env, err), PX_EPARSE);
        assert_non_null(strstr(err, "longer than 8192 bytes"));
        px_dsse_free(&env);
        free(big);
    }
    /* PAE, as the DSSE protocol gives it */
    px_buf_init(&b, 0);
    assert_int_equal(px_dsse_pae("http://example.com/HelloWorld", (const uint8_t *)"hello world",
                                 11, &b), 0);
    assert_int_equal(px_buf_size(&b), strlen("DSSEv1 29 http://example.com/HelloWorld 11 hello world"));
    assert_memory_equal(px_buf_ptr(&b), "DSSEv1 29 http://example.com/HelloWorld 11 hello world",
                        px_buf_size(&b));
    px_buf_free(&b);
}

static px_sig_signer_t *signer(uint8_t *ec, uint8_t *ml)
{
    px_sig_signer_t *s = NULL;
    char err[256];
    if (px_sig_signer_load(KEYS, "client-a", &s, err, sizeof err) != 0)
        fail_msg("%s", err);
    px_sig_signer_public(s, ec, ml);
    return s;
}

static int verify(const px_buf_t *env, const uint8_t *ec, const uint8_t *ml, px_manifest_t *m,
                  char *err)
{
    err[0] = '\0';
    return px_manifest_verify(px_buf_ptr(env), px_buf_size(env), "E", ec, ml, m, err, 512);
}

static void test_signatures(void **state)
{
    static uint8_t ml[PX_SIG_MLDSA_PUB_LEN], ml2[PX_SIG_MLDSA_PUB_LEN];
    uint8_t ec[PX_SIG_ECDSA_PUB_LEN], ec2[PX_SIG_ECDSA_PUB_LEN];
    px_sig_signer_t *s = signer(ec, ml), *s2 = NULL;
    char *stmt = base_statement(PX_MD_SHA384), *bad, err[512];
    px_manifest_t m;
    px_buf_t env;
    px_dsse_t d;
    (void)state;

    px_buf_init(&env, 0);
    assert_int_equal(px_manifest_sign_payload((const uint8_t *)stmt, strlen(stmt), s, &env, err,
                                              sizeof err), 0);
    assert_int_equal(verify(&env, ec, ml, &m, err), 0);
    assert_int_equal(m.n, 2);
    assert_int_equal(m.alg, PX_MD_SHA384);
    px_manifest_free(&m);

    /* another key pair: neither keyid is ours */
    assert_int_equal(px_sig_signer_load(PX_TEST_DATA "/sig/node-a", "node-a", &s2, err, sizeof err), 0);
    px_sig_signer_public(s2, ec2, ml2);
    assert_int_equal(verify(&env, ec2, ml2, &m, err), PX_ECRYPTO);
    assert_non_null(strstr(err, "is neither the given ECDSA P-384 key"));
    px_manifest_free(&m);
    /* our ECDSA key with their ML-DSA key: the ML-DSA signature is missing */
    assert_int_equal(verify(&env, ec, ml2, &m, err), PX_ECRYPTO);
    assert_non_null(strstr(err, "is neither"));
    px_manifest_free(&m);

    /* each signature checked: flip one byte of each in turn */
    for (int which = 0; which < 2; which++) {
        px_buf_t e2;
        char dummy[64];
        assert_int_equal(px_dsse_parse(px_buf_ptr(&env), px_buf_size(&env), "E", &d, dummy,
                                       sizeof dummy), 0);
        d.sigs[which].sig[which ? 100 : d.sigs[0].sig_len - 1] ^= 1;
        px_buf_init(&e2, 0);
        assert_int_equal(px_dsse_build(d.payload_type, d.payload, d.payload_len, d.sigs, 2, &e2), 0);
        assert_int_equal(verify(&e2, ec, ml, &m, err), PX_ECRYPTO);
        assert_non_null(strstr(err, which ? "the ML-DSA-87 signature does not verify"
                                          : "the ECDSA P-384 signature does not verify"));
        px_manifest_free(&m);
        /* and with only the other signature left */
        d.sigs[which].sig[which ? 100 : d.sigs[0].sig_len - 1] ^= 1;
        px_buf_reset(&e2);
        assert_int_equal(px_dsse_build(d.payload_type, d.payload, d.payload_len,
                                       &d.sigs[which ? 0 : 1], 1, &e2), 0);
        assert_int_equal(verify(&e2, ec, ml, &m, err), PX_ECRYPTO);
        assert_non_null(strstr(err, which ? "no ML-DSA-87 signature" : "no ECDSA P-384 signature"));
        px_manifest_free(&m);
        px_buf_free(&e2);
        px_dsse_free(&d);
    }

    /* a validly signed statement with a path that climbs out is still refused */
    bad = replace(stmt, "saved_model.pb", "../../etc/cron.d/x");
    px_buf_reset(&env);
    assert_int_equal(px_manifest_sign_payload((const uint8_t *)bad, strlen(bad), s, &env, err,
                                              sizeof err), 0);
    assert_int_equal(verify(&env, ec, ml, &m, err), PX_EPARSE);
    assert_non_null(strstr(err, "resources[0].name: refused: a '.' or '..' component"));
    px_manifest_free(&m);
    free(bad);
    bad = replace(stmt, "saved_model.pb", "/etc/passwd");
    px_buf_reset(&env);
    assert_int_equal(px_manifest_sign_payload((const uint8_t *)bad, strlen(bad), s, &env, err,
                                              sizeof err), 0);
    assert_int_equal(verify(&env, ec, ml, &m, err), PX_EPARSE);
    assert_non_null(strstr(err, "refused: an absolute path"));
    px_manifest_free(&m);
    free(bad);

    px_buf_free(&env);
    px_sig_signer_free(s);
    px_sig_signer_free(s2);
    free(stmt);
}

static void test_file_digest(void **state)
{
    char path[] = "/tmp/px-manifest-XXXXXX";
    uint8_t d[32];
    static const uint8_t abc[32] = { 0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
                                     0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
                                     0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad };
    int fd = mkstemp(path);
    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "abc", 3), 3);
    close(fd);
    assert_int_equal(px_manifest_file_digest(path, d), 0);
    assert_memory_equal(d, abc, 32);
    unlink(path);
    assert_int_equal(px_manifest_file_digest(path, d), PX_EIO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_statement_refusals),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_dsse),
        cmocka_unit_test(test_signatures),
        cmocka_unit_test(test_file_digest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
