/* store_query.c — the store's read side: job documents, lists, lineage, exceptions. */
#include "coordinator/store_int.h"

#include "common/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char nu_store_stages_sql[] =
    "SELECT coalesce(jsonb_agg(jsonb_build_object("
    " 'id', s.stage_id, 'position', s.position, 'operator', s.operator, 'kind', s.kind,"
    " 'state', s.state,"
    " 'parallelism', jsonb_build_object('min', s.parallelism_min, 'max', s.parallelism_max),"
    " 'partitions', s.partitions, 'frozen', s.frozen, 'pinned_instances', s.pinned_instances,"
    " 'planned_splits', s.planned_splits, 'planned_rows', s.planned_rows,"
    " 'splits_done', s.splits_done, 'rows_in', s.rows_in, 'rows_out', s.rows_out,"
    " 'dead_letters', s.dead_letters, 'errors', s.errors,"
    " 'progress', CASE WHEN s.state = 'succeeded' THEN 1.0"
    "   WHEN s.planned_splits > 0 THEN least(1.0, s.splits_done::float8 / s.planned_splits) END,"
    " 'rows_per_s', m.rps, 'lag', m.lag, 'instances_running', m.running,"
    " 'eta_s', CASE WHEN s.state = 'succeeded' THEN 0"
    "   WHEN s.state IN ('failed', 'cancelled') THEN NULL"
    /* A source knows its plan: extrapolate the time its done splits took. Another stage
     * knows its input lag in records (splits): at its rows/s and its rows per split so far. */
    "   WHEN s.kind = 'source' AND s.planned_splits > 0 AND s.splits_done > 0"
    "     AND s.started_at IS NOT NULL THEN"
    "     extract(epoch FROM clock_timestamp() - s.started_at)::float8"
    "     * greatest(s.planned_splits - s.splits_done, 0) / s.splits_done"
    "   WHEN s.kind <> 'source' AND m.running > 0 AND m.rps > 0 AND s.splits_done > 0 THEN"
    "     m.lag * (s.rows_in::float8 / s.splits_done) / m.rps END,"
    " 'started_at', s.started_at, 'finished_at', s.finished_at,"
    " 'upstream', (SELECT coalesce(jsonb_agg(e.from_stage ORDER BY e.from_stage), '[]')"
    "   FROM edges e WHERE e.job_id = s.job_id AND e.to_stage = s.stage_id))"
    " ORDER BY s.position), '[]'::jsonb)"
    " FROM stages s LEFT JOIN LATERAL ("
    "   SELECT count(*) AS running,"
    "   coalesce(sum((i.last_metrics->>'rows_per_s')::float8), 0) AS rps,"
    "   coalesce(sum((i.last_metrics->>'total_lag')::bigint), 0) AS lag"
    "   FROM instances i WHERE i.job_id = s.job_id AND i.stage_id = s.stage_id"
    "   AND i.state = 'running') m ON true"
    " WHERE s.job_id = $1";

#define NU_STORE_JOB_FIELDS                                                       \
    "'id', j.id, 'state', j.state, 'error', j.error, 'created_at', j.created_at," \
    " 'updated_at', j.updated_at, 'started_at', j.started_at, 'finished_at', j.finished_at"

nu_err_t nu_store_job_get(nu_db_t *db, const char *id, json_t **out, struct nu_errbuf *eb)
{
    char what[128];
    char *sql = nu_xasprintf("SELECT jsonb_build_object(" NU_STORE_JOB_FIELDS ", 'spec', j.spec,"
                             " 'stages', (%s)) FROM jobs j WHERE j.id = $1",
                             nu_store_stages_sql);
    const char *const params[] = {id};
    snprintf(what, sizeof(what), "job \"%.64s\" not found", id);
    nu_err_t err = nu_store_json(db, sql, 1, params, what, out, eb);
    free(sql);
    return err;
}

nu_err_t nu_store_stages(nu_db_t *db, const char *job, json_t **out, struct nu_errbuf *eb)
{
    *out = NULL;
    nu_err_t err = nu_store_job_exists(db, job, eb);
    if (!err)
        err = nu_store_json(db, nu_store_stages_sql, 1, (const char *const[]){job}, "no stages",
                            out, eb);
    return err;
}

/*
 * Run a page query whose rows are (json, key text) and collect up to `limit` of them; a row past
 * the limit means there is a next page, whose cursor encodes the last kept key.
 */
