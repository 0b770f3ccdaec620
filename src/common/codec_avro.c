/* codec_avro.c — Avro object-container payloads: our own binary encoder and bounds-checked
 * decoder, working directly on nu_value. */
#include "common/codec_int.h"

#include "common/mem.h"
#include "common/sha256.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define NU_AVRO_SYNC_LEN 16
static const unsigned char nu_avro_magic[4] = {'O', 'b', 'j', 1};

/* ======================= encoding ======================= */

struct nu_avro_enc {
    struct nu_buf *o;
    size_t row;
    const char *col;
    struct nu_errbuf *eb;
};

static inline void nu_avro_put_long(struct nu_buf *o, int64_t v)
{
    unsigned char *p = nu_buf_reserve(o, 10);
    uint64_t z = ((uint64_t)v << 1) ^ ((uint64_t)0 - ((uint64_t)v >> 63));
    size_t n = 0;
    while (z >= 0x80) {
        p[n++] = (unsigned char)(z | 0x80);
        z >>= 7;
    }
    p[n++] = (unsigned char)z;
    o->len += n;
}

static inline void nu_avro_put_double(struct nu_buf *o, double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    unsigned char *p = nu_buf_reserve(o, 8);
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(u >> (8 * i));
    o->len += 8;
}

static inline void nu_avro_put_bytes(struct nu_buf *o, const char *s, size_t n)
{
    nu_avro_put_long(o, (int64_t)n);
    nu_buf_append(o, s, n);
}

static nu_err_t nu_avro_enc_value(struct nu_avro_enc *e, const struct nu_field *f,
                                  const struct nu_value *v)
{
    struct nu_buf *o = e->o;
    if (v->type == NU_T_NULL) {
        if (f->type == NU_T_NULL)
            return NU_OK;
        if (!f->nullable)
            return nu_err_set(e->eb, NU_ERR_SCHEMA,
                              "null in non-nullable column \"%s\" (%s) at row %zu", e->col,
                              nu_type_name(f->type), e->row);
        nu_buf_putc(o, 0);
        return NU_OK;
    }
    if (v->type != f->type)
        return nu_err_set(e->eb, NU_ERR_SCHEMA, "column \"%s\" at row %zu: expected %s, got %s",
                          e->col, e->row, nu_type_name(f->type), nu_type_name(v->type));
    if (f->nullable)
        nu_buf_putc(o, 2);
    nu_err_t err = NU_OK;
    switch (v->type) {
    case NU_T_BOOL:
        nu_buf_putc(o, v->u.b ? 1 : 0);
        break;
    case NU_T_INT64:
        nu_avro_put_long(o, v->u.i);
        break;
    case NU_T_DOUBLE:
        nu_avro_put_double(o, v->u.d);
        break;
    case NU_T_STRING:
    case NU_T_BYTES:
        nu_avro_put_bytes(o, v->u.s.ptr, v->u.s.len);
        break;
    case NU_T_ARRAY:
        if (v->u.arr.n)
            nu_avro_put_long(o, (int64_t)v->u.arr.n);
        for (size_t i = 0; i < v->u.arr.n && err == NU_OK; i++)
            err = nu_avro_enc_value(e, f->item, &v->u.arr.items[i]);
        nu_buf_putc(o, 0);
        break;
    case NU_T_MAP:
        if (v->u.map.n)
            nu_avro_put_long(o, (int64_t)v->u.map.n);
        for (size_t i = 0; i < v->u.map.n && err == NU_OK; i++) {
            const struct nu_value *k = &v->u.map.keys[i];
            if (k->type != NU_T_STRING)
                return nu_err_set(e->eb, NU_ERR_SCHEMA,
                                  "column \"%s\" at row %zu: map key of type %s", e->col, e->row,
                                  nu_type_name(k->type));
            nu_avro_put_bytes(o, k->u.s.ptr, k->u.s.len);
            err = nu_avro_enc_value(e, f->item, &v->u.map.vals[i]);
        }
        nu_buf_putc(o, 0);
        break;
    default:
        break;
    }
    return err;
}

