/* The shared replay store on Redis (see rstore.h). */
#include "sig/rstore.h"

#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "core/errors.h"
#include "core/log.h"
#include "net/tls.h"
#include "sig/rconn.h"

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
    int in_redis;                 /* the connection holds it until its reply callback */
} req_t;

struct px_rstore {
    uv_loop_t *loop;
    px_replay_store_config_t cfg;
    char where[300];              /* the address, for log lines */
    char who[64];                 /* "replay store: worker 3", for log lines */
    px_rconn_t *ac;               /* NULL: down, waiting for the reconnect timer */
    int up;                       /* last state logged: 1 up, 0 down */
    int closing, open_handles;    /* the timers and a resolve in flight */
    uint64_t backoff_ms;
    uint64_t last_heard;          /* loop time of the last reply or (re)connect attempt */
    uv_timer_t deadline_timer, reconnect_timer; /* reconnect_timer: also a sentinel's deadline */
    px_rconn_t *sc;               /* the sentinel being asked, or NULL */
    px_rconn_t *watch;            /* the sentinel that told us: subscribed to +switch-master */
    int asking;                   /* this attempt is asking a sentinel */
    int sentinel_turn;            /* which sentinel is asked (the next after a failure) */
    int addr_turn;                /* which of a name's addresses is tried */
    px_addr_t target;             /* the host of the current step */
    uv_getaddrinfo_t gai;
    px_tls_ctx_t *tls;            /* cfg.tls.on: the client context (NULL: it failed to load) */
    char tls_err[400];
    int resolving;
    req_t *pending, *pending_tail; /* sent, in deadline order (one timeout for all) */
    req_t *ready, *ready_tail;     /* answered without a round trip, delivered from the timer */
    uint64_t token_base, token_seq; /* a check's value: a random base plus a counter */
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

/* Hands the result to the owner once; the memory goes when the connection is done too. */
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

/* --- commands ------------------------------------------------------------------ */

/* Sends argc NUL-terminated strings. 0, or -1 (closing, or out of memory). */
static int send_cmd(px_rconn_t *c, px_rconn_reply_cb cb, void *priv, int argc, ...)
{
    const char *argv[8];
    size_t lens[8];
    va_list ap;

    va_start(ap, argc);
    for (int i = 0; i < argc; i++) {
        argv[i] = va_arg(ap, const char *);
        lens[i] = strlen(argv[i]);
    }
    va_end(ap);
    return px_rconn_command(c, argc, argv, lens, cb, priv);
}

/* --- the connection ----------------------------------------------------------- */

/* A (re)connect attempt: [ask a sentinel for the master] -> [resolve the
 * host, off the loop] -> connect -> [AUTH] -> [ROLE, with sentinels]. A
 * failed step logs why, moves on to the next sentinel or address of the
 * name, and starts over after the backoff. */

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

static void attempt(px_rstore_t *s);
static void on_reconnect(uv_timer_t *t);

static void schedule_reconnect(px_rstore_t *s)
{
    s->ac = NULL;
    if (s->closing)
        return;
    uv_timer_start(&s->reconnect_timer, on_reconnect, s->backoff_ms, 0);
    s->backoff_ms = s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
}

static void on_reconnect(uv_timer_t *t)
{
    attempt(t->data);
}

/* A step of the attempt failed: the next one tries the name's next address. */
static void step_failed(px_rstore_t *s, const char *why)
{
    set_up(s, 0, why);
    s->addr_turn++;
    schedule_reconnect(s);
}

static void ready(px_rstore_t *s)
{
    s->backoff_ms = BACKOFF_MIN_MS;
    set_up(s, 1, NULL);
}

/* Drops the connection to Redis now (its checks in flight: on_reply with NULL). */
static void drop_master(px_rstore_t *s, const char *why)
{
    px_rconn_t *ac = s->ac;

    set_up(s, 0, why);
    s->ac = NULL;                     /* the reconnect is scheduled here, once */
    px_rconn_close(ac);
    schedule_reconnect(s);
}

static void drop_silent(px_rstore_t *s)
{
    char why[96];

    snprintf(why, sizeof why, "no reply for %llu ms: reconnecting",
             (unsigned long long)(uv_now(s->loop) - s->last_heard));
    drop_master(s, why);
}

static void unref(px_rstore_t *s)
{
    if (--s->open_handles == 0) {
        if (s->tls)
            px_tls_ctx_unref(s->tls);   /* connections hold their own reference */
        free(s);
    }
}

static void on_event(px_rconn_t *c, px_rconn_event_t ev, const char *why);

/* With TLS the name verified is tls.server_name, else the host name the
 * server was reached by (an address alone: the CA's signature only). */
static px_rconn_t *open_conn(px_rstore_t *s, const char *ip, uint16_t port, int is_unix,
                             char *why, size_t whylen)
{
    const char *name = s->cfg.tls.server_name[0] ? s->cfg.tls.server_name
                       : s->target.is_name ? s->target.host : NULL;
    return px_rconn_open(s->loop, ip, port, is_unix, s->tls, name, on_event, s, why, whylen);
}

/* --- the master, or the one server ---------------------------------------------- */

static void master_event(px_rstore_t *s, px_rconn_event_t ev, const char *why)
{
    if (ev == PX_RCONN_CONNECT_FAILED) {
        step_failed(s, why);
    } else if (ev == PX_RCONN_CLOSED) {
        set_up(s, 0, why);
        schedule_reconnect(s);
    } else if (!s->cfg.password[0] && !s->cfg.sentinel_count) {
        ready(s);
    }
}

static void on_auth(px_rconn_t *ac, redisReply *rep, void *priv)
{
    px_rstore_t *s = priv;

    if (!rep)
        return;                       /* the connection went: its event says so */
    if (rep->type == REDIS_REPLY_ERROR) {
        char why[300];
        snprintf(why, sizeof why, "AUTH refused%s%s: %s", s->cfg.username[0] ? " for user " : "",
                 s->cfg.username, rep->str);
        set_up(s, 0, why);
        px_rconn_disconnect(ac);      /* the checks behind it get NOAUTH errors first */
        return;
    }
    if (!s->cfg.sentinel_count)
        ready(s);
}

/* The sentinels may still name a master that has just been demoted: ROLE
 * says (Redis's guidelines for Sentinel clients). */
static void on_role(px_rconn_t *ac, redisReply *rep, void *priv)
{
    px_rstore_t *s = priv;

    if (!rep || s->ac != ac)
        return;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 &&
        rep->element[0]->type == REDIS_REPLY_STRING && !strcmp(rep->element[0]->str, "master")) {
        ready(s);
        return;
    }
    set_up(s, 0, rep->type == REDIS_REPLY_ERROR ? rep->str
                 : "not the master (ROLE): asking the sentinels again");
    px_rconn_disconnect(ac);
}

