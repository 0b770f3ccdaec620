/*
 * registry.h — operators by name: built-ins and plugins (layer: operators).
 *
 * Built-ins (map, filter, flat_map, batch, generate, file_sink) are compiled in. A stage naming
 * a plugin ("plugin": "path/lib.so") has its operator looked up in that shared object, loaded on
 * first use with dlopen and kept for the life of the process (never unloaded, so descriptors
 * stay valid). The shared object exports NU_OPERATOR_PLUGIN_SYMBOL (see nurion/operator.h).
 *
 * Thread-safety: every function may be called from any thread; the plugin cache is locked.
 * Returned descriptors are constant and live until the process exits.
 */
#ifndef NU_OPERATORS_REGISTRY_H
#define NU_OPERATORS_REGISTRY_H

#include "nurion/operator.h"

#include "common/job.h"

#include <stddef.h>

/* Longest plugin path accepted. */
#define NU_PLUGIN_PATH_MAX 4096
/* Most operators one plugin may export. */
#define NU_PLUGIN_MAX_OPERATORS 1024

/*
 * Find operator `name`: among the built-ins when `plugin_path` is NULL or "", else in that
 * plugin (loaded and checked on first use; blocks on dlopen). *out is borrowed, valid forever.
 * Errors: NU_ERR_NOT_FOUND (`unknown operator "x"`, `plugin "p.so" has no operator "x"`),
 * NU_ERR_PLUGIN (cannot be loaded, has no symbol nurion_operators, ABI version mismatch,
 * malformed descriptor).
 */
nu_err_t nu_registry_find(const char *name, const char *plugin_path, const struct nu_operator **out,
                          struct nu_errbuf *eb);

/*
 * The built-in operators followed by those of every plugin loaded so far. Copies up to `cap`
 * descriptor pointers (borrowed, valid forever) into `out` (may be NULL when cap is 0) and
 * returns the total count.
 */
size_t nu_registry_list(const struct nu_operator **out, size_t cap);

/* Number of built-in operators (the first ones nu_registry_list returns). */
size_t nu_registry_builtin_count(void);

/* Most operators nu_registry_add accepts over the life of the process. */
#define NU_REGISTRY_MAX_ADDED 64

/*
 * Add operator `op` (borrowed; must live as long as the process) to the built-ins, e.g. the
 * connectors of a higher layer that this layer may not see. Found by nu_registry_find with no
 * plugin and listed after the built-ins by nu_registry_list. Adding the very same descriptor
 * again is a no-op. Thread-safe (locked). Errors: NU_ERR_PLUGIN (bad descriptor, see
 * nu_registry_check_descriptor), NU_ERR_EXISTS (another operator has that name),
 * NU_ERR_TOO_LARGE (more than NU_REGISTRY_MAX_ADDED).
 */
nu_err_t nu_registry_add(const struct nu_operator *op, struct nu_errbuf *eb);

/*
 * Load plugin `path` (cached) and return its operator array: *ops and *n are borrowed, valid
 * forever. Errors as for nu_registry_find. Implemented in plugin.c.
 */
nu_err_t nu_plugin_load(const char *path, const struct nu_operator *const **ops, size_t *n,
                        struct nu_errbuf *eb);
/* Operators of plugins loaded so far, as nu_registry_list (implemented in plugin.c). */
size_t nu_plugin_list(const struct nu_operator **out, size_t cap);

/*
 * Check one operator descriptor: ABI version, name, kind and required functions.
 * `where` names it in messages (`plugin "x.so"`). Errors: NU_ERR_PLUGIN.
 */
nu_err_t nu_registry_check_descriptor(const struct nu_operator *op, const char *where,
                                      struct nu_errbuf *eb);

/*
 * The job validator backed by this registry (constant, process-lifetime, thread-safe):
 * kind() finds built-ins or loads the plugin; check_stage() validates the stage's config and
 * derives its output schema from its upstreams' (recursively, in topological order, memoized
 * for the call), reporting type errors at `$.stages[i].config…`. Several upstreams must have
 * equal schemas. Stages whose upstreams fail to derive are not schema-checked (their upstream's
 * own check reports the cause).
 */
const struct nu_job_validator *nu_registry_validator(void);

/*
 * The output schema of stage `stage_index` of `job` (NULL for a sink), derived as the validator
 * does. *out is returned owned. Errors: NU_ERR_NOT_FOUND/NU_ERR_PLUGIN (operator),
 * NU_ERR_CONFIG/NU_ERR_TYPE (config), NU_ERR_SCHEMA (upstreams disagree), NU_ERR_SPEC (cycle).
 */
nu_err_t nu_registry_stage_schema(const struct nu_job *job, size_t stage_index,
                                  struct nu_schema **out, struct nu_errbuf *eb);

#endif
