/* The admin port's gRPC health session (src/proxy/grpc_health.c): a probe
 * client's bytes after the connection preface, and HealthCheckRequest
 * messages on their own.
 *
 * Byte 0: flags: 0x01 the readiness answer comes at once (from inside the
 * call that asks), else after the input; 0x02 ready (SERVING) or not; 0x04
 * feed the input in two pieces (split at byte 1), else whole. The rest:
 * what follows the preface. Checked: nothing crashes or leaks (ASan), the
 * session's output is taken after every step, and px_ghealth_parse_request
 * on the same bytes returns a NUL-terminated name shorter than its buffer
 * that occurs in the input (or an empty one). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/errors.h"
#include "proxy/grpc_health.h"

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

typedef struct {
    px_ghealth_t *g;
    unsigned flags;
    int asked;
} owner_t;

static void die(const char *what)
{
    fprintf(stderr, "grpc health fuzz: %s\n", what);
    abort();
}

static void ask(void *ud)
{
    owner_t *o = ud;
    if (o->flags & 1)
        px_ghealth_ready(o->g, !!(o->flags & 2));
    else
        o->asked = 1;
}

static void drain(owner_t *o, px_buf_t *out)
{
    if (px_ghealth_output(o->g, out) == 0)
        px_buf_reset(out);
}

static void check_parse(const uint8_t *p, size_t n)
{
    char svc[64];

    if (px_ghealth_parse_request(p, n, svc, sizeof svc) != 0)
        return;
    size_t len = strnlen(svc, sizeof svc);
    if (len >= sizeof svc)
        die("service name not terminated within its buffer");
    if (len && !memmem(p, n, svc, len))
        die("a service name that is not in the message");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    owner_t o = { 0 };
    px_buf_t out;
    size_t split;

    if (size < 1)
        return 0;
    o.flags = data[0];
    data++, size--;
    check_parse(data, size);
    if (!(o.g = px_ghealth_new(ask, &o)))
        return 0;
    px_buf_init(&out, 0);
    split = o.flags & 4 && size > 1 ? data[0] % size : size;
    if (!px_ghealth_preface(preface, sizeof preface - 1) || !px_ghealth_preface(preface, 5))
        die("the preface is not recognised");
    if (px_ghealth_input(o.g, preface, sizeof preface - 1) == 0) {
        drain(&o, &out);
        if (px_ghealth_input(o.g, data, split) == 0) {
            drain(&o, &out);
            if (split < size && px_ghealth_input(o.g, data + split, size - split) == 0)
                drain(&o, &out);
        }
    }
    if (o.asked)
        px_ghealth_ready(o.g, !!(o.flags & 2));
    drain(&o, &out);
    (void)px_ghealth_done(o.g);
    px_ghealth_free(o.g);
    px_buf_free(&out);
    return 0;
}
