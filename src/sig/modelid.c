/* The model-manifest response field (see modelid.h). */
#include "sig/modelid.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sig/sig.h"

/* A manifest lists files and digests: a few MB at most. The cap keeps a
 * wrong path (a device, a model file) from stalling a reload. */
#define MANIFEST_MAX_BYTES (64u << 20)

int px_model_manifest_value(const char *path, char out[PX_MODEL_MANIFEST_VALUE_MAX], char *err,
                            size_t errlen)
{
    px_digest_t d;
    px_digest_value_t v;
    struct stat st;
    char buf[16384];
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY), ret = -1, hashing = 0;

    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        goto done;
    }
    if (st.st_size == 0 || (uint64_t)st.st_size > MANIFEST_MAX_BYTES) {
        snprintf(err, errlen, "%s: %s", path, st.st_size ? "larger than 64 MiB: not a manifest"
                                                          : "empty: not a manifest");
        goto done;
    }
    if (px_digest_init(&d, PX_DIGEST_SHA256) != 0) {
        snprintf(err, errlen, "%s: cannot start SHA-256", path);
        goto done;
    }
    hashing = 1;
    while ((n = read(fd, buf, sizeof buf)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            goto done;
        }
        px_digest_update(&d, buf, (size_t)n);
    }
    hashing = 0;
    px_digest_final(&d, &v);
    if (px_content_digest_format(&v, out, PX_MODEL_MANIFEST_VALUE_MAX) != 0) {
        snprintf(err, errlen, "%s: cannot format the digest", path);
        goto done;
    }
    ret = 0;
done:
    if (hashing)
        px_digest_final(&d, &v);
    if (fd >= 0)
        close(fd);
    return ret;
}
