/* Sharded nonce replay cache (see replay.h). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include "sig/replay.h"

#define KEY_LEN 16

typedef struct {
    uint8_t key[KEY_LEN];
    int64_t expiry;            /* 0: empty slot */
} entry_t;

typedef struct {
    pthread_mutex_t mu;
    entry_t *slots;            /* power-of-two table, load factor <= 1/2 */
    size_t mask;
    size_t count;              /* occupied slots (live or expired, not yet swept) */
    size_t cap;                /* max occupied slots */
    entry_t *scratch;          /* cap entries, for sweeping */
    int64_t last_sweep;
} shard_t;

struct px_replay {
    shard_t shards[PX_REPLAY_SHARDS];
    size_t per_shard;
};

static void free_shards(px_replay_t *c, int n)
{
    for (int i = 0; i < n; i++) {
        pthread_mutex_destroy(&c->shards[i].mu);
        free(c->shards[i].slots);
        free(c->shards[i].scratch);
    }
}

px_replay_t *px_replay_new(size_t max_entries)
{
    px_replay_t *c = calloc(1, sizeof *c);
    size_t per, size = 2;

    if (!c)
        return NULL;
    if (max_entries == 0)
        max_entries = PX_REPLAY_DEFAULT_ENTRIES;
    if (max_entries > ((size_t)1 << 30)) {
        free(c);
        return NULL;
    }
    per = (max_entries + PX_REPLAY_SHARDS - 1) / PX_REPLAY_SHARDS;
    while (size < per * 2)
        size <<= 1;
    c->per_shard = per;
    for (int i = 0; i < PX_REPLAY_SHARDS; i++) {
        shard_t *s = &c->shards[i];
        s->slots = calloc(size, sizeof *s->slots);
        s->scratch = calloc(per, sizeof *s->scratch);
        if (!s->slots || !s->scratch || pthread_mutex_init(&s->mu, NULL) != 0) {
            free(s->slots);
            free(s->scratch);
            free_shards(c, i);
            free(c);
            return NULL;
        }
        s->mask = size - 1;
        s->cap = per;
        s->last_sweep = INT64_MIN;
    }
    return c;
}

void px_replay_free(px_replay_t *c)
{
    if (!c)
        return;
    free_shards(c, PX_REPLAY_SHARDS);
    free(c);
}

static size_t slot_of(const uint8_t *key)
{
    size_t h;
    memcpy(&h, key + 8, sizeof h); /* key[0] chose the shard */
    return h;
}

/* Index of key's slot, or of the empty slot where it would go. The table
 * always has an empty slot (count <= cap <= size / 2), so this ends. */
static size_t probe(const shard_t *s, const uint8_t *key)
{
    size_t i = slot_of(key) & s->mask;
    while (s->slots[i].expiry != 0 && memcmp(s->slots[i].key, key, KEY_LEN) != 0)
        i = (i + 1) & s->mask;
    return i;
}

/* Drops every entry with expiry <= now: copy the live ones out, clear,
 * reinsert (no tombstones, no backward-shift subtleties). */
static void sweep(shard_t *s, int64_t now)
{
    size_t live = 0;

    for (size_t i = 0; i <= s->mask; i++)
        if (s->slots[i].expiry > now)
            s->scratch[live++] = s->slots[i];
    memset(s->slots, 0, (s->mask + 1) * sizeof *s->slots);
    for (size_t i = 0; i < live; i++)
        s->slots[probe(s, s->scratch[i].key)] = s->scratch[i];
    s->count = live;
    s->last_sweep = now;
}

/* SHA-256(keyid NUL nonce): the first KEY_LEN bytes are the entry's key. */
static int key_of(const char *keyid, size_t keyid_len, const char *nonce, size_t nonce_len,
                  uint8_t digest[WC_SHA256_DIGEST_SIZE])
{
    wc_Sha256 sha;
    int rc;

    if ((!keyid && keyid_len) || (!nonce && nonce_len) || wc_InitSha256(&sha) != 0)
        return -1;
    rc = wc_Sha256Update(&sha, (const byte *)keyid, (word32)keyid_len) != 0 ||
         wc_Sha256Update(&sha, (const byte *)"", 1) != 0 ||
         wc_Sha256Update(&sha, (const byte *)nonce, (word32)nonce_len) != 0 ||
         wc_Sha256Final(&sha, digest) != 0;
    wc_Sha256Free(&sha);
    return rc ? -1 : 0;
}

px_replay_status_t px_replay_check_insert(px_replay_t *c, const char *keyid, size_t keyid_len,
                                          const char *nonce, size_t nonce_len, int64_t expiry,
                                          int64_t now)
{
    uint8_t digest[WC_SHA256_DIGEST_SIZE];
    px_replay_status_t ret;
    shard_t *s;
    size_t i;

    if (!c || key_of(keyid, keyid_len, nonce, nonce_len, digest) != 0)
        return PX_REPLAY_ERROR;
    if (expiry <= now)
        return PX_REPLAY_FRESH; /* nothing to remember: it is already over */

    s = &c->shards[digest[0] % PX_REPLAY_SHARDS];
    pthread_mutex_lock(&s->mu);
    i = probe(s, digest);
    if (s->slots[i].expiry != 0) {             /* same key */
        if (s->slots[i].expiry > now) {
            ret = PX_REPLAY_SEEN;
        } else {
            s->slots[i].expiry = expiry;       /* an expired entry comes back to life */
            ret = PX_REPLAY_FRESH;
        }
        goto out;
    }
    if (s->count >= s->cap && now > s->last_sweep) {
        sweep(s, now);
        i = probe(s, digest);
    }
    if (s->count >= s->cap) {
        ret = PX_REPLAY_FULL;
        goto out;
    }
    memcpy(s->slots[i].key, digest, KEY_LEN);
    s->slots[i].expiry = expiry;
    s->count++;
    ret = PX_REPLAY_FRESH;
out:
    pthread_mutex_unlock(&s->mu);
    return ret;
}

void px_replay_forget(px_replay_t *c, const char *keyid, size_t keyid_len, const char *nonce,
                      size_t nonce_len, int64_t expiry)
{
    uint8_t digest[WC_SHA256_DIGEST_SIZE];
    shard_t *s;
    size_t i;

    if (!c || key_of(keyid, keyid_len, nonce, nonce_len, digest) != 0)
        return;
    s = &c->shards[digest[0] % PX_REPLAY_SHARDS];
    pthread_mutex_lock(&s->mu);
    i = probe(s, digest);
    if (s->slots[i].expiry != 0 && s->slots[i].expiry == expiry)
        s->slots[i].expiry = 1;     /* expired: the slot stays until swept, the nonce is free */
    pthread_mutex_unlock(&s->mu);
}

size_t px_replay_count(px_replay_t *c)
{
    size_t n = 0;
    for (int i = 0; i < PX_REPLAY_SHARDS; i++) {
        pthread_mutex_lock(&c->shards[i].mu);
        n += c->shards[i].count;
        pthread_mutex_unlock(&c->shards[i].mu);
    }
    return n;
}

size_t px_replay_capacity(const px_replay_t *c)
{
    return c->per_shard * PX_REPLAY_SHARDS;
}
