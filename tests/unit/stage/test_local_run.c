/*
 * test_local_run.c — whole jobs in one process over the in-memory broker (src/stage/local.c,
 * stage_mem.c): the same pipelines as the exactly-once integration tests, without a broker and
 * without the kill tests. Exact output of a 4-stage job in both guarantees, poison rows in the
 * dead-letter topic with their reason and counts reconciling, fan-out and union, lanes in the
 * topics, a finished job run again, a failing stage and a stop.
 */
#include "common/job.h"
#include "operators/registry.h"
#include "stage/lanes.h"
#include "stage/local.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static nu_transport_t *tr;
static struct nu_errbuf eb;
static char dir[256];
static struct nu_stage_opts so;

static void setup(void)
{
    tr = nu_transport_mem_new();
    nu_errbuf_clear(&eb);
    snprintf(dir, sizeof(dir), "/tmp/nu-local-run-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    nu_stage_opts_init(&so);
    so.completion_check_ms = 50; /* keeps the tests quick; completion is exact either way */
}

static void teardown(void)
{
    char cmd[512];
    nu_transport_destroy(tr);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(local_run, .init = setup, .fini = teardown, .timeout = 120);

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Parse a job spec in which @OUT@ stands for the test's sink folder. */
static struct nu_job *job_make(const char *tmpl, const char *guarantee)
{
    char spec[4096], text[4096], out[512];
    struct nu_job *job = NULL;
    struct nu_problems probs;
    snprintf(out, sizeof(out), "%s/out/", dir);
    snprintf(spec, sizeof(spec), tmpl, guarantee);
    const char *at = strstr(spec, "@OUT@");
    cr_assert_not_null(at);
    snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - spec), spec, out, at + 5);
    nu_problems_init(&probs);
    nu_err_t err = nu_job_parse(text, strlen(text), nu_registry_validator(), &job, &probs, &eb);
    cr_assert_eq(err, NU_OK, "%s: %s", nu_err_msg(&eb),
                 probs.n ? probs.items[0].message : "(no problem listed)");
    nu_problems_free(&probs);
    return job;
}

static nu_err_t run(const struct nu_job *job, struct nu_run_stats *stats)
{
    volatile sig_atomic_t stop = 0;
    struct nu_local_opts o = {.transport = tr, .stage = &so, .quiet = true};
    nu_errbuf_clear(&eb);
    return nu_local_run(job, &o, &stop, stats, &eb);
}

/* Every row the sink wrote (JSON Lines files in its folder). */
static json_t *sink_rows(void)
{
    char path[1024];
    json_t *rows = json_array();
    snprintf(path, sizeof(path), "%s/out", dir);
    DIR *d = opendir(path);
    cr_assert_not_null(d, "no sink folder %s", path);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/out/%s", dir, e->d_name);
        FILE *f = fopen(path, "r");
        cr_assert_not_null(f);
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        while ((len = getline(&line, &cap, f)) > 0) {
            json_t *row = json_loadb(line, (size_t)len, 0, NULL);
            cr_assert_not_null(row, "bad JSON in %s", path);
            json_array_append_new(rows, row);
        }
        free(line);
        fclose(f);
    }
    closedir(d);
    return rows;
}

typedef void (*record_fn)(const struct nu_trecord *r, void *ctx);

/* Read every committed record of `topic` (all of its `parts` partitions). Returns how many. */
static long read_topic(const char *topic, int parts, record_fn fn, void *ctx)
{
    nu_tconsumer_t *c = NULL;
    struct nu_tconsumer_conf conf = {.group = "test-reader", .eof = true};
    struct nu_toffsets l = {0};
    const struct nu_trecord *r = NULL;
    long n = 0;
    int ends = 0;
    cr_assert_eq(nu_tconsumer_new(tr, &conf, &c, &eb), NU_OK);
    for (int p = 0; p < parts; p++)
        nu_toffsets_add(&l, topic, p, 0, NULL, 0);
    cr_assert_eq(nu_tconsumer_assign(c, &l, &eb), NU_OK, "%s", nu_err_msg(&eb));
    while (ends < parts) {
        cr_assert_eq(nu_tconsumer_poll(c, 1000, &r, &eb), NU_OK);
        cr_assert_not_null(r, "no end of topic %s", topic);
        if (r->eof) {
            ends++;
            continue;
        }
        n++;
        if (fn)
            fn(r, ctx);
    }
    nu_tconsumer_destroy(c);
    nu_toffsets_free(&l);
    return n;
}

