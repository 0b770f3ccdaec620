/* launcher.c — the launcher's lifecycle and its requests: start, cancel, scale, freeze, lag. */
#include "coordinator/launcher_int.h"

#include "common/log.h"
#include "common/mem.h"
#include "coordinator/store.h"
#include "stage/lanes.h"
#include "stage/planner.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Block the stop signals while librdkafka starts its threads, so only ours see them. */
static void nu_launcher_block_signals(bool block, sigset_t *saved)
{
    if (block) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &set, saved);
    } else {
        pthread_sigmask(SIG_SETMASK, saved, NULL);
    }
}

nu_err_t nu_launcher_new(const struct nu_launcher_conf *conf, nu_launcher_t **out,
                         struct nu_errbuf *eb)
{
    nu_launcher_t *l = NULL;
    char exe[PATH_MAX];
    sigset_t saved;
    nu_err_t err;

    *out = NULL;
    if (!conf->brokers || !*conf->brokers)
        return nu_err_set(eb, NU_ERR_CONFIG, "the launcher needs a broker list");
    if (!conf->database_url || !*conf->database_url)
        return nu_err_set(eb, NU_ERR_CONFIG, "the launcher needs a database URL");
    if (conf->autoscale.enabled &&
        (conf->autoscale.up_lag < conf->autoscale.down_lag || conf->autoscale.max_step < 1 ||
         conf->autoscale.cooldown_ms < 0))
        return nu_err_set(eb, NU_ERR_CONFIG,
                          "invalid autoscale settings: up_lag must be at least down_lag, "
                          "max_step at least 1, cooldown not negative");
    l = nu_xcalloc(1, sizeof(*l));
    pthread_mutex_init(&l->mu, NULL);
    l->mode = conf->mode;
    l->brokers = nu_xstrdup(conf->brokers);
    l->database_url = nu_xstrdup(conf->database_url);
    if (conf->nurion_exe && *conf->nurion_exe) {
        l->exe = nu_xstrdup(conf->nurion_exe);
    } else {
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        exe[n > 0 ? n : 0] = '\0';
        l->exe = nu_xstrdup(n > 0 ? exe : "/proc/self/exe");
    }
    l->spec_dir = nu_xstrdup(conf->spec_dir && *conf->spec_dir ? conf->spec_dir : "/tmp");
    l->jobs_like = conf->jobs_like ? nu_xstrdup(conf->jobs_like) : NULL;
    l->props = nu_xcalloc(conf->nprops + 1, sizeof(*l->props));
    for (size_t i = 0; i < conf->nprops; i++) {
        l->props[i].key = nu_xstrdup(conf->props[i].key);
        l->props[i].value = nu_xstrdup(conf->props[i].value);
    }
    l->nprops = conf->nprops;
    l->sets = nu_xcalloc(conf->nstage_sets + 1, sizeof(*l->sets));
    for (size_t i = 0; i < conf->nstage_sets; i++)
        l->sets[i] = nu_xstrdup(conf->stage_sets[i]);
    l->nsets = conf->nstage_sets;
    l->as = conf->autoscale;
    if (l->as.interval_ms <= 0)
        l->as.interval_ms = NU_AUTOSCALE_DEFAULT_INTERVAL_MS;
    if (gethostname(l->host, sizeof(l->host) - 1) != 0)
        snprintf(l->host, sizeof(l->host), "localhost");
    l->next_autoscale_ms = nu_launcher_now_ms() + l->as.interval_ms;

    err = nu_store_connect(l->database_url, &l->db, eb);
    if (err)
        goto fail;
    nu_launcher_block_signals(true, &saved);
    err = nu_kafka_client_new(NU_KAFKA_ADMIN, l->brokers, NULL, NULL, l->props, l->nprops,
                              &l->admin, eb);
    nu_launcher_block_signals(false, &saved);
    if (err)
        goto fail;
    *out = l;
    return NU_OK;
fail:
    nu_launcher_destroy(l, 0);
    return err;
}

