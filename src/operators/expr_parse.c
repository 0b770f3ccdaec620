/* expr_parse.c — recursive-descent parser, and the compile/destroy entry points. */
#include "operators/expr_int.h"

#include "common/mem.h"

#include <stdlib.h>
#include <string.h>

struct nu_expr_parser {
    struct nu_expr *e;
    struct nu_expr_lexer lx;
    struct nu_expr_tok tok;  /* current token */
    struct nu_expr_tok next; /* one token of look-ahead */
    unsigned depth;          /* nesting of the recursive descent */
    struct nu_errbuf *eb;
};

/* Operand lists being built; nested calls each have their own. */
struct nu_expr_list {
    uint32_t *items;
    uint32_t n, cap;
};

static void nu_expr_list_push(struct nu_expr_list *l, uint32_t v)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->items = nu_xrealloc(l->items, l->cap * sizeof(*l->items));
    }
    l->items[l->n++] = v;
}

static nu_err_t nu_expr_parse_or(struct nu_expr_parser *p, uint32_t *out);

static nu_err_t nu_expr_advance(struct nu_expr_parser *p)
{
    p->tok = p->next;
    if (p->tok.kind == NU_TK_EOF)
        return NU_OK;
    return nu_expr_lex_next(&p->lx, &p->next, p->eb);
}

static nu_err_t nu_expr_unexpected(struct nu_expr_parser *p)
{
    const struct nu_expr_tok *t = &p->tok;
    if (t->kind == NU_TK_EOF)
        return nu_expr_fail(p->eb, NU_ERR_PARSE, p->e->text, t->pos,
                            "unexpected end of expression");
    int n = (int)(t->end - t->pos > 32 ? 32 : t->end - t->pos);
    return nu_expr_fail(p->eb, NU_ERR_PARSE, p->e->text, t->pos, "unexpected \"%.*s\"", n,
                        p->e->text + t->pos);
}

static nu_err_t nu_expr_expect(struct nu_expr_parser *p, nu_expr_tok_kind_t kind, const char *what)
{
    if (p->tok.kind != kind)
        return nu_expr_fail(p->eb, NU_ERR_PARSE, p->e->text, p->tok.pos, "expected %s", what);
    return nu_expr_advance(p);
}

static nu_err_t nu_expr_enter(struct nu_expr_parser *p)
{
    if (++p->depth > NU_EXPR_MAX_DEPTH)
        return nu_expr_fail(p->eb, NU_ERR_TOO_LARGE, p->e->text, p->tok.pos,
                            "expression nested too deeply (limit %d levels)", NU_EXPR_MAX_DEPTH);
    return NU_OK;
}

/* Append a node whose operands are `args` (copied); checks the tree height limit. */
static nu_err_t nu_expr_add(struct nu_expr_parser *p, nu_expr_op_t op, size_t pos,
                            const uint32_t *args, uint32_t nargs, uint32_t *out)
{
    struct nu_expr *e = p->e;
    uint32_t depth = 0;

    for (uint32_t k = 0; k < nargs; k++)
        if (e->nodes[args[k]].depth > depth)
            depth = e->nodes[args[k]].depth;
    if (depth + 1 > NU_EXPR_MAX_DEPTH)
        return nu_expr_fail(p->eb, NU_ERR_TOO_LARGE, e->text, pos,
                            "expression nested too deeply (limit %d levels)", NU_EXPR_MAX_DEPTH);
    if (e->nnodes == e->cap_nodes) {
        e->cap_nodes = e->cap_nodes ? e->cap_nodes * 2 : 16;
        e->nodes = nu_xrealloc(e->nodes, e->cap_nodes * sizeof(*e->nodes));
    }
    while (e->nargs + nargs > e->cap_args) {
        e->cap_args = e->cap_args ? e->cap_args * 2 : 16;
        e->args = nu_xrealloc(e->args, e->cap_args * sizeof(*e->args));
    }
    struct nu_expr_node *n = &e->nodes[e->nnodes];
    memset(n, 0, sizeof(*n));
    n->op = op;
    n->pos = (uint32_t)pos;
    n->nargs = nargs;
    n->args = e->nargs;
    n->depth = depth + 1;
    if (nargs)
        memcpy(e->args + e->nargs, args, nargs * sizeof(*args));
    e->nargs += nargs;
    *out = e->nnodes++;
    return NU_OK;
}

