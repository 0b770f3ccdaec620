/*
 * codec.h — the split value codec: a batch of rows <-> the bytes of one Kafka record value
 * (layer: common).
 *
 * Two formats, chosen per job:
 *  - avro: an Avro object-container payload (magic "Obj\x01", metadata with avro.schema and
 *    avro.codec, a 16-byte sync marker, blocks of rows). The writer schema is embedded, so the
 *    value is self-describing and readable by any Avro tool. Codec "null" or "deflate" (raw
 *    deflate). The sync marker is derived from the schema and the row data, so identical input
 *    gives identical bytes. Columns map to Avro as BOOL->boolean, INT64->long, DOUBLE->double,
 *    STRING->string, BYTES->bytes, ARRAY->array, MAP->map, nullable->["null",T], an always-null
 *    column->"null"; the record is "nurion.Row". A column name that is not a valid Avro name is
 *    written as a valid one ("_" for invalid characters, de-duplicated) with the original kept
 *    in the field property "nurion.name". Foreign files may also use int and float (widened to
 *    INT64 / DOUBLE), enum (read as STRING), fixed (read as BYTES) and ["T","null"].
 *  - json: JSON Lines, one object per row, keys = column names in schema order. BYTES are base64
 *    strings (RFC 4648, padded); doubles are written with 17 significant digits (always with a
 *    '.' or exponent) and read back exactly; the non-finite doubles are written as the strings
 *    "NaN", "Infinity" and "-Infinity" and read back as doubles when the schema says DOUBLE.
 *    JSON cannot carry exact types, so the writer schema travels beside the value (the record
 *    header nurion-schema holds nu_schema_to_json()) and is passed back as `schema_hint`.
 *    Without a hint the decoder infers one (see nu_codec_decode).
 *
 * Compact schema JSON (the json format's hint): an array of [name, type] pairs, where type is
 * "null" | "boolean" | "int64" | "double" | "string" | "bytes" | "array<T>" | "map<T>", and a
 * trailing "?" marks a nullable type, e.g. [["id","int64"],["tags","array<string?>?"]].
 *
 * Decoding is bounds-checked: every length and count is checked against the remaining bytes and
 * the limits below before anything is allocated; bad input is an error, never a crash.
 *
 * Thread-safety: functions are reentrant; a cache belongs to one thread at a time.
 */
#ifndef NU_COMMON_CODEC_H
#define NU_COMMON_CODEC_H

#include "common/buf.h"
#include "common/err.h"
#include "common/value.h"

#include <stdbool.h>
#include <stddef.h>

typedef enum nu_format {
    NU_FORMAT_AVRO = 0,
    NU_FORMAT_JSON,
} nu_format_t;

/* Limits on untrusted values (in addition to NU_MAX_COLUMNS, NU_MAX_NAME_LEN, NU_MAX_NESTING). */
#define NU_CODEC_MAX_ROWS         (1u << 22)  /* rows in one value */
#define NU_CODEC_MAX_VALUE_BYTES  (64u << 20) /* encoded value, and decoded (inflated) data */
#define NU_CODEC_MAX_LINE_BYTES   (16u << 20) /* one JSON line */
#define NU_CODEC_MAX_SCHEMA_BYTES (1u << 20)  /* a schema text */
#define NU_CODEC_MAX_ZERO_WIDTH   (1u << 20)  /* values taking no bytes on the wire (null type) */
#define NU_CODEC_MAX_META_ENTRIES 64          /* Avro file metadata entries */

/* "avro" | "json" (also "jsonl"). NU_ERR_INVALID naming the bad value otherwise. */
nu_err_t nu_format_parse(const char *s, nu_format_t *out, struct nu_errbuf *eb);
const char *nu_format_name(nu_format_t f);

/*
 * A cache of compiled schemas, keyed by schema text (decoding) or schema structure (encoding), so
 * a stream of records with the same writer schema parses it once. Holds a bounded number of
 * entries (least recently inserted is evicted). Schemas handed to the encoder must not be
 * modified after use while the cache lives.
 */
typedef struct nu_codec_cache nu_codec_cache_t;
nu_codec_cache_t *nu_codec_cache_new(void);
void nu_codec_cache_destroy(nu_codec_cache_t *c); /* accepts NULL */

