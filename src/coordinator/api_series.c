/*
 * api_series.c — the metric series of a stage over time, for the stage page's charts.
 */
#include "coordinator/api_int.h"

#include "coordinator/store.h"

#include <time.h>

#define NU_COORD_SERIES_MAX_TS   253402300799LL /* 9999-12-31T23:59:59Z */
#define NU_COORD_SERIES_WINDOW   900            /* default window (s) before `until` */
#define NU_COORD_SERIES_POINTS   120            /* buckets the default step aims at */
#define NU_COORD_SERIES_MAX_STEP 86400          /* longest step (s) */

/*
 * GET /api/v1/jobs/{id}/stages/{sid}/metrics?since=&until=&step=
 * since/until: Unix seconds (a negative `since` counts back from `until`); step: seconds.
 */
void nu_coord_h_stage_series(const struct nu_http_req *req, struct nu_http_resp *resp, void *app)
{
    struct nu_errbuf eb = {0};
    json_t *points = NULL;
    long long since = 0, until = 0, step = 0;
    const char *id = nu_http_param(req, "id"), *sid = nu_http_param(req, "sid");
    nu_err_t err = nu_http_query_int(req, "until", 1, NU_COORD_SERIES_MAX_TS, (long long)time(NULL),
                                     &until, &eb);
    if (!err)
        err = nu_http_query_int(req, "since", -NU_COORD_SERIES_MAX_TS, NU_COORD_SERIES_MAX_TS,
                                -NU_COORD_SERIES_WINDOW, &since, &eb);
    if (err)
        goto out;
    if (since < 0)
        since = until + since > 0 ? until + since : 0;
    if (since >= until) {
        err = nu_err_set(&eb, NU_ERR_INVALID,
                         "query parameter \"since\" (%lld) must be before \"until\" (%lld)", since,
                         until);
        goto out;
    }
    long long def = (until - since + NU_COORD_SERIES_POINTS - 1) / NU_COORD_SERIES_POINTS;
    err = nu_http_query_int(req, "step", 1, NU_COORD_SERIES_MAX_STEP,
                            def < NU_COORD_SERIES_MAX_STEP ? def : NU_COORD_SERIES_MAX_STEP, &step,
                            &eb);
    if (err)
        goto out;
    if ((until - since + step - 1) / step > NU_STORE_MAX_POINTS) {
        err = nu_err_set(&eb, NU_ERR_INVALID,
                         "%lld s in steps of %lld s make more than %d points: use a larger "
                         "\"step\" or a later \"since\"",
                         until - since, step, NU_STORE_MAX_POINTS);
        goto out;
    }
    nu_db_t *db = nu_coord_db(req, resp, app);
    if (db == NULL)
        goto out;
    err = nu_store_stage_series(db, id, sid, since, until, (int)step, &points, &eb);
    if (err)
        goto out;
    nu_http_resp_json(resp, 200,
                      json_pack("{s:s, s:s, s:I, s:I, s:I, s:o}", "job", id, "stage", sid, "since",
                                (json_int_t)since, "until", (json_int_t)until, "step",
                                (json_int_t)step, "points", points));
    points = NULL;
out:
    if (err)
        nu_coord_fail(resp, err, &eb);
    json_decref(points);
}
