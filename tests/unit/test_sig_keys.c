/* Signature keys: the formats OpenSSL 3.5 / Node 24 write (PKCS#8 with the
 * RFC 9881 "both" ML-DSA form, SEC1, DER) and ours (seed form) load; Node's
 * and our signatures cross-verify; wrong curves, levels and algorithms are
 * refused naming the file; keyring directories; keygen and its files. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sig_fixture.h"

static int load_ec_file(const char *name, uint8_t *out, char *err, size_t errlen)
{
    size_t len;
    char *d = fx_read(name, &len);
    int r = px_sig_load_ecdsa_pub((const uint8_t *)d, len, name, out, err, errlen);
    free(d);
    return r;
}

static int load_ml_file(const char *name, uint8_t *out, char *err, size_t errlen)
{
    size_t len;
    char *d = fx_read(name, &len);
    int r = px_sig_load_mldsa_pub((const uint8_t *)d, len, name, out, err, errlen);
    free(d);
    return r;
}

static void test_vector_keys_load(void **state)
{
    const char *ids[] = { "client-a", "node-a", "pqproxy" };
    for (int i = 0; i < 3; i++) {
        char prefix[512], err[256], name[512];
        uint8_t ec[PX_SIG_ECDSA_PUB_LEN], ml[PX_SIG_MLDSA_PUB_LEN], sec[PX_SIG_ECDSA_PUB_LEN],
            sml[PX_SIG_MLDSA_PUB_LEN], e[PX_SIG_ECDSA_LEN], m[PX_SIG_MLDSA_LEN];
        px_sig_signer_t *s;

        snprintf(name, sizeof name, "%s.ecdsa.pub", ids[i]);
        assert_int_equal(load_ec_file(name, ec, err, sizeof err), 0);
        snprintf(name, sizeof name, "%s.mldsa.pub", ids[i]);
        assert_int_equal(load_ml_file(name, ml, err, sizeof err), 0);
        snprintf(prefix, sizeof prefix, SIG_DIR "%s", ids[i]);
        if (px_sig_signer_load(prefix, ids[i], &s, err, sizeof err) != 0)
            fail_msg("%s: %s", ids[i], err);
        /* the private keys match the public key files */
        px_sig_signer_public(s, sec, sml);
        assert_memory_equal(ec, sec, sizeof ec);
        assert_memory_equal(ml, sml, sizeof ml);
        assert_string_equal(px_sig_signer_keyid(s), ids[i]);
        assert_int_equal(px_sig_signer_sign(s, (const uint8_t *)"msg", 3, e, m), 0);
        assert_int_equal(px_sig_verify_raw(ec, ml, (const uint8_t *)"msg", 3, e, m), PX_SIG_OK);
        assert_int_equal(px_sig_verify_raw(ec, ml, (const uint8_t *)"msh", 3, e, m), PX_SIG_ECDSA);
        assert_int_equal(px_sig_verify_raw(ec, ml, (const uint8_t *)"msg", 3, e, NULL), PX_SIG_OK);
        m[100] ^= 1;
        assert_int_equal(px_sig_verify_raw(ec, ml, (const uint8_t *)"msg", 3, e, m), PX_SIG_MLDSA);
        /* r = 0, s = 0, r and s = n - 1 style garbage: refused, no crash */
        memset(e, 0, sizeof e);
        assert_int_equal(px_sig_verify_raw(ec, ml, (const uint8_t *)"msg", 3, e, m), PX_SIG_ECDSA);
        memset(e, 0xff, sizeof e);
        assert_int_equal(px_sig_verify_raw(ec, ml, (const uint8_t *)"msg", 3, e, m), PX_SIG_ECDSA);
        px_sig_signer_free(s);
    }
}

