/* ingest_write.c — validate a batch of events and write it in one transaction. */
#include "coordinator/ingest_int.h"

#include "common/log.h"
#include "common/mem.h"
#include "coordinator/store.h"
#include "stage/events.h"
#include "stage/lanes.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NU_INGEST_MAX_ID   512  /* job, stage, split, topic names */
#define NU_INGEST_MAX_TEXT 4096 /* messages and hints are cut to this */

typedef enum nu_ev_type {
    NU_EV_SPLIT = 0,
    NU_EV_PDONE,
    NU_EV_ERROR,
    NU_EV_DLQ,
    NU_EV_START,
    NU_EV_STOP,
    NU_EV_METRICS,
    NU_EV__COUNT
} nu_ev_type_t;

static const char *const nu_ev_names[NU_EV__COUNT] = {
    "split_done",       "partition_done",   "error",  "dlq",
    "instance_started", "instance_stopped", "metrics"};

/* One validated event: a clean JSON object with exactly the fields the SQL reads. */
struct nu_ev {
    nu_ev_type_t type;
    json_t *j; /* owned */
    const char *job, *stage;
};

/* ---- validation --------------------------------------------------------------------------- */

static bool nu_ev_str(json_t *o, const char *k, bool req, size_t max, json_t *out, char *why,
                      size_t wl)
{
    json_t *v = json_object_get(o, k);
    if (v == NULL || json_is_null(v)) {
        if (req)
            snprintf(why, wl, "missing field \"%s\"", k);
        else
            json_object_set_new(out, k, json_null());
        return !req;
    }
    if (!json_is_string(v) || (max > 0 && json_string_length(v) > max) ||
        (req && json_string_length(v) == 0)) {
        snprintf(why, wl, "field \"%s\" must be a string of 1 to %zu characters", k, max);
        return false;
    }
    if (max == 0 && json_string_length(v) > NU_INGEST_MAX_TEXT) /* free text: cut */
        json_object_set_new(out, k, json_stringn(json_string_value(v), NU_INGEST_MAX_TEXT));
    else
        json_object_set(out, k, v);
    return true;
}

static bool nu_ev_int(json_t *o, const char *k, bool req, json_int_t min, json_int_t max,
                      json_t *out, char *why, size_t wl)
{
    json_t *v = json_object_get(o, k);
    if (v == NULL || json_is_null(v)) {
        if (req)
            snprintf(why, wl, "missing field \"%s\"", k);
        else
            json_object_set_new(out, k, json_integer(0));
        return !req;
    }
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        snprintf(why, wl, "field \"%s\" must be an integer of at least %" JSON_INTEGER_FORMAT, k,
                 min);
        return false;
    }
    json_object_set(out, k, v);
    return true;
}

static bool nu_ev_num(json_t *o, const char *k, json_t *out, char *why, size_t wl)
{
    json_t *v = json_object_get(o, k);
    if (v != NULL && !json_is_null(v) && !json_is_number(v)) {
        snprintf(why, wl, "field \"%s\" must be a number", k);
        return false;
    }
    json_object_set_new(out, k, json_real(v != NULL ? json_number_value(v) : 0.0));
    return true;
}

/* The parents array: strings only. */
static bool nu_ev_parents(json_t *o, json_t *out, char *why, size_t wl)
{
    json_t *v = json_object_get(o, "parents"), *arr = json_array(), *p;
    size_t i;
    if (v != NULL && !json_is_null(v) && !json_is_array(v)) {
        snprintf(why, wl, "field \"parents\" must be an array");
        json_decref(arr);
        return false;
    }
    json_array_foreach(v, i, p)
    {
        if (!json_is_string(p) || json_string_length(p) == 0 ||
            json_string_length(p) > NU_INGEST_MAX_ID || i >= 4096) {
            snprintf(why, wl, "field \"parents\" must hold split ids");
            json_decref(arr);
            return false;
        }
        json_array_append(arr, p);
    }
    json_object_set_new(out, "parents", arr);
    return true;
}

/* The lag object {"topic:p": n}: kept as is, its sum as total_lag. */
static bool nu_ev_lag(json_t *o, json_t *out, char *why, size_t wl)
{
    json_t *v = json_object_get(o, "lag"), *n;
    const char *k;
    json_int_t total = 0;
    if (v == NULL || json_is_null(v)) {
        json_object_set_new(out, "lag", json_object());
        json_object_set_new(out, "total_lag", json_integer(0));
        return true;
    }
    if (!json_is_object(v)) {
        snprintf(why, wl, "field \"lag\" must be an object");
        return false;
    }
    json_object_foreach(v, k, n)
    {
        if (!json_is_integer(n) || json_integer_value(n) < 0) {
            snprintf(why, wl, "field \"lag\" must map partitions to counts");
            return false;
        }
        total += json_integer_value(n);
    }
    json_object_set(out, "lag", v);
    json_object_set_new(out, "total_lag", json_integer(total));
    return true;
}

