/*
 * stage_txn.c — transactions, offsets with lane state, rebalances and stage completion.
 *
 * Crash accounting. A split that kills the process would otherwise crash-loop every instance
 * that takes its partition. Besides the lane state, the committed offset metadata of a partition
 * carries claims: `;b=<offset>` — a holder is processing the partition from <offset> in
 * transactions of many splits — and `;c=<offset>x<n>` — n holders died processing the single
 * record at <offset> on its own. A holder writes `b` (a plain offset commit of the unchanged
 * offset) before the first split it takes from a partition, keeps it in every transaction it
 * commits, and removes it when the partition is revoked cleanly; so a `b` equal to the committed
 * offset tells the next holder that the last one died there. That holder then works carefully:
 * for a while it processes one split per transaction, and before each it records `c` with one
 * more death at that offset; a split at whose offset max_crashes holders died alone is
 * dead-lettered instead of processed. Splits of other partitions that shared the fatal
 * transaction are never blamed: only deaths while a split was processed alone count.
 */
#include "common/log.h"
#include "common/mem.h"
#include "stage/stage_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NU_STAGE_TXN_TIMEOUT_MS        60000
#define NU_STAGE_COMMITTED_TIMEOUT_MS  10000
#define NU_STAGE_COMPLETION_TIMEOUT_MS 1000
#define NU_STAGE_LEAVE_TIMEOUT_MS      1000

struct nu_part *nu_stage_part(struct nu_stage *st, const char *topic, int32_t partition,
                              bool create)
{
    for (size_t i = 0; i < st->nparts; i++) {
        struct nu_part *pt = &st->parts[i];
        if (pt->partition == partition && strcmp(st->inputs[pt->input].topic, topic) == 0)
            return pt;
    }
    if (!create)
        return NULL;
    size_t input = st->ninputs;
    for (size_t i = 0; i < st->ninputs; i++)
        if (strcmp(st->inputs[i].topic, topic) == 0)
            input = i;
    if (input == st->ninputs)
        return NULL;
    if (st->nparts == st->capparts) {
        st->capparts = st->capparts ? st->capparts * 2 : 16;
        st->parts = nu_xrealloc(st->parts, st->capparts * sizeof(*st->parts));
    }
    struct nu_part *pt = &st->parts[st->nparts++];
    memset(pt, 0, sizeof(*pt));
    pt->input = input;
    pt->partition = partition;
    pt->next_offset = -1;
    nu_lane_set_init(&pt->lanes, st->inputs[input].lanes);
    nu_lane_set_init(&pt->base, st->inputs[input].lanes);
    return pt;
}

/* Claims read from committed metadata (-1: none). */
struct nu_claims {
    int64_t batch_off;
    int64_t single_off;
    int single_n;
};

/* Split committed metadata into its lane part (length returned) and its claims. */
static size_t nu_stage_meta_split(const char *meta, size_t len, struct nu_claims *c)
{
    c->batch_off = c->single_off = -1;
    c->single_n = 0;
    size_t lanes = len;
    for (size_t i = 0; meta && i < len; i++) {
        if (meta[i] != ';')
            continue;
        if (lanes == len)
            lanes = i;
        char buf[64];
        size_t n = 0;
        while (i + 1 + n < len && meta[i + 1 + n] != ';' && n < sizeof(buf) - 1) {
            buf[n] = meta[i + 1 + n];
            n++;
        }
        buf[n] = '\0';
        long long off;
        int cnt;
        if (sscanf(buf, "c=%lldx%d", &off, &cnt) == 2 && off >= 0 && cnt >= 0) {
            c->single_off = off;
            c->single_n = cnt;
        } else if (sscanf(buf, "b=%lld", &off) == 1 && off >= 0) {
            c->batch_off = off;
        }
    }
    return lanes;
}

/* The metadata of `pt` at offset `off`: lane state, plus our batch claim when `hold`, plus a
 * single-record claim of `n` deaths when n > 0. */
