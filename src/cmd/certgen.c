/* Development PKI with wolfSSL's certificate generation (see certgen.h).
 *
 * wolfSSL builds certificates from a `Cert` template. Our wolfSSL is built
 * without WOLFSSL_ALT_NAMES, so `Cert` has no subjectAltName field: we let
 * wc_MakeCert_ex() encode the TBSCertificate, append our own SAN extension
 * to its extensions (re-encoding the three enclosing DER lengths), and only
 * then sign it with wc_SignCert_ex(). That works whether or not a given
 * wolfSSL has WOLFSSL_ALT_NAMES. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
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
#include <wolfssl/wolfcrypt/dilithium.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/rsa.h>

#include "cmd/certgen.h"
#include "cmd/certgen_der.h"
#include "core/errors.h"

#define MLDSA_SEED_LEN 32
#define MAX_DAYS 36500
#define CERT_BUF_BASE 16384 /* ML-DSA-87: 2592-byte key + 4627-byte signature */

/* --- error detail ------------------------------------------------------- */

static _Thread_local char errmsg[384];

const char *px_certgen_errmsg(void)
{
    return errmsg[0] ? errmsg : "no error";
}

#define fail_msg(code, ...) px_errorf(code, errmsg, sizeof errmsg, __VA_ARGS__)

static int wc_fail(const char *what, int wc_ret)
{
    return fail_msg(PX_ECRYPTO, "%s failed: %s (wolfSSL error %d)", what,
                    wc_GetErrorString(wc_ret), wc_ret);
}

/* --- key types ---------------------------------------------------------- */

static const struct keyinfo {
    const char *name;
    const char *label;  /* for messages */
    int wc_type;        /* key type for wc_MakeCert_ex / wc_SignCert_ex */
    int param;          /* ECC curve id, RSA bits or ML-DSA level */
    int ecc_size;       /* ECC private key bytes */
    int sig_type;       /* signatureAlgorithm when this key signs */
} keyinfo[PX_KEYTYPE_COUNT] = {
    [PX_KEY_ECDSA_P256] = { "ecdsa-p256", "ECDSA P-256", ECC_TYPE, ECC_SECP256R1, 32,
                            CTC_SHA256wECDSA },
    [PX_KEY_ECDSA_P384] = { "ecdsa-p384", "ECDSA P-384", ECC_TYPE, ECC_SECP384R1, 48,
                            CTC_SHA384wECDSA },
    [PX_KEY_RSA2048]    = { "rsa2048", "RSA 2048", RSA_TYPE, 2048, 0,
                            CTC_SHA256wRSA },
    [PX_KEY_MLDSA44]    = { "mldsa44", "ML-DSA-44", ML_DSA_44_TYPE, WC_ML_DSA_44, 0,
                            CTC_ML_DSA_44 },
    [PX_KEY_MLDSA65]    = { "mldsa65", "ML-DSA-65", ML_DSA_65_TYPE, WC_ML_DSA_65, 0,
                            CTC_ML_DSA_65 },
    [PX_KEY_MLDSA87]    = { "mldsa87", "ML-DSA-87", ML_DSA_87_TYPE, WC_ML_DSA_87, 0,
                            CTC_ML_DSA_87 },
};

static int is_mldsa(px_keytype_t t)
{
    return t == PX_KEY_MLDSA44 || t == PX_KEY_MLDSA65 || t == PX_KEY_MLDSA87;
}

int px_keytype_parse(const char *name, px_keytype_t *out)
{
    char norm[32];
    size_t n = 0;

    if (!name || !out)
        return PX_EINVAL;
    for (const char *p = name; *p; p++) {
        if (*p == '-' || *p == '_')
            continue;
        if (n + 1 >= sizeof norm)
            return PX_EINVAL;
        norm[n++] = (char)((*p >= 'A' && *p <= 'Z') ? *p - 'A' + 'a' : *p);
    }
    norm[n] = '\0';
    for (int t = 0; t < PX_KEYTYPE_COUNT; t++) {
        char canon[32];
        size_t m = 0;
        for (const char *p = keyinfo[t].name; *p; p++)
            if (*p != '-')
                canon[m++] = *p;
        canon[m] = '\0';
        if (!strcmp(norm, canon)) {
            *out = (px_keytype_t)t;
            return 0;
        }
    }
    return PX_EINVAL;
}

