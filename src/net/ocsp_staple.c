/* OCSP stapling from a file (see ocsp_staple.h). */
#include "net/ocsp_staple.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/ocsp.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include "net/certinfo.h"
#include "core/der.h"
#include "core/errors.h"
#include "core/log.h"

/* A stapled response travels in a 16-bit-length TLS extension. */
#define RESP_MAX 60000

struct px_ocsp_staple {
    uint8_t *der;
    size_t len;
    int64_t next_update;
    char *what, *file;
    atomic_int expired_logged;
};

const char *px_ocsp_status_name(int status)
{
    static const char *const names[] = { "successful", "malformedRequest", "internalError",
                                         "tryLater", "unknown", "sigRequired", "unauthorized" };
    return status >= 0 && status < 7 ? names[status] : "unknown";
}

static int same_serial(const px_der_t *a, const uint8_t *b, size_t blen)
{
    const uint8_t *ap = a->p;
    size_t alen = a->n;
    /* INTEGER contents: a leading 0x00 only keeps the number positive */
    while (alen > 1 && ap[0] == 0) { ap++; alen--; }
    while (blen > 1 && b[0] == 0) { b++; blen--; }
    return alen == blen && !memcmp(ap, b, alen);
}

/* SingleResponse ::= SEQUENCE { certID CertID, certStatus CertStatus,
 *   thisUpdate GeneralizedTime, nextUpdate [0] EXPLICIT GeneralizedTime OPTIONAL, ... } */
static int parse_single(px_der_t s, const uint8_t *serial, size_t serial_len, px_ocsp_info_t *info)
{
    px_der_t id, v, next;
    unsigned tag;

    if (px_der_expect(&s, PX_DER_SEQUENCE, &id) != 0 || px_der_expect(&id, PX_DER_SEQUENCE, &v) != 0 ||
        px_der_expect(&id, PX_DER_OCTETSTRING, &v) != 0 ||
        px_der_expect(&id, PX_DER_OCTETSTRING, &v) != 0 ||
        px_der_expect(&id, PX_DER_INTEGER, &v) != 0)
        return PX_EPARSE;
    if (!same_serial(&v, serial, serial_len)) {
        if (!info->other_serial_len) {
            info->other_serial_len = v.n < sizeof info->other_serial ? v.n : sizeof info->other_serial;
            memcpy(info->other_serial, v.p, info->other_serial_len);
        }
        return 0;
    }
    if (px_der_next(&s, &tag, &v) != 0)
        return PX_EPARSE;
    if (tag == PX_DER_CTX_PRIM(0))
        info->cert_status = 0;
    else if (tag == PX_DER_CTX(1))
        info->cert_status = 1;
    else if (tag == PX_DER_CTX_PRIM(2))
        info->cert_status = 2;
    else
        return PX_EPARSE;
    if (px_der_expect(&s, PX_DER_GENTIME, &v) != 0 ||
        px_der_time(PX_DER_GENTIME, &v, &info->this_update) != 0)
        return PX_EPARSE;
    info->next_update = 0;
    if (px_der_optional(&s, PX_DER_CTX(0), &next) == 1 &&
        (px_der_expect(&next, PX_DER_GENTIME, &v) != 0 ||
         px_der_time(PX_DER_GENTIME, &v, &info->next_update) != 0))
        return PX_EPARSE;
    info->found = 1;
    return 0;
}

