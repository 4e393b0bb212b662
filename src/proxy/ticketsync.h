/* Keeps the session-ticket keys (net/tickets.h) in step with their shared
 * source, on the main loop: source "file" stats the key file every
 * check_interval_ms and re-reads it when it changed; source "redis" runs
 * one script per check_interval_ms on a Redis connection of its own
 * (sig/rstore.h, the address and credentials of signatures.replay_store):
 * whichever replica takes the rotation lease (SET NX PX rotation period)
 * rotates, and every replica reads the current and previous key
 * (docs/config.md, "Session-ticket keys"). When the file is bad or Redis
 * is unavailable the keys in use stay, and that is logged once. */
#ifndef PX_TICKETSYNC_H
#define PX_TICKETSYNC_H

#include <stdint.h>
#include <uv.h>

#include "config/config.h"

typedef struct px_ticketsync px_ticketsync_t;

/* NULL when there is nothing to follow (source "local", tickets off). */
px_ticketsync_t *px_ticketsync_start(uv_loop_t *loop, const px_config_t *cfg);
/* Process-wide: checks that took new keys, and checks that failed. */
void px_ticketsync_counts(uint64_t *updates, uint64_t *failures);
/* The memory goes once the loop has closed the handles. */
void px_ticketsync_stop(px_ticketsync_t *t);

#endif
