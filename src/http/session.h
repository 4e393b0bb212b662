/* Between a client connection (conn.c: accept, handshake, closing,
 * drain) and the HTTP/1.1 session on it (h1.c: the request parsing loop,
 * response framing, keep-alive, pipelining, the header/idle/body timers,
 * and the session ops its exchange answers through, proxy/exchange.h).
 * Only these two files include it.
 *
 * The close rule (conn.h) holds across it: a call that can close the
 * connection returns PX_MUST_CHECK int, GONE (-1) meaning nothing may
 * touch the connection's handles or parse its input any more. Closing is
 * conn.c's (px_conn_abort, px_conn_begin_close); before it closes, it lets
 * the session end what it holds (px_h1_abort_prep, px_h1_stop).
 *
 * The session is chosen after the handshake by ALPN: HTTP/2 when the
 * client and tls.alpn agree on "h2" (h2_session.c, its state behind
 * c->h2), HTTP/1.1 otherwise (h1.c, c->h1); the two share a union, and
 * conn.c reaches either only through c->sess (px_conn_sess_t). */
#ifndef PX_SESSION_H
#define PX_SESSION_H

#include <stdint.h>

#include "core/buf.h"
#include "core/defer.h"
#include "http/conn.h"
#include "http/http1.h"
#include "net/transport.h"
#include "proxy/exchange.h"

#define GONE (-1)

typedef enum { C_HANDSHAKE, C_IDLE, C_REQUEST, C_CLOSING, C_CLOSED } px_cstate_t;
/* The transport's one timer expires for one of these (px_conn_arm).
 * Handshake, linger and send are the connection's; the rest the session's.
 * T_IDLE: the first second between requests; then buffers are released
 * and the rest of the keep-alive time runs as T_KEEPALIVE. */
typedef enum { T_NONE, T_HANDSHAKE, T_HEADER, T_IDLE, T_KEEPALIVE, T_BODY, T_LINGER,
               T_SEND, /* a write pending while nothing else is timed (conn.c) */
               T_H2 /* the HTTP/2 session's tick (stalls, idle) */ } px_tkind_t;

struct px_h2conn;
#define PX_H2_TICK_MS 1000        /* T_H2: the HTTP/2 session's stall and idle checks */

/* What conn.c asks of the session on it (the px_h1_* / px_h2s_* below). */
typedef struct px_conn_sess {
    const char *protocol;                         /* access log: "HTTP/1.1", "h2" */
    PX_MUST_CHECK int (*input)(px_conn_t *c);
    void (*sent)(px_conn_t *c);
    void (*written)(px_conn_t *c);
    void (*timer)(px_conn_t *c);
    PX_MUST_CHECK int (*abort_prep)(px_conn_t *c, px_end_reason_t why);
    void (*stop)(px_conn_t *c);
    void (*log_unfinished)(px_conn_t *c, px_end_reason_t why);
    /* Drain: close now when idle, or tell the client (h2: GOAWAY). */
    PX_MUST_CHECK int (*drain)(px_conn_t *c);
    int (*job_pending)(const px_conn_t *c);
} px_conn_sess_t;

extern const px_conn_sess_t px_h1_sess;
extern const px_conn_sess_t px_h2_sess;

/* The HTTP/1.1 session's state (h1.c). */
typedef struct px_h1 {
    px_conn_t *conn;             /* the connection it belongs to */
    px_buf_t scratch;            /* response heads and chunk framing */
    px_http1_t *req;             /* the request parser (the exchange has the response's) */
    px_exch_t x;                 /* the exchange in progress */
    int client_minor;            /* its request's HTTP/1.x minor version */
    int chunked_down;            /* its response is chunked towards the client */
    int hold_small;              /* a small fixed-length response, staged whole, one record */
    uint32_t requests;
    px_defer_item_t resume;      /* input taken up from the loop (resume_cb) */
    px_defer_item_t done;        /* an exchange answered with a kept error ends (done_cb) */
    int resume_after_write;      /* ... once the write in flight has left */
} px_h1_t;

