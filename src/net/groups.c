/* TLS named groups: config names <-> code points (IANA TLS Supported Groups). */
#include "config/config.h"

#include <string.h>
#include <strings.h>

static const struct {
    uint16_t id;
    const char *name;
    int hybrid;
} groups[] = {
    { 0x11EC, "X25519MLKEM768", 1 },       /* draft-ietf-tls-ecdhe-mlkem */
    { 0x11EB, "SecP256r1MLKEM768", 1 },
    { 0x11ED, "SecP384r1MLKEM1024", 1 },
    { 29, "X25519", 0 },
    { 23, "secp256r1", 0 },
    { 24, "secp384r1", 0 },
    { 25, "secp521r1", 0 },
    { 30, "X448", 0 },
};

uint16_t px_group_from_name(const char *name)
{
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
        if (!strcasecmp(groups[i].name, name))
            return groups[i].id;
    /* common aliases */
    if (!strcasecmp(name, "P-256") || !strcasecmp(name, "prime256v1"))
        return 23;
    if (!strcasecmp(name, "P-384"))
        return 24;
    return 0;
}

const char *px_group_name(uint16_t id)
{
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
        if (groups[i].id == id)
            return groups[i].name;
    return NULL;
}

int px_group_is_hybrid(uint16_t id)
{
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
        if (groups[i].id == id)
            return groups[i].hybrid;
    return 0;
}

static uint16_t all_ids[sizeof groups / sizeof groups[0]];
int px_group_all(const uint16_t **ids_out)
{
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
        all_ids[i] = groups[i].id;
    *ids_out = all_ids;
    return (int)(sizeof groups / sizeof groups[0]);
}

/* --- key shares (RFC 8446 4.2.8, draft-ietf-tls-ecdhe-mlkem) --------------------- */

#define X25519_LEN 32

/* The X25519 values whose shared secret is all zero whatever the scalar
 * (RFC 7748 6.1, RFC 8446 7.4.2): 0, 1, the two points of order 8, and
 * p-1, p, p+1; compared with the top bit masked, as X25519 ignores it. */
static const uint8_t x25519_low_order[][X25519_LEN] = {
    { 0 },
    { 1 },
    { 0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a,
      0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00 },
    { 0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef, 0x5b,
      0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f, 0x11, 0x57 },
    { 0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
      0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f },
    { 0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
      0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f },
    { 0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
      0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f },
};

static const char *check_x25519(const uint8_t *u)
{
    for (size_t i = 0; i < sizeof x25519_low_order / sizeof x25519_low_order[0]; i++) {
        const uint8_t *b = x25519_low_order[i];
        if (!memcmp(u, b, X25519_LEN - 1) && (u[X25519_LEN - 1] & 0x7f) == b[X25519_LEN - 1])
            return "an X25519 share of low order (its shared secret would be zero)";
    }
    return NULL;
}

/* An uncompressed point (SEC 1: 0x04 || x || y); on the curve is checked
 * by the key exchange itself. */
static const char *check_ec_point(const uint8_t *p, size_t len, size_t want)
{
    if (len != want || p[0] != 0x04)
        return "not an uncompressed point of its curve";
    return NULL;
}

/* FIPS 203 7.2 modulus check on an ML-KEM encapsulation key of k vectors:
 * every 12-bit coefficient of t-hat is below q = 3329. */
static const char *check_mlkem_ek(const uint8_t *ek, int k)
{
    for (size_t i = 0; i < (size_t)k * 384; i += 3) {
        unsigned a = ek[i] | ((unsigned)(ek[i + 1] & 0x0f) << 8);
        unsigned b = (ek[i + 1] >> 4) | ((unsigned)ek[i + 2] << 4);
        if (a >= 3329 || b >= 3329)
            return "an ML-KEM encapsulation key that fails the FIPS 203 modulus check";
    }
    return NULL;
}

const char *px_group_check_share(uint16_t group, const uint8_t *ke, size_t len)
{
    const char *why;
    switch (group) {
    case 29:            /* X25519 */
        return len != X25519_LEN ? "an X25519 share of the wrong length" : check_x25519(ke);
    case 23: return check_ec_point(ke, len, 65);
    case 24: return check_ec_point(ke, len, 97);
    case 25: return check_ec_point(ke, len, 133);
    case 0x11EC:        /* X25519MLKEM768: ML-KEM-768 ek || X25519 */
        if (len != 1184 + X25519_LEN)
            return "an X25519MLKEM768 share of the wrong length";
        return (why = check_mlkem_ek(ke, 3)) ? why : check_x25519(ke + 1184);
    case 0x11EB:        /* SecP256r1MLKEM768: P-256 point || ML-KEM-768 ek */
        if (len != 65 + 1184)
            return "a SecP256r1MLKEM768 share of the wrong length";
        return (why = check_ec_point(ke, 65, 65)) ? why : check_mlkem_ek(ke + 65, 3);
    case 0x11ED:        /* SecP384r1MLKEM1024: P-384 point || ML-KEM-1024 ek */
        if (len != 97 + 1568)
            return "a SecP384r1MLKEM1024 share of the wrong length";
        return (why = check_ec_point(ke, 97, 97)) ? why : check_mlkem_ek(ke + 97, 4);
    default:
        return len ? NULL : "an empty key share";
    }
}
