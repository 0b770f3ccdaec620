/* kafka.c — librdkafka configuration, error mapping and Admin API calls. */
#include "stage/kafka.h"

#include "common/log.h"
#include "common/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NU_KAFKA_ERRSTR 512

/* librdkafka's internal log lines, routed into ours (called from librdkafka threads). */
static void nu_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    nu_log_level_t l = level <= 3   ? NU_LOG_ERROR
                       : level <= 4 ? NU_LOG_WARN
                       : level <= 6 ? NU_LOG_INFO
                                    : NU_LOG_DEBUG;
    if (l == NU_LOG_DEBUG && !nu_log_debug_on("kafka"))
        return;
    nu_log(l, "rdkafka", "%s\tclient=%s facility=%s", buf, rk ? rd_kafka_name(rk) : "-", fac);
}

static nu_err_t nu_kafka_set(rd_kafka_conf_t *conf, const char *k, const char *v,
                             struct nu_errbuf *eb)
{
    char errstr[NU_KAFKA_ERRSTR];
    if (rd_kafka_conf_set(conf, k, v, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
        return nu_err_set(eb, NU_ERR_CONFIG, "invalid Kafka setting \"%s\": %s", k, errstr);
    return NU_OK;
}

nu_err_t nu_kafka_conf_new(nu_kafka_role_t role, const char *brokers, const char *group_id,
                           const char *txn_id, const struct nu_kafka_prop *props, size_t nprops,
                           rd_kafka_conf_t **out, struct nu_errbuf *eb)
{
    nu_err_t err = NU_OK;
    rd_kafka_conf_t *conf = NULL;
    *out = NULL;
    if (!brokers || !*brokers) {
        err = nu_err_set(eb, NU_ERR_CONFIG,
                         "no Kafka brokers given (set NURION_BROKERS or pass --brokers)");
        goto out;
    }
    if (role == NU_KAFKA_TXN_PRODUCER && (!txn_id || !*txn_id)) {
        err = nu_err_set(eb, NU_ERR_INVALID, "a transactional producer needs a transactional.id");
        goto out;
    }
    if (role == NU_KAFKA_CONSUMER && (!group_id || !*group_id)) {
        err = nu_err_set(eb, NU_ERR_INVALID, "a consumer needs a group.id");
        goto out;
    }
    conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, nu_kafka_log_cb);

    const char *const common[][2] = {
        {"bootstrap.servers", brokers},
        {"client.id", "nurion"},
        {"socket.keepalive.enable", "true"},
        {"broker.address.family", "v4"},
    };
    const char *const producer[][2] = {
        {"enable.idempotence", "true"},
        {"acks", "all"},
        {"linger.ms", "5"},
        {"message.max.bytes", "1048576"},
    };
    const char *const consumer[][2] = {
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"isolation.level", "read_committed"},
        {"auto.offset.reset", "earliest"},
        /* eager round-robin: librdkafka 2.0.2's cooperative-sticky assignor can abort the
         * process (assertion on assignor_state) when members come and go quickly */
        {"partition.assignment.strategy", "roundrobin"},
        /* a member that died is noticed in 10 s (static members restart well before) */
        {"session.timeout.ms", "10000"},
        {"heartbeat.interval.ms", "1000"},
    };
    for (size_t i = 0; i < sizeof(common) / sizeof(common[0]) && !err; i++)
        err = nu_kafka_set(conf, common[i][0], common[i][1], eb);
    if (role == NU_KAFKA_PRODUCER || role == NU_KAFKA_TXN_PRODUCER)
        for (size_t i = 0; i < sizeof(producer) / sizeof(producer[0]) && !err; i++)
            err = nu_kafka_set(conf, producer[i][0], producer[i][1], eb);
    if (role == NU_KAFKA_TXN_PRODUCER && !err) {
        err = nu_kafka_set(conf, "transactional.id", txn_id, eb);
        if (!err)
            err = nu_kafka_set(conf, "transaction.timeout.ms", "60000", eb);
    }
    if (role == NU_KAFKA_CONSUMER) {
        for (size_t i = 0; i < sizeof(consumer) / sizeof(consumer[0]) && !err; i++)
            err = nu_kafka_set(conf, consumer[i][0], consumer[i][1], eb);
        if (!err)
            err = nu_kafka_set(conf, "group.id", group_id, eb);
    }
    for (size_t i = 0; i < nprops && !err; i++)
        err = nu_kafka_set(conf, props[i].key, props[i].value, eb);
    if (err)
        goto out;
    *out = conf;
    conf = NULL;
out:
    if (conf)
        rd_kafka_conf_destroy(conf);
    return err;
}

