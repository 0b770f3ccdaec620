/*
 * Integration tests of the coordinator service (src/cli/service.c, src/coordinator/api_*.c)
 * against the real PostgreSQL and Kafka: the service runs in-process on 127.0.0.1:0 and is driven
 * over HTTP with libcurl. Every response a test sees is checked against src/api/openapi.json.
 */
#include "integ.h"

#include "api/openapi.h"
#include "cli/service.h"
#include "coordinator/api.h"
#include "common/buf.h"
#include "common/job.h"
#include "coordinator/db.h"
#include "stage/connectors.h"
#include "stage/events.h"
#include "stage/kafka.h"

#include <curl/curl.h>
#include <pthread.h>

#define IT_TOKEN "it-api-token-1"

static nu_service_t *it_svc;
static pthread_t it_thr;
static unsigned it_port;
static json_t *it_doc;
static char it_db_url[512]; /* a private database of the local-mode test ("" = the shared one) */
static char it_db_name[64];

static void it_delete_leftover_topics(void);

static void *it_run(void *arg)
{
    nu_service_run(arg, NULL);
    return NULL;
}

/* Start the service as `nurion coordinator` would, in the given launcher mode. */
static void it_start_mode(nu_launch_mode_t mode)
{
    struct nu_errbuf eb = {0};
    struct nu_service_conf c = {0};
    c.listen = "127.0.0.1:0";
    c.threads = 4;
    c.database_url = it_db_url[0] ? it_db_url : nu_it_database_url();
    c.brokers = nu_it_brokers();
    c.auth_token = IT_TOKEN;
    c.launcher_mode = mode;
    c.max_body_bytes = 64 * 1024;
    nu_autoscale_conf_default(&c.autoscale);
    c.autoscale.enabled = false;
    c.nurion_exe = NU_BINARY_DIR "/bin/nurion";
    c.ingest_jobs_like = "apit-%";
    cr_assert_eq(nu_service_new(&c, &it_svc, &eb), NU_OK, "%s", nu_err_msg(&eb));
    it_port = nu_service_port(it_svc);
    cr_assert_gt(it_port, 0);
    cr_assert_eq(pthread_create(&it_thr, NULL, it_run, it_svc), 0);
    cr_assert_eq(nu_openapi_doc(&it_doc, &eb), NU_OK, "%s", nu_err_msg(&eb));
}

static void it_start(void)
{
    it_start_mode(NU_LAUNCH_EXTERNAL);
}

static void it_stop(void)
{
    if (it_svc != NULL) {
        nu_service_stop(it_svc);
        pthread_join(it_thr, NULL);
        nu_service_destroy(it_svc);
        it_svc = NULL;
    }
    it_delete_leftover_topics();
    json_decref(it_doc);
    it_doc = NULL;
}

struct it_resp {
    long status;
    char ctype[128];
    char location[256];
    struct nu_buf body;
    json_t *json; /* parsed body when JSON */
};

static size_t it_body_cb(char *p, size_t sz, size_t n, void *ud)
{
    nu_buf_append(ud, p, sz * n);
    return sz * n;
}

static size_t it_header_cb(char *p, size_t sz, size_t n, void *ud)
{
    struct it_resp *r = ud;
    size_t len = sz * n;
    if (len > 10 && strncasecmp(p, "Location: ", 10) == 0) {
        size_t m = len - 10;
        while (m > 0 && (p[10 + m - 1] == '\r' || p[10 + m - 1] == '\n'))
            m--;
        if (m < sizeof(r->location)) {
            memcpy(r->location, p + 10, m);
            r->location[m] = '\0';
        }
    }
    return len;
}

static void it_resp_free(struct it_resp *r)
{
    nu_buf_free(&r->body);
    json_decref(r->json);
    memset(r, 0, sizeof(*r));
}

/*
 * One request. `pattern` is the OpenAPI path template the response is checked against (NULL:
 * not documented, e.g. unmatched paths). `token` NULL sends none. Fills *r (free with
 * it_resp_free).
 */
