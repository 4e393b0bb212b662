/* mTLS keys of the "tls" section (see config_mtls.h and docs/config.md). */
#include "config/config_mtls.h"

#include <stdlib.h>

#include "config/config_sig.h"     /* px_config_path_join */

void px_config_mtls_defaults(px_tls_config_t *tls)
{
    tls->client_verify = PX_CLIENT_VERIFY_REQUIRED;
    tls->client_verify_depth = 1;
}

int px_config_parse_mtls(px_jv_t *j, const char *dir, const cJSON *o, px_tls_config_t *tls)
{
    static const char *const modes[] = { "required", "optional", NULL };
    const cJSON *v;
    int r, idx, n;

    if ((r = px_jv_enum(j, o, "tls", "client_verify", modes, &idx)) < 0)
        return r;
    if (r)
        tls->client_verify = idx ? PX_CLIENT_VERIFY_OPTIONAL : PX_CLIENT_VERIFY_REQUIRED;
    if ((r = px_jv_u32(j, o, "tls", "client_verify_depth", 0, PX_MAX_VERIFY_DEPTH,
                       &tls->client_verify_depth)) < 0)
        return r;
    if (!(v = px_jv_item(o, "client_crl")) || cJSON_IsNull(v))
        return 0;
    px_config_free_mtls(tls);
    if (cJSON_IsString(v)) {
        if ((r = px_jv_string(j, v, "tls.client_crl")) < 0)
            return r;
        n = 1;
    } else if ((n = px_jv_array(j, v, "tls.client_crl", 1, PX_MAX_CRL, "CRL file paths")) < 0) {
        return n;
    }
    for (int i = 0; i < n; i++) {
        const cJSON *e = cJSON_IsString(v) ? v : cJSON_GetArrayItem(v, i);
        char ep[PX_JV_PATH];
        px_jv_fmt(ep, sizeof ep, "tls.client_crl[%d]", i);
        if ((r = px_jv_string(j, e, ep)) < 0)
            return r;
        if (!(tls->client_crl[i] = px_config_path_join(dir, e->valuestring)))
            return px_jv_fail(j, "tls.client_crl", "out of memory");
        tls->client_crl_count = i + 1;
    }
    return 0;
}

int px_config_check_mtls(px_jv_t *j, const px_tls_config_t *tls)
{
    if (tls->client_ca_file)
        return 0;
    if (tls->client_crl_count)
        return px_jv_fail(j, "tls.client_crl", "needs tls.client_ca (CRLs apply to client "
                          "certificates)");
    if (tls->client_verify == PX_CLIENT_VERIFY_OPTIONAL)
        return px_jv_fail(j, "tls.client_verify", "needs tls.client_ca (without it no client "
                          "certificate is requested)");
    return 0;
}

void px_config_free_mtls(px_tls_config_t *tls)
{
    for (int i = 0; i < PX_MAX_CRL; i++) {
        free(tls->client_crl[i]);
        tls->client_crl[i] = NULL;
    }
    tls->client_crl_count = 0;
}