static const char *header(const struct nu_trecord *r, const char *name, char *buf, size_t len)
{
    buf[0] = '\0';
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcmp(r->headers[i].name, name) == 0)
            snprintf(buf, len, "%.*s", (int)r->headers[i].len, (const char *)r->headers[i].value);
    return buf;
}

/* generate 200,000 rows -> map y = id * 2 -> filter even ids -> file_sink, several instances */
static const char *const etl_tmpl =
    "{\"job_id\":\"etl\",\"guarantee\":\"%s\",\"stages\":["
    "{\"id\":\"src\",\"operator\":\"generate\",\"config\":{\"rows\":200000,\"split_rows\":1000},"
    " \"parallelism\":{\"min\":1,\"max\":2}},"
    "{\"id\":\"dbl\",\"operator\":\"map\",\"config\":{\"columns\":{\"y\":\"id * 2\"}},"
    " \"parallelism\":{\"min\":2,\"max\":4},\"upstream\":[\"src\"]},"
    "{\"id\":\"even\",\"operator\":\"filter\",\"config\":{\"where\":\"id %% 2 == 0\"},"
    " \"parallelism\":2,\"upstream\":[\"dbl\"]},"
    "{\"id\":\"out\",\"operator\":\"file_sink\",\"config\":{\"path\":\"@OUT@\",\"format\":"
    "\"jsonl\"},\"parallelism\":2,\"upstream\":[\"even\"]}]}";

/* The sink holds every even id below 200,000 with y = 2 id, each exactly once. */
static void check_etl(void)
{
    json_t *rows = sink_rows();
    size_t n = json_array_size(rows), dup = 0, bad = 0;
    unsigned char *seen = calloc(200000, 1);
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_array_get(rows, i);
        json_int_t id = json_integer_value(json_object_get(r, "id"));
        json_int_t y = json_integer_value(json_object_get(r, "y"));
        if (id < 0 || id >= 200000 || id % 2 || y != 2 * id)
            bad++;
        else if (seen[id]++)
            dup++;
    }
    cr_assert_eq(bad, 0, "%zu rows are not even ids with y = 2 id", bad);
    cr_assert_eq(dup, 0, "%zu ids arrived more than once", dup);
    cr_assert_eq(n, 100000, "expected 100000 rows, found %zu", n);
    free(seen);
    json_decref(rows);
}

static void check_etl_stats(const struct nu_job *job, const struct nu_run_stats *s)
{
    size_t i;
    cr_assert(nu_job_stage_find(job, "dbl", &i));
    cr_assert_eq(s->st[i].instances, 4);
    cr_assert_eq(s->st[i].done, 4, "every instance returns complete");
    cr_assert_eq(s->st[i].rows_in, 200000);
    cr_assert_eq(s->st[i].splits, 200);
    cr_assert(nu_job_stage_find(job, "even", &i));
    cr_assert_eq(s->st[i].rows_out, 100000);
    cr_assert_eq(s->st[i].partitions_done, 8, "each input partition announced once");
}

Test(local_run, etl_exactly_once_exact_output)
{
    struct nu_job *job = job_make(etl_tmpl, "exactly_once");
    struct nu_run_stats s;
    cr_assert_eq(run(job, &s), NU_OK, "%s", nu_err_msg(&eb));
    check_etl();
    check_etl_stats(job, &s);
    nu_run_stats_free(&s);
    nu_job_destroy(job);
}

