/* The gRPC health checking protocol (grpc/grpc doc/health-checking.md,
 * grpc.health.v1.Health/Check) on the admin port, for probes that speak
 * gRPC (Kubernetes' `grpc` probe, grpc_health_probe): a connection that
 * opens with the HTTP/2 preface (h2c, prior knowledge) gets an HTTP/2
 * session of its own instead of the HTTP/1.1 endpoints.
 *
 * Services: "" and "readiness" answer as /readyz does (SERVING, or
 * NOT_SERVING while the model server is unreachable or the proxy drains),
 * "liveness" as /healthz (SERVING while the process answers at all);
 * another name is NOT_FOUND (grpc-status 5), another method UNIMPLEMENTED
 * (12), a request that is not a HealthCheckRequest INVALID_ARGUMENT (3).
 * Watch is not offered (UNIMPLEMENTED): probes use Check.
 *
 * Memory only: the admin connection feeds bytes in and writes what
 * px_ghealth_output gives; a readiness answer is asked for through
 * ask_ready and given back with px_ghealth_ready. */
#ifndef PX_GRPC_HEALTH_H
#define PX_GRPC_HEALTH_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/errors.h"

typedef struct px_ghealth px_ghealth_t;

/* The client's first bytes begin (or are a prefix of) the HTTP/2 preface:
 * 1; 0 for anything else (HTTP/1.1). */
int px_ghealth_preface(const void *p, size_t n);

/* ask_ready(ud): a Check needs the readiness answer; px_ghealth_ready must
 * follow, once (later, or from inside ask_ready). */
px_ghealth_t *px_ghealth_new(void (*ask_ready)(void *ud), void *ud);
void px_ghealth_free(px_ghealth_t *g);

/* Client bytes. 0, or PX_EPARSE: the connection must end (flush
 * px_ghealth_output first: a GOAWAY may say why). */
int px_ghealth_input(px_ghealth_t *g, const void *p, size_t n) PX_MUST_CHECK;
/* The readiness answer asked for. */
void px_ghealth_ready(px_ghealth_t *g, int ready);
/* Appends the frames to send. 0, or PX_EPARSE / PX_ENOMEM. */
int px_ghealth_output(px_ghealth_t *g, px_buf_t *out) PX_MUST_CHECK;
/* Every call answered and nothing left to send: close the connection. */
int px_ghealth_done(const px_ghealth_t *g);

/* Decodes a HealthCheckRequest (field 1, string service; unknown fields
 * skipped as protobuf allows) from a gRPC message's payload. The service
 * name is copied NUL-terminated into svc (cap bytes). 0, or PX_EPARSE (not
 * protobuf, a name with a NUL or longer than cap - 1). */
int px_ghealth_parse_request(const uint8_t *p, size_t n, char *svc, size_t cap) PX_MUST_CHECK;

#endif
