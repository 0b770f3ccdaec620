/*
 * test_udf.c — user code end to end with `nurion run` against the real broker: a Python UDF
 * through the exec operator (rows that raise are dead-lettered one by one with the Python
 * exception; a UDF that crashes on one split gets that split dead-lettered with its exit status
 * after the attempts) and the example C plugin examples/plugins/upper.
 */
#include "pipeline.h"

#include <ctype.h>

struct dlq {
    long records;
    char reasons[8][512];
    char attempts[8][16];
    char rows[8][16];
};

static void read_dlq(const rd_kafka_message_t *m, void *ctx)
{
    struct dlq *d = ctx;
    if (d->records < 8) {
        nu_it_header(m, "nurion-error", d->reasons[d->records], sizeof(d->reasons[0]));
        nu_it_header(m, "nurion-attempts", d->attempts[d->records], sizeof(d->attempts[0]));
        nu_it_header(m, "nurion-row", d->rows[d->records], sizeof(d->rows[0]));
    }
    d->records++;
}

static bool any_reason_has(const struct dlq *d, const char *s)
{
    for (long i = 0; i < d->records && i < 8; i++)
        if (strstr(d->reasons[i], s))
            return true;
    return false;
}

/* generate 2000 rows -> exec(raise_on.py: y = id * 2, raising on 3 ids) -> file_sink. */
Test(udf, python_rows_that_raise_are_dead_lettered_and_counts_reconcile, .timeout = 240)
{
    char tmpl[2048];
    struct nu_it_job j;
    snprintf(tmpl, sizeof(tmpl),
             "{\"job_id\":\"@ID@\",\"stages\":["
             "{\"id\":\"src\",\"operator\":\"generate\",\"config\":{\"rows\":2000,"
             "\"split_rows\":200},\"partitions\":2},"
             "{\"id\":\"dbl\",\"operator\":\"exec\",\"config\":{"
             "\"argv\":[\"python3\",\"%s/examples/udf/raise_on.py\"],"
             "\"env\":{\"RAISE_IDS\":\"7,1234,1999\"},"
             "\"output_schema\":[[\"id\",\"int64\"],[\"payload\",\"string\"],[\"y\",\"int64\"]]},"
             "\"parallelism\":2,\"upstream\":[\"src\"]},"
             "{\"id\":\"out\",\"operator\":\"file_sink\",\"config\":{\"path\":\"@OUT@\"},"
             "\"upstream\":[\"dbl\"]}]}",
             NU_SOURCE_DIR);
    nu_it_job_make(&j, "udf-raise", tmpl);
    int rc = nu_it_run_wait(&j, nu_it_run_start(&j, NULL), 180000);
    cr_assert_eq(rc, 0, "nurion run exited %d (log %s)", rc, j.log);

    json_t *rows = nu_it_sink_rows(j.out);
    unsigned char *seen = calloc(2000, 1);
    size_t n = json_array_size(rows), dup = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_array_get(rows, i);
        json_int_t id = json_integer_value(json_object_get(r, "id"));
        cr_assert(id >= 0 && id < 2000, "id %lld", (long long)id);
        cr_assert(id != 7 && id != 1234 && id != 1999, "raising row %lld reached the sink",
                  (long long)id);
        cr_assert_eq(json_integer_value(json_object_get(r, "y")), id * 2, "row %lld",
                     (long long)id);
        dup += seen[id]++ > 0;
    }
    cr_assert_eq(dup, 0);
    cr_assert_eq(n, 1997, "sink holds %zu rows (log %s)", n, j.log);
    free(seen);
    json_decref(rows);

    char topic[256];
    struct dlq d = {0};
    snprintf(topic, sizeof(topic), "nurion.%s.dbl.dlq", j.id);
    nu_it_read_topic(topic, read_dlq, &d);
    cr_assert_eq(d.records, 3, "dead letters in %s: %ld", topic, d.records);
    cr_assert(any_reason_has(&d, "ValueError: id 7 is on the RAISE_IDS list"), "%s", d.reasons[0]);
    cr_assert(any_reason_has(&d, "ValueError: id 1234 is on the RAISE_IDS list"));
    cr_assert(any_reason_has(&d, "ValueError: id 1999 is on the RAISE_IDS list"));
    for (int i = 0; i < 3; i++)
        cr_assert_neq(d.rows[i][0], '\0', "a row dead letter names its row");
    cr_assert_eq((long)n + d.records, 2000, "out %zu + dead letters %ld != in 2000", n, d.records);
}

/* A UDF that exits whenever its split holds id 500: that split is dead-lettered after the
 * stage's attempts with the exit status; every other split arrives and the job completes. */
