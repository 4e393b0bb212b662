/* Client certificate identity: the parts of an X.509 certificate pqproxy
 * reports (see clientcert.h), read with der.h. The certificate has
 * already been verified by wolfSSL; this code still treats it as untrusted
 * bytes: every length is checked and nothing is copied unescaped. */
#include "net/clientcert.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hash.h>

#include "core/der.h"
#include "core/errors.h"
#include "core/log.h"

/* --- RFC 4514 ---------------------------------------------------------------- */

typedef struct {
    char *p;
    size_t cap, n;
    int full;
} out_t;

static void put(out_t *o, const char *s, size_t len)
{
    if (o->full || o->n + len >= o->cap) {
        o->full = 1;
        return;
    }
    memcpy(o->p + o->n, s, len);
    o->n += len;
    o->p[o->n] = 0;
}

static void puts_(out_t *o, const char *s)
{
    put(o, s, strlen(s));
}

static void put_hex(out_t *o, const uint8_t *b, size_t len, const char *before)
{
    char h[4];
    for (size_t i = 0; i < len; i++) {
        snprintf(h, sizeof h, "%s%02X", before, b[i]);
        puts_(o, h);
    }
}

static const struct {
    uint8_t der[10];
    uint8_t len;
    const char *name;
} attr_names[] = {
    { { 0x55, 0x04, 0x03 }, 3, "CN" },        { { 0x55, 0x04, 0x06 }, 3, "C" },
    { { 0x55, 0x04, 0x07 }, 3, "L" },         { { 0x55, 0x04, 0x08 }, 3, "ST" },
    { { 0x55, 0x04, 0x09 }, 3, "STREET" },    { { 0x55, 0x04, 0x0a }, 3, "O" },
    { { 0x55, 0x04, 0x0b }, 3, "OU" },        { { 0x55, 0x04, 0x05 }, 3, "serialNumber" },
    { { 0x55, 0x04, 0x04 }, 3, "SN" },        { { 0x55, 0x04, 0x2a }, 3, "GN" },
    { { 0x55, 0x04, 0x0c }, 3, "title" },
    { { 0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19 }, 10, "DC" },
    { { 0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01 }, 10, "UID" },
    { { 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01 }, 9, "emailAddress" },
};

static void put_oid(out_t *o, px_der_t oid)
{
    char buf[24];
    unsigned long v = 0;

    for (size_t i = 0; i < sizeof attr_names / sizeof attr_names[0]; i++)
        if (oid.n == attr_names[i].len && !memcmp(oid.p, attr_names[i].der, oid.n)) {
            puts_(o, attr_names[i].name);
            return;
        }
    for (size_t i = 0, arc = 0; i < oid.n; i++) {   /* dotted form */
        if (v > (~0UL >> 8)) {
            o->full = 1;                          /* absurd arc: give up on this name */
            return;
        }
        v = v << 7 | (oid.p[i] & 0x7f);
        if (oid.p[i] & 0x80)
            continue;
        if (arc++ == 0) {
            unsigned long first = v < 80 ? v / 40 : 2;
            snprintf(buf, sizeof buf, "%lu.%lu", first, v - first * 40);
        } else {
            snprintf(buf, sizeof buf, ".%lu", v);
        }
        puts_(o, buf);
        v = 0;
    }
}

/* A string value, RFC 4514 2.4: the specials escaped with a backslash, and
 * every byte outside printable ASCII (NUL, CR, LF, UTF-8) as \XX. */
static void put_value(out_t *o, const uint8_t *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        uint8_t c = s[i];
        char e[3] = { '\\', (char)c, 0 };
        if (c < 0x20 || c > 0x7e)
            put_hex(o, &c, 1, "\\");
        else if (strchr("\"+,;<>\\", c) || (i == 0 && (c == '#' || c == ' ')) ||
                 (i == len - 1 && c == ' '))
            put(o, e, 2);
        else
            put(o, e + 1, 1);
    }
}

static int is_string_tag(unsigned tag)
{
    /* UTF8String, NumericString, PrintableString, TeletexString, IA5String */
    return tag == 0x0c || tag == 0x12 || tag == 0x13 || tag == 0x14 || tag == 0x16;
}

