/* job.c — job spec entry points: parse, load, destroy, canonical JSON, and derived names. */
#include "common/job.h"

#include "common/job_int.h"
#include "common/mem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *nu_guarantee_name(nu_guarantee_t g)
{
    return g == NU_GUARANTEE_AT_LEAST_ONCE ? "at_least_once" : "exactly_once";
}

const char *nu_op_kind_name(nu_op_kind_t k)
{
    switch (k) {
    case NU_OPKIND_SOURCE:
        return "source";
    case NU_OPKIND_TRANSFORM:
        return "transform";
    case NU_OPKIND_SINK:
        return "sink";
    case NU_OPKIND_UNKNOWN:
    default:
        return "unknown";
    }
}

void nu_job_destroy(struct nu_job *job)
{
    if (!job)
        return;
    for (size_t i = 0; i < job->nstages; i++) {
        struct nu_job_stage *st = &job->stages[i];
        free(st->id);
        free(st->op);
        free(st->plugin);
        json_decref(st->config);
        for (size_t k = 0; k < st->nupstream; k++)
            free(st->upstream[k]);
        free(st->upstream);
        free(st->upstream_idx);
        free(st->downstream_idx);
    }
    free(job->stages);
    free(job->topo);
    free(job->id);
    free(job->description);
    free(job);
}

bool nu_job_stage_find(const struct nu_job *job, const char *id, size_t *out)
{
    for (size_t i = 0; i < job->nstages; i++) {
        if (job->stages[i].id && strcmp(job->stages[i].id, id) == 0) {
            *out = i;
            return true;
        }
    }
    return false;
}

nu_err_t nu_job_parse(const char *json_text, size_t len, const struct nu_job_validator *v,
                      struct nu_job **out, struct nu_problems *problems, struct nu_errbuf *eb)
{
    nu_err_t rc = NU_OK;
    struct nu_problems local;
    struct nu_problems *probs = problems ? problems : &local;
    struct nu_job_pctx cx = {.v = v, .probs = probs};
    struct nu_job *job = NULL;
    json_t *root = NULL;
    size_t before;

    nu_problems_init(&local);
    before = probs->n;
    *out = NULL;
    if (len > NU_JOB_MAX_SPEC_BYTES) {
        nu_problems_add(probs, "$", "job spec is %zu bytes, over the limit of %d bytes", len,
                        NU_JOB_MAX_SPEC_BYTES);
        rc = NU_ERR_TOO_LARGE;
        goto out;
    }
    json_error_t jerr;
    root = json_loadb(json_text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        nu_problems_add(probs, "$", "not valid JSON: %s at line %d, column %d", jerr.text,
                        jerr.line, jerr.column);
        goto out;
    }
    if (!json_is_object(root)) {
        nu_problems_add(probs, "$", "expected a job object, got %s", nu_json_type_name(root));
        goto out;
    }
    job = nu_xcalloc(1, sizeof(*job));
    nu_job_read(job, root, &cx);
    nu_job_link(job, &cx);
    if (probs->n == before && v && v->check_stage && job->topo) {
        for (size_t t = 0; t < job->nstages; t++) {
            char path[64];
            snprintf(path, sizeof(path), "$.stages[%zu]", job->topo[t]);
            v->check_stage(v->ctx, job, job->topo[t], path, probs);
        }
    }

out:
    if (probs->n > before) {
        const struct nu_problem *first = &probs->items[before];
        size_t more = probs->n - before - 1;
        if (rc == NU_OK)
            rc = NU_ERR_SPEC;
        if (more)
            nu_err_set(eb, rc, "invalid job spec: %s: %s (and %zu more problem%s)", first->path,
                       first->message, more, more == 1 ? "" : "s");
        else
            nu_err_set(eb, rc, "invalid job spec: %s: %s", first->path, first->message);
        nu_job_destroy(job);
        job = NULL;
    }
    *out = job;
    free(cx.partitions_set);
    free(cx.bad_upstream);
    json_decref(root);
    nu_problems_free(&local);
    return rc;
}

nu_err_t nu_job_load_file(const char *path, const struct nu_job_validator *v, struct nu_job **out,
                          struct nu_problems *problems, struct nu_errbuf *eb)
{
    nu_err_t rc = NU_OK;
    FILE *f = NULL;
    char *buf = NULL;
    size_t len = 0;

