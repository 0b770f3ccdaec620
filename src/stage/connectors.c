/* connectors.c — registration of the connectors and the config helpers they share. */
#include "stage/connectors_int.h"

#include "common/log.h"
#include "operators/registry.h"
#include "stage/media.h"

#include <pthread.h>
#include <string.h>

static pthread_once_t nu_connectors_once = PTHREAD_ONCE_INIT;

static void nu_connectors_add(void)
{
    const struct nu_operator *ops[] = {&nu_op_kafka_source, &nu_op_kafka_sink,
                                       &nu_op_postgres_sink};
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        struct nu_errbuf eb;
        nu_errbuf_clear(&eb);
        if (nu_registry_add(ops[i], &eb) != NU_OK)
            nu_log(NU_LOG_ERROR, "connectors", "could not register operator \"%s\": %s",
                   ops[i]->name, nu_err_msg(&eb));
    }
    nu_media_register();
}

void nu_connectors_register(void)
{
    pthread_once(&nu_connectors_once, nu_connectors_add);
}

bool nu_conn_get_string(const json_t *obj, const char *key, bool required, struct nu_json_path *jp,
                        struct nu_problems *p, const char **out)
{
    const json_t *v = json_object_get(obj, key);
    size_t mark;
    bool ok = true;

    *out = NULL;
    if (!v) {
        if (required)
            nu_problems_add(p, jp->buf, "missing field \"%s\"", key);
        return !required;
    }
    if (json_is_string(v) && json_string_length(v) > 0) {
        *out = json_string_value(v);
    } else {
        mark = nu_json_path_push_key(jp, key);
        nu_problems_add(p, jp->buf, "expected a non-empty string, got %s",
                        json_is_string(v) ? "an empty string" : nu_json_type_name(v));
        nu_json_path_pop(jp, mark);
        ok = false;
    }
    return ok;
}

bool nu_conn_get_enum(const json_t *obj, const char *key, const char *const *allowed, size_t n,
                      struct nu_json_path *jp, struct nu_problems *p, int *out)
{
    const char *s = NULL;
    size_t mark;

    if (!nu_conn_get_string(obj, key, false, jp, p, &s))
        return false;
    if (!s)
        return true;
    for (size_t k = 0; k < n; k++) {
        if (strcmp(s, allowed[k]) == 0) {
            *out = (int)k;
            return true;
        }
    }
    mark = nu_json_path_push_key(jp, key);
    {
        char expect[256] = "";
        for (size_t k = 0; k < n; k++) {
            size_t l = strlen(expect);
            snprintf(expect + l, sizeof(expect) - l, "%s\"%s\"", k ? ", " : "", allowed[k]);
        }
        nu_problems_add(p, jp->buf, "unknown %s \"%s\" (expected one of %s)", key, s, expect);
    }
    nu_json_path_pop(jp, mark);
    return false;
}

bool nu_conn_get_bool(const json_t *obj, const char *key, struct nu_json_path *jp,
                      struct nu_problems *p, bool *out)
{
    const json_t *v = json_object_get(obj, key);
    size_t mark;

    if (!v)
        return true;
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return true;
    }
    mark = nu_json_path_push_key(jp, key);
    nu_problems_add(p, jp->buf, "expected a boolean, got %s", nu_json_type_name(v));
    nu_json_path_pop(jp, mark);
    return false;
}

bool nu_conn_check_string_map(const json_t *obj, const char *key, struct nu_json_path *jp,
                              struct nu_problems *p)
{
    const json_t *v = json_object_get(obj, key), *item;
    const char *k;
    size_t mark;
    bool ok = true;

    if (!v)
        return true;
    mark = nu_json_path_push_key(jp, key);
    if (!json_is_object(v)) {
        nu_problems_add(p, jp->buf, "expected an object, got %s", nu_json_type_name(v));
        ok = false;
    } else {
        json_object_foreach((json_t *)v, k, item)
        {
            if (!json_is_string(item)) {
                size_t m2 = nu_json_path_push_key(jp, k);
                nu_problems_add(p, jp->buf, "expected a string, got %s", nu_json_type_name(item));
                nu_json_path_pop(jp, m2);
                ok = false;
            }
        }
    }
    nu_json_path_pop(jp, mark);
    return ok;
}

size_t nu_kafka_ranges(const struct nu_kafka_range *parts, size_t n, int64_t split,
                       struct nu_kafka_range *out, size_t cap)
{
    size_t k = 0;
    if (split < 1)
        split = 1;
    for (size_t i = 0; i < n; i++) {
        if (parts[i].end < 0) {
            if (k < cap)
                out[k] = (struct nu_kafka_range){parts[i].partition, parts[i].start, -1};
            k++;
            continue;
        }
        for (int64_t s = parts[i].start; s < parts[i].end; s += split) {
            int64_t e = parts[i].end - s > split ? s + split : parts[i].end;
            if (k < cap)
                out[k] = (struct nu_kafka_range){parts[i].partition, s, e};
            k++;
        }
    }
    return k;
}

bool nu_conn_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        unsigned char c = *p;
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            p++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 1, cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2, cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3, cp = c & 0x07;
        } else {
            return false;
        }
        if ((size_t)(end - p) <= n)
            return false;
        for (size_t i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        p += n + 1;
    }
    return true;
}
