/*
 * op_exec.c — the `exec` transform: user code in any language, run as a long-lived child
 * process fed one split at a time over a framed stdin/stdout protocol (docs/udf.md).
 *
 * Config {"argv": ["python3", "examples/udf/double.py"], "env": {"K": "v"}, "cwd": "dir",
 * "format": "jsonl" | "avro", "timeout_ms": 30000, "output_schema": [["id","int64"], …]}.
 * Without output_schema the output schema is the input schema (map- and filter-style UDFs that
 * keep the columns); the UDF's rows are decoded against the output schema, so a UDF that answers
 * with other columns or types fails the split instead of changing the stage's schema.
 *
 * One child per operator instance, started at the first process() and again after it died,
 * broke the protocol or missed the timeout (then its process group is killed). Transport
 * failures are NU_ERR_OPERATOR_RETRY (the runtime retries, then dead-letters the split with the
 * reason); an "error" answer is retried only when the UDF marks it retriable; rows that do not
 * match the output schema are NU_ERR_OPERATOR. Per-row rejects go to ctx->reject.
 */
#include "operators/builtin.h"

#include "operators/exec_int.h"

#include "common/codec.h"
#include "common/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NU_EXEC_DEFAULT_TIMEOUT_MS 30000
#define NU_EXEC_MAX_TIMEOUT_MS     86400000
#define NU_EXEC_CLOSE_GRACE_MS     2000

struct nu_exec {
    char **argv; /* owned, NULL-terminated */
    char **env;  /* owned "K=v" entries, NULL-terminated */
    char *cwd;   /* owned or NULL */
    nu_format_t format;
    int timeout_ms;
    struct nu_schema *out_schema; /* from output_schema, or NULL: same as the input */
    nu_exec_proc_t *proc;
    struct nu_buf req, rows, hint;
    char split[128]; /* id of the split being processed, for stderr lines */
};

static const char *const nu_exec_fields[] = {"argv",   "env",        "cwd",
                                             "format", "timeout_ms", "output_schema"};

static bool nu_exec_env_name_ok(const char *s)
{
    if (!*s || (*s >= '0' && *s <= '9'))
        return false;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return false;
    return true;
}

/* A string without NUL bytes of 1 … NU_EXEC_MAX_ARG_LEN bytes (0 allowed when `empty_ok`). */
static void nu_exec_check_str(const json_t *v, bool empty_ok, const struct nu_json_path *jp,
                              struct nu_problems *p)
{
    if (!json_is_string(v))
        nu_problems_add(p, jp->buf, "expected a string, got %s", nu_json_type_name(v));
    else if (strlen(json_string_value(v)) != json_string_length(v))
        nu_problems_add(p, jp->buf, "must not contain NUL characters");
    else if (json_string_length(v) > NU_EXEC_MAX_ARG_LEN)
        nu_problems_add(p, jp->buf, "longer than %d bytes", NU_EXEC_MAX_ARG_LEN);
    else if (!empty_ok && json_string_length(v) == 0)
        nu_problems_add(p, jp->buf, "must not be empty");
}

static nu_err_t nu_exec_parse_schema(const json_t *v, struct nu_schema **out, struct nu_errbuf *eb)
{
    char *text = json_dumps(v, JSON_COMPACT);
    nu_err_t rc;
    if (!text)
        return nu_err_set(eb, NU_ERR_CONFIG, "could not serialize output_schema");
    rc = nu_schema_from_json(text, strlen(text), out, eb);
    if (rc == NU_OK)
        rc = nu_codec_check_schema(*out, eb);
    if (rc != NU_OK) {
        nu_schema_unref(*out);
        *out = NULL;
    }
    free(text);
    return rc;
}

