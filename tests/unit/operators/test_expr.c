/* Tests of src/operators/expr_*.c: the expression language of map and filter. */
#include "operators/expr.h"
#include "operators/expr_int.h"

#include "common/mem.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- a schema and one row shared by the tables --- */

enum {
    C_ID,
    C_X,
    C_NAME,
    C_PAYLOAD,
    C_FLAG,
    C_N,
    C_MYCOL,
    C_TAGS,
    C_BIG,
    C_I1,
    C_I2,
    C_I3,
    C_S,
    C_QUOTE,
    C_NCOLS
};

static struct nu_value tag_items[3];
static struct nu_value row[C_NCOLS];

static struct nu_schema *make_schema(void)
{
    struct nu_schema *s = nu_schema_new(C_NCOLS);
    struct nu_field item = {.type = NU_T_STRING};
    nu_schema_set(s, C_ID, "id", NU_T_INT64, false, NULL);
    nu_schema_set(s, C_X, "x", NU_T_DOUBLE, true, NULL);
    nu_schema_set(s, C_NAME, "name", NU_T_STRING, true, NULL);
    nu_schema_set(s, C_PAYLOAD, "payload", NU_T_BYTES, true, NULL);
    nu_schema_set(s, C_FLAG, "flag", NU_T_BOOL, true, NULL);
    nu_schema_set(s, C_N, "n", NU_T_INT64, true, NULL);
    nu_schema_set(s, C_MYCOL, "my col", NU_T_INT64, false, NULL);
    nu_schema_set(s, C_TAGS, "tags", NU_T_ARRAY, true, &item);
    nu_schema_set(s, C_BIG, "big", NU_T_INT64, false, NULL);
    nu_schema_set(s, C_I1, "i1", NU_T_INT64, false, NULL);
    nu_schema_set(s, C_I2, "i2", NU_T_INT64, false, NULL);
    nu_schema_set(s, C_I3, "i3", NU_T_INT64, false, NULL);
    nu_schema_set(s, C_S, "s", NU_T_STRING, false, NULL);
    nu_schema_set(s, C_QUOTE, "a\"b", NU_T_STRING, false, NULL);

    for (int i = 0; i < 3; i++)
        tag_items[i] = nu_value_view(NU_T_STRING, "t", 1);
    row[C_ID] = nu_value_int(7);
    row[C_X] = nu_value_double(2.5);
    row[C_NAME] = nu_value_view(NU_T_STRING, "Alice", 5);
    row[C_PAYLOAD] = nu_value_view(NU_T_BYTES, "ab\xff\x00", 4);
    row[C_FLAG] = nu_value_bool(true);
    row[C_N] = nu_value_null();
    row[C_MYCOL] = nu_value_int(42);
    row[C_TAGS].type = NU_T_ARRAY;
    row[C_TAGS].u.arr.items = tag_items;
    row[C_TAGS].u.arr.n = 3;
    row[C_BIG] = nu_value_int(INT64_MAX);
    row[C_I1] = nu_value_int(1);
    row[C_I2] = nu_value_int(2);
    row[C_I3] = nu_value_int(3);
    row[C_S] = nu_value_view(NU_T_STRING, "héllo wörld", strlen("héllo wörld"));
    row[C_QUOTE] = nu_value_view(NU_T_STRING, "q", 1);
    return s;
}

/* Canonical text of a value: null, true, i:7, d:2.5, s:'x', b:'x'. */
static void fmt_value(const struct nu_value *v, char *buf, size_t size)
{
    switch (v->type) {
    case NU_T_NULL:
        snprintf(buf, size, "null");
        break;
    case NU_T_BOOL:
        snprintf(buf, size, "%s", v->u.b ? "true" : "false");
        break;
    case NU_T_INT64:
        snprintf(buf, size, "i:%lld", (long long)v->u.i);
        break;
    case NU_T_DOUBLE:
        if (v->u.d == trunc(v->u.d) && fabs(v->u.d) < 1e15) {
            snprintf(buf, size, "d:%.0f", v->u.d);
            break;
        }
        for (int p = 1; p <= 17; p++) {
            snprintf(buf, size, "d:%.*g", p, v->u.d);
            if (strtod(buf + 2, NULL) == v->u.d || isnan(v->u.d))
                break;
        }
        break;
    case NU_T_STRING:
    case NU_T_BYTES:
        snprintf(buf, size, "%c:'%.*s'", v->type == NU_T_STRING ? 's' : 'b', (int)v->u.s.len,
                 v->u.s.ptr);
        break;
    default:
        snprintf(buf, size, "%s", nu_type_name(v->type));
        break;
    }
}

struct ok_case {
    const char *text;
    const char *want;
};