static size_t nu_stage_meta(const struct nu_part *pt, int64_t off, bool hold, int n, char *buf,
                            size_t len)
{
    size_t used = nu_lane_set_encode(&pt->lanes, buf, len);
    if (hold && used < len)
        used += (size_t)snprintf(buf + used, len - used, ";b=%" PRId64, off);
    if (n > 0 && used < len)
        used += (size_t)snprintf(buf + used, len - used, ";c=%" PRId64 "x%d", off, n);
    return used < len ? used : len - 1;
}

/* Commit (outside any transaction) the unchanged committed offset of `pt` with its lane state,
 * our batch claim when `hold`, and a single-record claim of `n` deaths (none when 0). */
static nu_err_t nu_stage_commit_claim_mode(struct nu_stage *st, struct nu_part *pt, bool hold,
                                           int n, bool async, struct nu_errbuf *eb)
{
    char meta[NU_LANES_MAX / 4 + 96];
    struct nu_lane_set keep = pt->lanes;
    pt->lanes = pt->base; /* committed lane state only */
    size_t len = nu_stage_meta(pt, pt->committed, hold, n, meta, sizeof(meta));
    pt->lanes = keep;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_t *tp =
        rd_kafka_topic_partition_list_add(list, st->inputs[pt->input].topic, pt->partition);
    tp->offset = pt->committed; /* never the open transaction's position */
    tp->metadata = nu_xstrndup(meta, len);
    tp->metadata_size = len;
    int64_t t0 = nu_event_now_ms();
    rd_kafka_resp_err_t rerr = rd_kafka_commit(st->c, list, async ? 1 : 0);
    rd_kafka_topic_partition_list_destroy(list);
    NU_LOG_DEBUG_AREA("stage", "stage", "claim committed in %" PRId64 " ms",
                      nu_event_now_ms() - t0);
    if (rerr)
        return nu_err_set(eb, nu_kafka_err_code(rerr),
                          "could not record the claim on partition %s:%" PRId32 ": %s",
                          st->inputs[pt->input].topic, pt->partition, rd_kafka_err2str(rerr));
    return NU_OK;
}

static nu_err_t nu_stage_commit_claim(struct nu_stage *st, struct nu_part *pt, bool hold, int n,
                                      struct nu_errbuf *eb)
{
    return nu_stage_commit_claim_mode(st, pt, hold, n, false, eb);
}

nu_err_t nu_stage_claim_batch(struct nu_stage *st, struct nu_part *pt, struct nu_errbuf *eb)
{
    if (st->tc) { /* in memory: no process of ours can die alone, so no claims */
        pt->holding = true;
        return NU_OK;
    }
    if (pt->holding)
        return NU_OK;
    nu_err_t err = nu_stage_commit_claim(st, pt, true, 0, eb);
    if (!err)
        pt->holding = true;
    return err;
}

nu_err_t nu_stage_claim(struct nu_stage *st, struct nu_part *pt, int *kill_count,
                        struct nu_errbuf *eb)
{
    if (st->tc) {
        *kill_count = 0;
        return NU_OK;
    }
    int deaths = pt->crash_off == pt->committed ? pt->crash_n : 0;
    *kill_count = deaths;
    if (deaths >= st->js->max_crashes)
        return NU_OK; /* not processed again: the caller dead-letters it */
    nu_err_t err = nu_stage_commit_claim(st, pt, true, deaths + 1, eb);
    if (err)
        return err;
    pt->holding = true;
    pt->crash_off = pt->committed;
    pt->crash_n = deaths + 1;
    return NU_OK;
}

