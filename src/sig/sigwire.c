/* Structured fields, base64, the signature field and the signature base
 * (see sigwire.h and docs/signatures.md sections 2-4). */
#include <stdio.h>
#include <string.h>

#include "sig/sigwire.h"

#define fail(...) px_errorf(-1, __VA_ARGS__)

/* --- base64 ------------------------------------------------------------------ */

/* The alphabet as a table: an ML-DSA-87 signature is 6,172 characters and
 * every one is looked up (twice: parsing, then decoding). */
static const signed char b64_table[256] = {
    ['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6, ['G'] = 7, ['H'] = 8,
    ['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15,
    ['P'] = 16, ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22,
    ['W'] = 23, ['X'] = 24, ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29,
    ['d'] = 30, ['e'] = 31, ['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36,
    ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42, ['q'] = 43,
    ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48, ['w'] = 49, ['x'] = 50,
    ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56, ['4'] = 57,
    ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['+'] = 63, ['/'] = 64,
};

/* 0..63, or -1 outside the alphabet (the table stores value + 1). */
static inline int b64_val(int c)
{
    return b64_table[(unsigned char)c] - 1;
}

long px_b64_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
    size_t pad = 0, o = 0, body;
    int v[4], bad = 0;
    uint32_t w;

    if (len % 4 != 0)
        return -1;
    if (len == 0)
        return 0;
    if (in[len - 1] == '=')
        pad++;
    if (in[len - 2] == '=')
        pad++;
    if (len / 4 * 3 - pad > cap)
        return -1;
    /* Every quantum but the last has no padding: no per-byte branches
     * there (a 6.2 KB ML-DSA signature is 1,550 quanta per request). */
    body = len - 4;
    for (size_t i = 0; i < body; i += 4) {
        int a = b64_val(in[i]), b = b64_val(in[i + 1]), c = b64_val(in[i + 2]),
            d = b64_val(in[i + 3]);
        bad |= a | b | c | d;                   /* -1 has the sign bit set */
        w = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
        out[o] = (uint8_t)(w >> 16);
        out[o + 1] = (uint8_t)(w >> 8);
        out[o + 2] = (uint8_t)w;
        o += 3;
    }
    if (bad < 0)
        return -1;
    for (int j = 0; j < 4; j++) {
        if (in[body + j] == '=' && j >= 4 - (int)pad)
            v[j] = 0;
        else if ((v[j] = b64_val(in[body + j])) < 0)
            return -1;
    }
    w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
    /* canonical: the bits after the data are zero */
    if ((pad == 1 && (w & 0xff)) || (pad == 2 && (w & 0xffff)))
        return -1;
    out[o++] = (uint8_t)(w >> 16);
    if (pad < 2)
        out[o++] = (uint8_t)(w >> 8);
    if (pad < 1)
        out[o++] = (uint8_t)w;
    return (long)o;
}

long px_b64_encode(const uint8_t *in, size_t len, char *out, size_t cap, int url)
{
    const char *a = url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                        : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t need = url ? (len * 4 + 2) / 3 : (len + 2) / 3 * 4, o = 0;

    if (need + 1 > cap)
        return -1;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t w = (uint32_t)in[i] << 16;
        size_t n = len - i < 3 ? len - i : 3;
        if (n > 1) w |= (uint32_t)in[i + 1] << 8;
        if (n > 2) w |= in[i + 2];
        out[o++] = a[w >> 18 & 63];
        out[o++] = a[w >> 12 & 63];
        if (n > 1) out[o++] = a[w >> 6 & 63];
        else if (!url) out[o++] = '=';
        if (n > 2) out[o++] = a[w & 63];
        else if (!url) out[o++] = '=';
    }
    out[o] = '\0';
    return (long)o;
}

/* --- RFC 8941 parsing ---------------------------------------------------------- */

typedef struct {
    const char *p, *end;
    char *err;
    size_t errlen;
} sfp_t;

static int is_lcalpha(int c) { return c >= 'a' && c <= 'z'; }
static int is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_tchar(int c)
{
    return is_alpha(c) || is_digit(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int peek(const sfp_t *x) { return x->p < x->end ? (unsigned char)*x->p : -1; }
static void skip_sp(sfp_t *x) { while (peek(x) == ' ') x->p++; }
static void skip_ows(sfp_t *x) { while (peek(x) == ' ' || peek(x) == '\t') x->p++; }

static int parse_key(sfp_t *x, const char **k, size_t *klen)
{
    const char *start = x->p;
    int c = peek(x);
    if (!is_lcalpha(c) && c != '*')
        return fail(x->err, x->errlen, "expected a lowercase key");
    while ((c = peek(x)) >= 0 && (is_lcalpha(c) || is_digit(c) || c == '_' || c == '-' ||
                                  c == '.' || c == '*'))
        x->p++;
    *k = start;
    *klen = (size_t)(x->p - start);
    if (*klen > PX_SIG_MAX_NAME)
        return fail(x->err, x->errlen, "key longer than %d", PX_SIG_MAX_NAME);
    return 0;
}

static int parse_bare(sfp_t *x, sf_bare_t *b)
{
    int c = peek(x);
    memset(b, 0, sizeof *b);
    if (c == '-' || is_digit(c)) {
        int neg = c == '-', nd = 0;
        int64_t v = 0;
        if (neg)
            x->p++;
        while (is_digit(peek(x))) {
            if (++nd > 15)
                return fail(x->err, x->errlen, "integer longer than 15 digits");
            v = v * 10 + (*x->p++ - '0');
        }
        if (nd == 0)
            return fail(x->err, x->errlen, "'-' without digits");
        if (peek(x) == '.')
            return fail(x->err, x->errlen, "decimal numbers are not supported");
        b->type = SF_INT;
        b->i = neg ? -v : v;
        return 0;
    }
    if (c == '"') {
        b->type = SF_STR;
        b->s = ++x->p;
        for (;;) {
            c = peek(x);
            if (c < 0)
                return fail(x->err, x->errlen, "unterminated string");
            if (c == '\\') {
                x->p++;
                c = peek(x);
                if (c != '"' && c != '\\')
                    return fail(x->err, x->errlen, "invalid escape in string");
                b->esc = 1;
            } else if (c == '"') {
                break;
            } else if (c < 0x20 || c > 0x7e) {
                return fail(x->err, x->errlen, "invalid character in string");
            }
            x->p++;
        }
        b->len = (size_t)(x->p - b->s);
        x->p++;
        return 0;
    }
    if (c == ':') {
        const char *end;
        int bad = 0;
        b->type = SF_BYTES;
        b->s = ++x->p;
        if (!(end = memchr(x->p, ':', (size_t)(x->end - x->p))))
            return fail(x->err, x->errlen, "unterminated byte sequence");
        for (const char *q = x->p; q < end; q++)      /* 6.2 KB for ML-DSA: no branches */
            bad |= (b64_table[(unsigned char)*q] == 0) & (*q != '=');
        if (bad)
            return fail(x->err, x->errlen, "invalid character in byte sequence");
        b->len = (size_t)(end - b->s);
        x->p = end + 1;
        return 0;
    }
    if (c == '?') {
        x->p++;
        c = peek(x);
        if (c != '0' && c != '1')
            return fail(x->err, x->errlen, "invalid boolean");
        x->p++;
        b->type = SF_BOOL;
        b->i = c == '1';
        return 0;
    }
    if (is_alpha(c) || c == '*') {
        b->type = SF_TOKEN;
        b->s = x->p;
        while ((c = peek(x)) >= 0 && (is_tchar(c) || c == ':' || c == '/'))
            x->p++;
        b->len = (size_t)(x->p - b->s);
        return 0;
    }
    return fail(x->err, x->errlen, "expected an item");
}

static int parse_params(sfp_t *x, sf_param_t *ps, int max, int *n)
{
    *n = 0;
    while (peek(x) == ';') {
        sf_param_t p;
        x->p++;
        skip_sp(x);
        if (parse_key(x, &p.name, &p.name_len))
            return -1;
        if (peek(x) == '=') {
            x->p++;
            if (parse_bare(x, &p.v))
                return -1;
        } else {
            memset(&p.v, 0, sizeof p.v);
            p.v.type = SF_BOOL;
            p.v.i = 1;
        }
        for (int i = 0; i < *n; i++)
            if (ps[i].name_len == p.name_len && !memcmp(ps[i].name, p.name, p.name_len))
                return fail(x->err, x->errlen, "duplicate parameter '%.*s'", (int)p.name_len,
                            p.name);
        if (*n >= max)
            return fail(x->err, x->errlen, "too many parameters");
        ps[(*n)++] = p;
    }
    return 0;
}

static int parse_member_value(sfp_t *x, sf_member_t *m)
{
    if (peek(x) != '(') {
        if (parse_bare(x, &m->item.v))
            return -1;
        return parse_params(x, m->params, SF_MAX_PARAMS, &m->nparams);
    }
    m->is_inner = 1;
    x->p++;
    for (;;) {
        skip_sp(x);
        if (peek(x) == ')') {
            x->p++;
            return parse_params(x, m->params, SF_MAX_PARAMS, &m->nparams);
        }
        if (m->ninner >= SF_MAX_INNER)
            return fail(x->err, x->errlen, "more than %d items in the inner list", SF_MAX_INNER);
        sf_item_t *it = &m->inner[m->ninner++];
        if (parse_bare(x, &it->v) ||
            parse_params(x, it->params, SF_MAX_ITEM_PARAMS, &it->nparams))
            return -1;
        if (peek(x) != ' ' && peek(x) != ')')
            return fail(x->err, x->errlen, "expected ' ' or ')' in the inner list");
    }
}

int sf_parse_dict(const char *s, size_t len, sf_dict_t *d, char *err, size_t errlen)
{
    sfp_t x = { s, s + len, err, errlen };

    memset(d, 0, sizeof *d);
    skip_sp(&x);
    while (x.end > x.p && x.end[-1] == ' ')
        x.end--;
    if (x.p == x.end)
        return fail(err, errlen, "empty");
    for (;;) {
        sf_member_t *m;
        const char *k;
        size_t kl;
        if (parse_key(&x, &k, &kl))
            return -1;
        for (int i = 0; i < d->n; i++)
            if (d->m[i].key_len == kl && !memcmp(d->m[i].key, k, kl))
                return fail(err, errlen, "duplicate key '%.*s'", (int)kl, k);
        if (d->n >= SF_MAX_MEMBERS)
            return fail(err, errlen, "more than %d members", SF_MAX_MEMBERS);
        m = &d->m[d->n++];
        m->key = k;
        m->key_len = kl;
        if (peek(&x) == '=') {
            x.p++;
            if (parse_member_value(&x, m))
                return -1;
        } else {
            m->item.v.type = SF_BOOL;
            m->item.v.i = 1;
            if (parse_params(&x, m->params, SF_MAX_PARAMS, &m->nparams))
                return -1;
        }
        skip_ows(&x);
        if (x.p == x.end)
            return 0;
        if (peek(&x) != ',')
            return fail(err, errlen, "expected ',' after member '%.*s'", (int)kl, k);
        x.p++;
        skip_ows(&x);
        if (x.p == x.end)
            return fail(err, errlen, "trailing ','");
    }
}

const sf_member_t *sf_dict_get(const sf_dict_t *d, const char *key)
{
    size_t kl = strlen(key);
    for (int i = 0; i < d->n; i++)
        if (d->m[i].key_len == kl && !memcmp(d->m[i].key, key, kl))
            return &d->m[i];
    return NULL;
}

/* --- headers ----------------------------------------------------------------- */

static int name_eq(const char *a, size_t al, const char *b, size_t bl)
{
    if (al != bl)
        return 0;
    for (size_t i = 0; i < al; i++) {
        int x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z') x += 32;
        if (y >= 'A' && y <= 'Z') y += 32;
        if (x != y)
            return 0;
    }
    return 1;
}

static void trim(const char **v, size_t *n)
{
    while (*n && (**v == ' ' || **v == '\t')) { (*v)++; (*n)--; }
    while (*n && ((*v)[*n - 1] == ' ' || (*v)[*n - 1] == '\t')) (*n)--;
}

int px_sig_field_value(const px_header_t *hdrs, int n, const char *name, size_t name_len,
                       px_buf_t *out)
{
    int found = 0;
    for (int i = 0; i < n; i++) {
        const char *v = hdrs[i].value;
        size_t vl = hdrs[i].value_len;
        if (!name_eq(hdrs[i].name, hdrs[i].name_len, name, name_len))
            continue;
        trim(&v, &vl);
        if ((found && px_buf_append(out, ", ", 2)) || px_buf_append(out, v, vl))
            return -1;
        found++;
    }
    return found;
}

int px_sig_field_single(const px_header_t *hdrs, int n, const char *name, const char **v,
                        size_t *vlen)
{
    int found = 0;
    size_t nl = strlen(name);
    for (int i = 0; i < n; i++) {
        if (!name_eq(hdrs[i].name, hdrs[i].name_len, name, nl))
            continue;
        if (found++)
            return 2;
        *v = hdrs[i].value;
        *vlen = hdrs[i].value_len;
        trim(v, vlen);
    }
    return found;
}

/* --- the signature field ----------------------------------------------------------- */

int px_sig_valid_keyid(const char *s, size_t len)
{
    if (len < 1 || len > PX_SIG_MAX_NAME || s[0] == '.')
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!is_alpha((unsigned char)s[i]) && !is_digit((unsigned char)s[i]) &&
            !strchr("._-", s[i]))
            return 0;
    return 1;
}

int px_sig_valid_nonce(const char *s, size_t len)
{
    if (len < 16 || len > PX_SIG_MAX_NAME)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!is_alpha((unsigned char)s[i]) && !is_digit((unsigned char)s[i]) && s[i] != '-' &&
            s[i] != '_')
            return 0;
    return 1;
}

static int str_is(const sf_bare_t *b, const char *s)
{
    return b->type == SF_STR && !b->esc && b->len == strlen(s) && !memcmp(b->s, s, b->len);
}

static const char *const derived[] = { "@method", "@authority", "@scheme", "@path", "@query",
                                       "@request-target", "@status", NULL };

static int valid_component(const char *s, size_t len)
{
    if (len == 0 || len > PX_SIG_MAX_NAME)
        return 0;
    if (s[0] == '@') {
        for (int i = 0; derived[i]; i++)
            if (strlen(derived[i]) == len && !memcmp(derived[i], s, len))
                return 1;
        return 0;
    }
    for (size_t i = 0; i < len; i++)
        if ((s[i] >= 'A' && s[i] <= 'Z') || !is_tchar((unsigned char)s[i]))
            return 0;
    return 1;
}

/* Checks the inner list (components) and the parameters; with_sigs: the
 * member also carries sig/pq (X-Signature). */
static px_sig_result_t interpret(const sf_member_t *m, int with_sigs, px_sigfield_t *f,
                                 char *detail, size_t dlen)
{
    const sf_bare_t *sig = NULL, *pq = NULL;
    int have_created = 0, have_expires = 0;

    if (m->key_len > PX_SIG_MAX_LABEL) {
        fail(detail, dlen, "signature label longer than %d characters", PX_SIG_MAX_LABEL);
        return PX_SIG_MALFORMED;
    }
    if (!m->is_inner) {
        fail(detail, dlen, "the signature member is not an inner list");
        return PX_SIG_MALFORMED;
    }
    f->mem = m;
    f->ncomp = m->ninner;
    for (int i = 0; i < m->ninner; i++) {
        const sf_item_t *it = &m->inner[i];
        px_sig_comp_t *c = &f->comp[i];
        if (it->v.type != SF_STR || it->v.esc || !valid_component(it->v.s, it->v.len)) {
            fail(detail, dlen, "covered component %d is not a supported component name", i + 1);
            return PX_SIG_MALFORMED;
        }
        c->name = it->v.s;
        c->len = it->v.len;
        c->req = c->tr = 0;
        for (int j = 0; j < it->nparams; j++) {
            const sf_param_t *p = &it->params[j];
            int is_true = p->v.type == SF_BOOL && p->v.i == 1;
            if (p->name_len == 3 && !memcmp(p->name, "req", 3) && is_true)
                c->req = 1;
            else if (p->name_len == 2 && !memcmp(p->name, "tr", 2) && is_true)
                c->tr = 1;
            else {
                fail(detail, dlen, "component \"%.*s\": unsupported parameter '%.*s'",
                     (int)c->len, c->name, (int)p->name_len, p->name);
                return PX_SIG_MALFORMED;
            }
        }
        if ((c->req && c->tr) || (c->tr && c->name[0] == '@')) {
            fail(detail, dlen, "component \"%.*s\": invalid parameters", (int)c->len, c->name);
            return PX_SIG_MALFORMED;
        }
        if (!c->req && ((c->len == 11 && !memcmp(c->name, "x-signature", 11)) ||
                        (c->len == 9 && !memcmp(c->name, "signature", 9)) ||
                        (c->len == 15 && !memcmp(c->name, "signature-input", 15)))) {
            fail(detail, dlen, "a signature cannot cover its own field \"%.*s\"", (int)c->len,
                 c->name);
            return PX_SIG_MALFORMED;
        }
        for (int j = 0; j < i; j++)
            if (f->comp[j].len == c->len && !memcmp(f->comp[j].name, c->name, c->len) &&
                f->comp[j].req == c->req && f->comp[j].tr == c->tr) {
                fail(detail, dlen, "component \"%.*s\" covered twice", (int)c->len, c->name);
                return PX_SIG_MALFORMED;
            }
    }
    for (int i = 0; i < m->nparams; i++) {
        const sf_param_t *p = &m->params[i];
#define PNAME(s) (p->name_len == sizeof(s) - 1 && !memcmp(p->name, s, sizeof(s) - 1))
        if (PNAME("created") || PNAME("expires")) {
            if (p->v.type != SF_INT || p->v.i < 0 || p->v.i > 253402300799LL) {
                fail(detail, dlen, "'%.*s' must be an integer time", (int)p->name_len, p->name);
                return PX_SIG_MALFORMED;
            }
            if (PNAME("created")) { f->created = p->v.i; have_created = 1; }
            else { f->expires = p->v.i; have_expires = 1; }
        } else if (PNAME("nonce")) {
            if (p->v.type != SF_STR || !px_sig_valid_nonce(p->v.s, p->v.len)) {
                fail(detail, dlen, "nonce must be 16 to 64 base64url characters");
                return PX_SIG_MALFORMED;
            }
            f->nonce = p->v.s;
            f->nonce_len = p->v.len;
        } else if (PNAME("keyid")) {
            if (p->v.type != SF_STR || !px_sig_valid_keyid(p->v.s, p->v.len)) {
                fail(detail, dlen, "keyid must be 1 to 64 characters of A-Z a-z 0-9 . _ -");
                return PX_SIG_MALFORMED;
            }
            f->keyid = p->v.s;
            f->keyid_len = p->v.len;
        } else if (PNAME("alg")) {
            if (str_is(&p->v, PX_SIG_ALG_HYBRID))
                f->hybrid = 1;
            else if (!str_is(&p->v, PX_SIG_ALG_CLASSICAL)) {
                fail(detail, dlen, "alg must be \"%s\"", PX_SIG_ALG_HYBRID);
                return PX_SIG_MALFORMED;
            }
            f->alg = p->v.s;
            f->alg_len = p->v.len;
        } else if (with_sigs && PNAME("sig")) {
            sig = &p->v;
        } else if (with_sigs && PNAME("pq")) {
            pq = &p->v;
        } else {
            fail(detail, dlen, "unknown signature parameter '%.*s'", (int)p->name_len, p->name);
            return PX_SIG_MALFORMED;
        }
#undef PNAME
    }
    if (!have_created || !have_expires || !f->nonce || !f->keyid || !f->alg) {
        fail(detail, dlen, "missing parameter (created, expires, nonce, keyid and alg are required)");
        return PX_SIG_MALFORMED;
    }
    if (f->expires <= f->created) {
        fail(detail, dlen, "expires must be after created");
        return PX_SIG_MALFORMED;
    }
    if (with_sigs) {
        if (!sig || sig->type != SF_BYTES ||
            px_b64_decode(sig->s, sig->len, f->ecdsa, sizeof f->ecdsa) != PX_SIG_ECDSA_LEN) {
            fail(detail, dlen, "sig must be a %d-byte byte sequence (ECDSA r||s)",
                 PX_SIG_ECDSA_LEN);
            return PX_SIG_MALFORMED;
        }
        if (f->hybrid != (pq != NULL)) {
            fail(detail, dlen, f->hybrid ? "pq (the ML-DSA-87 signature) is missing"
                                         : "pq given with a classical alg");
            return PX_SIG_MALFORMED;
        }
        if (pq && (pq->type != SF_BYTES ||
                   px_b64_decode(pq->s, pq->len, f->mldsa, sizeof f->mldsa) != PX_SIG_MLDSA_LEN)) {
            fail(detail, dlen, "pq must be a %d-byte byte sequence (ML-DSA-87)", PX_SIG_MLDSA_LEN);
            return PX_SIG_MALFORMED;
        }
        f->have_mldsa = pq != NULL;
    }
    return PX_SIG_OK;
}

px_sig_result_t px_sigfield_parse_value(const char *value, size_t len, px_sigfield_t *f,
                                        char *detail, size_t dlen)
{
    char err[120];

    if (len > PX_SIG_MAX_FIELD) {
        fail(detail, dlen, "X-Signature longer than %d bytes", PX_SIG_MAX_FIELD);
        return PX_SIG_MALFORMED;
    }
    if (sf_parse_dict(value, len, &f->d1, err, sizeof err)) {
        fail(detail, dlen, "X-Signature: %s", err);
        return PX_SIG_MALFORMED;
    }
    if (f->d1.n != 1) {
        fail(detail, dlen, "X-Signature must hold exactly one signature");
        return PX_SIG_MALFORMED;
    }
    f->field = PX_SIG_FIELD;
    f->value = value;
    f->value_len = len;
    return interpret(&f->d1.m[0], 1, f, detail, dlen);
}

/* Signature-Input + Signature (RFC 9421 pair). */
static px_sig_result_t parse_pair(const char *in, size_t in_len, const char *sg, size_t sg_len,
                                  px_sigfield_t *f, char *detail, size_t dlen)
{
    char err[120], pqkey[PX_SIG_MAX_NAME + 8];
    const sf_member_t *m, *s1, *s2;
    px_sig_result_t r;

    if (in_len > PX_SIG_MAX_INPUT || sg_len > PX_SIG_MAX_FIELD) {
        fail(detail, dlen, "Signature-Input or Signature too long");
        return PX_SIG_MALFORMED;
    }
    if (sf_parse_dict(in, in_len, &f->d1, err, sizeof err)) {
        fail(detail, dlen, "Signature-Input: %s", err);
        return PX_SIG_MALFORMED;
    }
    if (sf_parse_dict(sg, sg_len, &f->d2, err, sizeof err)) {
        fail(detail, dlen, "Signature: %s", err);
        return PX_SIG_MALFORMED;
    }
    if (f->d1.n != 1) {
        fail(detail, dlen, "Signature-Input must hold exactly one signature");
        return PX_SIG_MALFORMED;
    }
    m = &f->d1.m[0];
    if ((r = interpret(m, 0, f, detail, dlen)) != PX_SIG_OK)
        return r;
    snprintf(pqkey, sizeof pqkey, "%.*s-pq", (int)m->key_len, m->key);
    char label[PX_SIG_MAX_NAME + 1];
    snprintf(label, sizeof label, "%.*s", (int)m->key_len, m->key);
    s1 = sf_dict_get(&f->d2, label);
    s2 = sf_dict_get(&f->d2, pqkey);
    if (!s1 || f->d2.n != 1 + (f->hybrid ? 1 : 0) || (f->hybrid && !s2)) {
        fail(detail, dlen, "Signature must hold exactly '%s'%s%s", label,
             f->hybrid ? " and " : "", f->hybrid ? pqkey : "");
        return PX_SIG_MALFORMED;
    }
    if (s1->is_inner || s1->item.v.type != SF_BYTES || s1->nparams ||
        px_b64_decode(s1->item.v.s, s1->item.v.len, f->ecdsa, sizeof f->ecdsa) !=
            PX_SIG_ECDSA_LEN) {
        fail(detail, dlen, "Signature '%s' must be a %d-byte byte sequence", label,
             PX_SIG_ECDSA_LEN);
        return PX_SIG_MALFORMED;
    }
    if (s2 && (s2->is_inner || s2->item.v.type != SF_BYTES || s2->nparams ||
               px_b64_decode(s2->item.v.s, s2->item.v.len, f->mldsa, sizeof f->mldsa) !=
                   PX_SIG_MLDSA_LEN)) {
        fail(detail, dlen, "Signature '%s' must be a %d-byte byte sequence", pqkey,
             PX_SIG_MLDSA_LEN);
        return PX_SIG_MALFORMED;
    }
    f->have_mldsa = s2 != NULL;
    f->field = "signature";
    f->value = sg;
    f->value_len = sg_len;
    return PX_SIG_OK;
}

px_sig_result_t px_sigfield_parse(const px_sig_msg_t *msg, int from_trailers, px_sigfield_t *f,
                                  char *detail, size_t dlen)
{
    const px_header_t *h = from_trailers ? msg->trailers : msg->headers;
    int n = from_trailers ? msg->trailer_count : msg->header_count;
    const char *xs = NULL, *in = NULL, *sg = NULL;
    size_t xl = 0, il = 0, sl = 0;
    int cx = px_sig_field_single(h, n, PX_SIG_FIELD, &xs, &xl);
    int ci = px_sig_field_single(h, n, "signature-input", &in, &il);
    int cs = px_sig_field_single(h, n, "signature", &sg, &sl);

    memset(f, 0, offsetof(px_sigfield_t, d1));
    if (!cx && !ci && !cs) {
        fail(detail, dlen, "no X-Signature");
        return PX_SIG_MISSING;
    }
    if (cx > 1 || ci > 1 || cs > 1) {
        fail(detail, dlen, "signature field repeated");
        return PX_SIG_MALFORMED;
    }
    if (cx && (ci || cs)) {
        fail(detail, dlen, "both X-Signature and Signature/Signature-Input");
        return PX_SIG_MALFORMED;
    }
    if (cx)
        return px_sigfield_parse_value(xs, xl, f, detail, dlen);
    if (!ci || !cs) {
        fail(detail, dlen, "Signature-Input without Signature, or the reverse");
        return PX_SIG_MALFORMED;
    }
    return parse_pair(in, il, sg, sl, f, detail, dlen);
}

/* --- signature base -------------------------------------------------------------- */

static int comp_is(const px_sig_comp_t *c, const char *s)
{
    return c->len == strlen(s) && !memcmp(c->name, s, c->len);
}

/* No early exit: covered values are mostly clean, and a branch-free
 * reduction over a 6.5 KB signature field vectorises. */
static int has_ctl(const char *s, size_t n)
{
    unsigned bad = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bad |= ((c < 0x20) & (c != '\t')) | (c == 0x7f);
    }
    return bad != 0;
}

