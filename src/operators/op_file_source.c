/*
 * op_file_source.c — the `file_source` source: rows from local files (JSON Lines, CSV, Avro
 * container files, or whole files as binary rows with a claim-check reference).
 *
 * Config (docs/operators.md has the full reference):
 *   {"paths": "glob" | ["glob", ...], "format": "jsonl" | "csv" | "avro" | "binary",
 *    "split_rows": 10000, "split_bytes": 67108864, "max_files": 100000,
 *    "columns": [["name","int64"], ...], "infer_rows": 1000,                        (jsonl)
 *    "csv": {"header": true, "delimiter": ",", "quote": "\"", "columns": [...],
 *            "infer_rows": 1000, "newlines_in_quotes": true},
 *    "binary": {"inline_max_bytes": 1048576}}
 * plan() lists the files (glob(3), sorted, de-duplicated; nothing matching is NU_ERR_CONFIG) and
 * emits one plan split per file, or per byte range of split_bytes for jsonl and for csv with
 * "newlines_in_quotes": false. process() reads one range and emits batches of at most
 * split_rows rows. Output schema: binary fixed; avro the first file's; csv and jsonl the given
 * columns, else inferred from the first file (sorted order) — so schema() reads that file, and
 * without readable files at validation a csv/jsonl source needs "columns".
 */
#include "operators/file_source_int.h"

#include "common/codec.h"
#include "common/mem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct nu_file_source {
    struct nu_fsrc_conf c;
    struct nu_schema *plan_schema;
    struct nu_schema *out; /* csv: the row schema, inferred lazily; binary: fixed */
};

static const char *const nu_fsrc_fields[] = {"paths",       "format",    "split_rows",
                                             "split_bytes", "max_files", "csv",
                                             "binary",      "columns",   "infer_rows"};
static const char *const nu_fsrc_csv_fields[] = {"header",  "delimiter",  "quote",
                                                 "columns", "infer_rows", "newlines_in_quotes"};
static const char *const nu_fsrc_bin_fields[] = {"inline_max_bytes"};

static void nu_fsrc_add_path(struct nu_fsrc_conf *c, const json_t *v, struct nu_json_path *jp,
                             struct nu_problems *p)
{
    const char *s;
    if (!json_is_string(v)) {
        nu_problems_add(p, jp->buf, "expected a string, got %s", nu_json_type_name(v));
        return;
    }
    s = json_string_value(v);
    if (strncmp(s, "file://", 7) == 0)
        s += 7;
    if (*s == '\0' || strlen(s) >= NU_FSRC_MAX_PATH ||
        strlen(s) != json_string_length(v) - (s - json_string_value(v))) {
        nu_problems_add(p, jp->buf, "must be a path or file:// URI of 1 to %d bytes",
                        NU_FSRC_MAX_PATH - 1);
        return;
    }
    c->paths = nu_xrealloc(c->paths, (c->npaths + 1) * sizeof(*c->paths));
    c->paths[c->npaths++] = nu_xstrdup(s);
}

/* A one-character string option. */
static void nu_fsrc_get_char(const json_t *obj, const char *key, char *out, struct nu_json_path *jp,
                             struct nu_problems *p)
{
    const json_t *v = json_object_get(obj, key);
    size_t mark = nu_json_path_push_key(jp, key);
    if (v && (!json_is_string(v) || json_string_length(v) != 1 || json_string_value(v)[0] == '\n' ||
              json_string_value(v)[0] == '\r'))
        nu_problems_add(p, jp->buf, "must be a string of one character (not a line end)");
    else if (v)
        *out = json_string_value(v)[0];
    nu_json_path_pop(jp, mark);
}

static void nu_fsrc_get_bool(const json_t *obj, const char *key, bool *out, struct nu_json_path *jp,
                             struct nu_problems *p)
{
    const json_t *v = json_object_get(obj, key);
    size_t mark = nu_json_path_push_key(jp, key);
    if (v && !json_is_boolean(v))
        nu_problems_add(p, jp->buf, "expected a boolean, got %s", nu_json_type_name(v));
    else if (v)
        *out = json_is_true(v);
    nu_json_path_pop(jp, mark);
}

