/* Deferred work (see defer.h). */
#include "core/defer.h"

#include <stddef.h>

static void unlink_item(px_defer_item_t *it)
{
    it->prev->next = it->next;
    it->next->prev = it->prev;
    it->next = it->prev = NULL;
}

static void link_item(px_defer_item_t *head, px_defer_item_t *it)
{
    it->prev = head->prev;
    it->next = head;
    head->prev->next = it;
    head->prev = it;
}

static void run_cb(uv_idle_t *h)
{
    px_defer_t *d = h->data;
    px_defer_item_t batch;

    if (d->queue.next == &d->queue) {   /* all cancelled since they were queued */
        uv_idle_stop(&d->idle);
        return;
    }
    /* This turn runs what was queued before it; what the callbacks queue
     * waits for the next turn, so no item can keep the loop from polling. */
    batch.next = d->queue.next;
    batch.prev = d->queue.prev;
    batch.next->prev = &batch;
    batch.prev->next = &batch;
    d->queue.next = d->queue.prev = &d->queue;
    while (batch.next != &batch) {
        px_defer_item_t *it = batch.next;
        unlink_item(it);
        it->cb(it);
    }
    if (d->queue.next == &d->queue)
        uv_idle_stop(&d->idle);
}

int px_defer_init(uv_loop_t *loop, px_defer_t *d)
{
    d->queue.next = d->queue.prev = &d->queue;
    d->idle.data = d;
    return uv_idle_init(loop, &d->idle);
}

void px_defer_add(px_defer_t *d, px_defer_item_t *it, px_defer_cb cb)
{
    if (it->next)
        return;
    it->cb = cb;
    link_item(&d->queue, it);
    uv_idle_start(&d->idle, run_cb);
}

void px_defer_cancel(px_defer_item_t *it)
{
    if (it->next)
        unlink_item(it);
}

int px_defer_queued(const px_defer_item_t *it)
{
    return it->next != NULL;
}

void px_defer_close(px_defer_t *d)
{
    while (d->queue.next != &d->queue)
        unlink_item(d->queue.next);
    uv_close((uv_handle_t *)&d->idle, NULL);
}
