/*
 * bench_coordinator.c — lineage ingestion into PostgreSQL, with its baseline measured in the same
 * run:
 *   (a) the baseline: the same lineage rows written straight into the splits table with one
 *       libpq COPY (no Kafka, no JSON, no per-batch bookkeeping);
 *   (b) the ingester (src/coordinator/ingest*.c): N split_done events already in a job's events
 *       topic, timed from the first step until every row is in PostgreSQL.
 * Each run uses a database of its own on the server of NURION_DATABASE_URL, dropped at the end.
 * Needs NURION_BROKERS and NURION_DATABASE_URL (scripts/services up).
 * Usage: nurion-bench-coordinator [EVENTS] [BATCH]
 */
#include "common/buf.h"
#include "common/job.h"
#include "common/mem.h"
#include "coordinator/ingest.h"
#include "coordinator/store.h"
#include "stage/events.h"
#include "stage/kafka.h"

#include <libpq-fe.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BENCH_PARTITIONS 4

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *why)
{
    fprintf(stderr, "bench-coordinator: %s: %s\n", what, why ? why : "");
    exit(1);
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0')
        die(name, "not set (scripts/services up, then . .cache/services.env)");
    return v;
}

static void sql(nu_db_t *db, const char *q)
{
    struct nu_errbuf eb = {0};
    if (nu_db_exec(db, q, &eb))
        die(q, nu_err_msg(&eb));
}

static int64_t scalar(nu_db_t *db, const char *q, const char *param)
{
    struct nu_errbuf eb = {0};
    nu_db_res_t *res = NULL;
    const char *const params[] = {param};
    if (nu_db_query(db, q, 1, params, &res, &eb))
        die(q, nu_err_msg(&eb));
    int64_t v = nu_db_res_int(res, 0, 0);
    nu_db_res_free(res);
    return v;
}

static struct nu_job *job_insert(nu_db_t *db, const char *id)
{
    char spec[512];
    struct nu_job *job = NULL;
    struct nu_errbuf eb = {0};
    snprintf(spec, sizeof(spec),
             "{\"job_id\":\"%s\",\"stages\":["
             "{\"id\":\"src\",\"operator\":\"generate\",\"partitions\":%d},"
             "{\"id\":\"dbl\",\"operator\":\"map\",\"upstream\":[\"src\"],\"partitions\":%d}]}",
             id, BENCH_PARTITIONS, BENCH_PARTITIONS);
    if (nu_job_parse(spec, strlen(spec), NULL, &job, NULL, &eb) ||
        nu_store_job_insert(db, job, &eb))
        die("job", nu_err_msg(&eb));
    return job;
}

/* (a) COPY of n lineage rows of stage dbl of job `id`, as the ingester would write them. */
static double bench_copy(const char *url, const char *id, long n)
{
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK)
        die("connect", PQerrorMessage(c));
    struct nu_buf b = {0};
    double t0 = now_s();
    PGresult *r = PQexec(c, "COPY splits (job_id, split_id, stage_id, parents, rows_in, rows_out,"
                            " bytes_in, bytes_out, ms, instance, topic, \"partition\", \"offset\","
                            " ts) FROM STDIN");
    if (PQresultStatus(r) != PGRES_COPY_IN)
        die("COPY", PQerrorMessage(c));
    PQclear(r);
    for (long i = 0; i < n; i++) {
        char line[512];
        int len = snprintf(line, sizeof(line),
                           "%s\td%ld\tdbl\t{s%ld}\t10\t20\t100\t200\t1.5\t0\tt\t%ld\t%ld\t"
                           "2026-01-01 00:00:00+00\n",
                           id, i, i, i % BENCH_PARTITIONS, i);
        nu_buf_append(&b, line, (size_t)len);
        if (b.len > (1 << 20) || i == n - 1) {
            if (PQputCopyData(c, (const char *)b.data, (int)b.len) != 1)
                die("COPY data", PQerrorMessage(c));
            b.len = 0;
        }
    }
    if (PQputCopyEnd(c, NULL) != 1)
        die("COPY end", PQerrorMessage(c));
    r = PQgetResult(c);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        die("COPY result", PQerrorMessage(c));
    PQclear(r);
    double t = now_s() - t0;
    nu_buf_free(&b);
    PQfinish(c);
    return t;
}

