/* The HTTP/2 session (src/http/h2.c) driven in memory by a real nghttp2
 * client session, or by hand-built frames where a client library would
 * refuse to misbehave: requests and responses, flow control as
 * backpressure, vetting (what nghttp2 checks and what we add), and each
 * abuse limit with its counter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "config/config_http2.h"
#include "http/h2.h"
#include "http/h2_fields.h"

#define MAXS 64

/* ---- the server side's owner: records the callbacks ---------------------- */

typedef struct {
    px_h2_t *s;
    uint64_t now;
    int requests, ends, closes, reenter;
    int32_t last_id;
    uint32_t close_code[MAXS * 2];
    int closed[MAXS * 2];
    size_t body[MAXS * 2], drained[MAXS * 2];
    char method[16], authority[64], path[64];
    char field[256];                      /* "name=value;" for each header field */
    char trailer[256];
    int64_t content_length;
    int end_stream;
} owner_t;

static void on_request(void *ud, int32_t id, const px_msg_t *m)
{
    owner_t *o = ud;
    o->requests++;
    o->last_id = id;
    snprintf(o->method, sizeof o->method, "%s", px_msg_get(m, PX_MSG_METHOD).p);
    snprintf(o->authority, sizeof o->authority, "%s", px_msg_get(m, PX_MSG_AUTHORITY).p);
    snprintf(o->path, sizeof o->path, "%s", px_msg_get(m, PX_MSG_PATH).p);
    o->field[0] = '\0';
    for (int i = 0; i < px_msg_header_count(m); i++) {
        size_t l = strlen(o->field);
        snprintf(o->field + l, sizeof o->field - l, "%s=%s;", px_msg_header_name(m, i).p,
                 px_msg_header_value(m, i).p);
    }
    o->content_length = m->content_length;
    o->end_stream = m->end_stream;
    if (o->reenter) {
        uint8_t b = 0;
        px_buf_t buf;
        px_buf_init(&buf, 0);
        assert_int_equal(px_h2_input(o->s, &b, 1), PX_EINVAL);
        assert_int_equal(px_h2_output(o->s, &buf, 0), PX_EINVAL);
        assert_int_equal(px_h2_tick(o->s), PX_EINVAL);
        px_buf_free(&buf);
    }
}

static void on_data(void *ud, int32_t id, void *sd, const uint8_t *p, size_t n)
{
    ((owner_t *)ud)->body[id] += n;
}

static void on_end(void *ud, int32_t id, void *sd, const px_msg_t *m)
{
    owner_t *o = ud;
    o->ends++;
    o->trailer[0] = '\0';
    for (int i = 0; i < px_msg_trailer_count(m); i++) {
        size_t l = strlen(o->trailer);
        snprintf(o->trailer + l, sizeof o->trailer - l, "%s=%s;", px_msg_trailer_name(m, i).p,
                 px_msg_trailer_value(m, i).p);
    }
}

static void on_drained(void *ud, int32_t id, void *sd, size_t n)
{
    ((owner_t *)ud)->drained[id] += n;
}

static void on_close(void *ud, int32_t id, void *sd, uint32_t code)
{
    owner_t *o = ud;
    /* from on_close on, the stream is unknown (no credit returned twice) */
    assert_int_equal(px_h2_consumed(o->s, id, 0), PX_ENOTFOUND);
    o->closes++;
    o->closed[id]++;
    o->close_code[id] = code;
}

static uint64_t clock_cb(void *ud)
{
    return ((owner_t *)ud)->now;
}

static const px_h2_callbacks_t cbs = { on_request, on_data, on_end, on_drained, on_close };

/* ---- the client: an nghttp2 client session, or raw frames ------------------ */

typedef struct {
    nghttp2_session *ng;
    px_buf_t raw;                         /* hand-built frames, sent before the session's */
    int status[MAXS * 2];
    uint32_t rst[MAXS * 2];
    int rst_seen[MAXS * 2], closed[MAXS * 2];
    size_t body[MAXS * 2];
    char trailer[256];
    int goaway;
    uint32_t goaway_code;
    int32_t goaway_last;
    int settings_seen;
} client_t;

static int c_on_header(nghttp2_session *ng, const nghttp2_frame *fr, const uint8_t *name,
                       size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    client_t *c = ud;
    if (nlen == 7 && !memcmp(name, ":status", 7))
        c->status[fr->hd.stream_id] = atoi((const char *)value);
    else if (fr->headers.cat == NGHTTP2_HCAT_HEADERS) {
        size_t l = strlen(c->trailer);
        snprintf(c->trailer + l, sizeof c->trailer - l, "%.*s=%.*s;", (int)nlen, name, (int)vlen,
                 value);
    }
    return 0;
}

static int c_on_data(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *p, size_t n,
                     void *ud)
{
    ((client_t *)ud)->body[id] += n;
    return 0;
}

static int c_on_frame(nghttp2_session *ng, const nghttp2_frame *fr, void *ud)
{
    client_t *c = ud;
    if (fr->hd.type == NGHTTP2_RST_STREAM) {
        c->rst_seen[fr->hd.stream_id] = 1;
        c->rst[fr->hd.stream_id] = fr->rst_stream.error_code;
    } else if (fr->hd.type == NGHTTP2_GOAWAY) {
        c->goaway++;
        c->goaway_code = fr->goaway.error_code;
        c->goaway_last = fr->goaway.last_stream_id;
    } else if (fr->hd.type == NGHTTP2_SETTINGS && !(fr->hd.flags & NGHTTP2_FLAG_ACK)) {
        c->settings_seen = 1;
    }
    return 0;
}

static int c_on_close(nghttp2_session *ng, int32_t id, uint32_t code, void *ud)
{
    ((client_t *)ud)->closed[id] = 1;
    return 0;
}

typedef struct {
    px_http2_config_t cfg;
    owner_t o;
    client_t c;
} pair_t;

static pair_t *P;

static void client_init(client_t *c, int window)
{
    nghttp2_session_callbacks *cb;
    nghttp2_option *opt;
    nghttp2_settings_entry iv[] = { { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, (uint32_t)window } };

    memset(c, 0, sizeof *c);
    px_buf_init(&c->raw, 0);
    assert_int_equal(nghttp2_session_callbacks_new(&cb), 0);
    nghttp2_session_callbacks_set_on_header_callback(cb, c_on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, c_on_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, c_on_frame);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, c_on_close);
    assert_int_equal(nghttp2_option_new(&opt), 0);
    /* the client must be able to send what our server refuses */
    nghttp2_option_set_no_http_messaging(opt, 1);
    /* the client's windows open only when a test says it read */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    /* nghttp2 would not send a field block above 64 KiB decoded */
    nghttp2_option_set_max_send_header_block_length(opt, 1 << 20);
    assert_int_equal(nghttp2_session_client_new2(&c->ng, cb, c, opt), 0);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    assert_int_equal(nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv, 1), 0);
}

static void start(pair_t *p, int client_window)
{
    memset(&p->o, 0, sizeof p->o);
    p->o.now = 1000;
    assert_int_equal(px_h2_new(&p->cfg, &cbs, &p->o, clock_cb, &p->o.s), 0);
    client_init(&p->c, client_window);
}

static int setup(void **state)
{
    P = calloc(1, sizeof *P);
    px_config_http2_defaults(&P->cfg);
    *state = P;
    return 0;
}

