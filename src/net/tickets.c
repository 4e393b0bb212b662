/* Session-ticket keys (see tickets.h). */
#include "net/tickets.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include "core/errors.h"
#include "sig/sigwire.h"

#define KEY_SZ PX_TICKETS_KEY_SZ
#define MAX_KEYS PX_TICKETS_MAX_KEYS
#define GCM_IV_SZ 12
#define GCM_TAG_SZ 16

#define IV_PREFIX_SZ 4
#define MAX_FILE_BYTES 16384

typedef struct {
    unsigned char name[WOLFSSL_TICKET_NAME_SZ];
    unsigned char key[KEY_SZ];
    unsigned char iv_prefix[IV_PREFIX_SZ]; /* random, per key and process */
} tkey_t;

/* What identifies the file's content for polling: a Secret update swaps a
 * symlink (new inode), an edit in place changes size or times. */
typedef struct {
    int err;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtim, ctim;
} fstamp_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static tkey_t keys[MAX_KEYS];          /* keys[0] seals; all open */
static int nkeys;
static time_t created;                 /* of keys[0], for local rotation */
static uint32_t rotation_s = 3600;
static int configured;
static px_tkeys_source_t source;
static char key_file[sizeof ((px_ticket_keys_config_t *)0)->file];
static fstamp_t seen;

/* GCM IVs must never repeat under one key. A sealing IV is the key's random
 * prefix and this counter, which starts at random and is never reset: every
 * ticket this process seals gets a value of its own whatever key it uses,
 * and replicas sharing a key (file, redis) start far apart (96 random bits
 * between them). A forked child inherits keys and counter, so it draws new
 * prefixes (and, with local keys, a new key) before sealing (fork_child).
 * This replaces a getrandom() per ticket. */
static _Atomic uint64_t iv_counter;
static atomic_int forked;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

void px_tickets_wipe(void *p, size_t n)
{
    explicit_bzero(p, n);
}

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

static int seed_counter(void)
{
    uint64_t v;
    if (fill_random(&v, sizeof v) != 0)
        return PX_ECRYPTO;
    atomic_store(&iv_counter, v);
    return 0;
}

/* The name every replica gives this key: it travels in clear in each
 * ticket, so it is a hash, never the key. */
static int derive_name(const unsigned char *key, unsigned char *name)
{
    static const char label[] = "pqproxy session ticket key name";
    unsigned char d[WC_SHA256_DIGEST_SIZE];
    wc_Sha256 h;
    int rc = wc_InitSha256(&h);
    if (rc == 0)
        rc = wc_Sha256Update(&h, (const byte *)label, sizeof label);
    if (rc == 0)
        rc = wc_Sha256Update(&h, key, KEY_SZ);
    if (rc == 0)
        rc = wc_Sha256Final(&h, d);
    wc_Sha256Free(&h);
    memcpy(name, d, WOLFSSL_TICKET_NAME_SZ);
    return rc == 0 ? 0 : PX_ECRYPTO;
}

static void drop_keys_locked(void)
{
    px_tickets_wipe(keys, sizeof keys);
    nkeys = 0;
}

/* Called with the lock held: a new local key seals, the last one opens. */
static int rotate_locked(time_t now)
{
    tkey_t k;
    if (fill_random(k.name, sizeof k.name) != 0 || fill_random(k.key, sizeof k.key) != 0 ||
        fill_random(k.iv_prefix, sizeof k.iv_prefix) != 0) {
        px_tickets_wipe(&k, sizeof k);
        return PX_ECRYPTO;
    }
    if (nkeys > 1)
        px_tickets_wipe(&keys[1], sizeof keys[0] * (size_t)(nkeys - 1));
    keys[1] = keys[0];
    keys[0] = k;
    nkeys = nkeys ? 2 : 1;
    created = now;
    px_tickets_wipe(&k, sizeof k);
    return 0;
}

/* Called with the lock held: raw keys from a file or Redis. A key already
 * in use keeps its IV prefix. 1 when the set changed. */