static void nu_fsrc_get_columns(const json_t *obj, bool scalar_only, struct nu_fsrc_conf *c,
                                struct nu_json_path *jp, struct nu_problems *p)
{
    const json_t *v = json_object_get(obj, "columns");
    struct nu_errbuf eb;
    size_t mark;
    char *text;

    if (!v)
        return;
    mark = nu_json_path_push_key(jp, "columns");
    nu_errbuf_clear(&eb);
    text = json_is_array(v) && json_array_size(v) > 0 ? json_dumps(v, JSON_COMPACT) : NULL;
    if (!text)
        nu_problems_add(p, jp->buf, "expected a non-empty array of [name, type] pairs");
    else if (nu_schema_from_json(text, strlen(text), &c->columns, &eb) != NU_OK ||
             nu_codec_check_schema(c->columns, &eb) != NU_OK)
        nu_problems_add(p, jp->buf, "%s", nu_err_msg(&eb));
    for (size_t i = 0; scalar_only && c->columns && i < c->columns->ncols; i++) {
        nu_type_t t = c->columns->cols[i].type;
        if (t == NU_T_ARRAY || t == NU_T_MAP || t == NU_T_NULL) {
            nu_problems_add(p, jp->buf, "column \"%s\": CSV cannot hold type %s",
                            c->columns->cols[i].name, nu_type_name(t));
            break;
        }
    }
    free(text);
    nu_json_path_pop(jp, mark);
}

void nu_fsrc_conf_free(struct nu_fsrc_conf *c)
{
    for (size_t i = 0; i < c->npaths; i++)
        free(c->paths[i]);
    free(c->paths);
    nu_schema_unref(c->columns);
    memset(c, 0, sizeof(*c));
}

void nu_fsrc_conf_parse(const json_t *config, const char *path, struct nu_problems *p,
                        struct nu_fsrc_conf *c)
{
    static const char *const formats[] = {"jsonl", "csv", "avro", "binary"};
    struct nu_json_path jp;
    const json_t *v;
    size_t mark;

    memset(c, 0, sizeof(*c));
    c->split_rows = 10000;
    c->split_bytes = NU_FSRC_DFLT_SPLIT_BYTES;
    c->max_files = NU_FSRC_DFLT_MAX_FILES;
    c->header = true;
    c->newlines_in_quotes = true;
    c->delim = ',';
    c->quote = '"';
    c->infer_rows = 1000;
    c->inline_max = 1 << 20;
    nu_builtin_path_init(&jp, path);
    if (!nu_builtin_expect_object(config, &jp, p))
        return;
    nu_json_check_fields(config, nu_fsrc_fields, sizeof(nu_fsrc_fields) / sizeof(char *), &jp, p);

    v = json_object_get(config, "paths");
    mark = nu_json_path_push_key(&jp, "paths");
    if (!v) {
        nu_problems_add(p, path ? path : "$", "missing field \"paths\"");
    } else if (json_is_array(v)) {
        if (json_array_size(v) == 0 || json_array_size(v) > NU_FSRC_MAX_PATTERNS)
            nu_problems_add(p, jp.buf, "must hold 1 to %d paths", NU_FSRC_MAX_PATTERNS);
        for (size_t i = 0; i < json_array_size(v) && i < NU_FSRC_MAX_PATTERNS; i++) {
            size_t m2 = nu_json_path_push_index(&jp, i);
            nu_fsrc_add_path(c, json_array_get(v, i), &jp, p);
            nu_json_path_pop(&jp, m2);
        }
    } else {
        nu_fsrc_add_path(c, v, &jp, p);
    }
    nu_json_path_pop(&jp, mark);

    v = json_object_get(config, "format");
    mark = nu_json_path_push_key(&jp, "format");
    if (!v) {
        nu_problems_add(p, path ? path : "$", "missing field \"format\"");
    } else if (!json_is_string(v)) {
        nu_problems_add(p, jp.buf, "expected a string, got %s", nu_json_type_name(v));
    } else {
        size_t k = 0;
        while (k < 4 && strcmp(json_string_value(v), formats[k]) != 0)
            k++;
        if (k == 4)
            nu_problems_add(p, jp.buf,
                            "unknown format \"%s\" (expected \"jsonl\", \"csv\", \"avro\" or "
                            "\"binary\")",
                            json_string_value(v));
        else
            c->format = (nu_fsrc_format_t)k;
    }
    nu_json_path_pop(&jp, mark);

