/* The ClientHello pre-parser (src/net/tls.c, px_tls_parse_client_hello) and the
 * key-share checks it runs (src/net/groups.c, px_group_check_share): bytes from
 * any client on the internet, read before any TLS.
 *
 * Byte 0 picks a cut point: the input is parsed whole and as a prefix, so
 * both record fragmentation and truncation (PX_EAGAIN) are exercised.
 *
 * Checked: a result is 0, PX_EAGAIN or PX_EPARSE; PX_EPARSE carries its
 * fault and an alert; a parsed hello's counts stay inside their arrays, its
 * server name is lowercase printable; a share fault is a non-empty text;
 * the same bytes always parse the same way. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "net/tls.h"

static void die(const char *what)
{
    fprintf(stderr, "clienthello fuzz: %s\n", what);
    abort();
}

static void check(const char *p, size_t n)
{
    px_hello_t h, again;
    int rc = px_tls_parse_client_hello(p, n, &h);

    if (rc != 0 && rc != PX_EAGAIN && rc != PX_EPARSE)
        die("unexpected result");
    if (rc == PX_EPARSE && (!h.fault || !h.fault[0] || !h.alert))
        die("a refusal without its reason or alert");
    if (rc == 0) {
        if (h.group_count < 0 || h.group_count > PX_HELLO_MAX_GROUPS ||
            h.key_share_count < 0 || h.key_share_count > PX_HELLO_MAX_GROUPS ||
            h.sigalg_count < 0 || h.sigalg_count > PX_HELLO_MAX_SIGALGS)
            die("a count outside its array");
        if (memchr(h.sni, 0, sizeof h.sni) == NULL)
            die("server name not terminated");
        for (const char *s = h.sni; *s; s++)
            if (*s <= 0x20 || *s >= 0x7f || (*s >= 'A' && *s <= 'Z'))
                die("server name not lowercase printable");
        for (int i = 0; i < h.key_share_count; i++)
            if (h.key_share_fault[i] && !h.key_share_fault[i][0])
                die("an empty share fault");
    }
    if (px_tls_parse_client_hello(p, n, &again) != rc || (rc == 0 && memcmp(&h, &again, sizeof h)))
        die("the same bytes parsed two ways");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy;
    size_t cut;

    if (size < 1)
        return 0;
    cut = size > 1 ? (size_t)data[0] * (size - 1) / 255 : 0;
    /* exact-size copies: ASan sees any read past the input */
    if (!(copy = malloc(size - 1 ? size - 1 : 1)))
        return 0;
    memcpy(copy, data + 1, size - 1);
    check(copy, size - 1);
    free(copy);
    if (!(copy = malloc(cut ? cut : 1)))
        return 0;
    memcpy(copy, data + 1, cut);
    check(copy, cut);
    free(copy);
    return 0;
}
