/* gRPC errors and deadlines (grpc.h). */
#include "proxy/grpc.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

int px_grpc_request(const px_http_head_t *h)
{
    static const char ct[] = "application/grpc";
    const px_header_t *f = px_http_head_get(h, "content-type");
    size_t n = sizeof ct - 1;

    if (!f || f->value_len < n || strncasecmp(f->value, ct, n))
        return 0;
    return f->value_len == n || f->value[n] == '+' || f->value[n] == ';';
}

/* By the error first where its HTTP status says too little, then by the
 * status as grpc/grpc's doc/http-grpc-status-mapping.md maps it (a
 * proxy's own 502/503/504 are UNAVAILABLE or DEADLINE_EXCEEDED there too). */
int px_grpc_status(px_http_error_t e)
{
    switch (e) {
    case PX_HERR_HEADERS_TOO_LARGE: return PX_GRPC_RESOURCE_EXHAUSTED;
    case PX_HERR_NOT_IMPLEMENTED:   return PX_GRPC_UNIMPLEMENTED;
    case PX_HERR_METHOD_NOT_ALLOWED: return PX_GRPC_UNIMPLEMENTED;
    default: break;
    }
    switch (px_http_error_status(e)) {
    case 401: return PX_GRPC_UNAUTHENTICATED;
    case 403: return PX_GRPC_PERMISSION_DENIED;
    case 404: return PX_GRPC_NOT_FOUND;
    case 408: case 504: return PX_GRPC_DEADLINE_EXCEEDED;
    case 413: return PX_GRPC_RESOURCE_EXHAUSTED;
    case 502: case 503: return PX_GRPC_UNAVAILABLE;
    default: break;
    }
    return px_http_error_status(e) < 500 ? PX_GRPC_INVALID_ARGUMENT : PX_GRPC_INTERNAL;
}

size_t px_grpc_message(char *out, size_t cap, px_http_error_t e, const char *detail)
{
    static const char hex[] = "0123456789ABCDEF";
    char raw[1024];
    size_t n = 0;

    snprintf(raw, sizeof raw, "%s%s%s", px_http_error_str(e), detail && *detail ? ": " : "",
             detail ? detail : "");
    for (const unsigned char *s = (const unsigned char *)raw; *s; s++) {
        int plain = *s >= 0x20 && *s <= 0x7e && *s != '%';
        if (n + (plain ? 1 : 3) >= cap)
            break;
        if (plain) {
            out[n++] = (char)*s;
        } else {
            out[n++] = '%';
            out[n++] = hex[*s >> 4];
            out[n++] = hex[*s & 15];
        }
    }
    out[n] = '\0';
    return n;
}

int px_grpc_timeout_parse(const char *p, size_t n, uint64_t *ms)
{
    uint64_t v = 0;

    if (n < 2 || n > 9)
        return PX_EPARSE;
    for (size_t i = 0; i + 1 < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return PX_EPARSE;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    switch (p[n - 1]) {                 /* at most 99999999 H: no overflow in ms */
    case 'H': *ms = v * 3600000; break;
    case 'M': *ms = v * 60000; break;
    case 'S': *ms = v * 1000; break;
    case 'm': *ms = v; break;
    case 'u': *ms = (v + 999) / 1000; break;
    case 'n': *ms = (v + 999999) / 1000000; break;
    default: return PX_EPARSE;
    }
    return 0;
}
