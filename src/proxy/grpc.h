/* gRPC over the proxy: what a gRPC-shaped request gets when the proxy
 * itself answers (a trailers-only response: HTTP 200, grpc-status,
 * grpc-message, instead of a JSON body a gRPC client cannot read), and the
 * client's deadline (grpc-timeout). The gRPC wire rules followed are
 * grpc/grpc's doc/PROTOCOL-HTTP2.md and doc/statuscodes.md. */
#ifndef PX_GRPC_H
#define PX_GRPC_H

#include <stddef.h>
#include <stdint.h>

#include "core/errors.h"
#include "http/http1.h"

/* gRPC status codes the proxy produces (statuscodes.md). */
enum {
    PX_GRPC_OK = 0,
    PX_GRPC_INVALID_ARGUMENT = 3,
    PX_GRPC_DEADLINE_EXCEEDED = 4,
    PX_GRPC_NOT_FOUND = 5,
    PX_GRPC_PERMISSION_DENIED = 7,
    PX_GRPC_RESOURCE_EXHAUSTED = 8,
    PX_GRPC_UNIMPLEMENTED = 12,
    PX_GRPC_INTERNAL = 13,
    PX_GRPC_UNAVAILABLE = 14,
    PX_GRPC_UNAUTHENTICATED = 16,
};

/* 1 when the request's content-type is application/grpc, alone or with a
 * "+format" or ";parameters" suffix (case-insensitive). */
int px_grpc_request(const px_http_head_t *h);

/* The gRPC status for a proxy error (docs/operations.md has the table). */
int px_grpc_status(px_http_error_t e);

/* grpc-message for the error: "<error>: <detail>" percent-encoded (every
 * byte outside 0x20..0x7E, and '%', as %XX), cut to fit out (cap > 0). */
size_t px_grpc_message(char *out, size_t cap, px_http_error_t e, const char *detail);

/* Parses a grpc-timeout value strictly: 1..8 ASCII digits then one unit
 * of H M S m u n; *ms is the timeout in milliseconds, rounded up (a
 * non-zero timeout below 1 ms is 1 ms). 0, or PX_EPARSE. */
int px_grpc_timeout_parse(const char *p, size_t n, uint64_t *ms);

#endif
