/* age's ASCII armor (src/seal/armor.c, docs/sealing.md): the bytes as
 * armored input, and the bytes as data armored and read back.
 *
 * Checked: a refusal always says why ("armor: ..."); the armor is strict,
 * so any input the reader accepts is, apart from whitespace before the
 * BEGIN line and after the END line and CRLF line ends, byte for byte the
 * writer's encoding of what it decoded; and reader(writer(x)) == x. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seal/armor.h"

#define MAX_IN 65536

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "armor fuzz: %s (%s)\n", what, detail ? detail : "-");
    abort();
}

static int ws(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Reads all of in through the armor reader into out (cap bytes): the
 * length, or -1 with err set. */
static long dearmor(FILE *in, uint8_t *out, size_t cap, char *err, size_t errlen)
{
    FILE *r;
    size_t n;
    int bad;
    if (!px_armor_detect(in)) {
        snprintf(err, errlen, "not armor");
        return -1;
    }
    if (!(r = px_armor_reader(in, err, errlen)))
        die("reader", NULL);
    n = fread(out, 1, cap, r);
    bad = ferror(r) || *err;
    if (!bad && getc(r) != EOF)
        die("more decoded bytes than the input can hold", NULL);
    fclose(r);
    if (bad && strncmp(err, "armor: ", 7))
        die("refusal without a reason", err);
    return bad ? -1 : (long)n;
}

/* The writer's armor of data into a malloc'd buffer (*len bytes). */
static char *armor(const uint8_t *data, size_t size, size_t *len)
{
    char *buf = NULL;
    FILE *mem = open_memstream(&buf, len), *w = NULL;
    if (!mem || !(w = px_armor_writer(mem)))
        die("writer", NULL);
    if (fwrite(data, 1, size, w) != size || fclose(w) != 0 || fclose(mem) != 0)
        die("writer failed", NULL);
    return buf;
}

static void check_strict(const uint8_t *data, size_t size)
{
    static uint8_t dec[MAX_IN], norm[MAX_IN + 2];
    char err[256] = "", *canon;
    size_t a = 0, b = size, n = 0, clen;
    FILE *in = fmemopen((void *)data, size, "rb");
    long got;
    if (!in)
        die("fmemopen", NULL);
    got = dearmor(in, dec, sizeof dec, err, sizeof err);
    fclose(in);
    if (got < 0)
        return;
    /* accepted: the input must be the canonical encoding, give or take
     * surrounding whitespace and CRLF */
    while (a < b && ws(data[a]))
        a++;
    while (b > a && ws(data[b - 1]))
        b--;
    for (size_t i = a; i < b; i++)
        if (!(data[i] == '\r' && i + 1 < b && data[i + 1] == '\n'))
            norm[n++] = data[i];
    norm[n++] = '\n';
    canon = armor(dec, (size_t)got, &clen);
    if (clen != n || memcmp(canon, norm, n))
        die("accepted a non-canonical armor", NULL);
    free(canon);
}

static void check_round_trip(const uint8_t *data, size_t size)
{
    static uint8_t dec[MAX_IN + 1];
    char err[256] = "";
    size_t len;
    char *text = armor(data, size, &len);
    FILE *in = fmemopen(text, len, "rb");
    long got;
    if (!in)
        die("fmemopen", NULL);
    got = dearmor(in, dec, sizeof dec, err, sizeof err);
    if (got != (long)size || memcmp(dec, data, size))
        die("round trip", err);
    fclose(in);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_IN)
        return 0;
    check_strict(data, size);
    check_round_trip(data, size);
    return 0;
}
