/* px_http1 parsing: events, framing, keep-alive, limits, split input. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "h1_trace.h"

#define S(lit) lit, sizeof(lit) - 1

static const px_http1_limits_t lim_default = { 8192, 64, 0 };

static void test_simple_get(void **state)
{
    h1_trace_t t;
    px_http1_t *p = px_http1_new(1, &lim_default);
    assert_non_null(p);
    assert_true(px_http1_idle(p));
    h1_run(p, S("GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t/1\r\n\r\n"), 0, 0, &t);
    assert_string_equal(t.log, "<GET /index.html?q=1 host=example.com 1.1 ka=1 exp=0 N0"
                               " [Host: example.com] [User-Agent: t/1]>|");
    assert_true(px_http1_idle(p));
    assert_non_null(px_http_head_get(px_http1_head(p), "user-agent"));
    assert_null(px_http_head_get(px_http1_head(p), "user-agen"));
    px_http1_free(p);
}

/* Event by event: what each call consumes and returns. */
static void test_events_and_consumed(void **state)
{
    static const char in[] = "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\nHost: h\r\n\r\n";
    const size_t head1 = strlen("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n");
    px_http1_t *p = px_http1_new(1, &lim_default);
    size_t used, dlen, off = 0, len = sizeof in - 1;
    const char *data;

    assert_int_equal(px_http1_parse(p, in, len, &used, &data, &dlen), PX_H1_HEAD);
    assert_int_equal(used, head1);
    assert_false(px_http1_idle(p));
    assert_int_equal(px_http1_head(p)->body, PX_BODY_LENGTH);
    assert_int_equal(px_http1_head(p)->content_length, 3);
    off += used;
    assert_int_equal(px_http1_parse(p, in + off, len - off, &used, &data, &dlen), PX_H1_BODY);
    assert_int_equal(used, 3);
    assert_ptr_equal(data, in + off);       /* body points into the caller's buffer */
    assert_int_equal(dlen, 3);
    off += used;
    assert_int_equal(px_http1_parse(p, in + off, len - off, &used, &data, &dlen), PX_H1_END);
    assert_int_equal(used, 0);
    assert_true(px_http1_idle(p));
    assert_int_equal(px_http1_parse(p, in + off, len - off, &used, &data, &dlen), PX_H1_HEAD);
    assert_int_equal(used, len - off);
    assert_memory_equal(px_http1_head(p)->target, "/b", 2);
    off += used;
    /* the GET has no body: its END comes without input */
    assert_int_equal(px_http1_parse(p, NULL, 0, &used, &data, &dlen), PX_H1_END);
    assert_int_equal(px_http1_parse(p, NULL, 0, &used, &data, &dlen), PX_H1_NEED_MORE);
    assert_int_equal(used, 0);
    px_http1_free(p);
}

static void test_post_byte_by_byte(void **state)
{
    static const char in[] = "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world";
    const char *want = "<POST /up host=h 1.1 ka=1 exp=0 L11 [Host: h] [Content-Length: 11]>hello world|";
    h1_trace_t t;
    h1_parse_all(1, &lim_default, S(in), 1, 0, &t);
    assert_string_equal(t.log, want);
    assert_int_equal(t.bodies, 11);        /* one event per byte fed */
    h1_parse_all(1, &lim_default, S(in), 0, 0, &t);
    assert_string_equal(t.log, want);
    assert_int_equal(t.bodies, 1);
}

