/* `pqproxy bench seal` (bench_seal.h). */
#include "cmd/bench_seal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <wolfssl/options.h>
#include <wolfssl/version.h>
#include <wolfssl/wolfcrypt/chacha20_poly1305.h>

#include "cmd/cli.h"
#include "seal/age.h"

#define CHUNK PX_AGE_CHUNK
#define TAG   16
#define MAX_ROUNDS 15
#define MAX_ITER   1000

typedef enum { RAW_ENC, SEAL, RAW_DEC, OPEN, AEAD_MEM, N_TP } tp_t;

static const char *const tp_id[N_TP] = { "raw_encrypt", "seal", "raw_decrypt", "open", "aead_memory" };
static const char *const tp_label[N_TP] = {
    "raw ChaCha20-Poly1305 encrypt, file to file",
    "`px_age_seal`, one mlkem768x25519 recipient",
    "raw ChaCha20-Poly1305 decrypt, file to file",
    "`px_age_open`",
    "ChaCha20-Poly1305 in memory (no I/O)",
};

typedef struct {
    const char *type;
    px_age_kind_t kind;
    double seal_us, open_us;
    size_t stanza;        /* bytes one more recipient of this type adds */
} kind_row_t;

typedef struct {
    uint64_t size, sealed;
    int rounds, iterations;
    double gbps[N_TP];
    size_t header, header_base;
    kind_row_t k[2];
} report_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The baseline: in to out in 64 KiB chunks through ChaCha20-Poly1305 with
 * the same stdio calls px_age_seal / px_age_open make, no format. */
static int raw_file(const char *inpath, const char *outpath, int decrypt)
{
    static const uint8_t key[32] = { 1 };
    size_t inlen = decrypt ? CHUNK + TAG : CHUNK;
    uint8_t *a = malloc(CHUNK + TAG), *b = malloc(CHUNK + TAG), nonce[12];
    FILE *in = fopen(inpath, "rb"), *out = fopen(outpath, "wb");
    uint64_t counter = 0;
    int ret = -1;
    if (!a || !b || !in || !out)
        goto out;
    for (;;) {
        size_t got = fread(a, 1, inlen, in);
        int last = got < inlen, w;
        if (ferror(in) || (decrypt && got < TAG))
            goto out;
        px_age_stream_nonce(nonce, counter++, last);
        w = decrypt ? wc_ChaCha20Poly1305_Decrypt(key, nonce, NULL, 0, a, (word32)(got - TAG), a + got - TAG, b)
                    : wc_ChaCha20Poly1305_Encrypt(key, nonce, NULL, 0, a, (word32)got, b, b + got);
        got = decrypt ? got - TAG : got + TAG;
        if (w != 0 || fwrite(b, 1, got, out) != got)
            goto out;
        if (last)
            break;
    }
    ret = fflush(out) == 0 ? 0 : -1;
out:
    if (in)
        fclose(in);
    if (out && fclose(out) != 0)
        ret = -1;
    free(a);
    free(b);
    return ret;
}

/* size bytes through ChaCha20-Poly1305 in memory, 64 KiB at a time. */
static int aead_memory(uint64_t size)
{
    static const uint8_t key[32] = { 2 };
    uint8_t *a = calloc(1, CHUNK), *b = malloc(CHUNK + TAG), nonce[12];
    int ret = a && b ? 0 : -1;
    for (uint64_t off = 0, c = 0; !ret && off < size; off += CHUNK, c++) {
        size_t n = size - off < CHUNK ? (size_t)(size - off) : CHUNK;
        px_age_stream_nonce(nonce, c, off + n == size);
        ret = wc_ChaCha20Poly1305_Encrypt(key, nonce, NULL, 0, a, (word32)n, b, b + n);
    }
    free(a);
    free(b);
    return ret;
}

static int age_file(const char *inpath, const char *outpath, const void *keys, int seal)
{
    char err[256];
    FILE *in = fopen(inpath, "rb"), *out = fopen(outpath, "wb");
    int ret = -1;
    if (in && out)
        ret = seal ? px_age_seal(in, out, keys, 1, err, sizeof err) : px_age_open(in, out, keys, 1, err, sizeof err);
    if (ret && in && out)
        fprintf(stderr, "pqproxy bench seal: %s\n", err);
    if (in)
        fclose(in);
    if (out && fclose(out) != 0)
        ret = -1;
    return ret;
}

/* A plaintext of size bytes (xorshift: not compressible, cheap to make). */
static int make_plain(const char *path, uint64_t size)
{
    uint64_t x = 0x9e3779b97f4a7c15ull, buf[CHUNK / 8];
    FILE *f = fopen(path, "wb");
    int ret = f ? 0 : -1;
    for (uint64_t off = 0; !ret && off < size; off += CHUNK) {
        size_t n = size - off < CHUNK ? (size_t)(size - off) : CHUNK;
        for (size_t i = 0; i < CHUNK / 8; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            buf[i] = x;
        }
        ret = fwrite(buf, 1, n, f) == n ? 0 : -1;
    }
    if (f && fclose(f) != 0)
        ret = -1;
    return ret;
}

