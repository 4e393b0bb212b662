/* `pqproxy healthcheck [--url http://HOST:PORT/PATH] [--timeout MS]`: one
 * plain HTTP/1.1 GET against the admin listener, exit 0 on a 2xx answer and
 * 1 otherwise. It exists so that container images without curl (ours) can
 * have a HEALTHCHECK: `HEALTHCHECK CMD ["pqproxy", "healthcheck"]`. */
#include "cmd/healthcheck.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cmd/cli.h"
#include "core/errors.h"
#include "http/http1.h"
#include "core/sockio.h"

#define DEFAULT_URL "http://127.0.0.1:9901/healthz"
#define DEFAULT_TIMEOUT_MS 3000
#define MAX_RESPONSE (64 * 1024)

static int usage(FILE *f)
{
    fprintf(f,
            "usage: pqproxy healthcheck [--url http://HOST:PORT/PATH] [--timeout MS] [-q]\n"
            "\n"
            "GETs the URL (default " DEFAULT_URL ") over plain HTTP and\n"
            "exits 0 when the status is 2xx, 1 otherwise (2 on a usage error).\n"
            "  --url URL      the admin endpoint to ask\n"
            "  --timeout MS   whole-request deadline (default %d)\n"
            "  -q, --quiet    print nothing on success\n",
            DEFAULT_TIMEOUT_MS);
    return f == stderr ? 2 : 0;
}

/* http://host[:port][/path] -> parts; IPv6 hosts in brackets. */
int px_healthcheck_parse_url(const char *url, char *host, size_t hcap, char *port, size_t pcap,
                             const char **path)
{
    const char *p, *end, *colon = NULL;
    size_t n;

    if (!url || strncasecmp(url, "http://", 7) != 0)
        return -1;
    p = url + 7;
    end = p + strcspn(p, "/?#");
    *path = *end == '/' ? end : "/";
    if (*p == '[') {
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (!rb)
            return -1;
        n = (size_t)(rb - p - 1);
        if (rb[1] == ':')
            colon = rb + 1;
        else if (rb + 1 != end)
            return -1;
        p++;
    } else {
        colon = memchr(p, ':', (size_t)(end - p));
        n = (size_t)((colon ? colon : end) - p);
    }
    if (n == 0 || n >= hcap)
        return -1;
    memcpy(host, p, n);
    host[n] = '\0';
    if (colon) {
        size_t pl = (size_t)(end - colon - 1);
        if (pl == 0 || pl >= pcap || strspn(colon + 1, "0123456789") < pl)
            return -1;
        memcpy(port, colon + 1, pl);
        port[pl] = '\0';
    } else {
        if (pcap < 3)
            return -1;
        snprintf(port, pcap, "80");
    }
    return 0;
}

