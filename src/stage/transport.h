/*
 * transport.h — the record transport under the stage runtime (layer: stage).
 *
 * What the stage loop, the planner and the local runner need from a Kafka-like cluster, behind
 * one interface, so the same loop can run on Kafka (the product) or on the in-memory broker of
 * transport_mem.c (development and tests without a broker). A transport makes producers and
 * consumers:
 *
 * - a producer writes records (topic, partition or NU_TPARTITION_ANY = hashed by key, key,
 *   value, headers); a transactional one (txn_id set) writes only inside a transaction, which
 *   carries consumer-group offsets with metadata and commits or aborts them with the records;
 *   creating it fences an older producer of the same txn_id and aborts what it left open.
 * - a consumer reads with read_committed isolation (records of open or aborted transactions are
 *   never returned). Subscribed, it joins a group and is told of partitions assigned and revoked
 *   through its rebalance callback, always from inside nu_tconsumer_poll() on the polling
 *   thread; the transport itself applies the change after the callback returns. Assigned
 *   partitions start at the group's committed offset, or at the beginning when none is.
 *
 * The in-memory broker appends a transaction's records at commit, so its offsets are dense:
 * commit markers take no offset there (in Kafka they do; nothing may rely on either).
 *
 * Ownership: lists and records handed in are borrowed and copied. A record returned by a poll
 * is owned by the consumer and lives until its next poll or its destruction.
 * Thread-safety: a transport is thread-safe; each producer and consumer belongs to one thread.
 */
#ifndef NU_STAGE_TRANSPORT_H
#define NU_STAGE_TRANSPORT_H

#include "common/err.h"
#include "common/split.h" /* struct nu_header */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NU_TPARTITION_ANY           (-1) /* produce: choose the partition by a hash of the key */
#define NU_TOFFSET_NONE             (-1) /* committed: nothing committed for the partition */
#define NU_TRANSPORT_META_MAX       4096 /* longest offset metadata */
#define NU_TRANSPORT_MAX_PARTITIONS 10000

typedef struct nu_transport nu_transport_t;
typedef struct nu_tproducer nu_tproducer_t;
typedef struct nu_tconsumer nu_tconsumer_t;

/* A list of partitions, with an offset and metadata each (owned strings). */
struct nu_toffset {
    char *topic;
    int32_t partition;
    int64_t offset;
    char *meta; /* NUL-terminated; NULL when none */
    size_t meta_len;
};
struct nu_toffsets {
    struct nu_toffset *v;
    size_t n, cap;
};
/* Append a copy of topic and meta (meta may be NULL). Returns the new entry. */
struct nu_toffset *nu_toffsets_add(struct nu_toffsets *l, const char *topic, int32_t partition,
                                   int64_t offset, const char *meta, size_t meta_len);
void nu_toffsets_set_meta(struct nu_toffset *o, const char *meta, size_t meta_len);
void nu_toffsets_clear(struct nu_toffsets *l); /* empty it, keep the room */
void nu_toffsets_free(struct nu_toffsets *l);  /* accepts a zeroed list */

/* A record read by a consumer; eof records (no key, no value) mark the end of a partition. */
struct nu_trecord {
    const char *topic;
    int32_t partition;
    int64_t offset; /* eof: the partition's end */
    bool eof;
    const void *key, *value;
    size_t keylen, len;
    const struct nu_header *headers;
    size_t nheaders;
};

struct nu_ttopic_spec {
    const char *name;
    int partitions;
};

typedef enum nu_trebalance {
    NU_TREBALANCE_ASSIGN, /* these partitions are now ours */
    NU_TREBALANCE_REVOKE, /* these are taken away cleanly: finish work on them now */
    NU_TREBALANCE_LOST,   /* these were lost: another member may own them already */
} nu_trebalance_t;

typedef void (*nu_trebalance_fn)(void *opaque, nu_trebalance_t kind,
                                 const struct nu_toffsets *parts);
/* A record failed to be delivered (reported from nu_tproducer_poll/flush on its thread). */
typedef void (*nu_tdelivery_fn)(void *opaque, const char *topic, nu_err_t err, const char *msg);

struct nu_tproducer_conf {
    const char *txn_id;         /* non-NULL: transactional */
    int64_t max_queue_bytes;    /* 0: the transport's default */
    nu_tdelivery_fn on_failure; /* may be NULL */
    void *opaque;
};

struct nu_tconsumer_conf {
    const char *group;       /* required */
    const char *instance_id; /* static membership (may be NULL) */
    int64_t max_prefetch_bytes;
    bool eof;                   /* deliver eof records when a partition's end is reached */
    nu_trebalance_fn rebalance; /* may be NULL */
    void *opaque;
};

/* --- the transport --- */

/* Errors of every function below: NU_ERR_KAFKA (retriable), NU_ERR_KAFKA_FATAL,
 * NU_ERR_TIMEOUT, NU_ERR_NOT_FOUND (no such topic or partition); transactions add
 * NU_ERR_TXN_ABORT (abort, then redo), NU_ERR_FENCED, NU_ERR_STATE (misuse). */