static void it_req(const char *method, const char *path, const char *pattern, const char *ctype,
                   const char *body, size_t body_len, const char *token, struct it_resp *r)
{
    char url[4096], auth[256], cth[256];
    struct curl_slist *hdrs = NULL;
    memset(r, 0, sizeof(*r));
    CURL *c = curl_easy_init();
    cr_assert_not_null(c);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", it_port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, it_body_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, it_header_cb);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    if (token != NULL) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        hdrs = curl_slist_append(hdrs, auth);
    }
    if (body != NULL) {
        snprintf(cth, sizeof(cth), "Content-Type: %s", ctype ? ctype : "application/json");
        hdrs = curl_slist_append(hdrs, cth);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)body_len);
    }
    hdrs = curl_slist_append(hdrs, "Expect:");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    CURLcode cc = curl_easy_perform(c);
    cr_assert_eq(cc, CURLE_OK, "%s %s: %s", method, path, curl_easy_strerror(cc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    char *ct = NULL;
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
    snprintf(r->ctype, sizeof(r->ctype), "%s", ct ? ct : "");
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    nu_buf_putc(&r->body, 0);
    r->body.len--;
    if (strncmp(r->ctype, "application/json", 16) == 0)
        r->json = json_loadb((const char *)r->body.data, r->body.len, 0, NULL);
    if (pattern != NULL) {
        struct nu_errbuf eb = {0};
        struct nu_problems probs;
        nu_problems_init(&probs);
        nu_err_t err = nu_openapi_check_response(
            it_doc, method, pattern, (int)r->status, r->ctype[0] ? r->ctype : NULL,
            (const char *)r->body.data, r->body.len, &probs, &eb);
        cr_assert_eq(err, NU_OK, "%s %s -> %ld does not match the OpenAPI document: %s %s%s (%s)",
                     method, path, r->status, nu_err_msg(&eb), probs.n ? probs.items[0].path : "",
                     probs.n ? probs.items[0].message : "", r->body.data);
        nu_problems_free(&probs);
    }
}

static void it_get(const char *path, const char *pattern, struct it_resp *r)
{
    it_req("GET", path, pattern, NULL, NULL, 0, IT_TOKEN, r);
}

static void it_post(const char *path, const char *pattern, const char *body, struct it_resp *r)
{
    it_req("POST", path, pattern, "application/json", body ? body : "{}",
           strlen(body ? body : "{}"), IT_TOKEN, r);
}

/* The error code of an error body. */
static const char *it_code(const struct it_resp *r)
{
    const char *s = json_string_value(json_object_get(json_object_get(r->json, "error"), "code"));
    return s ? s : "(none)";
}

static void it_job_id(char *buf, size_t n)
{
    static unsigned k;
    snprintf(buf, n, "apit-%ld-%lld-%u", (long)getpid(), (long long)nu_it_now_ms() % 100000000,
             k++);
}

/* generate -> map -> file_sink spec. */
static void it_spec(char *buf, size_t n, const char *id, const char *dir, int rows,
                    const char *expr)
{
    snprintf(buf, n,
             "{\"job_id\":\"%s\",\"stages\":["
             "{\"id\":\"src\",\"operator\":\"generate\",\"partitions\":2,"
             "\"config\":{\"rows\":%d,\"split_rows\":10}},"
             "{\"id\":\"dbl\",\"operator\":\"map\",\"upstream\":[\"src\"],\"partitions\":2,"
             "\"config\":{\"columns\":{\"y\":\"%s\"}}},"
             "{\"id\":\"out\",\"operator\":\"file_sink\",\"upstream\":[\"dbl\"],\"partitions\":2,"
             "\"config\":{\"path\":\"%s\",\"format\":\"jsonl\"}}]}",
             id, rows, expr, dir);
}

/* Submit a job; asserts a 201 with a Location naming it. */
static void it_submit(const char *id, const char *spec)
{
    struct it_resp r;
    char want[256];
    it_post("/api/v1/jobs", "/api/v1/jobs", spec, &r);
    cr_assert_eq(r.status, 201, "%s", r.body.data);
    snprintf(want, sizeof(want), "/api/v1/jobs/%s", id);
    cr_assert_str_eq(r.location, want);
    cr_assert_str_eq(json_string_value(json_object_get(r.json, "id")), id);
    it_resp_free(&r);
}

/*
 * Cancel (when needed) and delete a job; its topics are deleted after the service stopped
 * (it_stop), so the ingester never follows a topic that disappears under it.
 */
static char it_leftover[96];

static void it_cleanup(const char *id)
{
    struct it_resp r;
    char path[256];
    snprintf(path, sizeof(path), "/api/v1/jobs/%s/cancel", id);
    it_post(path, "/api/v1/jobs/{id}/cancel", NULL, &r);
    it_resp_free(&r);
    snprintf(path, sizeof(path), "/api/v1/jobs/%s", id);
    it_req("DELETE", path, "/api/v1/jobs/{id}", NULL, NULL, 0, IT_TOKEN, &r);
    cr_expect_eq(r.status, 204, "%s", r.body.data);
    it_resp_free(&r);
    snprintf(it_leftover, sizeof(it_leftover), "%s", id);
}

/* Delete the topics of the job it_cleanup left (the stages of it_spec). */
static void it_delete_leftover_topics(void)
{
    static const char *const suffixes[] = {"src.plan", "src", "src.dlq", "dbl",
                                           "dbl.dlq",  "out", "out.dlq", "_events"};
    char names[8][NU_JOB_NAME_MAX];
    const char *ptrs[8];
    struct nu_errbuf eb = {0};
    rd_kafka_t *admin = NULL;
    if (it_leftover[0] == '\0')
        return;
    for (size_t i = 0; i < 8; i++) {
        snprintf(names[i], sizeof(names[i]), "nurion.%s.%s", it_leftover, suffixes[i]);
        ptrs[i] = names[i];
    }
    if (nu_kafka_client_new(NU_KAFKA_ADMIN, nu_it_brokers(), NULL, NULL, NULL, 0, &admin, &eb) ==
        NU_OK)
        nu_kafka_topics_delete(admin, ptrs, 8, NU_IT_TIMEOUT_MS, &eb); /* best effort */
    if (admin != NULL)
        rd_kafka_destroy(admin);
    it_leftover[0] = '\0';
}

TestSuite(api, .timeout = 240);

/* Only the OpenAPI document, for tests that build their own context. */
static void it_doc_only(void)
{
    struct nu_errbuf eb = {0};
    cr_assert_eq(nu_openapi_doc(&it_doc, &eb), NU_OK, "%s", nu_err_msg(&eb));
}

Test(api, health_readiness_and_document, .init = it_start, .fini = it_stop)
{
    struct it_resp r;
    it_req("GET", "/healthz", "/healthz", NULL, NULL, 0, NULL, &r);
    cr_assert_eq(r.status, 200);
    it_resp_free(&r);
    it_req("GET", "/readyz", "/readyz", NULL, NULL, 0, NULL, &r);
    cr_assert_eq(r.status, 200, "%s", r.body.data);
    cr_assert_str_eq(json_string_value(json_object_get(r.json, "status")), "ready");
    cr_assert_str_eq(
        json_string_value(json_object_get(json_object_get(r.json, "checks"), "database")), "ok");
    it_resp_free(&r);
    it_req("GET", "/api/v1/openapi.json", "/api/v1/openapi.json", NULL, NULL, 0, NULL, &r);
    cr_assert_eq(r.status, 200);
    cr_assert_not_null(
        json_object_get(json_object_get(r.json, "paths"), "/api/v1/jobs/{id}/topics"));
    it_resp_free(&r);
}

Test(api, bearer_token, .init = it_start, .fini = it_stop)
{
    static const struct {
        const char *path, *pattern, *token;
        long status;
    } cases[] = {
        {"/api/v1/jobs", "/api/v1/jobs", NULL, 401},
        {"/api/v1/jobs", "/api/v1/jobs", "wrong", 401},
        {"/api/v1/jobs", "/api/v1/jobs", IT_TOKEN, 200},
        {"/metrics", "/metrics", NULL, 401},
        {"/metrics", "/metrics", IT_TOKEN, 200},
        {"/readyz", "/readyz", NULL, 200},
        {"/healthz", "/healthz", NULL, 200},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct it_resp r;
        it_req("GET", cases[i].path, cases[i].pattern, NULL, NULL, 0, cases[i].token, &r);
        cr_assert_eq(r.status, cases[i].status, "case %zu: %s -> %ld", i, cases[i].path, r.status);
        if (r.status == 401)
            cr_assert_str_eq(it_code(&r), "unauthorized");
        it_resp_free(&r);
    }
}

Test(api, submit_rejects_bad_input, .init = it_start, .fini = it_stop)
{
    char big[70 * 1024];
    memset(big, ' ', sizeof(big) - 3);
    big[0] = '{';
    big[sizeof(big) - 3] = '}';
    big[sizeof(big) - 2] = '\0';
    static const struct {
        const char *body, *ctype;
        long status;
        const char *code, *problem_path;
    } cases[] = {
        {"{\"job_id\": ", "application/json", 400, "parse", NULL},
        {"[1,2]", "application/json", 400, "spec", NULL},
        {"{\"job_id\":\"x\"}", "text/plain", 415, "unsupported", NULL},
        {"{\"job_id\":7,\"stages\":[]}", "application/json", 400, "spec", "$.job_id"},
        {"{\"job_id\":\"ok-id\",\"stages\":[{\"id\":\"a\",\"operator\":\"nope\"}]}",
         "application/json", 400, "spec", "$.stages[0].operator"},
        {"{\"job_id\":\"ok-id\",\"stages\":[{\"id\":\"a\",\"operator\":\"generate\","
         "\"config\":{\"rows\":\"many\"}}]}",
         "application/json", 400, "spec", "$.stages[0].config.rows"},
    };
    nu_connectors_register(); /* kafka_source, as the coordinator program has it */
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct it_resp r;
        it_req("POST", "/api/v1/jobs", "/api/v1/jobs", cases[i].ctype, cases[i].body,
               strlen(cases[i].body), IT_TOKEN, &r);
        cr_assert_eq(r.status, cases[i].status, "case %zu: %ld %s", i, r.status, r.body.data);
        cr_assert_str_eq(it_code(&r), cases[i].code, "case %zu: %s", i, r.body.data);
        if (cases[i].problem_path != NULL) {
            json_t *probs = json_object_get(json_object_get(r.json, "error"), "problems");
            bool found = false;
            size_t k;
            json_t *p;
            json_array_foreach(probs, k, p)
            {
                const char *path = json_string_value(json_object_get(p, "path"));
                if (path &&
                    strncmp(path, cases[i].problem_path, strlen(cases[i].problem_path)) == 0)
                    found = true;
            }
            cr_assert(found, "case %zu: no problem at %s in %s", i, cases[i].problem_path,
                      r.body.data);
        }
        it_resp_free(&r);
    }
    struct it_resp r;
    it_req("POST", "/api/v1/jobs", "/api/v1/jobs", "application/json", big, strlen(big), IT_TOKEN,
           &r);
    cr_assert_eq(r.status, 413, "%s", r.body.data);
    it_resp_free(&r);
}

