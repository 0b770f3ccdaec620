/*
 * test_run.c — the planner and the local runner against the real broker: topics are created,
 * each source's plan is written once in one transaction (planning again duplicates nothing), and
 * `nurion run` takes a small job from a generator to sink files holding every expected id once.
 */
#include "integ.h"

#include "common/codec.h"
#include "common/job.h"
#include "common/split.h"
#include "operators/registry.h"
#include "stage/kafka.h"
#include "stage/planner.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <errno.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define NU_IT_MAX_SPLITS 64

/* A job id unique to this run (ids allow no dots, so nu_it_unique_name does not fit). */
static void nu_it_job_id(const char *prefix, char *buf, size_t len)
{
    static unsigned counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(buf, len, "%s-%ld-%lld-%u", prefix, (long)getpid(),
             (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, counter++);
}

static struct nu_job *nu_it_job(const char *spec)
{
    struct nu_job *job = NULL;
    struct nu_errbuf eb;
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_job_parse(spec, strlen(spec), nu_registry_validator(), &job, NULL, &eb), NU_OK,
                 "%s", nu_err_msg(&eb));
    return job;
}

static void nu_it_delete_job_topics(rd_kafka_t *admin, const struct nu_job *job)
{
    struct nu_plan_topic topics[NU_PLAN_MAX_TOPICS];
    const char *names[NU_PLAN_MAX_TOPICS];
    struct nu_errbuf eb;
    size_t n = nu_plan_topic_list(job, topics);
    nu_errbuf_clear(&eb);
    for (size_t i = 0; i < n; i++)
        names[i] = topics[i].name;
    cr_assert_eq(nu_kafka_topics_delete(admin, names, n, NU_IT_TIMEOUT_MS, &eb), NU_OK, "%s",
                 nu_err_msg(&eb));
}

/* What a read of a plan topic found. */
struct nu_it_plan {
    char keys[NU_IT_MAX_SPLITS][NU_SPLIT_ID_MAX];
    int32_t part[NU_IT_MAX_SPLITS];
    size_t ndata;
    int eos_per_part[16];
};

/* Read every committed record of `topic` (read_committed, to each partition's end). */
static void nu_it_read_plan(const char *topic, int partitions, struct nu_it_plan *out)
{
    char group[128];
    struct nu_errbuf eb;
    rd_kafka_t *c = NULL;
    static const struct nu_kafka_prop eof[] = {{"enable.partition.eof", "true"}};
    nu_errbuf_clear(&eb);
    memset(out, 0, sizeof(*out));
    cr_assert_eq(nu_kafka_client_new(NU_KAFKA_CONSUMER, nu_it_brokers(),
                                     nu_it_unique_name("nurion-it-reader", group, sizeof(group)),
                                     NULL, eof, 1, &c, &eb),
                 NU_OK, "%s", nu_err_msg(&eb));
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    cr_assert_eq(rd_kafka_assign(c, parts), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(parts);
    int eofs = 0;
    int64_t deadline = nu_it_now_ms() + NU_IT_TIMEOUT_MS;
    while (eofs < partitions && nu_it_now_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 200);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eofs++;
        } else {
            cr_assert_eq(m->err, RD_KAFKA_RESP_ERR_NO_ERROR, "%s", rd_kafka_message_errstr(m));
            struct nu_header hv[16];
            struct nu_split_meta meta = {0};
            size_t nh = nu_kafka_headers_view(m, hv, 16, NULL);
            cr_assert_eq(nu_split_meta_parse(hv, nh, &meta, &eb), NU_OK, "%s", nu_err_msg(&eb));
            if (meta.kind == NU_SPLIT_EOS) {
                cr_assert_str_eq(meta.lane, "plan");
                cr_assert_eq(m->key_len, strlen("eos:plan"));
                cr_assert_lt(m->partition, 16);
                out->eos_per_part[m->partition]++;
            } else {
                cr_assert_lt(out->ndata, NU_IT_MAX_SPLITS);
                cr_assert_eq(m->key_len, strlen(meta.id));
                cr_assert_eq(memcmp(m->key, meta.id, m->key_len), 0, "key is not the split id");
                cr_assert_eq(meta.rows, 1, "a generate plan split holds one row");
                cr_assert_gt(m->len, 0);
                snprintf(out->keys[out->ndata], NU_SPLIT_ID_MAX, "%s", meta.id);
                out->part[out->ndata++] = m->partition;
            }
            nu_split_meta_clear(&meta);
        }
        rd_kafka_message_destroy(m);
    }
    cr_assert_eq(eofs, partitions, "plan topic \"%s\" not read to its end", topic);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
}

