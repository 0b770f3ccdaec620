/* stage_process.c — one input record: decode, run the operator with retries, produce outputs,
 * lineage and dead letters, and the end-of-stream lanes. A batch the operator declares it passes
 * unchanged skips the operator and the encoder: its output carries the input record's value. */
#include "common/log.h"
#include "common/mem.h"
#include "operators/registry.h"
#include "stage/stage_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NU_STAGE_PRODUCE_TIMEOUT_MS 60000
#define NU_STAGE_MAX_BACKOFF_MS     30000

static double nu_stage_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

nu_err_t nu_stage_produce(struct nu_stage *st, bool aux, const char *topic, int32_t partition,
                          const void *key, size_t keylen, const void *val, size_t len,
                          const struct nu_header *h, size_t nh, struct nu_errbuf *eb)
{
    if (st->tc)
        return nu_tproducer_send(aux ? st->taux : st->tp, topic,
                                 partition < 0 ? NU_TPARTITION_ANY : partition, key, keylen, val,
                                 len, h, nh, NU_STAGE_PRODUCE_TIMEOUT_MS, eb);
    rd_kafka_t *rk = aux ? st->aux : st->p;
    rd_kafka_headers_t *hdrs = NULL;
    if (partition < 0)
        partition = RD_KAFKA_PARTITION_UA;
    if (nh) {
        hdrs = rd_kafka_headers_new(nh);
        for (size_t i = 0; i < nh; i++)
            rd_kafka_header_add(hdrs, h[i].name, -1, h[i].value, (ssize_t)h[i].len);
    }
    double deadline = nu_stage_mono_ms() + NU_STAGE_PRODUCE_TIMEOUT_MS;
    for (;;) {
        rd_kafka_resp_err_t rerr;
        if (hdrs)
            rerr = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                RD_KAFKA_V_KEY(key, keylen), RD_KAFKA_V_VALUE((void *)val, len),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
        else
            rerr =
                rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                                  RD_KAFKA_V_KEY(key, keylen), RD_KAFKA_V_VALUE((void *)val, len),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (rerr == RD_KAFKA_RESP_ERR_NO_ERROR)
            return NU_OK; /* the headers now belong to the message */
        if (rerr == RD_KAFKA_RESP_ERR__QUEUE_FULL && nu_stage_mono_ms() < deadline) {
            /* backpressure: the producer queue is bounded; wait for deliveries */
            rd_kafka_poll(rk, 50);
            continue;
        }
        if (hdrs)
            rd_kafka_headers_destroy(hdrs);
        if (rerr == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE)
            return nu_err_set(eb, NU_ERR_TOO_LARGE,
                              "record of %zu bytes for topic \"%s\" is over the producer's "
                              "message.max.bytes",
                              len, topic);
        return nu_err_set(eb, nu_kafka_err_code(rerr), "could not produce to topic \"%s\": %s",
                          topic, rd_kafka_err2str(rerr));
    }
}

nu_err_t nu_stage_event(struct nu_stage *st, bool aux, json_t *ev, struct nu_errbuf *eb)
{
    nu_event_dump(ev, &st->ev);
    return nu_stage_produce(st, aux, st->events_topic, 0, st->js->id, strlen(st->js->id),
                            st->ev.data, st->ev.len, NULL, 0, eb);
}

static nu_err_t nu_outbox_emit(void *ctx, struct nu_batch *out, struct nu_errbuf *eb)
{
    struct nu_outbox *ob = ctx;
    if (!out)
        return nu_err_set(eb, NU_ERR_INTERNAL, "operator emitted no batch");
    if (ob->n == ob->cap) {
        ob->cap = ob->cap ? ob->cap * 2 : 8;
        ob->b = nu_xrealloc(ob->b, ob->cap * sizeof(*ob->b));
    }
    ob->b[ob->n++] = out;
    return NU_OK;
}