/* The value of a derived component from the request or response m. */
static int derived_value(const px_sig_msg_t *m, const px_sig_comp_t *c, px_buf_t *out)
{
    const char *t = m->target, *q;
    size_t tl = m->target_len;

    if (comp_is(c, "@status")) {
        if (m->is_request || m->status < 100 || m->status > 999)
            return -1;
        return px_buf_printf(out, "%d", m->status);
    }
    if (!m->is_request)
        return -1;
    q = t ? memchr(t, '?', tl) : NULL;
    if (comp_is(c, "@method"))
        return m->method_len ? px_buf_append(out, m->method, m->method_len) : -1;
    if (comp_is(c, "@scheme"))
        return px_buf_append(out, "https", 5);
    if (comp_is(c, "@request-target"))
        return tl ? px_buf_append(out, t, tl) : -1;
    if (comp_is(c, "@path")) {
        size_t pl = q ? (size_t)(q - t) : tl;
        return pl ? px_buf_append(out, t, pl) : px_buf_append(out, "/", 1);
    }
    if (comp_is(c, "@query")) {
        if (px_buf_append(out, "?", 1))
            return -1;
        return q ? px_buf_append(out, q + 1, tl - (size_t)(q + 1 - t)) : 0;
    }
    if (comp_is(c, "@authority")) {
        const char *a = m->authority;
        size_t al = m->authority_len;
        if (!al)
            return -1;
        if (al > 4 && !memcmp(a + al - 4, ":443", 4))
            al -= 4;
        for (size_t i = 0; i < al; i++) {
            char ch = a[i] >= 'A' && a[i] <= 'Z' ? (char)(a[i] + 32) : a[i];
            if (px_buf_append(out, &ch, 1))
                return -1;
        }
        return 0;
    }
    return -1;
}

