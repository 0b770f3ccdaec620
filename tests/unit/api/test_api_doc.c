/*
 * docs/api.md's endpoint table and the OpenAPI document (src/api/openapi.json) must list the
 * same operations: every (method, path) of one is in the other. The table's rows look like
 * "| GET / DELETE | `/api/v1/jobs/{id}` | …" and may abbreviate a sibling path as `…/unfreeze`
 * (the previous path of the cell with its last segment replaced).
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DOC_PATH     NU_SOURCE_DIR "/docs/api.md"
#define OPENAPI_PATH NU_SOURCE_DIR "/src/api/openapi.json"
#define MAX_OPS      256
#define ELLIPSIS     "\xe2\x80\xa6" /* … */

struct op_set {
    char *ops[MAX_OPS]; /* "METHOD path" */
    size_t n;
};

static void op_add(struct op_set *s, const char *method, const char *path)
{
    char buf[512];
    size_t k = 0;
    for (; method[k] && k < 15; k++)
        buf[k] = (char)toupper((unsigned char)method[k]);
    snprintf(buf + k, sizeof(buf) - k, " %s", path);
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->ops[i], buf) == 0)
            return;
    cr_assert_lt(s->n, MAX_OPS);
    s->ops[s->n++] = strdup(buf);
}

static bool op_has(const struct op_set *s, const char *op)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->ops[i], op) == 0)
            return true;
    return false;
}

static void op_free(struct op_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->ops[i]);
    s->n = 0;
}

static void openapi_ops(struct op_set *s)
{
    json_error_t jerr;
    json_t *doc = json_load_file(OPENAPI_PATH, 0, &jerr);
    cr_assert_not_null(doc, "%s:%d: %s", OPENAPI_PATH, jerr.line, jerr.text);
    const char *path, *method;
    json_t *item, *unused;
    json_object_foreach(json_object_get(doc, "paths"), path, item)
    {
        json_object_foreach(item, method, unused)
        {
            if (strcmp(method, "get") == 0 || strcmp(method, "post") == 0 ||
                strcmp(method, "put") == 0 || strcmp(method, "delete") == 0 ||
                strcmp(method, "patch") == 0)
                op_add(s, method, path);
        }
    }
    json_decref(doc);
}

/* The operations of one table row: methods "GET / DELETE", paths "`/a/b`, `…/c`". */
static void doc_row(struct op_set *s, char *methods, const char *paths)
{
    char prev[256] = "", path[256];
    const char *p = paths;
    while ((p = strchr(p, '`')) != NULL) {
        const char *end = strchr(p + 1, '`');
        if (!end)
            break;
        size_t len = (size_t)(end - p - 1);
        cr_assert_lt(len, sizeof(path));
        memcpy(path, p + 1, len);
        path[len] = '\0';
        p = end + 1;
        if (strncmp(path, ELLIPSIS "/", strlen(ELLIPSIS) + 1) == 0) {
            char *slash = strrchr(prev, '/');
            cr_assert_not_null(slash, "docs/api.md: \"%s\" abbreviates no earlier path", path);
            char full[256];
            snprintf(full, sizeof(full), "%.*s%s", (int)(slash - prev), prev,
                     path + strlen(ELLIPSIS));
            snprintf(path, sizeof(path), "%s", full);
        } else if (path[0] != '/') {
            continue;
        }
        snprintf(prev, sizeof(prev), "%s", path);
        char mcopy[64];
        cr_assert_lt(strlen(methods), sizeof(mcopy));
        memcpy(mcopy, methods, strlen(methods) + 1);
        for (char *save = NULL, *m = strtok_r(mcopy, " /", &save); m;
             m = strtok_r(NULL, " /", &save))
            op_add(s, m, path);
    }
}

static void doc_ops(struct op_set *s)
{
    FILE *f = fopen(DOC_PATH, "r");
    cr_assert_not_null(f, "cannot open %s", DOC_PATH);
    char line[1024];
    while (fgets(line, sizeof(line), f)) {
        /* "| METHOD | `path` | answer |" */
        if (line[0] != '|')
            continue;
        char *c1 = line + 1, *c2 = strchr(c1, '|');
        if (!c2)
            continue;
        *c2++ = '\0';
        char *c3 = strchr(c2, '|');
        if (!c3)
            continue;
        *c3 = '\0';
        bool is_method = strstr(c1, "GET") || strstr(c1, "POST") || strstr(c1, "DELETE") ||
                         strstr(c1, "PUT") || strstr(c1, "PATCH");
        if (is_method && !strstr(c1, "method"))
            doc_row(s, c1, c2);
    }
    fclose(f);
}

Test(api_doc, endpoint_table_matches_openapi)
{
    struct op_set api = {0}, doc = {0};
    openapi_ops(&api);
    doc_ops(&doc);
    cr_assert_gt(api.n, 10, "the OpenAPI document lists %zu operations", api.n);
    for (size_t i = 0; i < api.n; i++)
        cr_expect(op_has(&doc, api.ops[i]), "docs/api.md's table lacks %s", api.ops[i]);
    for (size_t i = 0; i < doc.n; i++)
        cr_expect(op_has(&api, doc.ops[i]), "docs/api.md lists %s, which openapi.json lacks",
                  doc.ops[i]);
    op_free(&api);
    op_free(&doc);
}
