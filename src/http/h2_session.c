/* The HTTP/2 session on a client connection (session.h): the connection
 * glue around http/h2.c (bytes in from the transport's plaintext, frames
 * out to it) and one exchange per request stream (proxy/exchange.h),
 * answering through px_sess_ops_t per stream.
 *
 * The upstream speaks HTTP/1.1: a stream's head becomes a px_http_head_t
 * by px_h2_translate (h2_translate.h: Host from :authority, cookie fields
 * joined with "; ", framing from content-length or chunked when unknown,
 * and its own vetting against h2-to-h1 smuggling).
 *
 * Flow control is backpressure: a request stream's bytes wait in st->in
 * (bounded by its window) until the exchange takes them, and only then
 * reopen the window (px_h2_consumed); response bytes wait in st->out
 * (bounded by PX_HIGH_WATER through the exchange's pending()) until h2.c
 * takes them, and frames are pulled into the transport only below
 * PX_HIGH_WATER of unsent output.
 *
 * The close rule (conn.h, h2.h): nothing is freed inside an nghttp2
 * callback or in the middle of an exchange's call chain. A stream is freed
 * by reap() from the loop, once nghttp2 has closed it, its exchange is over
 * and no thread-pool job points at it; the whole session by px_h2s_free
 * from conn_free. */
#include "http/session.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "core/errors.h"
#include "core/fmt.h"
#include "core/log.h"
#include "http/h2.h"
#include "http/h2_fields.h"
#include "http/h2_translate.h"
#include "proxy/grpc.h"
#include "sig/sigflow.h"

#define OUT_PULL 16384                /* frame bytes pulled from h2.c at a time */
/* a response's trailer section towards the client, which the upstream's
 * parser (HTTP/1.1) or pool (h2c) bounded by http.max_header_bytes */
#define RESP_MSG_BYTES PX_MAX_HEADER_BYTES
#define RESP_MSG_FIELDS 1024
/* Finished streams kept for the next ones (exchange, parser, buffers up
 * to SPARE_KEEP bytes each), so that a busy connection does not allocate
 * per stream; an idle one gives them back at its next tick. */
#define SPARES 32
#define SPARE_KEEP 4096

typedef struct h2stream {
    /* kept by a spare (stream_free, stream_new) */
    px_exch_t x;
    px_buf_t in;                  /* request body bytes the exchange has not taken yet */
    px_buf_t out;                 /* response body bytes h2.c has not taken yet */
    px_msg_t trailers;            /* the response's trailers, while out drains */
    px_h2_req_t req;              /* the request, translated for the HTTP/1.1 upstream */
    /* zeroed for each stream: from hc on */
    struct px_h2conn *hc;
    int32_t id;
    int in_end, req_end_given;
    px_header_t *req_trailers;    /* the request's trailers (one allocation), for px_exch_req_end */
    int req_ntrailers;
    int responded, resp_ended, end_pending;
    int xdone;                    /* the exchange is over (logged) */
    int grpc;                     /* gRPC-shaped: proxy errors as gRPC statuses (proxy/grpc.h) */
    uint64_t t_open, last_in;     /* loop ms: the head came, request body bytes last came */
    uint64_t grpc_deadline;       /* loop ms the client's grpc-timeout ends, 0: none */
    int closed;                   /* nghttp2 closed the stream */
    uint32_t close_code;
    struct h2stream *next, *prev;
    struct h2stream *closed_next; /* on the connection's list of closed streams */
} h2stream_t;

struct px_h2conn {
    px_conn_t *c;
    px_h2_t *h2;
    px_buf_t out;                 /* frames pulled from h2.c, on their way to the transport */
    int in_h2;                    /* inside px_h2_input/px_h2_output: no pulling */
    int reaping;                  /* inside the reaper's pump: it frees what closes there */
    int draining;
    uint32_t idle_ms;             /* without a stream, counted by the tick */
    uint64_t next_tick;           /* loop ms of the next 1 s tick (stream deadlines come between) */
    uint64_t armed_at;            /* loop ms the timer was last set to fire (arm_deadlines) */
    px_h2_stats_t reported;       /* what the metrics have of px_h2_stats so far */
    h2stream_t *streams;
    /* Closed, not yet freed, in the order they closed: the reaper walks
     * these, not every stream (each a cache miss of its own). */
    h2stream_t *closed_head, *closed_tail;
    h2stream_t *spares;           /* finished streams for reuse (->next), at most SPARES */
    px_buf_t sel, nv;             /* a response head on its way into h2.c (h2_send_head) */
    int nspares;
    px_defer_item_t reap;
};

static PX_MUST_CHECK int pump(px_conn_t *c);
static void reap_later(struct px_h2conn *hc);

/* The end of a loop callback (see conn.c), and of h2.c's callbacks: a
 * stream's status changes nothing there, as nothing is freed before the
 * reaper runs from the loop. */
static void settle(int status)
{
    (void)status;
}

static const px_config_t *cfg_of(const px_conn_t *c)
{
    return c->env->cfg;
}

/* --- the stream's ops (px_sess_ops_t, exchange.h) ---------------------------------- */

/* Output may leave: from the loop's next turn (the reaper's pump), so that
 * the responses of every stream that progressed in this turn share TLS
 * records and one write instead of one each; inside h2.c's calls the pump
 * after them does it. */
