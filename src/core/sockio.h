/* Blocking socket I/O with a deadline, for the commands that serve or make
 * one connection at a time (request, healthcheck).
 *
 * Deadlines are px_now_ms() times. A wait interrupted by a signal is retried
 * unless `stop` is given and *stop is set (a caller's signal flag);
 * pass NULL to always retry. Errors are negative PX_E* codes with errno
 * left as the failing call set it (or EAGAIN after a send timed out), so
 * callers can still print strerror(errno). */
#ifndef PX_SOCKIO_H
#define PX_SOCKIO_H

#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

#include "net/tls.h"

long long px_now_ms(void);

/* Waits until fd is ready for `events` (POLLIN, POLLOUT): 1 ready,
 * 0 deadline passed, -1 poll failed. */
int px_wait_fd(int fd, short events, long long deadline, const volatile sig_atomic_t *stop);

/* Sends all n bytes: 0, PX_ETIMEOUT, or PX_EIO. */
int px_sock_send_all(int fd, const void *p, size_t n, long long deadline,
                     const volatile sig_atomic_t *stop);

/* Sends all of px_tls_out(tls), consuming what went out: 0, PX_ETIMEOUT, or PX_EIO. */
int px_sock_flush_tls(int fd, px_tls_t *tls, long long deadline, const volatile sig_atomic_t *stop);

/* One recv() once fd is readable: bytes read (> 0), 0 at EOF, PX_ETIMEOUT,
 * PX_EIO (poll failed), or PX_EEOF (recv failed: the stream is over). */
ssize_t px_sock_recv(int fd, void *buf, size_t cap, long long deadline,
                     const volatile sig_atomic_t *stop);

/* More ciphertext into tls's input: 1 got some, 0 at EOF, or px_sock_recv's
 * errors (PX_ENOMEM when no room). At EOF and after PX_EEOF the input is
 * marked ended, so the next px_tls_read reports it. */
int px_sock_fill_tls(int fd, px_tls_t *tls, long long deadline, const volatile sig_atomic_t *stop);

#endif