/* Parse and check one event value; on failure `why` says what is wrong. */
static bool nu_ev_parse(const char *data, size_t len, struct nu_ev *ev, char *why, size_t wl)
{
    json_error_t jerr;
    json_t *o = NULL, *c = json_object();
    bool ok = false;
    const json_int_t big = INT64_MAX, i32 = INT32_MAX;
    memset(ev, 0, sizeof(*ev));
    if (len > NU_INGEST_MAX_EVENT_BYTES) {
        snprintf(why, wl, "event of %zu bytes is over the limit", len);
        goto out;
    }
    o = json_loadb(data, len, 0, &jerr);
    if (o == NULL || !json_is_object(o)) {
        snprintf(why, wl, "not a JSON object: %s", o == NULL ? jerr.text : "other value");
        goto out;
    }
    const char *type = json_string_value(json_object_get(o, "type"));
    if (type == NULL) {
        snprintf(why, wl, "missing field \"type\"");
        goto out;
    }
    ev->type = NU_EV__COUNT;
    for (int i = 0; i < NU_EV__COUNT; i++)
        if (strcmp(type, nu_ev_names[i]) == 0)
            ev->type = (nu_ev_type_t)i;
    if (ev->type == NU_EV__COUNT) {
        snprintf(why, wl, "unknown event type \"%.64s\"", type);
        goto out;
    }
    if (!nu_ev_str(o, "job", true, NU_JOB_MAX_ID_LEN, c, why, wl) ||
        !nu_ev_str(o, "stage", true, NU_JOB_MAX_ID_LEN, c, why, wl) ||
        !nu_ev_int(o, "instance", ev->type == NU_EV_START || ev->type == NU_EV_STOP, 0, 1 << 20, c,
                   why, wl) ||
        !nu_ev_int(o, "ts", false, 0, big, c, why, wl))
        goto out;
    if (json_integer_value(json_object_get(c, "ts")) == 0)
        json_object_set_new(c, "ts", json_integer(nu_event_now_ms()));
    switch (ev->type) {
    case NU_EV_SPLIT:
        ok = nu_ev_str(o, "split", true, NU_INGEST_MAX_ID, c, why, wl) &&
             nu_ev_parents(o, c, why, wl) && nu_ev_int(o, "rows_in", true, 0, big, c, why, wl) &&
             nu_ev_int(o, "rows_out", true, 0, big, c, why, wl) &&
             nu_ev_int(o, "bytes_in", false, 0, big, c, why, wl) &&
             nu_ev_int(o, "bytes_out", false, 0, big, c, why, wl) &&
             nu_ev_num(o, "ms", c, why, wl) &&
             nu_ev_str(o, "topic", false, NU_INGEST_MAX_ID, c, why, wl) &&
             nu_ev_int(o, "partition", false, 0, i32, c, why, wl) &&
             nu_ev_int(o, "offset", false, -1, big, c, why, wl);
        break;
    case NU_EV_PDONE:
        ok = nu_ev_str(o, "topic", true, NU_INGEST_MAX_ID, c, why, wl) &&
             nu_ev_int(o, "partition", true, 0, i32, c, why, wl);
        break;
    case NU_EV_ERROR:
        ok = nu_ev_str(o, "message", true, 0, c, why, wl) &&
             nu_ev_str(o, "split", false, NU_INGEST_MAX_ID, c, why, wl) &&
             nu_ev_str(o, "code", false, NU_INGEST_MAX_ID, c, why, wl) &&
             nu_ev_str(o, "hint", false, 0, c, why, wl);
        if (ok) {
            char fp[NU_STORE_FINGERPRINT_LEN + 1];
            nu_store_fingerprint(json_string_value(json_object_get(c, "message")), fp);
            json_object_set_new(c, "fp", json_string(fp));
        }
        break;
    case NU_EV_DLQ:
        ok = nu_ev_str(o, "split", false, NU_INGEST_MAX_ID, c, why, wl) &&
             nu_ev_str(o, "topic", true, NU_INGEST_MAX_ID, c, why, wl) &&
             nu_ev_int(o, "partition", true, 0, i32, c, why, wl) &&
             nu_ev_int(o, "offset", true, 0, big, c, why, wl) &&
             nu_ev_int(o, "attempts", false, 0, i32, c, why, wl) &&
             nu_ev_str(o, "message", false, 0, c, why, wl);
        break;
    case NU_EV_START:
    case NU_EV_STOP:
        ok = nu_ev_int(o, "pid", false, 0, i32, c, why, wl) &&
             nu_ev_str(o, "host", false, 0, c, why, wl) &&
             nu_ev_str(o, "reason", false, 0, c, why, wl);
        break;
    case NU_EV_METRICS:
        ok = nu_ev_int(o, "rows_in", false, 0, big, c, why, wl) &&
             nu_ev_int(o, "rows_out", false, 0, big, c, why, wl) &&
             nu_ev_num(o, "rows_per_s", c, why, wl) &&
             nu_ev_int(o, "rss_bytes", false, 0, big, c, why, wl) &&
             nu_ev_int(o, "cpu_ms", false, 0, big, c, why, wl) && nu_ev_lag(o, c, why, wl);
        break;
    default:
        break;
    }
out:
    json_decref(o);
    if (ok) {
        ev->j = c;
        ev->job = json_string_value(json_object_get(c, "job"));
        ev->stage = json_string_value(json_object_get(c, "stage"));
    } else {
        json_decref(c);
    }
    return ok;
}

