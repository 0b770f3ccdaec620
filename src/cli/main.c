/* main.c — the `nurion` binary: dispatch to subcommands (thin; the work is in src/cli). */
#include "cli/cli.h"

int main(int argc, char **argv)
{
    return nu_cli_main(argc, argv);
}
