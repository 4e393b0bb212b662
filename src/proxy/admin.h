/* The admin listener: plaintext HTTP/1.1 on its own port (127.0.0.1:9901
 * by default) for probes and scrapes: /healthz, /readyz, /metrics. It runs
 * on the main thread's loop, away from the workers' hot path. */
#ifndef PX_ADMIN_H
#define PX_ADMIN_H

#include <stddef.h>
#include <uv.h>

#include "core/buf.h"
#include "config/config.h"

typedef struct px_admin px_admin_t;

/* Completes a readiness question: ready 1, or 0 with a reason. */
typedef void (*px_admin_ready_done_t)(void *token, int ready, const char *why);

typedef struct {
    /* Answers through done(token, ...), now or later (it may probe the
     * model server first); done is called exactly once. */
    void (*ready)(void *ud, void *token, px_admin_ready_done_t done);
    /* Appends the Prometheus exposition. */
    int (*metrics)(void *ud, px_buf_t *out);
    void *ud;
} px_admin_handlers_t;

px_admin_t *px_admin_start(uv_loop_t *loop, const px_addr_t *addr, const px_admin_handlers_t *h,
                           char *err, size_t errlen);
/* Closes the listener and every admin connection; frees itself afterwards. */
void px_admin_close(px_admin_t *a);

#endif