/* ---- SQL ---------------------------------------------------------------------------------- */

static const char nu_sql_splits[] =
    "WITH ev AS (SELECT DISTINCT ON (job, split) * FROM jsonb_to_recordset($1::jsonb) AS x("
    "  job text, stage text, instance int, ts bigint, split text, parents text[], rows_in bigint,"
    "  rows_out bigint, bytes_in bigint, bytes_out bigint, ms float8, topic text,"
    "  \"partition\" int, \"offset\" bigint) ORDER BY job, split, ts),"
    " ins AS (INSERT INTO splits (job_id, split_id, stage_id, parents, rows_in, rows_out,"
    "  bytes_in, bytes_out, ms, instance, topic, \"partition\", \"offset\", ts)"
    "  SELECT job, split, stage, coalesce(parents, '{}'), rows_in, rows_out, bytes_in, bytes_out,"
    "  ms, instance, topic, \"partition\", \"offset\", to_timestamp(ts / 1000.0) FROM ev"
    "  ON CONFLICT (job_id, split_id) DO NOTHING"
    "  RETURNING job_id, stage_id, split_id, parents, rows_in, rows_out, ts),"
    " edges AS (INSERT INTO split_edges (job_id, parent, child)"
    "  SELECT DISTINCT i.job_id, p.parent, i.split_id FROM ins i"
    "  CROSS JOIN LATERAL unnest(i.parents) AS p(parent) ON CONFLICT DO NOTHING)"
    " UPDATE stages s SET splits_done = s.splits_done + a.n, rows_in = s.rows_in + a.ri,"
    "  rows_out = s.rows_out + a.ro,"
    "  state = CASE WHEN s.state = 'pending' THEN 'running' ELSE s.state END,"
    "  started_at = coalesce(s.started_at, a.t0)"
    " FROM (SELECT job_id, stage_id, count(*) AS n, sum(rows_in) AS ri, sum(rows_out) AS ro,"
    "  min(ts) AS t0 FROM ins GROUP BY job_id, stage_id) a"
    " WHERE s.job_id = a.job_id AND s.stage_id = a.stage_id";

static const char nu_sql_pdone[] =
    "INSERT INTO partitions_done (job_id, stage_id, topic, \"partition\", ts)"
    " SELECT DISTINCT ON (job, stage, topic, \"partition\") job, stage, topic, \"partition\","
    " to_timestamp(ts / 1000.0) FROM jsonb_to_recordset($1::jsonb) AS x(job text, stage text,"
    " topic text, \"partition\" int, ts bigint) ORDER BY job, stage, topic, \"partition\", ts"
    " ON CONFLICT DO NOTHING RETURNING job_id, stage_id";

static const char nu_sql_errors[] =
    "WITH ev AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(job text, stage text,"
    "  ts bigint, split text, code text, message text, hint text, fp text)),"
    " g AS (SELECT job, stage, fp, count(*) AS n, to_timestamp(min(ts) / 1000.0) AS t0,"
    "  to_timestamp(max(ts) / 1000.0) AS t1, (array_agg(code ORDER BY ts DESC))[1] AS code,"
    "  (array_agg(message ORDER BY ts))[1] AS message,"
    "  (array_agg(hint ORDER BY ts DESC) FILTER (WHERE hint IS NOT NULL))[1] AS hint,"
    "  (array_agg(DISTINCT split) FILTER (WHERE split IS NOT NULL))[1:10] AS splits"
    "  FROM ev GROUP BY job, stage, fp),"
    " up AS (INSERT INTO exceptions AS e (job_id, stage_id, fingerprint, code, count,"
    "  first_seen, last_seen, sample_message, sample_splits, hint)"
    "  SELECT job, stage, fp, code, n, t0, t1, message, coalesce(splits, '{}'), hint FROM g"
    "  ON CONFLICT (job_id, stage_id, fingerprint) DO UPDATE SET count = e.count + EXCLUDED.count,"
    "  first_seen = least(e.first_seen, EXCLUDED.first_seen),"
    "  last_seen = greatest(e.last_seen, EXCLUDED.last_seen),"
    "  code = coalesce(EXCLUDED.code, e.code), hint = coalesce(EXCLUDED.hint, e.hint),"
    "  sample_splits = (e.sample_splits || ARRAY(SELECT unnest(EXCLUDED.sample_splits)"
    "   EXCEPT SELECT unnest(e.sample_splits)))[1:10])"
    " UPDATE stages s SET errors = s.errors + a.n FROM (SELECT job, stage, sum(n) AS n FROM g"
    "  GROUP BY job, stage) a WHERE s.job_id = a.job AND s.stage_id = a.stage";

