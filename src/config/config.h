/* Configuration: JSON file -> validated, immutable px_config_t.
 *
 * Every key is type- and range-checked and unknown keys are refused; an
 * error names the file, the key path (e.g. "tls.certificates[1].key") and
 * the reason. Relative file paths are resolved against the directory of the
 * config file. A loaded config is never modified; reload builds a new one.
 * docs/config.md documents every key and its default. */
#ifndef PX_CONFIG_H
#define PX_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define PX_MAX_GROUPS 8
#define PX_MAX_CERTS 16
#define PX_MAX_SNI_PER_CERT 16
#define PX_MAX_ALPN 4
#define PX_MAX_CIPHERS 32
#define PX_MAX_SIGALGS 24
#define PX_MAX_CRL 16
#define PX_MAX_VERIFY_DEPTH 8           /* wolfSSL checks at most 9 certificates per chain */

typedef enum { PX_PQ_REQUIRE = 0, PX_PQ_PREFER = 1 } px_pq_policy_t;
typedef enum { PX_CLIENT_VERIFY_REQUIRED = 0, PX_CLIENT_VERIFY_OPTIONAL } px_client_verify_t;

/* A listen or upstream address: "host:port", "[v6]:port" or "unix:/path". */
typedef struct {
    int is_unix;
    char host[256];      /* numeric IP (never a name: "localhost" is stored as
                            127.0.0.1), or the socket path if is_unix */
    uint16_t port;
    int is_name;         /* host is a DNS name (px_addr_parse_name only) */
} px_addr_t;

typedef struct {
    char *cert_file;                   /* PEM chain, leaf first */
    char *key_file;                    /* PEM or DER private key */
    char *sni[PX_MAX_SNI_PER_CERT];    /* names (exact or "*.suffix"); none = default only */
    int sni_count;
    char *ocsp_file;                   /* DER OCSP response to staple, or NULL */
    char *ocsp_issuer_file;            /* PEM issuer, when the chain file lacks it, or NULL */
} px_cert_config_t;

/* tls.ticket_keys: where the session-ticket keys come from (tickets.h).
 * "local": made and rotated by this process; "file": a Secret shared by
 * every replica; "redis": rotated by one replica through Redis, read by all. */
typedef enum { PX_TKEYS_LOCAL = 0, PX_TKEYS_FILE, PX_TKEYS_REDIS } px_tkeys_source_t;
typedef struct {
    px_tkeys_source_t source;
    char file[4096];                      /* resolved path (source "file") */
    char redis_prefix[65];                /* Redis key prefix (source "redis") */
    uint32_t check_interval_ms;           /* file stat / Redis read period */
} px_ticket_keys_config_t;

typedef struct {
    px_cert_config_t certs[PX_MAX_CERTS]; /* certs[0] is the default */
    int cert_count;
    uint16_t groups[PX_MAX_GROUPS];       /* TLS named-group code points, server preference order */
    int group_count;
    px_pq_policy_t pq_policy;
    int min_version;                      /* 12 or 13 */
    char *client_ca_file;                 /* non-NULL: mTLS (client_verify says how) */
    px_client_verify_t client_verify;     /* with client_ca: required (default) or optional */
    uint32_t client_verify_depth;         /* CA certificates a client may send with its own */
    char *client_crl[PX_MAX_CRL];         /* PEM CRL files, checked for the whole chain */
    int client_crl_count;
    int session_tickets;                  /* bool */
    uint32_t ticket_key_rotation_s;
    px_ticket_keys_config_t ticket_keys;
    char *alpn[PX_MAX_ALPN];              /* e.g. "http/1.1" */
    int alpn_count;
    uint32_t cert_expiry_warning_days;    /* 0: no warning */
    uint16_t ciphers[PX_MAX_CIPHERS];     /* suite code points, server preference order */
    int cipher_count;
    uint16_t sigalgs[PX_MAX_SIGALGS];     /* allowed signature schemes (tls_ciphers.h) */
    int sigalg_count;
} px_tls_config_t;

typedef enum { PX_UP_HTTP1, PX_UP_H2C } px_upstream_proto_t;

#define PX_H2C_MAX_CONNECTIONS 1024        /* the most h2c_max_connections may say */

typedef struct {
    px_addr_t addr;
    uint32_t pool_max_idle;               /* idle keep-alive connections kept per worker */
    uint32_t max_requests_per_conn;       /* 0 = unlimited */
    px_upstream_proto_t protocol;         /* HTTP/1.1 or h2c (prior knowledge) */
    uint32_t h2c_max_streams;             /* h2c: streams per connection at most (and the peer's limit) */
    uint32_t h2c_max_connections;         /* h2c: connections per worker at most */
    uint32_t h2c_ping_timeout;            /* h2c: ms for a PING's answer, else the connection ends; 0: no PINGs */
    uint32_t max_connections;             /* http1: connections per worker at most; 0 = no cap */
} px_upstream_config_t;

