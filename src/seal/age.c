/* The age v1 format (age.h, docs/sealing.md). */
#include "seal/age.h"

#include <stdlib.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/chacha20_poly1305.h>
#include <wolfssl/wolfcrypt/curve25519.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/hmac.h>
#include <wolfssl/wolfcrypt/memory.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/sha3.h>
#include <wolfssl/wolfcrypt/wc_mlkem.h>

#include "seal/bech32.h"
#include "core/errors.h"
#include "sig/sigwire.h"

#define VERSION_LINE "age-encryption.org/v1"
#define X25519_INFO  "age-encryption.org/v1/X25519"
#define PQ_INFO      "age-encryption.org/mlkem768x25519"
#define MLKEM_PUB    1184
#define MLKEM_CT     1088
#define TAG          16
#define MAX_B64      2048   /* longest base64 argument accepted (a PQ share is 1,494) */

/* --- unpadded base64 (age's encoding) ------------------------------------------ */

/* Canonical, unpadded base64 of len characters: the decoded length or -1. */
static long b64_decode_raw(const char *in, size_t len, uint8_t *out, size_t cap)
{
    char tmp[MAX_B64 + 4];
    if (len > MAX_B64 || len % 4 == 1 || memchr(in, '=', len))
        return -1;
    memcpy(tmp, in, len);
    while (len % 4)
        tmp[len++] = '=';
    return px_b64_decode(tmp, len, out, cap);
}

/* Unpadded base64 of in into out (cap bytes): the length or -1. */
static long b64_encode_raw(const uint8_t *in, size_t len, char *out, size_t cap)
{
    long n = px_b64_encode(in, len, out, cap, 0);
    while (n > 0 && out[n - 1] == '=')
        out[--n] = '\0';
    return n;
}

/* --- primitives ------------------------------------------------------------------ */

/* Zeroing that the compiler cannot drop (keys, file keys, plaintext). */
static void wipe(void *p, size_t n)
{
    volatile uint8_t *v = p;
    while (n--)
        *v++ = 0;
}

/* 1 when equal, in time independent of the contents. */
static int ct_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
    uint8_t d = 0;
    for (size_t i = 0; i < n; i++)
        d |= a[i] ^ b[i];
    return d == 0;
}

static int random_bytes(uint8_t *out, size_t n)
{
    WC_RNG rng;
    int ret;
    if (wc_InitRng(&rng) != 0)
        return PX_ECRYPTO;
    ret = wc_RNG_GenerateBlock(&rng, out, (word32)n) == 0 ? 0 : PX_ECRYPTO;
    wc_FreeRng(&rng);
    return ret;
}

/* X25519(scalar, point) per RFC 7748 (the scalar is clamped here). */
static int x25519(uint8_t out[32], const uint8_t scalar[32], const uint8_t point[32])
{
    static const uint8_t zero[32];
    uint8_t k[32], u[32];
    int ret;
    memcpy(k, scalar, 32);
    k[0] &= 248;
    k[31] = (uint8_t)((k[31] & 127) | 64);
    /* RFC 7748 masks the u-coordinate's top bit; wolfSSL does not, which
     * turns a low-order share with that bit set into another point */
    memcpy(u, point, 32);
    u[31] &= 127;
    ret = wc_curve25519_generic(32, out, 32, k, 32, u);
    wipe(k, sizeof k);
    if (ret != 0)
        return PX_ECRYPTO;
    /* an all-zero result means a low-order point: refused (age spec) */
    return ct_equal(out, zero, 32) ? PX_EPARSE : 0;
}

static int x25519_base(uint8_t out[32], const uint8_t scalar[32])
{
    static const uint8_t base[32] = { 9 };
    return x25519(out, scalar, base);
}

static int hkdf(const uint8_t *ikm, size_t ikmlen, const uint8_t *salt, size_t saltlen,
                const char *info, uint8_t *out, size_t outlen)
{
    return wc_HKDF(WC_SHA256, ikm, (word32)ikmlen, salt, (word32)saltlen, (const byte *)info,
                   (word32)strlen(info), out, (word32)outlen) == 0 ? 0 : PX_ECRYPTO;
}

/* ChaCha20-Poly1305 with a 12-byte nonce and no AAD; out holds len + TAG. */
static int aead_seal(const uint8_t key[32], const uint8_t nonce[12], const uint8_t *in,
                     size_t len, uint8_t *out)
{
    return wc_ChaCha20Poly1305_Encrypt(key, nonce, NULL, 0, in, (word32)len, out, out + len) == 0
        ? 0 : PX_ECRYPTO;
}

