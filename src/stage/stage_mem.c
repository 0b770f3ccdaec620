/*
 * stage_mem.c — a stage instance over the transport interface (the in-memory broker of
 * `nurion run --local`).
 *
 * The same instance as stage.c — the per-record work of stage_process.c (decode, operator,
 * retries, outputs, lineage, dead letters, end-of-stream lanes) is shared, unchanged — with its
 * own loop and its own transactions, offsets and rebalances written against transport.h. What
 * differs from the Kafka loop, and why:
 *
 * - Lane state rides the committed offset metadata exactly as on Kafka (lanes.h), inside the
 *   transaction (exactly_once) or after the outputs are flushed (at_least_once).
 * - No crash claims: instances are threads of one process and cannot die alone, so the
 *   "one split per transaction after a crash" mode of stage_txn.c has nothing to count.
 * - No metrics events and no live monitor (o->monitor is ignored): the runner of the process
 *   shows progress from the events topic, like `nurion run` does.
 *
 * Thread-safety: each call owns its clients; any number of calls may run on one transport in
 * parallel threads (each instance of each stage in its own thread).
 */
#include "common/log.h"
#include "common/mem.h"
#include "stage/stage_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NU_STAGE_MEM_POLL_MS    20
#define NU_STAGE_MEM_TIMEOUT_MS 60000

/* Delivery failures (reported from the producer's poll or flush on this thread). */
static void nu_stage_mem_delivery_failed(void *opaque, const char *topic, nu_err_t code,
                                         const char *msg)
{
    struct nu_stage *st = opaque;
    if (!st->fatal)
        st->fatal = nu_err_set(&st->fatal_eb, code ? code : NU_ERR_KAFKA,
                               "could not deliver a record to topic \"%s\": %s", topic, msg);
}

/* The lane part of committed metadata (the Kafka path may add `;…` claims after it). */
static size_t nu_stage_mem_lanes_len(const char *meta, size_t len)
{
    for (size_t i = 0; meta && i < len; i++)
        if (meta[i] == ';')
            return i;
    return meta ? len : 0;
}

nu_err_t nu_stage_mem_parts_init(struct nu_stage *st, struct nu_errbuf *eb)
{
    nu_err_t err = NU_OK;
    struct nu_toffsets list = {0};
    for (size_t i = 0; i < st->nparts; i++)
        if (st->parts[i].need_init)
            nu_toffsets_add(&list, st->inputs[st->parts[i].input].topic, st->parts[i].partition,
                            NU_TOFFSET_NONE, NULL, 0);
    if (list.n == 0)
        goto out;
    err = nu_tconsumer_committed(st->tc, &list, NU_STAGE_MEM_TIMEOUT_MS, eb);
    for (size_t i = 0; i < list.n && !err; i++) {
        struct nu_toffset *o = &list.v[i];
        struct nu_part *pt = nu_stage_part(st, o->topic, o->partition, false);
        err = nu_lane_set_decode(&pt->base, st->inputs[pt->input].lanes, o->meta,
                                 nu_stage_mem_lanes_len(o->meta, o->meta_len), eb);
        if (err) {
            nu_err_prefix(eb, "partition %s:%" PRId32 ": ", o->topic, o->partition);
            break;
        }
        pt->lanes = pt->base;
        pt->need_init = false;
        pt->need_claim = false;
        pt->dirty = false;
        pt->next_offset = o->offset < 0 ? 0 : o->offset;
        pt->committed = pt->next_offset;
    }
out:
    nu_toffsets_free(&list);
    return err;
}

nu_err_t nu_stage_mem_txn_begin(struct nu_stage *st, struct nu_errbuf *eb)
{
    if (st->eos_mode) {
        nu_err_t err = nu_tproducer_begin(st->tp, eb);
        if (err)
            return err;
    }
    st->in_txn = true;
    st->txn_records = 0;
    st->txn_started_ms = nu_event_now_ms();
    return NU_OK;
}

