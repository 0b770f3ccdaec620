/* runner_progress.c — the runner's pure parts: instance counts, back-off, event accounting,
 * output lines, progress and summary text. */
#include "stage/runner.h"

#include "common/mem.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

nu_err_t nu_run_instances_parse(const char *arg, struct nu_run_instances *out, struct nu_errbuf *eb)
{
    const char *eq = strchr(arg, '=');
    char *end = NULL;
    memset(out, 0, sizeof(*out));
    if (!eq || eq == arg || (size_t)(eq - arg) > NU_JOB_MAX_ID_LEN)
        return nu_err_set(eb, NU_ERR_USAGE,
                          "invalid --instances \"%s\": expected STAGE=COUNT, e.g. dbl=2", arg);
    errno = 0;
    long n = strtol(eq + 1, &end, 10);
    if (errno || end == eq + 1 || *end != '\0' || n < 1 || n > NU_JOB_MAX_PARALLELISM)
        return nu_err_set(eb, NU_ERR_USAGE,
                          "invalid --instances \"%s\": the count must be a number from 1 to %d",
                          arg, NU_JOB_MAX_PARALLELISM);
    memcpy(out->stage, arg, (size_t)(eq - arg));
    out->n = (int)n;
    return NU_OK;
}

nu_err_t nu_run_instance_counts(const struct nu_job *job, const struct nu_run_instances *ov,
                                size_t nov, int *counts, struct nu_errbuf *eb)
{
    long total = 0;
    for (size_t i = 0; i < job->nstages; i++)
        counts[i] = job->stages[i].parallelism_max;
    for (size_t k = 0; k < nov; k++) {
        size_t i = 0;
        if (!nu_job_stage_find(job, ov[k].stage, &i))
            return nu_err_set(eb, NU_ERR_USAGE, "--instances names no stage of job \"%s\": \"%s\"",
                              job->id, ov[k].stage);
        const struct nu_job_stage *st = &job->stages[i];
        if (ov[k].n < st->parallelism_min || ov[k].n > st->parallelism_max)
            return nu_err_set(eb, NU_ERR_USAGE,
                              "--instances %s=%d is outside the parallelism of stage \"%s\" "
                              "(%d..%d)",
                              ov[k].stage, ov[k].n, st->id, st->parallelism_min,
                              st->parallelism_max);
        counts[i] = ov[k].n;
    }
    for (size_t i = 0; i < job->nstages; i++)
        total += counts[i];
    if (total > NU_RUN_MAX_CHILDREN)
        return nu_err_set(eb, NU_ERR_TOO_LARGE,
                          "job \"%s\" needs %ld stage processes, more than the runner's limit of "
                          "%d",
                          job->id, total, NU_RUN_MAX_CHILDREN);
    return NU_OK;
}

int nu_run_backoff_ms(unsigned restart)
{
    int ms = NU_RUN_BACKOFF_FIRST_MS;
    for (unsigned i = 1; i < restart && ms < NU_RUN_BACKOFF_MAX_MS; i++)
        ms *= 2;
    return ms < NU_RUN_BACKOFF_MAX_MS ? ms : NU_RUN_BACKOFF_MAX_MS;
}

/* --- event accounting ------------------------------------------------------------------------ */

void nu_run_stats_init(struct nu_run_stats *s, const struct nu_job *job)
{
    memset(s, 0, sizeof(*s));
    s->nstages = job->nstages;
    s->st = nu_xcalloc(job->nstages ? job->nstages : 1, sizeof(*s->st));
}

void nu_run_stats_free(struct nu_run_stats *s)
{
    if (!s)
        return;
    free(s->st);
    s->st = NULL;
    s->nstages = 0;
}

