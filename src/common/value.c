/* value.c — schemas, batches and values. */
#include "common/value.h"

#include "common/mem.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *nu_type_name(nu_type_t t)
{
    switch (t) {
    case NU_T_NULL:
        return "null";
    case NU_T_BOOL:
        return "boolean";
    case NU_T_INT64:
        return "int64";
    case NU_T_DOUBLE:
        return "double";
    case NU_T_STRING:
        return "string";
    case NU_T_BYTES:
        return "bytes";
    case NU_T_ARRAY:
        return "array";
    case NU_T_MAP:
        return "map";
    }
    return "unknown";
}

struct nu_schema *nu_schema_new(size_t ncols)
{
    struct nu_schema *s = nu_xcalloc(1, sizeof(*s));
    s->ncols = ncols;
    s->cols = nu_xcalloc(ncols ? ncols : 1, sizeof(*s->cols));
    s->refcnt = 1;
    return s;
}

void nu_field_free(struct nu_field *f)
{
    if (!f)
        return;
    free(f->name);
    f->name = NULL;
    if (f->item) {
        nu_field_free(f->item);
        free(f->item);
        f->item = NULL;
    }
}

void nu_field_copy(struct nu_field *dst, const struct nu_field *src)
{
    dst->name = src->name ? nu_xstrdup(src->name) : NULL;
    dst->type = src->type;
    dst->nullable = src->nullable;
    dst->item = NULL;
    if (src->item) {
        dst->item = nu_xcalloc(1, sizeof(*dst->item));
        nu_field_copy(dst->item, src->item);
    }
}

void nu_schema_set(struct nu_schema *s, size_t i, const char *name, nu_type_t type, bool nullable,
                   const struct nu_field *item)
{
    struct nu_field *f = &s->cols[i];
    nu_field_free(f);
    f->name = name ? nu_xstrdup(name) : NULL;
    f->type = type;
    f->nullable = nullable;
    if (item) {
        f->item = nu_xcalloc(1, sizeof(*f->item));
        nu_field_copy(f->item, item);
    }
}

struct nu_schema *nu_schema_ref(struct nu_schema *s)
{
    s->refcnt++;
    return s;
}

void nu_schema_unref(struct nu_schema *s)
{
    if (!s || --s->refcnt > 0)
        return;
    for (size_t i = 0; i < s->ncols; i++)
        nu_field_free(&s->cols[i]);
    free(s->cols);
    free(s);
}

long nu_schema_find(const struct nu_schema *s, const char *name)
{
    for (size_t i = 0; i < s->ncols; i++)
        if (s->cols[i].name && strcmp(s->cols[i].name, name) == 0)
            return (long)i;
    return -1;
}

static bool nu_field_equal(const struct nu_field *a, const struct nu_field *b)
{
    if (a->type != b->type || a->nullable != b->nullable)
        return false;
    if ((a->name == NULL) != (b->name == NULL))
        return false;
    if (a->name && strcmp(a->name, b->name) != 0)
        return false;
    if ((a->item == NULL) != (b->item == NULL))
        return false;
    return !a->item || nu_field_equal(a->item, b->item);
}

bool nu_schema_equal(const struct nu_schema *a, const struct nu_schema *b)
{
    if (a == b)
        return true;
    if (a->ncols != b->ncols)
        return false;
    for (size_t i = 0; i < a->ncols; i++)
        if (!nu_field_equal(&a->cols[i], &b->cols[i]))
            return false;
    return true;
}

struct nu_batch *nu_batch_new(struct nu_schema *schema, size_t cap_hint)
{
    struct nu_batch *b = nu_xcalloc(1, sizeof(*b));
    b->schema = nu_schema_ref(schema);
    b->arena = nu_arena_new(0);
    b->cap = cap_hint ? cap_hint : 16;
    b->vals = nu_arena_alloc(b->arena, b->cap * (schema->ncols ? schema->ncols : 1) *
                                           sizeof(struct nu_value));
    return b;
}

void nu_batch_destroy(struct nu_batch *b)
{
    if (!b)
        return;
    nu_schema_unref(b->schema);
    nu_arena_destroy(b->arena);
    free(b);
}

