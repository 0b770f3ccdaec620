/*
 * split.h — split metadata carried in Kafka record headers, and deterministic split ids
 * (layer: common; no librdkafka here: headers are plain {name, value, len} triples).
 *
 * Headers of a split record (values are text, readable with kcat -f '%h'):
 *   nurion-kind     "data" | "eos"                           required
 *   nurion-split    split id (see below)                     required on data
 *   nurion-parents  parent split ids, comma-separated        optional ("" or absent: none)
 *   nurion-stage    id of the stage that wrote the record     required
 *   nurion-rows     decimal row count                        required on data
 *   nurion-attempt  decimal attempt number, from 0           optional (0)
 *   nurion-lane     "<input topic>:<partition>" or "plan"    required on eos
 *   nurion-format   "avro" | "json"                          optional
 *   nurion-schema   compact writer schema (json format)      optional
 * Other headers (not starting with "nurion-") are ignored by the parser.
 *
 * Split id format: "<stage>-<h>", where h is the first 16 lower-case hex digits of the SHA-256 of
 * "nurion-split-v1", then the job id, the stage id, the number of parents, the parent ids in
 * byte-wise sorted order, each string preceded by its length as 8 big-endian bytes, and finally
 * the position as 8 big-endian bytes. It depends on nothing else (no time, no randomness), so a
 * re-run plans the same ids, and the order in which parents are given does not matter.
 *
 * Thread-safety: reentrant; each struct belongs to one thread at a time.
 */
#ifndef NU_COMMON_SPLIT_H
#define NU_COMMON_SPLIT_H

#include "common/buf.h"
#include "common/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NU_SPLIT_ID_LEN      64 /* job and stage ids: [A-Za-z0-9_-]{1,64} */
#define NU_SPLIT_ID_MAX      96 /* buffer size for a split id, NUL included */
#define NU_SPLIT_MAX_PARENTS 4096
#define NU_SPLIT_MAX_LANE    320 /* topic (249) + ':' + partition */
#define NU_SPLIT_MAX_ATTEMPT 1000000
#define NU_SPLIT_MAX_HEADERS 9

typedef enum nu_split_kind {
    NU_SPLIT_DATA = 0,
    NU_SPLIT_EOS,
} nu_split_kind_t;

/*
 * Metadata of one split record. When filled by nu_split_meta_parse() every pointer is owned by
 * the struct (release with nu_split_meta_clear); when given to nu_split_headers_build() they are
 * borrowed. Optional strings are NULL when absent.
 */
struct nu_split_meta {
    nu_split_kind_t kind;
    char *id;       /* split id; may be NULL on eos */
    char *stage;    /* required */
    char **parents; /* nparents ids */
    size_t nparents;
    uint64_t rows;
    unsigned attempt;
    char *lane;   /* required on eos */
    char *format; /* "avro" | "json" | NULL */
    char *schema; /* json format writer schema, NUL-terminated, or NULL */
};

struct nu_header {
    const char *name;  /* NUL-terminated */
    const char *value; /* not NUL-terminated; NULL when len == 0 is allowed */
    size_t len;
};

/* An owned header list: names are static strings, values point into `store`. */
struct nu_headers {
    struct nu_header h[NU_SPLIT_MAX_HEADERS];
    size_t n;
    struct nu_buf store;
};

/* Free the owned strings of a parsed meta and zero it. Accepts NULL. */
void nu_split_meta_clear(struct nu_split_meta *m);

/* Build the header list of `m` into `out` (reset first; the buffer is reused). NU_ERR_INVALID
 * when a required field is missing or malformed (names the field). */
nu_err_t nu_split_headers_build(const struct nu_split_meta *m, struct nu_headers *out,
                                struct nu_errbuf *eb);
void nu_headers_free(struct nu_headers *h); /* releases the store; accepts NULL */

/* Parse and validate headers into *out (owned; cleared on error). A missing, duplicated or
 * malformed nurion-* header -> NU_ERR_CORRUPT naming the header. */
nu_err_t nu_split_meta_parse(const struct nu_header *h, size_t n, struct nu_split_meta *out,
                             struct nu_errbuf *eb);

/* Is `s` (len bytes) a valid job/stage id ([A-Za-z0-9_-]{1,64})? */
bool nu_split_id_valid(const char *s, size_t len);

/* Deterministic split id (format above) into out[NU_SPLIT_ID_MAX]. `parents` may be NULL when
 * n == 0. NU_ERR_INVALID for a bad job or stage id or more than NU_SPLIT_MAX_PARENTS parents. */
nu_err_t nu_split_id(const char *job, const char *stage, const char *const *parents, size_t n,
                     uint64_t position, char out[NU_SPLIT_ID_MAX], struct nu_errbuf *eb);

#endif