/* The 10 newest errors of each instance, newest first (run after the instance events of the
 * batch, so that a new instance's row exists). */
static const char nu_sql_inst_errors[] =
    "UPDATE instances i SET recent_errors = (SELECT coalesce(jsonb_agg(y.x ORDER BY y.t DESC),"
    "  '[]'::jsonb) FROM (SELECT x, (x->>'ts')::bigint AS t"
    "  FROM jsonb_array_elements(a.errs || i.recent_errors) AS x"
    "  ORDER BY (x->>'ts')::bigint DESC LIMIT 10) y)"
    " FROM (SELECT job, stage, instance, jsonb_agg(jsonb_build_object('ts', ts, 'split', split,"
    "  'code', code, 'message', message, 'hint', hint)) AS errs"
    "  FROM jsonb_to_recordset($1::jsonb) AS x(job text, stage text, instance int, ts bigint,"
    "  split text, code text, message text, hint text)"
    "  WHERE instance IS NOT NULL GROUP BY job, stage, instance) a"
    " WHERE i.job_id = a.job AND i.stage_id = a.stage AND i.instance = a.instance";

static const char nu_sql_dlq[] =
    "WITH ins AS (INSERT INTO dead_letters (job_id, stage_id, split_id, topic, \"partition\","
    "  \"offset\", attempts, message, ts)"
    "  SELECT job, stage, split, topic, \"partition\", \"offset\", attempts, message,"
    "  to_timestamp(ts / 1000.0) FROM jsonb_to_recordset($1::jsonb) AS x(job text, stage text,"
    "  split text, topic text, \"partition\" int, \"offset\" bigint, attempts int, message text,"
    "  ts bigint) ON CONFLICT DO NOTHING RETURNING job_id, stage_id)"
    " UPDATE stages s SET dead_letters = s.dead_letters + a.n FROM (SELECT job_id, stage_id,"
    "  count(*) AS n FROM ins GROUP BY 1, 2) a"
    " WHERE s.job_id = a.job_id AND s.stage_id = a.stage_id";

static const char nu_sql_metrics[] =
    "WITH ev AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(job text, stage text,"
    "  instance int, ts bigint, rows_in bigint, rows_out bigint, rows_per_s float8,"
    "  rss_bytes bigint, cpu_ms bigint, total_lag bigint, lag jsonb)),"
    " ins AS (INSERT INTO stage_metrics (job_id, stage_id, instance, ts, rows_in, rows_out,"
    "  rows_per_s, rss_bytes, cpu_ms, total_lag, lag) SELECT job, stage, instance,"
    "  to_timestamp(ts / 1000.0), rows_in, rows_out, rows_per_s, rss_bytes, cpu_ms, total_lag,"
    "  lag FROM ev ON CONFLICT DO NOTHING)"
    " UPDATE instances i SET last_metrics = l.m FROM (SELECT DISTINCT ON (job, stage, instance)"
    "  job, stage, instance, ts, jsonb_build_object('ts', ts, 'rows_in', rows_in, 'rows_out',"
    "  rows_out, 'rows_per_s', rows_per_s, 'rss_bytes', rss_bytes, 'cpu_ms', cpu_ms,"
    "  'total_lag', total_lag, 'lag', lag) AS m FROM ev ORDER BY job, stage, instance, ts DESC) l"
    " WHERE i.job_id = l.job AND i.stage_id = l.stage AND i.instance = l.instance"
    "  AND coalesce((i.last_metrics->>'ts')::bigint, 0) <= l.ts";

/*
 * Instance state is monotonic per process: an ended row (stopped, crashed) goes back to
 * `running` only for another process (another pid) that started after it ended. So a start event
 * ingested late, after the launcher saw the process die (SIGKILL leaves no stop event), cannot
 * resurrect it; and a stop of an older process cannot end a newer one (metrics events only ever
 * touch last_metrics). Parameters: $1 job, $2 stage, $3 instance, $4 ts, $5 pid, $6 host,
 * $7 reason.
 */