Test(local_run, etl_at_least_once_exact_output)
{
    struct nu_job *job = job_make(etl_tmpl, "at_least_once");
    struct nu_run_stats s;
    cr_assert_eq(run(job, &s), NU_OK, "%s", nu_err_msg(&eb));
    check_etl();
    check_etl_stats(job, &s);
    nu_run_stats_free(&s);
    nu_job_destroy(job);
}

struct lanes_count {
    long data, eos;
};

static void count_kinds(const struct nu_trecord *r, void *ctx)
{
    struct lanes_count *c = ctx;
    char kind[16];
    if (strcmp(header(r, "nurion-kind", kind, sizeof(kind)), "eos") == 0)
        c->eos++;
    else
        c->data++;
}

/* Lanes as on Kafka: each partition of a stage's output topic carries one eos record per input
 * partition of that stage, and the plan topic one eos of lane "plan" per partition. */
Test(local_run, topics_carry_the_same_lanes_as_on_kafka)
{
    struct nu_job *job = job_make(etl_tmpl, "exactly_once");
    size_t i;
    cr_assert_eq(run(job, NULL), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert(nu_job_stage_find(job, "dbl", &i));
    for (int p = 0; p < job->stages[i].partitions; p++) {
        struct lanes_count c = {0, 0};
        char topic[NU_JOB_NAME_MAX];
        nu_job_topic_output(job, i, topic, sizeof(topic));
        /* one partition at a time: read it alone */
        nu_tconsumer_t *rd = NULL;
        struct nu_tconsumer_conf conf = {.group = "lanes", .eof = true};
        struct nu_toffsets l = {0};
        const struct nu_trecord *r = NULL;
        cr_assert_eq(nu_tconsumer_new(tr, &conf, &rd, &eb), NU_OK);
        nu_toffsets_add(&l, topic, p, 0, NULL, 0);
        cr_assert_eq(nu_tconsumer_assign(rd, &l, &eb), NU_OK);
        while (nu_tconsumer_poll(rd, 1000, &r, &eb) == NU_OK && r && !r->eof)
            count_kinds(r, &c);
        nu_tconsumer_destroy(rd);
        nu_toffsets_free(&l);
        cr_assert_eq(c.eos, (long)nu_lanes_of_stage(job, i), "partition %d: %ld eos records", p,
                     c.eos);
    }
    struct lanes_count plan = {0, 0};
    char topic[NU_JOB_NAME_MAX];
    cr_assert(nu_job_stage_find(job, "src", &i));
    nu_job_topic_plan(job, i, topic, sizeof(topic));
    read_topic(topic, job->stages[i].partitions, count_kinds, &plan);
    cr_assert_eq(plan.eos, job->stages[i].partitions);
    cr_assert_eq(plan.data, 200, "one plan split per 1,000 rows");
    nu_job_destroy(job);
}

struct dlq_count {
    long records, division;
};

static void count_dlq(const struct nu_trecord *r, void *ctx)
{
    struct dlq_count *c = ctx;
    char buf[512];
    c->records++;
    if (strstr(header(r, "nurion-error", buf, sizeof(buf)), "division by zero"))
        c->division++;
}

/* Rows whose expression fails go to the DLQ with the reason; every other row arrives. */
Test(local_run, poison_rows_are_dead_lettered_and_counts_reconcile)
{
    struct nu_job *job = job_make(
        "{\"job_id\":\"poison\",\"guarantee\":\"%s\",\"stages\":["
        "{\"id\":\"src\",\"operator\":\"generate\",\"config\":{\"rows\":20000,\"split_rows\":500}},"
        "{\"id\":\"m\",\"operator\":\"map\",\"config\":{\"columns\":{\"q\":\"100 / (id %% 1000 - 7)"
        "\"}},\"upstream\":[\"src\"]},"
        "{\"id\":\"out\",\"operator\":\"file_sink\",\"config\":{\"path\":\"@OUT@\"},"
        "\"upstream\":[\"m\"]}]}",
        "exactly_once");
    struct nu_run_stats s;
    size_t i;
    cr_assert_eq(run(job, &s), NU_OK, "%s", nu_err_msg(&eb));
    json_t *rows = sink_rows();
    size_t out = json_array_size(rows);
    for (size_t k = 0; k < out; k++)
        cr_assert_neq(json_integer_value(json_object_get(json_array_get(rows, k), "id")) % 1000, 7);
    json_decref(rows);
    struct dlq_count c = {0, 0};
    char topic[NU_JOB_NAME_MAX];
    cr_assert(nu_job_stage_find(job, "m", &i));
    nu_job_topic_dlq(job, i, topic, sizeof(topic));
    read_topic(topic, 1, count_dlq, &c);
    cr_assert_eq(c.records, 20, "expected the 20 poison rows in %s, found %ld", topic, c.records);
    cr_assert_eq(c.division, 20, "every dead letter names the division by zero");
    cr_assert_eq((long)out + c.records, 20000, "out %zu + dead letters %ld != in 20000", out,
                 c.records);
    cr_assert_eq(s.st[i].dead_letters, 20, "dlq events counted");
    nu_run_stats_free(&s);
    nu_job_destroy(job);
}

/* Fan-out (two stages read src) and union (the sink reads both): every (id, branch) once. */
Test(local_run, fan_out_and_union_have_exact_counts)
{
    struct nu_job *job = job_make(
        "{\"job_id\":\"fanunion\",\"guarantee\":\"%s\",\"stages\":["
        "{\"id\":\"src\",\"operator\":\"generate\",\"config\":{\"rows\":30000,\"split_rows\":700},"
        " \"partitions\":3},"
        "{\"id\":\"a\",\"operator\":\"map\",\"config\":{\"columns\":{\"branch\":\"'a'\"}},"
        " \"upstream\":[\"src\"],\"partitions\":5},"
        "{\"id\":\"b\",\"operator\":\"map\",\"config\":{\"columns\":{\"branch\":\"'b'\"}},"
        " \"upstream\":[\"src\"],\"partitions\":2},"
        "{\"id\":\"out\",\"operator\":\"file_sink\",\"config\":{\"path\":\"@OUT@\"},"
        " \"upstream\":[\"a\",\"b\"],\"parallelism\":2}]}",
        "exactly_once");
    cr_assert_eq(run(job, NULL), NU_OK, "%s", nu_err_msg(&eb));
    json_t *rows = sink_rows();
    unsigned char *seen = calloc(30000 * 2, 1);
    size_t dup = 0, bad = 0, n = json_array_size(rows);
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_array_get(rows, i);
        json_int_t id = json_integer_value(json_object_get(r, "id"));
        const char *br = json_string_value(json_object_get(r, "branch"));
        if (id < 0 || id >= 30000 || !br || (strcmp(br, "a") && strcmp(br, "b")))
            bad++;
        else if (seen[id * 2 + (br[0] == 'b')]++)
            dup++;
    }
    cr_assert_eq(bad, 0);
    cr_assert_eq(dup, 0);
    cr_assert_eq(n, 60000, "expected 60000 rows, found %zu", n);
    free(seen);
    json_decref(rows);
    nu_job_destroy(job);
}

