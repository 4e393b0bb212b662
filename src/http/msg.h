/* A protocol-neutral HTTP message head: what an HTTP/1.1 or HTTP/2 session
 * produces from a client's request (or an upstream's response) and what the
 * exchange consumes, without any framing.
 *
 * Request: method, scheme, authority, path (status 0). Response: status.
 * Fields are header fields, then (after px_msg_begin_trailers) trailer
 * fields; names are stored as given (the h2 session only produces
 * lowercase ones). No pseudo-header and no hop-by-hop field is ever
 * stored: the session that fills the message vets and strips them.
 *
 * Bounded: the message owns one byte arena of at most max_bytes (names,
 * values and the four request strings, each NUL-terminated) and at most
 * max_fields fields; an add past either limit fails with PX_ETOOBIG and
 * leaves the message as it was. Strings are read through accessors that
 * return pointers valid until the next add or px_msg_reset/free (the arena
 * may move when it grows). */
#ifndef PX_HTTP_MSG_H
#define PX_HTTP_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "core/errors.h"

typedef struct {
    const char *p;                        /* NUL-terminated; "" when unset */
    size_t n;
} px_str_t;

typedef enum { PX_MSG_METHOD, PX_MSG_SCHEME, PX_MSG_AUTHORITY, PX_MSG_PATH, PX_MSG__PSEUDO } px_msg_pseudo_t;

typedef struct {
    uint32_t name, name_len, value, value_len;    /* offsets into the arena */
} px_msg_field_t;

typedef struct {
    int status;                           /* response status; 0 in a request */
    int64_t content_length;               /* -1: not given */
    int end_stream;                       /* no body follows the head */
    /* private: use the accessors */
    char *mem;
    size_t used, cap, max_bytes;
    px_msg_field_t *fields;
    int nfields, fcap, max_fields, trailer_at;   /* trailer_at: -1 until trailers begin */
    uint32_t pseudo[PX_MSG__PSEUDO][2];   /* offset, length; length 0 = unset */
} px_msg_t;

void px_msg_init(px_msg_t *m, size_t max_bytes, int max_fields);
void px_msg_free(px_msg_t *m);
/* Empties the message (limits and allocation kept). */
void px_msg_reset(px_msg_t *m);
/* A new byte limit for an empty message (a kept one serving a new use). */
void px_msg_set_limit(px_msg_t *m, size_t max_bytes);
/* px_msg_reset, and an arena or field array over keep bytes freed. */
void px_msg_recycle(px_msg_t *m, size_t keep);

/* Sets a request pseudo value (replacing an earlier one). 0, PX_ETOOBIG, PX_ENOMEM. */
int px_msg_set(px_msg_t *m, px_msg_pseudo_t which, const char *v, size_t n) PX_MUST_CHECK;
px_str_t px_msg_get(const px_msg_t *m, px_msg_pseudo_t which);

/* Appends a header field (or a trailer field after px_msg_begin_trailers). */
int px_msg_add(px_msg_t *m, const char *name, size_t nlen, const char *value, size_t vlen) PX_MUST_CHECK;
void px_msg_begin_trailers(px_msg_t *m);

/* Header fields are 0..px_msg_header_count-1, trailer fields
 * 0..px_msg_trailer_count-1. */
int px_msg_header_count(const px_msg_t *m);
int px_msg_trailer_count(const px_msg_t *m);
px_str_t px_msg_header_name(const px_msg_t *m, int i);
px_str_t px_msg_header_value(const px_msg_t *m, int i);
px_str_t px_msg_trailer_name(const px_msg_t *m, int i);
px_str_t px_msg_trailer_value(const px_msg_t *m, int i);

/* The first header field named `name` (ASCII case-insensitive), or a
 * px_str_t with p == NULL. */
px_str_t px_msg_find(const px_msg_t *m, const char *name);

/* Bytes of the arena in use (what counts against max_bytes). */
size_t px_msg_size(const px_msg_t *m);

#endif
