/* Accepting with spare descriptors (see accept.h). */
#include "net/accept.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <uv.h>
#include <sys/socket.h>
#include <unistd.h>

int px_listen(const px_addr_t *a, int reuseport, int backlog)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int fd, one = 1, e;

    memset(&ss, 0, sizeof ss);
    if (uv_ip4_addr(a->host, a->port, (struct sockaddr_in *)&ss) == 0)
        sl = sizeof(struct sockaddr_in);
    else if (uv_ip6_addr(a->host, a->port, (struct sockaddr_in6 *)&ss) == 0)
        sl = sizeof(struct sockaddr_in6);
    else
        return -EINVAL;
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) ||
        bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, backlog) != 0) {
        e = errno;
        if (fd >= 0)
            close(fd);
        return -e;
    }
    return fd;
}

static int open_spare(void)
{
    return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

void px_spares_init(px_spares_t *s, int want)
{
    s->want = want < PX_SPARES_MAX ? want : PX_SPARES_MAX;
    for (int i = 0; i < PX_SPARES_MAX; i++)
        s->fd[i] = -1;
    px_spares_refill(s);
}

int px_spares_refill(px_spares_t *s)
{
    for (int i = 0; i < s->want; i++)
        if (s->fd[i] < 0 && (s->fd[i] = open_spare()) < 0)
            return 0;
    return 1;
}

void px_spares_free(px_spares_t *s)
{
    for (int i = 0; i < PX_SPARES_MAX; i++)
        if (s->fd[i] >= 0) {
            close(s->fd[i]);
            s->fd[i] = -1;
        }
}

static int accept_one(int lfd)
{
    int fd;
    do
        fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    while (fd < 0 && (errno == EINTR || errno == ECONNABORTED));
    return fd;
}

static int is_out_of_fds(int fd)
{
    return fd < 0 && (errno == EMFILE || errno == ENFILE);
}

int px_accept(int lfd, px_spares_t *s, int *out_of_fds)
{
    int fd = accept_one(lfd), e;

    *out_of_fds = is_out_of_fds(fd);
    if (!*out_of_fds || !s)
        return fd;
    e = errno;
    /* Another thread may take the descriptor freed here first: then try the
     * next spare. */
    for (int i = 0; i < s->want; i++) {
        if (s->fd[i] < 0)
            continue;
        close(s->fd[i]);
        s->fd[i] = -1;
        fd = accept_one(lfd);
        if (!is_out_of_fds(fd))
            return fd;
    }
    errno = e;
    return -1;
}

int px_accept_drop(int lfd, px_spares_t *s)
{
    int fd, e, i = 0;

    while (i < s->want && s->fd[i] < 0)
        i++;
    if (i == s->want) {
        if (!px_spares_refill(s))
            return -1;
        i = 0;
    }
    close(s->fd[i]);
    s->fd[i] = -1;
    fd = accept_one(lfd);
    e = errno;
    if (fd >= 0)
        close(fd);
    px_spares_refill(s);
    if (fd >= 0)
        return 1;
    return e == EAGAIN || e == EWOULDBLOCK ? 0 : -1;
}

int px_fds_free(int n)
{
    int fds[PX_SPARES_MAX * 2], got = 0;

    if (n > (int)(sizeof fds / sizeof fds[0]))
        n = (int)(sizeof fds / sizeof fds[0]);
    while (got < n && (fds[got] = open_spare()) >= 0)
        got++;
    for (int i = 0; i < got; i++)
        close(fds[i]);
    return got == n;
}
