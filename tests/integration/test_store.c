/*
 * Integration tests of src/coordinator/store*.c and migrations.c against the real PostgreSQL
 * (scripts/services up): migrations (idempotent, concurrent), jobs, pagination, lineage.
 */
#include "integ.h"

#include "common/job.h"
#include "coordinator/migrations.h"
#include "coordinator/store.h"

#include <pthread.h>

static nu_db_t *it_store(void)
{
    struct nu_errbuf eb = {0};
    nu_db_t *db = NULL;
    cr_assert_eq(nu_store_connect(nu_it_database_url(), &db, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(nu_store_migrate(db, &eb), NU_OK, "%s", nu_err_msg(&eb));
    return db;
}

/* A job id unique to this run: [A-Za-z0-9_-] only. */
static const char *it_job_id(const char *prefix, char *buf, size_t len)
{
    static unsigned n;
    snprintf(buf, len, "%s-%ld-%lld-%u", prefix, (long)getpid(), (long long)nu_it_now_ms(), n++);
    return buf;
}

/* src -> dbl -> out, with two partitions per topic. */
static struct nu_job *it_job(const char *id)
{
    struct nu_errbuf eb = {0};
    struct nu_job *job = NULL;
    char spec[1024];
    snprintf(spec, sizeof(spec),
             "{\"job_id\":\"%s\",\"stages\":["
             "{\"id\":\"src\",\"operator\":\"generate\",\"config\":{\"rows\":10},\"partitions\":2},"
             "{\"id\":\"dbl\",\"operator\":\"map\",\"upstream\":[\"src\"],\"partitions\":2,"
             "\"parallelism\":{\"min\":1,\"max\":2}},"
             "{\"id\":\"out\",\"operator\":\"file_sink\",\"upstream\":[\"dbl\"]}]}",
             id);
    cr_assert_eq(nu_job_parse(spec, strlen(spec), NULL, &job, NULL, &eb), NU_OK, "%s",
                 nu_err_msg(&eb));
    return job;
}

static void it_exec(nu_db_t *db, const char *sql, int n, const char *const *params)
{
    struct nu_errbuf eb = {0};
    cr_assert_eq(nu_db_query(db, sql, n, params, NULL, &eb), NU_OK, "%s: %s", sql, nu_err_msg(&eb));
}

Test(store, migrations_idempotent)
{
    struct nu_errbuf eb = {0};
    nu_db_t *db = it_store();
    nu_db_res_t *res = NULL;
    int applied = -1;
    cr_assert_eq(nu_migrations_apply(db, &applied, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(applied, 0, "a second run applies nothing");
    cr_assert_eq(
        nu_db_query(db, "SELECT count(*), max(version) FROM schema_migrations", 0, NULL, &res, &eb),
        NU_OK);
    cr_assert_eq(nu_db_res_int(res, 0, 0), (int64_t)nu_migrations_count);
    cr_assert_eq(nu_db_res_int(res, 0, 1), nu_migrations[nu_migrations_count - 1].version);
    nu_db_res_free(res);
    nu_store_close(db);
}

struct it_mig {
    char url[512];
    nu_err_t err;
    int applied;
    char msg[NU_ERRBUF_SIZE];
};

static void *it_mig_thread(void *arg)
{
    struct it_mig *m = arg;
    struct nu_errbuf eb = {0};
    nu_db_t *db = NULL;
    m->err = nu_store_connect(m->url, &db, &eb);
    if (!m->err)
        m->err = nu_migrations_apply(db, &m->applied, &eb);
    snprintf(m->msg, sizeof(m->msg), "%s", nu_err_msg(&eb));
    nu_store_close(db);
    return NULL;
}

/* Two coordinators starting together on an empty database: each migration applied once. */
Test(store, migrations_concurrent, .timeout = 20)
{
    char dbname[64], sql[128];
    const char *base = nu_it_database_url();
    nu_db_t *db = it_store();
    snprintf(dbname, sizeof(dbname), "nurion_mig_%ld_%lld", (long)getpid(),
             (long long)nu_it_now_ms());
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", dbname); /* identifiers: [a-z0-9_] */
    it_exec(db, sql, 0, NULL);
    const char *slash = strrchr(base, '/'), *q = strchr(slash, '?');
    struct it_mig m[2] = {0};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        snprintf(m[i].url, sizeof(m[i].url), "%.*s/%s%s", (int)(slash - base), base, dbname,
                 q != NULL ? q : "");
        pthread_create(&t[i], NULL, it_mig_thread, &m[i]);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 2; i++)
        cr_expect_eq(m[i].err, NU_OK, "coordinator %d: %s", i, m[i].msg);
    cr_expect_eq(m[0].applied + m[1].applied, (int)nu_migrations_count,
                 "applied %d + %d migrations", m[0].applied, m[1].applied);
    cr_expect(m[0].applied == 0 || m[1].applied == 0, "only one of them applied anything");
    snprintf(sql, sizeof(sql), "DROP DATABASE %s WITH (FORCE)", dbname);
    it_exec(db, sql, 0, NULL);
    nu_store_close(db);
}

Test(store, job_insert_get_state_delete)
{
    struct nu_errbuf eb = {0};
    char id[96];
    nu_db_t *db = it_store();
    struct nu_job *job = it_job(it_job_id("st", id, sizeof(id)));
    json_t *doc = NULL;

    cr_assert_eq(nu_store_job_insert(db, job, &eb), NU_OK, "%s", nu_err_msg(&eb));
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_store_job_insert(db, job, &eb), NU_ERR_EXISTS);
    cr_assert(strstr(nu_err_msg(&eb), id) != NULL, "message names the job: %s", nu_err_msg(&eb));

    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_store_job_get(db, id, &doc, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_str_eq(json_string_value(json_object_get(doc, "state")), "submitted");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(doc, "spec"), "job_id")),
                     id);
    json_t *stages = json_object_get(doc, "stages");
    cr_assert_eq(json_array_size(stages), 3);
    json_t *dbl = json_array_get(stages, 1);
    cr_assert_str_eq(json_string_value(json_object_get(dbl, "id")), "dbl");
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(dbl, "upstream"), 0)), "src");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(dbl, "parallelism"), "max")),
                 2);
    cr_assert(json_is_null(json_object_get(dbl, "eta_s")), "no ETA without a plan");
    json_decref(doc);

    /* planned totals, freeze and pin show in the stage list */
    cr_assert_eq(nu_store_planned(db, id, "src", 10, 1000, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(nu_store_stage_set_frozen(db, id, "dbl", true, &eb), NU_OK);
    cr_assert_eq(nu_store_stage_set_pinned(db, id, "out", 3, &eb), NU_OK);
    cr_assert_eq(nu_store_stage_set_pinned(db, id, "nope", 3, &eb), NU_ERR_NOT_FOUND);
    cr_assert_eq(nu_store_stages(db, id, &stages, &eb), NU_OK);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(stages, 0), "planned_splits")),
                 10);
    cr_assert_eq(json_real_value(json_object_get(json_array_get(stages, 0), "progress")), 0.0);
    cr_assert(json_is_true(json_object_get(json_array_get(stages, 1), "frozen")));
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(stages, 2), "pinned_instances")),
                 3);
    json_decref(stages);

    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_store_job_set_state(db, id, "bogus", NULL, &eb), NU_ERR_INVALID);
    cr_assert_eq(nu_store_job_set_state(db, "no-such-job", "running", NULL, &eb), NU_ERR_NOT_FOUND);
    cr_assert_eq(nu_store_job_set_state(db, id, "running", NULL, &eb), NU_OK);
    cr_assert_eq(nu_store_job_set_state(db, id, "failed", "stage \"dbl\" crashed", &eb), NU_OK);
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_store_job_set_state(db, id, "running", NULL, &eb), NU_ERR_STATE);
    cr_assert_eq(nu_store_job_get(db, id, &doc, &eb), NU_OK);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "state")), "failed");
    cr_assert_str_eq(json_string_value(json_object_get(doc, "error")), "stage \"dbl\" crashed");
    cr_assert(json_is_string(json_object_get(doc, "started_at")));
    cr_assert(json_is_string(json_object_get(doc, "finished_at")));
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(json_object_get(doc, "stages"), 0), "state")),
                     "failed", "a failed job ends its stages");
    json_decref(doc);

    cr_assert_eq(nu_store_job_delete(db, id, &eb), NU_OK);
    nu_errbuf_clear(&eb);
    cr_assert_eq(nu_store_job_get(db, id, &doc, &eb), NU_ERR_NOT_FOUND);
    cr_assert_eq(nu_store_job_delete(db, id, &eb), NU_ERR_NOT_FOUND);
    nu_job_destroy(job);
    nu_store_close(db);
}

