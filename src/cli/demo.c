/*
 * demo.c — `nurion demo`: push records through the broker with the exactly-once machinery and
 * report what happened. It creates a topic, writes rows in committed transactions plus one
 * transaction that it aborts, then reads the topic back in a consumer group with
 * read_committed isolation up to the end offsets, and checks that exactly the committed rows
 * arrived. A first look at a working installation; `nurion run` runs real pipelines.
 */
#include "cli/cli.h"
#include "cli/commands.h"
#include "common/err.h"
#include "common/mem.h"
#include "stage/kafka.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NU_DEMO_TIMEOUT_MS 30000
#define NU_DEMO_MAX_ROWS   10000000

struct nu_demo {
    const char *brokers;
    long rows, txn_rows, aborted_rows;
    int partitions;
    bool keep;
    char topic[128];
};

static double nu_demo_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static nu_err_t nu_demo_produce(struct nu_demo *d, rd_kafka_t *p, long first, long count,
                                struct nu_errbuf *eb)
{
    char key[32], val[96];
    for (long i = first; i < first + count; i++) {
        int kl = snprintf(key, sizeof(key), "%ld", i);
        int vl = snprintf(val, sizeof(val), "{\"id\":%ld,\"y\":%ld}", i, i * 2);
        rd_kafka_resp_err_t rerr;
        while ((rerr = rd_kafka_producev(p, RD_KAFKA_V_TOPIC(d->topic),
                                         RD_KAFKA_V_PARTITION((int32_t)(i % d->partitions)),
                                         RD_KAFKA_V_KEY(key, (size_t)kl),
                                         RD_KAFKA_V_VALUE(val, (size_t)vl),
                                         RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                         RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(p, 10);
        if (rerr)
            return nu_err_set(eb, nu_kafka_err_code(rerr), "could not produce to \"%s\": %s",
                              d->topic, rd_kafka_err2str(rerr));
        rd_kafka_poll(p, 0);
    }
    return NU_OK;
}

static nu_err_t nu_demo_write(struct nu_demo *d, long *txns, struct nu_errbuf *eb)
{
    nu_err_t err;
    rd_kafka_t *p = NULL;
    char txn_id[160];
    snprintf(txn_id, sizeof(txn_id), "%s.0", d->topic);
    err = nu_kafka_client_new(NU_KAFKA_TXN_PRODUCER, d->brokers, NULL, txn_id, NULL, 0, &p, eb);
    if (err)
        goto out;
    err = nu_kafka_err_take(rd_kafka_init_transactions(p, NU_DEMO_TIMEOUT_MS),
                            "initialise transactions", eb);
    for (long first = 0; !err && first < d->rows; first += d->txn_rows) {
        long n = d->rows - first < d->txn_rows ? d->rows - first : d->txn_rows;
        err = nu_kafka_err_take(rd_kafka_begin_transaction(p), "begin a transaction", eb);
        if (!err)
            err = nu_demo_produce(d, p, first, n, eb);
        if (!err)
            err = nu_kafka_err_take(rd_kafka_commit_transaction(p, NU_DEMO_TIMEOUT_MS),
                                    "commit a transaction", eb);
        (*txns)++;
    }
    /* rows the consumer must never see */
    if (!err && d->aborted_rows > 0) {
        err = nu_kafka_err_take(rd_kafka_begin_transaction(p), "begin a transaction", eb);
        if (!err)
            err = nu_demo_produce(d, p, d->rows, d->aborted_rows, eb);
        if (!err)
            err = nu_kafka_err_take(
                rd_kafka_flush(p, NU_DEMO_TIMEOUT_MS)
                    ? rd_kafka_error_new(RD_KAFKA_RESP_ERR__TIMED_OUT, "flush timed out")
                    : NULL,
                "flush the aborted transaction", eb);
        if (!err)
            err = nu_kafka_err_take(rd_kafka_abort_transaction(p, NU_DEMO_TIMEOUT_MS),
                                    "abort a transaction", eb);
    }
out:
    if (p)
        rd_kafka_destroy(p);
    return err;
}

static nu_err_t nu_demo_read(struct nu_demo *d, long *seen, long *sum_y, struct nu_errbuf *eb)
{
    nu_err_t err;
    rd_kafka_t *c = NULL;
    rd_kafka_topic_partition_list_t *sub = NULL;
    int64_t *end = nu_xcalloc((size_t)d->partitions, sizeof(*end));
    int64_t *pos = nu_xcalloc((size_t)d->partitions, sizeof(*pos));
    char group[160];
    snprintf(group, sizeof(group), "%s.reader", d->topic);
    /* partition EOF events tell when the end (the last stable offset) has been reached */
    static const struct nu_kafka_prop props[] = {{"enable.partition.eof", "true"}};
    err = nu_kafka_client_new(NU_KAFKA_CONSUMER, d->brokers, group, NULL, props, 1, &c, eb);
    if (err)
        goto out;
    /* end offsets under read_committed: the last stable offset of each partition */
    for (int i = 0; i < d->partitions; i++) {
        int64_t lo, hi;
        rd_kafka_resp_err_t rerr =
            rd_kafka_query_watermark_offsets(c, d->topic, i, &lo, &hi, NU_DEMO_TIMEOUT_MS);
        if (rerr) {
            err = nu_err_set(eb, nu_kafka_err_code(rerr),
                             "could not read the end offsets of \"%s\": %s", d->topic,
                             rd_kafka_err2str(rerr));
            goto out;
        }
        end[i] = hi;
    }
    sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, d->topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t rerr = rd_kafka_subscribe(c, sub);
    if (rerr) {
        err = nu_err_set(eb, nu_kafka_err_code(rerr), "could not subscribe to \"%s\": %s", d->topic,
                         rd_kafka_err2str(rerr));
        goto out;
    }
    double deadline = nu_demo_now() + NU_DEMO_TIMEOUT_MS / 1000.0;
    for (;;) {
        bool done = true;
        for (int i = 0; i < d->partitions; i++)
            done = done && pos[i] >= end[i];
        if (done)
            break;
        if (nu_demo_now() > deadline) {
            err = nu_err_set(eb, NU_ERR_TIMEOUT,
                             "did not reach the end of \"%s\" within %d ms (read %ld rows)",
                             d->topic, NU_DEMO_TIMEOUT_MS, *seen);
            goto out;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 200);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (m->partition >= 0 && m->partition < d->partitions && m->offset > pos[m->partition])
                pos[m->partition] = m->offset;
        } else if (m->err) {
            fprintf(stderr, "demo: consumer: %s\n", rd_kafka_message_errstr(m));
        } else {
            long id = 0, y = 0;
            char buf[128];
            size_t n = m->len < sizeof(buf) - 1 ? m->len : sizeof(buf) - 1;
            memcpy(buf, m->payload, n);
            buf[n] = '\0';
            if (sscanf(buf, "{\"id\":%ld,\"y\":%ld}", &id, &y) == 2) {
                (*seen)++;
                *sum_y += y;
            }
            if (m->partition >= 0 && m->partition < d->partitions)
                pos[m->partition] = m->offset + 1;
        }
        rd_kafka_message_destroy(m);
    }
out:
    if (sub)
        rd_kafka_topic_partition_list_destroy(sub);
    if (c) {
        rd_kafka_consumer_close(c);
        rd_kafka_destroy(c);
    }
    free(end);
    free(pos);
    return err;
}

static void nu_demo_usage(FILE *out)
{
    fprintf(out, "usage: nurion demo [--brokers HOST:PORT] [--rows N] [--partitions N] [--keep]\n\n"
                 "Writes N rows to a new topic in committed Kafka transactions, plus one aborted\n"
                 "transaction, reads them back with read_committed isolation and checks that\n"
                 "exactly the committed rows arrived.\n\n"
                 "  --brokers     bootstrap servers (default: $NURION_BROKERS)\n"
                 "  --rows        rows to write (default 100000)\n"
                 "  --partitions  partitions of the demo topic (default 4)\n"
                 "  --keep        keep the demo topic for inspection with kcat\n");
}

int nu_cli_cmd_demo(int argc, char **argv)
{
    struct nu_demo d = {.brokers = getenv("NURION_BROKERS"),
                        .rows = 100000,
                        .txn_rows = 5000,
                        .aborted_rows = 1000,
                        .partitions = 4};
    static const struct option longopts[] = {{"brokers", required_argument, NULL, 'b'},
                                             {"rows", required_argument, NULL, 'n'},
                                             {"partitions", required_argument, NULL, 'p'},
                                             {"keep", no_argument, NULL, 'k'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    struct nu_errbuf eb;
    int opt;
    nu_errbuf_clear(&eb);
    optind = 1;
    while ((opt = getopt_long(argc, argv, "b:n:p:kh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'b':
            d.brokers = optarg;
            break;
        case 'n':
            d.rows = strtol(optarg, NULL, 10);
            break;
        case 'p':
            d.partitions = (int)strtol(optarg, NULL, 10);
            break;
        case 'k':
            d.keep = true;
            break;
        case 'h':
            nu_demo_usage(stdout);
            return NU_EXIT_OK;
        default:
            nu_demo_usage(stderr);
            return NU_EXIT_USAGE;
        }
    }
    if (d.rows < 1 || d.rows > NU_DEMO_MAX_ROWS || d.partitions < 1 || d.partitions > 1000) {
        fprintf(stderr, "nurion demo: --rows must be 1..%d and --partitions 1..1000\n",
                NU_DEMO_MAX_ROWS);
        return NU_EXIT_USAGE;
    }
    snprintf(d.topic, sizeof(d.topic), "nurion.demo.%ld.%d", (long)time(NULL), (int)getpid());

    rd_kafka_t *admin = NULL;
    long txns = 0, seen = 0, sum_y = 0;
    double t0 = nu_demo_now(), t1 = 0, t2 = 0;
    struct nu_kafka_topic_spec spec = {
        .name = d.topic, .partitions = d.partitions, .replication = -1};
    nu_err_t err = nu_kafka_client_new(NU_KAFKA_ADMIN, d.brokers, NULL, NULL, NULL, 0, &admin, &eb);
    if (!err)
        err = nu_kafka_topics_create(admin, &spec, 1, NU_DEMO_TIMEOUT_MS, &eb);
    if (!err) {
        printf("topic      %s (%d partitions)\n", d.topic, d.partitions);
        err = nu_demo_write(&d, &txns, &eb);
        t1 = nu_demo_now();
    }
    if (!err) {
        printf("wrote      %ld rows in %ld committed transactions (%.0f rows/s), "
               "and %ld rows in 1 aborted transaction\n",
               d.rows, txns, d.rows / (t1 - t0), d.aborted_rows);
        err = nu_demo_read(&d, &seen, &sum_y, &eb);
        t2 = nu_demo_now();
    }
    long want_sum = d.rows * (d.rows - 1); /* sum of 2*i for i < rows */
    if (!err) {
        printf("read       %ld rows with read_committed in %.2f s (%.0f rows/s)\n", seen, t2 - t1,
               seen / (t2 - t1));
        if (seen != d.rows || sum_y != want_sum)
            err = nu_err_set(&eb, NU_ERR_INTERNAL,
                             "read %ld rows (sum %ld), expected exactly %ld committed rows (sum "
                             "%ld)",
                             seen, sum_y, d.rows, want_sum);
    }
    if (admin && !d.keep) {
        const char *names[] = {d.topic};
        struct nu_errbuf eb2;
        nu_errbuf_clear(&eb2);
        nu_kafka_topics_delete(admin, names, 1, NU_DEMO_TIMEOUT_MS, &eb2);
    }
    if (admin)
        rd_kafka_destroy(admin);
    if (err) {
        fprintf(stderr, "nurion demo: %s\n", nu_err_msg(&eb));
        return NU_EXIT_FAIL;
    }
    printf("result     OK: every committed row arrived exactly once, no aborted row was seen\n");
    if (d.keep)
        printf("inspect    kcat -b %s -C -t %s -X isolation.level=read_committed -e -q\n",
               d.brokers, d.topic);
    return NU_EXIT_OK;
}
