/* hsgen: a lean TLS 1.3 load generator for "a new connection per request"
 * (loadtest/run.sh scenario 3).
 *
 *   hsgen -c CONNS -d SECONDS [--group X25519MLKEM768|X25519|SecP256r1MLKEM768]
 *         [--path /small.json] [--resume|--no-resume] https://127.0.0.1:PORT/path
 *
 * Why: wrk on OpenSSL 3.5 spends about three times the server's CPU per
 * hybrid handshake, so on a 2-core machine the client, not the server,
 * limits the measured rate. hsgen does the client side with wolfSSL (one
 * WOLFSSL_CTX, no certificate verification, buffers reused per slot) on one
 * libuv loop, so pinned to one core it can drive a server on the other.
 *
 * Every connection: TCP connect, full handshake offering exactly one group
 * (one key share), GET PATH with "Connection: close", the response read
 * until its Content-Length is complete or the peer closes, status checked
 * ("HTTP/1.1 200"), close, and the slot starts its next connection. Latency
 * is connect start to response complete. At the end one line in the format
 * of loadtest/wrk-report.lua (PQRESULT ...) goes to stdout; the negotiated
 * group of the first connection and hsgen's own CPU go to stderr.
 *
 * Built by CMake as the optional target `hsgen` (not part of `all`). */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>

#include <uv.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include "config/config.h"

#define IN_CAP (34 * 1024)         /* ciphertext: two full records */
#define OUT_CAP (16 * 1024)        /* ciphertext we send: ClientHello, Finished + request */
#define HDR_CAP 8192               /* response header bytes kept for parsing */
#define TIMEOUT_MS 5000
#define SNI "localhost"

enum { ST_IDLE, ST_CONNECTING, ST_HANDSHAKE, ST_RESPONSE, ST_CLOSING };
enum { E_CONNECT, E_READ, E_WRITE, E_STATUS, E_TIMEOUT, E_KINDS };

typedef struct conn {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    WOLFSSL *ssl;
    int state;
    int writing;                   /* a uv_write of wbuf is in flight */
    int eof;
    uint64_t t0;                   /* connect start, ns (uv_hrtime) */
    size_t in_off, in_len;
    size_t out_len, wbuf_len;
    size_t hdr_len;
    long long clen;                /* Content-Length, -1 when none (read until close) */
    long long body;                /* body bytes read so far */
    long long bytes;               /* plaintext response bytes */
    int hdr_done;
    char in[IN_CAP];
    char out[OUT_CAP];
    char wbuf[OUT_CAP];
    char hdr[HDR_CAP];
} conn_t;

typedef struct {
    uv_loop_t *loop;
    WOLFSSL_CTX *ctx;
    struct sockaddr_storage addr;
    char *req;
    int req_len;
    int stopping;
    int resume;
    WOLFSSL_SESSION *session;      /* --resume: the last session with a ticket */
    int group_shown;
    long long resumed;             /* handshakes that resumed a session */
    long long requests, bytes, errs[E_KINDS];
    uint32_t *lat;                 /* microseconds, one per successful request */
    size_t lat_n, lat_cap;
    uint64_t start_ns, end_ns;
    uv_timer_t stop_timer, tick_timer;
    conn_t *conns;
    int nconns;
} gen_t;

#define CONN_OF(req, field) ((conn_t *)((char *)(req) - offsetof(conn_t, field)))

static gen_t G;
static char rbuf[16 * 1024];       /* plaintext from wolfSSL_read; one loop, one buffer */

static void conn_start(conn_t *c);
static void conn_drive(conn_t *c);

/* --- wolfSSL I/O over the slot's memory buffers ---------------------------------- */

static int io_recv(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
    conn_t *c = arg;
    size_t n = c->in_len - c->in_off;
    (void)ssl;
    if (n == 0)
        return c->eof ? WOLFSSL_CBIO_ERR_CONN_CLOSE : WOLFSSL_CBIO_ERR_WANT_READ;
    if (n > (size_t)sz)
        n = (size_t)sz;
    memcpy(buf, c->in + c->in_off, n);
    c->in_off += n;
    if (c->in_off == c->in_len)
        c->in_off = c->in_len = 0;
    return (int)n;
}

static int io_send(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
    conn_t *c = arg;
    (void)ssl;
    /* A client flight is a few KB at most: no growth, no WANT_WRITE. */
    if ((size_t)sz > sizeof c->out - c->out_len)
        return WOLFSSL_CBIO_ERR_GENERAL;
    memcpy(c->out + c->out_len, buf, (size_t)sz);
    c->out_len += (size_t)sz;
    return sz;
}

