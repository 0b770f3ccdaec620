/*
 * test_transport_mem.c — the in-memory broker: read_committed transactions, offsets committed
 * atomically with the records, fencing, group assignment and rebalances, blocking polls.
 */
#include "stage/transport.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static nu_transport_t *tr;
static struct nu_errbuf eb;

static void setup(void)
{
    tr = nu_transport_mem_new();
    nu_errbuf_clear(&eb);
    struct nu_ttopic_spec specs[] = {{"in", 4}, {"out", 2}};
    cr_assert_eq(nu_transport_topics_create(tr, specs, 2, 1000, &eb), NU_OK, "%s", nu_err_msg(&eb));
}

static void teardown(void)
{
    nu_transport_destroy(tr);
}

TestSuite(transport_mem, .init = setup, .fini = teardown);

static nu_tconsumer_t *reader(const char *group, const char *topic, int partitions, bool eof)
{
    nu_tconsumer_t *c = NULL;
    struct nu_tconsumer_conf conf = {.group = group, .eof = eof};
    struct nu_toffsets parts = {0};
    cr_assert_eq(nu_tconsumer_new(tr, &conf, &c, &eb), NU_OK);
    for (int p = 0; p < partitions; p++)
        nu_toffsets_add(&parts, topic, p, NU_TOFFSET_NONE, NULL, 0);
    cr_assert_eq(nu_tconsumer_assign(c, &parts, &eb), NU_OK, "%s", nu_err_msg(&eb));
    nu_toffsets_free(&parts);
    return c;
}

/* Values of every record readable now (up to `cap`), concatenated with '|'. */
static size_t drain(nu_tconsumer_t *c, char *out, size_t cap)
{
    const struct nu_trecord *r;
    size_t n = 0;
    out[0] = '\0';
    while (nu_tconsumer_poll(c, 0, &r, &eb) == NU_OK && r) {
        if (r->eof)
            continue;
        size_t l = strlen(out);
        snprintf(out + l, cap - l, "%s%.*s", l ? "|" : "", (int)r->len, (const char *)r->value);
        n++;
    }
    return n;
}

static void tsend(nu_tproducer_t *p, const char *topic, int32_t part, const char *val)
{
    struct nu_header h = {"nurion-kind", "data", 4};
    cr_assert_eq(nu_tproducer_send(p, topic, part, "k", 1, val, strlen(val), &h, 1, 1000, &eb),
                 NU_OK, "%s", nu_err_msg(&eb));
}

static nu_tproducer_t *producer(const char *txn_id)
{
    nu_tproducer_t *p = NULL;
    struct nu_tproducer_conf conf = {.txn_id = txn_id};
    cr_assert_eq(nu_tproducer_new(tr, &conf, 1000, &p, &eb), NU_OK, "%s", nu_err_msg(&eb));
    return p;
}

Test(transport_mem, read_committed_hides_open_and_aborted_transactions)
{
    nu_tproducer_t *p = producer("t1"), *plain = producer(NULL);
    nu_tconsumer_t *c = reader("g", "out", 1, false);
    char got[256];

    cr_assert_eq(nu_tproducer_send(p, "out", 0, NULL, 0, "x", 1, NULL, 0, 0, &eb), NU_ERR_STATE,
                 "a transactional producer writes only inside a transaction");
    cr_assert_eq(nu_tproducer_begin(p, &eb), NU_OK);
    tsend(p, "out", 0, "a1");
    tsend(p, "out", 0, "a2");
    tsend(plain, "out", 0, "plain");
    cr_assert_eq(drain(c, got, sizeof(got)), 1);
    cr_assert_str_eq(got, "plain", "records of an open transaction are invisible");
    cr_assert_eq(nu_tproducer_abort(p, 1000, &eb), NU_OK);
    cr_assert_eq(drain(c, got, sizeof(got)), 0, "an aborted transaction is never visible");

    cr_assert_eq(nu_tproducer_begin(p, &eb), NU_OK);
    tsend(p, "out", 0, "b1");
    tsend(p, "out", 0, "b2");
    cr_assert_eq(drain(c, got, sizeof(got)), 0);
    cr_assert_eq(nu_tproducer_commit(p, 1000, &eb), NU_OK);
    cr_assert_eq(drain(c, got, sizeof(got)), 2);
    cr_assert_str_eq(got, "b1|b2");

    int64_t lo = -1, hi = -1;
    cr_assert_eq(nu_tconsumer_watermarks(c, "out", 0, 0, &lo, &hi, &eb), NU_OK);
    cr_assert_eq(lo, 0);
    cr_assert_eq(hi, 3, "dense offsets: plain, b1, b2 (no markers, nothing aborted)");
    nu_tconsumer_destroy(c);
    nu_tproducer_destroy(plain);
    nu_tproducer_destroy(p);
}

