/* transport_mem_group.c — consumers and groups of the in-memory broker (see transport_mem.c). */
#include "common/mem.h"
#include "stage/transport_mem_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct nu_mown *nu_mem_owner(struct nu_mgroup *g, struct nu_mtopic *t, int32_t partition)
{
    for (size_t i = 0; i < g->nowners; i++)
        if (g->owners[i].t == t && g->owners[i].partition == partition)
            return &g->owners[i];
    if (g->nowners == g->capowners) {
        g->capowners = g->capowners ? g->capowners * 2 : 16;
        g->owners = nu_xrealloc(g->owners, g->capowners * sizeof(*g->owners));
    }
    g->owners[g->nowners] = (struct nu_mown){t, partition, NULL};
    return &g->owners[g->nowners++];
}

static bool nu_mem_subscribes(const struct nu_mconsumer *c, const char *topic)
{
    for (size_t i = 0; i < c->ntopics; i++)
        if (strcmp(c->topics[i], topic) == 0)
            return true;
    return false;
}

static int nu_mem_topic_cmp(const void *a, const void *b)
{
    return strcmp((*(struct nu_mtopic *const *)a)->name, (*(struct nu_mtopic *const *)b)->name);
}

/* The partitions that are c's share of its group now, appended to `out` (topic pointers in
 * `out->v[i].meta` are not used; the topic is found again by name). */
static void nu_mem_share(struct nu_mem *m, struct nu_mconsumer *c, struct nu_toffsets *out)
{
    struct nu_mgroup *g = c->g;
    size_t nt = 0, k = 0;
    for (struct nu_mtopic *t = m->topics; t; t = t->next)
        nt++;
    struct nu_mtopic **ts = nu_xcalloc(nt ? nt : 1, sizeof(*ts));
    nt = 0;
    for (struct nu_mtopic *t = m->topics; t; t = t->next)
        ts[nt++] = t;
    qsort(ts, nt, sizeof(*ts), nu_mem_topic_cmp);
    struct nu_mconsumer **elig = nu_xcalloc(g->nmembers ? g->nmembers : 1, sizeof(*elig));
    for (size_t i = 0; i < nt; i++) {
        size_t ne = 0;
        for (size_t j = 0; j < g->nmembers; j++)
            if (g->members[j]->subscribed && nu_mem_subscribes(g->members[j], ts[i]->name))
                elig[ne++] = g->members[j];
        if (ne == 0)
            continue;
        for (int32_t p = 0; p < ts[i]->nparts; p++, k++)
            if (elig[k % ne] == c)
                nu_toffsets_add(out, ts[i]->name, p, 0, NULL, 0);
    }
    free(elig);
    free(ts);
}

static bool nu_mem_in(const struct nu_toffsets *l, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].partition == partition && strcmp(l->v[i].topic, topic) == 0)
            return true;
    return false;
}

