/* runner.c — the local runner: topics, plans, stage processes, supervision and progress. */
#include "stage/runner.h"

#include "common/log.h"
#include "common/mem.h"
#include "stage/planner.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NU_RUN_TICK_MS          100
#define NU_RUN_TTY_REDRAW_MS    250
#define NU_RUN_PLAIN_EVERY_MS   5000
#define NU_RUN_EVENTS_PER_TICK  10000
#define NU_RUN_DRAIN_TIMEOUT_MS 15000

/* One stage instance process. */
struct nu_run_child {
    size_t stage;
    unsigned inst;
    bool planner;            /* the continuous planner of an unbounded source, not an instance */
    pid_t pid;               /* 0: not running */
    int fd;                  /* read end of its output pipe; -1 when closed */
    bool done;               /* exited 0 */
    unsigned crashes;        /* crashes in a row with no progress of its stage in between */
    int64_t splits_at_crash; /* the stage's splits done at the last crash */
    int64_t dead_at_crash;   /* … and its dead letters */
    int64_t start_at_ms;     /* not running and not done: when to (re)start */
    char **argv;             /* owned, NULL-terminated */
    struct nu_run_lines lines;
};

struct nu_run {
    const struct nu_job *job;
    const struct nu_run_opts *o;
    struct nu_run_stats *stats;
    struct nu_run_child *ch;
    size_t nch;
    rd_kafka_t *events; /* consumer of the events topic */
    char events_topic[NU_JOB_NAME_MAX];
    int64_t events_end; /* offset after the last event read */
    int drawn;          /* progress lines on the terminal below the cursor */
    int64_t started_ms, last_progress_ms;
    bool draining; /* stop asked: the planners end their plans, the stages drain */
};

static int64_t nu_run_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Erase the progress block so other output can be printed above where it was. */
static void nu_run_progress_clear(struct nu_run *r)
{
    if (r->o->tty && r->drawn > 0)
        fprintf(r->o->err, "\033[%dF\033[J", r->drawn);
    r->drawn = 0;
}

static void nu_run_progress(struct nu_run *r, bool force)
{
    int64_t now = nu_run_now_ms();
    int every = r->o->tty ? NU_RUN_TTY_REDRAW_MS : NU_RUN_PLAIN_EVERY_MS;
    if (r->o->quiet || (!force && now - r->last_progress_ms < every))
        return;
    r->last_progress_ms = now;
    nu_run_stats_rate(r->stats, now);
    nu_run_progress_clear(r);
    int n = nu_run_progress_print(r->o->err, r->job, r->stats, now - r->started_ms, r->o->tty);
    if (r->o->tty)
        r->drawn = n;
}

struct nu_run_line_ctx {
    struct nu_run *r;
    struct nu_run_child *c;
};

/* A line of a child's output: printed with its "[S/K] " prefix. */
static void nu_run_child_line(void *ctx, const char *line, size_t len)
{
    struct nu_run_line_ctx *lc = ctx;
    struct nu_run *r = lc->r;
    const char *ps = lc->c->planner ? strstr(line, " planned_splits=") : NULL;
    if (ps) {
        struct nu_run_stage_stats *st = &r->stats->st[lc->c->stage];
        unsigned long long n = strtoull(ps + 16, NULL, 10);
        if (n > st->planned_splits)
            st->planned_splits = n;
    }
    if (r->o->quiet && (strstr(line, "level=info") || strstr(line, "level=debug")))
        return;
    nu_run_progress_clear(r);
    if (lc->c->planner)
        fprintf(r->o->err, "[%s/plan] %.*s\n", r->job->stages[lc->c->stage].id, (int)len, line);
    else
        fprintf(r->o->err, "[%s/%u] %.*s\n", r->job->stages[lc->c->stage].id, lc->c->inst, (int)len,
                line);
}

