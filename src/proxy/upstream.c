/* Upstream links and the per-worker keep-alive pool (see upstream.h). */
#include "proxy/upstream.h"

#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/ltimer.h"
#include "core/streamio.h"

#define READ_CHUNK (64 * 1024)

/* L_RELEASING: given back while its last write's callback is still due
 * (libuv reports completion on the next loop turn, possibly after the
 * response has been read); it joins the pool when that write completes. */
typedef enum { L_CONNECTING, L_OWNED, L_RELEASING, L_IDLE, L_CLOSING } link_state_t;

struct px_uplink {
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;
    px_ltimer_t timer;          /* the link's timeout (see link_arm) */
    uv_connect_t connect_req;
    uv_write_t write_req;
    px_buf_t inflight;          /* bytes of the write in flight */
    px_upstream_t *pool;
    const px_uplink_cb_t *cb;
    void *ud;
    link_state_t state;
    int writing, reading;
    int open_handles;           /* freed when both handles are closed */
    unsigned generation;        /* config generation it was made for */
    uint32_t requests;          /* exchanges it has carried (max_requests_per_conn) */
    px_uplink_t *next, *prev;   /* idle list */
};

struct px_upstream {
    uv_loop_t *loop;
    px_upstream_config_t cfg;
    px_timeouts_config_t timeouts;
    struct sockaddr_storage addr;
    unsigned generation;
    unsigned addr_generation;    /* moves when a reload changes the address */
    px_uplink_t *idle;           /* most recently used first */
    uint32_t idle_count, live_count;
    uint32_t open_count;         /* links not closing: what max_connections caps */
    px_upwait_t *wait_head, *wait_tail;  /* FIFO: the oldest first */
    uint32_t wait_count;
    uv_timer_t qtimer;           /* hands links to the queue (at 0 ms), times it out */
    int qtimer_gone;             /* its close callback ran: the pool may go */
    uint64_t shown_idle, shown_busy, shown_queued;   /* what the gauges hold of this pool */
    int closing;
    px_metrics_t *m;
    char rbuf[READ_CHUNK];       /* shared: on_read consumers copy what they keep */
};

static void resolve(px_upstream_t *u)
{
    memset(&u->addr, 0, sizeof u->addr);
    if (u->cfg.addr.is_unix)
        return;
    if (uv_ip4_addr(u->cfg.addr.host, u->cfg.addr.port, (struct sockaddr_in *)&u->addr) != 0)
        uv_ip6_addr(u->cfg.addr.host, u->cfg.addr.port, (struct sockaddr_in6 *)&u->addr);
}

static px_metrics_t dummy_metrics;   /* when the owner counts nothing */

/* A worker has a pool per upstream and the gauges are the worker's: each
 * pool adds what changed since it last reported. */
static void gauges(px_upstream_t *u)
{
    uint64_t idle = u->idle_count, busy = u->live_count - u->idle_count;
    px_m_add(&u->m->upstream_idle, idle - u->shown_idle);
    px_m_add(&u->m->upstream_busy, busy - u->shown_busy);
    px_m_add(&u->m->upstream_queued, u->wait_count - u->shown_queued);
    u->shown_idle = idle;
    u->shown_busy = busy;
    u->shown_queued = u->wait_count;
}

static void queue_cb(uv_timer_t *t);

/* The queue is looked at on the next loop turn, never from the call that
 * gave a link back or closed one: its owner's callbacks do not run inside
 * another owner's call. */
static void queue_kick(px_upstream_t *u)
{
    if (u->wait_head && !uv_is_closing((uv_handle_t *)&u->qtimer))
        uv_timer_start(&u->qtimer, queue_cb, 0, 0);
}

static int at_cap(const px_upstream_t *u)
{
    return u->cfg.max_connections && u->open_count >= u->cfg.max_connections;
}

