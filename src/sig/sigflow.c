/* Signature context and thread-pool jobs (see sigflow.h). */
#include "sig/sigflow.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/cpus.h"
#include "core/errors.h"
#include "core/log.h"
#include "sig/replay.h"
#include "sig/rstore.h"

struct px_sigctx {
    atomic_int refs;
    px_sig_keyring_t *ring;           /* NULL when no route verifies */
    px_sig_policy_t policy;
    char *required[PX_MAX_SIG_HEADERS];
    px_sig_signer_t **signers;        /* one per worker; NULL when no route signs */
    int nsigners;
    uint64_t max_body;
};

typedef enum { JOB_VERIFY, JOB_SIGN } job_kind_t;

struct px_sigjob {
    uv_work_t work;
    job_kind_t kind;
    px_sigjob_cb cb;
    void *ud;
    /* verify */
    px_sigctx_t *ctx;
    px_rstore_t *store;               /* the worker's shared replay store, or NULL */
    px_sig_msg_t msg;
    px_sig_result_t result;
    px_sig_info_t info;
    /* sign */
    px_sig_response_t *resp;
    px_buf_t digest, sig;
    int status;
};

/* Process-wide: the stats every verification counts into, and the replay
 * cache, created once with the first configuration's size. */
static px_sig_stats_t stats;
static px_replay_t *replay;
static pthread_mutex_t replay_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_uint_fast64_t queue_depth, responses_signed, store_fail_open;
static atomic_int_fast64_t fail_open_logged;   /* time(): one loud line per second */

_Static_assert(sizeof(((px_sig_info_t *)0)->store_token) == PX_RSTORE_TOKEN_LEN, "token fits");

static px_replay_t *replay_get(size_t entries)
{
    px_replay_t *r;
    pthread_mutex_lock(&replay_lock);
    if (!replay)
        replay = px_replay_new(entries);
    r = replay;
    pthread_mutex_unlock(&replay_lock);
    return r;
}

px_sigctx_t *px_sigctx_new(const px_config_t *cfg, int workers, char *err, size_t errlen)
{
    px_sigctx_t *s = calloc(1, sizeof *s);
    int verify = 0, sign = 0;

    if (!s)
        goto nomem;
    atomic_init(&s->refs, 1);
    for (int i = 0; i < cfg->route_count; i++) {
        verify |= cfg->routes[i].verify != PX_VERIFY_OFF;
        sign |= cfg->routes[i].sign_responses;
    }
    px_sig_policy_default(&s->policy);
    s->policy.max_skew_s = cfg->sig.max_skew_s;
    s->policy.max_validity_s = cfg->sig.max_validity_s;
    s->policy.allow_classical = cfg->sig.allow_classical;
    s->policy.stats = &stats;
    for (int i = 0; i < cfg->sig.required_header_count; i++)
        if (!(s->required[i] = strdup(cfg->sig.required_headers[i])))
            goto nomem;
    s->policy.required_headers = (const char *const *)s->required;
    s->policy.required_count = cfg->sig.required_header_count;
    s->max_body = cfg->sig.max_signed_body_bytes;
    if (verify) {
        char e[512];
        if (!replay_get(cfg->sig.replay_cache_entries))
            goto nomem;
        s->ring = px_sig_keyring_load_dir(cfg->sig.keyring, e, sizeof e);
        if (!s->ring) {
            snprintf(err, errlen, "signatures.keyring: %s", e);
            goto fail;
        }
    }
    if (sign) {
        s->signers = calloc((size_t)workers, sizeof *s->signers);
        if (!s->signers)
            goto nomem;
        for (int i = 0; i < workers; i++) {
            char e[512];
            if (px_sig_signer_load(cfg->sig.response_key, cfg->sig.response_keyid, &s->signers[i],
                                   e, sizeof e) != 0) {
                snprintf(err, errlen, "signatures.response_key: %s", e);
                goto fail;
            }
            s->nsigners++;
        }
    }
    return s;
nomem:
    snprintf(err, errlen, "signatures: out of memory");
fail:
    px_sigctx_unref(s);
    return NULL;
}

px_sigctx_t *px_sigctx_ref(px_sigctx_t *s)
{
    atomic_fetch_add(&s->refs, 1);
    return s;
}

void px_sigctx_unref(px_sigctx_t *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    px_sig_keyring_free(s->ring);
    for (int i = 0; i < s->nsigners; i++)
        px_sig_signer_free(s->signers[i]);
    free(s->signers);
    for (int i = 0; i < PX_MAX_SIG_HEADERS; i++)
        free(s->required[i]);
    free(s);
}

