/* recv()/send() on a libuv stream (core/streamio.h), over a socketpair
 * opened as a uv_pipe_t: readiness reaches the read callback as UV_ENOBUFS
 * with nothing read; px_stream_recv returns the bytes, UV_EAGAIN, UV_EOF
 * (and stops the stream's reading, or a level-triggered poll would spin);
 * px_stream_readable peeks without taking; px_stream_try_send never jumps a
 * queued uv_write, reports a full socket as UV_EAGAIN and a closed peer as
 * UV_EPIPE, without a SIGPIPE. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/streamio.h"

typedef struct {
    uv_pipe_t pipe;
    int calls;                  /* read callbacks */
    ssize_t status;             /* the last one's */
    ssize_t got;                /* px_stream_recv's result in it */
    char buf[64];
    int read_in_cb;             /* whether the callback reads */
} side_t;

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    side_t *x = s->data;
    (void)buf;
    x->calls++;
    x->status = n;
    if (x->read_in_cb)
        x->got = px_stream_recv(s, x->buf, sizeof x->buf);
}

/* A loop and x's end of a socketpair; *peer the other end. reading: -1
 * not started, else started with x->read_in_cb = reading. */
static void open_pair(uv_loop_t *loop, side_t *x, int *peer, int reading)
{
    int sv[2];
    memset(x, 0, sizeof *x);
    assert_int_equal(uv_loop_init(loop), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(uv_pipe_init(loop, &x->pipe, 0), 0);
    assert_int_equal(uv_pipe_open(&x->pipe, sv[0]), 0);
    x->pipe.data = x;
    *peer = sv[1];
    x->read_in_cb = reading;
    if (reading >= 0)
        assert_int_equal(uv_read_start((uv_stream_t *)&x->pipe, px_stream_no_alloc, on_read), 0);
}

static void close_pair(uv_loop_t *loop, side_t *x, int peer)
{
    if (peer >= 0)
        close(peer);
    uv_close((uv_handle_t *)&x->pipe, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

static void test_readiness_then_recv(void **state)
{
    uv_loop_t loop;
    side_t x;
    int peer;

    (void)state;
    open_pair(&loop, &x, &peer, 1);

    /* nothing there: no callback; a direct read is UV_EAGAIN */
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(x.calls, 0);
    assert_int_equal(px_stream_recv((uv_stream_t *)&x.pipe, x.buf, sizeof x.buf), UV_EAGAIN);
    assert_int_equal(px_stream_readable((uv_stream_t *)&x.pipe), 0);

    /* data: libuv reports it (UV_ENOBUFS, nothing read), recv takes it */
    assert_int_equal(write(peer, "hello", 5), 5);
    assert_int_equal(px_stream_readable((uv_stream_t *)&x.pipe), 1);
    assert_int_equal(px_stream_readable((uv_stream_t *)&x.pipe), 1);   /* peeked, not taken */
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(x.calls, 1);
    assert_int_equal(x.status, UV_ENOBUFS);
    assert_int_equal(x.got, 5);
    assert_memory_equal(x.buf, "hello", 5);

    /* EOF: reported once, then the stream no longer reads */
    shutdown(peer, SHUT_WR);
    assert_int_equal(px_stream_readable((uv_stream_t *)&x.pipe), 1);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(x.calls, 2);
    assert_int_equal(x.got, UV_EOF);
    assert_false(uv_is_active((uv_handle_t *)&x.pipe));
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(x.calls, 2);
    close_pair(&loop, &x, peer);
}

/* A callback that does not read is called again on the next turn (the
 * poll is level-triggered): nothing is lost by reading later. */
static void test_unread_data_reported_again(void **state)
{
    uv_loop_t loop;
    side_t x;
    int peer;

    (void)state;
    open_pair(&loop, &x, &peer, 0);
    assert_int_equal(write(peer, "abc", 3), 3);
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(x.calls, 2);
    assert_int_equal(px_stream_recv((uv_stream_t *)&x.pipe, x.buf, sizeof x.buf), 3);
    assert_memory_equal(x.buf, "abc", 3);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(x.calls, 2);
    uv_read_stop((uv_stream_t *)&x.pipe);
    close_pair(&loop, &x, peer);
}

static int write_done;

static void on_written(uv_write_t *req, int status)
{
    (void)req;
    write_done = status == 0 ? 1 : status;
}

static void test_try_send(void **state)
{
    uv_loop_t loop;
    side_t x;
    int peer, n, sz = 4096;
    static char big[1 << 20], in[1 << 16];
    size_t queued = 0, drained = 0;
    uv_write_t req;
    uv_buf_t b;

    (void)state;
    memset(big, 'x', sizeof big);
    open_pair(&loop, &x, &peer, -1);
    assert_int_equal(setsockopt(peer, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz), 0);

    n = px_stream_try_send((uv_stream_t *)&x.pipe, "ping", 4);
    assert_int_equal(n, 4);
    assert_int_equal(read(peer, in, sizeof in), 4);
    assert_memory_equal(in, "ping", 4);

    /* fill the socket: a short count, then UV_EAGAIN */
    for (;;) {
        n = px_stream_try_send((uv_stream_t *)&x.pipe, big, sizeof big);
        if (n == UV_EAGAIN)
            break;
        assert_true(n > 0);
        queued += (size_t)n;
    }
    assert_true(queued > 0 && queued < sizeof big * 8);

    /* a queued uv_write goes first: UV_EAGAIN even once there is room */
    b = uv_buf_init("tail", 4);
    write_done = 0;
    assert_int_equal(uv_write(&req, (uv_stream_t *)&x.pipe, &b, 1, on_written), 0);
    assert_true(uv_stream_get_write_queue_size((uv_stream_t *)&x.pipe) > 0);
    while ((n = (int)read(peer, in, sizeof in)) > 0 && (drained += (size_t)n) < queued)
        ;
    assert_int_equal(px_stream_try_send((uv_stream_t *)&x.pipe, "no", 2), UV_EAGAIN);
    while (!write_done)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(write_done, 1);
    assert_int_equal(read(peer, in, sizeof in), 4);
    assert_memory_equal(in, "tail", 4);

    /* the peer gone: UV_EPIPE, and the process lives (no SIGPIPE) */
    close(peer);
    assert_int_equal(px_stream_try_send((uv_stream_t *)&x.pipe, "late", 4), UV_EPIPE);
    close_pair(&loop, &x, -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readiness_then_recv),
        cmocka_unit_test(test_unread_data_reported_again),
        cmocka_unit_test(test_try_send),
    };
    signal(SIGPIPE, SIG_DFL);       /* a SIGPIPE would end the test */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
