/* TLS beneath HTTP: wolfSSL contexts and a session adapter over memory.
 *
 * A px_tls_t does no I/O. The owner puts received ciphertext into its input
 * (px_tls_in_reserve/commit, straight from the socket read), calls
 * handshake/read/write, and sends whatever appears in px_tls_out(). wolfSSL
 * reaches these buffers through its custom I/O callbacks, so nothing blocks.
 *
 * Server side, the ClientHello is parsed before wolfSSL sees it. That picks
 * the certificate (by SNI, then by the signature algorithms the client
 * offers, so ML-DSA certificates go to clients that can verify them), and
 * the key-exchange group: the first group of the server's list that the
 * client supports. The session is pinned to that group, so a client that
 * sent an X25519 key share but supports X25519MLKEM768 is answered with a
 * HelloRetryRequest and ends on the hybrid group. Under pq_policy "require",
 * a client with no hybrid group in common gets an insufficient_security
 * alert and the handshake ends with PX_EPQPOLICY. */
#ifndef PX_TLS_H
#define PX_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "config/config.h"

typedef struct px_tls_ctx px_tls_ctx_t;
typedef struct px_tls px_tls_t;

/* Once per process, before any other call. */
int px_tls_global_init(void);

/* Server context from the tls section of a config (files are read now).
 * NULL on error with "key.path: reason" in err. */
px_tls_ctx_t *px_tls_ctx_server_new(const px_tls_config_t *cfg, char *err, size_t errlen);
/* PX_TLS_RELOAD: the context replaces a running one (SIGHUP). An
 * ocsp_response that does not pass its checks is then logged and not
 * stapled instead of refusing the context. */
#define PX_TLS_RELOAD 1
px_tls_ctx_t *px_tls_ctx_server_new_ex(const px_tls_config_t *cfg, int flags, char *err,
                                       size_t errlen);

typedef struct {
    const uint16_t *groups;      /* offered in this order; the first gets a key share */
    int group_count;
    const char *ca_file;         /* trust anchors; NULL: no verification (tests only) */
    const char *cert_file;       /* client certificate for mTLS, or NULL */
    const char *key_file;
    int tls12;                   /* allow TLS 1.2 too */
    const char *alpn;            /* ALPN offered, comma-separated; NULL: "http/1.1" */
} px_tls_client_opts_t;

px_tls_ctx_t *px_tls_ctx_client_new(const px_tls_client_opts_t *o, char *err, size_t errlen);

/* The served certificates of a server context, for metrics: chain file
 * basename, key type, the leaf's notAfter and, when a response is stapled,
 * its nextUpdate (else 0), all Unix times; has_ocsp: an ocsp_response is
 * configured (0 with has_ocsp: it failed its checks at a reload). Returns
 * how many (<= max). */
typedef struct px_tls_cert_status {
    const char *file, *key;
    int64_t not_after, ocsp_next_update;
    int has_ocsp;
} px_tls_cert_status_t;
int px_tls_ctx_cert_status(const px_tls_ctx_t *c, px_tls_cert_status_t *out, int max);

/* 1 if a server context's sessions draw from their thread's DRBG instead of
 * one each; a session must then be used on the thread that created it. */
int px_tls_ctx_thread_rng(const px_tls_ctx_t *ctx);

/* Contexts are shared by sessions and worker threads and live until the
 * last reference goes (a reload swaps contexts under open connections). */
px_tls_ctx_t *px_tls_ctx_ref(px_tls_ctx_t *ctx);
void px_tls_ctx_unref(px_tls_ctx_t *ctx);

/* A session. server_name: SNI and name to verify (client side only). */
px_tls_t *px_tls_new(px_tls_ctx_t *ctx, const char *server_name);
void px_tls_free(px_tls_t *t);

/* Ciphertext input. Reserve gives room for up to n bytes (NULL when the
 * input already holds its maximum: stop reading the socket), commit adds
 * what was received. px_tls_in_eof: the peer closed its side. */
char *px_tls_in_reserve(px_tls_t *t, size_t n);
void px_tls_in_commit(px_tls_t *t, size_t n);
void px_tls_in_eof(px_tls_t *t);
size_t px_tls_in_pending(const px_tls_t *t);
/* Releases empty buffers (an idle keep-alive connection keeps no memory
 * it is not using). */
void px_tls_compact(px_tls_t *t);
/* Drops unprocessed input (a closing connection no longer reads it). */
void px_tls_in_discard(px_tls_t *t);

/* Ciphertext to send. The owner takes bytes from the front (px_buf_consume)
 * or swaps the buffer out while a socket write is in flight. */
px_buf_t *px_tls_out(px_tls_t *t);

/* 0 when complete, PX_EAGAIN for more input, PX_EPQPOLICY, PX_ETLS. */
int px_tls_handshake(px_tls_t *t);
int px_tls_handshake_done(const px_tls_t *t);