/* Read what is available from a child's pipe; closes it at end of file. */
static void nu_run_child_read(struct nu_run *r, struct nu_run_child *c)
{
    char buf[8192];
    struct nu_run_line_ctx lc = {r, c};
    for (;;) {
        ssize_t n = read(c->fd, buf, sizeof(buf));
        if (n > 0) {
            nu_run_lines_feed(&c->lines, buf, (size_t)n, nu_run_child_line, &lc);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        nu_run_lines_flush(&c->lines, nu_run_child_line, &lc);
        close(c->fd);
        c->fd = -1;
        return;
    }
}

/* The argv of an instance (extra NULL) or of a planner (extra "--plan" or "--end-plan"). */
static char **nu_run_child_argv(const struct nu_run *r, size_t stage, unsigned inst,
                                const char *extra)
{
    const struct nu_run_opts *o = r->o;
    size_t n = 0;
    char **argv = nu_xcalloc(12 + 2 * o->nsets, sizeof(*argv));
    argv[n++] = nu_xstrdup(o->exe);
    argv[n++] = nu_xstrdup("stage");
    argv[n++] = nu_xstrdup("--job");
    argv[n++] = nu_xstrdup(o->job_path);
    argv[n++] = nu_xstrdup("--stage");
    argv[n++] = nu_xstrdup(r->job->stages[stage].id);
    argv[n++] = nu_xstrdup("--instance");
    argv[n++] = nu_xasprintf("%u", inst);
    argv[n++] = nu_xstrdup("--brokers");
    argv[n++] = nu_xstrdup(o->brokers);
    if (extra)
        argv[n++] = nu_xstrdup(extra);
    for (size_t i = 0; i < o->nsets; i++) {
        argv[n++] = nu_xstrdup("--set");
        argv[n++] = nu_xstrdup(o->sets[i]);
    }
    argv[n] = NULL;
    return argv;
}

static void nu_run_argv_free(char **argv)
{
    for (char **a = argv; a && *a; a++)
        free(*a);
    free(argv);
}

/* In the child between fork and exec: only async-signal-safe calls. */
static void nu_run_child_exec(const struct nu_run_child *c, int wfd, pid_t parent)
{
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigset_t none;
    setpgid(0, 0); /* a terminal's ^C reaches the runner only; it forwards SIGTERM */
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
    execv(c->argv[0], c->argv);
    static const char msg[] = "could not execute the stage program\n";
    ssize_t ignored = write(2, msg, sizeof(msg) - 1);
    (void)ignored;
    _exit(127);
}

static nu_err_t nu_run_child_start(struct nu_run *r, struct nu_run_child *c, struct nu_errbuf *eb)
{
    int fds[2];
    if (pipe(fds) != 0)
        return nu_err_set(eb, NU_ERR_SYSTEM, "could not create a pipe: %s", strerror(errno));
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        return nu_err_set(eb, NU_ERR_SYSTEM, "could not start stage \"%s\" instance %u: %s",
                          r->job->stages[c->stage].id, c->inst, strerror(e));
    }
    if (pid == 0) {
        close(fds[0]);
        nu_run_child_exec(c, fds[1], parent);
    }
    close(fds[1]);
    c->pid = pid;
    c->fd = fds[0];
    memset(&c->lines, 0, sizeof(c->lines)); /* a failure report quotes this run only */
    return NU_OK;
}

/* The child `c` ended with wait status `status`: done, restart later, or fail the run. */
static nu_err_t nu_run_child_ended(struct nu_run *r, struct nu_run_child *c, int status,
                                   struct nu_errbuf *eb)
{
    const struct nu_job_stage *st = &r->job->stages[c->stage];
    struct nu_run_stage_stats *ss = &r->stats->st[c->stage];
    char tail[1024], how[64];