static const char *plan_spec_fmt =
    "{\"job_id\":\"%s\",\"format\":\"%s\",\"stages\":["
    "{\"id\":\"src\",\"operator\":\"generate\",\"partitions\":3,"
    "\"config\":{\"rows\":10500,\"split_rows\":1000}},"
    "{\"id\":\"dbl\",\"operator\":\"map\",\"config\":{\"columns\":{\"y\":\"id * 2\"}},"
    "\"parallelism\":{\"min\":1,\"max\":2},\"upstream\":[\"src\"]},"
    "{\"id\":\"even\",\"operator\":\"filter\",\"config\":{\"where\":\"id %% 2 == 0\"},"
    "\"upstream\":[\"dbl\"]},"
    "{\"id\":\"out\",\"operator\":\"file_sink\",\"config\":{\"path\":\"/nonexistent/\","
    "\"format\":\"jsonl\"},\"upstream\":[\"even\"]}]}";

/* Planning twice writes one plan: 11 splits with deterministic ids, eos on every partition. */
static void nu_it_plan_twice(const char *format)
{
    char id[96], spec[2048], topic[NU_JOB_NAME_MAX];
    struct nu_errbuf eb;
    struct nu_plan_count counts[4];
    struct nu_it_plan plan;
    rd_kafka_t *admin = NULL;
    size_t src = 0;

    nu_errbuf_clear(&eb);
    nu_it_job_id("plan", id, sizeof(id));
    snprintf(spec, sizeof(spec), plan_spec_fmt, id, format);
    struct nu_job *job = nu_it_job(spec);
    cr_assert(nu_job_stage_find(job, "src", &src));
    cr_assert_eq(
        nu_kafka_client_new(NU_KAFKA_ADMIN, nu_it_brokers(), NULL, NULL, NULL, 0, &admin, &eb),
        NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(nu_plan_topics(job, admin, NU_IT_TIMEOUT_MS, &eb), NU_OK, "%s", nu_err_msg(&eb));
    /* idempotent */
    cr_assert_eq(nu_plan_topics(job, admin, NU_IT_TIMEOUT_MS, &eb), NU_OK, "%s", nu_err_msg(&eb));

    struct {
        const char *name;
        int partitions;
    } want[] = {{"nurion.%s.src.plan", 3}, {"nurion.%s.src", 3},     {"nurion.%s.dbl", 8},
                {"nurion.%s.even", 8},     {"nurion.%s.out.dlq", 1}, {"nurion.%s._events", 1}};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        int have = -1;
        snprintf(topic, sizeof(topic), want[i].name, id);
        cr_assert_eq(nu_kafka_topic_partitions(admin, topic, NU_IT_TIMEOUT_MS, &have, &eb), NU_OK);
        cr_assert_geq(have, want[i].partitions, "topic %s has %d partitions", topic, have);
    }
    snprintf(topic, sizeof(topic), "nurion.%s.out", id);
    int sink_out = -1;
    cr_assert_eq(nu_kafka_topic_partitions(admin, topic, NU_IT_TIMEOUT_MS, &sink_out, &eb), NU_OK);
    cr_assert_eq(sink_out, 0, "a sink has no output topic");

    for (int round = 0; round < 2; round++) {
        cr_assert_eq(nu_plan_sources(job, nu_it_brokers(), NULL, 0, counts, &eb), NU_OK, "%s",
                     nu_err_msg(&eb));
        cr_assert_eq(counts[src].splits, 11);
        cr_assert(counts[src].rows_known);
        cr_assert_eq(counts[src].rows, 10500);
        cr_assert_eq(counts[src].existed, round == 1, "round %d", round);
    }

    nu_job_topic_plan(job, src, topic, sizeof(topic));
    nu_it_read_plan(topic, 3, &plan);
    cr_assert_eq(plan.ndata, 11, "plan splits: %zu", plan.ndata);
    for (int p = 0; p < 3; p++)
        cr_assert_eq(plan.eos_per_part[p], 1, "partition %d has %d eos records", p,
                     plan.eos_per_part[p]);
    /* every position's id once, on partition position % 3 */
    for (uint64_t pos = 0; pos < 11; pos++) {
        char sid[NU_SPLIT_ID_MAX];
        size_t found = 0;
        cr_assert_eq(nu_split_id(id, "src", NULL, 0, pos, sid, &eb), NU_OK);
        for (size_t k = 0; k < plan.ndata; k++) {
            if (strcmp(plan.keys[k], sid) == 0) {
                found++;
                cr_assert_eq(plan.part[k], (int32_t)(pos % 3), "split %s", sid);
            }
        }
        cr_assert_eq(found, 1, "split %s found %zu times", sid, found);
    }

    nu_it_delete_job_topics(admin, job);
    rd_kafka_destroy(admin);
    nu_job_destroy(job);
}

