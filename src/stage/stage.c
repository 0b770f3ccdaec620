/* stage.c — setup, main loop and shutdown of a stage instance. */
#include "stage/stage.h"

#include "common/log.h"
#include "common/mem.h"
#include "operators/registry.h"
#include "stage/stage_int.h"

#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define NU_STAGE_INIT_TIMEOUT_MS  60000
#define NU_STAGE_CLOSE_TIMEOUT_MS 30000
#define NU_STAGE_POLL_MS          50
#define NU_STAGE_MAX_HEADERS      64 /* headers of an input record kept (dead letters copy them) */

void nu_stage_opts_init(struct nu_stage_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->commit_interval_ms = 100;
    o->max_splits_per_txn = 1000;
    o->max_inflight_bytes = 128 << 20;
    o->max_record_bytes = 1 << 20;
    o->completion_check_ms = 250;
    o->metrics_interval_ms = 5000;
}

/* Delivery failures of outputs (librdkafka thread → recorded, acted on by the main loop). */
static void nu_stage_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct nu_stage *st = opaque;
    (void)rk;
    if (m->err && !st->fatal)
        st->fatal = nu_err_set(&st->fatal_eb,
                               nu_kafka_err_code(m->err) ? nu_kafka_err_code(m->err) : NU_ERR_KAFKA,
                               "could not deliver a record to topic \"%s\": %s",
                               rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
}

static nu_err_t nu_stage_clients(struct nu_stage *st, struct nu_errbuf *eb)
{
    char group[NU_JOB_NAME_MAX], txn[NU_JOB_NAME_MAX], kb[32];
    rd_kafka_conf_t *conf = NULL;
    char errstr[512];
    nu_err_t err;
    const struct nu_stage_opts *o = st->o;
    nu_job_group(st->job, st->idx, group, sizeof(group));
    nu_job_txn_id(st->job, st->idx, o->instance, txn, sizeof(txn));

    /* consumer: read_committed, manual commits, bounded prefetch. Half the in-flight bound (64
     * MiB by default, librdkafka's own default): librdkafka 2.0 backs a partition's fetches off
     * for a fixed second whenever the prefetch queue reaches its bound, and a bound that a fast
     * stage drains in less than that starves it. */
    err = nu_kafka_conf_new(NU_KAFKA_CONSUMER, o->brokers, group, NULL, o->props, o->nprops, &conf,
                            eb);
    if (err)
        return err;
    snprintf(kb, sizeof(kb), "%" PRId64, o->max_inflight_bytes / 1024 / 2);
    rd_kafka_conf_set(conf, "queued.max.messages.kbytes", kb, NULL, 0);
    /* static membership (KIP-345): a restarted instance takes its partitions back at once
     * instead of waiting for the group to time the dead member out; a second process with the
     * same instance index is fenced, like its transactional producer */
    if (rd_kafka_conf_set(conf, "group.instance.id", txn, errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        return nu_err_set(eb, NU_ERR_CONFIG, "could not set group.instance.id: %s", errstr);
    }
    rd_kafka_conf_set_rebalance_cb(conf, nu_stage_rebalance_cb);
    rd_kafka_conf_set_opaque(conf, st);
    st->c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!st->c) {
        rd_kafka_conf_destroy(conf);
        return nu_err_set(eb, NU_ERR_CONFIG, "could not create the consumer: %s", errstr);
    }
    rd_kafka_poll_set_consumer(st->c);

    /* producer of outputs */
    conf = NULL;
    err = nu_kafka_conf_new(st->eos_mode ? NU_KAFKA_TXN_PRODUCER : NU_KAFKA_PRODUCER, o->brokers,
                            NULL, txn, o->props, o->nprops, &conf, eb);
    if (err)
        return err;
    snprintf(kb, sizeof(kb), "%" PRId64, o->max_inflight_bytes / 1024 / 2);
    rd_kafka_conf_set(conf, "queue.buffering.max.kbytes", kb, NULL, 0);
    rd_kafka_conf_set_dr_msg_cb(conf, nu_stage_dr_cb);
    rd_kafka_conf_set_opaque(conf, st);
    st->p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!st->p) {
        rd_kafka_conf_destroy(conf);
        return nu_err_set(eb, NU_ERR_CONFIG, "could not create the producer: %s", errstr);
    }
    if (st->eos_mode) {
        err = nu_kafka_err_take(rd_kafka_init_transactions(st->p, NU_STAGE_INIT_TIMEOUT_MS),
                                "initialise transactions", eb);
        if (err)
            return err;
        /* events outside transactions need a producer of their own */
        err = nu_kafka_client_new(NU_KAFKA_PRODUCER, o->brokers, NULL, NULL, o->props, o->nprops,
                                  &st->aux, eb);
        if (err)
            return err;
    } else {
        st->aux = st->p;
    }
    return NU_OK;
}

