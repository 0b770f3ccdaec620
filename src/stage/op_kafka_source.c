/*
 * op_kafka_source.c — the `kafka_source` source: rows from the records of a Kafka topic.
 *
 * Config {"topic": "t", "brokers": "host:port,…" (default: the job's cluster, taken from the
 * environment variable NURION_BROKERS, which `nurion run` and `nurion stage` users set),
 * "kafka": {librdkafka properties, e.g. for another cluster}, "start": "earliest" | "latest" |
 * {"timestamp": ms} | {"offsets": {"0": 10, …}} (partitions not named start at the earliest
 * offset), "mode": "finite" | "unbounded", "plan_interval_ms": N (unbounded; default 500),
 * "format": "json" | "avro" | "raw", "framing": "none" | "confluent" (avro), "schema": the value
 * columns (json and avro; a compact schema array [["id","int64"], …] or an Avro record schema),
 * "split_records": N (default 1000), "metadata": true}.
 *
 * plan() reads the partitions and their offsets once — start as configured, end at the high
 * watermark (read_committed: the last stable offset) — and emits one plan split per range of at
 * most split_records offsets: rows (partition, start_offset, end_offset), in partition and
 * offset order, so the same offsets always give the same plan.
 *
 * process() reads each range [start, end) with an assign()-based consumer (no group, no
 * commits, read_committed) and emits one batch per range with the value columns, then (unless
 * "metadata" is false) key (string), headers (map of strings), timestamp (ms), partition and
 * offset. json: each record value is JSON (one object, or JSON Lines) read with the schema;
 * avro: each value is an Avro object container, columns matched by name; avro with "framing":
 * "confluent": magic byte 0, a 4-byte big-endian schema id, one Avro binary datum decoded with
 * "schema" (the writer schema, which must be an Avro record schema; the id goes to the metadata
 * column schema_id); raw: a bytes column "value" (null for a tombstone). A range always gives
 * the same rows (the records below the stable offset are fixed), so retries and replays are
 * safe. A record that cannot be read (bad JSON or Avro, bad framing, a column of the wrong type,
 * a key or header that is not UTF-8) is dead-lettered with ctx->reject, its raw value kept.
 *
 * "mode": "unbounded" keeps process() finite: the planner calls plan() again and again (see
 * planner.h, nu_plan_tail), each time with "start" set to {"offsets": where the plan ends}. The
 * first pass (start not given as offsets) also emits an empty range for each empty partition,
 * so where "latest" or a timestamp put the start is recorded in the plan itself.
 */
#include "stage/connectors_int.h"

#include "common/codec.h"
#include "common/mem.h"
#include "stage/kafka.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NU_KSRC_MAX_SPLIT       1000000LL
#define NU_KSRC_MAX_PARTS       100000
#define NU_KSRC_MAX_PROPS       64
#define NU_KSRC_TIMEOUT_MS      30000
#define NU_KSRC_NMETA           5
#define NU_KSRC_MAX_INTERVAL_MS 600000

enum { NU_KSRC_EARLIEST = 0, NU_KSRC_LATEST, NU_KSRC_TIMESTAMP, NU_KSRC_OFFSETS };

static const char *const nu_ksrc_fields[] = {
    "topic",    "brokers", "kafka",         "start",           "mode", "format", "schema",
    "metadata", "framing", "split_records", "plan_interval_ms"};
#define NU_KSRC_NFIELDS (sizeof(nu_ksrc_fields) / sizeof(nu_ksrc_fields[0]))
static const char *const nu_ksrc_formats[] = {"json", "avro", "raw"};
static const char *const nu_ksrc_framings[] = {"none", "confluent"};
static const char *const nu_ksrc_meta[NU_KSRC_NMETA] = {"key", "headers", "timestamp", "partition",
                                                        "offset"};

struct nu_ksrc {
    char *topic, *brokers, *group;
    int format;
    int start;
    int64_t start_ts;
    json_t *offsets; /* {"partition": offset} (owned copy) */
    long long split;
    bool metadata;
    bool unbounded;
    struct nu_kafka_prop props[NU_KSRC_MAX_PROPS];
    size_t nprops;
    struct nu_schema *value_schema; /* json/avro value columns; NULL for raw */
    char *hint;                     /* json: compact schema JSON; confluent: Avro schema JSON */
    nu_codec_cache_t *cache;        /* compiled writer schema (confluent) */
    struct nu_schema *plan_schema, *out_schema;
    rd_kafka_t *rk; /* reader, created on first use */
};

/* Does `config` ask for Confluent-framed Avro values? */
static bool nu_ksrc_confluent(const json_t *config)
{
    const char *fr = json_string_value(json_object_get(config, "framing"));
    return fr && strcmp(fr, "confluent") == 0;
}