int px_ocsp_parse(const uint8_t *der, size_t len, const uint8_t *serial, size_t serial_len,
                  px_ocsp_info_t *info)
{
    px_der_t r = { der, len }, resp, v, bytes, basic, tbs, list, single;
    unsigned tag;

    memset(info, 0, sizeof *info);
    /* OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED,
     *   responseBytes [0] EXPLICIT SEQUENCE { responseType OID, response OCTET STRING } OPTIONAL } */
    if (px_der_expect(&r, PX_DER_SEQUENCE, &resp) != 0 || r.n != 0 ||
        px_der_expect(&resp, PX_DER_ENUMERATED, &v) != 0 || v.n != 1)
        return PX_EPARSE;
    info->status = v.p[0];
    if (info->status != 0)
        return 0;
    if (px_der_expect(&resp, PX_DER_CTX(0), &v) != 0 ||
        px_der_expect(&v, PX_DER_SEQUENCE, &bytes) != 0 ||
        px_der_expect(&bytes, PX_DER_OID, &v) != 0 ||
        px_der_expect(&bytes, PX_DER_OCTETSTRING, &v) != 0)
        return PX_EPARSE;
    /* BasicOCSPResponse ::= SEQUENCE { tbsResponseData ResponseData, ... }
     * ResponseData ::= SEQUENCE { version [0] OPTIONAL, responderID [1]|[2],
     *   producedAt GeneralizedTime, responses SEQUENCE OF SingleResponse, ... } */
    if (px_der_expect(&v, PX_DER_SEQUENCE, &basic) != 0 ||
        px_der_expect(&basic, PX_DER_SEQUENCE, &tbs) != 0 ||
        px_der_optional(&tbs, PX_DER_CTX(0), &v) < 0 ||
        px_der_next(&tbs, &tag, &v) != 0 || (tag != PX_DER_CTX(1) && tag != PX_DER_CTX(2)) ||
        px_der_expect(&tbs, PX_DER_GENTIME, &v) != 0 ||
        px_der_expect(&tbs, PX_DER_SEQUENCE, &list) != 0)
        return PX_EPARSE;
    while (list.n && !info->found) {
        if (px_der_expect(&list, PX_DER_SEQUENCE, &single) != 0 ||
            parse_single(single, serial, serial_len, info) != 0)
            return PX_EPARSE;
    }
    return 0;
}

static void fmt_time(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&tt, &tm));
}

