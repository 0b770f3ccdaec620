/*
 * Integration tests of src/coordinator/ingest*.c against the real Kafka broker and PostgreSQL:
 * events produced (in the stage's format, src/stage/events.h) to a job's events topic end up in
 * the store exactly once, across restarts of the ingester and of its database connection.
 */
#include "integ.h"

#include "common/buf.h"
#include "common/job.h"
#include "coordinator/ingest.h"
#include "coordinator/store.h"
#include "stage/events.h"

struct it_env {
    char id[96], topic[NU_JOB_NAME_MAX];
    nu_db_t *db;
    rd_kafka_t *p;
    struct nu_job *job;
};

/* A job src -> dbl (two partitions each) in the store, and its events topic (one partition). */
static void it_setup(struct it_env *e, const char *prefix)
{
    static unsigned n;
    struct nu_errbuf eb = {0};
    char spec[1024], errstr[256];
    snprintf(e->id, sizeof(e->id), "%s-%ld-%lld-%u", prefix, (long)getpid(),
             (long long)nu_it_now_ms(), n++);
    snprintf(spec, sizeof(spec),
             "{\"job_id\":\"%s\",\"stages\":["
             "{\"id\":\"src\",\"operator\":\"generate\",\"partitions\":2},"
             "{\"id\":\"dbl\",\"operator\":\"map\",\"upstream\":[\"src\"],\"partitions\":2}]}",
             e->id);
    cr_assert_eq(nu_job_parse(spec, strlen(spec), NULL, &e->job, NULL, &eb), NU_OK, "%s",
                 nu_err_msg(&eb));
    cr_assert_eq(nu_store_connect(nu_it_database_url(), &e->db, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(nu_store_migrate(e->db, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(nu_store_job_insert(e->db, e->job, &eb), NU_OK, "%s", nu_err_msg(&eb));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    nu_it_conf_set(conf, "bootstrap.servers", nu_it_brokers());
    nu_it_conf_set(conf, "enable.idempotence", "true");
    e->p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    cr_assert_not_null(e->p, "%s", errstr);
    nu_job_topic_events(e->job, e->topic, sizeof(e->topic));
    nu_it_create_topic(e->p, e->topic, 1);
}

static void it_teardown(struct it_env *e)
{
    struct nu_errbuf eb = {0};
    nu_it_delete_topic(e->p, e->topic);
    cr_expect_eq(nu_store_job_delete(e->db, e->id, &eb), NU_OK, "%s", nu_err_msg(&eb));
    rd_kafka_destroy(e->p);
    nu_store_close(e->db);
    nu_job_destroy(e->job);
}

/* Produce raw bytes (key = stage) and wait for delivery. */
static void it_produce_raw(struct it_env *e, const char *stage, const char *value)
{
    rd_kafka_resp_err_t err = rd_kafka_producev(
        e->p, RD_KAFKA_V_TOPIC(e->topic), RD_KAFKA_V_PARTITION(0),
        RD_KAFKA_V_KEY(stage, strlen(stage)), RD_KAFKA_V_VALUE((void *)value, strlen(value)),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    cr_assert_eq(err, RD_KAFKA_RESP_ERR_NO_ERROR, "%s", rd_kafka_err2str(err));
}

static void it_produce(struct it_env *e, const char *stage, json_t *ev)
{
    struct nu_buf b = {0};
    nu_event_dump(ev, &b);
    it_produce_raw(e, stage, (const char *)b.data);
    nu_buf_free(&b);
}

static void it_flush(struct it_env *e)
{
    cr_assert_eq(rd_kafka_flush(e->p, NU_IT_TIMEOUT_MS), RD_KAFKA_RESP_ERR_NO_ERROR);
}

/* split_done events: src processes plan splits p<i>, dbl processes s<i> (child of p<i>). */
static void it_splits(struct it_env *e, const char *stage, int from, int to)
{
    struct nu_event_origin o = {e->id, stage, 0};
    bool src = strcmp(stage, "src") == 0;
    for (int i = from; i < to; i++) {
        char split[32], parent[32];
        snprintf(split, sizeof(split), "%s%d", src ? "s" : "d", i);
        snprintf(parent, sizeof(parent), "%s%d", src ? "p" : "s", i);
        it_produce(e, stage,
                   nu_event_split_done(&o, split, parent, 10, src ? 10 : 20, 100, 200, 1.5, "t",
                                       i % 2, i));
    }
}

static int64_t it_scalar(struct it_env *e, const char *sql)
{
    struct nu_errbuf eb = {0};
    nu_db_res_t *res = NULL;
    cr_assert_eq(nu_db_query(e->db, sql, 1, (const char *const[]){e->id}, &res, &eb), NU_OK,
                 "%s: %s", sql, nu_err_msg(&eb));
    int64_t v = nu_db_res_int(res, 0, 0);
    nu_db_res_free(res);
    return v;
}

static const char *it_text(struct it_env *e, const char *sql, char *buf, size_t len)
{
    struct nu_errbuf eb = {0};
    nu_db_res_t *res = NULL;
    cr_assert_eq(nu_db_query(e->db, sql, 1, (const char *const[]){e->id}, &res, &eb), NU_OK, "%s",
                 nu_err_msg(&eb));
    snprintf(buf, len, "%s", nu_db_res_get(res, 0, 0));
    nu_db_res_free(res);
    return buf;
}

/* The end of the events topic. */
static int64_t it_end(struct it_env *e)
{
    int64_t lo = 0, hi = 0;
    cr_assert_eq(rd_kafka_query_watermark_offsets(e->p, e->topic, 0, &lo, &hi, 10000),
                 RD_KAFKA_RESP_ERR_NO_ERROR);
    return hi;
}

static nu_ingest_t *it_ingester(struct it_env *e, const char *url, int batch)
{
    struct nu_errbuf eb = {0};
    nu_ingest_t *ing = NULL;
    struct nu_ingest_conf c = {.brokers = nu_it_brokers(),
                               .db_url = url,
                               .batch_max = batch,
                               .batch_ms = 50,
                               .refresh_ms = 300,
                               .retry_ms = 400,
                               .jobs_like = e->id};
    cr_assert_eq(nu_ingest_new(&c, &ing, &eb), NU_OK, "%s", nu_err_msg(&eb));
    return ing;
}

static const char it_sql_next[] =
    "SELECT coalesce((SELECT next_offset FROM ingest_offsets WHERE topic = 'nurion.' || $1 ||"
    " '._events' AND \"partition\" = 0), 0)";

/* Step until the store's offset reaches `end`; returns the failed steps seen. */
static int it_drain(struct it_env *e, nu_ingest_t *ing, int64_t end, int max_steps)
{
    int failed = 0;
    int64_t deadline = nu_it_now_ms() + 15000;
    for (int s = 0; s < max_steps || max_steps < 0; s++) {
        struct nu_errbuf eb = {0};
        if (nu_ingest_step(ing, 100, &eb) != NU_OK)
            failed++;
        if (it_scalar(e, it_sql_next) >= end)
            return failed;
        cr_assert_lt(nu_it_now_ms(), deadline, "ingestion did not reach offset %lld: %s",
                     (long long)end, nu_err_msg(&eb));
    }
    return failed;
}

Test(ingest, exactly_once_across_restart, .timeout = 40)
{
    struct it_env e;
    char buf[64];
    it_setup(&e, "ie");
    struct nu_event_origin src0 = {e.id, "src", 0}, dbl0 = {e.id, "dbl", 0};
    it_produce(&e, "src", nu_event_instance(&src0, "instance_started", NULL));
    it_produce(&e, "dbl", nu_event_instance(&dbl0, "instance_started", NULL));
    it_splits(&e, "src", 0, 20);
    it_splits(&e, "dbl", 0, 20);
    it_flush(&e);
    int64_t end = it_end(&e);

    /* a first ingester writes a few batches of five, then goes away mid-way */
    nu_ingest_t *ing = it_ingester(&e, nu_it_database_url(), 5);
    int64_t deadline = nu_it_now_ms() + 15000;
    while (it_scalar(&e, it_sql_next) < 12) {
        struct nu_errbuf eb = {0};
        nu_ingest_step(ing, 100, &eb);
        cr_assert_lt(nu_it_now_ms(), deadline, "no progress: %s", nu_err_msg(&eb));
    }
    struct nu_ingest_stats st;
    nu_ingest_stats(ing, &st);
    cr_assert_geq(st.batches, 2);
    nu_ingest_destroy(ing);
    cr_assert_lt(it_scalar(&e, it_sql_next), end, "stopped mid-way");
    cr_assert_str_eq(it_text(&e, "SELECT state FROM jobs WHERE id = $1", buf, sizeof(buf)),
                     "running", "running on the first instance_started");

    /* an at-least-once stage repeats some events: they must not count twice */
    it_splits(&e, "dbl", 5, 10);
    it_flush(&e);
    end = it_end(&e);
    ing = it_ingester(&e, nu_it_database_url(), 5);
    it_drain(&e, ing, end, -1);
    cr_assert_eq(it_scalar(&e, "SELECT count(*) FROM splits WHERE job_id = $1"), 40);
    cr_assert_eq(it_scalar(&e, "SELECT count(*) FROM split_edges WHERE job_id = $1"), 40);
    cr_assert_eq(it_scalar(&e, "SELECT count(*) FROM split_edges WHERE job_id = $1 AND"
                               " parent = 's7' AND child = 'd7'"),
                 1);
    cr_assert_eq(it_scalar(&e, "SELECT splits_done FROM stages WHERE job_id = $1 AND"
                               " stage_id = 'dbl'"),
                 20);
    cr_assert_eq(it_scalar(&e, "SELECT rows_out FROM stages WHERE job_id = $1 AND"
                               " stage_id = 'dbl'"),
                 400);
    cr_assert_eq(it_scalar(&e, "SELECT splits_done FROM stages WHERE job_id = $1 AND"
                               " stage_id = 'src'"),
                 20);

    /* an error twice with different numbers: one exception counted twice; a dead letter */
    struct nu_event_origin dbl1 = {e.id, "dbl", 1};
    it_produce(&e, "dbl",
               nu_event_error(&dbl1, "d3", 1, "NU_ERR_EVAL", "division by zero at column 5", NULL));
    it_produce(&e, "dbl",
               nu_event_error(&dbl1, "d4", 1, "NU_ERR_EVAL", "division by zero at column 7", NULL));
    it_produce(&e, "dbl", nu_event_dlq(&dbl1, "d4", "t", 0, 4, 3, "division by zero"));
    /* completion: every input partition of both stages */
    char plan[NU_JOB_NAME_MAX], out[NU_JOB_NAME_MAX];
    nu_job_topic_plan(e.job, 0, plan, sizeof(plan));
    nu_job_topic_output(e.job, 0, out, sizeof(out));
    for (int p = 0; p < 2; p++) {
        it_produce(&e, "src", nu_event_partition_done(&src0, plan, p));
        if (p == 0)
            it_produce(&e, "dbl", nu_event_partition_done(&dbl0, out, p));
    }
    it_produce(&e, "src", nu_event_instance(&src0, "instance_stopped", "complete"));
    it_flush(&e);
    it_drain(&e, ing, it_end(&e), -1);
    cr_assert_eq(it_scalar(&e, "SELECT count FROM exceptions WHERE job_id = $1"), 2);
    cr_assert_eq(it_scalar(&e, "SELECT cardinality(sample_splits) FROM exceptions"
                               " WHERE job_id = $1"),
                 2);
    cr_assert_eq(it_scalar(&e, "SELECT errors FROM stages WHERE job_id = $1 AND"
                               " stage_id = 'dbl'"),
                 2);
    cr_assert_eq(it_scalar(&e, "SELECT dead_letters FROM stages WHERE job_id = $1 AND"
                               " stage_id = 'dbl'"),
                 1);
    cr_assert_str_eq(it_text(&e,
                             "SELECT state FROM instances WHERE job_id = $1 AND"
                             " stage_id = 'src' AND instance = 0",
                             buf, sizeof(buf)),
                     "stopped");
    cr_assert_str_eq(it_text(&e,
                             "SELECT state FROM stages WHERE job_id = $1 AND"
                             " stage_id = 'src'",
                             buf, sizeof(buf)),
                     "succeeded");
    cr_assert_str_eq(it_text(&e,
                             "SELECT state FROM stages WHERE job_id = $1 AND"
                             " stage_id = 'dbl'",
                             buf, sizeof(buf)),
                     "running", "one input partition of dbl is not done yet");
    it_produce(&e, "dbl", nu_event_partition_done(&dbl0, out, 1));
    it_flush(&e);
    it_drain(&e, ing, it_end(&e), -1);
    cr_assert_str_eq(it_text(&e, "SELECT state FROM jobs WHERE id = $1", buf, sizeof(buf)),
                     "succeeded");
    json_t *doc = NULL;
    struct nu_errbuf eb = {0};
    cr_assert_eq(nu_store_job_get(e.db, e.id, &doc, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(json_integer_value(json_object_get(
                     json_array_get(json_object_get(doc, "stages"), 1), "splits_done")),
                 20);
    json_decref(doc);
    nu_ingest_stats(ing, &st);
    cr_assert_eq(st.skipped_invalid, 0);
    nu_ingest_destroy(ing);
    it_teardown(&e);
}

Test(ingest, malformed_and_unknown_skipped, .timeout = 30)
{
    struct it_env e;
    it_setup(&e, "im");
    char ev[512];
    it_produce_raw(&e, "src", "not json at all");
    it_produce_raw(&e, "src", "[1, 2, 3]");
    snprintf(ev, sizeof(ev), "{\"type\":\"bogus\",\"job\":\"%s\",\"stage\":\"src\"}", e.id);
    it_produce_raw(&e, "src", ev);
    snprintf(ev, sizeof(ev),
             "{\"type\":\"split_done\",\"job\":\"%s\",\"stage\":\"src\",\"rows_in\":1,"
             "\"rows_out\":1}",
             e.id); /* no split id */
    it_produce_raw(&e, "src", ev);
    snprintf(ev, sizeof(ev),
             "{\"type\":\"split_done\",\"job\":\"%s\",\"stage\":\"src\",\"split\":\"x\","
             "\"rows_in\":\"many\",\"rows_out\":1}",
             e.id); /* mistyped */
    it_produce_raw(&e, "src", ev);
    struct nu_event_origin ghost = {"no-such-job", "src", 0}, nostage = {e.id, "nope", 0};
    it_produce(&e, "src", nu_event_partition_done(&ghost, "t", 0));
    it_produce(&e, "src", nu_event_partition_done(&nostage, "t", 0));
    it_splits(&e, "src", 0, 1);
    it_flush(&e);
    nu_ingest_t *ing = it_ingester(&e, nu_it_database_url(), 100);
    it_drain(&e, ing, it_end(&e), -1);
    struct nu_ingest_stats st;
    nu_ingest_stats(ing, &st);
    cr_assert_eq(st.skipped_invalid, 5);
    cr_assert_eq(st.skipped_unknown, 2);
    cr_assert_eq(st.events, 1);
    cr_assert_eq(it_scalar(&e, "SELECT count(*) FROM splits WHERE job_id = $1"), 1);
    nu_ingest_destroy(ing);
    it_teardown(&e);
}

Test(ingest, database_unavailable_then_catch_up, .timeout = 40)
{
    struct it_env e;
    char url[700], app[128];
    struct nu_errbuf eb = {0};
    it_setup(&e, "id");
    const char *base = nu_it_database_url();
    snprintf(app, sizeof(app), "ingest_%s", e.id);
    snprintf(url, sizeof(url), "%s%sapplication_name=%s", base, strchr(base, '?') ? "&" : "?", app);

    /* a database that does not answer: steps fail, counted, never crash */
    nu_ingest_t *bad = it_ingester(&e, "postgresql://postgres@127.0.0.1:1/x?connect_timeout=1", 10);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(nu_ingest_step(bad, 200, &eb), NU_ERR_DB);
    struct nu_ingest_stats st;
    nu_ingest_stats(bad, &st);
    cr_assert_geq(st.db_errors, 1);
    nu_ingest_destroy(bad);

    nu_ingest_t *ing = it_ingester(&e, url, 100);
    it_splits(&e, "src", 0, 5);
    it_flush(&e);
    it_drain(&e, ing, it_end(&e), -1);

    /* the connection is killed under the ingester while more events arrive */
    const char *const p[] = {app};
    cr_assert_eq(nu_db_query(e.db,
                             "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                             " WHERE application_name = $1",
                             1, p, NULL, &eb),
                 NU_OK, "%s", nu_err_msg(&eb));
    it_splits(&e, "src", 5, 10);
    it_flush(&e);
    int failed = it_drain(&e, ing, it_end(&e), -1);
    nu_ingest_stats(ing, &st);
    cr_assert_geq(failed, 1, "the lost connection shows as a failed step");
    cr_assert_geq(st.db_errors, 1);
    cr_assert_eq(it_scalar(&e, "SELECT count(*) FROM splits WHERE job_id = $1"), 10);
    cr_assert_eq(it_scalar(&e, "SELECT splits_done FROM stages WHERE job_id = $1 AND"
                               " stage_id = 'src'"),
                 10);
    nu_ingest_destroy(ing);
    it_teardown(&e);
}
