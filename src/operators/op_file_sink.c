/*
 * op_file_sink.c — the `file_sink` sink: one file per input split.
 *
 * Config {"path": "out/", "format": "jsonl" | "avro" (default "jsonl")}. process() encodes the
 * batch with the split codec and writes it to <path>/<split id>.<ext> through a temporary file in
 * the same directory, fsync, rename and an fsync of the directory, so a file is either absent or
 * complete, and re-processing a split (a retry, a replay after a crash) overwrites it with the same
 * bytes: the side effect is idempotent by split id. Characters of the split id outside
 * [A-Za-z0-9_.-] (and a leading '.') are written as %XX. The directory is created by open().
 */
#include "operators/builtin.h"

#include "common/buf.h"
#include "common/codec.h"
#include "common/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NU_FILE_SINK_MAX_PATH     3072
#define NU_FILE_SINK_MAX_SPLIT_ID 512

struct nu_file_sink {
    char *dir;
    nu_format_t format;
    const char *ext;
    uint32_t instance;
    struct nu_buf buf; /* reused across splits */
};

static const char *const nu_file_sink_fields[] = {"path", "format"};

static void nu_file_sink_parse(const json_t *config, const char *path, struct nu_problems *p,
                               const char **dir, nu_format_t *format)
{
    struct nu_json_path jp;
    const json_t *v;
    size_t mark;

    *dir = NULL;
    *format = NU_FORMAT_JSON;
    nu_builtin_path_init(&jp, path);
    if (!nu_builtin_expect_object(config, &jp, p))
        return;
    nu_json_check_fields(config, nu_file_sink_fields, 2, &jp, p);
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

    v = json_object_get(config, "format");
    mark = nu_json_path_push_key(&jp, "format");
    if (v && !json_is_string(v)) {
        nu_problems_add(p, jp.buf, "expected a string, got %s", nu_json_type_name(v));
    } else if (v) {
        const char *s = json_string_value(v);
        if (strcmp(s, "jsonl") == 0 || strcmp(s, "json") == 0)
            *format = NU_FORMAT_JSON;
        else if (strcmp(s, "avro") == 0)
            *format = NU_FORMAT_AVRO;
        else
            nu_problems_add(p, jp.buf, "unknown format \"%s\" (expected \"jsonl\" or \"avro\")", s);
    }
    nu_json_path_pop(&jp, mark);
}

static void nu_file_sink_validate(const json_t *config, const char *path, struct nu_problems *p)
{
    const char *dir;
    nu_format_t f;
    nu_file_sink_parse(config, path, p, &dir, &f);
}

static nu_err_t nu_file_sink_schema(const json_t *config, const struct nu_schema *in,
                                    const char *path, struct nu_problems *p, struct nu_schema **out,
                                    struct nu_errbuf *eb)
{
    nu_err_t rc = NU_OK;

    *out = NULL;
    if (!in)
        return nu_builtin_fault(p, eb, NU_ERR_SPEC, path, "file_sink needs an input schema");
    if (nu_codec_check_schema(in, eb) != NU_OK) {
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
    nu_buf_free(&fs->buf);
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
    nu_problems_init(&p);
    nu_file_sink_parse(args->config, "$", &p, &dir, &fs->format);
    nu_problems_free(&p);
    fs->dir = nu_xstrdup(dir);
    fs->ext = fs->format == NU_FORMAT_AVRO ? "avro" : "jsonl";
    fs->instance = args->instance;
    rc = nu_file_sink_mkdirs(fs->dir, eb);
    if (rc != NU_OK)
        goto fail;
    *state = fs;
    return NU_OK;
fail:
    nu_file_sink_close(fs);
    return rc;
}

/* The file name of a split id, escaped; NULL when the id is empty or too long. */
static char *nu_file_sink_name(const char *split)
{
    size_t len = split ? strlen(split) : 0;
    char *name, *w;

    if (len == 0 || len > NU_FILE_SINK_MAX_SPLIT_ID)
        return NULL;
    name = w = nu_xmalloc(len * 3 + 1);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)split[i];
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '_' || c == '-' || (c == '.' && i > 0);
        if (plain)
            *w++ = (char)c;
        else
            w += sprintf(w, "%%%02X", c);
    }
    *w = '\0';
    return name;
}

static nu_err_t nu_file_sink_write_all(int fd, const unsigned char *p, size_t n, const char *path,
                                       struct nu_errbuf *eb)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return nu_err_set(eb, NU_ERR_IO, "could not write file \"%s\": %s", path,
                              strerror(errno));
        p += w;
        n -= (size_t)w;
    }
    return NU_OK;
}

static nu_err_t nu_file_sink_process(void *state, const struct nu_op_batch_ctx *ctx,
                                     const struct nu_batch *in, const struct nu_op_emit *out,
                                     struct nu_errbuf *eb)
{
    struct nu_file_sink *fs = state;
    struct nu_codec_opts co = {.format = fs->format};
    char *name = NULL, *final = NULL, *tmp = NULL;
    int fd = -1, dfd = -1;
    nu_err_t rc = NU_OK;

    if (!in || !in->schema) {
        rc = nu_err_set(eb, NU_ERR_INVALID, "operator \"file_sink\" got no input batch");
        goto out;
    }
    name = nu_file_sink_name(ctx ? ctx->split_id : NULL);
    if (!name) {
        rc = nu_err_set(eb, NU_ERR_INVALID,
                        "file_sink needs a split id of 1 to %d bytes to name its file",
                        NU_FILE_SINK_MAX_SPLIT_ID);
        goto out;
    }
    rc = nu_codec_encode(&co, in, &fs->buf, eb);
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
    rc = nu_file_sink_write_all(fd, fs->buf.data, fs->buf.len, tmp, eb);
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
    dfd = open(fs->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0)
        rc = nu_err_set(eb, NU_ERR_IO, "could not fsync directory \"%s\": %s", fs->dir,
                        strerror(errno));
out:
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    if (rc != NU_OK && tmp)
        unlink(tmp); /* harmless after a successful rename: the name is gone */
    free(tmp);
    free(final);
    free(name);
    return rc;
}

const struct nu_operator nu_op_file_sink = {
    .abi_version = NU_OPERATOR_ABI_VERSION,
    .name = "file_sink",
    .kind = NU_OPKIND_SINK,
    .summary = "write each split to <path>/<split id>.jsonl|.avro, atomically and idempotently",
    .validate = nu_file_sink_validate,
    .schema = nu_file_sink_schema,
    .open = nu_file_sink_open,
    .process = nu_file_sink_process,
    .close = nu_file_sink_close,
};
