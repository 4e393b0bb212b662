/* `pqproxy bench crypto` (see bench.h). */
#include "cmd/bench.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/version.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/curve25519.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/ed25519.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/rsa.h>
#include <wolfssl/wolfcrypt/sha256.h>
#include <wolfssl/wolfcrypt/sha512.h>
#include <wolfssl/wolfcrypt/wc_mldsa.h>
#include <wolfssl/wolfcrypt/wc_mlkem.h>

#include "cmd/bench_seal.h"
#include "cmd/certgen.h"
#include "cmd/cli.h"
#include "config/config.h"
#include "core/errors.h"
#include "net/tls.h"

#define GROUP_X25519 29
#define GROUP_X25519MLKEM768 0x11EC

/* --- the article's figures (the claims these measurements answer) ------------ */

#define NO_ARTICLE (-1.0)

/* --- timing -------------------------------------------------------------------- */

static double now_ns(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* A timed span: wall and thread CPU time. Reading CLOCK_THREAD_CPUTIME_ID is
 * a system call (about 0.5 us on a VM), and part of the two reads that bound
 * a span lands inside it; what an empty span reads is measured once and
 * taken off every span, so that an operation timed in four pieces (the
 * server's side of a handshake) is not charged four clock reads against one
 * for each primitive it is compared with. */
typedef struct {
    double t, c;
} span_t;

static double span_cost_wall, span_cost_cpu;

static void span_begin(span_t *s)
{
    s->t = now_ns(CLOCK_MONOTONIC);
    s->c = now_ns(CLOCK_THREAD_CPUTIME_ID);
}

/* Adds the span's wall and CPU time (never below 0) to *wall and *cpu. */
static void span_end(const span_t *s, double *wall, double *cpu)
{
    double t = now_ns(CLOCK_MONOTONIC) - s->t - span_cost_wall;
    double c = now_ns(CLOCK_THREAD_CPUTIME_ID) - s->c - span_cost_cpu;
    *wall += t > 0 ? t : 0;
    *cpu += c > 0 ? c : 0;
}

static int cmp_double(const void *a, const void *b);

/* The medians of 1,001 empty spans. */
static void span_calibrate(void)
{
    enum { N = 1001 };
    static double w[N], c[N];
    span_cost_wall = span_cost_cpu = 0;
    for (int i = 0; i < N; i++) {
        span_t s;
        w[i] = c[i] = 0;
        span_begin(&s);
        span_end(&s, &w[i], &c[i]);
    }
    qsort(w, N, sizeof *w, cmp_double);
    qsort(c, N, sizeof *c, cmp_double);
    span_cost_wall = w[N / 2];
    span_cost_cpu = c[N / 2];
}

typedef struct {
    const char *id;           /* stable: "mlkem768/encaps" */
    const char *section;      /* "classical", "post-quantum", "hybrid", "tls" */
    const char *alg;          /* "ML-KEM-768" */
    const char *standard;     /* "FIPS 203" */
    const char *op;           /* "encaps" */
    const char *article;      /* the article's name for it, or NULL */
    double article_ms;        /* NO_ARTICLE when the article gives no figure */
    const char *note;         /* what exactly is timed, or NULL */
    /* results */
    int ran;
    int ok;
    size_t n;
    double median_us, p99_us, mean_us, min_us, max_us, ops_s;
    double op_cpu_us;         /* thread CPU per timed call (mean) */
    double wall_s, cpu_s;     /* whole loop: CLOCK_MONOTONIC and CLOCK_PROCESS_CPUTIME_ID */
} row_t;

typedef struct {
    size_t min_n;             /* at least this many iterations ... */
    double min_s;             /* ... and at least this long, */
    double cap_s;             /* but stop after cap_s once cap_min_n ran */
    size_t cap_min_n;
    size_t exact_n;           /* > 0: exactly this many */
    const char *only;
    WC_RNG rng;
    int failed;
    char failmsg[640];
} bench_t;

#define MAX_SAMPLES 200000

/* A timed operation. ns[0] (and ns[1] for a second row) may be set by the op
 * itself when it times only part of its work; otherwise the whole call is
 * timed. Returns 0 on success. */
typedef int (*op_fn)(void *st, double ns[2], double cpu_ns[2]);
typedef int (*hook_fn)(void *st);

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void finish_row(row_t *r, double *s, size_t n, double cpu_sum_ns, double wall_ns, double pcpu_ns)
{
    double sum = 0;
    qsort(s, n, sizeof *s, cmp_double);
    for (size_t i = 0; i < n; i++)
        sum += s[i];
    r->ran = 1;
    r->ok = 1;
    r->n = n;
    r->median_us = (n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2) / 1e3;
    {
        size_t k = (size_t)ceil(0.99 * (double)n);
        r->p99_us = s[(k ? k : 1) - 1] / 1e3;
    }
    r->mean_us = sum / (double)n / 1e3;
    r->min_us = s[0] / 1e3;
    r->max_us = s[n - 1] / 1e3;
    r->ops_s = r->mean_us > 0 ? 1e6 / r->mean_us : 0;
    r->op_cpu_us = cpu_sum_ns / (double)n / 1e3;
    r->wall_s = wall_ns / 1e9;
    r->cpu_s = pcpu_ns / 1e9;
}

/* --only takes comma-separated substrings of operation ids. */
static int selected(const bench_t *b, const row_t *r)
{
    const char *p = b->only;
    size_t idlen = strlen(r->id);

    if (!p)
        return 1;
    while (*p) {
        size_t n = strcspn(p, ",");
        for (size_t i = 0; n && i + n <= idlen; i++)
            if (!memcmp(r->id + i, p, n))
                return 1;
        p += n + (p[n] == ',');
    }
    return 0;
}

/* Runs op until the iteration policy is satisfied; r2 (optional) gets ns[1]. */
static void measure(bench_t *b, row_t *r, row_t *r2, op_fn op, hook_fn prep, hook_fn post, void *st)
{
    size_t cap = b->exact_n ? b->exact_n : MAX_SAMPLES;
    double *s1 = malloc(cap * sizeof *s1), *s2 = r2 ? malloc(cap * sizeof *s2) : NULL;
    double cpu1 = 0, cpu2 = 0, w0, p0, elapsed = 0;
    size_t n = 0;

    if (!s1 || (r2 && !s2)) {
        free(s1);
        free(s2);
        b->failed = 1;
        snprintf(b->failmsg, sizeof b->failmsg, "%s: out of memory", r->id);
        return;
    }
    w0 = now_ns(CLOCK_MONOTONIC);
    p0 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
    for (;;) {
        double ns[2] = { -1, -1 }, cns[2] = { -1, -1 };
        span_t sp;
        int rc;
        if (b->exact_n ? n >= b->exact_n
                       : n >= cap || (n >= b->min_n && elapsed >= b->min_s) ||
                         (n >= b->cap_min_n && elapsed >= b->cap_s))
            break;
        if (prep && prep(st) != 0) {
            rc = -1;
        } else {
            double wall = 0, cpu = 0;
            span_begin(&sp);
            rc = op(st, ns, cns);
            span_end(&sp, &wall, &cpu);
            if (ns[0] < 0) {
                ns[0] = wall;
                cns[0] = cpu;
            }
            if (post)
                post(st);
        }
        if (rc != 0) {
            b->failed = 1;
            r->ran = 1;
            r->ok = 0;
            snprintf(b->failmsg, sizeof b->failmsg, "%s failed (iteration %zu, rc %d)", r->id, n, rc);
            free(s1);
            free(s2);
            return;
        }
        s1[n] = ns[0] > 0 ? ns[0] : 1;     /* a 0 ns reading means below clock resolution */
        cpu1 += cns[0] > 0 ? cns[0] : 0;
        if (r2) {
            s2[n] = ns[1] > 0 ? ns[1] : 1;
            cpu2 += cns[1] > 0 ? cns[1] : 0;
        }
        n++;
        elapsed = (now_ns(CLOCK_MONOTONIC) - w0) / 1e9;
    }
    {
        double wall = now_ns(CLOCK_MONOTONIC) - w0, pcpu = now_ns(CLOCK_PROCESS_CPUTIME_ID) - p0;
        finish_row(r, s1, n, cpu1, wall, pcpu);
        if (r2)
            finish_row(r2, s2, n, cpu2, wall, pcpu);
    }
    free(s1);
    free(s2);
}

/* --- the rows -------------------------------------------------------------------- */

enum {
    R_RSA_KEYGEN, R_RSA_SIGN, R_RSA_VERIFY,
    R_P256_KEYGEN, R_P256_SIGN, R_P256_VERIFY,
    R_P384_KEYGEN, R_P384_SIGN, R_P384_VERIFY,
    R_X25519_KEYGEN, R_X25519_SHARED,
    R_ED25519_KEYGEN, R_ED25519_SIGN, R_ED25519_VERIFY,
    R_MLKEM512_KEYGEN, R_MLKEM512_ENCAPS, R_MLKEM512_DECAPS,
    R_MLKEM768_KEYGEN, R_MLKEM768_ENCAPS, R_MLKEM768_DECAPS,
    R_MLKEM1024_KEYGEN, R_MLKEM1024_ENCAPS, R_MLKEM1024_DECAPS,
    R_MLDSA44_KEYGEN, R_MLDSA44_SIGN, R_MLDSA44_VERIFY,
    R_MLDSA65_KEYGEN, R_MLDSA65_SIGN, R_MLDSA65_VERIFY,
    R_MLDSA87_KEYGEN, R_MLDSA87_SIGN, R_MLDSA87_VERIFY, R_MLDSA87_VERIFY_FRESH,
    R_HYB_CLIENT_KEYGEN, R_HYB_SERVER, R_HYB_CLIENT_FINISH,
    R_DUAL_SIGN, R_DUAL_VERIFY,
    R_TLS_HYB_SERVER, R_TLS_HYB_CLIENT,
    R_TLS_X25519_SERVER, R_TLS_X25519_CLIENT,
    R_TLS_HYB_MLDSA_SERVER, R_TLS_HYB_MLDSA_CLIENT,
    R_COUNT
};

#define ROW(i, sec, alg, std, op, art, art_ms, note) \
    [i] = { #i, sec, alg, std, op, art, art_ms, note, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }

static const row_t row_defs[R_COUNT] = {
    ROW(R_RSA_KEYGEN, "classical", "RSA-2048", "RFC 8017", "keygen", NULL, NO_ARTICLE, "e = 65537"),
    ROW(R_RSA_SIGN, "classical", "RSA-2048", "RFC 8017", "sign", NULL, NO_ARTICLE, "RSASSA-PSS SHA-256 of a 32-byte digest"),
    ROW(R_RSA_VERIFY, "classical", "RSA-2048", "RFC 8017", "verify", NULL, NO_ARTICLE, NULL),
    ROW(R_P256_KEYGEN, "classical", "ECDSA P-256", "FIPS 186-5", "keygen", NULL, NO_ARTICLE, NULL),
    ROW(R_P256_SIGN, "classical", "ECDSA P-256", "FIPS 186-5", "sign", "ECDSA P-256 signature", 1.8, "SHA-256 digest signed"),
    ROW(R_P256_VERIFY, "classical", "ECDSA P-256", "FIPS 186-5", "verify", NULL, NO_ARTICLE, NULL),
    ROW(R_P384_KEYGEN, "classical", "ECDSA P-384", "FIPS 186-5", "keygen", NULL, NO_ARTICLE, NULL),
    ROW(R_P384_SIGN, "classical", "ECDSA P-384", "FIPS 186-5", "sign", NULL, NO_ARTICLE, "SHA-384 digest signed"),
    ROW(R_P384_VERIFY, "classical", "ECDSA P-384", "FIPS 186-5", "verify", NULL, NO_ARTICLE, NULL),
    ROW(R_X25519_KEYGEN, "classical", "X25519", "RFC 7748", "keygen", NULL, NO_ARTICLE, NULL),
    ROW(R_X25519_SHARED, "classical", "X25519", "RFC 7748", "shared secret", NULL, NO_ARTICLE, NULL),
    ROW(R_ED25519_KEYGEN, "classical", "Ed25519", "RFC 8032", "keygen", NULL, NO_ARTICLE, NULL),
    ROW(R_ED25519_SIGN, "classical", "Ed25519", "RFC 8032", "sign", NULL, NO_ARTICLE, "64-byte message"),
    ROW(R_ED25519_VERIFY, "classical", "Ed25519", "RFC 8032", "verify", NULL, NO_ARTICLE, NULL),
    ROW(R_MLKEM512_KEYGEN, "post-quantum", "ML-KEM-512", "FIPS 203", "keygen", NULL, NO_ARTICLE, NULL),
    ROW(R_MLKEM512_ENCAPS, "post-quantum", "ML-KEM-512", "FIPS 203", "encaps", NULL, NO_ARTICLE, NULL),
    ROW(R_MLKEM512_DECAPS, "post-quantum", "ML-KEM-512", "FIPS 203", "decaps", NULL, NO_ARTICLE, NULL),
    ROW(R_MLKEM768_KEYGEN, "post-quantum", "ML-KEM-768", "FIPS 203", "keygen", NULL, NO_ARTICLE, NULL),
    ROW(R_MLKEM768_ENCAPS, "post-quantum", "ML-KEM-768", "FIPS 203", "encaps", NULL, NO_ARTICLE, NULL),
    ROW(R_MLKEM768_DECAPS, "post-quantum", "ML-KEM-768", "FIPS 203", "decaps", NULL, NO_ARTICLE, NULL),
    ROW(R_MLKEM1024_KEYGEN, "post-quantum", "ML-KEM-1024", "FIPS 203", "keygen", "Kyber-1024 key generation", 12.3, NULL),
    ROW(R_MLKEM1024_ENCAPS, "post-quantum", "ML-KEM-1024", "FIPS 203", "encaps", "Kyber-1024 encryption", 15.6, NULL),
    ROW(R_MLKEM1024_DECAPS, "post-quantum", "ML-KEM-1024", "FIPS 203", "decaps", "Kyber-1024 decryption", 5.8, NULL),
    ROW(R_MLDSA44_KEYGEN, "post-quantum", "ML-DSA-44", "FIPS 204", "keygen", NULL, NO_ARTICLE, NULL),
    ROW(R_MLDSA44_SIGN, "post-quantum", "ML-DSA-44", "FIPS 204", "sign", NULL, NO_ARTICLE, "64-byte message, empty context, hedged"),
    ROW(R_MLDSA44_VERIFY, "post-quantum", "ML-DSA-44", "FIPS 204", "verify", NULL, NO_ARTICLE, NULL),
    ROW(R_MLDSA65_KEYGEN, "post-quantum", "ML-DSA-65", "FIPS 204", "keygen", NULL, NO_ARTICLE, NULL),
    ROW(R_MLDSA65_SIGN, "post-quantum", "ML-DSA-65", "FIPS 204", "sign", NULL, NO_ARTICLE, "64-byte message, empty context, hedged"),
    ROW(R_MLDSA65_VERIFY, "post-quantum", "ML-DSA-65", "FIPS 204", "verify", NULL, NO_ARTICLE, NULL),
    ROW(R_MLDSA87_KEYGEN, "post-quantum", "ML-DSA-87", "FIPS 204", "keygen", NULL, NO_ARTICLE, NULL),
    ROW(R_MLDSA87_SIGN, "post-quantum", "ML-DSA-87", "FIPS 204", "sign", "Dilithium-5 signature", 45.2, "64-byte message, empty context, hedged"),
    ROW(R_MLDSA87_VERIFY, "post-quantum", "ML-DSA-87", "FIPS 204", "verify", "Dilithium-5 verification", 12.7,
        "a key that verified before: it keeps its expanded matrix A and t1 (WC_MLDSA_CACHE_*), as pqproxy's keyring keys do"),
    ROW(R_MLDSA87_VERIFY_FRESH, "post-quantum", "ML-DSA-87", "FIPS 204", "verify, key imported per call", NULL,
        NO_ARTICLE, "public key imported for each verification: a client key's first request on a crypto thread"),
    ROW(R_HYB_CLIENT_KEYGEN, "hybrid", "X25519MLKEM768", "FIPS 203 + RFC 7748", "client keygen", NULL, NO_ARTICLE,
        "X25519 + ML-KEM-768 key pairs, key share encoded (1216 bytes)"),
    ROW(R_HYB_SERVER, "hybrid", "X25519MLKEM768", "FIPS 203 + RFC 7748", "server encaps + X25519", NULL, NO_ARTICLE,
        "decode client share, ML-KEM encaps, X25519 keygen + shared secret"),
    ROW(R_HYB_CLIENT_FINISH, "hybrid", "X25519MLKEM768", "FIPS 203 + RFC 7748", "client decaps + X25519", NULL, NO_ARTICLE,
        "ML-KEM decaps, X25519 shared secret"),
    ROW(R_DUAL_SIGN, "hybrid", "ECDSA P-384 + ML-DSA-87", "FIPS 186-5 + FIPS 204", "dual sign", NULL, NO_ARTICLE,
        "both signatures over the same 64-byte message"),
    ROW(R_DUAL_VERIFY, "hybrid", "ECDSA P-384 + ML-DSA-87", "FIPS 186-5 + FIPS 204", "dual verify", NULL, NO_ARTICLE, NULL),
    ROW(R_TLS_HYB_SERVER, "tls", "TLS 1.3 X25519MLKEM768, ECDSA P-256 cert", "RFC 8446", "handshake, server side", NULL,
        NO_ARTICLE, "px_tls session new + handshake + free, in memory, session ticket included"),
    ROW(R_TLS_HYB_CLIENT, "tls", "TLS 1.3 X25519MLKEM768, ECDSA P-256 cert", "RFC 8446", "handshake, client side", NULL,
        NO_ARTICLE, "includes chain verification (P-384 CA)"),
    ROW(R_TLS_X25519_SERVER, "tls", "TLS 1.3 X25519, ECDSA P-256 cert", "RFC 8446", "handshake, server side", NULL,
        NO_ARTICLE, "px_tls session new + handshake + free, in memory, session ticket included"),
    ROW(R_TLS_X25519_CLIENT, "tls", "TLS 1.3 X25519, ECDSA P-256 cert", "RFC 8446", "handshake, client side", NULL,
        NO_ARTICLE, "includes chain verification (P-384 CA)"),
    ROW(R_TLS_HYB_MLDSA_SERVER, "tls", "TLS 1.3 X25519MLKEM768, ML-DSA-65 cert", "RFC 8446", "handshake, server side",
        NULL, NO_ARTICLE, "px_tls session new + handshake + free, in memory, session ticket included"),
    ROW(R_TLS_HYB_MLDSA_CLIENT, "tls", "TLS 1.3 X25519MLKEM768, ML-DSA-65 cert", "RFC 8446", "handshake, client side",
        NULL, NO_ARTICLE, "includes chain verification (ML-DSA-87 CA)"),
};

/* Stable ids for JSON, in row order. */
static const char *const row_ids[R_COUNT] = {
    "rsa2048/keygen", "rsa2048/sign", "rsa2048/verify",
    "ecdsa-p256/keygen", "ecdsa-p256/sign", "ecdsa-p256/verify",
    "ecdsa-p384/keygen", "ecdsa-p384/sign", "ecdsa-p384/verify",
    "x25519/keygen", "x25519/shared",
    "ed25519/keygen", "ed25519/sign", "ed25519/verify",
    "mlkem512/keygen", "mlkem512/encaps", "mlkem512/decaps",
    "mlkem768/keygen", "mlkem768/encaps", "mlkem768/decaps",
    "mlkem1024/keygen", "mlkem1024/encaps", "mlkem1024/decaps",
    "mldsa44/keygen", "mldsa44/sign", "mldsa44/verify",
    "mldsa65/keygen", "mldsa65/sign", "mldsa65/verify",
    "mldsa87/keygen", "mldsa87/sign", "mldsa87/verify", "mldsa87/verify-fresh-key",
    "x25519mlkem768/client-keygen", "x25519mlkem768/server-encaps-x25519",
    "x25519mlkem768/client-decaps-x25519",
    "ecdsa-p384+mldsa87/dual-sign", "ecdsa-p384+mldsa87/dual-verify",
    "tls13/x25519mlkem768/server", "tls13/x25519mlkem768/client",
    "tls13/x25519/server", "tls13/x25519/client",
    "tls13/x25519mlkem768-mldsa65/server", "tls13/x25519mlkem768-mldsa65/client",
};

static const unsigned char msg64[64] = "pqproxy bench: a 64-byte message signed by every scheme here...";

/* --- RSA-2048 ------------------------------------------------------------------ */

typedef struct {
    WC_RNG *rng;
    RsaKey key, tmp;
    byte hash[32];
    byte sig[256];
    word32 siglen;
} rsa_st;

static int b_rsa_prep(void *p) { rsa_st *s = p; return wc_InitRsaKey(&s->tmp, NULL); }
static int b_rsa_post(void *p) { rsa_st *s = p; wc_FreeRsaKey(&s->tmp); return 0; }
static int b_rsa_keygen(void *p, double ns[2], double c[2])
{
    rsa_st *s = p;
    return wc_MakeRsaKey(&s->tmp, 2048, WC_RSA_EXPONENT, s->rng);
}
static int b_rsa_sign(void *p, double ns[2], double c[2])
{
    rsa_st *s = p;
    int r = wc_RsaPSS_Sign(s->hash, 32, s->sig, sizeof s->sig, WC_HASH_TYPE_SHA256, WC_MGF1SHA256, &s->key, s->rng);
    if (r <= 0)
        return r ? r : -1;
    s->siglen = (word32)r;
    return 0;
}
static int b_rsa_verify(void *p, double ns[2], double c[2])
{
    rsa_st *s = p;
    byte out[256];
    int r = wc_RsaPSS_VerifyCheck(s->sig, s->siglen, out, sizeof out, s->hash, 32, WC_HASH_TYPE_SHA256,
                                  WC_MGF1SHA256, &s->key);
    return r > 0 ? 0 : (r ? r : -1);
}

/* --- ECDSA ---------------------------------------------------------------------- */

typedef struct {
    WC_RNG *rng;
    int curve, size, hlen;
    ecc_key key, tmp;
    byte hash[48];
    byte sig[160];
    word32 siglen;
} ecc_st;

static int b_ecc_prep(void *p) { ecc_st *s = p; return wc_ecc_init(&s->tmp); }
static int b_ecc_post(void *p) { ecc_st *s = p; wc_ecc_free(&s->tmp); return 0; }
static int b_ecc_keygen(void *p, double ns[2], double c[2])
{
    ecc_st *s = p;
    return wc_ecc_make_key_ex(s->rng, s->size, &s->tmp, s->curve);
}
static int b_ecc_sign(void *p, double ns[2], double c[2])
{
    ecc_st *s = p;
    s->siglen = sizeof s->sig;
    return wc_ecc_sign_hash(s->hash, (word32)s->hlen, s->sig, &s->siglen, s->rng, &s->key);
}
static int b_ecc_verify(void *p, double ns[2], double c[2])
{
    ecc_st *s = p;
    int res = 0, r = wc_ecc_verify_hash(s->sig, s->siglen, s->hash, (word32)s->hlen, &res, &s->key);
    return r ? r : (res == 1 ? 0 : -1);
}

/* --- X25519 / Ed25519 -------------------------------------------------------------- */

typedef struct {
    WC_RNG *rng;
    curve25519_key a, b, tmp;
    ed25519_key ed, edtmp;
    byte sig[64];
    word32 siglen;
} c25519_st;

static int b_x25519_prep(void *p) { c25519_st *s = p; return wc_curve25519_init(&s->tmp); }
static int b_x25519_post(void *p) { c25519_st *s = p; wc_curve25519_free(&s->tmp); return 0; }
static int b_x25519_keygen(void *p, double ns[2], double c[2])
{
    c25519_st *s = p;
    return wc_curve25519_make_key(s->rng, CURVE25519_KEYSIZE, &s->tmp);
}
static int b_x25519_shared(void *p, double ns[2], double c[2])
{
    c25519_st *s = p;
    byte out[32];
    word32 len = sizeof out;
    return wc_curve25519_shared_secret_ex(&s->a, &s->b, out, &len, EC25519_LITTLE_ENDIAN);
}
static int b_ed_prep(void *p) { c25519_st *s = p; return wc_ed25519_init(&s->edtmp); }
static int b_ed_post(void *p) { c25519_st *s = p; wc_ed25519_free(&s->edtmp); return 0; }
static int b_ed_keygen(void *p, double ns[2], double c[2])
{
    c25519_st *s = p;
    return wc_ed25519_make_key(s->rng, ED25519_KEY_SIZE, &s->edtmp);
}
static int b_ed_sign(void *p, double ns[2], double c[2])
{
    c25519_st *s = p;
    s->siglen = sizeof s->sig;
    return wc_ed25519_sign_msg(msg64, sizeof msg64, s->sig, &s->siglen, &s->ed);
}
static int b_ed_verify(void *p, double ns[2], double c[2])
{
    c25519_st *s = p;
    int res = 0, r = wc_ed25519_verify_msg(s->sig, s->siglen, msg64, sizeof msg64, &res, &s->ed);
    return r ? r : (res == 1 ? 0 : -1);
}

/* --- ML-KEM ------------------------------------------------------------------------ */

typedef struct {
    WC_RNG *rng;
    int type;
    MlKemKey key, pub, tmp;
    byte pk[WC_ML_KEM_MAX_PUBLIC_KEY_SIZE];
    word32 pklen;
    byte ct[WC_ML_KEM_MAX_CIPHER_TEXT_SIZE];
    word32 ctlen;
} mlkem_st;

static int b_mlkem_prep(void *p) { mlkem_st *s = p; return wc_MlKemKey_Init(&s->tmp, s->type, NULL, INVALID_DEVID); }
static int b_mlkem_post(void *p) { mlkem_st *s = p; wc_MlKemKey_Free(&s->tmp); return 0; }
static int b_mlkem_keygen(void *p, double ns[2], double c[2])
{
    mlkem_st *s = p;
    return wc_MlKemKey_MakeKey(&s->tmp, s->rng);
}
static int b_mlkem_encaps(void *p, double ns[2], double c[2])
{
    mlkem_st *s = p;
    byte ss[WC_ML_KEM_SS_SZ];
    return wc_MlKemKey_Encapsulate(&s->pub, s->ct, ss, s->rng);
}
static int b_mlkem_decaps(void *p, double ns[2], double c[2])
{
    mlkem_st *s = p;
    byte ss[WC_ML_KEM_SS_SZ];
    return wc_MlKemKey_Decapsulate(&s->key, ss, s->ct, s->ctlen);
}

static int b_mlkem_setup(mlkem_st *s)
{
    int r;
    byte ss[WC_ML_KEM_SS_SZ];
    if ((r = wc_MlKemKey_Init(&s->key, s->type, NULL, INVALID_DEVID)) != 0 ||
        (r = wc_MlKemKey_Init(&s->pub, s->type, NULL, INVALID_DEVID)) != 0 ||
        (r = wc_MlKemKey_MakeKey(&s->key, s->rng)) != 0 ||
        (r = wc_MlKemKey_PublicKeySize(&s->key, &s->pklen)) != 0 ||
        (r = wc_MlKemKey_EncodePublicKey(&s->key, s->pk, s->pklen)) != 0 ||
        (r = wc_MlKemKey_DecodePublicKey(&s->pub, s->pk, s->pklen)) != 0 ||
        (r = wc_MlKemKey_CipherTextSize(&s->key, &s->ctlen)) != 0 ||
        (r = wc_MlKemKey_Encapsulate(&s->pub, s->ct, ss, s->rng)) != 0)
        return r;
    return 0;
}

/* --- ML-DSA -------------------------------------------------------------------------- */

typedef struct {
    WC_RNG *rng;
    byte level;
    wc_MlDsaKey key, tmp;
    byte *sig;
    word32 siglen;
    byte pub[WC_MLDSA_87_PUB_KEY_SIZE];
    word32 publen;
} mldsa_st;

static int b_mldsa_prep(void *p)
{
    mldsa_st *s = p;
    int r = wc_MlDsaKey_Init(&s->tmp, NULL, INVALID_DEVID);
    return r ? r : wc_MlDsaKey_SetParams(&s->tmp, s->level);
}
static int b_mldsa_post(void *p) { mldsa_st *s = p; wc_MlDsaKey_Free(&s->tmp); return 0; }
static int b_mldsa_keygen(void *p, double ns[2], double c[2])
{
    mldsa_st *s = p;
    return wc_MlDsaKey_MakeKey(&s->tmp, s->rng);
}
static int b_mldsa_sign(void *p, double ns[2], double c[2])
{
    mldsa_st *s = p;
    s->siglen = (word32)wc_MlDsaKey_SigSize(&s->key);
    return wc_MlDsaKey_SignCtx(&s->key, NULL, 0, s->sig, &s->siglen, msg64, sizeof msg64, s->rng);
}
static int b_mldsa_verify(void *p, double ns[2], double c[2])
{
    mldsa_st *s = p;
    int res = 0, r = wc_MlDsaKey_VerifyCtx(&s->key, s->sig, s->siglen, NULL, 0, msg64, sizeof msg64, &res);
    return r ? r : (res == 1 ? 0 : -1);
}

/* Import + verify, as for a key never seen before (tmp from b_mldsa_prep). */
static int b_mldsa_verify_fresh(void *p, double ns[2], double c[2])
{
    mldsa_st *s = p;
    int res = 0, r = wc_MlDsaKey_ImportPubRaw(&s->tmp, s->pub, s->publen);
    if (r == 0)
        r = wc_MlDsaKey_VerifyCtx(&s->tmp, s->sig, s->siglen, NULL, 0, msg64, sizeof msg64, &res);
    return r ? r : (res == 1 ? 0 : -1);
}

static int b_mldsa_setup(mldsa_st *s)
{
    int r;
    s->publen = sizeof s->pub;
    if ((r = wc_MlDsaKey_Init(&s->key, NULL, INVALID_DEVID)) != 0 ||
        (r = wc_MlDsaKey_SetParams(&s->key, s->level)) != 0 ||
        (r = wc_MlDsaKey_MakeKey(&s->key, s->rng)) != 0 ||
        (r = wc_MlDsaKey_ExportPubRaw(&s->key, s->pub, &s->publen)) != 0)
        return r;
    s->sig = malloc((size_t)wc_MlDsaKey_SigSize(&s->key));
    if (!s->sig)
        return -1;
    return b_mldsa_sign(s, NULL, NULL);
}

/* --- X25519MLKEM768 as TLS does it (draft-ietf-tls-ecdhe-mlkem) ------------------------ */

typedef struct {
    WC_RNG *rng;
    /* client */
    curve25519_key cx;
    MlKemKey ck;
    byte cshare[WC_ML_KEM_768_PUBLIC_KEY_SIZE + 32];   /* ML-KEM pk || X25519 pk */
    /* server */
    curve25519_key sx, peer;
    MlKemKey sk;
    byte sshare[WC_ML_KEM_768_CIPHER_TEXT_SIZE + 32];  /* ML-KEM ct || X25519 pk */
    byte secret[64];
    /* fixed client state for the finish step */
    curve25519_key fx, fpeer;
    MlKemKey fk;
    byte fshare[WC_ML_KEM_768_CIPHER_TEXT_SIZE + 32];
    byte fsecret[64];
} hyb_st;

static int b_hyb_client_prep(void *p)
{
    hyb_st *s = p;
    int r = wc_curve25519_init(&s->cx);
    return r ? r : wc_MlKemKey_Init(&s->ck, WC_ML_KEM_768, NULL, INVALID_DEVID);
}
static int b_hyb_client_post(void *p)
{
    hyb_st *s = p;
    wc_curve25519_free(&s->cx);
    wc_MlKemKey_Free(&s->ck);
    return 0;
}
static int client_share(WC_RNG *rng, curve25519_key *x, MlKemKey *k, byte *share)
{
    word32 xl = 32;
    int r;
    if ((r = wc_MlKemKey_MakeKey(k, rng)) != 0 ||
        (r = wc_MlKemKey_EncodePublicKey(k, share, WC_ML_KEM_768_PUBLIC_KEY_SIZE)) != 0 ||
        (r = wc_curve25519_make_key(rng, CURVE25519_KEYSIZE, x)) != 0)
        return r;
    return wc_curve25519_export_public_ex(x, share + WC_ML_KEM_768_PUBLIC_KEY_SIZE, &xl, EC25519_LITTLE_ENDIAN);
}
static int b_hyb_client_keygen(void *p, double ns[2], double c[2])
{
    hyb_st *s = p;
    return client_share(s->rng, &s->cx, &s->ck, s->cshare);
}
static int b_hyb_server_prep(void *p)
{
    hyb_st *s = p;
    int r;
    if ((r = wc_curve25519_init(&s->sx)) != 0 || (r = wc_curve25519_init(&s->peer)) != 0)
        return r;
    return wc_MlKemKey_Init(&s->sk, WC_ML_KEM_768, NULL, INVALID_DEVID);
}
static int b_hyb_server_post(void *p)
{
    hyb_st *s = p;
    wc_curve25519_free(&s->sx);
    wc_curve25519_free(&s->peer);
    wc_MlKemKey_Free(&s->sk);
    return 0;
}
static int b_hyb_server(void *p, double ns[2], double c[2])
{
    hyb_st *s = p;
    word32 xl = 32, sl = 32;
    int r;
    if ((r = wc_MlKemKey_DecodePublicKey(&s->sk, s->cshare, WC_ML_KEM_768_PUBLIC_KEY_SIZE)) != 0 ||
        (r = wc_MlKemKey_Encapsulate(&s->sk, s->sshare, s->secret, s->rng)) != 0 ||
        (r = wc_curve25519_make_key(s->rng, CURVE25519_KEYSIZE, &s->sx)) != 0 ||
        (r = wc_curve25519_export_public_ex(&s->sx, s->sshare + WC_ML_KEM_768_CIPHER_TEXT_SIZE, &xl,
                                            EC25519_LITTLE_ENDIAN)) != 0 ||
        (r = wc_curve25519_import_public_ex(s->cshare + WC_ML_KEM_768_PUBLIC_KEY_SIZE, 32, &s->peer,
                                            EC25519_LITTLE_ENDIAN)) != 0)
        return r;
#ifdef WOLFSSL_CURVE25519_BLINDING
    wc_curve25519_set_rng(&s->sx, s->rng);
#endif
    return wc_curve25519_shared_secret_ex(&s->sx, &s->peer, s->secret + 32, &sl, EC25519_LITTLE_ENDIAN);
}
static int b_hyb_finish(void *p, double ns[2], double c[2])
{
    hyb_st *s = p;
    word32 sl = 32;
    byte secret[64];
    int r;
    if ((r = wc_MlKemKey_Decapsulate(&s->fk, secret, s->fshare, WC_ML_KEM_768_CIPHER_TEXT_SIZE)) != 0 ||
        (r = wc_curve25519_import_public_ex(s->fshare + WC_ML_KEM_768_CIPHER_TEXT_SIZE, 32, &s->fpeer,
                                            EC25519_LITTLE_ENDIAN)) != 0 ||
        (r = wc_curve25519_shared_secret_ex(&s->fx, &s->fpeer, secret + 32, &sl, EC25519_LITTLE_ENDIAN)) != 0)
        return r;
    /* the two sides must agree */
    return memcmp(secret, s->fsecret, sizeof secret) == 0 ? 0 : -1;
}

static int b_hyb_setup(hyb_st *s)
{
    double ns[2];
    int r;
    /* a fixed client key pair and the server's answer to it, for b_hyb_finish */
    if ((r = wc_curve25519_init(&s->fx)) != 0 || (r = wc_curve25519_init(&s->fpeer)) != 0 ||
        (r = wc_MlKemKey_Init(&s->fk, WC_ML_KEM_768, NULL, INVALID_DEVID)) != 0 ||
        (r = client_share(s->rng, &s->fx, &s->fk, s->cshare)) != 0 || (r = b_hyb_server_prep(s)) != 0)
        return r;
    r = b_hyb_server(s, ns, ns);
    b_hyb_server_post(s);
    if (r)
        return r;
    memcpy(s->fshare, s->sshare, sizeof s->fshare);
    memcpy(s->fsecret, s->secret, sizeof s->fsecret);
#ifdef WOLFSSL_CURVE25519_BLINDING
    wc_curve25519_set_rng(&s->fx, s->rng);
#endif
    return 0;
}

/* --- dual signatures: ECDSA P-384 + ML-DSA-87 ---------------------------------------- */

typedef struct {
    ecc_st *ec;       /* P-384 */
    mldsa_st *pq;     /* ML-DSA-87 */
} dual_st;

static int b_dual_sign(void *p, double ns[2], double c[2])
{
    dual_st *d = p;
    int r;
    wc_Sha384Hash(msg64, sizeof msg64, d->ec->hash);
    if ((r = b_ecc_sign(d->ec, ns, c)) != 0)
        return r;
    return b_mldsa_sign(d->pq, ns, c);
}
static int b_dual_verify(void *p, double ns[2], double c[2])
{
    dual_st *d = p;
    int r;
    wc_Sha384Hash(msg64, sizeof msg64, d->ec->hash);
    if ((r = b_ecc_verify(d->ec, ns, c)) != 0)
        return r;
    return b_mldsa_verify(d->pq, ns, c);
}

/* --- TLS 1.3 handshakes in memory ---------------------------------------------------- */

typedef struct {
    size_t client_hello;          /* first client flight: the ClientHello record */
    size_t server_hello;          /* the ServerHello record */
    size_t server_flight;         /* everything the server sent in reply to the ClientHello */
    size_t certificate_msg;       /* Certificate handshake message (inner plaintext), 0 if unknown */
    size_t certificate_verify_msg;
    size_t client_to_server;      /* all handshake bytes each way (incl. NewSessionTicket) */
    size_t server_to_client;
    size_t cert_chain_der;        /* DER bytes of the certificates the server sends */
    size_t cert_msg_computed;     /* the Certificate message size computed from the DER */
    int records_split;            /* each encrypted handshake message in its own record */
} hs_wire_t;

typedef struct {
    px_tls_ctx_t *sctx, *cctx;
    hs_wire_t wire;
    int captured;
} hs_st;

/* Moves ciphertext from one session's output into the other's input; returns
 * bytes moved. cap/caplen: optional copy of what moved. */
static size_t xfer(px_tls_t *from, px_tls_t *to, unsigned char *cap, size_t capmax, size_t *caplen)
{
    px_buf_t *o = px_tls_out(from);
    size_t total = 0;
    while (px_buf_size(o)) {
        size_t n = px_buf_size(o) > 16384 ? 16384 : px_buf_size(o);
        char *p = px_tls_in_reserve(to, n);
        if (!p)
            break;
        memcpy(p, px_buf_ptr(o), n);
        if (cap && *caplen + n <= capmax) {
            memcpy(cap + *caplen, p, n);
            *caplen += n;
        }
        px_tls_in_commit(to, n);
        px_buf_consume(o, n);
        total += n;
    }
    return total;
}

/* Walks the TLS records of a server flight. */
static void parse_server_flight(const unsigned char *p, size_t len, hs_wire_t *w)
{
    size_t off = 0, enc[8];
    int nenc = 0;
    while (off + 5 <= len) {
        size_t rl = ((size_t)p[off + 3] << 8) | p[off + 4];
        if (off + 5 + rl > len)
            break;
        if (p[off] == 22 && w->server_hello == 0)
            w->server_hello = 5 + rl;
        else if (p[off] == 23 && nenc < 8)
            enc[nenc++] = rl;
        off += 5 + rl;
    }
    /* EncryptedExtensions, Certificate, CertificateVerify, Finished; inner
     * plaintext = record - 16 (AEAD tag) - 1 (content type), no padding. */
    w->records_split = nenc == 4;
    if (nenc == 4) {
        w->certificate_msg = enc[1] - 17;
        w->certificate_verify_msg = enc[2] - 17;
    }
}

static int hs_run(hs_st *h, double ns[2], double cns[2], hs_wire_t *w)
{
    static unsigned char cap[65536];
    px_tls_t *c = px_tls_new(h->cctx, "localhost"), *s;
    double srv = 0, cli = 0, scpu = 0, ccpu = 0;
    int cdone = 0, sdone = 0, rc = 0;
    size_t caplen;
    span_t sp;

    span_begin(&sp);
    s = px_tls_new(h->sctx, NULL);
    span_end(&sp, &srv, &scpu);
    if (!c || !s) {
        px_tls_free(c);
        px_tls_free(s);
        return PX_ENOMEM;
    }
    for (int round = 0; round < 16 && !(cdone && sdone); round++) {
        size_t n;
        if (!cdone) {
            span_begin(&sp);
            rc = px_tls_handshake(c);
            span_end(&sp, &cli, &ccpu);
            if (rc == 0)
                cdone = 1;
            else if (rc != PX_EAGAIN)
                break;
        }
        n = xfer(c, s, NULL, 0, NULL);
        if (w) {
            if (round == 0)
                w->client_hello = n;
            w->client_to_server += n;
        }
        rc = 0;
        if (!sdone) {
            span_begin(&sp);
            rc = px_tls_handshake(s);
            span_end(&sp, &srv, &scpu);
            if (rc == 0)
                sdone = 1;
            else if (rc != PX_EAGAIN)
                break;
            rc = 0;
        }
        caplen = 0;
        n = xfer(s, c, cap, sizeof cap, &caplen);
        if (w) {
            if (round == 0) {
                w->server_flight = n;
                parse_server_flight(cap, caplen, w);
            }
            w->server_to_client += n;
        }
    }
    if (rc == 0 && !(cdone && sdone))
        rc = PX_ETLS;
    px_tls_free(c);
    span_begin(&sp);
    px_tls_free(s);
    span_end(&sp, &srv, &scpu);
    ns[0] = srv;
    ns[1] = cli;
    cns[0] = scpu;
    cns[1] = ccpu;
    return rc;
}

static int hs_op(void *p, double ns[2], double cns[2])
{
    return hs_run(p, ns, cns, NULL);
}

typedef struct {
    char dir[64];
    char ec_crt[96], ec_key[96], pq_crt[96], pq_key[96], bundle[96];
    size_t ec_der, pq_der;
} pki_t;

static int write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(data, 1, len, f) == len;
    if (f && fclose(f) != 0)
        ok = 0;
    return ok ? 0 : -1;
}

static size_t pem_der_len(const char *pem, size_t len)
{
    byte *der = malloc(len);
    int r = der ? wc_CertPemToDer((const unsigned char *)pem, (int)len, der, (int)len, CERT_TYPE) : -1;
    free(der);
    return r > 0 ? (size_t)r : 0;
}

static int pki_make(pki_t *k, char *err, size_t errlen)
{
    px_pem_pair_t ca = { 0 }, leaf = { 0 }, pqca = { 0 }, pqleaf = { 0 };
    const char *sans[] = { "localhost", "127.0.0.1" };
    int rc = -1;

    snprintf(k->dir, sizeof k->dir, "/tmp/pqproxy-bench-XXXXXX");
    if (!mkdtemp(k->dir)) {
        snprintf(err, errlen, "mkdtemp failed");
        return -1;
    }
    snprintf(k->ec_crt, sizeof k->ec_crt, "%s/server.crt", k->dir);
    snprintf(k->ec_key, sizeof k->ec_key, "%s/server.key", k->dir);
    snprintf(k->pq_crt, sizeof k->pq_crt, "%s/server-mldsa.crt", k->dir);
    snprintf(k->pq_key, sizeof k->pq_key, "%s/server-mldsa.key", k->dir);
    snprintf(k->bundle, sizeof k->bundle, "%s/bundle-ca.crt", k->dir);
    /* the same PKI as `pqproxy certgen`: P-384 CA -> P-256 leaf, ML-DSA-87 CA -> ML-DSA-65 leaf */
    if (px_certgen_ca(PX_KEY_ECDSA_P384, "pqproxy bench CA", 1, &ca) != 0 ||
        px_certgen_leaf(PX_KEY_ECDSA_P256, &ca, "localhost", sans, 2, 1, 0, &leaf) != 0 ||
        px_certgen_ca(PX_KEY_MLDSA87, "pqproxy bench ML-DSA CA", 1, &pqca) != 0 ||
        px_certgen_leaf(PX_KEY_MLDSA65, &pqca, "localhost", sans, 2, 1, 0, &pqleaf) != 0) {
        snprintf(err, errlen, "certgen: %s", px_certgen_errmsg());
        goto out;
    }
    if (write_file(k->ec_crt, leaf.cert_pem, leaf.cert_len) || write_file(k->ec_key, leaf.key_pem, leaf.key_len) ||
        write_file(k->pq_crt, pqleaf.cert_pem, pqleaf.cert_len) ||
        write_file(k->pq_key, pqleaf.key_pem, pqleaf.key_len)) {
        snprintf(err, errlen, "cannot write into %s", k->dir);
        goto out;
    }
    {
        size_t n = ca.cert_len + pqca.cert_len;
        char *b = malloc(n + 1);
        if (!b)
            goto out;
        memcpy(b, ca.cert_pem, ca.cert_len);
        memcpy(b + ca.cert_len, pqca.cert_pem, pqca.cert_len);
        rc = write_file(k->bundle, b, n);
        free(b);
        if (rc)
            goto out;
    }
    k->ec_der = pem_der_len(leaf.cert_pem, leaf.cert_len);
    k->pq_der = pem_der_len(pqleaf.cert_pem, pqleaf.cert_len);
    rc = 0;
out:
    px_pem_pair_free(&ca);
    px_pem_pair_free(&leaf);
    px_pem_pair_free(&pqca);
    px_pem_pair_free(&pqleaf);
    return rc;
}

static void pki_remove(pki_t *k)
{
    const char *f[] = { k->ec_crt, k->ec_key, k->pq_crt, k->pq_key, k->bundle };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        unlink(f[i]);
    rmdir(k->dir);
}

static int hs_setup(hs_st *h, const pki_t *k, int mldsa, uint16_t group, char *err, size_t errlen)
{
    static const uint16_t server_groups[] = { GROUP_X25519MLKEM768, 0x11EB, 0x11ED, GROUP_X25519 };
    px_tls_config_t cfg;
    px_tls_client_opts_t co;
    memset(&cfg, 0, sizeof cfg);
    memset(h, 0, sizeof *h);
    /* pqproxy's default groups; "prefer" so the classical run is served */
    memcpy(cfg.groups, server_groups, sizeof server_groups);
    cfg.group_count = 4;
    cfg.pq_policy = PX_PQ_PREFER;
    cfg.min_version = 13;
    cfg.session_tickets = 1;
    cfg.ticket_key_rotation_s = 3600;
    cfg.certs[0].cert_file = (char *)(mldsa ? k->pq_crt : k->ec_crt);
    cfg.certs[0].key_file = (char *)(mldsa ? k->pq_key : k->ec_key);
    cfg.cert_count = 1;
    h->sctx = px_tls_ctx_server_new(&cfg, err, errlen);
    if (!h->sctx)
        return -1;
    memset(&co, 0, sizeof co);
    co.groups = &group;
    co.group_count = 1;
    co.ca_file = k->bundle;
    h->cctx = px_tls_ctx_client_new(&co, err, errlen);
    if (!h->cctx)
        return -1;
    {
        double ns[2], cns[2];
        size_t der = mldsa ? k->pq_der : k->ec_der;
        int rc = hs_run(h, ns, cns, &h->wire);
        if (rc != 0) {
            snprintf(err, errlen, "in-memory handshake failed: %s", px_strerror(rc));
            return -1;
        }
        h->wire.cert_chain_der = der;
        /* RFC 8446 4.4.2: type(1) len(3) context(1) list_len(3) + cert_len(3) der ext_len(2) */
        h->wire.cert_msg_computed = 4 + 1 + 3 + 3 + der + 2;
        h->captured = 1;
    }
    return 0;
}

static void hs_free(hs_st *h)
{
    if (h->sctx)
        px_tls_ctx_unref(h->sctx);
    if (h->cctx)
        px_tls_ctx_unref(h->cctx);
}

/* --- bytes on the wire for one request/response ------------------------------------- */

typedef struct {
    const char *name;
    size_t req_body, resp_body;   /* bytes of body (heads are added) */
    size_t classical, hybrid;     /* total bytes both ways, one connection */
    size_t keepalive_classical, keepalive_hybrid;  /* the same exchange on an open connection */
} bw_row_t;

/* Sends len bytes of plaintext from a to b in 16 KiB writes, reading as it goes. */
static int pipe_plain(px_tls_t *a, px_tls_t *b, size_t len, size_t *wire)
{
    static char chunk[16384], sink[16384];
    size_t sent = 0, got = 0;
    memset(chunk, 'x', sizeof chunk);
    for (int guard = 0; got < len && guard < 1000000; guard++) {
        if (sent < len && px_buf_size(px_tls_out(a)) < 65536) {
            size_t n = len - sent > sizeof chunk ? sizeof chunk : len - sent;
            if (px_tls_write(a, chunk, n) != (int)n)
                return PX_ETLS;
            sent += n;
        }
        *wire += xfer(a, b, NULL, 0, NULL);
        for (;;) {
            int r = px_tls_read(b, sink, sizeof sink);
            if (r > 0) {
                got += (size_t)r;
                continue;
            }
            if (r != PX_EAGAIN)
                return r;
            break;
        }
    }
    return got == len ? 0 : PX_ETLS;
}

static int bw_measure(hs_st *h, size_t req, size_t resp, size_t *total, size_t *keepalive)
{
    px_tls_t *c, *s;
    int rc = 0, cdone = 0, sdone = 0;
    size_t wire = 0, ka = 0;

    /* a fresh connection: handshake, request, response, close_notify both ways */
    c = px_tls_new(h->cctx, "localhost");
    s = px_tls_new(h->sctx, NULL);
    if (!c || !s) {
        rc = PX_ENOMEM;
        goto out;
    }
    for (int round = 0; round < 16 && !(cdone && sdone); round++) {
        if (!cdone && (rc = px_tls_handshake(c)) == 0)
            cdone = 1;
        else if (!cdone && rc != PX_EAGAIN)
            goto out;
        wire += xfer(c, s, NULL, 0, NULL);
        if (!sdone && (rc = px_tls_handshake(s)) == 0)
            sdone = 1;
        else if (!sdone && rc != PX_EAGAIN)
            goto out;
        wire += xfer(s, c, NULL, 0, NULL);
    }
    rc = PX_ETLS;
    if (!(cdone && sdone))
        goto out;
    {
        size_t before = wire;
        if ((rc = pipe_plain(c, s, req, &wire)) != 0 || (rc = pipe_plain(s, c, resp, &wire)) != 0)
            goto out;
        ka = wire - before;   /* what the same exchange costs on a kept-alive connection */
    }
    px_tls_shutdown(c);
    wire += xfer(c, s, NULL, 0, NULL);
    px_tls_shutdown(s);
    wire += xfer(s, c, NULL, 0, NULL);
    *total = wire;
    *keepalive = ka;
    rc = 0;
out:
    px_tls_free(c);
    px_tls_free(s);
    return rc;
}

/* A typical inference exchange: the demo model's predict call as curl sends it. */
#define INFER_REQ_HEAD                                                              \
    "POST /v1/models/half_plus_two:predict HTTP/1.1\r\nHost: localhost:8443\r\n" \
    "User-Agent: curl/7.88.1\r\nAccept: */*\r\nContent-Type: application/json\r\n" \
    "Content-Length: 27\r\n\r\n"
#define INFER_REQ_BODY "{\"instances\":[1.0,2.0,5.0]}"
#define INFER_RESP_HEAD                                                             \
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 33\r\n" \
    "Date: Mon, 01 Jan 2026 00:00:00 GMT\r\n\r\n"
#define INFER_RESP_BODY "{\"predictions\": [2.5, 3.0, 4.5]}\n"

/* --- sizes of encoded objects ---------------------------------------------------------- */

typedef struct {
    const char *alg, *standard;
    int available;
    long pub, priv, out;          /* -1: n/a */
    const char *out_kind;         /* "signature", "ciphertext", "key share", ... */
    const char *encoding;
    long fips_pub, fips_priv, fips_out;   /* the standard's fixed sizes, -1 if not fixed */
    const char *article;          /* the article's row name, or NULL */
    long art_pub, art_priv, art_out;
} size_row_t;

enum {
    S_RSA, S_P256, S_P384, S_X25519, S_ED25519,
    S_MLKEM512, S_MLKEM768, S_MLKEM1024, S_MLDSA44, S_MLDSA65, S_MLDSA87,
    S_HYBRID, S_FALCON1024, S_SPHINCS, S_COUNT
};

static int sizes_collect(bench_t *b, size_row_t *z, rsa_st *rsa, ecc_st *p256, ecc_st *p384, c25519_st *c,
                         mlkem_st *kem, mldsa_st *dsa)
{
    static const size_row_t defs[S_COUNT] = {
        { "RSA-2048", "RFC 8017", 1, 0, 0, 0, "signature", "SubjectPublicKeyInfo DER / PKCS#1 RSAPrivateKey DER / raw",
          -1, -1, 256, NULL, -1, -1, -1 },
        { "ECDSA P-256", "FIPS 186-5", 1, 0, 0, 0, "signature", "uncompressed point / scalar / DER (r,s), varies",
          65, 32, -1, NULL, -1, -1, -1 },
        { "ECDSA P-384", "FIPS 186-5", 1, 0, 0, 0, "signature", "uncompressed point / scalar / DER (r,s), varies",
          97, 48, -1, NULL, -1, -1, -1 },
        { "X25519", "RFC 7748", 1, 0, 0, 0, "key share", "raw", 32, 32, 32, NULL, -1, -1, -1 },
        { "Ed25519", "RFC 8032", 1, 0, 0, 0, "signature", "raw", 32, 32, 64, NULL, -1, -1, -1 },
        { "ML-KEM-512", "FIPS 203", 1, 0, 0, 0, "ciphertext", "FIPS 203 ek / dk / c", 800, 1632, 768, NULL, -1, -1, -1 },
        { "ML-KEM-768", "FIPS 203", 1, 0, 0, 0, "ciphertext", "FIPS 203 ek / dk / c", 1184, 2400, 1088, NULL, -1, -1, -1 },
        { "ML-KEM-1024", "FIPS 203", 1, 0, 0, 0, "ciphertext", "FIPS 203 ek / dk / c", 1568, 3168, 1568,
          "Kyber-1024", -1, -1, -1 },
        { "ML-DSA-44", "FIPS 204", 1, 0, 0, 0, "signature", "FIPS 204 pk / expanded sk (seed form: 32) / sig",
          1312, 2560, 2420, NULL, -1, -1, -1 },
        { "ML-DSA-65", "FIPS 204", 1, 0, 0, 0, "signature", "FIPS 204 pk / expanded sk (seed form: 32) / sig",
          1952, 4032, 3309, NULL, -1, -1, -1 },
        { "ML-DSA-87", "FIPS 204", 1, 0, 0, 0, "signature", "FIPS 204 pk / expanded sk (seed form: 32) / sig",
          2592, 4896, 4627, "Dilithium-5", 2592, 4860, 4595 },
        { "X25519MLKEM768", "FIPS 203 + RFC 7748", 1, 0, 0, 0, "server key share",
          "client key share (ek || X25519) / client secrets (dk + X25519) / server key share (c || X25519)",
          1216, 2432, 1120, NULL, -1, -1, -1 },
        { "Falcon-1024", "(FN-DSA, FIPS 206 draft)", 0, -1, -1, -1, "signature", "not in this build", -1, -1, -1,
          "Falcon-1024", 1793, 1281, 1330 },
        { "SPHINCS+ / SLH-DSA", "FIPS 205", 0, -1, -1, -1, "signature", "not in this build", -1, -1, -1, NULL, -1,
          -1, -1 },
    };
    byte buf[8192];
    word32 len;
    int r;

    memcpy(z, defs, sizeof defs);
    /* RSA */
    r = wc_RsaKeyToPublicDer(&rsa->key, buf, sizeof buf);
    z[S_RSA].pub = r;
    r = wc_RsaKeyToDer(&rsa->key, buf, sizeof buf);
    z[S_RSA].priv = r;
    z[S_RSA].out = rsa->siglen;
    /* ECDSA */
    for (int i = 0; i < 2; i++) {
        ecc_st *e = i ? p384 : p256;
        size_row_t *row = &z[i ? S_P384 : S_P256];
        len = sizeof buf;
        row->pub = wc_ecc_export_x963(&e->key, buf, &len) == 0 ? (long)len : -1;
        len = sizeof buf;
        row->priv = wc_ecc_export_private_only(&e->key, buf, &len) == 0 ? (long)len : -1;
        row->out = e->siglen;
    }
    /* X25519, Ed25519 */
    len = sizeof buf;
    z[S_X25519].pub = wc_curve25519_export_public_ex(&c->a, buf, &len, EC25519_LITTLE_ENDIAN) == 0 ? (long)len : -1;
    len = sizeof buf;
    z[S_X25519].priv = wc_curve25519_export_private_raw_ex(&c->a, buf, &len, EC25519_LITTLE_ENDIAN) == 0 ? (long)len
                                                                                                        : -1;
    z[S_X25519].out = z[S_X25519].pub;
    len = sizeof buf;
    z[S_ED25519].pub = wc_ed25519_export_public(&c->ed, buf, &len) == 0 ? (long)len : -1;
    len = sizeof buf;
    z[S_ED25519].priv = wc_ed25519_export_private_only(&c->ed, buf, &len) == 0 ? (long)len : -1;
    z[S_ED25519].out = c->siglen;
    /* ML-KEM: the encoders are given the size the key reports */
    for (int i = 0; i < 3; i++) {
        size_row_t *row = &z[S_MLKEM512 + i];
        word32 pl = 0, sl = 0, cl = 0;
        if (wc_MlKemKey_PublicKeySize(&kem[i].key, &pl) == 0 && pl <= sizeof buf &&
            wc_MlKemKey_EncodePublicKey(&kem[i].key, buf, pl) == 0)
            row->pub = pl;
        if (wc_MlKemKey_PrivateKeySize(&kem[i].key, &sl) == 0 && sl <= sizeof buf &&
            wc_MlKemKey_EncodePrivateKey(&kem[i].key, buf, sl) == 0)
            row->priv = sl;
        if (wc_MlKemKey_CipherTextSize(&kem[i].key, &cl) == 0)
            row->out = cl;
    }
    /* ML-DSA */
    for (int i = 0; i < 3; i++) {
        size_row_t *row = &z[S_MLDSA44 + i];
        len = sizeof buf;
        row->pub = wc_MlDsaKey_ExportPubRaw(&dsa[i].key, buf, &len) == 0 ? (long)len : -1;
        len = sizeof buf;
        row->priv = wc_MlDsaKey_ExportPrivRaw(&dsa[i].key, buf, &len) == 0 ? (long)len : -1;
        row->out = dsa[i].siglen;
    }
    /* the hybrid group's key shares are the concatenations */
    z[S_HYBRID].pub = z[S_MLKEM768].pub + z[S_X25519].pub;
    z[S_HYBRID].priv = z[S_MLKEM768].priv + z[S_X25519].priv;
    z[S_HYBRID].out = z[S_MLKEM768].out + z[S_X25519].pub;
    (void)b;
    return 0;
}

/* --- output ------------------------------------------------------------------------------ */

typedef struct {
    const char *name;
    hs_wire_t *w;
} tls_case_t;

static void machine_info(char *cpu, size_t cpulen, char *kernel, size_t klen)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    struct utsname u;
    snprintf(cpu, cpulen, "unknown");
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *p = strchr(line, ':');
            if (p) {
                p++;
                while (*p == ' ')
                    p++;
                p[strcspn(p, "\n")] = 0;
                snprintf(cpu, cpulen, "%s", p);
            }
            break;
        }
    }
    if (f)
        fclose(f);
    if (uname(&u) == 0)
        snprintf(kernel, klen, "%s %s %s", u.sysname, u.release, u.machine);
    else
        snprintf(kernel, klen, "unknown");
}

