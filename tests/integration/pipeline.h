/*
 * pipeline.h — helpers for end-to-end tests that run whole jobs with `nurion run` against the
 * real broker: job specs from templates, the runner as a child process, killing its stage
 * processes, reading sink files, dead letters and events back. Header-only (static inline), like
 * integ.h; every helper fails the running test on error.
 */
#ifndef NU_TESTS_PIPELINE_H
#define NU_TESTS_PIPELINE_H

#include "integ.h"

#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

struct nu_it_job {
    char id[128];   /* unique job id */
    char path[512]; /* the spec file */
    char out[512];  /* an empty output folder, for sinks */
    char log[512];  /* where the runner's output goes */
};

/* Replace every "@ID@" and "@OUT@" of `tmpl` and write the spec; the job id starts with
 * `prefix` and is unique per run. */
static inline void nu_it_job_make(struct nu_it_job *j, const char *prefix, const char *tmpl)
{
    char name[96];
    nu_it_unique_name(prefix, name, sizeof(name));
    /* job ids allow [A-Za-z0-9_-]: the unique name uses dots */
    for (char *p = name; *p; p++)
        if (*p == '.')
            *p = '-';
    snprintf(j->id, sizeof(j->id), "%s", name);
    snprintf(j->out, sizeof(j->out), "/tmp/nurion-it-%s", name);
    snprintf(j->path, sizeof(j->path), "/tmp/nurion-it-%s.json", name);
    snprintf(j->log, sizeof(j->log), "/tmp/nurion-it-%s.log", name);
    mkdir(j->out, 0755);
    FILE *f = fopen(j->path, "w");
    cr_assert_not_null(f);
    for (const char *p = tmpl; *p;) {
        if (strncmp(p, "@ID@", 4) == 0) {
            fputs(j->id, f);
            p += 4;
        } else if (strncmp(p, "@OUT@", 5) == 0) {
            fputs(j->out, f);
            p += 5;
        } else {
            fputc(*p++, f);
        }
    }
    fclose(f);
}

/* Start `nurion run --quiet JOB` (plus `extra`, NULL-terminated, may be NULL); returns its pid. */
static inline pid_t nu_it_run_start(const struct nu_it_job *j, const char *const *extra)
{
    static char exe[1024];
    char *argv[40];
    size_t n = 0;
    snprintf(exe, sizeof(exe), "%s/bin/nurion", NU_BINARY_DIR);
    argv[n++] = exe;
    argv[n++] = "run";
    argv[n++] = "--quiet";
    for (size_t i = 0; extra && extra[i] && n < 36; i++)
        argv[n++] = (char *)extra[i];
    argv[n++] = (char *)j->path;
    argv[n] = NULL;
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int fd = open(j->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0)
            _exit(126);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(exe, argv);
        _exit(127);
    }
    return pid;
}

/* Wait for the runner; returns its exit status (fails the test on a timeout or a signal). */
static inline int nu_it_run_wait(const struct nu_it_job *j, pid_t pid, int timeout_ms)
{
    int64_t deadline = nu_it_now_ms() + timeout_ms;
    int status = 0;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (nu_it_now_ms() > deadline) {
            kill(pid, SIGTERM);
            waitpid(pid, &status, 0);
            cr_assert_fail("nurion run did not finish in %d ms (log %s)", timeout_ms, j->log);
        }
        usleep(50 * 1000);
    }
    cr_assert(WIFEXITED(status), "nurion run ended by signal %d (log %s)",
              WIFSIGNALED(status) ? WTERMSIG(status) : 0, j->log);
    return WEXITSTATUS(status);
}

/* Is `pid` alive and a child of `parent` running stage `stage`? */
static inline bool nu_it_is_stage_of(pid_t pid, pid_t parent, const char *stage)
{
    char path[64], buf[4096];
    int ppid = 0;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char state;
    int ok = fscanf(f, "%*d %*s %c %d", &state, &ppid);
    fclose(f);
    if (ok != 2 || ppid != parent || state == 'Z')
        return false;
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    /* argv is NUL-separated: look for "--stage" followed by the stage id */
    for (ssize_t i = 0; i < n;) {
        const char *arg = buf + i;
        size_t len = strlen(arg);
        if (strcmp(arg, "--stage") == 0 && i + (ssize_t)len + 1 < n)
            return strcmp(arg + len + 1, stage) == 0;
        i += (ssize_t)len + 1;
    }
    return false;
}

