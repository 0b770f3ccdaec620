/*
 * expr_int.h — internals of the expression language, shared by its lexer, parser, checker and
 * evaluator (layer: operators; module-internal, not for other modules).
 *
 * The compiled form is a flat array of nodes in post-order (every node's operands come before
 * it, the root is the last node). Operands are listed by index in a separate array so that calls
 * and IN lists may have any number of them. Constant subtrees are folded into CONST nodes; the
 * nodes they replaced stay in the array, unreferenced. Everything here is immutable after
 * nu_expr_compile() returns.
 */
#ifndef NU_OPERATORS_EXPR_INT_H
#define NU_OPERATORS_EXPR_INT_H

#include "operators/expr.h"

#include <stddef.h>
#include <stdint.h>

/* Operands of one call or IN list, and the evaluation slots kept on the stack of nu_expr_eval. */
#define NU_EXPR_MAX_ARGS    1024
#define NU_EXPR_LOCAL_SLOTS 32

/* --- tokens --- */

typedef enum nu_expr_tok_kind {
    NU_TK_EOF = 0,
    NU_TK_INT,    /* u.i; values up to 2^63 (only valid when negated) */
    NU_TK_DOUBLE, /* u.d */
    NU_TK_STRING, /* str/len: decoded, in the expression's arena */
    NU_TK_IDENT,  /* bare identifier: str/len point into the text */
    NU_TK_QIDENT, /* quoted identifier: decoded, in the arena */
    NU_TK_LPAREN,
    NU_TK_RPAREN,
    NU_TK_COMMA,
    NU_TK_PLUS,
    NU_TK_MINUS,
    NU_TK_STAR,
    NU_TK_SLASH,
    NU_TK_PERCENT,
    NU_TK_EQ,
    NU_TK_NE,
    NU_TK_LT,
    NU_TK_LE,
    NU_TK_GT,
    NU_TK_GE,
    NU_TK_AND,
    NU_TK_OR,
    NU_TK_NOT,
    NU_TK_IN,
    NU_TK_IS,
    NU_TK_NULL,
    NU_TK_TRUE,
    NU_TK_FALSE,
    NU_TK_AS,
} nu_expr_tok_kind_t;

struct nu_expr_tok {
    nu_expr_tok_kind_t kind;
    size_t pos; /* byte offset of the token's first byte */
    size_t end; /* byte offset just after it */
    const char *str;
    size_t len;
    union {
        uint64_t i;
        double d;
    } u;
};

struct nu_expr_lexer {
    const char *text;
    size_t len;
    size_t pos;
    nu_arena_t *arena; /* decoded literals and names */
};

/* --- nodes --- */

typedef enum nu_expr_op {
    NU_XOP_CONST = 0,
    NU_XOP_COLUMN,
    NU_XOP_NEG,
    NU_XOP_NOT,
    NU_XOP_ADD,
    NU_XOP_SUB,
    NU_XOP_MUL,
    NU_XOP_DIV,
    NU_XOP_MOD,
    NU_XOP_EQ,
    NU_XOP_NE,
    NU_XOP_LT,
    NU_XOP_LE,
    NU_XOP_GT,
    NU_XOP_GE,
    NU_XOP_AND, /* n-ary */
    NU_XOP_OR,  /* n-ary */
    NU_XOP_IN,  /* args[0] IN (args[1..]) */
    NU_XOP_NOT_IN,
    NU_XOP_IS_NULL,
    NU_XOP_IS_NOT_NULL,
    NU_XOP_CALL, /* fn */
    NU_XOP_CAST, /* to */
} nu_expr_op_t;

typedef enum nu_expr_fn {
    NU_XFN_LOWER = 0,
    NU_XFN_UPPER,
    NU_XFN_LENGTH,
    NU_XFN_CONCAT,
    NU_XFN_SUBSTR,
    NU_XFN_CONTAINS,
    NU_XFN_STARTS_WITH,
    NU_XFN_ENDS_WITH,
    NU_XFN_COALESCE,
    NU_XFN_IS_NULL,
    NU_XFN_ABS,
    NU_XFN_ROUND,
    NU_XFN__COUNT
} nu_expr_fn_t;

