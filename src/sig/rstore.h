/* The shared replay store: one Redis connection per worker, on the
 * worker's libuv loop (sig/rconn.c: hiredis's reply parser only), so replicas behind one
 * Service share their nonces (docs/signatures.md, "Replicas").
 *
 * A check is `SET <prefix><keyid>:<nonce> <token> NX PX <ttl>`: Redis
 * records the nonce and answers whether it was new, atomically across
 * every replica; px_rstore_release gives it back by its token. Checks are pipelined on the one connection; each has a deadline
 * (timeout_ms). A lost connection is re-opened with a backoff (50 ms
 * doubling to 2 s); meanwhile checks are answered UNAVAILABLE without a
 * round trip. A connection silent for max(10 x timeout_ms, 1 s) while
 * checks time out is dropped and re-opened the same way. AUTH (ACL user and password) is sent first on every
 * connection.
 *
 * Before each connect a host name is resolved on the libuv pool
 * (uv_getaddrinfo), never on the loop. With Redis Sentinel the master is
 * asked of the sentinels in turn, checked with ROLE, and followed: the
 * sentinel that answered stays subscribed to +switch-master, and a
 * READONLY reply or a lost connection starts a new attempt. The
 * connections are the project's own (sig/rconn.h): what the peer sends
 * never aborts the process; a reply to no command drops the connection.
 *
 * The callback runs exactly once per check, always from the loop, never
 * from inside px_rstore_check (also when the store is closed: then with
 * UNAVAILABLE). Only the loop's thread may call these functions. */
#ifndef PX_RSTORE_H
#define PX_RSTORE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config/config.h"

typedef struct px_rstore px_rstore_t;

#define PX_RSTORE_RESULTS(XX)          \
    XX(OK,          "ok")              \
    XX(REPLAYED,    "replayed")        \
    XX(UNAVAILABLE, "unavailable")     \
    XX(TIMEOUT,     "timeout")

typedef enum {
#define XX(name, str) PX_RSTORE_##name,
    PX_RSTORE_RESULTS(XX)
#undef XX
    PX_RSTORE__COUNT
} px_rstore_result_t;

const char *px_rstore_result_name(px_rstore_result_t r);

typedef void (*px_rstore_cb)(px_rstore_result_t r, void *ud);

/* Starts connecting now. NULL when out of memory. cfg is copied. */
px_rstore_t *px_rstore_new(uv_loop_t *loop, const px_replay_store_config_t *cfg, int worker_id);
/* The same connection for other uses (ticket keys: proxy/ticketsync.c):
 * who names it in log lines; with an empty cfg->prefix the outage line
 * does not speak of the replay policy. */
px_rstore_t *px_rstore_open(uv_loop_t *loop, const px_replay_store_config_t *cfg, const char *who);
/* Closes the connection and the timers; pending checks complete with
 * UNAVAILABLE; the memory goes once the loop has closed the handles. */
void px_rstore_close(px_rstore_t *s);

/* Records (keyid, nonce) for ttl_ms (clamped to >= 1), with a value
 * unique to this check, written into token (what px_rstore_release needs).
 * 0, or PX_ENOMEM (then cb never runs). */
#define PX_RSTORE_TOKEN_LEN 33    /* a decimal of up to 19 digits */
int px_rstore_check(px_rstore_t *s, const char *keyid, const char *nonce, int64_t ttl_ms,
                    char token[PX_RSTORE_TOKEN_LEN], px_rstore_cb cb, void *ud);

/* Gives back a nonce a check recorded (answered OK) for a request that was
 * then refused: deleted only while it still holds that check's token, in
 * one step on the server (a script), so a nonce another request has
 * recorded since is never freed. Fire and forget: when Redis is
 * unavailable, refuses the script or the deadline passes, the nonce stays
 * used until its TTL (logged). */
void px_rstore_release(px_rstore_t *s, const char *keyid, const char *nonce, const char *token);

/* Any command (argv with byte lengths, binary-safe). cb runs exactly once,
 * from the loop, with the reply (valid during the call only), or NULL when
 * Redis is unavailable, the deadline passed or the store closed. 0, or
 * PX_ENOMEM (then cb never runs). */
struct redisReply;
typedef void (*px_rstore_reply_cb)(struct redisReply *rep, void *ud);
int px_rstore_command(px_rstore_t *s, int argc, const char **argv, const size_t *lens,
                      px_rstore_reply_cb cb, void *ud);

/* Loads the tls files of a redis store (CA, client certificate and key)
 * as a connection will: 0, or PX_ECONFIG with "signatures.replay_store.tls:
 * <reason naming the file>" in err. At load and check-config. */
int px_rstore_tls_check(const px_replay_store_config_t *cfg, char *err, size_t errlen);

/* on_unavailable: 1 for fail_open. */
int px_rstore_fail_open(const px_rstore_t *s);

/* Process-wide counts of checks by result, for /metrics. */
void px_rstore_counts(uint64_t out[PX_RSTORE__COUNT]);

#endif
