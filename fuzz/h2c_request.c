/* HTTP/1.1 request head -> h2c upstream request (px_h2cx_request): client
 * bytes in pieces through px_http1_t (h1_feed.h); each complete head is
 * translated for the upstream as the exchange does, with the forwarding
 * rules of px_http1_request_fields. What goes to the model server must be a
 * well-formed HTTP/2 request meaning what the client asked:
 * - pseudo-headers first, each once: :method, :scheme "http", :authority
 *   (the Host), :path (the target), equal to the head's; a head without
 *   Host is refused;
 * - field names lowercase tokens, no CR, LF or NUL in names or values
 *   (each NUL-terminated, as px_h2c_open copies them), none
 *   connection-specific, no Host, `te` only as "trailers" and only when the
 *   client's te named trailers; a content-length only for a LENGTH body,
 *   equal to it;
 * - the regular fields are those of the HTTP/1.1 rendering of the same head
 *   (px_http1_write_request_head, parsed back), in order, names lowercased,
 *   without Host and Transfer-Encoding: the two upstream protocols get the
 *   same forwarding policy;
 * - an nghttp2 server session receives the request whole (its own
 *   validation: RFC 9113 field and pseudo-header rules) with the same
 *   fields, and does not reset the stream.
 *
 * Flags (byte 0): 0x01 trust X-Forwarded-*, 0x02 send an X-Request-Id,
 * 0x40 keep trailers, 0x80 a body limit of 4096 bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <strings.h>

#include <nghttp2/nghttp2.h>

#include "h1_feed.h"
#include "http/h2_fields.h"
#include "proxy/h2c_xlate.h"

static int no_head(unsigned flags, unsigned msg) { return 0; }

static void die(const char *what, const nghttp2_nv *nv, size_t n)
{
    fprintf(stderr, "h2c request fuzz: %s\n", what);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "  [%zu] %.*s: %.*s\n", i, (int)nv[i].namelen, (const char *)nv[i].name,
                (int)nv[i].valuelen, (const char *)nv[i].value);
    abort();
}

static int is(const nghttp2_nv *f, const char *name)
{
    size_t n = strlen(name);
    return f->namelen == n && !memcmp(f->name, name, n);
}

static int same(const nghttp2_nv *f, const char *v, size_t n)
{
    return h1_same((const char *)f->value, f->valuelen, v, n);
}

/* "trailers" among the client's te codings (the translation's own rule,
 * restated: an independent reading of the same fields). */
static int asked_trailers(const px_http_head_t *h)
{
    int found = 0;

    for (int i = 0; i < h->header_count && !found; i++) {
        const px_header_t *f = &h->headers[i];
        char *v;
        if (f->name_len != 2 || strncasecmp(f->name, "te", 2))
            continue;
        if (!(v = strndup(f->value, f->value_len)))     /* the whole value: "trailers" may come late */
            abort();
        for (char *save = NULL, *t = strtok_r(v, ",", &save); t && !found; t = strtok_r(NULL, ",", &save)) {
            while (*t == ' ' || *t == '\t')
                t++;
            size_t k = strlen(t);
            while (k && (t[k - 1] == ' ' || t[k - 1] == '\t'))
                k--;
            found = k == 8 && !strncasecmp(t, "trailers", 8);
        }
        free(v);
    }
    return found;
}

/* ---- an nghttp2 server receives the request -------------------------------- */

typedef struct {
    size_t ngot, used;
    int headers, reset, invalid;
    nghttp2_nv got[1200];
    char mem[64 * 1024];                 /* not cleared between inputs */
} rx_t;

static int rx_header(nghttp2_session *s, const nghttp2_frame *fr, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    rx_t *r = ud;
    if (r->ngot == sizeof r->got / sizeof *r->got || r->used + nlen + vlen > sizeof r->mem)
        abort();
    r->got[r->ngot].name = (uint8_t *)memcpy(r->mem + r->used, name, nlen);
    r->got[r->ngot].namelen = nlen;
    r->used += nlen;
    r->got[r->ngot].value = (uint8_t *)memcpy(r->mem + r->used, value, vlen);
    r->got[r->ngot].valuelen = vlen;
    r->used += vlen;
    r->ngot++;
    return 0;
}

