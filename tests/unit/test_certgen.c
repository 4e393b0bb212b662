/* certgen: every key type makes a CA and a leaf that wolfSSL accepts as a
 * server identity and verifies against that CA (and no other), with the
 * SANs, usages and key sizes asked for; `pqproxy certgen` writes the
 * development PKI and refuses to overwrite it without --force. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/rsa.h>

#include "cmd/certgen.h"
#include "cmd/certgen_der.h"
#include "core/errors.h"
#include "sig_fixture.h"

static const char *const test_sans[] = { "localhost", "127.0.0.1", "::1", "svc.example.test" };
#define NTEST_SANS 4

/* --- helpers -------------------------------------------------------------- */

static int cm_verify(const px_pem_pair_t *ca, const px_pem_pair_t *leaf)
{
    WOLFSSL_CERT_MANAGER *cm = wolfSSL_CertManagerNew();
    int ret;

    assert_non_null(cm);
    assert_int_equal(wolfSSL_CertManagerLoadCABuffer(cm, (const unsigned char *)ca->cert_pem,
                                                     (long)ca->cert_len, WOLFSSL_FILETYPE_PEM),
                     WOLFSSL_SUCCESS);
    ret = wolfSSL_CertManagerVerifyBuffer(cm, (const unsigned char *)leaf->cert_pem,
                                          (long)leaf->cert_len, WOLFSSL_FILETYPE_PEM);
    wolfSSL_CertManagerFree(cm);
    return ret;
}

/* Loads cert (chain) and key into a server CTX; returns the result of
 * wolfSSL_CTX_check_private_key, or of the load that failed. */
static int ctx_load(const char *cert, size_t cert_len, const char *key, size_t key_len)
{
    WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfTLS_server_method());
    int ret;

    assert_non_null(ctx);
    ret = wolfSSL_CTX_use_certificate_chain_buffer_format(
        ctx, (const unsigned char *)cert, (long)cert_len, WOLFSSL_FILETYPE_PEM);
    if (ret == WOLFSSL_SUCCESS)
        ret = wolfSSL_CTX_use_PrivateKey_buffer(ctx, (const unsigned char *)key, (long)key_len,
                                                WOLFSSL_FILETYPE_PEM);
    if (ret == WOLFSSL_SUCCESS)
        ret = wolfSSL_CTX_check_private_key(ctx);
    wolfSSL_CTX_free(ctx);
    return ret;
}

typedef struct {
    unsigned char der[16384];
    int der_len;
    DecodedCert dc;
} decoded_t;

static decoded_t *decode(const char *pem, size_t len)
{
    decoded_t *d = calloc(1, sizeof *d);

    assert_non_null(d);
    d->der_len = wc_CertPemToDer((const unsigned char *)pem, (int)len, d->der, sizeof d->der,
                                 CERT_TYPE);
    assert_true(d->der_len > 0);
    wc_InitDecodedCert(&d->dc, d->der, (word32)d->der_len, NULL);
    assert_int_equal(wc_ParseCert(&d->dc, CERT_TYPE, NO_VERIFY, NULL), 0);
    return d;
}

static void decoded_free(decoded_t *d)
{
    wc_FreeDecodedCert(&d->dc);
    free(d);
}

static time_t cert_time(const byte *item, int item_len)
{
    const byte *date;
    byte format;
    int len;
    struct tm tm;

    assert_int_equal(wc_GetDateInfo(item, item_len, &date, &format, &len), 0);
    assert_int_equal(wc_GetDateAsCalendarTime(date, len, format, &tm), 0);
    return timegm(&tm);
}

static int has_san(const DecodedCert *dc, int type, const void *name, int len)
{
    for (const DNS_entry *e = dc->altNames; e; e = e->next)
        if (e->type == type && e->len == len && !memcmp(e->name, name, (size_t)len))
            return 1;
    return 0;
}

static int count_sans(const DecodedCert *dc)
{
    int n = 0;
    for (const DNS_entry *e = dc->altNames; e; e = e->next)
        n++;
    return n;
}

