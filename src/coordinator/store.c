/* store.c — connection, migrations, job writes and stage controls of the store. */
#include "coordinator/store_int.h"

#include "common/log.h"
#include "common/mem.h"
#include "common/sha256.h"
#include "coordinator/migrations.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const nu_store_job_states[] = {"submitted", "running", "succeeded", "failed",
                                                  "cancelled"};

bool nu_store_job_state_valid(const char *s)
{
    for (size_t i = 0; s != NULL && i < sizeof(nu_store_job_states) / sizeof(char *); i++)
        if (strcmp(s, nu_store_job_states[i]) == 0)
            return true;
    return false;
}

int nu_store_limit(int limit)
{
    if (limit <= 0)
        return NU_STORE_DEFAULT_LIMIT;
    return limit > NU_STORE_MAX_LIMIT ? NU_STORE_MAX_LIMIT : limit;
}

char *nu_store_cursor_encode(const char *key)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = strlen(key);
    char *out = nu_xmalloc(2 * n + 1);
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[(unsigned char)key[i] >> 4];
        out[2 * i + 1] = hex[(unsigned char)key[i] & 15];
    }
    out[2 * n] = '\0';
    return out;
}

static int nu_store_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

nu_err_t nu_store_cursor_decode(const char *cursor, char *out, size_t len, struct nu_errbuf *eb)
{
    size_t n = strlen(cursor);
    if (n == 0 || n % 2 != 0 || n > NU_STORE_MAX_CURSOR || n / 2 >= len)
        return nu_err_set(eb, NU_ERR_INVALID, "invalid cursor \"%.64s\"", cursor);
    for (size_t i = 0; i < n; i += 2) {
        int hi = nu_store_hexval(cursor[i]), lo = nu_store_hexval(cursor[i + 1]);
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
            return nu_err_set(eb, NU_ERR_INVALID, "invalid cursor \"%.64s\"", cursor);
        out[i / 2] = (char)(hi << 4 | lo);
    }
    out[n / 2] = '\0';
    return NU_OK;
}

nu_err_t nu_store_json(nu_db_t *db, const char *sql, int n, const char *const *params,
                       const char *what, json_t **out, struct nu_errbuf *eb)
{
    nu_db_res_t *res = NULL;
    json_error_t jerr;
    *out = NULL;
    nu_err_t err = nu_db_query(db, sql, n, params, &res, eb);
    if (err)
        goto out;
    if (nu_db_res_rows(res) < 1 || nu_db_res_null(res, 0, 0)) {
        err = nu_err_set(eb, NU_ERR_NOT_FOUND, "%s", what);
        goto out;
    }
    *out = json_loads(nu_db_res_get(res, 0, 0), JSON_DECODE_ANY, &jerr);
    if (*out == NULL)
        err = nu_err_set(eb, NU_ERR_INTERNAL, "could not parse JSON from the database: %s",
                         jerr.text);
out:
    nu_db_res_free(res);
    return err;
}

nu_err_t nu_store_job_exists(nu_db_t *db, const char *id, struct nu_errbuf *eb)
{
    nu_db_res_t *res = NULL;
    const char *const params[] = {id};
    nu_err_t err = nu_db_query(db, "SELECT 1 FROM jobs WHERE id = $1", 1, params, &res, eb);
    if (!err && nu_db_res_rows(res) == 0)
        err = nu_err_set(eb, NU_ERR_NOT_FOUND, "job \"%s\" not found", id);
    nu_db_res_free(res);
    return err;
}

nu_err_t nu_store_connect(const char *url, nu_db_t **out, struct nu_errbuf *eb)
{
    nu_db_t *db = NULL;
    nu_err_t err = nu_db_connect(url, 5, &db, eb);
    if (!err)
        err = nu_db_exec(db, "SET TIME ZONE 'UTC'", eb);
    if (err) {
        nu_db_close(db);
        db = NULL;
    }
    *out = db;
    return err;
}

