/* codec_avro_schema.c — nu_schema <-> Avro schema JSON, and the Avro decoding plan. */
#include "common/codec_int.h"

#include "common/mem.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define NU_AVRO_MAX_SYMBOLS 65536
#define NU_AVRO_NAME_PROP   "nurion.name"

/* --- writing --- */

static void nu_avro_put_type(struct nu_buf *o, const struct nu_field *f)
{
    static const char *const prim[] = {
        [NU_T_NULL] = "\"null\"",     [NU_T_BOOL] = "\"boolean\"",  [NU_T_INT64] = "\"long\"",
        [NU_T_DOUBLE] = "\"double\"", [NU_T_STRING] = "\"string\"", [NU_T_BYTES] = "\"bytes\"",
    };
    bool un = f->nullable && f->type != NU_T_NULL;
    if (un)
        nu_buf_append(o, "[\"null\",", 8);
    if (f->type == NU_T_ARRAY) {
        nu_buf_append(o, "{\"type\":\"array\",\"items\":", 24);
        nu_avro_put_type(o, f->item);
        nu_buf_putc(o, '}');
    } else if (f->type == NU_T_MAP) {
        nu_buf_append(o, "{\"type\":\"map\",\"values\":", 23);
        nu_avro_put_type(o, f->item);
        nu_buf_putc(o, '}');
    } else {
        nu_buf_append(o, prim[f->type], strlen(prim[f->type]));
    }
    if (un)
        nu_buf_putc(o, ']');
}

/* The Avro name of column i: the name itself when valid, otherwise a sanitized one that collides
 * with no valid column name and no earlier sanitized one. Returned malloc'ed. */
static char *nu_avro_field_name(const struct nu_schema *s, size_t i, char **assigned)
{
    const char *name = s->cols[i].name;
    if (nu_avro_name_valid(name))
        return nu_xstrdup(name);
    size_t n = strlen(name);
    char *base = nu_xmalloc(n + 2), *w = base;
    if (name[0] >= '0' && name[0] <= '9')
        *w++ = '_';
    for (size_t k = 0; k < n; k++) {
        char c = name[k];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        *w++ = ok ? c : '_';
    }
    *w = '\0';
    char *cand = nu_xstrdup(base);
    for (unsigned suffix = 2;; suffix++) {
        bool clash = false;
        for (size_t j = 0; j < s->ncols && !clash; j++)
            clash = (j < i && assigned[j] && strcmp(assigned[j], cand) == 0) ||
                    (strcmp(s->cols[j].name, cand) == 0 && nu_avro_name_valid(s->cols[j].name));
        if (!clash)
            break;
        free(cand);
        cand = nu_xasprintf("%s_%u", base, suffix);
    }
    free(base);
    return cand;
}

nu_err_t nu_schema_to_avro_json(const struct nu_schema *s, struct nu_buf *out, struct nu_errbuf *eb)
{
    nu_err_t err = nu_codec_check_schema(s, eb);
    char **assigned = NULL;
    if (err != NU_OK)
        goto out;
    assigned = nu_xcalloc(s->ncols + 1, sizeof(*assigned));
    nu_buf_reset(out);
    static const char head[] = "{\"type\":\"record\",\"name\":\"Row\",\"namespace\":\"nurion\","
                               "\"fields\":[";
    nu_buf_append(out, head, sizeof(head) - 1);
    for (size_t i = 0; i < s->ncols; i++) {
        const struct nu_field *f = &s->cols[i];
        assigned[i] = nu_avro_field_name(s, i, assigned);
        nu_buf_append(out, i ? ",{\"name\":\"" : "{\"name\":\"", i ? 10 : 9);
        nu_buf_append(out, assigned[i], strlen(assigned[i]));
        nu_buf_append(out, "\",\"type\":", 9);
        nu_avro_put_type(out, f);
        if (strcmp(assigned[i], f->name) != 0) {
            nu_buf_append(out, ",\"" NU_AVRO_NAME_PROP "\":", 15);
            if (!nu_cjson_put_string(out, f->name, strlen(f->name))) {
                err = nu_err_set(eb, NU_ERR_SCHEMA, "column %zu: name is not valid UTF-8", i);
                goto out;
            }
        }
        nu_buf_putc(out, '}');
    }
    nu_buf_append(out, "]}", 3);
    out->len--;
out:
    for (size_t i = 0; assigned && i < s->ncols; i++)
        free(assigned[i]);
    free(assigned);
    return err;
}

/* --- reading --- */

static void nu_avro_node_free(struct nu_avro_node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->nsyms; i++)
        free(n->syms[i]);
    free(n->syms);
    nu_avro_node_free(n->item);
    free(n->item);
}

