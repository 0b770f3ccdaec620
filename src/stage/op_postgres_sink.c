/*
 * op_postgres_sink.c — the `postgres_sink` sink: rows into a PostgreSQL table, once per split.
 *
 * Config {"url": "postgresql://…" (default: environment NURION_DATABASE_URL), "table": "name" or
 * "schema.name", "create": false, "mode": "ledger" | "upsert", "key": ["col", …] (upsert),
 * "batch_rows": 1000}.
 *
 * ledger (default): one database transaction per split inserts the row (job, stage, split_id)
 * into nurion_split_ledger with ON CONFLICT DO NOTHING first — when it is already there the split
 * was written before (a retry, a replay after a crash) and nothing more is done — then COPYs
 * the rows (text format) and commits. upsert: INSERT … ON CONFLICT (key) DO UPDATE in statements
 * of batch_rows rows, idempotent by nature.
 *
 * Bad rows: when the bulk write fails on a row's data (SQLSTATE class 21, 22 or 23: a NOT NULL,
 * CHECK, unique or foreign-key violation, a bad value), the split is written again row by row,
 * each inside a savepoint; the rows the database refuses are dead-lettered one by one with its
 * message (ctx->reject) and the good rows are committed. In ledger mode the rejected row indexes
 * and reasons are kept in the ledger row, so a replay of an already written split dead-letters
 * the same rows again (the dead letters ride the stage's Kafka transaction, which a crash may
 * have lost). Connection loss and other retriable errors return NU_ERR_DB: the runtime retries
 * the split, which reconnects with back-off.
 *
 * create: true creates the table when missing, columns typed from the input schema (int64
 * bigint, double double precision, string text, bytes bytea, boolean boolean, array/map jsonb;
 * NOT NULL for non-nullable columns; the key as primary key in upsert mode).
 */
#include "stage/connectors_int.h"

#include "common/buf.h"
#include "common/mem.h"
#include "stage/pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NU_PGSINK_MAX_BATCH_ROWS 100000LL
#define NU_PGSINK_MAX_KEYS       32
#define NU_PGSINK_CONNECT_TRIES  4
/* Most rejected rows remembered in a ledger row (beyond it the whole split fails). */
#define NU_PGSINK_MAX_REJECTS 100000

enum { NU_PGSINK_LEDGER = 0, NU_PGSINK_UPSERT = 1 };

struct nu_pgsink_conf {
    const char *url, *table;
    bool create;
    int mode;
    long long batch_rows;
    const json_t *key;
};

struct nu_pgsink {
    struct nu_pgsink_conf c;
    char *url, *job, *stage;
    char *qtable; /* the table name quoted for SQL */
    char **keys;
    size_t nkeys;
    nu_pg_t *pg;
    bool ready;                /* ledger and table created */
    struct nu_schema *schema;  /* the schema the SQL below was built for (reference) */
    char *copy_sql, *row_sql;  /* COPY … FROM STDIN; one-row INSERT (upsert: with ON CONFLICT) */
    char *ins_head, *ins_tail; /* INSERT … VALUES | ON CONFLICT … (for multi-row statements) */
    struct nu_buf sql, data, tmp;
};

static const char *const nu_pgsink_fields[] = {"url",  "table", "create",
                                               "mode", "key",   "batch_rows"};
static const char *const nu_pgsink_modes[] = {"ledger", "upsert"};

static void nu_pgsink_parse(const json_t *config, const char *path, struct nu_problems *p,
                            struct nu_pgsink_conf *c)
{
    struct nu_json_path jp;
    struct nu_errbuf eb;
    struct nu_buf q = NU_BUF_INIT;