static void check_key(const DecodedCert *dc, px_keytype_t type, const px_pem_pair_t *pair)
{
    switch (type) {
    case PX_KEY_ECDSA_P256:
        assert_int_equal(dc->keyOID, ECDSAk);
        assert_int_equal(dc->pkCurveOID, ECC_SECP256R1_OID);
        break;
    case PX_KEY_ECDSA_P384:
        assert_int_equal(dc->keyOID, ECDSAk);
        assert_int_equal(dc->pkCurveOID, ECC_SECP384R1_OID);
        break;
    case PX_KEY_RSA2048: {
        RsaKey rsa;
        word32 idx = 0;
        assert_int_equal(dc->keyOID, RSAk);
        assert_int_equal(wc_InitRsaKey(&rsa, NULL), 0);
        assert_int_equal(wc_RsaPublicKeyDecode(dc->publicKey, &idx, &rsa, dc->pubKeySize), 0);
        assert_int_equal(wc_RsaEncryptSize(&rsa), 256);
        wc_FreeRsaKey(&rsa);
        break;
    }
    case PX_KEY_MLDSA44:
        assert_int_equal(dc->keyOID, ML_DSA_44k);
        assert_int_equal(dc->pubKeySize, 1312);
        break;
    case PX_KEY_MLDSA65:
        assert_int_equal(dc->keyOID, ML_DSA_65k);
        assert_int_equal(dc->pubKeySize, 1952);
        break;
    case PX_KEY_MLDSA87:
        assert_int_equal(dc->keyOID, ML_DSA_87k);
        assert_int_equal(dc->pubKeySize, 2592);
        break;
    }
    /* PEM labels: certificate, and PKCS#8 for every key type. */
    assert_int_equal(strncmp(pair->cert_pem, "-----BEGIN CERTIFICATE-----\n", 28), 0);
    assert_int_equal(strncmp(pair->key_pem, "-----BEGIN PRIVATE KEY-----\n", 28), 0);
    assert_int_equal(strlen(pair->cert_pem), pair->cert_len);
    assert_int_equal(strlen(pair->key_pem), pair->key_len);
}

/* --- per key type ------------------------------------------------------------- */

static void test_key_type(void **state)
{
    px_keytype_t type = (px_keytype_t)(intptr_t)*state;
    px_pem_pair_t ca, ca2, leaf, client, other;
    decoded_t *dca, *dl, *dcl;
    time_t now = time(NULL), nb;
    const uint8_t ip4[4] = { 127, 0, 0, 1 }, ip6[16] = { [15] = 1 };

    assert_int_equal(px_certgen_ca(type, "test CA", 30, &ca), 0);
    assert_int_equal(px_certgen_ca(type, "another CA", 30, &ca2), 0);
    assert_int_equal(px_certgen_leaf(type, &ca, "leaf.test", test_sans, NTEST_SANS, 30, 0, &leaf),
                     0);
    assert_int_equal(px_certgen_leaf(type, &ca, "client", NULL, 0, 30, 1, &client), 0);
    assert_int_equal(px_certgen_leaf(type, &ca2, "other", test_sans, 1, 30, 0, &other), 0);

    /* A usable server identity, and the CA's own pair loads too. */
    assert_int_equal(ctx_load(leaf.cert_pem, leaf.cert_len, leaf.key_pem, leaf.key_len),
                     WOLFSSL_SUCCESS);
    assert_int_equal(ctx_load(ca.cert_pem, ca.cert_len, ca.key_pem, ca.key_len), WOLFSSL_SUCCESS);
    /* A key that is not the certificate's is refused. */
    assert_int_not_equal(ctx_load(leaf.cert_pem, leaf.cert_len, other.key_pem, other.key_len),
                         WOLFSSL_SUCCESS);

    /* Chains to its CA, not to another CA of the same type and name shape. */
    assert_int_equal(cm_verify(&ca, &leaf), WOLFSSL_SUCCESS);
    assert_int_equal(cm_verify(&ca, &client), WOLFSSL_SUCCESS);
    assert_int_equal(cm_verify(&ca, &ca), WOLFSSL_SUCCESS);
    assert_int_not_equal(cm_verify(&ca, &other), WOLFSSL_SUCCESS);
    assert_int_not_equal(cm_verify(&ca2, &leaf), WOLFSSL_SUCCESS);

    dca = decode(ca.cert_pem, ca.cert_len);
    dl = decode(leaf.cert_pem, leaf.cert_len);
    dcl = decode(client.cert_pem, client.cert_len);
    check_key(&dca->dc, type, &ca);
    check_key(&dl->dc, type, &leaf);

    /* CA: CA:TRUE critical, keyCertSign|cRLSign, SKI, self-issued. */
    assert_true(dca->dc.isCA);
    assert_true(dca->dc.extBasicConstCrit);
    assert_int_equal(dca->dc.extKeyUsage, KEYUSE_KEY_CERT_SIGN | KEYUSE_CRL_SIGN);
    assert_true(dca->dc.extSubjKeyIdSet);
    assert_string_equal(dca->dc.subjectCN ? "ok" : "none", "ok");
    assert_int_equal(dca->dc.subjectCNLen, 7);
    assert_memory_equal(dca->dc.subjectCN, "test CA", 7);

    /* Leaf: SANs (DNS and IP), usages, AKI = CA's SKI, serial, validity. */
    assert_int_equal(count_sans(&dl->dc), NTEST_SANS);
    assert_true(has_san(&dl->dc, ASN_DNS_TYPE, "localhost", 9));
    assert_true(has_san(&dl->dc, ASN_DNS_TYPE, "svc.example.test", 16));
    assert_true(has_san(&dl->dc, ASN_IP_TYPE, ip4, 4));
    assert_true(has_san(&dl->dc, ASN_IP_TYPE, ip6, 16));
    assert_false(dl->dc.isCA);
    assert_true(dl->dc.extExtKeyUsage & EXTKEYUSE_SERVER_AUTH);
    assert_false(dl->dc.extExtKeyUsage & EXTKEYUSE_CLIENT_AUTH);
    assert_int_equal(dl->dc.extKeyUsage,
                     KEYUSE_DIGITAL_SIG | (type == PX_KEY_RSA2048 ? KEYUSE_KEY_ENCIPHER : 0));
    assert_true(dl->dc.extAuthKeyIdSet);
    assert_int_equal(dl->dc.extAuthKeyIdSz, dca->dc.extSubjKeyIdSz);
    assert_memory_equal(dl->dc.extAuthKeyId, dca->dc.extSubjKeyId, dca->dc.extSubjKeyIdSz);
    assert_true(dl->dc.extSubjKeyIdSet);
    assert_int_equal(dl->dc.serialSz, 16);
    nb = cert_time(dl->dc.beforeDate, dl->dc.beforeDateLen);
    assert_true(nb >= now - 3600 - 120 && nb <= now - 3600 + 120);
    assert_true(cert_time(dl->dc.afterDate, dl->dc.afterDateLen) - nb == 30 * 86400 + 3600);

    /* Client leaf: clientAuth only, no SAN asked for, none written. */
    assert_true(dcl->dc.extExtKeyUsage & EXTKEYUSE_CLIENT_AUTH);
    assert_false(dcl->dc.extExtKeyUsage & EXTKEYUSE_SERVER_AUTH);
    assert_int_equal(count_sans(&dcl->dc), 0);

    decoded_free(dca);
    decoded_free(dl);
    decoded_free(dcl);
    px_pem_pair_free(&ca);
    px_pem_pair_free(&ca2);
    px_pem_pair_free(&leaf);
    px_pem_pair_free(&client);
    px_pem_pair_free(&other);
}

