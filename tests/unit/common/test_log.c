/* Tests of src/common/log.c: format, levels, debug areas, escaping. */
#include "common/log.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Run `fn` with stderr redirected to a temp file; return what was written (malloc'ed). */
static char *capture(void (*fn)(void))
{
    char path[] = "/tmp/nurion-log-XXXXXX";
    int fd = mkstemp(path);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    lseek(fd, 0, SEEK_SET);
    char *buf = calloc(1, 8192);
    ssize_t n = read(fd, buf, 8191);
    cr_assert(n >= 0);
    close(fd);
    unlink(path);
    return buf;
}

static void emit_lines(void)
{
    nu_log_init(NU_LOG_INFO, "");
    nu_log_set_context("job1", "dbl", "2");
    nu_log(NU_LOG_INFO, "stage", "committed %d splits\tlag=%d", 5, 7);
    nu_log(NU_LOG_DEBUG, "stage", "hidden");
    nu_log(NU_LOG_WARN, "stage", "quote \" and\nnewline");
    nu_log_set_context(NULL, NULL, NULL);
}

Test(log, key_value_line_with_context)
{
    char *out = capture(emit_lines);
    cr_assert(strstr(out, "level=info comp=stage job=job1 stage=dbl inst=2 "
                          "msg=\"committed 5 splits\" lag=7\n"),
              "%s", out);
    cr_assert_null(strstr(out, "hidden"));
    cr_assert(strstr(out, "msg=\"quote \\\" and\\nnewline\""), "%s", out);
    cr_assert(strncmp(out, "ts=", 3) == 0);
    free(out);
}

Test(log, debug_areas)
{
    nu_log_init(NU_LOG_INFO, "kafka,sql");
    cr_assert(nu_log_debug_on("kafka"));
    cr_assert(nu_log_debug_on("sql"));
    cr_assert_not(nu_log_debug_on("http"));
    cr_assert_not(nu_log_debug_on("kaf"));
    nu_log_init(NU_LOG_DEBUG, "all");
    cr_assert(nu_log_debug_on("anything"));
    nu_log_init(NU_LOG_INFO, "");
    cr_assert_not(nu_log_debug_on("kafka"));
    nu_log_level_t l;
    cr_assert(nu_log_level_parse("warn", &l) && l == NU_LOG_WARN);
    cr_assert_not(nu_log_level_parse("loud", &l));
}
