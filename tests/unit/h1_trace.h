/* Test helper: drives a px_http1 parser the way a connection does (a read
 * buffer that receives `step` bytes at a time and is parsed until the parser
 * needs more) and renders everything it reports as one string, so a test can
 * compare a whole exchange exactly and independently of how input was split:
 *
 *   <head>   a head (see h1_head_str), "!" after it when interim
 *   bytes    body bytes, verbatim
 *   |        end of message
 *   #NAME    error, with px_http_error_str()
 */
#ifndef H1_TRACE_H
#define H1_TRACE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http1.h"

typedef struct {
    char log[16384];
    size_t len;
    int heads, ends, bodies;
    int error;                 /* PX_H1_ERROR seen */
    px_http_error_t err;
    const char *detail;
    int head_before_error;     /* a PX_H1_HEAD of the failing message came out */
} h1_trace_t;

static inline void h1_logn(h1_trace_t *t, const char *s, size_t n)
{
    if (t->len + n >= sizeof t->log)
        n = sizeof t->log - 1 - t->len;
    memcpy(t->log + t->len, s, n);
    t->len += n;
    t->log[t->len] = '\0';
}

static inline void h1_log(h1_trace_t *t, const char *s) { h1_logn(t, s, strlen(s)); }

/* "GET /p host=h 1.1 ka=1 exp=0 L5 [Name: value]..." or "200 OK 1.1 ka=1 N ..." */
static inline void h1_head_str(const px_http_head_t *h, char *out, size_t cap)
{
    static const char kinds[] = "NLCE";
    size_t n;
    int i;
    if (h->is_request)
        n = (size_t)snprintf(out, cap, "%.*s %.*s host=%.*s 1.%d ka=%d exp=%d %c%llu", (int)h->method_len,
                             h->method, (int)h->target_len, h->target, (int)h->host_len,
                             h->host ? h->host : "", h->http_minor, h->keep_alive, h->expect_continue,
                             kinds[h->body], (unsigned long long)h->content_length);
    else
        n = (size_t)snprintf(out, cap, "%d %.*s 1.%d ka=%d %c%llu", h->status, (int)h->reason_len, h->reason,
                             h->http_minor, h->keep_alive, kinds[h->body],
                             (unsigned long long)h->content_length);
    for (i = 0; i < h->header_count && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, " [%.*s: %.*s]", (int)h->headers[i].name_len,
                              h->headers[i].name, (int)h->headers[i].value_len, h->headers[i].value);
}

/* Parses what is buffered; returns 0 when more input is needed, -1 on error. */
static inline int h1_pump(px_http1_t *p, char *rb, size_t *rlen, h1_trace_t *t, int *in_msg)
{
    for (;;) {
        size_t used = 0, dlen = 0;
        const char *data = NULL;
        char hs[4096];
        px_h1_event_t ev = px_http1_parse(p, rb, *rlen, &used, &data, &dlen);
        if (used > *rlen || (ev == PX_H1_NEED_MORE && used != *rlen))
            abort();                /* NEED_MORE means everything was used */
        if (ev == PX_H1_BODY) {     /* body bytes point into rb: take them first */
            t->bodies++;
            h1_logn(t, data, dlen);
        }
        memmove(rb, rb + used, *rlen - used);
        *rlen -= used;
        switch (ev) {
        case PX_H1_NEED_MORE:
            return 0;
        case PX_H1_HEAD:
            t->heads++;
            *in_msg = 1;
            h1_head_str(px_http1_head(p), hs, sizeof hs);
            h1_log(t, "<");
            h1_log(t, hs);
            h1_log(t, px_http1_is_interim(p) ? ">!" : ">");
            break;
        case PX_H1_BODY:
            break;
        case PX_H1_END:
            t->ends++;
            *in_msg = 0;
            h1_log(t, "|");
            break;
        case PX_H1_ERROR:
            t->error = 1;
            t->err = px_http1_error(p, &t->detail);
            t->head_before_error = *in_msg;
            h1_log(t, "#");
            h1_log(t, px_http_error_str(t->err));
            return -1;
        }
    }
}

/* Feeds in[0..len) step bytes at a time; with finish, ends with px_http1_finish(). */
static inline void h1_run(px_http1_t *p, const char *in, size_t len, size_t step, int finish, h1_trace_t *t)
{
    char *rb = malloc(len + 1);
    size_t rlen = 0, off = 0;
    int in_msg = 0;
    memset(t, 0, sizeof *t);
    if (!step)
        step = len ? len : 1;
    while (off < len) {
        size_t n = len - off < step ? len - off : step;
        memcpy(rb + rlen, in + off, n);
        rlen += n;
        off += n;
        if (h1_pump(p, rb, &rlen, t, &in_msg) < 0)
            goto out;
    }
    if (h1_pump(p, rb, &rlen, t, &in_msg) < 0)
        goto out;
    if (finish) {
        px_h1_event_t ev = px_http1_finish(p);
        if (ev == PX_H1_END) {
            t->ends++;
            h1_log(t, "|");
        } else if (ev == PX_H1_ERROR) {
            t->error = 1;
            t->err = px_http1_error(p, &t->detail);
            t->head_before_error = in_msg;
            h1_log(t, "#");
            h1_log(t, px_http_error_str(t->err));
        }
    }
out:
    free(rb);
}

/* One-shot: a new parser, the whole input, the trace. */
static inline void h1_parse_all(int is_request, const px_http1_limits_t *lim, const char *in, size_t len,
                                size_t step, int finish, h1_trace_t *t)
{
    px_http1_t *p = px_http1_new(is_request, lim);
    if (!p)
        abort();
    h1_run(p, in, len, step, finish, t);
    px_http1_free(p);
}

#endif