/* The CA's signature algorithm follows the CA key, not the leaf key. */
static void test_mixed_types(void **state)
{
    px_pem_pair_t mlca, ecca, a, b;
    decoded_t *d;

    (void)state;
    assert_int_equal(px_certgen_ca(PX_KEY_MLDSA87, "ml", 10, &mlca), 0);
    assert_int_equal(px_certgen_ca(PX_KEY_ECDSA_P384, "ec", 10, &ecca), 0);
    assert_int_equal(px_certgen_leaf(PX_KEY_ECDSA_P256, &mlca, "a", test_sans, 1, 10, 0, &a), 0);
    assert_int_equal(px_certgen_leaf(PX_KEY_MLDSA65, &ecca, "b", test_sans, 1, 10, 0, &b), 0);
    assert_int_equal(cm_verify(&mlca, &a), WOLFSSL_SUCCESS);
    assert_int_equal(cm_verify(&ecca, &b), WOLFSSL_SUCCESS);
    d = decode(a.cert_pem, a.cert_len);
    assert_int_equal(d->dc.signatureOID, CTC_ML_DSA_87);
    assert_int_equal(d->dc.keyOID, ECDSAk);
    decoded_free(d);
    d = decode(b.cert_pem, b.cert_len);
    assert_int_equal(d->dc.signatureOID, CTC_SHA384wECDSA);
    assert_int_equal(d->dc.keyOID, ML_DSA_65k);
    decoded_free(d);
    px_pem_pair_free(&mlca);
    px_pem_pair_free(&ecca);
    px_pem_pair_free(&a);
    px_pem_pair_free(&b);
}

