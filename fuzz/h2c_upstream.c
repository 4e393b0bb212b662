/* The h2c model server's bytes (src/proxy/h2c_pool.c, then
 * src/proxy/h2c_xlate.c on what it delivers): the owner opens a few gRPC
 * streams, the input is what the model server answers, fed in pieces to
 * the pool's connections (oldest live one first), between owner and link
 * events: connects, write completions, body writes, consumes, releases,
 * a reload, a timeout tick (streams' silences; one time in two also the
 * pool's unanswered PINGs), EOF. At the end every link gets EOF.
 *
 * The pool is this file's own copy of h2c_pool.c, its px_upstream_* and
 * px_uplink_* calls renamed below to a link without a socket (the seam
 * that h2c_pool.c's head comment describes); libuv runs only its idle
 * handle and timer.
 *
 * Byte 0: flags: 0x01 writes complete later (else at once), 0x02 consume
 * response bytes at once (else on an event), 0x04 release every second
 * stream in its on_head, 0x08 the server may run 1 stream per connection
 * (h2c_max_streams 1) on at most 2 connections (h2c_max_connections 2:
 * further streams wait on the least loaded one), 0x10 request bodies (200 KiB, past the replay
 * limit; the second and fourth stream end theirs with a trailer), 0x20 connects fail now and then, 0x40 the pool closes with
 * streams held instead of the final EOF. Byte 1: streams opened at once
 * (1..4). Byte 2: seed of the pieces and events. The rest: the model
 * server's bytes (SETTINGS first, then frames).
 *
 * Checks beyond the sanitizers: a head has a status 200..999, field names
 * that are non-empty lowercase tokens (no pseudo field, no connection-
 * specific field), values without CR, LF or NUL, the same after
 * px_h2cx_response / px_h2cx_trailers; a LENGTH body gets exactly its
 * content-length; no data before the head; no callback after on_end,
 * on_error or px_h2c_release; one write in flight per link; a session
 * nghttp2 has finished (nothing to read or write) is not kept as a
 * connection; every stream still held at EOF ends with exactly one on_end
 * or on_error. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#define px_upstream_new fuzz_upstream_new
#define px_upstream_close fuzz_upstream_close
#define px_upstream_set_config fuzz_upstream_set_config
#define px_upstream_connect_fresh fuzz_connect_fresh
#define px_uplink_write fuzz_uplink_write
#define px_uplink_read_start fuzz_uplink_read_start
#define px_uplink_timeout fuzz_uplink_timeout
#define px_uplink_release fuzz_uplink_release
#include "proxy/h2c_pool.c"

#include "http/h2_fields.h"
#include "proxy/h2c_xlate.h"

#define MAXS 12                           /* streams per input */
#define MAXL 16                           /* links per input */

/* ---- the link: no socket ---------------------------------------------------- */

struct px_uplink {
    const px_uplink_cb_t *cb;
    void *ud;
    int connected, released, writing;
};

static struct {
    struct px_uplink links[MAXL];
    int nlinks;
    unsigned flags;
    uint32_t rng;
    int fail_next_connect;
} L;

/* PX_FUZZ_TRACE=1: the events and pieces on stderr (reproducing a finding). */
static int trace;
#define TRACE(...) (trace ? fprintf(stderr, "h2c fuzz: " __VA_ARGS__) : 0)

static char fake_upstream;

px_upstream_t *fuzz_upstream_new(uv_loop_t *loop, const px_upstream_config_t *cfg,
                                 const px_timeouts_config_t *t, px_metrics_t *m)
{
    (void)loop, (void)cfg, (void)t, (void)m;
    return (px_upstream_t *)&fake_upstream;
}

void fuzz_upstream_close(px_upstream_t *u)
{
    (void)u;
}

void fuzz_upstream_set_config(px_upstream_t *u, const px_upstream_config_t *cfg,
                              const px_timeouts_config_t *t)
{
    (void)u, (void)cfg, (void)t;
}

int fuzz_connect_fresh(px_upstream_t *u, const px_uplink_cb_t *cb, void *ud, px_uplink_t **out)
{
    (void)u;
    if (L.nlinks == MAXL)
        return PX_ENOMEM;                 /* as a failed socket would */
    px_uplink_t *l = &L.links[L.nlinks++];
    memset(l, 0, sizeof *l);
    l->cb = cb;
    l->ud = ud;
    *out = l;
    return 0;
}