px_sig_signer_t *px_sigctx_signer(px_sigctx_t *s, int worker)
{
    return s && worker < s->nsigners ? s->signers[worker] : NULL;
}

uint64_t px_sigctx_max_body(const px_sigctx_t *s)
{
    return s->max_body;
}

void px_sig_metrics(px_sig_metrics_t *m)
{
    memset(m, 0, sizeof *m);
    for (int i = 0; i < PX_SIG__COUNT; i++)
        m->results[i] = atomic_load(&stats.result[i]);
    m->classical = atomic_load(&stats.classical);
    m->responses_signed = atomic_load(&responses_signed);
    m->queue_depth = atomic_load(&queue_depth);
    px_rstore_counts(m->store_checks);
    m->store_fail_open = atomic_load(&store_fail_open);
    pthread_mutex_lock(&replay_lock);
    if (replay) {
        m->replay_entries = px_replay_count(replay);
        m->replay_capacity = px_replay_capacity(replay);
    }
    pthread_mutex_unlock(&replay_lock);
}

uint64_t px_sig_queue_depth(void)
{
    return atomic_load(&queue_depth);
}

void px_sig_count_result(px_sig_result_t r)
{
    if ((unsigned)r < PX_SIG__COUNT)
        atomic_fetch_add(&stats.result[r], 1);
}

void px_sig_count_response_signed(void)
{
    atomic_fetch_add(&responses_signed, 1);
}

unsigned px_sig_pool_setup(unsigned threads)
{
    const char *env = getenv("UV_THREADPOOL_SIZE");
    char v[16];

    /* More crypto threads than cores only adds preemption: every job is
     * CPU-bound, and each extra context switch costs the event loops. A
     * sidecar limited to 2 CPUs on a 64-core node gets 2, not 64. */
    if (threads == 0 && env && *env)
        return (unsigned)strtoul(env, NULL, 10);
    if (threads == 0)
        threads = px_cpu_count();
    snprintf(v, sizeof v, "%u", threads);
    setenv("UV_THREADPOOL_SIZE", v, 1);
    return threads;
}

/* --- jobs ----------------------------------------------------------------------- */

static void work_cb(uv_work_t *w)
{
    px_sigjob_t *j = w->data;
    if (j->kind == JOB_VERIFY) {
        j->result = px_sig_verify_request(j->ctx->ring, replay, &j->ctx->policy, &j->msg,
                                          (int64_t)time(NULL), &j->info);
        j->info.nonce_held = j->result == PX_SIG_OK;    /* recorded in the local cache */
    } else {
        j->status = px_sig_response_finish(j->resp, (int64_t)time(NULL), 300, &j->digest, &j->sig);
    }
}

/* A verification's result moves from "ok" to what the shared store said. */
static void recount(px_sigjob_t *j, px_sig_result_t r)
{
    atomic_fetch_sub(&stats.result[PX_SIG_OK], 1);
    px_sig_count_result(r);
    j->result = r;
}

/* The shared store's answer on a request that passed everything else. */
static void stored(px_rstore_result_t res, void *ud)
{
    px_sigjob_t *j = ud;
    px_sig_info_t *in = &j->info;
    int64_t now = (int64_t)time(NULL);

    if (res != PX_RSTORE_OK && res != PX_RSTORE_TIMEOUT)
        in->store_token[0] = 0;       /* nothing of ours in Redis (a late SET may be) */
    if (res == PX_RSTORE_REPLAYED) {
        /* held elsewhere, maybe only reserved (a body still awaited, to be
         * given back): Redis decides the next time, not this local entry */
        px_sig_nonce_release(j->ctx, NULL, in);
        recount(j, PX_SIG_REPLAYED);
        snprintf(in->detail, sizeof in->detail,
                 "nonce \"%s\" already used by keyid \"%s\" (shared replay store)", in->nonce,
                 in->keyid);
    } else if (res != PX_RSTORE_OK && px_rstore_fail_open(j->store)) {
        atomic_fetch_add(&store_fail_open, 1);
        if (atomic_exchange(&fail_open_logged, now) != now)
            px_warn("replay store %s: ACCEPTED keyid \"%s\" nonce \"%s\" without the shared "
                    "replay check (on_unavailable: fail_open; replays across replicas are not "
                    "caught now)", px_rstore_result_name(res), in->keyid, in->nonce);
    } else if (res != PX_RSTORE_OK) {
        /* not accepted: give the nonce back, also in Redis after a timeout (the
         * SET may land later: the release follows it on the same connection) */
        px_sig_nonce_release(j->ctx, j->store, in);
        recount(j, PX_SIG_STORE_UNAVAILABLE);
        snprintf(in->detail, sizeof in->detail, "the shared replay store is unavailable (%s)",
                 px_rstore_result_name(res));
    }
    j->cb(j, j->ud);
}