static void connect_master(px_rstore_t *s, const char *ip)
{
    char why[200];
    px_rconn_t *ac;

    if (s->cfg.sentinel_count)
        snprintf(s->where, sizeof s->where, strchr(ip, ':') ? "master %s at [%s]:%u" : "master %s at %s:%u",
                 s->cfg.master_name, ip, s->target.port);
    else if (s->target.is_name)
        snprintf(s->where, sizeof s->where, "%s:%u (%s)", s->target.host, s->target.port, ip);
    if (!(ac = open_conn(s, ip, s->target.port, s->target.is_unix, why, sizeof why))) {
        step_failed(s, why);
        return;
    }
    s->ac = ac;
    s->last_heard = uv_now(s->loop);
    /* queued before the connect completes; a failure shows as the event */
    if (s->cfg.password[0]) {
        if (s->cfg.username[0])
            send_cmd(ac, on_auth, s, 3, "AUTH", s->cfg.username, s->cfg.password);
        else
            send_cmd(ac, on_auth, s, 2, "AUTH", s->cfg.password);
    }
    if (s->cfg.sentinel_count)
        send_cmd(ac, on_role, s, 1, "ROLE");
}

/* --- Sentinel ------------------------------------------------------------------ */

static void resolve(px_rstore_t *s);

