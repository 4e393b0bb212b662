/* The nonce replay cache: duplicates refused within their window, expired
 * entries evicted, memory bounded (full -> refused, never forgetting a live
 * nonce), and correct under concurrent use from many threads (run it under
 * the ASan build; the design is one mutex per shard, nothing lock-free). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "sig/replay.h"

static px_replay_status_t ins(px_replay_t *c, const char *keyid, const char *nonce, int64_t exp,
                              int64_t now)
{
    return px_replay_check_insert(c, keyid, strlen(keyid), nonce, strlen(nonce), exp, now);
}

static void test_basic(void **state)
{
    px_replay_t *c = px_replay_new(1000);
    assert_non_null(c);
    assert_true(px_replay_capacity(c) >= 1000);
    assert_int_equal(ins(c, "a", "nonce-0000000001", 200, 100), PX_REPLAY_FRESH);
    assert_int_equal(ins(c, "a", "nonce-0000000001", 200, 150), PX_REPLAY_SEEN);
    assert_int_equal(ins(c, "a", "nonce-0000000001", 200, 199), PX_REPLAY_SEEN);
    /* the same nonce under another keyid is another entry */
    assert_int_equal(ins(c, "b", "nonce-0000000001", 200, 150), PX_REPLAY_FRESH);
    /* keyid/nonce boundaries are not ambiguous: ("ab","c") != ("a","bc") */
    assert_int_equal(ins(c, "ab", "c", 200, 100), PX_REPLAY_FRESH);
    assert_int_equal(ins(c, "a", "bc", 200, 100), PX_REPLAY_FRESH);
    /* once expired it may be recorded again (the signature window refuses it anyway) */
    assert_int_equal(ins(c, "a", "nonce-0000000001", 300, 200), PX_REPLAY_FRESH);
    assert_int_equal(ins(c, "a", "nonce-0000000001", 300, 250), PX_REPLAY_SEEN);
    /* already over: nothing to remember */
    assert_int_equal(ins(c, "a", "past", 100, 100), PX_REPLAY_FRESH);
    assert_int_equal(ins(c, "a", "past", 100, 100), PX_REPLAY_FRESH);
    assert_int_equal(px_replay_count(c), 4);
    assert_int_equal(px_replay_check_insert(NULL, "a", 1, "b", 1, 2, 1), PX_REPLAY_ERROR);
    px_replay_free(c);
    px_replay_free(NULL);
}

/* A refused request gives its nonce back, but only the entry it recorded
 * (its expiry): an entry another signature recorded since stays. */
static void test_forget(void **state)
{
    px_replay_t *c = px_replay_new(1000);
    assert_non_null(c);
    assert_int_equal(ins(c, "a", "n1", 200, 100), PX_REPLAY_FRESH);
    px_replay_forget(c, "a", 1, "n1", 2, 260);           /* not its expiry: stays */
    assert_int_equal(ins(c, "a", "n1", 200, 110), PX_REPLAY_SEEN);
    px_replay_forget(c, "a", 1, "n1", 2, 200);
    assert_int_equal(ins(c, "a", "n1", 200, 120), PX_REPLAY_FRESH);
    assert_int_equal(ins(c, "a", "n1", 200, 130), PX_REPLAY_SEEN);
    px_replay_forget(c, "a", 1, "never", 5, 200);        /* unknown: nothing happens */
    px_replay_forget(NULL, "a", 1, "n1", 2, 200);
    px_replay_free(c);
}

