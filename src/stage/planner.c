/* planner.c — topic provisioning and the transactional plan of each source stage. */
#include "stage/planner.h"

#include "stage/planner_int.h"

#include "common/buf.h"
#include "common/codec.h"
#include "common/mem.h"
#include "common/split.h"
#include "nurion/operator.h"
#include "operators/registry.h"
#include "stage/lanes.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Most headers read from one plan record (ours are NU_SPLIT_MAX_HEADERS). */
#define NU_PLAN_MAX_READ_HEADERS 32

static int64_t nu_plan_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nu_plan_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

size_t nu_plan_topic_list(const struct nu_job *job, struct nu_plan_topic *out)
{
    size_t n = 0;
    for (size_t i = 0; i < job->nstages; i++) {
        const struct nu_job_stage *st = &job->stages[i];
        if (st->kind != NU_OPKIND_SINK) {
            nu_job_topic_output(job, i, out[n].name, sizeof(out[n].name));
            out[n++].partitions = st->partitions;
        }
        if (st->nupstream == 0) {
            nu_job_topic_plan(job, i, out[n].name, sizeof(out[n].name));
            out[n++].partitions = st->partitions;
        }
        nu_job_topic_dlq(job, i, out[n].name, sizeof(out[n].name));
        out[n++].partitions = 1;
    }
    nu_job_topic_events(job, out[n].name, sizeof(out[n].name));
    out[n++].partitions = 1;
    return n;
}

nu_err_t nu_plan_topics(const struct nu_job *job, rd_kafka_t *admin, int timeout_ms,
                        struct nu_errbuf *eb)
{
    struct nu_plan_topic *topics = nu_xcalloc(NU_PLAN_MAX_TOPICS, sizeof(*topics));
    struct nu_kafka_topic_spec *specs = nu_xcalloc(NU_PLAN_MAX_TOPICS, sizeof(*specs));
    size_t n = nu_plan_topic_list(job, topics);
    for (size_t i = 0; i < n; i++)
        specs[i] = (struct nu_kafka_topic_spec){
            .name = topics[i].name, .partitions = topics[i].partitions, .replication = -1};
    /*
     * A topic created moments ago may be reported as existing before the broker's metadata
     * shows its partitions (then it looks too small): ask again until the deadline.
     */
    int64_t deadline = nu_plan_now_ms() + timeout_ms;
    struct nu_errbuf tmp;
    nu_err_t err;
    for (;;) {
        nu_errbuf_clear(&tmp);
        err = nu_kafka_topics_create(admin, specs, n, timeout_ms, &tmp);
        if (err != NU_ERR_EXISTS || nu_plan_now_ms() >= deadline)
            break;
        nu_plan_sleep_ms(250);
    }
    if (err) {
        nu_err_set(eb, err, "%s", nu_err_msg(&tmp));
        nu_err_prefix(eb, "job \"%s\": ", job->id);
    }
    free(specs);
    free(topics);
    return err;
}

bool nu_plan_batch_rows(const struct nu_batch *b, uint64_t *rows)
{
    long c = b && b->schema ? nu_schema_find(b->schema, "count") : -1;
    uint64_t sum = 0;
    *rows = 0;
    if (c < 0 || b->schema->cols[c].type != NU_T_INT64)
        return false;
    for (size_t r = 0; r < b->nrows; r++) {
        const struct nu_value *v = &nu_batch_row(b, r)[c];
        if (v->type == NU_T_INT64 && v->u.i > 0)
            sum += (uint64_t)v->u.i;
    }
    *rows = sum;
    return true;
}

/* --- reading an existing plan ---------------------------------------------------------------- */

bool nu_plan_stage_unbounded(const struct nu_job *job, size_t s)
{
    const struct nu_job_stage *st = &job->stages[s];
    const char *mode = json_string_value(json_object_get(st->config, "mode"));
    return st->nupstream == 0 && mode && strcmp(mode, "unbounded") == 0;
}