static nu_err_t nu_expr_add_const(struct nu_expr_parser *p, size_t pos, struct nu_value v,
                                  uint32_t *out)
{
    nu_err_t rc = nu_expr_add(p, NU_XOP_CONST, pos, NULL, 0, out);
    if (rc == NU_OK)
        p->e->nodes[*out].v = v;
    return rc;
}

/* name '(' args ')' — the current token is the name; cast(x AS type) is handled here too. */
static nu_err_t nu_expr_parse_call(struct nu_expr_parser *p, uint32_t *out)
{
    struct nu_expr_tok name = p->tok;
    struct nu_expr_list l = {0};
    bool is_cast = nu_expr_word_eq(name.str, name.len, "cast");
    int fn = -1, to = -1;
    nu_err_t rc = NU_OK;

    if (!is_cast) {
        fn = nu_expr_fn_find(name.str, name.len);
        to = fn < 0 ? nu_expr_cast_type_find(name.str, name.len) : -1;
        if (fn < 0 && to < 0) {
            rc = nu_expr_fail(p->eb, NU_ERR_TYPE, p->e->text, name.pos, "unknown function \"%.*s\"",
                              (int)name.len, name.str);
            goto out;
        }
    }
    if ((rc = nu_expr_advance(p)) || (rc = nu_expr_advance(p))) /* name, '(' */
        goto out;
    if (p->tok.kind != NU_TK_RPAREN) {
        for (;;) {
            uint32_t a;
            if (l.n == NU_EXPR_MAX_ARGS) {
                rc = nu_expr_fail(p->eb, NU_ERR_TOO_LARGE, p->e->text, p->tok.pos,
                                  "too many arguments (limit %d)", NU_EXPR_MAX_ARGS);
                goto out;
            }
            if ((rc = nu_expr_parse_or(p, &a)))
                goto out;
            nu_expr_list_push(&l, a);
            if (is_cast) {
                if ((rc = nu_expr_expect(p, NU_TK_AS, "AS")))
                    goto out;
                if (p->tok.kind != NU_TK_IDENT ||
                    (to = nu_expr_cast_type_find(p->tok.str, p->tok.len)) < 0) {
                    rc = nu_expr_fail(p->eb, NU_ERR_PARSE, p->e->text, p->tok.pos,
                                      "expected a type name (int64, double, string, boolean, "
                                      "bytes)");
                    goto out;
                }
                if ((rc = nu_expr_advance(p)))
                    goto out;
                break;
            }
            if (p->tok.kind != NU_TK_COMMA)
                break;
            if ((rc = nu_expr_advance(p)))
                goto out;
        }
    }
    if ((rc = nu_expr_expect(p, NU_TK_RPAREN, "')'")))
        goto out;
    if ((to >= 0 || is_cast) && l.n != 1) {
        rc = nu_expr_fail(p->eb, NU_ERR_TYPE, p->e->text, name.pos,
                          "function %.*s expects 1 argument", (int)name.len, name.str);
        goto out;
    }
    if ((rc = nu_expr_add(p, to >= 0 ? NU_XOP_CAST : NU_XOP_CALL, name.pos, l.items, l.n, out)))
        goto out;
    if (to >= 0)
        p->e->nodes[*out].to = (nu_type_t)to;
    else
        p->e->nodes[*out].fn = (nu_expr_fn_t)fn;
out:
    free(l.items);
    return rc;
}