static void test_bad_arguments(void **state)
{
    px_pem_pair_t ca, ca2, mixed, out, leaf;
    const char *bad_san[] = { "not a name" };
    char long_cn[80];

    (void)state;
    memset(long_cn, 'x', sizeof long_cn - 1);
    long_cn[sizeof long_cn - 1] = '\0';
    assert_int_equal(px_certgen_ca(PX_KEY_ECDSA_P256, long_cn, 10, &out), PX_EINVAL);
    assert_int_equal(px_certgen_ca(PX_KEY_ECDSA_P256, "", 10, &out), PX_EINVAL);
    assert_int_equal(px_certgen_ca(PX_KEY_ECDSA_P256, "x", 0, &out), PX_EINVAL);
    assert_int_equal(px_certgen_ca((px_keytype_t)42, "x", 1, &out), PX_EINVAL);
    assert_null(out.cert_pem);

    assert_int_equal(px_certgen_ca(PX_KEY_ECDSA_P256, "ca", 10, &ca), 0);
    assert_int_equal(px_certgen_ca(PX_KEY_ECDSA_P256, "ca", 10, &ca2), 0);
    assert_int_equal(px_certgen_leaf(PX_KEY_ECDSA_P256, &ca, "l", bad_san, 1, 10, 0, &out),
                     PX_EINVAL);
    assert_non_null(strstr(px_certgen_errmsg(), "not a name"));
    /* A CA certificate with somebody else's key cannot issue. */
    mixed = ca;
    mixed.key_pem = ca2.key_pem;
    mixed.key_len = ca2.key_len;
    assert_int_equal(px_certgen_leaf(PX_KEY_ECDSA_P256, &mixed, "l", NULL, 0, 10, 0, &out),
                     PX_ECRYPTO);
    assert_non_null(strstr(px_certgen_errmsg(), "does not verify against the CA"));
    assert_null(out.cert_pem);
    /* A leaf is no CA. */
    assert_int_equal(px_certgen_leaf(PX_KEY_ECDSA_P256, &ca, "leaf", NULL, 0, 10, 0, &leaf), 0);
    assert_int_equal(px_certgen_leaf(PX_KEY_ECDSA_P256, &leaf, "l", NULL, 0, 10, 0, &out),
                     PX_EINVAL);
    assert_non_null(strstr(px_certgen_errmsg(), "not a CA"));
    px_pem_pair_free(&leaf);
    mixed.key_pem = (char *)"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    mixed.key_len = strlen(mixed.key_pem);
    assert_true(px_certgen_leaf(PX_KEY_ECDSA_P256, &mixed, "l", NULL, 0, 10, 0, &out) < 0);
    px_pem_pair_free(&ca);
    px_pem_pair_free(&ca2);
}

static void test_keytype_names(void **state)
{
    px_keytype_t t;

    (void)state;
    for (int i = 0; i < PX_KEYTYPE_COUNT; i++) {
        assert_int_equal(px_keytype_parse(px_keytype_name((px_keytype_t)i), &t), 0);
        assert_int_equal(t, i);
    }
    assert_int_equal(px_keytype_parse("ML-DSA-65", &t), 0);
    assert_int_equal(t, PX_KEY_MLDSA65);
    assert_int_equal(px_keytype_parse("ml_dsa_87", &t), 0);
    assert_int_equal(t, PX_KEY_MLDSA87);
    assert_int_equal(px_keytype_parse("ECDSA-P384", &t), 0);
    assert_int_equal(t, PX_KEY_ECDSA_P384);
    assert_int_equal(px_keytype_parse("RSA-2048", &t), 0);
    assert_int_equal(t, PX_KEY_RSA2048);
    assert_int_equal(px_keytype_parse("mldsa", &t), PX_EINVAL);
    assert_int_equal(px_keytype_parse("ed25519", &t), PX_EINVAL);
    assert_int_equal(px_keytype_parse("", &t), PX_EINVAL);
    assert_string_equal(px_keytype_name((px_keytype_t)99), "unknown");
}

/* --- DER --------------------------------------------------------------------- */

