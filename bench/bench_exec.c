/*
 * bench_exec.c — cost per split of the `exec` operator running a Python UDF
 * (examples/udf/double.py: y = id * 2) against the built-in `map` doing the same work
 * ({"columns": {"y": "id * 2"}}), both driven through the operator ABI on the same splits
 * (no broker). Prints both per-split costs and their ratio, measured in one run.
 *
 * usage: nurion-bench-exec [SPLITS] [ROWS_PER_SPLIT]   (defaults 200 and 1000)
 * Run from the repository root, or set NURION_SOURCE_DIR to it (the UDF's path is relative).
 */
#include "operators/registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static nu_err_t bench_emit(void *ctx, struct nu_batch *b, struct nu_errbuf *eb)
{
    size_t *rows = ctx;
    *rows += b->nrows;
    nu_batch_destroy(b);
    return NU_OK;
}

static double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Seconds per split of operator `name` with `config` over `splits` copies of `in`. */
static double bench_run(const char *name, const char *config, const struct nu_batch *in, int splits)
{
    const struct nu_operator *op = NULL;
    struct nu_errbuf eb;
    void *state = NULL;
    size_t rows = 0;
    json_t *cfg = json_loads(config, 0, NULL);
    struct nu_op_emit emit = {.ctx = &rows, .emit = bench_emit};
    struct nu_op_batch_ctx ctx = {.split_id = "bench", .attempt = 1};
    double t0, t;

    nu_errbuf_clear(&eb);
    struct nu_op_open_args args = {.config = cfg, .in = in->schema, .job_id = "b", .stage_id = "b"};
    if (!cfg || nu_registry_find(name, NULL, &op, &eb) != NU_OK ||
        op->open(&args, &state, &eb) != NU_OK) {
        fprintf(stderr, "bench_exec: %s: %s\n", name, nu_err_msg(&eb));
        exit(1);
    }
    /* one warm-up split (starts the child for exec) */
    if (op->process(state, &ctx, in, &emit, &eb) != NU_OK) {
        fprintf(stderr, "bench_exec: %s: %s\n", name, nu_err_msg(&eb));
        exit(1);
    }
    t0 = bench_now();
    for (int i = 0; i < splits; i++) {
        if (op->process(state, &ctx, in, &emit, &eb) != NU_OK) {
            fprintf(stderr, "bench_exec: %s: %s\n", name, nu_err_msg(&eb));
            exit(1);
        }
    }
    t = (bench_now() - t0) / splits;
    if (rows != (size_t)(splits + 1) * in->nrows) {
        fprintf(stderr, "bench_exec: %s: %zu rows out, expected %zu\n", name, rows,
                (size_t)(splits + 1) * in->nrows);
        exit(1);
    }
    op->close(state);
    json_decref(cfg);
    return t;
}

int main(int argc, char **argv)
{
    int splits = argc > 1 ? atoi(argv[1]) : 200;
    int nrows = argc > 2 ? atoi(argv[2]) : 1000;
    char exec_cfg[1024];
    const char *root = getenv("NURION_SOURCE_DIR");
    if (splits <= 0 || nrows <= 0) {
        fprintf(stderr, "usage: nurion-bench-exec [SPLITS] [ROWS_PER_SPLIT]\n");
        return 2;
    }
    struct nu_schema *s = nu_schema_new(2);
    nu_schema_set(s, 0, "id", NU_T_INT64, false, NULL);
    nu_schema_set(s, 1, "payload", NU_T_STRING, false, NULL);
    struct nu_batch *in = nu_batch_new(s, (size_t)nrows);
    for (int i = 0; i < nrows; i++) {
        struct nu_value *row = nu_batch_add_row(in);
        row[0] = nu_value_int(i);
        row[1] = nu_batch_str(in, NU_T_STRING, "abcdefghijklmnop", 16);
    }
    snprintf(exec_cfg, sizeof(exec_cfg),
             "{\"argv\":[\"python3\",\"%s/examples/udf/double.py\"],\"output_schema\":"
             "[[\"id\",\"int64\"],[\"payload\",\"string\"],[\"y\",\"int64\"]]}",
             root && *root ? root : ".");
    double map = bench_run("map", "{\"columns\":{\"y\":\"id * 2\"}}", in, splits);
    double exec = bench_run("exec", exec_cfg, in, splits);
    printf("splits=%d rows_per_split=%d\n", splits, nrows);
    printf("map:  %.1f us/split (%.2f M rows/s)\n", map * 1e6, nrows / map / 1e6);
    printf("exec: %.1f us/split (%.2f M rows/s) python3 examples/udf/double.py\n", exec * 1e6,
           nrows / exec / 1e6);
    printf("ratio exec/map: %.1f\n", exec / map);
    nu_batch_destroy(in);
    nu_schema_unref(s);
    return 0;
}