    memset(c, 0, sizeof(*c));
    c->batch_rows = 1000;
    nu_builtin_path_init(&jp, path);
    if (!nu_builtin_expect_object(config, &jp, p))
        return;
    nu_json_check_fields(config, nu_pgsink_fields, 6, &jp, p);
    nu_conn_get_string(config, "url", false, &jp, p, &c->url);
    if (nu_conn_get_string(config, "table", true, &jp, p, &c->table) && c->table) {
        nu_errbuf_clear(&eb);
        if (nu_pg_quote_ident(c->table, true, &q, &eb) != NU_OK) {
            size_t mark = nu_json_path_push_key(&jp, "table");
            nu_problems_add(p, jp.buf, "%s", nu_err_msg(&eb));
            nu_json_path_pop(&jp, mark);
        }
    }
    nu_buf_free(&q);
    nu_conn_get_bool(config, "create", &jp, p, &c->create);
    nu_conn_get_enum(config, "mode", nu_pgsink_modes, 2, &jp, p, &c->mode);
    nu_builtin_get_int(config, "batch_rows", 1, NU_PGSINK_MAX_BATCH_ROWS, false, 1000, &jp, p,
                       &c->batch_rows);
    c->key = json_object_get(config, "key");
    if (c->key) {
        size_t mark = nu_json_path_push_key(&jp, "key");
        size_t n = json_is_array(c->key) ? json_array_size(c->key) : 0;
        bool ok = n > 0 && n <= NU_PGSINK_MAX_KEYS;
        for (size_t i = 0; ok && i < n; i++)
            ok = json_is_string(json_array_get(c->key, i)) &&
                 json_string_length(json_array_get(c->key, i)) > 0;
        if (!ok)
            nu_problems_add(p, jp.buf, "expected an array of 1 to %d column names",
                            NU_PGSINK_MAX_KEYS);
        nu_json_path_pop(&jp, mark);
    }
    if (c->mode == NU_PGSINK_UPSERT && !c->key)
        nu_problems_add(p, jp.buf, "mode \"upsert\" needs \"key\": the conflict columns");
    if (c->mode == NU_PGSINK_LEDGER && c->key)
        nu_problems_add(p, jp.buf, "\"key\" is only used in mode \"upsert\"");
}

static void nu_pgsink_validate(const json_t *config, const char *path, struct nu_problems *p)
{
    struct nu_pgsink_conf c;
    nu_pgsink_parse(config, path, p, &c);
}

static nu_err_t nu_pgsink_schema(const json_t *config, const struct nu_schema *in, const char *path,
                                 struct nu_problems *p, struct nu_schema **out,
                                 struct nu_errbuf *eb)
{
    const json_t *key = json_object_get(config, "key");
    *out = NULL;
    for (size_t i = 0; in && json_is_array(key) && i < json_array_size(key); i++) {
        const char *k = json_string_value(json_array_get(key, i));
        if (k && nu_schema_find(in, k) < 0)
            return nu_builtin_fault(p, eb, NU_ERR_TYPE, path,
                                    "key column \"%s\" is not a column of the input", k);
    }
    return NU_OK;
}

static void nu_pgsink_close(void *state)
{
    struct nu_pgsink *s = state;
    if (!s)
        return;
    nu_pg_close(s->pg);
    for (size_t i = 0; i < s->nkeys; i++)
        free(s->keys[i]);
    free(s->keys);
    free(s->url);
    free(s->qtable);
    free(s->job);
    free(s->stage);
    free(s->copy_sql);
    free(s->row_sql);
    free(s->ins_head);
    free(s->ins_tail);
    nu_schema_unref(s->schema);
    nu_buf_free(&s->sql);
    nu_buf_free(&s->data);
    nu_buf_free(&s->tmp);
    free(s);
}

static nu_err_t nu_pgsink_open(const struct nu_op_open_args *args, void **state,
                               struct nu_errbuf *eb)
{
    struct nu_pgsink *s = NULL;
    struct nu_problems p;
    struct nu_buf q = NU_BUF_INIT;
    const char *url;
    nu_err_t rc;

