/* An HTTP/2 request head (px_msg_t, filled by h2_fields.c) translated into
 * an HTTP/1.1 request head for the upstream. Pure: no I/O, no session.
 *
 * It vets again, on its own, everything an HTTP/1.1 upstream could be
 * desynchronised by (h2-to-h1 request smuggling), whatever nghttp2 and
 * h2_fields.c let through: the translated head, written with
 * px_http1_write_request_head, is exactly one request that the project's
 * own HTTP/1.1 parser reads back with the same method, path and Host
 * (fuzz/h2_translate.c checks this). */
#ifndef PX_HTTP_H2_TRANSLATE_H
#define PX_HTTP_H2_TRANSLATE_H

#include <stdint.h>

#include "http/http1.h"
#include "http/msg.h"

/* A translated request: head's strings and fields live in mem and fields,
 * which a next px_h2_translate into the same r reuses. Zero it before the
 * first use; px_h2_req_free frees it. */
typedef struct {
    px_http_head_t head;
    char *mem;
    px_header_t *fields;
    size_t mem_cap, fields_cap;
} px_h2_req_t;

/* Fills r from m (the request's head; m->end_stream: no body follows).
 * max_body_bytes: 0 = no limit, else a declared content-length above it is
 * refused. Returns 0, PX_ENOMEM, or an HTTP error to answer with
 * (> 0, 1 + px_http_error_t) and *detail. r is to be freed with
 * px_h2_req_free whatever the result. Refused: a method llhttp does not
 * know (or CONNECT), a :path not in origin form ("*", absolute form, a
 * fragment, bytes outside 0x21..0x7e), no authority or an invalid one, a
 * Host differing from :authority, a field name that is not a lowercase
 * token, a value with a control byte other than HTAB (CR, LF, NUL
 * included) or leading/trailing whitespace, connection-specific fields,
 * `te` other than "trailers", an invalid or inconsistent content-length,
 * a :scheme other than http or https. */
int px_h2_translate(const px_msg_t *m, uint64_t max_body_bytes, px_h2_req_t *r,
                    const char **detail) PX_MUST_CHECK;
void px_h2_req_free(px_h2_req_t *r);
/* Keeps r's allocations for the next request if none is over keep bytes,
 * else frees them. */
void px_h2_req_recycle(px_h2_req_t *r, size_t keep);

#endif
