/* One client connection: its transport (the TCP handle and TLS session,
 * transport.h), the handshake, closing and drain, and the session chosen
 * for it after the handshake: the HTTP/1.1 session (h1.c, session.h),
 * which carries one exchange at a time (proxy/exchange.h: the exchange
 * drives the upstream link and the signatures, and answers through the
 * session's px_sess_ops_t). It frees itself only after every handle it
 * owns has been closed.
 *
 * The close rule. Any call that can close the connection or end its
 * exchange (a failed write, an error answered, a timeout, an upstream
 * failure, a finished response, a thread-pool job's result) returns a
 * status the compiler makes its caller check (PX_MUST_CHECK); -1 means
 * "gone": from then on nothing touches the connection's handles or parses
 * its input, and the caller returns -1 itself, up to the loop callback
 * that started the chain, which ends there (conn.c's settle()). The
 * transport keeps the rule: it never closes inside a call, it fails the
 * call (PX_MUST_CHECK) and the connection closes it; so does the exchange
 * (its px_exch_* calls and the session's ops are PX_MUST_CHECK). Besides:
 * - closing is one way: no state transition leaves C_CLOSING/C_CLOSED;
 * - memory is freed only in a close callback or a job's callback, never
 *   inside a call chain, so a pointer held by a caller stays valid;
 * - the next pipelined request is parsed from the loop (defer.h), after the
 *   previous response has left, never from inside that response's end;
 * - a thread-pool job that finds its connection closing only frees itself. */
#ifndef PX_CONN_H
#define PX_CONN_H

#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "core/defer.h"
#include "proxy/metrics.h"
#include "net/tls.h"
#include "proxy/upstream.h"

typedef struct px_conn px_conn_t;


/* What a worker shares with its connections. Only the worker's loop
 * thread touches it. */
typedef struct px_conn_env {
    uv_loop_t *loop;
    const px_config_t *cfg;      /* current config; swapped by reload */
    px_tls_ctx_t *tls;           /* current server context (new sessions take a reference) */
    px_upstream_t *upstream;     /* the default upstream's links */
    struct px_h2c_pool *h2c;     /* its h2c streams (upstream.protocol "h2c") */
    px_upstream_t *named_up[PX_MAX_UPSTREAMS];   /* cfg->upstreams[i]'s links (NULL past the count) */
    struct px_h2c_pool *named_h2c[PX_MAX_UPSTREAMS];
    struct px_sigctx *sig;       /* current signature context (NULL: none configured) */
    struct px_rstore *rstore;    /* shared replay store (NULL: local only); from the start config */
    int worker_id;
    int draining;
    px_conn_t *conns;            /* all open connections */
    uint32_t conn_count;
    uint64_t rng;                /* request ids */
    px_metrics_t *m;             /* this worker's counters */
    px_defer_t defer;            /* work taken up from the loop (px_defer_init by the worker) */
    uint64_t trimmed_at;         /* loop ms of the last malloc_trim (px_conn_compact) */
    void (*on_conn_closed)(struct px_conn_env *env);   /* optional */
} px_conn_env_t;

/* Serves fd, an accepted non-blocking socket, as a new px_conn. The
 * connection owns fd from here on, also when this fails (it is closed). */
int px_conn_accept(px_conn_env_t *env, int fd);

/* An idle connection (nothing being written) gives back its transport
 * buffers, and the allocator gives free pages back to the system, at most
 * once a second per worker, so that idle connections do not keep what busy
 * ones needed. Both sessions call it once their own buffers are freed. */
void px_conn_compact(px_conn_t *c);

/* Draining: idle connections close now, busy ones after their response. */
void px_conn_drain_all(px_conn_env_t *env);
/* A reload: HTTP/2 connections, whose SETTINGS came from the previous
 * configuration, get a graceful GOAWAY (their open streams finish; the
 * client reconnects under the new one). HTTP/1.1 ones take the new
 * configuration with their next request. */
void px_conn_reload_all(px_conn_env_t *env);
/* Closes every connection at once (drain timeout, shutdown). */
void px_conn_close_all(px_conn_env_t *env);

#endif
