/*
 * op_file_sink.c — the `file_sink` sink: rows written to files in a directory.
 *
 * Config {"path": "out/", "format": "jsonl" | "csv" | "avro" (default "jsonl"),
 * "compression": "none" | "gzip", "mode": "per_split" | "rolling", "roll_rows": N,
 * "roll_bytes": B}.
 *
 * per_split (default): process() writes the batch to <path>/<split id>.<ext> through a temporary
 * file in the same directory, fsync, rename and an fsync of the directory, so a file is either
 * absent or complete, and re-processing a split (a retry, a replay after a crash) overwrites it
 * with the same bytes: the side effect is idempotent by split id, and with the stage's
 * transactions the output is exactly once. Characters of the split id outside [A-Za-z0-9_.-]
 * (and a leading '.') are written as %XX.
 * rolling: see file_sink_roll.c (jsonl and csv only; at least once).
 * Extensions: jsonl, csv, avro, with ".gz" added for gzip-compressed jsonl and csv (a gzip member
 * per write); compressed avro uses the container's deflate codec instead. The directory is
 * created by open().
 */
#include "operators/file_sink_int.h"

#include "common/codec.h"
#include "common/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NU_FILE_SINK_DFLT_ROLL_ROWS  1000000LL
#define NU_FILE_SINK_DFLT_ROLL_BYTES (256LL << 20)

static const char *const nu_file_sink_fields[] = {"path", "format",    "compression",
                                                  "mode", "roll_rows", "roll_bytes"};

/* A string option that must be one of `allowed`; its index in *out. */
static void nu_file_sink_enum(const json_t *config, const char *key, const char *const *allowed,
                              size_t n, const char *expect, struct nu_json_path *jp,
                              struct nu_problems *p, int *out)
{
    const json_t *v = json_object_get(config, key);
    size_t mark = nu_json_path_push_key(jp, key);
    if (v && !json_is_string(v)) {
        nu_problems_add(p, jp->buf, "expected a string, got %s", nu_json_type_name(v));
    } else if (v) {
        size_t k = 0;
        while (k < n && strcmp(json_string_value(v), allowed[k]) != 0)
            k++;
        if (k == n)
            nu_problems_add(p, jp->buf, "unknown %s \"%s\" (expected %s)", key,
                            json_string_value(v), expect);
        else
            *out = (int)k;
    }
    nu_json_path_pop(jp, mark);
}

/* Parse into fs (dir borrowed from config). */
static void nu_file_sink_parse(const json_t *config, const char *path, struct nu_problems *p,
                               const char **dir, struct nu_file_sink *fs)
{
    static const char *const formats[] = {"jsonl", "avro", "csv", "json"};
    static const char *const comps[] = {"none", "gzip"};
    static const char *const modes[] = {"per_split", "rolling"};
    struct nu_json_path jp;
    const json_t *v;
    size_t mark;
    int f = 0, c = 0, m = 0;

    *dir = NULL;
    fs->format = NU_FSINK_JSONL;
    fs->roll_rows = NU_FILE_SINK_DFLT_ROLL_ROWS;
    fs->roll_bytes = NU_FILE_SINK_DFLT_ROLL_BYTES;
    nu_builtin_path_init(&jp, path);
    if (!nu_builtin_expect_object(config, &jp, p))
        return;
    nu_json_check_fields(config, nu_file_sink_fields, 6, &jp, p);
    v = json_object_get(config, "path");
    mark = nu_json_path_push_key(&jp, "path");
    if (!v)
        nu_problems_add(p, path ? path : "$", "missing field \"path\"");
    else if (!json_is_string(v))
        nu_problems_add(p, jp.buf, "expected a string, got %s", nu_json_type_name(v));
    else if (json_string_length(v) == 0 || json_string_length(v) > NU_FILE_SINK_MAX_PATH ||
             strlen(json_string_value(v)) != json_string_length(v))
        nu_problems_add(p, jp.buf, "must be a directory path of 1 to %d bytes",
                        NU_FILE_SINK_MAX_PATH);
    else
        *dir = json_string_value(v);
    nu_json_path_pop(&jp, mark);

    nu_file_sink_enum(config, "format", formats, 4, "\"jsonl\", \"csv\" or \"avro\"", &jp, p, &f);
    nu_file_sink_enum(config, "compression", comps, 2, "\"none\" or \"gzip\"", &jp, p, &c);
    nu_file_sink_enum(config, "mode", modes, 2, "\"per_split\" or \"rolling\"", &jp, p, &m);
    fs->format = f == 3 ? NU_FSINK_JSONL : (nu_fsink_format_t)f;
    fs->gzip = c == 1;
    fs->rolling = m == 1;
    nu_builtin_get_int(config, "roll_rows", 1, NU_FILE_SINK_MAX_ROLL, false,
                       NU_FILE_SINK_DFLT_ROLL_ROWS, &jp, p, &fs->roll_rows);
    nu_builtin_get_int(config, "roll_bytes", 1, NU_FILE_SINK_MAX_ROLL, false,
                       NU_FILE_SINK_DFLT_ROLL_BYTES, &jp, p, &fs->roll_bytes);
    if (fs->rolling && fs->format == NU_FSINK_AVRO) {
        mark = nu_json_path_push_key(&jp, "mode");
        nu_problems_add(p, jp.buf, "mode \"rolling\" supports the jsonl and csv formats");
        nu_json_path_pop(&jp, mark);
    }
    if (!fs->rolling &&
        (json_object_get(config, "roll_rows") || json_object_get(config, "roll_bytes")))
        nu_problems_add(p, jp.buf, "roll_rows and roll_bytes apply to mode \"rolling\" only");
    snprintf(fs->ext, sizeof(fs->ext), "%s%s",
             fs->format == NU_FSINK_AVRO  ? "avro"
             : fs->format == NU_FSINK_CSV ? "csv"
                                          : "jsonl",
             fs->gzip && fs->format != NU_FSINK_AVRO ? ".gz" : "");
}