/* Replace out[start..] (raw block data) by its raw-deflate compression. */
static nu_err_t nu_avro_deflate_tail(struct nu_buf *out, size_t start, int level,
                                     struct nu_errbuf *eb)
{
    nu_err_t err = NU_OK;
    z_stream z;
    memset(&z, 0, sizeof(z));
    unsigned char *tmp = NULL;
    size_t rawlen = out->len - start;
    if (deflateInit2(&z, level ? level : Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        return nu_err_set(eb, NU_ERR_INTERNAL, "could not initialise deflate");
    uLong bound = deflateBound(&z, (uLong)rawlen);
    tmp = nu_xmalloc(bound);
    z.next_in = out->data + start;
    z.avail_in = (uInt)rawlen;
    z.next_out = tmp;
    z.avail_out = (uInt)bound;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
        err = nu_err_set(eb, NU_ERR_INTERNAL, "could not deflate a block of %zu bytes", rawlen);
        goto out;
    }
    out->len = start;
    nu_buf_append(out, tmp, z.total_out);
out:
    deflateEnd(&z);
    free(tmp);
    return err;
}

nu_err_t nu_avro_encode(const struct nu_codec_opts *o, const struct nu_cschema *cs,
                        const struct nu_batch *b, struct nu_buf *out, struct nu_errbuf *eb)
{
    nu_err_t err = NU_OK;
    const struct nu_schema *s = b->schema;
    size_t max = o->max_value_bytes ? o->max_value_bytes : NU_CODEC_MAX_VALUE_BYTES;
    size_t per = o->block_rows ? o->block_rows : (b->nrows ? b->nrows : 1);
    size_t nblocks = (b->nrows + per - 1) / per;
    size_t *sync_at = nu_xcalloc(nblocks + 1, sizeof(*sync_at));
    struct nu_avro_enc e = {.o = out, .eb = eb};
    uint64_t h = 0x6e7572696f6e;
    static const char codec_null[] = "null", codec_deflate[] = "deflate";

    if (o->deflate && (o->deflate_level < 0 || o->deflate_level > 9)) {
        err =
            nu_err_set(eb, NU_ERR_INVALID, "deflate level %d is not within 0..9", o->deflate_level);
        goto out;
    }
    nu_buf_append(out, nu_avro_magic, 4);
    nu_avro_put_long(out, 2);
    nu_avro_put_bytes(out, "avro.schema", 11);
    nu_avro_put_bytes(out, (const char *)cs->avro_json.data, cs->avro_json.len);
    nu_avro_put_bytes(out, "avro.codec", 10);
    if (o->deflate)
        nu_avro_put_bytes(out, codec_deflate, sizeof(codec_deflate) - 1);
    else
        nu_avro_put_bytes(out, codec_null, sizeof(codec_null) - 1);
    nu_avro_put_long(out, 0);
    sync_at[0] = out->len;
    memset(nu_buf_reserve(out, NU_AVRO_SYNC_LEN), 0, NU_AVRO_SYNC_LEN);
    out->len += NU_AVRO_SYNC_LEN;

    for (size_t blk = 0; blk < nblocks; blk++) {
        size_t r0 = blk * per, r1 = r0 + per < b->nrows ? r0 + per : b->nrows;
        size_t hdr = out->len, data = hdr + 20; /* room for two varints */
        memset(nu_buf_reserve(out, 20), 0, 20);
        out->len = data;
        for (size_t r = r0; r < r1; r++) {
            const struct nu_value *row = nu_batch_row(b, r);
            e.row = r;
            for (size_t c = 0; c < s->ncols; c++) {
                e.col = s->cols[c].name;
                if ((err = nu_avro_enc_value(&e, &s->cols[c], &row[c])) != NU_OK)
                    goto out;
            }
            if (out->len > max + 64) {
                err = nu_err_set(eb, NU_ERR_TOO_LARGE,
                                 "encoded split is over the limit of %zu bytes at row %zu", max, r);
                goto out;
            }
        }
        if (o->deflate && (err = nu_avro_deflate_tail(out, data, o->deflate_level, eb)) != NU_OK)
            goto out;
        size_t dlen = out->len - data;
        h = nu_codec_hash64(out->data + data, dlen, h);
        /* write the two varints at hdr, then close the gap */
        size_t save = out->len;
        out->len = hdr;
        nu_avro_put_long(out, (int64_t)(r1 - r0));
        nu_avro_put_long(out, (int64_t)dlen);
        size_t nh = out->len;
        memmove(out->data + nh, out->data + data, dlen);
        out->len = save - (data - nh);
        sync_at[blk + 1] = out->len;
        nu_buf_reserve(out, NU_AVRO_SYNC_LEN);
        out->len += NU_AVRO_SYNC_LEN;
    }

    /* sync marker: SHA-256 over the schema text, the data hash and the row count */
    struct nu_sha256 sc;
    unsigned char dg[NU_SHA256_LEN], tail[16];
    for (int i = 0; i < 8; i++) {
        tail[i] = (unsigned char)(h >> (8 * i));
        tail[8 + i] = (unsigned char)((uint64_t)b->nrows >> (8 * i));
    }
    nu_sha256_init(&sc);
    nu_sha256_update(&sc, cs->avro_json.data, cs->avro_json.len);
    nu_sha256_update(&sc, tail, sizeof(tail));
    nu_sha256_final(&sc, dg);
    for (size_t i = 0; i <= nblocks; i++)
        memcpy(out->data + sync_at[i], dg, NU_AVRO_SYNC_LEN);
out:
    free(sync_at);
    return err;
}

/* ======================= decoding ======================= */

struct nu_avro_dec {
    const unsigned char *p, *end, *start; /* cursor within the current region */
    size_t block;                         /* current block, for messages */
    size_t row;
    const char *col;
    size_t zero_width; /* zero-width values decoded so far */
    struct nu_batch *b;
    struct nu_errbuf *eb;
};

static nu_err_t nu_avro_corrupt(struct nu_avro_dec *d, const char *what)
{
    if (d->col)
        return nu_err_set(
            d->eb, NU_ERR_CORRUPT,
            "corrupt Avro value: %s at byte %zu of block %zu (row %zu, column \"%s\")", what,
            (size_t)(d->p - d->start), d->block, d->row, d->col);
    return nu_err_set(d->eb, NU_ERR_CORRUPT, "corrupt Avro value: %s at byte %zu", what,
                      (size_t)(d->p - d->start));
}

static inline nu_err_t nu_avro_get_long(struct nu_avro_dec *d, int64_t *out)
{
    uint64_t z = 0;
    *out = 0;
    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (d->p >= d->end)
            return nu_avro_corrupt(d, "truncated varint");
        unsigned char c = *d->p++;
        if (shift == 63 && c > 1)
            return nu_avro_corrupt(d, "varint overflows 64 bits");
        z |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *out = (int64_t)((z >> 1) ^ ((uint64_t)0 - (z & 1)));
            return NU_OK;
        }
    }
    return nu_avro_corrupt(d, "varint longer than 10 bytes");
}