/* Fetch the committed offsets (and lane state) of `list` from the group. */
static nu_err_t nu_stage_committed(struct nu_stage *st, rd_kafka_topic_partition_list_t *list,
                                   struct nu_errbuf *eb)
{
    rd_kafka_resp_err_t rerr = rd_kafka_committed(st->c, list, NU_STAGE_COMMITTED_TIMEOUT_MS);
    if (rerr)
        return nu_err_set(eb,
                          nu_kafka_err_code(rerr) == NU_ERR_TIMEOUT ? NU_ERR_TIMEOUT : NU_ERR_KAFKA,
                          "could not read the committed offsets of group of stage \"%s\": %s",
                          st->js->id, rd_kafka_err2str(rerr));
    return NU_OK;
}

nu_err_t nu_stage_parts_init(struct nu_stage *st, struct nu_errbuf *eb)
{
    if (st->tc)
        return nu_stage_mem_parts_init(st, eb);
    nu_err_t err = NU_OK;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(8);
    for (size_t i = 0; i < st->nparts; i++)
        if (st->parts[i].need_init)
            rd_kafka_topic_partition_list_add(list, st->inputs[st->parts[i].input].topic,
                                              st->parts[i].partition);
    if (list->cnt == 0)
        goto out;
    int64_t t0 = nu_event_now_ms();
    err = nu_stage_committed(st, list, eb);
    NU_LOG_DEBUG_AREA("stage", "stage",
                      "read committed offsets of %d partition(s) in %" PRId64 " ms", list->cnt,
                      nu_event_now_ms() - t0);
    for (int i = 0; i < list->cnt && !err; i++) {
        rd_kafka_topic_partition_t *tp = &list->elems[i];
        struct nu_part *pt = nu_stage_part(st, tp->topic, tp->partition, false);
        struct nu_claims cl;
        size_t lane_len = nu_stage_meta_split(tp->metadata, tp->metadata_size, &cl);
        err =
            nu_lane_set_decode(&pt->base, st->inputs[pt->input].lanes, tp->metadata, lane_len, eb);
        if (err) {
            nu_err_prefix(eb, "partition %s:%" PRId32 ": ", tp->topic, tp->partition);
            break;
        }
        pt->lanes = pt->base;
        pt->need_init = false;
        pt->dirty = false;
        pt->next_offset = tp->offset;
        /* nothing committed yet: offset 0 stands for "the beginning" (a log whose start was
         * deleted resets to its earliest offset, auto.offset.reset=earliest), which keeps the
         * claim key the same for every holder without asking the partition leader */
        if (pt->next_offset < 0)
            pt->next_offset = 0;
        pt->committed = pt->next_offset;
        pt->crash_off = cl.single_off;
        pt->crash_n = cl.single_n;
        pt->holding = false;
        if (pt->need_claim && !nu_lane_set_complete(&pt->base) &&
            (cl.batch_off == pt->next_offset || cl.single_off == pt->next_offset)) {
            /* the last holder died here: isolate the split that killed it */
            pt->careful_left = st->o->max_splits_per_txn;
            nu_log(NU_LOG_WARN, "stage",
                   "the last holder of this partition died while processing it: one split per "
                   "transaction for the next %d records\ttopic=%s partition=%" PRId32
                   " offset=%" PRId64 " deaths_here=%d",
                   pt->careful_left, tp->topic, tp->partition, pt->next_offset,
                   cl.single_off == pt->next_offset ? cl.single_n : 0);
        }
        pt->need_claim = false;
    }
out:
    rd_kafka_topic_partition_list_destroy(list);
    return err;
}

nu_err_t nu_stage_txn_begin(struct nu_stage *st, struct nu_errbuf *eb)
{
    if (st->tc)
        return nu_stage_mem_txn_begin(st, eb);
    if (st->eos_mode) {
        nu_err_t err =
            nu_kafka_err_take(rd_kafka_begin_transaction(st->p), "begin a transaction", eb);
        if (err)
            return err;
    }
    st->in_txn = true;
    st->txn_records = 0;
    st->txn_started_ms = nu_event_now_ms();
    return NU_OK;
}

