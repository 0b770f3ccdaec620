/* cmd_client_info.c — `nurion lineage JOB SPLIT` and `nurion topics JOB`. */
#include "cli/cli.h"
#include "cli/cmd_client.h"
#include "cli/commands.h"

#include "common/mem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NU_CLI_LINEAGE_MAX_DEPTH 100 /* the API's bound on `depth` */

static void nu_cli_lineage_usage(FILE *out)
{
    fprintf(
        out,
        "usage: nurion lineage [--direction up|down] [--depth N] [--coordinator URL]\n"
        "                      [--token T] [--json] JOB SPLIT\n\n"
        "Shows where a split came from or what it became (GET /api/v1/jobs/{id}/splits/\n"
        "{split}/lineage) as a tree: each split with the stage that consumed it, its rows in\n"
        "and out, the instance and the time. Split ids are listed by GET .../splits and in\n"
        "the records' headers.\n\n"
        "options:\n"
        "  --direction D      up: ancestors (default), down: descendants\n"
        "  --depth N          levels to follow, 1 to %d (default 10)\n" NU_CLI_CLIENT_OPTIONS_HELP,
        NU_CLI_LINEAGE_MAX_DEPTH);
}

static void nu_cli_topics_usage(FILE *out)
{
    fprintf(out, "usage: nurion topics [--coordinator URL] [--token T] [--json] JOB\n\n"
                 "Lists a job's Kafka topics (GET /api/v1/jobs/{id}/topics): the plan, output and\n"
                 "dead-letter topic of each stage and the events topic, with partitions and\n"
                 "records retained, then a kcat command that prints each of them.\n\n"
                 "options:\n" NU_CLI_CLIENT_OPTIONS_HELP);
}

struct nu_cli_lineage {
    json_t *nodes; /* split -> node object */
    json_t *next;  /* split -> array of neighbour splits in the walk's direction */
    json_t *seen;  /* split -> true once printed */
    struct nu_cli_table t;
};

/* Print `split` and, depth first, the splits it leads to, indented by level. */
static void nu_cli_lineage_walk(struct nu_cli_lineage *lg, const char *split, int level)
{
    const json_t *node = json_object_get(lg->nodes, split), *nb;
    bool again = json_object_get(lg->seen, split) != NULL;
    char b[5][64];
    size_t i;
    char *name = nu_xasprintf("%*s%s%s", level * 2, "", split, again ? " (see above)" : "");
    const char *row[] = {name,
                         nu_cli_jstr(node, "stage", b[0], sizeof(b[0])),
                         nu_cli_jstr(node, "rows_in", b[1], sizeof(b[1])),
                         nu_cli_jstr(node, "rows_out", b[2], sizeof(b[2])),
                         nu_cli_jstr(node, "instance", b[3], sizeof(b[3])),
                         nu_cli_jstr(node, "ts", b[4], sizeof(b[4]))};
    nu_cli_table_row(&lg->t, row);
    free(name);
    if (again || level > NU_CLI_LINEAGE_MAX_DEPTH)
        return;
    json_object_set_new(lg->seen, split, json_true());
    json_array_foreach(json_object_get(lg->next, split), i, nb)
    {
        nu_cli_lineage_walk(lg, json_string_value(nb), level + 1);
    }
}

static void nu_cli_lineage_print(const json_t *doc)
{
    static const char *const head[] = {"SPLIT", "STAGE", "ROWS IN", "ROWS OUT", "INSTANCE", "TS"};
    struct nu_cli_lineage lg = {
        .nodes = json_object(), .next = json_object(), .seen = json_object()};
    const char *root = json_string_value(json_object_get(doc, "root"));
    const char *dir = json_string_value(json_object_get(doc, "direction"));
    bool up = dir == NULL || strcmp(dir, "down") != 0;
    size_t i;
    const json_t *v;

    json_array_foreach(json_object_get(doc, "nodes"), i, v)
    {
        const char *s = json_string_value(json_object_get(v, "split"));
        if (s)
            json_object_set(lg.nodes, s, (json_t *)v);
    }
    json_array_foreach(json_object_get(doc, "edges"), i, v)
    {
        const char *parent = json_string_value(json_object_get(v, "parent"));
        const char *child = json_string_value(json_object_get(v, "child"));
        if (!parent || !child)
            continue;
        const char *from = up ? child : parent, *to = up ? parent : child;
        json_t *arr = json_object_get(lg.next, from);
        if (arr == NULL) {
            arr = json_array();
            json_object_set_new(lg.next, from, arr);
        }
        json_array_append_new(arr, json_string(to));
    }
    printf("lineage %s from split %s (%lld level%s, %zu split%s)\n", up ? "up" : "down",
           root ? root : "?", (long long)json_integer_value(json_object_get(doc, "depth")),
           json_integer_value(json_object_get(doc, "depth")) == 1 ? "" : "s",
           json_array_size(json_object_get(doc, "nodes")),
           json_array_size(json_object_get(doc, "nodes")) == 1 ? "" : "s");
    nu_cli_table_init(&lg.t, sizeof(head) / sizeof(head[0]), head);
    if (root)
        nu_cli_lineage_walk(&lg, root, 0);
    nu_cli_table_print(&lg.t, stdout, 0);
    if (json_is_true(json_object_get(doc, "truncated")))
        printf("(truncated: the graph has more splits than the coordinator returns)\n");
    nu_cli_table_free(&lg.t);
    json_decref(lg.nodes);
    json_decref(lg.next);
    json_decref(lg.seen);
}