/* SIGKILL one live instance of `stage` under runner `runner`; false when none is running. */
static inline bool nu_it_kill_one(pid_t runner, const char *stage, unsigned *seed)
{
    pid_t found[64];
    int n = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d)) && n < 64) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end == '\0' && pid > 0 && nu_it_is_stage_of((pid_t)pid, runner, stage))
            found[n++] = (pid_t)pid;
    }
    if (d)
        closedir(d);
    if (n == 0)
        return false;
    return kill(found[rand_r(seed) % n], SIGKILL) == 0;
}

/* While the runner lives, kill an instance of `stage` `kills` times at random moments
 * (0.3–1.2 s apart); returns how many kills landed. */
static inline int nu_it_kill_loop(pid_t runner, const char *stage, int kills, unsigned seed)
{
    int landed = 0, tries = 0;
    while (landed < kills && tries < kills * 20) {
        usleep((useconds_t)(300 + rand_r(&seed) % 900) * 1000);
        if (waitpid(runner, NULL, WNOHANG) != 0)
            break; /* the runner already finished (the caller sees it in the status) */
        tries++;
        if (nu_it_kill_one(runner, stage, &seed))
            landed++;
    }
    return landed;
}

/* Every JSON Lines row of every file in `dir`; returned owned (a JSON array of objects). */
static inline json_t *nu_it_sink_rows(const char *dir)
{
    json_t *rows = json_array();
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "no sink folder %s", dir);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "r");
        cr_assert_not_null(f);
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        while ((len = getline(&line, &cap, f)) > 0) {
            json_error_t jerr;
            json_t *row = json_loadb(line, (size_t)len, 0, &jerr);
            cr_assert_not_null(row, "bad JSON in %s: %s", path, jerr.text);
            json_array_append_new(rows, row);
        }
        free(line);
        fclose(f);
    }
    closedir(d);
    return rows;
}

/* Read a whole topic with read_committed until the end of every partition; calls `fn` for each
 * record. Returns the number of records. */
typedef void (*nu_it_record_fn)(const rd_kafka_message_t *m, void *ctx);
static inline long nu_it_read_topic(const char *topic, nu_it_record_fn fn, void *ctx)
{
    char group[256], errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    nu_it_unique_name("it-reader", group, sizeof(group));
    nu_it_conf_set(conf, "bootstrap.servers", nu_it_brokers());
    nu_it_conf_set(conf, "group.id", group);
    nu_it_conf_set(conf, "isolation.level", "read_committed");
    nu_it_conf_set(conf, "auto.offset.reset", "earliest");
    nu_it_conf_set(conf, "enable.partition.eof", "true");
    nu_it_conf_set(conf, "enable.auto.commit", "false");
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    cr_assert_not_null(c, "%s", errstr);
    rd_kafka_poll_set_consumer(c);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(c, topic, NULL);
    cr_assert_eq(rd_kafka_metadata(c, 0, rkt, &md, NU_IT_TIMEOUT_MS), RD_KAFKA_RESP_ERR_NO_ERROR);
    int parts = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_topic_partition_list_t *asg = rd_kafka_topic_partition_list_new(parts);
    for (int i = 0; i < parts; i++)
        rd_kafka_topic_partition_list_add(asg, topic, i)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(c, asg);
    rd_kafka_topic_partition_list_destroy(asg);
    long n = 0;
    int eofs = 0;
    int64_t deadline = nu_it_now_ms() + NU_IT_TIMEOUT_MS;
    while (eofs < parts && nu_it_now_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 200);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eofs++;
        } else if (!m->err) {
            n++;
            if (fn)
                fn(m, ctx);
        }
        rd_kafka_message_destroy(m);
    }
    cr_assert_eq(eofs, parts, "did not reach the end of %s", topic);
    rd_kafka_destroy(c);
    return n;
}

/* Value of header `name` of `m` as a NUL-terminated copy in buf ("" when absent). */
static inline const char *nu_it_header(const rd_kafka_message_t *m, const char *name, char *buf,
                                       size_t len)
{
    rd_kafka_headers_t *h = NULL;
    const void *v = NULL;
    size_t vl = 0;
    buf[0] = '\0';
    if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_header_get_last(h, name, &v, &vl) == RD_KAFKA_RESP_ERR_NO_ERROR && v) {
        size_t n = vl < len - 1 ? vl : len - 1;
        memcpy(buf, v, n);
        buf[n] = '\0';
    }
    return buf;
}

#endif
