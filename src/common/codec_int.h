/*
 * codec_int.h — internals shared by codec.c, codec_avro.c and codec_json.c (layer: common).
 *
 * A compiled schema (struct nu_cschema) is everything the codecs derive from a schema once: the
 * nu_schema itself, the Avro decoding plan, the Avro schema text and the JSON object keys. It is
 * owned by the cache that holds it, or by the caller that built it without a cache.
 */
#ifndef NU_COMMON_CODEC_INT_H
#define NU_COMMON_CODEC_INT_H

#include "common/codec.h"

#include <stdint.h>

/* Avro wire types of a decoding plan. */
enum nu_avro_kind {
    NU_AV_NULL,
    NU_AV_BOOLEAN,
    NU_AV_INT,
    NU_AV_LONG,
    NU_AV_FLOAT,
    NU_AV_DOUBLE,
    NU_AV_STRING,
    NU_AV_BYTES,
    NU_AV_ENUM,
    NU_AV_FIXED,
    NU_AV_ARRAY,
    NU_AV_MAP,
};

struct nu_avro_node {
    enum nu_avro_kind kind;
    int null_index;            /* union branch of null: 0 or 1; -1 when not a nullable union */
    size_t fixed_size;         /* FIXED */
    size_t min_width;          /* fewest bytes one value takes on the wire */
    size_t nsyms;              /* ENUM */
    char **syms;               /* ENUM symbols, owned */
    struct nu_avro_node *item; /* ARRAY items / MAP values, owned */
};

enum nu_cschema_kind {
    NU_CS_ENCODE,    /* keyed by schema structure */
    NU_CS_AVRO,      /* keyed by Avro schema text */
    NU_CS_JSON_HINT, /* keyed by compact schema text */
};

struct nu_cschema {
    struct nu_schema *schema;   /* one reference */
    struct nu_avro_node *nodes; /* NU_CS_AVRO: ncols plans */
    struct nu_buf avro_json;    /* NU_CS_ENCODE: Avro schema text */
    struct nu_buf json_keys;    /* NU_CS_ENCODE: "\"name\":" fragments, back to back */
    size_t *json_key_off;       /* NU_CS_ENCODE: ncols + 1 offsets into json_keys */
    size_t min_row_width;       /* NU_CS_AVRO: smallest encoding of one row, bytes */
    size_t zero_width_cols;     /* NU_CS_AVRO: columns of type null */
    /* cache key */
    enum nu_cschema_kind kind;
    uint64_t hash;
    char *key;
    size_t keylen;
};

void nu_cschema_free(struct nu_cschema *cs); /* accepts NULL */

/* Find or build the compiled schema for encoding `s`. *owned is set when the caller must free
 * the result (no cache). */
nu_err_t nu_codec_cschema_encode(nu_codec_cache_t *c, struct nu_schema *s, struct nu_cschema **out,
                                 bool *owned, struct nu_errbuf *eb);
/* Find or build the compiled schema of a schema text (NU_CS_AVRO or NU_CS_JSON_HINT). */
nu_err_t nu_codec_cschema_text(nu_codec_cache_t *c, enum nu_cschema_kind kind, const char *text,
                               size_t len, struct nu_cschema **out, bool *owned,
                               struct nu_errbuf *eb);

/* A fast 64-bit hash of bytes (not cryptographic). */
uint64_t nu_codec_hash64(const void *p, size_t n, uint64_t seed);

/* Is `name` a valid Avro name ([A-Za-z_][A-Za-z0-9_]*)? */
bool nu_avro_name_valid(const char *name);

/* codec_avro.c */
nu_err_t nu_avro_compile(const char *json, size_t len, struct nu_cschema *cs, struct nu_errbuf *eb);
void nu_avro_nodes_free(struct nu_avro_node *nodes, size_t n);
nu_err_t nu_avro_encode(const struct nu_codec_opts *o, const struct nu_cschema *cs,
                        const struct nu_batch *b, struct nu_buf *out, struct nu_errbuf *eb);
nu_err_t nu_avro_decode(nu_codec_cache_t *c, const unsigned char *p, size_t len,
                        struct nu_batch **out, struct nu_errbuf *eb);

/* codec_json.c */
nu_err_t nu_cjson_encode(const struct nu_codec_opts *o, const struct nu_cschema *cs,
                         const struct nu_batch *b, struct nu_buf *out, struct nu_errbuf *eb);
nu_err_t nu_cjson_decode(nu_codec_cache_t *c, const char *p, size_t len, const char *hint,
                         size_t hint_len, struct nu_batch **out, struct nu_errbuf *eb);
/* JSON string literal of `s` (quotes included) appended to `out`; false if not valid UTF-8. */
bool nu_cjson_put_string(struct nu_buf *out, const char *s, size_t len);

#endif