static int install_locked(const unsigned char (*raw)[KEY_SZ], int n)
{
    tkey_t next[MAX_KEYS];
    int same = n == nkeys;

    for (int i = 0; i < n; i++) {
        int j;
        if (derive_name(raw[i], next[i].name) != 0) {
            px_tickets_wipe(next, sizeof next);
            return PX_ECRYPTO;
        }
        memcpy(next[i].key, raw[i], KEY_SZ);
        for (j = 0; j < nkeys; j++)
            if (!memcmp(keys[j].name, next[i].name, sizeof next[i].name) &&
                !memcmp(keys[j].key, raw[i], KEY_SZ))
                break;
        if (j < nkeys)
            memcpy(next[i].iv_prefix, keys[j].iv_prefix, IV_PREFIX_SZ);
        else if (fill_random(next[i].iv_prefix, IV_PREFIX_SZ) != 0) {
            px_tickets_wipe(next, sizeof next);
            return PX_ECRYPTO;
        }
        same = same && j == i;
    }
    if (!same) {
        drop_keys_locked();
        memcpy(keys, next, sizeof next[0] * (size_t)n);
        nkeys = n;
        created = time(NULL);
    }
    px_tickets_wipe(next, sizeof next);
    return !same;
}

/* --- the key file ------------------------------------------------------------ */

/* "tls.ticket_keys.file: PATH: [line N: ]why" */
static int file_fail(char *err, size_t errlen, const char *path, int line, const char *why)
{
    if (line)
        snprintf(err, errlen, "tls.ticket_keys.file: %s: line %d: %s", path, line, why);
    else
        snprintf(err, errlen, "tls.ticket_keys.file: %s: %s", path, why);
    return PX_ECONFIG;
}

/* Lines of base64 (padded) 32-byte keys; blank lines and "#" comments are
 * skipped. The first key seals. */
static int parse_keys(char *text, size_t len, unsigned char (*raw)[KEY_SZ], int *n,
                      const char *path, char *err, size_t errlen)
{
    unsigned char buf[KEY_SZ + 3];
    int line = 0;

    *n = 0;
    for (char *p = text, *end = text + len; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p)), *e = nl ? nl : end;
        long got;
        line++;
        while (p < e && (*p == ' ' || *p == '\t'))
            p++;
        while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
            e--;
        if (p < e && *p != '#') {
            if (*n == MAX_KEYS)
                return file_fail(err, errlen, path, line, "more than 8 keys");
            got = px_b64_decode(p, (size_t)(e - p), buf, sizeof buf);
            if (got != KEY_SZ) {
                px_tickets_wipe(buf, sizeof buf);
                return file_fail(err, errlen, path, line, got < 0 ? "not base64 (one key per "
                                 "line: head -c 32 /dev/urandom | base64)" : "a key is 32 bytes "
                                 "(44 base64 characters)");
            }
            for (int i = 0; i < *n; i++)
                if (!memcmp(raw[i], buf, KEY_SZ)) {
                    px_tickets_wipe(buf, sizeof buf);
                    return file_fail(err, errlen, path, line, "the same key twice");
                }
            memcpy(raw[(*n)++], buf, KEY_SZ);
        }
        p = nl ? nl + 1 : end;
    }
    px_tickets_wipe(buf, sizeof buf);
    if (*n == 0)
        return file_fail(err, errlen, path, 0, "no key (lines of base64 32-byte keys; the "
                         "first seals new tickets)");
    return 0;
}

static void stamp_of(const struct stat *st, int e, fstamp_t *s)
{
    memset(s, 0, sizeof *s);
    s->err = e;
    if (e)
        return;
    s->dev = st->st_dev;
    s->ino = st->st_ino;
    s->size = st->st_size;
    s->mtim = st->st_mtim;
    s->ctim = st->st_ctim;
}

static int read_key_file(const char *path, unsigned char (*raw)[KEY_SZ], int *n, fstamp_t *stamp,
                         char *err, size_t errlen)
{
    char text[MAX_FILE_BYTES + 1];
    struct stat st;
    size_t len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY), rc;

    if (fd < 0 || fstat(fd, &st) < 0) {
        int e = errno;
        stamp_of(NULL, e, stamp);
        if (fd >= 0)
            close(fd);
        snprintf(err, errlen, "tls.ticket_keys.file: %s: %s", path, strerror(e));
        return PX_ECONFIG;
    }
    stamp_of(&st, 0, stamp);
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return file_fail(err, errlen, path, 0, "not a regular file");
    }
    for (;;) {
        ssize_t got = read(fd, text + len, sizeof text - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        len += (size_t)got;
        if (len == sizeof text)
            break;
    }
    close(fd);
    if (len > MAX_FILE_BYTES)
        rc = file_fail(err, errlen, path, 0, "larger than 16384 bytes");
    else
        rc = parse_keys(text, len, raw, n, path, err, errlen);
    px_tickets_wipe(text, sizeof text);
    return rc;
}

