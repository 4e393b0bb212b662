/* The shared replay store on Redis (see rstore.h). */
#include "sig/rstore.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "core/errors.h"
#include "core/log.h"

#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 2000
/* no reply for this long while a check timed out: the connection is dropped */
#define SILENCE_MS(s) ((s)->cfg.timeout_ms * 10 > 1000 ? (uint64_t)(s)->cfg.timeout_ms * 10 : 1000)

typedef struct req {
    struct req *prev, *next;      /* in `pending` (by deadline) or `ready` */
    struct req **list;            /* which one; NULL once delivered */
    px_rstore_cb cb;
    px_rstore_reply_cb rcb;       /* a command of px_rstore_command instead of a check */
    void *ud;
    uint64_t deadline;            /* loop time, ms */
    px_rstore_result_t result;    /* for `ready` */
    int in_redis;                 /* hiredis holds it as privdata until its reply callback */
} req_t;

struct px_rstore {
    uv_loop_t *loop;
    px_replay_store_config_t cfg;
    char where[300];              /* the address, for log lines */
    char who[64];                 /* "replay store: worker 3", for log lines */
    redisAsyncContext *ac;        /* NULL: down, waiting for the reconnect timer */
    int up;                       /* last state logged: 1 up, 0 down */
    int closing, open_handles;
    uint64_t backoff_ms;
    uint64_t last_heard;          /* loop time of the last reply or (re)connect attempt */
    uv_timer_t deadline_timer, reconnect_timer;
    req_t *pending, *pending_tail; /* sent, in deadline order (one timeout for all) */
    req_t *ready, *ready_tail;     /* answered without a round trip, delivered from the timer */
};

static atomic_uint_fast64_t counts[PX_RSTORE__COUNT];

static const char *const result_names[] = {
#define XX(name, str) str,
    PX_RSTORE_RESULTS(XX)
#undef XX
};

const char *px_rstore_result_name(px_rstore_result_t r)
{
    return (unsigned)r < PX_RSTORE__COUNT ? result_names[r] : "?";
}

void px_rstore_counts(uint64_t out[PX_RSTORE__COUNT])
{
    for (int i = 0; i < PX_RSTORE__COUNT; i++)
        out[i] = atomic_load(&counts[i]);
}

int px_rstore_fail_open(const px_rstore_t *s)
{
    return s->cfg.fail_open;
}

/* --- the request lists ------------------------------------------------------ */

static void list_add(req_t **head, req_t **tail, req_t *r)
{
    r->prev = *tail;
    r->next = NULL;
    if (*tail)
        (*tail)->next = r;
    else
        *head = r;
    *tail = r;
    r->list = head;
}

static void list_del(px_rstore_t *s, req_t *r)
{
    req_t **head = r->list, **tail = head == &s->pending ? &s->pending_tail : &s->ready_tail;
    if (r->prev)
        r->prev->next = r->next;
    else
        *head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        *tail = r->prev;
    r->list = NULL;
}

static void on_deadline(uv_timer_t *t);

static void arm_deadline(px_rstore_t *s)
{
    uint64_t now = uv_now(s->loop);
    if (s->closing)
        return;
    if (s->ready)
        uv_timer_start(&s->deadline_timer, on_deadline, 0, 0);
    else if (s->pending)
        uv_timer_start(&s->deadline_timer, on_deadline,
                       s->pending->deadline > now ? s->pending->deadline - now : 0, 0);
    else
        uv_timer_stop(&s->deadline_timer);
}

/* Hands the result to the owner once; the memory goes when hiredis is done too. */
static void deliver(px_rstore_t *s, req_t *r, px_rstore_result_t res)
{
    if (!r->list)
        return;
    list_del(s, r);
    if (r->rcb) {
        r->rcb(NULL, r->ud);
    } else {
        atomic_fetch_add(&counts[res], 1);
        r->cb(res, r->ud);
    }
    if (!r->in_redis)
        free(r);
}

static void deliver_ready(px_rstore_t *s, px_rstore_result_t only)
{
    while (s->ready)
        deliver(s, s->ready, only == PX_RSTORE__COUNT ? s->ready->result : only);
}