void nu_launcher_job_free(struct nu_ljob *j)
{
    if (!j)
        return;
    for (size_t s = 0; j->st && s < j->job->nstages; s++) {
        for (int k = 0; k < j->st[s].cap; k++)
            if (j->st[s].slots[k].fd >= 0)
                close(j->st[s].slots[k].fd);
        free(j->st[s].slots);
        if (j->st[s].planner.fd >= 0 && j->st[s].unbounded)
            close(j->st[s].planner.fd);
    }
    free(j->st);
    nu_job_destroy(j->job);
    free(j);
}

void nu_launcher_destroy(nu_launcher_t *l, int grace_ms)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    int64_t deadline = nu_launcher_now_ms() + (grace_ms > 0 ? grace_ms : 0);
    /* a planner's SIGTERM would end its plan, and so a job that is still running: SIGKILL leaves
     * the plan open for the planner of the next coordinator */
    for (struct nu_ljob *j = l->jobs; j; j = j->next)
        for (size_t s = 0; s < j->job->nstages; s++) {
            if (j->st[s].unbounded && j->st[s].planner.pid > 0)
                kill(j->st[s].planner.pid, j->ending ? SIGTERM : SIGKILL);
            for (int k = 0; k < j->st[s].cap; k++)
                if (j->st[s].slots[k].pid > 0)
                    kill(j->st[s].slots[k].pid, SIGTERM);
        }
    for (struct nu_ljob *j = l->jobs; j; j = j->next)
        for (size_t s = 0; s < j->job->nstages; s++)
            for (int k = j->st[s].unbounded ? NU_LAUNCHER_PLANNER : 0; k < j->st[s].cap; k++) {
                pid_t pid = nu_launcher_slot(j, s, k)->pid;
                int status;
                if (pid <= 0)
                    continue;
                while (waitpid(pid, &status, WNOHANG) == 0) {
                    if (nu_launcher_now_ms() >= deadline) {
                        kill(pid, SIGKILL);
                        waitpid(pid, &status, 0);
                        break;
                    }
                    usleep(20 * 1000);
                }
            }
    while (l->jobs) {
        struct nu_ljob *j = l->jobs;
        l->jobs = j->next;
        nu_launcher_job_free(j);
    }
    pthread_mutex_unlock(&l->mu);
    if (l->admin)
        rd_kafka_destroy(l->admin);
    nu_store_close(l->db);
    for (size_t i = 0; i < l->nprops; i++) {
        free((char *)l->props[i].key);
        free((char *)l->props[i].value);
    }
    free(l->props);
    for (size_t i = 0; i < l->nsets; i++)
        free(l->sets[i]);
    free(l->sets);
    free(l->brokers);
    free(l->database_url);
    free(l->exe);
    free(l->spec_dir);
    free(l->jobs_like);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

static struct nu_ljob *nu_launcher_find(nu_launcher_t *l, const char *id)
{
    for (struct nu_ljob *j = l->jobs; j; j = j->next)
        if (strcmp(j->job->id, id) == 0)
            return j;
    return NULL;
}

/* A copy of `job` parsed from its canonical text, which is also written to the spec file. */
static nu_err_t nu_launcher_job_copy(nu_launcher_t *l, const char *text, struct nu_job **out,
                                     char *path, size_t pathlen, struct nu_errbuf *eb)
{
    char tmp[600];
    nu_err_t err = nu_job_parse(text, strlen(text), NULL, out, NULL, eb);
    if (err)
        return err;
    snprintf(path, pathlen, "%s/nurion-job-%s.json", l->spec_dir, (*out)->id);
    snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
        err =
            nu_err_set(eb, NU_ERR_IO, "could not write job spec \"%s\": %s", path, strerror(errno));
        if (f)
            unlink(tmp);
        nu_job_destroy(*out);
        *out = NULL;
    }
    return err;
}

