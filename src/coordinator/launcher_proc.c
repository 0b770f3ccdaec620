/*
 * launcher_proc.c — the launcher's stage processes: start, output, reaping, restarts, stops.
 *
 * An unbounded source also has a continuous planner (`nurion stage --plan`), supervised as one
 * more slot of its stage (index NU_LAUNCHER_PLANNER) under the same rules. Its SIGTERM ends the
 * plan, and so the job: it gets one only when the job ends; when the coordinator goes away it
 * dies by SIGKILL instead (its parent-death signal), which leaves the plan open for the planner
 * a restarted coordinator starts (the transactional id aborts what the killed one left).
 */
#include "coordinator/launcher_int.h"

#include "common/log.h"
#include "common/mem.h"
#include "coordinator/store.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

struct nu_lline_ctx {
    nu_launcher_t *l;
    struct nu_ljob *j;
    size_t s;
    int k;
};

struct nu_lslot *nu_launcher_slot(struct nu_ljob *j, size_t s, int k)
{
    return k == NU_LAUNCHER_PLANNER ? &j->st[s].planner : &j->st[s].slots[k];
}

/* The planner logs "planned_splits=N" after each pass that planned something: the stage's
 * planned splits in the store follow it (GET /jobs/{id} shows them). */
static void nu_launcher_planned_line(const struct nu_lline_ctx *c, const char *line)
{
    const char *p = strstr(line, "planned_splits=");
    struct nu_lstage *ls = &c->j->st[c->s];
    struct nu_errbuf eb = {0};
    char *end;
    if (!p)
        return;
    long long n = strtoll(p + strlen("planned_splits="), &end, 10);
    if (end == p + strlen("planned_splits=") || n < 0 || n <= ls->planned)
        return;
    ls->planned = n;
    if (nu_store_planned(c->l->db, c->j->job->id, c->j->job->stages[c->s].id, n, -1, &eb))
        nu_log(NU_LOG_WARN, "launcher", "could not record the plan of stage \"%s\": %s",
               c->j->job->stages[c->s].id, nu_err_msg(&eb));
}

/* A line of a child's output goes to our stderr prefixed "[job/stage/instance] ", in one write
 * so lines of concurrent writers do not interleave. */
static void nu_launcher_line(void *ctx, const char *line, size_t len)
{
    const struct nu_lline_ctx *c = ctx;
    char buf[NU_RUN_LINE_MAX + 256], who[16];
    if (c->k == NU_LAUNCHER_PLANNER)
        snprintf(who, sizeof(who), "plan");
    else
        snprintf(who, sizeof(who), "%d", c->k);
    int n = snprintf(buf, sizeof(buf), "[%s/%s/%s] %.*s\n", c->j->job->id,
                     c->j->job->stages[c->s].id, who, (int)len, line);
    if (c->k == NU_LAUNCHER_PLANNER)
        nu_launcher_planned_line(c, buf);
    if (n > (int)sizeof(buf) - 1)
        n = (int)sizeof(buf) - 1;
    if (n > 0) {
        ssize_t ignored = write(2, buf, (size_t)n);
        (void)ignored;
    }
}

