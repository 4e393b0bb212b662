/* The strict JSON syntax check in front of the config parser: every valid
 * document passes; each kind of fault is found at its own byte, with its
 * own reason, including what cJSON lets through (raw control characters
 * and NUL escapes inside strings, invalid UTF-8). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/errors.h"
#include "core/jsonsyntax.h"

static void ok(const char *t)
{
    px_json_error_t e;
    if (px_json_check(t, strlen(t), &e) != 0)
        fail_msg("valid JSON refused: %s: offset %zu: %s", t, e.offset, e.reason);
}

static void bad_n(const char *t, size_t n, size_t offset, const char *reason)
{
    px_json_error_t e;
    if (px_json_check(t, n, &e) != PX_EPARSE)
        fail_msg("invalid JSON accepted: %s", t);
    if (e.offset != offset || !strstr(e.reason, reason))
        fail_msg("%s: got offset %zu \"%s\", want %zu \"%s\"", t, e.offset, e.reason, offset, reason);
}

static void bad(const char *t, size_t offset, const char *reason)
{
    bad_n(t, strlen(t), offset, reason);
}

static void test_valid(void **state)
{
    (void)state;
    ok("{}");
    ok(" [ ] ");
    ok("0");
    ok("-0.5e+10");
    ok("1E5");
    ok("\"\"");
    ok("true");
    ok("null");
    ok("{\"a\":[1,{\"b\":false},\"c\\n\\u00e9\\ud83d\\ude00\"],\"d\":{}}");
    ok("\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");          /* 2, 3 and 4-byte UTF-8 */
    ok("{\n\t\"k\" : \"v\" ,\r\n \"x\" : [ 1 , 2 ]\n}\n");
}

static void test_structure(void **state)
{
    (void)state;
    bad("", 0, "unexpected end of input");
    bad("   ", 3, "unexpected end of input");
    bad("{\"a\":1 \"b\":2}", 6, "missing ',' or '}' after this value");
    bad("[1 2]", 2, "missing ',' or ']' after this value");
    bad("{\"a\":{\"b\":1}\n\"c\":2}", 12, "missing ',' or '}'");
    bad("[1,]", 3, "no trailing comma");
    bad("{\"a\":1,}", 7, "no trailing comma");
    bad("{a:1}", 1, "member name in double quotes");
    bad("{\"a\" 1}", 5, "expected ':'");
    bad("{\"a\":}", 5, "expected a value");
    bad("[1,,2]", 3, "expected a value");
    bad("{} x", 3, "more text after");
    bad("{\"a\":1", 6, "missing ',' or '}'");
    bad("tru", 0, "expected a value");
    bad("nul", 0, "expected a value");
    bad("'a'", 0, "expected a value");
}

static void test_strings(void **state)
{
    (void)state;
    bad("\"abc", 0, "unterminated string");
    bad("\"a\nb\"", 2, "a line break inside a string");
    bad("\"a\tb\"", 2, "control character");
    bad("\"a\\u0000b\"", 2, "NUL character");
    bad("\"\\x\"", 1, "unknown escape");
    bad("\"\\u12g4\"", 1, "four hex digits");
    bad("\"\\u12\"", 1, "four hex digits");
    bad("\"\\udc00\"", 1, "lone low surrogate");
    bad("\"\\ud800x\"", 1, "without its low half");
    bad("\"\\ud800\\u0041\"", 1, "without its low half");
    bad("\"\xc3\"", 1, "invalid UTF-8");
    bad("\"\xc0\xaf\"", 1, "invalid UTF-8");           /* overlong */
    bad("\"\xed\xa0\x80\"", 1, "invalid UTF-8");       /* encoded surrogate */
    bad("\"\xf4\x90\x80\x80\"", 1, "invalid UTF-8");   /* above U+10FFFF */
    bad("\"\xff\"", 1, "invalid UTF-8");
    bad_n("\"a\0b\"", 5, 2, "control character");      /* a raw NUL byte */
}

static void test_numbers(void **state)
{
    (void)state;
    bad("01", 0, "no leading zeros");
    bad("-", 0, "invalid number");
    bad("1.", 0, "digits must follow the '.'");
    bad("1e", 0, "digits must follow the exponent");
    bad("1e+", 0, "digits must follow the exponent");
    bad(".5", 0, "expected a value");
    bad("+1", 0, "expected a value");
    ok("[0, -1, 10.25, 3e-7]");
}

static void test_depth(void **state)
{
    static char deep[PX_JSON_MAX_DEPTH * 2 + 8];
    (void)state;
    memset(deep, 0, sizeof deep);
    for (int i = 0; i < PX_JSON_MAX_DEPTH; i++)
        deep[i] = '[';
    for (int i = 0; i < PX_JSON_MAX_DEPTH; i++)
        deep[PX_JSON_MAX_DEPTH + i] = ']';
    ok(deep);
    memset(deep, '[', PX_JSON_MAX_DEPTH + 1);
    deep[PX_JSON_MAX_DEPTH + 1] = '\0';
    bad(deep, PX_JSON_MAX_DEPTH, "nested too deeply");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_structure),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_depth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
