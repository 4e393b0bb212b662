/* A strict check of JSON text (RFC 8259) before it is parsed, so that a
 * syntax error in a configuration file is reported where it is, with what
 * was expected: cJSON stops one token late ("near" the next key when the
 * comma before it is missing) and takes raw control characters and
 * "\u0000" inside strings, which a configuration value must never hold.
 *
 * Strictness beyond the RFC: no NUL (\u0000) in strings; strings are valid
 * UTF-8; nesting at most PX_JSON_MAX_DEPTH. */
#ifndef PX_JSONSYNTAX_H
#define PX_JSONSYNTAX_H

#include <stddef.h>

#define PX_JSON_MAX_DEPTH 64

typedef struct {
    size_t offset;          /* byte offset of the fault in the text */
    const char *reason;     /* static text, e.g. "missing ',' or '}' after this value" */
} px_json_error_t;

/* 0 when text[0..len) is exactly one JSON value (white space around it
 * allowed), else PX_EPARSE with *e set. */
int px_json_check(const char *text, size_t len, px_json_error_t *e);

/* 1 when s[0..len) is valid UTF-8 (RFC 3629), else 0. */
int px_utf8_valid(const char *s, size_t len);

#endif
