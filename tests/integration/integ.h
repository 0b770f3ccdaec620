/*
 * integ.h — helpers for the integration tests, which run against the real Kafka broker and
 * PostgreSQL started by `scripts/services up` (never against stand-ins).
 *
 * Header-only (static inline): only tests/integration/test_*.c files are compiled. The helpers
 * fail the running Criterion test on any error, so a test reads as a straight line.
 *
 * Ownership: strings returned by nu_it_brokers() / nu_it_database_url() belong to the
 * environment and live for the process; nu_it_unique_name() writes into the caller's buffer.
 * Thread-safety: call from the test's own thread (nu_it_unique_name keeps a static counter).
 */
#ifndef NU_TESTS_INTEG_H
#define NU_TESTS_INTEG_H

#include <criterion/criterion.h>
#include <librdkafka/rdkafka.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Upper bound of any single wait on the broker (admin calls, metadata, transactions). */
#define NU_IT_TIMEOUT_MS 30000

/* Milliseconds on a monotonic clock, for deadlines. */
static inline int64_t nu_it_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline const char *nu_it_env_(const char *name)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0')
        cr_assert_fail("%s is not set: run scripts/services up and source .cache/services.env "
                       "(scripts/test does both)",
                       name);
    return v;
}

/* The broker list (NURION_BROKERS); fails the test when unset. */
static inline const char *nu_it_brokers(void)
{
    return nu_it_env_("NURION_BROKERS");
}

/* The libpq connection URL (NURION_DATABASE_URL); fails the test when unset. */
static inline const char *nu_it_database_url(void)
{
    return nu_it_env_("NURION_DATABASE_URL");
}

/*
 * Writes "<prefix>.<pid>.<unix ms>.<n>" into buf (a valid topic, group or transactional id
 * when prefix is) and returns buf, so reruns and concurrent runs never share a name.
 */
static inline const char *nu_it_unique_name(const char *prefix, char *buf, size_t size)
{
    static unsigned counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int n = snprintf(buf, size, "%s.%ld.%lld.%u", prefix, (long)getpid(),
                     (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, counter++);
    if (n < 0 || (size_t)n >= size)
        cr_assert_fail("name buffer of %zu bytes too small for prefix \"%s\"", size, prefix);
    return buf;
}

/* Sets a librdkafka property or fails the test. */
static inline void nu_it_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
    char errstr[512];
    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
        cr_assert_fail("could not set librdkafka property \"%s\" to \"%s\": %s", name, value,
                       errstr);
}

/*
 * Waits until the metadata of `rk` shows `topic` with `partitions` partitions, each with a
 * leader; fails the test after NU_IT_TIMEOUT_MS.
 */
static inline void nu_it_wait_topic(rd_kafka_t *rk, const char *topic, int partitions)
{
    int64_t deadline = nu_it_now_ms() + NU_IT_TIMEOUT_MS;
    char last[256] = "no metadata yet";
    for (;;) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 5000);
        bool ok = false;
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(last, sizeof last, "metadata request failed: %s", rd_kafka_err2str(err));
        } else if (md->topic_cnt != 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(last, sizeof last, "topic not visible yet: %s",
                     md->topic_cnt == 1 ? rd_kafka_err2str(md->topics[0].err) : "absent");
        } else if (md->topics[0].partition_cnt != partitions) {
            snprintf(last, sizeof last, "topic has %d partitions, want %d",
                     md->topics[0].partition_cnt, partitions);
        } else {
            ok = true;
            for (int i = 0; i < partitions; i++)
                if (md->topics[0].partitions[i].leader < 0)
                    ok = false;
            if (!ok)
                snprintf(last, sizeof last, "a partition has no leader yet");
        }
        if (md != NULL)
            rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
        if (ok)
            return;
        if (nu_it_now_ms() >= deadline)
            cr_assert_fail("topic \"%s\" not ready within %d ms: %s", topic, NU_IT_TIMEOUT_MS,
                           last);
        nanosleep(&(struct timespec){.tv_sec = 0, .tv_nsec = 100 * 1000 * 1000}, NULL);
    }
}

/*
 * Creates `topic` with `partitions` partitions and replication factor 1 through the Admin API
 * (rd_kafka_CreateTopics) on `rk` (any client handle, borrowed), waits for the broker's answer
 * and for the topic to show in metadata. Fails the test on any error, "already exists"
 * included.
 */
