/* Key-share checks of the ClientHello pre-parser (px_group_check_share):
 * lengths per group, uncompressed points, the FIPS 203 modulus check, and
 * X25519 values of low order. The low-order table is proved against
 * wolfSSL's own X25519: each listed value gives an all-zero shared secret
 * (which wolfSSL refuses), a random one does not. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/curve25519.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/random.h>

#include "config/config.h"

#define X25519 29
#define P256 23
#define X25519MLKEM768 0x11EC
#define P256MLKEM768 0x11EB
#define P384MLKEM1024 0x11ED

static const uint8_t order8_a[32] = {
    0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a,
    0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00 };
static const uint8_t order8_b[32] = {
    0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef, 0x5b,
    0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f, 0x11, 0x57 };

/* wolfSSL's X25519 with a fresh key against u: 0, or its error */
static int x25519_with(WC_RNG *rng, const uint8_t *u)
{
    curve25519_key priv, pub;
    uint8_t out[32];
    word32 outlen = sizeof out;
    int rc;
    assert_int_equal(wc_curve25519_init(&priv), 0);
    assert_int_equal(wc_curve25519_init(&pub), 0);
    assert_int_equal(wc_curve25519_make_key(rng, 32, &priv), 0);
    /* imported without wolfSSL's own public-value check: the product decides */
    memcpy(pub.p.point, u, 32);
    pub.p.point[31] &= 0x7f;
    pub.pubSet = 1;
    rc = wc_curve25519_shared_secret_ex(&priv, &pub, out, &outlen, EC25519_LITTLE_ENDIAN);
    wc_curve25519_free(&priv);
    wc_curve25519_free(&pub);
    return rc;
}

static void test_x25519_low_order(void **state)
{
    WC_RNG rng;
    uint8_t u[32];
    (void)state;
    assert_int_equal(wc_InitRng(&rng), 0);
    /* the two points of order 8: checked, and really of low order */
    assert_non_null(px_group_check_share(X25519, order8_a, 32));
    assert_non_null(px_group_check_share(X25519, order8_b, 32));
    assert_int_equal(x25519_with(&rng, order8_a), ECC_OUT_OF_RANGE_E);
    assert_int_equal(x25519_with(&rng, order8_b), ECC_OUT_OF_RANGE_E);
    /* 0, 1, p-1, p, p+1, and the same with the top bit set */
    for (int v = 0; v < 5; v++) {
        memset(u, v < 2 ? 0 : 0xff, 32);
        u[0] = (uint8_t)(v == 0 ? 0 : v == 1 ? 1 : 0xec + (v - 2));
        if (v >= 2)
            u[31] = 0x7f;
        assert_non_null(px_group_check_share(X25519, u, 32));
        u[31] |= 0x80;
        assert_non_null(px_group_check_share(X25519, u, 32));
    }
    /* random values are fine, for the check and for the key exchange */
    for (int i = 0; i < 16; i++) {
        assert_int_equal(wc_RNG_GenerateBlock(&rng, u, 32), 0);
        u[31] &= 0x7f;
        assert_null(px_group_check_share(X25519, u, 32));
        assert_int_equal(x25519_with(&rng, u), 0);
    }
    assert_non_null(px_group_check_share(X25519, u, 31));
    assert_non_null(px_group_check_share(X25519, u, 33));
    wc_FreeRng(&rng);
}

static void test_hybrid_and_ec_shares(void **state)
{
    static uint8_t ke[97 + 1568];
    (void)state;
    /* X25519MLKEM768: ek (coefficients all 0x123 < q) || X25519 */
    memset(ke, 0, sizeof ke);
    for (size_t i = 0; i < 1152; i += 3) {
        ke[i] = 0x23;
        ke[i + 1] = 0x31;       /* a = 0x123, b = 0x312 */
        ke[i + 2] = 0x31;
    }
    memcpy(ke + 1184, order8_b, 32);
    ke[1184] ^= 1;              /* not of low order any more */
    assert_null(px_group_check_share(X25519MLKEM768, ke, 1216));
    assert_non_null(px_group_check_share(X25519MLKEM768, ke, 1215));
    assert_non_null(px_group_check_share(X25519MLKEM768, ke, 1217));
    ke[1184] ^= 1;
    assert_non_null(px_group_check_share(X25519MLKEM768, ke, 1216));   /* its X25519 half */
    ke[1184] ^= 1;
    ke[300] = 0xff;             /* one coefficient: 0xfff >= q */
    ke[301] |= 0x0f;
    assert_non_null(px_group_check_share(X25519MLKEM768, ke, 1216));
    /* SecP256r1MLKEM768: point || ek */
    memset(ke, 0, sizeof ke);
    ke[0] = 0x04;
    assert_null(px_group_check_share(P256MLKEM768, ke, 65 + 1184));
    ke[0] = 0x02;               /* compressed: not allowed in TLS 1.3 */
    assert_non_null(px_group_check_share(P256MLKEM768, ke, 65 + 1184));
    ke[0] = 0x04;
    ke[65 + 1151] = 0xff;       /* the last coefficient of t-hat */
    assert_non_null(px_group_check_share(P256MLKEM768, ke, 65 + 1184));
    /* SecP384r1MLKEM1024 */
    memset(ke, 0, sizeof ke);
    ke[0] = 0x04;
    assert_null(px_group_check_share(P384MLKEM1024, ke, 97 + 1568));
    assert_non_null(px_group_check_share(P384MLKEM1024, ke, 97 + 1567));
    /* plain P-256 and groups the proxy does not know */
    assert_null(px_group_check_share(P256, ke, 65));
    assert_non_null(px_group_check_share(P256, ke, 64));
    assert_null(px_group_check_share(0x1234, ke, 7));
    assert_non_null(px_group_check_share(0x1234, ke, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_x25519_low_order),
        cmocka_unit_test(test_hybrid_and_ec_shares),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
