/* The http1 upstream pool's connection cap (proxy/upstream.h):
 * upstream.max_connections links at most; beyond, requests wait in FIFO
 * order for a link given back (reused, no new connection) or a slot a
 * closed link frees (a new connection), and are told UV_EBUSY after
 * timeouts.upstream_queue, UV_ECANCELED when the pool closes, UV_EAGAIN
 * when a reload changes its address; a cancelled wait hears nothing; a
 * reload that raises the cap serves the queue; a
 * link someone waits for is handed over even with pool_max_idle 0. Over a
 * real loop and a loopback listener that counts the connections it gets. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "proxy/upstream.h"

typedef struct {
    uv_loop_t loop;
    uv_tcp_t server;
    uv_timer_t tick;            /* bounds each UV_RUN_ONCE's poll */
    uv_tcp_t *accepted[16];
    int naccepted;
    px_upstream_config_t cfg;
    px_timeouts_config_t to;
    px_metrics_t m;
    px_upstream_t *u;
} rig_t;

typedef struct {
    px_upwait_t w;
    px_uplink_t *l;
    int reused, calls, status;
} req_t;

static void on_conn(uv_stream_t *s, int status)
{
    rig_t *r = s->data;
    uv_tcp_t *c;
    assert_int_equal(status, 0);
    assert_true(r->naccepted < 16);
    c = calloc(1, sizeof *c);
    assert_non_null(c);
    uv_tcp_init(&r->loop, c);
    assert_int_equal(uv_accept(s, (uv_stream_t *)c), 0);
    r->accepted[r->naccepted++] = c;
}

static void cb_connect(px_uplink_t *l, int status, void *ud)
{
    req_t *q = ud;
    assert_ptr_equal(q->l, l);      /* stored before the callback */
    q->calls++;
    q->status = status;
}

static void cb_read(px_uplink_t *l, const char *p, ssize_t n, void *ud)
{
    (void)l, (void)p, (void)n, (void)ud;
}

static void cb_write(px_uplink_t *l, int status, void *ud)
{
    (void)l, (void)status, (void)ud;
}

static const px_uplink_cb_t cbs = { cb_connect, cb_read, cb_write };

static void tick_cb(uv_timer_t *t)
{
    (void)t;
}

static void rig_open(rig_t *r, uint32_t max_conns, uint32_t max_idle)
{
    struct sockaddr_in a;
    int len = sizeof a;
    memset(r, 0, sizeof *r);
    assert_int_equal(uv_loop_init(&r->loop), 0);
    uv_tcp_init(&r->loop, &r->server);
    r->server.data = r;
    uv_timer_init(&r->loop, &r->tick);
    uv_timer_start(&r->tick, tick_cb, 5, 5);
    uv_ip4_addr("127.0.0.1", 0, &a);
    assert_int_equal(uv_tcp_bind(&r->server, (struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&r->server, 64, on_conn), 0);
    uv_tcp_getsockname(&r->server, (struct sockaddr *)&a, &len);
    strcpy(r->cfg.addr.host, "127.0.0.1");
    r->cfg.addr.port = ntohs(a.sin_port);
    r->cfg.pool_max_idle = max_idle;
    r->cfg.max_connections = max_conns;
    r->to.upstream_connect = 3000;
    r->to.upstream_queue = 60000;
    r->to.keepalive_idle = 60000;
    r->u = px_upstream_new(&r->loop, &r->cfg, &r->to, &r->m);
    assert_non_null(r->u);
}

/* Runs the loop until cond holds (each turn polls for up to 5 ms: the
 * rig's tick). */
#define RUN_UNTIL(r, cond)                                                        \
    do {                                                                          \
        for (int i_ = 0; i_ < 500 && !(cond); i_++)                               \
            uv_run(&(r)->loop, UV_RUN_ONCE);                                      \
        assert_true(cond);                                                        \
    } while (0)

/* Lets the loop turn a few times with nothing due (a callback that must
 * not come has its chance). */
static void settle_loop(rig_t *r)
{
    for (int i = 0; i < 5; i++)
        uv_run(&r->loop, UV_RUN_ONCE);
}

static int acquire(rig_t *r, req_t *q)
{
    memset(q, 0, sizeof *q);
    return px_upstream_acquire(r->u, &cbs, q, &q->w, &q->l, &q->reused);
}

/* max_connections 1: a holds the link (connected), b waits for it. */
static void held_and_waiting(rig_t *r, req_t *a, req_t *b, uint32_t max_idle)
{
    rig_open(r, 1, max_idle);
    assert_int_equal(acquire(r, a), 0);
    assert_int_equal(acquire(r, b), PX_UPSTREAM_QUEUED);
    RUN_UNTIL(r, a->calls == 1);
    assert_int_equal(a->status, 0);
}

static void rig_close(rig_t *r)
{
    if (r->u)
        px_upstream_close(r->u);
    for (int i = 0; i < r->naccepted; i++)
        uv_close((uv_handle_t *)r->accepted[i], (uv_close_cb)free);
    uv_close((uv_handle_t *)&r->server, NULL);
    uv_close((uv_handle_t *)&r->tick, NULL);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&r->loop), 0);    /* every handle closed: the pool too */
}

