/* job_parse.c — reading the fields of a job spec into the model, one problem per fault. */
#include "common/job_int.h"
#include "common/mem.h"

#include <string.h>

static const char *const nu_job_fields[] = {"job_id",      "guarantee", "format",
                                            "description", "defaults",  "stages"};
static const char *const nu_job_default_fields[] = {"partitions", "parallelism", "max_attempts",
                                                    "retry_backoff_ms", "max_crashes"};
static const char *const nu_job_stage_fields[] = {
    "id",         "operator", "plugin",       "config",           "parallelism",
    "partitions", "upstream", "max_attempts", "retry_backoff_ms", "max_crashes"};
static const char *const nu_job_par_fields[] = {"min", "max"};

#define NU_NELEM(a) (sizeof(a) / sizeof((a)[0]))

bool nu_job_id_valid(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-';
        if (!ok || n >= NU_JOB_MAX_ID_LEN)
            return false;
    }
    return n > 0;
}

/* The value of `key` in `obj`, with the path extended by the key when it is present. */
static json_t *nu_job_field(const json_t *obj, const char *key, struct nu_json_path *p,
                            size_t *mark)
{
    json_t *v = json_object_get(obj, key);
    if (v)
        *mark = nu_json_path_push_key(p, key);
    return v;
}

/* A string field: type and length checked; returns the value (borrowed) or NULL after a problem. */
static const char *nu_job_get_text(const json_t *v, size_t maxlen, bool nonempty,
                                   const struct nu_json_path *p, struct nu_problems *probs)
{
    if (!json_is_string(v)) {
        nu_problems_add(probs, p->buf, "expected a string, got %s", nu_json_type_name(v));
        return NULL;
    }
    size_t n = json_string_length(v);
    if (n > maxlen) {
        nu_problems_add(probs, p->buf, "is %zu characters, over the limit of %zu", n, maxlen);
        return NULL;
    }
    if (nonempty && n == 0) {
        nu_problems_add(probs, p->buf, "must not be empty");
        return NULL;
    }
    if (strlen(json_string_value(v)) != n) {
        nu_problems_add(probs, p->buf, "must not contain NUL characters");
        return NULL;
    }
    return json_string_value(v);
}

/* An id field ("job_id" or a stage "id"); returns a copy, or NULL (problem added). */
static char *nu_job_get_id(const json_t *v, const char *what, bool stage,
                           const struct nu_json_path *p, struct nu_problems *probs)
{
    const char *s = nu_job_get_text(v, NU_JOB_MAX_TEXT_LEN, false, p, probs);
    if (!s)
        return NULL;
    if (!nu_job_id_valid(s)) {
        if (strlen(s) > NU_JOB_MAX_ID_LEN)
            nu_problems_add(probs, p->buf, "%s is %zu characters, over the limit of %d", what,
                            strlen(s), NU_JOB_MAX_ID_LEN);
        else
            nu_problems_add(probs, p->buf,
                            "invalid %s \"%s\": use 1 to %d letters, digits, '_' or '-'", what, s,
                            NU_JOB_MAX_ID_LEN);
    } else if (stage && s[0] == '_') {
        /* Names beginning with '_' are reserved for the job's own topics (_events). */
        nu_problems_add(probs, p->buf, "invalid %s \"%s\": must not begin with '_'", what, s);
    }
    return nu_xstrdup(s);
}

/* An integer with bounds, into *out (unchanged on a problem). */
static void nu_job_get_int(const json_t *obj, const char *key, long long min, long long max,
                           struct nu_json_path *p, struct nu_problems *probs, int *out, bool *given)
{
    size_t mark;
    json_t *v = nu_job_field(obj, key, p, &mark);
    if (!v)
        return;
    long long x;
    if (nu_json_get_int(v, min, max, p, probs, &x)) {
        *out = (int)x;
        if (given)
            *given = true;
    }
    nu_json_path_pop(p, mark);
}

