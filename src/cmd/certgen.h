/* Development PKI: pqproxy makes its own CA and leaf certificates with
 * wolfSSL's certificate generation, so `make run` and the tests need no
 * files supplied.
 *
 * Formats produced:
 *   certificates  PEM "CERTIFICATE" (X.509 v3, DER inside)
 *   private keys  PEM "PRIVATE KEY" = unencrypted PKCS#8 PrivateKeyInfo
 *                 (RFC 5208/5958), readable by OpenSSL >= 3.5 and Node 24:
 *     ECDSA   AlgorithmIdentifier id-ecPublicKey + named curve, RFC 5915
 *             ECPrivateKey inside (with the public key)
 *     RSA     rsaEncryption + NULL, RFC 8017 RSAPrivateKey inside
 *     ML-DSA  id-ml-dsa-{44,65,87} (2.16.840.1.101.3.4.3.{17,18,19}), no
 *             parameters; privateKey is the RFC 9881 ML-DSA-PrivateKey
 *             "seed" choice, [0] IMPLICIT OCTET STRING (32 bytes): the form
 *             RFC 9881 recommends, read by OpenSSL 3.5, BoringSSL, wolfSSL
 *             and pyca/cryptography (which rejects the "both" form).
 *   ML-DSA certificates use the same OIDs as signatureAlgorithm and in the
 *   SubjectPublicKeyInfo (raw public key in the BIT STRING, RFC 9881).
 *
 * Functions return 0 or a negative PX_E* code; px_certgen_errmsg() then
 * says which step failed and, for wolfSSL failures, its error code. */
#ifndef PX_CERTGEN_H
#define PX_CERTGEN_H

#include <stddef.h>

typedef enum {
    PX_KEY_ECDSA_P256,
    PX_KEY_ECDSA_P384,
    PX_KEY_RSA2048,
    PX_KEY_MLDSA44,
    PX_KEY_MLDSA65,
    PX_KEY_MLDSA87
} px_keytype_t;

#define PX_KEYTYPE_COUNT 6

/* NUL-terminated PEM; cert_len/key_len exclude the NUL. */
typedef struct {
    char *cert_pem;
    size_t cert_len;
    char *key_pem;
    size_t key_len;
} px_pem_pair_t;

/* "ecdsa-p256", "ecdsa-p384", "rsa2048", "mldsa44", "mldsa65", "mldsa87";
 * case, '-' and '_' are ignored, so "ML-DSA-65" and "RSA-2048" work too. */
int px_keytype_parse(const char *name, px_keytype_t *out);
const char *px_keytype_name(px_keytype_t t);

/* Self-signed CA: basicConstraints CA:TRUE (critical), keyUsage
 * keyCertSign|cRLSign (critical), SKI and AKI. notBefore = now - 1h. */
int px_certgen_ca(px_keytype_t type, const char *cn, int days, px_pem_pair_t *out);

/* Leaf signed by ca (whose key may be of any type): SANs are DNS names or
 * IPv4/IPv6 literals (-> iPAddress), EKU serverAuth (clientAuth if
 * is_client), keyUsage digitalSignature (+keyEncipherment for RSA),
 * basicConstraints CA:FALSE, AKI/SKI, random 16-byte serial,
 * notBefore = now - 1h. The result is checked against the CA before it is
 * returned (a CA key that does not match its certificate is an error). */
int px_certgen_leaf(px_keytype_t type, const px_pem_pair_t *ca, const char *cn,
                    const char *const *sans, int nsans, int days, int is_client,
                    px_pem_pair_t *out);

void px_pem_pair_free(px_pem_pair_t *p);

/* What the last failing px_certgen_* call on this thread was doing. */
const char *px_certgen_errmsg(void);

/* Writes data to path atomically (temp file in the same directory, fsync,
 * rename) with the given mode. Without force an existing path is left alone
 * and -EEXIST is returned; other failures return PX_EIO with errno set. */
int px_pem_write_file(const char *path, const char *data, size_t len, int mode, int force);

/* mkdir -p: creates DIR and its missing parents (mode 0755); 0 or -1 with errno. */
int px_make_dirs(const char *dir);

/* `pqproxy certgen --out DIR [--san NAME]... [--days N] [--force]`;
 * argv[0] == "certgen". Exit status 0, 1 (failure) or 2 (usage). */
int px_cmd_certgen(int argc, char **argv);

#endif
