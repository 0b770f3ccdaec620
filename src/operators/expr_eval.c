/* expr_eval.c — evaluation of a compiled expression on one row, without heap allocation. */
#include "operators/expr_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest text accepted by a cast to double, and shown of a value in an error message. */
#define NU_EXPR_MAX_NUMBER_TEXT 512
#define NU_EXPR_SHOW            64

struct nu_expr_ctx {
    const struct nu_expr *e;
    const struct nu_value *row;
    nu_arena_t *scratch;
    struct nu_value *stack; /* slots for variadic operands */
    uint32_t sp;
    struct nu_errbuf *eb;
};

static nu_err_t nu_expr_ev(struct nu_expr_ctx *cx, uint32_t i, struct nu_value *out);

static nu_err_t nu_expr_ev_fail(struct nu_expr_ctx *cx, const struct nu_expr_node *n,
                                const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static nu_err_t nu_expr_ev_fail(struct nu_expr_ctx *cx, const struct nu_expr_node *n,
                                const char *fmt, ...)
{
    char msg[NU_ERRBUF_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return nu_expr_fail(cx->eb, NU_ERR_EVAL, cx->e->text, n->pos, "%s", msg);
}

static nu_err_t nu_expr_ev_alloc(struct nu_expr_ctx *cx, const struct nu_expr_node *n, size_t size,
                                 char **out)
{
    if (!cx->scratch)
        return nu_err_set(cx->eb, NU_ERR_INVALID, "a scratch arena is required to evaluate \"%s\"",
                          cx->e->text);
    *out = nu_arena_alloc(cx->scratch, size ? size : 1);
    return NU_OK;
}

static uint32_t nu_expr_argi(const struct nu_expr_ctx *cx, const struct nu_expr_node *n, uint32_t k)
{
    return cx->e->args[n->args + k];
}

/* --- comparison and arithmetic --- */

/* Three-way comparison of two non-null values of comparable types; NaN is unordered. */
static int nu_expr_cmp(const struct nu_value *a, const struct nu_value *b, bool *unordered)
{
    *unordered = false;
    switch (a->type) {
    case NU_T_INT64:
    case NU_T_DOUBLE:
        if (a->type == NU_T_INT64 && b->type == NU_T_INT64)
            return (a->u.i > b->u.i) - (a->u.i < b->u.i);
        double x = a->type == NU_T_INT64 ? (double)a->u.i : a->u.d;
        double y = b->type == NU_T_INT64 ? (double)b->u.i : b->u.d;
        if (isnan(x) || isnan(y)) {
            *unordered = true;
            return 0;
        }
        return (x > y) - (x < y);
    case NU_T_BOOL:
        return (int)a->u.b - (int)b->u.b;
    case NU_T_STRING:
    case NU_T_BYTES: {
        size_t n = a->u.s.len < b->u.s.len ? a->u.s.len : b->u.s.len;
        int c = n ? memcmp(a->u.s.ptr, b->u.s.ptr, n) : 0;
        if (c)
            return c < 0 ? -1 : 1;
        return (a->u.s.len > b->u.s.len) - (a->u.s.len < b->u.s.len);
    }
    default:
        *unordered = true;
        return 0;
    }
}

static bool nu_expr_cmp_op(nu_expr_op_t op, int c, bool unordered)
{
    switch (op) {
    case NU_XOP_EQ:
        return !unordered && c == 0;
    case NU_XOP_NE:
        return unordered || c != 0;
    case NU_XOP_LT:
        return !unordered && c < 0;
    case NU_XOP_LE:
        return !unordered && c <= 0;
    case NU_XOP_GT:
        return !unordered && c > 0;
    default:
        return !unordered && c >= 0;
    }
}

static nu_err_t nu_expr_arith(struct nu_expr_ctx *cx, const struct nu_expr_node *n,
                              const struct nu_value *a, const struct nu_value *b,
                              struct nu_value *out)
{
    if (a->type == NU_T_INT64 && b->type == NU_T_INT64) {
        int64_t x = a->u.i, y = b->u.i, r = 0;
        bool ovf = false;
        switch (n->op) {
        case NU_XOP_ADD:
            ovf = __builtin_add_overflow(x, y, &r);
            break;
        case NU_XOP_SUB:
            ovf = __builtin_sub_overflow(x, y, &r);
            break;
        case NU_XOP_MUL:
            ovf = __builtin_mul_overflow(x, y, &r);
            break;
        default: /* DIV, MOD */
            if (y == 0)
                return nu_expr_ev_fail(cx, n, "division by zero");
            if (y == -1) { /* INT64_MIN / -1 overflows; x % -1 is 0 */
                ovf = n->op == NU_XOP_DIV && x == INT64_MIN;
                r = n->op == NU_XOP_DIV && !ovf ? -x : 0;
            } else {
                r = n->op == NU_XOP_DIV ? x / y : x % y;
            }
            break;
        }
        if (ovf)
            return nu_expr_ev_fail(cx, n, "integer overflow");
        out->type = NU_T_INT64; /* field stores: cheaper than a struct copy in the hot path */
        out->u.i = r;
        return NU_OK;
    }
    double x = a->type == NU_T_INT64 ? (double)a->u.i : a->u.d;
    double y = b->type == NU_T_INT64 ? (double)b->u.i : b->u.d;
    double r;
    switch (n->op) {
    case NU_XOP_ADD:
        r = x + y;
        break;
    case NU_XOP_SUB:
        r = x - y;
        break;
    case NU_XOP_MUL:
        r = x * y;
        break;
    case NU_XOP_DIV:
        r = x / y;
        break;
    default:
        r = fmod(x, y);
        break;
    }
    out->type = NU_T_DOUBLE;
    out->u.d = r;
    return NU_OK;
}

/* --- casts --- */

static void nu_expr_trim(const char **p, size_t *len)
{
    while (*len && (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r')) {
        (*p)++;
        (*len)--;
    }
    while (*len && ((*p)[*len - 1] == ' ' || (*p)[*len - 1] == '\t' || (*p)[*len - 1] == '\n' ||
                    (*p)[*len - 1] == '\r'))
        (*len)--;
}

static nu_err_t nu_expr_bad_input(struct nu_expr_ctx *cx, const struct nu_expr_node *n,
                                  const struct nu_value *v)
{
    int show = (int)(v->u.s.len > NU_EXPR_SHOW ? NU_EXPR_SHOW : v->u.s.len);
    return nu_expr_ev_fail(cx, n, "invalid input for type %s: \"%.*s%s\"", nu_type_name(n->to),
                           show, v->u.s.ptr, v->u.s.len > NU_EXPR_SHOW ? "…" : "");
}

static nu_err_t nu_expr_str_to_int(struct nu_expr_ctx *cx, const struct nu_expr_node *n,
                                   const struct nu_value *v, int64_t *out)
{
    const char *p = v->u.s.ptr;
    size_t len = v->u.s.len, i = 0;
    bool neg = false;
    int64_t r = 0;

    nu_expr_trim(&p, &len);
    if (len && (p[0] == '+' || p[0] == '-')) {
        neg = p[0] == '-';
        i++;
    }
    if (i == len)
        return nu_expr_bad_input(cx, n, v);
    for (; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return nu_expr_bad_input(cx, n, v);
        if (__builtin_mul_overflow(r, 10, &r) || (neg ? __builtin_sub_overflow(r, p[i] - '0', &r)
                                                      : __builtin_add_overflow(r, p[i] - '0', &r)))
            return nu_expr_ev_fail(cx, n, "value \"%.*s\" is out of range for type int64",
                                   (int)(len > NU_EXPR_SHOW ? NU_EXPR_SHOW : len), p);
    }
    *out = r;
    return NU_OK;
}

static nu_err_t nu_expr_str_to_double(struct nu_expr_ctx *cx, const struct nu_expr_node *n,
                                      const struct nu_value *v, double *out)
{
    char buf[NU_EXPR_MAX_NUMBER_TEXT + 1];
    const char *p = v->u.s.ptr;
    size_t len = v->u.s.len;
    char *end;

    nu_expr_trim(&p, &len);
    if (len == 0 || len > NU_EXPR_MAX_NUMBER_TEXT)
        return nu_expr_bad_input(cx, n, v);
    memcpy(buf, p, len);
    buf[len] = '\0';
    *out = strtod(buf, &end);
    if (*end != '\0')
        return nu_expr_bad_input(cx, n, v);
    return NU_OK;
}

/* Shortest of %.15g..%.17g that reads back as the same double. */
static size_t nu_expr_fmt_double(double d, char *buf, size_t size)
{
    int len = 0;
    for (int prec = 15; prec <= 17; prec++) {
        len = snprintf(buf, size, "%.*g", prec, d);
        if (!isfinite(d) || strtod(buf, NULL) == d)
            break;
    }
    return (size_t)len;
}

static nu_err_t nu_expr_cast(struct nu_expr_ctx *cx, const struct nu_expr_node *n,
                             const struct nu_value *v, struct nu_value *out)
{
    char buf[64], *p = NULL;
    size_t len;
    nu_err_t rc = NU_OK;

    if (v->type == NU_T_NULL || v->type == n->to) {
        *out = *v;
        return NU_OK;
    }
    switch (n->to) {
    case NU_T_INT64:
        if (v->type == NU_T_BOOL) {
            *out = nu_value_int(v->u.b);
        } else if (v->type == NU_T_DOUBLE) {
            if (!(v->u.d >= -9223372036854775808.0 && v->u.d < 9223372036854775808.0))
                return nu_expr_ev_fail(cx, n, "double value %g is out of range for type int64",
                                       v->u.d);
            *out = nu_value_int((int64_t)v->u.d);
        } else {
            out->type = NU_T_INT64;
            rc = nu_expr_str_to_int(cx, n, v, &out->u.i);
        }
        return rc;
    case NU_T_DOUBLE:
        if (v->type == NU_T_BOOL || v->type == NU_T_INT64) {
            *out = nu_value_double(v->type == NU_T_BOOL ? v->u.b : (double)v->u.i);
            return NU_OK;
        }
        out->type = NU_T_DOUBLE;
        return nu_expr_str_to_double(cx, n, v, &out->u.d);
    case NU_T_BOOL:
        if (v->type != NU_T_STRING) {
            *out = nu_value_bool(v->type == NU_T_INT64 ? v->u.i != 0 : v->u.d != 0);
            return NU_OK;
        }
        p = (char *)v->u.s.ptr;
        len = v->u.s.len;
        nu_expr_trim((const char **)&p, &len);
        if (nu_expr_word_eq(p, len, "true") || nu_expr_word_eq(p, len, "t") ||
            nu_expr_word_eq(p, len, "yes") || nu_expr_word_eq(p, len, "1"))
            *out = nu_value_bool(true);
        else if (nu_expr_word_eq(p, len, "false") || nu_expr_word_eq(p, len, "f") ||
                 nu_expr_word_eq(p, len, "no") || nu_expr_word_eq(p, len, "0"))
            *out = nu_value_bool(false);
        else
            return nu_expr_bad_input(cx, n, v);
        return NU_OK;
    case NU_T_STRING:
        if (v->type == NU_T_BOOL) {
            *out = v->u.b ? nu_value_view(NU_T_STRING, "true", 4)
                          : nu_value_view(NU_T_STRING, "false", 5);
            return NU_OK;
        }
        if (v->type == NU_T_BYTES) {
            if (!nu_expr_u8_valid((const unsigned char *)v->u.s.ptr, v->u.s.len))
                return nu_expr_ev_fail(cx, n, "bytes value is not valid UTF-8");
            *out = nu_value_view(NU_T_STRING, v->u.s.ptr, v->u.s.len);
            return NU_OK;
        }
        if (v->type == NU_T_INT64)
            len = (size_t)snprintf(buf, sizeof(buf), "%lld", (long long)v->u.i);
        else
            len = nu_expr_fmt_double(v->u.d, buf, sizeof(buf));
        if ((rc = nu_expr_ev_alloc(cx, n, len, &p)))
            return rc;
        memcpy(p, buf, len);
        *out = nu_value_view(NU_T_STRING, p, len);
        return NU_OK;
    default: /* BYTES, from STRING */
        *out = nu_value_view(NU_T_BYTES, v->u.s.ptr, v->u.s.len);
        return NU_OK;
    }
}

/* --- functions --- */

static nu_err_t nu_expr_round(struct nu_expr_ctx *cx, const struct nu_expr_node *n,
                              const struct nu_value *x, int64_t digits, struct nu_value *out)
{
    if (x->type == NU_T_DOUBLE) {
        double d = x->u.d, r;
        if (digits == 0) {
            r = round(d);
        } else if (digits > 0) {
            double p = digits > 308 ? INFINITY : pow(10.0, (double)digits), y = d * p;
            r = isfinite(y) ? round(y) / p : d;
        } else {
            double p = digits < -308 ? INFINITY : pow(10.0, (double)-digits);
            r = isfinite(p) ? round(d / p) * p : copysign(0.0, d);
        }
        *out = nu_value_double(r);
        return NU_OK;
    }
    int64_t v = x->u.i, p = 1, q, rem, r;
    if (digits >= 0) {
        *out = *x;
        return NU_OK;
    }
    if (digits < -18) {
        *out = nu_value_int(0);
        return NU_OK;
    }
    for (int64_t k = 0; k < -digits; k++)
        p *= 10;
    q = v / p;
    rem = v % p;
    if (rem >= p - rem) /* rem * 2 >= p, half away from zero */
        q++;
    else if (-rem >= p + rem)
        q--;
    if (__builtin_mul_overflow(q, p, &r))
        return nu_expr_ev_fail(cx, n, "integer overflow");
    *out = nu_value_int(r);
    return NU_OK;
}

static bool nu_expr_find(const struct nu_value *h, const struct nu_value *nd, nu_expr_fn_t fn)
{
    const char *hp = h->u.s.ptr, *np = nd->u.s.ptr;
    size_t hl = h->u.s.len, nl = nd->u.s.len;

    if (nl > hl)
        return false;
    if (nl == 0)
        return true;
    if (fn == NU_XFN_STARTS_WITH)
        return memcmp(hp, np, nl) == 0;
    if (fn == NU_XFN_ENDS_WITH)
        return memcmp(hp + hl - nl, np, nl) == 0;
    for (size_t i = 0; i + nl <= hl;) {
        const char *c = memchr(hp + i, np[0], hl - nl - i + 1);
        if (!c)
            return false;
        if (memcmp(c, np, nl) == 0)
            return true;
        i = (size_t)(c - hp) + 1;
    }
    return false;
}

static nu_err_t nu_expr_concat(struct nu_expr_ctx *cx, const struct nu_expr_node *n,
                               struct nu_value *out)
{
    uint32_t base = cx->sp;
    size_t total = 0;
    char *p = NULL;
    nu_err_t rc = NU_OK;

    cx->sp += n->nargs;
    for (uint32_t k = 0; k < n->nargs; k++) {
        struct nu_value *v = &cx->stack[base + k];
        if ((rc = nu_expr_ev(cx, nu_expr_argi(cx, n, k), v)))
            goto out;
        if (v->type == NU_T_NULL) {
            *out = nu_value_null();
            goto out;
        }
        total += v->u.s.len;
    }
    if (n->nargs == 1) {
        *out = cx->stack[base];
        goto out;
    }
    if ((rc = nu_expr_ev_alloc(cx, n, total, &p)))
        goto out;
    *out = nu_value_view(NU_T_STRING, p, total);
    for (uint32_t k = 0; k < n->nargs; k++) {
        const struct nu_value *v = &cx->stack[base + k];
        if (v->u.s.len)
            memcpy(p, v->u.s.ptr, v->u.s.len);
        p += v->u.s.len;
    }
out:
    cx->sp = base;
    return rc;
}

static nu_err_t nu_expr_call(struct nu_expr_ctx *cx, const struct nu_expr_node *n,
                             struct nu_value *out)
{
    struct nu_value a[3] = {{0}};
    char *p = NULL;
    nu_err_t rc = NU_OK;

    if (n->fn == NU_XFN_CONCAT)
        return nu_expr_concat(cx, n, out);
    if (n->fn == NU_XFN_COALESCE) { /* lazy: later operands are not evaluated */
        *out = nu_value_null();
        for (uint32_t k = 0; k < n->nargs && out->type == NU_T_NULL; k++)
            if ((rc = nu_expr_ev(cx, nu_expr_argi(cx, n, k), out)))
                return rc;
        if (n->type == NU_T_DOUBLE && out->type == NU_T_INT64)
            *out = nu_value_double((double)out->u.i);
        return NU_OK;
    }
    for (uint32_t k = 0; k < n->nargs; k++) {
        if ((rc = nu_expr_ev(cx, nu_expr_argi(cx, n, k), &a[k])))
            return rc;
        if (a[k].type == NU_T_NULL && n->fn != NU_XFN_IS_NULL) {
            *out = nu_value_null();
            return NU_OK;
        }
    }
    switch (n->fn) {
    case NU_XFN_LOWER:
    case NU_XFN_UPPER:
        if ((rc = nu_expr_ev_alloc(cx, n, a[0].u.s.len, &p)))
            return rc;
        nu_expr_case(a[0].u.s.ptr, a[0].u.s.len, p, n->fn == NU_XFN_UPPER);
        *out = nu_value_view(NU_T_STRING, p, a[0].u.s.len);
        return NU_OK;
    case NU_XFN_LENGTH:
        *out = nu_value_int(a[0].type == NU_T_STRING  ? nu_expr_u8_count(a[0].u.s.ptr, a[0].u.s.len)
                            : a[0].type == NU_T_BYTES ? (int64_t)a[0].u.s.len
                            : a[0].type == NU_T_ARRAY ? (int64_t)a[0].u.arr.n
                                                      : (int64_t)a[0].u.map.n);
        return NU_OK;
    case NU_XFN_SUBSTR: {
        /* characters at positions [start, start + len) that exist, 1-based */
        int64_t start = a[1].u.i, end = INT64_MAX;
        if (n->nargs == 3) {
            if (a[2].u.i < 0)
                return nu_expr_ev_fail(cx, n, "negative substring length not allowed");
            if (__builtin_add_overflow(start, a[2].u.i, &end))
                end = INT64_MAX;
        }
        if (start < 1)
            start = 1;
        const char *s = a[0].u.s.ptr;
        size_t len = a[0].u.s.len, b, e;
        bool bytes = a[0].type == NU_T_BYTES;
        if (end <= start) {
            b = e = 0;
        } else if (bytes) {
            b = (uint64_t)(start - 1) < len ? (size_t)(start - 1) : len;
            e = (uint64_t)(end - 1) < len ? (size_t)(end - 1) : len;
        } else {
            b = nu_expr_u8_offset(s, len, start - 1);
            e = b + nu_expr_u8_offset(s + b, len - b, end - start);
        }
        *out = nu_value_view(a[0].type, s + b, e - b);
        return NU_OK;
    }
    case NU_XFN_CONTAINS:
    case NU_XFN_STARTS_WITH:
    case NU_XFN_ENDS_WITH:
        *out = nu_value_bool(nu_expr_find(&a[0], &a[1], n->fn));
        return NU_OK;
    case NU_XFN_IS_NULL:
        *out = nu_value_bool(a[0].type == NU_T_NULL);
        return NU_OK;
    case NU_XFN_ABS:
        if (a[0].type == NU_T_DOUBLE) {
            *out = nu_value_double(fabs(a[0].u.d));
        } else {
            if (a[0].u.i == INT64_MIN)
                return nu_expr_ev_fail(cx, n, "integer overflow");
            *out = nu_value_int(a[0].u.i < 0 ? -a[0].u.i : a[0].u.i);
        }
        return NU_OK;
    case NU_XFN_ROUND:
        return nu_expr_round(cx, n, &a[0], n->nargs == 2 ? a[1].u.i : 0, out);
    default:
        return nu_err_set(cx->eb, NU_ERR_INTERNAL, "unknown function %d", (int)n->fn);
    }
}

/* AND / OR over n operands with SQL's three-valued logic, short-circuiting. */
static nu_err_t nu_expr_logic(struct nu_expr_ctx *cx, const struct nu_expr_node *n,
                              struct nu_value *out)
{
    bool is_or = n->op == NU_XOP_OR, saw_null = false;
    struct nu_value v;
    nu_err_t rc;

    for (uint32_t k = 0; k < n->nargs; k++) {
        if ((rc = nu_expr_ev(cx, nu_expr_argi(cx, n, k), &v)))
            return rc;
        if (v.type == NU_T_NULL)
            saw_null = true;
        else if (v.u.b == is_or) {
            out->type = NU_T_BOOL;
            out->u.b = is_or;
            return NU_OK;
        }
    }
    out->type = saw_null ? NU_T_NULL : NU_T_BOOL;
    out->u.b = !is_or;
    return NU_OK;
}

static nu_err_t nu_expr_in(struct nu_expr_ctx *cx, const struct nu_expr_node *n,
                           struct nu_value *out)
{
    struct nu_value x, v;
    bool saw_null = false, unordered;
    nu_err_t rc;

    if ((rc = nu_expr_ev(cx, nu_expr_argi(cx, n, 0), &x)))
        return rc;
    if (x.type == NU_T_NULL) {
        *out = nu_value_null();
        return NU_OK;
    }
    for (uint32_t k = 1; k < n->nargs; k++) {
        if ((rc = nu_expr_ev(cx, nu_expr_argi(cx, n, k), &v)))
            return rc;
        if (v.type == NU_T_NULL) {
            saw_null = true;
        } else if (nu_expr_cmp(&x, &v, &unordered) == 0 && !unordered) {
            *out = nu_value_bool(n->op == NU_XOP_IN);
            return NU_OK;
        }
    }
    *out = saw_null ? nu_value_null() : nu_value_bool(n->op != NU_XOP_IN);
    return NU_OK;
}

static nu_err_t nu_expr_ev(struct nu_expr_ctx *cx, uint32_t i, struct nu_value *out)
{
    const struct nu_expr_node *n = &cx->e->nodes[i];
    struct nu_value a, b;
    bool unordered;
    nu_err_t rc = NU_OK;

    switch (n->op) {
    case NU_XOP_CONST:
        *out = n->v;
        return NU_OK;
    case NU_XOP_COLUMN:
        if (!cx->row)
            return nu_err_set(cx->eb, NU_ERR_INVALID, "no row to evaluate \"%s\" on", n->name);
        *out = cx->row[n->col];
        if (out->type != NU_T_NULL && out->type != n->type)
            return nu_expr_ev_fail(cx, n, "column \"%s\" holds a %s value, expected %s", n->name,
                                   nu_type_name(out->type), nu_type_name(n->type));
        return NU_OK;
    case NU_XOP_AND:
    case NU_XOP_OR:
        return nu_expr_logic(cx, n, out);
    case NU_XOP_IN:
    case NU_XOP_NOT_IN:
        return nu_expr_in(cx, n, out);
    case NU_XOP_CALL:
        return nu_expr_call(cx, n, out);
    default:
        break;
    }
    /* unary and binary operators: null in, null out (except IS [NOT] NULL) */
    if ((rc = nu_expr_ev(cx, nu_expr_argi(cx, n, 0), &a)))
        return rc;
    if (n->op == NU_XOP_IS_NULL || n->op == NU_XOP_IS_NOT_NULL) {
        *out = nu_value_bool((a.type == NU_T_NULL) == (n->op == NU_XOP_IS_NULL));
        return NU_OK;
    }
    if (n->nargs == 2 && (rc = nu_expr_ev(cx, nu_expr_argi(cx, n, 1), &b)))
        return rc;
    if (a.type == NU_T_NULL || (n->nargs == 2 && b.type == NU_T_NULL)) {
        *out = nu_value_null();
        return NU_OK;
    }
    switch (n->op) {
    case NU_XOP_NEG:
        if (a.type == NU_T_DOUBLE) {
            *out = nu_value_double(-a.u.d);
        } else {
            if (a.u.i == INT64_MIN)
                return nu_expr_ev_fail(cx, n, "integer overflow");
            *out = nu_value_int(-a.u.i);
        }
        return NU_OK;
    case NU_XOP_NOT:
        out->type = NU_T_BOOL;
        out->u.b = !a.u.b;
        return NU_OK;
    case NU_XOP_ADD:
    case NU_XOP_SUB:
    case NU_XOP_MUL:
    case NU_XOP_DIV:
    case NU_XOP_MOD:
        return nu_expr_arith(cx, n, &a, &b, out);
    case NU_XOP_EQ:
    case NU_XOP_NE:
    case NU_XOP_LT:
    case NU_XOP_LE:
    case NU_XOP_GT:
    case NU_XOP_GE: {
        int c = nu_expr_cmp(&a, &b, &unordered);
        out->type = NU_T_BOOL;
        out->u.b = nu_expr_cmp_op(n->op, c, unordered);
        return NU_OK;
    }
    case NU_XOP_CAST:
        return nu_expr_cast(cx, n, &a, out);
    default:
        return nu_err_set(cx->eb, NU_ERR_INTERNAL, "unknown expression node %d", (int)n->op);
    }
}

nu_err_t nu_expr_eval_node(const struct nu_expr *e, uint32_t idx, const struct nu_value *row,
                           nu_arena_t *scratch, struct nu_value *out, struct nu_errbuf *eb)
{
    struct nu_value local[NU_EXPR_LOCAL_SLOTS];
    struct nu_expr_ctx cx = {.e = e, .row = row, .scratch = scratch, .stack = local, .eb = eb};
    uint32_t slots = e->nodes[idx].slots;

    if (slots > NU_EXPR_LOCAL_SLOTS) {
        if (!scratch)
            return nu_err_set(eb, NU_ERR_INVALID, "a scratch arena is required to evaluate \"%s\"",
                              e->text);
        cx.stack = nu_arena_alloc(scratch, slots * sizeof(*cx.stack));
    }
    return nu_expr_ev(&cx, idx, out);
}

nu_err_t nu_expr_eval(const nu_expr_t *e, const struct nu_value *row, nu_arena_t *scratch,
                      struct nu_value *out, struct nu_errbuf *eb)
{
    return nu_expr_eval_node(e, e->root, row, scratch, out, eb);
}

nu_err_t nu_expr_eval_bool(const nu_expr_t *e, const struct nu_value *row, nu_arena_t *scratch,
                           bool *out, struct nu_errbuf *eb)
{
    struct nu_value v;
    nu_err_t rc = nu_expr_eval(e, row, scratch, &v, eb);

    *out = rc == NU_OK && v.type == NU_T_BOOL && v.u.b;
    return rc;
}
