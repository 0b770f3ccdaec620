/* Tests of the runner's pure parts (src/stage/runner_progress.c): --instances parsing and
 * counts, the restart back-off schedule, event accounting, output line splitting and the
 * summary text. The processes and the broker are exercised in tests/integration/test_run.c. */
#include "stage/runner.h"

#include "operators/registry.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

static const char *spec =
    "{\"job_id\":\"rj\",\"format\":\"avro\",\"stages\":["
    "{\"id\":\"src\",\"operator\":\"generate\",\"config\":{\"rows\":10}},"
    "{\"id\":\"dbl\",\"operator\":\"map\",\"upstream\":[\"src\"],"
    "\"parallelism\":{\"min\":2,\"max\":4},\"config\":{\"columns\":{\"y\":\"id * 2\"}}},"
    "{\"id\":\"even\",\"operator\":\"filter\",\"upstream\":[\"dbl\"],"
    "\"config\":{\"where\":\"id % 2 == 0\"}},"
    "{\"id\":\"out\",\"operator\":\"file_sink\",\"upstream\":[\"even\"],"
    "\"config\":{\"path\":\"/tmp/x/\"}}]}";

static struct nu_job *load(void)
{
    struct nu_job *job = NULL;
    struct nu_errbuf eb;
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_job_parse(spec, strlen(spec), nu_registry_validator(), &job, NULL, &eb), NU_OK,
                 "%s", nu_err_msg(&eb));
    return job;
}

Test(runner, instances_argument_parses_stage_and_count)
{
    static const struct {
        const char *arg;
        nu_err_t err;
        const char *stage;
        int n;
    } cases[] = {
        {"dbl=3", NU_OK, "dbl", 3},           {"a-b_c=1", NU_OK, "a-b_c", 1},
        {"dbl=0", NU_ERR_USAGE, NULL, 0},     {"dbl=-2", NU_ERR_USAGE, NULL, 0},
        {"dbl=2x", NU_ERR_USAGE, NULL, 0},    {"dbl=", NU_ERR_USAGE, NULL, 0},
        {"=2", NU_ERR_USAGE, NULL, 0},        {"dbl", NU_ERR_USAGE, NULL, 0},
        {"dbl=99999", NU_ERR_USAGE, NULL, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct nu_run_instances ov;
        struct nu_errbuf eb;
        nu_errbuf_clear(&eb);
        cr_assert_eq(nu_run_instances_parse(cases[i].arg, &ov, &eb), cases[i].err, "\"%s\"",
                     cases[i].arg);
        if (cases[i].err == NU_OK) {
            cr_assert_str_eq(ov.stage, cases[i].stage);
            cr_assert_eq(ov.n, cases[i].n);
        } else {
            cr_assert(strstr(nu_err_msg(&eb), cases[i].arg), "message names the argument: %s",
                      nu_err_msg(&eb));
        }
    }
}

Test(runner, instance_counts_default_to_max_and_check_overrides)
{
    struct nu_job *job = load();
    int counts[4];
    struct nu_errbuf eb;
    size_t dbl = 0;
    cr_assert(nu_job_stage_find(job, "dbl", &dbl));

    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_run_instance_counts(job, NULL, 0, counts, &eb), NU_OK);
    cr_assert_eq(counts[dbl], 4);
    cr_assert_eq(counts[0], 1);

    struct nu_run_instances ok = {"dbl", 2};
    cr_assert_eq(nu_run_instance_counts(job, &ok, 1, counts, &eb), NU_OK);
    cr_assert_eq(counts[dbl], 2);

    static const struct nu_run_instances bad[] = {{"dbl", 1}, {"dbl", 5}, {"nope", 1}};
    for (size_t i = 0; i < 3; i++) {
        nu_errbuf_clear(&eb);
        cr_assert_eq(nu_run_instance_counts(job, &bad[i], 1, counts, &eb), NU_ERR_USAGE);
        cr_assert(strstr(nu_err_msg(&eb), bad[i].stage), "%s", nu_err_msg(&eb));
    }
    nu_job_destroy(job);
}

Test(runner, backoff_doubles_from_half_a_second_to_ten)
{
    static const int want[] = {500, 500, 1000, 2000, 4000, 8000, 10000, 10000, 10000};
    for (unsigned r = 0; r < sizeof(want) / sizeof(want[0]); r++)
        cr_assert_eq(nu_run_backoff_ms(r), want[r], "restart %u: %d", r, nu_run_backoff_ms(r));
    cr_assert_eq(nu_run_backoff_ms(1000000), NU_RUN_BACKOFF_MAX_MS);
}

