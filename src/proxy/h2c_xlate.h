/* The exchange's side of an h2c upstream stream: the request head as
 * HTTP/2 fields and the response head and trailers back as the exchange's
 * px_http_head_t / px_header_t (the forms both client sessions take). */
#ifndef PX_H2C_XLATE_H
#define PX_H2C_XLATE_H

#include <stddef.h>

#include <nghttp2/nghttp2.h>

#include "core/buf.h"
#include "http/http1.h"
#include "http/msg.h"
#include "proxy/h2c_pool.h"

typedef struct px_h2cx {
    px_h2c_stream_t *s;                   /* NULL once the pool has it back */
    px_msg_t msg;                         /* the response head and trailers, copied */
    px_http_head_t head;
    px_header_t *fields;                  /* head.headers (into msg) */
    px_header_t *trailers;                /* the response's trailers (one allocation) */
    int ntrailers;
    size_t fields_cap, trailers_cap;      /* their sizes: kept from one call to the next */
    size_t unacked;                       /* response bytes not yet reported consumed */
} px_h2cx_t;

px_h2cx_t *px_h2cx_new(void);
/* Releases the stream if still held. */
void px_h2cx_free(px_h2cx_t *h);
/* Ready for another request: the stream released if still held, the
 * response forgotten, its buffers kept up to keep bytes each. */
void px_h2cx_recycle(px_h2cx_t *h, size_t keep);

/* The request for the h2c upstream: the client's head h with the
 * forwarding rules of px_http1_request_fields (opts), as HTTP/2 fields:
 * :method, :scheme "http", :authority (the Host), :path (the target), then
 * the fields with lowercase names, without Transfer-Encoding, and
 * `te: trailers` when the client's te names "trailers" (gRPC needs it).
 * X-Request-Id is never indexed (unique to each request). *nv and the
 * strings are in *scratch, valid until it changes (px_h2c_open copies
 * them). 0, PX_ENOMEM, PX_EINVAL (a head the rules refuse, or no Host). */
int px_h2cx_request(px_buf_t *scratch, const px_http_head_t *h, const px_fwd_opts_t *opts,
                    nghttp2_nv **nv, size_t *n);

/* A request's trailer fields t[0..n) for the h2c upstream: those
 * px_http1_trailer_ok lets through (*dropped counts the others), names
 * lowercased, in *scratch as px_h2cx_request does. 0, PX_ENOMEM. */
int px_h2cx_request_trailers(px_buf_t *scratch, const px_header_t *t, int n, nghttp2_nv **nv,
                             size_t *np, int *dropped);

/* The upstream's final response head m, copied into h->head (body: NONE
 * when m ends the stream, LENGTH with a content-length, else CHUNKED, so
 * an HTTP/1.1 client gets chunked framing and the trailers). A field that
 * could break an HTTP/1.1 head (a name not a lowercase token, CR, LF or
 * NUL in the value, connection-specific, a content-length not one decimal
 * number or a second one) is dropped with a warning, though nghttp2
 * already refuses them. 0, PX_ENOMEM. */
int px_h2cx_response(px_h2cx_t *h, const px_msg_t *m);
/* The trailer fields of m into h->trailers / h->ntrailers, the same
 * fields dropped. 0, PX_ENOMEM. */
int px_h2cx_trailers(px_h2cx_t *h, const px_msg_t *m);

#endif
