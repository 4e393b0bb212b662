/* Accepting when descriptors run out (accept.c) and the log rate limiter:
 * under a lowered RLIMIT_NOFILE, accept fails with EMFILE, a spare takes a
 * queued connection (to serve or to close at once), spares come back once
 * descriptors are free, and px_fds_free tells whether headroom is left. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/accept.h"
#include "core/log.h"

static void test_ratelimit(void **state)
{
    px_ratelimit_t r = { 0 };
    uint64_t held = 99;
    (void)state;

    assert_int_equal(px_ratelimit(&r, 5000, 1000, &held), 1);     /* the first one at once */
    assert_int_equal(held, 0);
    for (int i = 0; i < 7; i++)
        assert_int_equal(px_ratelimit(&r, 5000 + 100 * (uint64_t)i, 1000, &held), 0);
    assert_int_equal(px_ratelimit(&r, 5999, 1000, &held), 0);
    assert_int_equal(px_ratelimit(&r, 6000, 1000, &held), 1);
    assert_int_equal(held, 8);                                     /* the ones held back */
    assert_int_equal(px_ratelimit(&r, 9000, 1000, &held), 1);
    assert_int_equal(held, 0);
}

static int listener(uint16_t *port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 16), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

static int client(uint16_t port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

/* 1 when the peer of fd has closed (reads EOF or a reset within 2 s). */
static int peer_closed(int fd)
{
    struct timeval tv = { 2, 0 };
    char c;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ssize_t n = recv(fd, &c, 1, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

static void test_out_of_descriptors(void **state)
{
    struct rlimit saved, low;
    px_spares_t spares;
    uint16_t port;
    int lfd, c1, c2, c3, filler[4096], nfill = 0, fd, out;
    (void)state;

    lfd = listener(&port);
    c1 = client(port);
    c2 = client(port);
    c3 = client(port);
    px_spares_init(&spares, 2);
    assert_true(spares.fd[0] >= 0 && spares.fd[1] >= 0);

    /* use up every descriptor the (lowered) limit allows */
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
    low = saved;
    low.rlim_cur = (rlim_t)c3 + 16;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    while (nfill < 4096 && (filler[nfill] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
        nfill++;
    assert_int_equal(errno, EMFILE);
    assert_int_equal(px_fds_free(1), 0);

    /* no spare: EMFILE reported, the connection stays queued */
    fd = px_accept(lfd, NULL, &out);
    assert_int_equal(fd, -1);
    assert_int_equal(out, 1);
    /* a spare takes it for the caller to serve */
    fd = px_accept(lfd, &spares, &out);
    assert_true(fd >= 0);
    assert_int_equal(out, 1);
    assert_true(spares.fd[0] < 0);
    close(fd);
    assert_int_equal(px_spares_refill(&spares), 1);
    /* or closes it at once, keeping the spare */
    assert_int_equal(px_accept_drop(lfd, &spares), 1);
    assert_true(spares.fd[0] >= 0 && spares.fd[1] >= 0);
    assert_int_equal(px_accept_drop(lfd, &spares), 1);
    assert_int_equal(px_accept_drop(lfd, &spares), 0);    /* nothing queued */
    assert_true(peer_closed(c2));
    assert_true(peer_closed(c3));

    /* descriptors free again: headroom, and accept works without spares */
    for (int i = 0; i < nfill; i++)
        close(filler[i]);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
    assert_int_equal(px_fds_free(4), 1);
    c2 = client(port);
    fd = px_accept(lfd, NULL, &out);
    assert_true(fd >= 0);
    assert_int_equal(out, 0);
    close(fd);
    fd = px_accept(lfd, NULL, &out);
    assert_int_equal(fd, -1);
    assert_int_equal(errno, EAGAIN);
    px_spares_free(&spares);
    close(c1);
    close(c2);
    close(c3);
    close(lfd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ratelimit),
        cmocka_unit_test(test_out_of_descriptors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