px_upstream_t *px_upstream_new(uv_loop_t *loop, const px_upstream_config_t *cfg,
                               const px_timeouts_config_t *timeouts, px_metrics_t *m)
{
    px_upstream_t *u = calloc(1, sizeof *u);
    if (!u)
        return NULL;
    u->m = m ? m : &dummy_metrics;
    u->loop = loop;
    u->cfg = *cfg;
    u->timeouts = *timeouts;
    resolve(u);
    uv_timer_init(loop, &u->qtimer);
    u->qtimer.data = u;
    return u;
}

static void maybe_free_pool(px_upstream_t *u)
{
    if (u->closing && u->live_count == 0 && u->qtimer_gone)
        free(u);
}

static void on_qtimer_closed(uv_handle_t *h)
{
    px_upstream_t *u = h->data;
    u->qtimer_gone = 1;
    maybe_free_pool(u);
}

static void qtimer_close(px_upstream_t *u)
{
    if (!uv_is_closing((uv_handle_t *)&u->qtimer))
        uv_close((uv_handle_t *)&u->qtimer, on_qtimer_closed);
}

static void on_link_closed(uv_handle_t *h)
{
    px_uplink_t *l = h->data;
    if (--l->open_handles > 0)
        return;
    px_upstream_t *u = l->pool;
    px_buf_free(&l->inflight);
    free(l);
    u->live_count--;
    gauges(u);
    maybe_free_pool(u);
}

static void idle_unlink(px_uplink_t *l)
{
    px_upstream_t *u = l->pool;
    if (l->prev)
        l->prev->next = l->next;
    else
        u->idle = l->next;
    if (l->next)
        l->next->prev = l->prev;
    l->next = l->prev = NULL;
    u->idle_count--;
    gauges(u);
}

static void link_close(px_uplink_t *l)
{
    if (l->state == L_CLOSING)
        return;
    if (l->state == L_IDLE)
        idle_unlink(l);
    l->state = L_CLOSING;
    l->cb = NULL;               /* the owner has gone; nothing more is reported */
    uv_close(&l->h.handle, on_link_closed);
    uv_close((uv_handle_t *)&l->timer.timer, on_link_closed);
    l->pool->open_count--;
    queue_kick(l->pool);        /* a slot is free */
}

/* The socket is readable (streamio.h: libuv reads nothing itself). */
static void read_cb(uv_stream_t *s, ssize_t status, const uv_buf_t *buf)
{
    px_uplink_t *l = s->data;
    (void)status;               /* UV_ENOBUFS, from px_stream_no_alloc */
    (void)buf;
    if (l->state == L_IDLE || l->state == L_RELEASING) {
        /* A pooled link must stay silent: data or EOF means it is unusable. */
        if (px_stream_readable(s))
            link_close(l);
        return;
    }
    for (int i = 0; i < PX_STREAM_READ_BURST; i++) {
        char *p = l->pool->rbuf;
        ssize_t n;
        if (l->state != L_OWNED || !l->cb || !l->reading)
            return;
        n = px_stream_recv(s, p, sizeof l->pool->rbuf);
        if (n == UV_EAGAIN)
            return;
        l->cb->on_read(l, p, n, l->ud);
        if (n < (ssize_t)sizeof l->pool->rbuf)
            return;
    }
}

static void timer_cb(uv_timer_t *t);

/* Lazy (ltimer.h): the deadline moves at every request (acquire, sent,
 * first bytes, back to the pool). ms 0 disarms. */
static void link_arm(px_uplink_t *l, uint32_t ms)
{
    px_ltimer_arm(&l->timer, ms, timer_cb);
}

static void timer_cb(uv_timer_t *t)
{
    px_uplink_t *l = t->data;
    if (!px_ltimer_expired(&l->timer, timer_cb))
        return;
    switch (l->state) {
    case L_IDLE:
        link_close(l);
        break;
    case L_CONNECTING:
        if (l->cb)
            l->cb->on_connect(l, UV_ETIMEDOUT, l->ud);
        break;
    case L_OWNED:
        if (l->cb)
            l->cb->on_read(l, NULL, UV_ETIMEDOUT, l->ud);
        break;
    default:
        break;
    }
}