/* in is len + TAG bytes; out gets len. */
static int aead_open(const uint8_t key[32], const uint8_t nonce[12], const uint8_t *in,
                     size_t len, uint8_t *out)
{
    return wc_ChaCha20Poly1305_Decrypt(key, nonce, NULL, 0, in, (word32)len, in + len, out) == 0
        ? 0 : PX_ECRYPTO;
}

/* --- X-Wing (MLKEM768-X25519) --------------------------------------------------- */

/* The seed expands to ML-KEM's (d, z) and the X25519 scalar: SHAKE256(seed, 96). */
static int xwing_expand(const uint8_t seed[32], MlKemKey *mk, uint8_t sk_x[32])
{
    uint8_t ex[96];
    int ret = PX_ECRYPTO;
    if (wc_Shake256Hash(seed, 32, ex, sizeof ex) == 0 &&
        wc_MlKemKey_Init(mk, WC_ML_KEM_768, NULL, INVALID_DEVID) == 0) {
        if (wc_MlKemKey_MakeKeyWithRandom(mk, ex, 64) == 0) {
            memcpy(sk_x, ex + 64, 32);
            ret = 0;
        } else {
            wc_MlKemKey_Free(mk);
        }
    }
    wipe(ex, sizeof ex);
    return ret;
}

/* SHA3-256(ss_M || ss_X || ct_X || pk_X || XWingLabel) */
static int xwing_combine(const uint8_t ss_m[32], const uint8_t ss_x[32], const uint8_t ct_x[32],
                         const uint8_t pk_x[32], uint8_t ss[32])
{
    static const uint8_t label[6] = { 0x5c, 0x2e, 0x2f, 0x2f, 0x5e, 0x5c };   /* \.//^\ */
    uint8_t in[32 * 4 + 6];
    memcpy(in, ss_m, 32);
    memcpy(in + 32, ss_x, 32);
    memcpy(in + 64, ct_x, 32);
    memcpy(in + 96, pk_x, 32);
    memcpy(in + 128, label, 6);
    int ret = wc_Sha3_256Hash(in, sizeof in, ss) == 0 ? 0 : PX_ECRYPTO;
    wipe(in, sizeof in);
    return ret;
}

static int xwing_public(const uint8_t seed[32], uint8_t pub[PX_AGE_PQ_PUB_LEN])
{
    MlKemKey mk;
    uint8_t sk_x[32];
    int ret = xwing_expand(seed, &mk, sk_x);
    if (ret)
        return ret;
    if (wc_MlKemKey_EncodePublicKey(&mk, pub, MLKEM_PUB) != 0 || x25519_base(pub + MLKEM_PUB, sk_x))
        ret = PX_ECRYPTO;
    wc_MlKemKey_Free(&mk);
    wipe(sk_x, sizeof sk_x);
    return ret;
}

static int xwing_encaps(const uint8_t pub[PX_AGE_PQ_PUB_LEN], uint8_t enc[PX_AGE_PQ_ENC_LEN],
                        uint8_t ss[32])
{
    MlKemKey mk;
    uint8_t ek_x[32], ss_m[32], ss_x[32], rnd[32];
    int ret = PX_ECRYPTO;

    if (random_bytes(ek_x, 32) || random_bytes(rnd, 32) ||
        wc_MlKemKey_Init(&mk, WC_ML_KEM_768, NULL, INVALID_DEVID) != 0)
        return PX_ECRYPTO;
    if (wc_MlKemKey_DecodePublicKey(&mk, pub, MLKEM_PUB) == 0 &&
        wc_MlKemKey_EncapsulateWithRandom(&mk, enc, ss_m, rnd, 32) == 0 &&
        x25519_base(enc + MLKEM_CT, ek_x) == 0 && x25519(ss_x, ek_x, pub + MLKEM_PUB) == 0)
        ret = xwing_combine(ss_m, ss_x, enc + MLKEM_CT, pub + MLKEM_PUB, ss);
    wc_MlKemKey_Free(&mk);
    wipe(ek_x, 32);
    wipe(ss_m, 32);
    wipe(ss_x, 32);
    return ret;
}

