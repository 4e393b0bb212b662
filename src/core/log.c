#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "net/clientcert.h"
#include "core/errors.h"

static int err_fd = 2;
static int access_fd = 1;       /* -1: off */
static px_log_level_t min_level = PX_LOG_INFO;

static const char *level_names[] = { "debug", "info", "warn", "error" };

/* Worker threads batch access-log lines and write them once per loop turn
 * (px_access_log_flush from a prepare handle, before the loop waits). */
#define BATCH_MAX (64 * 1024)
static __thread char *batch;
static __thread size_t batch_len;
static __thread int batching;

static int open_dest(const char *dest, int dflt, char *err, size_t errlen, const char *key)
{
    int fd;
    if (!dest)
        return dflt;
    if (!strcmp(dest, "stdout"))
        return 1;
    if (!strcmp(dest, "stderr"))
        return 2;
    if (!strcmp(dest, "off"))
        return -1;
    fd = open(dest, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
        snprintf(err, errlen, "%s: cannot open %s: %s", key, dest, strerror(errno));
    return fd < 0 ? -2 : fd;
}

/* Whether run could open dest for appending, without creating it: an
 * existing file is opened, a new one needs a writable directory. */
static int check_dest(const char *dest, char *err, size_t errlen, const char *key)
{
    char dir[4096];
    const char *slash;
    int fd;

    if (!dest || !strcmp(dest, "stdout") || !strcmp(dest, "stderr") || !strcmp(dest, "off"))
        return 0;
    fd = open(dest, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOCTTY);
    if (fd >= 0) {
        close(fd);
        return 0;
    }
    if (errno == ENOENT) {
        slash = strrchr(dest, '/');
        snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - dest) + !(slash - dest) : 1,
                 slash ? dest : ".");
        if (access(dir, W_OK | X_OK) == 0)
            return 0;
    }
    snprintf(err, errlen, "%s: cannot open %s: %s", key, dest, strerror(errno));
    return PX_EIO;
}

int px_log_check(const px_log_config_t *cfg, char *err, size_t errlen)
{
    if (check_dest(cfg->error_log, err, errlen, "log.error_log") != 0 ||
        check_dest(cfg->access_log, err, errlen, "log.access_log") != 0)
        return PX_EIO;
    return 0;
}

int px_log_open(const px_log_config_t *cfg, char *err, size_t errlen)
{
    int e = open_dest(cfg->error_log, 2, err, errlen, "log.error_log");
    int a;
    if (e == -2)
        return PX_EIO;
    a = open_dest(cfg->access_log, 1, err, errlen, "log.access_log");
    if (a == -2) {
        if (e > 2)
            close(e);
        return PX_EIO;
    }
    px_log_close();
    err_fd = e < 0 ? 2 : e;
    access_fd = a;
    min_level = cfg->level;
    return 0;
}

void px_log_close(void)
{
    if (err_fd > 2)
        close(err_fd);
    if (access_fd > 2)
        close(access_fd);
    err_fd = 2;
    access_fd = 1;
}

int px_ratelimit(px_ratelimit_t *r, uint64_t now_ms, uint64_t interval_ms, uint64_t *suppressed)
{
    if (r->logged && now_ms - r->last_ms < interval_ms) {
        r->suppressed++;
        return 0;
    }
    *suppressed = r->suppressed;
    r->suppressed = 0;
    r->last_ms = now_ms;
    r->logged = 1;
    return 1;
}

int px_log_enabled(px_log_level_t level)
{
    return level >= min_level;
}

int px_access_log_enabled(void)
{
    return access_fd >= 0;
}

size_t px_json_escape(char *out, size_t cap, const char *s)
{
    size_t n = 0;
    if (!cap)
        return 0;
    for (; s && *s && n + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            n += (size_t)snprintf(out + n, cap - n, "\\u%04x", c);
        } else {
            out[n++] = (char)c;
        }
    }
    out[n] = 0;
    return n;
}

static size_t timestamp(char *buf, size_t cap)
{
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    return (size_t)snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                            tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                            (int)(tv.tv_usec / 1000));
}

static void write_line(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        buf += w;
        len -= (size_t)w;
    }
}

