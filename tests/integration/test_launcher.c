/*
 * test_launcher.c — the coordinator's local launcher against the real broker and PostgreSQL:
 * jobs run to completion, killed instances come back, crash loops fail the job with the reason,
 * cancel stops everything, a second launcher adopts without duplicates, the autoscaler moves
 * instance counts on lag.
 */
#include "integ.h"

#include "common/mem.h"
#include "coordinator/ingest.h"
#include "coordinator/launcher_int.h"
#include "coordinator/store.h"
#include "stage/planner.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>

struct lt {
    char id[96], out[256];
    struct nu_job *job;
    nu_db_t *db;
    nu_launcher_t *l;
    nu_ingest_t *ing;
};

/* Autoscaler thresholds, in records: a burst of 240 is far above the first; one control
 * record per input partition plus a trickle stays below the second. */
#define LT_UP_LAG   60
#define LT_DOWN_LAG 25

/* Launchers of these tests adopt only their own jobs, never those of other tests sharing the
 * store. */
static void lt_conf(struct nu_launcher_conf *c, bool autoscale, const char *like)
{
    static char exe[1024];
    snprintf(exe, sizeof(exe), "%s/bin/nurion", NU_BINARY_DIR);
    memset(c, 0, sizeof(*c));
    c->mode = NU_LAUNCH_LOCAL;
    c->brokers = nu_it_brokers();
    c->database_url = nu_it_database_url();
    c->nurion_exe = exe;
    c->spec_dir = "/tmp";
    c->jobs_like = like;
    if (autoscale) {
        nu_autoscale_conf_default(&c->autoscale);
        c->autoscale.interval_ms = 500;
        c->autoscale.up_lag = LT_UP_LAG;
        c->autoscale.down_lag = LT_DOWN_LAG;
        c->autoscale.cooldown_ms = 1000;
    }
}

/* Parse the spec made from `fmt` (one %s: the job id, then the output folder) and connect. */
static void lt_setup(struct lt *t, const char *prefix, const char *fmt, bool autoscale)
{
    char spec[8192];
    struct nu_errbuf eb = {0};
    struct nu_launcher_conf c;
    nu_it_unique_name(prefix, t->id, sizeof(t->id));
    for (char *p = t->id; *p; p++)
        if (*p == '.')
            *p = '-';
    snprintf(t->out, sizeof(t->out), "/tmp/nurion-it-%s", t->id);
    mkdir(t->out, 0755);
    snprintf(spec, sizeof(spec), fmt, t->id, t->out);
    cr_assert_eq(nu_job_parse(spec, strlen(spec), NULL, &t->job, NULL, &eb), NU_OK, "%s",
                 nu_err_msg(&eb));
    cr_assert_eq(nu_store_connect(nu_it_database_url(), &t->db, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(nu_store_migrate(t->db, &eb), NU_OK, "%s", nu_err_msg(&eb));
    lt_conf(&c, autoscale, t->id);
    cr_assert_eq(nu_launcher_new(&c, &t->l, &eb), NU_OK, "%s", nu_err_msg(&eb));
    struct nu_ingest_conf ic = {.brokers = nu_it_brokers(),
                                .db_url = nu_it_database_url(),
                                .refresh_ms = 500,
                                .jobs_like = t->id};
    cr_assert_eq(nu_ingest_new(&ic, &t->ing, &eb), NU_OK, "%s", nu_err_msg(&eb));
}

/* One round: supervise, then ingest for up to 100 ms. */
static void lt_step(struct lt *t)
{
    struct nu_errbuf eb = {0};
    cr_assert_eq(nu_launcher_tick(t->l, &eb), NU_OK, "%s", nu_err_msg(&eb));
    nu_errbuf_clear(&eb);
    nu_ingest_step(t->ing, 100, &eb);
}

static json_t *lt_status(nu_launcher_t *l, const char *id)
{
    json_t *st = NULL;
    struct nu_errbuf eb = {0};
    cr_assert_eq(nu_launcher_job_status(l, id, &st, &eb), NU_OK, "%s", nu_err_msg(&eb));
    return st;
}

static void lt_state(struct lt *t, char *buf, size_t len)
{
    struct nu_errbuf eb = {0};
    cr_assert_eq(nu_launcher_db_job_state(t->db, t->id, buf, len, &eb), NU_OK);
}

/* Step until the job's state in the store is `want`; fails after `ms`. */
static void lt_wait_state(struct lt *t, const char *want, int ms)
{
    char state[32] = "";
    int64_t deadline = nu_it_now_ms() + ms;
    while (nu_it_now_ms() < deadline) {
        lt_step(t);
        lt_state(t, state, sizeof(state));
        if (strcmp(state, want) == 0)
            return;
    }
    cr_assert_fail("job %s is \"%s\" after %d ms, not \"%s\"", t->id, state, ms, want);
}

/* Processes on this host running a stage of job `id` (counted from /proc). */
static int lt_count_processes(const char *id, const char *stage)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d))) {
        char path[300], buf[4096];
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t len = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[len] = '\0';
        bool job = false, st = stage == NULL,
             is_stage = strcmp(buf + strlen(buf) + 1, "stage") == 0;
        for (const char *a = buf; a < buf + len; a += strlen(a) + 1) {
            if (strstr(a, id) && strstr(a, ".json"))
                job = true;
            if (stage && strcmp(a, stage) == 0)
                st = true;
        }
        n += len > 0 && is_stage && job && st;
    }
    closedir(d);
    return n;
}