static void nu_file_sink_validate(const json_t *config, const char *path, struct nu_problems *p)
{
    struct nu_file_sink fs = {0};
    const char *dir;
    nu_file_sink_parse(config, path, p, &dir, &fs);
}

static nu_err_t nu_file_sink_schema(const json_t *config, const struct nu_schema *in,
                                    const char *path, struct nu_problems *p, struct nu_schema **out,
                                    struct nu_errbuf *eb)
{
    struct nu_file_sink fs = {0};
    struct nu_problems local;
    const char *dir;
    nu_err_t rc = NU_OK;

    *out = NULL;
    if (!in)
        return nu_builtin_fault(p, eb, NU_ERR_SPEC, path, "file_sink needs an input schema");
    nu_problems_init(&local);
    nu_file_sink_parse(config, path, &local, &dir, &fs);
    nu_problems_free(&local);
    if (nu_fsink_check_schema(fs.format, in, eb) != NU_OK) {
        if (p)
            nu_problems_add(p, path, "input cannot be written: %s", nu_err_msg(eb));
        rc = NU_ERR_SCHEMA;
    }
    return rc;
}

/* mkdir -p; NU_ERR_IO naming the directory on failure. */
static nu_err_t nu_file_sink_mkdirs(const char *dir, struct nu_errbuf *eb)
{
    char *tmp = nu_xstrdup(dir);
    nu_err_t rc = NU_OK;

    for (char *s = tmp + 1;; s++) {
        bool end = *s == '\0';
        if (*s != '/' && !end)
            continue;
        *s = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) {
            rc = nu_err_set(eb, NU_ERR_IO, "could not create directory \"%s\": %s", tmp,
                            strerror(errno));
            break;
        }
        if (end)
            break;
        *s = '/';
    }
    free(tmp);
    return rc;
}

static void nu_file_sink_close(void *state)
{
    struct nu_file_sink *fs = state;
    if (!fs)
        return;
    /* best effort: a file that cannot be finalised now is recovered by the next open() */
    nu_fsink_roll_finish(fs, NULL);
    nu_fsink_roll_free(fs);
    nu_buf_free(&fs->buf);
    nu_buf_free(&fs->zbuf);
    free(fs->dir);
    free(fs);
}

static nu_err_t nu_file_sink_open(const struct nu_op_open_args *args, void **state,
                                  struct nu_errbuf *eb)
{
    struct nu_file_sink *fs = NULL;
    struct nu_problems p;
    const char *dir = NULL;
    nu_err_t rc;