nu_err_t nu_kafka_client_new(nu_kafka_role_t role, const char *brokers, const char *group_id,
                             const char *txn_id, const struct nu_kafka_prop *props, size_t nprops,
                             rd_kafka_t **out, struct nu_errbuf *eb)
{
    char errstr[NU_KAFKA_ERRSTR];
    rd_kafka_conf_t *conf = NULL;
    *out = NULL;
    nu_err_t err = nu_kafka_conf_new(role, brokers, group_id, txn_id, props, nprops, &conf, eb);
    if (err)
        return err;
    rd_kafka_type_t type = role == NU_KAFKA_CONSUMER ? RD_KAFKA_CONSUMER : RD_KAFKA_PRODUCER;
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
    if (!rk) {
        rd_kafka_conf_destroy(conf); /* not owned by librdkafka on failure */
        return nu_err_set(eb, NU_ERR_CONFIG, "could not create Kafka client: %s", errstr);
    }
    *out = rk;
    return NU_OK;
}

nu_err_t nu_kafka_err_code(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
        return NU_OK;
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
        return NU_ERR_TIMEOUT;
    case RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS:
        return NU_ERR_EXISTS;
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
        return NU_ERR_NOT_FOUND;
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
        return NU_ERR_TOO_LARGE;
    case RD_KAFKA_RESP_ERR_PRODUCER_FENCED:
    case RD_KAFKA_RESP_ERR__FENCED:
    case RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH:
        return NU_ERR_FENCED;
    case RD_KAFKA_RESP_ERR_INVALID_PARTITIONS:
    case RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR:
    case RD_KAFKA_RESP_ERR_INVALID_CONFIG:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
        return NU_ERR_INVALID;
    case RD_KAFKA_RESP_ERR__FATAL:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
        return NU_ERR_KAFKA_FATAL;
    default:
        return NU_ERR_KAFKA;
    }
}

nu_err_t nu_kafka_err_take(rd_kafka_error_t *error, const char *what, struct nu_errbuf *eb)
{
    nu_err_t err;
    if (!error)
        return NU_OK;
    rd_kafka_resp_err_t code = rd_kafka_error_code(error);
    if (code == RD_KAFKA_RESP_ERR__FENCED || code == RD_KAFKA_RESP_ERR_PRODUCER_FENCED)
        err = NU_ERR_FENCED;
    else if (rd_kafka_error_is_fatal(error))
        err = NU_ERR_KAFKA_FATAL;
    else if (rd_kafka_error_txn_requires_abort(error))
        err = NU_ERR_TXN_ABORT;
    else if (rd_kafka_error_is_retriable(error))
        err = NU_ERR_KAFKA;
    else if (code == RD_KAFKA_RESP_ERR__TIMED_OUT)
        err = NU_ERR_TIMEOUT;
    else
        err = NU_ERR_KAFKA_FATAL;
    nu_err_set(eb, err, "could not %s: %s (%s)", what, rd_kafka_error_string(error),
               rd_kafka_error_name(error));
    rd_kafka_error_destroy(error);
    return err;
}

/* Wait for one Admin result event on `q`; returned owned (rd_kafka_event_destroy). */
static nu_err_t nu_kafka_admin_wait(rd_kafka_queue_t *q, int timeout_ms, const char *what,
                                    rd_kafka_event_t **out, struct nu_errbuf *eb)
{
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 1000);
    *out = NULL;
    if (!ev)
        return nu_err_set(eb, NU_ERR_TIMEOUT, "could not %s: no answer from the broker in %d ms",
                          what, timeout_ms);
    if (rd_kafka_event_error(ev)) {
        nu_err_t err = nu_err_set(eb, nu_kafka_err_code(rd_kafka_event_error(ev)),
                                  "could not %s: %s", what, rd_kafka_event_error_string(ev));
        rd_kafka_event_destroy(ev);
        return err ? err : NU_ERR_KAFKA;
    }
    *out = ev;
    return NU_OK;
}

nu_err_t nu_kafka_topic_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms, int *out,
                                   struct nu_errbuf *eb)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    *out = 0;
    rd_kafka_resp_err_t rerr = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
    rd_kafka_topic_destroy(rkt);
    if (rerr)
        return nu_err_set(eb, nu_kafka_err_code(rerr),
                          "could not read metadata of topic \"%s\": %s", topic,
                          rd_kafka_err2str(rerr));
    if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
        *out = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    return NU_OK;
}

