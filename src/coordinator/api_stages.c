/*
 * api_stages.c — stage, instance, split, lineage and exception endpoints, and the scaling
 * controls of a job's stages.
 */
#include "coordinator/api_int.h"

#include "common/log.h"
#include "coordinator/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Answer `items` (an array, reference taken) as {"items": […]}. */
static void nu_coord_items(struct nu_http_resp *resp, json_t *items)
{
    json_t *o = json_object();
    json_object_set_new(o, "items", items);
    nu_http_resp_json(resp, 200, o);
}

/* GET /api/v1/jobs/{id}/stages */
void nu_coord_h_stages(const struct nu_http_req *req, struct nu_http_resp *resp, void *app)
{
    struct nu_errbuf eb = {0};
    json_t *items = NULL;
    nu_db_t *db = nu_coord_db(req, resp, app);
    if (db == NULL)
        return;
    nu_err_t err = nu_store_stages(db, nu_http_param(req, "id"), &items, &eb);
    if (err)
        nu_coord_fail(resp, err, &eb);
    else
        nu_coord_items(resp, items);
}

/* The stage `sid` of a stages array (borrowed), or NULL. */
static json_t *nu_coord_stage_pick(json_t *stages, const char *sid)
{
    size_t i;
    json_t *st;
    json_array_foreach(stages, i, st)
    {
        const char *id = json_string_value(json_object_get(st, "id"));
        if (id != NULL && strcmp(id, sid) == 0)
            return st;
    }
    return NULL;
}

/* GET /api/v1/jobs/{id}/stages/{sid}: the stage, its instances, and its live input lag. */
void nu_coord_h_stage_get(const struct nu_http_req *req, struct nu_http_resp *resp, void *app)
{
    nu_coord_api_t *api = app;
    struct nu_errbuf eb = {0};
    struct nu_job *job = NULL;
    json_t *stages = NULL, *insts = NULL, *lag = NULL, *mine = NULL;
    const char *id = nu_http_param(req, "id"), *sid = nu_http_param(req, "sid");
    nu_err_t err = NU_OK;
    nu_db_t *db = nu_coord_db(req, resp, app);
    if (db == NULL)
        goto out;
    err = nu_coord_job_load(db, id, &job, NULL, &eb);
    if (!err)
        err = nu_store_stages(db, id, &stages, &eb);
    if (!err)
        err = nu_store_instances(db, id, &insts, &eb);
    if (err)
        goto out;
    size_t idx;
    json_t *st = nu_coord_stage_pick(stages, sid);
    if (st == NULL || !nu_job_stage_find(job, sid, &idx)) {
        err = nu_err_set(&eb, NU_ERR_NOT_FOUND, "job \"%s\" has no stage \"%s\"", id, sid);
        goto out;
    }
    mine = json_array();
    size_t i;
    json_t *in;
    json_array_foreach(insts, i, in)
    {
        const char *s = json_string_value(json_object_get(in, "stage"));
        if (s != NULL && strcmp(s, sid) == 0)
            json_array_append(mine, in);
    }
    json_object_set(st, "instances", mine);
    /* Lag comes from the broker; when it cannot be read the stage is still answered. */
    struct nu_errbuf leb = {0};
    if (api->launcher != NULL && nu_launcher_stage_lag(api->launcher, job, idx, &lag, &leb) == 0) {
        json_object_set_new(st, "lag_detail", lag);
        lag = NULL;
    } else {
        json_object_set_new(st, "lag_detail", json_null());
        json_object_set_new(st, "lag_error",
                            json_string(api->launcher ? nu_err_msg(&leb) : "no launcher"));
    }
    nu_http_resp_json(resp, 200, json_incref(st));
out:
    if (err)
        nu_coord_fail(resp, err, &eb);
    json_decref(stages);
    json_decref(insts);
    json_decref(mine);
    json_decref(lag);
    nu_job_destroy(job);
}

/* GET /api/v1/jobs/{id}/instances */
void nu_coord_h_instances(const struct nu_http_req *req, struct nu_http_resp *resp, void *app)
{
    struct nu_errbuf eb = {0};
    json_t *items = NULL, *doc = NULL;
    const char *id = nu_http_param(req, "id");
    nu_db_t *db = nu_coord_db(req, resp, app);
    if (db == NULL)
        return;
    nu_err_t err = nu_store_job_get(db, id, &doc, &eb); /* 404 for an unknown job */
    json_decref(doc);
    if (!err)
        err = nu_store_instances(db, id, &items, &eb);
    if (err)
        nu_coord_fail(resp, err, &eb);
    else
        nu_coord_items(resp, items);
}