Test(plan, planning_twice_writes_one_plan_avro, .timeout = 120)
{
    nu_it_plan_twice("avro");
}

Test(plan, planning_twice_writes_one_plan_json, .timeout = 120)
{
    nu_it_plan_twice("json");
}

/* --- nurion run, end to end --------------------------------------------------------------- */

/* Run `nurion run ARGS…` (argv NULL-terminated after the program name); its stdout and stderr go
 * to `log`. Returns the exit status; fails the test when it does not end in time. */
static int nu_it_nurion_run(char *const *args, const char *log, int timeout_ms)
{
    char exe[1024];
    char *argv[32];
    size_t n = 0;
    snprintf(exe, sizeof(exe), "%s/bin/nurion", NU_BINARY_DIR);
    argv[n++] = exe;
    for (size_t i = 0; args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0)
            _exit(126);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(exe, argv);
        _exit(127);
    }
    int64_t deadline = nu_it_now_ms() + timeout_ms;
    int status = 0;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (nu_it_now_ms() > deadline) {
            kill(pid, SIGTERM);
            waitpid(pid, &status, 0);
            cr_assert_fail("nurion run did not finish in %d ms (log %s)", timeout_ms, log);
        }
        nanosleep(&(struct timespec){.tv_sec = 0, .tv_nsec = 50 * 1000 * 1000}, NULL);
    }
    cr_assert(WIFEXITED(status), "nurion run was killed by a signal");
    return WEXITSTATUS(status);
}

static char *nu_it_slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)len + 1);
    cr_assert_eq(fread(s, 1, (size_t)len, f), (size_t)len);
    s[len] = '\0';
    fclose(f);
    return s;
}

static void nu_it_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

#define NU_IT_ROWS 3000

