/*
 * bench_stage.c — throughput of the stage runtime against the broker, with its baseline measured
 * in the same run:
 *   (a) the limit: a minimal librdkafka consume -> produce pass-through of the same records, in
 *       transactions committed every 100 ms with the offsets, no decoding;
 *   (b) an identity stage (map {}), exactly-once;          (b)/(a) and (b)/(c) are reported
 *   (c) the same, at-least-once;
 *   (d) a 4-stage pipeline (generate -> map -> filter -> file_sink), one process per stage;
 *   (e) peak RSS of a stage process and the time from exec to its first split done.
 * Needs NURION_BROKERS (scripts/services up). Usage: nurion-bench-stage [ROWS] [SPLIT_ROWS]
 */
#include "common/job.h"
#include "common/log.h"
#include "common/mem.h"
#include "operators/registry.h"
#include "stage/kafka.h"
#include "stage/planner.h"
#include "stage/stage.h"

#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define ROUNDS 3

/* The median of the n (at most ROUNDS) values of v. */
static double median(const double *v, int n)
{
    double t[ROUNDS];
    for (int i = 0; i < n; i++) {
        int k = i;
        for (; k > 0 && t[k - 1] > v[i]; k--)
            t[k] = t[k - 1];
        t[k] = v[i];
    }
    return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const struct nu_errbuf *eb)
{
    fprintf(stderr, "bench-stage: %s: %s\n", what, eb ? nu_err_msg(eb) : "");
    exit(1);
}

static struct nu_job *job_new(const char *spec)
{
    struct nu_job *job = NULL;
    struct nu_errbuf eb;
    nu_errbuf_clear(&eb);
    if (nu_job_parse(spec, strlen(spec), nu_registry_validator(), &job, NULL, &eb))
        die("job", &eb);
    return job;
}

static void plan(const char *brokers, struct nu_job *job)
{
    struct nu_errbuf eb;
    rd_kafka_t *admin = NULL;
    nu_errbuf_clear(&eb);
    if (nu_kafka_client_new(NU_KAFKA_ADMIN, brokers, NULL, NULL, NULL, 0, &admin, &eb) ||
        nu_plan_topics(job, admin, 30000, &eb) || nu_plan_sources(job, brokers, NULL, 0, NULL, &eb))
        die("plan", &eb);
    rd_kafka_destroy(admin);
}

/* Run one stage in this process until it completes; returns seconds. */
static double run_stage(const char *brokers, struct nu_job *job, const char *stage,
                        struct nu_stage_stats *stats)
{
    static volatile sig_atomic_t stop;
    struct nu_stage_opts o;
    struct nu_errbuf eb;
    size_t idx;
    nu_errbuf_clear(&eb);
    nu_stage_opts_init(&o);
    o.brokers = brokers;
    o.metrics_interval_ms = 0;
    nu_job_stage_find(job, stage, &idx);
    double t0 = now_s();
    if (nu_stage_run(job, idx, &o, &stop, stats, &eb))
        die(stage, &eb);
    return now_s() - t0;
}