static long file_size(const char *path)
{
    FILE *f = fopen(path, "rb");
    long n = -1;
    if (f && fseek(f, 0, SEEK_END) == 0)
        n = ftell(f);
    if (f)
        fclose(f);
    return n;
}

typedef struct {
    px_age_recipient_t r[2];
    px_age_identity_t id;
} keys_t;

static int make_keys(px_age_kind_t kind, keys_t *k)
{
    char id[PX_AGE_KEY_STR], rc[PX_AGE_KEY_STR], err[256];
    int ret = px_age_keygen(kind, id, rc, err, sizeof err) || px_age_parse_identity(id, &k->id, err, sizeof err) ||
              px_age_parse_recipient(rc, &k->r[0], err, sizeof err) ? -1 : 0;
    k->r[1] = k->r[0];
    explicit_bzero(id, sizeof id);
    if (ret)
        fprintf(stderr, "pqproxy bench seal: keys: %s\n", err);
    return ret;
}

/* An empty file sealed to n recipients into a memory buffer: its size, or 0. */
static size_t seal_empty(const keys_t *k, int n, char **buf, size_t *len)
{
    char err[256];
    FILE *in = fopen("/dev/null", "rb"), *out = open_memstream(buf, len);
    int r = -1;
    if (in && out)
        r = px_age_seal(in, out, k->r, n, err, sizeof err);
    if (in)
        fclose(in);
    if (out)
        fclose(out);
    return r == 0 ? *len : 0;
}

/* The fixed cost of one file for a recipient kind: median of iterations
 * empty files sealed, then opened. */
static int fixed_cost(kind_row_t *row, int iterations, size_t *header_one)
{
    keys_t k;
    double s[MAX_ITER], o[MAX_ITER];
    char *buf = NULL, *buf2 = NULL, err[256], sink[16];
    size_t len = 0, len2 = 0, one, two;

    if (make_keys(row->kind, &k))
        return -1;
    for (int i = 0; i < iterations; i++) {
        double t0 = now_s(), t1;
        FILE *in, *out;
        free(buf);
        buf = NULL;
        if (!seal_empty(&k, 1, &buf, &len))
            return -1;
        t1 = now_s();
        in = fmemopen(buf, len, "rb");
        out = fmemopen(sink, sizeof sink, "wb");
        if (!in || !out || px_age_open(in, out, &k.id, 1, err, sizeof err) != 0) {
            fprintf(stderr, "pqproxy bench seal: open: %s\n", err);
            return -1;
        }
        fclose(in);
        fclose(out);
        s[i] = (t1 - t0) * 1e6;
        o[i] = (now_s() - t1) * 1e6;
    }
    one = len;
    two = seal_empty(&k, 2, &buf2, &len2);
    free(buf);
    free(buf2);
    explicit_bzero(&k, sizeof k);
    if (!two)
        return -1;
    row->seal_us = median(s, iterations);
    row->open_us = median(o, iterations);
    row->stanza = two - one;
    *header_one = one - 16 - TAG;   /* an empty file: header, nonce, one empty chunk */
    return 0;
}

static void print_markdown(const report_t *r, FILE *out)
{
    double chunks = r->size ? (double)((r->size + CHUNK - 1) / CHUNK) : 1;
    fprintf(out, "# pqproxy bench seal\n\n%llu-byte file, %d interleaved round%s (median), wolfSSL %s\n\n",
            (unsigned long long)r->size, r->rounds, r->rounds == 1 ? "" : "s", LIBWOLFSSL_VERSION_STRING);
    fprintf(out, "| | GB/s | ratio |\n|---|---:|---:|\n");
    for (int i = 0; i < N_TP; i++) {
        fprintf(out, "| %s | %.3f |", tp_label[i], r->gbps[i]);
        if (i == SEAL || i == OPEN)
            fprintf(out, " %.3f × raw |\n", r->gbps[i] / r->gbps[i - 1]);
        else
            fprintf(out, " |\n");
    }
    fprintf(out, "\nFixed cost per file (an empty file, median of %d):\n\n"
            "| recipient | seal µs | open µs | stanza bytes |\n|---|---:|---:|---:|\n", r->iterations);
    for (int i = 0; i < 2; i++)
        fprintf(out, "| %s | %.1f | %.1f | %zu |\n", r->k[i].type, r->k[i].seal_us, r->k[i].open_us,
                r->k[i].stanza);
    fprintf(out, "\nSize: header %zu bytes with one mlkem768x25519 recipient (%zu without stanzas, "
            "+%zu per mlkem768x25519 and +%zu per X25519 recipient), 16-byte nonce, a 16-byte tag per "
            "64 KiB chunk (%.4f %%): %llu plaintext bytes seal to %llu (+%llu bytes, +%.4f %%; "
            "%.0f chunk%s).\n",
            r->header, r->header_base, r->k[0].stanza, r->k[1].stanza, 100.0 * TAG / CHUNK,
            (unsigned long long)r->size, (unsigned long long)r->sealed,
            (unsigned long long)(r->sealed - r->size),
            r->size ? 100.0 * (double)(r->sealed - r->size) / (double)r->size : 0.0, chunks,
            chunks == 1 ? "" : "s");
}

