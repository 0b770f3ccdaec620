/*
 * commands.h — the table of `nurion` subcommands (layer: cli).
 * X(name, summary); each row needs `int nu_cli_cmd_<name>(int argc, char **argv)`.
 */
#ifndef NU_CLI_COMMANDS_H
#define NU_CLI_COMMANDS_H

#include <stdio.h>

#define NU_CLI_COMMANDS(X)                                                 \
    X(coordinator, "serve the HTTP API, ingest events and launch jobs")    \
    X(demo, "push rows through the broker in transactions and check them") \
    X(k8s, "render Kubernetes manifests for a job (k8s render)")           \
    X(run, "run a job locally, one process per stage instance")            \
    X(stage, "run one instance of one stage of a job")                     \
    X(version, "print the version of nurion and its libraries")            \
    X(submit, "send a job spec to the coordinator (--wait follows it)")    \
    X(jobs, "list the coordinator's jobs")                                 \
    X(status, "show a job and the progress of its stages")                 \
    X(cancel, "cancel a running job")                                      \
    X(lineage, "show the ancestors or descendants of a split")             \
    X(topics, "list a job's topics with kcat commands to read them")       \
    X(validate, "check a job spec and list every problem")

#define NU_CLI_CMD_DECL_(name, summary) int nu_cli_cmd_##name(int argc, char **argv);
NU_CLI_COMMANDS(NU_CLI_CMD_DECL_)
#undef NU_CLI_CMD_DECL_

void nu_cli_print_version(FILE *out);
/* Markdown reference of the settings of `nurion stage` (docs/CONFIGURATION.md). */
void nu_cli_stage_conf_doc(FILE *out);
/* Markdown reference of the settings of `nurion coordinator` (docs/CONFIGURATION.md). */
void nu_cli_coordinator_conf_doc(FILE *out);

#endif