static void test_alternative_encodings(void **state)
{
    char err[256];
    uint8_t a[PX_SIG_ECDSA_PUB_LEN], b[PX_SIG_ECDSA_PUB_LEN], sa[PX_SIG_ECDSA_PUB_LEN],
        sm[PX_SIG_MLDSA_PUB_LEN];
    size_t l1, l2, l3;
    char *sec1 = fx_read("bad/p384-sec1.key", &l1), *der = fx_read("bad/p384-sec1.der", &l2),
         *ml = fx_read("node-a.mldsa.key", &l3);
    px_sig_signer_t *s;

    /* SPKI PEM and DER of the same key */
    assert_int_equal(load_ec_file("bad/p384-sec1.pub", a, err, sizeof err), 0);
    assert_int_equal(load_ec_file("bad/p384.pub.der", b, err, sizeof err), 0);
    assert_memory_equal(a, b, sizeof a);
    /* SEC1 PEM and PKCS#8 DER private keys */
    assert_int_equal(px_sig_signer_from_mem("k", (uint8_t *)sec1, l1, (uint8_t *)ml, l3, &s, err,
                                            sizeof err), 0);
    px_sig_signer_public(s, sa, sm);
    assert_memory_equal(sa, a, sizeof a);
    px_sig_signer_free(s);
    assert_int_equal(px_sig_signer_from_mem("k", (uint8_t *)der, l2, (uint8_t *)ml, l3, &s, err,
                                            sizeof err), 0);
    px_sig_signer_public(s, sa, sm);
    assert_memory_equal(sa, a, sizeof a);
    px_sig_signer_free(s);
    free(sec1);
    free(der);
    free(ml);
}

static void expect_err(int r, const char *err, const char *needle)
{
    assert_int_not_equal(r, 0);
    if (!strstr(err, needle))
        fail_msg("error '%s' does not mention '%s'", err, needle);
}

