/*
 * mem.h — allocation wrappers (layer: common).
 *
 * Small allocations go through these; they abort the process with a message on exhaustion,
 * because nothing sensible can continue without memory. Any size that comes from input must be
 * checked against a named limit *before* calling them. Thread-safe.
 */
#ifndef NU_COMMON_MEM_H
#define NU_COMMON_MEM_H

#include <stddef.h>

void *nu_xmalloc(size_t n);
void *nu_xcalloc(size_t count, size_t size);
void *nu_xrealloc(void *p, size_t n);
char *nu_xstrdup(const char *s);
char *nu_xstrndup(const char *s, size_t n);
/* malloc'ed, formatted string (like asprintf); aborts on exhaustion. */
char *nu_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