/* A supervised job over `job` (transferred) with every stage at its starting target. */
static struct nu_ljob *nu_ljob_new(nu_launcher_t *l, struct nu_job *job, const char *spec_path)
{
    struct nu_ljob *j = nu_xcalloc(1, sizeof(*j));
    struct nu_stage_input *in = nu_xcalloc(NU_JOB_MAX_UPSTREAMS, sizeof(*in));
    j->job = job;
    snprintf(j->spec_path, sizeof(j->spec_path), "%s", spec_path);
    j->st = nu_xcalloc(job->nstages, sizeof(*j->st));
    for (size_t s = 0; s < job->nstages; s++) {
        struct nu_lstage *ls = &j->st[s];
        const struct nu_job_stage *st = &job->stages[s];
        size_t nin = 0;
        struct nu_errbuf eb = {0};
        ls->partitions = 0;
        if (nu_lanes_inputs(job, s, in, &nin, &eb) == NU_OK)
            for (size_t i = 0; i < nin; i++)
                ls->partitions += in[i].partitions;
        ls->cap = st->parallelism_max;
        if (ls->partitions > 0 && ls->cap > ls->partitions)
            ls->cap = ls->partitions;
        if (ls->cap < 1)
            ls->cap = 1;
        ls->target = ls->cap;
        ls->pinned = -1;
        ls->lag = -1;
        ls->last_scale_ms = -1;
        ls->slots = nu_xcalloc((size_t)ls->cap, sizeof(*ls->slots));
        ls->unbounded = nu_plan_stage_unbounded(job, s);
        ls->planner.fd = -1;
        ls->planner.want = ls->unbounded && l->mode == NU_LAUNCH_LOCAL;
        ls->planned = -1;
        for (int k = 0; k < ls->cap; k++) {
            ls->slots[k].fd = -1;
            ls->slots[k].want = l->mode == NU_LAUNCH_LOCAL;
        }
    }
    free(in);
    return j;
}

/* Apply the controls read from the store (pins) to the fresh targets of `j`. */
static void nu_ljob_apply_pins(nu_launcher_t *l, struct nu_ljob *j)
{
    for (size_t s = 0; s < j->job->nstages; s++)
        if (j->st[s].pinned >= 0) {
            int t = j->st[s].pinned;
            if (t < j->job->stages[s].parallelism_min)
                t = j->job->stages[s].parallelism_min;
            nu_launcher_apply_target(l, j, s, t > j->st[s].cap ? j->st[s].cap : t);
        }
}

struct nu_ljob *nu_launcher_adopt_new(nu_launcher_t *l, const char *spec_text, struct nu_errbuf *eb)
{
    struct nu_job *copy = NULL;
    char path[600];
    if (nu_launcher_job_copy(l, spec_text, &copy, path, sizeof(path), eb))
        return NULL;
    struct nu_ljob *j = nu_ljob_new(l, copy, path);
    nu_launcher_db_controls(l->db, copy, j->st, eb);
    nu_ljob_apply_pins(l, j);
    return j;
}

