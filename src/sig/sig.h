/* Per-request dual signatures: ECDSA P-384/SHA-384 + ML-DSA-87 over an
 * RFC 9421 signature base, carried in X-Signature (docs/signatures.md is
 * the specification). Pure: no sockets, no clock (callers pass `now`), no
 * files except the key loaders in sigkeys.c.
 *
 * Thread safety: a keyring is immutable and may be shared by any number of
 * threads (each verification imports the raw public key into its own
 * wolfSSL key object). A replay cache (replay.h) is shared by all threads.
 * A signer serialises its signing operations with its own mutex (one
 * signer per worker avoids the contention). Everything else is per call. */
#ifndef PX_SIG_H
#define PX_SIG_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/errors.h"
#include "http/http1.h"
#include "sig/replay.h"

#define PX_SIG_ALG_HYBRID    "ecdsa-p384-sha384+ml-dsa-87"
#define PX_SIG_ALG_CLASSICAL "ecdsa-p384-sha384"
#define PX_SIG_FIELD         "x-signature"

#define PX_SIG_MAX_FIELD      8192   /* X-Signature and Signature values */
#define PX_SIG_MAX_INPUT      2048   /* Signature-Input value */
#define PX_SIG_MAX_DIGEST_FIELD 1024 /* Content-Digest value */
#define PX_SIG_MAX_COMPONENTS 16
#define PX_SIG_MAX_NAME       64     /* component name, keyid, nonce */
#define PX_SIG_MAX_LABEL      32     /* the signature label (dictionary key) */
#define PX_SIG_MAX_BASE       32768
#define PX_SIG_ECDSA_LEN      96     /* raw r||s */
#define PX_SIG_MLDSA_LEN      4627
#define PX_SIG_MLDSA_PUB_LEN  2592
#define PX_SIG_ECDSA_PUB_LEN  97     /* uncompressed point 04||x||y */

/* Outcome of a verification; each maps to a px_http_error_t. */
#define PX_SIG_RESULTS(XX)                                         \
    XX(OK,            BAD_REQUEST,  "ok")                           \
    XX(MISSING,       SIG_MISSING,  "missing")                      \
    XX(MALFORMED,     SIG_MALFORMED,"malformed")                    \
    XX(UNKNOWN_KEY,   SIG_UNKNOWN_KEY, "unknown_keyid")             \
    XX(EXPIRED,       SIG_EXPIRED,  "expired")                      \
    XX(NOT_YET_VALID, SIG_EXPIRED,  "not_yet_valid")                \
    XX(REPLAYED,      SIG_REPLAYED, "replayed")                     \
    XX(DIGEST,        SIG_DIGEST,   "digest_mismatch")              \
    XX(ECDSA,         SIG_ECDSA,    "ecdsa_invalid")                \
    XX(MLDSA,         SIG_MLDSA,    "mldsa_invalid")                \
    XX(CACHE_FULL,    OVERLOADED,   "replay_cache_full")            \
    XX(STORE_UNAVAILABLE, REPLAY_STORE_UNAVAILABLE, "replay_store_unavailable") \
    XX(INTERNAL,      INTERNAL,     "internal_error")

typedef enum {
#define XX(name, herr, str) PX_SIG_##name,
    PX_SIG_RESULTS(XX)
#undef XX
    PX_SIG__COUNT
} px_sig_result_t;

const char *px_sig_result_name(px_sig_result_t r);
/* The HTTP error to answer with (meaningless for PX_SIG_OK). */
px_http_error_t px_sig_http_error(px_sig_result_t r);

/* --- Content-Digest (RFC 9530) ------------------------------------------- */

enum { PX_DIGEST_SHA256 = 1, PX_DIGEST_SHA512 = 2 };

/* Streaming body hasher; embed it anywhere (no allocation). */
typedef struct {
    int algs;                                       /* PX_DIGEST_* mask */
    _Alignas(16) unsigned char st256[160];          /* wc_Sha256 */
    _Alignas(16) unsigned char st512[288];          /* wc_Sha512 */
} px_digest_t;

