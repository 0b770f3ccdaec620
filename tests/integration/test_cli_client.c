/*
 * Integration tests of the API client commands (src/cli/cmd_client*.c, src/cli/client.c): a real
 * coordinator runs in-process in local launcher mode, on a database of its own, with the real
 * broker; the built `nurion` binary is run against it as a user would, and its exit status,
 * stdout and stderr are checked.
 */
#include "integ.h"

#include "cli/service.h"
#include "common/job.h"
#include "coordinator/db.h"
#include "stage/kafka.h"

#include <curl/curl.h>
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#define CLI_TOKEN "cli-it-token-7"

extern char **environ;

static nu_service_t *cli_svc;
static pthread_t cli_thr;
static char cli_url[64];
static char cli_db_url[512];
static char cli_db_name[64];
static char cli_jobs[4][96]; /* jobs whose topics are deleted after the service stopped */
static size_t cli_njobs;

static void *cli_run_service(void *arg)
{
    nu_service_run(arg, NULL);
    return NULL;
}

/* A local-mode coordinator on a fresh database (a local launcher adopts every running job of
 * its store, so it must not share the store of other tests). */
static void cli_start(void)
{
    struct nu_errbuf eb = {0};
    struct nu_service_conf c = {0};
    nu_db_t *db = NULL;
    char sql[128];
    const char *base = nu_it_database_url();
    const char *slash = strrchr(base, '/');
    cr_assert(slash != NULL && slash > base + 12, "cannot derive a database URL from %s", base);
    snprintf(cli_db_name, sizeof(cli_db_name), "clit_%ld_%lld", (long)getpid(),
             (long long)nu_it_now_ms() % 1000000);
    snprintf(cli_db_url, sizeof(cli_db_url), "%.*s/%s", (int)(slash - base), base, cli_db_name);
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", cli_db_name);
    cr_assert_eq(nu_db_connect(base, 1, &db, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(nu_db_exec(db, sql, &eb), NU_OK, "%s", nu_err_msg(&eb));
    nu_db_close(db);

    c.listen = "127.0.0.1:0";
    c.threads = 4;
    c.database_url = cli_db_url;
    c.brokers = nu_it_brokers();
    c.auth_token = CLI_TOKEN;
    c.launcher_mode = NU_LAUNCH_LOCAL;
    c.max_body_bytes = 64 * 1024;
    nu_autoscale_conf_default(&c.autoscale);
    c.autoscale.enabled = false;
    c.nurion_exe = NU_BINARY_DIR "/bin/nurion";
    c.ingest_jobs_like = "clit-%";
    cr_assert_eq(nu_service_new(&c, &cli_svc, &eb), NU_OK, "%s", nu_err_msg(&eb));
    snprintf(cli_url, sizeof(cli_url), "http://127.0.0.1:%u", nu_service_port(cli_svc));
    cr_assert_eq(pthread_create(&cli_thr, NULL, cli_run_service, cli_svc), 0);
}

static void cli_stop(void)
{
    static const char *const suffixes[] = {"src.plan", "src", "src.dlq", "dbl",
                                           "dbl.dlq",  "out", "out.dlq", "_events"};
    struct nu_errbuf eb = {0};
    nu_db_t *db = NULL;
    rd_kafka_t *admin = NULL;
    char sql[128];
    if (cli_svc != NULL) {
        nu_service_stop(cli_svc);
        pthread_join(cli_thr, NULL);
        nu_service_destroy(cli_svc);
        cli_svc = NULL;
    }
    if (cli_njobs > 0 && nu_kafka_client_new(NU_KAFKA_ADMIN, nu_it_brokers(), NULL, NULL, NULL, 0,
                                             &admin, &eb) == NU_OK) {
        for (size_t j = 0; j < cli_njobs; j++) {
            char names[8][NU_JOB_NAME_MAX];
            const char *ptrs[8];
            for (size_t i = 0; i < 8; i++) {
                snprintf(names[i], sizeof(names[i]), "nurion.%.96s.%s", cli_jobs[j], suffixes[i]);
                ptrs[i] = names[i];
            }
            nu_kafka_topics_delete(admin, ptrs, 8, NU_IT_TIMEOUT_MS, &eb); /* best effort */
        }
    }
    if (admin != NULL)
        rd_kafka_destroy(admin);
    cli_njobs = 0;
    if (cli_db_name[0] == '\0')
        return;
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", cli_db_name);
    cr_expect_eq(nu_db_connect(nu_it_database_url(), 1, &db, &eb), NU_OK, "%s", nu_err_msg(&eb));
    if (db != NULL)
        cr_expect_eq(nu_db_exec(db, sql, &eb), NU_OK, "%s", nu_err_msg(&eb));
    nu_db_close(db);
    cli_db_name[0] = '\0';
}

/* A fresh job id, remembered for the topic clean-up. */
static const char *cli_job_id(char *buf, size_t n)
{
    static unsigned k;
    snprintf(buf, n, "clit-%ld-%lld-%u", (long)getpid(), (long long)nu_it_now_ms() % 100000000,
             k++);
    cr_assert_lt(cli_njobs, sizeof(cli_jobs) / sizeof(cli_jobs[0]));
    snprintf(cli_jobs[cli_njobs++], sizeof(cli_jobs[0]), "%s", buf);
    return buf;
}

/* Write a generate -> map -> file_sink spec to a temporary file; returns its path in `file`. */
static void cli_spec_file(char *file, size_t n, const char *id, const char *dir, long rows,
                          long split_rows)
{
    snprintf(file, n, "/tmp/nurion-clit-%s.json", id);
    FILE *f = fopen(file, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "{\"job_id\":\"%s\",\"defaults\":{\"max_attempts\":1},\"stages\":["
            "{\"id\":\"src\",\"operator\":\"generate\",\"partitions\":2,"
            "\"config\":{\"rows\":%ld,\"split_rows\":%ld}},"
            "{\"id\":\"dbl\",\"operator\":\"map\",\"upstream\":[\"src\"],\"partitions\":2,"
            "\"config\":{\"columns\":{\"y\":\"id * 2\"}}},"
            "{\"id\":\"out\",\"operator\":\"file_sink\",\"upstream\":[\"dbl\"],\"partitions\":2,"
            "\"config\":{\"path\":\"%s\",\"format\":\"jsonl\"}}]}\n",
            id, rows, split_rows, dir);
    fclose(f);
}

struct cli_out {
    int code;
    char *out; /* stdout, NUL-terminated */
    char *err; /* stderr */
    json_t *json;
};

static void cli_out_free(struct cli_out *o)
{
    free(o->out);
    free(o->err);
    json_decref(o->json);
    memset(o, 0, sizeof(*o));
}

static char *cli_slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    char *buf = malloc(1 << 20);
    cr_assert_not_null(buf);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

struct cli_proc {
    pid_t pid;
    char out_path[64];
    char err_path[64];
};

/* Start `nurion ARGS…` (NULL-terminated) with stdout and stderr captured. */
static void cli_spawn(struct cli_proc *p, const char *const *args)
{
    const char *argv[32] = {NU_BINARY_DIR "/bin/nurion"};
    size_t n = 1;
    for (; args[n - 1] != NULL && n < 31; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    snprintf(p->out_path, sizeof(p->out_path), "/tmp/nurion-clit-out-XXXXXX");
    snprintf(p->err_path, sizeof(p->err_path), "/tmp/nurion-clit-err-XXXXXX");
    int fo = mkstemp(p->out_path), fe = mkstemp(p->err_path);
    cr_assert(fo >= 0 && fe >= 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fo, STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, fe, STDERR_FILENO);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    cr_assert_eq(posix_spawn(&p->pid, argv[0], &fa, NULL, (char **)argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(fo);
    close(fe);
}

/* Wait (up to timeout_s) for a process of cli_spawn and collect its output. */
static void cli_wait(struct cli_proc *p, int timeout_s, struct cli_out *o)
{
    int st = 0;
    int64_t deadline = nu_it_now_ms() + timeout_s * 1000;
    memset(o, 0, sizeof(*o));
    while (waitpid(p->pid, &st, WNOHANG) == 0) {
        if (nu_it_now_ms() > deadline) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &st, 0);
            cr_assert_fail("nurion did not exit within %d s: %s", timeout_s,
                           cli_slurp(p->err_path));
        }
        usleep(50 * 1000);
    }
    o->code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    o->out = cli_slurp(p->out_path);
    o->err = cli_slurp(p->err_path);
    unlink(p->out_path);
    unlink(p->err_path);
    if (o->out[0] == '{')
        o->json = json_loads(o->out, 0, NULL);
}

/* Run `nurion ARGS…` to completion. */
static void cli(struct cli_out *o, const char *const *args)
{
    struct cli_proc p;
    cli_spawn(&p, args);
    cli_wait(&p, 180, o);
}

#define CLI(o, ...) cli((o), (const char *const[]){__VA_ARGS__, NULL})
/* The common options pointing at the test's coordinator. */
#define CO "--coordinator", cli_url, "--token", CLI_TOKEN

/* The id of one split the sink consumed, read straight from the API. */
static void cli_sink_split(const char *id, char *out, size_t n)
{
    char url[512];
    struct curl_slist *h = curl_slist_append(NULL, "Authorization: Bearer " CLI_TOKEN);
    char body[65536] = "";
    FILE *mem = fmemopen(body, sizeof(body) - 1, "w");
    CURL *c = curl_easy_init();
    cr_assert(mem && c);
    snprintf(url, sizeof(url), "%s/api/v1/jobs/%s/splits?stage=out", cli_url, id);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, mem);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    cr_assert_eq(curl_easy_perform(c), CURLE_OK);
    fclose(mem);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    json_t *doc = json_loads(body, 0, NULL);
    const char *s = json_string_value(
        json_object_get(json_array_get(json_object_get(doc, "items"), 0), "split"));
    cr_assert_not_null(s, "no split of stage out: %s", body);
    snprintf(out, n, "%s", s);
    json_decref(doc);
}

/* Rows in every sink file of `dir`, each checked for y == 2 * id. */
static int cli_sink_rows(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int rows = 0;
    cr_assert_not_null(d, "no sink directory %s", dir);
    while ((e = readdir(d))) {
        char path[1024];
        if (e->d_name[0] == '.' || !strstr(e->d_name, ".jsonl"))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        char *text = cli_slurp(path);
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
            const char *pi = strstr(line, "\"id\":"), *py = strstr(line, "\"y\":");
            cr_assert(pi && py, "row without id or y: %s", line);
            cr_assert_eq(atoll(py + 4), 2 * atoll(pi + 5), "%s", line);
            rows++;
        }
        free(text);
    }
    closedir(d);
    return rows;
}

/* Remove a sink directory and its files. */
static void cli_rmdir(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(cli_client, .timeout = 300);

Test(cli_client, submit_wait_then_inspect, .init = cli_start, .fini = cli_stop)
{
    char id[96], file[256], dir[] = "/tmp/nurion-clit-XXXXXX", split[256], want[256];
    struct cli_out o;
    cr_assert_not_null(mkdtemp(dir));
    cli_job_id(id, sizeof(id));
    cli_spec_file(file, sizeof(file), id, dir, 40, 10);

    /* submit --wait: the id first, progress lines on stderr (not a terminal), success */
    CLI(&o, "submit", CO, file, "--wait");
    cr_assert_eq(o.code, 0, "exit %d\nstdout:\n%s\nstderr:\n%s", o.code, o.out, o.err);
    snprintf(want, sizeof(want), "%s\n", id);
    cr_assert_eq(strncmp(o.out, want, strlen(want)), 0, "%s", o.out);
    snprintf(want, sizeof(want), "job \"%s\" succeeded after", id);
    cr_assert_not_null(strstr(o.out, want), "%s", o.out);
    cr_assert_not_null(strstr(o.out, "STAGE"), "no final table: %s", o.out);
    cr_assert_not_null(strstr(o.err, "progress ("), "no progress line: %s", o.err);
    cr_assert_eq(cli_sink_rows(dir), 40);
    cli_out_free(&o);

    /* status, text and JSON */
    CLI(&o, "status", CO, id);
    cr_assert_eq(o.code, 0, "%s", o.err);
    cr_assert_not_null(strstr(o.out, "succeeded"), "%s", o.out);
    cr_assert_not_null(strstr(o.out, "generate"), "%s", o.out);
    cr_assert_not_null(strstr(o.out, "file_sink"), "%s", o.out);
    cli_out_free(&o);
    CLI(&o, "status", CO, "--json", id);
    cr_assert_eq(o.code, 0, "%s", o.err);
    cr_assert_not_null(o.json, "not JSON: %s", o.out);
    cr_assert_str_eq(json_string_value(json_object_get(o.json, "id")), id);
    cr_assert_str_eq(json_string_value(json_object_get(o.json, "state")), "succeeded");
    json_t *stages = json_object_get(o.json, "stages");
    cr_assert_eq(json_array_size(stages), 3, "%s", o.out);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(stages, 2), "rows_in")), 40,
                 "%s", o.out);
    cli_out_free(&o);

    /* jobs: the table names the job; --state and --json */
    CLI(&o, "jobs", CO);
    cr_assert_eq(o.code, 0, "%s", o.err);
    cr_assert_not_null(strstr(o.out, "ID"), "%s", o.out);
    cr_assert_not_null(strstr(o.out, id), "%s", o.out);
    cr_assert_not_null(strstr(o.out, "3/3"), "%s", o.out);
    cli_out_free(&o);
    CLI(&o, "jobs", CO, "--state", "succeeded", "--json");
    cr_assert_eq(o.code, 0, "%s", o.err);
    json_t *first = json_array_get(json_object_get(o.json, "items"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(first, "id")), id, "%s", o.out);
    cli_out_free(&o);
    CLI(&o, "jobs", CO, "--state", "running");
    cr_assert_eq(o.code, 0, "%s", o.err);
    cr_assert_str_eq(o.out, "no jobs in state running\n");
    cli_out_free(&o);
    CLI(&o, "jobs", CO, "--state", "sleeping");
    cr_assert_eq(o.code, 2, "%s", o.err);
    cr_assert_not_null(strstr(o.err, "state"), "%s", o.err);
    cli_out_free(&o);

    /* topics: a row per topic and the kcat commands */
    CLI(&o, "topics", CO, id);
    cr_assert_eq(o.code, 0, "%s", o.err);
    snprintf(want, sizeof(want), "nurion.%s.dbl", id);
    cr_assert_not_null(strstr(o.out, want), "%s", o.out);
    cr_assert_not_null(strstr(o.out, "kcat -b "), "%s", o.out);
    cli_out_free(&o);
    CLI(&o, "topics", CO, "--json", id);
    cr_assert_eq(o.code, 0, "%s", o.err);
    cr_assert_str_eq(json_string_value(json_object_get(o.json, "job")), id);
    size_t i;
    json_t *tp;
    cr_assert_geq(json_array_size(json_object_get(o.json, "topics")), 4, "%s", o.out);
    json_array_foreach(json_object_get(o.json, "topics"), i, tp)
    {
        cr_assert_not_null(strstr(json_string_value(json_object_get(tp, "kcat")), "kcat"));
    }
    cli_out_free(&o);

    /* lineage up from a sink split reaches the source's plan split: three levels */
    cli_sink_split(id, split, sizeof(split));
    CLI(&o, "lineage", CO, id, split);
    cr_assert_eq(o.code, 0, "%s", o.err);
    cr_assert_not_null(strstr(o.out, split), "%s", o.out);
    cr_assert_not_null(strstr(o.out, "\n    "), "no indented ancestor: %s", o.out);
    cr_assert_not_null(strstr(o.out, "src"), "%s", o.out);
    cli_out_free(&o);
    CLI(&o, "lineage", CO, "--json", "--depth", "10", id, split);
    cr_assert_eq(o.code, 0, "%s", o.err);
    cr_assert_str_eq(json_string_value(json_object_get(o.json, "direction")), "up");
    cr_assert_eq(json_array_size(json_object_get(o.json, "nodes")), 3, "%s", o.out);
    cli_out_free(&o);
    CLI(&o, "lineage", CO, "--json", "--direction", "down", id, split);
    cr_assert_eq(o.code, 0, "%s", o.err);
    cr_assert_str_eq(json_string_value(json_object_get(o.json, "direction")), "down");
    cr_assert_eq(json_array_size(json_object_get(o.json, "nodes")), 1, "%s", o.out);
    cli_out_free(&o);
    CLI(&o, "lineage", CO, id, "no-such-split");
    cr_assert_eq(o.code, 1, "%s", o.err);
    cr_assert_not_null(strstr(o.err, "not found"), "%s", o.err);
    cli_out_free(&o);
    unlink(file);
    cli_rmdir(dir);
}

