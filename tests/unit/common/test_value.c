/* Tests of src/common/value.c: schemas, batches, deep copies, equality. */
#include "common/value.h"

#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

static struct nu_schema *two_cols(void)
{
    struct nu_schema *s = nu_schema_new(2);
    struct nu_field item = {.type = NU_T_INT64};
    nu_schema_set(s, 0, "id", NU_T_INT64, false, NULL);
    nu_schema_set(s, 1, "tags", NU_T_ARRAY, true, &item);
    return s;
}

Test(value, schema_find_and_equal)
{
    struct nu_schema *a = two_cols(), *b = two_cols();
    cr_assert_eq(nu_schema_find(a, "tags"), 1);
    cr_assert_eq(nu_schema_find(a, "nope"), -1);
    cr_assert(nu_schema_equal(a, b));
    nu_schema_set(b, 1, "tags", NU_T_ARRAY, false, &(struct nu_field){.type = NU_T_INT64});
    cr_assert_not(nu_schema_equal(a, b), "nullability differs");
    nu_schema_unref(a);
    nu_schema_unref(b);
}

Test(value, batch_grows_and_keeps_rows)
{
    struct nu_schema *s = two_cols();
    struct nu_batch *b = nu_batch_new(s, 1);
    nu_schema_unref(s); /* the batch holds its own reference */
    for (int64_t i = 0; i < 1000; i++) {
        struct nu_value *row = nu_batch_add_row(b);
        cr_assert_eq(row[1].type, NU_T_NULL);
        row[0] = nu_value_int(i);
    }
    cr_assert_eq(b->nrows, 1000);
    for (int64_t i = 0; i < 1000; i++)
        cr_assert_eq(nu_batch_row(b, (size_t)i)[0].u.i, i);
    nu_batch_destroy(b);
}

Test(value, deep_copy_is_independent_and_equal)
{
    struct nu_schema *s = two_cols();
    struct nu_batch *src = nu_batch_new(s, 4), *dst = nu_batch_new(s, 4);
    struct nu_value items[3] = {nu_value_int(1), nu_value_null(), nu_value_int(3)};
    struct nu_value arr = {.type = NU_T_ARRAY, .u.arr = {items, 3}};
    struct nu_value copy = nu_batch_copy_value(dst, &arr);
    cr_assert(nu_value_equal(&arr, &copy));
    cr_assert_neq(copy.u.arr.items, items);
    items[0] = nu_value_int(99);
    cr_assert_not(nu_value_equal(&arr, &copy));

    struct nu_value str = nu_batch_str(src, NU_T_STRING, "héllo\0x", 8);
    struct nu_value str2 = nu_batch_copy_value(dst, &str);
    cr_assert_eq(str2.u.s.len, 8);
    cr_assert_eq(memcmp(str2.u.s.ptr, "héllo\0x", 8), 0);
    cr_assert(nu_value_equal(&str, &str2));

    struct nu_value n1 = nu_value_double(NAN), n2 = nu_value_double(NAN);
    cr_assert(nu_value_equal(&n1, &n2));
    struct nu_value i1 = nu_value_int(1), d1 = nu_value_double(1.0);
    cr_assert_not(nu_value_equal(&i1, &d1), "types differ");
    nu_batch_destroy(src);
    nu_batch_destroy(dst);
    nu_schema_unref(s);
}

Test(value, type_names)
{
    cr_assert_str_eq(nu_type_name(NU_T_INT64), "int64");
    cr_assert_str_eq(nu_type_name(NU_T_MAP), "map");
    cr_assert_str_eq(nu_type_name((nu_type_t)42), "unknown");
}
