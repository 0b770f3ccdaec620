/* json.c — path building, type names, depth, typo suggestions and typed getters over jansson. */
#include "common/json.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

void nu_json_path_init(struct nu_json_path *p)
{
    p->buf[0] = '$';
    p->buf[1] = '\0';
    p->len = 1;
}

static void nu_json_path_append(struct nu_json_path *p, const char *s)
{
    size_t room = sizeof(p->buf) - p->len;
    int n = snprintf(p->buf + p->len, room, "%s", s);
    if (n < 0)
        n = 0;
    p->len += (size_t)n < room ? (size_t)n : room - 1;
}

static bool nu_json_is_ident(const char *s)
{
    if (!*s || isdigit((unsigned char)*s))
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '$')
            return false;
    return true;
}

size_t nu_json_path_push_key(struct nu_json_path *p, const char *key)
{
    size_t mark = p->len;
    if (nu_json_is_ident(key)) {
        nu_json_path_append(p, ".");
        nu_json_path_append(p, key);
    } else {
        char tmp[NU_JSON_PATH_MAX];
        size_t j = 0;
        tmp[j++] = '[';
        tmp[j++] = '"';
        for (const char *s = key; *s && j + 4 < sizeof(tmp); s++) {
            if (*s == '"' || *s == '\\')
                tmp[j++] = '\\';
            tmp[j++] = *s;
        }
        tmp[j++] = '"';
        tmp[j++] = ']';
        tmp[j] = '\0';
        nu_json_path_append(p, tmp);
    }
    return mark;
}

size_t nu_json_path_push_index(struct nu_json_path *p, size_t index)
{
    size_t mark = p->len;
    char tmp[32];
    snprintf(tmp, sizeof(tmp), "[%zu]", index);
    nu_json_path_append(p, tmp);
    return mark;
}

void nu_json_path_pop(struct nu_json_path *p, size_t mark)
{
    if (mark < p->len) {
        p->len = mark;
        p->buf[mark] = '\0';
    }
}

const char *nu_json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
    default:
        return "null";
    }
}

size_t nu_json_depth(const json_t *v, size_t limit)
{
    if (!json_is_object(v) && !json_is_array(v))
        return 0;
    if (limit == 0)
        return 1; /* already above the limit; do not look further */
    size_t deepest = 0;
    if (json_is_object(v)) {
        const char *k;
        json_t *c;
        json_object_foreach((json_t *)v, k, c)
        {
            size_t d = nu_json_depth(c, limit - 1);
            if (d > deepest)
                deepest = d;
            if (deepest > limit - 1)
                break;
        }
    } else {
        size_t i;
        json_t *c;
        json_array_foreach(v, i, c)
        {
            size_t d = nu_json_depth(c, limit - 1);
            if (d > deepest)
                deepest = d;
            if (deepest > limit - 1)
                break;
        }
    }
    return deepest + 1;
}

/*
 * Edit distance of two short strings, ignoring case, where an insertion, a deletion, a change or
 * a swap of two neighbouring letters each cost one. Words longer than 63 never match.
 */
static size_t nu_json_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return (size_t)-1;
    unsigned char d[64][64];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = (unsigned char)i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = (unsigned char)j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
            unsigned best = d[i - 1][j - 1] + (ca != cb);
            if (d[i - 1][j] + 1u < best)
                best = d[i - 1][j] + 1u;
            if (d[i][j - 1] + 1u < best)
                best = d[i][j - 1] + 1u;
            if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == cb && d[i - 2][j - 2] + 1u < best)
                best = d[i - 2][j - 2] + 1u;
            d[i][j] = (unsigned char)best;
        }
    }
    return d[la][lb];
}

const char *nu_json_suggest(const char *word, const char *const *cands, size_t ncands)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    size_t wl = strlen(word);
    for (size_t i = 0; i < ncands; i++) {
        size_t d = nu_json_edit_distance(word, cands[i]);
        if (d < best_d) {
            best_d = d;
            best = cands[i];
        }
    }
    if (!best)
        return NULL;
    /* A likely typo: at most 2 edits, and fewer than half the letters of the word. */
    size_t allowed = wl < 4 ? 1 : 2;
    if (best_d <= allowed && best_d * 2 < wl + 1)
        return best;
    return NULL;
}

size_t nu_json_check_fields(const json_t *obj, const char *const *known, size_t nknown,
                            struct nu_json_path *p, struct nu_problems *probs)
{
    size_t bad = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v)
    {
        bool found = false;
        for (size_t i = 0; i < nknown && !found; i++)
            found = strcmp(k, known[i]) == 0;
        if (found)
            continue;
        bad++;
        size_t mark = nu_json_path_push_key(p, k);
        const char *s = nu_json_suggest(k, known, nknown);
        if (s)
            nu_problems_add(probs, p->buf, "unknown field \"%s\" (did you mean \"%s\"?)", k, s);
        else
            nu_problems_add(probs, p->buf, "unknown field \"%s\"", k);
        nu_json_path_pop(p, mark);
    }
    return bad;
}

bool nu_json_get_int(const json_t *v, long long min, long long max, const struct nu_json_path *p,
                     struct nu_problems *probs, long long *out)
{
    if (!json_is_integer(v)) {
        nu_problems_add(probs, p->buf, "expected an integer, got %s", nu_json_type_name(v));
        return false;
    }
    long long x = json_integer_value(v);
    if (x < min) {
        nu_problems_add(probs, p->buf, "must be at least %lld, got %lld", min, x);
        return false;
    }
    if (x > max) {
        nu_problems_add(probs, p->buf, "must be at most %lld, got %lld", max, x);
        return false;
    }
    *out = x;
    return true;
}
