/* Bech32 encoding of age keys (bech32.h). */
#include "seal/bech32.h"

#include <string.h>

#include "core/errors.h"

static const char charset[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

static uint32_t polymod_step(uint32_t chk, uint8_t v)
{
    static const uint32_t gen[5] = { 0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3 };
    uint8_t top = (uint8_t)(chk >> 25);
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (int i = 0; i < 5; i++)
        if ((top >> i) & 1)
            chk ^= gen[i];
    return chk;
}

/* The checksum state after the expanded, lower-case HRP. */
static uint32_t hrp_polymod(const char *hrp, size_t n)
{
    uint32_t chk = 1;
    for (size_t i = 0; i < n; i++)
        chk = polymod_step(chk, (uint8_t)((hrp[i] | 0x20) >> 5));
    chk = polymod_step(chk, 0);
    for (size_t i = 0; i < n; i++)
        chk = polymod_step(chk, (uint8_t)((hrp[i] | 0x20) & 31));
    return chk;
}

static char case_char(char c, int upper)
{
    return upper && c >= 'a' && c <= 'z' ? (char)(c - 32) : (!upper && c >= 'A' && c <= 'Z' ? (char)(c + 32) : c);
}

int px_bech32_encode(const char *hrp, const uint8_t *data, size_t len, int upper,
                     char *out, size_t outlen)
{
    size_t hlen = strlen(hrp), n5 = (len * 8 + 4) / 5, o = 0;
    uint32_t acc = 0, chk;
    int bits = 0;

    if (!hlen)
        return PX_EINVAL;
    for (size_t i = 0; i < hlen; i++)
        if (hrp[i] < 33 || hrp[i] > 126)
            return PX_EINVAL;
    if (outlen < hlen + 1 + n5 + 6 + 1)
        return PX_ETOOBIG;
    chk = hrp_polymod(hrp, hlen);
    for (size_t i = 0; i < hlen; i++)
        out[o++] = case_char(hrp[i], upper);
    out[o++] = '1';
    for (size_t i = 0; i <= len; i++) {
        if (i < len) {
            acc = (acc << 8) | data[i];
            bits += 8;
        } else if (bits > 0) {
            acc <<= 5 - bits;    /* zero padding of the last group */
            bits = 5;
        }
        while (bits >= 5) {
            uint8_t v = (uint8_t)((acc >> (bits - 5)) & 31);
            bits -= 5;
            chk = polymod_step(chk, v);
            out[o++] = case_char(charset[v], upper);
        }
    }
    for (int i = 0; i < 6; i++)
        chk = polymod_step(chk, 0);
    chk ^= 1;
    for (int i = 0; i < 6; i++)
        out[o++] = case_char(charset[(chk >> (5 * (5 - i))) & 31], upper);
    out[o] = '\0';
    return (int)o;
}

int px_bech32_decode(const char *s, char *hrp, size_t hrpcap, uint8_t *data, size_t cap,
                     size_t *len, char *err, size_t errlen)
{
    size_t n = strlen(s), sep, o = 0;
    int lower = 0, upper = 0, bits = 0;
    uint32_t chk, acc = 0;
    const char *p;

    for (size_t i = 0; i < n; i++) {
        if (s[i] < 33 || s[i] > 126)
            return px_errorf(PX_EPARSE, err, errlen, "bech32: character %zu is not printable ASCII", i);
        lower |= s[i] >= 'a' && s[i] <= 'z';
        upper |= s[i] >= 'A' && s[i] <= 'Z';
    }
    if (lower && upper)
        return px_errorf(PX_EPARSE, err, errlen, "bech32: mixed upper and lower case");
    if (!(p = strrchr(s, '1')) || p == s)
        return px_errorf(PX_EPARSE, err, errlen, "bech32: no human-readable part before a '1'");
    sep = (size_t)(p - s);
    if (n - sep - 1 < 6)
        return px_errorf(PX_EPARSE, err, errlen, "bech32: too short for a checksum");
    if (sep + 1 > hrpcap)
        return px_errorf(PX_ETOOBIG, err, errlen, "bech32: prefix too long");
    for (size_t i = 0; i < sep; i++)
        hrp[i] = case_char(s[i], 0);
    hrp[sep] = '\0';
    chk = hrp_polymod(s, sep);
    for (size_t i = sep + 1; i < n; i++) {
        const char *c = strchr(charset, case_char(s[i], 0));
        if (!c || !*c)
            return px_errorf(PX_EPARSE, err, errlen, "bech32: '%c' is not a bech32 character", s[i]);
        uint8_t v = (uint8_t)(c - charset);
        chk = polymod_step(chk, v);
        if (i >= n - 6)
            continue;
        acc = (acc << 5) | v;
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap)
                return px_errorf(PX_ETOOBIG, err, errlen, "bech32: more than %zu bytes of data", cap);
            data[o++] = (uint8_t)(acc >> bits);
        }
    }
    if (chk != 1)
        return px_errorf(PX_EPARSE, err, errlen, "bech32: bad checksum (a mistyped or damaged key)");
    if (bits >= 5 || (acc & ((1u << bits) - 1)))
        return px_errorf(PX_EPARSE, err, errlen, "bech32: invalid padding");
    *len = o;
    return 0;
}