/* At the cap a request waits; the link given back goes to it, no new connection. */
static void test_cap_queues_and_hands_over(void **state)
{
    rig_t r;
    req_t a, b, c;
    (void)state;
    rig_open(&r, 2, 8);
    assert_int_equal(acquire(&r, &a), 0);
    assert_int_equal(acquire(&r, &b), 0);
    assert_int_equal(acquire(&r, &c), PX_UPSTREAM_QUEUED);
    assert_null(c.l);
    assert_int_equal(r.m.upstream_queued, 1);
    assert_int_equal(r.m.upstream_queued_total, 1);
    RUN_UNTIL(&r, a.calls == 1 && b.calls == 1 && r.naccepted == 2);
    assert_int_equal(a.status, 0);
    assert_int_equal(c.calls, 0);

    px_uplink_release(a.l, 1);
    assert_int_equal(c.calls, 0);               /* never inside the releasing call */
    RUN_UNTIL(&r, c.calls == 1);
    assert_int_equal(c.status, 0);
    assert_ptr_equal(c.l, a.l);
    assert_true(px_uplink_reused(c.l));
    assert_int_equal(r.m.upstream_queued, 0);
    assert_int_equal(r.m.upstream_connects, 2);
    settle_loop(&r);
    assert_int_equal(r.naccepted, 2);

    px_uplink_release(b.l, 0);
    px_uplink_release(c.l, 0);
    rig_close(&r);
}

/* Oldest first; and one that comes later waits behind them even when a
 * link is idle at that moment. */
static void test_fifo_no_jumping(void **state)
{
    rig_t r;
    req_t a, b, c, d;
    (void)state;
    rig_open(&r, 1, 8);
    assert_int_equal(acquire(&r, &a), 0);
    assert_int_equal(acquire(&r, &b), PX_UPSTREAM_QUEUED);
    assert_int_equal(acquire(&r, &c), PX_UPSTREAM_QUEUED);
    RUN_UNTIL(&r, a.calls == 1);
    px_uplink_release(a.l, 1);                  /* idle now, b's on the next turn */
    assert_int_equal(acquire(&r, &d), PX_UPSTREAM_QUEUED);
    RUN_UNTIL(&r, b.calls == 1);
    assert_int_equal(b.status, 0);
    settle_loop(&r);
    assert_int_equal(c.calls, 0);
    assert_int_equal(d.calls, 0);
    px_uplink_release(b.l, 1);
    RUN_UNTIL(&r, c.calls == 1);
    assert_int_equal(d.calls, 0);
    px_uplink_release(c.l, 1);
    RUN_UNTIL(&r, d.calls == 1);
    assert_int_equal(r.naccepted, 1);
    px_uplink_release(d.l, 1);
    rig_close(&r);
}

/* A closed link frees its slot: the one waiting gets a new connection. */
static void test_closed_link_frees_slot(void **state)
{
    rig_t r;
    req_t a, b;
    (void)state;
    held_and_waiting(&r, &a, &b, 8);
    px_uplink_release(a.l, 0);
    RUN_UNTIL(&r, b.calls == 1 && r.naccepted == 2);
    assert_int_equal(b.status, 0);
    assert_non_null(b.l);
    assert_false(px_uplink_reused(b.l));
    px_uplink_release(b.l, 0);
    rig_close(&r);
}

/* Waiting past timeouts.upstream_queue: UV_EBUSY, no link. */
static void test_queue_timeout(void **state)
{
    rig_t r;
    req_t a, b;
    uint64_t t0;
    (void)state;
    rig_open(&r, 1, 8);
    r.to.upstream_queue = 50;
    px_upstream_set_config(r.u, &r.cfg, &r.to);
    assert_int_equal(acquire(&r, &a), 0);
    RUN_UNTIL(&r, a.calls == 1);
    uv_update_time(&r.loop);
    t0 = uv_now(&r.loop);
    assert_int_equal(acquire(&r, &b), PX_UPSTREAM_QUEUED);
    RUN_UNTIL(&r, b.calls == 1);
    assert_true(uv_now(&r.loop) - t0 >= 50);
    assert_int_equal(b.status, UV_EBUSY);
    assert_null(b.l);
    assert_int_equal(r.m.upstream_queued, 0);
    px_uplink_release(a.l, 1);
    rig_close(&r);
}