/* A length or count: non-negative and at most `limit`. */
static nu_err_t nu_avro_get_len(struct nu_avro_dec *d, size_t limit, const char *what, size_t *out)
{
    int64_t v = 0;
    nu_err_t err = nu_avro_get_long(d, &v);
    if (err != NU_OK)
        return err;
    if (v < 0 || (uint64_t)v > limit) {
        char msg[128];
        snprintf(msg, sizeof(msg), "%s %lld out of range (at most %zu)", what, (long long)v, limit);
        return nu_avro_corrupt(d, msg);
    }
    *out = (size_t)v;
    return NU_OK;
}

static nu_err_t nu_avro_get_view(struct nu_avro_dec *d, size_t n, const unsigned char **out)
{
    if ((size_t)(d->end - d->p) < n)
        return nu_avro_corrupt(d, "truncated value");
    *out = d->p;
    d->p += n;
    return NU_OK;
}

/* Count of the next array/map block (absolute), consuming its byte size when present. */
static nu_err_t nu_avro_get_count(struct nu_avro_dec *d, const struct nu_avro_node *item,
                                  size_t per_item, size_t *out)
{
    int64_t v = 0, sz = 0;
    nu_err_t err = nu_avro_get_long(d, &v);
    if (err == NU_OK && v < 0) {
        if (v == INT64_MIN)
            return nu_avro_corrupt(d, "block count out of range");
        v = -v;
        if ((err = nu_avro_get_long(d, &sz)) == NU_OK && (sz < 0 || sz > d->end - d->p))
            return nu_avro_corrupt(d, "block byte size out of range");
    }
    if (err != NU_OK)
        return err;
    size_t left = (size_t)(d->end - d->p);
    size_t w = per_item + item->min_width;
    if (w > 0 ? (uint64_t)v > left / w : (uint64_t)v > NU_CODEC_MAX_ZERO_WIDTH - d->zero_width)
        return nu_avro_corrupt(d, "item count exceeds the remaining bytes or the limit");
    if (w == 0)
        d->zero_width += (size_t)v;
    *out = (size_t)v;
    return NU_OK;
}

