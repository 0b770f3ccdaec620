/*
 * ingest.h — exactly-once ingestion of the jobs' events topics into the store (layer:
 * coordinator).
 *
 * One consumer reads `nurion.<job>._events` of every job the store knows that has not ended (or
 * ended in the last NU_INGEST_RECENT_S seconds), and writes each batch of events in ONE database
 * transaction together with the next offsets of the partitions it read (table ingest_offsets).
 * Offsets live only in PostgreSQL: no Kafka group commits, positions are seeked from the store
 * whenever partitions are assigned. So a crash of either side neither loses nor repeats an
 * event; and rows are inserted with ON CONFLICT DO NOTHING and counters derived from the rows
 * actually inserted, so an event seen twice (an at-least-once stage, a second coordinator) is
 * counted once.
 *
 * Partitions are assigned explicitly (rd_kafka_assign) from the store's list of jobs, re-read
 * every `refresh_ms`, rather than by a regex subscription: no consumer-group rebalances, no
 * database reads inside librdkafka callbacks, and a new job's topic is picked up as soon as the
 * job is in the store and the topic exists.
 *
 * When PostgreSQL fails (connection lost, server down), the batch is rolled back, the partitions
 * are unassigned (fetching stops), and later steps retry with exponential back-off; once a
 * connection is back, the partitions are re-assigned at the stored offsets and ingestion catches
 * up. Malformed events (bad JSON, unknown type, missing or mistyped fields) and events of jobs or
 * stages unknown to the store are skipped, logged and counted, never fatal. An event that the
 * database rejects on its own is skipped the same way, so one bad event cannot stall a topic.
 *
 * Thread-safety: one thread drives an ingester (new / step / destroy); nu_ingest_stats may be
 * called from any thread at any time.
 */
#ifndef NU_COORDINATOR_INGEST_H
#define NU_COORDINATOR_INGEST_H

#include "common/err.h"
#include "stage/kafka.h"

#include <stddef.h>
#include <stdint.h>

#define NU_INGEST_DEFAULT_BATCH      1000 /* events per transaction at most */
#define NU_INGEST_DEFAULT_BATCH_MS   200  /* time a batch is gathered at most */
#define NU_INGEST_DEFAULT_REFRESH_MS 2000 /* how often the job list is re-read */
#define NU_INGEST_DEFAULT_RETRY_MS   5000 /* back-off ceiling after a database failure */
#define NU_INGEST_MAX_BATCH          10000
#define NU_INGEST_MAX_EVENT_BYTES    (1024 * 1024) /* bigger events are malformed */
#define NU_INGEST_RECENT_S           600

struct nu_ingest_conf {
    const char *brokers;               /* required; borrowed for the call */
    const char *db_url;                /* required; borrowed for the call */
    const struct nu_kafka_prop *props; /* kafka.* pass-through (may be NULL) */
    size_t nprops;
    int batch_max;         /* 0: default */
    int batch_ms;          /* 0: default */
    int refresh_ms;        /* 0: default */
    int retry_ms;          /* 0: default */
    const char *jobs_like; /* follow only jobs whose id matches this SQL LIKE pattern (NULL: all) */
};

/* Counters since nu_ingest_new, for /metrics. */
struct nu_ingest_stats {
    uint64_t events;          /* events written to the store */
    uint64_t batches;         /* transactions committed */
    uint64_t skipped_invalid; /* malformed events, and events the database rejected */
    uint64_t skipped_unknown; /* events of jobs or stages the store does not know */
    uint64_t db_errors;       /* failed batches and connection attempts */
    uint64_t partitions;      /* partitions assigned now */
};

typedef struct nu_ingest nu_ingest_t;

/*
 * A new ingester. The database need not be reachable yet (the first steps then retry); a bad
 * configuration is NU_ERR_CONFIG / NU_ERR_INVALID. *out is returned owned (nu_ingest_destroy).
 */
nu_err_t nu_ingest_new(const struct nu_ingest_conf *conf, nu_ingest_t **out, struct nu_errbuf *eb);
/* Accepts NULL; never commits anything to Kafka. Blocks at most about 4 s (closing, then
 * destroying the consumer, each bounded); a consumer that does not shut down in time is left
 * to the exit of the process, with a warning. */
void nu_ingest_destroy(nu_ingest_t *ing);

/*
 * One step: re-read the job list when due, gather one batch (waiting up to `timeout_ms` for the
 * first event, then at most batch_ms for more) and write it. Returns NU_OK (also when there was
 * nothing to do), NU_ERR_DB while the database is unavailable (the step then sleeps up to
 * `timeout_ms` of its back-off; call again), or NU_ERR_KAFKA(_FATAL) for consumer failures.
 */
nu_err_t nu_ingest_step(nu_ingest_t *ing, int timeout_ms, struct nu_errbuf *eb);

void nu_ingest_stats(const nu_ingest_t *ing, struct nu_ingest_stats *out);

#endif
