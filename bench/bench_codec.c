/*
 * bench_codec.c — throughput of the split codec against Avro C generic values.
 *
 * Rows of ~100 bytes (id long, x double, s an 80-byte string), 1,000-row splits. Each case runs
 * for about `seconds` (argv[1], default 2) on one thread and prints a Markdown table of rows/s,
 * MB/s (encoded bytes) and the ratio against Avro C doing the same work with avro_value_write /
 * avro_value_read on memory writers and readers (the in-run baseline).
 */
#include "common/codec.h"

#include <avro.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ROWS    1000
#define STR_LEN 80

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct result {
    const char *name;
    double rows_per_s, mb_per_s;
};

static struct nu_batch *make_batch(void)
{
    struct nu_schema *s = nu_schema_new(3);
    nu_schema_set(s, 0, "id", NU_T_INT64, false, NULL);
    nu_schema_set(s, 1, "x", NU_T_DOUBLE, false, NULL);
    nu_schema_set(s, 2, "s", NU_T_STRING, false, NULL);
    struct nu_batch *b = nu_batch_new(s, ROWS);
    nu_schema_unref(s);
    char str[STR_LEN];
    for (int r = 0; r < ROWS; r++) {
        struct nu_value *row = nu_batch_add_row(b);
        for (int k = 0; k < STR_LEN; k++)
            str[k] = (char)('a' + (r + k) % 26);
        row[0] = nu_value_int((int64_t)r * 7919);
        row[1] = nu_value_double(r * 0.37);
        row[2] = nu_batch_str(b, NU_T_STRING, str, STR_LEN);
    }
    return b;
}

static struct result run_encode(const char *name, const struct nu_codec_opts *o,
                                const struct nu_batch *b, double secs, struct nu_buf *keep)
{
    struct nu_errbuf eb = {0};
    size_t splits = 0, bytes = 0;
    double t0 = now(), t;
    do {
        for (int i = 0; i < 20; i++) {
            if (nu_codec_encode(o, b, keep, &eb) != NU_OK) {
                fprintf(stderr, "encode: %s\n", nu_err_msg(&eb));
                exit(1);
            }
            bytes += keep->len;
            splits++;
        }
    } while ((t = now() - t0) < secs);
    return (struct result){name, splits * ROWS / t, bytes / t / 1e6};
}

static struct result run_decode(const char *name, nu_format_t f, const struct nu_buf *v,
                                const char *hint, double secs)
{
    struct nu_errbuf eb = {0};
    nu_codec_cache_t *c = nu_codec_cache_new();
    size_t splits = 0;
    double t0 = now(), t;
    do {
        for (int i = 0; i < 20; i++) {
            struct nu_batch *d = NULL;
            if (nu_codec_decode_cached(c, f, v->data, v->len, hint, hint ? strlen(hint) : 0, &d,
                                       &eb) != NU_OK) {
                fprintf(stderr, "decode: %s\n", nu_err_msg(&eb));
                exit(1);
            }
            nu_batch_destroy(d);
            splits++;
        }
    } while ((t = now() - t0) < secs);
    nu_codec_cache_destroy(c);
    return (struct result){name, splits * ROWS / t, splits * v->len / t / 1e6};
}

/* Avro C generic values: the same rows written to and read from a memory buffer. */
static void run_avro_c(const struct nu_batch *b, double secs, struct result *enc,
                       struct result *dec)
{
    static const char js[] = "{\"type\":\"record\",\"name\":\"Row\",\"fields\":["
                             "{\"name\":\"id\",\"type\":\"long\"},{\"name\":\"x\",\"type\":"
                             "\"double\"},{\"name\":\"s\",\"type\":\"string\"}]}";
    avro_schema_t sch;
    if (avro_schema_from_json_length(js, strlen(js), &sch)) {
        fprintf(stderr, "avro schema: %s\n", avro_strerror());
        exit(1);
    }
    avro_value_iface_t *iface = avro_generic_class_from_schema(sch);
    avro_value_t rec, fv;
    avro_generic_value_new(iface, &rec);
    size_t cap = 256 * ROWS;
    char *buf = malloc(cap);
    avro_writer_t w = avro_writer_memory(buf, (int64_t)cap);
    size_t splits = 0, used = 0;
    double t0 = now(), t;
    do {
        avro_writer_reset(w);
        for (int r = 0; r < ROWS; r++) {
            const struct nu_value *row = nu_batch_row(b, (size_t)r);
            avro_value_get_by_index(&rec, 0, &fv, NULL);
            avro_value_set_long(&fv, row[0].u.i);
            avro_value_get_by_index(&rec, 1, &fv, NULL);
            avro_value_set_double(&fv, row[1].u.d);
            avro_value_get_by_index(&rec, 2, &fv, NULL);
            avro_value_set_string_len(&fv, row[2].u.s.ptr, row[2].u.s.len + 1);
            avro_value_write(w, &rec);
        }
        used = (size_t)avro_writer_tell(w);
        splits++;
    } while ((t = now() - t0) < secs);
    *enc = (struct result){"Avro C generic encode", splits * ROWS / t, splits * used / t / 1e6};