static void drop_silent(px_rstore_t *s);

static void on_deadline(uv_timer_t *t)
{
    px_rstore_t *s = t->data;
    uint64_t now = uv_now(s->loop);
    int timed_out = 0;

    deliver_ready(s, PX_RSTORE__COUNT);
    while (s->pending && s->pending->deadline <= now) {
        deliver(s, s->pending, PX_RSTORE_TIMEOUT);
        timed_out = 1;
    }
    /* Nothing heard for long while checks wait: a connect the network
     * swallows or a peer gone without a FIN would otherwise hold the
     * connection (and fail every check) until TCP gives up, minutes later. */
    if (timed_out && s->ac && now - s->last_heard >= SILENCE_MS(s))
        drop_silent(s);
    arm_deadline(s);
}

/* --- hiredis on the libuv loop ------------------------------------------------- */

/* Our own event hooks rather than hiredis's adapters/libuv.h: Debian 12's
 * (hiredis 0.14) drops a poll error (status < 0) on the floor, so a
 * connect refused after Redis died never reaches hiredis and the
 * connection hangs in "connecting" for good. On an error we hand hiredis
 * the events it asked for; its read or write then finds the error. */
typedef struct {
    redisAsyncContext *ac;        /* NULL once hiredis let go (cleanup) */
    uv_poll_t poll;
    int events;
} ev_t;

static void ev_poll(uv_poll_t *h, int status, int events)
{
    ev_t *e = h->data;
    int ev = status < 0 ? e->events : events;
    if (e->ac && (ev & UV_READABLE))
        redisAsyncHandleRead(e->ac);
    if (e->ac && (ev & UV_WRITABLE))
        redisAsyncHandleWrite(e->ac);
}

static void ev_set(ev_t *e, int add, int flag)
{
    e->events = add ? e->events | flag : e->events & ~flag;
    if (e->events)
        uv_poll_start(&e->poll, e->events, ev_poll);
    else
        uv_poll_stop(&e->poll);
}

static void ev_add_read(void *d) { ev_set(d, 1, UV_READABLE); }
static void ev_del_read(void *d) { ev_set(d, 0, UV_READABLE); }
static void ev_add_write(void *d) { ev_set(d, 1, UV_WRITABLE); }
static void ev_del_write(void *d) { ev_set(d, 0, UV_WRITABLE); }

static void ev_closed(uv_handle_t *h)
{
    free(h->data);
}

static void ev_cleanup(void *d)
{
    ev_t *e = d;
    e->ac = NULL;
    uv_close((uv_handle_t *)&e->poll, ev_closed);
}

static int ev_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    ev_t *e = calloc(1, sizeof *e);
    if (!e)
        return -1;
    if (uv_poll_init(loop, &e->poll, ac->c.fd) != 0) {
        free(e);
        return -1;
    }
    e->ac = ac;
    e->poll.data = e;
    ac->ev.data = e;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    return 0;
}

/* --- the connection ----------------------------------------------------------- */

static void set_up(px_rstore_t *s, int up, const char *why)
{
    if (up == s->up || s->closing)
        return;
    s->up = up;
    if (up)
        px_info("%s: redis at %s is available", s->who, s->where);
    else if (s->cfg.prefix[0])
        px_error("%s: redis at %s unavailable: %s (checks get the on_unavailable policy, %s, "
                 "until it is back)", s->who, s->where, why,
                 s->cfg.fail_open ? "fail_open" : "fail_closed");
    else
        px_error("%s: redis at %s unavailable: %s", s->who, s->where, why);
}

static void connect_now(px_rstore_t *s);
static void on_reconnect(uv_timer_t *t);

static void schedule_reconnect(px_rstore_t *s)
{
    s->ac = NULL;
    if (s->closing)
        return;
    uv_timer_start(&s->reconnect_timer, on_reconnect, s->backoff_ms, 0);
    s->backoff_ms = s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
}

static void drop_silent(px_rstore_t *s)
{
    redisAsyncContext *ac = s->ac;
    char why[96];

    snprintf(why, sizeof why, "no reply for %llu ms: reconnecting",
             (unsigned long long)(uv_now(s->loop) - s->last_heard));
    set_up(s, 0, why);
    ac->onDisconnect = NULL;          /* the reconnect is scheduled here, once */
    s->ac = NULL;
    redisAsyncFree(ac);               /* the checks still in it: on_reply with NULL */
    schedule_reconnect(s);
}

