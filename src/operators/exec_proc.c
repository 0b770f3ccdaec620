/*
 * exec_proc.c — the UDF protocol's frame codec and the child process behind one `exec`
 * operator instance: spawn (posix_spawnp, own process group, no shell), one request/answer
 * exchange under a deadline with poll(), stderr forwarding, kill and reap.
 */
#define _GNU_SOURCE /* posix_spawn_file_actions_addchdir_np */
#include "operators/exec_int.h"

#include "common/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define NU_EXEC_READ_CHUNK   (64u << 10)
#define NU_EXEC_EXIT_WAIT_MS 1000 /* how long a child that closed stdout gets to exit */

/* --- frames --- */

void nu_exec_frame_write(struct nu_buf *out, const char *kind, const void *body, size_t len)
{
    char hdr[NU_EXEC_MAX_HEADER];
    int n = snprintf(hdr, sizeof(hdr), NU_EXEC_MAGIC " %s %zu\n", kind, len);
    nu_buf_append(out, hdr, (size_t)n);
    nu_buf_append(out, body, len);
}

void nu_exec_reader_reset(struct nu_exec_reader *r)
{
    nu_buf_reset(&r->buf);
    r->off = 0;
    r->consumed = 0;
}

void nu_exec_reader_free(struct nu_exec_reader *r)
{
    nu_buf_free(&r->buf);
    r->off = 0;
    r->consumed = 0;
}

void nu_exec_reader_feed(struct nu_exec_reader *r, const void *p, size_t n)
{
    if (r->off == r->buf.len) {
        r->buf.len = 0;
        r->off = 0;
    } else if (r->off > (1u << 20) && r->off * 2 > r->buf.len) {
        memmove(r->buf.data, r->buf.data + r->off, r->buf.len - r->off);
        r->buf.len -= r->off;
        r->off = 0;
    }
    nu_buf_append(&r->buf, p, n);
}

void nu_exec_quote(const void *p, size_t n, char *out, size_t len)
{
    const unsigned char *s = p;
    size_t o = 0, i = 0;
    if (len < 8) {
        if (len)
            out[0] = '\0';
        return;
    }
    out[o++] = '"';
    for (; i < n && i < NU_EXEC_QUOTE_BYTES && o + 6 < len; i++) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c >= 0x20 && c < 0x7f) {
            out[o++] = (char)c;
        } else {
            o += (size_t)snprintf(out + o, len - o, "\\x%02x", c);
        }
    }
    out[o++] = '"';
    if (i < n && o + 4 < len) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

static nu_err_t nu_exec_garbage(const struct nu_exec_reader *r, const char *why,
                                struct nu_errbuf *eb)
{
    char q[NU_EXEC_QUOTE_BYTES * 4 + 8];
    nu_exec_quote(r->buf.data + r->off, r->buf.len - r->off, q, sizeof(q));
    return nu_err_set(eb, NU_ERR_CORRUPT, "%s at byte %zu of its output: %s", why, r->consumed, q);
}

nu_err_t nu_exec_reader_next(struct nu_exec_reader *r, struct nu_exec_frame *f, bool *have,
                             struct nu_errbuf *eb)
{
    static const char magic[] = NU_EXEC_MAGIC " ";
    const size_t mlen = sizeof(magic) - 1;
    const unsigned char *p = r->buf.data + r->off, *nl;
    size_t avail = r->buf.len - r->off, hlen, k = 0, len = 0, limit;

    *have = false;
    if (avail == 0)
        return NU_OK;
    if (memcmp(p, magic, avail < mlen ? avail : mlen) != 0)
        return nu_exec_garbage(r, "not a frame header", eb);
    nl = memchr(p, '\n', avail < NU_EXEC_MAX_HEADER ? avail : NU_EXEC_MAX_HEADER);
    if (!nl) {
        if (avail >= NU_EXEC_MAX_HEADER)
            return nu_exec_garbage(r, "frame header longer than 64 bytes", eb);
        return NU_OK;
    }
    hlen = (size_t)(nl - p) + 1;
    for (size_t i = mlen; i < hlen - 1 && p[i] != ' '; i++, k++) {
        if (!((p[i] >= 'a' && p[i] <= 'z') || p[i] == '_') || k >= NU_EXEC_MAX_KIND)
            return nu_exec_garbage(r, "bad frame kind", eb);
        f->kind[k] = (char)p[i];
    }
    f->kind[k] = '\0';
    if (k == 0 || mlen + k >= hlen - 1 || p[mlen + k] != ' ')
        return nu_exec_garbage(r, "frame header without a kind and a length", eb);
    const unsigned char *d = p + mlen + k + 1;
    size_t nd = (size_t)(nl - d);
    if (nd == 0 || nd > 10 || (nd > 1 && d[0] == '0'))
        return nu_exec_garbage(r, "bad frame length", eb);
    for (size_t i = 0; i < nd; i++) {
        if (d[i] < '0' || d[i] > '9')
            return nu_exec_garbage(r, "bad frame length", eb);
        len = len * 10 + (size_t)(d[i] - '0');
    }
    limit = strcmp(f->kind, "rows") == 0 ? NU_EXEC_MAX_FRAME : NU_EXEC_MAX_CONTROL;
    if (len > limit)
        return nu_err_set(eb, NU_ERR_TOO_LARGE,
                          "frame \"%s\" at byte %zu of its output has %zu bytes, over the limit "
                          "of %zu",
                          f->kind, r->consumed, len, limit);
    if (avail - hlen < len)
        return NU_OK;
    f->body = p + hlen;
    f->len = len;
    r->off += hlen + len;
    r->consumed += hlen + len;
    *have = true;
    return NU_OK;
}

