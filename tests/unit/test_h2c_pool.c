/* Request trailers (px_h2c_end): a HEADERS frame after the body that ends
 * the stream, also when the request is opened again on a new connection.
 * Requests whose HEADERS nghttp2 does not send (src/proxy/h2c_pool.c,
 * on_frame_not_send). nghttp2 then closes the stream as REFUSED_STREAM
 * (on_stream_close), whatever the reason; the pool tells the reasons
 * apart: after a GOAWAY the request goes on a new connection, a head too
 * large for HTTP/2 fails at once (UV_EMSGSIZE) instead of being retried.
 *
 * The pool is included with its px_upstream_* / px_uplink_* calls renamed
 * to a link without a socket (the seam h2c_pool.c's head comment
 * describes, as fuzz/h2c_upstream.c uses it); the test plays the model
 * server's bytes and the link's events. Liveness PINGs: sent when a
 * connection opens and when a stream times out in the connection's
 * silence; unanswered, they end the connection. */
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
static px_buf_t wrote[4];                 /* what each link was given to send */
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
    assert_int_equal(px_buf_append(&wrote[l - links], px_buf_ptr(data), px_buf_size(data)), 0);
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
    for (int i = 0; i < 4; i++)
        px_buf_init(&wrote[i], 0);
    memset(errors, 0, sizeof errors);
    memset(last_err, 0, sizeof last_err);
    memset(big, 'a', sizeof big);
    nlinks = 0;
    delay_writes = 0;
    nv[4].valuelen = 1;
    assert_int_equal(uv_loop_init(&loop), 0);
    pool = px_h2c_pool_new(&loop, &cfg, &t, 65536, NULL);
    return pool ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    px_h2c_pool_close(pool);
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < 4; i++)
        px_buf_free(&wrote[i]);
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

/* ---- the model server's view: an nghttp2 server session reads what a link sent */

typedef struct {
    int data_bytes, trailers, trailer_ok, end_on_trailers, end_on_data, data_after_trailers;
} seen_t;

static int srv_on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                         const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    seen_t *sn = ud;
    (void)ng, (void)flags;
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_HEADERS) {
        sn->trailers++;
        sn->trailer_ok += nlen == 10 && !memcmp(name, "x-checksum", 10) && vlen == 3 &&
                          !memcmp(value, "abc", 3);
    }
    return 0;
}

static int srv_on_frame(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
    seen_t *sn = ud;
    int end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    (void)ng;
    if (f->hd.type == NGHTTP2_DATA) {
        sn->data_bytes += (int)f->hd.length;
        sn->end_on_data += end;
        sn->data_after_trailers += sn->trailers > 0;
    } else if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_HEADERS) {
        sn->end_on_trailers += end;
    }
    return 0;
}

static seen_t server_reads(int i)
{
    nghttp2_session_callbacks *cbs;
    nghttp2_session *srv;
    seen_t sn = { 0 };

    assert_int_equal(nghttp2_session_callbacks_new(&cbs), 0);
    nghttp2_session_callbacks_set_on_header_callback(cbs, srv_on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, srv_on_frame);
    assert_int_equal(nghttp2_session_server_new(&srv, cbs, &sn), 0);
    assert_int_equal(nghttp2_session_mem_recv(srv, (const uint8_t *)px_buf_ptr(&wrote[i]),
                                              px_buf_size(&wrote[i])),
                     (ssize_t)px_buf_size(&wrote[i]));
    nghttp2_session_del(srv);
    nghttp2_session_callbacks_del(cbs);
    return sn;
}

/* What link i sent: data_bytes of body, then the one trailer field in a
 * HEADERS frame that ends the stream (the last DATA does not). */
static void assert_body_then_trailer(int i, int data_bytes)
{
    seen_t sn = server_reads(i);
    assert_int_equal(sn.data_bytes, data_bytes);
    assert_int_equal(sn.trailers, 1);
    assert_int_equal(sn.trailer_ok, 1);
    assert_int_equal(sn.end_on_trailers, 1);
    assert_int_equal(sn.end_on_data, 0);
    assert_int_equal(sn.data_after_trailers, 0);
}

static const nghttp2_nv trailers[] = {
    { (uint8_t *)"x-checksum", (uint8_t *)"abc", 10, 3, 0 },
};

/* Body bytes that leave a stream's queue are reported (on_drain) to that
 * stream's owner only, once per pump that took some: its owner writes the
 * rest then. */
static int drains[4];

static void on_drain(void *ud)
{
    drains[(int)(intptr_t)ud]++;
}

