/*
 * Exactly-once and completion of whole jobs through the real broker (src/stage): stage
 * processes killed with SIGKILL at random moments, poison rows, at-least-once mode, completion
 * latency, fan-out and union, and a split that keeps killing its stage.
 */
#include "pipeline.h"

#include <criterion/criterion.h>

/* generate 200,000 rows -> map y = id * 2 -> filter even ids -> file_sink */
static const char *const etl_tmpl =
    "{\"job_id\":\"@ID@\",\"guarantee\":\"%s\",\"stages\":["
    "{\"id\":\"src\",\"operator\":\"generate\",\"config\":{\"rows\":200000,\"split_rows\":1000},"
    " \"parallelism\":{\"min\":1,\"max\":2},\"max_crashes\":20},"
    "{\"id\":\"dbl\",\"operator\":\"map\",\"config\":{\"columns\":{\"y\":\"id * 2\"}},"
    " \"parallelism\":{\"min\":2,\"max\":4},\"upstream\":[\"src\"],\"max_crashes\":20},"
    "{\"id\":\"even\",\"operator\":\"filter\",\"config\":{\"where\":\"id %% 2 == 0\"},"
    " \"parallelism\":2,\"upstream\":[\"dbl\"],\"max_crashes\":20},"
    "{\"id\":\"out\",\"operator\":\"file_sink\",\"config\":{\"path\":\"@OUT@\",\"format\":"
    "\"jsonl\"},\"parallelism\":2,\"upstream\":[\"even\"],\"max_crashes\":20}]}";

/* The sink must hold every even id below 200,000 with y = 2 id, each exactly once. */
static void check_etl_exactly_once(const struct nu_it_job *j)
{
    json_t *rows = nu_it_sink_rows(j->out);
    size_t n = json_array_size(rows);
    unsigned char *seen = calloc(200000, 1);
    size_t dup = 0, bad = 0;
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
    cr_assert_eq(n, 100000, "expected 100000 rows, found %zu (log %s)", n, j->log);
    free(seen);
    json_decref(rows);
}

static void kill_test(const char *stage, unsigned seed)
{
    char tmpl[2048];
    struct nu_it_job j;
    snprintf(tmpl, sizeof(tmpl), etl_tmpl, "exactly_once");
    nu_it_job_make(&j, "eo-kill", tmpl);
    pid_t runner = nu_it_run_start(&j, NULL);
    int kills = nu_it_kill_loop(runner, stage, 5, seed);
    int rc = nu_it_run_wait(&j, runner, 240000);
    cr_assert_eq(rc, 0, "nurion run exited %d (log %s)", rc, j.log);
    cr_log_info("stage %s: %d kills landed", stage, kills);
    cr_assert_geq(kills, 1, "no instance of %s was killed: the job ended too soon", stage);
    check_etl_exactly_once(&j);
}

Test(exactly_once, sigkill_middle_stage, .timeout = 300)
{
    kill_test("dbl", 7);
}

Test(exactly_once, sigkill_source_stage, .timeout = 300)
{
    kill_test("src", 11);
}

Test(exactly_once, sigkill_sink_stage, .timeout = 300)
{
    kill_test("out", 13);
}

/* At-least-once: the same kills lose nothing (duplicates are allowed upstream of the sink, whose
 * files are named after split ids, so they overwrite instead of adding rows). */
Test(exactly_once, at_least_once_loses_nothing_under_sigkill, .timeout = 300)
{
    char tmpl[2048];
    struct nu_it_job j;
    snprintf(tmpl, sizeof(tmpl), etl_tmpl, "at_least_once");
    nu_it_job_make(&j, "alo-kill", tmpl);
    pid_t runner = nu_it_run_start(&j, NULL);
    int kills = nu_it_kill_loop(runner, "dbl", 5, 17);
    cr_assert_eq(nu_it_run_wait(&j, runner, 240000), 0, "log %s", j.log);
    cr_log_info("at_least_once: %d kills landed", kills);
    check_etl_exactly_once(&j);
}

struct dlq_count {
    long records;
    long division;
};

