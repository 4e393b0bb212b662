/* The age header and stanza parser (src/seal/age.c, docs/sealing.md), and open
 * on the same bytes as a whole file with fixed X25519 and mlkem768x25519
 * identities, which no fuzzed stanza can satisfy; and the bytes as a
 * Bech32 recipient and identity (src/seal/bech32.c).
 *
 * Checked: a parsed header lies within the input, the MAC covers a prefix
 * ending in "---", every stanza has a type and at most PX_AGE_MAX_ARGS
 * arguments; every refusal says why; open never succeeds without the file
 * key and writes nothing before the header MAC is verified. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seal/age.h"

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "age fuzz: %s (%s)\n", what, detail ? detail : "-");
    abort();
}

static void check_header(const uint8_t *data, size_t size)
{
    px_age_header_t h;
    char err[256] = "";
    int r = px_age_header_parse(data, size, &h, err, sizeof err);
    if (r != 0) {
        if (!*err)
            die("refusal without a reason", NULL);
    } else {
        if (h.len > size || h.mac_off + 44 + 1 != h.len || memcmp(data + h.mac_off - 3, "---", 3))
            die("header bounds", NULL);
        if (h.n < 1 || h.n > PX_AGE_MAX_STANZAS)
            die("stanza count", NULL);
        for (int i = 0; i < h.n; i++)
            if (!h.st[i].type || !*h.st[i].type || h.st[i].nargs > PX_AGE_MAX_ARGS)
                die("stanza", h.st[i].type);
    }
    px_age_header_free(&h);
}

static void check_open(const uint8_t *data, size_t size)
{
    static px_age_identity_t ids[2] = { { .kind = PX_AGE_X25519, .secret = { 1, 2, 3 } },
                                        { .kind = PX_AGE_PQ, .secret = { 4, 5, 6 } } };
    char err[512] = "", outbuf[16];
    FILE *in = fmemopen((void *)data, size, "rb");
    FILE *out = fmemopen(outbuf, sizeof outbuf, "wb");
    if (!in || !out)
        die("fmemopen", NULL);
    int r = px_age_open(in, out, ids, 2, err, sizeof err);
    if (r == 0)
        die("opened a file without its key", NULL);
    if (!*err)
        die("refusal without a reason", NULL);
    if (ftell(out) != 0)
        die("plaintext written before the header was authenticated", err);
    fclose(in);
    fclose(out);
}

static void check_keys(const uint8_t *data, size_t size)
{
    char s[PX_AGE_KEY_STR + 1], err[256] = "";
    px_age_recipient_t rc;
    px_age_identity_t id;
    size_t n = size < PX_AGE_KEY_STR ? size : PX_AGE_KEY_STR;
    memcpy(s, data, n);
    s[n] = '\0';
    if (px_age_parse_recipient(s, &rc, err, sizeof err) != 0 && !*err)
        die("recipient refusal without a reason", s);
    err[0] = '\0';
    if (px_age_parse_identity(s, &id, err, sizeof err) != 0 && !*err)
        die("identity refusal without a reason", s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > PX_AGE_MAX_HEADER + 4096)
        return 0;
    check_header(data, size);
    check_open(data, size);
    check_keys(data, size);
    return 0;
}