static void connect_cb(uv_connect_t *req, int status)
{
    px_uplink_t *l = req->data;
    if (l->state != L_CONNECTING)
        return;                 /* closed meanwhile (status is UV_ECANCELED) */
    link_arm(l, 0);
    if (status < 0) {
        if (l->cb)
            l->cb->on_connect(l, status, l->ud);
        return;
    }
    l->state = L_OWNED;
    if (l->cb)
        l->cb->on_connect(l, 0, l->ud);
}

static px_uplink_t *link_new(px_upstream_t *u)
{
    px_uplink_t *l = calloc(1, sizeof *l);
    int rc;
    if (!l)
        return NULL;
    l->pool = u;
    l->generation = u->generation;
    px_buf_init(&l->inflight, 0);
    if (u->cfg.addr.is_unix)
        rc = uv_pipe_init(u->loop, &l->h.pipe, 0);
    else
        rc = uv_tcp_init(u->loop, &l->h.tcp);
    if (rc != 0) {
        free(l);
        return NULL;
    }
    uv_timer_init(u->loop, &l->timer.timer);
    l->h.handle.data = l->timer.timer.data = l->connect_req.data = l->write_req.data = l;
    l->open_handles = 2;
    u->live_count++;
    u->open_count++;
    gauges(u);
    return l;
}

int px_upstream_connect_fresh(px_upstream_t *u, const px_uplink_cb_t *cb, void *ud,
                              px_uplink_t **out)
{
    px_uplink_t *l;
    int rc;

    if (u->closing)
        return UV_ECANCELED;
    l = link_new(u);
    if (!l)
        return UV_ENOMEM;
    l->cb = cb;
    l->ud = ud;
    l->state = L_CONNECTING;
    px_m_inc(&u->m->upstream_connects);
    if (u->cfg.addr.is_unix) {
        uv_pipe_connect(&l->connect_req, &l->h.pipe, u->cfg.addr.host, connect_cb);
        rc = 0;
    } else {
        uv_tcp_nodelay(&l->h.tcp, 1);
        rc = uv_tcp_connect(&l->connect_req, &l->h.tcp, (const struct sockaddr *)&u->addr, connect_cb);
    }
    if (rc != 0) {
        link_close(l);
        return rc;
    }
    link_arm(l, u->timeouts.upstream_connect);
    *out = l;
    return 0;
}

/* An idle link to its new owner. Still registered for reading (it watched
 * for a close while idle): no epoll change, and usable at once. */
static px_uplink_t *take_idle(px_upstream_t *u, const px_uplink_cb_t *cb, void *ud)
{
    px_uplink_t *l = u->idle;
    idle_unlink(l);
    link_arm(l, 0);
    l->state = L_OWNED;
    l->cb = cb;
    l->ud = ud;
    px_m_inc(&u->m->upstream_reuses);
    return l;
}

/* A link now: an idle one (*reused = 1: usable at once, no on_connect) or
 * a new connection (on_connect follows): 0. PX_UPSTREAM_QUEUED at
 * max_connections, or a negative error. */
static int take_link(px_upstream_t *u, const px_uplink_cb_t *cb, void *ud, px_uplink_t **out,
                     int *reused)
{
    *reused = 0;
    if (u->idle) {
        *out = take_idle(u, cb, ud);
        *reused = 1;
        return 0;
    }
    if (at_cap(u))
        return PX_UPSTREAM_QUEUED;
    return px_upstream_connect_fresh(u, cb, ud, out);
}

static void wait_unlink(px_upwait_t *w)
{
    px_upstream_t *u = w->pool;
    if (w->prev)
        w->prev->next = w->next;
    else
        u->wait_head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        u->wait_tail = w->prev;
    w->next = w->prev = NULL;
    w->pool = NULL;
    u->wait_count--;
    gauges(u);
}

