/* Requests whose HEADERS nghttp2 does not send (src/proxy/h2c_pool.c,
 * on_frame_not_send). nghttp2 then closes the stream as REFUSED_STREAM
 * (on_stream_close), whatever the reason; the pool tells the reasons
 * apart: after a GOAWAY the request goes on a new connection, a head too
 * large for HTTP/2 fails at once (UV_EMSGSIZE) instead of being retried.
 *
 * The pool is included with its px_upstream_* / px_uplink_* calls renamed
 * to a link without a socket (the seam h2c_pool.c's head comment
 * describes, as fuzz/h2c_upstream.c uses it); the test plays the model
 * server's bytes and the link's events. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <uv.h>

#define px_upstream_new t_upstream_new
#define px_upstream_close t_upstream_close
#define px_upstream_set_config t_upstream_set_config
#define px_upstream_connect_fresh t_connect_fresh
#define px_uplink_write t_uplink_write
#define px_uplink_read_start t_uplink_read_start
#define px_uplink_timeout t_uplink_timeout
#define px_uplink_release t_uplink_release
#include "proxy/h2c_pool.c"

/* ---- the link: no socket ---------------------------------------------------- */

struct px_uplink {
    const px_uplink_cb_t *cb;
    void *ud;
    int writing, writes;
};

static struct px_uplink links[4];
static int nlinks, delay_writes;
static char fake_upstream;

px_upstream_t *t_upstream_new(uv_loop_t *loop, const px_upstream_config_t *cfg,
                              const px_timeouts_config_t *t, px_metrics_t *m)
{
    (void)loop, (void)cfg, (void)t, (void)m;
    return (px_upstream_t *)&fake_upstream;
}

void t_upstream_close(px_upstream_t *u)
{
    (void)u;
}

void t_upstream_set_config(px_upstream_t *u, const px_upstream_config_t *cfg,
                           const px_timeouts_config_t *t)
{
    (void)u, (void)cfg, (void)t;
}

int t_connect_fresh(px_upstream_t *u, const px_uplink_cb_t *cb, void *ud, px_uplink_t **out)
{
    (void)u;
    assert_true(nlinks < 4);
    links[nlinks] = (struct px_uplink){ .cb = cb, .ud = ud };
    *out = &links[nlinks++];
    return 0;
}

int t_uplink_write(px_uplink_t *l, px_buf_t *data)
{
    assert_false(l->writing);
    px_buf_reset(data);
    l->writes++;
    l->writing = delay_writes;
    return !delay_writes;                 /* 1: written at once; 0: link_write later */
}

void t_uplink_read_start(px_uplink_t *l)
{
    (void)l;
}

void t_uplink_timeout(px_uplink_t *l, uint32_t ms)
{
    (void)l, (void)ms;
}

void t_uplink_release(px_uplink_t *l, int reusable)
{
    (void)l, (void)reusable;
}

static void link_connected(int i)
{
    links[i].cb->on_connect(&links[i], 0, links[i].ud);
}

static void link_written(int i)
{
    links[i].writing = 0;
    links[i].cb->on_write(&links[i], 0, links[i].ud);
}

static void link_gets(int i, const void *p, size_t n)
{
    links[i].cb->on_read(&links[i], p, (ssize_t)n, links[i].ud);
}

/* ---- the owner ------------------------------------------------------------ */

static int errors[4], last_err[4];

static void on_error(void *ud, int err)
{
    int i = (int)(intptr_t)ud;
    errors[i]++;
    last_err[i] = err;
}

