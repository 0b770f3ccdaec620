/*
 * test_connectors_kafka.c — kafka_source -> map -> kafka_sink through the real broker with
 * `nurion run`: a topic filled with JSON records is read in planned offset ranges, mapped, and
 * written to another topic inside the sink stage's transactions; the output topic holds every
 * expected record exactly once (read_committed), also when the sink stage is SIGKILLed while
 * the job runs. A corrupt input record is dead-lettered by the source.
 */
#include "pipeline.h"

#include "stage/connectors.h"
#include "stage/kafka.h"

#define NU_KC_ROWS 600

TestSuite(connectors_kafka, .init = nu_connectors_register);

/* Create `topic` with `parts` partitions and write `rows` JSON records (+ one corrupt one). */
static void nu_kc_fill(const char *topic, int parts, int rows)
{
    struct nu_errbuf eb;
    rd_kafka_t *admin = NULL, *p = NULL;
    struct nu_kafka_topic_spec spec = {.name = topic, .partitions = parts, .replication = -1};
    nu_errbuf_clear(&eb);
    cr_assert_eq(
        nu_kafka_client_new(NU_KAFKA_ADMIN, nu_it_brokers(), NULL, NULL, NULL, 0, &admin, &eb),
        NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(nu_kafka_topics_create(admin, &spec, 1, NU_IT_TIMEOUT_MS, &eb), NU_OK, "%s",
                 nu_err_msg(&eb));
    rd_kafka_destroy(admin);
    cr_assert_eq(
        nu_kafka_client_new(NU_KAFKA_PRODUCER, nu_it_brokers(), NULL, NULL, NULL, 0, &p, &eb),
        NU_OK, "%s", nu_err_msg(&eb));
    for (int i = 0; i <= rows; i++) {
        char val[128], key[32];
        if (i < rows)
            snprintf(val, sizeof(val), "{\"id\":%d,\"name\":\"n%d\"}", i, i);
        else
            snprintf(val, sizeof(val), "{\"id\":\"corrupt\"");
        snprintf(key, sizeof(key), "k%d", i);
        cr_assert_eq(rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
                                       RD_KAFKA_V_VALUE(val, strlen(val)),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                       RD_KAFKA_V_HEADER("origin", "test", 4), RD_KAFKA_V_END),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    cr_assert_eq(rd_kafka_flush(p, NU_IT_TIMEOUT_MS), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(p);
}

struct nu_kc_seen {
    unsigned char count[NU_KC_ROWS];
    long bad;
};

static void nu_kc_record(const rd_kafka_message_t *m, void *ctx)
{
    struct nu_kc_seen *s = ctx;
    json_error_t jerr;
    json_t *o = json_loadb(m->payload, m->len, 0, &jerr);
    if (!o) {
        s->bad++;
        return;
    }
    json_int_t id = json_integer_value(json_object_get(o, "id"));
    json_int_t y = json_integer_value(json_object_get(o, "y"));
    char key[32], srckey[32];
    const char *got = json_string_value(json_object_get(o, "key"));
    snprintf(key, sizeof(key), "n%lld", (long long)id);
    snprintf(srckey, sizeof(srckey), "k%lld", (long long)id);
    /* the sink's key is the name column; y was computed by the map; the source's metadata
     * columns (the input key, the offset) came along */
    if (id < 0 || id >= NU_KC_ROWS || y != 2 * id || m->key_len != strlen(key) ||
        memcmp(m->key, key, m->key_len) != 0 || !got || strcmp(got, srckey) != 0 ||
        !json_is_integer(json_object_get(o, "offset")))
        s->bad++;
    else
        s->count[id]++;
    json_decref(o);
}

static const char *nu_kc_tmpl =
    "{\"job_id\":\"@ID@\",\"format\":\"avro\",\"stages\":["
    "{\"id\":\"src\",\"operator\":\"kafka_source\",\"partitions\":2,\"config\":{"
    "\"topic\":\"@ID@-in\",\"format\":\"json\",\"split_records\":50,"
    "\"schema\":[[\"id\",\"int64\"],[\"name\",\"string\"]]}},"
    "{\"id\":\"dbl\",\"operator\":\"map\",\"config\":{\"columns\":{\"y\":\"id * 2\"}},"
    "\"upstream\":[\"src\"]},"
    "{\"id\":\"out\",\"operator\":\"kafka_sink\",\"config\":{\"topic\":\"@ID@-out\","
    "\"key\":\"name\",\"format\":\"json\",\"partitions\":3},\"upstream\":[\"dbl\"]}]}";

static void nu_kc_run(int kills)
{
    struct nu_it_job j;
    char in[256], outt[256], dlq[256];
    struct nu_kc_seen seen;

    memset(&seen, 0, sizeof(seen));
    nu_it_job_make(&j, kills ? "kc-kill" : "kc", nu_kc_tmpl);
    snprintf(in, sizeof(in), "%s-in", j.id);
    snprintf(outt, sizeof(outt), "%s-out", j.id);
    snprintf(dlq, sizeof(dlq), "nurion.%s.src.dlq", j.id);
    nu_kc_fill(in, 3, NU_KC_ROWS);
    pid_t pid = nu_it_run_start(&j, NULL);
    if (kills)
        cr_log_info("kills landed: %d", nu_it_kill_loop(pid, "out", kills, 7));
    int rc = nu_it_run_wait(&j, pid, 120000);
    cr_assert_eq(rc, 0, "nurion run exited %d (log %s)", rc, j.log);
    long n = nu_it_read_topic(outt, nu_kc_record, &seen);
    cr_assert_eq(seen.bad, 0, "%ld unexpected records in %s", seen.bad, outt);
    for (int i = 0; i < NU_KC_ROWS; i++)
        cr_assert_eq(seen.count[i], 1, "id %d written %d times", i, seen.count[i]);
    cr_assert_eq(n, NU_KC_ROWS);
    /* the corrupt record went to the source's dead letters, with its raw value */
    cr_assert_eq(nu_it_read_topic(dlq, NULL, NULL), 1);
}

Test(connectors_kafka, source_map_sink_exactly_once, .timeout = 150)
{
    nu_kc_run(0);
}

Test(connectors_kafka, source_map_sink_exactly_once_with_sink_kills, .timeout = 150)
{
    nu_kc_run(3);
}
