#include "core/errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *px_strerror(int err)
{
    switch (err) {
    case PX_OK: return "success";
#define XX(name, msg) case PX_E##name: return msg;
    PX_ERRNO_MAP(XX)
#undef XX
    default: return "unknown error";
    }
}

const char *px_err_name(int err)
{
    switch (err) {
    case PX_OK: return "OK";
#define XX(name, msg) case PX_E##name: return #name;
    PX_ERRNO_MAP(XX)
#undef XX
    default: return "UNKNOWN";
    }
}

int px_errorf(int code, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

static const struct { int status; const char *str; } http_errors[] = {
#define XX(name, status, str) { status, str },
    PX_HTTP_ERRORS(XX)
#undef XX
};

int px_http_error_status(px_http_error_t e)
{
    return (unsigned)e < PX_HERR__COUNT ? http_errors[e].status : 500;
}

const char *px_end_reason_str(px_end_reason_t r)
{
    static const char *const names[] = {
#define XX(name, str) str,
        PX_END_REASONS(XX)
#undef XX
    };
    return (unsigned)r < PX_END__COUNT ? names[r] : "unknown";
}

const char *px_http_error_str(px_http_error_t e)
{
    return (unsigned)e < PX_HERR__COUNT ? http_errors[e].str : "internal_error";
}

const char *px_http_status_phrase(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default:  return "";
    }
}

const char *px_http_status_reason(int status)
{
    const char *r = px_http_status_phrase(status);
    return *r ? r : "Unknown";
}

/* JSON string escaping for the detail text; stops before overflowing. */
static size_t json_escape(char *out, size_t cap, const char *s)
{
    size_t n = 0;
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        char tmp[8];
        const char *rep = NULL;
        size_t rl;
        if (c == '"') rep = "\\\"";
        else if (c == '\\') rep = "\\\\";
        else if (c == '\n') rep = "\\n";
        else if (c == '\r') rep = "\\r";
        else if (c == '\t') rep = "\\t";
        else if (c < 0x20 || c == 0x7f) {
            snprintf(tmp, sizeof tmp, "\\u%04x", c);
            rep = tmp;
        }
        rl = rep ? strlen(rep) : 1;
        if (n + rl >= cap)
            break;
        if (rep)
            memcpy(out + n, rep, rl);
        else
            out[n] = (char)c;
        n += rl;
    }
    if (cap)
        out[n < cap ? n : cap - 1] = '\0';
    return n;
}

int px_http_error_render(char *buf, size_t len, px_http_error_t e,
                         const char *detail, int close_conn)
{
    char body[1024];
    int status = px_http_error_status(e);
    int blen, n;
    char esc[768];

    json_escape(esc, sizeof esc, detail ? detail : "");
    blen = snprintf(body, sizeof body, "{\"error\":\"%s\",\"detail\":\"%s\"}\n",
                    px_http_error_str(e), esc);
    if (blen < 0 || (size_t)blen >= sizeof body)
        return PX_ETOOBIG;
    n = snprintf(buf, len,
                 "HTTP/1.1 %d %s\r\n"
                 "Content-Type: application/json\r\n"
                 "Content-Length: %d\r\n"
                 "Cache-Control: no-store\r\n"
                 "%s"
                 "\r\n%s",
                 status, px_http_status_reason(status), blen,
                 close_conn ? "Connection: close\r\n" : "", body);
    if (n < 0 || (size_t)n >= len)
        return PX_ETOOBIG;
    return n;
}
