/*
 * plugin.c — loading operators from shared objects (dlopen), cached for the process lifetime.
 *
 * A plugin is loaded once per path (canonicalized with realpath when the file exists), its
 * descriptors checked, and it is never unloaded: descriptors and code stay valid for as long as
 * any stage may hold them. A failed load is not cached, so a fixed file is picked up next time.
 */
#include "operators/registry.h"

#include "common/mem.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct nu_plugin {
    struct nu_plugin *next;
    char *path; /* canonical path, the cache key */
    void *handle;
    const struct nu_operator *const *ops;
    size_t nops;
};

static pthread_mutex_t nu_plugins_lock = PTHREAD_MUTEX_INITIALIZER;
static struct nu_plugin *nu_plugins; /* newest first; entries are never removed */

static struct nu_plugin *nu_plugin_lookup(const char *key)
{
    for (struct nu_plugin *pl = nu_plugins; pl; pl = pl->next)
        if (strcmp(pl->path, key) == 0)
            return pl;
    return NULL;
}

/* Open and check the shared object; on success *out is a new cache entry (not yet linked). */
static nu_err_t nu_plugin_open(const char *path, const char *key, struct nu_plugin **out,
                               struct nu_errbuf *eb)
{
    void *handle = NULL, *sym = NULL;
    nu_operators_fn entry = NULL;
    const struct nu_operator *const *ops = NULL;
    size_t n = 0;
    char where[NU_PLUGIN_PATH_MAX + 32];
    nu_err_t rc = NU_OK;

    *out = NULL;
    dlerror();
    handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char *why = dlerror();
        rc = nu_err_set(eb, NU_ERR_PLUGIN, "could not load plugin \"%s\": %s", path,
                        why ? why : "unknown error");
        goto fail;
    }
    dlerror();
    sym = dlsym(handle, NU_OPERATOR_PLUGIN_SYMBOL);
    if (!sym) {
        rc = nu_err_set(eb, NU_ERR_PLUGIN, "plugin \"%s\" has no symbol %s", path,
                        NU_OPERATOR_PLUGIN_SYMBOL);
        goto fail;
    }
    /* POSIX guarantees dlsym's object pointer converts to a function pointer. */
    memcpy(&entry, &sym, sizeof(entry));
    ops = entry(&n);
    if (!ops || n == 0) {
        rc = nu_err_set(eb, NU_ERR_PLUGIN, "plugin \"%s\" exports no operators", path);
        goto fail;
    }
    if (n > NU_PLUGIN_MAX_OPERATORS) {
        rc = nu_err_set(eb, NU_ERR_PLUGIN, "plugin \"%s\" exports %zu operators, more than %d",
                        path, n, NU_PLUGIN_MAX_OPERATORS);
        goto fail;
    }
    snprintf(where, sizeof(where), "plugin \"%s\"", path);
    for (size_t i = 0; i < n; i++) {
        rc = nu_registry_check_descriptor(ops[i], where, eb);
        if (rc != NU_OK)
            goto fail;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(ops[i]->name, ops[j]->name) == 0) {
                rc = nu_err_set(eb, NU_ERR_PLUGIN, "%s exports operator \"%s\" twice", where,
                                ops[i]->name);
                goto fail;
            }
        }
    }
    *out = nu_xcalloc(1, sizeof(**out));
    (*out)->path = nu_xstrdup(key);
    (*out)->handle = handle;
    (*out)->ops = ops;
    (*out)->nops = n;
    return NU_OK;
fail:
    /* Not cached, so unloading is safe: nothing was handed out. */
    if (handle)
        dlclose(handle);
    return rc;
}

nu_err_t nu_plugin_load(const char *path, const struct nu_operator *const **ops, size_t *n,
                        struct nu_errbuf *eb)
{
    char canon[PATH_MAX];
    const char *key = path;
    struct nu_plugin *pl = NULL;
    nu_err_t rc = NU_OK;

    *ops = NULL;
    *n = 0;
    if (!path || !*path)
        return nu_err_set(eb, NU_ERR_INVALID, "plugin path is empty");
    if (strlen(path) >= NU_PLUGIN_PATH_MAX)
        return nu_err_set(eb, NU_ERR_TOO_LARGE, "plugin path is longer than %d bytes",
                          NU_PLUGIN_PATH_MAX);
    /* A bare name is searched by the loader like any library; a path is canonicalized. */
    if (strchr(path, '/') && realpath(path, canon))
        key = canon;

    pthread_mutex_lock(&nu_plugins_lock);
    pl = nu_plugin_lookup(key);
    if (!pl) {
        rc = nu_plugin_open(path, key, &pl, eb);
        if (rc == NU_OK) {
            pl->next = nu_plugins;
            nu_plugins = pl;
        }
    }
    if (pl) {
        *ops = pl->ops;
        *n = pl->nops;
    }
    pthread_mutex_unlock(&nu_plugins_lock);
    return rc;
}

size_t nu_plugin_list(const struct nu_operator **out, size_t cap)
{
    size_t total = 0;

    pthread_mutex_lock(&nu_plugins_lock);
    for (const struct nu_plugin *pl = nu_plugins; pl; pl = pl->next) {
        for (size_t i = 0; i < pl->nops; i++, total++)
            if (total < cap)
                out[total] = pl->ops[i];
    }
    pthread_mutex_unlock(&nu_plugins_lock);
    return total;
}
