/* Strict JSON syntax check (see jsonsyntax.h): a recursive descent over
 * the bytes that builds nothing, bounded in depth. */
#include "core/jsonsyntax.h"

#include "core/errors.h"

typedef struct {
    const unsigned char *p, *end, *start;
    const unsigned char *value_end;     /* where the last complete value ended */
    px_json_error_t *e;
} scan_t;

static int fail_at(scan_t *s, const unsigned char *at, const char *reason)
{
    s->e->offset = (size_t)(at - s->start);
    s->e->reason = reason;
    return PX_EPARSE;
}

static void skip_ws(scan_t *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Four hex digits after "\u": the code unit, or -1. */
static long hex4(scan_t *s)
{
    long v = 0;
    if (s->end - s->p < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        int h = hexval(s->p[i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    s->p += 4;
    return v;
}

/* One UTF-8 sequence starting at p (RFC 3629: no overlongs, no surrogates,
 * at most U+10FFFF): its length, or 0. */
static int utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0];
    int n;
    unsigned lo = 0x80, hi = 0xBF;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4;
    else
        return 0;
    if (end - p < n)
        return 0;
    if (c == 0xE0)
        lo = 0xA0;
    else if (c == 0xED)
        hi = 0x9F;
    else if (c == 0xF0)
        lo = 0x90;
    else if (c == 0xF4)
        hi = 0x8F;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (int i = 2; i < n; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

int px_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        int n = utf8_len(p, end);
        if (!n)
            return 0;
        p += n;
    }
    return 1;
}

static int string(scan_t *s)
{
    const unsigned char *open = s->p++;
    while (s->p < s->end) {
        unsigned char c = *s->p;
        if (c == '"') {
            s->p++;
            return 0;
        }
        if (c < 0x20)
            return fail_at(s, s->p, c == '\n' ? "a line break inside a string (write \\n, or close the string)"
                                              : "a control character inside a string (escape it)");
        if (c == '\\') {
            const unsigned char *esc = s->p++;
            long u;
            if (s->p >= s->end)
                break;
            switch (*s->p++) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                continue;
            case 'u':
                u = hex4(s);
                if (u < 0)
                    return fail_at(s, esc, "\\u needs four hex digits");
                if (u == 0)
                    return fail_at(s, esc, "a NUL character (\\u0000) inside a string");
                if (u >= 0xDC00 && u <= 0xDFFF)
                    return fail_at(s, esc, "a lone low surrogate escape");
                if (u >= 0xD800 && u <= 0xDBFF) {
                    long lo;
                    if (s->end - s->p < 2 || s->p[0] != '\\' || s->p[1] != 'u')
                        return fail_at(s, esc, "a high surrogate escape without its low half");
                    s->p += 2;
                    lo = hex4(s);
                    if (lo < 0xDC00 || lo > 0xDFFF)
                        return fail_at(s, esc, "a high surrogate escape without its low half");
                }
                continue;
            default:
                return fail_at(s, esc, "unknown escape (valid: \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)");
            }
        }
        {
            int n = utf8_len(s->p, s->end);
            if (!n)
                return fail_at(s, s->p, "invalid UTF-8 inside a string");
            s->p += n;
        }
    }
    return fail_at(s, open, "unterminated string");
}

static int digits(scan_t *s)
{
    const unsigned char *b = s->p;
    while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
        s->p++;
    return s->p > b;
}

static int number(scan_t *s)
{
    const unsigned char *b = s->p;
    if (*s->p == '-')
        s->p++;
    if (s->p < s->end && *s->p == '0')
        s->p++;
    else if (!digits(s))
        return fail_at(s, b, "invalid number");
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (!digits(s))
            return fail_at(s, b, "invalid number: digits must follow the '.'");
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (!digits(s))
            return fail_at(s, b, "invalid number: digits must follow the exponent");
    }
    if (s->p < s->end && ((*s->p >= '0' && *s->p <= '9') || *s->p == '.'))
        return fail_at(s, b, "invalid number (no leading zeros)");
    return 0;
}

static int literal(scan_t *s, const char *word)
{
    const unsigned char *b = s->p;
    for (; *word; word++, s->p++)
        if (s->p >= s->end || *s->p != (unsigned char)*word)
            return fail_at(s, b, "expected a value (a string, number, object, array, true, false or null)");
    return 0;
}

static int value(scan_t *s, int depth);

/* After a member or element: ',' and more, or the closing bracket. */
static int container(scan_t *s, int depth, unsigned char close)
{
    int first = 1;
    s->p++;                                     /* '{' or '[' */
    if (depth > PX_JSON_MAX_DEPTH)
        return fail_at(s, s->p - 1, "nested too deeply");
    for (;;) {
        skip_ws(s);
        if (s->p < s->end && *s->p == close && first) {
            s->p++;
            return 0;
        }
        if (close == '}') {
            if (s->p >= s->end || *s->p != '"')
                return fail_at(s, s->p, first ? "expected a member name in double quotes, or '}'"
                                              : "expected a member name in double quotes (no trailing comma)");
            if (string(s) < 0)
                return PX_EPARSE;
            skip_ws(s);
            if (s->p >= s->end || *s->p != ':')
                return fail_at(s, s->p, "expected ':' after the member name");
            s->p++;
            skip_ws(s);
        } else if (!first && s->p < s->end && *s->p == ']') {
            return fail_at(s, s->p, "expected a value after ',' (no trailing comma)");
        }
        if (value(s, depth) < 0)
            return PX_EPARSE;
        first = 0;
        skip_ws(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            continue;
        }
        if (s->p < s->end && *s->p == close) {
            s->p++;
            return 0;
        }
        /* the fault is just after the value that was not followed by one */
        return fail_at(s, s->value_end, close == '}' ? "missing ',' or '}' after this value"
                                                     : "missing ',' or ']' after this value");
    }
}

static int value(scan_t *s, int depth)
{
    int r;
    if (s->p >= s->end)
        return fail_at(s, s->p, "unexpected end of input: expected a value");
    switch (*s->p) {
    case '{': r = container(s, depth + 1, '}'); break;
    case '[': r = container(s, depth + 1, ']'); break;
    case '"': r = string(s); break;
    case 't': r = literal(s, "true"); break;
    case 'f': r = literal(s, "false"); break;
    case 'n': r = literal(s, "null"); break;
    default:
        if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))
            r = number(s);
        else
            r = fail_at(s, s->p, "expected a value (a string, number, object, array, true, false or null)");
    }
    if (r == 0)
        s->value_end = s->p;
    return r;
}

int px_json_check(const char *text, size_t len, px_json_error_t *e)
{
    scan_t s;
    s.start = s.p = (const unsigned char *)text;
    s.end = s.p + len;
    s.value_end = s.p;
    s.e = e;
    skip_ws(&s);
    if (value(&s, 0) < 0)
        return PX_EPARSE;
    skip_ws(&s);
    if (s.p < s.end)
        return fail_at(&s, s.p, "more text after the end of the JSON value");
    return 0;
}
