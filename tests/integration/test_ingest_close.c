/*
 * Integration test of the ingester's shutdown (src/coordinator/ingest.c) against the real broker
 * and PostgreSQL: destroying it returns within its bound even after the partitions it followed
 * were re-assigned and their topic deleted under it.
 */
#include "integ.h"

#include <criterion/logging.h>

#include "common/buf.h"
#include "common/job.h"
#include "coordinator/ingest.h"
#include "coordinator/store.h"
#include "stage/events.h"

TestSuite(ingest_close, .timeout = 120);

Test(ingest_close, destroy_is_bounded_after_topic_deleted)
{
    struct nu_errbuf eb = {0};
    char id[96], spec[1024], topic[NU_JOB_NAME_MAX], errstr[256];
    struct nu_job *job = NULL;
    nu_db_t *db = NULL;
    nu_ingest_t *ing = NULL;
    snprintf(id, sizeof(id), "iclose-%ld-%lld", (long)getpid(), (long long)nu_it_now_ms());
    snprintf(spec, sizeof(spec),
             "{\"job_id\":\"%s\",\"stages\":[{\"id\":\"src\",\"operator\":\"generate\"}]}", id);
    cr_assert_eq(nu_job_parse(spec, strlen(spec), NULL, &job, NULL, &eb), NU_OK, "%s",
                 nu_err_msg(&eb));
    cr_assert_eq(nu_store_connect(nu_it_database_url(), &db, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(nu_store_migrate(db, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(nu_store_job_insert(db, job, &eb), NU_OK, "%s", nu_err_msg(&eb));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    nu_it_conf_set(conf, "bootstrap.servers", nu_it_brokers());
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    cr_assert_not_null(p, "%s", errstr);
    nu_job_topic_events(job, topic, sizeof(topic));
    nu_it_create_topic(p, topic, 4);
    struct nu_event_origin o = {id, "src", 0};
    for (int i = 0; i < 40; i++) {
        struct nu_buf b = {0};
        nu_event_dump(nu_event_instance(&o, "instance_started", NULL), &b);
        cr_assert_eq(rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(i % 4),
                                       RD_KAFKA_V_VALUE(b.data, b.len),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
        nu_buf_free(&b);
    }
    cr_assert_eq(rd_kafka_flush(p, NU_IT_TIMEOUT_MS), RD_KAFKA_RESP_ERR_NO_ERROR);
    struct nu_ingest_conf c = {.brokers = nu_it_brokers(),
                               .db_url = nu_it_database_url(),
                               .batch_ms = 20,
                               .refresh_ms = 100,
                               .jobs_like = id};
    cr_assert_eq(nu_ingest_new(&c, &ing, &eb), NU_OK, "%s", nu_err_msg(&eb));
    struct nu_ingest_stats st = {0};
    int64_t deadline = nu_it_now_ms() + NU_IT_TIMEOUT_MS;
    while (st.events < 40 && nu_it_now_ms() < deadline) {
        nu_errbuf_clear(&eb);
        nu_ingest_step(ing, 100, &eb);
        nu_ingest_stats(ing, &st);
    }
    cr_assert_eq(st.events, 40);
    /* the topic goes away while the ingester follows it, then comes back (re-assigned) */
    nu_it_delete_topic(p, topic);
    for (int i = 0; i < 10; i++) {
        nu_errbuf_clear(&eb);
        nu_ingest_step(ing, 100, &eb);
    }
    nu_it_create_topic(p, topic, 4);
    for (int i = 0; i < 10; i++) {
        nu_errbuf_clear(&eb);
        nu_ingest_step(ing, 100, &eb);
    }
    nu_it_delete_topic(p, topic);
    int64_t t0 = nu_it_now_ms();
    nu_ingest_destroy(ing);
    int64_t took = nu_it_now_ms() - t0;
    cr_log_info("nu_ingest_destroy took %lld ms", (long long)took);
    cr_expect_lt(took, 6000, "nu_ingest_destroy took %lld ms", (long long)took);
    cr_expect_eq(nu_store_job_delete(db, id, &eb), NU_OK, "%s", nu_err_msg(&eb));
    rd_kafka_destroy(p);
    nu_store_close(db);
    nu_job_destroy(job);
}