/* SIGKILL every stage process of job `id` on this host; returns how many there were. */
static int lt_kill_processes(const char *id)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d))) {
        char path[300];
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
        FILE *f = fopen(path, "r");
        char buf[4096];
        if (!f)
            continue;
        size_t len = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[len] = '\0';
        if (len == 0 || strcmp(buf + strlen(buf) + 1, "stage") != 0)
            continue;
        for (const char *a = buf; a < buf + len; a += strlen(a) + 1)
            if (strstr(a, id) && strstr(a, ".json")) {
                n += kill((pid_t)atoi(e->d_name), SIGKILL) == 0;
                break;
            }
    }
    if (d)
        closedir(d);
    return n;
}

/*
 * Ends what a test started, whatever state it left: a job still running is cancelled and its
 * processes are given a bounded time to leave; any stage process of the job still alive then
 * is killed (and fails the test, after the clean-up). Topics are deleted once nothing uses them.
 */
static void lt_teardown(struct lt *t)
{
    struct nu_errbuf eb = {0};
    char state[32] = "";
    nu_launcher_db_job_state(t->db, t->id, state, sizeof(state), &eb);
    nu_errbuf_clear(&eb);
    if (strcmp(state, "running") == 0 || strcmp(state, "submitted") == 0)
        nu_launcher_cancel(t->l, t->id, &eb);
    int64_t deadline = nu_it_now_ms() + 20000;
    while (lt_count_processes(t->id, NULL) > 0 && nu_it_now_ms() < deadline) {
        nu_errbuf_clear(&eb);
        nu_launcher_tick(t->l, &eb);
        usleep(50 * 1000);
    }
    int left = lt_kill_processes(t->id);
    nu_launcher_destroy(t->l, 5000);
    nu_ingest_destroy(t->ing);
    nu_errbuf_clear(&eb);
    /* the development broker keeps no litter */
    rd_kafka_t *admin = NULL;
    if (nu_kafka_client_new(NU_KAFKA_ADMIN, nu_it_brokers(), NULL, NULL, NULL, 0, &admin, &eb) ==
        NU_OK) {
        struct nu_plan_topic *topics = nu_xcalloc(NU_PLAN_MAX_TOPICS, sizeof(*topics));
        const char **names = nu_xcalloc(NU_PLAN_MAX_TOPICS, sizeof(*names));
        size_t n = nu_plan_topic_list(t->job, topics);
        for (size_t i = 0; i < n; i++)
            names[i] = topics[i].name;
        nu_kafka_topics_delete(admin, names, n, NU_IT_TIMEOUT_MS, &eb);
        free(names);
        free(topics);
        rd_kafka_destroy(admin);
    }
    nu_store_close(t->db);
    nu_job_destroy(t->job);
    cr_assert_eq(left, 0, "%d stage process(es) of job %s were still running at the end", left,
                 t->id);
}

