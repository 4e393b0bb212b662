/* `pqproxy request`: one HTTPS request over hybrid post-quantum TLS, for
 * users and tests. Blocking I/O is fine here: one request, one socket. The
 * request body is streamed from a file or stdin, the response body is
 * written out as it arrives (so SSE token streams show up live). */
#include "cmd/client.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cmd/cli.h"
#include "cmd/client_h2.h"
#include "config/config.h"
#include "core/errors.h"
#include "http/http1.h"
#include "sig/sig.h"
#include "core/sockio.h"
#include "net/tls.h"
#include "cmd/version.h"

#define IO_CHUNK 16384
#define MAX_HEADERS 64

typedef struct {
    const char *url;
    const char *method;
    const char *headers[MAX_HEADERS];
    int header_count;
    const char *data;
    const char *data_file;
    const char *cacert, *cert, *key;
    const char *connect_to;
    const char *out_file;
    uint16_t groups[PX_MAX_GROUPS];
    int group_count;
    int insecure, verbose, include, fail, http2;
    int timeout_ms;
    const char *sign_key, *sign_keyid;        /* sign the request (PREFIX, keyid) */
    const char *verify_key, *verify_keyid;    /* verify the response (PREFIX, keyid) */
    char authority[300];                      /* Host: host[:port] */
    /* the request as signed, for the response's ";req" binding */
    px_buf_t sig_value, digest_value;
    px_header_t sent[2];
    px_sig_msg_t reqmsg;
} opts_t;

#define ALERT_INSUFFICIENT_SECURITY 71   /* RFC 8446 6.2 */

typedef struct {
    int fd;
    px_tls_t *tls;
    int timeout_ms;
} link_t;

static int usage(void)
{
    printf("usage: pqproxy request [options] https://HOST[:PORT]/PATH\n"
            "  -X, --method METHOD      request method (GET, or POST with a body)\n"
            "  -H, --header 'K: V'      add a header (repeatable)\n"
            "  -d, --data STRING        request body\n"
            "      --data-file FILE     request body from FILE ('-' for stdin), streamed\n"
            "      --cacert FILE        trust anchors for the server certificate\n"
            "  -k, --insecure           do not verify the server certificate\n"
            "      --cert FILE --key FILE  client certificate (mTLS)\n"
            "      --groups LIST        key-exchange groups, in order (default\n"
            "                           X25519MLKEM768,SecP256r1MLKEM768,SecP384r1MLKEM1024,X25519)\n"
            "      --connect HOST:PORT  connect there instead of the URL's host\n"
            "  -o, --output FILE        write the body to FILE\n"
            "  -i, --include            print the status line and headers\n"
            "  -v, --verbose            print TLS details (version, group, cipher) to stderr\n"
            "  -f, --fail               exit 22 when the status is 400 or more\n"
            "      --http2              HTTP/2 (ALPN h2 only)\n"
            "      --timeout MS         give up after MS milliseconds of silence (default 30000)\n"
            "      --sign-key PREFIX --keyid ID   sign the request (ECDSA P-384 + ML-DSA-87,\n"
            "                           docs/signatures.md); PREFIX from pqproxy keygen\n"
            "      --verify-key PREFIX [--verify-keyid ID]   verify the response signature with the\n"
            "                           proxy's public keys (keyid default \"pqproxy\"); exit 1 if it fails\n");
    return 0;
}

/* insufficient_security is what a server under pq_policy "require" answers
 * a ClientHello without a hybrid group: say so rather than wolfSSL's
 * "received alert fatal error". */
