/* Tests of src/coordinator/autoscale.c: the autoscaler's decision rules. */
#include "coordinator/autoscale.h"

#include <criterion/criterion.h>

#define NOW 1000000

struct nu_autoscale_case {
    const char *name;
    struct nu_autoscale_stage st;
    int want;
};

/* A running transform stage: min 1, max 8, 8 partitions, never scaled. */
#define STAGE(cur, lag_)                                                                    \
    {                                                                                       \
        .current = (cur), .min = 1, .max = 8, .partitions = 8, .lag = (lag_), .pinned = -1, \
        .last_scale_ms = -1                                                                 \
    }

Test(autoscale, defaults)
{
    struct nu_autoscale_conf c;
    nu_autoscale_conf_default(&c);
    cr_assert(c.enabled);
    cr_assert_eq(c.interval_ms, 15000);
    cr_assert_eq(c.up_lag, 1000);
    cr_assert_eq(c.down_lag, 100);
    cr_assert_eq(c.max_step, 2);
    cr_assert_eq(c.cooldown_ms, 60000);
}

Test(autoscale, rules)
{
    struct nu_autoscale_case cases[] = {
        {"lag 1500 with 2 scales up by the step", STAGE(2, 1500), 4},
        {"lag 50 with 4 scales down by one", STAGE(4, 50), 3},
        {"lag 500 is in the band", STAGE(3, 500), 3},
        {"band lower edge 100 is kept", STAGE(3, 100), 3},
        {"band upper edge 1000 is kept", STAGE(3, 1000), 3},
        {"lag 1001 scales up", STAGE(3, 1001), 5},
        {"7 of max 8 with lag 2000 stops at max", STAGE(7, 2000), 8},
        {"at max stays", STAGE(8, 5000), 8},
        {"at min with lag 10 stays", STAGE(1, 10), 1},
    };
    struct nu_autoscale_conf c;
    nu_autoscale_conf_default(&c);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        cr_expect_eq(nu_autoscale_decide(&c, &cases[i].st, NOW), cases[i].want,
                     "%s: got %d, want %d", cases[i].name,
                     nu_autoscale_decide(&c, &cases[i].st, NOW), cases[i].want);
}

Test(autoscale, cooldown)
{
    struct nu_autoscale_conf c;
    nu_autoscale_conf_default(&c);
    struct nu_autoscale_stage st = STAGE(2, 5000);
    st.last_scale_ms = NOW - 59999;
    cr_assert_eq(nu_autoscale_decide(&c, &st, NOW), 2, "within the cooldown nothing changes");
    st.lag = 0;
    cr_assert_eq(nu_autoscale_decide(&c, &st, NOW), 2, "no scale down in the cooldown either");
    st.last_scale_ms = NOW - 60000;
    cr_assert_eq(nu_autoscale_decide(&c, &st, NOW), 1, "after the cooldown it scales down");
    st.lag = 5000;
    cr_assert_eq(nu_autoscale_decide(&c, &st, NOW), 4, "after the cooldown it scales up");
}

Test(autoscale, frozen_source_finished_disabled_keep_count)
{
    struct nu_autoscale_conf c;
    nu_autoscale_conf_default(&c);
    struct nu_autoscale_stage st = STAGE(2, 5000);
    st.frozen = true;
    cr_assert_eq(nu_autoscale_decide(&c, &st, NOW), 2);
    st.frozen = false;
    st.is_source = true;
    cr_assert_eq(nu_autoscale_decide(&c, &st, NOW), 2);
    st.is_source = false;
    st.finished = true;
    cr_assert_eq(nu_autoscale_decide(&c, &st, NOW), 2);
    st.finished = false;
    c.enabled = false;
    cr_assert_eq(nu_autoscale_decide(&c, &st, NOW), 2);
    c.enabled = true;
    cr_assert_eq(nu_autoscale_decide(&c, &st, NOW), 4, "the same stage scales when allowed");
}

Test(autoscale, pinned)
{
    struct nu_autoscale_conf c;
    nu_autoscale_conf_default(&c);
    struct nu_autoscale_stage st = STAGE(2, 5000);
    st.pinned = 3;
    cr_assert_eq(nu_autoscale_decide(&c, &st, NOW), 3, "the pin wins over lag");
    st.last_scale_ms = NOW - 1;
    st.pinned = 6;
    cr_assert_eq(nu_autoscale_decide(&c, &st, NOW), 6, "a pin is applied in the cooldown");
    st.pinned = 20;
    cr_assert_eq(nu_autoscale_decide(&c, &st, NOW), 8, "a pin is clamped to max");
    st.pinned = 0;
    cr_assert_eq(nu_autoscale_decide(&c, &st, NOW), 1, "a pin is clamped to min");
    st.frozen = true;
    st.pinned = 5;
    cr_assert_eq(nu_autoscale_decide(&c, &st, NOW), 2, "a frozen stage ignores its pin");
}

Test(autoscale, capped_at_partitions)
{
    struct nu_autoscale_conf c;
    nu_autoscale_conf_default(&c);
    struct nu_autoscale_stage st = STAGE(3, 5000);
    st.max = 16;
    st.partitions = 4;
    cr_assert_eq(nu_autoscale_decide(&c, &st, NOW), 4, "never more than the partitions");
    st.current = 4;
    cr_assert_eq(nu_autoscale_decide(&c, &st, NOW), 4);
    st.pinned = 10;
    cr_assert_eq(nu_autoscale_decide(&c, &st, NOW), 4, "not even when pinned");
}

Test(autoscale, out_of_bounds_brought_back)
{
    struct nu_autoscale_conf c;
    nu_autoscale_conf_default(&c);
    struct nu_autoscale_stage st = STAGE(0, 500);
    st.min = 2;
    cr_assert_eq(nu_autoscale_decide(&c, &st, NOW), 2, "below min rises to min");
    st.current = 12;
    cr_assert_eq(nu_autoscale_decide(&c, &st, NOW), 8, "above max falls to max");
}
