/*
 * db.h — the one module that wraps libpq (layer: coordinator).
 *
 * Everything the coordinator says to PostgreSQL goes through here: connecting with back-off,
 * parameterised queries only (text parameters $1…, never SQL built from input), transactions,
 * and the mapping of SQLSTATEs onto nu_err_t:
 *   class 08 (connection), 57P01-57P03 (shutdown), 40001 / 40P01 (serialization, deadlock),
 *   or a lost connection                          -> NU_ERR_DB (retriable)
 *   23505 unique violation                        -> NU_ERR_EXISTS
 *   anything else                                 -> NU_ERR_DB_FATAL
 * so libpq's ownership rules (PGconn, PGresult) live in this file alone.
 *
 * Thread-safety: a nu_db_t is one connection and belongs to one thread at a time; open one per
 * thread. Results are independent of their connection once returned.
 */
#ifndef NU_COORDINATOR_DB_H
#define NU_COORDINATOR_DB_H

#include "common/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct nu_db nu_db_t;         /* one connection */
typedef struct nu_db_res nu_db_res_t; /* the rows of one query */

/* Most parameters one statement may take. */
#define NU_DB_MAX_PARAMS 32

/*
 * Connect to `url` (a libpq URL or key=value string; borrowed), trying up to `attempts` times
 * (at least once) with exponential back-off from 100 ms up to 2 s between tries; blocks for at
 * most that long plus libpq's connect_timeout (set to 5 s unless the URL gives one). *out is
 * returned owned (nu_db_close). Errors: NU_ERR_DB when the server could not be reached.
 */
nu_err_t nu_db_connect(const char *url, int attempts, nu_db_t **out, struct nu_errbuf *eb);
void nu_db_close(nu_db_t *db); /* accepts NULL */

/* Is the connection usable? When not, nu_db_reset() tries once to re-establish it. */
bool nu_db_ok(const nu_db_t *db);
nu_err_t nu_db_reset(nu_db_t *db, struct nu_errbuf *eb);

/*
 * Run `sql` with `n` text parameters (`params[i]` NULL = SQL NULL; all borrowed). When `out`
 * is not NULL the rows are returned owned in *out (nu_db_res_free), else discarded. Blocks
 * until the server answers. Errors: as in the table above; the message quotes the server's.
 */
nu_err_t nu_db_query(nu_db_t *db, const char *sql, int n, const char *const *params,
                     nu_db_res_t **out, struct nu_errbuf *eb);
/* A fixed script (no parameters, rows discarded) of one or more statements: BEGIN, DDL,
 * migrations. Never pass text derived from input here. */
nu_err_t nu_db_exec(nu_db_t *db, const char *sql, struct nu_errbuf *eb);

/* Transactions: BEGIN / COMMIT / ROLLBACK. Rollback never fails (a broken connection drops the
 * transaction anyway), so it can sit on every error path. */
nu_err_t nu_db_begin(nu_db_t *db, struct nu_errbuf *eb);
nu_err_t nu_db_commit(nu_db_t *db, struct nu_errbuf *eb);
void nu_db_rollback(nu_db_t *db);

/* Rows of a result. Values are text, borrowed from the result (live until nu_db_res_free). */
int nu_db_res_rows(const nu_db_res_t *r);
bool nu_db_res_null(const nu_db_res_t *r, int row, int col);
const char *nu_db_res_get(const nu_db_res_t *r, int row, int col); /* "" for NULL */
int64_t nu_db_res_int(const nu_db_res_t *r, int row, int col);     /* 0 for NULL or junk */
void nu_db_res_free(nu_db_res_t *r);                               /* accepts NULL */

/* The error a SQLSTATE (5 characters; NULL = connection lost) maps to. */
nu_err_t nu_db_sqlstate_err(const char *sqlstate);

#endif
