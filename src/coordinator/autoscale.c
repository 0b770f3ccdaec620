/* autoscale.c — the autoscaler's pure decision function. */
#include "coordinator/autoscale.h"

void nu_autoscale_conf_default(struct nu_autoscale_conf *conf)
{
    conf->enabled = true;
    conf->interval_ms = NU_AUTOSCALE_DEFAULT_INTERVAL_MS;
    conf->up_lag = NU_AUTOSCALE_DEFAULT_UP_LAG;
    conf->down_lag = NU_AUTOSCALE_DEFAULT_DOWN_LAG;
    conf->max_step = NU_AUTOSCALE_DEFAULT_MAX_STEP;
    conf->cooldown_ms = NU_AUTOSCALE_DEFAULT_COOLDOWN_MS;
}

static int nu_autoscale_clamp(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

int nu_autoscale_decide(const struct nu_autoscale_conf *conf, const struct nu_autoscale_stage *st,
                        int64_t now_ms)
{
    int lo = st->min < 1 ? 1 : st->min;
    int hi = st->max < lo ? lo : st->max;
    int target = st->current;
    int step = conf->max_step < 1 ? 1 : conf->max_step;

    if (st->is_source || st->finished || st->frozen || !conf->enabled) {
        target = st->current;
    } else if (st->pinned >= 0) {
        target = nu_autoscale_clamp(st->pinned, lo, hi);
    } else if (st->current < lo || st->current > hi) {
        target = nu_autoscale_clamp(st->current, lo, hi);
    } else if (st->last_scale_ms >= 0 && now_ms - st->last_scale_ms < conf->cooldown_ms) {
        target = st->current;
    } else if (st->lag > conf->up_lag) {
        target = st->current + step > hi ? hi : st->current + step;
    } else if (st->lag < conf->down_lag && st->current > lo) {
        target = st->current - 1;
    }
    if (st->partitions > 0 && target > st->partitions)
        target = st->partitions;
    return target;
}
