/* tls.ciphers and tls.signature_algorithms: the name tables, the config
 * rules with their key paths, the certificate checks of the server context
 * and of client certificates. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/asn_public.h>

#include "config_fixture.h"
#include "cmd/certgen.h"
#include "net/tls.h"
#include "net/tls_ciphers.h"

/* ---- tables ----------------------------------------------------------------- */

static void test_cipher_table(void **state)
{
    char buf[1024];
    uint16_t ids[PX_MAX_CIPHERS];
    int n;

    assert_int_equal(px_cipher_from_name("TLS_AES_256_GCM_SHA384"), 0x1302);
    assert_int_equal(px_cipher_from_name("tls_aes_256_gcm_sha384"), 0x1302);
    assert_int_equal(px_cipher_from_name("TLS13-AES256-GCM-SHA384"), 0);   /* wolfSSL's name */
    assert_int_equal(px_cipher_from_name("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"), 0xC02B);
    assert_string_equal(px_cipher_name(0xCCA9), "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256");
    assert_null(px_cipher_name(0x0000));
    assert_true(px_cipher_is_tls13(0x1303));
    assert_false(px_cipher_is_tls13(0xC02F));
    /* what the build offers */
    assert_true(px_cipher_supported(0x1301));
    assert_true(px_cipher_supported(0xC02B));
    assert_true(px_cipher_supported(0xC009));   /* built, but refused below */
    /* CBC, SHA-1 and static RSA are refused with a reason */
    assert_non_null(strstr(px_cipher_refusal(0xC009), "SHA-1"));
    assert_non_null(strstr(px_cipher_refusal(0xC023), "CBC is not an AEAD mode"));
    assert_non_null(strstr(px_cipher_refusal(0x009C), "no forward secrecy"));
    assert_non_null(strstr(px_cipher_refusal(0x009E), "outside tls.groups"));
    assert_non_null(strstr(px_cipher_refusal(0x0033), "CBC"));
    assert_null(px_cipher_refusal(0xC030));
    assert_null(px_cipher_refusal(0x1301));

    n = px_cipher_defaults(0, ids, PX_MAX_CIPHERS);
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], 0x1302);
    assert_int_equal(ids[1], 0x1301);
    assert_int_equal(ids[2], 0x1303);
    n = px_cipher_defaults(1, ids, PX_MAX_CIPHERS);
    assert_int_equal(n, 9);
    for (int i = 3; i < n; i++) {
        assert_false(px_cipher_is_tls13(ids[i]));
        assert_null(px_cipher_refusal(ids[i]));
        assert_non_null(strstr(px_cipher_name(ids[i]), "TLS_ECDHE_"));
    }
    assert_int_equal(px_cipher_wolf_list(ids, 4, buf, sizeof buf), 0);
    assert_string_equal(buf, "TLS13-AES256-GCM-SHA384:TLS13-AES128-GCM-SHA256:"
                             "TLS13-CHACHA20-POLY1305-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384");
    assert_int_equal(px_cipher_wolf_list(ids, 4, buf, 20), -1);
    /* every name in the wolfSSL syntax is one wolfSSL knows */
    for (int i = 0; i < n; i++) {
        WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfSSLv23_server_method());
        assert_int_equal(px_cipher_wolf_list(&ids[i], 1, buf, sizeof buf), 0);
        assert_int_equal(wolfSSL_CTX_set_cipher_list(ctx, buf), WOLFSSL_SUCCESS);
        wolfSSL_CTX_free(ctx);
    }
    px_cipher_usable_names(0, buf, sizeof buf);
    assert_string_equal(buf, "TLS_AES_256_GCM_SHA384, TLS_AES_128_GCM_SHA256, "
                             "TLS_CHACHA20_POLY1305_SHA256");
    px_cipher_usable_names(1, buf, sizeof buf);
    assert_non_null(strstr(buf, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"));
    assert_null(strstr(buf, "CBC"));
}

static void test_sigalg_table(void **state)
{
    uint16_t ids[PX_MAX_SIGALGS];
    char buf[1024];
    int n;

    assert_int_equal(px_sigalg_from_name("ecdsa_secp384r1_sha384"), 0x0503);
    assert_int_equal(px_sigalg_from_name("MLDSA65"), 0x0905);
    assert_int_equal(px_sigalg_from_name("ecdsa-with-SHA256"), 0);
    assert_string_equal(px_sigalg_name(0x0807), "ed25519");
    assert_non_null(strstr(px_sigalg_refusal(0x0201), "SHA-1"));
    assert_non_null(strstr(px_sigalg_refusal(0x0203), "SHA-1"));
    assert_null(px_sigalg_refusal(0x0401));
    n = px_sigalg_defaults(ids, PX_MAX_SIGALGS);
    assert_int_equal(n, 10);     /* 3 ECDSA, Ed25519, 3 RSA-PSS, 3 ML-DSA */
    for (int i = 0; i < n; i++) {
        assert_null(px_sigalg_refusal(ids[i]));
        assert_false(ids[i] == PX_SIG_RSA_PKCS1_256 || ids[i] == PX_SIG_RSA_PKCS1_384 ||
                     ids[i] == PX_SIG_RSA_PKCS1_512);
    }
    px_sigalg_usable_names(buf, sizeof buf);
    assert_non_null(strstr(buf, "rsa_pkcs1_sha256"));
    assert_null(strstr(buf, "sha1"));
    /* keys and schemes */
    assert_true(px_sigalg_fits_key(PX_SIG_ECDSA_P256, PX_SIG_ECDSA_P256, 1));
    assert_false(px_sigalg_fits_key(PX_SIG_ECDSA_P256, PX_SIG_ECDSA_P384, 1));
    assert_true(px_sigalg_fits_key(PX_SIG_RSA_PSS_RSAE_256, PX_SIG_RSA_PSS_RSAE_512, 1));
    assert_false(px_sigalg_fits_key(PX_SIG_RSA_PSS_RSAE_256, PX_SIG_RSA_PKCS1_256, 1));
    assert_true(px_sigalg_fits_key(PX_SIG_RSA_PSS_RSAE_256, PX_SIG_RSA_PKCS1_256, 0));
    assert_false(px_sigalg_fits_key(PX_SIG_MLDSA65, PX_SIG_MLDSA87, 1));
}

/* ---- configuration ------------------------------------------------------------ */

static void test_config_ciphers(void **state)
{
    px_config_t *c = ok(minimal());

    /* defaults: the three TLS 1.3 AEAD suites; with 1.2 the ECDHE AEAD ones too */
    assert_int_equal(c->tls.cipher_count, 3);
    assert_int_equal(c->tls.ciphers[0], 0x1302);
    assert_int_equal(c->tls.sigalg_count, 10);
    px_config_free(c);
    c = ok(with("tls", "\"min_version\":\"1.2\""));
    assert_int_equal(c->tls.cipher_count, 9);
    for (int i = 0; i < c->tls.cipher_count; i++)
        assert_null(px_cipher_refusal(c->tls.ciphers[i]));
    px_config_free(c);

    c = ok(with("tls", "\"min_version\":\"1.2\",\"ciphers\":[\"TLS_AES_256_GCM_SHA384\","
                       "\"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384\",\"TLS_AES_128_GCM_SHA256\"]"));
    assert_int_equal(c->tls.cipher_count, 3);
    assert_int_equal(c->tls.ciphers[0], 0x1302);
    assert_int_equal(c->tls.ciphers[1], 0xC02C);
    assert_int_equal(c->tls.ciphers[2], 0x1301);
    px_config_free(c);

    expect_err(with("tls", "\"ciphers\":[\"TLS_AES_128_GCM_SHA256\",\"X\"]"), "tls.ciphers[1]",
               "unknown cipher suite \"X\"; supported: TLS_AES_256_GCM_SHA384, "
               "TLS_AES_128_GCM_SHA256, TLS_CHACHA20_POLY1305_SHA256");
    expect_err(with("tls", "\"min_version\":\"1.2\",\"ciphers\":[\"TLS_AES_128_GCM_SHA256\","
                           "\"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA\"]"),
               "tls.ciphers[1]", "\"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA\" is refused: CBC with "
               "a SHA-1 MAC");
    expect_err(with("tls", "\"min_version\":\"1.2\",\"ciphers\":[\"TLS_AES_128_GCM_SHA256\","
                           "\"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384\"]"),
               "tls.ciphers[1]", "CBC is not an AEAD mode");
    expect_err(with("tls", "\"min_version\":\"1.2\",\"ciphers\":[\"TLS_AES_128_GCM_SHA256\","
                           "\"TLS_RSA_WITH_AES_128_GCM_SHA256\"]"),
               "tls.ciphers[1]", "no forward secrecy");
    expect_err(with("tls", "\"min_version\":\"1.2\",\"ciphers\":[\"TLS_AES_128_GCM_SHA256\","
                           "\"TLS_DHE_RSA_WITH_AES_128_GCM_SHA256\"]"),
               "tls.ciphers[1]", "finite-field DHE key exchange is outside tls.groups");
    expect_err(with("tls", "\"ciphers\":[\"TLS_AES_128_GCM_SHA256\","
                           "\"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\"]"),
               "tls.ciphers[1]", "is a TLS 1.2 suite: it needs tls.min_version \"1.2\"");
    expect_err(with("tls", "\"min_version\":\"1.2\",\"ciphers\":"
                           "[\"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\"]"),
               "tls.ciphers", "needs at least one TLS 1.3 suite");
    expect_err(with("tls", "\"ciphers\":[\"TLS_AES_128_GCM_SHA256\",\"tls_aes_128_gcm_sha256\"]"),
               "tls.ciphers[1]", "duplicate cipher suite \"tls_aes_128_gcm_sha256\" (same as "
               "tls.ciphers[0])");
    expect_err(with("tls", "\"ciphers\":[]"), "tls.ciphers", "must list between 1 and");
    expect_err(with("tls", "\"ciphers\":\"TLS_AES_128_GCM_SHA256\""), "tls.ciphers",
               "must be an array");
    expect_err(with("tls", "\"ciphers\":[4865]"), "tls.ciphers[0]", "must be a string");
    /* the order is kept whatever min_version's place in the file */
    c = ok("{\"tls\":{\"ciphers\":[\"TLS_AES_128_GCM_SHA256\",\"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\"],"
           "\"min_version\":\"1.2\",\"certificates\":[{\"cert\":\"/dev/null\",\"key\":\"/dev/null\"}]}}");
    assert_int_equal(c->tls.ciphers[1], 0xC02F);
    px_config_free(c);
}

static void test_config_sigalgs(void **state)
{
    px_config_t *c = ok(with("tls", "\"signature_algorithms\":[\"mldsa65\","
                                    "\"ecdsa_secp256r1_sha256\",\"rsa_pkcs1_sha256\"]"));
    assert_int_equal(c->tls.sigalg_count, 3);
    assert_int_equal(c->tls.sigalgs[0], PX_SIG_MLDSA65);
    assert_int_equal(c->tls.sigalgs[2], PX_SIG_RSA_PKCS1_256);
    px_config_free(c);
    expect_err(with("tls", "\"signature_algorithms\":[\"ecdsa_secp256r1_sha256\",\"dsa\"]"),
               "tls.signature_algorithms[1]", "unknown signature algorithm \"dsa\"; supported: "
               "ecdsa_secp256r1_sha256, ecdsa_secp384r1_sha384,");
    expect_err(with("tls", "\"signature_algorithms\":[\"rsa_pkcs1_sha1\"]"),
               "tls.signature_algorithms[0]", "is refused: SHA-1 signatures are not allowed");
    expect_err(with("tls", "\"signature_algorithms\":[\"ecdsa_sha1\"]"),
               "tls.signature_algorithms[0]", "SHA-1");
    expect_err(with("tls", "\"signature_algorithms\":[\"rsa_pss_pss_sha256\"]"),
               "tls.signature_algorithms[0]", "RSASSA-PSS");
    expect_err(with("tls", "\"signature_algorithms\":[\"ed25519\",\"ED25519\"]"),
               "tls.signature_algorithms[1]", "duplicate signature algorithm");
    expect_err(with("tls", "\"signature_algorithms\":[]"), "tls.signature_algorithms",
               "must list between 1 and");
    expect_err(with("tls", "\"signature_algorithm\":[]"), "tls.signature_algorithm",
               "did you mean signature_algorithms?");
}

/* ---- certificates --------------------------------------------------------------- */

static void test_server_cert_scheme(void **state)
{
    px_pem_pair_t cap, leaf;     /* an ECDSA P-256 leaf */
    px_tls_config_t cfg;
    px_tls_ctx_t *ctx;
    char e[512], leaf_crt[PATH_MAX], leaf_key[PATH_MAX];

    assert_int_equal(px_certgen_ca(PX_KEY_ECDSA_P256, "CA", 1, &cap), 0);
    assert_int_equal(px_certgen_leaf(PX_KEY_ECDSA_P256, &cap, "localhost", NULL, 0, 1, 0, &leaf), 0);
    snprintf(leaf_crt, sizeof leaf_crt, "%s/leaf.crt", tmpdir);
    snprintf(leaf_key, sizeof leaf_key, "%s/leaf.key", tmpdir);
    write_file(leaf_crt, leaf.cert_pem);
    write_file(leaf_key, leaf.key_pem);
    memset(&cfg, 0, sizeof cfg);
    cfg.certs[0].cert_file = leaf_crt;
    cfg.certs[0].key_file = leaf_key;
    cfg.cert_count = 1;
    cfg.groups[0] = px_group_from_name("X25519MLKEM768");
    cfg.group_count = 1;
    cfg.min_version = 13;
    cfg.sigalgs[0] = PX_SIG_MLDSA65;
    cfg.sigalgs[1] = PX_SIG_ECDSA_P384;
    cfg.sigalg_count = 2;
    assert_null(px_tls_ctx_server_new(&cfg, e, sizeof e));
    assert_string_equal(e, "tls.certificates[0].cert: its ECDSA-P256 key signs with "
                           "ecdsa_secp256r1_sha256, which tls.signature_algorithms does not allow");
    cfg.sigalgs[1] = PX_SIG_ECDSA_P256;
    ctx = px_tls_ctx_server_new(&cfg, e, sizeof e);
    if (!ctx)
        fail_msg("%s", e);
    px_tls_ctx_unref(ctx);
    unlink(leaf_crt);
    unlink(leaf_key);
    px_pem_pair_free(&cap);
    px_pem_pair_free(&leaf);
}

/* DER of the first certificate in pem */
static int der_of(const px_pem_pair_t *p, unsigned char *der, int len)
{
    int n = wc_CertPemToDer((const unsigned char *)p->cert_pem, (int)p->cert_len, der, len,
                            CERT_TYPE);
    assert_true(n > 0);
    return n;
}

static void expect_peer(const uint16_t *allowed, int n, const unsigned char *der, int der_len,
                        int tls13, const char *why_part)
{
    char why[200] = "";
    int rc = px_sigalg_check_peer_cert(allowed, n, der, der_len, 0, tls13, why, sizeof why);
    if (!why_part && rc != 0)
        fail_msg("refused: %s", why);
    if (why_part && (rc == 0 || !strstr(why, why_part)))
        fail_msg("expected refusal with \"%s\", got rc %d \"%s\"", why_part, rc, why);
}

static void test_client_cert_check(void **state)
{
    px_pem_pair_t ca384, leaf256, pqca, pqleaf, rsaca, rsaleaf;
    unsigned char der[16384];
    int n;

    assert_int_equal(px_certgen_ca(PX_KEY_ECDSA_P384, "CA", 1, &ca384), 0);
    assert_int_equal(px_certgen_leaf(PX_KEY_ECDSA_P256, &ca384, "c", NULL, 0, 1, 1, &leaf256), 0);
    n = der_of(&leaf256, der, sizeof der);
    {
        const uint16_t both[] = { PX_SIG_ECDSA_P256, PX_SIG_ECDSA_P384 };
        const uint16_t p256[] = { PX_SIG_ECDSA_P256 }, p384[] = { PX_SIG_ECDSA_P384 };
        expect_peer(both, 2, der, n, 1, NULL);
        expect_peer(p256, 1, der, n, 1, "signed with ecdsa_secp384r1_sha384, not in");
        expect_peer(p384, 1, der, n, 1, "key signs with ecdsa_secp256r1_sha256, not in");
    }
    assert_int_equal(px_certgen_ca(PX_KEY_MLDSA87, "PQ CA", 1, &pqca), 0);
    assert_int_equal(px_certgen_leaf(PX_KEY_MLDSA65, &pqca, "c", NULL, 0, 1, 1, &pqleaf), 0);
    n = der_of(&pqleaf, der, sizeof der);
    {
        const uint16_t ok_[] = { PX_SIG_MLDSA65, PX_SIG_MLDSA87 }, leaf_only[] = { PX_SIG_MLDSA65 };
        expect_peer(ok_, 2, der, n, 1, NULL);
        expect_peer(leaf_only, 1, der, n, 1, "signed with mldsa87");
    }
    assert_int_equal(px_certgen_ca(PX_KEY_RSA2048, "RSA CA", 1, &rsaca), 0);
    assert_int_equal(px_certgen_leaf(PX_KEY_RSA2048, &rsaca, "c", NULL, 0, 1, 1, &rsaleaf), 0);
    n = der_of(&rsaleaf, der, sizeof der);
    {
        uint16_t defaults[PX_MAX_SIGALGS];
        int nd = px_sigalg_defaults(defaults, PX_MAX_SIGALGS);
        const uint16_t with_pkcs1[] = { PX_SIG_RSA_PSS_RSAE_384, PX_SIG_RSA_PKCS1_256 };
        const uint16_t pkcs1_only[] = { PX_SIG_RSA_PKCS1_256 };
        /* signed sha256WithRSAEncryption: PKCS#1 v1.5, not in the defaults */
        expect_peer(defaults, nd, der, n, 1, "signed with rsa_pkcs1_sha256");
        expect_peer(with_pkcs1, 2, der, n, 1, NULL);
        /* the key itself signs with RSA-PSS in TLS 1.3, PKCS#1 v1.5 may do in 1.2 */
        expect_peer(pkcs1_only, 1, der, n, 1, "key signs with rsa_pss_rsae_sha256");
        expect_peer(pkcs1_only, 1, der, n, 0, NULL);
    }
    memset(der, 0x30, 64);
    {
        const uint16_t p256[] = { PX_SIG_ECDSA_P256 };
        expect_peer(p256, 1, der, 64, 1, "cannot be parsed");
    }
    px_pem_pair_free(&ca384);
    px_pem_pair_free(&leaf256);
    px_pem_pair_free(&pqca);
    px_pem_pair_free(&pqleaf);
    px_pem_pair_free(&rsaca);
    px_pem_pair_free(&rsaleaf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cipher_table),
        cmocka_unit_test(test_sigalg_table),
        cmocka_unit_test(test_config_ciphers),
        cmocka_unit_test(test_config_sigalgs),
        cmocka_unit_test(test_server_cert_scheme),
        cmocka_unit_test(test_client_cert_check),
    };
    px_tls_global_init();
    return cmocka_run_group_tests(tests, setup, teardown);
}
