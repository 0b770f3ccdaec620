/* db.c — libpq: connections, parameterised queries, transactions, SQLSTATE mapping. */
#include "coordinator/db.h"

#include "common/log.h"
#include "common/mem.h"

#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct nu_db {
    PGconn *conn;
};

struct nu_db_res {
    PGresult *res;
};

static void nu_db_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Server notices ("relation already exists, skipping") go to the sql debug area. */
static void nu_db_notice(void *arg, const char *message)
{
    (void)arg;
    size_t n = strlen(message);
    while (n > 0 && message[n - 1] == '\n')
        n--;
    NU_LOG_DEBUG_AREA("sql", "db", "notice: %.*s", (int)n, message);
}

/* libpq's message without its trailing newline. */
static void nu_db_msg(const char *in, char *out, size_t len)
{
    snprintf(out, len, "%s", in != NULL && *in ? in : "unknown error");
    size_t n = strlen(out);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
        out[--n] = '\0';
}

nu_err_t nu_db_connect(const char *url, int attempts, nu_db_t **out, struct nu_errbuf *eb)
{
    nu_err_t err = NU_OK;
    nu_db_t *db = NULL;
    char msg[512];
    int delay = 100;
    *out = NULL;
    if (url == NULL || *url == '\0') {
        err = nu_err_set(eb, NU_ERR_CONFIG, "no database URL given");
        goto out;
    }
    if (attempts < 1)
        attempts = 1;
    db = nu_xcalloc(1, sizeof(*db));
    for (int i = 0; i < attempts; i++) {
        /* connect_timeout first: a value given in the URL overrides it */
        const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
        const char *const vals[] = {"5", "nurion-coordinator", url, NULL};
        if (db->conn != NULL)
            PQfinish(db->conn);
        db->conn = PQconnectdbParams(keys, vals, 1);
        if (db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK)
            break;
        nu_db_msg(db->conn != NULL ? PQerrorMessage(db->conn) : "out of memory", msg, sizeof(msg));
        NU_LOG_DEBUG_AREA("sql", "db", "could not connect (attempt %d of %d): %s", i + 1, attempts,
                          msg);
        if (i + 1 == attempts) {
            err = nu_err_set(eb, NU_ERR_DB, "could not connect to the database: %s", msg);
            goto out;
        }
        nu_db_sleep_ms(delay);
        delay = delay * 2 > 2000 ? 2000 : delay * 2;
    }
    PQsetNoticeProcessor(db->conn, nu_db_notice, NULL);
    *out = db;
    db = NULL;
out:
    nu_db_close(db);
    return err;
}

void nu_db_close(nu_db_t *db)
{
    if (db == NULL)
        return;
    if (db->conn != NULL)
        PQfinish(db->conn);
    free(db);
}

bool nu_db_ok(const nu_db_t *db)
{
    return db != NULL && db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK;
}

nu_err_t nu_db_reset(nu_db_t *db, struct nu_errbuf *eb)
{
    char msg[512];
    PQreset(db->conn);
    if (PQstatus(db->conn) == CONNECTION_OK) {
        PQsetNoticeProcessor(db->conn, nu_db_notice, NULL);
        return NU_OK;
    }
    nu_db_msg(PQerrorMessage(db->conn), msg, sizeof(msg));
    return nu_err_set(eb, NU_ERR_DB, "could not reconnect to the database: %s", msg);
}

nu_err_t nu_db_sqlstate_err(const char *sqlstate)
{
    static const char *const retriable[] = {"40001", "40P01", "57P01", "57P02", "57P03"};
    if (sqlstate == NULL || strncmp(sqlstate, "08", 2) == 0)
        return NU_ERR_DB;
    if (strcmp(sqlstate, "23505") == 0)
        return NU_ERR_EXISTS;
    for (size_t i = 0; i < sizeof(retriable) / sizeof(retriable[0]); i++)
        if (strcmp(sqlstate, retriable[i]) == 0)
            return NU_ERR_DB;
    return NU_ERR_DB_FATAL;
}

