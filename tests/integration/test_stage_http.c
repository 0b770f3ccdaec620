/*
 * test_stage_http.c — `nurion stage --set http.listen=…` against the real broker: /healthz while
 * alive, /readyz once the instance has joined its group, /metrics counting the work it does,
 * and a clean exit on SIGTERM.
 */
#include "integ.h"
#include "pipeline.h"

#include "common/job.h"
#include "operators/registry.h"
#include "stage/kafka.h"
#include "stage/planner.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

static const char sh_job_tmpl[] =
    "{\"job_id\":\"@ID@\",\"guarantee\":\"exactly_once\",\"format\":\"avro\",\"stages\":["
    "{\"id\":\"src\",\"operator\":\"generate\",\"config\":{\"rows\":20000,\"split_rows\":10},"
    "\"partitions\":2},"
    "{\"id\":\"dbl\",\"operator\":\"map\",\"config\":{\"columns\":{\"y\":\"id * 2\"}},"
    "\"upstream\":[\"src\"],\"partitions\":2}]}";

struct sh_body {
    char text[65536];
    size_t len;
};

static size_t sh_on_body(char *p, size_t size, size_t n, void *ud)
{
    struct sh_body *b = ud;
    size_t k = size * n;
    if (b->len + k >= sizeof(b->text))
        k = sizeof(b->text) - 1 - b->len;
    memcpy(b->text + b->len, p, k);
    b->len += k;
    b->text[b->len] = '\0';
    return size * n;
}

/* GET; returns the status, 0 when nothing answered. */
static long sh_get(unsigned port, const char *path, struct sh_body *b)
{
    char url[128];
    long status = 0;
    CURL *c = curl_easy_init();
    memset(b, 0, sizeof(*b));
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sh_on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 5L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    return status;
}

/* A loopback port nobody listens on right now. */
static unsigned sh_free_port(void)
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

static pid_t sh_stage_start(const struct nu_it_job *j, const char *stage, const char *log,
                            const char *const *extra)
{
    static char exe[1024];
    char *argv[32];
    size_t n = 0;
    snprintf(exe, sizeof(exe), "%s/bin/nurion", NU_BINARY_DIR);
    argv[n++] = exe;
    argv[n++] = "stage";
    argv[n++] = "--job";
    argv[n++] = (char *)j->path;
    argv[n++] = "--stage";
    argv[n++] = (char *)stage;
    for (size_t i = 0; extra && extra[i] && n < 30; i++)
        argv[n++] = (char *)extra[i];
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
    return pid;
}

/* The value of the first sample of `metric` in `text`, or -1. */
static long long sh_sample(const char *text, const char *metric)
{
    char key[128];
    snprintf(key, sizeof(key), "\n%s{", metric);
    const char *p = strstr(text, key);
    if (!p || !(p = strchr(p, '}')))
        return -1;
    return strtoll(p + 1, NULL, 10);
}