static void nu_job_read_parallelism(const json_t *v, struct nu_json_path *p,
                                    struct nu_problems *probs, int *min, int *max)
{
    long long a = *min, b = *max;
    if (json_is_integer(v)) {
        if (nu_json_get_int(v, 1, NU_JOB_MAX_PARALLELISM, p, probs, &a))
            *min = *max = (int)a;
        return;
    }
    if (!json_is_object(v)) {
        nu_problems_add(probs, p->buf,
                        "expected an integer or an object {\"min\", \"max\"}, got %s",
                        nu_json_type_name(v));
        return;
    }
    nu_json_check_fields(v, nu_job_par_fields, NU_NELEM(nu_job_par_fields), p, probs);
    bool ok = true;
    for (size_t i = 0; i < 2; i++) {
        const char *key = nu_job_par_fields[i];
        json_t *x = json_object_get(v, key);
        if (!x) {
            nu_problems_add(probs, p->buf, "missing required field \"%s\"", key);
            ok = false;
            continue;
        }
        size_t mark = nu_json_path_push_key(p, key);
        ok = nu_json_get_int(x, 1, NU_JOB_MAX_PARALLELISM, p, probs, i == 0 ? &a : &b) && ok;
        nu_json_path_pop(p, mark);
    }
    if (!ok)
        return;
    if (a > b) {
        nu_problems_add(probs, p->buf, "min %lld is above max %lld", a, b);
        return;
    }
    *min = (int)a;
    *max = (int)b;
}

static void nu_job_read_upstream(struct nu_job_stage *st, const json_t *v, size_t idx,
                                 struct nu_json_path *p, struct nu_job_pctx *cx)
{
    if (!json_is_array(v)) {
        nu_problems_add(cx->probs, p->buf, "expected an array of stage ids, got %s",
                        nu_json_type_name(v));
        cx->bad_upstream[idx] = true;
        return;
    }
    size_t n = json_array_size(v);
    if (n > NU_JOB_MAX_UPSTREAMS) {
        nu_problems_add(cx->probs, p->buf, "has %zu upstream stages, over the limit of %d", n,
                        NU_JOB_MAX_UPSTREAMS);
        cx->bad_upstream[idx] = true;
        return;
    }
    st->upstream = nu_xcalloc(n, sizeof(*st->upstream));
    for (size_t i = 0; i < n; i++) {
        size_t mark = nu_json_path_push_index(p, i);
        const char *s =
            nu_job_get_text(json_array_get(v, i), NU_JOB_MAX_TEXT_LEN, true, p, cx->probs);
        bool keep = s != NULL;
        if (s && st->id && strcmp(s, st->id) == 0) {
            nu_problems_add(cx->probs, p->buf, "stage \"%s\" lists itself as upstream", s);
            keep = false;
        }
        for (size_t j = 0; keep && j < st->nupstream; j++) {
            if (strcmp(st->upstream[j], s) == 0) {
                nu_problems_add(cx->probs, p->buf, "upstream stage \"%s\" is listed twice", s);
                keep = false;
            }
        }
        if (keep)
            st->upstream[st->nupstream++] = nu_xstrdup(s);
        else
            cx->bad_upstream[idx] = true;
        nu_json_path_pop(p, mark);
    }
}

static void nu_job_read_stage(struct nu_job *job, size_t idx, const json_t *o,
                              struct nu_json_path *p, struct nu_job_pctx *cx)
{
    struct nu_job_stage *st = &job->stages[idx];
    struct nu_problems *probs = cx->probs;
    size_t mark;
    json_t *v;

    st->parallelism_min = st->parallelism_max = job->defaults.parallelism;
    st->partitions = job->defaults.partitions;
    st->max_attempts = job->defaults.max_attempts;
    st->retry_backoff_ms = job->defaults.retry_backoff_ms;
    st->max_crashes = job->defaults.max_crashes;
    st->config = json_object();

    if (!json_is_object(o)) {
        nu_problems_add(probs, p->buf, "expected an object, got %s", nu_json_type_name(o));
        return;
    }
    nu_json_check_fields(o, nu_job_stage_fields, NU_NELEM(nu_job_stage_fields), p, probs);

    if ((v = nu_job_field(o, "id", p, &mark))) {
        st->id = nu_job_get_id(v, "stage id", true, p, probs);
        for (size_t j = 0; st->id && j < idx; j++) {
            if (job->stages[j].id && strcmp(job->stages[j].id, st->id) == 0) {
                nu_problems_add(probs, p->buf, "duplicate stage id \"%s\" (also $.stages[%zu])",
                                st->id, j);
                break;
            }
        }
        nu_json_path_pop(p, mark);
    } else {
        nu_problems_add(probs, p->buf, "missing required field \"id\"");
    }

