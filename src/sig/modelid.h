/* Which released model answered: the response field naming the manifest
 * the model server was started from (signatures.response_model_manifest,
 * docs/signatures.md section 8). */
#ifndef PX_MODELID_H
#define PX_MODELID_H

#include <stddef.h>

#define PX_MODEL_MANIFEST_FIELD "pqproxy-model-manifest"
#define PX_MODEL_MANIFEST_HEADER "Pqproxy-Model-Manifest"
/* "sha-256=:" + 44 base64 characters + ":" and the NUL */
#define PX_MODEL_MANIFEST_VALUE_MAX 64

/* The field's value for the manifest file at path: "sha-256=:BASE64:" of
 * the SHA-256 of its bytes exactly as stored (what `sha256sum` prints, in
 * Content-Digest's syntax). 0, or -1 with "PATH: reason" in err. */
int px_model_manifest_value(const char *path, char out[PX_MODEL_MANIFEST_VALUE_MAX], char *err,
                            size_t errlen);

#endif
