/*
 * test_connectors_file.c — file_source -> filter -> file_sink through the real broker with
 * `nurion run`: CSV files with a few bad lines; the sink holds exactly the good rows that pass the
 * filter, the source's dead-letter topic holds the bad lines (one record per line when the
 * runtime rejects rows one by one, else the failing split) with the reason in nurion-error, and
 * the job completes.
 */
#include "integ.h"

#include "common/job.h"
#include "common/split.h"
#include "operators/registry.h"
#include "stage/kafka.h"
#include "stage/planner.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define NU_FC_GOOD 200

/* A NUL-terminated copy of `len` bytes that are not NUL-terminated themselves. */
static char *nu_fc_copy(const void *p, size_t len)
{
    char *s = calloc(1, len + 1);
    if (p && len)
        memcpy(s, p, len);
    return s;
}

static void nu_fc_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

static char *nu_fc_slurp(const char *path)
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

/* `nurion run ARGS…` with output to `log`; the exit status. */
static int nu_fc_run(char *const *args, const char *log, int timeout_ms)
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

/* Per id, the rows in the sink's files. */
static void nu_fc_sink_ids(const char *dir, unsigned char *seen)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    cr_assert_not_null(d, "no sink directory %s", dir);
    while ((e = readdir(d))) {
        char path[2048];
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        char *text = nu_fc_slurp(path);
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
            const char *pi = strstr(line, "\"id\":");
            cr_assert_not_null(pi, "row without id: %s", line);
            long long id = atoll(pi + 5);
            cr_assert(id >= 0 && id < NU_FC_GOOD, "unexpected row: %s", line);
            cr_assert_lt(seen[id], 255);
            seen[id]++;
        }
        free(text);
    }
    closedir(d);
}

struct nu_fc_dlq {
    char *value[16], *reason[16];
    size_t n;
};

/* Every committed record of the dead-letter topic (one partition). */
static void nu_fc_read_dlq(const char *topic, struct nu_fc_dlq *out)
{
    char group[128];
    struct nu_errbuf eb;
    rd_kafka_t *c = NULL;
    static const struct nu_kafka_prop eof[] = {{"enable.partition.eof", "true"}};
    nu_errbuf_clear(&eb);
    memset(out, 0, sizeof(*out));
    cr_assert_eq(nu_kafka_client_new(NU_KAFKA_CONSUMER, nu_it_brokers(),
                                     nu_it_unique_name("nurion-it-dlq", group, sizeof(group)), NULL,
                                     eof, 1, &c, &eb),
                 NU_OK, "%s", nu_err_msg(&eb));
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    cr_assert_eq(rd_kafka_assign(c, parts), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(parts);
    bool done = false;
    int64_t deadline = nu_it_now_ms() + NU_IT_TIMEOUT_MS;
    while (!done && nu_it_now_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 200);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            done = true;
        } else {
            cr_assert_eq(m->err, RD_KAFKA_RESP_ERR_NO_ERROR, "%s", rd_kafka_message_errstr(m));
            cr_assert_lt(out->n, 16, "too many dead letters");
            struct nu_header hv[32];
            size_t nh = nu_kafka_headers_view(m, hv, 32, NULL);
            for (size_t i = 0; i < nh; i++)
                if (strcmp(hv[i].name, "nurion-error") == 0)
                    out->reason[out->n] = nu_fc_copy(hv[i].value, hv[i].len);
            cr_assert_not_null(out->reason[out->n], "a dead letter without nurion-error");
            out->value[out->n++] = nu_fc_copy(m->payload, m->len);
        }
        rd_kafka_message_destroy(m);
    }
    cr_assert(done, "dead-letter topic \"%s\" not read to its end", topic);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
}