const char *px_keytype_name(px_keytype_t t)
{
    return (unsigned)t < PX_KEYTYPE_COUNT ? keyinfo[t].name : "unknown";
}

/* --- keys ----------------------------------------------------------------- */

typedef struct {
    px_keytype_t type;
    int inited;
    int has_seed;
    unsigned char seed[MLDSA_SEED_LEN]; /* ML-DSA key generation seed (xi) */
    union {
        ecc_key ecc;
        RsaKey rsa;
        wc_MlDsaKey mldsa;
    } u;
} pxkey_t;

static void key_free(pxkey_t *k)
{
    if (!k)
        return;
    if (k->inited) {
        if (keyinfo[k->type].wc_type == ECC_TYPE)
            wc_ecc_free(&k->u.ecc);
        else if (k->type == PX_KEY_RSA2048)
            wc_FreeRsaKey(&k->u.rsa);
        else
            wc_MlDsaKey_Free(&k->u.mldsa);
    }
    explicit_bzero(k, sizeof *k);
    free(k);
}

static int key_init(px_keytype_t type, pxkey_t **out)
{
    pxkey_t *k = calloc(1, sizeof *k);
    int ret;

    if (!k)
        return fail_msg(PX_ENOMEM, "out of memory for a %s key", keyinfo[type].label);
    k->type = type;
    if (keyinfo[type].wc_type == ECC_TYPE)
        ret = wc_ecc_init(&k->u.ecc);
    else if (type == PX_KEY_RSA2048)
        ret = wc_InitRsaKey(&k->u.rsa, NULL);
    else if ((ret = wc_MlDsaKey_Init(&k->u.mldsa, NULL, INVALID_DEVID)) == 0) {
        k->inited = 1;
        ret = wc_MlDsaKey_SetParams(&k->u.mldsa, (byte)keyinfo[type].param);
    }
    if (ret == 0)
        k->inited = 1;
    if (ret != 0) {
        key_free(k);
        return wc_fail("key initialisation", ret);
    }
    *out = k;
    return 0;
}

static int key_generate(px_keytype_t type, WC_RNG *rng, pxkey_t **out)
{
    const struct keyinfo *ki = &keyinfo[type];
    pxkey_t *k = NULL;
    int ret;

    if ((ret = key_init(type, &k)) != 0)
        return ret;
    if (ki->wc_type == ECC_TYPE) {
        ret = wc_ecc_make_key_ex(rng, ki->ecc_size, &k->u.ecc, ki->param);
    } else if (type == PX_KEY_RSA2048) {
        ret = wc_MakeRsaKey(&k->u.rsa, ki->param, WC_RSA_EXPONENT, rng);
    } else {
        /* Generate from our own seed so that the PKCS#8 file can carry it. */
        ret = wc_RNG_GenerateBlock(rng, k->seed, sizeof k->seed);
        if (ret == 0)
            ret = wc_MlDsaKey_MakeKeyFromSeed(&k->u.mldsa, k->seed);
        k->has_seed = ret == 0;
    }
    if (ret != 0) {
        key_free(k);
        fail_msg(PX_ECRYPTO, "%s key generation failed: %s (wolfSSL error %d)", ki->label,
                 wc_GetErrorString(ret), ret);
        return PX_ECRYPTO;
    }
    *out = k;
    return 0;
}

/* Reads a PKCS#8 (or traditional) PEM private key; the algorithm decides
 * the type. */
