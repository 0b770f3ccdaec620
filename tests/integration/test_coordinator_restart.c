/*
 * Resilience of a real `nurion coordinator` process (local launcher mode) against the real broker
 * and PostgreSQL: SIGTERM with a job running exits within a bound; SIGKILL mid-job and a restart
 * still complete the job exactly (sink ids, lineage rows, no duplicated instance); PostgreSQL
 * going away for 10 s mid-job leaves the stages running, /readyz false, and ingestion catches up.
 *
 * Each test gives the coordinator a store of its own (a local launcher adopts every running job of
 * its store): a private database on the shared server, or, for the outage test, a throwaway
 * PostgreSQL cluster of its own on another port, so stopping it disturbs nobody. The fixture's
 * teardown stops whatever the test started (coordinator, stage processes, cluster) even when the
 * test fails.
 */
#include "integ.h"

#include "common/buf.h"
#include "common/job.h"
#include "common/mem.h"
#include "coordinator/db.h"
#include "coordinator/store.h"
#include "stage/kafka.h"

#include <criterion/logging.h>
#include <curl/curl.h>
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define CR_PGBIN   "/usr/lib/postgresql/15/bin"
#define CR_NSTAGES 3
/* SIGTERM to exit: the launcher's grace for stage processes, the ingester's bounded close, and
 * slack for a busy machine. */
#define CR_EXIT_BOUND_MS 15000

static const char *const cr_stages[CR_NSTAGES] = {"src", "slow", "out"};
static const int cr_parallel[CR_NSTAGES] = {1, 2, 1}; /* configured instances per stage */

struct cr_env {
    char id[96], out[256], db_name[64], db_url[512];
    char pg_dir[256]; /* own cluster ("" = none) */
    int pg_port;
    pid_t coord;
    unsigned port;
    int starts;
};

static struct cr_env cr;

/* ---- processes ---------------------------------------------------------------------------- */

/* Run argv (as the postgres user when `as_pg`), wait, return its exit status (-1: not run). */
static int cr_run(const char *const *argv, bool as_pg)
{
    pid_t pid = fork();
    if (pid == 0) {
        int dn = open("/dev/null", O_WRONLY);
        if (dn >= 0) {
            dup2(dn, 1);
            dup2(dn, 2);
        }
        if (as_pg) {
            const char *full[32] = {"runuser", "-u", "postgres", "--"};
            int n = 4;
            for (int i = 0; argv[i] != NULL && n < 31; i++)
                full[n++] = argv[i];
            full[n] = NULL;
            execvp("runuser", (char *const *)full);
        } else {
            execvp(argv[0], (char *const *)argv);
        }
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A free TCP port on 127.0.0.1 (closed again: a small race, fine for tests). */
static int cr_free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* The parent pid of `pid` (0 when it is gone). */
static int cr_ppid(int pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    size_t got = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[got] = '\0';
    const char *p = strrchr(buf, ')'); /* "pid (comm) state ppid ..." */
    int ppid = 0;
    char state;
    if (p == NULL || sscanf(p + 1, " %c %d", &state, &ppid) != 2)
        return 0;
    return ppid;
}

/*
 * Stage processes of the job (argv: nurion stage --job <spec of id> --stage S ...) on this host;
 * `stage` NULL counts them all. A process whose parent is one of them is not another instance
 * but a child of one between fork and exec (an exec UDF starting, a sanitizer's helper), so it
 * is not counted. Their pids are written to `pids` (may be NULL) as text.
 */
static int cr_list_processes(const char *stage, char *pids, size_t len)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int found[64], nfound = 0, n = 0;
    if (pids != NULL && len > 0)
        pids[0] = '\0';
    while (d != NULL && (e = readdir(d)) != NULL && nfound < 64) {
        char path[300], buf[4096];
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        size_t got = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[got] = '\0';
        if (got == 0 || strcmp(buf + strlen(buf) + 1, "stage") != 0)
            continue;
        bool job = false, st = stage == NULL;
        for (const char *a = buf; a < buf + got; a += strlen(a) + 1) {
            if (strstr(a, cr.id) != NULL && strstr(a, ".json") != NULL)
                job = true;
            if (stage != NULL && strcmp(a, stage) == 0)
                st = true;
        }
        if (job && st)
            found[nfound++] = atoi(e->d_name);
    }
    if (d != NULL)
        closedir(d);
    for (int i = 0; i < nfound; i++) {
        int pp = cr_ppid(found[i]);
        bool child = false;
        for (int k = 0; k < nfound && !child; k++)
            child = found[k] == pp;
        if (child)
            continue;
        n++;
        if (pids != NULL && strlen(pids) + 12 < len)
            snprintf(pids + strlen(pids), len - strlen(pids), " %d", found[i]);
    }
    return n;
}

static int cr_count_processes(const char *stage)
{
    return cr_list_processes(stage, NULL, 0);
}

/* Kill every stage process of the job left behind; returns how many there were. */
static int cr_kill_processes(void)
{
    int n = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        char path[300], buf[4096];
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        size_t len = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[len] = '\0';
        if (len == 0 || strcmp(buf + strlen(buf) + 1, "stage") != 0)
            continue;
        for (const char *a = buf; a < buf + len; a += strlen(a) + 1)
            if (strstr(a, cr.id) != NULL && strstr(a, ".json") != NULL) {
                n += kill((pid_t)atoi(e->d_name), SIGKILL) == 0;
                break;
            }
    }
    if (d != NULL)
        closedir(d);
    return n;
}