/* A finished job run again on the same broker completes at once and redoes nothing. */
Test(local_run, a_finished_job_run_again_completes_at_once)
{
    static const char *const guarantees[] = {"exactly_once", "at_least_once"};
    for (size_t g = 0; g < 2; g++) {
        struct nu_job *job = job_make(
            "{\"job_id\":\"again\",\"guarantee\":\"%s\",\"stages\":["
            "{\"id\":\"src\",\"operator\":\"generate\",\"config\":{\"rows\":5000,\"split_rows\":"
            "100}},"
            "{\"id\":\"m\",\"operator\":\"map\",\"config\":{\"columns\":{\"y\":\"id + 1\"}},"
            " \"parallelism\":3,\"upstream\":[\"src\"]},"
            "{\"id\":\"out\",\"operator\":\"file_sink\",\"config\":{\"path\":\"@OUT@\"},"
            " \"upstream\":[\"m\"]}]}",
            guarantees[g]);
        struct nu_run_stats first, second;
        char topic[NU_JOB_NAME_MAX];
        size_t i;
        nu_transport_destroy(tr);
        tr = nu_transport_mem_new();
        cr_assert_eq(run(job, &first), NU_OK, "%s", nu_err_msg(&eb));
        cr_assert(nu_job_stage_find(job, "m", &i));
        nu_job_topic_output(job, i, topic, sizeof(topic));
        long before = read_topic(topic, job->stages[i].partitions, NULL, NULL);
        int64_t t0 = now_ms();
        cr_assert_eq(run(job, &second), NU_OK, "%s", nu_err_msg(&eb));
        int64_t took = now_ms() - t0;
        cr_assert_lt(took, 2000, "%s: the second run took %lld ms", guarantees[g], (long long)took);
        cr_assert_eq(read_topic(topic, job->stages[i].partitions, NULL, NULL), before,
                     "%s: nothing new in %s", guarantees[g], topic);
        /* the events topic is read from its start: equal counts mean no new split_done */
        cr_assert_eq(second.st[i].splits, first.st[i].splits);
        cr_assert_eq(second.st[i].splits, 50);
        json_t *rows = sink_rows();
        cr_assert_eq(json_array_size(rows), 5000);
        json_decref(rows);
        nu_run_stats_free(&first);
        nu_run_stats_free(&second);
        nu_job_destroy(job);
    }
}

