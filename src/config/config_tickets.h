/* "tls.ticket_keys" (docs/config.md, "Session-ticket keys"); used by
 * config.c only. */
#ifndef PX_CONFIG_TICKETS_H
#define PX_CONFIG_TICKETS_H

#include <cjson/cJSON.h>

#include "config/config.h"
#include "core/jsonv.h"

void px_config_ticket_keys_defaults(px_ticket_keys_config_t *tk);
int px_config_parse_ticket_keys(px_jv_t *j, const char *dir, const cJSON *o,
                                px_ticket_keys_config_t *tk);
/* Once everything is parsed: "redis" needs signatures.replay_store.address. */
int px_config_check_ticket_keys(px_jv_t *j, const px_config_t *cfg);

#endif
