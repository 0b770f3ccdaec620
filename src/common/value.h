/*
 * value.h — the row model shared by codecs, expressions and operators (layer: common).
 *
 * A split carries one batch: a schema (ordered, named, typed columns) and rows of values.
 * Values are tagged; strings and bytes are (pointer, length) views whose memory lives in the
 * batch that holds them. Arrays hold values of one item type; maps have string keys and values
 * of one item type.
 *
 * Lifetimes: a schema is a heap object with a reference count (nu_schema_ref/unref); a batch holds
 * one reference to its schema and owns an arena from which all its row data is allocated, so
 * nu_batch_destroy() releases everything. Neither is thread-safe; the refcount is not atomic (a
 * schema is shared only within one thread — copy it to cross threads).
 */
#ifndef NU_COMMON_VALUE_H
#define NU_COMMON_VALUE_H

#include "common/arena.h"
#include "common/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum nu_type {
    NU_T_NULL = 0, /* the value is null (as a column type: always-null column) */
    NU_T_BOOL,
    NU_T_INT64,
    NU_T_DOUBLE,
    NU_T_STRING, /* UTF-8 text */
    NU_T_BYTES,  /* opaque binary */
    NU_T_ARRAY,
    NU_T_MAP, /* string keys */
} nu_type_t;

/* Limits on untrusted input (codecs and specs check against these before allocating). */
#define NU_MAX_COLUMNS  4096
#define NU_MAX_NAME_LEN 256
#define NU_MAX_NESTING  32

/* A column type: kind, nullability and, for arrays and maps, the item type (owned). */
struct nu_field {
    char *name; /* owned; NULL for an item type */
    nu_type_t type;
    bool nullable;
    struct nu_field *item; /* owned; ARRAY item / MAP value type, else NULL */
};

struct nu_schema {
    size_t ncols;
    struct nu_field *cols; /* owned array of ncols */
    unsigned refcnt;
};

struct nu_value {
    nu_type_t type; /* NU_T_NULL for a null of any column type */
    union {
        bool b;
        int64_t i;
        double d;
        struct {
            const char *ptr; /* not necessarily NUL-terminated */
            size_t len;
        } s; /* STRING, BYTES */
        struct {
            struct nu_value *items;
            size_t n;
        } arr;
        struct {
            struct nu_value *keys; /* each NU_T_STRING */
            struct nu_value *vals;
            size_t n;
        } map;
    } u;
};

struct nu_batch {
    struct nu_schema *schema; /* one reference held */
    size_t nrows;
    size_t cap;
    struct nu_value *vals; /* nrows * schema->ncols, row-major */
    nu_arena_t *arena;     /* owns vals and all string/array memory */
};

const char *nu_type_name(nu_type_t t);

/* --- schema --- */

/* New schema of `ncols` columns, all NU_T_NULL and unnamed; refcount 1. Returned owned. */
struct nu_schema *nu_schema_new(size_t ncols);
/* Set column `i`: copies `name`; type/nullable; item type for arrays and maps (copied, may be
 * NULL otherwise). */
void nu_schema_set(struct nu_schema *s, size_t i, const char *name, nu_type_t type, bool nullable,
                   const struct nu_field *item);
struct nu_schema *nu_schema_ref(struct nu_schema *s);
void nu_schema_unref(struct nu_schema *s); /* accepts NULL */
/* Index of column `name`, or -1. */
long nu_schema_find(const struct nu_schema *s, const char *name);
bool nu_schema_equal(const struct nu_schema *a, const struct nu_schema *b);
/* Deep copy of a field into `dst` (dst owns the copies). */
void nu_field_copy(struct nu_field *dst, const struct nu_field *src);
void nu_field_free(struct nu_field *f); /* frees what the field owns, not f itself */

/* --- batch --- */

/* Empty batch over `schema` (a reference is taken) with room for `cap_hint` rows. */
struct nu_batch *nu_batch_new(struct nu_schema *schema, size_t cap_hint);
void nu_batch_destroy(struct nu_batch *b); /* accepts NULL */
/* Append a row of ncols null values and return it (valid until the next append). */
struct nu_value *nu_batch_add_row(struct nu_batch *b);
static inline struct nu_value *nu_batch_row(const struct nu_batch *b, size_t i)
{
    return b->vals + i * b->schema->ncols;
}
/* Memory that lives as long as the batch. */
void *nu_batch_alloc(struct nu_batch *b, size_t n);
/* A string/bytes value whose bytes are copied into the batch. */
struct nu_value nu_batch_str(struct nu_batch *b, nu_type_t type, const char *p, size_t len);
/* Deep copy of `src` (from any batch) into memory of batch `b`. */
struct nu_value nu_batch_copy_value(struct nu_batch *b, const struct nu_value *src);
/* Rough payload size in bytes (for batch-by-bytes and in-flight accounting). */
size_t nu_value_size(const struct nu_value *v);

/* --- scalar constructors --- */
static inline struct nu_value nu_value_null(void)
{
    struct nu_value v = {.type = NU_T_NULL};
    return v;
}
static inline struct nu_value nu_value_bool(bool b)
{
    struct nu_value v = {.type = NU_T_BOOL, .u.b = b};
    return v;
}
static inline struct nu_value nu_value_int(int64_t i)
{
    struct nu_value v = {.type = NU_T_INT64, .u.i = i};
    return v;
}
static inline struct nu_value nu_value_double(double d)
{
    struct nu_value v = {.type = NU_T_DOUBLE, .u.d = d};
    return v;
}
/* A view of existing bytes (not copied). */
static inline struct nu_value nu_value_view(nu_type_t type, const char *p, size_t len)
{
    struct nu_value v = {.type = type, .u.s = {p, len}};
    return v;
}

/* Structural equality (doubles compare by value; NaN equals NaN). */
bool nu_value_equal(const struct nu_value *a, const struct nu_value *b);

#endif