static void handshake_failed(const link_t *l, const opts_t *o)
{
    const char *e = px_tls_error(l->tls)[0] ? px_tls_error(l->tls) : "connection closed";
    int hybrid = 0;

    for (int i = 0; i < o->group_count; i++)
        hybrid |= px_group_is_hybrid(o->groups[i]);
    if (px_tls_peer_alert(l->tls) != ALERT_INSUFFICIENT_SECURITY)
        fprintf(stderr, "pqproxy request: TLS handshake failed: %s\n", e);
    else if (!hybrid)
        fprintf(stderr, "pqproxy request: TLS handshake failed: the server requires a post-quantum "
                "group and --groups offered only classical ones; add X25519MLKEM768\n");
    else
        fprintf(stderr, "pqproxy request: TLS handshake failed: the server requires a post-quantum "
                "group and supports none of those offered (--groups)\n");
}

static int parse_groups(const char *list, opts_t *o)
{
    char buf[512], *save = NULL, *tok;
    snprintf(buf, sizeof buf, "%s", list);
    o->group_count = 0;
    for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        uint16_t g = px_group_from_name(tok);
        if (!g) {
            fprintf(stderr, "pqproxy request: --groups: unknown group '%s'\n", tok);
            return -1;
        }
        if (!px_probe_group(g)) {
            fprintf(stderr, "pqproxy request: --groups: '%s' is not supported by this build's "
                    "wolfSSL (see pqproxy version)\n", tok);
            return -1;
        }
        if (o->group_count == PX_MAX_GROUPS)
            return -1;
        o->groups[o->group_count++] = g;
    }
    return o->group_count ? 0 : -1;
}

/* https://host[:port]/path -> host (for SNI and Host), port, path. */
static int parse_url(const char *url, char *host, size_t hcap, char *port, size_t pcap,
                     const char **path)
{
    const char *p, *end, *colon;
    if (strncasecmp(url, "https://", 8) != 0)
        return -1;
    p = url + 8;
    end = p + strcspn(p, "/?#");
    *path = *end == '/' ? end : "/";
    if (*p == '[') {
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (!rb)
            return -1;
        snprintf(host, hcap, "%.*s", (int)(rb - p - 1), p + 1);
        colon = rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = memchr(p, ':', (size_t)(end - p));
        snprintf(host, hcap, "%.*s", (int)((colon ? colon : end) - p), p);
    }
    if (colon)
        snprintf(port, pcap, "%.*s", (int)(end - colon - 1), colon + 1);
    else
        snprintf(port, pcap, "443");
    return host[0] ? 0 : -1;
}

static int dial(const char *host, const char *port)
{
    struct addrinfo hints, *res, *ai;
    int fd = -1, rc;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "pqproxy request: %s:%s: %s\n", host, port, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    if (fd < 0)
        fprintf(stderr, "pqproxy request: cannot connect to %s:%s: %s\n", host, port, strerror(errno));
    freeaddrinfo(res);
    return fd;
}

static int flush_out(link_t *l)
{
    return px_sock_flush_tls(l->fd, l->tls, px_now_ms() + l->timeout_ms, NULL);
}

/* Reads more ciphertext; < 0 on timeout or error, 0 at EOF, 1 otherwise.
 * A failed read counts as EOF: the next px_tls_read reports the cut. */
static int fill_in(link_t *l)
{
    int rc = px_sock_fill_tls(l->fd, l->tls, px_now_ms() + l->timeout_ms, NULL);
    if (rc == PX_ETIMEOUT)
        fprintf(stderr, "pqproxy request: timed out after %d ms\n", l->timeout_ms);
    return rc == PX_EEOF ? 0 : rc;
}

static int send_all(link_t *l, const char *p, size_t n)
{
    if (px_tls_write(l->tls, p, n) < 0 || flush_out(l) < 0) {
        fprintf(stderr, "pqproxy request: send failed: %s\n", px_tls_error(l->tls));
        return -1;
    }
    return 0;
}

/* Reads FILE ("-": stdin) into memory: a signed body's digest must be
 * known before the head goes out. */
