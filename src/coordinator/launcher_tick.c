/* launcher_tick.c — the launcher's loop: job states, re-adoption, adopted instances, autoscaler. */
#include "coordinator/launcher_int.h"

#include "common/log.h"
#include "common/mem.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

void nu_launcher_apply_target(nu_launcher_t *l, struct nu_ljob *j, size_t s, int target)
{
    struct nu_lstage *ls = &j->st[s];
    int64_t now = nu_launcher_now_ms();
    if (target > ls->cap)
        target = ls->cap;
    if (target < 0)
        target = 0;
    struct nu_scale_plan p = nu_launcher_scale_plan(ls->target, target);
    if (target > ls->target)
        l->stats.scale_ups++;
    else if (target < ls->target)
        l->stats.scale_downs++;
    if (target != ls->target)
        nu_log(NU_LOG_INFO, "launcher", "stage \"%s\" of job \"%s\": %d -> %d instances",
               j->job->stages[s].id, j->job->id, ls->target, target);
    ls->target = target;
    ls->last_scale_ms = now;
    if (l->mode != NU_LAUNCH_LOCAL || j->ending)
        return;
    for (int k = 0; k < ls->cap; k++)
        ls->slots[k].want = k < target;
    for (int k = p.start_lo; k < p.start_hi; k++) {
        struct nu_lslot *sl = &ls->slots[k];
        if (sl->pid > 0 && sl->stopping)
            sl->respawn = true; /* still leaving: started again once it is gone */
        else if (!sl->pid && !sl->foreign && !sl->done)
            sl->start_at_ms = now;
    }
    /* scale down: the highest indices finish their transaction and leave the group */
    for (int k = p.stop_hi - 1; k >= p.stop_lo; k--) {
        struct nu_lslot *sl = &ls->slots[k];
        sl->respawn = false;
        if (sl->pid > 0 && !sl->stopping) {
            kill(sl->pid, SIGTERM);
            sl->stopping = true;
            sl->kill_at_ms = now + NU_LAUNCHER_GRACE_MS;
        }
        if (sl->foreign > 0 &&
            nu_launcher_proc_is_stage(sl->foreign, j->job->id, j->job->stages[s].id, k))
            kill(sl->foreign, SIGTERM);
        sl->foreign = 0;
    }
}

/* Which instances of stage `s` of adopted job `j` run already: live members of the group, and
 * running instances recorded on this host whose process is still that stage instance. */
static void nu_launcher_adopt_stage(nu_launcher_t *l, struct nu_ljob *j, size_t s)
{
    struct nu_lstage *ls = &j->st[s];
    const char *sid = j->job->stages[s].id;
    bool *live = nu_xcalloc((size_t)ls->cap, sizeof(*live));
    char group[NU_JOB_NAME_MAX], host[256];
    struct nu_errbuf eb = {0};
    int members = 0;

    nu_job_group(j->job, s, group, sizeof(group));
    if (nu_launcher_group_live(l->admin, group, live, ls->cap, &members, &eb))
        nu_log(NU_LOG_WARN, "launcher", "%s; relying on recorded instances", nu_err_msg(&eb));
    for (int k = 0; k < ls->cap; k++) {
        struct nu_lslot *sl = &ls->slots[k];
        pid_t pid = 0;
        nu_errbuf_clear(&eb);
        if (nu_launcher_db_instance_pid(l->db, j->job->id, sid, k, &pid, host, sizeof(host), &eb) ==
                NU_OK &&
            pid > 0 && strcmp(host, l->host) == 0 &&
            nu_launcher_proc_is_stage(pid, j->job->id, sid, k))
            sl->foreign = pid;
        else if (live[k])
            sl->foreign = -1; /* on another host, or unknown pid: followed through the group */
    }
    free(live);
}

