/* HTTP/1.1 framing on top of llhttp: a pull parser around its push callbacks.
 *
 * llhttp runs with every leniency off. Callbacks copy the head into a
 * parser-owned buffer (spans may be split across feeds) and pause llhttp at
 * each event: head complete, body span, message complete. px_http1_parse()
 * then reports the event and how much input it used (llhttp_get_error_pos),
 * and the next call resumes llhttp.
 *
 * Vetting happens in the callbacks, before the head is ever handed out, so a
 * smuggling attempt never produces a PX_H1_HEAD. Framing decisions are made
 * here and cross-checked against llhttp's own flags: if the two parsers could
 * disagree on where the body ends, the message is refused.
 *
 * The head size limit counts raw bytes, from the first byte of the message
 * through the blank line that ends the head. */
#include "http/http1.h"

#include <llhttp.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/fmt.h"

#define H1_DEFAULT_HEAD    16384u
#define H1_DEFAULT_HEADERS 100u
#define H1_MAX_CHUNK_EXT   16384u    /* chunk-extension bytes per message (CVE-2024-22019) */

enum { EV_HEAD = 1, EV_BODY = 2, EV_END = 4 };
enum { ST_IDLE, ST_HEAD, ST_BODY };
enum { HK_OTHER, HK_HOST, HK_CL, HK_TE, HK_CONN, HK_EXPECT };

typedef struct { uint32_t off, len; } span_t;
typedef struct { uint32_t noff, nlen, voff, vlen; int kind; } hspan_t;
typedef struct { char *data; uint32_t len, cap; } hbuf_t;

struct px_http1 {
    llhttp_t ll;
    px_http1_limits_t lim;
    int is_request;

    /* the head being received: offsets into acc */
    hbuf_t acc;
    hspan_t *spans;
    uint32_t nspans, spans_cap;
    span_t url, reason;
    uint32_t url_total;          /* target bytes seen, stored or not */
    char proto[8];
    uint32_t proto_len;
    int in_field, url_done, url_over, version_ok;
    int n_host, n_cl, n_te;
    int head_method;             /* the request line so far says HEAD (for an error before the head) */

    /* vetted results, published at PX_H1_HEAD */
    struct {
        span_t target, host;
        px_body_kind_t body;
        uint64_t cl;
        int keep_alive, expect, interim;
    } pend;

    /* the head handed out: points into front (swapped with acc) */
    hbuf_t front;
    px_http_head_t head;
    px_header_t *hdrs;
    uint32_t hdrs_cap;
    int interim;

    /* progress */
    int st, ev, paused, pending_end, head_resp, origin_pending;
    const char *cur, *end;       /* the buffer of the current llhttp_execute */
    long long origin;            /* message start relative to cur (negative: earlier feeds) */
    uint64_t body_seen;
    uint32_t ext_bytes, trailer_bytes, trailer_count;
    /* trailers, kept only when asked (px_http1_keep_trailers) */
    int keep_trailers;
    px_buf_t tacc;
    struct { uint32_t noff, nlen, voff, vlen; } tspans[PX_H1_MAX_TRAILERS];
    px_header_t theaders[PX_H1_MAX_TRAILERS];
    const char *body_at;
    size_t body_len;

    int failed;
    px_http_error_t err;
    const char *detail;
};

/* --- small helpers --------------------------------------------------------- */

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }
static int is_ows(int c) { return c == ' ' || c == '\t'; }

static int iequal(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t i;
    if (alen != blen)
        return 0;
    for (i = 0; i < alen; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return 0;
    return 1;
}

/* n bytes of a equal the lowercase literal lit, ignoring case. */
static int lit_eq(const char *a, const char *lit, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (lower((unsigned char)a[i]) != lit[i])
            return 0;
    return 1;
}

/* a equals the lowercase string lit, ignoring case. Inlined, the strlen of
 * a literal is folded: these run for most header fields. */
static inline int ieq(const char *a, size_t alen, const char *lit)
{
    size_t n = strlen(lit);
    return alen == n && lit_eq(a, lit, n);
}

static void trim(const char **s, size_t *len)
{
    while (*len && is_ows((unsigned char)**s))
        (*s)++, (*len)--;
    while (*len && is_ows((unsigned char)(*s)[*len - 1]))
        (*len)--;
}

/* Iterates the elements of a comma-separated list; returns 0 at the end.
 * Elements are trimmed of OWS and may be empty. */
static int next_elem(const char **s, const char *end, const char **el, size_t *len)
{
    const char *c;
    if (*s > end)
        return 0;
    c = memchr(*s, ',', (size_t)(end - *s));
    if (!c)
        c = end;
    *el = *s;
    *len = (size_t)(c - *s);
    trim(el, len);
    *s = c + 1;
    return 1;
}

/* Characters allowed in a Host / authority: reg-name, IP literal, port. */
static int is_hostchar(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("-._~!$&'()*+,;=:[]%", c));
}

/* RFC 9110 tchar, one byte per byte value (0x80 and up: 0): digits,
 * letters and !#$%&'*+-.^_`|~ map to themselves lowercased, the rest to 0;
 * so one look-up both checks and lowercases a field name's byte
 * (test_http1_rewrite tries all 256). */
#define T(c) [c] = c
#define U(c) [c] = c + 32
const unsigned char px_tchar[256] = {
    T('!'), T('#'), T('$'), T('%'), T('&'), T('\''), T('*'), T('+'), T('-'), T('.'), T('^'),
    T('_'), T('`'), T('|'), T('~'), T('0'), T('1'), T('2'), T('3'), T('4'), T('5'), T('6'), T('7'),
    T('8'), T('9'), U('A'), U('B'), U('C'), U('D'), U('E'), U('F'), U('G'), U('H'), U('I'), U('J'),
    U('K'), U('L'), U('M'), U('N'), U('O'), U('P'), U('Q'), U('R'), U('S'), U('T'), U('U'), U('V'),
    U('W'), U('X'), U('Y'), U('Z'), T('a'), T('b'), T('c'), T('d'), T('e'), T('f'), T('g'), T('h'),
    T('i'), T('j'), T('k'), T('l'), T('m'), T('n'), T('o'), T('p'), T('q'), T('r'), T('s'), T('t'),
    T('u'), T('v'), T('w'), T('x'), T('y'), T('z')
};
#undef T
#undef U

static int is_token(const char *s, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++)
        if (!px_tchar[(unsigned char)s[i]])
            return 0;
    return len > 0;
}

static int valid_host(const char *s, size_t len)
{
    size_t i;
    if (!len)
        return 0;
    for (i = 0; i < len; i++)
        if (!is_hostchar((unsigned char)s[i]))
            return 0;
    return 1;
}

static int fail(px_http1_t *p, px_http_error_t e, const char *detail)
{
    if (!p->failed) {
        p->failed = 1;
        /* an upstream's mistake is never the client's: always 502 */
        p->err = p->is_request ? e : PX_HERR_UPSTREAM_BAD;
        p->detail = detail;
    }
    return HPE_USER;
}

/* Room for n more bytes; grows by doubling and is kept across messages. */
static int buf_grow(hbuf_t *b, size_t n)
{
    size_t cap = b->cap ? b->cap : 1024;
    char *d;
    if ((size_t)b->len + n <= b->cap)
        return 0;
    if ((size_t)b->len + n > UINT32_MAX / 2)
        return -1;
    while (cap < b->len + n)
        cap *= 2;
    if (!(d = realloc(b->data, cap)))
        return -1;
    b->data = d;
    b->cap = (uint32_t)cap;
    return 0;
}

static int buf_put(hbuf_t *b, const char *s, size_t n)
{
    if (!n)                     /* empty spans happen (empty reason); data may be NULL */
        return 0;
    if (buf_grow(b, n))
        return -1;
    memcpy(b->data + b->len, s, n);
    b->len += (uint32_t)n;
    return 0;
}

