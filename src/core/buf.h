/* A growable byte buffer with a hard cap, and a consumed-prefix offset so
 * data can be taken from the front without memmove on every write. */
#ifndef PX_BUF_H
#define PX_BUF_H

#include <stddef.h>

typedef struct {
    char *data;
    size_t off;   /* bytes already consumed from the front */
    size_t len;   /* bytes stored, including the consumed prefix */
    size_t cap;   /* allocated */
    size_t max;   /* hard limit on len - off (0 = unlimited) */
} px_buf_t;

void px_buf_init(px_buf_t *b, size_t max);
void px_buf_free(px_buf_t *b);
/* Appends; PX_ETOOBIG past max, PX_ENOMEM on allocation failure. */
int px_buf_append(px_buf_t *b, const void *p, size_t n);
int px_buf_printf(px_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Unread bytes. */
static inline const char *px_buf_ptr(const px_buf_t *b) { return b->data + b->off; }
static inline size_t px_buf_size(const px_buf_t *b) { return b->len - b->off; }
/* Marks n bytes as read; resets to empty when everything is consumed. */
void px_buf_consume(px_buf_t *b, size_t n);
void px_buf_reset(px_buf_t *b);
/* Empties b for reuse: keeps its allocation up to keep bytes, frees a larger one. */
void px_buf_recycle(px_buf_t *b, size_t keep);
/* Ensures room for n more bytes and returns a pointer to it (then px_buf_commit). */
char *px_buf_reserve(px_buf_t *b, size_t n);
/* Free space at the end of at least `min` bytes (growing only when less is
 * left), its size in *avail: for reads that take what fits. */
char *px_buf_space(px_buf_t *b, size_t min, size_t *avail);
void px_buf_commit(px_buf_t *b, size_t n);

#endif