nu_err_t nu_stage_mem_abort_rewind(struct nu_stage *st, const char *why, struct nu_errbuf *eb)
{
    nu_err_t err = NU_OK;
    struct nu_toffsets list = {0};
    nu_log(NU_LOG_WARN, "stage", "aborting the transaction and rewinding: %s", why);
    if (st->eos_mode) {
        err = nu_tproducer_abort(st->tp, NU_STAGE_MEM_TIMEOUT_MS, eb);
        if (err)
            goto out;
    }
    st->stats->txns_aborted++;
    st->in_txn = false;
    st->commit_now = false;
    st->txn_records = 0;
    for (size_t i = 0; i < st->nparts; i++) {
        struct nu_part *pt = &st->parts[i];
        pt->lanes = pt->base;
        pt->dirty = false;
        if (pt->assigned) {
            pt->need_init = true;
            nu_toffsets_add(&list, st->inputs[pt->input].topic, pt->partition, NU_TOFFSET_NONE,
                            NULL, 0);
        }
    }
    if (list.n == 0)
        goto out;
    err = nu_tconsumer_committed(st->tc, &list, NU_STAGE_MEM_TIMEOUT_MS, eb);
    if (!err)
        err = nu_tconsumer_seek(st->tc, &list, NU_STAGE_MEM_TIMEOUT_MS, eb);
    if (!err)
        err = nu_stage_mem_parts_init(st, eb);
out:
    nu_toffsets_free(&list);
    return err;
}

/* The offsets of every dirty partition, with their lane state as metadata. */
static void nu_stage_mem_offsets(struct nu_stage *st, struct nu_toffsets *out)
{
    char meta[NU_LANES_MAX / 4 + 96];
    for (size_t i = 0; i < st->nparts; i++) {
        struct nu_part *pt = &st->parts[i];
        if (!pt->dirty || pt->next_offset < 0)
            continue;
        size_t n = nu_lane_set_encode(&pt->lanes, meta, sizeof(meta));
        nu_toffsets_add(out, st->inputs[pt->input].topic, pt->partition, pt->next_offset, meta, n);
    }
}

nu_err_t nu_stage_mem_txn_commit(struct nu_stage *st, struct nu_errbuf *eb)
{
    nu_err_t err = NU_OK;
    struct nu_toffsets offsets = {0};
    if (!st->in_txn)
        return NU_OK;
    nu_stage_mem_offsets(st, &offsets);
    if (st->eos_mode) {
        if (offsets.n > 0)
            err = nu_tproducer_send_offsets(st->tp, st->tc, &offsets, NU_STAGE_MEM_TIMEOUT_MS, eb);
        if (!err)
            err = nu_tproducer_commit(st->tp, NU_STAGE_MEM_TIMEOUT_MS, eb);
    } else {
        /* at-least-once: every output delivered before the offsets move */
        err = nu_tproducer_flush(st->tp, NU_STAGE_MEM_TIMEOUT_MS, eb);
        if (!err && st->fatal)
            err = nu_err_set(eb, st->fatal, "%s", nu_err_msg(&st->fatal_eb));
        if (!err && offsets.n > 0)
            err = nu_tconsumer_commit(st->tc, &offsets, eb);
    }
    if (err == NU_ERR_TXN_ABORT || err == NU_ERR_KAFKA || err == NU_ERR_TIMEOUT) {
        struct nu_errbuf why = *eb;
        nu_errbuf_clear(eb);
        err = nu_stage_mem_abort_rewind(st, nu_err_msg(&why), eb);
        goto out;
    }
    if (err)
        goto out;
    for (size_t i = 0; i < st->nparts; i++) {
        struct nu_part *pt = &st->parts[i];
        if (pt->dirty) {
            pt->base = pt->lanes;
            pt->committed = pt->next_offset;
        }
        pt->dirty = false;
    }
    st->in_txn = false;
    st->commit_now = false;
    st->txn_records = 0;
    st->stats->txns_committed++;
out:
    nu_toffsets_free(&offsets);
    return err;
}

/* Called from inside nu_tconsumer_poll() on this instance's thread. */
static void nu_stage_mem_rebalance(void *opaque, nu_trebalance_t kind,
                                   const struct nu_toffsets *parts)
{
    struct nu_stage *st = opaque;
    struct nu_errbuf eb;
    nu_errbuf_clear(&eb);
    if (kind == NU_TREBALANCE_ASSIGN) {
        for (size_t i = 0; i < parts->n; i++) {
            struct nu_part *pt = nu_stage_part(st, parts->v[i].topic, parts->v[i].partition, true);
            if (!pt)
                continue;
            pt->assigned = true;
            pt->need_init = true;
            pt->holding = false;
            pt->careful_left = 0;
            pt->dirty = false;
        }
        nu_log(NU_LOG_INFO, "stage", "assigned %zu partition(s)\tinstance=%s/%u", parts->n,
               st->js->id, st->o->instance);
        return;
    }
    /* finish the open transaction before the partitions move: commit it, or abort it when the
     * assignment was lost (another member may already own the partitions) */
    if (st->in_txn) {
        nu_err_t e2 = kind == NU_TREBALANCE_LOST
                          ? nu_stage_mem_abort_rewind(st, "assignment lost", &eb)
                          : nu_stage_mem_txn_commit(st, &eb);
        if (e2 && !st->fatal)
            st->fatal = nu_err_set(&st->fatal_eb, e2, "%s", nu_err_msg(&eb));
    }
    for (size_t i = 0; i < parts->n; i++) {
        struct nu_part *pt = nu_stage_part(st, parts->v[i].topic, parts->v[i].partition, false);
        if (!pt)
            continue;
        pt->holding = false;
        pt->assigned = false;
        pt->dirty = false;
    }
    nu_log(NU_LOG_INFO, "stage", "revoked %zu partition(s)\tinstance=%s/%u", parts->n, st->js->id,
           st->o->instance);
}

