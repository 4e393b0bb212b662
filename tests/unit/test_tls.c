/* TLS 1.3 over loopback between pqproxy's own server and client contexts:
 * the hybrid group is negotiated, the server's preference wins (with a
 * HelloRetryRequest), pq_policy "require" refuses classical-only clients
 * and "prefer" serves them, certificates are chosen by SNI, and the
 * ClientHello parser copes with fragmentation and garbage. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cmd/certgen.h"
#include "config/config.h"
#include "core/errors.h"
#include "net/tickets.h"
#include "net/tls.h"

#define X25519MLKEM768 0x11EC
#define SECP256R1MLKEM768 0x11EB
#define SECP384R1MLKEM1024 0x11ED
#define X25519 29
#define SECP256R1 23

static char dir[256];
static char ecdsa_crt[300], ecdsa_key[300], mldsa_crt[300], mldsa_key[300], bundle[300];
static char client_crt[300], client_key[300];

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static int make_pki(void **state)
{
    px_pem_pair_t ca, leaf, pqca, pqleaf, cl;
    const char *sans[] = { "localhost", "127.0.0.1" };
    const char *pqsans[] = { "pq.localhost" };
    FILE *f;
    (void)state;

    snprintf(dir, sizeof dir, "/tmp/px-test-tls-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    if (px_certgen_ca(PX_KEY_ECDSA_P384, "test CA", 2, &ca) != 0 ||
        px_certgen_leaf(PX_KEY_ECDSA_P256, &ca, "localhost", sans, 2, 2, 0, &leaf) != 0 ||
        px_certgen_leaf(PX_KEY_ECDSA_P256, &ca, "client", NULL, 0, 2, 1, &cl) != 0 ||
        px_certgen_ca(PX_KEY_MLDSA87, "test PQ CA", 2, &pqca) != 0 ||
        px_certgen_leaf(PX_KEY_MLDSA65, &pqca, "pq.localhost", pqsans, 1, 2, 0, &pqleaf) != 0) {
        fprintf(stderr, "certgen: %s\n", px_certgen_errmsg());
        return -1;
    }
#define P(var, name) snprintf(var, sizeof var, "%s/" name, dir)
    P(ecdsa_crt, "server.crt");
    P(ecdsa_key, "server.key");
    P(mldsa_crt, "server-mldsa.crt");
    P(mldsa_key, "server-mldsa.key");
    P(bundle, "bundle.crt");
    P(client_crt, "client.crt");
    P(client_key, "client.key");
#undef P
    write_file(ecdsa_crt, leaf.cert_pem, leaf.cert_len);
    write_file(ecdsa_key, leaf.key_pem, leaf.key_len);
    write_file(mldsa_crt, pqleaf.cert_pem, pqleaf.cert_len);
    write_file(mldsa_key, pqleaf.key_pem, pqleaf.key_len);
    write_file(client_crt, cl.cert_pem, cl.cert_len);
    write_file(client_key, cl.key_pem, cl.key_len);
    f = fopen(bundle, "wb");
    fputs(ca.cert_pem, f);
    fputs(pqca.cert_pem, f);
    fclose(f);
    px_pem_pair_free(&ca);
    px_pem_pair_free(&leaf);
    px_pem_pair_free(&cl);
    px_pem_pair_free(&pqca);
    px_pem_pair_free(&pqleaf);
    return px_tls_global_init();
}

static int remove_pki(void **state)
{
    char cmd[300];
    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* --- a blocking pump between a px_tls_t and a socket ------------------------------- */

typedef struct {
    px_tls_t *t;
    int fd;
    int rc;                 /* handshake result */
    px_tls_info_t info;
    char got[64];           /* the message received after the handshake */
    char sni_group[64];
} side_t;

static int pump_out(side_t *s)
{
    px_buf_t *o = px_tls_out(s->t);
    while (px_buf_size(o)) {
        ssize_t w = write(s->fd, px_buf_ptr(o), px_buf_size(o));
        if (w <= 0)
            return -1;
        px_buf_consume(o, (size_t)w);
    }
    return 0;
}

static int pump_in(side_t *s)
{
    char *p = px_tls_in_reserve(s->t, 16384);
    ssize_t r;
    if (!p)
        return -1;
    r = read(s->fd, p, 16384);
    if (r > 0)
        px_tls_in_commit(s->t, (size_t)r);
    else
        px_tls_in_eof(s->t);
    return r > 0 ? 0 : -1;
}

