/* HTTP/2 field vetting and conversion for the h2 session (h2.h): what
 * nghttp2's own HTTP messaging checks leave to the application. */
#ifndef PX_HTTP_H2_FIELDS_H
#define PX_HTTP_H2_FIELDS_H

#include <stddef.h>
#include <stdint.h>

#include <nghttp2/nghttp2.h>

#include "core/buf.h"
#include "http/http1.h"
#include "http/msg.h"

/* One request's field block(s) being received. */
typedef struct {
    px_msg_t *msg;
    size_t list_size;                     /* RFC 9113 6.5.2: name + value + 32 per field */
    size_t max_list;
    int trailers;                         /* receiving the trailer block */
} px_h2_fields_t;

/* Takes one field that passed nghttp2's checks into the message. Returns 0
 * or the HTTP/2 error code of the stream error that refuses the request:
 * NGHTTP2_PROTOCOL_ERROR (Host differing from :authority, a framing field
 * among trailers), NGHTTP2_ENHANCE_YOUR_CALM (header list over max_list,
 * or the message's own bounds). */
uint32_t px_h2_field_in(px_h2_fields_t *f, const uint8_t *name, size_t nlen, const uint8_t *value,
                        size_t vlen);

/* The nghttp2 name/value array for a response head (":status" first) or
 * for the trailer fields of m (trailers != 0): names lowered,
 * connection-specific fields dropped. *nva and its lowered names live in
 * scratch (emptied first; the caller's, reused from call to call), the
 * values in m. 0, PX_EPARSE (CR, LF or NUL in a field, a name not a
 * token, a status outside 100..999), PX_ENOMEM. */
int px_h2_fields_out(const px_msg_t *m, int trailers, px_buf_t *scratch, nghttp2_nv **nva, size_t *n);

/* The same for a response head given as fields f[0..count) with its status,
 * without a px_msg_t in between: the values stay in f's memory, which must
 * outlive the call that hands *nva to nghttp2 (it copies them). */
int px_h2_head_nv(int status, const px_header_t *f, int count, px_buf_t *scratch, nghttp2_nv **nva,
                  size_t *n);

/* A field HTTP/2 forbids (RFC 9113 8.2.2): connection, keep-alive,
 * proxy-connection, transfer-encoding, upgrade (any case). */
int px_h2_connection_specific(const char *name, size_t n);

#endif
