/* problems.c — validation problem lists. */
#include "common/problems.h"

#include "common/mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void nu_problems_init(struct nu_problems *p)
{
    p->n = p->cap = 0;
    p->items = NULL;
}

void nu_problems_free(struct nu_problems *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++) {
        free(p->items[i].path);
        free(p->items[i].message);
    }
    free(p->items);
    nu_problems_init(p);
}

void nu_problems_add(struct nu_problems *p, const char *path, const char *fmt, ...)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 8;
        p->items = nu_xrealloc(p->items, p->cap * sizeof(*p->items));
    }
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *msg = nu_xmalloc(len > 0 ? (size_t)len + 1 : 1);
    vsnprintf(msg, len > 0 ? (size_t)len + 1 : 1, fmt, ap2);
    va_end(ap2);
    p->items[p->n].path = nu_xstrdup(path ? path : "$");
    p->items[p->n].message = msg;
    p->n++;
}