    nu_builtin_get_int(config, "split_rows", 1, NU_FSRC_MAX_SPLIT_ROWS, false, 10000, &jp, p,
                       &c->split_rows);
    nu_builtin_get_int(config, "split_bytes", 1, NU_FSRC_MAX_SPLIT_BYTES, false,
                       NU_FSRC_DFLT_SPLIT_BYTES, &jp, p, &c->split_bytes);
    nu_builtin_get_int(config, "max_files", 1, NU_FSRC_MAX_FILES, false, NU_FSRC_DFLT_MAX_FILES,
                       &jp, p, &c->max_files);
    nu_builtin_get_int(config, "infer_rows", 1, NU_FSRC_MAX_INFER_ROWS, false, 1000, &jp, p,
                       &c->infer_rows);
    if (json_object_get(config, "columns") && c->format != NU_FSRC_JSONL) {
        mark = nu_json_path_push_key(&jp, "columns");
        nu_problems_add(p, jp.buf, "applies to format \"jsonl\" only (csv: use csv.columns)");
        nu_json_path_pop(&jp, mark);
    } else {
        nu_fsrc_get_columns(config, false, c, &jp, p);
    }

    v = json_object_get(config, "csv");
    mark = nu_json_path_push_key(&jp, "csv");
    if (v && c->format != NU_FSRC_CSV) {
        nu_problems_add(p, jp.buf, "applies to format \"csv\" only");
    } else if (v && nu_builtin_expect_object(v, &jp, p)) {
        nu_json_check_fields(v, nu_fsrc_csv_fields, 6, &jp, p);
        nu_fsrc_get_bool(v, "header", &c->header, &jp, p);
        nu_fsrc_get_bool(v, "newlines_in_quotes", &c->newlines_in_quotes, &jp, p);
        nu_fsrc_get_char(v, "delimiter", &c->delim, &jp, p);
        nu_fsrc_get_char(v, "quote", &c->quote, &jp, p);
        nu_builtin_get_int(v, "infer_rows", 1, NU_FSRC_MAX_INFER_ROWS, false, 1000, &jp, p,
                           &c->infer_rows);
        nu_fsrc_get_columns(v, true, c, &jp, p);
        if (c->delim == c->quote)
            nu_problems_add(p, jp.buf, "delimiter and quote must differ");
    }
    nu_json_path_pop(&jp, mark);

    v = json_object_get(config, "binary");
    mark = nu_json_path_push_key(&jp, "binary");
    if (v && c->format != NU_FSRC_BINARY) {
        nu_problems_add(p, jp.buf, "applies to format \"binary\" only");
    } else if (v && nu_builtin_expect_object(v, &jp, p)) {
        nu_json_check_fields(v, nu_fsrc_bin_fields, 1, &jp, p);
        nu_builtin_get_int(v, "inline_max_bytes", 0, NU_FSRC_MAX_INLINE, false, 1 << 20, &jp, p,
                           &c->inline_max);
    }
    nu_json_path_pop(&jp, mark);
}

static void nu_fsrc_validate(const json_t *config, const char *path, struct nu_problems *p)
{
    struct nu_fsrc_conf c;
    nu_fsrc_conf_parse(config, path, p, &c);
    nu_fsrc_conf_free(&c);
}

/* The row schema for conf `c`: fixed, given, or read from the first file. */
static nu_err_t nu_fsrc_row_schema(const struct nu_fsrc_conf *c, struct nu_schema **out,
                                   struct nu_errbuf *eb)
{
    char **files = NULL;
    size_t n = 0;
    struct nu_batch *b = NULL;
    nu_err_t rc = NU_OK;