static void test_wrong_keys(void **state)
{
    char err[256];
    uint8_t ec[PX_SIG_ECDSA_PUB_LEN], ml[PX_SIG_MLDSA_PUB_LEN];
    px_sig_signer_t *s = NULL;

    expect_err(load_ec_file("bad/p256.pub", ec, err, sizeof err), err, "P-256");
    expect_err(load_ec_file("bad/p256.pub", ec, err, sizeof err), err, "bad/p256.pub");
    expect_err(load_ec_file("bad/p521.pub", ec, err, sizeof err), err, "P-521");
    expect_err(load_ec_file("bad/ed25519.pub", ec, err, sizeof err), err, "not an ECDSA P-384 key");
    expect_err(load_ec_file("node-a.mldsa.pub", ec, err, sizeof err), err, "ML-DSA-87 key, expected ECDSA");
    expect_err(load_ml_file("bad/mldsa65.pub", ml, err, sizeof err), err, "ML-DSA-65");
    expect_err(load_ml_file("bad/mldsa44.pub", ml, err, sizeof err), err, "ML-DSA-44");
    expect_err(load_ml_file("node-a.ecdsa.pub", ml, err, sizeof err), err, "EC key, expected ML-DSA-87");
    expect_err(load_ml_file("node-a.mldsa.key", ml, err, sizeof err), err, "is not PUBLIC KEY");

    /* private keys: via files so the message names the file */
    char dir[] = "/tmp/pxsigkeysXXXXXX", prefix[600], cmd[1400];
    assert_non_null(mkdtemp(dir));
    snprintf(prefix, sizeof prefix, "%s/k", dir);
    struct { const char *ec, *ml, *needle; } cases[] = {
        { "bad/p256.key", "node-a.mldsa.key", "P-256" },
        { "client-a.ecdsa.key", "bad/mldsa65.key", "ML-DSA-65" },
        { "client-a.ecdsa.key", "client-a.ecdsa.key", "EC key, expected ML-DSA-87" },
        { "client-a.mldsa.key", "client-a.mldsa.key", "ML-DSA-87 key, expected ECDSA" },
        { "client-a.ecdsa.pub", "client-a.mldsa.key", "is not PRIVATE KEY" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        snprintf(cmd, sizeof cmd, "cp %s%s %s.ecdsa.key && cp %s%s %s.mldsa.key", SIG_DIR,
                 cases[i].ec, prefix, SIG_DIR, cases[i].ml, prefix);
        assert_int_equal(system(cmd), 0);
        expect_err(px_sig_signer_load(prefix, "k", &s, err, sizeof err), err, cases[i].needle);
        assert_null(s);
        assert_non_null(strstr(err, dir));
    }
    expect_err(px_sig_signer_load("/nonexistent/k", "k", &s, err, sizeof err), err, "/nonexistent/k.ecdsa.key");
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_garbage_keys(void **state)
{
    char err[256];
    uint8_t ec[PX_SIG_ECDSA_PUB_LEN], ml[PX_SIG_MLDSA_PUB_LEN];
    size_t len;
    char *good = fx_read("client-a.ecdsa.pub", &len);
    char *der = fx_read("bad/p384.pub.der", &len);
    const char *texts[] = { "", "x", "-----BEGIN PUBLIC KEY-----\n", "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n",
                            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
                            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n" };
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        assert_int_not_equal(px_sig_load_ecdsa_pub((const uint8_t *)texts[i], strlen(texts[i]), "t", ec, err, sizeof err), 0);
        assert_int_not_equal(px_sig_load_mldsa_pub((const uint8_t *)texts[i], strlen(texts[i]), "t", ml, err, sizeof err), 0);
    }
    /* every truncation and many single-byte corruptions of a DER key */
    for (size_t n = 0; n < len; n++)
        assert_int_not_equal(px_sig_load_ecdsa_pub((const uint8_t *)der, n, "t", ec, err, sizeof err), 0);
    for (size_t i = 0; i < len; i++) {
        char save = der[i];
        for (int bit = 0; bit < 8; bit += 3) {
            der[i] = (char)(save ^ (1 << bit));
            (void)px_sig_load_ecdsa_pub((const uint8_t *)der, len, "t", ec, err, sizeof err);
        }
        der[i] = save;
    }
    /* a point that is not on the curve */
    assert_int_equal(px_sig_load_ecdsa_pub((const uint8_t *)der, len, "t", ec, err, sizeof err), 0);
    der[len - 1] ^= 1;
    expect_err(px_sig_load_ecdsa_pub((const uint8_t *)der, len, "t", ec, err, sizeof err), err, "not a valid P-384");
    free(good);
    free(der);
}

static void write_copy(const char *dir, const char *name, const char *src)
{
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "cp %s%s %s/%s", SIG_DIR, src, dir, name);
    assert_int_equal(system(cmd), 0);
}

static void test_keyring_dir(void **state)
{
    char dir[] = "/tmp/pxkeyringXXXXXX", err[512], cmd[600];
    const uint8_t *ec, *ml;
    px_sig_keyring_t *r;

    assert_non_null(mkdtemp(dir));
    write_copy(dir, "client-a.ecdsa.pub", "client-a.ecdsa.pub");
    write_copy(dir, "client-a.mldsa.pub", "client-a.mldsa.pub");
    write_copy(dir, "node-a.ecdsa.pub", "node-a.ecdsa.pub");
    write_copy(dir, "node-a.mldsa.pub", "node-a.mldsa.pub");
    snprintf(cmd, sizeof cmd, "mkdir %s/..2025_data && ln -s ..2025_data %s/..data", dir, dir);
    assert_int_equal(system(cmd), 0);   /* Kubernetes Secret volume internals: ignored */
    r = px_sig_keyring_load_dir(dir, err, sizeof err);
    if (!r)
        fail_msg("%s", err);
    assert_int_equal(px_sig_keyring_count(r), 2);
    assert_true(px_sig_keyring_find(r, "node-a", 6, &ec, &ml) >= 0);
    assert_true(px_sig_keyring_find(r, "client-a", 8, &ec, &ml) >= 0);
    assert_int_equal(px_sig_keyring_find(r, "client", 6, &ec, &ml), -1);
    assert_int_equal(px_sig_keyring_find(r, "client-a2", 9, &ec, &ml), -1);
    px_sig_keyring_free(r);

    /* an ML-DSA key without its ECDSA key, and the reverse */
    write_copy(dir, "lonely.mldsa.pub", "node-a.mldsa.pub");
    assert_null(px_sig_keyring_load_dir(dir, err, sizeof err));
    assert_non_null(strstr(err, "lonely"));
    snprintf(cmd, sizeof cmd, "rm %s/lonely.mldsa.pub", dir);
    assert_int_equal(system(cmd), 0);
    write_copy(dir, "lonely.ecdsa.pub", "node-a.ecdsa.pub");
    assert_null(px_sig_keyring_load_dir(dir, err, sizeof err));
    if (!strstr(err, "lonely.mldsa.pub"))
        fail_msg("%s", err);
    snprintf(cmd, sizeof cmd, "rm %s/lonely.ecdsa.pub", dir);
    assert_int_equal(system(cmd), 0);
    /* a file that is not part of the layout */
    write_copy(dir, "README", "bad/README");
    assert_null(px_sig_keyring_load_dir(dir, err, sizeof err));
    assert_non_null(strstr(err, "unexpected file"));
    snprintf(cmd, sizeof cmd, "rm %s/README", dir);
    assert_int_equal(system(cmd), 0);
    /* a wrong key in the ring names its file */
    write_copy(dir, "weak.ecdsa.pub", "bad/p256.pub");
    write_copy(dir, "weak.mldsa.pub", "node-a.mldsa.pub");
    assert_null(px_sig_keyring_load_dir(dir, err, sizeof err));
    assert_non_null(strstr(err, "weak.ecdsa.pub"));
    assert_non_null(strstr(err, "P-256"));
    assert_null(px_sig_keyring_load_dir("/nonexistent-dir", err, sizeof err));
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);

    /* add: invalid and duplicate keyids */
    uint8_t e[PX_SIG_ECDSA_PUB_LEN] = { 4 }, m[PX_SIG_MLDSA_PUB_LEN] = { 0 };
    r = px_sig_keyring_new();
    assert_int_equal(px_sig_keyring_add(r, "a", e, m, err, sizeof err), 0);
    assert_int_not_equal(px_sig_keyring_add(r, "a", e, m, err, sizeof err), 0);
    assert_int_not_equal(px_sig_keyring_add(r, ".hidden", e, m, err, sizeof err), 0);
    assert_int_not_equal(px_sig_keyring_add(r, "a/b", e, m, err, sizeof err), 0);
    assert_int_not_equal(px_sig_keyring_add(r, "", e, m, err, sizeof err), 0);
    for (int i = 0; i < 200; i++) {
        char id[16];
        snprintf(id, sizeof id, "k%03d", (i * 37) % 200);
        assert_int_equal(px_sig_keyring_add(r, id, e, m, err, sizeof err), 0);
    }
    for (int i = 0; i < 200; i++) {
        char id[16];
        snprintf(id, sizeof id, "k%03d", i);
        assert_true(px_sig_keyring_find(r, id, strlen(id), &ec, &ml) >= 0);
    }
    px_sig_keyring_free(r);
}