/* --- connection life cycle ------------------------------------------------------- */

static void on_closed(uv_handle_t *h)
{
    conn_t *c = h->data;
    c->state = ST_IDLE;
    if (!G.stopping)
        conn_start(c);
}

static void conn_close(conn_t *c)
{
    if (c->state == ST_CLOSING || c->state == ST_IDLE)
        return;
    c->state = ST_CLOSING;
    wolfSSL_free(c->ssl);
    c->ssl = NULL;
    /* A pending uv_write is cancelled by uv_close; its callback sees ECANCELED. */
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void conn_fail(conn_t *c, int kind)
{
    if (!G.stopping)
        G.errs[kind]++;
    conn_close(c);
}

static void conn_done(conn_t *c)
{
    uint64_t us = (uv_hrtime() - c->t0) / 1000;
    if (G.lat_n == G.lat_cap) {
        size_t cap = G.lat_cap ? G.lat_cap * 2 : 65536;
        uint32_t *p = realloc(G.lat, cap * sizeof *p);
        if (!p) {
            fprintf(stderr, "hsgen: out of memory\n");
            exit(1);
        }
        G.lat = p;
        G.lat_cap = cap;
    }
    G.lat[G.lat_n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    G.requests++;
    G.bytes += c->bytes;
    if (G.resume) {
        WOLFSSL_SESSION *s = wolfSSL_get1_session(c->ssl);
        if (s) {
            wolfSSL_SESSION_free(G.session);
            G.session = s;
        }
    }
    conn_close(c);
}

static void on_write(uv_write_t *req, int status)
{
    conn_t *c = CONN_OF(req, wreq);
    c->writing = 0;
    if (c->state == ST_CLOSING || c->state == ST_IDLE)
        return;
    if (status < 0) {
        conn_fail(c, E_WRITE);
        return;
    }
    conn_drive(c);     /* sends whatever wolfSSL produced meanwhile */
}

/* Sends c->out: straight from the buffer when the socket takes it all (the
 * usual case on loopback), else through wbuf and one uv_write. */
static int conn_flush(conn_t *c)
{
    uv_buf_t b;
    int n;

    if (c->writing || c->out_len == 0)
        return 0;
    b = uv_buf_init(c->out, (unsigned)c->out_len);
    n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n == (int)c->out_len) {
        c->out_len = 0;
        return 0;
    }
    if (n < 0 && n != UV_EAGAIN)
        return -1;
    if (n < 0)
        n = 0;
    c->wbuf_len = c->out_len - (size_t)n;
    memcpy(c->wbuf, c->out + n, c->wbuf_len);
    c->out_len = 0;
    b = uv_buf_init(c->wbuf, (unsigned)c->wbuf_len);
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0)
        return -1;
    c->writing = 1;
    return 0;
}

/* Response bytes: headers are kept until their end is seen, then only
 * counted. Returns 1 when the response is complete, -1 on a bad status. */
static int response_feed(conn_t *c, const char *p, size_t n)
{
    c->bytes += (long long)n;
    if (!c->hdr_done) {
        size_t take = n < sizeof c->hdr - 1 - c->hdr_len ? n : sizeof c->hdr - 1 - c->hdr_len;
        char *end;
        memcpy(c->hdr + c->hdr_len, p, take);
        c->hdr_len += take;
        c->hdr[c->hdr_len] = 0;
        end = strstr(c->hdr, "\r\n\r\n");
        if (!end)
            return c->hdr_len == sizeof c->hdr - 1 ? -1 : 0;
        c->hdr_done = 1;
        if (strncmp(c->hdr, "HTTP/1.1 200", 12) != 0)
            return -1;
        *end = 0;
        c->clen = -1;
        for (char *l = strstr(c->hdr, "\r\n"); l; l = strstr(l + 2, "\r\n"))
            if (!strncasecmp(l + 2, "content-length:", 15)) {
                c->clen = strtoll(l + 17, NULL, 10);
                break;
            }
        /* body bytes: what follows the header in this chunk */
        c->body = (long long)(c->hdr_len - (size_t)(end + 4 - c->hdr)) + (long long)(n - take);
    } else {
        c->body += (long long)n;
    }
    return c->clen >= 0 && c->body >= c->clen;
}