static int teardown(void **state)
{
    pair_t *p = *state;
    px_h2_free(p->o.s);
    nghttp2_session_del(p->c.ng);
    px_buf_free(&p->c.raw);
    free(p);
    return 0;
}

/* client -> server only: the server's answers stay queued (floods). */
static int send_up(pair_t *p)
{
    const uint8_t *d;
    ssize_t n;
    int rc = 0;

    if (px_buf_size(&p->c.raw)) {
        rc = px_h2_input(p->o.s, px_buf_ptr(&p->c.raw), px_buf_size(&p->c.raw));
        px_buf_reset(&p->c.raw);
        if (rc)
            return rc;
    }
    while ((n = nghttp2_session_mem_send(p->c.ng, &d)) > 0)
        if ((rc = px_h2_input(p->o.s, d, (size_t)n)) != 0)
            return rc;
    return rc;
}

/* Both ways until quiet. Returns the first px_h2_input error (0: none). */
static int pump(pair_t *p)
{
    int rc = 0;

    for (int round = 0; round < 100; round++) {
        px_buf_t out;
        int moved;
        if ((rc = send_up(p)) != 0)
            return rc;
        px_buf_init(&out, 0);
        assert_int_equal(px_h2_output(p->o.s, &out, 0), 0);
        moved = px_buf_size(&out) > 0;
        if (moved)
            assert_true(nghttp2_session_mem_recv(p->c.ng, (const uint8_t *)px_buf_ptr(&out),
                                                 px_buf_size(&out)) >= 0);
        px_buf_free(&out);
        if (!moved && !nghttp2_session_want_write(p->c.ng))
            return 0;
    }
    fail_msg("no quiet after 100 rounds");
    return -1;
}

#define NV(n, v) { (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, sizeof(v) - 1, NGHTTP2_NV_FLAG_NONE }
#define BASE NV(":method", "GET"), NV(":scheme", "https"), NV(":authority", "a.example"), \
             NV(":path", "/p")

static int32_t request(pair_t *p, const nghttp2_nv *nv, size_t n, nghttp2_data_provider *body)
{
    int32_t id = nghttp2_submit_request(p->c.ng, NULL, nv, n, body, NULL);
    assert_true(id > 0);
    return id;
}

/* A request body from a counter: `left` bytes of 'x'. */
static size_t body_left;
static ssize_t body_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len,
                         uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    size_t n = len < body_left ? len : body_left;
    memset(buf, 'x', n);
    body_left -= n;
    if (!body_left)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static px_msg_t resp(int status, int end)
{
    px_msg_t m;
    px_msg_init(&m, 4096, 16);
    m.status = status;
    m.end_stream = end;
    return m;
}

/* ---- requests and responses ------------------------------------------------ */

static void test_get_response_trailers(void **state)
{
    pair_t *p = *state;
    const nghttp2_nv nv[] = { BASE, NV("accept", "*/*"), NV("te", "trailers") };
    px_msg_t r = resp(200, 0), t = resp(0, 0);
    int32_t id;

    start(p, 65535);
    id = request(p, nv, 6, NULL);
    assert_int_equal(pump(p), 0);
    assert_int_equal(p->o.requests, 1);
    assert_string_equal(p->o.method, "GET");
    assert_string_equal(p->o.authority, "a.example");
    assert_string_equal(p->o.path, "/p");
    assert_string_equal(p->o.field, "accept=*/*;te=trailers;");
    assert_int_equal(p->o.end_stream, 1);
    assert_int_equal(p->o.ends, 1);
    assert_int_equal(p->o.content_length, -1);

    assert_int_equal(px_msg_add(&r, "Content-Type", 12, "text/plain", 10), 0);
    assert_int_equal(px_msg_add(&r, "Connection", 10, "close", 5), 0);   /* dropped */
    assert_int_equal(px_h2_respond(p->o.s, id, &r), 0);
    assert_int_equal(px_h2_respond(p->o.s, id, &r), PX_EINVAL);           /* once */
    assert_int_equal(px_h2_send(p->o.s, id, "hello", 5), 5);
    px_msg_begin_trailers(&t);
    assert_int_equal(px_msg_add(&t, "grpc-status", 11, "0", 1), 0);
    assert_int_equal(px_h2_end(p->o.s, id, &t), 0);
    assert_int_equal(px_h2_send(p->o.s, id, "x", 1), PX_EINVAL);         /* after the end */
    assert_int_equal(pump(p), 0);
    assert_int_equal(p->c.status[id], 200);
    assert_int_equal(p->c.body[id], 5);
    assert_string_equal(p->c.trailer, "grpc-status=0;");
    assert_int_equal(p->c.closed[id], 1);
    assert_int_equal(p->o.closed[id], 1);
    assert_int_equal(p->o.close_code[id], 0);
    assert_int_equal(p->o.drained[id], 5);
    assert_int_equal(px_h2_open_streams(p->o.s), 0);
    /* the stream is gone: calls on it say so */
    assert_int_equal(px_h2_send(p->o.s, id, "x", 1), PX_ENOTFOUND);
    assert_int_equal(px_h2_consumed(p->o.s, id, 1), PX_ENOTFOUND);
    assert_int_equal(px_h2_stats(p->o.s)->streams, 1);
    px_msg_free(&r);
    px_msg_free(&t);
}

/* A head with a body to come, then the end with nothing ever queued (an
 * empty streamed response): one empty DATA with END_STREAM; the data
 * provider copies nothing from an empty buffer (UBSan: memcpy from NULL). */
static void test_empty_body_after_head(void **state)
{
    pair_t *p = *state;
    const nghttp2_nv nv[] = { BASE };
    px_msg_t r = resp(200, 0);
    int32_t id;

    start(p, 65535);
    id = request(p, nv, 4, NULL);
    assert_int_equal(pump(p), 0);
    assert_int_equal(px_h2_respond(p->o.s, id, &r), 0);
    assert_int_equal(pump(p), 0);
    assert_int_equal(px_h2_end(p->o.s, id, NULL), 0);
    assert_int_equal(pump(p), 0);
    assert_int_equal(p->c.status[id], 200);
    assert_int_equal(p->c.body[id], 0);
    assert_int_equal(p->c.closed[id], 1);
    assert_int_equal(p->o.close_code[id], 0);
    px_msg_free(&r);
}

static void test_request_trailers_and_host(void **state)
{
    pair_t *p = *state;
    const nghttp2_nv nv[] = { NV(":method", "POST"), NV(":scheme", "https"), NV(":path", "/u"),
                              NV("host", "h.example"), NV("content-length", "3") };
    const nghttp2_nv tr[] = { NV("grpc-status", "0") };
    int32_t id;

    start(p, 65535);
    id = nghttp2_submit_headers(p->c.ng, 0, -1, NULL, nv, 5, NULL);
    assert_true(id > 0);
    assert_int_equal(pump(p), 0);
    /* no :authority: Host is the authority, and not a field */
    assert_string_equal(p->o.authority, "h.example");
    assert_string_equal(p->o.field, "content-length=3;");
    assert_int_equal(p->o.content_length, 3);
    assert_int_equal(p->o.end_stream, 0);
    body_left = 3;
    {
        nghttp2_data_provider d = { .read_callback = body_read };
        /* DATA without END_STREAM, then trailers */
        assert_int_equal(nghttp2_submit_data(p->c.ng, NGHTTP2_FLAG_NONE, id, &d), 0);
    }
    assert_int_equal(pump(p), 0);
    assert_int_equal(nghttp2_submit_headers(p->c.ng, NGHTTP2_FLAG_END_STREAM, id, NULL, tr, 1,
                                            NULL), 0);
    assert_int_equal(pump(p), 0);
    assert_int_equal(p->o.body[id], 3);
    assert_int_equal(p->o.ends, 1);
    assert_string_equal(p->o.trailer, "grpc-status=0;");
}

