/* A throw-away server certificate for tests that need a TLS server: an
 * ECDSA P-256 leaf for "localhost" from a fresh CA, written as PEM files
 * into a new directory under /tmp. */
#ifndef PX_CERT_FIXTURE_H
#define PX_CERT_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cmd/certgen.h"

typedef struct {
    char dir[64], crt[96], key[96];
} fx_cert_t;

/* 0 when the files are written; tag names the directory. */
static __attribute__((unused)) int fx_cert_make(fx_cert_t *c, const char *tag)
{
    px_pem_pair_t ca, leaf;
    const char *sans[] = { "localhost" };
    FILE *f;
    int rc = -1;

    snprintf(c->dir, sizeof c->dir, "/tmp/px-test-%s-XXXXXX", tag);
    if (!mkdtemp(c->dir) || px_certgen_ca(PX_KEY_ECDSA_P256, "test CA", 2, &ca) != 0)
        return -1;
    if (px_certgen_leaf(PX_KEY_ECDSA_P256, &ca, "localhost", sans, 1, 2, 0, &leaf) == 0) {
        snprintf(c->crt, sizeof c->crt, "%s/server.crt", c->dir);
        snprintf(c->key, sizeof c->key, "%s/server.key", c->dir);
        rc = (f = fopen(c->crt, "w")) && fputs(leaf.cert_pem, f) >= 0 && fclose(f) == 0 &&
             (f = fopen(c->key, "w")) && fputs(leaf.key_pem, f) >= 0 && fclose(f) == 0 ? 0 : -1;
        px_pem_pair_free(&leaf);
    }
    px_pem_pair_free(&ca);
    return rc;
}

static __attribute__((unused)) void fx_cert_remove(const fx_cert_t *c)
{
    unlink(c->crt);
    unlink(c->key);
    rmdir(c->dir);
}

#endif
