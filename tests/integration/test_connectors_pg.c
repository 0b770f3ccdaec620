/*
 * test_connectors_pg.c — generate -> postgres_sink through the real broker and the real
 * PostgreSQL with `nurion run`: in ledger mode the table holds every row exactly once, also
 * when the sink stage is SIGKILLed while the job runs; rows the table's CHECK constraint refuses
 * are dead-lettered one by one with the database's message, the good rows of their splits are
 * committed and the counts reconcile; upsert mode replaces existing rows by key.
 */
#include "pipeline.h"

#include "stage/connectors.h"

#include <libpq-fe.h>

TestSuite(connectors_pg, .init = nu_connectors_register);

static PGconn *nu_pc_connect(void)
{
    PGconn *c = PQconnectdb(nu_it_database_url());
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
    return c;
}

static void nu_pc_exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    cr_assert(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "%s: %s", sql,
              PQresultErrorMessage(r));
    PQclear(r);
}

static long long nu_pc_int(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s: %s", sql, PQresultErrorMessage(r));
    long long v = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

/* A job of generate (rows, split_rows 100) -> postgres_sink with `sink` as extra config. */
static void nu_pc_job(struct nu_it_job *j, const char *prefix, int rows, const char *sink)
{
    char tmpl[2048];
    snprintf(tmpl, sizeof(tmpl),
             "{\"job_id\":\"@ID@\",\"format\":\"avro\",\"stages\":["
             "{\"id\":\"gen\",\"operator\":\"generate\",\"config\":{\"rows\":%d,"
             "\"split_rows\":100,\"payload_bytes\":8}},"
             "{\"id\":\"db\",\"operator\":\"postgres_sink\",\"config\":{%s},"
             "\"upstream\":[\"gen\"]}]}",
             rows, sink);
    nu_it_job_make(j, prefix, tmpl);
}

/* The job's table: "t_@ID@" in the specs (a quoted identifier may hold '-'). */
static void nu_pc_table(const struct nu_it_job *j, char *buf, size_t len)
{
    snprintf(buf, len, "t_%s", j->id);
}

static void nu_pc_ledger_run(int kills)
{
    struct nu_it_job j;
    char table[160], sql[1024];
    const int rows = 3000;
    nu_pc_job(&j, kills ? "pg-kill" : "pg", rows, "\"table\":\"public.t_@ID@\",\"create\":true");
    nu_pc_table(&j, table, sizeof(table));
    pid_t pid = nu_it_run_start(&j, NULL);
    if (kills)
        cr_log_info("kills landed: %d", nu_it_kill_loop(pid, "db", kills, 11));
    int rc = nu_it_run_wait(&j, pid, 120000);
    cr_assert_eq(rc, 0, "nurion run exited %d (log %s)", rc, j.log);
    PGconn *c = nu_pc_connect();
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM public.\"%s\"", table);
    cr_assert_eq(nu_pc_int(c, sql), rows);
    snprintf(sql, sizeof(sql),
             "SELECT count(DISTINCT id) + 1000000 * (min(id) + 1) FROM public.\"%s\" "
             "WHERE length(payload) = 8",
             table);
    cr_assert_eq(nu_pc_int(c, sql), rows + 1000000LL);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) * 100000 + sum(rows) FROM nurion_split_ledger WHERE job = '%s'",
             j.id);
    cr_assert_eq(nu_pc_int(c, sql), (rows / 100) * 100000LL + rows);
    PQfinish(c);
}

Test(connectors_pg, ledger_exactly_once, .timeout = 150)
{
    nu_pc_ledger_run(0);
}

Test(connectors_pg, ledger_exactly_once_with_sink_kills, .timeout = 150)
{
    nu_pc_ledger_run(3);
}

struct nu_pc_dlq {
    long n, with_reason;
};

