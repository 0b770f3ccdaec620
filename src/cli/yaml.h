/*
 * yaml.h — a small YAML writer over jansson values, for the manifests of `nurion k8s render`
 * (layer: cli).
 *
 * Block style, two-space indentation, keys in the object's order. Strings are written plain
 * only when YAML cannot read them as anything but that string (no number, boolean or null look,
 * no indicator characters); otherwise double-quoted with JSON escapes, or — when they span
 * several lines — as a literal block. Empty objects and arrays are written `{}` and `[]`.
 *
 * Thread-safety: pure functions. Ownership: `v` is borrowed; output is appended to `out`.
 */
#ifndef NU_CLI_YAML_H
#define NU_CLI_YAML_H

#include "common/buf.h"

#include <jansson.h>
#include <stdbool.h>

/* Append one document (without a `---` marker) for `v`, an object or an array. */
void nu_yaml_emit(const json_t *v, struct nu_buf *out);
/* Can `s` be written as a plain (unquoted) scalar? */
bool nu_yaml_plain_ok(const char *s);

#endif
