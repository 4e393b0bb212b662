/* The "signatures" and "routes" sections of the configuration; used by
 * config.c only. */
#ifndef PX_CONFIG_SIG_H
#define PX_CONFIG_SIG_H

#include <cjson/cJSON.h>

#include "config/config.h"
#include "core/jsonv.h"

/* dir + "/" + p (p alone when absolute); NULL when out of memory. */
char *px_config_path_join(const char *dir, const char *p);

void px_config_sig_defaults(px_config_t *cfg);
int px_config_parse_signatures(px_jv_t *j, const char *dir, const cJSON *o, px_config_t *cfg);
/* signatures.replay_store; the password file is read here. */
void px_config_replay_defaults(px_replay_store_config_t *rs);
int px_config_parse_replay_store(px_jv_t *j, const char *dir, const cJSON *o,
                                 px_replay_store_config_t *rs);
int px_config_parse_routes(px_jv_t *j, const cJSON *v, px_config_t *cfg);
/* Cross-checks once everything is parsed: routes that verify need a
 * keyring, routes that sign need the proxy's key; files are readable. */
int px_config_check_signatures(px_jv_t *j, px_config_t *cfg);
void px_config_free_signatures(px_config_t *cfg);

#endif