static void count_dlq(const rd_kafka_message_t *m, void *ctx)
{
    struct dlq_count *c = ctx;
    char buf[512];
    c->records++;
    if (strstr(nu_it_header(m, "nurion-error", buf, sizeof(buf)), "division by zero"))
        c->division++;
}

/* Rows whose expression fails go to the DLQ with the reason; every other row arrives. */
Test(exactly_once, poison_rows_are_dead_lettered_and_counts_reconcile, .timeout = 180)
{
    struct nu_it_job j;
    nu_it_job_make(
        &j, "poison",
        "{\"job_id\":\"@ID@\",\"stages\":["
        "{\"id\":\"src\",\"operator\":\"generate\",\"config\":{\"rows\":20000,\"split_rows\":500}},"
        "{\"id\":\"m\",\"operator\":\"map\",\"config\":{\"columns\":{\"q\":\"100 / (id % 1000 - 7)"
        "\"}},\"upstream\":[\"src\"]},"
        "{\"id\":\"out\",\"operator\":\"file_sink\",\"config\":{\"path\":\"@OUT@\"},"
        "\"upstream\":[\"m\"]}]}");
    cr_assert_eq(nu_it_run_wait(&j, nu_it_run_start(&j, NULL), 120000), 0, "log %s", j.log);
    json_t *rows = nu_it_sink_rows(j.out);
    size_t out = json_array_size(rows);
    for (size_t i = 0; i < out; i++)
        cr_assert_neq(json_integer_value(json_object_get(json_array_get(rows, i), "id")) % 1000, 7);
    json_decref(rows);
    char topic[256];
    struct dlq_count c = {0};
    snprintf(topic, sizeof(topic), "nurion.%s.m.dlq", j.id);
    nu_it_read_topic(topic, count_dlq, &c);
    cr_assert_eq(c.records, 20, "expected the 20 poison rows in %s", topic);
    cr_assert_eq(c.division, 20, "every dead letter names the division by zero");
    cr_assert_eq((long)out + c.records, 20000, "out %zu + dead letters %ld != in 20000", out,
                 c.records);
}

struct completion {
    int64_t last_split_done;
    int64_t last_stopped;
};

static void scan_events(const rd_kafka_message_t *m, void *ctx)
{
    struct completion *c = ctx;
    json_t *ev = json_loadb(m->payload, m->len, 0, NULL);
    const char *type = json_string_value(json_object_get(ev, "type"));
    const char *reason = json_string_value(json_object_get(ev, "reason"));
    int64_t ts = json_integer_value(json_object_get(ev, "ts"));
    if (type && strcmp(type, "split_done") == 0 && ts > c->last_split_done)
        c->last_split_done = ts;
    if (type && strcmp(type, "instance_stopped") == 0 && reason &&
        strcmp(reason, "complete") == 0 && ts > c->last_stopped)
        c->last_stopped = ts;
    json_decref(ev);
}

/* Completion is exact and prompt: the last instance reports completion within 2 s of the last
 * split being committed, with no idle timeout involved. */
Test(exactly_once, completion_within_two_seconds_of_the_last_split, .timeout = 180)
{
    char tmpl[2048];
    struct nu_it_job j;
    snprintf(tmpl, sizeof(tmpl), etl_tmpl, "exactly_once");
    nu_it_job_make(&j, "latency", tmpl);
    cr_assert_eq(nu_it_run_wait(&j, nu_it_run_start(&j, NULL), 120000), 0, "log %s", j.log);
    char topic[256];
    struct completion c = {0, 0};
    snprintf(topic, sizeof(topic), "nurion.%s._events", j.id);
    nu_it_read_topic(topic, scan_events, &c);
    cr_assert_gt(c.last_split_done, 0);
    cr_assert_gt(c.last_stopped, 0);
    cr_log_info("completion reported %lld ms after the last split",
                (long long)(c.last_stopped - c.last_split_done));
    cr_assert_lt(c.last_stopped - c.last_split_done, 2000,
                 "completion reported %lld ms after the last split (log %s)",
                 (long long)(c.last_stopped - c.last_split_done), j.log);
    check_etl_exactly_once(&j);
}

