/*
 * cmd_client.h — what the API client commands (`submit`, `jobs`, `status`, `cancel`, `lineage`,
 * `topics`) share: the common options, the call that turns transport and HTTP errors into
 * messages and exit codes, and aligned text tables (layer: cli, internal to cmd_client*.c).
 *
 * Exit codes of these commands: 0 success; 1 the coordinator refused (404, 409, 401, 5xx…) or,
 * for `submit --wait`, the job failed or was cancelled; 2 bad usage or a rejected job spec (400);
 * 3 the coordinator could not be reached or did not answer in time.
 *
 * Ownership: a struct nu_cli_client owns its client until nu_cli_client_done(); option values
 * point into argv. A table owns copies of its cells. Not thread-safe (one command per process).
 */
#ifndef NU_CLI_CMD_CLIENT_H
#define NU_CLI_CMD_CLIENT_H

#include "cli/client.h"

#include <stdbool.h>
#include <stdio.h>

#define NU_CLI_EXIT_UNREACHABLE 3
#define NU_CLI_MAX_ARGS         8  /* positional arguments of a client command */
#define NU_CLI_TABLE_MAX_COLS   16 /* columns of a text table */

/* The options every client command takes, in usage text form. */
#define NU_CLI_CLIENT_OPTIONS_HELP                                                       \
    "  --coordinator URL  the coordinator (default: `NURION_COORDINATOR`, else\n"        \
    "                     " NU_CLIENT_DEFAULT_URL ")\n"                                  \
    "  --token T          bearer token of the API (default: `NURION_TOKEN`)\n"           \
    "  --json             print the coordinator's JSON answer instead of text\n"         \
    "  -h, --help         show this help\n\n"                                            \
    "exit status: 0 success, 1 the coordinator refused the request, 2 bad usage or an\n" \
    "invalid request, 3 the coordinator could not be reached\n"

/* One command-specific option: a flag (value == NULL) or an option with a value. */
struct nu_cli_opt {
    const char *name;   /* "--state" */
    const char **value; /* where the value goes, or NULL for a flag */
    bool *flag;         /* set to true for a flag */
};

struct nu_cli_client {
    const char *cmd; /* "submit", for messages */
    const char *url;
    const char *token;
    bool json;
    const char *args[NU_CLI_MAX_ARGS]; /* positional arguments */
    size_t nargs;
    nu_client_t *client;
};

/*
 * Parse argv (argv[0] is the command) into `cc`: the common options, `opts` and between
 * `min_args` and `max_args` positional arguments. Returns -1 to go on, or the exit code to
 * return at once (0 after --help, which `usage` printed; NU_EXIT_USAGE after a usage error,
 * explained on stderr). On -1 the client is created.
 */
int nu_cli_client_init(struct nu_cli_client *cc, int argc, char **argv,
                       const struct nu_cli_opt *opts, size_t nopts, size_t min_args,
                       size_t max_args, void (*usage)(FILE *out));
void nu_cli_client_done(struct nu_cli_client *cc);

/*
 * One request. Returns 0 when the answer has status `want` (a 2xx; *r then holds it), else
 * prints why on stderr (`nurion: cannot reach the coordinator at URL: …`, or the server's
 * message with every problem, `where: $.path: message`) and returns the exit code, with *r
 * empty. `body` may be NULL.
 */
int nu_cli_client_call(struct nu_cli_client *cc, const char *method, const char *path,
                       const char *body, size_t body_len, long want, const char *where,
                       struct nu_client_resp *r);

/* "/api/v1/jobs/<id percent-encoded><suffix>", malloc'ed. */
char *nu_cli_job_path(const char *id, const char *suffix);
/* Append "?name=value" or "&name=value" (value percent-encoded) to *q; a NULL value adds nothing.
 */
void nu_cli_query_add(char **q, const char *name, const char *value);

/* Print a JSON value indented on stdout (for --json). */
void nu_cli_print_json(const json_t *v);

/* Strings of a JSON member for tables: the string, the integer, "-" for null/absent. */
const char *nu_cli_jstr(const json_t *obj, const char *key, char *buf, size_t size);
/* A count in short form: 950, 12.3k, 4.56M. */
const char *nu_cli_human(double v, char *buf, size_t size);

/* An aligned text table: the header, then rows; columns are padded to their widest cell. */
struct nu_cli_table {
    size_t ncols;
    size_t nrows;
    size_t cap;
    char **cells; /* owned, nrows × ncols, the header first */
};
void nu_cli_table_init(struct nu_cli_table *t, size_t ncols, const char *const *header);
/* Append a row of ncols cells (copied; NULL prints "-"). */
void nu_cli_table_row(struct nu_cli_table *t, const char *const *cells);
/* Print with two spaces between columns, `indent` spaces before each line; no trailing blanks. */
void nu_cli_table_print(const struct nu_cli_table *t, FILE *out, int indent);
void nu_cli_table_free(struct nu_cli_table *t);

#endif
