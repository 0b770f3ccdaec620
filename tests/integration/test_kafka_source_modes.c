/*
 * test_kafka_source_modes.c — kafka_source beyond one-pass JSON through the real broker with
 * `nurion run`: Confluent-framed Avro values (written here with Avro C) are read with the given
 * writer schema, their schema id kept, the corrupt ones dead-lettered with the reason, and
 * kafka_sink writes framed values Avro C reads. Unbounded sources follow their topic while the
 * job runs — through SIGKILLed planners and stages, a "latest" start and a partition added —
 * every record exactly once, until SIGTERM ends the plan and the run exits 0 with its summary.
 */
#include "pipeline.h"

#include "stage/connectors.h"
#include "stage/kafka.h"

#include <avro.h>

#define NU_KM_ROWS 300

TestSuite(kafka_source_modes, .init = nu_connectors_register);

static const char *const nu_km_schema =
    "{\"type\":\"record\",\"name\":\"Reading\",\"fields\":["
    "{\"name\":\"id\",\"type\":\"long\"},{\"name\":\"name\",\"type\":\"string\"},"
    "{\"name\":\"score\",\"type\":[\"null\",\"double\"]}]}";

/* One framed value (magic 0, schema id, datum) into out; returns its length. */
static size_t nu_km_frame(uint32_t sid, int64_t id, char *out, size_t cap)
{
    avro_schema_t s = NULL;
    char name[32];
    cr_assert_eq(avro_schema_from_json_length(nu_km_schema, strlen(nu_km_schema), &s), 0);
    avro_value_iface_t *iface = avro_generic_class_from_schema(s);
    avro_value_t rec, f, br;
    cr_assert_eq(avro_generic_value_new(iface, &rec), 0);
    avro_value_get_by_name(&rec, "id", &f, NULL);
    avro_value_set_long(&f, id);
    snprintf(name, sizeof(name), "n%lld", (long long)id);
    avro_value_get_by_name(&rec, "name", &f, NULL);
    avro_value_set_string(&f, name);
    avro_value_get_by_name(&rec, "score", &f, NULL);
    avro_value_set_branch(&f, id % 2 ? 1 : 0, &br);
    if (id % 2)
        avro_value_set_double(&br, (double)id / 2);
    out[0] = 0;
    out[1] = (char)(sid >> 24);
    out[2] = (char)(sid >> 16);
    out[3] = (char)(sid >> 8);
    out[4] = (char)sid;
    avro_writer_t w = avro_writer_memory(out + 5, (int64_t)(cap - 5));
    cr_assert_eq(avro_value_write(w, &rec), 0, "%s", avro_strerror());
    size_t len = 5 + (size_t)avro_writer_tell(w);
    avro_writer_free(w);
    avro_value_decref(&rec);
    avro_value_iface_decref(iface);
    avro_schema_decref(s);
    return len;
}

static rd_kafka_t *nu_km_producer(void)
{
    struct nu_errbuf eb;
    rd_kafka_t *p = NULL;
    nu_errbuf_clear(&eb);
    cr_assert_eq(
        nu_kafka_client_new(NU_KAFKA_PRODUCER, nu_it_brokers(), NULL, NULL, NULL, 0, &p, &eb),
        NU_OK, "%s", nu_err_msg(&eb));
    return p;
}

