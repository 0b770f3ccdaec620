/*
 * cli.h — the `nurion` command and its subcommands (layer: cli).
 *
 * Each subcommand is a function `int nu_cli_cmd_<name>(int argc, char **argv)` with argv[0] the
 * subcommand name; it prints its own --help, and returns the process exit code:
 * 0 success, 1 failure at run time, 2 bad usage or invalid input (for example a job spec).
 */
#ifndef NU_CLI_CLI_H
#define NU_CLI_CLI_H

#include <stdbool.h>
#include <stdio.h>

#define NU_EXIT_OK    0
#define NU_EXIT_FAIL  1
#define NU_EXIT_USAGE 2

int nu_cli_main(int argc, char **argv);

/* True when argv holds -h or --help (before a "--"). */
int nu_cli_wants_help(int argc, char **argv);

/*
 * The value of option `name` at argv[*i], given as "--opt value" (then *i moves to the value)
 * or "--opt=value". NULL when argv[*i] is not that option, or (with *missing set) when the
 * value is missing.
 */
const char *nu_cli_optval(int argc, char **argv, int *i, const char *name, bool *missing);

#endif
