/* HTTP/1 request side: client bytes in pieces through px_http1_t; every
 * complete head is rendered for the upstream (px_http1_write_request_head),
 * and the rendered head must parse back cleanly to the same method,
 * target, Host and framing: what we forward must mean to the upstream what
 * we understood (request smuggling). With trailers kept, each message's
 * end is rendered as the upstream gets it (px_http1_write_last_chunk
 * after a chunked head) and must parse back to one message ending exactly
 * there, with exactly the fields px_http1_trailer_ok lets through.
 *
 * Flags (byte 0): 0x01 trust X-Forwarded-*, 0x02 send an X-Request-Id,
 * 0x40 keep trailers, 0x80 a body limit of 4096 bytes. */
#include <stdint.h>
#include <stdlib.h>

#include "h1_feed.h"

static int no_head(unsigned flags, unsigned msg) { return 0; }

static void check(const px_http_head_t *h, unsigned flags, int is_head_req, int interim)
{
    px_fwd_opts_t o = h1_fwd_opts(flags);
    const px_http_head_t *r;
    px_http1_t *q;
    px_buf_t out;
    int rc;

    px_buf_init(&out, 0);
    if ((rc = px_http1_write_request_head(&out, h, &o)) != 0) {
        fprintf(stderr, "h1 fuzz: write_request_head failed (%d) on a parsed head\n", rc);
        abort();
    }
    if (!h->host_len) {
        /* No authority (HTTP/1.0 without Host): the writer sends the empty
         * Host RFC 9112 3.2 asks for, which our own parser refuses from
         * clients (test_http1_smuggling "empty Host"). Re-parse the rest of
         * the head behind a placeholder host. */
        static const char empty_host[] = " HTTP/1.1\r\nHost: \r\n";
        const char *b = px_buf_ptr(&out), *at = memmem(b, px_buf_size(&out), empty_host,
                                                          sizeof empty_host - 1);
        px_buf_t fixed;
        if (!at)
            h1_die("no empty Host for a head without one", b, px_buf_size(&out));
        at += sizeof empty_host - 3;
        px_buf_init(&fixed, 0);
        if (px_buf_append(&fixed, b, (size_t)(at - b)) || px_buf_append(&fixed, "h.invalid", 9) ||
            px_buf_append(&fixed, at, px_buf_size(&out) - (size_t)(at - b)))
            abort();
        px_buf_free(&out);
        out = fixed;
    }
    q = h1_reparse(1, 0, px_buf_ptr(&out), px_buf_size(&out), &r);
    if (!h1_same(h->method, h->method_len, r->method, r->method_len))
        h1_die("method changed", px_buf_ptr(&out), px_buf_size(&out));
    if (!h1_same(h->target, h->target_len, r->target, r->target_len))
        h1_die("target changed", px_buf_ptr(&out), px_buf_size(&out));
    if (h->host_len && !h1_same(h->host, h->host_len, r->host, r->host_len))
        h1_die("host changed", px_buf_ptr(&out), px_buf_size(&out));
    if (r->body != h->body || r->content_length != h->content_length)
        h1_die("framing changed", px_buf_ptr(&out), px_buf_size(&out));
    if (r->http_minor != 1 || (h->http_minor == 1 && r->expect_continue != h->expect_continue))
        h1_die("version or Expect changed", px_buf_ptr(&out), px_buf_size(&out));
    if (!r->keep_alive)
        h1_die("the upstream connection is not kept alive", px_buf_ptr(&out), px_buf_size(&out));
    px_http1_free(q);
    px_buf_free(&out);
}

/* The request's last chunk and trailers as the exchange sends them. */
static void check_end(px_http1_t *p, unsigned flags)
{
    static const char head[] = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
    const px_http1_limits_t lim = { 1 << 20, 4096, 0 };
    const px_header_t *t, *r;
    int n, k, nr, dropped, ok = 0;
    size_t used = 0, dlen;
    const char *d;
    px_http1_t *q;
    px_buf_t out;

    if (!(flags & 0x40))
        return;
    t = px_http1_trailers(p, &n);
    for (int i = 0; i < n; i++)
        ok += px_http1_trailer_ok(t[i].name, t[i].name_len, t[i].value, t[i].value_len, 1);
    px_buf_init(&out, 0);
    if (px_buf_append(&out, head, sizeof head - 1) || px_http1_write_last_chunk(&out, t, n, 1, &dropped))
        abort();
    if (dropped != n - ok)
        h1_die("trailers dropped: a miscount", px_buf_ptr(&out), px_buf_size(&out));
    if (!(q = px_http1_new(1, &lim)))
        abort();
    px_http1_keep_trailers(q, 1);
    k = 0;
    for (;;) {
        px_h1_event_t ev = px_http1_parse(q, px_buf_ptr(&out) + k, px_buf_size(&out) - (size_t)k, &used,
                                          &d, &dlen);
        k += (int)used;
        if (ev == PX_H1_HEAD)
            continue;
        if (ev != PX_H1_END)
            h1_die("rendered trailers do not parse back to one message's end", px_buf_ptr(&out),
                   px_buf_size(&out));
        break;
    }
    if ((size_t)k != px_buf_size(&out))
        h1_die("bytes after the rendered trailers' end", px_buf_ptr(&out), px_buf_size(&out));
    r = px_http1_trailers(q, &nr);
    if (nr != (ok < PX_H1_MAX_TRAILERS ? ok : PX_H1_MAX_TRAILERS))
        h1_die("rendered trailers: another count", px_buf_ptr(&out), px_buf_size(&out));
    for (int i = 0, j = 0; i < n && j < nr; i++) {
        if (!px_http1_trailer_ok(t[i].name, t[i].name_len, t[i].value, t[i].value_len, 1))
            continue;
        if (!h1_same(t[i].name, t[i].name_len, r[j].name, r[j].name_len) ||
            !h1_same(t[i].value, t[i].value_len, r[j].value, r[j].value_len))
            h1_die("rendered trailers: a field changed", px_buf_ptr(&out), px_buf_size(&out));
        j++;
    }
    px_http1_free(q);
    px_buf_free(&out);
}

H1_FUZZER({ 1, no_head, check, check_end })
