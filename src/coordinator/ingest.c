/* ingest.c — the events consumer: explicit assignment from the store, batches, retries. */
#include "coordinator/ingest_int.h"

#include "common/job.h"
#include "common/log.h"
#include "common/mem.h"
#include "coordinator/store.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NU_INGEST_GROUP       "nurion.coordinator.ingest" /* never joined nor committed to */
#define NU_INGEST_META_MS     5000                        /* metadata request timeout */
#define NU_INGEST_MAX_JOBS    10000                       /* jobs followed at once */
#define NU_INGEST_BACKOFF0_MS 100
#define NU_INGEST_CLOSE_MS    2000 /* closing the consumer, then destroying it: each at most */

static int64_t nu_ingest_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nu_ingest_sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void nu_ingest_drop_batch(struct nu_ingest *ing)
{
    for (size_t i = 0; i < ing->nmsgs; i++)
        rd_kafka_message_destroy(ing->msgs[i]);
    ing->nmsgs = 0;
}

nu_err_t nu_ingest_new(const struct nu_ingest_conf *conf, nu_ingest_t **out, struct nu_errbuf *eb)
{
    struct nu_ingest *ing = NULL;
    nu_err_t err = NU_OK;
    *out = NULL;
    if (conf == NULL || conf->brokers == NULL || conf->db_url == NULL) {
        err = nu_err_set(eb, NU_ERR_INVALID, "the ingester needs brokers and a database URL");
        goto out;
    }
    if (conf->batch_max < 0 || conf->batch_max > NU_INGEST_MAX_BATCH || conf->batch_ms < 0 ||
        conf->refresh_ms < 0 || conf->retry_ms < 0) {
        err = nu_err_set(eb, NU_ERR_CONFIG,
                         "ingest batch size must be between 1 and %d and "
                         "times must not be negative",
                         NU_INGEST_MAX_BATCH);
        goto out;
    }
    ing = nu_xcalloc(1, sizeof(*ing));
    ing->conf = *conf;
    ing->brokers = nu_xstrdup(conf->brokers);
    ing->db_url = nu_xstrdup(conf->db_url);
    ing->jobs_like = conf->jobs_like != NULL ? nu_xstrdup(conf->jobs_like) : NULL;
    ing->conf.jobs_like = ing->jobs_like;
    ing->conf.brokers = ing->brokers;
    ing->conf.db_url = ing->db_url;
    if (ing->conf.batch_max == 0)
        ing->conf.batch_max = NU_INGEST_DEFAULT_BATCH;
    if (ing->conf.batch_ms == 0)
        ing->conf.batch_ms = NU_INGEST_DEFAULT_BATCH_MS;
    if (ing->conf.refresh_ms == 0)
        ing->conf.refresh_ms = NU_INGEST_DEFAULT_REFRESH_MS;
    if (ing->conf.retry_ms == 0)
        ing->conf.retry_ms = NU_INGEST_DEFAULT_RETRY_MS;
    ing->conf.props = NULL; /* borrowed for this call only */
    ing->conf.nprops = 0;
    ing->msgs = nu_xcalloc((size_t)ing->conf.batch_max, sizeof(*ing->msgs));
    ing->backoff_ms = NU_INGEST_BACKOFF0_MS;
    err = nu_kafka_client_new(NU_KAFKA_CONSUMER, conf->brokers, NU_INGEST_GROUP, NULL, conf->props,
                              conf->nprops, &ing->rk, eb);
    if (err)
        goto out;
    rd_kafka_poll_set_consumer(ing->rk);
    *out = ing;
    ing = NULL;
out:
    nu_ingest_destroy(ing);
    return err;
}

/* A consumer handle being destroyed on a thread of its own, so its owner can give up waiting.
 * Shared by the two threads; the last one to let go frees it. */
struct nu_ingest_reaper {
    rd_kafka_t *rk;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int refs;
};

static void nu_ingest_reaper_release(struct nu_ingest_reaper *r)
{
    pthread_mutex_lock(&r->mu);
    bool last = --r->refs == 0;
    pthread_mutex_unlock(&r->mu);
    if (last) {
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->cv);
        free(r);
    }
}