static int xwing_decaps(const uint8_t seed[32], const uint8_t enc[PX_AGE_PQ_ENC_LEN], uint8_t ss[32])
{
    MlKemKey mk;
    uint8_t sk_x[32], pk_x[32], ss_m[32], ss_x[32];
    int ret = xwing_expand(seed, &mk, sk_x);
    if (ret)
        return ret;
    if (wc_MlKemKey_Decapsulate(&mk, ss_m, enc, MLKEM_CT) != 0 || x25519_base(pk_x, sk_x) != 0)
        ret = PX_ECRYPTO;
    else if ((ret = x25519(ss_x, sk_x, enc + MLKEM_CT)) == 0)   /* PX_EPARSE: low order */
        ret = xwing_combine(ss_m, ss_x, enc + MLKEM_CT, pk_x, ss);
    wc_MlKemKey_Free(&mk);
    wipe(sk_x, 32);
    wipe(ss_m, 32);
    wipe(ss_x, 32);
    return ret;
}

/* --- HPKE (RFC 9180) base mode: KEM 0x647a, HKDF-SHA256, ChaCha20Poly1305 -------- */

static const uint8_t hpke_suite[10] = { 'H', 'P', 'K', 'E', 0x64, 0x7a, 0x00, 0x01, 0x00, 0x03 };

static int labeled_extract(const uint8_t *salt, size_t saltlen, const char *label,
                           const uint8_t *ikm, size_t ikmlen, uint8_t prk[32])
{
    uint8_t in[7 + 10 + 32 + 64];
    size_t ll = strlen(label), n = 0;
    memcpy(in, "HPKE-v1", 7), n += 7;
    memcpy(in + n, hpke_suite, 10), n += 10;
    memcpy(in + n, label, ll), n += ll;
    if (ikmlen)   /* the PSK and its id are empty: ikm may be NULL */
        memcpy(in + n, ikm, ikmlen), n += ikmlen;
    int ret = wc_HKDF_Extract(WC_SHA256, salt, (word32)saltlen, in, (word32)n, prk) == 0 ? 0 : PX_ECRYPTO;
    wipe(in, sizeof in);
    return ret;
}

static int labeled_expand(const uint8_t prk[32], const char *label, const uint8_t *info,
                          size_t infolen, uint8_t *out, size_t len)
{
    uint8_t in[2 + 7 + 10 + 16 + 65];
    size_t ll = strlen(label), n = 0;
    in[n++] = (uint8_t)(len >> 8);
    in[n++] = (uint8_t)len;
    memcpy(in + n, "HPKE-v1", 7), n += 7;
    memcpy(in + n, hpke_suite, 10), n += 10;
    memcpy(in + n, label, ll), n += ll;
    memcpy(in + n, info, infolen), n += infolen;
    return wc_HKDF_Expand(WC_SHA256, prk, 32, in, (word32)n, out, (word32)len) == 0 ? 0 : PX_ECRYPTO;
}

/* The AEAD key and nonce of the HPKE context for age's info string. */
static int hpke_key_schedule(const uint8_t ss[32], uint8_t key[32], uint8_t nonce[12])
{
    uint8_t ctx[65], secret[32];
    int ret;
    ctx[0] = 0;   /* mode_base */
    if ((ret = labeled_extract(NULL, 0, "psk_id_hash", NULL, 0, ctx + 1)) ||
        (ret = labeled_extract(NULL, 0, "info_hash", (const uint8_t *)PQ_INFO, strlen(PQ_INFO),
                               ctx + 33)) ||
        (ret = labeled_extract(ss, 32, "secret", NULL, 0, secret)) ||
        (ret = labeled_expand(secret, "key", ctx, sizeof ctx, key, 32)) ||
        (ret = labeled_expand(secret, "base_nonce", ctx, sizeof ctx, nonce, 12)))
        ret = PX_ECRYPTO;
    wipe(secret, sizeof secret);
    return ret;
}

/* --- keys -------------------------------------------------------------------------- */

static const struct {
    px_age_kind_t kind;
    const char *pub_hrp, *sec_hrp;
    size_t pub_len;
} kinds[] = {
    { PX_AGE_X25519, "age", "AGE-SECRET-KEY-", PX_AGE_X25519_LEN },
    { PX_AGE_PQ, "age1pq", "AGE-SECRET-KEY-PQ-", PX_AGE_PQ_PUB_LEN },
};

int px_age_parse_recipient(const char *s, px_age_recipient_t *r, char *err, size_t errlen)
{
    char hrp[32];
    size_t len;
    int ret = px_bech32_decode(s, hrp, sizeof hrp, r->pub, sizeof r->pub, &len, err, errlen);
    if (ret)
        return ret;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (strcmp(hrp, kinds[i].pub_hrp))
            continue;
        if (len != kinds[i].pub_len)
            return px_errorf(PX_EPARSE, err, errlen, "a %s1... recipient must hold %zu bytes",
                             kinds[i].pub_hrp, kinds[i].pub_len);
        r->kind = kinds[i].kind;
        return 0;
    }
    return px_errorf(PX_EPARSE, err, errlen,
                     "unknown recipient type '%s1...' (expected age1... or age1pq1...)", hrp);
}