static void nu_outbox_clear(struct nu_outbox *ob)
{
    for (size_t i = 0; i < ob->n; i++)
        nu_batch_destroy(ob->b[i]);
    ob->n = 0;
}

static void nu_stage_op_log(void *log_ctx, enum nu_op_log_level level, const char *msg)
{
    const char *split = log_ctx;
    nu_log((nu_log_level_t)level, "operator", "%s\tsplit=%s", msg, split ? split : "-");
}

void nu_stage_ops_close(struct nu_stage *st)
{
    for (size_t i = 0; i < st->nops; i++) {
        st->op->close(st->ops[i].state);
        nu_schema_unref(st->ops[i].in);
    }
    free(st->ops);
    st->ops = NULL;
    st->nops = 0;
    nu_outbox_clear(&st->outbox);
    free(st->outbox.b);
    st->outbox.b = NULL;
    st->outbox.cap = 0;
}

/* The operator instance for input schema `in`, opened on first use. */
static nu_err_t nu_stage_op_for(struct nu_stage *st, struct nu_schema *in, struct nu_op_inst **out,
                                struct nu_errbuf *eb)
{
    for (size_t i = 0; i < st->nops; i++) {
        if (st->ops[i].in == in || (st->ops[i].in && nu_schema_equal(st->ops[i].in, in))) {
            *out = &st->ops[i];
            return NU_OK;
        }
    }
    struct nu_op_open_args args = {.config = st->js->config,
                                   .in = in,
                                   .job_id = st->job->id,
                                   .stage_id = st->js->id,
                                   .instance = st->o->instance};
    void *state = NULL;
    nu_err_t err = st->op->open(&args, &state, eb);
    if (err)
        return err;
    st->ops = nu_xrealloc(st->ops, (st->nops + 1) * sizeof(*st->ops));
    st->ops[st->nops].in = nu_schema_ref(in);
    st->ops[st->nops].state = state;
    *out = &st->ops[st->nops++];
    return NU_OK;
}

/* Encode the outbox as output splits of input split `parent`, checking every size, then
 * produce them: an output that cannot be written fails the split before anything of it is
 * produced, so the split can be dead-lettered without aborting the transaction. With `pass` (an
 * operator that hands its input on unchanged) the outbox is empty and the one output split is
 * batch `pass` with the input record's own encoded value `pass_val`. */
static nu_err_t nu_stage_emit_outputs(struct nu_stage *st, const char *parent, unsigned attempt,
                                      const struct nu_batch *pass,
                                      const struct nu_trecord *pass_val, int64_t *rows_out,
                                      int64_t *bytes_out, struct nu_errbuf *eb)
{
    nu_err_t err = NU_OK;
    const char *parents[1] = {parent};
    size_t n = pass ? 1 : st->outbox.n;
    if (st->nencs < n) {
        st->encs = nu_xrealloc(st->encs, n * sizeof(*st->encs));
        memset(st->encs + st->nencs, 0, (n - st->nencs) * sizeof(*st->encs));
        st->nencs = n;
    }
    for (size_t k = 0; k < n && !err; k++) {
        struct nu_encoded *e = &st->encs[k];
        const struct nu_batch *b = pass ? pass : st->outbox.b[k];
        err = nu_split_id(st->job->id, st->js->id, parent ? parents : NULL, parent ? 1 : 0,
                          (uint64_t)k, e->id, eb);
        if (!err && pass) {
            e->data = pass_val->value;
            e->len = pass_val->len;
        } else if (!err) {
            err = nu_codec_encode(&st->copts, b, &e->val, eb);
            e->data = e->val.data;
            e->len = e->val.len;
        }
        if (!err && (int64_t)e->len > st->o->max_record_bytes)
            err = nu_err_set(eb, NU_ERR_TOO_LARGE,
                             "output split %s is %zu bytes, over the stage's maximum record "
                             "size of %" PRId64 " bytes (lower the rows per split, or raise "
                             "max.record.bytes together with the broker's message.max.bytes)",
                             e->id, e->len, st->o->max_record_bytes);
        if (!err && st->job->format == NU_FORMAT_JSON)
            err = nu_schema_to_json(b->schema, &e->schema, eb);
    }
    for (size_t k = 0; k < n && !err; k++) {
        struct nu_encoded *e = &st->encs[k];
        const struct nu_batch *b = pass ? pass : st->outbox.b[k];
        struct nu_split_meta meta = {
            .kind = NU_SPLIT_DATA,
            .id = e->id,
            .stage = st->js->id,
            .parents = parent ? (char **)parents : NULL,
            .nparents = parent ? 1 : 0,
            .rows = b->nrows,
            .attempt = attempt,
            .format = (char *)nu_format_name(st->job->format),
            .schema = st->job->format == NU_FORMAT_JSON ? (char *)e->schema.data : NULL};
        err = nu_split_headers_build(&meta, &st->hdrs, eb);
        if (!err)
            err = nu_stage_produce(st, false, st->out_topic, -1, e->id, strlen(e->id), e->data,
                                   e->len, st->hdrs.h, st->hdrs.n, eb);
        if (!err) {
            *rows_out += (int64_t)b->nrows;
            *bytes_out += (int64_t)e->len;
            st->stats->splits_out++;
        }
    }
    return err;
}