Test(runner, events_are_counted_per_stage)
{
    struct nu_job *job = load();
    struct nu_run_stats s;
    size_t dbl = 0, even = 0;
    cr_assert(nu_job_stage_find(job, "dbl", &dbl));
    cr_assert(nu_job_stage_find(job, "even", &even));
    nu_run_stats_init(&s, job);
    static const struct {
        const char *json;
        bool ok;
    } evs[] = {
        {"{\"type\":\"split_done\",\"stage\":\"dbl\",\"rows_in\":10,\"rows_out\":10}", true},
        {"{\"type\":\"split_done\",\"stage\":\"dbl\",\"rows_in\":5,\"rows_out\":5}", true},
        {"{\"type\":\"split_done\",\"stage\":\"even\",\"rows_in\":15,\"rows_out\":7}", true},
        {"{\"type\":\"dlq\",\"stage\":\"even\",\"split\":\"x\"}", true},
        {"{\"type\":\"error\",\"stage\":\"even\",\"split\":\"x\"}", true},
        {"{\"type\":\"error\",\"stage\":\"even\",\"split\":\"x\"}", true},
        {"{\"type\":\"partition_done\",\"stage\":\"dbl\"}", true},
        {"{\"type\":\"metrics\",\"stage\":\"dbl\",\"rows_out\":1000}", true},
        {"{\"type\":\"split_done\",\"stage\":\"ghost\",\"rows_out\":10}", false},
        {"{\"stage\":\"dbl\"}", false},
        {"not json", false},
        {"[1,2]", false},
    };
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
        cr_assert_eq(nu_run_stats_apply(&s, job, evs[i].json, strlen(evs[i].json)), evs[i].ok, "%s",
                     evs[i].json);
    cr_assert_eq(s.st[dbl].splits, 2);
    cr_assert_eq(s.st[dbl].rows_in, 15);
    cr_assert_eq(s.st[dbl].rows_out, 15);
    cr_assert_eq(s.st[dbl].partitions_done, 1);
    cr_assert_eq(s.st[even].splits, 1);
    cr_assert_eq(s.st[even].rows_out, 7);
    cr_assert_eq(s.st[even].dead_letters, 1);
    cr_assert_eq(s.st[even].errors, 2);
    cr_assert_eq(s.events, 12);
    cr_assert_eq(s.unknown_events, 4);

    /* rates: rows out over at least a second */
    nu_run_stats_rate(&s, 10000);
    s.st[dbl].rows_out += 3000;
    nu_run_stats_rate(&s, 10500); /* too soon: unchanged */
    cr_assert_float_eq(s.st[dbl].rows_per_s, 0.0, 1e-9);
    nu_run_stats_rate(&s, 12000);
    cr_assert_float_eq(s.st[dbl].rows_per_s, 1500.0, 1e-9);
    nu_run_stats_free(&s);
    nu_job_destroy(job);
}

struct collected {
    char lines[16][NU_RUN_LINE_MAX];
    size_t n;
};

static void collect(void *ctx, const char *line, size_t len)
{
    struct collected *c = ctx;
    cr_assert_lt(c->n, 16);
    cr_assert_eq(strlen(line), len);
    memcpy(c->lines[c->n++], line, len + 1);
}

Test(runner, output_is_split_into_lines_across_reads)
{
    struct nu_run_lines *l = calloc(1, sizeof(*l));
    struct collected *c = calloc(1, sizeof(*c));
    const char *chunks[] = {"first li", "ne\nsecond\n\nthi", "rd"};
    for (size_t i = 0; i < 3; i++)
        nu_run_lines_feed(l, chunks[i], strlen(chunks[i]), collect, c);
    cr_assert_eq(c->n, 3);
    cr_assert_str_eq(c->lines[0], "first line");
    cr_assert_str_eq(c->lines[1], "second");
    cr_assert_str_eq(c->lines[2], "");
    nu_run_lines_flush(l, collect, c);
    cr_assert_eq(c->n, 4);
    cr_assert_str_eq(c->lines[3], "third");
    nu_run_lines_flush(l, collect, c); /* nothing left */
    cr_assert_eq(c->n, 4);

    char tail[256];
    nu_run_lines_tail(l, 2, tail, sizeof(tail));
    cr_assert_str_eq(tail, " | third");
    nu_run_lines_reason(l, tail, sizeof(tail));
    cr_assert_str_eq(tail, "second |  | third");

    /* an over-long line is cut, not split */
    char *big = malloc(NU_RUN_LINE_MAX * 2 + 2);
    memset(big, 'x', NU_RUN_LINE_MAX * 2);
    big[NU_RUN_LINE_MAX * 2] = '\n';
    nu_run_lines_feed(l, big, NU_RUN_LINE_MAX * 2 + 1, collect, c);
    cr_assert_eq(c->n, 5);
    cr_assert_eq(strlen(c->lines[4]), NU_RUN_LINE_MAX - 1);

    /* the reason prefers the last error line */
    const char *err = "ts=1 level=error comp=stage msg=\"could not connect\"\nts=2 level=info "
                      "msg=\"stopped\"\n";
    nu_run_lines_feed(l, err, strlen(err), collect, c);
    nu_run_lines_reason(l, tail, sizeof(tail));
    cr_assert_str_eq(tail, "ts=1 level=error comp=stage msg=\"could not connect\"");
    free(big);
    free(c);
    free(l);
}

