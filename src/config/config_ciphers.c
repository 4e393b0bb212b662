/* tls.ciphers and tls.signature_algorithms (docs/config.md). */
#include "config/config_ciphers.h"
#include "net/tls_ciphers.h"

#include <string.h>

/* A list of names from a table: each known, allowed, built, given once. */
typedef struct {
    const char *key;                     /* "tls.ciphers" */
    const char *what;                    /* "cipher suite" */
    uint16_t (*from_name)(const char *);
    const char *(*refusal)(uint16_t);
    int (*supported)(uint16_t);          /* NULL: the table already says */
} name_list_t;

static int parse_names(px_jv_t *j, const cJSON *v, const name_list_t *l, const char *usable,
                       uint16_t *out, int max)
{
    char ep[PX_JV_PATH], shown[80];
    const char *why;
    int n = px_jv_array(j, v, l->key, 1, max, "names"), r;

    if (n < 0)
        return n;
    for (int i = 0; i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(v, i);
        uint16_t id;
        px_jv_fmt(ep, sizeof ep, "%s[%d]", l->key, i);
        if ((r = px_jv_string(j, e, ep)) < 0)
            return r;
        px_jv_printable(shown, sizeof shown, e->valuestring, 64);
        if (!(id = l->from_name(e->valuestring)))
            return px_jv_fail(j, ep, "unknown %s \"%s\"; supported: %s", l->what, shown, usable);
        if ((why = l->refusal(id)))
            return px_jv_fail(j, ep, "%s \"%s\" is refused: %s", l->what, shown, why);
        if (l->supported && !l->supported(id))
            return px_jv_fail(j, ep, "%s \"%s\" is not supported by this build's wolfSSL; "
                              "supported: %s", l->what, shown, usable);
        for (int k = 0; k < i; k++)
            if (out[k] == id)
                return px_jv_fail(j, ep, "duplicate %s \"%s\" (same as %s[%d])", l->what, shown,
                                  l->key, k);
        out[i] = id;
    }
    return n;
}

int px_config_parse_ciphers(px_jv_t *j, const cJSON *v, px_tls_config_t *tls)
{
    static const name_list_t l = { "tls.ciphers", "cipher suite", px_cipher_from_name,
                                   px_cipher_refusal, px_cipher_supported };
    char usable[1024], ep[PX_JV_PATH];
    int tls12 = tls->min_version == 12, n, tls13 = 0;

    px_cipher_usable_names(tls12, usable, sizeof usable);
    if ((n = parse_names(j, v, &l, usable, tls->ciphers, PX_MAX_CIPHERS)) < 0)
        return n;
    for (int i = 0; i < n; i++) {
        if (px_cipher_is_tls13(tls->ciphers[i])) {
            tls13 = 1;
        } else if (!tls12) {
            px_jv_fmt(ep, sizeof ep, "tls.ciphers[%d]", i);
            return px_jv_fail(j, ep, "\"%s\" is a TLS 1.2 suite: it needs tls.min_version \"1.2\"",
                              px_cipher_name(tls->ciphers[i]));
        }
    }
    if (!tls13)
        return px_jv_fail(j, "tls.ciphers", "needs at least one TLS 1.3 suite "
                          "(TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, "
                          "TLS_CHACHA20_POLY1305_SHA256)");
    tls->cipher_count = n;
    return 0;
}

int px_config_parse_sigalgs(px_jv_t *j, const cJSON *v, px_tls_config_t *tls)
{
    static const name_list_t l = { "tls.signature_algorithms", "signature algorithm",
                                   px_sigalg_from_name, px_sigalg_refusal, NULL };
    char usable[1024];
    int n;

    px_sigalg_usable_names(usable, sizeof usable);
    if ((n = parse_names(j, v, &l, usable, tls->sigalgs, PX_MAX_SIGALGS)) < 0)
        return n;
    tls->sigalg_count = n;
    return 0;
}

void px_config_cipher_defaults(px_tls_config_t *tls)
{
    if (tls->cipher_count == 0)
        tls->cipher_count = px_cipher_defaults(tls->min_version == 12, tls->ciphers, PX_MAX_CIPHERS);
    if (tls->sigalg_count == 0)
        tls->sigalg_count = px_sigalg_defaults(tls->sigalgs, PX_MAX_SIGALGS);
}