static px_http1_t *P(llhttp_t *ll) { return ll->data; }

/* Raw head bytes from the message start through at+len; sets the origin on
 * the message's first span. */
static uint64_t raw_end(px_http1_t *p, const char *at, size_t len)
{
    if (p->origin_pending) {
        p->origin_pending = 0;
        p->origin = at - p->cur;
    }
    return (uint64_t)((at + len - p->cur) - p->origin);
}

static int head_put(px_http1_t *p, const char *at, size_t len)
{
    if (raw_end(p, at, len) > p->lim.max_head_bytes)
        return fail(p, PX_HERR_HEADERS_TOO_LARGE, "head too large");
    if (buf_put(&p->acc, at, len))
        return fail(p, PX_HERR_INTERNAL, "out of memory");
    return 0;
}

/* --- llhttp callbacks ------------------------------------------------------ */

static int on_message_begin(llhttp_t *ll)
{
    px_http1_t *p = P(ll);
    p->st = ST_HEAD;
    p->acc.len = 0;
    p->nspans = 0;
    p->url = p->reason = (span_t){ 0, 0 };
    p->url_total = p->proto_len = 0;
    p->in_field = p->url_done = p->url_over = p->version_ok = 0;
    p->n_host = p->n_cl = p->n_te = 0;
    p->head_method = 0;
    p->origin_pending = 1;
    p->body_seen = 0;
    p->ext_bytes = p->trailer_bytes = p->trailer_count = 0;
    px_buf_reset(&p->tacc);
    return 0;
}

static int on_method(llhttp_t *ll, const char *at, size_t len)
{
    raw_end(P(ll), at, len);         /* a request's first span: sets the origin */
    return 0;
}

static int on_method_complete(llhttp_t *ll)
{
    P(ll)->head_method = llhttp_get_method(ll) == HTTP_HEAD;
    /* we never tunnel; refuse before reading further */
    if (llhttp_get_method(ll) == HTTP_CONNECT)
        return fail(P(ll), PX_HERR_METHOD_NOT_ALLOWED, "CONNECT is not supported");
    return 0;
}

static int on_url(llhttp_t *ll, const char *at, size_t len)
{
    px_http1_t *p = P(ll);
    if (!p->url_total)
        p->url.off = p->acc.len;
    p->url_total += (uint32_t)len;
    if (p->url_total > p->lim.max_head_bytes)
        return fail(p, PX_HERR_URI_TOO_LONG, "request target too long");
    /* Over the head limit but the target alone fits: 431, decided once the
     * target ends (it might still grow past the limit on its own: 414). */
    if (p->url_over || raw_end(p, at, len) > p->lim.max_head_bytes) {
        p->url_over = 1;
        return 0;
    }
    if (buf_put(&p->acc, at, len))
        return fail(p, PX_HERR_INTERNAL, "out of memory");
    p->url.len += (uint32_t)len;
    return 0;
}

static int on_url_complete(llhttp_t *ll)
{
    px_http1_t *p = P(ll);
    p->url_done = 1;
    if (p->url_over)
        return fail(p, PX_HERR_HEADERS_TOO_LARGE, "request head too large");
    return 0;
}

static int on_protocol(llhttp_t *ll, const char *at, size_t len)
{
    px_http1_t *p = P(ll);
    raw_end(p, at, len);            /* a response's first span */
    if (p->proto_len + len > sizeof p->proto)
        return fail(p, PX_HERR_BAD_REQUEST, "not an HTTP message");
    memcpy(p->proto + p->proto_len, at, len);
    p->proto_len += (uint32_t)len;
    return 0;
}

static int on_protocol_complete(llhttp_t *ll)
{
    px_http1_t *p = P(ll);
    /* llhttp also accepts RTSP/ and ICE/ */
    if (p->proto_len != 4 || memcmp(p->proto, "HTTP", 4))
        return fail(p, PX_HERR_BAD_REQUEST, "not an HTTP message");
    return 0;
}

static int check_version(px_http1_t *p)
{
    if (p->ll.http_major != 1 || p->ll.http_minor > 1)
        return fail(p, PX_HERR_VERSION, p->ll.http_major == 2 ? "HTTP/2 is not supported here"
                                                              : "only HTTP/1.0 and HTTP/1.1");
    return 0;
}

static int on_version_complete(llhttp_t *ll)
{
    px_http1_t *p = P(ll);
    p->version_ok = 1;
    return check_version(p);
}

static int on_status(llhttp_t *ll, const char *at, size_t len)
{
    px_http1_t *p = P(ll);
    if (!p->reason.len)
        p->reason.off = p->acc.len;
    p->reason.len += (uint32_t)len;
    return head_put(p, at, len);
}

/* Trailers are vetted by llhttp, bounded here, and dropped. */
static int trailer_bytes(px_http1_t *p, size_t len)
{
    p->trailer_bytes += (uint32_t)len;
    if (p->trailer_bytes > p->lim.max_head_bytes)
        return fail(p, PX_HERR_HEADERS_TOO_LARGE, "trailers too large");
    return 0;
}

/* Keeps trailer bytes when asked; *span: 1 name, 2 value. */
static int trailer_keep(px_http1_t *p, const char *at, size_t len, int value)
{
    uint32_t i;
    if (!p->keep_trailers || p->trailer_count == 0 || p->trailer_count > PX_H1_MAX_TRAILERS)
        return 0;
    i = p->trailer_count - 1;
    if (px_buf_append(&p->tacc, at, len) != 0)
        return fail(p, PX_HERR_INTERNAL, "out of memory");
    if (value)
        p->tspans[i].vlen += (uint32_t)len;
    else
        p->tspans[i].nlen += (uint32_t)len;
    return 0;
}

static int on_header_field(llhttp_t *ll, const char *at, size_t len)
{
    px_http1_t *p = P(ll);
    int rc;
    if (!p->in_field) {
        p->in_field = 1;
        if (p->st == ST_BODY) {
            if (++p->trailer_count > p->lim.max_headers)
                return fail(p, PX_HERR_HEADERS_TOO_LARGE, "too many trailer fields");
            if (p->trailer_count <= PX_H1_MAX_TRAILERS) {
                p->tspans[p->trailer_count - 1].noff = (uint32_t)px_buf_size(&p->tacc);
                p->tspans[p->trailer_count - 1].nlen = p->tspans[p->trailer_count - 1].vlen = 0;
            }
        } else {
            if (p->nspans >= p->lim.max_headers)
                return fail(p, PX_HERR_HEADERS_TOO_LARGE, "too many header fields");
            if (p->nspans == p->spans_cap) {
                uint32_t cap = p->spans_cap ? p->spans_cap * 2 : 16;
                hspan_t *s = realloc(p->spans, cap * sizeof *s);
                if (!s)
                    return fail(p, PX_HERR_INTERNAL, "out of memory");
                p->spans = s;
                p->spans_cap = cap;
            }
            p->spans[p->nspans++] = (hspan_t){ p->acc.len, 0, 0, 0, HK_OTHER };
        }
    }
    if (p->st == ST_BODY)
        return (rc = trailer_bytes(p, len)) ? rc : trailer_keep(p, at, len, 0);
    if ((rc = head_put(p, at, len)))
        return rc;
    p->spans[p->nspans - 1].nlen += (uint32_t)len;
    return 0;
}

