/* Server sessions draw from their thread's DRBG (wolfSSL patch 0008,
 * wolfSSL_CTX_UseThreadRng) instead of seeding one each: one DRBG shared by
 * the sessions of a thread, never one thread's in another (and their output
 * differs), while a context that does not ask keeps one DRBG per session.
 * pqproxy's server contexts ask. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/random.h>

#include "certgen.h"
#include "config.h"
#include "tls.h"

static char dir[64], crt[96], key[96];

static int make_cert(void **state)
{
    px_pem_pair_t ca, leaf;
    const char *sans[] = { "localhost" };
    FILE *f;
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/px-test-rng-XXXXXX");
    if (!mkdtemp(dir) || px_certgen_ca(PX_KEY_ECDSA_P256, "test CA", 2, &ca) != 0 ||
        px_certgen_leaf(PX_KEY_ECDSA_P256, &ca, "localhost", sans, 1, 2, 0, &leaf) != 0)
        return -1;
    snprintf(crt, sizeof crt, "%s/server.crt", dir);
    snprintf(key, sizeof key, "%s/server.key", dir);
    if (!(f = fopen(crt, "w")) || fputs(leaf.cert_pem, f) < 0 || fclose(f) != 0 ||
        !(f = fopen(key, "w")) || fputs(leaf.key_pem, f) < 0 || fclose(f) != 0)
        return -1;
    px_pem_pair_free(&ca);
    px_pem_pair_free(&leaf);
    return px_tls_global_init();
}

static int remove_cert(void **state)
{
    (void)state;
    unlink(crt);
    unlink(key);
    rmdir(dir);
    return 0;
}

static WOLFSSL_CTX *server_ctx(int thread_rng)
{
    WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfTLSv1_3_server_method());
    assert_non_null(ctx);
    assert_int_equal(wolfSSL_CTX_use_certificate_file(ctx, crt, WOLFSSL_FILETYPE_PEM), WOLFSSL_SUCCESS);
    assert_int_equal(wolfSSL_CTX_use_PrivateKey_file(ctx, key, WOLFSSL_FILETYPE_PEM), WOLFSSL_SUCCESS);
    if (thread_rng)
        assert_int_equal(wolfSSL_CTX_UseThreadRng(ctx, 1), WOLFSSL_SUCCESS);
    return ctx;
}

typedef struct {
    WOLFSSL_CTX *ctx;
    WC_RNG *main_rng;       /* alive all along: no address reuse to fool the comparison */
    int distinct, same_twice;
    byte main_draw[32], draw[32];
} other_thread_t;

static void *other_thread(void *arg)
{
    other_thread_t *o = arg;
    WOLFSSL *a = wolfSSL_new(o->ctx), *b = wolfSSL_new(o->ctx);
    if (a && b) {
        o->distinct = wolfSSL_GetRNG(a) != o->main_rng;
        o->same_twice = wolfSSL_GetRNG(a) == wolfSSL_GetRNG(b);
        wc_RNG_GenerateBlock(wolfSSL_GetRNG(a), o->draw, sizeof o->draw);
    }
    wolfSSL_free(a);
    wolfSSL_free(b);
    return NULL;   /* the thread's DRBG is freed now, by the key destructor */
}

static void test_one_drbg_per_thread(void **state)
{
    WOLFSSL_CTX *ctx = server_ctx(1);
    WOLFSSL *a = wolfSSL_new(ctx), *b;
    other_thread_t o;
    pthread_t th;
    (void)state;

    assert_non_null(a);
    b = wolfSSL_new(ctx);
    assert_non_null(b);
    assert_ptr_equal(wolfSSL_GetRNG(a), wolfSSL_GetRNG(b));
    /* A session freed before the next is made: the thread's DRBG stays. */
    wolfSSL_free(b);
    b = wolfSSL_new(ctx);
    assert_ptr_equal(wolfSSL_GetRNG(a), wolfSSL_GetRNG(b));

    memset(&o, 0, sizeof o);
    o.ctx = ctx;
    o.main_rng = wolfSSL_GetRNG(a);
    assert_int_equal(pthread_create(&th, NULL, other_thread, &o), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_true(o.distinct);
    assert_true(o.same_twice);
    assert_int_equal(wc_RNG_GenerateBlock(wolfSSL_GetRNG(a), o.main_draw, sizeof o.main_draw), 0);
    assert_memory_not_equal(o.main_draw, o.draw, sizeof o.draw);

    wolfSSL_free(a);
    wolfSSL_free(b);
    wolfSSL_CTX_free(ctx);
}

static void test_default_one_drbg_per_session(void **state)
{
    WOLFSSL_CTX *ctx = server_ctx(0);
    WOLFSSL *a = wolfSSL_new(ctx), *b = wolfSSL_new(ctx);
    (void)state;
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_not_equal(wolfSSL_GetRNG(a), wolfSSL_GetRNG(b));
    wolfSSL_free(a);
    wolfSSL_free(b);
    wolfSSL_CTX_free(ctx);
}

static void test_pqproxy_server_contexts_ask(void **state)
{
    px_tls_config_t cfg;
    px_tls_ctx_t *ctx;
    char err[256];
    (void)state;
    memset(&cfg, 0, sizeof cfg);
    cfg.groups[0] = 0x11EC;   /* X25519MLKEM768 */
    cfg.group_count = 1;
    cfg.pq_policy = PX_PQ_REQUIRE;
    cfg.min_version = 13;
    cfg.certs[0].cert_file = crt;
    cfg.certs[0].key_file = key;
    cfg.cert_count = 1;
    ctx = px_tls_ctx_server_new(&cfg, err, sizeof err);
    if (!ctx)
        fail_msg("server context: %s", err);
    assert_true(px_tls_ctx_thread_rng(ctx));
    px_tls_ctx_unref(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_drbg_per_thread),
        cmocka_unit_test(test_default_one_drbg_per_session),
        cmocka_unit_test(test_pqproxy_server_contexts_ask),
    };
    return cmocka_run_group_tests(tests, make_cert, remove_cert);
}