/* The value columns of `config` into *out (owned), or NULL for raw. Errors go to eb. */
static nu_err_t nu_ksrc_value_schema(const json_t *config, struct nu_schema **out,
                                     struct nu_errbuf *eb)
{
    const json_t *s = json_object_get(config, "schema");
    const char *fmt = json_string_value(json_object_get(config, "format"));
    char *text = NULL;
    nu_err_t rc;

    *out = NULL;
    if (fmt && strcmp(fmt, "raw") == 0) {
        *out = nu_schema_new(1);
        nu_schema_set(*out, 0, "value", NU_T_BYTES, true, NULL);
        return NU_OK;
    }
    if (!s)
        return nu_err_set(eb, NU_ERR_CONFIG, "format \"%s\" needs \"schema\" (the value columns)",
                          fmt ? fmt : "json");
    if (nu_ksrc_confluent(config) && !json_is_object(s))
        return nu_err_set(eb, NU_ERR_CONFIG,
                          "\"framing\": \"confluent\" needs \"schema\" to be the Avro record "
                          "schema the values were written with");
    text = json_dumps(s, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text)
        return nu_err_set(eb, NU_ERR_CONFIG, "\"schema\" cannot be serialized");
    if (json_is_array(s))
        rc = nu_schema_from_json(text, strlen(text), out, eb);
    else if (json_is_object(s))
        rc = nu_schema_from_avro_json(text, strlen(text), out, eb);
    else
        rc = nu_err_set(eb, NU_ERR_CONFIG,
                        "\"schema\" must be an array of [name, type] or an Avro record schema");
    if (rc == NU_OK)
        rc = nu_codec_check_schema(*out, eb);
    if (rc != NU_OK) {
        nu_schema_unref(*out);
        *out = NULL;
        if (rc != NU_ERR_CONFIG)
            rc = NU_ERR_CONFIG;
    }
    free(text);
    return rc;
}

/* The output schema: value columns, then the metadata columns (schema_id last, when `sid`). */
static nu_err_t nu_ksrc_out_schema(const struct nu_schema *vs, bool metadata, bool sid,
                                   struct nu_schema **out, struct nu_errbuf *eb)
{
    size_t n = vs->ncols + (metadata ? NU_KSRC_NMETA + (sid ? 1 : 0) : 0);
    struct nu_schema *s;
    struct nu_field str = {.type = NU_T_STRING, .nullable = true};

    *out = NULL;
    if (metadata)
        for (size_t i = 0; i < NU_KSRC_NMETA; i++)
            if (nu_schema_find(vs, nu_ksrc_meta[i]) >= 0)
                return nu_err_set(eb, NU_ERR_CONFIG,
                                  "value column \"%s\" clashes with a metadata column (set "
                                  "\"metadata\": false or rename it)",
                                  nu_ksrc_meta[i]);
    if (metadata && sid && nu_schema_find(vs, "schema_id") >= 0)
        return nu_err_set(eb, NU_ERR_CONFIG,
                          "value column \"schema_id\" clashes with a metadata column (set "
                          "\"metadata\": false or rename it)");
    s = nu_schema_new(n);
    for (size_t i = 0; i < vs->ncols; i++)
        nu_schema_set(s, i, vs->cols[i].name, vs->cols[i].type, vs->cols[i].nullable,
                      vs->cols[i].item);
    if (metadata) {
        size_t b = vs->ncols;
        nu_schema_set(s, b, "key", NU_T_STRING, true, NULL);
        nu_schema_set(s, b + 1, "headers", NU_T_MAP, false, &str);
        nu_schema_set(s, b + 2, "timestamp", NU_T_INT64, false, NULL);
        nu_schema_set(s, b + 3, "partition", NU_T_INT64, false, NULL);
        nu_schema_set(s, b + 4, "offset", NU_T_INT64, false, NULL);
        if (sid)
            nu_schema_set(s, b + 5, "schema_id", NU_T_INT64, false, NULL);
    }
    *out = s;
    return NU_OK;
}

static void nu_ksrc_check_start(const json_t *config, struct nu_json_path *jp,
                                struct nu_problems *p)
{
    const json_t *st = json_object_get(config, "start"), *v;
    const char *k;
    size_t mark = nu_json_path_push_key(jp, "start");