/* Runs wolfSSL as far as the received bytes allow, then sends its output. */
static void conn_drive(conn_t *c)
{
    int ret, e;

    if (c->state == ST_HANDSHAKE) {
        ret = wolfSSL_connect(c->ssl);
        if (ret != WOLFSSL_SUCCESS) {
            e = wolfSSL_get_error(c->ssl, ret);
            if (e != WOLFSSL_ERROR_WANT_READ && e != WOLFSSL_ERROR_WANT_WRITE) {
                if (!G.stopping && G.errs[E_READ] == 0) {
                    char msg[80];
                    wolfSSL_ERR_error_string_n((unsigned long)e, msg, sizeof msg);
                    fprintf(stderr, "hsgen: first handshake error: %s (%d)\n", msg, e);
                }
                conn_fail(c, E_READ);
                return;
            }
            goto flush;
        }
        if (!G.group_shown) {
            const char *g = wolfSSL_get_curve_name(c->ssl);
            G.group_shown = 1;
            fprintf(stderr, "hsgen: negotiated %s %s group %s%s\n", wolfSSL_get_version(c->ssl),
                    wolfSSL_get_cipher_name(c->ssl), g ? g : "?",
                    wolfSSL_session_reused(c->ssl) ? " (resumed)" : "");
        }
        G.resumed += wolfSSL_session_reused(c->ssl) != 0;
        c->state = ST_RESPONSE;
        /* The request rides in the same write as the client Finished. */
        if (wolfSSL_write(c->ssl, G.req, G.req_len) != G.req_len) {
            conn_fail(c, E_WRITE);
            return;
        }
    }
    if (c->state == ST_RESPONSE) {
        for (;;) {
            ret = wolfSSL_read(c->ssl, rbuf, sizeof rbuf);
            if (ret > 0) {
                int r = response_feed(c, rbuf, (size_t)ret);
                if (r < 0) {
                    conn_fail(c, E_STATUS);
                    return;
                }
                if (r > 0) {
                    conn_done(c);
                    return;
                }
                continue;
            }
            e = wolfSSL_get_error(c->ssl, ret);
            if (e == WOLFSSL_ERROR_WANT_READ || e == WOLFSSL_ERROR_WANT_WRITE)
                break;
            /* close_notify or a plain close: the end of a response without
             * Content-Length, an error anywhere else */
            if ((e == WOLFSSL_ERROR_ZERO_RETURN || e == SOCKET_PEER_CLOSED_E || e == SOCKET_ERROR_E) &&
                c->hdr_done &&
                c->clen < 0) {
                conn_done(c);
                return;
            }
            conn_fail(c, E_READ);
            return;
        }
    }
flush:
    if (conn_flush(c) != 0)
        conn_fail(c, E_WRITE);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    conn_t *c = h->data;
    (void)suggested;
    if (c->in_off > 0 && sizeof c->in - c->in_len < 4096) {
        memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
        c->in_len -= c->in_off;
        c->in_off = 0;
    }
    *buf = uv_buf_init(c->in + c->in_len, (unsigned)(sizeof c->in - c->in_len));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    conn_t *c = s->data;
    (void)buf;
    if (c->state != ST_HANDSHAKE && c->state != ST_RESPONSE)
        return;
    if (n == UV_EOF) {
        c->eof = 1;
        uv_read_stop(s);
    } else if (n < 0) {
        conn_fail(c, E_READ);
        return;
    } else if (n == 0) {
        return;
    } else {
        c->in_len += (size_t)n;
    }
    conn_drive(c);
}

static void on_connect(uv_connect_t *req, int status)
{
    conn_t *c = CONN_OF(req, creq);
    if (c->state != ST_CONNECTING)
        return;
    if (status < 0) {
        conn_fail(c, E_CONNECT);
        return;
    }
    c->ssl = wolfSSL_new(G.ctx);
    if (!c->ssl)
        goto fail;
    wolfSSL_SetIOReadCtx(c->ssl, c);
    wolfSSL_SetIOWriteCtx(c->ssl, c);
    if (wolfSSL_UseALPN(c->ssl, (char *)"http/1.1", 8, WOLFSSL_ALPN_CONTINUE_ON_MISMATCH) != WOLFSSL_SUCCESS)
        goto fail;
    if (G.session)
        wolfSSL_set_session(c->ssl, G.session);
    c->state = ST_HANDSHAKE;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        goto fail;
    conn_drive(c);     /* ClientHello */
    return;
fail:
    conn_fail(c, E_CONNECT);
}

