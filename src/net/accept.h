/* Accepting when file descriptors run out.
 *
 * At RLIMIT_NOFILE, accept4() fails with EMFILE (or ENFILE system-wide) and
 * the connection stays queued: a level-triggered poll would spin on it.
 * libuv's listeners have their own remedy (close a spare descriptor, accept
 * and close every queued connection, reopen the spare) but never call the
 * connection callback, so the drop goes unseen, and its admin port drops
 * probes as well. pqproxy's listeners therefore accept themselves, with
 * spare descriptors of their own: px_accept gives one up to take the queued
 * connection, which the caller serves (the admin port) or closes at once
 * (a worker), and px_spares_refill takes spares back once descriptors are
 * free again. */
#ifndef PX_ACCEPT_H
#define PX_ACCEPT_H

#include "config/config.h"

#define PX_SPARES_MAX 4

/* A non-blocking, close-on-exec listening socket on a (numeric address),
 * SO_REUSEADDR, and SO_REUSEPORT when reuseport (one per worker: the kernel
 * spreads connections among them). The fd, or -EINVAL for an address that
 * is not numeric, or -errno. */
int px_listen(const px_addr_t *a, int reuseport, int backlog);

typedef struct {
    int fd[PX_SPARES_MAX];
    int want;                /* how many to hold */
} px_spares_t;

/* Holds `want` (<= PX_SPARES_MAX) spare descriptors, as many as it can now. */
void px_spares_init(px_spares_t *s, int want);
/* Reopens spares given up; 1 when all are held again. */
int px_spares_refill(px_spares_t *s);
void px_spares_free(px_spares_t *s);

/* accept4() on the non-blocking listening socket lfd: a non-blocking,
 * close-on-exec socket, or -1 with errno set (EAGAIN: nothing queued).
 * *out_of_fds is set to 1 when the process had no descriptor left; given
 * spares (s may be NULL), the socket returned then took a spare's place
 * (-1 when no spare was left). */
int px_accept(int lfd, px_spares_t *s, int *out_of_fds);

/* Takes one queued connection through a spare and closes it (the client
 * sees its connection end at once, instead of waiting in the queue), then
 * reopens the spare: 1 dropped one, 0 none was queued, -1 no spare and no
 * descriptor to take one. */
int px_accept_drop(int lfd, px_spares_t *s);

/* 1 when n more descriptors can be opened now (opens and closes them). */
int px_fds_free(int n);

#endif