nu_err_t nu_launcher_start(nu_launcher_t *l, const struct nu_job *job, struct nu_errbuf *eb)
{
    json_t *canon = nu_job_to_json(job);
    char *text = json_dumps(canon, JSON_COMPACT);
    struct nu_plan_count *counts = nu_xcalloc(job->nstages, sizeof(*counts));
    struct nu_job *copy = NULL;
    char path[600], state[32];
    sigset_t saved;
    nu_err_t err;

    pthread_mutex_lock(&l->mu);
    if (nu_launcher_find(l, job->id)) {
        err = nu_err_set(eb, NU_ERR_STATE, "job \"%s\" is running already", job->id);
        goto unlock;
    }
    err = nu_store_job_insert(l->db, job, eb);
    if (err == NU_ERR_EXISTS) {
        nu_errbuf_clear(eb);
        err = NU_OK;
    }
    if (!err)
        err = nu_launcher_db_job_state(l->db, job->id, state, sizeof(state), eb);
    if (!err && strcmp(state, "submitted") != 0 && strcmp(state, "running") != 0)
        err = nu_err_set(eb, NU_ERR_STATE, "job \"%s\" has ended (%s)", job->id, state);
    if (!err)
        err = nu_launcher_job_copy(l, text, &copy, path, sizeof(path), eb);
unlock:
    pthread_mutex_unlock(&l->mu);
    if (err)
        goto out;

    /* provisioning talks to the broker only: no lock held, so supervision goes on meanwhile */
    nu_launcher_block_signals(true, &saved);
    err = nu_plan_topics(copy, l->admin, NU_PLAN_TIMEOUT_MS, eb);
    if (!err)
        err = nu_plan_sources(copy, l->brokers, l->props, l->nprops, counts, eb);
    nu_launcher_block_signals(false, &saved);

    pthread_mutex_lock(&l->mu);
    if (err) {
        struct nu_errbuf e2 = {0};
        nu_store_job_set_state(l->db, job->id, "failed", nu_err_msg(eb), &e2);
        pthread_mutex_unlock(&l->mu);
        goto out;
    }
    for (size_t s = 0; s < copy->nstages && !err; s++)
        if (copy->stages[s].nupstream == 0 && !counts[s].unbounded) /* its planner tells */
            err = nu_store_planned(l->db, copy->id, copy->stages[s].id, (int64_t)counts[s].splits,
                                   counts[s].rows_known ? (int64_t)counts[s].rows : -1, eb);
    if (!err && nu_launcher_find(l, job->id))
        err = nu_err_set(eb, NU_ERR_STATE, "job \"%s\" is running already", job->id);
    if (!err)
        err = nu_store_job_set_state(l->db, job->id, "running", NULL, eb);
    if (!err) {
        struct nu_ljob *j = nu_ljob_new(l, copy, path);
        copy = NULL;
        nu_launcher_db_controls(l->db, j->job, j->st, eb);
        nu_errbuf_clear(eb);
        nu_ljob_apply_pins(l, j);
        j->next = l->jobs;
        l->jobs = j;
        l->stats.jobs_running++;
        nu_log(NU_LOG_INFO, "launcher", "job \"%s\" started\tmode=%s", job->id,
               l->mode == NU_LAUNCH_LOCAL ? "local" : "external");
    }
    pthread_mutex_unlock(&l->mu);
out:
    nu_job_destroy(copy);
    free(counts);
    free(text);
    json_decref(canon);
    return err;
}

void nu_launcher_job_fail(nu_launcher_t *l, struct nu_ljob *j, const char *reason)
{
    struct nu_errbuf eb = {0};
    nu_launcher_proc_stop_all(l, j);
    nu_log(NU_LOG_ERROR, "launcher", "job \"%s\" failed: %s", j->job->id, reason);
    if (nu_store_job_set_state(l->db, j->job->id, "failed", reason, &eb) && eb.code != NU_ERR_STATE)
        nu_log(NU_LOG_ERROR, "launcher", "could not mark job \"%s\" failed: %s", j->job->id,
               nu_err_msg(&eb));
}

nu_err_t nu_launcher_cancel(nu_launcher_t *l, const char *job_id, struct nu_errbuf *eb)
{
    char state[32];
    pthread_mutex_lock(&l->mu);
    nu_err_t err = nu_launcher_db_job_state(l->db, job_id, state, sizeof(state), eb);
    if (!err && !*state)
        err = nu_err_set(eb, NU_ERR_NOT_FOUND, "no job \"%s\"", job_id);
    if (!err && strcmp(state, "submitted") != 0 && strcmp(state, "running") != 0)
        err = nu_err_set(eb, NU_ERR_STATE, "job \"%s\" has ended (%s)", job_id, state);
    /* the state first: if it cannot be stored, nothing is stopped (a running job whose
     * processes were stopped would be adopted and restarted) */
    if (!err)
        err = nu_store_job_set_state(l->db, job_id, "cancelled", NULL, eb);
    if (!err) {
        struct nu_ljob *j = nu_launcher_find(l, job_id);
        if (j)
            nu_launcher_proc_stop_all(l, j); /* they finish their transaction and leave */
        nu_log(NU_LOG_INFO, "launcher", "job \"%s\" cancelled", job_id);
    }
    pthread_mutex_unlock(&l->mu);
    return err;
}