static void run_ok(const struct ok_case *cases, size_t n)
{
    struct nu_schema *s = make_schema();
    nu_arena_t *a = nu_arena_new(0);
    for (size_t i = 0; i < n; i++) {
        struct nu_errbuf eb = {0};
        nu_expr_t *e = NULL;
        struct nu_value v;
        char got[256];
        nu_err_t rc = nu_expr_compile(cases[i].text, s, &e, &eb);
        cr_assert_eq(rc, NU_OK, "compile %s: %s", cases[i].text, nu_err_msg(&eb));
        rc = nu_expr_eval(e, row, a, &v, &eb);
        cr_assert_eq(rc, NU_OK, "eval %s: %s", cases[i].text, nu_err_msg(&eb));
        fmt_value(&v, got, sizeof(got));
        cr_expect_str_eq(got, cases[i].want, "%s: got %s, want %s", cases[i].text, got,
                         cases[i].want);
        nu_expr_destroy(e);
    }
    nu_arena_destroy(a);
    nu_schema_unref(s);
}

struct err_case {
    const char *text;
    nu_err_t code;
    const char *msg;
};

/* Compile errors when code is not NU_ERR_EVAL; evaluation errors otherwise. */
static void run_err(const struct err_case *cases, size_t n)
{
    struct nu_schema *s = make_schema();
    nu_arena_t *a = nu_arena_new(0);
    for (size_t i = 0; i < n; i++) {
        struct nu_errbuf eb = {0};
        nu_expr_t *e = NULL;
        struct nu_value v;
        nu_err_t rc = nu_expr_compile(cases[i].text, s, &e, &eb);
        if (cases[i].code == NU_ERR_EVAL) {
            cr_assert_eq(rc, NU_OK, "compile %s: %s", cases[i].text, nu_err_msg(&eb));
            rc = nu_expr_eval(e, row, a, &v, &eb);
        } else {
            cr_expect_null(e, "%s", cases[i].text);
        }
        cr_expect_eq(rc, cases[i].code, "%s: got %s (%s)", cases[i].text, nu_err_name(rc),
                     nu_err_msg(&eb));
        cr_expect_str_eq(nu_err_msg(&eb), cases[i].msg, "%s: got \"%s\"", cases[i].text,
                         nu_err_msg(&eb));
        nu_expr_destroy(e);
    }
    nu_arena_destroy(a);
    nu_schema_unref(s);
}

#define RUN_OK(t)  run_ok(t, sizeof(t) / sizeof(t[0]))
#define RUN_ERR(t) run_err(t, sizeof(t) / sizeof(t[0]))

Test(expr, precedence_and_associativity)
{
    static const struct ok_case t[] = {
        {"1 + 2 * 3", "i:7"},
        {"i1 + i2 * i3", "i:7"},
        {"(1 + 2) * 3", "i:9"},
        {"(i1 + i2) * i3", "i:9"},
        {"10 - 4 - 3", "i:3"},
        {"10 - i3 - i3", "i:4"},
        {"100 / 10 / 5", "i:2"},
        {"2 * 3 % 4", "i:2"},
        {"i2 * i3 % 4", "i:2"},
        {"7 - 2 + 1", "i:6"},
        {"-2 * 3", "i:-6"},
        {"-i2 * i3", "i:-6"},
        {"- -3", "i:3"},
        {"- - i3", "i:3"},
        {"1 + 2 == 3", "true"},
        {"i1 + i2 == i3", "true"},
        {"true || false && false", "true"},
        {"flag || false && false", "true"},
        {"(true || false) && false", "false"},
        {"false OR true AND false", "false"},
        {"!false && false", "false"},
        {"not 1 == 2", "true"},
        {"! id == 7", "false"},
        {"NOT i1 IN (1, 2)", "false"},
        {"1 < 2 == true", "true"},
        {"i1 + 1 IN (2) AND i3 IS NOT NULL", "true"},
        {"1 + 2 * 3 - 4 / 2 % 3", "i:5"},
    };
    RUN_OK(t);
}

