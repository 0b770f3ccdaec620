/*
 * file_source_int.h — internals of the `file_source` operator shared by its files (layer:
 * operators): op_file_source.c (config, schema, lifecycle), file_source_plan.c (file listing,
 * byte ranges, the record reader), file_source_csv.c (CSV parsing and typing) and
 * file_source_read.c (jsonl, avro and binary splits).
 *
 * Ownership: a struct nu_fsrc_conf owns its strings and its schema (nu_fsrc_conf_free). A reader
 * owns its descriptor and buffer (nu_fsrc_reader_close). Record pointers returned by the reader
 * are valid until its next call. Thread-safety: none; one instance per thread.
 */
#ifndef NU_OPERATORS_FILE_SOURCE_INT_H
#define NU_OPERATORS_FILE_SOURCE_INT_H

#include "operators/builtin.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NU_FSRC_MAX_SPLIT_ROWS   1000000LL
#define NU_FSRC_MAX_SPLIT_BYTES  (1LL << 40)
#define NU_FSRC_DFLT_SPLIT_BYTES (64LL << 20)
#define NU_FSRC_MAX_FILES        10000000LL
#define NU_FSRC_DFLT_MAX_FILES   100000LL
#define NU_FSRC_MAX_INFER_ROWS   1000000LL
#define NU_FSRC_MAX_INLINE       (64LL << 20)
#define NU_FSRC_MAX_PATTERNS     256
#define NU_FSRC_MAX_PATH         4096
/* Longest record (a line, or a CSV record with quoted newlines). */
#define NU_FSRC_MAX_RECORD (16u << 20)
/* Largest avro file read (the codec decodes a container at once). */
#define NU_FSRC_MAX_AVRO_FILE (64LL << 20)

typedef enum nu_fsrc_format {
    NU_FSRC_JSONL = 0,
    NU_FSRC_CSV,
    NU_FSRC_AVRO,
    NU_FSRC_BINARY,
} nu_fsrc_format_t;

struct nu_fsrc_conf {
    char **paths; /* glob patterns, "file://" removed; owned */
    size_t npaths;
    nu_fsrc_format_t format;
    long long split_rows, split_bytes, max_files;
    /* csv */
    bool header, newlines_in_quotes;
    char delim, quote;
    long long infer_rows;
    /* csv.columns (csv) or columns (jsonl): a fixed schema, owned; NULL to infer */
    struct nu_schema *columns;
    /* binary */
    long long inline_max;
};

/* Parse `config` (reporting at `path`) into *c, which is filled with defaults first and must be
 * released with nu_fsrc_conf_free even after problems. */
void nu_fsrc_conf_parse(const json_t *config, const char *path, struct nu_problems *p,
                        struct nu_fsrc_conf *c);
void nu_fsrc_conf_free(struct nu_fsrc_conf *c);

/* --- files and plans (file_source_plan.c) --- */

/* The sorted, de-duplicated regular files matching the patterns (directories are left out).
 * *files is owned (free each, then the array). Errors: NU_ERR_CONFIG (nothing matches, a glob
 * error), NU_ERR_TOO_LARGE (more than max_files). */
nu_err_t nu_fsrc_list(const struct nu_fsrc_conf *c, char ***files, size_t *n, struct nu_errbuf *eb);
void nu_fsrc_list_free(char **files, size_t n);

/* The plan schema: path string, offset, length, size, mtime_ns (int64). Returned owned. */
struct nu_schema *nu_fsrc_plan_schema(void);
/* Emit the plan: one plan split per file, or per byte range of ~split_bytes for line formats. */
nu_err_t nu_fsrc_plan(const struct nu_fsrc_conf *c, struct nu_schema *plan_schema,
                      const struct nu_op_emit *out, struct nu_errbuf *eb);

/* Map an errno of open/read on `path` to an error (ENOENT: NOT_FOUND, EACCES/EPERM: OPERATOR,
 * others: IO, retried). */
nu_err_t nu_fsrc_errno(int err, const char *what, const char *path, struct nu_errbuf *eb);