static void print_json(const report_t *r, FILE *out)
{
    cJSON *j = cJSON_CreateObject(), *tp = cJSON_AddObjectToObject(j, "throughput_gbps");
    cJSON *ratio = cJSON_AddObjectToObject(j, "ratio_to_raw"), *fx = cJSON_AddObjectToObject(j, "fixed_cost");
    cJSON *sz = cJSON_AddObjectToObject(j, "size");
    char *s;
    cJSON_AddStringToObject(j, "schema", "pqproxy-bench-seal/1");
    cJSON_AddStringToObject(j, "wolfssl", LIBWOLFSSL_VERSION_STRING);
    cJSON_AddNumberToObject(j, "rounds", r->rounds);
    cJSON_AddNumberToObject(j, "iterations", r->iterations);
    for (int i = 0; i < N_TP; i++)
        cJSON_AddNumberToObject(tp, tp_id[i], r->gbps[i]);
    cJSON_AddNumberToObject(ratio, "seal", r->gbps[SEAL] / r->gbps[RAW_ENC]);
    cJSON_AddNumberToObject(ratio, "open", r->gbps[OPEN] / r->gbps[RAW_DEC]);
    for (int i = 0; i < 2; i++) {
        cJSON *k = cJSON_AddObjectToObject(fx, r->k[i].type);
        cJSON_AddNumberToObject(k, "seal_us", r->k[i].seal_us);
        cJSON_AddNumberToObject(k, "open_us", r->k[i].open_us);
        cJSON_AddNumberToObject(k, "stanza_bytes", (double)r->k[i].stanza);
    }
    cJSON_AddNumberToObject(sz, "plaintext_bytes", (double)r->size);
    cJSON_AddNumberToObject(sz, "sealed_bytes", (double)r->sealed);
    cJSON_AddNumberToObject(sz, "header_bytes", (double)r->header);
    cJSON_AddNumberToObject(sz, "header_base_bytes", (double)r->header_base);
    cJSON_AddNumberToObject(sz, "nonce_bytes", 16);
    cJSON_AddNumberToObject(sz, "chunk_bytes", CHUNK);
    cJSON_AddNumberToObject(sz, "tag_bytes", TAG);
    cJSON_AddNumberToObject(sz, "tag_overhead_pct", 100.0 * TAG / CHUNK);
    cJSON_AddNumberToObject(sz, "overhead_pct",
                            r->size ? 100.0 * (double)(r->sealed - r->size) / (double)r->size : 0.0);
    s = cJSON_Print(j);
    if (s)
        fprintf(out, "%s\n", s);
    free(s);
    cJSON_Delete(j);
}