/* Lets go of a sentinel connection (also from inside its callbacks). */
static void ctx_drop(px_rconn_t **pc)
{
    px_rconn_t *c = *pc;
    *pc = NULL;
    px_rconn_close(c);                /* its pending replies: NULL, ignored */
}

static void sentinel_drop(px_rstore_t *s)
{
    ctx_drop(&s->sc);
}

/* +switch-master "<name> <old ip> <old port> <new ip> <new port>": the
 * sentinels moved the master. The connection to the old one is closed
 * (its checks in flight still get their replies) and the next attempt
 * asks them again. Without this, the old master would keep taking writes
 * until the sentinels demote it (READONLY), seconds later. */
static void on_switch_master(px_rconn_t *ac, redisReply *rep, void *priv)
{
    px_rstore_t *s = priv;
    size_t n = strlen(s->cfg.master_name);
    const char *msg;

    if (!rep || s->watch != ac || rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 ||
        rep->element[0]->type != REDIS_REPLY_STRING || strcmp(rep->element[0]->str, "message") ||
        rep->element[2]->type != REDIS_REPLY_STRING)
        return;                       /* the subscription's confirmation, or not ours */
    msg = rep->element[2]->str;
    if (strncmp(msg, s->cfg.master_name, n) || msg[n] != ' ')
        return;
    px_info("%s: the sentinels moved master %s: %.200s", s->who,
            s->cfg.master_name, msg + n + 1);
    if (s->ac) {
        set_up(s, 0, "the sentinels moved the master (+switch-master)");
        px_rconn_disconnect(s->ac);
    }
}

static void sentinel_failed(px_rstore_t *s, const char *what, const char *detail)
{
    char why[400];
    const px_addr_t *a = &s->cfg.sentinels[s->sentinel_turn % s->cfg.sentinel_count];

    snprintf(why, sizeof why, "sentinel %s:%u: %s%s", a->host, a->port, what, detail ? detail : "");
    sentinel_drop(s);
    s->sentinel_turn++;               /* ask the next one */
    step_failed(s, why);
}

static void on_sentinel_timeout(uv_timer_t *t)
{
    sentinel_failed(t->data, "no answer", NULL);
}

static void on_sentinel_auth(px_rconn_t *ac, redisReply *rep, void *priv)
{
    px_rstore_t *s = priv;
    if (rep && s->sc == ac && rep->type == REDIS_REPLY_ERROR)
        sentinel_failed(s, "AUTH refused: ", rep->str);
}

/* SENTINEL get-master-addr-by-name: [host, port], or nil for a name it
 * does not monitor. */
static void on_master_addr(px_rconn_t *ac, redisReply *rep, void *priv)
{
    px_rstore_t *s = priv;
    char text[220], err[200];
    px_addr_t m;

    if (!rep || s->sc != ac)
        return;
    if (rep->type == REDIS_REPLY_NIL) {
        sentinel_failed(s, "does not monitor a master named ", s->cfg.master_name);
        return;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        sentinel_failed(s, rep->str, NULL);
        return;
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
        rep->element[0]->type != REDIS_REPLY_STRING || rep->element[1]->type != REDIS_REPLY_STRING ||
        strlen(rep->element[0]->str) > 200 || strlen(rep->element[1]->str) > 5) {
        sentinel_failed(s, "unexpected reply to SENTINEL get-master-addr-by-name", NULL);
        return;
    }
    snprintf(text, sizeof text, strchr(rep->element[0]->str, ':') ? "[%s]:%s" : "%s:%s",
             rep->element[0]->str, rep->element[1]->str);
    if (px_addr_parse_name(text, &m, err, sizeof err) != 0) {
        sentinel_failed(s, "unusable master address: ", err);
        return;
    }
    /* this connection now only reports failovers */
    s->watch = s->sc;
    s->sc = NULL;
    {
        const char *argv[] = { "SUBSCRIBE", "+switch-master" };
        const size_t lens[] = { 9, 14 };
        if (px_rconn_subscribe(s->watch, 2, argv, lens, on_switch_master, s) != 0)
            ctx_drop(&s->watch);
    }
    uv_timer_stop(&s->reconnect_timer);
    s->asking = 0;
    s->target = m;
    resolve(s);
}