void nu_avro_nodes_free(struct nu_avro_node *nodes, size_t n)
{
    for (size_t i = 0; nodes && i < n; i++)
        nu_avro_node_free(&nodes[i]);
    free(nodes);
}

static const struct {
    const char *name;
    enum nu_avro_kind kind;
    nu_type_t type;
    size_t width;
} nu_avro_prims[] = {
    {"null", NU_AV_NULL, NU_T_NULL, 0},       {"boolean", NU_AV_BOOLEAN, NU_T_BOOL, 1},
    {"int", NU_AV_INT, NU_T_INT64, 1},        {"long", NU_AV_LONG, NU_T_INT64, 1},
    {"float", NU_AV_FLOAT, NU_T_DOUBLE, 4},   {"double", NU_AV_DOUBLE, NU_T_DOUBLE, 8},
    {"string", NU_AV_STRING, NU_T_STRING, 1}, {"bytes", NU_AV_BYTES, NU_T_BYTES, 1},
};

static nu_err_t nu_avro_parse_type(json_t *t, struct nu_avro_node *n, struct nu_field *f, int depth,
                                   bool in_union, struct nu_errbuf *eb);

/* "null" or {"type": "null"} */
static bool nu_avro_is_null(json_t *t)
{
    if (json_is_object(t))
        t = json_object_get(t, "type");
    return json_is_string(t) && strcmp(json_string_value(t), "null") == 0;
}

static nu_err_t nu_avro_parse_union(json_t *t, struct nu_avro_node *n, struct nu_field *f,
                                    int depth, struct nu_errbuf *eb)
{
    json_t *a = json_array_get(t, 0), *b = json_array_get(t, 1);
    bool an = nu_avro_is_null(a), bn = nu_avro_is_null(b);
    if (json_array_size(t) != 2 || an == bn)
        return nu_err_set(eb, NU_ERR_SCHEMA,
                          "unsupported union: only [\"null\", T] and [T, \"null\"] are supported");
    nu_err_t err = nu_avro_parse_type(an ? b : a, n, f, depth, true, eb);
    n->null_index = an ? 0 : 1;
    n->min_width = 1;
    f->nullable = true;
    return err;
}

static nu_err_t nu_avro_parse_type(json_t *t, struct nu_avro_node *n, struct nu_field *f, int depth,
                                   bool in_union, struct nu_errbuf *eb)
{
    n->null_index = -1;
    if (depth > NU_MAX_NESTING)
        return nu_err_set(eb, NU_ERR_SCHEMA, "type nests deeper than %d levels", NU_MAX_NESTING);
    if (json_is_array(t)) {
        if (in_union)
            return nu_err_set(eb, NU_ERR_SCHEMA, "union inside a union");
        return nu_avro_parse_union(t, n, f, depth, eb);
    }
    json_t *obj = json_is_object(t) ? t : NULL;
    if (obj) {
        t = json_object_get(obj, "type");
        if (json_is_array(t) || json_is_object(t))
            return nu_avro_parse_type(t, n, f, depth + 1, in_union, eb);
    }
    if (!json_is_string(t))
        return nu_err_set(eb, NU_ERR_SCHEMA, "type must be a string, object or array");
    const char *name = json_string_value(t);
    for (size_t i = 0; i < sizeof(nu_avro_prims) / sizeof(nu_avro_prims[0]); i++)
        if (strcmp(name, nu_avro_prims[i].name) == 0) {
            n->kind = nu_avro_prims[i].kind;
            n->min_width = nu_avro_prims[i].width;
            f->type = nu_avro_prims[i].type;
            return NU_OK;
        }
    if (obj && (strcmp(name, "array") == 0 || strcmp(name, "map") == 0)) {
        bool arr = name[0] == 'a';
        json_t *it = json_object_get(obj, arr ? "items" : "values");
        if (!it)
            return nu_err_set(eb, NU_ERR_SCHEMA, "%s without \"%s\"", name,
                              arr ? "items" : "values");
        n->kind = arr ? NU_AV_ARRAY : NU_AV_MAP;
        f->type = arr ? NU_T_ARRAY : NU_T_MAP;
        n->min_width = 1;
        n->item = nu_xcalloc(1, sizeof(*n->item));
        f->item = nu_xcalloc(1, sizeof(*f->item));
        return nu_avro_parse_type(it, n->item, f->item, depth + 1, false, eb);
    }
    if (obj && strcmp(name, "enum") == 0) {
        json_t *syms = json_object_get(obj, "symbols");
        if (!json_is_array(syms) || json_array_size(syms) == 0 ||
            json_array_size(syms) > NU_AVRO_MAX_SYMBOLS)
            return nu_err_set(eb, NU_ERR_SCHEMA, "enum needs 1 to %d symbols", NU_AVRO_MAX_SYMBOLS);
        n->kind = NU_AV_ENUM;
        f->type = NU_T_STRING;
        n->min_width = 1;
        n->syms = nu_xcalloc(json_array_size(syms), sizeof(*n->syms));
        for (size_t i = 0; i < json_array_size(syms); i++) {
            json_t *sy = json_array_get(syms, i);
            if (!json_is_string(sy))
                return nu_err_set(eb, NU_ERR_SCHEMA, "enum symbol %zu is not a string", i);
            n->syms[n->nsyms++] = nu_xstrdup(json_string_value(sy));
        }
        return NU_OK;
    }
    if (obj && strcmp(name, "fixed") == 0) {
        json_t *sz = json_object_get(obj, "size");
        if (!json_is_integer(sz) || json_integer_value(sz) < 0 ||
            json_integer_value(sz) > (json_int_t)NU_CODEC_MAX_VALUE_BYTES)
            return nu_err_set(eb, NU_ERR_SCHEMA, "fixed needs a size from 0 to %u",
                              NU_CODEC_MAX_VALUE_BYTES);
        n->kind = NU_AV_FIXED;
        f->type = NU_T_BYTES;
        n->fixed_size = n->min_width = (size_t)json_integer_value(sz);
        return NU_OK;
    }
    return nu_err_set(eb, NU_ERR_SCHEMA, "unsupported Avro type \"%s\"", name);
}