static void fmt_ms(char *out, size_t n, double us)
{
    if (us >= 1000)
        snprintf(out, n, "%.2f ms", us / 1000);
    else if (us >= 10)
        snprintf(out, n, "%.1f µs", us);
    else
        snprintf(out, n, "%.2f µs", us);
}

static void fmt_size(char *out, size_t n, long v)
{
    if (v < 0)
        snprintf(out, n, "–");
    else if (v >= 1000)
        snprintf(out, n, "%ld,%03ld", v / 1000, v % 1000);
    else
        snprintf(out, n, "%ld", v);
}

/* The server handshake against the sum of its primitives, measured in
 * interleaved rounds (primitives, handshake, primitives, ...): on a shared
 * machine the speed drifts by more than the difference being judged, and
 * rows measured one after the other minutes apart carry that drift into
 * their ratio. The median over rounds is reported. */
#define HSR_MAX_ROUNDS 9

typedef struct {
    int rounds;
    double hs_us[HSR_MAX_ROUNDS], prim_us[HSR_MAX_ROUNDS], ratio[HSR_MAX_ROUNDS];
    double median;
} hs_ratio_t;

typedef struct {
    const row_t *rows;
    const size_row_t *sizes;
    const tls_case_t *tls;
    int ntls;
    const bw_row_t *bw;
    int nbw;
    const char *mode;
    int rc;
    const char *failmsg;
    const hs_ratio_t *hsr;          /* interleaved rounds, or NULL */
} report_t;

