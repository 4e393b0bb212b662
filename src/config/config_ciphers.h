/* tls.ciphers and tls.signature_algorithms; used by config.c only. */
#ifndef PX_CONFIG_CIPHERS_H
#define PX_CONFIG_CIPHERS_H

#include <cjson/cJSON.h>

#include "config/config.h"
#include "core/jsonv.h"

/* Both need tls->min_version parsed first. */
int px_config_parse_ciphers(px_jv_t *j, const cJSON *v, px_tls_config_t *tls);
int px_config_parse_sigalgs(px_jv_t *j, const cJSON *v, px_tls_config_t *tls);
/* The defaults for lists the file did not give (they depend on min_version). */
void px_config_cipher_defaults(px_tls_config_t *tls);

#endif