static nu_err_t nu_store_page(nu_db_t *db, const char *sql, int n, const char *const *params,
                              int limit, json_t **out, char **next_cursor, struct nu_errbuf *eb)
{
    nu_db_res_t *res = NULL;
    json_t *arr = json_array();
    json_error_t jerr;
    *out = NULL;
    *next_cursor = NULL;
    nu_err_t err = nu_db_query(db, sql, n, params, &res, eb);
    if (err)
        goto out;
    int rows = nu_db_res_rows(res);
    for (int i = 0; i < rows && i < limit; i++) {
        json_t *item = json_loads(nu_db_res_get(res, i, 0), 0, &jerr);
        if (item == NULL) {
            err = nu_err_set(eb, NU_ERR_INTERNAL, "could not parse JSON from the database: %s",
                             jerr.text);
            goto out;
        }
        json_array_append_new(arr, item);
    }
    if (rows > limit)
        *next_cursor = nu_store_cursor_encode(nu_db_res_get(res, limit - 1, 1));
    *out = arr;
    arr = NULL;
out:
    json_decref(arr);
    nu_db_res_free(res);
    return err;
}

nu_err_t nu_store_jobs_list(nu_db_t *db, const char *state, const char *cursor, int limit,
                            json_t **out, char **next_cursor, struct nu_errbuf *eb)
{
    char key[NU_STORE_MAX_CURSOR], lim[16];
    const char *us = NULL, *id = NULL;
    *out = NULL;
    *next_cursor = NULL;
    if (state != NULL && !nu_store_job_state_valid(state))
        return nu_err_set(eb, NU_ERR_INVALID, "invalid job state \"%.32s\"", state);
    if (cursor != NULL && *cursor != '\0') {
        /* key: "<created_at in µs since the epoch>:<id>" */
        if (nu_store_cursor_decode(cursor, key, sizeof(key), eb))
            return NU_ERR_INVALID;
        char *colon = strchr(key, ':');
        size_t ndig = colon != NULL ? (size_t)(colon - key) : 0;
        if (ndig == 0 || ndig > 19 || strspn(key, "0123456789") != ndig || colon[1] == '\0')
            return nu_err_set(eb, NU_ERR_INVALID, "invalid cursor \"%.64s\"", cursor);
        *colon = '\0';
        us = key;
        id = colon + 1;
    }
    limit = nu_store_limit(limit);
    snprintf(lim, sizeof(lim), "%d", limit + 1);
    const char *const params[] = {state, us, id, lim};
    return nu_store_page(
        db,
        "SELECT jsonb_build_object(" NU_STORE_JOB_FIELDS ","
        " 'stages', (SELECT count(*) FROM stages s WHERE s.job_id = j.id),"
        " 'stages_succeeded', (SELECT count(*) FROM stages s WHERE s.job_id = j.id"
        "   AND s.state = 'succeeded')),"
        " (extract(epoch FROM j.created_at) * 1000000)::bigint || ':' || j.id"
        " FROM jobs j WHERE ($1::text IS NULL OR j.state = $1::text)"
        " AND ($2::bigint IS NULL OR (j.created_at, j.id) <"
        "   (timestamptz 'epoch' + $2::bigint * interval '1 microsecond', $3::text))"
        " ORDER BY j.created_at DESC, j.id DESC LIMIT $4::int",
        4, params, limit, out, next_cursor, eb);
}

nu_err_t nu_store_instances(nu_db_t *db, const char *job, json_t **out, struct nu_errbuf *eb)
{
    *out = NULL;
    nu_err_t err = nu_store_job_exists(db, job, eb);
    if (!err)
        err = nu_store_json(
            db,
            "SELECT coalesce(jsonb_agg(x.o ORDER BY x.position, x.instance), '[]'::jsonb) FROM ("
            " SELECT s.position, i.instance, jsonb_build_object('stage', i.stage_id,"
            " 'instance', i.instance, 'state', i.state, 'pid', i.pid, 'host', i.host,"
            " 'reason', i.reason, 'started_at', i.started_at, 'stopped_at', i.stopped_at,"
            " 'last_metrics', i.last_metrics, 'recent_errors', i.recent_errors) AS o"
            " FROM instances i JOIN stages s USING (job_id, stage_id) WHERE i.job_id = $1"
            " ORDER BY s.position, i.instance LIMIT 1000) x",
            1, (const char *const[]){job}, "no instances", out, eb);
    return err;
}

nu_err_t nu_store_splits(nu_db_t *db, const char *job, const char *stage, const char *cursor,
                         int limit, json_t **out, char **next_cursor, struct nu_errbuf *eb)
{
    char after[NU_STORE_MAX_CURSOR], lim[16];
    *out = NULL;
    *next_cursor = NULL;
    if (cursor != NULL && *cursor != '\0' &&
        nu_store_cursor_decode(cursor, after, sizeof(after), eb))
        return NU_ERR_INVALID;
    nu_err_t err = nu_store_job_exists(db, job, eb);
    if (err)
        return err;
    limit = nu_store_limit(limit);
    snprintf(lim, sizeof(lim), "%d", limit + 1);
    const char *const params[] = {job, stage, cursor != NULL && *cursor ? after : NULL, lim};
    return nu_store_page(
        db,
        "SELECT jsonb_build_object('split', split_id, 'stage', stage_id,"
        " 'parents', to_jsonb(parents), 'rows_in', rows_in, 'rows_out', rows_out,"
        " 'bytes_in', bytes_in, 'bytes_out', bytes_out, 'ms', ms, 'instance', instance,"
        " 'topic', topic, 'partition', \"partition\", 'offset', \"offset\", 'ts', ts), split_id"
        " FROM splits WHERE job_id = $1 AND ($2::text IS NULL OR stage_id = $2::text)"
        " AND ($3::text IS NULL OR split_id > $3::text)"
        " ORDER BY split_id LIMIT $4::int",
        4, params, limit, out, next_cursor, eb);
}

