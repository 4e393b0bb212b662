/* `pqproxy inject-webhook`: the Kubernetes mutating admission webhook that
 * injects the pqproxy sidecar (the decisions and the patch are inject.c's).
 *
 * HTTPS with the proxy's own TLS server context (hybrid post-quantum groups
 * first), HTTP/1.1 with the proxy's own parser. The API server calls it a
 * few times per pod creation, so a blocking server that answers one
 * connection at a time, each with a deadline, is enough; every response
 * closes its connection.
 *
 *   POST /inject             pods opt in with pqproxy.io/inject: "true"
 *   POST /inject/namespace   the namespace opted in: every pod unless "false"
 *   GET  /healthz            {"status":"ok"}                              */
#include "inject.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "errors.h"
#include "http1.h"
#include "sockio.h"
#include "tls.h"

#define IO_CHUNK 16384
#define CONN_DEADLINE_MS 5000       /* = the webhooks' timeoutSeconds */
#define MAX_BODY (8u << 20)          /* the API server's request limit is ~3 MiB */

typedef struct {
    int fd;
    px_tls_t *tls;
    long long deadline;
} wconn_t;

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static int flush_out(wconn_t *c)
{
    return px_sock_flush_tls(c->fd, c->tls, c->deadline, &stop_requested);
}

/* More ciphertext: 1 got some, 0 EOF, < 0 timeout or error. */
static int fill_in(wconn_t *c)
{
    return px_sock_fill_tls(c->fd, c->tls, c->deadline, &stop_requested);
}

static int send_response(wconn_t *c, int status, const char *body, size_t len)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, px_http_status_reason(status), len);
    if (px_tls_write(c->tls, head, (size_t)n) < 0 || (len && px_tls_write(c->tls, body, len) < 0))
        return -1;
    px_tls_shutdown(c->tls);
    return flush_out(c);
}

static int send_error(wconn_t *c, px_http_error_t e, const char *detail)
{
    char buf[1024];
    int n = px_http_error_render(buf, sizeof buf, e, detail, 1);
    if (n < 0)
        return -1;
    if (px_tls_write(c->tls, buf, (size_t)n) < 0)
        return -1;
    px_tls_shutdown(c->tls);
    return flush_out(c);
}

/* Routes a complete request; returns the status sent (for the log). */
static int dispatch(wconn_t *c, const char *method, const char *path, const px_buf_t *body,
                    const px_inject_opts_t *o)
{
    px_inject_mode_t mode;
    char err[512], *out = NULL;
    size_t out_len = 0;
    int rc;

    if (!strcmp(path, "/healthz")) {
        if (strcmp(method, "GET") && strcmp(method, "HEAD"))
            return send_error(c, PX_HERR_METHOD_NOT_ALLOWED, "use GET"), 405;
        send_response(c, 200, "{\"status\":\"ok\"}", 15);
        return 200;
    }
    if (!strcmp(path, "/inject"))
        mode = PX_INJECT_OPT_IN;
    else if (!strcmp(path, "/inject/namespace"))
        mode = PX_INJECT_DEFAULT_ON;
    else
        return send_error(c, PX_HERR_NOT_FOUND, "no such path"), 404;
    if (strcmp(method, "POST"))
        return send_error(c, PX_HERR_METHOD_NOT_ALLOWED, "use POST"), 405;
    rc = px_inject_review(px_buf_ptr(body), px_buf_size(body), mode, o, &out, &out_len, err,
                          sizeof err);
    if (rc == PX_EPARSE)
        return send_error(c, PX_HERR_BAD_REQUEST, err), 400;
    if (rc < 0)
        return send_error(c, PX_HERR_INTERNAL, err), 500;
    send_response(c, 200, out, out_len);
    free(out);
    return 200;
}