    *state = NULL;
    rc = nu_builtin_check_config(&nu_op_postgres_sink, args->config, eb);
    if (rc != NU_OK)
        return rc;
    s = nu_xcalloc(1, sizeof(*s));
    nu_problems_init(&p);
    nu_pgsink_parse(args->config, "$", &p, &s->c);
    nu_problems_free(&p);
    url = s->c.url ? s->c.url : getenv("NURION_DATABASE_URL");
    if (!url || !*url) {
        rc = nu_err_set(eb, NU_ERR_CONFIG,
                        "postgres_sink: no database URL (set \"url\" or NURION_DATABASE_URL)");
        goto out;
    }
    rc = nu_pg_quote_ident(s->c.table, true, &q, eb);
    if (rc != NU_OK)
        goto out;
    s->qtable = nu_xstrndup((const char *)q.data, q.len);
    s->url = nu_xstrdup(url);
    s->job = nu_xstrdup(args->job_id ? args->job_id : "");
    s->stage = nu_xstrdup(args->stage_id ? args->stage_id : "");
    s->nkeys = s->c.key ? json_array_size(s->c.key) : 0;
    s->keys = nu_xcalloc(s->nkeys ? s->nkeys : 1, sizeof(*s->keys));
    for (size_t i = 0; i < s->nkeys; i++)
        s->keys[i] = nu_xstrdup(json_string_value(json_array_get(s->c.key, i)));
    /* the rest of the parsed config points into args->config: drop it */
    s->c.url = s->c.table = NULL;
    s->c.key = NULL;
    *state = s;
    s = NULL;
out:
    nu_buf_free(&q);
    nu_pgsink_close(s);
    return rc;
}

/* Append "($first, …, $first+n-1)" to b. */
static void nu_pgsink_placeholders(struct nu_buf *b, size_t first, size_t n)
{
    char num[32];
    nu_buf_putc(b, '(');
    for (size_t i = 0; i < n; i++) {
        snprintf(num, sizeof(num), "%s$%zu", i ? ", " : "", first + i);
        nu_buf_append(b, num, strlen(num));
    }
    nu_buf_putc(b, ')');
}

/* Build the SQL for input schema `in` (cached per schema). */
static nu_err_t nu_pgsink_build(struct nu_pgsink *s, struct nu_schema *in, struct nu_errbuf *eb)
{
    struct nu_buf cols = NU_BUF_INIT, b = NU_BUF_INIT;
    nu_err_t rc = NU_OK;

    if (s->schema && (s->schema == in || nu_schema_equal(s->schema, in)))
        return NU_OK;
    if (in->ncols == 0)
        return nu_err_set(eb, NU_ERR_SCHEMA, "postgres_sink: the input has no columns");
    for (size_t k = 0; k < s->nkeys; k++)
        if (nu_schema_find(in, s->keys[k]) < 0) {
            rc = nu_err_set(eb, NU_ERR_SCHEMA,
                            "postgres_sink: key column \"%s\" is not in the input", s->keys[k]);
            goto out;
        }
    for (size_t i = 0; i < in->ncols && rc == NU_OK; i++) {
        if (i)
            nu_buf_append(&cols, ", ", 2);
        rc = nu_pg_quote_ident(in->cols[i].name, false, &cols, eb);
    }
    if (rc != NU_OK)
        goto out;
    nu_buf_putc(&cols, 0);
    free(s->copy_sql);
    free(s->row_sql);
    free(s->ins_head);
    free(s->ins_tail);
    s->copy_sql = nu_xasprintf("COPY %s (%s) FROM STDIN", s->qtable, (char *)cols.data);
    s->ins_head = nu_xasprintf("INSERT INTO %s (%s) VALUES ", s->qtable, (char *)cols.data);
    if (s->c.mode == NU_PGSINK_UPSERT) {
        bool any = false;
        nu_buf_append(&b, " ON CONFLICT (", 14);
        for (size_t k = 0; k < s->nkeys; k++) {
            if (k)
                nu_buf_append(&b, ", ", 2);
            nu_pg_quote_ident(s->keys[k], false, &b, NULL);
        }
        nu_buf_append(&b, ") DO UPDATE SET ", 16);
        for (size_t i = 0; i < in->ncols; i++) {
            bool is_key = false;
            for (size_t k = 0; k < s->nkeys; k++)
                is_key |= strcmp(s->keys[k], in->cols[i].name) == 0;
            if (is_key)
                continue;
            if (any)
                nu_buf_append(&b, ", ", 2);
            nu_pg_quote_ident(in->cols[i].name, false, &b, NULL);
            nu_buf_append(&b, " = EXCLUDED.", 12);
            nu_pg_quote_ident(in->cols[i].name, false, &b, NULL);
            any = true;
        }
        if (!any) { /* every column is part of the key */
            b.len -= 16;
            nu_buf_append(&b, ") DO NOTHING", 12);
        }
    }
    nu_buf_putc(&b, 0);
    s->ins_tail = nu_xstrdup((char *)b.data);
    nu_buf_reset(&b);
    nu_buf_append(&b, s->ins_head, strlen(s->ins_head));
    nu_pgsink_placeholders(&b, 1, in->ncols);
    nu_buf_append(&b, s->ins_tail, strlen(s->ins_tail) + 1);
    s->row_sql = nu_xstrdup((char *)b.data);
    nu_schema_unref(s->schema);
    s->schema = nu_schema_ref(in);
    s->ready = false;
out:
    nu_buf_free(&cols);
    nu_buf_free(&b);
    return rc;
}

