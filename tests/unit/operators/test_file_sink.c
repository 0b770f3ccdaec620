/*
 * Tests of file_sink's formats and modes: CSV (read back through file_source), Avro with deflate
 * (read back through the codec), gzip JSON Lines, and rolling files (roll thresholds, replays
 * skipped, end_of_partition, recovery of a crashed instance's file).
 */
#include "common/codec.h"
#include "operators/builtin.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static char dir[256];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/nurion-fsink-%ld-XXXXXX", (long)getpid());
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(file_sink, .init = setup, .fini = teardown);

static struct nu_schema *schema(void)
{
    struct nu_schema *s = nu_schema_new(5);
    nu_schema_set(s, 0, "id", NU_T_INT64, false, NULL);
    nu_schema_set(s, 1, "text", NU_T_STRING, true, NULL);
    nu_schema_set(s, 2, "x", NU_T_DOUBLE, true, NULL);
    nu_schema_set(s, 3, "ok", NU_T_BOOL, true, NULL);
    nu_schema_set(s, 4, "raw", NU_T_BYTES, true, NULL);
    return s;
}

static const char *texts[] = {"plain", "a,b", "say \"hi\"", "two\nlines", "", NULL};

/* Rows first..first+n-1 with awkward strings, nulls and doubles. */
static struct nu_batch *rows(int first, int n)
{
    struct nu_schema *s = schema();
    struct nu_batch *b = nu_batch_new(s, (size_t)n);
    nu_schema_unref(s);
    for (int i = first; i < first + n; i++) {
        struct nu_value *r = nu_batch_add_row(b);
        const char *t = texts[i % 6];
        r[0] = nu_value_int(i);
        r[1] = t ? nu_batch_str(b, NU_T_STRING, t, strlen(t)) : nu_value_null();
        r[2] = i % 4 == 3 ? nu_value_null() : nu_value_double(i / 3.0);
        r[3] = i % 5 == 4 ? nu_value_null() : nu_value_bool(i % 2);
        r[4] = i % 3 == 0 ? nu_value_null() : nu_batch_str(b, NU_T_BYTES, "\x01\xff", 2);
    }
    return b;
}

static void *open_sink(const char *fmt)
{
    char text[1024];
    snprintf(text, sizeof(text), fmt, dir);
    json_t *cfg = json_loads(text, 0, NULL);
    cr_assert_not_null(cfg, "%s", text);
    struct nu_problems p;
    nu_problems_init(&p);
    nu_op_file_sink.validate(cfg, "$", &p);
    cr_assert_eq(p.n, 0, "%s", p.n ? p.items[0].message : "");
    nu_problems_free(&p);
    struct nu_op_open_args args = {.config = cfg, .job_id = "j", .stage_id = "out"};
    struct nu_errbuf eb = {0};
    void *st = NULL;
    cr_assert_eq(nu_op_file_sink.open(&args, &st, &eb), NU_OK, "%s", nu_err_msg(&eb));
    json_decref(cfg);
    return st;
}

static void write_split(void *st, const char *split, struct nu_batch *b)
{
    struct nu_errbuf eb = {0};
    struct nu_op_batch_ctx ctx = {.split_id = split, .attempt = 1};
    cr_assert_eq(nu_op_file_sink.process(st, &ctx, b, NULL, &eb), NU_OK, "%s", nu_err_msg(&eb));
}

static char *slurp(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "no file %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    cr_assert_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return s;
}

static bool exists(const char *name)
{
    char path[512];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return stat(path, &st) == 0;
}

static nu_err_t emit_keep(void *ctx, struct nu_batch *b, struct nu_errbuf *eb)
{
    struct nu_batch **out = ctx;
    cr_assert_null(*out, "one batch expected");
    *out = b;
    return NU_OK;
}

static void assert_same_rows(const struct nu_batch *a, const struct nu_batch *b)
{
    cr_assert_eq(a->nrows, b->nrows);
    for (size_t r = 0; r < a->nrows; r++)
        for (size_t c = 0; c < a->schema->ncols; c++)
            cr_assert(nu_value_equal(&nu_batch_row(a, r)[c], &nu_batch_row(b, r)[c]),
                      "row %zu column %zu differs", r, c);
}

