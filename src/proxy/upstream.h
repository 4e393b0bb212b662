/* Links to the model server: plaintext HTTP/1.1 over TCP or a Unix socket,
 * with a per-worker keep-alive pool. No HTTP here: a link moves bytes, the
 * connection that owns it (conn.c) frames them.
 *
 * upstream.max_connections caps the links a pool has open (HAProxy's server
 * maxconn): beyond it a request waits in a FIFO queue for a link another
 * gives back (or a slot another's close frees), at most
 * timeouts.upstream_queue_ms.
 *
 * A link has one owner at a time. Its callbacks never run synchronously
 * from the call that started the operation. One write is in flight at a
 * time; px_uplink_write takes the bytes (the caller's buffer is emptied). */
#ifndef PX_UPSTREAM_H
#define PX_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "core/buf.h"
#include "config/config.h"
#include "proxy/metrics.h"

typedef struct px_upstream px_upstream_t;
typedef struct px_uplink px_uplink_t;

typedef struct {
    /* status 0: connected (or reused); < 0: libuv error (the link is dead). */
    void (*on_connect)(px_uplink_t *l, int status, void *ud);
    /* n > 0 bytes; n < 0: UV_EOF or an error (the link is dead). */
    void (*on_read)(px_uplink_t *l, const char *p, ssize_t n, void *ud);
    /* The write has left; status < 0 on error (the link is dead). */
    void (*on_write)(px_uplink_t *l, int status, void *ud);
} px_uplink_cb_t;

/* A request waiting for a link: the caller's memory, queued by
 * px_upstream_acquire until on_connect reports, or px_upstream_cancel. */
typedef struct px_upwait {
    struct px_upwait *next, *prev;
    px_upstream_t *pool;          /* non-NULL while queued */
    const px_uplink_cb_t *cb;
    void *ud;
    px_uplink_t **slot;           /* where the link is stored when granted */
    uint64_t since;               /* loop ms it was queued at */
    unsigned addr_generation;     /* the pool's address then */
} px_upwait_t;

/* px_upstream_acquire: the request waits (on_connect follows). */
#define PX_UPSTREAM_QUEUED 1

/* m (optional): where connects, reuses and the idle/busy gauges are counted. */
px_upstream_t *px_upstream_new(uv_loop_t *loop, const px_upstream_config_t *cfg,
                               const px_timeouts_config_t *timeouts, px_metrics_t *m);
/* Closes idle links; links still owned are closed when released. The pool
 * is freed once every link it made is closed. */
void px_upstream_close(px_upstream_t *u);
/* Swaps configuration (reload); idle links to the old address are dropped. */
void px_upstream_set_config(px_upstream_t *u, const px_upstream_config_t *cfg,
                            const px_timeouts_config_t *timeouts);

/* Takes an idle link (*reused = 1: connected, usable at once, no
 * on_connect) or starts a new connection (on_connect follows,
 * asynchronously): 0. At max_connections (or behind others waiting):
 * PX_UPSTREAM_QUEUED, *out stays NULL and w is queued; on_connect follows
 * with the link (stored in *out first: a pooled one, status 0, or a new
 * one once connected), or with NULL and UV_EBUSY (timeouts.upstream_queue),
 * UV_ECANCELED (the pool closed) or UV_EAGAIN (a reload gave the pool
 * another address: ask the right pool again). Else a negative error. */
int px_upstream_acquire(px_upstream_t *u, const px_uplink_cb_t *cb, void *ud, px_upwait_t *w,
                        px_uplink_t **out, int *reused);
/* Takes w out of the queue (no on_connect follows); nothing when it is not queued. */
void px_upstream_cancel(px_upwait_t *w);
/* As acquire, never from the pool nor queued (a retry after a stale pooled
 * link: it takes the place of the link it closed). */
int px_upstream_connect_fresh(px_upstream_t *u, const px_uplink_cb_t *cb, void *ud,
                              px_uplink_t **out);

/* Returns 1 when everything was written at once (no on_write follows), 0
 * when the write is in flight (on_write follows), or a negative error. */
int px_uplink_write(px_uplink_t *l, px_buf_t *data);
int px_uplink_writing(const px_uplink_t *l);
/* Whether the link has carried a request before (a model server may have
 * closed it meanwhile). */
int px_uplink_reused(const px_uplink_t *l);
void px_uplink_read_start(px_uplink_t *l);
void px_uplink_read_stop(px_uplink_t *l);
int px_uplink_reading(const px_uplink_t *l);
/* Arms (ms > 0) or disarms (0) the link's timer; on expiry on_read gets UV_ETIMEDOUT. */
void px_uplink_timeout(px_uplink_t *l, uint32_t ms);
/* Gives the link back: reusable (response complete, keep-alive) links go to
 * the pool, others are closed. The owner must not touch it afterwards. */
void px_uplink_release(px_uplink_t *l, int reusable);

#endif