static int rx_invalid(nghttp2_session *s, const nghttp2_frame *fr, const uint8_t *name, size_t nlen,
                      const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
    ((rx_t *)ud)->invalid = 1;
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
}

static int rx_frame(nghttp2_session *s, const nghttp2_frame *fr, void *ud)
{
    if (fr->hd.type == NGHTTP2_HEADERS && fr->hd.stream_id == 1)
        ((rx_t *)ud)->headers = 1;
    return 0;
}

static int rx_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    if (code != NGHTTP2_NO_ERROR)
        ((rx_t *)ud)->reset = 1;
    return 0;
}

/* The body does not matter here: the stream stays open after HEADERS (a
 * content-length is checked against the body only at its end). */
static ssize_t no_body_yet(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *fl,
                           nghttp2_data_source *src, void *ud)
{
    return NGHTTP2_ERR_DEFERRED;
}

static void round_trip(const nghttp2_nv *nv, size_t n)
{
    const nghttp2_data_provider body = { .read_callback = no_body_yet };
    static rx_t r;
    nghttp2_session_callbacks *cbs;
    nghttp2_session *cli, *srv;
    const uint8_t *b;
    ssize_t len;

    memset(&r, 0, offsetof(rx_t, mem));
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        abort();
    nghttp2_session_callbacks_set_on_header_callback(cbs, rx_header);
    nghttp2_session_callbacks_set_on_invalid_header_callback(cbs, rx_invalid);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, rx_frame);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, rx_close);
    if (nghttp2_session_client_new(&cli, cbs, NULL) != 0 ||
        nghttp2_session_server_new(&srv, cbs, &r) != 0)
        abort();
    if (nghttp2_submit_settings(cli, NGHTTP2_FLAG_NONE, NULL, 0) != 0 ||
        nghttp2_submit_request(cli, NULL, nv, n, &body, NULL) != 1)
        die("nghttp2 refused to submit the request", nv, n);
    while ((len = nghttp2_session_mem_send(cli, &b)) > 0)
        if (nghttp2_session_mem_recv(srv, b, (size_t)len) != len)
            die("the server session failed on the request", nv, n);
    if (len < 0)
        die("nghttp2 could not send the request", nv, n);
    if (r.invalid || r.reset || !r.headers)
        die(r.invalid ? "the server found an invalid field" : "the server refused the request", nv, n);
    if (r.ngot != n)
        die("the server got another number of fields", nv, n);
    for (size_t i = 0; i < n; i++)
        if (!same(&r.got[i], (const char *)nv[i].value, nv[i].valuelen) ||
            r.got[i].namelen != nv[i].namelen || memcmp(r.got[i].name, nv[i].name, nv[i].namelen))
            die("a field changed on the way", nv, n);
    nghttp2_session_del(cli);
    nghttp2_session_del(srv);
    nghttp2_session_callbacks_del(cbs);
}

/* ---- the checks ---------------------------------------------------------------- */

/* The regular fields nv[from..n) are the HTTP/1.1 rendering's, in order:
 * names lowercased, Host and Transfer-Encoding left out, then te. */
static void same_as_http1(const px_http_head_t *h, const px_fwd_opts_t *o, const nghttp2_nv *nv,
                          size_t n, size_t from)
{
    const px_http_head_t *w;
    px_http1_t *q;
    px_buf_t wire;
    size_t k = from;

    px_buf_init(&wire, 0);
    if (px_http1_write_request_head(&wire, h, o) != 0)
        die("the HTTP/1.1 rendering failed where the HTTP/2 one did not", nv, n);
    q = h1_reparse(1, 0, px_buf_ptr(&wire), px_buf_size(&wire), &w);
    for (int i = 0; i < w->header_count; i++) {
        const px_header_t *f = &w->headers[i];
        if ((f->name_len == 4 && !strncasecmp(f->name, "host", 4)) ||
            (f->name_len == 17 && !strncasecmp(f->name, "transfer-encoding", 17)))
            continue;
        if (k >= n || nv[k].namelen != f->name_len || strncasecmp((const char *)nv[k].name, f->name, f->name_len) ||
            !same(&nv[k], f->value, f->value_len))
            die("a field differs from the HTTP/1.1 rendering's", nv, n);
        k++;
    }
    if (k < n && !is(&nv[k], "te"))
        die("a field the HTTP/1.1 rendering does not have", nv, n);
    px_http1_free(q);
    px_buf_free(&wire);
}