int px_clientcert_dn(const uint8_t *name, size_t len, char *out, size_t cap)
{
    px_der_t d = { name, len }, seq, rdns[64];
    int n = 0;
    out_t o = { out, cap, 0, 0 };

    if (!cap)
        return PX_ETOOBIG;
    out[0] = 0;
    if (px_der_expect(&d, 0x30, &seq) < 0 || d.n)
        return PX_EPARSE;
    while (seq.n) {
        if (n == (int)(sizeof rdns / sizeof rdns[0]) || px_der_expect(&seq, 0x31, &rdns[n]) < 0)
            return PX_EPARSE;
        n++;
    }
    for (int i = n - 1; i >= 0; i--) {     /* RFC 4514: the last RDN first */
        px_der_t set = rdns[i];
        int first = 1;
        while (set.n) {
            px_der_t atv, oid, val;
            const uint8_t *tlv;
            unsigned tag;
            size_t mark = o.n;
            if (px_der_expect(&set, 0x30, &atv) < 0 || px_der_expect(&atv, 0x06, &oid) < 0 || !oid.n)
                return PX_EPARSE;
            tlv = atv.p;
            if (px_der_next(&atv, &tag, &val) < 0 || atv.n)
                return PX_EPARSE;
            if (!first || i != n - 1)
                puts_(&o, first ? "," : "+");
            put_oid(&o, oid);
            puts_(&o, "=");
            if (is_string_tag(tag)) {
                put_value(&o, val.p, val.n);
            } else {                       /* RFC 4514 2.4: '#' and the BER in hex */
                puts_(&o, "#");
                put_hex(&o, tlv, (size_t)(atv.p - tlv), "");
            }
            if (o.full) {                  /* keep whole attributes only */
                o.full = 0;
                o.n = mark;
                out[mark] = 0;
                return PX_ETOOBIG;
            }
            first = 0;
        }
    }
    return 0;
}

/* --- the certificate ---------------------------------------------------------- */

/* A SAN is kept when it fits and is printable ASCII without spaces: a value
 * that would need altering to be safe in a header is left out instead. */
static void keep_san(px_clientcert_t *cc, px_san_type_t type, const uint8_t *v, size_t len)
{
    int *n = &cc->san_count[type];
    int ok = len > 0 && len < PX_CC_MAX_VALUE && *n < PX_CC_MAX_SANS;

    for (size_t i = 0; ok && i < len; i++)
        ok = v[i] > 0x20 && v[i] < 0x7f;
    if (!ok) {
        cc->san_skipped++;
        return;
    }
    memcpy(cc->san[type][*n], v, len);
    cc->san[type][*n][len] = 0;
    (*n)++;
}

static int read_sans(px_clientcert_t *cc, px_der_t ext)
{
    px_der_t names, gn;
    unsigned tag;

    if (px_der_expect(&ext, 0x30, &names) < 0 || ext.n)
        return PX_EPARSE;
    while (names.n) {
        if (px_der_next(&names, &tag, &gn) < 0)
            return PX_EPARSE;
        switch (tag) {
        case 0x81: keep_san(cc, PX_SAN_EMAIL, gn.p, gn.n); break;   /* rfc822Name */
        case 0x82: keep_san(cc, PX_SAN_DNS, gn.p, gn.n); break;     /* dNSName */
        case 0x86: keep_san(cc, PX_SAN_URI, gn.p, gn.n); break;     /* uniformResourceIdentifier */
        case 0x87: {                                                  /* iPAddress */
            char ip[INET6_ADDRSTRLEN];
            if ((gn.n == 4 || gn.n == 16) &&
                inet_ntop(gn.n == 4 ? AF_INET : AF_INET6, gn.p, ip, sizeof ip))
                keep_san(cc, PX_SAN_IP, (const uint8_t *)ip, strlen(ip));
            else
                cc->san_skipped++;
            break;
        }
        default: break;                    /* otherName, directoryName, ...: not reported */
        }
    }
    return 0;
}

static int read_extensions(px_clientcert_t *cc, px_der_t d)
{
    static const uint8_t san_oid[] = { 0x55, 0x1d, 0x11 };   /* 2.5.29.17 */
    px_der_t exts, ext, oid, val;
    unsigned tag;

    if (px_der_expect(&d, 0x30, &exts) < 0 || d.n)
        return PX_EPARSE;
    while (exts.n) {
        if (px_der_expect(&exts, 0x30, &ext) < 0 || px_der_expect(&ext, 0x06, &oid) < 0 ||
            px_der_next(&ext, &tag, &val) < 0)
            return PX_EPARSE;
        if (tag == 0x01 && px_der_next(&ext, &tag, &val) < 0)      /* critical */
            return PX_EPARSE;
        if (tag != 0x04 || ext.n)
            return PX_EPARSE;
        if (oid.n == sizeof san_oid && !memcmp(oid.p, san_oid, sizeof san_oid) &&
            read_sans(cc, val) < 0)
            return PX_EPARSE;
    }
    return 0;
}