static int on_header_field_complete(llhttp_t *ll)
{
    px_http1_t *p = P(ll);
    hspan_t *h;
    p->in_field = 0;
    if (p->st == ST_BODY) {
        if (p->trailer_count && p->trailer_count <= PX_H1_MAX_TRAILERS)
            p->tspans[p->trailer_count - 1].voff = (uint32_t)px_buf_size(&p->tacc);
        return 0;
    }
    h = &p->spans[p->nspans - 1];
    h->voff = p->acc.len;
    switch (h->nlen) {
    case 4:  h->kind = ieq(p->acc.data + h->noff, 4, "host") ? HK_HOST : HK_OTHER; break;
    case 6:  h->kind = ieq(p->acc.data + h->noff, 6, "expect") ? HK_EXPECT : HK_OTHER; break;
    case 10: h->kind = ieq(p->acc.data + h->noff, 10, "connection") ? HK_CONN : HK_OTHER; break;
    case 14: h->kind = ieq(p->acc.data + h->noff, 14, "content-length") ? HK_CL : HK_OTHER; break;
    case 17: h->kind = ieq(p->acc.data + h->noff, 17, "transfer-encoding") ? HK_TE : HK_OTHER; break;
    default: h->kind = HK_OTHER;
    }
    /* Decided here, before llhttp parses the value, so the answer does not
     * depend on which of its checks happens to fire first. */
    switch (h->kind) {
    case HK_HOST:
        if (p->n_host++)
            return fail(p, PX_HERR_BAD_REQUEST, "more than one Host header");
        break;
    case HK_CL:
        if (p->n_cl++)
            return fail(p, PX_HERR_AMBIGUOUS_FRAMING, "duplicate Content-Length");
        if (p->n_te)
            return fail(p, PX_HERR_AMBIGUOUS_FRAMING, "both Content-Length and Transfer-Encoding");
        break;
    case HK_TE:
        if (p->n_te++)
            return fail(p, PX_HERR_AMBIGUOUS_FRAMING, "duplicate Transfer-Encoding");
        if (p->n_cl)
            return fail(p, PX_HERR_AMBIGUOUS_FRAMING, "both Content-Length and Transfer-Encoding");
        break;
    }
    return 0;
}

static int on_header_value(llhttp_t *ll, const char *at, size_t len)
{
    px_http1_t *p = P(ll);
    int rc;
    if (p->st == ST_BODY)
        return (rc = trailer_bytes(p, len)) ? rc : trailer_keep(p, at, len, 1);
    return head_put(p, at, len);
}

static int on_header_value_complete(llhttp_t *ll)
{
    px_http1_t *p = P(ll);
    hspan_t *h;
    if (p->st == ST_BODY)
        return 0;
    h = &p->spans[p->nspans - 1];
    h->vlen = p->acc.len - h->voff;
    while (h->vlen && is_ows((unsigned char)p->acc.data[h->voff + h->vlen - 1]))
        h->vlen--;          /* llhttp keeps trailing OWS in the value */
    return 0;
}

/* Transfer-Encoding must be exactly one "chunked". */
static int vet_te(px_http1_t *p, const char *v, size_t vlen)
{
    const char *s = v, *end = v + vlen, *el;
    size_t len;
    int chunked = 0, last_chunked = 0, unknown = 0, bad = 0;
    while (next_elem(&s, end, &el, &len)) {
        if (!len)
            bad = 1;
        else if (ieq(el, len, "chunked")) {
            bad |= chunked;
            chunked = last_chunked = 1;
        } else {
            bad |= chunked;        /* a coding after chunked */
            unknown = 1;
            last_chunked = 0;
        }
    }
    if (!p->is_request && (bad || unknown || !last_chunked))
        return fail(p, PX_HERR_UPSTREAM_BAD, "unsupported Transfer-Encoding in response");
    if (bad || (chunked && !last_chunked))
        return fail(p, PX_HERR_BAD_REQUEST, "invalid Transfer-Encoding");
    if (unknown)
        return fail(p, PX_HERR_NOT_IMPLEMENTED, "unsupported transfer coding");
    /* e.g. "chunked<HTAB>": valid OWS to us, not "chunked" to llhttp */
    if (!(p->ll.flags & F_CHUNKED))
        return fail(p, PX_HERR_BAD_REQUEST, "Transfer-Encoding not understood");
    return 0;
}

static int vet_cl(px_http1_t *p, const char *v, size_t len, uint64_t *out)
{
    uint64_t n = 0;
    size_t i;
    if (!len || len > 19)
        return fail(p, PX_HERR_BAD_REQUEST, "invalid Content-Length");
    for (i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return fail(p, PX_HERR_BAD_REQUEST, "invalid Content-Length");
        n = n * 10 + (uint64_t)(v[i] - '0');
    }
    if (!(p->ll.flags & F_CONTENT_LENGTH) || p->ll.content_length != n)
        return fail(p, PX_HERR_BAD_REQUEST, "Content-Length not understood");
    *out = n;
    return 0;
}

/* The request target: origin-form, "*" for OPTIONS, or absolute-form turned
 * into origin-form with its authority as the host (RFC 9112 3.2.2). */
static int vet_target(px_http1_t *p, int is_options)
{
    const char *u = p->acc.data + p->url.off, *a, *end = u + p->url.len, *ae;
    size_t skip;
    if (memchr(u, '#', p->url.len))
        return fail(p, PX_HERR_BAD_REQUEST, "fragment in request target");
    if (p->url.len && u[0] == '/') {
        p->pend.target = p->url;
        return 0;
    }
    if (p->url.len == 1 && u[0] == '*') {
        if (!is_options)
            return fail(p, PX_HERR_BAD_REQUEST, "'*' target is only for OPTIONS");
        p->pend.target = p->url;
        return 0;
    }
    if (p->url.len >= 7 && ieq(u, 7, "http://"))
        skip = 7;
    else if (p->url.len >= 8 && ieq(u, 8, "https://"))
        skip = 8;
    else
        return fail(p, PX_HERR_BAD_REQUEST, "invalid request target");
    a = u + skip;
    for (ae = a; ae < end && *ae != '/' && *ae != '?'; ae++)
        ;
    if (!valid_host(a, (size_t)(ae - a)) || memchr(a, '@', (size_t)(ae - a)))
        return fail(p, PX_HERR_BAD_REQUEST, "invalid authority in request target");
    p->pend.host = (span_t){ (uint32_t)(a - p->acc.data), (uint32_t)(ae - a) };
    if (ae < end && *ae == '/') {
        p->pend.target = (span_t){ (uint32_t)(ae - p->acc.data), (uint32_t)(end - ae) };
        return 0;
    }
    /* empty path: "/" (or "*" for OPTIONS without a query), then the query */
    {
        uint32_t off = p->acc.len, qoff = (uint32_t)(ae - p->acc.data), qlen = (uint32_t)(end - ae);
        if (buf_grow(&p->acc, 1 + qlen))     /* moves acc.data: offsets only from here */
            return fail(p, PX_HERR_INTERNAL, "out of memory");
        p->acc.data[off] = is_options && !qlen ? '*' : '/';
        memcpy(p->acc.data + off + 1, p->acc.data + qoff, qlen);
        p->acc.len += 1 + qlen;
        p->pend.target = (span_t){ off, 1 + qlen };
    }
    return 0;
}

