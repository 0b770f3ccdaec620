/*
 * api_jobs.c — job endpoints: submit, list, get, cancel, delete.
 */
#include "coordinator/api_int.h"

#include "common/log.h"
#include "common/mem.h"
#include "coordinator/store.h"
#include "operators/registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* POST /api/v1/jobs */
void nu_coord_h_job_submit(const struct nu_http_req *req, struct nu_http_resp *resp, void *app)
{
    nu_coord_api_t *api = app;
    struct nu_errbuf eb = {0};
    struct nu_problems probs;
    struct nu_job *job = NULL;
    json_t *body = NULL, *doc = NULL;
    char location[NU_JOB_MAX_ID_LEN * 3 + 32];
    nu_problems_init(&probs);

    /* First a JSON document (line and column of a syntax error), then a job spec. */
    nu_err_t err = nu_http_body_json(req, api->max_body_bytes, 0, &body, &eb);
    if (err) {
        nu_coord_fail(resp, err, &eb);
        goto out;
    }
    if (!json_is_object(body)) {
        nu_http_resp_error(resp, 400, "spec", "a job spec must be a JSON object", NULL);
        goto out;
    }
    err = nu_job_parse((const char *)req->body, req->body_len, nu_registry_validator(), &job,
                       &probs, &eb);
    if (err == NU_ERR_SPEC || probs.n) {
        nu_http_resp_error(resp, 400, "spec", "invalid job spec", &probs);
        goto out;
    }
    if (err) {
        nu_coord_fail(resp, err, &eb);
        goto out;
    }
    nu_db_t *db = nu_coord_db(req, resp, app);
    if (db == NULL)
        goto out;
    err = nu_store_job_insert(db, job, &eb);
    if (err == NU_ERR_EXISTS) {
        nu_errbuf_clear(&eb);
        nu_err_set(&eb, err, "job \"%s\" already exists", job->id);
    }
    if (err) {
        nu_coord_fail(resp, err, &eb);
        goto out;
    }
    if (api->launcher == NULL) {
        nu_err_set(&eb, NU_ERR_INTERNAL, "no launcher is configured");
        err = NU_ERR_INTERNAL;
    } else {
        err = nu_launcher_start(api->launcher, job, &eb);
    }
    if (err) {
        /* The job exists: it is answered as created, in state "failed" with the reason. */
        nu_log(NU_LOG_WARN, "api", "could not start job \"%s\": %s\tcode=%s", job->id,
               nu_err_msg(&eb), nu_err_name(err));
        struct nu_errbuf seb = {0};
        nu_err_t serr = nu_store_job_set_state(db, job->id, "failed", nu_err_msg(&eb), &seb);
        if (serr && serr != NU_ERR_STATE)
            nu_log(NU_LOG_WARN, "api", "could not mark job \"%s\" failed: %s", job->id,
                   nu_err_msg(&seb));
        nu_errbuf_clear(&eb);
    }
    err = nu_store_job_get(db, job->id, &doc, &eb);
    if (err) {
        nu_coord_fail(resp, err, &eb);
        goto out;
    }
    snprintf(location, sizeof(location), "/api/v1/jobs/%s", job->id);
    nu_http_resp_json(resp, 201, doc);
    doc = NULL;
    nu_http_resp_header(resp, "Location", location);
out:
    json_decref(doc);
    json_decref(body);
    nu_job_destroy(job);
    nu_problems_free(&probs);
}

/* GET /api/v1/jobs?state=&limit=&cursor= */
void nu_coord_h_jobs_list(const struct nu_http_req *req, struct nu_http_resp *resp, void *app)
{
    struct nu_errbuf eb = {0};
    struct nu_http_page page;
    const char *state = NULL;
    json_t *items = NULL;
    char *next = NULL;
    nu_err_t err = nu_http_query_str(req, "state", NU_COORD_MAX_QUERY_LEN, NULL, &state, &eb);
    if (!err)
        err = nu_http_query_page(req, &page, &eb);
    if (!err && page.cursor != NULL && strlen(page.cursor) > NU_STORE_MAX_CURSOR)
        err = nu_err_set(&eb, NU_ERR_INVALID, "query parameter \"cursor\" is too long");
    if (err) {
        nu_coord_fail(resp, err, &eb);
        goto out;
    }
    if (state != NULL && *state == '\0')
        state = NULL;
    nu_db_t *db = nu_coord_db(req, resp, app);
    if (db == NULL)
        goto out;
    err = nu_store_jobs_list(db, state, page.cursor, (int)page.limit, &items, &next, &eb);
    if (err) {
        nu_coord_fail(resp, err, &eb);
        goto out;
    }
    nu_http_resp_json(resp, 200, nu_coord_page(items, next));
    items = NULL;
out:
    json_decref(items);
    free(next);
}