static nu_err_t nu_expr_parse_primary(struct nu_expr_parser *p, uint32_t *out)
{
    struct nu_expr_tok t = p->tok;
    nu_err_t rc = NU_OK;

    switch (t.kind) {
    case NU_TK_INT:
        if (t.u.i > INT64_MAX) {
            rc = nu_expr_fail(p->eb, NU_ERR_PARSE, p->e->text, t.pos,
                              "integer literal out of range");
            goto out;
        }
        rc = nu_expr_add_const(p, t.pos, nu_value_int((int64_t)t.u.i), out);
        break;
    case NU_TK_DOUBLE:
        rc = nu_expr_add_const(p, t.pos, nu_value_double(t.u.d), out);
        break;
    case NU_TK_STRING:
        rc = nu_expr_add_const(p, t.pos, nu_value_view(NU_T_STRING, t.str, t.len), out);
        break;
    case NU_TK_TRUE:
    case NU_TK_FALSE:
        rc = nu_expr_add_const(p, t.pos, nu_value_bool(t.kind == NU_TK_TRUE), out);
        break;
    case NU_TK_NULL:
        rc = nu_expr_add_const(p, t.pos, nu_value_null(), out);
        break;
    case NU_TK_LPAREN:
        if ((rc = nu_expr_advance(p)) || (rc = nu_expr_parse_or(p, out)))
            goto out;
        rc = nu_expr_expect(p, NU_TK_RPAREN, "')'");
        goto out;
    case NU_TK_IDENT:
        if (p->next.kind == NU_TK_LPAREN) {
            rc = nu_expr_parse_call(p, out);
            goto out;
        }
        __attribute__((fallthrough));
    case NU_TK_QIDENT:
        if ((rc = nu_expr_add(p, NU_XOP_COLUMN, t.pos, NULL, 0, out)))
            goto out;
        p->e->nodes[*out].name = nu_arena_strndup(p->e->arena, t.str, t.len);
        break;
    default:
        rc = nu_expr_unexpected(p);
        goto out;
    }
    if (rc == NU_OK)
        rc = nu_expr_advance(p);
out:
    return rc;
}

static nu_err_t nu_expr_parse_unary(struct nu_expr_parser *p, uint32_t *out)
{
    size_t pos = p->tok.pos;
    uint32_t a;
    nu_err_t rc = NU_OK;

    if (p->tok.kind != NU_TK_MINUS)
        return nu_expr_parse_primary(p, out);
    if ((rc = nu_expr_enter(p)) || (rc = nu_expr_advance(p)))
        goto out;
    if (p->tok.kind == NU_TK_INT) { /* a negative literal; -9223372036854775808 fits */
        uint64_t u = p->tok.u.i;
        int64_t v = u == (UINT64_C(1) << 63) ? INT64_MIN : -(int64_t)u;
        if ((rc = nu_expr_add_const(p, pos, nu_value_int(v), out)))
            goto out;
        rc = nu_expr_advance(p);
        goto out;
    }
    if ((rc = nu_expr_parse_unary(p, &a)))
        goto out;
    rc = nu_expr_add(p, NU_XOP_NEG, pos, &a, 1, out);
out:
    p->depth--;
    return rc;
}

static nu_err_t nu_expr_parse_mul(struct nu_expr_parser *p, uint32_t *out)
{
    uint32_t ab[2];
    nu_err_t rc = nu_expr_parse_unary(p, &ab[0]);

    while (rc == NU_OK && (p->tok.kind == NU_TK_STAR || p->tok.kind == NU_TK_SLASH ||
                           p->tok.kind == NU_TK_PERCENT)) {
        nu_expr_op_t op = p->tok.kind == NU_TK_STAR    ? NU_XOP_MUL
                          : p->tok.kind == NU_TK_SLASH ? NU_XOP_DIV
                                                       : NU_XOP_MOD;
        size_t pos = p->tok.pos;
        if ((rc = nu_expr_advance(p)) || (rc = nu_expr_parse_unary(p, &ab[1])))
            break;
        rc = nu_expr_add(p, op, pos, ab, 2, &ab[0]);
    }
    *out = ab[0];
    return rc;
}

static nu_err_t nu_expr_parse_add(struct nu_expr_parser *p, uint32_t *out)
{
    uint32_t ab[2];
    nu_err_t rc = nu_expr_parse_mul(p, &ab[0]);

    while (rc == NU_OK && (p->tok.kind == NU_TK_PLUS || p->tok.kind == NU_TK_MINUS)) {
        nu_expr_op_t op = p->tok.kind == NU_TK_PLUS ? NU_XOP_ADD : NU_XOP_SUB;
        size_t pos = p->tok.pos;
        if ((rc = nu_expr_advance(p)) || (rc = nu_expr_parse_mul(p, &ab[1])))
            break;
        rc = nu_expr_add(p, op, pos, ab, 2, &ab[0]);
    }
    *out = ab[0];
    return rc;
}