/* The offsets of every dirty partition, with their lane state as metadata. */
static rd_kafka_topic_partition_list_t *nu_stage_offsets(struct nu_stage *st)
{
    char meta[NU_LANES_MAX / 4 + 96];
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(8);
    for (size_t i = 0; i < st->nparts; i++) {
        struct nu_part *pt = &st->parts[i];
        if (!pt->dirty || pt->next_offset < 0)
            continue;
        rd_kafka_topic_partition_t *tp =
            rd_kafka_topic_partition_list_add(list, st->inputs[pt->input].topic, pt->partition);
        tp->offset = pt->next_offset;
        /* while we hold the partition, every commit keeps our batch claim */
        size_t n = nu_stage_meta(pt, pt->next_offset, pt->assigned, 0, meta, sizeof(meta));
        tp->metadata = nu_xstrndup(meta, n); /* freed by the list */
        tp->metadata_size = n;
    }
    return list;
}

static void nu_stage_txn_done(struct nu_stage *st)
{
    for (size_t i = 0; i < st->nparts; i++) {
        struct nu_part *pt = &st->parts[i];
        if (pt->dirty) {
            pt->base = pt->lanes;
            pt->committed = pt->next_offset;
            pt->crash_off = -1; /* the new offset carries no single-record claim */
            pt->crash_n = 0;
        }
        pt->dirty = false;
    }
    st->in_txn = false;
    st->commit_now = false;
    st->txn_records = 0;
}

nu_err_t nu_stage_txn_abort_rewind(struct nu_stage *st, const char *why, struct nu_errbuf *eb)
{
    if (st->tc)
        return nu_stage_mem_abort_rewind(st, why, eb);
    nu_err_t err = NU_OK;
    rd_kafka_topic_partition_list_t *list = NULL;
    nu_log(NU_LOG_WARN, "stage", "aborting the transaction and rewinding: %s", why);
    if (st->eos_mode) {
        err = nu_kafka_err_take(rd_kafka_abort_transaction(st->p, NU_STAGE_TXN_TIMEOUT_MS),
                                "abort a transaction", eb);
        if (err) { /* name the first failure too: it is the cause */
            char cause[256];
            snprintf(cause, sizeof(cause), "%s", why);
            nu_err_prefix(eb, "%s; then: ", cause);
            return err;
        }
    }
    st->stats->txns_aborted++;
    st->in_txn = false;
    st->txn_records = 0;
    /* every assigned partition goes back to its committed offset and lane state */
    for (size_t i = 0; i < st->nparts; i++) {
        struct nu_part *pt = &st->parts[i];
        pt->lanes = pt->base;
        pt->dirty = false;
        if (pt->assigned)
            pt->need_init = true;
    }
    err = rd_kafka_assignment(st->c, &list) ? NU_ERR_KAFKA : NU_OK;
    if (err) {
        nu_err_set(eb, err, "could not read the consumer's assignment");
        goto out;
    }
    if (list->cnt == 0)
        goto out;
    err = nu_stage_committed(st, list, eb);
    if (err)
        goto out;
    for (int i = 0; i < list->cnt; i++)
        if (list->elems[i].offset < 0)
            list->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
    err = nu_kafka_err_take(rd_kafka_seek_partitions(st->c, list, NU_STAGE_COMMITTED_TIMEOUT_MS),
                            "rewind to the committed offsets", eb);
    if (!err)
        err = nu_stage_parts_init(st, eb);
out:
    if (list)
        rd_kafka_topic_partition_list_destroy(list);
    return err;
}