Test(file_sink, csv_round_trip_through_file_source)
{
    void *st = open_sink("{\"path\":\"%s\",\"format\":\"csv\"}");
    struct nu_batch *in = rows(0, 24);
    write_split(st, "s-1", in);
    nu_op_file_sink.close(st);
    size_t len;
    char *text = slurp("s-1.csv", &len);
    const char *head = "id,text,x,ok,raw\n0,plain,0,false,\n1,\"a,b\",";
    cr_assert(strncmp(text, head, strlen(head)) == 0, "%s", text);
    cr_assert(strstr(text, "\"say \"\"hi\"\"\""), "%s", text);
    cr_assert(strstr(text, "\n4,\"\",1.3333333333333333,,Af8=\n"), "%s", text);
    free(text);

    /* read back with the same types: every value equal */
    char cfg[1024];
    snprintf(cfg, sizeof(cfg),
             "{\"paths\":\"%s/s-1.csv\",\"format\":\"csv\",\"csv\":{\"columns\":"
             "[[\"id\",\"int64\"],[\"text\",\"string?\"],[\"x\",\"double?\"],[\"ok\","
             "\"boolean?\"],[\"raw\",\"string?\"]]}}",
             dir);
    json_t *j = json_loads(cfg, 0, NULL);
    struct nu_op_open_args args = {.config = j, .job_id = "j", .stage_id = "src"};
    struct nu_errbuf eb = {0};
    void *src = NULL;
    struct nu_batch *plan = NULL, *back = NULL;
    struct nu_op_emit pe = {.ctx = &plan, .emit = emit_keep},
                      de = {.ctx = &back, .emit = emit_keep};
    struct nu_op_batch_ctx ctx = {.split_id = "p", .attempt = 1};
    cr_assert_eq(nu_op_file_source.open(&args, &src, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(nu_op_file_source.plan(src, &pe, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(nu_op_file_source.process(src, &ctx, plan, &de, &eb), NU_OK, "%s",
                 nu_err_msg(&eb));
    cr_assert_eq(back->nrows, 24);
    for (size_t r = 0; r < 24; r++)
        for (size_t c = 0; c < 4; c++)
            cr_assert(nu_value_equal(&nu_batch_row(in, r)[c], &nu_batch_row(back, r)[c]),
                      "row %zu column %zu differs", r, c);
    nu_op_file_source.close(src);
    nu_batch_destroy(plan);
    nu_batch_destroy(back);
    nu_batch_destroy(in);
    json_decref(j);
}

Test(file_sink, avro_with_deflate_round_trip)
{
    void *st = open_sink("{\"path\":\"%s/a\",\"format\":\"avro\",\"compression\":\"gzip\"}");
    struct nu_batch *in = rows(0, 100), *back = NULL;
    write_split(st, "s-2", in);
    nu_op_file_sink.close(st);
    size_t len;
    char *data = slurp("a/s-2.avro", &len);
    cr_assert(strstr(data + 4, "deflate"), "the container uses the deflate codec");
    struct nu_errbuf eb = {0};
    cr_assert_eq(nu_codec_decode(NU_FORMAT_AVRO, data, len, NULL, &back, &eb), NU_OK, "%s",
                 nu_err_msg(&eb));
    cr_assert(nu_schema_equal(back->schema, in->schema));
    assert_same_rows(in, back);
    free(data);
    nu_batch_destroy(back);
    nu_batch_destroy(in);
}

/* Everything gunzip gives for `name` (all members). */
static char *gunzip(const char *name, size_t *len)
{
    char path[512], *out = malloc(1 << 20);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    gzFile g = gzopen(path, "rb");
    cr_assert_not_null(g, "cannot open %s", path);
    int n = gzread(g, out, 1 << 20);
    cr_assert_geq(n, 0);
    gzclose(g);
    *len = (size_t)n;
    return out;
}

Test(file_sink, gzip_jsonl_holds_the_codec_lines)
{
    void *st = open_sink("{\"path\":\"%s\",\"format\":\"jsonl\",\"compression\":\"gzip\"}");
    struct nu_batch *in = rows(0, 50), *back = NULL;
    write_split(st, "s-3", in);
    nu_op_file_sink.close(st);
    cr_assert(!exists("s-3.jsonl"));
    size_t len;
    char *text = gunzip("s-3.jsonl.gz", &len);
    struct nu_buf sb = NU_BUF_INIT, want = NU_BUF_INIT;
    struct nu_errbuf eb = {0};
    struct nu_codec_opts co = {.format = NU_FORMAT_JSON};
    cr_assert_eq(nu_codec_encode(&co, in, &want, &eb), NU_OK);
    cr_assert_eq(len, want.len);
    cr_assert_eq(memcmp(text, want.data, len), 0);
    cr_assert_eq(nu_schema_to_json(in->schema, &sb, &eb), NU_OK);
    cr_assert_eq(nu_codec_decode(NU_FORMAT_JSON, text, len, (const char *)sb.data, &back, &eb),
                 NU_OK, "%s", nu_err_msg(&eb));
    assert_same_rows(in, back);
    nu_buf_free(&sb);
    nu_buf_free(&want);
    free(text);
    nu_batch_destroy(back);
    nu_batch_destroy(in);
}

static size_t count_lines(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += s[i] == '\n';
    return n;
}

Test(file_sink, rolling_files_roll_skip_replays_and_finish_at_end_of_partition)
{
    void *st = open_sink("{\"path\":\"%s\",\"format\":\"jsonl\",\"mode\":\"rolling\","
                         "\"roll_rows\":5}");
    struct nu_errbuf eb = {0};
    struct nu_op_batch_ctx end = {.attempt = 1};
    const char *ids[] = {"s-1", "s-2", "s-2", "s-3", "s-4", "s-4"};
    for (size_t i = 0; i < 6; i++) {
        struct nu_batch *b = rows((int)i * 2, 2);
        write_split(st, ids[i], b);
        nu_batch_destroy(b);
        if (i == 2) /* s-1 and s-2 (the replay skipped): 4 rows, still open */
            cr_assert(!exists("s-1.jsonl") && exists(".roll-0-s-1.jsonl.tmp"));
    }
    /* s-3 brought the first file to 6 rows: finalised under the first split's name */
    size_t len;
    char *text = slurp("s-1.jsonl", &len);
    cr_assert_eq(count_lines(text, len), 6);
    free(text);
    cr_assert(!exists(".roll-0-s-1.jsonl.tmp"));
    cr_assert(!exists("s-4.jsonl"));
    cr_assert_eq(nu_op_file_sink.end_of_partition(st, &end, NULL, &eb), NU_OK, "%s",
                 nu_err_msg(&eb));
    text = slurp("s-4.jsonl", &len);
    cr_assert_eq(count_lines(text, len), 2, "the replayed s-4 is written once");
    free(text);
    /* nothing open: end_of_partition again is a no-op */
    cr_assert_eq(nu_op_file_sink.end_of_partition(st, &end, NULL, &eb), NU_OK);
    nu_op_file_sink.close(st);
}

Test(file_sink, rolling_csv_gzip_has_one_header)
{
    void *st = open_sink("{\"path\":\"%s\",\"format\":\"csv\",\"compression\":\"gzip\","
                         "\"mode\":\"rolling\"}");
    for (int i = 0; i < 3; i++) {
        char id[16];
        struct nu_batch *b = rows(i * 3, 3);
        snprintf(id, sizeof(id), "s-%d", i);
        write_split(st, id, b);
        nu_batch_destroy(b);
    }
    nu_op_file_sink.close(st); /* close finalises too */
    size_t len;
    char *text = gunzip("s-0.csv.gz", &len);
    text[len] = '\0';
    cr_assert(strncmp(text, "id,text,x,ok,raw\n", 17) == 0, "%s", text);
    cr_assert_null(strstr(text + 1, "id,text"), "one header: %s", text);
    cr_assert(strstr(text, "\n8,"), "%s", text);
    free(text);
}

Test(file_sink, rolling_recovers_a_crashed_instance_file)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/.roll-0-s-9.jsonl.tmp", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"id\":1}\n{\"id\":2}\n{\"id\":", f); /* the crash cut the last line */
    fclose(f);
    snprintf(path, sizeof(path), "%s/.roll-1-s-7.jsonl.tmp", dir);
    f = fopen(path, "w");
    fputs("{\"id\":5}\n", f); /* another instance's: left alone */
    fclose(f);
    void *st = open_sink("{\"path\":\"%s\",\"format\":\"jsonl\",\"mode\":\"rolling\"}");
    size_t len;
    char *text = slurp("s-9.jsonl", &len);
    cr_assert_str_eq(text, "{\"id\":1}\n{\"id\":2}\n");
    free(text);
    cr_assert(!exists(".roll-0-s-9.jsonl.tmp"));
    cr_assert(exists(".roll-1-s-7.jsonl.tmp"));
    nu_op_file_sink.close(st);
}

Test(file_sink, bad_configs)
{
    const char *bad[] = {
        "{\"path\":\"x\",\"format\":\"xml\"}",
        "{\"path\":\"x\",\"compression\":\"zstd\"}",
        "{\"path\":\"x\",\"mode\":\"sometimes\"}",
        "{\"path\":\"x\",\"format\":\"avro\",\"mode\":\"rolling\"}",
        "{\"path\":\"x\",\"roll_rows\":5}",
        "{\"path\":\"x\",\"mode\":\"rolling\",\"roll_bytes\":0}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct nu_problems p;
        json_t *cfg = json_loads(bad[i], 0, NULL);
        nu_problems_init(&p);
        nu_op_file_sink.validate(cfg, "$", &p);
        cr_assert_geq(p.n, 1, "%s", bad[i]);
        nu_problems_free(&p);
        json_decref(cfg);
    }
    /* csv cannot hold arrays: a schema error */
    struct nu_schema *s = nu_schema_new(1), *out = NULL;
    struct nu_field item = {.type = NU_T_INT64};
    nu_schema_set(s, 0, "a", NU_T_ARRAY, false, &item);
    json_t *cfg = json_loads("{\"path\":\"x\",\"format\":\"csv\"}", 0, NULL);
    struct nu_errbuf eb = {0};
    cr_assert_eq(nu_op_file_sink.schema(cfg, s, "$", NULL, &out, &eb), NU_ERR_SCHEMA);
    cr_assert(strstr(nu_err_msg(&eb), "CSV"), "%s", nu_err_msg(&eb));
    json_decref(cfg);
    nu_schema_unref(s);
}
