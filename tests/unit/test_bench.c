/* `pqproxy bench crypto` in its fixed-iteration mode: the JSON report has
 * every row, every operation succeeded and took a positive time, and the
 * sizes of the encoded objects are exactly the FIPS 203 / FIPS 204 (and
 * RFC 7748 / 8032) constants. No timing threshold is asserted: the numbers
 * depend on the machine. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cmd/bench.h"

static cJSON *report;

static int run_bench(void **state)
{
    px_bench_opts_t o;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    int rc;
    (void)state;
    if (!f)
        return -1;
    memset(&o, 0, sizeof o);
    o.iterations = 2;
    o.json = 1;
    rc = px_bench_crypto(&o, f);
    fclose(f);
    if (rc != 0) {
        fprintf(stderr, "bench failed:\n%s\n", buf ? buf : "");
        free(buf);
        return -1;
    }
    report = cJSON_Parse(buf);
    if (!report)
        fprintf(stderr, "not JSON:\n%s\n", buf);
    free(buf);
    return report ? 0 : -1;
}

static int free_report(void **state)
{
    (void)state;
    cJSON_Delete(report);
    return 0;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v))
        fail_msg("%s is not a number", key);
    return v->valuedouble;
}

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(v))
        fail_msg("%s is not a string", key);
    return v->valuestring;
}

static void test_header(void **state)
{
    (void)state;
    assert_string_equal(str(report, "schema"), "pqproxy-bench-crypto/1");
    assert_string_equal(str(report, "mode"), "fixed-iterations");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(report, "ok")));
    assert_non_null(strstr(str(report, "wolfssl"), "."));
    assert_true(num(cJSON_GetObjectItem(report, "machine"), "cpus") >= 1);
}

/* The handshake against its primitives, in interleaved rounds (3 with a
 * fixed iteration count), each ratio = handshake / primitives of its round,
 * and the median one of them; the clock cost taken off every span is reported. */
static void test_handshake_ratio_rounds(void **state)
{
    const cJSON *h = cJSON_GetObjectItem(report, "handshake_vs_primitives"), *r;
    const cJSON *span = cJSON_GetObjectItem(report, "empty_span_ns");
    double ratios[3];
    int n = 0, median_found = 0;
    (void)state;
    assert_non_null(h);
    assert_string_equal(str(h, "handshake"), "tls13/x25519mlkem768/server");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(h, "rounds")), 3);
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(h, "rounds"))
    {
        double hs = num(r, "handshake_cpu_us"), prim = num(r, "primitives_cpu_us");
        assert_true(hs > 0 && prim > 0);
        assert_true(fabs(num(r, "ratio") - hs / prim) < 1e-9 * (hs / prim));
        ratios[n++] = num(r, "ratio");
    }
    for (int i = 0; i < n; i++)
        median_found |= ratios[i] == num(h, "median_ratio");
    assert_true(median_found);
    assert_true(num(span, "cpu") >= 0 && num(span, "wall") >= 0);
}

static const char *const expected_ops[] = {
    "rsa2048/keygen", "rsa2048/sign", "rsa2048/verify",
    "ecdsa-p256/keygen", "ecdsa-p256/sign", "ecdsa-p256/verify",
    "ecdsa-p384/keygen", "ecdsa-p384/sign", "ecdsa-p384/verify",
    "x25519/keygen", "x25519/shared",
    "ed25519/keygen", "ed25519/sign", "ed25519/verify",
    "mlkem512/keygen", "mlkem512/encaps", "mlkem512/decaps",
    "mlkem768/keygen", "mlkem768/encaps", "mlkem768/decaps",
    "mlkem1024/keygen", "mlkem1024/encaps", "mlkem1024/decaps",
    "mldsa44/keygen", "mldsa44/sign", "mldsa44/verify",
    "mldsa65/keygen", "mldsa65/sign", "mldsa65/verify",
    "mldsa87/keygen", "mldsa87/sign", "mldsa87/verify", "mldsa87/verify-fresh-key",
    "x25519mlkem768/client-keygen", "x25519mlkem768/server-encaps-x25519",
    "x25519mlkem768/client-decaps-x25519",
    "ecdsa-p384+mldsa87/dual-sign", "ecdsa-p384+mldsa87/dual-verify",
    "tls13/x25519mlkem768/server", "tls13/x25519mlkem768/client",
    "tls13/x25519/server", "tls13/x25519/client",
    "tls13/x25519mlkem768-mldsa65/server", "tls13/x25519mlkem768-mldsa65/client",
};

