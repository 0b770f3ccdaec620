/*
 * bench_expr.c — rows/s of compiled expressions over 1,000-row batches, against the same
 * computation written by hand in C over the same rows (the in-run baseline).
 *
 * Usage: nurion-bench-expr [seconds per case, default 2]. Prints a Markdown table.
 */
#include "common/arena.h"
#include "common/value.h"
#include "operators/expr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH_ROWS 1000

enum { COL_ID, COL_NAME, COL_PAYLOAD, NCOLS };

static volatile uint64_t sink; /* keeps results observable */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t digest(const struct nu_value *v)
{
    switch (v->type) {
    case NU_T_INT64:
        return (uint64_t)v->u.i;
    case NU_T_BOOL:
        return v->u.b;
    case NU_T_STRING:
        return v->u.s.len + (v->u.s.len ? (unsigned char)v->u.s.ptr[0] : 0);
    default:
        return 0;
    }
}

/* --- hand-written baselines over the same rows --- */

static void c_arith(const struct nu_value *r, nu_arena_t *a, struct nu_value *out)
{
    int64_t x;
    (void)a;
    if (r[COL_ID].type == NU_T_NULL) {
        *out = nu_value_null();
        return;
    }
    if (__builtin_mul_overflow(r[COL_ID].u.i, 2, &x) || __builtin_add_overflow(x, 1, &x))
        abort();
    *out = nu_value_int(x);
}

static void c_filter(const struct nu_value *r, nu_arena_t *a, struct nu_value *out)
{
    (void)a;
    bool even = r[COL_ID].type != NU_T_NULL && r[COL_ID].u.i % 2 == 0;
    bool nonempty = r[COL_PAYLOAD].type != NU_T_NULL && r[COL_PAYLOAD].u.s.len != 0;
    *out = nu_value_bool(even && nonempty);
}

static void c_concat(const struct nu_value *r, nu_arena_t *a, struct nu_value *out)
{
    char num[24];
    const struct nu_value *nm = &r[COL_NAME];
    if (nm->type == NU_T_NULL || r[COL_ID].type == NU_T_NULL) {
        *out = nu_value_null();
        return;
    }
    int nl = snprintf(num, sizeof(num), "%lld", (long long)r[COL_ID].u.i);
    char *lower = nu_arena_alloc(a, nm->u.s.len);
    for (size_t i = 0; i < nm->u.s.len; i++) {
        char c = nm->u.s.ptr[i];
        lower[i] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
    }
    char *s = nu_arena_alloc(a, (size_t)nl);
    memcpy(s, num, (size_t)nl);
    size_t len = nm->u.s.len + 1 + (size_t)nl;
    char *p = nu_arena_alloc(a, len);
    memcpy(p, lower, nm->u.s.len);
    p[nm->u.s.len] = '-';
    memcpy(p + nm->u.s.len + 1, s, (size_t)nl);
    *out = nu_value_view(NU_T_STRING, p, len);
}

struct bench_case {
    const char *text;
    void (*baseline)(const struct nu_value *, nu_arena_t *, struct nu_value *);
};

/* Rows/s of one evaluator over the batch for about `secs` seconds. */
static double run(const struct nu_batch *b, const nu_expr_t *e,
                  void (*fn)(const struct nu_value *, nu_arena_t *, struct nu_value *), double secs,
                  nu_arena_t *a)
{
    struct nu_errbuf eb = {0};
    uint64_t rows = 0, acc = 0;
    double t0 = now_s(), t;
    do {
        for (size_t i = 0; i < b->nrows; i++) {
            struct nu_value v;
            if (e) {
                if (nu_expr_eval(e, nu_batch_row(b, i), a, &v, &eb) != NU_OK) {
                    fprintf(stderr, "evaluation failed: %s\n", nu_err_msg(&eb));
                    exit(1);
                }
            } else {
                fn(nu_batch_row(b, i), a, &v);
            }
            acc += digest(&v);
        }
        nu_arena_reset(a);
        rows += b->nrows;
        t = now_s();
    } while (t - t0 < secs);
    sink += acc;
    return (double)rows / (t - t0);
}

int main(int argc, char **argv)
{
    static const struct bench_case cases[] = {
        {"id * 2 + 1", c_arith},
        {"id % 2 == 0 && payload != ''", c_filter},
        {"concat(lower(name), '-', string(id))", c_concat},
    };
    static const char *const names[] = {"Alice", "BOB", "Carol Smith", "dave", "Eve"};
    double secs = argc > 1 ? atof(argv[1]) : 2.0;
    struct nu_schema *s = nu_schema_new(NCOLS);
    struct nu_batch *b;
    nu_arena_t *a = nu_arena_new(0);
    char payload[91];

    if (secs <= 0)
        secs = 2.0;
    nu_schema_set(s, COL_ID, "id", NU_T_INT64, false, NULL);
    nu_schema_set(s, COL_NAME, "name", NU_T_STRING, true, NULL);
    nu_schema_set(s, COL_PAYLOAD, "payload", NU_T_STRING, true, NULL);
    b = nu_batch_new(s, BATCH_ROWS);
    memset(payload, 'p', sizeof(payload) - 1);
    payload[90] = '\0';
    for (int i = 0; i < BATCH_ROWS; i++) {
        struct nu_value *r = nu_batch_add_row(b);
        r[COL_ID] = nu_value_int(i);
        r[COL_NAME] = nu_batch_str(b, NU_T_STRING, names[i % 5], strlen(names[i % 5]));
        r[COL_PAYLOAD] = nu_batch_str(b, NU_T_STRING, payload, i % 7 == 0 ? 0 : 90);
    }

    printf("| expression | expr rows/s | hand-written C rows/s | C / expr |\n");
    printf("|---|---:|---:|---:|\n");
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct nu_errbuf eb = {0};
        nu_expr_t *e = NULL;
        if (nu_expr_compile(cases[k].text, s, &e, &eb) != NU_OK) {
            fprintf(stderr, "could not compile \"%s\": %s\n", cases[k].text, nu_err_msg(&eb));
            return 1;
        }
        double xr = run(b, e, NULL, secs, a);
        double cr = run(b, NULL, cases[k].baseline, secs, a);
        printf("| `%s` | %.2f M | %.2f M | %.1f× |\n", cases[k].text, xr / 1e6, cr / 1e6, cr / xr);
        nu_expr_destroy(e);
    }
    nu_batch_destroy(b);
    nu_schema_unref(s);
    nu_arena_destroy(a);
    return 0;
}