    if (!st || (json_is_string(st) && (strcmp(json_string_value(st), "earliest") == 0 ||
                                       strcmp(json_string_value(st), "latest") == 0))) {
        /* fine */
    } else if (json_is_object(st) && json_object_size(st) == 1 &&
               (v = json_object_get(st, "timestamp"))) {
        long long ts;
        size_t m2 = nu_json_path_push_key(jp, "timestamp");
        nu_json_get_int(v, 0, 1LL << 53, jp, p, &ts);
        nu_json_path_pop(jp, m2);
    } else if (json_is_object(st) && json_object_size(st) == 1 &&
               json_is_object(v = json_object_get(st, "offsets"))) {
        const json_t *o;
        json_object_foreach((json_t *)v, k, o)
        {
            char *end;
            long part = strtol(k, &end, 10);
            long long off;
            size_t m2 = nu_json_path_push_key(jp, k);
            if (*k == '\0' || *end != '\0' || part < 0 || part >= NU_KSRC_MAX_PARTS)
                nu_problems_add(p, jp->buf, "\"%s\" is not a partition number", k);
            else
                nu_json_get_int(o, 0, 1LL << 62, jp, p, &off);
            nu_json_path_pop(jp, m2);
        }
    } else {
        nu_problems_add(p, jp->buf,
                        "expected \"earliest\", \"latest\", {\"timestamp\": ms} or "
                        "{\"offsets\": {\"partition\": offset}}");
    }
    nu_json_path_pop(jp, mark);
}

static void nu_ksrc_validate(const json_t *config, const char *path, struct nu_problems *p)
{
    static const char *const modes[] = {"finite", "unbounded"};
    struct nu_json_path jp;
    struct nu_errbuf eb;
    struct nu_schema *vs = NULL, *os = NULL;
    const char *s;
    int f = 0, mode = 0;
    long long n;
    bool meta = true;

    nu_builtin_path_init(&jp, path);
    if (!nu_builtin_expect_object(config, &jp, p))
        return;
    nu_json_check_fields(config, nu_ksrc_fields, NU_KSRC_NFIELDS, &jp, p);
    nu_conn_get_string(config, "topic", true, &jp, p, &s);
    nu_conn_get_string(config, "brokers", false, &jp, p, &s);
    nu_conn_check_string_map(config, "kafka", &jp, p);
    if (json_object_size(json_object_get(config, "kafka")) > NU_KSRC_MAX_PROPS)
        nu_problems_add(p, jp.buf, "at most %d \"kafka\" properties", NU_KSRC_MAX_PROPS);
    nu_ksrc_check_start(config, &jp, p);
    nu_conn_get_enum(config, "mode", modes, 2, &jp, p, &mode);
    nu_builtin_get_int(config, "plan_interval_ms", 10, NU_KSRC_MAX_INTERVAL_MS, false, 500, &jp, p,
                       &n);
    if (mode != 1 && json_object_get(config, "plan_interval_ms")) {
        size_t mark = nu_json_path_push_key(&jp, "plan_interval_ms");
        nu_problems_add(p, jp.buf,
                        "\"plan_interval_ms\" is only used with \"mode\": \"unbounded\"");
        nu_json_path_pop(&jp, mark);
    }
    bool fmt_ok = nu_conn_get_enum(config, "format", nu_ksrc_formats, 3, &jp, p, &f);
    int fr = 0;
    if (nu_conn_get_enum(config, "framing", nu_ksrc_framings, 2, &jp, p, &fr) && fr == 1 &&
        fmt_ok && f != NU_KSRC_AVRO) {
        size_t mark = nu_json_path_push_key(&jp, "framing");
        nu_problems_add(p, jp.buf, "\"framing\": \"confluent\" needs \"format\": \"avro\"");
        nu_json_path_pop(&jp, mark);
    }
    nu_builtin_get_int(config, "split_records", 1, NU_KSRC_MAX_SPLIT, false, 1000, &jp, p, &n);
    bool meta_ok = nu_conn_get_bool(config, "metadata", &jp, p, &meta);
    if (fmt_ok && meta_ok) {
        size_t mark = nu_json_path_push_key(&jp, "schema");
        nu_errbuf_clear(&eb);
        if (f == NU_KSRC_RAW && json_object_get(config, "schema"))
            nu_problems_add(p, jp.buf, "format \"raw\" takes no schema (the value is bytes)");
        else if (nu_ksrc_value_schema(config, &vs, &eb) != NU_OK ||
                 nu_ksrc_out_schema(vs, meta, nu_ksrc_confluent(config), &os, &eb) != NU_OK)
            nu_problems_add(p, jp.buf, "%s", nu_err_msg(&eb));
        nu_json_path_pop(&jp, mark);
    }
    nu_schema_unref(vs);
    nu_schema_unref(os);
}