/* May input batch `in` skip the operator and go on with its record's encoded value as it is?
 * When the operator declares it passes such batches unchanged, and the stage would not encode
 * them differently: with deflate on, an uncompressed input must still be compressed. */
static bool nu_stage_passes(struct nu_stage *st, struct nu_op_inst *inst, const struct nu_batch *in)
{
    if (st->out_partitions <= 0 || (st->job->format == NU_FORMAT_AVRO && st->copts.deflate))
        return false;
    return nu_op_passes_rows(st->op, inst->state, in->schema);
}

/* What a dead letter is: the whole input record (row < 0) or one row of its split. */
struct nu_dead {
    const struct nu_trecord *m; /* the input record */
    const char *split;          /* its split id (NULL when unreadable) */
    long row;                   /* row index, or -1 for the whole record */
    const void *value;          /* the dead letter's value (the record's own when row < 0) */
    size_t len;
    unsigned attempts;
    nu_err_t cause;
    const char *reason;
};

/* Write one dead letter (the original record's headers first, then ours) plus an error and a
 * dlq event, all with the stage's producer (so inside its transaction). */
static nu_err_t nu_stage_dead_letter_write(struct nu_stage *st, const struct nu_dead *d,
                                           struct nu_errbuf *eb)
{
    nu_err_t err;
    char att[16], part[16], off[32], ts[32], rowbuf[24], key[NU_SPLIT_ID_MAX + 24];
    const struct nu_trecord *m = d->m;
    const char *topic = m->topic;
    size_t nh = 0, cap = (d->row < 0 ? m->nheaders : 0) + 16;
    struct nu_header *hdrs = nu_xcalloc(cap, sizeof(*hdrs));
    snprintf(att, sizeof(att), "%u", d->attempts);
    snprintf(part, sizeof(part), "%" PRId32, m->partition);
    snprintf(off, sizeof(off), "%" PRId64, m->offset);
    snprintf(ts, sizeof(ts), "%" PRId64, nu_event_now_ms());
    snprintf(rowbuf, sizeof(rowbuf), "%ld", d->row);
    if (d->row < 0)
        for (size_t i = 0; i < m->nheaders; i++)
            hdrs[nh++] = m->headers[i];
    const char *const ours[][2] = {
        {"nurion-error", d->reason},    {"nurion-error-code", nu_err_name(d->cause)},
        {"nurion-attempts", att},       {"nurion-dlq-stage", st->js->id},
        {"nurion-source-topic", topic}, {"nurion-source-partition", part},
        {"nurion-source-offset", off},  {"nurion-dlq-time", ts},
    };
    for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++)
        hdrs[nh++] = (struct nu_header){ours[i][0], ours[i][1], strlen(ours[i][1])};
    if (d->row >= 0) {
        const char *split = d->split ? d->split : "";
        hdrs[nh++] = (struct nu_header){"nurion-kind", "row", 3};
        hdrs[nh++] = (struct nu_header){"nurion-split", split, strlen(split)};
        hdrs[nh++] = (struct nu_header){"nurion-row", rowbuf, strlen(rowbuf)};
        snprintf(key, sizeof(key), "%s:%ld", split, d->row);
    }
    const void *k = d->row >= 0 ? key : m->key;
    size_t klen = d->row >= 0 ? strlen(key) : m->keylen;
    err = nu_stage_produce(st, false, st->dlq_topic, 0, k, klen, d->value, d->len, hdrs, nh, eb);
    free(hdrs);
    if (err) {
        nu_err_prefix(eb, "could not write a dead letter to topic \"%s\": ", st->dlq_topic);
        return err;
    }
    st->stats->dead_letters++;
    st->stats->errors++;
    nu_log(NU_LOG_WARN, "stage",
           "dead-lettered %s after %u attempt(s): %s\tsplit=%s row=%ld topic=%s "
           "partition=%" PRId32 " offset=%" PRId64,
           d->row >= 0 ? "a row" : "a split", d->attempts, d->reason, d->split ? d->split : "-",
           d->row, topic, m->partition, m->offset);
    err = nu_stage_event(st, false,
                         nu_event_error(&st->origin, d->split, d->attempts, nu_err_name(d->cause),
                                        d->reason, nu_event_hint(nu_err_name(d->cause), d->reason)),
                         eb);
    if (!err) {
        json_t *ev = nu_event_dlq(&st->origin, d->split ? d->split : "", topic, m->partition,
                                  m->offset, d->attempts, d->reason);
        if (d->row >= 0)
            json_object_set_new(ev, "row", json_integer(d->row));
        err = nu_stage_event(st, false, ev, eb);
    }
    return err;
}