static void conn_start(conn_t *c)
{
    c->in_off = c->in_len = c->out_len = 0;
    c->hdr_len = 0;
    c->hdr_done = c->eof = c->writing = 0;
    c->body = c->bytes = 0;
    c->clen = -1;
    c->t0 = uv_hrtime();
    c->state = ST_CONNECTING;
    if (uv_tcp_init(G.loop, &c->tcp) != 0) {
        /* nothing to close: count it and retry on the next tick */
        G.errs[E_CONNECT]++;
        c->state = ST_IDLE;
        return;
    }
    c->tcp.data = c;
    uv_tcp_nodelay(&c->tcp, 1);
    if (uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&G.addr, on_connect) != 0)
        conn_fail(c, E_CONNECT);
}

/* Every 100 ms: time out slow connections, restart slots that could not start. */
static void on_tick(uv_timer_t *t)
{
    uint64_t now = uv_hrtime();
    (void)t;
    for (int i = 0; i < G.nconns; i++) {
        conn_t *c = &G.conns[i];
        if (c->state == ST_IDLE && !G.stopping)
            conn_start(c);
        else if (c->state != ST_CLOSING && c->state != ST_IDLE &&
                 now - c->t0 > (uint64_t)TIMEOUT_MS * 1000000)
            conn_fail(c, E_TIMEOUT);
    }
}

static void on_stop(uv_timer_t *t)
{
    (void)t;
    G.end_ns = uv_hrtime();
    G.stopping = 1;
    /* connections still in flight are neither requests nor errors (as wrk) */
    for (int i = 0; i < G.nconns; i++)
        conn_close(&G.conns[i]);
    uv_close((uv_handle_t *)&G.stop_timer, NULL);
    uv_close((uv_handle_t *)&G.tick_timer, NULL);
}

/* --- setup and report ------------------------------------------------------------- */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static uint32_t pct(double p)
{
    size_t i;
    if (G.lat_n == 0)
        return 0;
    i = (size_t)(p / 100.0 * (double)G.lat_n);
    return G.lat[i >= G.lat_n ? G.lat_n - 1 : i];
}

static void report(void)
{
    double mean = 0;
    long long dur = (long long)((G.end_ns - G.start_ns) / 1000);
    struct rusage ru;

    if (G.lat_n)
        qsort(G.lat, G.lat_n, sizeof *G.lat, cmp_u32);
    for (size_t i = 0; i < G.lat_n; i++)
        mean += G.lat[i];
    if (G.lat_n)
        mean /= (double)G.lat_n;
    printf("PQRESULT requests=%lld duration_us=%lld bytes=%lld err_connect=%lld err_read=%lld "
           "err_write=%lld err_status=%lld err_timeout=%lld p50=%u p90=%u p99=%u p999=%u max=%u mean=%.1f\n",
           G.requests, dur, G.bytes, G.errs[E_CONNECT], G.errs[E_READ], G.errs[E_WRITE], G.errs[E_STATUS],
           G.errs[E_TIMEOUT], pct(50), pct(90), pct(99), pct(99.9), G.lat_n ? G.lat[G.lat_n - 1] : 0, mean);
    fflush(stdout);
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        double u = (double)ru.ru_utime.tv_sec * 1e6 + (double)ru.ru_utime.tv_usec;
        double s = (double)ru.ru_stime.tv_sec * 1e6 + (double)ru.ru_stime.tv_usec;
        fprintf(stderr, "hsgen: %lld requests in %.2f s (%.0f/s); own CPU user %.2f s sys %.2f s: %.1f us per connection\n",
                G.requests, (double)dur / 1e6, dur ? (double)G.requests * 1e6 / (double)dur : 0.0, u / 1e6, s / 1e6,
                G.requests ? (u + s) / (double)G.requests : 0.0);
        if (G.resume)
            fprintf(stderr, "hsgen: %lld handshakes resumed a session\n", G.resumed);
    }
}

/* https://HOST:PORT/PATH or HOST:PORT[/PATH]; the path goes to *path when
 * none was given with --path. */
