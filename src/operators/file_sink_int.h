/*
 * file_sink_int.h — internals of the `file_sink` operator shared by op_file_sink.c (config,
 * per-split files), file_sink_enc.c (CSV text, gzip members, file writing) and file_sink_roll.c
 * (rolling mode) (layer: operators).
 *
 * Ownership: struct nu_file_sink owns its strings, buffers and the open rolling file.
 * Thread-safety: none; one instance per thread.
 */
#ifndef NU_OPERATORS_FILE_SINK_INT_H
#define NU_OPERATORS_FILE_SINK_INT_H

#include "operators/builtin.h"

#include "common/buf.h"

#include <stdbool.h>
#include <stdint.h>

#define NU_FILE_SINK_MAX_PATH     3072
#define NU_FILE_SINK_MAX_SPLIT_ID 512
#define NU_FILE_SINK_MAX_ROLL     (1LL << 40)

typedef enum nu_fsink_format {
    NU_FSINK_JSONL = 0,
    NU_FSINK_AVRO,
    NU_FSINK_CSV,
} nu_fsink_format_t;

/* Split ids already in the open rolling file (open addressing, owned strings). */
struct nu_fsink_idset {
    char **slot;
    size_t cap, n;
};

struct nu_file_sink {
    char *dir;
    nu_fsink_format_t format;
    bool gzip, rolling;
    long long roll_rows, roll_bytes;
    char ext[16]; /* "jsonl", "csv.gz", "avro" */
    uint32_t instance;
    struct nu_buf buf, zbuf; /* reused across splits */
    /* rolling mode: the open file */
    int roll_fd;     /* -1 when none */
    char *roll_tmp;  /* its temporary path */
    char *roll_name; /* final path */
    long long roll_nrows, roll_nbytes;
    struct nu_fsink_idset seen;
};

/* The file name of a split id, escaped (%XX outside [A-Za-z0-9_.-]); NULL when the id is empty
 * or longer than NU_FILE_SINK_MAX_SPLIT_ID. Owned. */
char *nu_fsink_name(const char *split);

/* Encode `in` in the sink's format (CSV with its header line when `header`), gzip-compressed
 * when configured (a complete gzip member); the result is in *out (fs->buf or fs->zbuf). */
nu_err_t nu_fsink_encode(struct nu_file_sink *fs, const struct nu_batch *in, bool header,
                         const struct nu_buf **out, struct nu_errbuf *eb);
/* Write all bytes to fd; NU_ERR_IO naming `path`. */
nu_err_t nu_fsink_write_all(int fd, const unsigned char *p, size_t n, const char *path,
                            struct nu_errbuf *eb);
/* fsync the directory `dir`. */
nu_err_t nu_fsink_sync_dir(const char *dir, struct nu_errbuf *eb);
/* Can the sink's format hold schema `s`? (CSV: scalar columns only.) */
nu_err_t nu_fsink_check_schema(nu_fsink_format_t f, const struct nu_schema *s,
                               struct nu_errbuf *eb);
/* Length of the longest prefix of `data` made of complete gzip members (0 when none). */
size_t nu_fsink_gzip_complete(const unsigned char *data, size_t len);

/* Rolling mode (file_sink_roll.c). */
nu_err_t nu_fsink_roll_recover(struct nu_file_sink *fs, struct nu_errbuf *eb);
nu_err_t nu_fsink_roll_process(struct nu_file_sink *fs, const char *split,
                               const struct nu_batch *in, struct nu_errbuf *eb);
nu_err_t nu_fsink_roll_finish(struct nu_file_sink *fs, struct nu_errbuf *eb);
void nu_fsink_roll_free(struct nu_file_sink *fs);

#endif
