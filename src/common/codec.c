/* codec.c — shared parts of the split codec: formats, schema checks, the compact schema JSON,
 * the compiled-schema cache and the encode/decode entry points. */
#include "common/codec_int.h"

#include "common/mem.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define NU_CODEC_CACHE_SLOTS 16

struct nu_codec_cache {
    struct nu_cschema *slot[NU_CODEC_CACHE_SLOTS];
    size_t next; /* slot replaced by the next insertion */
};

const char *nu_format_name(nu_format_t f)
{
    return f == NU_FORMAT_JSON ? "json" : "avro";
}

nu_err_t nu_format_parse(const char *s, nu_format_t *out, struct nu_errbuf *eb)
{
    if (s && strcmp(s, "avro") == 0) {
        *out = NU_FORMAT_AVRO;
        return NU_OK;
    }
    if (s && (strcmp(s, "json") == 0 || strcmp(s, "jsonl") == 0)) {
        *out = NU_FORMAT_JSON;
        return NU_OK;
    }
    return nu_err_set(eb, NU_ERR_INVALID, "invalid record format \"%s\": expected avro or json",
                      s ? s : "(null)");
}

uint64_t nu_codec_hash64(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *s = p;
    uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15u);
    /* four independent lanes over 32-byte strides: the multiplies overlap in the pipeline */
    if (n >= 32) {
        uint64_t l[4] = {h, h ^ 0x9e3779b97f4a7c15u, h ^ 0xbf58476d1ce4e5b9u,
                         h ^ 0x94d049bb133111ebu};
        while (n >= 32) {
            for (int k = 0; k < 4; k++) {
                uint64_t w;
                memcpy(&w, s + 8 * k, 8);
                l[k] = (l[k] ^ w) * 0xff51afd7ed558ccdu;
                l[k] ^= l[k] >> 31;
            }
            s += 32;
            n -= 32;
        }
        h = l[0] ^ (l[1] * 0xc4ceb9fe1a85ec53u) ^ (l[2] >> 17) ^ (l[3] * 0x9e3779b97f4a7c15u);
    }
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdu;
        h ^= h >> 31;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    for (size_t i = 0; i < n; i++)
        w |= (uint64_t)s[i] << (8 * i);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53u;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdu;
    h ^= h >> 29;
    return h;
}

