/* Counters and histograms, Prometheus text exposition.
 *
 * Every worker owns a px_metrics_t and is its only writer: increments are
 * plain relaxed loads and stores (no lock, no locked instruction on the hot
 * path). A scrape sums all workers with relaxed loads, so it may be a moment
 * old but is never torn. Label values come from small fixed sets, so the
 * series count is bounded whatever the traffic. */
#ifndef PX_METRICS_H
#define PX_METRICS_H

#include <stdint.h>

#include "config/config.h"
#include "core/buf.h"
#include "sig/rstore.h"

/* label sets */
enum { PX_M_GROUP_OTHER = 8, PX_M_GROUPS = 9 };            /* px_group_all() order + "other" */
enum { PX_M_CIPHERS = 10 };                                 /* see metrics.c */
/* handshake failures by reason: px_tls_fail_t order (PX_TLS_FAIL_* - 1), then timeout */
enum { PX_HS_PQ_REFUSED, PX_HS_NO_GROUP, PX_HS_NO_SIGALG, PX_HS_MALFORMED, PX_HS_BAD_SHARE,
       PX_HS_FAILED, PX_HS_TIMEOUT, PX_M_HS_FAIL };
enum { PX_M_METHODS = 8 };                                 /* GET POST PUT DELETE HEAD OPTIONS PATCH other */
enum { PX_M_CLASSES = 6 };                                 /* 0: no response, 1..5: 1xx..5xx */
/* 0: no route; then a row per route of the running configuration and as
 * many again, so that a reload can give new routes rows the configuration
 * before it did not use (px_m_route_rows) */
enum { PX_M_ROUTES = 1 + 2 * PX_MAX_ROUTES };
enum { PX_UP_CONNECT, PX_UP_RESET, PX_UP_TIMEOUT, PX_UP_BAD_RESPONSE, PX_UP_QUEUE_TIMEOUT, PX_M_UP_ERR };
/* HTTP/2 events (pqproxy_h2_events_total{event}), px_h2_stats_t's counters
 * after streams. */
#define PX_M_H2_EVENTS 9
enum { PX_M_BUCKETS = 16 };
enum { PX_M_CERT_KEYS = 9 };                               /* see metrics.c; the last is "other" */

typedef struct {
    uint64_t buckets[PX_M_BUCKETS];   /* non-cumulative; summed when rendered */
    uint64_t count;
    uint64_t sum_us;
} px_hist_t;

typedef struct px_metrics {
    uint64_t conns_total, conns_open, conns_rejected;
    uint64_t accept_fd_exhausted;     /* closed at accept: no file descriptor left */
    uint64_t hs_ok[PX_M_GROUPS][PX_M_CIPHERS];
    uint64_t hs_fail[PX_M_HS_FAIL];
    uint64_t hs_hrr[2], hs_resumed;           /* hs_hrr by PX_HRR_* - 1 */
    uint64_t hs_cert_key[PX_M_CERT_KEYS];     /* handshakes by served certificate key type */
    uint64_t requests[PX_M_ROUTES][PX_M_METHODS][PX_M_CLASSES];
    px_hist_t request_seconds;        /* head received -> response complete */
    px_hist_t upstream_seconds;       /* request sent -> first response byte */
    uint64_t bytes_in, bytes_out;     /* body bytes */
    uint64_t upstream_errors[PX_M_UP_ERR], upstream_retries;
    uint64_t upstream_connects, upstream_reuses;
    uint64_t upstream_idle, upstream_busy;     /* gauges, set by the worker */
    uint64_t upstream_queued;         /* gauge: requests waiting (upstream.max_connections) */
    uint64_t upstream_queued_total;   /* requests that had to wait */
    uint64_t upstream_h2c_unresponsive;  /* h2c connections ended on an unanswered PING */
    uint64_t responses_unsigned;      /* on a signing route, streamed to HTTP/1.0 (no trailers) */
    uint64_t request_deadline;        /* requests not complete within timeouts.request_ms */
    uint64_t send_timeouts;           /* connections closed on timeouts.send_idle_ms */
    uint64_t h2_conns, h2_streams;    /* HTTP/2 connections (ALPN h2) and their request streams */
    uint64_t h2_events[PX_M_H2_EVENTS];
    uint64_t h2_stream_timeouts[3];   /* h2 streams ended by request_ms, body_idle_ms, grpc-timeout */
    uint64_t requests_proto[2];       /* requests by client protocol: HTTP/1.1, h2 */
} px_metrics_t;

static inline void px_m_add(uint64_t *c, uint64_t v)
{
    __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + v, __ATOMIC_RELAXED);
}
static inline void px_m_inc(uint64_t *c) { px_m_add(c, 1); }
static inline void px_m_dec(uint64_t *c) { px_m_add(c, (uint64_t)-1); }
static inline void px_m_set(uint64_t *c, uint64_t v) { __atomic_store_n(c, v, __ATOMIC_RELAXED); }
static inline uint64_t px_m_get(const uint64_t *c) { return __atomic_load_n(c, __ATOMIC_RELAXED); }

void px_m_observe(px_hist_t *h, double seconds);

/* The counters' row of each route of next (px_route_t.metrics_row), at a
 * reload from prev. A route prev had too (same prefix, same grpc) keeps its
 * row, so a reload that reorders, adds or removes routes leaves the counts
 * of the others with their labels; a new route takes a row prev did not
 * use, cleared first in each worker's metrics (m[0..nm-1]). A request of
 * an older configuration still finishing may count once into a cleared
 * row (a relaxed store beside the worker's). */
void px_m_route_rows(px_config_t *next, const px_config_t *prev, px_metrics_t *const *m, int nm);
/* Label indexes. */
int px_m_group_index(uint16_t group);
int px_m_cipher_index(const char *cipher);
int px_m_method_index(const char *method);
int px_m_cert_key_index(const char *key);   /* px_tls_info_t.cert_key */

/* Process-wide values that are not per worker. */
typedef struct {
    const char *version, *wolfssl_version;
    int draining, ready;
    uint64_t reloads_ok, reloads_failed;
    uint64_t config_timestamp;        /* unix time of the running config */
    uint64_t workers;
    uint64_t mem_allocated, mem_heap; /* malloc's bytes in use / held from the OS */
    const px_route_t *routes;         /* the running configuration's, each with its metrics_row */
    int route_count;
    /* signatures (process-wide) */
    const char *const *sig_result_names;   /* PX_SIG__COUNT names */
    const uint64_t *sig_results;
    int sig_result_count;
    uint64_t sig_classical, responses_signed, sig_queue_depth;
    uint64_t replay_entries, replay_capacity;
    uint64_t store_checks[PX_RSTORE__COUNT];   /* shared replay store (rstore.h) */
    uint64_t store_fail_open;
    uint64_t ticket_keys;                      /* session-ticket keys in use */
    uint64_t ticket_key_updates, ticket_key_failures;  /* shared sources (ticketsync.h) */
    /* served certificates of the running TLS context (px_tls_cert_status_t) */
    const struct px_tls_cert_status *certs;
    int cert_count;
} px_metrics_global_t;

/* Appends the exposition of the sum of n workers' metrics and g. */
int px_metrics_render(px_buf_t *out, px_metrics_t *const *workers, int n,
                      const px_metrics_global_t *g);

#endif