/* A fresh signer (keygen in memory). */
static px_sig_signer_t *gen_signer(const char *keyid)
{
    px_sig_keypair_pem_t kp;
    px_sig_signer_t *s = NULL;
    char err[256];
    assert_int_equal(px_sig_keygen(&kp, err, sizeof err), 0);
    assert_int_equal(px_sig_signer_from_mem(keyid, (uint8_t *)kp.ecdsa_key, strlen(kp.ecdsa_key),
                                            (uint8_t *)kp.mldsa_key, strlen(kp.mldsa_key), &s, err,
                                            sizeof err), 0);
    px_sig_keypair_pem_free(&kp);
    return s;
}

static px_sig_keyring_t *ring_of(px_sig_signer_t *const *s, const char *const *ids, int n)
{
    px_sig_keyring_t *r = px_sig_keyring_new();
    uint8_t ec[PX_SIG_ECDSA_PUB_LEN], ml[PX_SIG_MLDSA_PUB_LEN];
    char err[256];
    for (int i = 0; i < n; i++) {
        px_sig_signer_public(s[i], ec, ml);
        assert_int_equal(px_sig_keyring_add(r, ids[i], ec, ml, err, sizeof err), 0);
    }
    return r;
}

static px_sig_result_t ring_verify(const px_sig_keyring_t *r, const char *id, const uint8_t *msg,
                                   size_t len, const uint8_t *e, const uint8_t *m)
{
    const uint8_t *ec, *ml;
    int idx = px_sig_keyring_find(r, id, strlen(id), &ec, &ml);
    assert_true(idx >= 0);
    return px_sig_keyring_verify(r, idx, msg, len, e, m);
}

