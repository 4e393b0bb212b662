/* One table for every error pqproxy reports.
 *
 * PX_ERRNO: negative return codes used between modules (0 is success),
 * with a stable name and a human message.
 * PX_HTTP_ERRORS: the errors a client can see, with their HTTP status and the
 * stable "error" string of the JSON body {"error": ..., "detail": ...}. */
#ifndef PX_ERRORS_H
#define PX_ERRORS_H

#include <stddef.h>

#define PX_ERRNO_MAP(XX)                                                      \
    XX(NOMEM,      "out of memory")                                            \
    XX(INVAL,      "invalid argument")                                         \
    XX(IO,         "I/O error")                                                \
    XX(CONFIG,     "invalid configuration")                                    \
    XX(TLS,        "TLS failure")                                              \
    XX(PQPOLICY,   "handshake refused: no hybrid post-quantum group in common")\
    XX(AGAIN,      "operation would block")                                    \
    XX(EOF,        "end of stream")                                            \
    XX(TOOBIG,     "size limit exceeded")                                      \
    XX(PARSE,      "malformed input")                                          \
    XX(CRYPTO,     "cryptographic operation failed")                           \
    XX(NOTFOUND,   "not found")                                                \
    XX(UNSUPPORTED,"not supported by this build")                            \
    XX(TIMEOUT,    "timed out")

typedef enum {
    PX_OK = 0,
#define XX(name, msg) PX_E##name,
    PX__ERRNO_FIRST = -10000, /* clear of libuv's -errno codes */
    PX_ERRNO_MAP(XX)
#undef XX
} px_errno_t;

const char *px_strerror(int err);
const char *px_err_name(int err);

/* Formats a reason into err (skipped when err is NULL or errlen 0) and
 * returns code: the error path of every function with an err buffer. */
int px_errorf(int code, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* name, HTTP status, "error" string seen by clients */
#define PX_HTTP_ERRORS(XX)                                                    \
    XX(BAD_REQUEST,        400, "bad_request")                                 \
    XX(AMBIGUOUS_FRAMING,  400, "ambiguous_framing")                           \
    XX(SIG_MISSING,        401, "signature_missing")                           \
    XX(SIG_MALFORMED,      401, "signature_malformed")                         \
    XX(SIG_UNKNOWN_KEY,    401, "signature_unknown_keyid")                     \
    XX(SIG_EXPIRED,        401, "signature_expired")                           \
    XX(SIG_REPLAYED,       401, "signature_replayed")                          \
    XX(SIG_DIGEST,         401, "content_digest_mismatch")                     \
    XX(SIG_ECDSA,          401, "signature_ecdsa_invalid")                     \
    XX(SIG_MLDSA,          401, "signature_mldsa_invalid")                     \
    XX(NOT_FOUND,          404, "not_found")                                   \
    XX(METHOD_NOT_ALLOWED, 405, "method_not_allowed")                          \
    XX(REQUEST_TIMEOUT,    408, "request_timeout")                             \
    XX(LENGTH_REQUIRED,    411, "length_required")                             \
    XX(BODY_TOO_LARGE,     413, "body_too_large")                              \
    XX(URI_TOO_LONG,       414, "uri_too_long")                                \
    XX(EXPECTATION_FAILED, 417, "expectation_failed")                          \
    XX(HEADERS_TOO_LARGE,  431, "headers_too_large")                           \
    XX(INTERNAL,           500, "internal_error")                              \
    XX(NOT_IMPLEMENTED,    501, "not_implemented")                             \
    XX(UPSTREAM_ERROR,     502, "upstream_unavailable")                        \
    XX(UPSTREAM_BAD,       502, "upstream_bad_response")                       \
    XX(OVERLOADED,         503, "overloaded")                                  \
    XX(UPSTREAM_BUSY,      503, "upstream_busy")                               \
    XX(DRAINING,           503, "draining")                                    \
    XX(REPLAY_STORE_UNAVAILABLE, 503, "replay_store_unavailable")              \
    XX(UPSTREAM_TIMEOUT,   504, "upstream_timeout")                            \
    XX(DEADLINE_EXCEEDED,  504, "deadline_exceeded")                           \
    XX(VERSION,            505, "http_version_not_supported")

typedef enum {
#define XX(name, status, str) PX_HERR_##name,
    PX_HTTP_ERRORS(XX)
#undef XX
    PX_HERR__COUNT
} px_http_error_t;

/* Why an exchange ended without a complete answer, for the access log's
 * "error" field (the status then is what the client saw, or 499 when it
 * saw none: nginx's "client closed request"). */
#define PX_END_REASONS(XX)                                                    \
    XX(CLIENT_CLOSED,      "client_closed")                                    \
    XX(CLIENT_TLS,         "client_tls_error")                                 \
    XX(UPSTREAM_RESET,     "upstream_reset")                                   \
    XX(UPSTREAM_TIMEOUT,   "upstream_timeout")                                 \
    XX(REQUEST_TIMEOUT,    "request_timeout")                                  \
    XX(DEADLINE_EXCEEDED,  "deadline_exceeded")                                \
    XX(SEND_TIMEOUT,       "send_timeout")                                     \
    XX(SIGNING_FAILED,     "response_signing_failed")                          \
    XX(INTERNAL,           "internal_error")                                   \
    XX(SHUTDOWN,           "shutdown")

typedef enum {
#define XX(name, str) PX_END_##name,
    PX_END_REASONS(XX)
#undef XX
    PX_END__COUNT
} px_end_reason_t;

const char *px_end_reason_str(px_end_reason_t r);

/* On a function whose result says whether its object still exists (see
 * conn.h): the compiler refuses a caller that ignores it. */
#define PX_MUST_CHECK __attribute__((warn_unused_result))

int px_http_error_status(px_http_error_t e);
const char *px_http_error_str(px_http_error_t e);
/* RFC 9110's reason phrase for a status; px_http_status_reason says
 * "Unknown" where px_http_status_phrase says "" (a status it does not name). */
const char *px_http_status_reason(int status);
const char *px_http_status_phrase(int status);

/* Renders a complete HTTP/1.1 response for an error: status line, JSON
 * content type, Content-Length, optional "Connection: close", and the body
 * {"error":"...","detail":"..."} with `detail` JSON-escaped. Returns the
 * length written (truncating detail to fit), or PX_ETOOBIG if buf is too
 * small for the fixed part. */
int px_http_error_render(char *buf, size_t len, px_http_error_t e,
                         const char *detail, int close_conn);

#endif
