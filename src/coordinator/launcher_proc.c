/* launcher_proc.c — the launcher's stage processes: start, output, reaping, restarts, stops. */
#include "coordinator/launcher_int.h"

#include "common/log.h"
#include "common/mem.h"
#include "coordinator/store.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

struct nu_lline_ctx {
    const struct nu_ljob *j;
    size_t s;
    int k;
};

/* A line of a child's output goes to our stderr prefixed "[job/stage/instance] ", in one write
 * so lines of concurrent writers do not interleave. */
static void nu_launcher_line(void *ctx, const char *line, size_t len)
{
    const struct nu_lline_ctx *c = ctx;
    char buf[NU_RUN_LINE_MAX + 256];
    int n = snprintf(buf, sizeof(buf), "[%s/%s/%d] %.*s\n", c->j->job->id,
                     c->j->job->stages[c->s].id, c->k, (int)len, line);
    if (n > (int)sizeof(buf) - 1)
        n = (int)sizeof(buf) - 1;
    if (n > 0) {
        ssize_t ignored = write(2, buf, (size_t)n);
        (void)ignored;
    }
}

static void nu_launcher_read(struct nu_ljob *j, size_t s, int k)
{
    struct nu_lslot *sl = &j->st[s].slots[k];
    struct nu_lline_ctx c = {j, s, k};
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
    argv[n++] = nu_xstrdup("--instance");
    argv[n++] = nu_xasprintf("%d", k);
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
static void nu_launcher_exec(char **argv, int wfd, pid_t parent)
{
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigset_t none;
    setpgid(0, 0); /* a terminal's ^C reaches the coordinator only */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
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
    struct nu_lslot *sl = &j->st[s].slots[k];
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
        nu_launcher_exec(argv, fds[1], parent);
    }
    close(fds[1]);
    sl->pid = pid;
    sl->fd = fds[0];
    sl->stopping = sl->respawn = false;
    memset(&sl->lines, 0, sizeof(sl->lines));
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
    struct nu_lslot *sl = &ls->slots[k];
    const struct nu_job_stage *st = &j->job->stages[s];
    struct nu_errbuf dbe = {0};
    char tail[1024], how[64], reason[1200];
    pid_t pid = sl->pid;
    bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;

    if (sl->fd >= 0)
        nu_launcher_read(j, s, k);
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
        nu_launcher_db_exited(l->db, j->job->id, st->id, k, pid, !clean, clean ? "stopped" : reason,
                              &dbe);
        if (sl->respawn && !j->ending)
            sl->start_at_ms = nu_launcher_now_ms();
        sl->respawn = false;
        return;
    }
    if (clean) {
        sl->done = true;
        ls->finished = true;
        nu_launcher_db_exited(l->db, j->job->id, st->id, k, pid, false, "complete", &dbe);
        return;
    }
    nu_launcher_db_exited(l->db, j->job->id, st->id, k, pid, true, reason, &dbe);
    if (WIFEXITED(status) && (WEXITSTATUS(status) == NU_RUN_EXIT_FATAL ||
                              WEXITSTATUS(status) == 2 || WEXITSTATUS(status) == 127)) {
        char msg[1400];
        snprintf(msg, sizeof(msg), "stage \"%s\" instance %d %s and is not restarted: %s", st->id,
                 k, how, tail);
        nu_launcher_job_fail(l, j, msg);
        return;
    }
    /* the rule of the local runner (runner.h): only crashes with no split of the stage done or
     * dead-lettered in between count, and an instance gets max_crashes + 1 of them */
    int64_t splits = 0, dead = 0;
    if (nu_launcher_db_progress(l->db, j->job->id, st->id, &splits, &dead, &dbe) == NU_OK &&
        (splits > sl->splits_at_crash || dead > sl->dead_at_crash))
        sl->crashes = 0;
    sl->splits_at_crash = splits;
    sl->dead_at_crash = dead;
    sl->crashes++;
    if (sl->crashes > (unsigned)st->max_crashes + 1) {
        char msg[1400];
        snprintf(msg, sizeof(msg),
                 "stage \"%s\" instance %d %s after %u restart%s (max_crashes %d)%s%s", st->id, k,
                 how, sl->crashes - 1, sl->crashes == 2 ? "" : "s", st->max_crashes,
                 tail[0] ? ": " : "", tail);
        nu_launcher_job_fail(l, j, msg);
        return;
    }
    l->stats.restarts++;
    int delay = nu_run_backoff_ms(sl->crashes);
    sl->start_at_ms = nu_launcher_now_ms() + delay;
    nu_log(NU_LOG_WARN, "launcher",
           "stage \"%s\" instance %d of job \"%s\" %s; restarting in %d ms (%u of %d)", st->id, k,
           j->job->id, how, delay, sl->crashes, st->max_crashes + 1);
}