/* ---- the coordinator ---------------------------------------------------------------------- */

static void cr_coord_start(void)
{
    char log[512];
    snprintf(log, sizeof(log), "/tmp/nurion-crt-%s-%d.log", cr.id, cr.starts++);
    unlink(log);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        setenv("NURION_DATABASE_URL", cr.db_url, 1);
        execl(NU_BINARY_DIR "/bin/nurion", "nurion", "coordinator", "--listen", "127.0.0.1:0",
              "--set", "autoscale.enabled=false", "--set",
              "launcher.exe=" NU_BINARY_DIR "/bin/nurion", (char *)NULL);
        _exit(127);
    }
    cr.coord = pid;
    cr.port = 0;
    int64_t deadline = nu_it_now_ms() + 30000;
    while (cr.port == 0 && nu_it_now_ms() < deadline) {
        char line[2048];
        FILE *f = fopen(log, "r");
        while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
            static const char key[] = "comp=coordinator msg=\"listening\" port=";
            const char *p = strstr(line, key);
            if (p != NULL)
                cr.port = (unsigned)atoi(p + strlen(key));
        }
        if (f != NULL)
            fclose(f);
        int status;
        cr_assert_eq(waitpid(pid, &status, WNOHANG), 0, "the coordinator exited; see %s", log);
        if (cr.port == 0)
            usleep(100 * 1000);
    }
    cr_assert_gt(cr.port, 0, "the coordinator did not start listening; see %s", log);
}

/* Send `sig` and wait up to `ms` for the exit; returns the time it took, or -1 (then killed). */
static int64_t cr_coord_stop(int sig, int ms, int *status)
{
    int64_t t0 = nu_it_now_ms(), took = -1;
    *status = -1;
    if (cr.coord <= 0)
        return 0;
    kill(cr.coord, sig);
    while (nu_it_now_ms() - t0 < ms) {
        if (waitpid(cr.coord, status, WNOHANG) == cr.coord) {
            took = nu_it_now_ms() - t0;
            break;
        }
        usleep(20 * 1000);
    }
    if (took < 0) {
        kill(cr.coord, SIGKILL);
        waitpid(cr.coord, NULL, 0);
    }
    cr.coord = 0;
    return took;
}

static size_t cr_body_cb(char *p, size_t sz, size_t n, void *ud)
{
    struct nu_buf *b = ud;
    nu_buf_append(b, p, sz * n);
    return sz * n;
}

/* One request to the coordinator; returns the parsed JSON body (or NULL), *status 0 when the
 * request itself failed. */
static json_t *cr_http(const char *method, const char *path, const char *body, long *status)
{
    char url[1024];
    struct nu_buf b = {0};
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    CURL *c = curl_easy_init();
    cr_assert_not_null(c);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", cr.port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, cr_body_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    if (body != NULL)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    *status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    json_t *j = b.len ? json_loadb((const char *)b.data, b.len, 0, NULL) : NULL;
    nu_buf_free(&b);
    return j;
}