Test(expr, operators)
{
    static const struct ok_case t[] = {
        {"7 / 2", "i:3"},
        {"-7 / 2", "i:-3"},
        {"-7 % 3", "i:-1"},
        {"id % -1", "i:0"},
        {"7.0 / 2", "d:3.5"},
        {"7 % 2.5", "d:2"},
        {"id + x", "d:9.5"},
        {"id - x", "d:4.5"},
        {"id * x", "d:17.5"},
        {"x / 0", "d:inf"},
        {"-x / 0.0", "d:-inf"},
        {"1.5e1 + .5", "d:15.5"},
        {"1e-3 * 1000", "d:1"},
        {"-x", "d:-2.5"},
        {"-9223372036854775808", "i:-9223372036854775808"},
        {"1 = 1", "true"},
        {"1 == 2", "false"},
        {"1 <> 2", "true"},
        {"1 != 1", "false"},
        {"2 >= 2", "true"},
        {"2 > 3", "false"},
        {"1 <= 1.5", "true"},
        {"id < x", "false"},
        {"x == 2.5", "true"},
        {"0.0 / 0.0 == 0.0 / 0.0", "false"},
        {"0.0 / 0.0 != 0.0 / 0.0", "true"},
        {"'abc' < 'abd'", "true"},
        {"'ab' < 'abc'", "true"},
        {"name >= 'Alice'", "true"},
        {"name = 'alice'", "false"},
        {"true > false", "true"},
        {"flag = true", "true"},
        {"cast(name as bytes) == cast('Alice' as bytes)", "true"},
        {"id IN (1, 7)", "true"},
        {"id IN (1, 2)", "false"},
        {"id IN (1.0, 7.0)", "true"},
        {"id NOT IN (1, 7)", "false"},
        {"id NOT IN (1, 2)", "true"},
        {"id IN (1, null)", "null"},
        {"id NOT IN (1, null)", "null"},
        {"id IN (7, null)", "true"},
        {"n IN (1)", "null"},
        {"name IN ('Bob', 'Alice')", "true"},
        {"name IS NULL", "false"},
        {"n IS NULL", "true"},
        {"n IS NOT NULL", "false"},
        {"tags IS NOT NULL", "true"},
    };
    RUN_OK(t);
}

Test(expr, null_rules)
{
    static const struct ok_case t[] = {
        {"n + 1", "null"},
        {"1 - n", "null"},
        {"n * x", "null"},
        {"n / 0", "null"},
        {"n == n", "null"},
        {"n < 1", "null"},
        {"-n", "null"},
        {"!null", "null"},
        {"n > 1 && false", "false"},
        {"false && n > 1", "false"},
        {"null && true", "null"},
        {"n > 1 && true", "null"},
        {"null || true", "true"},
        {"n > 1 || true", "true"},
        {"null || false", "null"},
        {"true AND true AND null", "null"},
        {"false && id / 0 == 1", "false"},
        {"true || id / 0 == 1", "true"},
        {"coalesce(n, 5)", "i:5"},
        {"coalesce(n, x)", "d:2.5"},
        {"coalesce(n, id, x)", "d:7"},
        {"coalesce(name, 'x')", "s:'Alice'"},
        {"coalesce(null, null)", "null"},
        {"coalesce(id, id / 0)", "i:7"},
        {"is_null(n)", "true"},
        {"is_null(id)", "false"},
        {"concat('a', null)", "null"},
        {"lower(null)", "null"},
        {"length(cast(n as string))", "null"},
        {"substr(name, n)", "null"},
        {"abs(n)", "null"},
        {"round(x, n)", "null"},
        {"cast(n as string)", "null"},
        {"contains(null, 'a')", "null"},
    };
    RUN_OK(t);
}

Test(expr, functions)
{
    static const struct ok_case t[] = {
        {"lower('ABC def')", "s:'abc def'"},
        {"upper(name)", "s:'ALICE'"},
        {"LOWER(name)", "s:'alice'"},
        {"length(name)", "i:5"},
        {"length('')", "i:0"},
        {"length(payload)", "i:4"},
        {"length(tags)", "i:3"},
        {"concat('a', 'b', 'c')", "s:'abc'"},
        {"concat(name)", "s:'Alice'"},
        {"concat(name, '-', string(id))", "s:'Alice-7'"},
        {"concat('', '')", "s:''"},
        {"substr('hello', 2, 3)", "s:'ell'"},
        {"substr('hello', 0, 2)", "s:'h'"},
        {"substr('hello', -5, 7)", "s:'h'"},
        {"substr('hello', 4)", "s:'lo'"},
        {"substr('hello', 10)", "s:''"},
        {"substr('hello', 2, 0)", "s:''"},
        {"substr('hello', 2, 9223372036854775807)", "s:'ello'"},
        {"substr(payload, 2, 1)", "b:'b'"},
        {"contains('hello', 'ell')", "true"},
        {"contains('hello', 'xyz')", "false"},
        {"contains('hello', '')", "true"},
        {"contains('aab', 'ab')", "true"},
        {"contains('ab', 'abc')", "false"},
        {"starts_with(name, 'Al')", "true"},
        {"starts_with(name, 'li')", "false"},
        {"ends_with(name, 'ice')", "true"},
        {"ends_with(name, 'Al')", "false"},
        {"abs(-3)", "i:3"},
        {"abs(i3)", "i:3"},
        {"abs(-2.5)", "d:2.5"},
        {"round(2.5)", "d:3"},
        {"round(-2.5)", "d:-3"},
        {"round(x)", "d:3"},
        {"round(2.375, 2)", "d:2.38"},
        {"round(1234.5, -2)", "d:1200"},
        {"round(15)", "i:15"},
        {"round(1250, -2)", "i:1300"},
        {"round(1249, -2)", "i:1200"},
        {"round(-1250, -2)", "i:-1300"},
        {"round(id, -30)", "i:0"},
        {"is_null(tags)", "false"},
        {"coalesce(tags, tags) IS NULL", "false"},
    };
    RUN_OK(t);
}

