/* HTTP/2 request head -> HTTP/1.1 request head (h2_translate.h). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <llhttp.h>

#include "http/h2_fields.h"
#include "http/h2_translate.h"

/* s is the string literal lit */
#define is(s, lit) ((s).n == sizeof(lit) - 1 && memcmp((s).p, (lit), sizeof(lit) - 1) == 0)

/* The methods the upstream's parser (and ours, llhttp) reads. */
static int known_method(px_str_t m)
{
    static const struct { const char *s; size_t n; } names[] = {
#define XX(num, name, string) { #string, sizeof #string - 1 },
        HTTP_METHOD_MAP(XX)
#undef XX
    };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (m.n == names[i].n && memcmp(m.p, names[i].s, m.n) == 0)
            return 1;
    return 0;
}

static int lower_token(px_str_t s)
{
    for (size_t i = 0; i < s.n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (!c || px_tchar[c] != c)       /* not a token, or upper case */
            return 0;
    }
    return s.n > 0;
}

static int method_token(px_str_t s)
{
    for (size_t i = 0; i < s.n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (!((c >= 'A' && c <= 'Z') || c == '-'))
            return 0;
    }
    return s.n > 0;
}

/* RFC 9110 field-value: no control byte but HTAB, no surrounding whitespace. */
static int good_value(px_str_t v)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    size_t i = 0;

    for (; i + 8 <= v.n; i += 8) {      /* eight bytes at a time until one is < 0x20 or DEL */
        uint64_t w, d;
        memcpy(&w, v.p + i, 8);
        d = w ^ (0x7f * ones);
        if (((w - 0x20 * ones) & ~w & highs) || ((d - ones) & ~d & highs))
            break;
    }
    for (; i < v.n; i++) {
        unsigned char c = (unsigned char)v.p[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 0;
    }
    return !v.n || (v.p[0] != ' ' && v.p[0] != '\t' && v.p[v.n - 1] != ' ' && v.p[v.n - 1] != '\t');
}

/* Origin form only: "*" (OPTIONS) and absolute form have no place in an
 * HTTP/2 request to a reverse proxy; a fragment is never sent. */
static int good_path(px_str_t p)
{
    if (!p.n || p.p[0] != '/')
        return 0;
    for (size_t i = 0; i < p.n; i++)
        if ((unsigned char)p.p[i] <= 0x20 || (unsigned char)p.p[i] >= 0x7f || p.p[i] == '#')
            return 0;
    return 1;
}

/* reg-name, IP literal, port: what http1.c accepts in Host; no userinfo. */
static int good_authority(px_str_t a)
{
    for (size_t i = 0; i < a.n; i++) {
        unsigned char c = (unsigned char)a.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (c && strchr("-._~!$&'()*+,;=:[]%", c))))
            return 0;
    }
    return a.n > 0;
}

/* 1 to 19 digits (no overflow); -1 otherwise. */
static int64_t parse_length(px_str_t v)
{
    int64_t n = 0;
    if (!v.n || v.n > 18)
        return -1;
    for (size_t i = 0; i < v.n; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return -1;
        n = n * 10 + (v.p[i] - '0');
    }
    return n;
}

#define FAIL(e, d)                       \
    do {                                 \
        *detail = (d);                   \
        return 1 + PX_HERR_##e;          \
    } while (0)

/* Every check that needs no allocation; sets *cl and *auth. */
static int vet(const px_msg_t *m, uint64_t max_body_bytes, int64_t *cl, px_str_t *auth,
               const char **detail)
{
    px_str_t method = px_msg_get(m, PX_MSG_METHOD), path = px_msg_get(m, PX_MSG_PATH),
             scheme = px_msg_get(m, PX_MSG_SCHEME);
    int n = px_msg_header_count(m);

    *auth = px_msg_get(m, PX_MSG_AUTHORITY);
    *cl = -1;
    if (!method_token(method))
        FAIL(BAD_REQUEST, "invalid :method");
    if (is(method, "CONNECT"))
        FAIL(METHOD_NOT_ALLOWED, "CONNECT is not supported");
    if (!known_method(method) || is(method, "PRI"))
        FAIL(NOT_IMPLEMENTED, "unknown :method");
    if (!good_path(path))
        FAIL(BAD_REQUEST, "invalid :path (origin form only)");
    if (scheme.n && !is(scheme, "https") && !is(scheme, "http"))
        FAIL(BAD_REQUEST, "invalid :scheme");
    for (int i = 0; i < n; i++) {
        px_str_t a = px_msg_header_name(m, i), b = px_msg_header_value(m, i);
        if (!lower_token(a) || !good_value(b)) {    /* both refuse CR, LF and NUL: say so */
            if (px_has_line_break(a.p, a.n) || px_has_line_break(b.p, b.n))
                FAIL(BAD_REQUEST, "a field carries CR, LF or NUL");
            if (!lower_token(a))
                FAIL(BAD_REQUEST, "a field name is not a lowercase token");
            FAIL(BAD_REQUEST, "invalid field value");
        }
        if (px_h2_connection_specific(a.p, a.n))
            FAIL(BAD_REQUEST, "connection-specific field in an HTTP/2 request");
        if (is(a, "te") && !is(b, "trailers"))
            FAIL(BAD_REQUEST, "te other than trailers");
        if (is(a, "host")) {
            if (!auth->n)
                *auth = b;          /* RFC 9113 8.3.1: without :authority, Host is it */
            else if (auth->n != b.n || strncasecmp(auth->p, b.p, b.n))
                FAIL(BAD_REQUEST, "host differs from :authority");
        }
        if (is(a, "content-length")) {
            int64_t v = parse_length(b);
            if (v < 0 || (*cl >= 0 && v != *cl))
                FAIL(BAD_REQUEST, "invalid content-length");
            *cl = v;
        }
    }
    if (!good_authority(*auth))
        FAIL(BAD_REQUEST, "missing or invalid :authority");
    if (m->content_length != *cl)
        FAIL(BAD_REQUEST, "invalid content-length");
    if (m->end_stream && *cl > 0)
        FAIL(BAD_REQUEST, "content-length disagrees with the body");
    if (max_body_bytes && *cl >= 0 && (uint64_t)*cl > max_body_bytes)
        FAIL(BODY_TOO_LARGE, "the request body is larger than http.max_body_bytes");
    return 0;
}

