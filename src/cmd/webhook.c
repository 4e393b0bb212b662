/* `pqproxy inject-webhook`: the Kubernetes mutating admission webhook that
 * injects the pqproxy sidecar (the decisions and the patch are inject.c's).
 *
 * HTTPS with the proxy's own TLS server context (hybrid post-quantum groups
 * first), HTTP/1.1 with the proxy's own parser, on one libuv loop. Every
 * connection is served concurrently and bounded: a deadline for the
 * handshake and request head, one for the body, an idle limit between
 * reads and for the response to leave, a request size limit, and a
 * connection limit. At the limit, a new connection displaces the oldest one
 * that has not yet sent a complete request head, so idle or slow clients
 * cannot keep /healthz or the API server out (with failurePolicy Ignore a
 * webhook that does not answer admits pods without the sidecar). Every
 * response closes its connection.
 *
 *   POST /inject             pods opt in with pqproxy.io/inject: "true"
 *   POST /inject/namespace   the namespace opted in: every pod unless "false"
 *   GET  /healthz            {"status":"ok"}                              */
#include "cmd/cli.h"
#include "cmd/inject.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/buf.h"
#include "config/config.h"
#include "core/errors.h"
#include "http/http1.h"
#include "core/log.h"
#include "net/tls.h"

#define IO_CHUNK 16384
#define MAX_HEAD 16384

typedef struct {
    unsigned head_ms;        /* accept -> TLS handshake and request head done */
    unsigned body_ms;        /* head -> whole body received */
    unsigned idle_ms;        /* longest silence while reading; response send limit */
    unsigned max_conns;
    size_t max_body;
    size_t max_buffered;     /* request bodies held at once, all connections */
} limits_t;

typedef enum { W_HANDSHAKE, W_HEAD, W_BODY, W_RESPOND } wstate_t;

typedef struct wconn wconn_t;

typedef struct {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_signal_t sigterm, sigint;
    px_tls_ctx_t *ctx;
    const px_inject_opts_t *opts;
    limits_t lim;
    wconn_t *head, *tail;    /* open connections, oldest first */
    unsigned nconns;
    unsigned long displaced;  /* connections closed to make room */
    size_t buffered;          /* request body bytes held, all connections */
    px_ratelimit_t timeout_log;
} webhook_t;

struct wconn {
    webhook_t *w;
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wreq;
    px_tls_t *tls;
    px_http1_t *parser;
    px_buf_t body, sending;  /* sending: the ciphertext of the write in flight */
    wstate_t state;
    uint64_t phase_deadline; /* loop ms */
    int writing, closing, handles, status;
    char method[16], path[256], peer[64];
    wconn_t *prev, *next;
};

static void conn_closed(uv_handle_t *h)
{
    wconn_t *c = h->data;
    if (--c->handles > 0)
        return;
    px_http1_free(c->parser);
    px_buf_free(&c->sending);
    px_tls_free(c->tls);
    free(c);
}

static void conn_close(wconn_t *c)
{
    webhook_t *w = c->w;
    if (c->closing)
        return;
    c->closing = 1;
    if (c->status)
        fprintf(stderr, "inject-webhook: %s \"%s %s\" %d %zu\n", c->peer, c->method, c->path,
                c->status, px_buf_size(&c->body));
    if (c->prev)
        c->prev->next = c->next;
    else
        w->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        w->tail = c->prev;
    w->nconns--;
    w->buffered -= px_buf_size(&c->body);
    px_buf_free(&c->body);          /* the budget is free again at once */
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
    uv_close((uv_handle_t *)&c->timer, conn_closed);
}

static void timeout_cb(uv_timer_t *t)
{
    wconn_t *c = t->data;
    uint64_t held = 0;
    /* many idle connections are many timeouts: one line a second at most */
    if (c->state != W_RESPOND && px_ratelimit(&c->w->timeout_log, uv_now(c->w->loop), 1000, &held))
        fprintf(stderr, "inject-webhook: %s: closed: %s (%llu more timeouts since the last report)\n",
                c->peer, c->state == W_BODY ? "request body too slow" : "no complete request in time",
                (unsigned long long)held);
    conn_close(c);
}

