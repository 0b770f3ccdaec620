/*
 * expr.h — the expression language of `map` and `filter` (layer: operators).
 *
 * An expression is compiled once per stage against the input schema: parsing, name resolution
 * and type checking all happen in nu_expr_compile(), which reports errors with their position
 * (`expected ')' at column 14`). Evaluation then allocates nothing per row: string results that
 * need new memory (concat, lower, substr, …) are written into the caller's arena.
 *
 * Thread-safety: a compiled expression is immutable and may be evaluated from several threads,
 * each with its own arena.
 */
#ifndef NU_OPERATORS_EXPR_H
#define NU_OPERATORS_EXPR_H

#include "common/arena.h"
#include "common/err.h"
#include "common/value.h"

#include <stdbool.h>

typedef struct nu_expr nu_expr_t;

/* Hard limits on an expression's text and tree. */
#define NU_EXPR_MAX_LEN   65536
#define NU_EXPR_MAX_DEPTH 256

/*
 * Compile `text` against `schema` (borrowed; only read during the call). On success *out is the
 * compiled expression (returned owned; free with nu_expr_destroy) and its static result type is
 * available from nu_expr_type(). Errors: NU_ERR_PARSE (syntax, with column), NU_ERR_TYPE (unknown
 * column, wrong argument types, unknown function), NU_ERR_TOO_LARGE (over the limits).
 */
nu_err_t nu_expr_compile(const char *text, const struct nu_schema *schema, nu_expr_t **out,
                         struct nu_errbuf *eb);
void nu_expr_destroy(nu_expr_t *e); /* accepts NULL */

/* Static result type (NU_T_NULL only for an expression that is always null) and nullability. */
nu_type_t nu_expr_type(const nu_expr_t *e);
bool nu_expr_nullable(const nu_expr_t *e);
/* The expression's source text, as compiled. */
const char *nu_expr_text(const nu_expr_t *e);

/*
 * Evaluate on one row (`row` has schema->ncols values, in the compiled schema's order).
 * Result values may point into the row or into `scratch` (borrowed arena; new strings go there).
 * Errors: NU_ERR_EVAL with a message naming the failure (for example integer overflow or an
 * invalid cast), for the caller to retry or dead-letter.
 */
nu_err_t nu_expr_eval(const nu_expr_t *e, const struct nu_value *row, nu_arena_t *scratch,
                      struct nu_value *out, struct nu_errbuf *eb);

/* Convenience for filters: true only when the result is boolean true (null → false). */
nu_err_t nu_expr_eval_bool(const nu_expr_t *e, const struct nu_value *row, nu_arena_t *scratch,
                           bool *out, struct nu_errbuf *eb);

#endif