/* The supervised job `job_id` and the index of its stage `stage`. */
static nu_err_t nu_launcher_stage_find(nu_launcher_t *l, const char *job_id, const char *stage,
                                       struct nu_ljob **j, size_t *s, struct nu_errbuf *eb)
{
    *j = nu_launcher_find(l, job_id);
    if (!*j || (*j)->ending)
        return nu_err_set(eb, NU_ERR_NOT_FOUND, "job \"%s\" is not running", job_id);
    if (stage && !nu_job_stage_find((*j)->job, stage, s))
        return nu_err_set(eb, NU_ERR_NOT_FOUND, "job \"%s\" has no stage \"%s\"", job_id, stage);
    return NU_OK;
}

nu_err_t nu_launcher_scale(nu_launcher_t *l, const char *job_id, const char *stage, int instances,
                           struct nu_errbuf *eb)
{
    struct nu_ljob *j;
    size_t s = 0;
    pthread_mutex_lock(&l->mu);
    nu_err_t err = nu_launcher_stage_find(l, job_id, stage, &j, &s, eb);
    if (!err) {
        const struct nu_job_stage *st = &j->job->stages[s];
        if (instances < st->parallelism_min || instances > st->parallelism_max ||
            instances > j->st[s].cap)
            err = nu_err_set(eb, NU_ERR_INVALID,
                             "stage \"%s\" runs %d to %d instances (input partitions: %d), "
                             "not %d",
                             stage, st->parallelism_min, st->parallelism_max, j->st[s].partitions,
                             instances);
    }
    if (!err)
        err = nu_store_stage_set_pinned(l->db, job_id, stage, instances, eb);
    if (!err) {
        j->st[s].pinned = instances;
        nu_launcher_apply_target(l, j, s, instances);
    }
    pthread_mutex_unlock(&l->mu);
    return err;
}

nu_err_t nu_launcher_freeze(nu_launcher_t *l, const char *job_id, const char *stage, bool frozen,
                            struct nu_errbuf *eb)
{
    struct nu_ljob *j;
    size_t s = 0;
    pthread_mutex_lock(&l->mu);
    nu_err_t err = nu_launcher_stage_find(l, job_id, stage, &j, &s, eb);
    if (!err)
        err = nu_store_stage_set_frozen(l->db, job_id, stage, frozen, eb);
    if (!err)
        j->st[s].frozen = frozen;
    pthread_mutex_unlock(&l->mu);
    return err;
}

nu_err_t nu_launcher_autoscaling_pause(nu_launcher_t *l, const char *job_id, bool paused,
                                       struct nu_errbuf *eb)
{
    struct nu_ljob *j;
    pthread_mutex_lock(&l->mu);
    nu_err_t err = nu_launcher_stage_find(l, job_id, NULL, &j, NULL, eb);
    if (!err)
        j->paused = paused;
    pthread_mutex_unlock(&l->mu);
    return err;
}

nu_err_t nu_launcher_stage_lag(nu_launcher_t *l, const struct nu_job *job, size_t stage,
                               json_t **out, struct nu_errbuf *eb)
{
    char(*names)[NU_JOB_NAME_MAX] = nu_xcalloc(NU_JOB_MAX_UPSTREAMS, sizeof(*names));
    struct nu_lag_part *parts = NULL;
    size_t n = 0;
    *out = NULL;
    if (stage >= job->nstages) {
        free(names);
        return nu_err_set(eb, NU_ERR_INVALID, "no stage %zu in job \"%s\"", stage, job->id);
    }
    /* the admin handle is thread-safe; no lock: a slow broker must not stall supervision */
    nu_err_t err = nu_launcher_lag_read(l->admin, job, stage, &parts, &n, names, eb);
    if (!err)
        *out = nu_launcher_lag_json(parts, n, NULL);
    free(parts);
    free(names);
    return err;
}

