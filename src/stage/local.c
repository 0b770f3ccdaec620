/* local.c — a whole job in one process: every stage instance a thread over the in-memory broker. */
#include "stage/local.h"

#include "common/log.h"
#include "common/mem.h"
#include "stage/planner.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NU_LOCAL_POLL_MS   100
#define NU_LOCAL_DRAIN_MS  10000 /* longest wait for the last events after the job completed */
#define NU_LOCAL_STACK_MIN (8u << 20)

/* One stage instance and its thread. */
struct nu_local_inst {
    pthread_t th;
    bool started;
    const struct nu_job *job;
    size_t stage;
    struct nu_stage_opts o;
    nu_transport_t *tr;
    volatile sig_atomic_t *halt;
    atomic_int *ndone;
    struct nu_stage_stats stats;
    struct nu_errbuf eb;
    nu_err_t err;
};

static int64_t nu_local_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *nu_local_inst_main(void *arg)
{
    struct nu_local_inst *in = arg;
    nu_errbuf_clear(&in->eb);
    in->err =
        nu_stage_run_transport(in->job, in->stage, &in->o, in->tr, in->halt, &in->stats, &in->eb);
    if (in->err)
        *in->halt = 1; /* one failed instance stops the run */
    atomic_fetch_add(in->ndone, 1);
    return NULL;
}

/* Read the events that have arrived (without waiting longer than timeout_ms for the first). */
static void nu_local_events(const struct nu_job *job, nu_tconsumer_t *c, struct nu_run_stats *s,
                            int timeout_ms, int64_t *end)
{
    const struct nu_trecord *m = NULL;
    struct nu_errbuf ignore;
    nu_errbuf_clear(&ignore);
    while (nu_tconsumer_poll(c, timeout_ms, &m, &ignore) == NU_OK && m) {
        if (!m->eof) {
            nu_run_stats_apply(s, job, m->value, m->len);
            *end = m->offset + 1;
        }
        timeout_ms = 0;
    }
}

/* Topics, plans and the consumer of the events topic. */
static nu_err_t nu_local_prepare(const struct nu_job *job, const struct nu_local_opts *o,
                                 nu_transport_t *tr, struct nu_run_stats *s, nu_tconsumer_t **ev,
                                 struct nu_errbuf *eb)
{
    struct nu_plan_count *counts = nu_xcalloc(job->nstages, sizeof(*counts));
    char topic[NU_JOB_NAME_MAX], group[NU_JOB_NAME_MAX + 16];
    struct nu_toffsets parts = {0};
    nu_err_t err = nu_plan_topics_transport(job, tr, eb);
    if (!err)
        err = nu_plan_sources_transport(job, tr, counts, eb);
    for (size_t i = 0; i < job->nstages && !err; i++) {
        struct nu_run_stage_stats *st = &s->st[i];
        if (job->stages[i].nupstream != 0)
            continue;
        st->planned = true;
        st->planned_splits = counts[i].splits;
        st->planned_rows = counts[i].rows;
        st->planned_rows_known = counts[i].rows_known;
        if (!o->quiet && o->err)
            fprintf(o->err, "nurion run: source \"%s\": %s %" PRIu64 " splits%s\n",
                    job->stages[i].id, counts[i].existed ? "plan found," : "planned",
                    counts[i].splits, counts[i].existed ? " (resuming)" : "");
    }
    nu_job_topic_events(job, topic, sizeof(topic));
    snprintf(group, sizeof(group), "%s.runner", topic);
    struct nu_tconsumer_conf cc = {.group = group};
    nu_toffsets_add(&parts, topic, 0, 0, NULL, 0);
    if (!err)
        err = nu_tconsumer_new(tr, &cc, ev, eb);
    if (!err)
        err = nu_tconsumer_assign(*ev, &parts, eb);
    nu_toffsets_free(&parts);
    free(counts);
    return err;
}

