/*
 * autoscale.h — the autoscaler's decision: how many instances a stage should run (layer:
 * coordinator). Pure: no I/O, no clock, no state; the launcher gathers the inputs and applies
 * the answer. Thread-safe.
 *
 * Rules, first match wins (the defaults are those of the earlier system):
 *   0. sources, finished stages and frozen stages keep their count;
 *   1. a pinned count (set by an operator) is applied, clamped to [min, max] — at once, since it
 *      is an explicit instruction, not subject to the cooldown;
 *   2. within `cooldown_ms` of the stage's last scaling nothing changes;
 *   3. lag > up_lag (strictly): current + max_step, at most max;
 *   4. lag < down_lag (strictly) and current > min: current - 1, at least min;
 *   5. otherwise (down_lag <= lag <= up_lag, the hysteresis band) no change.
 * Whatever the rule, the target never exceeds the stage's input partitions (an instance beyond
 * them would sit idle) and a count outside [min, max] is brought back inside first.
 */
#ifndef NU_COORDINATOR_AUTOSCALE_H
#define NU_COORDINATOR_AUTOSCALE_H

#include <stdbool.h>
#include <stdint.h>

#define NU_AUTOSCALE_DEFAULT_INTERVAL_MS 15000
#define NU_AUTOSCALE_DEFAULT_UP_LAG      1000
#define NU_AUTOSCALE_DEFAULT_DOWN_LAG    100
#define NU_AUTOSCALE_DEFAULT_MAX_STEP    2
#define NU_AUTOSCALE_DEFAULT_COOLDOWN_MS 60000

struct nu_autoscale_conf {
    bool enabled;
    int64_t interval_ms; /* how often the caller decides */
    int64_t up_lag;      /* scale up above this total input lag */
    int64_t down_lag;    /* scale down below this */
    int max_step;        /* instances added at most per decision */
    int64_t cooldown_ms; /* quiet time after a scaling of the stage */
};

struct nu_autoscale_stage {
    int current;           /* instances running now */
    int min, max;          /* parallelism bounds of the stage */
    int partitions;        /* input partitions of the stage (<= 0: unknown, no cap) */
    int64_t lag;           /* total input lag, records */
    bool frozen;           /* autoscaling paused for the stage */
    int pinned;            /* instance count fixed by an operator; < 0: none */
    bool is_source;        /* sources are sized by their plan, not by lag */
    bool finished;         /* the stage completed */
    int64_t last_scale_ms; /* when it was last scaled; < 0: never */
};

/* The defaults above, enabled. */
void nu_autoscale_conf_default(struct nu_autoscale_conf *conf);

/*
 * The target instance count of `st` at `now_ms` (same clock as last_scale_ms); equal to
 * st->current when nothing should change. A disabled conf keeps every count (bounds and the
 * partition cap still apply).
 */
int nu_autoscale_decide(const struct nu_autoscale_conf *conf, const struct nu_autoscale_stage *st,
                        int64_t now_ms);

#endif