void px_log(px_log_level_t level, const char *fmt, ...)
{
    char msg[1024], esc[2048], line[2304], ts[64];
    va_list ap;
    int n;

    if (level < min_level)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    px_json_escape(esc, sizeof esc, msg);
    timestamp(ts, sizeof ts);
    n = snprintf(line, sizeof line, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"%s\"}\n", ts,
                 level_names[level], esc);
    if (n > 0)
        write_line(err_fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

#define FIELD(name, val)                                                                        \
    do {                                                                                        \
        px_json_escape(esc, sizeof esc, (val) ? (val) : "");                                    \
        n += snprintf(line + n, sizeof line - (size_t)n, ",\"" name "\":\"%s\"", esc);         \
    } while (0)

void px_access_log(const px_access_t *a)
{
    char line[4096 + PX_CC_LOG_MAX], esc[1024], ts[64];
    int n;

    if (access_fd < 0)
        return;
    timestamp(ts, sizeof ts);
    n = snprintf(line, sizeof line, "{\"time\":\"%s\"", ts);
    FIELD("client", a->client);
    FIELD("sni", a->sni);
    FIELD("tls_version", a->tls_version);
    FIELD("group", a->group);
    FIELD("cipher", a->cipher);
    FIELD("cert_key", a->cert_key);
    if (a->client_cert && a->client_cert[0])
        n += snprintf(line + n, sizeof line - (size_t)n, ",\"client_cert\":%s", a->client_cert);
    if (a->protocol)
        FIELD("protocol", a->protocol);
    FIELD("method", a->method);
    FIELD("path", a->path);
    n += snprintf(line + n, sizeof line - (size_t)n,
                  ",\"status\":%d,\"bytes_in\":%llu,\"bytes_out\":%llu,\"duration_ms\":%.3f", a->status,
                  (unsigned long long)a->bytes_in, (unsigned long long)a->bytes_out, a->duration_ms);
    if (a->upstream_ms >= 0)
        n += snprintf(line + n, sizeof line - (size_t)n, ",\"upstream_ms\":%.3f", a->upstream_ms);
    else
        n += snprintf(line + n, sizeof line - (size_t)n, ",\"upstream_ms\":null");
    if (a->upstream)
        FIELD("upstream", a->upstream);
    else
        n += snprintf(line + n, sizeof line - (size_t)n, ",\"upstream\":null");
    FIELD("request_id", a->request_id);
    if (a->sig_result) {
        FIELD("sig", a->sig_result);
        FIELD("sig_keyid", a->sig_keyid);
    }
    if (a->error)
        FIELD("error", a->error);
    if (a->grpc_status)
        n += snprintf(line + n, sizeof line - (size_t)n, ",\"grpc_status\":%d", a->grpc_status - 1);
    n += snprintf(line + n, sizeof line - (size_t)n, ",\"worker\":%d}\n", a->worker);
    if (n <= 0 || (size_t)n >= sizeof line)
        return;
    if (!batching) {
        write_line(access_fd, line, (size_t)n);
        return;
    }
    if (batch_len + (size_t)n > BATCH_MAX)
        px_access_log_flush();
    memcpy(batch + batch_len, line, (size_t)n);
    batch_len += (size_t)n;
}

int px_access_log_batch(int on)
{
    if (on && !batch) {
        batch = malloc(BATCH_MAX);
        if (!batch)
            return PX_ENOMEM;
    }
    if (!on) {
        px_access_log_flush();
        free(batch);
        batch = NULL;
    }
    batching = on;
    return 0;
}

void px_access_log_flush(void)
{
    /* whole lines only, in one write: lines from threads never interleave
     * (O_APPEND files; pipes keep writes up to PIPE_BUF atomic, and a
     * batch is split at line ends beyond that) */
    size_t off = 0;
    while (off < batch_len && access_fd >= 0) {
        size_t n = batch_len - off;
        if (n > 4096) {
            const char *nl = memrchr(batch + off, '\n', 4096);
            n = nl ? (size_t)(nl - (batch + off)) + 1 : n;
        }
        write_line(access_fd, batch + off, n);
        off += n;
    }
    batch_len = 0;
}