/* The original record goes to the DLQ with the reason. */
static nu_err_t nu_stage_dead_letter(struct nu_stage *st, const struct nu_trecord *m,
                                     const char *split, unsigned attempts, nu_err_t cause,
                                     const char *reason, struct nu_errbuf *eb)
{
    struct nu_dead d = {.m = m,
                        .split = split,
                        .row = -1,
                        .value = m->value,
                        .len = m->len,
                        .attempts = attempts,
                        .cause = cause,
                        .reason = reason};
    return nu_stage_dead_letter_write(st, &d, eb);
}

/* ctx->reject of operators: one row of the current split is set aside for the DLQ. Rejects are
 * held like outputs and written only when the attempt succeeds, so a retried split does not
 * dead-letter the same row twice. */
static nu_err_t nu_stage_reject(void *ctx, const struct nu_batch *in, size_t row, const void *raw,
                                size_t raw_len, const char *reason, struct nu_errbuf *eb)
{
    struct nu_stage *st = ctx;
    struct nu_reject *r;
    if (st->nrejects == st->caprejects) {
        size_t ncap = st->caprejects ? st->caprejects * 2 : 8;
        st->rejects = nu_xrealloc(st->rejects, ncap * sizeof(*st->rejects));
        memset(st->rejects + st->caprejects, 0, (ncap - st->caprejects) * sizeof(*st->rejects));
        st->caprejects = ncap;
    }
    r = &st->rejects[st->nrejects];
    r->row = (long)row;
    snprintf(r->reason, sizeof(r->reason), "%s", reason ? reason : "rejected by the operator");
    nu_buf_reset(&r->value);
    if (raw) {
        nu_buf_append(&r->value, raw, raw_len);
    } else if (in && row < in->nrows) {
        /* the row itself, as one JSON object */
        struct nu_codec_opts jo = {.format = NU_FORMAT_JSON};
        struct nu_batch *one = nu_batch_new(in->schema, 1);
        struct nu_value *dst = nu_batch_add_row(one);
        const struct nu_value *src = nu_batch_row(in, row);
        for (size_t c = 0; c < in->schema->ncols; c++)
            dst[c] = nu_batch_copy_value(one, &src[c]);
        nu_err_t err = nu_codec_encode(&jo, one, &r->value, eb);
        nu_batch_destroy(one);
        if (err)
            return err;
        if (r->value.len && r->value.data[r->value.len - 1] == '\n')
            r->value.len--; /* one JSON object, no line terminator */
    }
    st->nrejects++;
    return NU_OK;
}