/* '(' item, … ')' after IN; `needle` becomes the first operand. */
static nu_err_t nu_expr_parse_in(struct nu_expr_parser *p, nu_expr_op_t op, size_t pos,
                                 uint32_t needle, uint32_t *out)
{
    struct nu_expr_list l = {0};
    nu_err_t rc = NU_OK;

    nu_expr_list_push(&l, needle);
    if ((rc = nu_expr_expect(p, NU_TK_LPAREN, "'(' after IN")))
        goto out;
    for (;;) {
        uint32_t a;
        if (l.n > NU_EXPR_MAX_ARGS) {
            rc = nu_expr_fail(p->eb, NU_ERR_TOO_LARGE, p->e->text, p->tok.pos,
                              "too many items in IN list (limit %d)", NU_EXPR_MAX_ARGS);
            goto out;
        }
        if ((rc = nu_expr_parse_or(p, &a)))
            goto out;
        nu_expr_list_push(&l, a);
        if (p->tok.kind != NU_TK_COMMA)
            break;
        if ((rc = nu_expr_advance(p)))
            goto out;
    }
    if ((rc = nu_expr_expect(p, NU_TK_RPAREN, "')'")))
        goto out;
    rc = nu_expr_add(p, op, pos, l.items, l.n, out);
out:
    free(l.items);
    return rc;
}

static nu_err_t nu_expr_parse_cmp(struct nu_expr_parser *p, uint32_t *out)
{
    uint32_t ab[2];
    nu_err_t rc = nu_expr_parse_add(p, &ab[0]);

    while (rc == NU_OK) {
        size_t pos = p->tok.pos;
        nu_expr_op_t op;
        switch (p->tok.kind) {
        case NU_TK_EQ:
            op = NU_XOP_EQ;
            break;
        case NU_TK_NE:
            op = NU_XOP_NE;
            break;
        case NU_TK_LT:
            op = NU_XOP_LT;
            break;
        case NU_TK_LE:
            op = NU_XOP_LE;
            break;
        case NU_TK_GT:
            op = NU_XOP_GT;
            break;
        case NU_TK_GE:
            op = NU_XOP_GE;
            break;
        case NU_TK_IN:
            if ((rc = nu_expr_advance(p)))
                goto out;
            rc = nu_expr_parse_in(p, NU_XOP_IN, pos, ab[0], &ab[0]);
            continue;
        case NU_TK_NOT:
            if (p->next.kind != NU_TK_IN)
                goto out;
            if ((rc = nu_expr_advance(p)) || (rc = nu_expr_advance(p)))
                goto out;
            rc = nu_expr_parse_in(p, NU_XOP_NOT_IN, pos, ab[0], &ab[0]);
            continue;
        case NU_TK_IS:
            op = NU_XOP_IS_NULL;
            if ((rc = nu_expr_advance(p)))
                goto out;
            if (p->tok.kind == NU_TK_NOT) {
                op = NU_XOP_IS_NOT_NULL;
                if ((rc = nu_expr_advance(p)))
                    goto out;
            }
            if ((rc = nu_expr_expect(p, NU_TK_NULL, "NULL after IS")))
                goto out;
            rc = nu_expr_add(p, op, pos, ab, 1, &ab[0]);
            continue;
        default:
            goto out;
        }
        if ((rc = nu_expr_advance(p)) || (rc = nu_expr_parse_add(p, &ab[1])))
            goto out;
        rc = nu_expr_add(p, op, pos, ab, 2, &ab[0]);
    }
out:
    *out = ab[0];
    return rc;
}

static nu_err_t nu_expr_parse_not(struct nu_expr_parser *p, uint32_t *out)
{
    size_t pos = p->tok.pos;
    uint32_t a;
    nu_err_t rc = NU_OK;

    if (p->tok.kind != NU_TK_NOT)
        return nu_expr_parse_cmp(p, out);
    if ((rc = nu_expr_enter(p)) || (rc = nu_expr_advance(p)) || (rc = nu_expr_parse_not(p, &a)))
        goto out;
    rc = nu_expr_add(p, NU_XOP_NOT, pos, &a, 1, out);
out:
    p->depth--;
    return rc;
}