static void test_every_operation_ran(void **state)
{
    const cJSON *ops = cJSON_GetObjectItem(report, "operations");
    size_t n = sizeof expected_ops / sizeof expected_ops[0];
    (void)state;
    assert_true(cJSON_IsArray(ops));
    assert_int_equal(cJSON_GetArraySize(ops), n);
    for (size_t i = 0; i < n; i++) {
        const cJSON *o = cJSON_GetArrayItem(ops, (int)i);
        assert_string_equal(str(o, "id"), expected_ops[i]);
        assert_true(cJSON_IsTrue(cJSON_GetObjectItem(o, "ok")));
        assert_int_equal((int)num(o, "iterations"), 2);
        assert_true(num(o, "median_us") > 0);
        assert_true(num(o, "p99_us") > 0);
        assert_true(num(o, "p99_us") >= num(o, "median_us"));
        assert_true(num(o, "mean_us") > 0);
        assert_true(num(o, "ops_per_s") > 0);
        assert_true(num(o, "cpu_us_per_op") >= 0);
        assert_true(num(o, "wall_s") > 0);
    }
}

static void test_article_figures_beside(void **state)
{
    const cJSON *ops = cJSON_GetObjectItem(report, "operations"), *o;
    int seen = 0;
    (void)state;
    cJSON_ArrayForEach(o, ops) {
        const cJSON *a = cJSON_GetObjectItem(o, "article");
        if (!strcmp(str(o, "id"), "mlkem1024/keygen")) {
            assert_string_equal(str(a, "name"), "Kyber-1024 key generation");
            assert_true(num(a, "ms") == 12.3);
            seen++;
        } else if (!strcmp(str(o, "id"), "mldsa87/sign")) {
            assert_string_equal(str(a, "name"), "Dilithium-5 signature");
            seen++;
        } else if (!strcmp(str(o, "id"), "ecdsa-p256/sign")) {
            assert_true(num(a, "ms") == 1.8);
            seen++;
        }
    }
    assert_int_equal(seen, 3);
}

static const cJSON *size_row(const char *alg)
{
    const cJSON *o;
    cJSON_ArrayForEach(o, cJSON_GetObjectItem(report, "sizes"))
        if (!strcmp(str(o, "algorithm"), alg))
            return o;
    fail_msg("no sizes row for %s", alg);
    return NULL;
}

static void expect_sizes(const char *alg, const char *standard, int pub, int priv, int out)
{
    const cJSON *o = size_row(alg);
    assert_string_equal(str(o, "standard"), standard);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(o, "available")));
    if (pub >= 0)
        assert_int_equal((int)num(o, "public_key"), pub);
    if (priv >= 0)
        assert_int_equal((int)num(o, "private_key"), priv);
    if (out >= 0)
        assert_int_equal((int)num(o, "output"), out);
}

static void test_sizes_are_the_standards(void **state)
{
    (void)state;
    /* FIPS 203 Table 3: ek, dk, ciphertext */
    expect_sizes("ML-KEM-512", "FIPS 203", 800, 1632, 768);
    expect_sizes("ML-KEM-768", "FIPS 203", 1184, 2400, 1088);
    expect_sizes("ML-KEM-1024", "FIPS 203", 1568, 3168, 1568);
    /* FIPS 204 Table 2: pk, sk, signature */
    expect_sizes("ML-DSA-44", "FIPS 204", 1312, 2560, 2420);
    expect_sizes("ML-DSA-65", "FIPS 204", 1952, 4032, 3309);
    expect_sizes("ML-DSA-87", "FIPS 204", 2592, 4896, 4627);
    expect_sizes("X25519", "RFC 7748", 32, 32, 32);
    expect_sizes("Ed25519", "RFC 8032", 32, 32, 64);
    expect_sizes("ECDSA P-256", "FIPS 186-5", 65, 32, -1);
    expect_sizes("ECDSA P-384", "FIPS 186-5", 97, 48, -1);
    expect_sizes("RSA-2048", "RFC 8017", -1, -1, 256);
    /* draft-ietf-tls-ecdhe-mlkem: client share ek || X25519, server share c || X25519 */
    expect_sizes("X25519MLKEM768", "FIPS 203 + RFC 7748", 1184 + 32, -1, 1088 + 32);
    /* ECDSA DER signatures vary, within bounds */
    assert_in_range((int)num(size_row("ECDSA P-256"), "output"), 8, 72);
    assert_in_range((int)num(size_row("ECDSA P-384"), "output"), 8, 104);
    /* rows the article has but this build does not */
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(size_row("Falcon-1024"), "available")));
    assert_int_equal((int)num(cJSON_GetObjectItem(size_row("Falcon-1024"), "article"), "public_key"), 1793);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(size_row("SPHINCS+ / SLH-DSA"), "available")));
    assert_int_equal((int)num(cJSON_GetObjectItem(size_row("ML-DSA-87"), "article"), "output"), 4595);
}

