/*
 * nu_kafka_group_offsets (src/stage/kafka.c) against the real broker: a client outside a
 * consumer group reads the group's committed offsets and their metadata — the read the stage's
 * completion check relies on — and a partition with nothing committed reads as negative.
 */
#include "integ.h"

#include "stage/kafka.h"

#include <string.h>

TestSuite(kafka_offsets, .timeout = 60);

Test(kafka_offsets, group_offsets_from_outside_the_group)
{
    struct nu_errbuf eb = {0};
    char topic[128], group[128], errstr[256];
    long stamp = (long)nu_it_now_ms();
    snprintf(topic, sizeof(topic), "nurion-it-offsets-%ld-%ld", (long)getpid(), stamp);
    snprintf(group, sizeof(group), "nurion-it-offsets-group-%ld-%ld", (long)getpid(), stamp);

    rd_kafka_t *p = NULL;
    cr_assert_eq(
        nu_kafka_client_new(NU_KAFKA_PRODUCER, nu_it_brokers(), NULL, NULL, NULL, 0, &p, &eb),
        NU_OK, "%s", nu_err_msg(&eb));
    nu_it_create_topic(p, topic, 2);

    /* a member commits partition 0 with lane metadata, leaves partition 1 alone */
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    nu_it_conf_set(conf, "bootstrap.servers", nu_it_brokers());
    nu_it_conf_set(conf, "group.id", group);
    nu_it_conf_set(conf, "enable.auto.commit", "false");
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    cr_assert_not_null(c, "%s", errstr);
    rd_kafka_topic_partition_list_t *commit = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_add(commit, topic, 0);
    static const char meta[] = "nu1:1/1";
    tp->offset = 0;
    tp->metadata = malloc(sizeof(meta) - 1);
    memcpy(tp->metadata, meta, sizeof(meta) - 1);
    tp->metadata_size = sizeof(meta) - 1;
    rd_kafka_resp_err_t rerr = rd_kafka_commit(c, commit, 0);
    cr_assert_eq(rerr, RD_KAFKA_RESP_ERR_NO_ERROR, "%s", rd_kafka_err2str(rerr));
    rd_kafka_topic_partition_list_destroy(commit);

    /* the producer, no member of anything, reads both partitions */
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(2);
    rd_kafka_topic_partition_list_add(list, topic, 0);
    rd_kafka_topic_partition_list_add(list, topic, 1);
    cr_assert_eq(nu_kafka_group_offsets(p, group, list, false, 10000, &eb), NU_OK, "%s",
                 nu_err_msg(&eb));
    rd_kafka_topic_partition_t *p0 = rd_kafka_topic_partition_list_find(list, topic, 0);
    rd_kafka_topic_partition_t *p1 = rd_kafka_topic_partition_list_find(list, topic, 1);
    cr_assert_not_null(p0);
    cr_assert_not_null(p1);
    cr_expect_eq(p0->offset, 0, "partition 0 at its committed offset, got %lld",
                 (long long)p0->offset);
    cr_expect_eq(p0->metadata_size, sizeof(meta) - 1);
    cr_expect(p0->metadata && memcmp(p0->metadata, meta, sizeof(meta) - 1) == 0,
              "the lane metadata comes back");
    cr_expect_lt(p1->offset, 0, "nothing committed on partition 1, got %lld",
                 (long long)p1->offset);

    /* an unknown group reads as nothing committed, not as an error */
    rd_kafka_topic_partition_list_t *none = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(none, topic, 0);
    cr_assert_eq(nu_kafka_group_offsets(p, "nurion-it-no-such-group", none, false, 10000, &eb),
                 NU_OK, "%s", nu_err_msg(&eb));
    cr_expect_lt(none->elems[0].offset, 0);
    rd_kafka_topic_partition_list_destroy(none);
    rd_kafka_topic_partition_list_destroy(list);

    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    nu_it_delete_topic(p, topic);
    rd_kafka_destroy(p);
}
