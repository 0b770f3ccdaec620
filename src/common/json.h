/*
 * json.h — small helpers over jansson for validators (layer: common).
 *
 * Validators walk a parsed document and report every problem with the JSON path at fault
 * (`$.stages[2].upstream[0]`). This module builds those paths, names JSON types the way messages
 * quote them ("a string", "an integer"), measures nesting depth without recursing past a limit,
 * reports unknown object fields with a "did you mean" suggestion, and reads typed integers with
 * bounds.
 *
 * Ownership: every json_t argument is borrowed; nothing here changes a reference count.
 * Thread-safety: all functions are reentrant; a struct nu_json_path belongs to one thread.
 */
#ifndef NU_COMMON_JSON_H
#define NU_COMMON_JSON_H

#include "common/problems.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Longest path kept; deeper paths are cut at this length (still NUL-terminated). */
#define NU_JSON_PATH_MAX 512

/* A JSON path under construction, on the stack: "$", then ".key" / "[i]" pushed and popped. */
struct nu_json_path {
    size_t len;
    char buf[NU_JSON_PATH_MAX];
};

/* Reset to "$". */
void nu_json_path_init(struct nu_json_path *p);
/*
 * Append ".key" (or `["key"]` when the key is not a plain identifier) / "[index]". Each returns
 * the previous length, to hand back to nu_json_path_pop().
 */
size_t nu_json_path_push_key(struct nu_json_path *p, const char *key);
size_t nu_json_path_push_index(struct nu_json_path *p, size_t index);
void nu_json_path_pop(struct nu_json_path *p, size_t mark);

/* "an object", "an array", "a string", "an integer", "a number", "a boolean", "null". */
const char *nu_json_type_name(const json_t *v);

/*
 * Nesting depth of `v` (a scalar is 0, `{}` is 1, `{"a":[1]}` is 2), computed without going
 * deeper than `limit + 1`: a result above `limit` means "too deep".
 */
size_t nu_json_depth(const json_t *v, size_t limit);

/*
 * The candidate closest to `word` when it is a likely typo (small edit distance, or equal
 * ignoring case), else NULL. Returns one of `cands` (borrowed).
 */
const char *nu_json_suggest(const char *word, const char *const *cands, size_t ncands);

/*
 * Report every field of object `obj` that is not in `known`, at path `p` + key, as
 * `unknown field "x"` with ` (did you mean "y"?)` when nu_json_suggest() finds one.
 * Returns the number of unknown fields.
 */
size_t nu_json_check_fields(const json_t *obj, const char *const *known, size_t nknown,
                            struct nu_json_path *p, struct nu_problems *probs);

/*
 * Read an integer in [min, max]. On a wrong type (`expected an integer, got a string`) or a value
 * out of range (`must be at least 1` / `must be at most 1024`), a problem is added at `p` and
 * false returned; *out is then left unchanged.
 */
bool nu_json_get_int(const json_t *v, long long min, long long max, const struct nu_json_path *p,
                     struct nu_problems *probs, long long *out);

#endif