/* Keyring verification keeps imported keys per thread: the results must be
 * those of px_sig_verify_raw, also after eviction and after a new ring
 * (a reload) gives a known keyid another key at the same index. */
static void test_keyring_verify_cache(void **state)
{
    enum { N = 10 };                     /* more than the per-thread cache holds */
    px_sig_signer_t *s[N];
    const char *ids[N] = { "k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9" };
    uint8_t e[N][PX_SIG_ECDSA_LEN], *m[N];
    const uint8_t msg[] = "\"@method\": POST";
    px_sig_keyring_t *r;
    (void)state;

    for (int i = 0; i < N; i++) {
        s[i] = gen_signer(ids[i]);
        assert_non_null(m[i] = malloc(PX_SIG_MLDSA_LEN));
        assert_int_equal(px_sig_signer_sign(s[i], msg, sizeof msg, e[i], m[i]), 0);
    }
    r = ring_of(s, ids, N);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            int j = (i + 1) % N;
            assert_int_equal(ring_verify(r, ids[i], msg, sizeof msg, e[i], m[i]), PX_SIG_OK);
            assert_int_equal(ring_verify(r, ids[i], msg, sizeof msg, e[i], NULL), PX_SIG_OK);
            /* another key's signatures never verify under this keyid */
            assert_int_equal(ring_verify(r, ids[i], msg, sizeof msg, e[j], m[i]), PX_SIG_ECDSA);
            assert_int_equal(ring_verify(r, ids[i], msg, sizeof msg, e[i], m[j]), PX_SIG_MLDSA);
            assert_int_equal(ring_verify(r, ids[i], msg, sizeof msg - 1, e[i], m[i]), PX_SIG_ECDSA);
        }
    }
    assert_int_equal(px_sig_keyring_verify(r, N, msg, sizeof msg, e[0], m[0]), PX_SIG_INTERNAL);
    assert_int_equal(px_sig_keyring_verify(r, -1, msg, sizeof msg, e[0], m[0]), PX_SIG_INTERNAL);
    px_sig_keyring_free(r);

    /* "a reload": k0 now names signer 1's key, at the same index 0 */
    r = ring_of((px_sig_signer_t *const[]){ s[1] }, ids, 1);
    assert_int_equal(ring_verify(r, "k0", msg, sizeof msg, e[0], m[0]), PX_SIG_ECDSA);
    assert_int_equal(ring_verify(r, "k0", msg, sizeof msg, e[1], m[1]), PX_SIG_OK);
    px_sig_keyring_free(r);
    for (int i = 0; i < N; i++) {
        px_sig_signer_free(s[i]);
        free(m[i]);
    }
}

/* Signing uses a per-thread copy of the signer, named by its serial: each
 * signature verifies under its own signer's keys, also when the signer
 * changes on the same thread (a reload) or a new signer takes a freed one's
 * address, and with several threads signing with one signer at once. */
static int signs_as(px_sig_signer_t *signer, px_sig_signer_t *expect)
{
    const uint8_t msg[] = "\"@status\": 200";
    uint8_t e[PX_SIG_ECDSA_LEN], *m = malloc(PX_SIG_MLDSA_LEN), *ml = malloc(PX_SIG_MLDSA_PUB_LEN);
    uint8_t ec[PX_SIG_ECDSA_PUB_LEN];
    int ok;
    assert_non_null(m);
    assert_non_null(ml);
    assert_int_equal(px_sig_signer_sign(signer, msg, sizeof msg, e, m), 0);
    px_sig_signer_public(expect, ec, ml);
    ok = px_sig_verify_raw(ec, ml, msg, sizeof msg, e, m) == PX_SIG_OK;
    free(m);
    free(ml);
    return ok;
}

typedef struct {
    px_sig_signer_t *s;
    int ok;
} signing_thread_t;

static void *signing_thread(void *arg)
{
    signing_thread_t *t = arg;
    t->ok = 1;
    for (int i = 0; i < 8; i++)
        t->ok &= signs_as(t->s, t->s);
    return NULL;
}