/* --- set-up ----------------------------------------------------------------- */

/* Called with the lock held. */
static int first_setup_locked(px_tkeys_source_t src, const char *file)
{
    if (configured)
        return 0;
    configured = 1;
    source = src;
    snprintf(key_file, sizeof key_file, "%s", file ? file : "");
    return seed_counter();
}

int px_tickets_configure(uint32_t seconds)
{
    int rc;
    pthread_once(&atfork_once, register_atfork);
    pthread_mutex_lock(&lock);
    rc = first_setup_locked(PX_TKEYS_LOCAL, NULL);
    rotation_s = seconds ? seconds : 3600;
    if (rc == 0 && !nkeys)
        rc = rotate_locked(time(NULL));
    pthread_mutex_unlock(&lock);
    return rc;
}

int px_tickets_setup(const px_tls_config_t *tls, char *err, size_t errlen)
{
    const px_ticket_keys_config_t *tk = &tls->ticket_keys;
    unsigned char raw[MAX_KEYS][KEY_SZ];
    fstamp_t stamp;
    int n = 0, rc;

    pthread_once(&atfork_once, register_atfork);
    /* a new file is checked even when a restart is needed to use it */
    if (tk->source == PX_TKEYS_FILE &&
        (rc = read_key_file(tk->file, raw, &n, &stamp, err, errlen)) != 0) {
        px_tickets_wipe(raw, sizeof raw);
        return rc;
    }
    pthread_mutex_lock(&lock);
    rc = first_setup_locked(tk->source, tk->file);
    rotation_s = tls->ticket_key_rotation_s ? tls->ticket_key_rotation_s : 3600;
    if (rc == 0 && source == PX_TKEYS_FILE && tk->source == PX_TKEYS_FILE &&
        !strcmp(key_file, tk->file)) {
        rc = install_locked((const unsigned char (*)[KEY_SZ])raw, n);
        rc = rc < 0 ? rc : 0;
        seen = stamp;
    } else if (rc == 0 && !nkeys) {
        rc = rotate_locked(time(NULL));   /* local, or redis until it answers */
    }
    pthread_mutex_unlock(&lock);
    px_tickets_wipe(raw, sizeof raw);
    if (rc != 0)
        snprintf(err, errlen, "tls.session_tickets: cannot set up ticket keys");
    return rc;
}

int px_tickets_file_poll(char *err, size_t errlen)
{
    unsigned char raw[MAX_KEYS][KEY_SZ];
    fstamp_t now, stamp;
    struct stat st;
    int n = 0, rc, changed;

    /* source and key_file are set once, before the loop runs; the stat and
     * the read stay outside the lock that ticket operations take */
    if (source != PX_TKEYS_FILE)
        return 0;
    stamp_of(&st, stat(key_file, &st) == 0 ? 0 : errno, &now);
    pthread_mutex_lock(&lock);
    changed = memcmp(&now, &seen, sizeof now) != 0;
    seen = now;                        /* a bad file is reported once per change */
    pthread_mutex_unlock(&lock);
    if (!changed)
        return 0;
    rc = read_key_file(key_file, raw, &n, &stamp, err, errlen);
    if (rc == 0) {
        pthread_mutex_lock(&lock);
        rc = install_locked((const unsigned char (*)[KEY_SZ])raw, n);
        pthread_mutex_unlock(&lock);
    }
    px_tickets_wipe(raw, sizeof raw);
    return rc;
}

int px_tickets_install(const unsigned char (*raw)[KEY_SZ], int n)
{
    int rc;
    if (n < 1 || n > MAX_KEYS)
        return PX_EINVAL;
    pthread_mutex_lock(&lock);
    rc = install_locked(raw, n);
    pthread_mutex_unlock(&lock);
    return rc;
}

int px_tickets_count(void)
{
    int n;
    pthread_mutex_lock(&lock);
    n = nkeys;
    pthread_mutex_unlock(&lock);
    return n;
}