static int parse_target(char *url, const char **path, char **owned)
{
    char *host = url, *port, *slash;
    struct addrinfo hints, *ai = NULL;
    int rc;

    if (!strncmp(host, "https://", 8))
        host += 8;
    slash = strchr(host, '/');
    if (slash) {
        if (!*path)
            *path = *owned = strdup(slash);
        *slash = 0;
    }
    if (host[0] == '[') {              /* [::1]:443 */
        char *rb = strchr(host, ']');
        if (!rb)
            return -1;
        *rb = 0;
        host++;
        port = rb[1] == ':' ? rb + 2 : NULL;
    } else {
        port = strrchr(host, ':');
        if (port)
            *port++ = 0;
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(host, port && *port ? port : "443", &hints, &ai);
    if (rc != 0) {
        fprintf(stderr, "hsgen: %s: %s\n", host, gai_strerror(rc));
        return -1;
    }
    memcpy(&G.addr, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: hsgen -c CONNS -d SECONDS [--group X25519MLKEM768|X25519|SecP256r1MLKEM768]\n"
                    "             [--path /small.json] [--resume|--no-resume] https://HOST:PORT[/PATH]\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "conns", required_argument, NULL, 'c' },
        { "duration", required_argument, NULL, 'd' },
        { "group", required_argument, NULL, 'g' },
        { "path", required_argument, NULL, 'p' },
        { "resume", no_argument, NULL, 'r' },
        { "no-resume", no_argument, NULL, 'n' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *gname = "X25519MLKEM768", *path = NULL;
    char *url_path = NULL;
    int conns = 16, secs = 10, opt, group, rc = 1;
    int groups[1];

    while ((opt = getopt_long(argc, argv, "c:d:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'c': conns = atoi(optarg); break;
        case 'd': secs = atoi(optarg); break;
        case 'g': gname = optarg; break;
        case 'p': path = optarg; break;
        case 'r': G.resume = 1; break;
        case 'n': G.resume = 0; break;
        default: usage(); return opt == 'h' ? 0 : 2;
        }
    }
    if (optind != argc - 1 || conns < 1 || conns > 10000 || secs < 1) {
        usage();
        return 2;
    }
    group = px_group_from_name(gname);
    if (!group) {
        fprintf(stderr, "hsgen: unknown group %s\n", gname);
        return 2;
    }
    if (parse_target(argv[optind], &path, &url_path) != 0)
        return 2;
    G.req_len = asprintf(&G.req, "GET %s HTTP/1.1\r\nHost: " SNI "\r\nConnection: close\r\n\r\n",
                         path ? path : "/");
    free(url_path);
    if (G.req_len < 0)
        return 1;

    if (wolfSSL_Init() != WOLFSSL_SUCCESS || !(G.ctx = wolfSSL_CTX_new(wolfTLSv1_3_client_method())))
        goto fail;
    /* A load generator measures the server: like wrk, no certificate
     * verification (the CertificateVerify signature is still checked). */
    wolfSSL_CTX_set_verify(G.ctx, WOLFSSL_VERIFY_NONE, NULL);
    wolfSSL_CTX_SetIORecv(G.ctx, io_recv);
    wolfSSL_CTX_SetIOSend(G.ctx, io_send);
    /* One group in supported_groups and its key share (wolfSSL sends the
     * key share for the first configured group): no HelloRetryRequest. */
    groups[0] = group;
    if (wolfSSL_CTX_set_groups(G.ctx, groups, 1) != WOLFSSL_SUCCESS) {
        fprintf(stderr, "hsgen: wolfSSL cannot offer %s\n", gname);
        goto fail;
    }
    if (wolfSSL_CTX_UseSNI(G.ctx, WOLFSSL_SNI_HOST_NAME, SNI, (unsigned short)strlen(SNI)) != WOLFSSL_SUCCESS)
        goto fail;
    /* Every connection is a full handshake unless --resume: no cache upkeep. */
    if (!G.resume)
        wolfSSL_CTX_set_session_cache_mode(G.ctx, WOLFSSL_SESS_CACHE_OFF);

    G.loop = uv_default_loop();
    G.nconns = conns;
    G.conns = calloc((size_t)conns, sizeof *G.conns);
    if (!G.conns)
        goto fail;
    uv_timer_init(G.loop, &G.stop_timer);
    uv_timer_init(G.loop, &G.tick_timer);
    G.start_ns = uv_hrtime();
    uv_timer_start(&G.stop_timer, on_stop, (uint64_t)secs * 1000, 0);
    uv_timer_start(&G.tick_timer, on_tick, 100, 100);
    for (int i = 0; i < conns; i++)
        conn_start(&G.conns[i]);
    uv_run(G.loop, UV_RUN_DEFAULT);
    report();
    rc = 0;
fail:
    if (rc)
        fprintf(stderr, "hsgen: wolfSSL setup failed\n");
    wolfSSL_SESSION_free(G.session);
    wolfSSL_CTX_free(G.ctx);
    free(G.conns);
    free(G.lat);
    free(G.req);
    wolfSSL_Cleanup();
    return rc;
}
