/*
 * Integration tests of GET /api/v1/jobs/{id}/stages/{sid}/metrics (src/coordinator/api_series.c,
 * store_series.c) and of the end offsets GET /api/v1/jobs/{id}/topics reports, against the real
 * PostgreSQL and Kafka: the coordinator service runs in-process, metric samples arrive through the
 * job's events topic as a stage would write them, and every response is checked against
 * src/api/openapi.json.
 */
#include "integ.h"

#include "api/openapi.h"
#include "cli/service.h"
#include "common/buf.h"
#include "common/job.h"
#include "coordinator/api.h"
#include "stage/events.h"
#include "stage/kafka.h"

#include <curl/curl.h>
#include <pthread.h>

#define IM_TOKEN "im-api-token-1"

static nu_service_t *im_svc;
static pthread_t im_thr;
static unsigned im_port;
static json_t *im_doc;
static char im_job[96]; /* the job whose topics im_stop deletes ("" = none) */

static void *im_run(void *arg)
{
    nu_service_run(arg, NULL);
    return NULL;
}

static void im_start(void)
{
    struct nu_errbuf eb = {0};
    struct nu_service_conf c = {0};
    c.listen = "127.0.0.1:0";
    c.threads = 2;
    c.database_url = nu_it_database_url();
    c.brokers = nu_it_brokers();
    c.auth_token = IM_TOKEN;
    c.launcher_mode = NU_LAUNCH_EXTERNAL;
    c.max_body_bytes = 64 * 1024;
    nu_autoscale_conf_default(&c.autoscale);
    c.autoscale.enabled = false;
    c.nurion_exe = NU_BINARY_DIR "/bin/nurion";
    c.ingest_jobs_like = "apim-%";
    cr_assert_eq(nu_service_new(&c, &im_svc, &eb), NU_OK, "%s", nu_err_msg(&eb));
    im_port = nu_service_port(im_svc);
    cr_assert_eq(pthread_create(&im_thr, NULL, im_run, im_svc), 0);
    cr_assert_eq(nu_openapi_doc(&im_doc, &eb), NU_OK, "%s", nu_err_msg(&eb));
}

struct im_resp {
    long status;
    struct nu_buf body;
    json_t *json;
};

static size_t im_body_cb(char *p, size_t sz, size_t n, void *ud)
{
    nu_buf_append(ud, p, sz * n);
    return sz * n;
}

static void im_resp_free(struct im_resp *r)
{
    nu_buf_free(&r->body);
    json_decref(r->json);
    memset(r, 0, sizeof(*r));
}

