/* px_http1 head rewriting: hop-by-hop, X-Forwarded-*, framing, round trips. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "h1_trace.h"

#define S(lit) lit, sizeof(lit) - 1

/* Parses one head from in and keeps the parser (the head points into it). */
static px_http1_t *head_of(int is_request, const char *in)
{
    px_http1_t *p = px_http1_new(is_request, NULL);
    size_t used, dlen;
    const char *data;
    if (px_http1_parse(p, in, strlen(in), &used, &data, &dlen) != PX_H1_HEAD)
        fail_msg("no head: %s", in);
    return p;
}

/* The text written for a request head, as a C string. */
static char *req_out(const char *in, const px_fwd_opts_t *o)
{
    static char s[4096];
    px_http1_t *p = head_of(1, in);
    px_buf_t b;
    px_buf_init(&b, 0);
    assert_int_equal(px_http1_write_request_head(&b, px_http1_head(p), o), 0);
    snprintf(s, sizeof s, "%.*s", (int)px_buf_size(&b), px_buf_ptr(&b));
    px_buf_free(&b);
    px_http1_free(p);
    return s;
}

static char *resp_out(const char *in, int client_minor, int keep_alive, const px_header_t *extra, int n, int *chunked)
{
    static char s[4096];
    px_http1_t *p = head_of(0, in);
    px_buf_t b;
    px_buf_init(&b, 0);
    *chunked = -1;
    assert_int_equal(px_http1_write_response_head(&b, px_http1_head(p), client_minor, keep_alive, extra, n, chunked), 0);
    snprintf(s, sizeof s, "%.*s", (int)px_buf_size(&b), px_buf_ptr(&b));
    px_buf_free(&b);
    px_http1_free(p);
    return s;
}

static const px_fwd_opts_t opts_untrusted = { "10.0.0.1", "https", 0, "rid-1", NULL, 0, NULL, 0 };
static const px_fwd_opts_t opts_trusted = { "10.0.0.1", "https", 1, "rid-1", NULL, 0, NULL, 0 };

static void test_hop_by_hop(void **state)
{
    assert_string_equal(
        req_out("GET /p HTTP/1.1\r\nHost: h.example\r\nConnection: keep-alive, X-Secret,  x-other \r\n"
                "Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X-T\r\n"
                "X-Secret: 1\r\nUpgrade: websocket\r\nAccept: */*\r\nX-Other: 2\r\nX-Secret-Not: 3\r\n\r\n",
                &opts_untrusted),
        "GET /p HTTP/1.1\r\nHost: h.example\r\nAccept: */*\r\nX-Secret-Not: 3\r\n"
        "X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: h.example\r\n"
        "X-Request-Id: rid-1\r\n\r\n");
}

/* Signature fields are not forwarded on verifying routes, and a client's
 * own X-Verified-Keyid never is: only the proxy's, added as an extra. */
static void test_drop_list(void **state)
{
    static const char *const drop[] = { "x-signature", "x-verified-keyid" };
    static const px_header_t kid[] = { { "X-Verified-Keyid", 16, "client-a", 8 } };
    px_fwd_opts_t o = { "10.0.0.1", "https", 0, "rid-1", kid, 1, drop, 2 };
    (void)state;
    assert_string_equal(
        req_out("GET /p HTTP/1.1\r\nHost: h\r\nX-Signature: sig1=(...)\r\nX-Verified-Keyid: admin\r\n"
                "Content-Digest: sha-256=:x:\r\nX-SIGNATURE-Other: 1\r\n\r\n", &o),
        "GET /p HTTP/1.1\r\nHost: h\r\nContent-Digest: sha-256=:x:\r\nX-SIGNATURE-Other: 1\r\n"
        "X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: h\r\n"
        "X-Request-Id: rid-1\r\nX-Verified-Keyid: client-a\r\n\r\n");
}

/* More Connection options than is_hop gathers up front, over two headers. */
static void test_hop_many_connection_options(void **state)
{
    int chunked;
    (void)state;
    assert_string_equal(
        req_out("GET /p HTTP/1.1\r\nHost: h\r\nA1: 1\r\nConnection: a1, a2,, a3, a4, a5, a6\r\nA9: 9\r\n"
                "A2: 2\r\nX-Keep: k\r\nconnection: A7,a8 , a9,a10\r\nA10: 10\r\nA8: 8\r\nA11: 11\r\n\r\n",
                &opts_untrusted),
        "GET /p HTTP/1.1\r\nHost: h\r\nX-Keep: k\r\nA11: 11\r\nX-Forwarded-For: 10.0.0.1\r\n"
        "X-Forwarded-Proto: https\r\nX-Forwarded-Host: h\r\nX-Request-Id: rid-1\r\n\r\n");
    assert_string_equal(
        resp_out("HTTP/1.1 200 OK\r\nConnection: a1, a2, a3, a4, a5, a6, a7, a8, a9\r\nA9: 9\r\n"
                 "A1: 1\r\nX-Keep: k\r\nContent-Length: 0\r\n\r\n", 1, 1, NULL, 0, &chunked),
        "HTTP/1.1 200 OK\r\nX-Keep: k\r\nContent-Length: 0\r\n\r\n");
}

