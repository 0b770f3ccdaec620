/* registry.c — built-in operator table, lookups, the job validator and shared config helpers. */
#include "operators/registry.h"

#include "operators/builtin.h"

#include "common/mem.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct nu_operator *const nu_builtins[] = {
    &nu_op_generate,  &nu_op_map,         &nu_op_filter, &nu_op_flat_map, &nu_op_batch,
    &nu_op_file_sink, &nu_op_file_source, &nu_op_print,  &nu_op_exec,
};
#define NU_NBUILTINS (sizeof(nu_builtins) / sizeof(nu_builtins[0]))

size_t nu_registry_builtin_count(void)
{
    return NU_NBUILTINS;
}

/* Operators added at run time by higher layers (nu_registry_add); never removed. */
static pthread_mutex_t nu_added_lock = PTHREAD_MUTEX_INITIALIZER;
static const struct nu_operator *nu_added[NU_REGISTRY_MAX_ADDED];
static size_t nu_nadded;

/* The added operator named `name`, or NULL. Call with nu_added_lock held. */
static const struct nu_operator *nu_registry_added_find(const char *name)
{
    for (size_t i = 0; i < nu_nadded; i++)
        if (strcmp(nu_added[i]->name, name) == 0)
            return nu_added[i];
    return NULL;
}

nu_err_t nu_registry_add(const struct nu_operator *op, struct nu_errbuf *eb)
{
    const struct nu_operator *same = NULL;
    nu_err_t rc = nu_registry_check_descriptor(op, "added operator", eb);

    if (rc != NU_OK)
        return rc;
    pthread_mutex_lock(&nu_added_lock);
    for (size_t i = 0; i < NU_NBUILTINS && !same; i++)
        if (strcmp(nu_builtins[i]->name, op->name) == 0)
            same = nu_builtins[i];
    if (!same)
        same = nu_registry_added_find(op->name);
    if (same && same != op)
        rc = nu_err_set(eb, NU_ERR_EXISTS, "an operator named \"%s\" is already registered",
                        op->name);
    else if (!same && nu_nadded == NU_REGISTRY_MAX_ADDED)
        rc = nu_err_set(eb, NU_ERR_TOO_LARGE, "at most %d operators can be added",
                        NU_REGISTRY_MAX_ADDED);
    else if (!same)
        nu_added[nu_nadded++] = op;
    pthread_mutex_unlock(&nu_added_lock);
    return rc;
}

nu_err_t nu_registry_find(const char *name, const char *plugin_path, const struct nu_operator **out,
                          struct nu_errbuf *eb)
{
    const struct nu_operator *const *ops = nu_builtins;
    size_t n = NU_NBUILTINS;
    nu_err_t rc = NU_OK;

    *out = NULL;
    if (!name || !*name)
        return nu_err_set(eb, NU_ERR_INVALID, "operator name is empty");
    if (plugin_path && *plugin_path) {
        rc = nu_plugin_load(plugin_path, &ops, &n, eb);
        if (rc != NU_OK)
            goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(ops[i]->name, name) == 0) {
            *out = ops[i];
            goto out;
        }
    }
    if (!plugin_path || !*plugin_path) {
        pthread_mutex_lock(&nu_added_lock);
        *out = nu_registry_added_find(name);
        pthread_mutex_unlock(&nu_added_lock);
        if (*out)
            goto out;
    }
    if (plugin_path && *plugin_path)
        rc = nu_err_set(eb, NU_ERR_NOT_FOUND, "plugin \"%s\" has no operator \"%s\"", plugin_path,
                        name);
    else
        rc = nu_err_set(eb, NU_ERR_NOT_FOUND, "unknown operator \"%s\"", name);
out:
    return rc;
}

size_t nu_registry_list(const struct nu_operator **out, size_t cap)
{
    size_t n = 0;
    for (; n < NU_NBUILTINS; n++)
        if (n < cap)
            out[n] = nu_builtins[n];
    pthread_mutex_lock(&nu_added_lock);
    for (size_t i = 0; i < nu_nadded; i++, n++)
        if (n < cap)
            out[n] = nu_added[i];
    pthread_mutex_unlock(&nu_added_lock);
    return n + nu_plugin_list(cap > n ? out + n : NULL, cap > n ? cap - n : 0);
}

static bool nu_registry_name_ok(const char *s)
{
    size_t len = 0;
    if (!s)
        return false;
    for (; s[len]; len++) {
        char c = s[len];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_') || len >= 64)
            return false;
    }
    return len > 0;
}