bool nu_avro_name_valid(const char *name)
{
    if (!name || !*name)
        return false;
    for (const char *c = name; *c; c++) {
        bool alpha = (*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || *c == '_';
        bool digit = *c >= '0' && *c <= '9';
        if (!alpha && !(digit && c != name))
            return false;
    }
    return true;
}

/* --- schema checks --- */

static int nu_codec_cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static nu_err_t nu_codec_check_field(const struct nu_field *f, const char *col, int depth,
                                     struct nu_errbuf *eb)
{
    if (depth > NU_MAX_NESTING)
        return nu_err_set(eb, NU_ERR_SCHEMA, "column \"%s\" nests deeper than %d levels", col,
                          NU_MAX_NESTING);
    if ((int)f->type < NU_T_NULL || f->type > NU_T_MAP)
        return nu_err_set(eb, NU_ERR_SCHEMA, "column \"%s\" has an unknown type %d", col,
                          (int)f->type);
    if (f->type == NU_T_ARRAY || f->type == NU_T_MAP) {
        if (!f->item)
            return nu_err_set(eb, NU_ERR_SCHEMA, "column \"%s\": %s without an item type", col,
                              nu_type_name(f->type));
        return nu_codec_check_field(f->item, col, depth + 1, eb);
    }
    return NU_OK;
}

nu_err_t nu_codec_check_schema(const struct nu_schema *s, struct nu_errbuf *eb)
{
    nu_err_t err = NU_OK;
    const char **names = NULL;
    if (s->ncols > NU_MAX_COLUMNS) {
        err = nu_err_set(eb, NU_ERR_SCHEMA, "schema has %zu columns, more than the limit of %d",
                         s->ncols, NU_MAX_COLUMNS);
        goto out;
    }
    names = nu_xcalloc(s->ncols + 1, sizeof(*names));
    for (size_t i = 0; i < s->ncols; i++) {
        const struct nu_field *f = &s->cols[i];
        if (!f->name || !*f->name) {
            err = nu_err_set(eb, NU_ERR_SCHEMA, "column %zu has no name", i);
            goto out;
        }
        if (strlen(f->name) > NU_MAX_NAME_LEN) {
            err = nu_err_set(eb, NU_ERR_SCHEMA, "column %zu: name longer than %d bytes", i,
                             NU_MAX_NAME_LEN);
            goto out;
        }
        if ((err = nu_codec_check_field(f, f->name, 1, eb)) != NU_OK)
            goto out;
        names[i] = f->name;
    }
    qsort(names, s->ncols, sizeof(*names), nu_codec_cmp_names);
    for (size_t i = 1; i < s->ncols; i++)
        if (strcmp(names[i - 1], names[i]) == 0) {
            err = nu_err_set(eb, NU_ERR_SCHEMA, "duplicate column name \"%s\"", names[i]);
            goto out;
        }
out:
    free(names);
    return err;
}

/* --- compact schema JSON --- */

static void nu_codec_put_type(struct nu_buf *o, const struct nu_field *f)
{
    const char *n = nu_type_name(f->type);
    if (f->type == NU_T_ARRAY || f->type == NU_T_MAP) {
        nu_buf_append(o, f->type == NU_T_ARRAY ? "array<" : "map<", f->type == NU_T_ARRAY ? 6 : 4);
        nu_codec_put_type(o, f->item);
        nu_buf_putc(o, '>');
    } else {
        nu_buf_append(o, n, strlen(n));
    }
    if (f->nullable)
        nu_buf_putc(o, '?');
}

nu_err_t nu_schema_to_json(const struct nu_schema *s, struct nu_buf *out, struct nu_errbuf *eb)
{
    nu_err_t err = nu_codec_check_schema(s, eb);
    if (err != NU_OK)
        return err;
    nu_buf_reset(out);
    nu_buf_putc(out, '[');
    for (size_t i = 0; i < s->ncols; i++) {
        if (i)
            nu_buf_putc(out, ',');
        nu_buf_putc(out, '[');
        if (!nu_cjson_put_string(out, s->cols[i].name, strlen(s->cols[i].name)))
            return nu_err_set(eb, NU_ERR_SCHEMA, "column %zu: name is not valid UTF-8", i);
        nu_buf_append(out, ",\"", 2);
        nu_codec_put_type(out, &s->cols[i]);
        nu_buf_append(out, "\"]", 2);
    }
    nu_buf_putc(out, ']');
    nu_buf_putc(out, '\0');
    out->len--;
    return NU_OK;
}

/* Parse a compact type at *pp into f (item types allocated). */
static nu_err_t nu_codec_parse_type(const char **pp, struct nu_field *f, int depth,
                                    struct nu_errbuf *eb)
{
    static const struct {
        const char *name;
        nu_type_t type;
    } prims[] = {{"null", NU_T_NULL},     {"boolean", NU_T_BOOL},  {"int64", NU_T_INT64},
                 {"double", NU_T_DOUBLE}, {"string", NU_T_STRING}, {"bytes", NU_T_BYTES},
                 {"array<", NU_T_ARRAY},  {"map<", NU_T_MAP}};
    const char *p = *pp;
    if (depth > NU_MAX_NESTING)
        return nu_err_set(eb, NU_ERR_SCHEMA, "type nests deeper than %d levels", NU_MAX_NESTING);
    size_t i;
    for (i = 0; i < sizeof(prims) / sizeof(prims[0]); i++)
        if (strncmp(p, prims[i].name, strlen(prims[i].name)) == 0)
            break;
    if (i == sizeof(prims) / sizeof(prims[0]))
        return nu_err_set(eb, NU_ERR_SCHEMA, "unknown type at \"%.32s\"", p);
    p += strlen(prims[i].name);
    f->type = prims[i].type;
    if (f->type == NU_T_ARRAY || f->type == NU_T_MAP) {
        f->item = nu_xcalloc(1, sizeof(*f->item));
        nu_err_t err = nu_codec_parse_type(&p, f->item, depth + 1, eb);
        if (err != NU_OK)
            return err;
        if (*p != '>')
            return nu_err_set(eb, NU_ERR_SCHEMA, "expected \">\" at \"%.32s\"", p);
        p++;
    }
    f->nullable = *p == '?';
    if (f->nullable)
        p++;
    *pp = p;
    return NU_OK;
}

nu_err_t nu_schema_from_json(const char *json, size_t len, struct nu_schema **out,
                             struct nu_errbuf *eb)
{
    nu_err_t err = NU_OK;
    json_t *root = NULL;
    struct nu_schema *s = NULL;
    json_error_t je;
    *out = NULL;
    if (len > NU_CODEC_MAX_SCHEMA_BYTES) {
        err = nu_err_set(eb, NU_ERR_TOO_LARGE, "schema of %zu bytes is over the limit of %u", len,
                         NU_CODEC_MAX_SCHEMA_BYTES);
        goto out;
    }
    root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        err = nu_err_set(eb, NU_ERR_SCHEMA, "invalid schema JSON at character %d: %s", je.position,
                         je.text);
        goto out;
    }
    if (!json_is_array(root) || json_array_size(root) > NU_MAX_COLUMNS) {
        err = nu_err_set(eb, NU_ERR_SCHEMA, "schema must be an array of at most %d columns",
                         NU_MAX_COLUMNS);
        goto out;
    }
    s = nu_schema_new(json_array_size(root));
    for (size_t i = 0; i < s->ncols; i++) {
        json_t *c = json_array_get(root, i);
        json_t *n = json_array_get(c, 0), *t = json_array_get(c, 1);
        if (!json_is_array(c) || json_array_size(c) != 2 || !json_is_string(n) ||
            !json_is_string(t) || strlen(json_string_value(n)) != json_string_length(n)) {
            err = nu_err_set(eb, NU_ERR_SCHEMA, "schema column %zu must be [name, type]", i);
            goto out;
        }
        s->cols[i].name = nu_xstrdup(json_string_value(n));
        const char *p = json_string_value(t);
        if ((err = nu_codec_parse_type(&p, &s->cols[i], 1, eb)) != NU_OK ||
            (*p && (err = nu_err_set(eb, NU_ERR_SCHEMA, "trailing characters \"%.32s\"", p)))) {
            nu_err_prefix(eb, "schema column \"%s\": ", s->cols[i].name);
            goto out;
        }
    }
    if ((err = nu_codec_check_schema(s, eb)) != NU_OK)
        goto out;
    *out = s;
    s = NULL;
out:
    json_decref(root);
    nu_schema_unref(s);
    return err;
}

