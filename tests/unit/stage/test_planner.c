/* Tests of src/stage/planner.c (the parts without a broker): the job's topic list and the
 * planned-rows count of plan batches. The broker side is in tests/integration/test_run.c. */
#include "stage/planner.h"

#include "operators/registry.h"

#include <criterion/criterion.h>
#include <string.h>

/* src (3 partitions) -> a -> sink ; src2 -> a (union) */
static const char *spec =
    "{\"job_id\":\"pj\",\"stages\":["
    "{\"id\":\"src\",\"operator\":\"generate\",\"partitions\":3,\"config\":{\"rows\":10}},"
    "{\"id\":\"src2\",\"operator\":\"generate\",\"config\":{\"rows\":10}},"
    "{\"id\":\"a\",\"operator\":\"map\",\"upstream\":[\"src\",\"src2\"],\"partitions\":5,"
    "\"config\":{\"columns\":{\"y\":\"id + 1\"}}},"
    "{\"id\":\"sink\",\"operator\":\"file_sink\",\"upstream\":[\"a\"],"
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

Test(planner, topic_list_covers_outputs_plans_dlqs_and_events)
{
    static const struct {
        const char *name;
        int partitions;
    } want[] = {
        {"nurion.pj.src", 3},     {"nurion.pj.src.plan", 3},  {"nurion.pj.src.dlq", 1},
        {"nurion.pj.src2", 8},    {"nurion.pj.src2.plan", 8}, {"nurion.pj.src2.dlq", 1},
        {"nurion.pj.a", 5},       {"nurion.pj.a.dlq", 1},     {"nurion.pj.sink.dlq", 1},
        {"nurion.pj._events", 1},
    };
    struct nu_plan_topic topics[NU_PLAN_MAX_TOPICS];
    struct nu_job *job = load();
    size_t n = nu_plan_topic_list(job, topics);
    cr_assert_eq(n, sizeof(want) / sizeof(want[0]), "got %zu topics", n);
    for (size_t i = 0; i < n; i++) {
        cr_assert_str_eq(topics[i].name, want[i].name);
        cr_assert_eq(topics[i].partitions, want[i].partitions, "%s", want[i].name);
    }
    /* a sink has no output topic */
    for (size_t i = 0; i < n; i++)
        cr_assert_str_neq(topics[i].name, "nurion.pj.sink");
    nu_job_destroy(job);
}

static struct nu_batch *batch_of(const char *col, nu_type_t type, const int64_t *vals, size_t n,
                                 bool null_last)
{
    struct nu_schema *s = nu_schema_new(1);
    nu_schema_set(s, 0, col, type, true, NULL);
    struct nu_batch *b = nu_batch_new(s, n);
    nu_schema_unref(s);
    for (size_t i = 0; i < n; i++) {
        struct nu_value *row = nu_batch_add_row(b);
        if (null_last && i == n - 1)
            row[0] = nu_value_null();
        else
            row[0] = type == NU_T_INT64 ? nu_value_int(vals[i]) : nu_value_double((double)vals[i]);
    }
    return b;
}

Test(planner, planned_rows_come_from_an_int64_count_column)
{
    static const int64_t v[] = {1000, 1000, 500};
    static const struct {
        const char *col;
        nu_type_t type;
        bool null_last;
        bool known;
        uint64_t rows;
    } cases[] = {
        {"count", NU_T_INT64, false, true, 2500},
        {"count", NU_T_INT64, true, true, 2000}, /* a null row adds nothing */
        {"rows", NU_T_INT64, false, false, 0},   /* no "count" column */
        {"count", NU_T_DOUBLE, false, false, 0}, /* not an int64 */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct nu_batch *b = batch_of(cases[i].col, cases[i].type, v, 3, cases[i].null_last);
        uint64_t rows = 99;
        cr_assert_eq(nu_plan_batch_rows(b, &rows), cases[i].known, "case %zu", i);
        cr_assert_eq(rows, cases[i].rows, "case %zu: %llu rows", i, (unsigned long long)rows);
        nu_batch_destroy(b);
    }
    uint64_t rows = 99;
    cr_assert_not(nu_plan_batch_rows(NULL, &rows));
}