static void test_der(void **state)
{
    uint8_t buf[1024], ip[16], *ext;
    size_t ext_len, hdr, len, iplen;
    uint8_t tag;
    int n, bad;
    const char *sans[] = { "a.test", "10.0.0.1" };
    const char *bad_sans[] = { "ok.test", "no spaces" };
    /* A TBS with one child and no extensions. */
    const uint8_t tbs0[] = { 0x30, 0x03, 0x02, 0x01, 0x05 };
    const uint8_t e1[] = { 0x30, 0x03, 0x01, 0x01, 0xff };

    (void)state;
    assert_int_equal(px_der_put_hdr(buf, 0x04, 0x7f), 2);
    assert_int_equal(px_der_put_hdr(buf, 0x04, 0x80), 3);
    assert_memory_equal(buf, "\x04\x81\x80", 3);
    assert_int_equal(px_der_put_hdr(buf, 0x04, 0x1234), 4);
    assert_memory_equal(buf, "\x04\x82\x12\x34", 4);
    assert_int_equal(px_der_put_hdr(buf, 0x04, 0x12345), 5);
    assert_int_equal(px_der_get_hdr(buf, 5 + 0x12345, &tag, &hdr, &len), 0);
    assert_int_equal(len, 0x12345);
    assert_int_equal(px_der_get_hdr(buf, 5 + 0x12344, &tag, &hdr, &len), -1);

    assert_int_equal(px_san_classify("::ffff:1.2.3.4", ip, &iplen), PX_SAN_IP);
    assert_int_equal(iplen, 16);
    assert_int_equal(px_san_classify("*.svc.test", ip, &iplen), PX_SAN_DNS);
    assert_int_equal(px_san_classify("a.*.test", ip, &iplen), PX_EINVAL);
    assert_int_equal(px_san_classify("fe80::1%eth0", ip, &iplen), PX_EINVAL);
    assert_int_equal(px_san_classify("trailing.", ip, &iplen), PX_EINVAL);
    assert_int_equal(px_san_classify("", ip, &iplen), PX_EINVAL);
    assert_int_equal(px_san_extension(bad_sans, 2, &ext, &ext_len, &bad), PX_EINVAL);
    assert_int_equal(bad, 1);

    assert_int_equal(px_san_extension(sans, 2, &ext, &ext_len, &bad), 0);
    {
        const uint8_t want[] = { 0x30, 0x17, 0x06, 0x03, 0x55, 0x1d, 0x11, 0x04, 0x10, 0x30, 0x0e,
                                 0x82, 0x06, 'a', '.', 't', 'e', 's', 't',
                                 0x87, 0x04, 10, 0, 0, 1 };
        assert_int_equal(ext_len, sizeof want);
        assert_memory_equal(ext, want, sizeof want);
    }
    free(ext);

    /* No extensions yet: a [3] field is added. */
    memcpy(buf, tbs0, sizeof tbs0);
    n = px_tbs_add_extension(buf, sizeof tbs0, sizeof buf, e1, sizeof e1);
    {
        const uint8_t want[] = { 0x30, 0x0c, 0x02, 0x01, 0x05, 0xa3, 0x07, 0x30, 0x05,
                                 0x30, 0x03, 0x01, 0x01, 0xff };
        assert_int_equal(n, sizeof want);
        assert_memory_equal(buf, want, sizeof want);
    }
    /* Existing extensions: appended inside them. */
    n = px_tbs_add_extension(buf, (size_t)n, sizeof buf, e1, sizeof e1);
    {
        const uint8_t want[] = { 0x30, 0x11, 0x02, 0x01, 0x05, 0xa3, 0x0c, 0x30, 0x0a,
                                 0x30, 0x03, 0x01, 0x01, 0xff, 0x30, 0x03, 0x01, 0x01, 0xff };
        assert_int_equal(n, sizeof want);
        assert_memory_equal(buf, want, sizeof want);
    }
    /* Too small an output buffer, or not a SEQUENCE. */
    assert_int_equal(px_tbs_add_extension(buf, (size_t)n, (size_t)n + 2, e1, sizeof e1),
                     PX_ETOOBIG);
    buf[0] = 0x31;
    assert_int_equal(px_tbs_add_extension(buf, (size_t)n, sizeof buf, e1, sizeof e1), PX_EPARSE);
}

/* --- files -------------------------------------------------------------------- */

static int file_mode(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int)(st.st_mode & 07777) : -1;
}

static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[4096];

    if (!d)
        return;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (e->d_type == DT_DIR)
            rm_tree(path);
        else
            unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void test_pem_write_file(void **state)
{
    char dir[] = "/tmp/px-certgen-XXXXXX", path[256], *s;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/k.pem", dir);
    assert_int_equal(px_pem_write_file(path, "one", 3, 0600, 0), 0);
    assert_int_equal(file_mode(path), 0600);
    assert_int_equal(px_pem_write_file(path, "two", 3, 0600, 0), -EEXIST);
    assert_string_equal(s = fx_read_path(path, NULL), "one");
    free(s);
    assert_int_equal(px_pem_write_file(path, "three", 5, 0644, 1), 0);
    assert_string_equal(s = fx_read_path(path, NULL), "three");
    free(s);
    assert_int_equal(file_mode(path), 0644);
    assert_int_equal(count_entries(dir), 1); /* no temporary files left */
    snprintf(path, sizeof path, "%s/missing/k.pem", dir);
    assert_int_equal(px_pem_write_file(path, "x", 1, 0600, 0), PX_EIO);
    rm_tree(dir);
}

/* --- pqproxy certgen ------------------------------------------------------------ */

static const char *const out_files[] = {
    "ca.crt", "ca.key", "server.crt", "server.key", "mldsa-ca.crt", "mldsa-ca.key",
    "server-mldsa.crt", "server-mldsa.key", "client.crt", "client.key", "bundle-ca.crt",
};
#define NOUT_FILES ((int)(sizeof out_files / sizeof out_files[0]))

static int run(int argc, const char **argv)
{
    return px_cmd_certgen(argc, (char **)argv);
}

static px_pem_pair_t load_pair(const char *dir, const char *crt, const char *key)
{
    char path[512];
    px_pem_pair_t p;

    snprintf(path, sizeof path, "%s/%s", dir, crt);
    assert_non_null(p.cert_pem = fx_read_path(path, &p.cert_len));
    snprintf(path, sizeof path, "%s/%s", dir, key);
    assert_non_null(p.key_pem = fx_read_path(path, &p.key_len));
    return p;
}

static int count_certs(const char *pem)
{
    int n = 0;
    for (const char *p = pem; (p = strstr(p, "-----BEGIN CERTIFICATE-----")); p++)
        n++;
    return n;
}

