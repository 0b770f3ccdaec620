/* test_planner_tail.c — the pure parts of continuous planning: which stages are unbounded
 * sources, where a plan ends per partition (recovered from its splits), and the runner's
 * progress line for an unbounded source (lag, not a count down). The planner itself runs against
 * the broker in tests/integration/test_kafka_source_modes.c. */
#include "operators/registry.h"
#include "stage/connectors.h"
#include "stage/planner_int.h"
#include "stage/runner.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

TestSuite(planner_tail, .init = nu_connectors_register);

static const char *spec =
    "{\"job_id\":\"pt\",\"format\":\"avro\",\"stages\":["
    "{\"id\":\"live\",\"operator\":\"kafka_source\",\"config\":{\"topic\":\"t\",\"format\":\"raw\","
    "\"mode\":\"unbounded\"}},"
    "{\"id\":\"once\",\"operator\":\"kafka_source\",\"config\":{\"topic\":\"t\",\"format\":\"raw\","
    "\"mode\":\"finite\"}},"
    "{\"id\":\"plain\",\"operator\":\"kafka_source\",\"config\":{\"topic\":\"t\",\"format\":"
    "\"raw\"}},"
    "{\"id\":\"pg\",\"operator\":\"postgres_sink\",\"upstream\":[\"live\",\"once\",\"plain\"],"
    "\"config\":{\"table\":\"t\",\"mode\":\"upsert\",\"key\":[\"offset\"]}}]}";

static struct nu_job *load(void)
{
    struct nu_job *job = NULL;
    struct nu_errbuf eb;
    struct nu_problems p;
    nu_errbuf_clear(&eb);
    nu_problems_init(&p);
    nu_err_t rc = nu_job_parse(spec, strlen(spec), nu_registry_validator(), &job, &p, &eb);
    cr_assert_eq(rc, NU_OK, "%s %s", nu_err_msg(&eb), p.n ? p.items[0].message : "");
    nu_problems_free(&p);
    return job;
}

Test(planner_tail, only_sources_in_mode_unbounded_are_planned_continuously)
{
    struct nu_job *job = load();
    static const struct {
        const char *id;
        bool unbounded;
    } want[] = {{"live", true}, {"once", false}, {"plain", false}, {"pg", false}};
    for (size_t i = 0; i < 4; i++) {
        size_t idx = 0;
        cr_assert(nu_job_stage_find(job, want[i].id, &idx));
        cr_assert_eq(nu_plan_stage_unbounded(job, idx), want[i].unbounded, "%s", want[i].id);
    }
    nu_job_destroy(job);
}

/* A plan batch of (partition, start_offset, end_offset) rows; a partition < 0 is a null. */
static struct nu_batch *plan_batch(const int64_t (*rows)[3], size_t n)
{
    struct nu_schema *s = nu_schema_new(3);
    nu_schema_set(s, 0, "partition", NU_T_INT64, true, NULL);
    nu_schema_set(s, 1, "start_offset", NU_T_INT64, false, NULL);
    nu_schema_set(s, 2, "end_offset", NU_T_INT64, false, NULL);
    struct nu_batch *b = nu_batch_new(s, n);
    nu_schema_unref(s);
    for (size_t i = 0; i < n; i++) {
        struct nu_value *row = nu_batch_add_row(b);
        row[0] = rows[i][0] < 0 ? nu_value_null() : nu_value_int(rows[i][0]);
        row[1] = nu_value_int(rows[i][1]);
        row[2] = nu_value_int(rows[i][2]);
    }
    return b;
}

Test(planner_tail, where_the_plan_ends_is_the_largest_end_offset_per_partition)
{
    static const int64_t first[][3] = {{0, 0, 40}, {0, 40, 80}, {1, 5, 5}, {-1, 0, 999}};
    static const int64_t later[][3] = {{1, 5, 30}, {0, 10, 20}, {3, 0, 7}};
    json_t *ends = json_object();
    struct nu_batch *a = plan_batch(first, 4), *b = plan_batch(later, 3);
    nu_plan_ends_note(ends, a);
    nu_plan_ends_note(ends, b);
    /* a batch without the columns, and no map at all, change nothing */
    struct nu_schema *s = nu_schema_new(1);
    nu_schema_set(s, 0, "path", NU_T_STRING, false, NULL);
    struct nu_batch *other = nu_batch_new(s, 1);
    nu_schema_unref(s);
    nu_batch_add_row(other)[0] = nu_batch_str(other, NU_T_STRING, "x", 1);
    nu_plan_ends_note(ends, other);
    nu_plan_ends_note(NULL, a);
    char *text = json_dumps(ends, JSON_SORT_KEYS | JSON_COMPACT);
    cr_assert_str_eq(text, "{\"0\":80,\"1\":30,\"3\":7}");
    free(text);
    json_decref(ends);
    nu_batch_destroy(a);
    nu_batch_destroy(b);
    nu_batch_destroy(other);
}

Test(planner_tail, progress_of_an_unbounded_source_shows_lag_not_a_total)
{
    struct nu_job *job = load();
    struct nu_run_stats s;
    char *text = NULL;
    size_t len = 0;
    nu_run_stats_init(&s, job);
    s.st[0].planned = true;
    s.st[0].unbounded = true;
    s.st[0].planned_splits = 10;
    s.st[0].splits = 4;
    s.st[1].planned = true;
    s.st[1].planned_splits = 3;
    s.st[1].splits = 3;
    FILE *f = open_memstream(&text, &len);
    nu_run_progress_print(f, job, &s, 1000, true);
    nu_run_progress_print(f, job, &s, 1000, false);
    fclose(f);
    cr_assert(strstr(text, "splits 4 (lag 6)"), "%s", text);
    cr_assert(strstr(text, "live 4 (lag 6) splits"), "%s", text);
    cr_assert_null(strstr(text, "4/10"), "%s", text);
    cr_assert(strstr(text, "splits 3/3"), "%s", text);
    free(text);
    nu_run_stats_free(&s);
    nu_job_destroy(job);
}
