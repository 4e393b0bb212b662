/* Shared session-ticket keys on the main loop (see ticketsync.h). */
#include "proxy/ticketsync.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "core/log.h"
#include "net/tickets.h"
#include "sig/rstore.h"

/* KEYS: lease, current, previous. ARGV: a fresh key, this replica's name,
 * the rotation period and the keys' lifetime (ms). Atomic in Redis: the
 * replica whose SET NX takes the lease (or any, when the current key is
 * gone) moves current to previous and installs its key; every caller gets
 * {rotated, current, previous}. */
static const char script[] =
    "local cur = redis.call('GET', KEYS[2])\n"
    "local r = 0\n"
    "if redis.call('SET', KEYS[1], ARGV[2], 'NX', 'PX', ARGV[3]) or not cur then\n"
    "  if cur then redis.call('SET', KEYS[3], cur, 'PX', ARGV[4]) end\n"
    "  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[4])\n"
    "  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])\n"
    "  r = 1\n"
    "end\n"
    "return {r, redis.call('GET', KEYS[2]), redis.call('GET', KEYS[3])}\n";

static atomic_uint_fast64_t updates, failures;

void px_ticketsync_counts(uint64_t *u, uint64_t *f)
{
    *u = atomic_load(&updates);
    *f = atomic_load(&failures);
}

struct px_ticketsync {
    uv_timer_t timer;
    px_ticket_keys_config_t tk;
    uint32_t rotation_s;
    px_rstore_t *rs;
    int busy;                          /* a script in flight */
    int failing;                       /* the last attempt failed (logged once) */
    int stopping;
    char owner[96];
    char k_lease[96], k_cur[96], k_prev[96];
};

static void poll_file(px_ticketsync_t *t)
{
    char err[600];
    int rc = px_tickets_file_poll(err, sizeof err);
    if (rc > 0)
        atomic_fetch_add(&updates, 1);
    else if (rc < 0)
        atomic_fetch_add(&failures, 1);
    if (rc > 0)
        px_info("tls.ticket_keys: %d key(s) from %s in use", px_tickets_count(), t->tk.file);
    else if (rc < 0)
        px_error("%s; keeping the %d ticket key(s) in use", err, px_tickets_count());
}

static void redis_failed(px_ticketsync_t *t, const char *why)
{
    atomic_fetch_add(&failures, 1);
    if (!t->failing)
        px_error("tls.ticket_keys: redis: %s; keeping the %d ticket key(s) in use", why,
                 px_tickets_count());
    t->failing = 1;
}

/* A bulk string of exactly one key, or NULL. */
static const redisReply *key_of(const redisReply *r)
{
    return r->type == REDIS_REPLY_STRING && r->len == PX_TICKETS_KEY_SZ ? r : NULL;
}

static void on_script(redisReply *rep, void *ud)
{
    px_ticketsync_t *t = ud;
    unsigned char keys[2][PX_TICKETS_KEY_SZ];
    const redisReply *cur = NULL, *prev = NULL;
    int n = 0, rc;

    t->busy = 0;
    if (t->stopping)
        return;
    if (!rep) {
        redis_failed(t, "unavailable or slower than timeout_ms");
        return;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        redis_failed(t, rep->str);
        return;
    }
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 3) {
        cur = key_of(rep->element[1]);
        prev = key_of(rep->element[2]);
    }
    if (!cur) {
        redis_failed(t, "unexpected reply to the key script (no 32-byte current key)");
        goto out;
    }
    memcpy(keys[n++], cur->str, PX_TICKETS_KEY_SZ);
    if (prev && memcmp(prev->str, cur->str, PX_TICKETS_KEY_SZ) != 0)
        memcpy(keys[n++], prev->str, PX_TICKETS_KEY_SZ);
    if (rep->element[0]->type == REDIS_REPLY_INTEGER && rep->element[0]->integer == 1)
        px_info("tls.ticket_keys: rotated the shared key in redis (%scurrent)", t->tk.redis_prefix);
    rc = px_tickets_install((const unsigned char (*)[PX_TICKETS_KEY_SZ])keys, n);
    if (rc > 0)
        atomic_fetch_add(&updates, 1);
    if (t->failing || rc > 0)
        px_info("tls.ticket_keys: %d key(s) from redis in use", n);
    t->failing = 0;
    px_tickets_wipe(keys, sizeof keys);
