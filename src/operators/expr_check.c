/* expr_check.c — function table, name resolution, type checking and constant folding. */
#include "operators/expr_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define NU_EXPR_VARIADIC (-1)

static const struct {
    const char *name;
    int min_args, max_args;
} nu_expr_fns[NU_XFN__COUNT] = {
    [NU_XFN_LOWER] = {"lower", 1, 1},
    [NU_XFN_UPPER] = {"upper", 1, 1},
    [NU_XFN_LENGTH] = {"length", 1, 1},
    [NU_XFN_CONCAT] = {"concat", 1, NU_EXPR_VARIADIC},
    [NU_XFN_SUBSTR] = {"substr", 2, 3},
    [NU_XFN_CONTAINS] = {"contains", 2, 2},
    [NU_XFN_STARTS_WITH] = {"starts_with", 2, 2},
    [NU_XFN_ENDS_WITH] = {"ends_with", 2, 2},
    [NU_XFN_COALESCE] = {"coalesce", 1, NU_EXPR_VARIADIC},
    [NU_XFN_IS_NULL] = {"is_null", 1, 1},
    [NU_XFN_ABS] = {"abs", 1, 1},
    [NU_XFN_ROUND] = {"round", 1, 2},
};

static const struct {
    const char *name;
    nu_type_t type;
} nu_expr_cast_types[] = {
    {"int64", NU_T_INT64},   {"int", NU_T_INT64},    {"bigint", NU_T_INT64},
    {"double", NU_T_DOUBLE}, {"float", NU_T_DOUBLE}, {"string", NU_T_STRING},
    {"text", NU_T_STRING},   {"boolean", NU_T_BOOL}, {"bool", NU_T_BOOL},
    {"bytes", NU_T_BYTES},
};

int nu_expr_fn_find(const char *p, size_t len)
{
    for (int i = 0; i < NU_XFN__COUNT; i++)
        if (nu_expr_word_eq(p, len, nu_expr_fns[i].name))
            return i;
    return -1;
}

const char *nu_expr_fn_name(nu_expr_fn_t fn)
{
    return nu_expr_fns[fn].name;
}

int nu_expr_cast_type_find(const char *p, size_t len)
{
    for (size_t i = 0; i < sizeof(nu_expr_cast_types) / sizeof(nu_expr_cast_types[0]); i++)
        if (nu_expr_word_eq(p, len, nu_expr_cast_types[i].name))
            return (int)nu_expr_cast_types[i].type;
    return -1;
}

static bool nu_expr_numeric(nu_type_t t)
{
    return t == NU_T_INT64 || t == NU_T_DOUBLE;
}

static bool nu_expr_comparable(nu_type_t a, nu_type_t b)
{
    if (a == NU_T_NULL || b == NU_T_NULL)
        return true;
    if (nu_expr_numeric(a) && nu_expr_numeric(b))
        return true;
    return a == b && (a == NU_T_STRING || a == NU_T_BYTES || a == NU_T_BOOL);
}

static const char *nu_expr_op_name(nu_expr_op_t op)
{
    switch (op) {
    case NU_XOP_NEG:
    case NU_XOP_SUB:
        return "-";
    case NU_XOP_ADD:
        return "+";
    case NU_XOP_MUL:
        return "*";
    case NU_XOP_DIV:
        return "/";
    case NU_XOP_MOD:
        return "%";
    case NU_XOP_NOT:
        return "NOT";
    case NU_XOP_AND:
        return "AND";
    case NU_XOP_OR:
        return "OR";
    default:
        return "?";
    }
}

struct nu_expr_checker {
    struct nu_expr *e;
    struct nu_errbuf *eb;
};

