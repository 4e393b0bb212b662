#ifndef PX_VERSION_H
#define PX_VERSION_H

#include <stdint.h>

typedef struct {
    const char *names[16];
    int count;
} px_sigalg_list_t;

/* 1 when the linked wolfSSL can generate a key share for this group. */
int px_probe_group(uint16_t group);
/* Fills out with the signature algorithms whose key generation works. */
int px_probe_sigalgs(px_sigalg_list_t *out);

#endif
