/* config.c — layered, validated configuration from a declarative table. */
#include "common/config.h"

#include "common/mem.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NU_CONF_LINE_MAX        4096
#define NU_CONF_MAX_PASSTHROUGH 1024

struct nu_conf_val {
    char *text;   /* owned; NULL when unset */
    char *origin; /* owned */
    int64_t i;
    double d;
    bool b;
};

struct nu_conf_pair {
    char *key, *value;
};

struct nu_conf {
    const struct nu_conf_def *defs;
    size_t ndefs;
    struct nu_conf_val *vals;
    char *prefix;
    struct nu_conf_pair *pass;
    size_t npass, cappass;
};

bool nu_conf_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

/* Parse a non-negative decimal number followed by a unit from `units`; returns false on junk. */
struct nu_conf_unit {
    const char *suffix;
    double mult;
};

static bool nu_conf_parse_units(const char *s, const struct nu_conf_unit *units, size_t nunits,
                                int64_t *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !isfinite(v) || v < 0)
        return false;
    while (*end == ' ')
        end++;
    double mult = 0;
    for (size_t i = 0; i < nunits; i++) {
        if (strcasecmp(end, units[i].suffix) == 0) {
            mult = units[i].mult;
            break;
        }
    }
    if (mult == 0)
        return false;
    v *= mult;
    if (v > 9.2e18)
        return false;
    *out = (int64_t)v;
    return true;
}

bool nu_conf_parse_duration_ms(const char *s, int64_t *out)
{
    static const struct nu_conf_unit units[] = {{"", 1},      {"ms", 1},      {"s", 1000},
                                                {"m", 60000}, {"min", 60000}, {"h", 3600000}};
    return nu_conf_parse_units(s, units, sizeof(units) / sizeof(units[0]), out);
}

bool nu_conf_parse_size(const char *s, int64_t *out)
{
    static const struct nu_conf_unit units[] = {{"", 1},
                                                {"b", 1},
                                                {"kib", 1024.0},
                                                {"mib", 1048576.0},
                                                {"gib", 1073741824.0},
                                                {"kb", 1e3},
                                                {"mb", 1e6},
                                                {"gb", 1e9},
                                                {"k", 1024.0},
                                                {"m", 1048576.0},
                                                {"g", 1073741824.0}};
    return nu_conf_parse_units(s, units, sizeof(units) / sizeof(units[0]), out);
}

static const struct nu_conf_def *nu_conf_def_find(const nu_conf_t *c, const char *name, size_t *idx)
{
    for (size_t i = 0; i < c->ndefs; i++) {
        if (strcmp(c->defs[i].name, name) == 0) {
            if (idx)
                *idx = i;
            return &c->defs[i];
        }
    }
    return NULL;
}

static bool nu_conf_choice_ok(const char *choices, const char *v)
{
    size_t n = strlen(v);
    const char *p = choices;
    while (p && *p) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, v, n) == 0)
            return true;
        p = bar ? bar + 1 : NULL;
    }
    return false;
}

/* Convert and bound-check `text` for `d` into `v`; on a problem, report and leave v unchanged. */
static size_t nu_conf_assign(const struct nu_conf_def *d, struct nu_conf_val *v, const char *text,
                             const char *origin, struct nu_problems *p)
{
    struct nu_conf_val nv = {0};
    char *end = NULL;
    bool ok = true, numeric = true;
    const char *shown = d->secret ? "********" : text;
    switch (d->type) {
    case NU_CONF_STRING:
        numeric = false;
        break;
    case NU_CONF_ENUM:
        numeric = false;
        if (!nu_conf_choice_ok(d->choices, text)) {
            nu_problems_add(p, d->name, "invalid value \"%s\" (from %s): expected one of %s", shown,
                            origin, d->choices);
            return 1;
        }
        break;
    case NU_CONF_BOOL:
        numeric = false;
        ok = nu_conf_parse_bool(text, &nv.b);
        break;
    case NU_CONF_INT:
        errno = 0;
        nv.i = strtoll(text, &end, 10);
        ok = end != text && *end == '\0' && errno == 0;
        nv.d = (double)nv.i;
        break;
    case NU_CONF_DOUBLE:
        errno = 0;
        nv.d = strtod(text, &end);
        ok = end != text && *end == '\0' && errno == 0 && isfinite(nv.d);
        break;
    case NU_CONF_DURATION:
        ok = nu_conf_parse_duration_ms(text, &nv.i);
        nv.d = (double)nv.i;
        break;
    case NU_CONF_SIZE:
        ok = nu_conf_parse_size(text, &nv.i);
        nv.d = (double)nv.i;
        break;
    }
    if (!ok) {
        static const char *const what[] = {"a string",
                                           "an integer",
                                           "a boolean",
                                           "a number",
                                           "a duration (e.g. 250ms, 5s)",
                                           "a size (e.g. 64KiB)",
                                           "an enum"};
        nu_problems_add(p, d->name, "invalid value \"%s\" (from %s): expected %s", shown, origin,
                        what[d->type]);
        return 1;
    }
    if (numeric && !(d->min == 0 && d->max == 0) && (nv.d < d->min || nv.d > d->max)) {
        nu_problems_add(p, d->name, "value %s (from %s) is out of range [%g, %g]", shown, origin,
                        d->min, d->max);
        return 1;
    }
    free(v->text);
    free(v->origin);
    nv.text = nu_xstrdup(text);
    nv.origin = nu_xstrdup(origin);
    *v = nv;
    return 0;
}