static nu_err_t nu_avro_dec_value(struct nu_avro_dec *d, const struct nu_avro_node *n,
                                  struct nu_value *v)
{
    nu_err_t err = NU_OK;
    int64_t l = 0;
    size_t len = 0;
    const unsigned char *p = NULL;
    if (n->null_index >= 0) {
        if ((err = nu_avro_get_long(d, &l)) != NU_OK)
            return err;
        if (l == n->null_index) {
            v->type = NU_T_NULL;
            return NU_OK;
        }
        if (l != 1 - n->null_index)
            return nu_avro_corrupt(d, "union branch out of range");
    }
    switch (n->kind) {
    case NU_AV_NULL:
        v->type = NU_T_NULL;
        break;
    case NU_AV_BOOLEAN:
        if (d->p >= d->end || *d->p > 1)
            return nu_avro_corrupt(d, d->p >= d->end ? "truncated value" : "boolean not 0 or 1");
        *v = nu_value_bool(*d->p++ != 0);
        break;
    case NU_AV_INT:
    case NU_AV_LONG:
        if ((err = nu_avro_get_long(d, &l)) != NU_OK)
            return err;
        if (n->kind == NU_AV_INT && (l < INT32_MIN || l > INT32_MAX))
            return nu_avro_corrupt(d, "int out of 32-bit range");
        *v = nu_value_int(l);
        break;
    case NU_AV_FLOAT:
    case NU_AV_DOUBLE: {
        size_t w = n->kind == NU_AV_FLOAT ? 4 : 8;
        if ((err = nu_avro_get_view(d, w, &p)) != NU_OK)
            return err;
        uint64_t u = 0;
        for (size_t i = 0; i < w; i++)
            u |= (uint64_t)p[i] << (8 * i);
        if (w == 4) {
            uint32_t u32 = (uint32_t)u;
            float f;
            memcpy(&f, &u32, 4);
            *v = nu_value_double(f);
        } else {
            double x;
            memcpy(&x, &u, 8);
            *v = nu_value_double(x);
        }
        break;
    }
    case NU_AV_STRING:
    case NU_AV_BYTES:
    case NU_AV_FIXED:
        if (n->kind == NU_AV_FIXED)
            len = n->fixed_size;
        else if ((err = nu_avro_get_len(d, (size_t)(d->end - d->p), "length", &len)) != NU_OK)
            return err;
        if ((err = nu_avro_get_view(d, len, &p)) != NU_OK)
            return err;
        *v =
            nu_value_view(n->kind == NU_AV_STRING ? NU_T_STRING : NU_T_BYTES, (const char *)p, len);
        break;
    case NU_AV_ENUM:
        if ((err = nu_avro_get_len(d, n->nsyms - 1, "enum index", &len)) != NU_OK)
            return err;
        *v = nu_batch_str(d->b, NU_T_STRING, n->syms[len], strlen(n->syms[len]));
        break;
    case NU_AV_ARRAY:
    case NU_AV_MAP: {
        bool map = n->kind == NU_AV_MAP;
        struct nu_value *items = NULL, *keys = NULL;
        size_t total = 0, cnt;
        for (;;) {
            if ((err = nu_avro_get_count(d, n->item, map ? 1 : 0, &cnt)) != NU_OK)
                return err;
            if (cnt == 0)
                break;
            size_t sz = sizeof(struct nu_value);
            items = nu_arena_realloc(d->b->arena, items, total * sz, (total + cnt) * sz);
            if (map)
                keys = nu_arena_realloc(d->b->arena, keys, total * sz, (total + cnt) * sz);
            for (size_t i = total; i < total + cnt; i++) {
                if (map) {
                    if ((err = nu_avro_get_len(d, (size_t)(d->end - d->p), "key length", &len)) !=
                            NU_OK ||
                        (err = nu_avro_get_view(d, len, &p)) != NU_OK)
                        return err;
                    keys[i] = nu_value_view(NU_T_STRING, (const char *)p, len);
                }
                memset(&items[i], 0, sizeof(items[i]));
                if ((err = nu_avro_dec_value(d, n->item, &items[i])) != NU_OK)
                    return err;
            }
            total += cnt;
        }
        if (map) {
            v->type = NU_T_MAP;
            v->u.map.keys = keys;
            v->u.map.vals = items;
            v->u.map.n = total;
        } else {
            v->type = NU_T_ARRAY;
            v->u.arr.items = items;
            v->u.arr.n = total;
        }
        break;
    }
    }
    return err;
}