/* A job with an unbounded source is accepted and runs (its planner is run by the launcher, or,
 * in external mode as here, by whoever runs the stages). */
Test(api, submit_accepts_unbounded_source, .init = it_start, .fini = it_stop)
{
    char id[96], spec[1024], path[256];
    struct it_resp r;
    it_job_id(id, sizeof(id));
    snprintf(spec, sizeof(spec),
             "{\"job_id\":\"%s\",\"stages\":[{\"id\":\"src\",\"operator\":\"kafka_source\","
             "\"config\":{\"topic\":\"nurion-apit-unbounded\",\"format\":\"raw\","
             "\"mode\":\"unbounded\"}}]}",
             id);
    nu_connectors_register(); /* kafka_source, as the coordinator program has it */
    it_submit(id, spec);
    snprintf(path, sizeof(path), "/api/v1/jobs/%s", id);
    it_get(path, "/api/v1/jobs/{id}", &r);
    cr_assert_eq(r.status, 200, "%s", r.body.data);
    cr_assert_str_eq(json_string_value(json_object_get(r.json, "state")), "running", "%s",
                     r.body.data);
    it_resp_free(&r);
    it_cleanup(id);
}

Test(api, unknown_ids_and_bad_queries, .init = it_start, .fini = it_stop)
{
    static const struct {
        const char *method, *path, *pattern;
        long status;
    } cases[] = {
        {"GET", "/api/v1/jobs/apit-none", "/api/v1/jobs/{id}", 404},
        {"DELETE", "/api/v1/jobs/apit-none", "/api/v1/jobs/{id}", 404},
        {"POST", "/api/v1/jobs/apit-none/cancel", "/api/v1/jobs/{id}/cancel", 404},
        {"GET", "/api/v1/jobs/apit-none/stages", "/api/v1/jobs/{id}/stages", 404},
        {"GET", "/api/v1/jobs/apit-none/stages/x", "/api/v1/jobs/{id}/stages/{sid}", 404},
        {"GET", "/api/v1/jobs/apit-none/instances", "/api/v1/jobs/{id}/instances", 404},
        {"GET", "/api/v1/jobs/apit-none/splits", "/api/v1/jobs/{id}/splits", 404},
        {"GET", "/api/v1/jobs/apit-none/splits/s/lineage",
         "/api/v1/jobs/{id}/splits/{split}/lineage", 404},
        {"GET", "/api/v1/jobs/apit-none/exceptions", "/api/v1/jobs/{id}/exceptions", 404},
        {"GET", "/api/v1/jobs/apit-none/topics", "/api/v1/jobs/{id}/topics", 404},
        {"POST", "/api/v1/jobs/apit-none/stages/x/freeze", "/api/v1/jobs/{id}/stages/{sid}/freeze",
         404},
        {"POST", "/api/v1/jobs/apit-none/autoscaling/pause", "/api/v1/jobs/{id}/autoscaling/pause",
         404},
        {"GET", "/api/v1/jobs?limit=0", "/api/v1/jobs", 400},
        {"GET", "/api/v1/jobs?limit=x", "/api/v1/jobs", 400},
        {"GET", "/api/v1/jobs?cursor=%21%21garbage", "/api/v1/jobs", 400},
        {"GET", "/api/v1/jobs?state=sleeping", "/api/v1/jobs", 400},
        {"GET", "/api/v1/jobs?state=running", "/api/v1/jobs", 200},
        {"GET", "/api/v1/jobs/apit-none/splits/s/lineage?direction=sideways",
         "/api/v1/jobs/{id}/splits/{split}/lineage", 400},
        {"GET", "/api/v1/jobs/apit-none/splits/s/lineage?depth=0",
         "/api/v1/jobs/{id}/splits/{split}/lineage", 400},
        {"GET", "/api/v1/jobs/apit-none/splits/s/lineage?depth=101",
         "/api/v1/jobs/{id}/splits/{split}/lineage", 400},
        {"GET", "/api/v1/nothing-here", NULL, 404},
        {"PUT", "/api/v1/jobs", NULL, 405},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct it_resp r;
        it_req(cases[i].method, cases[i].path, cases[i].pattern, NULL, NULL, 0, IT_TOKEN, &r);
        cr_assert_eq(r.status, cases[i].status, "case %zu: %s %s -> %ld %s", i, cases[i].method,
                     cases[i].path, r.status, r.body.data);
        cr_assert_not_null(r.json, "case %zu: not JSON: %s", i, r.body.data);
        if (r.status >= 400)
            cr_assert_not_null(json_object_get(r.json, "error"));
        it_resp_free(&r);
    }
}