/* ---- flow control ------------------------------------------------------------ */

static void test_window_opens_only_when_consumed(void **state)
{
    pair_t *p = *state;
    const nghttp2_nv nv[] = { NV(":method", "POST"), NV(":scheme", "https"),
                              NV(":authority", "a"), NV(":path", "/") };
    nghttp2_data_provider d = { .read_callback = body_read };
    int32_t id;

    p->cfg.initial_window_size = 16384;
    start(p, 65535);
    /* our SETTINGS first: until the client has them it may use 65535 */
    assert_int_equal(pump(p), 0);
    body_left = 100000;
    id = request(p, nv, 4, &d);
    assert_int_equal(pump(p), 0);
    /* the stream window, nothing more, however long we pump */
    assert_int_equal(p->o.body[id], 16384);
    assert_int_equal(pump(p), 0);
    assert_int_equal(p->o.body[id], 16384);
    assert_int_equal(px_h2_consumed(p->o.s, id, 16385), PX_EINVAL);  /* more than it got */
    assert_int_equal(px_h2_consumed(p->o.s, id, 16384), 0);
    assert_int_equal(pump(p), 0);
    assert_int_equal(p->o.body[id], 32768);
    for (size_t done = 16384; p->o.ends == 0;) {
        size_t n = p->o.body[id] - done;
        assert_true(n > 0);
        assert_int_equal(px_h2_consumed(p->o.s, id, n), 0);
        done += n;
        assert_int_equal(pump(p), 0);
    }
    assert_int_equal(p->o.body[id], 100000);
}

static void test_reset_returns_connection_credit(void **state)
{
    pair_t *p = *state;
    const nghttp2_nv nv[] = { NV(":method", "POST"), NV(":scheme", "https"),
                              NV(":authority", "a"), NV(":path", "/") };
    nghttp2_data_provider d = { .read_callback = body_read };
    int32_t a, b;

    /* one stream can fill the whole connection window */
    p->cfg.initial_window_size = 65535;
    p->cfg.connection_window_size = 65535;
    start(p, 65535);
    body_left = 65535;
    a = request(p, nv, 4, &d);
    assert_int_equal(pump(p), 0);
    assert_int_equal(p->o.body[a], 65535);
    /* the owner never consumed: the reset must give the connection its credit back */
    assert_int_equal(px_h2_reset(p->o.s, a, NGHTTP2_CANCEL), 0);
    assert_int_equal(pump(p), 0);
    assert_int_equal(p->o.closed[a], 1);
    assert_int_equal(p->o.close_code[a], NGHTTP2_CANCEL);
    body_left = 1000;
    b = request(p, nv, 4, &d);
    assert_int_equal(pump(p), 0);
    assert_int_equal(p->o.body[b], 1000);
}

static void test_response_backpressure(void **state)
{
    pair_t *p = *state;
    const nghttp2_nv nv[] = { BASE };
    static char big[200000];
    px_msg_t r = resp(200, 0);
    int32_t id;
    int64_t n;

    p->cfg.stream_buffer = 32768;
    start(p, 16384);                      /* the client's stream window */
    id = request(p, nv, 4, NULL);
    assert_int_equal(pump(p), 0);
    assert_int_equal(px_h2_respond(p->o.s, id, &r), 0);
    n = px_h2_send(p->o.s, id, big, sizeof big);
    assert_int_equal(n, 32768);           /* the stream's queue, no more */
    assert_int_equal(px_h2_send(p->o.s, id, big, 10), 0);
    assert_int_equal(pump(p), 0);
    /* the client's window let 16384 through; that much room came back */
    assert_int_equal(p->c.body[id], 16384);
    assert_int_equal(p->o.drained[id], 16384);
    assert_int_equal(px_h2_queued(p->o.s, id), 16384);
    /* the client reads: the window reopens, the deferred stream resumes */
    assert_int_equal(nghttp2_session_consume(p->c.ng, id, 16384), 0);
    assert_int_equal(pump(p), 0);
    assert_int_equal(p->c.body[id], 32768);
    assert_int_equal(px_h2_queued(p->o.s, id), 0);
    /* nothing queued: deferred; a send resumes it */
    assert_int_equal(nghttp2_session_consume(p->c.ng, id, 16384), 0);
    assert_int_equal(pump(p), 0);
    assert_int_equal(px_h2_send(p->o.s, id, big, 100), 100);
    assert_int_equal(px_h2_end(p->o.s, id, NULL), 0);
    assert_int_equal(pump(p), 0);
    assert_int_equal(p->c.body[id], 32868);
    assert_int_equal(p->c.closed[id], 1);
    px_msg_free(&r);
}

static void test_connection_buffer_bound(void **state)
{
    pair_t *p = *state;
    const nghttp2_nv nv[] = { BASE };
    static char big[65536];
    px_msg_t r = resp(200, 0);
    int32_t a, b;

    p->cfg.stream_buffer = 40000;
    p->cfg.connection_buffer = 50000;
    start(p, 0);                          /* nothing leaves */
    a = request(p, nv, 4, NULL);
    b = request(p, nv, 4, NULL);
    assert_int_equal(pump(p), 0);
    assert_int_equal(px_h2_respond(p->o.s, a, &r), 0);
    assert_int_equal(px_h2_respond(p->o.s, b, &r), 0);
    assert_int_equal(px_h2_send(p->o.s, a, big, sizeof big), 40000);
    assert_int_equal(px_h2_send(p->o.s, b, big, sizeof big), 10000);   /* what is left */
    assert_int_equal(px_h2_send(p->o.s, b, big, 1), 0);
    /* stream a goes away: b is told it has room again */
    assert_int_equal(px_h2_reset(p->o.s, a, NGHTTP2_CANCEL), 0);
    assert_int_equal(pump(p), 0);
    assert_int_equal(p->o.closed[a], 1);
    assert_int_equal(px_h2_send(p->o.s, b, big, sizeof big), 30000);
    px_msg_free(&r);
}

/* ---- vetting ------------------------------------------------------------------ */

typedef struct {
    const char *what;
    nghttp2_nv nv[8];
    size_t n;
    uint32_t code;                        /* RST_STREAM expected; 0: accepted */
} vet_t;