/* Take over the running jobs of the store that nobody here supervises. */
static void nu_launcher_adopt(nu_launcher_t *l)
{
    struct nu_errbuf eb = {0};
    json_t *rows = NULL, *row;
    size_t i;
    if (nu_launcher_db_running(l->db, l->jobs_like, &rows, &eb)) {
        nu_log(NU_LOG_WARN, "launcher", "could not list running jobs: %s", nu_err_msg(&eb));
        return;
    }
    json_array_foreach(rows, i, row)
    {
        const char *id = json_string_value(json_object_get(row, "id"));
        bool known = false;
        for (struct nu_ljob *j = l->jobs; j && !known; j = j->next)
            known = strcmp(j->job->id, id) == 0;
        if (known)
            continue;
        nu_errbuf_clear(&eb);
        struct nu_ljob *j =
            nu_launcher_adopt_new(l, json_string_value(json_object_get(row, "spec")), &eb);
        if (!j) {
            nu_log(NU_LOG_ERROR, "launcher", "could not adopt job \"%s\": %s", id, nu_err_msg(&eb));
            continue;
        }
        j->adopted = true;
        for (size_t s = 0; l->mode == NU_LAUNCH_LOCAL && s < j->job->nstages; s++) {
            struct nu_lstage *ls = &j->st[s];
            if (!ls->finished)
                nu_launcher_adopt_stage(l, j, s);
            else
                for (int k = 0; k < ls->cap; k++)
                    ls->slots[k].done = true;
            /* a planner still running here is followed, never doubled: a second one would fence
             * it (exit 3, the job failed), or, restarted in turn, fence the new one back */
            if (ls->unbounded && ls->finished)
                ls->planner.done = true;
            else if (ls->unbounded)
                ls->planner.foreign =
                    nu_launcher_proc_find_planner(j->spec_path, j->job->stages[s].id);
        }
        j->next = l->jobs;
        l->jobs = j;
        nu_log(NU_LOG_INFO, "launcher", "adopted running job \"%s\"\tprocesses=%d", id,
               nu_launcher_proc_count(j));
    }
    json_decref(rows);
}

/* Adopted instances that have gone free their slot (it is then started here when wanted). */
static void nu_launcher_check_foreign(nu_launcher_t *l, struct nu_ljob *j)
{
    struct nu_errbuf dbe = {0};
    int64_t now = nu_launcher_now_ms();
    /* a vanished instance may have left because its stage completed: ask the store first */
    nu_launcher_db_controls(l->db, j->job, j->st, &dbe);
    for (size_t s = 0; s < j->job->nstages; s++) {
        struct nu_lstage *ls = &j->st[s];
        bool *live = NULL, failed = false;
        if (ls->unbounded && ls->planner.foreign > 0 &&
            !nu_launcher_proc_is_stage(ls->planner.foreign, j->job->id, j->job->stages[s].id,
                                       NU_LAUNCHER_PLANNER)) {
            ls->planner.foreign = 0;
            if (ls->finished)
                ls->planner.done = true;
            else
                ls->planner.start_at_ms = now; /* the transactional id aborts what it left */
        }
        for (int k = 0; k < ls->cap; k++) {
            struct nu_lslot *sl = &ls->slots[k];
            bool gone = false;
            if (sl->foreign > 0)
                gone = !nu_launcher_proc_is_stage(sl->foreign, j->job->id, j->job->stages[s].id, k);
            if (sl->foreign < 0 && !live && !failed) {
                int members = 0;
                char group[NU_JOB_NAME_MAX];
                live = nu_xcalloc((size_t)ls->cap, sizeof(*live));
                nu_job_group(j->job, s, group, sizeof(group));
                failed = nu_launcher_group_live(l->admin, group, live, ls->cap, &members, &dbe);
            }
            if (sl->foreign < 0 && !failed)
                gone = !live[k];
            if (!gone)
                continue;
            sl->foreign = 0;
            if (ls->finished)
                sl->done = true;
            else
                sl->start_at_ms = now + NU_LAUNCHER_FOREIGN_MS; /* the store may lag behind */
        }
        free(live);
    }
}

/* Re-read the job's state and controls; a job ended elsewhere stops here too. */
static void nu_launcher_check_job(nu_launcher_t *l, struct nu_ljob *j)
{
    struct nu_errbuf eb = {0};
    char state[32];
    if (nu_launcher_db_job_state(l->db, j->job->id, state, sizeof(state), &eb)) {
        nu_log(NU_LOG_WARN, "launcher", "could not read job \"%s\": %s", j->job->id,
               nu_err_msg(&eb));
        return;
    }
    if (strcmp(state, "succeeded") == 0 && !j->ending) {
        /* every stage is complete: its processes are leaving on their own, and a SIGTERM now
         * would cut their last commit short; nothing starts again, stragglers are stopped
         * after the grace period */
        int64_t now = nu_launcher_now_ms();
        if (!j->succeeded_ms)
            j->succeeded_ms = now;
        for (size_t s = 0; s < j->job->nstages; s++) {
            j->st[s].planner.want = false;
            for (int k = 0; k < j->st[s].cap; k++)
                j->st[s].slots[k].want = false;
        }
        if (nu_launcher_proc_count(j) > 0 && now - j->succeeded_ms < NU_LAUNCHER_GRACE_MS)
            return;
    }
    if (strcmp(state, "running") != 0 && strcmp(state, "submitted") != 0) {
        if (!j->ending)
            nu_log(NU_LOG_INFO, "launcher", "job \"%s\" is %s; its processes stop", j->job->id,
                   *state ? state : "deleted");
        nu_launcher_proc_stop_all(l, j);
        return;
    }
    int pinned[NU_JOB_MAX_STAGES];
    for (size_t s = 0; s < j->job->nstages; s++)
        pinned[s] = j->st[s].pinned;
    if (nu_launcher_db_controls(l->db, j->job, j->st, &eb) == NU_OK)
        for (size_t s = 0; s < j->job->nstages; s++)
            if (j->st[s].pinned >= 0 && j->st[s].pinned != pinned[s] &&
                j->st[s].pinned != j->st[s].target)
                nu_launcher_apply_target(l, j, s, j->st[s].pinned);
}