/* Every job endpoint on a job the external launcher provisioned (nothing runs its stages). */
Test(api, job_lifecycle, .init = it_start, .fini = it_stop)
{
    char id[96], spec[2048], path[512];
    struct it_resp r;
    it_job_id(id, sizeof(id));
    it_spec(spec, sizeof(spec), id, "/tmp/nurion-apit-out", 40, "id * 2");
    it_submit(id, spec);

    it_post("/api/v1/jobs", "/api/v1/jobs", spec, &r);
    cr_assert_eq(r.status, 409, "%s", r.body.data);
    cr_assert_str_eq(it_code(&r), "exists");
    it_resp_free(&r);

    snprintf(path, sizeof(path), "/api/v1/jobs/%s", id);
    it_get(path, "/api/v1/jobs/{id}", &r);
    cr_assert_eq(r.status, 200, "%s", r.body.data);
    cr_assert_str_eq(json_string_value(json_object_get(r.json, "state")), "running", "%s",
                     r.body.data);
    cr_assert_eq(json_array_size(json_object_get(r.json, "stages")), 3);
    it_resp_free(&r);

    /* listing: the job is on the first page of running jobs; pagination with limit=1 */
    it_get("/api/v1/jobs?state=running&limit=1000", "/api/v1/jobs", &r);
    cr_assert_eq(r.status, 200);
    bool listed = false;
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(r.json, "items"), i, it)
    {
        if (strcmp(json_string_value(json_object_get(it, "id")), id) == 0)
            listed = true;
    }
    cr_assert(listed, "job %s not in the running list", id);
    it_resp_free(&r);
    it_get("/api/v1/jobs?limit=1", "/api/v1/jobs", &r);
    cr_assert_eq(json_array_size(json_object_get(r.json, "items")), 1);
    const char *next = json_string_value(json_object_get(r.json, "next"));
    if (next != NULL) {
        char *enc = curl_easy_escape(NULL, next, 0), p2[1024];
        snprintf(p2, sizeof(p2), "/api/v1/jobs?limit=1&cursor=%s", enc);
        curl_free(enc);
        struct it_resp r2;
        it_get(p2, "/api/v1/jobs", &r2);
        cr_assert_eq(r2.status, 200, "%s", r2.body.data);
        cr_assert_eq(json_array_size(json_object_get(r2.json, "items")), 1);
        cr_assert_str_neq(json_string_value(json_object_get(
                              json_array_get(json_object_get(r.json, "items"), 0), "id")),
                          json_string_value(json_object_get(
                              json_array_get(json_object_get(r2.json, "items"), 0), "id")));
        it_resp_free(&r2);
    }
    it_resp_free(&r);

    snprintf(path, sizeof(path), "/api/v1/jobs/%s/stages", id);
    it_get(path, "/api/v1/jobs/{id}/stages", &r);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(json_object_get(r.json, "items"), 1), "id")),
                     "dbl");
    it_resp_free(&r);

    snprintf(path, sizeof(path), "/api/v1/jobs/%s/stages/dbl", id);
    it_get(path, "/api/v1/jobs/{id}/stages/{sid}", &r);
    cr_assert_eq(r.status, 200, "%s", r.body.data);
    cr_assert(json_is_array(json_object_get(r.json, "instances")));
    json_t *lag = json_object_get(r.json, "lag_detail");
    cr_assert(json_is_object(lag), "no lag detail: %s", r.body.data);
    cr_assert_eq(json_array_size(json_object_get(lag, "partitions")), 2, "%s", r.body.data);
    it_resp_free(&r);
    snprintf(path, sizeof(path), "/api/v1/jobs/%s/stages/nope", id);
    it_get(path, "/api/v1/jobs/{id}/stages/{sid}", &r);
    cr_assert_eq(r.status, 404);
    it_resp_free(&r);

    snprintf(path, sizeof(path), "/api/v1/jobs/%s/instances", id);
    it_get(path, "/api/v1/jobs/{id}/instances", &r);
    cr_assert_eq(r.status, 200);
    it_resp_free(&r);
    snprintf(path, sizeof(path), "/api/v1/jobs/%s/exceptions", id);
    it_get(path, "/api/v1/jobs/{id}/exceptions", &r);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(json_array_size(json_object_get(r.json, "items")), 0);
    it_resp_free(&r);
    snprintf(path, sizeof(path), "/api/v1/jobs/%s/splits?stage=src&limit=5", id);
    it_get(path, "/api/v1/jobs/{id}/splits", &r);
    cr_assert_eq(r.status, 200, "%s", r.body.data);
    it_resp_free(&r);
    snprintf(path, sizeof(path), "/api/v1/jobs/%s/splits?cursor=%%7Bbad", id);
    it_get(path, "/api/v1/jobs/{id}/splits", &r);
    cr_assert_eq(r.status, 400, "%s", r.body.data);
    it_resp_free(&r);

    /* topics: the plan topic holds the planned splits and end-of-stream markers */
    snprintf(path, sizeof(path), "/api/v1/jobs/%s/topics", id);
    int64_t deadline = nu_it_now_ms() + 30000;
    for (;;) {
        it_get(path, "/api/v1/jobs/{id}/topics", &r);
        cr_assert_eq(r.status, 200, "%s", r.body.data);
        json_t *first = json_array_get(json_object_get(r.json, "topics"), 0);
        if (json_integer_value(json_object_get(first, "records")) > 0)
            break;
        cr_assert_lt(nu_it_now_ms(), deadline, "the plan topic stays empty: %s", r.body.data);
        it_resp_free(&r);
        usleep(200 * 1000);
    }
    json_t *topics = json_object_get(r.json, "topics");
    cr_assert_eq(json_array_size(topics), 3 + 3 + 1 + 1, "%s", r.body.data);
    json_t *plan = json_array_get(topics, 0);
    char want[256];
    snprintf(want, sizeof(want), "nurion.%s.src.plan", id);
    cr_assert_str_eq(json_string_value(json_object_get(plan, "name")), want);
    cr_assert(json_is_true(json_object_get(plan, "exists")), "%s", r.body.data);
    cr_assert_gt(json_integer_value(json_object_get(plan, "records")), 0, "%s", r.body.data);
    cr_assert_not_null(strstr(json_string_value(json_object_get(plan, "kcat")),
                              "-X isolation.level=read_committed"));
    it_resp_free(&r);

    /* controls */
    static const struct {
        const char *suffix, *pattern, *body;
        long status;
    } ctl[] = {
        {"stages/dbl/scale", "/api/v1/jobs/{id}/stages/{sid}/scale", "{\"instances\":\"x\"}", 400},
        {"stages/dbl/scale", "/api/v1/jobs/{id}/stages/{sid}/scale", "{\"instances\":-1}", 400},
        {"stages/dbl/scale", "/api/v1/jobs/{id}/stages/{sid}/scale", "{\"instances\":1,\"x\":2}",
         400},
        {"stages/dbl/scale", "/api/v1/jobs/{id}/stages/{sid}/scale", "{nope", 400},
        {"stages/dbl/scale", "/api/v1/jobs/{id}/stages/{sid}/scale", "{\"instances\":1}", 200},
        {"stages/zz/scale", "/api/v1/jobs/{id}/stages/{sid}/scale", "{\"instances\":1}", 404},
        {"stages/dbl/freeze", "/api/v1/jobs/{id}/stages/{sid}/freeze", NULL, 200},
        {"stages/dbl/unfreeze", "/api/v1/jobs/{id}/stages/{sid}/unfreeze", NULL, 200},
        {"autoscaling/pause", "/api/v1/jobs/{id}/autoscaling/pause", NULL, 200},
        {"autoscaling/resume", "/api/v1/jobs/{id}/autoscaling/resume", NULL, 200},
    };
    for (i = 0; i < sizeof(ctl) / sizeof(ctl[0]); i++) {
        snprintf(path, sizeof(path), "/api/v1/jobs/%s/%s", id, ctl[i].suffix);
        it_post(path, ctl[i].pattern, ctl[i].body, &r);
        cr_assert_eq(r.status, ctl[i].status, "control %zu: %ld %s", i, r.status, r.body.data);
        it_resp_free(&r);
    }
    snprintf(path, sizeof(path), "/api/v1/jobs/%s/stages/dbl/freeze", id);
    it_post(path, "/api/v1/jobs/{id}/stages/{sid}/freeze", NULL, &r);
    cr_assert(json_is_true(json_object_get(r.json, "frozen")), "%s", r.body.data);
    it_resp_free(&r);

    /* a running job cannot be deleted; cancelled, it can (with its topics) */
    snprintf(path, sizeof(path), "/api/v1/jobs/%s", id);
    it_req("DELETE", path, "/api/v1/jobs/{id}", NULL, NULL, 0, IT_TOKEN, &r);
    cr_assert_eq(r.status, 409, "%s", r.body.data);
    it_resp_free(&r);
    snprintf(path, sizeof(path), "/api/v1/jobs/%s/cancel", id);
    it_post(path, "/api/v1/jobs/{id}/cancel", NULL, &r);
    cr_assert_eq(r.status, 200, "%s", r.body.data);
    cr_assert_str_eq(json_string_value(json_object_get(r.json, "state")), "cancelled");
    it_resp_free(&r);
    it_post(path, "/api/v1/jobs/{id}/cancel", NULL, &r);
    cr_assert_eq(r.status, 409, "%s", r.body.data);
    it_resp_free(&r);
    snprintf(path, sizeof(path), "/api/v1/jobs/%s?topics=maybe", id);
    it_req("DELETE", path, "/api/v1/jobs/{id}", NULL, NULL, 0, IT_TOKEN, &r);
    cr_assert_eq(r.status, 400, "%s", r.body.data);
    it_resp_free(&r);
    snprintf(path, sizeof(path), "/api/v1/jobs/%s?topics=true", id);
    it_req("DELETE", path, "/api/v1/jobs/{id}", NULL, NULL, 0, IT_TOKEN, &r);
    cr_assert_eq(r.status, 204, "%s", r.body.data);
    it_resp_free(&r);
    snprintf(path, sizeof(path), "/api/v1/jobs/%s", id);
    it_get(path, "/api/v1/jobs/{id}", &r);
    cr_assert_eq(r.status, 404);
    it_resp_free(&r);
}

