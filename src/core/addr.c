/* Address strings from the config and the environment -> px_addr_t.
 *
 * Hosts must be numeric ("localhost" is taken as 127.0.0.1): names are never
 * resolved, so nothing on the connection path can block on DNS. Only
 * px_addr_parse_name takes names, for callers that resolve them off the
 * loop (uv_getaddrinfo: the Redis replay store). Reasons
 * never echo the input; callers quote it (sanitised) themselves. */
#include "config/config.h"
#include "core/errors.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#define bad(...) px_errorf(PX_EINVAL, __VA_ARGS__)

static int parse_unix(const char *path, px_addr_t *a, char *err, size_t errlen)
{
    size_t n = strlen(path);
    size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1; /* room for the NUL */

    if (n == 0)
        return bad(err, errlen, "unix socket path is empty");
    if (path[0] != '/')
        return bad(err, errlen, "unix socket path must be absolute (unix:/path)");
    if (n > max)
        return bad(err, errlen, "unix socket path is %zu bytes, the limit is %zu", n, max);
    a->is_unix = 1;
    memcpy(a->host, path, n + 1);
    return 0;
}

/* Decimal 1..65535, digits only (no sign, no spaces). */
static int parse_port(const char *s, uint16_t *port)
{
    unsigned long v = 0;
    size_t i;

    for (i = 0; s[i]; i++) {
        if (s[i] < '0' || s[i] > '9' || i >= 5)
            return -1;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (i == 0 || v < 1 || v > 65535)
        return -1;
    *port = (uint16_t)v;
    return 0;
}

/* A DNS name: dot-separated labels of letters, digits, '-' and '_' (as
 * Kubernetes Service and StatefulSet names have), each 1..63 bytes, not
 * starting or ending with '-'; a trailing dot is allowed. */
static int is_dns_name(const char *h)
{
    size_t label = 0, n = strlen(h);

    if (n == 0 || n > 253)
        return 0;
    for (const char *p = h; *p; p++) {
        if (*p == '.') {
            if (label == 0 || p[-1] == '-')
                return 0;
            label = 0;
        } else if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                   *p == '_' || (*p == '-' && label > 0)) {
            if (++label > 63)
                return 0;
        } else {
            return 0;
        }
    }
    return h[n - 1] != '-';
}

static int parse(const char *s, px_addr_t *addr, int names, char *err, size_t errlen);

int px_addr_parse(const char *s, px_addr_t *addr, char *err, size_t errlen)
{
    return parse(s, addr, 0, err, errlen);
}

int px_addr_parse_name(const char *s, px_addr_t *addr, char *err, size_t errlen)
{
    return parse(s, addr, 1, err, errlen);
}

static int parse(const char *s, px_addr_t *addr, int names, char *err, size_t errlen)
{
    px_addr_t a;
    const char *host, *port;
    size_t hlen;
    int v6 = 0;
    unsigned char bin[16];

    memset(&a, 0, sizeof a);
    if (!s || !*s)
        return bad(err, errlen, "empty address");
    if (!strncmp(s, "unix:", 5)) {
        if (parse_unix(s + 5, &a, err, errlen) < 0)
            return PX_EINVAL;
        *addr = a;
        return 0;
    }
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close)
            return bad(err, errlen, "missing ']' after the IPv6 address");
        if (close[1] != ':')
            return bad(err, errlen, "expected :PORT after ']'");
        host = s + 1;
        hlen = (size_t)(close - host);
        port = close + 2;
        v6 = 1;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon)
            return bad(err, errlen, "expected HOST:PORT, [IPv6]:PORT or unix:/path");
        if (memchr(s, ':', (size_t)(colon - s)))
            return bad(err, errlen, "IPv6 addresses must be in brackets, as in [::1]:8443");
        host = s;
        hlen = (size_t)(colon - s);
        port = colon + 1;
    }
    if (hlen == 0)
        return bad(err, errlen, "missing host");
    if (hlen >= sizeof a.host)
        return bad(err, errlen, "host is too long");
    memcpy(a.host, host, hlen);
    a.host[hlen] = '\0';
    if (!*port)
        return bad(err, errlen, "missing port");
    if (parse_port(port, &a.port) < 0)
        return bad(err, errlen, "port must be a number between 1 and 65535");
    if (v6) {
        if (inet_pton(AF_INET6, a.host, bin) != 1)
            return bad(err, errlen, "not a numeric IPv6 address");
    } else if (!strcasecmp(a.host, "localhost")) {
        strcpy(a.host, "127.0.0.1");
    } else if (inet_pton(AF_INET, a.host, bin) != 1) {
        if (!names)
            return bad(err, errlen, "host must be a numeric IPv4 address, [IPv6] or \"localhost\" "
                       "(names are not resolved)");
        if (!is_dns_name(a.host))
            return bad(err, errlen, "host must be a numeric IPv4 address, [IPv6] or a DNS name");
        a.is_name = 1;
    }
    *addr = a;
    return 0;
}