Test(expr, unicode)
{
    static const struct ok_case t[] = {
        {"length(s)", "i:11"},
        {"length('привет')", "i:6"},
        {"substr(s, 2, 4)", "s:'éllo'"},
        {"substr('привет', 2, 3)", "s:'рив'"},
        {"substr(s, 8)", "s:'örld'"},
        {"upper(s)", "s:'HÉLLO WÖRLD'"},
        {"lower('ÀÉÎ ÿ Ÿ')", "s:'àéî ÿ ÿ'"},
        {"upper('straße')", "s:'STRAßE'"},
        {"upper('αβγ ς')", "s:'ΑΒΓ Σ'"},
        {"lower('ПРИВЕТ Ёж')", "s:'привет ёж'"},
        {"upper('łódź')", "s:'ŁÓDŹ'"},
        {"lower('ŁÓDŹ')", "s:'łódź'"},
        {"upper('日本')", "s:'日本'"},
        {"contains(s, 'wö')", "true"},
        {"'é' < 'z'", "false"},
    };
    RUN_OK(t);
}

Test(expr, casts)
{
    static const struct ok_case t[] = {
        {"cast('42' as int64)", "i:42"},
        {"int64(' -7 ')", "i:-7"},
        {"int64('-9223372036854775808')", "i:-9223372036854775808"},
        {"int64(2.9)", "i:2"},
        {"int64(-2.9)", "i:-2"},
        {"int64(true)", "i:1"},
        {"CAST(x AS INT)", "i:2"},
        {"double('1.5')", "d:1.5"},
        {"double(' 1e3')", "d:1000"},
        {"double(3)", "d:3"},
        {"cast(flag as double)", "d:1"},
        {"string(42)", "s:'42'"},
        {"string(-42)", "s:'-42'"},
        {"string(2.5)", "s:'2.5'"},
        {"string(0.1)", "s:'0.1'"},
        {"string(1.0 / 3)", "s:'0.3333333333333333'"},
        {"string(true)", "s:'true'"},
        {"string(name)", "s:'Alice'"},
        {"string(cast('hé' as bytes))", "s:'hé'"},
        {"boolean('yes')", "true"},
        {"boolean('F')", "false"},
        {"boolean(' TRUE ')", "true"},
        {"boolean(0)", "false"},
        {"boolean(5)", "true"},
        {"cast(name as bytes)", "b:'Alice'"},
        {"cast(n as int64)", "null"},
        {"cast(1 + 1 as string)", "s:'2'"},
        {"bool('1')", "true"},
    };
    RUN_OK(t);
}

Test(expr, quoted_names_and_keywords)
{
    static const struct ok_case t[] = {
        {"\"my col\" + 1", "i:43"},
        {"`my col` * 2", "i:84"},
        {"\"a\"\"b\"", "s:'q'"},
        {"`id`", "i:7"},
        {"TRUE and not FALSE", "true"},
        {"id In (7)", "true"},
        {"n is NULL", "true"},
        {"Null", "null"},
        {"CAST(id AS STRING)", "s:'7'"},
        {"'it''s'", "s:'it's'"},
        {"'a\\tb\\\\c\\'d\\n'", "s:'a\tb\\c'd\n'"},
        {"  \t id\n", "i:7"},
    };
    RUN_OK(t);
}

