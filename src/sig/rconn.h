/* One pipelined connection to Redis on a libuv loop, built on hiredis's
 * public pieces only: redisReader parses the replies, redisFormatCommandArgv
 * encodes the commands; the socket, the optional TLS session, the write
 * queue and the FIFO of commands waiting for their replies are ours.
 *
 * Whatever the peer sends, the process never aborts: a reply that answers
 * no command, a reply past the size limit, a protocol error or a malformed
 * message on a subscribed connection drop the connection with a reason.
 *
 * Events (CONNECTED, CONNECT_FAILED, CLOSED) always arrive from the loop,
 * never from inside a px_rconn_* call. Reply callbacks run from the loop
 * with the reply (valid during the call only) or, when the connection
 * fails or is closed, with NULL (from inside px_rconn_close too). */
#ifndef PX_RCONN_H
#define PX_RCONN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct redisReply;
typedef struct px_rconn px_rconn_t;

typedef enum { PX_RCONN_CONNECTED, PX_RCONN_CONNECT_FAILED, PX_RCONN_CLOSED } px_rconn_event_t;

/* why: the reason for CONNECT_FAILED and CLOSED ("disconnected" when asked). */
typedef void (*px_rconn_event_cb)(px_rconn_t *c, px_rconn_event_t ev, const char *why);
typedef void (*px_rconn_reply_cb)(px_rconn_t *c, struct redisReply *rep, void *priv);

/* Connects to ip:port (or the Unix socket path ip). With tls (a client
 * context), a TLS session over the socket (wolfSSL, memory I/O), server_name
 * (or NULL) sent and verified; CONNECTED once its handshake is done, and no
 * command leaves before. NULL with why filled. */
struct px_tls_ctx;
px_rconn_t *px_rconn_open(uv_loop_t *loop, const char *ip, uint16_t port, int is_unix,
                          struct px_tls_ctx *tls, const char *server_name,
                          px_rconn_event_cb ev, void *data, char *why, size_t whylen);
void *px_rconn_data(const px_rconn_t *c);

/* Queues a command (sent once connected). -1 when the connection is closing,
 * subscribed, out of memory or its unsent bytes are over the limit. */
int px_rconn_command(px_rconn_t *c, int argc, const char **argv, const size_t *lens,
                     px_rconn_reply_cb cb, void *priv);
/* The same for SUBSCRIBE: from its reply on, every message goes to cb and
 * no other command is accepted. */
int px_rconn_subscribe(px_rconn_t *c, int argc, const char **argv, const size_t *lens,
                       px_rconn_reply_cb cb, void *priv);
/* No new commands; closes once the commands sent have their replies, then
 * CLOSED ("disconnected"). */
void px_rconn_disconnect(px_rconn_t *c);
/* Closes now: commands waiting get NULL; no event. The memory goes once the
 * loop has closed the socket. */
void px_rconn_close(px_rconn_t *c);

#endif