Test(runner, summary_lists_every_stage_and_the_result_topic)
{
    struct nu_job *job = load();
    struct nu_run_stats s;
    char *text = NULL;
    size_t len = 0;
    size_t even = 0;
    cr_assert(nu_job_stage_find(job, "even", &even));
    nu_run_stats_init(&s, job);
    s.st[even].rows_in = 1234567;
    s.st[even].rows_out = 617283;
    s.st[even].splits = 42;
    s.st[even].dead_letters = 2;
    s.st[even].instances = 1;
    FILE *f = open_memstream(&text, &len);
    nu_run_summary_print(f, job, &s, 12345, "127.0.0.1:19092");
    fclose(f);
    cr_assert(strstr(text, "job \"rj\" completed in 12.3 s (42 splits)"), "%s", text);
    cr_assert(strstr(text, "rows in"), "%s", text);
    cr_assert(strstr(text, "dead letters"), "%s", text);
    /* the row of "even": id, operator, instances, rows in, rows out, splits, dlq, errors */
    const char *row = strstr(text, "\neven ");
    cr_assert(row, "%s", text);
    char id[16], op[16];
    long long inst, in, out, splits, dlq, errs, restarts;
    cr_assert_eq(sscanf(row + 1, "%15s %15s %lld %lld %lld %lld %lld %lld %lld", id, op, &inst, &in,
                        &out, &splits, &dlq, &errs, &restarts),
                 9, "%s", row);
    cr_assert_str_eq(op, "filter");
    cr_assert_eq(in, 1234567);
    cr_assert_eq(out, 617283);
    cr_assert_eq(splits, 42);
    cr_assert_eq(dlq, 2);
    /* the stage feeding the sink holds the result; sinks and inner stages get no kcat line */
    cr_assert(strstr(text, "kcat -b 127.0.0.1:19092 -C -t nurion.rj.even -e"), "%s", text);
    cr_assert_null(strstr(text, "-t nurion.rj.dbl "), "%s", text);
    cr_assert(strstr(text, "-t nurion.rj.even.dlq"), "dead letters are pointed at: %s", text);
    cr_assert_null(strstr(text, "-t nurion.rj.dbl.dlq"), "%s", text);
    /* stages appear in topological order */
    cr_assert_lt(strstr(text, "\nsrc ") - text, strstr(text, "\ndbl ") - text);
    cr_assert_lt(strstr(text, "\ndbl ") - text, strstr(text, "\neven ") - text);
    cr_assert_lt(strstr(text, "\neven ") - text, strstr(text, "\nout ") - text);
    free(text);
    nu_run_stats_free(&s);
    nu_job_destroy(job);
}

Test(runner, progress_shows_planned_splits_of_sources)
{
    struct nu_job *job = load();
    struct nu_run_stats s;
    char *text = NULL;
    size_t len = 0;
    nu_run_stats_init(&s, job);
    s.st[0].planned = true;
    s.st[0].planned_splits = 10;
    s.st[0].splits = 4;
    s.st[0].instances = 1;
    FILE *f = open_memstream(&text, &len);
    cr_assert_eq(nu_run_progress_print(f, job, &s, 2500, true), 4);
    cr_assert_eq(nu_run_progress_print(f, job, &s, 2500, false), 1);
    fclose(f);
    cr_assert(strstr(text, "splits 4/10"), "%s", text);
    cr_assert(strstr(text, "progress (2.5 s): src 4/10 splits"), "%s", text);
    size_t nl = 0;
    for (const char *p = text; *p; p++)
        nl += *p == '\n';
    cr_assert_eq(nl, 5, "4 stage lines and one plain line: %s", text);
    free(text);
    nu_run_stats_free(&s);
    nu_job_destroy(job);
}