nu_err_t nu_kafka_topics_create(rd_kafka_t *rk, const struct nu_kafka_topic_spec *specs, size_t n,
                                int timeout_ms, struct nu_errbuf *eb)
{
    nu_err_t err = NU_OK;
    char errstr[NU_KAFKA_ERRSTR];
    rd_kafka_NewTopic_t **nts = nu_xcalloc(n ? n : 1, sizeof(*nts));
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_event_t *ev = NULL;

    rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, errstr, sizeof(errstr));
    rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, errstr, sizeof(errstr));
    for (size_t i = 0; i < n; i++) {
        nts[i] = rd_kafka_NewTopic_new(specs[i].name, specs[i].partitions,
                                       specs[i].replication ? specs[i].replication : -1, errstr,
                                       sizeof(errstr));
        if (!nts[i]) {
            err = nu_err_set(eb, NU_ERR_INVALID, "invalid topic \"%s\": %s", specs[i].name, errstr);
            goto out;
        }
        for (const char *const *c = specs[i].configs; c && c[0]; c += 2)
            rd_kafka_NewTopic_set_config(nts[i], c[0], c[1]);
    }
    rd_kafka_CreateTopics(rk, nts, n, opts, q);
    err = nu_kafka_admin_wait(q, timeout_ms, "create topics", &ev, eb);
    if (err)
        goto out;
    size_t cnt = 0;
    const rd_kafka_topic_result_t **res =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
    for (size_t i = 0; i < cnt && !err; i++) {
        rd_kafka_resp_err_t rerr = rd_kafka_topic_result_error(res[i]);
        const char *name = rd_kafka_topic_result_name(res[i]);
        if (rerr == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            int want = 0, have = 0;
            for (size_t j = 0; j < n; j++)
                if (strcmp(specs[j].name, name) == 0)
                    want = specs[j].partitions;
            err = nu_kafka_topic_partitions(rk, name, timeout_ms, &have, eb);
            if (!err && have < want)
                err = nu_err_set(eb, NU_ERR_EXISTS,
                                 "topic \"%s\" already exists with %d partitions, fewer than the "
                                 "%d needed",
                                 name, have, want);
        } else if (rerr) {
            const char *msg = rd_kafka_topic_result_error_string(res[i]);
            err = nu_err_set(eb, nu_kafka_err_code(rerr), "could not create topic \"%s\": %s", name,
                             msg ? msg : rd_kafka_err2str(rerr));
        }
    }
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    for (size_t i = 0; i < n; i++)
        if (nts[i])
            rd_kafka_NewTopic_destroy(nts[i]);
    free(nts);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    return err;
}

nu_err_t nu_kafka_topics_delete(rd_kafka_t *rk, const char *const *names, size_t n, int timeout_ms,
                                struct nu_errbuf *eb)
{
    nu_err_t err = NU_OK;
    char errstr[NU_KAFKA_ERRSTR];
    rd_kafka_DeleteTopic_t **dts = nu_xcalloc(n ? n : 1, sizeof(*dts));
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DELETETOPICS);
    rd_kafka_event_t *ev = NULL;
    rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, errstr, sizeof(errstr));
    rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, errstr, sizeof(errstr));
    for (size_t i = 0; i < n; i++)
        dts[i] = rd_kafka_DeleteTopic_new(names[i]);
    rd_kafka_DeleteTopics(rk, dts, n, opts, q);
    err = nu_kafka_admin_wait(q, timeout_ms, "delete topics", &ev, eb);
    if (err)
        goto out;
    size_t cnt = 0;
    const rd_kafka_topic_result_t **res =
        rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &cnt);
    for (size_t i = 0; i < cnt && !err; i++) {
        rd_kafka_resp_err_t rerr = rd_kafka_topic_result_error(res[i]);
        if (rerr && rerr != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
            err = nu_err_set(eb, nu_kafka_err_code(rerr), "could not delete topic \"%s\": %s",
                             rd_kafka_topic_result_name(res[i]), rd_kafka_err2str(rerr));
    }
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    for (size_t i = 0; i < n; i++)
        rd_kafka_DeleteTopic_destroy(dts[i]);
    free(dts);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    return err;
}

