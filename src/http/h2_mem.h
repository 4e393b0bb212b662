/* nghttp2's allocator for the worker's sessions (client h2 and h2c).
 *
 * Every proxied HTTP/2 request makes nghttp2 allocate about five small
 * blocks (its stream, two outbound items, the copied response fields, a
 * header buffer) and free them again. Bursts of streams overflow glibc's
 * per-thread cache, so these went through its slower bins. Here freed
 * blocks of up to 1 KiB wait in a few per-thread lists (bounded, given
 * back by px_h2_mem_trim), sorted by what malloc_usable_size says they
 * hold: at most 256 of each of three classes (64, 256, 1024 bytes) per
 * worker. Sanitizer and fuzzing builds use nghttp2's default (plain
 * malloc), so that a use after free is still seen. */
#ifndef PX_HTTP_H2_MEM_H
#define PX_HTTP_H2_MEM_H

#include <nghttp2/nghttp2.h>

/* The allocator for nghttp2_session_*_new3 (NULL: nghttp2's default). */
nghttp2_mem *px_h2_mem(void);

/* Frees the calling thread's kept blocks. */
void px_h2_mem_trim(void);

#endif