void nu_transport_destroy(nu_transport_t *t);           /* accepts NULL; after its clients */
const char *nu_transport_name(const nu_transport_t *t); /* "kafka" or "memory" */
/* Create topics; existing ones are accepted with at least as many partitions (else
 * NU_ERR_EXISTS). Blocks up to timeout_ms. */
nu_err_t nu_transport_topics_create(nu_transport_t *t, const struct nu_ttopic_spec *specs, size_t n,
                                    int timeout_ms, struct nu_errbuf *eb);
nu_err_t nu_transport_topics_delete(nu_transport_t *t, const char *const *names, size_t n,
                                    int timeout_ms, struct nu_errbuf *eb);

/* --- producers --- */

/* A new producer; a transactional one is ready for nu_tproducer_begin (blocks up to
 * timeout_ms to fence older producers of its txn_id). Returned owned. */
nu_err_t nu_tproducer_new(nu_transport_t *t, const struct nu_tproducer_conf *conf, int timeout_ms,
                          nu_tproducer_t **out, struct nu_errbuf *eb);
void nu_tproducer_destroy(nu_tproducer_t *p); /* accepts NULL; drops what is not delivered */
/* Write one record (everything copied). Waits up to timeout_ms for room in a full queue. */
nu_err_t nu_tproducer_send(nu_tproducer_t *p, const char *topic, int32_t partition, const void *key,
                           size_t keylen, const void *value, size_t len, const struct nu_header *h,
                           size_t nh, int timeout_ms, struct nu_errbuf *eb);
void nu_tproducer_poll(nu_tproducer_t *p, int timeout_ms); /* serve delivery reports */
size_t nu_tproducer_queued(nu_tproducer_t *p);             /* records not yet delivered */
nu_err_t nu_tproducer_flush(nu_tproducer_t *p, int timeout_ms, struct nu_errbuf *eb);
nu_err_t nu_tproducer_begin(nu_tproducer_t *p, struct nu_errbuf *eb);
/* Add the offsets (with metadata) of consumer c's group to the open transaction. */
nu_err_t nu_tproducer_send_offsets(nu_tproducer_t *p, nu_tconsumer_t *c,
                                   const struct nu_toffsets *offsets, int timeout_ms,
                                   struct nu_errbuf *eb);
nu_err_t nu_tproducer_commit(nu_tproducer_t *p, int timeout_ms, struct nu_errbuf *eb);
nu_err_t nu_tproducer_abort(nu_tproducer_t *p, int timeout_ms, struct nu_errbuf *eb);

/* --- consumers --- */

nu_err_t nu_tconsumer_new(nu_transport_t *t, const struct nu_tconsumer_conf *conf,
                          nu_tconsumer_t **out, struct nu_errbuf *eb);
/* Leave the group (revoking what is assigned, through the callback) and free. Accepts NULL. */
void nu_tconsumer_destroy(nu_tconsumer_t *c);
nu_err_t nu_tconsumer_subscribe(nu_tconsumer_t *c, const char *const *topics, size_t n,
                                struct nu_errbuf *eb);
/* Read exactly these partitions from their offsets (negative: the beginning); no group. */
nu_err_t nu_tconsumer_assign(nu_tconsumer_t *c, const struct nu_toffsets *parts,
                             struct nu_errbuf *eb);
/* The next record, or *out NULL after timeout_ms. NU_ERR_KAFKA_FATAL ends the consumer. */
nu_err_t nu_tconsumer_poll(nu_tconsumer_t *c, int timeout_ms, const struct nu_trecord **out,
                           struct nu_errbuf *eb);
/* Done with the record of the last poll: release it now (the next poll would). */
void nu_tconsumer_release(nu_tconsumer_t *c);
/* Commit offsets with metadata for the group, outside any transaction (synchronous). */
nu_err_t nu_tconsumer_commit(nu_tconsumer_t *c, const struct nu_toffsets *offsets,
                             struct nu_errbuf *eb);
/* Fill in the group's committed offset and metadata of each listed partition. */
nu_err_t nu_tconsumer_committed(nu_tconsumer_t *c, struct nu_toffsets *parts, int timeout_ms,
                                struct nu_errbuf *eb);
/* Move to the listed offsets (NU_TOFFSET_NONE: the beginning). */
nu_err_t nu_tconsumer_seek(nu_tconsumer_t *c, const struct nu_toffsets *parts, int timeout_ms,
                           struct nu_errbuf *eb);
/* The partitions assigned now, appended to *out. */
nu_err_t nu_tconsumer_assignment(nu_tconsumer_t *c, struct nu_toffsets *out, struct nu_errbuf *eb);
void nu_tconsumer_pause(nu_tconsumer_t *c, bool pause); /* every assigned partition */
/* Has the consumer joined its group (it has a member id)? */
bool nu_tconsumer_joined(nu_tconsumer_t *c);
/* Low and high watermark of a partition: cached (timeout_ms 0, may fail) or asked for. */
nu_err_t nu_tconsumer_watermarks(nu_tconsumer_t *c, const char *topic, int32_t partition,
                                 int timeout_ms, int64_t *lo, int64_t *hi, struct nu_errbuf *eb);

/* --- implementations --- */

/* The in-memory broker: a fresh, empty cluster. Returned owned. */
nu_transport_t *nu_transport_mem_new(void);

#endif