    if (c->fd >= 0)
        nu_run_child_read(r, c); /* the rest of its output, up to end of file */
    c->pid = 0;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        c->done = true;
        if (!c->planner)
            ss->done++;
        return NU_OK;
    }
    nu_run_lines_reason(&c->lines, tail, sizeof(tail));
    if (WIFEXITED(status))
        snprintf(how, sizeof(how), "exited with status %d", WEXITSTATUS(status));
    else
        snprintf(how, sizeof(how), "was killed by signal %d",
                 WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    if (WIFEXITED(status) && (WEXITSTATUS(status) == NU_RUN_EXIT_FATAL ||
                              WEXITSTATUS(status) == 2 || WEXITSTATUS(status) == 127))
        return nu_err_set(eb, NU_ERR_OPERATOR, "stage \"%s\" %s %u %s and is not restarted: %s",
                          st->id, c->planner ? "planner" : "instance", c->inst, how, tail);
    /* Only crashes with no progress in between count: the stage itself dead-letters a split
     * that killed max_crashes holders at its offset, and the first crash may land in a
     * transaction of many splits before the guilty one is isolated, so an instance gets
     * max_crashes + 1 restarts in a row before the run gives up. */
    if (ss->splits > c->splits_at_crash || ss->dead_letters > c->dead_at_crash)
        c->crashes = 0;
    c->splits_at_crash = ss->splits;
    c->dead_at_crash = ss->dead_letters;
    c->crashes++;
    if (c->crashes > (unsigned)st->max_crashes + 1)
        return nu_err_set(eb, NU_ERR_OPERATOR,
                          "stage \"%s\" instance %u %s after %u restart%s (max_crashes %d): %s",
                          st->id, c->inst, how, c->crashes - 1, c->crashes == 2 ? "" : "s",
                          st->max_crashes, tail);
    ss->restarts++;
    c->start_at_ms = nu_run_now_ms() + nu_run_backoff_ms(c->crashes);
    nu_run_progress_clear(r);
    fprintf(r->o->err, "nurion run: stage \"%s\" %s %u %s; restarting in %.1f s (%u of %d)\n",
            st->id, c->planner ? "planner" : "instance", c->inst, how,
            nu_run_backoff_ms(c->crashes) / 1000.0, c->crashes, st->max_crashes + 1);
    return NU_OK;
}

static struct nu_run_child *nu_run_child_by_pid(struct nu_run *r, pid_t pid)
{
    for (size_t i = 0; i < r->nch; i++)
        if (r->ch[i].pid == pid)
            return &r->ch[i];
    return NULL;
}

/* Reap every child that has ended. */
static nu_err_t nu_run_reap(struct nu_run *r, struct nu_errbuf *eb)
{
    nu_err_t err = NU_OK;
    for (;;) {
        int status = 0;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0)
            return err;
        struct nu_run_child *c = nu_run_child_by_pid(r, pid);
        if (c && !err)
            err = nu_run_child_ended(r, c, status, eb);
        else if (c)
            c->pid = 0;
    }
}

/* Wait up to `ms` for output of the running children (and print it). */
static void nu_run_poll_output(struct nu_run *r, int ms)
{
    struct pollfd *pf = nu_xcalloc(r->nch + 1, sizeof(*pf));
    size_t *idx = nu_xcalloc(r->nch + 1, sizeof(*idx));
    nfds_t n = 0;
    for (size_t i = 0; i < r->nch; i++) {
        if (r->ch[i].fd < 0)
            continue;
        pf[n] = (struct pollfd){.fd = r->ch[i].fd, .events = POLLIN};
        idx[n++] = i;
    }
    if (poll(pf, n, ms) > 0)
        for (nfds_t k = 0; k < n; k++)
            if (pf[k].revents)
                nu_run_child_read(r, &r->ch[idx[k]]);
    free(idx);
    free(pf);
}

/* Read the events that have arrived; *eof_at gets the end offset of an EOF seen (else -1). */
static void nu_run_events_drain(struct nu_run *r, int64_t *eof_at)
{
    if (eof_at)
        *eof_at = -1;
    for (int k = 0; k < NU_RUN_EVENTS_PER_TICK; k++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r->events, 0);
        if (!m)
            return;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (eof_at)
                *eof_at = m->offset;
        } else if (m->err) {
            NU_LOG_DEBUG_AREA("kafka", "run", "events topic: %s", rd_kafka_message_errstr(m));
        } else {
            nu_run_stats_apply(r->stats, r->job, m->payload, m->len);
            r->events_end = m->offset + 1;
        }
        rd_kafka_message_destroy(m);
    }
}

