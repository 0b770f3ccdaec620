/* pg.c — libpq for the stage layer: connections, statements, COPY, SQLSTATEs, text helpers. */
#include "stage/pg.h"

#include "common/log.h"
#include "common/mem.h"

#include <libpq-fe.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct nu_pg {
    PGconn *conn;
};

static void nu_pg_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* libpq's message without its trailing newline. */
static void nu_pg_msg(const char *in, char *out, size_t len)
{
    snprintf(out, len, "%s", in != NULL && *in ? in : "unknown error");
    size_t n = strlen(out);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
        out[--n] = '\0';
}

static void nu_pg_notice(void *arg, const char *message)
{
    (void)arg;
    size_t n = strlen(message);
    while (n > 0 && message[n - 1] == '\n')
        n--;
    NU_LOG_DEBUG_AREA("sql", "pg", "notice: %.*s", (int)n, message);
}

nu_err_t nu_pg_connect(const char *url, int attempts, nu_pg_t **out, struct nu_errbuf *eb)
{
    nu_err_t err = NU_OK;
    nu_pg_t *pg = NULL;
    char msg[512];
    int delay = 100;

    *out = NULL;
    if (url == NULL || *url == '\0')
        return nu_err_set(eb, NU_ERR_CONFIG,
                          "no database URL given (set \"url\" or NURION_DATABASE_URL)");
    if (attempts < 1)
        attempts = 1;
    pg = nu_xcalloc(1, sizeof(*pg));
    for (int i = 0; i < attempts; i++) {
        const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
        const char *const vals[] = {"5", "nurion-stage", url, NULL};
        if (pg->conn != NULL)
            PQfinish(pg->conn);
        pg->conn = PQconnectdbParams(keys, vals, 1);
        if (pg->conn != NULL && PQstatus(pg->conn) == CONNECTION_OK)
            break;
        nu_pg_msg(pg->conn != NULL ? PQerrorMessage(pg->conn) : "out of memory", msg, sizeof(msg));
        if (i + 1 == attempts) {
            err = nu_err_set(eb, NU_ERR_DB, "could not connect to the database: %s", msg);
            goto out;
        }
        nu_pg_sleep_ms(delay);
        delay = delay * 2 > 2000 ? 2000 : delay * 2;
    }
    PQsetNoticeProcessor(pg->conn, nu_pg_notice, NULL);
    *out = pg;
    pg = NULL;
out:
    nu_pg_close(pg);
    return err;
}

void nu_pg_close(nu_pg_t *pg)
{
    if (!pg)
        return;
    if (pg->conn)
        PQfinish(pg->conn);
    free(pg);
}

bool nu_pg_ok(const nu_pg_t *pg)
{
    return pg && pg->conn && PQstatus(pg->conn) == CONNECTION_OK;
}

nu_err_t nu_pg_sqlstate_err(const char *state)
{
    if (state == NULL || strlen(state) != 5)
        return NU_ERR_DB;
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "53", 2) == 0 ||
        strcmp(state, "57P01") == 0 || strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0 ||
        strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)
        return NU_ERR_DB;
    if (strncmp(state, "23", 2) == 0 || strncmp(state, "22", 2) == 0 ||
        strncmp(state, "21", 2) == 0)
        return NU_ERR_CORRUPT;
    return NU_ERR_DB_FATAL;
}

/* Map a failed result (or a lost connection when res is NULL) into eb. */
static nu_err_t nu_pg_fail(nu_pg_t *pg, PGresult *res, const char *what, struct nu_errbuf *eb)
{
    char msg[768];
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *text = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    nu_err_t code;

    if (!text || !*text)
        text = res ? PQresultErrorMessage(res) : NULL;
    if (!text || !*text)
        text = PQerrorMessage(pg->conn);
    nu_pg_msg(text, msg, sizeof(msg));
    code = PQstatus(pg->conn) != CONNECTION_OK ? NU_ERR_DB : nu_pg_sqlstate_err(state);
    if (state)
        return nu_err_set(eb, code, "%s failed: %s (SQLSTATE %s)", what, msg, state);
    return nu_err_set(eb, code, "%s failed: %s", what, msg);
}

nu_err_t nu_pg_exec(nu_pg_t *pg, const char *sql, int n, const char *const *params,
                    int64_t *ntuples, struct nu_errbuf *eb)
{
    return nu_pg_exec_value(pg, sql, n, params, ntuples, NULL, eb);
}