struct nu_codec_opts {
    nu_format_t format;
    bool deflate;            /* avro: codec "deflate" instead of "null" */
    int deflate_level;       /* 1..9, or 0 for zlib's default */
    size_t max_value_bytes;  /* 0: NU_CODEC_MAX_VALUE_BYTES; larger output -> NU_ERR_TOO_LARGE */
    size_t block_rows;       /* avro rows per block; 0: one block */
    nu_codec_cache_t *cache; /* optional, borrowed */
};

/*
 * Encode batch `b` into `out`, which is reset first (its capacity is kept: reuse one buffer for
 * many splits). Errors: NU_ERR_SCHEMA (invalid schema, duplicate column names, a value that does
 * not match its column, a null in a non-nullable column — naming row and column), NU_ERR_INVALID
 * (json: string that is not valid UTF-8), NU_ERR_TOO_LARGE. On error `out` holds garbage.
 */
nu_err_t nu_codec_encode(const struct nu_codec_opts *o, const struct nu_batch *b,
                         struct nu_buf *out, struct nu_errbuf *eb);

/*
 * Decode a value into a new batch (*out, returned owned; NULL on error). `schema_hint` is the
 * json format's compact schema (NUL-terminated, may be NULL; ignored for avro). Without a hint
 * the json decoder infers the columns (first-seen key order) and their types: integers ->
 * int64, numbers -> double (integers and numbers mixed -> double), strings, booleans, arrays,
 * objects -> map; a column missing or null in some row is nullable; a column only ever null has
 * type null. Errors: NU_ERR_CORRUPT (truncated or malformed bytes, with the byte offset or line),
 * NU_ERR_SCHEMA (unsupported schema, data not matching it), NU_ERR_UNSUPPORTED (Avro codec),
 * NU_ERR_TOO_LARGE (a limit above).
 */
nu_err_t nu_codec_decode(nu_format_t f, const void *data, size_t len, const char *schema_hint,
                         struct nu_batch **out, struct nu_errbuf *eb);
/* The same with an optional cache and a hint given by length (header values are not
 * NUL-terminated; hint NULL or hint_len 0 means no hint). */
nu_err_t nu_codec_decode_cached(nu_codec_cache_t *c, nu_format_t f, const void *data, size_t len,
                                const char *hint, size_t hint_len, struct nu_batch **out,
                                struct nu_errbuf *eb);

/*
 * Decode one Avro binary datum (no object container, no framing) written with the record schema
 * `schema` (Avro schema JSON of length schema_len: the writer schema) into a new batch of one row
 * (*out, owned; NULL on error). All of `data` must be the datum: missing or trailing bytes are
 * NU_ERR_CORRUPT. Other errors as nu_codec_decode. The optional cache keeps the compiled schema.
 */
nu_err_t nu_codec_decode_avro_datum(nu_codec_cache_t *c, const char *schema, size_t schema_len,
                                    const void *data, size_t len, struct nu_batch **out,
                                    struct nu_errbuf *eb);

/*
 * Append row `row` of `b` to `out` as one Avro binary datum (no container) of the writer schema
 * nu_schema_to_avro_json(b->schema). Errors as nu_codec_encode; on error `out` is as it was.
 */
nu_err_t nu_codec_encode_avro_datum(const struct nu_batch *b, size_t row, struct nu_buf *out,
                                    struct nu_errbuf *eb);

/* Check a schema is encodable: column count, names present, unique and within NU_MAX_NAME_LEN,
 * item types present, nesting within NU_MAX_NESTING. NU_ERR_SCHEMA otherwise. */
nu_err_t nu_codec_check_schema(const struct nu_schema *s, struct nu_errbuf *eb);

/* Avro schema JSON of `s` (compact), written to `out` after a reset, NUL-terminated (the NUL is
 * not counted in out->len). */
nu_err_t nu_schema_to_avro_json(const struct nu_schema *s, struct nu_buf *out,
                                struct nu_errbuf *eb);
/* Parse an Avro record schema (see the type mapping above) into a new schema (*out, owned). */
nu_err_t nu_schema_from_avro_json(const char *json, size_t len, struct nu_schema **out,
                                  struct nu_errbuf *eb);
/* Compact schema JSON (format above) of `s`, written like nu_schema_to_avro_json. */
nu_err_t nu_schema_to_json(const struct nu_schema *s, struct nu_buf *out, struct nu_errbuf *eb);
nu_err_t nu_schema_from_json(const char *json, size_t len, struct nu_schema **out,
                             struct nu_errbuf *eb);

#endif