static double it_stage_eta(json_t *stages, size_t i)
{
    json_t *eta = json_object_get(json_array_get(stages, i), "eta_s");
    cr_assert(json_is_number(eta), "stage %zu has an ETA", i);
    return json_number_value(eta);
}

/* A source extrapolates its plan; another stage its input lag at its own rate. */
Test(store, stage_eta)
{
    struct nu_errbuf eb = {0};
    char id[96];
    nu_db_t *db = it_store();
    struct nu_job *job = it_job(it_job_id("eta", id, sizeof(id)));
    json_t *stages = NULL;
    const char *const p[] = {id};

    cr_assert_eq(nu_store_job_insert(db, job, &eb), NU_OK, "%s", nu_err_msg(&eb));
    /* src: 5 of 10 plan splits in 10 s; its rows/s count plan rows, not generated rows */
    cr_assert_eq(nu_store_planned(db, id, "src", 10, 1000000, &eb), NU_OK, "%s", nu_err_msg(&eb));
    it_exec(db,
            "UPDATE stages SET splits_done = 5, rows_in = 5, state = 'running',"
            " started_at = now() - interval '10 s' WHERE job_id = $1 AND stage_id = 'src'",
            1, p);
    it_exec(db,
            "INSERT INTO instances (job_id, stage_id, instance, state, last_metrics) VALUES"
            " ($1, 'src', 0, 'running', '{\"rows_per_s\": 0.5, \"total_lag\": 5}'),"
            " ($1, 'dbl', 0, 'running', '{\"rows_per_s\": 30, \"total_lag\": 4}'),"
            " ($1, 'dbl', 1, 'running', '{\"rows_per_s\": 20, \"total_lag\": 2}')",
            1, p);
    /* dbl: 4 splits of 100 rows so far, 6 records behind at 50 rows/s: 12 s */
    it_exec(db,
            "UPDATE stages SET splits_done = 4, rows_in = 400, state = 'running'"
            " WHERE job_id = $1 AND stage_id = 'dbl'",
            1, p);
    cr_assert_eq(nu_store_stages(db, id, &stages, &eb), NU_OK, "%s", nu_err_msg(&eb));
    double src = it_stage_eta(stages, 0), dbl = it_stage_eta(stages, 1);
    cr_expect(src >= 9.5 && src < 30, "source ETA %.1f s (about 10)", src);
    cr_expect(dbl > 11.99 && dbl < 12.01, "dbl ETA %.3f s (12)", dbl);
    cr_expect(json_is_null(json_object_get(json_array_get(stages, 2), "eta_s")),
              "no ETA for a stage with nothing done");
    json_decref(stages);
    cr_assert_eq(nu_store_job_delete(db, id, &eb), NU_OK);
    nu_job_destroy(job);
    nu_store_close(db);
}