static nu_err_t nu_ksrc_schema(const json_t *config, const struct nu_schema *in, const char *path,
                               struct nu_problems *p, struct nu_schema **out, struct nu_errbuf *eb)
{
    struct nu_schema *vs = NULL;
    nu_err_t rc;
    (void)in;

    *out = NULL;
    rc = nu_ksrc_value_schema(config, &vs, eb);
    if (rc == NU_OK)
        rc = nu_ksrc_out_schema(vs, !json_is_false(json_object_get(config, "metadata")),
                                nu_ksrc_confluent(config), out, eb);
    if (rc != NU_OK && p)
        nu_problems_add(p, path, "%s", nu_err_msg(eb));
    nu_schema_unref(vs);
    return rc;
}

static void nu_ksrc_close(void *state)
{
    struct nu_ksrc *k = state;
    if (!k)
        return;
    if (k->rk) {
        rd_kafka_assign(k->rk, NULL);
        rd_kafka_destroy(k->rk);
    }
    free(k->topic);
    free(k->brokers);
    free(k->group);
    free(k->hint);
    nu_codec_cache_destroy(k->cache);
    json_decref(k->offsets);
    for (size_t i = 0; i < k->nprops; i++) {
        free((char *)k->props[i].key);
        free((char *)k->props[i].value);
    }
    nu_schema_unref(k->value_schema);
    nu_schema_unref(k->plan_schema);
    nu_schema_unref(k->out_schema);
    free(k);
}

static nu_err_t nu_ksrc_open(const struct nu_op_open_args *args, void **state, struct nu_errbuf *eb)
{
    const json_t *cfg = args->config, *v, *st;
    struct nu_ksrc *k = NULL;
    struct nu_buf hint = NU_BUF_INIT;
    const char *name, *brokers;
    nu_err_t rc;

    *state = NULL;
    rc = nu_builtin_check_config(&nu_op_kafka_source, cfg, eb);
    if (rc != NU_OK)
        return rc;
    k = nu_xcalloc(1, sizeof(*k));
    k->topic = nu_xstrdup(json_string_value(json_object_get(cfg, "topic")));
    brokers = json_string_value(json_object_get(cfg, "brokers"));
    if (!brokers)
        brokers = getenv("NURION_BROKERS");
    if (!brokers || !*brokers) {
        rc = nu_err_set(eb, NU_ERR_CONFIG,
                        "kafka_source: no brokers (set \"brokers\" or NURION_BROKERS)");
        goto out;
    }
    k->brokers = nu_xstrdup(brokers);
    k->group = nu_xasprintf("nurion.%s.%s.reader", args->job_id ? args->job_id : "",
                            args->stage_id ? args->stage_id : "");
    nu_conn_get_enum(cfg, "format", nu_ksrc_formats, 3, NULL, NULL, &k->format);
    if (k->format == NU_KSRC_AVRO && nu_ksrc_confluent(cfg))
        k->format = NU_KSRC_AVRO_CONFLUENT;
    k->split = json_object_get(cfg, "split_records")
                   ? json_integer_value(json_object_get(cfg, "split_records"))
                   : 1000;
    k->metadata = !json_is_false(json_object_get(cfg, "metadata"));
    v = json_object_get(cfg, "mode");
    k->unbounded = json_is_string(v) && strcmp(json_string_value(v), "unbounded") == 0;
    st = json_object_get(cfg, "start");
    if (json_is_string(st) && strcmp(json_string_value(st), "latest") == 0) {
        k->start = NU_KSRC_LATEST;
    } else if (json_is_object(st) && (v = json_object_get(st, "timestamp"))) {
        k->start = NU_KSRC_TIMESTAMP;
        k->start_ts = json_integer_value(v);
    } else if (json_is_object(st) && (v = json_object_get(st, "offsets"))) {
        k->start = NU_KSRC_OFFSETS;
        k->offsets = json_deep_copy(v);
    }
    json_object_foreach((json_t *)json_object_get(cfg, "kafka"), name, v)
    {
        k->props[k->nprops].key = nu_xstrdup(name);
        k->props[k->nprops++].value = nu_xstrdup(json_string_value(v));
    }
    rc = nu_ksrc_value_schema(cfg, &k->value_schema, eb);
    if (rc == NU_OK)
        rc = nu_ksrc_out_schema(k->value_schema, k->metadata, k->format == NU_KSRC_AVRO_CONFLUENT,
                                &k->out_schema, eb);
    if (rc == NU_OK && k->format == NU_KSRC_JSON) {
        rc = nu_schema_to_json(k->value_schema, &hint, eb);
        if (rc == NU_OK)
            k->hint = nu_xstrndup((const char *)hint.data, hint.len);
    } else if (rc == NU_OK && k->format == NU_KSRC_AVRO_CONFLUENT) {
        k->hint = json_dumps(json_object_get(cfg, "schema"), JSON_COMPACT);
        k->cache = nu_codec_cache_new();
        if (!k->hint)
            rc = nu_err_set(eb, NU_ERR_CONFIG, "kafka_source: \"schema\" cannot be serialized");
    }
    if (rc != NU_OK)
        goto out;
    k->plan_schema = nu_schema_new(3);
    nu_schema_set(k->plan_schema, 0, "partition", NU_T_INT64, false, NULL);
    nu_schema_set(k->plan_schema, 1, "start_offset", NU_T_INT64, false, NULL);
    nu_schema_set(k->plan_schema, 2, "end_offset", NU_T_INT64, false, NULL);
    *state = k;
    k = NULL;
out:
    nu_buf_free(&hint);
    nu_ksrc_close(k);
    return rc;
}