static const char nu_sql_start[] =
    "WITH up AS (INSERT INTO instances AS i (job_id, stage_id, instance, pid, host, state,"
    "  started_at) VALUES ($1, $2, $3::int, $5::int, $6, 'running',"
    "  to_timestamp($4::bigint / 1000.0))"
    "  ON CONFLICT (job_id, stage_id, instance) DO UPDATE SET pid = EXCLUDED.pid,"
    "  host = EXCLUDED.host, state = 'running', reason = NULL, started_at = EXCLUDED.started_at,"
    "  stopped_at = NULL WHERE (i.started_at IS NULL OR i.started_at <= EXCLUDED.started_at)"
    "  AND (i.state = 'running' OR (i.pid IS DISTINCT FROM EXCLUDED.pid"
    "  AND (i.stopped_at IS NULL OR i.stopped_at < EXCLUDED.started_at)))),"
    " st AS (UPDATE stages SET state = 'running',"
    "  started_at = coalesce(started_at, to_timestamp($4::bigint / 1000.0))"
    "  WHERE job_id = $1 AND stage_id = $2 AND state = 'pending')"
    " UPDATE jobs SET state = 'running', updated_at = clock_timestamp(),"
    "  started_at = coalesce(started_at, to_timestamp($4::bigint / 1000.0))"
    " WHERE id = $1 AND state = 'submitted'";

static const char nu_sql_stop[] =
    "INSERT INTO instances AS i (job_id, stage_id, instance, pid, host, state, reason,"
    " stopped_at) VALUES ($1, $2, $3::int, $5::int, $6,"
    " CASE WHEN coalesce($7, 'stopped') IN ('complete', 'stopped') THEN 'stopped'"
    " ELSE 'crashed' END, $7, to_timestamp($4::bigint / 1000.0))"
    " ON CONFLICT (job_id, stage_id, instance) DO UPDATE SET state = EXCLUDED.state,"
    " pid = coalesce(nullif(EXCLUDED.pid, 0), i.pid),"
    " reason = EXCLUDED.reason, stopped_at = EXCLUDED.stopped_at"
    " WHERE i.pid IS NOT DISTINCT FROM EXCLUDED.pid OR i.started_at IS NULL"
    " OR i.started_at <= EXCLUDED.stopped_at";

static nu_err_t nu_ingest_sql_array(nu_db_t *db, const char *sql, json_t *arr, nu_db_res_t **res,
                                    struct nu_errbuf *eb)
{
    if (json_array_size(arr) == 0)
        return NU_OK;
    char *text = json_dumps(arr, JSON_COMPACT);
    const char *const params[] = {text};
    nu_err_t err = nu_db_query(db, sql, 1, params, res, eb);
    free(text);
    return err;
}

static nu_err_t nu_ingest_instance(nu_db_t *db, const struct nu_ev *ev, struct nu_errbuf *eb)
{
    char inst[24], ts[24], pid[24];
    snprintf(inst, sizeof(inst), "%" JSON_INTEGER_FORMAT,
             json_integer_value(json_object_get(ev->j, "instance")));
    snprintf(ts, sizeof(ts), "%" JSON_INTEGER_FORMAT,
             json_integer_value(json_object_get(ev->j, "ts")));
    snprintf(pid, sizeof(pid), "%" JSON_INTEGER_FORMAT,
             json_integer_value(json_object_get(ev->j, "pid")));
    const char *const params[] = {ev->job,
                                  ev->stage,
                                  inst,
                                  ts,
                                  pid,
                                  json_string_value(json_object_get(ev->j, "host")),
                                  json_string_value(json_object_get(ev->j, "reason"))};
    /* the start statement takes no reason */
    return nu_db_query(db, ev->type == NU_EV_START ? nu_sql_start : nu_sql_stop,
                       ev->type == NU_EV_START ? 6 : 7, params, NULL, eb);
}

/*
 * A stage whose every input partition has a partition_done row succeeded; a job all of whose
 * stages succeeded did too. The inputs come from the stored spec (nu_lanes_inputs).
 */
