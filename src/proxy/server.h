/* The running proxy: worker threads (one libuv loop and one SO_REUSEPORT
 * listener each, nothing shared on the hot path), signals, graceful drain
 * and reload. */
#ifndef PX_SERVER_H
#define PX_SERVER_H

#include "config/config.h"
#include "http/conn.h"

typedef struct px_server px_server_t;

/* Binds the listeners and loads TLS from cfg (which the server then owns).
 * NULL on error with the reason in err. */
px_server_t *px_server_new(px_config_t *cfg, char *err, size_t errlen);
/* Runs until drained after SIGTERM/SIGINT. Returns the process exit code. */
int px_server_run(px_server_t *s);
void px_server_free(px_server_t *s);

/* Loads the config file again and, if it is valid, swaps it in (and its
 * certificates) for new connections; otherwise keeps the old one and logs
 * why. 0 or a negative error. Called on SIGHUP. */
int px_server_reload(px_server_t *s);
/* Starts the drain (as SIGTERM does). */
void px_server_drain(px_server_t *s);

/* Appends the Prometheus exposition of all workers' counters (read
 * without locks: each counter has one writer; a read may be a moment old). */
int px_server_metrics(px_server_t *s, px_buf_t *out);
int px_server_draining(const px_server_t *s);

/* `pqproxy run FILE`: serves until drained; the exit code. */
int px_server_run_file(const char *file);
/* `pqproxy check-config FILE`: loads FILE and everything `run` loads from
 * it (certificates, keys, CA files, signature keys, log files), prints
 * "FILE: ok (...)" or the reason on stderr; 0 or 1. */
int px_server_check_file(const char *file);

#endif