static void check(const px_http_head_t *h, unsigned flags, int is_head_req, int interim)
{
    px_fwd_opts_t o = h1_fwd_opts(flags);
    nghttp2_nv *nv = NULL;
    size_t n = 0, k, content_lengths = 0, tes = 0;
    /* one buffer for every input, as an exchange keeps one from request to request */
    static px_buf_t scratch;
    int rc;

    (void)is_head_req;
    (void)interim;
    rc = px_h2cx_request(&scratch, h, &o, &nv, &n);
    if (rc != 0) {
        /* HTTP/1.0 without Host has no :authority; nothing else may fail */
        if (rc == PX_EINVAL && !h->host_len)
            return;
        fprintf(stderr, "h2c request fuzz: px_h2cx_request failed (%d)\n", rc);
        abort();
    }
    if (!h->host_len)
        die("a head without Host translated", nv, n);

    if (n < 3 || !is(&nv[0], ":method") || !same(&nv[0], h->method, h->method_len))
        die(":method first, the client's", nv, n);
    if (!is(&nv[1], ":scheme") || !same(&nv[1], "http", 4))
        die(":scheme second, http", nv, n);
    k = 2;
    if (!is(&nv[k], ":authority") || !same(&nv[k], h->host, h->host_len))
        die(":authority: the Host", nv, n);
    k++;
    if (k >= n || !is(&nv[k], ":path") || !same(&nv[k], h->target, h->target_len) || !h->target_len)
        die(":path: the target", nv, n);
    for (size_t i = 0; i < n; i++) {
        const nghttp2_nv *f = &nv[i];
        if (!f->namelen || f->name[f->namelen] || f->value[f->valuelen])
            die("a field is empty-named or not NUL-terminated", nv, n);
        if (memchr(f->name, '\r', f->namelen) || memchr(f->name, '\n', f->namelen) ||
            memchr(f->name, '\0', f->namelen) || memchr(f->value, '\r', f->valuelen) ||
            memchr(f->value, '\n', f->valuelen) || memchr(f->value, '\0', f->valuelen))
            die("CR, LF or NUL in a field", nv, n);
        if (i > k && f->name[0] == ':')
            die("a pseudo-header after the regular fields", nv, n);
        if (i <= k)
            continue;
        if (!nghttp2_check_header_name(f->name, f->namelen) || !nghttp2_check_header_value(f->value, f->valuelen))
            die("a field name or value HTTP/2 does not allow", nv, n);
        for (size_t j = 0; j < f->namelen; j++)
            if (f->name[j] >= 'A' && f->name[j] <= 'Z')
                die("an uppercase field name", nv, n);
        if (px_h2_connection_specific((const char *)f->name, f->namelen) || is(f, "host"))
            die("a connection-specific field or Host", nv, n);
        if (is(f, "te") && (tes++ || !same(f, "trailers", 8)))
            die("te other than one \"trailers\"", nv, n);
        if (is(f, "content-length")) {
            char want[24];
            int wl = snprintf(want, sizeof want, "%llu", (unsigned long long)h->content_length);
            if (content_lengths++ || h->body != PX_BODY_LENGTH || !same(f, want, (size_t)wl))
                die("content-length not the LENGTH body's, once", nv, n);
        }
    }
    if ((size_t)asked_trailers(h) != tes)
        die("te: trailers kept iff the client's te named trailers", nv, n);
    same_as_http1(h, &o, nv, n, k + 1);
    round_trip(nv, n);
}

H1_FUZZER({ 1, no_head, check, NULL })
