/* wolfSSL contexts and the memory-buffer session adapter (see tls.h). */
#include "net/tls.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/asn.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include "net/certinfo.h"
#include "core/errors.h"
#include "core/log.h"
#include "net/ocsp_staple.h"
#include "net/tickets.h"
#include "net/tls_ciphers.h"
#include "net/tls_mtls.h"

#define TLS_IN_MAX (64 * 1024 + 512)   /* unprocessed ciphertext kept at most */
#define HELLO_MAX (64 * 1024)          /* a ClientHello larger than this is refused */

/* TLS alert descriptions we send ourselves (RFC 8446 6.2). */
#define ALERT_UNEXPECTED_MESSAGE 10
#define ALERT_RECORD_OVERFLOW 22
#define ALERT_HANDSHAKE_FAILURE 40
#define ALERT_ILLEGAL_PARAMETER 47
#define ALERT_DECODE_ERROR 50
#define ALERT_INSUFFICIENT_SECURITY 71

/* Signature schemes (RFC 8446 4.2.3, draft-ietf-tls-mldsa) */
#define SIG_ECDSA_P256 0x0403
#define SIG_ECDSA_P384 0x0503
#define SIG_ECDSA_P521 0x0603
#define SIG_RSA_PSS_256 0x0804
#define SIG_ED25519 0x0807
#define SIG_MLDSA44 0x0904
#define SIG_MLDSA65 0x0905
#define SIG_MLDSA87 0x0906

typedef struct {
    WOLFSSL_CTX *ctx;
    uint16_t sigalg;             /* the scheme a client must offer for this certificate */
    const char *key_name;        /* "ECDSA-P256", "ML-DSA-65", ... */
    char *sni[PX_MAX_SNI_PER_CERT];
    int sni_count;
    char *file;                  /* the chain file, for metrics */
    int64_t not_after;           /* the leaf's */
    px_ocsp_staple_t *staple;    /* NULL: nothing stapled */
    int ocsp_configured;         /* has an ocsp_response (which may have failed at reload) */
} tls_cert_t;

struct px_tls_ctx {
    atomic_int refs;
    int is_server;
    px_pq_policy_t policy;
    int allow_tls12;
    uint16_t groups[PX_MAX_GROUPS];  /* server: usable groups, preference order */
    int group_count;
    tls_cert_t certs[PX_MAX_CERTS];
    int cert_count;
    char *alpn;                      /* comma-separated, wolfSSL_UseALPN format */
    WOLFSSL_CTX *client;             /* client side */
    uint16_t client_groups[PX_MAX_GROUPS];
    int client_group_count;
    int verify_peer;
    int thread_rng;                  /* server: sessions draw from their thread's DRBG */
    uint16_t sigalgs[PX_MAX_SIGALGS];  /* server: tls.signature_algorithms */
    int sigalg_count;
};

struct px_tls {
    px_tls_ctx_t *ctx;
    WOLFSSL *ssl;
    px_buf_t in, out;
    int in_eof;
    int done;
    int hrr;
    uint16_t group;                  /* pinned (server) or offered first (client) */
    const tls_cert_t *cert;
    char sni[256];
    char peer[256];                  /* verified client certificate subject (mTLS) */
    char *xfcc, *cc_json;            /* its identity (tls_mtls.h), NULL when none */
    px_tls_info_t info;              /* what was negotiated, recorded when the handshake ends */
    char err[160];
    px_tls_fail_t fail;              /* why the handshake was refused */
    int broken;                      /* a read failed: the session is over */
#ifdef PX_CHECK_THREADS
    pthread_t owner;                 /* the thread that made ssl */
#endif
};

/* A server context's sessions draw from their thread's DRBG (wolfSSL patch
 * 0008), which has no lock. That is safe because of an invariant pqproxy
 * keeps: a connection, so its session, is accepted, driven and freed by one
 * worker thread's event loop, and never handed to another thread. Debug
 * builds (PX_CHECK_THREADS) record the thread that made the session and
 * abort when another thread drives it (handshake, read, write, shutdown);
 * freeing is not checked, as wolfSSL_free draws nothing from the DRBG. */
#ifdef PX_CHECK_THREADS
static void check_thread(const px_tls_t *t)
{
    if (t->ssl && t->ctx->thread_rng && !pthread_equal(t->owner, pthread_self())) {
        fprintf(stderr, "pqproxy: a TLS session drawing from its thread's DRBG "
                        "was used on another thread\n");
        abort();
    }
}
#else
#define check_thread(t) ((void)0)
#endif

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc;

static void do_init(void)
{
    init_rc = wolfSSL_Init() == WOLFSSL_SUCCESS ? 0 : PX_ETLS;
}

int px_tls_global_init(void)
{
    pthread_once(&init_once, do_init);
    return init_rc;
}

/* --- I/O callbacks: wolfSSL <-> the session's memory buffers ---------------- */

static int io_recv(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
    px_tls_t *t = arg;
    size_t n = px_buf_size(&t->in);
    (void)ssl;
    if (n == 0)
        return t->in_eof ? WOLFSSL_CBIO_ERR_CONN_CLOSE : WOLFSSL_CBIO_ERR_WANT_READ;
    if (n > (size_t)sz)
        n = (size_t)sz;
    memcpy(buf, px_buf_ptr(&t->in), n);
    px_buf_consume(&t->in, n);
    return (int)n;
}

static int io_send(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
    px_tls_t *t = arg;
    (void)ssl;
    /* Never WANT_WRITE: the owner bounds output by writing plaintext only
     * once earlier output has gone to the socket. */
    if (px_buf_append(&t->out, buf, (size_t)sz) != 0)
        return WOLFSSL_CBIO_ERR_GENERAL;
    return sz;
}

/* --- contexts ------------------------------------------------------------------ */

static int read_file(const char *path, unsigned char **out, long *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    long n;
    if (!f)
        return PX_EIO;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || n > 16 * 1024 * 1024 ||
        fseek(f, 0, SEEK_SET) != 0)
        goto fail;
    buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
        goto fail;
    buf[n] = 0;
    fclose(f);
    *out = buf;
    *len = n;
    return 0;
fail:
    free(buf);
    fclose(f);
    return PX_EIO;
}

/* Reads the leaf's public key type to know which signature scheme a client
 * must offer for it. */
