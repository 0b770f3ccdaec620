/*
 * store.h — the coordinator's PostgreSQL store: typed calls for the HTTP handlers, the launcher
 * and the ingester (layer: coordinator). SQL lives here and in ingest.c only, always with
 * parameters ($1…), every list bounded by a LIMIT.
 *
 * Results are JSON (jansson) shaped for the HTTP API, returned owned (a new reference). Times are
 * RFC 3339 strings in UTC, absent values null:
 *   job      {"id","state","error","created_at","updated_at","started_at","finished_at",
 *             "spec":{canonical spec}, "stages":[stage…]}            (nu_store_job_get)
 *   summary  {"id","state","error","created_at","updated_at","started_at","finished_at",
 *             "stages","stages_succeeded"}                          (nu_store_jobs_list items)
 *   stage    {"id","position","operator","kind","state","parallelism":{"min","max"},
 *             "partitions","frozen","pinned_instances","planned_splits","planned_rows",
 *             "splits_done","rows_in","rows_out","dead_letters","errors","progress" (0..1|null),
 *             "rows_per_s","lag","instances_running","eta_s" (null unless planned is known),
 *             "started_at","finished_at","upstream":[ids]}
 *   instance {"stage","instance","state","pid","host","reason","started_at","stopped_at",
 *             "last_metrics"}
 *   split    {"split","stage","parents":[…],"rows_in","rows_out","bytes_in","bytes_out","ms",
 *             "instance","topic","partition","offset","ts"}
 *   lineage  {"root","direction","depth","truncated","nodes":[{"split","depth","stage",
 *             "rows_in","rows_out","instance","ts"}],"edges":[{"parent","child"}]}
 *   exception {"stage","fingerprint","code","count","first_seen","last_seen","sample_message",
 *             "sample_splits":[…],"hint"}
 *
 * Errors: NU_ERR_DB (retriable: connection, serialization), NU_ERR_DB_FATAL, NU_ERR_NOT_FOUND for
 * an unknown job / stage / split, NU_ERR_INVALID for bad arguments (state names, cursors).
 * Every call blocks on one connection until the server answers.
 *
 * Thread-safety: a connection belongs to one thread at a time (see db.h).
 */
#ifndef NU_COORDINATOR_STORE_H
#define NU_COORDINATOR_STORE_H

#include "common/err.h"
#include "common/job.h"
#include "coordinator/db.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define NU_STORE_DEFAULT_LIMIT   100
#define NU_STORE_MAX_LIMIT       1000  /* page size cap of every list */
#define NU_STORE_MAX_DEPTH       100   /* lineage walk depth cap */
#define NU_STORE_LINEAGE_MAX     10000 /* nodes a lineage answer holds at most */
#define NU_STORE_MAX_CURSOR      512   /* characters of a cursor */
#define NU_STORE_SAMPLE_SPLITS   10    /* split ids kept per exception */
#define NU_STORE_FINGERPRINT_LEN 16    /* hex characters of an error fingerprint */
#define NU_STORE_MAX_POINTS      1000  /* buckets of a stage's metric series */
#define NU_STORE_STATE_ATTEMPTS  5     /* tries of a job state change that meets a deadlock */

typedef enum nu_lineage_dir { NU_LINEAGE_UP = 0, NU_LINEAGE_DOWN } nu_lineage_dir_t;

/* Connect (5 attempts with back-off, see nu_db_connect) and set the session to UTC. Returned
 * owned: nu_store_close. */
nu_err_t nu_store_connect(const char *url, nu_db_t **out, struct nu_errbuf *eb);
void nu_store_close(nu_db_t *db); /* accepts NULL */

/* Apply pending migrations (migrations.h); safe when several coordinators start together. */
nu_err_t nu_store_migrate(nu_db_t *db, struct nu_errbuf *eb);

/* Insert a job (borrowed) in state "submitted" with its stages and edges, in one transaction.
 * Errors: NU_ERR_EXISTS when the id is taken. */
nu_err_t nu_store_job_insert(nu_db_t *db, const struct nu_job *job, struct nu_errbuf *eb);

/*
 * Move job `id` to `state` ("submitted", "running", "succeeded", "failed", "cancelled") with an
 * optional error text (NULL keeps none). Sets started_at / finished_at; a terminal state also
 * ends the job's unfinished stages with it. Errors: NU_ERR_STATE when the job already ended in
 * another state, NU_ERR_NOT_FOUND, NU_ERR_INVALID for an unknown state.
 */