nu_err_t nu_registry_check_descriptor(const struct nu_operator *op, const char *where,
                                      struct nu_errbuf *eb)
{
    if (!op)
        return nu_err_set(eb, NU_ERR_PLUGIN, "%s returned a null operator", where);
    if (op->abi_version < NU_OPERATOR_ABI_MIN_VERSION || op->abi_version > NU_OPERATOR_ABI_VERSION)
        return nu_err_set(eb, NU_ERR_PLUGIN,
                          "%s: operator ABI version %u is not supported (this nurion supports "
                          "versions %u to %u)",
                          where, (unsigned)op->abi_version, NU_OPERATOR_ABI_MIN_VERSION,
                          NU_OPERATOR_ABI_VERSION);
    if (!nu_registry_name_ok(op->name))
        return nu_err_set(eb, NU_ERR_PLUGIN, "%s: operator name must match [a-z0-9_]{1,64}", where);
    if (op->kind != NU_OPKIND_SOURCE && op->kind != NU_OPKIND_TRANSFORM &&
        op->kind != NU_OPKIND_SINK)
        return nu_err_set(eb, NU_ERR_PLUGIN, "%s: operator \"%s\" has an invalid kind %d", where,
                          op->name, (int)op->kind);
    if (!op->validate || !op->schema || !op->open || !op->process || !op->close)
        return nu_err_set(eb, NU_ERR_PLUGIN,
                          "%s: operator \"%s\" lacks one of validate, schema, open, process, "
                          "close",
                          where, op->name);
    if ((op->kind == NU_OPKIND_SOURCE) != (op->plan != NULL))
        return nu_err_set(eb, NU_ERR_PLUGIN,
                          "%s: operator \"%s\": plan must be given for sources and only for them",
                          where, op->name);
    if ((op->snapshot == NULL) != (op->restore == NULL))
        return nu_err_set(eb, NU_ERR_PLUGIN,
                          "%s: operator \"%s\" must give both snapshot and restore or neither",
                          where, op->name);
    return NU_OK;
}

/* --- helpers shared by the built-ins --- */

void nu_builtin_path_init(struct nu_json_path *jp, const char *path)
{
    nu_json_path_init(jp);
    if (path && *path) {
        size_t len = strlen(path);
        if (len >= sizeof(jp->buf))
            len = sizeof(jp->buf) - 1;
        memcpy(jp->buf, path, len);
        jp->buf[len] = '\0';
        jp->len = len;
    }
}

bool nu_builtin_expect_object(const json_t *config, const struct nu_json_path *jp,
                              struct nu_problems *p)
{
    if (json_is_object(config))
        return true;
    nu_problems_add(p, jp->buf, "expected an object, got %s",
                    config ? nu_json_type_name(config) : "nothing");
    return false;
}

bool nu_builtin_get_int(const json_t *obj, const char *key, long long min, long long max,
                        bool required, long long dflt, struct nu_json_path *jp,
                        struct nu_problems *p, long long *out)
{
    const json_t *v = json_object_get(obj, key);
    size_t mark;
    bool ok;

    if (!v) {
        if (required) {
            nu_problems_add(p, jp->buf, "missing field \"%s\"", key);
            return false;
        }
        *out = dflt;
        return true;
    }
    mark = nu_json_path_push_key(jp, key);
    ok = nu_json_get_int(v, min, max, jp, p, out);
    nu_json_path_pop(jp, mark);
    return ok;
}

nu_err_t nu_builtin_check_config(const struct nu_operator *op, const json_t *config,
                                 struct nu_errbuf *eb)
{
    struct nu_problems p;
    nu_err_t rc = NU_OK;

    nu_problems_init(&p);
    op->validate(config, "$", &p);
    if (p.n > 0)
        rc = nu_err_set(eb, NU_ERR_CONFIG, "invalid configuration of operator \"%s\" at %s: %s",
                        op->name, p.items[0].path, p.items[0].message);
    nu_problems_free(&p);
    return rc;
}

nu_err_t nu_builtin_fault(struct nu_problems *p, struct nu_errbuf *eb, nu_err_t code,
                          const char *path, const char *fmt, ...)
{
    char msg[NU_ERRBUF_SIZE];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (p)
        nu_problems_add(p, path, "%s", msg);
    return nu_err_set(eb, code, "%s: %s", path, msg);
}

void nu_builtin_copy_row(struct nu_batch *out, const struct nu_batch *in, size_t i)
{
    size_t ncols = in->schema->ncols;
    const struct nu_value *src = nu_batch_row(in, i);
    struct nu_value *dst = nu_batch_add_row(out);
    for (size_t c = 0; c < ncols; c++)
        dst[c] = nu_batch_copy_value(out, &src[c]);
}