/* The pid recorded for a running instance, stepping up to `ms` for it; 0 when none. */
static pid_t lt_pid_try(struct lt *t, const char *stage, int inst, int ms)
{
    int64_t deadline = nu_it_now_ms() + ms;
    char host[256];
    do {
        pid_t pid = 0;
        struct nu_errbuf eb = {0};
        lt_step(t);
        if (nu_launcher_db_instance_pid(t->db, t->id, stage, inst, &pid, host, sizeof(host), &eb) ==
                NU_OK &&
            pid > 0)
            return pid;
    } while (nu_it_now_ms() < deadline);
    return 0;
}

static pid_t lt_pid(struct lt *t, const char *stage, int inst, int ms)
{
    pid_t pid = lt_pid_try(t, stage, inst, ms);
    cr_assert_gt(pid, 0, "no running instance %d of stage %s", inst, stage);
    return pid;
}

static const char *small_fmt =
    "{\"job_id\":\"%s\",\"format\":\"json\",\"stages\":["
    "{\"id\":\"src\",\"operator\":\"generate\",\"partitions\":2,"
    "\"config\":{\"rows\":2000,\"split_rows\":100}},"
    "{\"id\":\"dbl\",\"operator\":\"map\",\"config\":{\"columns\":{\"y\":\"id * 2\"}},"
    "\"parallelism\":{\"min\":1,\"max\":2},\"partitions\":2,\"upstream\":[\"src\"]},"
    "{\"id\":\"out\",\"operator\":\"file_sink\",\"config\":{\"path\":\"%s\","
    "\"format\":\"jsonl\"},\"upstream\":[\"dbl\"]}]}";

Test(launcher, job_runs_to_completion, .timeout = 240)
{
    struct lt t = {0};
    struct nu_errbuf eb = {0};
    lt_setup(&t, "lrun", small_fmt, false);
    cr_assert_eq(nu_launcher_start(t.l, t.job, &eb), NU_OK, "%s", nu_err_msg(&eb));
    char state[32];
    lt_state(&t, state, sizeof(state));
    cr_assert_str_eq(state, "running");
    /* a second start of a supervised job is refused */
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_launcher_start(t.l, t.job, &eb), NU_ERR_STATE);

    /* done: ingestion marks the job succeeded (every stage complete) and every stage process
     * has left on its own; the launcher forgets the job some time after that */
    int max_procs = 0, procs = -1;
    bool finished = false, supervised = true;
    char state2[32] = "";
    int64_t deadline = nu_it_now_ms() + 90000;
    while (nu_it_now_ms() < deadline) {
        lt_step(&t);
        json_t *st = NULL;
        nu_errbuf_clear(&eb);
        lt_state(&t, state2, sizeof(state2));
        supervised = nu_launcher_job_status(t.l, t.id, &st, &eb) == NU_OK;
        if (supervised) {
            int p = (int)json_integer_value(json_object_get(st, "processes"));
            max_procs = p > max_procs ? p : max_procs;
            finished = finished || json_is_true(json_object_get(st, "finished"));
            /* the launcher winds a job down only once the store says it succeeded (its last
             * processes then leave on their own, after their final commit) */
            cr_assert(!json_is_true(json_object_get(st, "ending")) || finished ||
                          strcmp(state2, "succeeded") == 0,
                      "the launcher wound down a job that had not succeeded (state %s)", state2);
            json_decref(st);
        }
        procs = lt_count_processes(t.id, NULL);
        /* an exited process is gone from /proc before the launcher has reaped it */
        if (strcmp(state2, "succeeded") == 0 && procs == 0 && (finished || !supervised))
            break;
    }
    cr_assert_str_eq(state2, "succeeded", "job %s after 90 s", t.id);
    cr_assert_eq(procs, 0, "stage processes of a succeeded job still run after 90 s");
    cr_assert(finished, "the launcher saw every stage process exit on its own");
    cr_assert_eq(max_procs, 1 + 2 + 1, "src 1 + dbl at its max 2 + out 1, saw %d", max_procs);
    /* the instance rows: every instance stopped, none crashed. The rows are written by the
     * launcher and, from the instances' own events, by ingestion, which may lag behind */
    json_t *inst = NULL;
    size_t nstopped = 0, i;
    json_t *row;
    deadline = nu_it_now_ms() + 30000;
    do {
        lt_step(&t);
        json_decref(inst);
        inst = NULL;
        nu_errbuf_clear(&eb);
        cr_assert_eq(nu_store_instances(t.db, t.id, &inst, &eb), NU_OK, "%s", nu_err_msg(&eb));
        nstopped = 0;
        json_array_foreach(inst, i, row)
        {
            const char *rs = json_string_value(json_object_get(row, "state"));
            cr_assert(rs && strcmp(rs, "crashed") != 0, "instance %s/%lld crashed: %s",
                      json_string_value(json_object_get(row, "stage")),
                      (long long)json_integer_value(json_object_get(row, "instance")),
                      json_string_value(json_object_get(row, "reason")));
            nstopped += strcmp(rs, "stopped") == 0;
        }
    } while (nstopped < 4 && nu_it_now_ms() < deadline);
    cr_assert_eq(json_array_size(inst), 4);
    cr_assert_eq(nstopped, 4, "instances stopped after 30 s: %zu of 4", nstopped);
    json_decref(inst);
    lt_teardown(&t);
}