nu_err_t nu_store_job_set_state(nu_db_t *db, const char *id, const char *state, const char *error,
                                struct nu_errbuf *eb);

/* The job document (shape "job"). */
nu_err_t nu_store_job_get(nu_db_t *db, const char *id, json_t **out, struct nu_errbuf *eb);

/*
 * A page of job summaries, newest first, keyset-paginated on (created_at, id). `state` filters
 * (NULL: all); `cursor` (NULL or "": first page) is one returned earlier; `limit` <= 0 means
 * NU_STORE_DEFAULT_LIMIT, larger than NU_STORE_MAX_LIMIT is capped. *out gets an array;
 * *next_cursor a malloc'ed opaque cursor, or NULL on the last page (caller frees).
 * Errors: NU_ERR_INVALID for a malformed cursor or state.
 */
nu_err_t nu_store_jobs_list(nu_db_t *db, const char *state, const char *cursor, int limit,
                            json_t **out, char **next_cursor, struct nu_errbuf *eb);

/* Delete a job and everything recorded about it. Errors: NU_ERR_NOT_FOUND. */
nu_err_t nu_store_job_delete(nu_db_t *db, const char *id, struct nu_errbuf *eb);

/* The stages of a job, in spec order (array of "stage"). NU_ERR_NOT_FOUND for no job. */
nu_err_t nu_store_stages(nu_db_t *db, const char *job, json_t **out, struct nu_errbuf *eb);
/* The instances of a job (array of "instance", at most NU_STORE_MAX_LIMIT). */
nu_err_t nu_store_instances(nu_db_t *db, const char *job, json_t **out, struct nu_errbuf *eb);

/* A page of a job's splits (array of "split") in split id order, `stage` filtering (NULL: all);
 * cursor and limit as in nu_store_jobs_list. */
nu_err_t nu_store_splits(nu_db_t *db, const char *job, const char *stage, const char *cursor,
                         int limit, json_t **out, char **next_cursor, struct nu_errbuf *eb);

/* The lineage graph around `split`: ancestors (up) or descendants (down) to `depth` levels
 * (1..NU_STORE_MAX_DEPTH), at most NU_STORE_LINEAGE_MAX nodes ("truncated" then true). */
nu_err_t nu_store_lineage(nu_db_t *db, const char *job, const char *split, nu_lineage_dir_t dir,
                          int depth, json_t **out, struct nu_errbuf *eb);

/* Exceptions of a job, most frequent first (array of "exception", at most NU_STORE_MAX_LIMIT). */
nu_err_t nu_store_exceptions(nu_db_t *db, const char *job, json_t **out, struct nu_errbuf *eb);

/* Autoscaling controls of a stage: frozen, and a pinned instance count (< 0: unpinned). */
nu_err_t nu_store_stage_set_frozen(nu_db_t *db, const char *job, const char *stage, bool frozen,
                                   struct nu_errbuf *eb);
nu_err_t nu_store_stage_set_pinned(nu_db_t *db, const char *job, const char *stage, int pinned,
                                   struct nu_errbuf *eb);
/* The planner's totals for a stage (negative: unknown). */
nu_err_t nu_store_planned(nu_db_t *db, const char *job, const char *stage, int64_t splits,
                          int64_t rows, struct nu_errbuf *eb);

/*
 * The metric series of stage `stage` of `job`: its samples from `since_s` (Unix seconds,
 * inclusive) to `until_s` (exclusive) in buckets of `step_s` seconds, as an array of
 * {"ts" (bucket start), "rows_per_s_in", "rows_per_s_out", "lag", "instances"} holding only
 * the buckets with samples, oldest first; rates and lag are summed over the stage's instances.
 * Errors: NU_ERR_INVALID for an empty window, a step < 1 or more than NU_STORE_MAX_POINTS
 * buckets; NU_ERR_NOT_FOUND for an unknown job or stage.
 */
nu_err_t nu_store_stage_series(nu_db_t *db, const char *job, const char *stage, int64_t since_s,
                               int64_t until_s, int step_s, json_t **out, struct nu_errbuf *eb);

/*
 * Fingerprint of an error message: numbers, quoted values and hex ids are replaced by
 * placeholders, then the SHA-256 of the result is cut to NU_STORE_FINGERPRINT_LEN hex characters
 * into `out` (NUL-terminated). "division by zero at column 5" and "… column 7" share one.
 */
void nu_store_fingerprint(const char *message, char out[NU_STORE_FINGERPRINT_LEN + 1]);

#endif