void nu_plan_ends_note(json_t *ends, const struct nu_batch *b)
{
    long cp = b && b->schema ? nu_schema_find(b->schema, "partition") : -1;
    long ce = b && b->schema ? nu_schema_find(b->schema, "end_offset") : -1;
    char key[24];
    if (!ends || cp < 0 || ce < 0)
        return;
    for (size_t r = 0; r < b->nrows; r++) {
        const struct nu_value *row = nu_batch_row(b, r);
        if (row[cp].type != NU_T_INT64 || row[ce].type != NU_T_INT64 || row[cp].u.i < 0 ||
            row[ce].u.i < 0)
            continue;
        snprintf(key, sizeof(key), "%lld", (long long)row[cp].u.i);
        json_t *old = json_object_get(ends, key);
        if (!old || json_integer_value(old) < row[ce].u.i)
            json_object_set_new(ends, key, json_integer(row[ce].u.i));
    }
}

/* Account one committed plan record: a data split (counted) or an eos marker; the end offset
 * of each partition a split covers goes to `ends` (may be NULL). */
static void nu_plan_scan_record(const struct nu_job *job, const void *value, size_t len,
                                const struct nu_header *hv, size_t nh, struct nu_plan_count *cnt,
                                bool *eos, json_t *ends)
{
    struct nu_split_meta meta = {0};
    struct nu_errbuf ignore;
    struct nu_batch *b = NULL;
    nu_format_t fmt = job->format;
    uint64_t rows = 0;

    nu_errbuf_clear(&ignore);
    if (nu_split_meta_parse(hv, nh, &meta, &ignore) != NU_OK)
        return; /* not ours: a plan topic holds only our records, so ignore strays */
    if (meta.kind == NU_SPLIT_EOS) {
        *eos = true;
        goto out;
    }
    cnt->splits++;
    if (meta.format)
        nu_format_parse(meta.format, &fmt, &ignore);
    if (nu_codec_decode(fmt, value, len, meta.schema, &b, &ignore) != NU_OK) {
        cnt->rows_known = false;
        goto out;
    }
    nu_plan_ends_note(ends, b);
    if (nu_plan_batch_rows(b, &rows))
        cnt->rows += rows;
    else
        cnt->rows_known = false;
out:
    nu_batch_destroy(b);
    nu_split_meta_clear(&meta);
}

/* Watermarks of one partition, retried while the new topic's metadata propagates. */
static nu_err_t nu_plan_watermarks(rd_kafka_t *c, const char *topic, int32_t p, int64_t *lo,
                                   int64_t *hi, struct nu_errbuf *eb)
{
    int64_t deadline = nu_plan_now_ms() + NU_PLAN_TIMEOUT_MS;
    for (;;) {
        rd_kafka_resp_err_t rerr = rd_kafka_query_watermark_offsets(c, topic, p, lo, hi, 5000);
        if (rerr == RD_KAFKA_RESP_ERR_NO_ERROR)
            return NU_OK;
        if (nu_plan_now_ms() >= deadline)
            return nu_err_set(eb, nu_kafka_err_code(rerr),
                              "could not read the offsets of topic \"%s\" partition %d: %s", topic,
                              (int)p, rd_kafka_err2str(rerr));
        nu_plan_sleep_ms(200);
    }
}

/*
 * Read the committed records of the plan topic of source `s` from the beginning to the end of
 * each partition (partition EOF events mark the end, not idle time): count the plan splits and
 * tell whether an eos marker, hence a committed plan, is there.
 */
nu_err_t nu_plan_scan(const struct nu_job *job, size_t s, const char *brokers,
                      const struct nu_kafka_prop *props, size_t nprops, const char *group,
                      struct nu_plan_count *cnt, bool *eos, json_t *ends, struct nu_errbuf *eb)
{
    const struct nu_job_stage *st = &job->stages[s];
    char topic[NU_JOB_NAME_MAX];
    struct nu_kafka_prop *all = nu_xcalloc(nprops + 1, sizeof(*all));
    bool *done = nu_xcalloc((size_t)st->partitions, sizeof(*done));
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(st->partitions);
    rd_kafka_t *c = NULL;
    nu_err_t err;
    int pending = 0;