static PX_MUST_CHECK int kick(h2stream_t *st)
{
    if (!st->hc->in_h2)
        reap_later(st->hc);
    return 0;
}

/* The exchange is over: the stream is freed from the loop once closed. */
static void exch_over(h2stream_t *st)
{
    st->xdone = 1;
    px_exch_release_upstream(&st->x, 0);
    reap_later(st->hc);
}

/* Ends the exchange at once: logged with why, RST_STREAM with code.
 * Always -1. */
static int reset_exch(h2stream_t *st, px_end_reason_t why, uint32_t code)
{
    if (st->xdone)
        return -1;
    px_exch_log_unfinished(&st->x, &st->x.ci, why);
    exch_over(st);
    if (!st->closed)
        settle(px_h2_reset(st->hc->h2, st->id, code));
    settle(kick(st));
    return -1;
}

static int h2_abort(void *s, px_end_reason_t why)
{
    return reset_exch(s, why, NGHTTP2_INTERNAL_ERROR);
}

/* The grpc-status of a gRPC response for the access log: in its trailers,
 * or in its head when trailers-only. */
static void note_grpc_status(h2stream_t *st, const px_header_t *f, int n)
{
    for (int i = 0; i < n; i++)
        if (f[i].name_len == 11 && !strncasecmp(f[i].name, "grpc-status", 11) && f[i].value_len &&
            f[i].value_len < 4 && strspn(f[i].value, "0123456789") >= f[i].value_len)
            st->x.grpc_status = 1 + atoi(f[i].value);
}

