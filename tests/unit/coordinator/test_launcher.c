/* test_launcher.c — the launcher's pure parts: member indices, missing instances, scale plans,
 * lag and skew. */
#include "coordinator/launcher_int.h"

#include <criterion/criterion.h>

Test(launcher, member_index_parses_our_instance_ids_only)
{
    static const struct {
        const char *gid;
        int want;
    } cases[] = {
        {"nurion.j.map.0", 0},     {"nurion.j.map.7", 7},    {"nurion.j.map.1024", 1024},
        {"nurion.j.map.1025", -1}, {"nurion.j.map.", -1},    {"nurion.j.map.01", -1},
        {"nurion.j.map.x", -1},    {"nurion.j.map2.1", -1},  {"nurion.j.ma.1", -1},
        {"nurion.j.map", -1},      {"nurion.j.map.1.2", -1}, {NULL, -1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        cr_expect_eq(nu_launcher_member_index("nurion.j.map", cases[i].gid), cases[i].want, "%s",
                     cases[i].gid ? cases[i].gid : "(null)");
}

Test(launcher, missing_never_selects_a_live_index)
{
    bool live[6] = {true, false, true, false, false, true};
    int out[8];
    int n = nu_launcher_missing(live, 6, 4, out);
    cr_assert_eq(n, 2);
    cr_expect_eq(out[0], 1);
    cr_expect_eq(out[1], 3);
    /* the target beyond what was described: the rest counts as missing */
    n = nu_launcher_missing(live, 2, 4, out);
    cr_assert_eq(n, 3);
    cr_expect_eq(out[0], 1);
    cr_expect_eq(out[1], 2);
    cr_expect_eq(out[2], 3);
    /* everything live: nothing to start; target 0: nothing */
    bool all[3] = {true, true, true};
    cr_expect_eq(nu_launcher_missing(all, 3, 3, out), 0);
    cr_expect_eq(nu_launcher_missing(all, 3, 0, out), 0);
}

Test(launcher, scale_plan_starts_the_next_and_stops_the_highest)
{
    static const struct {
        int cur, target, start_lo, start_hi, stop_lo, stop_hi;
    } cases[] = {
        {1, 3, 1, 3, 0, 0}, {4, 2, 0, 0, 2, 4}, {2, 2, 0, 0, 0, 0},
        {0, 1, 0, 1, 0, 0}, {3, 0, 0, 0, 0, 3},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct nu_scale_plan p = nu_launcher_scale_plan(cases[i].cur, cases[i].target);
        cr_expect_eq(p.start_lo, cases[i].start_lo, "case %zu", i);
        cr_expect_eq(p.start_hi, cases[i].start_hi, "case %zu", i);
        cr_expect_eq(p.stop_lo, cases[i].stop_lo, "case %zu", i);
        cr_expect_eq(p.stop_hi, cases[i].stop_hi, "case %zu", i);
    }
}

Test(launcher, partition_lag)
{
    static const struct {
        int64_t committed, low, end, want;
    } cases[] = {
        {10, 0, 25, 15}, /* committed */
        {-1, 5, 25, 20}, /* nothing committed: from the first offset kept */
        {30, 0, 25, 0},  /* a committed offset past the end never goes negative */
        {-1, 0, 0, 0},   {25, 0, 25, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct nu_lag_part p = {"t", 0, cases[i].committed, cases[i].low, cases[i].end};
        cr_expect_eq(nu_launcher_part_lag(&p), cases[i].want, "case %zu", i);
    }
}

Test(launcher, lag_document_totals_and_skew)
{
    struct nu_lag_part parts[] = {
        {"a", 0, 0, 0, 10}, {"a", 1, 0, 0, 10}, {"a", 2, 0, 0, 10}, {"a", 3, -1, 0, 90}};
    int64_t total = 0;
    json_t *j = nu_launcher_lag_json(parts, 4, &total);
    cr_assert_eq(total, 120);
    cr_expect_eq(json_integer_value(json_object_get(j, "total_lag")), 120);
    cr_expect_eq(json_integer_value(json_object_get(j, "max_lag")), 90);
    cr_expect_float_eq(json_real_value(json_object_get(j, "avg_lag")), 30.0, 1e-9);
    cr_expect_float_eq(json_real_value(json_object_get(j, "skew")), 3.0, 1e-9);
    cr_expect(json_is_true(json_object_get(j, "skewed")));
    json_t *p3 = json_array_get(json_object_get(j, "partitions"), 3);
    cr_expect(json_is_null(json_object_get(p3, "committed")));
    cr_expect_eq(json_integer_value(json_object_get(p3, "lag")), 90);
    json_decref(j);

    /* even lag: skew 1, not skewed; no lag at all: skew null */
    struct nu_lag_part even[] = {{"a", 0, 5, 0, 10}, {"a", 1, 5, 0, 10}};
    j = nu_launcher_lag_json(even, 2, NULL);
    cr_expect_float_eq(json_real_value(json_object_get(j, "skew")), 1.0, 1e-9);
    cr_expect(json_is_false(json_object_get(j, "skewed")));
    json_decref(j);
    struct nu_lag_part none[] = {{"a", 0, 10, 0, 10}};
    j = nu_launcher_lag_json(none, 1, &total);
    cr_expect_eq(total, 0);
    cr_expect(json_is_null(json_object_get(j, "skew")));
    cr_expect(json_is_false(json_object_get(j, "skewed")));
    json_decref(j);
}

Test(launcher, new_refuses_missing_settings)
{
    struct nu_launcher_conf c = {0};
    struct nu_errbuf eb = {0};
    nu_launcher_t *l = (nu_launcher_t *)1;
    cr_expect_eq(nu_launcher_new(&c, &l, &eb), NU_ERR_CONFIG);
    cr_expect_null(l);
    c.brokers = "127.0.0.1:1";
    nu_errbuf_clear(&eb);
    cr_expect_eq(nu_launcher_new(&c, &l, &eb), NU_ERR_CONFIG);
    cr_expect(strstr(nu_err_msg(&eb), "database"));
    c.database_url = "postgresql://nobody@127.0.0.1:1/x";
    nu_autoscale_conf_default(&c.autoscale);
    c.autoscale.up_lag = 1;
    c.autoscale.down_lag = 10;
    nu_errbuf_clear(&eb);
    cr_expect_eq(nu_launcher_new(&c, &l, &eb), NU_ERR_CONFIG);
    cr_expect(strstr(nu_err_msg(&eb), "autoscale"));
}
