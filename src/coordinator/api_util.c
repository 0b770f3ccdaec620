/*
 * api_util.c — the coordinator API's context, per-thread store connections and the helpers its
 * handlers share.
 */
#include "coordinator/api_int.h"

#include "common/log.h"
#include "common/mem.h"
#include "coordinator/store.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t nu_coord_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

nu_err_t nu_coord_api_new(const struct nu_coord_api_conf *conf, nu_coord_api_t **out,
                          struct nu_errbuf *eb)
{
    nu_coord_api_t *api = NULL;
    nu_err_t err = NU_OK;
    *out = NULL;
    if (conf->database_url == NULL || *conf->database_url == '\0' || conf->brokers == NULL ||
        *conf->brokers == '\0') {
        err = nu_err_set(eb, NU_ERR_CONFIG, "the API needs a database URL and a broker list");
        goto out;
    }
    api = nu_xcalloc(1, sizeof(*api));
    pthread_mutex_init(&api->lock, NULL);
    api->database_url = nu_xstrdup(conf->database_url);
    api->brokers = nu_xstrdup(conf->brokers);
    api->nprops = conf->nprops;
    api->props = nu_xcalloc(conf->nprops + 1, sizeof(*api->props));
    for (size_t i = 0; i < conf->nprops; i++) {
        api->props[i].key = nu_xstrdup(conf->props[i].key);
        api->props[i].value = nu_xstrdup(conf->props[i].value);
    }
    api->max_body_bytes = conf->max_body_bytes ? conf->max_body_bytes : NU_HTTP_JSON_MAX_BYTES;
    api->launcher = conf->launcher;
    api->mconn.backoff_ms = NU_COORD_RECONNECT_MS;
    err = nu_kafka_client_new(NU_KAFKA_ADMIN, api->brokers, NULL, NULL, api->props, api->nprops,
                              &api->rk, eb);
    if (err)
        goto out;
    *out = api;
    api = NULL;
out:
    nu_coord_api_destroy(api);
    return err;
}

void nu_coord_api_destroy(nu_coord_api_t *api)
{
    if (api == NULL)
        return;
    if (api->rk != NULL)
        rd_kafka_destroy(api->rk);
    nu_store_close(api->mconn.db);
    for (size_t i = 0; i < api->nprops; i++) {
        free((char *)api->props[i].key);
        free((char *)api->props[i].value);
    }
    free(api->props);
    free(api->database_url);
    free(api->brokers);
    pthread_mutex_destroy(&api->lock);
    free(api);
}

void nu_coord_api_set_ingest(nu_coord_api_t *api, const nu_ingest_t *ing)
{
    api->ingest = ing;
}

nu_db_t *nu_coord_conn_get(nu_coord_api_t *api, struct nu_coord_conn *c, struct nu_errbuf *eb)
{
    if (c->db != NULL && nu_db_ok(c->db))
        return c->db;
    int64_t now = nu_coord_now_ms();
    if (now < c->next_try_ms) {
        nu_err_set(eb, NU_ERR_DB, "database unavailable, next connection attempt in %lld ms",
                   (long long)(c->next_try_ms - now));
        return NULL;
    }
    nu_store_close(c->db);
    c->db = NULL;
    struct nu_errbuf ceb = {0};
    if (nu_store_connect(api->database_url, &c->db, &ceb) != NU_OK) {
        c->next_try_ms = nu_coord_now_ms() + c->backoff_ms;
        c->backoff_ms =
            c->backoff_ms * 2 > NU_COORD_RECONNECT_MAX ? NU_COORD_RECONNECT_MAX : c->backoff_ms * 2;
        nu_err_set(eb, NU_ERR_DB, "database unavailable: %s", nu_err_msg(&ceb));
        return NULL;
    }
    c->backoff_ms = NU_COORD_RECONNECT_MS;
    c->next_try_ms = 0;
    return c->db;
}

void *nu_coord_thread_ctx_new(void *app_ctx)
{
    nu_coord_api_t *api = app_ctx;
    struct nu_coord_conn *c = nu_xcalloc(1, sizeof(*c));
    struct nu_errbuf eb = {0};
    c->backoff_ms = NU_COORD_RECONNECT_MS;
    if (nu_coord_conn_get(api, c, &eb) == NULL)
        nu_log(NU_LOG_WARN, "api", "%s", nu_err_msg(&eb));
    return c;
}

void nu_coord_thread_ctx_free(void *thread_ctx, void *app_ctx)
{
    struct nu_coord_conn *c = thread_ctx;
    if (c == NULL)
        return;
    nu_store_close(c->db);
    free(c);
}

nu_db_t *nu_coord_db(const struct nu_http_req *req, struct nu_http_resp *resp, void *app)
{
    struct nu_errbuf eb = {0};
    nu_db_t *db = NULL;
    if (req->thread_ctx == NULL) {
        nu_err_set(&eb, NU_ERR_DB, "no database connection on this thread");
        goto out;
    }
    db = nu_coord_conn_get(app, req->thread_ctx, &eb);
out:
    if (db == NULL)
        nu_coord_fail(resp, NU_ERR_DB, &eb);
    return db;
}

nu_err_t nu_coord_job_load(nu_db_t *db, const char *id, struct nu_job **job, json_t **doc,
                           struct nu_errbuf *eb)
{
    json_t *d = NULL;
    char *text = NULL;
    *job = NULL;
    nu_err_t err = nu_store_job_get(db, id, &d, eb);
    if (err)
        goto out;
    json_t *spec = json_object_get(d, "spec");
    text = spec ? json_dumps(spec, JSON_COMPACT) : NULL;
    if (text == NULL) {
        err = nu_err_set(eb, NU_ERR_CORRUPT, "job \"%s\" has no stored spec", id);
        goto out;
    }
    err = nu_job_parse(text, strlen(text), NULL, job, NULL, eb);
    if (err) {
        nu_err_prefix(eb, "stored spec of job \"%s\": ", id);
        err = nu_err_set(eb, NU_ERR_CORRUPT, "stored spec of job \"%s\" does not parse", id);
    }
out:
    free(text);
    if (!err && doc != NULL) {
        *doc = d;
        d = NULL;
    }
    json_decref(d);
    return err;
}

void nu_coord_fail(struct nu_http_resp *resp, nu_err_t err, const struct nu_errbuf *eb)
{
    nu_http_resp_from_err(resp, err, eb);
    if (resp->status >= 500)
        nu_log(NU_LOG_WARN, "api", "request failed: %s\tcode=%s", nu_err_msg(eb), nu_err_name(err));
}

json_t *nu_coord_page(json_t *items, const char *next)
{
    json_t *o = json_object();
    json_object_set_new(o, "items", items ? items : json_array());
    json_object_set_new(o, "next", next ? json_string(next) : json_null());
    return o;
}

void nu_coord_bprintf(struct nu_buf *b, const char *fmt, ...)
{
    va_list ap;
    char small[256];
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(small)) {
        nu_buf_append(b, small, (size_t)n);
        return;
    }
    unsigned char *p = nu_buf_reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf((char *)p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}
