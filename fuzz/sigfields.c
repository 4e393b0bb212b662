/* Signature fields and the signature base (src/sig/sigwire.c, src/sig/sig.c;
 * docs/signatures.md): X-Signature, Signature-Input + Signature,
 * Content-Digest, the RFC 8941 dictionary parser and strict base64, and
 * the verification steps before any cryptography.
 *
 * Input, one item per line ('\n'): byte 0 holds flags, then the method,
 * the authority, the target, the status, then header lines "name: value"
 * up to an empty line, then trailer lines. Flags: 0x01 a response (its
 * request has the same fields: ";req" components resolve), 0x02 parse
 * the trailers' signature, 0x04 allow classical signatures.
 *
 * Checked: every refusal says why; a built base ends with the
 * "@signature-params" line; nothing verifies against an empty keyring;
 * strict base64 re-encodes to exactly its input. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sig/sig.h"
#include "sig/sigwire.h"

#define MAX_FIELDS 32
#define NOW 1767225700

typedef struct {
    px_header_t f[MAX_FIELDS];
    int n;
} fields_t;

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "sig fuzz: %s (%s)\n", what, detail ? detail : "-");
    abort();
}

static void add_field(fields_t *fs, const char *s, size_t n)
{
    const char *colon = memchr(s, ':', n);
    size_t nl = colon ? (size_t)(colon - s) : n, vo = colon ? nl + 1 : n;
    if (fs->n < MAX_FIELDS)
        fs->f[fs->n++] = (px_header_t){ s, nl, s + vo, n - vo };
}

/* The first few field values through the standalone parsers (each parse
 * clears a 12 KB dictionary: all of them would halve the execution rate). */
static void values(const fields_t *fs, px_sigfield_t *f, const px_digest_value_t *empty)
{
    static uint8_t raw[PX_SIG_MLDSA_LEN + 8];
    static char enc[2 * sizeof raw];
    char detail[200];

    for (int i = 0; i < fs->n && i < 4; i++) {
        const char *v = fs->f[i].value;
        size_t n = fs->f[i].value_len;
        px_sig_result_t r;
        long dl;

        memset(f, 0, offsetof(px_sigfield_t, d1));
        detail[0] = '\0';
        r = px_sigfield_parse_value(v, n, f, detail, sizeof detail);
        if (r != PX_SIG_OK && !detail[0])
            die("X-Signature refused without a reason", NULL);
        detail[0] = '\0';
        r = px_content_digest_check(v, n, empty, detail, sizeof detail);
        if (r != PX_SIG_OK && !detail[0])
            die("Content-Digest refused without a reason", NULL);
        (void)px_content_digest_algs(v, n);
        if ((dl = px_b64_decode(v, n, raw, sizeof raw)) >= 0) {
            long el = px_b64_encode(raw, (size_t)dl, enc, sizeof enc, 0);
            if (el < 0 || (size_t)el != n || memcmp(enc, v, n))
                die("base64 accepted a non-canonical encoding", NULL);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static px_sig_keyring_t *ring;
    static px_digest_value_t empty;
    static px_sigfield_t f;
    fields_t hdrs = { .n = 0 }, trls = { .n = 0 };
    const char *line[4] = { "", "", "", "" };
    size_t len[4] = { 0 };
    px_sig_msg_t req = { 0 }, m;
    px_sig_policy_t pol;
    px_sig_info_t info;
    px_sig_result_t r;
    char detail[200], *buf;
    unsigned flags;
    size_t pos = 0;
    int k = 0, in_trailers = 0;
    px_buf_t base;

    if (!ring) {
        px_digest_t d;
        if (!(ring = px_sig_keyring_new()) || px_digest_init(&d, PX_DIGEST_SHA256 | PX_DIGEST_SHA512))
            abort();
        px_digest_final(&d, &empty);
    }
    if (size < 1)
        return 0;
    flags = data[0];
    /* exactly the input's bytes: an over-read is an ASan report */
    if (!(buf = malloc(size - 1 ? size - 1 : 1)))
        abort();
    memcpy(buf, data + 1, size - 1);
    while (pos < size - 1) {
        const char *s = buf + pos, *nl = memchr(s, '\n', size - 1 - pos);
        size_t n = nl ? (size_t)(nl - s) : size - 1 - pos;
        pos += n + 1;
        if (k < 4) {
            line[k] = s, len[k++] = n;
        } else if (!n && !in_trailers) {
            in_trailers = 1;
        } else {
            add_field(in_trailers ? &trls : &hdrs, s, n);
        }
    }

    req.is_request = 1;
    req.method = line[0], req.method_len = len[0];
    req.authority = line[1], req.authority_len = len[1];
    req.target = line[2], req.target_len = len[2];
    req.headers = hdrs.f, req.header_count = hdrs.n;
    m = req;
    m.trailers = trls.f, m.trailer_count = trls.n;
    if (flags & 1) {
        m.is_request = 0;
        m.status = 0;
        for (size_t i = 0; i < len[3] && i < 3; i++)
            m.status = m.status * 10 + (line[3][i] & 15);
        m.req = &req;
    }

    detail[0] = '\0';
    r = px_sigfield_parse(&m, !!(flags & 2), &f, detail, sizeof detail);
    if (r != PX_SIG_OK && !detail[0])
        die("signature field refused without a reason", NULL);
    if (r == PX_SIG_OK) {
        px_buf_init(&base, PX_SIG_MAX_BASE + 4096);
        detail[0] = '\0';
        r = px_sig_base_build(&m, &f, &base, detail, sizeof detail);
        if (r != PX_SIG_OK && !detail[0])
            die("signature base refused without a reason", NULL);
        if (r == PX_SIG_OK) {
            const char *b = px_buf_ptr(&base), *last;
            size_t bl = px_buf_size(&base);
            for (last = b + bl; last > b && last[-1] != '\n'; last--)
                ;
            if ((size_t)(b + bl - last) < 22 || memcmp(last, "\"@signature-params\": (", 22) ||
                memchr(b, '\r', bl))
                die("signature base without its final @signature-params line", detail);
        }
        px_buf_free(&base);
    }

    px_sig_policy_default(&pol);
    pol.allow_classical = flags & 4;
    r = m.is_request ? px_sig_verify_request(ring, NULL, &pol, &m, NOW, &info)
                     : px_sig_verify_response(ring, &pol, &m, NULL, NOW, &info);
    if (r == PX_SIG_OK || !info.detail[0])
        die("verification passed with no keys, or failed without a reason", info.detail);

    values(&hdrs, &f, &empty);
    values(&trls, &f, &empty);
    free(buf);
    return 0;
}
