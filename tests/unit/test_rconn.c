/* sig/rconn: the Redis connection against a server on the same loop that
 * misbehaves on purpose. Every test ends with uv_loop_close() == 0: every
 * handle was closed (and the connection's memory freed in its close callback). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <uv.h>

#include "sig/rconn.h"

static uv_loop_t loop;
static uv_tcp_t srv, peer;
static int peer_open;
static const char *greeting;      /* written by the server on accept, or NULL */
static uv_write_t greet_req;

static int events[3], nulls, refused, accepted;
static char last_why[400];
static px_rconn_t *conn;

static void on_peer_written(uv_write_t *w, int status)
{
    (void)w;
    (void)status;
}

static void on_conn(uv_stream_t *s, int status)
{
    assert_int_equal(status, 0);
    uv_tcp_init(&loop, &peer);
    assert_int_equal(uv_accept(s, (uv_stream_t *)&peer), 0);
    peer_open = 1;
    if (greeting) {
        uv_buf_t b = uv_buf_init((char *)greeting, (unsigned)strlen(greeting));
        uv_write(&greet_req, (uv_stream_t *)&peer, &b, 1, on_peer_written);
    }
    /* never reads: what the client sends piles up in the socket buffers */
}

static void on_reply(px_rconn_t *c, redisReply *rep, void *priv)
{
    (void)c;
    (void)priv;
    if (!rep)
        nulls++;
}

static void fill(px_rconn_t *c)
{
    static char big[64 * 1024];
    const char *argv[] = { "SET", "k", big };
    size_t lens[] = { 3, 1, sizeof big };

    memset(big, 'x', sizeof big);
    for (int i = 0; i < 1000 && !refused; i++) {
        if (px_rconn_command(c, 3, argv, lens, on_reply, NULL) == 0)
            accepted++;
        else
            refused = 1;
    }
}

static void on_event(px_rconn_t *c, px_rconn_event_t ev, const char *why)
{
    events[ev]++;
    snprintf(last_why, sizeof last_why, "%s", why ? why : "");
    if (ev == PX_RCONN_CONNECTED && !greeting) {
        fill(c);
        uv_stop(&loop);
    }
    if (ev != PX_RCONN_CONNECTED) {
        conn = NULL;              /* gone: it frees itself after this */
        uv_stop(&loop);
    }
}

static void closed(uv_handle_t *h)
{
    (void)h;
}

static int setup(void **state)
{
    struct sockaddr_in a;
    int len = sizeof a;
    char why[200];
    (void)state;

    memset(events, 0, sizeof events);
    nulls = refused = accepted = peer_open = 0;
    assert_int_equal(uv_loop_init(&loop), 0);
    uv_tcp_init(&loop, &srv);
    uv_ip4_addr("127.0.0.1", 0, &a);
    assert_int_equal(uv_tcp_bind(&srv, (struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&srv, 8, on_conn), 0);
    uv_tcp_getsockname(&srv, (struct sockaddr *)&a, &len);
    conn = px_rconn_open(&loop, "127.0.0.1", ntohs(a.sin_port), 0, NULL, NULL, on_event, NULL,
                         why, sizeof why);
    assert_non_null(conn);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    px_rconn_close(conn);
    if (peer_open)
        uv_close((uv_handle_t *)&peer, closed);
    uv_close((uv_handle_t *)&srv, closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    return 0;
}

/* A server that does not read: commands are refused once 4 MiB wait
 * unsent; closing answers every accepted one with NULL, once. */
static void test_backpressure(void **state)
{
    (void)state;
    greeting = NULL;
    uv_run(&loop, UV_RUN_DEFAULT);             /* stopped by on_event after fill() */
    assert_int_equal(events[PX_RCONN_CONNECTED], 1);
    assert_true(refused);
    assert_true(accepted >= 16 && accepted <= (4 << 20) / (64 * 1024) + 2);
    px_rconn_close(conn);
    conn = NULL;
    assert_int_equal(nulls, accepted);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(nulls, accepted);
    assert_int_equal(events[PX_RCONN_CLOSED], 0);   /* closed by its owner: no event */
}

/* A reply before any command: dropped with the reason, from the loop. */
static void test_reply_to_no_command(void **state)
{
    (void)state;
    greeting = "+OK\r\n";
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(events[PX_RCONN_CLOSED], 1);
    assert_non_null(strstr(last_why, "a reply to no command"));
}

/* The same from Redis's "-ERR max number of clients reached". */
static void test_error_before_command(void **state)
{
    (void)state;
    greeting = "-ERR max number of clients reached\r\n";
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(events[PX_RCONN_CLOSED], 1);
    assert_string_equal(last_why, "redis said: ERR max number of clients reached");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_backpressure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reply_to_no_command, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_before_command, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