static double row_cpu(const report_t *rp, int i)
{
    return rp->rows[i].ran && rp->rows[i].ok ? rp->rows[i].op_cpu_us : 0;
}

static void print_markdown(const report_t *rp, FILE *out)
{
    char cpu[256], kernel[256], date[64], a[32], b[32], c[32], d[32];
    time_t t = time(NULL);
    const char *last_section = "";
    machine_info(cpu, sizeof cpu, kernel, sizeof kernel);
    strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&t));

    fprintf(out, "# pqproxy bench crypto\n\n");
    fprintf(out, "wolfSSL %s · %s · %ld CPUs · %s · %s · mode: %s\n\n", wolfSSL_lib_version(), cpu,
            sysconf(_SC_NPROCESSORS_ONLN), kernel, date, rp->mode);
    if (rp->rc)
        fprintf(out, "**FAILED:** %s\n\n", rp->failmsg);

    fprintf(out, "## Table 1: time per operation\n\n");
    fprintf(out, "Median and p99 of single calls (CLOCK_MONOTONIC), ops/s = 1 / mean; CPU = thread CPU time per\n"
                 "call. The article's figures (Kyber-1024 = ML-KEM-1024, Dilithium-5 = ML-DSA-87) are beside them.\n"
                 "What the clock reads around an empty span (%.0f ns wall, %.0f ns CPU) is taken off every timed span.\n\n",
            span_cost_wall, span_cost_cpu);
    fprintf(out, "| algorithm | standard | operation | article | median | p99 | ops/s | CPU/op | n |\n");
    fprintf(out, "|---|---|---|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < R_COUNT; i++) {
        const row_t *r = &rp->rows[i];
        if (strcmp(last_section, r->section) != 0) {
            fprintf(out, "| **%s** | | | | | | | | |\n", r->section);
            last_section = r->section;
        }
        if (r->article_ms > 0)
            snprintf(d, sizeof d, "%.1f ms", r->article_ms);
        else
            snprintf(d, sizeof d, "–");
        if (!r->ran) {
            fprintf(out, "| %s | %s | %s | %s | not run | | | | |\n", r->alg, r->standard, r->op, d);
            continue;
        }
        if (!r->ok) {
            fprintf(out, "| %s | %s | %s | %s | FAILED | | | | |\n", r->alg, r->standard, r->op, d);
            continue;
        }
        fmt_ms(a, sizeof a, r->median_us);
        fmt_ms(b, sizeof b, r->p99_us);
        fmt_ms(c, sizeof c, r->op_cpu_us);
        fprintf(out, "| %s | %s | %s | %s | %s | %s | %.0f | %s | %zu |\n", r->alg, r->standard, r->op, d, a, b,
                r->ops_s, c, r->n);
    }
    {
        double wall = 0, pcpu = 0;
        for (int i = 0; i < R_COUNT; i++)
            if (rp->rows[i].ran) {
                wall += rp->rows[i].wall_s;
                pcpu += rp->rows[i].cpu_s;
            }
        fprintf(out, "\nTotals: %.2f s wall, %.2f s process CPU (CLOCK_PROCESS_CPUTIME_ID, set-up included).\n",
                wall, pcpu);
    }
    /* The handshake against the sum of its primitives. */
    if (rp->rows[R_TLS_HYB_SERVER].ok && rp->rows[R_HYB_SERVER].ok && rp->rows[R_P256_SIGN].ok) {
        double prim = row_cpu(rp, R_HYB_SERVER) + row_cpu(rp, R_P256_SIGN);
        fmt_ms(a, sizeof a, prim);
        fmt_ms(b, sizeof b, row_cpu(rp, R_TLS_HYB_SERVER));
        fprintf(out, "\nServer CPU per X25519MLKEM768 handshake: %s; sum of its primitives (server encaps + X25519, "
                     "ECDSA P-256 sign): %s; ratio %.2f.\n", b, a, row_cpu(rp, R_TLS_HYB_SERVER) / prim);
    }
    if (rp->hsr && rp->hsr->rounds) {
        fprintf(out, "Interleaved (primitives, then the handshake, %d rounds): ratio ", rp->hsr->rounds);
        for (int i = 0; i < rp->hsr->rounds; i++)
            fprintf(out, "%s%.2f", i ? ", " : "", rp->hsr->ratio[i]);
        fprintf(out, "; median %.2f.\n", rp->hsr->median);
    }

    fprintf(out, "\n## Table 2: sizes in bytes\n\n");
    fprintf(out, "From real encoded objects of this build; \"FIPS\" checks the measured sizes against the "
                 "standard's fixed sizes.\n\n");
    fprintf(out, "| algorithm | standard | public key | private key | ciphertext / signature | article (pk / sk / sig) "
                 "| FIPS | encoding |\n");
    fprintf(out, "|---|---|---:|---:|---:|---|---|---|\n");
    for (int i = 0; i < S_COUNT; i++) {
        const size_row_t *z = &rp->sizes[i];
        char art[96] = "–";
        const char *fips = "–";
        if (z->article) {
            char p1[16], p2[16], p3[16];
            fmt_size(p1, sizeof p1, z->art_pub);
            fmt_size(p2, sizeof p2, z->art_priv);
            fmt_size(p3, sizeof p3, z->art_out);
            if (z->art_pub >= 0)
                snprintf(art, sizeof art, "%s: %s / %s / %s", z->article, p1, p2, p3);
            else
                snprintf(art, sizeof art, "%s: sizes not given", z->article);
        }
        if (!z->available) {
            fprintf(out, "| %s | %s | not in this build | | | %s | | |\n", z->alg, z->standard, art);
            continue;
        }
        if (z->fips_pub >= 0 || z->fips_out >= 0)
            fips = (z->fips_pub < 0 || z->fips_pub == z->pub) && (z->fips_priv < 0 || z->fips_priv == z->priv) &&
                           (z->fips_out < 0 || z->fips_out == z->out)
                       ? "✓"
                       : "✗ MISMATCH";
        fmt_size(a, sizeof a, z->pub);
        fmt_size(b, sizeof b, z->priv);
        fmt_size(c, sizeof c, z->out);
        fprintf(out, "| %s | %s | %s | %s | %s (%s) | %s | %s | %s |\n", z->alg, z->standard, a, b, c, z->out_kind, art,
                fips, z->encoding);
    }

    fprintf(out, "\n## TLS 1.3 handshake bytes (in-memory handshake, pqproxy server, session ticket included)\n\n");
    fprintf(out, "| key exchange, certificate | ClientHello | ServerHello | server flight | Certificate msg | "
                 "CertificateVerify msg | client→server | server→client | total |\n");
    fprintf(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < rp->ntls; i++) {
        const hs_wire_t *w = rp->tls[i].w;
        if (!w)
            continue;
        fprintf(out, "| %s | %zu | %zu | %zu | %zu | %zu | %zu | %zu | %zu |\n", rp->tls[i].name, w->client_hello,
                w->server_hello, w->server_flight, w->records_split ? w->certificate_msg : w->cert_msg_computed,
                w->certificate_verify_msg, w->client_to_server, w->server_to_client,
                w->client_to_server + w->server_to_client);
    }

    if (rp->nbw) {
        fprintf(out, "\n## Bandwidth: X25519MLKEM768 vs X25519 (the article claims +15-25%% for gradient exchange)\n\n");
        fprintf(out, "Whole connection (handshake, one exchange, close_notify both ways), ECDSA P-256 certificate. "
                     "On a kept-alive connection\nthe per-request bytes do not depend on the group.\n\n");
        fprintf(out, "| exchange | request body | response body | X25519 | X25519MLKEM768 | increase | "
                     "keep-alive: X25519 / hybrid |\n");
        fprintf(out, "|---|---:|---:|---:|---:|---:|---:|\n");
        for (int i = 0; i < rp->nbw; i++) {
            const bw_row_t *w = &rp->bw[i];
            double inc = w->classical ? 100.0 * ((double)w->hybrid - (double)w->classical) / (double)w->classical : 0;
            fprintf(out, "| %s | %zu | %zu | %zu | %zu | %+.2f%% | %zu / %zu |\n", w->name, w->req_body, w->resp_body,
                    w->classical, w->hybrid, inc, w->keepalive_classical, w->keepalive_hybrid);
        }
    }
    fprintf(out, "\nMachine-readable: `pqproxy bench crypto --json`.\n");
}