Test(cli_client, cancel_a_running_job, .init = cli_start, .fini = cli_stop)
{
    char id[96], file[256], dir[] = "/tmp/nurion-clit-XXXXXX", want[256];
    struct cli_out o, w;
    struct cli_proc waiter;
    cr_assert_not_null(mkdtemp(dir));
    cli_job_id(id, sizeof(id));
    cli_spec_file(file, sizeof(file), id, dir, 20000000L, 20000);

    /* a waiter submits a long job and follows it */
    cli_spawn(&waiter, (const char *const[]){"submit", CO, "--wait", file, NULL});
    int64_t deadline = nu_it_now_ms() + 60000;
    for (;;) {
        CLI(&o, "status", CO, "--json", id);
        if (o.code == 0 &&
            strcmp(json_string_value(json_object_get(o.json, "state")), "submitted") != 0)
            break;
        cr_assert(o.code == 0 || o.code == 1, "%s", o.err);
        cr_assert_lt(nu_it_now_ms(), deadline, "the job never started: %s%s", o.out, o.err);
        cli_out_free(&o);
        usleep(200 * 1000);
    }
    cr_assert_str_eq(json_string_value(json_object_get(o.json, "state")), "running", "%s", o.out);
    cli_out_free(&o);

    /* the same id again is refused */
    CLI(&o, "submit", CO, file);
    cr_assert_eq(o.code, 1, "%s", o.err);
    cr_assert_not_null(strstr(o.err, "already exists"), "%s", o.err);
    cli_out_free(&o);

    /* cancel: the job ends, and the waiter reports it and fails */
    CLI(&o, "cancel", CO, id);
    cr_assert_eq(o.code, 0, "%s", o.err);
    snprintf(want, sizeof(want), "job \"%s\" cancelled\n", id);
    cr_assert_str_eq(o.out, want);
    cli_out_free(&o);
    cli_wait(&waiter, 60, &w);
    cr_assert_eq(w.code, 1, "stdout:\n%s\nstderr:\n%s", w.out, w.err);
    snprintf(want, sizeof(want), "nurion: job \"%s\" was cancelled", id);
    cr_assert_not_null(strstr(w.err, want), "%s", w.err);
    snprintf(want, sizeof(want), "%s\n", id);
    cr_assert_eq(strncmp(w.out, want, strlen(want)), 0, "%s", w.out);
    cli_out_free(&w);

    CLI(&o, "status", CO, "--json", id);
    cr_assert_str_eq(json_string_value(json_object_get(o.json, "state")), "cancelled", "%s", o.out);
    cli_out_free(&o);
    /* a job that ended cannot be cancelled */
    CLI(&o, "cancel", CO, id);
    cr_assert_eq(o.code, 1, "%s", o.out);
    cr_assert_eq(strncmp(o.err, "nurion: ", 8), 0, "%s", o.err);
    cr_assert_str_eq(o.out, "");
    cli_out_free(&o);
    unlink(file);
    cli_rmdir(dir);
}

