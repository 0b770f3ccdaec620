/*
 * Tests of the file_source operator: CSV quoting, delimiters, typed and inferred columns; byte
 * ranges where every record is read exactly once whatever the split size; bad lines rejected one
 * by one with their line numbers; binary rows with SHA-256; Avro files written by the codec, and
 * truncated ones; planning errors.
 */
#include "common/codec.h"
#include "common/sha256.h"
#include "operators/builtin.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/nurion-fsrc-%ld-XXXXXX", (long)getpid());
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(file_source, .init = setup, .fini = teardown);

static void put(const char *name, const char *text, size_t len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(text, 1, len, f), len);
    fclose(f);
}

static void puts_file(const char *name, const char *text)
{
    put(name, text, strlen(text));
}

/* Output batches and rejects of a run. */
struct out {
    struct nu_batch *b[4096];
    size_t n, rows;
    char *raw[64], *reason[64];
    size_t nrej;
};

static nu_err_t collect(void *ctx, struct nu_batch *b, struct nu_errbuf *eb)
{
    struct out *o = ctx;
    if (o->n == 4096) {
        nu_batch_destroy(b);
        return nu_err_set(eb, NU_ERR_INTERNAL, "too many batches");
    }
    o->rows += b->nrows;
    o->b[o->n++] = b;
    return NU_OK;
}

static nu_err_t reject(void *ctx, const struct nu_batch *in, size_t row, const void *raw,
                       size_t len, const char *reason, struct nu_errbuf *eb)
{
    struct out *o = ctx;
    cr_assert_not_null(in);
    cr_assert_lt(row, in->nrows);
    cr_assert_lt(o->nrej, 64);
    /* raw is not NUL-terminated: copy exactly len bytes */
    o->raw[o->nrej] = calloc(1, len + 1);
    memcpy(o->raw[o->nrej], raw, len);
    o->reason[o->nrej++] = strdup(reason);
    return NU_OK;
}

static void out_free(struct out *o)
{
    for (size_t i = 0; i < o->n; i++)
        nu_batch_destroy(o->b[i]);
    for (size_t i = 0; i < o->nrej; i++) {
        free(o->raw[i]);
        free(o->reason[i]);
    }
    memset(o, 0, sizeof(*o));
}

/* Plan with `cfg` (a JSON text with %s standing for the directory) and process every plan split,
 * with a reject callback unless `no_reject`. Returns the first process error (NU_OK if none). */
static nu_err_t run(const char *cfg_fmt, bool no_reject, struct out *o, size_t *nplans,
                    struct nu_errbuf *eb)
{
    char text[2048];
    snprintf(text, sizeof(text), cfg_fmt, dir, dir);
    json_t *cfg = json_loads(text, 0, NULL);
    cr_assert_not_null(cfg, "bad test config %s", text);
    const struct nu_operator *op = &nu_op_file_source;
    struct nu_problems p;
    nu_problems_init(&p);
    op->validate(cfg, "$", &p);
    cr_assert_eq(p.n, 0, "%s: %s", p.n ? p.items[0].path : "", p.n ? p.items[0].message : "");
    nu_problems_free(&p);
    struct nu_op_open_args args = {.config = cfg, .job_id = "j", .stage_id = "src"};
    void *st = NULL;
    cr_assert_eq(op->open(&args, &st, eb), NU_OK, "%s", nu_err_msg(eb));
    struct out plans = {0};
    struct nu_op_emit pe = {.ctx = &plans, .emit = collect};
    nu_err_t rc = op->plan(st, &pe, eb);
    nu_arena_t *scratch = nu_arena_new(0);
    struct nu_op_batch_ctx ctx = {.split_id = "s-1", .attempt = 1, .scratch = scratch};
    if (!no_reject) {
        ctx.reject = reject;
        ctx.reject_ctx = o;
    }
    struct nu_op_emit de = {.ctx = o, .emit = collect};
    for (size_t i = 0; rc == NU_OK && i < plans.n; i++)
        rc = op->process(st, &ctx, plans.b[i], &de, eb);
    if (nplans)
        *nplans = plans.n;
    out_free(&plans);
    op->close(st);
    nu_arena_destroy(scratch);
    json_decref(cfg);
    return rc;
}

