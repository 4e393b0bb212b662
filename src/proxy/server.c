/* Workers, listeners, signals, drain and reload (see server.h). */
#include "proxy/server.h"

#include <errno.h>
#include <malloc.h>
#if defined(__SANITIZE_ADDRESS__)
/* The sanitizer allocator's counters (GCC 12 ships no header declaring them). */
size_t __sanitizer_get_current_allocated_bytes(void);
size_t __sanitizer_get_heap_size(void);
#endif
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <time.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "http/h2_mem.h"
#include "net/accept.h"
#include "proxy/admin.h"
#include "sig/sigflow.h"
#include "core/errors.h"
#include "core/log.h"
#include "sig/rstore.h"
#include "proxy/ticketsync.h"
#include "net/tickets.h"
#include "net/tls.h"
#include "proxy/upstream.h"
#include "proxy/h2c_pool.h"

/* What a reload hands to the workers: a config and its TLS context, freed
 * when the last worker has moved on to a newer one. */
typedef struct {
    px_config_t *cfg;
    px_tls_ctx_t *tls;
    px_sigctx_t *sig;
    atomic_int refs;
} gen_t;

typedef struct {
    px_server_t *srv;
    int id;
    uv_thread_t thread;
    uv_loop_t loop;
    uv_poll_t accept_poll;             /* the data port's listening socket (accept.h) */
    uv_timer_t accept_retry;           /* no descriptor and no spare: accept again later */
    px_spares_t spares;
    px_ratelimit_t fd_log;
    uint64_t fd_short_until;           /* loop ms: ran out of descriptors lately */
    uv_async_t wake;
    uv_timer_t drain_timer;
    uv_prepare_t log_flush;            /* access-log lines leave once per loop turn */
    int listen_fd;
    int listening, draining, stopped;
    gen_t *gen;                        /* the generation this worker uses */
    px_conn_env_t env;
    px_metrics_t metrics;              /* written by this worker only */
} worker_t;

struct px_server {
    worker_t *workers;
    int nworkers;
    unsigned crypto_threads;            /* libuv pool size (px_sig_pool_setup) */
    uv_mutex_t lock;                   /* guards gen and the commands below */
    gen_t *gen;                        /* newest */
    int cmd_drain;
    uv_loop_t loop;                    /* main thread: signals */
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_async_t worker_done;            /* a worker's loop has ended */
    atomic_int workers_done;
    atomic_int draining;
    int started, loop_ready, main_closed;
    int exit_code;
    px_admin_t *admin;
    px_ticketsync_t *tickets;          /* shared ticket keys followed (file, redis) */
    /* readiness: the model server accepts connections, probed every
     * PROBE_INTERVAL_MS and when /readyz finds the last result older than
     * PROBE_CACHE_MS */
    uv_timer_t probe_timer;
    uv_timer_t probe_tick;
    union { uv_tcp_t tcp; uv_pipe_t pipe; uv_handle_t handle; } probe;
    uv_connect_t probe_req;
    int probe_busy, upstream_up;
    uint64_t probe_time;                /* uv_now of the last result */
    struct ready_waiter *waiters;
    char upstream_why[128];
    uint64_t reloads_ok, reloads_failed, config_time;
};

#define PROBE_INTERVAL_MS 2000
#define PROBE_CACHE_MS 1000
#define PROBE_TIMEOUT_MS 2000

struct ready_waiter {
    void *token;
    px_admin_ready_done_t done;
    struct ready_waiter *next;
};

static gen_t *gen_new(px_config_t *cfg, px_tls_ctx_t *tls, px_sigctx_t *sig)
{
    gen_t *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->cfg = cfg;
    g->tls = tls;
    g->sig = sig;
    atomic_init(&g->refs, 1);
    return g;
}

static gen_t *gen_ref(gen_t *g)
{
    atomic_fetch_add(&g->refs, 1);
    return g;
}

static void gen_unref(gen_t *g)
{
    if (g && atomic_fetch_sub(&g->refs, 1) == 1) {
        px_tls_ctx_unref(g->tls);
        px_sigctx_unref(g->sig);
        px_config_free(g->cfg);
        free(g);
    }
}

/* A listening socket of our own so SO_REUSEPORT can be set before bind:
 * each worker gets one and the kernel spreads connections among them. */
static int listen_socket(const px_addr_t *a, char *err, size_t errlen)
{
    int fd = px_listen(a, 1, 1024);
    if (fd == -EINVAL)
        snprintf(err, errlen, "listen: %s is not a numeric address", a->host);
    else if (fd < 0)
        snprintf(err, errlen, "listen: cannot listen on %s:%u: %s", a->host, a->port, strerror(-fd));
    return fd < 0 ? -1 : fd;
}

/* --- workers ---------------------------------------------------------------------- */


static void on_listener_closed(uv_handle_t *h)
{
    (void)h;
}

#define ACCEPT_BATCH 64          /* then let the loop serve the rest */
#define ACCEPT_RETRY_MS 100
#define FD_SHORT_MS 1000         /* after running out, accept only with headroom this long */
#define FD_HEADROOM 4            /* descriptors left for the admin port and upstream links */