/* --- compiled schemas and the cache --- */

void nu_cschema_free(struct nu_cschema *cs)
{
    if (!cs)
        return;
    if (cs->nodes)
        nu_avro_nodes_free(cs->nodes, cs->schema ? cs->schema->ncols : 0);
    nu_schema_unref(cs->schema);
    nu_buf_free(&cs->avro_json);
    nu_buf_free(&cs->json_keys);
    free(cs->json_key_off);
    free(cs->key);
    free(cs);
}

nu_codec_cache_t *nu_codec_cache_new(void)
{
    return nu_xcalloc(1, sizeof(struct nu_codec_cache));
}

void nu_codec_cache_destroy(nu_codec_cache_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < NU_CODEC_CACHE_SLOTS; i++)
        nu_cschema_free(c->slot[i]);
    free(c);
}

static void nu_codec_cache_put(nu_codec_cache_t *c, struct nu_cschema *cs)
{
    nu_cschema_free(c->slot[c->next]);
    c->slot[c->next] = cs;
    c->next = (c->next + 1) % NU_CODEC_CACHE_SLOTS;
}

nu_err_t nu_codec_cschema_encode(nu_codec_cache_t *c, struct nu_schema *s, struct nu_cschema **out,
                                 bool *owned, struct nu_errbuf *eb)
{
    nu_err_t err = NU_OK;
    struct nu_cschema *cs = NULL;
    *out = NULL;
    *owned = false;
    for (size_t i = 0; c && i < NU_CODEC_CACHE_SLOTS; i++)
        if (c->slot[i] && c->slot[i]->kind == NU_CS_ENCODE &&
            nu_schema_equal(c->slot[i]->schema, s)) {
            *out = c->slot[i];
            return NU_OK;
        }
    cs = nu_xcalloc(1, sizeof(*cs));
    cs->kind = NU_CS_ENCODE;
    cs->schema = nu_schema_ref(s);
    if ((err = nu_schema_to_avro_json(s, &cs->avro_json, eb)) != NU_OK)
        goto out;
    cs->json_key_off = nu_xcalloc(s->ncols + 1, sizeof(size_t));
    for (size_t i = 0; i < s->ncols; i++) {
        cs->json_key_off[i] = cs->json_keys.len;
        if (!nu_cjson_put_string(&cs->json_keys, s->cols[i].name, strlen(s->cols[i].name))) {
            err = nu_err_set(eb, NU_ERR_SCHEMA, "column %zu: name is not valid UTF-8", i);
            goto out;
        }
        nu_buf_putc(&cs->json_keys, ':');
    }
    cs->json_key_off[s->ncols] = cs->json_keys.len;
    if (c) {
        nu_codec_cache_put(c, cs);
    } else {
        *owned = true;
    }
    *out = cs;
    cs = NULL;
out:
    nu_cschema_free(cs);
    return err;
}