static int dial(const char *host, const char *port, long long deadline, char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL, *ai;
    int fd = -1, rc;

    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "%s:%s: %s", host, port, gai_strerror(rc));
        return -1;
    }
    snprintf(err, errlen, "%s:%s: no address", host, port);
    for (ai = res; ai; ai = ai->ai_next) {
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        if (errno == EINPROGRESS) {
            rc = px_wait_fd(fd, POLLOUT, deadline, NULL);
            if (rc > 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
                break;
            snprintf(err, errlen, "connect %s:%s: %s", host, port,
                     rc == 0 ? "timed out" : strerror(soerr ? soerr : errno));
        } else {
            snprintf(err, errlen, "connect %s:%s: %s", host, port, strerror(errno));
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* The whole exchange; returns the HTTP status (> 0) or -1 with err set. */
int px_healthcheck_get(const char *url, int timeout_ms, char *err, size_t errlen)
{
    char host[256], port[16], req[1024], buf[4096];
    const char *path;
    px_http1_limits_t lim = { 16384, 100, MAX_RESPONSE };
    px_http1_t *p = NULL;
    long long deadline = px_now_ms() + (timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS);
    int fd = -1, status = -1, n;

    if (px_healthcheck_parse_url(url, host, sizeof host, port, sizeof port, &path) < 0) {
        snprintf(err, errlen, "bad URL '%s' (want http://HOST:PORT/PATH)", url ? url : "");
        return -1;
    }
    n = snprintf(req, sizeof req,
                 "GET %s HTTP/1.1\r\nHost: %s%s%s:%s\r\nUser-Agent: pqproxy-healthcheck\r\n"
                 "Connection: close\r\n\r\n",
                 path, strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "", port);
    if (n < 0 || (size_t)n >= sizeof req || strpbrk(path, " \r\n")) {
        snprintf(err, errlen, "bad URL path");
        return -1;
    }
    if ((fd = dial(host, port, deadline, err, errlen)) < 0)
        goto fail;
    if (px_sock_send_all(fd, req, (size_t)n, deadline, NULL) < 0) {
        snprintf(err, errlen, "send: %s", strerror(errno));
        goto fail;
    }
    if (!(p = px_http1_new(0, &lim))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (;;) {
        size_t used = 0, pos = 0;
        ssize_t r = px_sock_recv(fd, buf, sizeof buf, deadline, NULL);
        if (r == PX_ETIMEOUT) {
            snprintf(err, errlen, "timed out waiting for the response");
            goto fail;
        }
        if (r <= 0) {
            if (r == 0 && px_http1_finish(p) == PX_H1_END && status > 0)
                goto done;
            snprintf(err, errlen, "%s", r == 0 ? "connection closed before a complete response"
                                               : strerror(errno));
            goto fail;
        }
        for (;;) {              /* until NEED_MORE: END may follow with no input */
            const char *data, *detail;
            size_t dlen;
            px_h1_event_t ev = px_http1_parse(p, buf + pos, (size_t)r - pos, &used, &data, &dlen);
            pos += used;
            if (ev == PX_H1_HEAD && !px_http1_is_interim(p))
                status = px_http1_head(p)->status;
            else if (ev == PX_H1_END && status > 0)
                goto done;
            else if (ev == PX_H1_ERROR) {
                px_http1_error(p, &detail);
                snprintf(err, errlen, "malformed response: %s", detail);
                goto fail;
            } else if (ev == PX_H1_NEED_MORE) {
                break;
            }
        }
    }
done:
    px_http1_free(p);
    close(fd);
    return status;
fail:
    px_http1_free(p);
    if (fd >= 0)
        close(fd);
    return -1;
}

int px_cmd_healthcheck(int argc, char **argv)
{
    const char *url = DEFAULT_URL;
    int timeout_ms = DEFAULT_TIMEOUT_MS, quiet = 0, status;
    char err[512];

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int r;
        if (px_cli_is_help(a))
            return usage(stdout);
        if ((r = px_cli_opt("healthcheck", argc, argv, &i, "--url", &v)) > 0) {
            url = v;
        } else if (r == 0 && (r = px_cli_opt("healthcheck", argc, argv, &i, "--timeout", &v)) > 0) {
            char *end;
            long t = strtol(v, &end, 10);
            if (*end || t < 1 || t > 600000)
                return px_cli_usage_error("healthcheck", "--timeout must be 1..600000 ms, not '%s'", v);
            timeout_ms = (int)t;
        } else if (r < 0) {
            return 2;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = 1;
        } else {
            return px_cli_unknown("healthcheck", a);
        }
    }
    status = px_healthcheck_get(url, timeout_ms, err, sizeof err);
    if (status < 0) {
        fprintf(stderr, "pqproxy healthcheck: %s: %s\n", url, err);
        return 1;
    }
    if (status < 200 || status > 299) {
        fprintf(stderr, "pqproxy healthcheck: %s: status %d\n", url, status);
        return 1;
    }
    if (!quiet)
        printf("%s: status %d\n", url, status);
    return 0;
}