static void test_forwarded_untrusted(void **state)
{
    assert_string_equal(
        req_out("GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Proto: http\r\n"
                "X-Forwarded-Host: evil\r\nX-Forwarded-Port: 1\r\nForwarded: for=6.6.6.6\r\n"
                "X-Request-Id: client-id\r\nX-Keep: y\r\n\r\n",
                &opts_untrusted),
        "GET / HTTP/1.1\r\nHost: h\r\nX-Keep: y\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: https\r\n"
        "X-Forwarded-Host: h\r\nX-Request-Id: rid-1\r\n\r\n");
}

/* Every name length the rewriters classify, in any case, and near misses
 * that must be forwarded as they are. */
static void test_name_classes(void **state)
{
    static const char in[] =
        "GET / HTTP/1.1\r\nHOST: h\r\nTf: 1\r\nte: trailers\r\nHosts: 1\r\nUPGRADE: x\r\nTrailers: 1\r\n"
        "FORWARDED: for=1\r\nForwardex: 1\r\nKEEP-ALIVE: 5\r\nKeep-Alivx: 1\r\nConnectiox: 1\r\n"
        "X-Forwarded-: 1\r\nX-REQUEST-ID: c\r\nX-Request-Ix: 1\r\nX-Forwarded-X: 1\r\n"
        "x-forwarded-ab: 1\r\nContent-Lengtx: 1\r\nX-FORWARDED-SSL: on\r\nx-forwarded-fox: 1\r\n"
        "PROXY-CONNECTION: x\r\nProxy-Connectiox: 1\r\nX-Forwarded-Hosx: a\r\nTRANSFER-ENCODINX: 1\r\n"
        "X-FORWARDED-PROTO: http\r\nX-Forwarded-Protx: 1\r\nX-FORWARDED-FOR: 9.9.9.9\r\n\r\n";
    (void)state;
    assert_string_equal(req_out(in, &opts_untrusted),
        "GET / HTTP/1.1\r\nHost: h\r\nTf: 1\r\nHosts: 1\r\nTrailers: 1\r\nForwardex: 1\r\nKeep-Alivx: 1\r\n"
        "Connectiox: 1\r\nX-Forwarded-: 1\r\nX-Request-Ix: 1\r\nContent-Lengtx: 1\r\nProxy-Connectiox: 1\r\n"
        "TRANSFER-ENCODINX: 1\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: https\r\n"
        "X-Forwarded-Host: h\r\nX-Request-Id: rid-1\r\n\r\n");
    assert_string_equal(req_out(in, &opts_trusted),
        "GET / HTTP/1.1\r\nHost: h\r\nTf: 1\r\nHosts: 1\r\nTrailers: 1\r\nFORWARDED: for=1\r\nForwardex: 1\r\n"
        "Keep-Alivx: 1\r\nConnectiox: 1\r\nX-Forwarded-: 1\r\nX-REQUEST-ID: c\r\nX-Request-Ix: 1\r\n"
        "X-Forwarded-X: 1\r\nx-forwarded-ab: 1\r\nContent-Lengtx: 1\r\nX-FORWARDED-SSL: on\r\n"
        "x-forwarded-fox: 1\r\nProxy-Connectiox: 1\r\nX-Forwarded-Hosx: a\r\nTRANSFER-ENCODINX: 1\r\n"
        "X-FORWARDED-PROTO: http\r\nX-Forwarded-Protx: 1\r\nX-Forwarded-For: 9.9.9.9, 10.0.0.1\r\n"
        "X-Forwarded-Host: h\r\n\r\n");
}