Test(transport_mem, offsets_and_metadata_commit_atomically_with_the_records)
{
    nu_tproducer_t *p = producer("t1");
    nu_tconsumer_t *grp = reader("stage", "in", 4, false), *out = reader("r", "out", 2, false);
    struct nu_toffsets offs = {0}, q = {0};
    char got[256];
    nu_toffsets_add(&offs, "in", 3, 17, "lanes=abc;b=17", 14);
    nu_toffsets_add(&q, "in", 3, 0, NULL, 0);

    for (int round = 0; round < 2; round++) {
        cr_assert_eq(nu_tproducer_begin(p, &eb), NU_OK);
        tsend(p, "out", 1, round ? "kept" : "dropped");
        cr_assert_eq(nu_tproducer_send_offsets(p, grp, &offs, 1000, &eb), NU_OK);
        cr_assert_eq(nu_tconsumer_committed(grp, &q, 1000, &eb), NU_OK);
        cr_assert_eq(q.v[0].offset, NU_TOFFSET_NONE, "offsets are invisible until the commit");
        cr_assert_null(q.v[0].meta);
        if (round == 0) {
            cr_assert_eq(nu_tproducer_abort(p, 1000, &eb), NU_OK);
            cr_assert_eq(nu_tconsumer_committed(grp, &q, 1000, &eb), NU_OK);
            cr_assert_eq(q.v[0].offset, NU_TOFFSET_NONE, "an abort drops the offsets too");
            cr_assert_eq(drain(out, got, sizeof(got)), 0);
        } else {
            cr_assert_eq(nu_tproducer_commit(p, 1000, &eb), NU_OK);
        }
    }
    cr_assert_eq(nu_tconsumer_committed(grp, &q, 1000, &eb), NU_OK);
    cr_assert_eq(q.v[0].offset, 17);
    cr_assert_eq(q.v[0].meta_len, 14);
    cr_assert_str_eq(q.v[0].meta, "lanes=abc;b=17");
    cr_assert_eq(drain(out, got, sizeof(got)), 1);
    cr_assert_str_eq(got, "kept");

    /* a plain commit replaces offset and metadata */
    nu_toffsets_clear(&offs);
    nu_toffsets_add(&offs, "in", 3, 20, "x", 1);
    cr_assert_eq(nu_tconsumer_commit(grp, &offs, &eb), NU_OK);
    cr_assert_eq(nu_tconsumer_committed(grp, &q, 1000, &eb), NU_OK);
    cr_assert_eq(q.v[0].offset, 20);
    cr_assert_str_eq(q.v[0].meta, "x");
    nu_toffsets_free(&offs);
    nu_toffsets_free(&q);
    nu_tconsumer_destroy(out);
    nu_tconsumer_destroy(grp);
    nu_tproducer_destroy(p);
}

