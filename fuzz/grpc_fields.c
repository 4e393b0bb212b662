/* The gRPC fields the proxy reads or writes from untrusted bytes
 * (src/proxy/grpc.c): a client's grpc-timeout, and grpc-message built from
 * an error detail that may quote what a client or model server sent.
 *
 * Checked: grpc-timeout is accepted exactly when it is 1-8 ASCII digits and
 * one unit of H M S m u n (an independent reading), with the milliseconds
 * rounded up; grpc-message is NUL-terminated within its buffer, holds only
 * bytes 0x20..0x7E, and every '%' starts an upper-case %XX escape that
 * decodes back to the start of the error's text. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "proxy/grpc.h"

static void die(const char *what)
{
    fprintf(stderr, "grpc fields fuzz: %s\n", what);
    abort();
}

static void check_timeout(const uint8_t *p, size_t n)
{
    uint64_t ms = 0, v = 0, want = 0;
    int ok = n >= 2 && n <= 9, rc = px_grpc_timeout_parse((const char *)p, n, &ms);

    for (size_t i = 0; ok && i + 1 < n; i++) {
        ok = p[i] >= '0' && p[i] <= '9';
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    if (ok) {
        const char *units = "HMSmun";
        static const uint64_t mul[] = { 3600000, 60000, 1000, 1 };
        const char *u = memchr(units, p[n - 1], 6);
        ok = p[n - 1] != '\0' && u != NULL;
        if (ok && u - units < 4)
            want = v * mul[u - units];
        else if (ok)
            want = v / (u[0] == 'u' ? 1000 : 1000000) + (v % (u[0] == 'u' ? 1000 : 1000000) != 0);
    }
    if ((rc == 0) != ok)
        die(ok ? "a valid grpc-timeout refused" : "an invalid grpc-timeout accepted");
    if (ok && ms != want)
        die("grpc-timeout milliseconds");
}

static int unhex(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static void check_message(const uint8_t *p, size_t n)
{
    char detail[2048], out[512], text[1100];
    size_t cap = n ? (size_t)p[0] % sizeof out + 1 : sizeof out, len, k = 0;
    px_http_error_t e = n > 1 ? (px_http_error_t)(p[1] % PX_HERR__COUNT) : PX_HERR_BAD_REQUEST;

    n = n > 2 ? n - 2 : 0;
    if (n >= sizeof detail)
        n = sizeof detail - 1;
    memcpy(detail, p + (n ? 2 : 0), n);
    detail[n] = '\0';
    memset(out, 'X', sizeof out);
    len = px_grpc_message(out, cap, e, detail);
    if (len >= cap || out[len] != '\0' || strlen(out) != len)
        die("grpc-message not terminated within its buffer");
    snprintf(text, sizeof text, "%s%s%s", px_http_error_str(e), detail[0] ? ": " : "", detail);
    for (size_t i = 0; i < len; i++, k++) {
        unsigned char c = (unsigned char)out[i];
        if (c < 0x20 || c > 0x7e)
            die("grpc-message byte outside 0x20..0x7E");
        if (c == '%') {
            if (i + 2 >= len || unhex(out[i + 1]) < 0 || unhex(out[i + 2]) < 0)
                die("grpc-message '%' without two upper-case hex digits");
            c = (unsigned char)(unhex(out[i + 1]) << 4 | unhex(out[i + 2]));
            i += 2;
        }
        if (k >= strlen(text) || (unsigned char)text[k] != c)
            die("grpc-message does not decode to the error's text");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_timeout(data, size);
    check_message(data, size);
    return 0;
}