typedef struct {
    int algs;
    uint8_t sha256[32];
    uint8_t sha512[64];
} px_digest_value_t;

/* algs == 0 means SHA-256. Returns 0 or PX_ECRYPTO. */
int px_digest_init(px_digest_t *d, int algs);
void px_digest_update(px_digest_t *d, const void *data, size_t len);
void px_digest_final(px_digest_t *d, px_digest_value_t *out); /* frees the state */
/* One-shot SHA-256 "sha-256=:BASE64:" for data, into out (>= 52 bytes + NUL). */
int px_content_digest(const void *data, size_t len, char *out, size_t cap);
/* "sha-256=:BASE64:" from a finished digest (SHA-256 must be in algs). */
int px_content_digest_format(const px_digest_value_t *v, char *out, size_t cap);
/* Which supported algorithms a Content-Digest value names (mask, 0 if none
 * or malformed): init the hasher with this. */
int px_content_digest_algs(const char *value, size_t len);
/* Compares a Content-Digest value with the body's digest: PX_SIG_OK or
 * PX_SIG_DIGEST (detail says why). */
px_sig_result_t px_content_digest_check(const char *value, size_t len,
                                        const px_digest_value_t *body, char *detail,
                                        size_t detail_len);

/* --- messages -------------------------------------------------------------- */

/* What the signature base is built from. Strings are (pointer, length);
 * headers as px_header_t (names case-insensitive). For a response, `req`
 * is the request it answers (for ";req" components; may be NULL) and
 * `trailers` the trailer fields (for ";tr"). */
typedef struct px_sig_msg {
    int is_request;
    const char *method;    size_t method_len;
    const char *authority; size_t authority_len;   /* Host */
    const char *target;    size_t target_len;      /* origin-form "/path?query" */
    int status;
    const px_header_t *headers;  int header_count;
    const px_header_t *trailers; int trailer_count;
    const struct px_sig_msg *req;
} px_sig_msg_t;

/* Fills m from a parsed head (request or response). */
void px_sig_msg_from_head(px_sig_msg_t *m, const px_http_head_t *head);

/* --- keys (sigkeys.c) -------------------------------------------------------- */

typedef struct px_sig_keyring px_sig_keyring_t;
typedef struct px_sig_signer px_sig_signer_t;

/* Public key files/buffers, PEM or DER (detected). Raw keys out:
 * ecdsa_pub = 04||x||y (97 bytes), mldsa_pub = 2592 bytes. Errors name
 * `what` (a file name) in err. Return 0 or a negative PX_E* code. */
int px_sig_load_ecdsa_pub(const uint8_t *data, size_t len, const char *what,
                          uint8_t *out, char *err, size_t errlen);
int px_sig_load_mldsa_pub(const uint8_t *data, size_t len, const char *what,
                          uint8_t *out, char *err, size_t errlen);

/* A keyring from a directory: <keyid>.ecdsa.pub + <keyid>.mldsa.pub per key
 * (docs/signatures.md section 6). NULL on error, reason in err. */
px_sig_keyring_t *px_sig_keyring_load_dir(const char *dir, char *err, size_t errlen);
/* An empty keyring to which keys are added (tests, the CLI). */
px_sig_keyring_t *px_sig_keyring_new(void);
int px_sig_keyring_add(px_sig_keyring_t *ring, const char *keyid,
                       const uint8_t *ecdsa_pub,
                       const uint8_t *mldsa_pub, char *err, size_t errlen);
/* Adds PREFIX.ecdsa.pub + PREFIX.mldsa.pub under keyid. */
int px_sig_keyring_add_files(px_sig_keyring_t *ring, const char *keyid, const char *prefix,
                             char *err, size_t errlen);