static void serve_conn(px_tls_ctx_t *ctx, int fd, const char *peer, const px_inject_opts_t *o)
{
    px_http1_limits_t lim = { 16384, 100, MAX_BODY };
    wconn_t c = { fd, NULL, px_now_ms() + CONN_DEADLINE_MS };
    px_http1_t *p = NULL;
    px_buf_t body;
    char plain[IO_CHUNK], method[16] = "", path[256] = "";
    int status = 0, hs;

    px_buf_init(&body, MAX_BODY);
    if (!(c.tls = px_tls_new(ctx, NULL)) || !(p = px_http1_new(1, &lim)))
        goto out;
    while ((hs = px_tls_handshake(c.tls)) != 0) {
        if (flush_out(&c) < 0 || hs != PX_EAGAIN || fill_in(&c) <= 0) {
            fprintf(stderr, "inject-webhook: %s: TLS handshake failed: %s\n", peer,
                    px_tls_error(c.tls)[0] ? px_tls_error(c.tls) : "connection closed");
            goto out;
        }
    }
    if (flush_out(&c) < 0)
        goto out;
    for (;;) {
        int n = px_tls_read(c.tls, plain, sizeof plain);
        size_t off = 0;
        if (n == PX_EAGAIN) {
            if (flush_out(&c) < 0 || fill_in(&c) < 0)
                goto out;
            continue;
        }
        if (n <= 0)
            goto out;
        for (int more = 1; more;) {     /* until NEED_MORE: END may follow with no input */
            const char *data, *detail;
            size_t used = 0, dlen = 0;
            px_h1_event_t ev = px_http1_parse(p, plain + off, (size_t)n - off, &used, &data, &dlen);
            const px_http_head_t *h;
            off += used;
            switch (ev) {
            case PX_H1_NEED_MORE:
                more = 0;
                break;
            case PX_H1_HEAD:
                h = px_http1_head(p);
                snprintf(method, sizeof method, "%.*s", (int)h->method_len, h->method);
                {   /* the path without the query (the API server adds ?timeout=5s) */
                    size_t pl = 0;
                    while (pl < h->target_len && h->target[pl] != '?' && h->target[pl] != '#')
                        pl++;
                    snprintf(path, sizeof path, "%.*s", (int)pl, h->target);
                }
                if (h->expect_continue) {
                    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
                    if (px_tls_write(c.tls, cont, sizeof cont - 1) < 0 || flush_out(&c) < 0)
                        goto out;
                }
                break;
            case PX_H1_BODY:
                if (px_buf_append(&body, data, dlen) < 0) {
                    status = 413;
                    send_error(&c, PX_HERR_BODY_TOO_LARGE, "AdmissionReview too large");
                    goto out;
                }
                break;
            case PX_H1_END:
                status = dispatch(&c, method, path, &body, o);
                goto out;
            case PX_H1_ERROR: {
                px_http_error_t e = px_http1_error(p, &detail);
                status = px_http_error_status(e);
                send_error(&c, e, detail);
                goto out;
            }
            }
        }
    }
out:
    if (status)
        fprintf(stderr, "inject-webhook: %s \"%s %s\" %d %zu\n", peer, method, path, status,
                px_buf_size(&body));
    px_http1_free(p);
    px_buf_free(&body);
    px_tls_free(c.tls);
}

