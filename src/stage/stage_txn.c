/*
 * stage_txn.c — transactions, offsets with lane state, rebalances and stage completion.
 *
 * Crash accounting. A split that kills the process would otherwise crash-loop every instance
 * that takes its partition. The committed offset metadata of a partition carries, besides the
 * lane state, a claim `;c=<offset>x<n>`: n holders took the partition at committed offset
 * <offset> without releasing it. An instance that is assigned a partition claims it (a plain
 * offset commit of the unchanged offset with n + 1 when the offset is the same, else 1) and
 * releases the claim (back to n) when the partition is revoked cleanly; a transaction that moves
 * the offset drops the claim. A crash leaves its claim behind, so n counts the crashes at that
 * offset. After a suspected crash (n > 1) the next holder processes one record per transaction
 * for a while, claiming each record's offset first; a record at whose offset max_crashes holders
 * died is dead-lettered instead of processed.
 */
#include "common/log.h"
#include "common/mem.h"
#include "stage/stage_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NU_STAGE_TXN_TIMEOUT_MS       60000
#define NU_STAGE_COMMITTED_TIMEOUT_MS 10000

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

/* Split committed metadata into its lane part (length returned) and an optional claim. */
static size_t nu_stage_meta_split(const char *meta, size_t len, int64_t *claim_off, int *claim_n)
{
    *claim_off = -1;
    *claim_n = 0;
    for (size_t i = 0; meta && i < len; i++) {
        if (meta[i] != ';')
            continue;
        char buf[64];
        size_t n = len - i - 1 < sizeof(buf) - 1 ? len - i - 1 : sizeof(buf) - 1;
        memcpy(buf, meta + i + 1, n);
        buf[n] = '\0';
        long long off;
        int cnt;
        if (sscanf(buf, "c=%lldx%d", &off, &cnt) == 2 && off >= 0 && cnt >= 0) {
            *claim_off = off;
            *claim_n = cnt;
        }
        return i;
    }
    return len;
}

/* Commit (outside any transaction) the unchanged offset `off` of `pt` with its lane state and a
 * claim of `n` holders (n == 0: no claim). */
static nu_err_t nu_stage_commit_claim(struct nu_stage *st, struct nu_part *pt, int64_t off, int n,
                                      struct nu_errbuf *eb)
{
    char meta[NU_LANES_MAX / 4 + 96];
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_t *tp =
        rd_kafka_topic_partition_list_add(list, st->inputs[pt->input].topic, pt->partition);
    size_t len = nu_lane_set_encode(&pt->base, meta, sizeof(meta));
    if (n > 0)
        len += (size_t)snprintf(meta + len, sizeof(meta) - len, ";c=%" PRId64 "x%d", off, n);
    tp->offset = off;
    tp->metadata = nu_xstrndup(meta, len);
    tp->metadata_size = len;
    int64_t t0 = nu_event_now_ms();
    rd_kafka_resp_err_t rerr = rd_kafka_commit(st->c, list, 0);
    rd_kafka_topic_partition_list_destroy(list);
    NU_LOG_DEBUG_AREA("stage", "stage", "claim committed in %" PRId64 " ms",
                      nu_event_now_ms() - t0);
    if (rerr)
        return nu_err_set(eb, nu_kafka_err_code(rerr),
                          "could not record the claim on partition %s:%" PRId32 ": %s",
                          st->inputs[pt->input].topic, pt->partition, rd_kafka_err2str(rerr));
    return NU_OK;
}

nu_err_t nu_stage_claim(struct nu_stage *st, struct nu_part *pt, int *kill_count,
                        struct nu_errbuf *eb)
{
    int64_t off = pt->next_offset;
    if (pt->crash_off != off) {
        nu_err_t err = nu_stage_commit_claim(st, pt, off, 1, eb);
        if (err)
            return err;
        pt->crash_off = off;
        pt->crash_n = 1;
        pt->claimed = true;
    }
    *kill_count = pt->crash_n - 1;
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
        int64_t claim_off;
        int claim_n;
        size_t lane_len =
            nu_stage_meta_split(tp->metadata, tp->metadata_size, &claim_off, &claim_n);
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
        pt->crash_off = claim_off;
        pt->crash_n = claim_n;
        if (pt->need_claim && !nu_lane_set_complete(&pt->base)) {
            int n = claim_off == pt->next_offset ? claim_n + 1 : 1;
            err = nu_stage_commit_claim(st, pt, pt->next_offset, n, eb);
            if (err)
                break;
            pt->crash_off = pt->next_offset;
            pt->crash_n = n;
            pt->claimed = true;
            if (n > 1) {
                pt->careful_left = st->o->max_splits_per_txn;
                nu_log(NU_LOG_WARN, "stage",
                       "%d earlier holder(s) of this partition died at this offset: processing "
                       "one split per transaction for the next %d records\ttopic=%s "
                       "partition=%" PRId32 " offset=%" PRId64,
                       n - 1, pt->careful_left, tp->topic, tp->partition, pt->next_offset);
            }
        }
        pt->need_claim = false;
    }