/* Inflate raw deflate data into `scratch` (reset first), at most `limit` bytes. */
static nu_err_t nu_avro_inflate(struct nu_avro_dec *d, const unsigned char *in, size_t n,
                                size_t limit, struct nu_buf *scratch)
{
    nu_err_t err = NU_OK;
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (inflateInit2(&z, -15) != Z_OK)
        return nu_err_set(d->eb, NU_ERR_INTERNAL, "could not initialise inflate");
    nu_buf_reset(scratch);
    z.next_in = (unsigned char *)in;
    z.avail_in = (uInt)n;
    for (;;) {
        size_t want = n * 4 > 65536 ? n * 4 : 65536;
        nu_buf_reserve(scratch, want);
        size_t room = scratch->cap - scratch->len;
        if (room > limit + 1 - scratch->len)
            room = limit + 1 - scratch->len;
        z.next_out = scratch->data + scratch->len;
        z.avail_out = (uInt)room;
        int rc = inflate(&z, Z_NO_FLUSH);
        scratch->len = z.total_out;
        if (scratch->len > limit) {
            err = nu_err_set(d->eb, NU_ERR_TOO_LARGE,
                             "deflate block %zu inflates to more than %zu bytes", d->block, limit);
            break;
        }
        if (rc == Z_STREAM_END)
            break;
        if (rc != Z_OK && !(rc == Z_BUF_ERROR && z.avail_in > 0)) {
            err = nu_err_set(d->eb, NU_ERR_CORRUPT,
                             "corrupt Avro value: bad deflate data in block %zu%s%s", d->block,
                             z.msg ? ": " : "", z.msg ? z.msg : "");
            break;
        }
    }
    inflateEnd(&z);
    return err;
}

nu_err_t nu_avro_decode(nu_codec_cache_t *c, const unsigned char *p, size_t len,
                        struct nu_batch **out, struct nu_errbuf *eb)
{
    nu_err_t err = NU_OK;
    struct nu_avro_dec d = {.p = p, .end = p + len, .start = p, .eb = eb};
    struct nu_cschema *cs = NULL;
    bool owned = false, deflate = false;
    struct nu_buf scratch = NU_BUF_INIT;
    const unsigned char *schema = NULL, *sync = NULL, *v = NULL;
    size_t schema_len = 0, nmeta = 0, cnt = 0, klen = 0, vlen = 0;

