/*
 * op_kafka_sink.c — the `kafka_sink` sink: one Kafka record per row.
 *
 * Config {"topic": "t", "key": "column" (optional), "format": "json" | "avro" | "raw",
 * "framing": "none" | "confluent" (avro), "schema_id": N (confluent, required),
 * "headers": {"header name": "column"} (optional, at most 8), "partitions": N (optional: create
 * the topic at open() when missing), "brokers": "host:port,…" and "kafka": {librdkafka
 * properties} (optional: the topic lives on another cluster)}.
 *
 * Values: json — one JSON object per record (as a line of the codec's JSON Lines, without the
 * newline); avro — an Avro object container holding the one row, with the writer schema
 * embedded, so every record is self-describing; avro with "framing": "confluent" — magic byte 0,
 * schema_id as 4 bytes big-endian, then the row as one Avro binary datum of the writer schema
 * nu_schema_to_avro_json(input schema) (registering that schema under the id is the user's
 * part); raw — the bytes of the string or bytes column
 * "value" (a null value is a tombstone). Keys and header values: strings and bytes as they are,
 * other types as their JSON text; a null key or header is left out.
 *
 * Guarantees: on the job's own cluster (no "brokers"/"kafka") every record goes through
 * ctx->produce, inside the stage's transaction: the records commit or abort with the consumed
 * offsets, so the output is exactly once end to end. With "brokers" or "kafka" (another
 * cluster) the sink runs its own idempotent producer and flushes it before process() returns:
 * at least once (a replayed split is written again). The topic is created with the job's
 * cluster brokers (NURION_BROKERS) unless "brokers" is given.
 */
#include "stage/connectors_int.h"

#include "common/codec.h"
#include "common/mem.h"
#include "stage/kafka.h"
#include "stage/pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NU_KSINK_MAX_HEADERS    8
#define NU_KSINK_MAX_PARTITIONS 100000LL
#define NU_KSINK_MAX_PROPS      64
#define NU_KSINK_TIMEOUT_MS     30000

enum { NU_KSINK_JSON = 0, NU_KSINK_AVRO, NU_KSINK_RAW };

struct nu_ksink {
    char *topic, *key, *brokers;
    int format;
    bool confluent;
    uint32_t schema_id;
    long long partitions;
    char *hnames[NU_KSINK_MAX_HEADERS], *hcols[NU_KSINK_MAX_HEADERS];
    size_t nheaders;
    struct nu_kafka_prop props[NU_KSINK_MAX_PROPS];
    size_t nprops;
    bool own; /* another cluster: own producer, at least once */
    rd_kafka_t *rk;
    int delivery_errors;
    char delivery_msg[256];
    struct nu_buf enc, kbuf, hbuf[NU_KSINK_MAX_HEADERS];
};

static const char *const nu_ksink_fields[] = {
    "topic", "key", "format", "headers", "partitions", "brokers", "kafka", "framing", "schema_id"};
static const char *const nu_ksink_framings[] = {"none", "confluent"};
static const char *const nu_ksink_formats[] = {"json", "avro", "raw"};