/* Fan-out (two stages read src) and union (the sink reads both): every (id, branch) once. */
Test(exactly_once, fan_out_and_union_have_exact_counts, .timeout = 180)
{
    struct nu_it_job j;
    nu_it_job_make(
        &j, "fanunion",
        "{\"job_id\":\"@ID@\",\"stages\":["
        "{\"id\":\"src\",\"operator\":\"generate\",\"config\":{\"rows\":30000,\"split_rows\":700},"
        " \"partitions\":3},"
        "{\"id\":\"a\",\"operator\":\"map\",\"config\":{\"columns\":{\"branch\":\"'a'\"}},"
        " \"upstream\":[\"src\"],\"partitions\":5},"
        "{\"id\":\"b\",\"operator\":\"map\",\"config\":{\"columns\":{\"branch\":\"'b'\"}},"
        " \"upstream\":[\"src\"],\"partitions\":2},"
        "{\"id\":\"out\",\"operator\":\"file_sink\",\"config\":{\"path\":\"@OUT@\"},"
        " \"upstream\":[\"a\",\"b\"],\"parallelism\":2}]}");
    cr_assert_eq(nu_it_run_wait(&j, nu_it_run_start(&j, NULL), 120000), 0, "log %s", j.log);
    json_t *rows = nu_it_sink_rows(j.out);
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
    cr_assert_eq(n, 60000, "expected 60000 rows, found %zu (log %s)", n, j.log);
    free(seen);
    json_decref(rows);
}

struct killer_dlq {
    long records;
    char reason[512];
};

static void read_killer(const rd_kafka_message_t *m, void *ctx)
{
    struct killer_dlq *k = ctx;
    k->records++;
    nu_it_header(m, "nurion-error", k->reason, sizeof(k->reason));
}

/* A split that kills its process every time is dead-lettered after max_crashes crashes instead
 * of crash-looping; the job completes and every other split arrives. */
Test(exactly_once, a_split_that_kills_the_stage_is_dead_lettered, .timeout = 300)
{
    char tmpl[2048];
    struct nu_it_job j;
    snprintf(
        tmpl, sizeof(tmpl),
        "{\"job_id\":\"@ID@\",\"stages\":["
        "{\"id\":\"src\",\"operator\":\"generate\",\"config\":{\"rows\":10000,"
        "\"split_rows\":100},\"partitions\":2},"
        "{\"id\":\"boom\",\"operator\":\"crash_on\",\"plugin\":\"%s\",\"config\":{\"id\":4242},"
        " \"upstream\":[\"src\"],\"max_crashes\":2,\"partitions\":2},"
        "{\"id\":\"out\",\"operator\":\"file_sink\",\"config\":{\"path\":\"@OUT@\"},"
        " \"upstream\":[\"boom\"]}]}",
        NU_IT_PLUGIN_CRASH);
    nu_it_job_make(&j, "killer", tmpl);
    int rc = nu_it_run_wait(&j, nu_it_run_start(&j, NULL), 240000);
    cr_assert_eq(rc, 0, "nurion run exited %d (log %s)", rc, j.log);
    json_t *rows = nu_it_sink_rows(j.out);
    cr_assert_eq(json_array_size(rows), 9900, "every split but the killer's arrives (log %s)",
                 j.log);
    json_decref(rows);
    char topic[256];
    struct killer_dlq k = {0, ""};
    snprintf(topic, sizeof(topic), "nurion.%s.boom.dlq", j.id);
    nu_it_read_topic(topic, read_killer, &k);
    cr_assert_eq(k.records, 1, "the killer split is dead-lettered once");
    cr_assert(strstr(k.reason, "killed the stage process"), "reason: %s", k.reason);
}

/* The data records of one topic: split id -> value, and the parent and stage of each. */
struct split_rec {
    char id[128], parent[128], stage[64];
    size_t len;
    unsigned char *value;
};
struct split_recs {
    struct split_rec r[64];
    size_t n;
    size_t eos;
};