nu_err_t nu_stage_txn_commit(struct nu_stage *st, struct nu_errbuf *eb)
{
    if (st->tc)
        return nu_stage_mem_txn_commit(st, eb);
    nu_err_t err = NU_OK;
    rd_kafka_topic_partition_list_t *offsets = NULL;
    rd_kafka_consumer_group_metadata_t *cgmd = NULL;
    int64_t t0 = nu_event_now_ms();
    if (!st->in_txn)
        return NU_OK;
    offsets = nu_stage_offsets(st);
    if (st->eos_mode) {
        cgmd = rd_kafka_consumer_group_metadata(st->c);
        if (offsets->cnt > 0)
            err = nu_kafka_err_take(
                rd_kafka_send_offsets_to_transaction(st->p, offsets, cgmd, NU_STAGE_TXN_TIMEOUT_MS),
                "send the offsets to the transaction", eb);
        if (!err)
            err = nu_kafka_err_take(rd_kafka_commit_transaction(st->p, NU_STAGE_TXN_TIMEOUT_MS),
                                    "commit the transaction", eb);
        if (err == NU_ERR_TXN_ABORT || err == NU_ERR_KAFKA || err == NU_ERR_TIMEOUT) {
            struct nu_errbuf why = *eb;
            nu_errbuf_clear(eb);
            err = nu_stage_txn_abort_rewind(st, nu_err_msg(&why), eb);
            goto out;
        }
    } else {
        /* at-least-once: every output delivered before the offsets move */
        rd_kafka_resp_err_t rerr = rd_kafka_flush(st->p, NU_STAGE_TXN_TIMEOUT_MS);
        if (rerr) {
            err = nu_err_set(eb, NU_ERR_TIMEOUT, "could not deliver the outputs: %s",
                             rd_kafka_err2str(rerr));
            goto out;
        }
        if (st->fatal) {
            err = nu_err_set(eb, st->fatal, "%s", nu_err_msg(&st->fatal_eb));
            goto out;
        }
        if (offsets->cnt > 0) {
            rerr = rd_kafka_commit(st->c, offsets, 0);
            if (rerr) {
                nu_log(NU_LOG_WARN, "stage", "could not commit offsets: %s; rewinding",
                       rd_kafka_err2str(rerr));
                err = nu_stage_txn_abort_rewind(st, rd_kafka_err2str(rerr), eb);
                goto out;
            }
        }
    }
    if (!err) {
        NU_LOG_DEBUG_AREA("stage", "stage",
                          "transaction of %d record(s) committed in %" PRId64 " ms",
                          st->txn_records, nu_event_now_ms() - t0);
        nu_stage_txn_done(st);
        st->stats->txns_committed++;
    }
out:
    if (cgmd)
        rd_kafka_consumer_group_metadata_destroy(cgmd);
    rd_kafka_topic_partition_list_destroy(offsets);
    return err;
}

/* Does the group use the cooperative protocol (incremental assignments)? It depends on the
 * configured assignor (kafka.partition.assignment.strategy may change it). */
static bool nu_stage_cooperative(rd_kafka_t *rk)
{
    const char *proto = rd_kafka_rebalance_protocol(rk);
    return proto && strcmp(proto, "COOPERATIVE") == 0;
}