/* GET /api/v1/jobs/{id} */
void nu_coord_h_job_get(const struct nu_http_req *req, struct nu_http_resp *resp, void *app)
{
    struct nu_errbuf eb = {0};
    json_t *doc = NULL;
    nu_db_t *db = nu_coord_db(req, resp, app);
    if (db == NULL)
        return;
    nu_err_t err = nu_store_job_get(db, nu_http_param(req, "id"), &doc, &eb);
    if (err)
        nu_coord_fail(resp, err, &eb);
    else
        nu_http_resp_json(resp, 200, doc);
}

/* POST /api/v1/jobs/{id}/cancel */
void nu_coord_h_job_cancel(const struct nu_http_req *req, struct nu_http_resp *resp, void *app)
{
    nu_coord_api_t *api = app;
    struct nu_errbuf eb = {0};
    json_t *doc = NULL;
    const char *id = nu_http_param(req, "id");
    nu_err_t err = NU_OK;
    nu_db_t *db = nu_coord_db(req, resp, app);
    if (db == NULL)
        goto out;
    /* Unknown ids are a 404 whatever the launcher knows. */
    err = nu_store_job_get(db, id, &doc, &eb);
    if (err)
        goto out;
    json_decref(doc);
    doc = NULL;
    if (api->launcher == NULL)
        err = nu_err_set(&eb, NU_ERR_INTERNAL, "no launcher is configured");
    else
        err = nu_launcher_cancel(api->launcher, id, &eb);
    if (err == NU_ERR_NOT_FOUND) {
        /* Stored but never started by this launcher (its start failed, or another
         * coordinator's): nothing runs here, so the store alone says it is cancelled. */
        nu_errbuf_clear(&eb);
        err = nu_store_job_set_state(db, id, "cancelled", NULL, &eb);
        if (err == NU_ERR_STATE) {
            nu_errbuf_clear(&eb);
            err = nu_err_set(&eb, NU_ERR_STATE, "job \"%s\" already ended", id);
        }
    }
    if (!err)
        err = nu_store_job_get(db, id, &doc, &eb);
out:
    if (db != NULL && err)
        nu_coord_fail(resp, err, &eb);
    else if (db != NULL) {
        nu_http_resp_json(resp, 200, doc);
        doc = NULL;
    }
    json_decref(doc);
}

/* DELETE /api/v1/jobs/{id}?topics=true */
void nu_coord_h_job_delete(const struct nu_http_req *req, struct nu_http_resp *resp, void *app)
{
    nu_coord_api_t *api = app;
    struct nu_errbuf eb = {0};
    struct nu_job *job = NULL;
    json_t *doc = NULL;
    bool topics = false;
    const char *id = nu_http_param(req, "id");
    nu_db_t *db = NULL;
    nu_err_t err = nu_http_query_bool(req, "topics", false, &topics, &eb);
    if (err)
        goto out;
    db = nu_coord_db(req, resp, app);
    if (db == NULL)
        goto out;
    err = nu_coord_job_load(db, id, &job, &doc, &eb);
    if (err)
        goto out;
    const char *state = json_string_value(json_object_get(doc, "state"));
    if (state != NULL && (strcmp(state, "running") == 0 || strcmp(state, "submitted") == 0)) {
        err = nu_err_set(&eb, NU_ERR_STATE, "job \"%s\" is %s: cancel it before deleting it", id,
                         state);
        goto out;
    }
    if (topics) {
        if (api->launcher == NULL)
            err = nu_err_set(&eb, NU_ERR_INTERNAL, "no launcher is configured");
        else
            err = nu_launcher_delete_topics(api->launcher, job, &eb);
        if (err)
            goto out;
    }
    err = nu_store_job_delete(db, id, &eb);
out:
    if (err)
        nu_coord_fail(resp, err, &eb);
    else if (db != NULL)
        resp->status = 204;
    json_decref(doc);
    nu_job_destroy(job);
}
