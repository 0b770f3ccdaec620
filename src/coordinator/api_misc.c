/*
 * api_misc.c — the topics of a job (with kcat commands), readiness, and the coordinator's
 * Prometheus metrics.
 */
#include "coordinator/api_int.h"

#include "common/log.h"
#include "coordinator/store.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* One topic of a job: partitions, end offsets (within the time budget) and a kcat command. */
static json_t *nu_coord_topic(nu_coord_api_t *api, const char *name, const char *kind,
                              const char *stage, int64_t deadline)
{
    struct nu_errbuf eb = {0};
    int parts = 0;
    json_t *t = json_object(), *ends = json_array();
    char kcat[NU_JOB_NAME_MAX + 512];
    int64_t left = deadline - nu_coord_now_ms();
    json_object_set_new(t, "name", json_string(name));
    json_object_set_new(t, "kind", json_string(kind));
    json_object_set_new(t, "stage", stage ? json_string(stage) : json_null());
    bool complete = left > 0;
    if (left > 0 && nu_kafka_topic_partitions(api->rk, name, (int)left, &parts, &eb) != NU_OK) {
        json_object_set_new(t, "error", json_string(nu_err_msg(&eb)));
        complete = false;
        parts = 0;
    }
    int64_t total = 0;
    for (int p = 0; p < parts; p++) {
        int64_t lo = 0, hi = 0;
        left = deadline - nu_coord_now_ms();
        if (left <= 0 || rd_kafka_query_watermark_offsets(api->rk, name, p, &lo, &hi, (int)left) !=
                             RD_KAFKA_RESP_ERR_NO_ERROR) {
            json_array_append_new(ends, json_null());
            complete = false;
            continue;
        }
        json_array_append_new(ends, json_integer(hi));
        total += hi - lo;
    }
    json_object_set_new(t, "exists", json_boolean(parts > 0));
    json_object_set_new(t, "partitions", json_integer(parts));
    json_object_set_new(t, "end_offsets", ends);
    json_object_set_new(t, "records", complete ? json_integer(total) : json_null());
    snprintf(kcat, sizeof(kcat),
             "kcat -b %s -C -t %s -X isolation.level=read_committed -e -f '%%k %%h %%s\\n'",
             api->brokers, name);
    json_object_set_new(t, "kcat", json_string(kcat));
    return t;
}

/* Is stage `sid` a sink according to the store's stages array (borrowed)? */
static bool nu_coord_stage_is_sink(json_t *stages, const char *sid)
{
    size_t i;
    json_t *st;
    json_array_foreach(stages, i, st)
    {
        const char *id = json_string_value(json_object_get(st, "id"));
        const char *kind = json_string_value(json_object_get(st, "kind"));
        if (id != NULL && kind != NULL && strcmp(id, sid) == 0)
            return strcmp(kind, "sink") == 0;
    }
    return false;
}

/* GET /api/v1/jobs/{id}/topics */
void nu_coord_h_topics(const struct nu_http_req *req, struct nu_http_resp *resp, void *app)
{
    nu_coord_api_t *api = app;
    struct nu_errbuf eb = {0};
    struct nu_job *job = NULL;
    json_t *stages = NULL;
    char name[NU_JOB_NAME_MAX];
    nu_db_t *db = nu_coord_db(req, resp, app);
    if (db == NULL)
        return;
    nu_err_t err = nu_coord_job_load(db, nu_http_param(req, "id"), &job, NULL, &eb);
    if (!err)
        err = nu_store_stages(db, job->id, &stages, &eb);
    if (err) {
        nu_coord_fail(resp, err, &eb);
        nu_job_destroy(job);
        return;
    }
    int64_t deadline = nu_coord_now_ms() + NU_COORD_TOPICS_WAIT_MS;
    json_t *topics = json_array();
    for (size_t i = 0; i < job->nstages; i++) {
        const char *sid = job->stages[i].id;
        if (job->stages[i].nupstream == 0)
            json_array_append_new(topics,
                                  nu_coord_topic(api, nu_job_topic_plan(job, i, name, sizeof(name)),
                                                 "plan", sid, deadline));
        json_t *out = nu_coord_topic(api, nu_job_topic_output(job, i, name, sizeof(name)), "output",
                                     sid, deadline);
        /* a sink writes outside Kafka: its output topic exists but stays empty */
        if (nu_coord_stage_is_sink(stages, sid))
            json_object_set_new(out, "note",
                                json_string("the stage is a sink: it writes outside Kafka, so "
                                            "this topic stays empty"));
        json_array_append_new(topics, out);
        json_array_append_new(topics,
                              nu_coord_topic(api, nu_job_topic_dlq(job, i, name, sizeof(name)),
                                             "dlq", sid, deadline));
    }
    json_array_append_new(topics, nu_coord_topic(api, nu_job_topic_events(job, name, sizeof(name)),
                                                 "events", NULL, deadline));
    nu_http_resp_json(
        resp, 200,
        json_pack("{s:s, s:s, s:o}", "job", job->id, "brokers", api->brokers, "topics", topics));
    json_decref(stages);
    nu_job_destroy(job);
}