/* A streaming reader of the records that start inside a byte range. */
struct nu_fsrc_reader {
    int fd;
    const char *path; /* borrowed */
    unsigned char *buf;
    size_t cap, beg, end; /* unread data is buf[beg, end) */
    int64_t pos;          /* file offset of buf[beg] */
    int64_t stop;         /* records starting at or after stop belong to the next range */
    int64_t first;        /* file offset of the first record of the range */
    bool eof;
    int quote;      /* quote char when quoted fields may hold newlines, else -1 */
    uint64_t lines; /* newlines consumed since `first` */
    uint64_t base;  /* newlines before `first`, once known */
    bool base_known;
};

/* Open `path` and position at the first record starting in [offset, offset + length) (length
 * < 0: to the end). Errors: as nu_fsrc_errno. */
nu_err_t nu_fsrc_reader_open(struct nu_fsrc_reader *r, const char *path, int64_t offset,
                             int64_t length, int quote, struct nu_errbuf *eb);
/*
 * The next record: rec and len (without its line end; valid until the next call), *line (its line
 * number relative to the range's first record, from 0). *done when none is left. A record longer
 * than NU_FSRC_MAX_RECORD: NU_ERR_TOO_LARGE. *unterminated is set when the file ended inside a
 * quoted field (quote-aware readers only).
 */
nu_err_t nu_fsrc_reader_next(struct nu_fsrc_reader *r, const char **rec, size_t *len,
                             uint64_t *line, bool *unterminated, bool *done, struct nu_errbuf *eb);
void nu_fsrc_reader_close(struct nu_fsrc_reader *r);
/* The 1-based line number in the file of relative line `rel` of the range (reads the file's
 * prefix when the range does not start at 0: call only on the error path). */
uint64_t nu_fsrc_reader_lineno(struct nu_fsrc_reader *r, uint64_t rel);

/* --- per format (file_source_csv.c, file_source_read.c) --- */

/* A plan row decoded. */
struct nu_fsrc_task {
    const char *path; /* NUL-terminated copy in scratch */
    int64_t offset, length, size, mtime;
    const struct nu_batch *plan; /* the plan batch and row index, for rejects */
    size_t plan_row;
};

/* Infer the CSV schema from the first infer_rows records of `file`. *out owned. */
nu_err_t nu_fsrc_csv_infer(const struct nu_fsrc_conf *c, const char *file, struct nu_schema **out,
                           struct nu_errbuf *eb);
nu_err_t nu_fsrc_csv_process(const struct nu_fsrc_conf *c, struct nu_schema *schema,
                             const struct nu_fsrc_task *t, const struct nu_op_batch_ctx *ctx,
                             const struct nu_op_emit *out, struct nu_errbuf *eb);

/* Schema of the first infer_rows lines of a JSON Lines file (codec inference). */
nu_err_t nu_fsrc_jsonl_infer(const struct nu_fsrc_conf *c, const char *file, struct nu_schema **out,
                             struct nu_errbuf *eb);
nu_err_t nu_fsrc_jsonl_process(const struct nu_fsrc_conf *c, const struct nu_fsrc_task *t,
                               const struct nu_op_batch_ctx *ctx, const struct nu_op_emit *out,
                               struct nu_errbuf *eb);
/* Read a whole avro container file (at most NU_FSRC_MAX_AVRO_FILE bytes) into *out. */
nu_err_t nu_fsrc_avro_read(const char *path, struct nu_batch **out, struct nu_errbuf *eb);
nu_err_t nu_fsrc_avro_process(const struct nu_fsrc_conf *c, const struct nu_fsrc_task *t,
                              const struct nu_op_emit *out, struct nu_errbuf *eb);
struct nu_schema *nu_fsrc_binary_schema(void);
nu_err_t nu_fsrc_binary_process(const struct nu_fsrc_conf *c, struct nu_schema *schema,
                                const struct nu_fsrc_task *t, const struct nu_op_emit *out,
                                struct nu_errbuf *eb);

#endif
