/*
 * connectors_int.h — config helpers and pure parts shared by the connectors (layer: stage).
 * Thread-safety: everything here is reentrant.
 */
#ifndef NU_STAGE_CONNECTORS_INT_H
#define NU_STAGE_CONNECTORS_INT_H

#include "common/codec.h"
#include "common/split.h"
#include "operators/builtin.h"
#include "stage/connectors.h"

#include <stdbool.h>
#include <stdint.h>

/* Read string field `key` into *out (borrowed from obj; NULL when absent and not required). */
bool nu_conn_get_string(const json_t *obj, const char *key, bool required, struct nu_json_path *jp,
                        struct nu_problems *p, const char **out);
/* Read string field `key`, one of `allowed` (n of them); its index into *out (left unchanged
 * when absent). */
bool nu_conn_get_enum(const json_t *obj, const char *key, const char *const *allowed, size_t n,
                      struct nu_json_path *jp, struct nu_problems *p, int *out);
/* Read boolean field `key` into *out (left unchanged when absent). */
bool nu_conn_get_bool(const json_t *obj, const char *key, struct nu_json_path *jp,
                      struct nu_problems *p, bool *out);
/* Check that field `key`, when present, is an object whose values are all strings. */
bool nu_conn_check_string_map(const json_t *obj, const char *key, struct nu_json_path *jp,
                              struct nu_problems *p);

/* One plan row of kafka_source: offsets [start, end) of a partition; end -1 = unbounded. */
struct nu_kafka_range {
    int32_t partition;
    int64_t start, end;
};

/*
 * Split [start, end) of each of `n` partitions (parts[i] = {partition, start, end}) into ranges
 * of at most `split` records, in partition then offset order (deterministic). An unbounded
 * partition (end < 0) gives one range with end -1; an empty one gives none. Returns the number
 * of ranges written to `out` (at most `cap`; the total is returned even when larger).
 */
size_t nu_kafka_ranges(const struct nu_kafka_range *parts, size_t n, int64_t split,
                       struct nu_kafka_range *out, size_t cap);

/* Value formats of kafka_source. NU_KSRC_AVRO_CONFLUENT: magic byte 0, a 4-byte big-endian
 * schema id, then one Avro binary datum of the writer schema (the `hint`, Avro schema JSON). */
enum { NU_KSRC_JSON = 0, NU_KSRC_AVRO, NU_KSRC_RAW, NU_KSRC_AVRO_CONFLUENT };

/* One consumed record, as kafka_source turns it into rows (all borrowed). */
struct nu_kafka_record {
    const void *key, *value; /* NULL when absent */
    size_t keylen, len;
    const struct nu_header *headers;
    size_t nheaders;
    int64_t timestamp;
    int32_t partition;
    int64_t offset;
};

/*
 * Append the rows of record `rec` to `out`, whose schema is the value columns `vs` followed,
 * when `metadata`, by key, headers, timestamp, partition and offset (and schema_id for
 * NU_KSRC_AVRO_CONFLUENT). `format` is NU_KSRC_*; `hint` the compact schema JSON of `vs` (json)
 * or the Avro writer schema JSON (confluent). A record that cannot be read leaves `out` as it
 * was and returns NU_ERR_CORRUPT or NU_ERR_SCHEMA with the reason in eb.
 */
nu_err_t nu_kafka_rows_add(struct nu_batch *out, const struct nu_schema *vs, int format,
                           const char *hint, bool metadata, const struct nu_kafka_record *rec,
                           struct nu_errbuf *eb);
/* The same with a codec cache (borrowed, may be NULL) that keeps the compiled schema. */
nu_err_t nu_kafka_rows_add_cached(nu_codec_cache_t *cache, struct nu_batch *out,
                                  const struct nu_schema *vs, int format, const char *hint,
                                  bool metadata, const struct nu_kafka_record *rec,
                                  struct nu_errbuf *eb);

/* Is s[0..len) valid UTF-8? */
bool nu_conn_utf8_valid(const char *s, size_t len);

#endif
