/* Session-ticket keys (see tickets.h). */
#include "net/tickets.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <wolfssl/wolfcrypt/aes.h>

#include "core/errors.h"

#define KEY_SZ 32
#define GCM_IV_SZ 12
#define GCM_TAG_SZ 16

#define IV_PREFIX_SZ 4

typedef struct {
    unsigned char name[WOLFSSL_TICKET_NAME_SZ];
    unsigned char key[KEY_SZ];
    unsigned char iv_prefix[IV_PREFIX_SZ]; /* random, per key */
    time_t created;
    int valid;
} tkey_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static tkey_t current, previous;
static uint32_t rotation_s = 3600;

/* GCM IVs must never repeat under one key. A sealing IV is the key's random
 * prefix and this counter, which is never reset, so every ticket this
 * process seals gets a value of its own whatever key it uses (2^64 never
 * wraps); keys are random and never leave the process. A forked child
 * inherits key and counter, so it rotates before sealing (fork_child). This
 * replaces a getrandom() per ticket. */
static _Atomic uint64_t iv_counter;
static atomic_int forked;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void fork_child(void)
{
    atomic_store(&forked, 1);
}

static void register_atfork(void)
{
    pthread_atfork(NULL, NULL, fork_child);
}

static int fill_random(void *p, size_t n)
{
    return getrandom(p, n, 0) == (ssize_t)n ? 0 : PX_ECRYPTO;
}

/* Called with the lock held. */
static int rotate_locked(time_t now)
{
    tkey_t k;
    if (fill_random(k.name, sizeof k.name) != 0 || fill_random(k.key, sizeof k.key) != 0 ||
        fill_random(k.iv_prefix, sizeof k.iv_prefix) != 0)
        return PX_ECRYPTO;
    k.created = now;
    k.valid = 1;
    previous = current;
    current = k;
    return 0;
}

int px_tickets_configure(uint32_t seconds)
{
    int rc = 0;
    pthread_once(&atfork_once, register_atfork);
    pthread_mutex_lock(&lock);
    rotation_s = seconds ? seconds : 3600;
    if (!current.valid)
        rc = rotate_locked(time(NULL));
    pthread_mutex_unlock(&lock);
    return rc;
}

void px_tickets_rotate(void)
{
    pthread_mutex_lock(&lock);
    rotate_locked(time(NULL));
    pthread_mutex_unlock(&lock);
}

/* Copies the keys out, rotating first when the current one is too old. */
static void snapshot(tkey_t *cur, tkey_t *prev)
{
    time_t now = time(NULL);
    pthread_mutex_lock(&lock);
    /* a forked child must not seal under its parent's key (shared counter);
     * it can still open the parent's tickets with the previous key */
    if (atomic_load_explicit(&forked, memory_order_relaxed) && rotate_locked(now) == 0)
        atomic_store(&forked, 0);
    if (!current.valid || now - current.created >= (time_t)rotation_s)
        rotate_locked(now);
    *cur = current;
    *prev = previous;
    pthread_mutex_unlock(&lock);
}

static int seal(const tkey_t *k, int enc, unsigned char *iv, unsigned char *mac,
                unsigned char *ticket, int len)
{
    Aes aes;
    unsigned char aad[WOLFSSL_TICKET_NAME_SZ + 2];
    int rc;

    /* bind the key name and the length, as wolfSSL's own callback does */
    memcpy(aad, k->name, WOLFSSL_TICKET_NAME_SZ);
    aad[WOLFSSL_TICKET_NAME_SZ] = (unsigned char)(len >> 8);
    aad[WOLFSSL_TICKET_NAME_SZ + 1] = (unsigned char)len;
    if (wc_AesInit(&aes, NULL, INVALID_DEVID) != 0)
        return -1;
    rc = wc_AesGcmSetKey(&aes, k->key, KEY_SZ);
    if (rc == 0 && enc)
        rc = wc_AesGcmEncrypt(&aes, ticket, ticket, (word32)len, iv, GCM_IV_SZ, mac, GCM_TAG_SZ,
                              aad, sizeof aad);
    else if (rc == 0)
        rc = wc_AesGcmDecrypt(&aes, ticket, ticket, (word32)len, iv, GCM_IV_SZ, mac, GCM_TAG_SZ,
                              aad, sizeof aad);
    wc_AesFree(&aes);
    return rc == 0 ? 0 : -1;
}

static int ticket_cb(WOLFSSL *ssl, unsigned char key_name[WOLFSSL_TICKET_NAME_SZ],
                     unsigned char iv[WOLFSSL_TICKET_IV_SZ], unsigned char mac[WOLFSSL_TICKET_MAC_SZ],
                     int enc, unsigned char *ticket, int in_len, int *out_len, void *ud)
{
    tkey_t cur, prev;
    (void)ud;
    snapshot(&cur, &prev);
    if (enc) {
        memcpy(key_name, cur.name, WOLFSSL_TICKET_NAME_SZ);
        memset(mac, 0, WOLFSSL_TICKET_MAC_SZ);
        if (!cur.valid || atomic_load_explicit(&forked, memory_order_relaxed))
            return WOLFSSL_TICKET_RET_REJECT;  /* no key of our own to seal with */
        uint64_t n = atomic_fetch_add_explicit(&iv_counter, 1, memory_order_relaxed);
        memset(iv, 0, WOLFSSL_TICKET_IV_SZ);
        memcpy(iv, cur.iv_prefix, IV_PREFIX_SZ);
        for (int i = 0; i < 8; i++)
            iv[IV_PREFIX_SZ + i] = (unsigned char)(n >> (56 - 8 * i));
        if (seal(&cur, 1, iv, mac, ticket, in_len) != 0)
            return WOLFSSL_TICKET_RET_REJECT;
        *out_len = in_len;
        return WOLFSSL_TICKET_RET_OK;
    }
    if (!memcmp(key_name, cur.name, WOLFSSL_TICKET_NAME_SZ)) {
        if (seal(&cur, 0, iv, mac, ticket, in_len) != 0)
            return WOLFSSL_TICKET_RET_REJECT;
        *out_len = in_len;
        return WOLFSSL_TICKET_RET_OK;
    }
    if (prev.valid && !memcmp(key_name, prev.name, WOLFSSL_TICKET_NAME_SZ)) {
        if (seal(&prev, 0, iv, mac, ticket, in_len) != 0)
            return WOLFSSL_TICKET_RET_REJECT;
        *out_len = in_len;
        /* Valid. TLS 1.3 sends a fresh ticket (under the current key) after
         * every handshake anyway, and wolfSSL resumes 1.3 only on OK; TLS
         * 1.2 needs CREATE to be re-issued a ticket. */
        return wolfSSL_GetVersion(ssl) == WOLFSSL_TLSV1_3 ? WOLFSSL_TICKET_RET_OK
                                                          : WOLFSSL_TICKET_RET_CREATE;
    }
    return WOLFSSL_TICKET_RET_REJECT;         /* unknown or retired key: full handshake */
}

int px_tickets_attach(WOLFSSL_CTX *ctx)
{
    if (wolfSSL_CTX_set_TicketEncCb(ctx, ticket_cb) != WOLFSSL_SUCCESS)
        return PX_ETLS;
    /* clients should not keep a ticket longer than it can be opened */
    wolfSSL_CTX_set_TicketHint(ctx, (int)(rotation_s > 86400 * 7 ? 86400 * 7 : rotation_s));
    return 0;
}