static int on_headers_complete(llhttp_t *ll)
{
    px_http1_t *p = P(ll);
    const hspan_t *host = NULL, *te = NULL, *cl = NULL;   /* spans: vet_target may move acc */
    int status = ll->status_code, conn_close = 0, conn_ka = 0, expect = 0, no_body = 0;
    uint32_t i;

    p->st = ST_BODY;
    p->ev |= EV_HEAD;
    if (check_version(p))       /* "GET /" (HTTP/0.9) has no version callbacks */
        return HPE_USER;
    memset(&p->pend, 0, sizeof p->pend);

    for (i = 0; i < p->nspans; i++) {
        const hspan_t *h = &p->spans[i];
        const char *v = p->acc.data + h->voff, *s = v, *el;
        size_t len;
        switch (h->kind) {
        case HK_HOST: host = h; break;
        case HK_TE: te = h; break;
        case HK_CL: cl = h; break;
        case HK_EXPECT: expect = ieq(v, h->vlen, "100-continue"); break;
        case HK_CONN:
            while (next_elem(&s, v + h->vlen, &el, &len)) {
                conn_close |= ieq(el, len, "close");
                conn_ka |= ieq(el, len, "keep-alive");
            }
            break;
        }
    }
    p->pend.keep_alive = !conn_close && (ll->http_minor == 1 || conn_ka);

    if (p->is_request) {
        if (llhttp_get_method(ll) == HTTP_CONNECT)
            return fail(p, PX_HERR_METHOD_NOT_ALLOWED, "CONNECT is not supported");
        if (ll->http_minor == 1 && !host)
            return fail(p, PX_HERR_BAD_REQUEST, "HTTP/1.1 request without Host");
        if (host && !valid_host(p->acc.data + host->voff, host->vlen))
            return fail(p, PX_HERR_BAD_REQUEST, "invalid Host");
        if (host)
            p->pend.host = (span_t){ host->voff, host->vlen };
        if (vet_target(p, llhttp_get_method(ll) == HTTP_OPTIONS))
            return HPE_USER;
        p->pend.expect = expect && ll->http_minor == 1;
        if (te && ll->http_minor == 0)   /* RFC 9112 6.1: faulty framing */
            return fail(p, PX_HERR_BAD_REQUEST, "Transfer-Encoding in an HTTP/1.0 request");
    } else {
        if (status < 100 || status == 101)
            return fail(p, PX_HERR_UPSTREAM_BAD, status == 101 ? "unexpected 101 Switching Protocols"
                                                               : "invalid status code");
        p->pend.interim = status < 200;
        no_body = status < 200 || status == 204 || status == 304 || p->head_resp;
        if (!p->pend.interim)
            p->head_resp = 0;
        if (te && ll->http_minor == 0)
            return fail(p, PX_HERR_UPSTREAM_BAD, "Transfer-Encoding in an HTTP/1.0 response");
    }

    if (no_body) {
        p->pend.body = PX_BODY_NONE;
    } else if (te) {
        if (vet_te(p, p->acc.data + te->voff, te->vlen))
            return HPE_USER;
        p->pend.body = PX_BODY_CHUNKED;
    } else if (cl) {
        if (vet_cl(p, p->acc.data + cl->voff, cl->vlen, &p->pend.cl))
            return HPE_USER;
        if (p->lim.max_body_bytes && p->pend.cl > p->lim.max_body_bytes)
            return fail(p, PX_HERR_BODY_TOO_LARGE, "declared body too large");
        p->pend.body = PX_BODY_LENGTH;
    } else if (!p->is_request) {
        p->pend.body = PX_BODY_EOF;
        p->pend.keep_alive = 0;
    }
    if (p->pend.body == PX_BODY_NONE || (p->pend.body == PX_BODY_LENGTH && !p->pend.cl))
        return 1;               /* no body: llhttp goes on to message complete */
    return HPE_PAUSED;
}

static int on_chunk_header(llhttp_t *ll)
{
    px_http1_t *p = P(ll);
    if (p->lim.max_body_bytes && ll->content_length > p->lim.max_body_bytes - p->body_seen)
        return fail(p, PX_HERR_BODY_TOO_LARGE, "body too large");
    return 0;
}

static int on_chunk_ext(llhttp_t *ll, const char *at, size_t len)
{
    px_http1_t *p = P(ll);
    p->ext_bytes += (uint32_t)len;
    if (p->ext_bytes > H1_MAX_CHUNK_EXT)
        return fail(p, PX_HERR_BAD_REQUEST, "chunk extensions too long");
    return 0;
}

static int on_body(llhttp_t *ll, const char *at, size_t len)
{
    px_http1_t *p = P(ll);
    if (!len)       /* llhttp flushes an empty span when resumed at the end of input */
        return 0;
    p->body_seen += len;
    if (p->lim.max_body_bytes && p->body_seen > p->lim.max_body_bytes)
        return fail(p, PX_HERR_BODY_TOO_LARGE, "body too large");
    p->body_at = at;
    p->body_len = len;
    p->ev |= EV_BODY;
    return HPE_PAUSED;
}

static int on_message_complete(llhttp_t *ll)
{
    px_http1_t *p = P(ll);
    p->st = ST_IDLE;
    p->ev |= EV_END;
    return HPE_PAUSED;
}

static const llhttp_settings_t h1_settings = {
    .on_message_begin = on_message_begin, .on_protocol = on_protocol,
    .on_url = on_url, .on_status = on_status,
    .on_method = on_method, .on_header_field = on_header_field,
    .on_header_value = on_header_value, .on_chunk_extension_name = on_chunk_ext,
    .on_chunk_extension_value = on_chunk_ext, .on_headers_complete = on_headers_complete,
    .on_body = on_body, .on_message_complete = on_message_complete,
    .on_protocol_complete = on_protocol_complete, .on_url_complete = on_url_complete,
    .on_method_complete = on_method_complete, .on_version_complete = on_version_complete,
    .on_header_field_complete = on_header_field_complete, .on_header_value_complete = on_header_value_complete,
    .on_chunk_header = on_chunk_header,
};

/* --- the pull interface ------------------------------------------------------ */

/* p (zeroed but for its allocations) set up for a new stream of messages. */
static void setup(px_http1_t *p, int is_request, const px_http1_limits_t *limits)
{
    p->is_request = is_request;
    if (limits)                 /* NULL limits, or a 0 head/count limit: the defaults */
        p->lim = *limits;
    if (!p->lim.max_head_bytes)
        p->lim.max_head_bytes = H1_DEFAULT_HEAD;
    if (!p->lim.max_headers)
        p->lim.max_headers = H1_DEFAULT_HEADERS;
    llhttp_init(&p->ll, is_request ? HTTP_REQUEST : HTTP_RESPONSE, &h1_settings);
    p->ll.data = p;
    p->st = ST_IDLE;
}

px_http1_t *px_http1_new(int is_request, const px_http1_limits_t *limits)
{
    px_http1_t *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    setup(p, is_request, limits);
    return p;
}

static void hbuf_keep(hbuf_t *b, size_t keep)
{
    if (b->cap > keep) {
        free(b->data);
        b->data = NULL;
        b->cap = 0;
    }
    b->len = 0;
}

void px_http1_reuse(px_http1_t *p, const px_http1_limits_t *limits, size_t keep)
{
    hbuf_t acc = p->acc, front = p->front;
    hspan_t *spans = p->spans;
    uint32_t spans_cap = p->spans_cap, hdrs_cap = p->hdrs_cap;
    px_header_t *hdrs = p->hdrs;
    px_buf_t tacc = p->tacc;
    int is_request = p->is_request, keep_trailers = p->keep_trailers;

    hbuf_keep(&acc, keep);
    hbuf_keep(&front, keep);
    if (spans_cap * sizeof *spans > keep) {
        free(spans);
        spans = NULL;
        spans_cap = 0;
    }
    if (hdrs_cap * sizeof *hdrs > keep) {
        free(hdrs);
        hdrs = NULL;
        hdrs_cap = 0;
    }
    px_buf_recycle(&tacc, keep);
    memset(p, 0, sizeof *p);
    p->acc = acc;
    p->front = front;
    p->spans = spans;
    p->spans_cap = spans_cap;
    p->hdrs = hdrs;
    p->hdrs_cap = hdrs_cap;
    p->tacc = tacc;
    p->keep_trailers = keep_trailers;
    setup(p, is_request, limits);
}

