/*
 * cmd_client_submit.c — `nurion submit JOB.json [--wait]`: send a job spec to the coordinator
 * and, with --wait, follow the job's stages until it ends.
 */
#include "cli/cli.h"
#include "cli/cmd_client.h"
#include "cli/commands.h"

#include "common/mem.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define NU_CLI_SUBMIT_MAX_BYTES (16u << 20) /* a job spec file */
#define NU_CLI_POLL_MS          1000        /* GET /jobs/{id} while waiting */
#define NU_CLI_PLAIN_EVERY_MS   5000        /* a progress line when stderr is not a terminal */
#define NU_CLI_UNREACHABLE_MS   30000       /* give up waiting after this long without answers */

static volatile sig_atomic_t nu_cli_submit_stop;

static void nu_cli_submit_on_signal(int sig)
{
    nu_cli_submit_stop = sig;
}

static void nu_cli_submit_usage(FILE *out)
{
    fprintf(
        out,
        "usage: nurion submit [--wait] [--coordinator URL] [--token T] [--json] JOB.json\n\n"
        "Sends a job spec to the coordinator (POST /api/v1/jobs), which checks it, stores\n"
        "it, creates its topics and starts it; prints the job id. A rejected spec is listed\n"
        "problem by problem, `JOB.json: $.stages[1].operator: message`.\n\n"
        "options:\n"
        "  --wait             follow the job until it ends: a progress table per stage on\n"
        "                     stderr (redrawn in place on a terminal, else a line every %d s),\n"
        "                     then the final table; exit 0 only when the job "
        "succeeded\n" NU_CLI_CLIENT_OPTIONS_HELP
        "With --wait, 1 also means the job failed or was cancelled (the reason is printed);\n"
        "an interrupted wait (SIGINT, SIGTERM) leaves the job running and exits 130/143.\n",
        NU_CLI_PLAIN_EVERY_MS / 1000);
}

static int64_t nu_cli_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read a whole file of at most NU_CLI_SUBMIT_MAX_BYTES; prints why not on stderr. */
static char *nu_cli_submit_read(const char *file, size_t *len)
{
    struct stat sb;
    char *buf = NULL;
    FILE *f = fopen(file, "rb");
    if (f == NULL || fstat(fileno(f), &sb) != 0) {
        fprintf(stderr, "nurion submit: could not open job spec \"%s\": %s\n", file,
                strerror(errno));
        goto fail;
    }
    if (!S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > NU_CLI_SUBMIT_MAX_BYTES) {
        fprintf(stderr,
                "nurion submit: job spec \"%s\" is not a regular file of at most %u bytes\n", file,
                NU_CLI_SUBMIT_MAX_BYTES);
        goto fail;
    }
    buf = nu_xmalloc((size_t)sb.st_size + 1);
    *len = fread(buf, 1, (size_t)sb.st_size, f);
    if (ferror(f)) {
        fprintf(stderr, "nurion submit: could not read job spec \"%s\": %s\n", file,
                strerror(errno));
        goto fail;
    }
    buf[*len] = '\0';
    fclose(f);
    return buf;

fail:
    free(buf);
    if (f)
        fclose(f);
    return NULL;
}

static const char *nu_cli_job_state(const json_t *job)
{
    const char *s = json_string_value(json_object_get(job, "state"));
    return s ? s : "unknown";
}

static bool nu_cli_state_ended(const char *s)
{
    return strcmp(s, "succeeded") == 0 || strcmp(s, "failed") == 0 || strcmp(s, "cancelled") == 0;
}