Test(transport_mem, a_newer_producer_fences_the_older_and_aborts_its_transaction)
{
    nu_tproducer_t *old = producer("inst.0");
    nu_tconsumer_t *c = reader("r", "out", 2, false);
    char got[64];
    cr_assert_eq(nu_tproducer_begin(old, &eb), NU_OK);
    tsend(old, "out", 0, "zombie");
    nu_tproducer_t *fresh = producer("inst.0");
    cr_assert_eq(nu_tproducer_commit(old, 1000, &eb), NU_ERR_FENCED);
    cr_assert_eq(nu_tproducer_begin(fresh, &eb), NU_OK);
    tsend(fresh, "out", 0, "new");
    cr_assert_eq(nu_tproducer_commit(fresh, 1000, &eb), NU_OK);
    cr_assert_eq(drain(c, got, sizeof(got)), 1);
    cr_assert_str_eq(got, "new");
    nu_tconsumer_destroy(c);
    nu_tproducer_destroy(fresh);
    nu_tproducer_destroy(old);
}

/* A group member that records its rebalance callbacks. */
struct member {
    nu_tconsumer_t *c;
    bool owns[4];
    int assigns, revokes;
};

static void member_cb(void *opaque, nu_trebalance_t kind, const struct nu_toffsets *parts)
{
    struct member *m = opaque;
    for (size_t i = 0; i < parts->n; i++) {
        cr_assert_str_eq(parts->v[i].topic, "in");
        bool assign = kind == NU_TREBALANCE_ASSIGN;
        cr_assert_neq(m->owns[parts->v[i].partition], assign, "assigned twice or revoked unowned");
        m->owns[parts->v[i].partition] = assign;
    }
    if (kind == NU_TREBALANCE_ASSIGN)
        m->assigns++;
    else
        m->revokes++;
}

static void join(struct member *m)
{
    const char *topics[] = {"in"};
    struct nu_tconsumer_conf conf = {.group = "stage", .rebalance = member_cb, .opaque = m};
    memset(m, 0, sizeof(*m));
    cr_assert_eq(nu_tconsumer_new(tr, &conf, &m->c, &eb), NU_OK);
    cr_assert_eq(nu_tconsumer_subscribe(m->c, topics, 1, &eb), NU_OK);
}

static int owned(const struct member *m)
{
    int n = 0;
    for (int p = 0; p < 4; p++)
        n += m->owns[p];
    return n;
}

static void poll_all(struct member **ms, size_t n)
{
    const struct nu_trecord *r;
    for (int round = 0; round < 3; round++)
        for (size_t i = 0; i < n; i++)
            cr_assert_eq(nu_tconsumer_poll(ms[i]->c, 0, &r, &eb), NU_OK);
}

Test(transport_mem, group_assignment_follows_members_one_two_one)
{
    struct member a, b;
    struct member *both[] = {&a, &b};
    nu_tproducer_t *p = producer(NULL);
    struct nu_toffsets offs = {0};
    join(&a);
    poll_all(both, 1);
    cr_assert_eq(owned(&a), 4, "a lone member owns every partition");

    /* a commits a position on partition 3, which is b's after the rebalance */
    nu_toffsets_add(&offs, "in", 3, 2, "m", 1);
    cr_assert_eq(nu_tconsumer_commit(a.c, &offs, &eb), NU_OK);

    join(&b);
    poll_all(both, 2);
    cr_assert_eq(owned(&a), 2);
    cr_assert_eq(owned(&b), 2);
    for (int q = 0; q < 4; q++)
        cr_assert(a.owns[q] != b.owns[q], "partition %d has exactly one owner", q);
    cr_assert_eq(a.revokes, 1);
    cr_assert_eq(b.assigns, 1);
    cr_assert(b.owns[3], "round-robin in join order: a gets 0 and 2, b gets 1 and 3");

    /* b reads from the group's committed offset */
    for (int i = 0; i < 4; i++)
        tsend(p, "in", 3, i < 2 ? "old" : "new");
    const struct nu_trecord *r = NULL;
    cr_assert_eq(nu_tconsumer_poll(b.c, 100, &r, &eb), NU_OK);
    cr_assert_not_null(r);
    cr_assert_eq(r->partition, 3);
    cr_assert_eq(r->offset, 2);
    cr_assert_eq(memcmp(r->value, "new", 3), 0);

    struct nu_toffsets asg = {0};
    cr_assert_eq(nu_tconsumer_assignment(b.c, &asg, &eb), NU_OK);
    cr_assert_eq(asg.n, 2);
    nu_toffsets_free(&asg);

    nu_tconsumer_destroy(b.c); /* leaving revokes through the callback */
    cr_assert_eq(b.revokes, 1);
    cr_assert_eq(owned(&b), 0);
    poll_all(both, 1);
    cr_assert_eq(owned(&a), 4, "the partitions of a member that left come back");
    cr_assert_eq(a.assigns, 2);
    nu_tconsumer_destroy(a.c);
    nu_toffsets_free(&offs);
    nu_tproducer_destroy(p);
}

