/* Protocol-neutral message head (msg.h). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/msg.h"

void px_msg_init(px_msg_t *m, size_t max_bytes, int max_fields)
{
    memset(m, 0, sizeof *m);
    m->max_bytes = max_bytes;
    m->max_fields = max_fields;
    m->content_length = -1;
    m->trailer_at = -1;
}

void px_msg_free(px_msg_t *m)
{
    free(m->mem);
    free(m->fields);
    px_msg_init(m, m->max_bytes, m->max_fields);
}

void px_msg_reset(px_msg_t *m)
{
    m->status = 0;
    m->content_length = -1;
    m->end_stream = 0;
    m->used = 0;
    m->nfields = 0;
    m->trailer_at = -1;
    memset(m->pseudo, 0, sizeof m->pseudo);
}

void px_msg_set_limit(px_msg_t *m, size_t max_bytes)
{
    m->max_bytes = max_bytes;
}

void px_msg_recycle(px_msg_t *m, size_t keep)
{
    if (m->cap > keep || (size_t)m->fcap * sizeof *m->fields > keep)
        px_msg_free(m);
    else
        px_msg_reset(m);
}

/* Copies s (plus a NUL) into the arena: its offset, or -1 with *err. */
static int64_t store(px_msg_t *m, const char *s, size_t n, int *err)
{
    size_t need = m->used + n + 1;
    int64_t off = (int64_t)m->used;

    if (n > UINT32_MAX || need > m->max_bytes || need > UINT32_MAX) {
        *err = PX_ETOOBIG;
        return -1;
    }
    if (need > m->cap) {
        size_t cap = m->cap ? m->cap : 256;
        char *p;
        while (cap < need)
            cap *= 2;
        if (cap > m->max_bytes)
            cap = m->max_bytes;
        if (!(p = realloc(m->mem, cap))) {
            *err = PX_ENOMEM;
            return -1;
        }
        m->mem = p;
        m->cap = cap;
    }
    if (n)
        memcpy(m->mem + m->used, s, n);
    m->mem[m->used + n] = '\0';
    m->used = need;
    return off;
}

int px_msg_set(px_msg_t *m, px_msg_pseudo_t which, const char *v, size_t n)
{
    int err = 0;
    int64_t off = store(m, v, n, &err);

    if (off < 0)
        return err;
    m->pseudo[which][0] = (uint32_t)off;
    m->pseudo[which][1] = (uint32_t)n;
    return 0;
}

static px_str_t at(const px_msg_t *m, uint32_t off, uint32_t n)
{
    px_str_t s = { n ? m->mem + off : "", n };
    return s;
}

px_str_t px_msg_get(const px_msg_t *m, px_msg_pseudo_t which)
{
    return at(m, m->pseudo[which][0], m->pseudo[which][1]);
}

int px_msg_add(px_msg_t *m, const char *name, size_t nlen, const char *value, size_t vlen)
{
    size_t used = m->used;
    int64_t no, vo;
    int err = 0;

    if (m->nfields >= m->max_fields)
        return PX_ETOOBIG;
    if (m->nfields == m->fcap) {
        int cap = m->fcap ? m->fcap * 2 : 16;
        px_msg_field_t *f;
        if (cap > m->max_fields)
            cap = m->max_fields;
        if (!(f = realloc(m->fields, (size_t)cap * sizeof *f)))
            return PX_ENOMEM;
        m->fields = f;
        m->fcap = cap;
    }
    if ((no = store(m, name, nlen, &err)) < 0 || (vo = store(m, value, vlen, &err)) < 0) {
        m->used = used;                   /* all or nothing */
        return err;
    }
    m->fields[m->nfields++] = (px_msg_field_t){ (uint32_t)no, (uint32_t)nlen, (uint32_t)vo,
                                                (uint32_t)vlen };
    return 0;
}

void px_msg_begin_trailers(px_msg_t *m)
{
    if (m->trailer_at < 0)
        m->trailer_at = m->nfields;
}

int px_msg_header_count(const px_msg_t *m)
{
    return m->trailer_at < 0 ? m->nfields : m->trailer_at;
}

int px_msg_trailer_count(const px_msg_t *m)
{
    return m->trailer_at < 0 ? 0 : m->nfields - m->trailer_at;
}

px_str_t px_msg_header_name(const px_msg_t *m, int i)
{
    return at(m, m->fields[i].name, m->fields[i].name_len);
}

px_str_t px_msg_header_value(const px_msg_t *m, int i)
{
    return at(m, m->fields[i].value, m->fields[i].value_len);
}

px_str_t px_msg_trailer_name(const px_msg_t *m, int i)
{
    return px_msg_header_name(m, m->trailer_at + i);
}

px_str_t px_msg_trailer_value(const px_msg_t *m, int i)
{
    return px_msg_header_value(m, m->trailer_at + i);
}

px_str_t px_msg_find(const px_msg_t *m, const char *name)
{
    size_t n = strlen(name);

    for (int i = 0; i < px_msg_header_count(m); i++) {
        px_str_t k = px_msg_header_name(m, i);
        if (k.n == n && strncasecmp(k.p, name, n) == 0)
            return px_msg_header_value(m, i);
    }
    return (px_str_t){ NULL, 0 };
}

size_t px_msg_size(const px_msg_t *m)
{
    return m->used;
}