static inline void nu_it_create_topic(rd_kafka_t *rk, const char *topic, int partitions)
{
    char errstr[512];
    char failure[768] = "";
    rd_kafka_queue_t *q = NULL;
    rd_kafka_AdminOptions_t *opts = NULL;
    rd_kafka_event_t *ev = NULL;

    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, partitions, 1, errstr, sizeof errstr);
    if (nt == NULL) {
        snprintf(failure, sizeof failure, "invalid new topic \"%s\": %s", topic, errstr);
        goto out;
    }
    q = rd_kafka_queue_new(rk);
    opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    if (rd_kafka_AdminOptions_set_operation_timeout(opts, NU_IT_TIMEOUT_MS, errstr,
                                                    sizeof errstr) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_AdminOptions_set_request_timeout(opts, NU_IT_TIMEOUT_MS, errstr, sizeof errstr) !=
            RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(failure, sizeof failure, "could not set admin timeouts: %s", errstr);
        goto out;
    }
    rd_kafka_CreateTopics(rk, &nt, 1, opts, q);
    ev = rd_kafka_queue_poll(q, NU_IT_TIMEOUT_MS + 5000);
    if (ev == NULL) {
        snprintf(failure, sizeof failure, "no answer to CreateTopics for \"%s\"", topic);
        goto out;
    }
    if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(failure, sizeof failure, "could not create topic \"%s\": %s", topic,
                 rd_kafka_event_error_string(ev));
        goto out;
    }
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    size_t n = 0;
    const rd_kafka_topic_result_t **tr =
        res != NULL ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;
    if (n != 1) {
        snprintf(failure, sizeof failure, "CreateTopics for \"%s\" returned %zu results", topic, n);
        goto out;
    }
    if (rd_kafka_topic_result_error(tr[0]) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char *msg = rd_kafka_topic_result_error_string(tr[0]);
        snprintf(failure, sizeof failure, "could not create topic \"%s\": %s", topic,
                 msg != NULL ? msg : rd_kafka_err2str(rd_kafka_topic_result_error(tr[0])));
        goto out;
    }

out:
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    if (opts != NULL)
        rd_kafka_AdminOptions_destroy(opts);
    if (q != NULL)
        rd_kafka_queue_destroy(q);
    if (nt != NULL)
        rd_kafka_NewTopic_destroy(nt);
    if (failure[0] != '\0')
        cr_assert_fail("%s", failure);
    nu_it_wait_topic(rk, topic, partitions);
}

/*
 * Deletes `topic` through the Admin API (rd_kafka_DeleteTopics) on `rk` (borrowed) and waits for
 * the broker's answer, so test runs do not pile up topics in the development broker. Fails the
 * test on any error.
 */
static inline void nu_it_delete_topic(rd_kafka_t *rk, const char *topic)
{
    char errstr[512];
    char failure[768] = "";
    rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new(topic);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DELETETOPICS);
    rd_kafka_event_t *ev = NULL;

    if (rd_kafka_AdminOptions_set_operation_timeout(opts, NU_IT_TIMEOUT_MS, errstr,
                                                    sizeof errstr) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(failure, sizeof failure, "could not set admin timeout: %s", errstr);
        goto out;
    }
    rd_kafka_DeleteTopics(rk, &dt, 1, opts, q);
    ev = rd_kafka_queue_poll(q, NU_IT_TIMEOUT_MS + 5000);
    if (ev == NULL) {
        snprintf(failure, sizeof failure, "no answer to DeleteTopics for \"%s\"", topic);
        goto out;
    }
    if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(failure, sizeof failure, "could not delete topic \"%s\": %s", topic,
                 rd_kafka_event_error_string(ev));
        goto out;
    }
    const rd_kafka_DeleteTopics_result_t *res = rd_kafka_event_DeleteTopics_result(ev);
    size_t n = 0;
    const rd_kafka_topic_result_t **tr =
        res != NULL ? rd_kafka_DeleteTopics_result_topics(res, &n) : NULL;
    if (n != 1 || rd_kafka_topic_result_error(tr[0]) != RD_KAFKA_RESP_ERR_NO_ERROR)
        snprintf(failure, sizeof failure, "could not delete topic \"%s\": %s", topic,
                 n != 1 ? "no result" : rd_kafka_err2str(rd_kafka_topic_result_error(tr[0])));

out:
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    rd_kafka_DeleteTopic_destroy(dt);
    if (failure[0] != '\0')
        cr_assert_fail("%s", failure);
}

#endif
