/* One request's life on the client side, whatever protocol carried it:
 * its record (identity, route, timings, bytes, status, signature state,
 * upstream link) and the access-log line and counters written once when it
 * ends. conn.c drives it today over HTTP/1.1; an HTTP/2 session will hold
 * one per stream. A few fields still describe HTTP/1.1 framing (marked h1)
 * and leave with the HTTP/1.1 session. */
#ifndef PX_EXCHANGE_H
#define PX_EXCHANGE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "config/config.h"
#include "core/errors.h"
#include "http/http1.h"
#include "proxy/metrics.h"
#include "sig/sigflow.h"
#include "net/tls.h"
#include "proxy/upstream.h"

/* a signed request: verifying its head, holding its body, or cleared */
typedef enum { PX_XSIG_NONE, PX_XSIG_VERIFYING, PX_XSIG_BODY, PX_XSIG_DONE } px_xsig_t;
/* a signed response: not signed, held until signed (head fields), or trailer */
typedef enum { PX_RSIG_NONE, PX_RSIG_HEAD, PX_RSIG_TRAILER } px_rsig_t;

typedef struct px_exch {
    int active;
    int req_done, resp_started, resp_head_sent, resp_done;
    int chunked_up, chunked_down;        /* h1 */
    int keep_alive, is_head, idempotent, retried;
    int upstream_ok;
    px_uplink_t *up;
    int up_reused;
    px_buf_t up_out;             /* bytes waiting for the upstream */
    px_buf_t replay;             /* the request head, kept for one retry */
    uint64_t req_bytes, resp_bytes;
    uint64_t t_start, t_sent, t_first;
    int status;
    int client_minor;            /* h1 */
    const char *error;
    char method[16];
    /* the request target, for the access log: it points into the request
     * head, which stays put until the next head (after this exchange) */
    const char *target;
    size_t target_len;
    char request_id[128];        /* ours, or the client's when trusted (truncated to fit) */
    /* signatures (docs/signatures.md) */
    px_sigctx_t *sig;            /* the generation's context, held for the exchange */
    px_verify_mode_t verify;
    int sign;
    int route_idx;               /* 1 + index of the route in the config, 0: none (metrics) */
    px_xsig_t sig_state;
    px_sigjob_t *job;            /* verification or signing on the thread pool */
    px_digest_t *digest;         /* hash of the held request body */
    px_sig_info_t info;          /* what the verification found (pointers into the head) */
    const char *sig_result;      /* for the access log */
    px_rsig_t rsig_mode;
    px_sig_response_t *rsig;
    px_buf_t rbody;              /* the held response body (PX_RSIG_HEAD) */
    char model_manifest[64];     /* Pqproxy-Model-Manifest value, "" when not configured */
    int link_reusable;           /* decided at the response's end */
    int hold_small;              /* h1: a small fixed-length response, staged whole, one record */
    int connect_on_body;         /* the upstream is connected when the first body byte comes */
    int logged;                  /* the access log line is written (once) */
} px_exch_t;

/* What the access log learns from the connection an exchange came on. */
typedef struct {
    const char *client_addr;
    px_tls_t *tls;
    int worker_id;
    px_metrics_t *m;
} px_conninfo_t;

void px_exch_init(px_exch_t *x);
/* Ends what the exchange holds (its upstream link is released unreusable)
 * and clears it for the next request; the two buffers are kept. */
void px_exch_reset(px_exch_t *x);
/* px_exch_reset, and the buffers it keeps freed. */
void px_exch_free(px_exch_t *x);
/* An idle connection's exchange holds no buffers. */
void px_exch_compact(px_exch_t *x);

/* A new request with head h: resets x, then records what the protocol
 * does not decide: its identity (method, target, request id from *rng or,
 * with trust_forwarded, the client's), timing, whether it is HEAD or
 * idempotent, and its route's signature policy (sig: the worker's current
 * signature context, NULL when none). */
void px_exch_begin(px_exch_t *x, const px_http_head_t *h, const px_config_t *cfg,
                   px_sigctx_t *sig, uint64_t *rng);

/* The proxy's own fields of a final response (status >= 200): extra
 * (n of them) then Pqproxy-Model-Manifest when configured, into out (room
 * for n + 1). Returns the count. A field of the same name from the
 * upstream is not forwarded (px_http1_write_response_head). */
int px_exch_response_fields(const px_exch_t *x, int status, const px_header_t *extra, int n,
                            px_header_t *out);
/* Starts signing the response (px_sig_response_begin), bound to the
 * request's signature and covering Pqproxy-Model-Manifest when configured.
 * NULL on failure. */
px_sig_response_t *px_exch_response_signer(const px_exch_t *x, px_sig_signer_t *s, int status,
                                           int in_trailer);

/* The access-log line and the request counters, once per exchange. */
void px_exch_log(px_exch_t *x, const px_conninfo_t *ci);
/* An exchange not yet logged is logged now: with the status the client
 * saw, or 499 when it saw none, and why as its error unless it has one. */
void px_exch_log_unfinished(px_exch_t *x, const px_conninfo_t *ci, px_end_reason_t why);

#endif