int px_age_parse_identity(const char *s, px_age_identity_t *id, char *err, size_t errlen)
{
    char hrp[32];
    uint8_t buf[33];
    size_t len;
    int ret = px_bech32_decode(s, hrp, sizeof hrp, buf, sizeof buf, &len, err, errlen);
    if (ret)
        return ret;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (strcasecmp(hrp, kinds[i].sec_hrp))
            continue;
        if (len != 32)
            return px_errorf(PX_EPARSE, err, errlen, "a %s1... identity must hold 32 bytes",
                             kinds[i].sec_hrp);
        id->kind = kinds[i].kind;
        memcpy(id->secret, buf, 32);
        wipe(buf, sizeof buf);
        return 0;
    }
    return px_errorf(PX_EPARSE, err, errlen,
                     "unknown identity type (expected AGE-SECRET-KEY-1... or AGE-SECRET-KEY-PQ-1...)");
}

static int public_key(const px_age_identity_t *id, uint8_t *pub)
{
    return id->kind == PX_AGE_X25519 ? x25519_base(pub, id->secret) : xwing_public(id->secret, pub);
}

int px_age_identity_recipient(const px_age_identity_t *id, char *out, char *err, size_t errlen)
{
    uint8_t pub[PX_AGE_PQ_PUB_LEN];
    int k = id->kind == PX_AGE_X25519 ? 0 : 1;
    if (public_key(id, pub))
        return px_errorf(PX_ECRYPTO, err, errlen, "cannot derive the public key");
    if (px_bech32_encode(kinds[k].pub_hrp, pub, kinds[k].pub_len, 0, out, PX_AGE_KEY_STR) < 0)
        return px_errorf(PX_ETOOBIG, err, errlen, "recipient does not fit");
    return 0;
}

int px_age_keygen(px_age_kind_t kind, char *identity, char *recipient, char *err, size_t errlen)
{
    px_age_identity_t id = { .kind = kind };
    int k = kind == PX_AGE_X25519 ? 0 : 1, ret;
    if (random_bytes(id.secret, 32))
        return px_errorf(PX_ECRYPTO, err, errlen, "the random number generator failed");
    ret = px_age_identity_recipient(&id, recipient, err, errlen);
    if (!ret && px_bech32_encode(kinds[k].sec_hrp, id.secret, 32, 1, identity, PX_AGE_KEY_STR) < 0)
        ret = px_errorf(PX_ETOOBIG, err, errlen, "identity does not fit");
    wipe(&id, sizeof id);
    return ret;
}

/* --- header ------------------------------------------------------------------------- */

void px_age_header_free(px_age_header_t *h)
{
    free(h->store);
    h->store = NULL;
}

/* One line from *p (without its '\n') or NULL when none ends before end. */
static const char *next_line(const char **p, const char *end, size_t *len)
{
    const char *s = *p, *nl = memchr(s, '\n', (size_t)(end - s));
    if (!nl)
        return NULL;
    *len = (size_t)(nl - s);
    *p = nl + 1;
    return s;
}

