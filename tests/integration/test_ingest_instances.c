/*
 * Integration tests of instance state in the store (src/coordinator/ingest_write.c and
 * launcher_db.c) against the real Kafka broker and PostgreSQL: the launcher's records and the
 * instances' own events, ingested late and in any order, never bring an ended process back to
 * `running`, and a stale event of an older process never ends a newer one.
 */
#include "integ.h"

#include "common/buf.h"
#include "common/job.h"
#include "coordinator/ingest.h"
#include "coordinator/launcher_int.h"
#include "coordinator/store.h"
#include "stage/events.h"

struct ii_env {
    char id[96], topic[NU_JOB_NAME_MAX];
    nu_db_t *db;
    rd_kafka_t *p;
    struct nu_job *job;
    nu_ingest_t *ing;
};

static void ii_setup(struct ii_env *e)
{
    struct nu_errbuf eb = {0};
    char spec[1024], errstr[256];
    snprintf(e->id, sizeof(e->id), "iinst-%ld-%lld", (long)getpid(), (long long)nu_it_now_ms());
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
    e->p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    cr_assert_not_null(e->p, "%s", errstr);
    nu_job_topic_events(e->job, e->topic, sizeof(e->topic));
    nu_it_create_topic(e->p, e->topic, 1);
    struct nu_ingest_conf c = {.brokers = nu_it_brokers(),
                               .db_url = nu_it_database_url(),
                               .batch_ms = 50,
                               .refresh_ms = 300,
                               .jobs_like = e->id};
    cr_assert_eq(nu_ingest_new(&c, &e->ing, &eb), NU_OK, "%s", nu_err_msg(&eb));
}

static void ii_teardown(struct ii_env *e)
{
    struct nu_errbuf eb = {0};
    nu_ingest_destroy(e->ing);
    nu_it_delete_topic(e->p, e->topic);
    cr_expect_eq(nu_store_job_delete(e->db, e->id, &eb), NU_OK, "%s", nu_err_msg(&eb));
    rd_kafka_destroy(e->p);
    nu_store_close(e->db);
    nu_job_destroy(e->job);
}

