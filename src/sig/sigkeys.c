/* Keys for request signatures: SPKI / PKCS#8 loading (PEM or DER) for
 * ECDSA P-384 and ML-DSA-87, the keyring, the signer, raw sign/verify and
 * key generation (docs/signatures.md sections 5 and 6). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/sha512.h>
#include <wolfssl/wolfcrypt/wc_mldsa.h>

#include "cmd/certgen_der.h"
#include "sig/sig.h"
#include "sig/sigwire.h"

#define MAX_KEY_FILE 65536
#define MAX_KEYS 4096
#define EC_COORD 48

_Static_assert(PX_SIG_MLDSA_LEN == WC_MLDSA_87_SIG_SIZE, "ML-DSA-87 signature size");
_Static_assert(PX_SIG_MLDSA_PUB_LEN == WC_MLDSA_87_PUB_KEY_SIZE, "ML-DSA-87 key size");

#define kfail(...) px_errorf(PX_EINVAL, __VA_ARGS__)

/* --- PEM / DER ------------------------------------------------------------------ */

static const uint8_t OID_EC[] = { 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01 };
static const uint8_t OID_P384[] = { 0x2b, 0x81, 0x04, 0x00, 0x22 };
static const uint8_t OID_P256[] = { 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
static const uint8_t OID_P521[] = { 0x2b, 0x81, 0x04, 0x00, 0x23 };
static const uint8_t OID_MLDSA_PREFIX[] = { 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03 };

/* PEM with one of the labels (NULL-terminated list) -> DER in a malloc'd
 * buffer; not PEM -> a copy. *label_out: which label (or -1 for DER). */
static int pem_or_der(const uint8_t *data, size_t len, const char *const *labels, uint8_t **der,
                      size_t *der_len, int *label_out, const char *what, char *err, size_t errlen)
{
    const char *s = (const char *)data, *b = memmem(s, len, "-----BEGIN ", 11);
    char *clean;
    size_t n = 0;

    *label_out = -1;
    if (!b) {
        if (!(*der = malloc(len ? len : 1)))
            return PX_ENOMEM;
        memcpy(*der, data, len);
        *der_len = len;
        return 0;
    }
    const char *lab = b + 11, *lend = memmem(lab, len - (size_t)(lab - s), "-----", 5);
    if (!lend)
        return kfail(err, errlen, "%s: malformed PEM header", what);
    for (int i = 0; labels[i]; i++)
        if ((size_t)(lend - lab) == strlen(labels[i]) && !memcmp(lab, labels[i], strlen(labels[i])))
            *label_out = i;
    if (*label_out < 0)
        return kfail(err, errlen, "%s: PEM '%.*s' is not %s%s", what, (int)(lend - lab), lab,
                     labels[0], labels[1] ? " (or a variant)" : "");
    const char *body = lend + 5, *end = memmem(body, len - (size_t)(body - s), "-----END ", 9);
    if (!end)
        return kfail(err, errlen, "%s: PEM without an END line", what);
    if (!(clean = malloc((size_t)(end - body) + 1)))
        return PX_ENOMEM;
    for (const char *p = body; p < end; p++)
        if (*p != '\n' && *p != '\r' && *p != ' ' && *p != '\t')
            clean[n++] = *p;
    if (!(*der = malloc(n / 4 * 3 + 1))) {
        free(clean);
        return PX_ENOMEM;
    }
    long dl = px_b64_decode(clean, n, *der, n / 4 * 3 + 1);
    free(clean);
    if (dl <= 0) {
        free(*der);
        *der = NULL;
        return kfail(err, errlen, "%s: PEM body is not valid base64", what);
    }
    *der_len = (size_t)dl;
    return 0;
}

/* Reads element (tag, value) at *p; advances *p past it. */
static int der_next(const uint8_t **p, const uint8_t *end, uint8_t want, const uint8_t **val,
                    size_t *vlen)
{
    uint8_t tag;
    size_t hdr, l;
    if (*p >= end || px_der_get_hdr(*p, (size_t)(end - *p), &tag, &hdr, &l) || tag != want)
        return -1;
    *val = *p + hdr;
    *vlen = l;
    *p += hdr + l;
    return 0;
}

static int oid_is(const uint8_t *o, size_t ol, const uint8_t *want, size_t wl)
{
    return ol == wl && !memcmp(o, want, wl);
}

static const char *curve_name(const uint8_t *o, size_t ol)
{
    return oid_is(o, ol, OID_P256, sizeof OID_P256) ? "P-256" :
           oid_is(o, ol, OID_P521, sizeof OID_P521) ? "P-521" :
           oid_is(o, ol, OID_P384, sizeof OID_P384) ? "P-384" : "an unsupported curve";
}

/* ML-DSA level from its OID (44, 65, 87) or 0. */
static int mldsa_level(const uint8_t *o, size_t ol)
{
    if (ol != sizeof OID_MLDSA_PREFIX + 1 || memcmp(o, OID_MLDSA_PREFIX, sizeof OID_MLDSA_PREFIX))
        return 0;
    switch (o[ol - 1]) {
    case 0x11: return 44;
    case 0x12: return 65;
    case 0x13: return 87;
    default: return 0;
    }
}

enum { ALG_EC = 1, ALG_MLDSA = 2 };

/* Checks an AlgorithmIdentifier against the expected algorithm. */
static int check_alg(const uint8_t *a, size_t al, int want, const char *what, char *err,
                     size_t errlen)
{
    const uint8_t *p = a, *end = a + al, *oid, *par;
    size_t ol, pl;
    int lvl;

    if (der_next(&p, end, 0x06, &oid, &ol))
        return kfail(err, errlen, "%s: malformed AlgorithmIdentifier", what);
    lvl = mldsa_level(oid, ol);
    if (oid_is(oid, ol, OID_EC, sizeof OID_EC)) {
        if (want != ALG_EC)
            return kfail(err, errlen, "%s: is an EC key, expected ML-DSA-87", what);
        if (p == end)
            return 0; /* curve given in the ECPrivateKey: checked after decoding */
        if (der_next(&p, end, 0x06, &par, &pl))
            return kfail(err, errlen, "%s: EC key without a named curve", what);
        if (!oid_is(par, pl, OID_P384, sizeof OID_P384))
            return kfail(err, errlen, "%s: EC key on %s, expected P-384 (secp384r1)", what,
                         curve_name(par, pl));
        return 0;
    }
    if (lvl) {
        if (want != ALG_MLDSA)
            return kfail(err, errlen, "%s: is an ML-DSA-%d key, expected ECDSA P-384", what, lvl);
        if (lvl != 87)
            return kfail(err, errlen, "%s: is an ML-DSA-%d key, expected ML-DSA-87", what, lvl);
        if (p != end)
            return kfail(err, errlen, "%s: ML-DSA AlgorithmIdentifier with parameters", what);
        return 0;
    }
    return kfail(err, errlen, "%s: not an %s key", what,
                 want == ALG_EC ? "ECDSA P-384" : "ML-DSA-87");
}

/* SPKI -> the raw key bits. */
static int spki_parse(const uint8_t *der, size_t len, int want, const uint8_t **key,
                      size_t *klen, const char *what, char *err, size_t errlen)
{
    const uint8_t *p = der, *end = der + len, *seq, *alg, *bits;
    size_t sl, al, bl;
    int r;

    if (der_next(&p, end, 0x30, &seq, &sl) || p != end)
        return kfail(err, errlen, "%s: not a DER or PEM SubjectPublicKeyInfo", what);
    p = seq;
    end = seq + sl;
    if (der_next(&p, end, 0x30, &alg, &al) || der_next(&p, end, 0x03, &bits, &bl) || p != end ||
        bl < 1 || bits[0] != 0)
        return kfail(err, errlen, "%s: malformed SubjectPublicKeyInfo", what);
    if ((r = check_alg(alg, al, want, what, err, errlen)) != 0)
        return r;
    *key = bits + 1;
    *klen = bl - 1;
    return 0;
}

static const char *const PUB_LABELS[] = { "PUBLIC KEY", NULL };

static int load_pub(const uint8_t *data, size_t len, int want, const char *what, uint8_t *out,
                    size_t out_len, char *err, size_t errlen)
{
    uint8_t *der = NULL;
    const uint8_t *key = NULL;
    size_t der_len, klen = 0;
    int lab, r;

    if ((r = pem_or_der(data, len, PUB_LABELS, &der, &der_len, &lab, what, err, errlen)) != 0)
        return r;
    r = spki_parse(der, der_len, want, &key, &klen, what, err, errlen);
    if (r == 0 && klen != out_len)
        r = kfail(err, errlen, "%s: public key is %zu bytes, expected %zu%s", what, klen, out_len,
                  want == ALG_EC ? " (uncompressed point)" : "");
    if (r == 0)
        memcpy(out, key, out_len);
    free(der);
    return r;
}

int px_sig_load_ecdsa_pub(const uint8_t *data, size_t len, const char *what,
                          uint8_t *out, char *err, size_t errlen)
{
    ecc_key *k;
    int r = load_pub(data, len, ALG_EC, what, out, PX_SIG_ECDSA_PUB_LEN, err, errlen);

    if (r)
        return r;
    if (!(k = malloc(sizeof *k)) || wc_ecc_init(k) != 0) {
        free(k);
        return PX_ENOMEM;
    }
    if (out[0] != 0x04 ||
        wc_ecc_import_x963_ex(out, PX_SIG_ECDSA_PUB_LEN, k, ECC_SECP384R1) != 0 ||
        wc_ecc_check_key(k) != 0)
        r = kfail(err, errlen, "%s: not a valid P-384 public point", what);
    wc_ecc_free(k);
    free(k);
    return r;
}

int px_sig_load_mldsa_pub(const uint8_t *data, size_t len, const char *what,
                          uint8_t *out, char *err, size_t errlen)
{
    return load_pub(data, len, ALG_MLDSA, what, out, PX_SIG_MLDSA_PUB_LEN, err, errlen);
}

static int read_file(const char *path, uint8_t **out, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    uint8_t *buf;
    size_t n = 0;

    if (fd < 0)
        return kfail(err, errlen, "%s: %s", path, strerror(errno)), PX_EIO;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > MAX_KEY_FILE) {
        close(fd);
        return kfail(err, errlen, "%s: not a regular file of at most %d bytes", path,
                     MAX_KEY_FILE), PX_EIO;
    }
    if (!(buf = malloc((size_t)st.st_size + 1))) {
        close(fd);
        return PX_ENOMEM;
    }
    while (n < (size_t)st.st_size) {
        ssize_t k = read(fd, buf + n, (size_t)st.st_size - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    close(fd);
    *out = buf;
    *len = n;
    return 0;
}

/* --- keyring -------------------------------------------------------------------------- */

typedef struct {
    char keyid[PX_SIG_MAX_NAME + 1];
    uint64_t serial;      /* unique in the process: names the key in the verify caches */
    uint8_t ec[PX_SIG_ECDSA_PUB_LEN];
    uint8_t ml[PX_SIG_MLDSA_PUB_LEN];
} ringkey_t;

static atomic_uint_fast64_t next_serial = 1;

struct px_sig_keyring {
    ringkey_t *keys;      /* sorted by keyid */
    int n, cap;
};

px_sig_keyring_t *px_sig_keyring_new(void)
{
    return calloc(1, sizeof(px_sig_keyring_t));
}

void px_sig_keyring_free(px_sig_keyring_t *r)
{
    if (r) {
        free(r->keys);
        free(r);
    }
}

int px_sig_keyring_count(const px_sig_keyring_t *r)
{
    return r ? r->n : 0;
}

/* Index of keyid, or -(insertion point) - 1. */
static int ring_search(const px_sig_keyring_t *r, const char *id, size_t len)
{
    int lo = 0, hi = r->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        size_t ml = strlen(r->keys[mid].keyid);
        int c = memcmp(r->keys[mid].keyid, id, ml < len ? ml : len);
        if (c == 0)
            c = ml < len ? -1 : ml > len ? 1 : 0;
        if (c == 0)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -lo - 1;
}

int px_sig_keyring_find(const px_sig_keyring_t *r, const char *keyid, size_t len,
                        const uint8_t **ec, const uint8_t **ml)
{
    int i = r ? ring_search(r, keyid, len) : -1;
    if (i < 0)
        return -1;
    *ec = r->keys[i].ec;
    *ml = r->keys[i].ml;
    return i;
}

int px_sig_keyring_add(px_sig_keyring_t *r, const char *keyid, const uint8_t *ec,
                       const uint8_t *ml, char *err, size_t errlen)
{
    size_t len = keyid ? strlen(keyid) : 0;
    int i;

    if (!r || !px_sig_valid_keyid(keyid, len))
        return kfail(err, errlen, "invalid keyid '%s'", keyid ? keyid : "");
    if ((i = ring_search(r, keyid, len)) >= 0)
        return kfail(err, errlen, "keyid '%s' given twice", keyid);
    if (r->n >= MAX_KEYS)
        return kfail(err, errlen, "more than %d keys", MAX_KEYS);
    if (r->n == r->cap) {
        int nc = r->cap ? r->cap * 2 : 8;
        ringkey_t *nk = realloc(r->keys, (size_t)nc * sizeof *nk);
        if (!nk)
            return PX_ENOMEM;
        r->keys = nk;
        r->cap = nc;
    }
    i = -i - 1;
    memmove(&r->keys[i + 1], &r->keys[i], (size_t)(r->n - i) * sizeof *r->keys);
    memcpy(r->keys[i].keyid, keyid, len + 1);
    r->keys[i].serial = atomic_fetch_add(&next_serial, 1);
    memcpy(r->keys[i].ec, ec, PX_SIG_ECDSA_PUB_LEN);
    memcpy(r->keys[i].ml, ml, PX_SIG_MLDSA_PUB_LEN);
    r->n++;
    return 0;
}

static int load_pub_file(const char *path, int want, uint8_t *out, char *err, size_t errlen)
{
    uint8_t *data;
    size_t len;
    int r = read_file(path, &data, &len, err, errlen);
    if (r)
        return r;
    r = want == ALG_EC ? px_sig_load_ecdsa_pub(data, len, path, out, err, errlen)
                       : px_sig_load_mldsa_pub(data, len, path, out, err, errlen);
    free(data);
    return r;
}

int px_sig_keyring_add_files(px_sig_keyring_t *r, const char *keyid, const char *prefix,
                             char *err, size_t errlen)
{
    char path[4096];
    uint8_t ec[PX_SIG_ECDSA_PUB_LEN], *ml = malloc(PX_SIG_MLDSA_PUB_LEN);
    int ret;

    if (!ml)
        return PX_ENOMEM;
    snprintf(path, sizeof path, "%s.ecdsa.pub", prefix);
    if ((ret = load_pub_file(path, ALG_EC, ec, err, errlen)) == 0) {
        snprintf(path, sizeof path, "%s.mldsa.pub", prefix);
        if ((ret = load_pub_file(path, ALG_MLDSA, ml, err, errlen)) == 0)
            ret = px_sig_keyring_add(r, keyid, ec, ml, err, errlen);
    }
    free(ml);
    return ret;
}

static int has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a > b && !strcmp(s + a - b, suf);
}

px_sig_keyring_t *px_sig_keyring_load_dir(const char *dir, char *err, size_t errlen)
{
    px_sig_keyring_t *r = px_sig_keyring_new();
    DIR *d = opendir(dir);
    struct dirent *e;
    int bad = 0;

    if (!r || !d) {
        kfail(err, errlen, "%s: %s", dir, d ? "out of memory" : strerror(errno));
        goto fail;
    }
    while (!bad && (e = readdir(d))) {
        char keyid[PX_SIG_MAX_NAME + 1], prefix[4096], other[4096];
        const char *n = e->d_name;
        size_t kl;
        struct stat st;

        if (n[0] == '.')
            continue;
        if (has_suffix(n, ".mldsa.pub")) {
            /* checked together with its .ecdsa.pub */
            snprintf(other, sizeof other, "%s/%.*s.ecdsa.pub", dir, (int)(strlen(n) - 10), n);
            if (stat(other, &st) != 0) {
                kfail(err, errlen, "%s/%s: no matching %s", dir, n, other);
                bad = 1;
            }
            continue;
        }
        if (!has_suffix(n, ".ecdsa.pub")) {
            kfail(err, errlen, "%s/%s: unexpected file (keyring files are <keyid>.ecdsa.pub and "
                  "<keyid>.mldsa.pub)", dir, n);
            bad = 1;
            continue;
        }
        kl = strlen(n) - 10;
        if (kl > PX_SIG_MAX_NAME || !px_sig_valid_keyid(n, kl)) {
            kfail(err, errlen, "%s/%s: invalid keyid", dir, n);
            bad = 1;
            continue;
        }
        memcpy(keyid, n, kl);
        keyid[kl] = '\0';
        snprintf(prefix, sizeof prefix, "%s/%s", dir, keyid);
        if (px_sig_keyring_add_files(r, keyid, prefix, err, errlen) != 0)
            bad = 1;
    }
    if (bad)
        goto fail;
    closedir(d);
    return r;
fail:
    if (d)
        closedir(d);
    px_sig_keyring_free(r);
    return NULL;
}

/* --- raw signatures ---------------------------------------------------------------------- */

/* Both signatures over msg with imported keys (mldsa NULL: ECDSA only). */
static px_sig_result_t verify_keys(ecc_key *ek, wc_MlDsaKey *mk, const uint8_t *msg, size_t len,
                                   const uint8_t *ecdsa, const uint8_t *mldsa)
{
    uint8_t hash[WC_SHA384_DIGEST_SIZE], der[128];
    word32 der_len = sizeof der;
    int res = 0;

    if (wc_Sha384Hash(msg, (word32)len, hash) != 0)
        return PX_SIG_INTERNAL;
    /* r or s out of range, zero: no DER or no verification -> invalid */
    if (wc_ecc_rs_raw_to_sig(ecdsa, EC_COORD, ecdsa + EC_COORD, EC_COORD, der, &der_len) != 0 ||
        wc_ecc_verify_hash(der, der_len, hash, sizeof hash, &res, ek) != 0 || res != 1)
        return PX_SIG_ECDSA;
    if (!mldsa)
        return PX_SIG_OK;
    res = 0;
    if (wc_MlDsaKey_VerifyCtx(mk, mldsa, PX_SIG_MLDSA_LEN, NULL, 0, msg, (word32)len, &res) != 0 ||
        res != 1)
        return PX_SIG_MLDSA;
    return PX_SIG_OK;
}

px_sig_result_t px_sig_verify_raw(const uint8_t *ec_pub, const uint8_t *ml_pub,
                                  const uint8_t *msg, size_t len, const uint8_t *ecdsa,
                                  const uint8_t *mldsa)
{
    ecc_key *ek = malloc(sizeof *ek);
    wc_MlDsaKey *mk = malloc(sizeof *mk);
    px_sig_result_t ret = PX_SIG_INTERNAL;
    int have = 0;

    if (!ek || !mk || wc_ecc_init(ek) != 0)
        goto out;
    have |= 1;
    if (wc_MlDsaKey_Init(mk, NULL, INVALID_DEVID) != 0)
        goto out;
    have |= 2;
    if (wc_ecc_import_x963_ex(ec_pub, PX_SIG_ECDSA_PUB_LEN, ek, ECC_SECP384R1) != 0 ||
        (mldsa && (wc_MlDsaKey_SetParams(mk, WC_ML_DSA_87) != 0 ||
                   wc_MlDsaKey_ImportPubRaw(mk, ml_pub, PX_SIG_MLDSA_PUB_LEN) != 0)))
        goto out;
    ret = verify_keys(ek, mk, msg, len, ecdsa, mldsa);
out:
    if (have & 2)
        wc_MlDsaKey_Free(mk);
    if (have & 1)
        wc_ecc_free(ek);
    free(mk);
    free(ek);
    return ret;
}

/* --- keyring verification with imported keys -------------------------------------------- *
 *
 * Importing a key per verification costs allocations and, for ML-DSA, a
 * SHAKE256 over the 2,592-byte public key (tr). Each thread keeps the last
 * VCACHE keys it used, imported, named by their ring serial: wolfSSL's
 * verify writes to the key (its SHAKE state), so a key object is never
 * shared between threads, and a serial is never reused, so a reload that
 * drops or replaces a key can never hit a stale entry. */

/* The calling thread's zeroed block of size bytes under key (made on first
 * use, freed by the key's destructor when the thread exits), or NULL. */
static void *thread_slot(pthread_key_t key, size_t size)
{
    void *p = pthread_getspecific(key);
    if (p)
        return p;
    if (!(p = calloc(1, size)))
        return NULL;
    if (pthread_setspecific(key, p) != 0) {
        free(p);
        return NULL;
    }
    return p;
}

#define VCACHE 8

typedef struct {
    uint64_t serial, used;       /* serial 0: empty */
    ecc_key ec;
    wc_MlDsaKey ml;
} vkey_t;

typedef struct {
    vkey_t k[VCACHE];
    uint64_t clock;
} vcache_t;

static pthread_key_t vcache_key;
static pthread_once_t vcache_once = PTHREAD_ONCE_INIT;

static void vkey_clear(vkey_t *v)
{
    if (v->serial) {
        wc_ecc_free(&v->ec);
        wc_MlDsaKey_Free(&v->ml);
        v->serial = 0;
    }
}

static void vcache_free(void *p)
{
    vcache_t *c = p;
    for (int i = 0; i < VCACHE; i++)
        vkey_clear(&c->k[i]);
    free(c);
}

static void vcache_init(void)
{
    pthread_key_create(&vcache_key, vcache_free);
}

/* The calling thread's imported copy of ring key k, or NULL. */
static vkey_t *vcache_get(const ringkey_t *k)
{
    vcache_t *c;
    vkey_t *v = NULL;

    pthread_once(&vcache_once, vcache_init);
    if (!(c = thread_slot(vcache_key, sizeof *c)))
        return NULL;
    for (int i = 0; i < VCACHE; i++) {
        if (c->k[i].serial == k->serial) {
            c->k[i].used = ++c->clock;
            return &c->k[i];
        }
        if (!v || c->k[i].used < v->used)       /* least recently used (empty: 0) */
            v = &c->k[i];
    }
    vkey_clear(v);
    if (wc_ecc_init(&v->ec) != 0)
        return NULL;
    if (wc_MlDsaKey_Init(&v->ml, NULL, INVALID_DEVID) != 0) {
        wc_ecc_free(&v->ec);
        return NULL;
    }
    v->serial = k->serial;                      /* from here vkey_clear frees both */
    v->used = ++c->clock;
    if (wc_ecc_import_x963_ex(k->ec, PX_SIG_ECDSA_PUB_LEN, &v->ec, ECC_SECP384R1) != 0 ||
        wc_MlDsaKey_SetParams(&v->ml, WC_ML_DSA_87) != 0 ||
        wc_MlDsaKey_ImportPubRaw(&v->ml, k->ml, PX_SIG_MLDSA_PUB_LEN) != 0) {
        vkey_clear(v);
        return NULL;
    }
    return v;
}

px_sig_result_t px_sig_keyring_verify(const px_sig_keyring_t *r, int idx, const uint8_t *msg,
                                      size_t len, const uint8_t *ecdsa, const uint8_t *mldsa)
{
    vkey_t *v;

    if (!r || idx < 0 || idx >= r->n || !(v = vcache_get(&r->keys[idx])))
        return PX_SIG_INTERNAL;
    return verify_keys(&v->ec, &v->ml, msg, len, ecdsa, mldsa);
}

/* --- signer ---------------------------------------------------------------------------------- */

struct px_sig_signer {
    char keyid[PX_SIG_MAX_NAME + 1];
    pthread_mutex_t mu;
    WC_RNG rng;
    ecc_key ec;
    wc_MlDsaKey ml;
    uint8_t ec_pub[PX_SIG_ECDSA_PUB_LEN];
    uint8_t ml_pub[PX_SIG_MLDSA_PUB_LEN];
    int inited;   /* bit 0 rng, 1 ec, 2 ml, 3 mutex */
    uint64_t serial;               /* unique in the process: names the thread copies */
    uint8_t *ek, *mk;              /* the key files as loaded, for the thread copies */
    size_t el, ml_len;
};

static void wipe_free(uint8_t *p, size_t n)
{
    if (p) {
        explicit_bzero(p, n);
        free(p);
    }
}

void px_sig_signer_free(px_sig_signer_t *s)
{
    if (!s)
        return;
    if (s->inited & 1) wc_FreeRng(&s->rng);
    if (s->inited & 2) wc_ecc_free(&s->ec);
    if (s->inited & 4) wc_MlDsaKey_Free(&s->ml);
    if (s->inited & 8) pthread_mutex_destroy(&s->mu);
    wipe_free(s->ek, s->el);
    wipe_free(s->mk, s->ml_len);
    explicit_bzero(s, sizeof *s);
    free(s);
}

const char *px_sig_signer_keyid(const px_sig_signer_t *s) { return s->keyid; }

void px_sig_signer_public(const px_sig_signer_t *s, uint8_t *ec, uint8_t *ml)
{
    memcpy(ec, s->ec_pub, PX_SIG_ECDSA_PUB_LEN);
    memcpy(ml, s->ml_pub, PX_SIG_MLDSA_PUB_LEN);
}

static const char *const PRIV_LABELS[] = { "PRIVATE KEY", "EC PRIVATE KEY", NULL };

/* PKCS#8 -> checks the algorithm; *inner = the privateKey OCTET STRING. */
static int pkcs8_check(const uint8_t *der, size_t len, int want, const char *what, char *err,
                       size_t errlen)
{
    const uint8_t *p = der, *end = der + len, *seq, *ver, *alg;
    size_t sl, vl, al;

    if (der_next(&p, end, 0x30, &seq, &sl) || p != end)
        return kfail(err, errlen, "%s: not a DER or PEM private key", what);
    p = seq;
    end = seq + sl;
    if (der_next(&p, end, 0x02, &ver, &vl) || vl != 1 || ver[0] > 1)
        return kfail(err, errlen, "%s: not a PKCS#8 private key", what);
    if (p < end && *p == 0x04 && want == ALG_EC)
        return 1; /* SEC1 ECPrivateKey (version 1, then OCTET STRING) */
    if (der_next(&p, end, 0x30, &alg, &al))
        return kfail(err, errlen, "%s: not a PKCS#8 private key (encrypted keys are not "
                     "supported)", what);
    return check_alg(alg, al, want, what, err, errlen);
}

static int load_priv(px_sig_signer_t *s, const uint8_t *data, size_t len, int want,
                     const char *what, char *err, size_t errlen)
{
    uint8_t *der = NULL;
    size_t der_len;
    word32 idx = 0, pl = PX_SIG_ECDSA_PUB_LEN;
    int lab, r;

    if ((r = pem_or_der(data, len, PRIV_LABELS, &der, &der_len, &lab, what, err, errlen)) != 0)
        return r;
    if (lab == 1 && want != ALG_EC) {
        r = kfail(err, errlen, "%s: is an EC key, expected ML-DSA-87", what);
        goto out;
    }
    if ((r = pkcs8_check(der, der_len, want, what, err, errlen)) < 0)
        goto out;
    if (want == ALG_EC) {
        if (wc_EccPrivateKeyDecode(der, &idx, &s->ec, (word32)der_len) != 0) {
            r = kfail(err, errlen, "%s: cannot decode the EC private key", what);
            goto out;
        }
        if (wc_ecc_get_curve_id(s->ec.idx) != ECC_SECP384R1) {
            r = kfail(err, errlen, "%s: EC key is not on P-384", what);
            goto out;
        }
        if (s->ec.type == ECC_PRIVATEKEY_ONLY && wc_ecc_make_pub(&s->ec, NULL) != 0) {
            r = kfail(err, errlen, "%s: cannot derive the EC public key", what);
            goto out;
        }
        if (wc_ecc_export_x963(&s->ec, s->ec_pub, &pl) != 0 || pl != PX_SIG_ECDSA_PUB_LEN) {
            r = kfail(err, errlen, "%s: cannot export the EC public key", what);
            goto out;
        }
    } else {
        if (wc_MlDsaKey_PrivateKeyDecode(&s->ml, der, (word32)der_len, &idx) != 0) {
            r = kfail(err, errlen, "%s: cannot decode the ML-DSA-87 private key", what);
            goto out;
        }
        pl = PX_SIG_MLDSA_PUB_LEN;
        if (wc_MlDsaKey_ExportPubRaw(&s->ml, s->ml_pub, &pl) != 0 || pl != PX_SIG_MLDSA_PUB_LEN) {
            r = kfail(err, errlen, "%s: the ML-DSA-87 private key has no public key", what);
            goto out;
        }
    }
    r = 0;
out:
    if (der) {
        explicit_bzero(der, der_len);
        free(der);
    }
    return r;
}

/* keep: the signer also keeps the key bytes, to make its thread copies from
 * (a thread copy does not: no more copies of the keys than needed). */
static int signer_new(const char *keyid, const uint8_t *ek, size_t el, const uint8_t *mk, size_t ml,
                      int keep, px_sig_signer_t **out, char *err, size_t errlen)
{
    px_sig_signer_t *s;
    int r;

    *out = NULL;
    if (!keyid || !px_sig_valid_keyid(keyid, strlen(keyid)))
        return kfail(err, errlen, "invalid keyid '%s'", keyid ? keyid : "");
    if (!(s = calloc(1, sizeof *s)))
        return PX_ENOMEM;
    snprintf(s->keyid, sizeof s->keyid, "%s", keyid);
    if (wc_InitRng(&s->rng) == 0) s->inited |= 1;
    if (wc_ecc_init(&s->ec) == 0) s->inited |= 2;
    if (wc_MlDsaKey_Init(&s->ml, NULL, INVALID_DEVID) == 0) s->inited |= 4;
    if (pthread_mutex_init(&s->mu, NULL) == 0) s->inited |= 8;
    if (s->inited != 15 || wc_MlDsaKey_SetParams(&s->ml, WC_ML_DSA_87) != 0) {
        px_sig_signer_free(s);
        return kfail(err, errlen, "cannot initialise the signing keys"), PX_ECRYPTO;
    }
    if ((r = load_priv(s, ek, el, ALG_EC, "ECDSA key", err, errlen)) != 0 ||
        (r = load_priv(s, mk, ml, ALG_MLDSA, "ML-DSA key", err, errlen)) != 0) {
        px_sig_signer_free(s);
        return r;
    }
    s->serial = atomic_fetch_add(&next_serial, 1);
    if (keep) {
        if (!(s->ek = malloc(el)) || !(s->mk = malloc(ml))) {
            px_sig_signer_free(s);
            return kfail(err, errlen, "out of memory"), PX_ENOMEM;
        }
        memcpy(s->ek, ek, el);
        memcpy(s->mk, mk, ml);
        s->el = el;
        s->ml_len = ml;
    }
    *out = s;
    return 0;
}

int px_sig_signer_from_mem(const char *keyid, const uint8_t *ek, size_t el, const uint8_t *mk,
                           size_t ml, px_sig_signer_t **out, char *err, size_t errlen)
{
    return signer_new(keyid, ek, el, mk, ml, 1, out, err, errlen);
}

int px_sig_signer_load(const char *prefix, const char *keyid, px_sig_signer_t **out, char *err,
                       size_t errlen)
{
    char p1[4096], p2[4096];
    uint8_t *d1 = NULL, *d2 = NULL;
    size_t l1 = 0, l2 = 0;
    int r;

    *out = NULL;
    snprintf(p1, sizeof p1, "%s.ecdsa.key", prefix);
    snprintf(p2, sizeof p2, "%s.mldsa.key", prefix);
    if ((r = read_file(p1, &d1, &l1, err, errlen)) == 0 &&
        (r = read_file(p2, &d2, &l2, err, errlen)) == 0) {
        r = px_sig_signer_from_mem(keyid, d1, l1, d2, l2, out, err, errlen);
        if (r && err && errlen) {
            /* name the file rather than the role */
            char tmp[256];
            snprintf(tmp, sizeof tmp, "%s", err);
            if (!strncmp(tmp, "ECDSA key:", 10))
                snprintf(err, errlen, "%s:%s", p1, tmp + 10);
            else if (!strncmp(tmp, "ML-DSA key:", 11))
                snprintf(err, errlen, "%s:%s", p2, tmp + 11);
        }
    }
    if (d1) explicit_bzero(d1, l1);
    if (d2) explicit_bzero(d2, l2);
    free(d1);
    free(d2);
    return r;
}

/* --- signing with per-thread copies ------------------------------------------------------ *
 *
 * wolfSSL's sign writes to the key objects and the RNG, so one signer shared
 * by the crypto threads took a lock and the threads signed one at a time:
 * response signing did not scale with signatures.crypto_threads, and each
 * collision cost a futex wait and wake. Each thread now signs with its own
 * copy of the signer (keys imported again from the key files' bytes, its own
 * DRBG), made on its first signature and named by the signer's serial, which
 * is never reused: after a reload the next signature replaces the old copy.
 * A copy is wiped and freed when its thread exits. Where a copy cannot be
 * made, the shared signer is used under its lock. */

typedef struct {
    uint64_t serial;
    px_sig_signer_t *copy;
} scopy_t;

static pthread_key_t scopy_key;
static pthread_once_t scopy_once = PTHREAD_ONCE_INIT;

static void scopy_free(void *p)
{
    scopy_t *c = p;
    px_sig_signer_free(c->copy);
    free(c);
}

static void scopy_init(void)
{
    pthread_key_create(&scopy_key, scopy_free);
}

static px_sig_signer_t *signer_thread_copy(const px_sig_signer_t *s)
{
    scopy_t *c;
    char err[64];

    pthread_once(&scopy_once, scopy_init);
    if (!(c = thread_slot(scopy_key, sizeof *c)))
        return NULL;
    if (c->copy && c->serial == s->serial)
        return c->copy;
    px_sig_signer_free(c->copy);
    c->copy = NULL;
    if (signer_new(s->keyid, s->ek, s->el, s->mk, s->ml_len, 0, &c->copy, err, sizeof err) != 0)
        return NULL;
    c->serial = s->serial;
    return c->copy;
}

static int sign_with(px_sig_signer_t *s, const uint8_t hash[WC_SHA384_DIGEST_SIZE], const uint8_t *msg,
                     size_t len, uint8_t *ecdsa, uint8_t *mldsa)
{
    uint8_t der[128];
    word32 der_len = sizeof der, rl = EC_COORD, sl = EC_COORD, ml = PX_SIG_MLDSA_LEN;
    uint8_t r[EC_COORD], sv[EC_COORD];

    if (wc_ecc_sign_hash(hash, WC_SHA384_DIGEST_SIZE, der, &der_len, &s->rng, &s->ec) != 0 ||
        wc_ecc_sig_to_rs(der, der_len, r, &rl, sv, &sl) != 0 || rl > EC_COORD || sl > EC_COORD)
        return PX_ECRYPTO;
    memset(ecdsa, 0, PX_SIG_ECDSA_LEN);
    memcpy(ecdsa + EC_COORD - rl, r, rl);
    memcpy(ecdsa + 2 * EC_COORD - sl, sv, sl);
    if (mldsa && (wc_MlDsaKey_SignCtx(&s->ml, NULL, 0, mldsa, &ml, msg, (word32)len, &s->rng) != 0 ||
                  ml != PX_SIG_MLDSA_LEN))
        return PX_ECRYPTO;
    return 0;
}

int px_sig_signer_sign(px_sig_signer_t *s, const uint8_t *msg, size_t len, uint8_t *ecdsa,
                       uint8_t *mldsa)
{
    uint8_t hash[WC_SHA384_DIGEST_SIZE];
    px_sig_signer_t *t;
    int ret;

    if (wc_Sha384Hash(msg, (word32)len, hash) != 0)
        return PX_ECRYPTO;
    if ((t = signer_thread_copy(s)) != NULL)
        return sign_with(t, hash, msg, len, ecdsa, mldsa);
    pthread_mutex_lock(&s->mu);
    ret = sign_with(s, hash, msg, len, ecdsa, mldsa);
    pthread_mutex_unlock(&s->mu);
    return ret;
}

/* --- key generation ------------------------------------------------------------------------------ */

static int to_pem(const uint8_t *der, size_t len, const char *label, char **out)
{
    size_t b64 = (len + 2) / 3 * 4, cap = b64 + b64 / 64 + 2 * strlen(label) + 40;
    char *tmp = malloc(b64 + 1), *pem = malloc(cap);
    size_t o;

    if (!tmp || !pem || px_b64_encode(der, len, tmp, b64 + 1, 0) < 0) {
        free(tmp);
        free(pem);
        return PX_ENOMEM;
    }
    o = (size_t)snprintf(pem, cap, "-----BEGIN %s-----\n", label);
    for (size_t i = 0; i < b64; i += 64) {
        size_t n = b64 - i < 64 ? b64 - i : 64;
        memcpy(pem + o, tmp + i, n);
        o += n;
        pem[o++] = '\n';
    }
    snprintf(pem + o, cap - o, "-----END %s-----\n", label);
    explicit_bzero(tmp, b64);
    free(tmp);
    *out = pem;
    return 0;
}

/* SPKI or seed-form PKCS#8 for ML-DSA-87 (RFC 9881). */
static size_t mldsa_der(uint8_t *out, const uint8_t *data, size_t len, int priv)
{
    uint8_t oid[sizeof OID_MLDSA_PREFIX + 1], alg[16], body[8];
    size_t al, bl, o = 0, inner;

    memcpy(oid, OID_MLDSA_PREFIX, sizeof OID_MLDSA_PREFIX);
    oid[sizeof OID_MLDSA_PREFIX] = 0x13;
    al = px_der_put(alg + 2, 0x06, oid, sizeof oid);
    al += px_der_put_hdr(alg, 0x30, al);
    if (!priv) {
        bl = len + 1;
        inner = al + px_der_hdr_size(bl) + bl;
        o += px_der_put_hdr(out + o, 0x30, inner);
        memcpy(out + o, alg, al);
        o += al;
        o += px_der_put_hdr(out + o, 0x03, bl);
        out[o++] = 0;
        memcpy(out + o, data, len);
        return o + len;
    }
    bl = px_der_put(body, 0x02, "\0", 1);
    inner = bl + al + px_der_hdr_size(2 + len) + 2 + len;
    o += px_der_put_hdr(out + o, 0x30, inner);
    memcpy(out + o, body, bl);
    o += bl;
    memcpy(out + o, alg, al);
    o += al;
    o += px_der_put_hdr(out + o, 0x04, 2 + len);
    o += px_der_put(out + o, 0x80, data, len); /* seed [0] IMPLICIT OCTET STRING */
    return o;
}

void px_sig_keypair_pem_free(px_sig_keypair_pem_t *k)
{
    if (!k)
        return;
    if (k->ecdsa_key) explicit_bzero(k->ecdsa_key, strlen(k->ecdsa_key));
    if (k->mldsa_key) explicit_bzero(k->mldsa_key, strlen(k->mldsa_key));
    free(k->ecdsa_key);
    free(k->ecdsa_pub);
    free(k->mldsa_key);
    free(k->mldsa_pub);
    memset(k, 0, sizeof *k);
}

int px_sig_keygen(px_sig_keypair_pem_t *out, char *err, size_t errlen)
{
    WC_RNG rng;
    ecc_key *ek = malloc(sizeof *ek);
    wc_MlDsaKey *mk = malloc(sizeof *mk);
    uint8_t seed[32], *buf = malloc(8192), pub[PX_SIG_MLDSA_PUB_LEN];
    word32 len = 8192, pl = sizeof pub;
    int ret = PX_ECRYPTO, have = 0, n;

    memset(out, 0, sizeof *out);
    if (!ek || !mk || !buf) {
        ret = PX_ENOMEM;
        goto out;
    }
    if (wc_InitRng(&rng) != 0)
        goto out;
    have |= 1;
    if (wc_ecc_init(ek) != 0)
        goto out;
    have |= 2;
    if (wc_MlDsaKey_Init(mk, NULL, INVALID_DEVID) != 0)
        goto out;
    have |= 4;
    if (wc_ecc_make_key_ex(&rng, EC_COORD, ek, ECC_SECP384R1) != 0 ||
        (n = wc_EccKeyToPKCS8(ek, buf, &len)) <= 0 || to_pem(buf, (size_t)n, "PRIVATE KEY", &out->ecdsa_key) ||
        (n = wc_EccPublicKeyToDer(ek, buf, 8192, 1)) <= 0 ||
        to_pem(buf, (size_t)n, "PUBLIC KEY", &out->ecdsa_pub))
        goto out;
    if (wc_RNG_GenerateBlock(&rng, seed, sizeof seed) != 0 ||
        wc_MlDsaKey_SetParams(mk, WC_ML_DSA_87) != 0 || wc_MlDsaKey_MakeKeyFromSeed(mk, seed) != 0 ||
        wc_MlDsaKey_ExportPubRaw(mk, pub, &pl) != 0 || pl != sizeof pub)
        goto out;
    if (to_pem(buf, mldsa_der(buf, seed, sizeof seed, 1), "PRIVATE KEY", &out->mldsa_key) ||
        to_pem(buf, mldsa_der(buf, pub, sizeof pub, 0), "PUBLIC KEY", &out->mldsa_pub))
        goto out;
    ret = 0;
out:
    if (ret)
        kfail(err, errlen, "key generation failed");
    explicit_bzero(seed, sizeof seed);
    if (buf) explicit_bzero(buf, 8192);
    if (have & 1) wc_FreeRng(&rng);
    if (have & 2) wc_ecc_free(ek);
    if (have & 4) wc_MlDsaKey_Free(mk);
    free(ek);
    free(mk);
    free(buf);
    if (ret)
        px_sig_keypair_pem_free(out);
    return ret;
}
