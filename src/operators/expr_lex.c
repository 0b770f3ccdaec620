/* expr_lex.c — tokens, UTF-8 text helpers and position-bearing error messages. */
#include "operators/expr_int.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest numeric literal accepted (digits, point, exponent). */
#define NU_EXPR_MAX_NUMBER_LEN 400

unsigned nu_expr_column(const char *text, size_t pos)
{
    unsigned col = 1;
    for (size_t i = 0; i < pos && text[i]; i++)
        if (((unsigned char)text[i] & 0xC0) != 0x80)
            col++;
    return col;
}

nu_err_t nu_expr_fail(struct nu_errbuf *eb, nu_err_t code, const char *text, size_t pos,
                      const char *fmt, ...)
{
    char msg[NU_ERRBUF_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return nu_err_set(eb, code, "%s at column %u", msg, nu_expr_column(text, pos));
}

bool nu_expr_word_eq(const char *p, size_t len, const char *word)
{
    size_t i = 0;
    for (; i < len; i++) {
        char c = p[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (word[i] == '\0' || word[i] != c)
            return false;
    }
    return word[i] == '\0';
}

void nu_expr_lex_init(struct nu_expr_lexer *lx, const char *text, size_t len, nu_arena_t *arena)
{
    lx->text = text;
    lx->len = len;
    lx->pos = 0;
    lx->arena = arena;
}

static bool nu_expr_is_ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool nu_expr_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static const struct {
    const char *word;
    nu_expr_tok_kind_t kind;
} nu_expr_keywords[] = {
    {"and", NU_TK_AND},   {"or", NU_TK_OR},       {"not", NU_TK_NOT},
    {"in", NU_TK_IN},     {"is", NU_TK_IS},       {"null", NU_TK_NULL},
    {"true", NU_TK_TRUE}, {"false", NU_TK_FALSE}, {"as", NU_TK_AS},
};

static nu_err_t nu_expr_lex_number(struct nu_expr_lexer *lx, struct nu_expr_tok *tok,
                                   struct nu_errbuf *eb)
{
    const char *t = lx->text;
    size_t i = lx->pos;
    bool is_double = false;
    char buf[NU_EXPR_MAX_NUMBER_LEN + 1];
    nu_err_t rc = NU_OK;

    while (i < lx->len && nu_expr_is_digit(t[i]))
        i++;
    if (i < lx->len && t[i] == '.') {
        is_double = true;
        i++;
        while (i < lx->len && nu_expr_is_digit(t[i]))
            i++;
    }
    if (i < lx->len && (t[i] == 'e' || t[i] == 'E')) {
        is_double = true;
        i++;
        if (i < lx->len && (t[i] == '+' || t[i] == '-'))
            i++;
        if (i >= lx->len || !nu_expr_is_digit(t[i])) {
            rc = nu_expr_fail(eb, NU_ERR_PARSE, t, lx->pos, "invalid numeric literal");
            goto out;
        }
        while (i < lx->len && nu_expr_is_digit(t[i]))
            i++;
    }
    if (i < lx->len && (nu_expr_is_ident_start(t[i]) || t[i] == '.')) {
        rc = nu_expr_fail(eb, NU_ERR_PARSE, t, lx->pos, "invalid numeric literal");
        goto out;
    }
    if (i - lx->pos > NU_EXPR_MAX_NUMBER_LEN) {
        rc = nu_expr_fail(eb, NU_ERR_PARSE, t, lx->pos, "numeric literal too long");
        goto out;
    }
    tok->str = t + lx->pos;
    tok->len = i - lx->pos;
    if (is_double) {
        memcpy(buf, tok->str, tok->len);
        buf[tok->len] = '\0';
        errno = 0;
        tok->kind = NU_TK_DOUBLE;
        tok->u.d = strtod(buf, NULL);
        if (errno == ERANGE && isinf(tok->u.d)) {
            rc = nu_expr_fail(eb, NU_ERR_PARSE, t, lx->pos, "numeric literal out of range");
            goto out;
        }
    } else {
        uint64_t v = 0;
        for (size_t k = 0; k < tok->len; k++) {
            uint64_t d = (uint64_t)(tok->str[k] - '0');
            if (v > (UINT64_C(1) << 63) / 10 || v * 10 + d > (UINT64_C(1) << 63)) {
                rc = nu_expr_fail(eb, NU_ERR_PARSE, t, lx->pos, "integer literal out of range");
                goto out;
            }
            v = v * 10 + d;
        }
        tok->kind = NU_TK_INT;
        tok->u.i = v;
    }
    lx->pos = i;
out:
    return rc;
}

/* A quoted string ('…') or quoted name ("…" or `…`): doubled quotes stand for one; in strings,
 * backslash escapes too. The decoded text goes into the arena. */
static nu_err_t nu_expr_lex_quoted(struct nu_expr_lexer *lx, struct nu_expr_tok *tok,
                                   struct nu_errbuf *eb)
{
    const char *t = lx->text;
    char q = t[lx->pos];
    bool is_string = q == '\'';
    size_t i = lx->pos + 1, n = 0, end = lx->pos + 1;
    char *dst = NULL;
    nu_err_t rc = NU_OK;

    /* find the closing quote first, so the decoded copy is sized by the literal alone */
    while (end < lx->len && t[end] != q)
        end += t[end] == '\\' && is_string ? 2 : 1;
    while (end + 1 < lx->len && t[end + 1] == q) {
        end += 2;
        while (end < lx->len && t[end] != q)
            end += t[end] == '\\' && is_string ? 2 : 1;
    }
    dst = nu_arena_alloc(lx->arena, (end < lx->len ? end : lx->len) - lx->pos + 1);

    for (;;) {
        if (i >= lx->len) {
            rc = nu_expr_fail(eb, NU_ERR_PARSE, t, lx->pos,
                              is_string ? "unterminated string literal"
                                        : "unterminated quoted column name");
            goto out;
        }
        char c = t[i];
        if (c == q) {
            if (i + 1 < lx->len && t[i + 1] == q) {
                dst[n++] = q;
                i += 2;
                continue;
            }
            i++;
            break;
        }
        if (c == '\\' && is_string) {
            char x = i + 1 < lx->len ? t[i + 1] : '\0';
            switch (x) {
            case 'n':
                dst[n++] = '\n';
                break;
            case 't':
                dst[n++] = '\t';
                break;
            case 'r':
                dst[n++] = '\r';
                break;
            case '\\':
            case '\'':
            case '"':
                dst[n++] = x;
                break;
            default:
                rc = nu_expr_fail(eb, NU_ERR_PARSE, t, i, "invalid escape sequence");
                goto out;
            }
            i += 2;
            continue;
        }
        dst[n++] = c;
        i++;
    }
    dst[n] = '\0';
    if (!is_string && n == 0) {
        rc = nu_expr_fail(eb, NU_ERR_PARSE, t, lx->pos, "empty quoted column name");
        goto out;
    }
    if (!is_string && n > NU_MAX_NAME_LEN) {
        rc = nu_expr_fail(eb, NU_ERR_PARSE, t, lx->pos, "column name too long (limit %d bytes)",
                          NU_MAX_NAME_LEN);
        goto out;
    }
    tok->kind = is_string ? NU_TK_STRING : NU_TK_QIDENT;
    tok->str = dst;
    tok->len = n;
    lx->pos = i;
out:
    return rc;
}

/* Operators of one or two characters. Returns false when `c` starts none. */
static bool nu_expr_lex_punct(struct nu_expr_lexer *lx, struct nu_expr_tok *tok)
{
    const char *t = lx->text + lx->pos;
    char c = t[0], d = lx->pos + 1 < lx->len ? t[1] : '\0';
    size_t n = 1;

    switch (c) {
    case '(':
        tok->kind = NU_TK_LPAREN;
        break;
    case ')':
        tok->kind = NU_TK_RPAREN;
        break;
    case ',':
        tok->kind = NU_TK_COMMA;
        break;
    case '+':
        tok->kind = NU_TK_PLUS;
        break;
    case '-':
        tok->kind = NU_TK_MINUS;
        break;
    case '*':
        tok->kind = NU_TK_STAR;
        break;
    case '/':
        tok->kind = NU_TK_SLASH;
        break;
    case '%':
        tok->kind = NU_TK_PERCENT;
        break;
    case '=':
        tok->kind = NU_TK_EQ;
        n = d == '=' ? 2 : 1;
        break;
    case '!':
        tok->kind = d == '=' ? NU_TK_NE : NU_TK_NOT;
        n = d == '=' ? 2 : 1;
        break;
    case '<':
        tok->kind = d == '=' ? NU_TK_LE : d == '>' ? NU_TK_NE : NU_TK_LT;
        n = d == '=' || d == '>' ? 2 : 1;
        break;
    case '>':
        tok->kind = d == '=' ? NU_TK_GE : NU_TK_GT;
        n = d == '=' ? 2 : 1;
        break;
    case '&':
    case '|':
        if (d != c)
            return false;
        tok->kind = c == '&' ? NU_TK_AND : NU_TK_OR;
        n = 2;
        break;
    default:
        return false;
    }
    tok->str = t;
    tok->len = n;
    lx->pos += n;
    return true;
}

nu_err_t nu_expr_lex_next(struct nu_expr_lexer *lx, struct nu_expr_tok *tok, struct nu_errbuf *eb)
{
    const char *t = lx->text;
    nu_err_t rc = NU_OK;

    while (lx->pos < lx->len &&
           (t[lx->pos] == ' ' || t[lx->pos] == '\t' || t[lx->pos] == '\n' || t[lx->pos] == '\r'))
        lx->pos++;
    memset(tok, 0, sizeof(*tok));
    tok->pos = lx->pos;
    if (lx->pos >= lx->len) {
        tok->kind = NU_TK_EOF;
        tok->str = t + lx->pos;
        goto out;
    }
    char c = t[lx->pos];
    if (nu_expr_is_digit(c) ||
        (c == '.' && lx->pos + 1 < lx->len && nu_expr_is_digit(t[lx->pos + 1]))) {
        rc = nu_expr_lex_number(lx, tok, eb);
    } else if (c == '\'' || c == '"' || c == '`') {
        rc = nu_expr_lex_quoted(lx, tok, eb);
    } else if (nu_expr_is_ident_start(c)) {
        size_t i = lx->pos;
        while (i < lx->len && (nu_expr_is_ident_start(t[i]) || nu_expr_is_digit(t[i])))
            i++;
        tok->kind = NU_TK_IDENT;
        tok->str = t + lx->pos;
        tok->len = i - lx->pos;
        for (size_t k = 0; k < sizeof(nu_expr_keywords) / sizeof(nu_expr_keywords[0]); k++)
            if (nu_expr_word_eq(tok->str, tok->len, nu_expr_keywords[k].word))
                tok->kind = nu_expr_keywords[k].kind;
        if (tok->kind == NU_TK_IDENT && tok->len > NU_MAX_NAME_LEN) {
            rc = nu_expr_fail(eb, NU_ERR_PARSE, t, lx->pos, "name too long (limit %d bytes)",
                              NU_MAX_NAME_LEN);
            goto out;
        }
        lx->pos = i;
    } else if (!nu_expr_lex_punct(lx, tok)) {
        unsigned char u = (unsigned char)c;
        if (u >= 0x20 && u < 0x7F)
            rc = nu_expr_fail(eb, NU_ERR_PARSE, t, lx->pos, "unexpected character \"%c\"", c);
        else
            rc = nu_expr_fail(eb, NU_ERR_PARSE, t, lx->pos, "unexpected byte 0x%02x", u);
    }
out:
    tok->end = lx->pos;
    return rc;
}

/* --- UTF-8: characters are counted by their lead bytes (bytes that are not 10xxxxxx) --- */

static bool nu_expr_u8_lead(unsigned char c)
{
    return (c & 0xC0) != 0x80;
}

int64_t nu_expr_u8_count(const char *s, size_t len)
{
    int64_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += nu_expr_u8_lead((unsigned char)s[i]);
    return n;
}

/* Byte offset of character `k` (0-based), or len when the string is shorter. */
size_t nu_expr_u8_offset(const char *s, size_t len, int64_t k)
{
    size_t i = 0;
    for (; i < len; i++) {
        if (nu_expr_u8_lead((unsigned char)s[i]) && k-- == 0)
            break;
    }
    return i;
}

bool nu_expr_u8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t n = c < 0x80                 ? 1
                   : c >= 0xC2 && c <= 0xDF ? 2
                   : c >= 0xE0 && c <= 0xEF ? 3
                   : c >= 0xF0 && c <= 0xF4 ? 4
                                            : 0;
        if (n == 0 || i + n > len)
            return false;
        for (size_t k = 1; k < n; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
        if ((c == 0xE0 && s[i + 1] < 0xA0) || (c == 0xED && s[i + 1] > 0x9F) ||
            (c == 0xF0 && s[i + 1] < 0x90) || (c == 0xF4 && s[i + 1] > 0x8F))
            return false;
        i += n;
    }
    return true;
}

/* Simple case mapping for ASCII, Latin-1, Latin Extended-A, Greek and Cyrillic. Each mapping
 * keeps the encoded length, so a mapped string has the length of its input. */
static uint32_t nu_expr_case_map(uint32_t c, bool up)
{
    if (up) {
        if ((c >= 'a' && c <= 'z') || (c >= 0xE0 && c <= 0xFE && c != 0xF7) ||
            (c >= 0x3B1 && c <= 0x3CB && c != 0x3C2) || (c >= 0x430 && c <= 0x44F))
            return c - 0x20;
        if (c == 0xFF)
            return 0x178;
        if ((c >= 0x100 && c <= 0x12F) || (c >= 0x132 && c <= 0x137) || (c >= 0x14A && c <= 0x177))
            return c & 1 ? c - 1 : c;
        if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E))
            return c & 1 ? c : c - 1;
        if (c == 0x3C2)
            return 0x3A3;
        if (c >= 0x450 && c <= 0x45F)
            return c - 0x50;
        if (c == 0x3AC)
            return 0x386;
        if (c >= 0x3AD && c <= 0x3AF)
            return c - 0x25;
        if (c == 0x3CC)
            return 0x38C;
        if (c == 0x3CD || c == 0x3CE)
            return c - 0x3F;
        return c;
    }
    if ((c >= 'A' && c <= 'Z') || (c >= 0xC0 && c <= 0xDE && c != 0xD7) ||
        (c >= 0x391 && c <= 0x3AB && c != 0x3A2) || (c >= 0x410 && c <= 0x42F))
        return c + 0x20;
    if (c == 0x178)
        return 0xFF;
    if ((c >= 0x100 && c <= 0x12F) || (c >= 0x132 && c <= 0x137) || (c >= 0x14A && c <= 0x177))
        return c & 1 ? c : c + 1;
    if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E))
        return c & 1 ? c + 1 : c;
    if (c >= 0x400 && c <= 0x40F)
        return c + 0x50;
    if (c == 0x386)
        return 0x3AC;
    if (c >= 0x388 && c <= 0x38A)
        return c + 0x25;
    if (c == 0x38C)
        return 0x3CC;
    if (c == 0x38E || c == 0x38F)
        return c + 0x3F;
    return c;
}

void nu_expr_case(const char *src, size_t len, char *dst, bool up)
{
    const unsigned char *s = (const unsigned char *)src;
    unsigned char *d = (unsigned char *)dst;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = s[i];
        if (c < 0x80) {
            d[i] = (unsigned char)nu_expr_case_map(c, up);
        } else if (c >= 0xC2 && c <= 0xDF && i + 1 < len && (s[i + 1] & 0xC0) == 0x80) {
            uint32_t cp = nu_expr_case_map(((uint32_t)(c & 0x1F) << 6) | (s[i + 1] & 0x3F), up);
            d[i] = (unsigned char)(0xC0 | (cp >> 6));
            d[i + 1] = (unsigned char)(0x80 | (cp & 0x3F));
            i++;
        } else {
            d[i] = c;
        }
    }
}