static int key_load_pem(const char *pem, size_t len, pxkey_t **out)
{
    DerBuffer *der = NULL;
    pxkey_t *k = NULL;
    px_keytype_t type;
    int fmt = 0, ret;
    word32 idx = 0;

    ret = wc_PemToDer((const unsigned char *)pem, (long)len, PRIVATEKEY_TYPE, &der, NULL,
                      NULL, &fmt);
    if (ret != 0) {
        ret = wc_fail("reading the CA private key PEM", ret);
        goto fail;
    }
    switch (fmt) {
    case ECDSAk: type = PX_KEY_ECDSA_P256; break; /* curve checked below */
    case RSAk: type = PX_KEY_RSA2048; break;
    case ML_DSA_44k: type = PX_KEY_MLDSA44; break;
    case ML_DSA_65k: type = PX_KEY_MLDSA65; break;
    case ML_DSA_87k: type = PX_KEY_MLDSA87; break;
    default:
        ret = fail_msg(PX_EUNSUPPORTED, "CA private key: algorithm %d is not ECDSA, RSA or ML-DSA",
                       fmt);
        goto fail;
    }
    if ((ret = key_init(type, &k)) != 0)
        goto fail;
    if (type == PX_KEY_ECDSA_P256) {
        ret = wc_EccPrivateKeyDecode(der->buffer, &idx, &k->u.ecc, der->length);
        if (ret == 0) {
            int curve = wc_ecc_get_curve_id(k->u.ecc.idx);
            if (curve == ECC_SECP384R1)
                k->type = PX_KEY_ECDSA_P384;
            else if (curve != ECC_SECP256R1) {
                ret = fail_msg(PX_EUNSUPPORTED, "CA private key: ECC curve %d is not P-256 or P-384",
                               curve);
                goto fail;
            }
        }
    } else if (type == PX_KEY_RSA2048) {
        if (wc_GetPkcs8TraditionalOffset(der->buffer, &idx, der->length) < 0)
            idx = 0;
        ret = wc_RsaPrivateKeyDecode(der->buffer, &idx, &k->u.rsa, der->length);
    } else {
        ret = wc_MlDsaKey_PrivateKeyDecode(&k->u.mldsa, der->buffer, der->length, &idx);
    }
    if (ret != 0) {
        ret = wc_fail("decoding the CA private key", ret);
        goto fail;
    }
    *out = k;
    k = NULL;
fail:
    key_free(k);
    wc_FreeDer(&der);
    return ret;
}

/* --- certificates --------------------------------------------------------- */

typedef enum { ROLE_CA, ROLE_SERVER, ROLE_CLIENT } role_t;

