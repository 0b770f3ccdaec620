/* migrations.c — apply the embedded SQL migrations under an advisory lock. */
#include "coordinator/migrations.h"

#include <stdio.h>

/* Key of the transaction-level advisory lock serialising migrations ("nurion" in ASCII). */
#define NU_MIGRATIONS_LOCK_KEY "110117114105111110"

nu_err_t nu_migrations_apply(nu_db_t *db, int *applied, struct nu_errbuf *eb)
{
    nu_db_res_t *res = NULL;
    int done = 0;
    nu_err_t err = nu_db_begin(db, eb);
    if (err)
        goto out;
    err = nu_db_exec(db, "SELECT pg_advisory_xact_lock(" NU_MIGRATIONS_LOCK_KEY ")", eb);
    if (!err)
        err = nu_db_exec(db,
                         "CREATE TABLE IF NOT EXISTS schema_migrations ("
                         " version int PRIMARY KEY, name text NOT NULL,"
                         " applied_at timestamptz NOT NULL DEFAULT clock_timestamp())",
                         eb);
    if (!err)
        err = nu_db_query(db, "SELECT coalesce(max(version), 0) FROM schema_migrations", 0, NULL,
                          &res, eb);
    if (err)
        goto out;
    int64_t current = nu_db_res_int(res, 0, 0);
    for (size_t i = 0; i < nu_migrations_count; i++) {
        const struct nu_migration *m = &nu_migrations[i];
        char version[16];
        if (m->version <= current)
            continue;
        err = nu_db_exec(db, m->sql, eb);
        snprintf(version, sizeof(version), "%d", m->version);
        const char *const params[] = {version, m->name};
        if (!err)
            err = nu_db_query(db, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                              2, params, NULL, eb);
        if (err) {
            nu_err_prefix(eb, "migration %03d_%s: ", m->version, m->name);
            goto out;
        }
        done++;
    }
    err = nu_db_commit(db, eb);
out:
    if (err)
        nu_db_rollback(db);
    nu_db_res_free(res);
    if (applied != NULL)
        *applied = err ? 0 : done;
    return err;
}
