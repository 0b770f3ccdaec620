/* monitor.c — the live view of a stage instance, and the stage loop's side of it. */
#include "stage/monitor.h"

#include "common/mem.h"
#include "stage/stage_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct nu_stage_monitor {
    pthread_mutex_t mu;
    struct nu_stage_snapshot cur;  /* guarded by mu */
    struct nu_stage_snapshot work; /* publisher's scratch, never read by others */
    int64_t last_ms;               /* publisher only */
};

nu_stage_monitor_t *nu_stage_monitor_new(void)
{
    nu_stage_monitor_t *m = nu_xcalloc(1, sizeof(*m));
    pthread_mutex_init(&m->mu, NULL);
    m->cur.state = NU_STAGE_STARTING;
    return m;
}

void nu_stage_monitor_destroy(nu_stage_monitor_t *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->mu);
    free(m);
}

void nu_stage_monitor_publish(nu_stage_monitor_t *m, const struct nu_stage_snapshot *s)
{
    size_t n = s->nlags < NU_STAGE_MONITOR_MAX_LAGS ? s->nlags : NU_STAGE_MONITOR_MAX_LAGS;
    pthread_mutex_lock(&m->mu);
    nu_stage_state_t keep = m->cur.state;
    m->cur.state = keep == NU_STAGE_FAILED ? keep : s->state;
    m->cur.stats = s->stats;
    m->cur.assigned = s->assigned;
    m->cur.nlags = n;
    memcpy(m->cur.lags, s->lags, n * sizeof(s->lags[0]));
    pthread_mutex_unlock(&m->mu);
}

void nu_stage_monitor_set_state(nu_stage_monitor_t *m, nu_stage_state_t state)
{
    pthread_mutex_lock(&m->mu);
    if (m->cur.state != NU_STAGE_FAILED)
        m->cur.state = state;
    pthread_mutex_unlock(&m->mu);
}

void nu_stage_monitor_read(nu_stage_monitor_t *m, struct nu_stage_snapshot *out)
{
    pthread_mutex_lock(&m->mu);
    out->state = m->cur.state;
    out->stats = m->cur.stats;
    out->assigned = m->cur.assigned;
    out->nlags = m->cur.nlags;
    memcpy(out->lags, m->cur.lags, m->cur.nlags * sizeof(m->cur.lags[0]));
    pthread_mutex_unlock(&m->mu);
}

const char *nu_stage_state_name(nu_stage_state_t state)
{
    switch (state) {
    case NU_STAGE_STARTING:
        return "starting";
    case NU_STAGE_READY:
        return "ready";
    case NU_STAGE_STOPPING:
        return "stopping";
    case NU_STAGE_DONE:
        return "done";
    case NU_STAGE_FAILED:
        return "failed";
    }
    return "unknown";
}

/* Has the consumer joined its group (it has a member id from the coordinator)? */
static bool nu_stage_joined(struct nu_stage *st)
{
    char *id = rd_kafka_memberid(st->c);
    bool joined = id && *id;
    if (id)
        rd_kafka_mem_free(st->c, id);
    return joined;
}

void nu_stage_monitor_update(struct nu_stage *st, int64_t now, bool force)
{
    nu_stage_monitor_t *m = st->o->monitor;
    struct nu_stage_snapshot *s;
    if (!m)
        return;
    s = &m->work;
    /* cheap enough for every turn of the loop: a look at the clock and the stop flag */
    if (!force && now - m->last_ms < NU_STAGE_MONITOR_INTERVAL_MS &&
        (s->state == NU_STAGE_STOPPING || !*st->stop))
        return;
    /* the producer exists (and has initialised its transactions) once the loop runs */
    nu_stage_state_t state = *st->stop             ? NU_STAGE_STOPPING
                             : nu_stage_joined(st) ? NU_STAGE_READY
                                                   : NU_STAGE_STARTING;
    m->last_ms = now;
    s->state = state;
    s->stats = *st->stats;
    s->assigned = 0;
    s->nlags = 0;
    for (size_t i = 0; i < st->nparts; i++) {
        struct nu_part *pt = &st->parts[i];
        int64_t lo = 0, hi = 0;
        if (!pt->assigned)
            continue;
        s->assigned++;
        if (s->nlags >= NU_STAGE_MONITOR_MAX_LAGS)
            continue;
        /* cached watermarks from fetch responses: does not block */
        if (rd_kafka_get_watermark_offsets(st->c, st->inputs[pt->input].topic, pt->partition, &lo,
                                           &hi) != RD_KAFKA_RESP_ERR_NO_ERROR ||
            hi < 0)
            continue;
        int64_t pos = pt->next_offset >= 0 ? pt->next_offset : lo;
        struct nu_stage_lag *l = &s->lags[s->nlags++];
        snprintf(l->topic, sizeof(l->topic), "%s", st->inputs[pt->input].topic);
        l->partition = pt->partition;
        l->lag = hi > pos ? hi - pos : 0;
    }
    nu_stage_monitor_publish(m, s);
}

void nu_stage_monitor_finish(struct nu_stage *st, nu_err_t err)
{
    nu_stage_monitor_t *m = st->o->monitor;
    if (!m)
        return;
    m->work.stats = *st->stats;
    m->work.state = err ? NU_STAGE_FAILED : st->stats->complete ? NU_STAGE_DONE : NU_STAGE_STOPPING;
    m->work.assigned = 0;
    m->work.nlags = 0;
    nu_stage_monitor_publish(m, &m->work);
}