/* An instance that fails ends the run with an error naming its stage; the others stop. */
Test(local_run, failing_stage_fails_the_run_with_its_reason)
{
    static const char spec[] =
        "{\"job_id\":\"failing\",\"stages\":["
        "{\"id\":\"src\",\"operator\":\"generate\",\"config\":{\"rows\":1000,\"split_rows\":100}},"
        "{\"id\":\"bad\",\"operator\":\"no_such_operator\",\"upstream\":[\"src\"]},"
        "{\"id\":\"out\",\"operator\":\"file_sink\",\"config\":{\"path\":\"/nonexistent\"},"
        " \"upstream\":[\"bad\"]}]}";
    struct nu_job *job = NULL;
    struct nu_problems probs;
    nu_problems_init(&probs);
    /* without a validator the spec parses; the unknown operator fails its instance at start */
    cr_assert_eq(nu_job_parse(spec, strlen(spec), NULL, &job, &probs, &eb), NU_OK, "%s",
                 nu_err_msg(&eb));
    nu_problems_free(&probs);
    int64_t t0 = now_ms();
    nu_err_t err = run(job, NULL);
    cr_assert_eq(err, NU_ERR_OPERATOR, "got %s: %s", nu_err_name(err), nu_err_msg(&eb));
    cr_assert_not_null(strstr(nu_err_msg(&eb), "stage \"bad\""), "%s", nu_err_msg(&eb));
    cr_assert_not_null(strstr(nu_err_msg(&eb), "no_such_operator"), "%s", nu_err_msg(&eb));
    cr_assert_lt(now_ms() - t0, 30000, "the other stages were stopped promptly");
    nu_job_destroy(job);
}

/* A raised stop flag ends the run promptly with NU_ERR_CANCELLED. */
Test(local_run, stop_cancels_the_run)
{
    struct nu_job *job = job_make(etl_tmpl, "exactly_once");
    volatile sig_atomic_t stop = 1;
    struct nu_local_opts o = {.transport = tr, .stage = &so, .quiet = true};
    int64_t t0 = now_ms();
    cr_assert_eq(nu_local_run(job, &o, &stop, NULL, &eb), NU_ERR_CANCELLED, "%s", nu_err_msg(&eb));
    cr_assert_lt(now_ms() - t0, 10000);
    nu_job_destroy(job);
}
