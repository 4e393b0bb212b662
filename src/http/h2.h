/* The client-facing HTTP/2 session: one server-side nghttp2 session over
 * memory, no sockets, no timers, no event loop.
 *
 *   bytes in:   px_h2_input(s, p, n)          (plaintext from the transport)
 *   bytes out:  px_h2_output(s, buf, want)    (pulled by the owner while
 *               px_h2_want_write(s); the owner writes them to the transport)
 *   per stream: callbacks on_request (vetted head), on_data, on_end,
 *               on_drained, on_close; the owner answers with px_h2_respond,
 *               px_h2_send, px_h2_end, px_h2_reset, px_h2_consumed.
 *
 * Flow control is backpressure: automatic WINDOW_UPDATE is off, so a
 * stream's (and the connection's) receive window reopens only by what the
 * owner reports gone with px_h2_consumed (the upstream took the bytes).
 * Response bytes are queued per stream (at most cfg->stream_buffer, and
 * cfg->connection_buffer over all streams; px_h2_send takes what fits) and
 * pulled by nghttp2's data provider as the client's windows allow; a
 * stream with nothing queued is deferred and resumed by the next
 * px_h2_send/px_h2_end. on_drained tells the owner how much left, i.e. how
 * much room it has again. A response that ends while its request is still
 * coming is followed by RST_STREAM NO_ERROR (RFC 9113 8.1).
 *
 * Vetting (RFC 9113 8.2, 8.3; tests/unit/test_h2.c shows each case):
 * nghttp2's HTTP messaging checks stay on (pseudo-header set, order,
 * duplicates, response pseudo-headers in requests, connection-specific
 * fields, `te` other than `trailers`, content-length against DATA,
 * upper-case names, and any field name or value with a byte RFC 9113
 * 8.2.1 forbids: no on_invalid_header callback is set, so nghttp2 refuses
 * the stream instead of dropping the field); h2_fields.c adds Host against
 * :authority, framing fields in trailers, and the header list size. A
 * refused request is RST_STREAM PROTOCOL_ERROR (ENHANCE_YOUR_CALM for a
 * size limit) and never reaches on_request.
 *
 * Ownership and re-entrancy:
 * - The session owns its streams. A stream's head (and trailers) passed to
 *   on_request/on_end stay valid until its on_close returns; from
 *   on_close on (inside it too) the stream id is unknown and every px_h2_*
 *   call on it returns PX_ENOTFOUND. A stream is freed only from nghttp2's
 *   stream-close callback (after on_close), never by an owner call.
 * - Callbacks run only inside px_h2_input, px_h2_output and px_h2_free
 *   (px_h2_tick only queues resets; their on_close comes from px_h2_output). From a callback the owner may call px_h2_respond, px_h2_send,
 *   px_h2_end, px_h2_reset, px_h2_consumed, px_h2_set_stream_data,
 *   px_h2_drain and px_h2_goaway (they only queue); px_h2_input,
 *   px_h2_output, px_h2_tick and px_h2_free return PX_EINVAL (or do
 *   nothing) there: nghttp2_session_mem_recv/mem_send are never called
 *   from inside an nghttp2 callback.
 * - px_h2_free calls on_close (NGHTTP2_CANCEL) for each stream still open,
 *   then frees everything; px_h2_output's bytes are the caller's (appended
 *   to its buffer).
 *
 * Abuse limits (cfg, config.h "http2"); each is counted in px_h2_stats_t:
 * rapid reset (resets by or caused by the client beyond reset_budget,
 * refilled at reset_budget per reset_window_ms: GOAWAY ENHANCE_YOUR_CALM), CONTINUATION flood
 * (max_continuations), HPACK bomb / big header lists (max_header_list_size,
 * header_table_size), SETTINGS/PING floods (max_queued_acks), streams over
 * SETTINGS_MAX_CONCURRENT_STREAMS, and zero-window stalls (px_h2_tick). */
#ifndef PX_HTTP_H2_H
#define PX_HTTP_H2_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/errors.h"
#include "http/msg.h"

#include <nghttp2/nghttp2.h>

typedef struct px_h2 px_h2_t;

typedef struct {
    /* A request head, vetted (msg.h: no pseudo-headers among the fields;
     * Host folded into the authority). head->end_stream: no body. */
    void (*on_request)(void *ud, int32_t id, const px_msg_t *head);
    /* Request body bytes; report them with px_h2_consumed when they left. */
    void (*on_data)(void *ud, int32_t id, void *sd, const uint8_t *p, size_t n);
    /* The request ended; trailers: px_msg_trailer_count(head) > 0. */
    void (*on_end)(void *ud, int32_t id, void *sd, const px_msg_t *head);
    /* n queued response bytes left for the client: room for more. */
    void (*on_drained)(void *ud, int32_t id, void *sd, size_t n);
    /* The stream is gone (its last frame sent, or a reset either way);
     * error_code is HTTP/2's (0: NO_ERROR). The last callback for id. */
    void (*on_close)(void *ud, int32_t id, void *sd, uint32_t error_code);
} px_h2_callbacks_t;

