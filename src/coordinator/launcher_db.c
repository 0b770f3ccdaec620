/* launcher_db.c — what the launcher reads from and records in the store (instances, states). */
#include "coordinator/launcher_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The stage process reports its own start and stop as events (ingest_write.c): this row is
 * written first, with the launcher's clock, and the instance's events, later, win. An ended row
 * of the same pid stays ended (state is monotonic per process). */
static const char nu_sql_spawned[] =
    "INSERT INTO instances AS i (job_id, stage_id, instance, pid, host, state, started_at)"
    " VALUES ($1, $2, $3::int, $4::int, $5, 'running', clock_timestamp())"
    " ON CONFLICT (job_id, stage_id, instance) DO UPDATE SET pid = EXCLUDED.pid,"
    " host = EXCLUDED.host, state = 'running', reason = NULL, started_at = EXCLUDED.started_at,"
    " stopped_at = NULL WHERE i.state = 'running' OR i.pid IS DISTINCT FROM EXCLUDED.pid";

/* Only the row of this very process (same pid) is ended; a clean exit keeps the reason the
 * instance gave in its own stop event. */
static const char nu_sql_exited[] =
    "UPDATE instances SET state = CASE WHEN $5::bool THEN 'crashed' ELSE 'stopped' END,"
    " reason = CASE WHEN $5::bool OR reason IS NULL THEN $6 ELSE reason END,"
    " stopped_at = coalesce(stopped_at, clock_timestamp())"
    " WHERE job_id = $1 AND stage_id = $2 AND instance = $3::int AND pid = $4::int";

nu_err_t nu_launcher_db_spawned(nu_db_t *db, const char *job, const char *stage, int inst,
                                pid_t pid, const char *host, struct nu_errbuf *eb)
{
    char k[16], p[16];
    snprintf(k, sizeof(k), "%d", inst);
    snprintf(p, sizeof(p), "%d", (int)pid);
    const char *const params[] = {job, stage, k, p, host};
    return nu_db_query(db, nu_sql_spawned, 5, params, NULL, eb);
}

nu_err_t nu_launcher_db_exited(nu_db_t *db, const char *job, const char *stage, int inst, pid_t pid,
                               bool crashed, const char *reason, struct nu_errbuf *eb)
{
    char k[16], p[16];
    snprintf(k, sizeof(k), "%d", inst);
    snprintf(p, sizeof(p), "%d", (int)pid);
    const char *const params[] = {job, stage, k, p, crashed ? "true" : "false", reason};
    return nu_db_query(db, nu_sql_exited, 6, params, NULL, eb);
}

nu_err_t nu_launcher_db_job_state(nu_db_t *db, const char *job, char *buf, size_t len,
                                  struct nu_errbuf *eb)
{
    nu_db_res_t *res = NULL;
    const char *const params[] = {job};
    nu_err_t err = nu_db_query(db, "SELECT state FROM jobs WHERE id = $1", 1, params, &res, eb);
    if (!err)
        snprintf(buf, len, "%s", nu_db_res_rows(res) ? nu_db_res_get(res, 0, 0) : "");
    nu_db_res_free(res);
    return err;
}

nu_err_t nu_launcher_db_progress(nu_db_t *db, const char *job, const char *stage, int64_t *splits,
                                 int64_t *dead, struct nu_errbuf *eb)
{
    nu_db_res_t *res = NULL;
    const char *const params[] = {job, stage};
    nu_err_t err = nu_db_query(db,
                               "SELECT splits_done, dead_letters FROM stages"
                               " WHERE job_id = $1 AND stage_id = $2",
                               2, params, &res, eb);
    *splits = *dead = 0;
    if (!err && nu_db_res_rows(res)) {
        *splits = nu_db_res_int(res, 0, 0);
        *dead = nu_db_res_int(res, 0, 1);
    }
    nu_db_res_free(res);
    return err;
}

nu_err_t nu_launcher_db_controls(nu_db_t *db, const struct nu_job *job, struct nu_lstage *st,
                                 struct nu_errbuf *eb)
{
    nu_db_res_t *res = NULL;
    const char *const params[] = {job->id};
    nu_err_t err = nu_db_query(db,
                               "SELECT stage_id, frozen, coalesce(pinned_instances, -1), state"
                               " FROM stages WHERE job_id = $1",
                               1, params, &res, eb);
    for (int r = 0; !err && r < nu_db_res_rows(res); r++) {
        size_t s;
        if (!nu_job_stage_find(job, nu_db_res_get(res, r, 0), &s))
            continue;
        st[s].frozen = strcmp(nu_db_res_get(res, r, 1), "t") == 0;
        st[s].pinned = (int)nu_db_res_int(res, r, 2);
        if (strcmp(nu_db_res_get(res, r, 3), "succeeded") == 0)
            st[s].finished = true;
    }
    nu_db_res_free(res);
    return err;
}

nu_err_t nu_launcher_db_instance_pid(nu_db_t *db, const char *job, const char *stage, int inst,
                                     pid_t *pid, char *host, size_t hostlen, struct nu_errbuf *eb)
{
    nu_db_res_t *res = NULL;
    char k[16];
    snprintf(k, sizeof(k), "%d", inst);
    const char *const params[] = {job, stage, k};
    nu_err_t err = nu_db_query(db,
                               "SELECT coalesce(pid, 0), coalesce(host, '') FROM instances"
                               " WHERE job_id = $1 AND stage_id = $2 AND instance = $3::int"
                               " AND state = 'running'",
                               3, params, &res, eb);
    *pid = 0;
    host[0] = '\0';
    if (!err && nu_db_res_rows(res)) {
        *pid = (pid_t)nu_db_res_int(res, 0, 0);
        snprintf(host, hostlen, "%s", nu_db_res_get(res, 0, 1));
    }
    nu_db_res_free(res);
    return err;
}

nu_err_t nu_launcher_db_running(nu_db_t *db, const char *like, json_t **out, struct nu_errbuf *eb)
{
    nu_db_res_t *res = NULL;
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", NU_LAUNCHER_MAX_JOBS);
    const char *const params[] = {lim, like ? like : "%"};
    nu_err_t err = nu_db_query(db,
                               "SELECT id, spec::text FROM jobs WHERE state = 'running'"
                               " AND id LIKE $2 ORDER BY created_at, id LIMIT $1::int",
                               2, params, &res, eb);
    *out = NULL;
    if (!err) {
        *out = json_array();
        for (int r = 0; r < nu_db_res_rows(res); r++)
            json_array_append_new(*out, json_pack("{s:s, s:s}", "id", nu_db_res_get(res, r, 0),
                                                  "spec", nu_db_res_get(res, r, 1)));
    }
    nu_db_res_free(res);
    return err;
}
