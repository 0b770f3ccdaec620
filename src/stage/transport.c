/* transport.c — offset lists and the dispatch of transport.h to an implementation. */
#include "stage/transport_int.h"

#include "common/mem.h"

#include <stdlib.h>
#include <string.h>

struct nu_toffset *nu_toffsets_add(struct nu_toffsets *l, const char *topic, int32_t partition,
                                   int64_t offset, const char *meta, size_t meta_len)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->v = nu_xrealloc(l->v, l->cap * sizeof(*l->v));
    }
    struct nu_toffset *o = &l->v[l->n++];
    o->topic = nu_xstrdup(topic);
    o->partition = partition;
    o->offset = offset;
    o->meta = NULL;
    o->meta_len = 0;
    nu_toffsets_set_meta(o, meta, meta_len);
    return o;
}

void nu_toffsets_set_meta(struct nu_toffset *o, const char *meta, size_t meta_len)
{
    free(o->meta);
    o->meta = meta ? nu_xstrndup(meta, meta_len) : NULL;
    o->meta_len = meta ? meta_len : 0;
}

void nu_toffsets_clear(struct nu_toffsets *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].topic);
        free(l->v[i].meta);
    }
    l->n = 0;
}

void nu_toffsets_free(struct nu_toffsets *l)
{
    nu_toffsets_clear(l);
    free(l->v);
    l->v = NULL;
    l->cap = 0;
}

void nu_transport_destroy(nu_transport_t *t)
{
    if (t)
        t->ops->destroy(t);
}

const char *nu_transport_name(const nu_transport_t *t)
{
    return t->ops->name;
}

nu_err_t nu_transport_topics_create(nu_transport_t *t, const struct nu_ttopic_spec *specs, size_t n,
                                    int timeout_ms, struct nu_errbuf *eb)
{
    return t->ops->topics_create(t, specs, n, timeout_ms, eb);
}

nu_err_t nu_transport_topics_delete(nu_transport_t *t, const char *const *names, size_t n,
                                    int timeout_ms, struct nu_errbuf *eb)
{
    return t->ops->topics_delete(t, names, n, timeout_ms, eb);
}

nu_err_t nu_tproducer_new(nu_transport_t *t, const struct nu_tproducer_conf *conf, int timeout_ms,
                          nu_tproducer_t **out, struct nu_errbuf *eb)
{
    *out = NULL;
    return t->ops->p_new(t, conf, timeout_ms, out, eb);
}

void nu_tproducer_destroy(nu_tproducer_t *p)
{
    if (p)
        p->ops->p_destroy(p);
}

nu_err_t nu_tproducer_send(nu_tproducer_t *p, const char *topic, int32_t partition, const void *key,
                           size_t keylen, const void *value, size_t len, const struct nu_header *h,
                           size_t nh, int timeout_ms, struct nu_errbuf *eb)
{
    return p->ops->p_send(p, topic, partition, key, keylen, value, len, h, nh, timeout_ms, eb);
}

void nu_tproducer_poll(nu_tproducer_t *p, int timeout_ms)
{
    p->ops->p_poll(p, timeout_ms);
}

size_t nu_tproducer_queued(nu_tproducer_t *p)
{
    return p->ops->p_queued(p);
}

nu_err_t nu_tproducer_flush(nu_tproducer_t *p, int timeout_ms, struct nu_errbuf *eb)
{
    return p->ops->p_flush(p, timeout_ms, eb);
}

nu_err_t nu_tproducer_begin(nu_tproducer_t *p, struct nu_errbuf *eb)
{
    return p->ops->p_begin(p, eb);
}

nu_err_t nu_tproducer_send_offsets(nu_tproducer_t *p, nu_tconsumer_t *c,
                                   const struct nu_toffsets *offsets, int timeout_ms,
                                   struct nu_errbuf *eb)
{
    if (c->ops != p->ops)
        return nu_err_set(eb, NU_ERR_INVALID, "producer and consumer of different transports");
    return p->ops->p_send_offsets(p, c, offsets, timeout_ms, eb);
}

nu_err_t nu_tproducer_commit(nu_tproducer_t *p, int timeout_ms, struct nu_errbuf *eb)
{
    return p->ops->p_commit(p, timeout_ms, eb);
}

nu_err_t nu_tproducer_abort(nu_tproducer_t *p, int timeout_ms, struct nu_errbuf *eb)
{
    return p->ops->p_abort(p, timeout_ms, eb);
}

nu_err_t nu_tconsumer_new(nu_transport_t *t, const struct nu_tconsumer_conf *conf,
                          nu_tconsumer_t **out, struct nu_errbuf *eb)
{
    *out = NULL;
    if (!conf->group || !*conf->group)
        return nu_err_set(eb, NU_ERR_INVALID, "a consumer needs a group");
    return t->ops->c_new(t, conf, out, eb);
}

void nu_tconsumer_destroy(nu_tconsumer_t *c)
{
    if (c)
        c->ops->c_destroy(c);
}

nu_err_t nu_tconsumer_subscribe(nu_tconsumer_t *c, const char *const *topics, size_t n,
                                struct nu_errbuf *eb)
{
    return c->ops->c_subscribe(c, topics, n, eb);
}

nu_err_t nu_tconsumer_assign(nu_tconsumer_t *c, const struct nu_toffsets *parts,
                             struct nu_errbuf *eb)
{
    return c->ops->c_assign(c, parts, eb);
}

nu_err_t nu_tconsumer_poll(nu_tconsumer_t *c, int timeout_ms, const struct nu_trecord **out,
                           struct nu_errbuf *eb)
{
    *out = NULL;
    return c->ops->c_poll(c, timeout_ms, out, eb);
}

nu_err_t nu_tconsumer_commit(nu_tconsumer_t *c, const struct nu_toffsets *offsets,
                             struct nu_errbuf *eb)
{
    return c->ops->c_commit(c, offsets, eb);
}

nu_err_t nu_tconsumer_committed(nu_tconsumer_t *c, struct nu_toffsets *parts, int timeout_ms,
                                struct nu_errbuf *eb)
{
    return c->ops->c_committed(c, parts, timeout_ms, eb);
}

nu_err_t nu_tconsumer_seek(nu_tconsumer_t *c, const struct nu_toffsets *parts, int timeout_ms,
                           struct nu_errbuf *eb)
{
    return c->ops->c_seek(c, parts, timeout_ms, eb);
}

nu_err_t nu_tconsumer_assignment(nu_tconsumer_t *c, struct nu_toffsets *out, struct nu_errbuf *eb)
{
    return c->ops->c_assignment(c, out, eb);
}

void nu_tconsumer_pause(nu_tconsumer_t *c, bool pause)
{
    c->ops->c_pause(c, pause);
}

void nu_tconsumer_release(nu_tconsumer_t *c)
{
    if (c->ops->c_release)
        c->ops->c_release(c);
}

bool nu_tconsumer_joined(nu_tconsumer_t *c)
{
    return c->ops->c_joined(c);
}

nu_err_t nu_tconsumer_watermarks(nu_tconsumer_t *c, const char *topic, int32_t partition,
                                 int timeout_ms, int64_t *lo, int64_t *hi, struct nu_errbuf *eb)
{
    return c->ops->c_watermarks(c, topic, partition, timeout_ms, lo, hi, eb);
}
