/* Logging: the error log (leveled) and the access log (one JSON object per
 * request). Both are JSON lines written with one write(2) each, so lines
 * from worker threads never interleave. */
#ifndef PX_LOG_H
#define PX_LOG_H

#include <stdint.h>

#include "config/config.h"

/* What px_log_open would do, without opening or creating anything:
 * 0, or PX_EIO with "log.key: reason" in err. */
int px_log_check(const px_log_config_t *cfg, char *err, size_t errlen);
/* Opens the configured destinations (replacing earlier ones). */
int px_log_open(const px_log_config_t *cfg, char *err, size_t errlen);
void px_log_close(void);

int px_log_enabled(px_log_level_t level);
void px_log(px_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define px_debug(...) do { if (px_log_enabled(PX_LOG_DEBUG)) px_log(PX_LOG_DEBUG, __VA_ARGS__); } while (0)
#define px_info(...) px_log(PX_LOG_INFO, __VA_ARGS__)
#define px_warn(...) px_log(PX_LOG_WARN, __VA_ARGS__)
#define px_error(...) px_log(PX_LOG_ERROR, __VA_ARGS__)

/* For a condition that can repeat thousands of times a second (one owner
 * thread each): px_ratelimit returns 1 when a line may be logged now (the
 * first time, then at most once per interval) and puts in *suppressed how
 * many occurrences were held back since the last line; 0 counts this one
 * as held back. */
typedef struct {
    uint64_t last_ms, suppressed;
    int logged;
} px_ratelimit_t;

int px_ratelimit(px_ratelimit_t *r, uint64_t now_ms, uint64_t interval_ms, uint64_t *suppressed);

typedef struct {
    const char *client;          /* "ip:port" */
    const char *sni, *tls_version, *group, *cipher, *cert_key;
    const char *client_cert;        /* verified client certificate: a JSON object, or NULL */
    const char *protocol;           /* "HTTP/1.1", "h2"; NULL: not logged */
    const char *method, *path;
    int status;
    uint64_t bytes_in, bytes_out;   /* request / response body bytes */
    double duration_ms;             /* head received -> response complete */
    double upstream_ms;             /* request sent -> first response byte; < 0: none */
    const char *upstream;           /* the upstream's name ("default", upstreams.<name>); NULL: none */
    const char *request_id;
    const char *sig_result, *sig_keyid;  /* NULL when no signature policy applies */
    const char *error;              /* the error string when pqproxy answered itself */
    int grpc_status;                /* 1 + grpc-status (trailers or our own error), 0: not logged */
    int worker;
} px_access_t;

void px_access_log(const px_access_t *a);
/* On a worker thread: batch this thread's lines until px_access_log_flush
 * (called once per loop turn). Off flushes and frees the batch. */
int px_access_log_batch(int on);
void px_access_log_flush(void);
int px_access_log_enabled(void);

/* JSON string escaping into out (always NUL-terminated); returns length. */
size_t px_json_escape(char *out, size_t cap, const char *s);

#endif