nu_err_t nu_avro_compile(const char *json, size_t len, struct nu_cschema *cs, struct nu_errbuf *eb)
{
    nu_err_t err = NU_OK;
    json_error_t je;
    json_t *root = json_loadb(json, len, 0, &je);
    if (!root) {
        err = nu_err_set(eb, NU_ERR_SCHEMA, "invalid Avro schema JSON at character %d: %s",
                         je.position, je.text);
        goto out;
    }
    json_t *type = json_object_get(root, "type"), *fields = json_object_get(root, "fields");
    if (!json_is_string(type) || strcmp(json_string_value(type), "record") != 0 ||
        !json_is_array(fields)) {
        err = nu_err_set(eb, NU_ERR_SCHEMA, "Avro schema must be a record with fields");
        goto out;
    }
    size_t ncols = json_array_size(fields);
    if (ncols > NU_MAX_COLUMNS) {
        err = nu_err_set(eb, NU_ERR_SCHEMA, "Avro schema has %zu fields, more than the limit of %d",
                         ncols, NU_MAX_COLUMNS);
        goto out;
    }
    cs->schema = nu_schema_new(ncols);
    cs->nodes = nu_xcalloc(ncols + 1, sizeof(*cs->nodes));
    for (size_t i = 0; i < ncols; i++) {
        json_t *fd = json_array_get(fields, i);
        json_t *nm = json_object_get(fd, NU_AVRO_NAME_PROP);
        if (!json_is_string(nm))
            nm = json_object_get(fd, "name");
        if (!json_is_string(nm) || json_string_length(nm) == 0 ||
            json_string_length(nm) > NU_MAX_NAME_LEN ||
            strlen(json_string_value(nm)) != json_string_length(nm)) {
            err = nu_err_set(eb, NU_ERR_SCHEMA, "Avro field %zu has no valid name", i);
            goto out;
        }
        cs->schema->cols[i].name = nu_xstrdup(json_string_value(nm));
        if ((err = nu_avro_parse_type(json_object_get(fd, "type"), &cs->nodes[i],
                                      &cs->schema->cols[i], 1, false, eb)) != NU_OK) {
            nu_err_prefix(eb, "Avro field \"%s\": ", cs->schema->cols[i].name);
            goto out;
        }
        cs->min_row_width += cs->nodes[i].min_width;
        if (cs->nodes[i].min_width == 0)
            cs->zero_width_cols++;
    }
    err = nu_codec_check_schema(cs->schema, eb);
out:
    json_decref(root);
    return err;
}

nu_err_t nu_schema_from_avro_json(const char *json, size_t len, struct nu_schema **out,
                                  struct nu_errbuf *eb)
{
    struct nu_cschema *cs = NULL;
    bool owned = false;
    *out = NULL;
    nu_err_t err = nu_codec_cschema_text(NULL, NU_CS_AVRO, json, len, &cs, &owned, eb);
    if (err == NU_OK)
        *out = nu_schema_ref(cs->schema);
    if (owned)
        nu_cschema_free(cs);
    return err;
}
