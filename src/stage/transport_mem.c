/*
 * transport_mem.c — the in-memory broker behind transport.h.
 *
 * One mutex guards the whole broker: topics (partitions holding vectors of immutable records,
 * offset = index), groups (committed offsets with metadata, members, partition owners) and
 * producers (open transactions). A transaction buffers its records and offsets and applies them
 * together at commit, so readers never see records of open or aborted transactions and the
 * offsets move with the records, atomically. A condition variable wakes blocked polls on every
 * change. Records, topics and groups live until the broker is destroyed (a deleted topic is only
 * unlinked), so a record returned by a poll stays valid as the interface promises.
 *
 * Groups: partitions of the subscribed topics go round-robin, in (topic, partition) order, to
 * the live members in the order they joined. Each member moves toward its share on its own
 * polls: it first gives up (revoke callback, then release) what is no longer its share, then
 * takes what is its share and has no owner (assign callback). A partition thus never has two
 * owners, and callbacks run on the member's thread without the broker's lock held.
 * Consumers and groups are in transport_mem_group.c.
 */
#include "common/mem.h"
#include "stage/transport_mem_int.h"

#include <stdlib.h>
#include <string.h>

/* --- helpers (lock held) --------------------------------------------------------------------- */

struct nu_mtopic *nu_mem_topic(struct nu_mem *m, const char *name)
{
    for (struct nu_mtopic *t = m->topics; t; t = t->next)
        if (strcmp(t->name, name) == 0)
            return t;
    return NULL;
}

struct nu_mgroup *nu_mem_group(struct nu_mem *m, const char *name)
{
    for (struct nu_mgroup *g = m->groups; g; g = g->next)
        if (strcmp(g->name, name) == 0)
            return g;
    struct nu_mgroup *g = nu_xcalloc(1, sizeof(*g));
    g->name = nu_xstrdup(name);
    g->next = m->groups;
    m->groups = g;
    return g;
}

struct nu_toffset *nu_mem_committed_find(struct nu_mgroup *g, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < g->committed.n; i++)
        if (g->committed.v[i].partition == partition && strcmp(g->committed.v[i].topic, topic) == 0)
            return &g->committed.v[i];
    return NULL;
}

void nu_mem_commit_one(struct nu_mgroup *g, const struct nu_toffset *o)
{
    struct nu_toffset *c = nu_mem_committed_find(g, o->topic, o->partition);
    if (!c)
        c = nu_toffsets_add(&g->committed, o->topic, o->partition, o->offset, NULL, 0);
    c->offset = o->offset;
    nu_toffsets_set_meta(c, o->meta, o->meta_len);
}

static void *nu_mem_dup(const void *p, size_t n)
{
    void *d = nu_xmalloc(n);
    memcpy(d, p, n);
    return d;
}

static void nu_mem_rec_free(struct nu_mrec *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->r.nheaders; i++) {
        free((char *)r->h[i].name);
        free((char *)r->h[i].value);
    }
    free(r->h);
    free((void *)r->r.key);
    free((void *)r->r.value);
    free(r);
}

/* --- the transport -----------------------------------------------------------------------------
 */

static void nu_mem_topic_free(struct nu_mtopic *t)
{
    for (int p = 0; p < t->nparts; p++) {
        for (size_t i = 0; i < t->parts[p].n; i++)
            nu_mem_rec_free(t->parts[p].recs[i]);
        free(t->parts[p].recs);
    }
    free(t->parts);
    free(t->name);
    free(t);
}

