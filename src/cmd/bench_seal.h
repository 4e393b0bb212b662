/* `pqproxy bench seal`: what sealing costs, measured on this machine
 * (docs/benchmarks.md). Throughput of px_age_seal / px_age_open file to
 * file against raw ChaCha20-Poly1305 of the same wolfSSL over the same
 * bytes in the same 64 KiB chunks with the same stdio (the ratio is the
 * age format's own cost), the fixed cost per file for each recipient type
 * (a sealed and an opened empty file: key generation, KEM, HKDF, HMAC),
 * and the size overhead from real sealed files. Markdown, or JSON with
 * schema "pqproxy-bench-seal/1" (its structure never depends on the
 * numbers). */
#ifndef PX_BENCH_SEAL_H
#define PX_BENCH_SEAL_H

#include <stdint.h>
#include <stdio.h>

typedef struct {
    uint64_t size;        /* plaintext bytes (default 1 GiB) */
    int rounds;           /* interleaved rounds; the median is reported */
    int iterations;       /* empty files sealed/opened per recipient type */
    int json;
    const char *dir;      /* where the temporary files go (default TMPDIR or /tmp) */
} px_bench_seal_opts_t;

/* 0, or 1 after writing the reason to stderr. */
int px_bench_seal(const px_bench_seal_opts_t *o, FILE *out);

/* `pqproxy bench seal [options]`; argv[1] == "seal". 0, 1 or 2 (usage). */
int px_cmd_bench_seal(int argc, char **argv);

#endif
