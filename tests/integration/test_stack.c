/*
 * test_stack.c — proves the development stack end to end: the Kafka broker honours transactions
 * and consumer groups as librdkafka 2.0.2 uses them, and PostgreSQL answers parameterised
 * queries through libpq.
 */
#include "integ.h"

#include <libpq-fe.h>

#include <limits.h>

/*
 * The consumer's isolation level. Set to "read_uncommitted" and the transactions test must fail
 * (it then sees the aborted records): that is how the test shows it can fail.
 */
#define NU_IT_ISOLATION "read_committed"

#define STACK_PARTITIONS    4
#define STACK_COMMITTED     10000
#define STACK_TXNS          5 /* committed transactions, STACK_COMMITTED / STACK_TXNS each */
#define STACK_ABORTED       1000
#define STACK_ABORT_AFTER   2 /* the aborted transaction comes after this many committed ones */
#define STACK_CONSUME_LIMIT 60000

/* Delivery reports: counts, and the offset of the last record written to each partition. */
struct stack_dr {
    long ok;
    long failed;
    int64_t last_offset[STACK_PARTITIONS];
    char first_error[256];
};

static void stack_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct stack_dr *dr = opaque;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        dr->ok++;
        if (m->partition >= 0 && m->partition < STACK_PARTITIONS &&
            m->offset > dr->last_offset[m->partition])
            dr->last_offset[m->partition] = m->offset;
        return;
    }
    if (dr->failed++ == 0)
        snprintf(dr->first_error, sizeof dr->first_error, "%s", rd_kafka_err2str(m->err));
}

static void stack_check_error(rd_kafka_error_t *error, const char *what)
{
    if (error == NULL)
        return;
    char msg[512];
    snprintf(msg, sizeof msg, "%s", rd_kafka_error_string(error));
    rd_kafka_error_destroy(error);
    cr_assert_fail("could not %s: %s", what, msg);
}

/* Produces records kind-first .. kind-(first+count-1) in one transaction, spread round-robin over
 * the partitions (record i goes to partition i % STACK_PARTITIONS), then commits or aborts. */