static const px_h2c_cb_t cb_drain = { .on_error = on_error, .on_drain = on_drain };

static void test_drain_reported_to_the_stream_whose_body_left(void **state)
{
    px_h2c_stream_t *s1, *s2;
    size_t n;

    (void)state;
    memset(drains, 0, sizeof drains);
    assert_int_equal(px_h2c_open(pool, nv, 4, 0, &cb_drain, (void *)(intptr_t)1, &s1), 0);
    assert_int_equal(px_h2c_open(pool, nv, 4, 0, &cb_drain, (void *)(intptr_t)2, &s2), 0);
    turn();
    link_connected(0);
    n = px_h2c_write(s1, big, sizeof big);
    assert_int_equal(n, PX_H2C_STREAM_BUF);          /* the queue is full: the rest waits */
    assert_int_equal(px_h2c_write(s1, big, 1), 0);
    turn();                                           /* DATA up to the stream's window leaves */
    assert_int_equal(drains[1], 1);
    assert_int_equal(drains[2], 0);                   /* nothing of s2's left: not told */
    assert_true(px_h2c_write(s1, big, sizeof big - n) > 0);   /* room again */
    turn();
    turn();
    assert_int_equal(drains[1], 1);                   /* the window is shut: nothing more left */
    assert_int_equal(errors[1] + errors[2], 0);
    px_h2c_release(s1);
    px_h2c_release(s2);
}

static void test_trailers_end_the_stream(void **state)
{
    px_h2c_stream_t *s;

    (void)state;
    assert_int_equal(px_h2c_open(pool, nv, 4, 0, &cb, (void *)(intptr_t)1, &s), 0);
    turn();
    link_connected(0);
    assert_int_equal(px_h2c_write(s, "hello", 5), 5);
    turn();
    assert_int_equal(px_h2c_end(s, trailers, 1), 0);
    turn();
    assert_body_then_trailer(0, 5);
    assert_int_equal(errors[1], 0);
    px_h2c_release(s);
}

static void test_trailers_without_body_bytes(void **state)
{
    px_h2c_stream_t *s;

    (void)state;
    assert_int_equal(px_h2c_open(pool, nv, 4, 0, &cb, (void *)(intptr_t)1, &s), 0);
    assert_int_equal(px_h2c_end(s, trailers, 1), 0);  /* before it is even submitted */
    turn();
    link_connected(0);
    turn();
    assert_body_then_trailer(0, 0);
    px_h2c_release(s);
}