Test(launcher, killed_instance_is_restarted, .timeout = 240)
{
    struct lt t = {0};
    struct nu_errbuf eb = {0};
    struct nu_launcher_stats s;
    lt_setup(&t, "lkill", small_fmt, false);
    cr_assert_eq(nu_launcher_start(t.l, t.job, &eb), NU_OK, "%s", nu_err_msg(&eb));
    pid_t pid = lt_pid(&t, "out", 0, 30000);
    cr_assert_eq(kill(pid, SIGKILL), 0);
    int64_t deadline = nu_it_now_ms() + 30000;
    pid_t again = 0;
    while (nu_it_now_ms() < deadline) {
        lt_step(&t);
        nu_launcher_stats(t.l, &s);
        again = lt_pid_try(&t, "out", 0, 0);
        if (s.restarts >= 1 && again > 0 && again != pid)
            break;
    }
    cr_assert_geq(s.restarts, 1);
    cr_assert_neq(again, pid, "instance 0 of out was started again");
    lt_wait_state(&t, "succeeded", 180000);
    lt_teardown(&t);
}

/* The argv of an exec UDF stage passing rows through after sleeping `sleep_s` seconds each. */
static void lt_udf_argv(char *buf, size_t len, double sleep_s)
{
    snprintf(buf, len,
             "[\"python3\",\"-c\",\"import sys,time; sys.path.insert(0,'%s/python'); "
             "import nurion_udf as u\\n@u.map\\ndef f(r):\\n    time.sleep(%g)\\n    return r\\n"
             "u.run()\"]",
             NU_SOURCE_DIR, sleep_s);
}

/* A slow stage: an exec UDF sleeping `sleep_s` seconds per row (two rows per split). */
static char slow_fmt[4096];
static const char *lt_slow_fmt(double sleep_s, int rows, int slow_min, int slow_max)
{
    char argv[1024];
    lt_udf_argv(argv, sizeof(argv), sleep_s);
    snprintf(slow_fmt, sizeof(slow_fmt),
             "{\"job_id\":\"%%s\",\"format\":\"json\",\"stages\":["
             "{\"id\":\"src\",\"operator\":\"generate\",\"partitions\":4,"
             "\"config\":{\"rows\":%d,\"split_rows\":2}},"
             "{\"id\":\"slow\",\"operator\":\"exec\",\"config\":{\"argv\":%s},"
             "\"parallelism\":{\"min\":%d,\"max\":%d},\"partitions\":4,\"upstream\":[\"src\"]},"
             "{\"id\":\"out\",\"operator\":\"file_sink\",\"config\":{\"path\":\"%%s\","
             "\"format\":\"jsonl\"},\"upstream\":[\"slow\"]}]}",
             rows, argv, slow_min, slow_max);
    return slow_fmt;
}

/* An instance killed every time it starts, before its stage makes progress, crash-loops: with
 * max_crashes 0 the second crash fails the job, with the reason, and its processes stop. */