/* Write the rejects of a successful attempt. */
static nu_err_t nu_stage_rejects_flush(struct nu_stage *st, const struct nu_trecord *m,
                                       const char *split, unsigned attempt, struct nu_errbuf *eb)
{
    nu_err_t err = NU_OK;
    for (size_t i = 0; i < st->nrejects && !err; i++) {
        struct nu_reject *r = &st->rejects[i];
        struct nu_dead d = {.m = m,
                            .split = split,
                            .row = r->row,
                            .value = r->value.data,
                            .len = r->value.len,
                            .attempts = attempt,
                            .cause = NU_ERR_EVAL,
                            .reason = r->reason};
        err = nu_stage_dead_letter_write(st, &d, eb);
    }
    st->nrejects = 0;
    return err;
}

/* ctx->produce of operators: a record to the job's cluster inside the stage's transaction. */
static nu_err_t nu_stage_op_produce(void *ctx, const char *topic, int32_t partition,
                                    const void *key, size_t keylen, const void *value, size_t len,
                                    const struct nu_op_header *headers, size_t nheaders,
                                    struct nu_errbuf *eb)
{
    struct nu_stage *st = ctx;
    struct nu_headers h = {.n = 0};
    if (nheaders > NU_SPLIT_MAX_HEADERS)
        return nu_err_set(eb, NU_ERR_INVALID, "a record may carry at most %d headers, got %zu",
                          NU_SPLIT_MAX_HEADERS, nheaders);
    for (size_t i = 0; i < nheaders; i++)
        h.h[h.n++] = (struct nu_header){headers[i].name, headers[i].value, headers[i].len};
    if ((int64_t)len > st->o->max_record_bytes)
        return nu_err_set(eb, NU_ERR_TOO_LARGE,
                          "record of %zu bytes for topic \"%s\" is over the stage's maximum "
                          "record size of %" PRId64 " bytes",
                          len, topic, st->o->max_record_bytes);
    return nu_stage_produce(st, false, topic, partition, key, keylen, value, len, h.h, h.n, eb);
}

/* Errors that belong to the record, not to the infrastructure: they dead-letter the split. */
static bool nu_stage_record_error(nu_err_t err)
{
    switch (err) {
    case NU_ERR_KAFKA:
    case NU_ERR_KAFKA_FATAL:
    case NU_ERR_TXN_ABORT:
    case NU_ERR_FENCED:
    case NU_ERR_TIMEOUT:
        return false;
    default:
        return true;
    }
}

static nu_err_t nu_stage_data(struct nu_stage *st, const struct nu_trecord *m,
                              struct nu_split_meta *meta, struct nu_errbuf *eb)
{
    struct nu_batch *in = NULL;
    struct nu_errbuf rec;
    nu_err_t err = NU_OK, rerr = NU_OK;
    unsigned attempt = 0;
    int64_t rows_out = 0, bytes_out = 0;
    double t0 = nu_stage_mono_ms();
    const char *topic = m->topic;
    nu_errbuf_clear(&rec);

