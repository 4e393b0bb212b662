/* Nonce replay cache for request signatures (docs/signatures.md section 7).
 *
 * One cache is shared by every worker thread: a replay sent to another
 * worker or connection must be caught too. It is split into 64 shards, each
 * a fixed-size open-addressing table behind its own mutex, so threads
 * contend only when they hit the same shard and no lock is held across
 * anything but a table probe. Entries are keyed by SHA-256(keyid NUL nonce)
 * truncated to 128 bits and kept until their expiry.
 *
 * Memory is bounded: at most max_entries live entries (rounded up to a
 * multiple of the shard count), allocated once at creation. When a shard
 * is full, its expired entries are swept (at most once per second per
 * shard); if it is still full the insertion is refused (PX_REPLAY_FULL):
 * the cache fails closed, it never forgets a live nonce. */
#ifndef PX_REPLAY_H
#define PX_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#define PX_REPLAY_SHARDS 64
#define PX_REPLAY_DEFAULT_ENTRIES 262144

typedef struct px_replay px_replay_t;

typedef enum {
    PX_REPLAY_FRESH = 0,  /* not seen: now recorded until `expiry` */
    PX_REPLAY_SEEN,       /* seen and not yet expired: a replay */
    PX_REPLAY_FULL,       /* not seen, but no room (every entry is live) */
    PX_REPLAY_ERROR       /* hashing failed */
} px_replay_status_t;

/* max_entries 0 = PX_REPLAY_DEFAULT_ENTRIES. NULL when out of memory. */
px_replay_t *px_replay_new(size_t max_entries);
void px_replay_free(px_replay_t *c);

/* Atomically checks (keyid, nonce) and records it until `expiry` (seconds,
 * the same clock as `now`). An entry whose expiry is <= now is gone. */
px_replay_status_t px_replay_check_insert(px_replay_t *c, const char *keyid, size_t keyid_len,
                                          const char *nonce, size_t nonce_len, int64_t expiry,
                                          int64_t now);

/* Forgets (keyid, nonce) if it is still the entry recorded until
 * `expiry`: for a request refused after its nonce was recorded here (the
 * shared store could not confirm it, or the body did not match its
 * Content-Digest), so the nonce is not used up by a request that never
 * went through. An entry recorded since by another signature (another
 * expiry) stays. */
void px_replay_forget(px_replay_t *c, const char *keyid, size_t keyid_len, const char *nonce,
                      size_t nonce_len, int64_t expiry);

/* Live + not yet swept entries (approximate while other threads insert). */
size_t px_replay_count(px_replay_t *c);
/* The capacity actually allocated (>= max_entries asked). */
size_t px_replay_capacity(const px_replay_t *c);

#endif