/* The timer fires at the phase deadline or after idle_ms of silence,
 * whichever is first; called after each read and state change. */
static void arm(wconn_t *c)
{
    uint64_t now = uv_now(c->w->loop), ms = c->w->lim.idle_ms;
    if (c->state != W_RESPOND) {
        uint64_t left = c->phase_deadline > now ? c->phase_deadline - now : 0;
        if (left < ms)
            ms = left;
    }
    uv_timer_start(&c->timer, timeout_cb, ms ? ms : 1, 0);
}

static void set_phase(wconn_t *c, wstate_t st, unsigned ms)
{
    c->state = st;
    c->phase_deadline = uv_now(c->w->loop) + ms;
    arm(c);
}

static void flush(wconn_t *c);

static void write_done(uv_write_t *req, int status)
{
    wconn_t *c = req->data;
    c->writing = 0;
    px_buf_reset(&c->sending);
    if (status < 0 || c->closing) {
        conn_close(c);
        return;
    }
    flush(c);
}

/* Sends what TLS has produced (one write in flight); once a response has
 * left completely, closes the connection. */
static void flush(wconn_t *c)
{
    px_buf_t *out = px_tls_out(c->tls), tmp;
    uv_buf_t b;

    if (c->writing || c->closing)
        return;
    if (!px_buf_size(out)) {
        if (c->state == W_RESPOND)
            conn_close(c);
        return;
    }
    tmp = c->sending;           /* swap: TLS keeps writing into an empty buffer */
    c->sending = *out;
    *out = tmp;
    b = uv_buf_init((char *)px_buf_ptr(&c->sending), (unsigned)px_buf_size(&c->sending));
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, write_done) != 0) {
        conn_close(c);
        return;
    }
    c->writing = 1;
}

static void respond_done(wconn_t *c, int status)
{
    c->status = status;
    px_tls_shutdown(c->tls);
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->state = W_RESPOND;
    arm(c);
}

static void send_response(wconn_t *c, int status, const char *body, size_t len)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, px_http_status_reason(status), len);
    if (px_tls_write(c->tls, head, (size_t)n) < 0 || (len && px_tls_write(c->tls, body, len) < 0)) {
        conn_close(c);
        return;
    }
    respond_done(c, status);
}

static void send_error(wconn_t *c, px_http_error_t e, const char *detail)
{
    char buf[1024];
    int n = px_http_error_render(buf, sizeof buf, e, detail, 1);
    if (n < 0 || px_tls_write(c->tls, buf, (size_t)n) < 0) {
        conn_close(c);
        return;
    }
    respond_done(c, px_http_error_status(e));
}

/* Routes a complete request. */
static void dispatch(wconn_t *c)
{
    px_inject_mode_t mode;
    char err[512], *out = NULL;
    size_t out_len = 0;
    int rc;

    if (!strcmp(c->path, "/healthz")) {
        if (strcmp(c->method, "GET") && strcmp(c->method, "HEAD"))
            send_error(c, PX_HERR_METHOD_NOT_ALLOWED, "use GET");
        else
            send_response(c, 200, "{\"status\":\"ok\"}", 15);
        return;
    }
    if (!strcmp(c->path, "/inject"))
        mode = PX_INJECT_OPT_IN;
    else if (!strcmp(c->path, "/inject/namespace"))
        mode = PX_INJECT_DEFAULT_ON;
    else {
        send_error(c, PX_HERR_NOT_FOUND, "no such path");
        return;
    }
    if (strcmp(c->method, "POST")) {
        send_error(c, PX_HERR_METHOD_NOT_ALLOWED, "use POST");
        return;
    }
    rc = px_inject_review(px_buf_ptr(&c->body), px_buf_size(&c->body), mode, c->w->opts, &out,
                          &out_len, err, sizeof err);
    if (rc == PX_EPARSE)
        send_error(c, PX_HERR_BAD_REQUEST, err);
    else if (rc < 0)
        send_error(c, PX_HERR_INTERNAL, err);
    else
        send_response(c, 200, out, out_len);
    free(out);
}

