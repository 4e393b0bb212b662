/* The client-facing HTTP/2 session over nghttp2, memory only (h2.h). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nghttp2/nghttp2.h>

#include "http/h2.h"
#include "http/h2_fields.h"
#include "http/h2_mem.h"

/* Fields per head: a bound beside the byte limit (a list of empty fields
 * costs 32 bytes each in the RFC's accounting, little in ours). */
#define MAX_FIELDS 256
/* Finished streams kept for the next ones (their message arenas and body
 * buffer up to SPARE_KEEP bytes each), so that a busy connection does not
 * allocate per stream; an idle one gives them back at its next tick. */
#define SPARES 32
#define SPARE_KEEP 4096

typedef struct stream {
    struct stream *prev, *next;           /* the session's open streams */
    int32_t id;
    void *sd;                             /* the owner's pointer */
    px_msg_t head;                        /* request head, then its trailers */
    px_h2_fields_t fields;
    uint32_t refused;                     /* error code once refused: ignore the rest */
    int announced;                        /* on_request was called */
    size_t unconsumed;                    /* request bytes given to the owner, not consumed */
    px_buf_t out;                         /* queued response body */
    size_t drained;                       /* pulled since the last on_drained */
    int responded, deferred, eof, blocked;
    px_msg_t trailers;                    /* response trailers (px_h2_end) */
    uint64_t stall_since;                 /* 0: not stalled */
} stream_t;

struct px_h2 {
    nghttp2_session *ng;
    px_http2_config_t cfg;
    px_h2_callbacks_t cb;
    void *ud;
    px_h2_clock_t clock;
    stream_t *streams;
    int nstreams;
    stream_t *spares;                     /* finished streams for reuse (->next), at most SPARES */
    int nspares;
    px_buf_t nvbuf;                       /* px_h2_fields_out's arrays, before nghttp2 copies them */
    size_t queued;                        /* response bytes queued over all streams */
    int in_call;                          /* inside mem_recv/mem_send: no re-entry */
    int stop_in;                          /* a flood: no more input, the GOAWAY may go out */
    int dead;                             /* a fatal error: nothing more in or out */
    int draining;                         /* shutdown notice sent, PING pending */
    uint64_t reset_tat;                   /* count_reset's theoretical arrival time */
    int reset_over;
    px_h2_stats_t stats;
};

static uint64_t now_ms(px_h2_t *s)
{
    struct timespec ts;

    if (s->clock)
        return s->clock(s->ud);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static stream_t *find(const px_h2_t *s, int32_t id)
{
    return s->ng ? nghttp2_session_get_stream_user_data(s->ng, id) : NULL;
}

/* Keeps st as a spare (its allocations up to SPARE_KEEP) or frees it. */
static void stream_release(px_h2_t *s, stream_t *st)
{
    if (s->nspares < SPARES) {
        px_buf_t out = st->out;
        px_msg_t head = st->head, trailers = st->trailers;
        px_buf_recycle(&out, SPARE_KEEP);
        px_msg_recycle(&head, SPARE_KEEP);
        px_msg_recycle(&trailers, SPARE_KEEP);
        memset(st, 0, sizeof *st);
        st->out = out;
        st->head = head;
        st->trailers = trailers;
        st->next = s->spares;
        s->spares = st;
        s->nspares++;
        return;
    }
    px_buf_free(&st->out);
    px_msg_free(&st->head);
    px_msg_free(&st->trailers);
    free(st);
}

static void stream_free(px_h2_t *s, stream_t *st)
{
    if (st->prev)
        st->prev->next = st->next;
    else
        s->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    s->nstreams--;
    s->queued -= px_buf_size(&st->out);
    stream_release(s, st);
}

static void spares_free(px_h2_t *s)
{
    while (s->spares) {
        stream_t *st = s->spares;
        s->spares = st->next;
        px_buf_free(&st->out);
        px_msg_free(&st->head);
        px_msg_free(&st->trailers);
        free(st);
    }
    s->nspares = 0;
    px_buf_free(&s->nvbuf);
}

/* A spare stream, or a new one. */
static stream_t *stream_new(px_h2_t *s)
{
    stream_t *st = s->spares;

    if (st) {
        s->spares = st->next;
        s->nspares--;
        st->next = NULL;
        return st;
    }
    if (!(st = calloc(1, sizeof *st)))
        return NULL;
    px_msg_init(&st->head, s->cfg.max_header_list_size, MAX_FIELDS);
    px_msg_init(&st->trailers, s->cfg.max_header_list_size, MAX_FIELDS);
    px_buf_init(&st->out, 0);
    return st;
}

/* Every reset the client sent or caused spends the budget: reset_budget
 * at once, refilled at reset_budget per reset_window_ms (a virtual
 * scheduling clock, GCRA, in units of 1/reset_budget ms so it is exact);
 * spent: the client is resetting on purpose (CVE-2023-44487). */
static void count_reset(px_h2_t *s)
{
    uint64_t now = now_ms(s) * s->cfg.reset_budget;
    uint64_t burst = (uint64_t)s->cfg.reset_window_ms * s->cfg.reset_budget;

    if (s->reset_tat < now)
        s->reset_tat = now;
    s->reset_tat += s->cfg.reset_window_ms;
    if (s->reset_tat - now > burst && !s->reset_over) {
        s->reset_over = 1;
        s->stats.rapid_reset_goaways++;
        nghttp2_session_terminate_session(s->ng, NGHTTP2_ENHANCE_YOUR_CALM);
    }
}

static void refuse(px_h2_t *s, stream_t *st, uint32_t code)
{
    if (st->refused)
        return;
    st->refused = code;
    nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, st->id, code);
}