void px_http1_keep_trailers(px_http1_t *p, int keep)
{
    p->keep_trailers = keep;
}

const px_header_t *px_http1_trailers(px_http1_t *p, int *count)
{
    int n = (int)(p->trailer_count < PX_H1_MAX_TRAILERS ? p->trailer_count : PX_H1_MAX_TRAILERS);
    const char *base;

    *count = 0;
    if (!p->keep_trailers || !n)
        return p->theaders;     /* (tacc may have no memory: no pointer into it) */
    base = px_buf_ptr(&p->tacc);
    for (int i = 0; i < n; i++) {
        size_t vl = p->tspans[i].vlen;
        while (vl && (base[p->tspans[i].voff + vl - 1] == ' ' || base[p->tspans[i].voff + vl - 1] == '\t'))
            vl--;
        p->theaders[i] = (px_header_t){ base + p->tspans[i].noff, p->tspans[i].nlen,
                                        base + p->tspans[i].voff, vl };
    }
    *count = n;
    return p->theaders;
}

void px_http1_free(px_http1_t *p)
{
    if (!p)
        return;
    px_buf_free(&p->tacc);
    free(p->acc.data);
    free(p->front.data);
    free(p->spans);
    free(p->hdrs);
    free(p);
}

/* Makes the vetted head the one px_http1_head() returns. */
static int publish(px_http1_t *p)
{
    px_http_head_t *h = &p->head;
    hbuf_t t;
    uint32_t i;
    if (p->nspans > p->hdrs_cap) {
        px_header_t *n = realloc(p->hdrs, p->nspans * sizeof *n);
        if (!n)
            return fail(p, PX_HERR_INTERNAL, "out of memory");
        p->hdrs = n;
        p->hdrs_cap = p->nspans;
    }
    t = p->front, p->front = p->acc, p->acc = t;
    t.data = p->front.data;

    memset(h, 0, sizeof *h);
    h->is_request = p->is_request;
    h->http_minor = p->ll.http_minor;
    if (p->is_request) {
        h->method = llhttp_method_name((llhttp_method_t)p->ll.method);
        h->method_len = strlen(h->method);
        h->target = t.data + p->pend.target.off;
        h->target_len = p->pend.target.len;
        if (p->pend.host.len) {
            h->host = t.data + p->pend.host.off;
            h->host_len = p->pend.host.len;
        }
        h->expect_continue = p->pend.expect;
    } else {
        h->status = p->ll.status_code;
        h->reason = p->reason.len ? t.data + p->reason.off : "";
        h->reason_len = p->reason.len;
    }
    for (i = 0; i < p->nspans; i++) {
        const hspan_t *s = &p->spans[i];
        p->hdrs[i] = (px_header_t){ t.data + s->noff, s->nlen, t.data + s->voff, s->vlen };
    }
    h->headers = p->hdrs;
    h->header_count = (int)p->nspans;
    h->body = p->pend.body;
    h->content_length = p->pend.body == PX_BODY_LENGTH ? p->pend.cl : 0;
    h->keep_alive = p->pend.keep_alive;
    p->interim = p->pend.interim;
    return 0;
}

static px_h1_event_t map_error(px_http1_t *p, llhttp_errno_t err)
{
    const char *reason = llhttp_get_error_reason(&p->ll), *pos = llhttp_get_error_pos(&p->ll);
    px_http_error_t e = PX_HERR_BAD_REQUEST;
    if (p->failed)
        return PX_H1_ERROR;
    if (!reason)
        reason = llhttp_errno_name(err);
    switch (err) {
    case HPE_INVALID_VERSION:
        /* after a good version it is the line ending that is wrong */
        e = p->version_ok ? PX_HERR_BAD_REQUEST : PX_HERR_VERSION;
        break;
    case HPE_PAUSED_H2_UPGRADE:
        e = PX_HERR_VERSION;
        reason = "HTTP/2 is not supported here";
        break;
    case HPE_UNEXPECTED_CONTENT_LENGTH:
        e = PX_HERR_AMBIGUOUS_FRAMING;
        break;
    case HPE_INVALID_CONTENT_LENGTH:
        if (pos && pos >= p->cur && pos < p->end && *pos == ',') {
            e = PX_HERR_AMBIGUOUS_FRAMING;
            reason = "Content-Length list";
        }
        break;
    default:
        break;
    }
    fail(p, e, reason);
    return PX_H1_ERROR;
}

static const char empty[1];

/* Where parse and finish start: a failed parser stays failed and an END
 * held back behind its HEAD goes out first; otherwise a paused parser
 * resumes on [buf, buf + len) and PX_H1_NEED_MORE says go on. */
static px_h1_event_t reenter(px_http1_t *p, const char *buf, size_t len)
{
    if (p->failed)
        return PX_H1_ERROR;
    if (p->pending_end) {
        p->pending_end = 0;
        return PX_H1_END;
    }
    if (p->paused) {
        llhttp_resume(&p->ll);
        p->paused = 0;
    }
    p->cur = buf;
    p->end = buf + len;
    p->ev = 0;
    return PX_H1_NEED_MORE;
}

px_h1_event_t px_http1_parse(px_http1_t *p, const char *buf, size_t len, size_t *consumed,
                             const char **data, size_t *dlen)
{
    size_t off = 0, used;
    llhttp_errno_t err;
    px_h1_event_t ev;

    *consumed = 0;
    *data = NULL;
    *dlen = 0;
    if (!buf)
        buf = empty, len = 0;
    if ((ev = reenter(p, buf, len)) != PX_H1_NEED_MORE)
        return ev;
    for (;;) {
        err = llhttp_execute(&p->ll, buf + off, len - off);
        if (err != HPE_PAUSED_UPGRADE)
            break;
        /* An Upgrade request: we strip Upgrade and never tunnel, so go on
         * parsing HTTP right after it. */
        off = (size_t)(llhttp_get_error_pos(&p->ll) - buf);
        llhttp_resume_after_upgrade(&p->ll);
    }
    if (err == HPE_OK) {
        used = len;
    } else if (err == HPE_PAUSED) {
        used = (size_t)(llhttp_get_error_pos(&p->ll) - buf);
        p->paused = 1;
    } else {
        return map_error(p, err);
    }
    *consumed = used;

    if (p->ev & EV_HEAD) {
        if ((uint64_t)((long long)used - p->origin) > p->lim.max_head_bytes) {
            fail(p, PX_HERR_HEADERS_TOO_LARGE, "head too large");
            return PX_H1_ERROR;
        }
        if (publish(p))
            return PX_H1_ERROR;
        p->pending_end = !!(p->ev & EV_END);
        return PX_H1_HEAD;
    }
    if (p->ev & EV_BODY) {
        *data = p->body_at;
        *dlen = p->body_len;
        return PX_H1_BODY;
    }
    if (p->ev & EV_END)
        return PX_H1_END;
    if (p->st == ST_HEAD && !p->origin_pending) {
        /* bytes outside any span (OWS) count too; a target still being
         * received is judged by on_url */
        if ((uint64_t)((long long)used - p->origin) > p->lim.max_head_bytes &&
            (!p->is_request || p->url_done)) {
            fail(p, PX_HERR_HEADERS_TOO_LARGE, "head too large");
            return PX_H1_ERROR;
        }
        p->origin -= (long long)used;
    }
    return PX_H1_NEED_MORE;
}

void px_http1_expect_head_response(px_http1_t *p, int is_head) { p->head_resp = is_head; }

int px_http1_head_request(const px_http1_t *p) { return p->is_request && p->head_method; }

