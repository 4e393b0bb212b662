/* Path-aware checks on a cJSON tree, for the config loader.
 *
 * Each failure writes "FILE: key.path: reason" into the caller's buffer and
 * returns PX_ECONFIG. Getters return 0 when the key is absent (the caller
 * keeps its default), 1 when they stored a value, < 0 on error. */
#ifndef PX_JSONV_H
#define PX_JSONV_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define PX_JV_PATH 192 /* room for "tls.certificates[15].sni[15]" and a quoted key */

typedef struct {
    const char *file; /* prefix of every message */
    char *err;
    size_t errlen;
} px_jv_t;

int px_jv_fail(px_jv_t *j, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* vsnprintf into buf; for paths, where truncation is acceptable. */
void px_jv_fmt(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* "parent.key", or "key" at the top level. */
void px_jv_key_path(char *out, size_t len, const char *parent, const char *key);
/* Copies s for a message: printable ASCII only, at most max bytes then "...". */
void px_jv_printable(char *out, size_t outlen, const char *s, size_t max);
/* A value as shown after "got": 5, "text", true, null, an array, an object. */
const char *px_jv_describe(const cJSON *v, char *buf, size_t len);

/* Case-sensitive member lookup (cJSON_GetObjectItem ignores case). */
const cJSON *px_jv_item(const cJSON *obj, const char *key);
/* obj must be an object whose keys are all in `keys` (NULL-terminated), each
 * at most once; an unknown key gets a "did you mean" within edit distance 2. */
int px_jv_object(px_jv_t *j, const cJSON *obj, const char *path, const char *const *keys);
/* An integral number in min..max (|values| <= 2^53). */
int px_jv_int(px_jv_t *j, const cJSON *obj, const char *path, const char *key, int64_t min,
              int64_t max, int64_t *out);
int px_jv_u32(px_jv_t *j, const cJSON *obj, const char *path, const char *key, uint32_t min,
              uint32_t max, uint32_t *dst);
int px_jv_bool(px_jv_t *j, const cJSON *obj, const char *path, const char *key, int *dst);
/* A non-empty string; *out points into the tree. */
int px_jv_str(px_jv_t *j, const cJSON *obj, const char *path, const char *key, const char **out);
/* One of `names` (NULL-terminated); *idx is its index. */
int px_jv_enum(px_jv_t *j, const cJSON *obj, const char *path, const char *key,
               const char *const *names, int *idx);
/* v (at full path kp) is a non-empty string: 0 or error. */
int px_jv_string(px_jv_t *j, const cJSON *v, const char *kp);
/* v is an array of min..max elements: returns the count or error. */
int px_jv_array(px_jv_t *j, const cJSON *v, const char *kp, int min, int max, const char *what);

/* The syntax check refuses a \u0000 escape (a NUL would cut the C string
 * short) by line and column; this names its key path. text is the JSON
 * that root was parsed from (cJSON takes the escape), `at` the escape's
 * byte offset, pos its "line L, column C". PX_ECONFIG when a member name
 * or string value holds the escape there, else 0. */
int px_jv_nul_at(px_jv_t *j, const char *text, const cJSON *root, size_t at, const char *pos);

#endif