/* The stage table of a job answer (GET /jobs/{id}). */
static void nu_cli_submit_table(const json_t *job, struct nu_cli_table *t)
{
    static const char *const head[] = {"STAGE",  "STATE", "SPLITS", "PROGRESS",    "ROWS OUT",
                                       "ROWS/S", "LAG",   "ETA",    "DEAD LETTERS"};
    size_t i;
    const json_t *st;
    nu_cli_table_init(t, sizeof(head) / sizeof(head[0]), head);
    json_array_foreach(json_object_get(job, "stages"), i, st)
    {
        char b[9][48];
        const json_t *planned = json_object_get(st, "planned_splits");
        const json_t *prog = json_object_get(st, "progress");
        const json_t *rate = json_object_get(st, "rows_per_s");
        const json_t *eta = json_object_get(st, "eta_s");
        long long done = json_integer_value(json_object_get(st, "splits_done"));
        if (json_is_integer(planned))
            snprintf(b[2], sizeof(b[2]), "%lld/%lld", done, (long long)json_integer_value(planned));
        else
            snprintf(b[2], sizeof(b[2]), "%lld", done);
        if (json_is_number(prog))
            snprintf(b[3], sizeof(b[3]), "%.0f%%", json_number_value(prog) * 100.0);
        else
            snprintf(b[3], sizeof(b[3]), "-");
        nu_cli_human((double)json_integer_value(json_object_get(st, "rows_out")), b[4],
                     sizeof(b[4]));
        if (json_is_number(rate))
            nu_cli_human(json_number_value(rate), b[5], sizeof(b[5]));
        else
            snprintf(b[5], sizeof(b[5]), "-");
        const char *sstate = json_string_value(json_object_get(st, "state"));
        if (json_is_number(eta) && sstate && strcmp(sstate, "running") == 0)
            snprintf(b[7], sizeof(b[7]), "%.0f s", json_number_value(eta));
        else
            snprintf(b[7], sizeof(b[7]), "-");
        const char *row[] = {nu_cli_jstr(st, "id", b[0], sizeof(b[0])),
                             nu_cli_jstr(st, "state", b[1], sizeof(b[1])),
                             b[2],
                             b[3],
                             b[4],
                             b[5],
                             nu_cli_jstr(st, "lag", b[6], sizeof(b[6])),
                             b[7],
                             nu_cli_jstr(st, "dead_letters", b[8], sizeof(b[8]))};
        nu_cli_table_row(t, row);
    }
}

/* Draw the progress: a table redrawn in place (returns its lines) or one plain line. */
static int nu_cli_submit_progress(const json_t *job, int64_t elapsed_ms, bool tty, int drawn)
{
    struct nu_cli_table t;
    char sb[4][48];
    size_t i;
    const json_t *st;
    if (!tty) {
        fprintf(stderr, "progress (%.0f s): job %s", (double)elapsed_ms / 1000.0,
                nu_cli_job_state(job));
        json_array_foreach(json_object_get(job, "stages"), i, st)
        {
            fprintf(stderr, "; %s %s %s splits", nu_cli_jstr(st, "id", sb[0], sizeof(sb[0])),
                    nu_cli_jstr(st, "state", sb[1], sizeof(sb[1])),
                    nu_cli_jstr(st, "splits_done", sb[2], sizeof(sb[2])));
            if (json_is_number(json_object_get(st, "progress")))
                fprintf(stderr, " (%.0f%%)",
                        json_number_value(json_object_get(st, "progress")) * 100.0);
        }
        fputc('\n', stderr);
        fflush(stderr);
        return 0;
    }
    if (drawn > 0)
        fprintf(stderr, "\033[%dF\033[J", drawn);
    fprintf(stderr, "job %s: %s (%.1f s)\n",
            json_string_value(json_object_get(job, "id"))
                ? json_string_value(json_object_get(job, "id"))
                : "?",
            nu_cli_job_state(job), (double)elapsed_ms / 1000.0);
    nu_cli_submit_table(job, &t);
    nu_cli_table_print(&t, stderr, 2);
    int n = (int)t.nrows + 1;
    nu_cli_table_free(&t);
    fflush(stderr);
    return n;
}