Test(cli_client, errors_are_explained, .init = cli_start, .fini = cli_stop)
{
    char file[] = "/tmp/nurion-clit-bad-XXXXXX", want[256];
    struct cli_out o;
    int fd = mkstemp(file);
    cr_assert_geq(fd, 0);
    const char *bad = "{\"job_id\":\"clit-bad\",\"stages\":[{\"id\":\"a\",\"operator\":\"mapp\"}]}";
    cr_assert_eq(write(fd, bad, strlen(bad)), (ssize_t)strlen(bad));
    close(fd);

    /* a rejected spec: exit 2, every problem with the file and its JSON path */
    CLI(&o, "submit", CO, file);
    cr_assert_eq(o.code, 2, "%s", o.err);
    snprintf(want, sizeof(want), "%s: $.stages[0].operator: ", file);
    cr_assert_not_null(strstr(o.err, want), "%s", o.err);
    cr_assert_not_null(strstr(o.err, "mapp"), "%s", o.err);
    cli_out_free(&o);
    unlink(file);

    CLI(&o, "submit", CO, "/nonexistent/job.json");
    cr_assert_eq(o.code, 1, "%s", o.err);
    cr_assert_not_null(strstr(o.err, "could not open job spec \"/nonexistent/job.json\""), "%s",
                       o.err);
    cli_out_free(&o);

    /* a plain submit prints the id and returns */
    char id[96], spec[256], dir[] = "/tmp/nurion-clit-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    cli_job_id(id, sizeof(id));
    cli_spec_file(spec, sizeof(spec), id, dir, 10, 10);
    CLI(&o, "submit", CO, spec);
    cr_assert_eq(o.code, 0, "%s", o.err);
    snprintf(want, sizeof(want), "%s\n", id);
    cr_assert_str_eq(o.out, want);
    cli_out_free(&o);
    unlink(spec);

    /* an unknown job */
    CLI(&o, "status", CO, "clit-no-such-job");
    cr_assert_eq(o.code, 1, "%s", o.err);
    cr_assert_str_eq(o.err, "nurion: job \"clit-no-such-job\" not found\n");
    cr_assert_str_eq(o.out, "");
    cli_out_free(&o);

    /* nothing listens on port 1 */
    CLI(&o, "jobs", "--coordinator", "http://127.0.0.1:1");
    cr_assert_eq(o.code, 3, "%s", o.err);
    cr_assert_eq(strncmp(o.err, "nurion: cannot reach the coordinator at http://127.0.0.1:1: ", 60),
                 0, "%s", o.err);
    cli_out_free(&o);

    /* a wrong token, then no token */
    CLI(&o, "jobs", "--coordinator", cli_url, "--token", "wrong");
    cr_assert_eq(o.code, 1, "%s", o.err);
    cr_assert_not_null(strstr(o.err, "nurion: the bearer token is not valid\n"), "%s", o.err);
    cr_assert_not_null(strstr(o.err, "NURION_TOKEN"), "%s", o.err);
    cli_out_free(&o);
    unsetenv("NURION_TOKEN");
    CLI(&o, "jobs", "--coordinator", cli_url);
    cr_assert_eq(o.code, 1, "%s", o.err);
    cr_assert_not_null(strstr(o.err, "a bearer token is required"), "%s", o.err);
    cli_out_free(&o);

    /* the environment supplies both */
    setenv("NURION_COORDINATOR", cli_url, 1);
    setenv("NURION_TOKEN", CLI_TOKEN, 1);
    CLI(&o, "jobs");
    unsetenv("NURION_COORDINATOR");
    unsetenv("NURION_TOKEN");
    cr_assert_eq(o.code, 0, "%s", o.err);
    cr_assert_not_null(strstr(o.out, id), "%s", o.out);
    cli_out_free(&o);
    cli_rmdir(dir);
}
