/* HTTP/1 response side: upstream bytes in pieces through px_http1_t; every
 * complete head is rendered for the client (px_http1_write_response_head)
 * and must parse back to the same status and reason (the usual one for the
 * status where the model server's has a control byte) and to the framing
 * the writer promises: Content-Length kept; chunked or close-delimited
 * re-chunked for an HTTP/1.1 client, close-delimited for HTTP/1.0; no
 * body for HEAD, 1xx, 204, 304.
 *
 * Flags (byte 0): 0x01 the client speaks HTTP/1.1, 0x02 keep the client
 * connection alive, 0x04 the first request was HEAD, 0x08 every second
 * one was, 0x40 keep trailers, 0x80 a body limit of 4096 bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "h1_feed.h"

static int head_request(unsigned flags, unsigned msg)
{
    return msg == 0 ? !!(flags & 4) : (flags & 8) && msg % 2;
}

static void check(const px_http_head_t *h, unsigned flags, int is_head_req, int interim)
{
    static const px_header_t extra[] = { { "X-Extra", 7, "1", 1 } };
    int minor = flags & 1, keep = !!(flags & 2), chunked = -1, rc, want_ka;
    px_body_kind_t want = h->body;
    const px_http_head_t *r;
    px_http1_t *q;
    px_buf_t out;
    /* the reason as sent, or the usual one when it is outside RFC 9110's
     * grammar (px_http1_reason_ok, checked byte by byte in test_http1_rewrite) */
    const char *reason = px_http1_reason_ok(h->reason, h->reason_len) ? h->reason
                                                                      : px_http_status_phrase(h->status);
    size_t reason_len = reason == h->reason ? h->reason_len : strlen(reason);

    px_buf_init(&out, 0);
    if ((rc = px_http1_write_response_head(&out, h, minor, keep, extra, 1, &chunked)) != 0) {
        fprintf(stderr, "h1 fuzz: write_response_head failed (%d) on a parsed head\n", rc);
        abort();
    }
    if (interim)
        want = PX_BODY_NONE;
    else if (h->body == PX_BODY_CHUNKED || h->body == PX_BODY_EOF)
        want = minor ? PX_BODY_CHUNKED : PX_BODY_EOF;
    want_ka = keep && want != PX_BODY_EOF;
    if (chunked != (!interim && want == PX_BODY_CHUNKED))
        h1_die("chunked_out disagrees with the framing", px_buf_ptr(&out), px_buf_size(&out));

    q = h1_reparse(0, is_head_req, px_buf_ptr(&out), px_buf_size(&out), &r);
    if (r->status != h->status || !h1_same(reason, reason_len, r->reason, r->reason_len))
        h1_die("status line changed", px_buf_ptr(&out), px_buf_size(&out));
    if (px_http1_is_interim(q) != interim)
        h1_die("interim changed", px_buf_ptr(&out), px_buf_size(&out));
    if (r->body != want || (want == PX_BODY_LENGTH && r->content_length != h->content_length))
        h1_die("framing changed", px_buf_ptr(&out), px_buf_size(&out));
    if (!interim && r->keep_alive != want_ka)
        h1_die("keep-alive changed", px_buf_ptr(&out), px_buf_size(&out));
    px_http1_free(q);
    px_buf_free(&out);
}

H1_FUZZER({ 0, head_request, check, NULL })