/* Connect when there is no usable connection; create the ledger and the table once. */
static nu_err_t nu_pgsink_ready(struct nu_pgsink *s, const struct nu_schema *in,
                                struct nu_errbuf *eb)
{
    static const char ledger_sql[] =
        "CREATE TABLE IF NOT EXISTS nurion_split_ledger (job text NOT NULL, stage text NOT NULL, "
        "split_id text NOT NULL, rows bigint NOT NULL, rejects jsonb, written_at timestamptz NOT "
        "NULL DEFAULT now(), PRIMARY KEY (job, stage, split_id))";
    struct nu_buf b = NU_BUF_INIT;
    nu_err_t rc = NU_OK;

    if (!nu_pg_ok(s->pg)) {
        nu_pg_close(s->pg);
        s->pg = NULL;
        s->ready = false;
        rc = nu_pg_connect(s->url, NU_PGSINK_CONNECT_TRIES, &s->pg, eb);
        if (rc != NU_OK)
            goto out;
    }
    if (s->ready)
        goto out;
    if (s->c.mode == NU_PGSINK_LEDGER)
        rc = nu_pg_exec(s->pg, ledger_sql, 0, NULL, NULL, eb);
    if (rc == NU_OK && s->c.create) {
        nu_buf_append(&b, "CREATE TABLE IF NOT EXISTS ", 27);
        nu_buf_append(&b, s->qtable, strlen(s->qtable));
        nu_buf_append(&b, " (", 2);
        for (size_t i = 0; i < in->ncols; i++) {
            const char *t = nu_pg_type_name(in->cols[i].type);
            if (i)
                nu_buf_append(&b, ", ", 2);
            nu_pg_quote_ident(in->cols[i].name, false, &b, NULL);
            nu_buf_putc(&b, ' ');
            nu_buf_append(&b, t, strlen(t));
            if (!in->cols[i].nullable && in->cols[i].type != NU_T_NULL)
                nu_buf_append(&b, " NOT NULL", 9);
        }
        if (s->nkeys) {
            nu_buf_append(&b, ", PRIMARY KEY (", 15);
            for (size_t k = 0; k < s->nkeys; k++) {
                if (k)
                    nu_buf_append(&b, ", ", 2);
                nu_pg_quote_ident(s->keys[k], false, &b, NULL);
            }
            nu_buf_putc(&b, ')');
        }
        nu_buf_append(&b, ")", 2);
        rc = nu_pg_exec(s->pg, (const char *)b.data, 0, NULL, NULL, eb);
    }
    /* instances creating the same table at once may collide in the catalog: retry the split */
    if (rc == NU_ERR_CORRUPT)
        rc = NU_ERR_DB;
    s->ready = rc == NU_OK;
out:
    nu_buf_free(&b);
    return rc;
}