static const px_h2c_cb_t cb = { .on_error = on_error };
static uv_loop_t loop;
static px_h2c_pool_t *pool;
static char big[70 * 1024];
static nghttp2_nv nv[] = {
    { (uint8_t *)":method", (uint8_t *)"GET", 7, 3, 0 },
    { (uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0 },
    { (uint8_t *)":authority", (uint8_t *)"m", 10, 1, 0 },
    { (uint8_t *)":path", (uint8_t *)"/m", 5, 2, 0 },
    { (uint8_t *)"x-big", (uint8_t *)big, 5, 0, 0 },   /* valuelen set per test */
};

static int setup(void **state)
{
    px_upstream_config_t cfg = { .h2c_max_streams = 100, .h2c_max_connections = 64 };
    px_timeouts_config_t t = { 0 };

    (void)state;
    memset(links, 0, sizeof links);
    memset(errors, 0, sizeof errors);
    memset(last_err, 0, sizeof last_err);
    memset(big, 'a', sizeof big);
    nlinks = 0;
    delay_writes = 0;
    nv[4].valuelen = 1;
    assert_int_equal(uv_loop_init(&loop), 0);
    pool = px_h2c_pool_new(&loop, &cfg, &t, NULL);
    return pool ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    px_h2c_pool_close(pool);
    uv_run(&loop, UV_RUN_DEFAULT);
    return uv_loop_close(&loop);         /* 0: every handle closed */
}

static void turn(void)
{
    uv_run(&loop, UV_RUN_NOWAIT);
}

/* The server's SETTINGS (empty), then GOAWAY(last_stream_id 1, NO_ERROR). */
static const uint8_t settings_goaway_1[] = {
    0, 0, 0, 4, 0, 0, 0, 0, 0,
    0, 0, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0,
};

static void test_goaway_before_headers_sent_is_retried(void **state)
{
    px_h2c_stream_t *s1, *s2;

    (void)state;
    delay_writes = 1;
    assert_int_equal(px_h2c_open(pool, nv, 4, 1, &cb, (void *)(intptr_t)1, &s1), 0);
    turn();                               /* connection 0 made, stream 1 submitted */
    assert_int_equal(nlinks, 1);
    link_connected(0);                    /* preface, SETTINGS, HEADERS 1: a write in flight */
    assert_int_equal(links[0].writes, 1);
    assert_int_equal(px_h2c_open(pool, nv, 4, 1, &cb, (void *)(intptr_t)2, &s2), 0);
    turn();                               /* stream 3 submitted there; its HEADERS waits for the write */
    assert_ptr_equal(s2->c, s1->c);
    assert_int_equal(s2->id, 3);
    link_gets(0, settings_goaway_1, sizeof settings_goaway_1);
    assert_true(s1->c->goaway);
    /* The write completes: nghttp2 now refuses to start stream 3 after the
     * GOAWAY (on_frame_not_send: START_STREAM_NOT_ALLOWED) and closes it as
     * REFUSED_STREAM. The model server never saw it: a new connection.
     * (on_stream_close alone already did this before on_frame_not_send was
     * set: this guards that the callback keeps it so.) */
    link_written(0);
    turn();
    assert_int_equal(errors[2], 0);
    assert_int_equal(s2->retries, 1);
    assert_int_equal(nlinks, 2);
    assert_non_null(s2->c);
    assert_ptr_equal(s2->c->link, &links[1]);
    assert_ptr_not_equal(s1->c, s2->c);
    assert_int_equal(errors[1], 0);       /* stream 1 (processed) is still running */
    px_h2c_release(s1);
    px_h2c_release(s2);
}

static void test_head_too_large_fails_at_once(void **state)
{
    px_h2c_stream_t *s;

    (void)state;
    nv[4].valuelen = sizeof big;          /* beyond nghttp2's 64 KiB HEADERS send limit */
    assert_int_equal(px_h2c_open(pool, nv, 5, 1, &cb, (void *)(intptr_t)1, &s), 0);
    turn();
    link_connected(0);                    /* on_frame_not_send: FRAME_SIZE_ERROR */
    for (int i = 0; i < 4; i++)
        turn();
    assert_int_equal(errors[1], 1);
    assert_int_equal(last_err[1], UV_EMSGSIZE);
    assert_int_equal(nlinks, 1);          /* not reopened elsewhere */
    assert_int_equal(px_h2c_pool_connections(pool), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_goaway_before_headers_sent_is_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head_too_large_fails_at_once, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
