/* HTTP/1.1 framing over plaintext, on top of llhttp. Pure: no I/O, no TLS.
 *
 * One px_http1_t parses one direction of one connection (requests from a
 * client, or responses from an upstream), message after message. It is a
 * pull parser: each px_http1_parse() call consumes input up to the next
 * event and returns it, so the caller can stop pulling while its sink is
 * full (backpressure) and answer pipelined requests one at a time.
 *
 * Framing is vetted strictly, as a reverse proxy in front of another parser
 * must (request smuggling): both Content-Length and Transfer-Encoding,
 * duplicate or invalid Content-Length, any transfer coding other than a
 * single final "chunked", bare CR or LF, obs-fold, NUL or other control
 * bytes in names or values, invalid chunk sizes, oversized heads: all are
 * errors, reported with the px_http_error_t to answer with and a detail. */
#ifndef PX_HTTP1_H
#define PX_HTTP1_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/errors.h"

typedef struct {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} px_header_t;

typedef enum {
    PX_BODY_NONE = 0,   /* no body (GET without framing, 204, 304, HEAD response, ...) */
    PX_BODY_LENGTH,     /* Content-Length: content_length bytes */
    PX_BODY_CHUNKED,    /* Transfer-Encoding: chunked */
    PX_BODY_EOF         /* response delimited by connection close */
} px_body_kind_t;

/* A complete, vetted message head. All pointers point into memory owned by
 * the parser and stay valid until the next px_http1_parse() call that
 * returns PX_H1_HEAD, or px_http1_free(). */
typedef struct {
    int is_request;
    int http_minor;                  /* 0 or 1 (HTTP/1.x only) */
    /* requests */
    const char *method;  size_t method_len;
    const char *target;  size_t target_len;   /* origin-form ("/path?q") or "*" */
    const char *host;    size_t host_len;     /* Host (or the authority of an absolute-form target) */
    int expect_continue;                      /* "Expect: 100-continue" */
    /* responses */
    int status;
    const char *reason;  size_t reason_len;
    /* both */
    px_header_t *headers;                     /* as received, in order, hop-by-hop included */
    int header_count;
    px_body_kind_t body;
    uint64_t content_length;                  /* when body == PX_BODY_LENGTH */
    int keep_alive;                           /* the peer allows reuse after this message */
} px_http_head_t;

typedef enum {
    PX_H1_NEED_MORE = 0,  /* all input consumed; feed more */
    PX_H1_HEAD,           /* a head is complete: px_http1_head() */
    PX_H1_BODY,           /* *data, *dlen: body bytes, chunk framing removed */
    PX_H1_END,            /* the message is complete; next call parses the next message */
    PX_H1_ERROR           /* px_http1_error(); the parser accepts no more input */
} px_h1_event_t;

typedef struct {
    uint32_t max_head_bytes;   /* request/status line + all headers; beyond: 431 (414 if the target alone) */
    uint32_t max_headers;      /* header fields; beyond: 431 */
    uint64_t max_body_bytes;   /* 0 = unlimited; beyond (declared or streamed): 413 */
} px_http1_limits_t;

typedef struct px_http1 px_http1_t;

px_http1_t *px_http1_new(int is_request, const px_http1_limits_t *limits);
void px_http1_free(px_http1_t *p);
/* Makes p what px_http1_new(p's kind, limits) would return, keeping its
 * allocations of up to keep bytes each (the rest is freed): for a parser
 * taken up again by a new message stream. */
void px_http1_reuse(px_http1_t *p, const px_http1_limits_t *limits, size_t keep);

/* Parses from buf[0..len). *consumed is set to the bytes used (the caller
 * passes the rest again later). For PX_H1_BODY, *data points into buf. */
px_h1_event_t px_http1_parse(px_http1_t *p, const char *buf, size_t len, size_t *consumed,
                             const char **data, size_t *dlen);

/* For a response parser: the request this response answers was HEAD (no
 * body follows whatever the headers say). Call before the response head. */
void px_http1_expect_head_response(px_http1_t *p, int is_head);
/* A request parser: the current request's method is HEAD, as far as its
 * request line has been read (also when the head then fails to parse: its
 * error response goes without a body). */
int px_http1_head_request(const px_http1_t *p);

/* The peer closed: for a PX_BODY_EOF response this completes the message
 * (returns PX_H1_END); in the middle of any other message it is an error. */
px_h1_event_t px_http1_finish(px_http1_t *p);

const px_http_head_t *px_http1_head(const px_http1_t *p);
/* Interim (1xx) responses other than 101 are returned as their own
 * HEAD + END pair; this tells whether the last head was one. */
int px_http1_is_interim(const px_http1_t *p);

/* Keep trailer fields (at most PX_H1_MAX_TRAILERS, the others dropped;
 * off by default). After PX_H1_END, px_http1_trailers gives
 * them until the next message starts. */
#define PX_H1_MAX_TRAILERS 16
void px_http1_keep_trailers(px_http1_t *p, int keep);
const px_header_t *px_http1_trailers(px_http1_t *p, int *count);

/* After PX_H1_ERROR: which error to answer with, and a short detail. */
px_http_error_t px_http1_error(const px_http1_t *p, const char **detail);