px_h1_event_t px_http1_finish(px_http1_t *p)
{
    llhttp_errno_t err;
    px_h1_event_t ev;
    if ((ev = reenter(p, empty, 0)) != PX_H1_NEED_MORE)
        return ev;
    /* run what needs no input (a body that ended exactly at the last feed) */
    err = llhttp_execute(&p->ll, empty, 0);
    if (err == HPE_OK && p->st == ST_BODY && p->head.body == PX_BODY_EOF) {
        err = llhttp_finish(&p->ll);    /* calls on_message_complete */
        if (p->ev & EV_END) {
            /* llhttp stays in its read-until-close state after such a
             * message: start afresh, the next message comes on a new
             * connection. */
            llhttp_reset(&p->ll);
            p->paused = 0;
            return PX_H1_END;
        }
    }
    if (err == HPE_PAUSED)
        p->paused = 1;
    else if (err != HPE_OK)
        return map_error(p, err);
    if (p->ev & EV_END)
        return PX_H1_END;
    if (p->st == ST_IDLE)
        return PX_H1_NEED_MORE;        /* a clean close between messages */
    fail(p, PX_HERR_BAD_REQUEST, p->st == ST_HEAD ? "connection closed in the head"
                                                  : "connection closed in the body");
    return PX_H1_ERROR;
}

const px_http_head_t *px_http1_head(const px_http1_t *p) { return &p->head; }

int px_http1_is_interim(const px_http1_t *p) { return p->interim; }

px_http_error_t px_http1_error(const px_http1_t *p, const char **detail)
{
    if (detail)
        *detail = p->detail ? p->detail : "";
    return p->err;
}

int px_http1_idle(const px_http1_t *p) { return p->st == ST_IDLE && !p->pending_end; }

/* --- rewriting --------------------------------------------------------------- */

/* What the rewriters need to know about a header name, found with one
 * switch on its length and, for the few lengths that matter, a comparison
 * that usually stops at the first byte: the per-header cost of a head
 * rewrite, which asked up to a dozen strlen-and-compare questions each. */
enum {
    HN_HOP = 1,         /* hop-by-hop by name (RFC 9110 7.6.1) */
    HN_CONN = 2,        /* Connection */
    HN_HOST = 4,
    HN_CL = 8,          /* Content-Length */
    HN_XFF = 16,        /* X-Forwarded-For */
    HN_FWD = 32,        /* X-Forwarded-* or Forwarded: the client's claims about itself */
    HN_XFP = 64,        /* X-Forwarded-Proto */
    HN_XFH = 128,       /* X-Forwarded-Host */
    HN_RID = 256        /* X-Request-Id */
};

static unsigned name_class(const char *n, size_t len)
{
    unsigned f = len > 12 && lit_eq(n, "x-forwarded-", 12) ? HN_FWD : 0;
    switch (len) {
    case 2:  return lit_eq(n, "te", 2) ? HN_HOP : 0;
    case 4:  return lit_eq(n, "host", 4) ? HN_HOST : 0;
    case 7:  return lit_eq(n, "trailer", 7) || lit_eq(n, "upgrade", 7) ? HN_HOP : 0;
    case 9:  return lit_eq(n, "forwarded", 9) ? HN_FWD : 0;
    case 10: return lit_eq(n, "connection", 10) ? HN_HOP | HN_CONN : lit_eq(n, "keep-alive", 10) ? HN_HOP : 0;
    case 12: return lit_eq(n, "x-request-id", 12) ? HN_RID : 0;
    case 14: return lit_eq(n, "content-length", 14) ? HN_CL : f;
    case 15: return f && lit_eq(n + 12, "for", 3) ? f | HN_XFF : f;
    case 16: return lit_eq(n, "proxy-connection", 16) ? HN_HOP : f && lit_eq(n + 12, "host", 4) ? f | HN_XFH : f;
    case 17: return lit_eq(n, "transfer-encoding", 17) ? HN_HOP : f && lit_eq(n + 12, "proto", 5) ? f | HN_XFP : f;
    default: return f;
    }
}

/* Room for n more bytes in out, with px_buf_append's errors. */
static int room(px_buf_t *out, size_t n, char **d)
{
    if (out->max && px_buf_size(out) + n > out->max)
        return PX_ETOOBIG;
    return (*d = px_buf_reserve(out, n)) ? 0 : PX_ENOMEM;
}

/* Appends p[0..k) with one reservation. */
static int put_parts(px_buf_t *out, const char *const *p, const size_t *len, int k)
{
    size_t n = 0;
    char *d;
    int i, rc;
    for (i = 0; i < k; i++)
        n += len[i];
    if ((rc = room(out, n, &d)))
        return rc;
    for (i = 0; i < k; i++) {
        if (len[i])             /* p may be NULL for an empty part */
            memcpy(d, p[i], len[i]);
        d += len[i];
    }
    out->len += n;
    return 0;
}

/* Whether a word holds a byte below 0x0E (CR, LF, NUL, and also a tab,
 * so a hit is confirmed byte by byte). */
static int low_byte(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    return ((w - 0x0E * ones) & ~w & highs) != 0;
}

static int bytes_break(const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == '\r' || v[i] == '\n' || v[i] == '\0')
            return 1;
    return 0;
}

/* Called for every field that leaves: eight bytes at a time, and a short
 * value or the tail of a long one in one word of overlapping loads (the
 * spare bytes of a word under four bytes are spaces), not a byte loop. */
int px_has_line_break(const char *v, size_t n)
{
    uint64_t w;
    if (n >= 8) {
        size_t i;
        for (i = 0; i + 8 <= n; i += 8) {
            memcpy(&w, v + i, 8);
            if (low_byte(w) && bytes_break(v + i, 8))
                return 1;
        }
        if (i == n)
            return 0;
        memcpy(&w, v + n - 8, 8);
        return low_byte(w) && bytes_break(v + n - 8, 8);
    }
    if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, v, 4);
        memcpy(&b, v + n - 4, 4);
        w = a | (uint64_t)b << 32;
    } else if (n >= 2) {
        uint16_t a, b;
        memcpy(&a, v, 2);
        memcpy(&b, v + n - 2, 2);
        w = a | (uint64_t)b << 16 | 0x2020202000000000ULL;
    } else if (n == 1) {
        w = (unsigned char)v[0] | 0x2020202020202000ULL;
    } else {
        return 0;
    }
    return low_byte(w) && bytes_break(v, n);
}

/* One header line, vetted by the caller (px_http1_write_request_head's
 * sink: the walk vets each field). */
static int put_line(void *ud, const char *name, size_t nlen, const char *value, size_t vlen)
{
    px_buf_t *out = ud;
    char *d;
    int rc;
    if ((rc = room(out, nlen + vlen + 4, &d)))
        return rc;
    memcpy(d, name, nlen);
    d += nlen;
    *d++ = ':';
    *d++ = ' ';
    if (vlen)
        memcpy(d, value, vlen);
    d += vlen;
    *d++ = '\r';
    *d = '\n';
    out->len += nlen + vlen + 4;
    return 0;
}

/* One header line, refusing anything that could split the head. */
static int put_header(px_buf_t *out, const char *name, size_t nlen, const char *value, size_t vlen)
{
    if (!is_token(name, nlen) || px_has_line_break(value, vlen))
        return PX_EINVAL;
    return put_line(out, name, nlen, value, vlen);
}

/* The options of a head's Connection headers, gathered once per rewrite:
 * each names one more hop-by-hop header (RFC 9110 7.6.1). Past CONN_OPTS
 * of them (never seen in practice) is_hop scans the head again. */
#define CONN_OPTS 8
typedef struct {
    const char *name[CONN_OPTS];
    size_t len[CONN_OPTS];
    int n, more;
} conn_opts_t;

static int is_connection(const px_header_t *h)
{
    return h->name_len == 10 && lit_eq(h->name, "connection", 10);
}