/* After the job completed: read the events topic up to its end, so the summary is exact. */
static void nu_run_events_finish(struct nu_run *r)
{
    int64_t lo = 0, hi = 0, eof = -1;
    int64_t deadline = nu_run_now_ms() + NU_RUN_DRAIN_TIMEOUT_MS;
    if (rd_kafka_query_watermark_offsets(r->events, r->events_topic, 0, &lo, &hi, 5000))
        return;
    /* the end of read_committed reading reaches hi once the last transaction's markers are in */
    while (r->events_end < hi && eof < hi && nu_run_now_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r->events, 100);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eof = m->offset;
        } else if (!m->err) {
            nu_run_stats_apply(r->stats, r->job, m->payload, m->len);
            r->events_end = m->offset + 1;
        }
        rd_kafka_message_destroy(m);
    }
}

static nu_err_t nu_run_events_open(struct nu_run *r, struct nu_errbuf *eb)
{
    const struct nu_run_opts *o = r->o;
    char group[NU_JOB_NAME_MAX + 8];
    struct nu_kafka_prop *all = nu_xcalloc(o->nprops + 1, sizeof(*all));
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    nu_err_t err;

    nu_job_topic_events(r->job, r->events_topic, sizeof(r->events_topic));
    snprintf(group, sizeof(group), "%s.runner", r->events_topic);
    all[0] = (struct nu_kafka_prop){"enable.partition.eof", "true"};
    if (o->nprops)
        memcpy(all + 1, o->props, o->nprops * sizeof(*all));
    err = nu_kafka_client_new(NU_KAFKA_CONSUMER, o->brokers, group, NULL, all, o->nprops + 1,
                              &r->events, eb);
    if (err)
        goto out;
    /* assigned, never subscribed: the runner reads the whole stream and commits nothing */
    rd_kafka_topic_partition_list_add(parts, r->events_topic, 0)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_resp_err_t rerr = rd_kafka_assign(r->events, parts);
    if (rerr)
        err = nu_err_set(eb, nu_kafka_err_code(rerr), "could not read topic \"%s\": %s",
                         r->events_topic, rd_kafka_err2str(rerr));
out:
    rd_kafka_topic_partition_list_destroy(parts);
    free(all);
    return err;
}

/* SIGTERM every running child, wait up to the grace period, then SIGKILL the rest. */
static void nu_run_terminate(struct nu_run *r)
{
    int grace = r->o->grace_ms > 0 ? r->o->grace_ms : NU_RUN_GRACE_MS;
    int64_t deadline = nu_run_now_ms() + grace;
    bool killed = false;
    for (size_t i = 0; i < r->nch; i++)
        if (r->ch[i].pid > 0)
            kill(r->ch[i].pid, SIGTERM);
    for (;;) {
        size_t running = 0;
        for (size_t i = 0; i < r->nch; i++)
            running += r->ch[i].pid > 0;
        if (running == 0)
            break;
        if (!killed && nu_run_now_ms() >= deadline) {
            nu_run_progress_clear(r);
            fprintf(r->o->err, "nurion run: %zu stage process%s did not stop in %d ms; killing\n",
                    running, running == 1 ? "" : "es", grace);
            for (size_t i = 0; i < r->nch; i++)
                if (r->ch[i].pid > 0)
                    kill(r->ch[i].pid, SIGKILL);
            killed = true;
        }
        nu_run_poll_output(r, NU_RUN_TICK_MS);
        for (;;) {
            int status;
            pid_t pid = waitpid(-1, &status, WNOHANG);
            if (pid <= 0)
                break;
            struct nu_run_child *c = nu_run_child_by_pid(r, pid);
            if (c) {
                if (c->fd >= 0)
                    nu_run_child_read(r, c);
                c->pid = 0;
            }
        }
    }
}

