/* Tests of the split codec (src/common/codec*.c): round trips in both formats, corrupt input,
 * schema handling, the cache, and compatibility with Avro C in both directions. */
#include "common/codec.h"

#include <avro.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct nu_field F(nu_type_t t, bool nullable, struct nu_field *item) {
    struct nu_field f = {NULL, t, nullable, item};
    return f;
}

/* Every column type, all nullable, plus a name that is not a valid Avro name. */
static struct nu_schema *
all_types_schema(void)
{
    struct nu_field i64 = F(NU_T_INT64, true, NULL), str = F(NU_T_STRING, false, NULL);
    struct nu_field dbl = F(NU_T_DOUBLE, false, NULL), adbl = F(NU_T_ARRAY, false, &dbl);
    struct nu_schema *s = nu_schema_new(10);
    nu_schema_set(s, 0, "b", NU_T_BOOL, true, NULL);
    nu_schema_set(s, 1, "i", NU_T_INT64, true, NULL);
    nu_schema_set(s, 2, "d", NU_T_DOUBLE, true, NULL);
    nu_schema_set(s, 3, "s", NU_T_STRING, true, NULL);
    nu_schema_set(s, 4, "y", NU_T_BYTES, true, NULL);
    nu_schema_set(s, 5, "a", NU_T_ARRAY, true, &i64);
    nu_schema_set(s, 6, "m", NU_T_MAP, true, &str);
    nu_schema_set(s, 7, "nested", NU_T_ARRAY, true, &adbl);
    nu_schema_set(s, 8, "weird name-1", NU_T_STRING, true, NULL);
    nu_schema_set(s, 9, "weird_name_1", NU_T_NULL, false, NULL);
    return s;
}

static struct nu_value arr_of(struct nu_batch *b, size_t n, const struct nu_value *items)
{
    struct nu_value v = {.type = NU_T_ARRAY};
    v.u.arr.n = n;
    v.u.arr.items = nu_batch_alloc(b, n * sizeof(*items) + 1);
    memcpy(v.u.arr.items, items, n * sizeof(*items));
    return v;
}

static struct nu_batch *all_types_batch(void)
{
    struct nu_schema *s = all_types_schema();
    struct nu_batch *b = nu_batch_new(s, 4);
    nu_schema_unref(s);
    static const char bin[] = {'a', 0, 'b', (char)0xff, 0};
    static const char *uni = "héllo, 世界 🎉 \"q\" \\ \n\t\x01";
    double ds[] = {0.1, -1e308, 5e-324, 1.0, NAN, INFINITY, -INFINITY, 123456789.123456789};
    int64_t is[] = {0, -1, INT64_MIN, INT64_MAX, 42, 1LL << 40, -300, 7};
    for (size_t r = 0; r < 8; r++) {
        struct nu_value *row = nu_batch_add_row(b);
        if (r == 3)
            continue; /* a row of nulls in every column */
        row[0] = nu_value_bool(r % 2);
        row[1] = nu_value_int(is[r]);
        row[2] = nu_value_double(ds[r]);
        row[3] = nu_batch_str(b, NU_T_STRING, uni, strlen(uni) - r);
        row[4] = nu_batch_str(b, NU_T_BYTES, bin, r % sizeof(bin));
        struct nu_value it[3] = {nu_value_int((int64_t)r), nu_value_null(), nu_value_int(-5)};
        row[5] = arr_of(b, r % 4, it);
        row[6].type = NU_T_MAP;
        row[6].u.map.n = r % 3;
        row[6].u.map.keys = nu_batch_alloc(b, 2 * sizeof(struct nu_value));
        row[6].u.map.vals = nu_batch_alloc(b, 2 * sizeof(struct nu_value));
        for (size_t k = 0; k < row[6].u.map.n; k++) {
            row[6].u.map.keys[k] = nu_batch_str(b, NU_T_STRING, k ? "k2" : "k é", k ? 2 : 4);
            row[6].u.map.vals[k] = nu_batch_str(b, NU_T_STRING, "v", 1);
        }
        struct nu_value inner[2] = {nu_value_double(1.5), nu_value_double(-2.25)};
        struct nu_value outer[2] = {arr_of(b, 2, inner), arr_of(b, 0, inner)};
        row[7] = arr_of(b, r % 3, outer);
        row[8] = r % 2 ? nu_batch_str(b, NU_T_STRING, "", 0) : nu_value_null();
    }
    return b;
}

static void assert_batches_equal(const struct nu_batch *a, const struct nu_batch *b)
{
    cr_assert(nu_schema_equal(a->schema, b->schema), "schemas differ");
    cr_assert_eq(a->nrows, b->nrows);
    for (size_t r = 0; r < a->nrows; r++)
        for (size_t c = 0; c < a->schema->ncols; c++)
            cr_assert(nu_value_equal(&nu_batch_row(a, r)[c], &nu_batch_row(b, r)[c]),
                      "row %zu column %s differs", r, a->schema->cols[c].name);
}