static void test_capacity_and_eviction(void **state)
{
    px_replay_t *c = px_replay_new(PX_REPLAY_SHARDS * 4); /* 4 per shard */
    char nonce[32];
    int fresh = 0, full = 0, i;

    assert_int_equal(px_replay_capacity(c), PX_REPLAY_SHARDS * 4);
    /* fill with live entries: at most the capacity is accepted, then FULL */
    for (i = 0; i < PX_REPLAY_SHARDS * 20; i++) {
        snprintf(nonce, sizeof nonce, "n%08d", i);
        px_replay_status_t r = ins(c, "k", nonce, 1000, 10);
        if (r == PX_REPLAY_FRESH) fresh++;
        else if (r == PX_REPLAY_FULL) full++;
        else fail_msg("unexpected %d", r);
    }
    assert_int_equal(fresh, PX_REPLAY_SHARDS * 4);
    assert_int_equal(full, PX_REPLAY_SHARDS * 16);
    assert_int_equal(px_replay_count(c), PX_REPLAY_SHARDS * 4);
    /* a full cache still recognises replays of what it holds */
    for (i = 0; i < PX_REPLAY_SHARDS * 20; i++) {
        snprintf(nonce, sizeof nonce, "n%08d", i);
        px_replay_status_t r = ins(c, "k", nonce, 1000, 11);
        assert_true(r == PX_REPLAY_SEEN || r == PX_REPLAY_FULL);
    }
    /* once those expire, the sweep makes room (never before) */
    assert_int_equal(ins(c, "k", "later-000", 2000, 999), PX_REPLAY_FULL);
    fresh = 0;
    for (i = 0; i < PX_REPLAY_SHARDS * 20; i++) {
        snprintf(nonce, sizeof nonce, "m%08d", i);
        if (ins(c, "k", nonce, 2000, 1000) == PX_REPLAY_FRESH)
            fresh++;
    }
    assert_int_equal(fresh, PX_REPLAY_SHARDS * 4);
    assert_int_equal(px_replay_count(c), PX_REPLAY_SHARDS * 4);
    px_replay_free(c);
}

static void test_churn(void **state)
{
    /* a steady stream with windows of 30 s at 50 new nonces per second never
     * needs more than ~1500 live entries: a 4096-entry cache never fills */
    px_replay_t *c = px_replay_new(4096);
    char nonce[32];
    for (int t = 0; t < 600; t++)
        for (int j = 0; j < 50; j++) {
            snprintf(nonce, sizeof nonce, "t%d-%d", t, j);
            assert_int_equal(ins(c, "k", nonce, t + 30, t), PX_REPLAY_FRESH);
            if (j == 0 && t > 0) {
                snprintf(nonce, sizeof nonce, "t%d-%d", t - 1, 7);
                assert_int_equal(ins(c, "k", nonce, t + 29, t), PX_REPLAY_SEEN);
            }
        }
    assert_true(px_replay_count(c) <= 4096);
    px_replay_free(c);
}

#define THREADS 8
#define PER_THREAD 4000

typedef struct {
    px_replay_t *c;
    int id;
    atomic_int *fresh_shared;
    int fresh_own;
} targ_t;

static void *worker(void *p)
{
    targ_t *a = p;
    char nonce[32];
    for (int i = 0; i < PER_THREAD; i++) {
        /* a shared nonce every thread tries (exactly one must win) ... */
        snprintf(nonce, sizeof nonce, "shared-%d", i);
        if (ins(a->c, "k", nonce, 100, 1) == PX_REPLAY_FRESH)
            atomic_fetch_add(a->fresh_shared, 1);
        /* ... and one of its own (always fresh) */
        snprintf(nonce, sizeof nonce, "own-%d-%d", a->id, i);
        if (ins(a->c, "k", nonce, 100, 1) == PX_REPLAY_FRESH)
            a->fresh_own++;
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    px_replay_t *c = px_replay_new(PER_THREAD * (THREADS + 1) * 2);
    pthread_t t[THREADS];
    targ_t a[THREADS];
    atomic_int fresh_shared = 0;

    for (int i = 0; i < THREADS; i++) {
        a[i] = (targ_t){ c, i, &fresh_shared, 0 };
        assert_int_equal(pthread_create(&t[i], NULL, worker, &a[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(a[i].fresh_own, PER_THREAD);
    }
    assert_int_equal(atomic_load(&fresh_shared), PER_THREAD);
    assert_int_equal(px_replay_count(c), PER_THREAD * (THREADS + 1));
    px_replay_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_forget),
        cmocka_unit_test(test_capacity_and_eviction),
        cmocka_unit_test(test_churn),
        cmocka_unit_test(test_concurrent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