static void nu_launcher_read(nu_launcher_t *l, struct nu_ljob *j, size_t s, int k)
{
    struct nu_lslot *sl = nu_launcher_slot(j, s, k);
    struct nu_lline_ctx c = {l, j, s, k};
    char buf[8192];
    while (sl->fd >= 0) {
        ssize_t n = read(sl->fd, buf, sizeof(buf));
        if (n > 0) {
            nu_run_lines_feed(&sl->lines, buf, (size_t)n, nu_launcher_line, &c);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        nu_run_lines_flush(&sl->lines, nu_launcher_line, &c);
        close(sl->fd);
        sl->fd = -1;
    }
}

static char **nu_launcher_argv(nu_launcher_t *l, const struct nu_ljob *j, size_t s, int k)
{
    size_t n = 0;
    char **argv = nu_xcalloc(11 + 2 * (l->nsets + l->nprops), sizeof(*argv));
    argv[n++] = nu_xstrdup(l->exe);
    argv[n++] = nu_xstrdup("stage");
    argv[n++] = nu_xstrdup("--job");
    argv[n++] = nu_xstrdup(j->spec_path);
    argv[n++] = nu_xstrdup("--stage");
    argv[n++] = nu_xstrdup(j->job->stages[s].id);
    if (k == NU_LAUNCHER_PLANNER) {
        argv[n++] = nu_xstrdup("--plan");
    } else {
        argv[n++] = nu_xstrdup("--instance");
        argv[n++] = nu_xasprintf("%d", k);
    }
    argv[n++] = nu_xstrdup("--brokers");
    argv[n++] = nu_xstrdup(l->brokers);
    for (size_t i = 0; i < l->nprops; i++) {
        argv[n++] = nu_xstrdup("--set");
        argv[n++] = nu_xasprintf("kafka.%s=%s", l->props[i].key, l->props[i].value);
    }
    for (size_t i = 0; i < l->nsets; i++) {
        argv[n++] = nu_xstrdup("--set");
        argv[n++] = nu_xstrdup(l->sets[i]);
    }
    argv[n] = NULL;
    return argv;
}

static void nu_launcher_argv_free(char **argv)
{
    for (char **a = argv; a && *a; a++)
        free(*a);
    free(argv);
}

/* In the child between fork and exec: only async-signal-safe calls. */
static void nu_launcher_exec(char **argv, int wfd, pid_t parent, int death_sig)
{
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigset_t none;
    setpgid(0, 0); /* a terminal's ^C reaches the coordinator only */
    prctl(PR_SET_PDEATHSIG, death_sig);
    if (getppid() != parent)
        _exit(1);
    sigaction(SIGINT, &dfl, NULL);
    sigaction(SIGTERM, &dfl, NULL);
    sigaction(SIGPIPE, &dfl, NULL);
    sigaction(SIGCHLD, &dfl, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    int in = open("/dev/null", O_RDONLY);
    if (in >= 0 && in != 0) {
        dup2(in, 0);
        close(in);
    }
    dup2(wfd, 1);
    dup2(wfd, 2);
    if (wfd > 2)
        close(wfd);
    execv(argv[0], argv);
    static const char msg[] = "could not execute the stage program\n";
    ssize_t ignored = write(2, msg, sizeof(msg) - 1);
    (void)ignored;
    _exit(127);
}

nu_err_t nu_launcher_proc_start(nu_launcher_t *l, struct nu_ljob *j, size_t s, int k,
                                struct nu_errbuf *eb)
{
    struct nu_lslot *sl = nu_launcher_slot(j, s, k);
    const char *sid = j->job->stages[s].id;
    char **argv = nu_launcher_argv(l, j, s, k);
    int fds[2];
    nu_err_t err = NU_OK;

    if (pipe(fds) != 0) {
        err = nu_err_set(eb, NU_ERR_SYSTEM, "could not create a pipe: %s", strerror(errno));
        goto out;
    }
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        err = nu_err_set(eb, NU_ERR_SYSTEM, "could not start stage \"%s\" instance %d: %s", sid, k,
                         strerror(e));
        goto out;
    }
    if (pid == 0) {
        close(fds[0]);
        nu_launcher_exec(argv, fds[1], parent,
                         k == NU_LAUNCHER_PLANNER ? SIGKILL : SIGTERM); /* see the top */
    }
    close(fds[1]);
    sl->pid = pid;
    sl->fd = fds[0];
    sl->stopping = sl->respawn = false;
    memset(&sl->lines, 0, sizeof(sl->lines));
    if (k == NU_LAUNCHER_PLANNER) {
        nu_log(NU_LOG_INFO, "launcher",
               "started the planner of source \"%s\" of job \"%s\"\tpid=%d", sid, j->job->id,
               (int)pid);
        goto out;
    }
    nu_log(NU_LOG_INFO, "launcher", "started stage \"%s\" instance %d of job \"%s\"\tpid=%d", sid,
           k, j->job->id, (int)pid);
    struct nu_errbuf dbe = {0};
    if (nu_launcher_db_spawned(l->db, j->job->id, sid, k, pid, l->host, &dbe))
        nu_log(NU_LOG_WARN, "launcher", "could not record instance %d of stage \"%s\": %s", k, sid,
               nu_err_msg(&dbe));
out:
    nu_launcher_argv_free(argv);
    return err;
}

/* Slot k of stage s ended with wait status `status`. */
static void nu_launcher_ended(nu_launcher_t *l, struct nu_ljob *j, size_t s, int k, int status)
{
    struct nu_lstage *ls = &j->st[s];
    struct nu_lslot *sl = nu_launcher_slot(j, s, k);
    const struct nu_job_stage *st = &j->job->stages[s];
    struct nu_errbuf dbe = {0};
    char tail[1024], how[64], reason[1200], what[NU_JOB_NAME_MAX + 64];
    pid_t pid = sl->pid;
    bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    bool planner = k == NU_LAUNCHER_PLANNER;

    if (planner)
        snprintf(what, sizeof(what), "the planner of source \"%s\"", st->id);
    else
        snprintf(what, sizeof(what), "stage \"%s\" instance %d", st->id, k);
    if (sl->fd >= 0)
        nu_launcher_read(l, j, s, k);
    sl->pid = 0;
    nu_run_lines_reason(&sl->lines, tail, sizeof(tail));
    if (WIFEXITED(status))
        snprintf(how, sizeof(how), "exited with status %d", WEXITSTATUS(status));
    else
        snprintf(how, sizeof(how), "was killed by signal %d",
                 WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    snprintf(reason, sizeof(reason), "%s%s%s", how, tail[0] ? ": " : "", tail);

    if (sl->stopping || j->ending) {
        sl->stopping = false;
        if (!planner)
            nu_launcher_db_exited(l->db, j->job->id, st->id, k, pid, !clean,
                                  clean ? "stopped" : reason, &dbe);
        if (sl->respawn && !j->ending)
            sl->start_at_ms = nu_launcher_now_ms();
        sl->respawn = false;
        return;
    }
    if (clean && planner) {
        /* the plan was ended (`--end-plan`, or it had ended already): the stages drain it */
        sl->done = true;
        nu_log(NU_LOG_INFO, "launcher", "%s of job \"%s\" ended the plan", what, j->job->id);
        return;
    }
    if (clean) {
        sl->done = true;
        ls->finished = true;
        nu_launcher_db_exited(l->db, j->job->id, st->id, k, pid, false, "complete", &dbe);
        return;
    }
    if (!planner)
        nu_launcher_db_exited(l->db, j->job->id, st->id, k, pid, true, reason, &dbe);
    /* a fenced planner exits NU_RUN_EXIT_FATAL too: another planner of the source runs, and
     * restarting this one would fence it back, round and round */
    if (WIFEXITED(status) && (WEXITSTATUS(status) == NU_RUN_EXIT_FATAL ||
                              WEXITSTATUS(status) == 2 || WEXITSTATUS(status) == 127)) {
        char msg[1400];
        snprintf(msg, sizeof(msg), "%s %s and is not restarted: %s", what, how, tail);
        nu_launcher_job_fail(l, j, msg);
        return;
    }
    /* the rule of the local runner (runner.h): only crashes with no split of the stage done or
     * dead-lettered in between count (for a planner: no split planned), and an instance gets
     * max_crashes + 1 of them */
    int64_t splits = 0, dead = 0;
    if (planner)
        splits = ls->planned;
    else if (nu_launcher_db_progress(l->db, j->job->id, st->id, &splits, &dead, &dbe) != NU_OK)
        splits = sl->splits_at_crash, dead = sl->dead_at_crash;
    if (splits > sl->splits_at_crash || dead > sl->dead_at_crash)
        sl->crashes = 0;
    sl->splits_at_crash = splits;
    sl->dead_at_crash = dead;
    sl->crashes++;
    if (sl->crashes > (unsigned)st->max_crashes + 1) {
        char msg[1400];
        snprintf(msg, sizeof(msg), "%s %s after %u restart%s (max_crashes %d)%s%s", what, how,
                 sl->crashes - 1, sl->crashes == 2 ? "" : "s", st->max_crashes, tail[0] ? ": " : "",
                 tail);
        nu_launcher_job_fail(l, j, msg);
        return;
    }
    l->stats.restarts++;
    int delay = nu_run_backoff_ms(sl->crashes);
    sl->start_at_ms = nu_launcher_now_ms() + delay;
    nu_log(NU_LOG_WARN, "launcher", "%s of job \"%s\" %s; restarting in %d ms (%u of %d)", what,
           j->job->id, how, delay, sl->crashes, st->max_crashes + 1);
}

/* The first slot index of stage `s` that exists: the planner's, or instance 0. */
static int nu_launcher_first(const struct nu_ljob *j, size_t s)
{
    return j->st[s].unbounded ? NU_LAUNCHER_PLANNER : 0;
}

static void nu_launcher_poll_output(nu_launcher_t *l, struct nu_ljob *j)
{
    struct pollfd pf[64];
    int who[64][2];
    nfds_t n = 0;
    for (size_t s = 0; s < j->job->nstages; s++)
        for (int k = nu_launcher_first(j, s); k < j->st[s].cap; k++) {
            const struct nu_lslot *sl = nu_launcher_slot(j, s, k);
            if (sl->fd < 0)
                continue;
            if (n == 64) {
                nu_launcher_read(l, j, s, k); /* beyond the batch: non-blocking read anyway */
                continue;
            }
            pf[n] = (struct pollfd){.fd = sl->fd, .events = POLLIN};
            who[n][0] = (int)s;
            who[n++][1] = k;
        }
    if (n && poll(pf, n, 0) > 0)
        for (nfds_t i = 0; i < n; i++)
            if (pf[i].revents)
                nu_launcher_read(l, j, (size_t)who[i][0], who[i][1]);
}

void nu_launcher_proc_step(nu_launcher_t *l, struct nu_ljob *j)
{
    int64_t now = nu_launcher_now_ms();
    nu_launcher_poll_output(l, j);
    for (size_t s = 0; s < j->job->nstages; s++) {
        for (int k = nu_launcher_first(j, s); k < j->st[s].cap; k++) {
            struct nu_lslot *sl = nu_launcher_slot(j, s, k);
            int status = 0;
            if (sl->pid > 0 && waitpid(sl->pid, &status, WNOHANG) == sl->pid)
                nu_launcher_ended(l, j, s, k, status);
        }
    }
    for (size_t s = 0; s < j->job->nstages; s++) {
        for (int k = nu_launcher_first(j, s); k < j->st[s].cap; k++) {
            struct nu_lslot *sl = nu_launcher_slot(j, s, k);
            if (sl->pid > 0 && sl->stopping && sl->kill_at_ms && now >= sl->kill_at_ms) {
                kill(sl->pid, SIGKILL);
                sl->kill_at_ms = 0;
            }
            if (j->ending || !sl->want || sl->done || sl->pid || sl->foreign ||
                sl->start_at_ms > now)
                continue;
            struct nu_errbuf eb = {0};
            if (nu_launcher_proc_start(l, j, s, k, &eb)) {
                nu_log(NU_LOG_ERROR, "launcher", "%s", nu_err_msg(&eb));
                sl->start_at_ms = now + NU_RUN_BACKOFF_MAX_MS;
            }
        }
    }
    if (j->ending || j->processes_done)
        return;
    for (size_t s = 0; s < j->job->nstages; s++)
        for (int k = nu_launcher_first(j, s); k < j->st[s].cap; k++) {
            const struct nu_lslot *sl = nu_launcher_slot(j, s, k);
            if (sl->pid || sl->foreign || (sl->want && !sl->done))
                return;
        }
    j->processes_done = true;
    nu_log(NU_LOG_INFO, "launcher", "every stage process of job \"%s\" has finished", j->job->id);
}

/* The NUL-separated arguments of process `pid` into buf; their length, 0 when unreadable. */
static size_t nu_launcher_cmdline(pid_t pid, char *buf, size_t len)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    return (size_t)n;
}

bool nu_launcher_proc_is_stage(pid_t pid, const char *job_id, const char *stage, int inst)
{
    char buf[8192], want[16];
    bool job_ok = false, stage_ok = false, inst_ok = false, plan = false;
    size_t n = nu_launcher_cmdline(pid, buf, sizeof(buf));
    snprintf(want, sizeof(want), "%d", inst);
    const char *prev = "";
    for (const char *a = buf; a < buf + n; a += strlen(a) + 1) {
        if (strcmp(prev, "--job") == 0)
            job_ok = strstr(a, job_id) != NULL;
        else if (strcmp(prev, "--stage") == 0)
            stage_ok = strcmp(a, stage) == 0;
        else if (strcmp(prev, "--instance") == 0)
            inst_ok = strcmp(a, want) == 0;
        plan = plan || strcmp(a, "--plan") == 0;
        prev = a;
    }
    if (inst == NU_LAUNCHER_PLANNER)
        return job_ok && stage_ok && plan;
    return job_ok && stage_ok && inst_ok && !plan;
}

static const char *nu_launcher_base(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

pid_t nu_launcher_proc_find_planner(const char *spec_path, const char *stage)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    char buf[8192];
    pid_t found = 0, self = getpid();
    while (d && !found && (e = readdir(d)) != NULL) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0 || pid == self)
            continue;
        size_t n = nu_launcher_cmdline((pid_t)pid, buf, sizeof(buf));
        bool job_ok = false, stage_ok = false, plan = false, is_stage = false;
        const char *prev = "";
        for (const char *a = buf; a < buf + n; a += strlen(a) + 1) {
            if (strcmp(prev, "--job") == 0) /* the same spec file name: the same job */
                job_ok = strcmp(nu_launcher_base(a), nu_launcher_base(spec_path)) == 0;
            else if (strcmp(prev, "--stage") == 0)
                stage_ok = strcmp(a, stage) == 0;
            is_stage = is_stage || strcmp(a, "stage") == 0;
            plan = plan || strcmp(a, "--plan") == 0;
            prev = a;
        }
        if (job_ok && stage_ok && plan && is_stage)
            found = (pid_t)pid;
    }
    if (d)
        closedir(d);
    return found;
}