static const vet_t vets[] = {
    { "plain", { BASE }, 4, 0 },
    { "te: trailers", { BASE, NV("te", "trailers") }, 5, 0 },
    { "te: gzip", { BASE, NV("te", "gzip") }, 5, NGHTTP2_PROTOCOL_ERROR },
    { "connection", { BASE, NV("connection", "keep-alive") }, 5, NGHTTP2_PROTOCOL_ERROR },
    { "keep-alive", { BASE, NV("keep-alive", "5") }, 5, NGHTTP2_PROTOCOL_ERROR },
    { "proxy-connection", { BASE, NV("proxy-connection", "x") }, 5, NGHTTP2_PROTOCOL_ERROR },
    { "transfer-encoding", { BASE, NV("transfer-encoding", "chunked") }, 5, NGHTTP2_PROTOCOL_ERROR },
    { "upgrade", { BASE, NV("upgrade", "h2c") }, 5, NGHTTP2_PROTOCOL_ERROR },
    { "no :method", { NV(":scheme", "https"), NV(":authority", "a"), NV(":path", "/") }, 3,
      NGHTTP2_PROTOCOL_ERROR },
    { "no :scheme", { NV(":method", "GET"), NV(":authority", "a"), NV(":path", "/") }, 3,
      NGHTTP2_PROTOCOL_ERROR },
    { "no :path", { NV(":method", "GET"), NV(":scheme", "https"), NV(":authority", "a") }, 3,
      NGHTTP2_PROTOCOL_ERROR },
    { "empty :path", { NV(":method", "GET"), NV(":scheme", "https"), NV(":authority", "a"),
                       NV(":path", "") }, 4, NGHTTP2_PROTOCOL_ERROR },
    { "two :path", { BASE, NV(":path", "/q") }, 5, NGHTTP2_PROTOCOL_ERROR },
    { "two :method", { NV(":method", "GET"), NV(":method", "POST"), NV(":scheme", "https"),
                       NV(":authority", "a"), NV(":path", "/") }, 5, NGHTTP2_PROTOCOL_ERROR },
    { "pseudo after field", { NV(":method", "GET"), NV(":scheme", "https"), NV("x", "1"),
                              NV(":authority", "a"), NV(":path", "/") }, 5,
      NGHTTP2_PROTOCOL_ERROR },
    { ":status in a request", { BASE, NV(":status", "200") }, 5, NGHTTP2_PROTOCOL_ERROR },
    { "unknown pseudo", { BASE, NV(":foo", "1") }, 5, NGHTTP2_PROTOCOL_ERROR },
    { ":protocol without CONNECT", { BASE, NV(":protocol", "websocket") }, 5,
      NGHTTP2_PROTOCOL_ERROR },
    { "upper-case name", { BASE, { (uint8_t *)"X-Foo", (uint8_t *)"1", 5, 1,
                                   NGHTTP2_NV_FLAG_NO_COPY_NAME } }, 5, NGHTTP2_PROTOCOL_ERROR },
    { "space in name", { BASE, NV("x foo", "1") }, 5, NGHTTP2_PROTOCOL_ERROR },
    { "colon in name", { BASE, NV("x:foo", "1") }, 5, NGHTTP2_PROTOCOL_ERROR },
    { "empty name", { BASE, NV("", "1") }, 5, NGHTTP2_PROTOCOL_ERROR },
    { "CR in value", { BASE, NV("x", "a\rb") }, 5, NGHTTP2_PROTOCOL_ERROR },
    { "LF in value", { BASE, NV("x", "a\nb") }, 5, NGHTTP2_PROTOCOL_ERROR },
    { "NUL in value", { BASE, { (uint8_t *)"x", (uint8_t *)"a\0b", 1, 3, 0 } }, 5,
      NGHTTP2_PROTOCOL_ERROR },
    { "leading space in value", { BASE, NV("x", " a") }, 5, NGHTTP2_PROTOCOL_ERROR },
    { "CR LF in :path", { NV(":method", "GET"), NV(":scheme", "https"), NV(":authority", "a"),
                          NV(":path", "/a\r\nx: y") }, 4, NGHTTP2_PROTOCOL_ERROR },
    { "space in :method", { NV(":method", "GET /x"), NV(":scheme", "https"),
                            NV(":authority", "a"), NV(":path", "/") }, 4, NGHTTP2_PROTOCOL_ERROR },
    /* CONNECT passes the session (no :scheme, no :path): the exchange refuses it */
    { "CONNECT", { NV(":method", "CONNECT"), NV(":authority", "a:443") }, 2, 0 },
    { "CONNECT with :path", { NV(":method", "CONNECT"), NV(":authority", "a:443"),
                              NV(":path", "/") }, 3, NGHTTP2_PROTOCOL_ERROR },
    { "host equal to :authority", { BASE, NV("host", "A.example") }, 5, 0 },
    { "host differing from :authority", { BASE, NV("host", "b.example") }, 5,
      NGHTTP2_PROTOCOL_ERROR },
    { "two content-length", { BASE, NV("content-length", "1"), NV("content-length", "1") }, 6,
      NGHTTP2_PROTOCOL_ERROR },
    { "content-length not a number", { BASE, NV("content-length", "1x") }, 5,
      NGHTTP2_PROTOCOL_ERROR },
};

static void test_vetting(void **state)
{
    pair_t *p = *state;

    for (size_t i = 0; i < sizeof vets / sizeof *vets; i++) {
        const vet_t *v = &vets[i];
        int32_t id;
        start(p, 65535);
        id = request(p, v->nv, v->n, NULL);
        assert_int_equal(pump(p), 0);
        if (p->o.requests != (v->code ? 0 : 1) || p->c.rst[id] != v->code ||
            p->c.rst_seen[id] != (v->code != 0) || p->c.goaway)
            fail_msg("%s: requests %d, RST_STREAM %d code %u, GOAWAY %d", v->what, p->o.requests,
                     p->c.rst_seen[id], p->c.rst[id], p->c.goaway);
        if (px_h2_stats(p->o.s)->refused_vetting != (v->code != 0))
            fail_msg("%s: refused_vetting %llu", v->what,
                     (unsigned long long)px_h2_stats(p->o.s)->refused_vetting);
        px_h2_free(p->o.s);
        nghttp2_session_del(p->c.ng);
        px_buf_free(&p->c.raw);
    }
    p->o.s = NULL;
    p->c.ng = NULL;
}

static void test_content_length_disagrees(void **state)
{
    pair_t *p = *state;
    const nghttp2_nv nv[] = { NV(":method", "POST"), NV(":scheme", "https"),
                              NV(":authority", "a"), NV(":path", "/"), NV("content-length", "5") };
    nghttp2_data_provider d = { .read_callback = body_read };
    int32_t id;

    start(p, 65535);
    body_left = 3;                        /* END_STREAM after 3 of 5 */
    id = request(p, nv, 5, &d);
    assert_int_equal(pump(p), 0);
    /* the head was fine and went on; the body is not: reset, never "ended" */
    assert_int_equal(p->o.requests, 1);
    assert_int_equal(p->o.ends, 0);
    assert_int_equal(p->c.rst[id], NGHTTP2_PROTOCOL_ERROR);
    assert_int_equal(p->o.closed[id], 1);
    assert_int_equal(p->o.close_code[id], NGHTTP2_PROTOCOL_ERROR);

    body_left = 7;                        /* more than announced */
    id = request(p, nv, 5, &d);
    assert_int_equal(pump(p), 0);
    assert_int_equal(p->c.rst[id], NGHTTP2_PROTOCOL_ERROR);
    assert_int_equal(p->o.ends, 0);
}