/* The job's state and the splits_done of stage `stage` (-1 when unknown). */
static void cr_job_of(const char *id, char *state, size_t len, const char *stage, int64_t *done)
{
    char path[256];
    long st = 0;
    size_t i;
    json_t *s;
    snprintf(path, sizeof(path), "/api/v1/jobs/%s", id);
    json_t *j = cr_http("GET", path, NULL, &st);
    snprintf(state, len, "%s", st == 200 ? json_string_value(json_object_get(j, "state")) : "?");
    *done = -1;
    json_array_foreach(json_object_get(j, "stages"), i, s)
    {
        if (strcmp(json_string_value(json_object_get(s, "id")), stage) == 0)
            *done = json_integer_value(json_object_get(s, "splits_done"));
    }
    json_decref(j);
}

static void cr_job(char *state, size_t len, const char *stage, int64_t *done)
{
    cr_job_of(cr.id, state, len, stage, done);
}

/* Wait until the stage has `n` splits done (ingested); fails after `ms`. */
static void cr_wait_done(const char *stage, int64_t n, int ms)
{
    char state[32];
    int64_t done = -1, deadline = nu_it_now_ms() + ms;
    while (nu_it_now_ms() < deadline) {
        cr_job(state, sizeof(state), stage, &done);
        if (done >= n)
            return;
        cr_assert(strcmp(state, "failed") != 0 && strcmp(state, "cancelled") != 0, "job %s", state);
        usleep(200 * 1000);
    }
    cr_assert_fail("stage %s has %lld splits done after %d ms, want %lld", stage, (long long)done,
                   ms, (long long)n);
}

static void cr_wait_state(const char *want, int ms)
{
    char state[32] = "";
    int64_t done, deadline = nu_it_now_ms() + ms;
    while (nu_it_now_ms() < deadline) {
        cr_job(state, sizeof(state), "out", &done);
        if (strcmp(state, want) == 0)
            return;
        usleep(300 * 1000);
    }
    cr_assert_fail("job %s is \"%s\" after %d ms, not \"%s\"", cr.id, state, ms, want);
}

/* ---- fixture ------------------------------------------------------------------------------ */

/* The job: generate `rows` rows in splits of two, an exec UDF sleeping `sleep_s` a row on two
 * instances, a file sink. */
static void cr_submit_job(const char *id, const char *out, int rows, double sleep_s)
{
    char spec[4096];
    long st = 0;
    snprintf(spec, sizeof(spec),
             "{\"job_id\":\"%s\",\"format\":\"json\",\"stages\":["
             "{\"id\":\"src\",\"operator\":\"generate\",\"partitions\":4,"
             "\"config\":{\"rows\":%d,\"split_rows\":2}},"
             "{\"id\":\"slow\",\"operator\":\"exec\",\"config\":{\"argv\":[\"python3\",\"-c\","
             "\"import sys,time; sys.path.insert(0,'%s/python'); import nurion_udf as u\\n"
             "@u.map\\ndef f(r):\\n    time.sleep(%g)\\n    return r\\nu.run()\"]},"
             "\"parallelism\":{\"min\":2,\"max\":2},\"partitions\":4,\"upstream\":[\"src\"]},"
             "{\"id\":\"out\",\"operator\":\"file_sink\",\"partitions\":4,"
             "\"config\":{\"path\":\"%s\",\"format\":\"jsonl\"},\"upstream\":[\"slow\"]}]}",
             id, rows, NU_SOURCE_DIR, sleep_s, out);
    json_t *j = cr_http("POST", "/api/v1/jobs", spec, &st);
    cr_assert_eq(st, 201, "submit: %ld", st);
    json_decref(j);
}

static void cr_submit(int rows, double sleep_s)
{
    cr_submit_job(cr.id, cr.out, rows, sleep_s);
}

static void cr_init_ids(const char *prefix)
{
    memset(&cr, 0, sizeof(cr));
    snprintf(cr.id, sizeof(cr.id), "%s-%ld-%lld", prefix, (long)getpid(),
             (long long)nu_it_now_ms() % 100000000);
    snprintf(cr.out, sizeof(cr.out), "/tmp/nurion-it-%s", cr.id);
    cr_assert_eq(mkdir(cr.out, 0755), 0);
}