static void nu_ksink_validate(const json_t *config, const char *path, struct nu_problems *p)
{
    struct nu_json_path jp;
    const char *s;
    int f = 0;
    long long n;
    const json_t *h;

    nu_builtin_path_init(&jp, path);
    if (!nu_builtin_expect_object(config, &jp, p))
        return;
    nu_json_check_fields(config, nu_ksink_fields, 9, &jp, p);
    nu_conn_get_string(config, "topic", true, &jp, p, &s);
    nu_conn_get_string(config, "key", false, &jp, p, &s);
    nu_conn_get_string(config, "brokers", false, &jp, p, &s);
    bool fmt_ok = nu_conn_get_enum(config, "format", nu_ksink_formats, 3, &jp, p, &f);
    int fr = 0;
    if (nu_conn_get_enum(config, "framing", nu_ksink_framings, 2, &jp, p, &fr) && fr == 1) {
        size_t mark = nu_json_path_push_key(&jp, "framing");
        if (fmt_ok && f != NU_KSINK_AVRO)
            nu_problems_add(p, jp.buf, "\"framing\": \"confluent\" needs \"format\": \"avro\"");
        if (!json_object_get(config, "schema_id"))
            nu_problems_add(p, jp.buf,
                            "\"framing\": \"confluent\" needs \"schema_id\" (the id the writer "
                            "schema is registered under)");
        nu_json_path_pop(&jp, mark);
    }
    nu_builtin_get_int(config, "schema_id", 0, 2147483647LL, false, 0, &jp, p, &n);
    if (fr != 1 && json_object_get(config, "schema_id")) {
        size_t mark = nu_json_path_push_key(&jp, "schema_id");
        nu_problems_add(p, jp.buf, "\"schema_id\" is only used with \"framing\": \"confluent\"");
        nu_json_path_pop(&jp, mark);
    }
    nu_builtin_get_int(config, "partitions", 1, NU_KSINK_MAX_PARTITIONS, false, 0, &jp, p, &n);
    nu_conn_check_string_map(config, "kafka", &jp, p);
    if (json_object_size(json_object_get(config, "kafka")) > NU_KSINK_MAX_PROPS)
        nu_problems_add(p, jp.buf, "at most %d \"kafka\" properties", NU_KSINK_MAX_PROPS);
    if (nu_conn_check_string_map(config, "headers", &jp, p) &&
        (h = json_object_get(config, "headers")) && json_object_size(h) > NU_KSINK_MAX_HEADERS)
        nu_problems_add(p, jp.buf, "at most %d \"headers\"", NU_KSINK_MAX_HEADERS);
}

static nu_err_t nu_ksink_schema(const json_t *config, const struct nu_schema *in, const char *path,
                                struct nu_problems *p, struct nu_schema **out, struct nu_errbuf *eb)
{
    const char *key = json_string_value(json_object_get(config, "key")), *hname;
    const char *format = json_string_value(json_object_get(config, "format"));
    const json_t *hcol;

    *out = NULL;
    if (!in)
        return NU_OK;
    if (key && nu_schema_find(in, key) < 0)
        return nu_builtin_fault(p, eb, NU_ERR_TYPE, path,
                                "key column \"%s\" is not a column of the input", key);
    json_object_foreach((json_t *)json_object_get(config, "headers"), hname, hcol)
    {
        if (nu_schema_find(in, json_string_value(hcol)) < 0)
            return nu_builtin_fault(p, eb, NU_ERR_TYPE, path,
                                    "column \"%s\" of header \"%s\" is not a column of the input",
                                    json_string_value(hcol), hname);
    }
    if (format && strcmp(format, "raw") == 0) {
        long v = nu_schema_find(in, "value");
        if (v < 0 || (in->cols[v].type != NU_T_STRING && in->cols[v].type != NU_T_BYTES))
            return nu_builtin_fault(p, eb, NU_ERR_TYPE, path,
                                    "format \"raw\" needs a string or bytes column \"value\"");
    }
    return NU_OK;
}

static void nu_ksink_close(void *state)
{
    struct nu_ksink *k = state;
    if (!k)
        return;
    if (k->rk) {
        rd_kafka_flush(k->rk, NU_KSINK_TIMEOUT_MS);
        rd_kafka_destroy(k->rk);
    }
    free(k->topic);
    free(k->key);
    free(k->brokers);
    for (size_t i = 0; i < k->nheaders; i++) {
        free(k->hnames[i]);
        free(k->hcols[i]);
        nu_buf_free(&k->hbuf[i]);
    }
    for (size_t i = 0; i < k->nprops; i++) {
        free((char *)k->props[i].key);
        free((char *)k->props[i].value);
    }
    nu_buf_free(&k->enc);
    nu_buf_free(&k->kbuf);
    free(k);
}

