/* Lazy timeouts (see ltimer.h). */
#include "core/ltimer.h"

void px_ltimer_arm(px_ltimer_t *t, uint32_t ms, uv_timer_cb cb)
{
    if (!ms) {
        t->deadline = 0;        /* a running timer finds nothing to do and stops */
        return;
    }
    t->deadline = uv_now(uv_handle_get_loop((uv_handle_t *)&t->timer)) + ms;
    if (!uv_is_active((uv_handle_t *)&t->timer) || t->due > t->deadline) {
        uv_timer_start(&t->timer, cb, ms, 0);
        t->due = t->deadline;
    }
}

int px_ltimer_expired(px_ltimer_t *t, uv_timer_cb cb)
{
    uint64_t now = uv_now(uv_handle_get_loop((uv_handle_t *)&t->timer));

    if (!t->deadline)
        return 0;
    if (now < t->deadline) {    /* moved later since the timer was started */
        uv_timer_start(&t->timer, cb, t->deadline - now, 0);
        t->due = t->deadline;
        return 0;
    }
    t->deadline = 0;
    return 1;
}
