/* The client transport's contract with its owner (transport.h), over a real
 * loopback TCP connection: it never closes inside a call (a failed write
 * returns -1 with its reason and leaves the closing to the owner), the
 * client's EOF reaches the owner once, a lingering close discards input and
 * ends on the client's FIN, and on_closed comes from the loop only after
 * both handles are closed, after which the loop has nothing left. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/tls.h"
#include "net/transport.h"

typedef struct {
    px_transport_t t;
    int inputs, sents, fails, closed, timers;
    int open_at_close;          /* handles still open when on_closed came */
    px_end_reason_t why;
    int read_failed;
    int close_on_input, close_on_fail;
} owner_t;

static void on_input(px_transport_t *t)
{
    owner_t *o = t->ud;
    o->inputs++;
    if (o->close_on_input)
        px_transport_close(t);
}

static void on_sent(px_transport_t *t)
{
    ((owner_t *)t->ud)->sents++;
}

static void on_fail(px_transport_t *t, px_end_reason_t why, int read_failed)
{
    owner_t *o = t->ud;
    o->fails++;
    o->why = why;
    o->read_failed = read_failed;
    if (o->close_on_fail)
        px_transport_close(t);
}

static void on_timer(px_transport_t *t)
{
    ((owner_t *)t->ud)->timers++;
}

static void on_closed(px_transport_t *t)
{
    owner_t *o = t->ud;
    o->closed++;
    o->open_at_close = px_transport_handles_open(t);
}

static const px_transport_cb_t cb = { on_input, on_sent, on_fail, on_timer, on_closed };

static px_tls_ctx_t *ctx;

/* A connected loopback pair: *ours goes to the transport, *peer stays blocking. */
static void tcp_pair(int *ours, int *peer)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int l = socket(AF_INET, SOCK_STREAM, 0);

    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(l, 1), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &len), 0);
    *peer = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(*peer, (struct sockaddr *)&a, sizeof a), 0);
    *ours = accept(l, NULL, NULL);
    assert_true(*ours >= 0);
    close(l);
}

static void start(owner_t *o, uv_loop_t *loop, int *peer)
{
    int fd;
    memset(o, 0, sizeof *o);
    assert_int_equal(uv_loop_init(loop), 0);
    tcp_pair(&fd, peer);
    px_transport_init(&o->t, loop, &cb, o);
    assert_int_equal(px_transport_open(&o->t, fd), 0);
    px_transport_set_tls(&o->t, px_tls_new(ctx, "localhost"), 64 * 1024);
    assert_non_null(px_transport_tls(&o->t));
    assert_string_not_equal(px_transport_peer(&o->t), "");
}

/* Runs the loop out; everything the transport opened must be closed. */
static void finish(owner_t *o, uv_loop_t *loop)
{
    assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(o->closed, 1);
    assert_int_equal(o->open_at_close, 0);
    px_transport_free(&o->t);
    assert_int_equal(uv_loop_close(loop), 0);
}

static void test_close_calls_back_from_the_loop_once(void **state)
{
    uv_loop_t loop;
    owner_t o;
    int peer;
    (void)state;

    start(&o, &loop, &peer);
    px_transport_update_reading(&o.t);
    px_transport_arm(&o.t, 60000);
    px_transport_close(&o.t);
    px_transport_close(&o.t);                   /* idempotent */
    assert_int_equal(o.closed, 0);              /* not inside the call */
    assert_int_equal(px_transport_handles_open(&o.t), 2);
    finish(&o, &loop);
    assert_int_equal(px_transport_handles_open(&o.t), 0);
    assert_int_equal(o.fails + o.inputs + o.timers, 0);
    close(peer);
}

static void test_failed_write_leaves_closing_to_the_owner(void **state)
{
    struct linger lg = { 1, 0 };
    uv_loop_t loop;
    owner_t o;
    int peer;
    (void)state;

    start(&o, &loop, &peer);
    /* The client resets the connection; the ClientHello cannot leave. */
    assert_int_equal(setsockopt(peer, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    close(peer);
    assert_int_equal(px_tls_handshake(px_transport_tls(&o.t)), PX_EAGAIN);
    assert_true(px_transport_pending(&o.t) > 0);
    assert_int_equal(px_transport_flush(&o.t), -1);
    assert_int_equal(px_transport_why(&o.t), PX_END_CLIENT_CLOSED);
    assert_int_equal(o.fails, 0);               /* reported by the return, not a callback */
    assert_false(o.t.closed);                   /* still open: the owner closes */
    px_transport_close(&o.t);
    assert_int_equal(px_transport_flush(&o.t), -1);         /* no use after close */
    finish(&o, &loop);
    assert_int_equal(o.fails, 0);
}

static void test_client_eof_reaches_the_owner(void **state)
{
    uv_loop_t loop;
    owner_t o;
    int peer;
    (void)state;

    start(&o, &loop, &peer);
    o.close_on_input = 1;
    px_transport_update_reading(&o.t);
    assert_int_equal(shutdown(peer, SHUT_WR), 0);
    finish(&o, &loop);
    assert_int_equal(o.inputs, 1);
    assert_true(px_transport_eof(&o.t));
    assert_false(px_transport_got_bytes(&o.t));
    assert_int_equal(o.fails, 0);
    close(peer);
}

static void test_linger_discards_input_and_ends_on_fin(void **state)
{
    uv_loop_t loop;
    owner_t o;
    char b[16];
    int peer, i;
    ssize_t n = -1;
    (void)state;

    start(&o, &loop, &peer);
    o.close_on_fail = 1;
    assert_int_equal(px_transport_begin_close(&o.t, 1), 0);
    assert_int_equal(px_transport_flush(&o.t), 0);  /* nothing staged: our FIN */
    px_transport_update_reading(&o.t);
    assert_int_equal(fcntl(peer, F_SETFL, O_NONBLOCK), 0);
    for (i = 0; i < 1000 && n != 0; i++) {      /* the client sees our FIN ... */
        uv_run(&loop, UV_RUN_NOWAIT);
        n = recv(peer, b, sizeof b, 0);
        if (n != 0)
            usleep(1000);
    }
    assert_int_equal(n, 0);
    assert_int_equal(send(peer, "late bytes", 10, 0), 10);  /* ... its bytes are dropped ... */
    for (i = 0; i < 20; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(o.inputs + o.fails, 0);
    close(peer);                                /* ... and its FIN ends the linger */
    finish(&o, &loop);
    assert_int_equal(o.inputs, 0);
    assert_int_equal(o.fails, 1);
    assert_int_equal(o.why, PX_END_CLIENT_CLOSED);
    assert_int_equal(o.read_failed, 0);
}

static int setup(void **state)
{
    px_tls_client_opts_t opts;
    char err[256];
    (void)state;
    signal(SIGPIPE, SIG_IGN);                   /* as the proxy does (server.c) */
    if (px_tls_global_init() != 0)
        return -1;
    memset(&opts, 0, sizeof opts);
    ctx = px_tls_ctx_client_new(&opts, err, sizeof err);
    return ctx ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    px_tls_ctx_unref(ctx);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_close_calls_back_from_the_loop_once),
        cmocka_unit_test(test_failed_write_leaves_closing_to_the_owner),
        cmocka_unit_test(test_client_eof_reaches_the_owner),
        cmocka_unit_test(test_linger_discards_input_and_ends_on_fin),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
