/* "tls.ticket_keys" (see config_tickets.h and docs/config.md). The key
 * file itself is read by net/tickets.c when the TLS context is built, so
 * check-config, run and reload refuse a bad one alike. */
#include "config/config_tickets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_sig.h"
#include "core/errors.h"

#define P "tls.ticket_keys"

static const char *const keys[] = { "source", "file", "redis_prefix", "check_interval_ms", NULL };
static const char *const sources[] = { "local", "file", "redis", NULL };

void px_config_ticket_keys_defaults(px_ticket_keys_config_t *tk)
{
    memset(tk, 0, sizeof *tk);
    snprintf(tk->redis_prefix, sizeof tk->redis_prefix, "pqproxy:tickets:");
    tk->check_interval_ms = 1000;
}

int px_config_parse_ticket_keys(px_jv_t *j, const char *dir, const cJSON *o,
                                px_ticket_keys_config_t *tk)
{
    const cJSON *v;
    const char *str;
    int r, idx;

    if ((r = px_jv_object(j, o, P, keys)) < 0)
        return r;
    if ((r = px_jv_enum(j, o, P, "source", sources, &idx)) < 0)
        return r;
    if (r)
        tk->source = (px_tkeys_source_t)idx;
    if ((v = px_jv_item(o, "file")) && !cJSON_IsNull(v)) {
        char *path;
        if ((r = px_jv_str(j, o, P, "file", &str)) < 0)
            return r;
        if (!str[0])
            return px_jv_fail(j, P ".file", "must be null or a file path");
        if (!(path = px_config_path_join(dir, str)))
            return px_jv_fail(j, P ".file", "out of memory");
        if (strlen(path) >= sizeof tk->file) {
            free(path);
            return px_jv_fail(j, P ".file", "path too long");
        }
        strcpy(tk->file, path);
        free(path);
    }
    if (tk->source == PX_TKEYS_FILE && !tk->file[0])
        return px_jv_fail(j, P ".file", "required with source \"file\" (lines of base64 keys)");
    if ((r = px_jv_str(j, o, P, "redis_prefix", &str)) < 0)
        return r;
    if (r) {
        if (!str[0] || strlen(str) >= sizeof tk->redis_prefix)
            return px_jv_fail(j, P ".redis_prefix", "1 to %d characters",
                              (int)sizeof tk->redis_prefix - 1);
        for (const char *p = str; *p; p++)
            if (*p <= ' ' || *p > '~')
                return px_jv_fail(j, P ".redis_prefix", "printable ASCII without spaces only");
        strcpy(tk->redis_prefix, str);
    }
    if ((r = px_jv_u32(j, o, P, "check_interval_ms", 100, 60000, &tk->check_interval_ms)) < 0)
        return r;
    return 0;
}

int px_config_check_ticket_keys(px_jv_t *j, const px_config_t *cfg)
{
    const px_replay_store_config_t *rs = &cfg->sig.replay_store;
    if (cfg->tls.ticket_keys.source != PX_TKEYS_REDIS)
        return 0;
    if (!cfg->tls.session_tickets)
        return px_jv_fail(j, P ".source", "\"redis\" with tls.session_tickets false: no tickets "
                          "to share");
    if (!rs->addr.host[0])
        return px_jv_fail(j, P ".source", "\"redis\" uses the connection of "
                          "signatures.replay_store: set signatures.replay_store.address");
    return 0;
}