Test(udf, a_udf_that_crashes_on_one_split_gets_it_dead_lettered, .timeout = 240)
{
    char tmpl[2048], script[600], name[96];
    struct nu_it_job j;
    snprintf(script, sizeof(script), "/tmp/nurion-it-%s.py",
             nu_it_unique_name("udf-crash", name, sizeof(name)));
    FILE *f = fopen(script, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "import os, sys\n"
            "sys.path.insert(0, '%s/python')\n"
            "import nurion_udf as udf\n"
            "@udf.batch\n"
            "def crash_on_500(rows):\n"
            "    if any(r['id'] == 500 for r in rows):\n"
            "        sys.stderr.write('about to crash\\n')\n"
            "        sys.stderr.flush()\n"
            "        os._exit(3)\n"
            "    return rows\n"
            "udf.run()\n",
            NU_SOURCE_DIR);
    fclose(f);
    snprintf(tmpl, sizeof(tmpl),
             "{\"job_id\":\"@ID@\",\"stages\":["
             "{\"id\":\"src\",\"operator\":\"generate\",\"config\":{\"rows\":2000,"
             "\"split_rows\":200}},"
             "{\"id\":\"udf\",\"operator\":\"exec\",\"config\":{\"argv\":[\"python3\",\"%s\"]},"
             "\"max_attempts\":3,\"retry_backoff_ms\":50,\"upstream\":[\"src\"]},"
             "{\"id\":\"out\",\"operator\":\"file_sink\",\"config\":{\"path\":\"@OUT@\"},"
             "\"upstream\":[\"udf\"]}]}",
             script);
    nu_it_job_make(&j, "udf-crash", tmpl);
    int rc = nu_it_run_wait(&j, nu_it_run_start(&j, NULL), 180000);
    cr_assert_eq(rc, 0, "nurion run exited %d (log %s)", rc, j.log);

    json_t *rows = nu_it_sink_rows(j.out);
    size_t n = json_array_size(rows);
    for (size_t i = 0; i < n; i++) {
        json_int_t id = json_integer_value(json_object_get(json_array_get(rows, i), "id"));
        cr_assert(id < 400 || id >= 600, "row %lld of the crashing split arrived", (long long)id);
    }
    cr_assert_eq(n, 1800, "sink holds %zu rows (log %s)", n, j.log);
    json_decref(rows);

    char topic[256];
    struct dlq d = {0};
    snprintf(topic, sizeof(topic), "nurion.%s.udf.dlq", j.id);
    nu_it_read_topic(topic, read_dlq, &d);
    cr_assert_eq(d.records, 1, "the crashing split is dead-lettered once, found %ld", d.records);
    cr_assert(strstr(d.reasons[0], "UDF exited with status 3"), "reason: %s", d.reasons[0]);
    cr_assert_str_eq(d.attempts[0], "3");
    unlink(script);
}

/* The example C plugin, loaded by path from the build tree. */
Test(udf, the_upper_plugin_example_runs_to_completion, .timeout = 240)
{
    char tmpl[2048];
    struct nu_it_job j;
    snprintf(tmpl, sizeof(tmpl),
             "{\"job_id\":\"@ID@\",\"stages\":["
             "{\"id\":\"src\",\"operator\":\"generate\",\"config\":{\"rows\":3000,"
             "\"split_rows\":500,\"payload_bytes\":12}},"
             "{\"id\":\"up\",\"operator\":\"upper\",\"plugin\":\"%s/lib/plugins/upper.so\","
             "\"config\":{\"column\":\"payload\"},\"upstream\":[\"src\"]},"
             "{\"id\":\"out\",\"operator\":\"file_sink\",\"config\":{\"path\":\"@OUT@\"},"
             "\"upstream\":[\"up\"]}]}",
             NU_BINARY_DIR);
    nu_it_job_make(&j, "plugin-upper", tmpl);
    int rc = nu_it_run_wait(&j, nu_it_run_start(&j, NULL), 180000);
    cr_assert_eq(rc, 0, "nurion run exited %d (log %s)", rc, j.log);
    json_t *rows = nu_it_sink_rows(j.out);
    size_t n = json_array_size(rows), letters = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = json_string_value(json_object_get(json_array_get(rows, i), "payload"));
        cr_assert_not_null(p);
        cr_assert_eq(strlen(p), 12);
        for (; *p; p++) {
            cr_assert(!islower((unsigned char)*p), "lower-case letter left in row %zu", i);
            letters += isupper((unsigned char)*p) != 0;
        }
    }
    cr_assert_eq(n, 3000, "sink holds %zu rows (log %s)", n, j.log);
    cr_assert_gt(letters, 0, "the payloads held letters to upper-case");
    json_decref(rows);
}