/* UTCTime through 2049, GeneralizedTime after (RFC 5280 4.1.2.5). */
static int set_time(byte *out, int *out_len, time_t t)
{
    struct tm tm;
    int year, n;

    if (!gmtime_r(&t, &tm))
        return -1;
    year = tm.tm_year + 1900;
    if (year < 1950 || year > 9999)
        return -1;
    out[0] = year < 2050 ? ASN_UTC_TIME : ASN_GENERALIZED_TIME;
    n = snprintf((char *)out + 2, CTC_DATE_SIZE - 2, "%0*d%02d%02d%02d%02d%02dZ",
                 year < 2050 ? 2 : 4, year < 2050 ? year % 100 : year, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (n != (year < 2050 ? 13 : 15))
        return -1;
    out[1] = (byte)n;
    *out_len = n + 2;
    return 0;
}

/* Issues a certificate for subj's public key signed with issuer's key.
 * issuer_der is the issuer's certificate (NULL for a self-signed CA). */
static int build_cert(pxkey_t *subj, pxkey_t *issuer, const uint8_t *issuer_der,
                      size_t issuer_der_len, const char *cn, const uint8_t *san_ext,
                      size_t san_len, int days, role_t role, WC_RNG *rng, uint8_t **out_der,
                      size_t *out_len)
{
    const struct keyinfo *ks = &keyinfo[subj->type], *ki = &keyinfo[issuer->type];
    Cert *cert = wc_CertNew(NULL);
    uint8_t *buf = NULL;
    size_t cap = CERT_BUF_BASE + san_len;
    time_t now = time(NULL);
    int ret, tbs, n;

    if (!cert || !(buf = malloc(cap))) {
        ret = fail_msg(PX_ENOMEM, "out of memory for the certificate");
        goto fail;
    }
    cert->version = 2; /* X.509 v3 */
    cert->sigType = ki->sig_type;
    if (set_time(cert->beforeDate, &cert->beforeDateSz, now - 3600) ||
        set_time(cert->afterDate, &cert->afterDateSz, now + (time_t)days * 86400)) {
        ret = fail_msg(PX_EINVAL, "cannot encode the validity period (%d days)", days);
        goto fail;
    }
    /* 16 random bytes, positive and without a leading zero octet. */
    if ((ret = wc_RNG_GenerateBlock(rng, cert->serial, 16)) != 0) {
        ret = wc_fail("serial number generation", ret);
        goto fail;
    }
    cert->serial[0] = (byte)((cert->serial[0] & 0x7f) | 0x40);
    cert->serialSz = 16;
    snprintf(cert->subject.commonName, CTC_NAME_SIZE, "%s", cn);
    cert->subject.commonNameEnc = CTC_UTF8;

    if ((ret = wc_SetSubjectKeyIdFromPublicKey_ex(cert, ks->wc_type, &subj->u)) != 0) {
        ret = wc_fail("wc_SetSubjectKeyIdFromPublicKey_ex", ret);
        goto fail;
    }
    if (role == ROLE_CA) {
        cert->selfSigned = 1;
        cert->isCA = 1;
        cert->basicConstCrit = 1;
        cert->keyUsage = KEYUSE_KEY_CERT_SIGN | KEYUSE_CRL_SIGN;
        ret = wc_SetAuthKeyIdFromPublicKey_ex(cert, ks->wc_type, &subj->u);
        if (ret != 0) {
            ret = wc_fail("wc_SetAuthKeyIdFromPublicKey_ex", ret);
            goto fail;
        }
    } else {
        if ((ret = wc_SetIssuerBuffer(cert, issuer_der, (int)issuer_der_len)) != 0) {
            ret = wc_fail("wc_SetIssuerBuffer (reading the CA certificate)", ret);
            goto fail;
        }
        if ((ret = wc_SetAuthKeyIdFromCert(cert, issuer_der, (int)issuer_der_len)) != 0) {
            ret = wc_fail("wc_SetAuthKeyIdFromCert", ret);
            goto fail;
        }
        cert->basicConstSet = 1; /* CA:FALSE */
        cert->keyUsage = KEYUSE_DIGITAL_SIG;
        if (subj->type == PX_KEY_RSA2048)
            cert->keyUsage |= KEYUSE_KEY_ENCIPHER;
        cert->extKeyUsage = role == ROLE_CLIENT ? EXTKEYUSE_CLIENT_AUTH : EXTKEYUSE_SERVER_AUTH;
    }

    tbs = wc_MakeCert_ex(cert, buf, (word32)cap, ks->wc_type, &subj->u, rng);
    if (tbs < 0) {
        ret = wc_fail("wc_MakeCert_ex", tbs);
        goto fail;
    }
    if (san_len > 0 && (tbs = px_tbs_add_extension(buf, (size_t)tbs, cap, san_ext, san_len)) < 0) {
        ret = fail_msg(tbs, "adding subjectAltName to the certificate: %s", px_strerror(tbs));
        goto fail;
    }
    n = wc_SignCert_ex(tbs, ki->sig_type, buf, (word32)cap, ki->wc_type, &issuer->u, rng);
    if (n < 0) {
        char what[96];
        snprintf(what, sizeof what, "wc_SignCert_ex with the %s key", ki->label);
        ret = wc_fail(what, n);
        goto fail;
    }
    *out_der = buf;
    *out_len = (size_t)n;
    buf = NULL;
    ret = 0;
fail:
    free(buf);
    wc_CertFree(cert);
    return ret;
}

/* The issued certificate must chain to the CA: catches a CA key that does
 * not belong to the CA certificate, and anything wolfSSL would not accept. */
static int verify_with_ca(const uint8_t *ca_der, size_t ca_len, const uint8_t *der, size_t len)
{
    WOLFSSL_CERT_MANAGER *cm = wolfSSL_CertManagerNew();
    int ret;

    if (!cm)
        return fail_msg(PX_ENOMEM, "wolfSSL_CertManagerNew failed");
    ret = wolfSSL_CertManagerLoadCABuffer(cm, ca_der, (long)ca_len, WOLFSSL_FILETYPE_ASN1);
    if (ret != WOLFSSL_SUCCESS) {
        ret = wc_fail("loading the CA certificate as a trust anchor", ret);
        goto fail;
    }
    ret = wolfSSL_CertManagerVerifyBuffer(cm, der, (long)len, WOLFSSL_FILETYPE_ASN1);
    if (ret != WOLFSSL_SUCCESS) {
        ret = fail_msg(PX_ECRYPTO,
                       "the new certificate does not verify against the CA (does the CA key "
                       "match the CA certificate?): %s (wolfSSL error %d)",
                       wc_GetErrorString(ret), ret);
        goto fail;
    }
    ret = 0;
fail:
    wolfSSL_CertManagerFree(cm);
    return ret;
}

/* Only a CA certificate may issue: wolfSSL would sign with any key, and
 * would even accept a CA:FALSE certificate as a directly loaded trust
 * anchor, but other verifiers would not. */
static int check_is_ca(const uint8_t *der, size_t len)
{
    DecodedCert *dc = malloc(sizeof *dc);
    int ret;

    if (!dc)
        return fail_msg(PX_ENOMEM, "out of memory for the CA certificate");
    wc_InitDecodedCert(dc, der, (word32)len, NULL);
    ret = wc_ParseCert(dc, CERT_TYPE, NO_VERIFY, NULL);
    if (ret != 0)
        ret = wc_fail("parsing the CA certificate", ret);
    else if (!dc->isCA)
        ret = fail_msg(PX_EINVAL, "the issuing certificate is not a CA (basicConstraints CA:FALSE "
                                  "or absent)");
    else if (dc->extKeyUsageSet && !(dc->extKeyUsage & KEYUSE_KEY_CERT_SIGN))
        ret = fail_msg(PX_EINVAL, "the CA certificate's keyUsage lacks keyCertSign");
    wc_FreeDecodedCert(dc);
    free(dc);
    return ret;
}

/* --- PEM output ------------------------------------------------------------- */

static int der_to_pem(const uint8_t *der, size_t len, int type, char **out, size_t *out_len)
{
    size_t cap = (len + 2) / 3 * 4 + len / 48 + 2 + 128;
    char *pem = malloc(cap + 1);
    int n;

    if (!pem)
        return fail_msg(PX_ENOMEM, "out of memory for PEM");
    n = wc_DerToPem(der, (word32)len, (byte *)pem, (word32)cap, type);
    if (n <= 0) {
        free(pem);
        return wc_fail("wc_DerToPem", n);
    }
    pem[n] = '\0';
    *out = pem;
    *out_len = (size_t)n;
    return 0;
}

/* ML-DSA PrivateKeyInfo (RFC 9881): privateKey holds the "seed" CHOICE,
 * [0] IMPLICIT OCTET STRING (32), the form RFC 9881 recommends and the one
 * every ML-DSA implementation reads (OpenSSL 3.5, BoringSSL, wolfSSL,
 * pyca/cryptography; the "both" and "expandedKey" forms are not). */
static int mldsa_pkcs8(pxkey_t *k, uint8_t **out, size_t *out_len)
{
    static const uint8_t oid_prefix[] = { 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03 };
    uint8_t oid[sizeof oid_prefix + 1], alg[16], *p;
    size_t oct, alg_len, body, total, off = 0;

    if (!k->has_seed)
        return fail_msg(PX_EINVAL, "ML-DSA key has no seed to export");
    memcpy(oid, oid_prefix, sizeof oid_prefix);
    oid[sizeof oid_prefix] = (uint8_t)(k->type == PX_KEY_MLDSA44 ? 0x11 :
                                       k->type == PX_KEY_MLDSA65 ? 0x12 : 0x13);
    alg_len = px_der_put(alg + 2, 0x06, oid, sizeof oid);
    alg_len += px_der_put_hdr(alg, 0x30, alg_len);
    oct = 2 + MLDSA_SEED_LEN;
    body = 3 + alg_len + px_der_hdr_size(oct) + oct;
    total = px_der_hdr_size(body) + body;
    if (!(p = malloc(total)))
        return fail_msg(PX_ENOMEM, "out of memory for the ML-DSA key");
    off += px_der_put_hdr(p + off, 0x30, body);
    off += px_der_put(p + off, 0x02, "\0", 1); /* version v1 (0) */
    memcpy(p + off, alg, alg_len);
    off += alg_len;
    off += px_der_put_hdr(p + off, 0x04, oct);
    off += px_der_put(p + off, 0x80, k->seed, MLDSA_SEED_LEN); /* seed [0] */
    *out = p;
    *out_len = off;
    return 0;
}

/* PKCS#8 PrivateKeyInfo DER for any key type. */
static int key_to_pkcs8(pxkey_t *k, uint8_t **out, size_t *out_len)
{
    uint8_t *buf = NULL, *trad = NULL;
    word32 len = 4096;
    int ret, n;

    if (is_mldsa(k->type))
        return mldsa_pkcs8(k, out, out_len);
    if (!(buf = malloc(len)) || !(trad = malloc(len))) {
        ret = fail_msg(PX_ENOMEM, "out of memory for the private key");
        goto fail;
    }
    if (k->type == PX_KEY_RSA2048) {
        if ((n = wc_RsaKeyToDer(&k->u.rsa, trad, len)) < 0) {
            ret = wc_fail("wc_RsaKeyToDer", n);
            goto fail;
        }
        n = wc_CreatePKCS8Key(buf, &len, trad, (word32)n, RSAk, NULL, 0);
        if (n < 0) {
            ret = wc_fail("wc_CreatePKCS8Key", n);
            goto fail;
        }
    } else if ((n = wc_EccKeyToPKCS8(&k->u.ecc, buf, &len)) < 0) {
        ret = wc_fail("wc_EccKeyToPKCS8", n);
        goto fail;
    }
    *out = buf;
    *out_len = (size_t)n;
    buf = NULL;
    ret = 0;
fail:
    if (trad)
        explicit_bzero(trad, 4096);
    free(trad);
    free(buf);
    return ret;
}

/* Fills out with the certificate and the PKCS#8 key as PEM. */
static int make_pems(const uint8_t *der, size_t der_len, pxkey_t *k, px_pem_pair_t *out)
{
    uint8_t *kder = NULL;
    size_t klen = 0;
    int ret;

    if ((ret = key_to_pkcs8(k, &kder, &klen)) != 0)
        goto fail;
    if ((ret = der_to_pem(der, der_len, CERT_TYPE, &out->cert_pem, &out->cert_len)) != 0)
        goto fail;
    ret = der_to_pem(kder, klen, PKCS8_PRIVATEKEY_TYPE, &out->key_pem, &out->key_len);
fail:
    if (kder)
        explicit_bzero(kder, klen);
    free(kder);
    if (ret != 0)
        px_pem_pair_free(out);
    return ret;
}

static int check_args(px_keytype_t type, const char *cn, int days, const px_pem_pair_t *out)
{
    errmsg[0] = '\0';
    if (!out)
        return fail_msg(PX_EINVAL, "no output");
    if ((unsigned)type >= PX_KEYTYPE_COUNT)
        return fail_msg(PX_EINVAL, "unknown key type %d", (int)type);
    if (!cn || !*cn || strlen(cn) >= CTC_NAME_SIZE)
        return fail_msg(PX_EINVAL, "common name must be 1 to %d bytes", CTC_NAME_SIZE - 1);
    if (days < 1 || days > MAX_DAYS)
        return fail_msg(PX_EINVAL, "validity must be 1 to %d days, not %d", MAX_DAYS, days);
    return 0;
}

/* Generates a key and its certificate signed by ca_key (NULL: self-signed
 * CA), checks the signature as a verifier would, and returns both as PEM. */
static int issue(px_keytype_t type, pxkey_t *ca_key, const uint8_t *ca_der, size_t ca_len,
                 const char *cn, const uint8_t *san, size_t san_len, int days, role_t role,
                 px_pem_pair_t *out)
{
    WC_RNG rng;
    pxkey_t *key = NULL;
    uint8_t *der = NULL;
    size_t der_len = 0;
    int ret;

    if ((ret = wc_InitRng(&rng)) != 0)
        return wc_fail("wc_InitRng", ret);
    if ((ret = key_generate(type, &rng, &key)) != 0)
        goto fail;
    ret = build_cert(key, ca_key ? ca_key : key, ca_der, ca_len, cn, san, san_len, days, role,
                     &rng, &der, &der_len);
    if (ret != 0)
        goto fail;
    if (!ca_key) {
        ca_der = der;
        ca_len = der_len;
    }
    if ((ret = verify_with_ca(ca_der, ca_len, der, der_len)) != 0)
        goto fail;
    ret = make_pems(der, der_len, key, out);
fail:
    free(der);
    key_free(key);
    wc_FreeRng(&rng);
    return ret;
}

int px_certgen_ca(px_keytype_t type, const char *cn, int days, px_pem_pair_t *out)
{
    int ret;

    if (out)
        memset(out, 0, sizeof *out);
    if ((ret = check_args(type, cn, days, out)) != 0)
        return ret;
    return issue(type, NULL, NULL, 0, cn, NULL, 0, days, ROLE_CA, out);
}

int px_certgen_leaf(px_keytype_t type, const px_pem_pair_t *ca, const char *cn,
                    const char *const *sans, int nsans, int days, int is_client,
                    px_pem_pair_t *out)
{
    int ret, n, bad = -1;
    pxkey_t *ca_key = NULL;
    uint8_t *ca_der = NULL, *san = NULL;
    size_t san_len = 0;

    if (out)
        memset(out, 0, sizeof *out);
    if ((ret = check_args(type, cn, days, out)) != 0)
        goto fail;
    if (!ca || !ca->cert_pem || !ca->key_pem || ca->cert_len > INT32_MAX) {
        ret = fail_msg(PX_EINVAL, "no CA certificate and key");
        goto fail;
    }
    if (nsans > 0 && (ret = px_san_extension(sans, nsans, &san, &san_len, &bad)) != 0) {
        if (ret == PX_EINVAL && bad >= 0)
            ret = fail_msg(ret, "invalid subjectAltName '%s': not an IP address or DNS name",
                           sans[bad] ? sans[bad] : "(null)");
        else
            ret = fail_msg(ret, "cannot encode %d subjectAltNames: %s", nsans, px_strerror(ret));
        goto fail;
    }
    if (!(ca_der = malloc(ca->cert_len + 1))) {
        ret = fail_msg(PX_ENOMEM, "out of memory for the CA certificate");
        goto fail;
    }
    n = wc_CertPemToDer((const unsigned char *)ca->cert_pem, (int)ca->cert_len, ca_der,
                        (int)ca->cert_len + 1, CERT_TYPE);
    if (n <= 0) {
        ret = wc_fail("reading the CA certificate PEM", n);
        goto fail;
    }
    if ((ret = check_is_ca(ca_der, (size_t)n)) != 0)
        goto fail;
    if ((ret = key_load_pem(ca->key_pem, ca->key_len, &ca_key)) != 0)
        goto fail;
    ret = issue(type, ca_key, ca_der, (size_t)n, cn, san, san_len, days,
                is_client ? ROLE_CLIENT : ROLE_SERVER, out);
fail:
    free(san);
    free(ca_der);
    key_free(ca_key);
    return ret;
}

void px_pem_pair_free(px_pem_pair_t *p)
{
    if (!p)
        return;
    free(p->cert_pem);
    if (p->key_pem)
        explicit_bzero(p->key_pem, p->key_len);
    free(p->key_pem);
    memset(p, 0, sizeof *p);
}

/* --- files ------------------------------------------------------------------ */

static int write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

static void sync_parent_dir(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    int fd;

    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
        fsync(fd); /* best effort: the rename is already visible */
        close(fd);
    }
}