/* Start every instance; counts[i] of stage i. Returns how many threads started. */
static size_t nu_local_start(const struct nu_job *job, const int *counts,
                             const struct nu_stage_opts *so, nu_transport_t *tr,
                             volatile sig_atomic_t *halt, atomic_int *ndone,
                             struct nu_local_inst *insts, struct nu_errbuf *eb, nu_err_t *err)
{
    size_t n = 0;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, NU_LOCAL_STACK_MIN); /* operators keep large locals */
    for (size_t i = 0; i < job->nstages && !*err; i++) {
        for (int k = 0; k < counts[i] && !*err; k++) {
            struct nu_local_inst *in = &insts[n];
            in->job = job;
            in->stage = i;
            in->o = *so;
            in->o.instance = (unsigned)k;
            in->tr = tr;
            in->halt = halt;
            in->ndone = ndone;
            int rc = pthread_create(&in->th, &attr, nu_local_inst_main, in);
            if (rc != 0) {
                *err = nu_err_set(eb, NU_ERR_SYSTEM, "could not start a thread for stage \"%s\"",
                                  job->stages[i].id);
                break;
            }
            in->started = true;
            n++;
        }
    }
    pthread_attr_destroy(&attr);
    return n;
}

nu_err_t nu_local_run(const struct nu_job *job, const struct nu_local_opts *o,
                      volatile sig_atomic_t *stop, struct nu_run_stats *stats, struct nu_errbuf *eb)
{
    nu_transport_t *tr = o->transport, *own = NULL;
    struct nu_run_stats local, *s = stats ? stats : &local;
    struct nu_stage_opts so;
    struct nu_local_inst *insts = NULL;
    nu_tconsumer_t *ev = NULL;
    int *counts = nu_xcalloc(job->nstages, sizeof(*counts));
    volatile sig_atomic_t halt = 0;
    atomic_int ndone = 0;
    size_t total = 0, started = 0;
    int64_t t0 = nu_local_now_ms(), last = t0, end = 0;
    nu_err_t err = NU_OK;

    nu_run_stats_init(s, job);
    if (o->stage)
        so = *o->stage;
    else
        nu_stage_opts_init(&so);
    if (!tr)
        tr = own = nu_transport_mem_new();
    if (o->instances)
        memcpy(counts, o->instances, job->nstages * sizeof(*counts));
    else
        err = nu_run_instance_counts(job, NULL, 0, counts, eb);
    for (size_t i = 0; i < job->nstages && !err; i++) {
        s->st[i].instances = counts[i];
        total += (size_t)counts[i];
    }
    if (!err)
        err = nu_local_prepare(job, o, tr, s, &ev, eb);
    if (err)
        goto out;
    insts = nu_xcalloc(total ? total : 1, sizeof(*insts));
    started = nu_local_start(job, counts, &so, tr, &halt, &ndone, insts, eb, &err);
    if (err)
        halt = 1;
    while ((size_t)atomic_load(&ndone) < started) {
        if (*stop)
            halt = 1;
        nu_local_events(job, ev, s, NU_LOCAL_POLL_MS, &end);
        int64_t now = nu_local_now_ms();
        if (!o->quiet && o->err && now - last >= NU_LOCAL_PROGRESS_MS) {
            last = now;
            nu_run_stats_rate(s, now);
            nu_run_progress_print(o->err, job, s, now - t0, false);
        }
    }
    for (size_t i = 0; i < started; i++) {
        struct nu_local_inst *in = &insts[i];
        pthread_join(in->th, NULL);
        if (in->err == NU_OK && in->stats.complete)
            s->st[in->stage].done++;
        if (in->err && !err)
            err = nu_err_set(eb, NU_ERR_OPERATOR, "stage \"%s\" instance %u failed: %s",
                             job->stages[in->stage].id, in->o.instance, nu_err_msg(&in->eb));
    }
    if (!err && *stop)
        err = nu_err_set(eb, NU_ERR_CANCELLED, "job \"%s\" stopped", job->id);
    if (err)
        goto out;
    /* every instance returned complete: read the events to their end for an exact summary */
    {
        char topic[NU_JOB_NAME_MAX];
        int64_t lo = 0, hi = 0, deadline = nu_local_now_ms() + NU_LOCAL_DRAIN_MS;
        nu_job_topic_events(job, topic, sizeof(topic));
        if (nu_tconsumer_watermarks(ev, topic, 0, 1000, &lo, &hi, eb) == NU_OK)
            while (end < hi && nu_local_now_ms() < deadline)
                nu_local_events(job, ev, s, NU_LOCAL_POLL_MS, &end);
        nu_errbuf_clear(eb);
    }
    if (o->out)
        nu_run_summary_print(o->out, job, s, nu_local_now_ms() - t0, NULL);

out:
    nu_tconsumer_destroy(ev);
    free(insts);
    free(counts);
    nu_transport_destroy(own);
    if (!stats)
        nu_run_stats_free(&local);
    return err;
}
