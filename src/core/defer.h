/* Work deferred to the next turn of a worker's loop.
 *
 * A caller deep in a call chain (a response just finished, say) must not
 * start the next piece of work there: that work may close the object the
 * chain is still using. It queues an item instead; the item's callback
 * runs from the loop, at the top of a callback of its own. One idle handle
 * per worker, active only while something is queued, so poll does not
 * block on queued work and costs nothing otherwise. */
#ifndef PX_DEFER_H
#define PX_DEFER_H

#include <uv.h>

typedef struct px_defer_item px_defer_item_t;
typedef void (*px_defer_cb)(px_defer_item_t *it);

struct px_defer_item {           /* embedded in its owner; zeroed = not queued */
    px_defer_item_t *next, *prev;
    px_defer_cb cb;
};

typedef struct {
    uv_idle_t idle;
    px_defer_item_t queue;       /* sentinel of a circular list */
} px_defer_t;

int px_defer_init(uv_loop_t *loop, px_defer_t *d);
/* Queues it (once: queuing a queued item does nothing) to run cb later. */
void px_defer_add(px_defer_t *d, px_defer_item_t *it, px_defer_cb cb);
/* Unqueues it if queued: an owner calls this before it frees the item. */
void px_defer_cancel(px_defer_item_t *it);
int px_defer_queued(const px_defer_item_t *it);
/* Closes the idle handle; queued items are dropped without running. */
void px_defer_close(px_defer_t *d);

#endif