static int64_t nu_run_json_int(const json_t *ev, const char *key)
{
    const json_t *v = json_object_get(ev, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

bool nu_run_stats_apply(struct nu_run_stats *s, const struct nu_job *job, const char *json,
                        size_t len)
{
    json_error_t jerr;
    json_t *ev = json_loadb(json, len, 0, &jerr);
    const char *type = ev ? json_string_value(json_object_get(ev, "type")) : NULL;
    const char *stage = ev ? json_string_value(json_object_get(ev, "stage")) : NULL;
    size_t i = 0;
    bool ok = type && stage && nu_job_stage_find(job, stage, &i) && i < s->nstages;

    if (ok) {
        struct nu_run_stage_stats *st = &s->st[i];
        if (strcmp(type, "split_done") == 0) {
            st->splits++;
            st->rows_in += nu_run_json_int(ev, "rows_in");
            st->rows_out += nu_run_json_int(ev, "rows_out");
        } else if (strcmp(type, "dlq") == 0) {
            st->dead_letters++;
        } else if (strcmp(type, "error") == 0) {
            st->errors++;
        } else if (strcmp(type, "partition_done") == 0) {
            st->partitions_done++;
        }
    }
    s->events++;
    if (!ok)
        s->unknown_events++;
    json_decref(ev);
    return ok;
}

void nu_run_stats_rate(struct nu_run_stats *s, int64_t now_ms)
{
    for (size_t i = 0; i < s->nstages; i++) {
        struct nu_run_stage_stats *st = &s->st[i];
        if (st->rate_ms == 0) {
            st->rate_ms = now_ms;
            st->rate_rows = st->rows_out;
        } else if (now_ms - st->rate_ms >= 1000) {
            st->rows_per_s =
                (double)(st->rows_out - st->rate_rows) * 1000.0 / (double)(now_ms - st->rate_ms);
            st->rate_ms = now_ms;
            st->rate_rows = st->rows_out;
        }
    }
}

/* --- output lines ---------------------------------------------------------------------------- */

static void nu_run_lines_emit(struct nu_run_lines *l, nu_run_line_fn fn, void *ctx)
{
    l->buf[l->len] = '\0';
    char *t = l->tail[l->ntail % NU_RUN_TAIL_LINES];
    size_t n = l->len < sizeof(l->tail[0]) - 1 ? l->len : sizeof(l->tail[0]) - 1;
    memcpy(t, l->buf, n);
    t[n] = '\0';
    if (strstr(l->buf, "level=error") || strstr(l->buf, "level=fatal")) {
        n = l->len < sizeof(l->last_error) - 1 ? l->len : sizeof(l->last_error) - 1;
        memcpy(l->last_error, l->buf, n);
        l->last_error[n] = '\0';
    }
    l->ntail++;
    fn(ctx, l->buf, l->len);
    l->len = 0;
    l->cut = false;
}

void nu_run_lines_feed(struct nu_run_lines *l, const char *data, size_t n, nu_run_line_fn fn,
                       void *ctx)
{
    for (size_t i = 0; i < n; i++) {
        char ch = data[i];
        if (ch == '\n') {
            nu_run_lines_emit(l, fn, ctx);
        } else if (l->len + 1 < sizeof(l->buf)) {
            l->buf[l->len++] = ch;
        } else {
            l->cut = true; /* keep the start of an over-long line, drop the rest */
        }
    }
}

void nu_run_lines_flush(struct nu_run_lines *l, nu_run_line_fn fn, void *ctx)
{
    if (l->len > 0 || l->cut)
        nu_run_lines_emit(l, fn, ctx);
}

void nu_run_lines_tail(const struct nu_run_lines *l, unsigned max, char *out, size_t len)
{
    unsigned keep = max < NU_RUN_TAIL_LINES ? max : NU_RUN_TAIL_LINES;
    unsigned first = l->ntail > keep ? l->ntail - keep : 0;
    size_t used = 0;
    if (len == 0)
        return;
    out[0] = '\0';
    for (unsigned k = first; k < l->ntail && used + 1 < len; k++) {
        int w = snprintf(out + used, len - used, "%s%s", k > first ? " | " : "",
                         l->tail[k % NU_RUN_TAIL_LINES]);
        if (w < 0)
            break;
        used += (size_t)w < len - used ? (size_t)w : len - used - 1;
    }
}

void nu_run_lines_reason(const struct nu_run_lines *l, char *out, size_t len)
{
    if (l->last_error[0])
        snprintf(out, len, "%s", l->last_error);
    else if (l->ntail)
        nu_run_lines_tail(l, 3, out, len);
    else
        snprintf(out, len, "(no output)");
}

/* --- progress and summary -------------------------------------------------------------------- */

/* A count in a short human form: 950, 12.3k, 4.56M. */
static const char *nu_run_human(double v, char *buf, size_t len)
{
    if (v < 1000)
        snprintf(buf, len, "%.0f", v);
    else if (v < 1e6)
        snprintf(buf, len, "%.1fk", v / 1e3);
    else if (v < 1e9)
        snprintf(buf, len, "%.2fM", v / 1e6);
    else
        snprintf(buf, len, "%.2fG", v / 1e9);
    return buf;
}

static size_t nu_run_id_width(const struct nu_job *job)
{
    size_t w = 5; /* "stage" */
    for (size_t i = 0; i < job->nstages; i++)
        if (strlen(job->stages[i].id) > w)
            w = strlen(job->stages[i].id);
    return w;
}

int nu_run_progress_print(FILE *out, const struct nu_job *job, const struct nu_run_stats *s,
                          int64_t elapsed_ms, bool lines)
{
    int w = (int)nu_run_id_width(job);
    char a[32], b[32];
    if (!lines)
        fprintf(out, "progress (%.1f s):", (double)elapsed_ms / 1000.0);
    for (size_t t = 0; t < job->nstages; t++) {
        size_t i = job->topo[t];
        const struct nu_run_stage_stats *st = &s->st[i];
        char splits[64];
        if (st->unbounded) /* no end to count down to: show how far behind the plan it is */
            snprintf(splits, sizeof(splits), "%" PRId64 " (lag %" PRId64 ")", st->splits,
                     (int64_t)st->planned_splits > st->splits
                         ? (int64_t)st->planned_splits - st->splits
                         : 0);
        else if (st->planned)
            snprintf(splits, sizeof(splits), "%" PRId64 "/%" PRIu64, st->splits,
                     st->planned_splits);
        else
            snprintf(splits, sizeof(splits), "%" PRId64, st->splits);
        if (lines) {
            fprintf(out, "  %-*s %d/%d done  splits %-12s rows out %-8s %8s rows/s", w,
                    job->stages[i].id, st->done, st->instances, splits,
                    nu_run_human((double)st->rows_out, a, sizeof(a)),
                    nu_run_human(st->rows_per_s, b, sizeof(b)));
            if (st->dead_letters || st->errors)
                fprintf(out, "  dead letters %" PRId64 "  errors %" PRId64, st->dead_letters,
                        st->errors);
            if (st->restarts)
                fprintf(out, "  restarts %u", st->restarts);
            fputc('\n', out);
        } else {
            fprintf(out, "%s %s %s splits, %s rows/s", t ? ";" : "", job->stages[i].id, splits,
                    nu_run_human(st->rows_per_s, b, sizeof(b)));
            if (st->dead_letters)
                fprintf(out, ", %" PRId64 " dead letters", st->dead_letters);
        }
    }
    if (!lines)
        fputc('\n', out);
    fflush(out);
    return lines ? (int)job->nstages : 1;
}

/* Does stage i's output end the job (read by nothing, or only by sinks)? */
static bool nu_run_is_result(const struct nu_job *job, size_t i)
{
    const struct nu_job_stage *st = &job->stages[i];
    if (st->kind == NU_OPKIND_SINK)
        return false;
    for (size_t k = 0; k < st->ndownstream; k++)
        if (job->stages[st->downstream_idx[k]].kind != NU_OPKIND_SINK)
            return false;
    return true;
}

void nu_run_summary_print(FILE *out, const struct nu_job *job, const struct nu_run_stats *s,
                          int64_t wall_ms, const char *brokers)
{
    int w = (int)nu_run_id_width(job);
    char topic[NU_JOB_NAME_MAX];
    int64_t splits = 0;

    for (size_t i = 0; i < job->nstages; i++)
        splits += s->st[i].splits;
    fprintf(out, "job \"%s\" completed in %.1f s (%" PRId64 " splits)\n\n", job->id,
            (double)wall_ms / 1000.0, splits);
    fprintf(out, "%-*s  %-12s %9s %12s %12s %9s %12s %7s %8s\n", w, "stage", "operator",
            "instances", "rows in", "rows out", "splits", "dead letters", "errors", "restarts");
    for (size_t t = 0; t < job->nstages; t++) {
        size_t i = job->topo[t];
        const struct nu_run_stage_stats *st = &s->st[i];
        fprintf(out,
                "%-*s  %-12s %9d %12" PRId64 " %12" PRId64 " %9" PRId64 " %12" PRId64 " %7" PRId64
                " %8u\n",
                w, job->stages[i].id, job->stages[i].op, st->instances, st->rows_in, st->rows_out,
                st->splits, st->dead_letters, st->errors, st->restarts);
    }
    fprintf(out, "\n");
    if (!brokers) { /* no broker to point kcat at (nurion run --local) */
        fflush(out);
        return;
    }
    for (size_t i = 0; i < job->nstages; i++) {
        if (!nu_run_is_result(job, i))
            continue;
        nu_job_topic_output(job, i, topic, sizeof(topic));
        fprintf(out, "inspect %s: kcat -b %s -C -t %s -e -f '%s'\n", job->stages[i].id, brokers,
                topic, job->format == NU_FORMAT_JSON ? "%k %h\\n%s\\n" : "%k %h\\n");
    }
    for (size_t i = 0; i < job->nstages; i++) {
        if (s->st[i].dead_letters == 0)
            continue;
        nu_job_topic_dlq(job, i, topic, sizeof(topic));
        fprintf(out, "dead letters of %s: kcat -b %s -C -t %s -e -f '%%k %%h\\n'\n",
                job->stages[i].id, brokers, topic);
    }
    nu_job_topic_events(job, topic, sizeof(topic));
    fprintf(out, "events: kcat -b %s -C -t %s -e\n", brokers, topic);
    fflush(out);
}