static const struct nu_value *cell(const struct out *o, size_t row, size_t col)
{
    for (size_t i = 0; i < o->n; i++) {
        if (row < o->b[i]->nrows)
            return &nu_batch_row(o->b[i], row)[col];
        row -= o->b[i]->nrows;
    }
    cr_assert_fail("no row");
    return NULL;
}

static void assert_str(const struct nu_value *v, const char *want)
{
    cr_assert_eq(v->type, NU_T_STRING);
    cr_assert_eq(v->u.s.len, strlen(want), "\"%.*s\" != \"%s\"", (int)v->u.s.len, v->u.s.ptr, want);
    cr_assert_eq(memcmp(v->u.s.ptr, want, v->u.s.len), 0);
}

Test(file_source, csv_quoting_and_inferred_types)
{
    struct out o = {0};
    struct nu_errbuf eb = {0};
    puts_file("a.csv", "id,name,score,ok\r\n"
                       "1,\"a,b\",1.5,true\r\n"
                       "2,\"say \"\"hi\"\"\",2,FALSE\n"
                       "\n"
                       "3,,,\n"
                       "4,\"two\nlines\",-0.25,true");
    cr_assert_eq(run("{\"paths\":\"%s/*.csv\",\"format\":\"csv\"}", false, &o, NULL, &eb), NU_OK,
                 "%s", nu_err_msg(&eb));
    cr_assert_eq(o.nrej, 0, "%s", o.nrej ? o.reason[0] : "");
    cr_assert_eq(o.rows, 4);
    const struct nu_schema *s = o.b[0]->schema;
    const nu_type_t want[] = {NU_T_INT64, NU_T_STRING, NU_T_DOUBLE, NU_T_BOOL};
    const char *names[] = {"id", "name", "score", "ok"};
    for (size_t c = 0; c < 4; c++) {
        cr_assert_str_eq(s->cols[c].name, names[c]);
        cr_assert_eq(s->cols[c].type, want[c], "column %zu is %s", c,
                     nu_type_name(s->cols[c].type));
        cr_assert(s->cols[c].nullable);
    }
    cr_assert_eq(cell(&o, 0, 0)->u.i, 1);
    assert_str(cell(&o, 0, 1), "a,b");
    cr_assert_eq(cell(&o, 0, 2)->u.d, 1.5);
    cr_assert_eq(cell(&o, 0, 3)->u.b, true);
    assert_str(cell(&o, 1, 1), "say \"hi\"");
    cr_assert_eq(cell(&o, 1, 3)->u.b, false);
    for (size_t c = 1; c < 4; c++)
        cr_assert_eq(cell(&o, 2, c)->type, NU_T_NULL, "column %zu of row 3", c);
    assert_str(cell(&o, 3, 1), "two\nlines");
    cr_assert_eq(cell(&o, 3, 2)->u.d, -0.25);
    out_free(&o);
}