void nu_store_close(nu_db_t *db)
{
    nu_db_close(db);
}

nu_err_t nu_store_migrate(nu_db_t *db, struct nu_errbuf *eb)
{
    return nu_migrations_apply(db, NULL, eb);
}

/* The stages and edges of a job as JSON arrays for jsonb_to_recordset. */
static void nu_store_job_rows(const struct nu_job *job, char **stages, char **edges)
{
    json_t *st = json_array(), *ed = json_array();
    for (size_t i = 0; i < job->nstages; i++) {
        const struct nu_job_stage *s = &job->stages[i];
        json_array_append_new(st,
                              json_pack("{s:s, s:i, s:s, s:s, s:i, s:i, s:i}", "id", s->id,
                                        "position", (int)i, "operator", s->op, "kind",
                                        nu_op_kind_name(s->kind), "pmin", s->parallelism_min,
                                        "pmax", s->parallelism_max, "partitions", s->partitions));
        for (size_t u = 0; u < s->nupstream; u++)
            json_array_append_new(ed, json_pack("{s:s, s:s}", "from", s->upstream[u], "to", s->id));
    }
    *stages = json_dumps(st, JSON_COMPACT);
    *edges = json_dumps(ed, JSON_COMPACT);
    json_decref(st);
    json_decref(ed);
}

nu_err_t nu_store_job_insert(nu_db_t *db, const struct nu_job *job, struct nu_errbuf *eb)
{
    char *spec = NULL, *stages = NULL, *edges = NULL;
    json_t *canon = nu_job_to_json(job);
    spec = json_dumps(canon, JSON_COMPACT);
    json_decref(canon);
    nu_store_job_rows(job, &stages, &edges);
    const char *const p1[] = {job->id, spec};
    const char *const p2[] = {job->id, stages};
    const char *const p3[] = {job->id, edges};
    nu_err_t err = nu_db_begin(db, eb);
    if (!err)
        err =
            nu_db_query(db, "INSERT INTO jobs (id, spec) VALUES ($1, $2::jsonb)", 2, p1, NULL, eb);
    if (err == NU_ERR_EXISTS) {
        nu_errbuf_clear(eb);
        err = nu_err_set(eb, NU_ERR_EXISTS, "job \"%s\" already exists", job->id);
    }
    if (!err)
        err = nu_db_query(db,
                          "INSERT INTO stages (job_id, stage_id, position, operator, kind,"
                          " parallelism_min, parallelism_max, partitions)"
                          " SELECT $1, id, position, operator, kind, pmin, pmax, partitions"
                          " FROM jsonb_to_recordset($2::jsonb) AS x(id text, position int,"
                          " operator text, kind text, pmin int, pmax int, partitions int)",
                          2, p2, NULL, eb);
    if (!err)
        err = nu_db_query(db,
                          "INSERT INTO edges (job_id, from_stage, to_stage)"
                          " SELECT DISTINCT $1, \"from\", \"to\" FROM jsonb_to_recordset($2::jsonb)"
                          " AS x(\"from\" text, \"to\" text)",
                          2, p3, NULL, eb);
    if (!err)
        err = nu_db_commit(db, eb);
    if (err)
        nu_db_rollback(db);
    free(spec);
    free(stages);
    free(edges);
    return err;
}