/* GET /api/v1/jobs/{id}/splits?stage=&limit=&cursor= */
void nu_coord_h_splits(const struct nu_http_req *req, struct nu_http_resp *resp, void *app)
{
    struct nu_errbuf eb = {0};
    struct nu_http_page page;
    const char *stage = NULL, *id = nu_http_param(req, "id");
    json_t *items = NULL, *doc = NULL;
    char *next = NULL;
    nu_db_t *db = NULL;
    nu_err_t err = nu_http_query_str(req, "stage", NU_COORD_MAX_QUERY_LEN, NULL, &stage, &eb);
    if (!err)
        err = nu_http_query_page(req, &page, &eb);
    if (!err && page.cursor != NULL && strlen(page.cursor) > NU_STORE_MAX_CURSOR)
        err = nu_err_set(&eb, NU_ERR_INVALID, "query parameter \"cursor\" is too long");
    if (err)
        goto out;
    if (stage != NULL && *stage == '\0')
        stage = NULL;
    db = nu_coord_db(req, resp, app);
    if (db == NULL)
        goto out;
    err = nu_store_job_get(db, id, &doc, &eb);
    if (!err)
        err = nu_store_splits(db, id, stage, page.cursor, (int)page.limit, &items, &next, &eb);
    if (!err) {
        nu_http_resp_json(resp, 200, nu_coord_page(items, next));
        items = NULL;
    }
out:
    if (err)
        nu_coord_fail(resp, err, &eb);
    json_decref(doc);
    json_decref(items);
    free(next);
}

/* GET /api/v1/jobs/{id}/splits/{split}/lineage?direction=up|down&depth=N */
void nu_coord_h_lineage(const struct nu_http_req *req, struct nu_http_resp *resp, void *app)
{
    struct nu_errbuf eb = {0};
    const char *dir = NULL;
    long long depth = 0;
    json_t *out = NULL;
    nu_lineage_dir_t d = NU_LINEAGE_UP;
    nu_err_t err = nu_http_query_str(req, "direction", 8, "up", &dir, &eb);
    if (!err) {
        if (strcmp(dir, "up") == 0)
            d = NU_LINEAGE_UP;
        else if (strcmp(dir, "down") == 0)
            d = NU_LINEAGE_DOWN;
        else
            err = nu_err_set(&eb, NU_ERR_INVALID,
                             "query parameter \"direction\" must be \"up\" or \"down\", got \"%s\"",
                             dir);
    }
    if (!err)
        err = nu_http_query_int(req, "depth", 1, NU_STORE_MAX_DEPTH, NU_COORD_LINEAGE_DEPTH, &depth,
                                &eb);
    if (err) {
        nu_coord_fail(resp, err, &eb);
        return;
    }
    nu_db_t *db = nu_coord_db(req, resp, app);
    if (db == NULL)
        return;
    err = nu_store_lineage(db, nu_http_param(req, "id"), nu_http_param(req, "split"), d, (int)depth,
                           &out, &eb);
    if (err)
        nu_coord_fail(resp, err, &eb);
    else
        nu_http_resp_json(resp, 200, out);
}

/* GET /api/v1/jobs/{id}/exceptions */
void nu_coord_h_exceptions(const struct nu_http_req *req, struct nu_http_resp *resp, void *app)
{
    struct nu_errbuf eb = {0};
    json_t *items = NULL, *doc = NULL;
    const char *id = nu_http_param(req, "id");
    nu_db_t *db = nu_coord_db(req, resp, app);
    if (db == NULL)
        return;
    nu_err_t err = nu_store_job_get(db, id, &doc, &eb);
    json_decref(doc);
    if (!err)
        err = nu_store_exceptions(db, id, &items, &eb);
    if (err)
        nu_coord_fail(resp, err, &eb);
    else
        nu_coord_items(resp, items);
}

/* Answer the current document of stage `sid` of job `id` after a control changed it. */
static nu_err_t nu_coord_stage_answer(nu_db_t *db, const char *id, const char *sid,
                                      struct nu_http_resp *resp, struct nu_errbuf *eb)
{
    json_t *stages = NULL;
    nu_err_t err = nu_store_stages(db, id, &stages, eb);
    if (err)
        return err;
    json_t *st = nu_coord_stage_pick(stages, sid);
    if (st == NULL)
        err = nu_err_set(eb, NU_ERR_NOT_FOUND, "job \"%s\" has no stage \"%s\"", id, sid);
    else
        nu_http_resp_json(resp, 200, json_incref(st));
    json_decref(stages);
    return err;
}

/* Check that stage `sid` of job `id` exists (404 otherwise). */
static nu_err_t nu_coord_stage_exists(nu_db_t *db, const char *id, const char *sid,
                                      struct nu_errbuf *eb)
{
    json_t *stages = NULL;
    nu_err_t err = nu_store_stages(db, id, &stages, eb);
    if (!err && nu_coord_stage_pick(stages, sid) == NULL)
        err = nu_err_set(eb, NU_ERR_NOT_FOUND, "job \"%s\" has no stage \"%s\"", id, sid);
    json_decref(stages);
    return err;
}