    *eos = false;
    memset(cnt, 0, sizeof(*cnt));
    cnt->rows_known = true;
    nu_job_topic_plan(job, s, topic, sizeof(topic));
    all[0] = (struct nu_kafka_prop){"enable.partition.eof", "true"};
    if (nprops)
        memcpy(all + 1, props, nprops * sizeof(*props));
    err = nu_kafka_client_new(NU_KAFKA_CONSUMER, brokers, group, NULL, all, nprops + 1, &c, eb);
    if (err)
        goto out;
    for (int32_t p = 0; p < st->partitions; p++) {
        int64_t lo = 0, hi = 0;
        err = nu_plan_watermarks(c, topic, p, &lo, &hi, eb);
        if (err)
            goto out;
        if (hi <= lo)
            continue; /* empty: nothing to read */
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
        pending++;
    }
    if (pending == 0)
        goto out;
    rd_kafka_resp_err_t rerr = rd_kafka_assign(c, parts);
    if (rerr) {
        err = nu_err_set(eb, nu_kafka_err_code(rerr), "could not read topic \"%s\": %s", topic,
                         rd_kafka_err2str(rerr));
        goto out;
    }
    int64_t deadline = nu_plan_now_ms() + NU_PLAN_TIMEOUT_MS;
    while (pending > 0) {
        if (nu_plan_now_ms() >= deadline) {
            err = nu_err_set(eb, NU_ERR_TIMEOUT,
                             "could not read the plan in topic \"%s\": %d partition%s not read "
                             "to the end in %d ms",
                             topic, pending, pending == 1 ? "" : "s", NU_PLAN_TIMEOUT_MS);
            goto out;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 200);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (m->partition >= 0 && m->partition < st->partitions && !done[m->partition]) {
                done[m->partition] = true;
                pending--;
            }
        } else if (m->err) {
            err = nu_err_set(eb, nu_kafka_err_code(m->err),
                             "could not read the plan in topic \"%s\": %s", topic,
                             rd_kafka_message_errstr(m));
        } else {
            struct nu_header hv[NU_PLAN_MAX_READ_HEADERS];
            size_t nh = nu_kafka_headers_view(m, hv, NU_PLAN_MAX_READ_HEADERS, NULL);
            nu_plan_scan_record(job, m->payload, m->len, hv, nh, cnt, eos, ends);
        }
        rd_kafka_message_destroy(m);
        if (err)
            goto out;
    }
out:
    if (c) {
        rd_kafka_consumer_close(c);
        rd_kafka_destroy(c);
    }
    rd_kafka_topic_partition_list_destroy(parts);
    free(done);
    free(all);
    if (!cnt->splits)
        cnt->rows_known = false;
    return err;
}

/* --- writing a plan -------------------------------------------------------------------------- */

/* Produce one record, waiting for room in the producer queue (bounded). The headers are
 * copied. */