int px_age_header_parse(const uint8_t *buf, size_t len, px_age_header_t *h, char *err,
                        size_t errlen)
{
    const char *p = (const char *)buf, *end = p + len, *line;
    size_t ll, o = 0;
    int lineno = 1;

    memset(h, 0, sizeof *h);
    if (len > PX_AGE_MAX_HEADER)
        len = PX_AGE_MAX_HEADER, end = p + len;
    /* type, args and bodies are never longer than the text they come from */
    if (!(h->store = malloc(2 * len + 1)))
        return px_errorf(PX_ENOMEM, err, errlen, "out of memory");
    if (!(line = next_line(&p, end, &ll)))
        return px_errorf(PX_EPARSE, err, errlen, "not an age file: no complete first line");
    if (ll != strlen(VERSION_LINE) || memcmp(line, VERSION_LINE, ll))
        return px_errorf(PX_EPARSE, err, errlen,
                         "not an age v1 file: the first line is not '" VERSION_LINE "'");
    for (;;) {
        lineno++;
        if (!(line = next_line(&p, end, &ll)))
            return px_errorf(len == PX_AGE_MAX_HEADER ? PX_ETOOBIG : PX_EPARSE, err, errlen,
                             len == PX_AGE_MAX_HEADER ? "header longer than %d bytes"
                                                      : "header truncated at line %d", 
                             len == PX_AGE_MAX_HEADER ? PX_AGE_MAX_HEADER : lineno);
        if (ll >= 3 && !memcmp(line, "---", 3)) {
            if (ll != 4 + 43 || line[3] != ' ' || b64_decode_raw(line + 4, 43, h->mac, 32) != 32)
                return px_errorf(PX_EPARSE, err, errlen, "line %d: malformed MAC line", lineno);
            h->mac_off = (size_t)(line + 3 - (const char *)buf);
            h->len = (size_t)(p - (const char *)buf);
            if (h->n == 0)
                return px_errorf(PX_EPARSE, err, errlen, "header has no recipient stanza");
            return 0;
        }
        if (ll < 3 || memcmp(line, "-> ", 3))
            return px_errorf(PX_EPARSE, err, errlen,
                             "line %d: expected a stanza ('-> ') or the MAC line ('--- ')", lineno);
        if (h->n == PX_AGE_MAX_STANZAS)
            return px_errorf(PX_ETOOBIG, err, errlen, "more than %d stanzas", PX_AGE_MAX_STANZAS);
        px_age_stanza_t *st = &h->st[h->n++];
        /* space-separated type and arguments, each non-empty visible ASCII */
        for (size_t i = 3; i <= ll;) {
            size_t j = i;
            while (j < ll && line[j] != ' ')
                j++;
            if (j == i)
                return px_errorf(PX_EPARSE, err, errlen, "line %d: empty stanza argument", lineno);
            for (size_t k = i; k < j; k++)
                if (line[k] < 0x21 || line[k] > 0x7e)
                    return px_errorf(PX_EPARSE, err, errlen,
                                     "line %d: stanza arguments must be visible ASCII", lineno);
            if (st->type && st->nargs == PX_AGE_MAX_ARGS)
                return px_errorf(PX_EPARSE, err, errlen, "line %d: more than %d stanza arguments",
                                 lineno, PX_AGE_MAX_ARGS);
            memcpy(h->store + o, line + i, j - i);
            h->store[o + j - i] = '\0';
            if (!st->type)
                st->type = h->store + o;
            else
                st->args[st->nargs++] = h->store + o;
            o += j - i + 1;
            i = j + 1;
        }
        /* the body: full 64-column lines, then one shorter (maybe empty) */
        st->body = (const uint8_t *)h->store + o;
        do {
            long n;
            lineno++;
            if (!(line = next_line(&p, end, &ll)))
                return px_errorf(len == PX_AGE_MAX_HEADER ? PX_ETOOBIG : PX_EPARSE, err, errlen,
                                 "header %s in the body of stanza %d",
                                 len == PX_AGE_MAX_HEADER ? "too long" : "truncated", h->n);
            if (ll > 64 || (n = b64_decode_raw(line, ll, (uint8_t *)h->store + o, 48)) < 0)
                return px_errorf(PX_EPARSE, err, errlen,
                                 "line %d: stanza body is not canonical unpadded base64 "
                                 "in lines of 64 columns", lineno);
            o += (size_t)n;
            st->body_len += (size_t)n;
        } while (ll == 64);
    }
}

/* HMAC-SHA-256 of the header with HKDF(file key, "header"). */
static int header_mac(const uint8_t fk[PX_AGE_FILE_KEY], const uint8_t *hdr, size_t len,
                      uint8_t mac[32])
{
    uint8_t key[32];
    Hmac hm;
    int ret = PX_ECRYPTO;
    if (hkdf(fk, PX_AGE_FILE_KEY, NULL, 0, "header", key, 32) == 0 &&
        wc_HmacInit(&hm, NULL, INVALID_DEVID) == 0) {
        if (wc_HmacSetKey(&hm, WC_SHA256, key, 32) == 0 && wc_HmacUpdate(&hm, hdr, (word32)len) == 0 &&
            wc_HmacFinal(&hm, mac) == 0)
            ret = 0;
        wc_HmacFree(&hm);
    }
    wipe(key, sizeof key);
    return ret;
}

/* --- stanzas --------------------------------------------------------------------------- */

/* Appends "-> TYPE ARG\n" and the body in 64-column lines to the header. */
static int put_stanza(char *hdr, size_t *o, size_t cap, const char *type, const uint8_t *arg,
                      size_t arglen, const uint8_t *body, size_t bodylen)
{
    char b64[MAX_B64];
    long n = b64_encode_raw(arg, arglen, b64, sizeof b64);
    int w = snprintf(hdr + *o, cap - *o, "-> %s %s\n", type, b64);
    if (n < 0 || w < 0 || (size_t)w >= cap - *o)
        return PX_ETOOBIG;
    *o += (size_t)w;
    n = b64_encode_raw(body, bodylen, b64, sizeof b64);
    for (long i = 0; n >= 0; i += 64) {
        long l = n - i < 64 ? n - i : 64;
        if (*o + (size_t)l + 2 > cap)
            return PX_ETOOBIG;
        memcpy(hdr + *o, b64 + i, (size_t)l);
        *o += (size_t)l;
        hdr[(*o)++] = '\n';
        if (l < 64)
            break;
    }
    return n < 0 ? PX_ETOOBIG : 0;
}