static void test_trailer_vetting(void **state)
{
    pair_t *p = *state;
    const nghttp2_nv nv[] = { NV(":method", "POST"), NV(":scheme", "https"),
                              NV(":authority", "a"), NV(":path", "/") };
    static const struct { nghttp2_nv nv; uint32_t code; } tr[] = {
        { NV("content-length", "0"), NGHTTP2_PROTOCOL_ERROR },
        { NV("host", "evil"), NGHTTP2_PROTOCOL_ERROR },
        { NV(":path", "/x"), NGHTTP2_PROTOCOL_ERROR },
        { NV("transfer-encoding", "chunked"), NGHTTP2_PROTOCOL_ERROR },
        { NV("x-checksum", "1"), 0 },
    };

    start(p, 65535);
    for (size_t i = 0; i < sizeof tr / sizeof *tr; i++) {
        int32_t id = nghttp2_submit_headers(p->c.ng, 0, -1, NULL, nv, 4, NULL);
        int ends = p->o.ends;
        assert_int_equal(pump(p), 0);
        assert_int_equal(nghttp2_submit_headers(p->c.ng, NGHTTP2_FLAG_END_STREAM, id, NULL,
                                                &tr[i].nv, 1, NULL), 0);
        assert_int_equal(pump(p), 0);
        if (p->c.rst[id] != tr[i].code || p->o.ends != ends + (tr[i].code == 0))
            fail_msg("trailer %s: RST code %u, ends %d", (const char *)tr[i].nv.name,
                     p->c.rst[id], p->o.ends - ends);
    }
}

static void test_header_list_limit(void **state)
{
    pair_t *p = *state;
    static char v[2000];
    nghttp2_nv nv[40] = { BASE };
    int32_t id;

    memset(v, 'v', sizeof v);
    /* an HPACK bomb: one big value in the dynamic table, then referenced
     * again and again for a byte or two each */
    for (int i = 4; i < 40; i++)
        nv[i] = (nghttp2_nv){ (uint8_t *)"x-big", (uint8_t *)v, 5, sizeof v, 0 };
    p->cfg.max_header_list_size = 65536;
    start(p, 65535);
    id = request(p, nv, 40, NULL);
    assert_int_equal(pump(p), 0);
    assert_int_equal(p->o.requests, 0);
    assert_int_equal(p->c.rst[id], NGHTTP2_ENHANCE_YOUR_CALM);
    assert_int_equal(px_h2_stats(p->o.s)->refused_header_size, 1);
    /* under the limit passes: 4 pseudo + 30 x (5 + 2000 + 32) */
    id = request(p, nv, 34, NULL);
    assert_int_equal(pump(p), 0);
    assert_int_equal(p->o.requests, 1);
    assert_int_equal(p->c.rst_seen[id], 0);
}

static void test_header_list_counts_per_field_overhead(void **state)
{
    pair_t *p = *state;
    nghttp2_nv nv[204] = { BASE };
    int32_t id;

    /* 200 one-byte fields: 800 bytes stored, but 200 x 34 by RFC 9113's
     * count, over a 4096 limit: many tiny fields cost the table entries */
    for (int i = 4; i < 204; i++)
        nv[i] = (nghttp2_nv){ (uint8_t *)"x", (uint8_t *)"1", 1, 1, 0 };
    p->cfg.max_header_list_size = 4096;
    start(p, 65535);
    id = request(p, nv, 204, NULL);
    assert_int_equal(pump(p), 0);
    assert_int_equal(p->o.requests, 0);
    assert_int_equal(p->c.rst[id], NGHTTP2_ENHANCE_YOUR_CALM);
}

/* ---- abuse limits --------------------------------------------------------------- */

static void test_rapid_reset(void **state)
{
    pair_t *p = *state;
    const nghttp2_nv nv[] = { BASE };
    int i;

    p->cfg.reset_budget = 10;
    p->cfg.reset_window_ms = 1000;
    start(p, 65535);
    /* resets spread over windows are fine */
    for (i = 0; i < 30; i++) {
        int32_t id = request(p, nv, 4, NULL);
        assert_int_equal(pump(p), 0);
        assert_int_equal(nghttp2_submit_rst_stream(p->c.ng, 0, id, NGHTTP2_CANCEL), 0);
        assert_int_equal(pump(p), 0);
        if (i % 10 == 9)
            p->o.now += 1000;
    }
    assert_int_equal(p->c.goaway, 0);
    assert_int_equal(px_h2_stats(p->o.s)->resets_received, 30);
    assert_int_equal(p->o.requests, 30);
    assert_int_equal(p->o.closes, 30);
    /* eleven in one window: GOAWAY ENHANCE_YOUR_CALM */
    for (i = 0; i < 11; i++) {
        int32_t id = request(p, nv, 4, NULL);
        assert_int_equal(send_up(p), 0);
        assert_int_equal(nghttp2_submit_rst_stream(p->c.ng, 0, id, NGHTTP2_CANCEL), 0);
        assert_int_equal(send_up(p), 0);
    }
    pump(p);
    assert_int_equal(p->c.goaway, 1);
    assert_int_equal(p->c.goaway_code, NGHTTP2_ENHANCE_YOUR_CALM);
    assert_int_equal(px_h2_stats(p->o.s)->rapid_reset_goaways, 1);
    assert_true(px_h2_want_close(p->o.s));
}

static void test_rapid_reset_across_window_edge(void **state)
{
    pair_t *p = *state;
    const nghttp2_nv nv[] = { BASE };

    /* 10 just before a window's end and 10 just after: 20 in 2 ms is twice
     * the rate; a budget that refills over time (not per fixed window) sees it */
    p->cfg.reset_budget = 10;
    p->cfg.reset_window_ms = 1000;
    start(p, 65535);
    p->o.now = 1999;
    for (int i = 0; i < 20; i++) {
        int32_t id = request(p, nv, 4, NULL);
        assert_int_equal(send_up(p), 0);
        assert_int_equal(nghttp2_submit_rst_stream(p->c.ng, 0, id, NGHTTP2_CANCEL), 0);
        assert_int_equal(send_up(p), 0);
        if (i == 9)
            p->o.now = 2001;
    }
    pump(p);
    assert_int_equal(px_h2_stats(p->o.s)->rapid_reset_goaways, 1);
    assert_int_equal(p->c.goaway_code, NGHTTP2_ENHANCE_YOUR_CALM);
}

static void test_refusals_spend_the_reset_budget(void **state)
{
    pair_t *p = *state;
    const nghttp2_nv bad[] = { BASE, NV("connection", "x") };

    p->cfg.reset_budget = 5;
    start(p, 65535);
    for (int i = 0; i < 6; i++)
        request(p, bad, 5, NULL);
    pump(p);
    assert_int_equal(px_h2_stats(p->o.s)->refused_vetting, 6);
    assert_int_equal(p->c.goaway_code, NGHTTP2_ENHANCE_YOUR_CALM);
    assert_int_equal(px_h2_stats(p->o.s)->rapid_reset_goaways, 1);
}

