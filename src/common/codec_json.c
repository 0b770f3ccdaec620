/* codec_json.c — JSON Lines values: a hand-written encoder and a jansson-based decoder with
 * schema inference. */
#include "common/codec_int.h"

#include "common/mem.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ======================= encoding ======================= */

/* Length of a valid UTF-8 sequence at s (n bytes available), or 0 if invalid. */
static size_t nu_utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min, cp;
    if (c < 0xc2)
        return 0; /* continuation byte or overlong 2-byte lead */
    if (c < 0xe0) {
        len = 2, min = 0x80, cp = c & 0x1f;
    } else if (c < 0xf0) {
        len = 3, min = 0x800, cp = c & 0x0f;
    } else if (c < 0xf5) {
        len = 4, min = 0x10000, cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

bool nu_cjson_put_string(struct nu_buf *out, const char *str, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str, *end = s + len;
    nu_buf_putc(out, '"');
    while (s < end) {
        const unsigned char *run = s;
        while (s < end && *s >= 0x20 && *s < 0x80 && *s != '"' && *s != '\\')
            s++;
        nu_buf_append(out, run, (size_t)(s - run));
        if (s == end)
            break;
        unsigned c = *s;
        if (c >= 0x80) {
            size_t n = nu_utf8_seq(s, (size_t)(end - s));
            if (n == 0)
                return false;
            nu_buf_append(out, s, n);
            s += n;
            continue;
        }
        unsigned char *p = nu_buf_reserve(out, 6);
        p[0] = '\\';
        switch (c) {
        case '"':
        case '\\':
            p[1] = (unsigned char)c, out->len += 2;
            break;
        case '\n':
            p[1] = 'n', out->len += 2;
            break;
        case '\t':
            p[1] = 't', out->len += 2;
            break;
        case '\r':
            p[1] = 'r', out->len += 2;
            break;
        default:
            memcpy(p + 1, "u00", 3);
            p[4] = (unsigned char)hex[c >> 4];
            p[5] = (unsigned char)hex[c & 15];
            out->len += 6;
        }
        s++;
    }
    nu_buf_putc(out, '"');
    return true;
}

static void nu_cjson_put_int(struct nu_buf *out, int64_t v)
{
    char tmp[24];
    size_t n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    unsigned char *p = nu_buf_reserve(out, n + 1);
    size_t k = 0;
    if (v < 0)
        p[k++] = '-';
    while (n)
        p[k++] = (unsigned char)tmp[--n];
    out->len += k;
}

static void nu_cjson_put_double(struct nu_buf *out, double d)
{
    if (isnan(d)) {
        nu_buf_append(out, "\"NaN\"", 5);
        return;
    }
    if (isinf(d)) {
        if (d < 0)
            nu_buf_append(out, "\"-Infinity\"", 11);
        else
            nu_buf_append(out, "\"Infinity\"", 10);
        return;
    }
    char *p = (char *)nu_buf_reserve(out, 32);
    int n = snprintf(p, 32, "%.17g", d);
    if (!strpbrk(p, ".e"))
        memcpy(p + n, ".0", 2), n += 2;
    out->len += (size_t)n;
}

static void nu_cjson_put_base64(struct nu_buf *out, const unsigned char *s, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned char *p = nu_buf_reserve(out, (n + 2) / 3 * 4 + 2);
    size_t k = 0, i = 0;
    p[k++] = '"';
    for (; i + 3 <= n; i += 3) {
        uint32_t w = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        p[k++] = (unsigned char)tab[w >> 18];
        p[k++] = (unsigned char)tab[(w >> 12) & 63];
        p[k++] = (unsigned char)tab[(w >> 6) & 63];
        p[k++] = (unsigned char)tab[w & 63];
    }
    if (i < n) {
        uint32_t w = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0);
        p[k++] = (unsigned char)tab[w >> 18];
        p[k++] = (unsigned char)tab[(w >> 12) & 63];
        p[k++] = i + 1 < n ? (unsigned char)tab[(w >> 6) & 63] : '=';
        p[k++] = '=';
    }
    p[k++] = '"';
    out->len += k;
}