static void after_cb(uv_work_t *w, int status)
{
    px_sigjob_t *j = w->data;
    atomic_fetch_sub(&queue_depth, 1);
    if (status == UV_ECANCELED) {          /* never ran */
        j->result = PX_SIG_INTERNAL;
        j->status = PX_EIO;
    }
    if (j->kind == JOB_VERIFY && j->result == PX_SIG_OK && j->store) {
        /* valid for the signature's remaining window plus the skew allowed */
        int64_t ttl = j->info.expires + (int64_t)j->ctx->policy.max_skew_s - (int64_t)time(NULL);
        if (px_rstore_check(j->store, j->info.keyid, j->info.nonce, ttl * 1000,
                            j->info.store_token, stored, j) == 0)
            return;
        stored(PX_RSTORE_UNAVAILABLE, j);
        return;
    }
    j->cb(j, j->ud);
}

static int submit(uv_loop_t *loop, px_sigjob_t *j)
{
    int rc;
    j->work.data = j;
    atomic_fetch_add(&queue_depth, 1);
    rc = uv_queue_work(loop, &j->work, work_cb, after_cb);
    if (rc != 0)
        atomic_fetch_sub(&queue_depth, 1);
    return rc;
}

int px_sig_verify_async(uv_loop_t *loop, px_sigctx_t *s, px_rstore_t *store,
                        const px_http_head_t *head, px_sigjob_cb cb, void *ud, px_sigjob_t **out)
{
    px_sigjob_t *j;
    int rc;

    if (!s->ring)
        return PX_EINVAL;
    j = calloc(1, sizeof *j);
    if (!j)
        return PX_ENOMEM;
    j->kind = JOB_VERIFY;
    j->cb = cb;
    j->ud = ud;
    j->ctx = px_sigctx_ref(s);
    j->store = store;
    px_sig_msg_from_head(&j->msg, head);
    rc = submit(loop, j);
    if (rc != 0) {
        px_sigjob_free(j);
        return rc;
    }
    *out = j;
    return 0;
}

int px_sig_sign_async(uv_loop_t *loop, px_sig_response_t *r, px_sigjob_cb cb, void *ud,
                      px_sigjob_t **out)
{
    px_sigjob_t *j = calloc(1, sizeof *j);
    int rc;

    if (!j) {
        px_sig_response_free(r);
        return PX_ENOMEM;
    }
    j->kind = JOB_SIGN;
    j->cb = cb;
    j->ud = ud;
    j->resp = r;
    px_buf_init(&j->digest, 0);
    px_buf_init(&j->sig, 0);
    rc = submit(loop, j);
    if (rc != 0) {
        px_sigjob_free(j);
        return rc;
    }
    *out = j;
    return 0;
}

px_sig_result_t px_sigjob_result(const px_sigjob_t *j)
{
    return j->result;
}

const px_sig_info_t *px_sigjob_info(const px_sigjob_t *j)
{
    return &j->info;
}

void px_sigjob_take_info(px_sigjob_t *j, px_sig_info_t *out)
{
    *out = j->info;
    j->info.nonce_held = 0;
}

void px_sig_nonce_release(px_sigctx_t *s, px_rstore_t *store, px_sig_info_t *in)
{
    if (!in->nonce_held)
        return;
    in->nonce_held = 0;
    px_replay_forget(replay, in->keyid, strlen(in->keyid), in->nonce, strlen(in->nonce),
                     in->expires + s->policy.max_skew_s);
    if (store && in->store_token[0])
        px_rstore_release(store, in->keyid, in->nonce, in->store_token);
    in->store_token[0] = 0;
}

const px_buf_t *px_sigjob_digest(const px_sigjob_t *j)
{
    return &j->digest;
}

const px_buf_t *px_sigjob_signature(const px_sigjob_t *j)
{
    return &j->sig;
}

int px_sigjob_status(const px_sigjob_t *j)
{
    return j->status;
}

void px_sigjob_free(px_sigjob_t *j)
{
    if (!j)
        return;
    if (j->kind == JOB_VERIFY && j->ctx)
        px_sig_nonce_release(j->ctx, j->store, &j->info);    /* nobody took it */
    if (j->ctx)
        px_sigctx_unref(j->ctx);
    if (j->resp)
        px_sig_response_free(j->resp);
    px_buf_free(&j->digest);
    px_buf_free(&j->sig);
    free(j);
}