static void accept_ready(uv_poll_t *p, int status, int events);

static void accept_resume(uv_timer_t *t)
{
    worker_t *w = t->data;
    if (w->listening)
        uv_poll_start(&w->accept_poll, UV_READABLE, accept_ready);
}

/* Out of descriptors: close a queued connection at once through the spare
 * (the client sees it end instead of waiting), count and log it. 1 to go
 * on accepting, 0 to stop: nothing queued, or no spare and no descriptor,
 * in which case accepting pauses rather than spin on the queue. */
static int drop_queued(worker_t *w, int err)
{
    uint64_t held = 0;
    int r = px_accept_drop(w->listen_fd, &w->spares);

    if (r > 0) {
        px_m_inc(&w->metrics.accept_fd_exhausted);
        if (px_ratelimit(&w->fd_log, uv_now(&w->loop), 1000, &held))
            px_warn("worker %d: accept: %s: closing new connections until descriptors are free "
                    "(%llu more since the last report)", w->id, strerror(err),
                    (unsigned long long)held);
        return 1;
    }
    if (r < 0) {
        uv_poll_stop(&w->accept_poll);
        uv_timer_start(&w->accept_retry, accept_resume, ACCEPT_RETRY_MS, 0);
    }
    return 0;
}

/* pqproxy accepts on the data port itself (accept.h) and hands each socket
 * to px_conn_accept. Once descriptors have run out,
 * a connection is taken only while a few are left over, so that the
 * worker, which races for every descriptor freed, does not starve the
 * admin port. */
static void accept_ready(uv_poll_t *p, int status, int events)
{
    worker_t *w = p->data;
    (void)events;
    if (status < 0) {
        px_warn("worker %d: accept: %s", w->id, uv_strerror(status));
        return;
    }
    for (int i = 0; i < ACCEPT_BATCH && w->listening; i++) {
        uint64_t now = uv_now(&w->loop);
        int exhausted = 0, fd = -1;
        if (now < w->fd_short_until && !px_fds_free(FD_HEADROOM))
            exhausted = 1;      /* errno: EMFILE or ENFILE from open() */
        else
            fd = px_accept(w->listen_fd, NULL, &exhausted);
        if (exhausted) {
            w->fd_short_until = now + FD_SHORT_MS;
            if (!drop_queued(w, errno))
                return;
            continue;
        }
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                px_warn("worker %d: accept: %s", w->id, strerror(errno));
            return;
        }
        px_conn_accept(&w->env, fd);       /* it owns fd, also when it fails */
    }
}

static void close_listener(worker_t *w)
{
    if (!w->listening)
        return;
    w->listening = 0;
    uv_close((uv_handle_t *)&w->accept_poll, on_listener_closed);
    uv_close((uv_handle_t *)&w->accept_retry, NULL);
    close(w->listen_fd);
    w->listen_fd = -1;
    px_spares_free(&w->spares);
}

static void worker_close_handles(worker_t *w);

static void worker_maybe_done(px_conn_env_t *env)
{
    worker_t *w = (worker_t *)((char *)env - offsetof(worker_t, env));
    if (w->draining && env->conn_count == 0 && !w->stopped)
        worker_close_handles(w);
}

static void worker_close_handles(worker_t *w)
{
    w->stopped = 1;
    close_listener(w);
    uv_close((uv_handle_t *)&w->drain_timer, NULL);
    uv_close((uv_handle_t *)&w->wake, NULL);
    uv_close((uv_handle_t *)&w->log_flush, NULL);
    px_defer_close(&w->env.defer);
    px_upstream_close(w->env.upstream);
    px_h2c_pool_close(w->env.h2c);
    for (int i = 0; i < PX_MAX_UPSTREAMS; i++) {
        if (w->env.named_up[i]) {
            px_upstream_close(w->env.named_up[i]);
            px_h2c_pool_close(w->env.named_h2c[i]);
        }
        w->env.named_up[i] = NULL;
        w->env.named_h2c[i] = NULL;
    }
    px_rstore_close(w->env.rstore);
    w->env.rstore = NULL;
}

static void drain_timeout(uv_timer_t *t)
{
    worker_t *w = t->data;
    if (w->env.conn_count)
        px_warn("worker %d: drain timeout: closing %u connection(s)", w->id, w->env.conn_count);
    px_conn_close_all(&w->env);
}

static void worker_start_drain(worker_t *w)
{
    if (w->draining)
        return;
    w->draining = 1;
    close_listener(w);
    px_conn_drain_all(&w->env);
    uv_timer_start(&w->drain_timer, drain_timeout, w->env.cfg->timeouts.drain, 0);
    worker_maybe_done(&w->env);
}

/* One pool per named upstream, by position: a reload re-points a kept
 * position (idle links to an old address are dropped) and closes those past
 * the new count; exchanges look their pool up by index at each use. */
