/* The client side's transport: one accepted TCP socket and its TLS session.
 * It reads ciphertext, decrypts it into a plaintext input buffer, encrypts
 * what the protocol session sends, keeps one write in flight, stops reading
 * when its buffers are full, and closes its handles before its owner frees
 * it. It knows nothing of HTTP: an HTTP/1.1 or HTTP/2 session sits on top.
 *
 * The close rule (conn.h) across this boundary: the transport never closes
 * itself inside a call. A call that finds the connection unusable returns
 * -1 (PX_MUST_CHECK) with the reason in px_transport_why(); the owner then
 * closes (px_transport_close) and returns GONE up its chain. From the loop,
 * the transport tells the owner through the callbacks below, which are
 * loop callbacks of the owner's and end with its settle(). Memory is freed
 * only by the owner, from on_closed, after every handle's close callback. */
#ifndef PX_TRANSPORT_H
#define PX_TRANSPORT_H

#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/buf.h"
#include "core/errors.h"
#include "core/ltimer.h"
#include "net/tls.h"

typedef struct px_transport px_transport_t;

typedef struct {
    void (*on_input)(px_transport_t *t);     /* ciphertext or the client's EOF arrived */
    void (*on_sent)(px_transport_t *t);      /* the write in flight has left, and what followed it */
    /* The transport cannot go on (read or write error, FIN while lingering,
     * shutdown done): the owner closes. read_failed: a read error. */
    void (*on_fail)(px_transport_t *t, px_end_reason_t why, int read_failed);
    void (*on_timer)(px_transport_t *t);     /* the deadline of px_transport_arm passed */
    void (*on_closed)(px_transport_t *t);    /* every handle is closed: the owner may free */
} px_transport_cb_t;

/* Embedded in its owner (no allocation of its own); fields are private to
 * transport.c, read them through the functions below. */
struct px_transport {
    const px_transport_cb_t *cb;
    void *ud;
    uv_tcp_t tcp;
    px_ltimer_t timer;
    uv_write_t wreq;
    uv_shutdown_t sreq;
    int open_handles;
    px_tls_t *tls;
    px_buf_t wout;               /* ciphertext being written to the client */
    px_buf_t in;                 /* decrypted, not yet parsed */
    px_buf_t plain;              /* small writes, staged to share one TLS record */
    size_t in_max;               /* the plaintext input is not filled beyond this */
    int writing, reading, eof, shutdown_sent, got_bytes, closing, closed;
    uint64_t write_since;        /* loop ms the write in flight began */
    px_end_reason_t why;         /* of the last failed call */
    char client_ip[INET6_ADDRSTRLEN];
    char client_addr[INET6_ADDRSTRLEN + 8];
};

/* Initialises both handles on loop (the owner must px_transport_close
 * from here on, also when px_transport_open fails). */
void px_transport_init(px_transport_t *t, uv_loop_t *loop, const px_transport_cb_t *cb, void *ud);
/* Takes fd (closed here when it cannot be taken) and learns the peer. */
int px_transport_open(px_transport_t *t, int fd);
/* The TLS session: the transport owns it and frees it in px_transport_free. */
void px_transport_set_tls(px_transport_t *t, px_tls_t *tls, size_t in_max);
/* The plaintext input is not filled beyond in_max (it may follow a reload). */
static inline void px_transport_set_input_max(px_transport_t *t, size_t in_max) { t->in_max = in_max; }
/* Closes both handles; on_closed follows from the loop. */
void px_transport_close(px_transport_t *t);
/* Frees the buffers and the TLS session (from on_closed). */
void px_transport_free(px_transport_t *t);

/* Decrypts what arrived into the plaintext input: 0, -1 (close at once),
 * or -2: the client broke the session; its alert is queued, close
 * gracefully so that it leaves before the FIN. */
PX_MUST_CHECK int px_transport_decrypt(px_transport_t *t);
/* Plaintext for the client; small pieces are staged to share a record. */
PX_MUST_CHECK int px_transport_send(px_transport_t *t, const char *p, size_t n);
/* Starts writing what is encrypted (one write in flight): 0, 1 when it all
 * left at once, -1. While closing, an empty output is followed by our FIN. */
PX_MUST_CHECK int px_transport_flush(px_transport_t *t);
/* From now on only the output leaves, then the FIN; input is discarded
 * until the client's FIN. notify: send close_notify after the staged bytes. */
PX_MUST_CHECK int px_transport_begin_close(px_transport_t *t, int notify);
/* Reads while there is room, stops when the input is full. */
void px_transport_update_reading(px_transport_t *t);
/* Releases idle buffers. */
void px_transport_compact(px_transport_t *t);
/* Expires ms from now (0 disarms), calling on_timer. */
void px_transport_arm(px_transport_t *t, uint32_t ms);

/* Bytes accepted but not yet written to the socket. */
size_t px_transport_pending(const px_transport_t *t);
static inline px_buf_t *px_transport_input(px_transport_t *t) { return &t->in; }
static inline size_t px_transport_staged(const px_transport_t *t) { return px_buf_size(&t->plain); }
static inline px_tls_t *px_transport_tls(const px_transport_t *t) { return t->tls; }
static inline int px_transport_writing(const px_transport_t *t) { return t->writing; }
/* How long the client has taken none of the write in flight (0: none is):
 * every write is begun at once after the one before it completes, so this
 * is the time since the client last made room. */
static inline uint64_t px_transport_write_stalled(const px_transport_t *t, uint64_t now)
{
    return t->writing && now > t->write_since ? now - t->write_since : 0;
}
static inline int px_transport_reading(const px_transport_t *t) { return t->reading; }
static inline int px_transport_eof(const px_transport_t *t) { return t->eof; }
static inline int px_transport_got_bytes(const px_transport_t *t) { return t->got_bytes; }
static inline int px_transport_handles_open(const px_transport_t *t) { return t->open_handles; }
static inline px_end_reason_t px_transport_why(const px_transport_t *t) { return t->why; }
static inline const char *px_transport_peer(const px_transport_t *t) { return t->client_addr; }
static inline const char *px_transport_peer_ip(const px_transport_t *t) { return t->client_ip; }

#endif