Test(stage_http, endpoint_of_a_real_stage, .timeout = 180)
{
    struct nu_it_job j;
    struct nu_job *job = NULL;
    struct nu_problems probs;
    struct nu_errbuf eb;
    rd_kafka_t *admin = NULL;
    struct sh_body b;
    char listen[64], log_dbl[600], log_src[600];
    nu_problems_init(&probs);
    nu_errbuf_clear(&eb);
    nu_it_job_make(&j, "sh", sh_job_tmpl);
    snprintf(log_dbl, sizeof(log_dbl), "%s.dbl", j.log);
    snprintf(log_src, sizeof(log_src), "%s.src", j.log);
    cr_assert_eq(nu_job_load_file(j.path, nu_registry_validator(), &job, &probs, &eb), NU_OK, "%s",
                 nu_err_msg(&eb));
    cr_assert_eq(
        nu_kafka_client_new(NU_KAFKA_PRODUCER, nu_it_brokers(), NULL, NULL, NULL, 0, &admin, &eb),
        NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(nu_plan_topics(job, admin, NU_IT_TIMEOUT_MS, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(nu_plan_sources(job, nu_it_brokers(), NULL, 0, NULL, &eb), NU_OK, "%s",
                 nu_err_msg(&eb));
    rd_kafka_destroy(admin);

    /* the downstream stage first: it joins and waits for input; one record per transaction
     * keeps it busy long enough to watch its counters move */
    unsigned port = sh_free_port();
    snprintf(listen, sizeof(listen), "http.listen=127.0.0.1:%u", port);
    const char *const extra[] = {"--brokers", nu_it_brokers(),        "--set",      listen,
                                 "--set",     "max.splits.per.txn=1", "--instance", "0",
                                 NULL};
    pid_t dbl = sh_stage_start(&j, "dbl", log_dbl, extra);

    int64_t deadline = nu_it_now_ms() + 60000;
    long st = 0, ready = 0;
    while (nu_it_now_ms() < deadline) {
        st = sh_get(port, "/healthz", &b);
        ready = st == 200 ? sh_get(port, "/readyz", &b) : 0;
        if (ready == 200)
            break;
        cr_assert_eq(waitpid(dbl, NULL, WNOHANG), 0, "stage exited early (log %s)", log_dbl);
        usleep(20 * 1000);
    }
    cr_assert_eq(st, 200, "/healthz never answered (log %s)", log_dbl);
    cr_assert_eq(ready, 200, "/readyz never became 200: %s (log %s)", b.text, log_dbl);
    cr_assert(strstr(b.text, "\"ready\""), "%s", b.text);
    cr_assert_eq(sh_get(port, "/metrics", &b), 200);
    cr_assert_eq(sh_sample(b.text, "nurion_stage_ready"), 1, "%s", b.text);
    cr_assert_eq(sh_sample(b.text, "nurion_stage_rows_in_total"), 0, "%s", b.text);

    /* the source writes 2000 splits; the counters of the downstream stage follow */
    pid_t src = sh_stage_start(&j, "src", log_src,
                               (const char *const[]){"--brokers", nu_it_brokers(), NULL});
    long long rows = -1, txns = -1, assigned = -1;
    deadline = nu_it_now_ms() + 60000;
    while (nu_it_now_ms() < deadline) {
        if (sh_get(port, "/metrics", &b) == 200) {
            rows = sh_sample(b.text, "nurion_stage_rows_in_total");
            txns = sh_sample(b.text, "nurion_stage_transactions_committed_total");
            assigned = sh_sample(b.text, "nurion_stage_assigned_partitions");
            if (rows > 0 && txns > 0)
                break;
        }
        usleep(20 * 1000);
    }
    cr_assert_gt(rows, 0, "rows_in never moved (log %s):\n%s", log_dbl, b.text);
    cr_assert_gt(txns, 0, "%s", b.text);
    cr_assert_eq(assigned, 2, "the only instance holds both input partitions:\n%s", b.text);
    cr_assert(strstr(b.text, "nurion_stage_partition_lag{"), "no lag samples:\n%s", b.text);

    int status = 0;
    cr_assert_eq(waitpid(src, &status, 0), src);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "source failed (log %s)", log_src);

    /* SIGTERM: the open transaction is finished and the process exits 0 */
    kill(dbl, SIGTERM);
    deadline = nu_it_now_ms() + 60000;
    while (waitpid(dbl, &status, WNOHANG) == 0) {
        cr_assert_lt(nu_it_now_ms(), deadline, "stage did not stop on SIGTERM (log %s)", log_dbl);
        usleep(20 * 1000);
    }
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "stage exit %d (log %s)",
              WIFEXITED(status) ? WEXITSTATUS(status) : -1, log_dbl);
    cr_assert_eq(sh_get(port, "/healthz", &b), 0, "the endpoint outlived the process");
    nu_job_destroy(job);
    nu_problems_free(&probs);
}