static int named_pools(worker_t *w, const px_config_t *cfg)
{
    for (int i = 0; i < PX_MAX_UPSTREAMS; i++) {
        px_upstream_t **p = &w->env.named_up[i];
        struct px_h2c_pool **h = &w->env.named_h2c[i];
        const px_upstream_config_t *u = &cfg->upstreams[i].cfg;
        if (i >= cfg->upstream_count) {
            if (*p) {
                px_upstream_close(*p);
                px_h2c_pool_close(*h);
            }
            *p = NULL;
            *h = NULL;
        } else if (*p) {
            px_upstream_set_config(*p, u, &cfg->timeouts);
            px_h2c_pool_set_config(*h, u, &cfg->timeouts, cfg->http.max_header_bytes);
        } else {
            *p = px_upstream_new(&w->loop, u, &cfg->timeouts, &w->metrics);
            *h = *p ? px_h2c_pool_new(&w->loop, u, &cfg->timeouts, cfg->http.max_header_bytes,
                                      &w->metrics)
                    : NULL;
            if (!*h) {
                if (*p)
                    px_upstream_close(*p);
                *p = NULL;
                return UV_ENOMEM;
            }
        }
    }
    return 0;
}

static void worker_wake(uv_async_t *a)
{
    worker_t *w = a->data;
    px_server_t *s = w->srv;
    gen_t *newgen = NULL;
    int drain;

    uv_mutex_lock(&s->lock);
    drain = s->cmd_drain;
    if (s->gen != w->gen)
        newgen = gen_ref(s->gen);
    uv_mutex_unlock(&s->lock);

    if (newgen && !w->stopped) {
        gen_t *old = w->gen;
        w->gen = newgen;
        w->env.cfg = newgen->cfg;
        w->env.tls = newgen->tls;
        w->env.sig = newgen->sig;
        px_upstream_set_config(w->env.upstream, &newgen->cfg->upstream, &newgen->cfg->timeouts);
        px_h2c_pool_set_config(w->env.h2c, &newgen->cfg->upstream, &newgen->cfg->timeouts,
                               newgen->cfg->http.max_header_bytes);
        if (named_pools(w, newgen->cfg) < 0)
            px_error("worker %d: reload: out of memory for the named upstreams' pools "
                     "(their routes use the default upstream)", w->id);
        px_conn_reload_all(&w->env);
        gen_unref(old);
    } else if (newgen) {
        gen_unref(newgen);
    }
    if (drain && !w->stopped)
        worker_start_drain(w);
}

static void flush_logs(uv_prepare_t *h)
{
    (void)h;
    px_access_log_flush();
}

static void worker_main(void *arg)
{
    worker_t *w = arg;
    px_access_log_batch(1);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    px_h2_mem_trim();           /* what this thread's sessions left */
    px_access_log_batch(0);
    atomic_fetch_add(&w->srv->workers_done, 1);
    uv_async_send(&w->srv->worker_done);
}

static int worker_init(worker_t *w, px_server_t *s, int id, int fd, char *err, size_t errlen)
{
    uint64_t seed = 0;
    int rc;

    w->srv = s;
    w->id = id;
    w->listen_fd = fd;
    w->gen = gen_ref(s->gen);
    rc = uv_loop_init(&w->loop);
    if (rc != 0)
        goto fail;
    w->env.loop = &w->loop;
    w->env.cfg = w->gen->cfg;
    w->env.tls = w->gen->tls;
    w->env.sig = w->gen->sig;
    w->env.worker_id = id;
    w->env.on_conn_closed = worker_maybe_done;
    if (getrandom(&seed, sizeof seed, 0) != sizeof seed)
        seed = (uint64_t)uv_hrtime() ^ (uint64_t)(uintptr_t)w;
    w->env.rng = seed | 1;
    w->env.m = &w->metrics;
    w->env.upstream = px_upstream_new(&w->loop, &w->gen->cfg->upstream, &w->gen->cfg->timeouts,
                                      &w->metrics);
    w->env.h2c = px_h2c_pool_new(&w->loop, &w->gen->cfg->upstream, &w->gen->cfg->timeouts,
                                 w->gen->cfg->http.max_header_bytes, &w->metrics);
    if (!w->env.upstream || !w->env.h2c || named_pools(w, w->gen->cfg) < 0) {
        rc = UV_ENOMEM;
        goto fail;
    }
    px_defer_init(&w->loop, &w->env.defer);
    if (w->gen->cfg->sig.replay_store.type == PX_RSTORE_REDIS &&
        !(w->env.rstore = px_rstore_new(&w->loop, &w->gen->cfg->sig.replay_store, id))) {
        rc = UV_ENOMEM;
        goto fail;
    }
    uv_async_init(&w->loop, &w->wake, worker_wake);
    uv_timer_init(&w->loop, &w->drain_timer);
    uv_prepare_init(&w->loop, &w->log_flush);
    uv_prepare_start(&w->log_flush, flush_logs);
    w->wake.data = w->drain_timer.data = w->accept_poll.data = w;
    w->accept_retry.data = w;
    uv_timer_init(&w->loop, &w->accept_retry);
    px_spares_init(&w->spares, 1);
    if ((rc = uv_poll_init(&w->loop, &w->accept_poll, fd)) != 0) {
        uv_close((uv_handle_t *)&w->accept_retry, NULL);
        px_spares_free(&w->spares);
        goto fail;
    }
    w->listening = 1;
    if ((rc = uv_poll_start(&w->accept_poll, UV_READABLE, accept_ready)) != 0)
        goto fail;
    return 0;
fail:
    snprintf(err, errlen, "worker %d: %s", id, uv_strerror(rc));
    return rc;
}

