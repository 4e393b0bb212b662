/* OCSP stapling from a file (src/net/ocsp_staple.c) and the certificate fields
 * behind the expiry warning (src/net/certinfo.c, src/core/der.c), on the fixtures of
 * tests/data/ocsp (make.sh): every refusal names its reason, and "now" is
 * moved to check validity windows. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "net/certinfo.h"
#include "core/der.h"
#include "core/errors.h"
#include "net/ocsp_staple.h"

#define DATA PX_TEST_DATA "/ocsp/"

static char why[512];

static int load_issuer_at(const char *resp, const char *chain, const char *issuer, time_t now,
                          int64_t *next_update)
{
    px_ocsp_staple_t *s = NULL;
    int r;

    why[0] = 0;
    r = px_ocsp_staple_load("tls.certificates[0].ocsp_response", resp, chain, issuer, now, &s, why,
                            sizeof why);
    if (r == 0) {
        assert_non_null(s);
        if (next_update)
            *next_update = px_ocsp_staple_next_update(s);
    } else {
        assert_null(s);
    }
    px_ocsp_staple_free(s);
    return r;
}

static int load_at(const char *resp, const char *chain, time_t now, int64_t *next_update)
{
    return load_issuer_at(resp, chain, NULL, now, next_update);
}

static int load(const char *resp, const char *chain)
{
    return load_at(resp, chain, time(NULL), NULL);
}

static void refused(const char *resp, const char *chain, const char *reason)
{
    assert_int_not_equal(load(resp, chain), 0);
    if (!strstr(why, reason))
        fail_msg("expected \"%s\" in \"%s\"", reason, why);
}

static void test_der_time(void **state)
{
    px_der_t v;
    int64_t t;
    (void)state;
    v.p = (const uint8_t *)"700101000000Z"; v.n = 13;
    assert_int_equal(px_der_time(PX_DER_UTCTIME, &v, &t), 0);
    assert_int_equal(t, 0);
    v.p = (const uint8_t *)"491231235959Z";          /* UTCTime years < 50 are 20xx */
    assert_int_equal(px_der_time(PX_DER_UTCTIME, &v, &t), 0);
    assert_int_equal(t, 2524607999);
    v.p = (const uint8_t *)"20500101000000Z"; v.n = 15;
    assert_int_equal(px_der_time(PX_DER_GENTIME, &v, &t), 0);
    assert_int_equal(t, 2524608000);
    v.p = (const uint8_t *)"20240229120000Z";        /* leap day */
    assert_int_equal(px_der_time(PX_DER_GENTIME, &v, &t), 0);
    assert_int_equal(t, 1709208000);
    v.p = (const uint8_t *)"20241301000000Z";        /* month 13 */
    assert_int_not_equal(px_der_time(PX_DER_GENTIME, &v, &t), 0);
    v.p = (const uint8_t *)"20240101000000+";        /* not Z */
    assert_int_not_equal(px_der_time(PX_DER_GENTIME, &v, &t), 0);
    v.p = (const uint8_t *)"700101000000Z"; v.n = 13;
    assert_int_not_equal(px_der_time(PX_DER_GENTIME, &v, &t), 0);   /* wrong length for the tag */
}

static void test_der_overrun(void **state)
{
    static const uint8_t long_len[] = { 0x30, 0x82, 0x01, 0x00, 0x00 };   /* says 256 bytes, has 1 */
    static const uint8_t five_len[] = { 0x30, 0x85, 0, 0, 0, 0, 1, 0 };
    px_der_t r = { long_len, sizeof long_len }, v;
    unsigned tag;
    (void)state;
    assert_int_not_equal(px_der_next(&r, &tag, &v), 0);
    r.p = five_len;
    r.n = sizeof five_len;
    assert_int_not_equal(px_der_next(&r, &tag, &v), 0);
}

static void test_good_response_loads(void **state)
{
    px_chain_t chain;
    px_certinfo_t leaf;
    px_ocsp_info_t info;
    int64_t next = 0;
    (void)state;
    assert_int_equal(load_at(DATA "good.der", DATA "chain.pem", time(NULL), &next), 0);
    /* the same fields, read directly */
    assert_int_equal(px_chain_read(DATA "chain.pem", &chain, why, sizeof why), 0);
    assert_int_equal(chain.count, 2);
    assert_int_equal(px_certinfo_parse(chain.der[0], chain.len[0], &leaf), 0);
    assert_int_equal(leaf.serial_len, 2);
    assert_int_equal(leaf.serial[0], 0x10);
    assert_int_equal(leaf.serial[1], 0x01);
    assert_string_equal(leaf.subject, "/CN=localhost");
    {
        FILE *f = fopen(DATA "good.der", "rb");
        uint8_t buf[4096];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        assert_int_equal(px_ocsp_parse(buf, n, leaf.serial, leaf.serial_len, &info), 0);
    }
    assert_int_equal(info.status, 0);
    assert_true(info.found);
    assert_int_equal(info.cert_status, 0);
    assert_int_equal(info.next_update, next);
    assert_true(info.this_update < info.next_update);
    /* one second before nextUpdate it still loads; at nextUpdate it has expired */
    assert_int_equal(load_at(DATA "good.der", DATA "chain.pem", (time_t)next - 1, NULL), 0);
    assert_int_not_equal(load_at(DATA "good.der", DATA "chain.pem", (time_t)next, NULL), 0);
    assert_non_null(strstr(why, "expired: its nextUpdate"));
    assert_int_not_equal(load_at(DATA "good.der", DATA "chain.pem", (time_t)info.this_update - 1,
                                 NULL), 0);
    assert_non_null(strstr(why, "not valid yet"));
    px_chain_free(&chain);
}