nu_err_t nu_launcher_delete_topics(nu_launcher_t *l, const struct nu_job *job, struct nu_errbuf *eb)
{
    struct nu_plan_topic *topics = nu_xcalloc(NU_PLAN_MAX_TOPICS, sizeof(*topics));
    const char **names = nu_xcalloc(NU_PLAN_MAX_TOPICS, sizeof(*names));
    size_t n = nu_plan_topic_list(job, topics);
    for (size_t i = 0; i < n; i++)
        names[i] = topics[i].name;
    nu_err_t err = nu_kafka_topics_delete(l->admin, names, n, NU_PLAN_TIMEOUT_MS, eb);
    free(names);
    free(topics);
    return err;
}

void nu_launcher_stats(nu_launcher_t *l, struct nu_launcher_stats *out)
{
    pthread_mutex_lock(&l->mu);
    *out = l->stats;
    out->jobs_running = 0;
    out->processes = 0;
    for (struct nu_ljob *j = l->jobs; j; j = j->next) {
        out->jobs_running += !j->ending;
        out->processes += nu_launcher_proc_count(j);
    }
    pthread_mutex_unlock(&l->mu);
}

nu_err_t nu_launcher_job_status(nu_launcher_t *l, const char *job_id, json_t **out,
                                struct nu_errbuf *eb)
{
    nu_err_t err = NU_OK;
    *out = NULL;
    pthread_mutex_lock(&l->mu);
    struct nu_ljob *j = nu_launcher_find(l, job_id);
    if (!j) {
        err = nu_err_set(eb, NU_ERR_NOT_FOUND, "job \"%s\" is not supervised here", job_id);
        goto out;
    }
    json_t *stages = json_array();
    for (size_t s = 0; s < j->job->nstages; s++) {
        const struct nu_lstage *ls = &j->st[s];
        int running = 0, done = 0;
        for (int k = 0; k < ls->cap; k++) {
            running += ls->slots[k].pid > 0 || ls->slots[k].foreign != 0;
            done += ls->slots[k].done;
        }
        json_t *planner = json_null();
        if (ls->unbounded)
            planner = json_pack("{s:b, s:b, s:o}", "running",
                                ls->planner.pid > 0 || ls->planner.foreign != 0, "ended",
                                ls->planner.done, "planned_splits",
                                ls->planned >= 0 ? json_integer(ls->planned) : json_null());
        json_array_append_new(
            stages, json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:b, s:o, s:o, s:b, s:o}", "id",
                              j->job->stages[s].id, "target", ls->target, "min",
                              j->job->stages[s].parallelism_min, "max",
                              j->job->stages[s].parallelism_max, "partitions", ls->partitions,
                              "running", running, "done", done, "frozen", ls->frozen, "pinned",
                              ls->pinned >= 0 ? json_integer(ls->pinned) : json_null(), "lag",
                              ls->lag >= 0 ? json_integer(ls->lag) : json_null(), "finished",
                              ls->finished, "planner", planner));
    }
    *out = json_pack("{s:s, s:s, s:b, s:b, s:b, s:i, s:b, s:o}", "job", j->job->id, "mode",
                     l->mode == NU_LAUNCH_LOCAL ? "local" : "external", "adopted", j->adopted,
                     "ending", j->ending, "finished", j->processes_done, "processes",
                     nu_launcher_proc_count(j), "paused", j->paused, "stages", stages);
out:
    pthread_mutex_unlock(&l->mu);
    return err;
}