/* A frame header by hand. */
static void frame(px_buf_t *b, uint32_t len, uint8_t type, uint8_t flags, int32_t id)
{
    uint8_t h[9] = { (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len, type, flags,
                     (uint8_t)(id >> 24), (uint8_t)(id >> 16), (uint8_t)(id >> 8), (uint8_t)id };
    assert_int_equal(px_buf_append(b, h, 9), 0);
}

/* Connection preface + an empty SETTINGS, raw. */
static void raw_preface(px_buf_t *b)
{
    assert_int_equal(px_buf_append(b, NGHTTP2_CLIENT_MAGIC, NGHTTP2_CLIENT_MAGIC_LEN), 0);
    frame(b, 0, NGHTTP2_SETTINGS, 0, 0);
}

static void test_continuation_flood(void **state)
{
    pair_t *p = *state;
    nghttp2_hd_deflater *def;
    const nghttp2_nv nv[] = { BASE };
    uint8_t blk[256];
    ssize_t n;
    px_buf_t b, out;

    p->cfg.max_continuations = 2;    /* below nghttp2's own default of 8 */
    start(p, 65535);
    px_buf_init(&b, 0);
    raw_preface(&b);
    assert_int_equal(nghttp2_hd_deflate_new(&def, 4096), 0);
    n = nghttp2_hd_deflate_hd(def, blk, sizeof blk, nv, 4);
    assert_true(n > 0);
    nghttp2_hd_deflate_del(def);
    frame(&b, (uint32_t)n, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_STREAM, 1);  /* no END_HEADERS */
    assert_int_equal(px_buf_append(&b, blk, (size_t)n), 0);
    /* empty CONTINUATION frames, forever: nothing to decode, nothing ends */
    for (int i = 0; i < 4; i++)
        frame(&b, 0, NGHTTP2_CONTINUATION, 0, 1);
    assert_int_equal(px_h2_input(p->o.s, px_buf_ptr(&b), px_buf_size(&b)), PX_EPARSE);
    assert_int_equal(px_h2_stats(p->o.s)->continuation_floods, 1);
    assert_int_equal(p->o.requests, 0);
    /* input is over; a GOAWAY says why */
    assert_int_equal(px_h2_input(p->o.s, "x", 1), PX_EPARSE);
    px_buf_init(&out, 0);
    assert_int_equal(px_h2_output(p->o.s, &out, 0), 0);
    assert_true(nghttp2_session_mem_recv(p->c.ng, (const uint8_t *)px_buf_ptr(&out),
                                         px_buf_size(&out)) >= 0);
    assert_int_equal(p->c.goaway_code, NGHTTP2_ENHANCE_YOUR_CALM);
    assert_true(px_h2_want_close(p->o.s));
    px_buf_free(&out);
    px_buf_free(&b);
}

static void flood(pair_t *p, uint8_t type)
{
    px_buf_t b;
    int rc = 0, i;

    p->cfg.max_queued_acks = 50;
    start(p, 65535);
    px_buf_init(&b, 0);
    raw_preface(&b);
    /* never reading the answers: the ACKs pile up on our side */
    for (i = 0; i < 1000 && rc == 0; i++) {
        static const uint8_t ping[8];
        if (type == NGHTTP2_PING) {
            frame(&b, 8, NGHTTP2_PING, 0, 0);
            assert_int_equal(px_buf_append(&b, ping, 8), 0);
        } else {
            frame(&b, 0, NGHTTP2_SETTINGS, 0, 0);
        }
        rc = px_h2_input(p->o.s, px_buf_ptr(&b), px_buf_size(&b));
        px_buf_reset(&b);
    }
    assert_int_equal(rc, PX_EPARSE);
    assert_true(i <= 60);
    assert_int_equal(px_h2_stats(p->o.s)->ack_floods, 1);
    px_buf_free(&b);
}

static void test_rapid_reset_one_write(void **state)
{
    pair_t *p = *state;
    const nghttp2_nv nv[] = { BASE };
    static const uint8_t cancel[4] = { 0, 0, 0, NGHTTP2_CANCEL };
    nghttp2_hd_deflater *def;
    uint8_t blk[128];
    px_buf_t b, out;
    ssize_t n;

    /* the attack as sent: HEADERS then RST_STREAM, many pairs in one write */
    p->cfg.reset_budget = 10;
    start(p, 65535);
    px_buf_init(&b, 0);
    raw_preface(&b);
    assert_int_equal(nghttp2_hd_deflate_new(&def, 4096), 0);
    for (int32_t id = 1; id < 2 * 50; id += 2) {
        n = nghttp2_hd_deflate_hd(def, blk, sizeof blk, nv, 4);
        frame(&b, (uint32_t)n, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM,
              id);
        assert_int_equal(px_buf_append(&b, blk, (size_t)n), 0);
        frame(&b, 4, NGHTTP2_RST_STREAM, 0, id);
        assert_int_equal(px_buf_append(&b, cancel, 4), 0);
    }
    nghttp2_hd_deflate_del(def);
    assert_int_equal(px_h2_input(p->o.s, px_buf_ptr(&b), px_buf_size(&b)), 0);
    /* the budget stopped it: streams after the GOAWAY are not taken */
    assert_int_equal(px_h2_stats(p->o.s)->rapid_reset_goaways, 1);
    assert_true(p->o.requests <= 11);
    px_buf_init(&out, 0);
    assert_int_equal(px_h2_output(p->o.s, &out, 0), 0);
    assert_true(nghttp2_session_mem_recv(p->c.ng, (const uint8_t *)px_buf_ptr(&out),
                                         px_buf_size(&out)) >= 0);
    assert_int_equal(p->c.goaway_code, NGHTTP2_ENHANCE_YOUR_CALM);
    assert_true(px_h2_want_close(p->o.s));
    px_buf_free(&out);
    px_buf_free(&b);
}

static void test_ping_flood(void **state)
{
    flood(*state, NGHTTP2_PING);
}

static void test_settings_flood(void **state)
{
    flood(*state, NGHTTP2_SETTINGS);
}

static void test_pings_answered_are_fine(void **state)
{
    pair_t *p = *state;

    p->cfg.max_queued_acks = 5;
    start(p, 65535);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(nghttp2_submit_ping(p->c.ng, 0, NULL), 0);
        assert_int_equal(pump(p), 0);
    }
    assert_int_equal(px_h2_stats(p->o.s)->ack_floods, 0);
    assert_int_equal(p->c.goaway, 0);
}

static void test_zero_window_stall(void **state)
{
    static const char filler[8192];
    pair_t *p = *state;
    const nghttp2_nv nv[] = { BASE };
    px_msg_t r = resp(200, 0);
    int32_t a, b;

    p->cfg.stall_timeout_ms = 5000;
    p->cfg.stream_buffer = 8192;
    p->cfg.connection_buffer = 8192;
    start(p, 0);                          /* the client never opens its stream windows */
    a = request(p, nv, 4, NULL);
    assert_int_equal(pump(p), 0);
    assert_int_equal(px_h2_respond(p->o.s, a, &r), 0);
    assert_int_equal(px_h2_send(p->o.s, a, "0123456789", 10), 10);
    assert_int_equal(pump(p), 0);
    assert_int_equal(p->c.body[a], 0);
    assert_int_equal(px_h2_tick(p->o.s), 0);            /* stall noticed */
    p->o.now += 4999;
    assert_int_equal(px_h2_tick(p->o.s), 0);
    p->o.now += 1;
    assert_int_equal(px_h2_tick(p->o.s), 1);            /* and timed out */
    assert_int_equal(pump(p), 0);
    assert_int_equal(p->c.rst[a], NGHTTP2_CANCEL);
    assert_int_equal(p->o.close_code[a], NGHTTP2_CANCEL);
    assert_int_equal(px_h2_stats(p->o.s)->stalled_resets, 1);
    /* the stalled bytes no longer count against the connection */
    b = request(p, nv, 4, NULL);
    assert_int_equal(pump(p), 0);
    assert_int_equal(px_h2_respond(p->o.s, b, &r), 0);
    assert_int_equal(px_h2_send(p->o.s, b, filler, sizeof filler), 8192);
    /* a stream whose window is open is never a stall */
    p->o.now += 100000;
    assert_int_equal(nghttp2_submit_window_update(p->c.ng, 0, b, 8192), 0);
    assert_int_equal(pump(p), 0);
    assert_int_equal(px_h2_tick(p->o.s), 0);
    p->o.now += 100000;
    assert_int_equal(px_h2_tick(p->o.s), 0);
    assert_int_equal(p->c.body[b], 8192);
    px_msg_free(&r);
}

