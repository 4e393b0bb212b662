/* HTTP/2 field vetting and conversion (h2_fields.h). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/errors.h"
#include "http/h2_fields.h"
#include "http/http1.h"

/* p[0..n) is the string literal lit */
#define is(p, n, lit) ((n) == sizeof(lit) - 1 && memcmp((p), (lit), sizeof(lit) - 1) == 0)
#define is_ci(p, n, lit) ((n) == sizeof(lit) - 1 && strncasecmp((p), (lit), sizeof(lit) - 1) == 0)

/* On every field of every head: by length first. */
int px_h2_connection_specific(const char *name, size_t n)
{
    switch (n) {
    case 7:  return is_ci(name, n, "upgrade");
    case 10: return is_ci(name, n, "connection") || is_ci(name, n, "keep-alive");
    case 16: return is_ci(name, n, "proxy-connection");
    case 17: return is_ci(name, n, "transfer-encoding");
    default: return 0;
    }
}

static uint32_t pseudo(px_msg_t *m, const uint8_t *name, size_t nlen, const char *v, size_t vlen)
{
    px_msg_pseudo_t which;

    if (is(name, nlen, ":method"))
        which = PX_MSG_METHOD;
    else if (is(name, nlen, ":scheme"))
        which = PX_MSG_SCHEME;
    else if (is(name, nlen, ":authority"))
        which = PX_MSG_AUTHORITY;
    else if (is(name, nlen, ":path"))
        which = PX_MSG_PATH;
    else        /* nghttp2 refuses every other pseudo-header (:status,
                 * :protocol without extended CONNECT) before we see it */
        return NGHTTP2_PROTOCOL_ERROR;
    return px_msg_set(m, which, v, vlen) ? NGHTTP2_ENHANCE_YOUR_CALM : 0;
}

uint32_t px_h2_field_in(px_h2_fields_t *f, const uint8_t *name, size_t nlen, const uint8_t *value,
                        size_t vlen)
{
    const char *v = (const char *)value;
    px_msg_t *m = f->msg;

    f->list_size += nlen + vlen + 32;
    if (f->list_size > f->max_list)
        return NGHTTP2_ENHANCE_YOUR_CALM;
    if (nlen && name[0] == ':')
        return f->trailers ? NGHTTP2_PROTOCOL_ERROR : pseudo(m, name, nlen, v, vlen);
    if (f->trailers) {
        /* framing and routing fields must not arrive late: an HTTP/1.1
         * upstream that merges trailers would see a second head */
        if (is(name, nlen, "content-length") || is(name, nlen, "host") ||
            is(name, nlen, "te") || is(name, nlen, "trailer"))
            return NGHTTP2_PROTOCOL_ERROR;
    } else if (is(name, nlen, "host")) {
        px_str_t a = px_msg_get(m, PX_MSG_AUTHORITY);
        /* RFC 9113 8.3.1: Host and :authority must name the same thing;
         * without :authority, Host is the authority */
        if (a.n)
            return a.n == vlen && strncasecmp(a.p, v, vlen) == 0 ? 0 : NGHTTP2_PROTOCOL_ERROR;
        return px_msg_set(m, PX_MSG_AUTHORITY, v, vlen) ? NGHTTP2_ENHANCE_YOUR_CALM : 0;
    } else if (is(name, nlen, "content-length")) {
        int64_t cl = 0;
        /* nghttp2 has checked the digits and refused a second value */
        for (size_t i = 0; i < vlen; i++)
            cl = cl * 10 + (v[i] - '0');
        m->content_length = cl;
    }
    return px_msg_add(m, (const char *)name, nlen, v, vlen) ? NGHTTP2_ENHANCE_YOUR_CALM : 0;
}

/* Lays out *nv for count fields and :status (status > 0) with arena room
 * for names of `bytes` in total; returns the arena after the status. */
static char *nv_begin(px_buf_t *scratch, int count, size_t bytes, int status, nghttp2_nv **nv, size_t *k)
{
    char *arena;
    px_buf_reset(scratch);
    if (!(*nv = (nghttp2_nv *)px_buf_reserve(scratch, (size_t)(count + 1) * sizeof **nv + bytes + 4)))
        return NULL;
    arena = (char *)(*nv + count + 1);
    *k = 0;
    if (status) {
        arena[0] = (char)('0' + status / 100);
        arena[1] = (char)('0' + status / 10 % 10);
        arena[2] = (char)('0' + status % 10);
        (*nv)[(*k)++] = (nghttp2_nv){ (uint8_t *)":status", (uint8_t *)arena, 7, 3, NGHTTP2_NV_FLAG_NONE };
        arena += 4;
    }
    return arena;
}

/* One field into nv[*k] (its name lowered into *arena), or none when
 * HTTP/2 forbids it; -1 when it cannot be forwarded at all. */
static int nv_put(nghttp2_nv *nv, size_t *k, char **arena, const char *name, size_t nlen, const char *val,
                  size_t vlen)
{
    char *a = *arena;
    if (!nlen)
        return -1;
    for (size_t j = 0; j < nlen; j++)
        if (!(a[j] = (char)px_tchar[(unsigned char)name[j]]))
            return -1;
    if (px_has_line_break(val, vlen))
        return -1;
    if (px_h2_connection_specific(name, nlen) || is_ci(name, nlen, "te"))
        return 0;
    nv[(*k)++] = (nghttp2_nv){ (uint8_t *)a, (uint8_t *)val, nlen, vlen, NGHTTP2_NV_FLAG_NONE };
    *arena = a + nlen;
    return 0;
}

int px_h2_fields_out(const px_msg_t *m, int trailers, px_buf_t *scratch, nghttp2_nv **nva, size_t *n)
{
    int first = trailers ? px_msg_header_count(m) : 0;
    int count = trailers ? px_msg_trailer_count(m) : px_msg_header_count(m);
    size_t bytes = 0, k;
    nghttp2_nv *nv;
    char *arena;

    *nva = NULL;
    *n = 0;
    if (!trailers && (m->status < 100 || m->status > 999))
        return PX_EPARSE;
    for (int i = 0; i < count; i++)
        bytes += px_msg_header_name(m, first + i).n;
    if (!(arena = nv_begin(scratch, count, bytes, trailers ? 0 : m->status, &nv, &k)))
        return PX_ENOMEM;
    for (int i = 0; i < count; i++) {
        px_str_t name = px_msg_header_name(m, first + i), val = px_msg_header_value(m, first + i);
        if (nv_put(nv, &k, &arena, name.p, name.n, val.p, val.n) < 0)
            return PX_EPARSE;
    }
    *nva = nv;
    *n = k;
    return 0;
}

int px_h2_head_nv(int status, const px_header_t *f, int count, px_buf_t *scratch, nghttp2_nv **nva,
                  size_t *n)
{
    size_t bytes = 0, k;
    nghttp2_nv *nv;
    char *arena;

    *nva = NULL;
    *n = 0;
    if (status < 100 || status > 999)
        return PX_EPARSE;
    for (int i = 0; i < count; i++)
        bytes += f[i].name_len;
    if (!(arena = nv_begin(scratch, count, bytes, status, &nv, &k)))
        return PX_ENOMEM;
    for (int i = 0; i < count; i++)
        if (nv_put(nv, &k, &arena, f[i].name, f[i].name_len, f[i].value, f[i].value_len) < 0)
            return PX_EPARSE;
    *nva = nv;
    *n = k;
    return 0;
}