nu_err_t nu_kafka_group_offsets(rd_kafka_t *rk, const char *group,
                                rd_kafka_topic_partition_list_t *list, bool stable, int timeout_ms,
                                struct nu_errbuf *eb)
{
    nu_err_t err = NU_OK;
    char errstr[NU_KAFKA_ERRSTR];
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opts =
        rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS);
    rd_kafka_ListConsumerGroupOffsets_t *req = rd_kafka_ListConsumerGroupOffsets_new(group, list);
    rd_kafka_event_t *ev = NULL;
    rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, errstr, sizeof(errstr));
    rd_kafka_error_t *e = rd_kafka_AdminOptions_set_require_stable_offsets(opts, stable);
    if (e)
        rd_kafka_error_destroy(e); /* only fails for an operation that has no such option */
    rd_kafka_ListConsumerGroupOffsets(rk, &req, 1, opts, q);
    ev = rd_kafka_queue_poll(q, timeout_ms);
    if (!ev) {
        err = nu_err_set(eb, NU_ERR_TIMEOUT,
                         "could not read the committed offsets of group \"%s\": no answer in %d ms",
                         group, timeout_ms);
        goto out;
    }
    if (rd_kafka_event_error(ev)) {
        err = nu_kafka_err_code(rd_kafka_event_error(ev));
        err = nu_err_set(eb, err == NU_ERR_TIMEOUT ? err : NU_ERR_KAFKA,
                         "could not read the committed offsets of group \"%s\": %s", group,
                         rd_kafka_event_error_string(ev));
        goto out;
    }
    size_t cnt = 0;
    const rd_kafka_group_result_t **res = rd_kafka_ListConsumerGroupOffsets_result_groups(
        rd_kafka_event_ListConsumerGroupOffsets_result(ev), &cnt);
    const rd_kafka_error_t *gerr = cnt == 1 ? rd_kafka_group_result_error(res[0]) : NULL;
    const rd_kafka_topic_partition_list_t *got =
        cnt == 1 && !gerr ? rd_kafka_group_result_partitions(res[0]) : NULL;
    if (!got) {
        err =
            nu_err_set(eb, NU_ERR_KAFKA, "could not read the committed offsets of group \"%s\": %s",
                       group, gerr ? rd_kafka_error_string(gerr) : "no result for the group");
        goto out;
    }
    for (int i = 0; i < list->cnt && !err; i++) {
        rd_kafka_topic_partition_t *tp = &list->elems[i];
        const rd_kafka_topic_partition_t *g = NULL;
        for (int k = 0; k < got->cnt && !g; k++)
            if (got->elems[k].partition == tp->partition &&
                strcmp(got->elems[k].topic, tp->topic) == 0)
                g = &got->elems[k];
        if (!g || g->err) {
            err = nu_err_set(eb, NU_ERR_KAFKA,
                             "could not read the committed offset of partition %s:%d of group "
                             "\"%s\": %s",
                             tp->topic, (int)tp->partition, group,
                             g ? rd_kafka_err2str(g->err) : "missing from the answer");
            break;
        }
        tp->offset = g->offset;
        free(tp->metadata); /* the list frees its metadata with free() */
        tp->metadata = NULL;
        tp->metadata_size = 0;
        if (g->metadata_size > 0 && g->metadata) {
            tp->metadata = nu_xmalloc(g->metadata_size);
            memcpy(tp->metadata, g->metadata, g->metadata_size);
            tp->metadata_size = g->metadata_size;
        }
    }
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_ListConsumerGroupOffsets_destroy(req);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    return err;
}

rd_kafka_headers_t *nu_kafka_headers_new(const struct nu_headers *h)
{
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(h->n ? h->n : 1);
    for (size_t i = 0; i < h->n; i++)
        rd_kafka_header_add(hdrs, h->h[i].name, -1, h->h[i].value, (ssize_t)h->h[i].len);
    return hdrs;
}

size_t nu_kafka_headers_view(const rd_kafka_message_t *m, struct nu_header *out, size_t cap,
                             size_t *total)
{
    rd_kafka_headers_t *hdrs = NULL;
    size_t n = 0, all = 0;
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char *name;
        const void *val;
        size_t len;
        for (size_t i = 0;
             rd_kafka_header_get_all(hdrs, i, &name, &val, &len) == RD_KAFKA_RESP_ERR_NO_ERROR;
             i++) {
            all++;
            if (n < cap)
                out[n++] = (struct nu_header){.name = name, .value = val, .len = len};
        }
    }
    if (total)
        *total = all;
    return n;
}