static nu_err_t nu_stage_subscribe(struct nu_stage *st, struct nu_errbuf *eb)
{
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new((int)st->ninputs);
    for (size_t i = 0; i < st->ninputs; i++)
        rd_kafka_topic_partition_list_add(sub, st->inputs[i].topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t rerr = rd_kafka_subscribe(st->c, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (rerr)
        return nu_err_set(eb, nu_kafka_err_code(rerr), "could not subscribe to the inputs: %s",
                          rd_kafka_err2str(rerr));
    return NU_OK;
}

static int64_t nu_stage_rss_bytes(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = 0;
    fclose(f);
    return (int64_t)rss * sysconf(_SC_PAGESIZE);
}

static void nu_stage_metrics(struct nu_stage *st, int64_t now)
{
    struct rusage ru;
    struct nu_errbuf eb;
    double secs = (double)(now - st->last_metrics_ms) / 1000.0;
    json_t *ev = nu_event_new(&st->origin, "metrics"), *lag = json_object();
    int64_t total_lag = 0;
    nu_errbuf_clear(&eb);
    getrusage(RUSAGE_SELF, &ru);
    for (size_t i = 0; i < st->nparts; i++) {
        struct nu_part *pt = &st->parts[i];
        int64_t lo = 0, hi = 0;
        if (!pt->assigned)
            continue;
        if (rd_kafka_get_watermark_offsets(st->c, st->inputs[pt->input].topic, pt->partition, &lo,
                                           &hi) != RD_KAFKA_RESP_ERR_NO_ERROR)
            continue;
        int64_t pos = pt->next_offset >= 0 ? pt->next_offset : lo;
        int64_t l = hi > pos ? hi - pos : 0;
        char key[NU_JOB_NAME_MAX + 16];
        nu_lane_name(st->inputs[pt->input].topic, pt->partition, key, sizeof(key));
        json_object_set_new(lag, key, json_integer(l));
        total_lag += l;
    }
    json_object_set_new(ev, "rows_in", json_integer(st->stats->rows_in));
    json_object_set_new(ev, "rows_out", json_integer(st->stats->rows_out));
    json_object_set_new(ev, "splits", json_integer(st->stats->splits_in));
    json_object_set_new(ev, "dead_letters", json_integer(st->stats->dead_letters));
    json_object_set_new(
        ev, "rows_per_s",
        json_real(secs > 0 ? (double)(st->stats->rows_in - st->metrics_rows_in) / secs : 0));
    json_object_set_new(ev, "rss_bytes", json_integer(nu_stage_rss_bytes()));
    json_object_set_new(ev, "cpu_ms",
                        json_integer((int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
                                     (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000));
    json_object_set_new(ev, "lag", lag);
    json_object_set_new(ev, "total_lag", json_integer(total_lag));
    st->metrics_rows_in = st->stats->rows_in;
    st->last_metrics_ms = now;
    if (nu_stage_event(st, true, ev, &eb))
        nu_log(NU_LOG_WARN, "stage", "could not write metrics: %s", nu_err_msg(&eb));
}

/* Pause consumption while the producer's queue is over its bound; resume below half of it. */
static void nu_stage_backpressure(struct nu_stage *st)
{
    int queued = rd_kafka_outq_len(st->p);
    rd_kafka_topic_partition_list_t *asg = NULL;
    bool want_pause = queued > 100000;
    if (want_pause == st->paused || (!want_pause && queued > 50000))
        return;
    if (rd_kafka_assignment(st->c, &asg) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    if (want_pause)
        rd_kafka_pause_partitions(st->c, asg);
    else
        rd_kafka_resume_partitions(st->c, asg);
    st->paused = want_pause;
    rd_kafka_topic_partition_list_destroy(asg);
}

static nu_err_t nu_stage_loop(struct nu_stage *st, struct nu_errbuf *eb)
{
    nu_err_t err = NU_OK;
    const struct nu_stage_opts *o = st->o;
    while (!*st->stop) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(st->c, NU_STAGE_POLL_MS);
        if (st->fatal) {
            if (m)
                rd_kafka_message_destroy(m);
            return nu_err_set(eb, st->fatal, "%s", nu_err_msg(&st->fatal_eb));
        }
        if (m) {
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                /* nothing to do: completion comes from lanes */
            } else if (m->err) {
                if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
                    char reason[512];
                    rd_kafka_fatal_error(st->c, reason, sizeof(reason));
                    err = nu_err_set(eb, NU_ERR_KAFKA_FATAL, "consumer failed: %s", reason);
                    rd_kafka_message_destroy(m);
                    return err;
                }
                nu_log(NU_LOG_WARN, "stage", "consumer: %s", rd_kafka_message_errstr(m));
            } else {
                struct nu_header hv[NU_STAGE_MAX_HEADERS];
                struct nu_trecord r = {.topic = rd_kafka_topic_name(m->rkt),
                                       .partition = m->partition,
                                       .offset = m->offset,
                                       .key = m->key,
                                       .keylen = m->key_len,
                                       .value = m->payload,
                                       .len = m->len,
                                       .headers = hv};
                r.nheaders = nu_kafka_headers_view(m, hv, NU_STAGE_MAX_HEADERS, NULL);
                err = nu_stage_handle(st, &r, eb);
            }
            rd_kafka_message_destroy(m);
            if (err == NU_ERR_TXN_ABORT) {
                struct nu_errbuf why = *eb;
                nu_errbuf_clear(eb);
                err = nu_stage_txn_abort_rewind(st, nu_err_msg(&why), eb);
            }
            if (err)
                return err;
        }
        rd_kafka_poll(st->p, 0);
        if (st->aux != st->p)
            rd_kafka_poll(st->aux, 0);
        int64_t now = nu_event_now_ms();
        if (st->in_txn && (st->commit_now || st->txn_records >= o->max_splits_per_txn ||
                           now - st->txn_started_ms >= o->commit_interval_ms)) {
            err = nu_stage_txn_commit(st, eb);
            if (err)
                return err;
        }
        nu_stage_backpressure(st);
        nu_stage_monitor_update(st, now, false);
        if (o->metrics_interval_ms > 0 && now - st->last_metrics_ms >= o->metrics_interval_ms)
            nu_stage_metrics(st, now);
        /* the check is due every completion_check_ms, and at once when this instance knows
         * by itself that everything is committed complete (no round trip then) */
        if (!st->in_txn &&
            (now - st->last_check_ms >= o->completion_check_ms || nu_stage_known_complete(st))) {
            bool complete = false;
            /* partitions assigned but without records (say, a job run again after it finished)
             * still need their committed lane state for the completion check */
            for (size_t i = 0; i < st->nparts && !err; i++)
                if (st->parts[i].assigned && st->parts[i].need_init)
                    err = nu_stage_parts_init(st, eb);
            if (err)
                return err;
            st->last_check_ms = now;
            err = nu_stage_check_complete(st, &complete, eb);
            if (err == NU_ERR_TIMEOUT || err == NU_ERR_KAFKA) {
                /* the broker slow or unreachable for a moment (the read does not depend on
                 * the group's rebalance state); worth a warning only when it lasts */
                if (++st->check_failures % 60 == 0)
                    nu_log(NU_LOG_WARN, "stage", "completion check keeps failing, will retry: %s",
                           nu_err_msg(eb));
                else
                    NU_LOG_DEBUG_AREA("stage", "stage", "completion check failed: %s",
                                      nu_err_msg(eb));
                nu_errbuf_clear(eb);
                err = NU_OK;
            } else if (!err) {
                st->check_failures = 0;
            }
            if (err)
                return err;
            if (complete) {
                st->stats->complete = true;
                return NU_OK;
            }
        }
    }
    /* SIGTERM: finish the open transaction before leaving */
    return nu_stage_txn_commit(st, eb);
}

nu_err_t nu_stage_prepare(struct nu_stage *st, const struct nu_job *job, size_t stage,
                          const struct nu_stage_opts *o, volatile sig_atomic_t *stop,
                          struct nu_stage_stats *stats, struct nu_errbuf *eb)
{
    nu_err_t err;
    memset(stats, 0, sizeof(*stats));
    st->job = job;
    st->idx = stage;
    st->js = &job->stages[stage];
    st->o = o;
    st->stats = stats;
    st->stop = stop;
    st->eos_mode = job->guarantee == NU_GUARANTEE_EXACTLY_ONCE;
    st->origin = (struct nu_event_origin){job->id, st->js->id, o->instance};
    st->cache = nu_codec_cache_new();
    st->copts = (struct nu_codec_opts){.format = job->format,
                                       .deflate = o->deflate,
                                       .max_value_bytes = (size_t)o->max_record_bytes * 4,
                                       .cache = st->cache};
    st->scratch = nu_arena_new(0);
    st->started_ms = st->last_metrics_ms = nu_event_now_ms();

    err = nu_registry_find(st->js->op, st->js->plugin, &st->op, eb);
    if (err)
        return err;
    err = nu_lanes_inputs(job, stage, st->inputs, &st->ninputs, eb);
    if (err)
        return err;
    if (st->op->kind != NU_OPKIND_SINK) {
        nu_job_topic_output(job, stage, st->out_topic, sizeof(st->out_topic));
        st->out_partitions = st->js->partitions;
    }
    nu_job_topic_dlq(job, stage, st->dlq_topic, sizeof(st->dlq_topic));
    nu_job_topic_events(job, st->events_topic, sizeof(st->events_topic));
    return NU_OK;
}

void nu_stage_release(struct nu_stage *st)
{
    nu_stage_ops_close(st);
    for (size_t i = 0; i < st->nencs; i++) {
        nu_buf_free(&st->encs[i].val);
        nu_buf_free(&st->encs[i].schema);
    }
    free(st->encs);
    free(st->parts);
    nu_buf_free(&st->enc);
    nu_buf_free(&st->ev);
    for (size_t i = 0; i < st->caprejects; i++)
        nu_buf_free(&st->rejects[i].value);
    free(st->rejects);
    nu_headers_free(&st->hdrs);
    nu_codec_cache_destroy(st->cache);
    nu_arena_destroy(st->scratch);
    free(st);
}

nu_err_t nu_stage_run(const struct nu_job *job, size_t stage, const struct nu_stage_opts *o,
                      volatile sig_atomic_t *stop, struct nu_stage_stats *stats,
                      struct nu_errbuf *eb)
{
    nu_err_t err;
    struct nu_stage *st = nu_xcalloc(1, sizeof(*st));
    struct nu_errbuf eb2;
    char inst[16];
    /* Splits are large (~100 KiB) and come and go at a high rate: keep freed memory in the heap
     * for reuse instead of returning it to the kernel, which zeroes every page again (this
     * process runs one stage instance, so the setting is ours to make). */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    snprintf(inst, sizeof(inst), "%u", o->instance);
    nu_log_set_context(job->id, job->stages[stage].id, inst);

    err = nu_stage_prepare(st, job, stage, o, stop, stats, eb);
    if (err)
        goto out;
    err = nu_stage_clients(st, eb);
    if (err)
        goto out;
    nu_errbuf_clear(&eb2);
    if (nu_stage_event(st, true, nu_event_instance(&st->origin, "instance_started", NULL), &eb2))
        nu_log(NU_LOG_WARN, "stage", "could not write instance_started: %s", nu_err_msg(&eb2));
    nu_log(NU_LOG_INFO, "stage", "started\toperator=%s guarantee=%s inputs=%zu", st->js->op,
           nu_guarantee_name(job->guarantee), st->ninputs);
    err = nu_stage_subscribe(st, eb);
    if (!err)
        err = nu_stage_loop(st, eb);

out:
    nu_stage_monitor_finish(st, err);
    if (st->c) {
        /* leaving the group revokes our partitions: the callback finishes any transaction */
        if (!err && stats->complete)
            nu_stage_leave_group(st);
        st->closing = true;
        rd_kafka_consumer_close(st->c);
    }
    if (st->aux) {
        nu_errbuf_clear(&eb2);
        const char *why = err ? nu_err_msg(eb) : stats->complete ? "complete" : "stopped";
        if (nu_stage_event(st, true, nu_event_instance(&st->origin, "instance_stopped", why),
                           &eb2) == NU_OK)
            rd_kafka_flush(st->aux, 5000);
    }
    if (st->p && st->in_txn && st->eos_mode)
        rd_kafka_abort_transaction(st->p, NU_STAGE_CLOSE_TIMEOUT_MS);
    if (st->p)
        rd_kafka_flush(st->p, NU_STAGE_CLOSE_TIMEOUT_MS);
    nu_stage_ops_close(st); /* before the clients go (release would do it after) */
    if (st->aux && st->aux != st->p)
        rd_kafka_destroy(st->aux);
    if (st->p)
        rd_kafka_destroy(st->p);
    if (st->c)
        rd_kafka_destroy(st->c);
    nu_stage_release(st);
    return err;
}
