/* TLS cipher suites and signature schemes (see tls_ciphers.h). */
#include "net/tls_ciphers.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/asn_public.h>

/* --- cipher suites ------------------------------------------------------------ */

enum { TLS13 = 1, DEF = 2, CBC = 4, SHA1 = 8, STATIC_RSA = 16, FFDHE = 32 };

/* Every suite this wolfSSL may build that an operator could name; anything
 * else is "unknown". IANA names from the TLS Cipher Suites registry. The
 * defaults (DEF) in this order, wolfSSL's own: AES-256 first. */
static const struct {
    uint16_t id;
    const char *iana, *wolf;
    unsigned flags;
} suites[] = {
    { 0x1302, "TLS_AES_256_GCM_SHA384", "TLS13-AES256-GCM-SHA384", TLS13 | DEF },
    { 0x1301, "TLS_AES_128_GCM_SHA256", "TLS13-AES128-GCM-SHA256", TLS13 | DEF },
    { 0x1303, "TLS_CHACHA20_POLY1305_SHA256", "TLS13-CHACHA20-POLY1305-SHA256", TLS13 | DEF },
    { 0x1304, "TLS_AES_128_CCM_SHA256", "TLS13-AES128-CCM-SHA256", TLS13 },
    { 0xC02C, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384", DEF },
    { 0xC030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384", DEF },
    { 0xC02B, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256", DEF },
    { 0xC02F, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256", DEF },
    { 0xCCA9, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305", DEF },
    { 0xCCA8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305", DEF },
    { 0xC0AC, "TLS_ECDHE_ECDSA_WITH_AES_128_CCM", "ECDHE-ECDSA-AES128-CCM", 0 },
    { 0x009E, "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", "DHE-RSA-AES128-GCM-SHA256", FFDHE },
    { 0x009F, "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", "DHE-RSA-AES256-GCM-SHA384", FFDHE },
    { 0xCCAA, "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "DHE-RSA-CHACHA20-POLY1305", FFDHE },
    { 0xC009, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE-ECDSA-AES128-SHA", CBC | SHA1 },
    { 0xC00A, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE-ECDSA-AES256-SHA", CBC | SHA1 },
    { 0xC013, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA-AES128-SHA", CBC | SHA1 },
    { 0xC014, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA-AES256-SHA", CBC | SHA1 },
    { 0xC023, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "ECDHE-ECDSA-AES128-SHA256", CBC },
    { 0xC024, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384", "ECDHE-ECDSA-AES256-SHA384", CBC },
    { 0xC027, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "ECDHE-RSA-AES128-SHA256", CBC },
    { 0xC028, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384", "ECDHE-RSA-AES256-SHA384", CBC },
    { 0x0033, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA", "DHE-RSA-AES128-SHA", CBC | SHA1 | FFDHE },
    { 0x0039, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA", "DHE-RSA-AES256-SHA", CBC | SHA1 | FFDHE },
    { 0x0067, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256", "DHE-RSA-AES128-SHA256", CBC | FFDHE },
    { 0x006B, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256", "DHE-RSA-AES256-SHA256", CBC | FFDHE },
    { 0x002F, "TLS_RSA_WITH_AES_128_CBC_SHA", "AES128-SHA", STATIC_RSA | CBC | SHA1 },
    { 0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA", "AES256-SHA", STATIC_RSA | CBC | SHA1 },
    { 0x003C, "TLS_RSA_WITH_AES_128_CBC_SHA256", "AES128-SHA256", STATIC_RSA | CBC },
    { 0x003D, "TLS_RSA_WITH_AES_256_CBC_SHA256", "AES256-SHA256", STATIC_RSA | CBC },
    { 0x009C, "TLS_RSA_WITH_AES_128_GCM_SHA256", "AES128-GCM-SHA256", STATIC_RSA },
    { 0x009D, "TLS_RSA_WITH_AES_256_GCM_SHA384", "AES256-GCM-SHA384", STATIC_RSA },
};
#define N_SUITES (int)(sizeof suites / sizeof suites[0])

static int suite_index(uint16_t id)
{
    for (int i = 0; i < N_SUITES; i++)
        if (suites[i].id == id)
            return i;
    return -1;
}

uint16_t px_cipher_from_name(const char *name)
{
    for (int i = 0; i < N_SUITES; i++)
        if (!strcasecmp(suites[i].iana, name))
            return suites[i].id;
    return 0;
}

const char *px_cipher_name(uint16_t id)
{
    int i = suite_index(id);
    return i < 0 ? NULL : suites[i].iana;
}

int px_cipher_is_tls13(uint16_t id)
{
    int i = suite_index(id);
    return i >= 0 && (suites[i].flags & TLS13);
}

const char *px_cipher_refusal(uint16_t id)
{
    int i = suite_index(id);
    if (i < 0)
        return "unknown cipher suite";
    if (suites[i].flags & CBC)
        return suites[i].flags & SHA1 ? "CBC with a SHA-1 MAC: only AEAD suites (GCM, "
                                        "ChaCha20-Poly1305, CCM) are allowed"
                                      : "CBC is not an AEAD mode: only AEAD suites (GCM, "
                                        "ChaCha20-Poly1305, CCM) are allowed";
    if (suites[i].flags & STATIC_RSA)
        return "static RSA key exchange has no forward secrecy: use an ECDHE suite";
    if (suites[i].flags & FFDHE)   /* its group would be wolfSSL's choice, not one of tls.groups */
        return "finite-field DHE key exchange is outside tls.groups: use an ECDHE suite";
    return NULL;
}

int px_cipher_supported(uint16_t id)
{
    char list[8192];
    int i = suite_index(id);
    size_t n;

    if (i < 0 || wolfSSL_get_ciphers(list, sizeof list) != WOLFSSL_SUCCESS)
        return 0;
    n = strlen(suites[i].wolf);
    for (const char *p = list; (p = strstr(p, suites[i].wolf)); p += n)
        if ((p == list || p[-1] == ':') && (p[n] == ':' || p[n] == '\0'))
            return 1;
    return 0;
}

int px_cipher_defaults(int tls12, uint16_t *out, int max)
{
    int n = 0;
    for (int pass = 0; pass < 1 + !!tls12; pass++)     /* TLS 1.3 suites first */
        for (int i = 0; i < N_SUITES && n < max; i++)
            if ((suites[i].flags & DEF) && (suites[i].flags & TLS13 ? 0 : 1) == pass &&
                px_cipher_supported(suites[i].id))
                out[n++] = suites[i].id;
    return n;
}

static void append(char *buf, size_t len, const char *s)
{
    size_t k = strlen(buf);
    snprintf(buf + k, len - k, "%s%s", k ? ", " : "", s);
}

void px_cipher_usable_names(int tls12, char *buf, size_t len)
{
    buf[0] = '\0';
    for (int i = 0; i < N_SUITES; i++)
        if ((tls12 || (suites[i].flags & TLS13)) && !px_cipher_refusal(suites[i].id) &&
            px_cipher_supported(suites[i].id))
            append(buf, len, suites[i].iana);
}

int px_cipher_wolf_list(const uint16_t *ids, int n, char *buf, size_t len)
{
    size_t k = 0;
    for (int j = 0; j < n; j++) {
        int i = suite_index(ids[j]);
        int w = i < 0 ? -1 : snprintf(buf + k, len - k, "%s%s", j ? ":" : "", suites[i].wolf);
        if (w < 0 || (size_t)w >= len - k)
            return -1;
        k += (size_t)w;
    }
    return 0;
}

/* --- signature schemes -------------------------------------------------------- */

enum { RSA_PKCS1 = 1, REFUSED = 2 };

static const struct {
    uint16_t id;
    const char *name;
    unsigned flags;
    const char *why;           /* with REFUSED */
} schemes[] = {
    { PX_SIG_ECDSA_P256, "ecdsa_secp256r1_sha256", 0, NULL },
    { PX_SIG_ECDSA_P384, "ecdsa_secp384r1_sha384", 0, NULL },
    { PX_SIG_ECDSA_P521, "ecdsa_secp521r1_sha512", 0, NULL },
#ifdef HAVE_ED25519
    { PX_SIG_ED25519, "ed25519", 0, NULL },
#else
    { PX_SIG_ED25519, "ed25519", REFUSED, "this build's wolfSSL has no Ed25519" },
#endif
    { 0x0808, "ed448", REFUSED, "pqproxy does not handle Ed448 keys" },
    { PX_SIG_RSA_PSS_RSAE_256, "rsa_pss_rsae_sha256", 0, NULL },
    { PX_SIG_RSA_PSS_RSAE_384, "rsa_pss_rsae_sha384", 0, NULL },
    { PX_SIG_RSA_PSS_RSAE_512, "rsa_pss_rsae_sha512", 0, NULL },
    { 0x0809, "rsa_pss_pss_sha256", REFUSED, "pqproxy does not handle RSASSA-PSS (id-RSASSA-PSS) keys" },
    { 0x080A, "rsa_pss_pss_sha384", REFUSED, "pqproxy does not handle RSASSA-PSS (id-RSASSA-PSS) keys" },
    { 0x080B, "rsa_pss_pss_sha512", REFUSED, "pqproxy does not handle RSASSA-PSS (id-RSASSA-PSS) keys" },
    { PX_SIG_RSA_PKCS1_256, "rsa_pkcs1_sha256", RSA_PKCS1, NULL },
    { PX_SIG_RSA_PKCS1_384, "rsa_pkcs1_sha384", RSA_PKCS1, NULL },
    { PX_SIG_RSA_PKCS1_512, "rsa_pkcs1_sha512", RSA_PKCS1, NULL },
#ifdef WOLFSSL_HAVE_MLDSA
    { PX_SIG_MLDSA44, "mldsa44", 0, NULL },
    { PX_SIG_MLDSA65, "mldsa65", 0, NULL },
    { PX_SIG_MLDSA87, "mldsa87", 0, NULL },
#endif
    { 0x0201, "rsa_pkcs1_sha1", REFUSED, "SHA-1 signatures are not allowed" },
    { 0x0203, "ecdsa_sha1", REFUSED, "SHA-1 signatures are not allowed" },
};
#define N_SCHEMES (int)(sizeof schemes / sizeof schemes[0])

static int scheme_index(uint16_t id)
{
    for (int i = 0; i < N_SCHEMES; i++)
        if (schemes[i].id == id)
            return i;
    return -1;
}

uint16_t px_sigalg_from_name(const char *name)
{
    for (int i = 0; i < N_SCHEMES; i++)
        if (!strcasecmp(schemes[i].name, name))
            return schemes[i].id;
    return 0;
}

const char *px_sigalg_name(uint16_t id)
{
    int i = scheme_index(id);
    return i < 0 ? NULL : schemes[i].name;
}

const char *px_sigalg_refusal(uint16_t id)
{
    int i = scheme_index(id);
    if (i < 0)
        return "unknown signature algorithm";
    return schemes[i].flags & REFUSED ? schemes[i].why : NULL;
}

int px_sigalg_defaults(uint16_t *out, int max)
{
    int n = 0;
    for (int i = 0; i < N_SCHEMES && n < max; i++)
        if (!(schemes[i].flags & (REFUSED | RSA_PKCS1)))
            out[n++] = schemes[i].id;
    return n;
}

void px_sigalg_usable_names(char *buf, size_t len)
{
    buf[0] = '\0';
    for (int i = 0; i < N_SCHEMES; i++)
        if (!(schemes[i].flags & REFUSED))
            append(buf, len, schemes[i].name);
}

static int is_rsae(uint16_t s)
{
    return s == PX_SIG_RSA_PSS_RSAE_256 || s == PX_SIG_RSA_PSS_RSAE_384 ||
           s == PX_SIG_RSA_PSS_RSAE_512;
}

static int is_pkcs1(uint16_t s)
{
    return s == PX_SIG_RSA_PKCS1_256 || s == PX_SIG_RSA_PKCS1_384 || s == PX_SIG_RSA_PKCS1_512;
}

int px_sigalg_fits_key(uint16_t key, uint16_t s, int tls13)
{
    if (is_rsae(key))
        return is_rsae(s) || (!tls13 && is_pkcs1(s));
    return s == key;
}

int px_sigalg_key_allowed(const uint16_t *allowed, int n, uint16_t key, int tls13)
{
    for (int i = 0; i < n; i++)
        if (px_sigalg_fits_key(key, allowed[i], tls13))
            return 1;
    return 0;
}

static int allowed_has(const uint16_t *allowed, int n, uint16_t s)
{
    for (int i = 0; i < n; i++)
        if (allowed[i] == s)
            return 1;
    return 0;
}

/* The scheme a certificate's own signature corresponds to (RFC 8446 4.2.3:
 * signature_algorithms also governs certificate signatures), 0 when none. */
static uint16_t cert_sig_scheme(word32 oid)
{
    switch (oid) {
    case CTC_SHA256wECDSA: return PX_SIG_ECDSA_P256;
    case CTC_SHA384wECDSA: return PX_SIG_ECDSA_P384;
    case CTC_SHA512wECDSA: return PX_SIG_ECDSA_P521;
    case CTC_SHA256wRSA: return PX_SIG_RSA_PKCS1_256;
    case CTC_SHA384wRSA: return PX_SIG_RSA_PKCS1_384;
    case CTC_SHA512wRSA: return PX_SIG_RSA_PKCS1_512;
    case CTC_RSASSAPSS: return PX_SIG_RSA_PSS_RSAE_256;  /* hash in the parameters: see below */
    case CTC_ED25519: return PX_SIG_ED25519;
    case CTC_ML_DSA_44: return PX_SIG_MLDSA44;
    case CTC_ML_DSA_65: return PX_SIG_MLDSA65;
    case CTC_ML_DSA_87: return PX_SIG_MLDSA87;
    default: return 0;
    }
}

/* The scheme a key signs with in TLS 1.3 (any rsa_pss_rsae_* for RSA). */
static uint16_t key_scheme(const DecodedCert *dc)
{
    switch (dc->keyOID) {
    case ECDSAk:
        return dc->pkCurveOID == ECC_SECP384R1_OID   ? PX_SIG_ECDSA_P384
               : dc->pkCurveOID == ECC_SECP521R1_OID ? PX_SIG_ECDSA_P521
               : dc->pkCurveOID == ECC_SECP256R1_OID ? PX_SIG_ECDSA_P256
                                                     : 0;
    case RSAk: return PX_SIG_RSA_PSS_RSAE_256;
    case ED25519k: return PX_SIG_ED25519;
    case ML_DSA_LEVEL2k: return PX_SIG_MLDSA44;
    case ML_DSA_LEVEL3k: return PX_SIG_MLDSA65;
    case ML_DSA_LEVEL5k: return PX_SIG_MLDSA87;
    default: return 0;
    }
}

int px_sigalg_check_peer_cert(const uint16_t *allowed, int n, const unsigned char *der,
                              int der_len, int depth, int tls13, char *why, size_t why_len)
{
    DecodedCert dc;
    uint16_t s;
    int ok, rc = -1;

    wc_InitDecodedCert(&dc, der, (word32)der_len, NULL);
    if (wc_ParseCert(&dc, CERT_TYPE, NO_VERIFY, NULL) != 0) {
        snprintf(why, why_len, "client certificate (depth %d) cannot be parsed", depth);
        goto out;
    }
    s = cert_sig_scheme(dc.signatureOID);
    /* an RSASSA-PSS signature passes when any rsa_pss_rsae_* scheme is allowed */
    ok = s && (s == PX_SIG_RSA_PSS_RSAE_256 && dc.signatureOID == CTC_RSASSAPSS
                   ? px_sigalg_key_allowed(allowed, n, s, 1)
                   : allowed_has(allowed, n, s));
    if (!ok) {
        snprintf(why, why_len, "client certificate (depth %d) is signed with %s, not in "
                 "tls.signature_algorithms", depth, s ? px_sigalg_name(s) : "an unknown algorithm");
        goto out;
    }
    if (depth == 0) {
        s = key_scheme(&dc);
        if (!s || !px_sigalg_key_allowed(allowed, n, s, tls13)) {
            snprintf(why, why_len, "client certificate key signs with %s, not in "
                     "tls.signature_algorithms", s ? px_sigalg_name(s) : "an unknown algorithm");
            goto out;
        }
    }
    rc = 0;
out:
    wc_FreeDecodedCert(&dc);
    return rc;
}