static void nu_mem_destroy(nu_transport_t *tr)
{
    struct nu_mem *m = (struct nu_mem *)tr;
    struct nu_mtopic *lists[2] = {m->topics, m->deleted};
    for (int l = 0; l < 2; l++)
        for (struct nu_mtopic *t = lists[l], *next; t; t = next) {
            next = t->next;
            nu_mem_topic_free(t);
        }
    for (struct nu_mgroup *g = m->groups, *next; g; g = next) {
        next = g->next;
        nu_toffsets_free(&g->committed);
        free(g->members);
        free(g->owners);
        free(g->name);
        free(g);
    }
    pthread_cond_destroy(&m->cv);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

nu_transport_t *nu_transport_mem_new(void)
{
    struct nu_mem *m = nu_xcalloc(1, sizeof(*m));
    pthread_condattr_t ca;
    m->base.ops = &nu_mem_ops;
    pthread_mutex_init(&m->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_cond_init(&m->cv, &ca);
    pthread_condattr_destroy(&ca);
    return &m->base;
}

static nu_err_t nu_mem_topics_create(nu_transport_t *tr, const struct nu_ttopic_spec *specs,
                                     size_t n, int timeout_ms, struct nu_errbuf *eb)
{
    struct nu_mem *m = (struct nu_mem *)tr;
    nu_err_t err = NU_OK;
    (void)timeout_ms;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < n && !err; i++) {
        const struct nu_ttopic_spec *s = &specs[i];
        struct nu_mtopic *t = nu_mem_topic(m, s->name);
        if (s->partitions < 1 || s->partitions > NU_TRANSPORT_MAX_PARTITIONS) {
            err = nu_err_set(eb, NU_ERR_INVALID, "topic \"%s\": %d partitions is not within 1..%d",
                             s->name, s->partitions, NU_TRANSPORT_MAX_PARTITIONS);
        } else if (t && t->nparts < s->partitions) {
            err = nu_err_set(eb, NU_ERR_EXISTS,
                             "topic \"%s\" exists with %d partitions, fewer than the %d needed",
                             s->name, t->nparts, s->partitions);
        } else if (!t) {
            t = nu_xcalloc(1, sizeof(*t));
            t->name = nu_xstrdup(s->name);
            t->nparts = s->partitions;
            t->parts = nu_xcalloc((size_t)s->partitions, sizeof(*t->parts));
            t->next = m->topics;
            m->topics = t;
        }
    }
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
    return err;
}

static nu_err_t nu_mem_topics_delete(nu_transport_t *tr, const char *const *names, size_t n,
                                     int timeout_ms, struct nu_errbuf *eb)
{
    struct nu_mem *m = (struct nu_mem *)tr;
    (void)timeout_ms;
    (void)eb;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < n; i++)
        for (struct nu_mtopic **pp = &m->topics; *pp; pp = &(*pp)->next)
            if (strcmp((*pp)->name, names[i]) == 0) {
                struct nu_mtopic *t = *pp;
                *pp = t->next;
                t->next = m->deleted; /* kept: records handed out stay valid */
                m->deleted = t;
                break;
            }
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
    return NU_OK;
}

/* --- producers ---------------------------------------------------------------------------------
 */

static void nu_mem_txn_drop(struct nu_mproducer *p)
{
    for (size_t i = 0; i < p->npend; i++)
        nu_mem_rec_free(p->pend[i].rec);
    p->npend = 0;
    nu_toffsets_clear(&p->offs);
    p->offs_group = NULL;
    p->in_txn = false;
}

static nu_err_t nu_mem_p_new(nu_transport_t *tr, const struct nu_tproducer_conf *conf,
                             int timeout_ms, nu_tproducer_t **out, struct nu_errbuf *eb)
{
    struct nu_mem *m = (struct nu_mem *)tr;
    struct nu_mproducer *p = nu_xcalloc(1, sizeof(*p));
    (void)timeout_ms;
    (void)eb;
    p->base.ops = &nu_mem_ops;
    p->m = m;
    pthread_mutex_lock(&m->mu);
    if (conf && conf->txn_id) {
        p->txn_id = nu_xstrdup(conf->txn_id);
        /* a newer producer of the same id fences the older one and aborts its transaction */
        for (struct nu_mproducer *o = m->producers; o; o = o->next)
            if (o->txn_id && !o->fenced && strcmp(o->txn_id, conf->txn_id) == 0) {
                o->fenced = true;
                nu_mem_txn_drop(o);
            }
    }
    p->next = m->producers;
    m->producers = p;
    pthread_mutex_unlock(&m->mu);
    *out = &p->base;
    return NU_OK;
}

static void nu_mem_p_destroy(nu_tproducer_t *pp)
{
    struct nu_mproducer *p = (struct nu_mproducer *)pp;
    struct nu_mem *m = p->m;
    pthread_mutex_lock(&m->mu);
    nu_mem_txn_drop(p);
    for (struct nu_mproducer **q = &m->producers; *q; q = &(*q)->next)
        if (*q == p) {
            *q = p->next;
            break;
        }
    pthread_mutex_unlock(&m->mu);
    nu_toffsets_free(&p->offs);
    free(p->pend);
    free(p->txn_id);
    free(p);
}

static uint32_t nu_mem_hash(const void *key, size_t len)
{
    const unsigned char *k = key;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ k[i]) * 16777619u;
    return h;
}

