/* OCSP stapling from a file (tls.certificates[i].ocsp_response).
 *
 * The operator fetches the response (e.g. `openssl ocsp -respout`, as for
 * HAProxy's .ocsp files); the proxy never contacts a responder. A response
 * is checked when it is loaded (start-up, reload, check-config): it must be
 * DER, "successful", for this certificate, signed by its issuer (found in
 * the certificate's chain file or an issuer file) or a responder the issuer
 * delegated to, "good", and current. It is then stapled, byte for byte, to every
 * handshake whose client asks (status_request: in the leaf's entry of the
 * TLS 1.3 Certificate message, or a TLS 1.2 CertificateStatus message),
 * until its nextUpdate passes: from then on nothing is stapled and one
 * warning is logged. */
#ifndef PX_OCSP_STAPLE_H
#define PX_OCSP_STAPLE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

typedef struct px_ocsp_staple px_ocsp_staple_t;
struct WOLFSSL_CTX;

/* Loads and checks RESP_FILE for the leaf of CHAIN_FILE at time now; the
 * issuer is looked for in the rest of CHAIN_FILE and in ISSUER_FILE (PEM,
 * may be NULL). 0 with *out set, or PX_EIO / PX_EPARSE / PX_ENOMEM with the
 * reason in why (without the key path, which the caller adds). what names
 * the key in later log lines ("tls.certificates[0].ocsp_response"). */
int px_ocsp_staple_load(const char *what, const char *resp_file, const char *chain_file,
                        const char *issuer_file, time_t now, px_ocsp_staple_t **out, char *why,
                        size_t whylen);
/* Staples s on the sessions of ctx (s must outlive ctx). 0 or PX_ETLS. */
int px_ocsp_staple_attach(px_ocsp_staple_t *s, struct WOLFSSL_CTX *ctx);
int64_t px_ocsp_staple_next_update(const px_ocsp_staple_t *s);
void px_ocsp_staple_free(px_ocsp_staple_t *s);

/* --- parsing (exposed for tests) --------------------------------------------- */
typedef struct {
    int status;                /* OCSPResponseStatus: 0 successful, 3 tryLater, ... */
    int found;                 /* a SingleResponse for the serial asked about */
    int cert_status;           /* of that one: 0 good, 1 revoked, 2 unknown */
    int64_t this_update, next_update;   /* Unix time; next_update 0: absent */
    uint8_t other_serial[20];  /* when !found: the first response's serial (for messages) */
    size_t other_serial_len;
} px_ocsp_info_t;

/* Parses a DER OCSPResponse and looks for the response about serial (the
 * certificate's INTEGER contents). 0, or PX_EPARSE if it is not one. */
int px_ocsp_parse(const uint8_t *der, size_t len, const uint8_t *serial, size_t serial_len,
                  px_ocsp_info_t *info);
/* RFC 6960 name of a response status ("tryLater"), "unknown" if none. */
const char *px_ocsp_status_name(int status);

#endif