static void nu_pc_dlq_record(const rd_kafka_message_t *m, void *ctx)
{
    struct nu_pc_dlq *d = ctx;
    char reason[1024];
    d->n++;
    nu_it_header(m, "nurion-error", reason, sizeof(reason));
    if (strstr(reason, "violates check constraint") && strstr(reason, "23514"))
        d->with_reason++;
    else
        cr_log_error("dead letter reason: %s", reason);
}

Test(connectors_pg, check_violations_are_dead_lettered, .timeout = 150)
{
    struct nu_it_job j;
    char table[160], sql[1024], dlq[256];
    struct nu_pc_dlq d = {0, 0};
    PGconn *c = nu_pc_connect();
    const int rows = 500;

    nu_pc_job(&j, "pg-check", rows, "\"table\":\"t_@ID@\"");
    nu_pc_table(&j, table, sizeof(table));
    snprintf(sql, sizeof(sql),
             "CREATE TABLE \"%s\" (id bigint NOT NULL CHECK (id %% 10 <> 3), payload text)", table);
    nu_pc_exec(c, sql);
    pid_t pid = nu_it_run_start(&j, NULL);
    int rc = nu_it_run_wait(&j, pid, 120000);
    cr_assert_eq(rc, 0, "nurion run exited %d (log %s)", rc, j.log);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM \"%s\"", table);
    cr_assert_eq(nu_pc_int(c, sql), rows - rows / 10);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM \"%s\" WHERE id %% 10 = 3", table);
    cr_assert_eq(nu_pc_int(c, sql), 0);
    snprintf(dlq, sizeof(dlq), "nurion.%s.db.dlq", j.id);
    nu_it_read_topic(dlq, nu_pc_dlq_record, &d);
    cr_assert_eq(d.n, rows / 10, "dead letters: %ld", d.n);
    cr_assert_eq(d.with_reason, rows / 10);
    /* the ledger counts the rows written; with the dead letters they make the input */
    snprintf(sql, sizeof(sql),
             "SELECT sum(rows), sum(jsonb_array_length(coalesce(rejects, '[]'))) "
             "FROM nurion_split_ledger WHERE job = '%s'",
             j.id);
    PGresult *r = PQexec(c, sql);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
    cr_assert_eq(atoll(PQgetvalue(r, 0, 0)), rows - rows / 10);
    cr_assert_eq(atoll(PQgetvalue(r, 0, 1)), rows / 10);
    PQclear(r);
    PQfinish(c);
}

Test(connectors_pg, upsert_round_trip, .timeout = 150)
{
    struct nu_it_job j;
    char table[160], sql[1024];
    PGconn *c = nu_pc_connect();
    const int rows = 400;

    nu_pc_job(&j, "pg-upsert", rows,
              "\"table\":\"t_@ID@\",\"mode\":\"upsert\",\"key\":[\"id\"],\"batch_rows\":64");
    nu_pc_table(&j, table, sizeof(table));
    snprintf(sql, sizeof(sql), "CREATE TABLE \"%s\" (id bigint PRIMARY KEY, payload text)", table);
    nu_pc_exec(c, sql);
    snprintf(sql, sizeof(sql),
             "INSERT INTO \"%s\" SELECT g, 'old' FROM generate_series(0, 99) g UNION ALL "
             "SELECT g, 'keep' FROM generate_series(1000, 1009) g",
             table);
    nu_pc_exec(c, sql);
    pid_t pid = nu_it_run_start(&j, NULL);
    int rc = nu_it_run_wait(&j, pid, 120000);
    cr_assert_eq(rc, 0, "nurion run exited %d (log %s)", rc, j.log);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM \"%s\"", table);
    cr_assert_eq(nu_pc_int(c, sql), rows + 10);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM \"%s\" WHERE payload = 'old'", table);
    cr_assert_eq(nu_pc_int(c, sql), 0);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM \"%s\" WHERE payload = 'keep'", table);
    cr_assert_eq(nu_pc_int(c, sql), 10);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM \"%s\" WHERE length(payload) = 8", table);
    cr_assert_eq(nu_pc_int(c, sql), rows);
    PQfinish(c);
}
