/* Certificate files: the DER certificates of a PEM chain, the few fields
 * pqproxy reports (subject, serial, notAfter), and the expiry warning
 * (tls.cert_expiry_warning_days) logged when a TLS context is built. */
#ifndef PX_CERTINFO_H
#define PX_CERTINFO_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define PX_CHAIN_MAX 512               /* a client CA bundle may hold hundreds */

typedef struct {
    uint8_t *der[PX_CHAIN_MAX];
    size_t len[PX_CHAIN_MAX];
    int count;
} px_chain_t;

typedef struct {
    int64_t not_after;                 /* Unix time */
    const uint8_t *serial;             /* INTEGER contents, into the DER given */
    size_t serial_len;
    char subject[512];                 /* "/C=../CN=.." */
} px_certinfo_t;

/* Every certificate of a PEM file (or one DER certificate), in file order.
 * 0, or PX_EIO / PX_EPARSE / PX_ENOMEM with the reason in why. */
int px_chain_read(const char *file, px_chain_t *chain, char *why, size_t whylen);
void px_chain_free(px_chain_t *chain);

/* Fields of one DER certificate: 0 or PX_EPARSE. */
int px_certinfo_parse(const uint8_t *der, size_t len, px_certinfo_t *ci);

/* Logs a warning for each certificate of FILE (what: "tls.certificates[0].cert",
 * "tls.client_ca") that has expired or expires within warn_days of now
 * (0: never). *leaf_not_after (may be NULL): the first certificate's notAfter,
 * 0 if the file could not be read. Returns how many warnings were logged. */
int px_cert_expiry_check(const char *what, const char *file, unsigned warn_days, time_t now,
                         int64_t *leaf_not_after);

#endif
