/* Blocking socket I/O with a deadline (see sockio.h). */
#include "core/sockio.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include "core/errors.h"

#define RECV_CHUNK 16384

long long px_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int px_wait_fd(int fd, short events, long long deadline, const volatile sig_atomic_t *stop)
{
    for (;;) {
        long long left = deadline - px_now_ms();
        struct pollfd pfd = { fd, events, 0 };
        int rc;
        if (left <= 0)
            return 0;
        rc = poll(&pfd, 1, (int)left);
        if (rc < 0 && errno == EINTR && !(stop && *stop))
            continue;
        return rc < 0 ? -1 : rc > 0;
    }
}

/* One send(), waiting out a full socket buffer: bytes sent or a PX_E* code. */
static ssize_t send_some(int fd, const char *p, size_t n, long long deadline,
                         const volatile sig_atomic_t *stop)
{
    for (;;) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        int ready;
        if (w > 0)
            return w;
        if (w < 0 && errno == EINTR)
            continue;
        if (w == 0 || errno != EAGAIN)
            return PX_EIO;
        if ((ready = px_wait_fd(fd, POLLOUT, deadline, stop)) <= 0)
            return ready == 0 ? PX_ETIMEOUT : PX_EIO;
    }
}

int px_sock_send_all(int fd, const void *p, size_t n, long long deadline,
                     const volatile sig_atomic_t *stop)
{
    for (size_t off = 0; off < n;) {
        ssize_t w = send_some(fd, (const char *)p + off, n - off, deadline, stop);
        if (w < 0)
            return (int)w;
        off += (size_t)w;
    }
    return 0;
}

int px_sock_flush_tls(int fd, px_tls_t *tls, long long deadline, const volatile sig_atomic_t *stop)
{
    px_buf_t *o = px_tls_out(tls);
    while (px_buf_size(o)) {
        ssize_t w = send_some(fd, px_buf_ptr(o), px_buf_size(o), deadline, stop);
        if (w < 0)
            return (int)w;
        px_buf_consume(o, (size_t)w);
    }
    return 0;
}

ssize_t px_sock_recv(int fd, void *buf, size_t cap, long long deadline,
                     const volatile sig_atomic_t *stop)
{
    for (;;) {
        int ready = px_wait_fd(fd, POLLIN, deadline, stop);
        ssize_t r;
        if (ready <= 0)
            return ready == 0 ? PX_ETIMEOUT : PX_EIO;
        r = recv(fd, buf, cap, 0);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        return r < 0 ? PX_EEOF : r;
    }
}

int px_sock_fill_tls(int fd, px_tls_t *tls, long long deadline, const volatile sig_atomic_t *stop)
{
    /* Reserving before the wait changes nothing: callers come here once
     * wolfSSL has drained the input, so only allocation failure refuses it. */
    char *p = px_tls_in_reserve(tls, RECV_CHUNK);
    ssize_t r;
    if (!p)
        return PX_ENOMEM;
    r = px_sock_recv(fd, p, RECV_CHUNK, deadline, stop);
    if (r > 0) {
        px_tls_in_commit(tls, (size_t)r);
        return 1;
    }
    if (r == 0 || r == PX_EEOF)
        px_tls_in_eof(tls);
    return (int)r;
}