static void test_signer_thread_copies(void **state)
{
    px_sig_signer_t *a = gen_signer("a"), *b = gen_signer("b"), *c;
    signing_thread_t t[4];
    pthread_t th[4];
    (void)state;

    assert_true(signs_as(a, a));
    assert_true(signs_as(b, b));
    assert_false(signs_as(b, a));
    assert_true(signs_as(a, a));
    px_sig_signer_free(a);
    c = gen_signer("c");                /* may well reuse a's memory */
    assert_true(signs_as(c, c));
    assert_false(signs_as(c, b));
    for (int i = 0; i < 4; i++) {
        t[i].s = b;
        assert_int_equal(pthread_create(&th[i], NULL, signing_thread, &t[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_true(t[i].ok);
    }
    px_sig_signer_free(b);
    px_sig_signer_free(c);
}

static void test_keygen(void **state)
{
    px_sig_keypair_pem_t kp;
    char err[256];
    uint8_t ec[PX_SIG_ECDSA_PUB_LEN], ml[PX_SIG_MLDSA_PUB_LEN], sec[PX_SIG_ECDSA_PUB_LEN],
        sml[PX_SIG_MLDSA_PUB_LEN];
    px_sig_signer_t *s;

    assert_int_equal(px_sig_keygen(&kp, err, sizeof err), 0);
    assert_non_null(strstr(kp.ecdsa_key, "-----BEGIN PRIVATE KEY-----"));
    assert_non_null(strstr(kp.mldsa_pub, "-----BEGIN PUBLIC KEY-----"));
    assert_int_equal(px_sig_load_ecdsa_pub((uint8_t *)kp.ecdsa_pub, strlen(kp.ecdsa_pub), "e", ec, err, sizeof err), 0);
    assert_int_equal(px_sig_load_mldsa_pub((uint8_t *)kp.mldsa_pub, strlen(kp.mldsa_pub), "m", ml, err, sizeof err), 0);
    assert_int_equal(px_sig_signer_from_mem("gen", (uint8_t *)kp.ecdsa_key, strlen(kp.ecdsa_key),
                                            (uint8_t *)kp.mldsa_key, strlen(kp.mldsa_key), &s, err,
                                            sizeof err), 0);
    px_sig_signer_public(s, sec, sml);
    assert_memory_equal(ec, sec, sizeof ec);
    assert_memory_equal(ml, sml, sizeof ml);
    px_sig_signer_free(s);
    /* the ML-DSA private key is the 54-byte RFC 9881 seed form */
    assert_true(strlen(kp.mldsa_key) < 140);
    px_sig_keypair_pem_free(&kp);

    /* the command: four files, keys 0600, no overwrite without --force */
    char dir[] = "/tmp/pxkeygenXXXXXX", out[600], path[700], cmd[700];
    struct stat st;
    assert_non_null(mkdtemp(dir));
    snprintf(out, sizeof out, "%s/svc", dir);
    char *argv[] = { "keygen", "--alg", "hybrid", "--out", out, NULL };
    assert_int_equal(px_cmd_keygen(5, argv), 0);
    const char *suffixes[] = { "ecdsa.key", "ecdsa.pub", "mldsa.key", "mldsa.pub" };
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s.%s", out, suffixes[i]);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, strstr(suffixes[i], "key") ? 0600 : 0644);
    }
    assert_int_equal(px_cmd_keygen(5, argv), 1);
    char *argv2[] = { "keygen", "--alg", "rsa", "--out", out, NULL };
    assert_int_equal(px_cmd_keygen(5, argv2), 2);
    assert_int_equal(px_sig_signer_load(out, "svc", &s, err, sizeof err), 0);
    px_sig_signer_free(s);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vector_keys_load),
        cmocka_unit_test(test_alternative_encodings),
        cmocka_unit_test(test_wrong_keys),
        cmocka_unit_test(test_garbage_keys),
        cmocka_unit_test(test_keyring_dir),
        cmocka_unit_test(test_signer_thread_copies),
        cmocka_unit_test(test_keygen),
        cmocka_unit_test(test_keyring_verify_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
