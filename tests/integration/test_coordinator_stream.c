/*
 * Integration test of a streaming job run by the coordinator in local mode, against the real
 * PostgreSQL (a database of its own) and Kafka: kafka_source ("mode": "unbounded") -> map ->
 * file_sink. The launcher runs the source's continuous planner next to the stage instances;
 * records produced before and after the submission reach the sink exactly once — across a second
 * coordinator adopting the job (no second planner) and a planner killed and restarted — the job
 * stays running with the planner's progress, and a cancel leaves no process of the job behind.
 */
#include "integ.h"

#include "cli/service.h"
#include "common/buf.h"
#include "common/job.h"
#include "coordinator/db.h"
#include "stage/connectors.h"
#include "stage/kafka.h"
#include "stage/planner.h"

#include <curl/curl.h>
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>

#define CS_ROWS 120 /* ids produced in all, in two halves */

static nu_service_t *cs_svc;
static pthread_t cs_thr;
static unsigned cs_port;
static char cs_db_url[512], cs_db_name[64];
static char cs_id[96], cs_topic[160], cs_dir[64];

static void *cs_run(void *arg)
{
    nu_service_run(arg, NULL);
    return NULL;
}

static rd_kafka_t *cs_admin(void)
{
    struct nu_errbuf eb = {0};
    rd_kafka_t *admin = NULL;
    cr_assert_eq(
        nu_kafka_client_new(NU_KAFKA_ADMIN, nu_it_brokers(), NULL, NULL, NULL, 0, &admin, &eb),
        NU_OK, "%s", nu_err_msg(&eb));
    return admin;
}

