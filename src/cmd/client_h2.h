/* `pqproxy request --http2`: one request over HTTP/2 (libnghttp2's client
 * session) on a TLS link where ALPN chose h2. Blocking I/O, as client.c. */
#ifndef PX_CMD_CLIENT_H2_H
#define PX_CMD_CLIENT_H2_H

#include <stdio.h>

#include "http/msg.h"
#include "net/tls.h"
#include "sig/sig.h"

typedef struct {
    const char *method, *authority, *path;
    const char *const *headers;           /* "Name: value", as given to -H */
    int header_count;
    const px_header_t *extra;             /* fields sent as they are (the request's signature) */
    int extra_count;
    const char *user_agent;
    const char *data;                     /* body in memory (body_len bytes), or */
    FILE *body;                           /* streamed from here (NULL: none) */
    long long body_len;                   /* -1: unknown (no content-length) */
    int include;                          /* print the response head (and trailers) */
    FILE *out;
    px_msg_t *resp;                       /* set: the final response's fields and trailers kept */
    px_digest_t *digest;                  /* set: the response body hashed into it */
} px_h2_client_req_t;

/* Sends the request, writes the response body to r->out as it arrives.
 * 0 with *status, or -1 (the reason printed to stderr). */
int px_h2_client_run(int fd, px_tls_t *tls, int timeout_ms, const px_h2_client_req_t *r, int *status);

#endif
