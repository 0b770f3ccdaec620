/* test_connectors.c — pure parts of the connectors: plan ranges, config validation, row
 * building, SQL identifier quoting, COPY text escaping, SQLSTATE mapping, registration. */
#include "operators/registry.h"
#include "stage/connectors_int.h"
#include "stage/pg.h"

#include <criterion/criterion.h>
#include <string.h>

TestSuite(connectors, .init = nu_connectors_register);

Test(connectors, plan_ranges_split_each_partition_deterministically)
{
    struct nu_kafka_range parts[] = {{0, 0, 25}, {1, 5, 5}, {2, 7, 17}, {3, 3, -1}};
    struct nu_kafka_range want[] = {{0, 0, 10}, {0, 10, 20}, {0, 20, 25}, {2, 7, 17}, {3, 3, -1}};
    struct nu_kafka_range got[8];
    size_t n = nu_kafka_ranges(parts, 4, 10, got, 8);
    cr_assert_eq(n, 5);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(got[i].partition, want[i].partition, "range %zu", i);
        cr_assert_eq(got[i].start, want[i].start, "range %zu", i);
        cr_assert_eq(got[i].end, want[i].end, "range %zu", i);
    }
    /* the count is returned even when the output is too small */
    cr_assert_eq(nu_kafka_ranges(parts, 4, 10, got, 1), 5);
    cr_assert_eq(got[0].end, 10);
    cr_assert_eq(nu_kafka_ranges(parts, 4, 1, NULL, 0), 25 + 10 + 1);
}

struct nu_cfg_case {
    const char *op, *config, *problem; /* problem NULL: valid */
};

static const struct nu_cfg_case cfg_cases[] = {
    {"kafka_source", "{\"topic\":\"t\",\"format\":\"raw\"}", NULL},
    {"kafka_source", "{\"topic\":\"t\",\"schema\":[[\"id\",\"int64\"]],\"split_records\":5}", NULL},
    {"kafka_source",
     "{\"topic\":\"t\",\"schema\":[[\"id\",\"int64\"]],\"start\":{\"offsets\":{\"0\":3}}}", NULL},
    {"kafka_source",
     "{\"topic\":\"t\",\"schema\":[[\"id\",\"int64\"]],\"start\":{\"timestamp\":5}}", NULL},
    {"kafka_source", "{\"schema\":[[\"id\",\"int64\"]]}", "missing field \"topic\""},
    {"kafka_source", "{\"topic\":\"t\"}", "needs \"schema\""},
    {"kafka_source", "{\"topic\":\"t\",\"format\":\"xml\"}", "unknown format \"xml\""},
    {"kafka_source", "{\"topic\":\"t\",\"format\":\"raw\",\"mode\":\"unbounded\"}", NULL},
    {"kafka_source", "{\"topic\":\"t\",\"format\":\"raw\",\"plan_interval_ms\":100}",
     "only used with"},
    {"kafka_source",
     "{\"topic\":\"t\",\"format\":\"raw\",\"mode\":\"unbounded\",\"plan_interval_ms\":1}",
     "at least"},
    {"kafka_source", "{\"topic\":\"t\",\"format\":\"raw\",\"start\":\"middle\"}",
     "expected \"earliest\""},
    {"kafka_source", "{\"topic\":\"t\",\"format\":\"raw\",\"start\":{\"offsets\":{\"x\":1}}}",
     "not a partition number"},
    {"kafka_source", "{\"topic\":\"t\",\"schema\":[[\"offset\",\"int64\"]]}", "clashes"},
    {"kafka_source", "{\"topic\":\"t\",\"schema\":[[\"offset\",\"int64\"]],\"metadata\":false}",
     NULL},
    {"kafka_source", "{\"topic\":\"t\",\"format\":\"raw\",\"split_records\":0}", "at least"},
    {"kafka_source", "{\"topic\":\"t\",\"format\":\"raw\",\"kafka\":{\"a\":1}}",
     "expected a string"},
    {"kafka_sink", "{\"topic\":\"o\",\"key\":\"id\",\"headers\":{\"h\":\"id\"}}", NULL},
    {"kafka_sink", "{\"topic\":\"o\",\"format\":\"avro\",\"partitions\":3}", NULL},
    {"kafka_sink", "{\"key\":\"id\"}", "missing field \"topic\""},
    {"kafka_sink", "{\"topic\":\"o\",\"partitions\":0}", "at least"},
    {"kafka_sink", "{\"topic\":\"o\",\"format\":\"csv\"}", "unknown format"},
    {"kafka_sink", "{\"topic\":\"o\",\"headers\":[]}", "expected an object"},
    {"postgres_sink", "{\"table\":\"public.t\"}", NULL},
    {"postgres_sink", "{\"table\":\"t\",\"mode\":\"upsert\",\"key\":[\"id\"],\"create\":true}",
     NULL},
    {"postgres_sink", "{\"table\":\"t\",\"mode\":\"upsert\"}", "needs \"key\""},
    {"postgres_sink", "{\"table\":\"t\",\"key\":[\"id\"]}", "only used in mode"},
    {"postgres_sink", "{\"table\":\"a.b.c\"}", "schema.table"},
    {"postgres_sink", "{}", "missing field \"table\""},
    {"postgres_sink", "{\"table\":\"t\",\"create\":\"yes\"}", "expected a boolean"},
    {"postgres_sink", "{\"table\":\"t\",\"mode\":\"append\"}", "unknown mode"},
    {"postgres_sink", "{\"table\":\"t\",\"batch_rows\":0}", "at least"},
    {"postgres_sink", "{\"table\":\"t\",\"tabel\":\"x\"}", "unknown field \"tabel\""},
};