Test(launcher, crash_loop_fails_the_job_with_the_reason, .timeout = 240)
{
    struct lt t = {0};
    struct nu_errbuf eb = {0};
    char fmt[4096], state[32] = "";
    /* the slow stage, pinned to one instance and allowed no crash */
    snprintf(fmt, sizeof(fmt), "%s", lt_slow_fmt(0.5, 200, 1, 1));
    char *p = strstr(fmt, "\"parallelism\":{\"min\":1,\"max\":1}");
    cr_assert_not_null(p);
    memmove(p + 17, p, strlen(p) + 1);
    memcpy(p, "\"max_crashes\":0, ", 17);
    lt_setup(&t, "lcrash", fmt, false);
    cr_assert_eq(t.job->stages[1].max_crashes, 0);
    cr_assert_eq(nu_launcher_start(t.l, t.job, &eb), NU_OK, "%s", nu_err_msg(&eb));
    pid_t last = 0;
    int kills = 0;
    int64_t deadline = nu_it_now_ms() + 120000;
    while (nu_it_now_ms() < deadline && kills < 20) {
        pid_t pid = lt_pid_try(&t, "slow", 0, 0);
        if (pid > 0 && pid != last && kill(pid, SIGKILL) == 0) {
            last = pid;
            kills++;
        }
        lt_state(&t, state, sizeof(state));
        if (strcmp(state, "failed") == 0)
            break;
    }
    cr_assert_str_eq(state, "failed", "after %d kills", kills);
    cr_assert_geq(kills, 2);
    json_t *job = NULL;
    cr_assert_eq(nu_store_job_get(t.db, t.id, &job, &eb), NU_OK);
    const char *err = json_string_value(json_object_get(job, "error"));
    cr_assert_not_null(err);
    cr_assert(strstr(err, "stage \"slow\" instance 0 was killed by signal 9"), "%s", err);
    cr_assert(strstr(err, "after 1 restart (max_crashes 0)"), "%s", err);
    json_decref(job);
    /* its processes are stopped and the job is dropped */
    deadline = nu_it_now_ms() + 30000;
    while (lt_count_processes(t.id, NULL) > 0 && nu_it_now_ms() < deadline)
        lt_step(&t);
    cr_assert_eq(lt_count_processes(t.id, NULL), 0);
    lt_step(&t);
    json_t *st = NULL;
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_launcher_job_status(t.l, t.id, &st, &eb), NU_ERR_NOT_FOUND);
    lt_teardown(&t);
}

Test(launcher, cancel_stops_the_processes, .timeout = 240)
{
    struct lt t = {0};
    struct nu_errbuf eb = {0};
    lt_setup(&t, "lcancel", lt_slow_fmt(0.2, 2000, 1, 2), false);
    cr_assert_eq(nu_launcher_start(t.l, t.job, &eb), NU_OK, "%s", nu_err_msg(&eb));
    lt_pid(&t, "slow", 1, 30000);
    cr_assert_gt(lt_count_processes(t.id, NULL), 0);
    cr_assert_eq(nu_launcher_cancel(t.l, t.id, &eb), NU_OK, "%s", nu_err_msg(&eb));
    char state[32];
    lt_state(&t, state, sizeof(state));
    cr_assert_str_eq(state, "cancelled");
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_launcher_cancel(t.l, t.id, &eb), NU_ERR_STATE);
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_launcher_cancel(t.l, "no-such-job-here", &eb), NU_ERR_NOT_FOUND);
    int64_t deadline = nu_it_now_ms() + 30000;
    while (lt_count_processes(t.id, NULL) > 0 && nu_it_now_ms() < deadline)
        lt_step(&t);
    cr_assert_eq(lt_count_processes(t.id, NULL), 0, "SIGTERM stopped every stage process");
    lt_teardown(&t);
}