static void test_cmd_certgen(void **state)
{
    char base[] = "/tmp/px-certgen-XXXXXX", dir[256], path[512];
    char *before, *after, *bundle;
    px_pem_pair_t ca, mlca, srv, mlsrv, cli;
    decoded_t *d;

    (void)state;
    assert_non_null(mkdtemp(base));
    snprintf(dir, sizeof dir, "%s/nested/pki", base);
    {
        const char *argv[] = { "certgen", "--out", dir, "--san", "svc.example.test",
                               "--san=10.9.8.7", "--days", "30" };
        assert_int_equal(run(8, argv), 0);
    }
    for (int i = 0; i < NOUT_FILES; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, out_files[i]);
        assert_int_equal(file_mode(path), strstr(out_files[i], ".key") ? 0600 : 0644);
    }
    assert_int_equal(count_entries(dir), NOUT_FILES);
    assert_int_equal(file_mode(dir), 0755);

    ca = load_pair(dir, "ca.crt", "ca.key");
    mlca = load_pair(dir, "mldsa-ca.crt", "mldsa-ca.key");
    srv = load_pair(dir, "server.crt", "server.key");
    mlsrv = load_pair(dir, "server-mldsa.crt", "server-mldsa.key");
    cli = load_pair(dir, "client.crt", "client.key");
    snprintf(path, sizeof path, "%s/bundle-ca.crt", dir);
    bundle = fx_read_path(path, NULL);
    assert_non_null(bundle);
    assert_int_equal(strncmp(bundle, ca.cert_pem, ca.cert_len), 0);
    assert_string_equal(bundle + ca.cert_len, mlca.cert_pem);
    assert_int_equal(count_certs(srv.cert_pem), 1);
    assert_int_equal(count_certs(mlsrv.cert_pem), 1);

    assert_int_equal(cm_verify(&ca, &srv), WOLFSSL_SUCCESS);
    assert_int_equal(cm_verify(&ca, &cli), WOLFSSL_SUCCESS);
    assert_int_equal(cm_verify(&mlca, &mlsrv), WOLFSSL_SUCCESS);
    assert_int_not_equal(cm_verify(&ca, &mlsrv), WOLFSSL_SUCCESS);
    assert_int_equal(ctx_load(srv.cert_pem, srv.cert_len, srv.key_pem, srv.key_len),
                     WOLFSSL_SUCCESS);
    assert_int_equal(ctx_load(mlsrv.cert_pem, mlsrv.cert_len, mlsrv.key_pem, mlsrv.key_len),
                     WOLFSSL_SUCCESS);
    d = decode(ca.cert_pem, ca.cert_len);
    check_key(&d->dc, PX_KEY_ECDSA_P384, &ca);
    decoded_free(d);
    d = decode(mlca.cert_pem, mlca.cert_len);
    check_key(&d->dc, PX_KEY_MLDSA87, &mlca);
    assert_true(d->dc.isCA);
    decoded_free(d);
    d = decode(cli.cert_pem, cli.cert_len);
    check_key(&d->dc, PX_KEY_ECDSA_P256, &cli);
    assert_true(d->dc.extExtKeyUsage & EXTKEYUSE_CLIENT_AUTH);
    assert_memory_equal(d->dc.subjectCN, "pqproxy-dev-client", 18);
    decoded_free(d);
    for (int k = 0; k < 2; k++) {
        const uint8_t ip[4] = { 10, 9, 8, 7 }, ip6[16] = { [15] = 1 };
        d = decode(k ? mlsrv.cert_pem : srv.cert_pem, k ? mlsrv.cert_len : srv.cert_len);
        check_key(&d->dc, k ? PX_KEY_MLDSA65 : PX_KEY_ECDSA_P256, k ? &mlsrv : &srv);
        assert_int_equal(count_sans(&d->dc), 5);
        assert_true(has_san(&d->dc, ASN_DNS_TYPE, "localhost", 9));
        assert_true(has_san(&d->dc, ASN_DNS_TYPE, "svc.example.test", 16));
        assert_true(has_san(&d->dc, ASN_IP_TYPE, ip, 4));
        assert_true(has_san(&d->dc, ASN_IP_TYPE, ip6, 16));
        decoded_free(d);
    }

    /* A second run without --force fails and leaves everything alone. */
    snprintf(path, sizeof path, "%s/ca.key", dir);
    before = fx_read_path(path, NULL);
    {
        const char *argv[] = { "certgen", "--out", dir };
        assert_int_equal(run(3, argv), 1);
    }
    after = fx_read_path(path, NULL);
    assert_string_equal(before, after);
    free(after);
    assert_int_equal(count_entries(dir), NOUT_FILES);
    /* ... even when only one of the files is there. */
    snprintf(path, sizeof path, "%s/server-mldsa.crt", dir);
    {
        const char *argv[] = { "certgen", "--out", dir };
        for (int i = 0; i < NOUT_FILES; i++) {
            char p2[512];
            snprintf(p2, sizeof p2, "%s/%s", dir, out_files[i]);
            if (strcmp(p2, path))
                unlink(p2);
        }
        assert_int_equal(run(3, argv), 1);
        assert_int_equal(count_entries(dir), 1);
    }
    /* --force replaces everything. */
    {
        const char *argv[] = { "certgen", "--force", "--out", dir };
        assert_int_equal(run(4, argv), 0);
    }
    assert_int_equal(count_entries(dir), NOUT_FILES);
    snprintf(path, sizeof path, "%s/ca.key", dir);
    after = fx_read_path(path, NULL);
    assert_string_not_equal(before, after);
    assert_int_equal(file_mode(path), 0600);
    free(before);
    free(after);

    /* Usage errors exit 2. */
    {
        const char *a1[] = { "certgen" };
        const char *a2[] = { "certgen", "--out", dir, "--days", "0" };
        const char *a3[] = { "certgen", "--out", dir, "--san", "bad name" };
        const char *a4[] = { "certgen", "--out", dir, "--bogus" };
        const char *a5[] = { "certgen", "--out" };
        const char *a6[] = { "certgen", "--out", dir, "--days", "12x" };
        assert_int_equal(run(1, a1), 2);
        assert_int_equal(run(5, a2), 2);
        assert_int_equal(run(5, a3), 2);
        assert_int_equal(run(4, a4), 2);
        assert_int_equal(run(2, a5), 2);
        assert_int_equal(run(5, a6), 2);
    }
    /* An output path that is a file fails with 1. */
    {
        const char *argv[] = { "certgen", "--out", path };
        assert_int_equal(run(3, argv), 1);
    }

    free(bundle);
    px_pem_pair_free(&ca);
    px_pem_pair_free(&mlca);
    px_pem_pair_free(&srv);
    px_pem_pair_free(&mlsrv);
    px_pem_pair_free(&cli);
    rm_tree(base);
}

