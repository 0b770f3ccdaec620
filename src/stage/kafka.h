/*
 * kafka.h — the one module that wraps librdkafka (layer: stage).
 *
 * It builds client configurations (brokers, our defaults, then the user's `kafka.*` pass-through
 * settings), maps librdkafka's error codes and error objects onto nu_err_t, and runs the Admin
 * API calls the runtime needs (create and delete topics) with bounded waits. Everything else
 * in the stage layer goes through here for those concerns, so librdkafka's ownership rules live
 * in one file: a conf passed to rd_kafka_new() is owned by the client on success only.
 *
 * Thread-safety: functions are reentrant; handles follow librdkafka's own rules.
 */
#ifndef NU_STAGE_KAFKA_H
#define NU_STAGE_KAFKA_H

#include "common/err.h"
#include "common/split.h" /* struct nu_headers */

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>

/* Role of a client: decides the defaults applied before the user's settings. */
typedef enum nu_kafka_role {
    NU_KAFKA_PRODUCER,     /* idempotent producer, acks=all */
    NU_KAFKA_TXN_PRODUCER, /* transactional producer (transactional.id required) */
    NU_KAFKA_CONSUMER,     /* group consumer, read_committed, no auto-commit */
    NU_KAFKA_ADMIN,
} nu_kafka_role_t;

/* A key/value setting passed through to librdkafka (e.g. from `kafka.*` configuration). */
struct nu_kafka_prop {
    const char *key, *value;
};

/*
 * A new client configuration for `role`. `brokers` is required; `props` (may be NULL) are
 * applied last and override our defaults. For NU_KAFKA_TXN_PRODUCER `txn_id` is required, for
 * NU_KAFKA_CONSUMER `group_id` is. Returned owned (rd_kafka_conf_destroy, or hand to rd_kafka_new).
 * Errors: NU_ERR_CONFIG naming the offending property.
 */
nu_err_t nu_kafka_conf_new(nu_kafka_role_t role, const char *brokers, const char *group_id,
                           const char *txn_id, const struct nu_kafka_prop *props, size_t nprops,
                           rd_kafka_conf_t **out, struct nu_errbuf *eb);

/* A client of `role` (conf built as above). Returned owned: rd_kafka_destroy(). */
nu_err_t nu_kafka_client_new(nu_kafka_role_t role, const char *brokers, const char *group_id,
                             const char *txn_id, const struct nu_kafka_prop *props, size_t nprops,
                             rd_kafka_t **out, struct nu_errbuf *eb);

/* Map a response error code; NU_OK for RD_KAFKA_RESP_ERR_NO_ERROR. */
nu_err_t nu_kafka_err_code(rd_kafka_resp_err_t err);
/*
 * Map and consume a transactional error object (destroys `error`; NULL → NU_OK): fenced →
 * NU_ERR_FENCED, fatal → NU_ERR_KAFKA_FATAL, requires abort → NU_ERR_TXN_ABORT, retriable →
 * NU_ERR_KAFKA, other → NU_ERR_KAFKA_FATAL. `what` names the failed step in the message.
 */
nu_err_t nu_kafka_err_take(rd_kafka_error_t *error, const char *what, struct nu_errbuf *eb);

struct nu_kafka_topic_spec {
    const char *name;
    int partitions;
    int replication; /* -1: broker default */
    /* optional topic configs, NULL-terminated key/value array, e.g. {"cleanup.policy","compact",0}
     */
    const char *const *configs;
};

/*
 * Create topics; ones that already exist are accepted when their partition count is at least
 * the one asked for (a smaller existing topic is NU_ERR_EXISTS naming it). Blocks up to
 * `timeout_ms`. Errors: NU_ERR_KAFKA / NU_ERR_TIMEOUT / NU_ERR_INVALID.
 */
nu_err_t nu_kafka_topics_create(rd_kafka_t *rk, const struct nu_kafka_topic_spec *specs, size_t n,
                                int timeout_ms, struct nu_errbuf *eb);
/* Delete topics (missing ones are ignored). Blocks up to `timeout_ms`. */
nu_err_t nu_kafka_topics_delete(rd_kafka_t *rk, const char *const *names, size_t n, int timeout_ms,
                                struct nu_errbuf *eb);
/* Number of partitions of a topic (0 when it does not exist). */
nu_err_t nu_kafka_topic_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms, int *out,
                                   struct nu_errbuf *eb);

/*
 * The committed offsets of the partitions in `list` (topic and partition set) for consumer group
 * `group`, read with any client `rk` through the Admin API (a producer will do): written into
 * `list` — offset (negative when none is committed) and a copy of the metadata.
 * The client need not be a member of the group, and its request does not wait behind a JoinGroup
 * or SyncGroup that a member has pending on its own coordinator connection (the broker answers
 * one request of a connection at a time, and holds a JoinGroup until the rebalance ends).
 * `stable`: ask the broker to refuse partitions with offsets pending in an open transaction
 * (an error then); otherwise such partitions read as their last committed offset. Blocks up to
 * `timeout_ms`. Errors: NU_ERR_TIMEOUT, NU_ERR_KAFKA (also for a partition's own error).
 */
nu_err_t nu_kafka_group_offsets(rd_kafka_t *rk, const char *group,
                                rd_kafka_topic_partition_list_t *list, bool stable, int timeout_ms,
                                struct nu_errbuf *eb);

/*
 * Record headers: a new librdkafka header list holding copies of the `h->n` headers of `h`
 * (borrowed). Returned owned: hand it to a produce call (RD_KAFKA_V_HEADERS, which takes it on
 * success) or rd_kafka_headers_destroy() it.
 */
rd_kafka_headers_t *nu_kafka_headers_new(const struct nu_headers *h);
/*
 * The headers of message `m` (borrowed) as up to `cap` nu_header views into `m` (valid as long
 * as the message). Returns how many were stored; *total (may be NULL) gets how many `m` has.
 */
size_t nu_kafka_headers_view(const rd_kafka_message_t *m, struct nu_header *out, size_t cap,
                             size_t *total);

#endif
