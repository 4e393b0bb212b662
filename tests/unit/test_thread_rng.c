/* Server sessions draw from their thread's DRBG (wolfSSL patch 0008,
 * wolfSSL_CTX_UseThreadRng) instead of seeding one each: one DRBG shared by
 * the sessions of a thread, never one thread's in another (and their output
 * differs), while a context that does not ask keeps one DRBG per session.
 * pqproxy's server contexts ask, when the library has the call (not with
 * PQPROXY_WOLFSSL_PATCHES=minimal), and debug builds abort when such a
 * session is used on another thread than the one that made it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/random.h>

#include "cert_fixture.h"
#include "config/config.h"
#include "core/errors.h"
#include "net/tls.h"

static fx_cert_t cert;

static int make_cert(void **state)
{
    (void)state;
    return fx_cert_make(&cert, "rng") == 0 ? px_tls_global_init() : -1;
}

static int remove_cert(void **state)
{
    (void)state;
    fx_cert_remove(&cert);
    return 0;
}

#ifdef WOLFSSL_HAVE_CTX_USE_THREAD_RNG
static WOLFSSL_CTX *server_ctx(int thread_rng)
{
    WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfTLSv1_3_server_method());
    assert_non_null(ctx);
    assert_int_equal(wolfSSL_CTX_use_certificate_file(ctx, cert.crt, WOLFSSL_FILETYPE_PEM), WOLFSSL_SUCCESS);
    assert_int_equal(wolfSSL_CTX_use_PrivateKey_file(ctx, cert.key, WOLFSSL_FILETYPE_PEM), WOLFSSL_SUCCESS);
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
#endif

static px_tls_ctx_t *pqproxy_server_ctx(void)
{
    px_tls_config_t cfg;
    px_tls_ctx_t *ctx;
    char err[256];
    memset(&cfg, 0, sizeof cfg);
    cfg.groups[0] = 0x11EC;   /* X25519MLKEM768 */
    cfg.group_count = 1;
    cfg.pq_policy = PX_PQ_REQUIRE;
    cfg.min_version = 13;
    cfg.certs[0].cert_file = cert.crt;
    cfg.certs[0].key_file = cert.key;
    cfg.cert_count = 1;
    ctx = px_tls_ctx_server_new(&cfg, err, sizeof err);
    if (!ctx)
        fail_msg("server context: %s", err);
    return ctx;
}

static void test_pqproxy_server_contexts_ask(void **state)
{
    px_tls_ctx_t *ctx = pqproxy_server_ctx();
    (void)state;
#ifdef WOLFSSL_HAVE_CTX_USE_THREAD_RNG
    assert_true(px_tls_ctx_thread_rng(ctx));
#else
    assert_false(px_tls_ctx_thread_rng(ctx));   /* a DRBG per session, as wolfSSL has it */
#endif
    px_tls_ctx_unref(ctx);
}

/* --- a session that leaves its thread (debug builds abort) ------------------------ */

static void *read_elsewhere(void *arg)
{
    char buf[16];
    (void)px_tls_read(arg, buf, sizeof buf);
    return NULL;
}

/* Starts a server session on this thread (a ClientHello in, so wolfSSL's
 * session exists and took this thread's DRBG), then reads from it on
 * another thread. Runs in a child: exits 0 when the read came back. */
static void use_on_other_thread(void)
{
    const uint16_t groups[] = { 0x11EC };
    px_tls_client_opts_t co;
    px_tls_ctx_t *sctx = pqproxy_server_ctx(), *cctx;
    px_tls_t *c, *s;
    px_buf_t *hello;
    char err[256], *p;
    pthread_t th;

    memset(&co, 0, sizeof co);
    co.groups = groups;
    co.group_count = 1;
    if (!(cctx = px_tls_ctx_client_new(&co, err, sizeof err)))
        _exit(2);
    c = px_tls_new(cctx, "localhost");
    s = px_tls_new(sctx, NULL);
    if (!c || !s || px_tls_handshake(c) != PX_EAGAIN)
        _exit(3);
    hello = px_tls_out(c);
    if (!(p = px_tls_in_reserve(s, px_buf_size(hello))))
        _exit(4);
    memcpy(p, px_buf_ptr(hello), px_buf_size(hello));
    px_tls_in_commit(s, px_buf_size(hello));
    if (px_tls_handshake(s) != PX_EAGAIN)
        _exit(5);
    if (pthread_create(&th, NULL, read_elsewhere, s) != 0 || pthread_join(th, NULL) != 0)
        _exit(6);
    _exit(0);
}

static void test_session_stays_on_its_thread(void **state)
{
    int st;
    pid_t pid;
    (void)state;
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        use_on_other_thread();
    assert_int_equal(waitpid(pid, &st, 0), pid);
#if defined(PX_CHECK_THREADS) && defined(WOLFSSL_HAVE_CTX_USE_THREAD_RNG)
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGABRT)
        fail_msg("a session used on another thread was not caught (status %#x)", st);
#else
    /* Release builds do not check; the child only has to have got that far. */
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("the child stopped early (status %#x)", st);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#ifdef WOLFSSL_HAVE_CTX_USE_THREAD_RNG
        cmocka_unit_test(test_one_drbg_per_thread),
        cmocka_unit_test(test_default_one_drbg_per_session),
#endif
        cmocka_unit_test(test_pqproxy_server_contexts_ask),
        cmocka_unit_test(test_session_stays_on_its_thread),
    };
    return cmocka_run_group_tests(tests, make_cert, remove_cert);
}