/* ---- nghttp2 callbacks ----------------------------------------------------- */

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *fr, void *ud)
{
    px_h2_t *s = ud;
    stream_t *st;

    if (fr->hd.type != NGHTTP2_HEADERS || fr->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    if (!(st = stream_new(s)))
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    st->id = fr->hd.stream_id;
    st->fields = (px_h2_fields_t){ &st->head, 0, s->cfg.max_header_list_size, 0 };
    if (nghttp2_session_set_stream_user_data(ng, st->id, st) != 0) {
        stream_release(s, st);
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    st->next = s->streams;
    if (st->next)
        st->next->prev = st;
    s->streams = st;
    s->nstreams++;
    return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *fr, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    px_h2_t *s = ud;
    stream_t *st = nghttp2_session_get_stream_user_data(ng, fr->hd.stream_id);
    uint32_t code;

    if (!st || st->refused || fr->hd.type != NGHTTP2_HEADERS)
        return 0;
    if (fr->headers.cat == NGHTTP2_HCAT_HEADERS && !st->fields.trailers) {
        st->fields.trailers = 1;
        st->fields.list_size = 0;
        px_msg_begin_trailers(&st->head);
    }
    if ((code = px_h2_field_in(&st->fields, name, nlen, value, vlen)) != 0)
        refuse(s, st, code);
    return 0;
}

static void announce(px_h2_t *s, stream_t *st, int end_stream)
{
    st->announced = 1;
    st->head.end_stream = end_stream;
    s->stats.streams++;
    if (s->cb.on_request)
        s->cb.on_request(s->ud, st->id, &st->head);
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *fr, void *ud)
{
    px_h2_t *s = ud;
    stream_t *st = fr->hd.stream_id ? nghttp2_session_get_stream_user_data(ng, fr->hd.stream_id)
                                    : NULL;
    int end = (fr->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;

    switch (fr->hd.type) {
    case NGHTTP2_HEADERS:
        if (!st || st->refused)
            break;
        if (!st->announced)
            announce(s, st, end);
        if (end && s->cb.on_end)
            s->cb.on_end(s->ud, st->id, st->sd, &st->head);
        break;
    case NGHTTP2_DATA:
        if (st && !st->refused && st->announced && end && s->cb.on_end)
            s->cb.on_end(s->ud, st->id, st->sd, &st->head);
        break;
    case NGHTTP2_RST_STREAM:
        s->stats.resets_received++;
        count_reset(s);
        break;
    case NGHTTP2_PING:
        /* the round trip after the shutdown notice: every stream the
         * client opened before it saw the notice has arrived */
        if ((fr->hd.flags & NGHTTP2_FLAG_ACK) && s->draining) {
            s->draining = 0;
            nghttp2_submit_goaway(ng, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(ng),
                                  NGHTTP2_NO_ERROR, NULL, 0);
        }
        break;
    default:
        break;
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *p, size_t n,
                         void *ud)
{
    px_h2_t *s = ud;
    stream_t *st = nghttp2_session_get_stream_user_data(ng, id);

    if (!st || st->refused || !st->announced || !s->cb.on_data) {
        /* nobody takes these bytes: give their credit back at once */
        nghttp2_session_consume(ng, id, n);
        return 0;
    }
    st->unconsumed += n;
    s->cb.on_data(s->ud, id, st->sd, p, n);
    return 0;
}

static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *fr, void *ud)
{
    px_h2_t *s = ud;

    /* A complete response while the request is still coming (an early
     * answer: 413, 408, an error; or an upstream that answered before the
     * body's end): RST_STREAM NO_ERROR asks the client to stop sending it
     * (RFC 9113 8.1). Only now, after the END_STREAM frame: queued
     * earlier, the reset would overtake the response's DATA. */
    if ((fr->hd.type == NGHTTP2_DATA || fr->hd.type == NGHTTP2_HEADERS) &&
        (fr->hd.flags & NGHTTP2_FLAG_END_STREAM) && nghttp2_session_get_stream_user_data(ng, fr->hd.stream_id) &&
        !nghttp2_session_get_stream_remote_close(ng, fr->hd.stream_id))
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, fr->hd.stream_id, NGHTTP2_NO_ERROR);
    if (fr->hd.type == NGHTTP2_RST_STREAM) {
        uint32_t e = fr->rst_stream.error_code;
        /* nghttp2's own refusals and ours alike are counted here */
        if (e == NGHTTP2_REFUSED_STREAM)
            s->stats.refused_concurrency++;
        else if (e == NGHTTP2_PROTOCOL_ERROR)
            s->stats.refused_vetting++;
        else if (e == NGHTTP2_ENHANCE_YOUR_CALM)
            s->stats.refused_header_size++;
        /* resets the client provoked spend its budget too */
        if (e == NGHTTP2_REFUSED_STREAM || e == NGHTTP2_PROTOCOL_ERROR ||
            e == NGHTTP2_ENHANCE_YOUR_CALM || e == NGHTTP2_FLOW_CONTROL_ERROR)
            count_reset(s);
    } else if (fr->hd.type == NGHTTP2_GOAWAY && fr->goaway.error_code != NGHTTP2_NO_ERROR &&
               fr->goaway.error_code != NGHTTP2_ENHANCE_YOUR_CALM) {
        s->stats.connection_errors++;
    }
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t code, void *ud)
{
    px_h2_t *s = ud;
    stream_t *st = nghttp2_session_get_stream_user_data(ng, id);

    if (!st)
        return 0;
    if (st->drained && s->cb.on_drained)
        s->cb.on_drained(s->ud, id, st->sd, st->drained);
    /* unknown from here on: calls from on_close get PX_ENOTFOUND, so a
     * late px_h2_consumed cannot return credit twice */
    nghttp2_session_set_stream_user_data(ng, id, NULL);
    /* bytes the owner never reported: the connection window gets them back */
    if (st->unconsumed)
        nghttp2_session_consume_connection(ng, st->unconsumed);
    if (st->announced && s->cb.on_close)
        s->cb.on_close(s->ud, id, st->sd, code);
    stream_free(s, st);
    return 0;
}

static ssize_t read_body(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *ud)
{
    px_h2_t *s = ud;
    stream_t *st = src->ptr;
    size_t n = px_buf_size(&st->out);

    if (n > len)
        n = len;
    if (n)                      /* an empty body: out may have no memory */
        memcpy(buf, px_buf_ptr(&st->out), n);
    px_buf_consume(&st->out, n);
    s->queued -= n;
    st->drained += n;
    st->stall_since = 0;
    if (px_buf_size(&st->out) == 0 && st->eof) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (px_msg_trailer_count(&st->trailers) > 0) {
            nghttp2_nv *nv;
            size_t k;
            /* checked in px_h2_end: only memory can fail here */
            if (px_h2_fields_out(&st->trailers, 1, &s->nvbuf, &nv, &k) != 0)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
            if (nghttp2_submit_trailer(ng, id, nv, k) == 0)     /* copies them */
                *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        }
        return (ssize_t)n;
    }
    if (n == 0) {
        st->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t)n;
}

static int on_error(nghttp2_session *ng, int code, const char *msg, size_t len, void *ud)
{
    return 0;
}

/* ---- the session ------------------------------------------------------------ */

int px_h2_new(const px_http2_config_t *cfg, const px_h2_callbacks_t *cb, void *ud,
              px_h2_clock_t clock, px_h2_t **out)
{
    nghttp2_session_callbacks *cbs = NULL;
    nghttp2_option *opt = NULL;
    px_h2_t *s;
    int rc = PX_ENOMEM;

    *out = NULL;
    if (!(s = calloc(1, sizeof *s)))
        return PX_ENOMEM;
    s->cfg = *cfg;
    s->cb = *cb;
    s->ud = ud;
    s->clock = clock;
    if (nghttp2_session_callbacks_new(&cbs) != 0 || nghttp2_option_new(&opt) != 0)
        goto out;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    /* no on_invalid_header callback: without one nghttp2 refuses a stream
     * with a bad field name or value (with one returning 0 it would drop
     * the field and pass the rest of the request on) */
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_error_callback2(cbs, on_error);
    /* Debian 12's libnghttp2 (1.52.0-1+deb12u2) has these limits: queued
     * ACKs (max_outbound_ack, default 1000), the reset token bucket
     * (stream_reset_rate_limit, backported for CVE-2023-44487: GOAWAY
     * INTERNAL_ERROR) and the CONTINUATION count (max_continuations,
     * backported for CVE-2024-27316, default 8); one field is capped at
     * 64 KiB. It has no bound on a whole decoded header list, on output
     * queued for a shut window, nor counts resets it sends itself: those
     * are ours (h2_fields.c, px_h2_send, px_h2_tick, count_reset). */
    /* windows reopen only by px_h2_consumed */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_no_closed_streams(opt, 1);
    nghttp2_option_set_max_outbound_ack(opt, cfg->max_queued_acks);
    nghttp2_option_set_max_continuations(opt, cfg->max_continuations);
    /* nghttp2's own token bucket (GOAWAY INTERNAL_ERROR) stays behind ours */
    nghttp2_option_set_stream_reset_rate_limit(opt, (uint64_t)cfg->reset_budget * 2 + 1000,
                                               (uint64_t)cfg->reset_budget * 2000 /
                                               cfg->reset_window_ms + 33);
    if (nghttp2_session_server_new3(&s->ng, cbs, s, opt, px_h2_mem()) != 0)
        goto out;
    nghttp2_settings_entry iv[] = {
        { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, cfg->max_concurrent_streams },
        { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, cfg->initial_window_size },
        { NGHTTP2_SETTINGS_MAX_FRAME_SIZE, cfg->max_frame_size },
        { NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, cfg->max_header_list_size },
        { NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, cfg->header_table_size },
        { NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
        { NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1 },
    };
    if (nghttp2_submit_settings(s->ng, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof *iv) != 0)
        goto out;
    /* the connection window is not a setting: widen it with a WINDOW_UPDATE */
    if (cfg->connection_window_size > NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE &&
        nghttp2_session_set_local_window_size(s->ng, NGHTTP2_FLAG_NONE, 0,
                                              (int32_t)cfg->connection_window_size) != 0)
        goto out;
    rc = 0;
out:
    nghttp2_session_callbacks_del(cbs);
    nghttp2_option_del(opt);
    if (rc) {
        nghttp2_session_del(s->ng);
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void px_h2_free(px_h2_t *s)
{
    if (!s || s->in_call)
        return;
    s->in_call = 1;
    while (s->streams) {
        stream_t *st = s->streams;
        nghttp2_session_set_stream_user_data(s->ng, st->id, NULL);
        if (st->announced && s->cb.on_close)
            s->cb.on_close(s->ud, st->id, st->sd, NGHTTP2_CANCEL);
        stream_free(s, st);
    }
    spares_free(s);
    nghttp2_session_del(s->ng);
    free(s);
}

/* A fatal return of mem_recv/mem_send: counted, then a last GOAWAY if the
 * session can still say it. */
static int fatal(px_h2_t *s, ssize_t rv)
{
    uint32_t code = NGHTTP2_INTERNAL_ERROR;

    if (rv == NGHTTP2_ERR_NOMEM)
        return PX_ENOMEM;
    if (rv == NGHTTP2_ERR_FLOODED) {
        s->stats.ack_floods++;
        code = NGHTTP2_ENHANCE_YOUR_CALM;
    } else if (rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS) {
        s->stats.continuation_floods++;
        code = NGHTTP2_ENHANCE_YOUR_CALM;
    }
    if (!s->dead && code == NGHTTP2_ENHANCE_YOUR_CALM) {
        /* nghttp2 stopped reading; its state is sound enough to say why */
        nghttp2_session_terminate_session(s->ng, code);
        s->stop_in = 1;
    } else {
        s->dead = 1;                      /* a client that does not speak h2 */
    }
    return PX_EPARSE;
}

int px_h2_input(px_h2_t *s, const void *p, size_t n)
{
    ssize_t rv;

    if (s->in_call)
        return PX_EINVAL;
    if (s->dead || s->stop_in)
        return PX_EPARSE;
    s->in_call = 1;
    rv = nghttp2_session_mem_recv(s->ng, p, n);
    s->in_call = 0;
    if (rv < 0)
        return fatal(s, rv);
    return nghttp2_session_want_read(s->ng) || nghttp2_session_want_write(s->ng) ? 0 : PX_EPARSE;
}

/* Tells the owner what left each stream's queue since the last call (and
 * wakes streams px_h2_send turned away for lack of connection room). */
static void report_drained(px_h2_t *s)
{
    int room = s->queued < s->cfg.connection_buffer;

    for (stream_t *st = s->streams, *next; st; st = next) {
        size_t n = st->drained;
        next = st->next;
        if (!n && !(st->blocked && room))
            continue;
        st->drained = 0;
        st->blocked = 0;
        if (s->cb.on_drained)
            s->cb.on_drained(s->ud, st->id, st->sd, n);
    }
}

int px_h2_output(px_h2_t *s, px_buf_t *out, size_t want)
{
    size_t added = 0;
    int rc = 0;

    if (s->in_call)
        return PX_EINVAL;
    if (s->dead)
        return PX_EPARSE;
    s->in_call = 1;
    while (added < want || !want) {
        const uint8_t *p;
        ssize_t n = nghttp2_session_mem_send(s->ng, &p);
        if (n < 0) {
            s->in_call = 0;
            return fatal(s, n);
        }
        if (n == 0)
            break;
        if ((rc = px_buf_append(out, p, (size_t)n)) != 0) {
            /* nghttp2 has let go of these bytes: the stream is broken */
            s->dead = 1;
            break;
        }
        added += (size_t)n;
    }
    report_drained(s);
    s->in_call = 0;
    return rc;
}

int px_h2_want_write(const px_h2_t *s)
{
    return !s->dead && nghttp2_session_want_write(s->ng);
}

int px_h2_want_close(const px_h2_t *s)
{
    int w = nghttp2_session_want_write(s->ng);

    return s->dead || (s->stop_in && !w) || (!nghttp2_session_want_read(s->ng) && !w);
}

int px_h2_set_stream_data(px_h2_t *s, int32_t id, void *sd)
{
    stream_t *st = find(s, id);

    if (!st)
        return PX_ENOTFOUND;
    st->sd = sd;
    return 0;
}

int px_h2_respond_nv(px_h2_t *s, int32_t id, const nghttp2_nv *nv, size_t n, int end_stream)
{
    stream_t *st = find(s, id);
    nghttp2_data_provider prd = { .source.ptr = st, .read_callback = read_body };
    int rc;

    if (!st)
        return PX_ENOTFOUND;
    if (st->responded)
        return PX_EINVAL;
    rc = nghttp2_submit_response(s->ng, id, nv, n, end_stream ? NULL : &prd);   /* copies them */
    if (rc != 0)
        return rc == NGHTTP2_ERR_NOMEM ? PX_ENOMEM : PX_EINVAL;
    st->responded = 1;
    st->eof = end_stream;               /* no body: px_h2_send/px_h2_end refuse */
    return 0;
}

int px_h2_respond(px_h2_t *s, int32_t id, const px_msg_t *head)
{
    nghttp2_nv *nv;
    size_t n;
    int rc;

    if (!find(s, id))
        return PX_ENOTFOUND;
    if ((rc = px_h2_fields_out(head, 0, &s->nvbuf, &nv, &n)) != 0)
        return rc;
    return px_h2_respond_nv(s, id, nv, n, head->end_stream);
}

static void resume(px_h2_t *s, stream_t *st)
{
    if (st->deferred) {
        st->deferred = 0;
        nghttp2_session_resume_data(s->ng, st->id);
    }
}

int64_t px_h2_send(px_h2_t *s, int32_t id, const void *p, size_t n)
{
    stream_t *st = find(s, id);
    size_t room, in;
    int rc;

    if (!st)
        return PX_ENOTFOUND;
    if (!st->responded || st->eof)
        return PX_EINVAL;
    in = px_buf_size(&st->out);
    room = in < s->cfg.stream_buffer ? s->cfg.stream_buffer - in : 0;
    if (s->queued >= s->cfg.connection_buffer)
        room = 0;
    else if (room > s->cfg.connection_buffer - s->queued)
        room = s->cfg.connection_buffer - s->queued;
    if (n > room) {
        n = room;
        st->blocked = 1;
    }
    if (n && (rc = px_buf_append(&st->out, p, n)) != 0)
        return rc;
    s->queued += n;
    if (n)
        resume(s, st);
    return (int64_t)n;
}

int px_h2_end(px_h2_t *s, int32_t id, const px_msg_t *trailers)
{
    stream_t *st = find(s, id);

    if (!st)
        return PX_ENOTFOUND;
    if (!st->responded || st->eof)
        return PX_EINVAL;
    if (trailers && px_msg_trailer_count(trailers) > 0) {
        nghttp2_nv *nv;
        size_t k;
        int rc = px_h2_fields_out(trailers, 1, &s->nvbuf, &nv, &k);   /* only checked here */
        if (rc)
            return rc;
        px_msg_begin_trailers(&st->trailers);
        for (int i = 0; i < px_msg_trailer_count(trailers); i++) {
            px_str_t a = px_msg_trailer_name(trailers, i), b = px_msg_trailer_value(trailers, i);
            if ((rc = px_msg_add(&st->trailers, a.p, a.n, b.p, b.n)) != 0)
                return rc;
        }
    }
    st->eof = 1;
    resume(s, st);
    return 0;
}

size_t px_h2_queued(const px_h2_t *s, int32_t id)
{
    stream_t *st = find(s, id);
    return st ? px_buf_size(&st->out) : 0;
}

int px_h2_reset(px_h2_t *s, int32_t id, uint32_t code)
{
    if (!find(s, id))
        return PX_ENOTFOUND;
    return nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, id, code) ? PX_ENOMEM : 0;
}

int px_h2_consumed(px_h2_t *s, int32_t id, size_t n)
{
    stream_t *st = find(s, id);

    if (!st)
        return PX_ENOTFOUND;
    if (n > st->unconsumed)
        return PX_EINVAL;
    st->unconsumed -= n;
    return nghttp2_session_consume(s->ng, id, n) ? PX_ENOMEM : 0;
}

int px_h2_drain(px_h2_t *s)
{
    if (s->draining || s->dead)
        return 0;
    if (nghttp2_submit_shutdown_notice(s->ng) != 0 ||
        nghttp2_submit_ping(s->ng, NGHTTP2_FLAG_NONE, NULL) != 0)
        return PX_ENOMEM;
    s->draining = 1;
    return 0;
}

int px_h2_goaway(px_h2_t *s, uint32_t code)
{
    if (s->dead)
        return 0;
    return nghttp2_session_terminate_session(s->ng, code) ? PX_ENOMEM : 0;
}

int px_h2_tick(px_h2_t *s)
{
    uint64_t now;
    int32_t conn;
    int n = 0;

    if (s->in_call)
        return PX_EINVAL;
    if (!s->streams)
        spares_free(s);             /* idle: what busy times kept goes back */
    if (s->dead)
        return 0;
    now = now_ms(s);
    conn = nghttp2_session_get_remote_window_size(s->ng);
    for (stream_t *st = s->streams; st; st = st->next) {
        int32_t w = nghttp2_session_get_stream_remote_window_size(s->ng, st->id);
        if (!px_buf_size(&st->out) || (w > 0 && conn > 0)) {
            st->stall_since = 0;
            continue;
        }
        if (!st->stall_since) {
            st->stall_since = now ? now : 1;
            continue;
        }
        if (now - st->stall_since < s->cfg.stall_timeout_ms)
            continue;
        /* the client keeps the window shut: its queue is released when
         * the stream closes (after the RST_STREAM is sent) */
        st->stall_since = 0;
        if (nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL) == 0) {
            s->stats.stalled_resets++;
            n++;
        }
    }
    return n;
}

const px_h2_stats_t *px_h2_stats(const px_h2_t *s)
{
    return &s->stats;
}

int px_h2_open_streams(const px_h2_t *s)
{
    return s->nstreams;
}
