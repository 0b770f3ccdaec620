/* Tests of src/common/split.c: header build/parse round trips, malformed headers, split ids. */
#include "common/split.h"

#include <criterion/criterion.h>
#include <string.h>

static const struct nu_header *find(const struct nu_headers *h, const char *name)
{
    for (size_t i = 0; i < h->n; i++)
        if (strcmp(h->h[i].name, name) == 0)
            return &h->h[i];
    return NULL;
}

Test(split, data_headers_round_trip)
{
    char *parents[] = {"src-0123456789abcdef", "src-fedcba9876543210"};
    struct nu_split_meta m = {.kind = NU_SPLIT_DATA,
                              .id = "dbl-00112233aabbccdd",
                              .stage = "dbl",
                              .parents = parents,
                              .nparents = 2,
                              .rows = 1000,
                              .attempt = 2,
                              .format = "json",
                              .schema = "[[\"id\",\"int64\"]]"};
    struct nu_headers h = {0};
    struct nu_errbuf eb = {0};
    struct nu_split_meta p;
    cr_assert_eq(nu_split_headers_build(&m, &h, &eb), NU_OK, "%s", nu_err_msg(&eb));
    const struct nu_header *par = find(&h, "nurion-parents");
    cr_assert_not_null(par);
    cr_assert_eq(par->len, strlen("src-0123456789abcdef,src-fedcba9876543210"));
    cr_assert(memcmp(par->value, "src-0123456789abcdef,src-fedcba9876543210", par->len) == 0);
    cr_assert_null(find(&h, "nurion-lane"));
    cr_assert_eq(nu_split_meta_parse(h.h, h.n, &p, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(p.kind, NU_SPLIT_DATA);
    cr_assert_str_eq(p.id, m.id);
    cr_assert_str_eq(p.stage, "dbl");
    cr_assert_eq(p.nparents, 2);
    cr_assert_str_eq(p.parents[1], parents[1]);
    cr_assert_eq(p.rows, 1000);
    cr_assert_eq(p.attempt, 2);
    cr_assert_str_eq(p.format, "json");
    cr_assert_str_eq(p.schema, m.schema);
    cr_assert_null(p.lane);
    nu_split_meta_clear(&p);
    nu_headers_free(&h);
}

Test(split, eos_headers_round_trip_without_parents)
{
    struct nu_split_meta m = {.kind = NU_SPLIT_EOS, .stage = "src", .lane = "nurion.j.src.plan:3"};
    struct nu_headers h = {0};
    struct nu_errbuf eb = {0};
    struct nu_split_meta p;
    cr_assert_eq(nu_split_headers_build(&m, &h, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(nu_split_meta_parse(h.h, h.n, &p, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(p.kind, NU_SPLIT_EOS);
    cr_assert_str_eq(p.lane, "nurion.j.src.plan:3");
    cr_assert_eq(p.nparents, 0);
    cr_assert_null(p.id);
    nu_split_meta_clear(&p);
    /* eos without a lane cannot be built */
    m.lane = NULL;
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_split_headers_build(&m, &h, &eb), NU_ERR_INVALID);
    cr_assert(strstr(nu_err_msg(&eb), "lane"));
    nu_headers_free(&h);
}

#define H(n, v)             \
    {                       \
        n, v, sizeof(v) - 1 \
    }

Test(split, malformed_headers_name_the_header)
{
    static const struct {
        struct nu_header h[8];
        size_t n;
        const char *needle;
    } cases[] = {
        {{H("nurion-stage", "s"), H("nurion-split", "s-1"), H("nurion-rows", "1")},
         3,
         "missing header \"nurion-kind\""},
        {{H("nurion-kind", "dat"), H("nurion-stage", "s")}, 2, "malformed header \"nurion-kind\""},
        {{H("nurion-kind", "data"), H("nurion-split", "s-1"), H("nurion-rows", "1")},
         3,
         "missing header \"nurion-stage\""},
        {{H("nurion-kind", "data"), H("nurion-stage", "s"), H("nurion-rows", "1")},
         3,
         "missing header \"nurion-split\""},
        {{H("nurion-kind", "data"), H("nurion-stage", "s"), H("nurion-split", "s 1"),
          H("nurion-rows", "1")},
         4,
         "malformed header \"nurion-split\""},
        {{H("nurion-kind", "data"), H("nurion-stage", "s"), H("nurion-split", "s-1"),
          H("nurion-rows", "-1")},
         4,
         "malformed header \"nurion-rows\""},
        {{H("nurion-kind", "data"), H("nurion-stage", "s"), H("nurion-split", "s-1"),
          H("nurion-rows", "99999999999999999999")},
         4,
         "malformed header \"nurion-rows\""},
        {{H("nurion-kind", "data"), H("nurion-stage", "s"), H("nurion-split", "s-1"),
          H("nurion-rows", "1"), H("nurion-parents", "a,,b")},
         5,
         "malformed header \"nurion-parents\""},
        {{H("nurion-kind", "data"), H("nurion-stage", "s"), H("nurion-split", "s-1"),
          H("nurion-rows", "1"), H("nurion-parents", "a,")},
         5,
         "malformed header \"nurion-parents\""},
        {{H("nurion-kind", "data"), H("nurion-stage", "s"), H("nurion-split", "s-1"),
          H("nurion-rows", "1"), H("nurion-attempt", "x")},
         5,
         "malformed header \"nurion-attempt\""},
        {{H("nurion-kind", "eos"), H("nurion-stage", "s")}, 2, "missing header \"nurion-lane\""},
        {{H("nurion-kind", "data"), H("nurion-stage", "s"), H("nurion-split", "s-1"),
          H("nurion-rows", "1"), H("nurion-format", "xml")},
         5,
         "malformed header \"nurion-format\""},
        {{H("nurion-kind", "data"), H("nurion-kind", "data"), H("nurion-stage", "s")},
         3,
         "duplicate header \"nurion-kind\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct nu_errbuf eb = {0};
        struct nu_split_meta p;
        cr_assert_eq(nu_split_meta_parse(cases[i].h, cases[i].n, &p, &eb), NU_ERR_CORRUPT,
                     "case %zu", i);
        cr_assert(strstr(nu_err_msg(&eb), cases[i].needle), "case %zu: %s", i, nu_err_msg(&eb));
        cr_assert_null(p.stage, "case %zu: cleared on error", i);
    }
}

Test(split, foreign_headers_are_ignored)
{
    struct nu_header h[] = {H("traceparent", "00-ab"), H("nurion-kind", "data"),
                            H("nurion-stage", "s"),    H("nurion-split", "s-1"),
                            H("nurion-rows", "7"),     H("nurion-future", "x")};
    struct nu_errbuf eb = {0};
    struct nu_split_meta p;
    cr_assert_eq(nu_split_meta_parse(h, 6, &p, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(p.rows, 7);
    nu_split_meta_clear(&p);
}

Test(split, id_is_deterministic_and_documented_format)
{
    const char *par[] = {"src-aaaa", "src-bbbb"};
    char a[NU_SPLIT_ID_MAX], b[NU_SPLIT_ID_MAX];
    struct nu_errbuf eb = {0};
    cr_assert_eq(nu_split_id("job1", "dbl", par, 2, 5, a, &eb), NU_OK);
    cr_assert_eq(nu_split_id("job1", "dbl", par, 2, 5, b, &eb), NU_OK);
    cr_assert_str_eq(a, b);
    cr_assert_eq(strlen(a), 4 + 16);
    cr_assert(strncmp(a, "dbl-", 4) == 0);
    for (size_t i = 4; i < strlen(a); i++)
        cr_assert(strchr("0123456789abcdef", a[i]));
}

Test(split, id_sensitivity_and_parent_order)
{
    const char *p1[] = {"src-aaaa", "src-bbbb"}, *p2[] = {"src-bbbb", "src-aaaa"};
    const char *p3[] = {"src-aaaa", "src-cccc"}, *p4[] = {"src-aaaasrc-bbbb"};
    char base[NU_SPLIT_ID_MAX], x[NU_SPLIT_ID_MAX];
    struct nu_errbuf eb = {0};
    cr_assert_eq(nu_split_id("j", "s", p1, 2, 0, base, &eb), NU_OK);
    cr_assert_eq(nu_split_id("j", "s", p2, 2, 0, x, &eb), NU_OK);
    cr_assert_str_eq(base, x, "parent order must not matter");
    struct {
        const char *job, *stage;
        const char *const *par;
        size_t n;
        uint64_t pos;
    } diff[] = {
        {"j", "s", p1, 2, 1}, {"j", "s", p3, 2, 0}, {"j", "s", p1, 1, 0},
        {"k", "s", p1, 2, 0}, {"j", "t", p1, 2, 0}, {"j", "s", p4, 1, 0},
    };
    for (size_t i = 0; i < sizeof(diff) / sizeof(diff[0]); i++) {
        cr_assert_eq(
            nu_split_id(diff[i].job, diff[i].stage, diff[i].par, diff[i].n, diff[i].pos, x, &eb),
            NU_OK);
        cr_assert(strcmp(base + 2, x + 2) != 0, "case %zu gave the same hash", i);
    }
    /* "ab"+"c" and "a"+"bc" job/stage splits must differ (unambiguous separators) */
    char y[NU_SPLIT_ID_MAX];
    cr_assert_eq(nu_split_id("ab", "c", NULL, 0, 0, x, &eb), NU_OK);
    cr_assert_eq(nu_split_id("a", "bc", NULL, 0, 0, y, &eb), NU_OK);
    cr_assert_str_neq(x + strlen(x) - 16, y + strlen(y) - 16);
}

Test(split, id_rejects_bad_ids)
{
    char x[NU_SPLIT_ID_MAX];
    struct nu_errbuf eb = {0};
    cr_assert_eq(nu_split_id("bad job", "s", NULL, 0, 0, x, &eb), NU_ERR_INVALID);
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_split_id("j", "", NULL, 0, 0, x, &eb), NU_ERR_INVALID);
    cr_assert(strstr(nu_err_msg(&eb), "stage"));
}