static void on_head(wconn_t *c, const px_http_head_t *h)
{
    size_t pl = 0;
    snprintf(c->method, sizeof c->method, "%.*s", (int)h->method_len, h->method);
    /* the path without the query (the API server adds ?timeout=5s) */
    while (pl < h->target_len && h->target[pl] != '?' && h->target[pl] != '#')
        pl++;
    snprintf(c->path, sizeof c->path, "%.*s", (int)pl, h->target);
    set_phase(c, W_BODY, c->w->lim.body_ms);
    if (h->expect_continue) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        if (px_tls_write(c->tls, cont, sizeof cont - 1) < 0)
            conn_close(c);
    }
}

/* Feeds decrypted bytes to the parser; stops once a response is queued. */
static void parse(wconn_t *c, const char *plain, size_t n)
{
    size_t off = 0;
    for (;;) {                  /* until NEED_MORE: END may follow with no input */
        const char *data, *detail;
        size_t used = 0, dlen = 0;
        px_h1_event_t ev = px_http1_parse(c->parser, plain + off, n - off, &used, &data, &dlen);
        off += used;
        switch (ev) {
        case PX_H1_NEED_MORE:
            return;
        case PX_H1_HEAD:
            on_head(c, px_http1_head(c->parser));
            if (c->closing)
                return;
            break;
        case PX_H1_BODY:
            if (c->w->buffered + dlen > c->w->lim.max_buffered) {
                send_error(c, PX_HERR_OVERLOADED, "too many requests in progress");
                return;
            }
            if (px_buf_append(&c->body, data, dlen) < 0) {
                send_error(c, PX_HERR_BODY_TOO_LARGE, "AdmissionReview too large");
                return;
            }
            c->w->buffered += dlen;
            break;
        case PX_H1_END:
            dispatch(c);
            return;
        case PX_H1_ERROR: {
            px_http_error_t e = px_http1_error(c->parser, &detail);
            send_error(c, e, detail);
            return;
        }
        }
    }
}

/* Runs the handshake and the request as far as the input allows. */
static void advance(wconn_t *c)
{
    char plain[IO_CHUNK];

    if (c->state == W_HANDSHAKE) {
        int hs = px_tls_handshake(c->tls);
        if (hs != 0 && hs != PX_EAGAIN) {
            fprintf(stderr, "inject-webhook: %s: TLS handshake failed: %s\n", c->peer,
                    px_tls_error(c->tls)[0] ? px_tls_error(c->tls) : "connection closed");
            uv_read_stop((uv_stream_t *)&c->tcp);
            c->state = W_RESPOND;   /* send the alert, if any, then close */
            arm(c);
            flush(c);
            return;
        }
        if (hs == 0)
            c->state = W_HEAD;  /* the head deadline runs on from accept */
    }
    while (!c->closing && (c->state == W_HEAD || c->state == W_BODY)) {
        int n = px_tls_read(c->tls, plain, sizeof plain);
        if (n == PX_EAGAIN)
            break;
        if (n <= 0) {           /* closed before a complete request */
            conn_close(c);
            return;
        }
        parse(c, plain, (size_t)n);
    }
    if (!c->closing)
        flush(c);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    wconn_t *c = h->data;
    (void)suggested;
    buf->base = px_tls_in_reserve(c->tls, IO_CHUNK);
    buf->len = buf->base ? IO_CHUNK : 0;
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    wconn_t *c = s->data;
    (void)buf;
    if (c->closing || n == 0)
        return;
    if (n < 0) {
        if (n != UV_EOF) {
            conn_close(c);
            return;
        }
        px_tls_in_eof(c->tls);
        uv_read_stop(s);
    } else {
        px_tls_in_commit(c->tls, (size_t)n);
    }
    arm(c);
    advance(c);
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

/* The oldest connection still waiting for its request head, or NULL. */
static wconn_t *displaceable(webhook_t *w)
{
    for (wconn_t *c = w->head; c; c = c->next)
        if (c->state == W_HANDSHAKE || c->state == W_HEAD)
            return c;
    return NULL;
}

static void peer_name(wconn_t *c)
{
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    snprintf(c->peer, sizeof c->peer, "?");
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) != 0)
        return;
    if (ss.ss_family == AF_INET)
        uv_ip4_name((struct sockaddr_in *)&ss, c->peer, sizeof c->peer);
    else if (ss.ss_family == AF_INET6)
        uv_ip6_name((struct sockaddr_in6 *)&ss, c->peer, sizeof c->peer);
}

