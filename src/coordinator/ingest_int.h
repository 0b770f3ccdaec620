/*
 * ingest_int.h — state shared by ingest.c (consumer, assignment, retries) and ingest_write.c
 * (one batch into one transaction). Layer: coordinator, internal.
 */
#ifndef NU_COORDINATOR_INGEST_INT_H
#define NU_COORDINATOR_INGEST_INT_H

#include "coordinator/db.h"
#include "coordinator/ingest.h"

#include <stdatomic.h>
#include <stdbool.h>

struct nu_ingest {
    struct nu_ingest_conf conf; /* strings below are our copies */
    char *brokers, *db_url, *jobs_like;
    rd_kafka_t *rk;
    nu_db_t *db;      /* NULL until connected */
    bool db_ready;    /* connected and the partitions are positioned from the store */
    int backoff_ms;   /* next retry delay */
    int64_t retry_at; /* monotonic ms of the next connection attempt */
    int64_t refresh_at;
    rd_kafka_topic_partition_list_t *assigned; /* NULL: nothing assigned */
    rd_kafka_message_t **msgs;                 /* the batch being gathered */
    size_t nmsgs;
    atomic_uint_fast64_t events, batches, skipped_invalid, skipped_unknown, db_errors, partitions;
};

/* Write the events of ing->msgs and the next offsets of their partitions in one transaction.
 * Errors: NU_ERR_DB (rolled back, retry later) or NU_ERR_DB_FATAL. */
nu_err_t nu_ingest_write(struct nu_ingest *ing, struct nu_errbuf *eb);

#endif