    if ((v = nu_job_field(o, "plugin", p, &mark))) {
        const char *s = nu_job_get_text(v, NU_JOB_MAX_TEXT_LEN, true, p, probs);
        st->plugin = s ? nu_xstrdup(s) : NULL;
        nu_json_path_pop(p, mark);
    }
    if ((v = nu_job_field(o, "operator", p, &mark))) {
        const char *s = nu_job_get_text(v, NU_JOB_MAX_TEXT_LEN, true, p, probs);
        if (s) {
            st->op = nu_xstrdup(s);
            if (cx->v && cx->v->kind) {
                char why[256] = "";
                st->kind = cx->v->kind(cx->v->ctx, s, st->plugin, why, sizeof(why));
                if (st->kind == NU_OPKIND_UNKNOWN && why[0])
                    nu_problems_add(probs, p->buf, "%s", why);
                else if (st->kind == NU_OPKIND_UNKNOWN)
                    nu_problems_add(probs, p->buf, "unknown operator \"%s\"", s);
            }
        }
        nu_json_path_pop(p, mark);
    } else {
        nu_problems_add(probs, p->buf, "missing required field \"operator\"");
    }

    if ((v = nu_job_field(o, "config", p, &mark))) {
        if (!json_is_object(v)) {
            nu_problems_add(probs, p->buf, "expected an object, got %s", nu_json_type_name(v));
        } else if (nu_json_depth(v, NU_JOB_MAX_CONFIG_DEPTH) > NU_JOB_MAX_CONFIG_DEPTH) {
            nu_problems_add(probs, p->buf, "nests deeper than the limit of %d levels",
                            NU_JOB_MAX_CONFIG_DEPTH);
        } else {
            json_decref(st->config);
            st->config = json_incref(v);
        }
        nu_json_path_pop(p, mark);
    }

    if ((v = nu_job_field(o, "parallelism", p, &mark))) {
        nu_job_read_parallelism(v, p, probs, &st->parallelism_min, &st->parallelism_max);
        nu_json_path_pop(p, mark);
    }
    nu_job_get_int(o, "partitions", 1, NU_JOB_MAX_PARTITIONS, p, probs, &st->partitions,
                   &cx->partitions_set[idx]);
    nu_job_get_int(o, "max_attempts", 1, NU_JOB_MAX_ATTEMPTS, p, probs, &st->max_attempts, NULL);
    nu_job_get_int(o, "retry_backoff_ms", 0, NU_JOB_MAX_BACKOFF_MS, p, probs, &st->retry_backoff_ms,
                   NULL);
    nu_job_get_int(o, "max_crashes", 0, NU_JOB_MAX_CRASHES, p, probs, &st->max_crashes, NULL);

    if ((v = nu_job_field(o, "upstream", p, &mark))) {
        nu_job_read_upstream(st, v, idx, p, cx);
        nu_json_path_pop(p, mark);
    }
}

static void nu_job_read_defaults(struct nu_job *job, const json_t *o, struct nu_json_path *p,
                                 struct nu_problems *probs)
{
    struct nu_job_defaults *d = &job->defaults;
    if (!json_is_object(o)) {
        nu_problems_add(probs, p->buf, "expected an object, got %s", nu_json_type_name(o));
        return;
    }
    nu_json_check_fields(o, nu_job_default_fields, NU_NELEM(nu_job_default_fields), p, probs);
    nu_job_get_int(o, "partitions", 1, NU_JOB_MAX_PARTITIONS, p, probs, &d->partitions, NULL);
    nu_job_get_int(o, "parallelism", 1, NU_JOB_MAX_PARALLELISM, p, probs, &d->parallelism, NULL);
    nu_job_get_int(o, "max_attempts", 1, NU_JOB_MAX_ATTEMPTS, p, probs, &d->max_attempts, NULL);
    nu_job_get_int(o, "retry_backoff_ms", 0, NU_JOB_MAX_BACKOFF_MS, p, probs, &d->retry_backoff_ms,
                   NULL);
    nu_job_get_int(o, "max_crashes", 0, NU_JOB_MAX_CRASHES, p, probs, &d->max_crashes, NULL);
}