static int handshake(side_t *s)
{
    for (int i = 0; i < 1000; i++) {
        int rc = px_tls_handshake(s->t);
        pump_out(s);
        if (rc != PX_EAGAIN)
            return rc;
        pump_in(s);
    }
    return PX_ETLS;
}

static int recv_msg(side_t *s, char *buf, size_t cap)
{
    for (int i = 0; i < 1000; i++) {
        int n = px_tls_read(s->t, buf, cap - 1);
        pump_out(s);       /* post-handshake messages */
        if (n > 0) {
            buf[n] = 0;
            return n;
        }
        if (n != PX_EAGAIN)
            return n;
        if (pump_in(s) < 0 && px_tls_in_pending(s->t) == 0)
            return PX_EIO;
    }
    return PX_ETLS;
}

typedef struct {
    px_tls_ctx_t *ctx;
    int lfd;
    side_t side;
} server_arg_t;

static void *server_main(void *arg)
{
    server_arg_t *a = arg;
    side_t *s = &a->side;
    s->fd = accept(a->lfd, NULL, NULL);
    s->t = px_tls_new(a->ctx, NULL);
    s->rc = handshake(s);
    px_tls_get_info(s->t, &s->info);
    if (s->rc == 0 && recv_msg(s, s->got, sizeof s->got) > 0) {
        char reply[96];
        int n = snprintf(reply, sizeof reply, "pong %s", s->info.group);
        px_tls_write(s->t, reply, (size_t)n);
        pump_out(s);
    }
    /* unblock the client whatever happened; the session is freed by the test */
    shutdown(s->fd, SHUT_RDWR);
    return NULL;
}

static int listen_any(uint16_t *port)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 4), 0);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    *port = ntohs(sa.sin_port);
    return fd;
}