static int slurp(const char *file, px_buf_t *out)
{
    FILE *f = strcmp(file, "-") ? fopen(file, "rb") : stdin;
    char buf[IO_CHUNK];
    size_t n;
    int rc = 0;
    if (!f)
        return -1;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        if ((rc = px_buf_append(out, buf, n)) < 0)
            break;
    if (f != stdin)
        fclose(f);
    return rc;
}

/* Adds Content-Digest and X-Signature for the request (docs/signatures.md). */
static int sign_request(opts_t *o, const char *method, const char *path, const char *body,
                        size_t blen)
{
    px_sig_signer_t *signer = NULL;
    char err[512], digest[160];
    int rc = -1;

    if (px_sig_signer_load(o->sign_key, o->sign_keyid, &signer, err, sizeof err) != 0) {
        fprintf(stderr, "pqproxy request: --sign-key: %s\n", err);
        return -1;
    }
    if (px_content_digest(body, blen, digest, sizeof digest) < 0 ||
        px_buf_append(&o->digest_value, digest, strlen(digest)) < 0)
        goto out;
    o->sent[0] = (px_header_t){ "Content-Digest", 14, px_buf_ptr(&o->digest_value),
                                px_buf_size(&o->digest_value) };
    memset(&o->reqmsg, 0, sizeof o->reqmsg);
    o->reqmsg.is_request = 1;
    o->reqmsg.method = method;
    o->reqmsg.method_len = strlen(method);
    o->reqmsg.authority = o->authority;
    o->reqmsg.authority_len = strlen(o->authority);
    o->reqmsg.target = path;
    o->reqmsg.target_len = strlen(path);
    o->reqmsg.headers = o->sent;
    o->reqmsg.header_count = 1;
    if (px_sig_sign_request(signer, &o->reqmsg, NULL, 0, (int64_t)time(NULL), 300, NULL,
                            &o->sig_value) < 0) {
        fprintf(stderr, "pqproxy request: signing failed\n");
        goto out;
    }
    o->sent[1] = (px_header_t){ "X-Signature", 11, px_buf_ptr(&o->sig_value),
                                px_buf_size(&o->sig_value) };
    o->reqmsg.header_count = 2;
    rc = 0;
out:
    px_sig_signer_free(signer);
    return rc;
}

/* A signed request's body is hashed before anything is sent: read it
 * whole into held, then sign. */
static int sign_held_body(opts_t *o, const char *method, const char *path, px_buf_t *held)
{
    if (o->data && px_buf_append(held, o->data, strlen(o->data)) < 0)
        return -1;
    if (o->data_file && slurp(o->data_file, held) < 0) {
        fprintf(stderr, "pqproxy request: --data-file %s: %s\n", o->data_file, strerror(errno));
        return -1;
    }
    return sign_request(o, method, path, px_buf_ptr(held), px_buf_size(held));
}

