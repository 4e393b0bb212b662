/* Client certificate identity (src/net/clientcert.c): the subject as RFC 4514
 * text, the SANs, and the x-forwarded-client-cert and access-log texts made
 * of them, with hostile bytes (quotes, commas, semicolons, CR, LF, NUL) in
 * the certificate. The certificates are built here byte by byte, so each
 * case holds exactly the bytes it is about. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "cmd/certgen.h"
#include "net/clientcert.h"
#include "core/errors.h"

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn_public.h>

typedef struct {
    uint8_t b[4096];
    size_t n;
} buf_t;

/* Appends tag + DER length + content. */
static void tlv(buf_t *o, uint8_t tag, const void *p, size_t len)
{
    assert_true(o->n + len + 4 < sizeof o->b);
    o->b[o->n++] = tag;
    if (len < 0x80) {
        o->b[o->n++] = (uint8_t)len;
    } else {
        o->b[o->n++] = 0x82;
        o->b[o->n++] = (uint8_t)(len >> 8);
        o->b[o->n++] = (uint8_t)len;
    }
    memcpy(o->b + o->n, p, len);
    o->n += len;
}

static void wrap(buf_t *o, uint8_t tag, const buf_t *in)
{
    tlv(o, tag, in->b, in->n);
}

static const uint8_t OID_CN[] = { 0x55, 0x04, 0x03 }, OID_O[] = { 0x55, 0x04, 0x0a },
                     OID_C[] = { 0x55, 0x04, 0x06 }, OID_SAN[] = { 0x55, 0x1d, 0x11 },
                     OID_ODD[] = { 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x01 };

/* One RDN (a SET) with one attribute into name. */
static void rdn(buf_t *name, const uint8_t *oid, size_t oid_len, uint8_t tag, const void *v,
                size_t len)
{
    buf_t atv = { .n = 0 }, set = { .n = 0 };
    tlv(&atv, 0x06, oid, oid_len);
    tlv(&atv, tag, v, len);
    wrap(&set, 0x30, &atv);
    wrap(name, 0x31, &set);
}

static void name_der(buf_t *out, const buf_t *rdns)
{
    out->n = 0;
    wrap(out, 0x30, rdns);
}

/* A certificate with this subject (a Name's content) and GeneralNames
 * content (NULL: no SAN extension). Signature bytes are not checked here. */
static void cert_der(buf_t *out, const buf_t *subject_rdns, const buf_t *gnames)
{
    static const uint8_t v3[] = { 0x02, 0x01, 0x02 }, serial[] = { 0x01 },
                         sigalg[] = { 0x06, 0x03, 0x2b, 0x65, 0x70 };
    buf_t tbs = { .n = 0 }, issuer = { .n = 0 }, t = { .n = 0 }, cert = { .n = 0 };

    tlv(&tbs, 0xa0, v3, sizeof v3);
    tlv(&tbs, 0x02, serial, 1);
    tlv(&tbs, 0x30, sigalg, sizeof sigalg);
    rdn(&issuer, OID_CN, 3, 0x0c, "ca", 2);
    wrap(&tbs, 0x30, &issuer);
    tlv(&tbs, 0x30, "", 0);                            /* validity: not read */
    wrap(&tbs, 0x30, subject_rdns);
    tlv(&tbs, 0x30, sigalg, sizeof sigalg);            /* public key: not read */
    if (gnames) {
        buf_t gn = { .n = 0 }, ext = { .n = 0 }, exts = { .n = 0 }, seq = { .n = 0 };
        wrap(&gn, 0x30, gnames);
        tlv(&ext, 0x06, OID_SAN, sizeof OID_SAN);
        tlv(&ext, 0x01, "\x00", 1);                    /* critical FALSE */
        wrap(&ext, 0x04, &gn);
        wrap(&exts, 0x30, &ext);
        wrap(&seq, 0x30, &exts);
        wrap(&tbs, 0xa3, &seq);
    }
    wrap(&t, 0x30, &tbs);
    tlv(&t, 0x30, sigalg, sizeof sigalg);
    tlv(&t, 0x03, "\x00\x01", 2);
    wrap(&cert, 0x30, &t);
    *out = cert;
}

static void test_dn_order_and_specials(void **state)
{
    buf_t rdns = { .n = 0 }, name;
    char out[256];
    (void)state;

    rdn(&rdns, OID_C, 3, 0x13, "US", 2);
    rdn(&rdns, OID_O, 3, 0x0c, "Acme, \"Inc\"; <x>+y\\", 19);
    rdn(&rdns, OID_CN, 3, 0x0c, " #lead ", 7);      /* '#' is special only first */
    rdn(&rdns, OID_CN, 3, 0x0c, "#x", 2);
    name_der(&name, &rdns);
    assert_int_equal(px_clientcert_dn(name.b, name.n, out, sizeof out), 0);
    assert_string_equal(out, "CN=\\#x,CN=\\ #lead\\ ,O=Acme\\, \\\"Inc\\\"\\; \\<x\\>\\+y\\\\,C=US");
}

