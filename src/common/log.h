/*
 * log.h — one line per event on stderr (layer: common).
 *
 * Format (key=value): `ts=2026-11-29T12:00:00.123Z level=info comp=stage job=j stage=s inst=0
 * msg="…" k=v …`. The process context (job, stage, instance) is set once at start; debug output is
 * switched per area (`debug=kafka,sql,http` or `all`). Each line is written with one write(2), so
 * lines from threads never interleave. Thread-safe after nu_log_init().
 */
#ifndef NU_COMMON_LOG_H
#define NU_COMMON_LOG_H

#include <stdbool.h>

typedef enum nu_log_level {
    NU_LOG_DEBUG = 0,
    NU_LOG_INFO,
    NU_LOG_WARN,
    NU_LOG_ERROR,
    NU_LOG_OFF,
} nu_log_level_t;

/* Minimum level (default info) and the comma-separated debug areas ("" none, "all"). */
void nu_log_init(nu_log_level_t min_level, const char *debug_areas);
/* Parse "debug|info|warn|error|off"; returns false on an unknown name. */
bool nu_log_level_parse(const char *s, nu_log_level_t *out);
/* Context fields added to every line; NULL clears one. Copies the strings. */
void nu_log_set_context(const char *job, const char *stage, const char *instance);
/* Is debug output on for this area ("kafka", "sql", "http", …)? */
bool nu_log_debug_on(const char *area);

/* `fmt` formats the msg; extra key=value pairs may follow in the message after a '\t'. */
void nu_log(nu_log_level_t level, const char *comp, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define NU_LOG_DEBUG_AREA(area, comp, ...)           \
    do {                                             \
        if (nu_log_debug_on(area))                   \
            nu_log(NU_LOG_DEBUG, comp, __VA_ARGS__); \
    } while (0)

#endif
