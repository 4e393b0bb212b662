/* Deferred work: an item never runs inside the call that queued it, runs
 * once per queuing, in order, on the next loop turn; an item queued by a
 * callback waits for the turn after (no turn can be kept from polling);
 * cancelled items never run (also when they were all there was); and the loop ends when nothing is queued. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/defer.h"

typedef struct {
    px_defer_item_t it;
    px_defer_t *d;
    int runs, order, requeue;
} item_t;

static int seq;

static void run(px_defer_item_t *it)
{
    item_t *x = (item_t *)it;
    x->runs++;
    x->order = ++seq;
    if (x->requeue-- > 0)
        px_defer_add(x->d, &x->it, run);
}

static void test_runs_later_once_in_order(void **state)
{
    uv_loop_t loop;
    px_defer_t d;
    item_t a, b, c;

    (void)state;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    memset(&c, 0, sizeof c);
    seq = 0;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(px_defer_init(&loop, &d), 0);
    a.d = b.d = c.d = &d;
    px_defer_add(&d, &a.it, run);
    px_defer_add(&d, &b.it, run);
    px_defer_add(&d, &a.it, run);           /* already queued: no second run */
    px_defer_add(&d, &c.it, run);
    assert_true(px_defer_queued(&c.it));
    px_defer_cancel(&c.it);                  /* an owner going away */
    assert_false(px_defer_queued(&c.it));
    assert_int_equal(a.runs + b.runs, 0);    /* nothing runs inside add */
    assert_true(uv_loop_alive(&loop));       /* the idle handle is active while items wait */
    /* one turn runs them; then nothing is queued, the idle handle stopped */
    assert_int_equal(uv_run(&loop, UV_RUN_NOWAIT), 0);
    assert_int_equal(a.runs, 1);
    assert_int_equal(b.runs, 1);
    assert_int_equal(c.runs, 0);
    assert_true(a.order < b.order);
    px_defer_close(&d);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_requeued_waits_for_next_turn(void **state)
{
    uv_loop_t loop;
    px_defer_t d;
    item_t a;

    (void)state;
    memset(&a, 0, sizeof a);
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(px_defer_init(&loop, &d), 0);
    a.d = &d;
    a.requeue = 2;
    px_defer_add(&d, &a.it, run);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(a.runs, 1);             /* queued again from its callback: not this turn */
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(a.runs, 2);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(a.runs, 3);
    /* queued items are dropped, unrun, when the queue closes */
    px_defer_add(&d, &a.it, run);
    px_defer_close(&d);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(a.runs, 3);
    assert_false(px_defer_queued(&a.it));
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* Every item cancelled before its turn: the turn runs nothing (the idle
 * handle was still active over an empty queue) and stops. */
static void test_all_cancelled_before_turn(void **state)
{
    uv_loop_t loop;
    px_defer_t d;
    item_t a;

    (void)state;
    memset(&a, 0, sizeof a);
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(px_defer_init(&loop, &d), 0);
    a.d = &d;
    px_defer_add(&d, &a.it, run);
    px_defer_cancel(&a.it);
    assert_int_equal(uv_run(&loop, UV_RUN_NOWAIT), 0);
    assert_int_equal(a.runs, 0);
    px_defer_add(&d, &a.it, run);            /* the queue still works */
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(a.runs, 1);
    px_defer_close(&d);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runs_later_once_in_order),
        cmocka_unit_test(test_requeued_waits_for_next_turn),
        cmocka_unit_test(test_all_cancelled_before_turn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
