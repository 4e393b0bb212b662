#include "core/buf.h"
#include "core/errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void px_buf_init(px_buf_t *b, size_t max)
{
    memset(b, 0, sizeof *b);
    b->max = max;
}

void px_buf_free(px_buf_t *b)
{
    free(b->data);
    px_buf_init(b, b->max);
}

void px_buf_reset(px_buf_t *b)
{
    b->off = b->len = 0;
}

void px_buf_recycle(px_buf_t *b, size_t keep)
{
    if (b->cap > keep)
        px_buf_free(b);
    else
        px_buf_reset(b);
}

void px_buf_consume(px_buf_t *b, size_t n)
{
    if (n >= b->len - b->off)
        b->off = b->len = 0;
    else
        b->off += n;
}

char *px_buf_reserve(px_buf_t *b, size_t n)
{
    size_t need;
    if (b->max && b->len - b->off + n > b->max)
        return NULL;
    if (b->off && b->len + n > b->cap) {        /* reclaim the consumed prefix first */
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
    need = b->len + n;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *p;
        while (cap < need)
            cap *= 2;
        if (b->max && cap > b->max)
            cap = need > b->max ? need : b->max;
        p = realloc(b->data, cap);
        if (!p)
            return NULL;
        b->data = p;
        b->cap = cap;
    }
    return b->data + b->len;
}

char *px_buf_space(px_buf_t *b, size_t min, size_t *avail)
{
    char *p = b->cap - b->len >= min ? b->data + b->len : px_buf_reserve(b, min);
    if (!p)
        return NULL;
    *avail = b->cap - b->len;
    if (b->max && *avail > b->max - (b->len - b->off))
        *avail = b->max - (b->len - b->off);
    return p;
}

void px_buf_commit(px_buf_t *b, size_t n)
{
    b->len += n;
}

int px_buf_append(px_buf_t *b, const void *p, size_t n)
{
    char *dst;
    if (n == 0)
        return 0;
    if (b->max && b->len - b->off + n > b->max)
        return PX_ETOOBIG;
    dst = px_buf_reserve(b, n);
    if (!dst)
        return PX_ENOMEM;
    memcpy(dst, p, n);
    b->len += n;
    return 0;
}

int px_buf_printf(px_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    char tmp[512];
    int n;
    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return PX_EINVAL;
    if ((size_t)n < sizeof tmp)
        return px_buf_append(b, tmp, (size_t)n);
    {
        char *big = malloc((size_t)n + 1);
        int rc;
        if (!big)
            return PX_ENOMEM;
        va_start(ap, fmt);
        vsnprintf(big, (size_t)n + 1, fmt, ap);
        va_end(ap);
        rc = px_buf_append(b, big, (size_t)n);
        free(big);
        return rc;
    }
}
