/* DER writing for certgen (see certgen_der.h). */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/certgen_der.h"
#include "core/errors.h"

#define MAX_SANS 256

size_t px_der_hdr_size(size_t len)
{
    return len < 0x80 ? 2 : len < 0x100 ? 3 : len < 0x10000 ? 4 : 5;
}

size_t px_der_put_hdr(uint8_t *p, uint8_t tag, size_t len)
{
    size_t n = px_der_hdr_size(len);

    p[0] = tag;
    if (n == 2) {
        p[1] = (uint8_t)len;
    } else {
        p[1] = (uint8_t)(0x80 | (n - 2));
        for (size_t i = n - 1; i >= 2; i--, len >>= 8)
            p[i] = (uint8_t)len;
    }
    return n;
}

size_t px_der_put(uint8_t *p, uint8_t tag, const void *data, size_t len)
{
    size_t n = px_der_put_hdr(p, tag, len);

    memcpy(p + n, data, len);
    return n + len;
}

int px_der_get_hdr(const uint8_t *p, size_t avail, uint8_t *tag, size_t *hdr, size_t *len)
{
    size_t n, l = 0;

    if (avail < 2)
        return -1;
    *tag = p[0];
    if (p[1] < 0x80) {
        n = 2;
        l = p[1];
    } else {
        size_t k = p[1] & 0x7f;
        if (k == 0 || k > 3 || avail < 2 + k)
            return -1;
        for (size_t i = 0; i < k; i++)
            l = (l << 8) | p[2 + i];
        n = 2 + k;
    }
    if (l > avail - n)
        return -1;
    *hdr = n;
    *len = l;
    return 0;
}

int px_san_classify(const char *s, uint8_t ip[16], size_t *iplen)
{
    size_t len = s ? strlen(s) : 0;

    if (len == 0 || len > 253)
        return PX_EINVAL;
    if (inet_pton(AF_INET, s, ip) == 1) {
        *iplen = 4;
        return PX_SAN_IP;
    }
    if (inet_pton(AF_INET6, s, ip) == 1) {
        *iplen = 16;
        return PX_SAN_IP;
    }
    /* dNSName is an IA5String: an ASCII host name, optionally "*.". */
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '.' || c == '_' || (c == '*' && i == 0 && s[1] == '.');
        if (!ok)
            return PX_EINVAL;
    }
    if (s[0] == '.' || s[len - 1] == '.' || strstr(s, ".."))
        return PX_EINVAL;
    return PX_SAN_DNS;
}

int px_san_extension(const char *const *sans, int nsans, uint8_t **out, size_t *out_len,
                     int *bad)
{
    static const uint8_t san_oid[] = { 0x06, 0x03, 0x55, 0x1d, 0x11 };
    size_t names = 0, gn_len, oct_len, ext_len, off = 0, iplen = 0;
    uint8_t ip[16], *p;

    *bad = -1;
    if (nsans < 1 || nsans > MAX_SANS || !sans)
        return PX_EINVAL;
    for (int i = 0; i < nsans; i++) {
        int kind = px_san_classify(sans[i], ip, &iplen);
        size_t l;
        if (kind < 0) {
            *bad = i;
            return PX_EINVAL;
        }
        l = kind == PX_SAN_IP ? iplen : strlen(sans[i]);
        names += px_der_hdr_size(l) + l;
    }
    gn_len = px_der_hdr_size(names) + names;
    oct_len = px_der_hdr_size(gn_len) + gn_len;
    ext_len = sizeof san_oid + oct_len;
    if (!(p = malloc(px_der_hdr_size(ext_len) + ext_len)))
        return PX_ENOMEM;
    off += px_der_put_hdr(p + off, 0x30, ext_len);
    memcpy(p + off, san_oid, sizeof san_oid);
    off += sizeof san_oid;
    off += px_der_put_hdr(p + off, 0x04, gn_len);
    off += px_der_put_hdr(p + off, 0x30, names);
    for (int i = 0; i < nsans; i++) {
        if (px_san_classify(sans[i], ip, &iplen) == PX_SAN_IP)
            off += px_der_put(p + off, PX_SAN_IP, ip, iplen);
        else
            off += px_der_put(p + off, PX_SAN_DNS, sans[i], strlen(sans[i]));
    }
    *out = p;
    *out_len = off;
    return 0;
}

/* TBSCertificate ::= SEQUENCE { [0] version, serial, signature, issuer,
 * validity, subject, spki, [1] issuerUID, [2] subjectUID,
 * [3] EXPLICIT SEQUENCE OF Extension } -- [3] is always last. */
int px_tbs_add_extension(uint8_t *buf, size_t tbs_len, size_t cap, const uint8_t *ext,
                         size_t ext_len)
{
    uint8_t tag, *tmp;
    size_t hdr, body, pos, last = 0, h, l, exts_off = 0, exts_len = 0;
    size_t prefix, seq_len, a3_len, new_body, total, off = 0;

    if (px_der_get_hdr(buf, tbs_len, &tag, &hdr, &body) || tag != 0x30 ||
        hdr + body != tbs_len || body == 0)
        return PX_EPARSE;
    for (pos = hdr; pos < tbs_len; pos += h + l) {
        if (px_der_get_hdr(buf + pos, tbs_len - pos, &tag, &h, &l))
            return PX_EPARSE;
        last = pos;
    }
    prefix = body;
    if (buf[last] == 0xa3) { /* merge into the existing extensions */
        size_t ah, al, sh, sl;
        if (px_der_get_hdr(buf + last, tbs_len - last, &tag, &ah, &al) ||
            px_der_get_hdr(buf + last + ah, al, &tag, &sh, &sl) || tag != 0x30 || sh + sl != al)
            return PX_EPARSE;
        exts_off = last + ah + sh;
        exts_len = sl;
        prefix = last - hdr;
    }
    seq_len = exts_len + ext_len;
    a3_len = px_der_hdr_size(seq_len) + seq_len;
    new_body = prefix + px_der_hdr_size(a3_len) + a3_len;
    total = px_der_hdr_size(new_body) + new_body;
    if (total > cap || total > INT32_MAX || new_body >= (1u << 24))
        return PX_ETOOBIG;
    if (!(tmp = malloc(total)))
        return PX_ENOMEM;
    off += px_der_put_hdr(tmp + off, 0x30, new_body);
    memcpy(tmp + off, buf + hdr, prefix);
    off += prefix;
    off += px_der_put_hdr(tmp + off, 0xa3, a3_len);
    off += px_der_put_hdr(tmp + off, 0x30, seq_len);
    memcpy(tmp + off, buf + exts_off, exts_len);
    off += exts_len;
    memcpy(tmp + off, ext, ext_len);
    off += ext_len;
    memcpy(buf, tmp, off);
    free(tmp);
    return (int)off;
}
