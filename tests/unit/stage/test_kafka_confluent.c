/* test_kafka_confluent.c — Confluent-framed Avro values of kafka_source: framed datums written
 * with Avro C decode to rows (schema id kept), bad framing and bad datums are refused with the
 * reason, and the config rules of "framing". */
#include "common/codec.h"
#include "operators/registry.h"
#include "stage/connectors_int.h"

#include <avro.h>
#include <criterion/criterion.h>
#include <string.h>

TestSuite(kafka_confluent, .init = nu_connectors_register);

static const char *const kc_schema =
    "{\"type\":\"record\",\"name\":\"Reading\",\"fields\":["
    "{\"name\":\"id\",\"type\":\"long\"},{\"name\":\"name\",\"type\":\"string\"},"
    "{\"name\":\"score\",\"type\":[\"null\",\"double\"]},"
    "{\"name\":\"tags\",\"type\":{\"type\":\"array\",\"items\":\"string\"}},"
    "{\"name\":\"n\",\"type\":\"int\"}]}";

/* A framed value: 0, schema id big-endian, the datum of (id, name, score, [tags], n). */
static size_t kc_frame(uint32_t sid, int64_t id, const char *name, const double *score,
                       const char *tag, int32_t n, char *out, size_t cap)
{
    avro_schema_t s = NULL;
    cr_assert_eq(avro_schema_from_json_length(kc_schema, strlen(kc_schema), &s), 0, "%s",
                 avro_strerror());
    avro_value_iface_t *iface = avro_generic_class_from_schema(s);
    avro_value_t rec, f, br, item;
    cr_assert_eq(avro_generic_value_new(iface, &rec), 0);
    avro_value_get_by_name(&rec, "id", &f, NULL);
    avro_value_set_long(&f, id);
    avro_value_get_by_name(&rec, "name", &f, NULL);
    avro_value_set_string(&f, name);
    avro_value_get_by_name(&rec, "score", &f, NULL);
    avro_value_set_branch(&f, score ? 1 : 0, &br);
    if (score)
        avro_value_set_double(&br, *score);
    else
        avro_value_set_null(&br);
    avro_value_get_by_name(&rec, "tags", &f, NULL);
    if (tag) {
        avro_value_append(&f, &item, NULL);
        avro_value_set_string(&item, tag);
    }
    avro_value_get_by_name(&rec, "n", &f, NULL);
    avro_value_set_int(&f, n);
    out[0] = 0;
    out[1] = (char)(sid >> 24);
    out[2] = (char)(sid >> 16);
    out[3] = (char)(sid >> 8);
    out[4] = (char)sid;
    avro_writer_t w = avro_writer_memory(out + 5, (int64_t)(cap - 5));
    cr_assert_eq(avro_value_write(w, &rec), 0, "%s", avro_strerror());
    size_t len = 5 + (size_t)avro_writer_tell(w);
    avro_writer_free(w);
    avro_value_decref(&rec);
    avro_value_iface_decref(iface);
    avro_schema_decref(s);
    return len;
}