/* A cancelled wait hears nothing; the link given back stays idle. */
static void test_cancel(void **state)
{
    rig_t r;
    req_t a, b;
    (void)state;
    held_and_waiting(&r, &a, &b, 8);
    px_upstream_cancel(&b.w);
    px_upstream_cancel(&b.w);                   /* twice: nothing */
    assert_int_equal(r.m.upstream_queued, 0);
    px_uplink_release(a.l, 1);
    settle_loop(&r);
    assert_int_equal(b.calls, 0);
    assert_int_equal(r.m.upstream_idle, 1);
    rig_close(&r);
}

/* The pool closes with requests waiting: each is told UV_ECANCELED, and the
 * pool's memory goes only after that (ASan would see a use after free). */
static void test_close_with_waiters(void **state)
{
    rig_t r;
    req_t a, b, c;
    (void)state;
    rig_open(&r, 1, 8);
    assert_int_equal(acquire(&r, &a), 0);
    assert_int_equal(acquire(&r, &b), PX_UPSTREAM_QUEUED);
    assert_int_equal(acquire(&r, &c), PX_UPSTREAM_QUEUED);
    RUN_UNTIL(&r, a.calls == 1);
    px_upstream_close(r.u);
    assert_int_equal(b.calls, 0);
    RUN_UNTIL(&r, b.calls == 1 && c.calls == 1);
    assert_int_equal(b.status, UV_ECANCELED);
    assert_int_equal(c.status, UV_ECANCELED);
    px_uplink_release(a.l, 1);                  /* closed: the pool is going */
    r.u = NULL;
    rig_close(&r);
}

/* A reload that raises max_connections serves the queue at once. */
static void test_reload_raises_cap(void **state)
{
    rig_t r;
    req_t a, b;
    (void)state;
    held_and_waiting(&r, &a, &b, 8);
    r.cfg.max_connections = 2;
    px_upstream_set_config(r.u, &r.cfg, &r.to);
    RUN_UNTIL(&r, b.calls == 1 && r.naccepted == 2);
    assert_int_equal(b.status, 0);
    px_uplink_release(a.l, 0);
    px_uplink_release(b.l, 0);
    rig_close(&r);
}

/* A reload that gives the pool another address (named upstreams are pools
 * by position: another upstream may be at this one now) sends those
 * waiting back to ask again (UV_EAGAIN), instead of to the new address;
 * one that keeps the address keeps them waiting. */
static void test_reload_new_address_requeues(void **state)
{
    rig_t r;
    req_t a, b;
    (void)state;
    held_and_waiting(&r, &a, &b, 8);
    r.to.upstream_connect = 2000;
    px_upstream_set_config(r.u, &r.cfg, &r.to);
    settle_loop(&r);
    assert_int_equal(b.calls, 0);
    r.cfg.addr.port++;
    px_upstream_set_config(r.u, &r.cfg, &r.to);
    RUN_UNTIL(&r, b.calls == 1);
    assert_int_equal(b.status, UV_EAGAIN);
    assert_null(b.l);
    assert_int_equal(r.m.upstream_queued, 0);
    px_uplink_release(a.l, 0);
    rig_close(&r);
}

/* pool_max_idle 0 closes given-back links, but not one someone waits for. */
static void test_no_idle_pool_still_hands_over(void **state)
{
    rig_t r;
    req_t a, b;
    (void)state;
    held_and_waiting(&r, &a, &b, 0);
    px_uplink_release(a.l, 1);
    RUN_UNTIL(&r, b.calls == 1);
    assert_ptr_equal(b.l, a.l);
    px_uplink_release(b.l, 1);                  /* no one waits: closed */
    settle_loop(&r);
    assert_int_equal(r.m.upstream_idle, 0);
    assert_int_equal(r.naccepted, 1);
    rig_close(&r);
}

/* 0: no cap (as before the cap existed). */
static void test_zero_is_unlimited(void **state)
{
    rig_t r;
    req_t q[6];
    (void)state;
    rig_open(&r, 0, 8);
    for (int i = 0; i < 6; i++)
        assert_int_equal(acquire(&r, &q[i]), 0);
    RUN_UNTIL(&r, r.naccepted == 6);
    for (int i = 0; i < 6; i++)
        px_uplink_release(q[i].l, 0);
    rig_close(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cap_queues_and_hands_over),
        cmocka_unit_test(test_fifo_no_jumping),
        cmocka_unit_test(test_closed_link_frees_slot),
        cmocka_unit_test(test_queue_timeout),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_close_with_waiters),
        cmocka_unit_test(test_reload_raises_cap),
        cmocka_unit_test(test_reload_new_address_requeues),
        cmocka_unit_test(test_no_idle_pool_still_hands_over),
        cmocka_unit_test(test_zero_is_unlimited),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
