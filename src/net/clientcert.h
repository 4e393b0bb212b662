/* The identity of a verified client certificate (mTLS): its subject, its
 * subject alternative names and its SHA-256, read from the leaf's DER, and
 * the two texts made of them: the x-forwarded-client-cert header for the
 * model server (Envoy's format) and the access log's "client_cert" object.
 *
 * Everything kept is printable ASCII: the subject is RFC 4514 text with
 * every byte outside 0x20..0x7e escaped as \XX, and a SAN holding such a
 * byte (or over the caps below) is left out rather than altered, so no
 * certificate content can break a header or a log line. */
#ifndef PX_CLIENTCERT_H
#define PX_CLIENTCERT_H

#include <stddef.h>
#include <stdint.h>

#define PX_CC_MAX_SANS 8          /* kept per type */
#define PX_CC_MAX_VALUE 256       /* longest SAN kept, in bytes */
#define PX_CC_SUBJECT_MAX 1024    /* escaped subject, NUL included */
#define PX_XFCC_MAX 4096          /* x-forwarded-client-cert value, NUL included */
#define PX_CC_LOG_MAX 3072        /* the access log's object, NUL included */

typedef enum { PX_SAN_DNS, PX_SAN_URI, PX_SAN_EMAIL, PX_SAN_IP, PX_SAN__COUNT } px_san_type_t;

typedef struct {
    char sha256[65];                                  /* lowercase hex of the DER */
    char subject[PX_CC_SUBJECT_MAX];                  /* RFC 4514 ("CN=a,O=b") */
    int subject_truncated;
    char san[PX_SAN__COUNT][PX_CC_MAX_SANS][PX_CC_MAX_VALUE];
    int san_count[PX_SAN__COUNT];
    int san_skipped;                                  /* SANs left out (see above) */
} px_clientcert_t;

/* Reads a DER X.509 certificate. 0, or PX_EPARSE when it is not one. */
int px_clientcert_parse(const uint8_t *der, size_t len, px_clientcert_t *cc);

/* An X.501 Name (the DER SEQUENCE) as RFC 4514 text into out (always
 * NUL-terminated). 0, PX_ETOOBIG (truncated at an attribute boundary) or
 * PX_EPARSE. */
int px_clientcert_dn(const uint8_t *name, size_t len, char *out, size_t cap);

/* `Hash=<hex>;Subject="<rfc4514>";URI=<uri>;DNS=<name>` (one URI= / DNS=
 * per SAN; a value holding , ; = or " is double-quoted with \" inside).
 * SANs that do not fit in cap are left out. Returns the length. */
size_t px_clientcert_xfcc(const px_clientcert_t *cc, char *out, size_t cap);

/* {"subject":..,"sha256":..,"dns":[..],"uri":[..],"email":[..],"ip":[..]}
 * into out; SANs that do not fit are left out. Returns the length. */
size_t px_clientcert_log_json(const px_clientcert_t *cc, char *out, size_t cap);

#endif
