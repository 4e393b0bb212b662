/* TLS session-ticket keys: one process-wide store shared by every worker,
 * certificate context and reload, so a ticket issued by one worker resumes
 * on another and survives SIGHUP. Tickets are sealed with AES-256-GCM under
 * the current key; the other keys still open them (and a fresh ticket is
 * issued). 0-RTT is not enabled.
 *
 * Where the keys come from (tls.ticket_keys.source, docs/config.md):
 * - local: made here, rotated every ticket_key_rotation_s; the previous
 *   key is still accepted, so a ticket lives at most two periods.
 * - file: a file shared by every replica (a Kubernetes Secret): lines of
 *   base64 32-byte keys, the first seals, all open. Re-read on SIGHUP and
 *   when the file changes (px_tickets_file_poll); a bad file keeps the
 *   keys in use.
 * - redis: installed by proxy/ticketsync.c from Redis (px_tickets_install);
 *   until Redis has answered once, a local key.
 * A key's name (sent in the ticket) is derived from the key, so every
 * replica holding a key knows it by the same name. Each process seals with
 * IVs of its own (a random prefix per key and process, and a counter that
 * starts at random), so replicas sharing a key never repeat an IV.
 * Keys live in memory only and are zeroised when dropped. */
#ifndef PX_TICKETS_H
#define PX_TICKETS_H

#include <stddef.h>
#include <stdint.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "config/config.h"

#define PX_TICKETS_KEY_SZ 32
#define PX_TICKETS_MAX_KEYS 8

/* Local keys rotated every rotation_s (first call creates the first key). */
int px_tickets_configure(uint32_t rotation_s);
/* From the tls section, at start and on every reload: the source of the
 * first call stays for the process's life (a change needs a restart), but
 * a "file" source is re-read every time (and a new file's keys are
 * checked even if they are not used). 0, or PX_ECONFIG with
 * "tls.ticket_keys.file: PATH: reason" in err. */
int px_tickets_setup(const px_tls_config_t *tls, char *err, size_t errlen);
/* Source "file": re-reads the file when its stat changed (a Secret update
 * swaps a symlink). 1: new keys in use, 0: unchanged, <0: bad file, old
 * keys kept, the reason in err. */
int px_tickets_file_poll(char *err, size_t errlen);
/* Source "redis": keys[0] seals, all open. n is 1..PX_TICKETS_MAX_KEYS.
 * 1 when the set changed, 0 when it is the one in use. */
int px_tickets_install(const unsigned char (*keys)[PX_TICKETS_KEY_SZ], int n);
/* Keys in use (for log lines). */
int px_tickets_count(void);
/* Makes ctx seal and open tickets with the shared keys. */
int px_tickets_attach(WOLFSSL_CTX *ctx);
/* Rotates the local keys now (tests; an operator who suspects a key leak
 * restarts, or replaces the file). */
void px_tickets_rotate(void);
/* Wipes key material (stack copies, buffers that held keys). */
void px_tickets_wipe(void *p, size_t n);

#endif