struct nu_expr_node {
    nu_expr_op_t op;
    nu_type_t type; /* static result type */
    bool nullable;
    nu_expr_fn_t fn;   /* CALL */
    nu_type_t to;      /* CAST target */
    uint32_t pos;      /* byte offset of the operator, function name or operand */
    uint32_t nargs;    /* operands */
    uint32_t args;     /* index of the first operand in nu_expr.args */
    uint32_t col;      /* COLUMN: resolved index */
    uint32_t depth;    /* tree height (1 for a leaf) */
    uint32_t slots;    /* evaluation slots this subtree needs */
    const char *name;  /* COLUMN: name as written (in the arena), for messages */
    struct nu_value v; /* CONST */
};

struct nu_expr {
    char *text; /* owned copy of the source */
    size_t len;
    const struct nu_schema *schema; /* borrowed during compile only; NULL afterwards */
    nu_arena_t *arena;              /* names, literals, folded strings */
    struct nu_expr_node *nodes;     /* owned, post-order; root is nodes[nnodes - 1] */
    uint32_t nnodes, cap_nodes;
    uint32_t *args; /* owned operand indices */
    uint32_t nargs, cap_args;
    uint32_t root;
    uint32_t slots; /* evaluation slots needed by the root */
    size_t ncols;   /* columns of the compiled schema */
};

/* --- lexer (expr_lex.c) --- */

void nu_expr_lex_init(struct nu_expr_lexer *lx, const char *text, size_t len, nu_arena_t *arena);
/* Next token into *tok. Errors: NU_ERR_PARSE (bad character, literal or quoting). */
nu_err_t nu_expr_lex_next(struct nu_expr_lexer *lx, struct nu_expr_tok *tok, struct nu_errbuf *eb);
/* 1-based character column of byte offset `pos` (UTF-8 lead bytes are counted). */
unsigned nu_expr_column(const char *text, size_t pos);
/* Set an error whose message ends with " at column N" for byte offset `pos` of `text`. */
nu_err_t nu_expr_fail(struct nu_errbuf *eb, nu_err_t code, const char *text, size_t pos,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Case-insensitive comparison of a (ptr, len) word with a NUL-terminated lower-case word. */
bool nu_expr_word_eq(const char *p, size_t len, const char *word);

/* UTF-8 text (expr_lex.c). Characters are counted by their lead bytes (bytes not 10xxxxxx), so
 * invalid sequences never fail: a stray continuation byte belongs to the character before it. */
int64_t nu_expr_u8_count(const char *s, size_t len);
/* Byte offset of character `k` (0-based), or len when the string is shorter. */
size_t nu_expr_u8_offset(const char *s, size_t len, int64_t k);
bool nu_expr_u8_valid(const unsigned char *s, size_t len);
/* Upper- or lower-case `len` bytes of `src` into `dst` (same length; see expressions.md). */
void nu_expr_case(const char *src, size_t len, char *dst, bool up);

/* --- parser (expr_parse.c) --- */

/* Parse e->text into e->nodes (types not yet known). Errors: NU_ERR_PARSE, NU_ERR_TOO_LARGE. */
nu_err_t nu_expr_parse(struct nu_expr *e, struct nu_errbuf *eb);

/* --- checker (expr_check.c) --- */

/* Function id of a name (case-insensitive), or -1. */
int nu_expr_fn_find(const char *p, size_t len);
const char *nu_expr_fn_name(nu_expr_fn_t fn);
/* Type name accepted by cast(x as T) / T(x): int64, double, string, boolean, bytes; -1 if none. */
int nu_expr_cast_type_find(const char *p, size_t len);
/* Resolve columns, type every node, size evaluation slots and fold constant subtrees. Errors:
 * NU_ERR_TYPE with the position of the offending operator, function or column. */
nu_err_t nu_expr_check(struct nu_expr *e, struct nu_errbuf *eb);

/* --- evaluator (expr_eval.c) --- */

/* Evaluate node `idx` (its whole subtree) of `e`; used for the root and for constant folding. */
nu_err_t nu_expr_eval_node(const struct nu_expr *e, uint32_t idx, const struct nu_value *row,
                           nu_arena_t *scratch, struct nu_value *out, struct nu_errbuf *eb);

#endif
