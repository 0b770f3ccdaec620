/* mem.c — allocation wrappers that abort on exhaustion. */
#include "common/mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void nu_oom(size_t n)
{
    fprintf(stderr, "nurion: out of memory (allocating %zu bytes)\n", n);
    abort();
}

void *nu_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        nu_oom(n);
    return p;
}

void *nu_xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        nu_oom(count * size);
    return p;
}

void *nu_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        nu_oom(n);
    return q;
}

char *nu_xstrdup(const char *s)
{
    return nu_xstrndup(s, strlen(s));
}

char *nu_xstrndup(const char *s, size_t n)
{
    char *p = nu_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *nu_xasprintf(const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (len < 0)
        len = 0;
    char *s = nu_xmalloc((size_t)len + 1);
    vsnprintf(s, (size_t)len + 1, fmt, ap2);
    va_end(ap2);
    return s;
}
