/*
 * api_routes.c — the coordinator's route table.
 */
#include "coordinator/api_int.h"

#define NU_V1 "/api/v1/jobs"

static const struct nu_http_route nu_coord_route_table[] = {
    {NU_HTTP_GET, "/readyz", nu_coord_h_readyz, NU_HTTP_ROUTE_PUBLIC},
    {NU_HTTP_POST, NU_V1, nu_coord_h_job_submit, NU_HTTP_ROUTE_JSON_BODY},
    {NU_HTTP_GET, NU_V1, nu_coord_h_jobs_list, 0},
    {NU_HTTP_GET, NU_V1 "/{id}", nu_coord_h_job_get, 0},
    {NU_HTTP_DELETE, NU_V1 "/{id}", nu_coord_h_job_delete, 0},
    {NU_HTTP_POST, NU_V1 "/{id}/cancel", nu_coord_h_job_cancel, 0},
    {NU_HTTP_GET, NU_V1 "/{id}/stages", nu_coord_h_stages, 0},
    {NU_HTTP_GET, NU_V1 "/{id}/stages/{sid}", nu_coord_h_stage_get, 0},
    {NU_HTTP_GET, NU_V1 "/{id}/stages/{sid}/metrics", nu_coord_h_stage_series, 0},
    {NU_HTTP_POST, NU_V1 "/{id}/stages/{sid}/scale", nu_coord_h_stage_scale,
     NU_HTTP_ROUTE_JSON_BODY},
    {NU_HTTP_POST, NU_V1 "/{id}/stages/{sid}/freeze", nu_coord_h_stage_freeze, 0},
    {NU_HTTP_POST, NU_V1 "/{id}/stages/{sid}/unfreeze", nu_coord_h_stage_unfreeze, 0},
    {NU_HTTP_GET, NU_V1 "/{id}/instances", nu_coord_h_instances, 0},
    {NU_HTTP_GET, NU_V1 "/{id}/splits", nu_coord_h_splits, 0},
    {NU_HTTP_GET, NU_V1 "/{id}/splits/{split}/lineage", nu_coord_h_lineage, 0},
    {NU_HTTP_GET, NU_V1 "/{id}/exceptions", nu_coord_h_exceptions, 0},
    {NU_HTTP_GET, NU_V1 "/{id}/topics", nu_coord_h_topics, 0},
    {NU_HTTP_POST, NU_V1 "/{id}/autoscaling/pause", nu_coord_h_autoscale_pause, 0},
    {NU_HTTP_POST, NU_V1 "/{id}/autoscaling/resume", nu_coord_h_autoscale_resume, 0},
};

const struct nu_http_route *nu_coord_routes(size_t *n)
{
    *n = sizeof(nu_coord_route_table) / sizeof(nu_coord_route_table[0]);
    return nu_coord_route_table;
}
