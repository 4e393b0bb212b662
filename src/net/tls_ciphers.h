/* TLS cipher suites and signature schemes: IANA names <-> code points, what
 * the linked wolfSSL supports, and which of them pqproxy refuses and why.
 *
 * Configuration names suites and schemes the way RFC 8446 and the IANA
 * registries do ("TLS_AES_128_GCM_SHA256", "ecdsa_secp256r1_sha256");
 * wolfSSL has its own suite names ("TLS13-AES128-GCM-SHA256"), which only
 * this module knows. docs/config.md (tls.ciphers, tls.signature_algorithms)
 * states the rules. */
#ifndef PX_TLS_CIPHERS_H
#define PX_TLS_CIPHERS_H

#include <stddef.h>
#include <stdint.h>

/* --- cipher suites ------------------------------------------------------------ */

/* Code point of an IANA suite name (case-insensitive), 0 when unknown. */
uint16_t px_cipher_from_name(const char *name);
const char *px_cipher_name(uint16_t id);       /* NULL when unknown */
int px_cipher_is_tls13(uint16_t id);
/* Why pqproxy never offers this suite ("CBC ...", "SHA-1 ..."), NULL when
 * it may be configured. */
const char *px_cipher_refusal(uint16_t id);
/* 1 when the linked wolfSSL can negotiate it (its own suite table). */
int px_cipher_supported(uint16_t id);
/* The default list: the TLS 1.3 suites, then (tls12) the ECDHE AEAD ones;
 * only those the build supports. Returns the count. */
int px_cipher_defaults(int tls12, uint16_t *out, int max);
/* "A, B, ..." of the suites that may be configured (TLS 1.2 ones only when
 * tls12), for error messages. */
void px_cipher_usable_names(int tls12, char *buf, size_t len);
/* The list in wolfSSL_CTX_set_cipher_list's syntax (wolfSSL names joined
 * by ':'). 0, or -1 when buf is too small or an id is unknown. */
int px_cipher_wolf_list(const uint16_t *ids, int n, char *buf, size_t len);

/* --- signature schemes (RFC 8446 4.2.3) --------------------------------------- */

#define PX_SIG_ECDSA_P256 0x0403
#define PX_SIG_ECDSA_P384 0x0503
#define PX_SIG_ECDSA_P521 0x0603
#define PX_SIG_RSA_PKCS1_256 0x0401
#define PX_SIG_RSA_PKCS1_384 0x0501
#define PX_SIG_RSA_PKCS1_512 0x0601
#define PX_SIG_RSA_PSS_RSAE_256 0x0804
#define PX_SIG_RSA_PSS_RSAE_384 0x0805
#define PX_SIG_RSA_PSS_RSAE_512 0x0806
#define PX_SIG_ED25519 0x0807
#define PX_SIG_MLDSA44 0x0904
#define PX_SIG_MLDSA65 0x0905
#define PX_SIG_MLDSA87 0x0906

uint16_t px_sigalg_from_name(const char *name);
const char *px_sigalg_name(uint16_t id);
/* Why this scheme cannot be configured (SHA-1, a key type this build or
 * pqproxy does not handle), NULL when it can. */
const char *px_sigalg_refusal(uint16_t id);
/* All configurable schemes except RSA PKCS#1 v1.5. Returns the count. */
int px_sigalg_defaults(uint16_t *out, int max);
void px_sigalg_usable_names(char *buf, size_t len);

/* Whether a key of this kind signs with scheme s: ECDSA schemes are bound
 * to their curve, RSA keys sign with any rsa_pss_rsae_* scheme and (TLS 1.2
 * only) rsa_pkcs1_*. key: the key's TLS 1.3 scheme (rsa_pss_rsae_sha256 for any RSA key). */
int px_sigalg_fits_key(uint16_t key, uint16_t s, int tls13);
/* 1 when some scheme of the allowed list fits the key. */
int px_sigalg_key_allowed(const uint16_t *allowed, int n, uint16_t key, int tls13);

/* The client certificate check (mTLS): a certificate (DER) is accepted only
 * when the scheme of its signature is in `allowed` and, for the leaf
 * (depth 0), its key can sign with an allowed scheme (in TLS 1.3 when
 * tls13, which rules out rsa_pkcs1_* for RSA keys). 0, or -1 with the
 * reason in why. */
int px_sigalg_check_peer_cert(const uint16_t *allowed, int n, const unsigned char *der,
                              int der_len, int depth, int tls13, char *why, size_t why_len);

#endif