/* The events: n split_done events of stage dbl, spread over the topic's partitions. */
static size_t produce(const char *brokers, const char *id, const char *topic, long n)
{
    size_t bytes = 0;
    struct nu_errbuf eb = {0};
    rd_kafka_t *p = NULL;
    struct nu_buf b = {0};
    struct nu_event_origin o = {id, "dbl", 0};
    if (nu_kafka_client_new(NU_KAFKA_PRODUCER, brokers, NULL, NULL, NULL, 0, &p, &eb))
        die("producer", nu_err_msg(&eb));
    for (long i = 0; i < n; i++) {
        char split[32], parent[32];
        snprintf(split, sizeof(split), "d%ld", i);
        snprintf(parent, sizeof(parent), "s%ld", i);
        json_t *ev = nu_event_split_done(&o, split, parent, 10, 20, 100, 200, 1.5, "t",
                                         (int32_t)(i % BENCH_PARTITIONS), i);
        nu_event_dump(ev, &b); /* takes the reference */
        bytes += b.len;
        rd_kafka_resp_err_t err;
        while ((err = rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic),
                                        RD_KAFKA_V_PARTITION((int32_t)(i % BENCH_PARTITIONS)),
                                        RD_KAFKA_V_VALUE(b.data, b.len),
                                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                        RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(p, 10);
        if (err)
            die("produce", rd_kafka_err2str(err));
        rd_kafka_poll(p, 0);
    }
    if (rd_kafka_flush(p, 60000))
        die("flush", "timed out");
    nu_buf_free(&b);
    rd_kafka_destroy(p);
    return bytes;
}

/* (b) the ingester, from its creation until the store holds n rows of the job. */
static double bench_ingest(const char *brokers, const char *url, nu_db_t *db, const char *id,
                           long n, int batch, uint64_t *batches)
{
    struct nu_errbuf eb = {0};
    nu_ingest_t *ing = NULL;
    struct nu_ingest_stats st = {0};
    struct nu_ingest_conf c = {
        .brokers = brokers, .db_url = url, .batch_max = batch, .jobs_like = id};
    double t0 = now_s();
    if (nu_ingest_new(&c, &ing, &eb))
        die("ingester", nu_err_msg(&eb));
    while ((long)st.events < n) {
        nu_errbuf_clear(&eb);
        nu_err_t err = nu_ingest_step(ing, 500, &eb);
        if (err && err != NU_ERR_DB)
            die("ingest step", nu_err_msg(&eb));
        nu_ingest_stats(ing, &st);
        if (now_s() - t0 > 600)
            die("ingest", "not done within 600 s");
    }
    double t = now_s() - t0;
    *batches = st.batches;
    nu_ingest_destroy(ing);
    if (scalar(db, "SELECT count(*) FROM splits WHERE job_id = $1", id) != n)
        die("ingest", "row count differs from the events produced");
    return t;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 100000;
    int batch = argc > 2 ? atoi(argv[2]) : NU_INGEST_DEFAULT_BATCH;
    if (n <= 0 || batch <= 0 || batch > NU_INGEST_MAX_BATCH)
        die("usage", "nurion-bench-coordinator [EVENTS] [BATCH]");
    const char *brokers = env("NURION_BROKERS"), *base = env("NURION_DATABASE_URL");
    const char *slash = strrchr(base, '/');
    if (slash == NULL || slash < base + 13)
        die("NURION_DATABASE_URL", "no database name in the URL");
    char dbname[64], url[512], q[160], copy_id[64], ing_id[64], topic[NU_JOB_NAME_MAX];
    snprintf(dbname, sizeof(dbname), "nubench_coord_%ld", (long)getpid());
    snprintf(url, sizeof(url), "%.*s/%s", (int)(slash - base), base, dbname);
    snprintf(copy_id, sizeof(copy_id), "bcopy-%ld", (long)getpid());
    snprintf(ing_id, sizeof(ing_id), "bingest-%ld", (long)getpid());

    struct nu_errbuf eb = {0};
    nu_db_t *admin_db = NULL, *db = NULL;
    if (nu_db_connect(base, 1, &admin_db, &eb))
        die("connect", nu_err_msg(&eb));
    snprintf(q, sizeof(q), "CREATE DATABASE %s", dbname);
    sql(admin_db, q);
    if (nu_store_connect(url, &db, &eb) || nu_store_migrate(db, &eb))
        die("store", nu_err_msg(&eb));
    struct nu_job *jc = job_insert(db, copy_id), *ji = job_insert(db, ing_id);

    double t_copy = bench_copy(url, copy_id, n);

    rd_kafka_t *admin = NULL;
    if (nu_kafka_client_new(NU_KAFKA_ADMIN, brokers, NULL, NULL, NULL, 0, &admin, &eb))
        die("admin", nu_err_msg(&eb));
    nu_job_topic_events(ji, topic, sizeof(topic));
    struct nu_kafka_topic_spec ts = {topic, BENCH_PARTITIONS, -1, NULL};
    if (nu_kafka_topics_create(admin, &ts, 1, 30000, &eb))
        die("topic", nu_err_msg(&eb));
    double t_p0 = now_s();
    size_t bytes = produce(brokers, ing_id, topic, n);
    double t_produce = now_s() - t_p0;
    uint64_t batches = 0;
    double t_ing = bench_ingest(brokers, url, db, ing_id, n, batch, &batches);

    printf("%ld lineage rows (split_done events of %zu bytes on average), at most %d events per "
           "ingest transaction, %d partitions. The baseline writes the `splits` rows only; the "
           "ingester also parses the JSON, writes `split_edges`, the stage counters and its "
           "offsets, and its time includes creating the consumer.\n\n",
           n, bytes / (size_t)n, batch, BENCH_PARTITIONS);
    printf("| path | seconds | rows/s | vs baseline |\n|---|---:|---:|---:|\n");
    printf("| libpq COPY into `splits` (baseline) | %.2f | %.0f | 1.00 |\n", t_copy,
           (double)n / t_copy);
    printf("| ingester: events topic -> `splits` (%" PRIu64
           " transactions) | %.2f | %.0f | %.2f |\n",
           batches, t_ing, (double)n / t_ing, t_copy / t_ing);
    printf("\nProducing the events (not part of either figure) took %.2f s.\n", t_produce);

    const char *names[] = {topic};
    nu_kafka_topics_delete(admin, names, 1, 30000, &eb);
    rd_kafka_destroy(admin);
    nu_job_destroy(jc);
    nu_job_destroy(ji);
    nu_store_close(db);
    snprintf(q, sizeof(q), "DROP DATABASE IF EXISTS %s WITH (FORCE)", dbname);
    sql(admin_db, q);
    nu_db_close(admin_db);
    return 0;
}