/* Is every partition of every input complete, as committed in the group? */
static nu_err_t nu_stage_mem_check_complete(struct nu_stage *st, bool *complete,
                                            struct nu_errbuf *eb)
{
    nu_err_t err = NU_OK;
    struct nu_toffsets list = {0};
    *complete = false;
    for (size_t i = 0; i < st->nparts; i++)
        if (st->parts[i].assigned && !nu_lane_set_complete(&st->parts[i].base))
            goto out;
    for (size_t i = 0; i < st->ninputs; i++)
        for (int p = 0; p < st->inputs[i].partitions; p++)
            nu_toffsets_add(&list, st->inputs[i].topic, p, NU_TOFFSET_NONE, NULL, 0);
    err = nu_tconsumer_committed(st->tc, &list, NU_STAGE_MEM_TIMEOUT_MS, eb);
    if (err)
        goto out;
    for (size_t i = 0; i < list.n; i++) {
        struct nu_toffset *o = &list.v[i];
        struct nu_lane_set s;
        struct nu_errbuf ignore;
        size_t in = 0;
        for (size_t k = 0; k < st->ninputs; k++)
            if (strcmp(st->inputs[k].topic, o->topic) == 0)
                in = k;
        nu_errbuf_clear(&ignore);
        if (nu_lane_set_decode(&s, st->inputs[in].lanes, o->meta,
                               nu_stage_mem_lanes_len(o->meta, o->meta_len), &ignore) ||
            !nu_lane_set_complete(&s))
            goto out;
    }
    *complete = true;
out:
    nu_toffsets_free(&list);
    return err;
}

static nu_err_t nu_stage_mem_clients(struct nu_stage *st, nu_transport_t *tr, struct nu_errbuf *eb)
{
    char group[NU_JOB_NAME_MAX], txn[NU_JOB_NAME_MAX];
    const char *topics[NU_JOB_MAX_UPSTREAMS];
    nu_err_t err;
    nu_job_group(st->job, st->idx, group, sizeof(group));
    nu_job_txn_id(st->job, st->idx, st->o->instance, txn, sizeof(txn));
    struct nu_tconsumer_conf cc = {.group = group,
                                   .instance_id = txn,
                                   .max_prefetch_bytes = st->o->max_inflight_bytes / 2,
                                   .rebalance = nu_stage_mem_rebalance,
                                   .opaque = st};
    struct nu_tproducer_conf pc = {.txn_id = st->eos_mode ? txn : NULL,
                                   .max_queue_bytes = st->o->max_inflight_bytes / 2,
                                   .on_failure = nu_stage_mem_delivery_failed,
                                   .opaque = st};
    err = nu_tconsumer_new(tr, &cc, &st->tc, eb);
    if (!err)
        err = nu_tproducer_new(tr, &pc, NU_STAGE_MEM_TIMEOUT_MS, &st->tp, eb);
    if (!err && st->eos_mode) {
        /* events outside transactions need a producer of their own */
        pc.txn_id = NULL;
        err = nu_tproducer_new(tr, &pc, NU_STAGE_MEM_TIMEOUT_MS, &st->taux, eb);
    } else if (!err) {
        st->taux = st->tp;
    }
    for (size_t i = 0; i < st->ninputs; i++)
        topics[i] = st->inputs[i].topic;
    if (!err)
        err = nu_tconsumer_subscribe(st->tc, topics, st->ninputs, eb);
    return err;
}