/* A private database on the shared server. */
static void cr_setup_db(void)
{
    struct nu_errbuf eb = {0};
    nu_db_t *db = NULL;
    char sql[128];
    cr_init_ids("crt");
    const char *base = nu_it_database_url();
    const char *slash = strrchr(base, '/');
    cr_assert(slash != NULL && slash > base + 12, "cannot derive a database URL from %s", base);
    snprintf(cr.db_name, sizeof(cr.db_name), "crt_%ld_%lld", (long)getpid(),
             (long long)nu_it_now_ms() % 100000000);
    snprintf(cr.db_url, sizeof(cr.db_url), "%.*s/%s", (int)(slash - base), base, cr.db_name);
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", cr.db_name);
    cr_assert_eq(nu_db_connect(base, 1, &db, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(nu_db_exec(db, sql, &eb), NU_OK, "%s", nu_err_msg(&eb));
    nu_db_close(db);
}

static void cr_pg_ctl(const char *action)
{
    char data[300], log[300], opts[256];
    snprintf(data, sizeof(data), "%s/data", cr.pg_dir);
    snprintf(log, sizeof(log), "%s/log", cr.pg_dir);
    snprintf(opts, sizeof(opts),
             "-p %d -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60",
             cr.pg_port);
    if (strcmp(action, "start") == 0) {
        const char *const argv[] = {
            CR_PGBIN "/pg_ctl", "-D", data, "-l", log, "-w", "-t", "30", "-o", opts, "start", NULL};
        cr_assert_eq(cr_run(argv, true), 0, "pg_ctl start failed; see %s", log);
    } else {
        const char *const argv[] = {
            CR_PGBIN "/pg_ctl", "-D", data, "-m", action, "-w", "-t", "30", "stop", NULL};
        cr_run(argv, true);
    }
}

/* A throwaway cluster of our own, on a free port. */
static void cr_setup_own_pg(void)
{
    char data[300];
    cr_init_ids("crtpg");
    snprintf(cr.pg_dir, sizeof(cr.pg_dir), "/tmp/nurion-crtpg-XXXXXX");
    cr_assert_not_null(mkdtemp(cr.pg_dir));
    const char *const chown_argv[] = {"chown", "postgres:", cr.pg_dir, NULL};
    cr_assert_eq(cr_run(chown_argv, false), 0);
    snprintf(data, sizeof(data), "%s/data", cr.pg_dir);
    const char *const initdb[] = {
        CR_PGBIN "/initdb", "-D", data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8",
        "--locale=C.UTF-8", NULL};
    cr_assert_eq(cr_run(initdb, true), 0, "initdb failed");
    cr.pg_port = cr_free_port();
    cr_pg_ctl("start");
    snprintf(cr.db_url, sizeof(cr.db_url), "postgresql://postgres@127.0.0.1:%d/postgres",
             cr.pg_port);
}

/* Delete the job's topics (created by the coordinator for this test). */
static void cr_delete_topics(void)
{
    static const char *const suffixes[] = {"src.plan", "src", "src.dlq", "slow",
                                           "slow.dlq", "out", "out.dlq", "_events"};
    char names[8][NU_JOB_NAME_MAX];
    const char *ptrs[8];
    struct nu_errbuf eb = {0};
    rd_kafka_t *admin = NULL;
    for (size_t i = 0; i < 8; i++) {
        snprintf(names[i], sizeof(names[i]), "nurion.%s.%s", cr.id, suffixes[i]);
        ptrs[i] = names[i];
    }
    if (nu_kafka_client_new(NU_KAFKA_ADMIN, nu_it_brokers(), NULL, NULL, NULL, 0, &admin, &eb) ==
        NU_OK)
        nu_kafka_topics_delete(admin, ptrs, 8, NU_IT_TIMEOUT_MS, &eb); /* best effort */
    if (admin != NULL)
        rd_kafka_destroy(admin);
}

/* Whatever the test left: the coordinator, stage processes, the database or cluster. */
static void cr_teardown(void)
{
    int status;
    cr_coord_stop(SIGKILL, 5000, &status);
    int64_t deadline = nu_it_now_ms() + 10000; /* the stages got SIGTERM from their parent */
    while (cr_count_processes(NULL) > 0 && nu_it_now_ms() < deadline)
        usleep(100 * 1000);
    cr_kill_processes();
    if (cr.pg_dir[0] != '\0') {
        cr_pg_ctl("immediate");
        const char *const rm[] = {"rm", "-rf", cr.pg_dir, NULL};
        cr_run(rm, false);
    }
    if (cr.db_name[0] != '\0') {
        struct nu_errbuf eb = {0};
        nu_db_t *db = NULL;
        char sql[160];
        snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", cr.db_name);
        if (nu_db_connect(nu_it_database_url(), 1, &db, &eb) == NU_OK)
            nu_db_exec(db, sql, &eb);
        nu_db_close(db);
    }
    cr_delete_topics();
    const char *const rm[] = {"rm", "-rf", cr.out, NULL};
    cr_run(rm, false);
}

/* ---- checks ------------------------------------------------------------------------------- */

/* The sink's files hold ids 0..rows-1, each exactly once. */
static void cr_check_sink(int rows)
{
    int *seen = nu_xcalloc((size_t)rows, sizeof(int));
    int total = 0;
    DIR *d = opendir(cr.out);
    struct dirent *e;
    cr_assert_not_null(d);
    while ((e = readdir(d)) != NULL) {
        char path[600], line[4096];
        if (strstr(e->d_name, ".jsonl") == NULL || e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", cr.out, e->d_name);
        FILE *f = fopen(path, "r");
        while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
            json_t *row = json_loads(line, 0, NULL);
            json_int_t id = json_integer_value(json_object_get(row, "id"));
            cr_assert(json_is_integer(json_object_get(row, "id")) && id >= 0 && id < rows,
                      "bad row in %s: %s", path, line);
            seen[id]++;
            total++;
            json_decref(row);
        }
        if (f != NULL)
            fclose(f);
    }
    closedir(d);
    for (int i = 0; i < rows; i++)
        cr_assert_eq(seen[i], 1, "id %d is in the sink %d times", i, seen[i]);
    cr_assert_eq(total, rows);
    free(seen);
}

static int64_t cr_scalar(nu_db_t *db, const char *sql)
{
    struct nu_errbuf eb = {0};
    nu_db_res_t *res = NULL;
    cr_assert_eq(nu_db_query(db, sql, 1, (const char *const[]){cr.id}, &res, &eb), NU_OK, "%s: %s",
                 sql, nu_err_msg(&eb));
    int64_t v = nu_db_res_int(res, 0, 0);
    nu_db_res_free(res);
    return v;
}

/* Lineage: one row per split and stage (rows/2 splits each), none twice, counters equal to the
 * rows, and every sink split's ancestry reaches a plan split consumed by the source. */
static void cr_check_lineage(int rows)
{
    struct nu_errbuf eb = {0};
    nu_db_t *db = NULL;
    int64_t n = rows / 2;
    cr_assert_eq(nu_store_connect(cr.db_url, &db, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(cr_scalar(db, "SELECT count(*) FROM splits WHERE job_id = $1"), CR_NSTAGES * n);
    cr_assert_eq(cr_scalar(db, "SELECT count(*) FROM (SELECT split_id FROM splits"
                               " WHERE job_id = $1 GROUP BY split_id HAVING count(*) > 1) d"),
                 0);
    for (int s = 0; s < CR_NSTAGES; s++) {
        char sql[256];
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM splits WHERE job_id = $1 AND stage_id = '%s'", cr_stages[s]);
        cr_assert_eq(cr_scalar(db, sql), n, "lineage rows of stage %s", cr_stages[s]);
        snprintf(sql, sizeof(sql),
                 "SELECT splits_done FROM stages WHERE job_id = $1 AND stage_id = '%s'",
                 cr_stages[s]);
        cr_assert_eq(cr_scalar(db, sql), n, "splits_done of stage %s", cr_stages[s]);
    }
    cr_assert_eq(cr_scalar(db, "WITH RECURSIVE up(origin, split) AS ("
                               "  SELECT split_id, split_id FROM splits"
                               "  WHERE job_id = $1 AND stage_id = 'out'"
                               " UNION SELECT up.origin, e.parent FROM up JOIN split_edges e"
                               "  ON e.job_id = $1 AND e.child = up.split)"
                               " SELECT count(DISTINCT up.origin) FROM up JOIN splits s"
                               "  ON s.job_id = $1 AND s.split_id = up.split"
                               "  AND s.stage_id = 'src' AND s.parents = '{}'"),
                 n, "sink splits whose lineage reaches a plan split");
    nu_store_close(db);
}

/* Once the job is done, every instance row ends (none stays or comes back `running`). */
static void cr_check_instances_ended(void)
{
    struct nu_errbuf eb = {0};
    nu_db_t *db = NULL;
    int64_t running = -1, rows = 0, deadline = nu_it_now_ms() + 30000;
    cr_assert_eq(nu_store_connect(cr.db_url, &db, &eb), NU_OK, "%s", nu_err_msg(&eb));
    while (nu_it_now_ms() < deadline) {
        running = cr_scalar(db, "SELECT count(*) FROM instances WHERE job_id = $1"
                                " AND state = 'running'");
        rows = cr_scalar(db, "SELECT count(*) FROM instances WHERE job_id = $1");
        if (running == 0 && cr_count_processes(NULL) == 0)
            break;
        usleep(300 * 1000);
    }
    cr_assert_eq(running, 0, "instance rows still running after the job ended");
    cr_assert_geq(rows, CR_NSTAGES);
    usleep(1500 * 1000); /* late events are ingested within a batch or two */
    cr_assert_eq(cr_scalar(db, "SELECT count(*) FROM instances WHERE job_id = $1"
                               " AND state = 'running'"),
                 0, "an ended instance came back to running");
    nu_store_close(db);
}

/* Samples the number of stage processes per stage every 50 ms, keeping the maximum. */
struct cr_sampler {
    pthread_t thr;
    atomic_int stop;
    int max[CR_NSTAGES];
    char at_max[CR_NSTAGES][256]; /* the pids seen at the maximum */
};

static void *cr_sampler_main(void *arg)
{
    struct cr_sampler *s = arg;
    while (!atomic_load(&s->stop)) {
        for (int i = 0; i < CR_NSTAGES; i++) {
            char pids[256];
            int n = cr_list_processes(cr_stages[i], pids, sizeof(pids));
            if (n > s->max[i]) {
                s->max[i] = n;
                snprintf(s->at_max[i], sizeof(s->at_max[i]), "%s", pids);
            }
        }
        usleep(50 * 1000);
    }
    return NULL;
}

TestSuite(coordinator_restart, .timeout = 300);

Test(coordinator_restart, sigterm_with_running_job_exits_in_bound, .init = cr_setup_db,
     .fini = cr_teardown)
{
    int status;
    char other[128], other_out[300], path[256], state[32] = "";
    int64_t done = 0;
    long st = 0;
    cr_coord_start();
    /* A job that ends and is deleted with its topics while the ingester follows them: what
     * left librdkafka's consumer unable to be destroyed. */
    snprintf(other, sizeof(other), "%s-gone", cr.id);
    snprintf(other_out, sizeof(other_out), "%s/gone", cr.out);
    cr_assert_eq(mkdir(other_out, 0755), 0);
    cr_submit_job(other, other_out, 20, 0.001);
    int64_t deadline = nu_it_now_ms() + 60000;
    while (strcmp(state, "succeeded") != 0 && nu_it_now_ms() < deadline) {
        usleep(200 * 1000);
        cr_job_of(other, state, sizeof(state), "out", &done);
    }
    cr_assert_str_eq(state, "succeeded");
    snprintf(path, sizeof(path), "/api/v1/jobs/%s?topics=true", other);
    json_decref(cr_http("DELETE", path, NULL, &st));
    cr_assert_eq(st, 204);
    cr_submit(400, 0.05);
    cr_wait_done("slow", 10, 60000);
    cr_assert_eq(cr_count_processes("slow"), 2);
    int64_t took = cr_coord_stop(SIGTERM, CR_EXIT_BOUND_MS, &status);
    cr_assert_geq(took, 0, "the coordinator did not exit within %d ms of SIGTERM",
                  CR_EXIT_BOUND_MS);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit status %d", status);
    cr_log_info("coordinator exited %lld ms after SIGTERM", (long long)took);
    /* it stopped its stage processes before leaving */
    cr_assert_eq(cr_count_processes(NULL), 0);
}

Test(coordinator_restart, sigkill_mid_job_then_restart_completes_exactly, .init = cr_setup_db,
     .fini = cr_teardown)
{
    const int rows = 300;
    int status;
    struct cr_sampler smp = {0};
    atomic_init(&smp.stop, 0);
    cr_assert_eq(pthread_create(&smp.thr, NULL, cr_sampler_main, &smp), 0);
    cr_coord_start();
    cr_submit(rows, 0.03);
    cr_wait_done("out", 20, 90000);
    char state[32];
    int64_t done = 0;
    cr_job(state, sizeof(state), "out", &done);
    cr_assert_str_eq(state, "running", "the job must still be running when its coordinator dies");
    cr_assert_lt(done, rows / 2);
    cr_coord_stop(SIGKILL, 5000, &status);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    usleep(500 * 1000);
    cr_coord_start();
    cr_wait_state("succeeded", 180000);
    atomic_store(&smp.stop, 1);
    pthread_join(smp.thr, NULL);
    for (int i = 0; i < CR_NSTAGES; i++)
        cr_expect_leq(smp.max[i], cr_parallel[i], "stage %s had %d live processes at once:%s",
                      cr_stages[i], smp.max[i], smp.at_max[i]);
    cr_check_sink(rows);
    cr_check_lineage(rows);
    cr_check_instances_ended();
}

Test(coordinator_restart, database_outage_of_ten_seconds, .init = cr_setup_own_pg,
     .fini = cr_teardown)
{
    const int rows = 600;
    long st = 0;
    int slow_alive = 0;
    cr_coord_start();
    json_t *j = cr_http("GET", "/readyz", NULL, &st);
    json_decref(j);
    cr_assert_eq(st, 200, "ready before the outage");
    cr_submit(rows, 0.05);
    cr_wait_done("slow", 10, 60000);

    cr_pg_ctl("fast");
    int64_t down_at = nu_it_now_ms();
    size_t files_before = 0, files_after = 0;
    bool ready_seen = false, not_ready_seen = false;
    DIR *d = opendir(cr.out);
    for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;)
        files_before += strstr(e->d_name, ".jsonl") != NULL;
    if (d != NULL)
        closedir(d);
    while (nu_it_now_ms() - down_at < 10000) {
        j = cr_http("GET", "/readyz", NULL, &st);
        json_decref(j);
        if (st == 503)
            not_ready_seen = true;
        else if (st == 200 && nu_it_now_ms() - down_at > 3000)
            ready_seen = true; /* the first seconds may answer from the last check */
        int n = cr_count_processes("slow");
        slow_alive = n > slow_alive ? n : slow_alive;
        usleep(500 * 1000);
    }
    cr_assert(not_ready_seen, "/readyz never said not ready while PostgreSQL was down");
    cr_assert(!ready_seen, "/readyz said ready while PostgreSQL was down");
    /* the stages kept going without the store */
    cr_assert_eq(slow_alive, 2, "the slow stage's processes did not keep running");
    d = opendir(cr.out);
    for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;)
        files_after += strstr(e->d_name, ".jsonl") != NULL;
    if (d != NULL)
        closedir(d);
    cr_assert_gt(files_after, files_before, "no sink output during the outage");

    cr_pg_ctl("start");
    int64_t deadline = nu_it_now_ms() + 30000;
    do {
        j = cr_http("GET", "/readyz", NULL, &st);
        json_decref(j);
        if (st != 200)
            usleep(300 * 1000);
    } while (st != 200 && nu_it_now_ms() < deadline);
    cr_assert_eq(st, 200, "/readyz not ready again 30 s after PostgreSQL came back");
    cr_wait_state("succeeded", 180000);
    cr_check_sink(rows);
    cr_check_lineage(rows);
}