static void collect_splits(const rd_kafka_message_t *m, void *ctx)
{
    struct split_recs *s = ctx;
    char kind[16];
    if (strcmp(nu_it_header(m, "nurion-kind", kind, sizeof(kind)), "data") != 0) {
        s->eos++;
        return;
    }
    cr_assert_lt(s->n, 64);
    struct split_rec *r = &s->r[s->n++];
    nu_it_header(m, "nurion-split", r->id, sizeof(r->id));
    nu_it_header(m, "nurion-parents", r->parent, sizeof(r->parent));
    nu_it_header(m, "nurion-stage", r->stage, sizeof(r->stage));
    r->len = m->len;
    r->value = malloc(m->len ? m->len : 1);
    memcpy(r->value, m->payload, m->len);
}

/* map {} passes rows unchanged: its splits carry their input's value under their own split id
 * and headers, and the job still delivers every row exactly once. */
Test(exactly_once, identity_map_hands_splits_on_unchanged, .timeout = 180)
{
    static const char tmpl[] =
        "{\"job_id\":\"@ID@\",\"stages\":["
        "{\"id\":\"src\",\"operator\":\"generate\",\"config\":{\"rows\":20000,\"split_rows\":1000,"
        "\"payload_bytes\":24},\"partitions\":2},"
        "{\"id\":\"same\",\"operator\":\"map\",\"config\":{},\"upstream\":[\"src\"],"
        "\"partitions\":2},"
        "{\"id\":\"out\",\"operator\":\"file_sink\",\"config\":{\"path\":\"@OUT@\",\"format\":"
        "\"jsonl\"},\"upstream\":[\"same\"]}]}";
    struct nu_it_job j;
    nu_it_job_make(&j, "eo-same", tmpl);
    cr_assert_eq(nu_it_run_wait(&j, nu_it_run_start(&j, NULL), 120000), 0, "log %s", j.log);

    json_t *rows = nu_it_sink_rows(j.out);
    unsigned char *seen = calloc(20000, 1);
    size_t n = json_array_size(rows), dup = 0, bad = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_array_get(rows, i);
        json_int_t id = json_integer_value(json_object_get(r, "id"));
        const char *payload = json_string_value(json_object_get(r, "payload"));
        if (id < 0 || id >= 20000 || !payload || strlen(payload) != 24)
            bad++;
        else if (seen[id]++)
            dup++;
    }
    cr_assert_eq(bad, 0, "%zu rows are not generated rows", bad);
    cr_assert_eq(dup, 0, "%zu ids arrived more than once", dup);
    cr_assert_eq(n, 20000, "expected 20000 rows, found %zu (log %s)", n, j.log);
    free(seen);
    json_decref(rows);

    char topic[256];
    struct split_recs *in = calloc(1, sizeof(*in)), *out = calloc(1, sizeof(*out));
    snprintf(topic, sizeof(topic), "nurion.%s.src", j.id);
    nu_it_read_topic(topic, collect_splits, in);
    snprintf(topic, sizeof(topic), "nurion.%s.same", j.id);
    nu_it_read_topic(topic, collect_splits, out);
    cr_assert_eq(in->n, 20);
    cr_assert_eq(out->n, 20, "expected 20 splits of stage same, found %zu", out->n);
    cr_assert_gt(out->eos, 0, "stage same wrote no end-of-stream records");
    for (size_t i = 0; i < out->n; i++) {
        struct split_rec *o = &out->r[i], *p = NULL;
        cr_assert_str_eq(o->stage, "same");
        cr_assert_str_neq(o->id, o->parent);
        for (size_t k = 0; k < in->n && !p; k++)
            if (strcmp(in->r[k].id, o->parent) == 0)
                p = &in->r[k];
        cr_assert_not_null(p, "split %s names parent %s, not a split of src", o->id, o->parent);
        cr_assert_eq(o->len, p->len);
        cr_assert(memcmp(o->value, p->value, o->len) == 0, "split %s differs from its input",
                  o->id);
    }
    for (size_t i = 0; i < out->n; i++)
        free(out->r[i].value);
    for (size_t i = 0; i < in->n; i++)
        free(in->r[i].value);
    free(in);
    free(out);
}