/* --- the server --------------------------------------------------------------------- */

static void admin_ready(void *ud, void *token, px_admin_ready_done_t done);
static int admin_metrics(void *ud, px_buf_t *out);

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* Everything run and reload load from a configuration besides the JSON:
 * certificates and keys (matched), CA files, OCSP responses (a bad one only
 * warns on reload), signature keyrings and keys, the replay store's TLS files.
 * check-config goes through here too, so it accepts exactly what run does. */
static int load_keys(const px_config_t *cfg, int workers, int reload, px_tls_ctx_t **tls,
                     px_sigctx_t **sig, char *err, size_t errlen)
{
    *sig = NULL;
    if (!(*tls = px_tls_ctx_server_new_ex(&cfg->tls, reload ? PX_TLS_RELOAD : 0, err, errlen)))
        return PX_ECONFIG;
    if (px_rstore_tls_check(&cfg->sig.replay_store, err, errlen) != 0 ||
        !(*sig = px_sigctx_new(cfg, workers, err, errlen))) {
        px_tls_ctx_unref(*tls);
        *tls = NULL;
        return PX_ECONFIG;
    }
    return 0;
}

px_server_t *px_server_new(px_config_t *cfg, char *err, size_t errlen)
{
    px_server_t *s = calloc(1, sizeof *s);
    px_tls_ctx_t *tls = NULL;
    px_sigctx_t *sig = NULL;
    int i;

    if (!s) {
        px_config_free(cfg);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    uv_mutex_init(&s->lock);
    if (uv_loop_init(&s->loop) != 0) {
        px_config_free(cfg);
        snprintf(err, errlen, "cannot create the main event loop");
        goto fail;
    }
    s->loop_ready = 1;
    uv_timer_init(&s->loop, &s->probe_timer);
    uv_timer_init(&s->loop, &s->probe_tick);
    s->probe_timer.data = s->probe_tick.data = s;
    if (load_keys(cfg, cfg->workers, 0, &tls, &sig, err, errlen) != 0 ||
        !(s->gen = gen_new(cfg, tls, sig))) {
        px_tls_ctx_unref(tls);
        px_sigctx_unref(sig);
        px_config_free(cfg);
        goto fail;
    }
    raise_nofile();
    s->nworkers = cfg->workers;
    s->workers = calloc((size_t)s->nworkers, sizeof *s->workers);
    if (!s->workers)
        goto fail;
    for (i = 0; i < s->nworkers; i++)
        s->workers[i].listen_fd = -1;
    /* The admin port first: once the data port accepts, probes and metrics
     * answer too, so nothing watching both can see one without the other. */
    if (cfg->admin.enabled) {
        px_admin_handlers_t h = { admin_ready, admin_metrics, s };
        s->admin = px_admin_start(&s->loop, &cfg->admin.addr, &h, err, errlen);
        if (!s->admin)
            goto fail;
    }
    for (i = 0; i < s->nworkers; i++) {
        int fd = listen_socket(&cfg->listen, err, errlen);
        if (fd < 0 || worker_init(&s->workers[i], s, i, fd, err, errlen) != 0)
            goto fail;
    }
    s->config_time = (uint64_t)time(NULL);
    return s;
fail:
    px_server_free(s);
    return NULL;
}

void px_server_free(px_server_t *s)
{
    if (!s)
        return;
    for (int i = 0; s->workers && i < s->nworkers; i++) {
        worker_t *w = &s->workers[i];
        if (!w->srv)
            continue;
        if (!w->stopped && w->env.upstream) {
            worker_close_handles(w);
            uv_run(&w->loop, UV_RUN_DEFAULT);
        }
        uv_loop_close(&w->loop);
        gen_unref(w->gen);
    }
    free(s->workers);
    px_h2_mem_trim();           /* of sessions closed on this thread just now */
    if (s->loop_ready) {
        if (!s->main_closed) {
            px_admin_close(s->admin);
            uv_close((uv_handle_t *)&s->probe_timer, NULL);
            uv_close((uv_handle_t *)&s->probe_tick, NULL);
        }
        uv_run(&s->loop, UV_RUN_DEFAULT);
        uv_loop_close(&s->loop);
    }
    gen_unref(s->gen);
    uv_mutex_destroy(&s->lock);
    free(s);
}

static void wake_all(px_server_t *s)
{
    for (int i = 0; i < s->nworkers; i++)
        uv_async_send(&s->workers[i].wake);
}

void px_server_drain(px_server_t *s)
{
    uv_mutex_lock(&s->lock);
    s->cmd_drain = 1;
    uv_mutex_unlock(&s->lock);
    atomic_store(&s->draining, 1);
    wake_all(s);
}

int px_server_draining(const px_server_t *s)
{
    return atomic_load(&((px_server_t *)s)->draining);
}

/* Settings a reload cannot apply (sockets bound and threads started at
 * start-up): named, so that nobody believes a changed port took effect. */
static void warn_restart_only(const px_config_t *cfg, const px_config_t *cur)
{
    char what[160] = "";
    if (memcmp(&cfg->listen, &cur->listen, sizeof cfg->listen) != 0)
        strcat(what, ", listen");
    if (cfg->admin.enabled != cur->admin.enabled ||
        memcmp(&cfg->admin.addr, &cur->admin.addr, sizeof cfg->admin.addr) != 0)
        strcat(what, ", admin.listen/admin.enabled");
    if (cfg->workers != cur->workers)
        strcat(what, ", workers");
    if (cfg->sig.crypto_threads != cur->sig.crypto_threads)
        strcat(what, ", signatures.crypto_threads");
    if (memcmp(&cfg->sig.replay_store, &cur->sig.replay_store, sizeof cfg->sig.replay_store) != 0)
        strcat(what, ", signatures.replay_store");
    if (memcmp(&cfg->tls.ticket_keys, &cur->tls.ticket_keys, sizeof cfg->tls.ticket_keys) != 0)
        strcat(what, ", tls.ticket_keys");
    if (what[0])
        px_warn("reload: changed %s: these take effect on restart only; the running values stay",
                what + 2);
}

/* "X25519MLKEM768,X25519" for the start-up line and check-config. */
static const char *groups_str(const px_config_t *c, char *buf, size_t len)
{
    buf[0] = '\0';
    for (int i = 0; i < c->tls.group_count; i++) {
        size_t n = strlen(buf);
        const char *name = px_group_name(c->tls.groups[i]);
        snprintf(buf + n, len - n, "%s%s", i ? "," : "", name ? name : "?");
    }
    return buf;
}

#define MAX_WORKERS 256         /* config.c's bound on "workers" */

/* Each worker's metrics into w (MAX_WORKERS entries); their count. */
static int worker_metrics(px_server_t *s, px_metrics_t **w)
{
    int n = s->nworkers < MAX_WORKERS ? s->nworkers : MAX_WORKERS;
    for (int i = 0; i < n; i++)
        w[i] = &s->workers[i].metrics;
    return n;
}

int px_server_reload(px_server_t *s)
{
    char err[512];
    px_config_t *cfg;
    px_tls_ctx_t *tls;
    px_sigctx_t *sig;
    gen_t *g, *old;
    const px_config_t *cur = s->gen->cfg;

    cfg = px_config_load(cur->path, err, sizeof err);
    if (!cfg) {
        px_error("reload refused, keeping the running configuration: %s", err);
        s->reloads_failed++;
        return PX_ECONFIG;
    }
    /* keys are loaded per worker: keep the running worker count */
    if (load_keys(cfg, cur->workers, 1, &tls, &sig, err, sizeof err) != 0) {
        px_error("reload refused, keeping the running configuration: %s: %s", cfg->path, err);
        px_config_free(cfg);
        s->reloads_failed++;
        return PX_ECONFIG;
    }
    warn_restart_only(cfg, cur);
    {
        px_metrics_t *wm[MAX_WORKERS];
        px_m_route_rows(cfg, cur, wm, worker_metrics(s, wm));
    }
    if (px_log_open(&cfg->log, err, sizeof err) != 0)
        px_warn("reload: %s (logging unchanged)", err);
    g = gen_new(cfg, tls, sig);
    if (!g) {
        px_tls_ctx_unref(tls);
        px_sigctx_unref(sig);
        px_config_free(cfg);
        return PX_ENOMEM;
    }
    uv_mutex_lock(&s->lock);
    old = s->gen;
    s->gen = g;
    uv_mutex_unlock(&s->lock);
    gen_unref(old);
    wake_all(s);
    s->reloads_ok++;
    s->config_time = (uint64_t)time(NULL);
    px_info("configuration reloaded from %s", cfg->path);
    return 0;
}

/* --- readiness and metrics ------------------------------------------------------ */

static int ready_now(px_server_t *s, const char **why)
{
    if (atomic_load(&s->draining)) {
        *why = "draining";
        return 0;
    }
    if (!s->started) {
        *why = "starting";
        return 0;
    }
    if (!s->upstream_up) {
        *why = s->upstream_why[0] ? s->upstream_why : "upstream not probed yet";
        return 0;
    }
    *why = "";
    return 1;
}

static void answer_waiters(px_server_t *s)
{
    struct ready_waiter *w = s->waiters;
    s->waiters = NULL;
    while (w) {
        struct ready_waiter *next = w->next;
        const char *why;
        int ok = ready_now(s, &why);
        w->done(w->token, ok, why);
        free(w);
        w = next;
    }
}

static void probe_closed(uv_handle_t *h)
{
    px_server_t *s = h->data;
    s->probe_busy = 0;
    s->probe_time = uv_now(&s->loop);
    answer_waiters(s);
}

static void probe_finish(px_server_t *s, int status)
{
    if (uv_is_closing(&s->probe.handle))
        return;                 /* the timeout already decided */
    s->upstream_up = status == 0;
    if (status != 0)
        snprintf(s->upstream_why, sizeof s->upstream_why, "upstream unreachable: %s",
                 uv_strerror(status));
    uv_timer_stop(&s->probe_timer);
    uv_close(&s->probe.handle, probe_closed);
}

static void probe_connected(uv_connect_t *req, int status)
{
    probe_finish(req->data, status);
}

static void probe_timeout(uv_timer_t *t)
{
    px_server_t *s = t->data;
    /* closing the handle cancels the connect (probe_connected gets UV_ECANCELED) */
    if (!uv_is_closing(&s->probe.handle)) {
        s->upstream_up = 0;
        snprintf(s->upstream_why, sizeof s->upstream_why, "upstream unreachable: connect timed out");
        uv_close(&s->probe.handle, probe_closed);
    }
}

/* One connect to the model server, at most one at a time. */
static void probe_upstream(px_server_t *s)
{
    const px_addr_t *a = &s->gen->cfg->upstream.addr;
    struct sockaddr_storage ss;
    int rc;

    s->probe_busy = 1;
    s->probe_req.data = s;
    uv_timer_start(&s->probe_timer, probe_timeout, PROBE_TIMEOUT_MS, 0);
    if (a->is_unix) {
        uv_pipe_init(&s->loop, &s->probe.pipe, 0);
        s->probe.handle.data = s;
        uv_pipe_connect(&s->probe_req, &s->probe.pipe, a->host, probe_connected);
        return;
    }
    uv_tcp_init(&s->loop, &s->probe.tcp);
    s->probe.handle.data = s;
    if (uv_ip4_addr(a->host, a->port, (struct sockaddr_in *)&ss) != 0)
        uv_ip6_addr(a->host, a->port, (struct sockaddr_in6 *)&ss);
    rc = uv_tcp_connect(&s->probe_req, &s->probe.tcp, (struct sockaddr *)&ss, probe_connected);
    if (rc != 0)
        probe_finish(s, rc);
}

/* Every PROBE_INTERVAL_MS, so that pqproxy_ready follows the model server
 * whether or not anything polls /readyz (an alert on the gauge must fire
 * when the model server goes away, and clear when it is back). One TCP
 * connect, closed at once: nothing a model server has to answer. */
static void probe_tick(uv_timer_t *t)
{
    px_server_t *s = t->data;
    if (!s->probe_busy && !atomic_load(&s->draining))
        probe_upstream(s);
}

/* /readyz: answered from the last probe if it is recent, else after a new
 * one. */
static void admin_ready(void *ud, void *token, px_admin_ready_done_t done)
{
    px_server_t *s = ud;
    struct ready_waiter *w;
    const char *why;
    int ok = ready_now(s, &why);

    if (!s->started || atomic_load(&s->draining) || s->main_closed ||
        (!s->probe_busy && s->probe_time && uv_now(&s->loop) - s->probe_time < PROBE_CACHE_MS)) {
        done(token, ok, why);
        return;
    }
    w = malloc(sizeof *w);
    if (!w) {
        done(token, 0, "out of memory");
        return;
    }
    w->token = token;
    w->done = done;
    w->next = s->waiters;
    s->waiters = w;
    if (!s->probe_busy)
        probe_upstream(s);
}

/* Heap bytes in use and held from the system. glibc's counters are summed
 * over its arenas (a lock each: fine once per scrape); an ASan build's
 * allocator is not glibc's and has counters of its own. */
static void heap_usage(uint64_t *allocated, uint64_t *heap)
{
#if defined(__SANITIZE_ADDRESS__)
    *allocated = __sanitizer_get_current_allocated_bytes();
    *heap = __sanitizer_get_heap_size();
#else
    struct mallinfo2 mi = mallinfo2();
    *allocated = mi.uordblks + mi.hblkhd;
    *heap = mi.arena + mi.hblkhd;
#endif
}

static int admin_metrics(void *ud, px_buf_t *out)
{
    px_server_t *s = ud;
    px_metrics_t *w[MAX_WORKERS];
    px_metrics_global_t g;
    const char *why;
    int n = worker_metrics(s, w);
    memset(&g, 0, sizeof g);
    g.version = PX_VERSION;
    g.wolfssl_version = wolfSSL_lib_version();
    g.draining = atomic_load(&s->draining);
    g.ready = ready_now(s, &why);
    g.reloads_ok = s->reloads_ok;
    g.reloads_failed = s->reloads_failed;
    g.config_timestamp = s->config_time;
    g.workers = (uint64_t)s->nworkers;
    heap_usage(&g.mem_allocated, &g.mem_heap);
    g.routes = s->gen->cfg->routes;
    g.route_count = s->gen->cfg->route_count;
    {
        static px_tls_cert_status_t certs[PX_MAX_CERTS];
        g.certs = certs;
        g.cert_count = px_tls_ctx_cert_status(s->gen->tls, certs, PX_MAX_CERTS);
    }
    {
        static const char *names[PX_SIG__COUNT];
        px_sig_metrics_t sm;
        px_sig_metrics(&sm);
        for (int i = 0; i < PX_SIG__COUNT; i++)
            names[i] = px_sig_result_name((px_sig_result_t)i);
        g.sig_result_names = names;
        g.sig_results = sm.results;
        g.sig_result_count = PX_SIG__COUNT;
        g.sig_classical = sm.classical;
        g.responses_signed = sm.responses_signed;
        g.sig_queue_depth = sm.queue_depth;
        g.replay_entries = sm.replay_entries;
        g.replay_capacity = sm.replay_capacity;
        for (int i = 0; i < PX_RSTORE__COUNT; i++)
            g.store_checks[i] = sm.store_checks[i];
        g.store_fail_open = sm.store_fail_open;
        g.ticket_keys = (uint64_t)px_tickets_count();
        px_ticketsync_counts(&g.ticket_key_updates, &g.ticket_key_failures);
        return px_metrics_render(out, w, n, &g);
    }
}

int px_server_metrics(px_server_t *s, px_buf_t *out)
{
    return admin_metrics(s, out);
}

/* SIGTERM or SIGINT: drain, logged with the signal and when it came. */
static void stop_draining(px_server_t *s, int signum, const char *when)
{
    px_info("%s%s: draining (up to %u ms)", strsignal(signum), when, s->gen->cfg->timeouts.drain);
    px_server_drain(s);
}

static void on_signal(uv_signal_t *h, int signum)
{
    px_server_t *s = h->data;
    if (signum == SIGHUP) {
        px_info("SIGHUP: reloading configuration");
        px_server_reload(s);
        return;
    }
    if (atomic_load(&s->draining)) {
        px_warn("second %s: exiting now", strsignal(signum));
        _exit(1);
    }
    stop_draining(s, signum, "");
}

/* Every worker has finished: let the main loop end. */
static void on_worker_done(uv_async_t *a)
{
    px_server_t *s = a->data;
    if (atomic_load(&s->workers_done) < s->nworkers)
        return;
    uv_close((uv_handle_t *)&s->sig_term, NULL);
    uv_close((uv_handle_t *)&s->sig_int, NULL);
    uv_close((uv_handle_t *)&s->sig_hup, NULL);
    uv_close((uv_handle_t *)&s->worker_done, NULL);
    px_admin_close(s->admin);
    s->admin = NULL;
    px_ticketsync_stop(s->tickets);
    s->tickets = NULL;
    uv_close((uv_handle_t *)&s->probe_timer, NULL);
    uv_close((uv_handle_t *)&s->probe_tick, NULL);
    s->main_closed = 1;
}

/* SIGTERM or SIGINT before px_server_run installs the loop's handlers (the
 * listener accepts and readiness probes pass before that): the default
 * action would kill the process with connections in its backlog and a
 * non-zero status. Noted instead, it drains once the workers run; a
 * second one, as during a drain, exits at once (a start-up that hangs
 * stays stoppable). */
static volatile sig_atomic_t early_stop;

static void on_early_stop(int signum)
{
    if (early_stop)
        _exit(1);
    early_stop = signum;
}

static void catch_early_stop(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_early_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

/* SIGHUP blocked or unblocked on the calling thread (px_server_run_file). */
static void block_hup(int how)
{
    sigset_t hup;
    sigemptyset(&hup);
    sigaddset(&hup, SIGHUP);
    pthread_sigmask(how, &hup, NULL);
}

int px_server_run(px_server_t *s)
{
    char err[256];
    int i, rc;

    signal(SIGPIPE, SIG_IGN);
    uv_signal_init(&s->loop, &s->sig_term);
    uv_signal_init(&s->loop, &s->sig_int);
    uv_signal_init(&s->loop, &s->sig_hup);
    uv_async_init(&s->loop, &s->worker_done, on_worker_done);
    s->sig_term.data = s->sig_int.data = s->sig_hup.data = s->worker_done.data = s;
    uv_signal_start(&s->sig_term, on_signal, SIGTERM);
    uv_signal_start(&s->sig_int, on_signal, SIGINT);
    uv_signal_start(&s->sig_hup, on_signal, SIGHUP);
    block_hup(SIG_UNBLOCK);     /* a SIGHUP pending since start-up comes now */
    s->tickets = px_ticketsync_start(&s->loop, s->gen->cfg);

    for (i = 0; i < s->nworkers; i++) {
        rc = uv_thread_create(&s->workers[i].thread, worker_main, &s->workers[i]);
        if (rc != 0) {
            snprintf(err, sizeof err, "cannot start worker %d: %s", i, uv_strerror(rc));
            px_error("%s", err);
            s->nworkers = i;
            px_server_drain(s);
            break;
        }
    }
    s->started = 1;
    if (early_stop)             /* the loop's handlers replaced on_early_stop above */
        stop_draining(s, early_stop, " during start-up");
    uv_timer_start(&s->probe_tick, probe_tick, 0, PROBE_INTERVAL_MS);
    {
        const px_config_t *c = s->gen->cfg;
        char groups[256];
        px_info("pqproxy %s listening on %s:%u, upstream %s%s:%u, %d worker(s), %u crypto thread(s), "
                "groups %s, pq_policy %s",
                PX_VERSION, c->listen.host, c->listen.port, c->upstream.addr.is_unix ? "unix:" : "",
                c->upstream.addr.host, c->upstream.addr.port, s->nworkers, s->crypto_threads,
                groups_str(c, groups, sizeof groups),
                c->tls.pq_policy == PX_PQ_REQUIRE ? "require" : "prefer");
    }
    uv_run(&s->loop, UV_RUN_DEFAULT);
    for (i = 0; i < s->nworkers; i++)
        uv_thread_join(&s->workers[i].thread);
    px_info("drained, exiting");
    return s->exit_code;
}

int px_server_run_file(const char *file)
{
    char err[1024];
    px_config_t *cfg;
    px_server_t *s;
    unsigned threads;
    int rc;

    /* Until px_server_run installs the handlers (the listener accepts and
     * readiness probes pass before that), a SIGHUP from a config reloader
     * must neither kill the process by its default action nor be lost:
     * blocked, it waits (threads started meanwhile inherit the mask) and
     * reloads once px_server_run unblocks it. */
    block_hup(SIG_BLOCK);
    catch_early_stop();
    cfg = px_config_load(file, err, sizeof err);
    if (!cfg) {
        fprintf(stderr, "pqproxy: %s\n", err);
        return 1;
    }
    if (px_log_open(&cfg->log, err, sizeof err) != 0) {
        fprintf(stderr, "pqproxy: %s: %s\n", file, err);
        px_config_free(cfg);
        return 1;
    }
    /* Signature jobs allocate and free ~100 KB of working memory each; by
     * default glibc hands such pages back at once and faults them in again,
     * with TLB-shootdown interrupts across the threads. Keep them. */
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    mallopt(M_TRIM_THRESHOLD, 16 << 20);
    /* glibc's allocator set up here, before the workers: under ASan, malloc
     * and mallopt are ASan's but malloc_trim (px_conn_compact) and mallinfo2
     * are glibc's, and the first thread to call one sets glibc's allocator
     * up and takes its main arena without counting itself in. Two workers
     * doing that at once left the count short, and glibc aborted at their
     * exit ("a->attached_threads > 0") after a drain. */
    malloc_trim(0);
    threads = px_sig_pool_setup(cfg->sig.crypto_threads);
    s = px_server_new(cfg, err, sizeof err);
    if (!s) {
        px_error("%s: %s", file, err);
        fprintf(stderr, "pqproxy: %s: %s\n", file, err);
        return 1;
    }
    s->crypto_threads = threads;
    rc = px_server_run(s);
    px_server_free(s);
    px_log_close();
    return rc;
}

/* --- pqproxy check-config --------------------------------------------------------- */

static const char *addr_str(const px_addr_t *a, char *buf, size_t len)
{
    if (a->is_unix)
        snprintf(buf, len, "unix:%s", a->host);
    else if (strchr(a->host, ':'))
        snprintf(buf, len, "[%s]:%u", a->host, a->port);
    else
        snprintf(buf, len, "%s:%u", a->host, a->port);
    return buf;
}

int px_server_check_file(const char *file)
{
    char err[PATH_MAX + 512], l[300], u[300], groups[256];
    px_config_t *cfg;
    px_tls_ctx_t *tls;
    px_sigctx_t *sig;

    if (!(cfg = px_config_load(file, err, sizeof err))) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (px_log_check(&cfg->log, err, sizeof err) != 0 ||
        load_keys(cfg, 1, 0, &tls, &sig, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", file, err);
        px_config_free(cfg);
        return 1;
    }
    px_tls_ctx_unref(tls);
    px_sigctx_unref(sig);
    printf("%s: ok (listen %s, upstream %s", file, addr_str(&cfg->listen, l, sizeof l),
           addr_str(&cfg->upstream.addr, u, sizeof u));
    /* the named ones too: environment overrides (PQPROXY_UPSTREAM_GRPC) show */
    for (int i = 0; i < cfg->upstream_count; i++)
        printf(", upstreams.%s %s%s", cfg->upstreams[i].name,
               addr_str(&cfg->upstreams[i].cfg.addr, u, sizeof u),
               cfg->upstreams[i].cfg.protocol == PX_UP_H2C ? " h2c" : "");
    printf(", %d certificate(s), groups %s, pq_policy %s)\n", cfg->tls.cert_count,
           groups_str(cfg, groups, sizeof groups), cfg->tls.pq_policy == PX_PQ_REQUIRE ? "require" : "prefer");
    px_config_free(cfg);
    return 0;
}