Test(launcher, second_launcher_adopts_without_duplicates, .timeout = 240)
{
    struct lt t = {0};
    struct nu_errbuf eb = {0};
    struct nu_launcher_conf c;
    nu_launcher_t *l2 = NULL;
    lt_setup(&t, "ladopt", lt_slow_fmt(0.1, 2000, 1, 2), false);
    cr_assert_eq(nu_launcher_start(t.l, t.job, &eb), NU_OK, "%s", nu_err_msg(&eb));
    /* every instance of the first launcher runs and has joined its group */
    char group[NU_JOB_NAME_MAX];
    bool live[4];
    int members = 0;
    size_t slow;
    cr_assert(nu_job_stage_find(t.job, "slow", &slow));
    nu_job_group(t.job, slow, group, sizeof(group));
    rd_kafka_t *admin = NULL;
    cr_assert_eq(
        nu_kafka_client_new(NU_KAFKA_ADMIN, nu_it_brokers(), NULL, NULL, NULL, 0, &admin, &eb),
        NU_OK);
    int64_t deadline = nu_it_now_ms() + 60000;
    while (nu_it_now_ms() < deadline) {
        lt_step(&t);
        nu_errbuf_clear(&eb);
        if (nu_launcher_group_live(admin, group, live, 4, &members, &eb) == NU_OK && members == 2)
            break;
    }
    cr_assert_eq(members, 2);
    cr_assert(live[0] && live[1]);
    int before = lt_count_processes(t.id, NULL);
    cr_assert_eq(before, 4, "src 1 + slow 2 + out 1: %d", before);

    lt_conf(&c, false, t.id);
    cr_assert_eq(nu_launcher_new(&c, &l2, &eb), NU_OK, "%s", nu_err_msg(&eb));
    for (int i = 0; i < 15; i++) {
        cr_assert_eq(nu_launcher_tick(l2, &eb), NU_OK);
        lt_step(&t);
    }
    json_t *st = lt_status(l2, t.id);
    cr_assert(json_is_true(json_object_get(st, "adopted")));
    json_t *ss = json_array_get(json_object_get(st, "stages"), slow);
    cr_assert_eq(json_integer_value(json_object_get(ss, "running")), 2,
                 "the adopted processes are followed");
    json_decref(st);
    /* the source may have completed and left meanwhile; the slow stage is still at work */
    int after = lt_count_processes(t.id, NULL);
    cr_assert_leq(after, 4, "no duplicate started by the second one: %d", after);
    cr_assert_eq(lt_count_processes(t.id, "slow"), 2);
    /* the second launcher cancels: the first one's processes stop too */
    cr_assert_eq(nu_launcher_cancel(l2, t.id, &eb), NU_OK, "%s", nu_err_msg(&eb));
    deadline = nu_it_now_ms() + 30000;
    while (lt_count_processes(t.id, NULL) > 0 && nu_it_now_ms() < deadline) {
        nu_launcher_tick(l2, &eb);
        lt_step(&t);
    }
    cr_assert_eq(lt_count_processes(t.id, NULL), 0);
    nu_launcher_destroy(l2, 1000);
    rd_kafka_destroy(admin);
    lt_teardown(&t);
}

/* The target instance count of a stage; -1 once the job is no longer supervised. */
static int lt_target(nu_launcher_t *l, const char *id, const char *stage)
{
    json_t *st = NULL, *s;
    struct nu_errbuf eb = {0};
    size_t i;
    int n = -1;
    if (nu_launcher_job_status(l, id, &st, &eb) != NU_OK)
        return -1;
    json_array_foreach(json_object_get(st, "stages"), i, s)
    {
        if (strcmp(json_string_value(json_object_get(s, "id")), stage) == 0)
            n = (int)json_integer_value(json_object_get(s, "target"));
    }
    json_decref(st);
    return n;
}

/* The total lag the launcher last read for a stage; -1 when unknown. */
static long long lt_lag(nu_launcher_t *l, const char *id, const char *stage)
{
    json_t *st = NULL, *s;
    struct nu_errbuf eb = {0};
    size_t i;
    long long lag = -1;
    if (nu_launcher_job_status(l, id, &st, &eb) != NU_OK)
        return -1;
    json_array_foreach(json_object_get(st, "stages"), i, s)
    {
        if (strcmp(json_string_value(json_object_get(s, "id")), stage) == 0 &&
            json_is_integer(json_object_get(s, "lag")))
            lag = (long long)json_integer_value(json_object_get(s, "lag"));
    }
    json_decref(st);
    return lag;
}

/*
 * The stage under watch, `work` (an exec UDF of 50 ms a row, 1 to 4 instances), reads two
 * inputs: `src`, which writes its 240 one-row splits in a burst (lag far above up_lag), and
 * `hold`, one instance of 1 s a row, whose trickle keeps the stage from completing once the burst
 * is drained (so its lag falls below down_lag while it still runs). The test cancels the job.
 */
