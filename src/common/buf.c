/* buf.c — growable byte buffer. */
#include "common/buf.h"

#include "common/mem.h"

#include <stdio.h>
#include <stdlib.h>

void nu_buf_free(struct nu_buf *b)
{
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void nu_buf_grow(struct nu_buf *b, size_t extra)
{
    if (extra > (size_t)-1 - b->len) {
        fprintf(stderr, "nurion: buffer size overflow\n");
        abort();
    }
    size_t need = b->len + extra;
    size_t ncap = b->cap ? b->cap : 256;
    while (ncap < need)
        ncap = ncap > ((size_t)-1) / 2 ? need : ncap * 2;
    b->data = nu_xrealloc(b->data, ncap);
    b->cap = ncap;
}