/* Follow job `id` until it ends; prints the outcome. Returns the exit code. */
static int nu_cli_submit_wait(struct nu_cli_client *cc, const char *id)
{
    struct nu_client_resp r = {0};
    struct nu_errbuf eb = {0};
    char *enc = nu_client_escape(id);
    char *path = nu_xasprintf("/api/v1/jobs/%s", enc);
    bool tty = isatty(STDERR_FILENO) == 1 && getenv("TERM") && strcmp(getenv("TERM"), "dumb");
    int64_t start = nu_cli_now_ms(), last_line = 0, last_ok = start;
    int drawn = 0, code = NU_EXIT_OK;
    json_t *job = NULL;

    struct sigaction sa = {.sa_handler = nu_cli_submit_on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    for (;;) {
        nu_errbuf_clear(&eb);
        nu_err_t err = nu_client_request(cc->client, "GET", path, NULL, 0, &r, &eb);
        int64_t now = nu_cli_now_ms();
        if (err == NU_ERR_IO || err == NU_ERR_TIMEOUT) {
            if (now - last_ok >= NU_CLI_UNREACHABLE_MS) {
                fprintf(stderr, "nurion: %s\n", nu_err_msg(&eb));
                code = NU_CLI_EXIT_UNREACHABLE;
                goto out;
            }
        } else if (err != NU_OK || r.status != 200 || r.json == NULL) {
            if (err != NU_OK)
                fprintf(stderr, "nurion: %s\n", nu_err_msg(&eb));
            else
                nu_client_print_error(stderr, "nurion", NULL, &r);
            code = NU_EXIT_FAIL;
            goto out;
        } else {
            last_ok = now;
            json_decref(job);
            job = json_incref(r.json);
            bool ended = nu_cli_state_ended(nu_cli_job_state(job));
            if (tty) {
                drawn = nu_cli_submit_progress(job, now - start, true, drawn);
            } else if (!ended && now - last_line >= NU_CLI_PLAIN_EVERY_MS) {
                nu_cli_submit_progress(job, now - start, false, 0);
                last_line = now;
            }
            if (ended)
                break;
        }
        nu_client_resp_free(&r);
        for (int slept = 0; slept < NU_CLI_POLL_MS && !nu_cli_submit_stop; slept += 100)
            usleep(100 * 1000);
        if (nu_cli_submit_stop) {
            fprintf(stderr,
                    "nurion: stopped waiting; job \"%s\" goes on (`nurion cancel %s` "
                    "stops it)\n",
                    id, id);
            code = nu_cli_submit_stop == SIGINT ? 130 : 143;
            goto out;
        }
    }

    const char *state = nu_cli_job_state(job);
    double secs = (double)(nu_cli_now_ms() - start) / 1000.0;
    if (cc->json) {
        nu_cli_print_json(job);
    } else {
        struct nu_cli_table t;
        if (!tty) {
            nu_cli_submit_table(job, &t);
            nu_cli_table_print(&t, stdout, 2);
            nu_cli_table_free(&t);
        }
        printf("job \"%s\" %s after %.1f s\n", id, state, secs);
    }
    if (strcmp(state, "succeeded") != 0) {
        const char *why = json_string_value(json_object_get(job, "error"));
        if (strcmp(state, "cancelled") == 0)
            fprintf(stderr, "nurion: job \"%s\" was cancelled%s%s\n", id, why ? ": " : "",
                    why ? why : "");
        else
            fprintf(stderr, "nurion: job \"%s\" failed: %s\n", id, why ? why : "no reason given");
        code = NU_EXIT_FAIL;
    }

out:
    fflush(stdout);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    nu_client_resp_free(&r);
    json_decref(job);
    free(path);
    free(enc);
    return code;
}

int nu_cli_cmd_submit(int argc, char **argv)
{
    struct nu_cli_client cc = {.cmd = "submit"};
    struct nu_client_resp r = {0};
    bool wait = false;
    char *spec = NULL;
    size_t len = 0;
    const struct nu_cli_opt opts[] = {{"--wait", NULL, &wait}};

    int code = nu_cli_client_init(&cc, argc, argv, opts, 1, 1, 1, nu_cli_submit_usage);
    if (code >= 0)
        goto out;
    const char *file = cc.args[0];
    spec = nu_cli_submit_read(file, &len);
    if (spec == NULL) {
        code = NU_EXIT_FAIL;
        goto out;
    }
    code = nu_cli_client_call(&cc, "POST", "/api/v1/jobs", spec, len, 201, file, &r);
    if (code != NU_EXIT_OK)
        goto out;
    const char *id = json_string_value(json_object_get(r.json, "id"));
    const char *state = nu_cli_job_state(r.json);
    if (id == NULL) {
        fprintf(stderr, "nurion: the coordinator's answer names no job id\n");
        code = NU_EXIT_FAIL;
        goto out;
    }
    if (cc.json && !wait)
        nu_cli_print_json(r.json);
    else if (!cc.json)
        printf("%s\n", id);
    fflush(stdout);
    if (strcmp(state, "failed") == 0 && !wait) {
        const char *why = json_string_value(json_object_get(r.json, "error"));
        fprintf(stderr, "nurion: job \"%s\" could not be started: %s\n", id,
                why ? why : "no reason given");
        code = NU_EXIT_FAIL;
        goto out;
    }
    if (wait)
        code = nu_cli_submit_wait(&cc, id);

out:
    nu_client_resp_free(&r);
    free(spec);
    nu_cli_client_done(&cc);
    return code;
}