Test(expr, compile_errors_name_their_column)
{
    static const struct err_case t[] = {
        {"(1 + 2", NU_ERR_PARSE, "expected ')' at column 7"},
        {"lower(name, 'x'", NU_ERR_PARSE, "expected ')' at column 16"},
        {"concat(name, 'x'", NU_ERR_PARSE, "expected ')' at column 17"},
        {"1 +", NU_ERR_PARSE, "unexpected end of expression at column 4"},
        {"", NU_ERR_PARSE, "unexpected end of expression at column 1"},
        {"1 2", NU_ERR_PARSE, "unexpected \"2\" at column 3"},
        {"id )", NU_ERR_PARSE, "unexpected \")\" at column 4"},
        {"foo", NU_ERR_TYPE, "unknown column \"foo\" at column 1"},
        {"id + foo", NU_ERR_TYPE, "unknown column \"foo\" at column 6"},
        {"\"my  col\"", NU_ERR_TYPE, "unknown column \"my  col\" at column 1"},
        {"substr('a')", NU_ERR_TYPE, "function substr expects 2 or 3 arguments at column 1"},
        {"lower()", NU_ERR_TYPE, "function lower expects 1 argument at column 1"},
        {"concat()", NU_ERR_TYPE, "function concat expects at least 1 argument at column 1"},
        {"contains('a')", NU_ERR_TYPE, "function contains expects 2 arguments at column 1"},
        {"int64(1, 2)", NU_ERR_TYPE, "function int64 expects 1 argument at column 1"},
        {"cast()", NU_ERR_TYPE, "function cast expects 1 argument at column 1"},
        {"nosuch(1)", NU_ERR_TYPE, "unknown function \"nosuch\" at column 1"},
        {"name = 1", NU_ERR_TYPE, "cannot compare string with int64 at column 6"},
        {"'é' = 1", NU_ERR_TYPE, "cannot compare string with int64 at column 5"},
        {"x IN (1, 'a')", NU_ERR_TYPE, "cannot compare double with string at column 3"},
        {"tags == 1", NU_ERR_TYPE, "cannot compare array with int64 at column 6"},
        {"flag < 1", NU_ERR_TYPE, "cannot compare boolean with int64 at column 6"},
        {"name + 1", NU_ERR_TYPE,
         "operator + expects numbers, got string and int64 (use concat() to join strings) at "
         "column 6"},
        {"id * flag", NU_ERR_TYPE, "operator * expects numbers, got int64 and boolean at column 4"},
        {"-name", NU_ERR_TYPE, "operator - expects a number, got string at column 1"},
        {"id && true", NU_ERR_TYPE, "operator AND expects boolean operands, got int64 at column 4"},
        {"flag or 1", NU_ERR_TYPE, "operator OR expects boolean operands, got int64 at column 6"},
        {"not id", NU_ERR_TYPE, "operator NOT expects boolean operands, got int64 at column 1"},
        {"lower(id)", NU_ERR_TYPE,
         "function lower expects a string as argument 1, got int64 at column 1"},
        {"substr(name, '1')", NU_ERR_TYPE,
         "function substr expects an int64 as argument 2, got string at column 1"},
        {"length(id)", NU_ERR_TYPE,
         "function length expects a string, bytes, array or map, got int64 at column 1"},
        {"contains(name, payload)", NU_ERR_TYPE,
         "function contains cannot mix string with bytes at column 1"},
        {"abs(tags)", NU_ERR_TYPE,
         "function abs expects a number as argument 1, got array at "
         "column 1"},
        {"coalesce(name, 1)", NU_ERR_TYPE,
         "function coalesce has arguments of types string and int64 with no common type at "
         "column 1"},
        {"cast(tags as int64)", NU_ERR_TYPE, "cannot cast array to int64 at column 1"},
        {"bytes(id)", NU_ERR_TYPE, "cannot cast int64 to bytes at column 1"},
        {"cast(id as widget)", NU_ERR_PARSE,
         "expected a type name (int64, double, string, boolean, bytes) at column 12"},
        {"cast(id, 1)", NU_ERR_PARSE, "expected AS at column 8"},
        {"9223372036854775808", NU_ERR_PARSE, "integer literal out of range at column 1"},
        {"1 + 99999999999999999999", NU_ERR_PARSE, "integer literal out of range at column 5"},
        {"1e999", NU_ERR_PARSE, "numeric literal out of range at column 1"},
        {"12abc", NU_ERR_PARSE, "invalid numeric literal at column 1"},
        {"1e+", NU_ERR_PARSE, "invalid numeric literal at column 1"},
        {"1.2.3", NU_ERR_PARSE, "invalid numeric literal at column 1"},
        {"'abc", NU_ERR_PARSE, "unterminated string literal at column 1"},
        {"id = 'it''s", NU_ERR_PARSE, "unterminated string literal at column 6"},
        {"\"my col", NU_ERR_PARSE, "unterminated quoted column name at column 1"},
        {"'a\\q'", NU_ERR_PARSE, "invalid escape sequence at column 3"},
        {"\"\"", NU_ERR_PARSE, "empty quoted column name at column 1"},
        {"id @ 2", NU_ERR_PARSE, "unexpected character \"@\" at column 4"},
        {"id & 2", NU_ERR_PARSE, "unexpected character \"&\" at column 4"},
        {"é + 1", NU_ERR_PARSE, "unexpected byte 0xc3 at column 1"},
        {"id IN 1", NU_ERR_PARSE, "expected '(' after IN at column 7"},
        {"id IN ()", NU_ERR_PARSE, "unexpected \")\" at column 8"},
        {"name IS 1", NU_ERR_PARSE, "expected NULL after IS at column 9"},
        {"id NOT 1", NU_ERR_PARSE, "unexpected \"NOT\" at column 4"},
    };
    RUN_ERR(t);
}