/* One request with the token; the answer must match the OpenAPI document under `pattern`. */
static void im_req(const char *method, const char *path, const char *pattern, const char *body,
                   struct im_resp *r)
{
    char url[2048];
    struct curl_slist *hdrs = NULL;
    memset(r, 0, sizeof(*r));
    CURL *c = curl_easy_init();
    cr_assert_not_null(c);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", im_port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, im_body_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
    hdrs = curl_slist_append(hdrs, "Authorization: Bearer " IM_TOKEN);
    hdrs = curl_slist_append(hdrs, "Expect:");
    if (body != NULL) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    CURLcode cc = curl_easy_perform(c);
    cr_assert_eq(cc, CURLE_OK, "%s %s: %s", method, path, curl_easy_strerror(cc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    char *ct = NULL;
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
    char ctype[128];
    snprintf(ctype, sizeof(ctype), "%s", ct ? ct : "");
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    nu_buf_putc(&r->body, 0);
    r->body.len--;
    r->json = json_loadb((const char *)r->body.data, r->body.len, 0, NULL);
    struct nu_errbuf eb = {0};
    struct nu_problems probs;
    nu_problems_init(&probs);
    nu_err_t err =
        nu_openapi_check_response(im_doc, method, pattern, (int)r->status, ctype[0] ? ctype : NULL,
                                  (const char *)r->body.data, r->body.len, &probs, &eb);
    cr_assert_eq(err, NU_OK, "%s %s -> %ld does not match the OpenAPI document: %s %s%s (%s)",
                 method, path, r->status, nu_err_msg(&eb), probs.n ? probs.items[0].path : "",
                 probs.n ? probs.items[0].message : "", r->body.data);
    nu_problems_free(&probs);
}

/* Submit a generate -> map (dbl) -> file_sink job named `id`. */
static void im_submit(const char *id)
{
    char spec[1024];
    struct im_resp r;
    snprintf(spec, sizeof(spec),
             "{\"job_id\":\"%s\",\"stages\":["
             "{\"id\":\"src\",\"operator\":\"generate\",\"partitions\":2,"
             "\"config\":{\"rows\":20,\"split_rows\":10}},"
             "{\"id\":\"dbl\",\"operator\":\"map\",\"upstream\":[\"src\"],\"partitions\":2,"
             "\"config\":{\"columns\":{\"y\":\"id * 2\"}}},"
             "{\"id\":\"out\",\"operator\":\"file_sink\",\"upstream\":[\"dbl\"],\"partitions\":2,"
             "\"config\":{\"path\":\"/tmp/nurion-apim-out\",\"format\":\"jsonl\"}}]}",
             id);
    im_req("POST", "/api/v1/jobs", "/api/v1/jobs", spec, &r);
    cr_assert_eq(r.status, 201, "%s", r.body.data);
    im_resp_free(&r);
    snprintf(im_job, sizeof(im_job), "%s", id);
}

/* Cancel and delete the job, then stop the service and delete the job's topics. */
static void im_stop(void)
{
    static const char *const suffixes[] = {"src.plan", "src", "src.dlq", "dbl",
                                           "dbl.dlq",  "out", "out.dlq", "_events"};
    struct nu_errbuf eb = {0};
    char path[256], names[8][NU_JOB_NAME_MAX];
    const char *ptrs[8];
    struct im_resp r;
    if (im_svc != NULL && im_job[0] != '\0') {
        snprintf(path, sizeof(path), "/api/v1/jobs/%s/cancel", im_job);
        im_req("POST", path, "/api/v1/jobs/{id}/cancel", "{}", &r);
        im_resp_free(&r);
        snprintf(path, sizeof(path), "/api/v1/jobs/%s", im_job);
        im_req("DELETE", path, "/api/v1/jobs/{id}", NULL, &r);
        cr_expect_eq(r.status, 204, "%s", r.body.data);
        im_resp_free(&r);
    }
    if (im_svc != NULL) {
        nu_service_stop(im_svc);
        pthread_join(im_thr, NULL);
        nu_service_destroy(im_svc);
        im_svc = NULL;
    }
    if (im_job[0] != '\0') {
        rd_kafka_t *admin = NULL;
        for (size_t i = 0; i < 8; i++) {
            snprintf(names[i], sizeof(names[i]), "nurion.%s.%s", im_job, suffixes[i]);
            ptrs[i] = names[i];
        }
        if (nu_kafka_client_new(NU_KAFKA_ADMIN, nu_it_brokers(), NULL, NULL, NULL, 0, &admin,
                                &eb) == NU_OK)
            nu_kafka_topics_delete(admin, ptrs, 8, NU_IT_TIMEOUT_MS, &eb); /* best effort */
        if (admin != NULL)
            rd_kafka_destroy(admin);
        im_job[0] = '\0';
    }
    json_decref(im_doc);
    im_doc = NULL;
}

static void im_job_id(char *buf, size_t n, const char *what)
{
    snprintf(buf, n, "apim-%s-%ld-%lld", what, (long)getpid(),
             (long long)nu_it_now_ms() % 100000000);
}

/* One metrics sample as instance `inst` of stage `stage` would write it, at Unix time `ts_ms`. */
struct im_sample {
    int inst;
    int64_t at_s; /* seconds after the test's base time */
    int64_t rows_out;
    double rows_per_s;
    int64_t lag;
};

static void im_produce_samples(const char *job, const char *stage, int64_t base_ms,
                               const struct im_sample *s, size_t n)
{
    char topic[NU_JOB_NAME_MAX], errstr[256];
    nu_job_topic_events_for(job, topic, sizeof(topic));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    nu_it_conf_set(conf, "bootstrap.servers", nu_it_brokers());
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    cr_assert_not_null(p, "%s", errstr);
    for (size_t i = 0; i < n; i++) {
        struct nu_event_origin o = {job, stage, s[i].inst};
        json_t *ev = nu_event_new(&o, "metrics");
        json_object_set_new(ev, "ts", json_integer(base_ms + s[i].at_s * 1000));
        json_object_set_new(ev, "rows_in", json_integer(s[i].rows_out));
        json_object_set_new(ev, "rows_out", json_integer(s[i].rows_out));
        json_object_set_new(ev, "splits", json_integer(0));
        json_object_set_new(ev, "dead_letters", json_integer(0));
        json_object_set_new(ev, "rows_per_s", json_real(s[i].rows_per_s));
        json_object_set_new(ev, "rss_bytes", json_integer(1 << 20));
        json_object_set_new(ev, "cpu_ms", json_integer(10));
        /* lag per input partition, as a stage reports it; the store sums it */
        json_object_set_new(ev, "lag",
                            json_pack("{s:I, s:I}", "in:0", (json_int_t)(s[i].lag - s[i].lag / 2),
                                      "in:1", (json_int_t)(s[i].lag / 2)));
        char *text = json_dumps(ev, JSON_COMPACT);
        json_decref(ev);
        rd_kafka_resp_err_t err = rd_kafka_producev(
            p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
            RD_KAFKA_V_KEY(stage, strlen(stage)), RD_KAFKA_V_VALUE(text, strlen(text)),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        free(text);
        cr_assert_eq(err, RD_KAFKA_RESP_ERR_NO_ERROR, "%s", rd_kafka_err2str(err));
    }
    cr_assert_eq(rd_kafka_flush(p, NU_IT_TIMEOUT_MS), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(p);
}

/* The numeric field `k` of point `i` of a series answer. */
static double im_pt(const struct im_resp *r, size_t i, const char *k)
{
    json_t *pt = json_array_get(json_object_get(r->json, "points"), i);
    cr_assert_not_null(pt, "no point %zu: %s", i, r->body.data);
    return json_number_value(json_object_get(pt, k));
}

TestSuite(api_metrics, .timeout = 180);

Test(api_metrics, stage_series_buckets_samples, .init = im_start, .fini = im_stop)
{
    char id[96], path[512];
    struct im_resp r;
    im_job_id(id, sizeof(id), "series");
    im_submit(id);
    /* base: a whole minute ten minutes ago, so the windows below hold only these samples */
    int64_t base = ((int64_t)time(NULL) - 600) / 60 * 60;
    /* instance 0: output grows 100, 200, 300 rows per 10 s, then its process restarts (rows
     * counted from zero again); instance 1 reports twice */
    static const struct im_sample samples[] = {
        {0, 0, 0, 10, 50},   {1, 5, 0, 5, 10},     {0, 10, 100, 20, 40}, {0, 20, 300, 30, 30},
        {1, 25, 200, 15, 0}, {0, 30, 600, 40, 20}, {0, 45, 50, 7, 5},
    };
    im_produce_samples(id, "dbl", base * 1000, samples, sizeof(samples) / sizeof(samples[0]));

    /* wait until the last sample is ingested: three 20 s buckets */
    snprintf(path, sizeof(path), "/api/v1/jobs/%s/stages/dbl/metrics?since=%lld&until=%lld&step=20",
             id, (long long)base, (long long)base + 60);
    int64_t deadline = nu_it_now_ms() + 30000;
    for (;;) {
        im_req("GET", path, "/api/v1/jobs/{id}/stages/{sid}/metrics", NULL, &r);
        cr_assert_eq(r.status, 200, "%s", r.body.data);
        size_t n = json_array_size(json_object_get(r.json, "points"));
        if (n == 3)
            break;
        cr_assert_lt(nu_it_now_ms(), deadline, "samples not ingested: %s", r.body.data);
        im_resp_free(&r);
        usleep(200 * 1000);
    }
    cr_assert_eq(json_integer_value(json_object_get(r.json, "step")), 20);
    cr_assert_eq(json_integer_value(json_object_get(r.json, "since")), base);
    cr_assert_str_eq(json_string_value(json_object_get(r.json, "stage")), "dbl");
    /* bucket 0 [0, 20): in = mean(10, 20) + 5; out = 100 rows / 10 s (the first samples have
     * nothing before them); lag = mean(50, 40) + 10 */
    static const struct {
        size_t i;
        double in, out, lag, inst;
    } want[] = {
        {0, 20, 10, 55, 2},
        {1, 50, 25 + 10, 25, 2}, /* out: mean(200/10, 300/10) + 200/20 */
        {2, 7, 50.0 / 15, 5, 1}, /* restarted: 50 rows since the restart over 15 s */
    };
    for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
        cr_assert_float_eq(im_pt(&r, want[k].i, "rows_per_s_in"), want[k].in, 1e-6,
                           "bucket %zu: %s", k, r.body.data);
        cr_assert_float_eq(im_pt(&r, want[k].i, "rows_per_s_out"), want[k].out, 1e-6,
                           "bucket %zu: %s", k, r.body.data);
        cr_assert_float_eq(im_pt(&r, want[k].i, "lag"), want[k].lag, 1e-6, "bucket %zu: %s", k,
                           r.body.data);
        cr_assert_float_eq(im_pt(&r, want[k].i, "instances"), want[k].inst, 1e-6, "bucket %zu", k);
    }
    im_resp_free(&r);

    /* a window starting at 20 s still differences its first samples against earlier ones */
    snprintf(path, sizeof(path), "/api/v1/jobs/%s/stages/dbl/metrics?since=%lld&until=%lld&step=20",
             id, (long long)base + 20, (long long)base + 40);
    im_req("GET", path, "/api/v1/jobs/{id}/stages/{sid}/metrics", NULL, &r);
    cr_assert_eq(r.status, 200, "%s", r.body.data);
    cr_assert_eq(json_array_size(json_object_get(r.json, "points")), 1, "%s", r.body.data);
    cr_assert_float_eq(im_pt(&r, 0, "rows_per_s_out"), 35, 1e-6, "%s", r.body.data);
    im_resp_free(&r);

    /* one bucket for the whole minute; the default window (15 minutes back) and step (1/120 of
     * it) hold every sample */
    snprintf(path, sizeof(path), "/api/v1/jobs/%s/stages/dbl/metrics?since=%lld&until=%lld&step=60",
             id, (long long)base, (long long)base + 60);
    im_req("GET", path, "/api/v1/jobs/{id}/stages/{sid}/metrics", NULL, &r);
    cr_assert_eq(json_array_size(json_object_get(r.json, "points")), 1, "%s", r.body.data);
    cr_assert_float_eq(im_pt(&r, 0, "instances"), 2, 1e-6);
    im_resp_free(&r);
    snprintf(path, sizeof(path), "/api/v1/jobs/%s/stages/dbl/metrics", id);
    im_req("GET", path, "/api/v1/jobs/{id}/stages/{sid}/metrics", NULL, &r);
    cr_assert_eq(r.status, 200, "%s", r.body.data);
    cr_assert_eq(json_integer_value(json_object_get(r.json, "step")), 900 / 120 + 1);
    cr_assert_geq(json_array_size(json_object_get(r.json, "points")), 3, "%s", r.body.data);
    im_resp_free(&r);
    /* another stage of the job has no samples */
    snprintf(path, sizeof(path), "/api/v1/jobs/%s/stages/out/metrics?since=-3600", id);
    im_req("GET", path, "/api/v1/jobs/{id}/stages/{sid}/metrics", NULL, &r);
    cr_assert_eq(r.status, 200, "%s", r.body.data);
    cr_assert_eq(json_array_size(json_object_get(r.json, "points")), 0, "%s", r.body.data);
    cr_assert_eq(json_integer_value(json_object_get(r.json, "step")), 30);
    im_resp_free(&r);

    /* bad parameters are 400s, unknown jobs and stages 404s */
    static const struct {
        const char *query;
        long status;
        const char *msg;
    } bad[] = {
        {"step=0", 400, "step"},
        {"step=x", 400, "step"},
        {"step=86401", 400, "step"},
        {"since=100&until=100", 400, "before"},
        {"since=200&until=100", 400, "before"},
        {"until=0", 400, "until"},
        {"since=1.5", 400, "since"},
        {"since=-100000&step=1", 400, "more than 1000 points"},
        {"since=0&until=1001&step=1", 400, "more than 1000 points"},
        {"since=0&until=1000&step=1", 200, NULL},
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        snprintf(path, sizeof(path), "/api/v1/jobs/%s/stages/dbl/metrics?%s", id, bad[k].query);
        im_req("GET", path, "/api/v1/jobs/{id}/stages/{sid}/metrics", NULL, &r);
        cr_assert_eq(r.status, bad[k].status, "%s: %ld %s", bad[k].query, r.status, r.body.data);
        if (bad[k].msg != NULL)
            cr_assert_not_null(strstr((const char *)r.body.data, bad[k].msg), "%s: %s",
                               bad[k].query, r.body.data);
        im_resp_free(&r);
    }
    snprintf(path, sizeof(path), "/api/v1/jobs/%s/stages/nope/metrics", id);
    im_req("GET", path, "/api/v1/jobs/{id}/stages/{sid}/metrics", NULL, &r);
    cr_assert_eq(r.status, 404, "%s", r.body.data);
    cr_assert_not_null(strstr((const char *)r.body.data, "no stage \\\"nope\\\""), "%s",
                       r.body.data);
    im_resp_free(&r);
    im_req("GET", "/api/v1/jobs/apim-none/stages/dbl/metrics",
           "/api/v1/jobs/{id}/stages/{sid}/metrics", NULL, &r);
    cr_assert_eq(r.status, 404, "%s", r.body.data);
    im_resp_free(&r);
}

/* The topic named `name` of a topics answer (borrowed), failing the test when absent. */
static json_t *im_topic(const struct im_resp *r, const char *name)
{
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(r->json, "topics"), i, t)
    {
        if (strcmp(json_string_value(json_object_get(t, "name")), name) == 0)
            return t;
    }
    cr_assert_fail("no topic %s in %s", name, r->body.data);
    return NULL;
}

/* Partition 0's end offset and the records of topic `name` as GET …/topics reports them. */
static void im_topic_offsets(const char *job, const char *name, json_int_t *end0,
                             json_int_t *records, bool *sink_note)
{
    char path[256];
    struct im_resp r;
    snprintf(path, sizeof(path), "/api/v1/jobs/%s/topics", job);
    im_req("GET", path, "/api/v1/jobs/{id}/topics", NULL, &r);
    cr_assert_eq(r.status, 200, "%s", r.body.data);
    json_t *t = im_topic(&r, name);
    cr_assert(json_is_true(json_object_get(t, "exists")), "%s", r.body.data);
    *end0 = json_integer_value(json_array_get(json_object_get(t, "end_offsets"), 0));
    *records = json_integer_value(json_object_get(t, "records"));
    *sink_note = json_is_string(json_object_get(t, "note"));
    im_resp_free(&r);
}

/*
 * The end offsets of an output topic follow what a read_committed consumer can read: records of
 * an open transaction are not counted until it commits, and a finished stage's output shows all
 * of its records (with the commit markers, which take offsets too).
 */
Test(api_metrics, topics_end_offsets_follow_commits, .init = im_start, .fini = im_stop)
{
    char id[96], topic[NU_JOB_NAME_MAX], sink_topic[NU_JOB_NAME_MAX], errstr[256];
    json_int_t end0 = -1, records = -1;
    bool note = false;
    im_job_id(id, sizeof(id), "topics");
    im_submit(id);
    snprintf(topic, sizeof(topic), "nurion.%s.dbl", id);
    snprintf(sink_topic, sizeof(sink_topic), "nurion.%s.out", id);

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    nu_it_conf_set(conf, "bootstrap.servers", nu_it_brokers());
    char txid[128];
    snprintf(txid, sizeof(txid), "%s.it-writer", id);
    nu_it_conf_set(conf, "transactional.id", txid);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    cr_assert_not_null(p, "%s", errstr);
    nu_it_wait_topic(p, topic, 2);
    rd_kafka_error_t *kerr = rd_kafka_init_transactions(p, NU_IT_TIMEOUT_MS);
    cr_assert_null(kerr, "%s", kerr ? rd_kafka_error_string(kerr) : "");

    im_topic_offsets(id, topic, &end0, &records, &note);
    cr_assert_eq(end0, 0);
    cr_assert_eq(records, 0);
    cr_assert(!note, "a map stage's output topic has no sink note");
    im_topic_offsets(id, sink_topic, &end0, &records, &note);
    cr_assert(note, "the sink's output topic says why it stays empty");

    /* five records in a committed transaction: five offsets and one commit marker */
    static const int batches[] = {5, 3};
    for (size_t b = 0; b < 2; b++) {
        kerr = rd_kafka_begin_transaction(p);
        cr_assert_null(kerr, "%s", kerr ? rd_kafka_error_string(kerr) : "");
        for (int k = 0; k < batches[b]; k++) {
            rd_kafka_resp_err_t err = rd_kafka_producev(
                p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0), RD_KAFKA_V_VALUE("x", 1),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
            cr_assert_eq(err, RD_KAFKA_RESP_ERR_NO_ERROR, "%s", rd_kafka_err2str(err));
        }
        cr_assert_eq(rd_kafka_flush(p, NU_IT_TIMEOUT_MS), RD_KAFKA_RESP_ERR_NO_ERROR);
        if (b == 1) {
            /* written but not committed: invisible to read_committed readers */
            im_topic_offsets(id, topic, &end0, &records, &note);
            cr_assert_eq(end0, 6, "an open transaction's records are counted: %lld",
                         (long long)end0);
        }
        kerr = rd_kafka_commit_transaction(p, NU_IT_TIMEOUT_MS);
        cr_assert_null(kerr, "%s", kerr ? rd_kafka_error_string(kerr) : "");
        im_topic_offsets(id, topic, &end0, &records, &note);
        cr_assert_eq(end0, b == 0 ? 6 : 10, "batch %zu: end offset %lld", b, (long long)end0);
        cr_assert_eq(records, end0, "partition 1 stays empty");
    }
    rd_kafka_destroy(p);
}

static void im_doc_only(void)
{
    struct nu_errbuf eb = {0};
    cr_assert_eq(nu_openapi_doc(&im_doc, &eb), NU_OK, "%s", nu_err_msg(&eb));
}

/* The handler called directly (no sockets) with the database down answers a documented 503. */
Test(api_metrics, series_without_database_is_503, .init = im_doc_only, .fini = im_stop)
{
    struct nu_errbuf eb = {0};
    nu_coord_api_t *api = NULL;
    struct nu_coord_api_conf c = {.database_url = "postgresql://postgres@127.0.0.1:1/none",
                                  .brokers = "127.0.0.1:1"};
    cr_assert_eq(nu_coord_api_new(&c, &api, &eb), NU_OK, "%s", nu_err_msg(&eb));
    const char *pattern = "/api/v1/jobs/{id}/stages/{sid}/metrics";
    nu_http_handler h = NULL;
    size_t n = 0;
    const struct nu_http_route *routes = nu_coord_routes(&n);
    for (size_t i = 0; i < n; i++)
        if (routes[i].method == NU_HTTP_GET && strcmp(routes[i].pattern, pattern) == 0)
            h = routes[i].handler;
    cr_assert_not_null(h, "no route %s", pattern);
    void *tctx = nu_coord_thread_ctx_new(api);
    struct nu_http_req req;
    struct nu_http_resp resp;
    nu_http_req_init(&req);
    nu_http_resp_init(&resp);
    req.params[0] = (struct nu_http_param){"id", "x"};
    req.params[1] = (struct nu_http_param){"sid", "y"};
    req.nparams = 2;
    req.thread_ctx = tctx;
    h(&req, &resp, api);
    cr_assert_eq(resp.status, 503, "%d", resp.status);
    struct nu_problems probs;
    nu_problems_init(&probs);
    cr_assert_eq(nu_openapi_check_response(im_doc, "GET", pattern, resp.status, resp.content_type,
                                           (const char *)resp.body.data, resp.body.len, &probs,
                                           &eb),
                 NU_OK, "%s", nu_err_msg(&eb));
    nu_problems_free(&probs);
    nu_http_resp_free(&resp);
    nu_http_req_free(&req);
    nu_coord_thread_ctx_free(tctx, api);
    nu_coord_api_destroy(api);
}