static void on_reconnect(uv_timer_t *t)
{
    connect_now(t->data);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    px_rstore_t *s = ac->data;
    if (status != REDIS_OK) {        /* hiredis frees ac after this */
        set_up(s, 0, ac->errstr[0] ? ac->errstr : "connection failed");
        schedule_reconnect(s);
        return;
    }
    if (!s->cfg.password[0]) {
        s->backoff_ms = BACKOFF_MIN_MS;
        set_up(s, 1, NULL);
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    px_rstore_t *s = ac->data;
    set_up(s, 0, status == REDIS_OK ? "disconnected" : ac->errstr[0] ? ac->errstr : "connection lost");
    schedule_reconnect(s);
}

static void on_auth(redisAsyncContext *ac, void *reply, void *priv)
{
    px_rstore_t *s = priv;
    redisReply *rep = reply;

    if (!rep)
        return;                       /* the connection went: on_disconnect/on_connect say so */
    if (rep->type == REDIS_REPLY_ERROR) {
        char why[300];
        snprintf(why, sizeof why, "AUTH refused%s%s: %s", s->cfg.username[0] ? " for user " : "",
                 s->cfg.username, rep->str);
        set_up(s, 0, why);
        redisAsyncDisconnect(ac);     /* the checks behind it get NOAUTH errors first */
        return;
    }
    s->backoff_ms = BACKOFF_MIN_MS;
    set_up(s, 1, NULL);
}

static void connect_now(px_rstore_t *s)
{
    redisAsyncContext *ac;

    if (s->closing)
        return;
    ac = s->cfg.addr.is_unix ? redisAsyncConnectUnix(s->cfg.addr.host)
                             : redisAsyncConnect(s->cfg.addr.host, s->cfg.addr.port);
    if (!ac) {
        set_up(s, 0, "out of memory");
        schedule_reconnect(s);
        return;
    }
    if (ac->err) {
        set_up(s, 0, ac->errstr);
        redisAsyncFree(ac);
        schedule_reconnect(s);
        return;
    }
    ac->data = s;
    if (ev_attach(ac, s->loop) != 0) {
        set_up(s, 0, "cannot attach to the event loop");
        redisAsyncFree(ac);
        schedule_reconnect(s);
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    s->ac = ac;
    s->last_heard = uv_now(s->loop);
    if (s->cfg.password[0]) {
        if (s->cfg.username[0])
            redisAsyncCommand(ac, on_auth, s, "AUTH %s %s", s->cfg.username, s->cfg.password);
        else
            redisAsyncCommand(ac, on_auth, s, "AUTH %s", s->cfg.password);
    }
}

/* --- checks ------------------------------------------------------------------ */

static void on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    req_t *r = priv;
    px_rstore_t *s = ac->data;
    redisReply *rep = reply;
    px_rstore_result_t res = PX_RSTORE_UNAVAILABLE;

    r->in_redis = 0;
    if (rep)
        s->last_heard = uv_now(s->loop);
    if (r->rcb) {
        if (rep && rep->type == REDIS_REPLY_ERROR)
            set_up(s, 0, rep->str);
        else if (rep)
            set_up(s, 1, NULL);
        if (r->list) {
            list_del(s, r);
            r->rcb(rep, r->ud);
        }
        free(r);
        arm_deadline(s);
        return;
    }
    if (!rep) {
        /* connection gone or store closing: on_disconnect logs it */
    } else if (rep->type == REDIS_REPLY_STATUS && !strcmp(rep->str, "OK")) {
        res = PX_RSTORE_OK;
        set_up(s, 1, NULL);           /* also after error replies (e.g. OOM, READONLY) */
    } else if (rep->type == REDIS_REPLY_NIL) {
        res = PX_RSTORE_REPLAYED;
        set_up(s, 1, NULL);
    } else if (rep->type == REDIS_REPLY_ERROR) {
        set_up(s, 0, rep->str);
    } else {
        set_up(s, 0, "unexpected reply to SET");
    }
    if (r->list)
        deliver(s, r, res);
    else
        free(r);                      /* its deadline passed: delivered already */
    arm_deadline(s);
}

static req_t *req_new(px_rstore_t *s, px_rstore_cb cb, px_rstore_reply_cb rcb, void *ud)
{
    req_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->cb = cb;
    r->rcb = rcb;
    r->ud = ud;
    r->deadline = uv_now(s->loop) + s->cfg.timeout_ms;
    return r;
}

/* sent: hiredis holds r until its reply; else it is answered UNAVAILABLE
 * from the timer (never from inside the caller). */
static int req_queue(px_rstore_t *s, req_t *r, int sent)
{
    if (sent) {
        r->in_redis = 1;
        list_add(&s->pending, &s->pending_tail, r);
    } else {
        r->result = PX_RSTORE_UNAVAILABLE;
        list_add(&s->ready, &s->ready_tail, r);
    }
    arm_deadline(s);
    return 0;
}

int px_rstore_check(px_rstore_t *s, const char *keyid, const char *nonce, int64_t ttl_ms,
                    px_rstore_cb cb, void *ud)
{
    req_t *r = req_new(s, cb, NULL, ud);

    if (!r)
        return PX_ENOMEM;
    if (ttl_ms < 1)
        ttl_ms = 1;
    return req_queue(s, r, s->ac && !s->closing &&
                     redisAsyncCommand(s->ac, on_reply, r, "SET %s%s:%s 1 NX PX %lld",
                                       s->cfg.prefix, keyid, nonce, (long long)ttl_ms) == REDIS_OK);
}

int px_rstore_command(px_rstore_t *s, int argc, const char **argv, const size_t *lens,
                      px_rstore_reply_cb cb, void *ud)
{
    req_t *r = req_new(s, NULL, cb, ud);

    if (!r)
        return PX_ENOMEM;
    return req_queue(s, r, s->ac && !s->closing &&
                     redisAsyncCommandArgv(s->ac, on_reply, r, argc, argv, lens) == REDIS_OK);
}

/* --- life cycle ------------------------------------------------------------ */

px_rstore_t *px_rstore_new(uv_loop_t *loop, const px_replay_store_config_t *cfg, int worker_id)
{
    char who[64];
    snprintf(who, sizeof who, "replay store: worker %d", worker_id);
    return px_rstore_open(loop, cfg, who);
}

px_rstore_t *px_rstore_open(uv_loop_t *loop, const px_replay_store_config_t *cfg, const char *who)
{
    px_rstore_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->loop = loop;
    s->cfg = *cfg;
    snprintf(s->who, sizeof s->who, "%s", who);
    s->up = -1;
    s->backoff_ms = BACKOFF_MIN_MS;
    if (cfg->addr.is_unix)
        snprintf(s->where, sizeof s->where, "unix:%s", cfg->addr.host);
    else
        snprintf(s->where, sizeof s->where, strchr(cfg->addr.host, ':') ? "[%s]:%u" : "%s:%u",
                 cfg->addr.host, cfg->addr.port);
    uv_timer_init(loop, &s->deadline_timer);
    uv_timer_init(loop, &s->reconnect_timer);
    s->deadline_timer.data = s->reconnect_timer.data = s;
    s->open_handles = 2;
    connect_now(s);
    return s;
}

static void on_handle_closed(uv_handle_t *h)
{
    px_rstore_t *s = h->data;
    if (--s->open_handles == 0)
        free(s);
}

void px_rstore_close(px_rstore_t *s)
{
    if (!s)
        return;
    s->closing = 1;
    if (s->ac)
        redisAsyncFree(s->ac);        /* every SET in flight: on_reply with NULL */
    s->ac = NULL;
    deliver_ready(s, PX_RSTORE_UNAVAILABLE);
    while (s->pending)
        deliver(s, s->pending, PX_RSTORE_UNAVAILABLE);
    uv_close((uv_handle_t *)&s->deadline_timer, on_handle_closed);
    uv_close((uv_handle_t *)&s->reconnect_timer, on_handle_closed);
}