static void test_dn_control_bytes_escaped(void **state)
{
    buf_t rdns = { .n = 0 }, name;
    char out[256];
    (void)state;

    /* CR, LF, NUL and a UTF-8 e-acute: all as \XX, nothing raw */
    rdn(&rdns, OID_CN, 3, 0x0c, "a\r\nX-Evil: 1\0b\xc3\xa9", 16);
    name_der(&name, &rdns);
    assert_int_equal(px_clientcert_dn(name.b, name.n, out, sizeof out), 0);
    assert_string_equal(out, "CN=a\\0D\\0AX-Evil: 1\\00b\\C3\\A9");
    for (const char *p = out; *p; p++)
        assert_true(*p >= 0x20 && *p < 0x7f);
}

static void test_dn_unknown_type_and_non_string(void **state)
{
    buf_t rdns = { .n = 0 }, name;
    char out[256];
    (void)state;

    rdn(&rdns, OID_ODD, sizeof OID_ODD, 0x02, "\x05", 1);   /* an INTEGER value */
    name_der(&name, &rdns);
    assert_int_equal(px_clientcert_dn(name.b, name.n, out, sizeof out), 0);
    assert_string_equal(out, "1.3.6.1.4.1.311.1=#020105");
}

static void test_dn_truncates_whole_attributes(void **state)
{
    buf_t rdns = { .n = 0 }, name;
    char out[16];
    (void)state;

    rdn(&rdns, OID_O, 3, 0x0c, "organisation", 12);
    rdn(&rdns, OID_CN, 3, 0x0c, "abc", 3);
    name_der(&name, &rdns);
    assert_int_equal(px_clientcert_dn(name.b, name.n, out, sizeof out), PX_ETOOBIG);
    assert_string_equal(out, "CN=abc");
}

static void test_dn_malformed(void **state)
{
    static const uint8_t bad[][8] = {
        { 0x30, 0x05, 0x31, 0x03, 0x30, 0x01 },          /* length past the end */
        { 0x30, 0x02, 0x30, 0x00 },                      /* RDN not a SET */
        { 0x30, 0x84, 0xff, 0xff, 0xff, 0xff },          /* huge length */
        { 0x31, 0x00 },                                  /* not a SEQUENCE */
    };
    static const size_t len[] = { 6, 4, 6, 2 };
    char out[64];
    (void)state;
    for (size_t i = 0; i < sizeof len / sizeof len[0]; i++)
        assert_int_equal(px_clientcert_dn(bad[i], len[i], out, sizeof out), PX_EPARSE);
}