/* An enumerated string field: index of the value in `names`, or -1 after a problem. */
static int nu_job_get_enum(const json_t *v, const char *what, const char *const *names,
                           size_t nnames, const struct nu_json_path *p, struct nu_problems *probs)
{
    const char *s = nu_job_get_text(v, NU_JOB_MAX_TEXT_LEN, false, p, probs);
    if (!s)
        return -1;
    for (size_t i = 0; i < nnames; i++)
        if (strcmp(s, names[i]) == 0)
            return (int)i;
    const char *sug = nu_json_suggest(s, names, nnames);
    if (sug)
        nu_problems_add(probs, p->buf, "unknown %s \"%s\" (did you mean \"%s\"?)", what, s, sug);
    else
        nu_problems_add(probs, p->buf, "unknown %s \"%s\" (expected \"%s\" or \"%s\")", what, s,
                        names[0], names[1]);
    return -1;
}

void nu_job_read(struct nu_job *job, const json_t *root, struct nu_job_pctx *cx)
{
    static const char *const guarantees[] = {"exactly_once", "at_least_once"};
    static const char *const formats[] = {"avro", "json"};
    struct nu_problems *probs = cx->probs;
    struct nu_json_path p;
    size_t mark;
    json_t *v;

    nu_json_path_init(&p);
    job->defaults = (struct nu_job_defaults){
        .partitions = NU_JOB_DEFAULT_PARTITIONS,
        .parallelism = NU_JOB_DEFAULT_PARALLELISM,
        .max_attempts = NU_JOB_DEFAULT_MAX_ATTEMPTS,
        .retry_backoff_ms = NU_JOB_DEFAULT_RETRY_BACKOFF_MS,
        .max_crashes = NU_JOB_DEFAULT_MAX_CRASHES,
    };
    nu_json_check_fields(root, nu_job_fields, NU_NELEM(nu_job_fields), &p, probs);

    if ((v = nu_job_field(root, "job_id", &p, &mark))) {
        job->id = nu_job_get_id(v, "job id", false, &p, probs);
        nu_json_path_pop(&p, mark);
    } else {
        nu_problems_add(probs, p.buf, "missing required field \"job_id\"");
    }
    if ((v = nu_job_field(root, "guarantee", &p, &mark))) {
        int g = nu_job_get_enum(v, "guarantee", guarantees, 2, &p, probs);
        job->guarantee = g < 0 ? NU_GUARANTEE_EXACTLY_ONCE : (nu_guarantee_t)g;
        nu_json_path_pop(&p, mark);
    }
    if ((v = nu_job_field(root, "format", &p, &mark))) {
        int f = nu_job_get_enum(v, "format", formats, 2, &p, probs);
        job->format = f < 0 ? NU_FORMAT_AVRO : (nu_format_t)f;
        nu_json_path_pop(&p, mark);
    }
    if ((v = nu_job_field(root, "description", &p, &mark))) {
        const char *s = nu_job_get_text(v, NU_JOB_MAX_TEXT_LEN, false, &p, probs);
        job->description = s ? nu_xstrdup(s) : NULL;
        nu_json_path_pop(&p, mark);
    }
    if ((v = nu_job_field(root, "defaults", &p, &mark))) {
        nu_job_read_defaults(job, v, &p, probs);
        nu_json_path_pop(&p, mark);
    }

    v = nu_job_field(root, "stages", &p, &mark);
    if (!v) {
        nu_problems_add(probs, p.buf, "missing required field \"stages\"");
        return;
    }
    if (!json_is_array(v)) {
        nu_problems_add(probs, p.buf, "expected an array of stages, got %s", nu_json_type_name(v));
        return;
    }
    size_t n = json_array_size(v);
    if (n == 0) {
        nu_problems_add(probs, p.buf, "a job needs at least one stage");
        return;
    }
    if (n > NU_JOB_MAX_STAGES) {
        nu_problems_add(probs, p.buf, "has %zu stages, over the limit of %d", n, NU_JOB_MAX_STAGES);
        return;
    }
    job->stages = nu_xcalloc(n, sizeof(*job->stages));
    job->nstages = n;
    cx->partitions_set = nu_xcalloc(n, sizeof(bool));
    cx->bad_upstream = nu_xcalloc(n, sizeof(bool));
    for (size_t i = 0; i < n; i++) {
        size_t m = nu_json_path_push_index(&p, i);
        nu_job_read_stage(job, i, json_array_get(v, i), &p, cx);
        nu_json_path_pop(&p, m);
    }
}