    if ((int64_t)m->len > st->o->max_record_bytes) {
        rerr = nu_err_set(&rec, NU_ERR_TOO_LARGE,
                          "input record of %zu bytes is over the stage's maximum record size "
                          "of %" PRId64 " bytes",
                          m->len, st->o->max_record_bytes);
        goto dead;
    }
    rerr = nu_codec_decode_cached(st->cache, st->job->format, m->value, m->len, meta->schema,
                                  meta->schema ? strlen(meta->schema) : 0, &in, &rec);
    if (rerr)
        goto dead;
    st->stats->rows_in += (int64_t)in->nrows;
    struct nu_op_inst *inst = NULL;
    rerr = nu_stage_op_for(st, in->schema, &inst, &rec);
    if (rerr)
        goto dead;
    int max_attempts = st->js->max_attempts > 0 ? st->js->max_attempts : 1;
    /* an operator that would only copy the batch is not called (attempt stays 1) */
    bool pass = nu_stage_passes(st, inst, in);
    for (attempt = 1; !pass; attempt++) {
        struct nu_op_emit emit = {.ctx = &st->outbox, .emit = nu_outbox_emit};
        struct nu_op_batch_ctx ctx = {.split_id = meta->id,
                                      .attempt = attempt,
                                      .scratch = st->scratch,
                                      .log = nu_stage_op_log,
                                      .log_ctx = meta->id,
                                      .reject = nu_stage_reject,
                                      .reject_ctx = st,
                                      .produce = nu_stage_op_produce,
                                      .produce_ctx = st};
        nu_errbuf_clear(&rec);
        rerr = st->op->process(inst->state, &ctx, in, &emit, &rec);
        nu_arena_reset(st->scratch);
        if (!rerr)
            break;
        nu_outbox_clear(&st->outbox); /* a failed attempt's outputs are discarded */
        st->nrejects = 0;             /* and so are its rejected rows */
        if (!nu_err_retriable(rerr) || (int)attempt >= max_attempts)
            goto dead;
        int64_t backoff = (int64_t)st->js->retry_backoff_ms
                          << (attempt - 1 < 16 ? attempt - 1 : 16);
        if (backoff > NU_STAGE_MAX_BACKOFF_MS)
            backoff = NU_STAGE_MAX_BACKOFF_MS;
        nu_log(NU_LOG_WARN, "stage",
               "attempt %u of split failed, retrying in %" PRId64 " ms: %s"
               "\tsplit=%s",
               attempt, backoff, nu_err_msg(&rec), meta->id);
        st->stats->errors++;
        if (st->tc)
            nu_tproducer_poll(st->tp, 0);
        else
            rd_kafka_poll(st->p, 0);
        struct timespec ts = {.tv_sec = backoff / 1000, .tv_nsec = (backoff % 1000) * 1000000};
        nanosleep(&ts, NULL);
    }
    err = nu_stage_emit_outputs(st, meta->id, attempt - 1, pass ? in : NULL, m, &rows_out,
                                &bytes_out, &rec);
    nu_outbox_clear(&st->outbox);
    if (err) {
        if (!nu_stage_record_error(err)) {
            nu_err_set(eb, err, "%s", nu_err_msg(&rec));
            goto out;
        }
        /* an output that cannot be written (too large, bad schema) dead-letters the input */
        rerr = err;
        err = NU_OK;
        goto dead;
    }
    int64_t rejected = (int64_t)st->nrejects;
    err = nu_stage_rejects_flush(st, m, meta->id, attempt, eb);
    if (err)
        goto out;
    st->stats->rows_out += rows_out;
    st->stats->splits_in++;
    {
        char parents[NU_SPLIT_ID_MAX * 4] = "";
        for (size_t i = 0; i < meta->nparents; i++) {
            size_t l = strlen(parents);
            snprintf(parents + l, sizeof(parents) - l, "%s%s", i ? "," : "", meta->parents[i]);
        }
        json_t *ev = nu_event_split_done(&st->origin, meta->id, parents, (int64_t)in->nrows,
                                         rows_out, (int64_t)m->len, bytes_out,
                                         nu_stage_mono_ms() - t0, topic, m->partition, m->offset);
        json_object_set_new(ev, "rows_rejected", json_integer(rejected));
        json_object_set_new(ev, "attempts", json_integer(attempt));
        err = nu_stage_event(st, false, ev, eb);
    }
    goto out;
dead:
    st->nrejects = 0; /* the whole split goes to the DLQ */
    if (!nu_stage_record_error(rerr)) {
        err = nu_err_set(eb, rerr, "%s", nu_err_msg(&rec));
        goto out;
    }
    err = nu_stage_dead_letter(st, m, meta->id, attempt ? attempt : 1, rerr, nu_err_msg(&rec), eb);
out:
    nu_batch_destroy(in);
    return err;
}