static void test_trailers_go_again_on_a_retry(void **state)
{
    px_h2c_stream_t *s1, *s2;

    (void)state;
    delay_writes = 1;
    assert_int_equal(px_h2c_open(pool, nv, 4, 1, &cb, (void *)(intptr_t)1, &s1), 0);
    turn();
    link_connected(0);                    /* stream 1's HEADERS: a write in flight */
    assert_int_equal(px_h2c_open(pool, nv, 4, 0, &cb, (void *)(intptr_t)2, &s2), 0);
    assert_int_equal(px_h2c_write(s2, "hello", 5), 5);
    assert_int_equal(px_h2c_end(s2, trailers, 1), 0);
    turn();
    link_gets(0, settings_goaway_1, sizeof settings_goaway_1);
    link_written(0);                      /* stream 3 refused after the GOAWAY: reopened */
    turn();
    assert_int_equal(s2->retries, 1);
    assert_int_equal(nlinks, 2);
    link_connected(1);
    for (int i = 0; i < 4 && links[1].writing; i++) {
        link_written(1);
        turn();
    }
    assert_body_then_trailer(1, 5);
    assert_int_equal(errors[2], 0);
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

/* ---- liveness: PINGs -------------------------------------------------------- */

/* PINGs (not answers) link i sent: its frames read one by one after the
 * client preface. */
static int pings_sent(int i)
{
    const uint8_t *b = (const uint8_t *)px_buf_ptr(&wrote[i]);
    size_t off = 24, n = px_buf_size(&wrote[i]);
    int pings = 0;

    while (off + 9 <= n) {
        size_t len = (size_t)b[off] << 16 | (size_t)b[off + 1] << 8 | b[off + 2];
        pings += b[off + 3] == NGHTTP2_PING && !(b[off + 4] & NGHTTP2_FLAG_ACK);
        off += 9 + len;
    }
    assert_int_equal(off, n);
    return pings;
}

/* The server's SETTINGS (empty), then its answer to a PING (opaque zeros). */
static const uint8_t settings_ping_ack[] = {
    0, 0, 0, 4, 0, 0, 0, 0, 0,
    0, 0, 8, 6, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

/* A GET (owner i) on connection 0, connected. */
static px_h2c_stream_t *get_connected(int i)
{
    px_h2c_stream_t *s;

    assert_int_equal(px_h2c_open(pool, nv, 4, 1, &cb, (void *)(intptr_t)i, &s), 0);
    turn();
    link_connected(0);
    return s;
}

/* A model server that accepts and says nothing: the PING sent with the
 * connection goes unanswered, and at h2c_ping_timeout the connection ends
 * with its streams (not each at its own upstream_response_ms). */
static void test_unanswered_ping_ends_the_connection(void **state)
{
    px_h2c_stream_t *s;
    conn_t *c;

    (void)state;
    pool->cfg.h2c_ping_timeout = 1000;
    s = get_connected(1);
    assert_int_equal(pings_sent(0), 1);
    c = s->c;
    assert_true(c->ping_ms > 0);
    on_tick(&pool->tick);                 /* not yet */
    assert_int_equal(errors[1], 0);
    c->ping_ms -= 1000;
    on_tick(&pool->tick);
    assert_int_equal(errors[1], 1);
    assert_int_equal(last_err[1], PX_H2C_EUNRESPONSIVE);
    assert_int_equal(px_h2c_pool_connections(pool), 0);
}

/* h2c_ping_timeout 0: no PING at all, and silence ends nothing. */
static void test_no_ping_when_disabled(void **state)
{
    px_h2c_stream_t *s;

    (void)state;
    s = get_connected(1);
    assert_int_equal(pings_sent(0), 0);
    assert_int_equal(s->c->ping_ms, 0);
    on_tick(&pool->tick);
    assert_int_equal(errors[1], 0);
    px_h2c_release(s);
}

/* A stream that times out while nothing at all came on its connection:
 * a PING, and until its answer new streams go to another connection; the
 * answer puts the connection back in use. When the connection spoke
 * meanwhile (other streams' bytes) the timeout is the stream's alone: no
 * PING. */
static void test_stream_timeout_in_silence_pings(void **state)
{
    px_h2c_stream_t *s1, *s2, *s3;
    conn_t *c;
    uint64_t now;

    (void)state;
    pool->cfg.h2c_ping_timeout = 1000;
    pool->timeouts.upstream_response = 1000;
    assert_int_equal(px_h2c_open(pool, nv, 4, 1, &cb, (void *)(intptr_t)1, &s1), 0);
    assert_int_equal(px_h2c_open(pool, nv, 4, 1, &cb, (void *)(intptr_t)3, &s3), 0);
    turn();
    link_connected(0);
    link_gets(0, settings_ping_ack, sizeof settings_ping_ack);
    c = s1->c;
    assert_ptr_equal(s3->c, c);
    assert_int_equal(c->ping_ms, 0);

    /* the connection spoke after stream 1's last bytes: no PING */
    now = uv_now(&loop);
    s1->active_ms = now - 2000;
    c->rx_ms = now - 1000;
    on_tick(&pool->tick);
    assert_int_equal(errors[1], 1);
    assert_int_equal(last_err[1], UV_ETIMEDOUT);
    assert_int_equal(c->ping_ms, 0);
    assert_false(c->suspect);
    assert_int_equal(pings_sent(0), 1);   /* the connection's first only */

    /* silent all along stream 3's wait: a PING, and the connection is set aside */
    s3->active_ms = now - 2000;
    c->rx_ms = now - 3000;
    on_tick(&pool->tick);
    assert_int_equal(errors[3], 1);
    assert_int_equal(last_err[3], UV_ETIMEDOUT);
    assert_true(c->ping_ms > 0);
    assert_true(c->suspect);
    assert_int_equal(pings_sent(0), 2);
    assert_int_equal(px_h2c_open(pool, nv, 4, 1, &cb, (void *)(intptr_t)2, &s2), 0);
    turn();
    assert_int_equal(nlinks, 2);
    assert_ptr_not_equal(s2->c, c);

    /* the answer: back in use, nothing ended */
    link_gets(0, settings_ping_ack + 9, sizeof settings_ping_ack - 9);
    assert_int_equal(c->ping_ms, 0);
    assert_false(c->suspect);
    assert_int_equal(px_h2c_pool_connections(pool), 2);
    px_h2c_release(s2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_goaway_before_headers_sent_is_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head_too_large_fails_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drain_reported_to_the_stream_whose_body_left, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trailers_end_the_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trailers_without_body_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trailers_go_again_on_a_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unanswered_ping_ends_the_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_ping_when_disabled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_timeout_in_silence_pings, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