struct late_send {
    nu_tproducer_t *p;
};

static void *late_sender(void *arg)
{
    struct late_send *ls = arg;
    struct timespec ts = {0, 50 * 1000000L};
    struct nu_errbuf e;
    nu_errbuf_clear(&e);
    nanosleep(&ts, NULL);
    nu_tproducer_send(ls->p, "out", 1, "k", 1, "late", 4, NULL, 0, 1000, &e);
    return NULL;
}

Test(transport_mem, a_blocking_poll_wakes_on_a_record_and_reports_eof)
{
    nu_tproducer_t *p = producer(NULL);
    nu_tconsumer_t *c = reader("r", "out", 2, true);
    const struct nu_trecord *r;
    int eofs = 0;
    /* both partitions empty: one eof each, then nothing */
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(nu_tconsumer_poll(c, 0, &r, &eb), NU_OK);
        if (r) {
            cr_assert(r->eof);
            eofs++;
        }
    }
    cr_assert_eq(eofs, 2);
    struct late_send ls = {p};
    pthread_t th;
    pthread_create(&th, NULL, late_sender, &ls);
    cr_assert_eq(nu_tconsumer_poll(c, 5000, &r, &eb), NU_OK);
    cr_assert_not_null(r, "the poll returns when the record arrives");
    cr_assert_not(r->eof);
    cr_assert_eq(r->len, 4);
    cr_assert_eq(r->partition, 1);
    pthread_join(th, NULL);
    cr_assert_eq(nu_tconsumer_poll(c, 0, &r, &eb), NU_OK);
    cr_assert(r && r->eof && r->offset == 1, "the end moved to offset 1");
    nu_tconsumer_destroy(c);
    nu_tproducer_destroy(p);
}

Test(transport_mem, keyed_records_go_to_one_partition_and_topics_are_checked)
{
    nu_tproducer_t *p = producer(NULL);
    nu_tconsumer_t *c = reader("r", "in", 4, false);
    const struct nu_trecord *r;
    int part = -1;
    for (int i = 0; i < 5; i++)
        cr_assert_eq(
            nu_tproducer_send(p, "in", NU_TPARTITION_ANY, "split-7", 7, "v", 1, NULL, 0, 0, &eb),
            NU_OK);
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(nu_tconsumer_poll(c, 0, &r, &eb), NU_OK);
        cr_assert_not_null(r);
        if (part < 0)
            part = r->partition;
        cr_assert_eq(r->partition, part, "one key, one partition");
    }
    cr_assert_eq(nu_tproducer_send(p, "nope", 0, NULL, 0, "v", 1, NULL, 0, 0, &eb),
                 NU_ERR_NOT_FOUND);
    cr_assert_eq(nu_tproducer_send(p, "in", 4, NULL, 0, "v", 1, NULL, 0, 0, &eb), NU_ERR_NOT_FOUND);
    struct nu_ttopic_spec bigger = {"in", 8}, same = {"in", 2}, bad = {"x", 0};
    cr_assert_eq(nu_transport_topics_create(tr, &bigger, 1, 0, &eb), NU_ERR_EXISTS);
    cr_assert_eq(nu_transport_topics_create(tr, &same, 1, 0, &eb), NU_OK);
    cr_assert_eq(nu_transport_topics_create(tr, &bad, 1, 0, &eb), NU_ERR_INVALID);
    nu_tconsumer_destroy(c);
    nu_tproducer_destroy(p);
}
