/*
 * buf.h — a growable byte buffer that callers reuse across splits (layer: common).
 *
 * Encoders write into a struct nu_buf; resetting it keeps the capacity, so a stage that encodes
 * one split after another stops allocating once the buffer has reached its working size.
 *
 * Ownership: the buffer owns `data`; nu_buf_free() releases it (and leaves an empty buffer that
 * may be used again). Pointers into `data` are valid until the next call that may grow the
 * buffer. Growth aborts on memory exhaustion (see mem.h); sizes from input must be checked by the
 * caller before growing. Not thread-safe: one owner thread.
 */
#ifndef NU_COMMON_BUF_H
#define NU_COMMON_BUF_H

#include <stddef.h>
#include <string.h>

struct nu_buf {
    unsigned char *data; /* owned; NULL while cap == 0 */
    size_t len;
    size_t cap;
};

#define NU_BUF_INIT \
    {               \
        NULL, 0, 0  \
    }

/* Release the memory; the buffer is empty and reusable afterwards. Accepts NULL. */
void nu_buf_free(struct nu_buf *b);
/* Grow the capacity so that `extra` more bytes fit after len (slow path of nu_buf_reserve). */
void nu_buf_grow(struct nu_buf *b, size_t extra);

/* Drop the contents, keep the capacity. */
static inline void nu_buf_reset(struct nu_buf *b)
{
    b->len = 0;
}

/* Make room for `extra` more bytes; returns a pointer to the first free byte. */
static inline unsigned char *nu_buf_reserve(struct nu_buf *b, size_t extra)
{
    if (b->cap - b->len < extra)
        nu_buf_grow(b, extra);
    return b->data + b->len;
}

static inline void nu_buf_append(struct nu_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    memcpy(nu_buf_reserve(b, n), p, n);
    b->len += n;
}

static inline void nu_buf_putc(struct nu_buf *b, unsigned char c)
{
    *nu_buf_reserve(b, 1) = c;
    b->len++;
}

#endif