static void test_concurrent_streams(void **state)
{
    pair_t *p = *state;
    const nghttp2_nv nv[] = { BASE };
    px_buf_t b, out;
    nghttp2_hd_deflater *def;
    uint8_t blk[128];
    ssize_t n;

    p->cfg.max_concurrent_streams = 2;
    /* before the client acknowledged our SETTINGS: REFUSED_STREAM (retry safe) */
    start(p, 65535);
    px_buf_init(&b, 0);
    raw_preface(&b);
    assert_int_equal(nghttp2_hd_deflate_new(&def, 4096), 0);
    for (int32_t id = 1; id <= 5; id += 2) {
        n = nghttp2_hd_deflate_hd(def, blk, sizeof blk, nv, 4);
        frame(&b, (uint32_t)n, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, id);
        assert_int_equal(px_buf_append(&b, blk, (size_t)n), 0);
    }
    nghttp2_hd_deflate_del(def);
    assert_int_equal(px_h2_input(p->o.s, px_buf_ptr(&b), px_buf_size(&b)), 0);
    assert_int_equal(p->o.requests, 2);
    px_buf_init(&out, 0);
    assert_int_equal(px_h2_output(p->o.s, &out, 0), 0);
    assert_int_equal(px_h2_stats(p->o.s)->refused_concurrency, 1);
    assert_int_equal(px_h2_open_streams(p->o.s), 2);
    px_buf_free(&out);
    px_buf_free(&b);
    px_h2_free(p->o.s);
    nghttp2_session_del(p->c.ng);

    /* after the ACK, the client knew the limit: one stream more ends the
     * connection (PROTOCOL_ERROR, nghttp2's choice among RFC 9113 5.1.2's) */
    start(p, 65535);
    px_buf_init(&b, 0);
    raw_preface(&b);
    frame(&b, 0, NGHTTP2_SETTINGS, NGHTTP2_FLAG_ACK, 0);
    assert_int_equal(nghttp2_hd_deflate_new(&def, 4096), 0);
    for (int32_t id = 1; id <= 5; id += 2) {
        n = nghttp2_hd_deflate_hd(def, blk, sizeof blk, nv, 4);
        frame(&b, (uint32_t)n, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, id);
        assert_int_equal(px_buf_append(&b, blk, (size_t)n), 0);
    }
    nghttp2_hd_deflate_del(def);
    assert_int_equal(px_h2_input(p->o.s, px_buf_ptr(&b), px_buf_size(&b)), 0);
    assert_int_equal(p->o.requests, 2);
    px_buf_init(&out, 0);
    assert_int_equal(px_h2_output(p->o.s, &out, 0), 0);
    assert_true(nghttp2_session_mem_recv(p->c.ng, (const uint8_t *)px_buf_ptr(&out),
                                         px_buf_size(&out)) >= 0);
    assert_int_equal(p->c.goaway_code, NGHTTP2_PROTOCOL_ERROR);
    assert_int_equal(px_h2_stats(p->o.s)->connection_errors, 1);
    assert_true(px_h2_want_close(p->o.s));
    px_buf_free(&out);
    px_buf_free(&b);
    px_h2_free(p->o.s);
    nghttp2_session_del(p->c.ng);

    /* a well-behaved client waits */
    start(p, 65535);
    request(p, nv, 4, NULL);
    request(p, nv, 4, NULL);
    assert_int_equal(pump(p), 0);
    assert_int_equal(p->o.requests, 2);
    assert_int_equal(nghttp2_session_get_remote_settings(p->c.ng,
                         NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS), 2);
    /* nghttp2's client queues the third one itself */
    request(p, nv, 4, NULL);
    assert_int_equal(pump(p), 0);
    assert_int_equal(p->o.requests, 2);
    assert_int_equal(p->c.goaway, 0);
}

static void test_graceful_drain(void **state)
{
    pair_t *p = *state;
    const nghttp2_nv nv[] = { BASE };
    px_msg_t r = resp(204, 1);
    int32_t a, b;

    start(p, 65535);
    a = request(p, nv, 4, NULL);
    assert_int_equal(pump(p), 0);
    assert_int_equal(px_h2_drain(p->o.s), 0);
    /* the notice and the PING go out; a request the client sends before
     * reading them is still taken */
    b = request(p, nv, 4, NULL);
    assert_int_equal(send_up(p), 0);
    assert_int_equal(pump(p), 0);
    assert_int_equal(p->o.requests, 2);
    assert_int_equal(p->c.goaway, 2);
    assert_int_equal(p->c.goaway_code, NGHTTP2_NO_ERROR);
    assert_int_equal(p->c.goaway_last, b);
    assert_false(px_h2_want_close(p->o.s));
    /* both finish; then the connection is done */
    assert_int_equal(px_h2_respond(p->o.s, a, &r), 0);
    assert_int_equal(px_h2_respond(p->o.s, b, &r), 0);
    /* a head with end_stream has no body to add to */
    assert_int_equal(px_h2_send(p->o.s, a, "x", 1), PX_EINVAL);
    assert_int_equal(px_h2_end(p->o.s, a, NULL), PX_EINVAL);
    assert_int_equal(pump(p), 0);
    assert_int_equal(p->c.status[a], 204);
    assert_int_equal(p->c.status[b], 204);
    assert_true(px_h2_want_close(p->o.s));
    px_msg_free(&r);
}

static void test_goaway_now(void **state)
{
    pair_t *p = *state;
    const nghttp2_nv nv[] = { BASE };

    start(p, 65535);
    request(p, nv, 4, NULL);
    assert_int_equal(pump(p), 0);
    assert_int_equal(px_h2_goaway(p->o.s, NGHTTP2_INTERNAL_ERROR), 0);
    assert_int_equal(pump(p), 0);
    assert_int_equal(p->c.goaway_code, NGHTTP2_INTERNAL_ERROR);
    assert_true(px_h2_want_close(p->o.s));
}