/* Count, per id, the rows in every sink file of `dir` (ids must be even, y == 2 * id). */
static void nu_it_sink_ids(const char *dir, unsigned char *seen, size_t *files)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    cr_assert_not_null(d, "no sink directory %s", dir);
    *files = 0;
    while ((e = readdir(d))) {
        char path[2048];
        if (e->d_name[0] == '.')
            continue;
        cr_assert(strstr(e->d_name, ".jsonl"), "unexpected file %s", e->d_name);
        (*files)++;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        char *text = nu_it_slurp(path);
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
            long long id = -1, y = -1;
            const char *pi = strstr(line, "\"id\":"), *py = strstr(line, "\"y\":");
            cr_assert(pi && py, "row without id or y: %s", line);
            id = atoll(pi + 5);
            y = atoll(py + 4);
            cr_assert(id >= 0 && id < NU_IT_ROWS, "id out of range: %s", line);
            cr_assert_eq(id % 2, 0, "odd id passed the filter: %s", line);
            cr_assert_eq(y, 2 * id, "y is not 2 * id: %s", line);
            cr_assert_lt(seen[id], 255);
            seen[id]++;
        }
        free(text);
    }
    closedir(d);
}

static const char *run_spec_fmt =
    "{\"job_id\":\"%s\",\"format\":\"%s\",\"stages\":["
    "{\"id\":\"src\",\"operator\":\"generate\",\"partitions\":4,"
    "\"config\":{\"rows\":%d,\"split_rows\":100}},"
    "{\"id\":\"dbl\",\"operator\":\"map\",\"config\":{\"columns\":{\"y\":\"id * 2\"}},"
    "\"parallelism\":{\"min\":1,\"max\":2},\"upstream\":[\"src\"]},"
    "{\"id\":\"even\",\"operator\":\"filter\",\"config\":{\"where\":\"id %% 2 == 0\"},"
    "\"partitions\":2,\"upstream\":[\"dbl\"]},"
    "{\"id\":\"out\",\"operator\":\"file_sink\",\"config\":{\"path\":\"%s\","
    "\"format\":\"jsonl\"},\"upstream\":[\"even\"]}]}";

/* generate -> map -> filter -> file_sink: every even id lands in the sink files exactly once,
 * the summary reports it, and a second run of the same job redoes nothing. */
static void nu_it_run_small_job(char *instances)
{
    char id[96], dir[256], out[300], spec_path[300], log[300], spec[4096];
    unsigned char *seen = calloc(NU_IT_ROWS, 1);
    size_t files = 0;
    const char *brokers = nu_it_brokers();

    nu_it_job_id("run", id, sizeof(id));
    snprintf(dir, sizeof(dir), "/tmp/nurion-it-%s", id);
    cr_assert_eq(mkdir(dir, 0755), 0);
    snprintf(out, sizeof(out), "%s/out", dir);
    snprintf(spec_path, sizeof(spec_path), "%s/job.json", dir);
    snprintf(log, sizeof(log), "%s/run.log", dir);
    snprintf(spec, sizeof(spec), run_spec_fmt, id, "avro", NU_IT_ROWS, out);
    nu_it_write(spec_path, spec);

    char *args[] = {"run", "--brokers", (char *)brokers, "--instances", instances, spec_path, NULL};
    int rc = nu_it_nurion_run(args, log, 240000);
    char *text = nu_it_slurp(log);
    cr_assert_eq(rc, 0, "nurion run exited %d:\n%s", rc, text);
    cr_assert(strstr(text, "completed in"), "no summary:\n%s", text);
    cr_assert(strstr(text, "-t nurion."), "no kcat command:\n%s", text);
    /* the summary row of the filter: 3000 rows in, 1500 out */
    const char *row = strstr(text, "\neven ");
    cr_assert(row, "%s", text);
    char sid[16], op[16];
    long long inst, in, outn;
    cr_assert_eq(sscanf(row + 1, "%15s %15s %lld %lld %lld", sid, op, &inst, &in, &outn), 5);
    cr_assert_eq(in, NU_IT_ROWS, "%s", text);
    cr_assert_eq(outn, NU_IT_ROWS / 2, "%s", text);
    free(text);

    nu_it_sink_ids(out, seen, &files);
    cr_assert_eq(files, NU_IT_ROWS / 100, "one file per split: %zu", files);
    for (int i = 0; i < NU_IT_ROWS; i++)
        cr_assert_eq(seen[i], i % 2 == 0 ? 1 : 0, "id %d written %d times", i, seen[i]);

    /* again, with --cleanup: the plan is found, the stages see their work done, topics go */
    char *again[] = {"run",     "--brokers", (char *)brokers, "--instances", instances,
                     "--quiet", "--cleanup", spec_path,       NULL};
    rc = nu_it_nurion_run(again, log, 120000);
    text = nu_it_slurp(log);
    cr_assert_eq(rc, 0, "second run exited %d:\n%s", rc, text);
    cr_assert(strstr(text, "deleted"), "%s", text);
    free(text);
    memset(seen, 0, NU_IT_ROWS);
    nu_it_sink_ids(out, seen, &files);
    for (int i = 0; i < NU_IT_ROWS; i++)
        cr_assert_eq(seen[i], i % 2 == 0 ? 1 : 0, "id %d written %d times", i, seen[i]);
    free(seen);
}