static nu_err_t nu_stage_mem_loop(struct nu_stage *st, struct nu_errbuf *eb)
{
    nu_err_t err = NU_OK;
    const struct nu_stage_opts *o = st->o;
    while (!*st->stop) {
        const struct nu_trecord *m = NULL;
        err = nu_tconsumer_poll(st->tc, NU_STAGE_MEM_POLL_MS, &m, eb);
        if (!err && st->fatal)
            err = nu_err_set(eb, st->fatal, "%s", nu_err_msg(&st->fatal_eb));
        if (err)
            return err;
        if (m && !m->eof) {
            err = nu_stage_handle(st, m, eb);
            nu_tconsumer_release(st->tc);
            if (err == NU_ERR_TXN_ABORT) {
                struct nu_errbuf why = *eb;
                nu_errbuf_clear(eb);
                err = nu_stage_mem_abort_rewind(st, nu_err_msg(&why), eb);
            }
            if (err)
                return err;
        }
        nu_tproducer_poll(st->tp, 0);
        int64_t now = nu_event_now_ms();
        if (st->in_txn && (st->commit_now || st->txn_records >= o->max_splits_per_txn ||
                           now - st->txn_started_ms >= o->commit_interval_ms)) {
            err = nu_stage_mem_txn_commit(st, eb);
            if (err)
                return err;
        }
        if (!st->in_txn && now - st->last_check_ms >= o->completion_check_ms) {
            bool complete = false;
            /* partitions assigned but without records (a job run again after it finished)
             * still need their committed lane state for the completion check */
            err = nu_stage_mem_parts_init(st, eb);
            if (!err)
                err = nu_stage_mem_check_complete(st, &complete, eb);
            if (err)
                return err;
            st->last_check_ms = now;
            if (complete) {
                st->stats->complete = true;
                return NU_OK;
            }
        }
    }
    /* stopped: finish the open transaction before leaving */
    return nu_stage_mem_txn_commit(st, eb);
}

nu_err_t nu_stage_run_transport(const struct nu_job *job, size_t stage,
                                const struct nu_stage_opts *o, nu_transport_t *tr,
                                volatile sig_atomic_t *stop, struct nu_stage_stats *stats,
                                struct nu_errbuf *eb)
{
    nu_err_t err;
    struct nu_stage *st = nu_xcalloc(1, sizeof(*st));
    struct nu_stage_opts own = *o;
    struct nu_errbuf eb2;
    own.monitor = NULL;
    own.metrics_interval_ms = 0;
    err = nu_stage_prepare(st, job, stage, &own, stop, stats, eb);
    if (!err)
        err = nu_stage_mem_clients(st, tr, eb);
    if (err)
        goto out;
    nu_errbuf_clear(&eb2);
    if (nu_stage_event(st, true, nu_event_instance(&st->origin, "instance_started", NULL), &eb2))
        nu_log(NU_LOG_WARN, "stage", "could not write instance_started: %s", nu_err_msg(&eb2));
    NU_LOG_DEBUG_AREA("stage", "stage", "started\tstage=%s instance=%u", st->js->id, own.instance);
    err = nu_stage_mem_loop(st, eb);

out:
    if (err && st->in_txn) {
        /* a failed instance commits nothing more: its open transaction is dropped (with
         * at_least_once the offsets simply stay where they were committed last) */
        nu_errbuf_clear(&eb2);
        if (st->eos_mode)
            nu_tproducer_abort(st->tp, NU_STAGE_MEM_TIMEOUT_MS, &eb2);
        st->in_txn = false;
        for (size_t i = 0; i < st->nparts; i++)
            st->parts[i].dirty = false;
    }
    /* leaving the group revokes our partitions: the callback finishes any open transaction */
    nu_tconsumer_destroy(st->tc);
    st->tc = NULL;
    if (st->taux) {
        nu_errbuf_clear(&eb2);
        const char *why = err ? nu_err_msg(eb) : stats->complete ? "complete" : "stopped";
        json_t *ev = nu_event_instance(&st->origin, "instance_stopped", why);
        nu_event_dump(ev, &st->ev);
        if (nu_tproducer_send(st->taux, st->events_topic, 0, st->js->id, strlen(st->js->id),
                              st->ev.data, st->ev.len, NULL, 0, NU_STAGE_MEM_TIMEOUT_MS,
                              &eb2) == NU_OK)
            nu_tproducer_flush(st->taux, NU_STAGE_MEM_TIMEOUT_MS, &eb2);
    }
    if (st->taux && st->taux != st->tp)
        nu_tproducer_destroy(st->taux);
    nu_tproducer_destroy(st->tp);
    nu_stage_release(st);
    return err;
}
