/*
 * planner_tail.c — the continuous planner of an unbounded source (see planner.h).
 *
 * Each pass opens the source's operator with its config, where (after the first pass, or after
 * a restart that found a committed plan) "start" is replaced by {"offsets": where the committed
 * plan ends}, so the operator's plan() covers exactly the records that became stable since;
 * partitions it has not planned yet (new ones) start where the config says for partitions not
 * named, the earliest offset. The pass runs in one transaction: its splits commit together or
 * not at all, and where the plan ends moves only when the commit succeeded.
 */
#include "stage/planner_int.h"

#include "common/log.h"
#include "common/mem.h"
#include "nurion/operator.h"
#include "operators/registry.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define NU_TAIL_DEFAULT_INTERVAL_MS 500
#define NU_TAIL_STEP_MS             50

static void nu_tail_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* One pass: plan() of the operator opened with `cfg`, inside one transaction. */
static nu_err_t nu_tail_pass(struct nu_plan_writer *w, const json_t *cfg, struct nu_errbuf *eb)
{
    const struct nu_job_stage *st = &w->job->stages[w->s];
    const struct nu_operator *op = NULL;
    void *state = NULL;
    bool in_txn = false;
    uint64_t before = w->position;
    nu_err_t err = nu_registry_find(st->op, st->plugin, &op, eb);

    if (err)
        goto out;
    if (op->kind != NU_OPKIND_SOURCE || !op->plan) {
        err = nu_err_set(eb, NU_ERR_SPEC, "operator \"%s\" of stage \"%s\" is not a source", st->op,
                         st->id);
        goto out;
    }
    struct nu_op_open_args args = {
        .config = cfg, .in = NULL, .job_id = w->job->id, .stage_id = st->id};
    err = op->open(&args, &state, eb);
    if (err)
        goto out;
    err = nu_kafka_err_take(rd_kafka_begin_transaction(w->p), "begin the plan transaction", eb);
    if (err)
        goto out;
    in_txn = true;
    struct nu_op_emit emit = {.ctx = w, .emit = nu_plan_emit};
    err = op->plan(state, &emit, eb);
    if (err)
        goto out;
    if (w->position == before) { /* nothing new: leave no transaction behind */
        rd_kafka_error_destroy(rd_kafka_abort_transaction(w->p, NU_PLAN_TIMEOUT_MS));
        in_txn = false;
        goto out;
    }
    err = nu_kafka_err_take(rd_kafka_commit_transaction(w->p, NU_PLAN_TIMEOUT_MS),
                            "commit the plan transaction", eb);
    in_txn = false;
out:
    if (in_txn)
        rd_kafka_error_destroy(rd_kafka_abort_transaction(w->p, NU_PLAN_TIMEOUT_MS));
    if (op && state)
        op->close(state);
    return err;
}

/* The eos markers, in a transaction of their own. */
static nu_err_t nu_tail_finish(struct nu_plan_writer *w, struct nu_errbuf *eb)
{
    nu_err_t err =
        nu_kafka_err_take(rd_kafka_begin_transaction(w->p), "begin the plan transaction", eb);
    if (err)
        return err;
    err = nu_plan_write_eos(w, eb);
    if (err) {
        rd_kafka_error_destroy(rd_kafka_abort_transaction(w->p, NU_PLAN_TIMEOUT_MS));
        return err;
    }
    return nu_kafka_err_take(rd_kafka_commit_transaction(w->p, NU_PLAN_TIMEOUT_MS),
                             "commit the end of the plan", eb);
}

nu_err_t nu_plan_tail(const struct nu_job *job, size_t s, const char *brokers,
                      const struct nu_kafka_prop *props, size_t nprops, volatile sig_atomic_t *stop,
                      nu_plan_tail_fn progress, void *ctx, struct nu_errbuf *eb)
{
    const struct nu_job_stage *st = &job->stages[s];
    struct nu_plan_count cnt = {0};
    struct nu_plan_writer w = {.job = job, .s = s, .cnt = &cnt};
    char group[NU_JOB_NAME_MAX], txn_id[NU_JOB_NAME_MAX + 16];
    json_t *ends = json_object(), *pending = NULL, *cfg = NULL;
    const json_t *iv = json_object_get(st->config, "plan_interval_ms");
    int interval = json_is_integer(iv) ? (int)json_integer_value(iv) : NU_TAIL_DEFAULT_INTERVAL_MS;
    bool eos = false;
    nu_err_t err;

    if (!nu_plan_stage_unbounded(job, s)) {
        err = nu_err_set(eb, NU_ERR_INVALID, "stage \"%s\" is not an unbounded source", st->id);
        goto out;
    }
    nu_job_group(job, s, group, sizeof(group));
    snprintf(txn_id, sizeof(txn_id), "%s.planner", group);
    nu_job_topic_plan(job, s, w.topic, sizeof(w.topic));
    w.partitions = st->partitions;
    w.copts.format = job->format;
    err =
        nu_kafka_client_new(NU_KAFKA_TXN_PRODUCER, brokers, NULL, txn_id, props, nprops, &w.p, eb);
    if (err)
        goto out;
    /* fences an older planner and aborts whatever it left open: the scan then sees all of the
     * committed plan and nothing else */
    err = nu_kafka_err_take(rd_kafka_init_transactions(w.p, NU_PLAN_TIMEOUT_MS),
                            "initialise the planner's transactions", eb);
    if (!err)
        err = nu_plan_scan(job, s, brokers, props, nprops, txn_id, &cnt, &eos, ends, eb);
    if (err || eos)
        goto out;
    w.position = cnt.splits;
    nu_log(NU_LOG_INFO, "plan", "source \"%s\": planning continuously from split %llu", st->id,
           (unsigned long long)w.position);
    for (;;) {
        /* the first pass of a new plan starts as configured; later ones where the plan ends */
        json_decref(cfg);
        cfg = json_deep_copy(st->config);
        if (w.position > 0)
            json_object_set_new(cfg, "start",
                                json_pack("{s:O}", "offsets", ends)); /* takes a reference */
        json_decref(pending);
        pending = json_deep_copy(ends);
        w.ends = pending;
        uint64_t before = w.position;
        err = nu_tail_pass(&w, cfg, eb);
        if (err) {
            w.position = before;
            goto out;
        }
        json_decref(ends);
        ends = pending;
        pending = NULL;
        w.ends = NULL;
        if (w.position > before) {
            /* the runner reads planned_splits from this line for its progress */
            nu_log(NU_LOG_INFO, "plan", "source \"%s\": %llu splits planned\tplanned_splits=%llu",
                   st->id, (unsigned long long)w.position, (unsigned long long)w.position);
            if (progress)
                progress(ctx, w.position);
        }
        for (int waited = 0; waited < interval && !*stop; waited += NU_TAIL_STEP_MS)
            nu_tail_sleep_ms(interval - waited < NU_TAIL_STEP_MS ? interval - waited
                                                                 : NU_TAIL_STEP_MS);
        if (*stop)
            break;
    }
    err = nu_tail_finish(&w, eb);
    if (!err)
        nu_log(NU_LOG_INFO, "plan", "source \"%s\": plan ended after %llu splits", st->id,
               (unsigned long long)w.position);
out:
    if (w.p)
        rd_kafka_destroy(w.p);
    if (err)
        nu_err_prefix(eb, "could not plan source \"%s\": ", st->id);
    json_decref(cfg);
    json_decref(pending);
    json_decref(ends);
    nu_buf_free(&w.val);
    nu_buf_free(&w.schema);
    nu_headers_free(&w.hdrs);
    return err;
}