static void nu_mem_deadline(struct timespec *ts, int timeout_ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += timeout_ms / 1000;
    ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* --- consumers ---------------------------------------------------------------------------------
 */

nu_err_t nu_mem_c_new(nu_transport_t *tr, const struct nu_tconsumer_conf *conf,
                      nu_tconsumer_t **out, struct nu_errbuf *eb)
{
    struct nu_mem *m = (struct nu_mem *)tr;
    struct nu_mconsumer *c = nu_xcalloc(1, sizeof(*c));
    (void)eb;
    c->base.ops = &nu_mem_ops;
    c->m = m;
    c->rebalance = conf->rebalance;
    c->opaque = conf->opaque;
    c->eof = conf->eof;
    pthread_mutex_lock(&m->mu);
    c->g = nu_mem_group(m, conf->group);
    pthread_mutex_unlock(&m->mu);
    *out = &c->base;
    return NU_OK;
}

static void nu_mem_asg_add(struct nu_mconsumer *c, struct nu_mtopic *t, int32_t partition,
                           int64_t pos)
{
    if (c->nasg == c->capasg) {
        c->capasg = c->capasg ? c->capasg * 2 : 16;
        c->asg = nu_xrealloc(c->asg, c->capasg * sizeof(*c->asg));
    }
    c->asg[c->nasg++] = (struct nu_mcpart){t, partition, pos < 0 ? 0 : pos, -1};
}

static struct nu_mcpart *nu_mem_asg_find(struct nu_mconsumer *c, const char *topic,
                                         int32_t partition)
{
    for (size_t i = 0; i < c->nasg; i++)
        if (c->asg[i].partition == partition && strcmp(c->asg[i].t->name, topic) == 0)
            return &c->asg[i];
    return NULL;
}

/* Give up `parts` (lock held): drop them from the assignment and release their ownership. */
static void nu_mem_release(struct nu_mconsumer *c, const struct nu_toffsets *parts)
{
    for (size_t i = 0; i < parts->n; i++) {
        struct nu_mcpart *a = nu_mem_asg_find(c, parts->v[i].topic, parts->v[i].partition);
        if (!a)
            continue;
        struct nu_mown *o = nu_mem_owner(c->g, a->t, a->partition);
        if (o->c == c)
            o->c = NULL;
        *a = c->asg[--c->nasg];
    }
    pthread_cond_broadcast(&c->m->cv);
}

/* One step toward c's share of its group: revoke what is not its share, take what is free. */
static void nu_mem_rebalance(struct nu_mconsumer *c)
{
    struct nu_mem *m = c->m;
    struct nu_toffsets share = {0}, change = {0};
    if (!c->subscribed)
        return;
    pthread_mutex_lock(&m->mu);
    nu_mem_share(m, c, &share);
    for (size_t i = 0; i < c->nasg; i++) {
        bool gone = nu_mem_topic(m, c->asg[i].t->name) != c->asg[i].t;
        if (gone || !nu_mem_in(&share, c->asg[i].t->name, c->asg[i].partition))
            nu_toffsets_add(&change, c->asg[i].t->name, c->asg[i].partition, c->asg[i].pos, NULL,
                            0);
    }
    pthread_mutex_unlock(&m->mu);
    if (change.n) {
        if (c->rebalance)
            c->rebalance(c->opaque, NU_TREBALANCE_REVOKE, &change);
        pthread_mutex_lock(&m->mu);
        nu_mem_release(c, &change);
        pthread_mutex_unlock(&m->mu);
        nu_toffsets_clear(&change);
    }
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < share.n; i++) {
        struct nu_mtopic *t = nu_mem_topic(m, share.v[i].topic);
        if (!t || nu_mem_asg_find(c, t->name, share.v[i].partition))
            continue;
        struct nu_mown *o = nu_mem_owner(c->g, t, share.v[i].partition);
        if (o->c)
            continue; /* its owner has not given it up yet */
        o->c = c;
        struct nu_toffset *k = nu_mem_committed_find(c->g, t->name, share.v[i].partition);
        nu_mem_asg_add(c, t, share.v[i].partition, k ? k->offset : 0);
        nu_toffsets_add(&change, t->name, share.v[i].partition, k ? k->offset : 0, NULL, 0);
    }
    pthread_mutex_unlock(&m->mu);
    if (change.n && c->rebalance)
        c->rebalance(c->opaque, NU_TREBALANCE_ASSIGN, &change);
    nu_toffsets_free(&change);
    nu_toffsets_free(&share);
}

void nu_mem_c_destroy(nu_tconsumer_t *cc)
{
    struct nu_mconsumer *c = (struct nu_mconsumer *)cc;
    struct nu_mem *m = c->m;
    struct nu_toffsets held = {0};
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < c->nasg; i++)
        nu_toffsets_add(&held, c->asg[i].t->name, c->asg[i].partition, c->asg[i].pos, NULL, 0);
    pthread_mutex_unlock(&m->mu);
    if (c->subscribed && held.n && c->rebalance)
        c->rebalance(c->opaque, NU_TREBALANCE_REVOKE, &held);
    pthread_mutex_lock(&m->mu);
    if (c->subscribed)
        nu_mem_release(c, &held);
    struct nu_mgroup *g = c->g;
    for (size_t i = 0; i < g->nmembers; i++)
        if (g->members[i] == c) {
            memmove(&g->members[i], &g->members[i + 1],
                    (g->nmembers - i - 1) * sizeof(*g->members));
            g->nmembers--;
            break;
        }
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
    nu_toffsets_free(&held);
    for (size_t i = 0; i < c->ntopics; i++)
        free(c->topics[i]);
    free(c->topics);
    free(c->asg);
    free(c);
}