    *state = NULL;
    rc = nu_builtin_check_config(&nu_op_file_sink, args->config, eb);
    if (rc != NU_OK)
        goto fail;
    fs = nu_xcalloc(1, sizeof(*fs));
    fs->roll_fd = -1;
    nu_problems_init(&p);
    nu_file_sink_parse(args->config, "$", &p, &dir, fs);
    nu_problems_free(&p);
    fs->dir = nu_xstrdup(dir);
    fs->instance = args->instance;
    rc = nu_file_sink_mkdirs(fs->dir, eb);
    if (rc == NU_OK && fs->rolling)
        rc = nu_fsink_roll_recover(fs, eb);
    if (rc != NU_OK)
        goto fail;
    *state = fs;
    return NU_OK;
fail:
    nu_file_sink_close(fs);
    return rc;
}

static nu_err_t nu_file_sink_process(void *state, const struct nu_op_batch_ctx *ctx,
                                     const struct nu_batch *in, const struct nu_op_emit *out,
                                     struct nu_errbuf *eb)
{
    struct nu_file_sink *fs = state;
    const struct nu_buf *data = NULL;
    char *name = NULL, *final = NULL, *tmp = NULL;
    int fd = -1;
    nu_err_t rc = NU_OK;

    if (!in || !in->schema) {
        rc = nu_err_set(eb, NU_ERR_INVALID, "operator \"file_sink\" got no input batch");
        goto out;
    }
    name = nu_fsink_name(ctx ? ctx->split_id : NULL);
    if (!name) {
        rc = nu_err_set(eb, NU_ERR_INVALID,
                        "file_sink needs a split id of 1 to %d bytes to name its file",
                        NU_FILE_SINK_MAX_SPLIT_ID);
        goto out;
    }
    if (fs->rolling) {
        rc = nu_fsink_roll_process(fs, ctx->split_id, in, eb);
        goto out;
    }
    rc = nu_fsink_encode(fs, in, true, &data, eb);
    if (rc != NU_OK) {
        nu_err_prefix(eb, "file_sink could not encode split \"%s\": ", ctx->split_id);
        goto out;
    }
    final = nu_xasprintf("%s/%s.%s", fs->dir, name, fs->ext);
    tmp = nu_xasprintf("%s/.%s.%s.tmp.%ld.%u.%p", fs->dir, name, fs->ext, (long)getpid(),
                       (unsigned)fs->instance, (void *)fs);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = nu_err_set(eb, NU_ERR_IO, "could not create file \"%s\": %s", tmp, strerror(errno));
        goto out;
    }
    rc = nu_fsink_write_all(fd, data->data, data->len, tmp, eb);
    if (rc == NU_OK && fsync(fd) != 0)
        rc = nu_err_set(eb, NU_ERR_IO, "could not fsync file \"%s\": %s", tmp, strerror(errno));
    if (close(fd) != 0 && rc == NU_OK)
        rc = nu_err_set(eb, NU_ERR_IO, "could not close file \"%s\": %s", tmp, strerror(errno));
    fd = -1;
    if (rc != NU_OK)
        goto out;
    if (rename(tmp, final) != 0) {
        rc = nu_err_set(eb, NU_ERR_IO, "could not rename file \"%s\" to \"%s\": %s", tmp, final,
                        strerror(errno));
        goto out;
    }
    rc = nu_fsink_sync_dir(fs->dir, eb);
out:
    if (fd >= 0)
        close(fd);
    if (rc != NU_OK && tmp)
        unlink(tmp); /* harmless after a successful rename: the name is gone */
    free(tmp);
    free(final);
    free(name);
    return rc;
}

static nu_err_t nu_file_sink_end(void *state, const struct nu_op_batch_ctx *ctx,
                                 const struct nu_op_emit *out, struct nu_errbuf *eb)
{
    return nu_fsink_roll_finish(state, eb);
}

const struct nu_operator nu_op_file_sink = {
    .abi_version = NU_OPERATOR_ABI_VERSION,
    .name = "file_sink",
    .kind = NU_OPKIND_SINK,
    .summary = "write splits to files (jsonl, csv, avro; gzip; per split or rolling)",
    .validate = nu_file_sink_validate,
    .schema = nu_file_sink_schema,
    .open = nu_file_sink_open,
    .process = nu_file_sink_process,
    .end_of_partition = nu_file_sink_end,
    .close = nu_file_sink_close,
};
