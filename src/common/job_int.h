/*
 * job_int.h — internals shared by job.c, job_parse.c and job_validate.c (layer: common).
 * Not for use outside the job module.
 */
#ifndef NU_COMMON_JOB_INT_H
#define NU_COMMON_JOB_INT_H

#include "common/job.h"
#include "common/json.h"

#include <stdbool.h>

/* State of one parse; the per-stage arrays have job->nstages entries. */
struct nu_job_pctx {
    const struct nu_job_validator *v;
    struct nu_problems *probs;
    bool *partitions_set; /* the stage gave "partitions" explicitly */
    bool *bad_upstream;   /* an entry of the stage's "upstream" was unusable (type, self, twice) */
};

/*
 * Read the fields of the root object into `job` (allocated, zeroed), adding a problem for each
 * fault. Stages whose ids cannot be read keep id NULL; malformed ids are kept for resolution.
 * Calls v->kind for each operator name. Allocates only within the named limits.
 */
void nu_job_read(struct nu_job *job, const json_t *root, struct nu_job_pctx *cx);

/*
 * Resolve upstreams, fill downstream lists, check kinds, cycles, reachability and partitions,
 * and compute the topological order (left NULL when there is a cycle).
 */
void nu_job_link(struct nu_job *job, struct nu_job_pctx *cx);

/* True when `s` is a valid id: [A-Za-z0-9_-]{1,NU_JOB_MAX_ID_LEN}. */
bool nu_job_id_valid(const char *s);

#endif