static void nu_fc_delete_topics(const char *spec_text)
{
    struct nu_job *job = NULL;
    struct nu_errbuf eb;
    struct nu_plan_topic topics[NU_PLAN_MAX_TOPICS];
    const char *names[NU_PLAN_MAX_TOPICS];
    rd_kafka_t *admin = NULL;
    nu_errbuf_clear(&eb);
    cr_assert_eq(
        nu_job_parse(spec_text, strlen(spec_text), nu_registry_validator(), &job, NULL, &eb), NU_OK,
        "%s", nu_err_msg(&eb));
    size_t n = nu_plan_topic_list(job, topics);
    for (size_t i = 0; i < n; i++)
        names[i] = topics[i].name;
    cr_assert_eq(
        nu_kafka_client_new(NU_KAFKA_ADMIN, nu_it_brokers(), NULL, NULL, NULL, 0, &admin, &eb),
        NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(nu_kafka_topics_delete(admin, names, n, NU_IT_TIMEOUT_MS, &eb), NU_OK, "%s",
                 nu_err_msg(&eb));
    rd_kafka_destroy(admin);
    nu_job_destroy(job);
}

static const char *spec_fmt =
    "{\"job_id\":\"%s\",\"format\":\"avro\",\"stages\":["
    "{\"id\":\"src\",\"operator\":\"file_source\",\"partitions\":2,\"config\":{"
    "\"paths\":\"%s/in/*.csv\",\"format\":\"csv\",\"split_rows\":50,"
    "\"csv\":{\"columns\":[[\"id\",\"int64\"],[\"name\",\"string?\"],[\"v\",\"int64\"]]}}},"
    "{\"id\":\"keep\",\"operator\":\"filter\",\"config\":{\"where\":\"v >= 0\"},"
    "\"upstream\":[\"src\"]},"
    "{\"id\":\"out\",\"operator\":\"file_sink\",\"config\":{\"path\":\"%s/out\","
    "\"format\":\"jsonl\"},\"upstream\":[\"keep\"]}]}";

static const char *bad_lines[] = {"1000,too,many,fields", "1001,not-a-number,x",
                                  "1002,\"unterminated,5"};

Test(connectors_file, csv_to_filter_to_sink_dead_letters_the_bad_lines, .timeout = 300)
{
    char id[96], dir[256], path[400], spec[4096], log[400], dlq[NU_JOB_NAME_MAX];
    unsigned char seen[NU_FC_GOOD] = {0};
    static char text[64 << 10];
    size_t len = 0;

    snprintf(id, sizeof(id), "files-%ld-%lld", (long)getpid(), (long long)nu_it_now_ms());
    snprintf(dir, sizeof(dir), "/tmp/nurion-it-%s", id);
    cr_assert_eq(mkdir(dir, 0755), 0);
    snprintf(path, sizeof(path), "%s/in", dir);
    cr_assert_eq(mkdir(path, 0755), 0);
    /* good rows: v = id - 20, so the filter keeps ids 20..199; names need CSV quoting */
    len += (size_t)snprintf(text, sizeof(text), "id,name,v\n");
    for (int i = 0; i < NU_FC_GOOD; i++)
        len += (size_t)snprintf(text + len, sizeof(text) - len, "%d,\"n, %d \"\"q\"\"\",%d\n", i, i,
                                i - 20);
    snprintf(path, sizeof(path), "%s/in/a-good.csv", dir);
    nu_fc_write(path, text);
    /* a file of bad lines only: whether the runtime rejects line by line or fails the split,
     * no good row is lost with it */
    len = (size_t)snprintf(text, sizeof(text), "id,name,v\n");
    for (size_t i = 0; i < 3; i++)
        len += (size_t)snprintf(text + len, sizeof(text) - len, "%s\n", bad_lines[i]);
    snprintf(path, sizeof(path), "%s/in/b-bad.csv", dir);
    nu_fc_write(path, text);

    snprintf(spec, sizeof(spec), spec_fmt, id, dir, dir);
    snprintf(path, sizeof(path), "%s/job.json", dir);
    nu_fc_write(path, spec);
    snprintf(log, sizeof(log), "%s/run.log", dir);
    char *args[] = {"run", "--brokers", (char *)nu_it_brokers(), path, NULL};
    int rc = nu_fc_run(args, log, 240000);
    char *out = nu_fc_slurp(log);
    cr_assert_eq(rc, 0, "nurion run exited %d:\n%s", rc, out);
    cr_assert(strstr(out, "completed in"), "the job did not complete:\n%s", out);
    free(out);

    snprintf(path, sizeof(path), "%s/out", dir);
    nu_fc_sink_ids(path, seen);
    for (int i = 0; i < NU_FC_GOOD; i++)
        cr_assert_eq(seen[i], i >= 20 ? 1 : 0, "id %d written %d times", i, seen[i]);

    struct nu_fc_dlq d;
    snprintf(dlq, sizeof(dlq), "nurion.%s.src.dlq", id);
    nu_fc_read_dlq(dlq, &d);
    /* bad lines are rejected one by one (the rest of their split goes on), each with its raw
     * text as the value */
    cr_assert_eq(d.n, 3, "%zu dead letters", d.n);
    for (size_t i = 0; i < d.n; i++) {
        cr_assert(strstr(d.reason[i], "b-bad.csv"), "%s", d.reason[i]);
        cr_assert(strstr(d.reason[i], "line "), "%s", d.reason[i]);
        cr_assert_str_eq(d.value[i], bad_lines[i]);
        free(d.reason[i]);
        free(d.value[i]);
    }
    nu_fc_delete_topics(spec);
}
