/* Client certificate verification on a server context (verification mode,
 * chain depth, CRLs) and the verified client's identity; used by tls.c only. */
#ifndef PX_TLS_MTLS_H
#define PX_TLS_MTLS_H

#include <stddef.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "config/config.h"

/* After tls.client_ca is loaded into ctx: sets the verification mode and
 * depth and loads every CRL of tls.client_crl. 0, or -1 with
 * "tls.client_crl[i]: FILE: reason" in err. */
int px_tls_mtls_setup(WOLFSSL_CTX *ctx, const px_tls_config_t *cfg, char *err, size_t errlen);

/* The verified client certificate of a finished handshake as the
 * x-forwarded-client-cert value and the access log object (both malloc'd;
 * both NULL when the client sent none). Returns 0, or PX_ENOMEM. */
int px_tls_mtls_identity(WOLFSSL *ssl, char **xfcc, char **log_json, char *subject,
                         size_t subject_len);

#endif