/* The reader client (a consumer that is only ever assigned; no commits). */
static nu_err_t nu_ksrc_client(struct nu_ksrc *k, struct nu_errbuf *eb)
{
    struct nu_kafka_prop props[NU_KSRC_MAX_PROPS + 1];
    size_t n = 0;
    nu_err_t rc;

    if (k->rk)
        return NU_OK;
    props[n++] = (struct nu_kafka_prop){"enable.partition.eof", "true"};
    for (size_t i = 0; i < k->nprops; i++)
        props[n++] = k->props[i];
    rc = nu_kafka_client_new(NU_KAFKA_CONSUMER, k->brokers, k->group, NULL, props, n, &k->rk, eb);
    if (rc == NU_OK)
        rd_kafka_poll_set_consumer(k->rk);
    return rc;
}

static nu_err_t nu_ksrc_plan(void *state, const struct nu_op_emit *out, struct nu_errbuf *eb)
{
    struct nu_ksrc *k = state;
    struct nu_kafka_range *parts = NULL, *ranges = NULL;
    rd_kafka_topic_partition_list_t *times = NULL;
    int nparts = 0;
    size_t nr;
    nu_err_t rc = nu_ksrc_client(k, eb);

    if (rc == NU_OK)
        rc = nu_kafka_topic_partitions(k->rk, k->topic, NU_KSRC_TIMEOUT_MS, &nparts, eb);
    if (rc != NU_OK)
        goto out;
    if (nparts <= 0 || nparts > NU_KSRC_MAX_PARTS) {
        rc =
            nu_err_set(eb, NU_ERR_NOT_FOUND, "kafka_source: topic \"%s\" does not exist", k->topic);
        goto out;
    }
    parts = nu_xcalloc((size_t)nparts, sizeof(*parts));
    for (int i = 0; i < nparts; i++) {
        int64_t lo = 0, hi = 0;
        rd_kafka_resp_err_t e =
            rd_kafka_query_watermark_offsets(k->rk, k->topic, i, &lo, &hi, NU_KSRC_TIMEOUT_MS);
        if (e) {
            rc = nu_err_set(eb, nu_kafka_err_code(e),
                            "kafka_source: could not read the offsets of \"%s\" [%d]: %s", k->topic,
                            i, rd_kafka_err2str(e));
            goto out;
        }
        parts[i] = (struct nu_kafka_range){i, lo, hi};
        if (k->start == NU_KSRC_LATEST) {
            parts[i].start = hi;
        } else if (k->start == NU_KSRC_OFFSETS) {
            char key[16];
            snprintf(key, sizeof(key), "%d", i);
            const json_t *o = json_object_get(k->offsets, key);
            if (o)
                parts[i].start = json_integer_value(o);
        }
        if (parts[i].start < lo)
            parts[i].start = lo;
        if (parts[i].start > hi)
            parts[i].start = hi;
    }
    if (k->start == NU_KSRC_TIMESTAMP) {
        times = rd_kafka_topic_partition_list_new(nparts);
        for (int i = 0; i < nparts; i++)
            rd_kafka_topic_partition_list_add(times, k->topic, i)->offset = k->start_ts;
        rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(k->rk, times, NU_KSRC_TIMEOUT_MS);
        if (e) {
            rc = nu_err_set(eb, nu_kafka_err_code(e),
                            "kafka_source: could not look up offsets by time in \"%s\": %s",
                            k->topic, rd_kafka_err2str(e));
            goto out;
        }
        for (int i = 0; i < times->cnt; i++) {
            int32_t p = times->elems[i].partition;
            int64_t off = times->elems[i].offset;
            if (p < 0 || p >= nparts)
                continue;
            /* no record at or after the time: start at the end */
            parts[p].start = off < 0 ? parts[p].end : off;
            if (parts[p].start > parts[p].end)
                parts[p].start = parts[p].end;
        }
    }
    nr = nu_kafka_ranges(parts, (size_t)nparts, k->split, NULL, 0);
    ranges = nu_xcalloc(nr + (size_t)nparts, sizeof(*ranges));
    nu_kafka_ranges(parts, (size_t)nparts, k->split, ranges, nr);
    if (k->unbounded && k->start != NU_KSRC_OFFSETS) {
        /* the first pass of a continuous plan: an empty range records where a partition
         * starts, so a restarted planner goes on from there and not from a new "latest" */
        for (int i = 0; i < nparts; i++)
            if (parts[i].start == parts[i].end)
                ranges[nr++] = parts[i];
    }
    for (size_t i = 0; i < nr && rc == NU_OK; i++) {
        struct nu_batch *b = nu_batch_new(k->plan_schema, 1);
        struct nu_value *row = nu_batch_add_row(b);
        row[0] = nu_value_int(ranges[i].partition);
        row[1] = nu_value_int(ranges[i].start);
        row[2] = nu_value_int(ranges[i].end);
        rc = nu_op_emit_batch(out, b, eb);
    }
out:
    if (times)
        rd_kafka_topic_partition_list_destroy(times);
    free(parts);
    free(ranges);
    return rc;
}

