/*
 * job_validate.c — the graph checks of a job: upstream resolution, operator kinds, cycles,
 * reachability, partitions against parallelism, and the topological order.
 */
#include "common/job_int.h"
#include "common/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NU_NONE ((size_t)-1)

struct nu_job_graph {
    struct nu_job *job;
    struct nu_job_pctx *cx;
    unsigned char *color; /* 0 white, 1 on the DFS stack, 2 done */
    size_t *stack;        /* DFS path */
    size_t depth;
    bool *on_cycle;
    bool any_cycle;
};

static const char *nu_job_sid(const struct nu_job_stage *st)
{
    return st->id ? st->id : "?";
}

static void nu_job_path_stage(char *buf, size_t len, size_t i, const char *field)
{
    snprintf(buf, len, "$.stages[%zu]%s%s", i, field ? "." : "", field ? field : "");
}

static void nu_job_resolve(struct nu_job *job, struct nu_job_pctx *cx)
{
    const char **ids = nu_xcalloc(job->nstages, sizeof(*ids));
    size_t nids = 0;
    for (size_t i = 0; i < job->nstages; i++)
        if (job->stages[i].id)
            ids[nids++] = job->stages[i].id;

    for (size_t i = 0; i < job->nstages; i++) {
        struct nu_job_stage *st = &job->stages[i];
        st->upstream_idx = nu_xcalloc(st->nupstream, sizeof(size_t));
        for (size_t k = 0; k < st->nupstream; k++) {
            size_t u;
            if (nu_job_stage_find(job, st->upstream[k], &u)) {
                st->upstream_idx[k] = u;
                job->stages[u].ndownstream++;
                continue;
            }
            st->upstream_idx[k] = NU_NONE;
            cx->bad_upstream[i] = true;
            char path[64];
            snprintf(path, sizeof(path), "$.stages[%zu].upstream[%zu]", i, k);
            const char *sug = nu_json_suggest(st->upstream[k], ids, nids);
            if (sug)
                nu_problems_add(cx->probs, path,
                                "unknown upstream stage \"%s\" (did you mean \"%s\"?)",
                                st->upstream[k], sug);
            else
                nu_problems_add(cx->probs, path, "unknown upstream stage \"%s\"", st->upstream[k]);
        }
    }
    free(ids);

    /* Downstream lists, in index order of the reader. */
    for (size_t i = 0; i < job->nstages; i++) {
        struct nu_job_stage *st = &job->stages[i];
        st->downstream_idx = nu_xcalloc(st->ndownstream, sizeof(size_t));
        st->ndownstream = 0;
    }
    for (size_t i = 0; i < job->nstages; i++) {
        struct nu_job_stage *st = &job->stages[i];
        for (size_t k = 0; k < st->nupstream; k++) {
            size_t u = st->upstream_idx[k];
            if (u != NU_NONE)
                job->stages[u].downstream_idx[job->stages[u].ndownstream++] = i;
        }
    }
}

/* A source is a stage without upstreams whose operator is not known to be something else. */
static bool nu_job_is_source(const struct nu_job_stage *st)
{
    return st->nupstream == 0 && (st->kind == NU_OPKIND_UNKNOWN || st->kind == NU_OPKIND_SOURCE);
}

static void nu_job_check_kinds(struct nu_job *job, struct nu_job_pctx *cx)
{
    char path[64];
    for (size_t i = 0; i < job->nstages; i++) {
        struct nu_job_stage *st = &job->stages[i];
        const char *id = nu_job_sid(st);
        if (st->kind == NU_OPKIND_SOURCE && st->nupstream > 0) {
            nu_job_path_stage(path, sizeof(path), i, "upstream");
            nu_problems_add(cx->probs, path,
                            "stage \"%s\" runs source operator \"%s\", which takes no upstream", id,
                            st->op);
        }
        if ((st->kind == NU_OPKIND_TRANSFORM || st->kind == NU_OPKIND_SINK) && st->nupstream == 0 &&
            !cx->bad_upstream[i]) {
            nu_job_path_stage(path, sizeof(path), i, NULL);
            nu_problems_add(cx->probs, path,
                            "stage \"%s\" has no upstream; %s operator \"%s\" needs one", id,
                            nu_op_kind_name(st->kind), st->op);
        }
        for (size_t k = 0; k < st->nupstream; k++) {
            size_t u = st->upstream_idx[k];
            if (u != NU_NONE && job->stages[u].kind == NU_OPKIND_SINK) {
                snprintf(path, sizeof(path), "$.stages[%zu].upstream[%zu]", i, k);
                nu_problems_add(cx->probs, path,
                                "upstream stage \"%s\" is a sink and has no output to read",
                                st->upstream[k]);
            }
        }
    }
}

