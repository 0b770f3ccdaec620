/*
 * problems.h — a list of validation problems, each with the JSON path at fault (layer: common).
 *
 * Validators (job specs, operator configs, configuration tables) do not stop at the first
 * problem: they append every one they find, so a user fixes a spec in one round. Paths use JSON
 * Pointer-like dotted form with indices: `$.stages[2].config.where`.
 * Not thread-safe; owned by the caller.
 */
#ifndef NU_COMMON_PROBLEMS_H
#define NU_COMMON_PROBLEMS_H

#include <stddef.h>

struct nu_problem {
    char *path;    /* owned, e.g. "$.stages[1].upstream[0]" */
    char *message; /* owned, plain sentence fragment, e.g. "unknown upstream stage \"x\"" */
};

struct nu_problems {
    size_t n, cap;
    struct nu_problem *items;
};

void nu_problems_init(struct nu_problems *p);
void nu_problems_free(struct nu_problems *p); /* frees items, leaves p empty; accepts NULL */
/* Append a problem; `path` is copied, the message is formatted. */
void nu_problems_add(struct nu_problems *p, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