static void nu_launcher_autoscale(nu_launcher_t *l, struct nu_ljob *j, int64_t now)
{
    char(*names)[NU_JOB_NAME_MAX] = NULL;
    for (size_t s = 0; s < j->job->nstages; s++) {
        const struct nu_job_stage *st = &j->job->stages[s];
        struct nu_lstage *ls = &j->st[s];
        struct nu_lag_part *parts = NULL;
        struct nu_errbuf eb = {0};
        size_t n = 0;
        if (st->nupstream == 0 || ls->finished || ls->frozen || ls->pinned >= 0)
            continue;
        if (!names)
            names = nu_xcalloc(NU_JOB_MAX_UPSTREAMS, sizeof(*names));
        if (nu_launcher_lag_read(l->admin, j->job, s, &parts, &n, names, &eb)) {
            nu_log(NU_LOG_WARN, "launcher", "autoscaler: %s", nu_err_msg(&eb));
            continue;
        }
        int64_t lag = 0;
        for (size_t i = 0; i < n; i++)
            lag += nu_launcher_part_lag(&parts[i]);
        free(parts);
        ls->lag = lag;
        struct nu_autoscale_stage a = {.current = ls->target,
                                       .min = st->parallelism_min,
                                       .max = st->parallelism_max,
                                       .partitions = ls->partitions,
                                       .lag = lag,
                                       .frozen = ls->frozen,
                                       .pinned = ls->pinned,
                                       .is_source = false,
                                       .finished = ls->finished,
                                       .last_scale_ms = ls->last_scale_ms};
        int target = nu_autoscale_decide(&l->as, &a, now);
        NU_LOG_DEBUG_AREA("autoscale", "launcher",
                          "stage \"%s\" of job \"%s\": lag %lld, %d instances, target %d", st->id,
                          j->job->id, (long long)lag, ls->target, target);
        if (target != ls->target) {
            nu_log(NU_LOG_INFO, "launcher", "autoscaler: stage \"%s\" of job \"%s\" has lag %lld",
                   st->id, j->job->id, (long long)lag);
            nu_launcher_apply_target(l, j, s, target);
        }
    }
    free(names);
}

nu_err_t nu_launcher_tick(nu_launcher_t *l, struct nu_errbuf *eb)
{
    (void)eb;
    pthread_mutex_lock(&l->mu);
    int64_t now = nu_launcher_now_ms();
    if (now >= l->next_adopt_ms) {
        l->next_adopt_ms = now + NU_LAUNCHER_ADOPT_MS;
        nu_launcher_adopt(l);
    }
    for (struct nu_ljob *j = l->jobs; j; j = j->next) {
        if (now >= j->next_check_ms) {
            j->next_check_ms = now + NU_LAUNCHER_CHECK_MS;
            nu_launcher_check_job(l, j);
        }
        if (j->adopted && !j->ending && now >= j->next_foreign_ms) {
            j->next_foreign_ms = now + NU_LAUNCHER_FOREIGN_MS;
            nu_launcher_check_foreign(l, j);
        }
        if (l->mode == NU_LAUNCH_LOCAL)
            nu_launcher_proc_step(l, j);
    }
    /* jobs that ended and whose processes are gone are forgotten */
    for (struct nu_ljob **pp = &l->jobs; *pp;) {
        struct nu_ljob *j = *pp;
        if (j->ending && nu_launcher_proc_count(j) == 0) {
            *pp = j->next;
            nu_launcher_job_free(j);
            continue;
        }
        pp = &j->next;
    }
    if (l->as.enabled && now >= l->next_autoscale_ms) {
        l->next_autoscale_ms = now + l->as.interval_ms;
        for (struct nu_ljob *j = l->jobs; j; j = j->next)
            if (!j->ending && !j->paused && !j->processes_done && !j->succeeded_ms)
                nu_launcher_autoscale(l, j, now);
    }
    pthread_mutex_unlock(&l->mu);
    return NU_OK;
}
