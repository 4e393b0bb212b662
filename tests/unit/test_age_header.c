/* The age header parser (age.c): the stanza grammar of C2SP age v1 (type
 * and arguments, bodies in 64-column canonical unpadded base64 ending with a
 * shorter line, the MAC line) and each way a header can be malformed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seal/age.h"
#include "core/errors.h"

#define V1 "age-encryption.org/v1\n"
#define B43 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"          /* 32 zero bytes */
#define B64 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" /* 48 */
#define MAC "--- " B43 "\n"

static int parse(const char *s, px_age_header_t *h, char *err)
{
    err[0] = '\0';
    int r = px_age_header_parse((const uint8_t *)s, strlen(s), h, err, 256);
    return r;
}

static void test_valid(void **state)
{
    const char *s = V1 "-> X25519 " B43 "\n" B43 "\n"
                    "-> future a b c\n" B64 "\n\n"
                    "-> empty\n\n" MAC "payload bytes";
    px_age_header_t h;
    char err[256];
    assert_int_equal(parse(s, &h, err), 0);
    assert_int_equal(h.n, 3);
    assert_string_equal(h.st[0].type, "X25519");
    assert_int_equal(h.st[0].nargs, 1);
    assert_string_equal(h.st[0].args[0], B43);
    assert_int_equal(h.st[0].body_len, 32);
    assert_string_equal(h.st[1].type, "future");
    assert_int_equal(h.st[1].nargs, 3);
    assert_string_equal(h.st[1].args[2], "c");
    assert_int_equal(h.st[1].body_len, 48);   /* a full line, then an empty one */
    assert_int_equal(h.st[2].nargs, 0);
    assert_int_equal(h.st[2].body_len, 0);
    assert_int_equal(h.len, strlen(s) - strlen("payload bytes"));
    /* the MAC covers everything through "---" */
    assert_int_equal(h.mac_off, h.len - strlen(MAC) + 3);
    px_age_header_free(&h);
}

static void test_malformed(void **state)
{
    const struct { const char *s, *why; } bad[] = {
        { "", "no complete first line" },
        { "age-encryption.org/v2\n" MAC, "not an age v1 file" },
        { "-----BEGIN AGE ENCRYPTED FILE-----\n", "not an age v1 file" },
        { V1 MAC, "no recipient stanza" },
        { V1 "-> X25519 " B43 "\n" B43 "\n", "header truncated" },
        { V1 "-> X25519 " B43 "\n" B64 "\n" MAC, "line 4: stanza body" },   /* MAC line read as body */
        { V1 "-> X25519 " B43 "\n" B64 "A\n\n" MAC, "canonical unpadded base64" },
        { V1 "-> X25519 " B43 "\nAB\n" MAC, "canonical unpadded base64" },  /* non-zero trailing bits */
        { V1 "-> X25519 " B43 "\nAA==\n" MAC, "canonical unpadded base64" },
        { V1 "-> X25519 " B43 "\n" B43 "\r\n" MAC, "canonical unpadded base64" },
        { V1 "->  X25519\n\n" MAC, "empty stanza argument" },
        { V1 "-> X25519 \n\n" MAC, "empty stanza argument" },
        { V1 "-> \n\n" MAC, "empty stanza argument" },
        { V1 "-> a\x7f\n\n" MAC, "visible ASCII" },
        { V1 "-> a 1 2 3 4 5 6 7 8 9\n\n" MAC, "more than 8 stanza arguments" },
        { V1 "-> a\n\n--- " B43 "A\n", "malformed MAC line" },
        { V1 "-> a\n\n---" B43 "\n", "malformed MAC line" },
        { V1 "-> a\n\n--- AB\n", "malformed MAC line" },
        { V1 "garbage\n" MAC, "expected a stanza" },
    };
    px_age_header_t h;
    char err[256];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_not_equal(parse(bad[i].s, &h, err), 0);
        if (!strstr(err, bad[i].why))
            fail_msg("case %zu: '%s' lacks '%s'", i, err, bad[i].why);
        px_age_header_free(&h);
    }
}

static void test_limits(void **state)
{
    px_age_header_t h;
    char err[256];
    /* 65 stanzas */
    size_t cap = 65 * 8 + 200, o = 0;
    char *s = malloc(cap);
    o += (size_t)snprintf(s + o, cap - o, V1);
    for (int i = 0; i < 65; i++)
        o += (size_t)snprintf(s + o, cap - o, "-> a\n\n");
    snprintf(s + o, cap - o, MAC);
    assert_int_equal(parse(s, &h, err), PX_ETOOBIG);
    assert_non_null(strstr(err, "more than 64 stanzas"));
    px_age_header_free(&h);
    free(s);
    /* a header that does not end within PX_AGE_MAX_HEADER bytes */
    s = malloc(PX_AGE_MAX_HEADER + 100);
    memset(s, 'A', PX_AGE_MAX_HEADER + 99);
    memcpy(s, V1 "-> a ", strlen(V1 "-> a "));
    s[PX_AGE_MAX_HEADER + 99] = '\0';
    assert_int_equal(parse(s, &h, err), PX_ETOOBIG);
    assert_non_null(strstr(err, "longer than 65536"));
    px_age_header_free(&h);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
