/* The age commands (age_cmd.c, docs/sealing.md). */
#ifndef PX_AGE_CMD_H
#define PX_AGE_CMD_H

/* keygen --alg age-pq|age-x25519: the identity file at out, the recipient on stdout. */
int px_age_cmd_keygen(const char *alg, const char *out, int force);
int px_cmd_seal(int argc, char **argv);
int px_cmd_open(int argc, char **argv);

#endif