/* A header name byte is accepted exactly when it is an RFC 9110 tchar. */
static void test_name_bytes(void **state)
{
    px_http1_t *p = head_of(0, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    px_buf_t b;
    int c, chunked;
    (void)state;
    px_buf_init(&b, 0);
    for (c = 0; c < 256; c++) {
        char name[3] = { 'X', (char)c, 'y' };
        px_header_t extra = { name, 3, "v", 1 };
        int tchar = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c && strchr("!#$%&'*+-.^_`|~", c));
        int rc = px_http1_write_response_head(&b, px_http1_head(p), 1, 1, &extra, 1, &chunked);
        if (tchar ? rc != 0 : rc == 0)
            fail_msg("name byte 0x%02x: rc %d", c, rc);
        /* the table itself: the byte lowercased for a tchar, else 0 */
        if (px_tchar[c] != (tchar ? (c >= 'A' && c <= 'Z' ? c + 32 : c) : 0))
            fail_msg("px_tchar[0x%02x] = 0x%02x", c, px_tchar[c]);
        px_buf_reset(&b);
    }
    px_buf_free(&b);
    px_http1_free(p);
}

/* A value is refused for a CR, LF or NUL at any position (values are
 * scanned eight bytes at a time), and for nothing else. */
static void test_value_bytes(void **state)
{
    static const unsigned char bad[] = { '\r', '\n', 0 }, fine[] = { '\t', 0x0b, 0x0c, 0x0e, 0x7f, 0x80, 0xff };
    px_http1_t *p = head_of(0, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    px_buf_t b;
    char v[24];
    size_t len, pos, k;
    int chunked;
    (void)state;
    px_buf_init(&b, 0);
    for (len = 1; len <= sizeof v; len++) {
        for (pos = 0; pos < len; pos++) {
            for (k = 0; k < sizeof bad + sizeof fine; k++) {
                int is_bad = k < sizeof bad, rc;
                px_header_t extra = { "X-V", 3, v, len };
                memset(v, 'a', sizeof v);
                v[pos] = (char)(is_bad ? bad[k] : fine[k - sizeof bad]);
                rc = px_http1_write_response_head(&b, px_http1_head(p), 1, 1, &extra, 1, &chunked);
                if (is_bad ? rc == 0 : rc != 0)
                    fail_msg("len %zu, byte 0x%02x at %zu: rc %d", len, (unsigned char)v[pos], pos, rc);
                px_buf_reset(&b);
            }
        }
    }
    px_buf_free(&b);
    px_http1_free(p);
}

static void test_forwarded_trusted(void **state)
{
    /* incoming values kept (several X-Forwarded-For joined), ours appended */
    assert_string_equal(
        req_out("GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Proto: http\r\n"
                "X-Forwarded-Host: orig\r\nx-forwarded-for: 5.6.7.8, 9.9.9.9\r\nX-Request-Id: client-id\r\n\r\n",
                &opts_trusted),
        "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: orig\r\n"
        "X-Request-Id: client-id\r\nX-Forwarded-For: 1.2.3.4, 5.6.7.8, 9.9.9.9, 10.0.0.1\r\n\r\n");
    /* trusted but absent: ours are set */
    assert_string_equal(req_out("GET / HTTP/1.1\r\nHost: h\r\n\r\n", &opts_trusted),
                        "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: https\r\n"
                        "X-Forwarded-Host: h\r\nX-Request-Id: rid-1\r\n\r\n");
    /* no options at all: nothing is invented */
    assert_string_equal(req_out("GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n", NULL),
                        "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-Host: h\r\n\r\n");
}

static void test_request_framing(void **state)
{
    static const px_fwd_opts_t bare = { 0 };
    assert_string_equal(req_out("POST /u HTTP/1.1\r\nHost: h\r\ncontent-length: 0005\r\n\r\n", &bare),
                        "POST /u HTTP/1.1\r\nHost: h\r\nX-Forwarded-Host: h\r\nContent-Length: 5\r\n\r\n");
    assert_string_equal(req_out("POST /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\nHost: h\r\n\r\n", &bare),
                        "POST /u HTTP/1.1\r\nHost: h\r\nX-Forwarded-Host: h\r\nTransfer-Encoding: chunked\r\n\r\n");
    /* HTTP/1.0 in, HTTP/1.1 out; no Host: an empty one (RFC 9112 3.2) */
    assert_string_equal(req_out("POST /u HTTP/1.0\r\nContent-Length: 2\r\n\r\n", &bare),
                        "POST /u HTTP/1.1\r\nHost: \r\nContent-Length: 2\r\n\r\n");
    /* absolute-form: its authority is the Host sent */
    assert_string_equal(req_out("GET http://up.example:81/x?y HTTP/1.1\r\nHost: other\r\n\r\n", &bare),
                        "GET /x?y HTTP/1.1\r\nHost: up.example:81\r\nX-Forwarded-Host: up.example:81\r\n\r\n");
    /* Expect is end-to-end: kept */
    assert_string_equal(req_out("PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n", &bare),
                        "PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nX-Forwarded-Host: h\r\n"
                        "Content-Length: 1\r\n\r\n");
}

static void test_extra_and_injection(void **state)
{
    static const px_header_t extra[] = { { "X-Px", 4, "a b", 3 }, { "Signature", 9, "sig=:x:", 7 } };
    static const px_header_t bad_value[] = { { "X-Px", 4, "a\r\nX-Evil: 1", 13 } };
    static const px_header_t bad_name[] = { { "X Px", 4, "a", 1 } };
    static const px_header_t nul_value[] = { { "X-Px", 4, "a\0b", 3 } };
    px_fwd_opts_t o = { "10.0.0.1", NULL, 0, NULL, extra, 2, NULL, 0 };
    px_http1_t *p;
    px_buf_t b;

    assert_string_equal(req_out("GET / HTTP/1.1\r\nHost: h\r\n\r\n", &o),
                        "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Host: h\r\n"
                        "X-Px: a b\r\nSignature: sig=:x:\r\n\r\n");

    /* refusals leave the output exactly as it was */
    p = head_of(1, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    px_buf_init(&b, 0);
    assert_int_equal(px_buf_append(&b, "prev", 4), 0);
    o.extra = bad_value;
    o.extra_count = 1;
    assert_int_equal(px_http1_write_request_head(&b, px_http1_head(p), &o), PX_EINVAL);
    o.extra = bad_name;
    assert_int_equal(px_http1_write_request_head(&b, px_http1_head(p), &o), PX_EINVAL);
    o.extra = nul_value;
    assert_int_equal(px_http1_write_request_head(&b, px_http1_head(p), &o), PX_EINVAL);
    o.extra_count = 0;
    o.request_id = "id\r\nX-Evil: 1";
    assert_int_equal(px_http1_write_request_head(&b, px_http1_head(p), &o), PX_EINVAL);
    o.request_id = NULL;
    o.client_ip = "1.2.3.4\n";
    assert_int_equal(px_http1_write_request_head(&b, px_http1_head(p), &o), PX_EINVAL);
    assert_int_equal(px_buf_size(&b), 4);
    assert_memory_equal(px_buf_ptr(&b), "prev", 4);
    {
        int chunked = 7;
        assert_int_equal(px_http1_write_response_head(&b, px_http1_head(p), 1, 1, NULL, 0, &chunked), PX_EINVAL);
        assert_int_equal(chunked, 0);
    }
    /* a full buffer: an error, and nothing half-written */
    {
        px_buf_t small;
        px_buf_init(&small, 20);
        o.client_ip = "1.2.3.4";
        assert_int_equal(px_http1_write_request_head(&small, px_http1_head(p), &o), PX_ETOOBIG);
        assert_int_equal(px_buf_size(&small), 0);
        px_buf_free(&small);
    }
    px_buf_free(&b);
    px_http1_free(p);
}

static void test_response_heads(void **state)
{
    static const px_header_t extra[] = { { "X-Px-Upstream", 13, "m1", 2 } };
    int chunked;
    /* HTTP/1.1 client, Content-Length */
    assert_string_equal(resp_out("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: keep-alive, X-Int\r\n"
                                 "X-Int: 1\r\nKeep-Alive: timeout=3\r\nContent-Length: 5\r\n\r\n", 1, 1, extra, 1, &chunked),
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Px-Upstream: m1\r\nContent-Length: 5\r\n\r\n");
    assert_int_equal(chunked, 0);
    /* the proxy's own fields replace the upstream's of the same name, whatever the case */
    {
        static const px_header_t own[] = { { "X-Signature", 11, "sig1=()", 7 },
                                           { "Pqproxy-Model-Manifest", 22, "sha-256=:AA==:", 14 } };
        assert_string_equal(resp_out("HTTP/1.1 200 OK\r\nx-signature: forged\r\nX-A: 1\r\n"
                                     "PQPROXY-MODEL-MANIFEST: sha-256=:BB==:\r\nX-Signature-Not: 2\r\n"
                                     "Content-Length: 5\r\n\r\n", 1, 1, own, 2, &chunked),
                            "HTTP/1.1 200 OK\r\nX-A: 1\r\nX-Signature-Not: 2\r\nX-Signature: sig1=()\r\n"
                            "Pqproxy-Model-Manifest: sha-256=:AA==:\r\nContent-Length: 5\r\n\r\n");
    }
    /* not kept alive */
    assert_string_equal(resp_out("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 1, 0, NULL, 0, &chunked),
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    /* chunked upstream to an HTTP/1.1 client: re-chunked */
    assert_string_equal(resp_out("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n", 1, 1, NULL, 0,
                                 &chunked),
                        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_int_equal(chunked, 1);
    /* close-delimited upstream to an HTTP/1.1 client: chunked, so the client connection can stay */
    assert_string_equal(resp_out("HTTP/1.0 200 OK\r\nServer: s\r\n\r\n", 1, 1, NULL, 0, &chunked),
                        "HTTP/1.1 200 OK\r\nServer: s\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_int_equal(chunked, 1);
    /* to an HTTP/1.0 client: unframed, and the connection closes */
    assert_string_equal(resp_out("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 0, 1, NULL, 0, &chunked),
                        "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
    assert_int_equal(chunked, 0);
    assert_string_equal(resp_out("HTTP/1.1 200 OK\r\n\r\n", 0, 1, NULL, 0, &chunked),
                        "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
    assert_int_equal(chunked, 0);
    /* an HTTP/1.0 client kept alive is told so */
    assert_string_equal(resp_out("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", 0, 1, NULL, 0, &chunked),
                        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\n");
    /* 304 keeps the representation's length; 204 has none */
    assert_string_equal(resp_out("HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 10\r\n\r\n", 1, 1, NULL, 0,
                                 &chunked),
                        "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 10\r\n\r\n");
    assert_string_equal(resp_out("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", 1, 1, NULL, 0, &chunked),
                        "HTTP/1.1 204 No Content\r\n\r\n");
    /* interim: no framing, no Connection */
    assert_string_equal(resp_out("HTTP/1.1 100 Continue\r\n\r\n", 1, 0, NULL, 0, &chunked),
                        "HTTP/1.1 100 Continue\r\n\r\n");
    /* an empty reason stays empty */
    assert_string_equal(resp_out("HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", 1, 1, NULL, 0, &chunked),
                        "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n");
}

/* The status line written for in (len bytes) equals want (wlen bytes). */
static void status_line_is(const char *in, size_t len, const char *want, size_t wlen)
{
    px_http1_t *p = px_http1_new(0, NULL);
    size_t used, dlen;
    const char *data;
    int chunked;
    px_buf_t b;
    assert_int_equal(px_http1_parse(p, in, len, &used, &data, &dlen), PX_H1_HEAD);
    px_buf_init(&b, 0);
    assert_int_equal(px_http1_write_response_head(&b, px_http1_head(p), 1, 1, NULL, 0, &chunked), 0);
    assert_true(px_buf_size(&b) > wlen);
    assert_memory_equal(px_buf_ptr(&b), want, wlen);
    assert_int_equal(((const char *)px_buf_ptr(&b))[wlen], 'C');    /* Content-Length follows */
    px_buf_free(&b);
    px_http1_free(p);
}

/* A reason phrase outside RFC 9110's grammar (llhttp takes a NUL, a
 * vertical tab, DEL) is replaced by the usual one for the status, never
 * forwarded, and never refused either: a head that parsed can always be
 * written (fuzz-ci's http1_response found a writer refusing a NUL). Tabs
 * and obs-text pass as sent. */
static void test_reason_outside_grammar_replaced(void **state)
{
#define LINE(in, want) status_line_is(in "\r\nContent-Length: 0\r\n\r\n", sizeof(in "\r\nContent-Length: 0\r\n\r\n") - 1, \
                                      want "\r\n", sizeof(want "\r\n") - 1)
    (void)state;
    LINE("HTTP/1.1 200 O\x0bK\0!", "HTTP/1.1 200 OK");
    LINE("HTTP/1.1 404 gone\x7f", "HTTP/1.1 404 Not Found");
    LINE("HTTP/1.1 503 \x01", "HTTP/1.1 503 Service Unavailable");
    LINE("HTTP/1.1 599 bad\x1b[0m", "HTTP/1.1 599 ");        /* no usual phrase: none */
    LINE("HTTP/1.1 200 caf\xc3\xa9\tok ~", "HTTP/1.1 200 caf\xc3\xa9\tok ~");
    LINE("HTTP/1.1 404 Nope", "HTTP/1.1 404 Nope");
#undef LINE
    assert_true(px_http1_reason_ok("", 0));
    assert_true(px_http1_reason_ok("\t \x21\x7e\x80\xff", 6));
    for (int c = 0; c < 0x20; c++) {
        char b = (char)c;
        assert_int_equal(px_http1_reason_ok(&b, 1), c == '\t');
    }
    assert_false(px_http1_reason_ok("ok\x7f", 3));
}

static void test_head_response_keeps_length(void **state)
{
    px_http1_t *p = px_http1_new(0, NULL);
    size_t used, dlen;
    const char *data;
    int chunked;
    px_buf_t b;
    px_http1_expect_head_response(p, 1);
    assert_int_equal(px_http1_parse(p, S("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"), &used, &data, &dlen),
                     PX_H1_HEAD);
    px_buf_init(&b, 0);
    assert_int_equal(px_http1_write_response_head(&b, px_http1_head(p), 1, 1, NULL, 0, &chunked), 0);
    assert_int_equal(px_buf_size(&b), strlen("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"));
    assert_memory_equal(px_buf_ptr(&b), "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", px_buf_size(&b));
    assert_int_equal(chunked, 0);
    px_buf_free(&b);
    px_http1_free(p);
}

static void test_chunk_helpers(void **state)
{
    px_buf_t b;
    px_buf_init(&b, 0);
    assert_int_equal(px_http1_chunk_begin(&b, 255), 0);
    assert_int_equal(px_buf_append(&b, "x", 1), 0);
    assert_int_equal(px_http1_chunk_end(&b), 0);
    assert_int_equal(px_http1_chunk_begin(&b, 0x10000), 0);
    assert_int_equal(px_http1_chunk_last(&b), 0);
    assert_int_equal(px_buf_size(&b), strlen("ff\r\nx\r\n10000\r\n0\r\n\r\n"));
    assert_memory_equal(px_buf_ptr(&b), "ff\r\nx\r\n10000\r\n0\r\n\r\n", px_buf_size(&b));
    px_buf_free(&b);
}

/* What we write, px_http1 reads back as the head we meant. */
static void test_round_trip_request(void **state)
{
    static const char body[] = "hello, world";
    px_http1_t *p = head_of(1, "POST http://api.example/v1/infer?x=1 HTTP/1.0\r\nHost: ignored\r\n"
                               "Connection: keep-alive, X-Hop\r\nX-Hop: 1\r\nContent-Type: application/json\r\n"
                               "Content-Length: 12\r\n\r\n");
    px_fwd_opts_t o = { "192.0.2.7", "https", 0, "abc-123", NULL, 0, NULL, 0 };
    px_buf_t b;
    h1_trace_t t;
    px_buf_init(&b, 0);
    assert_int_equal(px_http1_write_request_head(&b, px_http1_head(p), &o), 0);
    assert_int_equal(px_buf_append(&b, body, sizeof body - 1), 0);
    h1_parse_all(1, NULL, px_buf_ptr(&b), px_buf_size(&b), 0, 0, &t);
    assert_string_equal(t.log, "<POST /v1/infer?x=1 host=api.example 1.1 ka=1 exp=0 L12 [Host: api.example]"
                               " [Content-Type: application/json] [X-Forwarded-For: 192.0.2.7]"
                               " [X-Forwarded-Proto: https] [X-Forwarded-Host: api.example]"
                               " [X-Request-Id: abc-123] [Content-Length: 12]>hello, world|");
    px_buf_free(&b);
    px_http1_free(p);
}

/* A chunked request, re-chunked with the helpers in other piece sizes. */
static void test_round_trip_chunked(void **state)
{
    static const char in[] = "PUT /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "3\r\nabc\r\n1;e=1\r\nd\r\n0\r\nT: x\r\n\r\n";
    px_http1_t *p = px_http1_new(1, NULL);
    px_buf_t b;
    size_t off = 0, used, dlen;
    const char *data;
    px_h1_event_t ev;
    h1_trace_t t;
    px_buf_init(&b, 0);
    while ((ev = px_http1_parse(p, in + off, sizeof in - 1 - off, &used, &data, &dlen)) != PX_H1_END) {
        off += used;
        if (ev == PX_H1_HEAD) {
            assert_int_equal(px_http1_write_request_head(&b, px_http1_head(p), NULL), 0);
        } else if (ev == PX_H1_BODY) {
            assert_int_equal(px_http1_chunk_begin(&b, dlen), 0);
            assert_int_equal(px_buf_append(&b, data, dlen), 0);
            assert_int_equal(px_http1_chunk_end(&b), 0);
        } else {
            fail_msg("event %d", ev);
        }
    }
    assert_int_equal(px_http1_chunk_last(&b), 0);
    h1_parse_all(1, NULL, px_buf_ptr(&b), px_buf_size(&b), 1, 0, &t);
    assert_string_equal(t.log, "<PUT /c host=h 1.1 ka=1 exp=0 C0 [Host: h] [X-Forwarded-Host: h]"
                               " [Transfer-Encoding: chunked]>abcd|");
    px_buf_free(&b);
    px_http1_free(p);
}

static void test_round_trip_response(void **state)
{
    static const px_header_t extra[] = { { "Strict-Transport-Security", 25, "max-age=63072000", 16 } };
    px_http1_t *p = head_of(0, "HTTP/1.1 201 Created\r\nConnection: Foo\r\nFoo: bar\r\nLocation: /r/1\r\n\r\n");
    px_buf_t b;
    int chunked;
    h1_trace_t t;
    px_buf_init(&b, 0);
    assert_int_equal(px_http1_write_response_head(&b, px_http1_head(p), 1, 0, extra, 1, &chunked), 0);
    assert_int_equal(chunked, 1);
    assert_int_equal(px_http1_chunk_begin(&b, 2), 0);
    assert_int_equal(px_buf_append(&b, "ok", 2), 0);
    assert_int_equal(px_http1_chunk_end(&b), 0);
    assert_int_equal(px_http1_chunk_last(&b), 0);
    h1_parse_all(0, NULL, px_buf_ptr(&b), px_buf_size(&b), 0, 0, &t);
    assert_string_equal(t.log, "<201 Created 1.1 ka=0 C0 [Location: /r/1] [Strict-Transport-Security: max-age=63072000]"
                               " [Transfer-Encoding: chunked] [Connection: close]>ok|");
    px_buf_free(&b);
    px_http1_free(p);
}

static void test_head_get(void **state)
{
    px_http1_t *p = head_of(1, "GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2\r\n\r\n");
    const px_header_t *h = px_http_head_get(px_http1_head(p), "X-a");
    assert_non_null(h);
    assert_int_equal(h->value_len, 1);
    assert_memory_equal(h->value, "1", 1);
    assert_null(px_http_head_get(px_http1_head(p), "X-B"));
    assert_null(px_http_head_get(px_http1_head(p), ""));
    px_http1_free(p);
}

/* Which trailer fields may be forwarded (RFC 9110 6.5.1), in what case. */
static void test_trailer_policy(void **state)
{
    static const char *const never[] = {
        "Content-Length", "transfer-encoding", "Host", "TE", "Trailer", "Connection", "Keep-Alive",
        "Upgrade", "Proxy-Connection", "X-Forwarded-For", "x-forwarded-proto", "Forwarded",
        "X-Request-Id", "X-Forwarded-Client-Cert", "Pqproxy-Model-Manifest", "Authorization",
        "Proxy-Authorization", "Cookie", "Set-Cookie", "Cache-Control", "Expect", "Max-Forwards",
        "Pragma", "Range", "If-Match", "if-none-match", "If-Modified-Since", "Content-Type",
        "Content-Encoding", "Content-Range", "Age", "Date", "Expires", "Location", "Retry-After",
        "Vary", "WWW-Authenticate", "Proxy-Authenticate",
    };
    static const char *const in_request_only[] = { "Signature", "signature-input", "X-Signature",
                                                   "Content-Digest" };
    (void)state;
    for (size_t i = 0; i < sizeof never / sizeof *never; i++) {
        assert_false(px_http1_trailer_ok(never[i], strlen(never[i]), "v", 1, 1));
        assert_false(px_http1_trailer_ok(never[i], strlen(never[i]), "v", 1, 0));
    }
    for (size_t i = 0; i < sizeof in_request_only / sizeof *in_request_only; i++) {
        const char *n = in_request_only[i];
        assert_false(px_http1_trailer_ok(n, strlen(n), "v", 1, 1));
        assert_true(px_http1_trailer_ok(n, strlen(n), "v", 1, 0));
    }
    assert_true(px_http1_trailer_ok(S("X-Checksum"), S("crc32=1"), 1));
    assert_true(px_http1_trailer_ok(S("grpc-status"), S("0"), 0));
    assert_true(px_http1_trailer_ok(S("Server-Timing"), S("db;dur=53"), 0));
    assert_true(px_http1_trailer_ok(S("x-if"), S(""), 1));          /* not If-* */
    assert_false(px_http1_trailer_ok(S("X Bad"), S("v"), 1));       /* not a token */
    assert_false(px_http1_trailer_ok("", 0, S("v"), 1));
    assert_false(px_http1_trailer_ok(S("X-A"), S("a\r\nHost: b"), 1));
    assert_false(px_http1_trailer_ok(S("X-A"), "a\0b", 3, 0));
}

static void test_request_trailers_written(void **state)
{
    const px_header_t t[] = { { S("X-Checksum"), S("abc") }, { S("Set-Cookie"), S("s=1") },
                              { S("x-b"), S("") }, { S("X-C"), S("a\nb") } };
    px_buf_t b;
    int dropped = -1;
    (void)state;
    px_buf_init(&b, 0);
    assert_int_equal(px_http1_write_last_chunk(&b, t, 4, 1, &dropped), 0);
    assert_int_equal(dropped, 2);
    assert_int_equal(px_buf_size(&b), strlen("0\r\nX-Checksum: abc\r\nx-b: \r\n\r\n"));
    assert_memory_equal(px_buf_ptr(&b), "0\r\nX-Checksum: abc\r\nx-b: \r\n\r\n", px_buf_size(&b));
    px_buf_reset(&b);
    assert_int_equal(px_http1_write_last_chunk(&b, t, 0, 1, &dropped), 0);
    assert_int_equal(dropped, 0);
    assert_int_equal(px_buf_size(&b), 5);
    assert_memory_equal(px_buf_ptr(&b), "0\r\n\r\n", 5);
    /* a bounded buffer too small: nothing half-written, also behind bytes
     * partly consumed (the upstream's queue) */
    px_buf_free(&b);
    px_buf_init(&b, 16);
    assert_int_equal(px_buf_append(&b, "0123456789", 10), 0);
    px_buf_consume(&b, 4);
    assert_int_not_equal(px_http1_write_last_chunk(&b, t, 1, 1, &dropped), 0);
    assert_int_equal(px_buf_size(&b), 6);
    assert_memory_equal(px_buf_ptr(&b), "456789", 6);
    px_buf_free(&b);
    /* towards a client (request 0): the signature fields pass */
    {
        const px_header_t sig[] = { { S("Content-Digest"), S("sha-256=:x:") }, { S("Set-Cookie"), S("a") } };
        px_buf_init(&b, 0);
        assert_int_equal(px_http1_write_last_chunk(&b, sig, 2, 0, &dropped), 0);
        assert_int_equal(dropped, 1);
        assert_int_equal(px_buf_size(&b), strlen("0\r\nContent-Digest: sha-256=:x:\r\n\r\n"));
        px_buf_free(&b);
    }
}

/* px_has_line_break against a byte loop: every length to 40, every
 * position, each byte value that matters (the three it refuses, the tab
 * and other bytes below 0x0E that its word test also flags, bytes around
 * them and high ones), on a buffer read at an odd offset. */
static int slow_break(const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == '\r' || v[i] == '\n' || v[i] == '\0')
            return 1;
    return 0;
}

static void test_line_break_scan(void **state)
{
    static const unsigned char probe[] = { 0, '\t', '\n', 0x0B, 0x0C, '\r', 0x0D + 1, 0x01, 0x1F, ' ', 0x7F, 0x80, 0xFF };
    char buf[64];
    (void)state;
    for (size_t n = 0; n <= 40; n++) {
        char *v = buf + 3;
        memset(buf, 'a', sizeof buf);
        buf[2] = '\r';                                      /* just before: never read */
        buf[3 + n] = '\n';                                  /* just after: never read */
        assert_int_equal(px_has_line_break(v, n), 0);
        for (size_t i = 0; i < n; i++)
            for (size_t k = 0; k < sizeof probe; k++) {
                v[i] = (char)probe[k];
                assert_int_equal(px_has_line_break(v, n), slow_break(v, n));
                if (i + 1 < n) {                             /* a tab before it, too */
                    v[i + 1] = '\t';
                    assert_int_equal(px_has_line_break(v, n), slow_break(v, n));
                    v[i + 1] = 'a';
                }
                v[i] = 'a';
            }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hop_by_hop),
        cmocka_unit_test(test_drop_list),
        cmocka_unit_test(test_hop_many_connection_options),
        cmocka_unit_test(test_forwarded_untrusted),
        cmocka_unit_test(test_forwarded_trusted),
        cmocka_unit_test(test_name_classes),
        cmocka_unit_test(test_name_bytes),
        cmocka_unit_test(test_value_bytes),
        cmocka_unit_test(test_request_framing),
        cmocka_unit_test(test_extra_and_injection),
        cmocka_unit_test(test_response_heads),
        cmocka_unit_test(test_head_response_keeps_length),
        cmocka_unit_test(test_chunk_helpers),
        cmocka_unit_test(test_round_trip_request),
        cmocka_unit_test(test_round_trip_chunked),
        cmocka_unit_test(test_round_trip_response),
        cmocka_unit_test(test_head_get),
        cmocka_unit_test(test_trailer_policy),
        cmocka_unit_test(test_request_trailers_written),
        cmocka_unit_test(test_line_break_scan),
        cmocka_unit_test(test_reason_outside_grammar_replaced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