nu_conf_t *nu_conf_new(const struct nu_conf_def *defs, size_t ndefs, const char *passthrough_prefix)
{
    nu_conf_t *c = nu_xcalloc(1, sizeof(*c));
    c->defs = defs;
    c->ndefs = ndefs;
    c->vals = nu_xcalloc(ndefs ? ndefs : 1, sizeof(*c->vals));
    c->prefix = passthrough_prefix ? nu_xstrdup(passthrough_prefix) : NULL;
    for (size_t i = 0; i < ndefs; i++) {
        if (defs[i].def) {
            struct nu_problems p;
            nu_problems_init(&p);
            size_t bad = nu_conf_assign(&defs[i], &c->vals[i], defs[i].def, "default", &p);
            assert(bad == 0 && "a configuration table default must be valid");
            (void)bad;
            nu_problems_free(&p);
        }
    }
    return c;
}

void nu_conf_destroy(nu_conf_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->ndefs; i++) {
        free(c->vals[i].text);
        free(c->vals[i].origin);
    }
    for (size_t i = 0; i < c->npass; i++) {
        free(c->pass[i].key);
        free(c->pass[i].value);
    }
    free(c->pass);
    free(c->vals);
    free(c->prefix);
    free(c);
}

static size_t nu_conf_passthrough_set(nu_conf_t *c, const char *key, const char *value,
                                      struct nu_problems *p)
{
    const char *k = key + strlen(c->prefix);
    if (!*k) {
        nu_problems_add(p, key, "empty key after prefix \"%s\"", c->prefix);
        return 1;
    }
    for (size_t i = 0; i < c->npass; i++) {
        if (strcmp(c->pass[i].key, k) == 0) {
            free(c->pass[i].value);
            c->pass[i].value = nu_xstrdup(value);
            return 0;
        }
    }
    if (c->npass >= NU_CONF_MAX_PASSTHROUGH) {
        nu_problems_add(p, key, "too many \"%s\" settings (limit %d)", c->prefix,
                        NU_CONF_MAX_PASSTHROUGH);
        return 1;
    }
    if (c->npass == c->cappass) {
        c->cappass = c->cappass ? c->cappass * 2 : 8;
        c->pass = nu_xrealloc(c->pass, c->cappass * sizeof(*c->pass));
    }
    c->pass[c->npass].key = nu_xstrdup(k);
    c->pass[c->npass].value = nu_xstrdup(value);
    c->npass++;
    return 0;
}

size_t nu_conf_set(nu_conf_t *c, const char *key, const char *value, const char *origin,
                   struct nu_problems *p)
{
    size_t idx;
    if (c->prefix && strncmp(key, c->prefix, strlen(c->prefix)) == 0)
        return nu_conf_passthrough_set(c, key, value, p);
    const struct nu_conf_def *d = nu_conf_def_find(c, key, &idx);
    if (!d) {
        nu_problems_add(p, key, "unknown configuration key \"%s\" (from %s)", key, origin);
        return 1;
    }
    return nu_conf_assign(d, &c->vals[idx], value, origin, p);
}

static char *nu_conf_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

size_t nu_conf_set_kv(nu_conf_t *c, const char *kv, const char *origin, struct nu_problems *p)
{
    const char *eq = strchr(kv, '=');
    if (!eq) {
        nu_problems_add(p, kv, "expected key=value (from %s), got \"%s\"", origin, kv);
        return 1;
    }
    char *key = nu_xstrndup(kv, (size_t)(eq - kv));
    char *val = nu_xstrdup(eq + 1);
    size_t n = nu_conf_set(c, nu_conf_trim(key), nu_conf_trim(val), origin, p);
    free(key);
    free(val);
    return n;
}

size_t nu_conf_load_file(nu_conf_t *c, const char *path, struct nu_problems *p)
{
    size_t bad = 0, lineno = 0;
    char line[NU_CONF_LINE_MAX];
    FILE *f = fopen(path, "r");
    if (!f) {
        nu_problems_add(p, path, "could not open configuration file \"%s\": %s", path,
                        strerror(errno));
        return 1;
    }
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        size_t len = strlen(line);
        if (len == sizeof(line) - 1 && line[len - 1] != '\n') {
            nu_problems_add(p, path, "%s:%zu: line longer than %d bytes", path, lineno,
                            NU_CONF_LINE_MAX - 2);
            bad++;
            int ch;
            while ((ch = fgetc(f)) != EOF && ch != '\n')
                ;
            continue;
        }
        char *s = nu_conf_trim(line);
        if (!*s || *s == '#')
            continue;
        char origin[512];
        snprintf(origin, sizeof(origin), "%s:%zu", path, lineno);
        bad += nu_conf_set_kv(c, s, origin, p);
    }
    fclose(f);
    return bad;
}