Test(connectors, config_validation)
{
    for (size_t i = 0; i < sizeof(cfg_cases) / sizeof(cfg_cases[0]); i++) {
        const struct nu_cfg_case *c = &cfg_cases[i];
        const struct nu_operator *op = NULL;
        struct nu_errbuf eb;
        struct nu_problems p;
        json_t *cfg = json_loads(c->config, 0, NULL);
        nu_errbuf_clear(&eb);
        cr_assert_not_null(cfg, "case %zu", i);
        cr_assert_eq(nu_registry_find(c->op, NULL, &op, &eb), NU_OK, "%s", nu_err_msg(&eb));
        nu_problems_init(&p);
        op->validate(cfg, "$.config", &p);
        if (!c->problem) {
            cr_assert_eq(p.n, 0, "case %zu (%s): unexpected problem %s", i, c->config,
                         p.n ? p.items[0].message : "");
        } else {
            bool found = false;
            for (size_t k = 0; k < p.n; k++)
                found |= strstr(p.items[k].message, c->problem) != NULL;
            cr_assert(found, "case %zu (%s): no problem containing \"%s\" (first: %s)", i,
                      c->config, c->problem, p.n ? p.items[0].message : "none");
        }
        nu_problems_free(&p);
        json_decref(cfg);
    }
}

Test(connectors, source_schema_has_value_and_metadata_columns)
{
    const struct nu_operator *op = NULL;
    struct nu_schema *s = NULL;
    struct nu_errbuf eb;
    json_t *cfg = json_loads(
        "{\"topic\":\"t\",\"schema\":[[\"id\",\"int64\"],[\"name\",\"string?\"]]}", 0, NULL);
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_registry_find("kafka_source", NULL, &op, &eb), NU_OK);
    cr_assert_eq(op->schema(cfg, NULL, "$", NULL, &s, &eb), NU_OK, "%s", nu_err_msg(&eb));
    const char *names[] = {"id", "name", "key", "headers", "timestamp", "partition", "offset"};
    nu_type_t types[] = {NU_T_INT64, NU_T_STRING, NU_T_STRING, NU_T_MAP,
                         NU_T_INT64, NU_T_INT64,  NU_T_INT64};
    cr_assert_eq(s->ncols, 7);
    for (size_t i = 0; i < 7; i++) {
        cr_assert_str_eq(s->cols[i].name, names[i]);
        cr_assert_eq(s->cols[i].type, types[i], "column %s", names[i]);
    }
    nu_schema_unref(s);
    json_decref(cfg);
}

static struct nu_schema *test_value_schema(void)
{
    struct nu_schema *s = nu_schema_new(2);
    nu_schema_set(s, 0, "id", NU_T_INT64, false, NULL);
    nu_schema_set(s, 1, "name", NU_T_STRING, true, NULL);
    return s;
}

static struct nu_schema *test_out_schema(const struct nu_schema *vs)
{
    struct nu_field str = {.type = NU_T_STRING, .nullable = true};
    struct nu_schema *s = nu_schema_new(vs->ncols + 5);
    for (size_t i = 0; i < vs->ncols; i++)
        nu_schema_set(s, i, vs->cols[i].name, vs->cols[i].type, vs->cols[i].nullable, NULL);
    nu_schema_set(s, vs->ncols, "key", NU_T_STRING, true, NULL);
    nu_schema_set(s, vs->ncols + 1, "headers", NU_T_MAP, false, &str);
    nu_schema_set(s, vs->ncols + 2, "timestamp", NU_T_INT64, false, NULL);
    nu_schema_set(s, vs->ncols + 3, "partition", NU_T_INT64, false, NULL);
    nu_schema_set(s, vs->ncols + 4, "offset", NU_T_INT64, false, NULL);
    return s;
}