/* Measure readiness (database and broker) unless the cached answer is fresh. Locked. */
static void nu_coord_ready_check(nu_coord_api_t *api)
{
    int64_t now = nu_coord_now_ms();
    if (api->ready_at_ms != 0 && now - api->ready_at_ms < NU_COORD_READY_CACHE_MS)
        return;
    struct nu_errbuf eb = {0};
    nu_db_t *db = nu_coord_conn_get(api, &api->mconn, &eb);
    api->ready_db = db != NULL && nu_db_query(db, "SELECT 1", 0, NULL, NULL, &eb) == NU_OK;
    snprintf(api->ready_db_msg, sizeof(api->ready_db_msg), "%s",
             api->ready_db ? "ok" : nu_err_msg(&eb));
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t kerr = rd_kafka_metadata(api->rk, 0, NULL, &md, NU_COORD_READY_WAIT_MS);
    api->ready_broker = kerr == RD_KAFKA_RESP_ERR_NO_ERROR && md != NULL && md->broker_cnt > 0;
    snprintf(api->ready_broker_msg, sizeof(api->ready_broker_msg), "%s",
             api->ready_broker ? "ok"
             : kerr            ? rd_kafka_err2str(kerr)
                               : "no broker in the cluster metadata");
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    api->ready_at_ms = nu_coord_now_ms();
}

/* GET /readyz */
void nu_coord_h_readyz(const struct nu_http_req *req, struct nu_http_resp *resp, void *app)
{
    nu_coord_api_t *api = app;
    pthread_mutex_lock(&api->lock);
    nu_coord_ready_check(api);
    bool ok = api->ready_db && api->ready_broker;
    json_t *o = json_pack("{s:s, s:{s:s, s:s}}", "status", ok ? "ready" : "not_ready", "checks",
                          "database", api->ready_db_msg, "broker", api->ready_broker_msg);
    pthread_mutex_unlock(&api->lock);
    nu_http_resp_json(resp, ok ? 200 : 503, o);
}

/* Stage counters exported per job and stage: metric name, stage field, help, type. */
static const struct {
    const char *metric, *field, *help, *type;
} nu_coord_stage_metrics[] = {
    {"nurion_stage_rows_in_total", "rows_in", "Rows read by the stage", "counter"},
    {"nurion_stage_rows_out_total", "rows_out", "Rows written by the stage", "counter"},
    {"nurion_stage_splits_total", "splits_done", "Splits the stage finished", "counter"},
    {"nurion_stage_dead_letters_total", "dead_letters", "Splits sent to the dead-letter topic",
     "counter"},
    {"nurion_stage_errors_total", "errors", "Operator errors of the stage", "counter"},
    {"nurion_stage_lag", "lag", "Input lag of the stage (records) at the last sample", "gauge"},
    {"nurion_stage_instances", "instances_running", "Running instances of the stage", "gauge"},
};
#define NU_COORD_NSTAGE_METRICS (sizeof(nu_coord_stage_metrics) / sizeof(nu_coord_stage_metrics[0]))