nu_err_t nu_pg_exec_value(nu_pg_t *pg, const char *sql, int n, const char *const *params,
                          int64_t *ntuples, char **value, struct nu_errbuf *eb)
{
    PGresult *res = NULL;
    nu_err_t err = NU_OK;

    if (ntuples)
        *ntuples = 0;
    if (value)
        *value = NULL;
    if (n < 0 || n > NU_PG_MAX_PARAMS)
        return nu_err_set(eb, NU_ERR_INVALID, "statement has %d parameters, at most %d allowed", n,
                          NU_PG_MAX_PARAMS);
    res = PQexecParams(pg->conn, sql, n, NULL, params, NULL, NULL, 0);
    if (!res) {
        err = nu_pg_fail(pg, NULL, "statement", eb);
        goto out;
    }
    switch (PQresultStatus(res)) {
    case PGRES_TUPLES_OK:
        if (ntuples)
            *ntuples = PQntuples(res);
        if (value && PQntuples(res) > 0 && PQnfields(res) > 0 && !PQgetisnull(res, 0, 0))
            *value = nu_xstrdup(PQgetvalue(res, 0, 0));
        break;
    case PGRES_COMMAND_OK:
        if (ntuples)
            *ntuples = strtoll(PQcmdTuples(res), NULL, 10);
        break;
    default:
        err = nu_pg_fail(pg, res, "statement", eb);
    }
out:
    PQclear(res);
    return err;
}

nu_err_t nu_pg_copy(nu_pg_t *pg, const char *copy_sql, const void *data, size_t len,
                    struct nu_errbuf *eb)
{
    PGresult *res = PQexec(pg->conn, copy_sql);
    nu_err_t err = NU_OK;
    const char *p = data;

    if (!res || PQresultStatus(res) != PGRES_COPY_IN) {
        err = nu_pg_fail(pg, res, "COPY", eb);
        goto out;
    }
    PQclear(res);
    res = NULL;
    /* PQputCopyData takes an int length: feed in chunks */
    while (len > 0) {
        int chunk = len > (1u << 20) ? (1 << 20) : (int)len;
        if (PQputCopyData(pg->conn, p, chunk) != 1) {
            err = nu_pg_fail(pg, NULL, "COPY", eb);
            goto out;
        }
        p += chunk;
        len -= (size_t)chunk;
    }
    if (PQputCopyEnd(pg->conn, NULL) != 1) {
        err = nu_pg_fail(pg, NULL, "COPY", eb);
        goto out;
    }
    while ((res = PQgetResult(pg->conn)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK && err == NU_OK)
            err = nu_pg_fail(pg, res, "COPY", eb);
        PQclear(res);
    }
out:
    PQclear(res);
    return err;
}

void nu_pg_rollback(nu_pg_t *pg)
{
    if (!nu_pg_ok(pg))
        return;
    if (PQtransactionStatus(pg->conn) == PQTRANS_IDLE)
        return;
    PQclear(PQexec(pg->conn, "ROLLBACK"));
}

/* --- text helpers --- */

nu_err_t nu_pg_quote_ident(const char *name, bool qualified, struct nu_buf *out,
                           struct nu_errbuf *eb)
{
    size_t len = name ? strlen(name) : 0;
    const char *dot = qualified && name ? strchr(name, '.') : NULL;

    if (len == 0 || len > 2 * NU_MAX_NAME_LEN)
        return nu_err_set(eb, NU_ERR_INVALID, "identifier \"%s\" is empty or too long",
                          name ? name : "");
    if (dot && (dot == name || dot[1] == '\0' || strchr(dot + 1, '.')))
        return nu_err_set(eb, NU_ERR_INVALID,
                          "table name \"%s\" must be \"table\" or \"schema.table\"", name);
    for (const char *p = name; *p; p++)
        if ((unsigned char)*p < 0x20)
            return nu_err_set(eb, NU_ERR_INVALID, "identifier \"%s\" has a control character",
                              name);
    nu_buf_putc(out, '"');
    for (const char *p = name; *p; p++) {
        if (p == dot) {
            nu_buf_append(out, "\".\"", 3);
            continue;
        }
        if (*p == '"')
            nu_buf_putc(out, '"');
        nu_buf_putc(out, (unsigned char)*p);
    }
    nu_buf_putc(out, '"');
    return NU_OK;
}

static void nu_pg_hex(const char *p, size_t len, struct nu_buf *out)
{
    static const char digits[] = "0123456789abcdef";
    unsigned char *d = nu_buf_reserve(out, 2 * len);
    for (size_t i = 0; i < len; i++) {
        d[2 * i] = (unsigned char)digits[(unsigned char)p[i] >> 4];
        d[2 * i + 1] = (unsigned char)digits[(unsigned char)p[i] & 15];
    }
    out->len += 2 * len;
}

static void nu_pg_double(double d, struct nu_buf *out)
{
    char tmp[40];
    if (isnan(d))
        snprintf(tmp, sizeof(tmp), "NaN");
    else if (isinf(d))
        snprintf(tmp, sizeof(tmp), "%s", d > 0 ? "Infinity" : "-Infinity");
    else
        snprintf(tmp, sizeof(tmp), "%.17g", d);
    nu_buf_append(out, tmp, strlen(tmp));
}