size_t nu_conf_load_env(nu_conf_t *c, struct nu_problems *p)
{
    size_t bad = 0;
    for (size_t i = 0; i < c->ndefs; i++) {
        const char *env = c->defs[i].env;
        const char *v = env ? getenv(env) : NULL;
        if (!v)
            continue;
        char origin[128];
        snprintf(origin, sizeof(origin), "env %s", env);
        bad += nu_conf_assign(&c->defs[i], &c->vals[i], v, origin, p);
    }
    return bad;
}

size_t nu_conf_validate(const nu_conf_t *c, struct nu_problems *p)
{
    size_t bad = 0;
    for (size_t i = 0; i < c->ndefs; i++) {
        if (c->defs[i].required && !c->vals[i].text) {
            if (c->defs[i].env)
                nu_problems_add(p, c->defs[i].name, "required setting \"%s\" is missing (set %s)",
                                c->defs[i].name, c->defs[i].env);
            else
                nu_problems_add(p, c->defs[i].name, "required setting \"%s\" is missing",
                                c->defs[i].name);
            bad++;
        }
    }
    return bad;
}

static const struct nu_conf_val *nu_conf_val(const nu_conf_t *c, const char *name)
{
    size_t idx = 0;
    const struct nu_conf_def *d = nu_conf_def_find(c, name, &idx);
    assert(d && "configuration key must be declared in the table");
    (void)d;
    return &c->vals[idx];
}

const char *nu_conf_str(const nu_conf_t *c, const char *name)
{
    return nu_conf_val(c, name)->text;
}

int64_t nu_conf_int(const nu_conf_t *c, const char *name)
{
    return nu_conf_val(c, name)->i;
}

bool nu_conf_bool(const nu_conf_t *c, const char *name)
{
    return nu_conf_val(c, name)->b;
}

double nu_conf_double(const nu_conf_t *c, const char *name)
{
    return nu_conf_val(c, name)->d;
}

const char *nu_conf_origin(const nu_conf_t *c, const char *name)
{
    const struct nu_conf_val *v = nu_conf_val(c, name);
    return v->origin ? v->origin : "unset";
}

size_t nu_conf_passthrough_count(const nu_conf_t *c)
{
    return c->npass;
}

void nu_conf_passthrough_get(const nu_conf_t *c, size_t i, const char **key, const char **value)
{
    *key = c->pass[i].key;
    *value = c->pass[i].value;
}

static bool nu_conf_key_secret(const char *key)
{
    return strstr(key, "password") || strstr(key, "secret") || strstr(key, "token") ||
           strstr(key, "sasl.oauthbearer") || strstr(key, "ssl.key");
}

void nu_conf_dump(const nu_conf_t *c, FILE *out)
{
    for (size_t i = 0; i < c->ndefs; i++) {
        const struct nu_conf_val *v = &c->vals[i];
        const char *shown = !v->text ? "" : c->defs[i].secret ? "********" : v->text;
        fprintf(out, "%s = %s  # %s\n", c->defs[i].name, shown, v->origin ? v->origin : "unset");
    }
    for (size_t i = 0; i < c->npass; i++)
        fprintf(out, "%s%s = %s\n", c->prefix, c->pass[i].key,
                nu_conf_key_secret(c->pass[i].key) ? "********" : c->pass[i].value);
}

void nu_conf_doc_markdown(const struct nu_conf_def *defs, size_t ndefs, const char *title,
                          FILE *out)
{
    static const char *const tname[] = {"string",   "integer", "boolean", "number",
                                        "duration", "size",    "enum"};
    fprintf(out,
            "## %s\n\n| key | environment | type | default | range / choices | "
            "description |\n|---|---|---|---|---|---|\n",
            title);
    for (size_t i = 0; i < ndefs; i++) {
        const struct nu_conf_def *d = &defs[i];
        char range[128] = "";
        if (d->type == NU_CONF_ENUM)
            snprintf(range, sizeof(range), "%s", d->choices);
        else if (!(d->min == 0 && d->max == 0))
            snprintf(range, sizeof(range), "%g – %g", d->min, d->max);
        fprintf(out, "| `%s` | %s%s%s | %s | %s%s%s | %s | %s%s%s |\n", d->name, d->env ? "`" : "",
                d->env ? d->env : "", d->env ? "`" : "", tname[d->type], d->def ? "`" : "",
                d->def ? d->def : (d->required ? "(required)" : ""), d->def ? "`" : "", range,
                d->help, d->secret ? " (secret)" : "", "");
    }
    fputc('\n', out);
}