struct nu_value *nu_batch_add_row(struct nu_batch *b)
{
    size_t ncols = b->schema->ncols;
    if (b->nrows == b->cap) {
        size_t ncap = b->cap * 2;
        b->vals = nu_arena_realloc(b->arena, b->vals, b->cap * ncols * sizeof(struct nu_value),
                                   ncap * ncols * sizeof(struct nu_value));
        b->cap = ncap;
    }
    struct nu_value *row = b->vals + b->nrows * ncols;
    memset(row, 0, ncols * sizeof(*row)); /* NU_T_NULL == 0 */
    b->nrows++;
    return row;
}

void *nu_batch_alloc(struct nu_batch *b, size_t n)
{
    return nu_arena_alloc(b->arena, n);
}

struct nu_value nu_batch_str(struct nu_batch *b, nu_type_t type, const char *p, size_t len)
{
    return nu_value_view(type, nu_arena_strndup(b->arena, p, len), len);
}

struct nu_value nu_batch_copy_value(struct nu_batch *b, const struct nu_value *src)
{
    struct nu_value v = *src;
    switch (src->type) {
    case NU_T_STRING:
    case NU_T_BYTES:
        return nu_batch_str(b, src->type, src->u.s.ptr, src->u.s.len);
    case NU_T_ARRAY:
        v.u.arr.items = nu_arena_alloc(b->arena, src->u.arr.n * sizeof(struct nu_value) + 1);
        for (size_t i = 0; i < src->u.arr.n; i++)
            v.u.arr.items[i] = nu_batch_copy_value(b, &src->u.arr.items[i]);
        return v;
    case NU_T_MAP:
        v.u.map.keys = nu_arena_alloc(b->arena, src->u.map.n * sizeof(struct nu_value) + 1);
        v.u.map.vals = nu_arena_alloc(b->arena, src->u.map.n * sizeof(struct nu_value) + 1);
        for (size_t i = 0; i < src->u.map.n; i++) {
            v.u.map.keys[i] = nu_batch_copy_value(b, &src->u.map.keys[i]);
            v.u.map.vals[i] = nu_batch_copy_value(b, &src->u.map.vals[i]);
        }
        return v;
    default:
        return v;
    }
}

size_t nu_value_size(const struct nu_value *v)
{
    size_t n = 0;
    switch (v->type) {
    case NU_T_NULL:
        return 1;
    case NU_T_BOOL:
        return 1;
    case NU_T_INT64:
    case NU_T_DOUBLE:
        return 8;
    case NU_T_STRING:
    case NU_T_BYTES:
        return v->u.s.len + 4;
    case NU_T_ARRAY:
        for (size_t i = 0; i < v->u.arr.n; i++)
            n += nu_value_size(&v->u.arr.items[i]);
        return n + 4;
    case NU_T_MAP:
        for (size_t i = 0; i < v->u.map.n; i++)
            n += nu_value_size(&v->u.map.keys[i]) + nu_value_size(&v->u.map.vals[i]);
        return n + 4;
    }
    return n;
}

bool nu_value_equal(const struct nu_value *a, const struct nu_value *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case NU_T_NULL:
        return true;
    case NU_T_BOOL:
        return a->u.b == b->u.b;
    case NU_T_INT64:
        return a->u.i == b->u.i;
    case NU_T_DOUBLE:
        return a->u.d == b->u.d || (isnan(a->u.d) && isnan(b->u.d));
    case NU_T_STRING:
    case NU_T_BYTES:
        return a->u.s.len == b->u.s.len &&
               (a->u.s.len == 0 || memcmp(a->u.s.ptr, b->u.s.ptr, a->u.s.len) == 0);
    case NU_T_ARRAY:
        if (a->u.arr.n != b->u.arr.n)
            return false;
        for (size_t i = 0; i < a->u.arr.n; i++)
            if (!nu_value_equal(&a->u.arr.items[i], &b->u.arr.items[i]))
                return false;
        return true;
    case NU_T_MAP:
        if (a->u.map.n != b->u.map.n)
            return false;
        for (size_t i = 0; i < a->u.map.n; i++)
            if (!nu_value_equal(&a->u.map.keys[i], &b->u.map.keys[i]) ||
                !nu_value_equal(&a->u.map.vals[i], &b->u.map.vals[i]))
                return false;
        return true;
    }
    return false;
}