/* Produce one event to the job's events topic (the stages' format) and wait for delivery. */
static void it_event(rd_kafka_t *p, const char *topic, const char *stage, json_t *ev)
{
    struct nu_buf b = {0};
    nu_event_dump(ev, &b);
    rd_kafka_resp_err_t err = rd_kafka_producev(
        p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0), RD_KAFKA_V_KEY(stage, strlen(stage)),
        RD_KAFKA_V_VALUE(b.data, b.len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    cr_assert_eq(err, RD_KAFKA_RESP_ERR_NO_ERROR, "%s", rd_kafka_err2str(err));
    nu_buf_free(&b);
}

/* Splits, lineage, exceptions and metrics as ingested from events the stages would write. */
Test(api, splits_lineage_exceptions_metrics, .init = it_start, .fini = it_stop)
{
    char id[96], spec[2048], path[512], topic[NU_JOB_NAME_MAX], errstr[256];
    struct it_resp r;
    it_job_id(id, sizeof(id));
    it_spec(spec, sizeof(spec), id, "/tmp/nurion-apit-out", 40, "id * 2");
    it_submit(id, spec);
    nu_job_topic_events_for(id, topic, sizeof(topic));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    nu_it_conf_set(conf, "bootstrap.servers", nu_it_brokers());
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    cr_assert_not_null(p, "%s", errstr);
    struct nu_event_origin src = {id, "src", 0}, dbl = {id, "dbl", 0}, out = {id, "out", 0};
    it_event(p, topic, "src",
             nu_event_split_done(&src, "s1", "p1", 10, 10, 100, 100, 1, "t", 0, 0));
    it_event(p, topic, "dbl",
             nu_event_split_done(&dbl, "d1", "s1", 10, 10, 100, 100, 1, "t", 0, 0));
    it_event(p, topic, "out",
             nu_event_split_done(&out, "o1", "d1", 10, 10, 100, 100, 1, "t", 0, 0));
    it_event(p, topic, "dbl",
             nu_event_error(&dbl, "d2", 1, "NU_ERR_EVAL", "division by zero at column 5", NULL));
    it_event(p, topic, "dbl",
             nu_event_error(&dbl, "d3", 1, "NU_ERR_EVAL", "division by zero at column 9", NULL));
    cr_assert_eq(rd_kafka_flush(p, NU_IT_TIMEOUT_MS), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(p);

    /* wait for ingestion */
    snprintf(path, sizeof(path), "/api/v1/jobs/%s/splits", id);
    int64_t deadline = nu_it_now_ms() + 30000;
    for (;;) {
        it_get(path, "/api/v1/jobs/{id}/splits", &r);
        cr_assert_eq(r.status, 200, "%s", r.body.data);
        size_t n = json_array_size(json_object_get(r.json, "items"));
        it_resp_free(&r);
        if (n == 3)
            break;
        cr_assert_lt(nu_it_now_ms(), deadline, "splits not ingested: %zu of 3", n);
        usleep(200 * 1000);
    }
    snprintf(path, sizeof(path), "/api/v1/jobs/%s/splits?limit=2", id);
    it_get(path, "/api/v1/jobs/{id}/splits", &r);
    cr_assert_eq(json_array_size(json_object_get(r.json, "items")), 2);
    cr_assert(json_is_string(json_object_get(r.json, "next")));
    it_resp_free(&r);

    snprintf(path, sizeof(path), "/api/v1/jobs/%s/splits/o1/lineage?direction=up&depth=5", id);
    it_get(path, "/api/v1/jobs/{id}/splits/{split}/lineage", &r);
    cr_assert_eq(r.status, 200, "%s", r.body.data);
    bool reached = false;
    size_t i;
    json_t *node;
    json_array_foreach(json_object_get(r.json, "nodes"), i, node)
    {
        if (strcmp(json_string_value(json_object_get(node, "split")), "p1") == 0)
            reached = true;
    }
    cr_assert(reached, "lineage up from o1 does not reach the plan split p1: %s", r.body.data);
    it_resp_free(&r);
    snprintf(path, sizeof(path), "/api/v1/jobs/%s/splits/s1/lineage?direction=down&depth=1", id);
    it_get(path, "/api/v1/jobs/{id}/splits/{split}/lineage", &r);
    cr_assert_eq(r.status, 200, "%s", r.body.data);
    cr_assert_eq(json_array_size(json_object_get(r.json, "edges")), 1, "%s", r.body.data);
    it_resp_free(&r);
    snprintf(path, sizeof(path), "/api/v1/jobs/%s/splits/nope/lineage", id);
    it_get(path, "/api/v1/jobs/{id}/splits/{split}/lineage", &r);
    cr_assert_eq(r.status, 404, "%s", r.body.data);
    it_resp_free(&r);

    /* both errors share one fingerprint; the second may be ingested a batch later */
    snprintf(path, sizeof(path), "/api/v1/jobs/%s/exceptions", id);
    deadline = nu_it_now_ms() + 30000;
    for (;;) {
        it_get(path, "/api/v1/jobs/{id}/exceptions", &r);
        cr_assert_eq(r.status, 200, "%s", r.body.data);
        json_t *ex = json_object_get(r.json, "items");
        cr_assert_leq(json_array_size(ex), 1, "one fingerprint for both errors: %s", r.body.data);
        json_int_t count = json_integer_value(json_object_get(json_array_get(ex, 0), "count"));
        cr_assert_leq(count, 2, "%s", r.body.data);
        it_resp_free(&r);
        if (count == 2)
            break;
        cr_assert_lt(nu_it_now_ms(), deadline, "errors not ingested: count %lld of 2",
                     (long long)count);
        usleep(200 * 1000);
    }

    it_get("/metrics", "/metrics", &r);
    cr_assert_eq(r.status, 200);
    char line[256];
    snprintf(line, sizeof(line), "nurion_stage_rows_in_total{job=\"%s\",stage=\"dbl\"} 10\n", id);
    cr_assert_not_null(strstr((const char *)r.body.data, line), "no \"%s\" in metrics", line);
    snprintf(line, sizeof(line), "nurion_stage_errors_total{job=\"%s\",stage=\"dbl\"} 2\n", id);
    cr_assert_not_null(strstr((const char *)r.body.data, line), "no \"%s\" in metrics", line);
    cr_assert_not_null(strstr((const char *)r.body.data, "nurion_ingest_events_total "));
    cr_assert_not_null(strstr((const char *)r.body.data, "nurion_launcher_processes "));
    cr_assert_not_null(strstr((const char *)r.body.data, "nurion_http_requests_total{"));
    it_resp_free(&r);
    it_cleanup(id);
}

/*
 * Whether or not the suite's fixture already ran, run this test on a local-mode service with a
 * database of its own: a local launcher adopts every running job of its store, and the other
 * tests' jobs (running, with nothing behind them) must not become its stage processes.
 */
static void it_start_local(void)
{
    struct nu_errbuf eb = {0};
    nu_db_t *db = NULL;
    char sql[128];
    it_stop();
    const char *base = nu_it_database_url();
    const char *slash = strrchr(base, '/');
    cr_assert(slash != NULL && slash > base + 12, "cannot derive a database URL from %s", base);
    snprintf(it_db_name, sizeof(it_db_name), "apit_local_%ld_%lld", (long)getpid(),
             (long long)nu_it_now_ms() % 1000000);
    snprintf(it_db_url, sizeof(it_db_url), "%.*s/%s", (int)(slash - base), base, it_db_name);
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", it_db_name);
    cr_assert_eq(nu_db_connect(base, 1, &db, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(nu_db_exec(db, sql, &eb), NU_OK, "%s", nu_err_msg(&eb));
    nu_db_close(db);
    it_start_mode(NU_LAUNCH_LOCAL);
}

static void it_stop_local(void)
{
    struct nu_errbuf eb = {0};
    nu_db_t *db = NULL;
    char sql[128];
    it_stop();
    if (it_db_name[0] == '\0')
        return;
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", it_db_name);
    cr_expect_eq(nu_db_connect(nu_it_database_url(), 1, &db, &eb), NU_OK, "%s", nu_err_msg(&eb));
    if (db != NULL)
        cr_expect_eq(nu_db_exec(db, sql, &eb), NU_OK, "%s", nu_err_msg(&eb));
    nu_db_close(db);
    it_db_name[0] = it_db_url[0] = '\0';
}

/* A job run to completion by local stage processes, one split of which holds a poison row. */
Test(api, local_job_succeeds_with_lineage_and_exceptions, .init = it_start_local,
     .fini = it_stop_local)
{
    char id[96], spec[2048], path[512], dir[] = "/tmp/nurion-apit-XXXXXX";
    struct it_resp r;
    cr_assert_not_null(mkdtemp(dir));
    it_job_id(id, sizeof(id));
    /* ids 0..39 in four splits of ten; id 35 divides by zero, so one split is dead-lettered */
    it_spec(spec, sizeof(spec), id, dir, 40, "100 / (id - 35)");
    char *defaults = strstr(spec, "\"stages\"");
    cr_assert_not_null(defaults);
    char full[2304];
    snprintf(full, sizeof(full), "%.*s\"defaults\":{\"max_attempts\":1},%s", (int)(defaults - spec),
             spec, defaults);
    it_submit(id, full);

    snprintf(path, sizeof(path), "/api/v1/jobs/%s", id);
    int64_t deadline = nu_it_now_ms() + 120000;
    const char *state = NULL;
    for (;;) {
        it_get(path, "/api/v1/jobs/{id}", &r);
        cr_assert_eq(r.status, 200, "%s", r.body.data);
        state = json_string_value(json_object_get(r.json, "state"));
        if (strcmp(state, "succeeded") == 0 || strcmp(state, "failed") == 0 ||
            strcmp(state, "cancelled") == 0)
            break;
        cr_assert_lt(nu_it_now_ms(), deadline, "job still %s: %s", state, r.body.data);
        it_resp_free(&r);
        usleep(300 * 1000);
    }
    cr_assert_str_eq(state, "succeeded", "%s", r.body.data);
    it_resp_free(&r);

    /* the sink's splits, then lineage up from one of them to a plan split of the source */
    snprintf(path, sizeof(path), "/api/v1/jobs/%s/splits?stage=out", id);
    it_get(path, "/api/v1/jobs/{id}/splits", &r);
    cr_assert_eq(r.status, 200, "%s", r.body.data);
    json_t *items = json_object_get(r.json, "items");
    cr_assert_geq(json_array_size(items), 3, "%s", r.body.data);
    char sink_split[256];
    snprintf(sink_split, sizeof(sink_split), "%s",
             json_string_value(json_object_get(json_array_get(items, 0), "split")));
    it_resp_free(&r);
    char *enc = curl_easy_escape(NULL, sink_split, 0);
    snprintf(path, sizeof(path), "/api/v1/jobs/%s/splits/%s/lineage?direction=up&depth=10", id,
             enc);
    curl_free(enc);
    it_get(path, "/api/v1/jobs/{id}/splits/{split}/lineage", &r);
    cr_assert_eq(r.status, 200, "%s", r.body.data);
    size_t i;
    json_t *node;
    /* A node's stage is the stage that consumed the split: a split consumed by the source
     * stage is a plan split, and it must be the top of the graph (nobody's child). */
    bool plan_reached = false;
    json_t *children = json_object();
    json_array_foreach(json_object_get(r.json, "edges"), i, node)
    {
        json_object_set_new(children, json_string_value(json_object_get(node, "child")),
                            json_true());
    }
    json_array_foreach(json_object_get(r.json, "nodes"), i, node)
    {
        const char *st = json_string_value(json_object_get(node, "stage"));
        const char *sp = json_string_value(json_object_get(node, "split"));
        if (st != NULL && strcmp(st, "src") == 0 && json_object_get(children, sp) == NULL)
            plan_reached = true;
    }
    json_decref(children);
    cr_assert(plan_reached, "lineage up from %s does not reach a plan split: %s", sink_split,
              r.body.data);
    cr_assert_eq(json_array_size(json_object_get(r.json, "nodes")), 3, "%s", r.body.data);
    it_resp_free(&r);

    snprintf(path, sizeof(path), "/api/v1/jobs/%s/exceptions", id);
    it_get(path, "/api/v1/jobs/{id}/exceptions", &r);
    cr_assert_eq(r.status, 200, "%s", r.body.data);
    json_t *ex = json_array_get(json_object_get(r.json, "items"), 0);
    cr_assert_not_null(ex, "no exception recorded: %s", r.body.data);
    cr_assert_str_eq(json_string_value(json_object_get(ex, "stage")), "dbl");
    cr_assert_not_null(strstr(json_string_value(json_object_get(ex, "sample_message")), "zero"),
                       "%s", r.body.data);
    it_resp_free(&r);

    snprintf(path, sizeof(path), "/api/v1/jobs/%s/stages/dbl", id);
    it_get(path, "/api/v1/jobs/{id}/stages/{sid}", &r);
    cr_assert_eq(r.status, 200, "%s", r.body.data);
    cr_assert_eq(json_integer_value(json_object_get(r.json, "dead_letters")), 1, "%s", r.body.data);
    it_resp_free(&r);
    it_cleanup(id);
}

/* The handler behind `pattern` in the coordinator's route table. */
static nu_http_handler it_handler(nu_http_method_t m, const char *pattern)
{
    size_t n = 0;
    const struct nu_http_route *routes = nu_coord_routes(&n);
    for (size_t i = 0; i < n; i++)
        if (routes[i].method == m && strcmp(routes[i].pattern, pattern) == 0)
            return routes[i].handler;
    cr_assert_fail("no route %s", pattern);
    return NULL;
}

/* Handlers called directly (no sockets): dependencies down give 503s, never a crash. */
Test(api, unreachable_dependencies_answer_503, .init = it_doc_only, .fini = it_stop)
{
    struct nu_errbuf eb = {0};
    nu_coord_api_t *api = NULL;
    struct nu_coord_api_conf c = {.database_url = "postgresql://postgres@127.0.0.1:1/none",
                                  .brokers = "127.0.0.1:1"};
    cr_assert_eq(nu_coord_api_new(&c, &api, &eb), NU_OK, "%s", nu_err_msg(&eb));
    static const struct {
        nu_http_method_t m;
        const char *pattern, *code;
    } cases[] = {
        {NU_HTTP_GET, "/readyz", NULL},
        {NU_HTTP_GET, "/api/v1/jobs", "db"},
        {NU_HTTP_GET, "/api/v1/jobs/{id}", "db"},
        {NU_HTTP_GET, "/api/v1/jobs/{id}/topics", "db"},
    };
    void *tctx = nu_coord_thread_ctx_new(api); /* cannot connect: reconnects later */
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct nu_http_req req;
        struct nu_http_resp resp;
        nu_http_req_init(&req);
        nu_http_resp_init(&resp);
        req.params[0] = (struct nu_http_param){"id", "x"};
        req.nparams = 1;
        req.thread_ctx = i % 2 ? tctx : NULL;
        it_handler(cases[i].m, cases[i].pattern)(&req, &resp, api);
        cr_assert_eq(resp.status, 503, "case %zu: %d", i, resp.status);
        json_t *body = json_loadb((const char *)resp.body.data, resp.body.len, 0, NULL);
        cr_assert_not_null(body);
        if (cases[i].code != NULL) {
            cr_assert_str_eq(
                json_string_value(json_object_get(json_object_get(body, "error"), "code")),
                cases[i].code);
        } else {
            json_t *checks = json_object_get(body, "checks");
            cr_assert_str_eq(json_string_value(json_object_get(body, "status")), "not_ready");
            cr_assert_str_neq(json_string_value(json_object_get(checks, "database")), "ok");
            cr_assert_str_neq(json_string_value(json_object_get(checks, "broker")), "ok");
        }
        struct nu_problems probs;
        nu_problems_init(&probs);
        cr_assert_eq(nu_openapi_check_response(it_doc, "GET", cases[i].pattern, resp.status,
                                               resp.content_type, (const char *)resp.body.data,
                                               resp.body.len, &probs, &eb),
                     NU_OK, "case %zu: %s", i, nu_err_msg(&eb));
        nu_problems_free(&probs);
        json_decref(body);
        nu_http_resp_free(&resp);
        nu_http_req_free(&req);
    }
    nu_coord_thread_ctx_free(tctx, api);
    nu_coord_api_destroy(api);
}