static int wrap(const px_age_recipient_t *r, const uint8_t fk[PX_AGE_FILE_KEY], char *hdr,
                size_t *o, size_t cap)
{
    static const uint8_t zero_nonce[12];
    uint8_t key[32], nonce[12], body[PX_AGE_FILE_KEY + TAG];
    int ret;

    if (r->kind == PX_AGE_X25519) {
        uint8_t eph[32], share[32], ss[32], salt[64];
        if ((ret = random_bytes(eph, 32)) == 0 && (ret = x25519_base(share, eph)) == 0 &&
            (ret = x25519(ss, eph, r->pub)) == 0) {
            memcpy(salt, share, 32);
            memcpy(salt + 32, r->pub, 32);
            if ((ret = hkdf(ss, 32, salt, 64, X25519_INFO, key, 32)) == 0 &&
                (ret = aead_seal(key, zero_nonce, fk, PX_AGE_FILE_KEY, body)) == 0)
                ret = put_stanza(hdr, o, cap, "X25519", share, 32, body, sizeof body);
        }
        wipe(eph, 32);
        wipe(ss, 32);
    } else {
        uint8_t enc[PX_AGE_PQ_ENC_LEN], ss[32];
        if ((ret = xwing_encaps(r->pub, enc, ss)) == 0 && (ret = hpke_key_schedule(ss, key, nonce)) == 0 &&
            (ret = aead_seal(key, nonce, fk, PX_AGE_FILE_KEY, body)) == 0)
            ret = put_stanza(hdr, o, cap, "mlkem768x25519", enc, sizeof enc, body, sizeof body);
        wipe(ss, 32);
    }
    wipe(key, sizeof key);
    return ret;
}

/* 1 with fk set when id opens st, 0 when it is not for id, or PX_EPARSE for a
 * malformed stanza of a known type (the spec requires rejecting the file). */
static int unwrap(const px_age_stanza_t *st, const px_age_identity_t *id,
                  uint8_t fk[PX_AGE_FILE_KEY], char *err, size_t errlen)
{
    static const uint8_t zero_nonce[12];
    uint8_t arg[PX_AGE_PQ_ENC_LEN], key[32], nonce[12], ss[32], pub[32], salt[64];
    int pq = !strcmp(st->type, "mlkem768x25519"), ret = 0;
    size_t want = pq ? PX_AGE_PQ_ENC_LEN : 32;

    if (!pq && strcmp(st->type, "X25519"))
        return 0;
    if (st->nargs != 1 || b64_decode_raw(st->args[0], strlen(st->args[0]), arg, sizeof arg) != (long)want ||
        st->body_len != PX_AGE_FILE_KEY + TAG)
        return px_errorf(PX_EPARSE, err, errlen, "malformed %s stanza", st->type);
    if (pq != (id->kind == PX_AGE_PQ))
        return 0;
    if (pq) {
        if ((ret = xwing_decaps(id->secret, arg, ss)) == PX_EPARSE)
            return px_errorf(PX_EPARSE, err, errlen, "mlkem768x25519 stanza with a low-order X25519 share");
        if (ret || hpke_key_schedule(ss, key, nonce)) {
            ret = 0;
            goto out;
        }
    } else {
        if (x25519(ss, id->secret, arg))   /* a low-order share opens nothing */
            return px_errorf(PX_EPARSE, err, errlen, "X25519 stanza with a low-order share");
        if (x25519_base(pub, id->secret))
            goto out;
        memcpy(salt, arg, 32);
        memcpy(salt + 32, pub, 32);
        memcpy(nonce, zero_nonce, 12);
        if (hkdf(ss, 32, salt, 64, X25519_INFO, key, 32))
            goto out;
    }
    ret = aead_open(key, nonce, st->body, PX_AGE_FILE_KEY, fk) == 0;
out:
    wipe(ss, sizeof ss);
    wipe(key, sizeof key);
    return ret;
}

/* --- payload -------------------------------------------------------------------------------- */