struct nu_cjson_enc {
    struct nu_buf *o;
    size_t row;
    const char *col;
    struct nu_errbuf *eb;
};

static nu_err_t nu_cjson_enc_value(struct nu_cjson_enc *e, const struct nu_field *f,
                                   const struct nu_value *v)
{
    struct nu_buf *o = e->o;
    nu_err_t err = NU_OK;
    if (v->type == NU_T_NULL) {
        if (f->type != NU_T_NULL && !f->nullable)
            return nu_err_set(e->eb, NU_ERR_SCHEMA,
                              "null in non-nullable column \"%s\" (%s) at row %zu", e->col,
                              nu_type_name(f->type), e->row);
        nu_buf_append(o, "null", 4);
        return NU_OK;
    }
    if (v->type != f->type)
        return nu_err_set(e->eb, NU_ERR_SCHEMA, "column \"%s\" at row %zu: expected %s, got %s",
                          e->col, e->row, nu_type_name(f->type), nu_type_name(v->type));
    switch (v->type) {
    case NU_T_BOOL:
        if (v->u.b)
            nu_buf_append(o, "true", 4);
        else
            nu_buf_append(o, "false", 5);
        break;
    case NU_T_INT64:
        nu_cjson_put_int(o, v->u.i);
        break;
    case NU_T_DOUBLE:
        nu_cjson_put_double(o, v->u.d);
        break;
    case NU_T_STRING:
        if (!nu_cjson_put_string(o, v->u.s.ptr, v->u.s.len))
            return nu_err_set(e->eb, NU_ERR_INVALID,
                              "column \"%s\" at row %zu: string is not valid UTF-8", e->col,
                              e->row);
        break;
    case NU_T_BYTES:
        nu_cjson_put_base64(o, (const unsigned char *)v->u.s.ptr, v->u.s.len);
        break;
    case NU_T_ARRAY:
        nu_buf_putc(o, '[');
        for (size_t i = 0; i < v->u.arr.n && err == NU_OK; i++) {
            if (i)
                nu_buf_putc(o, ',');
            err = nu_cjson_enc_value(e, f->item, &v->u.arr.items[i]);
        }
        nu_buf_putc(o, ']');
        break;
    case NU_T_MAP:
        nu_buf_putc(o, '{');
        for (size_t i = 0; i < v->u.map.n && err == NU_OK; i++) {
            const struct nu_value *k = &v->u.map.keys[i];
            if (i)
                nu_buf_putc(o, ',');
            if (k->type != NU_T_STRING || !nu_cjson_put_string(o, k->u.s.ptr, k->u.s.len))
                return nu_err_set(e->eb, NU_ERR_INVALID,
                                  "column \"%s\" at row %zu: map key is not a UTF-8 string", e->col,
                                  e->row);
            nu_buf_putc(o, ':');
            err = nu_cjson_enc_value(e, f->item, &v->u.map.vals[i]);
        }
        nu_buf_putc(o, '}');
        break;
    default:
        break;
    }
    return err;
}

nu_err_t nu_cjson_encode(const struct nu_codec_opts *o, const struct nu_cschema *cs,
                         const struct nu_batch *b, struct nu_buf *out, struct nu_errbuf *eb)
{
    const struct nu_schema *s = b->schema;
    size_t max = o->max_value_bytes ? o->max_value_bytes : NU_CODEC_MAX_VALUE_BYTES;
    struct nu_cjson_enc e = {.o = out, .eb = eb};
    for (size_t r = 0; r < b->nrows; r++) {
        const struct nu_value *row = nu_batch_row(b, r);
        e.row = r;
        nu_buf_putc(out, '{');
        for (size_t c = 0; c < s->ncols; c++) {
            if (c)
                nu_buf_putc(out, ',');
            nu_buf_append(out, cs->json_keys.data + cs->json_key_off[c],
                          cs->json_key_off[c + 1] - cs->json_key_off[c]);
            e.col = s->cols[c].name;
            nu_err_t err = nu_cjson_enc_value(&e, &s->cols[c], &row[c]);
            if (err != NU_OK)
                return err;
        }
        nu_buf_append(out, "}\n", 2);
        if (out->len > max)
            return nu_err_set(eb, NU_ERR_TOO_LARGE,
                              "encoded split is over the limit of %zu bytes at row %zu", max, r);
    }
    return NU_OK;
}