    if (len < 4 || memcmp(p, nu_avro_magic, 4) != 0) {
        err = nu_err_set(eb, NU_ERR_CORRUPT,
                         "corrupt Avro value: missing the object container magic \"Obj\\x01\"");
        goto out;
    }
    d.p += 4;
    for (;;) {
        if ((err = nu_avro_get_count(&d, &(struct nu_avro_node){.min_width = 2}, 0, &cnt)) != NU_OK)
            goto out;
        if (cnt == 0)
            break;
        if ((nmeta += cnt) > NU_CODEC_MAX_META_ENTRIES) {
            err = nu_avro_corrupt(&d, "too many metadata entries");
            goto out;
        }
        for (size_t i = 0; i < cnt; i++) {
            const unsigned char *k = NULL;
            if ((err = nu_avro_get_len(&d, (size_t)(d.end - d.p), "key length", &klen)) != NU_OK ||
                (err = nu_avro_get_view(&d, klen, &k)) != NU_OK ||
                (err = nu_avro_get_len(&d, (size_t)(d.end - d.p), "value length", &vlen)) !=
                    NU_OK ||
                (err = nu_avro_get_view(&d, vlen, &v)) != NU_OK)
                goto out;
            if (klen == 11 && memcmp(k, "avro.schema", 11) == 0) {
                schema = v;
                schema_len = vlen;
            } else if (klen == 10 && memcmp(k, "avro.codec", 10) == 0) {
                if (vlen == 7 && memcmp(v, "deflate", 7) == 0) {
                    deflate = true;
                } else if (!(vlen == 4 && memcmp(v, "null", 4) == 0)) {
                    err = nu_err_set(eb, NU_ERR_UNSUPPORTED,
                                     "unsupported Avro codec \"%.*s\": expected null or deflate",
                                     (int)(vlen > 32 ? 32 : vlen), (const char *)v);
                    goto out;
                }
            }
        }
    }
    if ((err = nu_avro_get_view(&d, NU_AVRO_SYNC_LEN, &sync)) != NU_OK)
        goto out;
    if (!schema) {
        err = nu_err_set(eb, NU_ERR_SCHEMA, "Avro value has no avro.schema metadata");
        goto out;
    }
    if ((err = nu_codec_cschema_text(c, NU_CS_AVRO, (const char *)schema, schema_len, &cs, &owned,
                                     eb)) != NU_OK)
        goto out;
    size_t ncols = cs->schema->ncols;
    while (d.p < d.end) {
        size_t count, size, rows_left = NU_CODEC_MAX_ROWS - (d.b ? d.b->nrows : 0);
        const unsigned char *data = NULL;
        if ((err = nu_avro_get_len(&d, rows_left, "block row count", &count)) != NU_OK ||
            (err = nu_avro_get_len(&d, (size_t)(d.end - d.p), "block size", &size)) != NU_OK ||
            (err = nu_avro_get_view(&d, size, &data)) != NU_OK)
            goto out;
        const unsigned char *bsync = NULL;
        if ((err = nu_avro_get_view(&d, NU_AVRO_SYNC_LEN, &bsync)) != NU_OK)
            goto out;
        if (memcmp(bsync, sync, NU_AVRO_SYNC_LEN) != 0) {
            d.p -= NU_AVRO_SYNC_LEN;
            err = nu_avro_corrupt(&d, "sync marker does not match the header");
            goto out;
        }
        if (deflate) {
            if ((err = nu_avro_inflate(&d, data, size, NU_CODEC_MAX_VALUE_BYTES, &scratch)) !=
                NU_OK)
                goto out;
            data = scratch.data;
            size = scratch.len;
        }
        if (cs->min_row_width ? count > size / cs->min_row_width
                              : count * ncols > NU_CODEC_MAX_ZERO_WIDTH - d.zero_width) {
            err = nu_err_set(eb, NU_ERR_CORRUPT,
                             "corrupt Avro value: block %zu claims %zu rows in %zu bytes", d.block,
                             count, size);
            goto out;
        }
        d.zero_width += count * cs->zero_width_cols;
        if (d.zero_width > NU_CODEC_MAX_ZERO_WIDTH) {
            err = nu_err_set(eb, NU_ERR_TOO_LARGE, "Avro value has more than %u null-typed values",
                             NU_CODEC_MAX_ZERO_WIDTH);
            goto out;
        }
        if (!d.b) /* sized for the first block (its count is checked above) */
            d.b = nu_batch_new(cs->schema, count < 65536 ? count : 65536);
        /* row data lives in the batch: copy the block once, strings are views into it */
        unsigned char *copy = nu_batch_alloc(d.b, size ? size : 1);
        memcpy(copy, data, size);
        struct nu_avro_dec bd = d;
        bd.p = bd.start = copy;
        bd.end = copy + size;
        for (size_t r = 0; r < count; r++) {
            struct nu_value *row = nu_batch_add_row(d.b);
            bd.row = d.b->nrows - 1;
            for (size_t k = 0; k < ncols; k++) {
                bd.col = cs->schema->cols[k].name;
                if ((err = nu_avro_dec_value(&bd, &cs->nodes[k], &row[k])) != NU_OK)
                    goto out;
            }
        }
        if (bd.p != bd.end) {
            bd.col = NULL;
            err = nu_err_set(eb, NU_ERR_CORRUPT,
                             "corrupt Avro value: block %zu has %zu bytes after its %zu rows",
                             d.block, (size_t)(bd.end - bd.p), count);
            goto out;
        }
        d.zero_width = bd.zero_width;
        d.block++;
    }
    *out = d.b ? d.b : nu_batch_new(cs->schema, 0);
    d.b = NULL;
out:
    nu_batch_destroy(d.b);
    nu_buf_free(&scratch);
    if (owned)
        nu_cschema_free(cs);
    return err;
}