static const char *lt_scale_fmt(void)
{
    char slow[1024], work[1024];
    lt_udf_argv(slow, sizeof(slow), 1.0);
    lt_udf_argv(work, sizeof(work), 0.05);
    snprintf(slow_fmt, sizeof(slow_fmt),
             "{\"job_id\":\"%%s\",\"format\":\"json\",\"stages\":["
             "{\"id\":\"src\",\"operator\":\"generate\",\"partitions\":4,"
             "\"config\":{\"rows\":240,\"split_rows\":1}},"
             "{\"id\":\"hold\",\"operator\":\"exec\",\"config\":{\"argv\":%s},"
             "\"parallelism\":{\"min\":1,\"max\":1},\"partitions\":4,\"upstream\":[\"src\"]},"
             "{\"id\":\"work\",\"operator\":\"exec\",\"config\":{\"argv\":%s},"
             "\"parallelism\":{\"min\":1,\"max\":4},\"partitions\":1,"
             "\"upstream\":[\"src\",\"hold\"]}]}",
             slow, work);
    return slow_fmt;
}

Test(launcher, autoscaler_scales_out_on_lag_and_in_when_it_drops, .timeout = 150)
{
    struct lt t = {0};
    struct nu_errbuf eb = {0};
    struct nu_launcher_stats s;
    lt_setup(&t, "lscale", lt_scale_fmt(), true);
    cr_assert_eq(nu_launcher_start(t.l, t.job, &eb), NU_OK, "%s", nu_err_msg(&eb));
    /* pin the stage at 1 before any instance starts, then release the pin in the store: from
     * there on the autoscaler decides */
    cr_assert_eq(nu_launcher_scale(t.l, t.id, "work", 1, &eb), NU_OK, "%s", nu_err_msg(&eb));
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_launcher_scale(t.l, t.id, "work", 5, &eb), NU_ERR_INVALID);
    cr_assert_eq(lt_target(t.l, t.id, "work"), 1);
    cr_assert_eq(lt_target(t.l, t.id, "hold"), 1);
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_store_stage_set_pinned(t.db, t.id, "work", -1, &eb), NU_OK);
    /* the lag document: the 4 partitions of src and the 4 of hold */
    size_t work;
    json_t *lag = NULL;
    cr_assert(nu_job_stage_find(t.job, "work", &work));
    cr_assert_eq(nu_launcher_stage_lag(t.l, t.job, work, &lag, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(json_array_size(json_object_get(lag, "partitions")), 8);
    cr_assert(json_is_integer(json_object_get(lag, "total_lag")));
    json_decref(lag);

    /* out: the burst puts the lag above up_lag, and the autoscaler adds instances */
    int target = 1, procs = 0;
    long long seen = -1;
    int64_t deadline = nu_it_now_ms() + 45000;
    while (nu_it_now_ms() < deadline && (target < 2 || procs < 2)) {
        lt_step(&t);
        target = lt_target(t.l, t.id, "work");
        cr_assert_geq(target, 0, "the job ended while the stage should scale out");
        long long l = lt_lag(t.l, t.id, "work");
        seen = l > seen ? l : seen;
        procs = lt_count_processes(t.id, "work");
    }
    cr_assert_geq(target, 2, "no scale-out in 45 s: target %d, highest lag read %lld (up_lag %d)",
                  target, seen, LT_UP_LAG);
    cr_assert_gt(seen, LT_UP_LAG, "scaled out with no lag above up_lag read: %lld", seen);
    cr_assert_geq(procs, 2, "the added instances did not start: %d running", procs);

    /* in: the burst drained, only the trickle of `hold` is left (below down_lag), and the
     * stage steps back to its minimum */
    long long last = -1;
    deadline = nu_it_now_ms() + 60000;
    while (nu_it_now_ms() < deadline && target != 1) {
        lt_step(&t);
        target = lt_target(t.l, t.id, "work");
        cr_assert_geq(target, 0, "the job ended while the stage should scale in");
        last = lt_lag(t.l, t.id, "work");
    }
    cr_assert_eq(target, 1, "no scale-in to 1 in 60 s: target %d, last lag read %lld (down_lag %d)",
                 target, last, LT_DOWN_LAG);
    nu_launcher_stats(t.l, &s);
    cr_assert_geq(s.scale_ups, 1);
    cr_assert_geq(s.scale_downs, 2, "the pin 4 -> 1 and at least one step in: %ld", s.scale_downs);
    /* the stage was scaled in while at work, not because the job completed */
    char state[32];
    lt_state(&t, state, sizeof(state));
    cr_assert_str_eq(state, "running");
    lt_teardown(&t);
}
