/* `pqproxy bench crypto`: what the linked wolfSSL really costs on this
 * machine, primitive by primitive, in the combinations pqproxy uses
 * (X25519MLKEM768 key agreement, ECDSA P-384 + ML-DSA-87 dual signatures),
 * and for a whole TLS 1.3 handshake driven in memory between two px_tls_t
 * sessions (no sockets: only the TLS work is timed).
 *
 * Every operation is timed one call at a time with CLOCK_MONOTONIC; the
 * report gives the median, p99, mean and ops/s, plus the process CPU time
 * (CLOCK_PROCESS_CPUTIME_ID) spent over all iterations. Sizes come from
 * real encoded objects and from the bytes the in-memory handshake put on
 * the wire. Output is Markdown (the article's two tables, with the article's
 * figures beside the measured ones) or JSON (--json, schema
 * "pqproxy-bench-crypto/1"; the structure never depends on the numbers). */
#ifndef PX_BENCH_H
#define PX_BENCH_H

#include <stdio.h>

typedef struct {
    int quick;            /* fewer iterations: >= 20 or ~50 ms per operation */
    int iterations;       /* > 0: exactly this many per operation (tests) */
    int json;             /* JSON instead of Markdown */
    const char *only;     /* NULL, or run only operations whose id contains this */
} px_bench_opts_t;

/* Runs the crypto benchmark and writes the report to out.
 * 0 on success, 1 when an operation failed (the report says which). */
int px_bench_crypto(const px_bench_opts_t *o, FILE *out);

/* `pqproxy bench crypto [--quick] [--json] [--iterations N] [--only STR]`;
 * argv[0] == "bench". Exit status 0, 1 (failure) or 2 (usage). */
int px_cmd_bench(int argc, char **argv);

#endif