/* --- a TLS 1.3 handshake with what certgen wrote ----------------------------- */

typedef struct {
    unsigned char buf[65536];
    size_t len;
} pipe_t;

static int pipe_recv(WOLFSSL *ssl, char *out, int sz, void *ctx)
{
    pipe_t *p = ctx;
    size_t n = p->len < (size_t)sz ? p->len : (size_t)sz;

    (void)ssl;
    if (n == 0)
        return WOLFSSL_CBIO_ERR_WANT_READ;
    memcpy(out, p->buf, n);
    memmove(p->buf, p->buf + n, p->len - n);
    p->len -= n;
    return (int)n;
}

static int pipe_send(WOLFSSL *ssl, char *in, int sz, void *ctx)
{
    pipe_t *p = ctx;

    (void)ssl;
    if (p->len + (size_t)sz > sizeof p->buf)
        return WOLFSSL_CBIO_ERR_WANT_WRITE;
    memcpy(p->buf + p->len, in, (size_t)sz);
    p->len += (size_t)sz;
    return sz;
}

/* Server identity srv, client trusts bundle and checks "localhost"; the
 * server requires a client certificate issued by client_ca. Returns 1 when
 * both sides complete the handshake. */
static int handshake(const px_pem_pair_t *srv, const char *bundle, const px_pem_pair_t *client,
                     const px_pem_pair_t *client_ca)
{
    WOLFSSL_CTX *sctx = wolfSSL_CTX_new(wolfTLSv1_3_server_method());
    WOLFSSL_CTX *cctx = wolfSSL_CTX_new(wolfTLSv1_3_client_method());
    pipe_t *c2s = calloc(1, sizeof *c2s), *s2c = calloc(1, sizeof *s2c);
    WOLFSSL *s, *c;
    int sdone = 0, cdone = 0, failed = 0;

    assert_non_null(sctx);
    assert_non_null(cctx);
    assert_non_null(c2s);
    assert_non_null(s2c);
    assert_int_equal(wolfSSL_CTX_use_certificate_chain_buffer_format(
                         sctx, (const unsigned char *)srv->cert_pem, (long)srv->cert_len,
                         WOLFSSL_FILETYPE_PEM), WOLFSSL_SUCCESS);
    assert_int_equal(wolfSSL_CTX_use_PrivateKey_buffer(sctx, (const unsigned char *)srv->key_pem,
                                                       (long)srv->key_len, WOLFSSL_FILETYPE_PEM),
                     WOLFSSL_SUCCESS);
    assert_int_equal(wolfSSL_CTX_load_verify_buffer(sctx, (const unsigned char *)client_ca->cert_pem,
                                                    (long)client_ca->cert_len,
                                                    WOLFSSL_FILETYPE_PEM), WOLFSSL_SUCCESS);
    wolfSSL_CTX_set_verify(sctx, WOLFSSL_VERIFY_PEER | WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    assert_int_equal(wolfSSL_CTX_load_verify_buffer(cctx, (const unsigned char *)bundle,
                                                    (long)strlen(bundle), WOLFSSL_FILETYPE_PEM),
                     WOLFSSL_SUCCESS);
    assert_int_equal(wolfSSL_CTX_use_certificate_chain_buffer_format(
                         cctx, (const unsigned char *)client->cert_pem, (long)client->cert_len,
                         WOLFSSL_FILETYPE_PEM), WOLFSSL_SUCCESS);
    assert_int_equal(wolfSSL_CTX_use_PrivateKey_buffer(cctx, (const unsigned char *)client->key_pem,
                                                       (long)client->key_len, WOLFSSL_FILETYPE_PEM),
                     WOLFSSL_SUCCESS);
    wolfSSL_CTX_set_verify(cctx, WOLFSSL_VERIFY_PEER, NULL);
    wolfSSL_CTX_SetIORecv(sctx, pipe_recv);
    wolfSSL_CTX_SetIOSend(sctx, pipe_send);
    wolfSSL_CTX_SetIORecv(cctx, pipe_recv);
    wolfSSL_CTX_SetIOSend(cctx, pipe_send);
    assert_non_null(s = wolfSSL_new(sctx));
    assert_non_null(c = wolfSSL_new(cctx));
    wolfSSL_SetIOReadCtx(s, c2s);
    wolfSSL_SetIOWriteCtx(s, s2c);
    wolfSSL_SetIOReadCtx(c, s2c);
    wolfSSL_SetIOWriteCtx(c, c2s);
    assert_int_equal(wolfSSL_check_domain_name(c, "localhost"), WOLFSSL_SUCCESS);
    for (int i = 0; i < 50 && !(sdone && cdone) && !failed; i++) {
        if (!cdone) {
            int r = wolfSSL_connect(c);
            cdone = r == WOLFSSL_SUCCESS;
            failed |= !cdone && wolfSSL_get_error(c, r) != WOLFSSL_ERROR_WANT_READ;
        }
        if (!sdone && !failed) {
            int r = wolfSSL_accept(s);
            sdone = r == WOLFSSL_SUCCESS;
            failed |= !sdone && wolfSSL_get_error(s, r) != WOLFSSL_ERROR_WANT_READ;
        }
    }
    wolfSSL_free(c);
    wolfSSL_free(s);
    wolfSSL_CTX_free(cctx);
    wolfSSL_CTX_free(sctx);
    free(c2s);
    free(s2c);
    return sdone && cdone;
}

static void test_tls_handshake(void **state)
{
    char base[] = "/tmp/px-certgen-XXXXXX", *bundle, path[512];
    px_pem_pair_t ca, srv, mlsrv, cli;

    (void)state;
    assert_non_null(mkdtemp(base));
    {
        const char *argv[] = { "certgen", "--out", base };
        assert_int_equal(run(3, argv), 0);
    }
    ca = load_pair(base, "ca.crt", "ca.key");
    srv = load_pair(base, "server.crt", "server.key");
    mlsrv = load_pair(base, "server-mldsa.crt", "server-mldsa.key");
    cli = load_pair(base, "client.crt", "client.key");
    snprintf(path, sizeof path, "%s/bundle-ca.crt", base);
    assert_non_null(bundle = fx_read_path(path, NULL));
    assert_true(handshake(&srv, bundle, &cli, &ca));
    assert_true(handshake(&mlsrv, bundle, &cli, &ca));
    /* Verification is real: trusting only the ECDSA CA fails for ML-DSA,
     * and a client certificate from an untrusted CA is refused. */
    assert_false(handshake(&mlsrv, ca.cert_pem, &cli, &ca));
    assert_false(handshake(&srv, bundle, &mlsrv, &ca));
    free(bundle);
    px_pem_pair_free(&ca);
    px_pem_pair_free(&srv);
    px_pem_pair_free(&mlsrv);
    px_pem_pair_free(&cli);
    rm_tree(base);
}

static int setup(void **state)
{
    (void)state;
    return wolfSSL_Init() == WOLFSSL_SUCCESS ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    wolfSSL_Cleanup();
    return 0;
}

#define KEY_TEST(t, name) { "test_key_type(" name ")", test_key_type, NULL, NULL, \
                           (void *)(intptr_t)(t) }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keytype_names),
        cmocka_unit_test(test_der),
        KEY_TEST(PX_KEY_ECDSA_P256, "ecdsa-p256"),
        KEY_TEST(PX_KEY_ECDSA_P384, "ecdsa-p384"),
        KEY_TEST(PX_KEY_RSA2048, "rsa2048"),
        KEY_TEST(PX_KEY_MLDSA44, "mldsa44"),
        KEY_TEST(PX_KEY_MLDSA65, "mldsa65"),
        KEY_TEST(PX_KEY_MLDSA87, "mldsa87"),
        cmocka_unit_test(test_mixed_types),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_pem_write_file),
        cmocka_unit_test(test_cmd_certgen),
        cmocka_unit_test(test_tls_handshake),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