static nu_err_t nu_expr_type_err(struct nu_expr_checker *c, uint32_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static nu_err_t nu_expr_type_err(struct nu_expr_checker *c, uint32_t pos, const char *fmt, ...)
{
    char msg[NU_ERRBUF_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return nu_expr_fail(c->eb, NU_ERR_TYPE, c->e->text, pos, "%s", msg);
}

static const struct nu_expr_node *nu_expr_arg(const struct nu_expr *e, const struct nu_expr_node *n,
                                              uint32_t k)
{
    return &e->nodes[e->args[n->args + k]];
}

/* Check that operand `k` of call `n` has one of the allowed types (NULL is always allowed). */
static nu_err_t nu_expr_check_arg(struct nu_expr_checker *c, const struct nu_expr_node *n,
                                  uint32_t k, nu_type_t t1, nu_type_t t2, const char *what)
{
    nu_type_t t = nu_expr_arg(c->e, n, k)->type;
    if (t == NU_T_NULL || t == t1 || t == t2)
        return NU_OK;
    return nu_expr_type_err(c, n->pos, "function %s expects %s as argument %u, got %s",
                            nu_expr_fn_name(n->fn), what, k + 1, nu_type_name(t));
}

static nu_err_t nu_expr_check_call(struct nu_expr_checker *c, struct nu_expr_node *n)
{
    const char *name = nu_expr_fn_name(n->fn);
    int lo = nu_expr_fns[n->fn].min_args, hi = nu_expr_fns[n->fn].max_args;
    nu_type_t t0 = n->nargs ? nu_expr_arg(c->e, n, 0)->type : NU_T_NULL;
    nu_err_t rc = NU_OK;

    if ((int)n->nargs < lo || (hi != NU_EXPR_VARIADIC && (int)n->nargs > hi)) {
        if (hi == NU_EXPR_VARIADIC)
            return nu_expr_type_err(c, n->pos, "function %s expects at least %d argument%s", name,
                                    lo, lo == 1 ? "" : "s");
        if (lo == hi)
            return nu_expr_type_err(c, n->pos, "function %s expects %d argument%s", name, lo,
                                    lo == 1 ? "" : "s");
        return nu_expr_type_err(c, n->pos, "function %s expects %d or %d arguments", name, lo, hi);
    }
    switch (n->fn) {
    case NU_XFN_LOWER:
    case NU_XFN_UPPER:
        rc = nu_expr_check_arg(c, n, 0, NU_T_STRING, NU_T_STRING, "a string");
        n->type = NU_T_STRING;
        break;
    case NU_XFN_LENGTH:
        if (t0 != NU_T_NULL && t0 != NU_T_STRING && t0 != NU_T_BYTES && t0 != NU_T_ARRAY &&
            t0 != NU_T_MAP)
            rc = nu_expr_type_err(c, n->pos,
                                  "function length expects a string, bytes, array or map, got %s",
                                  nu_type_name(t0));
        n->type = NU_T_INT64;
        break;
    case NU_XFN_CONCAT:
        for (uint32_t k = 0; k < n->nargs && rc == NU_OK; k++)
            rc = nu_expr_check_arg(c, n, k, NU_T_STRING, NU_T_STRING, "a string");
        n->type = NU_T_STRING;
        break;
    case NU_XFN_SUBSTR:
        rc = nu_expr_check_arg(c, n, 0, NU_T_STRING, NU_T_BYTES, "a string or bytes");
        for (uint32_t k = 1; k < n->nargs && rc == NU_OK; k++)
            rc = nu_expr_check_arg(c, n, k, NU_T_INT64, NU_T_INT64, "an int64");
        n->type = t0 == NU_T_BYTES ? NU_T_BYTES : NU_T_STRING;
        break;
    case NU_XFN_CONTAINS:
    case NU_XFN_STARTS_WITH:
    case NU_XFN_ENDS_WITH: {
        nu_type_t t1 = nu_expr_arg(c->e, n, 1)->type;
        rc = nu_expr_check_arg(c, n, 0, NU_T_STRING, NU_T_BYTES, "a string or bytes");
        if (rc == NU_OK)
            rc = nu_expr_check_arg(c, n, 1, NU_T_STRING, NU_T_BYTES, "a string or bytes");
        if (rc == NU_OK && t0 != NU_T_NULL && t1 != NU_T_NULL && t0 != t1)
            rc = nu_expr_type_err(c, n->pos, "function %s cannot mix %s with %s", name,
                                  nu_type_name(t0), nu_type_name(t1));
        n->type = NU_T_BOOL;
        break;
    }
    case NU_XFN_COALESCE:
        n->type = NU_T_NULL;
        n->nullable = true;
        for (uint32_t k = 0; k < n->nargs; k++) {
            const struct nu_expr_node *a = nu_expr_arg(c->e, n, k);
            if (!a->nullable)
                n->nullable = false;
            if (a->type == NU_T_NULL || a->type == n->type)
                continue;
            if (n->type == NU_T_NULL) {
                n->type = a->type;
            } else if (nu_expr_numeric(a->type) && nu_expr_numeric(n->type)) {
                n->type = NU_T_DOUBLE;
            } else {
                return nu_expr_type_err(c, n->pos,
                                        "function coalesce has arguments of types %s and %s "
                                        "with no common type",
                                        nu_type_name(n->type), nu_type_name(a->type));
            }
        }
        return NU_OK;
    case NU_XFN_IS_NULL:
        n->type = NU_T_BOOL;
        n->nullable = false;
        return NU_OK;
    case NU_XFN_ABS:
    case NU_XFN_ROUND:
        rc = nu_expr_check_arg(c, n, 0, NU_T_INT64, NU_T_DOUBLE, "a number");
        if (rc == NU_OK && n->nargs == 2)
            rc = nu_expr_check_arg(c, n, 1, NU_T_INT64, NU_T_INT64, "an int64");
        n->type = t0;
        break;
    case NU_XFN__COUNT:
        break;
    }
    return rc;
}

static nu_err_t nu_expr_check_cast(struct nu_expr_checker *c, struct nu_expr_node *n)
{
    nu_type_t from = nu_expr_arg(c->e, n, 0)->type;
    bool ok;

    switch (n->to) {
    case NU_T_INT64:
    case NU_T_DOUBLE:
    case NU_T_BOOL:
        ok = from == NU_T_NULL || from == NU_T_BOOL || nu_expr_numeric(from) || from == NU_T_STRING;
        break;
    case NU_T_STRING:
        ok = from == NU_T_NULL || from == NU_T_BOOL || nu_expr_numeric(from) ||
             from == NU_T_STRING || from == NU_T_BYTES;
        break;
    case NU_T_BYTES:
        ok = from == NU_T_NULL || from == NU_T_STRING || from == NU_T_BYTES;
        break;
    default:
        ok = false;
        break;
    }
    n->type = n->to;
    if (!ok)
        return nu_expr_type_err(c, n->pos, "cannot cast %s to %s", nu_type_name(from),
                                nu_type_name(n->to));
    return NU_OK;
}

static nu_err_t nu_expr_check_node(struct nu_expr_checker *c, struct nu_expr_node *n)
{
    struct nu_expr *e = c->e;
    nu_type_t a = n->nargs > 0 ? nu_expr_arg(e, n, 0)->type : NU_T_NULL;
    nu_type_t b = n->nargs > 1 ? nu_expr_arg(e, n, 1)->type : NU_T_NULL;

    n->nullable = false;
    for (uint32_t k = 0; k < n->nargs; k++)
        n->nullable = n->nullable || nu_expr_arg(e, n, k)->nullable;

    switch (n->op) {
    case NU_XOP_CONST:
        n->type = n->v.type;
        n->nullable = n->v.type == NU_T_NULL;
        return NU_OK;
    case NU_XOP_COLUMN: {
        long col = nu_schema_find(e->schema, n->name);
        if (col < 0)
            return nu_expr_type_err(c, n->pos, "unknown column \"%s\"", n->name);
        n->col = (uint32_t)col;
        n->type = e->schema->cols[col].type;
        n->nullable = e->schema->cols[col].nullable || n->type == NU_T_NULL;
        return NU_OK;
    }
    case NU_XOP_NEG:
        if (a != NU_T_NULL && !nu_expr_numeric(a))
            return nu_expr_type_err(c, n->pos, "operator - expects a number, got %s",
                                    nu_type_name(a));
        n->type = a;
        return NU_OK;
    case NU_XOP_ADD:
    case NU_XOP_SUB:
    case NU_XOP_MUL:
    case NU_XOP_DIV:
    case NU_XOP_MOD:
        if ((a != NU_T_NULL && !nu_expr_numeric(a)) || (b != NU_T_NULL && !nu_expr_numeric(b)))
            return nu_expr_type_err(
                c, n->pos, "operator %s expects numbers, got %s and %s%s", nu_expr_op_name(n->op),
                nu_type_name(a), nu_type_name(b),
                n->op == NU_XOP_ADD && a == NU_T_STRING ? " (use concat() to join strings)" : "");
        n->type = a == NU_T_DOUBLE || b == NU_T_DOUBLE ? NU_T_DOUBLE
                  : a == NU_T_NULL && b == NU_T_NULL   ? NU_T_NULL
                                                       : NU_T_INT64;
        return NU_OK;
    case NU_XOP_EQ:
    case NU_XOP_NE:
    case NU_XOP_LT:
    case NU_XOP_LE:
    case NU_XOP_GT:
    case NU_XOP_GE:
        if (!nu_expr_comparable(a, b))
            return nu_expr_type_err(c, n->pos, "cannot compare %s with %s", nu_type_name(a),
                                    nu_type_name(b));
        n->type = NU_T_BOOL;
        return NU_OK;
    case NU_XOP_IN:
    case NU_XOP_NOT_IN:
        for (uint32_t k = 1; k < n->nargs; k++) {
            const struct nu_expr_node *it = nu_expr_arg(e, n, k);
            if (!nu_expr_comparable(a, it->type))
                return nu_expr_type_err(c, n->pos, "cannot compare %s with %s", nu_type_name(a),
                                        nu_type_name(it->type));
        }
        n->type = NU_T_BOOL;
        return NU_OK;
    case NU_XOP_NOT:
    case NU_XOP_AND:
    case NU_XOP_OR:
        for (uint32_t k = 0; k < n->nargs; k++) {
            nu_type_t t = nu_expr_arg(e, n, k)->type;
            if (t != NU_T_NULL && t != NU_T_BOOL)
                return nu_expr_type_err(c, n->pos, "operator %s expects boolean operands, got %s",
                                        nu_expr_op_name(n->op), nu_type_name(t));
        }
        n->type = NU_T_BOOL;
        return NU_OK;
    case NU_XOP_IS_NULL:
    case NU_XOP_IS_NOT_NULL:
        n->type = NU_T_BOOL;
        n->nullable = false;
        return NU_OK;
    case NU_XOP_CALL:
        return nu_expr_check_call(c, n);
    case NU_XOP_CAST:
        return nu_expr_check_cast(c, n);
    }
    return nu_err_set(c->eb, NU_ERR_INTERNAL, "unknown expression node %d", (int)n->op);
}

/* Replace node `i` by its value when all its operands are constants, or when a constant operand
 * of AND/OR decides it before any column is read (false && …). A subtree whose evaluation fails
 * (1 / 0) is left as it is, so the error surfaces only if a row actually reaches it. */
static void nu_expr_fold(struct nu_expr *e, uint32_t i)
{
    struct nu_expr_node *n = &e->nodes[i];
    struct nu_errbuf eb = {0};
    struct nu_value v;

    uint32_t nconst = 0;

    if (n->op == NU_XOP_CONST || n->op == NU_XOP_COLUMN)
        return;
    for (uint32_t k = 0; k < n->nargs; k++)
        nconst += nu_expr_arg(e, n, k)->op == NU_XOP_CONST;
    /* AND/OR with one constant operand may be decided by it (false && …): try, without a row */
    if (nconst < n->nargs && !(nconst > 0 && (n->op == NU_XOP_AND || n->op == NU_XOP_OR)))
        return;
    if (nu_expr_eval_node(e, i, NULL, e->arena, &v, &eb) != NU_OK)
        return;
    n->op = NU_XOP_CONST;
    n->v = v;
    n->nullable = v.type == NU_T_NULL;
    n->nargs = 0;
    n->slots = 0;
}

nu_err_t nu_expr_check(struct nu_expr *e, struct nu_errbuf *eb)
{
    struct nu_expr_checker c = {.e = e, .eb = eb};
    nu_err_t rc = NU_OK;

    /* post-order: every operand is checked before the node using it */
    for (uint32_t i = 0; i < e->nnodes; i++) {
        struct nu_expr_node *n = &e->nodes[i];
        if ((rc = nu_expr_check_node(&c, n)))
            goto out;
        n->slots = 0;
        for (uint32_t k = 0; k < n->nargs; k++)
            if (nu_expr_arg(e, n, k)->slots > n->slots)
                n->slots = nu_expr_arg(e, n, k)->slots;
        if (n->op == NU_XOP_CALL && n->fn == NU_XFN_CONCAT)
            n->slots += n->nargs;
        nu_expr_fold(e, i);
    }
    e->slots = e->nodes[e->root].slots;
out:
    return rc;
}
