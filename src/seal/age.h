/* The age file format (C2SP age v1, docs/sealing.md): keys in age's Bech32
 * encodings, the header (stanzas and HMAC), and the STREAM payload of 64 KiB
 * ChaCha20-Poly1305 chunks, sealed and opened in constant memory.
 * Recipient types: X25519 (age1...) and the hybrid post-quantum
 * mlkem768x25519 (age1pq1..., X-Wing through HPKE). */
#ifndef PX_AGE_H
#define PX_AGE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define PX_AGE_FILE_KEY    16
#define PX_AGE_X25519_LEN  32
#define PX_AGE_PQ_PUB_LEN  1216    /* ML-KEM-768 encapsulation key + X25519 */
#define PX_AGE_PQ_ENC_LEN  1120    /* ML-KEM-768 ciphertext + X25519 share */
#define PX_AGE_MAX_HEADER  65536   /* bytes; longer headers are refused */
#define PX_AGE_MAX_STANZAS 64
#define PX_AGE_MAX_ARGS    8
#define PX_AGE_CHUNK       65536
/* a Bech32 recipient or identity, NUL included (age1pq1 is 1,959 chars) */
#define PX_AGE_KEY_STR     2048

typedef enum { PX_AGE_X25519 = 1, PX_AGE_PQ = 2 } px_age_kind_t;

typedef struct {
    px_age_kind_t kind;
    uint8_t pub[PX_AGE_PQ_PUB_LEN];   /* the first 32 bytes for X25519 */
} px_age_recipient_t;

typedef struct {
    px_age_kind_t kind;
    uint8_t secret[32];   /* X25519 scalar, or the X-Wing seed */
} px_age_identity_t;

typedef struct {
    const char *type;
    const char *args[PX_AGE_MAX_ARGS];
    int nargs;
    const uint8_t *body;
    size_t body_len;
} px_age_stanza_t;

typedef struct {
    px_age_stanza_t st[PX_AGE_MAX_STANZAS];
    int n;
    size_t mac_off;     /* bytes the MAC covers: up to and including "---" */
    size_t len;         /* the whole header, through the MAC line's newline */
    uint8_t mac[32];
    char *store;        /* NUL-terminated type/args and decoded bodies */
} px_age_header_t;

/* Parses the header at the start of buf (len bytes, at most
 * PX_AGE_MAX_HEADER): version line, stanzas, MAC line; bytes after it are
 * not looked at. 0, or PX_EPARSE / PX_ETOOBIG / PX_ENOMEM with the reason
 * in err. Free with px_age_header_free either way. */
int px_age_header_parse(const uint8_t *buf, size_t len, px_age_header_t *h, char *err,
                        size_t errlen);
void px_age_header_free(px_age_header_t *h);

/* age1... / age1pq1... and AGE-SECRET-KEY-1... / AGE-SECRET-KEY-PQ-1... */
int px_age_parse_recipient(const char *s, px_age_recipient_t *r, char *err, size_t errlen);
int px_age_parse_identity(const char *s, px_age_identity_t *id, char *err, size_t errlen);
/* The recipient string of an identity (PX_AGE_KEY_STR bytes). */
int px_age_identity_recipient(const px_age_identity_t *id, char *out, char *err, size_t errlen);
/* A new identity of kind, and both strings (PX_AGE_KEY_STR bytes each). */
int px_age_keygen(px_age_kind_t kind, char *identity, char *recipient, char *err, size_t errlen);

/* STREAM's nonce for chunk `counter`: the 11-byte big-endian counter, then
 * 1 for the last chunk, else 0 (also for the seal benchmark's raw loop). */
void px_age_stream_nonce(uint8_t nonce[12], uint64_t counter, int last);

/* Encrypts in to out for the recipients; 0 or a PX_E* code with err set. */
int px_age_seal(FILE *in, FILE *out, const px_age_recipient_t *r, int n, char *err,
                size_t errlen);
/* Decrypts in to out with the first identity a stanza opens; every chunk is
 * authenticated before it is written, the final-chunk flag checked. 0 or a
 * PX_E* code with err set (out then holds a prefix to discard). */
int px_age_open(FILE *in, FILE *out, const px_age_identity_t *ids, int n, char *err,
                size_t errlen);

#endif
