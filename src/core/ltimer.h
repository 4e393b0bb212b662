/* A lazy timeout over a libuv timer. Arming only records the deadline; the
 * libuv timer is restarted only when it would fire too late, and a timer
 * that fires early re-arms for what remains. A busy keep-alive connection
 * moves its deadline on every request, and this way that costs no
 * timer-heap work (HAProxy's task expiry works alike; nginx skips small
 * moves). The owner initialises, sets data on and closes `timer` itself. */
#ifndef PX_LTIMER_H
#define PX_LTIMER_H

#include <stdint.h>
#include <uv.h>

typedef struct {
    uv_timer_t timer;
    uint64_t deadline;       /* loop ms it expires at; 0: disarmed */
    uint64_t due;            /* loop ms the libuv timer fires at, while active */
} px_ltimer_t;

/* Expires ms from the loop's now, calling cb; ms 0 disarms. */
void px_ltimer_arm(px_ltimer_t *t, uint32_t ms, uv_timer_cb cb);
/* First thing in cb: 1 when the deadline has passed (the timer is then
 * disarmed), 0 when there is nothing to do (disarmed, or moved later and
 * re-armed for the rest). */
int px_ltimer_expired(px_ltimer_t *t, uv_timer_cb cb);

#endif