out:
    /* the reply held keys: hiredis frees it without wiping */
    for (size_t i = 1; rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++)
        if (rep->element[i]->type == REDIS_REPLY_STRING)
            px_tickets_wipe(rep->element[i]->str, rep->element[i]->len);
}

static void run_script(px_ticketsync_t *t)
{
    unsigned char fresh[PX_TICKETS_KEY_SZ];
    char lease_ms[24], ttl_ms[24];
    const char *argv[10];
    size_t lens[10];

    if (t->busy)
        return;
    if (getrandom(fresh, sizeof fresh, 0) != (ssize_t)sizeof fresh) {
        redis_failed(t, "no random bytes for a new key");
        return;
    }
    snprintf(lease_ms, sizeof lease_ms, "%llu", (unsigned long long)t->rotation_s * 1000);
    snprintf(ttl_ms, sizeof ttl_ms, "%llu", (unsigned long long)t->rotation_s * 2000);
    argv[0] = "EVAL";
    argv[1] = script;
    argv[2] = "3";
    argv[3] = t->k_lease;
    argv[4] = t->k_cur;
    argv[5] = t->k_prev;
    argv[6] = (const char *)fresh;
    argv[7] = t->owner;
    argv[8] = lease_ms;
    argv[9] = ttl_ms;
    for (int i = 0; i < 10; i++)
        lens[i] = i == 6 ? sizeof fresh : strlen(argv[i]);
    if (px_rstore_command(t->rs, 10, argv, lens, on_script, t) == 0)
        t->busy = 1;
    px_tickets_wipe(fresh, sizeof fresh);
}

static void on_tick(uv_timer_t *h)
{
    px_ticketsync_t *t = h->data;
    if (t->tk.source == PX_TKEYS_FILE)
        poll_file(t);
    else
        run_script(t);
}

px_ticketsync_t *px_ticketsync_start(uv_loop_t *loop, const px_config_t *cfg)
{
    px_ticketsync_t *t;
    px_replay_store_config_t rc;
    char host[64] = "";

    if (!cfg->tls.session_tickets || cfg->tls.ticket_keys.source == PX_TKEYS_LOCAL)
        return NULL;
    if (!(t = calloc(1, sizeof *t))) {
        px_error("tls.ticket_keys: out of memory: the shared keys are not followed");
        return NULL;
    }
    t->tk = cfg->tls.ticket_keys;
    t->rotation_s = cfg->tls.ticket_key_rotation_s;
    if (t->tk.source == PX_TKEYS_REDIS) {
        rc = cfg->sig.replay_store;
        rc.prefix[0] = '\0';           /* not a replay store: no policy in its log lines */
        gethostname(host, sizeof host - 1);
        snprintf(t->owner, sizeof t->owner, "%s:%ld", host, (long)getpid());
        snprintf(t->k_lease, sizeof t->k_lease, "%slease", t->tk.redis_prefix);
        snprintf(t->k_cur, sizeof t->k_cur, "%scurrent", t->tk.redis_prefix);
        snprintf(t->k_prev, sizeof t->k_prev, "%sprevious", t->tk.redis_prefix);
        if (!(t->rs = px_rstore_open(loop, &rc, "tls.ticket_keys"))) {
            px_error("tls.ticket_keys: out of memory: the shared keys are not followed");
            free(t);
            return NULL;
        }
    }
    uv_timer_init(loop, &t->timer);
    t->timer.data = t;
    uv_timer_start(&t->timer, on_tick, t->tk.source == PX_TKEYS_REDIS ? 0 : t->tk.check_interval_ms,
                   t->tk.check_interval_ms);
    return t;
}

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

void px_ticketsync_stop(px_ticketsync_t *t)
{
    if (!t)
        return;
    t->stopping = 1;
    px_rstore_close(t->rs);            /* a script in flight: on_script(NULL) now */
    t->rs = NULL;
    uv_close((uv_handle_t *)&t->timer, on_closed);
}
