/*
 * arena.h — bump allocator for memory with one lifetime (layer: common).
 *
 * The stage loop owns one arena per batch; operators allocate scratch from it, and everything is
 * released at once by nu_arena_reset(). Anything that must outlive the batch is copied out
 * explicitly. Allocations are 16-byte aligned. Not thread-safe: one owner thread.
 */
#ifndef NU_COMMON_ARENA_H
#define NU_COMMON_ARENA_H

#include <stddef.h>

typedef struct nu_arena nu_arena_t;

/* A new arena whose chunks are at least `chunk_size` bytes (0: 64 KiB). Returned owned. */
nu_arena_t *nu_arena_new(size_t chunk_size);
/* Frees the arena and everything allocated from it. Accepts NULL. */
void nu_arena_destroy(nu_arena_t *a);

/* `n` bytes (uninitialised), valid until reset/destroy. Aborts on exhaustion. */
void *nu_arena_alloc(nu_arena_t *a, size_t n);
/* `n` zeroed bytes. */
void *nu_arena_calloc(nu_arena_t *a, size_t n);
/* Copy of `n` bytes plus a NUL terminator. */
char *nu_arena_strndup(nu_arena_t *a, const char *s, size_t n);
char *nu_arena_strdup(nu_arena_t *a, const char *s);
/* Grow an allocation made from this arena (copies; the old block stays until reset). */
void *nu_arena_realloc(nu_arena_t *a, void *old, size_t old_n, size_t new_n);

/* Release every allocation; keeps the first chunk for reuse. */
void nu_arena_reset(nu_arena_t *a);
/* Bytes handed out since the last reset (for accounting of in-flight memory). */
size_t nu_arena_used(const nu_arena_t *a);

#endif
