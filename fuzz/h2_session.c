/* HTTP/2 session input (src/http/h2.c, src/http/h2_fields.c): a client's
 * byte stream after the connection preface, fed in pieces, with an owner
 * that answers, streams, consumes, resets and drains as byte 0 says, the
 * session's output pulled between pieces and the stall timer ticking.
 *
 * Byte 0: flags: 0x01 answer each request (head, body, trailers), 0x02
 * consume request bytes at once (else only at the end of each piece), 0x04
 * reset every third request, 0x08 drain half-way, 0x10 tiny buffers and
 * windows, 0x20 never pull output (floods pile up), 0x40 free mid-stream.
 * Byte 1: seed of the split points. The rest: frames.
 *
 * Checks beyond the sanitizers: a head handed to the owner has a method
 * and a path (or is CONNECT-less nothing), no field name starts with ':'
 * or holds an upper-case letter, no value holds CR, LF or NUL; the
 * request body handed over for a stream never exceeds its content-length;
 * callbacks for a stream stop after its on_close; every stream the owner
 * saw is closed exactly once by the end. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "config/config_http2.h"
#include "http/h2.h"

#define IDS 1024

typedef struct {
    px_h2_t *s;
    unsigned flags;
    uint64_t now;
    int requests, top;                    /* top: highest stream slot seen */
    uint8_t open[IDS];                    /* 1 seen, 2 closed */
    uint64_t got[IDS];
    int64_t cl[IDS];
    size_t owed[IDS];                     /* body bytes not yet consumed */
} owner_t;

static void die(const char *what, int32_t id)
{
    fprintf(stderr, "h2 fuzz: %s (stream %d)\n", what, id);
    abort();
}

static int slot(int32_t id)
{
    return id > 0 && id < IDS ? (int)id : 0;
}

static void check_head(const px_msg_t *m, int32_t id)
{
    if (!px_msg_get(m, PX_MSG_METHOD).n)
        die("a head without a method", id);
    for (int i = 0; i < px_msg_header_count(m) + px_msg_trailer_count(m); i++) {
        px_str_t n = px_msg_header_name(m, i), v = px_msg_header_value(m, i);
        if (!n.n || n.p[0] == ':')
            die("an empty or pseudo field name among the fields", id);
        for (size_t k = 0; k < n.n; k++)
            if (n.p[k] >= 'A' && n.p[k] <= 'Z')
                die("an upper-case field name", id);
        if (memchr(v.p, '\r', v.n) || memchr(v.p, '\n', v.n) || memchr(v.p, '\0', v.n))
            die("CR, LF or NUL in a field value", id);
    }
}

static void on_request(void *ud, int32_t id, const px_msg_t *m)
{
    owner_t *o = ud;
    int k = slot(id);
    px_msg_t r;

    check_head(m, id);
    if (k && o->open[k])
        die("a second head for a stream", id);
    if (k) {
        o->open[k] = 1;
        o->cl[k] = m->content_length;
        if (k > o->top)
            o->top = k;
    }
    o->requests++;
    if ((o->flags & 0x04) && o->requests % 3 == 0) {
        if (px_h2_reset(o->s, id, NGHTTP2_CANCEL) != 0)
            die("reset of a live stream failed", id);
        return;
    }
    if (!(o->flags & 0x01))
        return;
    px_msg_init(&r, 1024, 8);
    r.status = 200;
    if (px_msg_add(&r, "Content-Type", 12, "text/plain", 10) != 0 ||
        px_h2_respond(o->s, id, &r) != 0)
        die("respond failed", id);
    if (px_h2_send(o->s, id, "0123456789abcdef", 16) < 0)
        die("send failed", id);
    px_msg_begin_trailers(&r);
    if (px_msg_add(&r, "grpc-status", 11, "0", 1) != 0 || px_h2_end(o->s, id, &r) != 0)
        die("end failed", id);
    px_msg_free(&r);
}

static void on_data(void *ud, int32_t id, void *sd, const uint8_t *p, size_t n)
{
    owner_t *o = ud;
    int k = slot(id);

    if (k) {
        if (o->open[k] != 1)
            die("data for a stream not open", id);
        o->got[k] += n;
        if (o->cl[k] >= 0 && o->got[k] > (uint64_t)o->cl[k])
            die("more body than content-length handed over", id);
        o->owed[k] += n;
    }
    if ((o->flags & 0x02) && px_h2_consumed(o->s, id, n) == 0 && k)
        o->owed[k] -= n;
}

