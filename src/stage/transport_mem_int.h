/* transport_mem_int.h — internals of the in-memory broker shared by transport_mem*.c. */
#ifndef NU_STAGE_TRANSPORT_MEM_INT_H
#define NU_STAGE_TRANSPORT_MEM_INT_H

#include "stage/transport_int.h"

#include <pthread.h>

struct nu_mrec {
    struct nu_trecord r;
    struct nu_header *h;
};

struct nu_mpart {
    struct nu_mrec **recs;
    size_t n, cap;
};

struct nu_mtopic {
    char *name;
    int nparts;
    struct nu_mpart *parts;
    struct nu_mtopic *next;
};

struct nu_mconsumer;

struct nu_mown {
    struct nu_mtopic *t;
    int32_t partition;
    struct nu_mconsumer *c;
};

struct nu_mgroup {
    char *name;
    struct nu_toffsets committed;
    struct nu_mconsumer **members; /* in join order */
    size_t nmembers, capmembers;
    struct nu_mown *owners;
    size_t nowners, capowners;
    struct nu_mgroup *next;
};

struct nu_mpending {
    struct nu_mtopic *t;
    int32_t partition;
    struct nu_mrec *rec;
};

struct nu_mproducer {
    struct nu_tproducer base;
    struct nu_mem *m;
    char *txn_id;
    bool fenced, in_txn;
    struct nu_mpending *pend;
    size_t npend, cappend;
    struct nu_toffsets offs;
    struct nu_mgroup *offs_group;
    uint32_t rr;
    struct nu_mproducer *next;
};

struct nu_mcpart {
    struct nu_mtopic *t;
    int32_t partition;
    int64_t pos;
    int64_t eof_at; /* position an eof was delivered at (-1: none) */
};

struct nu_mconsumer {
    struct nu_tconsumer base;
    struct nu_mem *m;
    struct nu_mgroup *g;
    nu_trebalance_fn rebalance;
    void *opaque;
    bool eof, subscribed, paused;
    char **topics;
    size_t ntopics;
    struct nu_mcpart *asg;
    size_t nasg, capasg, rr;
    struct nu_trecord eofrec;
};

struct nu_mem {
    struct nu_transport base;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct nu_mtopic *topics, *deleted;
    struct nu_mgroup *groups;
    struct nu_mproducer *producers;
};

extern const struct nu_transport_ops nu_mem_ops;

/* Lock held by the caller for these. */
struct nu_mtopic *nu_mem_topic(struct nu_mem *m, const char *name);
struct nu_mgroup *nu_mem_group(struct nu_mem *m, const char *name); /* created on first use */
struct nu_toffset *nu_mem_committed_find(struct nu_mgroup *g, const char *topic, int32_t partition);
void nu_mem_commit_one(struct nu_mgroup *g, const struct nu_toffset *o);

/* Consumers and groups (transport_mem_group.c). */
nu_err_t nu_mem_c_new(nu_transport_t *tr, const struct nu_tconsumer_conf *conf,
                      nu_tconsumer_t **out, struct nu_errbuf *eb);
void nu_mem_c_destroy(nu_tconsumer_t *cc);
nu_err_t nu_mem_c_subscribe(nu_tconsumer_t *cc, const char *const *topics, size_t n,
                            struct nu_errbuf *eb);
nu_err_t nu_mem_c_assign(nu_tconsumer_t *cc, const struct nu_toffsets *parts, struct nu_errbuf *eb);
nu_err_t nu_mem_c_poll(nu_tconsumer_t *cc, int timeout_ms, const struct nu_trecord **out,
                       struct nu_errbuf *eb);
nu_err_t nu_mem_c_commit(nu_tconsumer_t *cc, const struct nu_toffsets *offsets,
                         struct nu_errbuf *eb);
nu_err_t nu_mem_c_committed(nu_tconsumer_t *cc, struct nu_toffsets *parts, int timeout_ms,
                            struct nu_errbuf *eb);
nu_err_t nu_mem_c_seek(nu_tconsumer_t *cc, const struct nu_toffsets *parts, int timeout_ms,
                       struct nu_errbuf *eb);
nu_err_t nu_mem_c_assignment(nu_tconsumer_t *cc, struct nu_toffsets *out, struct nu_errbuf *eb);
void nu_mem_c_pause(nu_tconsumer_t *cc, bool pause);
bool nu_mem_c_joined(nu_tconsumer_t *cc);
nu_err_t nu_mem_c_watermarks(nu_tconsumer_t *cc, const char *topic, int32_t partition,
                             int timeout_ms, int64_t *lo, int64_t *hi, struct nu_errbuf *eb);

#endif