/* upstreams.<name>: model servers besides the default `upstream`, chosen by
 * routes (one TLS port in front of a REST and a gRPC port, say). */
#define PX_MAX_UPSTREAMS 8
#define PX_UPSTREAM_NAME_MAX 32
typedef struct {
    char name[PX_UPSTREAM_NAME_MAX + 1];
    px_upstream_config_t cfg;
} px_named_upstream_t;

typedef struct {
    uint32_t max_header_bytes;            /* whole request/response head (at most PX_MAX_HEADER_BYTES) */
    uint64_t max_body_bytes;              /* 0 = unlimited (default 64 MiB) */
    int trust_forwarded;                  /* keep incoming X-Forwarded-* and append */
    uint32_t max_requests_per_conn;       /* 0 = unlimited */
} px_http_config_t;

/* "http2": the client-facing HTTP/2 session (http/h2.h, docs/config.md). */
typedef struct {
    uint32_t max_concurrent_streams;      /* SETTINGS_MAX_CONCURRENT_STREAMS */
    uint32_t initial_window_size;         /* per stream: request body bytes in flight */
    uint32_t connection_window_size;      /* whole connection */
    uint32_t max_header_list_size;        /* decoded field block (RFC 9113 6.5.2 sizes) */
    uint32_t max_frame_size;
    uint32_t header_table_size;           /* HPACK dynamic table we let the client use */
    uint32_t max_continuations;           /* CONTINUATION frames after one HEADERS */
    uint32_t max_queued_acks;             /* SETTINGS/PING ACKs waiting to be sent */
    uint32_t reset_budget;                /* stream resets at once, refilled ... */
    uint32_t reset_window_ms;             /* ... over this long; beyond: GOAWAY */
    uint32_t stream_buffer;               /* response bytes queued per stream */
    uint32_t connection_buffer;           /* response bytes queued per connection */
    uint32_t stall_timeout_ms;            /* queued output, no window: reset after */
} px_http2_config_t;

typedef struct {                          /* all in milliseconds */
    uint32_t handshake;
    uint32_t request_header;
    uint32_t body_idle;
    uint32_t request;                     /* first byte of the head -> end of the body */
    uint32_t keepalive_idle;
    uint32_t upstream_connect;
    uint32_t upstream_queue;              /* waiting for a connection under upstream.max_connections */
    uint32_t upstream_response;           /* request fully sent -> first response byte */
    uint32_t upstream_idle;               /* between response bytes */
    uint32_t send_idle;                   /* a write to the client that does not complete */
    uint32_t drain;                       /* SIGTERM -> exit at the latest */
} px_timeouts_config_t;

typedef enum { PX_LOG_DEBUG, PX_LOG_INFO, PX_LOG_WARN, PX_LOG_ERROR } px_log_level_t;

typedef struct {
    px_log_level_t level;
    char *access_log;                     /* "stdout", "stderr", "off" or a file path */
    char *error_log;                      /* "stderr", "stdout" or a file path */
} px_log_config_t;

typedef struct {
    int enabled;
    px_addr_t addr;
} px_admin_config_t;

/* Per-request signatures (docs/signatures.md). */
/* The largest http.max_header_bytes: what holds a head or trailer section
 * already bounded by it (h2c_xlate.c, h2_session.c) is capped here. */
#define PX_MAX_HEADER_BYTES 1048576

typedef enum { PX_VERIFY_OFF = 0, PX_VERIFY_OPTIONAL, PX_VERIFY_REQUIRED } px_verify_mode_t;

#define PX_MAX_ROUTES 32
#define PX_MAX_SIG_HEADERS 8

typedef struct {
    char *prefix;                         /* path prefix; the longest match wins */
    int grpc;                             /* matches only gRPC requests (content-type application/grpc*) */
    int upstream;                         /* 0: the default upstream, k: upstreams[k - 1] */
    px_verify_mode_t verify;
    int sign_responses;
    int metrics_row;                      /* its counters' row (1..): position + 1, kept by reloads (metrics.h) */
} px_route_t;

/* signatures.replay_store: where nonces are recorded. "local": this
 * process only; "redis": shared by every replica (rstore.h), with the
 * process-wide cache in front. Plain arrays: workers copy it. */
