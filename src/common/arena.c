/* arena.c — chunked bump allocator. */
#include "common/arena.h"

#include "common/mem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NU_ARENA_ALIGN         16u
#define NU_ARENA_DEFAULT_CHUNK (64u * 1024u)

struct nu_arena_chunk {
    struct nu_arena_chunk *next;
    size_t size; /* usable bytes in data[] */
    size_t used;
    _Alignas(16) unsigned char data[];
};

struct nu_arena {
    struct nu_arena_chunk *head; /* current chunk; older ones follow */
    size_t chunk_size;
    size_t used;
};

static struct nu_arena_chunk *nu_arena_chunk_new(size_t size)
{
    struct nu_arena_chunk *c = nu_xmalloc(sizeof(*c) + size);
    c->next = NULL;
    c->size = size;
    c->used = 0;
    return c;
}

nu_arena_t *nu_arena_new(size_t chunk_size)
{
    nu_arena_t *a = nu_xcalloc(1, sizeof(*a));
    a->chunk_size = chunk_size ? chunk_size : NU_ARENA_DEFAULT_CHUNK;
    a->head = nu_arena_chunk_new(a->chunk_size);
    return a;
}

void nu_arena_destroy(nu_arena_t *a)
{
    if (!a)
        return;
    struct nu_arena_chunk *c = a->head;
    while (c) {
        struct nu_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    free(a);
}

void *nu_arena_alloc(nu_arena_t *a, size_t n)
{
    size_t need = (n + NU_ARENA_ALIGN - 1) & ~(size_t)(NU_ARENA_ALIGN - 1);
    if (need < n)
        need = n; /* overflow: let the chunk allocation below fail loudly */
    struct nu_arena_chunk *c = a->head;
    if (c->size - c->used < need) {
        size_t size = need > a->chunk_size ? need : a->chunk_size;
        c = nu_arena_chunk_new(size);
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += need;
    a->used += need;
    return p;
}

void *nu_arena_calloc(nu_arena_t *a, size_t n)
{
    void *p = nu_arena_alloc(a, n);
    memset(p, 0, n);
    return p;
}

char *nu_arena_strndup(nu_arena_t *a, const char *s, size_t n)
{
    char *p = nu_arena_alloc(a, n + 1);
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *nu_arena_strdup(nu_arena_t *a, const char *s)
{
    return nu_arena_strndup(a, s, strlen(s));
}

void *nu_arena_realloc(nu_arena_t *a, void *old, size_t old_n, size_t new_n)
{
    void *p = nu_arena_alloc(a, new_n);
    if (old && old_n)
        memcpy(p, old, old_n < new_n ? old_n : new_n);
    return p;
}

void nu_arena_reset(nu_arena_t *a)
{
    struct nu_arena_chunk *c = a->head;
    /* keep the oldest chunk (the one of the configured size), free the rest */
    while (c->next) {
        struct nu_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    c->used = 0;
    a->head = c;
    a->used = 0;
}

size_t nu_arena_used(const nu_arena_t *a)
{
    return a->used;
}