static nu_err_t nu_ingest_complete(nu_db_t *db, const char *job, const char *stage,
                                   struct nu_errbuf *eb)
{
    nu_db_res_t *res = NULL;
    struct nu_job *jb = NULL;
    struct nu_stage_input *in = nu_xcalloc(NU_JOB_MAX_UPSTREAMS + 1, sizeof(*in));
    json_t *exp = json_array();
    char *exptext = NULL, total[24];
    size_t n = 0, idx = 0;
    int64_t want = 0;
    struct nu_errbuf jeb = {0};
    const char *const p1[] = {job};
    nu_err_t err = nu_db_query(db, "SELECT spec::text FROM jobs WHERE id = $1", 1, p1, &res, eb);
    if (err || nu_db_res_rows(res) == 0)
        goto out;
    const char *spec = nu_db_res_get(res, 0, 0);
    if (nu_job_parse(spec, strlen(spec), NULL, &jb, NULL, &jeb) != NU_OK ||
        !nu_job_stage_find(jb, stage, &idx) || nu_lanes_inputs(jb, idx, in, &n, &jeb) != NU_OK) {
        nu_log(NU_LOG_WARN, "ingest", "cannot check completion of stage \"%s\" of job \"%s\": %s",
               stage, job, nu_err_msg(&jeb));
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(
            exp, json_pack("{s:s, s:i}", "topic", in[i].topic, "partitions", in[i].partitions));
        want += in[i].partitions;
    }
    exptext = json_dumps(exp, JSON_COMPACT);
    snprintf(total, sizeof(total), "%" PRId64, want);
    const char *const p2[] = {job, stage, exptext, total};
    err = nu_db_query(db,
                      "WITH done AS (SELECT count(*) AS n FROM partitions_done d"
                      "  JOIN jsonb_to_recordset($3::jsonb) AS x(topic text, partitions int)"
                      "  ON d.topic = x.topic AND d.\"partition\" < x.partitions"
                      "  WHERE d.job_id = $1 AND d.stage_id = $2)"
                      " UPDATE stages SET state = 'succeeded',"
                      "  finished_at = coalesce(finished_at, clock_timestamp()),"
                      "  started_at = coalesce(started_at, clock_timestamp())"
                      " WHERE job_id = $1 AND stage_id = $2 AND state IN ('pending', 'running')"
                      "  AND (SELECT n FROM done) >= $4::bigint",
                      4, p2, NULL, eb);
    if (!err)
        err = nu_db_query(db,
                          "UPDATE jobs SET state = 'succeeded', updated_at = clock_timestamp(),"
                          " started_at = coalesce(started_at, clock_timestamp()),"
                          " finished_at = clock_timestamp()"
                          " WHERE id = $1 AND state IN ('submitted', 'running') AND NOT EXISTS"
                          " (SELECT 1 FROM stages WHERE job_id = $1 AND state <> 'succeeded')",
                          1, p1, NULL, eb);
out:
    nu_job_destroy(jb);
    nu_db_res_free(res);
    json_decref(exp);
    free(exptext);
    free(in);
    return err;
}

/* Write `n` validated events (no transaction control here). */
static nu_err_t nu_ingest_apply(nu_db_t *db, struct nu_ev *evs, size_t n, struct nu_errbuf *eb)
{
    json_t *by[NU_EV__COUNT];
    nu_db_res_t *done = NULL;
    nu_err_t err = NU_OK;
    for (int t = 0; t < NU_EV__COUNT; t++)
        by[t] = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append(by[evs[i].type], evs[i].j);
    err = nu_ingest_sql_array(db, nu_sql_splits, by[NU_EV_SPLIT], NULL, eb);
    if (!err)
        err = nu_ingest_sql_array(db, nu_sql_errors, by[NU_EV_ERROR], NULL, eb);
    if (!err)
        err = nu_ingest_sql_array(db, nu_sql_dlq, by[NU_EV_DLQ], NULL, eb);
    for (size_t i = 0; i < n && !err; i++) /* in order: a restart may follow a stop */
        if (evs[i].type == NU_EV_START || evs[i].type == NU_EV_STOP)
            err = nu_ingest_instance(db, &evs[i], eb);
    if (!err)
        err = nu_ingest_sql_array(db, nu_sql_inst_errors, by[NU_EV_ERROR], NULL, eb);
    if (!err)
        err = nu_ingest_sql_array(db, nu_sql_metrics, by[NU_EV_METRICS], NULL, eb);
    if (!err)
        err = nu_ingest_sql_array(db, nu_sql_pdone, by[NU_EV_PDONE], &done, eb);
    for (int r = 0; !err && r < nu_db_res_rows(done); r++) {
        bool seen = false; /* each (job, stage) once */
        for (int q = 0; q < r && !seen; q++)
            seen = strcmp(nu_db_res_get(done, q, 0), nu_db_res_get(done, r, 0)) == 0 &&
                   strcmp(nu_db_res_get(done, q, 1), nu_db_res_get(done, r, 1)) == 0;
        if (!seen)
            err = nu_ingest_complete(db, nu_db_res_get(done, r, 0), nu_db_res_get(done, r, 1), eb);
    }
    nu_db_res_free(done);
    for (int t = 0; t < NU_EV__COUNT; t++)
        json_decref(by[t]);
    return err;
}