static void test_refusals_name_the_reason(void **state)
{
    (void)state;
    refused(DATA "other.der", DATA "chain.pem",
            "for another certificate: it answers for serial 10:02, the certificate's serial is 10:01");
    refused(DATA "revoked.der", DATA "chain.pem", "the certificate is revoked");
    refused(DATA "trylater.der", DATA "chain.pem", "response status is tryLater (3), not successful");
    refused(DATA "forged.der", DATA "chain.pem", "not signed by the certificate's issuer");
    refused(DATA "leaf.pem", DATA "chain.pem", "is PEM; a DER OCSP response is expected");
    refused(DATA "make.sh", DATA "chain.pem", "is not a DER OCSP response");
    refused(DATA "good.der", DATA "leaf.pem", "is neither in the certificate's chain file nor in "
            "ocsp_issuer");
    /* the issuer given apart: the same response is accepted */
    assert_int_equal(load_issuer_at(DATA "good.der", DATA "leaf.pem", DATA "ca.pem", time(NULL),
                                    NULL), 0);
    /* ... but not from an impostor with the CA's name */
    assert_int_not_equal(load_issuer_at(DATA "good.der", DATA "leaf.pem", DATA "evil.pem",
                                        time(NULL), NULL), 0);
    refused(DATA "missing.der", DATA "chain.pem", "cannot read");
}

static void test_truncated_responses_refused(void **state)
{
    px_chain_t chain;
    px_certinfo_t leaf;
    px_ocsp_info_t info;
    uint8_t buf[4096];
    FILE *f = fopen(DATA "good.der", "rb");
    size_t n = fread(buf, 1, sizeof buf, f);
    (void)state;
    fclose(f);
    assert_int_equal(px_chain_read(DATA "chain.pem", &chain, why, sizeof why), 0);
    assert_int_equal(px_certinfo_parse(chain.der[0], chain.len[0], &leaf), 0);
    for (size_t k = 0; k < n; k++)
        assert_int_not_equal(px_ocsp_parse(buf, k, leaf.serial, leaf.serial_len, &info), 0);
    px_chain_free(&chain);
}

static void test_expiry_window(void **state)
{
    px_chain_t chain;
    px_certinfo_t leaf;
    int64_t na = 0;
    (void)state;
    assert_int_equal(px_chain_read(DATA "leaf.pem", &chain, why, sizeof why), 0);
    assert_int_equal(px_certinfo_parse(chain.der[0], chain.len[0], &leaf), 0);
    px_chain_free(&chain);
    /* 10 days before notAfter: inside a 30-day window, outside a 7-day one */
    assert_int_equal(px_cert_expiry_check("t", DATA "leaf.pem", 30,
                                          (time_t)(leaf.not_after - 10 * 86400), &na), 1);
    assert_int_equal(na, leaf.not_after);
    assert_int_equal(px_cert_expiry_check("t", DATA "leaf.pem", 7,
                                          (time_t)(leaf.not_after - 10 * 86400), NULL), 0);
    assert_int_equal(px_cert_expiry_check("t", DATA "leaf.pem", 0,
                                          (time_t)(leaf.not_after - 10 * 86400), NULL), 0);
    /* expired: warned whatever the window (but 0 turns warnings off) */
    assert_int_equal(px_cert_expiry_check("t", DATA "leaf.pem", 1, (time_t)(leaf.not_after + 1),
                                          NULL), 1);
    /* both certificates of a chain are looked at */
    assert_int_equal(px_cert_expiry_check("t", DATA "chain.pem", 36600, time(NULL), NULL), 2);
    /* a CA bundle with many certificates: each is looked at */
    {
        char bundle[] = "/tmp/px-ocsp-bundle-XXXXXX";
        int fd = mkstemp(bundle);
        FILE *in = fopen(DATA "ca.pem", "rb"), *out = fdopen(fd, "wb");
        char pem[4096];
        size_t n = fread(pem, 1, sizeof pem, in);
        fclose(in);
        for (int i = 0; i < 40; i++)
            fwrite(pem, 1, n, out);
        fclose(out);
        assert_int_equal(px_cert_expiry_check("t", bundle, 36600, time(NULL), NULL), 40);
        unlink(bundle);
    }
    assert_int_equal(px_cert_expiry_check("t", DATA "missing.pem", 30, time(NULL), &na), 0);
    assert_int_equal(na, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_der_time),
        cmocka_unit_test(test_der_overrun),
        cmocka_unit_test(test_good_response_loads),
        cmocka_unit_test(test_refusals_name_the_reason),
        cmocka_unit_test(test_truncated_responses_refused),
        cmocka_unit_test(test_expiry_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