static int listen_on(const char *spec, char *err, size_t errlen)
{
    px_addr_t a;
    struct sockaddr_storage ss;
    socklen_t sl;
    int fd, one = 1;

    memset(&ss, 0, sizeof ss);
    if (px_addr_parse(spec, &a, err, errlen) < 0)
        return -1;
    if (a.is_unix) {
        snprintf(err, errlen, "--listen: unix sockets are not supported");
        return -1;
    }
    if (inet_pton(AF_INET, a.host, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
        ((struct sockaddr_in *)&ss)->sin_family = AF_INET;
        ((struct sockaddr_in *)&ss)->sin_port = htons(a.port);
        sl = sizeof(struct sockaddr_in);
    } else if (inet_pton(AF_INET6, a.host, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
        ((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons(a.port);
        sl = sizeof(struct sockaddr_in6);
    } else {
        snprintf(err, errlen, "--listen: %s is not a numeric address", a.host);
        return -1;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 64) != 0) {
        snprintf(err, errlen, "--listen: cannot listen on %s: %s", spec, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static int usage(FILE *f)
{
    fprintf(f,
            "usage: pqproxy inject-webhook --cert FILE --key FILE [options]\n"
            "\n"
            "Kubernetes mutating admission webhook (AdmissionReview v1) that injects\n"
            "the pqproxy sidecar into pods. POST /inject (pods annotated\n"
            "pqproxy.io/inject: \"true\"), POST /inject/namespace (every pod not\n"
            "annotated \"false\"), GET /healthz.\n"
            "  --listen ADDR          HTTPS listen address (default 0.0.0.0:8443)\n"
            "  --cert FILE --key FILE serving certificate and key (PEM)\n"
            "  --image IMG            sidecar image (default pqproxy:latest)\n"
            "  --config-map NAME      ConfigMap with pqproxy.json (default pqproxy-config)\n"
            "  --tls-secret NAME      kubernetes.io/tls Secret with tls.crt/tls.key\n"
            "                         (default pqproxy-tls)\n"
            "  --upstream-port N      model server port on 127.0.0.1 (default 8501)\n"
            "  --pq-policy P          this listener's policy: prefer (default; the API\n"
            "                         server's Go may predate ML-KEM) or require\n");
    return f == stderr ? 2 : 0;
}

int px_cmd_inject_webhook(int argc, char **argv)
{
    px_inject_opts_t o;
    px_tls_config_t tc;
    px_tls_ctx_t *ctx = NULL;
    const char *listen_spec = "0.0.0.0:8443", *cert = NULL, *key = NULL;
    char err[512], alpn[] = "http/1.1";
    struct sigaction sa;
    int lfd = -1, rc = 1;

    px_inject_opts_default(&o);
    memset(&tc, 0, sizeof tc);
    tc.pq_policy = PX_PQ_PREFER;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help"))
            return usage(stdout);
        if (!v)
            return usage(stderr);
        i++;
        if (!strcmp(a, "--listen")) listen_spec = v;
        else if (!strcmp(a, "--cert")) cert = v;
        else if (!strcmp(a, "--key")) key = v;
        else if (!strcmp(a, "--image")) o.image = v;
        else if (!strcmp(a, "--config-map")) o.config_map = v;
        else if (!strcmp(a, "--tls-secret")) o.tls_secret = v;
        else if (!strcmp(a, "--upstream-port")) {
            o.upstream_port = atoi(v);
            if (o.upstream_port < 1 || o.upstream_port > 65535)
                return usage(stderr);
        } else if (!strcmp(a, "--pq-policy")) {
            if (strcmp(v, "require") && strcmp(v, "prefer"))
                return usage(stderr);
            tc.pq_policy = strcmp(v, "require") ? PX_PQ_PREFER : PX_PQ_REQUIRE;
        } else {
            return usage(stderr);
        }
    }
    if (!cert || !key)
        return usage(stderr);
    tc.cert_count = 1;
    tc.certs[0].cert_file = (char *)cert;
    tc.certs[0].key_file = (char *)key;
    tc.group_count = 4;
    tc.groups[0] = px_group_from_name("X25519MLKEM768");
    tc.groups[1] = px_group_from_name("SecP256r1MLKEM768");
    tc.groups[2] = px_group_from_name("SecP384r1MLKEM1024");
    tc.groups[3] = px_group_from_name("X25519");
    tc.min_version = 13;
    tc.alpn[0] = alpn;
    tc.alpn_count = 1;
    if (!(ctx = px_tls_ctx_server_new(&tc, err, sizeof err))) {
        fprintf(stderr, "pqproxy inject-webhook: %s\n", err);
        goto out;
    }
    if ((lfd = listen_on(listen_spec, err, sizeof err)) < 0) {
        fprintf(stderr, "pqproxy inject-webhook: %s\n", err);
        goto out;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;          /* no SA_RESTART: poll() returns EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    fprintf(stderr, "inject-webhook: listening on %s (image %s, config map %s, secret %s)\n",
            listen_spec, o.image, o.config_map, o.tls_secret);
    while (!stop_requested) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        char peer[INET6_ADDRSTRLEN + 8] = "?";
        int fd;
        if (px_wait_fd(lfd, POLLIN, px_now_ms() + 1000, &stop_requested) <= 0)
            continue;
        fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
            continue;
        if (ss.ss_family == AF_INET)
            inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, peer, sizeof peer);
        else if (ss.ss_family == AF_INET6)
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, peer, sizeof peer);
        serve_conn(ctx, fd, peer, &o);
        close(fd);
    }
    fprintf(stderr, "inject-webhook: stopping\n");
    rc = 0;
out:
    if (lfd >= 0)
        close(lfd);
    px_tls_ctx_unref(ctx);
    return rc;
}