nu_err_t nu_codec_decode_avro_datum(nu_codec_cache_t *c, const char *schema, size_t schema_len,
                                    const void *data, size_t len, struct nu_batch **out,
                                    struct nu_errbuf *eb)
{
    nu_err_t err = NU_OK;
    struct nu_cschema *cs = NULL;
    bool owned = false;
    struct nu_avro_dec d = {.eb = eb};

    *out = NULL;
    if (len > NU_CODEC_MAX_VALUE_BYTES) {
        err = nu_err_set(eb, NU_ERR_TOO_LARGE, "value of %zu bytes is over the limit of %u", len,
                         NU_CODEC_MAX_VALUE_BYTES);
        goto out;
    }
    if ((err = nu_codec_cschema_text(c, NU_CS_AVRO, schema, schema_len, &cs, &owned, eb)) != NU_OK)
        goto out;
    if (len < cs->min_row_width) {
        err = nu_err_set(eb, NU_ERR_CORRUPT,
                         "corrupt Avro value: datum of %zu bytes is shorter than the %zu bytes "
                         "one record takes at least",
                         len, cs->min_row_width);
        goto out;
    }
    d.b = nu_batch_new(cs->schema, 1);
    /* row data lives in the batch: strings are views into this copy */
    unsigned char *copy = nu_batch_alloc(d.b, len ? len : 1);
    if (len)
        memcpy(copy, data, len);
    d.p = d.start = copy;
    d.end = copy + len;
    struct nu_value *row = nu_batch_add_row(d.b);
    for (size_t k = 0; k < cs->schema->ncols; k++) {
        d.col = cs->schema->cols[k].name;
        if ((err = nu_avro_dec_value(&d, &cs->nodes[k], &row[k])) != NU_OK)
            goto out;
    }
    if (d.p != d.end) {
        err = nu_err_set(eb, NU_ERR_CORRUPT,
                         "corrupt Avro value: %zu bytes after the end of the datum",
                         (size_t)(d.end - d.p));
        goto out;
    }
    *out = d.b;
    d.b = NULL;
out:
    nu_batch_destroy(d.b);
    if (owned)
        nu_cschema_free(cs);
    return err;
}

nu_err_t nu_codec_encode_avro_datum(const struct nu_batch *b, size_t row, struct nu_buf *out,
                                    struct nu_errbuf *eb)
{
    struct nu_avro_enc e = {.o = out, .eb = eb, .row = row};
    const struct nu_schema *s = b->schema;
    size_t start = out->len;
    nu_err_t err = nu_codec_check_schema(s, eb);

    if (err == NU_OK && row >= b->nrows)
        err = nu_err_set(eb, NU_ERR_INVALID, "row %zu of a batch of %zu rows", row, b->nrows);
    for (size_t c = 0; err == NU_OK && c < s->ncols; c++) {
        e.col = s->cols[c].name;
        err = nu_avro_enc_value(&e, &s->cols[c], &nu_batch_row(b, row)[c]);
    }
    if (err != NU_OK)
        out->len = start;
    return err;
}