    avro_reader_t rd = avro_reader_memory(buf, (int64_t)used);
    splits = 0;
    t0 = now();
    do {
        avro_reader_memory_set_source(rd, buf, (int64_t)used);
        for (int r = 0; r < ROWS; r++)
            if (avro_value_read(rd, &rec)) {
                fprintf(stderr, "avro read: %s\n", avro_strerror());
                exit(1);
            }
        splits++;
    } while ((t = now() - t0) < secs);
    *dec = (struct result){"Avro C generic decode", splits * ROWS / t, splits * used / t / 1e6};
    avro_reader_free(rd);
    avro_writer_free(w);
    free(buf);
    avro_value_decref(&rec);
    avro_value_iface_decref(iface);
    avro_schema_decref(sch);
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 2.0;
    struct nu_batch *b = make_batch();
    struct nu_buf av = NU_BUF_INIT, avz = NU_BUF_INIT, js = NU_BUF_INIT, hint = NU_BUF_INIT;
    struct nu_errbuf eb = {0};
    nu_codec_cache_t *c = nu_codec_cache_new();
    struct nu_codec_opts oa = {.format = NU_FORMAT_AVRO, .cache = c};
    struct nu_codec_opts oz = {.format = NU_FORMAT_AVRO, .deflate = true, .cache = c};
    struct nu_codec_opts oj = {.format = NU_FORMAT_JSON, .cache = c};
    nu_schema_to_json(b->schema, &hint, &eb);

    struct result base_enc, base_dec, r[6];
    run_avro_c(b, secs, &base_enc, &base_dec);
    r[0] = run_encode("nurion avro encode", &oa, b, secs, &av);
    r[1] = run_decode("nurion avro decode", NU_FORMAT_AVRO, &av, NULL, secs);
    r[2] = run_encode("nurion avro+deflate encode", &oz, b, secs, &avz);
    r[3] = run_decode("nurion avro+deflate decode", NU_FORMAT_AVRO, &avz, NULL, secs);
    r[4] = run_encode("nurion json encode", &oj, b, secs, &js);
    r[5] = run_decode("nurion json decode", NU_FORMAT_JSON, &js, (char *)hint.data, secs);

    printf("Split codec, %d-row splits of ~%d-byte rows (id long, x double, s %d-byte string), "
           "one thread, %.1f s per case.\n\n",
           ROWS, 8 + 8 + STR_LEN + 4, STR_LEN, secs);
    printf("| case | rows/s | MB/s | vs Avro C |\n|---|---:|---:|---:|\n");
    printf("| %s | %.2f M | %.0f | 1.00 |\n", base_enc.name, base_enc.rows_per_s / 1e6,
           base_enc.mb_per_s);
    printf("| %s | %.2f M | %.0f | 1.00 |\n", base_dec.name, base_dec.rows_per_s / 1e6,
           base_dec.mb_per_s);
    for (int i = 0; i < 6; i++) {
        const struct result *base = i % 2 == 0 ? &base_enc : &base_dec;
        printf("| %s | %.2f M | %.0f | %.2f |\n", r[i].name, r[i].rows_per_s / 1e6, r[i].mb_per_s,
               r[i].rows_per_s / base->rows_per_s);
    }
    printf("\nEncoded split sizes: avro %zu B, avro+deflate %zu B, json %zu B.\n", av.len, avz.len,
           js.len);
    nu_buf_free(&av);
    nu_buf_free(&avz);
    nu_buf_free(&js);
    nu_buf_free(&hint);
    nu_codec_cache_destroy(c);
    nu_batch_destroy(b);
    return 0;
}