/* Block the stop signals while librdkafka starts its threads, so only ours see them. */
static void nu_run_block_signals(bool block, sigset_t *saved)
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

static nu_err_t nu_run_prepare(struct nu_run *r, struct nu_errbuf *eb)
{
    const struct nu_run_opts *o = r->o;
    struct nu_plan_count *counts = nu_xcalloc(r->job->nstages, sizeof(*counts));
    rd_kafka_t *admin = NULL;
    sigset_t saved;
    nu_err_t err;

    nu_run_block_signals(true, &saved);
    err = nu_kafka_client_new(NU_KAFKA_ADMIN, o->brokers, NULL, NULL, o->props, o->nprops, &admin,
                              eb);
    if (!err)
        err = nu_plan_topics(r->job, admin, NU_PLAN_TIMEOUT_MS, eb);
    if (!err)
        err = nu_plan_sources(r->job, o->brokers, o->props, o->nprops, counts, eb);
    if (!err)
        err = nu_run_events_open(r, eb);
    nu_run_block_signals(false, &saved);
    for (size_t i = 0; i < r->job->nstages && !err; i++) {
        struct nu_run_stage_stats *st = &r->stats->st[i];
        if (r->job->stages[i].nupstream != 0)
            continue;
        st->planned = true;
        st->unbounded = counts[i].unbounded;
        st->planned_splits = counts[i].splits;
        st->planned_rows = counts[i].rows;
        st->planned_rows_known = counts[i].rows_known;
        if (!o->quiet && st->unbounded)
            fprintf(o->err,
                    "nurion run: source \"%s\" is unbounded: planned continuously until the run "
                    "is stopped (SIGINT/SIGTERM ends the plan, then the stages drain)\n",
                    r->job->stages[i].id);
        else if (!o->quiet)
            fprintf(o->err, "nurion run: source \"%s\": %s %" PRIu64 " splits%s\n",
                    r->job->stages[i].id, counts[i].existed ? "plan found," : "planned",
                    counts[i].splits, counts[i].existed ? " (resuming)" : "");
    }
    if (admin)
        rd_kafka_destroy(admin);
    free(counts);
    return err;
}

static void nu_run_cleanup_topics(struct nu_run *r)
{
    struct nu_plan_topic *topics = nu_xcalloc(NU_PLAN_MAX_TOPICS, sizeof(*topics));
    const char **names = nu_xcalloc(NU_PLAN_MAX_TOPICS, sizeof(*names));
    struct nu_errbuf eb;
    rd_kafka_t *admin = NULL;
    size_t n = nu_plan_topic_list(r->job, topics);
    nu_errbuf_clear(&eb);
    for (size_t i = 0; i < n; i++)
        names[i] = topics[i].name;
    nu_err_t err = nu_kafka_client_new(NU_KAFKA_ADMIN, r->o->brokers, NULL, NULL, r->o->props,
                                       r->o->nprops, &admin, &eb);
    if (!err)
        err = nu_kafka_topics_delete(admin, names, n, NU_PLAN_TIMEOUT_MS, &eb);
    if (err)
        fprintf(r->o->err, "nurion run: warning: could not delete the job's topics: %s\n",
                nu_err_msg(&eb));
    else
        fprintf(r->o->out, "deleted %zu topics of job \"%s\"\n", n, r->job->id);
    if (admin)
        rd_kafka_destroy(admin);
    free(names);
    free(topics);
}