static int send_request(link_t *l, opts_t *o, const char *path)
{
    px_buf_t head;
    FILE *body = NULL;
    long long len = -1;
    int rc = -1, has_host = 0;
    const char *method = o->method ? o->method : (o->data || o->data_file) ? "POST" : "GET";

    px_buf_t held;
    px_buf_init(&head, 0);
    px_buf_init(&held, 0);
    if (o->sign_key) {
        if (sign_held_body(o, method, path, &held) < 0) {
            px_buf_free(&held);
            return -1;
        }
        len = (long long)px_buf_size(&held);
    } else if (o->data) {
        len = (long long)strlen(o->data);
    } else if (o->data_file) {
        struct stat st;
        body = strcmp(o->data_file, "-") ? fopen(o->data_file, "rb") : stdin;
        if (!body) {
            fprintf(stderr, "pqproxy request: --data-file %s: %s\n", o->data_file, strerror(errno));
            return -1;
        }
        if (fstat(fileno(body), &st) == 0 && S_ISREG(st.st_mode))
            len = (long long)st.st_size;
    }
    px_buf_printf(&head, "%s %s HTTP/1.1\r\n", method, path);
    for (int i = 0; i < o->header_count; i++) {
        if (!strncasecmp(o->headers[i], "host:", 5))
            has_host = 1;
        px_buf_printf(&head, "%s\r\n", o->headers[i]);
    }
    if (!has_host)
        px_buf_printf(&head, "Host: %s\r\n", o->authority);
    px_buf_printf(&head, "User-Agent: pqproxy-request/%s\r\n", PX_VERSION);
    for (int i = 0; o->sign_key && i < 2; i++)
        px_buf_printf(&head, "%s: %.*s\r\n", o->sent[i].name, (int)o->sent[i].value_len,
                      o->sent[i].value);
    if (o->data || o->data_file || o->sign_key) {
        if (len >= 0)
            px_buf_printf(&head, "Content-Length: %lld\r\n", len);
        else
            px_buf_printf(&head, "Transfer-Encoding: chunked\r\n");
    }
    px_buf_printf(&head, "Connection: close\r\n\r\n");
    if (send_all(l, px_buf_ptr(&head), px_buf_size(&head)) < 0)
        goto out;
    if (o->sign_key) {
        if (px_buf_size(&held) && send_all(l, px_buf_ptr(&held), px_buf_size(&held)) < 0)
            goto out;
        rc = 0;
        goto out;
    }
    if (o->data && send_all(l, o->data, strlen(o->data)) < 0)
        goto out;
    if (body) {
        char buf[IO_CHUNK + 32];
        size_t n;
        while ((n = fread(buf + 16, 1, IO_CHUNK, body)) > 0) {
            if (len < 0) {          /* chunked: frame in place */
                int hl = snprintf(buf, 16, "%zx\r\n", n);
                memmove(buf + 16 - hl, buf, (size_t)hl);
                memcpy(buf + 16 + n, "\r\n", 2);
                if (send_all(l, buf + 16 - hl, (size_t)hl + n + 2) < 0)
                    goto out;
            } else if (send_all(l, buf + 16, n) < 0) {
                goto out;
            }
        }
        if (len < 0 && send_all(l, "0\r\n\r\n", 5) < 0)
            goto out;
    }
    rc = 0;
out:
    if (body && body != stdin)
        fclose(body);
    px_buf_free(&head);
    px_buf_free(&held);
    return rc;
}

/* The proxy's response signature (head or trailer, in m) and the body
 * digest (finalised here); 0 when both hold. Prints the outcome to stderr. */
static int verify_response(const opts_t *o, px_sig_msg_t *m, px_digest_t *d)
{
    px_sig_keyring_t *ring = px_sig_keyring_new();
    px_sig_policy_t pol;
    px_sig_info_t info;
    px_digest_value_t v;
    px_sig_result_t r = PX_SIG_INTERNAL;
    char err[512], detail[200];

    px_digest_final(d, &v);
    if (!ring || px_sig_keyring_add_files(ring, o->verify_keyid, o->verify_key, err, sizeof err) != 0) {
        fprintf(stderr, "pqproxy request: --verify-key: %s\n", ring ? err : "out of memory");
        px_sig_keyring_free(ring);
        return -1;
    }
    px_sig_policy_default(&pol);
    m->req = o->sign_key ? &o->reqmsg : NULL;
    r = px_sig_verify_response(ring, &pol, m, o->verify_keyid, (int64_t)time(NULL), &info);
    if (r == PX_SIG_OK)
        r = px_content_digest_check(info.content_digest, info.content_digest_len, &v, detail,
                                    sizeof detail);
    else
        snprintf(detail, sizeof detail, "%s", info.detail);
    px_sig_keyring_free(ring);
    if (r != PX_SIG_OK) {
        fprintf(stderr, "* response signature: FAIL %s: %s\n", px_sig_result_name(r), detail);
        return -1;
    }
    fprintf(stderr, "* response signature: OK (keyid %s, ECDSA P-384 + ML-DSA-87%s)\n", info.keyid,
            m->trailer_count ? ", in the trailer" : "");
    return 0;
}

