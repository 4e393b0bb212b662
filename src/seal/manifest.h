/* Signed model manifests (docs/model-signing.md): the list of a model
 * directory's regular files with their sizes and SHA-256 or SHA-384
 * digests, as an in-toto Statement v1 with the OpenSSF model-signing
 * predicate (https://model_signing/signature/v1.0), in a DSSE envelope
 * signed with both an ECDSA P-384 and an ML-DSA-87 key. Both signatures
 * must verify.
 *
 * The parsers read untrusted bytes: strict JSON, exact member sets, clean
 * relative paths in byte order, and the limits below. */
#ifndef PX_MANIFEST_H
#define PX_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "sig/sig.h"

#define PX_MANIFEST_MAX_FILES  100000
#define PX_MANIFEST_MAX_PATH   1024      /* bytes of a relative path */
#define PX_MANIFEST_MAX_NAME   255       /* bytes of one path component, and of the model name */
#define PX_MANIFEST_MAX_SIZE   9007199254740991ull  /* 2^53 - 1: exact in every JSON reader */
#define PX_MANIFEST_MAX_DIGEST 48

#define PX_MANIFEST_PAYLOAD_TYPE "application/vnd.in-toto+json"
#define PX_MANIFEST_STATEMENT    "https://in-toto.io/Statement/v1"
#define PX_MANIFEST_PREDICATE    "https://model_signing/signature/v1.0"

typedef enum { PX_MD_SHA256 = 32, PX_MD_SHA384 = 48 } px_md_alg_t;

typedef struct {
    char *path;                       /* relative, '/'-separated, clean */
    uint64_t size;
    uint8_t digest[PX_MANIFEST_MAX_DIGEST];
} px_manifest_entry_t;

typedef struct {
    char *name;                       /* the model's name (the directory's) */
    px_md_alg_t alg;                  /* digest length in bytes tells which */
    px_manifest_entry_t *e;           /* in strictly increasing byte order of path */
    size_t n, cap;
} px_manifest_t;

const char *px_md_alg_name(px_md_alg_t alg);   /* "sha256" / "sha384" */

/* Whether a relative path may appear in a manifest: NULL, or why not. */
const char *px_manifest_path_problem(const char *path);

/* The in-toto statement (the DSSE payload) for m, appended to out. m's
 * entries must be sorted (px_manifest_sort). */
int px_manifest_statement(const px_manifest_t *m, px_buf_t *out);
/* Parses a statement into m (which it initialises); 0, or PX_EPARSE /
 * PX_ENOMEM with "what: member: reason" in err. Free m either way. */
int px_manifest_parse_statement(const char *json, size_t len, const char *what,
                                px_manifest_t *m, char *err, size_t errlen);

/* The DSSE envelope of m signed by s (appended to out). */
int px_manifest_sign(const px_manifest_t *m, px_sig_signer_t *s, px_buf_t *out, char *err,
                     size_t errlen);
/* The same for statement bytes as given (tests sign statements that
 * px_manifest_statement would never write). */
int px_manifest_sign_payload(const uint8_t *stmt, size_t len, px_sig_signer_t *s, px_buf_t *out,
                             char *err, size_t errlen);
/* Parses an envelope, checks that it carries exactly one ECDSA P-384 and
 * one ML-DSA-87 signature by the given raw public keys (keyids as
 * px_manifest_keyids gives them) and that both verify over the payload's
 * PAE, then parses the statement into m. 0 or PX_EPARSE / PX_ECRYPTO /
 * PX_ENOMEM with the reason in err (which signature, and why). */
int px_manifest_verify(const char *text, size_t len, const char *what, const uint8_t *ecdsa_pub,
                       const uint8_t *mldsa_pub, px_manifest_t *m, char *err, size_t errlen);
/* The keyids: lowercase hex SHA-256 of each key's SubjectPublicKeyInfo DER
 * (65 bytes each with the NUL). */
int px_manifest_keyids(const uint8_t *ecdsa_pub, const uint8_t *mldsa_pub, char *ecdsa_kid,
                       char *mldsa_kid);

void px_manifest_init(px_manifest_t *m, px_md_alg_t alg);
/* Appends an entry (path copied); digest is filled in later by the caller. */
px_manifest_entry_t *px_manifest_add(px_manifest_t *m, const char *path, uint64_t size);
void px_manifest_sort(px_manifest_t *m);
/* The entry for path, or NULL (m sorted). */
const px_manifest_entry_t *px_manifest_find(const px_manifest_t *m, const char *path);
void px_manifest_free(px_manifest_t *m);

/* Streaming digest of alg (wolfSSL SHA-256 / SHA-384), no allocation. */
typedef struct {
    px_md_alg_t alg;
    _Alignas(16) unsigned char st[320];
} px_md_t;
int px_md_init(px_md_t *h, px_md_alg_t alg);
void px_md_update(px_md_t *h, const void *p, size_t n);
void px_md_final(px_md_t *h, uint8_t *out);   /* alg bytes; frees the state */

/* The identifier of a released model: SHA-256 of the manifest file's bytes
 * exactly as stored (what `sha256sum MANIFEST` prints). 0, or a negative
 * PX_E* code with errno set. */
int px_manifest_file_digest(const char *path, uint8_t out[32]);

#endif
