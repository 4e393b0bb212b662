/* Streams to an h2c model server (cleartext HTTP/2, prior knowledge), per
 * worker: a few multiplexed connections, each an nghttp2 client session
 * over memory on a px_uplink_t (upstream.h) that moves its bytes.
 *
 * - Streams per connection: at most the config's h2c_max_streams and the
 *   peer's SETTINGS_MAX_CONCURRENT_STREAMS; a new connection when all are
 *   full.
 * - GOAWAY from the model server: that connection takes no new stream;
 *   streams above its last_stream_id (not processed) are opened again on
 *   another connection, with the request head and the body bytes sent so
 *   far (kept up to PX_H2C_REPLAY_MAX, beyond that the stream fails);
 *   the others finish. A connection that fails fails its streams.
 * - Liveness: a PING when a connection opens and when a stream times out
 *   with nothing at all read from its connection meanwhile (then no new
 *   stream goes there until the answer); no answer within
 *   h2c_ping_timeout ends the connection, and its streams fail with
 *   PX_H2C_EUNRESPONSIVE, instead of each waiting out its own timeout on a
 *   model server that is wedged with its socket open.
 * - Flow control is backpressure: automatic WINDOW_UPDATE is off; a
 *   stream's window reopens only by what the owner reports taken
 *   (px_h2c_consumed). Request body bytes are queued per stream up to
 *   PX_H2C_STREAM_BUF; px_h2c_write takes what fits and on_drain says when
 *   there is room again.
 *
 * Callbacks run only from the loop (never inside the px_h2c_* call that
 * led to them). After on_end or on_error the stream is the pool's: the
 * owner forgets it (no px_h2c_release). Otherwise the owner ends it with
 * px_h2c_release (RST_STREAM CANCEL if still open); nothing is called back
 * after that. Inside a callback the owner may call any px_h2c_* function. */
#ifndef PX_H2C_POOL_H
#define PX_H2C_POOL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include <nghttp2/nghttp2.h>

#include "config/config.h"
#include "http/msg.h"
#include "proxy/metrics.h"

#define PX_H2C_STREAM_BUF (64 * 1024)    /* request body bytes queued per stream */
#define PX_H2C_MAX_FIELDS 256            /* fields in a response head, and in its trailers */
#define PX_H2C_REPLAY_MAX (64 * 1024)    /* sent body bytes kept for a retry after GOAWAY */
#define PX_H2C_WINDOW (256 * 1024)       /* response bytes in flight per stream */
#define PX_H2C_MAX_RETRIES 2             /* reopenings of a stream the server did not process */
#define PX_H2C_EUNRESPONSIVE UV_EHOSTDOWN /* on_error: a PING went unanswered */

typedef struct px_h2c_pool px_h2c_pool_t;
typedef struct px_h2c_stream px_h2c_stream_t;

typedef struct {
    /* The final response head (status, fields); head->end_stream: no body
     * (a gRPC trailers-only response: on_end follows at once). */
    void (*on_head)(void *ud, const px_msg_t *head);
    /* Response body bytes; report them with px_h2c_consumed once taken. */
    void (*on_data)(void *ud, const uint8_t *p, size_t n);
    /* The response is complete; its trailer fields are px_msg_trailer_*
     * of m (count 0: none). */
    void (*on_end)(void *ud, const px_msg_t *m);
    /* The stream failed: err is a libuv code (UV_ECONNREFUSED, UV_EOF,
     * UV_ECONNRESET, UV_ETIMEDOUT, UV_EPROTO for a protocol error or a
     * reset by the model server, UV_EMSGSIZE for a request head too large
     * to send as HTTP/2, UV_E2BIG for a response head or trailer section
     * past max_head bytes or PX_H2C_MAX_FIELDS fields, PX_H2C_EUNRESPONSIVE
     * when its connection went without an answer to a PING for
     * h2c_ping_timeout). */
    void (*on_error)(void *ud, int err);
    /* Request body bytes left: px_h2c_write has room again. */
    void (*on_drain)(void *ud);
} px_h2c_cb_t;

/* max_head: http.max_header_bytes, the bound on a response's head and on
 * its trailers (each; SETTINGS_MAX_HEADER_LIST_SIZE says so to the model
 * server); a stream past it fails with UV_E2BIG. */
px_h2c_pool_t *px_h2c_pool_new(uv_loop_t *loop, const px_upstream_config_t *cfg,
                               const px_timeouts_config_t *timeouts, uint32_t max_head,
                               px_metrics_t *m);
/* Closes the connections; streams their owners still hold get no more
 * callbacks (px_h2c_release frees them, also after this). The memory goes
 * once the last link is closed. */
void px_h2c_pool_close(px_h2c_pool_t *p);
/* Reload: new connections use cfg; open ones finish their streams. */
void px_h2c_pool_set_config(px_h2c_pool_t *p, const px_upstream_config_t *cfg,
                            const px_timeouts_config_t *timeouts, uint32_t max_head);

/* Opens a stream with request fields nv (pseudo-headers first; copied);
 * end_stream: no body follows. 0 or PX_ENOMEM. */
int px_h2c_open(px_h2c_pool_t *p, const nghttp2_nv *nv, size_t n, int end_stream,
                const px_h2c_cb_t *cb, void *ud, px_h2c_stream_t **out);
/* Queues request body bytes: returns how many fit (0..n). */
size_t px_h2c_write(px_h2c_stream_t *s, const void *p, size_t n);
/* The request body ends after what is queued, with trailer fields
 * trailers[0..n) (copied; n 0: none) in a HEADERS frame that ends the
 * stream. Nothing for a stream opened with end_stream. 0 or PX_ENOMEM. */
int px_h2c_end(px_h2c_stream_t *s, const nghttp2_nv *trailers, size_t n) PX_MUST_CHECK;
/* n response body bytes were taken: the stream's window reopens by n. */
void px_h2c_consumed(px_h2c_stream_t *s, size_t n);
/* The owner is done with the stream. */
void px_h2c_release(px_h2c_stream_t *s);

/* Connections open (tests, metrics). */
int px_h2c_pool_connections(const px_h2c_pool_t *p);

#endif