/* ======================= decoding ======================= */

struct nu_cjson_dec {
    size_t line; /* 1-based */
    const char *col;
    struct nu_batch *b;
    struct nu_errbuf *eb;
};

static int nu_b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Strict padded base64 into batch memory; false when invalid. */
static bool nu_b64_decode(struct nu_batch *b, const char *in, size_t n, struct nu_value *v)
{
    const unsigned char *s = (const unsigned char *)in;
    if (n % 4)
        return false;
    size_t pad = n && s[n - 1] == '=' ? (s[n - 2] == '=' ? 2 : 1) : 0;
    size_t olen = n / 4 * 3 - pad, k = 0;
    unsigned char *o = nu_batch_alloc(b, olen + 1);
    for (size_t i = 0; i < n; i += 4) {
        int q[4];
        for (int j = 0; j < 4; j++) {
            bool padpos = i + 4 == n && j >= 4 - (int)pad;
            q[j] = padpos ? 0 : nu_b64_val(s[i + j]);
            if (q[j] < 0)
                return false;
        }
        uint32_t w =
            (uint32_t)q[0] << 18 | (uint32_t)q[1] << 12 | (uint32_t)q[2] << 6 | (uint32_t)q[3];
        unsigned char t[3] = {(unsigned char)(w >> 16), (unsigned char)(w >> 8), (unsigned char)w};
        for (int j = 0; j < 3 && k < olen; j++)
            o[k++] = t[j];
    }
    *v = nu_value_view(NU_T_BYTES, (const char *)o, olen);
    return true;
}

static nu_err_t nu_cjson_mismatch(struct nu_cjson_dec *d, const struct nu_field *f, json_t *j)
{
    static const char *const jt[] = {"object", "array", "string", "integer",
                                     "number", "true",  "false",  "null"};
    return nu_err_set(d->eb, NU_ERR_SCHEMA, "line %zu, column \"%s\": expected %s, got %s", d->line,
                      d->col, nu_type_name(f->type), jt[json_typeof(j)]);
}