static void test_sans_and_xfcc(void **state)
{
    buf_t rdns = { .n = 0 }, gn = { .n = 0 }, der;
    px_clientcert_t cc;
    char x[PX_XFCC_MAX], j[PX_CC_LOG_MAX];
    (void)state;

    rdn(&rdns, OID_O, 3, 0x0c, "a;b", 3);
    rdn(&rdns, OID_CN, 3, 0x0c, "x\"y,z", 5);
    tlv(&gn, 0x82, "api.example", 11);
    tlv(&gn, 0x86, "spiffe://acme/ns/a", 18);
    tlv(&gn, 0x86, "https://h/p?a=1;b", 17);               /* needs quoting */
    tlv(&gn, 0x81, "bot@example.org", 15);
    tlv(&gn, 0x87, "\x0a\x00\x00\x07", 4);
    tlv(&gn, 0x87, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
    tlv(&gn, 0x82, "evil\r\nX-A: b", 12);                  /* left out */
    tlv(&gn, 0xa4, "\x30\x00", 2);                         /* directoryName: ignored */
    cert_der(&der, &rdns, &gn);
    assert_int_equal(px_clientcert_parse(der.b, der.n, &cc), 0);
    assert_string_equal(cc.subject, "CN=x\\\"y\\,z,O=a\\;b");
    assert_int_equal(strlen(cc.sha256), 64);
    assert_int_equal(cc.san_count[PX_SAN_DNS], 1);
    assert_int_equal(cc.san_count[PX_SAN_URI], 2);
    assert_string_equal(cc.san[PX_SAN_EMAIL][0], "bot@example.org");
    assert_string_equal(cc.san[PX_SAN_IP][0], "10.0.0.7");
    assert_string_equal(cc.san[PX_SAN_IP][1], "2001:db8::1");
    assert_int_equal(cc.san_skipped, 1);

    px_clientcert_xfcc(&cc, x, sizeof x);
    char want[512];
    snprintf(want, sizeof want,
             "Hash=%s;Subject=\"CN=x\\\"y\\,z,O=a\\;b\";URI=spiffe://acme/ns/a;"
             "URI=\"https://h/p?a=1;b\";DNS=api.example",
             cc.sha256);
    assert_string_equal(x, want);

    px_clientcert_log_json(&cc, j, sizeof j);
    snprintf(want, sizeof want,
             "{\"subject\":\"CN=x\\\\\\\"y\\\\,z,O=a\\\\;b\",\"sha256\":\"%s\","
             "\"dns\":[\"api.example\"],\"uri\":[\"spiffe://acme/ns/a\",\"https://h/p?a=1;b\"],"
             "\"email\":[\"bot@example.org\"],\"ip\":[\"10.0.0.7\",\"2001:db8::1\"]}",
             cc.sha256);
    assert_string_equal(j, want);
}

static void test_xfcc_quotes_in_san(void **state)
{
    px_clientcert_t cc;
    char x[256];
    (void)state;
    memset(&cc, 0, sizeof cc);
    strcpy(cc.sha256, "ab");
    strcpy(cc.subject, "CN=a");
    strcpy(cc.san[PX_SAN_URI][0], "u:\"q\"");
    cc.san_count[PX_SAN_URI] = 1;
    px_clientcert_xfcc(&cc, x, sizeof x);
    assert_string_equal(x, "Hash=ab;Subject=\"CN=a\";URI=\"u:\\\"q\\\"\"");
}

static void test_xfcc_keeps_whole_elements(void **state)
{
    px_clientcert_t cc;
    char x[64];
    (void)state;
    memset(&cc, 0, sizeof cc);
    strcpy(cc.sha256, "ab");
    strcpy(cc.subject, "CN=a");
    strcpy(cc.san[PX_SAN_DNS][0], "one.example");
    strcpy(cc.san[PX_SAN_DNS][1], "a-much-longer-name-that-cannot-fit.example");
    cc.san_count[PX_SAN_DNS] = 2;
    size_t n = px_clientcert_xfcc(&cc, x, sizeof x);
    assert_string_equal(x, "Hash=ab;Subject=\"CN=a\";DNS=one.example");
    assert_int_equal(n, strlen(x));
}

static void test_san_caps(void **state)
{
    buf_t rdns = { .n = 0 }, gn = { .n = 0 }, der;
    px_clientcert_t cc;
    char big[PX_CC_MAX_VALUE + 1];
    (void)state;

    rdn(&rdns, OID_CN, 3, 0x0c, "a", 1);
    for (int i = 0; i < PX_CC_MAX_SANS + 2; i++)
        tlv(&gn, 0x82, "n.example", 9);
    memset(big, 'a', sizeof big);
    tlv(&gn, 0x86, big, sizeof big);
    tlv(&gn, 0x87, "\x01\x02\x03", 3);                     /* not 4 or 16 bytes */
    cert_der(&der, &rdns, &gn);
    assert_int_equal(px_clientcert_parse(der.b, der.n, &cc), 0);
    assert_int_equal(cc.san_count[PX_SAN_DNS], PX_CC_MAX_SANS);
    assert_int_equal(cc.san_count[PX_SAN_URI], 0);
    assert_int_equal(cc.san_skipped, 4);
}

static void test_parse_refuses_garbage(void **state)
{
    buf_t rdns = { .n = 0 }, der;
    px_clientcert_t cc;
    (void)state;
    rdn(&rdns, OID_CN, 3, 0x0c, "a", 1);
    cert_der(&der, &rdns, NULL);
    assert_int_equal(px_clientcert_parse(der.b, der.n, &cc), 0);
    assert_string_equal(cc.subject, "CN=a");
    for (size_t cut = 1; cut < der.n; cut++)           /* every truncation */
        assert_int_equal(px_clientcert_parse(der.b, cut, &cc), PX_EPARSE);
    der.b[der.n++] = 0;                                 /* trailing byte */
    assert_int_equal(px_clientcert_parse(der.b, der.n, &cc), PX_EPARSE);
}

/* A real certificate from certgen: its subject and DNS names. */
static void test_certgen_leaf(void **state)
{
    px_pem_pair_t ca, leaf;
    const char *sans[] = { "client.example", "other.example" };
    uint8_t der[8192];
    px_clientcert_t cc;
    int n;
    (void)state;

    assert_int_equal(px_certgen_ca(PX_KEY_ECDSA_P256, "test CA", 2, &ca), 0);
    assert_int_equal(px_certgen_leaf(PX_KEY_ECDSA_P256, &ca, "client one", sans, 2, 2, 0, &leaf), 0);
    n = wc_CertPemToDer((const unsigned char *)leaf.cert_pem, (int)strlen(leaf.cert_pem), der,
                        sizeof der, CERT_TYPE);
    assert_true(n > 0);
    assert_int_equal(px_clientcert_parse(der, (size_t)n, &cc), 0);
    assert_non_null(strstr(cc.subject, "CN=client one"));
    assert_int_equal(cc.san_count[PX_SAN_DNS], 2);
    assert_string_equal(cc.san[PX_SAN_DNS][1], "other.example");
    px_pem_pair_free(&leaf);
    px_pem_pair_free(&ca);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dn_order_and_specials),
        cmocka_unit_test(test_dn_control_bytes_escaped),
        cmocka_unit_test(test_dn_unknown_type_and_non_string),
        cmocka_unit_test(test_dn_truncates_whole_attributes),
        cmocka_unit_test(test_dn_malformed),
        cmocka_unit_test(test_sans_and_xfcc),
        cmocka_unit_test(test_xfcc_quotes_in_san),
        cmocka_unit_test(test_xfcc_keeps_whole_elements),
        cmocka_unit_test(test_san_caps),
        cmocka_unit_test(test_parse_refuses_garbage),
        cmocka_unit_test(test_certgen_leaf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
