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

ssize_t px_stream_recv(uv_stream_t *s, void *buf, size_t len)
{
    uv_os_fd_t fd;
    ssize_t n;
    int err;

    if (uv_fileno((uv_handle_t *)s, &fd) != 0)
        return UV_EBADF;
    do
        n = recv(fd, buf, len, MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n > 0)
        return n;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return UV_EAGAIN;
    err = n == 0 ? UV_EOF : -errno;     /* libuv's codes are -errno here */
    uv_read_stop(s);
    return err;
}

int px_stream_readable(uv_stream_t *s)
{
    uv_os_fd_t fd;
    char c;
    ssize_t n;

    if (uv_fileno((uv_handle_t *)s, &fd) != 0)
        return 1;
    do
        n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    return !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
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