/* (a): copy every record of `in` to `out` exactly once, as a stage would, without decoding. */
static double passthrough(const char *brokers, const char *in, const char *out, int partitions,
                          long *records)
{
    struct nu_errbuf eb;
    rd_kafka_t *c = NULL, *p = NULL, *admin = NULL;
    char group[256], txn[256];
    static const struct nu_kafka_prop eof[] = {{"enable.partition.eof", "true"}};
    struct nu_kafka_topic_spec spec = {.name = out, .partitions = partitions, .replication = -1};
    nu_errbuf_clear(&eb);
    snprintf(group, sizeof(group), "%s.raw", out);
    snprintf(txn, sizeof(txn), "%s.raw.0", out);
    if (nu_kafka_client_new(NU_KAFKA_ADMIN, brokers, NULL, NULL, NULL, 0, &admin, &eb) ||
        nu_kafka_topics_create(admin, &spec, 1, 30000, &eb) ||
        nu_kafka_client_new(NU_KAFKA_CONSUMER, brokers, group, NULL, eof, 1, &c, &eb) ||
        nu_kafka_client_new(NU_KAFKA_TXN_PRODUCER, brokers, NULL, txn, NULL, 0, &p, &eb) ||
        nu_kafka_err_take(rd_kafka_init_transactions(p, 30000), "init", &eb))
        die("pass-through setup", &eb);
    rd_kafka_poll_set_consumer(c);
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, in, RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(c, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    int eofs = 0;
    bool in_txn = false;
    double t0 = now_s(), txn_t = 0;
    int64_t *next = nu_xcalloc((size_t)partitions, sizeof(*next));
    while (eofs < partitions) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (m && m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eofs++;
        } else if (m && !m->err) {
            if (!in_txn) {
                nu_kafka_err_take(rd_kafka_begin_transaction(p), "begin", &eb);
                in_txn = true;
                txn_t = now_s();
            }
            rd_kafka_headers_t *h = NULL;
            rd_kafka_headers_t *hc = NULL;
            if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR)
                hc = rd_kafka_headers_copy(h);
            rd_kafka_resp_err_t rerr;
            while ((rerr = rd_kafka_producev(p, RD_KAFKA_V_TOPIC(out),
                                             RD_KAFKA_V_KEY(m->key, m->key_len),
                                             RD_KAFKA_V_VALUE(m->payload, m->len),
                                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                             RD_KAFKA_V_HEADERS(hc ? hc : rd_kafka_headers_new(0)),
                                             RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll(p, 10);
            next[m->partition] = m->offset + 1;
            (*records)++;
        }
        if (m)
            rd_kafka_message_destroy(m);
        if (in_txn && (now_s() - txn_t >= 0.1 || eofs >= partitions)) {
            rd_kafka_topic_partition_list_t *offs = rd_kafka_topic_partition_list_new(partitions);
            for (int i = 0; i < partitions; i++)
                if (next[i] > 0)
                    rd_kafka_topic_partition_list_add(offs, in, i)->offset = next[i];
            rd_kafka_consumer_group_metadata_t *md = rd_kafka_consumer_group_metadata(c);
            if (nu_kafka_err_take(rd_kafka_send_offsets_to_transaction(p, offs, md, 30000),
                                  "send offsets", &eb) ||
                nu_kafka_err_take(rd_kafka_commit_transaction(p, 30000), "commit", &eb))
                die("pass-through", &eb);
            rd_kafka_consumer_group_metadata_destroy(md);
            rd_kafka_topic_partition_list_destroy(offs);
            in_txn = false;
        }
    }
    free(next);
    rd_kafka_consumer_close(c); /* leaving the group is part of the work, as for a stage */
    double secs = now_s() - t0;
    rd_kafka_destroy(c);
    rd_kafka_destroy(p);
    rd_kafka_destroy(admin);
    return secs;
}

/* Wall-clock ms of the first split_done event of `stage` in the job's events topic. */
static int64_t first_split_done_ms(const char *brokers, const char *job_id, const char *stage)
{
    char topic[NU_JOB_NAME_MAX], group[NU_JOB_NAME_MAX + 16];
    struct nu_errbuf eb;
    rd_kafka_t *c = NULL;
    static const struct nu_kafka_prop eof[] = {{"enable.partition.eof", "true"}};
    int64_t first = -1;
    nu_errbuf_clear(&eb);
    nu_job_topic_events_for(job_id, topic, sizeof(topic));
    snprintf(group, sizeof(group), "%s.bench", topic);
    if (nu_kafka_client_new(NU_KAFKA_CONSUMER, brokers, group, NULL, eof, 1, &c, &eb))
        die("events reader", &eb);
    rd_kafka_poll_set_consumer(c);
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(c, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    double deadline = now_s() + 30;
    for (;;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 200);
        if (!m) {
            if (now_s() > deadline)
                break;
            continue;
        }
        bool eof_hit = m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF;
        if (!m->err) {
            json_t *ev = json_loadb(m->payload, m->len, 0, NULL);
            const char *type = json_string_value(json_object_get(ev, "type"));
            const char *st = json_string_value(json_object_get(ev, "stage"));
            int64_t ts = json_integer_value(json_object_get(ev, "ts"));
            if (type && st && strcmp(type, "split_done") == 0 && strcmp(st, stage) == 0 &&
                (first < 0 || ts < first))
                first = ts;
            json_decref(ev);
        }
        rd_kafka_message_destroy(m);
        if (eof_hit)
            break;
    }
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    return first;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* (d)/(e): every stage of `job_path` as a process; returns wall seconds, max child RSS. */
static double run_processes(const char *nurion, const char *job_path, const char **stages, int n,
                            long *max_rss_kb)
{
    pid_t pids[16];
    double t0 = now_s();
    for (int i = 0; i < n; i++) {
        char *argv[] = {(char *)nurion,   "stage",          "--job",
                        (char *)job_path, "--stage",        (char *)stages[i],
                        "--set",          "log.level=warn", NULL};
        if (posix_spawn(&pids[i], nurion, NULL, NULL, argv, environ) != 0) {
            perror("posix_spawn");
            exit(1);
        }
    }
    /* peak RSS from /proc (VmHWM), polled until each child exits: wait4's ru_maxrss would
     * include this process's own peak, which a spawned child inherits */
    int left = n;
    while (left > 0) {
        for (int i = 0; i < n; i++) {
            if (pids[i] <= 0)
                continue;
            char p[64], line[256];
            snprintf(p, sizeof(p), "/proc/%d/status", (int)pids[i]);
            FILE *f = fopen(p, "r");
            while (f && fgets(line, sizeof(line), f)) {
                long kb;
                if (sscanf(line, "VmHWM: %ld kB", &kb) == 1 && kb > *max_rss_kb)
                    *max_rss_kb = kb;
            }
            if (f)
                fclose(f);
            int status;
            pid_t r = waitpid(pids[i], &status, WNOHANG);
            if (r == pids[i]) {
                if (!WIFEXITED(status) || WEXITSTATUS(status)) {
                    fprintf(stderr, "bench-stage: stage %s failed\n", stages[i]);
                    exit(1);
                }
                pids[i] = 0;
                left--;
            }
        }
        usleep(10000);
    }
    return now_s() - t0;
}

int main(int argc, char **argv)
{
    const char *brokers = getenv("NURION_BROKERS");
    long rows = argc > 1 ? atol(argv[1]) : 2000000, split = argc > 2 ? atol(argv[2]) : 1000;
    char spec[2048], id[64], path[256], topic_in[NU_JOB_NAME_MAX], topic_out[NU_JOB_NAME_MAX + 16];
    char nurion[4096];
    if (!brokers) {
        fprintf(stderr, "bench-stage: set NURION_BROKERS (scripts/services up)\n");
        return 2;
    }
    /* the nurion binary sits beside this one */
    ssize_t l = readlink("/proc/self/exe", nurion, sizeof(nurion) - 16);
    if (l < 0)
        return 1;
    nurion[l] = '\0';
    strcpy(strrchr(nurion, '/') + 1, "nurion");

    long stamp = (long)time(NULL);
    nu_log_init(NU_LOG_WARN, "");
    struct nu_stage_stats st;
    double secs[5], ra[ROUNDS], rb[ROUNDS], rc[ROUNDS], ratio_ba[ROUNDS], ratio_bc[ROUNDS];
    long records = 0, recs_b = 0, recs_c = 0;

    /* (a), (b) and (c), ROUNDS times interleaved, each round on fresh topics, so that the
     * noise of a shared machine hits the three alike; medians are reported. */
    for (int r = 0; r < ROUNDS; r++) {
        /* (a) and (b): one input, read twice (by the raw copy and by the stage) */
        snprintf(id, sizeof(id), "bench-eos-%ld-%d", stamp, r);
        snprintf(spec, sizeof(spec),
                 "{\"job_id\":\"%s\",\"stages\":[{\"id\":\"src\",\"operator\":\"generate\","
                 "\"partitions\":4,\"config\":{\"rows\":%ld,\"split_rows\":%ld,\"payload_bytes\":"
                 "80}},{\"id\":\"id\",\"operator\":\"map\",\"config\":{},\"upstream\":[\"src\"],"
                 "\"partitions\":4}]}",
                 id, rows, split);
        struct nu_job *eos = job_new(spec);
        plan(brokers, eos);
        double fill = run_stage(brokers, eos, "src", &st);
        fprintf(stderr, "round %d: filled %ld rows in %ld splits in %.1f s\n", r, (long)st.rows_out,
                (long)st.splits_out, fill);
        nu_job_topic_output(eos, 0, topic_in, sizeof(topic_in));
        snprintf(topic_out, sizeof(topic_out), "%s.rawcopy", topic_in);
        records = 0;
        ra[r] = passthrough(brokers, topic_in, topic_out, 4, &records);
        rb[r] = run_stage(brokers, eos, "id", &st);
        recs_b = (long)st.records_in;
        nu_job_destroy(eos);

        /* (c) */
        snprintf(id, sizeof(id), "bench-alo-%ld-%d", stamp, r);
        snprintf(spec, sizeof(spec),
                 "{\"job_id\":\"%s\",\"guarantee\":\"at_least_once\",\"stages\":[{\"id\":"
                 "\"src\",\"operator\":\"generate\",\"partitions\":4,\"config\":{\"rows\":%ld,"
                 "\"split_rows\":%ld,\"payload_bytes\":80}},{\"id\":\"id\",\"operator\":\"map\","
                 "\"config\":{},\"upstream\":[\"src\"],\"partitions\":4}]}",
                 id, rows, split);
        struct nu_job *alo = job_new(spec);
        plan(brokers, alo);
        run_stage(brokers, alo, "src", &st);
        rc[r] = run_stage(brokers, alo, "id", &st);
        recs_c = (long)st.records_in;
        nu_job_destroy(alo);
        ratio_ba[r] = (recs_b / rb[r]) / (records / ra[r]);
        ratio_bc[r] = (recs_b / rb[r]) / (recs_c / rc[r]);
        fprintf(stderr, "round %d: (a) %.2f s, (b) %.2f s, (c) %.2f s\n", r, ra[r], rb[r], rc[r]);
    }
    secs[0] = median(ra, ROUNDS);
    secs[1] = median(rb, ROUNDS);
    secs[2] = median(rc, ROUNDS);

    /* (d) and (e) */
    snprintf(id, sizeof(id), "bench-etl-%ld", stamp);
    snprintf(path, sizeof(path), "/tmp/nurion-bench-%ld.json", stamp);
    snprintf(spec, sizeof(spec),
             "{\"job_id\":\"%s\",\"stages\":[{\"id\":\"src\",\"operator\":\"generate\","
             "\"partitions\":4,\"config\":{\"rows\":%ld,\"split_rows\":%ld,\"payload_bytes\":80}},"
             "{\"id\":\"dbl\",\"operator\":\"map\",\"config\":{\"columns\":{\"y\":\"id * 2\"}},"
             "\"upstream\":[\"src\"],\"partitions\":4},{\"id\":\"even\",\"operator\":\"filter\","
             "\"config\":{\"where\":\"id %% 2 == 0\"},\"upstream\":[\"dbl\"],\"partitions\":4},"
             "{\"id\":\"out\",\"operator\":\"file_sink\",\"config\":{\"path\":\"/tmp/nurion-bench-"
             "%ld-out/\",\"format\":\"jsonl\"},\"upstream\":[\"even\"]}]}",
             id, rows, split, stamp);
    FILE *f = fopen(path, "w");
    fputs(spec, f);
    fclose(f);
    struct nu_job *etl = job_new(spec);
    plan(brokers, etl);
    const char *stages[] = {"src", "dbl", "even", "out"};
    long rss_kb = 0;
    secs[3] = run_processes(nurion, path, stages, 4, &rss_kb);

    /* (e) time from exec to the first split done: a fresh identity stage over a filled topic */
    snprintf(id, sizeof(id), "bench-start-%ld", stamp);
    snprintf(spec, sizeof(spec),
             "{\"job_id\":\"%s\",\"stages\":[{\"id\":\"src\",\"operator\":\"generate\","
             "\"partitions\":4,\"config\":{\"rows\":%ld,\"split_rows\":%ld}},"
             "{\"id\":\"id\",\"operator\":\"map\",\"config\":{},\"upstream\":[\"src\"],"
             "\"partitions\":4}]}",
             id, split * 4, split);
    snprintf(path, sizeof(path), "/tmp/nurion-bench-start-%ld.json", stamp);
    f = fopen(path, "w");
    fputs(spec, f);
    fclose(f);
    struct nu_job *start = job_new(spec);
    plan(brokers, start);
    run_stage(brokers, start, "src", &st);
    const char *one[] = {"id"};
    long rss1 = 0;
    int64_t exec_ms = wall_ms();
    secs[4] = run_processes(nurion, path, one, 1, &rss1);
    int64_t first_ms = first_split_done_ms(brokers, id, "id");

    printf("Stage runtime against Kafka on 127.0.0.1, %ld rows in %ld-row splits of ~100-byte rows "
           "(%ld records), avro. Cases (a)-(c) ran %d times interleaved, each on fresh topics; "
           "the table gives the median time of each and the median of the per-round ratios.\n\n",
           rows, split, records, ROUNDS);
    printf("| case | seconds | records/s | rows/s | ratio |\n|---|---:|---:|---:|---:|\n");
    printf("| (a) librdkafka pass-through, transactional | %.2f | %.0f | %.0f | 1.00 |\n", secs[0],
           records / secs[0], rows / secs[0]);
    printf("| (b) identity stage, exactly-once | %.2f | %.0f | %.0f | %.2f of (a) |\n", secs[1],
           recs_b / secs[1], rows / secs[1], median(ratio_ba, ROUNDS));
    printf("| (c) identity stage, at-least-once | %.2f | %.0f | %.0f | (b) is %.2f of (c) |\n",
           secs[2], recs_c / secs[2], rows / secs[2], median(ratio_bc, ROUNDS));
    printf("| (d) 4 stages end to end, one process each | %.2f | | %.0f | |\n", secs[3],
           rows / secs[3]);
    printf("\n(e) peak RSS of a stage process: %.1f MiB (the largest of the 4 stages in (d)). A "
           "fresh identity stage: %" PRId64 " ms from exec to its first split done, %.2f s from "
           "exec to exit after 4 splits, peak RSS %.1f MiB.\n",
           rss_kb / 1024.0, first_ms >= 0 ? first_ms - exec_ms : -1, secs[4], rss1 / 1024.0);
    printf("\nPer round, (b)/(a):");
    for (int r = 0; r < ROUNDS; r++)
        printf(" %.2f", ratio_ba[r]);
    printf("; (b)/(c):");
    for (int r = 0; r < ROUNDS; r++)
        printf(" %.2f", ratio_bc[r]);
    printf(".\n");
    nu_job_destroy(etl);
    nu_job_destroy(start);
    return 0;
}