static void nu_pg_json_string(const char *s, size_t len, struct nu_buf *out)
{
    nu_buf_putc(out, '"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            nu_buf_putc(out, '\\');
            nu_buf_putc(out, c);
        } else if (c < 0x20) {
            char tmp[8];
            snprintf(tmp, sizeof(tmp), "\\u%04x", c);
            nu_buf_append(out, tmp, 6);
        } else {
            nu_buf_putc(out, c);
        }
    }
    nu_buf_putc(out, '"');
}

void nu_pg_json_value(const struct nu_value *v, struct nu_buf *out)
{
    char tmp[32];
    switch (v->type) {
    case NU_T_NULL:
        nu_buf_append(out, "null", 4);
        break;
    case NU_T_BOOL:
        nu_buf_append(out, v->u.b ? "true" : "false", v->u.b ? 4 : 5);
        break;
    case NU_T_INT64:
        snprintf(tmp, sizeof(tmp), "%lld", (long long)v->u.i);
        nu_buf_append(out, tmp, strlen(tmp));
        break;
    case NU_T_DOUBLE:
        if (isfinite(v->u.d)) {
            nu_pg_double(v->u.d, out);
        } else {
            nu_buf_putc(out, '"');
            nu_pg_double(v->u.d, out);
            nu_buf_putc(out, '"');
        }
        break;
    case NU_T_STRING:
        nu_pg_json_string(v->u.s.ptr, v->u.s.len, out);
        break;
    case NU_T_BYTES:
        nu_buf_append(out, "\"\\\\x", 4);
        nu_pg_hex(v->u.s.ptr, v->u.s.len, out);
        nu_buf_putc(out, '"');
        break;
    case NU_T_ARRAY:
        nu_buf_putc(out, '[');
        for (size_t i = 0; i < v->u.arr.n; i++) {
            if (i)
                nu_buf_putc(out, ',');
            nu_pg_json_value(&v->u.arr.items[i], out);
        }
        nu_buf_putc(out, ']');
        break;
    case NU_T_MAP:
        nu_buf_putc(out, '{');
        for (size_t i = 0; i < v->u.map.n; i++) {
            if (i)
                nu_buf_putc(out, ',');
            nu_pg_json_string(v->u.map.keys[i].u.s.ptr, v->u.map.keys[i].u.s.len, out);
            nu_buf_putc(out, ':');
            nu_pg_json_value(&v->u.map.vals[i], out);
        }
        nu_buf_putc(out, '}');
        break;
    }
}

void nu_pg_text_value(const struct nu_value *v, struct nu_buf *out)
{
    char tmp[32];
    switch (v->type) {
    case NU_T_NULL:
        break;
    case NU_T_BOOL:
        nu_buf_putc(out, v->u.b ? 't' : 'f');
        break;
    case NU_T_INT64:
        snprintf(tmp, sizeof(tmp), "%lld", (long long)v->u.i);
        nu_buf_append(out, tmp, strlen(tmp));
        break;
    case NU_T_DOUBLE:
        nu_pg_double(v->u.d, out);
        break;
    case NU_T_STRING:
        nu_buf_append(out, v->u.s.ptr, v->u.s.len);
        break;
    case NU_T_BYTES:
        nu_buf_append(out, "\\x", 2);
        nu_pg_hex(v->u.s.ptr, v->u.s.len, out);
        break;
    case NU_T_ARRAY:
    case NU_T_MAP:
        nu_pg_json_value(v, out);
        break;
    }
}

void nu_pg_copy_escape(const char *s, size_t len, struct nu_buf *out)
{
    for (size_t i = 0; i < len; i++) {
        char c = s[i], e = 0;
        switch (c) {
        case '\\':
            e = '\\';
            break;
        case '\n':
            e = 'n';
            break;
        case '\r':
            e = 'r';
            break;
        case '\t':
            e = 't';
            break;
        case '\v':
            e = 'v';
            break;
        case '\b':
            e = 'b';
            break;
        case '\f':
            e = 'f';
            break;
        default:
            break;
        }
        if (e) {
            nu_buf_putc(out, '\\');
            nu_buf_putc(out, (unsigned char)e);
        } else {
            nu_buf_putc(out, (unsigned char)c);
        }
    }
}

void nu_pg_copy_value(const struct nu_value *v, struct nu_buf *tmp, struct nu_buf *out)
{
    if (v->type == NU_T_NULL) {
        nu_buf_append(out, "\\N", 2);
        return;
    }
    nu_buf_reset(tmp);
    nu_pg_text_value(v, tmp);
    nu_pg_copy_escape((const char *)tmp->data, tmp->len, out);
}

const char *nu_pg_type_name(nu_type_t t)
{
    switch (t) {
    case NU_T_BOOL:
        return "boolean";
    case NU_T_INT64:
        return "bigint";
    case NU_T_DOUBLE:
        return "double precision";
    case NU_T_BYTES:
        return "bytea";
    case NU_T_ARRAY:
    case NU_T_MAP:
        return "jsonb";
    default:
        return "text";
    }
}