static nu_err_t nu_store_job_set_state_once(nu_db_t *db, const char *id, const char *state,
                                            const char *error, struct nu_errbuf *eb)
{
    nu_db_res_t *res = NULL;
    nu_err_t err = NU_OK;
    if (!nu_store_job_state_valid(state))
        return nu_err_set(eb, NU_ERR_INVALID, "invalid job state \"%s\"", state ? state : "");
    const char *const params[] = {id, state, error};
    err = nu_db_begin(db, eb);
    if (!err)
        err =
            nu_db_query(db, "SELECT state FROM jobs WHERE id = $1 FOR UPDATE", 1, params, &res, eb);
    if (err)
        goto out;
    if (nu_db_res_rows(res) == 0) {
        err = nu_err_set(eb, NU_ERR_NOT_FOUND, "job \"%s\" not found", id);
        goto out;
    }
    const char *cur = nu_db_res_get(res, 0, 0);
    bool ended = strcmp(cur, "succeeded") == 0 || strcmp(cur, "failed") == 0 ||
                 strcmp(cur, "cancelled") == 0;
    if (ended && strcmp(cur, state) != 0) {
        err = nu_err_set(eb, NU_ERR_STATE, "job \"%s\" already %s", id, cur);
        goto out;
    }
    err = nu_db_query(db,
                      "UPDATE jobs SET state = $2, error = coalesce($3, error),"
                      " updated_at = clock_timestamp(),"
                      " started_at = CASE WHEN $2 <> 'submitted'"
                      "   THEN coalesce(started_at, clock_timestamp()) END,"
                      " finished_at = CASE WHEN $2 IN ('succeeded', 'failed', 'cancelled')"
                      "   THEN coalesce(finished_at, clock_timestamp()) END"
                      " WHERE id = $1",
                      3, params, NULL, eb);
    if (!err && (strcmp(state, "failed") == 0 || strcmp(state, "cancelled") == 0))
        err = nu_db_query(db,
                          "UPDATE stages SET state = $2,"
                          " finished_at = coalesce(finished_at, clock_timestamp())"
                          " WHERE job_id = $1 AND state IN ('pending', 'running')",
                          2, params, NULL, eb);
    if (!err)
        err = nu_db_commit(db, eb);
out:
    if (err)
        nu_db_rollback(db);
    nu_db_res_free(res);
    return err;
}

/* The job row, then its stages: the ingester's batch locks stages and then the job, so the two
 * can deadlock; PostgreSQL then aborts one of them, and this one is tried again. */
nu_err_t nu_store_job_set_state(nu_db_t *db, const char *id, const char *state, const char *error,
                                struct nu_errbuf *eb)
{
    nu_err_t err = NU_OK;
    for (int attempt = 1;; attempt++) {
        err = nu_store_job_set_state_once(db, id, state, error, eb);
        if (err != NU_ERR_DB || attempt >= NU_STORE_STATE_ATTEMPTS)
            break;
        nu_log(NU_LOG_DEBUG, "store", "setting job \"%s\" %s, attempt %d: %s", id, state, attempt,
               nu_err_msg(eb));
        nu_errbuf_clear(eb);
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 50L * 1000000L * attempt};
        nanosleep(&ts, NULL);
    }
    return err;
}

nu_err_t nu_store_job_delete(nu_db_t *db, const char *id, struct nu_errbuf *eb)
{
    nu_db_res_t *res = NULL;
    const char *const params[] = {id};
    nu_err_t err =
        nu_db_query(db, "DELETE FROM jobs WHERE id = $1 RETURNING id", 1, params, &res, eb);
    if (!err && nu_db_res_rows(res) == 0)
        err = nu_err_set(eb, NU_ERR_NOT_FOUND, "job \"%s\" not found", id);
    nu_db_res_free(res);
    return err;
}

/* Run an UPDATE of one stage; no row updated is NU_ERR_NOT_FOUND. */
static nu_err_t nu_store_stage_update(nu_db_t *db, const char *sql, int n,
                                      const char *const *params, struct nu_errbuf *eb)
{
    nu_db_res_t *res = NULL;
    nu_err_t err = nu_db_query(db, sql, n, params, &res, eb);
    if (!err && nu_db_res_rows(res) == 0)
        err = nu_err_set(eb, NU_ERR_NOT_FOUND, "stage \"%s\" of job \"%s\" not found", params[1],
                         params[0]);
    nu_db_res_free(res);
    return err;
}

