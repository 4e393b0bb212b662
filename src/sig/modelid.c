/* The model-manifest response field (see modelid.h). */
#include "sig/modelid.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "seal/manifest.h"
#include "sig/sigwire.h"

/* A manifest lists files and digests: a few MB at most. The cap keeps a
 * wrong path (a model file) from stalling a reload. */
#define MANIFEST_MAX_BYTES (64u << 20)

int px_model_manifest_value(const char *path, char out[PX_MODEL_MANIFEST_VALUE_MAX], char *err,
                            size_t errlen)
{
    struct stat st;
    uint8_t d[32];
    char b64[48];

    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        return -1;
    }
    if (st.st_size == 0 || (uint64_t)st.st_size > MANIFEST_MAX_BYTES) {
        snprintf(err, errlen, "%s: %s", path, st.st_size ? "larger than 64 MiB: not a manifest"
                                                          : "empty: not a manifest");
        return -1;
    }
    if (px_manifest_file_digest(path, d) != 0) {
        snprintf(err, errlen, "%s: %s", path, errno ? strerror(errno) : "cannot hash it");
        return -1;
    }
    if (px_b64_encode(d, sizeof d, b64, sizeof b64, 0) < 0 ||
        snprintf(out, PX_MODEL_MANIFEST_VALUE_MAX, "sha-256=:%s:", b64) >= PX_MODEL_MANIFEST_VALUE_MAX) {
        snprintf(err, errlen, "%s: cannot format the digest", path);
        return -1;
    }
    return 0;
}