nu_err_t nu_builtin_reject_row(const struct nu_op_batch_ctx *ctx, const struct nu_batch *in,
                               size_t r, const char *prefix, struct nu_errbuf *eb)
{
    char reason[NU_ERRBUF_SIZE];

    snprintf(reason, sizeof(reason), "%s: %s", prefix, nu_err_msg(eb));
    nu_errbuf_clear(eb);
    return ctx->reject(ctx->reject_ctx, in, r, NULL, 0, reason, eb);
}

nu_err_t nu_builtin_expect_schema(const char *opname, const struct nu_schema *want,
                                  const struct nu_batch *in, struct nu_errbuf *eb)
{
    if (!in || !in->schema)
        return nu_err_set(eb, NU_ERR_INVALID, "operator \"%s\" got no input batch", opname);
    if (!nu_schema_equal(want, in->schema))
        return nu_err_set(eb, NU_ERR_SCHEMA,
                          "operator \"%s\": input batch schema differs from the schema the "
                          "operator was opened with",
                          opname);
    return NU_OK;
}

/* --- the job validator: operator kinds and schema propagation --- */

enum { NU_DERIVE_PENDING = 0, NU_DERIVE_BUSY, NU_DERIVE_OK, NU_DERIVE_FAILED };

struct nu_derive {
    const struct nu_job *job;
    unsigned char *state;       /* per stage */
    struct nu_schema **schemas; /* per stage; owned; NULL for sinks or failures */
};

/* Describe the first difference of two schemas into buf. */
static void nu_registry_schema_diff(const struct nu_schema *a, const struct nu_schema *b, char *buf,
                                    size_t len)
{
    size_t n = a->ncols < b->ncols ? a->ncols : b->ncols;
    for (size_t i = 0; i < n; i++) {
        const struct nu_field *fa = &a->cols[i], *fb = &b->cols[i];
        bool same_name = fa->name && fb->name && strcmp(fa->name, fb->name) == 0;
        if (!same_name || fa->type != fb->type || fa->nullable != fb->nullable) {
            snprintf(buf, len, "column %zu is \"%s\" %s%s in one and \"%s\" %s%s in the other",
                     i + 1, fa->name ? fa->name : "", nu_type_name(fa->type),
                     fa->nullable ? " (nullable)" : "", fb->name ? fb->name : "",
                     nu_type_name(fb->type), fb->nullable ? " (nullable)" : "");
            return;
        }
    }
    if (a->ncols != b->ncols)
        snprintf(buf, len, "one has %zu columns and the other %zu", a->ncols, b->ncols);
    else
        snprintf(buf, len, "item types of a column differ");
}

/*
 * Derive stage `i`'s output schema into d->schemas[i]. Problems of stage `i` itself go to `p`
 * (may be NULL) under `path`; upstreams are derived silently.
 */
static nu_err_t nu_registry_derive(struct nu_derive *d, size_t i, const char *path,
                                   struct nu_problems *p, struct nu_errbuf *eb)
{
    const struct nu_job_stage *st = &d->job->stages[i];
    const struct nu_operator *op = NULL;
    struct nu_schema *in = NULL;
    struct nu_problems local;
    char cpath[NU_JSON_PATH_MAX];
    nu_err_t rc = NU_OK;

    nu_problems_init(&local);
    if (d->state[i] == NU_DERIVE_OK)
        return NU_OK;
    if (d->state[i] == NU_DERIVE_FAILED)
        return nu_err_set(eb, NU_ERR_SCHEMA, "stage \"%s\" has no valid schema", st->id);
    if (d->state[i] == NU_DERIVE_BUSY)
        return nu_err_set(eb, NU_ERR_SPEC, "stage \"%s\" is part of a cycle", st->id);
    d->state[i] = NU_DERIVE_BUSY;