static int put_sfstring(px_buf_t *out, const char *s, size_t n)
{
    return px_buf_append(out, "\"", 1) || px_buf_append(out, s, n) || px_buf_append(out, "\"", 1);
}

static int put_comp_id(px_buf_t *out, const px_sig_comp_t *c)
{
    return put_sfstring(out, c->name, c->len) || (c->req && px_buf_append(out, ";req", 4)) ||
           (c->tr && px_buf_append(out, ";tr", 3));
}

static int put_bare(px_buf_t *out, const sf_bare_t *b)
{
    switch (b->type) {
    case SF_INT: return px_buf_printf(out, "%lld", (long long)b->i);
    case SF_STR: return put_sfstring(out, b->s, b->len);
    case SF_TOKEN: return px_buf_append(out, b->s, b->len);
    case SF_BYTES:
        return px_buf_append(out, ":", 1) || px_buf_append(out, b->s, b->len) ||
               px_buf_append(out, ":", 1);
    case SF_BOOL: return px_buf_append(out, b->i ? "?1" : "?0", 2);
    }
    return -1;
}

px_sig_result_t px_sig_base_build(const px_sig_msg_t *msg, const px_sigfield_t *f, px_buf_t *out,
                                  char *detail, size_t dlen)
{
    size_t start = px_buf_size(out);

    for (int i = 0; i < f->ncomp; i++) {
        const px_sig_comp_t *c = &f->comp[i];
        const px_sig_msg_t *src = c->req ? msg->req : msg;
        size_t vstart;
        int r;

        if (!src) {
            fail(detail, dlen, "\"%.*s\";req: no request to take it from", (int)c->len, c->name);
            return PX_SIG_MALFORMED;
        }
        if (c->req && !src->is_request) {
            fail(detail, dlen, "\"%.*s\";req in a request", (int)c->len, c->name);
            return PX_SIG_MALFORMED;
        }
        if (c->tr && msg->is_request) {
            fail(detail, dlen, "\"%.*s\";tr: request trailers are not supported", (int)c->len,
                 c->name);
            return PX_SIG_MALFORMED;
        }
        if (put_comp_id(out, c) || px_buf_append(out, ": ", 2))
            return PX_SIG_INTERNAL;
        vstart = px_buf_size(out);
        if (c->name[0] == '@') {
            if (derived_value(src, c, out) != 0) {
                fail(detail, dlen, "component \"%.*s\" does not apply to this message",
                     (int)c->len, c->name);
                return PX_SIG_MALFORMED;
            }
        } else {
            r = c->tr ? px_sig_field_value(src->trailers, src->trailer_count, c->name, c->len, out)
                      : px_sig_field_value(src->headers, src->header_count, c->name, c->len, out);
            if (r <= 0) {
                fail(detail, dlen, r < 0 ? "covered field \"%.*s\" too large"
                                         : "covered field \"%.*s\" is absent",
                     (int)c->len, c->name);
                return PX_SIG_MALFORMED;
            }
        }
        if (has_ctl(px_buf_ptr(out) + vstart, px_buf_size(out) - vstart)) {
            fail(detail, dlen, "covered component \"%.*s\" has control characters", (int)c->len,
                 c->name);
            return PX_SIG_MALFORMED;
        }
        if (px_buf_append(out, "\n", 1))
            return PX_SIG_INTERNAL;
    }
    if (px_buf_append(out, "\"@signature-params\": (", 22))
        return PX_SIG_INTERNAL;
    for (int i = 0; i < f->ncomp; i++)
        if ((i && px_buf_append(out, " ", 1)) || put_comp_id(out, &f->comp[i]))
            return PX_SIG_INTERNAL;
    if (px_buf_append(out, ")", 1))
        return PX_SIG_INTERNAL;
    for (int i = 0; i < f->mem->nparams; i++) {
        const sf_param_t *p = &f->mem->params[i];
        if ((p->name_len == 3 && !memcmp(p->name, "sig", 3)) ||
            (p->name_len == 2 && !memcmp(p->name, "pq", 2)))
            continue;
        if (px_buf_append(out, ";", 1) || px_buf_append(out, p->name, p->name_len) ||
            px_buf_append(out, "=", 1) || put_bare(out, &p->v))
            return PX_SIG_INTERNAL;
    }
    if (px_buf_size(out) - start > PX_SIG_MAX_BASE) {
        fail(detail, dlen, "signature base larger than %d bytes", PX_SIG_MAX_BASE);
        return PX_SIG_MALFORMED;
    }
    return PX_SIG_OK;
}
