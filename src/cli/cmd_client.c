/* cmd_client.c — common options, calls and tables of the API client commands. */
#include "cli/cmd_client.h"

#include "cli/cli.h"
#include "common/mem.h"

#include <stdlib.h>
#include <string.h>

/* Is argv[*i] one of `opts`? Consumes its value. 1 yes, 0 no, -1 a value is missing. */
static int nu_cli_client_opt(int argc, char **argv, int *i, const struct nu_cli_opt *opts,
                             size_t nopts)
{
    for (size_t k = 0; k < nopts; k++) {
        bool missing = false;
        if (opts[k].value == NULL) {
            if (strcmp(argv[*i], opts[k].name) == 0) {
                *opts[k].flag = true;
                return 1;
            }
            continue;
        }
        const char *v = nu_cli_optval(argc, argv, i, opts[k].name, &missing);
        if (missing)
            return -1;
        if (v != NULL) {
            *opts[k].value = v;
            return 1;
        }
    }
    return 0;
}

int nu_cli_client_init(struct nu_cli_client *cc, int argc, char **argv,
                       const struct nu_cli_opt *opts, size_t nopts, size_t min_args,
                       size_t max_args, void (*usage)(FILE *out))
{
    struct nu_errbuf eb = {0};
    const char *cmd = cc->cmd;

    memset(cc, 0, sizeof(*cc));
    cc->cmd = cmd;
    cc->url = getenv("NURION_COORDINATOR");
    cc->token = getenv("NURION_TOKEN");
    if (nu_cli_wants_help(argc, argv)) {
        usage(stdout);
        return NU_EXIT_OK;
    }
    const struct nu_cli_opt common[] = {
        {"--coordinator", &cc->url, NULL},
        {"--token", &cc->token, NULL},
        {"--json", NULL, &cc->json},
    };
    for (int i = 1; i < argc; i++) {
        bool rest = strcmp(argv[i], "--") == 0;
        int hit = nu_cli_client_opt(argc, argv, &i, common, sizeof(common) / sizeof(common[0]));
        if (hit == 0)
            hit = nu_cli_client_opt(argc, argv, &i, opts, nopts);
        if (hit < 0) {
            fprintf(stderr, "nurion %s: option \"%s\" needs a value\n", cmd, argv[i]);
            return NU_EXIT_USAGE;
        }
        if (hit > 0)
            continue;
        if (!rest && argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "nurion %s: unknown option \"%s\"\n\n", cmd, argv[i]);
            usage(stderr);
            return NU_EXIT_USAGE;
        }
        for (int k = rest ? i + 1 : i; k < (rest ? argc : i + 1); k++) {
            if (cc->nargs >= max_args) {
                fprintf(stderr, "nurion %s: unexpected argument \"%s\"\n", cmd, argv[k]);
                return NU_EXIT_USAGE;
            }
            cc->args[cc->nargs++] = argv[k];
        }
        if (rest)
            break;
    }
    if (cc->nargs < min_args) {
        usage(stderr);
        return NU_EXIT_USAGE;
    }
    struct nu_client_conf conf = {.url = cc->url, .token = cc->token};
    if (nu_client_new(&conf, &cc->client, &eb) != NU_OK) {
        fprintf(stderr, "nurion %s: %s\n", cmd, nu_err_msg(&eb));
        return NU_EXIT_USAGE;
    }
    return -1;
}

void nu_cli_client_done(struct nu_cli_client *cc)
{
    nu_client_destroy(cc->client);
    cc->client = NULL;
}

int nu_cli_client_call(struct nu_cli_client *cc, const char *method, const char *path,
                       const char *body, size_t body_len, long want, const char *where,
                       struct nu_client_resp *r)
{
    struct nu_errbuf eb = {0};
    nu_err_t err = nu_client_request(cc->client, method, path, body, body_len, r, &eb);
    if (err == NU_ERR_USAGE) {
        fprintf(stderr, "nurion %s: %s\n", cc->cmd, nu_err_msg(&eb));
        return NU_EXIT_USAGE;
    }
    if (err != NU_OK) {
        fprintf(stderr, "nurion: %s\n", nu_err_msg(&eb));
        return NU_CLI_EXIT_UNREACHABLE;
    }
    if (r->status == want && (r->json != NULL || r->len == 0))
        return NU_EXIT_OK;
    int code = r->status == 400 ? NU_EXIT_USAGE : NU_EXIT_FAIL;
    if (r->status == want)
        fprintf(stderr, "nurion: the coordinator at %s answered %ld without a JSON body\n",
                nu_client_url(cc->client), r->status);
    else
        nu_client_print_error(stderr, "nurion", where, r);
    nu_client_resp_free(r);
    return code;
}

char *nu_cli_job_path(const char *id, const char *suffix)
{
    char *enc = nu_client_escape(id);
    char *path = nu_xasprintf("/api/v1/jobs/%s%s", enc, suffix);
    free(enc);
    return path;
}

void nu_cli_query_add(char **q, const char *name, const char *value)
{
    if (value == NULL)
        return;
    char *enc = nu_client_escape(value);
    char *next = nu_xasprintf("%s%c%s=%s", *q, **q ? '&' : '?', name, enc);
    free(enc);
    free(*q);
    *q = next;
}

void nu_cli_print_json(const json_t *v)
{
    char *s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s)
        printf("%s\n", s);
    free(s);
}

const char *nu_cli_jstr(const json_t *obj, const char *key, char *buf, size_t size)
{
    const json_t *v = json_object_get(obj, key);
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v))
        snprintf(buf, size, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(buf, size, "%.1f", json_real_value(v));
    else if (json_is_boolean(v))
        snprintf(buf, size, "%s", json_is_true(v) ? "yes" : "no");
    else
        snprintf(buf, size, "-");
    return buf;
}

const char *nu_cli_human(double v, char *buf, size_t size)
{
    if (v < 1000)
        snprintf(buf, size, "%.0f", v);
    else if (v < 1e6)
        snprintf(buf, size, "%.1fk", v / 1e3);
    else if (v < 1e9)
        snprintf(buf, size, "%.2fM", v / 1e6);
    else
        snprintf(buf, size, "%.2fG", v / 1e9);
    return buf;
}

void nu_cli_table_init(struct nu_cli_table *t, size_t ncols, const char *const *header)
{
    memset(t, 0, sizeof(*t));
    t->ncols = ncols < NU_CLI_TABLE_MAX_COLS ? ncols : NU_CLI_TABLE_MAX_COLS;
    nu_cli_table_row(t, header);
}

void nu_cli_table_row(struct nu_cli_table *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->cells = nu_xrealloc(t->cells, t->cap * t->ncols * sizeof(*t->cells));
    }
    for (size_t c = 0; c < t->ncols; c++)
        t->cells[t->nrows * t->ncols + c] = nu_xstrdup(cells[c] ? cells[c] : "-");
    t->nrows++;
}

void nu_cli_table_print(const struct nu_cli_table *t, FILE *out, int indent)
{
    size_t w[NU_CLI_TABLE_MAX_COLS] = {0};
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++) {
            size_t n = strlen(t->cells[r * t->ncols + c]);
            if (n > w[c])
                w[c] = n;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        fprintf(out, "%*s", indent, "");
        for (size_t c = 0; c < t->ncols; c++) {
            const char *s = t->cells[r * t->ncols + c];
            if (c + 1 == t->ncols)
                fprintf(out, "%s", s);
            else
                fprintf(out, "%-*s  ", (int)w[c], s);
        }
        fputc('\n', out);
    }
}

void nu_cli_table_free(struct nu_cli_table *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof(*t));
}