/* Depth-first search along data flow (upstream -> downstream); each back edge is one cycle. */
static void nu_job_dfs(struct nu_job_graph *g, size_t i)
{
    struct nu_job *job = g->job;
    g->color[i] = 1;
    g->stack[g->depth++] = i;
    const struct nu_job_stage *st = &job->stages[i];
    for (size_t d = 0; d < st->ndownstream; d++) {
        size_t w = st->downstream_idx[d];
        if (g->color[w] == 0) {
            nu_job_dfs(g, w);
            continue;
        }
        if (g->color[w] != 1)
            continue;
        /* w is on the stack: the cycle is stack[pos..depth-1] then back to w. */
        size_t pos = 0;
        while (g->stack[pos] != w)
            pos++;
        size_t cap = 16 + strlen(job->stages[w].id);
        for (size_t s = pos; s < g->depth; s++)
            cap += strlen(job->stages[g->stack[s]].id) + 4;
        char *msg = nu_xmalloc(cap);
        size_t len = (size_t)snprintf(msg, cap, "cycle: ");
        for (size_t s = pos; s < g->depth; s++) {
            len += (size_t)snprintf(msg + len, cap - len, "%s -> ", job->stages[g->stack[s]].id);
            g->on_cycle[g->stack[s]] = true;
        }
        snprintf(msg + len, cap - len, "%s", job->stages[w].id);
        /* Report at the upstream entry of w that closes the cycle. */
        size_t k = 0;
        while (k < job->stages[w].nupstream && job->stages[w].upstream_idx[k] != i)
            k++;
        char path[64];
        snprintf(path, sizeof(path), "$.stages[%zu].upstream[%zu]", w, k);
        nu_problems_add(g->cx->probs, path, "%s", msg);
        free(msg);
        g->any_cycle = true;
    }
    g->depth--;
    g->color[i] = 2;
}

/* Mark everything downstream of `i`. */
static void nu_job_mark(const struct nu_job *job, size_t i, bool *seen)
{
    if (seen[i])
        return;
    seen[i] = true;
    for (size_t d = 0; d < job->stages[i].ndownstream; d++)
        nu_job_mark(job, job->stages[i].downstream_idx[d], seen);
}

static void nu_job_check_reach(struct nu_job *job, struct nu_job_graph *g)
{
    bool *seen = nu_xcalloc(job->nstages, sizeof(bool));
    /* From sources, and from stages with an unusable upstream entry (it may name a source). */
    for (size_t i = 0; i < job->nstages; i++)
        if (nu_job_is_source(&job->stages[i]) || g->cx->bad_upstream[i])
            nu_job_mark(job, i, seen);
    for (size_t i = 0; i < job->nstages; i++) {
        const struct nu_job_stage *st = &job->stages[i];
        if (seen[i] || g->on_cycle[i] || st->nupstream == 0)
            continue;
        char path[64];
        nu_job_path_stage(path, sizeof(path), i, NULL);
        nu_problems_add(g->cx->probs, path, "stage \"%s\" is not reachable from any source stage",
                        nu_job_sid(st));
    }
    free(seen);
}

/* Every topic needs as many partitions as the largest group reading it has instances. */
static void nu_job_check_partitions(struct nu_job *job, struct nu_job_pctx *cx)
{
    for (size_t u = 0; u < job->nstages; u++) {
        struct nu_job_stage *st = &job->stages[u];
        int need = nu_job_is_source(st) ? st->parallelism_max : 0;
        size_t reader = u;
        for (size_t d = 0; d < st->ndownstream; d++) {
            const struct nu_job_stage *ds = &job->stages[st->downstream_idx[d]];
            if (ds->parallelism_max > need) {
                need = ds->parallelism_max;
                reader = st->downstream_idx[d];
            }
        }
        if (st->partitions >= need)
            continue;
        if (!cx->partitions_set[u]) {
            st->partitions = need;
            continue;
        }
        char path[64];
        nu_job_path_stage(path, sizeof(path), u, "partitions");
        if (reader == u)
            nu_problems_add(cx->probs, path,
                            "%d partitions are fewer than the parallelism max %d of source "
                            "stage \"%s\", which reads its plan topic",
                            st->partitions, need, nu_job_sid(st));
        else
            nu_problems_add(cx->probs, path,
                            "%d partitions are fewer than the parallelism max %d of stage "
                            "\"%s\", which reads this stage's output",
                            st->partitions, need, nu_job_sid(&job->stages[reader]));
    }
}

/* Kahn's algorithm, taking ready stages in spec order. */
static void nu_job_topo(struct nu_job *job)
{
    size_t n = job->nstages;
    size_t *indeg = nu_xcalloc(n, sizeof(size_t));
    size_t *order = nu_xcalloc(n, sizeof(size_t));
    bool *done = nu_xcalloc(n, sizeof(bool));
    for (size_t i = 0; i < n; i++)
        indeg[i] = job->stages[i].nupstream;
    size_t len = 0;
    while (len < n) {
        size_t pick = NU_NONE;
        for (size_t i = 0; i < n && pick == NU_NONE; i++)
            if (!done[i] && indeg[i] == 0)
                pick = i;
        if (pick == NU_NONE)
            break;
        done[pick] = true;
        order[len++] = pick;
        for (size_t d = 0; d < job->stages[pick].ndownstream; d++)
            indeg[job->stages[pick].downstream_idx[d]]--;
    }
    if (len == n)
        job->topo = order;
    else
        free(order);
    free(indeg);
    free(done);
}

void nu_job_link(struct nu_job *job, struct nu_job_pctx *cx)
{
    struct nu_job_graph g = {.job = job, .cx = cx};
    size_t n = job->nstages;
    if (n == 0)
        return;
    nu_job_resolve(job, cx);
    nu_job_check_kinds(job, cx);

    g.color = nu_xcalloc(n, 1);
    g.stack = nu_xcalloc(n, sizeof(size_t));
    g.on_cycle = nu_xcalloc(n, sizeof(bool));
    for (size_t i = 0; i < n; i++)
        if (g.color[i] == 0)
            nu_job_dfs(&g, i);
    nu_job_check_reach(job, &g);
    nu_job_check_partitions(job, cx);
    if (!g.any_cycle)
        nu_job_topo(job);
    free(g.color);
    free(g.stack);
    free(g.on_cycle);
}