/* A chain of && (or ||) becomes one n-ary node, so long chains stay shallow. */
static nu_err_t nu_expr_parse_chain(struct nu_expr_parser *p, bool is_or, uint32_t *out)
{
    struct nu_expr_list l = {0};
    nu_expr_tok_kind_t sep = is_or ? NU_TK_OR : NU_TK_AND;
    size_t pos = 0;
    uint32_t a;
    nu_err_t rc;

    rc = is_or ? nu_expr_parse_chain(p, false, &a) : nu_expr_parse_not(p, &a);
    if (rc != NU_OK || p->tok.kind != sep) {
        *out = a;
        goto out;
    }
    nu_expr_list_push(&l, a);
    pos = p->tok.pos;
    while (p->tok.kind == sep) {
        if ((rc = nu_expr_advance(p)))
            goto out;
        rc = is_or ? nu_expr_parse_chain(p, false, &a) : nu_expr_parse_not(p, &a);
        if (rc != NU_OK)
            goto out;
        if (l.n == NU_EXPR_MAX_ARGS) {
            rc = nu_expr_fail(p->eb, NU_ERR_TOO_LARGE, p->e->text, pos,
                              "too many operands (limit %d)", NU_EXPR_MAX_ARGS);
            goto out;
        }
        nu_expr_list_push(&l, a);
    }
    rc = nu_expr_add(p, is_or ? NU_XOP_OR : NU_XOP_AND, pos, l.items, l.n, out);
out:
    free(l.items);
    return rc;
}

static nu_err_t nu_expr_parse_or(struct nu_expr_parser *p, uint32_t *out)
{
    nu_err_t rc = nu_expr_enter(p);
    if (rc == NU_OK)
        rc = nu_expr_parse_chain(p, true, out);
    p->depth--;
    return rc;
}

nu_err_t nu_expr_parse(struct nu_expr *e, struct nu_errbuf *eb)
{
    struct nu_expr_parser p = {.e = e, .eb = eb};
    nu_err_t rc;

    nu_expr_lex_init(&p.lx, e->text, e->len, e->arena);
    if ((rc = nu_expr_lex_next(&p.lx, &p.next, eb)) || (rc = nu_expr_advance(&p)))
        goto out;
    if ((rc = nu_expr_parse_or(&p, &e->root)))
        goto out;
    if (p.tok.kind != NU_TK_EOF)
        rc = nu_expr_unexpected(&p);
out:
    return rc;
}

/* --- public entry points --- */

void nu_expr_destroy(nu_expr_t *e)
{
    if (!e)
        return;
    free(e->text);
    free(e->nodes);
    free(e->args);
    nu_arena_destroy(e->arena);
    free(e);
}

nu_err_t nu_expr_compile(const char *text, const struct nu_schema *schema, nu_expr_t **out,
                         struct nu_errbuf *eb)
{
    struct nu_expr *e = NULL;
    size_t len;
    nu_err_t rc = NU_OK;

    *out = NULL;
    if (!text || !schema) {
        rc = nu_err_set(eb, NU_ERR_INVALID, "expression text and schema are required");
        goto fail;
    }
    len = strnlen(text, NU_EXPR_MAX_LEN + 1);
    if (len > NU_EXPR_MAX_LEN) {
        rc = nu_err_set(eb, NU_ERR_TOO_LARGE, "expression is too long (limit %d bytes)",
                        NU_EXPR_MAX_LEN);
        goto fail;
    }
    e = nu_xcalloc(1, sizeof(*e));
    e->text = nu_xstrndup(text, len);
    e->len = len;
    e->arena = nu_arena_new(len + 1024);
    e->schema = schema;
    e->ncols = schema->ncols;
    if ((rc = nu_expr_parse(e, eb)) || (rc = nu_expr_check(e, eb)))
        goto fail;
    e->schema = NULL;
    *out = e;
    return NU_OK;
fail:
    nu_expr_destroy(e);
    return rc;
}

nu_type_t nu_expr_type(const nu_expr_t *e)
{
    return e->nodes[e->root].type;
}

bool nu_expr_nullable(const nu_expr_t *e)
{
    return e->nodes[e->root].nullable;
}

const char *nu_expr_text(const nu_expr_t *e)
{
    return e->text;
}