static void nu_ksink_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct nu_ksink *k = opaque;
    (void)rk;
    if (m->err && k->delivery_errors++ == 0)
        snprintf(k->delivery_msg, sizeof(k->delivery_msg), "%s", rd_kafka_err2str(m->err));
}

static nu_err_t nu_ksink_open(const struct nu_op_open_args *args, void **state,
                              struct nu_errbuf *eb)
{
    struct nu_ksink *k = NULL;
    const json_t *cfg = args->config, *v;
    const char *name, *brokers;
    rd_kafka_t *admin = NULL;
    rd_kafka_conf_t *conf = NULL;
    nu_err_t rc;

    *state = NULL;
    rc = nu_builtin_check_config(&nu_op_kafka_sink, cfg, eb);
    if (rc != NU_OK)
        return rc;
    k = nu_xcalloc(1, sizeof(*k));
    k->topic = nu_xstrdup(json_string_value(json_object_get(cfg, "topic")));
    if ((v = json_object_get(cfg, "key")))
        k->key = nu_xstrdup(json_string_value(v));
    if ((v = json_object_get(cfg, "format")))
        nu_conn_get_enum(cfg, "format", nu_ksink_formats, 3, NULL, NULL, &k->format);
    v = json_object_get(cfg, "framing");
    k->confluent = json_is_string(v) && strcmp(json_string_value(v), "confluent") == 0;
    k->schema_id = (uint32_t)json_integer_value(json_object_get(cfg, "schema_id"));
    json_object_foreach((json_t *)json_object_get(cfg, "headers"), name, v)
    {
        k->hnames[k->nheaders] = nu_xstrdup(name);
        k->hcols[k->nheaders++] = nu_xstrdup(json_string_value(v));
    }
    json_object_foreach((json_t *)json_object_get(cfg, "kafka"), name, v)
    {
        k->props[k->nprops].key = nu_xstrdup(name);
        k->props[k->nprops++].value = nu_xstrdup(json_string_value(v));
    }
    k->partitions = json_integer_value(json_object_get(cfg, "partitions"));
    brokers = json_string_value(json_object_get(cfg, "brokers"));
    k->own = brokers || json_object_get(cfg, "kafka");
    if (!brokers)
        brokers = getenv("NURION_BROKERS");
    k->brokers = brokers ? nu_xstrdup(brokers) : NULL;
    if (k->partitions > 0) {
        struct nu_kafka_topic_spec spec = {
            .name = k->topic, .partitions = (int)k->partitions, .replication = -1};
        rc = nu_kafka_client_new(NU_KAFKA_ADMIN, k->brokers, NULL, NULL, k->props, k->nprops,
                                 &admin, eb);
        if (rc == NU_OK)
            rc = nu_kafka_topics_create(admin, &spec, 1, NU_KSINK_TIMEOUT_MS, eb);
        if (rc == NU_ERR_EXISTS) /* an existing, smaller topic is used as it is */
            rc = NU_OK, nu_errbuf_clear(eb);
        if (rc != NU_OK)
            goto out;
    }
    if (k->own) {
        rc = nu_kafka_conf_new(NU_KAFKA_PRODUCER, k->brokers, NULL, NULL, k->props, k->nprops,
                               &conf, eb);
        if (rc != NU_OK)
            goto out;
        char errstr[256];
        rd_kafka_conf_set_opaque(conf, k);
        rd_kafka_conf_set_dr_msg_cb(conf, nu_ksink_dr);
        k->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!k->rk) {
            rc = nu_err_set(eb, NU_ERR_CONFIG, "kafka_sink: could not create a producer: %s",
                            errstr);
            goto out;
        }
        conf = NULL;
    }
    *state = k;
    k = NULL;