/* RFC 9110 tchar: 0 for a byte a field name (token) may not hold, else the
 * byte lowercased. */
extern const unsigned char px_tchar[256];

/* Whether v[0..n) holds a CR, LF or NUL (never forwarded in a field). */
int px_has_line_break(const char *v, size_t n);

/* True when the parser is between messages (no bytes of a next message seen). */
int px_http1_idle(const px_http1_t *p);

/* --- rewriting --------------------------------------------------------------- */

typedef struct {
    const char *client_ip;        /* appended to / sets X-Forwarded-For */
    const char *proto;            /* X-Forwarded-Proto, e.g. "https" */
    int trust_forwarded;          /* keep incoming X-Forwarded-*; otherwise drop them */
    const char *request_id;       /* X-Request-Id to send (kept from the client if trusted & present) */
    const px_header_t *extra;     /* more headers to add */
    int extra_count;
    const char *const *drop;      /* lowercase names of incoming headers not to forward */
    int drop_count;
} px_fwd_opts_t;

/* One field of a request head rewritten for the model server, as
 * px_http1_request_fields hands it on: the name a token (in the case the
 * client or the proxy wrote it), no CR, LF or NUL in the value. 0 to go on,
 * else a PX_E* code that stops the walk. */
typedef int (*px_field_sink_t)(void *ud, const char *name, size_t nlen, const char *value,
                               size_t vlen);

/* The fields of the request head to send upstream, in order, one call of
 * sink each: Host first (empty when the head has none), then the client's
 * fields without the hop-by-hop ones (Connection, Keep-Alive,
 * Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade, and any named
 * in Connection) and without those opts drops, X-Forwarded-For/Proto/Host
 * set, X-Request-Id, the extra fields, then framing from head->body
 * (Content-Length: N, or Transfer-Encoding: chunked). PX_EINVAL when the
 * method is not a token, the target is empty or holds SP, CR or LF, a
 * field would not be one, or the body is close-delimited; the sink's code
 * when it stops. The one forwarding policy of both upstream protocols:
 * px_http1_write_request_head renders it as HTTP/1.1, h2c_xlate.c as
 * HTTP/2 fields. */
int px_http1_request_fields(const px_http_head_t *head, const px_fwd_opts_t *opts,
                            px_field_sink_t sink, void *ud);

/* Appends to out the request head to send upstream: "METHOD target HTTP/1.1",
 * the fields of px_http1_request_fields, and the blank line. The upstream
 * connection is kept alive (no "Connection: close"). On failure out is as
 * it was. */
int px_http1_write_request_head(px_buf_t *out, const px_http_head_t *head,
                                const px_fwd_opts_t *opts);

/* Whether p (n bytes) is an RFC 9110 reason-phrase: HTAB, SP, VCHAR,
 * obs-text. llhttp takes any byte but CR and LF there (a NUL, a vertical
 * tab). */
int px_http1_reason_ok(const char *p, size_t n);

/* Appends to out the response head for the client: "HTTP/1.1 status reason"
 * (a reason that is not px_http1_reason_ok replaced by the usual one for
 * the status, px_http_status_phrase, never forwarded), hop-by-hop headers
 * and those named like an extra header removed, the extra headers, then
 * framing: Content-Length
 * for PX_BODY_LENGTH, "Transfer-Encoding: chunked" for PX_BODY_CHUNKED and,
 * when to an HTTP/1.1 client, for PX_BODY_EOF; "Connection: close" when
 * !keep_alive. *chunked_out tells the caller whether to chunk the body. */
int px_http1_write_response_head(px_buf_t *out, const px_http_head_t *head, int client_minor,
                                 int keep_alive, const px_header_t *extra, int extra_count,
                                 int *chunked_out);

/* Chunked framing for a body piece of n bytes ("%zx\r\n"), its end ("\r\n")
 * and the last chunk ("0\r\n\r\n"). */
int px_http1_chunk_begin(px_buf_t *out, size_t n);
int px_http1_chunk_end(px_buf_t *out);
int px_http1_chunk_last(px_buf_t *out);

/* Whether a trailer field may be forwarded (request: towards the model
 * server; else towards the client): a token name, no CR, LF or NUL in the
 * value, and none of the fields that must not come after the content
 * (RFC 9110 6.5.1): hop-by-hop and framing, Host, the forwarding fields
 * the proxy sets (X-Forwarded-*, Forwarded, X-Request-Id, Pqproxy-*),
 * authentication, request modifiers (If-*, Range, Expect, ...), response
 * control data, content handling; in a request also the signature fields
 * (Signature, Signature-Input, X-Signature, Content-Digest). */
int px_http1_trailer_ok(const char *name, size_t nlen, const char *value, size_t vlen, int request);
/* Appends the last chunk of a chunked body with the trailer fields of
 * t[0..n) that px_http1_trailer_ok(..., request) lets through; *dropped
 * counts the others. On failure out is as it was. */
int px_http1_write_last_chunk(px_buf_t *out, const px_header_t *t, int n, int request, int *dropped);

/* Case-insensitive header lookup in a head; returns the first match or NULL. */
const px_header_t *px_http_head_get(const px_http_head_t *head, const char *name);

#endif