static nu_err_t nu_cjson_conv(struct nu_cjson_dec *d, const struct nu_field *f, json_t *j,
                              struct nu_value *v)
{
    nu_err_t err = NU_OK;
    size_t sz = sizeof(struct nu_value);
    if (json_is_null(j)) {
        if (f->type != NU_T_NULL && !f->nullable)
            return nu_err_set(d->eb, NU_ERR_SCHEMA, "line %zu: null in non-nullable column \"%s\"",
                              d->line, d->col);
        *v = nu_value_null();
        return NU_OK;
    }
    switch (f->type) {
    case NU_T_NULL:
        return nu_cjson_mismatch(d, f, j);
    case NU_T_BOOL:
        if (!json_is_boolean(j))
            return nu_cjson_mismatch(d, f, j);
        *v = nu_value_bool(json_is_true(j));
        return NU_OK;
    case NU_T_INT64:
        if (!json_is_integer(j))
            return nu_cjson_mismatch(d, f, j);
        *v = nu_value_int(json_integer_value(j));
        return NU_OK;
    case NU_T_DOUBLE:
        if (json_is_number(j)) {
            *v = nu_value_double(json_number_value(j));
            return NU_OK;
        }
        if (json_is_string(j)) {
            const char *s = json_string_value(j);
            if (strcmp(s, "NaN") == 0 || strcmp(s, "Infinity") == 0 ||
                strcmp(s, "-Infinity") == 0) {
                *v = nu_value_double(s[0] == 'N' ? NAN : s[0] == '-' ? -INFINITY : INFINITY);
                return NU_OK;
            }
        }
        return nu_cjson_mismatch(d, f, j);
    case NU_T_STRING:
        if (!json_is_string(j))
            return nu_cjson_mismatch(d, f, j);
        *v = nu_batch_str(d->b, NU_T_STRING, json_string_value(j), json_string_length(j));
        return NU_OK;
    case NU_T_BYTES:
        if (!json_is_string(j))
            return nu_cjson_mismatch(d, f, j);
        if (!nu_b64_decode(d->b, json_string_value(j), json_string_length(j), v))
            return nu_err_set(d->eb, NU_ERR_CORRUPT, "line %zu, column \"%s\": invalid base64",
                              d->line, d->col);
        return NU_OK;
    case NU_T_ARRAY:
        if (!json_is_array(j))
            return nu_cjson_mismatch(d, f, j);
        v->type = NU_T_ARRAY;
        v->u.arr.n = json_array_size(j);
        v->u.arr.items = nu_batch_alloc(d->b, v->u.arr.n * sz + 1);
        for (size_t i = 0; i < v->u.arr.n && err == NU_OK; i++)
            err = nu_cjson_conv(d, f->item, json_array_get(j, i), &v->u.arr.items[i]);
        return err;
    case NU_T_MAP: {
        if (!json_is_object(j))
            return nu_cjson_mismatch(d, f, j);
        const char *k;
        json_t *jv;
        size_t i = 0;
        v->type = NU_T_MAP;
        v->u.map.n = json_object_size(j);
        v->u.map.keys = nu_batch_alloc(d->b, v->u.map.n * sz + 1);
        v->u.map.vals = nu_batch_alloc(d->b, v->u.map.n * sz + 1);
        json_object_foreach(j, k, jv)
        {
            if (err != NU_OK)
                break;
            v->u.map.keys[i] = nu_batch_str(d->b, NU_T_STRING, k, strlen(k));
            err = nu_cjson_conv(d, f->item, jv, &v->u.map.vals[i++]);
        }
        return err;
    }
    }
    return err;
}

/* Merge the type of JSON value j into inferred field f (type NULL = nothing seen yet). */
static nu_err_t nu_cjson_infer(struct nu_cjson_dec *d, struct nu_field *f, json_t *j)
{
    nu_type_t want;
    switch (json_typeof(j)) {
    case JSON_NULL:
        f->nullable = true;
        return NU_OK;
    case JSON_TRUE:
    case JSON_FALSE:
        want = NU_T_BOOL;
        break;
    case JSON_INTEGER:
        want = NU_T_INT64;
        break;
    case JSON_REAL:
        want = NU_T_DOUBLE;
        break;
    case JSON_STRING:
        want = NU_T_STRING;
        break;
    case JSON_ARRAY:
        want = NU_T_ARRAY;
        break;
    default:
        want = NU_T_MAP;
        break;
    }
    if (f->type == NU_T_NULL) {
        f->type = want;
        if (want == NU_T_ARRAY || want == NU_T_MAP)
            f->item = nu_xcalloc(1, sizeof(*f->item));
    } else if ((f->type == NU_T_INT64 && want == NU_T_DOUBLE) ||
               (f->type == NU_T_DOUBLE && want == NU_T_INT64)) {
        f->type = NU_T_DOUBLE;
    } else if (f->type != want) {
        return nu_err_set(d->eb, NU_ERR_SCHEMA, "line %zu, column \"%s\": mixes %s and %s values",
                          d->line, d->col, nu_type_name(f->type), nu_type_name(want));
    }
    nu_err_t err = NU_OK;
    if (want == NU_T_ARRAY) {
        for (size_t i = 0; i < json_array_size(j) && err == NU_OK; i++)
            err = nu_cjson_infer(d, f->item, json_array_get(j, i));
    } else if (want == NU_T_MAP) {
        const char *k;
        json_t *jv;
        json_object_foreach(j, k, jv)
        {
            if (err == NU_OK)
                err = nu_cjson_infer(d, f->item, jv);
        }
    }
    return err;
}