/* SIGTERM slot `k` of stage `s` (ours, or an adopted process still being it). */
static void nu_launcher_stop_slot(struct nu_ljob *j, size_t s, int k, int64_t now)
{
    struct nu_lslot *sl = nu_launcher_slot(j, s, k);
    sl->want = false;
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

void nu_launcher_proc_stop_all(nu_launcher_t *l, struct nu_ljob *j)
{
    int64_t now = nu_launcher_now_ms();
    (void)l;
    j->ending = true;
    /* the planners first: a SIGTERM ends a plan cleanly (the job ends anyway) */
    for (size_t s = 0; s < j->job->nstages; s++)
        if (j->st[s].unbounded)
            nu_launcher_stop_slot(j, s, NU_LAUNCHER_PLANNER, now);
    for (size_t s = 0; s < j->job->nstages; s++)
        for (int k = 0; k < j->st[s].cap; k++)
            nu_launcher_stop_slot(j, s, k, now);
}

int nu_launcher_proc_count(const struct nu_ljob *j)
{
    int n = 0;
    for (size_t s = 0; s < j->job->nstages; s++) {
        for (int k = 0; k < j->st[s].cap; k++)
            n += j->st[s].slots[k].pid > 0 || j->st[s].slots[k].foreign != 0;
        if (j->st[s].unbounded)
            n += j->st[s].planner.pid > 0 || j->st[s].planner.foreign != 0;
    }
    return n;
}