static void test_tls_sizes(void **state)
{
    const cJSON *t = cJSON_GetObjectItem(report, "tls_handshake_bytes");
    const cJSON *hyb = cJSON_GetObjectItem(t, "X25519MLKEM768, ECDSA P-256");
    const cJSON *cls = cJSON_GetObjectItem(t, "X25519, ECDSA P-256");
    const cJSON *pq = cJSON_GetObjectItem(t, "X25519MLKEM768, ML-DSA-65");
    (void)state;
    assert_non_null(hyb);
    assert_non_null(cls);
    assert_non_null(pq);
    /* The hybrid key shares are exactly the ML-KEM-768 sizes larger than X25519's. */
    assert_int_equal((int)(num(hyb, "client_hello") - num(cls, "client_hello")), 1184);
    assert_int_equal((int)(num(hyb, "server_hello") - num(cls, "server_hello")), 1088);
    assert_int_equal((int)num(hyb, "certificate_msg"), (int)num(cls, "certificate_msg"));
    /* The Certificate message seen on the wire is the one computed from the DER. */
    assert_int_equal((int)num(pq, "certificate_msg"), (int)num(pq, "certificate_msg_computed"));
    assert_true(num(pq, "certificate_msg") > num(cls, "certificate_msg") + 1952);
    /* CertificateVerify: type(1) len(3) scheme(2) sig_len(2) + ML-DSA-65 signature */
    assert_int_equal((int)num(pq, "certificate_verify_msg"), 4 + 2 + 2 + 3309);
    assert_true(num(hyb, "total") > num(cls, "total"));
}

static void test_bandwidth(void **state)
{
    const cJSON *bw = cJSON_GetObjectItem(report, "bandwidth"), *o;
    (void)state;
    assert_int_equal(cJSON_GetArraySize(bw), 3);
    cJSON_ArrayForEach(o, bw) {
        assert_true(num(o, "X25519MLKEM768") > num(o, "X25519"));
        assert_true(num(o, "increase_pct") > 0);
        /* on an open connection the group makes no difference */
        assert_int_equal((int)num(o, "keepalive_X25519"), (int)num(o, "keepalive_X25519MLKEM768"));
    }
}

/* --only with a list: exactly the operations matching one of its items run. */
static void test_only_list(void **state)
{
    px_bench_opts_t o;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cJSON *r, *ops;
    int ran = 0;
    (void)state;
    assert_non_null(f);
    memset(&o, 0, sizeof o);
    o.iterations = 2;
    o.json = 1;
    o.only = "mlkem512/,ed25519/sign";
    assert_int_equal(px_bench_crypto(&o, f), 0);
    fclose(f);
    assert_non_null(r = cJSON_Parse(buf));
    free(buf);
    ops = cJSON_GetObjectItem(r, "operations");
    for (int i = 0; i < cJSON_GetArraySize(ops); i++) {
        const cJSON *op = cJSON_GetArrayItem(ops, i);
        const char *id = str(op, "id");
        int want = !strncmp(id, "mlkem512/", 9) || !strcmp(id, "ed25519/sign");
        assert_int_equal(cJSON_IsTrue(cJSON_GetObjectItem(op, "ran")), want);
        ran += want;
    }
    assert_int_equal(ran, 4);
    cJSON_Delete(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header),
        cmocka_unit_test(test_handshake_ratio_rounds),
        cmocka_unit_test(test_every_operation_ran),
        cmocka_unit_test(test_article_figures_beside),
        cmocka_unit_test(test_sizes_are_the_standards),
        cmocka_unit_test(test_tls_sizes),
        cmocka_unit_test(test_bandwidth),
        cmocka_unit_test(test_only_list),
    };
    return cmocka_run_group_tests(tests, run_bench, free_report);
}