void nu_stage_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                           rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct nu_stage *st = opaque;
    struct nu_errbuf eb;
    nu_errbuf_clear(&eb);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        if (st->closing) {
            /* an assignment that arrives while rd_kafka_consumer_close runs is dropped: the
             * group is already terminating (it does not wait for this call), and an assign
             * request reaching it after it terminated is never answered (librdkafka 2.0.2),
             * which would hang the close */
            NU_LOG_DEBUG_AREA("stage", "stage", "closing: assignment of %d partition(s) ignored",
                              parts->cnt);
            return;
        }
        for (int i = 0; i < parts->cnt; i++) {
            struct nu_part *pt =
                nu_stage_part(st, parts->elems[i].topic, parts->elems[i].partition, true);
            if (!pt)
                continue;
            pt->assigned = true;
            pt->need_init = true;
            pt->need_claim = true;
            pt->holding = false;
            pt->careful_left = 0;
            pt->dirty = false;
        }
        nu_log(NU_LOG_INFO, "stage", "assigned %d partition(s)", parts->cnt);
        if (nu_stage_cooperative(rk)) {
            rd_kafka_error_t *e = rd_kafka_incremental_assign(rk, parts);
            if (e && !st->fatal)
                st->fatal = nu_kafka_err_take(e, "assign partitions", &st->fatal_eb);
            else if (e)
                rd_kafka_error_destroy(e);
        } else {
            rd_kafka_resp_err_t rerr = rd_kafka_assign(rk, parts);
            if (rerr && !st->fatal)
                st->fatal = nu_err_set(&st->fatal_eb, NU_ERR_KAFKA,
                                       "could not assign partitions: %s", rd_kafka_err2str(rerr));
        }
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        /* finish the open transaction before the partitions move: commit it, or abort it when
         * the assignment was lost (another member may already own the partitions) */
        if (st->in_txn) {
            nu_err_t e2 = rd_kafka_assignment_lost(rk)
                              ? nu_stage_txn_abort_rewind(st, "assignment lost", &eb)
                              : nu_stage_txn_commit(st, &eb);
            if (e2 && !st->fatal) {
                st->fatal = e2;
                nu_err_set(&st->fatal_eb, e2, "%s", nu_err_msg(&eb));
            }
        }
        bool lost = rd_kafka_assignment_lost(rk);
        for (int i = 0; i < parts->cnt; i++) {
            struct nu_part *pt =
                nu_stage_part(st, parts->elems[i].topic, parts->elems[i].partition, false);
            if (!pt)
                continue;
            /* a clean hand-over releases our claim, so only crashes are counted */
            if (pt->holding && !lost && !pt->need_init) {
                struct nu_errbuf ceb;
                int deaths = pt->crash_off == pt->committed ? pt->crash_n - 1 : 0;
                nu_errbuf_clear(&ceb);
                /* asynchronous: a synchronous commit from the revoke callback of
                 * rd_kafka_consumer_close can wait forever; a release that does not land only
                 * makes the next holder work carefully for a while */
                if (nu_stage_commit_claim_mode(st, pt, false, deaths, true, &ceb))
                    nu_log(NU_LOG_WARN, "stage", "could not release a claim: %s", nu_err_msg(&ceb));
            }
            pt->holding = false;
            pt->assigned = false;
            pt->dirty = false;
        }
        nu_log(NU_LOG_INFO, "stage", "revoked %d partition(s)", parts->cnt);
        if (nu_stage_cooperative(rk)) {
            rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, parts);
            if (e)
                rd_kafka_error_destroy(e);
        } else {
            rd_kafka_assign(rk, NULL);
        }
        return;
    }
    if (!st->fatal)
        st->fatal =
            nu_err_set(&st->fatal_eb, NU_ERR_KAFKA, "rebalance failed: %s", rd_kafka_err2str(err));
}

/*
 * Leaving a complete stage. Its consumer is a static member (group.instance.id), which
 * rd_kafka_consumer_close takes out of the group without a LeaveGroup: the broker then keeps
 * the member until session.timeout.ms passes, and a rebalance started meanwhile (an instance
 * joining late) cannot end before — other members wait that long for their assignments. An
 * unsubscribe before the close does send a LeaveGroup. It is done only when this member holds
 * partitions under the eager protocol: it has no JoinGroup of its own pending then, which would
 * hold the LeaveGroup (and the close waiting for its answer) behind it on the coordinator
 * connection. The revocation it causes is served here, by this thread, with a bounded wait.
 */
void nu_stage_leave_group(struct nu_stage *st)
{
    rd_kafka_topic_partition_list_t *asg = NULL;
    bool held = false;
    if (rd_kafka_assignment(st->c, &asg) == RD_KAFKA_RESP_ERR_NO_ERROR && asg) {
        held = asg->cnt > 0;
        rd_kafka_topic_partition_list_destroy(asg);
    }
    if (held && !nu_stage_cooperative(st->c) && !rd_kafka_unsubscribe(st->c)) {
        int64_t deadline = nu_event_now_ms() + NU_STAGE_LEAVE_TIMEOUT_MS;
        while (held && nu_event_now_ms() < deadline) {
            rd_kafka_message_t *m = rd_kafka_consumer_poll(st->c, 20);
            if (m)
                rd_kafka_message_destroy(m);
            held = false;
            for (size_t i = 0; i < st->nparts; i++)
                held = held || st->parts[i].assigned;
        }
        NU_LOG_DEBUG_AREA("stage", "stage", "left the group%s",
                          held ? " (revocation not seen)" : "");
    }
}