static void on_connection(uv_stream_t *server, int status)
{
    webhook_t *w = server->data;
    px_http1_limits_t lim = { MAX_HEAD, 100, w->lim.max_body };
    wconn_t *c, *old;

    if (status < 0) {
        fprintf(stderr, "inject-webhook: accept: %s\n", uv_strerror(status));
        return;
    }
    if (w->nconns >= w->lim.max_conns) {
        if (!(old = displaceable(w))) {
            uv_tcp_t *t = malloc(sizeof *t);  /* every one is mid-request: refuse this one */
            if (t && uv_tcp_init(w->loop, t) == 0) {
                uv_accept(server, (uv_stream_t *)t);
                uv_close((uv_handle_t *)t, free_handle);
            } else {
                free(t);
            }
            return;
        }
        if (w->displaced++ % 100 == 0)
            fprintf(stderr, "inject-webhook: %u connections open (the limit): closing the oldest "
                    "without a request to make room (%lu so far)\n", w->nconns, w->displaced);
        conn_close(old);
    }
    if (!(c = calloc(1, sizeof *c)))
        return;
    c->w = w;
    uv_tcp_init(w->loop, &c->tcp);
    uv_timer_init(w->loop, &c->timer);
    c->tcp.data = c->timer.data = c->wreq.data = c;
    c->handles = 2;
    c->prev = w->tail;
    if (w->tail)
        w->tail->next = c;
    else
        w->head = c;
    w->tail = c;
    w->nconns++;
    px_buf_init(&c->body, w->lim.max_body);
    px_buf_init(&c->sending, 0);
    set_phase(c, W_HANDSHAKE, w->lim.head_ms);
    if (!(c->tls = px_tls_new(w->ctx, NULL)) || !(c->parser = px_http1_new(1, &lim)) ||
        uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) != 0) {
        conn_close(c);
        return;
    }
    peer_name(c);
}

static void on_signal(uv_signal_t *s, int signum)
{
    webhook_t *w = s->data;
    (void)signum;
    fprintf(stderr, "inject-webhook: stopping\n");
    uv_close((uv_handle_t *)&w->listener, NULL);
    uv_close((uv_handle_t *)&w->sigterm, NULL);
    uv_close((uv_handle_t *)&w->sigint, NULL);
    while (w->head)
        conn_close(w->head);
}

