/* Minimal DER reader (see der.h). */
#include "core/der.h"

int px_der_next(px_der_t *r, unsigned *tag, px_der_t *val)
{
    size_t len, i = 2;

    if (r->n < 2 || (r->p[0] & 0x1f) == 0x1f)
        return -1;
    len = r->p[1];
    if (len & 0x80) {
        unsigned k = len & 0x7f;
        if (k == 0 || k > 4 || r->n < 2 + k)
            return -1;
        len = 0;
        for (unsigned j = 0; j < k; j++)
            len = len << 8 | r->p[2 + j];
        i += k;
    }
    if (len > r->n - i)
        return -1;
    *tag = r->p[0];
    val->p = r->p + i;
    val->n = len;
    r->p += i + len;
    r->n -= i + len;
    return 0;
}

int px_der_expect(px_der_t *r, unsigned tag, px_der_t *val)
{
    px_der_t save = *r;
    unsigned t;

    if (px_der_next(r, &t, val) != 0 || t != tag) {
        *r = save;
        return -1;
    }
    return 0;
}

int px_der_optional(px_der_t *r, unsigned tag, px_der_t *val)
{
    if (r->n == 0 || r->p[0] != tag)
        return 0;
    return px_der_expect(r, tag, val) == 0 ? 1 : -1;
}

static int digits(const uint8_t *p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; Howard Hinnant's algorithm). */
static int64_t days_from_civil(int y, int m, int d)
{
    int64_t era, yoe, doy, doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int px_der_time(unsigned tag, const px_der_t *v, int64_t *t)
{
    int y, mo, d, h, mi, s, off;

    if (tag == PX_DER_UTCTIME && v->n == 13) {
        if (digits(v->p, 2, &y) != 0)
            return -1;
        y += y < 50 ? 2000 : 1900;          /* RFC 5280 4.1.2.5.1 */
        off = 2;
    } else if (tag == PX_DER_GENTIME && v->n == 15) {
        if (digits(v->p, 4, &y) != 0)
            return -1;
        off = 4;
    } else {
        return -1;
    }
    if (v->p[v->n - 1] != 'Z' || digits(v->p + off, 2, &mo) != 0 ||
        digits(v->p + off + 2, 2, &d) != 0 || digits(v->p + off + 4, 2, &h) != 0 ||
        digits(v->p + off + 6, 2, &mi) != 0 || digits(v->p + off + 8, 2, &s) != 0 ||
        mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60)
        return -1;
    *t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
    return 0;
}