static void nu_mem_append(struct nu_mem *m, struct nu_mtopic *t, int32_t partition,
                          struct nu_mrec *r)
{
    struct nu_mpart *pt = &t->parts[partition];
    if (pt->n == pt->cap) {
        pt->cap = pt->cap ? pt->cap * 2 : 64;
        pt->recs = nu_xrealloc(pt->recs, pt->cap * sizeof(*pt->recs));
    }
    r->r.topic = t->name;
    r->r.partition = partition;
    r->r.offset = (int64_t)pt->n;
    pt->recs[pt->n++] = r;
    (void)m;
}

static nu_err_t nu_mem_p_send(nu_tproducer_t *pp, const char *topic, int32_t partition,
                              const void *key, size_t keylen, const void *value, size_t len,
                              const struct nu_header *h, size_t nh, int timeout_ms,
                              struct nu_errbuf *eb)
{
    struct nu_mproducer *p = (struct nu_mproducer *)pp;
    struct nu_mem *m = p->m;
    nu_err_t err = NU_OK;
    (void)timeout_ms;
    pthread_mutex_lock(&m->mu);
    struct nu_mtopic *t = nu_mem_topic(m, topic);
    if (p->fenced) {
        err = nu_err_set(eb, NU_ERR_FENCED, "producer \"%s\" was fenced by a newer one", p->txn_id);
        goto out;
    }
    if (p->txn_id && !p->in_txn) {
        err = nu_err_set(eb, NU_ERR_STATE,
                         "could not produce to topic \"%s\": no transaction is open", topic);
        goto out;
    }
    if (!t) {
        err = nu_err_set(eb, NU_ERR_NOT_FOUND, "could not produce to topic \"%s\": no such topic",
                         topic);
        goto out;
    }
    if (partition == NU_TPARTITION_ANY)
        partition = (int32_t)((keylen ? nu_mem_hash(key, keylen) : p->rr++) % (uint32_t)t->nparts);
    if (partition < 0 || partition >= t->nparts) {
        err = nu_err_set(eb, NU_ERR_NOT_FOUND, "could not produce to topic \"%s\": no partition %d",
                         topic, (int)partition);
        goto out;
    }
    struct nu_mrec *r = nu_xcalloc(1, sizeof(*r));
    r->r.key = keylen ? nu_mem_dup(key, keylen) : NULL;
    r->r.keylen = keylen;
    r->r.value = len ? nu_mem_dup(value, len) : NULL;
    r->r.len = len;
    r->h = nu_xcalloc(nh ? nh : 1, sizeof(*r->h));
    for (size_t i = 0; i < nh; i++)
        r->h[i] = (struct nu_header){nu_xstrdup(h[i].name),
                                     h[i].len ? nu_mem_dup(h[i].value, h[i].len) : NULL, h[i].len};
    r->r.headers = r->h;
    r->r.nheaders = nh;
    if (!p->txn_id) {
        nu_mem_append(m, t, partition, r);
        pthread_cond_broadcast(&m->cv);
        goto out;
    }
    if (p->npend == p->cappend) {
        p->cappend = p->cappend ? p->cappend * 2 : 64;
        p->pend = nu_xrealloc(p->pend, p->cappend * sizeof(*p->pend));
    }
    p->pend[p->npend++] = (struct nu_mpending){t, partition, r};
out:
    pthread_mutex_unlock(&m->mu);
    return err;
}

static void nu_mem_p_poll(nu_tproducer_t *pp, int timeout_ms)
{
    (void)pp;
    (void)timeout_ms; /* deliveries are synchronous: nothing to serve */
}

static size_t nu_mem_p_queued(nu_tproducer_t *pp)
{
    (void)pp;
    return 0;
}

static nu_err_t nu_mem_p_flush(nu_tproducer_t *pp, int timeout_ms, struct nu_errbuf *eb)
{
    (void)pp;
    (void)timeout_ms;
    (void)eb;
    return NU_OK;
}

/* Lock held: the producer may use a transaction. */
static nu_err_t nu_mem_txn_check(struct nu_mproducer *p, bool open, const char *what,
                                 struct nu_errbuf *eb)
{
    if (!p->txn_id)
        return nu_err_set(eb, NU_ERR_STATE, "could not %s: the producer is not transactional",
                          what);
    if (p->fenced)
        return nu_err_set(eb, NU_ERR_FENCED, "could not %s: producer \"%s\" was fenced", what,
                          p->txn_id);
    if (p->in_txn != open)
        return nu_err_set(eb, NU_ERR_STATE, "could not %s: a transaction is %s", what,
                          open ? "not open" : "already open");
    return NU_OK;
}