static int connect_to(uint16_t port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

typedef struct {
    const uint16_t *server_groups;
    int nserver;
    px_pq_policy_t policy;
    const uint16_t *client_groups;
    int nclient;
    const char *sni;
    int sni_cert;           /* the ML-DSA certificate is served for "pq.localhost" */
    int mtls;               /* server requires a client certificate */
    int client_cert;        /* client presents one */
    void *resume;           /* client session to resume */
} scenario_t;

typedef struct {
    side_t server, client;
    char reply[96];
    void *saved;            /* the client's session after the exchange */
} result_t;

static void run(const scenario_t *sc, result_t *r)
{
    px_tls_config_t cfg;
    px_tls_client_opts_t co;
    char err[512];
    server_arg_t sa;
    pthread_t th;
    uint16_t port;
    px_tls_ctx_t *cctx;

    memset(&cfg, 0, sizeof cfg);
    memset(r, 0, sizeof *r);
    memcpy(cfg.groups, sc->server_groups, (size_t)sc->nserver * sizeof(uint16_t));
    cfg.group_count = sc->nserver;
    cfg.pq_policy = sc->policy;
    cfg.min_version = 13;
    cfg.session_tickets = 1;
    cfg.certs[0].cert_file = ecdsa_crt;
    cfg.certs[0].key_file = ecdsa_key;
    cfg.cert_count = 1;
    if (sc->sni_cert) {
        cfg.certs[1].cert_file = mldsa_crt;
        cfg.certs[1].key_file = mldsa_key;
        cfg.certs[1].sni[0] = (char *)"pq.localhost";
        cfg.certs[1].sni_count = 1;
        cfg.cert_count = 2;
    }
    if (sc->mtls)
        cfg.client_ca_file = bundle;

    memset(&sa, 0, sizeof sa);
    sa.ctx = px_tls_ctx_server_new(&cfg, err, sizeof err);
    if (!sa.ctx)
        fail_msg("server context: %s", err);
    memset(&co, 0, sizeof co);
    co.groups = sc->client_groups;
    co.group_count = sc->nclient;
    co.ca_file = bundle;
    if (sc->client_cert) {
        co.cert_file = client_crt;
        co.key_file = client_key;
    }
    cctx = px_tls_ctx_client_new(&co, err, sizeof err);
    if (!cctx)
        fail_msg("client context: %s", err);

    sa.lfd = listen_any(&port);
    assert_int_equal(pthread_create(&th, NULL, server_main, &sa), 0);
    r->client.fd = connect_to(port);
    r->client.t = px_tls_new(cctx, sc->sni ? sc->sni : "localhost");
    if (sc->resume)
        assert_int_equal(px_tls_session_resume(r->client.t, sc->resume), 0);
    r->client.rc = handshake(&r->client);
    px_tls_get_info(r->client.t, &r->client.info);
    if (r->client.rc == 0) {
        px_tls_write(r->client.t, "ping", 4);
        pump_out(&r->client);
        recv_msg(&r->client, r->reply, sizeof r->reply);
        r->saved = px_tls_session_save(r->client.t);   /* the ticket came before the reply */
    } else {
        shutdown(r->client.fd, SHUT_RDWR);
    }
    pthread_join(th, NULL);
    r->server = sa.side;
    close(r->client.fd);
    close(sa.side.fd);
    close(sa.lfd);
    px_tls_ctx_unref(cctx);
    px_tls_ctx_unref(sa.ctx);
}

static void done(result_t *r)
{
    px_tls_session_free(r->saved);
    px_tls_free(r->client.t);
    px_tls_free(r->server.t);
}

static const uint16_t default_groups[] = { X25519MLKEM768, SECP256R1MLKEM768, SECP384R1MLKEM1024, X25519 };

static void test_hybrid_negotiated(void **state)
{
    const uint16_t client[] = { X25519MLKEM768, X25519 };
    scenario_t sc = { default_groups, 4, PX_PQ_REQUIRE, client, 2, NULL, 0, 0, 0, NULL };
    result_t r;
    (void)state;
    run(&sc, &r);
    assert_int_equal(r.client.rc, 0);
    assert_int_equal(r.server.rc, 0);
    assert_string_equal(r.server.info.group, "X25519MLKEM768");
    assert_string_equal(r.client.info.group, "X25519MLKEM768");
    assert_int_equal(r.server.info.group_id, X25519MLKEM768);
    assert_true(r.server.info.hybrid);
    assert_false(r.server.info.hrr);
    assert_string_equal(r.server.info.version, "TLSv1.3");
    /* IANA cipher names on both sides (access log, request -v, /metrics) */
    assert_string_equal(r.server.info.cipher, "TLS_AES_256_GCM_SHA384");
    assert_string_equal(r.client.info.cipher, "TLS_AES_256_GCM_SHA384");
    assert_string_equal(r.server.info.sni, "localhost");
    assert_string_equal(r.server.got, "ping");
    assert_string_equal(r.reply, "pong X25519MLKEM768");
    done(&r);
}

/* The client leads with a classical key share but supports the hybrid:
 * the server's preference wins through a HelloRetryRequest. */
static void test_server_preference_hrr(void **state)
{
    const uint16_t client[] = { X25519, X25519MLKEM768 };
    scenario_t sc = { default_groups, 4, PX_PQ_PREFER, client, 2, NULL, 0, 0, 0, NULL };
    result_t r;
    (void)state;
    run(&sc, &r);
    assert_int_equal(r.client.rc, 0);
    assert_int_equal(r.server.rc, 0);
    assert_string_equal(r.server.info.group, "X25519MLKEM768");
    assert_string_equal(r.client.info.group, "X25519MLKEM768");
    assert_true(r.server.info.hrr);
    assert_string_equal(r.reply, "pong X25519MLKEM768");
    done(&r);
}

static void test_other_hybrids(void **state)
{
    const uint16_t c1[] = { SECP384R1MLKEM1024 };
    const uint16_t c2[] = { SECP256R1MLKEM768 };
    scenario_t sc = { default_groups, 4, PX_PQ_REQUIRE, c1, 1, NULL, 0, 0, 0, NULL };
    result_t r;
    (void)state;
    run(&sc, &r);
    assert_int_equal(r.server.rc, 0);
    assert_string_equal(r.server.info.group, "SecP384r1MLKEM1024");
    assert_string_equal(r.client.info.group, "SecP384r1MLKEM1024");
    done(&r);
    sc.client_groups = c2;
    run(&sc, &r);
    assert_int_equal(r.server.rc, 0);
    assert_string_equal(r.server.info.group, "SecP256r1MLKEM768");
    done(&r);
}

static void test_require_refuses_classical(void **state)
{
    const uint16_t client[] = { X25519, SECP256R1 };
    scenario_t sc = { default_groups, 4, PX_PQ_REQUIRE, client, 2, NULL, 0, 0, 0, NULL };
    result_t r;
    (void)state;
    run(&sc, &r);
    assert_int_equal(r.server.rc, PX_EPQPOLICY);
    assert_non_null(strstr(px_tls_error(r.server.t), "no hybrid"));
    assert_int_not_equal(r.client.rc, 0);
    assert_string_equal(r.server.got, "");
    done(&r);
}

static void test_prefer_serves_classical(void **state)
{
    const uint16_t client[] = { X25519 };
    scenario_t sc = { default_groups, 4, PX_PQ_PREFER, client, 1, NULL, 0, 0, 0, NULL };
    result_t r;
    (void)state;
    run(&sc, &r);
    assert_int_equal(r.server.rc, 0);
    assert_int_equal(r.client.rc, 0);
    assert_string_equal(r.server.info.group, "X25519");
    assert_false(r.server.info.hybrid);
    assert_string_equal(r.reply, "pong X25519");
    done(&r);
}

static void test_sni_selects_mldsa_certificate(void **state)
{
    const uint16_t client[] = { X25519MLKEM768 };
    scenario_t sc = { default_groups, 4, PX_PQ_REQUIRE, client, 1, "pq.localhost", 1, 0, 0, NULL };
    result_t r;
    (void)state;
    run(&sc, &r);
    assert_int_equal(r.client.rc, 0);   /* the client verified the ML-DSA chain */
    assert_string_equal(r.server.info.cert_key, "ML-DSA-65");
    assert_string_equal(r.server.info.sni, "pq.localhost");
    done(&r);
    sc.sni = "localhost";
    run(&sc, &r);
    assert_int_equal(r.client.rc, 0);
    assert_string_equal(r.server.info.cert_key, "ECDSA-P256");
    done(&r);
}

static void test_mtls(void **state)
{
    const uint16_t client[] = { X25519MLKEM768 };
    scenario_t sc = { default_groups, 4, PX_PQ_REQUIRE, client, 1, NULL, 0, 1, 0, NULL };
    result_t r;
    (void)state;
    run(&sc, &r);                        /* no client certificate: refused */
    assert_int_not_equal(r.server.rc, 0);
    done(&r);
    sc.client_cert = 1;
    run(&sc, &r);
    assert_int_equal(r.server.rc, 0);
    assert_int_equal(r.client.rc, 0);
    assert_non_null(strstr(r.server.info.peer_subject, "CN=client"));
    done(&r);
}

/* Tickets are sealed with shared, rotating keys: a ticket resumes under
 * the key that made it and under the next one, not after two rotations. */
static void test_ticket_resumption_and_rotation(void **state)
{
    const uint16_t client[] = { X25519MLKEM768 };
    scenario_t sc = { default_groups, 4, PX_PQ_REQUIRE, client, 1, NULL, 0, 0, 0, NULL };
    result_t first, again, after1, after2;
    (void)state;

    run(&sc, &first);
    assert_int_equal(first.server.rc, 0);
    assert_false(first.server.info.resumed);
    assert_non_null(first.saved);

    sc.resume = first.saved;
    run(&sc, &again);
    assert_int_equal(again.server.rc, 0);
    assert_true(again.server.info.resumed);
    assert_string_equal(again.server.info.group, "X25519MLKEM768");   /* psk_dhe_ke: still hybrid */
    assert_string_equal(again.reply, "pong X25519MLKEM768");

    sc.resume = again.saved;              /* clients use their newest ticket */
    px_tickets_rotate();                  /* the ticket's key is now the previous one */
    run(&sc, &after1);
    assert_int_equal(after1.server.rc, 0);
    assert_true(after1.server.info.resumed);

    sc.resume = again.saved;
    px_tickets_rotate();                  /* and now retired */
    run(&sc, &after2);
    assert_int_equal(after2.server.rc, 0);
    assert_int_equal(after2.client.rc, 0);
    assert_false(after2.server.info.resumed);
    done(&after2);
    done(&after1);
    done(&again);
    done(&first);
}

/* A client that keeps resuming with its newest ticket: wolfSSL's one-byte
 * ticket nonce used to overflow after 255 resumptions and fail the
 * handshake (scripts/patches/wolfssl/0001-tls13-ticket-nonce-per-connection.patch;
 * test_ticket_nonce covers what the patch keeps: 256 tickets per connection). */
static void test_resumption_chain(void **state)
{
    const uint16_t client[] = { X25519MLKEM768 };
    scenario_t sc = { default_groups, 4, PX_PQ_REQUIRE, client, 1, NULL, 0, 0, 0, NULL };
    result_t prev, cur;
    (void)state;

    run(&sc, &prev);
    assert_int_equal(prev.server.rc, 0);
    for (int i = 0; i < 300; i++) {
        sc.resume = prev.saved;
        run(&sc, &cur);
        if (cur.server.rc != 0 || !cur.server.info.resumed)
            fail_msg("resumption %d: rc %d resumed %d (%s)", i + 1, cur.server.rc,
                     cur.server.info.resumed, px_tls_error(cur.server.t));
        done(&prev);
        prev = cur;
    }
    done(&prev);
}

/* --- the ClientHello parser ----------------------------------------------------------- */

static size_t client_hello(const uint16_t *groups, int n, const char *sni, char *out, size_t cap)
{
    px_tls_client_opts_t co;
    char err[256];
    px_tls_ctx_t *ctx;
    px_tls_t *t;
    size_t len;

    memset(&co, 0, sizeof co);
    co.groups = groups;
    co.group_count = n;
    ctx = px_tls_ctx_client_new(&co, err, sizeof err);
    assert_non_null(ctx);
    t = px_tls_new(ctx, sni);
    assert_int_equal(px_tls_handshake(t), PX_EAGAIN);
    len = px_buf_size(px_tls_out(t));
    assert_true(len > 0 && len <= cap);
    memcpy(out, px_buf_ptr(px_tls_out(t)), len);
    px_tls_free(t);
    px_tls_ctx_unref(ctx);
    return len;
}

static void test_parse_client_hello(void **state)
{
    const uint16_t groups[] = { X25519, X25519MLKEM768, SECP384R1MLKEM1024 };
    char ch[8192], frag[8300];
    size_t len = client_hello(groups, 3, "api.example.com", ch, sizeof ch);
    px_hello_t h, h2;
    size_t body, first;
    (void)state;

    assert_int_equal(px_tls_parse_client_hello(ch, len, &h), 0);
    assert_string_equal(h.sni, "api.example.com");
    assert_int_equal(h.group_count, 3);
    assert_int_equal(h.groups[0], X25519);
    assert_int_equal(h.groups[1], X25519MLKEM768);
    assert_int_equal(h.groups[2], SECP384R1MLKEM1024);
    assert_int_equal(h.key_share_count, 1);
    assert_int_equal(h.key_shares[0], X25519);
    assert_true(h.tls13);
    assert_true(h.sigalg_count > 0);

    /* Every strict prefix asks for more bytes. */
    for (size_t i = 0; i < len; i++)
        assert_int_equal(px_tls_parse_client_hello(ch, i, &h2), PX_EAGAIN);

    /* The same message split over two records parses the same. */
    body = len - 5;
    first = body / 3;
    memcpy(frag, ch, 5);
    frag[3] = (char)(first >> 8);
    frag[4] = (char)first;
    memcpy(frag + 5, ch + 5, first);
    memcpy(frag + 5 + first, ch, 5);
    frag[5 + first + 3] = (char)((body - first) >> 8);
    frag[5 + first + 4] = (char)(body - first);
    memcpy(frag + 10 + first, ch + 5 + first, body - first);
    assert_int_equal(px_tls_parse_client_hello(frag, len + 5, &h2), 0);
    assert_string_equal(h2.sni, h.sni);
    assert_int_equal(h2.group_count, h.group_count);
    assert_memory_equal(h2.groups, h.groups, sizeof h.groups);
    assert_int_equal(h2.key_shares[0], X25519);

    /* Not a handshake record, not a ClientHello, lengths that lie. */
    memcpy(frag, ch, len);
    frag[0] = 23;
    assert_int_equal(px_tls_parse_client_hello(frag, len, &h2), PX_EPARSE);
    memcpy(frag, ch, len);
    frag[5] = 2;
    assert_int_equal(px_tls_parse_client_hello(frag, len, &h2), PX_EPARSE);
    memcpy(frag, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
    assert_int_equal(px_tls_parse_client_hello(frag, 27, &h2), PX_EPARSE);
    memcpy(frag, ch, len);
    frag[5 + 4 + 2 + 32] = (char)0xff;    /* session id length beyond the message */
    assert_int_equal(px_tls_parse_client_hello(frag, len, &h2), PX_EPARSE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hybrid_negotiated),
        cmocka_unit_test(test_server_preference_hrr),
        cmocka_unit_test(test_other_hybrids),
        cmocka_unit_test(test_require_refuses_classical),
        cmocka_unit_test(test_prefer_serves_classical),
        cmocka_unit_test(test_sni_selects_mldsa_certificate),
        cmocka_unit_test(test_mtls),
        cmocka_unit_test(test_ticket_resumption_and_rotation),
        cmocka_unit_test(test_resumption_chain),
        cmocka_unit_test(test_parse_client_hello),
    };
    return cmocka_run_group_tests(tests, make_pki, remove_pki);
}
