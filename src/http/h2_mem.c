/* nghttp2's allocator: small blocks kept per thread (h2_mem.h). */
#include "http/h2_mem.h"

#include <stdlib.h>
#include <string.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

/* CMake sets PX_H2_MEM_PLAIN for the sanitizer and fuzzing builds */
#if defined(__SANITIZE_ADDRESS__) || !defined(__GLIBC__)
#define PX_H2_MEM_PLAIN 1
#endif

#ifdef PX_H2_MEM_PLAIN

nghttp2_mem *px_h2_mem(void)
{
    return NULL;
}

void px_h2_mem_trim(void)
{
}

#else

#define CLASSES 3
#define KEEP 256                  /* blocks kept per class and thread: 256 streams' worth */

/* Class c holds blocks of at least class_size[c] usable bytes. */
static const size_t class_size[CLASSES] = { 64, 256, 1024 };

typedef struct {
    void *blocks[CLASSES][KEEP];
    int n[CLASSES];
} cache_t;

static _Thread_local cache_t cache;

/* The class an allocation of n bytes is served from, or -1 */
static int class_for(size_t n)
{
    for (int c = 0; c < CLASSES; c++)
        if (n <= class_size[c])
            return c;
    return -1;
}

static void *mem_malloc(size_t n, void *ud)
{
    int c = class_for(n);
    (void)ud;
    if (c < 0)
        return malloc(n);
    if (cache.n[c])
        return cache.blocks[c][--cache.n[c]];
    return malloc(class_size[c]);
}

static void mem_free(void *p, void *ud)
{
    size_t u;
    int c;
    (void)ud;
    if (!p)
        return;
    u = malloc_usable_size(p);
    /* the largest class it can serve; blocks of twice the top class and
     * more (frame buffers, grown tables) go back to malloc */
    for (c = CLASSES - 1; c >= 0 && u < class_size[c]; c--)
        ;
    if (c < 0 || u >= 2 * class_size[CLASSES - 1] || cache.n[c] == KEEP) {
        free(p);
        return;
    }
    cache.blocks[c][cache.n[c]++] = p;
}

static void *mem_calloc(size_t k, size_t n, void *ud)
{
    void *p;
    if (n && k > (size_t)-1 / n)
        return NULL;
    if ((p = mem_malloc(k * n, ud)))
        memset(p, 0, k * n);
    return p;
}

static void *mem_realloc(void *p, size_t n, void *ud)
{
    (void)ud;
    return realloc(p, n);        /* a block from the lists is malloc's own */
}

static nghttp2_mem mem = { NULL, mem_malloc, mem_free, mem_calloc, mem_realloc };

nghttp2_mem *px_h2_mem(void)
{
    return &mem;
}

void px_h2_mem_trim(void)
{
    for (int c = 0; c < CLASSES; c++)
        while (cache.n[c])
            free(cache.blocks[c][--cache.n[c]]);
}

#endif