void px_age_stream_nonce(uint8_t nonce[12], uint64_t counter, int last)
{
    memset(nonce, 0, 12);
    for (int i = 0; i < 8; i++)
        nonce[10 - i] = (uint8_t)(counter >> (8 * i));
    nonce[11] = (uint8_t)(last ? 1 : 0);
}

/* 1 when in has no more bytes. */
static int at_eof(FILE *in)
{
    int c = getc(in);
    if (c == EOF)
        return 1;
    ungetc(c, in);
    return 0;
}

int px_age_seal(FILE *in, FILE *out, const px_age_recipient_t *r, int n, char *err, size_t errlen)
{
    uint8_t fk[PX_AGE_FILE_KEY], nonce16[16], key[32], nonce[12], mac[32];
    char *hdr = malloc(PX_AGE_MAX_HEADER);
    uint8_t *pt = malloc(PX_AGE_CHUNK), *ct = malloc(PX_AGE_CHUNK + TAG);
    size_t o = 0;
    uint64_t counter = 0;
    int ret = 0, last = 0;

    if (!hdr || !pt || !ct) {
        ret = px_errorf(PX_ENOMEM, err, errlen, "out of memory");
        goto out;
    }
    if (random_bytes(fk, sizeof fk) || random_bytes(nonce16, sizeof nonce16)) {
        ret = px_errorf(PX_ECRYPTO, err, errlen, "the random number generator failed");
        goto out;
    }
    o = (size_t)snprintf(hdr, PX_AGE_MAX_HEADER, "%s\n", VERSION_LINE);
    for (int i = 0; i < n; i++)
        if ((ret = wrap(&r[i], fk, hdr, &o, PX_AGE_MAX_HEADER - 50))) {
            ret = px_errorf(ret, err, errlen, "cannot wrap the file key for recipient %d: %s", i + 1,
                            ret == PX_ETOOBIG ? "header too large" : "crypto failure");
            goto out;
        }
    memcpy(hdr + o, "---", 3);
    o += 3;
    if (header_mac(fk, (const uint8_t *)hdr, o, mac) ||
        hkdf(fk, sizeof fk, nonce16, sizeof nonce16, "payload", key, sizeof key)) {
        ret = px_errorf(PX_ECRYPTO, err, errlen, "key derivation failed");
        goto out;
    }
    hdr[o++] = ' ';
    o += (size_t)b64_encode_raw(mac, 32, hdr + o, PX_AGE_MAX_HEADER - o);
    hdr[o++] = '\n';
    if (fwrite(hdr, 1, o, out) != o || fwrite(nonce16, 1, 16, out) != 16)
        goto write_err;
    while (!last) {
        size_t got = fread(pt, 1, PX_AGE_CHUNK, in);
        if (ferror(in)) {
            ret = px_errorf(PX_EIO, err, errlen, "read error on the input");
            goto out;
        }
        last = got < PX_AGE_CHUNK || at_eof(in);
        px_age_stream_nonce(nonce, counter++, last);
        if (aead_seal(key, nonce, pt, got, ct)) {
            ret = px_errorf(PX_ECRYPTO, err, errlen, "encryption failed");
            goto out;
        }
        if (fwrite(ct, 1, got + TAG, out) != got + TAG)
            goto write_err;
    }
    goto out;
write_err:
    ret = px_errorf(PX_EIO, err, errlen, "write error on the output");
out:
    wipe(fk, sizeof fk);
    wipe(key, sizeof key);
    if (pt)
        wipe(pt, PX_AGE_CHUNK);
    free(hdr);
    free(pt);
    free(ct);
    return ret;
}

/* Reads the header (through the line that starts with "---") from in. */
static int read_header(FILE *in, uint8_t *buf, size_t *len, char *err, size_t errlen)
{
    size_t n = 0, line_start = 0;
    int c;
    while ((c = getc(in)) != EOF) {
        if (n == PX_AGE_MAX_HEADER)
            return px_errorf(PX_ETOOBIG, err, errlen, "header longer than %d bytes", PX_AGE_MAX_HEADER);
        buf[n++] = (uint8_t)c;
        if (c != '\n')
            continue;
        if (n - line_start >= 4 && !memcmp(buf + line_start, "---", 3)) {
            *len = n;
            return 0;
        }
        line_start = n;
    }
    if (ferror(in))
        return px_errorf(PX_EIO, err, errlen, "read error on the input");
    *len = n;
    return n ? 0 : px_errorf(PX_EPARSE, err, errlen, "empty input: not an age file");
}

