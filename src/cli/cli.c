/* cli.c — top-level dispatch of `nurion <command>`. */
#include "cli/cli.h"

#include "cli/commands.h"
#include "stage/connectors.h"

#include <stdio.h>
#include <string.h>

#ifndef NU_VERSION_STRING
#define NU_VERSION_STRING "0.1.0"
#endif

struct nu_cli_cmd {
    const char *name;
    const char *summary;
    int (*fn)(int argc, char **argv);
};

static const struct nu_cli_cmd nu_cli_cmds[] = {
#define NU_CLI_CMD_ROW_(name, summary) {#name, summary, nu_cli_cmd_##name},
    NU_CLI_COMMANDS(NU_CLI_CMD_ROW_)
#undef NU_CLI_CMD_ROW_
};

static void nu_cli_usage(FILE *out)
{
    fprintf(out,
            "usage: nurion <command> [options]\n"
            "       nurion --version | --help\n\n"
            "Nurion runs batch and streaming pipelines as consumer-group stages over Kafka.\n\n"
            "commands:\n");
    for (size_t i = 0; i < sizeof(nu_cli_cmds) / sizeof(nu_cli_cmds[0]); i++)
        fprintf(out, "  %-12s %s\n", nu_cli_cmds[i].name, nu_cli_cmds[i].summary);
    fprintf(out, "\n`nurion <command> --help` describes a command.\n");
}

int nu_cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return 0;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return 1;
    }
    return 0;
}

const char *nu_cli_optval(int argc, char **argv, int *i, const char *name, bool *missing)
{
    size_t n = strlen(name);
    *missing = false;
    if (strncmp(argv[*i], name, n) != 0)
        return NULL;
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (argv[*i][n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

int nu_cli_cmd_version(int argc, char **argv)
{
    if (nu_cli_wants_help(argc, argv)) {
        printf("usage: nurion version\n\nPrints the version of nurion and of its libraries.\n");
        return NU_EXIT_OK;
    }
    nu_cli_print_version(stdout);
    return NU_EXIT_OK;
}

int nu_cli_main(int argc, char **argv)
{
    nu_connectors_register();
    if (argc < 2) {
        nu_cli_usage(stderr);
        return NU_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        nu_cli_usage(stdout);
        return NU_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0)
        cmd = "version";
    for (size_t i = 0; i < sizeof(nu_cli_cmds) / sizeof(nu_cli_cmds[0]); i++)
        if (strcmp(cmd, nu_cli_cmds[i].name) == 0)
            return nu_cli_cmds[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "nurion: unknown command \"%s\"\n\n", cmd);
    nu_cli_usage(stderr);
    return NU_EXIT_USAGE;
}