int px_bench_seal(const px_bench_seal_opts_t *o, FILE *out)
{
    const char *base = o->dir ? o->dir : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char dir[4096], plain[4200], sealed[4200], back[4200], rawc[4200], rawp[4200];
    double t[N_TP][MAX_ROUNDS];
    report_t r = { .size = o->size, .rounds = o->rounds, .iterations = o->iterations,
                   .k = { { .type = "mlkem768x25519", .kind = PX_AGE_PQ },
                          { .type = "X25519", .kind = PX_AGE_X25519 } } };
    keys_t k;
    size_t hdr_x;
    int ret = 1;
    long n;

    snprintf(dir, sizeof dir, "%s/pqproxy-bench-seal.XXXXXX", base);
    if (!mkdtemp(dir)) {
        fprintf(stderr, "pqproxy bench seal: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    snprintf(plain, sizeof plain, "%s/plain", dir);
    snprintf(sealed, sizeof sealed, "%s/sealed.age", dir);
    snprintf(back, sizeof back, "%s/opened", dir);
    snprintf(rawc, sizeof rawc, "%s/raw.ct", dir);
    snprintf(rawp, sizeof rawp, "%s/raw.pt", dir);
    if (make_keys(PX_AGE_PQ, &k) || make_plain(plain, o->size)) {
        fprintf(stderr, "pqproxy bench seal: cannot write %s\n", plain);
        goto out;
    }
    /* interleaved, so that a noisy neighbour hits every row alike, and
     * every other round in the opposite order, so that neither side always
     * runs first (page-cache effects of the file just written) */
    for (int i = 0; i < o->rounds; i++) {
        for (int step = 0; step < N_TP; step++) {
            int which = i % 2 ? N_TP - 1 - step : step, fail;
            double t0 = now_s();
            switch ((tp_t)which) {
            case RAW_ENC: fail = raw_file(plain, rawc, 0); break;
            case SEAL: fail = age_file(plain, sealed, k.r, 1); break;
            case RAW_DEC: fail = raw_file(rawc, rawp, 1); break;
            case OPEN: fail = age_file(sealed, back, &k.id, 0); break;
            default: fail = aead_memory(o->size); break;
            }
            if (fail)
                goto io_err;
            t[which][i] = now_s() - t0;
        }
    }
    if (file_size(back) != (long)o->size || file_size(rawp) != (long)o->size || (n = file_size(sealed)) < 0) {
        fprintf(stderr, "pqproxy bench seal: a round trip did not give the input back\n");
        goto out;
    }
    r.sealed = (uint64_t)n;
    for (int i = 0; i < N_TP; i++) {
        double m = median(t[i], o->rounds);
        r.gbps[i] = m > 0 ? (double)o->size / m / 1e9 : 0;
    }
    if (fixed_cost(&r.k[0], o->iterations, &r.header) || fixed_cost(&r.k[1], o->iterations, &hdr_x)) {
        fprintf(stderr, "pqproxy bench seal: sealing an empty file failed\n");
        goto out;
    }
    r.header_base = r.header - r.k[0].stanza;
    o->json ? print_json(&r, out) : print_markdown(&r, out);
    ret = 0;
    goto out;
io_err:
    fprintf(stderr, "pqproxy bench seal: I/O or crypto failure in %s\n", dir);
out:
    explicit_bzero(&k, sizeof k);
    unlink(plain), unlink(sealed), unlink(back), unlink(rawc), unlink(rawp);
    rmdir(dir);
    return ret;
}

static int usage(void)
{
    printf("usage: pqproxy bench seal [--size BYTES] [--rounds N] [--iterations N] [--dir DIR] [--json]\n"
           "  Seals and opens a file of BYTES (default 1 GiB) with the age format, against raw\n"
           "  ChaCha20-Poly1305 over the same bytes in the same 64 KiB chunks; the fixed cost of a\n"
           "  file for each recipient type; the size overhead. docs/benchmarks.md\n"
           "  --rounds N       interleaved rounds, the median reported (default 3, at most %d)\n"
           "  --iterations N   empty files sealed and opened per recipient type (default 50)\n"
           "  --dir DIR        where the temporary files go (default $TMPDIR or /tmp)\n"
           "  --json           machine-readable output (schema pqproxy-bench-seal/1)\n", MAX_ROUNDS);
    return 0;
}

/* A number in [min, max] from v, or -1 after a usage error. */
static long long num_arg(const char *opt, const char *v, long long min, long long max)
{
    char *end;
    long long n;
    errno = 0;
    n = strtoll(v, &end, 10);
    if (errno || end == v || *end || n < min || n > max) {
        px_cli_usage_error("bench", "%s must be %lld..%lld, not '%s'", opt, min, max, v);
        return -1;
    }
    return n;
}

int px_cmd_bench_seal(int argc, char **argv)
{
    px_bench_seal_opts_t o = { .size = 1ull << 30, .rounds = 3, .iterations = 50 };
    const char *v;
    long long n = 0;
    int r;

    for (int i = 2; i < argc; i++) {
        if (px_cli_is_help(argv[i]))
            return usage();
        if (!strcmp(argv[i], "--json")) {
            o.json = 1;
        } else if ((r = px_cli_opt("bench", argc, argv, &i, "--size", &v)) > 0) {
            if ((n = num_arg("--size", v, 0, 1ll << 40)) < 0)
                return 2;
            o.size = (uint64_t)n;
        } else if (!r && (r = px_cli_opt("bench", argc, argv, &i, "--rounds", &v)) > 0) {
            if ((n = num_arg("--rounds", v, 1, MAX_ROUNDS)) < 0)
                return 2;
            o.rounds = (int)n;
        } else if (!r && (r = px_cli_opt("bench", argc, argv, &i, "--iterations", &v)) > 0) {
            if ((n = num_arg("--iterations", v, 1, MAX_ITER)) < 0)
                return 2;
            o.iterations = (int)n;
        } else if (!r && (r = px_cli_opt("bench", argc, argv, &i, "--dir", &v)) > 0) {
            o.dir = v;
        } else {
            return r < 0 ? 2 : px_cli_unknown("bench", argv[i]);
        }
    }
    return px_bench_seal(&o, stdout);
}