Test(run, small_job_writes_every_expected_id_once, .timeout = 300)
{
    nu_it_run_small_job("dbl=1");
}

Test(run, small_job_with_two_map_instances, .timeout = 300)
{
    nu_it_run_small_job("dbl=2");
}

/* A stage that refuses its settings (exit 2: not restarted) fails the run with exit 1, naming
 * the stage and quoting its error. */
Test(run, failing_stage_fails_the_run_with_its_reason, .timeout = 180)
{
    char id[96], dir[256], out[300], spec_path[300], log[300], spec[4096];
    nu_it_job_id("runfail", id, sizeof(id));
    snprintf(dir, sizeof(dir), "/tmp/nurion-it-%s", id);
    cr_assert_eq(mkdir(dir, 0755), 0);
    snprintf(out, sizeof(out), "%s/out", dir);
    snprintf(spec_path, sizeof(spec_path), "%s/job.json", dir);
    snprintf(log, sizeof(log), "%s/run.log", dir);
    snprintf(spec, sizeof(spec), run_spec_fmt, id, "json", 200, out);
    nu_it_write(spec_path, spec);
    char *args[] = {"run",     "--brokers", (char *)nu_it_brokers(),
                    "--quiet", "--set",     "no.such.key=1",
                    spec_path, NULL};
    int64_t t0 = nu_it_now_ms();
    int rc = nu_it_nurion_run(args, log, 150000);
    char *text = nu_it_slurp(log);
    cr_assert_eq(rc, 1, "exit %d:\n%s", rc, text);
    cr_assert(strstr(text, "failed: stage \""), "%s", text);
    cr_assert(strstr(text, "exited with status 2 and is not restarted"), "%s", text);
    cr_assert(strstr(text, "no.such.key"), "the reason quotes the stage: %s", text);
    cr_assert_null(strstr(text, "restarting in"), "a usage error is not retried: %s", text);
    cr_assert_lt(nu_it_now_ms() - t0, 60000, "the other stages were stopped promptly");
    free(text);
}

Test(run, bad_usage_exits_2)
{
    char log[] = "/tmp/nurion-it-usage.XXXXXX";
    int fd = mkstemp(log);
    cr_assert_geq(fd, 0);
    close(fd);
    char spec_path[] = NU_SOURCE_DIR "/examples/etl.json";
    char *args[][8] = {
        {"run", "--instances", "dbl=9", spec_path, NULL},
        {"run", "--instances", "nope=1", spec_path, NULL},
        {"run", "--bogus", spec_path, NULL},
        {"run", NULL},
    };
    for (size_t i = 0; i < sizeof(args) / sizeof(args[0]); i++) {
        int rc = nu_it_nurion_run(args[i], log, 30000);
        char *text = nu_it_slurp(log);
        cr_assert_eq(rc, 2, "case %zu: exit %d: %s", i, rc, text);
        free(text);
    }
    unlink(log);
}