    rc = nu_registry_find(st->op, st->plugin, &op, eb);
    if (rc != NU_OK)
        goto out;
    snprintf(cpath, sizeof(cpath), "%s.config", path ? path : "$");
    /* Config problems are reported by the caller (check_stage) before deriving. */
    op->validate(st->config, cpath, &local);
    if (local.n > 0) {
        rc = nu_err_set(eb, NU_ERR_CONFIG, "%s: %s", local.items[0].path, local.items[0].message);
        goto out;
    }
    for (size_t u = 0; u < st->nupstream; u++) {
        size_t ui = st->upstream_idx[u];
        char upath[NU_JSON_PATH_MAX];
        struct nu_schema *us;
        rc = nu_registry_derive(d, ui, NULL, NULL, eb);
        if (rc != NU_OK)
            goto out;
        us = d->schemas[ui];
        snprintf(upath, sizeof(upath), "%s.upstream[%zu]", path ? path : "$", u);
        if (!us) {
            rc = nu_builtin_fault(p, eb, NU_ERR_SPEC, upath,
                                  "upstream stage \"%s\" is a sink and has no output",
                                  d->job->stages[ui].id);
            goto out;
        }
        if (!in) {
            in = us;
        } else if (!nu_schema_equal(in, us)) {
            char diff[256];
            nu_registry_schema_diff(in, us, diff, sizeof(diff));
            rc = nu_builtin_fault(p, eb, NU_ERR_SCHEMA, upath,
                                  "upstream stages \"%s\" and \"%s\" have different schemas: %s",
                                  st->upstream[0], st->upstream[u], diff);
            goto out;
        }
    }
    if (op->kind != NU_OPKIND_SOURCE && !in) {
        rc = nu_builtin_fault(p, eb, NU_ERR_SPEC, path ? path : "$",
                              "operator \"%s\" needs an upstream stage", op->name);
        goto out;
    }
    rc = op->schema(st->config, op->kind == NU_OPKIND_SOURCE ? NULL : in, cpath, p, &d->schemas[i],
                    eb);
out:
    nu_problems_free(&local);
    d->state[i] = rc == NU_OK ? NU_DERIVE_OK : NU_DERIVE_FAILED;
    return rc;
}

static void nu_derive_init(struct nu_derive *d, const struct nu_job *job)
{
    d->job = job;
    d->state = nu_xcalloc(job->nstages ? job->nstages : 1, 1);
    d->schemas = nu_xcalloc(job->nstages ? job->nstages : 1, sizeof(*d->schemas));
}

static void nu_derive_free(struct nu_derive *d)
{
    for (size_t i = 0; i < d->job->nstages; i++)
        nu_schema_unref(d->schemas[i]);
    free(d->schemas);
    free(d->state);
}

nu_err_t nu_registry_stage_schema(const struct nu_job *job, size_t stage_index,
                                  struct nu_schema **out, struct nu_errbuf *eb)
{
    struct nu_derive d;
    nu_err_t rc;

    *out = NULL;
    if (stage_index >= job->nstages)
        return nu_err_set(eb, NU_ERR_INVALID, "no stage %zu in job \"%s\"", stage_index, job->id);
    nu_derive_init(&d, job);
    rc = nu_registry_derive(&d, stage_index, NULL, NULL, eb);
    if (rc == NU_OK && d.schemas[stage_index])
        *out = nu_schema_ref(d.schemas[stage_index]);
    nu_derive_free(&d);
    return rc;
}

static nu_op_kind_t nu_registry_kind_cb(void *ctx, const char *op_name, const char *plugin,
                                        char *why, size_t whylen)
{
    const struct nu_operator *op = NULL;
    struct nu_errbuf eb;

    nu_errbuf_clear(&eb);
    if (nu_registry_find(op_name, plugin, &op, &eb) != NU_OK) {
        if (why && whylen)
            snprintf(why, whylen, "%s", nu_err_msg(&eb));
        return NU_OPKIND_UNKNOWN;
    }
    return op->kind;
}

static void nu_registry_check_stage_cb(void *ctx, const struct nu_job *job, size_t stage_index,
                                       const char *path, struct nu_problems *p)
{
    struct nu_derive d;
    struct nu_errbuf eb;
    const struct nu_operator *op = NULL;
    const struct nu_job_stage *st;
    char cpath[NU_JSON_PATH_MAX];
    size_t before = p->n;

    if (stage_index >= job->nstages)
        return;
    st = &job->stages[stage_index];
    nu_errbuf_clear(&eb);
    if (nu_registry_find(st->op, st->plugin, &op, &eb) != NU_OK)
        return; /* kind() has reported it */
    snprintf(cpath, sizeof(cpath), "%s.config", path ? path : "$");
    op->validate(st->config, cpath, p);
    if (p->n > before)
        return;
    nu_derive_init(&d, job);
    /* Upstreams are derived silently: a failing upstream reports at its own stage. */
    for (size_t u = 0; u < st->nupstream; u++) {
        nu_errbuf_clear(&eb);
        if (nu_registry_derive(&d, st->upstream_idx[u], NULL, NULL, &eb) != NU_OK)
            goto out;
    }
    nu_errbuf_clear(&eb);
    if (nu_registry_derive(&d, stage_index, path, p, &eb) != NU_OK && p->n == before)
        nu_problems_add(p, path, "%s", nu_err_msg(&eb));
out:
    nu_derive_free(&d);
}

static const struct nu_job_validator nu_registry_job_validator = {
    .ctx = NULL,
    .kind = nu_registry_kind_cb,
    .check_stage = nu_registry_check_stage_cb,
};

const struct nu_job_validator *nu_registry_validator(void)
{
    return &nu_registry_job_validator;
}