void px_tickets_rotate(void)
{
    pthread_mutex_lock(&lock);
    rotate_locked(time(NULL));
    pthread_mutex_unlock(&lock);
}

/* --- sealing ----------------------------------------------------------------- */

/* Copies out the key to seal with (name NULL) or the one named: 0, 1 when
 * it is not the current one, -1 when there is none. Rotates local keys
 * that are too old first. */
static int pick(const unsigned char *name, tkey_t *out)
{
    time_t now = time(NULL);
    int found = -1;

    pthread_mutex_lock(&lock);
    /* a forked child must not seal with its parent's IVs (shared counter):
     * new prefixes, and a local key of its own; it still opens the
     * parent's tickets */
    if (atomic_load_explicit(&forked, memory_order_relaxed)) {
        int ok = seed_counter() == 0;
        for (int i = 0; ok && i < nkeys; i++)
            ok = fill_random(keys[i].iv_prefix, IV_PREFIX_SZ) == 0;
        if (ok && (source != PX_TKEYS_LOCAL || rotate_locked(now) == 0))
            atomic_store(&forked, 0);
    }
    if (source == PX_TKEYS_LOCAL && (!nkeys || now - created >= (time_t)rotation_s))
        rotate_locked(now);
    for (int i = 0; i < nkeys; i++)
        if (!name || !memcmp(name, keys[i].name, WOLFSSL_TICKET_NAME_SZ)) {
            *out = keys[i];
            found = i > 0;
            break;
        }
    pthread_mutex_unlock(&lock);
    return found;
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
    px_tickets_wipe(&aes, sizeof aes);  /* the key schedule */
    return rc == 0 ? 0 : -1;
}

static int ticket_cb(WOLFSSL *ssl, unsigned char key_name[WOLFSSL_TICKET_NAME_SZ],
                     unsigned char iv[WOLFSSL_TICKET_IV_SZ], unsigned char mac[WOLFSSL_TICKET_MAC_SZ],
                     int enc, unsigned char *ticket, int in_len, int *out_len, void *ud)
{
    tkey_t k;
    int which, rc = WOLFSSL_TICKET_RET_REJECT;
    (void)ud;
    if (enc) {
        memset(mac, 0, WOLFSSL_TICKET_MAC_SZ);
        if (pick(NULL, &k) < 0 || atomic_load_explicit(&forked, memory_order_relaxed))
            goto out;                  /* no key of our own to seal with */
        memcpy(key_name, k.name, WOLFSSL_TICKET_NAME_SZ);
        uint64_t n = atomic_fetch_add_explicit(&iv_counter, 1, memory_order_relaxed);
        memset(iv, 0, WOLFSSL_TICKET_IV_SZ);
        memcpy(iv, k.iv_prefix, IV_PREFIX_SZ);
        for (int i = 0; i < 8; i++)
            iv[IV_PREFIX_SZ + i] = (unsigned char)(n >> (56 - 8 * i));
        if (seal(&k, 1, iv, mac, ticket, in_len) == 0) {
            *out_len = in_len;
            rc = WOLFSSL_TICKET_RET_OK;
        }
        goto out;
    }
    /* unknown or retired key: a full handshake */
    if ((which = pick(key_name, &k)) < 0 || seal(&k, 0, iv, mac, ticket, in_len) != 0)
        goto out;
    *out_len = in_len;
    /* Under another key than the current one: valid. TLS 1.3 sends a fresh
     * ticket (under the current key) after every handshake anyway, and
     * wolfSSL resumes 1.3 only on OK; TLS 1.2 needs CREATE to be re-issued
     * a ticket. */
    rc = which == 0 || wolfSSL_GetVersion(ssl) == WOLFSSL_TLSV1_3 ? WOLFSSL_TICKET_RET_OK
                                                                  : WOLFSSL_TICKET_RET_CREATE;
out:
    px_tickets_wipe(&k, sizeof k);
    return rc;
}

int px_tickets_attach(WOLFSSL_CTX *ctx)
{
    if (wolfSSL_CTX_set_TicketEncCb(ctx, ticket_cb) != WOLFSSL_SUCCESS)
        return PX_ETLS;
    /* clients should not keep a ticket longer than it can be opened */
    wolfSSL_CTX_set_TicketHint(ctx, (int)(rotation_s > 86400 * 7 ? 86400 * 7 : rotation_s));
    return 0;
}