struct px_conn {
    px_conn_env_t *env;
    px_transport_t tp;           /* socket + TLS session; its timer expires for tkind (see px_conn_arm) */
    px_cstate_t state;
    px_tkind_t tkind;
    const px_conn_sess_t *sess;  /* HTTP/1.1 until ALPN chooses h2 */
    uint64_t req_deadline;       /* loop ms by which the request must be complete; 0: none yet */
    union {                      /* the session's own state, by c->sess; allocated
                                  * apart, so that an HTTP/2 connection does not carry
                                  * the HTTP/1.1 state (1.3 KiB, mostly its exchange) */
        px_h1_t *h1;             /* HTTP/1.1 (h1.c): from accept until ALPN chooses h2 */
        struct px_h2conn *h2;    /* HTTP/2 (h2_session.c), after px_h1_free */
    };
    px_conn_t *next, *prev;
};

/* conn.c, for the session */
/* Closing is one way: no transition leaves C_CLOSING or C_CLOSED. */
void px_conn_set_state(px_conn_t *c, px_cstate_t s);
/* Arms the transport's timer for kind (T_NONE disarms). */
void px_conn_arm(px_conn_t *c, px_tkind_t kind);
/* Closes at once; an unfinished exchange is logged with why. Always GONE. */
PX_MUST_CHECK int px_conn_abort(px_conn_t *c, px_end_reason_t why);
/* Closes gracefully (the response in flight leaves first). Always GONE. */
PX_MUST_CHECK int px_conn_begin_close(px_conn_t *c);
/* The client took nothing for timeouts.send_idle: counted, closed at once.
 * Always GONE. */
PX_MUST_CHECK int px_conn_send_timed_out(px_conn_t *c);
/* Plaintext for the client, staged (transport.h). */
PX_MUST_CHECK int px_conn_send(px_conn_t *c, const char *p, size_t n);
/* What is staged leaves now. */
PX_MUST_CHECK int px_conn_flush(px_conn_t *c);
/* Decrypts what arrived and lets the session take it (the handshake
 * first, while it lasts). */
PX_MUST_CHECK int px_conn_process(px_conn_t *c);
/* Frees a closed connection whose handles are all closed (a job's end). */
void px_conn_free_if_closed(px_conn_t *c);

/* h1.c, for the connection */
/* ops, env, parsers: at accept. px_h1_open: -1 when out of memory. */
void px_h1_init(px_conn_t *c);
int px_h1_open(px_conn_t *c);
void px_h1_free(px_conn_t *c);
/* The handshake is done: wait for the first request. */
void px_h1_start(px_conn_t *c);
/* Input arrived (or may be taken up again): parse and serve it. */
PX_MUST_CHECK int px_h1_input(px_conn_t *c);
/* Output has left: the exchange may read its upstream again, and input
 * held back while the output drained is taken up. From tp_sent only. */
void px_h1_sent(px_conn_t *c);
/* Staged output left at once (px_conn_flush). */
void px_h1_written(px_conn_t *c);
/* The session's timers (T_HEADER, T_BODY, T_IDLE, T_KEEPALIVE). */
void px_h1_timer(px_conn_t *c);
/* Before closing at once: a held response goes out, the exchange is
 * logged with why, its upstream link is released. */
PX_MUST_CHECK int px_h1_abort_prep(px_conn_t *c, px_end_reason_t why);
/* Before closing gracefully: no more input is taken up, the upstream link
 * is released. */
void px_h1_stop(px_conn_t *c);
/* The client broke the TLS session: an unfinished exchange is logged. */
void px_h1_log_unfinished(px_conn_t *c, px_end_reason_t why);
/* 1 when no request is in progress or waiting (drain closes it now). */
int px_h1_idle(px_conn_t *c);
/* 1 while a thread-pool job points at the connection (it frees it). */
int px_h1_job_pending(const px_conn_t *c);

/* h2_session.c, for the connection */
/* The handshake chose h2: the HTTP/1.1 state is freed, the session starts
 * (our SETTINGS queued). -1 when out of memory (HTTP/1.1 state kept). */
int px_h2s_start(px_conn_t *c);
void px_h2s_free(px_conn_t *c);

#endif
