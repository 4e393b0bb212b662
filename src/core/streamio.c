/* recv() and send() on a libuv stream's socket (see streamio.h). */
#include "core/streamio.h"

#include <errno.h>
#include <limits.h>
#include <sys/socket.h>

void px_stream_no_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    buf->base = NULL;
    buf->len = 0;
}

/* One recv() with flags: bytes (0 at EOF), UV_EAGAIN, or a negative libuv
 * error (libuv's codes are -errno here). */
static ssize_t recv_once(uv_stream_t *s, void *buf, size_t len, int flags)
{
    uv_os_fd_t fd;
    ssize_t n;

    if (uv_fileno((uv_handle_t *)s, &fd) != 0)
        return UV_EBADF;
    do
        n = recv(fd, buf, len, flags | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n >= 0)
        return n;
    return errno == EAGAIN || errno == EWOULDBLOCK ? UV_EAGAIN : -errno;
}

ssize_t px_stream_recv(uv_stream_t *s, void *buf, size_t len)
{
    ssize_t n = recv_once(s, buf, len, 0);

    if (n > 0 || n == UV_EAGAIN)
        return n;
    uv_read_stop(s);
    return n == 0 ? UV_EOF : n;
}

int px_stream_readable(uv_stream_t *s)
{
    char c;
    return recv_once(s, &c, 1, MSG_PEEK) != UV_EAGAIN;
}

int px_stream_try_send(uv_stream_t *s, const void *p, size_t n)
{
    uv_os_fd_t fd;
    ssize_t w;

    if (uv_stream_get_write_queue_size(s) != 0)
        return UV_EAGAIN;
    if (uv_fileno((uv_handle_t *)s, &fd) != 0)
        return UV_EBADF;
    if (n > INT_MAX)
        n = INT_MAX;
    do
        w = send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    if (w >= 0)
        return (int)w;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return UV_EAGAIN;
    return -errno;
}