/* A local-mode coordinator service on the test's database, serving on an ephemeral port. */
static void cs_service(nu_service_t **svc, pthread_t *thr)
{
    struct nu_errbuf eb = {0};
    struct nu_service_conf c = {0};
    c.listen = "127.0.0.1:0";
    c.threads = 4;
    c.database_url = cs_db_url;
    c.brokers = nu_it_brokers();
    c.launcher_mode = NU_LAUNCH_LOCAL;
    nu_autoscale_conf_default(&c.autoscale);
    c.autoscale.enabled = false;
    c.nurion_exe = NU_BINARY_DIR "/bin/nurion";
    c.ingest_jobs_like = "cstream-%";
    cr_assert_eq(nu_service_new(&c, svc, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(pthread_create(thr, NULL, cs_run, *svc), 0);
}

static void cs_start(void)
{
    struct nu_errbuf eb = {0};
    nu_db_t *db = NULL;
    char sql[128];
    long long ms = (long long)nu_it_now_ms() % 100000000;

    nu_connectors_register(); /* kafka_source, as the coordinator program has it */
    snprintf(cs_id, sizeof(cs_id), "cstream-%ld-%lld", (long)getpid(), ms);
    snprintf(cs_topic, sizeof(cs_topic), "%s-in", cs_id);
    snprintf(cs_dir, sizeof(cs_dir), "/tmp/nurion-cstream-XXXXXX");
    cr_assert_not_null(mkdtemp(cs_dir));

    const char *base = nu_it_database_url();
    const char *slash = strrchr(base, '/');
    cr_assert(slash != NULL && slash > base + 12, "cannot derive a database URL from %s", base);
    snprintf(cs_db_name, sizeof(cs_db_name), "cstream_%ld_%lld", (long)getpid(), ms);
    snprintf(cs_db_url, sizeof(cs_db_url), "%.*s/%s", (int)(slash - base), base, cs_db_name);
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", cs_db_name);
    cr_assert_eq(nu_db_connect(base, 1, &db, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(nu_db_exec(db, sql, &eb), NU_OK, "%s", nu_err_msg(&eb));
    nu_db_close(db);

    cs_service(&cs_svc, &cs_thr);
    cs_port = nu_service_port(cs_svc);
}

/* The job's spec: ids from the user topic, y = id * 2, one jsonl file per split. */
static void cs_spec(char *buf, size_t n)
{
    snprintf(buf, n,
             "{\"job_id\":\"%s\",\"stages\":["
             "{\"id\":\"src\",\"operator\":\"kafka_source\",\"partitions\":2,\"config\":{"
             "\"topic\":\"%s\",\"format\":\"json\",\"mode\":\"unbounded\",\"split_records\":20,"
             "\"plan_interval_ms\":200,\"schema\":[[\"id\",\"int64\"]]}},"
             "{\"id\":\"dbl\",\"operator\":\"map\",\"upstream\":[\"src\"],\"partitions\":2,"
             "\"config\":{\"columns\":{\"y\":\"id * 2\"}}},"
             "{\"id\":\"out\",\"operator\":\"file_sink\",\"upstream\":[\"dbl\"],\"partitions\":2,"
             "\"config\":{\"path\":\"%s\",\"format\":\"jsonl\"}}]}",
             cs_id, cs_topic, cs_dir);
}

static void cs_stop(void)
{
    struct nu_errbuf eb = {0};
    nu_db_t *db = NULL;
    char sql[128], spec[2048];
    if (cs_svc != NULL) {
        nu_service_stop(cs_svc);
        pthread_join(cs_thr, NULL);
        nu_service_destroy(cs_svc);
        cs_svc = NULL;
    }
    /* the topics this test created: the user topic and the job's own */
    struct nu_job *job = NULL;
    cs_spec(spec, sizeof(spec));
    rd_kafka_t *admin = cs_admin();
    if (nu_job_parse(spec, strlen(spec), NULL, &job, NULL, &eb) == NU_OK) {
        struct nu_plan_topic topics[NU_PLAN_MAX_TOPICS];
        const char *names[NU_PLAN_MAX_TOPICS + 1];
        size_t n = nu_plan_topic_list(job, topics);
        for (size_t i = 0; i < n; i++)
            names[i] = topics[i].name;
        names[n++] = cs_topic;
        nu_kafka_topics_delete(admin, names, n, NU_IT_TIMEOUT_MS, &eb); /* best effort */
        nu_job_destroy(job);
    }
    rd_kafka_destroy(admin);
    DIR *d = opendir(cs_dir); /* the sink's files */
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            char path[512];
            snprintf(path, sizeof(path), "%s/%s", cs_dir, e->d_name);
            unlink(path);
        }
    if (d) {
        closedir(d);
        rmdir(cs_dir);
    }
    if (cs_db_name[0] != '\0') {
        snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", cs_db_name);
        cr_expect_eq(nu_db_connect(nu_it_database_url(), 1, &db, &eb), NU_OK, "%s",
                     nu_err_msg(&eb));
        if (db != NULL)
            cr_expect_eq(nu_db_exec(db, sql, &eb), NU_OK, "%s", nu_err_msg(&eb));
        nu_db_close(db);
        cs_db_name[0] = '\0';
    }
}

TestSuite(coordinator_stream, .init = cs_start, .fini = cs_stop, .timeout = 300);

static size_t cs_body_cb(char *p, size_t sz, size_t n, void *ud)
{
    nu_buf_append(ud, p, sz * n);
    return sz * n;
}

/* One request; the status, and the JSON body (owned, NULL when none). */
static long cs_req(const char *method, const char *path, const char *body, json_t **out)
{
    struct nu_buf b = {0};
    struct curl_slist *hdrs = NULL;
    char url[512];
    long status = 0;
    CURL *c = curl_easy_init();
    cr_assert_not_null(c);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", cs_port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 90L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, cs_body_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    if (body != NULL) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    CURLcode cc = curl_easy_perform(c);
    cr_assert_eq(cc, CURLE_OK, "%s %s: %s", method, path, curl_easy_strerror(cc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    *out = b.len ? json_loadb((const char *)b.data, b.len, 0, NULL) : NULL;
    nu_buf_free(&b);
    return status;
}

/* Records {"id": i} for i in [from, to), spread over the topic's partitions. */
static void cs_produce(int from, int to)
{
    struct nu_errbuf eb = {0};
    rd_kafka_t *p = NULL;
    char v[64];
    cr_assert_eq(
        nu_kafka_client_new(NU_KAFKA_PRODUCER, nu_it_brokers(), NULL, NULL, NULL, 0, &p, &eb),
        NU_OK, "%s", nu_err_msg(&eb));
    for (int i = from; i < to; i++) {
        int n = snprintf(v, sizeof(v), "{\"id\":%d}", i);
        cr_assert_eq(rd_kafka_producev(p, RD_KAFKA_V_TOPIC(cs_topic), RD_KAFKA_V_PARTITION(i % 2),
                                       RD_KAFKA_V_VALUE(v, (size_t)n),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    cr_assert_eq(rd_kafka_flush(p, NU_IT_TIMEOUT_MS), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(p);
}

/* Counts of each id in the sink's finished files; *bad gets rows that are not {id, y=2*id}. */
static void cs_read_sink(int *count, int *bad)
{
    DIR *d = opendir(cs_dir);
    struct dirent *e;
    char path[512], line[256];
    memset(count, 0, CS_ROWS * sizeof(*count));
    *bad = 0;
    cr_assert_not_null(d, "%s", cs_dir);
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || len < 6 || strcmp(e->d_name + len - 6, ".jsonl") != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", cs_dir, e->d_name);
        FILE *f = fopen(path, "r");
        while (f && fgets(line, sizeof(line), f)) {
            json_t *o = json_loads(line, 0, NULL);
            json_int_t id = o ? json_integer_value(json_object_get(o, "id")) : -1;
            if (!o || id < 0 || id >= CS_ROWS ||
                json_integer_value(json_object_get(o, "y")) != 2 * id)
                (*bad)++;
            else
                count[id]++;
            json_decref(o);
        }
        if (f)
            fclose(f);
    }
    closedir(d);
}

/* Wait until ids [0, want) are in the sink; then each exactly once and nothing else. */
static void cs_wait_sink(int want)
{
    int count[CS_ROWS], bad = 0, have = 0;
    int64_t deadline = nu_it_now_ms() + 120000;
    for (;;) {
        cs_read_sink(count, &bad);
        have = 0;
        for (int i = 0; i < want; i++)
            have += count[i] > 0;
        if (have == want || nu_it_now_ms() > deadline)
            break;
        usleep(300 * 1000);
    }
    cr_assert_eq(have, want, "only %d of %d ids reached %s", have, want, cs_dir);
    cr_assert_eq(bad, 0, "%d rows in %s are not {id, y = 2 * id}", bad, cs_dir);
    for (int i = 0; i < CS_ROWS; i++)
        cr_assert_eq(count[i], i < want ? 1 : 0, "id %d is in the sink %d times", i, count[i]);
}

/* Processes of this host running a stage of the job (its planners counted in *planners, the
 * last one's pid in cs_planner_pid). */
static pid_t cs_planner_pid;

static int cs_job_processes(int *planners)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    char spec_name[160], path[64], buf[8192];
    int n = 0;
    snprintf(spec_name, sizeof(spec_name), "nurion-job-%s.json", cs_id);
    *planners = 0;
    while (d && (e = readdir(d)) != NULL) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0)
            continue;
        snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t len = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (len <= 0)
            continue;
        buf[len] = '\0';
        bool mine = false, plan = false;
        for (const char *a = buf; a < buf + len; a += strlen(a) + 1) {
            mine = mine || strstr(a, spec_name) != NULL;
            plan = plan || strcmp(a, "--plan") == 0;
        }
        n += mine;
        *planners += mine && plan;
        if (mine && plan)
            cs_planner_pid = (pid_t)pid;
    }
    if (d)
        closedir(d);
    return n;
}

/* The job document; its state into `state`, the source stage's planned splits returned. */
static json_int_t cs_job(char *state, size_t len)
{
    char path[256];
    json_t *doc = NULL;
    snprintf(path, sizeof(path), "/api/v1/jobs/%s", cs_id);
    cr_assert_eq(cs_req("GET", path, NULL, &doc), 200);
    snprintf(state, len, "%s", json_string_value(json_object_get(doc, "state")));
    json_int_t planned = -1;
    size_t i;
    json_t *st;
    json_array_foreach(json_object_get(doc, "stages"), i, st)
    {
        if (strcmp(json_string_value(json_object_get(st, "id")), "src") == 0 &&
            json_is_integer(json_object_get(st, "planned_splits")))
            planned = json_integer_value(json_object_get(st, "planned_splits"));
    }
    json_decref(doc);
    return planned;
}

Test(coordinator_stream, unbounded_job_streams_until_cancelled)
{
    struct nu_errbuf eb = {0};
    struct nu_kafka_topic_spec topic = {.name = cs_topic, .partitions = 2, .replication = -1};
    char spec[2048], path[256], state[32];
    json_t *doc = NULL;
    int planners = 0;
    int64_t deadline;

    rd_kafka_t *admin = cs_admin();
    cr_assert_eq(nu_kafka_topics_create(admin, &topic, 1, NU_IT_TIMEOUT_MS, &eb), NU_OK, "%s",
                 nu_err_msg(&eb));
    rd_kafka_destroy(admin);
    cs_produce(0, CS_ROWS / 2);

    cs_spec(spec, sizeof(spec));
    long status = cs_req("POST", "/api/v1/jobs", spec, &doc);
    cr_assert_eq(status, 201, "submit: %ld %s", status,
                 json_string_value(json_object_get(json_object_get(doc, "error"), "message")));
    json_decref(doc);

    cs_wait_sink(CS_ROWS / 2);
    cr_assert_gt(cs_job_processes(&planners), 1);
    cr_assert_eq(planners, 1, "planners of the job running: %d", planners);

    /* a second coordinator on the same store adopts the running job: it follows the planner
     * it finds on this host and starts no second one (which would fence the first) */
    nu_service_t *svc2 = NULL;
    pthread_t thr2;
    cs_service(&svc2, &thr2);
    usleep(7000 * 1000); /* two adoption scans and foreign checks */
    cs_job_processes(&planners);
    nu_service_stop(svc2);
    pthread_join(thr2, NULL);
    nu_service_destroy(svc2);
    cr_assert_eq(planners, 1, "planners of the job after a second coordinator: %d", planners);
    cs_job(state, sizeof(state));
    cr_assert_str_eq(state, "running");

    /* a planner killed mid-stream is restarted, and goes on where the committed plan ends */
    pid_t old = cs_planner_pid;
    cr_assert_eq(kill(old, SIGKILL), 0);
    deadline = nu_it_now_ms() + 20000;
    while ((cs_job_processes(&planners), planners != 1 || cs_planner_pid == old) &&
           nu_it_now_ms() < deadline)
        usleep(200 * 1000);
    cr_assert(planners == 1 && cs_planner_pid != old, "the planner was not restarted");

    /* more records arrive while the job runs: they follow, each once */
    cs_produce(CS_ROWS / 2, CS_ROWS);
    cs_wait_sink(CS_ROWS);

    /* running, never finished by itself, with the planner's progress (20 records a split) */
    deadline = nu_it_now_ms() + 30000;
    json_int_t planned;
    while ((planned = cs_job(state, sizeof(state))) < CS_ROWS / 20 && nu_it_now_ms() < deadline)
        usleep(300 * 1000);
    cr_assert_str_eq(state, "running");
    cr_assert_geq(planned, CS_ROWS / 20, "planned_splits %lld", (long long)planned);
    cr_assert_eq(cs_job_processes(&planners) > 0 && planners == 1, true);

    snprintf(path, sizeof(path), "/api/v1/jobs/%s/cancel", cs_id);
    cr_assert_eq(cs_req("POST", path, "{}", &doc), 200);
    json_decref(doc);
    cs_job(state, sizeof(state));
    cr_assert_str_eq(state, "cancelled");

    /* the planner and the stages leave (at the latest after the grace period) */
    int left = 0;
    deadline = nu_it_now_ms() + 40000;
    while ((left = cs_job_processes(&planners)) > 0 && nu_it_now_ms() < deadline)
        usleep(200 * 1000);
    cr_assert_eq(left, 0, "%d processes of the job left after the cancel", left);
    cs_wait_sink(CS_ROWS);
    cs_job(state, sizeof(state));
    cr_assert_str_eq(state, "cancelled");
}