static cJSON *num_or_null(double v)
{
    return v < 0 ? cJSON_CreateNull() : cJSON_CreateNumber(v);
}

static void print_json(const report_t *rp, FILE *out)
{
    cJSON *root = cJSON_CreateObject(), *m = cJSON_CreateObject(), *ops = cJSON_CreateArray(),
          *sizes = cJSON_CreateArray(), *tls = cJSON_CreateObject(), *bw = cJSON_CreateArray();
    char cpu[256], kernel[256], date[64], *s;
    time_t t = time(NULL);
    machine_info(cpu, sizeof cpu, kernel, sizeof kernel);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));

    cJSON_AddStringToObject(root, "schema", "pqproxy-bench-crypto/1");
    cJSON_AddStringToObject(root, "wolfssl", wolfSSL_lib_version());
    cJSON_AddStringToObject(m, "cpu", cpu);
    cJSON_AddNumberToObject(m, "cpus", (double)sysconf(_SC_NPROCESSORS_ONLN));
    cJSON_AddStringToObject(m, "kernel", kernel);
    cJSON_AddItemToObject(root, "machine", m);
    cJSON_AddStringToObject(root, "date", date);
    cJSON_AddStringToObject(root, "mode", rp->mode);
    {
        cJSON *sc = cJSON_CreateObject();
        cJSON_AddNumberToObject(sc, "wall", span_cost_wall);
        cJSON_AddNumberToObject(sc, "cpu", span_cost_cpu);
        cJSON_AddItemToObject(root, "empty_span_ns", sc);
    }
    if (rp->hsr && rp->hsr->rounds) {
        cJSON *h = cJSON_CreateObject(), *arr = cJSON_CreateArray();
        for (int i = 0; i < rp->hsr->rounds; i++) {
            cJSON *r = cJSON_CreateObject();
            cJSON_AddNumberToObject(r, "handshake_cpu_us", rp->hsr->hs_us[i]);
            cJSON_AddNumberToObject(r, "primitives_cpu_us", rp->hsr->prim_us[i]);
            cJSON_AddNumberToObject(r, "ratio", rp->hsr->ratio[i]);
            cJSON_AddItemToArray(arr, r);
        }
        cJSON_AddStringToObject(h, "handshake", row_ids[R_TLS_HYB_SERVER]);
        cJSON_AddStringToObject(h, "primitives", "x25519mlkem768/server-encaps-x25519 + ecdsa-p256/sign");
        cJSON_AddItemToObject(h, "rounds", arr);
        cJSON_AddNumberToObject(h, "median_ratio", rp->hsr->median);
        cJSON_AddItemToObject(root, "handshake_vs_primitives", h);
    }
    cJSON_AddBoolToObject(root, "ok", rp->rc == 0);
    if (rp->rc)
        cJSON_AddStringToObject(root, "error", rp->failmsg);

    for (int i = 0; i < R_COUNT; i++) {
        const row_t *r = &rp->rows[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", row_ids[i]);
        cJSON_AddStringToObject(o, "section", r->section);
        cJSON_AddStringToObject(o, "algorithm", r->alg);
        cJSON_AddStringToObject(o, "standard", r->standard);
        cJSON_AddStringToObject(o, "operation", r->op);
        cJSON_AddBoolToObject(o, "ran", r->ran);
        cJSON_AddBoolToObject(o, "ok", r->ran && r->ok);
        cJSON_AddNumberToObject(o, "iterations", (double)r->n);
        cJSON_AddItemToObject(o, "median_us", num_or_null(r->ran && r->ok ? r->median_us : -1));
        cJSON_AddItemToObject(o, "p99_us", num_or_null(r->ran && r->ok ? r->p99_us : -1));
        cJSON_AddItemToObject(o, "mean_us", num_or_null(r->ran && r->ok ? r->mean_us : -1));
        cJSON_AddItemToObject(o, "min_us", num_or_null(r->ran && r->ok ? r->min_us : -1));
        cJSON_AddItemToObject(o, "max_us", num_or_null(r->ran && r->ok ? r->max_us : -1));
        cJSON_AddItemToObject(o, "ops_per_s", num_or_null(r->ran && r->ok ? r->ops_s : -1));
        cJSON_AddItemToObject(o, "cpu_us_per_op", num_or_null(r->ran && r->ok ? r->op_cpu_us : -1));
        cJSON_AddItemToObject(o, "wall_s", num_or_null(r->ran ? r->wall_s : -1));
        cJSON_AddItemToObject(o, "process_cpu_s", num_or_null(r->ran ? r->cpu_s : -1));
        if (r->article) {
            cJSON *a = cJSON_CreateObject();
            cJSON_AddStringToObject(a, "name", r->article);
            cJSON_AddNumberToObject(a, "ms", r->article_ms);
            cJSON_AddItemToObject(o, "article", a);
        } else {
            cJSON_AddNullToObject(o, "article");
        }
        if (r->note)
            cJSON_AddStringToObject(o, "note", r->note);
        cJSON_AddItemToArray(ops, o);
    }
    cJSON_AddItemToObject(root, "operations", ops);

    for (int i = 0; i < S_COUNT; i++) {
        const size_row_t *z = &rp->sizes[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "algorithm", z->alg);
        cJSON_AddStringToObject(o, "standard", z->standard);
        cJSON_AddBoolToObject(o, "available", z->available);
        cJSON_AddItemToObject(o, "public_key", num_or_null((double)z->pub));
        cJSON_AddItemToObject(o, "private_key", num_or_null((double)z->priv));
        cJSON_AddItemToObject(o, "output", num_or_null((double)z->out));
        cJSON_AddStringToObject(o, "output_kind", z->out_kind);
        cJSON_AddStringToObject(o, "encoding", z->encoding);
        if (z->article) {
            cJSON *a = cJSON_CreateObject();
            cJSON_AddStringToObject(a, "name", z->article);
            cJSON_AddItemToObject(a, "public_key", num_or_null((double)z->art_pub));
            cJSON_AddItemToObject(a, "private_key", num_or_null((double)z->art_priv));
            cJSON_AddItemToObject(a, "output", num_or_null((double)z->art_out));
            cJSON_AddItemToObject(o, "article", a);
        } else {
            cJSON_AddNullToObject(o, "article");
        }
        cJSON_AddItemToArray(sizes, o);
    }
    cJSON_AddItemToObject(root, "sizes", sizes);

    for (int i = 0; i < rp->ntls; i++) {
        const hs_wire_t *w = rp->tls[i].w;
        cJSON *o = cJSON_CreateObject();
        if (w) {
            cJSON_AddNumberToObject(o, "client_hello", (double)w->client_hello);
            cJSON_AddNumberToObject(o, "server_hello", (double)w->server_hello);
            cJSON_AddNumberToObject(o, "server_flight", (double)w->server_flight);
            cJSON_AddNumberToObject(o, "certificate_msg",
                                    (double)(w->records_split ? w->certificate_msg : w->cert_msg_computed));
            cJSON_AddNumberToObject(o, "certificate_msg_computed", (double)w->cert_msg_computed);
            cJSON_AddNumberToObject(o, "certificate_verify_msg", (double)w->certificate_verify_msg);
            cJSON_AddNumberToObject(o, "certificate_der", (double)w->cert_chain_der);
            cJSON_AddNumberToObject(o, "client_to_server", (double)w->client_to_server);
            cJSON_AddNumberToObject(o, "server_to_client", (double)w->server_to_client);
            cJSON_AddNumberToObject(o, "total", (double)(w->client_to_server + w->server_to_client));
        }
        cJSON_AddItemToObject(tls, rp->tls[i].name, o);
    }
    cJSON_AddItemToObject(root, "tls_handshake_bytes", tls);

    for (int i = 0; i < rp->nbw; i++) {
        const bw_row_t *w = &rp->bw[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "exchange", w->name);
        cJSON_AddNumberToObject(o, "request_bytes", (double)w->req_body);
        cJSON_AddNumberToObject(o, "response_bytes", (double)w->resp_body);
        cJSON_AddNumberToObject(o, "X25519", (double)w->classical);
        cJSON_AddNumberToObject(o, "X25519MLKEM768", (double)w->hybrid);
        cJSON_AddNumberToObject(o, "increase_pct",
                                w->classical ? 100.0 * ((double)w->hybrid - (double)w->classical) / (double)w->classical
                                             : 0);
        cJSON_AddNumberToObject(o, "keepalive_X25519", (double)w->keepalive_classical);
        cJSON_AddNumberToObject(o, "keepalive_X25519MLKEM768", (double)w->keepalive_hybrid);
        cJSON_AddItemToArray(bw, o);
    }
    cJSON_AddItemToObject(root, "bandwidth", bw);

    s = cJSON_Print(root);
    if (s) {
        fputs(s, out);
        fputc('\n', out);
        free(s);
    }
    cJSON_Delete(root);
}

