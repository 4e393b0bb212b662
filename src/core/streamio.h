/* recv() and send() on a libuv stream's socket, for the proxy's hot paths.
 *
 * libuv reads and writes a stream with read() and write(), which go
 * through the VFS layer (the file-position lock, permission hooks, an
 * iov_iter) before reaching the socket; recv() and send() go to it
 * directly. On the proxy's path (about one read and one write per request
 * on each side) that layer was 2.5% of the CPU per request (perf, HTTP/2
 * through pqproxy, docs/benchmarks.md).
 *
 * Reading: start the stream with uv_read_start(s, px_stream_no_alloc,
 * read_cb). Offered no buffer, libuv reads nothing and reports that the
 * socket is readable as UV_ENOBUFS (uv_alloc_cb's contract); read_cb then
 * reads with px_stream_recv. Writing: px_stream_try_send in place of
 * uv_try_write, with uv_write for what it leaves. */
#ifndef PX_STREAMIO_H
#define PX_STREAMIO_H

#include <sys/types.h>
#include <uv.h>

/* Full reads a read callback makes per readiness at most (libuv's own
 * number): a fast sender does not cost one poll per buffer, nor hold the
 * loop for long. */
#define PX_STREAM_READ_BURST 32

/* uv_alloc_cb offering no buffer (above). */
void px_stream_no_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);

/* One recv() into buf: bytes read (> 0), UV_EOF, UV_EAGAIN when nothing is
 * there, or a negative libuv error. At EOF and after an error the stream
 * stops reading (uv_read_stop), as it does when libuv reads: a level-
 * triggered poll would report the socket again and again. */
ssize_t px_stream_recv(uv_stream_t *s, void *buf, size_t len);

/* Whether a socket reported readable holds data, an EOF or an error
 * (1) or nothing after all (0), reading none of it: for a pooled link,
 * which must stay silent. */
int px_stream_readable(uv_stream_t *s);

/* As uv_try_write with one buffer: bytes the socket took (> 0),
 * UV_EAGAIN when none or when a uv_write is still queued (its bytes go
 * first), or a negative libuv error. Never raises SIGPIPE. */
int px_stream_try_send(uv_stream_t *s, const void *p, size_t n);

#endif