int fuzz_uplink_write(px_uplink_t *l, px_buf_t *data)
{
    if (l->writing || l->released)
        abort();                          /* one write in flight, on a live link */
    px_buf_reset(data);
    if (L.flags & 0x01) {
        l->writing = 1;
        return 0;
    }
    return 1;
}

void fuzz_uplink_read_start(px_uplink_t *l)
{
    (void)l;
}

void fuzz_uplink_timeout(px_uplink_t *l, uint32_t ms)
{
    (void)l, (void)ms;
}

void fuzz_uplink_release(px_uplink_t *l, int reusable)
{
    (void)reusable;
    if (l->released)
        abort();
    l->released = 1;
}

/* ---- the owner ------------------------------------------------------------ */

enum { S_FREE, S_HELD, S_ENDED, S_FAILED, S_RELEASED };

typedef struct {
    px_h2c_stream_t *s;
    px_h2cx_t *x;
    int state, got_head, length;
    uint64_t cl, got;
    size_t owed;
    size_t body_left;                     /* request body bytes still to write */
} slot_t;

static slot_t S[MAXS];
static int nslots;
static px_h2c_pool_t *pool;

static void die(const char *what, int i)
{
    fprintf(stderr, "h2c fuzz: %s (stream %d)\n", what, i);
    abort();
}