/* Per job and stage rows from the store (the newest NU_COORD_METRICS_JOBS jobs). Locked. */
static void nu_coord_metrics_store(nu_coord_api_t *api, struct nu_buf *out)
{
    struct nu_errbuf eb = {0};
    json_t *jobs = NULL;
    json_t **stages = NULL;
    char *next = NULL;
    nu_db_t *db = nu_coord_conn_get(api, &api->mconn, &eb);
    bool ok = db != NULL &&
              nu_store_jobs_list(db, NULL, NULL, NU_COORD_METRICS_JOBS, &jobs, &next, &eb) == NU_OK;
    nu_coord_bprintf(out,
                     "# HELP nurion_store_up Whether the store answered this scrape\n"
                     "# TYPE nurion_store_up gauge\nnurion_store_up %d\n",
                     ok ? 1 : 0);
    if (!ok)
        goto out;
    size_t nj = json_array_size(jobs), i;
    json_t *j;
    stages = calloc(nj + 1, sizeof(*stages));
    nu_coord_bprintf(out, "# HELP nurion_job_info Jobs known to the store, by state\n"
                          "# TYPE nurion_job_info gauge\n");
    json_array_foreach(jobs, i, j)
    {
        const char *id = json_string_value(json_object_get(j, "id"));
        const char *state = json_string_value(json_object_get(j, "state"));
        nu_coord_bprintf(out, "nurion_job_info{job=\"%s\",state=\"%s\"} 1\n", id ? id : "",
                         state ? state : "");
        if (id != NULL && stages != NULL && nu_store_stages(db, id, &stages[i], &eb) != NU_OK)
            stages[i] = NULL;
    }
    for (size_t m = 0; m < NU_COORD_NSTAGE_METRICS; m++) {
        nu_coord_bprintf(out, "# HELP %s %s\n# TYPE %s %s\n", nu_coord_stage_metrics[m].metric,
                         nu_coord_stage_metrics[m].help, nu_coord_stage_metrics[m].metric,
                         nu_coord_stage_metrics[m].type);
        json_array_foreach(jobs, i, j)
        {
            const char *id = json_string_value(json_object_get(j, "id"));
            size_t k;
            json_t *st;
            if (stages == NULL || stages[i] == NULL)
                continue;
            json_array_foreach(stages[i], k, st)
            {
                json_t *v = json_object_get(st, nu_coord_stage_metrics[m].field);
                if (!json_is_number(v))
                    continue;
                nu_coord_bprintf(
                    out, "%s{job=\"%s\",stage=\"%s\"} %.17g\n", nu_coord_stage_metrics[m].metric,
                    id, json_string_value(json_object_get(st, "id")), json_number_value(v));
            }
        }
    }
out:
    if (stages != NULL)
        for (size_t k = 0; k < json_array_size(jobs); k++)
            json_decref(stages[k]);
    free(stages);
    free(next);
    json_decref(jobs);
}

void nu_coord_metrics(struct nu_buf *out, void *app_ctx)
{
    nu_coord_api_t *api = app_ctx;
    if (api->ingest != NULL) {
        struct nu_ingest_stats s;
        nu_ingest_stats(api->ingest, &s);
        nu_coord_bprintf(
            out,
            "# HELP nurion_ingest_events_total Events written to the store\n"
            "# TYPE nurion_ingest_events_total counter\nnurion_ingest_events_total %" PRIu64 "\n"
            "# HELP nurion_ingest_batches_total Ingestion transactions committed\n"
            "# TYPE nurion_ingest_batches_total counter\nnurion_ingest_batches_total %" PRIu64 "\n"
            "# HELP nurion_ingest_skipped_total Events skipped, by reason\n"
            "# TYPE nurion_ingest_skipped_total counter\n"
            "nurion_ingest_skipped_total{reason=\"invalid\"} %" PRIu64 "\n"
            "nurion_ingest_skipped_total{reason=\"unknown\"} %" PRIu64 "\n"
            "# HELP nurion_ingest_db_errors_total Failed ingestion batches and connections\n"
            "# TYPE nurion_ingest_db_errors_total counter\nnurion_ingest_db_errors_total %" PRIu64
            "\n"
            "# HELP nurion_ingest_partitions Events partitions assigned\n"
            "# TYPE nurion_ingest_partitions gauge\nnurion_ingest_partitions %" PRIu64 "\n",
            s.events, s.batches, s.skipped_invalid, s.skipped_unknown, s.db_errors, s.partitions);
    }
    if (api->launcher != NULL) {
        struct nu_launcher_stats s;
        nu_launcher_stats(api->launcher, &s);
        nu_coord_bprintf(out,
                         "# HELP nurion_launcher_processes Live stage processes\n"
                         "# TYPE nurion_launcher_processes gauge\nnurion_launcher_processes %ld\n"
                         "# HELP nurion_launcher_restarts_total Stage process restarts\n"
                         "# TYPE nurion_launcher_restarts_total counter\n"
                         "nurion_launcher_restarts_total %ld\n"
                         "# HELP nurion_launcher_scalings_total Scaling decisions, by direction\n"
                         "# TYPE nurion_launcher_scalings_total counter\n"
                         "nurion_launcher_scalings_total{direction=\"up\"} %ld\n"
                         "nurion_launcher_scalings_total{direction=\"down\"} %ld\n"
                         "# HELP nurion_launcher_jobs_running Jobs the launcher runs\n"
                         "# TYPE nurion_launcher_jobs_running gauge\n"
                         "nurion_launcher_jobs_running %ld\n",
                         s.processes, s.restarts, s.scale_ups, s.scale_downs, s.jobs_running);
    }
    pthread_mutex_lock(&api->lock);
    nu_coord_metrics_store(api, out);
    pthread_mutex_unlock(&api->lock);
}