static void ask_sentinel(px_rstore_t *s, const char *ip)
{
    char why[200];
    px_rconn_t *sc = open_conn(s, ip, s->target.port, 0, why, sizeof why);

    if (!sc) {
        sentinel_failed(s, why, NULL);
        return;
    }
    s->sc = sc;
    if (s->cfg.sentinel_password[0])
        send_cmd(sc, on_sentinel_auth, s, 2, "AUTH", s->cfg.sentinel_password);
    send_cmd(sc, on_master_addr, s, 3, "SENTINEL", "get-master-addr-by-name", s->cfg.master_name);
    uv_timer_start(&s->reconnect_timer, on_sentinel_timeout, SILENCE_MS(s), 0);
}

/* Every connection's events: which one is told by the pointer. A
 * connection the store let go of (closed) sends none. */
static void on_event(px_rconn_t *c, px_rconn_event_t ev, const char *why)
{
    px_rstore_t *s = px_rconn_data(c);

    if (c == s->ac) {
        master_event(s, ev, why);
    } else if (c == s->sc && ev != PX_RCONN_CONNECTED) {
        s->sc = NULL;
        sentinel_failed(s, ev == PX_RCONN_CLOSED ? "connection lost: " : why,
                        ev == PX_RCONN_CLOSED ? why : NULL);
    } else if (c == s->watch && ev == PX_RCONN_CLOSED) {
        s->watch = NULL;
        px_warn("%s: lost the sentinel connection that reports failovers (%s; a failover is "
                "then noticed when the old master drops the connection or answers READONLY)",
                s->who, why);
    }
}

/* --- names: resolved on the libuv pool, never on the loop ------------------------ */

static void connect_ip(px_rstore_t *s, const char *ip)
{
    if (s->asking)
        ask_sentinel(s, ip);
    else
        connect_master(s, ip);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    px_rstore_t *s = req->data;
    char ip[INET6_ADDRSTRLEN] = "", why[400];
    int n = 0, pick;

    for (struct addrinfo *a = res; a; a = a->ai_next)
        n++;
    pick = n ? s->addr_turn % n : 0;
    for (struct addrinfo *a = res; a && !ip[0]; a = a->ai_next, pick--)
        if (pick == 0)
            uv_inet_ntop(a->ai_family, a->ai_family == AF_INET6
                         ? (void *)&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr
                         : (void *)&((struct sockaddr_in *)a->ai_addr)->sin_addr, ip, sizeof ip);
    uv_freeaddrinfo(res);
    s->resolving = 0;
    if (s->closing) {
        unref(s);
        return;
    }
    s->open_handles--;                /* the store is open: never the last reference */
    if (status != 0 || !ip[0]) {
        snprintf(why, sizeof why, "cannot resolve %s: %s", s->target.host,
                 status ? uv_strerror(status) : "no address");
        if (s->asking)
            sentinel_failed(s, why, NULL);
        else
            step_failed(s, why);
        return;
    }
    connect_ip(s, ip);
}

static void resolve(px_rstore_t *s)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    int rc;

    if (!s->target.is_name) {
        connect_ip(s, s->target.host);
        return;
    }
    s->gai.data = s;
    if ((rc = uv_getaddrinfo(s->loop, &s->gai, on_resolved, s->target.host, NULL, &hints)) != 0) {
        char why[400];
        snprintf(why, sizeof why, "cannot resolve %s: %s", s->target.host, uv_strerror(rc));
        step_failed(s, why);
        return;
    }
    s->resolving = 1;
    s->open_handles++;                /* the request keeps the store's memory */
}