    *out = NULL;
    f = fopen(path, "rb");
    if (!f) {
        rc = nu_err_set(eb, NU_ERR_IO, "could not open file \"%s\": %s", path, strerror(errno));
        goto out;
    }
    /* Read one byte past the limit, so an oversized file is told apart without reading it all. */
    buf = nu_xmalloc(NU_JOB_MAX_SPEC_BYTES + 1);
    len = fread(buf, 1, NU_JOB_MAX_SPEC_BYTES + 1, f);
    if (ferror(f)) {
        rc = nu_err_set(eb, NU_ERR_IO, "could not read file \"%s\": %s", path, strerror(errno));
        goto out;
    }
    rc = nu_job_parse(buf, len, v, out, problems, eb);

out:
    free(buf);
    if (f)
        fclose(f);
    return rc;
}

json_t *nu_job_to_json(const struct nu_job *job)
{
    json_t *root = json_object();
    json_object_set_new(root, "job_id", json_string(job->id));
    json_object_set_new(root, "guarantee", json_string(nu_guarantee_name(job->guarantee)));
    json_object_set_new(root, "format", json_string(nu_format_name(job->format)));
    if (job->description)
        json_object_set_new(root, "description", json_string(job->description));
    json_t *d = json_object();
    json_object_set_new(d, "partitions", json_integer(job->defaults.partitions));
    json_object_set_new(d, "parallelism", json_integer(job->defaults.parallelism));
    json_object_set_new(d, "max_attempts", json_integer(job->defaults.max_attempts));
    json_object_set_new(d, "retry_backoff_ms", json_integer(job->defaults.retry_backoff_ms));
    json_object_set_new(d, "max_crashes", json_integer(job->defaults.max_crashes));
    json_object_set_new(root, "defaults", d);

    json_t *stages = json_array();
    for (size_t i = 0; i < job->nstages; i++) {
        const struct nu_job_stage *st = &job->stages[i];
        json_t *s = json_object();
        json_object_set_new(s, "id", json_string(st->id));
        json_object_set_new(s, "operator", json_string(st->op));
        if (st->plugin)
            json_object_set_new(s, "plugin", json_string(st->plugin));
        json_object_set_new(s, "config", json_deep_copy(st->config));
        json_t *par = json_object();
        json_object_set_new(par, "min", json_integer(st->parallelism_min));
        json_object_set_new(par, "max", json_integer(st->parallelism_max));
        json_object_set_new(s, "parallelism", par);
        json_object_set_new(s, "partitions", json_integer(st->partitions));
        json_t *up = json_array();
        for (size_t k = 0; k < st->nupstream; k++)
            json_array_append_new(up, json_string(st->upstream[k]));
        json_object_set_new(s, "upstream", up);
        json_object_set_new(s, "max_attempts", json_integer(st->max_attempts));
        json_object_set_new(s, "retry_backoff_ms", json_integer(st->retry_backoff_ms));
        json_object_set_new(s, "max_crashes", json_integer(st->max_crashes));
        json_array_append_new(stages, s);
    }
    json_object_set_new(root, "stages", stages);
    return root;
}

/* nurion.<job>[.<stage>][.<suffix>] into buf. */
static const char *nu_job_name(char *buf, size_t len, const char *job_id, const char *stage_id,
                               const char *suffix)
{
    if (len == 0)
        return buf;
    snprintf(buf, len, "nurion.%s%s%s%s%s", job_id, stage_id ? "." : "", stage_id ? stage_id : "",
             suffix ? "." : "", suffix ? suffix : "");
    return buf;
}

const char *nu_job_topic_output(const struct nu_job *job, size_t stage, char *buf, size_t len)
{
    return nu_job_name(buf, len, job->id, job->stages[stage].id, NULL);
}

const char *nu_job_topic_plan(const struct nu_job *job, size_t stage, char *buf, size_t len)
{
    return nu_job_name(buf, len, job->id, job->stages[stage].id, "plan");
}

const char *nu_job_topic_dlq(const struct nu_job *job, size_t stage, char *buf, size_t len)
{
    return nu_job_name(buf, len, job->id, job->stages[stage].id, "dlq");
}

const char *nu_job_topic_state(const struct nu_job *job, size_t stage, char *buf, size_t len)
{
    return nu_job_name(buf, len, job->id, job->stages[stage].id, "state");
}

const char *nu_job_topic_events(const struct nu_job *job, char *buf, size_t len)
{
    return nu_job_name(buf, len, job->id, NULL, "_events");
}

const char *nu_job_topic_events_for(const char *job_id, char *buf, size_t len)
{
    return nu_job_name(buf, len, job_id, NULL, "_events");
}

const char *nu_job_group(const struct nu_job *job, size_t stage, char *buf, size_t len)
{
    return nu_job_name(buf, len, job->id, job->stages[stage].id, NULL);
}

const char *nu_job_txn_id(const struct nu_job *job, size_t stage, unsigned instance, char *buf,
                          size_t len)
{
    char k[16];
    snprintf(k, sizeof(k), "%u", instance);
    return nu_job_name(buf, len, job->id, job->stages[stage].id, k);
}