/* Text parameters of rows [first, first+n) of `in` into s->data; pointers into params. */
static void nu_pgsink_params(struct nu_pgsink *s, const struct nu_batch *in, size_t first, size_t n,
                             const char **params)
{
    size_t ncols = in->schema->ncols, k = 0;
    size_t *offs = nu_xmalloc(n * ncols * sizeof(*offs));

    nu_buf_reset(&s->data);
    for (size_t r = first; r < first + n; r++) {
        const struct nu_value *row = nu_batch_row(in, r);
        for (size_t c = 0; c < ncols; c++, k++) {
            if (row[c].type == NU_T_NULL) {
                offs[k] = SIZE_MAX;
                continue;
            }
            offs[k] = s->data.len;
            nu_pg_text_value(&row[c], &s->data);
            nu_buf_putc(&s->data, 0);
        }
    }
    for (size_t i = 0; i < k; i++)
        params[i] = offs[i] == SIZE_MAX ? NULL : (const char *)s->data.data + offs[i];
    free(offs);
}

/* Insert the ledger row of the split; *fresh is false when it was there already. */
static nu_err_t nu_pgsink_ledger_claim(struct nu_pgsink *s, const char *split, size_t rows,
                                       bool *fresh, struct nu_errbuf *eb)
{
    char nrows[32];
    const char *params[4] = {s->job, s->stage, split, nrows};
    int64_t n = 0;
    nu_err_t rc;

    snprintf(nrows, sizeof(nrows), "%zu", rows);
    rc = nu_pg_exec(s->pg,
                    "INSERT INTO nurion_split_ledger (job, stage, split_id, rows) VALUES ($1, $2, "
                    "$3, $4) ON CONFLICT DO NOTHING",
                    4, params, &n, eb);
    *fresh = n == 1;
    return rc;
}

/* The split is in the ledger already: dead-letter again the rows it rejected then. */
static nu_err_t nu_pgsink_replay(struct nu_pgsink *s, const struct nu_op_batch_ctx *ctx,
                                 const struct nu_batch *in, struct nu_errbuf *eb)
{
    const char *params[3] = {s->job, s->stage, ctx->split_id};
    char *text = NULL;
    json_t *arr = NULL, *item;
    size_t i;
    nu_err_t rc;

    rc = nu_pg_exec_value(s->pg,
                          "SELECT rejects FROM nurion_split_ledger WHERE job = $1 AND stage = $2 "
                          "AND split_id = $3",
                          3, params, NULL, &text, eb);
    if (rc != NU_OK || !text)
        goto out;
    arr = json_loads(text, 0, NULL);
    json_array_foreach(arr, i, item)
    {
        json_int_t row = json_integer_value(json_array_get(item, 0));
        const char *why = json_string_value(json_array_get(item, 1));
        if (row < 0 || (size_t)row >= in->nrows || !why)
            continue;
        rc = nu_op_reject_row(ctx, in, (size_t)row, NULL, 0, NU_ERR_CORRUPT, why, eb);
        if (rc != NU_OK)
            break;
    }
out:
    json_decref(arr);
    free(text);
    return rc;
}