Test(kafka_confluent, framed_datums_decode_and_bad_ones_are_refused_with_the_reason)
{
    struct nu_errbuf eb;
    struct nu_schema *vs = NULL;
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_schema_from_avro_json(kc_schema, strlen(kc_schema), &vs, &eb), NU_OK, "%s",
                 nu_err_msg(&eb));
    /* value columns + key, headers, timestamp, partition, offset, schema_id */
    struct nu_schema *os = nu_schema_new(vs->ncols + 6);
    struct nu_field str = {.type = NU_T_STRING, .nullable = true};
    for (size_t i = 0; i < vs->ncols; i++)
        nu_schema_set(os, i, vs->cols[i].name, vs->cols[i].type, vs->cols[i].nullable,
                      vs->cols[i].item);
    nu_schema_set(os, vs->ncols, "key", NU_T_STRING, true, NULL);
    nu_schema_set(os, vs->ncols + 1, "headers", NU_T_MAP, false, &str);
    nu_schema_set(os, vs->ncols + 2, "timestamp", NU_T_INT64, false, NULL);
    nu_schema_set(os, vs->ncols + 3, "partition", NU_T_INT64, false, NULL);
    nu_schema_set(os, vs->ncols + 4, "offset", NU_T_INT64, false, NULL);
    nu_schema_set(os, vs->ncols + 5, "schema_id", NU_T_INT64, false, NULL);
    nu_codec_cache_t *cache = nu_codec_cache_new();
    struct nu_batch *b = nu_batch_new(os, 4);

    char good1[256], good2[256], bad[256];
    double sc = 2.5;
    size_t n1 = kc_frame(0x01020304u, 42, "alpha", &sc, "t1", -7, good1, sizeof(good1));
    size_t n2 = kc_frame(9, -1, "", NULL, NULL, 2147483647, good2, sizeof(good2));
    struct {
        const char *value;
        size_t len;
        const char *error; /* NULL: one good row */
    } cases[] = {
        {good1, n1, NULL},
        {good2, n2, NULL},
        {"\x00\x00\x00", 3, "shorter than its 5-byte header"},
        {"", 0, "shorter than its 5-byte header"},
        {NULL, 0, "has no value"},
        {"\x01\x00\x00\x00\x01\x02", 6, "magic byte 1, expected 0"},
        {good1, n1 - 1, "corrupt Avro value"}, /* datum cut short */
        {good1, 5, "shorter than"},            /* header only */
        {bad, n1 + 1, "after the end of the datum"},
    };
    memcpy(bad, good1, n1);
    bad[n1] = 0x02; /* one byte too many */
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct nu_kafka_record rec = {.value = cases[i].value,
                                      .len = cases[i].len,
                                      .timestamp = 5,
                                      .partition = 1,
                                      .offset = (int64_t)i};
        size_t before = b->nrows;
        nu_errbuf_clear(&eb);
        nu_err_t rc = nu_kafka_rows_add_cached(cache, b, vs, NU_KSRC_AVRO_CONFLUENT, kc_schema,
                                               true, &rec, &eb);
        if (cases[i].error) {
            cr_assert_eq(rc, NU_ERR_CORRUPT, "case %zu: %s", i, nu_err_msg(&eb));
            cr_assert_eq(b->nrows, before, "case %zu left rows", i);
            cr_assert(strstr(nu_err_msg(&eb), cases[i].error), "case %zu: %s", i, nu_err_msg(&eb));
        } else {
            cr_assert_eq(rc, NU_OK, "case %zu: %s", i, nu_err_msg(&eb));
            cr_assert_eq(b->nrows, before + 1, "case %zu", i);
        }
    }
    cr_assert_eq(b->nrows, 2);
    const struct nu_value *r0 = nu_batch_row(b, 0), *r1 = nu_batch_row(b, 1);
    cr_assert_eq(r0[0].u.i, 42);
    cr_assert_eq(r0[1].u.s.len, 5);
    cr_assert_eq(memcmp(r0[1].u.s.ptr, "alpha", 5), 0);
    cr_assert_eq(r0[2].type, NU_T_DOUBLE);
    cr_assert_float_eq(r0[2].u.d, 2.5, 1e-12);
    cr_assert_eq(r0[3].type, NU_T_ARRAY);
    cr_assert_eq(r0[3].u.arr.n, 1);
    cr_assert_eq(r0[4].u.i, -7);
    cr_assert_eq(r0[vs->ncols + 5].u.i, 0x01020304);
    cr_assert_eq(r1[0].u.i, -1);
    cr_assert_eq(r1[1].u.s.len, 0);
    cr_assert_eq(r1[2].type, NU_T_NULL);
    cr_assert_eq(r1[3].u.arr.n, 0);
    cr_assert_eq(r1[4].u.i, 2147483647);
    cr_assert_eq(r1[vs->ncols + 4].u.i, 1); /* offset */
    cr_assert_eq(r1[vs->ncols + 5].u.i, 9);
    nu_batch_destroy(b);
    nu_codec_cache_destroy(cache);
    nu_schema_unref(vs);
    nu_schema_unref(os);
}

Test(kafka_confluent, datum_decoder_checks_its_input)
{
    struct nu_errbuf eb;
    struct nu_batch *b = NULL;
    char v[256];
    double sc = 1;
    size_t n = kc_frame(1, 3, "x", &sc, "a", 1, v, sizeof(v));
    /* every truncation fails cleanly; the whole datum decodes */
    for (size_t cut = 5; cut < n; cut++) {
        nu_errbuf_clear(&eb);
        cr_assert_eq(
            nu_codec_decode_avro_datum(NULL, kc_schema, strlen(kc_schema), v + 5, cut - 5, &b, &eb),
            NU_ERR_CORRUPT, "cut at %zu", cut);
        cr_assert_null(b);
    }
    nu_errbuf_clear(&eb);
    cr_assert_eq(
        nu_codec_decode_avro_datum(NULL, kc_schema, strlen(kc_schema), v + 5, n - 5, &b, &eb),
        NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(b->nrows, 1);
    cr_assert_eq(nu_batch_row(b, 0)[0].u.i, 3);
    nu_batch_destroy(b);
    b = NULL;
    /* a schema that is not an Avro record */
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_codec_decode_avro_datum(NULL, "\"long\"", 6, "\x02", 1, &b, &eb),
                 NU_ERR_SCHEMA);
    cr_assert_null(b);
}

struct kc_cfg_case {
    const char *config, *problem; /* problem NULL: valid */
};

