/*
 * op_print.c — the `print` sink: rows as JSON Lines on standard output, for debugging.
 *
 * Config {"prefix": "text"} (optional): each line is the prefix followed by the row as one JSON
 * object (the split codec's JSON Lines form: keys in column order, bytes as base64). Output is
 * flushed after every batch, so lines of one batch are written together. Not idempotent: a
 * retried or replayed split is printed again.
 */
#include "operators/builtin.h"

#include "common/buf.h"
#include "common/codec.h"
#include "common/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NU_PRINT_MAX_PREFIX 1024

struct nu_print {
    char *prefix; /* owned, may be empty */
    struct nu_buf buf;
};

static const char *const nu_print_fields[] = {"prefix"};

static const char *nu_print_parse(const json_t *config, const char *path, struct nu_problems *p)
{
    struct nu_json_path jp;
    const json_t *v;
    const char *prefix = "";
    size_t mark;

    nu_builtin_path_init(&jp, path);
    if (!nu_builtin_expect_object(config, &jp, p))
        return prefix;
    nu_json_check_fields(config, nu_print_fields, 1, &jp, p);
    v = json_object_get(config, "prefix");
    mark = nu_json_path_push_key(&jp, "prefix");
    if (v && (!json_is_string(v) || json_string_length(v) > NU_PRINT_MAX_PREFIX ||
              strlen(json_string_value(v)) != json_string_length(v) ||
              strchr(json_string_value(v), '\n')))
        nu_problems_add(p, jp.buf, "must be a string of at most %d bytes without line ends",
                        NU_PRINT_MAX_PREFIX);
    else if (v)
        prefix = json_string_value(v);
    nu_json_path_pop(&jp, mark);
    return prefix;
}

static void nu_print_validate(const json_t *config, const char *path, struct nu_problems *p)
{
    nu_print_parse(config, path, p);
}

static nu_err_t nu_print_schema(const json_t *config, const struct nu_schema *in, const char *path,
                                struct nu_problems *p, struct nu_schema **out, struct nu_errbuf *eb)
{
    *out = NULL;
    if (!in)
        return nu_builtin_fault(p, eb, NU_ERR_SPEC, path, "print needs an input schema");
    return NU_OK;
}

static void nu_print_close(void *state)
{
    struct nu_print *pr = state;
    if (!pr)
        return;
    nu_buf_free(&pr->buf);
    free(pr->prefix);
    free(pr);
}

static nu_err_t nu_print_open(const struct nu_op_open_args *args, void **state,
                              struct nu_errbuf *eb)
{
    struct nu_print *pr;
    struct nu_problems p;
    nu_err_t rc;

    *state = NULL;
    rc = nu_builtin_check_config(&nu_op_print, args->config, eb);
    if (rc != NU_OK)
        return rc;
    pr = nu_xcalloc(1, sizeof(*pr));
    nu_problems_init(&p);
    pr->prefix = nu_xstrdup(nu_print_parse(args->config, "$", &p));
    nu_problems_free(&p);
    *state = pr;
    return NU_OK;
}

static nu_err_t nu_print_process(void *state, const struct nu_op_batch_ctx *ctx,
                                 const struct nu_batch *in, const struct nu_op_emit *out,
                                 struct nu_errbuf *eb)
{
    struct nu_print *pr = state;
    struct nu_codec_opts co = {.format = NU_FORMAT_JSON};
    size_t plen = strlen(pr->prefix);
    nu_err_t rc;

    if (!in || !in->schema)
        return nu_err_set(eb, NU_ERR_INVALID, "operator \"print\" got no input batch");
    if (in->nrows == 0)
        return NU_OK;
    rc = nu_codec_encode(&co, in, &pr->buf, eb);
    if (rc != NU_OK) {
        nu_err_prefix(eb, "print: ");
        return rc;
    }
    /* the codec writes one line per row, each ending in '\n' */
    const char *s = (const char *)pr->buf.data, *end = s + pr->buf.len;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        size_t n = nl ? (size_t)(nl - s) + 1 : (size_t)(end - s);
        if ((plen && fwrite(pr->prefix, 1, plen, stdout) != plen) || fwrite(s, 1, n, stdout) != n)
            return nu_err_set(eb, NU_ERR_IO, "print: could not write to standard output");
        if (!nl && fputc('\n', stdout) == EOF)
            return nu_err_set(eb, NU_ERR_IO, "print: could not write to standard output");
        s += n;
    }
    if (fflush(stdout) != 0)
        return nu_err_set(eb, NU_ERR_IO, "print: could not flush standard output");
    return NU_OK;
}

const struct nu_operator nu_op_print = {
    .abi_version = NU_OPERATOR_ABI_VERSION,
    .name = "print",
    .kind = NU_OPKIND_SINK,
    .summary = "write rows as JSON Lines to standard output (for debugging)",
    .validate = nu_print_validate,
    .schema = nu_print_schema,
    .open = nu_print_open,
    .process = nu_print_process,
    .close = nu_print_close,
};
