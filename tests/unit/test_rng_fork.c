/* wolfSSL's DRBG after fork(): the child inherits the parent's generator
 * state, and must not draw the bytes the parent draws. pqproxy's wolfSSL
 * patch 0007 detects the fork with a MADV_WIPEONFORK page instead of a
 * getpid() per draw; this is the behaviour that has to survive it.
 * tests/CMakeLists.txt builds this file a second time as
 * test_rng_fork_nowipe, with PX_FAKE_NO_WIPEONFORK: madvise is wrapped at
 * link time so that MADV_WIPEONFORK succeeds and does nothing, as on a
 * kernel, emulator or sandbox that ignores it. The patch must notice (a
 * child that still sees the page) and keep the getpid() check. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/random.h>

#ifdef PX_FAKE_NO_WIPEONFORK
int __real_madvise(void *addr, size_t len, int advice);
int __wrap_madvise(void *addr, size_t len, int advice);

int __wrap_madvise(void *addr, size_t len, int advice)
{
    if (advice == MADV_WIPEONFORK)
        return 0;   /* accepted, ignored */
    return __real_madvise(addr, len, advice);
}
#endif

static void test_child_draws_differ(void **state)
{
    WC_RNG rng;
    unsigned char warm[16], parent[32], child[32], grandchild[32];
    int fds[2], st;
    pid_t pid;
    (void)state;

    assert_int_equal(wc_InitRng(&rng), 0);
    assert_int_equal(wc_RNG_GenerateBlock(&rng, warm, sizeof warm), 0);
    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* the child also forks once more: the check must hold at every level */
        unsigned char c[32], g[32];
        pid_t gp;
        int ok = wc_RNG_GenerateBlock(&rng, c, sizeof c) == 0;
        gp = fork();
        if (gp == 0) {
            ok = wc_RNG_GenerateBlock(&rng, g, sizeof g) == 0;
            _exit(ok && write(fds[1], g, sizeof g) == (ssize_t)sizeof g ? 0 : 1);
        }
        ok = ok && gp > 0 && waitpid(gp, &st, 0) == gp && WIFEXITED(st) && WEXITSTATUS(st) == 0;
        _exit(ok && write(fds[1], c, sizeof c) == (ssize_t)sizeof c ? 0 : 1);
    }
    assert_int_equal(wc_RNG_GenerateBlock(&rng, parent, sizeof parent), 0);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(fds[1]);
    assert_int_equal(read(fds[0], grandchild, sizeof grandchild), (ssize_t)sizeof grandchild);
    assert_int_equal(read(fds[0], child, sizeof child), (ssize_t)sizeof child);
    close(fds[0]);
    assert_memory_not_equal(parent, child, sizeof parent);
    assert_memory_not_equal(parent, grandchild, sizeof parent);
    assert_memory_not_equal(child, grandchild, sizeof child);
    /* and the parent's own generator goes on working */
    assert_int_equal(wc_RNG_GenerateBlock(&rng, parent, sizeof parent), 0);
    wc_FreeRng(&rng);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_child_draws_differ),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