static int verify_response_h1(const opts_t *o, px_http1_t *p, px_digest_t *d)
{
    px_sig_msg_t m;
    int ntr = 0;

    px_sig_msg_from_head(&m, px_http1_head(p));
    m.trailers = px_http1_trailers(p, &ntr);
    m.trailer_count = ntr;
    return verify_response(o, &m, d);
}

/* An HTTP/2 response's fields and trailers (client_h2.c kept them). */
static int verify_response_h2(const opts_t *o, const px_msg_t *resp, int status, px_digest_t *d)
{
    int nh = px_msg_header_count(resp), nt = px_msg_trailer_count(resp), rc;
    px_header_t *f = calloc((size_t)(nh + nt) + 1, sizeof *f);
    px_sig_msg_t m;

    if (!f) {
        px_digest_final(d, &(px_digest_value_t){ 0 });
        return -1;
    }
    for (int i = 0; i < nh + nt; i++) {
        px_str_t a = i < nh ? px_msg_header_name(resp, i) : px_msg_trailer_name(resp, i - nh);
        px_str_t b = i < nh ? px_msg_header_value(resp, i) : px_msg_trailer_value(resp, i - nh);
        f[i] = (px_header_t){ a.p, a.n, b.p, b.n };
    }
    memset(&m, 0, sizeof m);
    m.status = status;
    m.headers = f;
    m.header_count = nh;
    m.trailers = f + nh;
    m.trailer_count = nt;
    rc = verify_response(o, &m, d);
    free(f);
    return rc;
}

/* The request over HTTP/2 (client_h2.c): the same options, signatures in
 * HTTP/2 fields (docs/signatures.md section 12). */
static int request_h2(link_t *l, opts_t *o, const char *path, int *status)
{
    px_h2_client_req_t r = { 0 };
    struct stat st;
    px_buf_t held;
    px_msg_t resp;
    px_digest_t digest;
    int rc = -1;

    px_buf_init(&held, 0);
    px_msg_init(&resp, 1 << 20, 1000);
    r.method = o->method ? o->method : (o->data || o->data_file) ? "POST" : "GET";
    r.authority = o->authority;
    r.path = path;
    r.headers = o->headers;
    r.header_count = o->header_count;
    r.user_agent = "pqproxy-request/" PX_VERSION;
    r.data = o->data;
    r.body_len = o->data ? (long long)strlen(o->data) : -1;
    r.include = o->include;
    r.out = stdout;
    if (o->sign_key) {
        if (sign_held_body(o, r.method, path, &held) < 0)
            goto out;
        r.data = px_buf_size(&held) ? px_buf_ptr(&held) : NULL;
        r.body_len = (long long)px_buf_size(&held);
        r.extra = o->sent;
        r.extra_count = 2;
    } else if (o->data_file) {
        if (!(r.body = strcmp(o->data_file, "-") ? fopen(o->data_file, "rb") : stdin)) {
            fprintf(stderr, "pqproxy request: --data-file %s: %s\n", o->data_file, strerror(errno));
            goto out;
        }
        if (fstat(fileno(r.body), &st) == 0 && S_ISREG(st.st_mode))
            r.body_len = (long long)st.st_size;
    }
    if (o->verify_key) {
        if (px_digest_init(&digest, PX_DIGEST_SHA256 | PX_DIGEST_SHA512) != 0)
            goto out;
        r.resp = &resp;
        r.digest = &digest;
    }
    if (o->out_file && !(r.out = fopen(o->out_file, "wb")))
        fprintf(stderr, "pqproxy request: -o %s: %s\n", o->out_file, strerror(errno));
    else if (px_h2_client_run(l->fd, l->tls, l->timeout_ms, &r, status) == 0)
        rc = 0;
    if (r.digest && rc == 0)
        rc = verify_response_h2(o, &resp, *status, &digest);
    else if (r.digest)
        px_digest_final(&digest, &(px_digest_value_t){ 0 });
out:
    if (r.body && r.body != stdin)
        fclose(r.body);
    if (r.out && r.out != stdout)
        fclose(r.out);
    px_msg_free(&resp);
    px_buf_free(&held);
    return rc;
}

