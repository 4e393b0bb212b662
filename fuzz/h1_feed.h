/* Shared by the HTTP/1 harnesses: feeds a message stream to a px_http1_t
 * in pieces, as a connection would receive it, and checks what the parser
 * promises (http1.h) on every event.
 *
 * Input: byte 0 holds flags for the harness, bytes 1-2 seed the piece
 * sizes, the rest is the stream. Each piece is a malloc'd copy freed right
 * after the parse call, so a head that kept pointers into the caller's
 * buffer is a use-after-free for ASan. A harness's on_head() checks each
 * complete head (re-render, re-parse); it runs after the piece is freed.
 * Any broken promise abort()s so that libFuzzer reports it. */
#ifndef PX_FUZZ_H1_FEED_H
#define PX_FUZZ_H1_FEED_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http1.h"

#define H1_CONTROL 3

typedef struct {
    int is_request;
    /* before each response head: was the request it answers a HEAD? */
    int (*head_request)(unsigned flags, unsigned msg_index);
    void (*on_head)(const px_http_head_t *h, unsigned flags, int is_head_request, int interim);
    /* at each message's end (NULL: nothing): its trailers are p's */
    void (*on_end)(px_http1_t *p, unsigned flags);
} h1_case_t;

static void h1_die(const char *what, const char *buf, size_t len)
{
    fprintf(stderr, "h1 fuzz: %s\n--- bytes (%zu) ---\n%.*s\n---\n", what, len, (int)len, buf);
    abort();
}

/* 1..(about 1/8 of the stream) bytes, more often small: split points in
 * the request line, in a header name, inside CRLF, in a chunk size. */
static size_t h1_piece(uint32_t *seed, size_t left)
{
    size_t n;
    *seed = *seed * 1103515245u + 12345u;
    n = (*seed >> 16) & 7 ? 1 + ((*seed >> 8) & 15) : 1 + ((*seed >> 4) & 511);
    return n < left ? n : left;
}

static void h1_feed(const uint8_t *data, size_t size, const h1_case_t *c)
{
    const px_http1_limits_t lim = { 8192, 64, data[0] & 0x80 ? 4096 : 0 };
    const char *in;
    size_t len, pos = 0, avail = 0, steps = 0;
    unsigned flags, msgs = 0;
    uint32_t seed;
    uint64_t body = 0;
    int is_head_req = 0, in_msg = 0;
    px_http1_t *p;

    if (size < H1_CONTROL)
        return;
    flags = data[0];
    seed = (uint32_t)data[1] | (uint32_t)data[2] << 8;
    in = (const char *)data + H1_CONTROL;
    len = size - H1_CONTROL;
    if (!(p = px_http1_new(c->is_request, &lim)))
        abort();
    px_http1_keep_trailers(p, flags & 0x40);
    if (!c->is_request)
        px_http1_expect_head_response(p, is_head_req = c->head_request(flags, msgs));

    for (;;) {
        size_t n = avail - pos, used = 0, dlen = 0;
        const char *d = NULL;
        char *piece;
        px_h1_event_t ev;
        int finishing = pos == len;

        if (++steps > 8 * len + 64)
            h1_die("no progress", in, len);
        if (finishing) {
            ev = px_http1_finish(p);
        } else {
            if (!(piece = malloc(n ? n : 1)))
                abort();
            memcpy(piece, in + pos, n);
            ev = px_http1_parse(p, piece, n, &used, &d, &dlen);
            if (used > n)
                h1_die("consumed more than given", in, len);
            if (ev == PX_H1_BODY && dlen && (d < piece || d + dlen > piece + n))
                h1_die("body bytes outside the input", in, len);
            free(piece);
            pos += used;
        }
        switch (ev) {
        case PX_H1_HEAD:
            if (in_msg)
                h1_die("a second head without an end", in, len);
            in_msg = 1;
            body = 0;
            c->on_head(px_http1_head(p), flags, is_head_req, px_http1_is_interim(p));
            break;
        case PX_H1_BODY:
            if (!in_msg || !dlen)
                h1_die("body event outside a message or empty", in, len);
            body += dlen;
            break;
        case PX_H1_END: {
            const px_http_head_t *h = px_http1_head(p);
            if (!in_msg)
                h1_die("end without a head", in, len);
            if ((h->body == PX_BODY_LENGTH && body != h->content_length) ||
                (h->body == PX_BODY_NONE && body))
                h1_die("body size disagrees with the head's framing", in, len);
            if (!px_http1_is_interim(p))
                msgs++;
            in_msg = 0;
            if (c->on_end)
                c->on_end(p, flags);
            if (!c->is_request && !px_http1_is_interim(p))
                px_http1_expect_head_response(p, is_head_req = c->head_request(flags, msgs));
            break;
        }
        case PX_H1_ERROR: {
            const char *detail = NULL;
            px_http1_error(p, &detail);
            if (!detail || !*detail)
                h1_die("error without a detail", in, len);
            px_http1_free(p);
            return;
        }
        case PX_H1_NEED_MORE:
            if (finishing) {
                if (in_msg)
                    h1_die("finish left a message open", in, len);
                px_http1_free(p);
                return;
            }
            if (pos != avail)
                h1_die("NEED_MORE with input left", in, len);
            avail += h1_piece(&seed, len - avail);
            break;
        }
    }
}

/* Re-parses a rendered head with a fresh parser: it must come out whole
 * and be all there is. Returns the parser (caller frees). */
static px_http1_t *h1_reparse(int is_request, int is_head_req, const char *buf, size_t len,
                              const px_http_head_t **out)
{
    const px_http1_limits_t lim = { 1 << 20, 4096, 0 };
    px_http1_t *q = px_http1_new(is_request, &lim);
    size_t used = 0, dlen;
    const char *d, *detail = NULL;
    px_h1_event_t ev;

    if (!q)
        abort();
    px_http1_expect_head_response(q, is_head_req);
    ev = px_http1_parse(q, buf, len, &used, &d, &dlen);
    if (ev != PX_H1_HEAD) {
        if (ev == PX_H1_ERROR)
            px_http1_error(q, &detail);
        fprintf(stderr, "h1 fuzz: rendered head does not parse back (event %d: %s)\n", (int)ev,
                detail ? detail : "-");
        h1_die("rendered head", buf, len);
    }
    if (used != len)
        h1_die("rendered head parsed back short", buf, len);
    *out = px_http1_head(q);
    return q;
}

static int h1_same(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && (!alen || !memcmp(a, b, alen));
}

/* How the request harnesses render a head for the upstream: flags 0x01
 * trust X-Forwarded-*, 0x02 send an X-Request-Id; one extra field and one
 * dropped. */
static inline px_fwd_opts_t h1_fwd_opts(unsigned flags)
{
    static const px_header_t extra[] = { { "X-Extra", 7, "1", 1 } };
    static const char *const drop[] = { "x-drop-me" };
    px_fwd_opts_t o = { .client_ip = "192.0.2.7", .proto = "https",
                        .trust_forwarded = flags & 1,
                        .request_id = flags & 2 ? "rid-1" : NULL,
                        .extra = extra, .extra_count = 1, .drop = drop, .drop_count = 1 };
    return o;
}

/* The harness's entry point, feeding through case c. */
#define H1_FUZZER(...)                                                     \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);          \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)           \
    {                                                                      \
        static const h1_case_t c = __VA_ARGS__;                            \
        h1_feed(data, size, &c);                                           \
        return 0;                                                          \
    }

#endif