/* --- the run ----------------------------------------------------------------------------- */

static void hs_ratio_measure(bench_t *b, int rounds, size_t n, hyb_st *hyb, ecc_st *p256, hs_st *hs,
                             hs_ratio_t *out)
{
    size_t saved = b->exact_n;
    double sorted[HSR_MAX_ROUNDS];

    memset(out, 0, sizeof *out);
    b->exact_n = n;
    for (int i = 0; i < rounds && !b->failed; i++) {
        row_t kem, sign, srv, cli;
        memset(&kem, 0, sizeof kem);
        memset(&sign, 0, sizeof sign);
        memset(&srv, 0, sizeof srv);
        memset(&cli, 0, sizeof cli);
        kem.id = sign.id = srv.id = cli.id = "handshake ratio round";
        measure(b, &kem, NULL, b_hyb_server, b_hyb_server_prep, b_hyb_server_post, hyb);
        measure(b, &sign, NULL, b_ecc_sign, NULL, NULL, p256);
        measure(b, &srv, &cli, hs_op, NULL, NULL, hs);
        if (b->failed)
            break;
        out->hs_us[i] = srv.op_cpu_us;
        out->prim_us[i] = kem.op_cpu_us + sign.op_cpu_us;
        out->ratio[i] = out->prim_us[i] > 0 ? out->hs_us[i] / out->prim_us[i] : 0;
        sorted[i] = out->ratio[i];
        out->rounds = i + 1;
    }
    b->exact_n = saved;
    if (out->rounds) {
        qsort(sorted, (size_t)out->rounds, sizeof *sorted, cmp_double);
        out->median = sorted[out->rounds / 2];
    }
}