static int read_response(link_t *l, const opts_t *o, int is_head, int *status)
{
    px_http1_limits_t lim = { 1 << 20, 1000, 0 };
    px_http1_t *p = px_http1_new(0, &lim);
    FILE *out = stdout;
    char plain[IO_CHUNK];
    int rc = -1;
    px_digest_t digest;

    if (!p)
        return -1;
    px_http1_keep_trailers(p, 1);
    if (px_digest_init(&digest, PX_DIGEST_SHA256 | PX_DIGEST_SHA512) != 0) {
        px_http1_free(p);
        return -1;
    }
    if (o->out_file && !(out = fopen(o->out_file, "wb"))) {
        fprintf(stderr, "pqproxy request: -o %s: %s\n", o->out_file, strerror(errno));
        px_http1_free(p);
        return -1;
    }
    px_http1_expect_head_response(p, is_head);
    for (;;) {
        int n = px_tls_read(l->tls, plain, sizeof plain);
        size_t off = 0;
        flush_out(l);
        if (n == PX_EAGAIN) {
            if (fill_in(l) < 0)     /* at EOF the next read reports it */
                goto done;
            continue;
        }
        if (n == PX_EEOF || n == PX_EIO) {
            if (px_http1_finish(p) != PX_H1_END)
                goto truncated;
            rc = o->verify_key ? verify_response_h1(o, p, &digest) : 0;
            if (!o->verify_key)
                px_digest_final(&digest, &(px_digest_value_t){ 0 });
            goto done_final;
        }
        if (n < 0) {
            fprintf(stderr, "pqproxy request: %s\n", px_tls_error(l->tls));
            goto done;
        }
        for (;;) {              /* until NEED_MORE: END can follow the last body bytes */
            const char *data;
            size_t used = 0, dlen = 0;
            px_h1_event_t ev = px_http1_parse(p, plain + off, (size_t)n - off, &used, &data, &dlen);
            const px_http_head_t *h;
            off += used;
            switch (ev) {
            case PX_H1_NEED_MORE:
                break;
            case PX_H1_HEAD:
                h = px_http1_head(p);
                if (!px_http1_is_interim(p))
                    *status = h->status;
                if (o->include) {
                    fprintf(out, "HTTP/1.%d %d %.*s\r\n", h->http_minor, h->status, (int)h->reason_len,
                            h->reason);
                    for (int i = 0; i < h->header_count; i++)
                        fprintf(out, "%.*s: %.*s\r\n", (int)h->headers[i].name_len, h->headers[i].name,
                                (int)h->headers[i].value_len, h->headers[i].value);
                    fprintf(out, "\r\n");
                }
                break;
            case PX_H1_BODY:
                px_digest_update(&digest, data, dlen);
                fwrite(data, 1, dlen, out);
                fflush(out);
                break;
            case PX_H1_END:
                if (!px_http1_is_interim(p)) {
                    rc = o->verify_key ? verify_response_h1(o, p, &digest) : 0;
                    if (!o->verify_key)
                        px_digest_final(&digest, &(px_digest_value_t){ 0 });
                    goto done_final;
                }
                break;
            case PX_H1_ERROR: {
                const char *detail;
                px_http1_error(p, &detail);
                fprintf(stderr, "pqproxy request: malformed response: %s\n", detail);
                goto done;
            }
            }
            if (ev == PX_H1_NEED_MORE)
                break;
        }
    }
truncated:
    fprintf(stderr, "pqproxy request: the connection closed before the response ended\n");
done:
    px_digest_final(&digest, &(px_digest_value_t){ 0 });
done_final:
    if (out != stdout)
        fclose(out);
    else
        fflush(out);
    px_http1_free(p);
    return rc;
}