static void attempt(px_rstore_t *s)
{
    if (s->closing)
        return;
    s->asking = s->cfg.sentinel_count > 0;
    ctx_drop(&s->watch);
    if (s->cfg.tls.on && !s->tls) {   /* never plain instead */
        step_failed(s, s->tls_err);
        return;
    }
    s->target = s->asking ? s->cfg.sentinels[s->sentinel_turn % s->cfg.sentinel_count] : s->cfg.addr;
    resolve(s);
}

/* --- checks ------------------------------------------------------------------ */

static void on_reply(px_rconn_t *ac, redisReply *rep, void *priv)
{
    req_t *r = priv;
    px_rstore_t *s = px_rconn_data(ac);
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
        /* a replica now (failover, or a Service that moved): find the master */
        if (!strncmp(rep->str, "READONLY", 8) && s->ac == ac)
            px_rconn_disconnect(ac);
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

/* sent: the connection holds r until its reply; else it is answered UNAVAILABLE
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

static char *key_of(const px_rstore_t *s, const char *keyid, const char *nonce)
{
    size_t n = strlen(s->cfg.prefix) + strlen(keyid) + strlen(nonce) + 2;
    char *key = malloc(n);
    if (key)
        snprintf(key, n, "%s%s:%s", s->cfg.prefix, keyid, nonce);
    return key;
}

/* SET <prefix><keyid>:<nonce> <token> NX PX <ttl>. */
static int send_set(px_rstore_t *s, req_t *r, const char *keyid, const char *nonce, int64_t ttl_ms,
                    const char *token)
{
    char ttl[24], *key = key_of(s, keyid, nonce);
    int rc;

    if (!key)
        return -1;
    snprintf(ttl, sizeof ttl, "%lld", (long long)ttl_ms);
    rc = send_cmd(s->ac, on_reply, r, 6, "SET", key, token, "NX", "PX", ttl);
    free(key);
    return rc;
}

int px_rstore_check(px_rstore_t *s, const char *keyid, const char *nonce, int64_t ttl_ms,
                    char token[PX_RSTORE_TOKEN_LEN], px_rstore_cb cb, void *ud)
{
    req_t *r = req_new(s, cb, NULL, ud);

    if (!r)
        return PX_ENOMEM;
    if (ttl_ms < 1)
        ttl_ms = 1;
    /* a decimal in 0..2^63-1: Redis keeps it as an integer inside the key's
     * object (no string allocated), ~50 bytes a key less than 32 hex */
    snprintf(token, PX_RSTORE_TOKEN_LEN, "%lld",
             (long long)((s->token_base + ++s->token_seq) & INT64_MAX));
    return req_queue(s, r, s->ac && !s->closing &&
                     send_set(s, r, keyid, nonce, ttl_ms, token) == 0);
}

static void released(redisReply *rep, void *ud)
{
    px_rstore_t *s = ud;
    static atomic_int_fast64_t logged;   /* time(): one line per second at most */
    int64_t now = (int64_t)time(NULL);

    if (rep && rep->type == REDIS_REPLY_INTEGER)
        return;                       /* 1 deleted, 0 recorded again since by another request */
    if (atomic_exchange(&logged, now) != now)
        px_warn("%s: a refused request's nonce could not be given back (%s): it stays used "
                "until it expires", s->who,
                !rep ? "no answer" : rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
}

void px_rstore_release(px_rstore_t *s, const char *keyid, const char *nonce, const char *token)
{
    static const char script[] =
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end "
        "return 0";
    char *key;

    if (!s || !token[0] || !(key = key_of(s, keyid, nonce)))
        return;
    const char *argv[] = { "EVAL", script, "1", key, token };
    size_t lens[] = { 4, sizeof script - 1, 1, strlen(key), strlen(token) };
    if (px_rstore_command(s, 5, argv, lens, released, s) != 0)
        released(NULL, s);
    free(key);
}

int px_rstore_command(px_rstore_t *s, int argc, const char **argv, const size_t *lens,
                      px_rstore_reply_cb cb, void *ud)
{
    req_t *r = req_new(s, NULL, cb, ud);

    if (!r)
        return PX_ENOMEM;
    return req_queue(s, r, s->ac && !s->closing &&
                     px_rconn_command(s->ac, argc, argv, lens, on_reply, r) == 0);
}

/* --- life cycle ------------------------------------------------------------ */

/* Hybrid post-quantum key exchange first, where Redis's TLS library has it;
 * classical otherwise. */
static px_tls_ctx_t *tls_ctx_new(const px_replay_store_config_t *cfg, char *err, size_t errlen)
{
    static const uint16_t groups[] = { 0x11EC, 29, 23 };
    px_tls_client_opts_t o = { .groups = groups, .group_count = 3,
                               .ca_file = cfg->tls.ca_file,
                               .cert_file = cfg->tls.cert[0] ? cfg->tls.cert : NULL,
                               .key_file = cfg->tls.key[0] ? cfg->tls.key : NULL };
    char why[300];
    px_tls_ctx_t *c = px_tls_ctx_client_new(&o, why, sizeof why);

    if (!c)
        snprintf(err, errlen, "signatures.replay_store.tls: %s", why);
    return c;
}

int px_rstore_tls_check(const px_replay_store_config_t *cfg, char *err, size_t errlen)
{
    px_tls_ctx_t *c;

    if (cfg->type != PX_RSTORE_REDIS || !cfg->tls.on)
        return 0;
    if (!(c = tls_ctx_new(cfg, err, errlen)))
        return PX_ECONFIG;
    px_tls_ctx_unref(c);
    return 0;
}

/* Checked at load (px_rstore_tls_check); a failure here (a file changed
 * since) keeps the store unavailable. */
static void tls_open(px_rstore_t *s)
{
    if (!(s->tls = tls_ctx_new(&s->cfg, s->tls_err, sizeof s->tls_err)))
        px_error("%s: %s: not connecting without it", s->who, s->tls_err);
}

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
    if (getrandom(&s->token_base, sizeof s->token_base, 0) != sizeof s->token_base)
        s->token_base = (uint64_t)time(NULL) << 32 ^ (uint64_t)getpid() << 16 ^ (uintptr_t)s;
    if (cfg->sentinel_count)
        snprintf(s->where, sizeof s->where, "master %s (from the sentinels)", cfg->master_name);
    else if (cfg->addr.is_unix)
        snprintf(s->where, sizeof s->where, "unix:%s", cfg->addr.host);
    else
        snprintf(s->where, sizeof s->where, strchr(cfg->addr.host, ':') ? "[%s]:%u" : "%s:%u",
                 cfg->addr.host, cfg->addr.port);
    uv_timer_init(loop, &s->deadline_timer);
    uv_timer_init(loop, &s->reconnect_timer);
    s->deadline_timer.data = s->reconnect_timer.data = s;
    s->open_handles = 2;
    if (cfg->tls.on)
        tls_open(s);
    attempt(s);
    return s;
}

static void on_handle_closed(uv_handle_t *h)
{
    unref(h->data);
}

void px_rstore_close(px_rstore_t *s)
{
    if (!s)
        return;
    s->closing = 1;
    if (s->ac)
        px_rconn_close(s->ac);        /* every SET in flight: on_reply with NULL */
    s->ac = NULL;
    sentinel_drop(s);
    ctx_drop(&s->watch);
    if (s->resolving)
        uv_cancel((uv_req_t *)&s->gai);   /* on_resolved still runs (UV_EAI_CANCELED) */
    deliver_ready(s, PX_RSTORE_UNAVAILABLE);
    while (s->pending)
        deliver(s, s->pending, PX_RSTORE_UNAVAILABLE);
    uv_close((uv_handle_t *)&s->deadline_timer, on_handle_closed);
    uv_close((uv_handle_t *)&s->reconnect_timer, on_handle_closed);
}