Test(kafka_confluent, framing_config_rules)
{
    static const struct kc_cfg_case cases[] = {
        {"{\"topic\":\"t\",\"format\":\"avro\",\"framing\":\"confluent\",\"schema\":"
         "{\"type\":\"record\",\"name\":\"r\",\"fields\":[{\"name\":\"id\",\"type\":\"long\"}]}}",
         NULL},
        {"{\"topic\":\"t\",\"format\":\"avro\",\"framing\":\"none\",\"schema\":[[\"id\","
         "\"int64\"]]}",
         NULL},
        {"{\"topic\":\"t\",\"format\":\"json\",\"framing\":\"confluent\",\"schema\":[[\"id\","
         "\"int64\"]]}",
         "needs \"format\": \"avro\""},
        {"{\"topic\":\"t\",\"format\":\"avro\",\"framing\":\"confluent\",\"schema\":[[\"id\","
         "\"int64\"]]}",
         "Avro record schema"},
        {"{\"topic\":\"t\",\"format\":\"avro\",\"framing\":\"confluent\"}", "needs \"schema\""},
        {"{\"topic\":\"t\",\"format\":\"avro\",\"framing\":\"magic\",\"schema\":[[\"id\","
         "\"int64\"]]}",
         "framing"},
        {"{\"topic\":\"t\",\"format\":\"avro\",\"framing\":\"confluent\",\"schema\":"
         "{\"type\":\"record\",\"name\":\"r\",\"fields\":[{\"name\":\"schema_id\",\"type\":"
         "\"long\"}]}}",
         "clashes"},
    };
    const struct nu_operator *op = NULL;
    struct nu_errbuf eb;
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_registry_find("kafka_source", NULL, &op, &eb), NU_OK, "%s", nu_err_msg(&eb));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct nu_problems p;
        json_t *cfg = json_loads(cases[i].config, 0, NULL);
        cr_assert_not_null(cfg, "case %zu", i);
        nu_problems_init(&p);
        op->validate(cfg, "$.config", &p);
        if (!cases[i].problem) {
            cr_assert_eq(p.n, 0, "case %zu: unexpected problem %s", i,
                         p.n ? p.items[0].message : "");
        } else {
            bool found = false;
            for (size_t k = 0; k < p.n; k++)
                found |= strstr(p.items[k].message, cases[i].problem) != NULL;
            cr_assert(found, "case %zu: no problem containing \"%s\" (first: %s)", i,
                      cases[i].problem, p.n ? p.items[0].message : "none");
        }
        nu_problems_free(&p);
        json_decref(cfg);
    }
}

