/* One request's life on the client side, whatever protocol carried it:
 * its record (identity, route, timings, bytes, status, signature state,
 * upstream link), its driving (the upstream link and its callbacks, the
 * retry of a stale pooled link, signature verification before the
 * upstream, the body digest at its end, response signing in the head or a
 * trailer) and the access-log line and counters written once when it ends.
 *
 * The exchange decides content; the client-side session that carried the
 * request (HTTP/1.1: http/h1.c; HTTP/2: one per stream) decides framing.
 * The exchange reaches its session only through px_sess_ops_t below. The
 * close rule (http/conn.h) holds across it: every op that can end the
 * exchange or its session returns PX_MUST_CHECK int, -1 meaning "gone"
 * (nothing may touch the exchange any more; return -1 up to the loop
 * callback), and so do the px_exch_* calls a session makes. */
#ifndef PX_EXCHANGE_H
#define PX_EXCHANGE_H

#include <stddef.h>
#include <stdint.h>

#include <nghttp2/nghttp2.h>

#include "core/buf.h"
#include "config/config.h"
#include "core/errors.h"
#include "http/http1.h"
#include "proxy/metrics.h"
#include "sig/sigflow.h"
#include "net/tls.h"
#include "proxy/upstream.h"

struct px_conn_env;

/* Bytes queued towards the client or the upstream above which the side
 * that fills them is not read (per exchange and direction). */
#define PX_HIGH_WATER (64 * 1024)

/* What the exchange learns from the connection it came on (access log,
 * forwarded fields). */
typedef struct {
    const char *client_addr;
    const char *client_ip;       /* X-Forwarded-For */
    px_tls_t *tls;               /* also the client certificate (X-Forwarded-Client-Cert) */
    int worker_id;
    px_metrics_t *m;
    const char *protocol;        /* "HTTP/1.1" or "h2" (access log) */
} px_conninfo_t;

/* The client-side session an exchange answers through; s is its sess.
 * Every op may be called only while the exchange is active; an op that
 * returns -1 has ended the exchange (and, for HTTP/1.1, the connection).
 * An HTTP/2 session implements them per stream (noted "h2"). There is no
 * separate "consumed" op: the exchange copies request bytes as it takes
 * them (px_exch_req_data) and holds more back only through px_exch_req_room;
 * resume_input says when that room has come back. */
typedef struct px_sess_ops {
    /* The response head h (h->body: how its length is known; CHUNKED means
     * "not known, streamed") with extra fields after h's. h1: framing,
     * keep-alive and HTTP/1.0 rules, staged; h2: HEADERS. Also for an
     * interim (1xx) head. */
    PX_MUST_CHECK int (*send_head)(void *s, const px_http_head_t *h, const px_header_t *extra,
                                   int nextra);
    /* Response body bytes (h1: a chunk when chunked; h2: DATA). */
    PX_MUST_CHECK int (*send_data)(void *s, const char *p, size_t n);
    /* The response's end, with trailer fields (n may be 0), staged (it
     * leaves with flush(s, 1)). h1: the last chunk and trailer; h2:
     * END_STREAM or trailing HEADERS. */
    PX_MUST_CHECK int (*send_end)(void *s, const px_header_t *trailers, int n);
    /* What was sent may leave now; all = 0: unless the session holds a
     * small response back to send it whole (h1: one TLS record); all = 1:
     * the response is complete, everything leaves. */
    PX_MUST_CHECK int (*flush)(void *s, int all);
    /* Bytes sent and not yet taken by the client: the response side's
     * backpressure (compared with PX_HIGH_WATER). */
    size_t (*pending)(void *s);
    /* 1 when the response may end in trailers (h1: not to HTTP/1.0). */
    int (*trailers_ok)(void *s);
    /* The request has passed its head's checks: with body, the body may
     * come now (h1: 100 Continue when asked, the body timer); without, the
     * request is complete (h1: its timers stop). */
    PX_MUST_CHECK int (*proceed)(void *s, int body);
    /* The exchange can take request input again (upstream connected or
     * drained, body verified). h1: parse what waits; h2: reopen the
     * stream's window by what has left. */
    PX_MUST_CHECK int (*resume_input)(void *s);
    /* Answers with a proxy error (JSON); the exchange ends. h1: then closes
     * gracefully; h2: the stream ends (RST_STREAM when the head went out). */
    PX_MUST_CHECK int (*reply_error)(void *s, px_http_error_t e, const char *detail);
    /* Ends the exchange at once, unlogged ones logged with why. h1: closes
     * the connection; h2: RST_STREAM. Always -1. */
    PX_MUST_CHECK int (*abort)(void *s, px_end_reason_t why);
    /* The exchange is over and logged; the session drops it and goes on
     * (h1: keep-alive, the next pipelined request from the loop, or close). */
    PX_MUST_CHECK int (*done)(void *s);
    /* The exchange's thread-pool job j has returned (x->job is NULL). 1: the
     * session is closing, the result is of no use: j is freed (and the
     * session too once nothing else holds it); 0: go on. */
    PX_MUST_CHECK int (*orphaned)(void *s, px_sigjob_t *j);
} px_sess_ops_t;

/* a signed request: verifying its head, holding its body, or cleared */
typedef enum { PX_XSIG_NONE, PX_XSIG_VERIFYING, PX_XSIG_BODY, PX_XSIG_DONE } px_xsig_t;
/* a signed response: not signed, held until signed (head fields), or trailer */
typedef enum { PX_RSIG_NONE, PX_RSIG_HEAD, PX_RSIG_TRAILER } px_rsig_t;