/* --- the child --- */

struct nu_exec_proc {
    pid_t pid;
    int in_fd, out_fd, err_fd; /* -1 when closed */
    bool alive;
    struct nu_exec_reader rd;
    struct nu_buf line; /* a partial stderr line */
    bool line_cut;
};

static int64_t nu_exec_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nu_exec_close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* The environment of the child: ours, with the spec's entries added or replacing ours. */
static char **nu_exec_envp(char *const *extra)
{
    size_t n = 0, ne = 0, k = 0;
    char **envp;
    while (environ && environ[n])
        n++;
    while (extra && extra[ne])
        ne++;
    envp = nu_xcalloc(n + ne + 1, sizeof(*envp));
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(environ[i], '=');
        size_t nlen = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
        bool replaced = false;
        for (size_t j = 0; j < ne && !replaced; j++)
            replaced = strncmp(extra[j], environ[i], nlen) == 0 && extra[j][nlen] == '=';
        if (!replaced)
            envp[k++] = environ[i];
    }
    for (size_t j = 0; j < ne; j++)
        envp[k++] = extra[j];
    envp[k] = NULL;
    return envp;
}

nu_err_t nu_exec_proc_start(const struct nu_exec_spec *spec, nu_exec_proc_t **out,
                            struct nu_errbuf *eb)
{
    int sv[2] = {-1, -1}, po[2] = {-1, -1}, pe[2] = {-1, -1};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, dfl;
    char **envp = NULL;
    nu_exec_proc_t *p = NULL;
    pid_t pid = -1;
    nu_err_t rc = NU_OK;
    int e;