/* Produce an event of instance 0 of stage dbl as process `pid` at `ts` (unix ms). */
static void ii_event(struct ii_env *e, const char *type, int pid, int64_t ts, const char *reason)
{
    struct nu_event_origin o = {e->id, "dbl", 0};
    struct nu_buf b = {0};
    json_t *ev =
        strcmp(type, "metrics") == 0 ? nu_event_new(&o, type) : nu_event_instance(&o, type, reason);
    json_object_set_new(ev, "ts", json_integer(ts));
    if (pid > 0)
        json_object_set_new(ev, "pid", json_integer(pid));
    nu_event_dump(ev, &b);
    rd_kafka_resp_err_t err = rd_kafka_producev(
        e->p, RD_KAFKA_V_TOPIC(e->topic), RD_KAFKA_V_PARTITION(0), RD_KAFKA_V_KEY("dbl", 3),
        RD_KAFKA_V_VALUE(b.data, b.len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    cr_assert_eq(err, RD_KAFKA_RESP_ERR_NO_ERROR, "%s", rd_kafka_err2str(err));
    nu_buf_free(&b);
}

/* Ingest until the store's offset of the events topic reaches its end. */
static void ii_ingest_all(struct ii_env *e)
{
    struct nu_errbuf eb = {0};
    int64_t lo = 0, hi = 0;
    cr_assert_eq(rd_kafka_flush(e->p, NU_IT_TIMEOUT_MS), RD_KAFKA_RESP_ERR_NO_ERROR);
    cr_assert_eq(rd_kafka_query_watermark_offsets(e->p, e->topic, 0, &lo, &hi, 10000),
                 RD_KAFKA_RESP_ERR_NO_ERROR);
    int64_t deadline = nu_it_now_ms() + NU_IT_TIMEOUT_MS, next = -1;
    while (nu_it_now_ms() < deadline) {
        nu_db_res_t *res = NULL;
        nu_errbuf_clear(&eb);
        nu_ingest_step(e->ing, 200, &eb);
        const char *const params[] = {e->topic};
        cr_assert_eq(nu_db_query(e->db,
                                 "SELECT coalesce(max(next_offset), -1) FROM ingest_offsets"
                                 " WHERE topic = $1",
                                 1, params, &res, &eb),
                     NU_OK, "%s", nu_err_msg(&eb));
        next = nu_db_res_int(res, 0, 0);
        nu_db_res_free(res);
        if (next >= hi)
            return;
    }
    cr_assert_fail("ingested up to offset %lld of %lld", (long long)next, (long long)hi);
}

static void ii_row(struct ii_env *e, char *state, size_t len, int *pid)
{
    struct nu_errbuf eb = {0};
    nu_db_res_t *res = NULL;
    const char *const params[] = {e->id};
    cr_assert_eq(nu_db_query(e->db,
                             "SELECT state, coalesce(pid, 0) FROM instances"
                             " WHERE job_id = $1 AND stage_id = 'dbl' AND instance = 0",
                             1, params, &res, &eb),
                 NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(nu_db_res_rows(res), 1);
    snprintf(state, len, "%s", nu_db_res_get(res, 0, 0));
    *pid = (int)nu_db_res_int(res, 0, 1);
    nu_db_res_free(res);
}

TestSuite(ingest_instances, .timeout = 120);

typedef enum { II_SPAWNED, II_KILLED, II_START, II_STOP, II_METRICS } ii_op_t;

/*
 * One slot's history, written by the launcher (spawned, killed) and by the processes' events
 * (start, stop, metrics; ingested after the launcher's records). `at` names the step whose event
 * time an event reuses (-1: now), so late and repeated events can be replayed.
 */
Test(ingest_instances, state_is_monotonic_per_process)
{
    static const struct {
        ii_op_t op;
        int pid, at;
        const char *reason, *want;
        int want_pid;
    } steps[] = {
        {II_SPAWNED, 1001, -1, NULL, "running", 1001},
        {II_START, 1001, -1, NULL, "running", 1001},
        {II_KILLED, 1001, -1, "killed by signal 9", "crashed", 1001},
        /* the process's own start and metrics, ingested after it was seen dead */
        {II_START, 1001, 1, NULL, "crashed", 1001},
        {II_METRICS, 0, -1, NULL, "crashed", 1001},
        {II_START, 1001, -1, NULL, "crashed", 1001},
        /* the slot restarted: a stale stop of the old process does not end the new one */
        {II_SPAWNED, 1002, -1, NULL, "running", 1002},
        {II_STOP, 1001, 3, "stopped", "running", 1002},
        {II_START, 1001, 1, NULL, "running", 1002},
        {II_START, 1002, -1, NULL, "running", 1002},
        {II_METRICS, 0, -1, NULL, "running", 1002},
        {II_STOP, 1002, -1, "complete", "stopped", 1002},
        /* replays of the ended process's start, and of the launcher's record of it */
        {II_START, 1002, 9, NULL, "stopped", 1002},
        {II_SPAWNED, 1002, -1, NULL, "stopped", 1002},
        /* a later process of the slot starts it again */
        {II_START, 1003, -1, NULL, "running", 1003},
    };
    struct ii_env e = {0};
    struct nu_errbuf eb = {0};
    int64_t ts[sizeof(steps) / sizeof(steps[0])];
    ii_setup(&e);
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        char state[32];
        int pid = 0;
        usleep(20 * 1000); /* distinct, increasing times */
        ts[i] = steps[i].at >= 0 ? ts[steps[i].at] : nu_event_now_ms();
        nu_errbuf_clear(&eb);
        switch (steps[i].op) {
        case II_SPAWNED:
            cr_assert_eq(nu_launcher_db_spawned(e.db, e.id, "dbl", 0, steps[i].pid, "h", &eb),
                         NU_OK, "%s", nu_err_msg(&eb));
            break;
        case II_KILLED:
            cr_assert_eq(nu_launcher_db_exited(e.db, e.id, "dbl", 0, steps[i].pid, true,
                                               steps[i].reason, &eb),
                         NU_OK, "%s", nu_err_msg(&eb));
            break;
        case II_START:
            ii_event(&e, "instance_started", steps[i].pid, ts[i], NULL);
            ii_ingest_all(&e);
            break;
        case II_STOP:
            ii_event(&e, "instance_stopped", steps[i].pid, ts[i], steps[i].reason);
            ii_ingest_all(&e);
            break;
        case II_METRICS:
            ii_event(&e, "metrics", 0, ts[i], NULL);
            ii_ingest_all(&e);
            break;
        }
        ii_row(&e, state, sizeof(state), &pid);
        cr_expect_str_eq(state, steps[i].want, "step %zu", i);
        cr_expect_eq(pid, steps[i].want_pid, "step %zu", i);
    }
    ii_teardown(&e);
}

/* Error events land on their own instance's row: the newest 10, newest first. */
Test(ingest_instances, recent_errors_per_instance)
{
    struct ii_env e = {0};
    struct nu_errbuf eb = {0};
    ii_setup(&e);
    cr_assert_eq(nu_launcher_db_spawned(e.db, e.id, "dbl", 0, 2001, "h", &eb), NU_OK, "%s",
                 nu_err_msg(&eb));
    cr_assert_eq(nu_launcher_db_spawned(e.db, e.id, "dbl", 1, 2002, "h", &eb), NU_OK, "%s",
                 nu_err_msg(&eb));
    int64_t t0 = nu_event_now_ms();
    for (int k = 0; k < 12; k++) { /* 12 errors of instance 0, 1 of instance 1 */
        char msg[64], split[32];
        snprintf(msg, sizeof(msg), "division by zero #%d", k);
        snprintf(split, sizeof(split), "s%d", k);
        struct nu_event_origin o = {e.id, "dbl", k == 5 ? 1 : 0};
        json_t *ev = nu_event_error(&o, split, 1, "eval", msg, k == 0 ? "check the divisor" : NULL);
        json_object_set_new(ev, "ts", json_integer(t0 + k));
        struct nu_buf b = {0};
        nu_event_dump(ev, &b);
        cr_assert_eq(rd_kafka_producev(e.p, RD_KAFKA_V_TOPIC(e.topic), RD_KAFKA_V_PARTITION(0),
                                       RD_KAFKA_V_VALUE(b.data, b.len),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
        nu_buf_free(&b);
        if (k == 3)
            ii_ingest_all(&e); /* two batches: the list merges old and new */
    }
    ii_ingest_all(&e);
    json_t *insts = NULL;
    cr_assert_eq(nu_store_instances(e.db, e.id, &insts, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(json_array_size(insts), 2);
    json_t *r0 = json_object_get(json_array_get(insts, 0), "recent_errors");
    json_t *r1 = json_object_get(json_array_get(insts, 1), "recent_errors");
    cr_assert_eq(json_array_size(r0), 10, "instance 0 keeps its 10 newest of 11");
    cr_assert_eq(json_array_size(r1), 1);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(r0, 0), "message")),
                     "division by zero #11", "newest first");
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(r0, 9), "message")),
                     "division by zero #1", "#0 fell off the end");
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(r1, 0), "message")),
                     "division by zero #5");
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(r1, 0), "split")), "s5");
    json_decref(insts);
    ii_teardown(&e);
}