int px_sig_keyring_count(const px_sig_keyring_t *ring);
/* Raw public keys of keyid, or -1. */
int px_sig_keyring_find(const px_sig_keyring_t *ring, const char *keyid, size_t keyid_len,
                        const uint8_t **ecdsa_pub, const uint8_t **mldsa_pub);
void px_sig_keyring_free(px_sig_keyring_t *ring);

/* A signer: both private keys (PKCS#8 PEM or DER; SEC1 for ECDSA) and the
 * keyid it signs as. */
int px_sig_signer_from_mem(const char *keyid, const uint8_t *ecdsa_key, size_t ecdsa_len,
                           const uint8_t *mldsa_key, size_t mldsa_len, px_sig_signer_t **out,
                           char *err, size_t errlen);
/* PREFIX.ecdsa.key + PREFIX.mldsa.key. */
int px_sig_signer_load(const char *prefix, const char *keyid, px_sig_signer_t **out, char *err,
                       size_t errlen);
const char *px_sig_signer_keyid(const px_sig_signer_t *s);
/* The signer's raw public keys (for a keyring that verifies its output). */
void px_sig_signer_public(const px_sig_signer_t *s, uint8_t *ecdsa_pub,
                          uint8_t *mldsa_pub);
void px_sig_signer_free(px_sig_signer_t *s);
/* Raw signatures over msg (exposed for tests and vectors). */
int px_sig_signer_sign(px_sig_signer_t *s, const uint8_t *msg, size_t len,
                       uint8_t *ecdsa, uint8_t *mldsa);
/* Verification with ring key idx (from px_sig_keyring_find), reusing this
 * thread's imported copy of the key; same results as px_sig_verify_raw. */
px_sig_result_t px_sig_keyring_verify(const px_sig_keyring_t *ring, int idx, const uint8_t *msg,
                                      size_t len, const uint8_t *ecdsa, const uint8_t *mldsa);
/* Raw verification: PX_SIG_OK, PX_SIG_ECDSA, PX_SIG_MLDSA or PX_SIG_INTERNAL.
 * mldsa may be NULL (classical only: only ECDSA is checked). */
px_sig_result_t px_sig_verify_raw(const uint8_t *ecdsa_pub,
                                  const uint8_t *mldsa_pub,
                                  const uint8_t *msg, size_t len,
                                  const uint8_t *ecdsa,
                                  const uint8_t *mldsa);

/* Generates a hybrid key pair as PEM: PKCS#8 private keys (ML-DSA in the
 * RFC 9881 seed form) and SPKI public keys. Strings are malloc'd. */
typedef struct {
    char *ecdsa_key, *ecdsa_pub, *mldsa_key, *mldsa_pub;
} px_sig_keypair_pem_t;
int px_sig_keygen(px_sig_keypair_pem_t *out, char *err, size_t errlen);
void px_sig_keypair_pem_free(px_sig_keypair_pem_t *k);

/* --- verification -------------------------------------------------------------- */

typedef struct {
    _Atomic uint64_t result[PX_SIG__COUNT];  /* per outcome */
    _Atomic uint64_t classical;              /* accepted without ML-DSA (allow_classical) */
} px_sig_stats_t;

typedef struct {
    int64_t max_skew_s;            /* default 30 */
    int64_t max_validity_s;        /* default 300 */
    int allow_classical;           /* accept alg="ecdsa-p384-sha384" (counted) */
    const char *const *required_headers;  /* lowercase field names also required */
    int required_count;
    px_sig_stats_t *stats;         /* optional */
} px_sig_policy_t;

void px_sig_policy_default(px_sig_policy_t *p);

/* What a verification found out (also on failure, as far as it got). */
typedef struct {
    char detail[200];              /* human reason on failure */
    char keyid[PX_SIG_MAX_NAME + 1];
    char nonce[PX_SIG_MAX_NAME + 1];
    int64_t created, expires;
    int classical;                 /* accepted without ML-DSA */
    int digest_algs;               /* PX_DIGEST_* to hash the body with */
    const char *content_digest;    /* the covered Content-Digest value (into the message) */
    size_t content_digest_len;
    const char *sig_field;         /* "x-signature" or "signature": for the response's ;req */
    const char *sig_value;         /* that field's value (into the message) */
    size_t sig_value_len;
    /* Set by sig/sigflow.c: the nonce is recorded for this request (in the
     * local cache, and in the shared store under store_token when that is
     * not "") until px_sig_nonce_release gives it back. */
    int nonce_held;
    char store_token[33];
} px_sig_info_t;