int px_clientcert_parse(const uint8_t *der, size_t len, px_clientcert_t *cc)
{
    px_der_t d = { der, len }, cert, tbs, f;
    unsigned tag;
    uint8_t hash[32];
    int r;

    memset(cc, 0, sizeof *cc);
    if (px_der_expect(&d, 0x30, &cert) < 0 || d.n || px_der_expect(&cert, 0x30, &tbs) < 0)
        return PX_EPARSE;
    if (wc_Sha256Hash(der, (word32)len, hash) != 0)
        return PX_EPARSE;
    for (int i = 0; i < 32; i++)
        snprintf(cc->sha256 + 2 * i, 3, "%02x", hash[i]);
    if (px_der_optional(&tbs, PX_DER_CTX(0), &f) < 0)                  /* version */
        return PX_EPARSE;
    /* serial, signature algorithm, issuer, validity */
    if (px_der_expect(&tbs, 0x02, &f) < 0 || px_der_expect(&tbs, 0x30, &f) < 0 ||
        px_der_expect(&tbs, 0x30, &f) < 0 || px_der_expect(&tbs, 0x30, &f) < 0)
        return PX_EPARSE;
    {
        const uint8_t *subj = tbs.p;
        if (px_der_expect(&tbs, 0x30, &f) < 0)
            return PX_EPARSE;
        r = px_clientcert_dn(subj, (size_t)(tbs.p - subj), cc->subject, sizeof cc->subject);
        if (r == PX_EPARSE)
            return r;
        cc->subject_truncated = r == PX_ETOOBIG;
    }
    if (px_der_expect(&tbs, 0x30, &f) < 0)                                /* public key */
        return PX_EPARSE;
    while (tbs.n) {              /* issuerUniqueID [1], subjectUniqueID [2], extensions [3] */
        if (px_der_next(&tbs, &tag, &f) < 0)
            return PX_EPARSE;
        if (tag == 0xa3 && read_extensions(cc, f) < 0)
            return PX_EPARSE;
    }
    return 0;
}

/* --- what is reported --------------------------------------------------------- */

static const char *const san_keys[PX_SAN__COUNT] = { "DNS", "URI", "email", "IP" };

size_t px_clientcert_xfcc(const px_clientcert_t *cc, char *out, size_t cap)
{
    /* Envoy's element order: Hash, Subject, URI, DNS. The subject is always
     * quoted; it holds no bare '"' (RFC 4514 escapes it as \"). */
    static const px_san_type_t order[] = { PX_SAN_URI, PX_SAN_DNS };
    out_t o = { out, cap, 0, 0 };

    if (!cap)
        return 0;
    out[0] = 0;
    puts_(&o, "Hash=");
    puts_(&o, cc->sha256);
    puts_(&o, ";Subject=\"");
    puts_(&o, cc->subject);
    puts_(&o, "\"");
    if (o.full) {
        out[0] = 0;
        return 0;
    }
    for (size_t t = 0; t < sizeof order / sizeof order[0]; t++)
        for (int i = 0; i < cc->san_count[order[t]]; i++) {
            const char *v = cc->san[order[t]][i];
            size_t mark = o.n;
            int quote = strpbrk(v, ",;=\"") != NULL;
            puts_(&o, ";");
            puts_(&o, san_keys[order[t]]);
            puts_(&o, quote ? "=\"" : "=");
            for (; *v; v++) {
                if (*v == '"')
                    puts_(&o, "\\\"");
                else
                    put(&o, v, 1);
            }
            if (quote)
                puts_(&o, "\"");
            if (o.full) {                  /* whole elements only */
                o.n = mark;
                out[mark] = 0;
                return o.n;
            }
        }
    return o.n;
}

size_t px_clientcert_log_json(const px_clientcert_t *cc, char *out, size_t cap)
{
    static const char *const names[PX_SAN__COUNT] = { "dns", "uri", "email", "ip" };
    char esc[2 * PX_CC_SUBJECT_MAX];
    out_t o = { out, cap, 0, 0 };

    if (!cap)
        return 0;
    out[0] = 0;
    px_json_escape(esc, sizeof esc, cc->subject);
    puts_(&o, "{\"subject\":\"");
    puts_(&o, esc);
    puts_(&o, "\",\"sha256\":\"");
    puts_(&o, cc->sha256);
    puts_(&o, "\"");
    if (o.full) {
        out[0] = 0;
        return 0;
    }
    for (int t = 0; t < PX_SAN__COUNT; t++) {
        size_t mark = o.n;
        if (!cc->san_count[t])
            continue;
        puts_(&o, ",\"");
        puts_(&o, names[t]);
        puts_(&o, "\":[");
        for (int i = 0; i < cc->san_count[t]; i++) {
            px_json_escape(esc, sizeof esc, cc->san[t][i]);
            puts_(&o, i ? ",\"" : "\"");
            puts_(&o, esc);
            puts_(&o, "\"");
        }
        puts_(&o, "]");
        if (o.full) {                      /* leave out the whole list */
            o.full = 0;
            o.n = mark;
            out[mark] = 0;
        }
    }
    if (o.n + 2 > cap) {
        o.n = 0;
        out[0] = 0;
        return 0;
    }
    out[o.n++] = '}';
    out[o.n] = 0;
    return o.n;
}