/* The elements of every Connection header of a head, in order. */
typedef struct {
    const px_http_head_t *head;
    int i;                       /* header being read, -1 before the first */
    const char *s, *end;         /* what is left of its value */
} conn_iter_t;

static void conn_iter_init(conn_iter_t *it, const px_http_head_t *head)
{
    it->head = head;
    it->i = -1;
    it->s = it->end = NULL;
}

static int conn_next(conn_iter_t *it, const char **el, size_t *len)
{
    for (;;) {
        if (it->s && next_elem(&it->s, it->end, el, len))
            return 1;
        do
            it->i++;
        while (it->i < it->head->header_count && !is_connection(&it->head->headers[it->i]));
        if (it->i >= it->head->header_count)
            return 0;
        it->s = it->head->headers[it->i].value;
        it->end = it->s + it->head->headers[it->i].value_len;
    }
}

static void conn_opts(const px_http_head_t *head, conn_opts_t *o)
{
    conn_iter_t it;
    const char *el;
    size_t len;

    o->n = o->more = 0;
    conn_iter_init(&it, head);
    while (conn_next(&it, &el, &len)) {
        if (!len)
            continue;           /* names no header */
        if (o->n == CONN_OPTS) {
            o->more = 1;
            return;
        }
        o->name[o->n] = el;
        o->len[o->n++] = len;
    }
}

/* Whether h (of name class cls) is hop-by-hop: listed, or named by a
 * Connection option. */
static int is_hop(const px_http_head_t *head, const conn_opts_t *o, const px_header_t *h, unsigned cls)
{
    conn_iter_t it;
    const char *el;
    size_t len;
    int i;
    if (cls & HN_HOP)
        return 1;
    for (i = 0; i < o->n; i++)
        if (iequal(o->name[i], o->len[i], h->name, h->name_len))
            return 1;
    if (!o->more)
        return 0;
    conn_iter_init(&it, head);
    while (conn_next(&it, &el, &len))
        if (iequal(el, len, h->name, h->name_len))
            return 1;
    return 0;
}

static int dropped(const px_fwd_opts_t *o, const px_header_t *h)
{
    for (int i = 0; i < o->drop_count; i++)
        if (ieq(h->name, h->name_len, o->drop[i]))
            return 1;
    return 0;
}

static int put_extra(px_buf_t *out, const px_header_t *extra, int n)
{
    int i, rc;
    for (i = 0; i < n; i++)
        if ((rc = put_header(out, extra[i].name, extra[i].name_len, extra[i].value, extra[i].value_len)))
            return rc;
    return 0;
}

static int put_length(px_buf_t *out, uint64_t n)
{
    char digits[20], *d = px_u64_dec(digits + sizeof digits, n);
    const char *p[3] = { "Content-Length: ", d, "\r\n" };
    const size_t len[3] = { 16, (size_t)(digits + sizeof digits - d), 2 };
    return put_parts(out, p, len, 3);
}

/* Undoes a partial write so a failure leaves out as it was. */
static int rollback(px_buf_t *out, size_t mark, int rc)
{
    out->len = out->off + mark;
    return rc;
}

/* The walk of px_http1_request_fields: each field vetted, then sunk. */
typedef struct {
    px_field_sink_t sink;
    void *ud;
} walk_t;

static int emit(const walk_t *w, const char *name, size_t nlen, const char *value, size_t vlen)
{
    if (!is_token(name, nlen) || px_has_line_break(value, vlen))
        return PX_EINVAL;
    return w->sink(w->ud, name, nlen, value, vlen);
}

static int emit_z(const walk_t *w, const char *name, size_t nlen, const char *value)
{
    return emit(w, name, nlen, value, strlen(value));
}

static int request_line_ok(const px_http_head_t *head)
{
    return head->is_request && is_token(head->method, head->method_len) && head->target_len &&
           !memchr(head->target, ' ', head->target_len) && !memchr(head->target, '\r', head->target_len) &&
           !memchr(head->target, '\n', head->target_len);
}

static int walk_fields(const px_http_head_t *head, const px_fwd_opts_t *opts, const walk_t *w,
                       px_buf_t *xff)
{
    int rc, trusted = opts->trust_forwarded, have_xfp = 0, have_xfh = 0, have_rid = 0, nxff = 0;
    conn_opts_t conn;

    /* RFC 9112 3.2: an empty Host when there is no authority */
    if ((rc = emit(w, "Host", 4, head->host ? head->host : "", head->host_len)))
        return rc;
    conn_opts(head, &conn);
    for (int i = 0; i < head->header_count; i++) {
        const px_header_t *h = &head->headers[i];
        unsigned cls = name_class(h->name, h->name_len);
        if (is_hop(head, &conn, h, cls) || (cls & (HN_HOST | HN_CL)) || dropped(opts, h))
            continue;
        if (cls & HN_XFF) {
            if (!trusted)
                continue;
            if ((nxff++ && (rc = px_buf_append(xff, ", ", 2))) ||
                (rc = px_buf_append(xff, h->value, h->value_len)))
                return rc;
            continue;
        }
        if (cls & HN_FWD) {
            if (!trusted)
                continue;       /* the client's claims about itself */
            have_xfp |= !!(cls & HN_XFP);
            have_xfh |= !!(cls & HN_XFH);
        }
        if (cls & HN_RID) {
            if (!trusted)
                continue;
            have_rid = 1;
        }
        if ((rc = emit(w, h->name, h->name_len, h->value, h->value_len)))
            return rc;
    }

    if (nxff) {                 /* the incoming ones (trusted), then ours */
        if (opts->client_ip && ((rc = px_buf_append(xff, ", ", 2)) ||
                                (rc = px_buf_append(xff, opts->client_ip, strlen(opts->client_ip)))))
            return rc;
        if ((rc = emit(w, "X-Forwarded-For", 15, px_buf_ptr(xff), px_buf_size(xff))))
            return rc;
    } else if (opts->client_ip && (rc = emit_z(w, "X-Forwarded-For", 15, opts->client_ip))) {
        return rc;              /* the usual case: nothing to join, no buffer */
    }
    if (!have_xfp && opts->proto && (rc = emit_z(w, "X-Forwarded-Proto", 17, opts->proto)))
        return rc;
    if (!have_xfh && head->host_len &&
        (rc = emit(w, "X-Forwarded-Host", 16, head->host, head->host_len)))
        return rc;
    if (!have_rid && opts->request_id && (rc = emit_z(w, "X-Request-Id", 12, opts->request_id)))
        return rc;
    for (int i = 0; i < opts->extra_count; i++)
        if ((rc = emit(w, opts->extra[i].name, opts->extra[i].name_len, opts->extra[i].value,
                       opts->extra[i].value_len)))
            return rc;
    if (head->body == PX_BODY_LENGTH) {
        char digits[20], *d = px_u64_dec(digits + sizeof digits, head->content_length);
        return emit(w, "Content-Length", 14, d, (size_t)(digits + sizeof digits - d));
    }
    if (head->body == PX_BODY_CHUNKED)
        return emit(w, "Transfer-Encoding", 17, "chunked", 7);
    return head->body == PX_BODY_EOF ? PX_EINVAL : 0;   /* a request cannot be delimited by close */
}

/* The walk with its X-Forwarded-For scratch; the caller checked the line. */
static int walk(const px_http_head_t *head, const px_fwd_opts_t *opts, px_field_sink_t sink,
                void *ud)
{
    static const px_fwd_opts_t none;
    const walk_t w = { sink, ud };
    px_buf_t xff;
    int rc;

    px_buf_init(&xff, 0);
    rc = walk_fields(head, opts ? opts : &none, &w, &xff);
    px_buf_free(&xff);
    return rc;
}