static int cert_key_type(const char *file, uint16_t *sigalg, const char **name)
{
    unsigned char *pem = NULL, *der = NULL;
    long pem_len = 0;
    int der_len, rc = PX_EPARSE;
    DecodedCert dc;
    int dc_init = 0;

    if (read_file(file, &pem, &pem_len) != 0)
        return PX_EIO;
    der = malloc((size_t)pem_len + 1);
    if (!der)
        goto fail;
    der_len = wc_CertPemToDer(pem, (int)pem_len, der, (int)pem_len, CERT_TYPE);
    if (der_len <= 0) {        /* maybe DER already */
        memcpy(der, pem, (size_t)pem_len);
        der_len = (int)pem_len;
    }
    wc_InitDecodedCert(&dc, der, (word32)der_len, NULL);
    dc_init = 1;
    if (wc_ParseCert(&dc, CERT_TYPE, NO_VERIFY, NULL) != 0)
        goto fail;
    switch (dc.keyOID) {
    case ECDSAk:
        if (dc.pkCurveOID == ECC_SECP384R1_OID) {
            *sigalg = SIG_ECDSA_P384; *name = "ECDSA-P384";
        } else if (dc.pkCurveOID == ECC_SECP521R1_OID) {
            *sigalg = SIG_ECDSA_P521; *name = "ECDSA-P521";
        } else {
            *sigalg = SIG_ECDSA_P256; *name = "ECDSA-P256";
        }
        break;
    case RSAk:     *sigalg = SIG_RSA_PSS_256; *name = "RSA"; break;
    case ED25519k: *sigalg = SIG_ED25519; *name = "Ed25519"; break;
    case ML_DSA_LEVEL2k: *sigalg = SIG_MLDSA44; *name = "ML-DSA-44"; break;
    case ML_DSA_LEVEL3k: *sigalg = SIG_MLDSA65; *name = "ML-DSA-65"; break;
    case ML_DSA_LEVEL5k: *sigalg = SIG_MLDSA87; *name = "ML-DSA-87"; break;
    default: goto fail;
    }
    rc = 0;
fail:
    if (dc_init)
        wc_FreeDecodedCert(&dc);
    free(der);
    free(pem);
    return rc;
}

/* Why a certificate (want_key 0) or private key (want_key 1) file did not
 * load, in words: wolfSSL's own reason for a file that is not PEM at all is
 * "unknown error number". rc is wolfSSL's return code. */
