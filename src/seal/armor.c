/* age's ASCII armour (armor.h). */
#include "seal/armor.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sig/sigwire.h"

#define COLS  64
#define BYTES 48          /* what a full line encodes */
#define LINE  (COLS + 16) /* longest line read before it is refused */

typedef enum { R_BEGIN, R_BODY, R_DONE, R_FAILED } rstate_t;

typedef struct {
    FILE *in;
    char *err;
    size_t errlen;
    rstate_t state;
    int short_seen;       /* the last line was shorter than 64: END must follow */
    unsigned long lineno;
    uint8_t buf[BYTES];
    size_t off, len;
} reader_t;

static int is_ws(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int px_armor_detect(FILE *in)
{
    int c;
    while ((c = getc(in)) != EOF && is_ws(c))
        ;
    if (c == EOF)
        return 0;
    ungetc(c, in);
    return c == '-';
}

static int fail(reader_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(reader_t *r, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(r->err, r->errlen, "armor: ");
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < r->errlen)
        vsnprintf(r->err + n, r->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    r->state = R_FAILED;
    errno = EBADMSG;
    return -1;
}

/* The next line of in without its LF or CRLF into line (LINE + 1 bytes):
 * its length, or -1 when it is too long; *eol says whether a LF ended it. */
static long get_line(reader_t *r, char *line, int *eol)
{
    size_t n = 0;
    int c;
    *eol = 0;
    r->lineno++;
    while ((c = getc(r->in)) != EOF) {
        if (c == '\n') {
            *eol = 1;
            break;
        }
        if (n == LINE)
            return -1;
        line[n++] = (char)c;
    }
    /* CRLF; a CR at the very end of the input is whitespace after the END line */
    if (n && line[n - 1] == '\r')
        n--;
    line[n] = '\0';
    return (long)n;
}

/* line (n bytes, n < 0 for an over-long one) is exactly lit; length-aware,
 * so that a NUL inside the line does not end the comparison early. */
static int line_is(const char *line, long n, const char *lit)
{
    return n >= 0 && (size_t)n == strlen(lit) && !memcmp(line, lit, (size_t)n);
}

/* After the END line: only whitespace may follow. */
static int drain(reader_t *r)
{
    int c;
    while ((c = getc(r->in)) != EOF)
        if (!is_ws(c))
            return fail(r, "data after the END line");
    if (ferror(r->in))
        return fail(r, "read error on the input");
    r->state = R_DONE;
    return 0;
}

/* Decodes the next line into r->buf, or moves to R_DONE / R_FAILED. */
static int next_line(reader_t *r)
{
    char line[LINE + 1];
    int eol;
    long n = get_line(r, line, &eol), got;

    if (ferror(r->in))
        return fail(r, "read error on the input");
    if (r->state == R_BEGIN) {
        if (!line_is(line, n, PX_ARMOR_BEGIN) || !eol)
            return fail(r, "the first line is not '" PX_ARMOR_BEGIN "'");
        r->state = R_BODY;
        return 0;
    }
    if (line_is(line, n, PX_ARMOR_END))
        return drain(r);
    if (n < 0 || n > COLS)
        return fail(r, "line %lu is longer than %d columns", r->lineno, COLS);
    if (!eol)
        return fail(r, "no '" PX_ARMOR_END "' line (the input ends in line %lu)", r->lineno);
    if (r->short_seen)
        return fail(r, "line %lu follows a short line: only the last line may be shorter than "
                    "%d columns", r->lineno, COLS);
    if (n == 0)
        return fail(r, "line %lu is empty", r->lineno);
    if ((got = px_b64_decode(line, (size_t)n, r->buf, sizeof r->buf)) < 0)
        return fail(r, "line %lu is not canonical padded base64", r->lineno);
    r->short_seen = n < COLS || got < BYTES;
    r->off = 0;
    r->len = (size_t)got;
    return 0;
}

static ssize_t reader_read(void *cookie, char *out, size_t size)
{
    reader_t *r = cookie;
    size_t o = 0;
    while (o < size) {
        if (r->off < r->len) {
            size_t k = r->len - r->off < size - o ? r->len - r->off : size - o;
            memcpy(out + o, r->buf + r->off, k);
            r->off += k;
            o += k;
        } else if (r->state == R_DONE) {
            break;
        } else if (r->state == R_FAILED || next_line(r) < 0) {
            errno = EBADMSG;
            return -1;
        }
    }
    return (ssize_t)o;
}

static int reader_close(void *cookie)
{
    free(cookie);
    return 0;
}

FILE *px_armor_reader(FILE *in, char *err, size_t errlen)
{
    static const cookie_io_functions_t io = { .read = reader_read, .close = reader_close };
    reader_t *r = calloc(1, sizeof *r);
    FILE *f;
    if (!r)
        return NULL;
    r->in = in;
    r->err = err;
    r->errlen = errlen;
    if (errlen)
        err[0] = '\0';
    if (!(f = fopencookie(r, "rb", io)))
        free(r);
    return f;
}

/* --- writer ---------------------------------------------------------------------------- */

typedef struct {
    FILE *out;
    uint8_t buf[BYTES];
    size_t len;
    int failed;
} writer_t;

/* Writes the buffered bytes as one line. */
static int put_line(writer_t *w)
{
    char line[COLS + 2];
    long n = px_b64_encode(w->buf, w->len, line, sizeof line, 0);
    if (n < 0)
        return -1;
    line[n++] = '\n';
    w->len = 0;
    return fwrite(line, 1, (size_t)n, w->out) == (size_t)n ? 0 : -1;
}

static ssize_t writer_write(void *cookie, const char *in, size_t size)
{
    writer_t *w = cookie;
    size_t o = 0;
    if (w->failed)
        return -1;
    while (o < size) {
        size_t k = BYTES - w->len < size - o ? BYTES - w->len : size - o;
        memcpy(w->buf + w->len, in + o, k);
        w->len += k;
        o += k;
        if (w->len == BYTES && put_line(w) != 0) {
            w->failed = 1;
            return -1;
        }
    }
    return (ssize_t)size;
}

static int writer_close(void *cookie)
{
    writer_t *w = cookie;
    int ret = w->failed || (w->len && put_line(w) != 0) ||
              fputs(PX_ARMOR_END "\n", w->out) == EOF ? -1 : 0;
    free(w);
    return ret;
}

FILE *px_armor_writer(FILE *out)
{
    static const cookie_io_functions_t io = { .write = writer_write, .close = writer_close };
    writer_t *w = calloc(1, sizeof *w);
    FILE *f;
    if (!w)
        return NULL;
    w->out = out;
    if (fputs(PX_ARMOR_BEGIN "\n", out) == EOF || !(f = fopencookie(w, "wb", io))) {
        free(w);
        return NULL;
    }
    return f;
}