nu_err_t nu_store_lineage(nu_db_t *db, const char *job, const char *split, nu_lineage_dir_t dir,
                          int depth, json_t **out, struct nu_errbuf *eb)
{
    char d[16], cap[16], what[160];
    *out = NULL;
    if (depth < 1 || depth > NU_STORE_MAX_DEPTH)
        return nu_err_set(eb, NU_ERR_INVALID, "lineage depth must be between 1 and %d, got %d",
                          NU_STORE_MAX_DEPTH, depth);
    nu_err_t err = nu_store_job_exists(db, job, eb);
    if (err)
        return err;
    snprintf(d, sizeof(d), "%d", depth);
    snprintf(cap, sizeof(cap), "%d", NU_STORE_LINEAGE_MAX + 1);
    snprintf(what, sizeof(what), "split \"%.64s\" of job \"%.64s\" not found", split, job);
    const char *const params[] = {job, split, d, cap, dir == NU_LINEAGE_UP ? "up" : "down"};
    /* walk: (split, depth) pairs; `next` follows parents (up) or children (down) */
    err = nu_store_json(
        db,
        "WITH RECURSIVE walk(split_id, depth) AS ("
        "  SELECT $2::text, 0"
        "  UNION"
        "  SELECT CASE WHEN $5 = 'up' THEN e.parent ELSE e.child END, w.depth + 1"
        "  FROM walk w JOIN split_edges e ON e.job_id = $1 AND w.depth < $3::int AND"
        "   (CASE WHEN $5 = 'up' THEN e.child ELSE e.parent END) = w.split_id),"
        " capped AS (SELECT * FROM walk LIMIT $4::int),"
        " nodes AS (SELECT split_id, min(depth) AS depth FROM capped GROUP BY split_id),"
        " kept AS (SELECT * FROM nodes ORDER BY depth, split_id LIMIT $4::int - 1)"
        " SELECT jsonb_build_object('root', $2::text, 'direction', $5::text,"
        " 'depth', $3::int, 'truncated', (SELECT count(*) FROM capped) >= $4::int,"
        " 'nodes', (SELECT coalesce(jsonb_agg(jsonb_build_object('split', k.split_id,"
        "   'depth', k.depth, 'stage', s.stage_id, 'rows_in', s.rows_in, 'rows_out', s.rows_out,"
        "   'instance', s.instance, 'ts', s.ts) ORDER BY k.depth, k.split_id), '[]')"
        "   FROM kept k LEFT JOIN splits s ON s.job_id = $1 AND s.split_id = k.split_id),"
        " 'edges', (SELECT coalesce(jsonb_agg(jsonb_build_object('parent', e.parent,"
        "   'child', e.child) ORDER BY e.parent, e.child), '[]')"
        "   FROM split_edges e JOIN kept a ON a.split_id = e.parent"
        "   JOIN kept b ON b.split_id = e.child WHERE e.job_id = $1))"
        " WHERE EXISTS (SELECT 1 FROM splits WHERE job_id = $1 AND split_id = $2)"
        "  OR EXISTS (SELECT 1 FROM split_edges WHERE job_id = $1 AND"
        "   (parent = $2 OR child = $2))",
        5, params, what, out, eb);
    return err;
}

nu_err_t nu_store_exceptions(nu_db_t *db, const char *job, json_t **out, struct nu_errbuf *eb)
{
    *out = NULL;
    nu_err_t err = nu_store_job_exists(db, job, eb);
    if (!err)
        err = nu_store_json(
            db,
            "SELECT coalesce(jsonb_agg(x.o ORDER BY x.count DESC, x.stage_id, x.fingerprint),"
            " '[]'::jsonb) FROM (SELECT count, stage_id, fingerprint,"
            " jsonb_build_object('stage', stage_id, 'fingerprint', fingerprint, 'code', code,"
            " 'count', count, 'first_seen', first_seen, 'last_seen', last_seen,"
            " 'sample_message', sample_message, 'sample_splits', to_jsonb(sample_splits),"
            " 'hint', hint) AS o FROM exceptions WHERE job_id = $1"
            " ORDER BY count DESC, stage_id, fingerprint LIMIT 1000) x",
            1, (const char *const[]){job}, "no exceptions", out, eb);
    return err;
}
