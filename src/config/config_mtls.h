/* The mTLS keys of the "tls" section: client_verify, client_verify_depth,
 * client_crl (docs/config.md); used by config.c only. */
#ifndef PX_CONFIG_MTLS_H
#define PX_CONFIG_MTLS_H

#include <cjson/cJSON.h>

#include "config/config.h"
#include "core/jsonv.h"

#define PX_MTLS_TLS_KEYS "client_verify", "client_verify_depth", "client_crl"

void px_config_mtls_defaults(px_tls_config_t *tls);
int px_config_parse_mtls(px_jv_t *j, const char *dir, const cJSON *tls_obj, px_tls_config_t *tls);
/* Once the environment is applied: the keys need tls.client_ca. */
int px_config_check_mtls(px_jv_t *j, const px_tls_config_t *tls);
void px_config_free_mtls(px_tls_config_t *tls);

#endif