static void on_end(void *ud, int32_t id, void *sd, const px_msg_t *m)
{
    owner_t *o = ud;
    int k = slot(id);

    check_head(m, id);
    if (k && o->open[k] != 1)
        die("end for a stream not open", id);
    if (k && o->cl[k] >= 0 && o->got[k] != (uint64_t)o->cl[k])
        die("a request ended short of its content-length", id);
}

static void on_drained(void *ud, int32_t id, void *sd, size_t n)
{
    owner_t *o = ud;
    int k = slot(id);

    if (k && o->open[k] != 1)
        die("drained for a stream not open", id);
}

static void on_close(void *ud, int32_t id, void *sd, uint32_t code)
{
    owner_t *o = ud;
    int k = slot(id);

    if (k) {
        if (o->open[k] != 1)
            die("close for a stream not open, or twice", id);
        o->open[k] = 2;
    }
    /* the stream is already unknown: nothing may land on it now */
    if (px_h2_consumed(o->s, id, 1) != PX_ENOTFOUND || px_h2_send(o->s, id, "x", 1) != PX_ENOTFOUND ||
        px_h2_reset(o->s, id, NGHTTP2_CANCEL) != PX_ENOTFOUND)
        die("a call on a closing stream was taken", id);
}

static uint64_t clock_cb(void *ud)
{
    return ((owner_t *)ud)->now;
}

/* Pays back what the owner still owes (flag 0x02 off): the upstream drained. */
static void settle(owner_t *o)
{
    for (int k = 1; k <= o->top; k++)
        if (o->open[k] == 1 && o->owed[k]) {
            if (px_h2_consumed(o->s, k, o->owed[k]) != 0)
                die("consumed for an open stream failed", k);
            o->owed[k] = 0;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const px_h2_callbacks_t cb = { on_request, on_data, on_end, on_drained, on_close };
    static owner_t o;
    px_http2_config_t cfg;
    uint32_t seed;
    px_buf_t out;
    size_t at = 2;
    int rc;

    if (size < 2)
        return 0;
    memset(&o, 0, sizeof o);
    o.flags = data[0];
    o.now = 1;
    seed = data[1] * 2654435761u + 1;
    px_config_http2_defaults(&cfg);
    if (o.flags & 0x10) {
        cfg.initial_window_size = 1024;
        cfg.connection_window_size = 65535;
        cfg.max_header_list_size = 1024;
        cfg.stream_buffer = 1024;
        cfg.connection_buffer = 2048;
        cfg.max_concurrent_streams = 3;
        cfg.max_queued_acks = 4;
        cfg.reset_budget = 3;
        cfg.max_continuations = 2;
        cfg.stall_timeout_ms = 100;
    }
    if (px_h2_new(&cfg, &cb, &o, clock_cb, &o.s) != 0)
        return 0;
    px_buf_init(&out, 1 << 20);
    rc = px_h2_input(o.s, NGHTTP2_CLIENT_MAGIC, NGHTTP2_CLIENT_MAGIC_LEN);
    while (rc == 0 && at < size) {
        size_t n;
        seed = seed * 1103515245u + 12345u;
        n = 1 + (seed >> 16) % ((seed & 0x100) ? 16 : 512);
        if (n > size - at)
            n = size - at;
        {
            /* a fresh copy per piece: nothing may keep pointers into it */
            uint8_t *piece = malloc(n);
            memcpy(piece, data + at, n);
            rc = px_h2_input(o.s, piece, n);
            free(piece);
        }
        at += n;
        if (rc == 0 && !(o.flags & 0x02))
            settle(&o);
        if (!(o.flags & 0x20)) {
            px_buf_reset(&out);
            if (px_h2_output(o.s, &out, 0) != 0 && !px_h2_want_close(o.s))
                die("output failed on a live session", 0);
        }
        o.now += 40;
        if (px_h2_tick(o.s) < 0)
            die("tick failed outside a callback", 0);
        if ((o.flags & 0x08) && at >= size / 2 && px_h2_drain(o.s) != 0)
            die("drain failed", 0);
        if ((o.flags & 0x40) && at >= size / 2)
            break;
    }
    if (rc != 0 && rc != PX_EPARSE)
        die("input failed other than by refusing", 0);
    if (px_h2_open_streams(o.s) < 0)
        die("negative stream count", 0);
    px_h2_free(o.s);
    for (int k = 1; k <= o.top; k++)
        if (o.open[k] == 1)
            die("a stream the owner saw was never closed", k);
    px_buf_free(&out);
    return 0;
}