typedef struct px_exch {
    int active;
    int req_done, resp_started, resp_head_sent, resp_done;
    int chunked_up;              /* the upstream request is chunked (the upstream speaks HTTP/1.1) */
    int keep_alive, is_head, idempotent, retried;
    int upstream_ok;
    px_uplink_t *up;
    px_upwait_t upwait;          /* queued for a link (upstream.max_connections) */
    struct px_h2cx *h2c;         /* the h2c upstream's stream (NULL: the upstream speaks HTTP/1.1) */
    int up_h2c;                  /* this request goes to an h2c upstream */
    nghttp2_nv *h2c_nv;          /* its fields, in h2c_head, from upstream_head to h2c_start */
    size_t h2c_nnv;
    nghttp2_nv *trl_nv;          /* its trailers, in req_trailers, for px_h2c_end */
    size_t trl_nnv;
    int up_reused;
    px_buf_t up_out;             /* bytes waiting for the upstream */
    px_buf_t replay;             /* the request head, kept for one retry */
    uint64_t req_bytes, resp_bytes;
    uint64_t t_start, t_sent, t_first;
    int status;
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
    int route_idx;               /* the route's metrics_row (config.h), 0: none */
    int upstream_idx;            /* the route's upstream: 0 default, k env->named_up[k - 1] */
    char route_up[PX_UPSTREAM_NAME_MAX + 1]; /* and its name: a reload may move it (up_index) */
    char upstream[PX_UPSTREAM_NAME_MAX + 1]; /* its name once forwarding began ("": not), for the log */
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
    int connect_on_body;         /* the upstream is connected when the first body byte comes */
    int logged;                  /* the access log line is written (once) */
    int grpc;                    /* px_grpc_request of its head (px_exch_begin) */
    int grpc_status;             /* 1 + the grpc-status the client got, 0: none (access log) */
    const px_http_head_t *req_head; /* the request's head: in the session's memory until the next */
    /* kept across requests (px_exch_reset): */
    px_http1_t *resp;            /* the upstream's response parser (the exchange frees it) */
    px_buf_t h2c_head;           /* the h2c request's fields (px_h2cx_request), kept likewise */
    px_buf_t req_trailers;       /* the h2c request's trailer fields (trl_nv), kept likewise */
    struct px_h2cx *h2c_spare;   /* the last request's h2c state, recycled for the next */
    const px_sess_ops_t *ops;    /* the session answering ... */
    void *sess;                  /* ... and its own pointer for the ops */
    struct px_conn_env *env;     /* the worker's shared state (http/conn.h) */
    px_conninfo_t ci;
} px_exch_t;

/* ops/sess/env/ci/resp are the session's to set after this. */
void px_exch_init(px_exch_t *x);
/* Ends what the exchange holds (its upstream link is released unreusable)
 * and clears it for the next request; the two buffers are kept. */
void px_exch_reset(px_exch_t *x);
/* px_exch_reset, and the buffers it keeps freed. */
void px_exch_free(px_exch_t *x);
/* An idle connection's exchange holds no buffers. */
void px_exch_compact(px_exch_t *x);
/* px_exch_reset for an exchange kept to serve another stream: its buffers
 * over keep bytes are freed, and its response parser made new (limits). */
void px_exch_recycle(px_exch_t *x, const px_http1_limits_t *limits, size_t keep);
/* The limits of the model server's HTTP/1.1 response parser (x->resp): a
 * head as large as a client's may be; the body is streamed, never held. */
px_http1_limits_t px_exch_resp_limits(const px_config_t *cfg);

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
/* Driving, called by the session. The request's head has arrived
 * (after px_exch_begin): it is verified (off the loop) or written for the
 * upstream, which is connected once the body flows. */
PX_MUST_CHECK int px_exch_req_head(px_exch_t *x);
/* n bytes of the request body (copied). */
PX_MUST_CHECK int px_exch_req_data(px_exch_t *x, const char *p, size_t n);
/* The request's end, with its trailer fields t[0..n) (n may be 0; read
 * during the call only). They reach the model server where they can
 * (request_trailers in exchange.c says where). */
PX_MUST_CHECK int px_exch_req_end(px_exch_t *x, const px_header_t *t, int n);
/* 1: the exchange takes more request input now; 0: hold it (the response
 * comes first, a signature is being verified, or the upstream is slower). */
PX_MUST_CHECK int px_exch_req_room(px_exch_t *x);
/* 1 while request body bytes wait for the upstream to take them: the
 * client is not idle then, the upstream is (and is timed for it). */
int px_exch_upstream_behind(const px_exch_t *x);
/* Writes what waits for the upstream, when it can take it. */
PX_MUST_CHECK int px_exch_flush_upstream(px_exch_t *x);
/* Response output has left the session: read the upstream again below
 * PX_HIGH_WATER. */
void px_exch_resp_drained(px_exch_t *x);
/* Gives the upstream link back (to the pool only when reusable and the
 * request was complete). */
void px_exch_release_upstream(px_exch_t *x, int reusable);

/* The access-log line and the request counters, once per exchange. */
void px_exch_log(px_exch_t *x, const px_conninfo_t *ci);
/* An exchange not yet logged is logged now: with the status the client
 * saw, or 499 when it saw none, and why as its error unless it has one. */
void px_exch_log_unfinished(px_exch_t *x, const px_conninfo_t *ci, px_end_reason_t why);

#endif
