/*
 * config.h — declarative configuration tables (layer: common).
 *
 * Each executable describes its settings in one table of struct nu_conf_def (name, environment
 * variable, type, default, bounds, secret?, help). Values are layered in this order, later wins:
 * default < file (`key = value` lines) < environment < `--set key=value`. Keys under a declared
 * pass-through prefix (`kafka.`) are kept verbatim for the library they belong to. Every problem
 * (unknown key, bad number, out of bounds, bad enum value) is collected, not just the first, and
 * each names where the value came from. docs/CONFIGURATION.md is generated from the tables by
 * nu_conf_doc_markdown(). Secrets never appear in dumps or messages.
 *
 * Lifecycle: nu_conf_new() / nu_conf_destroy(). Not thread-safe while loading; read-only use
 * from several threads afterwards is safe.
 */
#ifndef NU_COMMON_CONFIG_H
#define NU_COMMON_CONFIG_H

#include "common/problems.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef enum nu_conf_type {
    NU_CONF_STRING,
    NU_CONF_INT,      /* int64 */
    NU_CONF_BOOL,     /* true/false/yes/no/on/off/1/0 */
    NU_CONF_DOUBLE,   /* floating point */
    NU_CONF_DURATION, /* milliseconds; accepts 250ms, 5s, 2m, 1h or a bare number of ms */
    NU_CONF_SIZE,     /* bytes; accepts 512, 64KiB, 16MiB, 1GiB (and kB/MB/GB as powers of 1000) */
    NU_CONF_ENUM,     /* one of a '|'-separated list in `choices` */
} nu_conf_type_t;

struct nu_conf_def {
    const char *name; /* "commit.interval" */
    const char *env;  /* "NURION_COMMIT_INTERVAL", or NULL */
    nu_conf_type_t type;
    const char *def;     /* default as text, or NULL for none (then "required" if `required`) */
    double min, max;     /* bounds for numeric types; min == max == 0 means unbounded */
    const char *choices; /* NU_CONF_ENUM: "avro|json" */
    bool secret;
    bool required;
    const char *help;
};

typedef struct nu_conf nu_conf_t;

/* A configuration over `defs` (borrowed; must outlive the conf) with defaults applied.
 * `passthrough_prefix` (e.g. "kafka.", may be NULL) marks keys kept verbatim. Returned owned. */
nu_conf_t *nu_conf_new(const struct nu_conf_def *defs, size_t ndefs,
                       const char *passthrough_prefix);
void nu_conf_destroy(nu_conf_t *c); /* accepts NULL */

/* Layers. Each appends problems and keeps going; returns the number of problems added. */
size_t nu_conf_load_file(nu_conf_t *c, const char *path, struct nu_problems *p);
size_t nu_conf_load_env(nu_conf_t *c, struct nu_problems *p);
/* One "key=value" (from --set); `origin` names the source in messages ("--set"). */
size_t nu_conf_set_kv(nu_conf_t *c, const char *kv, const char *origin, struct nu_problems *p);
/* Set one key to a value (text form). */
size_t nu_conf_set(nu_conf_t *c, const char *key, const char *value, const char *origin,
                   struct nu_problems *p);
/* Final check: required keys present. */
size_t nu_conf_validate(const nu_conf_t *c, struct nu_problems *p);

/* Typed getters of a declared key (asserts the key is declared with that type). Strings are
 * borrowed and live as long as the conf; NULL when unset. */
const char *nu_conf_str(const nu_conf_t *c, const char *name);
int64_t nu_conf_int(const nu_conf_t *c, const char *name); /* INT, DURATION (ms), SIZE (bytes) */
bool nu_conf_bool(const nu_conf_t *c, const char *name);
double nu_conf_double(const nu_conf_t *c, const char *name);
/* Where the current value came from: "default", a file path, "env NAME", "--set". */
const char *nu_conf_origin(const nu_conf_t *c, const char *name);

/* Pass-through pairs (key without the prefix, value), in the order set. */
size_t nu_conf_passthrough_count(const nu_conf_t *c);
void nu_conf_passthrough_get(const nu_conf_t *c, size_t i, const char **key, const char **value);

/* Text parsers used by the layers (exposed for tests and other parsers). */
bool nu_conf_parse_bool(const char *s, bool *out);
bool nu_conf_parse_duration_ms(const char *s, int64_t *out);
bool nu_conf_parse_size(const char *s, int64_t *out);

/* `key = value  # origin` for every key; secrets shown as "********". */
void nu_conf_dump(const nu_conf_t *c, FILE *out);
/* Markdown reference of a table (a heading, then one row per key). */
void nu_conf_doc_markdown(const struct nu_conf_def *defs, size_t ndefs, const char *title,
                          FILE *out);

#endif