#define RUN(idx, fn, prep, post, st)                            \
    do {                                                         \
        if (!b->failed && selected(b, &rows[idx]))               \
            measure(b, &rows[idx], NULL, fn, prep, post, st);    \
    } while (0)

int px_bench_crypto(const px_bench_opts_t *o, FILE *out)
{
    bench_t bench, *b = &bench;
    row_t rows[R_COUNT];
    size_row_t sizes[S_COUNT];
    rsa_st rsa;
    ecc_st p256, p384;
    c25519_st c;
    mlkem_st kem[3];
    mldsa_st dsa[3];
    hyb_st hyb;
    dual_st dual;
    hs_st hs[3];
    hs_wire_t *wires[3] = { 0 };
    bw_row_t bw[3];
    int nbw = 0, rc;
    pki_t pki;
    char err[512] = "";
    tls_case_t tls_cases[3];
    report_t rp;
    hs_ratio_t hsr;
    int have_hsr = 0;

    memset(b, 0, sizeof *b);
    memset(&rsa, 0, sizeof rsa);
    memset(&p256, 0, sizeof p256);
    memset(&p384, 0, sizeof p384);
    memset(&c, 0, sizeof c);
    memset(kem, 0, sizeof kem);
    memset(dsa, 0, sizeof dsa);
    memset(&hyb, 0, sizeof hyb);
    memset(hs, 0, sizeof hs);
    memset(bw, 0, sizeof bw);
    memset(&pki, 0, sizeof pki);
    memcpy(rows, row_defs, sizeof rows);
    for (int i = 0; i < R_COUNT; i++)
        rows[i].id = row_ids[i];
    span_calibrate();
    b->only = o->only;
    if (o->iterations > 0) {
        b->exact_n = (size_t)o->iterations;
    } else if (o->quick) {
        b->min_n = 20;
        b->min_s = 0.05;
        b->cap_s = 0.3;
        b->cap_min_n = 3;
    } else {
        b->min_n = 200;
        b->min_s = 0.5;
        b->cap_s = 3.0;
        b->cap_min_n = 5;
    }

    if (px_tls_global_init() != 0 || wc_InitRng(&b->rng) != 0) {
        fprintf(stderr, "bench: wolfSSL initialisation failed\n");
        return 1;
    }
    rsa.rng = p256.rng = p384.rng = c.rng = hyb.rng = &b->rng;

    /* --- set-up: one long-lived key of each kind (untimed) --- */
    wc_Sha256Hash(msg64, sizeof msg64, rsa.hash);
    rc = wc_InitRsaKey(&rsa.key, NULL);
    if (!rc)
        rc = wc_MakeRsaKey(&rsa.key, 2048, WC_RSA_EXPONENT, &b->rng);
#ifdef WC_RSA_BLINDING
    if (!rc)
        rc = wc_RsaSetRNG(&rsa.key, &b->rng);
#endif
    if (!rc) {
        double ns[2];
        rc = b_rsa_sign(&rsa, ns, ns);
    }
    p256.curve = ECC_SECP256R1;
    p256.size = 32;
    p256.hlen = 32;
    wc_Sha256Hash(msg64, sizeof msg64, p256.hash);
    p384.curve = ECC_SECP384R1;
    p384.size = 48;
    p384.hlen = 48;
    wc_Sha384Hash(msg64, sizeof msg64, p384.hash);
    for (int i = 0; i < 2 && !rc; i++) {
        ecc_st *e = i ? &p384 : &p256;
        double ns[2];
        if ((rc = wc_ecc_init(&e->key)) == 0 && (rc = wc_ecc_make_key_ex(&b->rng, e->size, &e->key, e->curve)) == 0)
            rc = b_ecc_sign(e, ns, ns);
    }
    if (!rc && (rc = wc_curve25519_init(&c.a)) == 0 && (rc = wc_curve25519_init(&c.b)) == 0 &&
        (rc = wc_curve25519_make_key(&b->rng, CURVE25519_KEYSIZE, &c.a)) == 0)
        rc = wc_curve25519_make_key(&b->rng, CURVE25519_KEYSIZE, &c.b);
#ifdef WOLFSSL_CURVE25519_BLINDING
    if (!rc)
        wc_curve25519_set_rng(&c.a, &b->rng);
#endif
    if (!rc && (rc = wc_ed25519_init(&c.ed)) == 0 && (rc = wc_ed25519_make_key(&b->rng, ED25519_KEY_SIZE, &c.ed)) == 0) {
        double ns[2];
        rc = b_ed_sign(&c, ns, ns);
    }
    for (int i = 0; i < 3 && !rc; i++) {
        static const int types[3] = { WC_ML_KEM_512, WC_ML_KEM_768, WC_ML_KEM_1024 };
        static const byte levels[3] = { WC_ML_DSA_44, WC_ML_DSA_65, WC_ML_DSA_87 };
        kem[i].rng = dsa[i].rng = &b->rng;
        kem[i].type = types[i];
        dsa[i].level = levels[i];
        if ((rc = b_mlkem_setup(&kem[i])) == 0)
            rc = b_mldsa_setup(&dsa[i]);
    }
    if (!rc)
        rc = b_hyb_setup(&hyb);
    if (rc) {
        snprintf(b->failmsg, sizeof b->failmsg, "key set-up failed (wolfSSL error %d)", rc);
        b->failed = 1;
    }
    dual.ec = &p384;
    dual.pq = &dsa[2];

    /* --- classical --- */
    RUN(R_RSA_KEYGEN, b_rsa_keygen, b_rsa_prep, b_rsa_post, &rsa);
    RUN(R_RSA_SIGN, b_rsa_sign, NULL, NULL, &rsa);
    RUN(R_RSA_VERIFY, b_rsa_verify, NULL, NULL, &rsa);
    RUN(R_P256_KEYGEN, b_ecc_keygen, b_ecc_prep, b_ecc_post, &p256);
    RUN(R_P256_SIGN, b_ecc_sign, NULL, NULL, &p256);
    RUN(R_P256_VERIFY, b_ecc_verify, NULL, NULL, &p256);
    RUN(R_P384_KEYGEN, b_ecc_keygen, b_ecc_prep, b_ecc_post, &p384);
    RUN(R_P384_SIGN, b_ecc_sign, NULL, NULL, &p384);
    RUN(R_P384_VERIFY, b_ecc_verify, NULL, NULL, &p384);
    RUN(R_X25519_KEYGEN, b_x25519_keygen, b_x25519_prep, b_x25519_post, &c);
    RUN(R_X25519_SHARED, b_x25519_shared, NULL, NULL, &c);
    RUN(R_ED25519_KEYGEN, b_ed_keygen, b_ed_prep, b_ed_post, &c);
    RUN(R_ED25519_SIGN, b_ed_sign, NULL, NULL, &c);
    RUN(R_ED25519_VERIFY, b_ed_verify, NULL, NULL, &c);
    /* --- post-quantum --- */
    for (int i = 0; i < 3; i++) {
        RUN(R_MLKEM512_KEYGEN + 3 * i, b_mlkem_keygen, b_mlkem_prep, b_mlkem_post, &kem[i]);
        RUN(R_MLKEM512_ENCAPS + 3 * i, b_mlkem_encaps, NULL, NULL, &kem[i]);
        RUN(R_MLKEM512_DECAPS + 3 * i, b_mlkem_decaps, NULL, NULL, &kem[i]);
    }
    for (int i = 0; i < 3; i++) {
        RUN(R_MLDSA44_KEYGEN + 3 * i, b_mldsa_keygen, b_mldsa_prep, b_mldsa_post, &dsa[i]);
        RUN(R_MLDSA44_SIGN + 3 * i, b_mldsa_sign, NULL, NULL, &dsa[i]);
        RUN(R_MLDSA44_VERIFY + 3 * i, b_mldsa_verify, NULL, NULL, &dsa[i]);
    }
    RUN(R_MLDSA87_VERIFY_FRESH, b_mldsa_verify_fresh, b_mldsa_prep, b_mldsa_post, &dsa[2]);
    /* --- the combinations pqproxy uses --- */
    RUN(R_HYB_CLIENT_KEYGEN, b_hyb_client_keygen, b_hyb_client_prep, b_hyb_client_post, &hyb);
    RUN(R_HYB_SERVER, b_hyb_server, b_hyb_server_prep, b_hyb_server_post, &hyb);
    RUN(R_HYB_CLIENT_FINISH, b_hyb_finish, NULL, NULL, &hyb);
    RUN(R_DUAL_SIGN, b_dual_sign, NULL, NULL, &dual);
    RUN(R_DUAL_VERIFY, b_dual_verify, NULL, NULL, &dual);

    /* --- whole handshakes, in memory --- */
    if (!b->failed) {
        static const struct { int mldsa; uint16_t group; int row; } cases[3] = {
            { 0, GROUP_X25519MLKEM768, R_TLS_HYB_SERVER },
            { 0, GROUP_X25519, R_TLS_X25519_SERVER },
            { 1, GROUP_X25519MLKEM768, R_TLS_HYB_MLDSA_SERVER },
        };
        if (pki_make(&pki, err, sizeof err) != 0) {
            b->failed = 1;
            snprintf(b->failmsg, sizeof b->failmsg, "%s", err);
        }
        for (int i = 0; i < 3 && !b->failed; i++) {
            if (hs_setup(&hs[i], &pki, cases[i].mldsa, cases[i].group, err, sizeof err) != 0) {
                b->failed = 1;
                snprintf(b->failmsg, sizeof b->failmsg, "TLS case %d: %s", i, err);
                break;
            }
            wires[i] = &hs[i].wire;
            if (selected(b, &rows[cases[i].row]) || selected(b, &rows[cases[i].row + 1]))
                measure(b, &rows[cases[i].row], &rows[cases[i].row + 1], hs_op, NULL, NULL, &hs[i]);
        }
        if (!b->failed && rows[R_TLS_HYB_SERVER].ok && rows[R_HYB_SERVER].ok && rows[R_P256_SIGN].ok) {
            size_t n = o->iterations > 0 ? (size_t)o->iterations : o->quick ? 100 : 400;
            hs_ratio_measure(b, o->iterations > 0 || o->quick ? 3 : 7, n, &hyb, &p256, &hs[0], &hsr);
            have_hsr = hsr.rounds > 0;
        }
        /* bytes for whole exchanges, X25519 vs X25519MLKEM768 (ECDSA certificate) */
        if (!b->failed) {
            static const struct { const char *name; size_t req, resp; } ex[3] = {
                { "inference: half_plus_two predict (JSON)", sizeof INFER_REQ_HEAD - 1 + sizeof INFER_REQ_BODY - 1,
                  sizeof INFER_RESP_HEAD - 1 + sizeof INFER_RESP_BODY - 1 },
                { "inference: 64 KiB tensor in, 4 KiB out", 65536 + 200, 4096 + 150 },
                { "gradient exchange: 16 MiB each way", 16u << 20, 16u << 20 },
            };
            for (int i = 0; i < 3; i++) {
                bw_row_t *w = &bw[i];
                w->name = ex[i].name;
                w->req_body = ex[i].req;
                w->resp_body = ex[i].resp;
                if ((rc = bw_measure(&hs[1], ex[i].req, ex[i].resp, &w->classical, &w->keepalive_classical)) != 0 ||
                    (rc = bw_measure(&hs[0], ex[i].req, ex[i].resp, &w->hybrid, &w->keepalive_hybrid)) != 0) {
                    b->failed = 1;
                    snprintf(b->failmsg, sizeof b->failmsg, "bandwidth exchange %d failed: %s", i, px_strerror(rc));
                    break;
                }
                nbw++;
            }
        }
    }

    sizes_collect(b, sizes, &rsa, &p256, &p384, &c, kem, dsa);

    tls_cases[0].name = "X25519MLKEM768, ECDSA P-256";
    tls_cases[0].w = wires[0];
    tls_cases[1].name = "X25519, ECDSA P-256";
    tls_cases[1].w = wires[1];
    tls_cases[2].name = "X25519MLKEM768, ML-DSA-65";
    tls_cases[2].w = wires[2];
    memset(&rp, 0, sizeof rp);
    rp.rows = rows;
    rp.sizes = sizes;
    rp.tls = tls_cases;
    rp.ntls = 3;
    rp.bw = bw;
    rp.nbw = nbw;
    rp.mode = o->iterations > 0 ? "fixed-iterations" : o->quick ? "quick" : "full";
    rp.rc = b->failed;
    rp.failmsg = b->failmsg;
    rp.hsr = have_hsr ? &hsr : NULL;
    if (o->json)
        print_json(&rp, out);
    else
        print_markdown(&rp, out);
    fflush(out);
    if (b->failed)
        fprintf(stderr, "bench: %s\n", b->failmsg);

    /* --- tear-down --- */
    for (int i = 0; i < 3; i++)
        hs_free(&hs[i]);
    if (pki.dir[0])
        pki_remove(&pki);
    wc_curve25519_free(&hyb.fx);
    wc_curve25519_free(&hyb.fpeer);
    wc_MlKemKey_Free(&hyb.fk);
    for (int i = 0; i < 3; i++) {
        wc_MlKemKey_Free(&kem[i].key);
        wc_MlKemKey_Free(&kem[i].pub);
        wc_MlDsaKey_Free(&dsa[i].key);
        free(dsa[i].sig);
    }
    wc_ed25519_free(&c.ed);
    wc_curve25519_free(&c.a);
    wc_curve25519_free(&c.b);
    wc_ecc_free(&p256.key);
    wc_ecc_free(&p384.key);
    wc_FreeRsaKey(&rsa.key);
    wc_FreeRng(&b->rng);
    return b->failed ? 1 : 0;
}