static void nu_cjson_fix_nulls(struct nu_field *f)
{
    if (f->type == NU_T_NULL)
        f->nullable = false;
    if (f->item)
        nu_cjson_fix_nulls(f->item);
}

/* Next non-blank line of [*pp, end): sets line/len, advances *pp; false at the end. */
static bool nu_cjson_next_line(const char **pp, const char *end, size_t *lineno, const char **line,
                               size_t *len)
{
    while (*pp < end) {
        const char *s = *pp, *nl = memchr(s, '\n', (size_t)(end - s));
        const char *e = nl ? nl : end;
        *pp = nl ? nl + 1 : end;
        (*lineno)++;
        const char *t = s;
        while (t < e && (*t == ' ' || *t == '\t' || *t == '\r'))
            t++;
        if (t == e)
            continue;
        *line = s;
        *len = (size_t)(e - s);
        return true;
    }
    return false;
}

/* Parse one line into an object, checking length and nesting first. */
static nu_err_t nu_cjson_parse_line(struct nu_cjson_dec *d, const char *s, size_t n, json_t **out)
{
    *out = NULL;
    if (n > NU_CODEC_MAX_LINE_BYTES)
        return nu_err_set(d->eb, NU_ERR_TOO_LARGE, "line %zu is %zu bytes, over the limit of %u",
                          d->line, n, NU_CODEC_MAX_LINE_BYTES);
    int depth = 0;
    bool str = false, esc = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (str) {
            if (esc)
                esc = false;
            else if (c == '\\')
                esc = true;
            else if (c == '"')
                str = false;
        } else if (c == '"') {
            str = true;
        } else if (c == '[' || c == '{') {
            if (++depth > NU_MAX_NESTING + 1)
                return nu_err_set(d->eb, NU_ERR_CORRUPT,
                                  "corrupt JSON value: line %zu nests deeper than %d levels",
                                  d->line, NU_MAX_NESTING);
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    json_error_t je;
    json_t *j = json_loadb(s, n, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &je);
    if (!j)
        return nu_err_set(d->eb, NU_ERR_CORRUPT, "corrupt JSON value: line %zu, character %d: %s",
                          d->line, je.position, je.text);
    if (!json_is_object(j)) {
        json_decref(j);
        return nu_err_set(d->eb, NU_ERR_CORRUPT, "corrupt JSON value: line %zu is not an object",
                          d->line);
    }
    *out = j;
    return NU_OK;
}

/* Infer a schema from every line. */
static nu_err_t nu_cjson_infer_schema(struct nu_cjson_dec *d, const char *p, size_t len,
                                      struct nu_schema **out)
{
    nu_err_t err = NU_OK;
    struct nu_schema *s = nu_schema_new(0);
    size_t *present = NULL, cap = 0, rows = 0;
    const char *cur = p, *end = p + len, *line;
    size_t n;
    json_t *j = NULL;
    d->line = 0;
    while (nu_cjson_next_line(&cur, end, &d->line, &line, &n)) {
        if ((err = nu_cjson_parse_line(d, line, n, &j)) != NU_OK)
            goto out;
        if (++rows > NU_CODEC_MAX_ROWS) {
            err = nu_err_set(d->eb, NU_ERR_TOO_LARGE, "value has more than %u rows",
                             NU_CODEC_MAX_ROWS);
            goto out;
        }
        const char *k;
        json_t *jv;
        size_t ki = 0;
        json_object_foreach(j, k, jv)
        {
            size_t c = ki < s->ncols && strcmp(s->cols[ki].name, k) == 0 ? ki : s->ncols;
            for (size_t i = 0; c == s->ncols && i < s->ncols; i++)
                if (strcmp(s->cols[i].name, k) == 0)
                    c = i;
            ki++;
            if (c == s->ncols) {
                if (s->ncols >= NU_MAX_COLUMNS || strlen(k) > NU_MAX_NAME_LEN || !*k) {
                    err = nu_err_set(d->eb, NU_ERR_SCHEMA,
                                     "line %zu: key \"%.64s\" is empty, too long or over the "
                                     "limit of %d columns",
                                     d->line, k, NU_MAX_COLUMNS);
                    goto out;
                }
                if (s->ncols == cap) {
                    cap = cap ? cap * 2 : 8;
                    s->cols = nu_xrealloc(s->cols, cap * sizeof(*s->cols));
                    present = nu_xrealloc(present, cap * sizeof(*present));
                }
                memset(&s->cols[c], 0, sizeof(s->cols[c]));
                s->cols[c].name = nu_xstrdup(k);
                present[c] = 0;
                s->ncols++;
            }
            present[c]++;
            d->col = s->cols[c].name;
            if ((err = nu_cjson_infer(d, &s->cols[c], jv)) != NU_OK)
                goto out;
        }
        json_decref(j);
        j = NULL;
    }
    for (size_t c = 0; c < s->ncols; c++) {
        if (present[c] < rows)
            s->cols[c].nullable = true;
        nu_cjson_fix_nulls(&s->cols[c]);
    }
    *out = s;
    s = NULL;
out:
    json_decref(j);
    free(present);
    nu_schema_unref(s);
    return err;
}

nu_err_t nu_cjson_decode(nu_codec_cache_t *c, const char *p, size_t len, const char *hint,
                         size_t hint_len, struct nu_batch **out, struct nu_errbuf *eb)
{
    nu_err_t err = NU_OK;
    struct nu_cjson_dec d = {.eb = eb};
    struct nu_cschema *cs = NULL;
    struct nu_schema *s = NULL;
    bool owned = false;
    json_t *j = NULL;
    const char *cur = p, *end = p + len, *line;
    size_t n;
    if (hint) {
        if ((err = nu_codec_cschema_text(c, NU_CS_JSON_HINT, hint, hint_len, &cs, &owned, eb)) !=
            NU_OK)
            goto out;
        s = nu_schema_ref(cs->schema);
    } else if ((err = nu_cjson_infer_schema(&d, p, len, &s)) != NU_OK) {
        goto out;
    }
    d.b = nu_batch_new(s, 16);
    d.line = 0;
    while (nu_cjson_next_line(&cur, end, &d.line, &line, &n)) {
        if ((err = nu_cjson_parse_line(&d, line, n, &j)) != NU_OK)
            goto out;
        if (d.b->nrows >= NU_CODEC_MAX_ROWS) {
            err =
                nu_err_set(eb, NU_ERR_TOO_LARGE, "value has more than %u rows", NU_CODEC_MAX_ROWS);
            goto out;
        }
        struct nu_value *row = nu_batch_add_row(d.b);
        size_t matched = 0;
        for (size_t k = 0; k < s->ncols; k++) {
            json_t *jv = json_object_get(j, s->cols[k].name);
            d.col = s->cols[k].name;
            matched += jv != NULL;
            if ((err = nu_cjson_conv(&d, &s->cols[k], jv ? jv : json_null(), &row[k])) != NU_OK)
                goto out;
        }
        if (matched != json_object_size(j)) {
            const char *k;
            json_t *jv;
            json_object_foreach(j, k, jv)
            {
                if (nu_schema_find(s, k) < 0)
                    break;
            }
            err = nu_err_set(eb, NU_ERR_SCHEMA, "line %zu: key \"%.64s\" is not in the schema",
                             d.line, k ? k : "");
            goto out;
        }
        json_decref(j);
        j = NULL;
    }
    *out = d.b;
    d.b = NULL;
out:
    json_decref(j);
    nu_batch_destroy(d.b);
    nu_schema_unref(s);
    if (owned)
        nu_cschema_free(cs);
    return err;
}