int px_http1_request_fields(const px_http_head_t *head, const px_fwd_opts_t *opts,
                            px_field_sink_t sink, void *ud)
{
    return request_line_ok(head) ? walk(head, opts, sink, ud) : PX_EINVAL;
}

int px_http1_write_request_head(px_buf_t *out, const px_http_head_t *head,
                                const px_fwd_opts_t *opts)
{
    size_t mark = px_buf_size(out);
    const char *p[4] = { head->method, " ", head->target, " HTTP/1.1\r\n" };
    const size_t len[4] = { head->method_len, 1, head->target_len, 11 };
    int rc;

    if (!request_line_ok(head))
        return PX_EINVAL;
    if ((rc = put_parts(out, p, len, 4)) || (rc = walk(head, opts, put_line, out)) ||
        (rc = px_buf_append(out, "\r\n", 2)))
        return rollback(out, mark, rc);
    return 0;
}

/* The proxy's own fields replace the upstream's of the same name: a model
 * server cannot add a second X-Signature or Pqproxy-Model-Manifest. */
static int replaced(const px_header_t *extra, int n, const px_header_t *h)
{
    for (int i = 0; i < n; i++)
        if (iequal(extra[i].name, extra[i].name_len, h->name, h->name_len))
            return 1;
    return 0;
}

int px_http1_reason_ok(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 0;
    }
    return 1;
}

/* To an HTTP/1.0 client a chunked or close-delimited body cannot be chunked:
 * it goes out unframed (*chunked_out = 0) with "Connection: close", and the
 * caller closes the connection after the body. */
int px_http1_write_response_head(px_buf_t *out, const px_http_head_t *head, int client_minor,
                                 int keep_alive, const px_header_t *extra, int extra_count,
                                 int *chunked_out)
{
    size_t mark = px_buf_size(out);
    int i, rc, chunked = 0, interim = head->status < 200;
    conn_opts_t conn;
    /* no body, but not 204: a HEAD response or 304 keeps the representation's length */
    int keep_cl = head->body == PX_BODY_NONE && head->status >= 200 && head->status != 204;

    *chunked_out = 0;
    if (head->is_request || head->status < 100 || head->status > 999)
        return PX_EINVAL;
    {
        char code[3] = { (char)('0' + head->status / 100), (char)('0' + head->status / 10 % 10),
                         (char)('0' + head->status % 10) };     /* 100..999, checked above */
        const char *reason = px_http1_reason_ok(head->reason, head->reason_len)
                                 ? head->reason : px_http_status_phrase(head->status);
        size_t reason_len = reason == head->reason ? head->reason_len : strlen(reason);
        const char *p[5] = { "HTTP/1.1 ", code, " ", reason, "\r\n" };
        const size_t len[5] = { 9, 3, 1, reason_len, 2 };
        if ((rc = put_parts(out, p, len, 5)))
            goto fail;
    }
    conn_opts(head, &conn);
    for (i = 0; i < head->header_count; i++) {
        const px_header_t *h = &head->headers[i];
        unsigned cls = name_class(h->name, h->name_len);
        if (is_hop(head, &conn, h, cls) || (!keep_cl && (cls & HN_CL)) ||
            replaced(extra, extra_count, h))
            continue;
        if ((rc = put_header(out, h->name, h->name_len, h->value, h->value_len)))
            goto fail;
    }
    if ((rc = put_extra(out, extra, extra_count)))
        goto fail;
    rc = 0;
    if (!interim) {
        if (head->body == PX_BODY_LENGTH) {
            rc = put_length(out, head->content_length);
        } else if (head->body == PX_BODY_CHUNKED || head->body == PX_BODY_EOF) {
            if (client_minor >= 1) {
                rc = px_buf_append(out, "Transfer-Encoding: chunked\r\n", 28);
                chunked = 1;
            } else {
                keep_alive = 0;
            }
        }
        if (!rc && !keep_alive)
            rc = px_buf_append(out, "Connection: close\r\n", 19);
        else if (!rc && client_minor == 0)
            rc = px_buf_append(out, "Connection: keep-alive\r\n", 24);
    }
    if (rc || (rc = px_buf_append(out, "\r\n", 2)))
        goto fail;
    *chunked_out = chunked;
    return 0;
fail:
    return rollback(out, mark, rc);
}

int px_http1_chunk_begin(px_buf_t *out, size_t n) { return px_buf_printf(out, "%zx\r\n", n); }

int px_http1_chunk_end(px_buf_t *out) { return px_buf_append(out, "\r\n", 2); }

int px_http1_chunk_last(px_buf_t *out) { return px_buf_append(out, "0\r\n\r\n", 5); }

/* Fields that must not arrive after the content (RFC 9110 6.5.1: framing,
 * routing, request modifiers, authentication, response control data,
 * content handling): a recipient that merges trailers into the head would
 * let a late one override what the head said. In a request also the fields
 * a signature is checked by: the model server must not take a late one for
 * what the proxy verified. One switch on the length, as name_class: every
 * gRPC response's trailers pass here. */
static int late_field(const char *n, size_t len, int request)
{
    switch (len) {
    case 3:  return lit_eq(n, "age", 3);
    case 4:  return lit_eq(n, "date", 4) || lit_eq(n, "vary", 4);
    case 5:  return lit_eq(n, "range", 5);
    case 6:  return lit_eq(n, "cookie", 6) || lit_eq(n, "expect", 6) || lit_eq(n, "pragma", 6);
    case 7:  return lit_eq(n, "expires", 7);
    case 8:  return lit_eq(n, "location", 8);
    case 9:  return request && lit_eq(n, "signature", 9);
    case 10: return lit_eq(n, "set-cookie", 10);
    case 11: return lit_eq(n, "retry-after", 11) || (request && lit_eq(n, "x-signature", 11));
    case 12: return lit_eq(n, "content-type", 12) || lit_eq(n, "max-forwards", 12);
    case 13: return lit_eq(n, "authorization", 13) || lit_eq(n, "cache-control", 13) ||
                    lit_eq(n, "content-range", 13);
    case 14: return request && lit_eq(n, "content-digest", 14);
    case 15: return request && lit_eq(n, "signature-input", 15);
    case 16: return lit_eq(n, "content-encoding", 16) || lit_eq(n, "www-authenticate", 16);
    case 18: return lit_eq(n, "proxy-authenticate", 18);
    case 19: return lit_eq(n, "proxy-authorization", 19);
    default: return 0;
    }
}

int px_http1_trailer_ok(const char *name, size_t nlen, const char *value, size_t vlen, int request)
{
    if (!is_token(name, nlen) || px_has_line_break(value, vlen))
        return 0;
    return !name_class(name, nlen) && !(nlen >= 3 && lit_eq(name, "if-", 3)) &&
           !(nlen >= 8 && lit_eq(name, "pqproxy-", 8)) && !late_field(name, nlen, request);
}

int px_http1_write_last_chunk(px_buf_t *out, const px_header_t *t, int n, int request, int *dropped)
{
    size_t at = px_buf_size(out);
    int rc = px_buf_append(out, "0\r\n", 3);

    *dropped = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        if (!px_http1_trailer_ok(t[i].name, t[i].name_len, t[i].value, t[i].value_len, request)) {
            ++*dropped;
            continue;
        }
        rc = put_header(out, t[i].name, t[i].name_len, t[i].value, t[i].value_len);
    }
    if (rc == 0)
        rc = px_buf_append(out, "\r\n", 2);
    return rc ? rollback(out, at, rc) : 0;
}

const px_header_t *px_http_head_get(const px_http_head_t *head, const char *name)
{
    size_t n = strlen(name);
    int i;
    for (i = 0; i < head->header_count; i++)
        if (iequal(head->headers[i].name, head->headers[i].name_len, name, n))
            return &head->headers[i];
    return NULL;
}