Test(expr, evaluation_errors)
{
    static const struct err_case t[] = {
        {"id / 0", NU_ERR_EVAL, "division by zero at column 4"},
        {"id % 0", NU_ERR_EVAL, "division by zero at column 4"},
        {"id / (id - 7)", NU_ERR_EVAL, "division by zero at column 4"},
        {"1 / 0 + id", NU_ERR_EVAL, "division by zero at column 3"},
        {"big + 1", NU_ERR_EVAL, "integer overflow at column 5"},
        {"-big - 2", NU_ERR_EVAL, "integer overflow at column 6"},
        {"big * 2", NU_ERR_EVAL, "integer overflow at column 5"},
        {"-(-9223372036854775808)", NU_ERR_EVAL, "integer overflow at column 1"},
        {"abs(-9223372036854775807 - 1)", NU_ERR_EVAL, "integer overflow at column 1"},
        {"(-big - 1) / -1", NU_ERR_EVAL, "integer overflow at column 12"},
        {"round(big, -1)", NU_ERR_EVAL, "integer overflow at column 1"},
        {"int64('abc')", NU_ERR_EVAL, "invalid input for type int64: \"abc\" at column 1"},
        {"cast('' as int64)", NU_ERR_EVAL, "invalid input for type int64: \"\" at column 1"},
        {"int64('1.5')", NU_ERR_EVAL, "invalid input for type int64: \"1.5\" at column 1"},
        {"int64('99999999999999999999')", NU_ERR_EVAL,
         "value \"99999999999999999999\" is out of range for type int64 at column 1"},
        {"int64(1e30)", NU_ERR_EVAL,
         "double value 1e+30 is out of range for type int64 at "
         "column 1"},
        {"int64(x / 0)", NU_ERR_EVAL,
         "double value inf is out of range for type int64 at column 1"},
        {"double('1.5x')", NU_ERR_EVAL, "invalid input for type double: \"1.5x\" at column 1"},
        {"boolean('maybe')", NU_ERR_EVAL, "invalid input for type boolean: \"maybe\" at column 1"},
        {"string(payload)", NU_ERR_EVAL, "bytes value is not valid UTF-8 at column 1"},
        {"substr(name, 1, -1)", NU_ERR_EVAL, "negative substring length not allowed at column 1"},
    };
    RUN_ERR(t);
}

static nu_err_t compile1(const char *text, nu_expr_t **e, struct nu_errbuf *eb)
{
    struct nu_schema *s = make_schema();
    nu_err_t rc = nu_expr_compile(text, s, e, eb);
    nu_schema_unref(s);
    return rc;
}

static char *repeat(const char *head, const char *unit, size_t n, const char *tail)
{
    size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
    char *p = nu_xmalloc(hl + ul * n + tl + 1);
    memcpy(p, head, hl);
    for (size_t i = 0; i < n; i++)
        memcpy(p + hl + i * ul, unit, ul);
    memcpy(p + hl + ul * n, tail, tl + 1);
    return p;
}

Test(expr, limits)
{
    static const struct {
        const char *head, *unit;
        size_t n;
        const char *tail;
        nu_err_t want;
    } t[] = {
        {"", "(", 200, "1", NU_ERR_PARSE}, /* unbalanced but within depth: ')' expected */
        {"", "(", 300, "1", NU_ERR_TOO_LARGE},
        {"", "(", 60000, "1", NU_ERR_TOO_LARGE},
        {"", "!", 300, "true", NU_ERR_TOO_LARGE},
        {"", "- ", 300, "1", NU_ERR_TOO_LARGE},
        {"1", " + 1", 300, "", NU_ERR_TOO_LARGE},
        {"", "lower(", 300, "name", NU_ERR_TOO_LARGE},
        {"1", " + 1", 200, "", NU_OK},
        {"true", " || false", 1000, "", NU_OK},
        {"id IN (0", ", 1", 1000, ")", NU_OK},
        {"id IN (0", ", 1", 2000, ")", NU_ERR_TOO_LARGE},
        {"", " ", 70000, "1", NU_ERR_TOO_LARGE},
        {"'", "a", 65000, "'", NU_OK},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char *text = repeat(t[i].head, t[i].unit, t[i].n, t[i].tail);
        struct nu_errbuf eb = {0};
        nu_expr_t *e = NULL;
        nu_err_t rc = compile1(text, &e, &eb);
        cr_expect_eq(rc, t[i].want, "case %zu: %s", i, nu_err_msg(&eb));
        nu_expr_destroy(e);
        free(text);
    }
    struct nu_errbuf eb = {0};
    nu_expr_t *e = NULL;
    char *text = repeat("", "(", 300, "1");
    compile1(text, &e, &eb);
    cr_expect_str_eq(nu_err_msg(&eb), "expression nested too deeply (limit 256 levels) at column "
                                      "257");
    free(text);
    nu_errbuf_clear(&eb);
    text = repeat("", " ", 70000, "1");
    compile1(text, &e, &eb);
    cr_expect_str_eq(nu_err_msg(&eb), "expression is too long (limit 65536 bytes)");
    free(text);
}