int px_upstream_acquire(px_upstream_t *u, const px_uplink_cb_t *cb, void *ud, px_upwait_t *w,
                        px_uplink_t **out, int *reused)
{
    int rc;

    *reused = 0;
    if (u->closing)
        return UV_ECANCELED;
    /* Those waiting go first: a link given back meanwhile is theirs. */
    if (!u->wait_head && (rc = take_link(u, cb, ud, out, reused)) != PX_UPSTREAM_QUEUED)
        return rc;
    w->cb = cb;
    w->ud = ud;
    w->slot = out;
    w->since = uv_now(u->loop);
    w->addr_generation = u->addr_generation;
    w->pool = u;
    w->next = NULL;
    w->prev = u->wait_tail;
    if (u->wait_tail)
        u->wait_tail->next = w;
    else
        u->wait_head = w;
    u->wait_tail = w;
    u->wait_count++;
    px_m_inc(&u->m->upstream_queued_total);
    gauges(u);
    if (!uv_is_active((uv_handle_t *)&u->qtimer))
        uv_timer_start(&u->qtimer, queue_cb, u->timeouts.upstream_queue, 0);
    return PX_UPSTREAM_QUEUED;
}

void px_upstream_cancel(px_upwait_t *w)
{
    if (w->pool)
        wait_unlink(w);
}

/* Links to those waiting, oldest first, while there are any to give; then
 * those waiting past timeouts.upstream_queue are told. Each owner's
 * callback may queue, cancel or give back others: the head is read again
 * every time. */
static void queue_cb(uv_timer_t *t)
{
    px_upstream_t *u = t->data;
    px_upwait_t *w;
    uint64_t now = uv_now(u->loop);

    while ((w = u->wait_head)) {
        const px_uplink_cb_t *cb = w->cb;
        px_uplink_t **slot = w->slot;
        void *ud = w->ud;
        int status, reused = 0;

        if (u->closing)
            status = UV_ECANCELED;
        else if (w->addr_generation != u->addr_generation)
            status = UV_EAGAIN;     /* its upstream may be another pool's now (by name) */
        else if ((status = take_link(u, cb, ud, slot, &reused)) == PX_UPSTREAM_QUEUED) {
            if (now - w->since < u->timeouts.upstream_queue)
                break;
            status = UV_EBUSY;
        }
        wait_unlink(w);
        if (status == 0 && !reused)
            continue;               /* connecting: on_connect follows */
        cb->on_connect(status == 0 ? *slot : NULL, status, ud);
    }
    if (u->closing) {
        qtimer_close(u);
        return;
    }
    if ((w = u->wait_head)) {
        uint64_t due = w->since + u->timeouts.upstream_queue;
        uv_timer_start(&u->qtimer, queue_cb, due > now ? due - now : 0, 0);
    }
}

static void pool_insert(px_uplink_t *l);

static void write_cb(uv_write_t *req, int status)
{
    px_uplink_t *l = req->data;
    l->writing = 0;
    px_buf_reset(&l->inflight);
    if (l->state == L_RELEASING) {
        if (status == 0)
            pool_insert(l);
        else
            link_close(l);
        return;
    }
    if (l->state == L_OWNED && l->cb)
        l->cb->on_write(l, status, l->ud);
}

