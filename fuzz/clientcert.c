/* The client certificate reader (src/net/clientcert.c): the DER of a client's
 * leaf certificate, read after wolfSSL verified it, and the texts made of
 * it: the x-forwarded-client-cert value sent to the model server and the
 * access log's object. A CA may still have signed anything, so every byte
 * is treated as hostile.
 *
 * Input: the DER. Checked: a result is 0 or PX_EPARSE; what is kept and
 * every text made of it is printable ASCII (no CR, LF or NUL can reach a
 * header or a log line); the counts stay within their caps; the header
 * value starts with the hash and fits its buffer, even a small one. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/clientcert.h"
#include "core/errors.h"

static void die(const char *what)
{
    fprintf(stderr, "clientcert fuzz: %s\n", what);
    abort();
}

static void printable(const char *s, size_t cap, const char *what)
{
    size_t n = strnlen(s, cap);
    if (n == cap)
        die(what);
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] > 0x7e)
            die(what);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static px_clientcert_t cc;
    static char x[PX_XFCC_MAX], j[PX_CC_LOG_MAX], small[96];
    int rc = px_clientcert_parse(data, size, &cc);

    if (rc != 0 && rc != PX_EPARSE)
        die("unexpected result");
    if (rc != 0)
        return 0;
    printable(cc.subject, sizeof cc.subject, "subject not printable ASCII");
    if (strlen(cc.sha256) != 64)
        die("hash not 64 hex digits");
    for (int t = 0; t < PX_SAN__COUNT; t++) {
        if (cc.san_count[t] < 0 || cc.san_count[t] > PX_CC_MAX_SANS)
            die("a SAN count past its cap");
        for (int i = 0; i < cc.san_count[t]; i++)
            printable(cc.san[t][i], PX_CC_MAX_VALUE, "a SAN not printable ASCII");
    }
    if (px_clientcert_xfcc(&cc, x, sizeof x) != strlen(x) || strncmp(x, "Hash=", 5))
        die("header value length or start");
    printable(x, sizeof x, "header value not printable ASCII");
    if (px_clientcert_xfcc(&cc, small, sizeof small) != strlen(small))
        die("small header buffer");
    if (px_clientcert_log_json(&cc, j, sizeof j) != strlen(j) || (j[0] && j[0] != '{'))
        die("log object length or start");
    printable(j, sizeof j, "log object not printable ASCII");
    return 0;
}