/* Supervise until every child is done, one fails for good, or *stop is raised. */
static nu_err_t nu_run_supervise(struct nu_run *r, volatile sig_atomic_t *stop,
                                 struct nu_errbuf *eb)
{
    nu_err_t err = NU_OK;
    bool planners = false;
    for (size_t i = 0; i < r->nch; i++)
        planners |= r->ch[i].planner;
    while (!err) {
        if (*stop && planners && !r->draining) {
            /* an unbounded job stops by ending its plans: the stages finish what was planned */
            r->draining = true;
            nu_run_progress_clear(r);
            fprintf(r->o->err,
                    "nurion run: stopping: ending the plans of the unbounded sources; the stages "
                    "drain what was planned (signal again to stop at once)\n");
            *stop = 0;
            for (size_t i = 0; i < r->nch; i++) {
                struct nu_run_child *c = &r->ch[i];
                if (!c->planner)
                    continue;
                /* a planner started from now on ends the plan at once */
                nu_run_argv_free(c->argv);
                c->argv = nu_run_child_argv(r, c->stage, 0, "--end-plan");
                if (c->pid > 0)
                    kill(c->pid, SIGTERM);
                else if (!c->done)
                    c->start_at_ms = 0;
            }
        }
        if (*stop) {
            err = nu_err_set(eb, NU_ERR_CANCELLED, "stopped by signal %d", (int)*stop);
            break;
        }
        nu_run_poll_output(r, NU_RUN_TICK_MS);
        nu_run_events_drain(r, NULL);
        err = nu_run_reap(r, eb);
        if (err)
            break;
        size_t done = 0;
        int64_t now = nu_run_now_ms();
        for (size_t i = 0; i < r->nch && !err; i++) {
            struct nu_run_child *c = &r->ch[i];
            done += c->done;
            if (!c->done && c->pid == 0 && c->start_at_ms <= now)
                err = nu_run_child_start(r, c, eb);
        }
        if (!err && done == r->nch)
            break;
        nu_run_progress(r, false);
    }
    return err;
}

nu_err_t nu_run_job(const struct nu_job *job, const struct nu_run_opts *o,
                    volatile sig_atomic_t *stop, struct nu_run_stats *stats, struct nu_errbuf *eb)
{
    struct nu_run_stats local;
    struct nu_run r = {.job = job, .o = o, .stats = stats ? stats : &local};
    nu_err_t err;

    nu_run_stats_init(r.stats, job);
    r.started_ms = nu_run_now_ms();
    for (size_t i = 0; i < job->nstages; i++)
        r.nch += (size_t)o->instances[i] + (nu_plan_stage_unbounded(job, i) ? 1 : 0);
    r.ch = nu_xcalloc(r.nch ? r.nch : 1, sizeof(*r.ch));
    for (size_t i = 0, k = 0; i < job->nstages; i++) {
        r.stats->st[i].instances = o->instances[i];
        for (int j = 0; j < o->instances[i]; j++, k++) {
            struct nu_run_child *c = &r.ch[k];
            c->stage = i;
            c->inst = (unsigned)j;
            c->fd = -1;
            c->argv = nu_run_child_argv(&r, i, (unsigned)j, NULL);
        }
        if (nu_plan_stage_unbounded(job, i)) {
            struct nu_run_child *c = &r.ch[k++];
            c->stage = i;
            c->planner = true;
            c->fd = -1;
            c->argv = nu_run_child_argv(&r, i, 0, "--plan");
        }
    }

    err = nu_run_prepare(&r, eb);
    if (!err)
        err = nu_run_supervise(&r, stop, eb);
    if (err) {
        nu_run_terminate(&r);
        nu_run_progress_clear(&r);
        goto out;
    }
    nu_run_events_finish(&r);
    nu_run_progress_clear(&r);
    nu_run_stats_rate(r.stats, nu_run_now_ms());
    nu_run_summary_print(o->out, job, r.stats, nu_run_now_ms() - r.started_ms, o->brokers);
    if (o->cleanup)
        nu_run_cleanup_topics(&r);
out:
    if (r.events) {
        rd_kafka_consumer_close(r.events);
        rd_kafka_destroy(r.events);
    }
    for (size_t i = 0; i < r.nch; i++) {
        if (r.ch[i].fd >= 0)
            close(r.ch[i].fd);
        nu_run_argv_free(r.ch[i].argv);
    }
    free(r.ch);
    if (!stats)
        nu_run_stats_free(&local);
    return err;
}