static void nu_exec_validate(const json_t *config, const char *path, struct nu_problems *p)
{
    struct nu_json_path jp;
    const json_t *v, *item;
    const char *k;
    size_t mark, i;
    long long ll;

    nu_builtin_path_init(&jp, path);
    if (!nu_builtin_expect_object(config, &jp, p))
        return;
    nu_json_check_fields(config, nu_exec_fields, 6, &jp, p);
    v = json_object_get(config, "argv");
    mark = nu_json_path_push_key(&jp, "argv");
    if (v && (!json_is_array(v) || json_array_size(v) == 0)) {
        nu_problems_add(p, jp.buf, "expected a non-empty array of strings, got %s",
                        nu_json_type_name(v));
    } else if (v && json_array_size(v) > NU_EXEC_MAX_ARGS) {
        nu_problems_add(p, jp.buf, "more than %d arguments", NU_EXEC_MAX_ARGS);
    } else if (v) {
        json_array_foreach(v, i, item)
        {
            size_t m = nu_json_path_push_index(&jp, i);
            nu_exec_check_str(item, i > 0, &jp, p);
            nu_json_path_pop(&jp, m);
        }
    }
    nu_json_path_pop(&jp, mark);
    if (!v)
        nu_problems_add(p, jp.buf, "missing field \"argv\" (the program and its arguments)");
    if ((v = json_object_get(config, "env"))) {
        mark = nu_json_path_push_key(&jp, "env");
        if (!json_is_object(v))
            nu_problems_add(p, jp.buf, "expected an object of strings, got %s",
                            nu_json_type_name(v));
        else if (json_object_size(v) > NU_EXEC_MAX_ENV)
            nu_problems_add(p, jp.buf, "more than %d variables", NU_EXEC_MAX_ENV);
        else {
            json_object_foreach((json_t *)v, k, item)
            {
                size_t m = nu_json_path_push_key(&jp, k);
                if (!nu_exec_env_name_ok(k))
                    nu_problems_add(p, jp.buf, "variable name must match [A-Za-z_][A-Za-z0-9_]*");
                else
                    nu_exec_check_str(item, true, &jp, p);
                nu_json_path_pop(&jp, m);
            }
        }
        nu_json_path_pop(&jp, mark);
    }
    if ((v = json_object_get(config, "cwd"))) {
        mark = nu_json_path_push_key(&jp, "cwd");
        nu_exec_check_str(v, false, &jp, p);
        nu_json_path_pop(&jp, mark);
    }
    if ((v = json_object_get(config, "format"))) {
        nu_format_t f;
        mark = nu_json_path_push_key(&jp, "format");
        if (!json_is_string(v) || nu_format_parse(json_string_value(v), &f, NULL) != NU_OK)
            nu_problems_add(p, jp.buf, "expected \"jsonl\" or \"avro\"");
        nu_json_path_pop(&jp, mark);
    }
    nu_builtin_get_int(config, "timeout_ms", 1, NU_EXEC_MAX_TIMEOUT_MS, false, 0, &jp, p, &ll);
    if ((v = json_object_get(config, "output_schema"))) {
        struct nu_schema *s = NULL;
        struct nu_errbuf eb;
        nu_errbuf_clear(&eb);
        mark = nu_json_path_push_key(&jp, "output_schema");
        if (!json_is_array(v))
            nu_problems_add(p, jp.buf,
                            "expected a compact schema such as [[\"id\", \"int64\"]], got %s",
                            nu_json_type_name(v));
        else if (nu_exec_parse_schema(v, &s, &eb) != NU_OK)
            nu_problems_add(p, jp.buf, "%s", nu_err_msg(&eb));
        nu_schema_unref(s);
        nu_json_path_pop(&jp, mark);
    }
}

static nu_err_t nu_exec_schema(const json_t *config, const struct nu_schema *in, const char *path,
                               struct nu_problems *p, struct nu_schema **out, struct nu_errbuf *eb)
{
    const json_t *v = json_object_get(config, "output_schema");
    struct nu_errbuf xeb;
    nu_err_t rc;

    *out = NULL;
    if (!in)
        return nu_builtin_fault(p, eb, NU_ERR_SPEC, path, "exec needs an input schema");
    if (!v) {
        *out = nu_schema_ref((struct nu_schema *)in);
        return NU_OK;
    }
    nu_errbuf_clear(&xeb);
    rc = nu_exec_parse_schema(v, out, &xeb);
    if (rc != NU_OK)
        return nu_builtin_fault(p, eb, NU_ERR_CONFIG, path, "output_schema: %s", nu_err_msg(&xeb));
    return NU_OK;
}