/* ---- the batch ---------------------------------------------------------------------------- */

struct nu_ingest_pos {
    const char *topic;
    int32_t partition;
    int64_t stored; /* next offset in the store, -1 unknown */
    int64_t next;   /* after this batch */
};

static struct nu_ingest_pos *nu_ingest_pos_find(struct nu_ingest_pos *pos, size_t n,
                                                const char *topic, int32_t partition)
{
    for (size_t i = 0; i < n; i++)
        if (pos[i].partition == partition && strcmp(pos[i].topic, topic) == 0)
            return &pos[i];
    return NULL;
}

/* The batch's partitions, with their stored offsets read and row-locked. */
static nu_err_t nu_ingest_positions(struct nu_ingest *ing, struct nu_ingest_pos *pos, size_t *np,
                                    char **offsets_json, struct nu_errbuf *eb)
{
    nu_db_res_t *res = NULL;
    json_t *arr = json_array();
    size_t n = 0;
    for (size_t i = 0; i < ing->nmsgs; i++) {
        rd_kafka_message_t *m = ing->msgs[i];
        const char *topic = rd_kafka_topic_name(m->rkt);
        struct nu_ingest_pos *p = nu_ingest_pos_find(pos, n, topic, m->partition);
        if (p == NULL) {
            p = &pos[n++];
            *p = (struct nu_ingest_pos){topic, m->partition, -1, m->offset + 1};
        }
        if (m->offset + 1 > p->next)
            p->next = m->offset + 1;
    }
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr,
                              json_pack("{s:s, s:i, s:I}", "topic", pos[i].topic, "partition",
                                        (int)pos[i].partition, "next", (json_int_t)pos[i].next));
    *offsets_json = json_dumps(arr, JSON_COMPACT);
    *np = n;
    const char *const params[] = {*offsets_json};
    nu_err_t err =
        nu_db_query(ing->db,
                    "SELECT o.topic, o.\"partition\", o.next_offset FROM ingest_offsets o"
                    " JOIN jsonb_to_recordset($1::jsonb) AS x(topic text,"
                    " \"partition\" int) USING (topic, \"partition\")"
                    " FOR UPDATE OF o",
                    1, params, &res, eb);
    for (int r = 0; !err && r < nu_db_res_rows(res); r++) {
        struct nu_ingest_pos *p =
            nu_ingest_pos_find(pos, n, nu_db_res_get(res, r, 0), (int32_t)nu_db_res_int(res, r, 1));
        if (p != NULL)
            p->stored = nu_db_res_int(res, r, 2);
    }
    json_decref(arr);
    nu_db_res_free(res);
    return err;
}

/* Is (job, stage) a row of `known` (columns job_id, stage_id)? */
static bool nu_ingest_known(const nu_db_res_t *known, const char *job, const char *stage)
{
    for (int r = 0; r < nu_db_res_rows(known); r++)
        if (strcmp(nu_db_res_get(known, r, 1), stage) == 0 &&
            strcmp(nu_db_res_get(known, r, 0), job) == 0)
            return true;
    return false;
}

/* The (job, stage) pairs the store knows among the jobs named by `evs`. */
static nu_err_t nu_ingest_known_stages(nu_db_t *db, const struct nu_ev *evs, size_t n,
                                       nu_db_res_t **out, struct nu_errbuf *eb)
{
    json_t *jobs = json_array();
    for (size_t i = 0; i < n; i++) {
        bool dup = false;
        for (size_t k = 0; k < json_array_size(jobs) && !dup; k++)
            dup = strcmp(json_string_value(json_array_get(jobs, k)), evs[i].job) == 0;
        if (!dup)
            json_array_append_new(jobs, json_string(evs[i].job));
    }
    char *text = json_dumps(jobs, JSON_COMPACT);
    const char *const params[] = {text};
    nu_err_t err = nu_db_query(db,
                               "SELECT job_id, stage_id FROM stages WHERE job_id IN"
                               " (SELECT jsonb_array_elements_text($1::jsonb))",
                               1, params, out, eb);
    free(text);
    json_decref(jobs);
    return err;
}

/* After the batch failed as a whole on a non-retriable error: event by event, each under a
 * savepoint, skipping the ones the database rejects. Returns how many were skipped. */