#undef FAIL

int px_h2_translate(const px_msg_t *m, uint64_t max_body_bytes, px_h2_req_t *r, const char **detail)
{
    px_str_t method = px_msg_get(m, PX_MSG_METHOD), path = px_msg_get(m, PX_MSG_PATH), auth;
    int n = px_msg_header_count(m), k = 0, have_cookie = 0, err;
    size_t need, cookie_len = 0, off = 0;
    int64_t cl;
    px_header_t *f;
    char *cookie = NULL;

    memset(&r->head, 0, sizeof r->head);
    /* a refused request still gets its head built: the exchange logs it */
    err = vet(m, max_body_bytes, &cl, &auth, detail);
    need = method.n + path.n + auth.n + 3;
    for (int i = 0; i < n; i++) {
        px_str_t a = px_msg_header_name(m, i), b = px_msg_header_value(m, i);
        need += a.n + b.n + 2;
        if (is(a, "cookie")) {
            cookie_len += (have_cookie ? 2 : 0) + b.n;
            have_cookie = 1;
        }
    }
    need += cookie_len + 1;
    if (need > r->mem_cap) {
        char *p = realloc(r->mem, need);
        if (!p)
            return PX_ENOMEM;
        r->mem = p;
        r->mem_cap = need;
    }
    if ((size_t)n + 1 > r->fields_cap) {
        px_header_t *p = realloc(r->fields, ((size_t)n + 1) * sizeof *p);
        if (!p)
            return PX_ENOMEM;
        r->fields = p;
        r->fields_cap = (size_t)n + 1;
    }
    f = r->fields;
#define COPY(dst, dlen, s)                                \
    do {                                                  \
        memcpy(r->mem + off, (s).p, (s).n);               \
        r->mem[off + (s).n] = '\0';                       \
        (dst) = r->mem + off;                             \
        (dlen) = (s).n;                                   \
        off += (s).n + 1;                                 \
    } while (0)
    COPY(r->head.method, r->head.method_len, method);
    COPY(r->head.target, r->head.target_len, path);
    COPY(r->head.host, r->head.host_len, auth);
    if (have_cookie) {
        cookie = r->mem + off;
        off += cookie_len + 1;
        cookie[0] = '\0';
    }
    for (int i = 0; i < n; i++) {
        px_str_t a = px_msg_header_name(m, i), b = px_msg_header_value(m, i);
        if (is(a, "cookie")) {      /* RFC 9113 8.2.3: one field for HTTP/1.1 */
            size_t at = strlen(cookie);
            if (at)
                memcpy(cookie + at, "; ", 3), at += 2;
            memcpy(cookie + at, b.p, b.n);
            cookie[at + b.n] = '\0';
            continue;
        }
        COPY(f[k].name, f[k].name_len, a);
        COPY(f[k].value, f[k].value_len, b);
        k++;
    }
#undef COPY
    if (have_cookie)
        f[k++] = (px_header_t){ "cookie", 6, cookie, strlen(cookie) };
    r->head.is_request = 1;
    r->head.http_minor = 1;
    r->head.headers = f;
    r->head.header_count = k;
    r->head.keep_alive = 1;
    if (m->end_stream) {
        r->head.body = PX_BODY_NONE;
    } else if (cl >= 0) {
        r->head.body = PX_BODY_LENGTH;
        r->head.content_length = (uint64_t)cl;
    } else {
        r->head.body = PX_BODY_CHUNKED;     /* length unknown: chunked towards the upstream */
    }
    return err;
}

void px_h2_req_free(px_h2_req_t *r)
{
    free(r->fields);
    free(r->mem);
    memset(r, 0, sizeof *r);
}

void px_h2_req_recycle(px_h2_req_t *r, size_t keep)
{
    if (r->mem_cap > keep || r->fields_cap * sizeof *r->fields > keep)
        px_h2_req_free(r);
    else
        memset(&r->head, 0, sizeof r->head);
}