static void fmt_serial(const uint8_t *p, size_t n, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = 0;
    for (size_t i = 0; i < n && o + 4 < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%02X", i ? ":" : "", p[i]);
}

/* The checks only wolfSSL can make: the signature (by the issuer, or by a
 * responder certificate the issuer signed for OCSP) and the CertID's issuer
 * hashes. The issuer must be among the chain file's other certificates. */
static int verify_signature(const px_chain_t *chain, const px_chain_t *issuer, const uint8_t *resp,
                            size_t len, char *why, size_t whylen)
{
    WOLFSSL_CTX *tmp = wolfSSL_CTX_new(wolfSSLv23_server_method());
    WOLFSSL_OCSP *ocsp = NULL;
    DecodedCert dc;
    int rc, r = PX_EPARSE;

    if (!tmp)
        return px_errorf(PX_ENOMEM, why, whylen, "out of memory");
    /* the chain's certificates are trusted only to check this response */
    wolfSSL_CTX_set_verify(tmp, WOLFSSL_VERIFY_NONE, NULL);
    for (int i = 1; i < chain->count; i++)
        wolfSSL_CTX_load_verify_buffer(tmp, chain->der[i], (long)chain->len[i], WOLFSSL_FILETYPE_ASN1);
    for (int i = 0; i < issuer->count; i++)
        wolfSSL_CTX_load_verify_buffer(tmp, issuer->der[i], (long)issuer->len[i], WOLFSSL_FILETYPE_ASN1);
    wc_InitDecodedCert(&dc, chain->der[0], (word32)chain->len[0], NULL);
    rc = wc_ParseCert(&dc, CERT_TYPE, VERIFY, wolfSSL_CTX_GetCertManager(tmp));
    if (rc == ASN_NO_SIGNER_E) {
        px_errorf(PX_EPARSE, why, whylen, "cannot check its signature: the issuer of the certificate "
                  "(%s) is neither in the certificate's chain file nor in ocsp_issuer; append the "
                  "issuing CA's certificate to the chain or name it in ocsp_issuer", dc.issuer);
        goto out;
    }
    if (rc != 0 && rc != ASN_AFTER_DATE_E && rc != ASN_BEFORE_DATE_E) {
        px_errorf(PX_EPARSE, why, whylen, "cannot check its signature: the certificate does not "
                  "verify against its chain (%s)", wc_GetErrorString(rc));
        goto out;
    }
    if (!(ocsp = wc_NewOCSP(wolfSSL_CTX_GetCertManager(tmp)))) {
        r = px_errorf(PX_ENOMEM, why, whylen, "out of memory");
        goto out;
    }
    rc = wc_CheckCertOcspResponse(ocsp, &dc, (byte *)resp, (int)len, NULL);
    if (rc == 0)
        r = 0;
    else if (rc == OCSP_CERT_REVOKED)
        px_errorf(PX_EPARSE, why, whylen, "the certificate is revoked");
    else
        px_errorf(PX_EPARSE, why, whylen, "not signed by the certificate's issuer (%s) or a "
                  "responder it delegated to, or its CertID names another issuer", dc.issuer);
out:
    if (ocsp)
        wc_FreeOCSP(ocsp);
    wc_FreeDecodedCert(&dc);
    wolfSSL_CTX_free(tmp);
    return r;
}

static int check(const char *resp_file, const uint8_t *resp, size_t len, const px_chain_t *chain,
                 const px_chain_t *issuer, time_t now, px_ocsp_info_t *info, char *why,
                 size_t whylen)
{
    px_certinfo_t leaf;
    char a[40], b[80];

    if (px_certinfo_parse(chain->der[0], chain->len[0], &leaf) != 0)
        return px_errorf(PX_EPARSE, why, whylen, "the certificate cannot be parsed");
    if (px_ocsp_parse(resp, len, leaf.serial, leaf.serial_len, info) != 0) {
        if (len >= 10 && !memcmp(resp, "-----BEGIN", 10))
            return px_errorf(PX_EPARSE, why, whylen, "%s is PEM; a DER OCSP response is expected "
                             "(what openssl ocsp -respout writes)", resp_file);
        return px_errorf(PX_EPARSE, why, whylen, "%s is not a DER OCSP response (expected what "
                         "openssl ocsp -respout writes)", resp_file);
    }
    if (info->status != 0)
        return px_errorf(PX_EPARSE, why, whylen, "response status is %s (%d), not successful: "
                         "it holds no certificate status", px_ocsp_status_name(info->status),
                         info->status);
    if (!info->found) {
        fmt_serial(info->other_serial, info->other_serial_len, b, sizeof b);
        fmt_serial(leaf.serial, leaf.serial_len, a, sizeof a);
        return px_errorf(PX_EPARSE, why, whylen, "for another certificate: it answers for serial "
                         "%s, the certificate's serial is %s", b[0] ? b : "(none)", a);
    }
    if (info->cert_status == 1)
        return px_errorf(PX_EPARSE, why, whylen, "the certificate is revoked");
    if (info->cert_status == 2)
        return px_errorf(PX_EPARSE, why, whylen, "certificate status \"unknown\": the responder "
                         "does not know this certificate");
    if (info->next_update == 0)
        return px_errorf(PX_EPARSE, why, whylen, "it has no nextUpdate, so no end of validity "
                         "(the responder must set one)");
    if (info->this_update > (int64_t)now) {
        fmt_time(info->this_update, a, sizeof a);
        return px_errorf(PX_EPARSE, why, whylen, "not valid yet: thisUpdate %s is in the future "
                         "(check the clock)", a);
    }
    if (info->next_update <= (int64_t)now) {
        fmt_time(info->next_update, a, sizeof a);
        return px_errorf(PX_EPARSE, why, whylen, "expired: its nextUpdate %s has passed; fetch a "
                         "fresh response", a);
    }
    return verify_signature(chain, issuer, resp, len, why, whylen);
}

int px_ocsp_staple_load(const char *what, const char *resp_file, const char *chain_file,
                        const char *issuer_file, time_t now, px_ocsp_staple_t **out, char *why,
                        size_t whylen)
{
    px_ocsp_staple_t *s = NULL;
    px_chain_t chain, issuer;
    px_ocsp_info_t info;
    FILE *f;
    int r;

    *out = NULL;
    memset(&issuer, 0, sizeof issuer);
    if ((r = px_chain_read(chain_file, &chain, why, whylen)) != 0)
        return r;
    if (issuer_file && (r = px_chain_read(issuer_file, &issuer, why, whylen)) != 0) {
        px_chain_free(&chain);
        return r;
    }
    if (!(s = calloc(1, sizeof *s)) || !(s->der = malloc(RESP_MAX + 1)) ||
        !(s->what = strdup(what)) || !(s->file = strdup(resp_file))) {
        r = px_errorf(PX_ENOMEM, why, whylen, "out of memory");
        goto out;
    }
    if (!(f = fopen(resp_file, "rb"))) {
        r = px_errorf(PX_EIO, why, whylen, "cannot read %s", resp_file);
        goto out;
    }
    s->len = fread(s->der, 1, RESP_MAX + 1, f);
    r = ferror(f);
    fclose(f);
    if (r) {
        r = px_errorf(PX_EIO, why, whylen, "cannot read %s", resp_file);
        goto out;
    }
    if (s->len == 0 || s->len > RESP_MAX) {
        r = px_errorf(PX_EPARSE, why, whylen, "%s is %s", resp_file,
                      s->len ? "larger than a TLS extension can carry" : "empty");
        goto out;
    }
    if ((r = check(resp_file, s->der, s->len, &chain, &issuer, now, &info, why, whylen)) != 0)
        goto out;
    s->next_update = info.next_update;
    atomic_init(&s->expired_logged, 0);
    *out = s;
    s = NULL;
out:
    px_ocsp_staple_free(s);
    px_chain_free(&chain);
    px_chain_free(&issuer);
    return r;
}

/* wolfSSL asks for the staple once per handshake whose client sent
 * status_request; it takes ownership of the copy. */
static int staple_cb(WOLFSSL *ssl, void *arg)
{
    px_ocsp_staple_t *s = arg;
    unsigned char *copy;

    if ((int64_t)time(NULL) >= s->next_update) {
        if (!atomic_exchange(&s->expired_logged, 1)) {
            char when[40];
            fmt_time(s->next_update, when, sizeof when);
            px_warn("%s: the OCSP response in %s expired at %s and is no longer stapled; "
                    "fetch a fresh one and reload (SIGHUP)", s->what, s->file, when);
        }
        return WOLFSSL_OCSP_STATUS_CB_NOACK;
    }
    if (!(copy = XMALLOC(s->len, NULL, DYNAMIC_TYPE_TMP_BUFFER)))
        return WOLFSSL_OCSP_STATUS_CB_NOACK;
    memcpy(copy, s->der, s->len);
    if (wolfSSL_set_tlsext_status_ocsp_resp(ssl, copy, (int)s->len) != WOLFSSL_SUCCESS) {
        XFREE(copy, NULL, DYNAMIC_TYPE_TMP_BUFFER);
        return WOLFSSL_OCSP_STATUS_CB_NOACK;
    }
    return WOLFSSL_OCSP_STATUS_CB_OK;
}

int px_ocsp_staple_attach(px_ocsp_staple_t *s, WOLFSSL_CTX *ctx)
{
    if (wolfSSL_CTX_set_tlsext_status_cb(ctx, staple_cb) != WOLFSSL_SUCCESS ||
        wolfSSL_CTX_set_tlsext_status_arg(ctx, s) != WOLFSSL_SUCCESS)
        return PX_ETLS;
    return 0;
}

int64_t px_ocsp_staple_next_update(const px_ocsp_staple_t *s)
{
    return s ? s->next_update : 0;
}

void px_ocsp_staple_free(px_ocsp_staple_t *s)
{
    if (!s)
        return;
    free(s->der);
    free(s->what);
    free(s->file);
    free(s);
}