static void nu_launcher_poll_output(struct nu_ljob *j)
{
    struct pollfd pf[64];
    size_t who[64][2];
    nfds_t n = 0;
    for (size_t s = 0; s < j->job->nstages; s++)
        for (int k = 0; k < j->st[s].cap; k++) {
            if (j->st[s].slots[k].fd < 0)
                continue;
            if (n == 64) {
                nu_launcher_read(j, s, k); /* beyond the batch: non-blocking read anyway */
                continue;
            }
            pf[n] = (struct pollfd){.fd = j->st[s].slots[k].fd, .events = POLLIN};
            who[n][0] = s;
            who[n++][1] = (size_t)k;
        }
    if (n && poll(pf, n, 0) > 0)
        for (nfds_t i = 0; i < n; i++)
            if (pf[i].revents)
                nu_launcher_read(j, who[i][0], (int)who[i][1]);
}

void nu_launcher_proc_step(nu_launcher_t *l, struct nu_ljob *j)
{
    int64_t now = nu_launcher_now_ms();
    nu_launcher_poll_output(j);
    for (size_t s = 0; s < j->job->nstages; s++) {
        for (int k = 0; k < j->st[s].cap; k++) {
            struct nu_lslot *sl = &j->st[s].slots[k];
            int status = 0;
            if (sl->pid > 0 && waitpid(sl->pid, &status, WNOHANG) == sl->pid)
                nu_launcher_ended(l, j, s, k, status);
        }
    }
    for (size_t s = 0; s < j->job->nstages; s++) {
        for (int k = 0; k < j->st[s].cap; k++) {
            struct nu_lslot *sl = &j->st[s].slots[k];
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
        for (int k = 0; k < j->st[s].cap; k++) {
            const struct nu_lslot *sl = &j->st[s].slots[k];
            if (sl->pid || sl->foreign || (sl->want && !sl->done))
                return;
        }
    j->processes_done = true;
    nu_log(NU_LOG_INFO, "launcher", "every stage process of job \"%s\" has finished", j->job->id);
}

bool nu_launcher_proc_is_stage(pid_t pid, const char *job_id, const char *stage, int inst)
{
    char path[64], buf[8192], want[16];
    bool job_ok = false, stage_ok = false, inst_ok = false;
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    snprintf(want, sizeof(want), "%d", inst);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    const char *prev = "";
    for (const char *a = buf; a < buf + n; a += strlen(a) + 1) {
        if (strcmp(prev, "--job") == 0)
            job_ok = strstr(a, job_id) != NULL;
        else if (strcmp(prev, "--stage") == 0)
            stage_ok = strcmp(a, stage) == 0;
        else if (strcmp(prev, "--instance") == 0)
            inst_ok = strcmp(a, want) == 0;
        prev = a;
    }
    return job_ok && stage_ok && inst_ok;
}

void nu_launcher_proc_stop_all(nu_launcher_t *l, struct nu_ljob *j)
{
    int64_t now = nu_launcher_now_ms();
    (void)l;
    j->ending = true;
    for (size_t s = 0; s < j->job->nstages; s++)
        for (int k = 0; k < j->st[s].cap; k++) {
            struct nu_lslot *sl = &j->st[s].slots[k];
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
}

int nu_launcher_proc_count(const struct nu_ljob *j)
{
    int n = 0;
    for (size_t s = 0; s < j->job->nstages; s++)
        for (int k = 0; k < j->st[s].cap; k++)
            n += j->st[s].slots[k].pid > 0 || j->st[s].slots[k].foreign != 0;
    return n;
}