static nu_err_t nu_mem_p_begin(nu_tproducer_t *pp, struct nu_errbuf *eb)
{
    struct nu_mproducer *p = (struct nu_mproducer *)pp;
    pthread_mutex_lock(&p->m->mu);
    nu_err_t err = nu_mem_txn_check(p, false, "begin a transaction", eb);
    if (!err)
        p->in_txn = true;
    pthread_mutex_unlock(&p->m->mu);
    return err;
}

static nu_err_t nu_mem_p_send_offsets(nu_tproducer_t *pp, nu_tconsumer_t *cc,
                                      const struct nu_toffsets *offsets, int timeout_ms,
                                      struct nu_errbuf *eb)
{
    struct nu_mproducer *p = (struct nu_mproducer *)pp;
    struct nu_mconsumer *c = (struct nu_mconsumer *)cc;
    (void)timeout_ms;
    pthread_mutex_lock(&p->m->mu);
    nu_err_t err = nu_mem_txn_check(p, true, "send the offsets to the transaction", eb);
    if (!err && p->offs_group && p->offs_group != c->g)
        err = nu_err_set(eb, NU_ERR_STATE, "a transaction carries the offsets of one group");
    for (size_t i = 0; i < offsets->n && !err; i++) {
        const struct nu_toffset *o = &offsets->v[i];
        if (o->meta_len > NU_TRANSPORT_META_MAX) {
            err = nu_err_set(eb, NU_ERR_TOO_LARGE, "offset metadata of %zu bytes is over %d",
                             o->meta_len, NU_TRANSPORT_META_MAX);
            break;
        }
        p->offs_group = c->g;
        nu_toffsets_add(&p->offs, o->topic, o->partition, o->offset, o->meta, o->meta_len);
    }
    pthread_mutex_unlock(&p->m->mu);
    return err;
}

static nu_err_t nu_mem_p_commit(nu_tproducer_t *pp, int timeout_ms, struct nu_errbuf *eb)
{
    struct nu_mproducer *p = (struct nu_mproducer *)pp;
    struct nu_mem *m = p->m;
    (void)timeout_ms;
    pthread_mutex_lock(&m->mu);
    nu_err_t err = nu_mem_txn_check(p, true, "commit the transaction", eb);
    if (!err) {
        /* records and offsets become visible together, under the one lock */
        for (size_t i = 0; i < p->npend; i++) {
            nu_mem_append(m, p->pend[i].t, p->pend[i].partition, p->pend[i].rec);
            p->pend[i].rec = NULL;
        }
        p->npend = 0;
        for (size_t i = 0; i < p->offs.n; i++)
            nu_mem_commit_one(p->offs_group, &p->offs.v[i]);
        nu_mem_txn_drop(p);
        pthread_cond_broadcast(&m->cv);
    }
    pthread_mutex_unlock(&m->mu);
    return err;
}

static nu_err_t nu_mem_p_abort(nu_tproducer_t *pp, int timeout_ms, struct nu_errbuf *eb)
{
    struct nu_mproducer *p = (struct nu_mproducer *)pp;
    (void)timeout_ms;
    pthread_mutex_lock(&p->m->mu);
    nu_err_t err = nu_mem_txn_check(p, true, "abort the transaction", eb);
    if (!err)
        nu_mem_txn_drop(p);
    pthread_mutex_unlock(&p->m->mu);
    return err;
}

const struct nu_transport_ops nu_mem_ops = {
    .name = "memory",
    .destroy = nu_mem_destroy,
    .topics_create = nu_mem_topics_create,
    .topics_delete = nu_mem_topics_delete,
    .p_new = nu_mem_p_new,
    .p_destroy = nu_mem_p_destroy,
    .p_send = nu_mem_p_send,
    .p_poll = nu_mem_p_poll,
    .p_queued = nu_mem_p_queued,
    .p_flush = nu_mem_p_flush,
    .p_begin = nu_mem_p_begin,
    .p_send_offsets = nu_mem_p_send_offsets,
    .p_commit = nu_mem_p_commit,
    .p_abort = nu_mem_p_abort,
    .c_new = nu_mem_c_new,
    .c_destroy = nu_mem_c_destroy,
    .c_subscribe = nu_mem_c_subscribe,
    .c_assign = nu_mem_c_assign,
    .c_poll = nu_mem_c_poll,
    .c_commit = nu_mem_c_commit,
    .c_committed = nu_mem_c_committed,
    .c_seek = nu_mem_c_seek,
    .c_assignment = nu_mem_c_assignment,
    .c_pause = nu_mem_c_pause,
    .c_joined = nu_mem_c_joined,
    .c_watermarks = nu_mem_c_watermarks,
};
