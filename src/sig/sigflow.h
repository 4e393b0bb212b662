/* Signatures in the proxy: what a configuration generation needs to verify
 * requests and sign responses (keyring, policy, one signer per worker),
 * and the thread-pool jobs that do the slow crypto off the event loops.
 *
 * A job's callback runs on the loop that queued it, always exactly once
 * (also when the owner has gone: the owner must then only free the job).
 * The process-wide replay cache outlives reloads, so a reload never forgets
 * a nonce. */
#ifndef PX_SIGFLOW_H
#define PX_SIGFLOW_H

#include <stdint.h>
#include <uv.h>

#include "config/config.h"
#include "http/http1.h"
#include "sig/rstore.h"
#include "sig/sig.h"

typedef struct px_sigctx px_sigctx_t;
typedef struct px_sigjob px_sigjob_t;
typedef void (*px_sigjob_cb)(px_sigjob_t *job, void *ud);

/* NULL with "key.path: reason" in err when keys cannot be loaded. With no
 * route using signatures the context is empty but valid. */
px_sigctx_t *px_sigctx_new(const px_config_t *cfg, int workers, char *err, size_t errlen);
px_sigctx_t *px_sigctx_ref(px_sigctx_t *s);
void px_sigctx_unref(px_sigctx_t *s);
/* The signer for a worker, or NULL when responses are not signed. */
px_sig_signer_t *px_sigctx_signer(px_sigctx_t *s, int worker);
uint64_t px_sigctx_max_body(const px_sigctx_t *s);

/* Sizes the libuv thread pool that runs the signature jobs; call before
 * the first job (libuv reads UV_THREADPOOL_SIZE once). threads 0: keep an
 * explicit UV_THREADPOOL_SIZE from the environment, else one thread per CPU
 * available to the process. Returns the size the pool will have. */
unsigned px_sig_pool_setup(unsigned threads);

/* Process-wide numbers for /metrics. */
typedef struct {
    uint64_t results[PX_SIG__COUNT];   /* request verifications by outcome */
    uint64_t classical;                /* accepted without ML-DSA (allow_classical) */
    uint64_t responses_signed;
    uint64_t queue_depth;              /* jobs queued or running now */
    uint64_t replay_entries, replay_capacity;
    uint64_t store_checks[PX_RSTORE__COUNT];   /* shared replay store checks by result */
    uint64_t store_fail_open;          /* accepted unchecked (on_unavailable fail_open) */
} px_sig_metrics_t;
void px_sig_metrics(px_sig_metrics_t *m);
void px_sig_count_response_signed(void);
/* Counts a result found outside px_sig_verify_request (the body digest). */
void px_sig_count_result(px_sig_result_t r);

/* Jobs queued or running now, across the process. */
uint64_t px_sig_queue_depth(void);
#define PX_SIG_QUEUE_MAX 2048   /* beyond: new signed requests get 503 */

/* Verifies a request head on the thread pool. The head's memory must stay
 * untouched until the callback (the owner stops parsing meanwhile). With a
 * store (the worker's, on `loop`), a request that passed everything and
 * its nonce is fresh in the process-wide cache is checked there too before
 * the callback: a nonce the store has seen is REPLAYED; a store
 * unavailable or past its deadline is STORE_UNAVAILABLE (fail_closed) or
 * accepted, counted and logged (fail_open). */
int px_sig_verify_async(uv_loop_t *loop, px_sigctx_t *s, px_rstore_t *store,
                        const px_http_head_t *head, px_sigjob_cb cb, void *ud, px_sigjob_t **out);
px_sig_result_t px_sigjob_result(const px_sigjob_t *j);
const px_sig_info_t *px_sigjob_info(const px_sigjob_t *j);
/* Copies the job's info into out, which then holds the request's nonce
 * (info.nonce_held): px_sigjob_free gives back a nonce nobody took (the
 * session closed while the job ran). */
void px_sigjob_take_info(px_sigjob_t *j, px_sig_info_t *out);

/* A verified request refused or abandoned before it was forwarded (its
 * body did not match Content-Digest, was too large, the client left):
 * its nonce is given back, locally and in the shared store (where only
 * while it still holds this request's token), so the genuine request
 * signed with it still passes. Once per nonce; a no-op when not held. */
void px_sig_nonce_release(px_sigctx_t *s, px_rstore_t *store, px_sig_info_t *info);

/* Finishes a response signature on the thread pool: digest and X-Signature
 * values appear in px_sigjob_digest()/px_sigjob_signature(). The job takes
 * ownership of r. */
int px_sig_sign_async(uv_loop_t *loop, px_sig_response_t *r, px_sigjob_cb cb, void *ud,
                      px_sigjob_t **out);
const px_buf_t *px_sigjob_digest(const px_sigjob_t *j);
const px_buf_t *px_sigjob_signature(const px_sigjob_t *j);
int px_sigjob_status(const px_sigjob_t *j);   /* 0 or a negative PX_E* code */

void px_sigjob_free(px_sigjob_t *j);

#endif