nu_err_t nu_store_stage_set_frozen(nu_db_t *db, const char *job, const char *stage, bool frozen,
                                   struct nu_errbuf *eb)
{
    const char *const params[] = {job, stage, frozen ? "true" : "false"};
    return nu_store_stage_update(db,
                                 "UPDATE stages SET frozen = $3::boolean WHERE job_id = $1"
                                 " AND stage_id = $2 RETURNING 1",
                                 3, params, eb);
}

nu_err_t nu_store_stage_set_pinned(nu_db_t *db, const char *job, const char *stage, int pinned,
                                   struct nu_errbuf *eb)
{
    char num[16];
    snprintf(num, sizeof(num), "%d", pinned);
    const char *const params[] = {job, stage, pinned >= 0 ? num : NULL};
    return nu_store_stage_update(db,
                                 "UPDATE stages SET pinned_instances = $3::int WHERE job_id = $1"
                                 " AND stage_id = $2 RETURNING 1",
                                 3, params, eb);
}

nu_err_t nu_store_planned(nu_db_t *db, const char *job, const char *stage, int64_t splits,
                          int64_t rows, struct nu_errbuf *eb)
{
    char s[24], r[24];
    snprintf(s, sizeof(s), "%" PRId64, splits);
    snprintf(r, sizeof(r), "%" PRId64, rows);
    const char *const params[] = {job, stage, splits >= 0 ? s : NULL, rows >= 0 ? r : NULL};
    return nu_store_stage_update(db,
                                 "UPDATE stages SET planned_splits = $3::bigint,"
                                 " planned_rows = $4::bigint WHERE job_id = $1 AND stage_id = $2"
                                 " RETURNING 1",
                                 4, params, eb);
}

/* Longest message prefix that goes into a fingerprint. */
#define NU_STORE_FP_MAX 2048

static bool nu_store_is_hex(char c)
{
    return isdigit((unsigned char)c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

void nu_store_fingerprint(const char *message, char out[NU_STORE_FINGERPRINT_LEN + 1])
{
    char norm[NU_STORE_FP_MAX + 8];
    size_t n = 0;
    const char *p = message != NULL ? message : "";
    while (*p != '\0' && n < NU_STORE_FP_MAX) {
        bool boundary = p == message || !isalnum((unsigned char)p[-1]);
        if (*p == '"' || *p == '\'') { /* a quoted value: keep the quotes only */
            const char *end = strchr(p + 1, *p);
            if (end != NULL) {
                norm[n++] = *p;
                norm[n++] = '?';
                norm[n++] = *p;
                p = end + 1;
                continue;
            }
        }
        if (boundary && isalnum((unsigned char)*p)) { /* a hex id: 4+ hex chars, a digit */
            size_t len = 0, digits = 0;
            bool hex = true;
            if (p[0] == '0' && p[1] == 'x' && nu_store_is_hex(p[2]))
                len = 2;
            for (; isalnum((unsigned char)p[len]); len++) {
                hex = hex && nu_store_is_hex(p[len]);
                digits += isdigit((unsigned char)p[len]) != 0;
            }
            if ((len > 2 && p[1] == 'x') || (hex && digits > 0 && digits < len && len >= 4)) {
                norm[n++] = '#';
                p += len;
                continue;
            }
        }
        if (isdigit((unsigned char)*p)) { /* a number, with its fraction */
            while (isdigit((unsigned char)*p) ||
                   (*p == '.' && isdigit((unsigned char)p[1]) && isdigit((unsigned char)p[-1])))
                p++;
            norm[n++] = 'N';
            continue;
        }
        norm[n++] = *p++;
    }
    unsigned char digest[NU_SHA256_LEN];
    char hex[NU_SHA256_HEX_LEN + 1];
    nu_sha256(norm, n, digest);
    nu_sha256_hex(digest, NU_SHA256_LEN, hex);
    memcpy(out, hex, NU_STORE_FINGERPRINT_LEN);
    out[NU_STORE_FINGERPRINT_LEN] = '\0';
}
