/* Request smuggling and framing corpus: every message here must be refused
 * with the right error, and those refusable from the head alone must be
 * refused before any PX_H1_HEAD (so nothing would have been forwarded). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "h1_trace.h"

#define POST "POST / HTTP/1.1\r\nHost: h\r\n"
#define TE_CHUNKED "Transfer-Encoding: chunked\r\n"

typedef struct {
    const char *name;
    const char *in;
    size_t len;                 /* 0: strlen(in) (for inputs without NUL) */
    px_http_error_t want;
    int in_head;                /* detectable from the head: no PX_H1_HEAD allowed */
} smuggle_t;

#define AMB PX_HERR_AMBIGUOUS_FRAMING
#define BAD PX_HERR_BAD_REQUEST

static const smuggle_t corpus[] = {
    /* Content-Length / Transfer-Encoding conflicts */
    { "CL then TE", POST "Content-Length: 5\r\n" TE_CHUNKED "\r\n0\r\n\r\n", 0, AMB, 1 },
    { "TE then CL", POST TE_CHUNKED "Content-Length: 5\r\n\r\n0\r\n\r\n", 0, AMB, 1 },
    { "TE then CL, HTTP/1.0", "POST / HTTP/1.0\r\n" TE_CHUNKED "Content-Length: 3\r\n\r\nabc", 0, AMB, 1 },
    { "CL and TE: identity", POST "Content-Length: 3\r\nTransfer-Encoding: identity\r\n\r\nabc", 0, AMB, 1 },
    { "duplicate CL, equal", POST "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 0, AMB, 1 },
    { "duplicate CL, differ", POST "Content-Length: 5\r\nContent-length: 6\r\n\r\nhello!", 0, AMB, 1 },
    { "CL comma list", POST "Content-Length: 5, 5\r\n\r\nhello", 0, AMB, 1 },
    { "CL comma list, no space", POST "Content-Length: 5,5\r\n\r\nhello", 0, AMB, 1 },
    { "duplicate TE", POST TE_CHUNKED TE_CHUNKED "\r\n0\r\n\r\n", 0, AMB, 1 },
    { "TE chunked then TE gzip", POST TE_CHUNKED "Transfer-Encoding: gzip\r\n\r\n0\r\n\r\n", 0, AMB, 1 },
    /* invalid Content-Length */
    { "CL +5", POST "Content-Length: +5\r\n\r\nhello", 0, BAD, 1 },
    { "CL -1", POST "Content-Length: -1\r\n\r\n", 0, BAD, 1 },
    { "CL ' 5 x'", POST "Content-Length:  5 x\r\n\r\nhello", 0, BAD, 1 },
    { "CL '5 5'", POST "Content-Length: 5 5\r\n\r\nhello", 0, BAD, 1 },
    { "CL hex", POST "Content-Length: 0x5\r\n\r\nhello", 0, BAD, 1 },
    { "CL overflow", POST "Content-Length: 99999999999999999999\r\n\r\n", 0, BAD, 1 },
    { "CL empty", POST "Content-Length: \r\n\r\n", 0, BAD, 1 },
    { "CL space before colon", POST "Content-Length : 5\r\n\r\nhello", 0, BAD, 1 },
    /* Transfer-Encoding values */
    { "TE chunked, identity", POST "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 0, BAD, 1 },
    { "TE chunked, chunked", POST "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 0, BAD, 1 },
    { "TE chunked, gzip", POST "Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 0, BAD, 1 },
    { "TE gzip", POST "Transfer-Encoding: gzip\r\n\r\nabc", 0, PX_HERR_NOT_IMPLEMENTED, 1 },
    { "TE gzip, chunked", POST "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 0, PX_HERR_NOT_IMPLEMENTED, 1 },
    { "TE identity", POST "Transfer-Encoding: identity\r\n\r\n", 0, PX_HERR_NOT_IMPLEMENTED, 1 },
    { "TE xchunked", POST "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 0, PX_HERR_NOT_IMPLEMENTED, 1 },
    { "TE chunked;param", POST "Transfer-Encoding: chunked;q=1\r\n\r\n0\r\n\r\n", 0, PX_HERR_NOT_IMPLEMENTED, 1 },
    { "TE empty", POST "Transfer-Encoding: \r\n\r\n0\r\n\r\n", 0, BAD, 1 },
    { "TE trailing comma", POST "Transfer-Encoding: chunked,\r\n\r\n0\r\n\r\n", 0, BAD, 1 },
    { "TE vertical tab before", POST "Transfer-Encoding: \x0b" "chunked\r\n\r\n0\r\n\r\n", 0, BAD, 1 },
    { "TE vertical tab after", POST "Transfer-Encoding: chunked\x0b\r\n\r\n0\r\n\r\n", 0, BAD, 1 },
    /* llhttp does not see "chunked<HTAB>" as chunked: refused rather than disagree */
    { "TE trailing tab", POST "Transfer-Encoding: chunked\t\r\n\r\n0\r\n\r\n", 0, BAD, 1 },
    { "TE space before colon", POST "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 0, BAD, 1 },
    { "TE tab before colon", POST "Transfer-Encoding\t: chunked\r\n\r\n0\r\n\r\n", 0, BAD, 1 },
    { "TE in HTTP/1.0", "POST / HTTP/1.0\r\n" TE_CHUNKED "\r\n3\r\nabc\r\n0\r\n\r\n", 0, BAD, 1 },
    { "GET with TE body in HTTP/1.0", "GET / HTTP/1.0\r\n" TE_CHUNKED "\r\n0\r\n\r\n", 0, BAD, 1 },
    /* line folding and line endings */
    { "obs-fold of TE", POST "Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", 0, BAD, 1 },
    { "obs-fold continuation", POST "X-A: a\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 0, BAD, 1 },
    { "obs-fold with tab", POST "X-A: a\r\n\tb\r\n\r\n", 0, BAD, 1 },
    { "space before first header", "GET / HTTP/1.1\r\n Host: h\r\n\r\n", 0, BAD, 1 },
    { "bare LF in header", POST "X-A: a\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 0, BAD, 1 },
    { "bare LF after request line", "GET / HTTP/1.1\nHost: h\r\n\r\n", 0, BAD, 1 },
    { "bare LF ends head", POST "X-A: a\r\n\n", 0, BAD, 1 },
    { "bare CR in value", POST "X-A: a\rTransfer-Encoding: chunked\r\n\r\n", 0, BAD, 1 },
    { "bare CR after request line", "GET / HTTP/1.1\rHost: h\r\n\r\n", 0, BAD, 1 },
    /* control bytes */
    { "NUL in value", POST "X-A: a\0b\r\n\r\n", sizeof(POST "X-A: a\0b\r\n\r\n") - 1, BAD, 1 },
    { "NUL in name", POST "X-\0A: b\r\n\r\n", sizeof(POST "X-\0A: b\r\n\r\n") - 1, BAD, 1 },
    { "SOH in value", POST "X-A: a\x01" "b\r\n\r\n", 0, BAD, 1 },
    { "DEL in value", POST "X-A: a\x7f" "b\r\n\r\n", 0, BAD, 1 },
    { "ESC in name", POST "X-\x1b" "A: b\r\n\r\n", 0, BAD, 1 },
    /* chunked body framing: only visible after the head */
    { "chunk size 0x5", POST TE_CHUNKED "\r\n0x5\r\nhello\r\n0\r\n\r\n", 0, BAD, 0 },
    { "chunk size overflow", POST TE_CHUNKED "\r\nffffffffffffffffff\r\nhello\r\n0\r\n\r\n", 0, BAD, 0 },
    { "chunk size negative", POST TE_CHUNKED "\r\n-5\r\nhello\r\n0\r\n\r\n", 0, BAD, 0 },
    { "chunk size with space", POST TE_CHUNKED "\r\n5 \r\nhello\r\n0\r\n\r\n", 0, BAD, 0 },
    { "chunk size bare LF", POST TE_CHUNKED "\r\n5\nhello\r\n0\r\n\r\n", 0, BAD, 0 },
    { "missing CRLF after chunk", POST TE_CHUNKED "\r\n5\r\nhelloX0\r\n\r\n", 0, BAD, 0 },
    { "bare LF after chunk", POST TE_CHUNKED "\r\n5\r\nhello\n0\r\n\r\n", 0, BAD, 0 },
    { "chunk ext with space", POST TE_CHUNKED "\r\n5 ;a=b\r\nhello\r\n0\r\n\r\n", 0, BAD, 0 },
    { "chunk ext bad char", POST TE_CHUNKED "\r\n5;a=\x01\r\nhello\r\n0\r\n\r\n", 0, BAD, 0 },
    /* Host */
    { "two Host headers", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 0, BAD, 1 },
    { "two Host, case", "GET / HTTP/1.1\r\nHost: a\r\nhOST: a\r\n\r\n", 0, BAD, 1 },
    { "HTTP/1.1 without Host", "GET / HTTP/1.1\r\nX: y\r\n\r\n", 0, BAD, 1 },
    { "Host with path", "GET / HTTP/1.1\r\nHost: evil.example/x\r\n\r\n", 0, BAD, 1 },
    { "Host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 0, BAD, 1 },
    { "Host with userinfo", "GET / HTTP/1.1\r\nHost: u@h\r\n\r\n", 0, BAD, 1 },
    { "empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", 0, BAD, 1 },
    /* versions and methods */
    { "HTTP/2.0", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 0, PX_HERR_VERSION, 1 },
    { "HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 0, PX_HERR_VERSION, 1 },
    { "HTTP/0.9 request", "GET /\r\n\r\n", 0, PX_HERR_VERSION, 1 },
    { "HTTP/0.9 version", "GET / HTTP/0.9\r\n\r\n", 0, PX_HERR_VERSION, 1 },
    { "HTTP/1.2", "GET / HTTP/1.2\r\nHost: h\r\n\r\n", 0, PX_HERR_VERSION, 1 },
    { "HTTP/3.0", "GET / HTTP/3.0\r\nHost: h\r\n\r\n", 0, PX_HERR_VERSION, 1 },
    { "RTSP/1.0", "GET / RTSP/1.0\r\nHost: h\r\n\r\n", 0, BAD, 1 },
    { "CONNECT", "CONNECT internal:22 HTTP/1.1\r\nHost: internal:22\r\n\r\n", 0, PX_HERR_METHOD_NOT_ALLOWED, 1 },
    { "lowercase method", "get / HTTP/1.1\r\nHost: h\r\n\r\n", 0, BAD, 1 },
    { "tab in request line", "GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", 0, BAD, 1 },
    { "space after version", "GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 0, BAD, 1 },
    /* request targets */
    { "target without slash", "GET index.html HTTP/1.1\r\nHost: h\r\n\r\n", 0, BAD, 1 },
    { "asterisk with GET", "GET * HTTP/1.1\r\nHost: h\r\n\r\n", 0, BAD, 1 },
    { "fragment", "GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n", 0, BAD, 1 },
    { "absolute-form userinfo", "GET http://user@h/ HTTP/1.1\r\nHost: h\r\n\r\n", 0, BAD, 1 },
    { "absolute-form empty authority", "GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n", 0, BAD, 1 },
    { "absolute-form other scheme", "GET ftp://h/x HTTP/1.1\r\nHost: h\r\n\r\n", 0, BAD, 1 },
    { "authority-form without CONNECT", "GET h:80 HTTP/1.1\r\nHost: h\r\n\r\n", 0, BAD, 1 },
    { "space in target", "GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", 0, BAD, 1 },
};

static void test_corpus(void **state)
{
    size_t i, step;
    for (i = 0; i < sizeof corpus / sizeof corpus[0]; i++) {
        const smuggle_t *c = &corpus[i];
        size_t len = c->len ? c->len : strlen(c->in);
        /* whole, byte by byte, and an odd split: the answer must not change */
        for (step = 0; step <= 7; step += (step ? 6 : 1)) {
            h1_trace_t t;
            h1_parse_all(1, NULL, c->in, len, step, 0, &t);
            if (!t.error)
                fail_msg("%s (step %zu): accepted: %s", c->name, step, t.log);
            if (t.err != c->want)
                fail_msg("%s (step %zu): got %s, want %s (%s)", c->name, step, px_http_error_str(t.err),
                         px_http_error_str(c->want), t.detail);
            if (c->in_head && t.heads)
                fail_msg("%s (step %zu): a head came out before the error: %s", c->name, step, t.log);
            if (!c->in_head && t.heads != 1)
                fail_msg("%s (step %zu): %d heads", c->name, step, t.heads);
            if (!t.detail || !*t.detail)
                fail_msg("%s: no detail", c->name);
        }
    }
    assert_true(sizeof corpus / sizeof corpus[0] >= 30);
}

/* The parser accepts nothing once it has failed. */
static void test_error_is_sticky(void **state)
{
    px_http1_t *p = px_http1_new(1, NULL);
    size_t used, dlen;
    const char *data, *detail;
    assert_int_equal(px_http1_parse(p, "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 37, &used, &data, &dlen),
                     PX_H1_ERROR);
    assert_int_equal(px_http1_error(p, &detail), PX_HERR_BAD_REQUEST);
    assert_string_equal(detail, "more than one Host header");
    assert_int_equal(px_http1_parse(p, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27, &used, &data, &dlen), PX_H1_ERROR);
    assert_int_equal(used, 0);
    assert_int_equal(px_http1_finish(p), PX_H1_ERROR);
    px_http1_free(p);
}

/* A smuggled request hidden in a body stays body. */
static void test_body_is_opaque(void **state)
{
    static const char smuggled[] = "GET /admin HTTP/1.1\r\nHost: internal\r\n\r\n";
    char in[256], want[512];
    int n = snprintf(in, sizeof in, POST "Content-Length: %zu\r\n\r\n%s", strlen(smuggled), smuggled);
    h1_trace_t t;
    h1_parse_all(1, NULL, in, (size_t)n, 0, 0, &t);
    snprintf(want, sizeof want, "<POST / host=h 1.1 ka=1 exp=0 L%zu [Host: h] [Content-Length: %zu]>%s|",
             strlen(smuggled), strlen(smuggled), smuggled);
    assert_string_equal(t.log, want);
}

static void test_chunk_extension_flood(void **state)
{
    char *in = malloc(40000);
    size_t n = (size_t)sprintf(in, POST TE_CHUNKED "\r\n1");
    h1_trace_t t;
    while (n < 39000)
        n += (size_t)sprintf(in + n, ";aaaaaaaaaaaaaaaaaaaaaa=bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
    n += (size_t)sprintf(in + n, "\r\nx\r\n0\r\n\r\n");
    h1_parse_all(1, NULL, in, n, 0, 0, &t);
    assert_true(t.error);
    assert_int_equal(t.err, PX_HERR_BAD_REQUEST);
    assert_string_equal(t.detail, "chunk extensions too long");
    free(in);
}

/* Responses: the same ambiguities are the upstream's fault (502). */
static void test_responses(void **state)
{
    static const struct { const char *in; int heads; } cases[] = {
        { "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 0 },
        { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 0 },
        { "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 0 },
        { "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc", 0 },
        { "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 0 },
        { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 0 },
        { "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 0 },
        { "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", 0 },
        { "HTTP/2.0 200 OK\r\n\r\n", 0 },
        { "HTTP/1.1 200 OK\r\nX: a\nY: b\r\n\r\n", 0 },
        { "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", 0 },
        { "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\nx", 0 },
        { "ICE/1.0 200 OK\r\n\r\n", 0 },
        { "HTTP/1.1 099 Odd\r\n\r\n", 0 },
        { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 1 },
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        h1_trace_t t;
        h1_parse_all(0, NULL, cases[i].in, strlen(cases[i].in), 0, 0, &t);
        if (!t.error || t.err != PX_HERR_UPSTREAM_BAD || t.heads != cases[i].heads)
            fail_msg("response %zu: %s", i, t.log);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus),
        cmocka_unit_test(test_error_is_sticky),
        cmocka_unit_test(test_body_is_opaque),
        cmocka_unit_test(test_chunk_extension_flood),
        cmocka_unit_test(test_responses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