/* Decode a Confluent-framed value: magic 0, schema id (big-endian), one Avro datum. */
static nu_err_t nu_kafka_confluent_decode(nu_codec_cache_t *cache, const char *schema,
                                          const struct nu_kafka_record *rec, int64_t *sid,
                                          struct nu_batch **dec, struct nu_errbuf *eb)
{
    const unsigned char *v = rec->value;

    *dec = NULL;
    if (rec->len < 5)
        return nu_err_set(eb, NU_ERR_CORRUPT,
                          "Confluent-framed value of %zu bytes is shorter than its 5-byte header",
                          rec->len);
    if (v[0] != 0)
        return nu_err_set(eb, NU_ERR_CORRUPT,
                          "Confluent-framed value starts with magic byte %u, expected 0",
                          (unsigned)v[0]);
    *sid = (int64_t)(((uint32_t)v[1] << 24) | ((uint32_t)v[2] << 16) | ((uint32_t)v[3] << 8) |
                     (uint32_t)v[4]);
    return nu_codec_decode_avro_datum(cache, schema, strlen(schema), v + 5, rec->len - 5, dec, eb);
}

nu_err_t nu_kafka_rows_add(struct nu_batch *out, const struct nu_schema *vs, int format,
                           const char *hint, bool metadata, const struct nu_kafka_record *rec,
                           struct nu_errbuf *eb)
{
    return nu_kafka_rows_add_cached(NULL, out, vs, format, hint, metadata, rec, eb);
}

nu_err_t nu_kafka_rows_add_cached(nu_codec_cache_t *cache, struct nu_batch *out,
                                  const struct nu_schema *vs, int format, const char *hint,
                                  bool metadata, const struct nu_kafka_record *rec,
                                  struct nu_errbuf *eb)
{
    int64_t sid = 0;
    struct nu_batch *dec = NULL;
    size_t first = out->nrows, nrows = 1, nv = vs->ncols;
    long *map = NULL;
    nu_err_t rc = NU_OK;

