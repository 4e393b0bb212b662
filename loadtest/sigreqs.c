/* sigreqs: pre-generates N signed HTTP/1.1 requests (docs/signatures.md)
 * for the load test's scenario 5, so the load generator spends no CPU on
 * signing while the proxy is measured.
 *
 *   sigreqs --key PREFIX --keyid ID --n N --out FILE [--path P] [--host H]
 *           [--body STRING] [--ttl S] [--jobs J]
 *
 * Every request has its own random nonce (px_sig_sign_request with nonce
 * NULL), so each one is accepted exactly once by the proxy's replay cache.
 * FILE holds the requests back to back, each preceded by its length as an
 * 8-digit decimal number and a newline; loadtest/wrk-signed.lua reads them
 * in order, one per request. J threads sign in parallel (one signer each),
 * writing FILE.0 .. FILE.J-1 which are then joined into FILE.
 *
 * Built by CMake as the optional target `sigreqs` (not part of `all`). */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "sig/sig.h"

typedef struct {
    const char *key, *keyid, *out, *path, *host, *body;
    long n;
    int64_t ttl, now;
    int job;
    long count;
    int rc;
} job_t;

static void *run(void *arg)
{
    job_t *j = arg;
    char err[300], cd[80], fname[4096];
    px_sig_signer_t *s = NULL;
    px_buf_t sig, req;
    FILE *f = NULL;

    j->rc = 1;
    px_buf_init(&sig, 0);
    px_buf_init(&req, 0);
    if (px_sig_signer_load(j->key, j->keyid, &s, err, sizeof err) != 0) {
        fprintf(stderr, "sigreqs: %s\n", err);
        goto out;
    }
    snprintf(fname, sizeof fname, "%s.%d", j->out, j->job);
    if (!(f = fopen(fname, "wb"))) {
        fprintf(stderr, "sigreqs: %s: %s\n", fname, strerror(errno));
        goto out;
    }
    size_t blen = strlen(j->body);
    if (px_content_digest(j->body, blen, cd, sizeof cd) != 0)
        goto out;
    px_header_t hdrs[2] = {
        { "Host", 4, j->host, strlen(j->host) },
        { "Content-Digest", 14, cd, strlen(cd) },
    };
    px_sig_msg_t m;
    memset(&m, 0, sizeof m);
    m.is_request = 1;
    m.method = "POST"; m.method_len = 4;
    m.authority = j->host; m.authority_len = strlen(j->host);
    m.target = j->path; m.target_len = strlen(j->path);
    m.headers = hdrs; m.header_count = 2;
    for (long i = 0; i < j->n; i++) {
        px_buf_reset(&sig);
        px_buf_reset(&req);
        if (px_sig_sign_request(s, &m, NULL, 0, j->now, j->ttl, NULL, &sig) != 0) {
            fprintf(stderr, "sigreqs: signing failed\n");
            goto out;
        }
        if (px_buf_printf(&req, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                          "Content-Length: %zu\r\nContent-Digest: %s\r\nX-Signature: %.*s\r\n\r\n%s",
                          j->path, j->host, blen, cd, (int)px_buf_size(&sig), px_buf_ptr(&sig),
                          j->body) != 0)
            goto out;
        if (fprintf(f, "%08zu\n", px_buf_size(&req)) != 9 ||
            fwrite(px_buf_ptr(&req), 1, px_buf_size(&req), f) != px_buf_size(&req)) {
            fprintf(stderr, "sigreqs: write failed: %s\n", strerror(errno));
            goto out;
        }
        j->count++;
    }
    j->rc = 0;
out:
    if (f && fclose(f) != 0)
        j->rc = 1;
    px_sig_signer_free(s);
    px_buf_free(&sig);
    px_buf_free(&req);
    return NULL;
}

static int usage(void)
{
    fprintf(stderr, "usage: sigreqs --key PREFIX --keyid ID --n N --out FILE [--path P] [--host H]\n"
                    "               [--body STRING] [--ttl S] [--jobs J]\n");
    return 2;
}

int main(int argc, char **argv)
{
    job_t base;
    int jobs = 2;
    memset(&base, 0, sizeof base);
    base.path = "/v1/signed/models/half_plus_two:predict";
    base.host = "model.example";
    base.body = "{\"instances\":[1.0,2.0,5.0]}";
    base.ttl = 3600;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) return usage();
        const char *o = argv[i], *v = argv[++i];
        if (!strcmp(o, "--key")) base.key = v;
        else if (!strcmp(o, "--keyid")) base.keyid = v;
        else if (!strcmp(o, "--n")) base.n = strtol(v, NULL, 10);
        else if (!strcmp(o, "--out")) base.out = v;
        else if (!strcmp(o, "--path")) base.path = v;
        else if (!strcmp(o, "--host")) base.host = v;
        else if (!strcmp(o, "--body")) base.body = v;
        else if (!strcmp(o, "--ttl")) base.ttl = strtoll(v, NULL, 10);
        else if (!strcmp(o, "--jobs")) jobs = atoi(v);
        else return usage();
    }
    if (!base.key || !base.keyid || !base.out || base.n <= 0 || jobs < 1 || jobs > 64)
        return usage();
    base.now = (int64_t)time(NULL);

    job_t js[64];
    pthread_t th[64];
    for (int k = 0; k < jobs; k++) {
        js[k] = base;
        js[k].job = k;
        js[k].n = base.n / jobs + (k < base.n % jobs);
        if (pthread_create(&th[k], NULL, run, &js[k]) != 0) {
            fprintf(stderr, "sigreqs: pthread_create failed\n");
            return 1;
        }
    }
    int rc = 0;
    long total = 0;
    for (int k = 0; k < jobs; k++) {
        pthread_join(th[k], NULL);
        rc |= js[k].rc;
        total += js[k].count;
    }
    if (rc)
        return 1;
    /* Join the parts. */
    FILE *out = fopen(base.out, "wb");
    if (!out) {
        fprintf(stderr, "sigreqs: %s: %s\n", base.out, strerror(errno));
        return 1;
    }
    char buf[1 << 16], fname[4096];
    for (int k = 0; k < jobs; k++) {
        snprintf(fname, sizeof fname, "%s.%d", base.out, k);
        FILE *in = fopen(fname, "rb");
        if (!in) { rc = 1; break; }
        size_t r;
        while ((r = fread(buf, 1, sizeof buf, in)) > 0)
            if (fwrite(buf, 1, r, out) != r) { rc = 1; break; }
        fclose(in);
        remove(fname);
    }
    if (fclose(out) != 0 || rc) {
        fprintf(stderr, "sigreqs: could not write %s\n", base.out);
        return 1;
    }
    printf("%ld\n", total);
    return 0;
}
