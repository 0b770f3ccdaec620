/* launcher_plan.c — the launcher's pure parts: instance selection, scale plans, lag maths. */
#include "coordinator/launcher_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t nu_launcher_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int nu_launcher_member_index(const char *group, const char *gid)
{
    size_t n = strlen(group);
    long k = 0;
    if (!gid || strncmp(gid, group, n) != 0 || gid[n] != '.')
        return -1;
    const char *p = gid + n + 1;
    if (*p == '\0' || (*p == '0' && p[1] != '\0'))
        return -1;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        k = k * 10 + (*p - '0');
        if (k > NU_JOB_MAX_PARALLELISM)
            return -1;
    }
    return (int)k;
}

int nu_launcher_missing(const bool *live, int nlive, int target, int *out)
{
    int n = 0;
    for (int k = 0; k < target; k++)
        if (k >= nlive || !live[k])
            out[n++] = k;
    return n;
}

struct nu_scale_plan nu_launcher_scale_plan(int current, int target)
{
    struct nu_scale_plan p = {0, 0, 0, 0};
    if (target > current) {
        p.start_lo = current;
        p.start_hi = target;
    } else if (target < current) {
        p.stop_lo = target < 0 ? 0 : target;
        p.stop_hi = current;
    }
    return p;
}

int64_t nu_launcher_part_lag(const struct nu_lag_part *p)
{
    int64_t from = p->committed >= 0 ? p->committed : p->low;
    if (from < 0)
        from = 0;
    return p->end > from ? p->end - from : 0;
}

json_t *nu_launcher_lag_json(const struct nu_lag_part *parts, size_t n, int64_t *total)
{
    json_t *arr = json_array();
    int64_t sum = 0, max = 0;
    for (size_t i = 0; i < n; i++) {
        const struct nu_lag_part *p = &parts[i];
        int64_t lag = nu_launcher_part_lag(p);
        sum += lag;
        if (lag > max)
            max = lag;
        json_array_append_new(
            arr,
            json_pack("{s:s, s:i, s:o, s:I, s:I}", "topic", p->topic, "partition", p->partition,
                      "committed", p->committed >= 0 ? json_integer(p->committed) : json_null(),
                      "end", (json_int_t)p->end, "lag", (json_int_t)lag));
    }
    double avg = n ? (double)sum / (double)n : 0.0;
    json_t *skew = avg > 0 ? json_real((double)max / avg) : json_null();
    bool skewed = avg > 0 && (double)max / avg > NU_LAUNCHER_SKEW_LIMIT;
    if (total)
        *total = sum;
    return json_pack("{s:o, s:I, s:I, s:f, s:o, s:b}", "partitions", arr, "total_lag",
                     (json_int_t)sum, "max_lag", (json_int_t)max, "avg_lag", avg, "skew", skew,
                     "skewed", skewed);
}