int nu_cli_cmd_lineage(int argc, char **argv)
{
    struct nu_cli_client cc = {.cmd = "lineage"};
    struct nu_client_resp r = {0};
    const char *direction = NULL, *depth = NULL;
    char *path = NULL, *query = nu_xstrdup(""), *suffix = NULL, *enc = NULL;
    const struct nu_cli_opt opts[] = {{"--direction", &direction, NULL}, {"--depth", &depth, NULL}};

    int code = nu_cli_client_init(&cc, argc, argv, opts, 2, 2, 2, nu_cli_lineage_usage);
    if (code >= 0)
        goto out;
    if (direction && strcmp(direction, "up") != 0 && strcmp(direction, "down") != 0) {
        fprintf(stderr, "nurion lineage: --direction must be up or down, got \"%s\"\n", direction);
        code = NU_EXIT_USAGE;
        goto out;
    }
    if (depth) {
        char *end = NULL;
        errno = 0;
        long d = strtol(depth, &end, 10);
        if (errno || end == depth || *end || d < 1 || d > NU_CLI_LINEAGE_MAX_DEPTH) {
            fprintf(stderr, "nurion lineage: --depth must be an integer from 1 to %d, got \"%s\"\n",
                    NU_CLI_LINEAGE_MAX_DEPTH, depth);
            code = NU_EXIT_USAGE;
            goto out;
        }
    }
    nu_cli_query_add(&query, "direction", direction);
    nu_cli_query_add(&query, "depth", depth);
    enc = nu_client_escape(cc.args[1]);
    suffix = nu_xasprintf("/splits/%s/lineage%s", enc, query);
    path = nu_cli_job_path(cc.args[0], suffix);
    code = nu_cli_client_call(&cc, "GET", path, NULL, 0, 200, NULL, &r);
    if (code != NU_EXIT_OK)
        goto out;
    if (cc.json)
        nu_cli_print_json(r.json);
    else
        nu_cli_lineage_print(r.json);

out:
    fflush(stdout);
    nu_client_resp_free(&r);
    free(path);
    free(query);
    free(suffix);
    free(enc);
    nu_cli_client_done(&cc);
    return code;
}

int nu_cli_cmd_topics(int argc, char **argv)
{
    static const char *const head[] = {"TOPIC", "KIND", "STAGE", "PARTITIONS", "RECORDS"};
    struct nu_cli_client cc = {.cmd = "topics"};
    struct nu_client_resp r = {0};
    struct nu_cli_table t = {0};
    char *path = NULL;
    size_t i;
    const json_t *tp;

    int code = nu_cli_client_init(&cc, argc, argv, NULL, 0, 1, 1, nu_cli_topics_usage);
    if (code >= 0)
        goto out;
    path = nu_cli_job_path(cc.args[0], "/topics");
    code = nu_cli_client_call(&cc, "GET", path, NULL, 0, 200, NULL, &r);
    if (code != NU_EXIT_OK)
        goto out;
    if (cc.json) {
        nu_cli_print_json(r.json);
        goto out;
    }
    const json_t *topics = json_object_get(r.json, "topics");
    char bb[64];
    printf("job %s, brokers %s\n\n", nu_cli_jstr(r.json, "job", bb, sizeof(bb)),
           json_string_value(json_object_get(r.json, "brokers"))
               ? json_string_value(json_object_get(r.json, "brokers"))
               : "-");
    nu_cli_table_init(&t, sizeof(head) / sizeof(head[0]), head);
    json_array_foreach(topics, i, tp)
    {
        char b[5][64];
        bool exists = json_is_true(json_object_get(tp, "exists"));
        const char *row[] = {nu_cli_jstr(tp, "name", b[0], sizeof(b[0])),
                             nu_cli_jstr(tp, "kind", b[1], sizeof(b[1])),
                             nu_cli_jstr(tp, "stage", b[2], sizeof(b[2])),
                             exists ? nu_cli_jstr(tp, "partitions", b[3], sizeof(b[3]))
                                    : "(missing)",
                             nu_cli_jstr(tp, "records", b[4], sizeof(b[4]))};
        nu_cli_table_row(&t, row);
    }
    nu_cli_table_print(&t, stdout, 0);
    printf("\nread a topic with kcat:\n");
    json_array_foreach(topics, i, tp)
    {
        const char *kcat = json_string_value(json_object_get(tp, "kcat"));
        if (kcat && json_is_true(json_object_get(tp, "exists")))
            printf("  %s\n", kcat);
    }

out:
    fflush(stdout);
    nu_cli_table_free(&t);
    nu_client_resp_free(&r);
    free(path);
    nu_cli_client_done(&cc);
    return code;
}
