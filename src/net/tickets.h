/* TLS session-ticket keys: one process-wide store shared by every worker,
 * certificate context and reload, so a ticket issued by one worker resumes
 * on another and survives SIGHUP. Tickets are sealed with AES-256-GCM under
 * the current key; the previous key still opens them (and a fresh ticket
 * is issued), so a ticket lives at most two rotation periods. 0-RTT is not
 * enabled. */
#ifndef PX_TICKETS_H
#define PX_TICKETS_H

#include <stdint.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

/* Sets the rotation period (first call creates the first key). */
int px_tickets_configure(uint32_t rotation_s);
/* Makes ctx seal and open tickets with the shared keys. */
int px_tickets_attach(WOLFSSL_CTX *ctx);
/* Rotates now (tests; an operator who suspects a key leak restarts). */
void px_tickets_rotate(void);

#endif