    *out = NULL;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0 || pipe2(po, O_CLOEXEC) != 0 ||
        pipe2(pe, O_CLOEXEC) != 0) {
        rc = nu_err_set(eb, NU_ERR_SYSTEM, "could not create pipes for UDF \"%s\": %s",
                        spec->argv[0], strerror(errno));
        goto out;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_adddup2(&fa, sv[1], 0);
    posix_spawn_file_actions_adddup2(&fa, po[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
    if (spec->cwd)
        posix_spawn_file_actions_addchdir_np(&fa, spec->cwd);
    sigemptyset(&none);
    sigemptyset(&dfl);
    int sigs[] = {SIGPIPE, SIGINT, SIGTERM, SIGCHLD, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigaddset(&dfl, sigs[i]);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &dfl);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                        POSIX_SPAWN_SETSIGDEF);
    envp = nu_exec_envp(spec->env);
    e = posix_spawnp(&pid, spec->argv[0], &fa, &attr, spec->argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (e != 0) {
        rc = nu_err_set(eb, NU_ERR_OPERATOR, "could not start UDF \"%s\"%s%s%s: %s", spec->argv[0],
                        spec->cwd ? " in directory \"" : "", spec->cwd ? spec->cwd : "",
                        spec->cwd ? "\"" : "", strerror(e));
        goto out;
    }
    p = nu_xcalloc(1, sizeof(*p));
    p->pid = pid;
    p->alive = true;
    p->in_fd = sv[0];
    p->out_fd = po[0];
    p->err_fd = pe[0];
    sv[0] = po[0] = pe[0] = -1;
    fcntl(p->in_fd, F_SETFL, fcntl(p->in_fd, F_GETFL) | O_NONBLOCK);
    fcntl(p->out_fd, F_SETFL, fcntl(p->out_fd, F_GETFL) | O_NONBLOCK);
    fcntl(p->err_fd, F_SETFL, fcntl(p->err_fd, F_GETFL) | O_NONBLOCK);
    *out = p;
out:
    free(envp);
    for (int i = 0; i < 2; i++) {
        nu_exec_close_fd(&sv[i]);
        nu_exec_close_fd(&po[i]);
        nu_exec_close_fd(&pe[i]);
    }
    return rc;
}

bool nu_exec_proc_alive(const nu_exec_proc_t *p)
{
    return p && p->alive;
}

int nu_exec_proc_pid(const nu_exec_proc_t *p)
{
    return p ? (int)p->pid : -1;
}

static void nu_exec_line_emit(nu_exec_proc_t *p, nu_exec_line_fn on_line, void *ctx)
{
    if (p->line.len && p->line.data[p->line.len - 1] == '\r')
        p->line.len--;
    nu_buf_putc(&p->line, '\0');
    if (on_line)
        on_line(ctx, (const char *)p->line.data);
    nu_buf_reset(&p->line);
    p->line_cut = false;
}

/* Read what stderr holds now; forward complete lines. At EOF (or when `flush`) forward the
 * partial line too. */
static void nu_exec_drain_stderr(nu_exec_proc_t *p, bool flush, nu_exec_line_fn on_line, void *ctx)
{
    char chunk[4096];
    while (p->err_fd >= 0) {
        ssize_t n = read(p->err_fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
                nu_exec_close_fd(&p->err_fd);
                flush = true;
            }
            break;
        }
        for (ssize_t i = 0; i < n; i++) {
            if (chunk[i] == '\n')
                nu_exec_line_emit(p, on_line, ctx);
            else if (p->line.len < NU_EXEC_MAX_LOG_LINE)
                nu_buf_putc(&p->line, (unsigned char)chunk[i]);
            else if (!p->line_cut) {
                nu_buf_append(&p->line, "...", 3);
                p->line_cut = true;
            }
        }
    }
    if (flush && p->line.len)
        nu_exec_line_emit(p, on_line, ctx);
}

/* Reap the child (waiting at most wait_ms for it to exit by itself, then SIGKILL to its process
 * group) and describe how it ended into why. */
static void nu_exec_reap(nu_exec_proc_t *p, int wait_ms, nu_exec_line_fn on_line, void *ctx,
                         char *why, size_t whylen)
{
    int status = 0;
    pid_t r = 0;
    int64_t deadline = nu_exec_now_ms() + wait_ms;
    bool killed = false;

    if (!p->alive)
        return;
    nu_exec_close_fd(&p->in_fd);
    for (;;) {
        r = waitpid(p->pid, &status, WNOHANG);
        if (r != 0 && !(r < 0 && errno == EINTR))
            break;
        if (nu_exec_now_ms() >= deadline && !killed) {
            kill(-p->pid, SIGKILL);
            kill(p->pid, SIGKILL);
            killed = true;
        }
        nu_exec_drain_stderr(p, false, on_line, ctx);
        struct pollfd pf = {.fd = p->err_fd, .events = POLLIN};
        poll(&pf, p->err_fd >= 0 ? 1 : 0, 10);
    }
    if (!killed)
        kill(-p->pid, SIGKILL); /* what it left behind in its group */
    nu_exec_drain_stderr(p, true, on_line, ctx);
    p->alive = false;
    if (!why)
        return;
    if (r < 0)
        snprintf(why, whylen, "could not wait for the UDF: %s", strerror(errno));
    else if (WIFEXITED(status))
        snprintf(why, whylen, "UDF exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status) && killed)
        snprintf(why, whylen, "UDF did not exit and was killed");
    else if (WIFSIGNALED(status))
        snprintf(why, whylen, "UDF was killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(why, whylen, "UDF ended with wait status %d", status);
}

/* Kill the child at once (its whole process group) and reap it. */
static void nu_exec_kill(nu_exec_proc_t *p, nu_exec_line_fn on_line, void *ctx)
{
    if (p->alive) {
        kill(-p->pid, SIGKILL);
        kill(p->pid, SIGKILL);
    }
    nu_exec_reap(p, 0, on_line, ctx, NULL, 0);
}

nu_err_t nu_exec_proc_call(nu_exec_proc_t *p, const void *req, size_t len, int timeout_ms,
                           nu_exec_frame_fn on_frame, nu_exec_line_fn on_line, void *ctx,
                           struct nu_errbuf *eb)
{
    const unsigned char *w = req;
    size_t wpos = 0;
    int64_t deadline = nu_exec_now_ms() + timeout_ms;
    unsigned char *chunk = NULL;
    bool done = false;
    char why[256];
    struct nu_errbuf feb;
    nu_err_t rc = NU_OK;

    nu_errbuf_clear(&feb);
    if (!p->alive)
        return nu_err_set(eb, NU_ERR_OPERATOR_RETRY, "UDF is not running");
    if (p->rd.off < p->rd.buf.len) {
        char q[NU_EXEC_QUOTE_BYTES * 4 + 8];
        nu_exec_quote(p->rd.buf.data + p->rd.off, p->rd.buf.len - p->rd.off, q, sizeof(q));
        nu_exec_kill(p, on_line, ctx);
        return nu_err_set(eb, NU_ERR_OPERATOR_RETRY,
                          "UDF wrote output after the end of its previous answer: %s; it was "
                          "killed and will be restarted",
                          q);
    }
    nu_exec_reader_reset(&p->rd);
    chunk = nu_xmalloc(NU_EXEC_READ_CHUNK);
    while (!done) {
        struct pollfd pf[3];
        nfds_t n = 0;
        int64_t left = deadline - nu_exec_now_ms();
        if (left <= 0) {
            nu_exec_kill(p, on_line, ctx);
            rc = nu_err_set(eb, NU_ERR_OPERATOR_RETRY,
                            "UDF did not answer within %d ms (timeout_ms); its process group was "
                            "killed and it will be restarted",
                            timeout_ms);
            goto out;
        }
        pf[n++] = (struct pollfd){.fd = p->out_fd, .events = POLLIN};
        pf[n++] = (struct pollfd){.fd = p->err_fd, .events = POLLIN};
        if (wpos < len)
            pf[n++] = (struct pollfd){.fd = p->in_fd, .events = POLLOUT};
        int pr = poll(pf, n, (int)(left > 1000 ? 1000 : left));
        if (pr < 0 && errno != EINTR) {
            nu_exec_kill(p, on_line, ctx);
            rc = nu_err_set(eb, NU_ERR_OPERATOR_RETRY, "could not poll the UDF's pipes: %s",
                            strerror(errno));
            goto out;
        }
        if (pr <= 0)
            continue;
        if (n == 3 && (pf[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t k = send(p->in_fd, w + wpos, len - wpos, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (k > 0) {
                wpos += (size_t)k;
            } else if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                /* it stopped reading: it is exiting or has exited */
                nu_exec_reap(p, NU_EXEC_EXIT_WAIT_MS, on_line, ctx, why, sizeof(why));
                rc =
                    nu_err_set(eb, NU_ERR_OPERATOR_RETRY, "%s (it stopped reading its input)", why);
                goto out;
            }
        }
        if (pf[1].revents)
            nu_exec_drain_stderr(p, false, on_line, ctx);
        if (pf[0].revents) {
            ssize_t k = read(p->out_fd, chunk, NU_EXEC_READ_CHUNK);
            if (k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
                nu_exec_reap(p, NU_EXEC_EXIT_WAIT_MS, on_line, ctx, why, sizeof(why));
                rc = nu_err_set(eb, NU_ERR_OPERATOR_RETRY, "%s", why);
                goto out;
            }
            if (k > 0)
                nu_exec_reader_feed(&p->rd, chunk, (size_t)k);
            for (;;) {
                struct nu_exec_frame f;
                bool have = false;
                nu_err_t fe = nu_exec_reader_next(&p->rd, &f, &have, &feb);
                if (fe == NU_OK && have && !done)
                    fe = on_frame(ctx, &f, &done, &feb);
                else if (fe == NU_OK && have && done)
                    fe = nu_err_set(&feb, NU_ERR_CORRUPT,
                                    "frame \"%s\" after the end of the answer", f.kind);
                if (fe != NU_OK) {
                    nu_exec_kill(p, on_line, ctx);
                    rc = nu_err_set(eb, NU_ERR_OPERATOR_RETRY,
                                    "UDF broke the protocol: %s; it was killed and will be "
                                    "restarted",
                                    nu_err_msg(&feb));
                    goto out;
                }
                if (!have)
                    break;
            }
        }
    }
    if (wpos < len) {
        nu_exec_kill(p, on_line, ctx);
        rc = nu_err_set(eb, NU_ERR_OPERATOR_RETRY,
                        "UDF answered before reading its whole request; it was killed and will "
                        "be restarted");
        goto out;
    }
    nu_exec_drain_stderr(p, false, on_line, ctx);
out:
    free(chunk);
    return rc;
}

void nu_exec_proc_destroy(nu_exec_proc_t *p, int grace_ms, nu_exec_line_fn on_line, void *ctx)
{
    if (!p)
        return;
    nu_exec_reap(p, grace_ms, on_line, ctx, NULL, 0);
    nu_exec_close_fd(&p->in_fd);
    nu_exec_close_fd(&p->out_fd);
    nu_exec_close_fd(&p->err_fd);
    nu_exec_reader_free(&p->rd);
    nu_buf_free(&p->line);
    free(p);
}