static void test_not_h2(void **state)
{
    pair_t *p = *state;
    static const char h1[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";

    start(p, 65535);
    assert_int_equal(px_h2_input(p->o.s, h1, sizeof h1 - 1), PX_EPARSE);
    assert_true(px_h2_want_close(p->o.s));
    assert_int_equal(px_h2_input(p->o.s, h1, 1), PX_EPARSE);
}

static void test_output_buffer_too_small_ends_session(void **state)
{
    pair_t *p = *state;
    px_buf_t out;

    start(p, 65535);
    px_buf_init(&out, 8);                 /* not even our SETTINGS fit */
    assert_int_equal(px_h2_output(p->o.s, &out, 0), PX_ETOOBIG);
    assert_true(px_h2_want_close(p->o.s));
    assert_false(px_h2_want_write(p->o.s));
    assert_int_equal(px_h2_input(p->o.s, NGHTTP2_CLIENT_MAGIC, NGHTTP2_CLIENT_MAGIC_LEN),
                     PX_EPARSE);
    px_buf_reset(&out);
    assert_int_equal(px_h2_output(p->o.s, &out, 0), PX_EPARSE);
    assert_int_equal(px_buf_size(&out), 0);
    px_buf_free(&out);
}

static void test_no_reentry_from_callbacks(void **state)
{
    pair_t *p = *state;
    const nghttp2_nv nv[] = { BASE };

    start(p, 65535);
    p->o.reenter = 1;
    request(p, nv, 4, NULL);
    assert_int_equal(pump(p), 0);
    assert_int_equal(p->o.requests, 1);
}

static void test_free_closes_open_streams(void **state)
{
    pair_t *p = *state;
    const nghttp2_nv nv[] = { BASE };
    int32_t a;

    start(p, 65535);
    a = request(p, nv, 4, NULL);
    assert_int_equal(pump(p), 0);
    px_h2_free(p->o.s);
    p->o.s = NULL;
    assert_int_equal(p->o.closed[a], 1);
    assert_int_equal(p->o.close_code[a], NGHTTP2_CANCEL);
}

/* ---- fields out and the message ----------------------------------------------- */

static void test_fields_out(void **state)
{
    px_msg_t m = resp(200, 0);
    nghttp2_nv *nv;
    size_t n;
    px_buf_t scratch;

    px_buf_init(&scratch, 0);

    assert_int_equal(px_msg_add(&m, "X-Up", 4, "1", 1), 0);
    assert_int_equal(px_msg_add(&m, "Transfer-Encoding", 17, "chunked", 7), 0);
    assert_int_equal(px_msg_add(&m, "TE", 2, "trailers", 8), 0);
    assert_int_equal(px_h2_fields_out(&m, 0, &scratch, &nv, &n), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(nv[0].name, ":status", 7);
    assert_memory_equal(nv[0].value, "200", 3);
    assert_int_equal(nv[1].namelen, 4);
    assert_memory_equal(nv[1].name, "x-up", 4);
    assert_int_equal(px_msg_add(&m, "x-bad", 5, "a\r\nb", 4), 0);
    assert_int_equal(px_h2_fields_out(&m, 0, &scratch, &nv, &n), PX_EPARSE);
    px_msg_reset(&m);
    m.status = 200;
    assert_int_equal(px_msg_add(&m, "x y", 3, "1", 1), 0);
    assert_int_equal(px_h2_fields_out(&m, 0, &scratch, &nv, &n), PX_EPARSE);
    px_msg_reset(&m);
    m.status = 1000;
    assert_int_equal(px_h2_fields_out(&m, 0, &scratch, &nv, &n), PX_EPARSE);
    px_msg_free(&m);
    px_buf_free(&scratch);
}

/* px_h2_head_nv: the same vetting straight from a head's fields; every
 * CR, LF and NUL is found wherever it sits in a value (the scan goes eight
 * bytes at a time, then byte by byte). */
static void test_head_nv(void **state)
{
    px_header_t f[4] = { { "Content-Type", 12, "application/json", 16 },
                         { "Connection", 10, "keep-alive", 10 },
                         { "te", 2, "trailers", 8 },
                         { "X-Long-Name", 11, "0123456789abcdef0123", 20 } };
    char v[40];
    nghttp2_nv *nv;
    size_t n;
    px_buf_t scratch;

    (void)state;
    px_buf_init(&scratch, 0);
    assert_int_equal(px_h2_head_nv(204, f, 4, &scratch, &nv, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(nv[0].valuelen, 3);
    assert_memory_equal(nv[0].value, "204", 3);
    assert_int_equal(nv[1].namelen, 12);
    assert_memory_equal(nv[1].name, "content-type", 12);
    assert_ptr_equal(nv[1].value, f[0].value);            /* values are not copied */
    assert_memory_equal(nv[2].name, "x-long-name", 11);
    assert_int_equal(nv[2].valuelen, 20);
    for (size_t len = 1; len <= sizeof v; len++)
        for (size_t at = 0; at < len; at++)
            for (int k = 0; k < 3; k++) {
                memset(v, 'a', sizeof v);
                v[at] = "\r\n"[k];
                f[3].value = v;
                f[3].value_len = len;
                assert_int_equal(px_h2_head_nv(200, f, 4, &scratch, &nv, &n), PX_EPARSE);
            }
    memset(v, 0x8d, sizeof v);                           /* high bytes are no breaks */
    f[3].value_len = sizeof v;
    assert_int_equal(px_h2_head_nv(200, f, 4, &scratch, &nv, &n), 0);
    f[3] = (px_header_t){ "x y", 3, "1", 1 };
    assert_int_equal(px_h2_head_nv(200, f, 4, &scratch, &nv, &n), PX_EPARSE);
    f[3] = (px_header_t){ "", 0, "1", 1 };
    assert_int_equal(px_h2_head_nv(200, f, 4, &scratch, &nv, &n), PX_EPARSE);
    assert_int_equal(px_h2_head_nv(99, f, 1, &scratch, &nv, &n), PX_EPARSE);
    assert_int_equal(px_h2_head_nv(1000, f, 1, &scratch, &nv, &n), PX_EPARSE);
    px_buf_free(&scratch);
}

static void test_msg_bounds(void **state)
{
    px_msg_t m;

    px_msg_init(&m, 64, 3);
    assert_int_equal(px_msg_set(&m, PX_MSG_PATH, "/abc", 4), 0);
    assert_int_equal(px_msg_add(&m, "a", 1, "1", 1), 0);
    assert_int_equal(px_msg_add(&m, "b", 1, "2", 1), 0);
    assert_int_equal(px_msg_add(&m, "c", 1, "3", 1), 0);
    assert_int_equal(px_msg_add(&m, "d", 1, "4", 1), PX_ETOOBIG);       /* fields */
    px_msg_reset(&m);
    assert_int_equal(px_msg_add(&m, "a", 1, "1", 1), 0);
    {
        size_t used = px_msg_size(&m);
        char big[60];
        memset(big, 'v', sizeof big);
        assert_int_equal(px_msg_add(&m, "b", 1, big, sizeof big), PX_ETOOBIG);  /* bytes */
        assert_int_equal(px_msg_size(&m), used);                              /* unchanged */
        assert_int_equal(px_msg_header_count(&m), 1);
    }
    assert_string_equal(px_msg_find(&m, "A").p, "1");
    assert_null(px_msg_find(&m, "b").p);
    assert_string_equal(px_msg_get(&m, PX_MSG_PATH).p, "");
    px_msg_begin_trailers(&m);
    assert_int_equal(px_msg_add(&m, "t", 1, "x", 1), 0);
    assert_int_equal(px_msg_header_count(&m), 1);
    assert_int_equal(px_msg_trailer_count(&m), 1);
    assert_string_equal(px_msg_trailer_name(&m, 0).p, "t");
    px_msg_free(&m);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_get_response_trailers),
        T(test_empty_body_after_head),
        T(test_request_trailers_and_host),
        T(test_window_opens_only_when_consumed),
        T(test_reset_returns_connection_credit),
        T(test_response_backpressure),
        T(test_connection_buffer_bound),
        T(test_vetting),
        T(test_content_length_disagrees),
        T(test_trailer_vetting),
        T(test_header_list_limit),
        T(test_header_list_counts_per_field_overhead),
        T(test_rapid_reset),
        T(test_rapid_reset_across_window_edge),
        T(test_refusals_spend_the_reset_budget),
        T(test_rapid_reset_one_write),
        T(test_continuation_flood),
        T(test_ping_flood),
        T(test_settings_flood),
        T(test_pings_answered_are_fine),
        T(test_zero_window_stall),
        T(test_concurrent_streams),
        T(test_graceful_drain),
        T(test_goaway_now),
        T(test_not_h2),
        T(test_output_buffer_too_small_ends_session),
        T(test_no_reentry_from_callbacks),
        T(test_free_closes_open_streams),
        T(test_fields_out),
        T(test_head_nv),
        T(test_msg_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
