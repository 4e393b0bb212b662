/* The wire side of request signatures: a strict, bounded RFC 8941
 * (Structured Field Values) parser for the subset we use, strict base64,
 * the signature field (X-Signature, or Signature-Input + Signature) and the
 * RFC 9421 signature base. Internal to sig*.c, exposed for the tests. */
#ifndef PX_SIGWIRE_H
#define PX_SIGWIRE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "sig/sig.h"

#define SF_MAX_MEMBERS 4
#define SF_MAX_INNER PX_SIG_MAX_COMPONENTS
#define SF_MAX_ITEM_PARAMS 2
#define SF_MAX_PARAMS 8

typedef enum { SF_INT, SF_STR, SF_TOKEN, SF_BYTES, SF_BOOL } sf_type_t;

/* A bare item. Strings, tokens and byte sequences point into the input:
 * for a string, the characters between the quotes (escapes not removed;
 * esc says whether there were any), for bytes the base64 text. */
typedef struct {
    sf_type_t type;
    int64_t i;            /* SF_INT, SF_BOOL */
    const char *s;
    size_t len;
    int esc;
} sf_bare_t;

typedef struct {
    const char *name;
    size_t name_len;
    sf_bare_t v;
} sf_param_t;

typedef struct {
    sf_bare_t v;
    sf_param_t params[SF_MAX_ITEM_PARAMS];
    int nparams;
} sf_item_t;

typedef struct {
    const char *key;
    size_t key_len;
    int is_inner;
    sf_item_t item;                    /* !is_inner */
    sf_item_t inner[SF_MAX_INNER];     /* is_inner */
    int ninner;
    sf_param_t params[SF_MAX_PARAMS];  /* of the item or of the inner list */
    int nparams;
} sf_member_t;

typedef struct {
    sf_member_t m[SF_MAX_MEMBERS];
    int n;
} sf_dict_t;

/* Parses an RFC 8941 Dictionary; duplicate keys or parameters, decimals and
 * anything over the limits fail. Returns 0 or -1 with a reason in err. */
int sf_parse_dict(const char *s, size_t len, sf_dict_t *d, char *err, size_t errlen);
const sf_member_t *sf_dict_get(const sf_dict_t *d, const char *key);

/* Strict RFC 4648 base64 (padded, canonical). Returns the decoded length,
 * or -1 (invalid, or more than cap bytes). */
long px_b64_decode(const char *in, size_t len, uint8_t *out, size_t cap);
/* Encodes (padded) into out, NUL-terminated; returns the length or -1. */
long px_b64_encode(const uint8_t *in, size_t len, char *out, size_t cap, int url);

/* A parsed signature field. */
typedef struct {
    const char *name;      /* component name, e.g. "@method", "content-digest" */
    size_t len;
    int req, tr;
} px_sig_comp_t;

typedef struct {
    const sf_member_t *mem;        /* the inner list with its parameters */
    px_sig_comp_t comp[PX_SIG_MAX_COMPONENTS];
    int ncomp;
    int64_t created, expires;
    const char *nonce, *keyid, *alg;
    size_t nonce_len, keyid_len, alg_len;
    int hybrid;
    uint8_t ecdsa[PX_SIG_ECDSA_LEN];
    uint8_t mldsa[PX_SIG_MLDSA_LEN];
    int have_mldsa;
    const char *field;             /* "x-signature" or "signature" (the signatures' field) */
    const char *value;             /* its value */
    size_t value_len;
    sf_dict_t d1, d2;              /* storage: X-Signature, or Signature-Input + Signature */
} px_sigfield_t;

/* Finds and parses the signature field(s) of msg (headers, or trailers if
 * from_trailers): PX_SIG_OK, PX_SIG_MISSING or PX_SIG_MALFORMED. Checks
 * syntax and section 2/3 rules that do not depend on the policy. */
px_sig_result_t px_sigfield_parse(const px_sig_msg_t *msg, int from_trailers, px_sigfield_t *f,
                                  char *detail, size_t dlen);
/* Parses one X-Signature value (no header lookup). */
px_sig_result_t px_sigfield_parse_value(const char *value, size_t len, px_sigfield_t *f,
                                        char *detail, size_t dlen);

/* Appends the signature base of msg for the parsed field to out. */
px_sig_result_t px_sig_base_build(const px_sig_msg_t *msg, const px_sigfield_t *f, px_buf_t *out,
                                  char *detail, size_t dlen);

/* Field value of name in hdrs (names compared case-insensitively): several
 * lines are joined with ", " into out (trimmed). Returns the number of
 * lines found (0: absent) or -1 on error (too big). */
int px_sig_field_value(const px_header_t *hdrs, int n, const char *name, size_t name_len,
                       px_buf_t *out);
/* The only line of name: 1 found (*v, *vlen trimmed), 0 absent, 2 several. */
int px_sig_field_single(const px_header_t *hdrs, int n, const char *name, const char **v,
                        size_t *vlen);

/* Validators of section 2. */
int px_sig_valid_keyid(const char *s, size_t len);
int px_sig_valid_nonce(const char *s, size_t len);

#endif