/* The first line of a statement, for messages and debug logs. */
static int nu_db_sql_head(const char *sql)
{
    const char *nl = strchr(sql, '\n');
    size_t n = nl != NULL ? (size_t)(nl - sql) : strlen(sql);
    return n > 60 ? 60 : (int)n;
}

/* One statement with parameters (extended protocol), or a script of several without
 * (`simple`: the simple query protocol, which accepts several commands). */
static nu_err_t nu_db_run(nu_db_t *db, const char *sql, int n, const char *const *params,
                          bool simple, nu_db_res_t **out, struct nu_errbuf *eb)
{
    nu_err_t err = NU_OK;
    PGresult *res = NULL;
    char msg[768];
    if (out != NULL)
        *out = NULL;
    if (n < 0 || n > NU_DB_MAX_PARAMS) {
        err = nu_err_set(eb, NU_ERR_INTERNAL, "too many query parameters: %d", n);
        goto out;
    }
    if (db == NULL || db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK) {
        err = nu_err_set(eb, NU_ERR_DB, "no connection to the database");
        goto out;
    }
    NU_LOG_DEBUG_AREA("sql", "db", "query: %.*s", nu_db_sql_head(sql), sql);
    res = simple ? PQexec(db->conn, sql)
                 : PQexecParams(db->conn, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        goto out;
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (state == NULL && PQstatus(db->conn) == CONNECTION_OK && res != NULL)
        state = "XX000"; /* an error without a SQLSTATE on a live connection */
    nu_db_msg(res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(db->conn), msg, sizeof(msg));
    if (msg[0] == 'u' && strcmp(msg, "unknown error") == 0)
        nu_db_msg(PQerrorMessage(db->conn), msg, sizeof(msg));
    err = nu_err_set(eb, nu_db_sqlstate_err(state), "query failed (SQLSTATE %s): %s",
                     state != NULL ? state : "08006", msg);
out:
    if (res != NULL && out != NULL && err == NU_OK) {
        *out = nu_xmalloc(sizeof(**out));
        (*out)->res = res;
    } else if (res != NULL) {
        PQclear(res);
    }
    return err;
}

nu_err_t nu_db_query(nu_db_t *db, const char *sql, int n, const char *const *params,
                     nu_db_res_t **out, struct nu_errbuf *eb)
{
    return nu_db_run(db, sql, n, params, false, out, eb);
}

nu_err_t nu_db_exec(nu_db_t *db, const char *sql, struct nu_errbuf *eb)
{
    return nu_db_run(db, sql, 0, NULL, true, NULL, eb);
}

nu_err_t nu_db_begin(nu_db_t *db, struct nu_errbuf *eb)
{
    return nu_db_exec(db, "BEGIN", eb);
}

nu_err_t nu_db_commit(nu_db_t *db, struct nu_errbuf *eb)
{
    return nu_db_exec(db, "COMMIT", eb);
}

void nu_db_rollback(nu_db_t *db)
{
    if (!nu_db_ok(db))
        return;
    PGresult *res = PQexec(db->conn, "ROLLBACK");
    if (res != NULL)
        PQclear(res);
}

int nu_db_res_rows(const nu_db_res_t *r)
{
    return r != NULL ? PQntuples(r->res) : 0;
}

bool nu_db_res_null(const nu_db_res_t *r, int row, int col)
{
    return r == NULL || row >= PQntuples(r->res) || col >= PQnfields(r->res) ||
           PQgetisnull(r->res, row, col);
}

const char *nu_db_res_get(const nu_db_res_t *r, int row, int col)
{
    if (nu_db_res_null(r, row, col))
        return "";
    return PQgetvalue(r->res, row, col);
}

int64_t nu_db_res_int(const nu_db_res_t *r, int row, int col)
{
    return strtoll(nu_db_res_get(r, row, col), NULL, 10);
}

void nu_db_res_free(nu_db_res_t *r)
{
    if (r == NULL)
        return;
    PQclear(r->res);
    free(r);
}