typedef enum { PX_RSTORE_LOCAL = 0, PX_RSTORE_REDIS } px_rstore_type_t;
#define PX_RSTORE_MAX_NAME 64
#define PX_RSTORE_MAX_PASSWORD 512
#define PX_RSTORE_MAX_PATH 1024
#define PX_RSTORE_MAX_SENTINELS 8
typedef struct {
    px_rstore_type_t type;
    px_addr_t addr;                       /* the server, or none (sentinel_count > 0) */
    px_addr_t sentinels[PX_RSTORE_MAX_SENTINELS];  /* Redis Sentinel: asked for the master */
    int sentinel_count;
    char master_name[PX_RSTORE_MAX_NAME + 1];      /* the master the sentinels watch */
    char sentinel_password[PX_RSTORE_MAX_PASSWORD + 1]; /* "": no AUTH to the sentinels */
    char prefix[PX_RSTORE_MAX_NAME + 1];
    char username[PX_RSTORE_MAX_NAME + 1];       /* "": none (AUTH with the password alone) */
    char password[PX_RSTORE_MAX_PASSWORD + 1];   /* from password_file; "": no AUTH */
    uint32_t timeout_ms;                  /* deadline of one check */
    int fail_open;                        /* accept when unavailable (else 503) */
    struct {                              /* "tls": TLS to Redis and the sentinels */
        int on;
        char ca_file[PX_RSTORE_MAX_PATH + 1];   /* absolute or config-relative, resolved */
        char server_name[PX_RSTORE_MAX_NAME + 1]; /* "": the host name it is reached by */
        char cert[PX_RSTORE_MAX_PATH + 1];      /* client certificate ("" none) and its key */
        char key[PX_RSTORE_MAX_PATH + 1];
    } tls;
} px_replay_store_config_t;

typedef struct {
    char *keyring;                        /* directory of <keyid>.ecdsa.pub + <keyid>.mldsa.pub */
    uint32_t max_skew_s;
    uint32_t max_validity_s;
    int allow_classical;                  /* accept ECDSA-only requests (migration; counted) */
    char *required_headers[PX_MAX_SIG_HEADERS];  /* lowercase field names every signature covers */
    int required_header_count;
    uint64_t max_signed_body_bytes;       /* buffered until its digest is checked; beyond: 413 */
    uint32_t replay_cache_entries;
    px_replay_store_config_t replay_store;
    uint32_t crypto_threads;              /* libuv pool size; 0: the CPUs available (start only) */
    char *response_key;                   /* PREFIX of PREFIX.ecdsa.key and PREFIX.mldsa.key */
    char *response_keyid;
    char *response_model_manifest;        /* manifest the model server was started from, or NULL */
    char model_manifest_value[64];        /* its Pqproxy-Model-Manifest value (sig/modelid.h), read at load */
} px_sig_config_t;

typedef struct px_config {
    char *path;                           /* the file it came from */
    px_addr_t listen;
    int workers;                          /* resolved: >= 1 (0 in the file = one per core) */
    uint32_t max_connections;             /* per process */
    px_tls_config_t tls;
    px_upstream_config_t upstream;        /* the default one */
    px_named_upstream_t upstreams[PX_MAX_UPSTREAMS];
    int upstream_count;
    px_http_config_t http;
    px_http2_config_t http2;
    px_timeouts_config_t timeouts;
    px_log_config_t log;
    px_admin_config_t admin;
    px_sig_config_t sig;
    px_route_t routes[PX_MAX_ROUTES];
    int route_count;
} px_config_t;

/* Loads and validates FILE, then applies environment overrides
 * (PQPROXY_LISTEN, PQPROXY_UPSTREAM, PQPROXY_UPSTREAM_GRPC, PQPROXY_ADMIN_LISTEN, PQPROXY_TLS_CERT,
 * PQPROXY_TLS_KEY, PQPROXY_TLS_CLIENT_CA, PQPROXY_WORKERS, PQPROXY_PQ_POLICY).
 * On error returns NULL and writes "FILE: KEY.PATH: reason" into err. */
px_config_t *px_config_load(const char *file, char *err, size_t errlen);

/* Same, from a JSON text; `file` is used for messages and relative paths.
 * PQPROXY_* environment overrides are not applied: only px_config_load reads them. */
px_config_t *px_config_parse(const char *json, const char *file, char *err, size_t errlen);

void px_config_free(px_config_t *cfg);

/* The route for a request path (longest prefix; routes marked grpc only
 * when the request is gRPC, and they win a tie), or NULL: no signature
 * policy applies and the default upstream serves it. */
const px_route_t *px_config_route(const px_config_t *cfg, const char *path, size_t len, int grpc);

/* "host:port", "[v6]:port", "unix:/path" -> addr. Returns 0 or PX_EINVAL
 * with the reason in err. */
int px_addr_parse(const char *s, px_addr_t *addr, char *err, size_t errlen);
/* The same, and the host may also be a DNS name (is_name), which the caller
 * resolves without blocking its loop. */
int px_addr_parse_name(const char *s, px_addr_t *addr, char *err, size_t errlen);

/* Group names as used in the config ("X25519MLKEM768", ...) <-> code points.
 * Returns 0 / NULL when unknown. */
uint16_t px_group_from_name(const char *name);
const char *px_group_name(uint16_t group);
int px_group_is_hybrid(uint16_t group);
/* NULL when ke is a well-formed key share for group, else why not (a
 * static text): length, uncompressed point, X25519 not of low order,
 * ML-KEM encapsulation key modulus check. Unknown groups: any non-empty. */
const char *px_group_check_share(uint16_t group, const uint8_t *ke, size_t len);
/* Every group pqproxy knows by name (src/net/groups.c); returns the count. */
int px_group_all(const uint16_t **ids);

#endif