Test(connectors, rows_from_json_records)
{
    struct nu_schema *vs = test_value_schema(), *os = test_out_schema(vs);
    struct nu_batch *b = nu_batch_new(os, 4);
    struct nu_header hd[] = {{"trace", "abc", 3}};
    const char *hint = "[[\"id\",\"int64\"],[\"name\",\"string?\"]]";
    struct nu_errbuf eb;
    struct {
        const char *value, *key, *error; /* error NULL: one good row */
    } cases[] = {
        {"{\"id\":7,\"name\":\"x\"}", "k7", NULL}, {"{\"id\":8}", NULL, NULL},
        {"{\"id\":\"nine\"}", "k9", "id"},         {"{\"id\":", "k10", ""},
        {"{\"id\":11}", "\xff\xfe", "UTF-8"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct nu_kafka_record rec = {.key = cases[i].key,
                                      .keylen = cases[i].key ? strlen(cases[i].key) : 0,
                                      .value = cases[i].value,
                                      .len = strlen(cases[i].value),
                                      .headers = hd,
                                      .nheaders = 1,
                                      .timestamp = 1000 + (int64_t)i,
                                      .partition = 2,
                                      .offset = 40 + (int64_t)i};
        size_t before = b->nrows;
        nu_errbuf_clear(&eb);
        nu_err_t rc = nu_kafka_rows_add(b, vs, NU_KSRC_JSON, hint, true, &rec, &eb);
        if (cases[i].error) {
            cr_assert_neq(rc, NU_OK, "case %zu", i);
            cr_assert_eq(b->nrows, before, "case %zu: a bad record left rows", i);
            cr_assert(strstr(nu_err_msg(&eb), cases[i].error), "case %zu: %s", i, nu_err_msg(&eb));
        } else {
            cr_assert_eq(rc, NU_OK, "case %zu: %s", i, nu_err_msg(&eb));
            cr_assert_eq(b->nrows, before + 1);
        }
    }
    cr_assert_eq(b->nrows, 2);
    const struct nu_value *r0 = nu_batch_row(b, 0), *r1 = nu_batch_row(b, 1);
    cr_assert_eq(r0[0].u.i, 7);
    cr_assert_eq(r0[1].type, NU_T_STRING);
    cr_assert_eq(r0[1].u.s.len, 1);
    cr_assert_eq(r0[2].type, NU_T_STRING);
    cr_assert_eq(memcmp(r0[2].u.s.ptr, "k7", 2), 0);
    cr_assert_eq(r0[3].type, NU_T_MAP);
    cr_assert_eq(r0[3].u.map.n, 1);
    cr_assert_eq(memcmp(r0[3].u.map.vals[0].u.s.ptr, "abc", 3), 0);
    cr_assert_eq(r0[4].u.i, 1000);
    cr_assert_eq(r0[5].u.i, 2);
    cr_assert_eq(r0[6].u.i, 40);
    cr_assert_eq(r1[0].u.i, 8);
    cr_assert_eq(r1[1].type, NU_T_NULL);
    cr_assert_eq(r1[2].type, NU_T_NULL);
    cr_assert_eq(r1[6].u.i, 41);
    nu_batch_destroy(b);
    nu_schema_unref(vs);
    nu_schema_unref(os);
}

Test(connectors, rows_from_raw_records_without_metadata)
{
    struct nu_schema *vs = nu_schema_new(1);
    nu_schema_set(vs, 0, "value", NU_T_BYTES, true, NULL);
    struct nu_batch *b = nu_batch_new(vs, 2);
    struct nu_errbuf eb;
    struct nu_kafka_record rec = {.value = "\x00\x01", .len = 2, .key = "\xff", .keylen = 1};
    nu_errbuf_clear(&eb);
    /* a non-UTF-8 key is fine when the metadata columns are off */
    cr_assert_eq(nu_kafka_rows_add(b, vs, NU_KSRC_RAW, NULL, false, &rec, &eb), NU_OK);
    rec.value = NULL; /* a tombstone */
    cr_assert_eq(nu_kafka_rows_add(b, vs, NU_KSRC_RAW, NULL, false, &rec, &eb), NU_OK);
    cr_assert_eq(b->nrows, 2);
    cr_assert_eq(nu_batch_row(b, 0)[0].type, NU_T_BYTES);
    cr_assert_eq(nu_batch_row(b, 0)[0].u.s.len, 2);
    cr_assert_eq(nu_batch_row(b, 1)[0].type, NU_T_NULL);
    nu_batch_destroy(b);
    nu_schema_unref(vs);
}

Test(connectors, sql_identifier_quoting)
{
    struct {
        const char *in;
        bool qualified;
        const char *out; /* NULL: refused */
    } cases[] = {
        {"t", true, "\"t\""},
        {"public.t", true, "\"public\".\"t\""},
        {"we\"ird", true, "\"we\"\"ird\""},
        {"a.b", false, "\"a.b\""},
        {"Mixed Case", true, "\"Mixed Case\""},
        {"a.b.c", true, NULL},
        {".t", true, NULL},
        {"t.", true, NULL},
        {"", true, NULL},
        {"bad\nname", true, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct nu_buf b = NU_BUF_INIT;
        struct nu_errbuf eb;
        nu_errbuf_clear(&eb);
        nu_err_t rc = nu_pg_quote_ident(cases[i].in, cases[i].qualified, &b, &eb);
        if (!cases[i].out) {
            cr_assert_eq(rc, NU_ERR_INVALID, "case %zu", i);
        } else {
            cr_assert_eq(rc, NU_OK, "case %zu: %s", i, nu_err_msg(&eb));
            nu_buf_putc(&b, 0);
            cr_assert_str_eq((char *)b.data, cases[i].out);
        }
        nu_buf_free(&b);
    }
}

Test(connectors, copy_text_escaping)
{
    struct nu_field item = {.type = NU_T_INT64};
    struct nu_value arr_items[] = {nu_value_int(1), nu_value_int(-2)};
    struct nu_value mkeys[] = {nu_value_view(NU_T_STRING, "q\"", 2)};
    struct nu_value mvals[] = {nu_value_view(NU_T_STRING, "a\\b", 3)};
    struct nu_value arr = {.type = NU_T_ARRAY, .u.arr = {arr_items, 2}};
    struct nu_value map = {.type = NU_T_MAP, .u.map = {mkeys, mvals, 1}};
    (void)item;
    struct {
        struct nu_value v;
        const char *out;
    } cases[] = {
        {nu_value_null(), "\\N"},
        {nu_value_bool(true), "t"},
        {nu_value_int(-42), "-42"},
        {nu_value_double(0.5), "0.5"},
        {nu_value_view(NU_T_STRING, "a\tb\nc\\d\re", 10), "a\\tb\\nc\\\\d\\re"},
        {nu_value_view(NU_T_STRING, "\\N", 2), "\\\\N"},
        {nu_value_view(NU_T_BYTES, "\x00\xff", 2), "\\\\x00ff"},
        {arr, "[1,-2]"},
        {map, "{\"q\\\\\"\":\"a\\\\\\\\b\"}"},
    };
    struct nu_buf tmp = NU_BUF_INIT;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct nu_buf b = NU_BUF_INIT;
        nu_pg_copy_value(&cases[i].v, &tmp, &b);
        nu_buf_putc(&b, 0);
        cr_assert_str_eq((char *)b.data, cases[i].out, "case %zu", i);
        nu_buf_free(&b);
    }
    nu_buf_free(&tmp);
}

Test(connectors, sqlstate_mapping)
{
    struct {
        const char *state;
        nu_err_t want;
    } cases[] = {
        {NULL, NU_ERR_DB},          {"08006", NU_ERR_DB},       {"57P01", NU_ERR_DB},
        {"40001", NU_ERR_DB},       {"53300", NU_ERR_DB},       {"23514", NU_ERR_CORRUPT},
        {"23502", NU_ERR_CORRUPT},  {"22P02", NU_ERR_CORRUPT},  {"21000", NU_ERR_CORRUPT},
        {"42P01", NU_ERR_DB_FATAL}, {"XX000", NU_ERR_DB_FATAL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        cr_assert_eq(nu_pg_sqlstate_err(cases[i].state), cases[i].want, "case %zu", i);
}

Test(connectors, registration_is_idempotent_and_names_do_not_clash)
{
    const struct nu_operator *op = NULL, *all[64];
    struct nu_errbuf eb;
    size_t n, seen = 0;

    nu_connectors_register();
    nu_connectors_register();
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_registry_find("postgres_sink", NULL, &op, &eb), NU_OK);
    cr_assert_eq(op, &nu_op_postgres_sink);
    n = nu_registry_list(all, 64);
    for (size_t i = 0; i < n && i < 64; i++)
        seen += all[i] == &nu_op_kafka_source;
    cr_assert_eq(seen, 1);
    /* the same descriptor again is a no-op; another one with a taken name is refused */
    cr_assert_eq(nu_registry_add(&nu_op_kafka_sink, &eb), NU_OK);
    struct nu_operator clash = nu_op_kafka_sink;
    cr_assert_eq(nu_registry_add(&clash, &eb), NU_ERR_EXISTS);
    cr_assert(strstr(nu_err_msg(&eb), "already registered"), "%s", nu_err_msg(&eb));
    struct nu_operator builtin_clash = nu_op_kafka_sink;
    builtin_clash.name = "map";
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_registry_add(&builtin_clash, &eb), NU_ERR_EXISTS);
    struct nu_operator bad = nu_op_kafka_sink;
    bad.name = "Bad Name";
    cr_assert_eq(nu_registry_add(&bad, &eb), NU_ERR_PLUGIN);
}