static void stack_produce_txn(rd_kafka_t *rk, const char *topic, char kind, int first, int count,
                              bool commit)
{
    stack_check_error(rd_kafka_begin_transaction(rk), "begin transaction");
    for (int i = first; i < first + count; i++) {
        char key[16], value[24];
        int klen = snprintf(key, sizeof key, "%d", i);
        int vlen = snprintf(value, sizeof value, "%c-%d", kind, i);
        rd_kafka_resp_err_t err;
        while ((err = rd_kafka_producev(
                    rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(i % STACK_PARTITIONS),
                    RD_KAFKA_V_KEY(key, (size_t)klen), RD_KAFKA_V_VALUE(value, (size_t)vlen),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END)) ==
               RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(rk, 10);
        cr_assert_eq(err, RD_KAFKA_RESP_ERR_NO_ERROR, "could not produce record %d: %s", i,
                     rd_kafka_err2str(err));
    }
    if (commit) {
        stack_check_error(rd_kafka_commit_transaction(rk, NU_IT_TIMEOUT_MS), "commit transaction");
        return;
    }
    /* Write the records to the log first, so that aborting leaves them there, marked aborted
     * (an abort before delivery would only purge the local queue and prove nothing). */
    cr_assert_eq(rd_kafka_flush(rk, NU_IT_TIMEOUT_MS), RD_KAFKA_RESP_ERR_NO_ERROR,
                 "could not flush the records of the transaction to abort");
    stack_check_error(rd_kafka_abort_transaction(rk, NU_IT_TIMEOUT_MS), "abort transaction");
}

static rd_kafka_t *stack_producer_new(struct stack_dr *dr)
{
    char errstr[512], txn_id[128];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    nu_it_conf_set(conf, "bootstrap.servers", nu_it_brokers());
    nu_it_conf_set(conf, "transactional.id",
                   nu_it_unique_name("nurion.it.stack.txn", txn_id, sizeof txn_id));
    nu_it_conf_set(conf, "linger.ms", "5");
    rd_kafka_conf_set_dr_msg_cb(conf, stack_dr_cb);
    rd_kafka_conf_set_opaque(conf, dr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        cr_assert_fail("could not create producer: %s", errstr);
    }
    stack_check_error(rd_kafka_init_transactions(rk, NU_IT_TIMEOUT_MS), "init transactions");
    return rk;
}

static rd_kafka_t *stack_consumer_new(const char *topic)
{
    char errstr[512], group[128];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    nu_it_conf_set(conf, "bootstrap.servers", nu_it_brokers());
    nu_it_conf_set(conf, "group.id",
                   nu_it_unique_name("nurion.it.stack.group", group, sizeof group));
    nu_it_conf_set(conf, "isolation.level", NU_IT_ISOLATION);
    nu_it_conf_set(conf, "auto.offset.reset", "earliest");
    nu_it_conf_set(conf, "enable.auto.commit", "false");
    nu_it_conf_set(conf, "enable.partition.eof", "true");
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        cr_assert_fail("could not create consumer: %s", errstr);
    }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(subs, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(rk, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    cr_assert_eq(err, RD_KAFKA_RESP_ERR_NO_ERROR, "could not subscribe to \"%s\": %s", topic,
                 rd_kafka_err2str(err));
    return rk;
}

/* What the consumer saw. */
struct stack_seen {
    unsigned char committed[STACK_COMMITTED]; /* times each committed record was read */
    long aborted;                             /* aborted records read: must stay 0 */
    long misplaced;                           /* records on a partition other than i % P */
    long malformed;                           /* records whose key/value we did not write */
    long errors;                              /* consumer errors other than partition EOF */
    char first_error[256];
};

static void stack_record(struct stack_seen *seen, const rd_kafka_message_t *m)
{
    char value[32], key[16];
    int i = -1;
    char kind = 0;
    if (m->len >= sizeof value || m->key_len >= sizeof key) {
        seen->malformed++;
        return;
    }
    memcpy(value, m->payload, m->len);
    value[m->len] = '\0';
    memcpy(key, m->key, m->key_len);
    key[m->key_len] = '\0';
    if (sscanf(value, "%c-%d", &kind, &i) != 2 || i < 0 || atoi(key) != i) {
        seen->malformed++;
        return;
    }
    if (kind == 'a') {
        seen->aborted++;
        return;
    }
    if (kind != 'c' || i >= STACK_COMMITTED) {
        seen->malformed++;
        return;
    }
    if (m->partition != i % STACK_PARTITIONS)
        seen->misplaced++;
    if (seen->committed[i] < UCHAR_MAX)
        seen->committed[i]++;
}

Test(stack, transactions_read_committed, .timeout = 180)
{
    char topic[128];
    struct stack_dr dr = {0};
    static struct stack_seen seen;
    bool done[STACK_PARTITIONS] = {false};

    memset(&seen, 0, sizeof seen);
    for (int p = 0; p < STACK_PARTITIONS; p++)
        dr.last_offset[p] = -1;
    nu_it_unique_name("nurion.it.stack", topic, sizeof topic);
    rd_kafka_t *prod = stack_producer_new(&dr);
    nu_it_create_topic(prod, topic, STACK_PARTITIONS);

    const int per_txn = STACK_COMMITTED / STACK_TXNS;
    for (int t = 0; t < STACK_TXNS; t++) {
        if (t == STACK_ABORT_AFTER)
            stack_produce_txn(prod, topic, 'a', 0, STACK_ABORTED, false);
        stack_produce_txn(prod, topic, 'c', t * per_txn, per_txn, true);
    }
    cr_assert_eq(dr.failed, 0, "%ld records failed delivery, first: %s", dr.failed, dr.first_error);
    cr_assert_eq(dr.ok, STACK_COMMITTED + STACK_ABORTED, "delivered %ld records, want %d", dr.ok,
                 STACK_COMMITTED + STACK_ABORTED);

    /* The broker assigned these offsets, so the log holds the aborted records too (or the
     * check below that none is read would prove nothing). A partition is fully read once the
     * consumer's position passes its last record; under read_committed that happens only after
     * the final commit marker is written, which may trail commit_transaction() a little. */
    int64_t total = 0;
    for (int p = 0; p < STACK_PARTITIONS; p++) {
        cr_assert_geq(dr.last_offset[p], 0, "no record was written to partition %d", p);
        total += dr.last_offset[p] + 1;
    }
    cr_assert_geq(total, STACK_COMMITTED + STACK_ABORTED,
                  "log holds %lld offsets, fewer than the %d records written", (long long)total,
                  STACK_COMMITTED + STACK_ABORTED);
    rd_kafka_destroy(prod);

    /* Read until every partition reports EOF past its last record. The deadline is only a
     * safety net; completion is decided by the partition ends. */
    rd_kafka_t *cons = stack_consumer_new(topic);
    int ndone = 0;
    int64_t deadline = nu_it_now_ms() + STACK_CONSUME_LIMIT;
    while (ndone < STACK_PARTITIONS && nu_it_now_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(cons, 200);
        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            int p = m->partition;
            if (p >= 0 && p < STACK_PARTITIONS && !done[p] && m->offset > dr.last_offset[p]) {
                done[p] = true;
                ndone++;
            }
        } else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (seen.errors++ == 0)
                snprintf(seen.first_error, sizeof seen.first_error, "%s",
                         rd_kafka_message_errstr(m));
        } else {
            stack_record(&seen, m);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(cons);

    long distinct = 0, dups = 0;
    for (int i = 0; i < STACK_COMMITTED; i++) {
        distinct += seen.committed[i] > 0;
        dups += seen.committed[i] > 1 ? seen.committed[i] - 1 : 0;
    }
    cr_assert_eq(ndone, STACK_PARTITIONS,
                 "only %d of %d partitions reached their end within %d ms (%ld records read)",
                 ndone, STACK_PARTITIONS, STACK_CONSUME_LIMIT, distinct);
    cr_assert_eq(seen.errors, 0, "%ld consumer errors, first: %s", seen.errors, seen.first_error);
    cr_assert_eq(seen.aborted, 0,
                 "read %ld records of the aborted transaction (isolation.level=%s)", seen.aborted,
                 NU_IT_ISOLATION);
    cr_assert_eq(seen.malformed, 0, "read %ld records that were never written", seen.malformed);
    cr_assert_eq(distinct, STACK_COMMITTED, "read %ld distinct committed records, want %d",
                 distinct, STACK_COMMITTED);
    cr_assert_eq(dups, 0, "read %ld committed records more than once", dups);
    cr_assert_eq(seen.misplaced, 0, "%ld records came from the wrong partition", seen.misplaced);

    /* Kept on failure, for a look with kcat; removed once it has served. */
    nu_it_delete_topic(cons, topic);
    rd_kafka_destroy(cons);
}

Test(stack, postgres_roundtrip, .timeout = 30)
{
    static const char payload[] = {'n', 'u', '\0', 'r', '\xff', '\n'};
    const char *name = "r\xc3\xa9sum\xc3\xa9 'quoted'; drop table x; --";
    PGconn *db = PQconnectdb(nu_it_database_url());
    cr_assert_eq(PQstatus(db), CONNECTION_OK, "could not connect to %s: %s", nu_it_database_url(),
                 PQerrorMessage(db));

    PGresult *res = PQexec(db, "CREATE TEMP TABLE nu_it_roundtrip (id bigint PRIMARY KEY, "
                               "name text NOT NULL, payload bytea NOT NULL)");
    cr_assert_eq(PQresultStatus(res), PGRES_COMMAND_OK, "could not create table: %s",
                 PQerrorMessage(db));
    PQclear(res);

    const char *ins_values[3] = {"42", name, payload};
    const int ins_lengths[3] = {0, 0, (int)sizeof payload};
    const int ins_formats[3] = {0, 0, 1};
    res = PQexecParams(db, "INSERT INTO nu_it_roundtrip (id, name, payload) VALUES ($1, $2, $3)", 3,
                       NULL, ins_values, ins_lengths, ins_formats, 0);
    cr_assert_eq(PQresultStatus(res), PGRES_COMMAND_OK, "could not insert: %s", PQerrorMessage(db));
    cr_assert_str_eq(PQcmdTuples(res), "1");
    PQclear(res);

    const char *sel_values[1] = {"42"};
    res = PQexecParams(db,
                       "SELECT name, payload, (SELECT count(*) FROM nu_it_roundtrip)::text "
                       "FROM nu_it_roundtrip WHERE id = $1",
                       1, NULL, sel_values, NULL, NULL, 1);
    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "could not select: %s", PQerrorMessage(db));
    cr_assert_eq(PQntuples(res), 1);
    cr_assert_eq(PQgetlength(res, 0, 0), (int)strlen(name));
    cr_assert_arr_eq(PQgetvalue(res, 0, 0), name, strlen(name));
    cr_assert_eq(PQgetlength(res, 0, 1), (int)sizeof payload);
    cr_assert_arr_eq(PQgetvalue(res, 0, 1), payload, sizeof payload);
    cr_assert_eq(PQgetlength(res, 0, 2), 1);
    cr_assert_eq(PQgetvalue(res, 0, 2)[0], '1', "the table holds more than the one row");
    PQclear(res);
    PQfinish(db);
}