typedef struct {
    uint64_t streams;                     /* requests handed to on_request */
    uint64_t refused_vetting;             /* malformed requests (PROTOCOL_ERROR) */
    uint64_t refused_header_size;         /* header list over the limit */
    uint64_t refused_concurrency;         /* REFUSED_STREAM over max streams */
    uint64_t resets_received;             /* RST_STREAM from the client */
    uint64_t rapid_reset_goaways;         /* reset budget spent */
    uint64_t continuation_floods;         /* too many CONTINUATION frames */
    uint64_t ack_floods;                  /* SETTINGS/PING ACKs piled up */
    uint64_t stalled_resets;              /* streams reset by px_h2_tick */
    uint64_t connection_errors;           /* other GOAWAYs we sent with an error */
} px_h2_stats_t;

/* Monotonic milliseconds; tests pass their own clock. NULL: CLOCK_MONOTONIC. */
typedef uint64_t (*px_h2_clock_t)(void *ud);

/* A session with our SETTINGS queued (px_h2_output sends them). cfg is
 * copied. 0, PX_ENOMEM. */
int px_h2_new(const px_http2_config_t *cfg, const px_h2_callbacks_t *cb, void *ud,
              px_h2_clock_t clock, px_h2_t **out) PX_MUST_CHECK;
void px_h2_free(px_h2_t *s);

/* Feeds client bytes (from the connection preface on). 0; PX_EPARSE when
 * the connection must end (a GOAWAY may be queued: flush px_h2_output,
 * then close); PX_ENOMEM; PX_EINVAL from inside a callback. */
int px_h2_input(px_h2_t *s, const void *p, size_t n) PX_MUST_CHECK;
/* Appends pending frames to out until at least `want` bytes were added
 * (0: everything) or nothing is left; a frame is never split, so out may
 * grow past want. 0, PX_EPARSE, PX_EINVAL; PX_ENOMEM / PX_ETOOBIG when out
 * cannot take a frame, which ends the session (bytes would be lost): give
 * out room for at least one frame beyond want, or no limit. */
int px_h2_output(px_h2_t *s, px_buf_t *out, size_t want) PX_MUST_CHECK;
int px_h2_want_write(const px_h2_t *s);
/* Nothing more to read or write: the owner closes the connection. */
int px_h2_want_close(const px_h2_t *s);

/* Associates the owner's pointer with a stream (passed to its callbacks). */
int px_h2_set_stream_data(px_h2_t *s, int32_t id, void *sd) PX_MUST_CHECK;

/* Response head: head->status and its header fields (names lowered,
 * connection-specific fields dropped; a CR, LF or NUL in a value is
 * PX_EPARSE); head->end_stream: no body. Otherwise px_h2_send/px_h2_end. */
int px_h2_respond(px_h2_t *s, int32_t id, const px_msg_t *head) PX_MUST_CHECK;
/* The same from fields already vetted and laid out (px_h2_head_nv). */
int px_h2_respond_nv(px_h2_t *s, int32_t id, const nghttp2_nv *nv, size_t n, int end_stream) PX_MUST_CHECK;
/* Queues body bytes; returns how many fit (0..n) or < 0. */
int64_t px_h2_send(px_h2_t *s, int32_t id, const void *p, size_t n) PX_MUST_CHECK;
/* Ends the response after what is queued; trailers: the trailer fields of
 * `trailers` (px_msg_trailer_*), or NULL. */
int px_h2_end(px_h2_t *s, int32_t id, const px_msg_t *trailers) PX_MUST_CHECK;
/* Response bytes queued on the stream. */
size_t px_h2_queued(const px_h2_t *s, int32_t id);
/* RST_STREAM with code (an NGHTTP2_* error code). */
int px_h2_reset(px_h2_t *s, int32_t id, uint32_t code) PX_MUST_CHECK;
/* n request body bytes of stream id left: reopen the windows by n. */
int px_h2_consumed(px_h2_t *s, int32_t id, size_t n) PX_MUST_CHECK;

/* Graceful GOAWAY for drain and reload: a first GOAWAY (last stream id
 * 2^31-1) and a PING; when its ACK arrives, the final GOAWAY names the last
 * stream we took, later streams are refused, open ones finish. */
int px_h2_drain(px_h2_t *s) PX_MUST_CHECK;
/* Immediate GOAWAY with code; the connection ends once it is sent. */
int px_h2_goaway(px_h2_t *s, uint32_t code) PX_MUST_CHECK;

/* The owner's timer: resets (CANCEL) every stream that had queued response
 * bytes and no window to send them for cfg->stall_timeout_ms, and, with no
 * stream open, frees the finished streams kept for reuse. Returns how
 * many it reset (or PX_EINVAL inside a callback). */
int px_h2_tick(px_h2_t *s) PX_MUST_CHECK;

const px_h2_stats_t *px_h2_stats(const px_h2_t *s);
/* Streams open (opened by the client and not yet closed). */
int px_h2_open_streams(const px_h2_t *s);

#endif