int px_uplink_write(px_uplink_t *l, px_buf_t *data)
{
    px_buf_t tmp;
    uv_buf_t b;
    int rc, n;

    if (l->writing || l->state != L_OWNED)
        return UV_EBUSY;
    /* Most writes fit in the socket buffer: done now, without a request,
     * a deferred callback or an epoll change. */
    n = px_stream_try_send(&l->h.stream, px_buf_ptr(data), px_buf_size(data));
    if (n == (int)px_buf_size(data)) {
        px_buf_reset(data);
        return 1;
    }
    if (n > 0)
        px_buf_consume(data, (size_t)n);
    else if (n != UV_EAGAIN)
        return n;
    /* Swap buffers: the caller keeps filling an empty one meanwhile. */
    tmp = l->inflight;
    l->inflight = *data;
    *data = tmp;
    px_buf_reset(data);
    b = uv_buf_init((char *)px_buf_ptr(&l->inflight), (unsigned)px_buf_size(&l->inflight));
    rc = uv_write(&l->write_req, &l->h.stream, &b, 1, write_cb);
    if (rc == 0)
        l->writing = 1;
    return rc;
}

int px_uplink_writing(const px_uplink_t *l)
{
    return l->writing;
}

int px_uplink_reused(const px_uplink_t *l)
{
    return l->requests > 0;
}

void px_uplink_read_start(px_uplink_t *l)
{
    if (!l->reading && l->state == L_OWNED) {
        if (uv_read_start(&l->h.stream, px_stream_no_alloc, read_cb) == 0)
            l->reading = 1;
    }
}

void px_uplink_read_stop(px_uplink_t *l)
{
    if (l->reading) {
        uv_read_stop(&l->h.stream);
        l->reading = 0;
    }
}

int px_uplink_reading(const px_uplink_t *l)
{
    return l->reading;
}

void px_uplink_timeout(px_uplink_t *l, uint32_t ms)
{
    link_arm(l, ms);
}

void px_uplink_release(px_uplink_t *l, int reusable)
{
    if (l->state == L_CLOSING)
        return;
    l->requests++;
    if (reusable && l->state == L_OWNED && l->writing) {
        l->cb = NULL;
        l->ud = NULL;
        l->state = L_RELEASING;
        return;
    }
    if (!reusable || l->state != L_OWNED) {
        link_close(l);
        return;
    }
    pool_insert(l);
}

static void pool_insert(px_uplink_t *l)
{
    px_upstream_t *u = l->pool;
    /* A link someone waits for is kept whatever pool_max_idle says. */
    if (u->closing || l->generation != u->generation ||
        (u->idle_count >= u->cfg.pool_max_idle && !u->wait_head) ||
        (u->cfg.max_requests_per_conn && l->requests >= u->cfg.max_requests_per_conn)) {
        link_close(l);
        return;
    }
    l->cb = NULL;
    l->ud = NULL;
    l->state = L_IDLE;
    l->next = u->idle;
    l->prev = NULL;
    if (u->idle)
        u->idle->prev = l;
    u->idle = l;
    u->idle_count++;
    gauges(u);
    px_buf_free(&l->inflight);          /* idle links hold no buffers */
    if (!l->reading && uv_read_start(&l->h.stream, px_stream_no_alloc, read_cb) == 0)
        l->reading = 1;                 /* to notice the server closing it */
    link_arm(l, u->timeouts.keepalive_idle);
    queue_kick(u);
}

static void drop_idle(px_upstream_t *u)
{
    while (u->idle)
        link_close(u->idle);
}

void px_upstream_set_config(px_upstream_t *u, const px_upstream_config_t *cfg,
                            const px_timeouts_config_t *timeouts)
{
    if (cfg->addr.is_unix != u->cfg.addr.is_unix || cfg->addr.port != u->cfg.addr.port ||
        strcmp(cfg->addr.host, u->cfg.addr.host) != 0)
        u->addr_generation++;
    u->cfg = *cfg;
    u->timeouts = *timeouts;
    u->generation++;
    resolve(u);
    drop_idle(u);
    queue_kick(u);              /* a higher max_connections, a new timeout */
}

void px_upstream_close(px_upstream_t *u)
{
    u->closing = 1;
    drop_idle(u);
    if (u->wait_head)
        queue_kick(u);          /* each is told UV_ECANCELED, then the timer closes */
    else
        qtimer_close(u);
}