Test(expr, constant_folding)
{
    static const struct {
        const char *text;
        bool folded;
        const char *want;
    } t[] = {
        {"1 + 2 * 3", true, "i:7"},
        {"concat(upper('a'), string(1 + 2))", true, "s:'A3'"},
        {"substr('hello', 2, 3) = 'ell' AND NOT false", true, "true"},
        {"coalesce(null, 2.5)", true, "d:2.5"},
        {"1 / 0 + id", false, "error"},
        {"id + 1 * 2", false, "i:9"},
        {"false && 1 / 0 = 1", true, "false"},
        {"length(name)", false, "i:5"},
        {"false && id > 1", true, "false"},
        {"n > 1 || true", false, "true"},
        {"id > 1 && false", false, "false"},
    };
    struct nu_schema *s = make_schema();
    nu_arena_t *a = nu_arena_new(0);
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        struct nu_errbuf eb = {0};
        nu_expr_t *e = NULL;
        struct nu_value v;
        char got[128] = "error";
        cr_assert_eq(nu_expr_compile(t[i].text, s, &e, &eb), NU_OK, "%s", nu_err_msg(&eb));
        cr_expect_eq(e->nodes[e->root].op == NU_XOP_CONST, t[i].folded, "%s", t[i].text);
        /* a folded expression needs no row */
        if (nu_expr_eval(e, t[i].folded ? NULL : row, a, &v, &eb) == NU_OK)
            fmt_value(&v, got, sizeof(got));
        cr_expect_str_eq(got, t[i].want, "%s", t[i].text);
        nu_expr_destroy(e);
    }
    /* in "id + 1 * 2" the right operand was folded */
    struct nu_errbuf eb = {0};
    nu_expr_t *e = NULL;
    cr_assert_eq(nu_expr_compile("id + 1 * 2", s, &e, &eb), NU_OK);
    const struct nu_expr_node *r = &e->nodes[e->root];
    cr_expect_eq(e->nodes[e->args[r->args + 1]].op, NU_XOP_CONST);
    nu_expr_destroy(e);
    nu_arena_destroy(a);
    nu_schema_unref(s);
}

Test(expr, static_types_and_nullability)
{
    static const struct {
        const char *text;
        nu_type_t type;
        bool nullable;
    } t[] = {
        {"id * 2", NU_T_INT64, false},
        {"id + x", NU_T_DOUBLE, true},
        {"coalesce(n, 0)", NU_T_INT64, false},
        {"coalesce(n, x)", NU_T_DOUBLE, true},
        {"null", NU_T_NULL, true},
        {"n IS NULL", NU_T_BOOL, false},
        {"is_null(n)", NU_T_BOOL, false},
        {"concat(name, 'x')", NU_T_STRING, true},
        {"id / 2", NU_T_INT64, false},
        {"string(id)", NU_T_STRING, false},
        {"substr(payload, 1)", NU_T_BYTES, true},
        {"length(tags)", NU_T_INT64, true},
        {"id > 1 && flag", NU_T_BOOL, true},
        {"id + null", NU_T_INT64, true},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        struct nu_errbuf eb = {0};
        nu_expr_t *e = NULL;
        cr_assert_eq(compile1(t[i].text, &e, &eb), NU_OK, "%s: %s", t[i].text, nu_err_msg(&eb));
        cr_expect_eq(nu_expr_type(e), t[i].type, "%s: %s", t[i].text,
                     nu_type_name(nu_expr_type(e)));
        cr_expect_eq(nu_expr_nullable(e), t[i].nullable, "%s", t[i].text);
        cr_expect_str_eq(nu_expr_text(e), t[i].text);
        nu_expr_destroy(e);
    }
}

Test(expr, filters_treat_null_as_false)
{
    static const struct {
        const char *text;
        bool want;
    } t[] = {
        {"id % 2 = 1", true}, {"id % 2 = 0", false}, {"n > 1", false},
        {"n IS NULL", true},  {"null", false},       {"flag", true},
    };
    struct nu_schema *s = make_schema();
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        struct nu_errbuf eb = {0};
        nu_expr_t *e = NULL;
        bool got = !t[i].want;
        cr_assert_eq(nu_expr_compile(t[i].text, s, &e, &eb), NU_OK);
        cr_assert_eq(nu_expr_eval_bool(e, row, NULL, &got, &eb), NU_OK);
        cr_expect_eq(got, t[i].want, "%s", t[i].text);
        nu_expr_destroy(e);
    }
    nu_schema_unref(s);
}

