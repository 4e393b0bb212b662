/* Bech32 as age uses it: BIP 173's valid and invalid vectors, round trips
 * of an age1pq1-sized payload past the 90-character limit, both cases. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "seal/bech32.h"
#include "core/errors.h"

static int decode(const char *s, char *hrp, uint8_t *data, size_t *len, char *err)
{
    return px_bech32_decode(s, hrp, 128, data, 2048, len, err, 256);
}

static void test_bip173_valid(void **state)
{
    static const uint8_t want[20] = { 0x00, 0x44, 0x32, 0x14, 0xc7, 0x42, 0x54, 0xb6, 0x35, 0xcf,
                                      0x84, 0x65, 0x3a, 0x56, 0xd7, 0xc6, 0x75, 0xbe, 0x77, 0xdf };
    const char *ok[] = { "A12UEL5L", "a12uel5l",
        "an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
        "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw" };
    char hrp[128], err[256], enc[256];
    uint8_t data[2048];
    size_t len;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        assert_int_equal(decode(ok[i], hrp, data, &len, err), 0);
    assert_string_equal(hrp, "abcdef");
    assert_int_equal(len, 20);
    assert_memory_equal(data, want, 20);
    /* and encoding gives the vector back, in either case */
    assert_int_equal(px_bech32_encode("abcdef", want, 20, 0, enc, sizeof enc), (int)strlen(ok[3]));
    assert_string_equal(enc, ok[3]);
    assert_int_equal(px_bech32_encode("a", NULL, 0, 1, enc, sizeof enc), 8);
    assert_string_equal(enc, "A12UEL5L");
}

static void test_bip173_invalid(void **state)
{
    const struct { const char *s, *why; } bad[] = {
        { "A1G7SGD8", "bad checksum" },          /* checksum over the upper-case HRP */
        { "10a06t8", "no human-readable part" },
        { "1qzzfhee", "no human-readable part" },
        { "A12uEL5L", "mixed upper and lower case" },
        { "x1b4n0q5v", "not a bech32 character" },
        { "li1dgmt3", "too short for a checksum" },
        { "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxx", "bad checksum" },
        { "age1 qqq", "not printable" },
    };
    char hrp[128], err[256];
    uint8_t data[2048];
    size_t len;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(decode(bad[i].s, hrp, data, &len, err), PX_EPARSE);
        assert_non_null(strstr(err, bad[i].why));
    }
}

static void test_long_round_trip(void **state)
{
    uint8_t in[1216], out[2048];
    char s[2100], hrp[128], err[256];
    size_t len;
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)(i * 7 + 3);
    int n = px_bech32_encode("age1pq", in, sizeof in, 0, s, sizeof s);
    assert_int_equal(n, 7 + (1216 * 8 + 4) / 5 + 6);
    assert_memory_equal(s, "age1pq1", 7);
    assert_int_equal(decode(s, hrp, out, &len, err), 0);
    assert_string_equal(hrp, "age1pq");
    assert_int_equal(len, sizeof in);
    assert_memory_equal(out, in, sizeof in);
    /* one character changed anywhere is caught */
    s[100] = s[100] == 'q' ? 'p' : 'q';
    assert_int_equal(decode(s, hrp, out, &len, err), PX_EPARSE);
    /* limits: output buffer and data capacity */
    assert_int_equal(px_bech32_encode("age1pq", in, sizeof in, 0, s, 100), PX_ETOOBIG);
    s[100] = s[100] == 'q' ? 'p' : 'q';
    assert_int_equal(px_bech32_decode(s, hrp, sizeof hrp, out, 100, &len, err, sizeof err), PX_ETOOBIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bip173_valid),
        cmocka_unit_test(test_bip173_invalid),
        cmocka_unit_test(test_long_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