static int tchar(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static void check_field(const char *n, size_t nn, const char *v, size_t vn, int i)
{
    if (!nn)
        die("an empty field name", i);
    for (size_t k = 0; k < nn; k++)
        if (!tchar(n[k]))
            die("a field name that is not a lowercase token", i);
    if (memchr(v, '\r', vn) || memchr(v, '\n', vn) || memchr(v, '\0', vn))
        die("CR, LF or NUL in a field value", i);
    if (px_h2_connection_specific(n, nn))
        die("a connection-specific field", i);
}

static slot_t *held(void *ud, const char *cb)
{
    slot_t *t = ud;
    if (t->state != S_HELD)
        die(cb, (int)(t - S));
    return t;
}

static void on_head(void *ud, const px_msg_t *m)
{
    slot_t *t = held(ud, "on_head after the end or release");
    int i = (int)(t - S);

    if (t->got_head)
        die("a second head", i);
    if (m->status < 200 || m->status > 999)
        die("a head with a bad status", i);
    t->got_head = 1;
    if (px_h2cx_response(t->x, m) != 0)
        return;
    const px_http_head_t *h = &t->x->head;
    if (h->status != m->status || h->header_count > px_msg_header_count(m))
        die("px_h2cx_response lost the status or a field", i);
    for (int k = 0; k < h->header_count; k++)
        check_field(h->headers[k].name, h->headers[k].name_len, h->headers[k].value,
                    h->headers[k].value_len, i);
    if (h->body == PX_BODY_LENGTH) {
        px_str_t cl = px_msg_find(m, "content-length");
        if (!cl.n || strspn(cl.p, "0123456789") != cl.n)
            die("a LENGTH body without a decimal content-length", i);
        t->length = 1;
        t->cl = h->content_length;
    } else if (h->body == PX_BODY_NONE && !m->end_stream) {
        die("no body but the stream goes on", i);
    }
    if ((L.flags & 0x04) && (i & 1)) {
        t->state = S_RELEASED;
        px_h2c_release(t->s);
        t->s = NULL;
    }
}

static void on_data(void *ud, const uint8_t *p, size_t n)
{
    slot_t *t = held(ud, "on_data after the end or release");

    (void)p;
    if (!t->got_head)
        die("data before the head", (int)(t - S));
    t->got += n;
    if (t->length && t->got > t->cl)
        die("more body than content-length", (int)(t - S));
    if (L.flags & 0x02)
        px_h2c_consumed(t->s, n);
    else
        t->owed += n;
}

static void on_end(void *ud, const px_msg_t *m)
{
    slot_t *t = held(ud, "on_end after the end or release");
    int i = (int)(t - S);

    if (!t->got_head)
        die("on_end without a head", i);
    if (t->length && t->got != t->cl)
        die("a LENGTH body ended short", i);
    t->state = S_ENDED;
    t->s = NULL;
    if (px_h2cx_trailers(t->x, m) != 0)
        return;
    for (int k = 0; k < t->x->ntrailers; k++)
        check_field(t->x->trailers[k].name, t->x->trailers[k].name_len, t->x->trailers[k].value,
                    t->x->trailers[k].value_len, i);
}

static void on_error(void *ud, int err)
{
    slot_t *t = held(ud, "on_error after the end or release");

    TRACE("stream %d: on_error %s\n", (int)(t - S), uv_err_name(err));
    if (err >= 0)
        die("on_error with no error", (int)(t - S));
    t->state = S_FAILED;
    t->s = NULL;
}

static void on_drain(void *ud)
{
    held(ud, "on_drain after the end or release");
}

static const px_h2c_cb_t owner_cb = { on_head, on_data, on_end, on_error, on_drain };

static uint8_t zeros[16384];
static const nghttp2_nv trailers[] = {
    { (uint8_t *)"x-checksum", (uint8_t *)"abc", 10, 3, NGHTTP2_NV_FLAG_NONE },
};

static void write_body(slot_t *t)
{
    while (t->state == S_HELD && t->body_left) {
        size_t n = t->body_left < sizeof zeros ? t->body_left : sizeof zeros;
        size_t k = px_h2c_write(t->s, zeros, n);
        if (!k)
            return;                       /* on_drain: room again later */
        t->body_left -= k;
    }
    if (t->state == S_HELD && !t->body_left)        /* odd slots end with trailers */
        (void)px_h2c_end(t->s, trailers, (size_t)((t - S) & 1));
}

static void open_stream(void)
{
    static const nghttp2_nv nv[] = {
#define F(n, v) { (uint8_t *)n, (uint8_t *)v, sizeof n - 1, sizeof v - 1, NGHTTP2_NV_FLAG_NONE }
        F(":method", "POST"),
        F(":scheme", "http"),
        F(":authority", "model:8001"),
        F(":path", "/inference.GRPCInferenceService/ModelInfer"),
        F("content-type", "application/grpc"),
        F("te", "trailers"),
#undef F
    };
    slot_t *t;
    int body = (L.flags & 0x10) != 0;

    if (nslots == MAXS)
        return;
    t = &S[nslots];
    memset(t, 0, sizeof *t);
    if (!(t->x = px_h2cx_new()))
        return;
    if (px_h2c_open(pool, nv, sizeof nv / sizeof *nv, !body, &owner_cb, t, &t->s) != 0) {
        px_h2cx_free(t->x);
        return;
    }
    nslots++;
    t->state = S_HELD;
    t->body_left = body ? 200 * 1024 : 0;
}

/* ---- driving ---------------------------------------------------------------- */

static uv_loop_t loop;

static uint32_t next(void)
{
    L.rng ^= L.rng << 13;
    L.rng ^= L.rng >> 17;
    L.rng ^= L.rng << 5;
    return L.rng;
}

static void run_loop(void)
{
    uv_run(&loop, UV_RUN_NOWAIT);
}

static void connect_links(void)
{
    for (int i = 0; i < L.nlinks; i++) {
        px_uplink_t *l = &L.links[i];
        if (l->released || l->connected)
            continue;
        l->connected = 1;
        if ((L.flags & 0x20) && next() % 4 == 0)
            l->cb->on_connect(l, UV_ECONNREFUSED, l->ud);
        else
            l->cb->on_connect(l, 0, l->ud);
    }
}

static void finish_writes(void)
{
    for (int i = 0; i < L.nlinks; i++) {
        px_uplink_t *l = &L.links[i];
        if (!l->released && l->writing) {
            l->writing = 0;
            l->cb->on_write(l, 0, l->ud);
        }
    }
}

/* The oldest live connected link: the model server's bytes go there. */
static px_uplink_t *current(void)
{
    for (int i = 0; i < L.nlinks; i++)
        if (!L.links[i].released && L.links[i].connected)
            return &L.links[i];
    return NULL;
}

/* A session nghttp2 has finished (a protocol error it answered with
 * GOAWAY, all written) takes no stream any more: the pool must not keep it
 * as a connection new streams could be given to. */
static void check_sessions(void)
{
    for (conn_t *c = pool->conns; c; c = c->next)
        if (c->connected && !c->writing && !c->dead && !nghttp2_session_want_read(c->ng) &&
            !nghttp2_session_want_write(c->ng))
            die("a finished session kept as a connection", -1);
}

static void event(void)
{
    slot_t *t = nslots ? &S[next() % nslots] : NULL;
    uint32_t e = next() % 10;

    TRACE("event %u on stream %d\n", e, t ? (int)(t - S) : -1);
    switch (e) {
    case 0:
        open_stream();
        break;
    case 1:
        if (t && t->state == S_HELD && t->owed) {
            px_h2c_consumed(t->s, t->owed);
            t->owed = 0;
        }
        break;
    case 2:
        if (t && t->state == S_HELD) {
            t->state = S_RELEASED;
            px_h2c_release(t->s);
            t->s = NULL;
        }
        break;
    case 3:
        if (t)
            write_body(t);
        break;
    case 4:
        finish_writes();
        break;
    case 5: {
        /* a timeout: every stream's silence is long enough (and, one time
         * in two, every unanswered PING's wait) */
        px_timeouts_config_t to = pool->timeouts;
        int pings = next() & 1;
        pool->timeouts.upstream_response = pool->timeouts.upstream_idle = 1;
        for (conn_t *c = pool->conns; c; c = c->next) {
            if (pings && c->ping_ms)
                c->ping_ms = 1;
            for (px_h2c_stream_t *s = c->streams; s; s = s->next)
                s->active_ms = 0;
        }
        if (uv_now(&loop) > 1)
            on_tick(&pool->tick);
        pool->timeouts = to;
        break;
    }
    case 6:
        if (next() % 8 == 0)
            /* a reload also moves http.max_header_bytes (spares keep their arenas) */
            px_h2c_pool_set_config(pool, &pool->cfg, &pool->timeouts,
                                   pool->max_head == 65536 ? 8192 : 65536);
        break;
    default:
        run_loop();
        connect_links();
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int inited;
    px_upstream_config_t cfg;
    px_timeouts_config_t to;
    size_t off = 3;

    if (size < 3)
        return 0;
    if (!inited) {
        uv_loop_init(&loop);
        trace = getenv("PX_FUZZ_TRACE") != NULL;
        inited = 1;
    }
    memset(&L, 0, sizeof L);
    memset(S, 0, sizeof S);
    nslots = 0;
    L.flags = data[0];
    L.rng = 0x9e3779b9u ^ ((uint32_t)data[2] << 8 | data[1]);
    memset(&cfg, 0, sizeof cfg);
    memset(&to, 0, sizeof to);            /* timeouts only by the tick event */
    cfg.h2c_max_streams = (L.flags & 0x08) ? 1 : 100;
    cfg.h2c_max_connections = (L.flags & 0x08) ? 2 : 64;
    cfg.h2c_ping_timeout = 1000;          /* PINGs expire only by the tick event */
    if (!(pool = px_h2c_pool_new(&loop, &cfg, &to, 65536, NULL)))
        return 0;
    for (int i = 0; i < 1 + data[1] % 4; i++)
        open_stream();
    for (int i = 0; i < nslots; i++)
        write_body(&S[i]);
    run_loop();
    connect_links();

    while (off < size) {
        px_uplink_t *l;
        size_t n = 1 + next() % ((next() & 1) ? 16 : 4096);
        if (n > size - off)
            n = size - off;
        while (next() % 3 == 0)
            event();
        if (!(l = current())) {
            run_loop();
            connect_links();
            if (!(l = current())) {
                if (nslots == MAXS)
                    break;                /* nobody to talk to any more */
                open_stream();
                continue;
            }
        }
        TRACE("%zu bytes to link %d\n", n, (int)(l - L.links));
        l->cb->on_read(l, (const char *)data + off, (ssize_t)n, l->ud);
        off += n;
        if (!(L.flags & 0x01) || next() & 1)
            finish_writes();
        run_loop();
        check_sessions();
    }

    if (L.flags & 0x40) {
        /* the pool closes with streams held: no callback after, release frees them */
        px_h2c_pool_close(pool);
        for (int i = 0; i < nslots; i++)
            if (S[i].state == S_HELD) {
                S[i].state = S_RELEASED;
                px_h2c_release(S[i].s);
            }
        uv_run(&loop, UV_RUN_DEFAULT);
        for (int i = 0; i < nslots; i++)
            px_h2cx_free(S[i].x);
        return 0;
    }
    /* EOF: everything still held must end once */
    for (int round = 0; round < 4 * MAXL; round++) {
        int live = 0;
        run_loop();
        connect_links();
        finish_writes();
        for (int i = 0; i < L.nlinks; i++) {
            px_uplink_t *l = &L.links[i];
            if (!l->released) {
                live = 1;
                l->cb->on_read(l, NULL, UV_EOF, l->ud);
            }
        }
        if (!live && !pool->waiting && !pool->kicked)
            break;
    }
    for (int i = 0; i < nslots; i++)
        if (S[i].state == S_HELD)
            die("no on_end or on_error by EOF", i);
    px_h2c_pool_close(pool);
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < nslots; i++)
        px_h2cx_free(S[i].x);
    return 0;
}