Test(kafka_confluent, datum_encoder_writes_what_avro_c_and_our_decoder_read)
{
    struct nu_errbuf eb;
    struct nu_field str = {.type = NU_T_STRING, .nullable = false};
    struct nu_schema *s = nu_schema_new(4);
    nu_schema_set(s, 0, "id", NU_T_INT64, false, NULL);
    nu_schema_set(s, 1, "name", NU_T_STRING, false, NULL);
    nu_schema_set(s, 2, "score", NU_T_DOUBLE, true, NULL);
    nu_schema_set(s, 3, "tags", NU_T_ARRAY, false, &str);
    struct nu_batch *b = nu_batch_new(s, 2);
    struct nu_value *row = nu_batch_add_row(b);
    struct nu_value *tags = nu_batch_alloc(b, 2 * sizeof(*tags));
    tags[0] = nu_batch_str(b, NU_T_STRING, "a", 1);
    tags[1] = nu_batch_str(b, NU_T_STRING, "bc", 2);
    row[0] = nu_value_int(-123456789);
    row[1] = nu_batch_str(b, NU_T_STRING, "héllo", strlen("héllo"));
    row[2] = nu_value_null();
    row[3].type = NU_T_ARRAY;
    row[3].u.arr.items = tags;
    row[3].u.arr.n = 2;
    row = nu_batch_add_row(b);
    row[0] = nu_value_int(7);
    row[1] = nu_batch_str(b, NU_T_STRING, "", 0);
    row[2] = nu_value_double(-0.5);
    row[3].type = NU_T_ARRAY;
    row[3].u.arr.n = 0;

    struct nu_buf js = NU_BUF_INIT, out = NU_BUF_INIT;
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_schema_to_avro_json(s, &js, &eb), NU_OK, "%s", nu_err_msg(&eb));
    avro_schema_t as = NULL;
    cr_assert_eq(avro_schema_from_json_length((const char *)js.data, js.len, &as), 0, "%s",
                 avro_strerror());
    avro_value_iface_t *iface = avro_generic_class_from_schema(as);
    for (size_t r = 0; r < 2; r++) {
        nu_buf_reset(&out);
        nu_buf_append(&out, "\0\0\0\0\x05", 5); /* what comes before stays */
        cr_assert_eq(nu_codec_encode_avro_datum(b, r, &out, &eb), NU_OK, "%s", nu_err_msg(&eb));
        cr_assert_eq(memcmp(out.data, "\0\0\0\0\x05", 5), 0);
        /* Avro C reads the datum */
        avro_value_t v, f, br;
        cr_assert_eq(avro_generic_value_new(iface, &v), 0);
        avro_reader_t rd = avro_reader_memory((const char *)out.data + 5, (int64_t)out.len - 5);
        cr_assert_eq(avro_value_read(rd, &v), 0, "row %zu: %s", r, avro_strerror());
        int64_t l = 0;
        avro_value_get_by_name(&v, "id", &f, NULL);
        avro_value_get_long(&f, &l);
        cr_assert_eq(l, r ? 7 : -123456789);
        avro_value_get_by_name(&v, "score", &f, NULL);
        int disc = -1;
        avro_value_get_discriminant(&f, &disc);
        cr_assert_eq(disc, r ? 1 : 0);
        if (r) {
            double d = 0;
            avro_value_get_current_branch(&f, &br);
            avro_value_get_double(&br, &d);
            cr_assert_float_eq(d, -0.5, 1e-12);
        }
        size_t n = 9;
        avro_value_get_by_name(&v, "tags", &f, NULL);
        avro_value_get_size(&f, &n);
        cr_assert_eq(n, r ? 0u : 2u);
        avro_reader_free(rd);
        avro_value_decref(&v);
        /* and our decoder reads it back whole */
        struct nu_batch *back = NULL;
        cr_assert_eq(nu_codec_decode_avro_datum(NULL, (const char *)js.data, js.len, out.data + 5,
                                                out.len - 5, &back, &eb),
                     NU_OK, "%s", nu_err_msg(&eb));
        cr_assert_eq(nu_batch_row(back, 0)[0].u.i, r ? 7 : -123456789);
        cr_assert_eq(nu_batch_row(back, 0)[1].u.s.len, r ? 0 : strlen("héllo"));
        nu_batch_destroy(back);
    }
    /* a value of the wrong type is refused and leaves the buffer as it was */
    nu_batch_row(b, 1)[0] = nu_value_double(1.0);
    size_t before = out.len;
    cr_assert_eq(nu_codec_encode_avro_datum(b, 1, &out, &eb), NU_ERR_SCHEMA);
    cr_assert_eq(out.len, before);
    cr_assert_eq(nu_codec_encode_avro_datum(b, 2, &out, &eb), NU_ERR_INVALID);
    avro_value_iface_decref(iface);
    avro_schema_decref(as);
    nu_buf_free(&js);
    nu_buf_free(&out);
    nu_batch_destroy(b);
    nu_schema_unref(s);
}

Test(kafka_confluent, sink_framing_config_rules)
{
    static const struct kc_cfg_case cases[] = {
        {"{\"topic\":\"o\",\"format\":\"avro\",\"framing\":\"confluent\",\"schema_id\":7}", NULL},
        {"{\"topic\":\"o\",\"format\":\"avro\",\"framing\":\"none\"}", NULL},
        {"{\"topic\":\"o\",\"format\":\"avro\",\"framing\":\"confluent\"}", "needs \"schema_id\""},
        {"{\"topic\":\"o\",\"format\":\"json\",\"framing\":\"confluent\",\"schema_id\":7}",
         "needs \"format\": \"avro\""},
        {"{\"topic\":\"o\",\"format\":\"avro\",\"schema_id\":7}", "only used with"},
        {"{\"topic\":\"o\",\"format\":\"avro\",\"framing\":\"confluent\",\"schema_id\":-1}",
         "at least"},
    };
    const struct nu_operator *op = NULL;
    struct nu_errbuf eb;
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_registry_find("kafka_sink", NULL, &op, &eb), NU_OK, "%s", nu_err_msg(&eb));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct nu_problems p;
        json_t *cfg = json_loads(cases[i].config, 0, NULL);
        cr_assert_not_null(cfg, "case %zu", i);
        nu_problems_init(&p);
        op->validate(cfg, "$.config", &p);
        if (!cases[i].problem) {
            cr_assert_eq(p.n, 0, "case %zu: unexpected problem %s", i,
                         p.n ? p.items[0].message : "");
        } else {
            bool found = false;
            for (size_t k = 0; k < p.n; k++)
                found |= strstr(p.items[k].message, cases[i].problem) != NULL;
            cr_assert(found, "case %zu: no problem containing \"%s\" (first: %s)", i,
                      cases[i].problem, p.n ? p.items[0].message : "none");
        }
        nu_problems_free(&p);
        json_decref(cfg);
    }
}
