/* Session-ticket sealing (src/net/tickets.c, included so its statics can be
 * driven directly): every ticket gets its own AES-GCM IV (the key's random
 * prefix and a counter that never repeats), sealed tickets open again,
 * tampering is refused, and a forked child never seals under its parent's
 * key. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "net/tickets.c"

#define TLEN 48

typedef struct {
    unsigned char name[WOLFSSL_TICKET_NAME_SZ], iv[WOLFSSL_TICKET_IV_SZ];
    unsigned char mac[WOLFSSL_TICKET_MAC_SZ], data[TLEN];
} sealed_t;

static int seal_one(sealed_t *t, const unsigned char *plain)
{
    int out = 0;
    memcpy(t->data, plain, TLEN);
    return ticket_cb(NULL, t->name, t->iv, t->mac, 1, t->data, TLEN, &out, NULL) ==
                   WOLFSSL_TICKET_RET_OK && out == TLEN ? 0 : -1;
}

/* 0 when the ticket opens (under the previous key, without a session to
 * ask the version of, the callback asks for a fresh ticket: CREATE). */
static int open_one(sealed_t t, unsigned char *plain)
{
    int out = 0, rc = ticket_cb(NULL, t.name, t.iv, t.mac, 0, t.data, TLEN, &out, NULL);
    memcpy(plain, t.data, TLEN);
    return (rc == WOLFSSL_TICKET_RET_OK || rc == WOLFSSL_TICKET_RET_CREATE) && out == TLEN ? 0 : -1;
}