static void nu_km_topic(const char *topic, int parts)
{
    struct nu_errbuf eb;
    rd_kafka_t *admin = NULL;
    struct nu_kafka_topic_spec spec = {.name = topic, .partitions = parts, .replication = -1};
    nu_errbuf_clear(&eb);
    cr_assert_eq(
        nu_kafka_client_new(NU_KAFKA_ADMIN, nu_it_brokers(), NULL, NULL, NULL, 0, &admin, &eb),
        NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(nu_kafka_topics_create(admin, &spec, 1, NU_IT_TIMEOUT_MS, &eb), NU_OK, "%s",
                 nu_err_msg(&eb));
    rd_kafka_destroy(admin);
}

static void nu_km_send(rd_kafka_t *p, const char *topic, const void *v, size_t len)
{
    cr_assert_eq(rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_VALUE((void *)v, len),
                                   RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                 RD_KAFKA_RESP_ERR_NO_ERROR);
}

static const char *nu_km_confluent_tmpl =
    "{\"job_id\":\"@ID@\",\"format\":\"avro\",\"stages\":["
    "{\"id\":\"src\",\"operator\":\"kafka_source\",\"partitions\":2,\"config\":{"
    "\"topic\":\"@ID@-in\",\"format\":\"avro\",\"framing\":\"confluent\",\"split_records\":40,"
    "\"schema\":{\"type\":\"record\",\"name\":\"Reading\",\"fields\":["
    "{\"name\":\"id\",\"type\":\"long\"},{\"name\":\"name\",\"type\":\"string\"},"
    "{\"name\":\"score\",\"type\":[\"null\",\"double\"]}]}}},"
    "{\"id\":\"out\",\"operator\":\"file_sink\",\"config\":{\"path\":\"@OUT@\","
    "\"format\":\"jsonl\"},\"upstream\":[\"src\"]},"
    "{\"id\":\"framed\",\"operator\":\"kafka_sink\",\"config\":{\"topic\":\"@ID@-framed\","
    "\"format\":\"avro\",\"framing\":\"confluent\",\"schema_id\":258,\"partitions\":1},"
    "\"upstream\":[\"src\"]}]}";

/* A record of the framed sink: header 0, 0, 0, 1, 2 (id 258), then the datum, whose first
 * fields are the value columns (read with their schema; the metadata columns follow). */
static void nu_km_framed_record(const rd_kafka_message_t *m, void *ctx)
{
    unsigned char *seen = ctx;
    const unsigned char *v = m->payload;
    avro_schema_t s = NULL;
    avro_value_t rec, f;
    int64_t id = -1;
    cr_assert(m->len > 5 && memcmp(v, "\0\0\0\x01\x02", 5) == 0, "bad framing");
    cr_assert_eq(avro_schema_from_json_length(nu_km_schema, strlen(nu_km_schema), &s), 0);
    avro_value_iface_t *iface = avro_generic_class_from_schema(s);
    cr_assert_eq(avro_generic_value_new(iface, &rec), 0);
    avro_reader_t rd = avro_reader_memory((const char *)v + 5, (int64_t)m->len - 5);
    cr_assert_eq(avro_value_read(rd, &rec), 0, "%s", avro_strerror());
    avro_value_get_by_name(&rec, "id", &f, NULL);
    avro_value_get_long(&f, &id);
    cr_assert(id >= 0 && id < NU_KM_ROWS);
    seen[id]++;
    avro_reader_free(rd);
    avro_value_decref(&rec);
    avro_value_iface_decref(iface);
    avro_schema_decref(s);
}

struct nu_km_dlq {
    int magic, shorty, datum, other;
};

static void nu_km_dlq_record(const rd_kafka_message_t *m, void *ctx)
{
    struct nu_km_dlq *d = ctx;
    char why[1024];
    nu_it_header(m, "nurion-error", why, sizeof(why));
    if (strstr(why, "magic byte 7, expected 0"))
        d->magic++;
    else if (strstr(why, "shorter than its 5-byte header"))
        d->shorty++;
    else if (strstr(why, "corrupt Avro value"))
        d->datum++;
    else {
        cr_log_warn("unexpected dead letter: %s", why);
        d->other++;
    }
}

Test(kafka_source_modes, confluent_framed_avro_rows_and_dead_letters, .timeout = 180)
{
    struct nu_it_job j;
    char in[256], dlq[256], v[256];
    unsigned char seen[NU_KM_ROWS] = {0};
    struct nu_km_dlq d = {0};

    nu_it_job_make(&j, "kconf", nu_km_confluent_tmpl);
    snprintf(in, sizeof(in), "%s-in", j.id);
    snprintf(dlq, sizeof(dlq), "nurion.%s.src.dlq", j.id);
    nu_km_topic(in, 2);
    rd_kafka_t *p = nu_km_producer();
    for (int i = 0; i < NU_KM_ROWS; i++) {
        size_t n = nu_km_frame(77 + (uint32_t)(i % 3), i, v, sizeof(v));
        nu_km_send(p, in, v, n);
        if (i == 10) { /* wrong magic byte */
            v[0] = 7;
            nu_km_send(p, in, v, n);
        } else if (i == 20) { /* shorter than the header */
            nu_km_send(p, in, v, 3);
        } else if (i == 30) { /* the datum is cut short */
            nu_km_send(p, in, v, n - 2);
        }
    }
    cr_assert_eq(rd_kafka_flush(p, NU_IT_TIMEOUT_MS), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(p);

    pid_t pid = nu_it_run_start(&j, NULL);
    int rc = nu_it_run_wait(&j, pid, 150000);
    cr_assert_eq(rc, 0, "nurion run exited %d (log %s)", rc, j.log);
    json_t *rows = nu_it_sink_rows(j.out);
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        json_int_t id = json_integer_value(json_object_get(row, "id"));
        cr_assert(id >= 0 && id < NU_KM_ROWS, "bad id %lld", (long long)id);
        char name[32];
        snprintf(name, sizeof(name), "n%lld", (long long)id);
        cr_assert_str_eq(json_string_value(json_object_get(row, "name")), name);
        json_t *sc = json_object_get(row, "score");
        if (id % 2)
            cr_assert_float_eq(json_real_value(sc), (double)id / 2, 1e-9);
        else
            cr_assert(json_is_null(sc) || !sc, "id %lld: score should be null", (long long)id);
        cr_assert_eq(json_integer_value(json_object_get(row, "schema_id")), 77 + id % 3);
        seen[id]++;
    }
    for (int k = 0; k < NU_KM_ROWS; k++)
        cr_assert_eq(seen[k], 1, "id %d read %d times", k, seen[k]);
    cr_assert_eq(json_array_size(rows), NU_KM_ROWS);
    json_decref(rows);
    /* the framed sink wrote every row once, readable by Avro C */
    char framed[256];
    memset(seen, 0, sizeof(seen));
    snprintf(framed, sizeof(framed), "%s-framed", j.id);
    cr_assert_eq(nu_it_read_topic(framed, nu_km_framed_record, seen), NU_KM_ROWS);
    for (int k = 0; k < NU_KM_ROWS; k++)
        cr_assert_eq(seen[k], 1, "id %d framed %d times", k, seen[k]);
    cr_assert_eq(nu_it_read_topic(dlq, nu_km_dlq_record, &d), 3);
    cr_assert_eq(d.magic, 1);
    cr_assert_eq(d.shorty, 1);
    cr_assert_eq(d.datum, 1);
}

/* --- unbounded mode --------------------------------------------------------------------------- */

#define NU_KU_BATCH 150
#define NU_KU_ROWS  (3 * NU_KU_BATCH)

static const char *nu_ku_tmpl =
    "{\"job_id\":\"@ID@\",\"format\":\"avro\",\"stages\":["
    "{\"id\":\"src\",\"operator\":\"kafka_source\",\"partitions\":2,\"config\":{"
    "\"topic\":\"@ID@-in\",\"format\":\"json\",\"mode\":\"unbounded\",\"split_records\":40,"
    "\"plan_interval_ms\":200,\"schema\":[[\"id\",\"int64\"]]}},"
    "{\"id\":\"dbl\",\"operator\":\"map\",\"config\":{\"columns\":{\"y\":\"id * 2\"}},"
    "\"upstream\":[\"src\"]},"
    "{\"id\":\"out\",\"operator\":\"kafka_sink\",\"config\":{\"topic\":\"@ID@-out\","
    "\"format\":\"json\",\"partitions\":2},\"upstream\":[\"dbl\"]}]}";

struct nu_ku_seen {
    unsigned char count[NU_KU_ROWS];
    long bad;
};

static void nu_ku_record(const rd_kafka_message_t *m, void *ctx)
{
    struct nu_ku_seen *s = ctx;
    json_t *o = json_loadb(m->payload, m->len, 0, NULL);
    json_int_t id = o ? json_integer_value(json_object_get(o, "id")) : -1;
    if (!o || id < 0 || id >= NU_KU_ROWS || json_integer_value(json_object_get(o, "y")) != 2 * id)
        s->bad++;
    else
        s->count[id]++;
    json_decref(o);
}

/* Records ids [from, to) as JSON values. */
static void nu_ku_produce(const char *topic, int from, int to)
{
    rd_kafka_t *p = nu_km_producer();
    char v[64];
    for (int i = from; i < to; i++) {
        int n = snprintf(v, sizeof(v), "{\"id\":%d}", i);
        nu_km_send(p, topic, v, (size_t)n);
    }
    cr_assert_eq(rd_kafka_flush(p, NU_IT_TIMEOUT_MS), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(p);
}

/* Does `topic` exist with its partitions known? */
static bool nu_ku_topic_ready(const char *topic)
{
    rd_kafka_t *p = nu_km_producer();
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(p, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    bool ok = rd_kafka_metadata(p, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
              md->topic_cnt == 1 && md->topics[0].err == 0 && md->topics[0].partition_cnt > 0;
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(p);
    return ok;
}

/* Wait until the output holds every id below `want` (fails the test after 90 s). */
static void nu_ku_wait(const char *topic, int want, struct nu_ku_seen *seen)
{
    int64_t deadline = nu_it_now_ms() + 90000;
    for (;;) {
        int have = 0;
        memset(seen, 0, sizeof(*seen));
        if (nu_ku_topic_ready(topic)) {
            nu_it_read_topic(topic, nu_ku_record, seen);
            for (int i = 0; i < want; i++)
                have += seen->count[i] > 0;
        }
        if (have == want)
            return;
        cr_assert(nu_it_now_ms() < deadline, "only %d of %d ids arrived in %s", have, want, topic);
        usleep(500 * 1000);
    }
}

/* SIGKILL the planner child of runner `runner`; false when none runs. */
static bool nu_ku_kill_planner(pid_t runner)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    bool killed = false;
    while (d && (e = readdir(d)) && !killed) {
        char path[64], buf[4096];
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end != '\0' || pid <= 0)
            continue;
        snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
        int fd = open(path, O_RDONLY);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        bool plan = false;
        for (ssize_t i = 0; i < n; i += (ssize_t)strlen(buf + i) + 1)
            plan |= strcmp(buf + i, "--plan") == 0;
        if (n > 0 && plan && nu_it_is_stage_of((pid_t)pid, runner, "src"))
            killed = kill((pid_t)pid, SIGKILL) == 0;
    }
    if (d)
        closedir(d);
    return killed;
}

Test(kafka_source_modes, unbounded_source_follows_the_topic_through_kills_until_stopped,
     .timeout = 400)
{
    struct nu_it_job j;
    char in[256], outt[256];
    static struct nu_ku_seen seen;
    unsigned seed = 11;

    nu_it_job_make(&j, "kunb", nu_ku_tmpl);
    snprintf(in, sizeof(in), "%s-in", j.id);
    snprintf(outt, sizeof(outt), "%s-out", j.id);
    nu_km_topic(in, 2);
    nu_ku_produce(in, 0, NU_KU_BATCH);
    const char *verbose[] = {NULL};
    pid_t pid = nu_it_run_start(&j, verbose);

    /* the first records arrive, and so do records produced while the job runs */
    nu_ku_wait(outt, NU_KU_BATCH, &seen);
    nu_ku_produce(in, NU_KU_BATCH, 2 * NU_KU_BATCH);
    nu_ku_wait(outt, 2 * NU_KU_BATCH, &seen);

    /* the planner and a sink instance die; records produced meanwhile still arrive once */
    cr_assert(nu_ku_kill_planner(pid), "no planner process found (log %s)", j.log);
    cr_assert(nu_it_kill_one(pid, "out", &seed), "no sink instance found");
    nu_ku_produce(in, 2 * NU_KU_BATCH, NU_KU_ROWS);
    nu_ku_wait(outt, NU_KU_ROWS, &seen);

    /* SIGTERM ends the plan; the job drains and exits 0 with its summary */
    kill(pid, SIGTERM);
    int rc = nu_it_run_wait(&j, pid, 120000);
    cr_assert_eq(rc, 0, "nurion run exited %d (log %s)", rc, j.log);
    memset(&seen, 0, sizeof(seen));
    nu_it_read_topic(outt, nu_ku_record, &seen);
    cr_assert_eq(seen.bad, 0);
    for (int i = 0; i < NU_KU_ROWS; i++)
        cr_assert_eq(seen.count[i], 1, "id %d written %d times", i, seen.count[i]);
    FILE *f = fopen(j.log, "r");
    char line[4096];
    bool summary = false;
    while (f && fgets(line, sizeof(line), f))
        summary |= strstr(line, "completed in") != NULL;
    if (f)
        fclose(f);
    cr_assert(summary, "no summary in %s", j.log);
}

/* Raise `topic` to `total` partitions. */
static void nu_ku_add_partitions(const char *topic, int total)
{
    char errstr[256];
    rd_kafka_t *p = nu_km_producer();
    rd_kafka_NewPartitions_t *np =
        rd_kafka_NewPartitions_new(topic, (size_t)total, errstr, sizeof(errstr));
    cr_assert_not_null(np, "%s", errstr);
    rd_kafka_queue_t *q = rd_kafka_queue_new(p);
    rd_kafka_CreatePartitions(p, &np, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, NU_IT_TIMEOUT_MS);
    cr_assert_not_null(ev, "no answer to CreatePartitions");
    const rd_kafka_CreatePartitions_result_t *res = rd_kafka_event_CreatePartitions_result(ev);
    cr_assert_not_null(res, "%s", rd_kafka_event_error_string(ev));
    size_t n = 0;
    const rd_kafka_topic_result_t **tr = rd_kafka_CreatePartitions_result_topics(res, &n);
    cr_assert_eq(n, 1);
    cr_assert_eq(rd_kafka_topic_result_error(tr[0]), RD_KAFKA_RESP_ERR_NO_ERROR, "%s",
                 rd_kafka_topic_result_error_string(tr[0]));
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewPartitions_destroy(np);
    rd_kafka_destroy(p);
}

/* Records ids [from, to) into partition `part`. */
static void nu_ku_produce_to(const char *topic, int32_t part, int from, int to)
{
    rd_kafka_t *p = nu_km_producer();
    char v[64];
    for (int i = from; i < to; i++) {
        int n = snprintf(v, sizeof(v), "{\"id\":%d}", i);
        cr_assert_eq(rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(part),
                                       RD_KAFKA_V_VALUE(v, (size_t)n),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    cr_assert_eq(rd_kafka_flush(p, NU_IT_TIMEOUT_MS), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(p);
}

static const char *nu_ku_latest_tmpl =
    "{\"job_id\":\"@ID@\",\"format\":\"avro\",\"stages\":["
    "{\"id\":\"src\",\"operator\":\"kafka_source\",\"partitions\":2,\"config\":{"
    "\"topic\":\"@ID@-in\",\"format\":\"json\",\"mode\":\"unbounded\",\"start\":\"latest\","
    "\"split_records\":25,\"plan_interval_ms\":100,\"schema\":[[\"id\",\"int64\"]]}},"
    "{\"id\":\"dbl\",\"operator\":\"map\",\"config\":{\"columns\":{\"y\":\"id * 2\"}},"
    "\"upstream\":[\"src\"]},"
    "{\"id\":\"out\",\"operator\":\"kafka_sink\",\"config\":{\"topic\":\"@ID@-out\","
    "\"format\":\"json\",\"partitions\":2},\"upstream\":[\"dbl\"]}]}";

Test(kafka_source_modes, unbounded_latest_start_survives_planner_restarts_and_new_partitions,
     .timeout = 400)
{
    struct nu_it_job j;
    char in[256], outt[256], plan[256];
    static struct nu_ku_seen seen;

    nu_it_job_make(&j, "klat", nu_ku_latest_tmpl);
    snprintf(in, sizeof(in), "%s-in", j.id);
    snprintf(outt, sizeof(outt), "%s-out", j.id);
    snprintf(plan, sizeof(plan), "nurion.%s.src.plan", j.id);
    nu_km_topic(in, 2);
    nu_ku_produce(in, 1000, 1040); /* before the start: "latest" leaves them out */
    pid_t pid = nu_it_run_start(&j, NULL);
    /* the first pass recorded where each partition starts */
    int64_t deadline = nu_it_now_ms() + 60000;
    while (!(nu_ku_topic_ready(plan) && nu_it_read_topic(plan, NULL, NULL) >= 2)) {
        cr_assert(nu_it_now_ms() < deadline, "no plan written (log %s)", j.log);
        usleep(200 * 1000);
    }
    /* a planner restarted now must not take a new "latest" */
    cr_assert(nu_ku_kill_planner(pid), "no planner process found (log %s)", j.log);
    nu_ku_produce(in, 0, 100);
    nu_ku_wait(outt, 100, &seen);
    /* a partition added while the job runs is read from its start */
    nu_ku_add_partitions(in, 3);
    nu_ku_produce_to(in, 2, 100, 160);
    nu_ku_wait(outt, 160, &seen);

    kill(pid, SIGTERM);
    int rc = nu_it_run_wait(&j, pid, 120000);
    cr_assert_eq(rc, 0, "nurion run exited %d (log %s)", rc, j.log);
    memset(&seen, 0, sizeof(seen));
    nu_it_read_topic(outt, nu_ku_record, &seen);
    cr_assert_eq(seen.bad, 0, "records from before the start were read");
    for (int i = 0; i < 160; i++)
        cr_assert_eq(seen.count[i], 1, "id %d written %d times", i, seen.count[i]);
}