static void *nu_ingest_reaper_main(void *arg)
{
    struct nu_ingest_reaper *r = arg;
    rd_kafka_destroy_flags(r->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    pthread_mutex_lock(&r->mu);
    r->done = true;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    nu_ingest_reaper_release(r);
    return NULL;
}

/*
 * Close the consumer and destroy it, each step bounded by NU_INGEST_CLOSE_MS. Neither call of
 * librdkafka has a timeout: rd_kafka_destroy waits for the consumer-group handler to terminate
 * and then joins every broker thread, and a broker thread only ends once nothing references it.
 * librdkafka 2.0.x can leave such a reference behind (a partition that is never released) when
 * partitions are re-assigned and their topic is deleted under the consumer, which is what
 * happens to the ingester when jobs end and their topics are removed; the destroy then never
 * returns (tests/integration/test_ingest_close.c reproduces it). So the close goes through
 * rd_kafka_consumer_close_queue, polled until closed or the bound, and the destroy runs on a
 * thread of its own: when it outlives its bound, the handle is left to the exit of the process
 * instead of hanging it.
 */
static void nu_ingest_close(rd_kafka_t *rk)
{
    int64_t deadline = nu_ingest_now_ms() + NU_INGEST_CLOSE_MS;
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_error_t *error = rd_kafka_consumer_close_queue(rk, q);
    if (error != NULL) {
        NU_LOG_DEBUG_AREA("kafka", "ingest", "could not close the events consumer: %s",
                          rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else {
        while (!rd_kafka_consumer_closed(rk) && nu_ingest_now_ms() < deadline) {
            rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 50);
            if (ev != NULL)
                rd_kafka_event_destroy(ev);
        }
    }
    rd_kafka_queue_destroy(q);
    bool closed = rd_kafka_consumer_closed(rk) != 0;

    struct nu_ingest_reaper *r = nu_xcalloc(1, sizeof(*r));
    pthread_t thr;
    r->rk = rk;
    r->refs = 2;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if (pthread_create(&thr, NULL, nu_ingest_reaper_main, r) != 0) {
        r->refs = 1; /* no thread: destroy here, unbounded, as a last resort */
        rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
        nu_ingest_reaper_release(r);
        return;
    }
    pthread_detach(thr);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += NU_INGEST_CLOSE_MS / 1000;
    until.tv_nsec += (long)(NU_INGEST_CLOSE_MS % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&r->mu);
    int rc = 0;
    while (!r->done && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&r->cv, &r->mu, &until);
    bool done = r->done;
    pthread_mutex_unlock(&r->mu);
    if (!done)
        nu_log(NU_LOG_WARN, "ingest",
               "the events consumer was not destroyed within %d ms (group handler closed: %s); "
               "leaving it to the process exit",
               NU_INGEST_CLOSE_MS, closed ? "yes" : "no");
    nu_ingest_reaper_release(r);
}

void nu_ingest_destroy(nu_ingest_t *ing)
{
    if (ing == NULL)
        return;
    nu_ingest_drop_batch(ing); /* messages hold references on the handle */
    if (ing->rk != NULL)
        nu_ingest_close(ing->rk);
    if (ing->assigned != NULL)
        rd_kafka_topic_partition_list_destroy(ing->assigned);
    nu_db_close(ing->db);
    free(ing->msgs);
    free(ing->brokers);
    free(ing->db_url);
    free(ing->jobs_like);
    free(ing);
}

void nu_ingest_stats(const nu_ingest_t *ing, struct nu_ingest_stats *out)
{
    out->events = atomic_load(&ing->events);
    out->batches = atomic_load(&ing->batches);
    out->skipped_invalid = atomic_load(&ing->skipped_invalid);
    out->skipped_unknown = atomic_load(&ing->skipped_unknown);
    out->db_errors = atomic_load(&ing->db_errors);
    out->partitions = atomic_load(&ing->partitions);
}

/* Stop fetching and forget positions: after a database failure, the store's offsets are the
 * only truth, so everything is re-read from them once it is back. */
static void nu_ingest_unassign(struct nu_ingest *ing)
{
    rd_kafka_assign(ing->rk, NULL);
    if (ing->assigned != NULL)
        rd_kafka_topic_partition_list_destroy(ing->assigned);
    ing->assigned = NULL;
    atomic_store(&ing->partitions, 0);
}

static nu_err_t nu_ingest_db_failed(struct nu_ingest *ing, nu_err_t err)
{
    atomic_fetch_add(&ing->db_errors, 1);
    nu_ingest_drop_batch(ing);
    nu_ingest_unassign(ing);
    ing->db_ready = false;
    ing->retry_at = nu_ingest_now_ms() + ing->backoff_ms;
    ing->backoff_ms =
        ing->backoff_ms * 2 > ing->conf.retry_ms ? ing->conf.retry_ms : ing->backoff_ms * 2;
    return err;
}

/* Same partitions (ignoring offsets and order)? */
static bool nu_ingest_same(const rd_kafka_topic_partition_list_t *a,
                           const rd_kafka_topic_partition_list_t *b)
{
    if (a == NULL || b == NULL || a->cnt != b->cnt)
        return false;
    for (int i = 0; i < a->cnt; i++)
        if (rd_kafka_topic_partition_list_find(b, a->elems[i].topic, a->elems[i].partition) == NULL)
            return false;
    return true;
}

/*
 * The events topics of the jobs being followed, from the store and the broker's metadata;
 * when they differ from the assignment (or nothing is positioned yet), assign them at the
 * offsets the store holds (the beginning for partitions it has never seen).
 */
static nu_err_t nu_ingest_refresh(struct nu_ingest *ing, struct nu_errbuf *eb)
{
    nu_db_res_t *jobs = NULL, *offs = NULL;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_partition_list_t *want = rd_kafka_topic_partition_list_new(16);
    json_t *topics = json_array();
    char *topics_text = NULL, limit[16];
    snprintf(limit, sizeof(limit), "%d", NU_INGEST_MAX_JOBS);
    char recent[16];
    snprintf(recent, sizeof(recent), "%d", NU_INGEST_RECENT_S);
    const char *const p1[] = {limit, recent, ing->jobs_like};
    nu_err_t err = nu_db_query(ing->db,
                               "SELECT id FROM jobs WHERE ($3::text IS NULL OR id LIKE $3)"
                               " AND (state IN ('submitted', 'running') OR finished_at >"
                               " clock_timestamp() - $2::int * interval '1 second')"
                               " ORDER BY created_at DESC LIMIT $1::int",
                               3, p1, &jobs, eb);
    if (err)
        goto out;
    rd_kafka_resp_err_t kerr = rd_kafka_metadata(ing->rk, 1, NULL, &md, NU_INGEST_META_MS);
    if (kerr) {
        err = nu_err_set(eb, nu_kafka_err_code(kerr) ? nu_kafka_err_code(kerr) : NU_ERR_KAFKA,
                         "could not read topic metadata: %s", rd_kafka_err2str(kerr));
        goto out;
    }
    for (int r = 0; r < nu_db_res_rows(jobs); r++) {
        char topic[NU_JOB_NAME_MAX];
        nu_job_topic_events_for(nu_db_res_get(jobs, r, 0), topic, sizeof(topic));
        for (int t = 0; t < md->topic_cnt; t++) {
            if (md->topics[t].err || strcmp(md->topics[t].topic, topic) != 0)
                continue;
            for (int p = 0; p < md->topics[t].partition_cnt; p++)
                rd_kafka_topic_partition_list_add(want, topic, md->topics[t].partitions[p].id)
                    ->offset = RD_KAFKA_OFFSET_BEGINNING;
            json_array_append_new(topics, json_string(topic));
        }
    }
    if (ing->db_ready &&
        (nu_ingest_same(want, ing->assigned) || (want->cnt == 0 && ing->assigned == NULL)))
        goto out;
    topics_text = json_dumps(topics, JSON_COMPACT);
    const char *const p2[] = {topics_text};
    err = nu_db_query(ing->db,
                      "SELECT topic, \"partition\", next_offset FROM ingest_offsets"
                      " WHERE topic IN (SELECT jsonb_array_elements_text($1::jsonb))",
                      1, p2, &offs, eb);
    if (err)
        goto out;
    for (int r = 0; r < nu_db_res_rows(offs); r++) {
        rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_find(
            want, nu_db_res_get(offs, r, 0), (int32_t)nu_db_res_int(offs, r, 1));
        if (tp != NULL)
            tp->offset = nu_db_res_int(offs, r, 2);
    }
    kerr = rd_kafka_assign(ing->rk, want->cnt > 0 ? want : NULL);
    if (kerr) {
        err = nu_err_set(eb, NU_ERR_KAFKA, "could not assign the events partitions: %s",
                         rd_kafka_err2str(kerr));
        goto out;
    }
    NU_LOG_DEBUG_AREA("kafka", "ingest", "assigned %d events partitions", want->cnt);
    if (ing->assigned != NULL)
        rd_kafka_topic_partition_list_destroy(ing->assigned);
    ing->assigned = want;
    want = NULL;
    atomic_store(&ing->partitions, (uint64_t)ing->assigned->cnt);
out:
    if (want != NULL)
        rd_kafka_topic_partition_list_destroy(want);
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    json_decref(topics);
    free(topics_text);
    nu_db_res_free(jobs);
    nu_db_res_free(offs);
    return err;
}

/* Wait for the database to come back (within the back-off); NU_OK once it is usable. */
static nu_err_t nu_ingest_reconnect(struct nu_ingest *ing, int timeout_ms, struct nu_errbuf *eb)
{
    int64_t wait = ing->retry_at - nu_ingest_now_ms();
    if (wait > 0) {
        nu_ingest_sleep_ms(wait < timeout_ms ? wait : timeout_ms);
        if (ing->retry_at > nu_ingest_now_ms())
            return nu_err_set(eb, NU_ERR_DB, "the database is unavailable, retrying");
    }
    nu_err_t err;
    if (ing->db == NULL)
        err = nu_store_connect(ing->db_url, &ing->db, eb);
    else
        err = nu_db_reset(ing->db, eb);
    if (err)
        return nu_ingest_db_failed(ing, NU_ERR_DB);
    return NU_OK;
}

nu_err_t nu_ingest_step(nu_ingest_t *ing, int timeout_ms, struct nu_errbuf *eb)
{
    nu_err_t err = NU_OK;
    int64_t now = nu_ingest_now_ms();
    if (!ing->db_ready || !nu_db_ok(ing->db)) {
        if (ing->db_ready) /* the connection dropped while idle */
            nu_ingest_db_failed(ing, NU_ERR_DB);
        err = nu_ingest_reconnect(ing, timeout_ms, eb);
        if (err)
            return err;
        ing->refresh_at = 0;
    }
    if (!ing->db_ready || now >= ing->refresh_at) {
        err = nu_ingest_refresh(ing, eb);
        if (err == NU_ERR_DB || err == NU_ERR_DB_FATAL)
            return nu_ingest_db_failed(ing, err);
        if (err)
            return err;
        ing->db_ready = true;
        ing->backoff_ms = NU_INGEST_BACKOFF0_MS;
        ing->refresh_at = now + ing->conf.refresh_ms;
    }
    if (ing->assigned == NULL) {
        nu_ingest_sleep_ms(timeout_ms < ing->conf.refresh_ms ? timeout_ms : ing->conf.refresh_ms);
        return NU_OK;
    }
    /* gather: wait up to timeout_ms for the first event, then up to batch_ms for the rest */
    int64_t deadline = nu_ingest_now_ms() + timeout_ms;
    while (ing->nmsgs < (size_t)ing->conf.batch_max) {
        int64_t left = deadline - nu_ingest_now_ms();
        rd_kafka_message_t *m = rd_kafka_consumer_poll(ing->rk, left > 0 ? (int)left : 0);
        if (m == NULL) {
            if (left <= 0)
                break;
            continue;
        }
        if (m->err) {
            NU_LOG_DEBUG_AREA("kafka", "ingest", "consumer: %s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        if (ing->nmsgs == 0 && ing->conf.batch_ms < timeout_ms)
            deadline = nu_ingest_now_ms() + ing->conf.batch_ms;
        ing->msgs[ing->nmsgs++] = m;
    }
    if (ing->nmsgs == 0)
        return NU_OK;
    err = nu_ingest_write(ing, eb);
    if (err)
        return nu_ingest_db_failed(ing, err == NU_ERR_DB_FATAL ? err : NU_ERR_DB);
    nu_ingest_drop_batch(ing);
    return NU_OK;
}