static int usage(void)
{
    printf("usage: pqproxy bench crypto [--quick] [--json] [--iterations N] [--only SUBSTRING]\n"
           "  Times wolfSSL's primitives, the hybrid combinations pqproxy uses and whole in-memory\n"
           "  TLS 1.3 handshakes on this machine; prints Markdown tables (or JSON) with sizes.\n"
           "  --quick          >= 20 iterations or ~50 ms per operation (default: >= 200 and >= 0.5 s)\n"
           "  --iterations N   exactly N iterations per operation\n"
           "  --only S[,S...]  time only operations whose id contains one of the S (e.g. mlkem768,tls13)\n"
           "  --json           machine-readable output (schema pqproxy-bench-crypto/1)\n"
           "usage: pqproxy bench seal [--size BYTES] [--json] ...   (pqproxy bench seal --help)\n");
    return 0;
}

int px_cmd_bench(int argc, char **argv)
{
    px_bench_opts_t o;
    const char *v;
    int r;

    memset(&o, 0, sizeof o);
    if (argc >= 2 && !strcmp(argv[1], "seal"))
        return px_cmd_bench_seal(argc, argv);
    for (int i = 1; i < argc; i++)
        if (px_cli_is_help(argv[i]))
            return usage();
    if (argc < 2)
        return px_cli_usage_error("bench", "which benchmark? (crypto, seal)");
    if (strcmp(argv[1], "crypto") != 0)
        return px_cli_usage_error("bench", "unknown benchmark '%s' (crypto, seal)", argv[1]);
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) {
            o.quick = 1;
        } else if (!strcmp(argv[i], "--json")) {
            o.json = 1;
        } else if ((r = px_cli_opt("bench", argc, argv, &i, "--iterations", &v)) > 0) {
            char *end;
            long n = strtol(v, &end, 10);
            if (*end || n < 1 || n > 1000000)
                return px_cli_usage_error("bench", "--iterations must be 1..1000000, not '%s'", v);
            o.iterations = (int)n;
        } else if (r == 0 && (r = px_cli_opt("bench", argc, argv, &i, "--only", &v)) > 0) {
            o.only = v;
        } else if (r < 0) {
            return 2;
        } else {
            return px_cli_unknown("bench", argv[i]);
        }
    }
    return px_bench_crypto(&o, stdout);
}
