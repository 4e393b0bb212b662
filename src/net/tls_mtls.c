/* Client certificate verification and identity (see tls_mtls.h,
 * docs/config.md "mTLS"). */
#include "net/tls_mtls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/wolfcrypt/error-crypt.h>

#include "net/clientcert.h"
#include "core/errors.h"

#define CRL_FILE_MAX (64L * 1024 * 1024)   /* a CRL file larger than this is refused */

static const char crl_begin[] = "-----BEGIN X509 CRL-----";
static const char crl_end[] = "-----END X509 CRL-----";

static char *slurp(const char *path, long *len, int *err)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n = -1;

    *err = 0;
    if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        *err = errno ? errno : EIO;
    } else if (n > CRL_FILE_MAX) {
        *err = EFBIG;
    } else if (!(buf = malloc((size_t)n + 1))) {
        *err = ENOMEM;
    } else if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        *err = EIO;
        free(buf);
        buf = NULL;
    } else {
        buf[n] = 0;
        *len = n;
    }
    if (f)
        fclose(f);
    return buf;
}

static const char *crl_error(int rc)
{
    switch (rc) {
    case ASN_CRL_NO_SIGNER_E: return "not issued by a CA in tls.client_ca";
    case ASN_CRL_CONFIRM_E: return "its signature does not verify with its issuer in tls.client_ca";
    case CRL_CERT_DATE_ERR: return "past its nextUpdate time: publish a fresh CRL";
    case ASN_PARSE_E:
    case ASN_INPUT_E:
    case WOLFSSL_FATAL_ERROR: return "not a valid PEM CRL";
    default: return NULL;
    }
}

/* Every PEM CRL block of one file into ctx. */
static int load_crl_file(WOLFSSL_CTX *ctx, const char *path, int i, char *err, size_t errlen)
{
    long len = 0;
    int e, blocks = 0, rc = 0;
    char *data = slurp(path, &len, &e), *p;

    if (!data) {
        snprintf(err, errlen, "tls.client_crl[%d]: cannot read %s: %s", i, path,
                 e == EFBIG ? "larger than 64 MiB" : strerror(e));
        return -1;
    }
    if (memchr(data, 0, (size_t)len)) {
        snprintf(err, errlen, "tls.client_crl[%d]: %s: not a PEM file (DER? convert it: openssl "
                 "crl -inform DER -in %s -out FILE.pem)", i, path, path);
        rc = -1;
    }
    for (p = data; rc == 0 && (p = strstr(p, crl_begin)); blocks++) {
        char *end = strstr(p, crl_end);
        int r;
        if (!end) {
            snprintf(err, errlen, "tls.client_crl[%d]: %s: CRL %d has no \"%s\" line", i, path,
                     blocks + 1, crl_end);
            rc = -1;
            break;
        }
        end += sizeof crl_end - 1;
        r = wolfSSL_CTX_LoadCRLBuffer(ctx, (const unsigned char *)p, end - p, WOLFSSL_FILETYPE_PEM);
        if (r != WOLFSSL_SUCCESS) {
            const char *why = crl_error(r);
            char buf[80];
            if (!why) {
                wolfSSL_ERR_error_string_n((unsigned long)r, buf, sizeof buf);
                why = buf;
            }
            snprintf(err, errlen, "tls.client_crl[%d]: %s: CRL %d: %s (%d)", i, path, blocks + 1,
                     why, r);
            rc = -1;
        }
        p = end;
    }
    if (rc == 0 && blocks == 0) {
        snprintf(err, errlen, "tls.client_crl[%d]: %s: no \"%s\" line: not a PEM CRL", i, path,
                 crl_begin);
        rc = -1;
    }
    free(data);
    return rc;
}

int px_tls_mtls_setup(WOLFSSL_CTX *ctx, const px_tls_config_t *cfg, char *err, size_t errlen)
{
    int mode = WOLFSSL_VERIFY_PEER;

    if (cfg->client_verify == PX_CLIENT_VERIFY_REQUIRED)
        mode |= WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    wolfSSL_CTX_set_verify(ctx, mode, NULL);
    /* wolfSSL counts the certificates the client sends: its own + depth */
    wolfSSL_CTX_set_verify_depth(ctx, (int)cfg->client_verify_depth + 1);
    /* A resumed session proves no certificate (nor its current CRL status)
     * and wolfSSL keeps none for it: every connection does a full handshake. */
    wolfSSL_CTX_NoTicketTLSv12(ctx);
    wolfSSL_CTX_no_ticket_TLSv13(ctx);
    wolfSSL_CTX_set_session_cache_mode(ctx, WOLFSSL_SESS_CACHE_OFF);
    if (!cfg->client_crl_count)
        return 0;
    if (wolfSSL_CTX_EnableCRL(ctx, WOLFSSL_CRL_CHECKALL) != WOLFSSL_SUCCESS) {
        snprintf(err, errlen, "tls.client_crl: this wolfSSL has no CRL support");
        return -1;
    }
    for (int i = 0; i < cfg->client_crl_count; i++)
        if (load_crl_file(ctx, cfg->client_crl[i], i, err, errlen) != 0)
            return -1;
    return 0;
}

int px_tls_mtls_identity(WOLFSSL *ssl, char **xfcc, char **log_json, char *subject,
                         size_t subject_len)
{
#ifdef KEEP_PEER_CERT
    WOLFSSL_X509 *peer = wolfSSL_get_peer_certificate(ssl);     /* a copy */
    px_clientcert_t *cc = NULL;
    const unsigned char *der;
    int n, rc = 0;

    *xfcc = *log_json = NULL;
    if (!peer)
        return 0;
    der = wolfSSL_X509_get_der(peer, &n);
    if (!der || n <= 0 || !(cc = malloc(sizeof *cc)) || px_clientcert_parse(der, (size_t)n, cc) != 0)
        goto out;                       /* verified by wolfSSL, so not expected */
    /* rendered once per connection, kept at their size (one pair per mTLS
     * connection for its lifetime) */
    {
        char x[PX_XFCC_MAX], j[PX_CC_LOG_MAX];
        px_clientcert_xfcc(cc, x, sizeof x);
        px_clientcert_log_json(cc, j, sizeof j);
        *xfcc = strdup(x);
        *log_json = strdup(j);
    }
    if (!*xfcc || !*log_json) {
        free(*xfcc);
        free(*log_json);
        *xfcc = *log_json = NULL;
        rc = PX_ENOMEM;
        goto out;
    }
    snprintf(subject, subject_len, "%s", cc->subject);
out:
    free(cc);
    wolfSSL_X509_free(peer);
    return rc;
#else
    (void)ssl;
    (void)subject;
    (void)subject_len;
    *xfcc = *log_json = NULL;
    return 0;
#endif
}