/* Encode with `o`, decode (hint = compact schema for json), and compare. */
static void round_trip(const struct nu_codec_opts *o, const struct nu_batch *b)
{
    struct nu_buf out = NU_BUF_INIT, hint = NU_BUF_INIT;
    struct nu_errbuf eb = {0};
    struct nu_batch *d = NULL;
    cr_assert_eq(nu_codec_encode(o, b, &out, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(nu_schema_to_json(b->schema, &hint, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(nu_codec_decode(o->format, out.data, out.len, (char *)hint.data, &d, &eb), NU_OK,
                 "%s", nu_err_msg(&eb));
    assert_batches_equal(b, d);
    nu_batch_destroy(d);
    nu_buf_free(&out);
    nu_buf_free(&hint);
}

static const struct nu_codec_opts opt_cases[] = {
    {.format = NU_FORMAT_AVRO},
    {.format = NU_FORMAT_AVRO, .deflate = true, .deflate_level = 6},
    {.format = NU_FORMAT_AVRO, .block_rows = 3},
    {.format = NU_FORMAT_AVRO, .deflate = true, .block_rows = 2},
    {.format = NU_FORMAT_JSON},
};
#define NCASES (sizeof(opt_cases) / sizeof(opt_cases[0]))

Test(codec, round_trip_all_types_nulls_unicode_nested)
{
    struct nu_batch *b = all_types_batch();
    for (size_t i = 0; i < NCASES; i++)
        round_trip(&opt_cases[i], b);
    nu_batch_destroy(b);
}

Test(codec, round_trip_empty_batch)
{
    struct nu_schema *s = all_types_schema();
    struct nu_batch *b = nu_batch_new(s, 0);
    nu_schema_unref(s);
    for (size_t i = 0; i < NCASES; i++)
        round_trip(&opt_cases[i], b);
    nu_batch_destroy(b);
}

Test(codec, round_trip_one_megabyte_rows_and_ten_thousand_rows)
{
    struct nu_schema *s = nu_schema_new(3);
    nu_schema_set(s, 0, "id", NU_T_INT64, false, NULL);
    nu_schema_set(s, 1, "x", NU_T_DOUBLE, false, NULL);
    nu_schema_set(s, 2, "blob", NU_T_BYTES, false, NULL);
    struct nu_batch *big = nu_batch_new(s, 2), *many = nu_batch_new(s, 10000);
    char *mb = malloc(1 << 20);
    for (size_t i = 0; i < (1 << 20); i++)
        mb[i] = (char)(i * 2654435761u >> 13);
    for (int r = 0; r < 2; r++) {
        struct nu_value *row = nu_batch_add_row(big);
        row[0] = nu_value_int(r);
        row[1] = nu_value_double(r / 3.0);
        row[2] = nu_batch_str(big, NU_T_BYTES, mb, 1 << 20);
    }
    for (int r = 0; r < 10000; r++) {
        struct nu_value *row = nu_batch_add_row(many);
        row[0] = nu_value_int(r * 1000003LL);
        row[1] = nu_value_double(r * 0.001);
        row[2] = nu_batch_str(many, NU_T_BYTES, mb + r, (size_t)(r % 50));
    }
    for (size_t i = 0; i < NCASES; i++) {
        round_trip(&opt_cases[i], big);
        round_trip(&opt_cases[i], many);
    }
    free(mb);
    nu_schema_unref(s);
    nu_batch_destroy(big);
    nu_batch_destroy(many);
}

Test(codec, avro_output_is_deterministic_and_data_dependent)
{
    struct nu_batch *b = all_types_batch();
    struct nu_codec_opts o = {.format = NU_FORMAT_AVRO};
    struct nu_buf x = NU_BUF_INIT, y = NU_BUF_INIT;
    struct nu_errbuf eb = {0};
    cr_assert_eq(nu_codec_encode(&o, b, &x, &eb), NU_OK);
    cr_assert_eq(nu_codec_encode(&o, b, &y, &eb), NU_OK);
    cr_assert_eq(x.len, y.len);
    cr_assert(memcmp(x.data, y.data, x.len) == 0);
    nu_batch_row(b, 0)[1] = nu_value_int(99);
    cr_assert_eq(nu_codec_encode(&o, b, &y, &eb), NU_OK);
    /* the sync marker (last 16 bytes) follows the data */
    cr_assert(memcmp(x.data + x.len - 16, y.data + y.len - 16, 16) != 0);
    nu_buf_free(&x);
    nu_buf_free(&y);
    nu_batch_destroy(b);
}

Test(codec, json_lines_text_and_inference_without_hint)
{
    struct nu_schema *s = nu_schema_new(3);
    nu_schema_set(s, 0, "id", NU_T_INT64, false, NULL);
    nu_schema_set(s, 1, "x", NU_T_DOUBLE, true, NULL);
    nu_schema_set(s, 2, "y", NU_T_BYTES, false, NULL);
    struct nu_batch *b = nu_batch_new(s, 2);
    nu_schema_unref(s);
    struct nu_value *row = nu_batch_add_row(b);
    row[0] = nu_value_int(-7), row[1] = nu_value_double(2.0);
    row[2] = nu_batch_str(b, NU_T_BYTES, "\0\1", 2);
    row = nu_batch_add_row(b);
    row[0] = nu_value_int(1), row[1] = nu_value_double(NAN);
    row[2] = nu_batch_str(b, NU_T_BYTES, "abc", 3);
    struct nu_codec_opts o = {.format = NU_FORMAT_JSON};
    struct nu_buf out = NU_BUF_INIT;
    struct nu_errbuf eb = {0};
    cr_assert_eq(nu_codec_encode(&o, b, &out, &eb), NU_OK);
    const char *want =
        "{\"id\":-7,\"x\":2.0,\"y\":\"AAE=\"}\n{\"id\":1,\"x\":\"NaN\",\"y\":\"YWJj\"}\n";
    cr_assert_eq(out.len, strlen(want));
    cr_assert(memcmp(out.data, want, out.len) == 0, "%.*s", (int)out.len, out.data);
    nu_buf_free(&out);
    nu_batch_destroy(b);

    const char *text = "{\"a\":1,\"b\":\"x\",\"c\":[1,2.5]}\n\n{\"a\":2.5,\"c\":[],\"d\":null}\n";
    struct nu_batch *d = NULL;
    cr_assert_eq(nu_codec_decode(NU_FORMAT_JSON, text, strlen(text), NULL, &d, &eb), NU_OK, "%s",
                 nu_err_msg(&eb));
    struct nu_buf sj = NU_BUF_INIT;
    cr_assert_eq(nu_schema_to_json(d->schema, &sj, &eb), NU_OK);
    cr_assert_str_eq((char *)sj.data,
                     "[[\"a\",\"double\"],[\"b\",\"string?\"],[\"c\",\"array<double>\"],"
                     "[\"d\",\"null\"]]");
    cr_assert_eq(d->nrows, 2);
    cr_assert_eq(nu_batch_row(d, 0)[0].u.d, 1.0);
    cr_assert_eq(nu_batch_row(d, 1)[1].type, NU_T_NULL);
    nu_buf_free(&sj);
    nu_batch_destroy(d);
}

static void expect_decode_error(nu_format_t f, const void *p, size_t n, const char *hint,
                                nu_err_t code, const char *needle)
{
    struct nu_errbuf eb = {0};
    struct nu_batch *d = (struct nu_batch *)1;
    cr_assert_eq(nu_codec_decode(f, p, n, hint, &d, &eb), code, "got %s: %s", nu_err_name(eb.code),
                 nu_err_msg(&eb));
    cr_assert_null(d);
    cr_assert(strstr(nu_err_msg(&eb), needle), "message \"%s\" lacks \"%s\"", nu_err_msg(&eb),
              needle);
}

Test(codec, json_errors_are_specific)
{
    const char *hint = "[[\"id\",\"int64\"],[\"b\",\"bytes?\"]]";
    static const struct {
        const char *text;
        nu_err_t code;
        const char *needle;
    } cases[] = {
        {"{\"id\":1}\n{\"id\":\"x\"}\n", NU_ERR_SCHEMA, "line 2, column \"id\": expected int64"},
        {"{\"id\":null}\n", NU_ERR_SCHEMA, "null in non-nullable column \"id\""},
        {"{\"id\":1,\"zz\":2}\n", NU_ERR_SCHEMA, "key \"zz\" is not in the schema"},
        {"{\"id\":1,\"b\":\"@@@@\"}\n", NU_ERR_CORRUPT, "invalid base64"},
        {"{\"id\":1\n", NU_ERR_CORRUPT, "line 1"},
        {"[1]\n", NU_ERR_CORRUPT, "not an object"},
        {"{\"id\":1,\"id\":2}\n", NU_ERR_CORRUPT, "line 1"},
        {"{\"id\":99999999999999999999}\n", NU_ERR_CORRUPT, "line 1"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_decode_error(NU_FORMAT_JSON, cases[i].text, strlen(cases[i].text), hint,
                            cases[i].code, cases[i].needle);
    expect_decode_error(NU_FORMAT_JSON, "{}", 2, "[[\"a\",\"int32\"]]", NU_ERR_SCHEMA,
                        "unknown type");
    expect_decode_error(NU_FORMAT_JSON, "{\"a\":1}\n{\"a\":\"s\"}", 17, NULL, NU_ERR_SCHEMA,
                        "mixes int64 and string");
    char deep[256] = "{\"a\":";
    for (int i = 0; i < 100; i++)
        strcat(deep, "[");
    expect_decode_error(NU_FORMAT_JSON, deep, strlen(deep), NULL, NU_ERR_CORRUPT, "nests deeper");
}

Test(codec, encode_rejects_values_not_matching_the_schema)
{
    struct nu_schema *s = nu_schema_new(2);
    nu_schema_set(s, 0, "id", NU_T_INT64, false, NULL);
    nu_schema_set(s, 1, "s", NU_T_STRING, true, NULL);
    struct nu_batch *b = nu_batch_new(s, 2);
    nu_schema_unref(s);
    struct nu_value *row = nu_batch_add_row(b);
    row[0] = nu_value_int(1);
    row = nu_batch_add_row(b);
    row[0] = nu_value_int(1);
    row[1] = nu_value_double(1);
    struct nu_buf out = NU_BUF_INIT;
    for (int f = 0; f < 2; f++) {
        struct nu_codec_opts o = {.format = (nu_format_t)f};
        struct nu_errbuf eb = {0};
        cr_assert_eq(nu_codec_encode(&o, b, &out, &eb), NU_ERR_SCHEMA);
        cr_assert(strstr(nu_err_msg(&eb), "column \"s\" at row 1: expected string, got double"),
                  "%s", nu_err_msg(&eb));
        nu_batch_row(b, 1)[1] = nu_value_null();
        nu_batch_row(b, 0)[0] = nu_value_null();
        nu_errbuf_clear(&eb);
        cr_assert_eq(nu_codec_encode(&o, b, &out, &eb), NU_ERR_SCHEMA);
        cr_assert(strstr(nu_err_msg(&eb), "null in non-nullable column \"id\""), "%s",
                  nu_err_msg(&eb));
        nu_batch_row(b, 0)[0] = nu_value_int(1);
        nu_batch_row(b, 1)[1] = nu_value_double(1);
    }
    /* duplicate names are refused */
    struct nu_schema *dup = nu_schema_new(2);
    nu_schema_set(dup, 0, "x", NU_T_INT64, false, NULL);
    nu_schema_set(dup, 1, "x", NU_T_INT64, false, NULL);
    struct nu_errbuf eb = {0};
    cr_assert_eq(nu_codec_check_schema(dup, &eb), NU_ERR_SCHEMA);
    cr_assert(strstr(nu_err_msg(&eb), "duplicate column name \"x\""));
    nu_schema_unref(dup);
    nu_buf_free(&out);
    nu_batch_destroy(b);
}

static unsigned char *find(unsigned char *h, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(h + i, needle, k) == 0)
            return h + i;
    return NULL;
}

static void encode_small(struct nu_buf *out, bool deflate)
{
    struct nu_schema *s = nu_schema_new(2);
    struct nu_field str = F(NU_T_STRING, false, NULL);
    nu_schema_set(s, 0, "id", NU_T_INT64, true, NULL);
    nu_schema_set(s, 1, "tags", NU_T_ARRAY, false, &str);
    struct nu_batch *b = nu_batch_new(s, 3);
    nu_schema_unref(s);
    for (int r = 0; r < 3; r++) {
        struct nu_value *row = nu_batch_add_row(b);
        row[0] = nu_value_int(r * 1000);
        struct nu_value t[2] = {nu_batch_str(b, NU_T_STRING, "ab", 2),
                                nu_batch_str(b, NU_T_STRING, "cde", 3)};
        row[1] = arr_of(b, (size_t)r, t);
    }
    struct nu_codec_opts o = {.format = NU_FORMAT_AVRO, .deflate = deflate};
    struct nu_errbuf eb = {0};
    cr_assert_eq(nu_codec_encode(&o, b, out, &eb), NU_OK);
    nu_batch_destroy(b);
}

Test(codec, avro_truncated_at_every_offset_and_bit_flips_never_crash)
{
    for (int deflate = 0; deflate < 2; deflate++) {
        struct nu_buf v = NU_BUF_INIT;
        encode_small(&v, deflate);
        size_t errors = 0;
        for (size_t cut = 0; cut < v.len; cut++) {
            struct nu_errbuf eb = {0};
            struct nu_batch *d = NULL;
            unsigned char *copy = malloc(cut + 1); /* exact-size copy so ASan sees over-reads */
            memcpy(copy, v.data, cut);
            nu_err_t err = nu_codec_decode(NU_FORMAT_AVRO, copy, cut, NULL, &d, &eb);
            free(copy);
            if (err != NU_OK) {
                errors++;
                cr_assert(err == NU_ERR_CORRUPT || err == NU_ERR_SCHEMA, "cut %zu: %s", cut,
                          nu_err_name(err));
                cr_assert(strlen(nu_err_msg(&eb)) > 10);
            } else {
                cr_assert_eq(d->nrows, 0, "cut %zu decoded rows", cut); /* only: no blocks yet */
            }
            nu_batch_destroy(d);
        }
        cr_assert_geq(errors, v.len - 1);
        for (size_t bit = 0; bit < v.len * 8; bit++) {
            struct nu_errbuf eb = {0};
            struct nu_batch *d = NULL;
            v.data[bit / 8] ^= (unsigned char)(1u << (bit % 8));
            nu_codec_decode(NU_FORMAT_AVRO, v.data, v.len, NULL, &d, &eb);
            v.data[bit / 8] ^= (unsigned char)(1u << (bit % 8));
            nu_batch_destroy(d);
        }
        nu_buf_free(&v);
    }
}

Test(codec, avro_bad_magic_codec_lengths_and_trailing_bytes)
{
    struct nu_buf v = NU_BUF_INIT;
    encode_small(&v, false);
    expect_decode_error(NU_FORMAT_AVRO, "Obj\x02xxxx", 8, NULL, NU_ERR_CORRUPT, "magic");
    expect_decode_error(NU_FORMAT_AVRO, "", 0, NULL, NU_ERR_CORRUPT, "magic");
    /* absurd metadata count, then absurd string length */
    expect_decode_error(NU_FORMAT_AVRO, "Obj\x01\xfe\xff\xff\xff\x0f", 9, NULL, NU_ERR_CORRUPT,
                        "exceeds the remaining bytes");
    expect_decode_error(NU_FORMAT_AVRO, "Obj\x01\x02\xfe\xff\xff\xff\xff\xff\xff\xff\x7f", 14, NULL,
                        NU_ERR_CORRUPT, "out of range");
    expect_decode_error(NU_FORMAT_AVRO, "Obj\x01\x02\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80", 15,
                        NULL, NU_ERR_CORRUPT, "varint");
    /* unsupported codec: rewrite "null" as "zstd" in a copy */
    unsigned char *c = malloc(v.len);
    memcpy(c, v.data, v.len);
    unsigned char *at = find(c, v.len, "\x08null");
    cr_assert_not_null(at);
    memcpy(at + 1, "zstd", 4);
    expect_decode_error(NU_FORMAT_AVRO, c, v.len, NULL, NU_ERR_UNSUPPORTED, "\"zstd\"");
    /* a schema that does not match the data: "long" -> "null" leaves bytes unread */
    memcpy(c, v.data, v.len);
    at = find(c, v.len, "\"items\":\"string\"");
    cr_assert_not_null(at);
    memcpy(at + 8, "\"bytes\" ", 8); /* same length: the data reads as bytes */
    struct nu_errbuf eb = {0};
    struct nu_batch *d = NULL;
    cr_assert_eq(nu_codec_decode(NU_FORMAT_AVRO, c, v.len, NULL, &d, &eb), NU_OK, "%s",
                 nu_err_msg(&eb));
    cr_assert_eq(nu_batch_row(d, 2)[1].u.arr.items[0].type, NU_T_BYTES);
    nu_batch_destroy(d);
    memcpy(c, v.data, v.len);
    at = find(c, v.len, "[\"null\",\"long\"]");
    cr_assert_not_null(at);
    memcpy(at, "\"float\"        ", 15); /* floats take 4 bytes: the data no longer lines up */
    nu_errbuf_clear(&eb);
    cr_assert_neq(nu_codec_decode(NU_FORMAT_AVRO, c, v.len, NULL, &d, &eb), NU_OK);
    cr_assert(strstr(nu_err_msg(&eb), "corrupt Avro value"), "%s", nu_err_msg(&eb));
    free(c);
    nu_buf_free(&v);
}

Test(codec, avro_schema_json_names_and_nesting)
{
    struct nu_schema *s = all_types_schema(), *back = NULL;
    struct nu_buf j = NU_BUF_INIT;
    struct nu_errbuf eb = {0};
    cr_assert_eq(nu_schema_to_avro_json(s, &j, &eb), NU_OK);
    cr_assert(strstr((char *)j.data, "\"name\":\"weird_name_1_2\",\"type\":[\"null\",\"string\"],"
                                     "\"nurion.name\":\"weird name-1\""),
              "%s", j.data);
    cr_assert_eq(nu_schema_from_avro_json((char *)j.data, j.len, &back, &eb), NU_OK);
    cr_assert(nu_schema_equal(s, back));
    nu_schema_unref(back);
    char deep[2048] = "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":";
    for (int i = 0; i < 40; i++)
        strcat(deep, "{\"type\":\"array\",\"items\":");
    strcat(deep, "\"long\"");
    for (int i = 0; i < 40; i++)
        strcat(deep, "}");
    strcat(deep, "}]}");
    cr_assert_eq(nu_schema_from_avro_json(deep, strlen(deep), &back, &eb), NU_ERR_SCHEMA);
    cr_assert(strstr(nu_err_msg(&eb), "deeper"), "%s", nu_err_msg(&eb));
    const char *rec = "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":"
                      "{\"type\":\"record\",\"name\":\"S\",\"fields\":[]}}]}";
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_schema_from_avro_json(rec, strlen(rec), &back, &eb), NU_ERR_SCHEMA);
    cr_assert(strstr(nu_err_msg(&eb), "unsupported Avro type \"record\""), "%s", nu_err_msg(&eb));
    nu_buf_free(&j);
    nu_schema_unref(s);
}

Test(codec, cache_reuses_the_parsed_schema)
{
    struct nu_buf v = NU_BUF_INIT;
    encode_small(&v, false);
    nu_codec_cache_t *c = nu_codec_cache_new();
    struct nu_batch *a = NULL, *b = NULL, *x = NULL;
    struct nu_errbuf eb = {0};
    cr_assert_eq(nu_codec_decode_cached(c, NU_FORMAT_AVRO, v.data, v.len, NULL, 0, &a, &eb), NU_OK);
    cr_assert_eq(nu_codec_decode_cached(c, NU_FORMAT_AVRO, v.data, v.len, NULL, 0, &b, &eb), NU_OK);
    cr_assert_eq(nu_codec_decode(NU_FORMAT_AVRO, v.data, v.len, NULL, &x, &eb), NU_OK);
    cr_assert_eq(a->schema, b->schema, "the cached schema object is shared");
    cr_assert_neq(a->schema, x->schema);
    assert_batches_equal(a, x);
    nu_codec_cache_destroy(c); /* batches keep their own schema reference */
    assert_batches_equal(a, b);
    nu_batch_destroy(a);
    nu_batch_destroy(b);
    nu_batch_destroy(x);
    nu_buf_free(&v);
}

Test(codec, format_names)
{
    nu_format_t f;
    struct nu_errbuf eb = {0};
    cr_assert_eq(nu_format_parse("json", &f, &eb), NU_OK);
    cr_assert_eq(f, NU_FORMAT_JSON);
    cr_assert_str_eq(nu_format_name(NU_FORMAT_AVRO), "avro");
    cr_assert_eq(nu_format_parse("xml", &f, &eb), NU_ERR_INVALID);
    cr_assert(strstr(nu_err_msg(&eb), "\"xml\""));
}

/* Decode every file of tests/fuzz/regressions the way the fuzz target does: never a crash. */
Test(codec, fuzz_regressions_decode_cleanly_or_fail)
{
    DIR *dir = opendir(NU_SOURCE_DIR "/tests/fuzz/regressions");
    cr_assert_not_null(dir);
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (e->d_name[0] == '.')
            continue;
        char path[1024];
        snprintf(path, sizeof(path), "%s/tests/fuzz/regressions/%s", NU_SOURCE_DIR, e->d_name);
        FILE *fp = fopen(path, "rb");
        cr_assert_not_null(fp);
        static unsigned char data[1 << 20];
        size_t n = fread(data, 1, sizeof(data), fp);
        fclose(fp);
        if (n == 0)
            continue;
        struct nu_errbuf eb = {0};
        struct nu_batch *d = NULL;
        nu_err_t err = nu_codec_decode(data[0] & 1 ? NU_FORMAT_JSON : NU_FORMAT_AVRO, data + 1,
                                       n - 1, NULL, &d, &eb);
        cr_assert(err == NU_OK ? d != NULL : d == NULL, "%s", e->d_name);
        nu_batch_destroy(d);
    }
    closedir(dir);
}

/* --- compatibility with Avro C, both directions --- */

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *fp = fopen(path, "wb");
    cr_assert_not_null(fp);
    cr_assert_eq(fwrite(p, 1, n, fp), n);
    fclose(fp);
}

/* Compare an Avro C value with ours, following our field type. */
static void assert_avro_equal(avro_value_t *av, const struct nu_field *f, const struct nu_value *v,
                              const char *where)
{
    avro_value_t br;
    if (f->nullable && f->type != NU_T_NULL) {
        int disc = -1;
        cr_assert_eq(avro_value_get_discriminant(av, &disc), 0);
        cr_assert_eq(disc, v->type == NU_T_NULL ? 0 : 1, "%s: union branch", where);
        if (v->type == NU_T_NULL)
            return;
        cr_assert_eq(avro_value_get_current_branch(av, &br), 0);
        av = &br;
    }
    int64_t l;
    double d;
    int b;
    const void *p;
    const char *s;
    size_t n;
    switch (f->type) {
    case NU_T_NULL:
        cr_assert_eq(avro_value_get_type(av), AVRO_NULL, "%s", where);
        break;
    case NU_T_BOOL:
        cr_assert_eq(avro_value_get_boolean(av, &b), 0);
        cr_assert_eq(b != 0, v->u.b, "%s", where);
        break;
    case NU_T_INT64:
        cr_assert_eq(avro_value_get_long(av, &l), 0);
        cr_assert_eq(l, v->u.i, "%s", where);
        break;
    case NU_T_DOUBLE:
        cr_assert_eq(avro_value_get_double(av, &d), 0);
        cr_assert(d == v->u.d || (isnan(d) && isnan(v->u.d)), "%s", where);
        break;
    case NU_T_STRING:
        cr_assert_eq(avro_value_get_string(av, &s, &n), 0);
        cr_assert_eq(n, v->u.s.len + 1, "%s: length", where); /* Avro C counts the NUL */
        cr_assert(memcmp(s, v->u.s.ptr, v->u.s.len) == 0, "%s", where);
        break;
    case NU_T_BYTES:
        cr_assert_eq(avro_value_get_bytes(av, &p, &n), 0);
        cr_assert_eq(n, v->u.s.len, "%s", where);
        cr_assert(n == 0 || memcmp(p, v->u.s.ptr, n) == 0, "%s", where);
        break;
    case NU_T_ARRAY:
    case NU_T_MAP:
        cr_assert_eq(avro_value_get_size(av, &n), 0);
        cr_assert_eq(n, f->type == NU_T_ARRAY ? v->u.arr.n : v->u.map.n, "%s: size", where);
        for (size_t i = 0; i < n; i++) {
            avro_value_t item;
            const char *key = NULL;
            cr_assert_eq(avro_value_get_by_index(av, i, &item, &key), 0);
            if (f->type == NU_T_MAP) {
                cr_assert_eq(strlen(key), v->u.map.keys[i].u.s.len);
                cr_assert(memcmp(key, v->u.map.keys[i].u.s.ptr, strlen(key)) == 0);
            }
            assert_avro_equal(&item, f->item,
                              f->type == NU_T_ARRAY ? &v->u.arr.items[i] : &v->u.map.vals[i],
                              where);
        }
        break;
    }
}

Test(codec, avro_c_file_reader_reads_what_we_write)
{
    struct nu_batch *b = all_types_batch();
    for (int deflate = 0; deflate < 2; deflate++) {
        struct nu_codec_opts o = {.format = NU_FORMAT_AVRO, .deflate = deflate, .block_rows = 3};
        struct nu_buf out = NU_BUF_INIT;
        struct nu_errbuf eb = {0};
        cr_assert_eq(nu_codec_encode(&o, b, &out, &eb), NU_OK);
        char path[] = "/tmp/nu-codec-XXXXXX";
        int fd = mkstemp(path);
        cr_assert_geq(fd, 0);
        close(fd);
        write_file(path, out.data, out.len);
        avro_file_reader_t r;
        cr_assert_eq(avro_file_reader(path, &r), 0, "%s", avro_strerror());
        avro_schema_t ws = avro_file_reader_get_writer_schema(r);
        avro_value_iface_t *iface = avro_generic_class_from_schema(ws);
        avro_value_t rec;
        cr_assert_eq(avro_generic_value_new(iface, &rec), 0);
        size_t rows = 0;
        while (avro_file_reader_read_value(r, &rec) == 0) {
            for (size_t c = 0; c < b->schema->ncols; c++) {
                avro_value_t fv;
                char where[64];
                snprintf(where, sizeof(where), "row %zu col %zu", rows, c);
                cr_assert_eq(avro_value_get_by_index(&rec, c, &fv, NULL), 0);
                assert_avro_equal(&fv, &b->schema->cols[c], &nu_batch_row(b, rows)[c], where);
            }
            rows++;
        }
        cr_assert_eq(rows, b->nrows, "Avro C read %zu rows", rows);
        avro_value_decref(&rec);
        avro_value_iface_decref(iface);
        avro_schema_decref(ws);
        avro_file_reader_close(r);
        unlink(path);
        nu_buf_free(&out);
    }
    nu_batch_destroy(b);
}

Test(codec, we_read_what_avro_c_file_writer_writes)
{
    static const char schema_json[] =
        "{\"type\":\"record\",\"name\":\"T\",\"fields\":["
        "{\"name\":\"id\",\"type\":\"long\"},{\"name\":\"n\",\"type\":\"int\"},"
        "{\"name\":\"f\",\"type\":\"float\"},{\"name\":\"s\",\"type\":[\"string\",\"null\"]},"
        "{\"name\":\"tags\",\"type\":{\"type\":\"array\",\"items\":\"string\"}},"
        "{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":\"double\"}},"
        "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\"]}},"
        "{\"name\":\"x\",\"type\":{\"type\":\"fixed\",\"name\":\"X\",\"size\":3}}]}";
    const size_t nrows = 500;
    for (int deflate = 0; deflate < 2; deflate++) {
        avro_schema_t sch;
        cr_assert_eq(avro_schema_from_json_length(schema_json, strlen(schema_json), &sch), 0);
        char path[] = "/tmp/nu-codec-XXXXXX";
        int fd = mkstemp(path);
        cr_assert_geq(fd, 0);
        close(fd);
        unlink(path);
        avro_file_writer_t w;
        cr_assert_eq(
            avro_file_writer_create_with_codec(path, sch, &w, deflate ? "deflate" : "null", 4096),
            0, "%s", avro_strerror());
        avro_value_iface_t *iface = avro_generic_class_from_schema(sch);
        avro_value_t rec, fv, br, item;
        avro_generic_value_new(iface, &rec);
        for (size_t r = 0; r < nrows; r++) {
            char buf[32];
            snprintf(buf, sizeof(buf), "row-%zu", r);
            avro_value_reset(&rec);
            avro_value_get_by_name(&rec, "id", &fv, NULL);
            avro_value_set_long(&fv, (int64_t)r * -123456789LL);
            avro_value_get_by_name(&rec, "n", &fv, NULL);
            avro_value_set_int(&fv, (int32_t)r - 250);
            avro_value_get_by_name(&rec, "f", &fv, NULL);
            avro_value_set_float(&fv, (float)r / 4.0f);
            avro_value_get_by_name(&rec, "s", &fv, NULL);
            avro_value_set_branch(&fv, r % 2, &br);
            if (r % 2 == 0)
                avro_value_set_string(&br, buf);
            else
                avro_value_set_null(&br);
            avro_value_get_by_name(&rec, "tags", &fv, NULL);
            for (size_t k = 0; k < r % 3; k++) {
                avro_value_append(&fv, &item, NULL);
                avro_value_set_string(&item, buf);
            }
            avro_value_get_by_name(&rec, "m", &fv, NULL);
            if (r % 2) {
                avro_value_add(&fv, buf, &item, NULL, NULL);
                avro_value_set_double(&item, r * 0.5);
            }
            avro_value_get_by_name(&rec, "e", &fv, NULL);
            avro_value_set_enum(&fv, (int)(r % 2));
            avro_value_get_by_name(&rec, "x", &fv, NULL);
            avro_value_set_fixed(&fv, "a\0c", 3);
            cr_assert_eq(avro_file_writer_append_value(w, &rec), 0, "%s", avro_strerror());
        }
        avro_file_writer_close(w);
        avro_value_decref(&rec);
        avro_value_iface_decref(iface);
        avro_schema_decref(sch);

        FILE *fp = fopen(path, "rb");
        cr_assert_not_null(fp);
        static unsigned char data[1 << 20];
        size_t n = fread(data, 1, sizeof(data), fp);
        fclose(fp);
        unlink(path);
        struct nu_errbuf eb = {0};
        struct nu_batch *d = NULL;
        cr_assert_eq(nu_codec_decode(NU_FORMAT_AVRO, data, n, NULL, &d, &eb), NU_OK, "%s",
                     nu_err_msg(&eb));
        cr_assert_eq(d->nrows, nrows);
        struct nu_buf sj = NU_BUF_INIT;
        cr_assert_eq(nu_schema_to_json(d->schema, &sj, &eb), NU_OK);
        cr_assert_str_eq((char *)sj.data,
                         "[[\"id\",\"int64\"],[\"n\",\"int64\"],[\"f\",\"double\"],"
                         "[\"s\",\"string?\"],[\"tags\",\"array<string>\"],[\"m\",\"map<double>\"],"
                         "[\"e\",\"string\"],[\"x\",\"bytes\"]]");
        nu_buf_free(&sj);
        for (size_t r = 0; r < nrows; r++) {
            const struct nu_value *row = nu_batch_row(d, r);
            char buf[32];
            int bl = snprintf(buf, sizeof(buf), "row-%zu", r);
            cr_assert_eq(row[0].u.i, (int64_t)r * -123456789LL);
            cr_assert_eq(row[1].u.i, (int64_t)r - 250);
            cr_assert_eq(row[2].u.d, (double)((float)r / 4.0f));
            if (r % 2 == 0) {
                cr_assert_eq(row[3].u.s.len, (size_t)bl);
                cr_assert(memcmp(row[3].u.s.ptr, buf, (size_t)bl) == 0);
            } else {
                cr_assert_eq(row[3].type, NU_T_NULL);
            }
            cr_assert_eq(row[4].u.arr.n, r % 3);
            cr_assert_eq(row[5].u.map.n, r % 2);
            if (r % 2)
                cr_assert_eq(row[5].u.map.vals[0].u.d, r * 0.5);
            cr_assert_eq(row[6].u.s.len, 1);
            cr_assert_eq(row[6].u.s.ptr[0], r % 2 ? 'B' : 'A');
            cr_assert_eq(row[7].u.s.len, 3);
            cr_assert(memcmp(row[7].u.s.ptr, "a\0c", 3) == 0);
        }
        nu_batch_destroy(d);
    }
}

Test(codec, shipped_avro_schemas_parse_in_both_implementations)
{
    static const char *const files[] = {"plan_split.avsc", "event.avsc"};
    for (size_t i = 0; i < 2; i++) {
        char path[1024];
        static char text[1 << 16];
        snprintf(path, sizeof(path), "%s/schemas/%s", NU_SOURCE_DIR, files[i]);
        FILE *fp = fopen(path, "rb");
        cr_assert_not_null(fp, "%s", path);
        size_t n = fread(text, 1, sizeof(text), fp);
        fclose(fp);
        avro_schema_t sch;
        cr_assert_eq(avro_schema_from_json_length(text, n, &sch), 0, "%s: %s", files[i],
                     avro_strerror());
        avro_schema_decref(sch);
        struct nu_schema *s = NULL;
        struct nu_errbuf eb = {0};
        cr_assert_eq(nu_schema_from_avro_json(text, n, &s, &eb), NU_OK, "%s: %s", files[i],
                     nu_err_msg(&eb));
        cr_assert_gt(s->ncols, 5);
        nu_schema_unref(s);
    }
}