static void test_chunked_with_extensions(void **state)
{
    static const char in[] = "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n"
                             "5;name=val\r\nhello\r\n6;a;b=\"q s\"\r\n world\r\n"
                             "0\r\nX-Trailer: t\r\n\r\n";
    const char *want = "<POST /c host=h 1.1 ka=1 exp=0 C0 [Host: h] [Transfer-Encoding: Chunked]>hello world|";
    h1_trace_t t;
    size_t step;
    for (step = 0; step < 8; step++) {
        h1_parse_all(1, &lim_default, S(in), step, 0, &t);
        assert_string_equal(t.log, want);
    }
    /* leading OWS before the coding is fine */
    h1_parse_all(1, &lim_default,
                 S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\t chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n"), 0, 0, &t);
    assert_string_equal(t.log, "<POST / host=h 1.1 ka=1 exp=0 C0 [Host: h] [Transfer-Encoding: chunked]>ab|");
}

static void test_pipelined(void **state)
{
    static const char in[] = "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n"
                             "POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
                             "\r\n"     /* tolerated between messages */
                             "GET /3 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
    h1_trace_t t;
    h1_parse_all(1, &lim_default, S(in), 0, 0, &t);
    assert_string_equal(t.log, "<GET /1 host=h 1.1 ka=1 exp=0 N0 [Host: h]>|"
                               "<POST /2 host=h 1.1 ka=1 exp=0 L3 [Host: h] [Content-Length: 3]>abc|"
                               "<GET /3 host=h 1.1 ka=0 exp=0 N0 [Host: h] [Connection: close]>|");
    assert_int_equal(t.heads, 3);
    assert_int_equal(t.ends, 3);
    assert_false(t.error);
}

/* A head stays valid while the next one is being received. */
static void test_head_survives_next_partial_head(void **state)
{
    static const char in[] = "GET /first HTTP/1.1\r\nHost: one\r\n\r\nGET /second HTTP/1.1\r\nHo";
    px_http1_t *p = px_http1_new(1, &lim_default);
    size_t used, dlen, off = 0;
    const char *data;
    const px_http_head_t *h;
    assert_int_equal(px_http1_parse(p, in, sizeof in - 1, &used, &data, &dlen), PX_H1_HEAD);
    off = used;
    h = px_http1_head(p);
    assert_int_equal(px_http1_parse(p, in + off, sizeof in - 1 - off, &used, &data, &dlen), PX_H1_END);
    assert_int_equal(px_http1_parse(p, in + off, sizeof in - 1 - off, &used, &data, &dlen), PX_H1_NEED_MORE);
    assert_int_equal(used, sizeof in - 1 - off);
    assert_false(px_http1_idle(p));
    assert_int_equal(h->target_len, 6);
    assert_memory_equal(h->target, "/first", 6);
    assert_memory_equal(h->host, "one", 3);
    assert_memory_equal(h->headers[0].value, "one", 3);
    assert_int_equal(px_http1_parse(p, S("st: two\r\n\r\n"), &used, &data, &dlen), PX_H1_HEAD);
    assert_memory_equal(px_http1_head(p)->target, "/second", 7);
    px_http1_free(p);
}

static void test_split_everywhere(void **state)
{
    static const char in[] = "PUT /a/b?c=d HTTP/1.1\r\nHost: split.example:8443\r\nX-Empty:\r\n"
                             "X-Long: aaaaaaaaaaaaaaaaaaaaaaaaa bbbbbbbbbbbbbbb  \r\nExpect: 100-continue\r\n"
                             "Content-Length: 4\r\n\r\nbody"
                             "HTTP/1.1 200 OK\r\n\r\n";    /* not a request: an error at the end */
    h1_trace_t whole, t;
    size_t k, len = sizeof in - 1;
    h1_parse_all(1, &lim_default, in, len, 0, 0, &whole);
    assert_string_equal(whole.log, "<PUT /a/b?c=d host=split.example:8443 1.1 ka=1 exp=1 L4"
                                   " [Host: split.example:8443] [X-Empty: ]"
                                   " [X-Long: aaaaaaaaaaaaaaaaaaaaaaaaa bbbbbbbbbbbbbbb]"
                                   " [Expect: 100-continue] [Content-Length: 4]>body|#bad_request");
    for (k = 1; k < len; k++) {
        px_http1_t *p = px_http1_new(1, &lim_default);
        char *rb = malloc(len);
        size_t rlen = k;
        int in_msg = 0;
        memset(&t, 0, sizeof t);
        memcpy(rb, in, k);
        if (h1_pump(p, rb, &rlen, &t, &in_msg) == 0) {
            memcpy(rb + rlen, in + k, len - k);
            rlen += len - k;
            h1_pump(p, rb, &rlen, &t, &in_msg);
        }
        if (strcmp(t.log, whole.log))
            fail_msg("split at %zu: %s", k, t.log);
        free(rb);
        px_http1_free(p);
    }
    for (k = 1; k <= len; k++) {
        h1_parse_all(1, &lim_default, in, len, k, 0, &t);
        if (strcmp(t.log, whole.log))
            fail_msg("step %zu: %s", k, t.log);
    }
}

static void test_keep_alive(void **state)
{
    static const struct { const char *in; int ka; } cases[] = {
        { "GET / HTTP/1.1\r\nHost: h\r\n\r\n", 1 },
        { "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", 0 },
        { "GET / HTTP/1.1\r\nHost: h\r\nConnection: Keep-Alive, CLOSE\r\n\r\n", 0 },
        { "GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\n\r\n", 1 },
        { "GET / HTTP/1.1\r\nHost: h\r\nConnection: closed\r\n\r\n", 1 },
        { "GET / HTTP/1.0\r\n\r\n", 0 },
        { "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 1 },
        { "GET / HTTP/1.0\r\nConnection: foo ,\tKeep-Alive\r\n\r\n", 1 },
        { "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", 0 },
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        px_http1_t *p = px_http1_new(1, &lim_default);
        size_t used, dlen;
        const char *data;
        assert_int_equal(px_http1_parse(p, cases[i].in, strlen(cases[i].in), &used, &data, &dlen), PX_H1_HEAD);
        if (px_http1_head(p)->keep_alive != cases[i].ka)
            fail_msg("case %zu: keep_alive %d", i, px_http1_head(p)->keep_alive);
        px_http1_free(p);
    }
}

static void test_expect_continue(void **state)
{
    px_http1_t *p = px_http1_new(1, &lim_default);
    size_t used, dlen;
    const char *data;
    h1_trace_t t;
    /* the head comes out before any body byte: the proxy can answer 100 */
    assert_int_equal(px_http1_parse(p, S("POST /x HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\n"
                                         "Content-Length: 5\r\n\r\n"), &used, &data, &dlen), PX_H1_HEAD);
    assert_int_equal(px_http1_head(p)->expect_continue, 1);
    assert_int_equal(px_http1_parse(p, NULL, 0, &used, &data, &dlen), PX_H1_NEED_MORE);
    assert_int_equal(px_http1_parse(p, S("hello"), &used, &data, &dlen), PX_H1_BODY);
    assert_int_equal(dlen, 5);
    assert_int_equal(px_http1_parse(p, NULL, 0, &used, &data, &dlen), PX_H1_END);
    px_http1_free(p);
    /* HTTP/1.0 clients cannot expect 100 (RFC 9110 10.1.1) */
    h1_parse_all(1, &lim_default, S("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n"), 0, 0, &t);
    assert_string_equal(t.log, "<POST / host= 1.0 ka=0 exp=0 L0 [Expect: 100-continue] [Content-Length: 0]>|");
    h1_parse_all(1, &lim_default, S("GET / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n"), 0, 0, &t);
    assert_string_equal(t.log, "<GET / host=h 1.1 ka=1 exp=0 N0 [Host: h] [Expect: 200-ok]>|");
}

static void test_absolute_form(void **state)
{
    h1_trace_t t;
    h1_parse_all(1, &lim_default, S("GET http://Example.com:8080/a/b?x=1 HTTP/1.1\r\nHost: other\r\n\r\n"), 0, 0, &t);
    assert_string_equal(t.log, "<GET /a/b?x=1 host=Example.com:8080 1.1 ka=1 exp=0 N0 [Host: other]>|");
    h1_parse_all(1, &lim_default, S("GET HTTPS://h.example?x HTTP/1.1\r\nHost: h.example\r\n\r\n"), 0, 0, &t);
    assert_string_equal(t.log, "<GET /?x host=h.example 1.1 ka=1 exp=0 N0 [Host: h.example]>|");
    h1_parse_all(1, &lim_default, S("GET http://h.example HTTP/1.0\r\n\r\n"), 0, 0, &t);
    assert_string_equal(t.log, "<GET / host=h.example 1.0 ka=0 exp=0 N0>|");
    h1_parse_all(1, &lim_default, S("OPTIONS http://h.example HTTP/1.1\r\nHost: h.example\r\n\r\n"), 0, 0, &t);
    assert_string_equal(t.log, "<OPTIONS * host=h.example 1.1 ka=1 exp=0 N0 [Host: h.example]>|");
    h1_parse_all(1, &lim_default, S("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"), 0, 0, &t);
    assert_string_equal(t.log, "<OPTIONS * host=h 1.1 ka=1 exp=0 N0 [Host: h]>|");
    /* byte by byte: the rewrite must not depend on how the target arrived */
    h1_parse_all(1, &lim_default, S("GET http://[::1]:80?q HTTP/1.1\r\nHost: x\r\n\r\n"), 1, 0, &t);
    assert_string_equal(t.log, "<GET /?q host=[::1]:80 1.1 ka=1 exp=0 N0 [Host: x]>|");
}

static void test_upgrade_is_not_tunnelled(void **state)
{
    h1_trace_t t;
    h1_parse_all(1, &lim_default,
                 S("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
                   "GET /next HTTP/1.1\r\nHost: h\r\n\r\n"), 0, 0, &t);
    assert_string_equal(t.log, "<GET /ws host=h 1.1 ka=1 exp=0 N0 [Host: h] [Connection: Upgrade] [Upgrade: websocket]>|"
                               "<GET /next host=h 1.1 ka=1 exp=0 N0 [Host: h]>|");
    h1_parse_all(1, &lim_default,
                 S("POST /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nContent-Length: 2\r\n\r\nok"
                   "GET /next HTTP/1.1\r\nHost: h\r\n\r\n"), 3, 0, &t);
    assert_string_equal(t.log, "<POST /ws host=h 1.1 ka=1 exp=0 L2 [Host: h] [Connection: Upgrade] [Upgrade: h2c]"
                               " [Content-Length: 2]>ok|<GET /next host=h 1.1 ka=1 exp=0 N0 [Host: h]>|");
}

static void test_data_after_close(void **state)
{
    h1_trace_t t;
    h1_parse_all(1, &lim_default, S("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n\r\n"),
                 0, 0, &t);
    assert_string_equal(t.log, "<GET / host=h 1.1 ka=0 exp=0 N0 [Host: h] [Connection: close]>|#bad_request");
}

static void test_head_response(void **state)
{
    px_http1_t *p = px_http1_new(0, &lim_default);
    h1_trace_t t;
    px_http1_expect_head_response(p, 1);
    /* the interim 100 does not consume the HEAD expectation */
    h1_run(p, S("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n"
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"), 0, 0, &t);
    assert_string_equal(t.log, "<100 Continue 1.1 ka=1 N0>!|<200 OK 1.1 ka=1 N0 [Content-Length: 42]>|"
                               "<200 OK 1.1 ka=1 L2 [Content-Length: 2]>hi|");
    px_http1_free(p);
}

static void test_interim_then_final(void **state)
{
    static const char in[] = "HTTP/1.1 100 Continue\r\n\r\n"
                             "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
                             "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    h1_trace_t t;
    px_http1_t *p = px_http1_new(0, &lim_default);
    h1_run(p, S(in), 1, 0, &t);
    assert_string_equal(t.log, "<100 Continue 1.1 ka=1 N0>!|<103 Early Hints 1.1 ka=1 N0 [Link: </s.css>; rel=preload]>!|"
                               "<200 OK 1.1 ka=1 L2 [Content-Length: 2]>ok|");
    assert_int_equal(px_http1_is_interim(p), 0);
    px_http1_free(p);
}

static void test_204_304(void **state)
{
    h1_trace_t t;
    h1_parse_all(0, &lim_default, S("HTTP/1.1 204 No Content\r\n\r\n"
                                    "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"
                                    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"), 0, 0, &t);
    assert_string_equal(t.log, "<204 No Content 1.1 ka=1 N0>|<304 Not Modified 1.1 ka=1 N0 [Content-Length: 10]>|"
                               "<200 OK 1.1 ka=1 L1 [Content-Length: 1]>x|");
}

static void test_eof_response(void **state)
{
    static const char in[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nstreaming data";
    const char *want = "<200 OK 1.1 ka=0 E0 [Content-Type: text/plain]>streaming data|";
    h1_trace_t t;
    size_t step;
    for (step = 0; step < 5; step++) {
        h1_parse_all(0, &lim_default, S(in), step, 1, &t);
        assert_string_equal(t.log, want);
    }
    /* no body at all before the close */
    h1_parse_all(0, &lim_default, S("HTTP/1.0 200 OK\r\n\r\n"), 0, 1, &t);
    assert_string_equal(t.log, "<200 OK 1.0 ka=0 E0>|");
    /* closed inside a Content-Length body: an error, not a short body */
    h1_parse_all(0, &lim_default, S("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc"), 0, 1, &t);
    assert_string_equal(t.log, "<200 OK 1.1 ka=1 L5 [Content-Length: 5]>abc#upstream_bad_response");
    /* closed inside a chunked body */
    h1_parse_all(0, &lim_default, S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"), 0, 1, &t);
    assert_string_equal(t.log, "<200 OK 1.1 ka=1 C0 [Transfer-Encoding: chunked]>abc#upstream_bad_response");
    /* the body ended exactly with the last feed: finish still completes it */
    h1_parse_all(0, &lim_default, S("HTTP/1.1 200 OK\r\n\r\n"), 0, 1, &t);
    assert_string_equal(t.log, "<200 OK 1.1 ka=0 E0>|");
}

static void test_finish_states(void **state)
{
    px_http1_t *p = px_http1_new(1, &lim_default);
    size_t used, dlen;
    const char *data;
    const char *detail;
    assert_int_equal(px_http1_finish(p), PX_H1_NEED_MORE);   /* idle: a clean close */
    assert_int_equal(px_http1_parse(p, S("GET / HTTP/1.1\r\nHo"), &used, &data, &dlen), PX_H1_NEED_MORE);
    assert_int_equal(px_http1_finish(p), PX_H1_ERROR);
    assert_int_equal(px_http1_error(p, &detail), PX_HERR_BAD_REQUEST);
    assert_string_equal(detail, "connection closed in the head");
    assert_int_equal(px_http1_parse(p, S("st: h\r\n\r\n"), &used, &data, &dlen), PX_H1_ERROR);
    px_http1_free(p);

    p = px_http1_new(1, &lim_default);
    /* finish with a pending END hands the END out */
    assert_int_equal(px_http1_parse(p, S("GET / HTTP/1.1\r\nHost: h\r\n\r\n"), &used, &data, &dlen), PX_H1_HEAD);
    assert_int_equal(px_http1_finish(p), PX_H1_END);
    assert_int_equal(px_http1_finish(p), PX_H1_NEED_MORE);
    px_http1_free(p);

    /* a close-delimited response, then the next response (from a new
     * connection) on the same parser: a new head, not more body */
    p = px_http1_new(0, &lim_default);
    assert_int_equal(px_http1_parse(p, S("HTTP/1.1 200 OK\r\n\r\nab"), &used, &data, &dlen), PX_H1_HEAD);
    assert_int_equal(px_http1_parse(p, S("ab"), &used, &data, &dlen), PX_H1_BODY);
    assert_int_equal(px_http1_parse(p, S(""), &used, &data, &dlen), PX_H1_NEED_MORE);
    assert_int_equal(px_http1_finish(p), PX_H1_END);
    assert_int_equal(px_http1_parse(p, S("HTTP/1.1 204 No Content\r\n\r\n"), &used, &data, &dlen),
                     PX_H1_HEAD);
    assert_int_equal(px_http1_head(p)->status, 204);
    assert_int_equal(px_http1_parse(p, S(""), &used, &data, &dlen), PX_H1_END);
    px_http1_free(p);
}

static px_http_error_t parse_err(int is_request, const px_http1_limits_t *lim, const char *in, size_t len,
                                 size_t step, h1_trace_t *t)
{
    h1_parse_all(is_request, lim, in, len, step, 0, t);
    return t->error ? t->err : (px_http_error_t)-1;
}

static void test_limit_head_bytes(void **state)
{
    static const char in[] = "GET /path HTTP/1.1\r\nHost: h\r\nX-Pad: 0123456789\r\n\r\n";
    px_http1_limits_t lim = { sizeof in - 1, 64, 0 };
    h1_trace_t t;
    size_t step;
    for (step = 0; step < 4; step++) {
        lim.max_head_bytes = sizeof in - 1;          /* exactly at the limit */
        h1_parse_all(1, &lim, S(in), step, 0, &t);
        assert_false(t.error);
        assert_int_equal(t.heads, 1);
        lim.max_head_bytes = sizeof in - 2;          /* one byte over */
        assert_int_equal(parse_err(1, &lim, S(in), step, &t), PX_HERR_HEADERS_TOO_LARGE);
        assert_int_equal(t.heads, 0);
    }
    /* body bytes right behind the head do not count */
    lim.max_head_bytes = sizeof in - 1;
    h1_parse_all(1, &lim, S("GET /path HTTP/1.1\r\nHost: h\r\nX-Pad: 0123456789\r\n\r\nGET /path HTTP/1.1\r\n"
                            "Host: h\r\nX-Pad: 0123456789\r\n\r\n"), 0, 0, &t);
    assert_false(t.error);
    assert_int_equal(t.heads, 2);
    /* padding that no callback sees (OWS) still counts */
    lim.max_head_bytes = 64;
    assert_int_equal(parse_err(1, &lim, S("GET / HTTP/1.1\r\nHost: h\r\nX:                                   "
                                          "                                                           "), 0, &t),
                     PX_HERR_HEADERS_TOO_LARGE);
    /* responses: the upstream is at fault */
    lim.max_head_bytes = 20;
    assert_int_equal(parse_err(0, &lim, S("HTTP/1.1 200 OK\r\nServer: something-long\r\n\r\n"), 0, &t),
                     PX_HERR_UPSTREAM_BAD);
}

static void test_limit_uri(void **state)
{
    px_http1_limits_t lim = { 64, 64, 0 };
    char target[128];
    char in[256];
    h1_trace_t t;
    int n;
    memset(target, 'a', sizeof target);
    target[0] = '/';
    /* the target alone is longer than the head limit: 414 */
    n = snprintf(in, sizeof in, "GET %.*s HTTP/1.1\r\nHost: h\r\n\r\n", 65, target);
    assert_int_equal(parse_err(1, &lim, in, (size_t)n, 0, &t), PX_HERR_URI_TOO_LONG);
    assert_int_equal(parse_err(1, &lim, in, (size_t)n, 1, &t), PX_HERR_URI_TOO_LONG);
    /* exactly at the limit on its own, but the head is over: 431 */
    n = snprintf(in, sizeof in, "GET %.*s HTTP/1.1\r\nHost: h\r\n\r\n", 64, target);
    assert_int_equal(parse_err(1, &lim, in, (size_t)n, 0, &t), PX_HERR_HEADERS_TOO_LARGE);
    assert_int_equal(parse_err(1, &lim, in, (size_t)n, 1, &t), PX_HERR_HEADERS_TOO_LARGE);
    /* a target that fits, followed by headers that do not: 431 */
    n = snprintf(in, sizeof in, "GET %.*s HTTP/1.1\r\nHost: h\r\nX-Pad: 012345678901234567890\r\n\r\n", 30, target);
    assert_int_equal(parse_err(1, &lim, in, (size_t)n, 0, &t), PX_HERR_HEADERS_TOO_LARGE);
}

/* A response parser taken up again (px_http1_reuse) after a response cut
 * in its body, a failed one and a long head: it reads the next response
 * as a new parser would, under the new limits. */
static void test_reuse(void **state)
{
    static const px_http1_limits_t big = { 65536, 64, 0 }, small = { 8192, 3, 0 };
    h1_trace_t t;
    px_http1_t *p = px_http1_new(0, &big);
    char head[20000];
    int n;

    /* cut mid-body */
    h1_run(p, S("HTTP/1.1 200 OK\r\nContent-Length: 10\r\nX-Old: 1\r\n\r\nabc"), 0, 0, &t);
    assert_int_equal(t.heads, 1);
    assert_false(px_http1_idle(p));
    px_http1_reuse(p, &big, 4096);
    assert_true(px_http1_idle(p));
    h1_run(p, S("HTTP/1.1 204 No Content\r\nX-New: 2\r\n\r\n"), 0, 0, &t);
    assert_false(t.error);
    assert_string_equal(t.log, "<204 No Content 1.1 ka=1 N0 [X-New: 2]>|");
    assert_null(px_http_head_get(px_http1_head(p), "x-old"));
    /* failed */
    h1_run(p, S("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"), 0, 0, &t);
    assert_true(t.error);
    /* a head over keep bytes: its buffers go, the next head is read whole */
    n = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nX-Big: %015000d\r\nContent-Length: 0\r\n\r\n", 7);
    px_http1_reuse(p, &big, 4096);
    h1_run(p, head, (size_t)n, 0, 0, &t);
    assert_false(t.error);
    assert_int_equal(t.heads, 1);
    /* the new limits hold */
    px_http1_reuse(p, &small, 4096);
    h1_run(p, S("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n"), 0, 0, &t);
    assert_true(t.error);
    px_http1_reuse(p, &small, 4096);
    h1_run(p, S("HTTP/1.1 200 OK\r\nA: 1\r\nContent-Length: 0\r\n\r\n"), 0, 0, &t);
    assert_false(t.error);
    assert_string_equal(t.log, "<200 OK 1.1 ka=1 L0 [A: 1] [Content-Length: 0]>|");
    px_http1_free(p);
}

static void test_limit_header_count(void **state)
{
    px_http1_limits_t lim = { 8192, 3, 0 };
    h1_trace_t t;
    h1_parse_all(1, &lim, S("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n"), 0, 0, &t);
    assert_false(t.error);
    assert_int_equal(parse_err(1, &lim, S("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"), 0, &t),
                     PX_HERR_HEADERS_TOO_LARGE);
    assert_int_equal(t.heads, 0);
    /* trailers are bounded too */
    assert_int_equal(parse_err(1, &lim, S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                                          "0\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n"), 0, &t),
                     PX_HERR_HEADERS_TOO_LARGE);
}

static void test_limit_body(void **state)
{
    px_http1_limits_t lim = { 8192, 64, 10 };
    h1_trace_t t;
    h1_parse_all(1, &lim, S("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789"), 0, 0, &t);
    assert_false(t.error);
    /* declared: refused before the head is handed out */
    assert_int_equal(parse_err(1, &lim, S("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n"), 0, &t),
                     PX_HERR_BODY_TOO_LARGE);
    assert_int_equal(t.heads, 0);
    /* streamed: exactly at the limit is fine */
    h1_parse_all(1, &lim, S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n"), 1, 0, &t);
    assert_false(t.error);
    assert_int_equal(t.ends, 1);
    /* streamed: refused when the chunk that crosses it is announced */
    assert_int_equal(parse_err(1, &lim, S("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                                          "5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n"), 0, &t),
                     PX_HERR_BODY_TOO_LARGE);
    assert_string_equal(t.log, "<POST / host=h 1.1 ka=1 exp=0 C0 [Host: h] [Transfer-Encoding: chunked]>hello#body_too_large");
    /* an EOF-delimited response body is bounded as well */
    assert_int_equal(parse_err(0, &lim, S("HTTP/1.1 200 OK\r\n\r\n0123456789x"), 4, &t), PX_HERR_UPSTREAM_BAD);
}

static void test_defaults_without_limits(void **state)
{
    h1_trace_t t;
    h1_parse_all(1, NULL, S("GET / HTTP/1.1\r\nHost: h\r\n\r\n"), 0, 0, &t);
    assert_string_equal(t.log, "<GET / host=h 1.1 ka=1 exp=0 N0 [Host: h]>|");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get),
        cmocka_unit_test(test_events_and_consumed),
        cmocka_unit_test(test_post_byte_by_byte),
        cmocka_unit_test(test_chunked_with_extensions),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_head_survives_next_partial_head),
        cmocka_unit_test(test_split_everywhere),
        cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_expect_continue),
        cmocka_unit_test(test_absolute_form),
        cmocka_unit_test(test_upgrade_is_not_tunnelled),
        cmocka_unit_test(test_data_after_close),
        cmocka_unit_test(test_head_response),
        cmocka_unit_test(test_interim_then_final),
        cmocka_unit_test(test_204_304),
        cmocka_unit_test(test_eof_response),
        cmocka_unit_test(test_finish_states),
        cmocka_unit_test(test_limit_head_bytes),
        cmocka_unit_test(test_limit_uri),
        cmocka_unit_test(test_limit_header_count),
        cmocka_unit_test(test_reuse),
        cmocka_unit_test(test_limit_body),
        cmocka_unit_test(test_defaults_without_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