/* Plaintext. read: > 0 bytes, PX_EAGAIN, PX_EEOF (close_notify), PX_ETLS
 * (including a close without close_notify). write: encrypts all of buf
 * into the output; returns len or PX_ETLS. */
int px_tls_read(px_tls_t *t, char *buf, size_t len);
int px_tls_write(px_tls_t *t, const char *buf, size_t len);
/* Client session resumption: save after the handshake (and after reading,
 * since TLS 1.3 tickets arrive after it), resume before the next one. */
void *px_tls_session_save(px_tls_t *t);
int px_tls_session_resume(px_tls_t *t, void *session);
void px_tls_session_free(void *session);

/* Queues close_notify (not after a failed read: its alert, if any, is queued). */
void px_tls_shutdown(px_tls_t *t);

typedef struct {
    const char *version;        /* "TLSv1.3" */
    const char *cipher;         /* "TLS_AES_128_GCM_SHA256" */
    const char *group;          /* "X25519MLKEM768" */
    uint16_t group_id;
    int hybrid;                 /* the group is a hybrid post-quantum group */
    int hrr;                    /* the server asked for another key share: PX_HRR_* (0: no) */
    int resumed;
    const char *sni;            /* "" when none */
    const char *cert_key;       /* server certificate key type: "ECDSA-P256", "ML-DSA-65", ... */
    const char *peer_subject;   /* mTLS client certificate subject (RFC 4514), "" when none */
    const char *client_xfcc;    /* its x-forwarded-client-cert value, "" when none */
    const char *client_cert_json;  /* its access log object, NULL when none */
} px_tls_info_t;

void px_tls_get_info(const px_tls_t *t, px_tls_info_t *info);
/* The protocol ALPN chose after the handshake ("h2", "http/1.1"), "" when none. */
const char *px_tls_alpn(const px_tls_t *t);
/* Why the server sent a HelloRetryRequest (pqproxy_tls_hello_retry_requests_total{reason}). */
enum {
    PX_HRR_TO_HYBRID = 1,       /* "to_hybrid": the client's share was for a classical group */
    PX_HRR_NO_SHARE,            /* "no_usable_share": no share for a group the proxy knows */
    PX_HRR__COUNT = PX_HRR_NO_SHARE
};

/* Why a handshake was refused: each has its own log text and metric label
 * (pqproxy_tls_handshakes_total{result="..."}). */
typedef enum {
    PX_TLS_FAIL_NONE,
    PX_TLS_FAIL_PQ_POLICY,      /* "pq_policy_refused" */
    PX_TLS_FAIL_NO_GROUP,       /* "no_common_group": nothing of tls.groups offered */
    PX_TLS_FAIL_NO_SIGALG,      /* "no_common_sigalg": no certificate the client can verify, or a
                                   client certificate outside tls.signature_algorithms */
    PX_TLS_FAIL_MALFORMED,      /* "malformed_hello": decode_error, unexpected_message, record_overflow */
    PX_TLS_FAIL_BAD_SHARE,      /* "illegal_parameter": a key share that must be refused */
    PX_TLS_FAIL_OTHER           /* "failed": refused by wolfSSL (its reason in the log) */
} px_tls_fail_t;
px_tls_fail_t px_tls_fail_reason(const px_tls_t *t);
/* PX_HRR_* when the server sent a HelloRetryRequest (also on a handshake
 * that failed later), else 0. */
int px_tls_hrr(const px_tls_t *t);

/* Why the last call failed, for logs ("" when it did not). */
const char *px_tls_error(const px_tls_t *t);

/* The description of the last alert the peer sent (RFC 8446 6.2, e.g. 71
 * insufficient_security when a server requires a post-quantum group), or -1. */
int px_tls_peer_alert(const px_tls_t *t);

/* --- ClientHello inspection (exposed for tests) ------------------------------ */
#define PX_HELLO_MAX_GROUPS 32
#define PX_HELLO_MAX_SIGALGS 64
typedef struct {
    char sni[256];
    uint16_t groups[PX_HELLO_MAX_GROUPS];      /* supported_groups, client order */
    int group_count;
    uint16_t key_shares[PX_HELLO_MAX_GROUPS];  /* groups of the key shares sent */
    const char *key_share_fault[PX_HELLO_MAX_GROUPS];   /* NULL: well formed (px_group_check_share) */
    int key_share_count;
    const char *fault;         /* with PX_EPARSE: why it was refused */
    int dup_share;             /* two key shares for one group */
    unsigned char alert;       /* with PX_EPARSE: the alert it deserves */
    uint16_t sigalgs[PX_HELLO_MAX_SIGALGS];
    int sigalg_count;
    int tls13;                                  /* supported_versions offers TLS 1.3 */
} px_hello_t;

/* Parses a ClientHello from the start of a TLS byte stream (records may
 * fragment it). 0 on success, PX_EAGAIN if more bytes are needed, PX_EPARSE
 * if this is not a well-formed ClientHello. */
int px_tls_parse_client_hello(const char *p, size_t len, px_hello_t *h);

#endif