nu_err_t nu_codec_cschema_text(nu_codec_cache_t *c, enum nu_cschema_kind kind, const char *text,
                               size_t len, struct nu_cschema **out, bool *owned,
                               struct nu_errbuf *eb)
{
    nu_err_t err = NU_OK;
    struct nu_cschema *cs = NULL;
    uint64_t h = nu_codec_hash64(text, len, (uint64_t)kind);
    *out = NULL;
    *owned = false;
    for (size_t i = 0; c && i < NU_CODEC_CACHE_SLOTS; i++) {
        struct nu_cschema *e = c->slot[i];
        if (e && e->kind == kind && e->hash == h && e->keylen == len &&
            memcmp(e->key, text, len) == 0) {
            *out = e;
            return NU_OK;
        }
    }
    if (len > NU_CODEC_MAX_SCHEMA_BYTES) {
        err = nu_err_set(eb, NU_ERR_TOO_LARGE, "schema of %zu bytes is over the limit of %u", len,
                         NU_CODEC_MAX_SCHEMA_BYTES);
        goto out;
    }
    cs = nu_xcalloc(1, sizeof(*cs));
    cs->kind = kind;
    cs->hash = h;
    cs->key = nu_xmalloc(len + 1);
    memcpy(cs->key, text, len);
    cs->key[len] = '\0';
    cs->keylen = len;
    if (kind == NU_CS_AVRO)
        err = nu_avro_compile(text, len, cs, eb);
    else
        err = nu_schema_from_json(text, len, &cs->schema, eb);
    if (err != NU_OK)
        goto out;
    if (c) {
        nu_codec_cache_put(c, cs);
    } else {
        *owned = true;
    }
    *out = cs;
    cs = NULL;
out:
    nu_cschema_free(cs);
    return err;
}

/* --- entry points --- */

nu_err_t nu_codec_encode(const struct nu_codec_opts *o, const struct nu_batch *b,
                         struct nu_buf *out, struct nu_errbuf *eb)
{
    nu_err_t err;
    struct nu_cschema *cs = NULL;
    bool owned = false;
    size_t max = o->max_value_bytes ? o->max_value_bytes : NU_CODEC_MAX_VALUE_BYTES;
    nu_buf_reset(out);
    if ((err = nu_codec_cschema_encode(o->cache, b->schema, &cs, &owned, eb)) != NU_OK)
        goto out;
    if (o->format == NU_FORMAT_AVRO)
        err = nu_avro_encode(o, cs, b, out, eb);
    else if (o->format == NU_FORMAT_JSON)
        err = nu_cjson_encode(o, cs, b, out, eb);
    else
        err = nu_err_set(eb, NU_ERR_INVALID, "unknown record format %d", (int)o->format);
    if (err == NU_OK && out->len > max)
        err = nu_err_set(eb, NU_ERR_TOO_LARGE,
                         "encoded split of %zu rows is %zu bytes, over the limit of %zu", b->nrows,
                         out->len, max);
out:
    if (owned)
        nu_cschema_free(cs);
    return err;
}

nu_err_t nu_codec_decode_cached(nu_codec_cache_t *c, nu_format_t f, const void *data, size_t len,
                                const char *hint, size_t hint_len, struct nu_batch **out,
                                struct nu_errbuf *eb)
{
    *out = NULL;
    if (len > NU_CODEC_MAX_VALUE_BYTES)
        return nu_err_set(eb, NU_ERR_TOO_LARGE, "value of %zu bytes is over the limit of %u", len,
                          NU_CODEC_MAX_VALUE_BYTES);
    if (!data && len > 0)
        return nu_err_set(eb, NU_ERR_INVALID, "value is NULL");
    if (f == NU_FORMAT_AVRO)
        return nu_avro_decode(c, data, len, out, eb);
    if (f == NU_FORMAT_JSON)
        return nu_cjson_decode(c, data, len, hint_len ? hint : NULL, hint_len, out, eb);
    return nu_err_set(eb, NU_ERR_INVALID, "unknown record format %d", (int)f);
}

nu_err_t nu_codec_decode(nu_format_t f, const void *data, size_t len, const char *schema_hint,
                         struct nu_batch **out, struct nu_errbuf *eb)
{
    return nu_codec_decode_cached(NULL, f, data, len, schema_hint,
                                  schema_hint ? strlen(schema_hint) : 0, out, eb);
}
