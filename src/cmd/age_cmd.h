/* The age commands (age_cmd.c, docs/sealing.md). */
#ifndef PX_AGE_CMD_H
#define PX_AGE_CMD_H

#include "seal/age.h"

/* keygen --alg age-pq|age-x25519: the identity file at out, the recipient on stdout. */
int px_age_cmd_keygen(const char *alg, const char *out, int force);
int px_cmd_seal(int argc, char **argv);
int px_cmd_open(int argc, char **argv);

/* Appends the identities of an age identity file (blank lines and '#'
 * comments skipped) to ids[*n..max); 0, or 1 after naming the file and line
 * on stderr as "pqproxy CMD: ...". */
int px_age_read_identities(const char *cmd, const char *path, px_age_identity_t *ids, int *n,
                           int max);

#endif