nu_err_t nu_mem_c_subscribe(nu_tconsumer_t *cc, const char *const *topics, size_t n,
                            struct nu_errbuf *eb)
{
    struct nu_mconsumer *c = (struct nu_mconsumer *)cc;
    struct nu_mgroup *g = c->g;
    if (c->subscribed || c->nasg)
        return nu_err_set(eb, NU_ERR_STATE, "the consumer already reads its partitions");
    c->topics = nu_xcalloc(n ? n : 1, sizeof(*c->topics));
    for (size_t i = 0; i < n; i++)
        c->topics[i] = nu_xstrdup(topics[i]);
    c->ntopics = n;
    pthread_mutex_lock(&c->m->mu);
    if (g->nmembers == g->capmembers) {
        g->capmembers = g->capmembers ? g->capmembers * 2 : 8;
        g->members = nu_xrealloc(g->members, g->capmembers * sizeof(*g->members));
    }
    g->members[g->nmembers++] = c;
    c->subscribed = true;
    pthread_cond_broadcast(&c->m->cv);
    pthread_mutex_unlock(&c->m->mu);
    return NU_OK;
}

nu_err_t nu_mem_c_assign(nu_tconsumer_t *cc, const struct nu_toffsets *parts, struct nu_errbuf *eb)
{
    struct nu_mconsumer *c = (struct nu_mconsumer *)cc;
    nu_err_t err = NU_OK;
    if (c->subscribed)
        return nu_err_set(eb, NU_ERR_STATE, "a subscribed consumer is assigned by its group");
    pthread_mutex_lock(&c->m->mu);
    c->nasg = 0;
    for (size_t i = 0; i < parts->n && !err; i++) {
        struct nu_mtopic *t = nu_mem_topic(c->m, parts->v[i].topic);
        if (!t || parts->v[i].partition < 0 || parts->v[i].partition >= t->nparts)
            err = nu_err_set(eb, NU_ERR_NOT_FOUND, "no partition %d of topic \"%s\"",
                             (int)parts->v[i].partition, parts->v[i].topic);
        else
            nu_mem_asg_add(c, t, parts->v[i].partition, parts->v[i].offset);
    }
    pthread_mutex_unlock(&c->m->mu);
    return err;
}

/* The next record of an assigned partition (lock held), or NULL. */
static const struct nu_trecord *nu_mem_next(struct nu_mconsumer *c)
{
    if (c->paused)
        return NULL;
    for (size_t k = 0; k < c->nasg; k++) {
        struct nu_mcpart *a = &c->asg[(c->rr + k) % c->nasg];
        struct nu_mpart *pt = &a->t->parts[a->partition];
        if (a->pos < (int64_t)pt->n) {
            c->rr = (c->rr + k + 1) % c->nasg;
            return &pt->recs[a->pos++]->r;
        }
        if (c->eof && a->eof_at != a->pos) {
            a->eof_at = a->pos;
            c->eofrec = (struct nu_trecord){
                .topic = a->t->name, .partition = a->partition, .offset = a->pos, .eof = true};
            return &c->eofrec;
        }
    }
    return NULL;
}

nu_err_t nu_mem_c_poll(nu_tconsumer_t *cc, int timeout_ms, const struct nu_trecord **out,
                       struct nu_errbuf *eb)
{
    struct nu_mconsumer *c = (struct nu_mconsumer *)cc;
    struct timespec deadline;
    (void)eb;
    nu_mem_deadline(&deadline, timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        nu_mem_rebalance(c);
        pthread_mutex_lock(&c->m->mu);
        *out = nu_mem_next(c);
        int rc = *out ? 0 : pthread_cond_timedwait(&c->m->cv, &c->m->mu, &deadline);
        if (!*out && rc == 0)
            *out = nu_mem_next(c);
        pthread_mutex_unlock(&c->m->mu);
        if (*out || rc == ETIMEDOUT)
            return NU_OK;
    }
}

