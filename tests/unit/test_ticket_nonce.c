/* TLS 1.3 ticket nonces (wolfSSL patch 0001): RFC 8446 4.6.1 wants them
 * unique among the tickets of one connection. wolfSSL counted on from the
 * nonce of the ticket a connection resumed, so a client that kept resuming
 * failed every 256th handshake; the patch counts each connection's tickets
 * from 0 instead. So a resumed connection can still send 256 tickets, and
 * a 257th (its nonce would repeat) fails. test_tls's chain of 300
 * resumptions covers the clients that keep resuming. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "cert_fixture.h"
#include "net/tickets.h"

/* One direction of an in-memory connection. */
typedef struct {
    unsigned char data[512 * 1024];
    size_t len, off;
} pipe_t;

typedef struct {
    pipe_t c2s, s2c;
    WOLFSSL *client, *server;
} conn_t;

static fx_cert_t cert;
static WOLFSSL_CTX *sctx, *cctx;

static int pipe_recv(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
    pipe_t *p = arg;
    size_t n = p->len - p->off;
    (void)ssl;
    if (n == 0)
        return WOLFSSL_CBIO_ERR_WANT_READ;
    if (n > (size_t)sz)
        n = (size_t)sz;
    memcpy(buf, p->data + p->off, n);
    p->off += n;
    if (p->off == p->len)
        p->off = p->len = 0;
    return (int)n;
}

static int pipe_send(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
    pipe_t *p = arg;
    (void)ssl;
    if (p->len + (size_t)sz > sizeof p->data)
        return WOLFSSL_CBIO_ERR_WANT_WRITE;
    memcpy(p->data + p->len, buf, (size_t)sz);
    p->len += (size_t)sz;
    return sz;
}

static int setup(void **state)
{
    (void)state;
    if (fx_cert_make(&cert, "nonce") != 0 || wolfSSL_Init() != WOLFSSL_SUCCESS || px_tickets_configure(3600) != 0)
        return -1;
    sctx = wolfSSL_CTX_new(wolfTLSv1_3_server_method());
    cctx = wolfSSL_CTX_new(wolfTLSv1_3_client_method());
    if (!sctx || !cctx ||
        wolfSSL_CTX_use_certificate_file(sctx, cert.crt, WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS ||
        wolfSSL_CTX_use_PrivateKey_file(sctx, cert.key, WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS ||
        px_tickets_attach(sctx) != 0)
        return -1;
    wolfSSL_CTX_set_verify(cctx, WOLFSSL_VERIFY_NONE, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    wolfSSL_CTX_free(sctx);
    wolfSSL_CTX_free(cctx);
    fx_cert_remove(&cert);
    wolfSSL_Cleanup();
    return 0;
}

/* The client reads what the server sent (tickets), as far as there is any. */
static void client_drain(conn_t *c)
{
    char buf[64];
    int ret = wolfSSL_read(c->client, buf, sizeof buf);
    assert_true(ret <= 0);
    assert_int_equal(wolfSSL_get_error(c->client, ret), WOLFSSL_ERROR_WANT_READ);
}

/* A handshake (resuming session when not NULL), the client then holding
 * the ticket the server sent with it. */
static conn_t *connect_pair(WOLFSSL_SESSION *session)
{
    conn_t *c = calloc(1, sizeof *c);
    int cdone = 0, sdone = 0;

    assert_non_null(c);
    c->client = wolfSSL_new(cctx);
    c->server = wolfSSL_new(sctx);
    assert_non_null(c->client);
    assert_non_null(c->server);
    wolfSSL_SSLSetIORecv(c->client, pipe_recv);
    wolfSSL_SSLSetIOSend(c->client, pipe_send);
    wolfSSL_SetIOReadCtx(c->client, &c->s2c);
    wolfSSL_SetIOWriteCtx(c->client, &c->c2s);
    wolfSSL_SSLSetIORecv(c->server, pipe_recv);
    wolfSSL_SSLSetIOSend(c->server, pipe_send);
    wolfSSL_SetIOReadCtx(c->server, &c->c2s);
    wolfSSL_SetIOWriteCtx(c->server, &c->s2c);
    if (session)
        assert_int_equal(wolfSSL_set_session(c->client, session), WOLFSSL_SUCCESS);
    for (int i = 0; i < 20 && !(cdone && sdone); i++) {
        if (!cdone)
            cdone = wolfSSL_connect(c->client) == WOLFSSL_SUCCESS;
        if (!sdone)
            sdone = wolfSSL_accept(c->server) == WOLFSSL_SUCCESS;
    }
    assert_true(cdone && sdone);
    client_drain(c);
    assert_int_equal(wolfSSL_session_reused(c->client), session != NULL);
    return c;
}

static void conn_free(conn_t *c)
{
    wolfSSL_free(c->client);
    wolfSSL_free(c->server);
    free(c);
}

static void test_resumed_connection_counts_from_zero(void **state)
{
    WOLFSSL_SESSION *s1, *s2;
    conn_t *first, *resumed, *again;
    int ret;
    (void)state;

    first = connect_pair(NULL);
    s1 = wolfSSL_get1_session(first->client);
    assert_non_null(s1);
    resumed = connect_pair(s1);
    /* One ticket went with the handshake; 255 more make 256 on this
     * connection, nonces 0 to 255. Counting on from the resumed ticket's
     * nonce, the last of them failed. */
    for (int i = 1; i < 256; i++) {
        ret = wolfSSL_send_SessionTicket(resumed->server);
        if (ret != WOLFSSL_SUCCESS)
            fail_msg("ticket %d of a resumed connection: error %d", i + 1,
                     wolfSSL_get_error(resumed->server, ret));
        client_drain(resumed);
    }
    /* A 257th would repeat a nonce: refused, not wrapped. */
    assert_int_not_equal(wolfSSL_send_SessionTicket(resumed->server), WOLFSSL_SUCCESS);

    /* The newest ticket the client holds resumes. */
    s2 = wolfSSL_get1_session(resumed->client);
    assert_non_null(s2);
    again = connect_pair(s2);

    conn_free(again);
    conn_free(resumed);
    conn_free(first);
    wolfSSL_SESSION_free(s2);
    wolfSSL_SESSION_free(s1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resumed_connection_counts_from_zero),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