static int listen_on(webhook_t *w, const char *spec, char *err, size_t errlen)
{
    px_addr_t a;
    struct sockaddr_storage ss;
    int rc;

    if (px_addr_parse(spec, &a, err, errlen) < 0)
        return -1;
    if (a.is_unix) {
        snprintf(err, errlen, "--listen: unix sockets are not supported");
        return -1;
    }
    if (uv_ip4_addr(a.host, a.port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(a.host, a.port, (struct sockaddr_in6 *)&ss) != 0) {
        snprintf(err, errlen, "--listen: %s is not a numeric address", a.host);
        return -1;
    }
    uv_tcp_init(w->loop, &w->listener);
    w->listener.data = w;
    if ((rc = uv_tcp_bind(&w->listener, (struct sockaddr *)&ss, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&w->listener, 128, on_connection)) != 0) {
        snprintf(err, errlen, "--listen: cannot listen on %s: %s", spec, uv_strerror(rc));
        uv_close((uv_handle_t *)&w->listener, NULL);
        return -1;
    }
    return 0;
}

#define CMD "inject-webhook"

static int usage(FILE *f)
{
    fprintf(f,
            "usage: pqproxy inject-webhook --cert FILE --key FILE [options]\n"
            "\n"
            "Kubernetes mutating admission webhook (AdmissionReview v1) that injects\n"
            "the pqproxy sidecar into pods. POST /inject (pods annotated\n"
            "pqproxy.io/inject: \"true\"), POST /inject/namespace (every pod not\n"
            "annotated \"false\"), GET /healthz. Pods annotated\n"
            "pqproxy.io/sealed-model-volume (and the rest of that set) also get\n"
            "`pqproxy open-model` as an init container (docs/deploy.md, \"Sealed models\").\n"
            "  --listen ADDR          HTTPS listen address (default 0.0.0.0:8443)\n"
            "  --cert FILE --key FILE serving certificate and key (PEM)\n"
            "  --image IMG            sidecar and open-model image (default pqproxy:latest)\n"
            "  --config-map NAME      ConfigMap with pqproxy.json (default pqproxy-config)\n"
            "  --tls-secret NAME      kubernetes.io/tls Secret with tls.crt/tls.key\n"
            "                         (default pqproxy-tls)\n"
            "  --upstream-port N      model server port on 127.0.0.1 (default 8501); a pod's\n"
            "                         pqproxy.io/upstream-port and pqproxy.io/grpc-port\n"
            "                         (the ConfigMap's upstreams.grpc) override per pod\n"
            "  --pq-policy P          this listener's policy: prefer (default; the API\n"
            "                         server's Go may predate ML-KEM) or require\n"
            "Limits (connections are served concurrently; each response closes its own):\n"
            "  --header-timeout-ms N  TLS handshake and request head within N ms of\n"
            "                         accepting (default 5000)\n"
            "  --body-timeout-ms N    the request body within N ms of its head (default 10000)\n"
            "  --idle-timeout-ms N    longest silence while a request arrives, and longest\n"
            "                         wait for the response to leave (default 5000)\n"
            "  --max-connections N    open connections (default 128); at the limit a new\n"
            "                         one displaces the oldest that has sent no request\n"
            "  --max-request-bytes N  request body limit (default 4194304; larger: 413)\n"
            "  --max-buffered-bytes N request bodies held at once, all connections\n"
            "                         (default 33554432; beyond: 503)\n");
    return f == stderr ? 2 : 0;
}

/* A positive integer option value up to max, or 0. */
static unsigned long opt_num(const char *v, unsigned long max)
{
    char *end;
    unsigned long n = strtoul(v, &end, 10);
    return *v >= '0' && *v <= '9' && !*end && n <= max ? n : 0;
}

int px_cmd_inject_webhook(int argc, char **argv)
{
    px_inject_opts_t o;
    px_tls_config_t tc;
    webhook_t w;
    uv_loop_t loop;
    const char *listen_spec = "0.0.0.0:8443", *cert = NULL, *key = NULL;
    char err[512], alpn[] = "http/1.1";
    int rc = 1, loop_ready = 0;

    memset(&w, 0, sizeof w);
    w.lim = (limits_t){ 5000, 10000, 5000, 128, 4u << 20, 32u << 20 };
    px_inject_opts_default(&o);
    memset(&tc, 0, sizeof tc);
    tc.pq_policy = PX_PQ_PREFER;
    for (int i = 1; i < argc; i++) {
        static const char *const opts[] = { "--listen", "--cert", "--key", "--image", "--config-map",
                                            "--tls-secret", "--upstream-port", "--pq-policy",
                                            "--header-timeout-ms", "--body-timeout-ms",
                                            "--idle-timeout-ms", "--max-connections",
                                            "--max-request-bytes", "--max-buffered-bytes" };
        const char *a = NULL, *v = NULL;
        unsigned long n = 0;
        int r = 0;
        if (px_cli_is_help(argv[i]))
            return usage(stdout);
        for (size_t k = 0; k < sizeof opts / sizeof opts[0] && r == 0; k++)
            if ((r = px_cli_opt(CMD, argc, argv, &i, opts[k], &v)) == 1)
                a = opts[k];
        if (r < 0)
            return 2;
        if (!a)
            return px_cli_unknown(CMD, argv[i]);
        if (!strcmp(a, "--listen")) listen_spec = v;
        else if (!strcmp(a, "--cert")) cert = v;
        else if (!strcmp(a, "--key")) key = v;
        else if (!strcmp(a, "--image")) o.image = v;
        else if (!strcmp(a, "--config-map")) o.config_map = v;
        else if (!strcmp(a, "--tls-secret")) o.tls_secret = v;
        else if (!strcmp(a, "--upstream-port")) {
            o.upstream_port = (int)opt_num(v, 65535);
            if (!o.upstream_port)
                return px_cli_usage_error(CMD, "--upstream-port: a port 1..65535, not '%s'", v);
        } else if (!strcmp(a, "--pq-policy")) {
            if (strcmp(v, "require") && strcmp(v, "prefer"))
                return px_cli_usage_error(CMD, "--pq-policy: require or prefer, not '%s'", v);
            tc.pq_policy = strcmp(v, "require") ? PX_PQ_PREFER : PX_PQ_REQUIRE;
        } else if (!strcmp(a, "--header-timeout-ms") && (n = opt_num(v, 3600000))) {
            w.lim.head_ms = (unsigned)n;
        } else if (!strcmp(a, "--body-timeout-ms") && (n = opt_num(v, 3600000))) {
            w.lim.body_ms = (unsigned)n;
        } else if (!strcmp(a, "--idle-timeout-ms") && (n = opt_num(v, 3600000))) {
            w.lim.idle_ms = (unsigned)n;
        } else if (!strcmp(a, "--max-connections") && (n = opt_num(v, 65536))) {
            w.lim.max_conns = (unsigned)n;
        } else if (!strcmp(a, "--max-request-bytes") && (n = opt_num(v, 64ul << 20))) {
            w.lim.max_body = n;
        } else if (!strcmp(a, "--max-buffered-bytes") && (n = opt_num(v, 1ul << 30))) {
            w.lim.max_buffered = n;
        } else {
            return px_cli_usage_error(CMD, "%s: a positive number in range, not '%s'", a, v);
        }
    }
    if (!cert || !key)
        return px_cli_usage_error(CMD, "--cert and --key are required");
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
    if (!(w.ctx = px_tls_ctx_server_new(&tc, err, sizeof err))) {
        fprintf(stderr, "pqproxy inject-webhook: %s\n", err);
        goto out;
    }
    if (uv_loop_init(&loop) != 0) {
        fprintf(stderr, "pqproxy inject-webhook: cannot create the event loop\n");
        goto out;
    }
    loop_ready = 1;
    w.loop = &loop;
    w.opts = &o;
    if (listen_on(&w, listen_spec, err, sizeof err) < 0) {
        fprintf(stderr, "pqproxy inject-webhook: %s\n", err);
        goto out;
    }
    signal(SIGPIPE, SIG_IGN);
    uv_signal_init(&loop, &w.sigterm);
    uv_signal_init(&loop, &w.sigint);
    w.sigterm.data = w.sigint.data = &w;
    uv_signal_start(&w.sigterm, on_signal, SIGTERM);
    uv_signal_start(&w.sigint, on_signal, SIGINT);
    fprintf(stderr, "inject-webhook: listening on %s (image %s, config map %s, secret %s)\n",
            listen_spec, o.image, o.config_map, o.tls_secret);
    rc = uv_run(&loop, UV_RUN_DEFAULT) < 0;
out:
    if (loop_ready) {
        uv_run(&loop, UV_RUN_DEFAULT);    /* close callbacks of a failed start */
        uv_loop_close(&loop);
    }
    px_tls_ctx_unref(w.ctx);
    return rc;
}