nu_err_t nu_mem_c_commit(nu_tconsumer_t *cc, const struct nu_toffsets *offsets,
                         struct nu_errbuf *eb)
{
    struct nu_mconsumer *c = (struct nu_mconsumer *)cc;
    nu_err_t err = NU_OK;
    pthread_mutex_lock(&c->m->mu);
    for (size_t i = 0; i < offsets->n && !err; i++)
        if (offsets->v[i].meta_len > NU_TRANSPORT_META_MAX)
            err = nu_err_set(eb, NU_ERR_TOO_LARGE, "offset metadata of %zu bytes is over %d",
                             offsets->v[i].meta_len, NU_TRANSPORT_META_MAX);
    for (size_t i = 0; i < offsets->n && !err; i++)
        nu_mem_commit_one(c->g, &offsets->v[i]);
    pthread_cond_broadcast(&c->m->cv);
    pthread_mutex_unlock(&c->m->mu);
    return err;
}

nu_err_t nu_mem_c_committed(nu_tconsumer_t *cc, struct nu_toffsets *parts, int timeout_ms,
                            struct nu_errbuf *eb)
{
    struct nu_mconsumer *c = (struct nu_mconsumer *)cc;
    (void)timeout_ms;
    (void)eb;
    pthread_mutex_lock(&c->m->mu);
    for (size_t i = 0; i < parts->n; i++) {
        struct nu_toffset *k =
            nu_mem_committed_find(c->g, parts->v[i].topic, parts->v[i].partition);
        parts->v[i].offset = k ? k->offset : NU_TOFFSET_NONE;
        nu_toffsets_set_meta(&parts->v[i], k ? k->meta : NULL, k ? k->meta_len : 0);
    }
    pthread_mutex_unlock(&c->m->mu);
    return NU_OK;
}

nu_err_t nu_mem_c_seek(nu_tconsumer_t *cc, const struct nu_toffsets *parts, int timeout_ms,
                       struct nu_errbuf *eb)
{
    struct nu_mconsumer *c = (struct nu_mconsumer *)cc;
    nu_err_t err = NU_OK;
    (void)timeout_ms;
    pthread_mutex_lock(&c->m->mu);
    for (size_t i = 0; i < parts->n && !err; i++) {
        struct nu_mcpart *a = nu_mem_asg_find(c, parts->v[i].topic, parts->v[i].partition);
        if (!a)
            err = nu_err_set(eb, NU_ERR_STATE,
                             "could not seek partition %d of topic \"%s\": "
                             "not assigned",
                             (int)parts->v[i].partition, parts->v[i].topic);
        else
            a->pos = parts->v[i].offset < 0 ? 0 : parts->v[i].offset;
    }
    pthread_mutex_unlock(&c->m->mu);
    return err;
}

nu_err_t nu_mem_c_assignment(nu_tconsumer_t *cc, struct nu_toffsets *out, struct nu_errbuf *eb)
{
    struct nu_mconsumer *c = (struct nu_mconsumer *)cc;
    (void)eb;
    pthread_mutex_lock(&c->m->mu);
    for (size_t i = 0; i < c->nasg; i++)
        nu_toffsets_add(out, c->asg[i].t->name, c->asg[i].partition, c->asg[i].pos, NULL, 0);
    pthread_mutex_unlock(&c->m->mu);
    return NU_OK;
}

void nu_mem_c_pause(nu_tconsumer_t *cc, bool pause)
{
    struct nu_mconsumer *c = (struct nu_mconsumer *)cc;
    pthread_mutex_lock(&c->m->mu);
    c->paused = pause;
    pthread_mutex_unlock(&c->m->mu);
}

bool nu_mem_c_joined(nu_tconsumer_t *cc)
{
    return ((struct nu_mconsumer *)cc)->subscribed;
}

nu_err_t nu_mem_c_watermarks(nu_tconsumer_t *cc, const char *topic, int32_t partition,
                             int timeout_ms, int64_t *lo, int64_t *hi, struct nu_errbuf *eb)
{
    struct nu_mconsumer *c = (struct nu_mconsumer *)cc;
    nu_err_t err = NU_OK;
    (void)timeout_ms;
    pthread_mutex_lock(&c->m->mu);
    struct nu_mtopic *t = nu_mem_topic(c->m, topic);
    if (!t || partition < 0 || partition >= t->nparts)
        err = nu_err_set(eb, NU_ERR_NOT_FOUND, "no partition %d of topic \"%s\"", (int)partition,
                         topic);
    else {
        *lo = 0;
        *hi = (int64_t)t->parts[partition].n;
    }
    pthread_mutex_unlock(&c->m->mu);
    return err;
}
