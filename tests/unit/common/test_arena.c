/* Tests of src/common/arena.c. */
#include "common/arena.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

Test(arena, allocations_are_aligned_and_distinct)
{
    nu_arena_t *a = nu_arena_new(128);
    char *p1 = nu_arena_alloc(a, 3), *p2 = nu_arena_alloc(a, 5);
    cr_assert_eq((uintptr_t)p1 % 16, 0);
    cr_assert_eq((uintptr_t)p2 % 16, 0);
    cr_assert(p2 >= p1 + 3);
    /* larger than a chunk */
    char *big = nu_arena_alloc(a, 10000);
    memset(big, 7, 10000);
    cr_assert_eq(big[9999], 7);
    cr_assert_geq(nu_arena_used(a), 10000 + 32);
    nu_arena_destroy(a);
}

Test(arena, reset_reuses_memory)
{
    nu_arena_t *a = nu_arena_new(1024);
    char *s = nu_arena_strdup(a, "hello");
    cr_assert_str_eq(s, "hello");
    for (int i = 0; i < 100; i++)
        nu_arena_alloc(a, 512);
    nu_arena_reset(a);
    cr_assert_eq(nu_arena_used(a), 0);
    char *t = nu_arena_alloc(a, 16);
    cr_assert_eq(t, s, "first chunk is reused after reset");
    nu_arena_destroy(a);
}

Test(arena, realloc_and_strndup)
{
    nu_arena_t *a = nu_arena_new(0);
    int *v = nu_arena_alloc(a, 4 * sizeof(int));
    for (int i = 0; i < 4; i++)
        v[i] = i;
    v = nu_arena_realloc(a, v, 4 * sizeof(int), 8 * sizeof(int));
    for (int i = 0; i < 4; i++)
        cr_assert_eq(v[i], i);
    char *s = nu_arena_strndup(a, "abcdef", 3);
    cr_assert_str_eq(s, "abc");
    char *z = nu_arena_calloc(a, 64);
    for (int i = 0; i < 64; i++)
        cr_assert_eq(z[i], 0);
    nu_arena_destroy(a);
    nu_arena_destroy(NULL);
}