static void why_not_loaded(const char *file, int want_key, int rc, char *out, size_t len)
{
    const char *what = want_key ? "private key" : "certificate";
    unsigned char *data = NULL;
    long n = 0, i = 0;
    const char *begin, *label;
    int label_len = 0;

    if (read_file(file, &data, &n) != 0) {
        snprintf(out, len, "cannot read the file");
        return;
    }
    while (i < n && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n'))
        i++;
    begin = memchr(data, '\0', (size_t)n) ? NULL : strstr((const char *)data, "-----BEGIN ");
    if (i == n) {
        snprintf(out, len, "the file is empty");
    } else if (!begin) {
        /* DER is an ASN.1 SEQUENCE: 0x30 */
        if (data[i] == 0x30)
            snprintf(out, len, "DER given where PEM is expected (convert it: openssl %s -in %s "
                     "-out FILE.pem)", want_key ? "pkey -inform DER" : "x509 -inform DER", file);
        else
            snprintf(out, len, "not a PEM %s: no \"-----BEGIN %s-----\" line", what,
                     want_key ? "PRIVATE KEY" : "CERTIFICATE");
    } else {
        label = begin + 11;
        while (label[label_len] && label[label_len] != '-' && label[label_len] != '\n' &&
               label_len < 40)
            label_len++;
        if (want_key ? !strstr((const char *)data, "PRIVATE KEY-----")
                     : !strstr((const char *)data, "-----BEGIN CERTIFICATE-----"))
            snprintf(out, len, "PEM but not a %s (it holds \"%.*s\")", what, label_len, label);
        else if (want_key && strstr((const char *)data, "-----BEGIN ENCRYPTED PRIVATE KEY-----"))
            snprintf(out, len, "encrypted private keys are not supported");
        else
            snprintf(out, len, "malformed %s PEM%s%s%s", what, rc < 0 ? " (" : "",
                     rc < 0 ? wolfSSL_ERR_reason_error_string((unsigned long)rc) : "",
                     rc < 0 ? ")" : "");
    }
    free(data);
}

static px_tls_ctx_t *ctx_alloc(int is_server)
{
    px_tls_ctx_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    atomic_init(&c->refs, 1);
    c->is_server = is_server;
    return c;
}

static WOLFSSL_CTX *new_wolf_ctx(int server, int tls12)
{
    WOLFSSL_CTX *ctx;
    if (tls12)
        ctx = wolfSSL_CTX_new(server ? wolfSSLv23_server_method() : wolfSSLv23_client_method());
    else
        ctx = wolfSSL_CTX_new(server ? wolfTLSv1_3_server_method() : wolfTLSv1_3_client_method());
    if (!ctx)
        return NULL;
    if (tls12 && wolfSSL_CTX_SetMinVersion(ctx, WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS) {
        wolfSSL_CTX_free(ctx);
        return NULL;
    }
    wolfSSL_CTX_SetIORecv(ctx, io_recv);
    wolfSSL_CTX_SetIOSend(ctx, io_send);
    return ctx;
}

static void ctx_destroy(px_tls_ctx_t *c)
{
    for (int i = 0; i < c->cert_count; i++) {
        wolfSSL_CTX_free(c->certs[i].ctx);
        px_ocsp_staple_free(c->certs[i].staple);
        free(c->certs[i].file);
        for (int j = 0; j < c->certs[i].sni_count; j++)
            free(c->certs[i].sni[j]);
    }
    wolfSSL_CTX_free(c->client);
    free(c->alpn);
    free(c);
}

int px_tls_ctx_thread_rng(const px_tls_ctx_t *ctx)
{
    return ctx->thread_rng;
}

px_tls_ctx_t *px_tls_ctx_ref(px_tls_ctx_t *ctx)
{
    atomic_fetch_add(&ctx->refs, 1);
    return ctx;
}

void px_tls_ctx_unref(px_tls_ctx_t *ctx)
{
    if (ctx && atomic_fetch_sub(&ctx->refs, 1) == 1)
        ctx_destroy(ctx);
}

/* What is known about a served certificate besides its key: its expiry
 * (warned about here) and the OCSP response to staple. */
static int cert_status_load(tls_cert_t *tc, const px_cert_config_t *cc, int i, uint32_t warn_days,
                            int flags, char *err, size_t errlen)
{
    char where[64], why[384];
    time_t now = time(NULL);

    if (!(tc->file = strdup(cc->cert_file))) {
        snprintf(err, errlen, "tls: out of memory");
        return PX_ENOMEM;
    }
    snprintf(where, sizeof where, "tls.certificates[%d].cert", i);
    px_cert_expiry_check(where, cc->cert_file, warn_days, now, &tc->not_after);
    if (!cc->ocsp_file)
        return 0;
    tc->ocsp_configured = 1;
    snprintf(where, sizeof where, "tls.certificates[%d].ocsp_response", i);
    if (px_ocsp_staple_load(where, cc->ocsp_file, cc->cert_file, cc->ocsp_issuer_file, now,
                            &tc->staple, why, sizeof why) != 0 && (flags & PX_TLS_RELOAD)) {
        /* the rest of the new configuration still applies; an old response
         * is not kept for a certificate the new file no longer vouches for */
        px_warn("reload: %s: %s; nothing is stapled for %s until the file is fixed and the "
                "configuration reloaded", where, why, cc->cert_file);
        return 0;
    }
    if (!tc->staple || px_ocsp_staple_attach(tc->staple, tc->ctx) != 0) {
        snprintf(err, errlen, "%s: %s", where, tc->staple ? "cannot enable OCSP stapling" : why);
        return PX_ECONFIG;
    }
    return 0;
}

/* tls.ciphers in wolfSSL's syntax and tls.signature_algorithms; a config
 * that is not from the loader (0 entries) gets the loader's defaults. */
static int server_policy(px_tls_ctx_t *c, const px_tls_config_t *cfg, char *list, size_t len,
                         char *err, size_t errlen)
{
    uint16_t ids[PX_MAX_CIPHERS];
    int n = cfg->cipher_count;

    if (n)
        memcpy(ids, cfg->ciphers, (size_t)n * sizeof ids[0]);
    else
        n = px_cipher_defaults(c->allow_tls12, ids, PX_MAX_CIPHERS);
    if (px_cipher_wolf_list(ids, n, list, len) != 0) {
        snprintf(err, errlen, "tls.ciphers: cannot be set");
        return -1;
    }
    c->sigalg_count = cfg->sigalg_count;
    if (c->sigalg_count)
        memcpy(c->sigalgs, cfg->sigalgs, (size_t)c->sigalg_count * sizeof c->sigalgs[0]);
    else
        c->sigalg_count = px_sigalg_defaults(c->sigalgs, PX_MAX_SIGALGS);
    return 0;
}

/* A certificate's key must sign with an allowed scheme in TLS 1.3; its
 * context offers exactly tls.ciphers, in that order of preference (wolfSSL
 * picks by the server's order unless told to use the client's). */
static int cert_policy(const px_tls_ctx_t *c, const tls_cert_t *tc, const char *cipher_list,
                       int i, char *err, size_t errlen)
{
    if (!px_sigalg_key_allowed(c->sigalgs, c->sigalg_count, tc->sigalg, 1)) {
        snprintf(err, errlen, "tls.certificates[%d].cert: its %s key signs with %s%s, which "
                 "tls.signature_algorithms does not allow", i, tc->key_name,
                 px_sigalg_name(tc->sigalg) ? px_sigalg_name(tc->sigalg) : "?",
                 tc->sigalg == PX_SIG_RSA_PSS_RSAE_256 ? " (or another rsa_pss_rsae_*)" : "");
        return -1;
    }
    if (wolfSSL_CTX_set_cipher_list(tc->ctx, cipher_list) != WOLFSSL_SUCCESS) {
        snprintf(err, errlen, "tls.ciphers: wolfSSL refused \"%s\"", cipher_list);
        return -1;
    }
    return 0;
}

int px_tls_ctx_cert_status(const px_tls_ctx_t *c, px_tls_cert_status_t *out, int max)
{
    int n = 0;
    for (int i = 0; i < c->cert_count && n < max; i++, n++) {
        const char *slash = strrchr(c->certs[i].file ? c->certs[i].file : "", '/');
        out[n].file = slash ? slash + 1 : c->certs[i].file ? c->certs[i].file : "";
        out[n].key = c->certs[i].key_name ? c->certs[i].key_name : "unknown";
        out[n].not_after = c->certs[i].not_after;
        out[n].ocsp_next_update = px_ocsp_staple_next_update(c->certs[i].staple);
        out[n].has_ocsp = c->certs[i].ocsp_configured;
    }
    return n;
}

px_tls_ctx_t *px_tls_ctx_server_new(const px_tls_config_t *cfg, char *err, size_t errlen)
{
    return px_tls_ctx_server_new_ex(cfg, 0, err, errlen);
}

px_tls_ctx_t *px_tls_ctx_server_new_ex(const px_tls_config_t *cfg, int flags, char *err,
                                       size_t errlen)
{
    px_tls_ctx_t *c = NULL;
    size_t alpn_len = 0;
    char cipher_list[1024];

    if (px_tls_global_init() != 0) {
        snprintf(err, errlen, "tls: wolfSSL initialisation failed");
        return NULL;
    }
    c = ctx_alloc(1);
    if (!c)
        goto nomem;
    c->policy = cfg->pq_policy;
    c->allow_tls12 = cfg->min_version == 12;
    for (int i = 0; i < cfg->group_count; i++) {
        uint16_t g = cfg->groups[i];
        /* Under "require" classical groups are never offered by the server. */
        if (c->policy == PX_PQ_REQUIRE && !px_group_is_hybrid(g))
            continue;
        c->groups[c->group_count++] = g;
    }
    if (c->group_count == 0) {
        snprintf(err, errlen, "tls.groups: no usable group (pq_policy \"require\" needs a hybrid group)");
        goto fail;
    }
    for (int i = 0; i < cfg->alpn_count; i++)
        alpn_len += strlen(cfg->alpn[i]) + 1;
    if (alpn_len) {
        c->alpn = calloc(1, alpn_len);
        if (!c->alpn)
            goto nomem;
        for (int i = 0; i < cfg->alpn_count; i++) {
            if (i)
                strcat(c->alpn, ",");
            strcat(c->alpn, cfg->alpn[i]);
        }
    }
    if (server_policy(c, cfg, cipher_list, sizeof cipher_list, err, errlen) != 0)
        goto fail;
    c->thread_rng = 1;     /* unless the library lacks it (see below) */
    /* once, not per certificate: a "file" source reads its file here */
    if (cfg->session_tickets && px_tickets_setup(cfg, err, errlen) != 0)
        goto fail;
    for (int i = 0; i < cfg->cert_count; i++) {
        const px_cert_config_t *cc = &cfg->certs[i];
        tls_cert_t *tc = &c->certs[c->cert_count];
        int rc;

        tc->ctx = new_wolf_ctx(1, c->allow_tls12);
        if (!tc->ctx)
            goto nomem;
        c->cert_count++;
        /* A session lives and dies on the worker thread that accepted it
         * (the invariant at check_thread), so it can draw from that thread's
         * DRBG instead of seeding its own (wolfSSL patch 0008: a getrandom()
         * and ~21k instructions less per connection). A wolfSSL built
         * without the patch (PQPROXY_WOLFSSL_PATCHES=minimal) seeds one per
         * session. */
#ifdef WOLFSSL_HAVE_CTX_USE_THREAD_RNG
        if (wolfSSL_CTX_UseThreadRng(tc->ctx, 1) != WOLFSSL_SUCCESS)
            c->thread_rng = 0;
#else
        c->thread_rng = 0;
#endif
        rc = wolfSSL_CTX_use_certificate_chain_file(tc->ctx, cc->cert_file);
        if (rc != WOLFSSL_SUCCESS) {
            char why[256];
            why_not_loaded(cc->cert_file, 0, rc, why, sizeof why);
            snprintf(err, errlen, "tls.certificates[%d].cert: cannot load %s: %s", i, cc->cert_file,
                     why);
            goto fail;
        }
        rc = wolfSSL_CTX_use_PrivateKey_file(tc->ctx, cc->key_file, WOLFSSL_FILETYPE_PEM);
        if (rc != WOLFSSL_SUCCESS)
            rc = wolfSSL_CTX_use_PrivateKey_file(tc->ctx, cc->key_file, WOLFSSL_FILETYPE_ASN1);
        if (rc != WOLFSSL_SUCCESS) {
            char why[256];
            why_not_loaded(cc->key_file, 1, rc, why, sizeof why);
            snprintf(err, errlen, "tls.certificates[%d].key: cannot load %s: %s", i, cc->key_file,
                     why);
            goto fail;
        }
        if (wolfSSL_CTX_check_private_key(tc->ctx) != WOLFSSL_SUCCESS) {
            snprintf(err, errlen, "tls.certificates[%d].key: %s does not match the certificate %s",
                     i, cc->key_file, cc->cert_file);
            goto fail;
        }
        if (cert_key_type(cc->cert_file, &tc->sigalg, &tc->key_name) != 0) {
            snprintf(err, errlen, "tls.certificates[%d].cert: unsupported public key type in %s", i,
                     cc->cert_file);
            goto fail;
        }
        if (cert_policy(c, tc, cipher_list, i, err, errlen) != 0 ||
            cert_status_load(tc, cc, i, cfg->cert_expiry_warning_days, flags, err, errlen) != 0)
            goto fail;
        for (int j = 0; j < cc->sni_count; j++) {
            tc->sni[j] = strdup(cc->sni[j]);
            if (!tc->sni[j])
                goto nomem;
            tc->sni_count++;
        }
        if (!cfg->session_tickets) {
            wolfSSL_CTX_NoTicketTLSv12(tc->ctx);
            wolfSSL_CTX_no_ticket_TLSv13(tc->ctx);
        } else if (px_tickets_attach(tc->ctx) != 0) {
            snprintf(err, errlen, "tls.session_tickets: cannot set up ticket keys");
            goto fail;
        }
        if (cfg->client_ca_file) {
            if ((rc = wolfSSL_CTX_load_verify_locations(tc->ctx, cfg->client_ca_file, NULL)) !=
                WOLFSSL_SUCCESS) {
                char why[256];
                why_not_loaded(cfg->client_ca_file, 0, rc, why, sizeof why);
                snprintf(err, errlen, "tls.client_ca: cannot load %s: %s", cfg->client_ca_file, why);
                goto fail;
            }
            if (px_tls_mtls_setup(tc->ctx, cfg, err, errlen) != 0)
                goto fail;
        }
    }
    if (c->cert_count == 0) {
        snprintf(err, errlen, "tls.certificates: at least one certificate is required");
        goto fail;
    }
    if (cfg->client_ca_file)
        px_cert_expiry_check("tls.client_ca", cfg->client_ca_file, cfg->cert_expiry_warning_days,
                             time(NULL), NULL);
    return c;
nomem:
    snprintf(err, errlen, "tls: out of memory");
fail:
    if (c)
        ctx_destroy(c);
    return NULL;
}

px_tls_ctx_t *px_tls_ctx_client_new(const px_tls_client_opts_t *o, char *err, size_t errlen)
{
    px_tls_ctx_t *c;

    if (px_tls_global_init() != 0) {
        snprintf(err, errlen, "tls: wolfSSL initialisation failed");
        return NULL;
    }
    c = ctx_alloc(0);
    if (!c || !(c->client = new_wolf_ctx(0, o->tls12))) {
        snprintf(err, errlen, "tls: out of memory");
        goto fail;
    }
    for (int i = 0; i < o->group_count && i < PX_MAX_GROUPS; i++)
        c->client_groups[c->client_group_count++] = o->groups[i];
    if (o->alpn && !(c->alpn = strdup(o->alpn))) {
        snprintf(err, errlen, "tls: out of memory");
        goto fail;
    }
    if (o->ca_file) {
        int rc = wolfSSL_CTX_load_verify_locations(c->client, o->ca_file, NULL);
        if (rc != WOLFSSL_SUCCESS) {
            char why[256];
            why_not_loaded(o->ca_file, 0, rc, why, sizeof why);
            snprintf(err, errlen, "cannot load CA file %s: %s", o->ca_file, why);
            goto fail;
        }
        wolfSSL_CTX_set_verify(c->client, WOLFSSL_VERIFY_PEER, NULL);
        c->verify_peer = 1;
    } else {
        wolfSSL_CTX_set_verify(c->client, WOLFSSL_VERIFY_NONE, NULL);
    }
    if (o->cert_file) {
        if (wolfSSL_CTX_use_certificate_chain_file(c->client, o->cert_file) != WOLFSSL_SUCCESS ||
            wolfSSL_CTX_use_PrivateKey_file(c->client, o->key_file, WOLFSSL_FILETYPE_PEM) !=
                WOLFSSL_SUCCESS) {
            snprintf(err, errlen, "cannot load client certificate %s / key %s", o->cert_file,
                     o->key_file ? o->key_file : "(none)");
            goto fail;
        }
        /* else the mismatch only shows as a handshake the server refuses */
        if (wolfSSL_CTX_check_private_key(c->client) != WOLFSSL_SUCCESS) {
            snprintf(err, errlen, "client key %s does not match the certificate %s", o->key_file,
                     o->cert_file);
            goto fail;
        }
    }
    return c;
fail:
    if (c)
        ctx_destroy(c);
    return NULL;
}

/* --- ClientHello parsing ----------------------------------------------------- */

typedef struct {
    const unsigned char *p;
    size_t len, pos;
} rd_t;

static int rd_u8(rd_t *r, unsigned *v)
{
    if (r->pos + 1 > r->len) return -1;
    *v = r->p[r->pos++];
    return 0;
}

static int rd_u16(rd_t *r, unsigned *v)
{
    if (r->pos + 2 > r->len) return -1;
    *v = (unsigned)r->p[r->pos] << 8 | r->p[r->pos + 1];
    r->pos += 2;
    return 0;
}

static int rd_skip(rd_t *r, size_t n)
{
    if (r->pos + n > r->len) return -1;
    r->pos += n;
    return 0;
}

/* A sub-reader over the next n bytes. */
static int rd_sub(rd_t *r, size_t n, rd_t *sub)
{
    if (r->pos + n > r->len) return -1;
    sub->p = r->p + r->pos;
    sub->len = n;
    sub->pos = 0;
    r->pos += n;
    return 0;
}

static int offers(const uint16_t *list, int n, uint16_t v)
{
    for (int i = 0; i < n; i++)
        if (list[i] == v)
            return 1;
    return 0;
}

static int parse_u16_list(rd_t *ext, uint16_t *out, int max, int *count)
{
    unsigned n, v;
    rd_t l;
    if (rd_u16(ext, &n) || (n & 1) || rd_sub(ext, n, &l))
        return -1;
    while (l.pos < l.len) {
        if (rd_u16(&l, &v)) return -1;
        if (*count < max) out[(*count)++] = (uint16_t)v;
    }
    return 0;
}

static int parse_extension(unsigned type, rd_t *e, px_hello_t *h)
{
    unsigned n, v;
    rd_t l;

    switch (type) {
    case 0: /* server_name */
        if (rd_u16(e, &n) || rd_sub(e, n, &l)) return -1;
        while (l.pos < l.len) {
            unsigned kind, nl;
            if (rd_u8(&l, &kind) || rd_u16(&l, &nl) || l.pos + nl > l.len) return -1;
            if (kind == 0 && nl < sizeof h->sni && !h->sni[0]) {
                for (unsigned i = 0; i < nl; i++) {
                    char ch = (char)l.p[l.pos + i];
                    if (ch <= 0x20 || ch >= 0x7f) return -1;
                    h->sni[i] = (char)((ch >= 'A' && ch <= 'Z') ? ch + 32 : ch);
                }
                h->sni[nl] = 0;
            }
            l.pos += nl;
        }
        return 0;
    case 10: /* supported_groups */
        return parse_u16_list(e, h->groups, PX_HELLO_MAX_GROUPS, &h->group_count);
    case 13: /* signature_algorithms */
        return parse_u16_list(e, h->sigalgs, PX_HELLO_MAX_SIGALGS, &h->sigalg_count);
    case 43: /* supported_versions */
        if (rd_u8(e, &n) || rd_sub(e, n, &l)) return -1;
        while (l.pos + 1 < l.len) {
            rd_u16(&l, &v);
            if (v == 0x0304) h->tls13 = 1;
        }
        return 0;
    case 51: /* key_share: each share is checked here, while its bytes are at hand */
        if (rd_u16(e, &n) || rd_sub(e, n, &l)) return -1;
        while (l.pos < l.len) {
            unsigned g, kl;
            const unsigned char *ke;
            if (rd_u16(&l, &g) || rd_u16(&l, &kl)) return -1;
            ke = l.p + l.pos;
            if (rd_skip(&l, kl)) return -1;
            if (offers(h->key_shares, h->key_share_count, (uint16_t)g))
                h->dup_share = 1;
            if (h->key_share_count < PX_HELLO_MAX_GROUPS) {
                h->key_share_fault[h->key_share_count] = px_group_check_share((uint16_t)g, ke, kl);
                h->key_shares[h->key_share_count++] = (uint16_t)g;
            }
        }
        return 0;
    default:
        return 0;
    }
}

int px_tls_parse_client_hello(const char *data, size_t len, px_hello_t *h)
{
    /* Reassemble the handshake message from consecutive records. */
    unsigned char msg[HELLO_MAX];
    size_t have = 0, need = 0, pos = 0;
    const unsigned char *p = (const unsigned char *)data;
    rd_t r, exts;
    unsigned v;

    memset(h, 0, sizeof *h);
    h->alert = ALERT_DECODE_ERROR;          /* unless a more precise one is set below */
    for (;;) {
        size_t rlen;
        if (len - pos < 5)
            return PX_EAGAIN;
        if (p[pos] != 22) {
            h->alert = ALERT_UNEXPECTED_MESSAGE;
            h->fault = p[pos] == 21 ? "an alert record before the ClientHello"
                     : p[pos] >= 20 && p[pos] <= 23 ? "a non-handshake record before the ClientHello"
                     : "not TLS (plain HTTP to the TLS port?)";
            return PX_EPARSE;
        }
        if (p[pos + 1] != 3) {
            h->fault = "not a TLS record version";
            return PX_EPARSE;
        }
        rlen = (size_t)p[pos + 3] << 8 | p[pos + 4];
        if (rlen == 0) {        /* RFC 8446 5.1: no zero-length handshake fragments */
            h->alert = ALERT_UNEXPECTED_MESSAGE;
            h->fault = "a zero-length handshake record";
            return PX_EPARSE;
        }
        if (rlen > 16384) {     /* RFC 8446 5.1: a plaintext record holds at most 2^14 bytes */
            h->alert = ALERT_RECORD_OVERFLOW;
            h->fault = "a record over 2^14 bytes";
            return PX_EPARSE;
        }
        if (len - pos - 5 < rlen)
            return PX_EAGAIN;
        if (have + rlen > sizeof msg) {
            h->fault = "a ClientHello over 64 KiB";
            return PX_EPARSE;
        }
        memcpy(msg + have, p + pos + 5, rlen);
        have += rlen;
        pos += 5 + rlen;
        if (have >= 4) {
            if (msg[0] != 1) {                     /* client_hello */
                h->alert = ALERT_UNEXPECTED_MESSAGE;
                h->fault = "a handshake message other than ClientHello";
                return PX_EPARSE;
            }
            need = 4 + ((size_t)msg[1] << 16 | (size_t)msg[2] << 8 | msg[3]);
            if (need > sizeof msg) {
                h->fault = "a ClientHello over 64 KiB";
                return PX_EPARSE;
            }
            if (have >= need)
                break;
        }
    }
    h->fault = "a malformed ClientHello";
    r.p = msg + 4;
    r.len = need - 4;
    r.pos = 0;
    if (rd_u16(&r, &v) || rd_skip(&r, 32)                 /* legacy_version, random */
        || rd_u8(&r, &v) || rd_skip(&r, v)                /* legacy_session_id */
        || rd_u16(&r, &v) || rd_skip(&r, v)               /* cipher_suites */
        || rd_u8(&r, &v) || rd_skip(&r, v))               /* legacy_compression_methods */
        return PX_EPARSE;
    if (r.pos == r.len) {
        h->fault = NULL;
        return 0;                                         /* no extensions at all */
    }
    if (rd_u16(&r, &v) || rd_sub(&r, v, &exts))
        return PX_EPARSE;
    while (exts.pos < exts.len) {
        unsigned type, elen;
        rd_t e;
        if (rd_u16(&exts, &type) || rd_u16(&exts, &elen) || rd_sub(&exts, elen, &e))
            return PX_EPARSE;
        if (parse_extension(type, &e, h) != 0)
            return PX_EPARSE;
    }
    h->fault = NULL;
    return 0;
}

/* --- sessions ----------------------------------------------------------------- */

static int sni_match(const char *pattern, const char *name)
{
    if (pattern[0] == '*' && pattern[1] == '.') {
        const char *dot = strchr(name, '.');
        return dot && dot != name && !strcasecmp(dot + 1, pattern + 2);
    }
    return !strcasecmp(pattern, name);
}


/* Certificates whose names match the SNI (or, when none does, those
 * without names, else the first); among them the first whose signature
 * scheme the client offers. */
static int sigalg_allowed(const px_tls_ctx_t *c, uint16_t s)
{
    return offers(c->sigalgs, c->sigalg_count, s);
}

/* Position of the first scheme in the client's signature_algorithms that
 * tls.signature_algorithms allows and the certificate's key signs with
 * (lower: more preferred), or -1 when there is none. */
static int sigalg_rank(const px_tls_ctx_t *c, const px_hello_t *h, uint16_t key)
{
    for (int i = 0; i < h->sigalg_count; i++)
        if (sigalg_allowed(c, h->sigalgs[i]) && px_sigalg_fits_key(key, h->sigalgs[i], h->tls13))
            return i;
    return -1;
}

static int offers_allowed_sigalg(const px_tls_ctx_t *c, const px_hello_t *h)
{
    for (int i = 0; i < h->sigalg_count; i++)
        if (sigalg_allowed(c, h->sigalgs[i]))
            return 1;
    return 0;
}

/* The certificate (docs/config.md, "Certificate choice"): among those whose
 * sni names match (else those without sni, else the first), the one whose
 * signature scheme comes first in the client's signature_algorithms; equal
 * schemes go by configuration order. NULL: the client can verify none. */
static const tls_cert_t *pick_cert(const px_tls_ctx_t *c, const px_hello_t *h)
{
    const tls_cert_t *cand[PX_MAX_CERTS], *best = NULL;
    int n = 0, best_rank = -1;

    if (h->sni[0])
        for (int i = 0; i < c->cert_count; i++)
            for (int j = 0; j < c->certs[i].sni_count; j++)
                if (sni_match(c->certs[i].sni[j], h->sni)) {
                    cand[n++] = &c->certs[i];
                    break;
                }
    if (n == 0)
        for (int i = 0; i < c->cert_count; i++)
            if (c->certs[i].sni_count == 0)
                cand[n++] = &c->certs[i];
    if (n == 0)
        cand[n++] = &c->certs[0];
    if (h->sigalg_count == 0)
        return cand[0];         /* TLS 1.2 without the extension: wolfSSL decides */
    for (int i = 0; i < n; i++) {
        int r = sigalg_rank(c, h, cand[i]->sigalg);
        if (r >= 0 && (best_rank < 0 || r < best_rank)) {
            best = cand[i];
            best_rank = r;
        }
    }
    /* TLS 1.2 ECDSA schemes name no curve: let wolfSSL judge the first */
    return best || h->tls13 || !offers_allowed_sigalg(c, h) ? best : cand[0];
}

px_tls_t *px_tls_new(px_tls_ctx_t *ctx, const char *server_name)
{
    px_tls_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->ctx = px_tls_ctx_ref(ctx);
    px_buf_init(&t->in, TLS_IN_MAX);
    px_buf_init(&t->out, 0);
    if (server_name)
        snprintf(t->sni, sizeof t->sni, "%s", server_name);
    return t;
}

void px_tls_free(px_tls_t *t)
{
    if (!t)
        return;
    wolfSSL_free(t->ssl);
    free(t->xfcc);
    free(t->cc_json);
    px_buf_free(&t->in);
    px_buf_free(&t->out);
    px_tls_ctx_unref(t->ctx);
    free(t);
}

char *px_tls_in_reserve(px_tls_t *t, size_t n)
{
    return px_buf_reserve(&t->in, n);
}

void px_tls_in_commit(px_tls_t *t, size_t n)
{
    px_buf_commit(&t->in, n);
}

void px_tls_in_eof(px_tls_t *t)
{
    t->in_eof = 1;
}

size_t px_tls_in_pending(const px_tls_t *t)
{
    return px_buf_size(&t->in);
}

void px_tls_compact(px_tls_t *t)
{
    if (px_buf_size(&t->in) == 0)
        px_buf_free(&t->in);
    if (px_buf_size(&t->out) == 0)
        px_buf_free(&t->out);
}

void px_tls_in_discard(px_tls_t *t)
{
    px_buf_reset(&t->in);
}

px_buf_t *px_tls_out(px_tls_t *t)
{
    return &t->out;
}

static void send_plain_alert(px_tls_t *t, unsigned char desc)
{
    const unsigned char rec[7] = { 21, 3, 3, 0, 2, 2 /* fatal */, desc };
    px_buf_append(&t->out, rec, sizeof rec);
}

static WOLFSSL *session_new(px_tls_t *t, WOLFSSL_CTX *wctx)
{
    WOLFSSL *ssl = wolfSSL_new(wctx);
    if (!ssl)
        return NULL;
#ifdef PX_CHECK_THREADS
    t->owner = pthread_self();
#endif
    wolfSSL_SetIOReadCtx(ssl, t);
    wolfSSL_SetIOWriteCtx(ssl, t);
    return ssl;
}

/* The group (docs/config.md, "Group choice"): only groups of tls.groups
 * the client supports are candidates. A hybrid one the client already sent
 * a key share for is taken at once, the first such in tls.groups order: no
 * round trip is spent for a group no stronger than one in hand. Otherwise
 * the first candidate in tls.groups order, through a HelloRetryRequest when
 * the client sent no share for it; so a client that leads with a classical
 * share is moved to a hybrid group when it supports one. 0: none. */
static uint16_t choose_group(const px_tls_ctx_t *c, const px_hello_t *h)
{
    uint16_t first = 0;
    for (int i = 0; i < c->group_count; i++) {
        uint16_t g = c->groups[i];
        if (!offers(h->groups, h->group_count, g))
            continue;
        if (px_group_is_hybrid(g) && offers(h->key_shares, h->key_share_count, g))
            return g;
        if (!first)
            first = g;
    }
    return first;
}

/* Server: inspect the ClientHello, choose certificate and group, then
 * create the wolfSSL session pinned to them. */
static int server_start(px_tls_t *t)
{
    px_tls_ctx_t *c = t->ctx;
    px_hello_t h;
    const char *illegal;
    int groups[1];
    int rc = px_tls_parse_client_hello(px_buf_ptr(&t->in), px_buf_size(&t->in), &h);

    if (rc == PX_EAGAIN) {
        if (t->in_eof) {
            snprintf(t->err, sizeof t->err, "connection closed during ClientHello");
            return PX_ETLS;
        }
        return PX_EAGAIN;
    }
    if (rc != 0) {
        send_plain_alert(t, h.alert);
        snprintf(t->err, sizeof t->err, "%s", h.fault ? h.fault : "a malformed ClientHello");
        t->fail = PX_TLS_FAIL_MALFORMED;
        return PX_ETLS;
    }
    {
        size_t n = strnlen(h.sni, sizeof t->sni - 1);   /* once per handshake: no printf */
        memcpy(t->sni, h.sni, n);
        t->sni[n] = 0;
    }
    illegal = h.dup_share ? "two key shares for one group" : NULL;
    for (int i = 0; i < h.key_share_count && !illegal; i++)
        if (!offers(h.groups, h.group_count, h.key_shares[i]))
            illegal = "a key share for a group not in its supported_groups";
    if (h.tls13 && illegal) {   /* RFC 8446 4.2.8: both MAY be refused; we do */
        send_plain_alert(t, ALERT_ILLEGAL_PARAMETER);
        snprintf(t->err, sizeof t->err, "ClientHello: %s", illegal);
        t->fail = PX_TLS_FAIL_BAD_SHARE;
        return PX_ETLS;
    }
    t->group = h.tls13 || c->allow_tls12 ? choose_group(c, &h) : 0;
    if (!t->group || (c->policy == PX_PQ_REQUIRE && (!h.tls13 || !px_group_is_hybrid(t->group)))) {
        if (c->policy == PX_PQ_REQUIRE) {
            send_plain_alert(t, ALERT_INSUFFICIENT_SECURITY);
            snprintf(t->err, sizeof t->err, "%s",
                     h.tls13 ? "client offers no hybrid post-quantum group"
                             : "client does not offer TLS 1.3 (no hybrid key exchange possible)");
            t->fail = PX_TLS_FAIL_PQ_POLICY;
            return PX_EPQPOLICY;
        }
        /* tls.groups is an allow-list: with nothing in common the handshake
         * ends here (RFC 8446 4.1.1), never on wolfSSL's own defaults. */
        send_plain_alert(t, ALERT_HANDSHAKE_FAILURE);
        snprintf(t->err, sizeof t->err, "client offers no group of tls.groups");
        t->fail = PX_TLS_FAIL_NO_GROUP;
        return PX_ETLS;
    }
    /* The share that will be used must be sound before wolfSSL sends its
     * ServerHello (its own zero check of the X25519 result comes later). */
    for (int i = 0; i < h.key_share_count; i++)
        if (h.key_shares[i] == t->group && h.key_share_fault[i]) {
            send_plain_alert(t, ALERT_ILLEGAL_PARAMETER);
            snprintf(t->err, sizeof t->err, "ClientHello: %s", h.key_share_fault[i]);
            t->fail = PX_TLS_FAIL_BAD_SHARE;
            return PX_ETLS;
        }
    t->cert = pick_cert(c, &h);
    if (!t->cert) {
        send_plain_alert(t, ALERT_HANDSHAKE_FAILURE);
        snprintf(t->err, sizeof t->err, "client offers no signature algorithm of our certificates");
        t->fail = PX_TLS_FAIL_NO_SIGALG;
        return PX_ETLS;
    }
    t->ssl = session_new(t, t->cert->ctx);
    if (!t->ssl) {
        snprintf(t->err, sizeof t->err, "out of memory");
        return PX_ETLS;
    }
    groups[0] = t->group;
    if (wolfSSL_set_groups(t->ssl, groups, 1) != WOLFSSL_SUCCESS) {
        snprintf(t->err, sizeof t->err, "cannot pin group %s", px_group_name(t->group));
        return PX_ETLS;
    }
    if (h.tls13 && !offers(h.key_shares, h.key_share_count, t->group)) {
        /* a share for a classical group (the retry moves the client to a
         * hybrid one), or none the proxy knows at all */
        t->hrr = PX_HRR_NO_SHARE;
        for (int i = 0; i < h.key_share_count; i++)
            if (px_group_name(h.key_shares[i]) && !px_group_is_hybrid(h.key_shares[i]))
                t->hrr = PX_HRR_TO_HYBRID;
    }
    if (c->alpn)
        wolfSSL_UseALPN(t->ssl, c->alpn, (unsigned)strlen(c->alpn), WOLFSSL_ALPN_CONTINUE_ON_MISMATCH);
    return 0;
}

static int client_start(px_tls_t *t)
{
    px_tls_ctx_t *c = t->ctx;
    int groups[PX_MAX_GROUPS];

    t->ssl = session_new(t, c->client);
    if (!t->ssl) {
        snprintf(t->err, sizeof t->err, "out of memory");
        return PX_ETLS;
    }
    if (t->sni[0]) {
        wolfSSL_UseSNI(t->ssl, WOLFSSL_SNI_HOST_NAME, t->sni, (unsigned short)strlen(t->sni));
        if (c->verify_peer)
            wolfSSL_check_domain_name(t->ssl, t->sni);
    }
    if (c->client_group_count) {
        for (int i = 0; i < c->client_group_count; i++)
            groups[i] = c->client_groups[i];
        if (wolfSSL_set_groups(t->ssl, groups, c->client_group_count) != WOLFSSL_SUCCESS ||
            wolfSSL_UseKeyShare(t->ssl, c->client_groups[0]) != WOLFSSL_SUCCESS) {
            snprintf(t->err, sizeof t->err, "cannot offer group %s",
                     px_group_name(c->client_groups[0]) ? px_group_name(c->client_groups[0]) : "?");
            return PX_ETLS;
        }
        t->group = c->client_groups[0];
    }
    if (c->alpn)
        wolfSSL_UseALPN(t->ssl, c->alpn, (unsigned)strlen(c->alpn), WOLFSSL_ALPN_CONTINUE_ON_MISMATCH);
    else
        wolfSSL_UseALPN(t->ssl, (char *)"http/1.1", 8, WOLFSSL_ALPN_CONTINUE_ON_MISMATCH);
    return 0;
}

static void record_info(px_tls_t *t);

/* mTLS: the client's certificate (its key and its signature) must be within
 * tls.signature_algorithms (docs/config.md). wolfSSL has verified the chain
 * by now but keeps only the leaf (no SESSION_CERTS) and calls a verify
 * callback only on errors (no WOLFSSL_ALWAYS_VERIFY_CB), so the check runs
 * once the handshake is done, on the leaf, before any request is read. 1
 * when refused (reason in t->err). */
static int client_cert_refused(px_tls_t *t)
{
    int refused = 0;
#ifdef KEEP_PEER_CERT
    WOLFSSL_X509 *peer = wolfSSL_get_peer_certificate(t->ssl);   /* a copy */
    const unsigned char *der;
    int der_len = 0;
    char why[160];

    if (!peer)
        return 0;
    der = wolfSSL_X509_get_der(peer, &der_len);
    if (!der || px_sigalg_check_peer_cert(t->ctx->sigalgs, t->ctx->sigalg_count, der, der_len, 0,
                                          wolfSSL_version(t->ssl) == TLS1_3_VERSION, why,
                                          sizeof why) != 0) {
        snprintf(t->err, sizeof t->err, "%s", der ? why : "client certificate unreadable");
        t->fail = PX_TLS_FAIL_NO_SIGALG;
        refused = 1;
        /* the session tickets wolfSSL just wrote must not leave: resuming
         * with one would skip this check */
        px_buf_reset(&t->out);
    }
    wolfSSL_X509_free(peer);
#else
    (void)t;
#endif
    return refused;
}

static int fail_from(px_tls_t *t, int ret, const char *what)
{
    int e = wolfSSL_get_error(t->ssl, ret);
    char buf[80];
    if (e == WOLFSSL_ERROR_WANT_READ || e == WOLFSSL_ERROR_WANT_WRITE)
        return PX_EAGAIN;
    if (e == WOLFSSL_ERROR_ZERO_RETURN)
        return PX_EEOF;
    if (e == SOCKET_PEER_CLOSED_E || e == SOCKET_ERROR_E) {
        snprintf(t->err, sizeof t->err, "%s: connection closed by peer", what);
        return PX_EIO;
    }
    wolfSSL_ERR_error_string_n((unsigned long)e, buf, sizeof buf);
    snprintf(t->err, sizeof t->err, "%s: %s (%d)", what, buf, e);
    return PX_ETLS;
}

int px_tls_handshake(px_tls_t *t)
{
    int ret, rc;
    check_thread(t);
    if (t->done)
        return 0;
    if (!t->ssl) {
        rc = t->ctx->is_server ? server_start(t) : client_start(t);
        if (rc != 0)
            return rc;
    }
    ret = t->ctx->is_server ? wolfSSL_accept(t->ssl) : wolfSSL_connect(t->ssl);
    if (ret == WOLFSSL_SUCCESS && t->ctx->is_server && client_cert_refused(t))
        return PX_ETLS;
    if (ret == WOLFSSL_SUCCESS) {
        if (t->ctx->is_server &&
            px_tls_mtls_identity(t->ssl, &t->xfcc, &t->cc_json, t->peer, sizeof t->peer) != 0) {
            snprintf(t->err, sizeof t->err, "out of memory");
            return PX_ETLS;
        }
        t->done = 1;
        t->err[0] = 0;
        record_info(t);
        return 0;
    }
    rc = fail_from(t, ret, "handshake");
    if (rc != PX_EAGAIN && !t->fail)
        t->fail = PX_TLS_FAIL_OTHER;
    return rc == PX_EEOF ? PX_ETLS : rc;
}

px_tls_fail_t px_tls_fail_reason(const px_tls_t *t)
{
    return t->fail;
}

int px_tls_hrr(const px_tls_t *t)
{
    return t->hrr;
}

int px_tls_handshake_done(const px_tls_t *t)
{
    return t->done;
}

int px_tls_read(px_tls_t *t, char *buf, size_t len)
{
    int ret;
    check_thread(t);
    if (len > INT32_MAX)
        len = INT32_MAX;
    ret = wolfSSL_read(t->ssl, buf, (int)len);
    if (ret > 0)
        return ret;
    ret = fail_from(t, ret, "read");
    t->broken = ret == PX_ETLS;
    return ret;
}

int px_tls_write(px_tls_t *t, const char *buf, size_t len)
{
    size_t done = 0;
    check_thread(t);
    while (done < len) {
        size_t n = len - done > 1 << 30 ? 1 << 30 : len - done;
        int ret = wolfSSL_write(t->ssl, buf + done, (int)n);
        if (ret <= 0)
            return fail_from(t, ret, "write") == PX_EEOF ? PX_EEOF : PX_ETLS;
        done += (size_t)ret;
    }
    return (int)len;
}

void *px_tls_session_save(px_tls_t *t)
{
    return t->ssl ? wolfSSL_get1_session(t->ssl) : NULL;
}

int px_tls_session_resume(px_tls_t *t, void *session)
{
    if (t->ctx->is_server || t->ssl || !session)
        return PX_EINVAL;
    if (client_start(t) != 0)
        return PX_ETLS;
    return wolfSSL_set_session(t->ssl, session) == WOLFSSL_SUCCESS ? 0 : PX_ETLS;
}

void px_tls_session_free(void *session)
{
    wolfSSL_SESSION_free(session);
}

void px_tls_shutdown(px_tls_t *t)
{
    check_thread(t);
    if (t->ssl && t->done && !t->broken)      /* never close_notify after a fatal error */
        wolfSSL_shutdown(t->ssl);
}

/* The IANA name (TLS_AES_256_GCM_SHA384), not wolfSSL's own
 * (TLS13-AES256-GCM-SHA384): the access log, `request -v` and /metrics
 * name a suite the same way, as other servers and clients do. */
static const char *iana_cipher(WOLFSSL *ssl)
{
    int cs = wolfSSL_get_current_cipher_suite(ssl);
    const char *n = cs >= 0 ? wolfSSL_get_cipher_name_iana_from_suite((unsigned char)(cs >> 8),
                                                                      (unsigned char)cs)
                            : NULL;
    return n && *n && strcmp(n, "None") ? n : wolfSSL_get_cipher_name(ssl);
}

/* Fixed once the handshake is done: read from wolfSSL once, not per request. */
static void record_info(px_tls_t *t)
{
    px_tls_info_t *info = &t->info;
    memset(info, 0, sizeof *info);
    info->sni = t->sni;
    info->peer_subject = t->peer;
    info->client_xfcc = t->xfcc ? t->xfcc : "";
    info->client_cert_json = t->cc_json;
    info->cert_key = t->cert ? t->cert->key_name : "";
    info->version = wolfSSL_get_version(t->ssl);
    info->cipher = iana_cipher(t->ssl);
    info->resumed = wolfSSL_session_reused(t->ssl);
    info->hrr = t->hrr;
    /* What wolfSSL negotiated, not what we asked for. */
    info->group = wolfSSL_get_curve_name(t->ssl);
    info->group_id = info->group ? px_group_from_name(info->group) : 0;
    if (info->group_id)
        info->group = px_group_name(info->group_id);
    if (!info->group)
        info->group = "";
    info->hybrid = px_group_is_hybrid(info->group_id);
}

const char *px_tls_alpn(const px_tls_t *t)
{
    char *name = NULL;
    unsigned short len = 0;
    if (!t || !t->ssl || wolfSSL_ALPN_GetProtocol(t->ssl, &name, &len) != WOLFSSL_SUCCESS || !name)
        return "";
    if (len == 2 && !memcmp(name, "h2", 2))
        return "h2";
    if (len == 8 && !memcmp(name, "http/1.1", 8))
        return "http/1.1";
    return "";
}

void px_tls_get_info(const px_tls_t *t, px_tls_info_t *info)
{
    if (t->done) {
        *info = t->info;
        return;
    }
    memset(info, 0, sizeof *info);
    info->sni = t->sni;
    info->peer_subject = t->peer;
    info->client_xfcc = "";
    info->cert_key = t->cert ? t->cert->key_name : "";
    info->version = info->cipher = info->group = "";
}

const char *px_tls_error(const px_tls_t *t)
{
    return t->err;
}

int px_tls_peer_alert(const px_tls_t *t)
{
    WOLFSSL_ALERT_HISTORY h;
    if (!t->ssl || wolfSSL_get_alert_history(t->ssl, &h) != WOLFSSL_SUCCESS || h.last_rx.code <= 0)
        return -1;
    return h.last_rx.code;
}