static int lower_add(px_msg_t *m, const char *name, size_t nlen, const char *value, size_t vlen)
{
    char low[256];
    if (nlen >= sizeof low)
        return PX_ETOOBIG;
    for (size_t i = 0; i < nlen; i++)
        low[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
    return px_msg_add(m, low, nlen, value, vlen);
}

/* h is named the string literal lit (any case) */
#define named(h, lit) ((h)->name_len == sizeof(lit) - 1 && !strncasecmp((h)->name, (lit), sizeof(lit) - 1))

/* Moves what waits in st->out into h2.c, and the end after it. */
static PX_MUST_CHECK int push_out(h2stream_t *st)
{
    int64_t took;
    if (px_buf_size(&st->out)) {
        took = px_h2_send(st->hc->h2, st->id, px_buf_ptr(&st->out), px_buf_size(&st->out));
        if (took < 0)
            return (int)took;
        px_buf_consume(&st->out, (size_t)took);
    }
    if (st->end_pending && !px_buf_size(&st->out)) {
        st->end_pending = 0;
        return px_h2_end(st->hc->h2, st->id, px_msg_trailer_count(&st->trailers) ? &st->trailers : NULL);
    }
    return 0;
}

/* The upstream's head goes to nghttp2 as it is, without a copy in
 * between: the fields to send are picked (framing from h->body, the
 * extras replacing fields of the same name), then px_h2_head_nv vets and
 * lowers them, and nghttp2 copies them in px_h2_respond_nv. */
static PX_MUST_CHECK int h2_send_head(void *s, const px_http_head_t *h, const px_header_t *extra,
                                      int nextra)
{
    h2stream_t *st = s;
    struct px_h2conn *hc = st->hc;
    px_header_t *f;
    nghttp2_nv *nv;
    size_t nnv;
    char cl[20], *d;
    int n = 0, end = st->x.is_head || h->body == PX_BODY_NONE, rc = 0;

    if (h->status < 200)
        return 0;               /* interim heads are not forwarded over HTTP/2 */
    px_buf_reset(&hc->sel);
    if (!(f = (px_header_t *)px_buf_reserve(&hc->sel, ((size_t)h->header_count + (size_t)nextra + 1) * sizeof *f)))
        rc = PX_ENOMEM;
    for (int i = 0; i < h->header_count && rc == 0; i++) {
        const px_header_t *g = &h->headers[i];
        int skip = named(g, "content-length") || named(g, "transfer-encoding");
        for (int j = 0; j < nextra && !skip; j++)
            skip = g->name_len == extra[j].name_len && !strncasecmp(g->name, extra[j].name, g->name_len);
        if (!skip)
            f[n++] = *g;
    }
    for (int j = 0; j < nextra && rc == 0; j++)
        if (!named(&extra[j], "trailer"))       /* HTTP/2 needs no announcement */
            f[n++] = extra[j];
    if (rc == 0 && h->body == PX_BODY_LENGTH) {
        d = px_u64_dec(cl + sizeof cl, h->content_length);
        f[n++] = (px_header_t){ "content-length", 14, d, (size_t)(cl + sizeof cl - d) };
    }
    if (st->grpc)               /* trailers-only (in the head), else its trailers say it */
        note_grpc_status(st, h->headers, h->header_count);
    if (rc == 0 && (rc = px_h2_head_nv(h->status, f, n, &hc->nv, &nv, &nnv)) == 0)
        rc = px_h2_respond_nv(hc->h2, st->id, nv, nnv, end);
    px_buf_recycle(&hc->sel, SPARE_KEEP);
    px_buf_recycle(&hc->nv, SPARE_KEEP);
    if (rc != 0)
        return st->x.ops->reply_error(st, PX_HERR_UPSTREAM_BAD, "the response head cannot be forwarded");
    st->responded = 1;
    st->resp_ended = end;
    return 0;
}

static PX_MUST_CHECK int h2_send_data(void *s, const char *p, size_t n)
{
    h2stream_t *st = s;
    if (st->resp_ended || !n)
        return 0;
    if (px_buf_append(&st->out, p, n) < 0 || push_out(st) < 0)
        return h2_abort(st, st->closed ? PX_END_CLIENT_CLOSED : PX_END_INTERNAL);
    return 0;
}

static PX_MUST_CHECK int h2_send_end(void *s, const px_header_t *trailers, int n)
{
    h2stream_t *st = s;
    if (st->resp_ended)
        return 0;
    st->resp_ended = 1;
    if (st->grpc)
        note_grpc_status(st, trailers, n);
    px_msg_begin_trailers(&st->trailers);
    for (int i = 0; i < n; i++)
        if (lower_add(&st->trailers, trailers[i].name, trailers[i].name_len, trailers[i].value,
                      trailers[i].value_len) < 0)
            return h2_abort(st, PX_END_INTERNAL);
    st->end_pending = 1;
    if (push_out(st) < 0)
        return h2_abort(st, st->closed ? PX_END_CLIENT_CLOSED : PX_END_INTERNAL);
    return 0;
}

/* The whole response has left and nghttp2 closed the stream cleanly. */
static int delivered(const h2stream_t *st)
{
    return st->resp_ended && st->closed && !st->close_code && !st->end_pending &&
           !px_buf_size(&st->out);
}

/* A connection that closes once this response has left (drain, h2.c
 * done) does not undo it: the exchange goes on to log it and end. */
static PX_MUST_CHECK int h2_flush(void *s, int all)
{
    int rc = kick(s);
    (void)all;
    return rc < 0 && delivered(s) ? 0 : rc;
}

static size_t h2_pending(void *s)
{
    h2stream_t *st = s;
    return px_buf_size(&st->out) + (st->closed ? 0 : px_h2_queued(st->hc->h2, st->id));
}

static int h2_trailers_ok(void *s)
{
    (void)s;
    return 1;
}

static PX_MUST_CHECK int h2_proceed(void *s, int body)
{
    (void)s;
    (void)body;
    return 0;
}

/* Hands the exchange what waits of the request, as far as it takes it,
 * and reopens the windows by that much. */
static PX_MUST_CHECK int feed(h2stream_t *st)
{
    px_exch_t *x = &st->x;
    uint64_t max = cfg_of(st->hc->c)->http.max_body_bytes;

    if (st->xdone) {            /* answered already: the rest is read and dropped */
        if (px_buf_size(&st->in) && !st->closed)
            settle(px_h2_consumed(st->hc->h2, st->id, px_buf_size(&st->in)));
        px_buf_reset(&st->in);
        return 0;
    }
    while (px_buf_size(&st->in) || (st->in_end && !st->req_end_given)) {
        size_t n = px_buf_size(&st->in);
        int room = px_exch_req_room(x);
        if (room < 0)
            return -1;
        if (!room)
            break;
        if (n) {
            if (max && x->req_bytes + n > max)
                return x->ops->reply_error(st, PX_HERR_BODY_TOO_LARGE,
                                           "the request body is larger than http.max_body_bytes");
            if (px_exch_req_data(x, px_buf_ptr(&st->in), n) < 0)
                return -1;
            px_buf_reset(&st->in);
            if (!st->closed)
                settle(px_h2_consumed(st->hc->h2, st->id, n));
        } else {
            st->req_end_given = 1;
            if (px_exch_req_end(x, st->req_trailers, st->req_ntrailers) < 0)
                return -1;
        }
    }
    return px_exch_flush_upstream(x);
}

static PX_MUST_CHECK int h2_resume_input(void *s)
{
    h2stream_t *st = s;
    if (feed(st) < 0)
        return -1;
    return kick(st);
}

/* The head of a proxy error: JSON with its body to come, or for a
 * gRPC-shaped request a trailers-only gRPC response (HTTP 200, grpc-status,
 * grpc-message; proxy/grpc.h), which ends the stream. */
static int error_head(h2stream_t *st, px_msg_t *m, px_http_error_t e, const char *detail,
                      size_t body_len)
{
    char v[512];
    int rc;

    if (st->grpc) {
        int g = px_grpc_status(e);
        m->status = 200;
        m->end_stream = 1;
        st->x.grpc_status = 1 + g;
        snprintf(v, sizeof v, "%d", g);
        rc = px_msg_add(m, "content-type", 12, "application/grpc", 16);
        if (rc == 0)
            rc = px_msg_add(m, "grpc-status", 11, v, strlen(v));
        px_grpc_message(v, sizeof v, e, detail);
        return rc ? rc : px_msg_add(m, "grpc-message", 12, v, strlen(v));
    }
    m->status = px_http_error_status(e);
    snprintf(v, sizeof v, "%zu", body_len);
    rc = px_msg_add(m, "content-type", 12, "application/json", 16);
    return rc ? rc : px_msg_add(m, "content-length", 14, v, strlen(v));
}

/* A proxy error as the stream's response (JSON, or gRPC's), or RST_STREAM
 * when its head has gone out already. Always -1: the exchange is over. */
static PX_MUST_CHECK int h2_reply_error(void *s, px_http_error_t e, const char *detail)
{
    h2stream_t *st = s;
    px_exch_t *x = &st->x;
    char buf[1536];
    const char *body;
    px_msg_t m;
    int n, rc;

    if (st->xdone)
        return -1;
    x->error = px_http_error_str(e);
    if (st->responded || st->closed)
        return h2_abort(st, PX_END_INTERNAL);
    px_exch_release_upstream(x, 0);
    n = st->grpc ? 0 : px_http_error_render(buf, sizeof buf, e, detail, 0);
    body = n > 0 ? strstr(buf, "\r\n\r\n") : NULL;     /* the JSON after the HTTP/1.1 head */
    body = body ? body + 4 : "";
    px_msg_init(&m, 4096, 8);
    rc = error_head(st, &m, e, detail, strlen(body));
    if (x->is_head) {           /* the head alone (RFC 9110 9.3.2); content-length as for a GET */
        m.end_stream = 1;
        body = "";
    }
    x->status = m.status;
    x->resp_bytes = strlen(body);
    px_exch_log(x, &x->ci);
    if (rc == 0)
        rc = px_h2_respond(st->hc->h2, st->id, &m);
    st->responded = 1;
    st->resp_ended = 1;
    st->end_pending = !m.end_stream;
    px_msg_free(&m);
    if (rc == 0 && st->end_pending &&
        (px_buf_append(&st->out, body, strlen(body)) < 0 || push_out(st) < 0))
        rc = -1;
    exch_over(st);
    if (rc != 0)
        settle(px_h2_reset(st->hc->h2, st->id, NGHTTP2_INTERNAL_ERROR));
    settle(feed(st));           /* request bytes waiting are dropped, their window reopened */
    settle(kick(st));
    return -1;
}

static PX_MUST_CHECK int h2_done(void *s)
{
    h2stream_t *st = s;
    exch_over(st);
    settle(feed(st));
    return 0;
}

/* The job returned; of no use when the stream or the connection is gone. */
static PX_MUST_CHECK int h2_orphaned(void *s, px_sigjob_t *j)
{
    h2stream_t *st = s;
    px_conn_t *c = st->hc->c;
    if (c->state >= C_CLOSING) {
        px_sigjob_free(j);
        px_conn_free_if_closed(c);
        return 1;
    }
    if (!st->closed && !st->xdone)
        return 0;
    px_sigjob_free(j);
    reap_later(st->hc);
    return 1;
}

static const px_sess_ops_t h2_ops = {
    h2_send_head, h2_send_data, h2_send_end, h2_flush, h2_pending, h2_trailers_ok,
    h2_proceed, h2_resume_input, h2_reply_error, h2_abort, h2_done, h2_orphaned,
};

/* --- streams ----------------------------------------------------------------------- */

static void stream_destroy(h2stream_t *st)
{
    free(st->req_trailers);
    px_exch_free(&st->x);
    px_buf_free(&st->in);
    px_buf_free(&st->out);
    px_msg_free(&st->trailers);
    px_h2_req_free(&st->req);
    free(st);
}

static void stream_free(h2stream_t *st)
{
    struct px_h2conn *hc = st->hc;
    px_http1_limits_t lim;

    free(st->req_trailers);       /* rare: never kept */
    st->req_trailers = NULL;
    if (st->prev)
        st->prev->next = st->next;
    else
        hc->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    if (hc->nspares >= SPARES || !st->x.resp || hc->c->state >= C_CLOSING) {
        stream_destroy(st);
        return;
    }
    lim = px_exch_resp_limits(cfg_of(hc->c));
    px_exch_recycle(&st->x, &lim, SPARE_KEEP);
    px_h2_req_recycle(&st->req, SPARE_KEEP);
    px_buf_recycle(&st->in, SPARE_KEEP);
    px_buf_recycle(&st->out, SPARE_KEEP);
    px_msg_recycle(&st->trailers, SPARE_KEEP);
    st->next = hc->spares;
    hc->spares = st;
    hc->nspares++;
}

static void spares_free(struct px_h2conn *hc)
{
    while (hc->spares) {
        h2stream_t *st = hc->spares;
        hc->spares = st->next;
        stream_destroy(st);
    }
    hc->nspares = 0;
}

/* A spare stream (everything but its kept allocations zeroed), or a new one. */
static h2stream_t *stream_new(struct px_h2conn *hc, const px_http1_limits_t *lim)
{
    h2stream_t *st = hc->spares;

    if (st) {
        hc->spares = st->next;
        hc->nspares--;
        memset(&st->hc, 0, sizeof *st - offsetof(h2stream_t, hc));
        return st;
    }
    if (!(st = calloc(1, sizeof *st)))
        return NULL;
    px_buf_init(&st->in, 0);
    px_buf_init(&st->out, 0);
    px_msg_init(&st->trailers, RESP_MSG_BYTES, RESP_MSG_FIELDS);
    px_exch_init(&st->x);
    st->x.resp = px_http1_new(0, lim);
    if (st->x.resp)
        px_http1_keep_trailers(st->x.resp, 1);    /* the model server's, forwarded (exchange.c) */
    return st;
}

/* From the loop, over the closed streams: one closed under a live
 * exchange (a reset from the client) ends it; one whose exchange is over
 * and which no job holds is freed (1 if any was). Those a job still holds
 * stay on the list; streams that close meanwhile join its end and are
 * looked at in this walk too. */
static int free_finished(struct px_h2conn *hc)
{
    h2stream_t **pp = &hc->closed_head, *prev = NULL, *st;
    int freed = 0;

    while ((st = *pp)) {
        if (!st->xdone) {
            px_exch_log_unfinished(&st->x, &st->x.ci, PX_END_CLIENT_CLOSED);
            exch_over(st);
        }
        if (st->xdone && !st->x.job) {
            *pp = st->closed_next;
            if (hc->closed_tail == st)
                hc->closed_tail = prev;
            st->closed_next = NULL;
            stream_free(st);
            freed = 1;
        } else {
            prev = st;
            pp = &st->closed_next;
        }
    }
    return freed;
}

/* The streams the pump closes (their last frames left) are freed in the
 * same turn, before the poll brings the requests that follow them: these
 * then find a spare instead of allocating one. */
static void reap_cb(px_defer_item_t *it)
{
    struct px_h2conn *hc = (struct px_h2conn *)((char *)it - offsetof(struct px_h2conn, reap));
    free_finished(hc);
    /* The streams whose last frames this pump sends close inside it; they
     * are freed just below, not on one more turn of the loop (a turn whose
     * poll could not block). */
    hc->reaping = 1;
    if (pump(hc->c) < 0)
        return;
    hc->reaping = 0;
    if (free_finished(hc) && hc->draining)
        reap_later(hc);     /* the pump's close check, now without them */
}

/* Not once the connection closes: conn_free frees what is left. */
static void reap_later(struct px_h2conn *hc)
{
    if (hc->c->state >= C_CLOSING || hc->reaping)
        return;
    px_defer_add(&hc->c->env->defer, &hc->reap, reap_cb);
}

/* --- per-stream deadlines ---------------------------------------------------------- *
 * The connection's one timer (T_H2) fires at the next 1 s tick or the
 * earliest stream deadline, whichever comes first: the request's
 * timeouts.request_ms and body_idle_ms as for HTTP/1.1 (while its body is
 * coming), and the client's grpc-timeout (until the exchange ends). */

typedef enum { DL_NONE = -1, DL_REQUEST, DL_BODY_IDLE, DL_GRPC } deadline_t;

/* The client's grpc-timeout, capped by timeouts.request_ms. 0, or
 * PX_EPARSE when malformed. */
static int grpc_deadline(h2stream_t *st)
{
    const px_header_t *f = px_http_head_get(&st->req.head, "grpc-timeout");
    uint32_t cap = cfg_of(st->hc->c)->timeouts.request;
    uint64_t ms;

    if (!f)
        return 0;
    if (px_grpc_timeout_parse(f->value, f->value_len, &ms) != 0)
        return PX_EPARSE;
    st->grpc_deadline = st->t_open + (ms < cap ? ms : cap);
    return 0;
}

/* The stream's next deadline (loop ms, UINT64_MAX: none) and which. A body
 * is idle only while nothing of it waits in st->in: bytes held there mean
 * the proxy, not the client, is the slow side (the window is shut). */
static uint64_t next_deadline(const h2stream_t *st, deadline_t *which)
{
    const px_timeouts_config_t *to = &cfg_of(st->hc->c)->timeouts;
    uint64_t d = UINT64_MAX;

    *which = DL_NONE;
    if (st->xdone || st->closed)
        return d;
    if (st->grpc_deadline) {
        d = st->grpc_deadline;
        *which = DL_GRPC;
    }
    if (st->in_end)
        return d;
    if (st->t_open + to->request < d) {
        d = st->t_open + to->request;
        *which = DL_REQUEST;
    }
    if (!px_buf_size(&st->in) && !st->x.job && st->last_in + to->body_idle < d) {
        d = st->last_in + to->body_idle;
        *which = DL_BODY_IDLE;
    }
    return d;
}

/* The timer for the next tick or stream deadline (the timer is lazy,
 * core/ltimer.h: arming is cheap). */
static void arm_deadlines(struct px_h2conn *hc)
{
    uint64_t now = uv_now(hc->c->env->loop), at = hc->next_tick;
    deadline_t which;

    if (hc->c->tkind != T_H2 || hc->c->state >= C_CLOSING)
        return;                 /* the connection's closing timer (linger) stays */
    for (const h2stream_t *st = hc->streams; st; st = st->next) {
        uint64_t d = next_deadline(st, &which);
        if (d < at)
            at = d;
    }
    px_transport_arm(&hc->c->tp, at > now ? (uint32_t)(at - now) : 1);
    hc->armed_at = at;
}

/* A new stream's deadlines: the timer moves only when they come before
 * the time it is set for (an early firing re-arms; a late one is what
 * must not happen). */
static void arm_for(struct px_h2conn *hc, const h2stream_t *st)
{
    deadline_t which;

    if (next_deadline(st, &which) < hc->armed_at)
        arm_deadlines(hc);
}

/* A deadline passed: the request is answered 408 (gRPC: DEADLINE_EXCEEDED)
 * unless its head went out, then reset (gRPC: CANCEL, as its servers do);
 * either way its upstream link is released. */
static void expire(h2stream_t *st, deadline_t which)
{
    static const px_end_reason_t why[] = { PX_END_REQUEST_TIMEOUT, PX_END_REQUEST_TIMEOUT,
                                           PX_END_DEADLINE_EXCEEDED };
    const px_timeouts_config_t *to = &cfg_of(st->hc->c)->timeouts;
    px_metrics_t *m = st->hc->c->env->m;
    char detail[128];

    px_m_inc(&m->h2_stream_timeouts[which]);
    if (which == DL_REQUEST) {
        px_m_inc(&m->request_deadline);
        snprintf(detail, sizeof detail, "the request was not complete within %u ms", to->request);
    } else if (which == DL_BODY_IDLE) {
        snprintf(detail, sizeof detail, "request body stalled for %u ms", to->body_idle);
    } else {
        snprintf(detail, sizeof detail, "the deadline of grpc-timeout passed");
    }
    if (st->responded) {
        st->x.error = px_end_reason_str(why[which]);
        settle(reset_exch(st, why[which], st->grpc ? NGHTTP2_CANCEL : NGHTTP2_INTERNAL_ERROR));
        return;
    }
    settle(h2_reply_error(st, which == DL_GRPC ? PX_HERR_DEADLINE_EXCEEDED : PX_HERR_REQUEST_TIMEOUT,
                          detail));
}

/* Ends the streams whose deadline passed (from the loop: the timer). */
static void expire_streams(struct px_h2conn *hc)
{
    uint64_t now = uv_now(hc->c->env->loop);
    deadline_t which;

    for (h2stream_t *st = hc->streams; st; st = st->next)
        if (next_deadline(st, &which) <= now && hc->c->state < C_CLOSING)
            expire(st, which);
}

static void on_request(void *ud, int32_t id, const px_msg_t *m)
{
    struct px_h2conn *hc = ud;
    px_conn_t *c = hc->c;
    px_http1_limits_t lim = px_exch_resp_limits(cfg_of(c));
    h2stream_t *st = stream_new(hc, &lim);
    const char *detail = NULL;
    int rc;

    if (!st) {
        settle(px_h2_reset(hc->h2, id, NGHTTP2_REFUSED_STREAM));
        return;
    }
    st->hc = hc;
    st->id = id;
    st->x.ops = &h2_ops;
    st->x.sess = st;
    st->x.env = c->env;
    st->x.ci = (px_conninfo_t){ px_transport_peer(&c->tp), px_transport_peer_ip(&c->tp),
                                px_transport_tls(&c->tp), c->env->worker_id, c->env->m,
                                px_h2_sess.protocol };
    st->next = hc->streams;
    if (hc->streams)
        hc->streams->prev = st;
    hc->streams = st;
    rc = st->x.resp ? px_h2_translate(m, cfg_of(c)->http.max_body_bytes, &st->req, &detail) : PX_ENOMEM;
    if (rc < 0 || px_h2_set_stream_data(hc->h2, id, st) != 0) {
        st->xdone = 1;
        settle(px_h2_reset(hc->h2, id, NGHTTP2_REFUSED_STREAM));
        return;                 /* its on_close frees it */
    }
    px_exch_begin(&st->x, &st->req.head, cfg_of(c), c->env->sig, &c->env->rng);
    st->x.keep_alive = 1;
    st->t_open = st->last_in = uv_now(c->env->loop);
    st->grpc = st->x.grpc;
    if (rc == 0 && st->grpc && grpc_deadline(st) != 0) {
        rc = 1 + PX_HERR_BAD_REQUEST;
        detail = "malformed grpc-timeout";
    }
    arm_for(hc, st);
    if (rc > 0) {
        settle(h2_reply_error(st, (px_http_error_t)(rc - 1), detail));
        return;
    }
    settle(px_exch_req_head(&st->x));
}

static void on_data(void *ud, int32_t id, void *sd, const uint8_t *p, size_t n)
{
    h2stream_t *st = sd;
    (void)ud;
    (void)id;
    if (!st)
        return;
    st->last_in = uv_now(st->hc->c->env->loop);
    if (px_buf_append(&st->in, p, n) < 0) {
        settle(h2_abort(st, PX_END_INTERNAL));
        return;
    }
    settle(feed(st));
}

/* The request's trailer fields out of h2.c's message, whose arena lives no
 * longer than nghttp2's stream: the exchange may take its end later. */
static int copy_trailers(h2stream_t *st, const px_msg_t *m)
{
    int n = px_msg_trailer_count(m);
    size_t bytes = (size_t)n * sizeof *st->req_trailers;
    char *mem;

    for (int i = 0; i < n; i++)
        bytes += px_msg_trailer_name(m, i).n + px_msg_trailer_value(m, i).n + 2;
    if (!n || !(st->req_trailers = malloc(bytes)))
        return n ? PX_ENOMEM : 0;
    mem = (char *)(st->req_trailers + n);
    for (int i = 0; i < n; i++) {
        px_str_t a = px_msg_trailer_name(m, i), b = px_msg_trailer_value(m, i);
        memcpy(mem, a.p, a.n + 1);
        memcpy(mem + a.n + 1, b.p, b.n + 1);
        st->req_trailers[i] = (px_header_t){ mem, a.n, mem + a.n + 1, b.n };
        mem += a.n + b.n + 2;
    }
    st->req_ntrailers = n;
    return 0;
}

static void on_end(void *ud, int32_t id, void *sd, const px_msg_t *head)
{
    h2stream_t *st = sd;
    (void)ud;
    (void)id;
    if (!st)
        return;
    if (!st->xdone && copy_trailers(st, head) < 0) {
        settle(h2_abort(st, PX_END_INTERNAL));
        return;
    }
    st->in_end = 1;
    settle(feed(st));
}

static void on_drained(void *ud, int32_t id, void *sd, size_t n)
{
    h2stream_t *st = sd;
    (void)ud;
    (void)id;
    (void)n;
    if (!st)
        return;
    if (push_out(st) < 0) {
        settle(h2_abort(st, PX_END_INTERNAL));
        return;
    }
    if (!st->xdone)
        px_exch_resp_drained(&st->x);
}

static void on_close(void *ud, int32_t id, void *sd, uint32_t code)
{
    struct px_h2conn *hc = ud;
    h2stream_t *st = sd;
    (void)id;
    if (!st || st->closed)
        return;
    st->closed = 1;
    st->close_code = code;
    if (hc->closed_tail)
        hc->closed_tail->closed_next = st;
    else
        hc->closed_head = st;
    hc->closed_tail = st;
    reap_later(hc);
}

static const px_h2_callbacks_t h2_cb = { on_request, on_data, on_end, on_drained, on_close };

/* --- the connection's side --------------------------------------------------------- */

static int open_streams(const struct px_h2conn *hc)
{
    for (const h2stream_t *st = hc->streams; st; st = st->next)
        if (!st->closed)
            return 1;
    return 0;
}

/* The session's counters since the last report into the worker's metrics
 * (px_h2_stats_t: streams, then the events in metrics.c's order). */
static void report(struct px_h2conn *hc)
{
    const px_h2_stats_t *now = px_h2_stats(hc->h2);
    const uint64_t *a = (const uint64_t *)now, *b = (const uint64_t *)&hc->reported;
    px_metrics_t *m = hc->c->env->m;

    _Static_assert(sizeof(px_h2_stats_t) == (1 + PX_M_H2_EVENTS) * sizeof(uint64_t),
                   "px_h2_stats_t: streams and the PX_M_H2_EVENTS events");
    px_m_add(&m->h2_streams, a[0] - b[0]);
    for (int e = 0; e < PX_M_H2_EVENTS; e++)
        px_m_add(&m->h2_events[e], a[1 + e] - b[1 + e]);
    hc->reported = *now;
}

/* Frames out to the transport while it has room; then the session's end
 * (h2.c wants it, or a drain found no stream left) and its timer. */
static int pump(px_conn_t *c)
{
    struct px_h2conn *hc = c->h2;
    int rc, full;

    report(hc);
    if (c->state >= C_CLOSING || hc->in_h2)
        return c->state >= C_CLOSING ? GONE : 0;
    do {
        full = 0;
        while (px_h2_want_write(hc->h2)) {
            if (px_transport_pending(&c->tp) >= PX_HIGH_WATER) {
                full = 1;
                break;
            }
            px_buf_reset(&hc->out);
            hc->in_h2 = 1;
            rc = px_h2_output(hc->h2, &hc->out, OUT_PULL);
            hc->in_h2 = 0;
            if (rc != 0)
                return px_conn_abort(c, PX_END_INTERNAL);
            if (!px_buf_size(&hc->out))
                break;
            if (px_conn_send(c, px_buf_ptr(&hc->out), px_buf_size(&hc->out)) < 0)
                return GONE;
        }
        if (px_conn_flush(c) < 0)
            return GONE;
        /* stopped for room, and the socket took it all at once: no on_sent
         * follows to pull the rest (it would wait for the next tick) */
    } while (full && !px_transport_writing(&c->tp));
    if (px_h2_want_close(hc->h2) || (hc->draining && !open_streams(hc) && !hc->streams))
        return px_conn_begin_close(c);
    return 0;
}

static PX_MUST_CHECK int h2s_input(px_conn_t *c)
{
    struct px_h2conn *hc = c->h2;
    px_buf_t *in = px_transport_input(&c->tp);
    int rc;

    hc->in_h2 = 1;
    rc = px_h2_input(hc->h2, px_buf_ptr(in), px_buf_size(in));
    hc->in_h2 = 0;
    px_buf_consume(in, px_buf_size(in));
    if (rc == PX_EPARSE) {
        if (pump(c) < 0)
            return GONE;
        return px_conn_begin_close(c);       /* the GOAWAY leaves first */
    }
    if (rc != 0)
        return px_conn_abort(c, PX_END_INTERNAL);
    if (pump(c) < 0)
        return GONE;
    if (px_transport_eof(&c->tp))
        return px_conn_begin_close(c);
    return 0;
}

static void h2s_sent(px_conn_t *c)
{
    settle(pump(c));
}

static void h2s_written(px_conn_t *c)
{
    (void)c;                    /* pump() goes on pulling by itself */
}

/* Every second: streams stalled on a shut window are reset; a connection
 * without streams for keepalive_idle is closed with a GOAWAY. */
static void h2s_timer(px_conn_t *c)
{
    struct px_h2conn *hc = c->h2;
    uint64_t now = uv_now(c->env->loop);
    if (c->tkind != T_H2)
        return;
    if (px_transport_write_stalled(&c->tp, now) >= cfg_of(c)->timeouts.send_idle) {
        settle(px_conn_send_timed_out(c));      /* conn.c's T_SEND, for HTTP/2 */
        return;
    }
    expire_streams(hc);
    if (c->state >= C_CLOSING)
        return;
    if (now >= hc->next_tick) {
        hc->next_tick = now + PX_H2_TICK_MS;
        settle(px_h2_tick(hc->h2));
        if (hc->streams) {
            hc->idle_ms = 0;
        } else {
            /* idle: what busy times kept goes back, and the buffers
             * (an idle connection holds no more than an HTTP/1.1 one) */
            spares_free(hc);
            px_buf_free(&hc->sel);
            px_buf_free(&hc->nv);
            px_buf_free(&hc->out);
            if (!px_transport_writing(&c->tp))
                px_conn_compact(c);
            hc->idle_ms += PX_H2_TICK_MS;
            if (hc->idle_ms >= cfg_of(c)->timeouts.keepalive_idle) {
                settle(px_h2_goaway(hc->h2, NGHTTP2_NO_ERROR));
                hc->draining = 1;
            }
        }
    }
    arm_deadlines(hc);
    settle(pump(c));
}

static void end_streams(px_conn_t *c, px_end_reason_t why)
{
    for (h2stream_t *st = c->h2->streams; st; st = st->next) {
        if (!delivered(st))             /* else its exchange is logging it (h2_flush) */
            px_exch_log_unfinished(&st->x, &st->x.ci, why);
        st->xdone = 1;
        px_exch_release_upstream(&st->x, 0);
    }
}

static PX_MUST_CHECK int h2s_abort_prep(px_conn_t *c, px_end_reason_t why)
{
    end_streams(c, why);
    px_defer_cancel(&c->h2->reap);
    return 0;
}

static void h2s_stop(px_conn_t *c)
{
    end_streams(c, PX_END_CLIENT_CLOSED);
    px_defer_cancel(&c->h2->reap);
}

static void h2s_log_unfinished(px_conn_t *c, px_end_reason_t why)
{
    for (h2stream_t *st = c->h2->streams; st; st = st->next)
        px_exch_log_unfinished(&st->x, &st->x.ci, why);
}

/* Drain and reload: GOAWAY (h2.c: a notice, then the last stream on the
 * PING's answer); open streams finish, then the connection closes. */
static PX_MUST_CHECK int h2s_drain(px_conn_t *c)
{
    struct px_h2conn *hc = c->h2;
    if (c->state >= C_CLOSING)
        return 0;
    hc->draining = 1;
    settle(px_h2_drain(hc->h2));
    return pump(c);
}

static int h2s_job_pending(const px_conn_t *c)
{
    for (const h2stream_t *st = c->h2->streams; st; st = st->next)
        if (st->x.job)
            return 1;
    return 0;
}

const px_conn_sess_t px_h2_sess = {
    "h2", h2s_input, h2s_sent, h2s_written, h2s_timer, h2s_abort_prep,
    h2s_stop, h2s_log_unfinished, h2s_drain, h2s_job_pending,
};

int px_h2s_start(px_conn_t *c)
{
    struct px_h2conn *hc = calloc(1, sizeof *hc);
    if (!hc)
        return -1;
    hc->c = c;
    px_buf_init(&hc->out, 0);
    px_buf_init(&hc->sel, 0);
    px_buf_init(&hc->nv, 0);
    if (px_h2_new(&cfg_of(c)->http2, &h2_cb, hc, NULL, &hc->h2) != 0) {
        free(hc);
        return -1;
    }
    px_h1_free(c);              /* the HTTP/1.1 state it shares a union with */
    c->h2 = hc;
    c->sess = &px_h2_sess;
    px_m_inc(&c->env->m->h2_conns);
    px_conn_set_state(c, C_REQUEST);
    px_conn_arm(c, T_H2);
    hc->next_tick = hc->armed_at = uv_now(c->env->loop) + PX_H2_TICK_MS;
    return 0;
}

void px_h2s_free(px_conn_t *c)
{
    struct px_h2conn *hc = c->h2;
    if (!hc)
        return;
    px_defer_cancel(&hc->reap);
    report(hc);
    px_conn_set_state(c, C_CLOSED);   /* on_close from px_h2_free queues no reap */
    hc->in_h2 = 1;
    px_h2_free(hc->h2);         /* on_close for open streams: only marks them */
    while (hc->streams)
        stream_free(hc->streams);
    spares_free(hc);
    px_buf_free(&hc->out);
    px_buf_free(&hc->sel);
    px_buf_free(&hc->nv);
    free(hc);
    c->h2 = NULL;
}