bool nu_stage_known_complete(const struct nu_stage *st)
{
    /* Only for a stage of one instance: with several, one that leaves at once may leave a
     * rebalance pending, and a static member is only noticed gone after its session timeout,
     * which would hold the other instances that long. Parts are unique per (input, partition):
     * counting the complete ones is enough. */
    size_t total = 0, known = 0;
    if (st->js->parallelism_max > 1)
        return false;
    for (size_t i = 0; i < st->ninputs; i++)
        total += (size_t)st->inputs[i].partitions;
    for (size_t k = 0; k < st->nparts; k++) {
        const struct nu_part *pt = &st->parts[k];
        if (!pt->need_init && pt->partition < st->inputs[pt->input].partitions &&
            nu_lane_set_complete(&pt->base))
            known++;
    }
    return known >= total;
}

nu_err_t nu_stage_check_complete(struct nu_stage *st, bool *complete, struct nu_errbuf *eb)
{
    nu_err_t err = NU_OK;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(32);
    *complete = false;
    /* cheap tests first: any partition of ours still open means no; every partition seen
     * complete in committed state (read, or committed by us) means yes */
    for (size_t i = 0; i < st->nparts; i++)
        if (st->parts[i].assigned && !nu_lane_set_complete(&st->parts[i].base))
            goto out;
    if (nu_stage_known_complete(st)) {
        *complete = true;
        goto out;
    }
    for (size_t i = 0; i < st->ninputs; i++)
        for (int p = 0; p < st->inputs[i].partitions; p++)
            rd_kafka_topic_partition_list_add(list, st->inputs[i].topic, p);
    /*
     * Read through the producer for events, not the consumer: a member's offset fetches share
     * its coordinator connection with its JoinGroup, which the broker holds until every member
     * has rejoined — and an instance that finished and left without a LeaveGroup (a static
     * member) is only timed out after session.timeout.ms. Reading the group from outside sees
     * completion whatever the rebalance state. Not "stable": a partition whose offsets are
     * pending in another instance's open transaction reads as its last committed state, which
     * is exact here — lanes only accumulate, so committed-complete never becomes incomplete,
     * and an incomplete answer is simply asked again later.
     */
    char group[NU_JOB_NAME_MAX];
    nu_job_group(st->job, st->idx, group, sizeof(group));
    int64_t t0 = nu_event_now_ms();
    err = nu_kafka_group_offsets(st->aux, group, list, false, NU_STAGE_COMPLETION_TIMEOUT_MS, eb);
    NU_LOG_DEBUG_AREA("stage", "stage", "completion check read %d offset(s) in %" PRId64 " ms: %s",
                      list->cnt, nu_event_now_ms() - t0, err ? nu_err_msg(eb) : "ok");
    if (err)
        goto out;
    for (int i = 0; i < list->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &list->elems[i];
        struct nu_lane_set s;
        size_t in = 0;
        for (size_t k = 0; k < st->ninputs; k++)
            if (strcmp(st->inputs[k].topic, tp->topic) == 0)
                in = k;
        struct nu_errbuf ignore;
        nu_errbuf_clear(&ignore);
        struct nu_claims cl;
        size_t lane_len = nu_stage_meta_split(tp->metadata, tp->metadata_size, &cl);
        if (nu_lane_set_decode(&s, st->inputs[in].lanes, tp->metadata, lane_len, &ignore) ||
            !nu_lane_set_complete(&s))
            goto out;
    }
    *complete = true;
out:
    rd_kafka_topic_partition_list_destroy(list);
    return err;
}