Test(store, jobs_list_pagination, .timeout = 20)
{
    struct nu_errbuf eb = {0};
    char ids[5][96];
    bool seen[5] = {false};
    nu_db_t *db = it_store();
    for (int i = 0; i < 5; i++) {
        struct nu_job *job = it_job(it_job_id("pg", ids[i], sizeof(ids[i])));
        cr_assert_eq(nu_store_job_insert(db, job, &eb), NU_OK, "%s", nu_err_msg(&eb));
        nu_job_destroy(job);
    }
    /* other runs may add jobs meanwhile: walk pages until all five are seen, never twice */
    char *cursor = NULL, prev_created[64] = "9999";
    int found = 0;
    for (int page = 0; page < 500 && found < 5; page++) {
        json_t *arr = NULL, *item;
        char *next = NULL;
        size_t i;
        cr_assert_eq(nu_store_jobs_list(db, NULL, cursor, 2, &arr, &next, &eb), NU_OK, "%s",
                     nu_err_msg(&eb));
        cr_assert_leq(json_array_size(arr), 2);
        json_array_foreach(arr, i, item)
        {
            const char *id = json_string_value(json_object_get(item, "id"));
            const char *created = json_string_value(json_object_get(item, "created_at"));
            cr_assert_leq(strcmp(created, prev_created), 0, "newest first");
            snprintf(prev_created, sizeof(prev_created), "%s", created);
            for (int k = 0; k < 5; k++)
                if (strcmp(id, ids[k]) == 0) {
                    cr_assert(!seen[k], "job %s listed twice", id);
                    seen[k] = true;
                    found++;
                    /* (jobs of other tests may have other shapes) */
                    cr_assert_eq(json_integer_value(json_object_get(item, "stages")), 3);
                }
        }
        json_decref(arr);
        free(cursor);
        cursor = next;
        if (cursor == NULL)
            break;
    }
    free(cursor);
    cr_assert_eq(found, 5, "all five jobs listed across pages");

    /* the state filter */
    cr_assert_eq(nu_store_job_set_state(db, ids[2], "cancelled", NULL, &eb), NU_OK);
    json_t *arr = NULL;
    char *next = NULL;
    cr_assert_eq(nu_store_jobs_list(db, "cancelled", NULL, 1000, &arr, &next, &eb), NU_OK);
    bool listed = false;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *item = json_array_get(arr, i);
        cr_assert_str_eq(json_string_value(json_object_get(item, "state")), "cancelled");
        listed = listed || strcmp(json_string_value(json_object_get(item, "id")), ids[2]) == 0;
    }
    cr_assert(listed);
    json_decref(arr);
    free(next);

    const char *bad[] = {"zz", "abc", "6869", "3a6869", "41", "00", "31323a"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        nu_errbuf_clear(&eb);
        cr_expect_eq(nu_store_jobs_list(db, NULL, bad[i], 10, &arr, &next, &eb), NU_ERR_INVALID,
                     "cursor \"%s\" must be refused", bad[i]);
    }
    cr_assert_eq(nu_store_jobs_list(db, "weird", NULL, 10, &arr, &next, &eb), NU_ERR_INVALID);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(nu_store_job_delete(db, ids[i], &eb), NU_OK);
    nu_store_close(db);
}