    if (metadata && rec->key && !nu_conn_utf8_valid(rec->key, rec->keylen))
        return nu_err_set(eb, NU_ERR_CORRUPT, "record key is not valid UTF-8");
    for (size_t h = 0; metadata && h < rec->nheaders; h++)
        if (rec->headers[h].value &&
            !nu_conn_utf8_valid(rec->headers[h].value, rec->headers[h].len))
            return nu_err_set(eb, NU_ERR_CORRUPT, "value of header \"%s\" is not valid UTF-8",
                              rec->headers[h].name);
    if (format != NU_KSRC_RAW) {
        if (!rec->value)
            return nu_err_set(eb, NU_ERR_CORRUPT, "record has no value");
        if (format == NU_KSRC_AVRO_CONFLUENT)
            rc = nu_kafka_confluent_decode(cache, hint, rec, &sid, &dec, eb);
        else
            rc = nu_codec_decode_cached(
                cache, format == NU_KSRC_JSON ? NU_FORMAT_JSON : NU_FORMAT_AVRO, rec->value,
                rec->len, hint, hint ? strlen(hint) : 0, &dec, eb);
        if (rc != NU_OK) {
            if (rc != NU_ERR_TOO_LARGE)
                rc = NU_ERR_CORRUPT;
            goto out;
        }
        nrows = dec->nrows;
        map = nu_xcalloc(nv ? nv : 1, sizeof(*map));
        for (size_t c = 0; c < nv; c++) {
            map[c] = nu_schema_find(dec->schema, vs->cols[c].name);
            if (map[c] < 0 && !vs->cols[c].nullable) {
                rc = nu_err_set(eb, NU_ERR_SCHEMA, "record value has no column \"%s\"",
                                vs->cols[c].name);
                goto out;
            }
        }
    }
    for (size_t r = 0; r < nrows; r++) {
        struct nu_value *row = nu_batch_add_row(out);
        if (format == NU_KSRC_RAW) {
            if (rec->value)
                row[0] = nu_batch_str(out, NU_T_BYTES, rec->value, rec->len);
        } else {
            const struct nu_value *src = nu_batch_row(dec, r);
            for (size_t c = 0; c < nv; c++) {
                const struct nu_value *v = map[c] >= 0 ? &src[map[c]] : NULL;
                if (!v || v->type == NU_T_NULL) {
                    if (!vs->cols[c].nullable) {
                        rc = nu_err_set(eb, NU_ERR_SCHEMA, "column \"%s\" is null",
                                        vs->cols[c].name);
                        goto out;
                    }
                    continue;
                }
                if (v->type != vs->cols[c].type) {
                    rc = nu_err_set(eb, NU_ERR_SCHEMA, "column \"%s\" is %s, expected %s",
                                    vs->cols[c].name, nu_type_name(v->type),
                                    nu_type_name(vs->cols[c].type));
                    goto out;
                }
                row[c] = nu_batch_copy_value(out, v);
            }
        }
        if (!metadata)
            continue;
        if (rec->key)
            row[nv] = nu_batch_str(out, NU_T_STRING, rec->key, rec->keylen);
        row[nv + 1].type = NU_T_MAP;
        row[nv + 1].u.map.n = rec->nheaders;
        if (rec->nheaders) {
            struct nu_value *kv = nu_batch_alloc(out, 2 * rec->nheaders * sizeof(*kv));
            for (size_t h = 0; h < rec->nheaders; h++) {
                const struct nu_header *hd = &rec->headers[h];
                kv[h] = nu_batch_str(out, NU_T_STRING, hd->name, strlen(hd->name));
                kv[rec->nheaders + h] = hd->value
                                            ? nu_batch_str(out, NU_T_STRING, hd->value, hd->len)
                                            : nu_value_null();
            }
            row[nv + 1].u.map.keys = kv;
            row[nv + 1].u.map.vals = kv + rec->nheaders;
        }
        row[nv + 2] = nu_value_int(rec->timestamp);
        row[nv + 3] = nu_value_int(rec->partition);
        row[nv + 4] = nu_value_int(rec->offset);
        if (format == NU_KSRC_AVRO_CONFLUENT)
            row[nv + 5] = nu_value_int(sid);
    }
out:
    if (rc != NU_OK)
        out->nrows = first; /* drop the rows of the bad record (their memory stays in the arena) */
    nu_batch_destroy(dec);
    free(map);
    return rc;
}

/* Read [start, end) of `partition` into one batch, emitted; bad records are rejected. */
static nu_err_t nu_ksrc_read(struct nu_ksrc *k, const struct nu_op_batch_ctx *ctx,
                             const struct nu_batch *in, size_t plan_row, int32_t partition,
                             int64_t start, int64_t end, const struct nu_op_emit *out,
                             struct nu_errbuf *eb)
{
    rd_kafka_topic_partition_list_t *asg = rd_kafka_topic_partition_list_new(1);
    struct nu_batch *b = nu_batch_new(k->out_schema, (size_t)(end - start));
    int64_t next = start, deadline;
    nu_err_t rc = NU_OK;
    rd_kafka_resp_err_t e;

