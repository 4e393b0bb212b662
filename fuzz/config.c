/* The configuration loader (src/config/config.c, src/config/config_sig.c, src/core/jsonv.c)
 * from bytes, through px_config_parse, the same path px_config_load takes
 * after reading the file. The file is named as if it lay in tests/data/sig,
 * so relative paths can name files that exist (keys as certificates: only
 * readability is checked here) and the whole loader, cross-checks
 * included, is reachable.
 *
 * Checked: a refusal names the file and says why; a loaded config answers
 * route look-ups and frees cleanly. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

#define FILE_NAME PX_TEST_DATA "/sig/fuzz.json"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char prefix[] = FILE_NAME ": ";
    char err[512], *json = malloc(size + 1);
    px_config_t *cfg;

    if (!json)
        abort();
    memcpy(json, data, size);
    json[size] = '\0';
    cfg = px_config_parse(json, FILE_NAME, err, sizeof err);
    if (!cfg) {
        if (strncmp(err, prefix, sizeof prefix - 1) || !err[sizeof prefix - 1]) {
            fprintf(stderr, "config fuzz: refusal without file and reason: \"%s\"\n", err);
            abort();
        }
    } else {
        static const char *const paths[] = { "/", "/v1/models/m:predict", "", "/a/b/c" };
        for (size_t i = 0; i < sizeof paths / sizeof *paths; i++)
            for (int grpc = 0; grpc < 2; grpc++)
                (void)px_config_route(cfg, paths[i], strlen(paths[i]), grpc);
        if (cfg->workers < 1 || cfg->tls.cert_count < 1)
            abort();
        px_config_free(cfg);
    }
    free(json);
    return 0;
}