out:
    if (conf)
        rd_kafka_conf_destroy(conf);
    if (admin)
        rd_kafka_destroy(admin);
    nu_ksink_close(k);
    return rc;
}

/* The bytes of value `v` as a key or header: strings and bytes as they are, else JSON text.
 * Returns false for a null. */
static bool nu_ksink_bytes(const struct nu_value *v, struct nu_buf *tmp, const void **p,
                           size_t *len)
{
    if (v->type == NU_T_NULL)
        return false;
    if (v->type == NU_T_STRING || v->type == NU_T_BYTES) {
        *p = v->u.s.ptr;
        *len = v->u.s.len;
        return true;
    }
    nu_buf_reset(tmp);
    nu_pg_json_value(v, tmp);
    *p = tmp->data;
    *len = tmp->len;
    return true;
}

/* Write one record: through the stage's transaction, or with the own producer. */
static nu_err_t nu_ksink_send(struct nu_ksink *k, const struct nu_op_batch_ctx *ctx,
                              const void *key, size_t keylen, const void *val, size_t len,
                              const struct nu_op_header *h, size_t nh, struct nu_errbuf *eb)
{
    rd_kafka_headers_t *hdrs = NULL;
    rd_kafka_resp_err_t err;

    if (!k->own && ctx && ctx->produce)
        return ctx->produce(ctx->produce_ctx, k->topic, -1, key, keylen, val, len, h, nh, eb);
    if (!k->rk)
        return nu_err_set(eb, NU_ERR_STATE,
                          "kafka_sink: no transaction to write to (not inside a stage) and no "
                          "\"brokers\" given");
    if (nh) {
        hdrs = rd_kafka_headers_new(nh);
        for (size_t i = 0; i < nh; i++)
            rd_kafka_header_add(hdrs, h[i].name, -1, h[i].value, (ssize_t)h[i].len);
    }
    for (int tries = 0;; tries++) {
        err = rd_kafka_producev(k->rk, RD_KAFKA_V_TOPIC(k->topic), RD_KAFKA_V_KEY(key, keylen),
                                RD_KAFKA_V_VALUE((void *)val, len),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs),
                                RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || tries > 600)
            break;
        rd_kafka_poll(k->rk, 50);
    }
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        return NU_OK;
    if (hdrs)
        rd_kafka_headers_destroy(hdrs);
    return nu_err_set(eb, nu_kafka_err_code(err), "kafka_sink: could not produce to \"%s\": %s",
                      k->topic, rd_kafka_err2str(err));
}

static nu_err_t nu_ksink_process(void *state, const struct nu_op_batch_ctx *ctx,
                                 const struct nu_batch *in, const struct nu_op_emit *out,
                                 struct nu_errbuf *eb)
{
    struct nu_ksink *k = state;
    struct nu_codec_opts co = {.format = NU_FORMAT_JSON};
    struct nu_batch *one = NULL;
    long kcol = -1, vcol = -1, hcol[NU_KSINK_MAX_HEADERS];
    const char *line;
    nu_err_t rc = NU_OK;

