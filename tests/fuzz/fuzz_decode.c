/*
 * fuzz_decode.c — libFuzzer target for the split codec.
 *
 * Input: the first byte picks the format (bit 0: 0 avro, 1 json) and the deflate option of the
 * re-encoding (bit 1); the rest is a record value. A value that decodes must re-encode, decode
 * again and compare equal (schema and every value); anything else is a bug and aborts.
 */
#include "common/codec.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct nu_errbuf eb = {0};
    struct nu_batch *a = NULL, *b = NULL;
    struct nu_buf out = NU_BUF_INIT, hint = NU_BUF_INIT;
    if (size < 1)
        return 0;
    nu_format_t f = data[0] & 1 ? NU_FORMAT_JSON : NU_FORMAT_AVRO;
    if (nu_codec_decode(f, data + 1, size - 1, NULL, &a, &eb) != NU_OK)
        goto out;
    struct nu_codec_opts o = {.format = f, .deflate = (data[0] & 2) != 0};
    nu_errbuf_clear(&eb);
    if (nu_codec_encode(&o, a, &out, &eb) != NU_OK) {
        /* a decoded batch always matches its own schema: any refusal is a bug */
        fprintf(stderr, "re-encode failed: %s\n", nu_err_msg(&eb));
        abort();
    }
    if (f == NU_FORMAT_JSON && nu_schema_to_json(a->schema, &hint, &eb) != NU_OK)
        abort();
    if (nu_codec_decode(f, out.data, out.len, f == NU_FORMAT_JSON ? (char *)hint.data : NULL, &b,
                        &eb) != NU_OK) {
        fprintf(stderr, "re-decode failed: %s\n", nu_err_msg(&eb));
        abort();
    }
    if (!nu_schema_equal(a->schema, b->schema) || a->nrows != b->nrows)
        abort();
    for (size_t r = 0; r < a->nrows; r++)
        for (size_t c = 0; c < a->schema->ncols; c++)
            if (!nu_value_equal(&nu_batch_row(a, r)[c], &nu_batch_row(b, r)[c])) {
                fprintf(stderr, "row %zu column %zu differs after a round trip\n", r, c);
                abort();
            }
out:
    nu_batch_destroy(a);
    nu_batch_destroy(b);
    nu_buf_free(&out);
    nu_buf_free(&hint);
    return 0;
}
