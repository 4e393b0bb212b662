/* nghttp2's allocator (src/http/h2_mem.c): kept blocks are handed out
 * again, zeroed when nghttp2 asks for calloc, never for more than they
 * hold; oversized requests and overflowing counts are refused or passed
 * to malloc. In sanitizer builds it is nghttp2's default (NULL). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <malloc.h>
#include <string.h>

#include "http/h2_mem.h"

static void test_blocks_come_back(void **state)
{
    nghttp2_mem *m = px_h2_mem();

    (void)state;
#if defined(PX_H2_MEM_PLAIN)
    assert_null(m);
    skip();
#else
    unsigned char *a, *b, *c;

    assert_non_null(m);
    a = m->malloc(152, m->mem_user_data);
    assert_non_null(a);
    memset(a, 0xa5, 152);
    m->free(a, m->mem_user_data);
    b = m->malloc(200, m->mem_user_data);       /* same class (up to 256 bytes) */
    assert_ptr_equal(b, a);
    assert_true(malloc_usable_size(b) >= 200);
    m->free(b, m->mem_user_data);
    c = m->calloc(5, 40, m->mem_user_data);     /* the dirty block, zeroed */
    assert_ptr_equal(c, a);
    for (int i = 0; i < 200; i++)
        assert_int_equal(c[i], 0);
    c = m->realloc(c, 4000, m->mem_user_data);  /* still malloc's own */
    assert_non_null(c);
    assert_int_equal(c[199], 0);
    m->free(c, m->mem_user_data);
    assert_null(m->calloc(SIZE_MAX / 2, 4, m->mem_user_data));
    a = m->malloc(60000, m->mem_user_data);     /* beyond the classes */
    assert_non_null(a);
    m->free(a, m->mem_user_data);
    m->free(NULL, m->mem_user_data);
    px_h2_mem_trim();
#endif
}

/* Blocks freed by thousands stay bounded and come back whole. */
static void test_many(void **state)
{
    nghttp2_mem *m = px_h2_mem();
    void *p[2000];

    (void)state;
    if (!m)
        skip();
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 2000; i++) {
            size_t n = (size_t)(1 + (i * 37) % 1100);
            p[i] = m->malloc(n, m->mem_user_data);
            assert_non_null(p[i]);
            assert_true(malloc_usable_size(p[i]) >= n);
            memset(p[i], 0x5a, n);
        }
        for (int i = 0; i < 2000; i++)
            m->free(p[i], m->mem_user_data);
    }
    px_h2_mem_trim();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blocks_come_back),
        cmocka_unit_test(test_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
