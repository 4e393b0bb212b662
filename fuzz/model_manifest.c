/* Model manifests (src/seal/manifest.c, src/seal/dsse.c,
 * docs/model-signing.md): the bytes as a DSSE envelope, as an in-toto
 * statement, and as a manifest verified with the fixed keys of
 * tests/data/sig/client-a (whose keyids the dictionary holds, so that the
 * signature checks are reached).
 *
 * Checked: every refusal says why; an accepted envelope has 1..2 signatures
 * within the limits and writes back to an envelope that parses to the same
 * payload and signatures; an accepted statement has at least one entry,
 * clean paths in strictly increasing order, sizes within 2^53 - 1, and
 * writes back to bytes that parse to the same manifest; verification never
 * succeeds (no fuzzed input carries a signature by those keys). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seal/dsse.h"
#include "seal/manifest.h"

#define KEYS PX_TEST_DATA "/sig/client-a"

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "model_manifest fuzz: %s (%s)\n", what, detail ? detail : "-");
    abort();
}

static void check_envelope(const uint8_t *data, size_t size)
{
    px_dsse_t env, again;
    px_buf_t b;
    char err[512] = "";

    if (px_dsse_parse((const char *)data, size, "E", &env, err, sizeof err) != 0) {
        if (!*err)
            die("envelope refused without a reason", NULL);
        px_dsse_free(&env);
        return;
    }
    if (env.nsigs < 1 || env.nsigs > PX_DSSE_MAX_SIGS || !env.payload_len)
        die("envelope shape", NULL);
    for (int i = 0; i < env.nsigs; i++)
        if (!env.sigs[i].sig_len || env.sigs[i].sig_len > PX_DSSE_MAX_SIG || !*env.sigs[i].keyid)
            die("signature shape", env.sigs[i].keyid);
    px_buf_init(&b, 0);
    if (px_dsse_build(env.payload_type, env.payload, env.payload_len, env.sigs, env.nsigs, &b) ||
        px_dsse_parse(px_buf_ptr(&b), px_buf_size(&b), "E2", &again, err, sizeof err) != 0)
        die("a parsed envelope does not write back", err);
    if (again.payload_len != env.payload_len ||
        memcmp(again.payload, env.payload, env.payload_len) || again.nsigs != env.nsigs ||
        strcmp(again.payload_type, env.payload_type))
        die("envelope round trip", NULL);
    for (int i = 0; i < env.nsigs; i++)
        if (strcmp(again.sigs[i].keyid, env.sigs[i].keyid) ||
            again.sigs[i].sig_len != env.sigs[i].sig_len ||
            memcmp(again.sigs[i].sig, env.sigs[i].sig, env.sigs[i].sig_len))
            die("signature round trip", env.sigs[i].keyid);
    px_buf_free(&b);
    px_dsse_free(&again);
    px_dsse_free(&env);
}

static void check_statement(const uint8_t *data, size_t size)
{
    px_manifest_t m, again;
    px_buf_t b;
    char err[512] = "";

    if (px_manifest_parse_statement((const char *)data, size, "S", &m, err, sizeof err) != 0) {
        if (!*err)
            die("statement refused without a reason", NULL);
        px_manifest_free(&m);
        return;
    }
    if (!m.n || m.n > PX_MANIFEST_MAX_FILES || !m.name)
        die("manifest shape", NULL);
    for (size_t i = 0; i < m.n; i++) {
        if (px_manifest_path_problem(m.e[i].path))
            die("unclean path accepted", m.e[i].path);
        if (i && strcmp(m.e[i - 1].path, m.e[i].path) >= 0)
            die("paths out of order", m.e[i].path);
        if (m.e[i].size > PX_MANIFEST_MAX_SIZE)
            die("size", m.e[i].path);
    }
    px_buf_init(&b, 0);
    if (px_manifest_statement(&m, &b) != 0 ||
        px_manifest_parse_statement(px_buf_ptr(&b), px_buf_size(&b), "S2", &again, err,
                                    sizeof err) != 0)
        die("a parsed statement does not write back", err);
    if (again.n != m.n || again.alg != m.alg || strcmp(again.name, m.name))
        die("statement round trip", NULL);
    for (size_t i = 0; i < m.n; i++)
        if (strcmp(again.e[i].path, m.e[i].path) || again.e[i].size != m.e[i].size ||
            memcmp(again.e[i].digest, m.e[i].digest, m.alg))
            die("entry round trip", m.e[i].path);
    px_buf_free(&b);
    px_manifest_free(&again);
    px_manifest_free(&m);
}

static void check_verify(const uint8_t *data, size_t size)
{
    static uint8_t ec[PX_SIG_ECDSA_PUB_LEN], ml[PX_SIG_MLDSA_PUB_LEN];
    static int loaded;
    px_manifest_t m;
    char err[512] = "";

    if (!loaded) {
        px_sig_keyring_t *ring = px_sig_keyring_new();
        const uint8_t *e, *k;
        if (!ring || px_sig_keyring_add_files(ring, "client-a", KEYS, err, sizeof err) != 0 ||
            px_sig_keyring_find(ring, "client-a", 8, &e, &k) < 0)
            die("cannot load " KEYS, err);
        memcpy(ec, e, sizeof ec);
        memcpy(ml, k, sizeof ml);
        px_sig_keyring_free(ring);
        loaded = 1;
    }
    if (px_manifest_verify((const char *)data, size, "V", ec, ml, &m, err, sizeof err) == 0)
        die("a fuzzed manifest verified", NULL);
    if (!*err)
        die("verification refused without a reason", NULL);
    px_manifest_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 20)
        return 0;
    check_envelope(data, size);
    check_statement(data, size);
    check_verify(data, size);
    return 0;
}