static int it_count_nodes(json_t *g)
{
    return (int)json_array_size(json_object_get(g, "nodes"));
}

static bool it_has_node(json_t *g, const char *split)
{
    json_t *nodes = json_object_get(g, "nodes");
    for (size_t i = 0; i < json_array_size(nodes); i++)
        if (strcmp(json_string_value(json_object_get(json_array_get(nodes, i), "split")), split) ==
            0)
            return true;
    return false;
}

Test(store, lineage_and_splits)
{
    struct nu_errbuf eb = {0};
    char id[96];
    nu_db_t *db = it_store();
    struct nu_job *job = it_job(it_job_id("ln", id, sizeof(id)));
    json_t *g = NULL;
    cr_assert_eq(nu_store_job_insert(db, job, &eb), NU_OK, "%s", nu_err_msg(&eb));
    /* a -> b -> c -> d, and b -> e */
    const char *rows[][3] = {{"a", "src", "{}"},
                             {"b", "dbl", "{a}"},
                             {"c", "out", "{b}"},
                             {"d", "out", "{c}"},
                             {"e", "out", "{b}"}};
    for (size_t i = 0; i < 5; i++) {
        const char *const p[] = {id, rows[i][0], rows[i][1], rows[i][2]};
        it_exec(db,
                "INSERT INTO splits (job_id, split_id, stage_id, parents, rows_in, ts)"
                " VALUES ($1, $2, $3, $4::text[], 10, now())",
                4, p);
        it_exec(db,
                "INSERT INTO split_edges (job_id, parent, child)"
                " SELECT $1, unnest($3::text[]), $2",
                3, (const char *const[]){id, rows[i][0], rows[i][2]});
    }
    cr_assert_eq(nu_store_lineage(db, id, "d", NU_LINEAGE_UP, 10, &g, &eb), NU_OK, "%s",
                 nu_err_msg(&eb));
    cr_assert_eq(it_count_nodes(g), 4);
    cr_assert(it_has_node(g, "a") && !it_has_node(g, "e"));
    cr_assert_eq(json_array_size(json_object_get(g, "edges")), 3);
    cr_assert(json_is_false(json_object_get(g, "truncated")));
    json_decref(g);

    cr_assert_eq(nu_store_lineage(db, id, "d", NU_LINEAGE_UP, 1, &g, &eb), NU_OK);
    cr_assert_eq(it_count_nodes(g), 2, "depth 1: d and its parent");
    cr_assert(it_has_node(g, "c"));
    json_decref(g);

    cr_assert_eq(nu_store_lineage(db, id, "a", NU_LINEAGE_DOWN, 100, &g, &eb), NU_OK);
    cr_assert_eq(it_count_nodes(g), 5);
    cr_assert_eq(json_array_size(json_object_get(g, "edges")), 4);
    json_decref(g);
    cr_assert_eq(nu_store_lineage(db, id, "a", NU_LINEAGE_DOWN, 2, &g, &eb), NU_OK);
    cr_assert_eq(it_count_nodes(g), 4, "a, b, c, e");
    cr_assert(!it_has_node(g, "d"));
    json_decref(g);

    cr_assert_eq(nu_store_lineage(db, id, "zz", NU_LINEAGE_UP, 5, &g, &eb), NU_ERR_NOT_FOUND);
    cr_assert_eq(nu_store_lineage(db, id, "a", NU_LINEAGE_UP, 0, &g, &eb), NU_ERR_INVALID);
    cr_assert_eq(nu_store_lineage(db, id, "a", NU_LINEAGE_UP, 101, &g, &eb), NU_ERR_INVALID);

    /* splits: pages of two in id order, and the stage filter */
    json_t *arr = NULL;
    char *next = NULL, *next2 = NULL;
    cr_assert_eq(nu_store_splits(db, id, NULL, NULL, 2, &arr, &next, &eb), NU_OK, "%s",
                 nu_err_msg(&eb));
    cr_assert_eq(json_array_size(arr), 2);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(arr, 1), "split")), "b");
    cr_assert_not_null(next);
    json_decref(arr);
    cr_assert_eq(nu_store_splits(db, id, NULL, next, 2, &arr, &next2, &eb), NU_OK);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(arr, 0), "split")), "c");
    json_decref(arr);
    free(next);
    free(next2);
    cr_assert_eq(nu_store_splits(db, id, "out", NULL, 10, &arr, &next, &eb), NU_OK);
    cr_assert_eq(json_array_size(arr), 3);
    cr_assert_null(next);
    json_decref(arr);
    cr_assert_eq(nu_store_splits(db, id, NULL, "xyz", 10, &arr, &next, &eb), NU_ERR_INVALID);

    cr_assert_eq(nu_store_exceptions(db, id, &arr, &eb), NU_OK);
    cr_assert_eq(json_array_size(arr), 0);
    json_decref(arr);
    cr_assert_eq(nu_store_instances(db, id, &arr, &eb), NU_OK);
    cr_assert_eq(json_array_size(arr), 0);
    json_decref(arr);
    cr_assert_eq(nu_store_instances(db, "no-such-job", &arr, &eb), NU_ERR_NOT_FOUND);

    cr_assert_eq(nu_store_job_delete(db, id, &eb), NU_OK);
    nu_job_destroy(job);
    nu_store_close(db);
}

