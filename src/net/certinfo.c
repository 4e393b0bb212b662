/* Certificate files and expiry warnings (see certinfo.h). */
#include "net/certinfo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/asn_public.h>

#include "core/der.h"
#include "core/errors.h"
#include "core/log.h"

#define FILE_MAX (4 * 1024 * 1024)
#define PEM_CERT "-----BEGIN CERTIFICATE-----"

static int slurp(const char *file, uint8_t **out, size_t *len)
{
    FILE *f = fopen(file, "rb");
    uint8_t *buf;
    size_t n;

    if (!f)
        return PX_EIO;
    buf = malloc(FILE_MAX + 1);
    n = buf ? fread(buf, 1, FILE_MAX + 1, f) : 0;
    if (!buf || ferror(f) || n > FILE_MAX) {
        free(buf);
        fclose(f);
        return buf ? PX_EIO : PX_ENOMEM;
    }
    fclose(f);
    buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
}

static int add(px_chain_t *chain, const uint8_t *der, size_t len)
{
    if (chain->count == PX_CHAIN_MAX)
        return PX_ETOOBIG;
    if (!(chain->der[chain->count] = malloc(len)))
        return PX_ENOMEM;
    memcpy(chain->der[chain->count], der, len);
    chain->len[chain->count++] = len;
    return 0;
}

int px_chain_read(const char *file, px_chain_t *chain, char *why, size_t whylen)
{
    uint8_t *data = NULL, *der = NULL;
    size_t n = 0;
    const char *p;
    int r;

    memset(chain, 0, sizeof *chain);
    if ((r = slurp(file, &data, &n)) != 0)
        return px_errorf(r, why, whylen, "cannot read %s", file);
    if (!(der = malloc(n + 1))) {
        r = px_errorf(PX_ENOMEM, why, whylen, "out of memory");
        goto out;
    }
    if (n && data[0] == 0x30) {                 /* a single DER certificate */
        r = add(chain, data, n);
        goto out;
    }
    for (p = (const char *)data; (p = memmem(p, n - (size_t)(p - (const char *)data), PEM_CERT,
                                            strlen(PEM_CERT))); p += strlen(PEM_CERT)) {
        int len = wc_CertPemToDer((const unsigned char *)p, (int)(n - (size_t)(p - (const char *)data)),
                                  der, (int)n, CERT_TYPE);
        if (len <= 0) {
            r = px_errorf(PX_EPARSE, why, whylen, "%s: certificate %d is malformed PEM", file,
                          chain->count + 1);
            goto out;
        }
        if ((r = add(chain, der, (size_t)len)) != 0) {
            px_errorf(r, why, whylen, "%s: more than %d certificates", file, PX_CHAIN_MAX);
            goto out;
        }
    }
    r = chain->count ? 0 : px_errorf(PX_EPARSE, why, whylen, "%s: no certificate in it", file);
out:
    if (r != 0)
        px_chain_free(chain);
    free(der);
    free(data);
    return r;
}

void px_chain_free(px_chain_t *chain)
{
    for (int i = 0; i < chain->count; i++)
        free(chain->der[i]);
    memset(chain, 0, sizeof *chain);
}

int px_certinfo_parse(const uint8_t *der, size_t len, px_certinfo_t *ci)
{
    px_der_t r = { der, len }, cert, tbs, v, validity;
    unsigned tag;
    DecodedCert dc;
    int rc;

    memset(ci, 0, sizeof *ci);
    /* Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL,
     * serialNumber, signature, issuer, validity { notBefore, notAfter }, ... } } */
    if (px_der_expect(&r, PX_DER_SEQUENCE, &cert) != 0 ||
        px_der_expect(&cert, PX_DER_SEQUENCE, &tbs) != 0 ||
        px_der_optional(&tbs, PX_DER_CTX(0), &v) < 0 ||
        px_der_expect(&tbs, PX_DER_INTEGER, &v) != 0)
        return PX_EPARSE;
    ci->serial = v.p;
    ci->serial_len = v.n;
    if (px_der_expect(&tbs, PX_DER_SEQUENCE, &v) != 0 ||
        px_der_expect(&tbs, PX_DER_SEQUENCE, &v) != 0 ||
        px_der_expect(&tbs, PX_DER_SEQUENCE, &validity) != 0 ||
        px_der_next(&validity, &tag, &v) != 0 ||
        px_der_next(&validity, &tag, &v) != 0 || px_der_time(tag, &v, &ci->not_after) != 0)
        return PX_EPARSE;
    wc_InitDecodedCert(&dc, der, (word32)len, NULL);
    rc = wc_ParseCert(&dc, CERT_TYPE, NO_VERIFY, NULL);
    if (rc == 0)
        snprintf(ci->subject, sizeof ci->subject, "%s", dc.subject);
    wc_FreeDecodedCert(&dc);
    return rc == 0 ? 0 : PX_EPARSE;
}

int px_cert_expiry_check(const char *what, const char *file, unsigned warn_days, time_t now,
                         int64_t *leaf_not_after)
{
    px_chain_t chain;
    char why[256];
    int warned = 0;

    if (leaf_not_after)
        *leaf_not_after = 0;
    if (px_chain_read(file, &chain, why, sizeof why) != 0)
        return 0;        /* loading the file reports it */
    for (int i = 0; i < chain.count; i++) {
        px_certinfo_t ci;
        char when[32];
        struct tm tm;
        time_t t;
        int64_t left;

        if (px_certinfo_parse(chain.der[i], chain.len[i], &ci) != 0)
            continue;
        if (i == 0 && leaf_not_after)
            *leaf_not_after = ci.not_after;
        left = ci.not_after - (int64_t)now;
        if (warn_days == 0 || left > (int64_t)warn_days * 86400)
            continue;
        t = (time_t)ci.not_after;
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
        if (left <= 0)
            px_warn("%s: %s: certificate %d (%s) EXPIRED at %s", what, file, i + 1, ci.subject,
                    when);
        else
            px_warn("%s: %s: certificate %d (%s) expires at %s, in %lld days (warning window "
                    "tls.cert_expiry_warning_days: %u)", what, file, i + 1, ci.subject, when,
                    (long long)(left / 86400), warn_days);
        warned++;
    }
    px_chain_free(&chain);
    return warned;
}