int px_cmd_request(int argc, char **argv)
{
    opts_t o;
    char host[256], port[16], err[512];
    const char *path;
    px_tls_client_opts_t co;
    px_tls_ctx_t *ctx = NULL;
    link_t l = { -1, NULL, 30000 };
    int rc = 1, status = 0;
    static const uint16_t dflt[] = { 0x11EC, 0x11EB, 0x11ED, 29 };

    memset(&o, 0, sizeof o);
    o.timeout_ms = 30000;
    memcpy(o.groups, dflt, sizeof dflt);
    o.group_count = 4;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int missing = 0;   /* a known option without its value */
#define OPT(s, l) (!strcmp(a, s) || !strcmp(a, l))
#define VAL(s, l) (OPT(s, l) && (v || (missing = 1) == 0))
        if (px_cli_is_help(a))
            return usage();
        if (OPT("-k", "--insecure")) o.insecure = 1;
        else if (OPT("-v", "--verbose")) o.verbose = 1;
        else if (OPT("-i", "--include")) o.include = 1;
        else if (OPT("-f", "--fail")) o.fail = 1;
        else if (OPT("--http2", "--http2")) o.http2 = 1;
        else if (a[0] != '-') {
            if (o.url)
                return px_cli_usage_error("request", "one URL only ('%s' and '%s')", o.url, a);
            o.url = a;
        } else if (VAL("-X", "--method")) o.method = argv[++i];
        else if (VAL("-H", "--header")) {
            if (o.header_count == MAX_HEADERS || !strchr(v, ':') || strpbrk(v, "\r\n"))
                return px_cli_usage_error("request", "bad header '%s' (want 'Name: value')", v);
            o.headers[o.header_count++] = argv[++i];
        }
        else if (VAL("-d", "--data")) o.data = argv[++i];
        else if (VAL("--data-file", "--data-file")) o.data_file = argv[++i];
        else if (VAL("--cacert", "--cacert")) o.cacert = argv[++i];
        else if (VAL("--cert", "--cert")) o.cert = argv[++i];
        else if (VAL("--key", "--key")) o.key = argv[++i];
        else if (VAL("--connect", "--connect")) o.connect_to = argv[++i];
        else if (VAL("-o", "--output")) o.out_file = argv[++i];
        else if (VAL("--groups", "--groups")) {
            if (parse_groups(argv[++i], &o) < 0)
                return 2;
        }
        else if (VAL("--timeout", "--timeout")) {
            char *end;
            long ms = strtol(argv[++i], &end, 10);
            if (end == argv[i] || *end || ms < 1 || ms > 3600000)
                return px_cli_usage_error("request", "--timeout: milliseconds 1..3600000, not '%s'",
                                          argv[i]);
            o.timeout_ms = (int)ms;
        }
        else if (VAL("--sign-key", "--sign-key")) o.sign_key = argv[++i];
        else if (VAL("--keyid", "--keyid")) o.sign_keyid = argv[++i];
        else if (VAL("--verify-key", "--verify-key")) o.verify_key = argv[++i];
        else if (VAL("--verify-keyid", "--verify-keyid")) o.verify_keyid = argv[++i];
        else if (missing)
            return px_cli_usage_error("request", "option '%s' needs a value", a);
        else return px_cli_unknown("request", a);
#undef VAL
#undef OPT
    }
    if (!o.url)
        return px_cli_usage_error("request", "no URL given");
    if (strncasecmp(o.url, "https://", 8) != 0)
        return px_cli_usage_error("request", "'%s': https:// URLs only (pqproxy speaks TLS)", o.url);
    if (parse_url(o.url, host, sizeof host, port, sizeof port, &path) < 0)
        return px_cli_usage_error("request", "'%s' is not an https://HOST[:PORT]/PATH URL", o.url);
    if (!o.cacert && !o.insecure) {
        return px_cli_usage_error("request", "give --cacert FILE (or -k to skip verification)");
    }
    if (o.sign_key && !o.sign_keyid) {
        return px_cli_usage_error("request", "--sign-key needs --keyid");
    }
    if (o.verify_key && !o.verify_keyid)
        o.verify_keyid = "pqproxy";
    if (!strcmp(port, "443"))
        snprintf(o.authority, sizeof o.authority, "%s", host);
    else if (strchr(host, ':'))
        snprintf(o.authority, sizeof o.authority, "[%s]:%s", host, port);
    else
        snprintf(o.authority, sizeof o.authority, "%s:%s", host, port);
    px_buf_init(&o.sig_value, 0);
    px_buf_init(&o.digest_value, 0);
    if ((o.cert != NULL) != (o.key != NULL)) {
        return px_cli_usage_error("request", "--cert and --key go together");
    }
    memset(&co, 0, sizeof co);
    co.groups = o.groups;
    co.group_count = o.group_count;
    co.ca_file = o.insecure ? NULL : o.cacert;
    co.cert_file = o.cert;
    co.key_file = o.key;
    co.alpn = o.http2 ? "h2" : NULL;
    ctx = px_tls_ctx_client_new(&co, err, sizeof err);
    if (!ctx) {
        fprintf(stderr, "pqproxy request: %s\n", err);
        return 1;
    }
    if (o.connect_to) {
        char chost[256], cport[16];
        const char *colon = strrchr(o.connect_to, ':');
        if (!colon) {
            rc = px_cli_usage_error("request", "--connect '%s' is not HOST:PORT", o.connect_to);
            goto out;
        }
        snprintf(chost, sizeof chost, "%.*s", (int)(colon - o.connect_to), o.connect_to);
        snprintf(cport, sizeof cport, "%s", colon + 1);
        l.fd = dial(chost, cport);
    } else {
        l.fd = dial(host, port);
    }
    if (l.fd < 0)
        goto out;
    l.timeout_ms = o.timeout_ms > 0 ? o.timeout_ms : 30000;
    l.tls = px_tls_new(ctx, host);
    for (;;) {
        int hs = px_tls_handshake(l.tls);
        if (flush_out(&l) < 0 && hs == PX_EAGAIN) {
            fprintf(stderr, "pqproxy request: connection lost during the handshake\n");
            goto out;
        }
        if (hs == 0)
            break;
        if (hs != PX_EAGAIN || fill_in(&l) < 0) {
            handshake_failed(&l, &o);
            goto out;
        }
    }
    if (o.verbose) {
        px_tls_info_t ti;
        px_tls_get_info(l.tls, &ti);
        fprintf(stderr, "* TLS %s, key exchange %s (%s), cipher %s%s\n", ti.version, ti.group,
                ti.hybrid ? "hybrid post-quantum" : "classical", ti.cipher,
                ti.resumed ? ", resumed" : "");
    }
    if (o.http2) {
        if (request_h2(&l, &o, path, &status) < 0)
            goto out;
    } else if (send_request(&l, &o, path) < 0) {
        goto out;
    } else {
        const char *m = o.method ? o.method : "";
        if (read_response(&l, &o, !strcasecmp(m, "HEAD"), &status) < 0)
            goto out;
    }
    if (o.verbose)
        fprintf(stderr, "* status %d\n", status);
    rc = o.fail && status >= 400 ? 22 : 0;
    px_tls_shutdown(l.tls);
    flush_out(&l);
out:
    if (l.fd >= 0)
        close(l.fd);
    px_tls_free(l.tls);
    px_tls_ctx_unref(ctx);
    px_buf_free(&o.sig_value);
    px_buf_free(&o.digest_value);
    return rc;
}