struct it_cancel {
    nu_db_t *db;
    const char *id;
    nu_err_t err;
    char msg[NU_ERRBUF_SIZE];
};

static void *it_cancel_thread(void *arg)
{
    struct it_cancel *c = arg;
    struct nu_errbuf eb = {0};
    c->err = nu_store_job_set_state(c->db, c->id, "cancelled", NULL, &eb);
    snprintf(c->msg, sizeof(c->msg), "%s", nu_err_msg(&eb));
    return NULL;
}

/* A state change that deadlocks with a writer locking the stages and then the job (as the
 * ingester's batches do) is chosen as the victim by PostgreSQL and then tried again. */
Test(store, job_state_change_survives_a_deadlock, .timeout = 30)
{
    struct nu_errbuf eb = {0};
    char id[96];
    nu_db_t *db = it_store(), *other = it_store();
    struct nu_job *job = it_job(it_job_id("dl", id, sizeof(id)));
    const char *const p[] = {id};
    cr_assert_eq(nu_store_job_insert(db, job, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_assert_eq(nu_store_job_set_state(db, id, "running", NULL, &eb), NU_OK, "%s",
                 nu_err_msg(&eb));

    /* the writer: its stage rows locked first */
    cr_assert_eq(nu_db_begin(other, &eb), NU_OK, "%s", nu_err_msg(&eb));
    it_exec(other, "UPDATE stages SET errors = errors WHERE job_id = $1", 1, p);
    struct it_cancel c = {.db = db, .id = id};
    pthread_t t;
    pthread_create(&t, NULL, it_cancel_thread, &c);
    usleep(300 * 1000); /* the cancel now holds the job row and waits for the stages */
    /* then the job row: a cycle; the cancel, waiting longer, finds it and is aborted */
    it_exec(other, "UPDATE jobs SET updated_at = clock_timestamp() WHERE id = $1", 1, p);
    cr_assert_eq(nu_db_commit(other, &eb), NU_OK, "%s", nu_err_msg(&eb));
    pthread_join(t, NULL);
    cr_expect_eq(c.err, NU_OK, "the cancel went through: %s", c.msg);

    json_t *doc = NULL;
    cr_assert_eq(nu_store_job_get(db, id, &doc, &eb), NU_OK, "%s", nu_err_msg(&eb));
    cr_expect_str_eq(json_string_value(json_object_get(doc, "state")), "cancelled");
    json_decref(doc);
    cr_assert_eq(nu_store_job_delete(db, id, &eb), NU_OK, "%s", nu_err_msg(&eb));
    nu_job_destroy(job);
    nu_store_close(other);
    nu_store_close(db);
}