/* Input partition complete: sinks flush, eos to every output partition, partition_done. */
static nu_err_t nu_stage_partition_complete(struct nu_stage *st, struct nu_part *pt,
                                            struct nu_errbuf *eb)
{
    nu_err_t err = NU_OK;
    const struct nu_stage_input *in = &st->inputs[pt->input];
    char lane[NU_SPLIT_MAX_LANE + 1], key[NU_SPLIT_MAX_LANE + 8];
    int64_t rows_out = 0, bytes_out = 0;
    nu_lane_name(in->topic, pt->partition, lane, sizeof(lane));
    if (st->op->end_of_partition) {
        for (size_t i = 0; i < st->nops && !err; i++) {
            struct nu_op_emit emit = {.ctx = &st->outbox, .emit = nu_outbox_emit};
            struct nu_op_batch_ctx ctx = {.split_id = NULL,
                                          .attempt = 1,
                                          .scratch = st->scratch,
                                          .log = nu_stage_op_log,
                                          .produce = nu_stage_op_produce,
                                          .produce_ctx = st};
            err = st->op->end_of_partition(st->ops[i].state, &ctx, &emit, eb);
            nu_arena_reset(st->scratch);
        }
        if (!err && st->out_partitions > 0)
            err = nu_stage_emit_outputs(st, NULL, 0, NULL, NULL, &rows_out, &bytes_out, eb);
        nu_outbox_clear(&st->outbox);
        st->stats->rows_out += rows_out;
        if (err)
            return err;
    }
    if (st->out_partitions > 0) {
        struct nu_split_meta meta = {.kind = NU_SPLIT_EOS, .stage = st->js->id, .lane = lane};
        snprintf(key, sizeof(key), "eos:%s", lane);
        err = nu_split_headers_build(&meta, &st->hdrs, eb);
        for (int32_t p = 0; p < st->out_partitions && !err; p++)
            err = nu_stage_produce(st, false, st->out_topic, p, key, strlen(key), NULL, 0,
                                   st->hdrs.h, st->hdrs.n, eb);
    }
    if (!err)
        err = nu_stage_event(st, false,
                             nu_event_partition_done(&st->origin, in->topic, pt->partition), eb);
    if (!err) {
        st->stats->partitions_done++;
        nu_log(NU_LOG_INFO, "stage", "input partition complete\ttopic=%s partition=%" PRId32,
               in->topic, pt->partition);
    }
    return err;
}

static nu_err_t nu_stage_eos(struct nu_stage *st, struct nu_part *pt, struct nu_split_meta *meta,
                             struct nu_errbuf *eb)
{
    const struct nu_stage_input *in = &st->inputs[pt->input];
    uint32_t idx;
    nu_err_t err =
        nu_lane_index(st->job, in->from_stage, in->plan, meta->lane, strlen(meta->lane), &idx, eb);
    if (err)
        return err;
    bool was_complete = nu_lane_set_complete(&pt->lanes);
    nu_lane_set_mark(&pt->lanes, idx);
    if (!was_complete && nu_lane_set_complete(&pt->lanes))
        return nu_stage_partition_complete(st, pt, eb);
    return NU_OK;
}

