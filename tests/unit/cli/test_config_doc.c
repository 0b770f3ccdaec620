/*
 * docs/CONFIGURATION.md is generated from the configuration tables of the commands (STYLE.md):
 * this test regenerates it and fails when the file is out of date. To refresh the file, run the
 * test with NURION_REGEN_DOCS=1.
 */
#include "cli/commands.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DOC_PATH NU_SOURCE_DIR "/docs/CONFIGURATION.md"

/* The whole document, malloc'ed. */
static char *doc_generate(size_t *len)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, len);
    cr_assert_not_null(f);
    fputs("# Configuration\n\n"
          "<!-- Generated from the configuration tables in src/cli/*.c by\n"
          "     tests/unit/cli/test_config_doc.c (NURION_REGEN_DOCS=1): do not edit. -->\n\n"
          "Every command reads its settings in this order, later wins: the defaults below, then\n"
          "`--config FILE` (`key = value` lines), then the environment variables, then\n"
          "`--set key=value`. Keys starting with `kafka.` are passed to librdkafka as they are.\n"
          "`--print-config` shows the effective values and where each came from; secrets are\n"
          "never printed. Durations take `ms`, `s`, `m`, `h`; sizes take `KiB`, `MiB`, `GiB`.\n\n",
          f);
    nu_cli_coordinator_conf_doc(f);
    fputs("\n", f);
    nu_cli_stage_conf_doc(f);
    cr_assert_eq(fclose(f), 0);
    return text;
}

static char *doc_read(size_t *len)
{
    FILE *f = fopen(DOC_PATH, "rb");
    if (f == NULL)
        return NULL;
    char *text = NULL;
    size_t cap = 0;
    *len = 0;
    for (;;) {
        if (*len + 4096 > cap) {
            cap = cap * 2 + 8192;
            text = realloc(text, cap);
            cr_assert_not_null(text);
        }
        size_t n = fread(text + *len, 1, cap - *len, f);
        *len += n;
        if (n == 0)
            break;
    }
    fclose(f);
    return text;
}

Test(config_doc, configuration_md_is_up_to_date)
{
    size_t glen = 0, flen = 0;
    char *gen = doc_generate(&glen);
    cr_assert_not_null(strstr(gen, "| `database.url` | `NURION_DATABASE_URL` |"));
    cr_assert_not_null(strstr(gen, "| `commit.interval` |"));
    if (getenv("NURION_REGEN_DOCS") != NULL) {
        FILE *f = fopen(DOC_PATH, "wb");
        cr_assert_not_null(f);
        cr_assert_eq(fwrite(gen, 1, glen, f), glen);
        cr_assert_eq(fclose(f), 0);
    }
    char *file = doc_read(&flen);
    cr_assert_not_null(file, "%s is missing: run this test with NURION_REGEN_DOCS=1", DOC_PATH);
    cr_assert(flen == glen && memcmp(gen, file, glen) == 0,
              "%s is out of date with the configuration tables: run this test with "
              "NURION_REGEN_DOCS=1",
              DOC_PATH);
    free(file);
    free(gen);
}