    *out = NULL;
    if (c->format == NU_FSRC_BINARY) {
        *out = nu_fsrc_binary_schema();
        return NU_OK;
    }
    if (c->columns) {
        *out = nu_schema_ref(c->columns);
        return NU_OK;
    }
    rc = nu_fsrc_list(c, &files, &n, eb);
    if (rc == NU_OK && c->format == NU_FSRC_CSV)
        rc = nu_fsrc_csv_infer(c, files[0], out, eb);
    else if (rc == NU_OK && c->format == NU_FSRC_JSONL)
        rc = nu_fsrc_jsonl_infer(c, files[0], out, eb);
    else if (rc == NU_OK && (rc = nu_fsrc_avro_read(files[0], &b, eb)) == NU_OK)
        *out = nu_schema_ref(b->schema);
    if (rc == NU_OK)
        rc = nu_codec_check_schema(*out, eb);
    if (rc != NU_OK) {
        nu_schema_unref(*out);
        *out = NULL;
    }
    nu_batch_destroy(b);
    nu_fsrc_list_free(files, n);
    return rc;
}

static nu_err_t nu_fsrc_schema(const json_t *config, const struct nu_schema *in, const char *path,
                               struct nu_problems *p, struct nu_schema **out, struct nu_errbuf *eb)
{
    struct nu_fsrc_conf c;
    struct nu_problems local;
    struct nu_errbuf why;
    nu_err_t rc;

    *out = NULL;
    nu_problems_init(&local);
    nu_errbuf_clear(&why);
    nu_fsrc_conf_parse(config, path, &local, &c);
    if (local.n > 0) {
        rc = nu_builtin_fault(p, eb, NU_ERR_CONFIG, local.items[0].path, "%s",
                              local.items[0].message);
    } else {
        rc = nu_fsrc_row_schema(&c, out, &why);
        if (rc != NU_OK)
            rc = nu_builtin_fault(p, eb, rc == NU_ERR_SCHEMA ? NU_ERR_SCHEMA : NU_ERR_CONFIG, path,
                                  "cannot derive the output schema: %s%s", nu_err_msg(&why),
                                  c.format == NU_FSRC_CSV || c.format == NU_FSRC_JSONL
                                      ? " (give the columns to validate without the files)"
                                      : "");
    }
    nu_problems_free(&local);
    nu_fsrc_conf_free(&c);
    return rc;
}

static void nu_fsrc_close(void *state)
{
    struct nu_file_source *fs = state;
    if (!fs)
        return;
    nu_fsrc_conf_free(&fs->c);
    nu_schema_unref(fs->plan_schema);
    nu_schema_unref(fs->out);
    free(fs);
}

static nu_err_t nu_fsrc_open(const struct nu_op_open_args *args, void **state, struct nu_errbuf *eb)
{
    struct nu_file_source *fs;
    struct nu_problems p;
    nu_err_t rc;

    *state = NULL;
    rc = nu_builtin_check_config(&nu_op_file_source, args->config, eb);
    if (rc != NU_OK)
        return rc;
    fs = nu_xcalloc(1, sizeof(*fs));
    nu_problems_init(&p);
    nu_fsrc_conf_parse(args->config, "$", &p, &fs->c);
    nu_problems_free(&p);
    fs->plan_schema = nu_fsrc_plan_schema();
    if (fs->c.format == NU_FSRC_BINARY)
        fs->out = nu_fsrc_binary_schema();
    else if (fs->c.format == NU_FSRC_CSV && fs->c.columns)
        fs->out = nu_schema_ref(fs->c.columns);
    *state = fs;
    return NU_OK;
}

static nu_err_t nu_fsrc_plan_cb(void *state, const struct nu_op_emit *out, struct nu_errbuf *eb)
{
    struct nu_file_source *fs = state;
    return nu_fsrc_plan(&fs->c, fs->plan_schema, out, eb);
}

/* Column `name` of the plan schema with type `t`, or -1. */
static long nu_fsrc_col(const struct nu_schema *s, const char *name, nu_type_t t)
{
    long i = nu_schema_find(s, name);
    return i >= 0 && s->cols[i].type == t ? i : -1;
}

