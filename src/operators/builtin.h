/*
 * builtin.h — the built-in operators and the config helpers they share (layer: operators).
 *
 * Each op_<name>.c defines one constant descriptor; registry.c lists them and implements the
 * helpers below. Thread-safety: everything here is reentrant.
 */
#ifndef NU_OPERATORS_BUILTIN_H
#define NU_OPERATORS_BUILTIN_H

#include "nurion/operator.h"

#include "common/json.h"

#include <stdbool.h>

extern const struct nu_operator nu_op_map;
extern const struct nu_operator nu_op_filter;
extern const struct nu_operator nu_op_flat_map;
extern const struct nu_operator nu_op_batch;
extern const struct nu_operator nu_op_generate;
extern const struct nu_operator nu_op_file_sink;
extern const struct nu_operator nu_op_file_source;
extern const struct nu_operator nu_op_print;
extern const struct nu_operator nu_op_exec;

/* Start a JSON path at `path` (an operator's config path; NULL means "$"). */
void nu_builtin_path_init(struct nu_json_path *jp, const char *path);

/* Is `config` an object? Adds `expected an object, got …` at jp otherwise. */
bool nu_builtin_expect_object(const json_t *config, const struct nu_json_path *jp,
                              struct nu_problems *p);

/*
 * Read integer field `key` of object `obj` in [min, max] into *out. A missing field gives `dflt`
 * (or the problem `missing field "key"` when `required`). Returns false after adding a problem.
 */
bool nu_builtin_get_int(const json_t *obj, const char *key, long long min, long long max,
                        bool required, long long dflt, struct nu_json_path *jp,
                        struct nu_problems *p, long long *out);

/*
 * Run op->validate on `config` at path "$" and turn the first problem into
 * NU_ERR_CONFIG `invalid configuration at $.where: …` in eb. For open().
 */
nu_err_t nu_builtin_check_config(const struct nu_operator *op, const json_t *config,
                                 struct nu_errbuf *eb);

/*
 * Report a schema-time fault: append it to `p` (when not NULL) at `path`, write
 * "<path>: <message>" into eb (first wins) and return `code`.
 */
nu_err_t nu_builtin_fault(struct nu_problems *p, struct nu_errbuf *eb, nu_err_t code,
                          const char *path, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Copy row `i` of `in` (every column, deep) as a new last row of `out` (same column count). */
void nu_builtin_copy_row(struct nu_batch *out, const struct nu_batch *in, size_t i);

/*
 * A row-level evaluation error (NU_ERR_EVAL in eb) on row `r` of `in`: dead-letter that row
 * alone through ctx->reject with the reason "<prefix>: <eb's message>", clear eb, and return
 * NU_OK so that the rest of the split goes on (or reject's own error). Call only when
 * nu_builtin_can_reject(ctx).
 */
nu_err_t nu_builtin_reject_row(const struct nu_op_batch_ctx *ctx, const struct nu_batch *in,
                               size_t r, const char *prefix, struct nu_errbuf *eb);

/* Whether row-level dead letters are available (the runtime gave a reject callback). */
static inline bool nu_builtin_can_reject(const struct nu_op_batch_ctx *ctx)
{
    return ctx && ctx->reject;
}

/* Check that `in` has `want` as schema: NU_ERR_SCHEMA naming the operator otherwise. */
nu_err_t nu_builtin_expect_schema(const char *opname, const struct nu_schema *want,
                                  const struct nu_batch *in, struct nu_errbuf *eb);

#endif