static nu_err_t nu_ingest_one_by_one(nu_db_t *db, struct nu_ev *evs, size_t n, size_t *skipped,
                                     struct nu_errbuf *eb)
{
    nu_err_t err = NU_OK;
    *skipped = 0;
    for (size_t i = 0; i < n && !err; i++) {
        struct nu_errbuf one = {0};
        err = nu_db_exec(db, "SAVEPOINT nu_event", eb);
        if (err)
            break;
        nu_err_t e = nu_ingest_apply(db, &evs[i], 1, &one);
        if (e == NU_ERR_DB) {
            err = nu_err_set(eb, e, "%s", nu_err_msg(&one));
        } else if (e) {
            nu_log(NU_LOG_WARN, "ingest", "event skipped, the database rejected it: %s",
                   nu_err_msg(&one));
            (*skipped)++;
            err = nu_db_exec(db, "ROLLBACK TO SAVEPOINT nu_event", eb);
        } else {
            err = nu_db_exec(db, "RELEASE SAVEPOINT nu_event", eb);
        }
    }
    return err;
}

nu_err_t nu_ingest_write(struct nu_ingest *ing, struct nu_errbuf *eb)
{
    size_t nm = ing->nmsgs, npos = 0, nev = 0, invalid = 0, unknown = 0, rejected = 0;
    struct nu_ingest_pos *pos = nu_xcalloc(nm, sizeof(*pos));
    struct nu_ev *evs = nu_xcalloc(nm, sizeof(*evs));
    nu_db_res_t *known = NULL;
    char *offsets = NULL, why[256];
    nu_err_t err = nu_db_begin(ing->db, eb);
    if (!err)
        err = nu_ingest_positions(ing, pos, &npos, &offsets, eb);
    if (err)
        goto out;
    for (size_t i = 0; i < nm; i++) {
        rd_kafka_message_t *m = ing->msgs[i];
        const char *topic = rd_kafka_topic_name(m->rkt);
        struct nu_ingest_pos *p = nu_ingest_pos_find(pos, npos, topic, m->partition);
        if (p->stored > m->offset)
            continue; /* already in the store (a second reader got there first) */
        if (!nu_ev_parse(m->payload, m->len, &evs[nev], why, sizeof(why))) {
            nu_log(NU_LOG_WARN, "ingest",
                   "malformed event skipped: %s\ttopic=%s partition=%d "
                   "offset=%" PRId64,
                   why, topic, (int)m->partition, (int64_t)m->offset);
            invalid++;
            continue;
        }
        nev++;
    }
    err = nu_ingest_known_stages(ing->db, evs, nev, &known, eb);
    if (err)
        goto out;
    size_t kept = 0;
    for (size_t i = 0; i < nev; i++) {
        if (nu_ingest_known(known, evs[i].job, evs[i].stage)) {
            evs[kept++] = evs[i];
            continue;
        }
        NU_LOG_DEBUG_AREA("sql", "ingest",
                          "event of unknown job or stage skipped\tjob=%s "
                          "stage=%s",
                          evs[i].job, evs[i].stage);
        json_decref(evs[i].j);
        unknown++;
    }
    nev = kept;
    err = nu_db_exec(ing->db, "SAVEPOINT nu_batch", eb);
    if (!err) {
        struct nu_errbuf beb = {0};
        nu_err_t e = nu_ingest_apply(ing->db, evs, nev, &beb);
        if (e == NU_ERR_DB)
            err = nu_err_set(eb, e, "%s", nu_err_msg(&beb));
        else if (e) {
            nu_log(NU_LOG_WARN, "ingest", "batch rejected, retrying event by event: %s",
                   nu_err_msg(&beb));
            err = nu_db_exec(ing->db, "ROLLBACK TO SAVEPOINT nu_batch", eb);
            if (!err)
                err = nu_ingest_one_by_one(ing->db, evs, nev, &rejected, eb);
        }
    }
    const char *const params[] = {offsets};
    if (!err)
        err = nu_db_query(ing->db,
                          "INSERT INTO ingest_offsets (topic, \"partition\", next_offset)"
                          " SELECT topic, \"partition\", next FROM jsonb_to_recordset($1::jsonb)"
                          " AS x(topic text, \"partition\" int, next bigint)"
                          " ON CONFLICT (topic, \"partition\") DO UPDATE SET next_offset ="
                          " greatest(ingest_offsets.next_offset, EXCLUDED.next_offset),"
                          " updated_at = clock_timestamp()",
                          1, params, NULL, eb);
    if (!err)
        err = nu_db_commit(ing->db, eb);
    if (err)
        goto out;
    atomic_fetch_add(&ing->events, nev - rejected);
    atomic_fetch_add(&ing->batches, 1);
    atomic_fetch_add(&ing->skipped_invalid, invalid + rejected);
    atomic_fetch_add(&ing->skipped_unknown, unknown);
    if (unknown > 0)
        nu_log(NU_LOG_WARN, "ingest", "skipped %zu events of jobs or stages not in the store",
               unknown);
out:
    if (err)
        nu_db_rollback(ing->db);
    for (size_t i = 0; i < nev; i++)
        json_decref(evs[i].j);
    free(evs);
    free(pos);
    free(offsets);
    nu_db_res_free(known);
    return err;
}