static void test_unique_ivs(void **state)
{
    enum { N = 300 };                 /* more than one byte of counter */
    static sealed_t t[N];
    unsigned char plain[TLEN], back[TLEN];
    (void)state;
    memset(plain, 'p', sizeof plain);
    assert_int_equal(px_tickets_configure(3600), 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(seal_one(&t[i], plain), 0);
    for (int i = 0; i < N; i++) {
        assert_memory_equal(t[i].name, t[0].name, sizeof t[0].name);
        assert_memory_equal(t[i].iv, t[0].iv, IV_PREFIX_SZ);       /* one key, one prefix */
        for (int j = 0; j < i; j++)
            assert_memory_not_equal(t[i].iv, t[j].iv, GCM_IV_SZ);
        assert_int_equal(open_one(t[i], back), 0);
        assert_memory_equal(back, plain, TLEN);
    }
    /* the counter goes on across keys; a new key has its own prefix */
    px_tickets_rotate();
    sealed_t r;
    assert_int_equal(seal_one(&r, plain), 0);
    assert_memory_not_equal(r.name, t[0].name, sizeof r.name);
    for (int j = 0; j < N; j++)
        assert_memory_not_equal(r.iv + IV_PREFIX_SZ, t[j].iv + IV_PREFIX_SZ, 8);
    /* the previous key still opens its tickets */
    assert_int_equal(open_one(t[0], back), 0);
    assert_memory_equal(back, plain, TLEN);
}

static void test_tampered_refused(void **state)
{
    unsigned char plain[TLEN], back[TLEN];
    sealed_t t, bad;
    (void)state;
    memset(plain, 'q', sizeof plain);
    assert_int_equal(seal_one(&t, plain), 0);
    bad = t;
    bad.data[3] ^= 1;
    assert_int_not_equal(open_one(bad, back), 0);
    bad = t;
    bad.iv[GCM_IV_SZ - 1] ^= 1;
    assert_int_not_equal(open_one(bad, back), 0);
    bad = t;
    bad.mac[0] ^= 1;
    assert_int_not_equal(open_one(bad, back), 0);
    bad = t;
    bad.name[0] ^= 1;                 /* unknown key: full handshake */
    assert_int_not_equal(open_one(bad, back), 0);
}

/* After fork() the child shares the parent's key and counter: it must seal
 * under a key of its own. */
static void test_forked_child_rotates(void **state)
{
    unsigned char plain[TLEN];
    sealed_t before, after;
    (void)state;
    memset(plain, 'r', sizeof plain);
    assert_int_equal(seal_one(&before, plain), 0);
    fork_child();                     /* what the atfork handler runs in a child */
    assert_int_equal(seal_one(&after, plain), 0);
    assert_memory_not_equal(after.name, before.name, sizeof after.name);
    assert_memory_not_equal(after.iv, before.iv, IV_PREFIX_SZ);
}

/* The key file's format: the first key seals; comments, blank lines and
 * CRLF are fine; anything else is refused with its line. */
static void test_parse_keys(void **state)
{
    unsigned char raw[MAX_KEYS][KEY_SZ];
    char err[300];
    int n;
    char good[] = "# rotated by the operator\r\n"
                  "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\r\n\n"
                  "  //79/Pv6+fj39vX08/Lx8O/u7ezr6uno5+bl5OPi4eA=  \n";
    (void)state;
    assert_int_equal(parse_keys(good, strlen(good), raw, &n, "f", err, sizeof err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(raw[0][31], 31);
    assert_int_equal(raw[1][0], 255);
    static const struct { const char *text, *why; } bad[] = {
        { "", "f: no key" },
        { "# only\n", "f: no key" },
        { "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n", "f: line 1: not base64" },
        { "\nAAECAwQFBgcICQoLDA0ODw==\n", "f: line 2: a key is 32 bytes" },
        { "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
          "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n", "f: line 2: the same key twice" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[200];
        snprintf(text, sizeof text, "%s", bad[i].text);
        assert_int_equal(parse_keys(text, strlen(text), raw, &n, "f", err, sizeof err), PX_ECONFIG);
        assert_non_null(strstr(err, bad[i].why));
    }
}

/* Shared keys: the name comes from the key (every replica agrees), the
 * same set again changes nothing (the IV prefixes stay), and a ticket
 * sealed under the second key opens once it is the only one. */
static void test_install(void **state)
{
    unsigned char raw[2][KEY_SZ], plain[TLEN], back[TLEN], name[WOLFSSL_TICKET_NAME_SZ];
    sealed_t t;
    (void)state;
    memset(raw[0], 1, KEY_SZ);
    memset(raw[1], 2, KEY_SZ);
    memset(plain, 's', sizeof plain);
    assert_int_equal(px_tickets_install((const unsigned char (*)[KEY_SZ])raw, 2), 1);
    assert_int_equal(px_tickets_install((const unsigned char (*)[KEY_SZ])raw, 2), 0);
    assert_int_equal(px_tickets_count(), 2);
    assert_int_equal(seal_one(&t, plain), 0);
    assert_int_equal(derive_name(raw[0], name), 0);
    assert_memory_equal(t.name, name, sizeof name);
    assert_int_equal(px_tickets_install((const unsigned char (*)[KEY_SZ])raw + 1, 1), 1);
    assert_int_not_equal(open_one(t, back), 0);        /* retired */
    assert_int_equal(px_tickets_install((const unsigned char (*)[KEY_SZ])raw, 1), 1);
    assert_int_equal(open_one(t, back), 0);
    assert_memory_equal(back, plain, TLEN);
}

/* A forked child of a process with shared keys keeps the keys (they are
 * the replicas', not its own to replace) but seals with IVs of its own. */
static void test_forked_child_shared_keys(void **state)
{
    unsigned char raw[1][KEY_SZ], plain[TLEN];
    sealed_t before, after;
    (void)state;
    memset(raw[0], 7, KEY_SZ);
    memset(plain, 'f', sizeof plain);
    pthread_mutex_lock(&lock);
    source = PX_TKEYS_FILE;
    pthread_mutex_unlock(&lock);
    assert_true(px_tickets_install((const unsigned char (*)[KEY_SZ])raw, 1) >= 0);
    assert_int_equal(seal_one(&before, plain), 0);
    fork_child();
    assert_int_equal(seal_one(&after, plain), 0);
    assert_memory_equal(after.name, before.name, sizeof after.name);
    assert_memory_not_equal(after.iv, before.iv, IV_PREFIX_SZ);
    assert_int_equal(px_tickets_count(), 1);
    pthread_mutex_lock(&lock);
    source = PX_TKEYS_LOCAL;
    pthread_mutex_unlock(&lock);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unique_ivs),
        cmocka_unit_test(test_tampered_refused),
        cmocka_unit_test(test_forked_child_rotates),
        cmocka_unit_test(test_parse_keys),
        cmocka_unit_test(test_install),
        cmocka_unit_test(test_forked_child_shared_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
