/* transport_int.h — the operations table behind transport.h, for its implementations. */
#ifndef NU_STAGE_TRANSPORT_INT_H
#define NU_STAGE_TRANSPORT_INT_H

#include "stage/transport.h"

struct nu_transport_ops {
    const char *name;
    void (*destroy)(nu_transport_t *t);
    nu_err_t (*topics_create)(nu_transport_t *t, const struct nu_ttopic_spec *specs, size_t n,
                              int timeout_ms, struct nu_errbuf *eb);
    nu_err_t (*topics_delete)(nu_transport_t *t, const char *const *names, size_t n, int timeout_ms,
                              struct nu_errbuf *eb);

    nu_err_t (*p_new)(nu_transport_t *t, const struct nu_tproducer_conf *conf, int timeout_ms,
                      nu_tproducer_t **out, struct nu_errbuf *eb);
    void (*p_destroy)(nu_tproducer_t *p);
    nu_err_t (*p_send)(nu_tproducer_t *p, const char *topic, int32_t partition, const void *key,
                       size_t keylen, const void *value, size_t len, const struct nu_header *h,
                       size_t nh, int timeout_ms, struct nu_errbuf *eb);
    void (*p_poll)(nu_tproducer_t *p, int timeout_ms);
    size_t (*p_queued)(nu_tproducer_t *p);
    nu_err_t (*p_flush)(nu_tproducer_t *p, int timeout_ms, struct nu_errbuf *eb);
    nu_err_t (*p_begin)(nu_tproducer_t *p, struct nu_errbuf *eb);
    nu_err_t (*p_send_offsets)(nu_tproducer_t *p, nu_tconsumer_t *c,
                               const struct nu_toffsets *offsets, int timeout_ms,
                               struct nu_errbuf *eb);
    nu_err_t (*p_commit)(nu_tproducer_t *p, int timeout_ms, struct nu_errbuf *eb);
    nu_err_t (*p_abort)(nu_tproducer_t *p, int timeout_ms, struct nu_errbuf *eb);

    nu_err_t (*c_new)(nu_transport_t *t, const struct nu_tconsumer_conf *conf, nu_tconsumer_t **out,
                      struct nu_errbuf *eb);
    void (*c_destroy)(nu_tconsumer_t *c);
    nu_err_t (*c_subscribe)(nu_tconsumer_t *c, const char *const *topics, size_t n,
                            struct nu_errbuf *eb);
    nu_err_t (*c_assign)(nu_tconsumer_t *c, const struct nu_toffsets *parts, struct nu_errbuf *eb);
    nu_err_t (*c_poll)(nu_tconsumer_t *c, int timeout_ms, const struct nu_trecord **out,
                       struct nu_errbuf *eb);
    nu_err_t (*c_commit)(nu_tconsumer_t *c, const struct nu_toffsets *offsets,
                         struct nu_errbuf *eb);
    nu_err_t (*c_committed)(nu_tconsumer_t *c, struct nu_toffsets *parts, int timeout_ms,
                            struct nu_errbuf *eb);
    nu_err_t (*c_seek)(nu_tconsumer_t *c, const struct nu_toffsets *parts, int timeout_ms,
                       struct nu_errbuf *eb);
    nu_err_t (*c_assignment)(nu_tconsumer_t *c, struct nu_toffsets *out, struct nu_errbuf *eb);
    void (*c_pause)(nu_tconsumer_t *c, bool pause);
    void (*c_release)(nu_tconsumer_t *c);
    bool (*c_joined)(nu_tconsumer_t *c);
    nu_err_t (*c_watermarks)(nu_tconsumer_t *c, const char *topic, int32_t partition,
                             int timeout_ms, int64_t *lo, int64_t *hi, struct nu_errbuf *eb);
};

/* Every handle starts with its table. */
struct nu_transport {
    const struct nu_transport_ops *ops;
};
struct nu_tproducer {
    const struct nu_transport_ops *ops;
};
struct nu_tconsumer {
    const struct nu_transport_ops *ops;
};

#endif
