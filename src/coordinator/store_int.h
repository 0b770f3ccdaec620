/*
 * store_int.h — helpers shared by the store's source files (layer: coordinator, internal).
 */
#ifndef NU_COORDINATOR_STORE_INT_H
#define NU_COORDINATOR_STORE_INT_H

#include "coordinator/store.h"

/*
 * Run a query whose first row's first column is JSON text and parse it into *out (owned).
 * No row or a NULL value is NU_ERR_NOT_FOUND with message `what` (e.g. `job "x" not found`).
 */
nu_err_t nu_store_json(nu_db_t *db, const char *sql, int n, const char *const *params,
                       const char *what, json_t **out, struct nu_errbuf *eb);
/* NU_OK when job `id` exists, else NU_ERR_NOT_FOUND. */
nu_err_t nu_store_job_exists(nu_db_t *db, const char *id, struct nu_errbuf *eb);
/* A page size from a caller's limit (<= 0: default, capped at NU_STORE_MAX_LIMIT). */
int nu_store_limit(int limit);
/* Is `s` one of the job states? */
bool nu_store_job_state_valid(const char *s);
/* Opaque cursors: hex of the key text. Encode returns malloc'ed text; decode writes the key
 * into `out` (`len` bytes) or fails with NU_ERR_INVALID. */
char *nu_store_cursor_encode(const char *key);
nu_err_t nu_store_cursor_decode(const char *cursor, char *out, size_t len, struct nu_errbuf *eb);

/* SELECT … producing the JSON array of a job's stages ($1 = job id), shape "stage". */
extern const char nu_store_stages_sql[];

#endif
