/* "http2": the client-facing HTTP/2 session's settings and abuse limits
 * (docs/config.md). */
#ifndef PX_CONFIG_HTTP2_H
#define PX_CONFIG_HTTP2_H

#include <cjson/cJSON.h>

#include "config/config.h"
#include "core/jsonv.h"

void px_config_http2_defaults(px_http2_config_t *h);
int px_config_parse_http2(px_jv_t *j, const cJSON *o, px_http2_config_t *h);

#endif