static void nu_exec_free_strv(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

/* Forward a stderr line to the stage log. */
struct nu_exec_call {
    struct nu_exec *x;
    const struct nu_op_batch_ctx *ctx;
    const struct nu_batch *in;
    const struct nu_schema *out_schema;
    struct nu_batch **outs;
    size_t nouts, capouts, out_bytes;
    struct {
        size_t row;
        char *reason;
    } * rejects;
    size_t nrejects;
    unsigned char *rejected; /* one flag per input row */
    nu_err_t answer;         /* an "error" answer or rows not matching the schema */
    struct nu_errbuf aeb;
};

static void nu_exec_on_line(void *ctx, const char *line)
{
    struct nu_exec_call *c = ctx;
    if (c && c->ctx && c->ctx->log)
        c->ctx->log(c->ctx->log_ctx, NU_OP_LOG_INFO, line);
}

static nu_err_t nu_exec_control(const struct nu_exec_frame *f, json_t **out, struct nu_errbuf *eb)
{
    json_error_t jerr;
    *out = json_loadb((const char *)f->body, f->len, JSON_REJECT_DUPLICATES, &jerr);
    if (!*out || !json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return nu_err_set(eb, NU_ERR_CORRUPT, "the body of frame \"%s\" is not a JSON object%s%s",
                          f->kind, jerr.text[0] ? ": " : "", jerr.text);
    }
    return NU_OK;
}

static nu_err_t nu_exec_on_rows(struct nu_exec_call *c, const struct nu_exec_frame *f,
                                struct nu_errbuf *eb)
{
    struct nu_batch *b = NULL;
    struct nu_errbuf deb;
    nu_err_t rc;

    c->out_bytes += f->len;
    if (c->out_bytes > NU_EXEC_MAX_OUTPUT)
        return nu_err_set(eb, NU_ERR_TOO_LARGE, "the answer has more than %u bytes of rows",
                          NU_EXEC_MAX_OUTPUT);
    if (c->answer != NU_OK)
        return NU_OK; /* the split has failed already: read on to the end of the answer */
    nu_errbuf_clear(&deb);
    rc = nu_codec_decode_cached(NULL, c->x->format, f->body, f->len,
                                c->x->format == NU_FORMAT_JSON ? (const char *)c->x->hint.data
                                                               : NULL,
                                c->x->format == NU_FORMAT_JSON ? c->x->hint.len : 0, &b, &deb);
    if (rc == NU_OK && !nu_schema_equal(b->schema, c->out_schema))
        rc = nu_err_set(&deb, NU_ERR_SCHEMA,
                        "the Avro writer schema differs from the output "
                        "schema");
    if (rc != NU_OK) {
        nu_batch_destroy(b);
        c->answer = nu_err_set(&c->aeb, NU_ERR_OPERATOR,
                               "UDF answered with rows that do not match the output schema: %s",
                               nu_err_msg(&deb));
        return NU_OK;
    }
    if (c->nouts == c->capouts) {
        c->capouts = c->capouts ? c->capouts * 2 : 4;
        c->outs = nu_xrealloc(c->outs, c->capouts * sizeof(*c->outs));
    }
    c->outs[c->nouts++] = b;
    return NU_OK;
}

static nu_err_t nu_exec_on_frame(void *ctx, const struct nu_exec_frame *f, bool *done,
                                 struct nu_errbuf *eb)
{
    struct nu_exec_call *c = ctx;
    json_t *j = NULL;
    nu_err_t rc = NU_OK;

    if (strcmp(f->kind, "rows") == 0)
        return nu_exec_on_rows(c, f, eb);
    if (strcmp(f->kind, "done") == 0) {
        *done = true;
        return NU_OK;
    }
    if (strcmp(f->kind, "reject") != 0 && strcmp(f->kind, "error") != 0)
        return nu_err_set(eb, NU_ERR_CORRUPT, "unknown frame kind \"%s\"", f->kind);
    if ((rc = nu_exec_control(f, &j, eb)) != NU_OK)
        return rc;
    const json_t *msg = json_object_get(j, strcmp(f->kind, "error") == 0 ? "message" : "reason");
    const char *text = json_is_string(msg) ? json_string_value(msg) : "(no reason given)";
    if (strcmp(f->kind, "error") == 0) {
        if (c->answer == NU_OK)
            c->answer =
                nu_err_set(&c->aeb,
                           json_is_true(json_object_get(j, "retriable")) ? NU_ERR_OPERATOR_RETRY
                                                                         : NU_ERR_OPERATOR,
                           "UDF failed: %s", text);
        *done = true;
        goto out;
    }
    const json_t *row = json_object_get(j, "row");
    json_int_t r = json_is_integer(row) ? json_integer_value(row) : -1;
    if (r < 0 || (size_t)r >= c->in->nrows) {
        rc = nu_err_set(eb, NU_ERR_CORRUPT,
                        "reject names row %lld, but the split has rows 0 to %zu only", (long long)r,
                        c->in->nrows ? c->in->nrows - 1 : 0);
        goto out;
    }
    if (c->rejected[r]) {
        rc = nu_err_set(eb, NU_ERR_CORRUPT, "row %lld rejected twice", (long long)r);
        goto out;
    }
    c->rejected[r] = 1;
    c->rejects = nu_xrealloc(c->rejects, (c->nrejects + 1) * sizeof(*c->rejects));
    c->rejects[c->nrejects].row = (size_t)r;
    c->rejects[c->nrejects++].reason = nu_xasprintf("exec: row %lld: %s", (long long)r, text);
out:
    json_decref(j);
    return rc;
}

/* The request for one split: a "split" frame (metadata) and a "rows" frame (the rows). */
static nu_err_t nu_exec_request(struct nu_exec *x, const struct nu_op_batch_ctx *ctx,
                                const struct nu_batch *in, const struct nu_schema *out,
                                struct nu_errbuf *eb)
{
    struct nu_codec_opts o = {.format = x->format, .max_value_bytes = NU_EXEC_MAX_FRAME};
    json_t *meta = NULL, *s = NULL;
    char *text = NULL;
    nu_err_t rc;

    nu_buf_reset(&x->req);
    if ((rc = nu_codec_encode(&o, in, &x->rows, eb)) != NU_OK)
        goto out;
    meta = json_pack("{s:s,s:i,s:s,s:I}", "split", ctx && ctx->split_id ? ctx->split_id : "",
                     "attempt", ctx ? (int)ctx->attempt : 1, "format",
                     x->format == NU_FORMAT_AVRO ? "avro" : "jsonl", "rows", (json_int_t)in->nrows);
    for (int k = 0; k < 2 && rc == NU_OK; k++) {
        rc = nu_schema_to_json(k ? out : in->schema, &x->hint, eb);
        if (rc == NU_OK && !(s = json_loadb((const char *)x->hint.data, x->hint.len, 0, NULL)))
            rc = nu_err_set(eb, NU_ERR_INTERNAL, "could not read back a schema");
        if (rc == NU_OK)
            json_object_set_new(meta, k ? "output_schema" : "schema", s);
    }
    if (rc != NU_OK)
        goto out;
    /* x->hint now holds the output schema: the decoding hint of the answer's rows */
    text = json_dumps(meta, JSON_COMPACT);
    nu_exec_frame_write(&x->req, "split", text, strlen(text));
    nu_exec_frame_write(&x->req, "rows", x->rows.data, x->rows.len);
out:
    free(text);
    json_decref(meta);
    return rc;
}

static void nu_exec_call_free(struct nu_exec_call *c)
{
    for (size_t i = 0; i < c->nouts; i++)
        nu_batch_destroy(c->outs[i]);
    free(c->outs);
    for (size_t i = 0; i < c->nrejects; i++)
        free(c->rejects[i].reason);
    free(c->rejects);
    free(c->rejected);
}

static nu_err_t nu_exec_process(void *state, const struct nu_op_batch_ctx *ctx,
                                const struct nu_batch *in, const struct nu_op_emit *out,
                                struct nu_errbuf *eb)
{
    struct nu_exec *x = state;
    const struct nu_schema *os;
    struct nu_exec_call c = {.x = x, .ctx = ctx, .in = in};
    size_t i = 0;
    nu_err_t rc;

    if (!in || !in->schema)
        return nu_err_set(eb, NU_ERR_INVALID, "operator \"exec\" got no input batch");
    os = x->out_schema ? x->out_schema : in->schema;
    c.out_schema = os;
    nu_errbuf_clear(&c.aeb);
    snprintf(x->split, sizeof(x->split), "%s", ctx && ctx->split_id ? ctx->split_id : "-");
    if ((rc = nu_exec_request(x, ctx, in, os, eb)) != NU_OK)
        goto fail;
    if (!nu_exec_proc_alive(x->proc)) {
        struct nu_exec_spec spec = {.argv = x->argv, .env = x->env, .cwd = x->cwd};
        nu_exec_proc_destroy(x->proc, 0, nu_exec_on_line, &c);
        x->proc = NULL;
        if ((rc = nu_exec_proc_start(&spec, &x->proc, eb)) != NU_OK)
            goto fail;
    }
    c.rejected = nu_xcalloc(in->nrows ? in->nrows : 1, 1);
    rc = nu_exec_proc_call(x->proc, x->req.data, x->req.len, x->timeout_ms, nu_exec_on_frame,
                           nu_exec_on_line, &c, eb);
    if (rc != NU_OK)
        goto fail;
    if (c.answer != NU_OK) {
        rc = nu_err_set(eb, c.answer, "%s", nu_err_msg(&c.aeb));
        goto fail;
    }
    for (size_t k = 0; k < c.nrejects && rc == NU_OK; k++)
        rc = nu_op_reject_row(ctx, in, c.rejects[k].row, NULL, 0, NU_ERR_OPERATOR,
                              c.rejects[k].reason, eb);
    for (; i < c.nouts && rc == NU_OK; i++)
        rc = nu_op_emit_batch(out, c.outs[i], eb);
    for (; i < c.nouts; i++)
        nu_batch_destroy(c.outs[i]); /* not handed over after a failed emit */
    c.nouts = 0;
    if (rc != NU_OK)
        goto fail;
    nu_exec_call_free(&c);
    return NU_OK;
fail:
    nu_err_prefix(eb, "exec: split %s: ", x->split);
    nu_exec_call_free(&c);
    return rc;
}

static void nu_exec_close(void *state)
{
    struct nu_exec *x = state;
    if (!x)
        return;
    nu_exec_proc_destroy(x->proc, NU_EXEC_CLOSE_GRACE_MS, NULL, NULL);
    nu_exec_free_strv(x->argv);
    nu_exec_free_strv(x->env);
    free(x->cwd);
    nu_schema_unref(x->out_schema);
    nu_buf_free(&x->req);
    nu_buf_free(&x->rows);
    nu_buf_free(&x->hint);
    free(x);
}

static nu_err_t nu_exec_open(const struct nu_op_open_args *args, void **state, struct nu_errbuf *eb)
{
    const json_t *cfg = args->config, *v, *item;
    struct nu_exec *x = NULL;
    const char *k;
    size_t i, n = 0;
    nu_err_t rc;

    *state = NULL;
    if ((rc = nu_builtin_check_config(&nu_op_exec, cfg, eb)) != NU_OK)
        return rc;
    x = nu_xcalloc(1, sizeof(*x));
    v = json_object_get(cfg, "argv");
    x->argv = nu_xcalloc(json_array_size(v) + 1, sizeof(*x->argv));
    json_array_foreach(v, i, item) x->argv[i] = nu_xstrdup(json_string_value(item));
    v = json_object_get(cfg, "env");
    x->env = nu_xcalloc(json_object_size(v) + 1, sizeof(*x->env));
    json_object_foreach((json_t *)v, k, item) x->env[n++] =
        nu_xasprintf("%s=%s", k, json_string_value(item));
    if ((v = json_object_get(cfg, "cwd")))
        x->cwd = nu_xstrdup(json_string_value(v));
    x->format = NU_FORMAT_JSON;
    if ((v = json_object_get(cfg, "format")))
        nu_format_parse(json_string_value(v), &x->format, NULL);
    v = json_object_get(cfg, "timeout_ms");
    x->timeout_ms = v ? (int)json_integer_value(v) : NU_EXEC_DEFAULT_TIMEOUT_MS;
    if ((v = json_object_get(cfg, "output_schema")) &&
        (rc = nu_exec_parse_schema(v, &x->out_schema, eb)) != NU_OK) {
        nu_err_prefix(eb, "exec: output_schema: ");
        nu_exec_close(x);
        return rc;
    }
    *state = x;
    return NU_OK;
}

const struct nu_operator nu_op_exec = {
    .abi_version = NU_OPERATOR_ABI_VERSION,
    .name = "exec",
    .kind = NU_OPKIND_TRANSFORM,
    .summary = "run user code in any language as a child process fed splits over stdin/stdout",
    .validate = nu_exec_validate,
    .schema = nu_exec_schema,
    .open = nu_exec_open,
    .process = nu_exec_process,
    .close = nu_exec_close,
};