Test(expr, bad_row_data_is_an_error_not_a_crash)
{
    struct nu_schema *s = make_schema();
    struct nu_value bad[C_NCOLS];
    struct nu_errbuf eb = {0};
    nu_expr_t *e = NULL;
    struct nu_value v;
    memcpy(bad, row, sizeof(bad));
    bad[C_ID] = nu_value_view(NU_T_STRING, "7", 1);
    cr_assert_eq(nu_expr_compile("x + id", s, &e, &eb), NU_OK);
    cr_expect_eq(nu_expr_eval(e, bad, NULL, &v, &eb), NU_ERR_EVAL);
    cr_expect_str_eq(nu_err_msg(&eb),
                     "column \"id\" holds a string value, expected int64 at column 5");
    nu_expr_destroy(e);
    nu_schema_unref(s);
}

Test(expr, numeric_rows_use_no_memory)
{
    static const char *const texts[] = {
        "id * 2 + 1 > 5 && name != '' && x < 10.0",
        "coalesce(n, id) IN (1, 2, 3) OR substr(name, 2) = 'lice'",
        "length(s) + abs(-id) + round(x) > 0 AND contains(name, 'li')",
    };
    struct nu_schema *s = make_schema();
    nu_arena_t *a = nu_arena_new(0);
    for (size_t t = 0; t < sizeof(texts) / sizeof(texts[0]); t++) {
        struct nu_errbuf eb = {0};
        nu_expr_t *e = NULL;
        bool keep = false;
        size_t kept = 0;
        cr_assert_eq(nu_expr_compile(texts[t], s, &e, &eb), NU_OK, "%s", nu_err_msg(&eb));
        for (int64_t i = 0; i < 10000; i++) {
            row[C_ID] = nu_value_int(i);
            cr_assert_eq(nu_expr_eval_bool(e, row, a, &keep, &eb), NU_OK, "%s", nu_err_msg(&eb));
            kept += keep;
        }
        cr_expect_gt(kept, 0, "%s", texts[t]);
        cr_expect_eq(nu_arena_used(a), 0, "%s used %zu arena bytes", texts[t], nu_arena_used(a));
        nu_expr_destroy(e);
    }
    row[C_ID] = nu_value_int(7);
    nu_arena_destroy(a);
    nu_schema_unref(s);
}

Test(expr, string_results_go_to_the_arena_and_are_bounded)
{
    struct nu_schema *s = make_schema();
    nu_arena_t *a = nu_arena_new(0);
    struct nu_errbuf eb = {0};
    nu_expr_t *e = NULL;
    struct nu_value v;
    cr_assert_eq(nu_expr_compile("concat(lower(name), '-', string(id))", s, &e, &eb), NU_OK);
    for (int64_t i = 0; i < 1000; i++) {
        row[C_ID] = nu_value_int(i);
        cr_assert_eq(nu_expr_eval(e, row, a, &v, &eb), NU_OK);
    }
    cr_expect_eq(v.u.s.len, strlen("alice-999"));
    cr_expect_eq(memcmp(v.u.s.ptr, "alice-999", v.u.s.len), 0);
    /* lower (16) + string (16) + concat (16) bytes per row, rounded to the arena's alignment */
    cr_expect_leq(nu_arena_used(a), 1000 * 48, "%zu", nu_arena_used(a));
    nu_arena_reset(a);
    /* without an arena, an expression that must build a string fails cleanly */
    cr_expect_eq(nu_expr_eval(e, row, NULL, &v, &eb), NU_ERR_INVALID);
    nu_expr_destroy(e);
    row[C_ID] = nu_value_int(7);
    nu_arena_destroy(a);
    nu_schema_unref(s);
}

Test(expr, wide_concat_uses_more_slots)
{
    char *text = repeat("concat(name", ", concat(name, 'x')", 40, ")");
    struct nu_schema *s = make_schema();
    nu_arena_t *a = nu_arena_new(0);
    struct nu_errbuf eb = {0};
    nu_expr_t *e = NULL;
    struct nu_value v;
    cr_assert_eq(nu_expr_compile(text, s, &e, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_gt(e->slots, NU_EXPR_LOCAL_SLOTS);
    cr_assert_eq(nu_expr_eval(e, row, a, &v, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_expect_eq(v.u.s.len, 5 + 40 * 6);
    cr_expect_eq(memcmp(v.u.s.ptr + 5, "AlicexAlicex", 12), 0);
    nu_expr_destroy(e);
    nu_arena_destroy(a);
    nu_schema_unref(s);
    free(text);
}

Test(expr, compile_rejects_missing_arguments)
{
    struct nu_errbuf eb = {0};
    nu_expr_t *e = (nu_expr_t *)1;
    cr_expect_eq(nu_expr_compile(NULL, NULL, &e, &eb), NU_ERR_INVALID);
    cr_expect_null(e);
    nu_expr_destroy(NULL);
}