/* POST /api/v1/jobs/{id}/stages/{sid}/scale {"instances": N} */
void nu_coord_h_stage_scale(const struct nu_http_req *req, struct nu_http_resp *resp, void *app)
{
    nu_coord_api_t *api = app;
    struct nu_errbuf eb = {0};
    json_t *body = NULL;
    const char *id = nu_http_param(req, "id"), *sid = nu_http_param(req, "sid");
    nu_db_t *db = NULL;
    nu_err_t err = nu_http_body_json(req, NU_COORD_MAX_CONTROL_LEN, 4, &body, &eb);
    if (err)
        goto out;
    json_t *n = json_object_get(body, "instances");
    if (!json_is_object(body) || json_object_size(body) != 1 || !json_is_integer(n) ||
        json_integer_value(n) < 0 || json_integer_value(n) > NU_JOB_MAX_PARALLELISM) {
        err = nu_err_set(&eb, NU_ERR_INVALID,
                         "body must be {\"instances\": N} with N an integer between 0 and %d",
                         NU_JOB_MAX_PARALLELISM);
        goto out;
    }
    db = nu_coord_db(req, resp, app);
    if (db == NULL)
        goto out;
    err = nu_coord_stage_exists(db, id, sid, &eb);
    if (err)
        goto out;
    if (api->launcher == NULL)
        err = nu_err_set(&eb, NU_ERR_INTERNAL, "no launcher is configured");
    else
        err = nu_launcher_scale(api->launcher, id, sid, (int)json_integer_value(n), &eb);
    if (!err)
        err = nu_coord_stage_answer(db, id, sid, resp, &eb);
out:
    if (err)
        nu_coord_fail(resp, err, &eb);
    json_decref(body);
}

static void nu_coord_freeze(const struct nu_http_req *req, struct nu_http_resp *resp, void *app,
                            bool frozen)
{
    nu_coord_api_t *api = app;
    struct nu_errbuf eb = {0};
    const char *id = nu_http_param(req, "id"), *sid = nu_http_param(req, "sid");
    nu_db_t *db = nu_coord_db(req, resp, app);
    if (db == NULL)
        return;
    nu_err_t err = nu_coord_stage_exists(db, id, sid, &eb);
    if (!err && api->launcher == NULL)
        err = nu_err_set(&eb, NU_ERR_INTERNAL, "no launcher is configured");
    if (!err)
        err = nu_launcher_freeze(api->launcher, id, sid, frozen, &eb);
    if (!err)
        err = nu_coord_stage_answer(db, id, sid, resp, &eb);
    if (err)
        nu_coord_fail(resp, err, &eb);
}

/* POST /api/v1/jobs/{id}/stages/{sid}/freeze and …/unfreeze */
void nu_coord_h_stage_freeze(const struct nu_http_req *req, struct nu_http_resp *resp, void *app)
{
    nu_coord_freeze(req, resp, app, true);
}

void nu_coord_h_stage_unfreeze(const struct nu_http_req *req, struct nu_http_resp *resp, void *app)
{
    nu_coord_freeze(req, resp, app, false);
}

static void nu_coord_autoscale(const struct nu_http_req *req, struct nu_http_resp *resp, void *app,
                               bool paused)
{
    nu_coord_api_t *api = app;
    struct nu_errbuf eb = {0};
    json_t *doc = NULL;
    const char *id = nu_http_param(req, "id");
    nu_db_t *db = nu_coord_db(req, resp, app);
    if (db == NULL)
        return;
    nu_err_t err = nu_store_job_get(db, id, &doc, &eb);
    json_decref(doc);
    if (!err && api->launcher == NULL)
        err = nu_err_set(&eb, NU_ERR_INTERNAL, "no launcher is configured");
    if (!err)
        err = nu_launcher_autoscaling_pause(api->launcher, id, paused, &eb);
    if (err) {
        nu_coord_fail(resp, err, &eb);
        return;
    }
    nu_http_resp_json(
        resp, 200, json_pack("{s:s, s:s}", "job", id, "autoscaling", paused ? "paused" : "active"));
}

/* POST /api/v1/jobs/{id}/autoscaling/pause and …/resume */
void nu_coord_h_autoscale_pause(const struct nu_http_req *req, struct nu_http_resp *resp, void *app)
{
    nu_coord_autoscale(req, resp, app, true);
}

void nu_coord_h_autoscale_resume(const struct nu_http_req *req, struct nu_http_resp *resp,
                                 void *app)
{
    nu_coord_autoscale(req, resp, app, false);
}