int px_age_open(FILE *in, FILE *out, const px_age_identity_t *ids, int n, char *err, size_t errlen)
{
    px_age_header_t h = { 0 };
    uint8_t fk[PX_AGE_FILE_KEY], nonce16[16], key[32], nonce[12], mac[32];
    uint8_t *buf = malloc(PX_AGE_MAX_HEADER), *ct = malloc(PX_AGE_CHUNK + TAG), *pt = malloc(PX_AGE_CHUNK);
    size_t hlen;
    uint64_t counter = 0;
    int ret, found = 0, last = 0;
    char unknown[64] = "";

    if (!buf || !ct || !pt) {
        ret = px_errorf(PX_ENOMEM, err, errlen, "out of memory");
        goto out;
    }
    if ((ret = read_header(in, buf, &hlen, err, errlen)) ||
        (ret = px_age_header_parse(buf, hlen, &h, err, errlen)))
        goto out;
    for (int s = 0; s < h.n; s++)
        if (!strcmp(h.st[s].type, "scrypt")) {
            /* the spec: an scrypt stanza must be alone, so that a passphrase
             * file cannot also be opened by a key (CCTV scrypt_and_x25519) */
            ret = px_errorf(PX_EPARSE, err, errlen, h.n > 1
                            ? "an scrypt stanza must be the only stanza in the header"
                            : "passphrase (scrypt) age files are not supported");
            goto out;
        }
    for (int s = 0; s < h.n && !found; s++) {
        if (strcmp(h.st[s].type, "X25519") && strcmp(h.st[s].type, "mlkem768x25519") && !*unknown)
            snprintf(unknown, sizeof unknown, "%s", h.st[s].type);
        for (int i = 0; i < n && !found; i++)
            if ((found = unwrap(&h.st[s], &ids[i], fk, err, errlen)) < 0) {
                ret = found;
                goto out;
            }
    }
    if (!found) {
        ret = *unknown ? px_errorf(PX_ECRYPTO, err, errlen,
                                   "no identity opens this file (it has a stanza of unknown type '%s')",
                                   unknown)
                       : px_errorf(PX_ECRYPTO, err, errlen,
                                   "no identity opens this file: wrong key (%d stanza%s tried)", h.n,
                                   h.n == 1 ? "" : "s");
        goto out;
    }
    if (header_mac(fk, buf, h.mac_off, mac) || !ct_equal(mac, h.mac, 32)) {
        ret = px_errorf(PX_ECRYPTO, err, errlen, "header MAC mismatch: the header was modified");
        goto out;
    }
    if (fread(nonce16, 1, 16, in) != 16) {
        ret = px_errorf(PX_EPARSE, err, errlen, "payload truncated: no payload nonce after the header");
        goto out;
    }
    if (hkdf(fk, sizeof fk, nonce16, sizeof nonce16, "payload", key, sizeof key)) {
        ret = px_errorf(PX_ECRYPTO, err, errlen, "key derivation failed");
        goto out;
    }
    while (!last) {
        size_t got = fread(ct, 1, PX_AGE_CHUNK + TAG, in);
        if (ferror(in)) {
            ret = px_errorf(PX_EIO, err, errlen, "read error on the input");
            goto out;
        }
        last = got < PX_AGE_CHUNK + TAG || at_eof(in);
        if (got < TAG) {
            ret = px_errorf(PX_EPARSE, err, errlen, "payload truncated: chunk %llu is shorter than its tag",
                            (unsigned long long)counter);
            goto out;
        }
        if (got == TAG && counter > 0) {
            ret = px_errorf(PX_EPARSE, err, errlen, "payload malformed: an empty final chunk after "
                            "full ones");
            goto out;
        }
        px_age_stream_nonce(nonce, counter, last);
        if (aead_open(key, nonce, ct, got - TAG, pt)) {
            px_age_stream_nonce(nonce, counter, 1);
            ret = !last && aead_open(key, nonce, ct, got - TAG, pt) == 0
                ? px_errorf(PX_EPARSE, err, errlen, "data after the final chunk (chunk %llu)",
                            (unsigned long long)counter)
                : px_errorf(PX_ECRYPTO, err, errlen,
                            "chunk %llu failed to authenticate: the payload is truncated, "
                            "reordered, modified or has data appended", (unsigned long long)counter);
            goto out;
        }
        if (fwrite(pt, 1, got - TAG, out) != got - TAG) {
            ret = px_errorf(PX_EIO, err, errlen, "write error on the output");
            goto out;
        }
        counter++;
    }
out:
    wipe(fk, sizeof fk);
    wipe(key, sizeof key);
    if (pt)
        wipe(pt, PX_AGE_CHUNK);
    px_age_header_free(&h);
    free(buf);
    free(ct);
    free(pt);
    return ret;
}