out:
    rd_kafka_topic_partition_list_destroy(list);
    return err;
}

nu_err_t nu_stage_txn_begin(struct nu_stage *st, struct nu_errbuf *eb)
{
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
    char meta[NU_LANES_MAX / 4 + 64];
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(8);
    for (size_t i = 0; i < st->nparts; i++) {
        struct nu_part *pt = &st->parts[i];
        if (!pt->dirty || pt->next_offset < 0)
            continue;
        rd_kafka_topic_partition_t *tp =
            rd_kafka_topic_partition_list_add(list, st->inputs[pt->input].topic, pt->partition);
        tp->offset = pt->next_offset;
        size_t n = nu_lane_set_encode(&pt->lanes, meta, sizeof(meta));
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
            pt->claimed = false; /* the new offset carries no claim */
        }
        pt->dirty = false;
    }
    st->in_txn = false;
    st->commit_now = false;
    st->txn_records = 0;
}

nu_err_t nu_stage_txn_abort_rewind(struct nu_stage *st, const char *why, struct nu_errbuf *eb)
{
    nu_err_t err = NU_OK;
    rd_kafka_topic_partition_list_t *list = NULL;
    nu_log(NU_LOG_WARN, "stage", "aborting the transaction and rewinding: %s", why);
    if (st->eos_mode) {
        err = nu_kafka_err_take(rd_kafka_abort_transaction(st->p, NU_STAGE_TXN_TIMEOUT_MS),
                                "abort a transaction", eb);
        if (err)
            return err;
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
    nu_err_t err = NU_OK;
    rd_kafka_topic_partition_list_t *offsets = NULL;
    rd_kafka_consumer_group_metadata_t *cgmd = NULL;
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
        nu_stage_txn_done(st);
        st->stats->txns_committed++;
    }
out:
    if (cgmd)
        rd_kafka_consumer_group_metadata_destroy(cgmd);
    rd_kafka_topic_partition_list_destroy(offsets);
    return err;
}

void nu_stage_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                           rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct nu_stage *st = opaque;
    struct nu_errbuf eb;
    nu_errbuf_clear(&eb);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        for (int i = 0; i < parts->cnt; i++) {
            struct nu_part *pt =
                nu_stage_part(st, parts->elems[i].topic, parts->elems[i].partition, true);
            if (!pt)
                continue;
            pt->assigned = true;
            pt->need_init = true;
            pt->need_claim = true;
            pt->claimed = false;
            pt->careful_left = 0;
            pt->dirty = false;
        }
        nu_log(NU_LOG_INFO, "stage", "assigned %d partition(s)", parts->cnt);
        rd_kafka_error_t *e = rd_kafka_incremental_assign(rk, parts);
        if (e && !st->fatal)
            st->fatal = nu_kafka_err_take(e, "assign partitions", &st->fatal_eb);
        else if (e)
            rd_kafka_error_destroy(e);
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
            if (pt->claimed && !lost && !pt->need_init) {
                struct nu_errbuf ceb;
                nu_errbuf_clear(&ceb);
                if (nu_stage_commit_claim(st, pt, pt->crash_off, pt->crash_n - 1, &ceb))
                    nu_log(NU_LOG_WARN, "stage", "could not release a claim: %s", nu_err_msg(&ceb));
            }
            pt->claimed = false;
            pt->assigned = false;
            pt->dirty = false;
        }
        nu_log(NU_LOG_INFO, "stage", "revoked %d partition(s)", parts->cnt);
        rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, parts);
        if (e)
            rd_kafka_error_destroy(e);
        return;
    }
    if (!st->fatal)
        st->fatal =
            nu_err_set(&st->fatal_eb, NU_ERR_KAFKA, "rebalance failed: %s", rd_kafka_err2str(err));
}

nu_err_t nu_stage_check_complete(struct nu_stage *st, bool *complete, struct nu_errbuf *eb)
{
    nu_err_t err = NU_OK;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(32);
    *complete = false;
    /* cheap test first: any partition of ours still open means no */
    for (size_t i = 0; i < st->nparts; i++)
        if (st->parts[i].assigned && !nu_lane_set_complete(&st->parts[i].base))
            goto out;
    for (size_t i = 0; i < st->ninputs; i++)
        for (int p = 0; p < st->inputs[i].partitions; p++)
            rd_kafka_topic_partition_list_add(list, st->inputs[i].topic, p);
    err = nu_stage_committed(st, list, eb);
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
        if (nu_lane_set_decode(&s, st->inputs[in].lanes, tp->metadata, tp->metadata_size,
                               &ignore) ||
            !nu_lane_set_complete(&s))
            goto out;
    }
    *complete = true;
out:
    rd_kafka_topic_partition_list_destroy(list);
    return err;
}