/* Verifies a request's signature (docs/signatures.md section 7, steps
 * 1-9): both signatures, the window, then the nonce (recorded in `replay`
 * when everything passed; replay may be NULL to skip that step). The body
 * is checked afterwards: hash it with info->digest_algs and call
 * px_content_digest_check(info->content_digest, ...). */
px_sig_result_t px_sig_verify_request(const px_sig_keyring_t *ring, px_replay_t *replay,
                                      const px_sig_policy_t *pol, const px_sig_msg_t *req,
                                      int64_t now, px_sig_info_t *info);

/* Verifies a signed response (client side): signature fields in the head
 * or, for streamed responses, in msg->trailers; keyid must be expected_keyid
 * (NULL: any in ring); when msg->req is given and carried a signature, the
 * ";req" binding to it is required. The body is checked afterwards as for
 * requests. */
px_sig_result_t px_sig_verify_response(const px_sig_keyring_t *ring, const px_sig_policy_t *pol,
                                       const px_sig_msg_t *resp, const char *expected_keyid,
                                       int64_t now, px_sig_info_t *info);

/* --- signing ------------------------------------------------------------------- */

/* Appends the X-Signature value for a request to out. req must hold the
 * Content-Digest header already (px_content_digest). Covered: "@method"
 * "@authority" "@path" "@query" "content-digest" and the extra lowercase
 * field names. ttl_s: expires = now + ttl_s. nonce NULL: a fresh random one. */
int px_sig_sign_request(px_sig_signer_t *s, const px_sig_msg_t *req,
                        const char *const *extra, int extra_count, int64_t now, int64_t ttl_s,
                        const char *nonce, px_buf_t *out);

/* Signing a response while its body streams through. req_field/req_value:
 * the request's signature field ("x-signature" or "signature") and value
 * (NULL: the request was unsigned). in_trailer: Content-Digest and
 * X-Signature go into the trailer section ("content-digest";tr). */
typedef struct px_sig_response px_sig_response_t;
px_sig_response_t *px_sig_response_begin(px_sig_signer_t *s, int status, const char *req_field,
                                         const char *req_value, size_t req_value_len,
                                         int in_trailer);
/* Also covers a field the response head carries (lowercase name, value
 * exactly as sent), e.g. pqproxy-model-manifest; at most
 * PX_SIG_MAX_RESPONSE_FIELDS. 0 or PX_EINVAL. */
#define PX_SIG_MAX_RESPONSE_FIELDS 2
int px_sig_response_cover(px_sig_response_t *r, const char *name, const char *value);
void px_sig_response_update(px_sig_response_t *r, const void *data, size_t len);
/* Appends the Content-Digest value to digest_out and the X-Signature value
 * to sig_out (both without the field name). */
int px_sig_response_finish(px_sig_response_t *r, int64_t now, int64_t ttl_s,
                           px_buf_t *digest_out, px_buf_t *sig_out);
void px_sig_response_free(px_sig_response_t *r);

/* The signature base for a message and a signature field value (X-Signature
 * syntax): for tests, vectors and debugging. Appends to out. */
px_sig_result_t px_sig_base_for(const px_sig_msg_t *msg, const char *xsig, size_t len,
                                 px_buf_t *out, char *detail, size_t detail_len);

/* CLI: `pqproxy keygen|sign|verify`; argv[0] is the command name. */
int px_cmd_keygen(int argc, char **argv);
int px_cmd_sign(int argc, char **argv);
int px_cmd_verify(int argc, char **argv);

#endif