    (void)out;
    if (!in || !in->schema)
        return nu_err_set(eb, NU_ERR_INVALID, "kafka_sink: no input batch");
    if (k->key && (kcol = nu_schema_find(in->schema, k->key)) < 0)
        return nu_err_set(eb, NU_ERR_SCHEMA, "kafka_sink: no key column \"%s\"", k->key);
    for (size_t i = 0; i < k->nheaders; i++)
        if ((hcol[i] = nu_schema_find(in->schema, k->hcols[i])) < 0)
            return nu_err_set(eb, NU_ERR_SCHEMA, "kafka_sink: no header column \"%s\"",
                              k->hcols[i]);
    if (k->format == NU_KSINK_RAW && (vcol = nu_schema_find(in->schema, "value")) < 0)
        return nu_err_set(eb, NU_ERR_SCHEMA, "kafka_sink: format \"raw\" needs a column \"value\"");
    if (k->format == NU_KSINK_JSON) {
        rc = nu_codec_encode(&co, in, &k->enc, eb);
        if (rc != NU_OK)
            goto out;
        nu_buf_putc(&k->enc, 0);
    }
    k->delivery_errors = 0;
    line = (const char *)k->enc.data;
    for (size_t r = 0; r < in->nrows && rc == NU_OK; r++) {
        const struct nu_value *row = nu_batch_row(in, r);
        struct nu_op_header h[NU_KSINK_MAX_HEADERS];
        size_t nh = 0, keylen = 0, len = 0;
        const void *key = NULL, *val = NULL;

        if (kcol >= 0 && !nu_ksink_bytes(&row[kcol], &k->kbuf, &key, &keylen))
            key = NULL;
        for (size_t i = 0; i < k->nheaders; i++) {
            const void *hp;
            size_t hl;
            if (nu_ksink_bytes(&row[hcol[i]], &k->hbuf[i], &hp, &hl))
                h[nh++] = (struct nu_op_header){k->hnames[i], hp, hl};
        }
        if (k->format == NU_KSINK_JSON) {
            const char *nl = strchr(line, '\n');
            if (!nl) {
                rc = nu_err_set(eb, NU_ERR_INTERNAL, "kafka_sink: JSON lines ran short");
                break;
            }
            val = line;
            len = (size_t)(nl - line);
            line = nl + 1;
        } else if (k->format == NU_KSINK_AVRO && k->confluent) {
            unsigned char hdr[5] = {
                0, (unsigned char)(k->schema_id >> 24), (unsigned char)(k->schema_id >> 16),
                (unsigned char)(k->schema_id >> 8), (unsigned char)k->schema_id};
            nu_buf_reset(&k->enc);
            nu_buf_append(&k->enc, hdr, sizeof(hdr));
            rc = nu_codec_encode_avro_datum(in, r, &k->enc, eb);
            val = k->enc.data;
            len = k->enc.len;
        } else if (k->format == NU_KSINK_AVRO) {
            co.format = NU_FORMAT_AVRO;
            nu_batch_destroy(one);
            one = nu_batch_new(in->schema, 1);
            nu_builtin_copy_row(one, in, r);
            rc = nu_codec_encode(&co, one, &k->enc, eb);
            val = k->enc.data;
            len = k->enc.len;
        } else if (row[vcol].type != NU_T_NULL) {
            val = row[vcol].u.s.ptr;
            len = row[vcol].u.s.len;
        }
        if (rc == NU_OK)
            rc = nu_ksink_send(k, ctx, key, keylen, val, len, h, nh, eb);
    }
    if (rc == NU_OK && k->own && k->rk) {
        if (rd_kafka_flush(k->rk, NU_KSINK_TIMEOUT_MS) != RD_KAFKA_RESP_ERR_NO_ERROR)
            rc = nu_err_set(eb, NU_ERR_TIMEOUT,
                            "kafka_sink: records to \"%s\" not delivered "
                            "within %d ms",
                            k->topic, NU_KSINK_TIMEOUT_MS);
        else if (k->delivery_errors)
            rc = nu_err_set(eb, NU_ERR_KAFKA, "kafka_sink: %d records to \"%s\" not delivered: %s",
                            k->delivery_errors, k->topic, k->delivery_msg);
    }
out:
    nu_batch_destroy(one);
    return rc;
}

const struct nu_operator nu_op_kafka_sink = {
    .abi_version = NU_OPERATOR_ABI_VERSION,
    .name = "kafka_sink",
    .kind = NU_OPKIND_SINK,
    .summary = "one Kafka record per row, inside the stage's transaction (exactly once)",
    .validate = nu_ksink_validate,
    .schema = nu_ksink_schema,
    .open = nu_ksink_open,
    .process = nu_ksink_process,
    .close = nu_ksink_close,
};
