/* DSSE (Dead Simple Signing Envelope, secure-systems-lab/dsse v1.0): the
 * pre-authentication encoding that is signed, and the JSON envelope that
 * carries a payload with its signatures (docs/model-signing.md).
 *
 * The parser reads untrusted bytes: strict JSON (jsonsyntax), exactly the
 * members "payloadType", "payload", "signatures", each signature exactly
 * "keyid" and "sig", canonical padded standard base64, size limits;
 * payloadType and keyids printable ASCII without '"' or '\' (what
 * px_dsse_build writes unescaped). It only decodes: checking signatures is
 * the caller's (manifest.c). */
#ifndef PX_DSSE_H
#define PX_DSSE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define PX_DSSE_MAX_ENVELOPE (64u << 20)  /* bytes of envelope JSON */
#define PX_DSSE_MAX_SIGS     2
#define PX_DSSE_MAX_KEYID    128
#define PX_DSSE_MAX_SIG      8192         /* decoded bytes of one signature */

typedef struct {
    char keyid[PX_DSSE_MAX_KEYID + 1];
    uint8_t *sig;
    size_t sig_len;
} px_dsse_sig_t;

typedef struct {
    char *payload_type;
    uint8_t *payload;       /* decoded; NUL-terminated for convenience */
    size_t payload_len;
    px_dsse_sig_t sigs[PX_DSSE_MAX_SIGS];
    int nsigs;
} px_dsse_t;

/* PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body,
 * lengths as ASCII decimal: appended to out. */
int px_dsse_pae(const char *type, const uint8_t *body, size_t len, px_buf_t *out);

/* The envelope JSON (one line and a newline) for payload and n signatures. */
int px_dsse_build(const char *type, const uint8_t *payload, size_t len, const px_dsse_sig_t *sigs,
                  int n, px_buf_t *out);

/* Parses an envelope; 0, or PX_EPARSE / PX_ETOOBIG / PX_ENOMEM with the
 * reason in err ("what: member: reason"). Free with px_dsse_free either way. */
int px_dsse_parse(const char *text, size_t len, const char *what, px_dsse_t *env, char *err,
                  size_t errlen);
void px_dsse_free(px_dsse_t *env);

#endif