/* The plan row is still the file it was planned from (same size and mtime). */
static nu_err_t nu_fsrc_check_task(const struct nu_fsrc_task *t, struct nu_errbuf *eb)
{
    struct stat st;
    if (stat(t->path, &st) != 0)
        return nu_fsrc_errno(errno, "stat", t->path, eb);
    if (t->size >= 0 && ((int64_t)st.st_size != t->size ||
                         (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec != t->mtime))
        return nu_err_set(eb, NU_ERR_STATE,
                          "file_source: file \"%s\" changed since it was planned (size %lld, "
                          "planned %lld)",
                          t->path, (long long)st.st_size, (long long)t->size);
    return NU_OK;
}

static nu_err_t nu_fsrc_process(void *state, const struct nu_op_batch_ctx *ctx,
                                const struct nu_batch *in, const struct nu_op_emit *out,
                                struct nu_errbuf *eb)
{
    struct nu_file_source *fs = state;
    long cp, co, cl, cs, cm;
    nu_err_t rc = NU_OK;

    if (!in || !in->schema)
        return nu_err_set(eb, NU_ERR_INVALID, "file_source: no plan split");
    if (in->nrows == 0)
        return NU_OK;
    cp = nu_fsrc_col(in->schema, "path", NU_T_STRING);
    co = nu_fsrc_col(in->schema, "offset", NU_T_INT64);
    cl = nu_fsrc_col(in->schema, "length", NU_T_INT64);
    cs = nu_fsrc_col(in->schema, "size", NU_T_INT64);
    cm = nu_fsrc_col(in->schema, "mtime_ns", NU_T_INT64);
    if (cp < 0 || co < 0 || cl < 0 || cs < 0 || cm < 0)
        return nu_err_set(eb, NU_ERR_SCHEMA,
                          "file_source: the plan split lacks path, offset, length, size or "
                          "mtime_ns");
    for (size_t r = 0; r < in->nrows && rc == NU_OK; r++) {
        const struct nu_value *pr = nu_batch_row(in, r);
        struct nu_fsrc_task t = {.plan = in, .plan_row = r};
        char *path;
        if (pr[cp].type != NU_T_STRING || pr[co].type != NU_T_INT64 || pr[cl].type != NU_T_INT64 ||
            pr[cs].type != NU_T_INT64 || pr[cm].type != NU_T_INT64)
            return nu_err_set(eb, NU_ERR_CORRUPT, "file_source: plan row %zu has a null field", r);
        if (pr[cp].u.s.len == 0 || pr[cp].u.s.len >= NU_FSRC_MAX_PATH ||
            memchr(pr[cp].u.s.ptr, '\0', pr[cp].u.s.len) || pr[co].u.i < 0)
            return nu_err_set(eb, NU_ERR_CORRUPT, "file_source: plan row %zu is malformed", r);
        path = nu_xstrndup(pr[cp].u.s.ptr, pr[cp].u.s.len);
        t.path = path;
        t.offset = pr[co].u.i;
        t.length = pr[cl].u.i;
        t.size = pr[cs].u.i;
        t.mtime = pr[cm].u.i;
        rc = nu_fsrc_check_task(&t, eb);
        if (rc == NU_OK && fs->c.format == NU_FSRC_CSV && !fs->out)
            rc = nu_fsrc_row_schema(&fs->c, &fs->out, eb);
        if (rc == NU_OK) {
            switch (fs->c.format) {
            case NU_FSRC_CSV:
                rc = nu_fsrc_csv_process(&fs->c, fs->out, &t, ctx, out, eb);
                break;
            case NU_FSRC_JSONL:
                rc = nu_fsrc_jsonl_process(&fs->c, &t, ctx, out, eb);
                break;
            case NU_FSRC_AVRO:
                rc = nu_fsrc_avro_process(&fs->c, &t, out, eb);
                break;
            case NU_FSRC_BINARY:
                rc = nu_fsrc_binary_process(&fs->c, fs->out, &t, out, eb);
                break;
            }
        }
        free(path);
    }
    return rc;
}

const struct nu_operator nu_op_file_source = {
    .abi_version = NU_OPERATOR_ABI_VERSION,
    .name = "file_source",
    .kind = NU_OPKIND_SOURCE,
    .summary = "rows from local files: JSON Lines, CSV, Avro containers or whole binary files",
    .validate = nu_fsrc_validate,
    .schema = nu_fsrc_schema,
    .open = nu_fsrc_open,
    .plan = nu_fsrc_plan_cb,
    .process = nu_fsrc_process,
    .close = nu_fsrc_close,
};
