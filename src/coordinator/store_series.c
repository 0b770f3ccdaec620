/* store_series.c — the store's time series: a stage's metric samples bucketed over time. */
#include "coordinator/store_int.h"

#include <inttypes.h>
#include <stdio.h>

/*
 * $1 job, $2 stage, $3 since (Unix s), $4 until (Unix s), $5 step (s).
 * Samples are read from one step before `since`, so that the first bucket's output rate has a
 * previous sample to difference against. Per instance and bucket: the mean of the reported input
 * rate, of the output rate (rows_out differences over time; a smaller rows_out than before is a
 * restarted process, counted from zero) and of the lag; the bucket sums them over instances.
 */
static const char nu_store_series_sql[] =
    "WITH s AS (SELECT instance, ts, rows_per_s, total_lag, rows_out,"
    "   rows_out - lag(rows_out) OVER w AS d_out,"
    "   extract(epoch FROM ts - lag(ts) OVER w)::float8 AS d_t"
    "  FROM stage_metrics WHERE job_id = $1 AND stage_id = $2"
    "  AND ts >= to_timestamp($3::bigint - $5::int) AND ts < to_timestamp($4::bigint)"
    "  WINDOW w AS (PARTITION BY instance ORDER BY ts)),"
    " b AS (SELECT floor((extract(epoch FROM ts) - $3::bigint) / $5::int)::bigint AS k, instance,"
    "   avg(rows_per_s) AS rin,"
    "   avg(CASE WHEN d_t > 0 THEN (CASE WHEN d_out >= 0 THEN d_out ELSE rows_out END) / d_t"
    "   END) AS rout, avg(total_lag) AS lag"
    "  FROM s WHERE ts >= to_timestamp($3::bigint) GROUP BY 1, 2),"
    " p AS (SELECT k, sum(rin) AS rin, coalesce(sum(rout), 0) AS rout,"
    "   round(sum(lag))::bigint AS lag, count(*) AS n FROM b GROUP BY k ORDER BY k LIMIT $6::int)"
    " SELECT (SELECT coalesce(jsonb_agg(jsonb_build_object("
    "   'ts', to_timestamp($3::bigint + p.k * $5::int), 'rows_per_s_in', p.rin,"
    "   'rows_per_s_out', p.rout, 'lag', p.lag, 'instances', p.n) ORDER BY p.k), '[]'::jsonb)"
    "  FROM p)"
    " WHERE EXISTS (SELECT 1 FROM stages WHERE job_id = $1 AND stage_id = $2)";

nu_err_t nu_store_stage_series(nu_db_t *db, const char *job, const char *stage, int64_t since_s,
                               int64_t until_s, int step_s, json_t **out, struct nu_errbuf *eb)
{
    char since[24], until[24], step[16], cap[16], what[192];
    *out = NULL;
    if (step_s < 1 || since_s < 0 || until_s <= since_s)
        return nu_err_set(eb, NU_ERR_INVALID,
                          "invalid series window: since %" PRId64 ", until %" PRId64 ", step %d",
                          since_s, until_s, step_s);
    if ((until_s - since_s + step_s - 1) / step_s > NU_STORE_MAX_POINTS)
        return nu_err_set(eb, NU_ERR_INVALID,
                          "a series of %" PRId64 " s in steps of %d s has more than %d points",
                          until_s - since_s, step_s, NU_STORE_MAX_POINTS);
    nu_err_t err = nu_store_job_exists(db, job, eb);
    if (err)
        return err;
    snprintf(since, sizeof(since), "%" PRId64, since_s);
    snprintf(until, sizeof(until), "%" PRId64, until_s);
    snprintf(step, sizeof(step), "%d", step_s);
    snprintf(cap, sizeof(cap), "%d", NU_STORE_MAX_POINTS);
    snprintf(what, sizeof(what), "job \"%.64s\" has no stage \"%.64s\"", job, stage);
    const char *const params[] = {job, stage, since, until, step, cap};
    return nu_store_json(db, nu_store_series_sql, 6, params, what, out, eb);
}