    rd_kafka_topic_partition_list_add(asg, k->topic, partition)->offset = start;
    e = rd_kafka_assign(k->rk, asg);
    if (e) {
        rc = nu_err_set(eb, nu_kafka_err_code(e), "kafka_source: could not assign \"%s\" [%d]: %s",
                        k->topic, (int)partition, rd_kafka_err2str(e));
        goto out;
    }
    deadline = (int64_t)time(NULL) + NU_KSRC_TIMEOUT_MS / 1000;
    while (next < end && rc == NU_OK) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(k->rk, 200);
        if (!m) {
            if ((int64_t)time(NULL) > deadline)
                rc = nu_err_set(eb, NU_ERR_TIMEOUT,
                                "kafka_source: \"%s\" [%d] gave no records for %d s at offset "
                                "%lld (range ends at %lld)",
                                k->topic, (int)partition, NU_KSRC_TIMEOUT_MS / 1000,
                                (long long)next, (long long)end);
            continue;
        }
        deadline = (int64_t)time(NULL) + NU_KSRC_TIMEOUT_MS / 1000;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            /* the end of the stable records: control records may fill the rest of the range */
            if (m->partition == partition && m->offset >= end)
                next = end;
        } else if (m->err) {
            rc = nu_err_set(eb, nu_kafka_err_code(m->err), "kafka_source: reading \"%s\" [%d]: %s",
                            k->topic, (int)partition, rd_kafka_message_errstr(m));
        } else if (m->partition == partition && m->offset >= next) {
            next = m->offset + 1;
            if (m->offset < end) {
                struct nu_header hv[64];
                size_t total = 0, nh = nu_kafka_headers_view(m, hv, 64, &total);
                struct nu_kafka_record rec = {.key = m->key,
                                              .keylen = m->key_len,
                                              .value = m->payload,
                                              .len = m->len,
                                              .headers = hv,
                                              .nheaders = nh,
                                              .timestamp = rd_kafka_message_timestamp(m, NULL),
                                              .partition = m->partition,
                                              .offset = m->offset};
                struct nu_errbuf why;
                nu_errbuf_clear(&why);
                if (total > nh) {
                    nu_err_set(&why, NU_ERR_TOO_LARGE, "record has %zu headers, at most 64 read",
                               total);
                    rc = nu_op_reject_row(ctx, in, plan_row, m->payload, m->len, NU_ERR_CORRUPT,
                                          nu_err_msg(&why), eb);
                } else if (nu_kafka_rows_add_cached(k->cache, b, k->value_schema, k->format,
                                                    k->hint, k->metadata, &rec, &why) != NU_OK) {
                    char reason[NU_ERRBUF_SIZE + 64];
                    snprintf(reason, sizeof(reason), "record %s [%d] at offset %lld: %s", k->topic,
                             (int)partition, (long long)m->offset, nu_err_msg(&why));
                    rc = nu_op_reject_row(ctx, in, plan_row, m->payload, m->len, NU_ERR_CORRUPT,
                                          reason, eb);
                }
            }
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_assign(k->rk, NULL);
    if (rc == NU_OK) {
        rc = nu_op_emit_batch(out, b, eb);
        b = NULL;
    }
out:
    nu_batch_destroy(b);
    rd_kafka_topic_partition_list_destroy(asg);
    return rc;
}

static nu_err_t nu_ksrc_process(void *state, const struct nu_op_batch_ctx *ctx,
                                const struct nu_batch *in, const struct nu_op_emit *out,
                                struct nu_errbuf *eb)
{
    struct nu_ksrc *k = state;
    long cp, cs, ce;
    nu_err_t rc;

    if (!in || !in->schema)
        return nu_err_set(eb, NU_ERR_INVALID, "kafka_source: no plan split");
    cp = nu_schema_find(in->schema, "partition");
    cs = nu_schema_find(in->schema, "start_offset");
    ce = nu_schema_find(in->schema, "end_offset");
    if (cp < 0 || cs < 0 || ce < 0)
        return nu_err_set(eb, NU_ERR_SCHEMA,
                          "kafka_source: plan split lacks partition, start_offset or end_offset");
    rc = nu_ksrc_client(k, eb);
    for (size_t r = 0; r < in->nrows && rc == NU_OK; r++) {
        const struct nu_value *row = nu_batch_row(in, r);
        if (row[cp].type != NU_T_INT64 || row[cs].type != NU_T_INT64 ||
            row[ce].type != NU_T_INT64 || row[cp].u.i < 0 || row[cp].u.i >= NU_KSRC_MAX_PARTS ||
            row[cs].u.i < 0 || row[ce].u.i < row[cs].u.i ||
            row[ce].u.i - row[cs].u.i > NU_KSRC_MAX_SPLIT)
            return nu_err_set(eb, NU_ERR_CORRUPT, "kafka_source: plan row %zu is malformed", r);
        rc = nu_ksrc_read(k, ctx, in, r, (int32_t)row[cp].u.i, row[cs].u.i, row[ce].u.i, out, eb);
    }
    return rc;
}

const struct nu_operator nu_op_kafka_source = {
    .abi_version = NU_OPERATOR_ABI_VERSION,
    .name = "kafka_source",
    .kind = NU_OPKIND_SOURCE,
    .summary = "rows from the records of a Kafka topic, planned as offset ranges",
    .validate = nu_ksrc_validate,
    .schema = nu_ksrc_schema,
    .open = nu_ksrc_open,
    .plan = nu_ksrc_plan,
    .process = nu_ksrc_process,
    .close = nu_ksrc_close,
};