/* The fast path: the whole split in one transaction (COPY, or multi-row upserts). */
static nu_err_t nu_pgsink_write_bulk(struct nu_pgsink *s, const struct nu_op_batch_ctx *ctx,
                                     const struct nu_batch *in, struct nu_errbuf *eb)
{
    size_t ncols = in->schema->ncols;
    const char **params = NULL;
    struct nu_buf sql = NU_BUF_INIT;
    bool fresh = true;
    nu_err_t rc = nu_pg_exec(s->pg, "BEGIN", 0, NULL, NULL, eb);

    if (rc == NU_OK && s->c.mode == NU_PGSINK_LEDGER)
        rc = nu_pgsink_ledger_claim(s, ctx->split_id, in->nrows, &fresh, eb);
    if (rc != NU_OK)
        goto out;
    if (!fresh) {
        rc = nu_pgsink_replay(s, ctx, in, eb);
        nu_pg_rollback(s->pg);
        goto out;
    }
    if (s->c.mode == NU_PGSINK_LEDGER) {
        nu_buf_reset(&s->sql);
        for (size_t r = 0; r < in->nrows; r++) {
            const struct nu_value *row = nu_batch_row(in, r);
            for (size_t c = 0; c < ncols; c++) {
                if (c)
                    nu_buf_putc(&s->sql, '\t');
                nu_pg_copy_value(&row[c], &s->tmp, &s->sql);
            }
            nu_buf_putc(&s->sql, '\n');
        }
        if (in->nrows)
            rc = nu_pg_copy(s->pg, s->copy_sql, s->sql.data, s->sql.len, eb);
    } else {
        size_t chunk = (size_t)s->c.batch_rows;
        if (chunk * ncols > NU_PG_MAX_PARAMS)
            chunk = NU_PG_MAX_PARAMS / ncols ? NU_PG_MAX_PARAMS / ncols : 1;
        params = nu_xcalloc(chunk * ncols, sizeof(*params));
        for (size_t r = 0; r < in->nrows && rc == NU_OK; r += chunk) {
            size_t n = in->nrows - r < chunk ? in->nrows - r : chunk;
            nu_buf_reset(&sql);
            nu_buf_append(&sql, s->ins_head, strlen(s->ins_head));
            for (size_t k = 0; k < n; k++) {
                if (k)
                    nu_buf_append(&sql, ", ", 2);
                nu_pgsink_placeholders(&sql, k * ncols + 1, ncols);
            }
            nu_buf_append(&sql, s->ins_tail, strlen(s->ins_tail) + 1);
            nu_pgsink_params(s, in, r, n, params);
            rc = nu_pg_exec(s->pg, (const char *)sql.data, (int)(n * ncols), params, NULL, eb);
        }
    }
    if (rc == NU_OK)
        rc = nu_pg_exec(s->pg, "COMMIT", 0, NULL, NULL, eb);
out:
    if (rc != NU_OK)
        nu_pg_rollback(s->pg);
    free(params);
    nu_buf_free(&sql);
    return rc;
}