Test(file_source, csv_delimiter_quote_and_typed_columns)
{
    struct out o = {0};
    struct nu_errbuf eb = {0};
    puts_file("b.txt", "7;'x;y';''\n8;'it''s';plain\n9;3;\n");
    cr_assert_eq(run("{\"paths\":[\"file://%s/b.txt\"],\"format\":\"csv\",\"csv\":{\"header\":"
                     "false,\"delimiter\":\";\",\"quote\":\"'\",\"columns\":[[\"n\",\"int64\"],"
                     "[\"s\",\"string\"],[\"t\",\"string?\"]]}}",
                     false, &o, NULL, &eb),
                 NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(o.nrej, 0, "%s", o.nrej ? o.reason[0] : "");
    cr_assert_eq(o.rows, 3);
    cr_assert_eq(cell(&o, 0, 0)->u.i, 7);
    assert_str(cell(&o, 0, 1), "x;y");
    assert_str(cell(&o, 0, 2), ""); /* quoted empty: an empty string, not null */
    assert_str(cell(&o, 1, 1), "it's");
    assert_str(cell(&o, 2, 1), "3");
    cr_assert_eq(cell(&o, 2, 2)->type, NU_T_NULL);
    cr_assert(!o.b[0]->schema->cols[0].nullable);
    out_free(&o);
}

Test(file_source, csv_header_without_header_names_columns_c1)
{
    struct out o = {0};
    struct nu_errbuf eb = {0};
    puts_file("c.csv", "1,x\n2,y\n");
    cr_assert_eq(run("{\"paths\":\"%s/c.csv\",\"format\":\"csv\",\"csv\":{\"header\":false}}",
                     false, &o, NULL, &eb),
                 NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(o.rows, 2);
    cr_assert_str_eq(o.b[0]->schema->cols[0].name, "c1");
    cr_assert_str_eq(o.b[0]->schema->cols[1].name, "c2");
    cr_assert_eq(o.b[0]->schema->cols[0].type, NU_T_INT64);
    out_free(&o);
}

/* Records of varied lengths; every id read exactly once for every split size. */
static void check_ranges(const char *fmt, bool csv)
{
    char *text = malloc(1 << 16);
    size_t len = 0;
    const int n = 60;
    if (csv)
        len += (size_t)sprintf(text, "id,pad\n");
    for (int i = 0; i < n; i++) {
        int pad = (i * 7) % 13;
        if (csv)
            len += (size_t)sprintf(text + len, "%d,%.*s\n", i, pad, "xxxxxxxxxxxxxxx");
        else
            len += (size_t)sprintf(text + len, "{\"id\":%d,\"pad\":\"%.*s\"}\n", i, pad,
                                   "xxxxxxxxxxxxxxx");
    }
    put(csv ? "r.csv" : "r.jsonl", text, len);
    for (size_t sb = 1; sb <= len + 1; sb += (sb < 40 ? 1 : 17)) {
        char cfg[512];
        struct out o = {0};
        struct nu_errbuf eb = {0};
        size_t nplans = 0;
        int seen[60] = {0};
        snprintf(cfg, sizeof(cfg), fmt, sb);
        cr_assert_eq(run(cfg, false, &o, &nplans, &eb), NU_OK, "split_bytes %zu: %s", sb,
                     nu_err_msg(&eb));
        cr_assert_eq(o.nrej, 0, "split_bytes %zu: %s", sb, o.nrej ? o.reason[0] : "");
        cr_assert_eq(nplans, (len + sb - 1) / sb, "split_bytes %zu", sb);
        for (size_t r = 0; r < o.rows; r++) {
            const struct nu_value *v = cell(&o, r, 0);
            cr_assert_eq(v->type, NU_T_INT64);
            cr_assert(v->u.i >= 0 && v->u.i < n);
            seen[v->u.i]++;
        }
        for (int i = 0; i < n; i++)
            cr_assert_eq(seen[i], 1, "split_bytes %zu: id %d seen %d times", sb, i, seen[i]);
        out_free(&o);
    }
    free(text);
}

Test(file_source, jsonl_byte_ranges_read_every_record_once, .timeout = 60)
{
    check_ranges("{\"paths\":\"%%s/r.jsonl\",\"format\":\"jsonl\",\"split_bytes\":%zu,"
                 "\"split_rows\":7}",
                 false);
}

Test(file_source, csv_byte_ranges_read_every_record_once, .timeout = 60)
{
    check_ranges("{\"paths\":\"%%s/r.csv\",\"format\":\"csv\",\"split_bytes\":%zu,"
                 "\"csv\":{\"newlines_in_quotes\":false,\"columns\":[[\"id\",\"int64\"],"
                 "[\"pad\",\"string?\"]]}}",
                 true);
}

Test(file_source, split_rows_bounds_batches)
{
    struct out o = {0};
    struct nu_errbuf eb = {0};
    puts_file("s.jsonl", "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n{\"a\":4}\n{\"a\":5}\n");
    cr_assert_eq(run("{\"paths\":\"%s/s.jsonl\",\"format\":\"jsonl\",\"split_rows\":2}", false, &o,
                     NULL, &eb),
                 NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(o.n, 3);
    cr_assert_eq(o.b[0]->nrows, 2);
    cr_assert_eq(o.b[2]->nrows, 1);
    cr_assert_eq(cell(&o, 4, 0)->u.i, 5);
    out_free(&o);
}

static const char bad_csv[] = "id,v\n"
                              "1,10\n"
                              "2,20,extra\n" /* line 3: field count */
                              "3,abc\n"      /* line 4: not an int */
                              "4,40\n"
                              "5,\"50\n"; /* line 6: unterminated quote */

Test(file_source, bad_csv_lines_are_rejected_one_by_one_with_line_numbers)
{
    const char *cfg = "{\"paths\":\"%s/bad.csv\",\"format\":\"csv\",\"csv\":{\"columns\":"
                      "[[\"id\",\"int64\"],[\"v\",\"int64\"]]}}";
    struct out o = {0};
    struct nu_errbuf eb = {0};
    puts_file("bad.csv", bad_csv);
    cr_assert_eq(run(cfg, false, &o, NULL, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(o.rows, 2);
    cr_assert_eq(cell(&o, 0, 0)->u.i, 1);
    cr_assert_eq(cell(&o, 1, 1)->u.i, 40);
    cr_assert_eq(o.nrej, 3);
    const struct {
        const char *raw, *line, *why;
    } want[] = {{"2,20,extra", "line 3:", "3 fields, expected 2"},
                {"3,abc", "line 4:", "not a valid int64"},
                {"5,\"50", "line 6:", "unterminated"}};
    for (size_t i = 0; i < 3; i++) {
        cr_assert_str_eq(o.raw[i], want[i].raw);
        cr_assert(strstr(o.reason[i], "bad.csv"), "%s", o.reason[i]);
        cr_assert(strstr(o.reason[i], want[i].line), "%s", o.reason[i]);
        cr_assert(strstr(o.reason[i], want[i].why), "%s", o.reason[i]);
    }
    out_free(&o);

    /* without a reject callback the split fails, naming the first bad line */
    nu_errbuf_clear(&eb);
    cr_assert_eq(run(cfg, true, &o, NULL, &eb), NU_ERR_CORRUPT);
    cr_assert(strstr(nu_err_msg(&eb), "line 3:"), "%s", nu_err_msg(&eb));
    out_free(&o);
}

Test(file_source, line_numbers_are_file_lines_in_later_ranges)
{
    struct out o = {0};
    struct nu_errbuf eb = {0};
    char text[4096];
    size_t len = 0;
    for (int i = 1; i <= 100; i++)
        len += (size_t)sprintf(text + len, i == 77 ? "{\"id\": oops}\n" : "{\"id\":%d}\n", i);
    put("l.jsonl", text, len);
    cr_assert_eq(run("{\"paths\":\"%s/l.jsonl\",\"format\":\"jsonl\",\"split_bytes\":50}", false,
                     &o, NULL, &eb),
                 NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(o.rows, 99);
    cr_assert_eq(o.nrej, 1);
    cr_assert(strstr(o.reason[0], "line 77:"), "%s", o.reason[0]);
    cr_assert_str_eq(o.raw[0], "{\"id\": oops}");
    out_free(&o);
}

Test(file_source, binary_rows_with_sha256_and_claim_check)
{
    struct out o = {0};
    struct nu_errbuf eb = {0};
    char big[3000];
    memset(big, 'z', sizeof(big));
    put("small.bin", "\x00\x01\x02hello", 8);
    put("large.bin", big, sizeof(big));
    cr_assert_eq(run("{\"paths\":\"%s/*.bin\",\"format\":\"binary\",\"binary\":"
                     "{\"inline_max_bytes\":100}}",
                     false, &o, NULL, &eb),
                 NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(o.rows, 2);
    /* sorted: large.bin first */
    const struct {
        const void *data;
        size_t len;
        bool inline_;
    } want[] = {{big, sizeof(big), false}, {"\x00\x01\x02hello", 8, true}};
    for (size_t i = 0; i < 2; i++) {
        unsigned char d[NU_SHA256_LEN];
        char hex[NU_SHA256_HEX_LEN + 1], uri[600];
        nu_sha256(want[i].data, want[i].len, d);
        nu_sha256_hex(d, NU_SHA256_LEN, hex);
        cr_assert_eq(cell(&o, i, 1)->u.i, (int64_t)want[i].len);
        assert_str(cell(&o, i, 2), hex);
        const struct nu_value *c = cell(&o, i, 3);
        if (want[i].inline_) {
            cr_assert_eq(c->type, NU_T_BYTES);
            cr_assert_eq(c->u.s.len, want[i].len);
            cr_assert_eq(memcmp(c->u.s.ptr, want[i].data, want[i].len), 0);
        } else {
            cr_assert_eq(c->type, NU_T_NULL);
        }
        char *abs = realpath(dir, NULL);
        snprintf(uri, sizeof(uri), "file://%s/%s", abs, i == 0 ? "large.bin" : "small.bin");
        free(abs);
        assert_str(cell(&o, i, 4), uri);
    }
    out_free(&o);
}

static void write_avro(const char *name, int rows, size_t cut)
{
    struct nu_schema *s = nu_schema_new(2);
    nu_schema_set(s, 0, "id", NU_T_INT64, false, NULL);
    nu_schema_set(s, 1, "name", NU_T_STRING, true, NULL);
    struct nu_batch *b = nu_batch_new(s, (size_t)rows);
    for (int i = 0; i < rows; i++) {
        struct nu_value *r = nu_batch_add_row(b);
        r[0] = nu_value_int(i);
        r[1] = i % 3 ? nu_batch_str(b, NU_T_STRING, "n", 1) : nu_value_null();
    }
    struct nu_codec_opts co = {.format = NU_FORMAT_AVRO, .deflate = true, .block_rows = 10};
    struct nu_buf buf = NU_BUF_INIT;
    struct nu_errbuf eb = {0};
    cr_assert_eq(nu_codec_encode(&co, b, &buf, &eb), NU_OK, "%s", nu_err_msg(&eb));
    put(name, (const char *)buf.data, cut ? buf.len - cut : buf.len);
    nu_buf_free(&buf);
    nu_batch_destroy(b);
    nu_schema_unref(s);
}

Test(file_source, avro_files_written_by_the_codec)
{
    struct out o = {0};
    struct nu_errbuf eb = {0};
    write_avro("a.avro", 45, 0);
    write_avro("b.avro", 5, 0);
    cr_assert_eq(run("{\"paths\":\"%s/*.avro\",\"format\":\"avro\",\"split_rows\":20}", false, &o,
                     NULL, &eb),
                 NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(o.rows, 50);
    cr_assert_eq(o.n, 4); /* 20 + 20 + 5, then 5 */
    cr_assert_eq(cell(&o, 44, 0)->u.i, 44);
    cr_assert_eq(cell(&o, 45, 0)->u.i, 0);
    cr_assert_eq(cell(&o, 3, 1)->type, NU_T_NULL);
    out_free(&o);
}

Test(file_source, truncated_avro_fails_with_the_codec_reason)
{
    struct out o = {0};
    struct nu_errbuf eb = {0};
    write_avro("t.avro", 45, 7);
    nu_err_t rc = run("{\"paths\":\"%s/t.avro\",\"format\":\"avro\"}", false, &o, NULL, &eb);
    cr_assert_eq(rc, NU_ERR_CORRUPT, "%s", nu_err_msg(&eb));
    cr_assert(strstr(nu_err_msg(&eb), "t.avro"), "%s", nu_err_msg(&eb));
    out_free(&o);
}

Test(file_source, nothing_matching_is_a_config_error_and_missing_files_fail_at_process)
{
    struct out o = {0};
    struct nu_errbuf eb = {0};
    cr_assert_eq(run("{\"paths\":\"%s/none-*.jsonl\",\"format\":\"binary\"}", false, &o, NULL, &eb),
                 NU_ERR_CONFIG);
    cr_assert(strstr(nu_err_msg(&eb), "no file matches"), "%s", nu_err_msg(&eb));
    /* a dangling link is listed, planned, and fails when read, with the system's reason */
    char link[512], target[512];
    snprintf(link, sizeof(link), "%s/gone.bin", dir);
    snprintf(target, sizeof(target), "%s/nowhere", dir);
    cr_assert_eq(symlink(target, link), 0);
    nu_errbuf_clear(&eb);
    cr_assert_eq(run("{\"paths\":\"%s/gone.bin\",\"format\":\"binary\"}", false, &o, NULL, &eb),
                 NU_ERR_NOT_FOUND);
    cr_assert(strstr(nu_err_msg(&eb), "No such file"), "%s", nu_err_msg(&eb));
    out_free(&o);
}

Test(file_source, schema_needs_files_or_columns)
{
    char text[512];
    struct nu_schema *s = NULL;
    struct nu_problems p;
    struct nu_errbuf eb = {0};
    nu_problems_init(&p);
    snprintf(text, sizeof(text), "{\"paths\":\"%s/x*.csv\",\"format\":\"csv\"}", dir);
    json_t *cfg = json_loads(text, 0, NULL);
    cr_assert_neq(nu_op_file_source.schema(cfg, NULL, "$.stages[0].config", &p, &s, &eb), NU_OK);
    cr_assert_eq(p.n, 1);
    cr_assert(strstr(p.items[0].message, "columns"), "%s", p.items[0].message);
    json_decref(cfg);
    nu_problems_free(&p);
    snprintf(text, sizeof(text),
             "{\"paths\":\"%s/x*.csv\",\"format\":\"csv\",\"csv\":{\"columns\":"
             "[[\"a\",\"double?\"]]}}",
             dir);
    cfg = json_loads(text, 0, NULL);
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_op_file_source.schema(cfg, NULL, "$", NULL, &s, &eb), NU_OK, "%s",
                 nu_err_msg(&eb));
    cr_assert_eq(s->ncols, 1);
    cr_assert_eq(s->cols[0].type, NU_T_DOUBLE);
    nu_schema_unref(s);
    json_decref(cfg);
}

Test(file_source, bad_configs_are_reported_at_their_path)
{
    const struct {
        const char *cfg, *path;
    } cases[] = {
        {"{\"format\":\"csv\"}", "$"},
        {"{\"paths\":\"x\",\"format\":\"xml\"}", "$.format"},
        {"{\"paths\":[],\"format\":\"csv\"}", "$.paths"},
        {"{\"paths\":\"x\",\"format\":\"csv\",\"csv\":{\"delimiter\":\";;\"}}", "$.csv.delimiter"},
        {"{\"paths\":\"x\",\"format\":\"csv\",\"csv\":{\"columns\":[[\"a\",\"array<int64>\"]]}}",
         "$.csv.columns"},
        {"{\"paths\":\"x\",\"format\":\"jsonl\",\"binary\":{}}", "$.binary"},
        {"{\"paths\":\"x\",\"format\":\"jsonl\",\"split_rows\":0}", "$.split_rows"},
        {"{\"paths\":\"x\",\"format\":\"jsonl\",\"pathz\":1}", "$.pathz"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct nu_problems p;
        json_t *cfg = json_loads(cases[i].cfg, 0, NULL);
        cr_assert_not_null(cfg, "%s", cases[i].cfg);
        nu_problems_init(&p);
        nu_op_file_source.validate(cfg, "$", &p);
        cr_assert_geq(p.n, 1, "case %zu not reported", i);
        cr_assert_str_eq(p.items[0].path, cases[i].path, "case %zu: %s", i, p.items[0].message);
        nu_problems_free(&p);
        json_decref(cfg);
    }
}
