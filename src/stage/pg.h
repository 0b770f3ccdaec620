/*
 * pg.h — the stage layer's small libpq wrapper, for the postgres_sink connector (layer: stage).
 *
 * A separate, minimal module (the coordinator keeps its own store wrapper): connecting with
 * back-off, parameterised statements, COPY FROM STDIN, savepoints, the mapping of SQLSTATEs onto
 * nu_err_t, and the pure text helpers the sink needs (identifier quoting, COPY text escaping):
 *   class 08, 57P01-57P03, 53xxx (resources), 40001 / 40P01, or a lost connection -> NU_ERR_DB
 *   class 21 (cardinality), 22 (data exception), 23 (integrity constraint)       -> NU_ERR_CORRUPT
 *   anything else                                                                 ->
 * NU_ERR_DB_FATAL NU_ERR_CORRUPT marks errors that belong to the rows written, not to the database.
 *
 * Thread-safety: a nu_pg_t is one connection and belongs to one thread at a time. The text
 * helpers are reentrant.
 */
#ifndef NU_STAGE_PG_H
#define NU_STAGE_PG_H

#include "common/buf.h"
#include "common/err.h"
#include "common/value.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct nu_pg nu_pg_t;

/* Most parameters one statement may take (PostgreSQL's own limit is 65535). */
#define NU_PG_MAX_PARAMS 4096

/*
 * Connect to `url` (libpq URL or key=value string; borrowed), up to `attempts` tries with
 * back-off from 100 ms to 2 s; each try bounded by connect_timeout (5 s unless the URL sets it).
 * *out returned owned (nu_pg_close). Errors: NU_ERR_CONFIG (no URL), NU_ERR_DB (unreachable).
 */
nu_err_t nu_pg_connect(const char *url, int attempts, nu_pg_t **out, struct nu_errbuf *eb);
void nu_pg_close(nu_pg_t *pg); /* accepts NULL */
/* Is the connection still usable? */
bool nu_pg_ok(const nu_pg_t *pg);

/*
 * Run one statement with `n` text parameters (params[i] NULL = SQL NULL; borrowed). *ntuples
 * (may be NULL) gets the number of rows returned, or affected for INSERT/UPDATE/DELETE. Blocks
 * until the server answers. Errors: as in the table above, quoting the server's message.
 */
nu_err_t nu_pg_exec(nu_pg_t *pg, const char *sql, int n, const char *const *params,
                    int64_t *ntuples, struct nu_errbuf *eb);

/* The same; *value (may be NULL) gets the first column of the first row returned, as text,
 * returned owned (free), or NULL when there is no row or it is SQL NULL. */
nu_err_t nu_pg_exec_value(nu_pg_t *pg, const char *sql, int n, const char *const *params,
                          int64_t *ntuples, char **value, struct nu_errbuf *eb);

/* COPY … FROM STDIN (`copy_sql`, fixed text) fed with `len` bytes of `data` (borrowed). */
nu_err_t nu_pg_copy(nu_pg_t *pg, const char *copy_sql, const void *data, size_t len,
                    struct nu_errbuf *eb);

/* Roll back the open transaction, if any; never fails (a lost connection drops it anyway). */
void nu_pg_rollback(nu_pg_t *pg);

/* The error SQLSTATE `state` (5 characters; NULL = connection lost) maps to. */
nu_err_t nu_pg_sqlstate_err(const char *state);

/*
 * Append to `out` the identifier `name` quoted for SQL: "a.b" is taken as schema "a" and table
 * "b" (at most one dot), each part in double quotes with embedded quotes doubled. Errors:
 * NU_ERR_INVALID for an empty part, more than one dot, a NUL-free length over
 * NU_MAX_NAME_LEN or a character below 0x20.
 */
nu_err_t nu_pg_quote_ident(const char *name, bool qualified, struct nu_buf *out,
                           struct nu_errbuf *eb);

/*
 * Append the text form of non-null value `v` to `out`, as PostgreSQL's input functions read
 * it: booleans t/f, numbers in full precision (non-finite doubles as NaN, Infinity,
 * -Infinity), text as is, bytea as \x followed by hex digits, arrays and maps as JSON (jsonb).
 */
void nu_pg_text_value(const struct nu_value *v, struct nu_buf *out);

/* Append `len` bytes of text escaped for COPY text format (backslash, newline, carriage return,
 * tab, vertical tab, backspace and form feed as backslash sequences). */
void nu_pg_copy_escape(const char *s, size_t len, struct nu_buf *out);

/* Append value `v` in COPY text format: \N for a null, else its escaped text form. `tmp` is
 * scratch space (reused between calls). */
void nu_pg_copy_value(const struct nu_value *v, struct nu_buf *tmp, struct nu_buf *out);

/* Append the JSON text of `v` (arrays, maps and scalars; bytes as "\\x<hex>" strings). */
void nu_pg_json_value(const struct nu_value *v, struct nu_buf *out);

/* The SQL type for a column type: bigint, double precision, text, bytea, boolean, jsonb
 * (arrays and maps) or text (an always-null column). */
const char *nu_pg_type_name(nu_type_t t);

#endif