/* The careful path: row by row in savepoints; rows the database refuses are dead-lettered. */
static nu_err_t nu_pgsink_write_rows(struct nu_pgsink *s, const struct nu_op_batch_ctx *ctx,
                                     const struct nu_batch *in, struct nu_errbuf *eb)
{
    size_t ncols = in->schema->ncols, nrej = 0;
    const char **params = nu_xcalloc(ncols, sizeof(*params));
    json_t *rejects = json_array();
    char *rtext = NULL;
    bool fresh = true;
    nu_err_t rc = nu_pg_exec(s->pg, "BEGIN", 0, NULL, NULL, eb);

    if (rc == NU_OK && s->c.mode == NU_PGSINK_LEDGER)
        rc = nu_pgsink_ledger_claim(s, ctx->split_id, in->nrows, &fresh, eb);
    if (rc != NU_OK)
        goto out;
    if (!fresh) {
        rc = nu_pgsink_replay(s, ctx, in, eb);
        nu_pg_rollback(s->pg);
        goto out;
    }
    for (size_t r = 0; r < in->nrows && rc == NU_OK; r++) {
        struct nu_errbuf row_eb;
        nu_errbuf_clear(&row_eb);
        rc = nu_pg_exec(s->pg, "SAVEPOINT nu_row", 0, NULL, NULL, eb);
        if (rc != NU_OK)
            break;
        nu_pgsink_params(s, in, r, 1, params);
        nu_err_t rerr = nu_pg_exec(s->pg, s->row_sql, (int)ncols, params, NULL, &row_eb);
        if (rerr == NU_OK) {
            rc = nu_pg_exec(s->pg, "RELEASE SAVEPOINT nu_row", 0, NULL, NULL, eb);
        } else if (rerr == NU_ERR_CORRUPT && nrej < NU_PGSINK_MAX_REJECTS) {
            rc = nu_pg_exec(s->pg, "ROLLBACK TO SAVEPOINT nu_row", 0, NULL, NULL, eb);
            if (rc == NU_OK)
                rc = nu_op_reject_row(ctx, in, r, NULL, 0, NU_ERR_CORRUPT, nu_err_msg(&row_eb), eb);
            json_array_append_new(rejects, json_pack("[Is]", (json_int_t)r, nu_err_msg(&row_eb)));
            nrej++;
        } else {
            rc = nu_err_set(eb, rerr, "%s", nu_err_msg(&row_eb));
        }
    }
    if (rc == NU_OK && s->c.mode == NU_PGSINK_LEDGER) {
        char nrows[32];
        rtext = json_dumps(rejects, JSON_COMPACT);
        snprintf(nrows, sizeof(nrows), "%zu", in->nrows - nrej);
        const char *up[5] = {s->job, s->stage, ctx->split_id, nrows, nrej ? rtext : NULL};
        rc = nu_pg_exec(s->pg,
                        "UPDATE nurion_split_ledger SET rows = $4, rejects = $5 WHERE job = $1 AND "
                        "stage = $2 AND split_id = $3",
                        5, up, NULL, eb);
    }
    if (rc == NU_OK)
        rc = nu_pg_exec(s->pg, "COMMIT", 0, NULL, NULL, eb);
out:
    if (rc != NU_OK)
        nu_pg_rollback(s->pg);
    json_decref(rejects);
    free(rtext);
    free(params);
    return rc;
}

static nu_err_t nu_pgsink_process(void *state, const struct nu_op_batch_ctx *ctx,
                                  const struct nu_batch *in, const struct nu_op_emit *out,
                                  struct nu_errbuf *eb)
{
    struct nu_pgsink *s = state;
    struct nu_errbuf bulk;
    nu_err_t rc;

    (void)out;
    if (!in || !in->schema)
        return nu_err_set(eb, NU_ERR_INVALID, "postgres_sink: no input batch");
    if (!ctx || !ctx->split_id)
        return nu_err_set(eb, NU_ERR_INVALID, "postgres_sink: the split has no id");
    rc = nu_pgsink_build(s, in->schema, eb);
    if (rc == NU_OK)
        rc = nu_pgsink_ready(s, in->schema, eb);
    if (rc != NU_OK)
        goto out;
    nu_errbuf_clear(&bulk);
    rc = nu_pgsink_write_bulk(s, ctx, in, &bulk);
    if (rc == NU_ERR_CORRUPT) /* a row's data: find it */
        rc = nu_pgsink_write_rows(s, ctx, in, eb);
    else if (rc != NU_OK)
        nu_err_set(eb, rc, "%s", nu_err_msg(&bulk));
out:
    if (rc != NU_OK && !nu_pg_ok(s->pg))
        rc = NU_ERR_DB; /* the connection is gone: retry the split on a new one */
    if (rc != NU_OK)
        nu_err_prefix(eb, "postgres_sink: table %s: ", s->qtable);
    return rc;
}

const struct nu_operator nu_op_postgres_sink = {
    .abi_version = NU_OPERATOR_ABI_VERSION,
    .name = "postgres_sink",
    .kind = NU_OPKIND_SINK,
    .summary = "rows into a PostgreSQL table, once per split (ledger) or by key (upsert)",
    .validate = nu_pgsink_validate,
    .schema = nu_pgsink_schema,
    .open = nu_pgsink_open,
    .process = nu_pgsink_process,
    .close = nu_pgsink_close,
};