static nu_err_t nu_plan_produce(struct nu_plan_writer *w, int32_t partition, const char *key,
                                const void *val, size_t len, struct nu_errbuf *eb)
{
    if (w->tp) {
        nu_err_t err = nu_tproducer_send(w->tp, w->topic, partition, key, strlen(key), val, len,
                                         w->hdrs.h, w->hdrs.n, NU_PLAN_TIMEOUT_MS, eb);
        if (err)
            nu_err_prefix(eb, "could not write plan split \"%s\" to topic \"%s\": ", key, w->topic);
        return err;
    }
    int64_t deadline = nu_plan_now_ms() + NU_PLAN_TIMEOUT_MS;
    for (;;) {
        rd_kafka_headers_t *h = nu_kafka_headers_new(&w->hdrs);
        rd_kafka_resp_err_t rerr = rd_kafka_producev(
            w->p, RD_KAFKA_V_TOPIC(w->topic), RD_KAFKA_V_PARTITION(partition),
            RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE((void *)val, len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
        if (rerr == RD_KAFKA_RESP_ERR_NO_ERROR) {
            rd_kafka_poll(w->p, 0);
            return NU_OK;
        }
        rd_kafka_headers_destroy(h); /* not taken on failure */
        if (rerr != RD_KAFKA_RESP_ERR__QUEUE_FULL || nu_plan_now_ms() >= deadline)
            return nu_err_set(eb, nu_kafka_err_code(rerr),
                              "could not write plan split \"%s\" to topic \"%s\": %s", key,
                              w->topic, rd_kafka_err2str(rerr));
        rd_kafka_poll(w->p, 100);
    }
}

nu_err_t nu_plan_emit(void *ctx, struct nu_batch *b, struct nu_errbuf *eb)
{
    struct nu_plan_writer *w = ctx;
    const struct nu_job_stage *st = &w->job->stages[w->s];
    char id[NU_SPLIT_ID_MAX];
    uint64_t rows = 0;
    nu_err_t err;

    if (w->position >= NU_PLAN_MAX_SPLITS) {
        err = nu_err_set(eb, NU_ERR_TOO_LARGE, "source \"%s\" planned more than %llu splits",
                         st->id, (unsigned long long)NU_PLAN_MAX_SPLITS);
        goto out;
    }
    err = nu_split_id(w->job->id, st->id, NULL, 0, w->position, id, eb);
    if (err)
        goto out;
    err = nu_codec_encode(&w->copts, b, &w->val, eb);
    if (err)
        goto out;
    if (w->job->format == NU_FORMAT_JSON) {
        err = nu_schema_to_json(b->schema, &w->schema, eb);
        if (err)
            goto out;
    }
    struct nu_split_meta meta = {
        .kind = NU_SPLIT_DATA,
        .id = id,
        .stage = st->id,
        .rows = b->nrows,
        .format = (char *)nu_format_name(w->job->format),
        .schema = w->job->format == NU_FORMAT_JSON ? (char *)w->schema.data : NULL,
    };
    err = nu_split_headers_build(&meta, &w->hdrs, eb);
    if (err)
        goto out;
    err = nu_plan_produce(w, (int32_t)(w->position % (uint64_t)w->partitions), id, w->val.data,
                          w->val.len, eb);
    if (err)
        goto out;
    w->position++;
    w->cnt->splits++;
    nu_plan_ends_note(w->ends, b);
    if (w->cnt->rows_known && nu_plan_batch_rows(b, &rows))
        w->cnt->rows += rows;
    else
        w->cnt->rows_known = false;
out:
    nu_batch_destroy(b);
    return err;
}

nu_err_t nu_plan_write_eos(struct nu_plan_writer *w, struct nu_errbuf *eb)
{
    struct nu_split_meta meta = {
        .kind = NU_SPLIT_EOS,
        .stage = w->job->stages[w->s].id,
        .lane = NU_LANE_PLAN,
        .format = (char *)nu_format_name(w->job->format),
    };
    nu_err_t err = nu_split_headers_build(&meta, &w->hdrs, eb);
    for (int p = 0; p < w->partitions && !err; p++)
        err = nu_plan_produce(w, p, "eos:" NU_LANE_PLAN, "", 0, eb);
    return err;
}

/* Open the source's operator and write its whole plan inside the open transaction. */
static nu_err_t nu_plan_run_operator(struct nu_plan_writer *w, struct nu_errbuf *eb)
{
    const struct nu_job_stage *st = &w->job->stages[w->s];
    const struct nu_operator *op = NULL;
    void *state = NULL;
    nu_err_t err = nu_registry_find(st->op, st->plugin, &op, eb);
    if (err)
        goto out;
    if (op->kind != NU_OPKIND_SOURCE || !op->plan) {
        err = nu_err_set(eb, NU_ERR_SPEC, "operator \"%s\" of stage \"%s\" is not a source", st->op,
                         st->id);
        goto out;
    }
    struct nu_op_open_args args = {
        .config = st->config, .in = NULL, .job_id = w->job->id, .stage_id = st->id};
    err = op->open(&args, &state, eb);
    if (err)
        goto out;
    struct nu_op_emit emit = {.ctx = w, .emit = nu_plan_emit};
    err = op->plan(state, &emit, eb);
    if (!err)
        err = nu_plan_write_eos(w, eb);
out:
    if (op && state)
        op->close(state);
    return err;
}

/* Plan source `s` unless its plan topic already holds a committed plan. */
static nu_err_t nu_plan_source(const struct nu_job *job, size_t s, const char *brokers,
                               const struct nu_kafka_prop *props, size_t nprops,
                               struct nu_plan_count *cnt, struct nu_errbuf *eb)
{
    struct nu_plan_writer w = {.job = job, .s = s, .cnt = cnt};
    char group[NU_JOB_NAME_MAX], txn_id[NU_JOB_NAME_MAX + 16];
    bool eos = false, in_txn = false;
    nu_err_t err;

    nu_job_group(job, s, group, sizeof(group));
    snprintf(txn_id, sizeof(txn_id), "%s.planner", group);
    nu_job_topic_plan(job, s, w.topic, sizeof(w.topic));
    w.partitions = job->stages[s].partitions;
    w.copts.format = job->format;

    err =
        nu_kafka_client_new(NU_KAFKA_TXN_PRODUCER, brokers, NULL, txn_id, props, nprops, &w.p, eb);
    if (err)
        goto out;
    /* fences an older planner and aborts whatever it left open */
    err = nu_kafka_err_take(rd_kafka_init_transactions(w.p, NU_PLAN_TIMEOUT_MS),
                            "initialise the planner's transactions", eb);
    if (err)
        goto out;
    err = nu_plan_scan(job, s, brokers, props, nprops, txn_id, cnt, &eos, NULL, eb);
    if (err || eos) {
        cnt->existed = eos;
        goto out;
    }
    memset(cnt, 0, sizeof(*cnt));
    cnt->rows_known = true;
    err = nu_kafka_err_take(rd_kafka_begin_transaction(w.p), "begin the plan transaction", eb);
    if (err)
        goto out;
    in_txn = true;
    err = nu_plan_run_operator(&w, eb);
    if (err)
        goto out;
    err = nu_kafka_err_take(rd_kafka_commit_transaction(w.p, NU_PLAN_TIMEOUT_MS),
                            "commit the plan transaction", eb);
    in_txn = false;
    if (!cnt->splits)
        cnt->rows_known = false;
out:
    if (w.p) {
        if (in_txn) /* nothing of a failed plan becomes visible */
            rd_kafka_error_destroy(rd_kafka_abort_transaction(w.p, NU_PLAN_TIMEOUT_MS));
        rd_kafka_destroy(w.p);
    }
    if (err)
        nu_err_prefix(eb, "could not plan source \"%s\": ", job->stages[s].id);
    nu_buf_free(&w.val);
    nu_buf_free(&w.schema);
    nu_headers_free(&w.hdrs);
    return err;
}

nu_err_t nu_plan_sources(const struct nu_job *job, const char *brokers,
                         const struct nu_kafka_prop *props, size_t nprops,
                         struct nu_plan_count *counts, struct nu_errbuf *eb)
{
    nu_err_t err = NU_OK;
    if (counts)
        memset(counts, 0, job->nstages * sizeof(*counts));
    for (size_t i = 0; i < job->nstages && !err; i++) {
        struct nu_plan_count cnt = {0};
        if (job->stages[i].nupstream != 0)
            continue;
        if (nu_plan_stage_unbounded(job, i)) {
            cnt.unbounded = true; /* planned by nu_plan_tail() while the job runs */
            if (counts)
                counts[i] = cnt;
            continue;
        }
        err = nu_plan_source(job, i, brokers, props, nprops, &cnt, eb);
        if (counts)
            counts[i] = cnt;
    }
    return err;
}

/* --- the same over a transport (the in-memory broker) ---------------------------------------- */

nu_err_t nu_plan_topics_transport(const struct nu_job *job, nu_transport_t *tr,
                                  struct nu_errbuf *eb)
{
    struct nu_plan_topic *topics = nu_xcalloc(NU_PLAN_MAX_TOPICS, sizeof(*topics));
    struct nu_ttopic_spec *specs = nu_xcalloc(NU_PLAN_MAX_TOPICS, sizeof(*specs));
    size_t n = nu_plan_topic_list(job, topics);
    for (size_t i = 0; i < n; i++)
        specs[i] =
            (struct nu_ttopic_spec){.name = topics[i].name, .partitions = topics[i].partitions};
    nu_err_t err = nu_transport_topics_create(tr, specs, n, NU_PLAN_TIMEOUT_MS, eb);
    if (err)
        nu_err_prefix(eb, "job \"%s\": ", job->id);
    free(specs);
    free(topics);
    return err;
}

/* nu_plan_scan() over a transport: read the plan topic of `s` to the end of each partition. */
static nu_err_t nu_plan_scan_transport(const struct nu_job *job, size_t s, nu_transport_t *tr,
                                       const char *group, struct nu_plan_count *cnt, bool *eos,
                                       struct nu_errbuf *eb)
{
    const struct nu_job_stage *st = &job->stages[s];
    char topic[NU_JOB_NAME_MAX];
    struct nu_toffsets parts = {0};
    struct nu_tconsumer_conf cc = {.group = group, .eof = true};
    nu_tconsumer_t *c = NULL;
    int pending = st->partitions;
    bool *done = nu_xcalloc((size_t)st->partitions, sizeof(*done));
    int64_t deadline = nu_plan_now_ms() + NU_PLAN_TIMEOUT_MS;

    *eos = false;
    memset(cnt, 0, sizeof(*cnt));
    cnt->rows_known = true;
    nu_job_topic_plan(job, s, topic, sizeof(topic));
    for (int32_t p = 0; p < st->partitions; p++)
        nu_toffsets_add(&parts, topic, p, 0, NULL, 0);
    nu_err_t err = nu_tconsumer_new(tr, &cc, &c, eb);
    if (!err)
        err = nu_tconsumer_assign(c, &parts, eb);
    while (!err && pending > 0) {
        const struct nu_trecord *m = NULL;
        if (nu_plan_now_ms() >= deadline) {
            err = nu_err_set(eb, NU_ERR_TIMEOUT, "could not read the plan in topic \"%s\"", topic);
            break;
        }
        err = nu_tconsumer_poll(c, 200, &m, eb);
        if (err || !m)
            continue;
        if (m->eof) {
            if (m->partition >= 0 && m->partition < st->partitions && !done[m->partition]) {
                done[m->partition] = true;
                pending--;
            }
        } else {
            nu_plan_scan_record(job, m->value, m->len, m->headers, m->nheaders, cnt, eos, NULL);
        }
    }
    nu_tconsumer_destroy(c);
    nu_toffsets_free(&parts);
    free(done);
    if (!cnt->splits)
        cnt->rows_known = false;
    return err;
}

static nu_err_t nu_plan_source_transport(const struct nu_job *job, size_t s, nu_transport_t *tr,
                                         struct nu_plan_count *cnt, struct nu_errbuf *eb)
{
    struct nu_plan_writer w = {.job = job, .s = s, .cnt = cnt};
    char group[NU_JOB_NAME_MAX], txn_id[NU_JOB_NAME_MAX + 16];
    bool eos = false, in_txn = false;
    nu_err_t err;

    nu_job_group(job, s, group, sizeof(group));
    snprintf(txn_id, sizeof(txn_id), "%s.planner", group);
    nu_job_topic_plan(job, s, w.topic, sizeof(w.topic));
    w.partitions = job->stages[s].partitions;
    w.copts.format = job->format;

    struct nu_tproducer_conf pc = {.txn_id = txn_id};
    /* fences an older planner and aborts whatever it left open */
    err = nu_tproducer_new(tr, &pc, NU_PLAN_TIMEOUT_MS, &w.tp, eb);
    if (!err)
        err = nu_plan_scan_transport(job, s, tr, txn_id, cnt, &eos, eb);
    if (err || eos) {
        cnt->existed = eos;
        goto out;
    }
    memset(cnt, 0, sizeof(*cnt));
    cnt->rows_known = true;
    err = nu_tproducer_begin(w.tp, eb);
    if (err)
        goto out;
    in_txn = true;
    err = nu_plan_run_operator(&w, eb);
    if (err)
        goto out;
    err = nu_tproducer_commit(w.tp, NU_PLAN_TIMEOUT_MS, eb);
    in_txn = false;
    if (!cnt->splits)
        cnt->rows_known = false;
out:
    if (w.tp) {
        struct nu_errbuf ignore;
        nu_errbuf_clear(&ignore);
        if (in_txn) /* nothing of a failed plan becomes visible */
            nu_tproducer_abort(w.tp, NU_PLAN_TIMEOUT_MS, &ignore);
        nu_tproducer_destroy(w.tp);
    }
    if (err)
        nu_err_prefix(eb, "could not plan source \"%s\": ", job->stages[s].id);
    nu_buf_free(&w.val);
    nu_buf_free(&w.schema);
    nu_headers_free(&w.hdrs);
    return err;
}

nu_err_t nu_plan_sources_transport(const struct nu_job *job, nu_transport_t *tr,
                                   struct nu_plan_count *counts, struct nu_errbuf *eb)
{
    nu_err_t err = NU_OK;
    if (counts)
        memset(counts, 0, job->nstages * sizeof(*counts));
    for (size_t i = 0; i < job->nstages && !err; i++) {
        struct nu_plan_count cnt = {0};
        if (job->stages[i].nupstream != 0)
            continue;
        err = nu_plan_source_transport(job, i, tr, &cnt, eb);
        if (counts)
            counts[i] = cnt;
    }
    return err;
}