nu_err_t nu_stage_handle(struct nu_stage *st, const struct nu_trecord *m, struct nu_errbuf *eb)
{
    struct nu_header hv[NU_SPLIT_MAX_HEADERS + 8];
    size_t nh = 0;
    struct nu_split_meta meta;
    struct nu_errbuf rec;
    nu_err_t err = NU_OK;
    const char *topic = m->topic;
    struct nu_part *pt = nu_stage_part(st, topic, m->partition, false);
    memset(&meta, 0, sizeof(meta));
    nu_errbuf_clear(&rec);
    if (!pt || !pt->assigned)
        return NU_OK; /* a late record of a revoked partition: its new owner handles it */
    if (pt->need_init) {
        err = nu_stage_parts_init(st, eb);
        if (err)
            return err;
    }
    if (nu_lane_set_complete(&pt->lanes) && !pt->dirty) {
        /* records after the last lane: only duplicates of an at-least-once upstream */
        pt->next_offset = m->offset + 1;
        pt->dirty = true;
        return NU_OK;
    }
    for (size_t i = 0; nh < sizeof(hv) / sizeof(hv[0]) && i < m->nheaders; i++)
        if (strncmp(m->headers[i].name, "nurion-", 7) == 0)
            hv[nh++] = m->headers[i];
    if (pt->careful_left > 0 && st->in_txn && st->txn_records > 0) {
        /* a careful record starts a transaction of its own */
        err = nu_stage_txn_commit(st, eb);
        if (err)
            return err;
        if (pt->need_init)
            return NU_OK; /* rewound: the record comes again */
    }
    if (!st->in_txn) {
        err = nu_stage_txn_begin(st, eb);
        if (err)
            return err;
    }
    st->stats->records_in++;
    err = nu_split_meta_parse(hv, nh, &meta, &rec);
    if (!err && meta.kind == NU_SPLIT_DATA && pt->careful_left > 0) {
        /* careful mode: this record is processed alone, after claiming its offset */
        int killed = 0;
        pt->careful_left--;
        st->commit_now = true;
        err = nu_stage_claim(st, pt, &killed, eb);
        if (err)
            goto out;
        if (killed >= st->js->max_crashes) {
            char why[256];
            snprintf(why, sizeof(why),
                     "split killed the stage process %d times (max_crashes %d): not processed "
                     "again",
                     killed, st->js->max_crashes);
            pt->crash_off = -1; /* moving past it drops the claim */
            err = nu_stage_dead_letter(st, m, meta.id, (unsigned)killed, NU_ERR_OPERATOR, why, eb);
            goto done;
        }
    }
    if (!err && meta.kind == NU_SPLIT_DATA && pt->careful_left <= 0 && !pt->holding) {
        err = nu_stage_claim_batch(st, pt, eb);
        if (err)
            goto out;
    }
    if (err) {
        err = nu_stage_dead_letter(st, m, NULL, 1, err, nu_err_msg(&rec), eb);
    } else if (meta.kind == NU_SPLIT_EOS) {
        err = nu_stage_eos(st, pt, &meta, &rec);
        if (err == NU_ERR_CORRUPT)
            err = nu_stage_dead_letter(st, m, NULL, 1, err, nu_err_msg(&rec), eb);
        else if (err)
            nu_err_set(eb, err, "%s", nu_err_msg(&rec));
    } else {
        err = nu_stage_data(st, m, &meta, eb);
    }
done:
    nu_split_meta_clear(&meta);
    if (!err && st->in_txn) {
        pt->next_offset = m->offset + 1;
        pt->dirty = true;
        st->txn_records++;
    }
    return err;
out:
    nu_split_meta_clear(&meta);
    return err;
}