int px_pem_write_file(const char *path, const char *data, size_t len, int mode, int force)
{
    char *tmp = NULL;
    int fd = -1, ret, saved;
    size_t plen;

    if (!path || !*path || (!data && len > 0)) {
        errno = EINVAL;
        return PX_EINVAL;
    }
    plen = strlen(path);
    if (!(tmp = malloc(plen + sizeof ".tmp.XXXXXX"))) {
        errno = ENOMEM;
        return PX_ENOMEM;
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.XXXXXX", sizeof ".tmp.XXXXXX");
    /* mkostemp creates the file 0600, so a key is never readable by others. */
    if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
        free(tmp);
        return PX_EIO;
    }
    if (fchmod(fd, (mode_t)mode) != 0 || write_all(fd, data, len) != 0 || fsync(fd) != 0)
        goto fail;
    if (close(fd) != 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    if (force) {
        if (rename(tmp, path) != 0)
            goto fail;
    } else if (link(tmp, path) == 0) { /* unlike rename(), refuses an existing name */
        unlink(tmp);
    } else if (errno == EEXIST) {
        goto fail;
    } else {
        /* No hard links on this file system (vfat, some FUSE): check, then rename. */
        struct stat st;
        if (lstat(path, &st) == 0)
            errno = EEXIST;
        if (errno != ENOENT || rename(tmp, path) != 0)
            goto fail;
    }
    sync_parent_dir(path);
    free(tmp);
    return 0;
fail:
    saved = errno;
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    free(tmp);
    errno = saved;
    ret = saved == EEXIST ? -EEXIST : PX_EIO;
    return ret;
}
